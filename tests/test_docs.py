"""Docs are tested: every command, setting and script is documented where a user looks."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from geoportal.cli import app
from geoportal.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix=""):
    click_group = typer.main.get_command(group)
    for name, cmd in click_group.commands.items():
        if hasattr(cmd, "commands"):
            for sub_name, sub in cmd.commands.items():
                yield f"{prefix}{name} {sub_name}", sub
        else:
            yield f"{prefix}{name}", cmd


def test_every_command_has_help_and_is_in_the_readme():
    for name, cmd in _commands(app):
        assert cmd.help, f"`geoportal {name}` has no help text"
        assert f"geoportal {name}" in README, f"README does not mention `geoportal {name}`"
        for param in cmd.params:
            if param.param_type_name == "option":
                assert param.help, f"`geoportal {name}` option {param.opts} has no help"


def test_every_setting_is_in_the_readme():
    for name in Settings.model_fields:
        assert f"GEOPORTAL_{name.upper()}" in README, (
            f"README does not list GEOPORTAL_{name.upper()}"
        )


def test_readme_quick_start_is_exactly_two_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\./scripts/\w+", quick, flags=re.M)
    assert commands == ["./scripts/demo", "./scripts/test"]


def test_readme_says_what_the_program_is_in_zh_tw():
    assert re.search(r"[\u4e00-\u9fff]{20,}", README.split("## Quick start")[0])
