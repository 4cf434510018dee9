"""portal.ckan.imports: non-spatial datasets from catalog exports, supply lists, data.gov.tw.

Expectations come from the files themselves, read here with the csv module, xlrd and json,
never from the code under test.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest
import xlrd

from ingest.errors import ManifestError
from ingest.manifest import load_specs, slugify
from portal.ckan.imports import (
    SOURCE,
    datasets_from_catalog,
    datasets_from_catalogs,
    is_catalog_source,
    record,
    split_tags,
)
from portal.ckan.layers import NAMESPACE
from portal.ckan.model import Dataset, Resource
from portal.ckan.store import PortalStore
from tests.serve import GEOPORTAL

TAICHUNG = Path("DragonChen-opendata-tw-list-crawler/out/raw/08_Taichung.csv")
TAOYUAN = Path("opendata-tw-datapackage/tycg_opendata_supply_list.xls")
DGTW = Path("opendata-tw-datapackage/dgtw_metadata_commit_8d7f7daa")
NAME_RE = re.compile(r"[a-z0-9_-]{2,100}")


def _extra(dataset: Dataset, key: str) -> str | None:
    return dict(dataset.extras).get(key)


def _by_row(result) -> dict[int, Dataset]:
    return {int(_extra(d, "source_row")): d for d in result.datasets}


def _line(text: str) -> str:
    """A cell as one line: whitespace runs as one space (titles and names are one line)."""
    return " ".join(text.split())


def _uuid(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"dataset:{name}"))


# --- real exports, read in place ------------------------------------------------------------


@pytest.fixture(scope="module")
def taichung_rows(real_data) -> tuple[list[str], dict[int, dict[str, str]]]:
    """(header, {row number: cells by header}) of Taichung's export, read with csv."""
    with (real_data / TAICHUNG).open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return header, {n: dict(zip(header, r, strict=True)) for n, r in enumerate(rows[1:], 2)}


@pytest.fixture(scope="module")
def taichung(real_data):
    return datasets_from_catalog(real_data / TAICHUNG)


@pytest.fixture(scope="module")
def taoyuan_rows(real_data) -> dict[int, dict[str, str]]:
    sheet = xlrd.open_workbook(str(real_data / TAOYUAN)).sheet_by_index(0)
    header = [str(h) for h in sheet.row_values(0)]
    return {
        r + 1: dict(zip(header, (str(v) for v in sheet.row_values(r)), strict=True))
        for r in range(1, sheet.nrows)
    }


@pytest.fixture(scope="module")
def taoyuan(real_data):
    return datasets_from_catalog(real_data / TAOYUAN)


@pytest.mark.realdata
def test_taichung_one_dataset_per_row_and_29_agencies(taichung, taichung_rows):
    _, rows = taichung_rows
    assert len(rows) == 1136
    by_row = _by_row(taichung)
    assert sorted(by_row) == sorted(rows)  # every row a dataset: none names a data source
    assert not taichung.refused
    (report,) = taichung.files
    assert (report.rows, report.datasets, report.layers, report.refused) == (1136, 1136, 0, 0)
    agencies = {r["資料集提供機關"] for r in rows.values()}
    assert len(agencies) == 29
    assert {o.title for o in taichung.organizations} == agencies
    assert sum(report.agencies.values()) == 1136 and len(report.agencies) == 29
    for n, row in rows.items():
        ds = by_row[n]
        assert ds.title == _line(row["資料集名稱"])
        assert ds.owner_org == slugify(row["資料集提供機關"])  # the ingest pipeline's agency slug
        assert ds.url == row["資料集連結網址"]
        assert ds.source == SOURCE and ds.layer_id is None
        assert [(r.url, r.format, r.kind) for r in ds.resources] == [
            (row["資料集連結網址"], "HTML", "link")
        ]
        assert ds.category == row["資料分類"]
        assert ds.maintainer.startswith(_line(row["資料集提供機關聯絡人"]))
        assert _line(row["資料集提供機關聯絡人電話"]) in ds.maintainer
        if row["資料集空間範圍"]:
            assert _extra(ds, "spatial_scope") == _line(row["資料集空間範圍"])
    names = [d.name for d in taichung.datasets]
    assert len(set(names)) == 1136 and all(NAME_RE.fullmatch(n) for n in names)
    assert all(d.id == _uuid(d.name) for d in taichung.datasets)


