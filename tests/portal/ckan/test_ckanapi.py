"""Every action through ckanapi (the library and its command line) against the running server.

Expectations come from the catalog (layers, agencies, versions read with ``catalog.db``), from
the stored GeoPackages (pyogrio) and from what the test itself sent, never from the portal's
own output.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import ckanapi
import pyogrio
import pytest
import requests

from catalog.db import Catalog

#: ckanapi's command line, installed beside the Python running the tests.
CKANAPI = str(Path(sys.executable).parent / "ckanapi")


@pytest.fixture(scope="module")
def catalog_facts(site):
    """Published layers (id → (layer, version)) and agencies, read from the catalog."""
    with Catalog.open(site.home) as catalog:
        versions = catalog.current_all()
        layers = {lyr.id: (lyr, versions[lyr.id]) for lyr in catalog.layers() if lyr.id in versions}
        agencies = {a.name: a for a in catalog.agencies()}
    return layers, agencies


@pytest.fixture(scope="module")
def anon(site):
    return ckanapi.RemoteCKAN(site.base).action


@pytest.fixture(scope="module")
def root(site):
    return ckanapi.RemoteCKAN(site.base, apikey=site.tokens["root"]).action


@pytest.fixture(scope="module")
def editor(site):
    return ckanapi.RemoteCKAN(site.base, apikey=site.tokens["own-editor"]).action


def _third_agency(site, layers) -> str:
    """An agency with published layers that no test writes into."""
    names = sorted({lyr.agency.name for lyr, _ in layers.values()} - {site.own, site.other})
    return names[0]


def test_status_show_and_site_read(anon):
    status = anon.status_show()
    assert status["ckan_version"].split(".")[:2] == ["2", "10"]
    assert "datastore" in status["extensions"]
    assert anon.site_read() is True


def test_every_published_layer_is_a_public_dataset(anon, catalog_facts):
    layers, _ = catalog_facts
    names = set(anon.package_list())
    assert set(layers) <= names
    for layer_id, (layer, version) in layers.items():
        pkg = anon.package_show(id=layer_id)
        assert pkg["name"] == layer_id and pkg["title"] == layer.title
        assert pkg["organization"]["name"] == layer.agency.name
        assert pkg["owner_org"] == pkg["organization"]["id"]
        assert pkg["num_resources"] == len(pkg["resources"]) > 0
        assert pkg["layer_version"] == version.version
        assert all(r["url"].startswith(("http://", "https://")) for r in pkg["resources"])


def test_package_show_by_id_equals_by_name(anon, catalog_facts):
    layer_id = sorted(catalog_facts[0])[0]
    by_name = anon.package_show(id=layer_id)
    assert anon.package_show(id=by_name["id"]) == by_name


def test_package_search_finds_chinese_titles(anon, catalog_facts):
    layers, _ = catalog_facts
    wanted = {i for i, (lyr, _) in layers.items() if "停車場" in lyr.title}
    assert wanted, "the small corpus has a parking layer"
    result = anon.package_search(q="停車場", rows=1000)
    assert wanted <= {d["name"] for d in result["results"]}
    assert result["count"] == len(result["results"])


def test_package_search_facets_count_organizations(anon, site, catalog_facts):
    layers, _ = catalog_facts
    third = _third_agency(site, layers)
    result = anon.package_search(
        q="", rows=0, **{"facet.field": ["organization"], "facet.limit": -1}
    )
    expected = sum(1 for lyr, _ in layers.values() if lyr.agency.name == third)
    assert result["facets"]["organization"][third] == expected


def test_ckanapi_command_line_searches_and_shows(site, anon):
    out = subprocess.run(
        [CKANAPI, "action", "package_search", "q=停車場", "-r", site.base],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    from_cli = json.loads(out.stdout)
    from_library = anon.package_search(q="停車場")
    assert from_cli["count"] == from_library["count"]
    assert [d["name"] for d in from_cli["results"]] == [d["name"] for d in from_library["results"]]
    name = from_cli["results"][0]["name"]
    shown = subprocess.run(
        [CKANAPI, "action", "package_show", f"id={name}", "-r", site.base],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["name"] == name


def test_ckanapi_command_line_writes_with_a_token(site, anon):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [CKANAPI, "action", "package_create", f"name={name}", f"owner_org={site.own}",
         "title=命令列建立", "tags:[{\"name\": \"測試\"}]", "-r", site.base,
         "-a", site.tokens["own-editor"]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pkg = anon.package_show(id=name)
    assert pkg["title"] == "命令列建立" and [t["name"] for t in pkg["tags"]] == ["測試"]


def test_current_package_list_is_newest_first(anon):
    listed = anon.current_package_list_with_resources(limit=1000)
    stamps = [d["metadata_modified"] for d in listed]
    assert stamps == sorted(stamps, reverse=True)
    assert all(not d["private"] for d in listed)
    assert [d["name"] for d in anon.current_package_list_with_resources(limit=2, offset=1)] == [
        d["name"] for d in listed[1:3]
    ]


def test_package_autocomplete(anon, catalog_facts):
    layers, _ = catalog_facts
    target = next(i for i, (lyr, _) in sorted(layers.items()) if "park" in i)
    found = anon.package_autocomplete(q="park", limit=50)
    assert target in {d["name"] for d in found}
    assert all("park" in d["name"] or "park" in d["title"].lower() for d in found)


def test_resource_show_and_search(anon, catalog_facts):
    layers, _ = catalog_facts
    pkgs = [anon.package_show(id=i) for i in sorted(layers)]
    res = pkgs[0]["resources"][0]
    assert anon.resource_show(id=res["id"]) == res
    geojson = [r for p in pkgs for r in p["resources"] if r["format"].lower() == "geojson"]
    found = anon.resource_search(query="format:GeoJSON", limit=10000)
    assert {r["id"] for r in geojson} <= {r["id"] for r in found["results"]}
    with pytest.raises(ckanapi.ValidationError):
        anon.resource_search(query="nosuchfield:x")


def test_organizations(anon, site, catalog_facts):
    layers, agencies = catalog_facts
    assert set(agencies) <= set(anon.organization_list())
    third = _third_agency(site, layers)
    mine = {i for i, (lyr, _) in layers.items() if lyr.agency.name == third}
    listed = {
        o["name"]: o for o in anon.organization_list(all_fields=True, include_dataset_count=True)
    }
    assert listed[third]["package_count"] == len(mine)
    assert listed[third]["title"] == agencies[third].title
    shown = anon.organization_show(id=third, include_datasets=True)
    assert {p["name"] for p in shown["packages"]} == mine
    assert anon.organization_show(id=shown["id"])["name"] == third
    with pytest.raises(ckanapi.NotFound):
        anon.organization_show(id="no-such-org")


def test_organization_create_update_and_members(root, site, anon):
    name = f"org-{uuid.uuid4().hex[:8]}"
    created = root.organization_create(name=name, title="新機關", description="測試機關")
    assert created["name"] == name and anon.organization_show(id=name)["title"] == "新機關"
    admin = ckanapi.RemoteCKAN(site.base, apikey=site.tokens["own-admin"]).action
    updated = admin.organization_update(id=site.own, description="由管理者更新")
    assert updated["description"] == "由管理者更新"
    member = root.member_create(id=name, object="own-member", object_type="user", capacity="editor")
    assert member["capacity"] == "editor"
    roles = {u["name"]: u["capacity"] for u in anon.organization_show(id=name)["users"]}
    assert roles["own-member"] == "editor" and roles["root"] == "admin"
    added = root.organization_member_create(id=name, username="outsider", role="member")
    assert added["capacity"] == "member"
    mine = ckanapi.RemoteCKAN(site.base, apikey=site.tokens["own-member"]).action
    assert name in {o["name"] for o in mine.organization_list_for_user(permission="create_dataset")}


def test_groups(root, editor, anon, site):
    name = f"theme-{uuid.uuid4().hex[:8]}"
    group = root.group_create(name=name, title="交通主題")
    assert group["name"] == name and name in anon.group_list()
    pkg = editor.package_create(name=f"grp-{uuid.uuid4().hex[:8]}", owner_org=site.own)
    editor.member_create(id=name, object=pkg["name"], object_type="package", capacity="public")
    shown = anon.group_show(id=name, include_datasets=True)
    assert [p["name"] for p in shown["packages"]] == [pkg["name"]] and shown["package_count"] == 1
    assert [g["name"] for g in anon.package_show(id=pkg["name"])["groups"]] == [name]
    listed = {g["name"]: g for g in anon.group_list(all_fields=True)}
    assert listed[name]["package_count"] == 1
    found = anon.package_search(fq=f"groups:{name}")
    assert [d["name"] for d in found["results"]] == [pkg["name"]]


def test_tags(anon):
    tags = set(anon.tag_list())
    assert "停車場" in tags
    pkgs = anon.package_search(q="", rows=1000)["results"]
    used = {t["name"] for p in pkgs if not p["private"] for t in p["tags"]}
    assert used == tags
    shown = anon.tag_show(id="停車場", include_datasets=True)
    assert {p["name"] for p in shown["packages"]} == {
        p["name"] for p in pkgs if "停車場" in {t["name"] for t in p["tags"]}
    }
    with pytest.raises(ckanapi.NotFound):
        anon.tag_show(id="沒有這個標籤")


def test_license_list_has_taiwans_licence(anon):
    licences = {lic["id"]: lic for lic in anon.license_list()}
    assert licences["OGDL-Taiwan-1.0"]["url"] == "https://data.gov.tw/license"
    assert "政府資料開放授權條款" in licences["OGDL-Taiwan-1.0"]["title"]
    assert {"CC-BY-4.0", "CC0-1.0", "ODbL-1.0", "notspecified"} <= set(licences)


def test_user_show_hides_email_from_others(anon, root):
    public = anon.user_show(id="own-editor")
    assert public["name"] == "own-editor" and "email" not in public
    assert root.user_show(id="own-editor")["email"] == "own-editor@example.tw"
    with pytest.raises(ckanapi.NotFound):
        anon.user_show(id="nobody-here")


def test_package_create_update_patch_delete(editor, anon, site):
    name = f"ds-{uuid.uuid4().hex[:8]}"
    created = editor.package_create(
        name=name,
        title="公園綠地",
        owner_org=site.own,
        notes="說明",
        tags=[{"name": "公園"}],
        extras=[{"key": "category", "value": "休閒旅遊"}, {"key": "來源", "value": "測試"}],
        resources=[{"url": "https://example.tw/parks.csv", "name": "公園清單", "format": "CSV"}],
    )
    assert created["category"] == "休閒旅遊"
    assert {"key": "來源", "value": "測試"} in created["extras"]
    assert created["resources"][0]["url"] == "https://example.tw/parks.csv"
    assert created["creator_user_id"] == anon.user_show(id="own-editor")["id"]
    with pytest.raises(ckanapi.ValidationError) as taken:
        editor.package_create(name=name, owner_org=site.own)
    assert taken.value.error_dict["name"] == ["That URL is already in use."]
    updated = editor.package_update(id=name, title="公園", owner_org=site.own)
    assert updated["title"] == "公園" and updated["notes"] == "" and updated["tags"] == []
    assert [r["name"] for r in updated["resources"]] == ["公園清單"]  # kept when not sent
    patched = editor.package_patch(id=name, notes="只改說明")
    assert patched["notes"] == "只改說明" and patched["title"] == "公園"
    editor.package_delete(id=name)
    assert name not in anon.package_list()
    assert anon.package_search(q=f"name:{name}")["count"] == 0


def test_bad_names_are_validation_errors(editor, site):
    with pytest.raises(ckanapi.ValidationError) as bad:
        editor.package_create(name="Bad Name!", owner_org=site.own)
    assert "name" in bad.value.error_dict


def test_resource_upload_update_patch_delete(editor, anon, site):
    pkg = editor.package_create(name=f"up-{uuid.uuid4().hex[:8]}", owner_org=site.own)
    content = "名稱,數量\n甲,1\n".encode()
    res = editor.resource_create(
        package_id=pkg["id"], name="上傳", upload=("清單 v1.csv", io.BytesIO(content))
    )
    assert res["url_type"] == "upload" and res["size"] == len(content) and res["format"] == "CSV"
    assert res["url"].startswith(f"{site.base}/dataset/{pkg['id']}/resource/{res['id']}/download/")
    assert requests.get(res["url"], timeout=30).content == content
    stored = site.home / "uploads" / res["id"]
    assert [p.read_bytes() for p in stored.iterdir()] == [content]
    newer = b"a,b\n1,2\n"
    res2 = editor.resource_update(id=res["id"], name="新版", upload=("v2.csv", io.BytesIO(newer)))
    assert requests.get(res2["url"], timeout=30).content == newer
    patched = editor.resource_patch(id=res["id"], description="說明")
    assert patched["description"] == "說明" and patched["name"] == "新版"
    assert patched["url"] == res2["url"]
    editor.resource_delete(id=res["id"])
    with pytest.raises(ckanapi.NotFound):
        anon.resource_show(id=res["id"])
    assert requests.get(res2["url"], timeout=30).status_code == 404


def test_generated_resources_follow_the_layer(editor, site, catalog_facts):
    layers, _ = catalog_facts
    own_layer = next(i for i, (lyr, _) in sorted(layers.items()) if lyr.agency.name == site.own)
    res = ckanapi.RemoteCKAN(site.base).action.package_show(id=own_layer)["resources"][0]
    with pytest.raises(ckanapi.ValidationError):
        editor.resource_patch(id=res["id"], name="改名")
    with pytest.raises(ckanapi.ValidationError):
        editor.resource_delete(id=res["id"])


def test_a_layer_dataset_keeps_what_the_layer_says(editor, anon, site, catalog_facts):
    layers, _ = catalog_facts
    layer_id, (layer, _) = next(
        (i, v) for i, v in sorted(layers.items()) if v[0].agency.name == site.own
    )
    before = anon.package_show(id=layer_id)
    updated = editor.package_update(
        id=layer_id, title="改掉標題", notes="", maintainer="維護者", resources=[]
    )
    assert updated["title"] == layer.title and updated["notes"] == layer.description
    assert updated["maintainer"] == "維護者"
    assert [r["id"] for r in updated["resources"]] == [r["id"] for r in before["resources"]]
    with pytest.raises(ckanapi.ValidationError) as bad:
        editor.package_patch(id=layer_id, owner_org="no-such-agency")
    assert bad.value.error_dict["owner_org"] == ["Organization does not exist"]


def test_datastore_on_a_layer_csv_reads_the_stored_features(anon, site, catalog_facts):
    layers, _ = catalog_facts
    layer_id = "public-parking"
    _, version = layers[layer_id]
    csv = next(r for r in anon.package_show(id=layer_id)["resources"] if r["format"] == "CSV")
    assert csv["datastore_active"] is True
    frame = pyogrio.read_dataframe(site.home / version.path, layer="features")
    first = anon.datastore_search(resource_id=csv["id"], limit=5)
    assert first["total"] == version.feature_count == len(frame)
    names = [f["id"] for f in first["fields"]]
    assert names == ["_id", *[f.name for f in version.fields]]
    column = version.fields[0].name
    assert [r[column] for r in first["records"]] == list(frame[column][:5])
    value = frame[column].iloc[3]
    filtered = anon.datastore_search(resource_id=csv["id"], filters={column: str(value)})
    assert filtered["total"] == int((frame[column].astype(str) == str(value)).sum())
    ordered = anon.datastore_search(resource_id=csv["id"], sort=f"{column} desc", limit=3)
    assert [r[column] for r in ordered["records"]] == sorted(frame[column], reverse=True)[:3]


def test_datastore_create_and_search(editor, anon, site):
    pkg = editor.package_create(name=f"table-{uuid.uuid4().hex[:8]}", owner_org=site.own)
    res = editor.resource_create(package_id=pkg["id"], url="https://example.tw/t.csv", name="表")
    rows = [
        {"站名": "臺中車站", "車位": 120, "開放": True},
        {"站名": "大里停車場", "車位": 80, "開放": False},
        {"站名": "豐原轉運站", "車位": 45, "開放": True},
    ]
    created = editor.datastore_create(
        resource_id=res["id"],
        fields=[
            {"id": "站名", "type": "text"},
            {"id": "車位", "type": "int"},
            {"id": "開放", "type": "bool"},
        ],
        records=rows,
        primary_key=["站名"],
    )
    assert created["primary_key"] == ["站名"] and "records" not in created
    assert anon.resource_show(id=res["id"])["datastore_active"] is True
    found = anon.datastore_search(resource_id=res["id"], q="停車", fields=["站名", "車位"])
    assert found["records"] == [{"站名": "大里停車場", "車位": 80}] and found["total"] == 1
    by_sort = anon.datastore_search(resource_id=res["id"], sort="車位 asc")
    assert [r["車位"] for r in by_sort["records"]] == [45, 80, 120]
    assert [f["type"] for f in by_sort["fields"]] == ["int", "text", "int", "bool"]
    editor.datastore_create(resource_id=res["id"], records=[{"站名": "臺中車站", "車位": 150}])
    again = anon.datastore_search(resource_id=res["id"], filters={"站名": "臺中車站"})
    assert again["total"] == 1 and again["records"][0]["車位"] == 150
    paged = anon.datastore_search(resource_id=res["id"], sort="車位 desc", limit=1, offset=1)
    assert [r["車位"] for r in paged["records"]] == [80] and paged["total"] == 3


def test_datastore_refuses_unknown_columns_and_odd_names(editor, anon, site):
    pkg = editor.package_create(name=f"inj-{uuid.uuid4().hex[:8]}", owner_org=site.own)
    res = editor.resource_create(package_id=pkg["id"], url="https://example.tw/x.csv")
    with pytest.raises(ckanapi.ValidationError):
        editor.datastore_create(resource_id=res["id"], fields=[{"id": 'a"; DROP TABLE x; --'}])
    editor.datastore_create(resource_id=res["id"], fields=[{"id": "a"}], records=[{"a": "x"}])
    with pytest.raises(ckanapi.ValidationError):
        anon.datastore_search(resource_id=res["id"], filters={"a = a OR 1": "x"})
    with pytest.raises(ckanapi.ValidationError):
        anon.datastore_search(resource_id=res["id"], sort="a; DROP TABLE portal_datasets")
    with pytest.raises(ckanapi.ValidationError):
        editor.datastore_create(resource_id=res["id"], records=[{"b": 1}])
    assert anon.datastore_search(resource_id=res["id"], q="' OR '1'='1")["total"] == 0
    assert anon.datastore_search(resource_id=res["id"])["total"] == 1
    with pytest.raises(ckanapi.NotFound):
        anon.datastore_search(
            resource_id=anon.package_show(id=pkg["id"])["resources"][0]["id"] + "x"
        )
