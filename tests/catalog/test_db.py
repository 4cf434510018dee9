"""The catalog backend (catalog/db.py), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import multiprocessing
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog import (
    Agency,
    Catalog,
    CatalogError,
    Decision,
    FieldInfo,
    LayerNotFound,
    LayerVersionNotFound,
)
from tests.catalog.helpers import (
    CIVIL,
    EDUCATION,
    TRANSPORT,
    full_version,
    make_layer,
    make_version,
    read_while_writing,
)

# -- agencies ------------------------------------------------------------------------------------


def test_agencies_are_inserted_updated_and_listed_by_name(catalog: Catalog):
    catalog.upsert_agency(TRANSPORT)
    catalog.upsert_agency(CIVIL)
    catalog.upsert_agency(Agency("transportation", "臺中市交通局", "Traffic Bureau"))
    assert catalog.agencies() == [
        CIVIL,
        Agency("transportation", "臺中市交通局", "Traffic Bureau"),
    ]


def test_an_agency_written_without_english_keeps_its_english_title(catalog: Catalog):
    catalog.upsert_agency(Agency("transportation", "臺中市政府交通局", "Transportation Bureau"))
    catalog.upsert_agency(Agency("transportation", "臺中市政府交通局"))  # as a manifest names it
    assert catalog.agencies() == [
        Agency("transportation", "臺中市政府交通局", "Transportation Bureau")
    ]


# -- layers --------------------------------------------------------------------------------------


def test_layer_metadata_round_trips(catalog: Catalog):
    layer = make_layer(
        "parking-lots",
        "公有路外停車場",
        title_en="Public off-street parking",
        description="本市公有路外停車場位置與格位數。",
        category="交通及通訊",
        keywords=("停車", "交通"),
        license="OGDL-Taiwan-1.0",
        update_frequency="每月",
        style={"fill": "#3366cc", "opacity": 0.5, "labels": ["名稱"]},
        tileset="parking-lots.pmtiles",
    )
    stored = catalog.upsert_layer(layer)
    got = catalog.get_layer("parking-lots")
    assert got == stored
    assert got == replace(layer, created=got.created, modified=got.modified)
    assert got.style == {"fill": "#3366cc", "opacity": 0.5, "labels": ["名稱"]}
    assert got.current_version is None
    assert got.created is not None and got.created.tzinfo == UTC
    assert got.modified == got.created
    assert catalog.agencies() == [TRANSPORT]


def test_upsert_layer_changes_metadata_never_the_current_version(catalog: Catalog):
    first = catalog.upsert_layer(make_layer("roads", "道路中心線"))
    catalog.publish_version(make_version("roads", 1))
    published = catalog.get_layer("roads")
    again = catalog.upsert_layer(
        make_layer("roads", "道路中心線（更新）", current_version="ffffffffffffffff")
    )
    assert again.title == "道路中心線（更新）"
    assert again.current_version == make_version("roads", 1).version
    assert again.created == first.created
    assert again.modified is not None and published.modified is not None
    assert again.modified >= published.modified


def test_storing_the_same_metadata_again_keeps_modified(catalog: Catalog):
    layer = make_layer("roads", "道路中心線", keywords=("道路",), style={"stroke": "#999"})
    first = catalog.upsert_layer(layer)
    assert catalog.upsert_layer(layer).modified == first.modified


def test_upsert_layer_moves_a_layer_to_another_agency(catalog: Catalog):
    catalog.upsert_layer(make_layer("schools", "學校", agency=CIVIL))
    catalog.upsert_layer(make_layer("schools", "學校", agency=EDUCATION))
    assert catalog.get_layer("schools").agency == EDUCATION
    assert catalog.agencies() == [CIVIL, EDUCATION]


def test_metadata_the_database_cannot_store_is_a_catalog_error(catalog: Catalog):
    with pytest.raises(CatalogError, match="'roads'"):
        catalog.upsert_layer(make_layer("roads", "道路", style={"fill": object()}))
    with pytest.raises(CatalogError, match="style must be JSON"):
        catalog.upsert_layer(make_layer("roads", "道路", style={"opacity": float("nan")}))
    with pytest.raises(LayerNotFound):
        catalog.get_layer("roads")


def test_layers_are_listed_by_id(catalog: Catalog):
    for layer_id in ("villages", "districts", "roads"):
        catalog.upsert_layer(make_layer(layer_id, f"圖層 {layer_id}"))
    assert [layer.id for layer in catalog.layers()] == ["districts", "roads", "villages"]


def test_unknown_layer_is_named_in_the_error(catalog: Catalog):
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.get_layer("no-such-layer")
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.current("no-such-layer")
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.versions("no-such-layer")
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.version("no-such-layer", "0000000000000001")
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.delete_layer("no-such-layer")
    with pytest.raises(LayerNotFound, match="'no-such-layer'"):
        catalog.publish_version(make_version("no-such-layer", 1))


def test_delete_layer_returns_its_versions_and_forgets_everything(catalog: Catalog):
    fields = (FieldInfo("停車位數", "integer"),)
    v1, v2 = make_version("parking", 1, fields=fields), make_version("parking", 2, fields=fields)
    catalog.upsert_layer(make_layer("parking", "停車場"))
    catalog.publish_version(v1)
    catalog.publish_version(v2)
    assert catalog.delete_layer("parking") == [v2, v1]
    with pytest.raises(LayerNotFound):
        catalog.get_layer("parking")
    assert catalog.agencies() == [TRANSPORT]
    # The same id again starts from nothing: no versions, no search tokens of the old one.
    catalog.upsert_layer(make_layer("parking", "機車格"))
    assert catalog.versions("parking") == []
    assert catalog.current("parking") is None
    assert catalog.search("停車位") == []
    assert catalog.search("停車場") == []


# -- versions ------------------------------------------------------------------------------------


def test_every_field_of_a_version_round_trips(catalog: Catalog):
    catalog.upsert_layer(make_layer("buildings", "建物"))
    version = full_version("buildings")
    assert catalog.publish_version(version) == []
    assert catalog.current("buildings") == version
    assert catalog.version("buildings", version.version) == version
    assert catalog.versions("buildings") == [version]
    stored = catalog.current("buildings")
    assert stored is not None
    assert stored.created.tzinfo == UTC
    assert isinstance(stored.lineage.repairs[0].records, tuple)


def test_current_all_reads_every_current_version_in_one_call(catalog: Catalog):
    catalog.upsert_layer(make_layer("buildings", "建物"))
    catalog.upsert_layer(make_layer("parking", "停車場"))
    catalog.upsert_layer(make_layer("unpublished", "未發布"))
    b1, b2 = make_version("buildings", 1), make_version("buildings", 2)
    p1 = make_version("parking", 1)
    for v in (b1, b2, p1):
        catalog.publish_version(v)
    assert catalog.current_all() == {"buildings": b2, "parking": p1}


def test_table_version_without_bbox_and_with_local_time_round_trips(catalog: Catalog):
    catalog.upsert_layer(make_layer("budget", "預算表"))
    taipei = timezone(timedelta(hours=8))
    version = make_version(
        "budget",
        1,
        kind="table",
        geometry_type="",
        bbox=None,
        fields=(),
        created=datetime(2024, 1, 1, 8, 0, tzinfo=taipei),
    )
    catalog.publish_version(version)
    stored = catalog.current("budget")
    assert stored == version
    assert stored is not None and stored.bbox is None
    assert stored.created == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert stored.created.tzinfo == UTC


def test_current_is_none_before_the_first_publish(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    assert catalog.current("roads") is None
    assert catalog.versions("roads") == []


def test_publish_switches_the_current_version(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    v1, v2 = make_version("roads", 1), make_version("roads", 2)
    catalog.publish_version(v1)
    before = catalog.get_layer("roads")
    catalog.publish_version(v2)
    after = catalog.get_layer("roads")
    assert catalog.current("roads") == v2
    assert after.current_version == v2.version
    assert before.modified is not None and after.modified is not None
    assert after.modified >= before.modified
    assert catalog.versions("roads") == [v2, v1]


def test_republishing_a_stored_version_makes_it_current_again(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    v1, v2 = make_version("roads", 1), make_version("roads", 2)
    catalog.publish_version(v1)
    catalog.publish_version(v2)
    # Same data again (same version id), described differently: the stored one is kept.
    assert catalog.publish_version(replace(v1, path="layers/roads/elsewhere.parquet")) == []
    assert catalog.current("roads") == v1
    assert catalog.versions("roads") == [v2, v1]


def test_publish_prunes_beyond_keep_but_never_the_current_version(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    v = {n: make_version("roads", n) for n in range(1, 7)}
    assert catalog.publish_version(v[1], keep=3) == []
    assert catalog.publish_version(v[2], keep=3) == []
    assert catalog.publish_version(v[3], keep=3) == []
    assert catalog.publish_version(v[4], keep=3) == [v[1]]
    assert catalog.publish_version(v[5], keep=3) == [v[2]]
    assert catalog.publish_version(v[6], keep=3) == [v[3]]
    assert catalog.versions("roads") == [v[6], v[5], v[4]]
    # Roll back to v4 and keep only the newest one: v6 is newest, v4 is current, v5 goes.
    assert catalog.publish_version(v[4], keep=1) == [v[5]]
    assert catalog.versions("roads") == [v[6], v[4]]
    assert catalog.current("roads") == v[4]
    with pytest.raises(LayerVersionNotFound, match=r"'roads'.*'0000000000000005'"):
        catalog.version("roads", v[5].version)
    # keep=0 keeps the current version only.
    assert catalog.publish_version(v[4], keep=0) == [v[6]]
    assert catalog.versions("roads") == [v[4]]


def test_publish_keeps_five_versions_by_default(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    pruned = [catalog.publish_version(make_version("roads", n)) for n in range(1, 8)]
    assert pruned[:5] == [[], [], [], [], []]
    assert pruned[5:] == [[make_version("roads", 1)], [make_version("roads", 2)]]
    assert len(catalog.versions("roads")) == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "vectr"},
        {"feature_count": -1},
        {"bbox": (120.5, 24.4, 121.0, 24.0)},
        {"version": ""},
    ],
    ids=["unknown-kind", "negative-count", "upside-down-bbox", "empty-version"],
)
def test_a_failed_publish_keeps_the_previous_current_version(catalog: Catalog, bad: dict):
    catalog.upsert_layer(make_layer("parking", "停車場"))
    v1 = make_version("parking", 1, fields=(FieldInfo("名稱", "string"),))
    catalog.publish_version(v1)
    before = catalog.get_layer("parking")
    broken = make_version("parking", 2, fields=(FieldInfo("收費標準", "string"),), **bad)
    with pytest.raises(CatalogError, match="'parking'"):
        catalog.publish_version(broken, keep=1)
    assert catalog.current("parking") == v1
    assert catalog.versions("parking") == [v1]
    assert catalog.get_layer("parking") == before
    assert catalog.get_layer("parking").modified == before.modified
    assert catalog.search("收費") == []
    assert [hit.layer.id for hit in catalog.search("名稱")] == ["parking"]
    # and the catalog still takes good versions
    catalog.publish_version(make_version("parking", 3))
    assert catalog.current("parking") == make_version("parking", 3)


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "../outside.parquet", "layers/../../x", "C:\\data\\x", "C:x"]
)
def test_publish_refuses_paths_outside_the_home(catalog: Catalog, path: str):
    catalog.upsert_layer(make_layer("roads", "道路"))
    with pytest.raises(CatalogError, match="must be relative to the data home"):
        catalog.publish_version(make_version("roads", 1, path=path))
    assert catalog.current("roads") is None


def test_publish_refuses_naive_times_and_bad_arguments(catalog: Catalog):
    catalog.upsert_layer(make_layer("roads", "道路"))
    with pytest.raises(CatalogError, match="timezone-aware"):
        catalog.publish_version(make_version("roads", 1, created=datetime(2024, 1, 1)))
    with pytest.raises(CatalogError, match="finite"):
        catalog.publish_version(make_version("roads", 1, bbox=(120.0, 24.0, float("nan"), 25.0)))
    nan_decision = Decision("crs", "EPSG:3826", "ranges", float("nan"))
    lineage = replace(make_version("roads", 1).lineage, decisions=(nan_decision,))
    with pytest.raises(CatalogError, match="confidence"):
        catalog.publish_version(make_version("roads", 1, lineage=lineage))
    with pytest.raises(ValueError, match="keep"):
        catalog.publish_version(make_version("roads", 1), keep=-1)
    assert catalog.versions("roads") == []


# -- opening, reopening, several readers ---------------------------------------------------------


def test_reopening_finds_everything(catalog_url: str):
    with Catalog(catalog_url) as catalog:
        catalog.upsert_layer(make_layer("roads", "道路"))
        catalog.publish_version(full_version("roads"))
    with Catalog(catalog_url) as catalog:
        assert catalog.current("roads") == full_version("roads")
        assert [hit.layer.id for hit in catalog.search("道路")] == ["roads"]


def test_open_puts_a_sqlite_catalog_in_the_data_home(tmp_path: Path):
    home = tmp_path / "new" / "home"
    with Catalog.open(home) as catalog:
        catalog.upsert_layer(make_layer("roads", "道路"))
    assert (home / "catalog.sqlite").is_file()
    with Catalog.open(home, f"sqlite:///{home / 'catalog.sqlite'}") as catalog:
        assert [layer.id for layer in catalog.layers()] == ["roads"]


def test_open_with_a_url_uses_that_database(catalog_url: str, tmp_path: Path):
    with Catalog.open(tmp_path / "home", catalog_url) as catalog:
        catalog.upsert_layer(make_layer("roads", "道路"))
    with Catalog(catalog_url) as catalog:
        assert [layer.id for layer in catalog.layers()] == ["roads"]


def test_a_database_that_cannot_be_opened_is_a_catalog_error(tmp_path: Path):
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_bytes(b"this is not a database, just some notes " * 100)
    with pytest.raises(CatalogError, match="could not migrate the catalog"):
        Catalog(f"sqlite:///{not_a_db}")
    with pytest.raises(CatalogError, match=r"127\.0\.0\.1:1/"):
        Catalog("postgresql+psycopg://postgres@127.0.0.1:1/nothing")


def test_a_second_catalog_on_the_same_database_sees_new_versions(catalog_url: str):
    with Catalog(catalog_url) as writer, Catalog(catalog_url) as reader:
        writer.upsert_layer(make_layer("roads", "道路"))
        assert reader.current("roads") is None
        writer.publish_version(make_version("roads", 1))
        assert reader.current("roads") == make_version("roads", 1)
        writer.publish_version(make_version("roads", 2))
        assert reader.current("roads") == make_version("roads", 2)
        assert reader.versions("roads") == [make_version("roads", n) for n in (2, 1)]


def test_sqlite_reader_in_a_transaction_does_not_block_the_writer(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    with Catalog(f"sqlite:///{path}") as catalog:
        catalog.upsert_layer(make_layer("roads", "道路"))
        catalog.publish_version(make_version("roads", 1))
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            query = "SELECT current_version FROM layers WHERE id = ?"
            assert reader.execute(query, ("roads",)).fetchone() == ("0000000000000001",)
            # WAL: the writer commits while the reader's snapshot stays open ...
            catalog.publish_version(make_version("roads", 2))
            assert reader.execute(query, ("roads",)).fetchone() == ("0000000000000001",)
            reader.execute("COMMIT")
            # ... and the reader's next transaction sees the new version.
            assert reader.execute(query, ("roads",)).fetchone() == ("0000000000000002",)
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            reader.close()


def test_reader_processes_see_a_consistent_current_version_while_one_writes(catalog_url: str):
    versions = [make_version("roads", n) for n in range(1, 13)]
    with Catalog(catalog_url) as catalog:
        catalog.upsert_layer(make_layer("roads", "道路"))
        catalog.publish_version(versions[0])
        ctx = multiprocessing.get_context("spawn")
        done, out = ctx.Event(), ctx.Queue()
        readers = []
        for _ in range(2):
            ready = ctx.Event()
            process = ctx.Process(
                target=read_while_writing,
                args=(catalog_url, "roads", versions[-1].version, ready, done, out),
            )
            process.start()
            readers.append((process, ready))
        for _process, ready in readers:
            assert ready.wait(120), "reader process did not start"
        for version in versions[1:]:
            catalog.publish_version(version, keep=3)
        done.set()
        results = [out.get(timeout=120) for _ in readers]
        for process, _ready in readers:
            process.join(120)
            assert process.exitcode == 0
        assert [status for status, _ in results] == ["ok", "ok"], results
        assert catalog.versions("roads") == versions[:-4:-1]
