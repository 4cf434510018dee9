"""Pre-rendered raster PMTiles: raster layers and tilesets, built by `geoportal tiles build`."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import yaml
from PIL import Image
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import TileType
from pyproj import Transformer

from catalog import Catalog
from catalog.view import CatalogView
from tests.tiles.conftest import run
from tiles.errors import LayerNotServed
from tiles.prerender import prerender, prerendered_archive, source_stamp
from tiles.tilesets import raster_source, tilesets

RASTERS = ("dem-20m", "dem-5m-dakeng", "orthophoto-2023")
TO_LONLAT = Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True)


def _reader(path: Path) -> Reader:
    f = open(path, "rb")  # noqa: SIM115 - kept open for the reader's lifetime
    return Reader(MmapSource(f))


def _snapshot(home: Path):
    with Catalog.open(home) as c:
        return CatalogView(c).snapshot()


def _pixel(reader: Reader, lon: float, lat: float, z: int) -> tuple[int, int, int, int]:
    """The RGBA of the archive's pixel over (lon, lat) at zoom z ((0,0,0,0) if no tile)."""
    tile = mercantile.tile(lon, lat, z)
    data = reader.get(z, tile.x, tile.y)
    if data is None:
        return (0, 0, 0, 0)
    bounds = mercantile.xy_bounds(tile)
    x, y = mercantile.xy(lon, lat)
    px = int((x - bounds.left) / (bounds.right - bounds.left) * 256)
    py = int((bounds.top - y) / (bounds.top - bounds.bottom) * 256)
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    return image.getpixel((min(px, 255), min(py, 255)))


@pytest.mark.parametrize("layer_id", RASTERS)
def test_raster_layers_get_a_png_archive_down_to_their_native_zoom(tiled, expected, layer_id):
    home, report = tiled
    row = report[layer_id]
    assert (row["kind"], row["status"]) == ("raster", "built"), row["message"]
    path = Path(row["path"])
    assert path == prerendered_archive(home, layer_id, row["version"])
    header = _reader(path).header()
    assert header["tile_type"] == TileType.PNG and header["min_zoom"] == 0
    assert row["zooms"] == [0, header["max_zoom"]]
    truth = expected["layers"][layer_id]
    cell = truth["raster"]["resolution"][0]
    lat = (truth["bbox"][1] + truth["bbox"][3]) / 2
    pixel = 2 * math.pi * 6378137 * math.cos(math.radians(lat)) / 256

    def size(z):
        return pixel / 2**z

    # The deepest zoom is the first whose pixels are (about) as fine as the raster's cells.
    assert size(header["max_zoom"]) <= cell * 1.05 < size(header["max_zoom"] - 1)
    # The catalog's bbox follows the TM2 grid's curved edges: within 0.001° of the corners'.
    archive_bounds = [
        header[k] / 1e7 for k in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7")
    ]
    assert archive_bounds == pytest.approx(truth["bbox"], abs=1e-3)


def test_dem_tiles_are_coloured_over_data_and_transparent_over_nodata(tiled, expected):
    home, report = tiled
    reader = _reader(Path(report["dem-5m-dakeng"]["path"]))
    z = reader.header()["max_zoom"]
    with Catalog.open(home) as c:
        version = c.current("dem-5m-dakeng")
    display = next((home / "tiles" / "dem-5m-dakeng").glob(f"{version.version}-*.display.tif"))
    with rasterio.open(home / version.path) as stored, rasterio.open(display) as shown:
        heights = stored.read(1, masked=True)
        colours = shown.read()
        # Cell centres far from the survey boundary: the north-west corner is nodata (the
        # irregular boundary cuts it off), the middle is surveyed.
        for (row, col), has_data in (((2, 2), False), ((57, 77), False), ((30, 40), True)):
            assert bool(heights.mask[row, col]) is not has_data
            lon, lat = TO_LONLAT.transform(*stored.xy(row, col))
            r, g, b, a = _pixel(reader, lon, lat, z)
            if not has_data:
                assert a == 0
                continue
            assert a == 255
            expected_rgb = colours[:3, row, col].astype(int)
            assert np.abs(np.array([r, g, b]) - expected_rgb).max() <= 40


