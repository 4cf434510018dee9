"""The authorization matrix over real HTTP with ckanapi: role × own/other agency × operation.

The expected outcomes are CKAN's default authorization rules (ckan/logic/auth, with
``ckan.auth.create_unowned_dataset = false`` and only sysadmins creating organizations),
written down here as a table independent of the code under test:

- anonymous: reads public datasets only, writes nothing;
- a user without a role: like anonymous, but identified;
- member: reads the private datasets of its organization;
- editor: also creates, changes, deletes datasets and resources of its organization;
- admin: also edits the organization and gives roles in it;
- sysadmin: everything, in every organization.
"""

from __future__ import annotations

import uuid

import ckanapi
import pytest

ROLES = ("anonymous", "outsider", "own-member", "own-editor", "own-admin", "root")

#: operation → roles allowed on their OWN agency ("root" is allowed everywhere).
ALLOWED_OWN = {
    "read_private": {"own-member", "own-editor", "own-admin", "root"},
    "patch": {"own-editor", "own-admin", "root"},
    "create": {"own-editor", "own-admin", "root"},
    "resource_create": {"own-editor", "own-admin", "root"},
    "delete": {"own-editor", "own-admin", "root"},
    "organization_update": {"own-admin", "root"},
    "member_create": {"own-admin", "root"},
}


def expected(role: str, where: str, operation: str) -> bool:
    """Whether CKAN lets ``role`` do ``operation`` on the ``where`` (own/other) agency."""
    if role == "root":
        return True
    return where == "own" and role in ALLOWED_OWN[operation]


def _client(site, role):
    token = None if role == "anonymous" else site.tokens[role]
    return ckanapi.RemoteCKAN(site.base, apikey=token)


def _root(site):
    return _client(site, "root")


def _private_dataset(site, org: str) -> str:
    name = f"private-{org[:40]}-{uuid.uuid4().hex[:8]}"
    _root(site).action.package_create(
        name=name, title="內部資料 private data", owner_org=org, private=True, notes="內部"
    )
    return name


@pytest.fixture(scope="module")
def private_sets(site) -> dict[str, str]:
    """One private dataset in the own agency and one in the other, made by the sysadmin."""
    return {"own": _private_dataset(site, site.own), "other": _private_dataset(site, site.other)}


def _attempt(site, role, where, operation, private_sets):
    api = _client(site, role).action
    org = site.own if where == "own" else site.other
    target = private_sets[where]
    if operation == "read_private":
        return api.package_show(id=target)
    if operation == "patch":
        return api.package_patch(id=target, notes=f"changed by {role}")
    if operation == "create":
        return api.package_create(name=f"new-{uuid.uuid4().hex[:12]}", owner_org=org)
    if operation == "resource_create":
        return api.resource_create(package_id=target, url="https://example.tw/a.csv", name="a")
    if operation == "delete":
        return api.package_delete(id=_private_dataset(site, org))
    if operation == "organization_update":
        return api.organization_update(id=org, description=f"edited by {role}")
    if operation == "member_create":
        return api.organization_member_create(id=org, username="outsider", role="member")
    raise AssertionError(operation)


@pytest.mark.parametrize("operation", list(ALLOWED_OWN))
@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_auth_matrix(site, private_sets, role, where, operation):
    if expected(role, where, operation):
        _attempt(site, role, where, operation, private_sets)
    else:
        with pytest.raises(ckanapi.NotAuthorized) as refused:
            _attempt(site, role, where, operation, private_sets)
        assert refused.value.args[0]["message"].startswith("Access denied")
    if operation == "member_create" and expected(role, where, operation):
        org = site.own if where == "own" else site.other
        shown = _root(site).action.organization_show(id=org)
        assert {"name": "outsider", "capacity": "member"} in shown["users"]
        _cleanup_outsider(site, org)  # the outsider keeps no role for the other tests


def _cleanup_outsider(site, org):
    from portal.ckan.store import PortalStore

    store = PortalStore.open(site.home)
    try:
        store.delete_membership(org, "outsider")
    finally:
        store.close()


def test_private_datasets_never_reach_anonymous_lists_or_search(site, private_sets):
    anon = _client(site, "anonymous").action
    names = set(private_sets.values())
    assert not names & set(anon.package_list())
    found = anon.package_search(q="內部資料", include_private=True, rows=1000)["results"]
    assert not names & {d["name"] for d in found}
    recent = anon.current_package_list_with_resources(limit=1000)
    assert not names & {d["name"] for d in recent}


def test_members_find_their_own_private_datasets_only(site, private_sets):
    member = _client(site, "own-member").action
    found = {
        d["name"]
        for d in member.package_search(q="內部資料", include_private=True, rows=1000)["results"]
    }
    assert private_sets["own"] in found
    assert private_sets["other"] not in found
    without = member.package_search(q="內部資料", rows=1000)["results"]
    assert private_sets["own"] not in {d["name"] for d in without}


