"""The setup shared by ./scripts/demo, ./scripts/test and ./scripts/bench (scripts/_venv.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_SH = ROOT / "scripts" / "_venv.sh"


def _fake_python(bindir: Path, name: str, version: tuple[int, int] | None) -> None:
    """A command that answers the version probe like Python would, or fails like a bad shim."""
    fail = "echo 'pyenv: not selected' >&2; exit 127"
    body = f"echo {version[0]} {version[1]}" if version else fail
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _bash(script: str, path: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "no-pyenv")}
    return subprocess.run(
        ["/bin/bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )


def test_find_python_takes_the_newest_that_runs(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_python(bindir, "python3.12", (3, 12))
    _fake_python(bindir, "python3.13", None)  # a pyenv shim that fails unless selected
    _fake_python(bindir, "python3", (3, 11))
    _fake_python(bindir, "python3.14", (3, 14))
    out = _bash(f"source {VENV_SH}; find_python", f"{bindir}:/usr/bin:/bin", tmp_path)
    assert out.stdout.strip() == str(bindir / "python3.14")


def test_find_python_falls_back_to_pyenv_versions(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_python(bindir, "python3", (3, 11))
    pyenv_py = tmp_path / "no-pyenv" / "versions" / "3.12.1" / "bin"
    pyenv_py.mkdir(parents=True)
    _fake_python(pyenv_py, "python3", (3, 12))
    out = _bash(f"source {VENV_SH}; find_python", f"{bindir}:/usr/bin:/bin", tmp_path)
    assert out.stdout.strip() == str(pyenv_py / "python3")


def test_scripts_say_so_and_stop_without_python_312(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("_venv.sh", "demo"):
        shutil.copy2(ROOT / "scripts" / name, checkout / "scripts" / name)
    shutil.copy2(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_python(bindir, "python3", (3, 11))
    for tool in ("bash", "dirname", "cat", "sha256sum", "cut", "rm"):
        (bindir / tool).symlink_to(shutil.which(tool))
    out = _bash(f"{checkout}/scripts/demo", str(bindir), tmp_path)
    assert out.returncode == 1
    assert "needs Python >= 3.12 and none was found" in out.stderr
    assert not (checkout / ".venv").exists()
