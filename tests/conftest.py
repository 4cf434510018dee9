"""Shared fixtures: the small corpus, ingested and tiled, each made once per test run.

The corpus, the ingested home and the tiled home take a minute or more each; they are made
once for the whole run, also when pytest-xdist runs several worker processes: the first worker
to need one builds it in the run's shared temporary folder under a file lock, the others wait
and reuse it. Tests that change a home work on a copy.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from geoportal.sample import generate
from tests.serve import GEOPORTAL, serving

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def _once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]):
    """The folder ``name``, made by ``build(folder)`` once for all the run's workers."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        root = tmp_path_factory.getbasetemp()
    else:
        root = tmp_path_factory.getbasetemp().parent  # shared by the workers of this run
    out, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            build(out)
            done.touch()
    return out


def geoportal(*args: str, home: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real CLI on ``home``."""
    return subprocess.run(
        [*GEOPORTAL, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default small corpus (seed 20231), written with two worker processes."""
    return _once(
        tmp_path_factory,
        "corpus-small",
        lambda out: generate(out, scale="small", seed=20231, jobs=2),
    )


@pytest.fixture(scope="session")
def expected(small_corpus: Path) -> dict:
    """The small corpus's expected.json."""
    return json.loads((small_corpus / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ingested(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the small corpus, ingested with the real CLI (shared: copy to write)."""

    def build(home: Path) -> None:
        out = geoportal("ingest", str(small_corpus / "layers.yaml"), home=home)
        assert (home / "catalog.sqlite").exists(), out.stderr

    return _once(tmp_path_factory, "ingested-home", build)


@pytest.fixture(scope="session")
def tiled(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(home, {layer id: `tiles build --json` row}): the ingested home with every tile built."""

    def build(home: Path) -> None:
        shutil.copytree(ingested, home)
        out = geoportal("tiles", "build", "--json", home=home)
        assert out.returncode == 0, out.stderr
        (home.parent / "tiled-rows.json").write_text(out.stdout, encoding="utf-8")

    home = _once(tmp_path_factory, "tiled-home", build)
    rows = json.loads((home.parent / "tiled-rows.json").read_text(encoding="utf-8"))["layers"]
    return home, {r["id"]: r for r in rows}


@pytest.fixture(scope="session")
def ogc(ingested: Path) -> Iterator[tuple[str, Path]]:
    """(base URL of the app, data home): the ingested home served (pygeoapi at /ogc)."""
    with serving(ingested) as base:
        yield base, ingested


@pytest.fixture(scope="session")
def served(tiled: tuple[Path, dict]) -> Iterator[tuple[str, Path]]:
    """The tiled small corpus served over real HTTP: (base URL, data home)."""
    home, _ = tiled
    with serving(home) as base:
        yield base, home


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data/real, read in place; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA}")
    return REAL_DATA
