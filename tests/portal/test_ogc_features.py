"""OGC API - Features at /ogc, read with real clients (GDAL's OAPIF driver, owslib, HTTP).

Every expectation comes from the stored GeoPackage of the layer (read with pyogrio), from the
corpus's expected.json or from pyproj, never from the code under test.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from owslib.ogcapi.features import Features

from catalog.db import Catalog

LAYER = "door-plates"  # ~3,000 points, integer and text properties, TM2 source coordinates
EPSG3826 = "http://www.opengis.net/def/crs/EPSG/0/3826"


def get(url: str, data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of a request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def items(base: str, layer: str = LAYER, **params) -> dict:
    query = urllib.parse.urlencode({"f": "json", **params})
    status, _, body = get(f"{base}/ogc/collections/{layer}/items?{query}")
    assert status == 200, body[:300]
    return json.loads(body)


@pytest.fixture(scope="module")
def catalog_versions(ogc):
    _, home = ogc
    with Catalog.open(home) as catalog:
        return {lyr.id: catalog.current(lyr.id) for lyr in catalog.layers()}


@pytest.fixture(scope="module")
def stored(ogc, catalog_versions):
    """The layer's stored features (GeoDataFrame indexed by fid), read straight from the GPKG."""
    _, home = ogc
    return pyogrio.read_dataframe(home / catalog_versions[LAYER].path, fid_as_index=True)


def test_landing_page_json_html_and_openapi(ogc):
    base, _ = ogc
    status, headers, body = get(f"{base}/ogc?f=json")
    assert status == 200
    assert json.loads(body)["title"] == "臺中市圖資服務平臺 OGC API"
    status, headers, body = get(f"{base}/ogc/collections?f=html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "臺中市門牌" in body.decode()
    status, _, body = get(f"{base}/ogc/openapi?f=json")
    assert status == 200
    assert f"/collections/{LAYER}/items" in json.loads(body)["paths"]


def test_english_metadata_on_request(ogc, catalog_versions):
    base, _ = ogc
    _, _, body = get(f"{base}/ogc/collections/{LAYER}?f=json&lang=en")
    with Catalog.open(ogc[1]) as catalog:
        assert json.loads(body)["title"] == catalog.get_layer(LAYER).title_en


def test_gdal_lists_every_published_layer(ogc, catalog_versions):
    base, _ = ogc
    listed = {name for name, _ in pyogrio.list_layers(f"OAPIF:{base}/ogc")}
    vectors = {i for i, v in catalog_versions.items() if v is not None and v.kind == "vector"}
    rasters = {i for i, v in catalog_versions.items() if v is not None and v.kind == "raster"}
    # every vector layer, plus the coverages and the records collection ("catalog")
    assert listed == vectors | rasters | {"catalog"}


def test_gdal_reads_every_feature_with_stored_coordinates(ogc, stored):
    base, _ = ogc
    df = pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=LAYER)
    assert len(df) == len(stored)
    df = df.set_index("編號").sort_index()
    ref = stored.set_index("編號").sort_index()
    assert list(df.index) == list(ref.index)
    np.testing.assert_allclose(
        shapely.get_coordinates(df.geometry.values),
        shapely.get_coordinates(ref.geometry.values),
        rtol=0,
        atol=1e-9,
    )
    assert list(df["完整地址"]) == list(ref["完整地址"])


def test_attributes_equal_expected_json(ogc, expected):
    base, _ = ogc
    for sample in expected["layers"][LAYER]["samples"]:
        if sample.get("geometry", True) is None:
            continue  # rows without coordinates are not published
        ((key, value),) = sample["where"].items()
        got = items(base, **{key: value})
        (feature,) = got["features"]
        assert feature["properties"] == sample["attributes"]


def test_owslib_features_bbox_and_limit(ogc, stored):
    base, _ = ogc
    api = Features(f"{base}/ogc")
    assert LAYER in {c["id"] for c in api.collections()["collections"]}
    bbox = [120.6, 24.1, 120.75, 24.25]
    got = api.collection_items(LAYER, bbox=bbox, limit=10000)
    inside = stored[stored.intersects(shapely.box(*bbox))]
    assert got["numberMatched"] == len(inside) > 100
    assert sorted(f["id"] for f in got["features"]) == sorted(inside.index)


