"""Whole-layer downloads over real HTTP, read back with GDAL (pyogrio), pyarrow and rasterio.

Expectations come from the stored version files, read independently with pyogrio, and from
the exporter's documented behaviour (catalog/export.py: CSV coordinates at 7 decimals, GeoJSON
at 8, one shapefile per geometry family, KML names from 名稱 ...).
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import rasterio
import requests
import shapely
import uvicorn

from catalog.db import Catalog
from catalog.view import CatalogView
from geoportal.app import create_app
from geoportal.settings import load_settings
from portal.downloads import download_counts, prune_downloads, resolve_download
from tests.serve import GEOPORTAL

VECTOR_FORMATS = ["geojson", "csv", "kml", "gpkg", "shp.zip", "parquet"]
TABLE_FORMATS = ["geojson", "csv", "gpkg", "parquet"]
#: Largest distance (degrees) between a stored and a downloaded geometry, per format:
#: GeoJSON is written at 8 decimals, CSV at 7; the binary formats keep the stored doubles.
TOLERANCE = {
    "geojson": 1e-8,
    "csv": 1e-7,
    "kml": 1e-7,
    "gpkg": 1e-12,
    "shp.zip": 1e-12,
    "parquet": 1e-12,
}
#: KML fields GDAL's LIBKML reader reserves; a store column of such a name (any case) is
#: checked in the KML's ExtendedData instead.
KML_RESERVED = {
    "id",
    "name",
    "description",
    "timestamp",
    "begin",
    "end",
    "altitudemode",
    "tessellate",
    "extrude",
    "visibility",
    "draworder",
    "icon",
}
KML_NS = {"kml": "http://www.opengis.net/kml/2.2"}
FAMILIES = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1}
TABLE_ID = "district-population"
TABLE_CSV = (
    "編號,行政區,人口數,面積,統計日期,備註\r\n"
    "1,中區,17953,0.88,2023-01-31,舊城區\r\n"
    "2,西屯區,230915,39.85,2023-01-31,\r\n"
    "3,和平區,10803,1037.82,2023-01-31,山地𤩎里\r\n"
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def site(ogc) -> tuple[str, Path, Catalog]:
    """(base URL, data home, the catalog opened read-only by the test) of the served corpus."""
    base, home = ogc
    catalog = Catalog.open(home)
    yield base, home, catalog
    catalog.close()


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=120)


def _store(home: Path, catalog: Catalog, layer_id: str) -> tuple[pd.DataFrame, dict]:
    """The stored version of a layer read by GDAL, and its read_info."""
    path = home / catalog.current(layer_id).path
    return pyogrio.read_dataframe(path, layer="features"), pyogrio.read_info(path, "features")


def _value(value: object, ogr_type: str) -> object:
    """A value as comparable across formats, given the stored column's OGR type."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return None
    if isinstance(value, str) and value == "" and ogr_type != "OFTString":
        return None
    if ogr_type == "OFTDate":
        if isinstance(value, str):
            return value[:10]
        if isinstance(value, datetime | pd.Timestamp):
            return value.date().isoformat()
        return value.isoformat() if isinstance(value, date) else str(value)
    if ogr_type in ("OFTInteger", "OFTInteger64"):
        return int(value)
    if ogr_type == "OFTReal":
        return round(float(value), 6)
    return str(value)


def _rows(
    frame: pd.DataFrame, names: dict[str, str], info: dict, *, text: bool = False
) -> list[tuple]:
    r"""The attribute rows of ``frame`` (columns renamed by ``names``), stored field order.

    ``text``: for the text formats (CSV, DBF, KML), which cannot tell an empty text from a
    missing one, both read as missing; and line breaks inside values compare as ``\\n``
    (GDAL's CSV reader turns a quoted CRLF into LF).
    """
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))

    def value(v: object, field: str) -> object:
        if text and isinstance(v, str):
            v = v.replace("\r\n", "\n") or None
        return _value(v, types[field])

    columns = [[value(v, f) for v in frame[names.get(f, f)]] for f in types]
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(len(frame))]