@pytest.mark.realdata
def test_taichung_embedded_newlines_are_kept(taichung, taichung_rows):
    _, rows = taichung_rows
    by_row = _by_row(taichung)
    multiline = [n for n, r in rows.items() if "\n" in r["資料集說明"]]
    assert len(multiline) == 81  # cells with line breaks inside their quotes
    inner = 0
    for n in multiline:
        raw = rows[n]["資料集說明"].replace("\r\n", "\n").replace("\r", "\n").strip()
        assert by_row[n].notes == raw
        inner += "\n" in raw
    assert inner > 20  # line breaks between lines of text, kept inside the description
    # the crawler wrote 181 fields descriptions with \r\n as text: they are line breaks
    literal = [n for n, r in rows.items() if "\\r\\n" in r["主要欄位說明"]]
    assert len(literal) == 181
    for n in literal:
        fields = by_row[n].fields_description
        # the escapes are JSON's: json decodes them, independently of the code under test
        decoded = json.loads(f'"{rows[n]["主要欄位說明"]}"', strict=False)
        assert fields == decoded.replace("\r\n", "\n").replace("\r", "\n").strip()
        assert "\\r" not in fields and "\\n" not in fields
    inner = [n for n in literal if "\n" in by_row[n].fields_description]
    assert inner  # some are several lines


@pytest.mark.realdata
def test_taichung_tags_are_split_as_the_agencies_wrote_them(taichung, taichung_rows):
    _, rows = taichung_rows
    by_row = _by_row(taichung)

    def tags_of(cell: str) -> tuple[str, ...]:
        n = next(n for n, r in rows.items() if r["關鍵字"] == cell)
        return by_row[n].tags

    assert tags_of("千分之一地形圖,CAD,地形圖,地形,地理資料") == (
        "千分之一地形圖",
        "CAD",
        "地形圖",
        "地形",
        "地理資料",
    )
    assert tags_of("105年, 交通事故") == ("105年", "交通事故")
    assert tags_of("捐贈 芳名錄") == ("捐贈", "芳名錄")
    empty = [n for n, r in rows.items() if not r["關鍵字"].strip()]
    assert empty and all(by_row[n].tags == () for n in empty)


@pytest.mark.realdata
def test_taichung_licences_and_update_frequencies(taichung, taichung_rows):
    _, rows = taichung_rows
    by_row = _by_row(taichung)
    for n, row in rows.items():
        ds, url = by_row[n], row["授權說明網址"]
        if url.rstrip("/").endswith("data.gov.tw/license"):
            assert ds.license_id == "OGDL-Taiwan-1.0"
        else:  # the city's own licence page: an open licence this portal cannot name
            assert ds.license_id == "other-open"
            assert _extra(ds, "license_text") == url.replace("\\u0026", "&")
    assert sum(r["授權說明網址"] == "https://data.gov.tw/license" for r in rows.values()) == 43
    irregular = [n for n, r in rows.items() if r["更新頻率"] == "不定時"]
    assert len(irregular) == 74
    for n in irregular:
        assert by_row[n].update_frequency == "不定期"
        assert _extra(by_row[n], "update_frequency_original") == "不定時"
    regular = [n for n, r in rows.items() if r["更新頻率"] == "每月"]
    assert all(by_row[n].update_frequency == "每月" for n in regular)
    assert all(_extra(by_row[n], "update_frequency_original") is None for n in regular)


@pytest.mark.realdata
def test_taoyuan_supply_list(taoyuan, taoyuan_rows):
    assert len(taoyuan_rows) == 1429
    by_row = _by_row(taoyuan)
    assert sorted(by_row) == sorted(taoyuan_rows)
    for n, row in taoyuan_rows.items():
        ds = by_row[n]
        agency = re.search(r"【(.+)】", row["資料集提供機關"]).group(1)
        assert ds.owner_org == slugify(agency)
        assert _extra(ds, "agency_original") == row["資料集提供機關"]
        assert ds.fields_description == row["主要欄位說明"].replace("\r\n", "\n").strip()
        assert ds.license_id == "OGDL-Taiwan-1.0"  # 政府資料開放授權條款－第1版
        assert _extra(ds, "license_original") == row["授權方式"]
        assert ds.maintainer_email == _line(row["資料集提供機關聯絡人電子郵件"])
        assert ds.url == row["資料連結網址"]
        assert ds.category == re.sub(r"\s*\(\d+\)$", "", row["分類及編號"]).replace("遷徒", "遷徙")
    assert len(taoyuan.organizations) == len(
        {re.search(r"【(.+)】", r["資料集提供機關"]).group(1) for r in taoyuan_rows.values()}
    )

    def tags_of(cell: str) -> tuple[str, ...]:
        return by_row[next(n for n, r in taoyuan_rows.items() if r["標籤/關鍵字"] == cell)].tags

    assert tags_of("Google Analytics, 燈會, 網站") == ("Google Analytics", "燈會", "網站")
    assert tags_of("創新 物聯網 職涯") == ("創新", "物聯網", "職涯")
    assert tags_of("公告現值, 101, 桃園") == ("公告現值", "101", "桃園")


