"""A script written for a real CKAN 2.10, run unchanged against this portal through ckanapi.

Each test is one step group of the kind of automation data.gov-style portals document
(harvest the catalogue, page through searches, publish a dataset with an upload, load rows
into the DataStore). Expected shapes come from CKAN 2.10's documentation and action code
(``ckan/logic/action/get.py``, ``ckan/lib/dictization/model_dictize.py``,
``ckanext/datastore/logic/action.py``), expected values from the catalog and from what the
test sent — never from this portal's own output.
"""

from __future__ import annotations

import io
import re
import uuid

import ckanapi
import pytest
import requests

from catalog.db import Catalog
from tests.portal.ckan.conftest import make_user

#: CKAN's timestamp format (``datetime.isoformat()`` of a naive UTC time, with microseconds
#: unless they are zero).
CKAN_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")

#: Keys of the organization object embedded in a package dict (model_dictize.package_dictize).
PACKAGE_ORG_KEYS = {
    "id",
    "name",
    "title",
    "type",
    "description",
    "image_url",
    "created",
    "is_organization",
    "approval_status",
    "state",
}

#: Keys of a package dict returned by package_show (CKAN 2.10, default schema).
PACKAGE_KEYS = {
    "author",
    "author_email",
    "creator_user_id",
    "extras",
    "groups",
    "id",
    "isopen",
    "license_id",
    "license_title",
    "maintainer",
    "maintainer_email",
    "metadata_created",
    "metadata_modified",
    "name",
    "notes",
    "num_resources",
    "num_tags",
    "organization",
    "owner_org",
    "private",
    "relationships_as_object",
    "relationships_as_subject",
    "resources",
    "state",
    "tags",
    "title",
    "type",
    "url",
    "version",
}

#: Keys of a resource dict (resource_dictize).
RESOURCE_KEYS = {
    "cache_last_updated",
    "cache_url",
    "created",
    "datastore_active",
    "description",
    "format",
    "hash",
    "id",
    "last_modified",
    "metadata_modified",
    "mimetype",
    "mimetype_inner",
    "name",
    "package_id",
    "position",
    "resource_type",
    "size",
    "state",
    "url",
    "url_type",
}

#: Keys of a free tag dict.
TAG_KEYS = {"display_name", "id", "name", "state", "vocabulary_id"}

#: Keys of an organization_list(all_fields=True) item (group_list_dictize).
ORG_LIST_KEYS = {
    "approval_status",
    "created",
    "description",
    "display_name",
    "id",
    "image_display_url",
    "image_url",
    "is_organization",
    "name",
    "num_followers",
    "package_count",
    "state",
    "title",
    "type",
}


@pytest.fixture(scope="module")
def ckan(site):
    """An anonymous client, as a harvesting script would make it."""
    return ckanapi.RemoteCKAN(site.base, user_agent="ckan-script/1.0")


@pytest.fixture(scope="module")
def publisher(site):
    """A client with an editor's API token (the user that publishes)."""
    return ckanapi.RemoteCKAN(site.base, apikey=site.tokens["own-editor"])


@pytest.fixture(scope="module")
def sysadmin(site):
    return ckanapi.RemoteCKAN(site.base, apikey=site.tokens["root"])


@pytest.fixture(scope="module")
def published(site):
    """Public published layers per agency name, read from the catalog."""
    with Catalog.open(site.home) as catalog:
        current = catalog.current_all()
        by_org: dict[str, set[str]] = {}
        titles: dict[str, str] = {}
        for layer in catalog.layers():
            if layer.id in current:
                by_org.setdefault(layer.agency.name, set()).add(layer.id)
                titles[layer.id] = layer.title
        agencies = {a.name: a for a in catalog.agencies()}
    return by_org, titles, agencies


