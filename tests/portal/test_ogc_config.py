"""The running pygeoapi config: generated from the catalog, valid for pygeoapi, following it."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ogc.app import OgcService, quote_identifiers
from portal.ogc.config import (
    FEATURE_PROVIDER,
    OgcConfigError,
    Site,
    build_config,
    load_template,
    validate,
)
from portal.ogc.coverages import COVERAGE_PROVIDER
from portal.ogc.records import COLLECTION as RECORDS_COLLECTION
from portal.ogc.records import RECORD_PROVIDER
from portal.ogc.tiles import TILE_PROVIDER

ROOT = "http://portal.example:8000"


@pytest.fixture(scope="module")
def snapshot(ingested):
    with Catalog.open(ingested) as catalog:
        yield CatalogView(catalog).snapshot()


@pytest.fixture(scope="module")
def config(snapshot, ingested) -> dict:
    return build_config(snapshot, Site(ROOT, ingested))


def test_generated_config_validates_against_pygeoapi_schema(config):
    validate(config)


def test_every_published_layer_is_a_collection_with_the_right_providers(config, snapshot):
    vectors = {lyr.id for lyr, v in snapshot.published() if v.kind == "vector"}
    rasters = {lyr.id for lyr, v in snapshot.published() if v.kind == "raster"}
    assert len(vectors) > 30 and rasters
    resources = config["resources"]
    collections = {rid for rid, r in resources.items() if r["type"] == "collection"}
    assert collections == vectors | rasters | {RECORDS_COLLECTION}
    for rid in vectors:
        kinds = [(p["type"], p["name"]) for p in resources[rid]["providers"]]
        assert kinds[0] == ("feature", FEATURE_PROVIDER)  # the default provider: Features
        assert ("tile", TILE_PROVIDER) in kinds
    for rid in rasters:
        kinds = [(p["type"], p["name"]) for p in resources[rid]["providers"]]
        assert kinds == [("coverage", COVERAGE_PROVIDER)]
    (records,) = resources[RECORDS_COLLECTION]["providers"]
    assert (records["type"], records["name"]) == ("record", RECORD_PROVIDER)
    processes = {rid for rid, r in resources.items() if r["type"] == "process"}
    assert {"coordinate-conversion", "district-lookup", "address-lookup", "extract"} <= processes


def test_collection_metadata_comes_from_the_catalog(config, snapshot, ingested):
    layer, version = snapshot.layers["door-plates"], snapshot.versions["door-plates"]
    resource = config["resources"]["door-plates"]
    assert resource["title"] == {"zh-TW": layer.title, "en": layer.title_en}
    assert resource["description"]["zh-TW"] == layer.description
    assert set(layer.keywords) <= set(resource["keywords"])
    assert resource["extents"]["spatial"]["bbox"] == list(version.bbox)
    assert resource["providers"][0]["data"] == str(ingested / version.path)
    hrefs = {link["href"] for link in resource["links"]}
    assert f"{ROOT}/dataset/door-plates" in hrefs
    assert f"{ROOT}/wms/door-plates?SERVICE=WMS&REQUEST=GetCapabilities" in hrefs
    assert f"{ROOT}/tiles/door-plates.json" in hrefs
    assert any(h.startswith(f"{ROOT}/wmts?") for h in hrefs)
    for ext in ("geojson", "csv", "kml", "gpkg", "shp.zip", "parquet"):
        assert f"{ROOT}/download/door-plates.{ext}" in hrefs
    assert config["server"]["url"] == f"{ROOT}/ogc"


def test_template_metadata_is_bilingual(config):
    title = config["metadata"]["identification"]["title"]
    assert set(title) == {"zh-TW", "en"}
    assert config["server"]["languages"][0] == "zh-TW"


def test_invalid_config_is_rejected_with_the_place_named(config):
    broken = dict(config, resources=dict(config["resources"]))
    broken["resources"]["door-plates"] = dict(
        config["resources"]["door-plates"], extents={"spatial": {"bbox": [1, 2]}}
    )
    with pytest.raises(OgcConfigError, match="door-plates/extents/spatial/bbox"):
        validate(broken)


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(OgcConfigError, match="cannot be read"):
        load_template(tmp_path / "nope.yml")


def test_config_follows_the_catalog_without_restart(ingested, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ingested / "catalog.sqlite", home / "catalog.sqlite")
    (home / "layers").symlink_to(ingested / "layers")
    with Catalog.open(home) as catalog:
        view = CatalogView(catalog, ttl=0)
        service = OgcService(view, home)
        before = service.api(ROOT).api
        assert service.api(ROOT).api is before  # built once per catalog state
        layer = catalog.get_layer("door-plates")
        catalog.upsert_layer(dataclasses.replace(layer, title="臺中市門牌（新版）"))
        after = service.api(ROOT).api
        assert after is not before
        assert after.config["resources"]["door-plates"]["title"]["zh-TW"] == "臺中市門牌（新版）"
        assert before.config["resources"]["door-plates"]["title"]["zh-TW"] == layer.title


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("名稱='x'", "\"名稱\"='x'"),
        ("名稱 = '名稱' AND 鄰 > 3", '"名稱" = \'名稱\' AND "鄰" > 3'),
        ("\"名稱\" LIKE '%里'", "\"名稱\" LIKE '%里'"),
        ("S_INTERSECTS(geometry, POINT(120 24))", "S_INTERSECTS(geometry, POINT(120 24))"),
        ("x = 1", '"x" = 1'),
        ("名稱='it''s 名稱'", "\"名稱\"='it''s 名稱'"),
    ],
)
def test_cql2_names_in_chinese_are_quoted_for_the_parser(text, quoted):
    assert quote_identifiers(text) == quoted


def test_document_cache_is_bounded_by_bytes_as_well_as_entries():
    from portal.ogc.app import DocumentCache

    cache = DocumentCache(size=10, max_bytes=1000)
    for n in range(5):
        cache.put(("doc", n), ({}, 200, b"x" * 300))
    # 300 bytes each: only the three newest fit in 1,000 bytes
    assert [cache.get(("doc", n)) is not None for n in range(5)] == [False, False, True, True, True]
    cache.put(("huge",), ({}, 200, b"x" * 1001))
    assert cache.get(("huge",)) is None
    assert cache.get(("doc", 4)) is not None