@pytest.mark.realdata
def test_real_exports_every_row_is_a_dataset_a_layer_or_reported(real_data):
    sources = [real_data / TAICHUNG, real_data / TAOYUAN]
    layers = load_specs(sources)
    result = datasets_from_catalogs(sources)
    counted = 1136 + 1429  # rows counted above with csv and xlrd
    assert len(layers.specs) + len(result.datasets) + len(result.refused) == counted
    assert len({d.name for d in result.datasets}) == len(result.datasets)
    assert all(NAME_RE.fullmatch(d.name) for d in result.datasets)


@pytest.mark.realdata
def test_data_gov_tw_records_of_both_generations(real_data):
    folder = real_data / DGTW
    files = sorted(folder.rglob("*.json"))
    docs = {p: json.loads(p.read_text(encoding="utf-8")) for p in files}
    new = {p: d for p, d in docs.items() if "TITLE" in d}
    old = {p: d for p, d in docs.items() if "提供機關" in d}
    sidecars = [p for p in files if p.stem.endswith("[r]")]
    assert len(files) == 956 and len(old) == 10 and len(sidecars) == 10
    nodes = {str(int(d["NODE"])) for d in new.values()} | {d["node"] for d in old.values()}
    result = datasets_from_catalog(folder)
    by_node = {_extra(d, "data_gov_tw_node"): d for d in result.datasets}
    assert set(by_node) == nodes  # one dataset per data.gov.tw node
    assert len(result.datasets) == len(nodes) == 936
    assert len(result.refused) == len(new) + len(old) - len(nodes)  # the same node twice
    assert all("the same dataset" in r.reason for r in result.refused)
    (report,) = result.files
    assert (report.rows, report.merged) == (956, 10)
    for d in new.values():
        ds = by_node[str(int(d["NODE"]))]
        assert ds.title == _line(d["TITLE"])
        assert ds.owner_org == slugify(d["AGENCY"])
        assert ds.url == f"https://data.gov.tw/dataset/{int(d['NODE'])}"
        urls = list(dict.fromkeys(r["RES_URL"] for r in d["RESOURCE"] if r["RES_URL"]))
        assert [r.url for r in ds.resources] == urls
        assert ds.license_id == "OGDL-Taiwan-1.0"
        if "UPDATE_FREQ" not in d:
            assert ds.update_frequency == ""
    for path, d in old.items():
        ds = by_node[d["node"]]
        assert (ds.title, ds.notes) == (d["title"], d["資料集描述"])
        assert ds.fields_description == d["主要欄位說明"]
        mine = {r["資源網址"] for r in d["資料資源"].values()}
        side = json.loads(path.with_name(f"{path.stem}[r].json").read_text(encoding="utf-8"))
        theirs = {v for k, v in side.items() if re.fullmatch(r"resource_\d+_url", k)}
        assert {r.url for r in ds.resources} == mine | theirs
    formats = Counter(r.format for ds in result.datasets for r in ds.resources)
    assert formats["CSV"] > 0 and formats["ZIP"] > 0  # 壓縮檔 is ZIP


@pytest.mark.realdata
def test_a_single_data_gov_tw_record(real_data):
    path = next((real_data / DGTW).rglob("37353*.json"))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert is_catalog_source(path)
    (ds,) = datasets_from_catalog(path).datasets
    assert ds.title == doc["TITLE"]
    assert [(r.format, r.encoding) for r in ds.resources] == [
        (r["RES_FILETYPE"], r["RES_ENCODE"]) for r in doc["RESOURCE"]
    ]
    assert ds.tags == tuple(doc["KEYWORDS"])
    assert ds.fields_description == "、".join(doc["SCHEMA"])