def _check_package(pkg: dict) -> None:
    """A package dict has CKAN 2.10's keys and types."""
    assert set(pkg) >= PACKAGE_KEYS, PACKAGE_KEYS - set(pkg)
    assert isinstance(pkg["num_resources"], int) and pkg["num_resources"] == len(pkg["resources"])
    assert isinstance(pkg["num_tags"], int) and pkg["num_tags"] == len(pkg["tags"])
    assert CKAN_TIME.match(pkg["metadata_modified"]), pkg["metadata_modified"]
    assert CKAN_TIME.match(pkg["metadata_created"]), pkg["metadata_created"]
    assert isinstance(pkg["private"], bool) and isinstance(pkg["isopen"], bool)
    assert pkg["type"] == "dataset"
    if pkg["organization"] is not None:
        assert set(pkg["organization"]) == PACKAGE_ORG_KEYS
        assert pkg["organization"]["id"] == pkg["owner_org"]
        assert pkg["organization"]["is_organization"] is True
    for tag in pkg["tags"]:
        assert set(tag) >= TAG_KEYS and tag["display_name"] == tag["name"]
    for extra in pkg["extras"]:
        assert set(extra) == {"key", "value"}
    for i, res in enumerate(pkg["resources"]):
        assert set(res) >= RESOURCE_KEYS, RESOURCE_KEYS - set(res)
        assert res["package_id"] == pkg["id"]
        assert res["position"] == i
        assert CKAN_TIME.match(res["created"]), res["created"]
        assert res["url"].startswith(("http://", "https://"))


def test_list_organizations_with_all_fields(ckan, published):
    by_org, _, agencies = published
    orgs = ckan.action.organization_list(all_fields=True)
    assert isinstance(orgs, list) and orgs
    names = {o["name"] for o in orgs}
    assert set(by_org) <= names
    for org in orgs:
        assert set(org) >= ORG_LIST_KEYS, ORG_LIST_KEYS - set(org)
        assert org["type"] == "organization" and org["is_organization"] is True
        assert isinstance(org["package_count"], int)
        assert "packages" not in org  # all_fields never embeds datasets
        if org["name"] in by_org:
            assert org["package_count"] >= len(by_org[org["name"]])
            assert org["title"] == agencies[org["name"]].title


def test_page_through_package_search_sorted_by_modified(ckan, published):
    by_org, _, _ = published
    first = ckan.action.package_search(rows=0)
    assert set(first) >= {"count", "facets", "results", "sort", "search_facets"}
    total = first["count"]
    assert total >= sum(len(v) for v in by_org.values())
    seen: list[dict] = []
    start, rows = 0, 7
    while start < total:
        page = ckan.action.package_search(rows=rows, start=start, sort="metadata_modified desc")
        assert page["count"] == total and len(page["results"]) <= rows
        seen.extend(page["results"])
        start += rows
    assert len(seen) == total
    assert len({p["id"] for p in seen}) == total  # no repeats across pages
    stamps = [p["metadata_modified"] for p in seen]
    assert stamps == sorted(stamps, reverse=True)
    for pkg in seen[:20]:
        _check_package(pkg)


def test_filter_by_format_with_facets(ckan):
    result = ckan.action.package_search(
        fq="res_format:CSV", **{"facet.field": ["organization", "tags"]}, rows=1000
    )
    assert result["count"] == len(result["results"]) > 0
    for pkg in result["results"]:
        assert any(r["format"].upper() == "CSV" for r in pkg["resources"])
    facets = result["search_facets"]
    assert set(facets) == {"organization", "tags"}
    for field, facet in facets.items():
        assert set(facet) == {"title", "items"} and facet["title"] == field
        for item in facet["items"]:
            assert set(item) == {"name", "display_name", "count"}
            assert isinstance(item["count"], int) and item["count"] > 0
    # Counts agree with the results they summarize.
    orgs: dict[str, int] = {}
    for pkg in result["results"]:
        orgs[pkg["organization"]["name"]] = orgs.get(pkg["organization"]["name"], 0) + 1
    assert {i["name"]: i["count"] for i in facets["organization"]["items"]} == orgs
    titles = {p["organization"]["name"]: p["organization"]["title"] for p in result["results"]}
    for item in facets["organization"]["items"]:
        assert item["display_name"] == titles[item["name"]]
    # The legacy ``facets`` key: field → {value: count}.
    assert result["facets"]["organization"] == orgs


