"""`geoportal user ...`: users, roles and tokens made with the real CLI, used over HTTP."""

from __future__ import annotations

import json
import shutil

import ckanapi
import pytest

from tests.portal.ckan.conftest import geoportal
from tests.serve import serving


@pytest.fixture(scope="module")
def home(ingested, tmp_path_factory):
    copy = tmp_path_factory.mktemp("users") / "home"
    shutil.copytree(ingested, copy)
    return copy


def test_add_token_role_list(home):
    added = geoportal("user", "add", "carol", "--email", "c@x.tw", "--json", "--home", str(home))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "carol"
    again = geoportal("user", "add", "carol", "--home", str(home))
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = geoportal("user", "add", "Bad Name", "--home", str(home))
    assert bad.returncode == 1 and "lowercase" in bad.stderr
    tok = geoportal("user", "token", "carol", "--name", "script", "--json", "--home", str(home))
    made = json.loads(tok.stdout)
    assert made["name"] == "script" and len(made["token"]) >= 32
    missing = geoportal("user", "token", "nobody", "--home", str(home))
    assert missing.returncode == 1 and "no user" in missing.stderr
    role = geoportal("user", "role", "no-such-agency", "carol", "editor", "--home", str(home))
    assert role.returncode == 1 and "no organization" in role.stderr
    wrong = geoportal("user", "role", "x", "carol", "owner", "--home", str(home))
    assert wrong.returncode == 1 and "not one of" in wrong.stderr
    listed = json.loads(geoportal("user", "list", "--json", "--home", str(home)).stdout)
    assert [u["name"] for u in listed["users"]] == ["carol"]


def test_password_from_stdin_and_sysadmin(home):
    done = geoportal(
        "user",
        "add",
        "dave",
        "--sysadmin",
        "--password-stdin",
        "--home",
        str(home),
        stdin="pw 密碼\n",
    )
    assert done.returncode == 0, done.stderr
    from portal.ckan.store import PortalStore

    store = PortalStore.open(home)
    try:
        assert store.check_password("dave", "pw 密碼").sysadmin is True
    finally:
        store.close()


def test_a_cli_token_and_role_work_over_http(home):
    from catalog.db import Catalog

    with Catalog.open(home) as catalog:
        org = catalog.agencies()[0].name
    assert geoportal("user", "add", "erin", "--home", str(home)).returncode == 0
    token = geoportal("user", "token", "erin", "--home", str(home)).stdout.strip()
    with serving(home) as base:
        api = ckanapi.RemoteCKAN(base, apikey=token).action
        assert api.user_show()["name"] == "erin"
        with pytest.raises(ckanapi.NotAuthorized):
            api.package_create(name="erin-data", owner_org=org)
        assert geoportal("user", "role", org, "erin", "editor", "--home", str(home)).returncode == 0
        assert api.package_create(name="erin-data", owner_org=org)["organization"]["name"] == org
