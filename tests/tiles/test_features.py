"""GetFeatureInfo backend: features near a map pixel, read through the R-tree, and encoders."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely
from lxml import etree
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from tiles.features import (
    ENCODERS,
    Feature,
    FeatureQueryError,
    PointQuery,
    QueriedLayer,
    features_at,
    gml_geometry,
    to_geojson,
    to_gml,
    to_html,
    to_text,
    xml_name,
)

TO_3826 = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
RES = 1e-4  # degrees per pixel in the 4326 queries below (about 10 m)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A stored version as ingest writes it: GPKG table ``features`` in EPSG:4326, R-tree."""
    ring = [(120.60, 24.10), (120.70, 24.10), (120.70, 24.20), (120.60, 24.20)]
    hole = [(120.64, 24.14), (120.66, 24.14), (120.66, 24.16), (120.64, 24.16)]
    frame = gpd.GeoDataFrame(
        {
            "名稱": ["有洞的區", "公園", "河川", "路燈", "路燈二", "空"],
            "人口數": [1200, 0, 0, 0, 0, 0],
            "設立日": pd.to_datetime(["2023-01-31", None, None, None, None, None]),
            "備註": ["<b>粗體</b> & 'x'", None, None, None, None, None],
        },
        geometry=[
            Polygon(ring, [hole]),
            Polygon([(120.645, 24.145), (120.655, 24.145), (120.655, 24.155), (120.645, 24.155)]),
            LineString([(120.80, 24.10), (120.80, 24.20)]),
            Point(120.90, 24.15),
            Point(120.9006, 24.15),
            None,
        ],
        crs="EPSG:4326",
    )
    path = tmp_path_factory.mktemp("features") / "v.gpkg"
    table = pa.table(frame.to_arrow(geometry_encoding="WKB"))
    table = table.set_column(2, "設立日", table.column("設立日").cast(pa.date32()))
    pyogrio.write_arrow(
        table,
        path,
        layer="features",
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Unknown",
        crs="EPSG:4326",
    )
    assert pyogrio.read_info(path, layer="features")["capabilities"]["fast_spatial_filter"]
    return path


def q(x: float, y: float, tolerance: float = 0.0, crs: str = "EPSG:4326", res=(RES, RES)):
    return PointQuery(x=x, y=y, crs=crs, resolution=res, tolerance=tolerance)


def names(features: list[Feature]) -> list[str]:
    return [f.properties["名稱"] for f in features]


def test_a_pixel_inside_a_polygon_finds_it_with_its_chinese_attributes(store):
    found = features_at(store, "zones", q(120.62, 24.12), limit=5)
    assert names(found) == ["有洞的區"]
    f = found[0]
    assert f.layer_id == "zones" and f.distance == 0
    assert f.properties == {
        "名稱": "有洞的區",
        "人口數": 1200,
        "設立日": date(2023, 1, 31),
        "備註": "<b>粗體</b> & 'x'",
    }
    assert f.geometry.equals(Polygon(*_district_rings()))


def _district_rings():
    ring = [(120.60, 24.10), (120.70, 24.10), (120.70, 24.20), (120.60, 24.20)]
    hole = [(120.64, 24.14), (120.66, 24.14), (120.66, 24.16), (120.64, 24.16)]
    return ring, [hole]


def test_a_pixel_in_a_hole_is_not_in_the_polygon_but_in_the_island(store):
    assert names(features_at(store, "zones", q(120.650, 24.150), limit=5)) == ["公園"]
    # in the hole, outside the island: nothing
    assert features_at(store, "zones", q(120.642, 24.158), limit=5) == []


def test_points_are_hit_within_the_tolerance_in_pixels_and_nearest_first(store):
    # 3 px west of 路燈 (10 px from 路燈二), tolerance 5 px: only 路燈
    assert names(features_at(store, "p", q(120.90 - 3 * RES, 24.15, 5), limit=5)) == ["路燈"]
    # tolerance 12 px: both, nearest first
    found = features_at(store, "p", q(120.90 - 3 * RES, 24.15, 12), limit=5)
    assert names(found) == ["路燈", "路燈二"]
    assert found[0].distance == pytest.approx(3, abs=1e-6)
    assert found[1].distance == pytest.approx(9, abs=1e-6)
    # FEATURE_COUNT
    assert names(features_at(store, "p", q(120.9007, 24.15, 12), limit=1)) == ["路燈二"]
    # 8 px away from the nearest, tolerance 5: nothing
    assert features_at(store, "p", q(120.90, 24.15 + 8 * RES, 5), limit=5) == []


def test_tolerance_is_measured_in_pixels_of_each_axis(store):
    # pixels 10x taller than wide: 3 units of RES north is 0.3 px
    tall = (RES, 10 * RES)
    assert names(features_at(store, "p", q(120.90, 24.15 + 3 * RES, 1, res=tall), limit=5)) == [
        "路燈"
    ]
    assert features_at(store, "p", q(120.90 - 3 * RES, 24.15, 1, res=tall), limit=5) == []


def test_lines_are_hit_within_the_tolerance(store):
    assert names(features_at(store, "l", q(120.80 + 2 * RES, 24.15, 3), limit=5)) == ["河川"]
    assert features_at(store, "l", q(120.80 + 5 * RES, 24.15, 3), limit=5) == []


def test_the_query_works_in_twd97_and_finds_the_same_feature(store):
    x, y = TO_3826.transform(120.62, 24.12)
    assert names(features_at(store, "zones", q(x, y, crs="EPSG:3826", res=(10, 10)), 5)) == [
        "有洞的區"
    ]
    px, py = TO_3826.transform(120.90, 24.15)
    # 25 m west of the point with 10 m pixels = 2.5 px (路燈二 is 60 m east)
    hit = features_at(store, "p", q(px - 25, py, 4, crs="EPSG:3826", res=(10, 10)), 5)
    assert names(hit) == ["路燈"]
    assert hit[0].distance == pytest.approx(2.5, abs=0.05)
    miss = features_at(store, "p", q(px - 25, py, 2, crs="EPSG:3826", res=(10, 10)), 5)
    assert miss == []


