"""The portal store on a real catalog database: records, secrets kept hashed, layer sync."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from dataclasses import replace

import pytest

from catalog.db import Catalog
from catalog.model import Agency
from catalog.schema import portal_tokens, portal_users
from catalog.view import CatalogView
from portal.ckan.errors import NotFound, ValidationError
from portal.ckan.model import Dataset, Membership, Resource, User
from portal.ckan.store import PortalStore, sync


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh catalog database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    from tests.catalog.conftest import _new_pg_database

    with _new_pg_database() as url:
        yield url


@pytest.fixture
def store(store_url):
    with Catalog(store_url) as catalog:
        catalog.upsert_agency(Agency("agency-a", "甲機關"))
        catalog.upsert_agency(Agency("agency-b", "乙機關"))
    s = PortalStore(store_url)
    yield s
    s.close()


def _dataset(name="ds-one", org="agency-a", **kw) -> Dataset:
    ds_id = str(uuid.uuid4())
    res = Resource(
        id=str(uuid.uuid4()), package_id=ds_id, name="檔案", url="https://x.tw/a.csv", format="CSV"
    )
    return Dataset(id=ds_id, name=name, title="資料", owner_org=org, resources=(res,), **kw)


def test_dataset_round_trip_and_lookup_by_name_or_id(store):
    ds = _dataset(tags=("公園", "綠地"), extras=(("來源", "測試"),), private=True)
    stored = store.put_dataset(ds)
    assert store.dataset(ds.name) == stored == store.dataset(ds.id)
    assert replace(stored, metadata_created=None, metadata_modified=None) == replace(
        ds, resources=tuple(replace(r, created=stored.resources[0].created) for r in ds.resources)
    )
    assert stored.metadata_modified.tzinfo is not None
    assert [d.name for d in store.datasets(include_private=False)] == []
    with pytest.raises(NotFound):
        store.dataset("nope")


def test_names_are_unique_and_organizations_must_exist(store):
    store.put_dataset(_dataset())
    with pytest.raises(ValidationError) as taken:
        store.put_dataset(_dataset())
    assert taken.value.errors == {"name": ["That URL is already in use."]}
    with pytest.raises(ValidationError) as org:
        store.put_dataset(_dataset(name="other", org="no-such"))
    assert org.value.errors == {"owner_org": ["Organization does not exist"]}


def test_every_write_changes_the_marker(store):
    marks = [store.change_marker()]
    ds = store.put_dataset(_dataset())
    marks.append(store.change_marker())
    store.put_resource(
        Resource(id=str(uuid.uuid4()), package_id=ds.id, name="b", url="u", format="X")
    )
    marks.append(store.change_marker())
    store.delete_dataset(ds.id)
    marks.append(store.change_marker())
    assert len(set(marks)) == len(marks)
    assert store.dataset(ds.id).state == "deleted"
    store.purge_dataset(ds.id)
    with pytest.raises(NotFound):
        store.dataset(ds.id)


def test_resources_keep_their_order(store):
    ds = store.put_dataset(_dataset())
    extra = store.put_resource(
        Resource(id="r2", package_id=ds.id, name="二", url="u2", format="CSV")
    )
    assert extra.position == 1
    store.delete_resource(ds.resources[0].id)
    assert [(r.id, r.position) for r in store.dataset(ds.id).resources] == [("r2", 0)]


def test_passwords_and_tokens_are_stored_hashed(store, store_url):
    user = store.put_user(User(id=str(uuid.uuid4()), name="alice"), password="秘密 password")
    assert store.check_password("alice", "秘密 password") == user
    assert store.check_password("alice", "wrong") is None
    record, token = store.create_token("alice", "script")
    assert store.user_of_token(token) == user
    assert store.user_of_token(token + "x") is None
    with store.engine.connect() as conn:
        rows = [*conn.execute(portal_tokens.select()), *conn.execute(portal_users.select())]
    dump = "\n".join(str(tuple(r)) for r in rows)
    assert token not in dump and "秘密" not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert [t.id for t in store.tokens("alice")] == [record.id]


def test_memberships(store):
    store.put_user(User(id="u1", name="bob"))
    store.put_membership(Membership("agency-a", "bob", "member"))
    store.put_membership(Membership("agency-a", "bob", "editor"))
    assert store.memberships(user="bob") == [Membership("agency-a", "bob", "editor")]
    with pytest.raises(ValidationError):
        store.put_membership(Membership("agency-a", "bob", "owner"))
    with pytest.raises(NotFound):
        store.put_membership(Membership("no-such", "bob", "member"))
    store.delete_membership("agency-a", "bob")
    assert store.memberships(organization="agency-a") == []


def test_sync_makes_one_dataset_per_layer_and_is_idempotent(ingested, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    store = PortalStore.open(home)
    for ds in store.datasets(include_deleted=True):  # `geoportal ingest` synced them already
        store.purge_dataset(ds.id)
    written = sync(home)
    with Catalog.open(home) as catalog:
        published = {lyr.id for lyr in catalog.layers() if lyr.current_version}
        try:
            assert written == len(published)
            assert {d.layer_id for d in store.datasets()} == published
            assert sync(home) == 0  # nothing changed in the catalog
            gone = sorted(published)[0]
            catalog.delete_layer(gone)
            snapshot = CatalogView(catalog).snapshot()
            assert store.sync_layers(snapshot) == 1
            assert store.dataset(gone).state == "deleted"
        finally:
            store.close()


def test_layer_datasets_keep_api_additions_across_syncs(ingested, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    sync(home)
    store = PortalStore.open(home)
    try:
        layer_id = sorted(d.name for d in store.datasets())[0]
        ds = store.dataset(layer_id)
        extra = Resource(
            id="added", package_id=ds.id, name="說明文件", url="https://x.tw/d.pdf", format="PDF"
        )
        store.put_dataset(replace(ds, private=True, resources=(*ds.resources, extra)))
        with Catalog.open(home) as catalog:
            layer = catalog.get_layer(layer_id)
            catalog.upsert_layer(replace(layer, title=layer.title + "（新）"))
            snapshot = CatalogView(catalog).snapshot()
        store.sync_layers(snapshot)
        after = store.dataset(layer_id)
        assert after.title == layer.title + "（新）"
        assert after.private is True and after.resources[-1].id == "added"
    finally:
        store.close()


def test_organizations_are_the_agencies(store, store_url):
    names = [o.name for o in store.organizations()]
    assert names == ["agency-a", "agency-b"]
    org = store.organization("agency-a")
    assert store.organization(org.id) == org and org.title == "甲機關"
    assert replace(
        store.put_organization(replace(org, description="說明")), created=None
    ) == replace(org, description="說明", created=None)
    with Catalog(store_url) as catalog:  # the catalog still reads its agencies
        assert [a.title for a in catalog.agencies()] == ["甲機關", "乙機關"]


def test_datastore_tables_on_both_databases(store, tmp_path):
    from portal.ckan.actions.datastore import SCHEMAS, datastore_create, datastore_search
    from portal.ckan.actions.registry import Context, validate
    from portal.ckan.api import Portal
    from portal.ckan.auth import Caller

    ds = store.put_dataset(_dataset())
    ctx = Context(Portal(store, tmp_path, None), Caller(User("u", "root", sysadmin=True)), "", "x")
    rid = ds.resources[0].id
    fields = [
        {"id": "名稱", "type": "text"},
        {"id": "數量", "type": "int"},
        {"id": "值", "type": "numeric"},
    ]
    rows = [{"名稱": "甲 100%", "數量": 3, "值": 1.5}, {"名稱": "乙_x", "數量": 1, "值": None}]
    data = validate(
        {"resource_id": rid, "fields": fields, "records": rows}, SCHEMAS["datastore_create"]
    )
    datastore_create(ctx, data)

    def search(**kw):
        return datastore_search(
            ctx, validate({"resource_id": rid, **kw}, SCHEMAS["datastore_search"])
        )

    assert search(q="100%")["total"] == 1  # % and _ are literal, not wildcards
    assert search(q="_")["records"][0]["名稱"] == "乙_x"
    assert [r["數量"] for r in search(sort="數量 asc")["records"]] == [1, 3]
    assert search(filters={"數量": 3})["records"][0]["值"] == 1.5
    assert store.resource(rid).datastore_active is True
    store.delete_resource(rid)  # drops the table with the resource
    with store.engine.connect() as conn:
        from sqlalchemy import inspect

        assert not [t for t in inspect(conn).get_table_names() if t.startswith("datastore_")]


def test_a_write_without_touch_keeps_metadata_modified(store):
    stored = store.put_dataset(_dataset())
    labelled = store.put_dataset(replace(stored, extras=(("quality_label", "pass"),)), touch=False)
    assert labelled.metadata_modified == stored.metadata_modified
    assert dict(labelled.extras) == {"quality_label": "pass"}
    assert store.put_dataset(labelled).metadata_modified > stored.metadata_modified


def test_put_datasets_is_one_transaction(store):
    marker = store.change_marker()
    many = [_dataset(name=f"bulk-{i:04d}") for i in range(300)]
    assert store.put_datasets(many) == 300
    assert store.change_marker() == marker + 1  # one revision for the whole batch
    assert {d.name for d in store.datasets()} == {d.name for d in many}
    assert store.dataset("bulk-0042").resources[0].url == "https://x.tw/a.csv"
    clash = [_dataset(name="bulk-new"), _dataset(name="bulk-0001"), _dataset(name="bulk-z")]
    with pytest.raises(ValidationError) as caught:
        store.put_datasets(clash)  # bulk-0001 is taken by another dataset: nothing is stored
    assert "bulk-0001" in str(caught.value.errors["name"])
    assert {"bulk-new", "bulk-z"}.isdisjoint(d.name for d in store.datasets())
    assert store.change_marker() == marker + 1


def _publish_copy(home, layer_id: str) -> None:
    """A new catalog layer ``layer_id``: a copy of the first published layer and its version."""
    with Catalog.open(home) as catalog:
        source = next(lyr for lyr in catalog.layers() if lyr.current_version)
        version = catalog.current(source.id)
        catalog.upsert_layer(replace(source, id=layer_id, title="新圖層"))
        catalog.publish_version(replace(version, layer_id=layer_id))


def test_a_new_layer_takes_its_name_from_a_plain_dataset(ingested, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    sync(home)
    store = PortalStore.open(home)
    try:
        org = store.datasets()[0].owner_org
        plain = store.put_dataset(_dataset(name="bus-stops", org=org, source="catalog-export"))
        store.put_dataset(_dataset(name="bus-stops-dataset", org=org))  # the first choice: taken
        _publish_copy(home, "bus-stops")
        assert sync(home) == 2  # the rename and the layer's dataset
        layer_ds = store.dataset("bus-stops")
        assert layer_ds.layer_id == "bus-stops" and layer_ds.id != plain.id
        moved = store.dataset(plain.id)  # same id, new name, nothing else changed
        digest = hashlib.sha1(plain.id.encode()).hexdigest()
        assert moved.name == f"bus-stops-dataset-{digest[:6]}"
        assert moved.layer_id is None and moved.resources == plain.resources
        assert sync(home) == 0
    finally:
        store.close()


def test_a_claimed_plain_dataset_becomes_the_layer_dataset(ingested, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    sync(home)
    store = PortalStore.open(home)
    try:
        org = store.datasets()[0].owner_org
        plain = store.put_dataset(_dataset(name="new-roads", org=org, private=True))
        marker = store.change_marker()
        store.claim_layer("new-roads")
        assert store.change_marker() == marker  # bookkeeping no client sees
        assert store.layer_claims() == {"new-roads"}
        _publish_copy(home, "new-roads")
        sync(home)
        adopted = store.dataset("new-roads")
        assert adopted.id == plain.id and adopted.layer_id == "new-roads"
        assert adopted.private is True  # what the API set is kept
        assert plain.resources[0].id in {r.id for r in adopted.resources}
        assert any(r.generated for r in adopted.resources)
        assert store.layer_claims() == set()
        assert sync(home) == 0
    finally:
        store.close()