def test_orthophoto_tiles_show_the_image(tiled, small_corpus, expected):
    _, report = tiled
    reader = _reader(Path(report["orthophoto-2023"]["path"]))
    z = reader.header()["max_zoom"]
    truth = expected["layers"]["orthophoto-2023"]
    with rasterio.open(small_corpus / truth["source"]) as ds:
        image = ds.read().astype(int)
        row, col = ds.height // 2, ds.width // 2
        lon, lat = TO_LONLAT.transform(*ds.xy(row, col))
    r, g, b, a = _pixel(reader, lon, lat, z)
    assert a == 255
    # The tile is resampled; it shows the neighbourhood's colours (green ground, grey roofs).
    window = image[:, row - 2 : row + 3, col - 2 : col + 3].reshape(3, -1)
    for value, channel in zip((r, g, b), window, strict=True):
        assert channel.min() - 10 <= value <= channel.max() + 10
    west, _, east, _ = truth["bbox"]
    assert _pixel(reader, east + (east - west), lat, z)[3] == 0


def test_a_second_build_reports_unchanged(tiled):
    home, report = tiled
    path = Path(report["dem-20m"]["path"])
    before = path.stat().st_mtime_ns
    out = run("tiles", "build", "dem-20m", "--json", home=home)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["layers"]
    (again,) = [r for r in rows if r["kind"] != "tileset"]
    assert (again["kind"], again["status"]) == ("raster", "unchanged")
    assert again["path"] == str(path) and path.stat().st_mtime_ns == before
    # The tilesets the layer is drawn into come along, and are unchanged too.
    sets = [r for r in rows if r["kind"] == "tileset"]
    snapshot = _snapshot(home)
    assert {r["id"] for r in sets} == {
        t.id for t in tilesets(snapshot).values() if "dem-20m" in t.layer_ids
    }
    assert all(r["status"] == "unchanged" for r in sets)


def test_stamps_are_the_tile_cache_keys(tiled):
    home, report = tiled
    snapshot = _snapshot(home)
    for layer_id in RASTERS:
        stamp = source_stamp(snapshot, layer_id)
        assert stamp == raster_source(snapshot, layer_id).cache_key == report[layer_id]["version"]
        assert stamp.startswith(snapshot.versions[layer_id].version)


def test_only_rasters_and_tilesets_are_prerendered(tiled):
    home, _ = tiled
    snapshot = _snapshot(home)
    with pytest.raises(LayerNotServed, match="public-parking"):
        prerender(home, snapshot, "public-parking")
    with pytest.raises(LayerNotServed, match="no-such-thing"):
        prerender(home, snapshot, "no-such-thing")


_KILLABLE = """
import sys
from pathlib import Path
from catalog import Catalog
from catalog.view import CatalogView
from tiles.prerender import prerender
home = Path(sys.argv[1])
with Catalog.open(home) as c:
    snapshot = CatalogView(c).snapshot()
prerender(home, snapshot, "dem-20m", max_zoom=15)
"""


def test_a_killed_build_leaves_no_archive_and_the_next_build_cleans_up(tiled, tmp_path):
    source_home, report = tiled
    home = tmp_path / "home"
    shutil.copytree(source_home, home, ignore=shutil.ignore_patterns("*.pmtiles"))
    target = home / Path(report["dem-20m"]["path"]).relative_to(source_home)
    folder = target.parent
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(home)])
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("*.part*.pmtiles")):
            assert proc.poll() is None and time.monotonic() < deadline, "no part file appeared"
            time.sleep(0.02)
        time.sleep(0.5)  # well into rendering (z0–15 is thousands of tiles)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    assert list(folder.glob("*.part*.pmtiles"))
    out = run("tiles", "build", "dem-20m", "--json", home=home)
    assert out.returncode == 0, out.stderr
    (row,) = [r for r in json.loads(out.stdout)["layers"] if r["id"] == "dem-20m"]
    assert row["status"] == "built" and Path(row["path"]) == target
    assert not list(folder.glob("*.part*"))
    assert _reader(target).header()["tile_type"] == TileType.PNG


# --------------------------------------------------------------------------- tilesets


