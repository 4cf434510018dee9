"""The exporter: every format written from small stores built in code, read back with real readers.

Readers: GDAL (pyogrio) for GeoJSON, GeoPackage, KML and shapefiles, the ``json``, ``csv``,
``zipfile`` and ``xml.etree`` modules for the raw files, pyarrow and geopandas for Parquet.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import xml.etree.ElementTree as ET
import zipfile
from contextlib import closing
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from pyproj import CRS

from catalog.errors import CatalogError
from catalog.export import FORMATS, ExportError, export_layer, shapefile_field_names

LAYER = "tc-villages"
KML_NS = {"kml": "http://www.opengis.net/kml/2.2"}

# Three rows: full values (rare characters, a `_raw` column), nulls, and text that CSV must quote.
ROWS = [
    {
        "編號": 1,
        "名稱": "後廍里",
        "人口數": 1234.5,
        "設立日": date(2023, 1, 31),
        "更新時間": datetime(2023, 1, 31, 12, 34, 56),
        "人口數_raw": "1,234.5 人",
        "設立日期時間": "民國112年1月31日",
        "設立日期時間備註": "補登",
    },
    {
        "編號": 2,
        "名稱": "𤩎村",
        "人口數": None,
        "設立日": None,
        "更新時間": None,
        "人口數_raw": None,
        "設立日期時間": None,
        "設立日期時間備註": None,
    },
    {
        "編號": None,
        "名稱": '中正路 "一段",\n二段',
        "人口數": 3.25,
        "設立日": date(1999, 12, 1),
        "更新時間": datetime(2020, 2, 29, 0, 0, 1),
        "人口數_raw": None,
        "設立日期時間": None,
        "設立日期時間備註": None,
    },
]
TYPES = {
    "編號": pa.int64(),
    "名稱": pa.string(),
    "人口數": pa.float64(),
    "設立日": pa.date32(),
    "更新時間": pa.timestamp("ms"),
    "人口數_raw": pa.string(),
    "設立日期時間": pa.string(),
    "設立日期時間備註": pa.string(),
}
FIELDS = list(TYPES)
# The stored datetimes as the text formats write them (the store's ISO 8601 text).
DATETIME_TEXT = ["2023-01-31T12:34:56", None, "2020-02-29T00:00:01"]
SHP_NAMES = {
    "編號": "編號",
    "名稱": "名稱",
    "人口數": "人口數",
    "設立日": "設立日",
    "更新時間": "更新時",
    "人口數_raw": "人口_raw",
    "設立日期時間": "設立_1",
    "設立日期時間備註": "設立_2",
}

HOLED = (
    "((120.5 24.0, 120.8 24.0, 120.8 24.3, 120.5 24.3, 120.5 24.0), "
    "(120.6 24.1, 120.6 24.2, 120.7 24.2, 120.7 24.1, 120.6 24.1))"
)
GEOMETRIES = {
    "Point": [
        "POINT (120.6736111 24.1477778)",
        "POINT (121.0000001 23.9)",
        "POINT (120.5 22.5)",
    ],
    "MultiPoint": [
        "MULTIPOINT ((120.1 23.0), (120.2 23.1))",
        "MULTIPOINT ((120.3 23.3))",
        "MULTIPOINT ((120.4 23.4), (120.5 23.5), (120.6 23.6))",
    ],
    "LineString": [
        "LINESTRING (120.6 24.1, 120.7 24.2, 120.8 24.15)",
        "LINESTRING (120.5 24.0, 120.51 24.01)",
        "LINESTRING (121.1 24.9, 121.2 24.8)",
    ],
    "MultiLineString": [
        "MULTILINESTRING ((120.6 24.1, 120.7 24.2), (120.75 24.1, 120.8 24.0))",
        "MULTILINESTRING ((120.5 24.0, 120.51 24.01))",
        "MULTILINESTRING ((121.1 24.9, 121.2 24.8), (121.3 24.7, 121.4 24.6))",
    ],
    "Polygon": [
        "POLYGON ((120.6 24.1, 120.7 24.1, 120.7 24.2, 120.6 24.2, 120.6 24.1))",
        f"POLYGON {HOLED}",
        "POLYGON ((121.0 23.0, 121.1 23.0, 121.05 23.1, 121.0 23.0))",
    ],
    "MultiPolygon": [
        f"MULTIPOLYGON ({HOLED}, ((121.2 24.2, 121.4 24.2, 121.4 24.4, 121.2 24.2)))",
        "MULTIPOLYGON (((120.6 24.1, 120.7 24.1, 120.7 24.2, 120.6 24.2, 120.6 24.1)))",
        f"MULTIPOLYGON ({HOLED})",
    ],
}


def _write_store(
    path: Path,
    columns: dict[str, pa.Array],
    wkt: list[str | None] | None = None,
    geometry_type: str | None = None,
) -> Path:
    """A store GeoPackage (table ``features``), as ingest writes it."""
    table = pa.table(columns)
    if wkt is None:
        pyogrio.write_arrow(table, path, layer="features", driver="GPKG")
        return path
    wkb = shapely.to_wkb(np.array([shapely.from_wkt(w) if w else None for w in wkt]))
    table = table.append_column("geometry", pa.array(wkb, pa.binary()))
    pyogrio.write_arrow(
        table,
        path,
        layer="features",
        driver="GPKG",
        geometry_name="geometry",
        geometry_type=geometry_type,
        crs="EPSG:4326",
    )
    return path


def _attributes() -> dict[str, pa.Array]:
    return {name: pa.array([r[name] for r in ROWS], type) for name, type in TYPES.items()}


@pytest.fixture(scope="module")
def export_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One store per geometry type (same attributes), plus "table" without geometry."""
    folder = tmp_path_factory.mktemp("export-stores")
    stores = {
        kind: _write_store(folder / f"{kind}.gpkg", _attributes(), wkt, kind)
        for kind, wkt in GEOMETRIES.items()
    }
    stores["table"] = _write_store(folder / "table.gpkg", _attributes())
    return stores


