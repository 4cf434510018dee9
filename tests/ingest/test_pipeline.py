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
