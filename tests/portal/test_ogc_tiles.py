"""OGC API - Tiles of vector layers at /ogc: MVT from the PMTiles archives and in TWD97TM2Quad.

Expectations come from the stored GeoPackage (pyogrio), the archive read with the pmtiles
library's own reader, and the tile matrix set document the server publishes.
"""

from __future__ import annotations

import gzip
import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mapbox_vector_tile
import pyogrio
import pyproj
import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles

from catalog.db import Catalog
from tests.serve import serving
from tiles.matrix import twd97_definition

LAYERS = ("door-plates", "buildings")
EXTENT = 4096


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def site(tiled) -> Iterator[tuple[str, Path]]:
    """(base URL, home): the run's tiled home, served."""
    home, _ = tiled
    with serving(home) as base:
        yield base, home


@pytest.fixture(scope="module")
def versions(site) -> dict:
    _, home = site
    with Catalog.open(home) as catalog:
        return {i: catalog.current(i) for i in LAYERS}


def archive_file(home: Path, layer: str, version: str) -> Path:
    (path,) = (home / "tiles" / layer).glob(f"{version}*.pmtiles")
    return path


def test_collection_offers_both_tile_matrix_sets(site):
    base, _ = site
    status, _, body = get(f"{base}/ogc/collections/door-plates/tiles?f=json")
    assert status == 200
    sets = {t["tileMatrixSetURI"]: t for t in json.loads(body)["tilesets"]}
    assert "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad" in sets
    twd97 = [t for t in sets.values() if t["crs"].endswith("/EPSG/0/3826")]
    assert len(twd97) == 1 and twd97[0]["dataType"] == "vector"


def test_twd97_tile_matrix_set_is_the_one_wmts_serves(site):
    base, _ = site
    status, _, body = get(f"{base}/ogc/TileMatrixSets/TWD97TM2Quad?f=json")
    assert status == 200
    doc = json.loads(body)
    assert doc["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3826"
    assert doc["tileMatrices"] == twd97_definition()["tileMatrices"]
    status, _, body = get(f"{base}/ogc/TileMatrixSets?f=json")
    assert "TWD97TM2Quad" in {t["id"] for t in json.loads(body)["tileMatrixSets"]}


def test_tileset_metadata_and_tilejson(site, versions):
    base, home = site
    status, _, body = get(f"{base}/ogc/collections/door-plates/tiles/TWD97TM2Quad?f=json")
    assert status == 200
    doc = json.loads(body)
    rels = {link["rel"] for link in doc["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme" in rels
    assert doc["tileMatrixSetLimits"]
    url = f"{base}/ogc/collections/door-plates/tiles/WebMercatorQuad/metadata?f=tilejson"
    status, _, body = get(url)
    assert status == 200
    tilejson = json.loads(body)
    with open(archive_file(home, "door-plates", versions["door-plates"].version), "rb") as f:
        header = Reader(MmapSource(f)).header()
    assert (tilejson["minzoom"], tilejson["maxzoom"]) == (header["min_zoom"], header["max_zoom"])


def test_webmercator_tiles_are_the_archive_tiles(site, versions):
    base, home = site
    path = archive_file(home, "door-plates", versions["door-plates"].version)
    with open(path, "rb") as f:
        source = MmapSource(f)
        deepest = max(all_tiles(source), key=lambda t: (t[0][0], len(t[1])))
    (z, x, y), stored = deepest
    status, headers, body = get(
        f"{base}/ogc/collections/door-plates/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt"
    )
    assert status == 200
    assert headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert body == gzip.decompress(stored)
    # features where the stored layer has them
    tile = mapbox_vector_tile.decode(body)["door-plates"]
    gdf = pyogrio.read_dataframe(home / versions["door-plates"].path).set_index("編號")
    n = 2**z
    for feature in tile["features"][:200]:
        px, py = feature["geometry"]["coordinates"]
        lon = (x + px / EXTENT) / n * 360 - 180
        merc_y = (y + 1 - py / EXTENT) / n
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * merc_y))))
        point = gdf.loc[feature["properties"]["編號"]].geometry
        tol = 360 / n / EXTENT * 2
        assert abs(point.x - lon) < tol and abs(point.y - lat) < tol


def _twd97_tile(z: int, easting: float, northing: float) -> tuple[int, int, tuple]:
    """(row, col, bbox) of the level-z tile holding a TM2 point, from the published definition."""
    matrix = twd97_definition()["tileMatrices"][z]
    ox, oy = matrix["pointOfOrigin"]
    span = matrix["cellSize"] * matrix["tileWidth"]
    col, row = math.floor((easting - ox) / span), math.floor((oy - northing) / span)
    minx, maxy = ox + col * span, oy - row * span
    return row, col, (minx, maxy - span, minx + span, maxy)


@pytest.mark.parametrize("z", [6, 9, 12])
def test_twd97_tiles_hold_the_stored_features_at_their_tm2_positions(site, versions, z):
    base, home = site
    gdf = pyogrio.read_dataframe(home / versions["door-plates"].path, fid_as_index=True)
    tm2 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
    es, ns = tm2.transform(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    row, col, (minx, miny, maxx, maxy) = _twd97_tile(z, es[0], ns[0])
    status, _, body = get(
        f"{base}/ogc/collections/door-plates/tiles/TWD97TM2Quad/{z}/{row}/{col}?f=mvt"
    )
    assert status == 200
    features = mapbox_vector_tile.decode(body)["door-plates"]["features"]
    span = maxx - minx
    inside = {
        int(fid)
        for fid, e, n in zip(gdf.index, es, ns, strict=True)
        if minx <= e < maxx and miny < n <= maxy
    }
    got_inside = set()
    for feature in features:
        fid = feature["id"]
        px, py = feature["geometry"]["coordinates"]
        e, n = es[gdf.index.get_loc(fid)], ns[gdf.index.get_loc(fid)]
        assert abs((e - minx) / span * EXTENT - px) <= 1
        assert abs((n - miny) / span * EXTENT - py) <= 1
        if 0 <= px < EXTENT and 0 < py <= EXTENT:
            got_inside.add(fid)
        stored = gdf.loc[fid]
        assert feature["properties"]["完整地址"] == stored["完整地址"]
    assert inside and inside <= got_inside  # under MAX_FEATURES: nothing dropped


def test_twd97_polygon_tiles(site, versions):
    base, home = site
    gdf = pyogrio.read_dataframe(home / versions["buildings"].path, fid_as_index=True)
    c = gdf.geometry.iloc[0].centroid
    e, n = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True).transform(c.x, c.y)
    row, col, _ = _twd97_tile(14, e, n)
    status, _, body = get(
        f"{base}/ogc/collections/buildings/tiles/TWD97TM2Quad/14/{row}/{col}?f=mvt"
    )
    assert status == 200
    features = mapbox_vector_tile.decode(body)["buildings"]["features"]
    assert int(gdf.index[0]) in {f["id"] for f in features}
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}


@pytest.mark.parametrize(
    "path",
    [
        "TWD97TM2Quad/5/0/0",  # far outside the layer
        "TWD97TM2Quad/40/0/0",  # no such level
        "TWD97TM2Quad/3/9/9",  # outside the matrix
        "NoSuchSet/1/0/0",
        "TWD97TM2Quad/a/b/c",
        "WebMercatorQuad/1/5/5",
    ],
)
def test_bad_tiles_are_404_not_500(site, path):
    base, _ = site
    status, _, _ = get(f"{base}/ogc/collections/door-plates/tiles/{path}?f=mvt")
    assert status == 404