# --- supply lists made in code ---------------------------------------------------------------

HEADER = [
    "資料集名稱",
    "資料集提供機關",
    "更新頻率",
    "檔案位置",
    "資料集連結網址",
    "關鍵字",
    "備註",
]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _point(path: Path) -> Path:
    feature = {
        "type": "Feature",
        "properties": {"名稱": "測試點"},
        "geometry": {"type": "Point", "coordinates": [120.68, 24.14]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), "utf-8")
    return path


MIXED = [
    ["公園點位", "臺中市政府建設局", "每月", "parks.geojson", "", "公園", ""],
    ["停車場資訊", "臺中市政府交通局", "不定時", "", "https://example.org/d/1", "停車、交通", ""],
    ["", "臺中市政府交通局", "每月", "", "https://example.org/d/2", "", "no title"],
    ["", "", "", "", "", "", ""],
    ["停車場資訊", "臺中市政府交通局", "每日", "", "https://example.org/d/1", "", "again"],
    ["停車場資訊", "臺中市政府建設局", "每日", "", "https://example.org/d/3", "", ""],
    ["路燈", "", "每月", "", "https://example.org/d/4", "", "no agency"],
]


def test_every_row_is_a_layer_a_dataset_or_refused(tmp_path):
    path = _write(tmp_path / "供應清單.csv", MIXED)
    _point(tmp_path / "parks.geojson")
    specs = load_specs([path]).specs
    result = datasets_from_catalog(path)
    assert [s.title for s in specs] == ["公園點位"]
    assert [d.title for d in result.datasets] == ["停車場資訊", "停車場資訊"]
    refused = {r.row: r.reason for r in result.refused}
    assert set(refused) == {4, 6, 8}
    assert "no title" in refused[4] and "no agency" in refused[8]
    assert "the same dataset" in refused[6] and "row 3" in refused[6]
    non_blank = sum(any(c for c in r) for r in MIXED)
    assert len(specs) + len(result.datasets) + len(result.refused) == non_blank
    (report,) = result.files
    assert (report.rows, report.layers, report.datasets, report.refused) == (6, 1, 2, 3)
    first = result.datasets[0]
    assert first.update_frequency == "不定期" and first.tags == ("停車", "交通")
    # the same title twice: both names carry a hash of their own key, so neither depends on order
    a, b = (d.name for d in result.datasets)
    assert a != b and a.startswith("ting-che-chang-zi-xun-") and b.startswith(a[:-6])


def test_names_do_not_depend_on_row_order(tmp_path):
    rows = [
        [f"資料{i % 7}", f"機關{i % 3}", "每月", "", f"https://example.org/d/{i}", "", ""]
        for i in range(40)
    ]
    first = datasets_from_catalog(_write(tmp_path / "a.csv", rows))
    random.Random(7).shuffle(rows)
    second = datasets_from_catalog(_write(tmp_path / "b.csv", rows))
    names = {d.url: (d.name, d.id) for d in first.datasets}
    assert {d.url: (d.name, d.id) for d in second.datasets} == names
    assert len({n for n, _ in names.values()}) == 40


def test_split_tags():
    assert split_tags("道路、路網，橋梁,隧道;捷運；公車") == (
        "道路",
        "路網",
        "橋梁",
        "隧道",
        "捷運",
        "公車",
    )
    assert split_tags("Open Data 開放資料 x") == ("Open Data", "開放資料")  # "x": too short
    assert split_tags(["防災、颱風", "防災"]) == ("防災", "颱風")


def test_a_file_that_is_no_export_is_refused_clearly(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"type": "FeatureCollection", "features": []}', "utf-8")
    assert not is_catalog_source(path)
    with pytest.raises(ManifestError, match=r"not a data\.gov\.tw metadata record"):
        datasets_from_catalog(path)
    with pytest.raises(ManifestError, match="no such file"):
        datasets_from_catalog(tmp_path / "missing.csv")


# --- storing ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = PortalStore.open(tmp_path / "home")
    yield s
    s.close()