def test_bbox_in_tm2_with_bbox_crs(ogc, stored):
    base, _ = ogc
    bbox = [205000.0, 2665000.0, 225000.0, 2685000.0]
    got = items(base, bbox=",".join(map(str, bbox)), **{"bbox-crs": EPSG3826}, limit=10000)
    to_tm2 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
    x, y = to_tm2.transform(stored.geometry.x.values, stored.geometry.y.values)
    inside = stored.index[(x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])]
    # pygeoapi turns the bbox into CRS84 by its corners: allow the few points on the edge.
    ids = {f["id"] for f in got["features"]}
    assert len(ids ^ set(inside)) <= max(3, len(inside) // 200)
    assert len(inside) > 100


def test_paging_follows_next_links_to_every_feature(ogc, stored):
    base, _ = ogc
    url = f"{base}/ogc/collections/{LAYER}/items?f=json&limit=700"
    seen, pages = [], 0
    while url:
        status, _, body = get(url)
        assert status == 200
        page = json.loads(body)
        assert page["numberMatched"] == len(stored)
        seen += [f["id"] for f in page["features"]]
        url = next((lnk["href"] for lnk in page["links"] if lnk["rel"] == "next"), None)
        pages += 1
    assert pages == -(-len(stored) // 700)
    assert seen == sorted(stored.index)


def test_sortby_descending_then_by_id(ogc, stored):
    base, _ = ogc
    got = items(base, sortby="-鄰,編號", limit=50)
    ref = stored.sort_values(["鄰", "編號"], ascending=[False, True]).head(50)
    assert [f["properties"]["編號"] for f in got["features"]] == list(ref["編號"])


def test_properties_selection_and_skip_geometry(ogc):
    base, _ = ogc
    got = items(base, properties="村里,鄰", skipGeometry="true", limit=5)
    for feature in got["features"]:
        assert set(feature["properties"]) == {"村里", "鄰"}
        assert feature["geometry"] is None


def test_property_equality_filter(ogc, stored):
    base, _ = ogc
    got = items(base, 鄉鎮市區="西區", limit=10000)
    assert got["numberMatched"] == int((stored["鄉鎮市區"] == "西區").sum()) > 0
    assert {f["properties"]["鄉鎮市區"] for f in got["features"]} == {"西區"}


def test_crs_3826_output_equals_pyproj_to_the_millimetre(ogc, stored, expected):
    base, _ = ogc
    status, headers, body = get(
        f"{base}/ogc/collections/{LAYER}/items?f=json&limit=10000&crs={EPSG3826}"
    )
    assert status == 200
    assert headers["Content-Crs"] == f"<{EPSG3826}>"
    got = {f["id"]: f["geometry"]["coordinates"] for f in json.loads(body)["features"]}
    to_tm2 = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
    x, y = to_tm2.transform(stored.geometry.x.values, stored.geometry.y.values)
    served = np.array([got[fid] for fid in stored.index])
    assert np.abs(served - np.column_stack([x, y])).max() < 0.001
    # and the source's own TM2 coordinates (expected.json keeps them raw)
    sample = expected["layers"][LAYER]["samples"][0]
    fid = int(stored.index[stored["編號"] == sample["where"]["編號"]][0])
    assert got[fid][0] == pytest.approx(float(sample["raw"]["橫座標"]), abs=0.001)
    assert got[fid][1] == pytest.approx(float(sample["raw"]["縱座標"]), abs=0.001)


def test_epsg4326_output_is_lat_lon(ogc, stored):
    base, _ = ogc
    got = items(base, crs="http://www.opengis.net/def/crs/EPSG/0/4326", limit=1)
    (feature,) = got["features"]
    point = stored.geometry[feature["id"]]
    assert feature["geometry"]["coordinates"] == pytest.approx([point.y, point.x], abs=1e-12)


def test_item_by_id_and_unknown_ids(ogc, stored):
    base, _ = ogc
    fid = int(stored.index[10])
    status, _, body = get(f"{base}/ogc/collections/{LAYER}/items/{fid}?f=json")
    assert status == 200
    feature = json.loads(body)
    assert feature["properties"]["編號"] == stored.loc[fid, "編號"]
    for bad in ("999999999", "abc", "1%20OR%201=1"):
        status, _, _ = get(f"{base}/ogc/collections/{LAYER}/items/{bad}?f=json")
        assert status == 404


def test_queryables_and_schema_list_the_layer_fields(ogc, stored):
    base, _ = ogc
    for path in ("queryables", "schema"):
        status, _, body = get(f"{base}/ogc/collections/{LAYER}/{path}?f=json")
        assert status == 200
        props = json.loads(body)["properties"]
        assert set(props) == {"geometry", *stored.columns.drop("geometry")}
        assert props["鄰"]["type"] == "integer"
        assert props["村里"]["type"] == "string"


CQL2_TEXT = [
    ("鄉鎮市區 = '西區' AND 鄰 >= 10", lambda d: (d["鄉鎮市區"] == "西區") & (d["鄰"] >= 10)),
    ("村里 LIKE '大%'", lambda d: d["村里"].str.startswith("大")),
    ("鄰 BETWEEN 3 AND 5", lambda d: d["鄰"].between(3, 5)),
    ("鄉鎮市區 IN ('北區', '南區')", lambda d: d["鄉鎮市區"].isin(["北區", "南區"])),
    ("巷 IS NOT NULL AND NOT 鄰 < 15", lambda d: d["巷"].notna() & ~(d["鄰"] < 15)),
    ("\"村里\" <> '大溪里' OR 鄰 = 1", lambda d: (d["村里"] != "大溪里") | (d["鄰"] == 1)),
]


@pytest.mark.parametrize(("cql", "select"), CQL2_TEXT, ids=[c for c, _ in CQL2_TEXT])
def test_cql2_text_filters(ogc, stored, cql, select):
    base, _ = ogc
    got = items(base, filter=cql, limit=10000)
    want = stored.index[select(stored).fillna(False).astype(bool)]
    assert got["numberMatched"] == len(want)
    assert sorted(f["id"] for f in got["features"]) == sorted(want)


def test_cql2_spatial_filter(ogc, stored):
    base, _ = ogc
    poly = shapely.box(120.62, 24.12, 120.70, 24.2).buffer(0.01)
    got = items(base, filter=f"S_INTERSECTS(geometry, {poly.wkt})", limit=10000)
    want = stored.index[stored.intersects(poly)]
    assert sorted(f["id"] for f in got["features"]) == sorted(want)
    assert len(want) > 10
    got = items(base, filter="鄰 > 5 AND BBOX(geometry, 120.6, 24.1, 120.7, 24.2)", limit=10000)
    box = shapely.box(120.6, 24.1, 120.7, 24.2)
    want = stored.index[stored.intersects(box) & (stored["鄰"] > 5)]
    assert sorted(f["id"] for f in got["features"]) == sorted(want)


def test_cql2_json_by_post_and_by_get(ogc, stored):
    base, _ = ogc
    cql = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "鄉鎮市區"}, "北區"]},
            {"op": ">", "args": [{"property": "鄰"}, 10]},
        ],
    }
    want = stored.index[(stored["鄉鎮市區"] == "北區") & (stored["鄰"] > 10)]
    api = Features(f"{base}/ogc")
    got = api.collection_items(LAYER, cql=cql, limit=10000)
    assert sorted(f["id"] for f in got["features"]) == sorted(want)
    got = items(base, filter=json.dumps(cql), **{"filter-lang": "cql2-json"}, limit=10000)
    assert sorted(f["id"] for f in got["features"]) == sorted(want)


