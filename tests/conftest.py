"""Shared fixtures: the small sample corpus (built once per session) and the real-data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoportal.sample import generate

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default small corpus (seed 20231), written with two worker processes."""
    out = tmp_path_factory.mktemp("corpus") / "small"
    generate(out, scale="small", seed=20231, jobs=2)
    return out


@pytest.fixture(scope="session")
def expected(small_corpus: Path) -> dict:
    """The small corpus's expected.json."""
    return json.loads((small_corpus / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/data/real, read in place; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA}")
    return REAL_DATA
