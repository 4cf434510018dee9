"""Raster tiles drawn, cached and read back: pixels where the features are, nothing elsewhere.

The data is made here, in code, where every colour and position is known: a red square and a
blue line in one tileset over a green DEM, and green point sites elsewhere. Tile positions come
from the published grid definitions (mercantile for WebMercatorQuad, the TWD97TM2Quad origin
and cell sizes of docs/wmts.md), not from the code under test.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from pyproj import Transformer
from rasterio.transform import from_origin

from catalog import Catalog
from catalog.view import CatalogView
from tests.tiles.conftest import GEOPORTAL
from tiles.matrix import TileOutOfRange, UnknownTileMatrix
from tiles.prerender import prerendered_archive
from tiles.tilecache import EMPTY, raster_tile
from tiles.tilesets import raster_source

SQUARE = (120.60, 24.10, 120.64, 24.14)  # red polygon, fully opaque, no outline
LINE_LAT = 24.12  # blue 8-pixel line from 120.58 to 120.66 along this latitude
DEM_BOX = (120.56, 24.06, 120.68, 24.18)  # constant-height DEM painted pure green
TILESET = "測試圖組"
TILESET_ID = "ce-shi-tu-zu"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
SITE_GREEN = (0, 170, 0)
SITE_Z = 14
DONUT = (120.70, 24.20, 120.74, 24.24)  # red polygon with a square hole
DONUT_HOLE = (120.71, 24.21, 120.73, 24.23)


def _edge_site() -> tuple[float, float]:
    """A point exactly on the boundary between two level-14 WebMercatorQuad tiles."""
    t = mercantile.tile(120.853, 24.352, SITE_Z)
    b = mercantile.bounds(t)
    return b.west, (b.south + b.north) / 2


def _geojson(path: Path, geometries: list[dict], names: list[str]) -> None:
    feats = [
        {"type": "Feature", "properties": {"名稱": n}, "geometry": g}
        for g, n in zip(geometries, names, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")


def _dem(path: Path) -> None:
    west, south, east, north = Transformer.from_crs(4326, 3826, always_xy=True).transform_bounds(
        *DEM_BOX
    )
    res = 20.0
    width, height = int((east - west) / res), int((north - south) / res)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs="EPSG:3826",
        transform=from_origin(west, north, res, res),
        nodata=-9999.0,
    ) as ds:
        ds.write(np.full((1, height, width), 500.0, dtype="float32"))


def write_corpus(folder: Path) -> Path:
    """The test layers and their manifest; returns the manifest."""
    w, s, e, n = SQUARE
    _geojson(
        folder / "square.geojson",
        [{"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}],
        ["紅色方塊"],
    )
    _geojson(
        folder / "line.geojson",
        [{"type": "LineString", "coordinates": [[120.58, LINE_LAT], [120.66, LINE_LAT]]}],
        ["藍線"],
    )
    w, s, e, n = DONUT
    hw, hs, he, hn = DONUT_HOLE
    _geojson(
        folder / "donut.geojson",
        [
            {
                "type": "Polygon",
                "coordinates": [
                    [[w, s], [e, s], [e, n], [w, n], [w, s]],
                    [[hw, hs], [hw, hn], [he, hn], [he, hs], [hw, hs]],
                ],
            }
        ],
        ["甜甜圈"],
    )
    sites = [(120.80, 24.30), (120.90, 24.40), _edge_site()]
    _geojson(
        folder / "sites.geojson",
        [{"type": "Point", "coordinates": list(p)} for p in sites],
        ["甲站", "乙站", "邊界站"],
    )
    _dem(folder / "dem.tif")
    manifest = folder / "layers.yaml"
    manifest.write_text(
        f"""defaults: {{agency: 臺中市政府測試局}}
layers:
  - id: square-red
    title: 紅色方塊
    title_en: Red square
    category: 購屋及遷徙
    source: square.geojson
    tileset: {TILESET}
    style: {{fill: "#ff0000", fill_opacity: 1, stroke_width: 0}}
  - id: line-blue
    title: 藍線
    category: 交通及通訊
    source: line.geojson
    tileset: {TILESET}
    style: {{stroke: "#0000ff", stroke_width: 8}}
  - id: dem-green
    title: 綠色地形
    category: 購屋及遷徙
    source: dem.tif
    tileset: {TILESET}
    style:
      hillshade: false
      colormap: [{{value: 0, color: "#00ff00"}}, {{value: 1000, color: "#00ff00"}}]
  - id: donut-red
    title: 紅色環形
    category: 購屋及遷徙
    source: donut.geojson
    style: {{fill: "#ff0000", fill_opacity: 1, stroke_width: 0}}
  - id: sites-green
    title: 綠色站點
    category: 休閒旅遊
    source: sites.geojson
    style: {{fill: "#00aa00", marker_size: 12, stroke_width: 0, label: 名稱}}