def _export(store: Path, fmt: str, folder: Path, kind: str = "vector") -> Path:
    return export_layer(store, kind, fmt, folder / f"{LAYER}{FORMATS[fmt].suffix}", layer_id=LAYER)


def _read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _read_geometries(path: Path, fmt: str) -> list[shapely.Geometry]:
    """The geometries of an export, in feature order, read by a real reader of the format."""
    if fmt == "csv":
        rows = _read_csv(path)
        if "wkt" in rows[0]:
            return [shapely.from_wkt(r["wkt"]) for r in rows]
        return [shapely.Point(float(r["lon"]), float(r["lat"])) for r in rows]
    if fmt == "parquet":
        return list(gpd.read_parquet(path).geometry)
    source = f"/vsizip/{path}/{LAYER}.shp" if fmt == "shp.zip" else path
    return list(shapely.force_2d(pyogrio.read_dataframe(source).geometry.values))


def _assert_same_geometry(got: shapely.Geometry, want: shapely.Geometry) -> None:
    assert shapely.hausdorff_distance(got, want) < 1e-6, (got.wkt, want.wkt)
    assert got.area == pytest.approx(want.area, abs=1e-9)
    assert shapely.get_num_geometries(got) == shapely.get_num_geometries(want)
    holes = shapely.get_num_interior_rings(shapely.get_parts(got)).sum()
    assert holes == shapely.get_num_interior_rings(shapely.get_parts(want)).sum()


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_download_format():
    assert list(FORMATS) == ["geojson", "csv", "kml", "gpkg", "shp.zip", "parquet"]
    assert {name: (f.media_type, f.suffix) for name, f in FORMATS.items()} == {
        "geojson": ("application/geo+json", ".geojson"),
        "csv": ("text/csv; charset=utf-8", ".csv"),
        "kml": ("application/vnd.google-earth.kml+xml", ".kml"),
        "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
        "shp.zip": ("application/zip", ".shp.zip"),
        "parquet": ("application/vnd.apache.parquet", ".parquet"),
    }
    assert all(name == f.name for name, f in FORMATS.items())
    assert [n for n, f in FORMATS.items() if f.needs_geometry] == ["kml", "shp.zip"]