def _assert_geometries(got: list, want: list, fmt: str, layer_id: str) -> None:
    assert len(got) == len(want), layer_id
    got = shapely.force_2d(list(got))
    distance = shapely.hausdorff_distance(got, list(want))
    worst = int(distance.argmax()) if len(distance) else 0
    assert len(distance) == 0 or distance.max() <= TOLERANCE[fmt], (
        f"{layer_id}.{fmt}: feature {worst} moved {distance[worst]} degrees: "
        f"{got[worst].wkt[:80]} vs {want[worst].wkt[:80]}"
    )
    # moving every vertex by at most d changes an area by at most perimeter × d
    change = abs(shapely.area(got) - shapely.area(list(want)))
    bound = shapely.length(list(want)) * TOLERANCE[fmt] + 1e-15
    assert (change <= bound).all(), f"{layer_id}.{fmt}: areas differ"


def _family(geometry: shapely.Geometry) -> int:
    return FAMILIES.get(geometry.geom_type, 2)


# --------------------------------------------------------------------------- reading downloads


def _read_download(path: Path, fmt: str, layer_id: str) -> tuple[pd.DataFrame, list, dict]:
    """(attributes, geometries, field name map) of a downloaded file, read by a real reader."""
    if fmt == "parquet":
        table = pq.read_table(path)
        frame = table.to_pandas()
        geoms = list(shapely.from_wkb(frame.pop("geometry"))) if "geometry" in frame else []
        return frame, geoms, {}
    if fmt == "csv":
        frame = pyogrio.read_dataframe(path, read_geometry=False)
        if "wkt" in frame:
            return frame, list(shapely.from_wkt(frame["wkt"])), {}
        if "lon" in frame:
            xy = frame["lon"].astype(float), frame["lat"].astype(float)
            return frame, list(shapely.points(*xy)), {}
        return frame, [], {}
    if fmt == "shp.zip":
        return _read_shp_zip(path, layer_id)
    # GeoJSON: text stays text (GDAL would otherwise turn ISO-looking strings into dates)
    options = {"DATE_AS_STRING": "YES"} if fmt == "geojson" else {}
    frame = pyogrio.read_dataframe(path, **options)
    return frame, list(frame.geometry) if "geometry" in frame else [], {}


def _read_shp_zip(path: Path, layer_id: str) -> tuple[pd.DataFrame, list, dict]:
    """Every shapefile of a shp.zip in family order, and fields.csv's name map."""
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
        mapping = list(csv.reader(io.StringIO(archive.read("fields.csv").decode("utf-8-sig"))))
    names = {row[0]: row[1] for row in mapping[1:]}
    assert all(len(n.encode("utf-8")) <= 10 for n in names.values())
    assert len({n.casefold() for n in names.values()}) == len(names)
    stems = [
        s
        for s in (layer_id, f"{layer_id}_point", f"{layer_id}_line", f"{layer_id}_polygon")
        if f"{s}.shp" in members
    ]
    frames = []
    for stem in stems:
        assert {f"{stem}.{e}" for e in ("shp", "shx", "dbf", "prj", "cpg")} <= set(members)
        source = f"/vsizip/{path}/{stem}.shp"
        assert list(pyogrio.read_info(source)["fields"]) == list(names.values())
        frames.append(pyogrio.read_dataframe(source))
    frame = pd.concat(frames, ignore_index=True)
    return frame, list(frame.geometry), names


