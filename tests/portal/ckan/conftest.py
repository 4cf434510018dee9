"""Fixtures for the CKAN portal tests: a served copy of the ingested home, with real users.

Users, roles and tokens are made with the real CLI (``geoportal user ...``); the home is a copy
of the session's ingested home, so writes made by these tests never leak into other tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from catalog.db import Catalog
from tests.serve import GEOPORTAL, serving


def geoportal(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI; the result (check it)."""
    return subprocess.run(
        [*GEOPORTAL, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env=dict(os.environ),
    )


def make_user(home: Path, name: str, *extra: str) -> str:
    """Add a user with the CLI and return a fresh API token made with the CLI."""
    added = geoportal(
        "user", "add", name, "--email", f"{name}@example.tw", *extra, "--home", str(home)
    )
    assert added.returncode == 0, added.stderr
    token = geoportal("user", "token", name, "--home", str(home))
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


def give_role(home: Path, org: str, name: str, role: str) -> None:
    """Give a role with the CLI."""
    done = geoportal("user", "role", org, name, role, "--home", str(home))
    assert done.returncode == 0, done.stderr


@dataclass
class Site:
    """The served portal: base URL, data home, two agencies and a token per user.

    Attributes:
        base: the base URL.
        home: the data home (a copy).
        own: an agency whose member/editor/admin the users are.
        other: another agency, where they have no role.
        tokens: user name → API token.
    """

    base: str
    home: Path
    own: str
    other: str
    tokens: dict[str, str] = field(default_factory=dict)


#: The test users: name → (CLI flags, role in the own agency or None).
USERS = {
    "root": (("--sysadmin",), None),
    "own-admin": ((), "admin"),
    "own-editor": ((), "editor"),
    "own-member": ((), "member"),
    "outsider": ((), None),
}


def _two_agencies(home: Path) -> tuple[str, str]:
    """The two agencies with the most published layers (names)."""
    with Catalog.open(home) as catalog:
        counts: dict[str, int] = {}
        for layer in catalog.layers():
            if layer.current_version:
                counts[layer.agency.name] = counts.get(layer.agency.name, 0) + 1
    ranked = sorted(counts, key=lambda n: (-counts[n], n))
    return ranked[0], ranked[1]


@pytest.fixture(scope="session")
def ckan_home(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the ingested home (catalog, layer files) for the portal tests."""
    home = tmp_path_factory.mktemp("ckan") / "home"
    shutil.copytree(ingested, home)
    return home


@pytest.fixture(scope="session")
def site(ckan_home: Path) -> Iterator[Site]:
    """The app served over ``ckan_home``, with the users of :data:`USERS` and their tokens."""
    own, other = _two_agencies(ckan_home)
    tokens = {}
    for name, (flags, role) in USERS.items():
        tokens[name] = make_user(ckan_home, name, *flags)
        if role:
            give_role(ckan_home, own, name, role)
    with serving(ckan_home) as base:
        yield Site(base, ckan_home, own, other, tokens)
