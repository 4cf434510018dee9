"""Real agency files (../shared/data/real, read in place): right position, count and text.

Every expectation here comes from an oracle other than the code under test: the raw bytes
decoded by Python's own codecs, the files' own coordinate columns, the KML parsed by
ElementTree, the same boundary stored in two CRSs, or the real names of Tainan's villages.
"""

from __future__ import annotations

import csv
import json
import struct
from xml.etree import ElementTree

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from ingest.pipeline import read_source

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real(real_data):
    return real_data


def _one(path, **kw):
    (layer,) = read_source(path, **kw)
    return layer


def _dbf_records(path) -> tuple[list[str], list[list[bytes]]]:
    """Field names and raw field bytes of every record, parsed with struct (the oracle)."""
    data = path.read_bytes()
    n, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields = []
    for i in range(32, header_len - 1, 32):
        if data[i] == 0x0D:
            break
        fields.append((data[i : i + 11].split(b"\0")[0].decode("ascii"), data[i + 16]))
    rows = []
    for r in range(n):
        rec = data[header_len + r * record_len + 1 : header_len + (r + 1) * record_len]
        pos, row = 0, []
        for _, width in fields:
            row.append(rec[pos : pos + width].strip())
            pos += width
        rows.append(row)
    return [f[0] for f in fields], rows


def _inside(bounds, box) -> bool:
    return (
        box[0] <= bounds[0] and bounds[2] <= box[2] and box[1] <= bounds[1] and bounds[3] <= box[3]
    )


def test_tainan_villages_big5_with_vendor_characters(real):
    path = real / "gipong-shp2geojson/10tnvillage/10_tn-village.shp"
    layer = _one(path)
    assert layer.features_out == 752
    assert layer.source_crs == "EPSG:3826" and layer.decision("crs").source == "prj-params"
    assert layer.decision("encoding").value == "cp950"
    assert _inside(layer.frame.total_bounds, (119.9, 22.8, 120.7, 23.5))  # Tainan
    names, rows = _dbf_records(path.with_suffix(".dbf"))
    v, vid = names.index("VILLAGE"), names.index("V_ID")
    by_id = dict(zip(layer.frame["V_ID"], layer.frame["VILLAGE"], strict=True))
    plain = 0
    for row in rows:
        try:
            truth = row[v].decode("cp950")
        except UnicodeDecodeError:
            continue
        assert by_id[row[vid].decode("ascii")] == truth
        plain += 1
    assert plain == 744
    # The eight records with vendor bytes: Tainan's real village names.
    assert by_id["67000150-007"] == "塩埕里"
    assert by_id["67000310-029"] == "塩洲里"
    assert by_id["67000310-010"] == "塩行里"
    assert by_id["67000350-019"] == "塩田里"
    assert by_id["67000150-020"] == "槺榔里"
    assert by_id["67000220-005"] == "玉峯里"
    assert by_id["67000180-016"] == "山脚里"
    # The one code no trustworthy table has is decoded but reported, never silently.
    flagged = layer.repair("vendor-char-hkscs")
    assert flagged is not None and flagged.count >= 1
    assert "\ufffd" not in "".join(layer.frame["VILLAGE"])


