"""Fixtures for the portal tests: the small corpus ingested once, and the app served over HTTP."""

from __future__ import annotations

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


#: Runs the app with pygeoapi mounted (a separate process: GDAL clients in the test process
#: hold the GIL while they wait for the server).
_SERVE = """
import sys, uvicorn
from geoportal.app import create_app
from geoportal.settings import load_settings
from portal.ogc.app import mount
app = create_app(load_settings(home=sys.argv[1]))
mount(app)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


@contextmanager
def app_server(home: Path) -> Iterator[str]:
    """`create_app()` with pygeoapi mounted, served by uvicorn; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(home), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the app did not start on {base}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def ogc(ingested) -> Iterator[tuple[str, Path]]:
    """(base URL of the app, data home) with pygeoapi at /ogc."""
    with app_server(ingested) as base:
        yield base, ingested