# --------------------------------------------------------------------------- per format


def test_geojson_is_rfc7946_utf8_with_iso_dates(export_stores, tmp_path):
    out = _export(export_stores["Point"], "geojson", tmp_path)
    text = out.read_text(encoding="utf-8")
    assert "後廍里" in text and "𤩎村" in text and "\\u" not in text
    doc = json.loads(text)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    props = [f["properties"] for f in doc["features"]]
    assert [p["編號"] for p in props] == [1, 2, None]
    assert [p["名稱"] for p in props] == [r["名稱"] for r in ROWS]
    assert [p["人口數"] for p in props] == [1234.5, None, 3.25]
    assert [p["設立日"] for p in props] == ["2023-01-31", None, "1999-12-01"]
    assert [p["更新時間"] for p in props] == DATETIME_TEXT
    assert [p["人口數_raw"] for p in props] == ["1,234.5 人", None, None]
    coords = [f["geometry"]["coordinates"] for f in doc["features"]]
    assert coords == [[120.6736111, 24.1477778], [121.0000001, 23.9], [120.5, 22.5]]
    assert len(pyogrio.read_dataframe(out)) == 3


def test_geojson_polygons_wind_exterior_rings_counterclockwise(export_stores, tmp_path):
    doc = json.loads(_export(export_stores["Polygon"], "geojson", tmp_path).read_bytes())
    for feature in doc["features"]:
        rings = [shapely.LinearRing(r) for r in feature["geometry"]["coordinates"]]
        assert rings[0].is_ccw and not any(r.is_ccw for r in rings[1:])


def test_csv_has_bom_crlf_and_lon_lat_columns(export_stores, tmp_path):
    out = _export(export_stores["Point"], "csv", tmp_path)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") >= 4 and b"\r\n" not in raw.replace(b"\r\n", b"")
    rows = _read_csv(out)
    assert list(rows[0]) == [*FIELDS, "lon", "lat"]
    assert [r["名稱"] for r in rows] == [r["名稱"] for r in ROWS]
    assert [r["編號"] for r in rows] == ["1", "2", ""]
    assert [r["人口數"] for r in rows] == ["1234.5", "", "3.25"]
    assert [r["設立日"] for r in rows] == ["2023-01-31", "", "1999-12-01"]
    assert [r["更新時間"] for r in rows] == [t or "" for t in DATETIME_TEXT]
    assert [r["人口數_raw"] for r in rows] == ["1,234.5 人", "", ""]
    assert [(r["lon"], r["lat"]) for r in rows] == [
        ("120.6736111", "24.1477778"),
        ("121.0000001", "23.9"),
        ("120.5", "22.5"),
    ]


def test_csv_of_other_geometry_types_has_a_wkt_column(export_stores, tmp_path):
    rows = _read_csv(_export(export_stores["MultiPolygon"], "csv", tmp_path))
    assert list(rows[0]) == [*FIELDS, "wkt"]
    assert rows[0]["wkt"].startswith("MULTIPOLYGON (((120.5 24, 120.8 24, ")


def test_csv_geometry_columns_never_shadow_attributes(tmp_path):
    store = _write_store(
        tmp_path / "s.gpkg",
        {"lon": pa.array(["東經"]), "lat": pa.array(["北緯"])},
        ["POINT (120.1 23.2)"],
        "Point",
    )
    rows = _read_csv(_export(store, "csv", tmp_path))
    assert rows == [{"lon": "東經", "lat": "北緯", "lon_1": "120.1", "lat_1": "23.2"}]


