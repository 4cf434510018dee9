"""Fixtures for the portal tests: the small corpus ingested once, and the app served over HTTP."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve import GEOPORTAL, serving


@pytest.fixture(scope="session")
def ingested(small_corpus, tmp_path_factory) -> Path:
    """A data home holding the small corpus, ingested with the real CLI."""
    home = tmp_path_factory.mktemp("portal-home")
    out = subprocess.run(
        [*GEOPORTAL, "ingest", str(small_corpus / "layers.yaml"), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert (home / "catalog.sqlite").exists(), out.stderr
    return home


@pytest.fixture(scope="session")
def ogc(ingested) -> Iterator[tuple[str, Path]]:
    """(base URL of the app, data home) with pygeoapi at /ogc."""
    with serving(ingested) as base:
        yield base, ingested
