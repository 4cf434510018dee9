"""Display rasters: DEM colour relief + hillshade, imagery pass-through, nodata transparent."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from catalog import Catalog
from catalog.model import Agency, Layer, LayerVersion, Lineage
from catalog.style import ColorStop, Style
from catalog.view import CatalogView
from tiles.layers import render_layer
from tiles.raster import display_raster


def _current(home: Path, layer_id: str) -> tuple[Layer, LayerVersion]:
    with Catalog.open(home) as c:
        return c.get_layer(layer_id), c.current(layer_id)


def _rgba(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        assert ds.count == 4 and ds.dtypes[0] == "uint8"
        return ds.read()


def _source_nodata(corpus: Path, truth: dict) -> np.ndarray:
    """Where the agency's original file has no data (its own nodata value, or non-finite)."""
    with rasterio.open(corpus / truth["source"]) as ds:
        values = ds.read(1).astype(np.float64)
        nodata = ds.nodata
    bad = ~np.isfinite(values)
    if nodata is not None:
        bad |= np.isclose(values, nodata, rtol=1e-12) | (np.abs(values) > 1e300)
    return bad


@pytest.mark.parametrize("layer_id", ["dem-20m", "dem-5m-dakeng"])
def test_dem_nodata_is_transparent_and_data_opaque(tiled, small_corpus, expected, layer_id):
    home, _ = tiled
    truth = expected["layers"][layer_id]
    with Catalog.open(home) as c:
        snapshot = CatalogView(c).snapshot()
    path = render_layer(home, snapshot, layer_id).source
    rgba = _rgba(path)
    assert rgba.shape[1:] == (truth["raster"]["height"], truth["raster"]["width"])
    nodata = _source_nodata(small_corpus, truth)
    assert nodata.any() and not nodata.all()
    assert (rgba[3][nodata] == 0).all()
    assert (rgba[3][~nodata] == 255).all()
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 3826
        left, bottom, right, top = truth["bbox_source"]
        assert ds.bounds == pytest.approx((left, bottom, right, top))


def test_colormap_stops_give_each_cell_its_interpolated_colour(tiled):
    home, _ = tiled
    layer, version = _current(home, "dem-5m-dakeng")
    stops = (ColorStop(value=0, color="#0000ff"), ColorStop(value=1000, color="#ff0000"))
    path = display_raster(home, layer, version, Style(colormap=stops, hillshade=False))
    rgba = _rgba(path)
    with rasterio.open(home / version.path) as ds:
        heights = ds.read(1, masked=True)
    rng = np.random.default_rng(7)
    rows, cols = np.nonzero(~heights.mask)
    for i in rng.choice(len(rows), 25, replace=False):
        r, c = rows[i], cols[i]
        t = min(max(float(heights[r, c]) / 1000, 0), 1)
        assert abs(int(rgba[0, r, c]) - 255 * t) <= 1
        assert abs(int(rgba[2, r, c]) - 255 * (1 - t)) <= 1
        assert rgba[1, r, c] == 0