def test_kml_has_a_named_placemark_per_feature_with_extended_data(export_stores, tmp_path):
    out = _export(export_stores["Point"], "kml", tmp_path)
    placemarks = ET.parse(out).getroot().findall(".//kml:Placemark", KML_NS)
    assert len(placemarks) == 3
    names = [p.findtext("kml:name", namespaces=KML_NS) for p in placemarks]
    assert names == [r["名稱"] for r in ROWS]
    data = [
        {d.get("name"): d.text for d in p.iterfind(".//kml:SimpleData", KML_NS)} for p in placemarks
    ]
    assert data[0] == {
        "編號": "1",
        "名稱": "後廍里",
        "人口數": "1234.5",
        "設立日": "2023-01-31",
        "更新時間": "2023-01-31T12:34:56",
        "人口數_raw": "1,234.5 人",
        "設立日期時間": "民國112年1月31日",
        "設立日期時間備註": "補登",
    }
    assert data[1] == {"編號": "2", "名稱": "𤩎村"}  # nulls are left out
    coords = [p.findtext(".//kml:coordinates", namespaces=KML_NS).strip() for p in placemarks]
    assert coords[0] == "120.6736111,24.1477778"
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == 3 and list(frame["名稱"]) == [r["名稱"] for r in ROWS]


def test_kml_keeps_columns_called_name_and_description_in_extended_data(tmp_path):
    columns = {
        "name": pa.array(["臺中公園"]),
        "Description": pa.array(["湖心亭"]),
        "類別": pa.array(["公園"]),
    }
    store = _write_store(tmp_path / "s.gpkg", columns, ["POINT (120.68 24.14)"], "Point")
    placemark = ET.parse(_export(store, "kml", tmp_path)).find(".//kml:Placemark", KML_NS)
    data = {d.get("name"): d.text for d in placemark.iterfind(".//kml:SimpleData", KML_NS)}
    # GDAL's KML layers always have a "Name" field; a column "name" can only land in it
    assert {k.casefold(): v for k, v in data.items()} == {
        "name": "臺中公園",
        "description": "湖心亭",
        "類別": "公園",
    }
    assert data["Description"] == "湖心亭"
    assert placemark.findtext("kml:name", namespaces=KML_NS) == "臺中公園"
    assert placemark.find("kml:description", KML_NS) is None


def test_kml_without_a_name_column_has_no_placemark_names(tmp_path):
    store = _write_store(
        tmp_path / "s.gpkg", {"門牌": pa.array(["一段1號"])}, ["POINT (120 23)"], "Point"
    )
    placemark = ET.parse(_export(store, "kml", tmp_path)).find(".//kml:Placemark", KML_NS)
    assert placemark.find("kml:name", KML_NS) is None
    assert placemark.find(".//kml:SimpleData", KML_NS).text == "一段1號"


def test_gpkg_is_named_after_the_layer_with_a_spatial_index(export_stores, tmp_path):
    out = _export(export_stores["MultiPolygon"], "gpkg", tmp_path)
    assert pyogrio.list_layers(out).tolist() == [[LAYER, "MultiPolygon"]]
    table = pyogrio.read_arrow(out, layer=LAYER)[1]
    assert table.column_names[: len(FIELDS)] == FIELDS
    assert table.schema.field("設立日").type == pa.date32()
    assert pa.types.is_timestamp(table.schema.field("更新時間").type)
    assert table.column("編號").to_pylist() == [1, 2, None]
    assert table.column("名稱").to_pylist() == [r["名稱"] for r in ROWS]
    assert table.column("設立日").to_pylist() == [r["設立日"] for r in ROWS]
    assert pyogrio.read_info(out, layer=LAYER)["crs"] == "EPSG:4326"
    with closing(sqlite3.connect(out)) as db:
        rtree = db.execute(
            "SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_rtree_index'"
        ).fetchall()
    assert rtree == [(LAYER,)]