def test_show_each_package_and_download_its_resources(ckan, published):
    _, titles, _ = published
    names = ckan.action.package_list()
    assert set(titles) <= set(names)
    for name in sorted(titles)[:3]:
        pkg = ckan.action.package_show(id=name)
        _check_package(pkg)
        assert pkg["title"] == titles[name]
        res = pkg["resources"][0]
        got = requests.get(res["url"], timeout=60)
        assert got.status_code == 200 and got.content
        shown = ckan.action.resource_show(id=res["id"])
        assert shown["id"] == res["id"] and shown["package_id"] == pkg["id"]


def test_publish_a_dataset_with_an_upload(site, publisher, sysadmin, ckan):
    name = f"script-{uuid.uuid4().hex[:8]}"
    sent_tags = ["停車", "交通"]
    pkg = publisher.action.package_create(
        name=name,
        title="腳本建立的資料集",
        owner_org=site.own,
        notes="由 CKAN 腳本建立",
        license_id="cc-by",
        tags=[{"name": t} for t in sent_tags],
        extras=[{"key": "來源", "value": "腳本"}],
        resources=[{"name": "外部連結", "url": "https://example.tw/a.csv", "format": "CSV"}],
    )
    _check_package(pkg)
    assert pkg["name"] == name and pkg["state"] == "active"
    assert sorted(t["name"] for t in pkg["tags"]) == sorted(sent_tags)
    assert {"key": "來源", "value": "腳本"} in pkg["extras"]
    assert pkg["organization"]["name"] == site.own

    patched = publisher.action.package_patch(id=pkg["id"], notes="已修改")
    assert patched["notes"] == "已修改" and patched["title"] == "腳本建立的資料集"
    assert sorted(t["name"] for t in patched["tags"]) == sorted(sent_tags)
    assert patched["num_resources"] == 1

    content = "站名,車位\n臺中車站,120\n".encode()
    res = publisher.action.resource_create(
        package_id=pkg["id"], name="上傳檔", format="CSV", upload=("list.csv", io.BytesIO(content))
    )
    assert set(res) >= RESOURCE_KEYS
    assert res["url_type"] == "upload" and res["position"] == 1
    assert res["url"].endswith("/list.csv")
    assert requests.get(res["url"], timeout=30).content == content
    res2 = publisher.action.resource_patch(id=res["id"], description="說明")
    assert res2["description"] == "說明" and res2["name"] == "上傳檔"
    after = publisher.action.package_show(id=name)
    _check_package(after)
    # This portal ingests an uploaded table as the dataset's layer and adds its generated
    # downloads (kind "download"); the two resources the script made stay, in order.
    mine = [r for r in after["resources"] if not r.get("generated")]
    assert [r["name"] for r in mine] == ["外部連結", "上傳檔"]
    assert after["num_resources"] == len(after["resources"])
    shown = publisher.action.resource_show(id=res["id"])
    assert shown["position"] == [r["id"] for r in after["resources"]].index(res["id"])

    assert publisher.action.package_delete(id=name) is None
    # CKAN: deleted datasets are shown to sysadmins (and the organization's members) with
    # state "deleted"; anyone else is refused (403) — they leave lists and searches.
    assert sysadmin.action.package_show(id=name)["state"] == "deleted"
    assert publisher.action.package_show(id=name)["state"] == "deleted"
    with pytest.raises((ckanapi.NotAuthorized, ckanapi.NotFound)):
        ckan.action.package_show(id=name)
    outsider = ckanapi.RemoteCKAN(site.base, apikey=site.tokens["outsider"])
    with pytest.raises((ckanapi.NotAuthorized, ckanapi.NotFound)):
        outsider.action.package_show(id=name)
    assert name not in ckan.action.package_list()
    assert ckan.action.package_search(q=f"name:{name}")["count"] == 0


def test_organization_show_with_datasets(ckan, site, published):
    by_org, _, agencies = published
    org = ckan.action.organization_show(id=site.other, include_datasets=True)
    assert org["name"] == site.other and org["title"] == agencies[site.other].title
    assert isinstance(org["package_count"], int)
    assert by_org[site.other] <= {p["name"] for p in org["packages"]}
    assert org["package_count"] == len(org["packages"])
    for pkg in org["packages"]:
        assert pkg["organization"]["name"] == site.other
    by_id = ckan.action.organization_show(id=org["id"])
    assert by_id["name"] == site.other and "packages" not in by_id


