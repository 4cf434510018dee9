"""Fixtures for the tiles tests: the small corpus ingested and tiled once per session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve import GEOPORTAL, serving

__all__ = ["GEOPORTAL", "run", "serving"]


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GEOPORTAL, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )


@pytest.fixture(scope="session")
def tiled(small_corpus, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    home = tmp_path_factory.mktemp("tiles-home")
    run("ingest", str(small_corpus / "layers.yaml"), home=home)
    out = run("tiles", "build", "--json", home=home)
    assert out.returncode == 0, out.stderr
    return home, {r["id"]: r for r in json.loads(out.stdout)["layers"]}


@pytest.fixture(scope="session")
def served(tiled) -> Iterator[tuple[str, Path]]:
    """The tiled small corpus served over real HTTP: (base URL, data home)."""
    home, _ = tiled
    with serving(home) as base:
        yield base, home