def test_crs84_is_lon_lat_like_epsg4326(store):
    assert names(features_at(store, "z", q(120.62, 24.12, crs="CRS:84"), 5)) == ["有洞的區"]


def test_the_tolerance_box_is_converted_to_the_stored_crs():
    west, south, east, north = q(220000, 2670000, 4, crs="EPSG:3826", res=(10, 5)).box()
    # the tolerance box plus one pixel (±50 m, ±25 m) lies inside the 4326 box
    back = Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True)
    for dx in (-50, 0, 50):
        for dy in (-25, 0, 25):
            lon, lat = back.transform(220000 + dx, 2670000 + dy)
            assert west <= lon <= east and south <= lat <= north


def test_an_empty_spot_and_a_zero_limit_find_nothing(store):
    assert features_at(store, "z", q(121.5, 25.0, 5), limit=5) == []
    assert features_at(store, "z", q(120.62, 24.12), limit=0) == []


def test_an_unreadable_store_is_a_domain_error(tmp_path):
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"not a geopackage")
    with pytest.raises(FeatureQueryError, match=r"bad\.gpkg"):
        features_at(bad, "broken", q(120.62, 24.12), limit=5)


# --------------------------------------------------------------------------- encoders


@pytest.fixture(scope="module")
def hits(store) -> list[Feature]:
    return features_at(store, "zones", q(120.62, 24.12), 5) + features_at(
        store, "lamps", q(120.90, 24.15, 12), 5
    )


LAYERS = [QueriedLayer("zones", "分區"), QueriedLayer("lamps", "路燈"), QueriedLayer("none", "空")]


def test_geojson_is_a_feature_collection_with_exact_values(hits):
    doc = json.loads(to_geojson(hits, LAYERS))
    assert doc["type"] == "FeatureCollection"
    assert [f["layer"] for f in doc["features"]] == ["zones", "lamps", "lamps"]
    first = doc["features"][0]
    assert first["properties"]["名稱"] == "有洞的區"
    assert first["properties"]["設立日"] == "2023-01-31"
    assert first["id"] == f"zones.{hits[0].fid}"
    assert shapely.geometry.shape(first["geometry"]).equals(hits[0].geometry)


def test_html_is_a_zh_tw_table_with_every_value_escaped(hits):
    page = to_html(hits, LAYERS)
    assert '<html lang="zh-Hant-TW">' in page
    assert "&lt;b&gt;粗體&lt;/b&gt; &amp; &#x27;x&#x27;" in page
    assert "<b>粗體" not in page
    assert "<th>名稱</th>" in page and "<td>有洞的區</td>" in page
    assert "空（none）</h2><p>此位置查無圖徵</p>" in page
    etree.fromstring(page.encode(), etree.HTMLParser())


def test_plain_text_lists_name_value_lines_per_layer(hits):
    text = to_text(hits, LAYERS)
    assert "圖層 zones（分區）：1 筆圖徵" in text
    assert "名稱 = 有洞的區" in text and "設立日 = 2023-01-31" in text
    assert "圖層 lamps（路燈）：2 筆圖徵" in text
    assert "圖層 none（空）：0 筆圖徵" in text


def test_gml_is_well_formed_with_layer_named_members_and_reads_in_gdal(hits, tmp_path):
    doc = to_gml(hits, LAYERS)
    root = etree.fromstring(doc.encode())
    ns = {"gml": "http://www.opengis.net/gml", "gp": "urn:x-geoportal:layers"}
    members = root.findall("gml:featureMember/*", ns)
    assert [etree.QName(m).localname for m in members] == ["zones", "lamps", "lamps"]
    assert members[0].findtext("gp:名稱", namespaces=ns) == "有洞的區"
    assert members[0].findtext("gp:備註", namespaces=ns) == "<b>粗體</b> & 'x'"
    # GDAL's GML driver (a real reader) reads the zones member back
    path = tmp_path / "info.gml"
    path.write_text(doc, encoding="utf-8")
    frame = pyogrio.read_dataframe(path, layer="zones")
    assert list(frame["名稱"]) == ["有洞的區"]
    assert frame.geometry.iloc[0].equals(hits[0].geometry)


def test_gml_geometries_cover_every_type():
    for geom in (
        Point(1, 2),
        LineString([(0, 0), (1, 1)]),
        Polygon(*_district_rings()),
        shapely.MultiPoint([(0, 0), (1, 1)]),
        shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 3)]]),
        shapely.MultiPolygon([Polygon(*_district_rings())]),
        shapely.GeometryCollection([Point(0, 0), LineString([(0, 0), (1, 1)])]),
    ):
        etree.fromstring(
            f'<r xmlns:gml="http://www.opengis.net/gml">{gml_geometry(geom)}</r>'.encode()
        )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("名稱", "名稱"),
        ("人口 數(人)", "人口_數_人_"),
        ("1級", "_1級"),
        ("a:b", "a_b"),
        ("-x", "_-x"),
    ],
)
def test_attribute_names_become_valid_xml_names(name, expected):
    assert xml_name(name) == expected
    etree.Element(expected)


def test_every_info_format_has_an_encoder_and_a_media_type():
    for key in ("application/json", "text/html", "text/plain", "application/vnd.ogc.gml"):
        encoder, media = ENCODERS[key]
        assert callable(encoder) and "/" in media