def test_shp_zip_holds_utf8_shapefile_prj_and_field_map(export_stores, tmp_path):
    out = _export(export_stores["Point"], "shp.zip", tmp_path)
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"{LAYER}.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg")] + ["fields.csv"]
        )
        assert all(n.isascii() or i.flag_bits & 0x800 for n, i in archive.NameToInfo.items())
        assert archive.read(f"{LAYER}.cpg").decode() == "UTF-8"
        prj = archive.read(f"{LAYER}.prj").decode()
        mapping = list(csv.reader(io.StringIO(archive.read("fields.csv").decode("utf-8-sig"))))
    assert prj.startswith('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984"')
    assert CRS.from_wkt(prj).equals(CRS.from_epsg(4326), ignore_axis_order=True)
    assert mapping[0] == ["original", "shapefile", "type"]
    assert {row[0]: row[1] for row in mapping[1:]} == SHP_NAMES
    assert mapping[5] == ["更新時間", "更新時", "datetime (ISO 8601 text)"]

    source = f"/vsizip/{out}/{LAYER}.shp"
    info = pyogrio.read_info(source)
    assert list(info["fields"]) == list(SHP_NAMES.values())
    assert info["encoding"] == "UTF-8" and info["geometry_type"] == "Point"
    frame = pyogrio.read_dataframe(source)
    assert list(frame["名稱"]) == [r["名稱"] for r in ROWS]
    assert list(frame["人口_raw"].fillna("")) == ["1,234.5 人", "", ""]
    assert list(frame["更新時"].fillna("")) == [t or "" for t in DATETIME_TEXT]
    assert [d.date() if d == d else None for d in frame["設立日"]] == [r["設立日"] for r in ROWS]
    assert list(frame["設立_1"].fillna("")) == ["民國112年1月31日", "", ""]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["設立日期時間"], ["設立日"]),  # 18 bytes cut to 9: a 4th character would need 12
        (["𤩎𤩎𤩎"], ["𤩎𤩎"]),  # 4-byte characters: 8 bytes
        (["人口數_raw"], ["人口_raw"]),
        (["設立日期時間", "設立日"], ["設立_1", "設立日"]),  # the name that fits keeps it
        (["abcdefghijk", "abcdefghijz", "abcdefghijq"], ["abcdefghij", "abcdefgh_1", "abcdefgh_2"]),
        (["NAME", "name"], ["NAME", "name_1"]),  # DBF names ignore case
        (["短"], ["短"]),
    ],
)
def test_shapefile_field_names_cut_on_character_boundaries(names, expected):
    mapped = shapefile_field_names(names)
    assert [mapped[n] for n in names] == expected
    assert all(len(v.encode("utf-8")) <= 10 for v in mapped.values())


def test_parquet_is_geoparquet_with_crs(export_stores, tmp_path):
    out = _export(export_stores["Point"], "parquet", tmp_path)
    schema = pq.read_schema(out)
    geo = json.loads(schema.metadata[b"geo"])
    assert geo["version"].startswith("1.") and geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Point"]
    assert CRS.from_json_dict(column["crs"]).to_epsg() == 4326
    assert column["bbox"] == [120.5, 22.5, 121.0000001, 24.1477778]
    assert schema.field("geometry").type == pa.binary()

    table = pq.read_table(out)
    assert table.column_names == [*FIELDS, "geometry"]
    assert table.column("編號").to_pylist() == [1, 2, None]
    assert table.column("名稱").to_pylist() == [r["名稱"] for r in ROWS]
    assert table.column("設立日").to_pylist() == [r["設立日"] for r in ROWS]
    stamps = table.column("更新時間").to_pylist()
    assert [s.replace(tzinfo=None) if s else None for s in stamps] == [r["更新時間"] for r in ROWS]
    frame = gpd.read_parquet(out)
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry[0].equals(shapely.Point(120.6736111, 24.1477778))


# --------------------------------------------------------------------------- geometry types


@pytest.mark.parametrize("fmt", ["geojson", "csv", "kml", "gpkg", "shp.zip", "parquet"])
@pytest.mark.parametrize("geometry_type", list(GEOMETRIES))
def test_every_geometry_type_round_trips_through_every_format(
    export_stores, tmp_path, geometry_type, fmt
):
    out = _export(export_stores[geometry_type], fmt, tmp_path)
    got = _read_geometries(out, fmt)
    want = [shapely.from_wkt(w) for w in GEOMETRIES[geometry_type]]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        _assert_same_geometry(g, w)
    assert list(tmp_path.iterdir()) == [out]  # no temporary left over