def _check_layer_download(base: str, home: Path, catalog: Catalog, layer_id: str, fmt: str):
    """Download one layer in one format and compare it with the stored version."""
    stored, info = _store(home, catalog, layer_id)
    response = _get(f"{base}/download/{layer_id}.{fmt}")
    assert response.status_code == 200, (layer_id, fmt, response.text[:300])
    assert int(response.headers["Content-Length"]) == len(response.content)
    suffix = f".{fmt}"
    path = home.parent / f"{layer_id}-{os.getpid()}{suffix}"
    path.write_bytes(response.content)
    try:
        frame, geoms, names = _read_download(path, fmt, layer_id)
    finally:
        path.unlink()
    want_geoms = list(stored.geometry) if info["geometry_type"] else []
    order = list(range(len(stored)))
    if fmt == "shp.zip":  # one shapefile per family, in family order (stable)
        order.sort(key=lambda i: _family(want_geoms[i]))
        want_geoms = [want_geoms[i] for i in order]
    assert len(frame) == info["features"] == len(stored), (layer_id, fmt)
    if fmt == "kml":
        _check_kml(response.content, frame, stored, info, layer_id)
    else:
        text = fmt in ("csv", "shp.zip")
        want = _rows(stored, {}, info, text=text)
        if fmt == "shp.zip":
            want = [want[i] for i in order]
        assert _rows(frame, names, info, text=text) == want, (layer_id, fmt)
    if want_geoms:
        _assert_geometries(geoms, want_geoms, fmt, layer_id)


def _check_kml(raw: bytes, frame: pd.DataFrame, stored: pd.DataFrame, info: dict, layer_id: str):
    """KML: GDAL's columns for ordinary fields, ExtendedData for reserved names, <name>."""
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    ordinary = [f for f in info["fields"] if f.casefold() not in KML_RESERVED]
    sub = {"fields": ordinary, "ogr_types": [types[f] for f in ordinary]}
    assert _rows(frame, {}, sub, text=True) == _rows(stored, {}, sub, text=True), layer_id
    placemarks = ET.fromstring(raw).findall(".//kml:Placemark", KML_NS)
    assert len(placemarks) == len(stored)
    for field in info["fields"]:
        if field.casefold() in KML_RESERVED:
            # GDAL's KML writer keeps a column called name/description (any case) as the
            # Placemark's <name>/<description> or as SimpleData of another case: the value
            # must be in the Placemark under one of those.
            want = [None if v == "" else _value(v, types[field]) for v in stored[field]]
            for placemark, value in zip(placemarks, want, strict=True):
                texts = {
                    d.text
                    for d in placemark.iterfind(".//kml:SimpleData", KML_NS)
                    if d.get("name", "").casefold() == field.casefold()
                }
                texts.add(placemark.findtext(f"kml:{field.casefold()}", namespaces=KML_NS))
                assert value in {_value(t, types[field]) for t in texts}, (layer_id, field)
    if "名稱" in stored:  # documented: the Placemark <name> comes from 名稱 first
        assert list(frame["Name"]) == list(stored["名稱"]), layer_id


# --------------------------------------------------------------------------- every layer and format


@pytest.mark.parametrize("fmt", VECTOR_FORMATS)
def test_every_vector_layer_downloads_as_the_stored_data(site, fmt):
    base, home, catalog = site
    layers = [lid for lid, v in sorted(catalog.current_all().items()) if v.kind == "vector"]
    kinds = {catalog.current(lid).geometry_type for lid in layers}
    assert {"Point", "LineString", "Polygon"} <= kinds and len(layers) >= 30
    for layer_id in layers:
        _check_layer_download(base, home, catalog, layer_id, fmt)


