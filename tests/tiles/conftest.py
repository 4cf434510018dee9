"""Fixtures for the tiles tests: the small corpus ingested and tiled once per session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

GEOPORTAL = [sys.executable, "-m", "geoportal.cli"]


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


@contextmanager
def serving(home: Path) -> Iterator[str]:
    """`geoportal serve` on a free port over ``home``; yields its base URL, stops it after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*GEOPORTAL, "serve", "--port", str(port), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"geoportal serve did not start on {base}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def served(tiled) -> Iterator[tuple[str, Path]]:
    """The tiled small corpus served over real HTTP: (base URL, data home)."""
    home, _ = tiled
    with serving(home) as base:
        yield base, home
