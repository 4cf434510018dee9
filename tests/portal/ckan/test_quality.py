"""Quality labels (標章): the three axes checked over real HTTP, and `geoportal check`.

An "agency" web server (http.server in a thread) serves good and bad files; the portal's own
layer datasets are checked through the real `geoportal serve` and in-process by the CLI.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import ckanapi
import openpyxl
import pytest

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ckan.layers import dataset_of_layer
from portal.ckan.model import Dataset, Resource
from portal.ckan.quality import (
    EXTRA_KEYS,
    Fetcher,
    FetchPolicy,
    check_dataset,
    check_datasets,
    described_names,
    frequency_period,
    origin,
    quality_extras,
    sniff,
    with_quality,
)
from portal.ckan.store import PortalStore
from tests.serve import GEOPORTAL, serving

ROWS = [("名稱", "地址", "電話"), ("北屯停車場", "臺中市北屯區崇德路一段", "04-22345678")]
CSV_TEXT = "\r\n".join(",".join(r) for r in ROWS) + "\r\n"
LAYERS = ("public-parking", "rivers", "taichung-villages")  # point, line, polygon


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    for row in ROWS:
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.csv", CSV_TEXT)
    return buf.getvalue()


GEOJSON = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"名稱": "北屯停車場", "格位數": 120},
                "geometry": {"type": "Point", "coordinates": [120.7, 24.18]},
            }
        ],
    },
    ensure_ascii=False,
).encode("utf-8")

FILES: dict[str, tuple[int, str, bytes]] = {
    "/good.csv": (200, "text/csv", CSV_TEXT.encode("utf-8")),
    "/bom.csv": (200, "text/csv", b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8")),
    "/big5.csv": (200, "text/csv", CSV_TEXT.encode("cp950")),
    "/page.csv": (
        200,
        "text/html",
        "<!DOCTYPE html><html><body>請至首頁下載</body></html>".encode(),
    ),
    "/zipped.csv": (200, "application/zip", _zip()),
    "/report.pdf": (
        200,
        "application/pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    ),
    "/table.xlsx": (200, "application/octet-stream", _xlsx()),
    "/points.geojson": (200, "application/geo+json", GEOJSON),
    "/empty.csv": (200, "text/csv", b""),
    "/資料/停車場 清冊.csv": (200, "text/csv", CSV_TEXT.encode("utf-8")),
}


class _Agency(BaseHTTPRequestHandler):
    """Serves FILES; /to-file and /to-missing redirect; /hang answers late."""

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/hang":
            time.sleep(3)
        if path in ("/to-file", "/to-missing", "/to-good"):
            target = {
                "/to-file": "file:///etc/passwd",
                "/to-missing": "/missing.csv",
                "/to-good": "/good.csv",
            }[path]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, kind, body = FILES.get(path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def agency() -> Iterator[str]:
    """Base URL of the agency server (on 127.0.0.1: a private address)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agency)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def fetcher(agency) -> Fetcher:
    """Fetches with the agency server trusted (as `--allow-origin` does)."""
    return Fetcher(FetchPolicy(timeout=2, trusted_origins=frozenset({origin(agency)})))


def _resource(url: str, fmt: str = "CSV", encoding: str = "UTF-8", **kw) -> Resource:
    return Resource(
        id=f"r-{url}-{fmt}", package_id="d", name=url, url=url, format=fmt, encoding=encoding, **kw
    )


def _dataset(*resources: Resource, fields: str = "名稱、地址、電話", **kw) -> Dataset:
    kw.setdefault("update_frequency", "不定期")
    kw.setdefault("metadata_modified", datetime.now(UTC))
    kw.setdefault("name", "parking")
    return Dataset(
        id="d",
        title="停車場資訊",
        owner_org="transport",
        fields_description=fields,
        resources=resources,
        **kw,
    )


def _codes(axis) -> set[str]:
    return {f.code for f in axis.findings if f.fails}


# --------------------------------------------------------------------------- the three axes


