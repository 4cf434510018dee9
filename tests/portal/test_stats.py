"""Usage statistics and /metrics over real HTTP: `geoportal serve` (1 and 2 workers).

Each test serves its own copy of the ingested small corpus, makes requests a user or a client
would make (requests, ckanapi), and reads what was counted from the catalog database with
SQLAlchemy directly. Expected counts come from the requests the test made and the expected
organizations from the catalog's layers (``Catalog.layers()``), not from portal.stats.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import ckanapi
import mercantile
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from catalog.db import Catalog
from geoportal.app import create_app
from geoportal.settings import load_settings
from portal.stats import top_datasets, usage
from tests.serve import GEOPORTAL

#: Longest wait for counts to reach the database (they are written every few seconds).
WAIT_SECONDS = 60


def _taiwan_today() -> str:
    return datetime.now(ZoneInfo("Asia/Taipei")).date().isoformat()


@pytest.fixture
def home(ingested: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested home: the counts of one test are its own."""
    target = tmp_path / "home"
    shutil.copytree(ingested, target, ignore=shutil.ignore_patterns("downloads"))
    # other tests may have served the shared home (and counted their requests) before this one
    engine = create_engine(f"sqlite:///{target / 'catalog.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM usage_counts"))
    engine.dispose()
    return target