def test_default_ramp_runs_from_green_lowlands_to_white_peaks(tiled):
    home, _ = tiled
    layer, version = _current(home, "dem-20m")
    rgba = _rgba(display_raster(home, layer, version, Style(hillshade=False))).astype(int)
    with rasterio.open(home / version.path) as ds:
        heights = ds.read(1, masked=True)
    low = np.unravel_index(np.ma.argmin(heights), heights.shape)
    high = np.unravel_index(np.ma.argmax(heights), heights.shape)
    r, g, b = rgba[:3, low[0], low[1]]
    assert g > r and g > b  # green
    assert rgba[:3, high[0], high[1]].min() >= 240  # white
    # Halfway up the range: warm (yellow/tan), no longer green-dominated.
    valid = heights.compressed()
    middle = (valid.min() + valid.max()) / 2
    near = np.ma.argmin(np.abs(heights - middle))
    mr, mg, mb = rgba[:3].reshape(3, -1)[:, near]
    assert mr > mb and mr >= mg - 10
    # Higher cells are never greener than lower ones along the ramp's green part.
    order = np.argsort(valid)
    greens = rgba[1][~heights.mask][order]
    reds = rgba[0][~heights.mask][order]
    assert np.mean(greens[: len(order) // 5] - reds[: len(order) // 5]) > 0
    assert np.mean(greens[-len(order) // 5 :] - reds[-len(order) // 5 :]) < 0


def _synthetic(home: Path, layer_id: str, data: np.ndarray, nodata: float | None, **kw) -> tuple:
    """A raster layer version written straight into a data home (10 m cells, EPSG:3826)."""
    rel = f"layers/{layer_id}/0123456789abcdef.tif"
    (home / rel).parent.mkdir(parents=True, exist_ok=True)
    count = 1 if data.ndim == 2 else data.shape[0]
    with rasterio.open(
        home / rel,
        "w",
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=count,
        dtype=data.dtype,
        crs="EPSG:3826",
        transform=from_origin(220_000, 2_670_000, 10, 10),
        nodata=nodata,
        **kw,
    ) as ds:
        ds.write(data if data.ndim == 3 else data[None])
    return _layer_version(layer_id)


def _layer_version(layer_id: str) -> tuple[Layer, LayerVersion]:
    layer = Layer(id=layer_id, title="合成測試圖層", agency=Agency("test", "測試機關"))
    version = LayerVersion(
        layer_id=layer_id,
        version="0123456789abcdef",
        created=datetime.now(UTC),
        kind="raster",
        path=f"layers/{layer_id}/0123456789abcdef.tif",
        geometry_type="",
        feature_count=0,
        bbox=(120.70, 24.12, 120.71, 24.13),
        source_crs="EPSG:3826",
        fields=(),
        lineage=Lineage(source="test", sublayer=None, source_hash="", reader="test"),
    )
    return layer, version


def _cone() -> np.ndarray:
    """A 100×100 cone (peak 800 m, 20 m drop per cell) on a flat plain, with a nodata hole."""
    rows, cols = np.mgrid[0:100, 0:100]
    dist = np.hypot(rows - 50, cols - 50)
    heights = np.clip(800 - 20 * dist, 0, None).astype(np.float32)
    heights[5:8, 90:93] = -9999  # a hole in the plain
    heights[60, 60] = np.nan  # a non-finite cell on the south-east flank
    return heights


def test_hillshade_darkens_slopes_facing_away_from_the_north_west_light(tmp_path):
    layer, version = _synthetic(tmp_path, "cone", _cone(), -9999)
    stops = (ColorStop(value=0, color="#c0c0c0"), ColorStop(value=800, color="#c0c0c0"))
    rgba = _rgba(display_raster(tmp_path, layer, version, Style(colormap=stops))).astype(int)
    brightness = rgba[:3].sum(axis=0)
    # Same height (same ramp colour) on opposite flanks: north-west lit, south-east in shade.
    north_west, south_east = brightness[35, 35], brightness[65, 65]
    assert north_west > south_east + 100
    # North-east and south-west flanks are side-lit: in between.
    assert south_east < brightness[35, 65] < north_west
    assert south_east < brightness[65, 35] < north_west
    # Flat ground is shaded the same everywhere: at the raster's edge, next to the hole.
    flat = brightness[15, 15]
    assert brightness[0, 0] == flat and brightness[99, 0] == flat
    assert brightness[4, 91] == flat and brightness[8, 93] == flat
    # No data → transparent.
    assert (rgba[3, 5:8, 90:93] == 0).all() and rgba[3, 60, 60] == 0
    assert rgba[3, 35, 35] == 255


def test_without_hillshade_same_height_same_colour(tmp_path):
    layer, version = _synthetic(tmp_path, "cone", _cone(), -9999)
    rgba = _rgba(display_raster(tmp_path, layer, version, Style(hillshade=False)))
    for a, b in [((35, 35), (65, 65)), ((35, 65), (65, 35)), ((50, 20), (20, 50))]:
        assert (rgba[:, a[0], a[1]] == rgba[:, b[0], b[1]]).all()


def test_imagery_passes_through_with_its_mask_as_alpha(tiled, small_corpus, expected):
    home, _ = tiled
    truth = expected["layers"]["orthophoto-2023"]
    layer, version = _current(home, "orthophoto-2023")
    rgba = _rgba(display_raster(home, layer, version, Style()))
    with rasterio.open(small_corpus / truth["source"]) as ds:
        original = ds.read()
    assert (rgba[:3] == original).all()
    assert (rgba[3] == 255).all()  # an orthophoto without nodata is opaque


def test_rgba_imagery_keeps_its_alpha_band(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(1, 255, (4, 40, 50), dtype=np.uint8)
    data[3] = 255
    data[3, :10, :] = 0  # the top rows are outside the scan
    layer, version = _synthetic(tmp_path, "scan", data, None, photometric="RGB", alpha="YES")
    rgba = _rgba(display_raster(tmp_path, layer, version, Style()))
    assert (rgba[3, :10] == 0).all() and (rgba[3, 10:] == 255).all()
    assert (rgba[:3, 10:] == data[:3, 10:]).all()


def test_display_raster_has_overviews_for_big_rasters(tmp_path):
    heights = np.tile(np.linspace(0, 3000, 1300, dtype=np.float32), (700, 1))
    layer, version = _synthetic(tmp_path, "big", heights, -9999)
    path = display_raster(tmp_path, layer, version, Style())
    with rasterio.open(path) as ds:
        assert ds.overviews(1) and ds.block_shapes[0] == (512, 512)
        assert ds.profile["compress"] == "deflate"
        # Two processing windows meet at column 1024: no seam in the shading there.
        row = ds.read(window=((350, 351), (1018, 1030)))
    assert np.ptp(row[:3].astype(int), axis=1).max() <= 2


def _make(home: str) -> str:
    layer, version = _layer_version("cone")
    return str(display_raster(Path(home), layer, version, Style()))


def test_concurrent_processes_make_it_once_and_atomically(tmp_path):
    _synthetic(tmp_path, "cone", _cone(), -9999)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        paths = pool.map(_make, [str(tmp_path)] * 8)
    assert len(set(paths)) == 1
    folder = Path(paths[0]).parent
    assert [p.name for p in folder.glob("*.part")] == []
    assert _rgba(Path(paths[0]))[3, 40, 40] == 255


def test_a_style_change_makes_a_new_display_raster(tmp_path):
    layer, version = _synthetic(tmp_path, "cone", _cone(), -9999)
    shaded = display_raster(tmp_path, layer, version, Style())
    flat = display_raster(tmp_path, layer, version, Style(hillshade=False))
    assert shaded != flat and shaded.exists() and flat.exists()
    assert display_raster(tmp_path, layer, version, Style()) == shaded
