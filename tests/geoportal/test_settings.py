"""Settings: one object, every key documented, environment and overrides in the right order."""

from __future__ import annotations

from pathlib import Path

from geoportal.settings import Settings, load_settings


def test_every_setting_has_a_description():
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert not undocumented


def test_environment_then_explicit_override(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOPORTAL_HOME", str(tmp_path / "from-env"))
    monkeypatch.setenv("GEOPORTAL_PORT", "8123")
    s = load_settings()
    assert s.home == tmp_path / "from-env" and s.port == 8123
    s = load_settings(home=tmp_path / "explicit", port=None)
    assert s.home == tmp_path / "explicit" and s.port == 8123


def test_default_home_is_relative_to_the_working_directory(monkeypatch):
    monkeypatch.delenv("GEOPORTAL_HOME", raising=False)
    assert load_settings().home == Path("geoportal-home")
