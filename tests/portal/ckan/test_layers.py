"""Catalog layers as portal datasets: metadata, extent, resources that really exist, and merging.

Layers and versions are read from the small corpus ingested with the real CLI (plus one table
without coordinates ingested the same way); expectations come from the stored files (pyogrio),
the SPEC's format list and the running server, never from the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pyogrio
import pytest
import rasterio
import shapely
from shapely.geometry import shape

from catalog.db import Catalog
from catalog.export import export_layer
from catalog.model import FieldInfo, Layer, LayerVersion
from catalog.view import CatalogView, Snapshot
from portal.ckan.layers import (
    NAMESPACE,
    dataset_id,
    dataset_of_layer,
    license_id,
    organization_id,
    resource_id,
    tag_names,
)
from portal.ckan.licenses import license_of
from portal.ckan.model import Dataset, Resource
from tests.serve import GEOPORTAL, serving

#: What the issue (#7 item 4) and the SPEC say each kind of layer offers, as CKAN formats.
VECTOR_FORMATS = {
    "GeoJSON",
    "CSV",
    "KML",
    "SHP",
    "GPKG",
    "GeoParquet",
    "WMS",
    "WMTS",
    "OGC API Features",
    "TileJSON",
    "PMTiles",
}
RASTER_FORMATS = {"GeoTIFF", "WMS", "WMTS", "OGC API Coverages", "TileJSON"}
#: A table has no geometry: no KML, no shapefile, no map services.
TABLE_FORMATS = {"GeoJSON", "CSV", "GPKG", "Parquet"}
#: SPEC: /download/{id}.{geojson,csv,kml,shp.zip,gpkg,parquet}
DOWNLOAD_EXTS = ("geojson", "csv", "kml", "shp.zip", "gpkg", "parquet")
TILED = ("aed-locations", "urban-zoning-wuri")


def _snapshot(home: Path) -> Snapshot:
    return CatalogView(Catalog.open(home)).snapshot()


@pytest.fixture(scope="module")
def snapshot(ingested: Path) -> Snapshot:
    return _snapshot(ingested)


@pytest.fixture(scope="module")
def table_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one CSV without coordinates (a table), ingested with the real CLI."""
    src = tmp_path_factory.mktemp("table-src")
    (src / "fares.csv").write_text("路線,票價,站數\n300,15,42\n301,20,38\n", encoding="utf-8")
    (src / "layers.yaml").write_text(
        "layers:\n"
        "  - id: bus-fares\n"
        "    title: 公車票價表\n"
        "    agency: 交通局\n"
        "    category: 交通及通訊\n"
        "    update_frequency: 每月\n"
        "    keywords: [公車, 票價, x, 'a/b']\n"
        "    source: fares.csv\n"
        "    license: CC BY 4.0\n",
        encoding="utf-8",
    )
    home = tmp_path_factory.mktemp("table-home")
    subprocess.run(
        [*GEOPORTAL, "ingest", str(src / "layers.yaml"), "--home", str(home)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return home


@pytest.fixture(scope="module")
def table(table_home: Path) -> tuple[Layer, LayerVersion]:
    (pair,) = _snapshot(table_home).published()
    return pair


@pytest.fixture(scope="module")
def served(ingested: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the ingested home with vector tiles built for two layers, served over HTTP."""
    home = tmp_path_factory.mktemp("layers-served") / "home"
    shutil.copytree(ingested, home)
    subprocess.run(
        [*GEOPORTAL, "tiles", "build", *TILED, "--home", str(home)],
        check=True,
        capture_output=True,
        timeout=600,
        env=dict(os.environ),
    )
    with serving(home) as base:
        yield base, home


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


# --------------------------------------------------------------------------- ids


def test_ids_are_uuid5_of_the_fixed_namespace_and_never_collide(snapshot: Snapshot) -> None:
    assert str(NAMESPACE) == "108cf413-8781-57da-b2fd-b1b381ddaf8d"  # fixed forever
    assert dataset_id("roads") == str(uuid.uuid5(NAMESPACE, "dataset:roads"))
    assert resource_id("roads", "wms") == str(uuid.uuid5(NAMESPACE, "roads:wms"))
    assert organization_id("x") == str(uuid.uuid5(NAMESPACE, "organization:x"))
    ids: list[str] = []
    for layer, version in snapshot.published():
        d = dataset_of_layer(layer, version)
        again = dataset_of_layer(layer, version)
        assert d == again  # deterministic
        ids += [d.id, *(r.id for r in d.resources)]
        assert all(r.package_id == d.id for r in d.resources)
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- metadata


def test_every_layer_becomes_its_dataset(snapshot: Snapshot, ingested: Path) -> None:
    published = snapshot.published()
    assert len(published) >= 40
    for layer, version in published:
        d = dataset_of_layer(layer, version)
        assert (d.name, d.layer_id, d.layer_version) == (layer.id, layer.id, version.version)
        assert d.source == "layer" and d.state == "active" and not d.private
        assert d.owner_org == layer.agency.name
        assert (d.title, d.title_en, d.notes) == (layer.title, layer.title_en, layer.description)
        assert (d.category, d.update_frequency) == (layer.category, layer.update_frequency)
        assert d.license_id == "OGDL-Taiwan-1.0"  # what the sample manifest declares
        assert set(d.tags) <= set(layer.keywords) and d.tags
        assert d.metadata_created == layer.created
        assert d.metadata_modified >= d.metadata_created
        extras = dict(d.extras)
        assert extras["layer_version"] == version.version
        assert extras["source_crs"] == version.source_crs
        if version.kind == "vector":
            _check_vector_facts(d, extras, ingested / version.path)
        else:
            _check_raster_facts(d, ingested / version.path)


def _check_vector_facts(d: Dataset, extras: dict[str, str], store: Path) -> None:
    info = pyogrio.read_info(store, layer="features", force_total_bounds=True)
    assert int(extras["feature_count"]) == info["features"]
    types = set(pyogrio.read_dataframe(store, layer="features").geom_type.dropna())
    declared = extras["geometry_type"]
    if declared == "Geometry":  # a mixed layer
        assert len(types) > 1
    else:
        assert types <= {declared, declared.removeprefix("Multi")}
    fields = json.loads(extras["fields"])
    assert [f["name"] for f in fields] == list(info["fields"])
    for name in info["fields"]:
        assert name in d.fields_description
    assert shape(json.loads(d.spatial)).bounds == pytest.approx(info["total_bounds"], abs=1e-9)


def _check_raster_facts(d: Dataset, tif: Path) -> None:
    with rasterio.open(tif) as src:
        from rasterio.warp import transform_bounds

        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assert shape(json.loads(d.spatial)).bounds == pytest.approx(bounds, abs=1e-3)
    (tif_resource,) = [r for r in d.resources if r.format == "GeoTIFF"]
    assert tif_resource.size == tif.stat().st_size


def test_resources_per_kind(snapshot: Snapshot, table) -> None:
    kinds = set()
    for layer, version in [*snapshot.published(), table]:
        d = dataset_of_layer(layer, version)
        formats = [r.format for r in d.resources]
        assert len(formats) == len(set(formats))
        expected = {"vector": VECTOR_FORMATS, "raster": RASTER_FORMATS, "table": TABLE_FORMATS}
        assert set(formats) == expected[version.kind], layer.id
        assert [r.position for r in d.resources] == list(range(len(d.resources)))
        for r in d.resources:
            assert r.generated and r.url.startswith("/") and r.mimetype and r.name
            assert r.kind == ("download" if r.url.startswith("/download/") else "service")
            assert r.created == version.created
        kinds.add(version.kind)
    assert kinds == {"vector", "raster", "table"}


def test_download_urls_are_what_the_spec_names(snapshot: Snapshot) -> None:
    layer, version = next((lyr, v) for lyr, v in snapshot.published() if v.kind == "vector")
    urls = {r.url for r in dataset_of_layer(layer, version).resources if r.kind == "download"}
    assert urls == {f"/download/{layer.id}.{ext}" for ext in DOWNLOAD_EXTS}


def test_a_table_dataset(table, table_home: Path, tmp_path: Path) -> None:
    layer, version = table
    d = dataset_of_layer(layer, version)
    assert d.spatial == ""
    assert d.license_id == "CC-BY-4.0"
    assert dict(d.extras)["license_text"] == "CC BY 4.0"
    assert d.tags == ("公車", "票價", "a b")  # one-letter tags dropped, '/' not allowed by CKAN
    assert d.fields_description.startswith("路線（")
    assert json.loads(dict(d.extras)["fields"])[1] == {"name": "票價", "type": "integer"}
    # every offered download is one the exporter really writes for a table
    for r in d.resources:
        ext = r.url.removeprefix(f"/download/{layer.id}.")
        out = export_layer(
            table_home / version.path, "table", ext, tmp_path / f"t.{ext}", layer_id=layer.id
        )
        assert out.stat().st_size > 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OGDL-Taiwan-1.0", "OGDL-Taiwan-1.0"),
        ("政府資料開放授權條款-第1版", "OGDL-Taiwan-1.0"),
        ("政府資料開放授權條款 第一版", "OGDL-Taiwan-1.0"),
        ("https://data.gov.tw/license", "OGDL-Taiwan-1.0"),
        ("CC BY 4.0", "CC-BY-4.0"),
        ("cc0-1.0", "CC0-1.0"),
        ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
        ("ODbL", "ODbL-1.0"),
        ("", "notspecified"),
        ("本局自訂授權", "other-open"),
        ("CC BY-NC 4.0", "other-closed"),
    ],
)
def test_license_ids(text: str, expected: str) -> None:
    assert license_id(text) == expected
    assert license_of(expected) is not None  # an id license_list offers


def test_tag_names_follow_ckan_rules() -> None:
    assert tag_names(["  停車場 ", "停車場", "a", "x" * 120, "AED/急救"]) == (
        "停車場",
        "x" * 100,
        "AED 急救",
    )


# --------------------------------------------------------------------------- merging


def test_existing_dataset_keeps_api_side_additions(snapshot: Snapshot) -> None:
    layer, version = next((lyr, v) for lyr, v in snapshot.published() if v.kind == "vector")
    fresh = dataset_of_layer(layer, version)
    link = Resource(
        id="11111111-2222-3333-4444-555555555555",
        package_id=fresh.id,
        name="機關說明文件",
        url="https://example.org/readme.pdf",
        format="PDF",
        position=0,
    )
    stale = replace(fresh.resources[0], id=resource_id(layer.id, "gone"), name="old")
    existing = replace(
        fresh,
        title="an old title",
        private=True,
        groups=("transport",),
        maintainer="王小明",
        extras=(("feature_count", "-1"), ("quality_obtainable", "pass"), ("note", "x")),
        resources=(link, stale, *fresh.resources),
    )
    merged = dataset_of_layer(layer, version, existing)
    assert merged.title == layer.title  # metadata comes from the layer
    assert merged.private and merged.groups == ("transport",) and merged.maintainer == "王小明"
    extras = dict(merged.extras)
    assert extras["feature_count"] == str(version.feature_count)
    assert (extras["quality_obtainable"], extras["note"]) == ("pass", "x")
    assert [k for k, _ in merged.extras].count("feature_count") == 1
    # generated resources first (rewritten, the stale one gone), the link after them
    assert merged.resources[:-1] == fresh.resources
    assert merged.resources[-1] == replace(link, position=len(fresh.resources))


def test_fields_description_regenerated_unless_an_agency_wrote_it(snapshot: Snapshot) -> None:
    layer, version = next((lyr, v) for lyr, v in snapshot.published() if v.kind == "vector")
    before = dataset_of_layer(layer, version)
    newer = replace(
        version, version="f" * 16, fields=(*version.fields, FieldInfo("新欄位", "date"))
    )
    after = dataset_of_layer(layer, newer, before)
    assert "新欄位（" in after.fields_description
    assert after.fields_description != before.fields_description
    written = replace(before, fields_description="編號：設施編號；名稱：設施名稱")
    kept = dataset_of_layer(layer, newer, written)
    assert kept.fields_description == "編號：設施編號；名稱：設施名稱"


def test_a_version_of_another_layer_is_refused(snapshot: Snapshot) -> None:
    (_, va), (b, _) = snapshot.published()[:2]
    with pytest.raises(ValueError, match=b.id):
        dataset_of_layer(b, va)


# --------------------------------------------------------------------------- over HTTP


def _service_check(base: str, layer_id: str, r: Resource) -> None:
    status, body, _ = _get(base + r.url)
    assert status == 200, (r.url, status, body[:200])
    if r.format == "WMS":
        root = ET.fromstring(body)
        names = {e.text for e in root.iter() if e.tag.endswith("Name")}
        assert layer_id in names
    elif r.format == "WMTS":
        root = ET.fromstring(body)
        ids = {e.text for e in root.iter() if e.tag.endswith("Identifier")}
        assert layer_id in ids
    elif r.format.startswith("OGC API"):
        assert json.loads(body)["id"] == layer_id
    elif r.format == "TileJSON":
        assert json.loads(body)["tilejson"].startswith("3.")
    elif r.format == "PMTiles":
        assert body[:7] == b"PMTiles"


def test_service_resources_answer_on_the_real_server(served, snapshot: Snapshot) -> None:
    base, _ = served
    checked = set()
    for layer, version in snapshot.published():
        if version.kind == "vector" and layer.id not in TILED and checked & {"vector"}:
            continue  # WMS/WMTS/OGC for one untiled vector layer, all for the tiled ones
        d = dataset_of_layer(layer, version)
        tiled = version.kind != "vector" or layer.id in TILED
        for r in d.resources:
            if r.kind == "service" and (tiled or r.format not in ("TileJSON", "PMTiles")):
                _service_check(base, layer.id, r)
        checked.add(version.kind)
    assert checked == {"vector", "raster"}


def test_vector_tile_resources_need_built_tiles(served, snapshot: Snapshot) -> None:
    base, _ = served
    layer, version = next(
        (lyr, v) for lyr, v in snapshot.published() if v.kind == "vector" and lyr.id not in TILED
    )
    (pm,) = [r for r in dataset_of_layer(layer, version).resources if r.format == "PMTiles"]
    status, body, _ = _get(base + pm.url)
    assert status == 404 and b"tiles build" in body


def test_raster_download_is_the_stored_geotiff(snapshot: Snapshot, ingested: Path) -> None:
    for layer, version in snapshot.published():
        if version.kind == "raster":
            (r,) = [r for r in dataset_of_layer(layer, version).resources if r.kind == "download"]
            assert r.url == f"/download/{layer.id}.tif" and r.mimetype == "image/tiff"
            with rasterio.open(ingested / version.path) as src:
                assert src.driver == "GTiff"


def test_spatial_is_valid_geojson(snapshot: Snapshot) -> None:
    for layer, version in snapshot.published():
        geom = shape(json.loads(dataset_of_layer(layer, version).spatial))
        assert geom.is_valid and isinstance(geom, shapely.Polygon | shapely.Point)


def test_download_resources_answer_on_the_real_server(served, snapshot: Snapshot) -> None:
    base, _ = served
    for kind in ("vector", "raster"):
        layer, version = next((lyr, v) for lyr, v in snapshot.published() if v.kind == kind)
        for r in dataset_of_layer(layer, version).resources:
            if r.kind != "download":
                continue
            request = urllib.request.Request(base + r.url, method="HEAD")
            with urllib.request.urlopen(request, timeout=120) as answer:
                assert answer.status == 200, r.url
                assert answer.headers["Content-Type"].startswith(r.mimetype), r.url
