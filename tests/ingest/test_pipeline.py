"""`geoportal ingest` end to end: a real CLI process, a real catalog, real files on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest

from catalog import Catalog

GEOPORTAL = [sys.executable, "-m", "geoportal.cli"]


def run(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GEOPORTAL, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def _report(out: subprocess.CompletedProcess) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(out.stdout)["layers"]}


@pytest.fixture(scope="module")
def ingested_home(small_corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    home = tmp_path_factory.mktemp("home")
    return home, run("ingest", str(small_corpus / "layers.yaml"), "--json", home=home)


def test_every_layer_is_published_except_the_one_to_refuse(ingested_home, expected):
    home, out = ingested_home
    assert out.returncode == 1, "one layer (the Git-LFS pointer) is refused: exit is not 0"
    report = _report(out)
    assert set(report) == set(expected["layers"])
    for lid, truth in expected["layers"].items():
        want = "refused" if truth.get("outcome") == "refused" else "published"
        assert report[lid]["status"] == want, (lid, report[lid]["message"])
    assert "git lfs pull" in report["traffic-counts"]["message"]
    with Catalog.open(home) as catalog:
        published = {lyr.id for lyr in catalog.layers() if lyr.current_version}
        assert published == {lid for lid, r in report.items() if r["status"] == "published"}
        villages = catalog.current("taichung-villages")
        assert villages.source_crs == "EPSG:3826" and villages.geometry_type == "Polygon"
        decisions = {d.kind: d for d in villages.lineage.decisions}
        assert decisions["encoding"].value == "cp950" and decisions["crs"].source == "prj-params"
        assert (home / villages.path).is_file()
        tourism = catalog.get_layer("tourism-map-2")
        assert tourism.title.startswith("臺中觀光地圖（") and tourism.title.endswith("）")


def test_second_run_changes_nothing(ingested_home, small_corpus):
    home, _ = ingested_home
    files_before = sorted(p.name for p in (home / "layers").rglob("*") if p.is_file())
    out = run("ingest", str(small_corpus / "layers.yaml"), "--json", home=home)
    statuses = {r["status"] for r in _report(out).values()}
    assert statuses == {"unchanged", "refused"}
    assert sorted(p.name for p in (home / "layers").rglob("*") if p.is_file()) == files_before


def test_search_and_export_from_the_catalog(ingested_home, tmp_path):
    home, _ = ingested_home
    out = run("layers", "停車", "--json", home=home)
    assert [r["id"] for r in json.loads(out.stdout)] == ["public-parking"]
    target = tmp_path / "villages.geojson"
    out = run("export", "taichung-villages", "--format", "geojson", "-o", str(target), home=home)
    assert out.returncode == 0, out.stderr
    meta, _, geoms, fields = pyogrio.raw.read(target)
    names = list(fields[list(meta["fields"]).index("VILLNAME")])
    assert "後廍里" in names and len(geoms) > 600
    missing = run("export", "no-such-layer", "--format", "csv", home=home)
    assert missing.returncode == 1 and "no-such-layer" in missing.stderr


def _geojson(path: Path, points: list[tuple[float, float]], name: str) -> None:
    feats = [
        {
            "type": "Feature",
            "properties": {"名稱": f"{name}{i}"},
            "geometry": {"type": "Point", "coordinates": list(p)},
        }
        for i, p in enumerate(points)
    ]
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False),
        encoding="utf-8",
    )


def _manifest(folder: Path, source: str, lid: str = "parks") -> Path:
    m = folder / "layers.yaml"
    m.write_text(
        f"layers:\n  - id: {lid}\n    title: 公園\n    agency: 建設局\n    source: {source}\n",
        encoding="utf-8",
    )
    return m


def test_changed_source_makes_a_new_version_and_a_bad_one_keeps_the_old(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    src = data / "parks.geojson"
    _geojson(src, [(120.68, 24.15), (120.69, 24.16)], "公園")
    manifest = _manifest(data, "parks.geojson")
    assert run("ingest", str(manifest), home=home).returncode == 0
    with Catalog.open(home) as c:
        first = c.current("parks")
    _geojson(src, [(120.68, 24.15), (120.69, 24.16), (120.70, 24.17)], "公園")
    assert run("ingest", str(manifest), home=home).returncode == 0
    with Catalog.open(home) as c:
        second = c.current("parks")
        assert second.version != first.version and second.feature_count == 3
        assert [v.version for v in c.versions("parks")] == [second.version, first.version]
    src.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    out = run("ingest", str(manifest), "--json", home=home)
    assert out.returncode == 1 and _report(out)["parks"]["status"] in ("refused", "failed")
    with Catalog.open(home) as c:
        assert c.current("parks").version == second.version
        assert (home / c.current("parks").path).is_file()


def test_old_versions_are_pruned_with_their_files(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    manifest = _manifest(data, "parks.geojson")
    paths = []
    for n in range(1, 5):
        _geojson(data / "parks.geojson", [(120.6 + i / 100, 24.1) for i in range(n)], "園")
        assert run("ingest", str(manifest), "--keep", "2", home=home).returncode == 0
        with Catalog.open(home) as c:
            paths.append(home / c.current("parks").path)
    with Catalog.open(home) as c:
        assert len(c.versions("parks")) == 2
    assert [p.exists() for p in paths] == [False, False, True, True]


def test_killed_mid_write_leaves_the_previous_version_current(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    manifest = _manifest(data, "big.csv", lid="big")
    (data / "big.csv").write_text("名稱,經度,緯度\r\n甲,120.68,24.15\r\n", encoding="utf-8")
    assert run("ingest", str(manifest), home=home).returncode == 0
    with Catalog.open(home) as c:
        before = c.current("big")
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(120.5, 120.9, 400_000), rng.uniform(24.0, 24.4, 400_000)
    rows = "".join(
        f"點{i},{x:.6f},{y:.6f}\r\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    )
    (data / "big.csv").write_text("名稱,經度,緯度\r\n" + rows, encoding="utf-8")
    proc = subprocess.Popen(
        [*GEOPORTAL, "ingest", str(manifest), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    folder = home / "layers" / "big"
    deadline = time.monotonic() + 300
    while not list(folder.glob("*.part.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert list(folder.glob("*.part.*")), "the new version's file was never seen being written"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with Catalog.open(home) as c:
        assert c.current("big").version == before.version
        _, _, geoms, _ = pyogrio.raw.read(home / c.current("big").path)
        assert len(geoms) == 1
    out = run("ingest", str(manifest), "--json", home=home)
    assert _report(out)["big"]["status"] == "published"
    assert not list(folder.glob("*.part.*"))


def test_supply_list_rows_are_ingested(small_corpus, expected, tmp_path):
    home = tmp_path / "home"
    out = run("ingest", str(small_corpus / "供應清單.csv"), "--json", home=home)
    published = [r for r in json.loads(out.stdout)["layers"] if r["status"] == "published"]
    rows = expected["supply_list"]["rows"]
    assert len({r["entry"] for r in published}) == len(rows)
    with Catalog.open(home) as c:
        titles = [c.get_layer(r["id"]).title for r in published]
    for row in rows:  # a multi-layer source's titles carry the sublayer's name after the title
        assert any(t == row["title"] or t.startswith(row["title"] + "（") for t in titles), row


def test_postgresql_catalog(small_corpus, tmp_path):
    from tests.catalog.conftest import _new_pg_database

    with _new_pg_database() as url:
        home = tmp_path / "home"
        env = {"GEOPORTAL_CATALOG_URL": url}
        manifest = small_corpus / "layers.yaml"
        out = run("ingest", str(manifest), "--json", home=home, env=env)
        report = _report(out)
        assert report["taichung-villages"]["status"] == "published"
        assert not (home / "catalog.sqlite").exists()
        with Catalog(url) as c:
            assert c.current("taichung-villages").feature_count == 626
            assert c.search("村里界")[0].layer.id == "taichung-villages"


def _pt(path: Path, lon: float, lat: float, name: str = "點") -> None:
    _geojson(path, [(lon, lat)], name)


def test_a_refused_sublayer_keeps_failing_on_every_run(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    (data / "mix").mkdir(parents=True)
    _pt(data / "mix" / "a.geojson", 120.6, 24.1)
    (data / "mix" / "b.csv").write_text("名稱,x,y\r\n甲,5,5\r\n", encoding="utf-8")
    manifest = _manifest(data, "mix", lid="mix")
    for _ in range(2):
        out = run("ingest", str(manifest), "--json", home=home)
        report = _report(out)
        assert out.returncode == 1
        assert report["mix-2"]["status"] == "refused"


def test_sublayers_that_come_and_go(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    (data / "pts").mkdir(parents=True)
    _pt(data / "pts" / "a.geojson", 120.6, 24.1)
    manifest = _manifest(data, "pts", lid="pts")
    assert (
        _report(run("ingest", str(manifest), "--json", home=home))["pts"]["status"] == "published"
    )
    _pt(data / "pts" / "b.geojson", 120.7, 24.2)
    report = _report(run("ingest", str(manifest), "--json", home=home))
    assert {k: v["status"] for k, v in report.items()} == {
        "pts-1": "published",
        "pts-2": "published",
        "pts": "removed",
    }
    report = _report(run("ingest", str(manifest), "--json", home=home))
    assert {k: v["status"] for k, v in report.items()} == {
        "pts-1": "unchanged",
        "pts-2": "unchanged",
    }
    with Catalog.open(home) as c:
        assert sorted(lyr.id for lyr in c.layers()) == ["pts-1", "pts-2"]
        assert c.get_layer("pts-2").title == "公園（b）"


def test_same_data_in_new_bytes_and_a_new_title(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    data.mkdir()
    _pt(data / "parks.geojson", 120.6, 24.1)
    manifest = _manifest(data, "parks.geojson")
    run("ingest", str(manifest), home=home)
    with (data / "parks.geojson").open("a", encoding="utf-8") as f:
        f.write(" \n")
    statuses = [
        _report(run("ingest", str(manifest), "--json", home=home))["parks"]["status"]
        for _ in range(2)
    ]
    assert statuses == ["unchanged", "unchanged"]
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("公園", "新公園"), encoding="utf-8"
    )
    assert (
        _report(run("ingest", str(manifest), "--json", home=home))["parks"]["status"] == "unchanged"
    )
    with Catalog.open(home) as c:
        assert c.get_layer("parks").title == "新公園"


def test_an_empty_layer_does_not_take_its_siblings_down(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    (data / "two").mkdir(parents=True)
    _pt(data / "two" / "a.geojson", 120.6, 24.1)
    (data / "two" / "b.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    out = run("ingest", str(_manifest(data, "two", lid="two")), "--json", home=home)
    report = _report(out)
    assert report["two-1"]["status"] == "published" and report["two-1"]["features_out"] == 1
    assert report["two-2"]["status"] == "published" and report["two-2"]["features_out"] == 0


def test_ids_that_collide_are_refused_not_overwritten(tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    (data / "roads").mkdir(parents=True)
    _pt(data / "roads" / "a.geojson", 120.6, 24.1, "甲")
    _pt(data / "roads" / "b.geojson", 120.7, 24.2, "乙")
    _pt(data / "other.geojson", 120.8, 24.3, "丙")
    manifest = data / "layers.yaml"
    manifest.write_text(
        "layers:\n  - {id: roads, title: 道路, source: roads}\n"
        "  - {id: roads-1, title: 另一個, source: other.geojson}\n",
        encoding="utf-8",
    )
    out = run("ingest", str(manifest), "--json", home=home)
    reports = json.loads(out.stdout)["layers"]
    assert out.returncode == 1
    collided = [r for r in reports if r["reason"] == "id-collision"]
    assert len(collided) == 1 and "rename" in collided[0]["message"]
    with Catalog.open(home) as c:
        assert c.get_layer("roads-1").title == "道路（a）"
