"""`geoportal publish`: the catalog pushed into a CKAN (our own portal, served over HTTP).

The target is a second, empty geoportal home served by the real server; everything is read
back with ckanapi. Expectations come from the source catalog (layers and versions) and the
source portal store, never from the publisher.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ckanapi
import pytest

from catalog.db import Catalog
from portal.ckan.model import User
from portal.ckan.store import PortalStore
from tests.serve import GEOPORTAL, serving

PUBLIC = "https://geo.example.gov.tw"


@pytest.fixture(scope="module")
def source(ingested, tmp_path_factory) -> Path:
    """A copy of the ingested home (the publisher syncs its portal tables)."""
    home = tmp_path_factory.mktemp("publish-source") / "home"
    shutil.copytree(ingested, home, ignore=shutil.ignore_patterns("downloads", "jobs"))
    return home


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(base URL, sysadmin token) of an empty geoportal serving the CKAN API."""
    home = tmp_path_factory.mktemp("publish-target") / "home"
    store = PortalStore.open(home)
    try:
        store.put_user(User(id=str(uuid.uuid4()), name="publisher", sysadmin=True))
        _, token = store.create_token("publisher", "publish test")
    finally:
        store.close()
    with serving(home) as base:
        yield base, token


def publish(source: Path, base: str, token: str, *extra: str) -> dict:
    out = subprocess.run(
        [
            *GEOPORTAL,
            "publish",
            "--ckan",
            base,
            "--api-key",
            token,
            "--base-url",
            PUBLIC,
            "--home",
            str(source),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_publish_round_trips_every_layer_and_then_changes_nothing(source, target):
    base, token = target
    with Catalog.open(source) as catalog:
        layers = {lyr.id: lyr for lyr in catalog.layers() if lyr.current_version}
    first = publish(source, base, token)
    assert first["failed"] == 0, first["failures"]
    assert first["created"] == first["datasets"] >= len(layers)

    ckan = ckanapi.RemoteCKAN(base)
    names = set(ckan.action.package_list())
    assert set(layers) <= names
    for layer_id, layer in layers.items():
        package = ckan.action.package_show(id=layer_id)
        assert package["title"] == layer.title
        assert package["organization"]["name"] == layer.agency.name
        assert package["organization"]["title"] == layer.agency.title
        assert {t["name"] for t in package["tags"]} <= set(layer.keywords) | {layer.category}
        urls = [r["url"] for r in package["resources"]]
        assert urls and all(u.startswith(PUBLIC + "/") or "://" in u for u in urls)
        if layer_id in ("aed-locations", "buildings"):
            assert f"{PUBLIC}/download/{layer_id}.geojson" in urls
            assert f"{PUBLIC}/download/{layer_id}.gpkg" in urls
    assert set(first["organizations_created"]) == {lyr.agency.name for lyr in layers.values()}

    second = publish(source, base, token)
    assert second["unchanged"] == second["datasets"] == first["datasets"]
    assert second["created"] == second["updated"] == 0


def test_a_changed_dataset_is_updated_keeping_its_resource_ids(source, target):
    base, token = target
    publish(source, base, token)
    ckan = ckanapi.RemoteCKAN(base)
    before = ckan.action.package_show(id="aed-locations")
    store = PortalStore.open(source)
    try:
        dataset = store.dataset("aed-locations")
        # a field the layer does not own (a layer's description would come back from it)
        store.put_dataset(replace(dataset, maintainer="資訊中心 Information Center"))
    finally:
        store.close()
    result = publish(source, base, token)
    assert result["updated"] == 1
    after = ckan.action.package_show(id="aed-locations")
    assert after["maintainer"] == "資訊中心 Information Center"
    assert after["id"] == before["id"]
    assert {r["id"] for r in after["resources"]} == {r["id"] for r in before["resources"]}


def test_org_option_puts_everything_in_one_existing_organization(source, tmp_path):
    home = tmp_path / "target"
    store = PortalStore.open(home)
    try:
        store.put_user(User(id=str(uuid.uuid4()), name="admin", sysadmin=True))
        _, token = store.create_token("admin", "t")
    finally:
        store.close()
    with serving(home) as base:
        ckan = ckanapi.RemoteCKAN(base, apikey=token)
        ckan.action.organization_create(name="city-portal", title="臺中市政府")
        result = publish(source, base, token, "--org", "city-portal")
        assert result["failed"] == 0
        assert result["organizations_created"] == []
        found = ckan.action.package_search(fq="organization:city-portal", rows=0)
        assert found["count"] == result["datasets"]


def test_an_unreachable_target_is_a_clear_failure(source):
    out = subprocess.run(
        [
            *GEOPORTAL,
            "publish",
            "--ckan",
            "http://127.0.0.1:9",
            "--api-key",
            "x",
            "--home",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "http://127.0.0.1:9" in out.stderr
    assert "CKAN" in out.stderr