@contextmanager
def served(home: Path, workers: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """`geoportal serve --workers N` on a free port; stopped with SIGTERM (a clean shutdown)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*GEOPORTAL, "serve", "--port", str(port), "--workers", str(workers), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"geoportal serve did not start on {base}") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Stop the server as an operator would (SIGTERM) and wait for it to finish."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def counted(home: Path) -> dict[tuple[str, str, str, str], int]:
    """(day, kind, dataset, organization) → n, read from usage_counts with SQLAlchemy."""
    engine = create_engine(f"sqlite:///{home / 'catalog.sqlite'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT day, kind, dataset, organization, n FROM usage_counts")
            ).all()
    finally:
        engine.dispose()
    return {(str(d), k, ds, o): int(n) for d, k, ds, o, n in rows}


def by_use(rows: dict[tuple[str, str, str, str], int]) -> Counter:
    """(kind, dataset, organization) → n, days added up."""
    out: Counter = Counter()
    for (_day, kind, dataset, org), n in rows.items():
        out[(kind, dataset, org)] += n
    return out


def wait_for(home: Path, total: int) -> dict[tuple[str, str, str, str], int]:
    """The counts, once at least ``total`` uses are in the database (or the deadline)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = counted(home)
        if sum(rows.values()) >= total or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def published_vectors(home: Path) -> list[tuple[str, str]]:
    """(layer id, agency name) of the published vector layers, smallest first."""
    with Catalog.open(home) as catalog:
        current = catalog.current_all()
        found = [
            (current[layer.id].feature_count, layer.id, layer.agency.name)
            for layer in catalog.layers()
            if layer.id in current
            and current[layer.id].kind == "vector"
            and current[layer.id].bbox is not None
        ]
    return [(i, org) for _n, i, org in sorted(found)]


def build_tiles(home: Path, *layer_ids: str) -> None:
    """`geoportal tiles build` of some layers (the ingested home has no tiles yet)."""
    done = subprocess.run(
        [*GEOPORTAL, "tiles", "build", *layer_ids, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def tile_url(base: str, layer_id: str) -> str:
    """An XYZ tile URL inside a layer: its TileJSON's centre at its lowest zoom.

    Reading the TileJSON is one more API call on the layer.
    """
    doc = requests.get(f"{base}/tiles/{layer_id}.json", timeout=60).json()
    west, south, east, north = doc["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, doc["minzoom"])
    return f"{base}/tiles/{layer_id}/{tile.z}/{tile.x}/{tile.y}.mvt"


def make_user(home: Path, name: str, *flags: str) -> str:
    """A user made with the real CLI; returns an API token made with the CLI."""
    for args in (
        ("user", "add", name, "--email", f"{name}@example.tw", *flags),
        ("user", "token", name),
    ):
        done = subprocess.run(
            [*GEOPORTAL, *args, "--home", str(home)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# --------------------------------------------------------------------------- counting


def test_downloads_and_api_calls_are_counted_per_dataset_and_agency(home: Path):
    layers = published_vectors(home)
    assert len(layers) >= 4
    (a, org_a), (b, org_b), (c, org_c), (d, org_d) = layers[:4]
    build_tiles(home, c)
    day_before = _taiwan_today()
    with served(home) as (base, _proc):
        ckan = ckanapi.RemoteCKAN(base)
        # downloads: the whole file counts; HEAD and a range not from byte 0 do not
        assert requests.get(f"{base}/download/{a}.geojson", timeout=120).status_code == 200
        assert requests.head(f"{base}/download/{a}.geojson", timeout=60).status_code == 200
        partial = requests.get(
            f"{base}/download/{a}.geojson", headers={"Range": "bytes=5-9"}, timeout=60
        )
        assert partial.status_code == 206
        # CKAN API: ckanapi POSTs JSON; a GET with the query; by UUID; an unknown dataset
        shown = ckan.action.package_show(id=b)
        assert requests.get(f"{base}/api/3/action/package_show", params={"id": b}).ok
        assert ckan.action.package_show(id=shown["id"])["name"] == b
        resource = shown["resources"][0]["id"]
        assert ckan.action.resource_show(id=resource)["package_id"] == shown["id"]
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="no-such-dataset")
        ckan.action.package_search(rows=1)
        # tiles (TileJSON, then a tile), WMS, OGC API
        assert requests.get(tile_url(base, c), timeout=60).status_code in (200, 204)
        getmap = {
            "SERVICE": "WMS",
            "VERSION": "1.3.0",
            "REQUEST": "GetMap",
            "LAYERS": f"{c},{d}",
            "STYLES": "",
            "CRS": "EPSG:4326",
            "BBOX": "24.0,120.4,24.5,121.5",
            "WIDTH": "64",
            "HEIGHT": "64",
            "FORMAT": "image/png",
        }
        wms = requests.get(f"{base}/wms", params=getmap, timeout=60)
        assert wms.ok and wms.headers["content-type"].startswith("image/png")
        items = requests.get(f"{base}/ogc/collections/{d}/items", params={"limit": 2}, timeout=60)
        assert items.ok
        assert requests.get(f"{base}/tiles/no-such-layer.json", timeout=60).status_code == 404

        expected = Counter(
            {
                ("download", a, org_a): 1,
                ("api", b, org_b): 4,  # package_show ×3 (name, GET, UUID), resource_show
                ("api", "", ""): 1,  # package_search concerns no dataset
                ("api", c, org_c): 3,  # TileJSON, a tile, GetMap
                ("api", d, org_d): 2,  # GetMap, items
            }
        )
        rows = wait_for(home, sum(expected.values()))
        assert by_use(rows) == expected
        assert {day for day, *_ in rows} <= {day_before, _taiwan_today()}

    # read back through the module's interface, in this process, from the same database
    app = create_app(load_settings(home=home))
    assert usage(app, dataset=a).downloads == 1
    assert usage(app, dataset=b).api_calls == 4
    assert usage(app, dataset=b).views == 0
    for org in {org_a, org_b, org_c, org_d}:
        mine = {k: n for k, n in expected.items() if k[2] == org}
        got = usage(app, organization=org)
        assert got.downloads == sum(n for k, n in mine.items() if k[0] == "download")
        assert got.api_calls == sum(n for k, n in mine.items() if k[0] == "api")
    everything = usage(app)
    assert everything.api_calls == 10 and everything.downloads == 1
    assert len(everything.last_30_days) == 30
    assert sum(everything.last_30_days.values()) == sum(expected.values())
    assert max(everything.last_30_days) in {day_before, _taiwan_today()}
    assert top_datasets(app, "api", 2) == [(b, 4), (c, 3)]
    assert top_datasets(app, "download") == [(a, 1)]
    assert top_datasets(app, "view") == []


def test_two_workers_count_together_and_flush_when_stopped(home: Path):
    layer, org = published_vectors(home)[0]
    build_tiles(home, layer)
    with served(home, workers=2) as (base, proc):
        folder = Path(tempfile.gettempdir()) / f"geoportal-metrics-{proc.pid}"
        url = tile_url(base, layer)  # one TileJSON request

        def fetch(_: int) -> int:
            return requests.get(url, timeout=60).status_code  # a new connection each time

        made = 1
        with ThreadPoolExecutor(8) as pool:
            for _ in range(40):  # until both workers have answered some
                statuses = list(pool.map(fetch, range(50)))
                assert set(statuses) <= {200, 204}
                made += len(statuses)
                if len(list(folder.glob("counter_*.db"))) >= 2:
                    break
        assert len(list(folder.glob("counter_*.db"))) == 2, "one worker answered everything"
        scrape = requests.get(f"{base}/metrics", timeout=60)
        assert scrape.ok
        samples = [
            s
            for family in text_string_to_metric_families(scrape.text)
            for s in family.samples
            if s.name == "geoportal_http_requests_total" and s.labels["family"] == "tiles"
        ]
        assert sum(s.value for s in samples) == made  # both workers' requests, added up
        stop(proc)  # at once: what was not flushed yet is written at shutdown
        assert proc.returncode == 0
    assert by_use(counted(home)) == Counter({("api", layer, org): made})


# --------------------------------------------------------------------------- /metrics


def test_metrics_parse_and_report_catalog_and_usage(home: Path):
    layer, org = published_vectors(home)[0]
    with Catalog.open(home) as catalog:
        layer_count = len(catalog.layers())
        published = len(catalog.current_all())
    build_tiles(home, layer)
    with served(home) as (base, _proc):
        public = ckanapi.RemoteCKAN(base).action.package_list()
        for _ in range(3):
            assert requests.get(f"{base}/tiles/{layer}.json", timeout=60).ok
        wait_for(home, 4)  # package_list is an API call too
        scrape = requests.get(f"{base}/metrics", timeout=60)
        assert scrape.ok and scrape.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    value = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert value[("geoportal_catalog_layers", ())] == layer_count
    assert value[("geoportal_catalog_published_layers", ())] == published
    assert value[("geoportal_portal_datasets", (("private", "false"),))] == len(public)
    assert value[("geoportal_usage_total", (("kind", "api"),))] == 4
    assert value[("geoportal_usage_total", (("kind", "download"),))] == 0
    by_org = ("geoportal_usage_organization_total", (("kind", "api"), ("organization", org)))
    assert value[by_org] == 3
    tiles = [
        s
        for s in families["geoportal_http_requests"].samples
        if s.labels["family"] == "tiles" and s.name.endswith("_total")
    ]
    assert sum(s.value for s in tiles) == 3
    latency = families["geoportal_http_request_duration_seconds"]
    assert latency.type == "histogram"
    counts = [
        s for s in latency.samples if s.name.endswith("_count") and s.labels["family"] == "tiles"
    ]
    assert [s.value for s in counts] == [3]


# --------------------------------------------------------------------------- /admin/stats


class _Tables(HTMLParser):
    """The admin page's tables: table id → row name → {kind: number}; sorted headings."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, int]]] = {}
        self.sorted: list[tuple[str, str]] = []
        self._table = self._row = self._kind = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = {}
        elif tag == "tr" and "data-name" in a:
            self._row = a["data-name"]
            self.tables[self._table][self._row] = {}
        elif tag == "td" and "data-kind" in a:
            self._kind = a["data-kind"]
        elif tag == "th" and "aria-sort" in a:
            self.sorted.append((self._table, a["aria-sort"]))

    def handle_data(self, data: str) -> None:
        if self._kind and self._row is not None:
            self.tables[self._table][self._row][self._kind] = int(data.replace(",", ""))
            self._kind = None


def parse(page: str) -> _Tables:
    found = _Tables()
    found.feed(page)
    return found


def test_admin_stats_is_for_sysadmins_and_shows_the_counts(home: Path):
    root = make_user(home, "root", "--sysadmin")
    plain = make_user(home, "someone")
    (layer, org), (other, other_org) = published_vectors(home)[:2]
    with served(home) as (base, _proc):
        anonymous = requests.get(f"{base}/admin/stats", timeout=60, allow_redirects=False)
        assert anonymous.status_code == 403
        assert "使用統計" in anonymous.text and "系統管理員" in anonymous.text
        assert 'id="datasets"' not in anonymous.text  # no numbers for anonymous
        not_admin = requests.get(
            f"{base}/admin/stats", headers={"Authorization": plain}, timeout=60
        )
        assert not_admin.status_code == 403

        assert requests.get(f"{base}/download/{layer}.csv", timeout=120).ok
        for _ in range(2):
            assert requests.get(f"{base}/ogc/collections/{layer}", timeout=60).ok
        assert requests.get(f"{base}/ogc/collections/{other}/items", timeout=60).ok
        rows = by_use(wait_for(home, 4))
        assert sum(rows.values()) == 4

        page = requests.get(f"{base}/admin/stats", headers={"Authorization": root}, timeout=60)
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert '<html lang="zh-TW">' in page.text and "使用統計" in page.text
        tables = parse(page.text)
        want = {
            "view": 0,
            "download": rows[("download", layer, org)],
            "api": rows[("api", layer, org)],
            "recent": 3,
        }
        assert want["download"] == 1 and want["api"] == 2
        assert tables.tables["datasets"][layer] == want
        assert tables.tables["datasets"][other] == {
            "view": 0,
            "download": 0,
            "api": 1,
            "recent": 1,
        }
        agencies = tables.tables["agencies"]
        if org == other_org:
            assert agencies[org] == {"view": 0, "download": 1, "api": 3, "recent": 4}
        else:
            assert agencies[org] == want and agencies[other_org]["api"] == 1
        assert ("datasets", "descending") in tables.sorted  # by views, most first

        # by downloads, ascending, in English: the downloaded layer comes last
        asc = requests.get(
            f"{base}/admin/stats",
            params={"sort": "downloads", "order": "asc", "lang": "en"},
            headers={"Authorization": root},
            timeout=60,
        )
        assert asc.status_code == 200 and '<html lang="en">' in asc.text
        assert "Usage statistics" in asc.text
        tables = parse(asc.text)
        assert list(tables.tables["datasets"])[-1] == layer
        assert ("datasets", "ascending") in tables.sorted
        bad = requests.get(
            f"{base}/admin/stats", params={"sort": "ip"}, headers={"Authorization": root}
        )
        assert bad.status_code == 400 and "ip" in bad.text


# --------------------------------------------------------------------------- the UPSERT


def _count_in_process(url: str, name: str, rounds: int, out) -> None:
    """A server process's recorder: counts uses of five datasets, flushing as it goes."""
    from catalog.db import create_catalog_engine
    from portal.stats import Recorder

    engine = create_catalog_engine(url)
    recorder = Recorder(engine, lambda refs: {r: (r, "org-" + r[-1]) for r in refs})
    try:
        for n in range(rounds):
            recorder.add("api", f"dataset-{n % 5}", None)
            recorder.add("download", f"dataset-{n % 5}", f"org-{n % 5}")
            if n % 25 == 0:
                recorder.flush()
        recorder.close()
        out.put((name, recorder.pending()))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated catalog database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        Catalog(url).close()
        yield url
        return
    from tests.catalog.conftest import _new_pg_database

    with _new_pg_database() as url:
        Catalog(url).close()
        yield url


def test_processes_flushing_at_once_add_up_on_sqlite_and_postgresql(database_url: str):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    rounds = 400
    workers = [
        ctx.Process(target=_count_in_process, args=(database_url, f"w{n}", rounds, out))
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    results = sorted(out.get(timeout=240) for _ in workers)
    for worker in workers:
        worker.join(60)
    assert results == [("w0", 0), ("w1", 0), ("w2", 0)]  # nothing left unwritten
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT kind, dataset, organization, SUM(n) FROM usage_counts "
                    "GROUP BY kind, dataset, organization"
                )
            ).all()
    finally:
        engine.dispose()
    per = rounds // 5 * len(workers)
    want = {("api", f"dataset-{i}", f"org-{i}"): per for i in range(5)}
    want |= {("download", f"dataset-{i}", f"org-{i}"): per for i in range(5)}
    assert {(k, d, o): int(n) for k, d, o, n in rows} == want


# --------------------------------------------------------------------------- in Chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_admin_stats_page_in_chromium_is_accessible(home: Path):
    browser_helpers = pytest.importorskip("tests.portal.browser")  # needs Playwright
    if not browser_helpers.CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it with apt)")
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    root = make_user(home, "root", "--sysadmin")
    (layer, _org), (other, _other_org) = published_vectors(home)[:2]
    with served(home) as (base, _proc), sync_playwright() as p:
        assert requests.get(f"{base}/download/{layer}.csv", timeout=120).ok
        for _ in range(3):
            assert requests.get(f"{base}/ogc/collections/{other}", timeout=60).ok
        wait_for(home, 4)
        chromium = p.chromium.launch(
            executable_path=str(browser_helpers.CHROMIUM),
            args=browser_helpers.FLAGS,
            headless=True,
        )
        try:
            context = chromium.new_context(
                viewport=browser_helpers.VIEWPORT,
                locale="zh-TW",
                extra_http_headers={"Authorization": root},
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/admin/stats")
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").inner_text() == "使用統計"
            row = page.locator(f'#datasets tr[data-name="{layer}"] td[data-kind="download"]')
            assert row.inner_text() == "1"
            # the column headings are links that sort the table (keyboard reachable)
            page.locator("#datasets thead a", has_text="API 呼叫").click()
            page.wait_for_load_state("networkidle")
            first = page.locator("#datasets tbody tr").first.get_attribute("data-name")
            assert first == other
            assert "sort=api" in page.url
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "admin-stats.png"), full_page=True)
            results = Axe().run(page)
            bad = [
                (x["id"], x["impact"], [n["target"] for n in x["nodes"]][:3])
                for x in results.response["violations"]
                if x["impact"] in ("serious", "critical")
            ]
            assert bad == []
            assert errors == []
        finally:
            chromium.close()