def test_mixed_geometry_layer_gets_one_shapefile_per_family(site):
    base, home, catalog = site
    stored, _ = _store(home, catalog, "tourism-map-4")
    families = {("point", "line", "polygon")[_family(g)] for g in stored.geometry}
    assert len(families) > 1  # the corpus's KML folder mixes geometry types
    response = _get(f"{base}/download/tourism-map-4.shp.zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        shps = sorted(n for n in archive.namelist() if n.endswith(".shp"))
    assert shps == sorted(f"tourism-map-4_{f}.shp" for f in families)


# --------------------------------------------------------------------------- HTTP behaviour


def test_download_headers(site):
    base, _, catalog = site
    version = catalog.current("taichung-villages")
    response = _get(f"{base}/download/taichung-villages.geojson")
    assert response.status_code == 200
    h = response.headers
    assert h["Content-Type"] == "application/geo+json"
    assert h["Content-Length"] == str(len(response.content))
    assert h["Content-Disposition"] == (
        'attachment; filename="taichung-villages.geojson"; '
        "filename*=UTF-8''taichung-villages.geojson"
    )
    assert version.version in h["ETag"] and "geojson" in h["ETag"]
    assert parsedate_to_datetime(h["Last-Modified"]) == version.created.replace(microsecond=0)
    assert "max-age" in h["Cache-Control"] and h["Accept-Ranges"] == "bytes"
    expected_types = {
        "csv": "text/csv",
        "kml": "application/vnd.google-earth.kml+xml",
        "gpkg": "application/geopackage+sqlite3",
        "shp.zip": "application/zip",
        "parquet": "application/vnd.apache.parquet",
    }
    for fmt, media in expected_types.items():
        got = _get(f"{base}/download/taichung-villages.{fmt}").headers["Content-Type"]
        assert got.split(";")[0] == media
        assert _get(f"{base}/download/taichung-villages.{fmt}").headers["ETag"] != h["ETag"]


def test_second_download_comes_from_the_cache(site):
    base, home, catalog = site
    version = catalog.current("rivers")
    url = f"{base}/download/rivers.gpkg"
    first = _get(url)
    cached = home / "downloads" / "rivers" / f"{version.version}.gpkg"
    before = cached.stat()
    second = _get(url)
    after = cached.stat()
    assert second.headers["X-Cache"] == "HIT"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert first.content == second.content == cached.read_bytes()


def test_etag_and_last_modified_give_304(site):
    base, _, _ = site
    url = f"{base}/download/mrt-routes.csv"
    full = _get(url)
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    again = _get(url, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert _get(url, **{"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert _get(url, **{"If-None-Match": '"other"'}).status_code == 200
    assert _get(url, **{"If-Modified-Since": modified}).status_code == 304
    assert _get(url, **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_byte_ranges(site):
    base, _, _ = site
    url = f"{base}/download/door-plates.geojson"
    full = _get(url).content
    assert len(full) > 1000
    part = _get(url, Range="bytes=100-599")
    assert part.status_code == 206 and part.content == full[100:600]
    assert part.headers["Content-Range"] == f"bytes 100-599/{len(full)}"
    assert part.headers["Content-Length"] == "500"
    tail = _get(url, Range="bytes=-64")
    assert tail.status_code == 206 and tail.content == full[-64:]
    rest = _get(url, Range=f"bytes={len(full) - 10}-")
    assert rest.status_code == 206 and rest.content == full[-10:]
    past = _get(url, Range=f"bytes={len(full)}-")
    assert past.status_code == 416 and past.headers["Content-Range"] == f"bytes */{len(full)}"
    stale = _get(url, Range="bytes=0-9", **{"If-Range": '"an-old-version"'})
    assert stale.status_code == 200 and stale.content == full
    current = _get(url, Range="bytes=0-9", **{"If-Range": _get(url).headers["ETag"]})
    assert current.status_code == 206 and current.content == full[:10]


def test_head_answers_like_get_without_a_body(site):
    base, _, _ = site
    for name in ("buildings.parquet", "dem-20m.tif", "ports.kml"):
        head = requests.head(f"{base}/download/{name}", timeout=120)
        get = _get(f"{base}/download/{name}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == str(len(get.content))
        for key in ("Content-Type", "ETag", "Last-Modified", "Content-Disposition"):
            assert head.headers[key] == get.headers[key]
    assert requests.head(f"{base}/download/nowhere.csv", timeout=30).status_code == 404


def test_raster_downloads_the_stored_cog(site):
    base, home, catalog = site
    rasters = [lid for lid, v in catalog.current_all().items() if v.kind == "raster"]
    assert rasters
    for layer_id in rasters:
        response = _get(f"{base}/download/{layer_id}.tif")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("image/tiff")
        stored = home / catalog.current(layer_id).path
        assert response.content == stored.read_bytes()
        with (
            rasterio.MemoryFile(response.content) as memfile,
            memfile.open() as got,
            rasterio.open(stored) as want,
        ):
            assert (got.width, got.height, got.count) == (want.width, want.height, want.count)
            assert got.crs == want.crs and got.transform == want.transform


@pytest.mark.parametrize(
    ("name", "status", "error", "words"),
    [
        ("no-such-layer.geojson", 404, "not-found", ["no-such-layer"]),
        ("rivers.xlsx", 404, "format-unavailable", ["xlsx", *(f".{f}" for f in VECTOR_FORMATS)]),
        ("rivers.tif", 404, "format-unavailable", [".geojson", ".parquet"]),
        ("dem-20m.geojson", 404, "format-unavailable", ["GeoTIFF", ".tif"]),
        ("Rivers.csv", 400, "bad-request", ["'Rivers'", "layer id"]),
        ("riv_ers.csv", 400, "bad-request", ["layer id"]),
        ("rivers", 400, "bad-request", ["{id}.{format}"]),
        ("rivers.", 400, "bad-request", ["{id}.{format}"]),
    ],
)
def test_refusals(site, name, status, error, words):
    base, _, _ = site
    response = _get(f"{base}/download/{name}")
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    for word in words:
        assert word in body["message"]


# --------------------------------------------------------------------------- concurrency


def test_concurrent_first_downloads_export_once_across_processes(site):
    base, home, catalog = site
    layer_id, fmt = "road-centerlines", "kml"
    version = catalog.current(layer_id)
    cached = home / "downloads" / layer_id / f"{version.version}.{fmt}"
    cached.unlink(missing_ok=True)  # a fresh format: as after a new version
    snapshot = CatalogView(catalog).snapshot()
    start = threading.Barrier(8)

    def over_http(_: int) -> tuple[str, bytes]:
        start.wait()
        response = _get(f"{base}/download/{layer_id}.{fmt}")
        assert response.status_code == 200
        return response.headers["X-Cache"], response.content

    def in_this_process(_: int) -> tuple[str, bytes]:
        start.wait()
        item = resolve_download(home, snapshot, layer_id, fmt)
        return ("MISS" if item.exported else "HIT"), item.path.read_bytes()

    with ThreadPoolExecutor(8) as pool:
        http = [pool.submit(over_http, i) for i in range(5)]
        local = [pool.submit(in_this_process, i) for i in range(3)]
        results = [f.result() for f in http + local]
    assert sorted(r[0] for r in results) == ["HIT"] * 7 + ["MISS"]
    assert len({r[1] for r in results}) == 1
    stat = cached.stat()
    assert _get(f"{base}/download/{layer_id}.{fmt}").headers["X-Cache"] == "HIT"
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    leftovers = [p.name for p in cached.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# --------------------------------------------------------------------------- a table, new versions


@contextmanager
def _served_here(home: Path) -> Iterator[str]:
    """The app served by uvicorn in a thread of this process (to read its counters)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(load_settings(home=home))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _ingest(folder: Path, home: Path, text: str) -> None:
    (folder / "人口統計.csv").write_text(text, encoding="utf-8-sig", newline="")
    (folder / "layers.yaml").write_text(
        "defaults: {agency: 臺中市政府民政局}\n"
        f"layers:\n  - id: {TABLE_ID}\n    title: 各區人口統計\n    source: 人口統計.csv\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [*GEOPORTAL, "ingest", str(folder / "layers.yaml"), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def table_site(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, home, source folder) of a home holding one table, served in this process."""
    folder = tmp_path_factory.mktemp("table-source")
    home = tmp_path_factory.mktemp("table-home")
    _ingest(folder, home, TABLE_CSV)
    with _served_here(home) as base:
        yield base, home, folder


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_a_table_downloads_as_its_stored_rows(table_site, fmt):
    base, home, _ = table_site
    with Catalog.open(home) as catalog:
        assert catalog.current(TABLE_ID).kind == "table"
        _check_layer_download(base, home, catalog, TABLE_ID, fmt)


@pytest.mark.parametrize("fmt", ["kml", "shp.zip"])
def test_a_table_has_no_kml_or_shapefile(table_site, fmt):
    base, _, _ = table_site
    response = _get(f"{base}/download/{TABLE_ID}.{fmt}")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "format-unavailable" and fmt in body["message"]
    assert all(f".{f}" in body["message"] for f in TABLE_FORMATS)


def test_downloads_are_counted_per_layer_and_format(table_site):
    base, _, _ = table_site
    url = f"{base}/download/{TABLE_ID}.csv"
    key = f"{TABLE_ID}.csv"
    before = download_counts().get(key, 0)
    etag = _get(url).headers["ETag"]
    requests.head(url, timeout=30)
    _get(url, **{"If-None-Match": etag})
    _get(url, Range="bytes=5-20")
    assert download_counts()[key] == before + 1  # HEAD, 304 and a later range: not counted
    _get(url, Range="bytes=0-20")
    _get(url)
    assert download_counts()[key] == before + 3


def test_a_new_version_replaces_the_cached_files_of_the_old(table_site):
    base, home, folder = table_site
    url = f"{base}/download/{TABLE_ID}.gpkg"
    old_etag = _get(url).headers["ETag"]
    _get(f"{base}/download/{TABLE_ID}.parquet")
    layer_dir = home / "downloads" / TABLE_ID
    old_files = sorted(p.name for p in layer_dir.iterdir() if not p.name.startswith("."))
    assert len(old_files) >= 2

    _ingest(folder, home, TABLE_CSV + "4,北屯區,297614,62.70,2023-01-31,\r\n")
    deadline = time.monotonic() + 60  # the app's catalog view re-reads within seconds
    while (response := _get(url)).headers["ETag"] == old_etag:
        assert time.monotonic() < deadline, "the new version never appeared"
        time.sleep(0.5)
    assert response.headers["X-Cache"] == "MISS"
    with Catalog.open(home) as catalog:
        version = catalog.current(TABLE_ID).version
        stored = pyogrio.read_info(home / catalog.current(TABLE_ID).path, "features")
    assert stored["features"] == 4
    path = home.parent / f"{TABLE_ID}-new.gpkg"
    path.write_bytes(response.content)
    assert len(pyogrio.read_dataframe(path)) == 4
    remaining = sorted(p.name for p in layer_dir.iterdir() if not p.name.startswith("."))
    assert remaining == [f"{version}.gpkg"]  # every file of the old version is gone


def test_prune_downloads_keeps_only_current_versions(table_site):
    base, home, _ = table_site
    _get(f"{base}/download/{TABLE_ID}.geojson")
    root = home / "downloads"
    stale = root / TABLE_ID / "0123456789abcdef.csv"
    stale.write_text("an old version")
    gone = root / "a-removed-layer" / "0123456789abcdef.csv"
    gone.parent.mkdir()
    gone.write_text("a layer that is no longer in the catalog")
    with Catalog.open(home) as catalog:
        current = catalog.current(TABLE_ID).version
        assert prune_downloads(home, CatalogView(catalog).snapshot()) == 2
    assert not stale.exists() and not gone.parent.exists()
    assert (root / TABLE_ID / f"{current}.geojson").is_file()