def test_sysadmin_finds_every_private_dataset(site, private_sets):
    root = _root(site).action
    found = {
        d["name"]
        for d in root.package_search(q="內部資料", include_private=True, rows=1000)["results"]
    }
    assert set(private_sets.values()) <= found


def test_private_package_show_to_anonymous_is_ckans_403(site, private_sets):
    with pytest.raises(ckanapi.NotAuthorized) as refused:
        _client(site, "anonymous").action.package_show(id=private_sets["own"])
    message = refused.value.args[0]["message"]
    assert message.startswith("Access denied: User  not authorized to read package ")


def test_an_editor_cannot_move_a_dataset_to_another_agency(site, private_sets):
    editor = _client(site, "own-editor").action
    with pytest.raises(ckanapi.NotAuthorized):
        editor.package_patch(id=private_sets["own"], owner_org=site.other)
    assert (
        _root(site).action.package_show(id=private_sets["own"])["organization"]["name"] == site.own
    )


def test_only_sysadmins_create_organizations_and_groups(site):
    for role in ("own-admin", "own-editor", "anonymous"):
        with pytest.raises(ckanapi.NotAuthorized):
            _client(site, role).action.organization_create(name=f"org-{uuid.uuid4().hex[:8]}")
        with pytest.raises(ckanapi.NotAuthorized):
            _client(site, role).action.group_create(name=f"grp-{uuid.uuid4().hex[:8]}")


def test_a_private_dataset_leaks_through_no_other_action(site):
    """Security review R1: every read action an outsider can call hides the private dataset."""
    root = _root(site).action
    word = f"secret{uuid.uuid4().hex[:8]}"
    group = root.group_create(name=f"g-{word}", title="機密主題")
    ds = root.package_create(
        name=f"p-{word}",
        title=f"{word} 內部",
        owner_org=site.own,
        private=True,
        tags=[{"name": word}],
        groups=[{"name": group["name"]}],
        resources=[{"url": f"https://a.tw/{word}.csv", "name": word}],
    )
    rid = ds["resources"][0]["id"]
    root.datastore_create(
        resource_id=rid, fields=[{"id": "v", "type": "text"}], records=[{"v": word}]
    )
    for role in ("anonymous", "outsider"):
        api = _client(site, role).action
        hits = api.resource_search(query=f"name:{word}")
        assert hits["count"] == 0, role
        with pytest.raises(ckanapi.NotAuthorized):
            api.resource_show(id=rid)
        with pytest.raises(ckanapi.NotAuthorized):
            api.datastore_search(resource_id=rid)
        org = api.organization_show(id=site.own, include_datasets=True)
        assert ds["id"] not in {p["id"] for p in org["packages"]}, role
        shown = api.group_show(id=group["name"], include_datasets=True)
        assert shown["package_count"] == 0 and shown["packages"] == [], role
        assert word not in api.tag_list()
        with pytest.raises(ckanapi.NotFound):
            api.tag_show(id=word)
        assert not [d for d in api.package_autocomplete(q=word) if d["name"] == ds["name"]]
        creator = api.user_show(id="root", include_datasets=True)
        assert ds["id"] not in {d["id"] for d in creator["datasets"]}, role
    member = _client(site, "own-member").action
    assert member.datastore_search(resource_id=rid)["records"][0]["v"] == word


def test_roles_cannot_be_escalated_or_given_elsewhere(site):
    """An editor cannot make themself admin; an admin gives roles in their own agency only."""
    editor = _client(site, "own-editor").action
    with pytest.raises(ckanapi.NotAuthorized):
        editor.member_create(id=site.own, object="own-editor", object_type="user", capacity="admin")
    with pytest.raises(ckanapi.NotAuthorized):
        editor.organization_member_create(id=site.own, username="own-editor", role="admin")
    admin = _client(site, "own-admin").action
    with pytest.raises(ckanapi.NotAuthorized):
        admin.organization_member_create(id=site.other, username="own-admin", role="admin")
    with pytest.raises(ckanapi.ValidationError):
        admin.member_create(id=site.own, object="outsider", object_type="user", capacity="sysadmin")
    roles = {
        u["name"]: u["capacity"] for u in _root(site).action.organization_show(id=site.own)["users"]
    }
    assert roles.get("own-editor") == "editor" and "outsider" not in roles
    other = {u["name"] for u in _root(site).action.organization_show(id=site.other)["users"]}
    assert "own-admin" not in other


def test_an_editor_cannot_move_or_create_into_another_agency_by_id(site, private_sets):
    """owner_org given as the other agency's id (not name), with package_update too."""
    editor = _client(site, "own-editor").action
    other_id = _root(site).action.organization_show(id=site.other)["id"]
    current = _root(site).action.package_show(id=private_sets["own"])
    with pytest.raises(ckanapi.NotAuthorized):
        editor.package_update(**{**current, "owner_org": other_id})
    with pytest.raises(ckanapi.NotAuthorized):
        editor.package_create(name=f"sneak-{uuid.uuid4().hex[:8]}", owner_org=other_id)
    shown = _root(site).action.package_show(id=private_sets["own"])
    assert shown["organization"]["name"] == site.own
