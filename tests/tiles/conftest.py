"""Helpers for the tiles tests (``tiled`` and ``served`` come from tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