def test_a_good_csv_dataset_meets_all_three_axes(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/good.csv")), fetcher)
    assert report.passed, report.findings
    assert report.label == "符合"
    extras = quality_extras(report)
    assert {k: extras[k] for k in EXTRA_KEYS[:4]} == {
        "quality_obtainable": "pass",
        "quality_processable": "pass",
        "quality_understandable": "pass",
        "quality_label": "符合",
    }
    assert extras["quality_findings"] == ""


def test_utf8_with_bom_declared_utf8_passes(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/bom.csv")), fetcher)
    assert report.processable.passed, report.processable.findings


def test_big5_bytes_declared_utf8_fail_processable(agency, fetcher):
    body = FILES["/big5.csv"][2]
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # the premise: these bytes are not UTF-8
    report = check_dataset(_dataset(_resource(f"{agency}/big5.csv", encoding="UTF-8")), fetcher)
    assert not report.processable.passed
    assert _codes(report.processable) == {"encoding-mismatch"}
    finding = next(f for f in report.processable.findings if f.fails)
    assert "UTF-8" in finding.zh and "Big5" in finding.zh
    assert finding.resource == f"{agency}/big5.csv"
    assert report.obtainable.passed
    # declared right, the same bytes pass
    right = check_dataset(_dataset(_resource(f"{agency}/big5.csv", encoding="BIG5")), fetcher)
    assert right.processable.passed, right.processable.findings
    # and the header was read in Big5: the description matches the real columns
    assert right.understandable.passed, right.understandable.findings


@pytest.mark.parametrize(
    ("path", "seen"), [("/page.csv", "HTML"), ("/zipped.csv", "zip")], ids=["html", "zip"]
)
def test_a_csv_that_is_not_csv_fails_processable(agency, fetcher, path, seen):
    report = check_dataset(_dataset(_resource(f"{agency}{path}")), fetcher)
    assert report.obtainable.passed  # it is there ...
    assert _codes(report.processable) == {"format-mismatch"}  # ... but it is not a CSV
    assert seen.lower() in next(f for f in report.processable.findings if f.fails).en.lower()
    assert report.label == "未符合：可處理性"


def test_a_404_fails_obtainable(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/missing.csv")), fetcher)
    assert not report.obtainable.passed
    finding = next(f for f in report.obtainable.findings if f.fails)
    assert finding.code == "http-status" and "404" in finding.zh
    assert "可取得性" in report.label


def test_an_empty_body_and_a_redirect_to_a_404_fail_obtainable(agency, fetcher):
    report = check_dataset(
        _dataset(_resource(f"{agency}/empty.csv"), _resource(f"{agency}/to-missing")), fetcher
    )
    assert _codes(report.obtainable) == {"empty", "http-status"}


def test_chinese_file_names_in_urls_are_fetched(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/資料/停車場 清冊.csv")), fetcher)
    assert report.passed, report.findings


def test_a_redirect_is_followed(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/to-good")), fetcher)
    assert report.passed, report.findings


def test_closed_and_semi_open_formats(agency, fetcher):
    pdf = check_dataset(_dataset(_resource(f"{agency}/report.pdf", "PDF", "")), fetcher)
    assert _codes(pdf.processable) == {"closed-format"}
    xlsx = check_dataset(_dataset(_resource(f"{agency}/table.xlsx", "XLSX", "")), fetcher)
    assert xlsx.processable.passed  # structured: passes, with a note
    assert "semi-open-format" in {f.code for f in xlsx.processable.findings}
    wrong = check_dataset(_dataset(_resource(f"{agency}/good.csv", "XLSX", "")), fetcher)
    assert _codes(wrong.processable) == {"format-mismatch"}
    unknown = check_dataset(_dataset(_resource(f"{agency}/good.csv", "試算表")), fetcher)
    assert _codes(unknown.processable) == {"unknown-format"}


def test_fields_description_missing_a_real_column_fails_understandable(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/good.csv"), fields="名稱、地址"), fetcher)
    assert not report.understandable.passed
    finding = next(f for f in report.understandable.findings if f.fails)
    assert finding.code == "fields-missing"
    header = CSV_TEXT.splitlines()[0].split(",")
    assert [c for c in header if c not in ("名稱", "地址")] == ["電話"]
    assert "電話" in finding.zh and "地址" not in finding.zh


def test_fields_description_naming_absent_columns_fails_understandable(agency, fetcher):
    report = check_dataset(
        _dataset(
            _resource(f"{agency}/good.csv"), fields="名稱：停車場名稱；地址：地址；電話；營業時間"
        ),
        fetcher,
    )
    assert _codes(report.understandable) == {"fields-extra"}
    assert "營業時間" in next(f for f in report.understandable.findings if f.fails).zh


def test_no_fields_description_fails_understandable(agency, fetcher):
    report = check_dataset(_dataset(_resource(f"{agency}/good.csv"), fields=""), fetcher)
    assert _codes(report.understandable) == {"no-fields-description"}


def test_geojson_columns_come_from_the_feature_properties(agency, fetcher):
    resource = _resource(f"{agency}/points.geojson", "GeoJSON")
    assert check_dataset(_dataset(resource, fields="名稱（文字）、格位數（整數）"), fetcher).passed
    report = check_dataset(_dataset(resource, fields="名稱"), fetcher)
    assert "格位數" in next(f for f in report.understandable.findings if f.fails).zh


def test_a_daily_dataset_last_changed_three_days_ago_fails(agency, fetcher):
    now = datetime.now(UTC)
    stale = _resource(f"{agency}/good.csv", last_modified=now - timedelta(days=3))
    report = check_dataset(_dataset(stale, update_frequency="每日"), fetcher, now=now)
    assert _codes(report.understandable) == {"stale"}
    assert "每日" in report.understandable.findings[0].zh
    fresh = _resource(f"{agency}/good.csv", last_modified=now - timedelta(hours=3))
    assert check_dataset(_dataset(fresh, update_frequency="每日"), fetcher, now=now).passed
    monthly = check_dataset(_dataset(stale, update_frequency="每月"), fetcher, now=now)
    assert monthly.understandable.passed
    old = _resource(f"{agency}/good.csv", last_modified=now - timedelta(days=3 * 365))
    assert check_dataset(_dataset(old, update_frequency="不定期"), fetcher, now=now).passed


def test_update_frequencies_are_read_as_data_gov_tw_writes_them():
    day = timedelta(days=1)
    assert frequency_period("每日") == day
    assert frequency_period("每1日") == day
    assert frequency_period("每週") == 7 * day
    assert frequency_period("每2週") == 14 * day
    assert frequency_period("每月") >= 31 * day
    assert frequency_period("每季") >= 92 * day
    assert frequency_period("每半年") >= 183 * day
    assert frequency_period("每年") >= 365 * day
    assert frequency_period("不定期") is None
    assert frequency_period("不定時") is None
    with pytest.raises(ValueError, match="偶爾"):
        frequency_period("偶爾")


def test_unknown_frequency_and_none_declared_fail(agency, fetcher):
    resource = _resource(f"{agency}/good.csv")
    assert _codes(
        check_dataset(_dataset(resource, update_frequency=""), fetcher).understandable
    ) == {"no-frequency"}
    assert _codes(
        check_dataset(_dataset(resource, update_frequency="看心情"), fetcher).understandable
    ) == {"unknown-frequency"}


def test_described_names_split_like_agencies_write_them():
    assert described_names("名稱、地址（文字，含里鄰）、電話:聯絡電話；備註\n座標") == [
        "名稱",
        "地址(文字,含里鄰)",
        "電話:聯絡電話",
        "備註",
        "座標",
    ]


def test_sniff_tells_formats_apart():
    assert sniff(FILES["/page.csv"][2]).kind == "html"
    assert sniff(FILES["/zipped.csv"][2]).detail == ("data.csv",)
    assert sniff(FILES["/table.xlsx"][2]).kind == "zip"
    assert sniff(b'<?xml version="1.0"?><!-- c --><kml xmlns="x">').detail == ("kml",)
    assert sniff(GEOJSON).kind == "json"
    assert sniff(b"").kind == "empty"


def test_a_dataset_without_resources_fails_obtainable_and_processable(fetcher):
    report = check_dataset(_dataset(), fetcher)
    assert _codes(report.obtainable) == {"no-resources"}
    assert _codes(report.processable) == {"no-resources"}


# --------------------------------------------------------------------------- fetching safely


def test_private_addresses_are_refused_unless_trusted(agency):
    untrusted = Fetcher(FetchPolicy(timeout=2))
    report = check_dataset(_dataset(_resource(f"{agency}/good.csv")), untrusted)
    finding = next(f for f in report.obtainable.findings if f.fails)
    assert finding.code == "private-address"
    assert "127.0.0.1" in finding.en
    for url in ("http://localhost:9/x.csv", "http://[::1]:9/x.csv", "http://169.254.169.254/"):
        found = check_dataset(_dataset(_resource(url)), untrusted).obtainable.findings
        assert [f.code for f in found] == ["private-address"], url


def test_other_schemes_and_redirects_to_them_are_refused(agency, fetcher):
    report = check_dataset(
        _dataset(_resource("file:///etc/passwd"), _resource("ftp://example.org/a.csv")), fetcher
    )
    assert [f.code for f in report.obtainable.findings] == ["scheme", "scheme"]
    redirected = check_dataset(_dataset(_resource(f"{agency}/to-file")), fetcher)
    assert [f.code for f in redirected.obtainable.findings] == ["scheme"]


def test_a_server_that_does_not_answer_in_time_fails_obtainable(agency):
    quick = Fetcher(FetchPolicy(timeout=1, trusted_origins=frozenset({origin(agency)})))
    report = check_dataset(_dataset(_resource(f"{agency}/hang")), quick)
    assert [f.code for f in report.obtainable.findings] == ["timeout"]


def test_relative_urls_need_the_portal():
    report = check_dataset(_dataset(_resource("/download/x.csv")), Fetcher(FetchPolicy()))
    assert [f.code for f in report.obtainable.findings] == ["relative-url"]


def test_many_datasets_are_checked_concurrently_in_order(agency, fetcher):
    datasets = [
        _dataset(_resource(f"{agency}{p}"), name=f"d{i}")
        for i, p in enumerate(["/good.csv", "/missing.csv", "/page.csv", "/bom.csv"] * 3)
    ]
    datasets = [replace(d, id=f"id{i}") for i, d in enumerate(datasets)]
    seen: list[str] = []
    reports = check_datasets(datasets, fetcher, jobs=4, progress=seen.append)
    assert [r.dataset_id for r in reports] == [d.id for d in datasets]
    assert sorted(seen) == sorted(d.name for d in datasets)
    assert [r.passed for r in reports] == [True, False, False, True] * 3


def test_with_quality_replaces_only_quality_extras(agency, fetcher):
    dataset = _dataset(
        _resource(f"{agency}/missing.csv"),
        extras=(("source_crs", "EPSG:3826"), ("quality_label", "符合"), ("quality_checked", "x")),
    )
    report = check_dataset(dataset, fetcher)
    extras = dict(with_quality(dataset, report).extras)
    assert extras["source_crs"] == "EPSG:3826"
    assert extras["quality_label"] == "未符合：可取得性"
    assert extras["quality_obtainable"] == "fail"
    assert "404" in extras["quality_findings"]
    assert len([k for k, _ in with_quality(dataset, report).extras if k == "quality_label"]) == 1


# ------------------------------------------------------------------ the portal's own layers


@pytest.fixture(scope="module")
def tiled_home(tiled, tmp_path_factory) -> Path:
    """A copy of the run's tiled small corpus (the checker writes the labels into it)."""
    home = tmp_path_factory.mktemp("quality-home") / "home"
    shutil.copytree(tiled[0], home, ignore=shutil.ignore_patterns("downloads", "jobs"))
    return home


def _layer_datasets(home: Path) -> tuple[list[Dataset], dict[str, list[str]]]:
    with Catalog.open(home) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    datasets = [dataset_of_layer(*snapshot_item) for snapshot_item in snapshot.published()]
    columns = {lid: [f.name for f in v.fields] for lid, v in snapshot.versions.items()}
    return [d for d in datasets if d.name in LAYERS], columns


def test_layer_datasets_pass_all_three_axes_through_the_real_server(tiled_home):
    datasets, columns = _layer_datasets(tiled_home)
    assert sorted(d.name for d in datasets) == sorted(LAYERS)
    with serving(tiled_home) as base:
        fetcher = Fetcher(FetchPolicy(timeout=60), base_url=base)
        reports = check_datasets(datasets, fetcher, columns_of=columns.get, jobs=3)
    for dataset, report in zip(datasets, reports, strict=True):
        assert report.passed, (dataset.name, [f.en for f in report.findings if f.fails])
        kinds = {r.format for r in dataset.resources}
        assert {"CSV", "GeoJSON", "SHP", "GPKG", "WMS", "WMTS", "PMTiles"} <= kinds


def test_a_layer_description_that_lost_a_column_fails(tiled_home):
    datasets, columns = _layer_datasets(tiled_home)
    dataset = datasets[0]
    dropped = columns[dataset.name][0]
    edited = replace(dataset, fields_description="、".join(columns[dataset.name][1:]), resources=())
    report = check_dataset(edited, Fetcher(FetchPolicy()), columns_of=columns.get)
    finding = next(f for f in report.understandable.findings if f.fails)
    assert finding.code == "fields-missing" and dropped in finding.zh


def _check_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GEOPORTAL, "check", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )


def test_geoportal_check_in_process_stores_the_labels(tiled_home, agency):
    out = _check_cli(tiled_home, *LAYERS, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["status"] == "ok" and summary["checked"] == len(LAYERS)
    assert {d["name"] for d in summary["datasets"]} == set(LAYERS)
    store = PortalStore.open(tiled_home)
    try:
        for name in LAYERS:
            extras = dict(store.dataset(name).extras)
            assert extras["quality_label"] == "符合"
            assert extras["quality_obtainable"] == extras["quality_processable"] == "pass"
            assert extras["quality_understandable"] == "pass"
            assert extras["quality_checked"]
    finally:
        store.close()
    with serving(tiled_home) as base:  # what a CKAN client sees: fields, extras and facets
        ckan = ckanapi.RemoteCKAN(base)
        shown = ckan.action.package_show(id=LAYERS[0])
        assert shown["quality_label"] == "符合"
        assert {"key": "quality_processable", "value": "pass"} in shown["extras"]
        found = ckan.call_action(
            "package_search",
            {"fq": "quality_label:符合", "rows": 1000, "facet.field": '["quality_label"]'},
        )
        assert set(LAYERS) <= {d["name"] for d in found["results"]}
        facet = found["search_facets"]["quality_label"]["items"]
        assert {i["name"]: i["count"] for i in facet}["符合"] == found["count"]


def test_geoportal_check_names_the_failing_dataset_axis_and_finding(tiled_home, agency):
    store = PortalStore.open(tiled_home)
    try:
        org = store.dataset(LAYERS[0]).owner_org
        store.put_dataset(
            Dataset(
                id="0b5c1a8e-5f8a-4a59-9d7b-8d1f1f0c0001",
                name="parking-lots-list",
                title="停車場清冊",
                owner_org=org,
                fields_description="名稱、地址、電話",
                update_frequency="不定期",
                resources=(
                    Resource(
                        id="0b5c1a8e-5f8a-4a59-9d7b-8d1f1f0c0002",
                        package_id="0b5c1a8e-5f8a-4a59-9d7b-8d1f1f0c0001",
                        name="停車場清冊 CSV",
                        url=f"{agency}/big5.csv",
                        format="CSV",
                        encoding="UTF-8",
                    ),
                ),
            )
        )
    finally:
        store.close()
    refused = _check_cli(tiled_home, "parking-lots-list")  # the agency is on 127.0.0.1
    assert refused.returncode == 1
    assert "parking-lots-list: 可取得性 obtainable" in refused.stdout
    out = _check_cli(tiled_home, "parking-lots-list", LAYERS[0], "--allow-origin", agency)
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("parking-lots-list:"))
    assert "可處理性 processable" in line and "Big5" in line
    assert "1 of 2 datasets" in out.stdout
    store = PortalStore.open(tiled_home)
    try:
        extras = dict(store.dataset("parking-lots-list").extras)
    finally:
        store.close()
    assert extras["quality_processable"] == "fail"
    assert extras["quality_obtainable"] == "pass"
    assert extras["quality_label"] == "未符合：可處理性"
    unknown = _check_cli(tiled_home, "no-such-dataset")
    assert unknown.returncode == 1 and "no-such-dataset" in unknown.stderr
