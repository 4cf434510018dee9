"""The installed `geoportal` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

GEOPORTAL = [sys.executable, "-m", "geoportal.cli"]
COMMANDS = ("sample", "ingest", "layers", "export", "tiles", "serve", "publish", "demo")


def run(
    *args: str, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GEOPORTAL, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_help_lists_every_spec_command():
    out = run("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in out.stdout, command


def test_sample_json_summary_matches_what_was_written(tmp_path):
    out = run("sample", "--out", str(tmp_path / "c"), "--layers", "5", "--seed", "3", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["status"] == "ok" and summary["entries"] == 5
    written = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert summary["files"] == len(written)
    assert summary["bytes"] == sum(p.stat().st_size for p in written)


def test_sample_failure_names_the_folder_and_exits_1(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    out = run("sample", "--out", str(tmp_path), "--layers", "2")
    assert out.returncode == 1
    assert str(tmp_path) in out.stderr and "not empty" in out.stderr
    assert (tmp_path / "precious.txt").exists()


def test_unknown_scale_is_refused(tmp_path):
    out = run("sample", "--out", str(tmp_path / "c"), "--scale", "huge")
    assert out.returncode == 1
    assert "unknown scale 'huge'" in out.stderr


def test_demo_builds_everything_and_serves_it(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [*GEOPORTAL, "demo", "--port", str(port)],
        env={**os.environ, "GEOPORTAL_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline, doc = time.monotonic() + 300, None
        while doc is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/tiles/taichung-villages.json", timeout=2
                ) as r:
                    doc = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert doc is not None, "the demo never served the villages' TileJSON"
        assert doc["name"] == "臺中市村里界"
        assert (home / "sample" / "layers.yaml").is_file()
        assert (home / "catalog.sqlite").is_file()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "[1/4] sample" in out and "[2/4] ingest" in out and "[3/4] tiles" in out
    assert "[4/4] serve" in out


def test_home_option_beats_the_environment(tmp_path):
    env_home, opt_home = tmp_path / "env", tmp_path / "opt"
    run("layers", "--home", str(opt_home), env={"GEOPORTAL_HOME": str(env_home)})
    assert (opt_home / "catalog.sqlite").exists()
    assert not env_home.exists()