INJECTIONS = [
    {"filter": "名稱='x' OR 1=1 --"},
    {"filter": "村里='x' OR 1=1"},
    {"filter": "鄉鎮市區 = '西區'; DROP TABLE features"},
    {"filter": "nope = 'x'"},
    {"filter": "\"村里\" = 'x') OR (1=1"},
    {"filter": '"村里"" = \'x\' OR ""1" = 1'},
    {"filter": "\"村里 FROM features --\" = 'x'"},
    {"filter": "sqlite_master.name = 'features'"},
    {
        "filter": json.dumps({"op": "=", "args": [{"property": "1=1 --"}, 1]}),
        "filter-lang": "cql2-json",
    },
    {"properties": '村里,"x" FROM sqlite_master --'},
    {"sortby": "村里; DROP TABLE features"},
    {"鄰": "1 OR 1=1"},
]


@pytest.mark.parametrize("params", INJECTIONS, ids=[str(p) for p in INJECTIONS])
def test_injection_attempts_are_rejected_with_400(ogc, stored, params):
    base, _ = ogc
    query = urllib.parse.urlencode({"f": "json", **params})
    status, _, body = get(f"{base}/ogc/collections/{LAYER}/items?{query}")
    assert status == 400, body[:300]
    assert json.loads(body)["code"] in {"InvalidParameterValue", "InvalidQuery"}
    assert items(base, limit=1)["numberMatched"] == len(stored)


def test_unknown_collection_is_404(ogc):
    base, _ = ogc
    status, _, body = get(f"{base}/ogc/collections/no-such-layer/items?f=json")
    assert status == 404
    assert json.loads(body)["code"] == "NotFound"


def test_cached_collections_answer_gzip_and_plain_alike(ogc, catalog_versions):
    base = ogc[0]
    url = f"{base}/ogc/collections?f=json"
    plain = json.loads(urllib.request.urlopen(url, timeout=60).read())
    for _ in range(2):  # the second answer comes from the cache, compressed once
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert json.loads(gzip.decompress(r.read())) == plain
    assert {c["id"] for c in plain["collections"]} >= set(catalog_versions)
