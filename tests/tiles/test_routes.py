"""Tiles over real HTTP from `geoportal serve`: XYZ, TileJSON, the archive with Range."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from pathlib import Path

import mapbox_vector_tile
import mercantile
import numpy as np
import pyogrio
import pytest
import shapely
from pmtiles.reader import Reader

from catalog import Catalog
from tests.tiles.conftest import run, serving
from tiles.source import open_archive


def _two_clusters(folder: Path) -> Path:
    """A layer of two tight clusters 3° apart: dense enough for deep zooms, empty between."""
    rng = np.random.default_rng(5)
    pts = np.vstack(
        [rng.normal((120.68, 24.15), 0.002, (200, 2)), rng.normal((121.55, 22.05), 0.002, (200, 2))]
    )
    feats = [
        {
            "type": "Feature",
            "properties": {"n": i},
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
        }
        for i, (x, y) in enumerate(pts)
    ]
    (folder / "c.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    manifest = folder / "layers.yaml"
    manifest.write_text(
        "layers:\n  - {id: clusters, title: 群集, source: c.geojson}\n", encoding="utf-8"
    )
    return manifest


@pytest.fixture(scope="module")
def server(tiled, tmp_path_factory):
    home, report = tiled
    manifest = _two_clusters(tmp_path_factory.mktemp("clusters"))
    run("ingest", str(manifest), home=home)
    out = run("tiles", "build", "clusters", "--json", home=home)
    report = {**report, **{r["id"]: r for r in json.loads(out.stdout)["layers"]}}
    with serving(home) as base:
        yield base, home, report


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()  # headers: case-insensitive
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_tilejson_describes_the_layer(server):
    base, _, _ = server
    status, _, body = get(f"{base}/tiles/public-parking.json")
    doc = json.loads(body)
    assert status == 200 and doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == [f"{base}/tiles/public-parking/{{z}}/{{x}}/{{y}}.mvt"]
    assert doc["vector_layers"][0]["id"] == "public-parking"
    assert "名稱" in doc["vector_layers"][0]["fields"]
    assert doc["name"] == "臺中市公有路外停車場"


def test_a_tile_holds_the_feature_where_it_is(server):
    base, home, _ = server
    with Catalog.open(home) as c:
        version = c.current("public-parking")
    _, _, wkb, fields = pyogrio.raw.read(home / version.path, max_features=1)
    point = shapely.from_wkb(wkb[0])
    status, headers, _ = get(f"{base}/tiles/public-parking.json")
    maxzoom = json.loads(get(f"{base}/tiles/public-parking.json")[2])["maxzoom"]
    t = mercantile.tile(point.x, point.y, maxzoom)
    status, headers, body = get(f"{base}/tiles/public-parking/{maxzoom}/{t.x}/{t.y}.mvt")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    features = mapbox_vector_tile.decode(gzip.decompress(body))["public-parking"]["features"]
    assert fields[1][0] in {f["properties"]["名稱"] for f in features}
    etag = headers["ETag"]
    assert (
        get(f"{base}/tiles/public-parking/{maxzoom}/{t.x}/{t.y}.mvt", {"If-None-Match": etag})[0]
        == 304
    )


def test_empty_inside_is_204_outside_is_404_malformed_is_400(server):
    base, _, report = server
    archive = open_archive(Path(report["clusters"]["path"]))
    z = archive.header["max_zoom"]
    between = mercantile.tile(121.1, 23.1, z)  # inside the bounds, between the two clusters
    assert archive.get(z, between.x, between.y) is None
    assert get(f"{base}/tiles/clusters/{z}/{between.x}/{between.y}.mvt")[0] == 204
    far = mercantile.tile(0.0, 0.0, z)
    assert get(f"{base}/tiles/clusters/{z}/{far.x}/{far.y}.mvt")[0] == 404
    assert get(f"{base}/tiles/public-parking/3/99/1.mvt")[0] == 400
    assert get(f"{base}/tiles/public-parking/a/b/c.mvt")[0] == 400
    assert get(f"{base}/tiles/no-such-layer/0/0/0.mvt")[0] == 404
    assert get(f"{base}/tiles/Bad_ID/0/0/0.mvt")[0] == 400


def test_the_archive_itself_with_http_range(server):
    base, _, report = server
    status, headers, body = get(f"{base}/tiles/public-parking.pmtiles", {"Range": "bytes=0-126"})
    assert status == 206 and len(body) == 127 and body.startswith(b"PMTiles")
    size = Path(report["public-parking"]["path"]).stat().st_size
    assert headers["Content-Range"] == f"bytes 0-126/{size}"


def test_the_pmtiles_reader_reads_the_archive_over_http_range(server):
    """What pmtiles.js does in a browser: header, directories and tiles by Range requests."""
    base, home, _ = server
    url = f"{base}/tiles/clusters.pmtiles"
    ranges = []

    def get_bytes(offset: int, length: int) -> bytes:
        ranges.append((offset, length))
        status, _, body = get(url, {"Range": f"bytes={offset}-{offset + length - 1}"})
        assert status == 206
        return body

    reader = Reader(get_bytes)
    header = reader.header()
    z = header["max_zoom"]
    stored = pyogrio.read_dataframe(home / Catalog.open(home).current("clusters").path)
    lon, lat = stored.geometry.iloc[0].x, stored.geometry.iloc[0].y
    tile = mercantile.tile(lon, lat, z)
    data = reader.get(z, tile.x, tile.y)
    decoded = mapbox_vector_tile.decode(gzip.decompress(data))
    assert len(decoded["clusters"]["features"]) > 0
    assert reader.metadata()["vector_layers"][0]["id"] == "clusters"
    assert all(length < 20_000 for _, length in ranges)  # never the whole archive


# --------------------------------------------------------------------------- raster XYZ


@pytest.fixture(scope="module")
def raster_server(tmp_path_factory):
    """`geoportal serve` over the layers of test_tilecache (known colours and positions)."""
    from tests.tiles.test_tilecache import build_home

    home = build_home(tmp_path_factory.mktemp("xyz-raster"))
    with serving(home) as base:
        yield base, home


def test_png_and_webp_tiles_show_the_layers_where_they_are(raster_server):
    from tests.tiles.test_tilecache import (
        DEM_ONLY,
        LINE_POINT,
        SQUARE_MIDDLE,
        TILESET_ID,
        mercator_pixel,
        near,
        rgba,
    )

    base, _ = raster_server
    x, y, col, row = mercator_pixel(*SQUARE_MIDDLE, 14)
    status, headers, body = get(f"{base}/tiles/square-red/14/{x}/{y}.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert near(rgba(body, col, row), (255, 0, 0, 255))
    assert (
        get(f"{base}/tiles/square-red/14/{x}/{y}.png", {"If-None-Match": headers["ETag"]})[0] == 304
    )
    for lonlat, colour in (
        (SQUARE_MIDDLE, (255, 0, 0)),
        (LINE_POINT, (0, 0, 255)),
        (DEM_ONLY, (0, 255, 0)),
    ):
        x, y, col, row = mercator_pixel(*lonlat, 13)
        status, headers, body = get(f"{base}/tiles/{TILESET_ID}/13/{x}/{y}.webp")
        assert status == 200 and headers["Content-Type"] == "image/webp"
        assert near(rgba(body, col, row), (*colour, 255), tolerance=12), lonlat


def test_raster_tiles_empty_inside_204_outside_404_malformed_400(raster_server):
    base, _ = raster_server
    between = mercantile.tile(120.82, 24.38, 14)  # inside the sites' bbox, no site near
    assert get(f"{base}/tiles/sites-green/14/{between.x}/{between.y}.png")[0] == 204
    far = mercantile.tile(121.5, 25.0, 14)
    assert get(f"{base}/tiles/sites-green/14/{far.x}/{far.y}.png")[0] == 404
    assert get(f"{base}/tiles/sites-green/25/0/0.png")[0] == 404
    assert get(f"{base}/tiles/sites-green/3/99/1.png")[0] == 400
    assert get(f"{base}/tiles/sites-green/a/b/c.webp")[0] == 400
    assert get(f"{base}/tiles/sites-green/3/1/1.gif")[0] == 400
    assert get(f"{base}/tiles/no-such-thing/3/1/1.png")[0] == 404
    assert get(f"{base}/tiles/Bad_ID/3/1/1.png")[0] == 400


def test_tilejson_of_a_tileset_and_of_a_raster_layer(raster_server):
    from tests.tiles.test_tilecache import TILESET_ID

    base, home = raster_server
    with Catalog.open(home) as c:
        dem = c.current("dem-green")
        square = c.current("square-red")
    status, _, body = get(f"{base}/tiles/{TILESET_ID}.json")
    doc = json.loads(body)
    assert status == 200 and doc["tilejson"] == "3.0.0" and doc["name"] == "測試圖組"
    assert doc["tiles"] == [f"{base}/tiles/{TILESET_ID}/{{z}}/{{x}}/{{y}}.png"]
    expected = [
        min(dem.bbox[0], square.bbox[0]),
        min(dem.bbox[1], square.bbox[1]),
        max(dem.bbox[2], square.bbox[2]),
        max(dem.bbox[3], square.bbox[3]),
    ]
    assert doc["bounds"] == pytest.approx(expected)
    assert doc["bounds"][0] <= doc["center"][0] <= doc["bounds"][2]
    assert "vector_layers" not in doc
    status, _, body = get(f"{base}/tiles/dem-green.json")
    doc = json.loads(body)
    assert status == 200 and doc["tiles"] == [f"{base}/tiles/dem-green/{{z}}/{{x}}/{{y}}.png"]
    assert doc["bounds"] == pytest.approx(list(dem.bbox))
    assert get(f"{base}/tiles/no-such-thing.json")[0] == 404