def test_record_is_idempotent_and_updates_what_changed(tmp_path, store):
    rows = [
        ["停車場資訊", "臺中市政府交通局", "每月", "", "https://example.org/d/1", "停車", "甲"],
        ["公廁", "臺中市政府環境保護局", "每年", "", "https://example.org/d/2", "", ""],
    ]
    path = _write(tmp_path / "list.csv", rows)
    counts = record(store, datasets_from_catalog(path))
    assert (counts.created, counts.organizations_created) == (2, 2)
    stored = {d.name: d for d in store.datasets()}
    assert {d.title for d in stored.values()} == {"停車場資訊", "公廁"}
    assert store.organization(slugify("臺中市政府交通局")).title == "臺中市政府交通局"
    again = record(store, datasets_from_catalog(path))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert {d.name: d.metadata_modified for d in store.datasets()} == {
        n: d.metadata_modified for n, d in stored.items()
    }
    # a client adds a resource through the API; the agency then edits its list
    parking = stored[next(n for n, d in stored.items() if d.title == "停車場資訊")]
    added = Resource(str(uuid.uuid4()), parking.id, "說明", "https://example.org/a.pdf", "PDF")
    store.put_resource(added)
    rows[0][6] = "改了備註"
    path = _write(tmp_path / "list.csv", rows)
    changed = record(store, datasets_from_catalog(path))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    now = store.dataset(parking.name)
    assert now.id == parking.id and _extra(now, "remarks") == "改了備註"
    assert [r.url for r in now.resources] == ["https://example.org/d/1", added.url]
    assert len(store.datasets()) == 2
    rows[0][6] = ""  # a remark removed from the list is removed from the dataset
    record(store, datasets_from_catalog(_write(tmp_path / "list.csv", rows)))
    assert _extra(store.dataset(parking.name), "remarks") is None


def test_record_keeps_names_of_other_datasets_and_layers(tmp_path, store):
    path = _write(tmp_path / "list.csv", [["道路", "臺中市政府建設局", "", "", "u://1", "", ""]])
    other = _write(tmp_path / "other.csv", [["道路", "臺中市政府建設局", "", "", "u://2", "", ""]])
    counts = record(store, datasets_from_catalog(path), reserved={"dao-lu"})
    (ds,) = store.datasets()
    assert counts.renamed == 1 and ds.name.startswith("dao-lu-") and ds.id == _uuid(ds.name)
    second = record(store, datasets_from_catalog(other), reserved={"dao-lu"})
    assert second.created == 1 and len({d.name for d in store.datasets()}) == 2
    assert record(store, datasets_from_catalog(path), reserved={"dao-lu"}).unchanged == 1


# --- the command line ------------------------------------------------------------------------


def _ingest(home: Path, *sources: Path) -> dict:
    out = subprocess.run(
        [*GEOPORTAL, "ingest", *map(str, sources), "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_ingest_of_a_mixed_supply_list(tmp_path):
    path = _write(tmp_path / "供應清單.csv", MIXED)
    _point(tmp_path / "parks.geojson")
    home = tmp_path / "home"
    report = _ingest(home, path)
    assert [r["status"] for r in report["layers"]] == ["published"]
    assert report["skipped"] == []  # the rows without a data source are datasets now
    datasets = report["datasets"]
    assert datasets["stored"]["created"] == 2 and datasets["refused"] == 3
    assert {r["row"] for r in datasets["refused_rows"]} == {4, 6, 8}
    again = _ingest(home, path)
    assert again["datasets"]["stored"]["unchanged"] == 2
    assert [r["status"] for r in again["layers"]] == ["unchanged"]
    store = PortalStore.open(home)
    try:
        stored = [d for d in store.datasets() if d.source == SOURCE]
        assert sorted(d.title for d in stored) == ["停車場資訊", "停車場資訊"]
    finally:
        store.close()


@pytest.mark.realdata
def test_cli_reingest_of_taichung_changes_nothing(real_data, tmp_path, taichung_rows):
    _, rows = taichung_rows
    home = tmp_path / "home"
    first = _ingest(home, real_data / TAICHUNG)["datasets"]
    assert first["stored"]["created"] == len(rows)
    assert first["stored"]["organizations_created"] == 29
    store = PortalStore.open(home)
    try:
        before = {d.name: d.id for d in store.datasets()}
    finally:
        store.close()
    second = _ingest(home, real_data / TAICHUNG)["datasets"]
    assert second["stored"] == {
        "created": 0,
        "updated": 0,
        "unchanged": len(rows),
        "renamed": 0,
        "organizations_created": 0,
    }
    store = PortalStore.open(home)
    try:
        assert {d.name: d.id for d in store.datasets()} == before
    finally:
        store.close()