@pytest.fixture(scope="module")
def tileset_home(small_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """Districts (polygons), rivers (lines) and the Dakeng DEM grouped into tilesets."""
    manifest = yaml.safe_load((small_corpus / "layers.yaml").read_text(encoding="utf-8"))
    chosen = {"taichung-districts": "行政區界", "rivers": "行政區界", "dem-5m-dakeng": "地形"}
    entries = []
    for entry in manifest["layers"]:
        if entry["id"] in chosen:
            entries.append(
                entry
                | {"source": str(small_corpus / entry["source"]), "tileset": chosen[entry["id"]]}
            )
    assert len(entries) == 3
    folder = tmp_path_factory.mktemp("tileset-corpus")
    path = folder / "layers.yaml"
    doc = {"defaults": manifest["defaults"], "layers": entries}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    home = tmp_path_factory.mktemp("tileset-home")
    out = run("ingest", str(path), home=home)
    assert out.returncode == 0, out.stderr
    return home, path


def _build(home: Path, *ids: str) -> dict[tuple[str, str], dict]:
    out = run("tiles", "build", *ids, "--json", home=home)
    assert out.returncode == 0, out.stderr
    return {(r["kind"], r["id"]): r for r in json.loads(out.stdout)["layers"]}


def test_tilesets_get_their_upper_zooms_prerendered(tileset_home, expected):
    home, _ = tileset_home
    rows = _build(home)
    boundaries = rows[("tileset", "xing-zheng-qu-jie")]
    assert boundaries["status"] == "built", boundaries["message"]
    assert boundaries["zooms"] == [0, 12]
    reader = _reader(Path(boundaries["path"]))
    header, meta = reader.header(), reader.metadata()
    assert header["tile_type"] == TileType.PNG
    assert (header["min_zoom"], header["max_zoom"]) == (0, 12)
    assert meta["name"] == "行政區界"
    assert [m["id"] for m in meta["geoportal"]["layers"]] == ["taichung-districts", "rivers"]
    # Inside the city every tile shows the district polygons; the sea west of it is empty.
    west, south, _, north = expected["layers"]["taichung-districts"]["bbox"]
    lon, lat = 120.68, 24.15  # central Taichung (Xitun/North district)
    assert _pixel(reader, lon, lat, 12)[3] > 0
    assert _pixel(reader, lon, lat, 0)[3] > 0
    assert _pixel(reader, west - 0.2, (south + north) / 2, 10)[3] == 0
    # Vector-only tilesets are palette PNGs.
    tile = mercantile.tile(lon, lat, 12)
    assert Image.open(io.BytesIO(reader.get(12, tile.x, tile.y))).mode == "P"
    relief = rows[("tileset", "di-xing")]
    assert relief["status"] == "built"
    relief_reader = _reader(Path(relief["path"]))
    tile = mercantile.tile(120.744, 24.176, 12)
    assert Image.open(io.BytesIO(relief_reader.get(12, tile.x, tile.y))).mode == "RGBA"


def test_tileset_rebuilds_only_when_a_member_changes(tileset_home):
    home, manifest = tileset_home
    first = _build(home)[("tileset", "xing-zheng-qu-jie")]
    again = _build(home, "xing-zheng-qu-jie")
    assert again[("tileset", "xing-zheng-qu-jie")]["status"] == "unchanged"
    assert ("vector", "taichung-districts") not in again  # a tileset id names only the tileset
    # Restyle a member: the tileset's stamp changes and a build of that layer redraws it.
    doc = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    for entry in doc["layers"]:
        if entry["id"] == "rivers":
            entry["style"] = {"stroke": "#ff0000", "stroke_width": 3}
    manifest.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    out = run("ingest", str(manifest), home=home)
    assert out.returncode == 0, out.stderr
    rows = _build(home, "rivers")
    redrawn = rows[("tileset", "xing-zheng-qu-jie")]
    assert redrawn["status"] == "built" and redrawn["version"] != first["version"]
    assert ("tileset", "di-xing") not in rows  # the relief tileset does not hold rivers
    assert redrawn["version"] == source_stamp(_snapshot(home), "xing-zheng-qu-jie")