""",
        encoding="utf-8",
    )
    return manifest


def ingest(manifest: Path, home: Path) -> None:
    """`geoportal ingest manifest` into ``home``, which must succeed."""
    out = subprocess.run(
        [*GEOPORTAL, "ingest", str(manifest), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def build_home(folder: Path) -> Path:
    """A data home with the test layers ingested."""
    home = folder / "home"
    ingest(write_corpus(folder), home)
    return home


def rgba(data: bytes, col: int, row: int) -> tuple[int, int, int, int]:
    return Image.open(io.BytesIO(data)).convert("RGBA").getpixel((col, row))


def near(colour: tuple, expected: tuple, tolerance: int = 6) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=False))


def mercator_pixel(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """(x, y, col, row) of the WebMercatorQuad tile and pixel holding lon/lat (mercantile)."""
    t = mercantile.tile(lon, lat, z)
    b = mercantile.xy_bounds(t)
    x, y = mercantile.xy(lon, lat)
    col = int((x - b.left) / (b.right - b.left) * 256)
    row = int((b.top - y) / (b.top - b.bottom) * 256)
    return t.x, t.y, col, row


def twd97_pixel(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """(x, y, col, row) in TWD97TM2Quad, from its definition.

    Origin (-200000, 3000000), 4096 m cells at level 0, halved per level.
    """
    e, n = Transformer.from_crs(4326, 3826, always_xy=True).transform(lon, lat)
    cell = 4096.0 / 2**z
    gx, gy = (e + 200_000) / cell, (3_000_000 - n) / cell
    return int(gx // 256), int(gy // 256), int(gx % 256), int(gy % 256)


def crs84_pixel(lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """(x, y, col, row) in WorldCRS84Quad: origin (-180, 90), 180/256 degree cells at 0."""
    cell = 180.0 / 256 / 2**z
    gx, gy = (lon + 180) / cell, (90 - lat) / cell
    return int(gx // 256), int(gy // 256), int(gx % 256), int(gy % 256)


PIXELS = {
    "WebMercatorQuad": mercator_pixel,
    "TWD97TM2Quad": twd97_pixel,
    "WorldCRS84Quad": crs84_pixel,
}
SQUARE_MIDDLE = (120.62, 24.13)  # inside the square, above the line
LINE_POINT = (120.62, LINE_LAT)  # on the line, inside the square
DEM_ONLY = (120.575, 24.07)  # on the DEM, away from the square and the line


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return build_home(tmp_path_factory.mktemp("tilecache"))


@pytest.fixture
def view(home):
    with Catalog.open(home) as catalog:
        yield CatalogView(catalog, ttl=0)


def tile_at(home, snapshot, source, tms, lonlat, z, fmt="png"):
    x, y, col, row = PIXELS[tms](*lonlat, z)
    return raster_tile(home, snapshot, source, tms, z, x, y, fmt), (col, row)


@pytest.mark.parametrize(
    ("tms", "z"), [("WebMercatorQuad", 13), ("TWD97TM2Quad", 8), ("WorldCRS84Quad", 12)]
)
def test_a_layer_is_painted_inside_its_polygon_and_not_outside(home, view, tms, z):
    snapshot = view.snapshot()
    data, (col, row) = tile_at(home, snapshot, "square-red", tms, SQUARE_MIDDLE, z)
    assert near(rgba(data, col, row), (*RED, 255))
    # across the square's west edge: painted 3 pixels east of it, transparent 3 pixels west
    edge = (SQUARE[0], 24.125)
    while not 3 <= PIXELS[tms](*edge, z)[2] <= 252:
        z += 1
    data, (col, row) = tile_at(home, snapshot, "square-red", tms, edge, z)
    assert near(rgba(data, col + 3, row), (*RED, 255))
    assert rgba(data, col - 3, row)[3] == 0


@pytest.mark.parametrize(
    ("tms", "z"), [("WebMercatorQuad", 13), ("TWD97TM2Quad", 8), ("WorldCRS84Quad", 12)]
)
def test_a_tileset_draws_its_raster_first_then_polygons_then_lines(home, view, tms, z):
    snapshot = view.snapshot()
    for lonlat, colour in ((SQUARE_MIDDLE, RED), (LINE_POINT, BLUE), (DEM_ONLY, GREEN)):
        data, (col, row) = tile_at(home, snapshot, TILESET_ID, tms, lonlat, z)
        assert near(rgba(data, col, row), (*colour, 255)), (lonlat, rgba(data, col, row))


def test_jpeg_is_opaque_white_where_nothing_is_drawn_webp_transparent(home, view):
    snapshot = view.snapshot()
    edge, z = (SQUARE[0], 24.125), 14
    while not 3 <= mercator_pixel(*edge, z)[2] <= 252:
        z += 1
    x, y, col, row = mercator_pixel(*edge, z)
    data = raster_tile(home, snapshot, "square-red", "WebMercatorQuad", z, x, y, "jpeg")
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert near(image.getpixel((col - 3, row)), (255, 255, 255))
    assert near(image.getpixel((col + 3, row)), RED, tolerance=12)
    webp = raster_tile(home, snapshot, "square-red", "WebMercatorQuad", z, x, y, "webp")
    assert Image.open(io.BytesIO(webp)).format == "WEBP"
    assert rgba(webp, col - 3, row)[3] == 0
    assert near(rgba(webp, col + 3, row), (*RED, 255), tolerance=12)


def test_outside_the_extent_is_none_and_empty_inside_is_empty(home, view):
    snapshot = view.snapshot()
    x, y, _, _ = mercator_pixel(121.5, 25.0, 12)
    assert raster_tile(home, snapshot, "sites-green", "WebMercatorQuad", 12, x, y, "png") is None
    x, y, _, _ = mercator_pixel(120.82, 24.38, SITE_Z)  # between the sites, inside their bbox
    assert raster_tile(home, snapshot, "sites-green", "WebMercatorQuad", SITE_Z, x, y, "png") == (
        EMPTY
    )


def test_a_point_on_a_tile_edge_is_drawn_whole_on_both_tiles(home, view):
    snapshot = view.snapshot()
    lon, lat = _edge_site()
    x, y, _, row = mercator_pixel(lon + 1e-9, lat, SITE_Z)
    right = raster_tile(home, snapshot, "sites-green", "WebMercatorQuad", SITE_Z, x, y, "png")
    left = raster_tile(home, snapshot, "sites-green", "WebMercatorQuad", SITE_Z, x - 1, y, "png")
    assert near(rgba(right, 1, row), (*SITE_GREEN, 255), tolerance=20)
    assert near(rgba(left, 254, row), (*SITE_GREEN, 255), tolerance=20)


def test_bad_tiles_are_refused(home, view):
    snapshot = view.snapshot()
    with pytest.raises(TileOutOfRange, match=r"Tile\(x=9, y=0, z=3\)"):
        raster_tile(home, snapshot, "square-red", "WebMercatorQuad", 3, 9, 0, "png")
    with pytest.raises(UnknownTileMatrix, match=r"levels 0\.\.16"):
        raster_tile(home, snapshot, "square-red", "TWD97TM2Quad", 17, 0, 0, "png")


def test_tiles_are_cached_on_disk_under_the_source_key(home, view):
    snapshot = view.snapshot()
    x, y, _, _ = mercator_pixel(*SQUARE_MIDDLE, 11)
    first = raster_tile(home, snapshot, "line-blue", "WebMercatorQuad", 11, x, y, "png")
    key = raster_source(snapshot, "line-blue").cache_key
    cached = home / "tilecache" / "line-blue" / key / "WebMercatorQuad" / "11" / str(x)
    assert (cached / f"{y}.png").read_bytes() == first
    marker = Image.new("RGBA", (256, 256), (1, 2, 3, 255))
    buf = io.BytesIO()
    marker.save(buf, "PNG")
    (cached / f"{y}.png").write_bytes(buf.getvalue())
    again = raster_tile(home, snapshot, "line-blue", "WebMercatorQuad", 11, x, y, "png")
    assert rgba(again, 0, 0) == (1, 2, 3, 255)  # read from the cache, not drawn again
    assert not list(cached.glob(".*.tmp"))


def test_a_restyle_draws_anew_and_drops_the_old_cache(home, view):
    snapshot = view.snapshot()
    x, y, col, row = mercator_pixel(*SQUARE_MIDDLE, 12)
    old_key = raster_source(snapshot, "square-red").cache_key
    raster_tile(home, snapshot, "square-red", "WebMercatorQuad", 12, x, y, "png")
    assert (home / "tilecache" / "square-red" / old_key).is_dir()
    with Catalog.open(home) as catalog:
        layer = catalog.get_layer("square-red")
        restyled = {"fill": "#ffff00", "fill_opacity": 1, "stroke_width": 0}
        catalog.upsert_layer(replace(layer, style=restyled))
    try:
        snapshot = view.refresh()
        assert raster_source(snapshot, "square-red").cache_key != old_key
        data = raster_tile(home, snapshot, "square-red", "WebMercatorQuad", 12, x, y, "png")
        assert near(rgba(data, col, row), (255, 255, 0, 255))
        assert not (home / "tilecache" / "square-red" / old_key).exists()
    finally:
        with Catalog.open(home) as catalog:
            catalog.upsert_layer(layer)


def test_a_prerendered_archive_is_read_first(home, view):
    snapshot = view.snapshot()
    source = raster_source(snapshot, TILESET_ID)
    z = 10
    x, y, _, _ = mercator_pixel(*SQUARE_MIDDLE, z)
    stored = io.BytesIO()
    Image.new("RGBA", (256, 256), (9, 8, 7, 255)).save(stored, "PNG")
    path = prerendered_archive(home, source.id, source.cache_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, s, e, n = source.bbox
    with open(path, "wb") as f:
        writer = Writer(f)
        writer.write_tile(zxy_to_tileid(0, 0, 0), stored.getvalue())  # zooms 0..z
        writer.write_tile(zxy_to_tileid(z, x, y), stored.getvalue())
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_zoom": 0,
                "max_zoom": z,
                "min_lon_e7": int(w * 1e7),
                "min_lat_e7": int(s * 1e7),
                "max_lon_e7": int(e * 1e7),
                "max_lat_e7": int(n * 1e7),
                "center_zoom": z,
                "center_lon_e7": int((w + e) / 2 * 1e7),
                "center_lat_e7": int((s + n) / 2 * 1e7),
            },
            {},
        )
    try:
        assert raster_tile(home, snapshot, TILESET_ID, "WebMercatorQuad", z, x, y, "png") == (
            stored.getvalue()
        )
        # inside the archive's zooms and bounds but not stored: a transparent tile
        x9, y9, _, _ = mercator_pixel(*DEM_ONLY, z - 1)
        assert raster_tile(home, snapshot, TILESET_ID, "WebMercatorQuad", z - 1, x9, y9, "png") == (
            EMPTY
        )
        # deeper than the archive: drawn
        x11, y11, col, row = mercator_pixel(*SQUARE_MIDDLE, z + 1)
        deeper = raster_tile(home, snapshot, TILESET_ID, "WebMercatorQuad", z + 1, x11, y11, "png")
        assert near(rgba(deeper, col, row), (*RED, 255))
    finally:
        path.unlink()


def test_tiles_build_removes_cached_tiles_of_earlier_versions_and_gone_sources(home, view):
    snapshot = view.snapshot()
    x, y, _, _ = mercator_pixel(*SQUARE_MIDDLE, 11)
    raster_tile(home, snapshot, "line-blue", "WebMercatorQuad", 11, x, y, "png")
    current = home / "tilecache" / "line-blue" / raster_source(snapshot, "line-blue").cache_key
    stale = home / "tilecache" / "line-blue" / "0123456789abcdef" / "WebMercatorQuad" / "3"
    gone = home / "tilecache" / "no-longer-here" / "0123456789abcdef"
    for folder in (stale, gone):
        folder.mkdir(parents=True)
        (folder / "1.png").write_bytes(b"old")
    out = subprocess.run(
        [*GEOPORTAL, "tiles", "build", "line-blue", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert current.is_dir()
    assert not stale.parent.parent.exists() and not gone.parent.exists()