def test_taichung_zoning_geojson_with_legacy_crs_member(real):
    path = real / "godspeedhuang-Landuse_GeoJSON_Web/static/B0102.json"
    layer = _one(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert layer.features_in == len(doc["features"]) == 259
    assert layer.source_crs == "EPSG:3826" and layer.decision("crs").source.startswith("crs-member")
    assert _inside(layer.frame.total_bounds, (120.70, 24.13, 120.83, 24.24))  # Dakeng
    assert list(layer.frame["計畫_1"].unique()) == [doc["features"][0]["properties"]["計畫_1"]]
    # Positions: the first feature's centroid, transformed independently with pyproj.
    first = shapely.geometry.shape(doc["features"][0]["geometry"]).centroid
    lon, lat = Transformer.from_crs(3826, 4326, always_xy=True).transform(first.x, first.y)
    got = layer.frame.geometry.iloc[0].centroid
    assert abs(got.x - lon) < 1e-5 and abs(got.y - lat) < 1e-5


def test_scenic_spots_gpkg_match_their_own_lat_lon_columns(real):
    layer = _one(real / "ChiaJung-Yeh-Spatial-Analysis/ScenicSpot.gpkg")
    assert layer.features_out == 94 and layer.source_crs == "EPSG:3826"
    dx = np.abs(layer.frame.geometry.x - layer.frame["PositionLon"].astype(float))
    dy = np.abs(layer.frame.geometry.y - layer.frame["PositionLat"].astype(float))
    assert float(np.median(np.hypot(dx * 101_000, dy * 111_000))) < 5  # metres


def test_convenience_stores_big5_csv(real):
    path = real / "ChiaJung-Yeh-Spatial-Analysis/data/convenience_store/convenience_store.csv"
    layer = _one(path)
    with open(path, encoding="cp950", newline="") as f:
        rows = list(csv.DictReader(f))
    assert layer.features_out == len(rows) == 11_368
    assert layer.decision("encoding").value == "cp950"
    assert list(layer.frame["store"][:50]) == [r["store"] for r in rows[:50]]
    assert _inside(layer.frame.total_bounds, (118.0, 21.8, 122.1, 26.4))


def test_taipei_mrt_utf8_dbf_without_cpg_is_not_mojibake(real):
    path = real / "ChiaJung-Yeh-Spatial-Analysis/data/taipei_mrt/taipei_mrt_route.shp"
    assert not path.with_suffix(".cpg").exists()
    layer = _one(path)
    assert layer.decision("encoding").value == "utf-8"
    names, rows = _dbf_records(path.with_suffix(".dbf"))
    i = names.index("RAILNAME")
    assert list(layer.frame["RAILNAME"]) == [r[i].decode("utf-8") or None for r in rows]
    assert "板南線" in set(layer.frame["RAILNAME"])
    assert _inside(layer.frame.total_bounds, (121.3, 24.9, 121.7, 25.3))  # Taipei


def test_tainan_addresses_tm2_csv_with_missing_coordinates(real):
    path = real / "kiang-tainan_basecode/house/data/raw.csv"
    layer = _one(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    with_xy = [r for r in rows if r["X坐標"].strip() and r["Y坐標"].strip()]
    assert layer.features_in == len(rows) == 280
    assert layer.features_out == len(with_xy) == 274
    assert layer.repair("drop-null-geometry").count == 6
    x, y = float(with_xy[0]["X坐標"]), float(with_xy[0]["Y坐標"])
    lon, lat = Transformer.from_crs(3826, 4326, always_xy=True).transform(x, y)
    got = layer.frame.geometry.iloc[0]
    assert abs(got.x - lon) < 1e-6 and abs(got.y - lat) < 1e-6


def test_my_maps_kml_folders_are_sublayers_with_chinese_attributes(real):
    path = real / "kiang-tainan_basecode/doc.kml"
    layers = read_source(path)
    ns = "{http://www.opengis.net/kml/2.2}"
    folders = ElementTree.parse(path).getroot().find(f"{ns}Document").findall(f"{ns}Folder")
    assert [lyr.sublayer for lyr in layers] == [f.findtext(f"{ns}name") for f in folders]
    for lyr, folder in zip(layers, folders, strict=True):
        assert lyr.features_out == len(folder.findall(f".//{ns}Placemark"))
    districts = layers[2]
    assert "說明" in districts.frame.columns  # GDAL would have turned this name into "______"
    assert all(_inside(lyr.frame.total_bounds, (120.0, 22.8, 120.6, 23.4)) for lyr in layers)


def test_same_boundary_in_two_crss_lands_in_the_same_place(real):
    a, b = read_source(real / "mutolisp-landuse_map/Landuse2017-2021.gpkg")
    assert {a.source_crs, b.source_crs} == {"EPSG:4326", "EPSG:32650"}
    assert np.allclose(a.frame.total_bounds, b.frame.total_bounds, atol=1e-5)


def test_village_topojson_and_legacy_counties(real):
    villages = _one(real / "g0v-twgeojson/json/twVillage1982.topo.json")
    assert villages.features_out == 7599 and villages.source_crs == "EPSG:4326"
    assert villages.frame.geometry.is_valid.all()
    counties = _one(real / "g0v-twgeojson/legacy/twCounty1982.json")
    doc = json.loads((real / "g0v-twgeojson/legacy/twCounty1982.json").read_text(encoding="utf-8"))
    assert counties.features_out == len(doc["features"])
    assert counties.repair("close-ring").count > 0
    assert counties.frame.geometry.is_valid.all()
    assert _inside(counties.frame.total_bounds, (118.0, 21.8, 122.1, 26.4))


def test_clean_taipei_districts_baseline(real):
    layer = _one(real / "mo3www-streamlit-3Dwebmaps/臺北市區界圖_20220915")
    assert layer.features_out == 12 and layer.source_crs == "EPSG:3826"
    assert layer.decision("encoding").source == "cpg"
    assert _inside(layer.frame.total_bounds, (121.4, 24.9, 121.7, 25.25))
    names, rows = _dbf_records(
        next((real / "mo3www-streamlit-3Dwebmaps/臺北市區界圖_20220915").glob("*.dbf"))
    )
    text_cols = [c for c in names if c in layer.frame.columns and layer.frame[c].dtype == object]
    for c in text_cols:
        i = names.index(c)
        assert list(layer.frame[c]) == [r[i].decode("utf-8") or None for r in rows]


def test_dems_with_odd_nodata_and_custom_wkt(real, tmp_path):
    import rasterio

    lanyu = _one(real / "mutolisp-twmap/inst/extdata/LanyuDTM.tif", work=tmp_path / "a")
    assert lanyu.source_crs == "EPSG:4326"
    dem = _one(real / "yarungrung-streamlit-3Dwebmaps/demclip1.tif", work=tmp_path / "b")
    assert dem.source_crs == "EPSG:3826" and dem.decision("crs").source == "geotiff-params"
    with (
        rasterio.open(dem.raster_path) as ds,
        rasterio.open(real / "yarungrung-streamlit-3Dwebmaps/demclip1.tif") as src,
    ):
        assert ds.nodata == -9999 and ds.crs.to_epsg() == 3826
        out, orig = ds.read(1), src.read(1)
        valid = orig > -1e30
        assert np.array_equal(out != -9999, valid)
        assert np.allclose(out[valid], orig[valid], atol=1e-3)


def test_kmz_reads_like_its_kml(real, tmp_path):
    import zipfile

    kmz = tmp_path / "tainan.kmz"
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.write(real / "kiang-tainan_basecode/doc.kml", "doc.kml")
    from_kml = read_source(real / "kiang-tainan_basecode/doc.kml")
    from_kmz = read_source(kmz)
    assert [lyr.sublayer for lyr in from_kmz] == [lyr.sublayer for lyr in from_kml]
    assert [lyr.features_out for lyr in from_kmz] == [lyr.features_out for lyr in from_kml]


def test_orphan_dbf_is_a_table_without_geometry(real, tmp_path):
    import shutil

    dbf = tmp_path / "村里.dbf"
    shutil.copy(real / "gipong-shp2geojson/10tnvillage/10_tn-village.dbf", dbf)
    layer = _one(dbf)
    assert layer.kind == "table" and layer.source_crs is None
    assert len(layer.frame) == 752 and "geometry" not in layer.frame.columns
    assert layer.decision("encoding").value == "cp950"
    assert "塩埕里" in set(layer.frame["VILLAGE"])