def test_shp_zip_promotes_points_mixed_with_multipoints(tmp_path):
    store = _write_store(
        tmp_path / "s.gpkg",
        {"名稱": pa.array(["單點", "多點"])},
        ["POINT (120 23)", "MULTIPOINT ((120 23), (121 24))"],
        "Unknown",
    )
    out = _export(store, "shp.zip", tmp_path)
    source = f"/vsizip/{out}/{LAYER}.shp"
    assert pyogrio.read_info(source)["geometry_type"] == "MultiPoint"
    frame = pyogrio.read_dataframe(source)
    assert [g.wkt for g in frame.geometry] == [
        "MULTIPOINT ((120 23))",
        "MULTIPOINT ((120 23), (121 24))",
    ]


def test_shp_zip_splits_mixed_geometry_families(tmp_path):
    wkt = [
        "POINT (120 23)",
        "LINESTRING (120 23, 121 24)",
        "POLYGON ((120 23, 121 23, 121 24, 120 23))",
        "MULTIPOLYGON (((122 23, 123 23, 123 24, 122 23)))",
        "MULTIPOINT ((120.5 23.5))",
    ]
    store = _write_store(
        tmp_path / "s.gpkg", {"名稱": pa.array(list("甲乙丙丁戊"))}, wkt, "Unknown"
    )
    out = _export(store, "shp.zip", tmp_path)
    with zipfile.ZipFile(out) as archive:
        stems = sorted({Path(n).stem for n in archive.namelist()} - {"fields"})
    assert stems == [f"{LAYER}_line", f"{LAYER}_point", f"{LAYER}_polygon"]
    names = {
        family: list(pyogrio.read_dataframe(f"/vsizip/{out}/{LAYER}_{family}.shp")["名稱"])
        for family in ("point", "line", "polygon")
    }
    assert names == {"point": ["甲", "戊"], "line": ["乙"], "polygon": ["丙", "丁"]}


def test_shp_zip_refuses_geometry_collections_and_leaves_nothing(tmp_path):
    store = _write_store(
        tmp_path / "s.gpkg",
        {"名稱": pa.array(["集合"])},
        ["GEOMETRYCOLLECTION (POINT (120 23), LINESTRING (120 23, 121 24))"],
        "GeometryCollection",
    )
    folder = tmp_path / "out"
    with pytest.raises(ExportError, match=r"GeometryCollection.*gpkg, geojson, kml or parquet"):
        _export(store, "shp.zip", folder)
    assert list(folder.iterdir()) == []
    assert len(pyogrio.read_dataframe(_export(store, "kml", folder))) == 1


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize("fmt", ["csv", "geojson", "gpkg", "parquet"])
def test_table_exports_attributes_only(export_stores, tmp_path, fmt):
    out = _export(export_stores["table"], fmt, tmp_path, kind="table")
    if fmt == "csv":
        rows = _read_csv(out)
        assert list(rows[0]) == FIELDS
        assert [r["名稱"] for r in rows] == [r["名稱"] for r in ROWS]
        return
    if fmt == "geojson":
        features = json.loads(out.read_bytes())["features"]
        assert [f["geometry"] for f in features] == [None, None, None]
        assert [f["properties"]["設立日"] for f in features] == ["2023-01-31", None, "1999-12-01"]
        return
    if fmt == "parquet":
        assert b"geo" not in (pq.read_schema(out).metadata or {})
        table = pq.read_table(out)
    else:
        assert pyogrio.list_layers(out).tolist() == [[LAYER, None]]
        table = pyogrio.read_arrow(out, layer=LAYER)[1]
    assert table.column_names == FIELDS
    assert table.column("名稱").to_pylist() == [r["名稱"] for r in ROWS]
    assert table.column("人口數").to_pylist() == [1234.5, None, 3.25]