def test_tag_list_and_vocabularies(ckan):
    tags = ckan.action.tag_list()
    assert tags and all(isinstance(t, str) for t in tags)
    full = ckan.action.tag_list(all_fields=True)
    assert [t["name"] for t in full] == tags
    for tag in full:
        assert set(tag) >= TAG_KEYS and tag["vocabulary_id"] is None
    # CKAN: tag_list with an unknown vocabulary is "Not found".
    with pytest.raises(ckanapi.NotFound):
        ckan.action.tag_list(vocabulary_id="no-such-vocabulary")


def test_solr_syntax_query(ckan, published):
    by_org, titles, _ = published
    org, wanted = next(
        (o, {n for n in ids if "停車" in titles[n]})
        for o, ids in sorted(by_org.items())
        if any("停車" in titles[n] for n in ids)
    )
    found = ckan.action.package_search(q=f"title:停車 AND organization:{org}", rows=1000)
    names = {p["name"] for p in found["results"]}
    assert wanted <= names
    assert all(p["organization"]["name"] == org for p in found["results"])
    assert found["count"] == len(found["results"])


def test_datastore_create_and_search(site, publisher, ckan):
    name = f"script-ds-{uuid.uuid4().hex[:8]}"
    pkg = publisher.action.package_create(name=name, title="停車場即時車位", owner_org=site.own)
    records = [
        {"站名": "臺中車站", "車位": 120, "區": "中區"},
        {"站名": "市政府", "車位": 80, "區": "西屯區"},
        {"站名": "逢甲", "車位": 45, "區": "西屯區"},
        {"站名": "科博館", "車位": 60, "區": "北區"},
    ]
    created = publisher.action.datastore_create(
        resource={"package_id": pkg["id"], "name": "車位", "format": "CSV"},
        fields=[{"id": "站名", "type": "text"}, {"id": "車位", "type": "int"}, {"id": "區"}],
        records=records,
    )
    rid = created["resource_id"]
    assert {f["id"] for f in created["fields"]} >= {"站名", "車位", "區"}
    shown = ckan.action.resource_show(id=rid)
    assert shown["datastore_active"] is True and shown["package_id"] == pkg["id"]
    rows = requests.get(shown["url"], timeout=30).json()  # a DataStore-only resource's URL
    assert rows["success"] is True and rows["result"]["total"] == len(records)

    found = ckan.action.datastore_search(resource_id=rid)
    assert {"resource_id", "fields", "records", "total", "_links"} <= set(found)
    assert found["resource_id"] == rid and found["total"] == len(records)
    assert found["fields"][0] == {"id": "_id", "type": "int"}
    assert [f["id"] for f in found["fields"][1:]] == ["站名", "車位", "區"]
    assert {"start", "next"} <= set(found["_links"])
    assert sorted(r["_id"] for r in found["records"]) == [1, 2, 3, 4]

    west = ckan.action.datastore_search(resource_id=rid, filters={"區": "西屯區"}, sort="車位 desc")
    assert [r["站名"] for r in west["records"]] == ["市政府", "逢甲"]
    assert west["total"] == 2

    expected = sorted(records, key=lambda r: r["車位"])
    paged = ckan.action.datastore_search(resource_id=rid, sort="車位 asc", limit=2, offset=1)
    assert [r["車位"] for r in paged["records"]] == [r["車位"] for r in expected[1:3]]
    assert paged["limit"] == 2 and paged["total"] == len(records)

    q = ckan.action.datastore_search(resource_id=rid, q="車站")
    assert [r["站名"] for r in q["records"]] == ["臺中車站"]


def test_outsider_cannot_publish(site):
    token = make_user(site.home, f"script-{uuid.uuid4().hex[:6]}")
    stranger = ckanapi.RemoteCKAN(site.base, apikey=token)
    with pytest.raises(ckanapi.NotAuthorized):
        stranger.action.package_create(name=f"x-{uuid.uuid4().hex[:8]}", owner_org=site.own)


def test_organization_created_is_a_timestamp(ckan, published):
    by_org, _, _ = published
    for org in ckan.action.organization_list(all_fields=True):
        if org["name"] in by_org:
            assert org["created"] is not None and CKAN_TIME.match(org["created"]), org