@pytest.mark.parametrize("fmt", ["kml", "shp.zip"])
def test_a_table_cannot_be_kml_or_shapefile(export_stores, tmp_path, fmt):
    expected = (
        rf"layer '{LAYER}' is a table without geometry; {fmt} cannot hold it — "
        r"download it as one of: geojson, csv, gpkg, parquet"
    )
    with pytest.raises(ExportError, match=expected.replace(".", r"\.")) as caught:
        _export(export_stores["table"], fmt, tmp_path, kind="table")
    assert caught.value.reason == "no-geometry"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("kind", "fmt", "layer_id", "match"),
    [
        (
            "vector",
            "xlsx",
            LAYER,
            r"unknown export format 'xlsx' for layer 'tc-villages'; known formats: "
            r"geojson, csv, kml, gpkg, shp\.zip, parquet",
        ),
        ("raster", "geojson", LAYER, r"'tc-villages' is a raster layer; .*downloaded as GeoTIFF"),
        ("mesh", "csv", LAYER, r"unknown kind 'mesh'; expected one of: vector, table, raster"),
        ("vector", "csv", "../etc", r"layer id '\.\./etc' is not a layer id"),
    ],
)
def test_requests_that_cannot_be_met_are_refused(
    export_stores, tmp_path, kind, fmt, layer_id, match
):
    out = tmp_path / "out.bin"
    with pytest.raises(ExportError, match=match) as caught:
        export_layer(export_stores["Point"], kind, fmt, out, layer_id=layer_id)
    assert isinstance(caught.value, CatalogError)
    assert caught.value.layer_id == layer_id and caught.value.fmt == fmt
    assert list(tmp_path.iterdir()) == []


def test_missing_or_foreign_stores_are_refused(export_stores, tmp_path):
    with pytest.raises(ExportError, match=r"'tc-villages': no store file .*nowhere\.gpkg"):
        _export(tmp_path / "nowhere.gpkg", "csv", tmp_path)
    other = tmp_path / "other.gpkg"
    pyogrio.write_arrow(pa.table({"a": [1]}), other, layer="something", driver="GPKG")
    with pytest.raises(ExportError, match=r"other\.gpkg is not a store GeoPackage .*'features'"):
        _export(other, "csv", tmp_path)
    with pytest.raises(ExportError, match=r"is a vector layer but .*table\.gpkg has no geometry"):
        _export(export_stores["table"], "geojson", tmp_path, kind="vector")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.gpkg"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GDAL: "a 256th field" in a DBF
def test_a_failed_export_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    # 300 text fields of 220 bytes: a DBF record over 65,535 bytes, which GDAL writes broken.
    wide = {f"f{i:03d}": pa.array(["字" * 73 + "x"]) for i in range(300)}
    store = _write_store(tmp_path / "wide.gpkg", wide, ["POINT (120 23)"], "Point")
    folder = tmp_path / "downloads"
    folder.mkdir()
    out = folder / "wide.shp.zip"
    out.write_bytes(b"previous download")
    with pytest.raises(ExportError, match=r"'wide' does not fit a shapefile: its 300 fields"):
        export_layer(store, "vector", "shp.zip", out, layer_id="wide")
    assert list(folder.iterdir()) == [out]
    assert out.read_bytes() == b"previous download"
    export_layer(store, "vector", "gpkg", folder / "wide.gpkg", layer_id="wide")
    assert len(pyogrio.read_info(folder / "wide.gpkg")["fields"]) == 300


# --------------------------------------------------------------------------- many batches


def test_layers_longer_than_one_batch_are_written_whole(tmp_path):
    n = 70_000  # more than one Arrow batch (65,536 rows)
    x = np.linspace(120.0, 121.0, n)
    store = tmp_path / "many.gpkg"
    table = pa.table(
        {
            "編號": pa.array(np.arange(n)),
            "geometry": pa.array(shapely.to_wkb(shapely.points(x, np.full(n, 23.5)))),
        }
    )
    pyogrio.write_arrow(
        table,
        store,
        layer="features",
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4326",
    )
    rows = _read_csv(_export(store, "csv", tmp_path))
    assert len(rows) == n and rows[-1] == {"編號": str(n - 1), "lon": "121", "lat": "23.5"}
    assert pq.read_table(_export(store, "parquet", tmp_path)).num_rows == n
    shp = f"/vsizip/{_export(store, 'shp.zip', tmp_path)}/{LAYER}.shp"
    assert pyogrio.read_info(shp)["features"] == n
