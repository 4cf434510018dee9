"""CKAN's wire contract over real HTTP: envelope, statuses and messages of the Action API.

The expected bodies are CKAN 2.10's, read from its source (``ckan/views/api.py``: ``action``,
``_finish_bad_request``, ``_get_request_data``, ``get_api``) and its documentation
(docs.ckan.org "API guide": "success", "result", "error" with "__type"), not from this portal:

- success: 200 ``{"help": "<site>/api/3/action/help_show?name=<action>", "success": true,
  "result": ...}`` with ``Content-Type: application/json;charset=utf-8``;
- NotAuthorized: 403 ``{"__type": "Authorization Error", "message": "Access denied: ..."}``;
- NotFound: 404 ``{"__type": "Not Found Error", "message": "Not found"}`` (``package_show``
  raises a bare NotFound);
- ValidationError: 409, field → messages beside ``"__type": "Validation Error"``;
- SearchQueryError: 400, ``"Search Query is invalid: ..."``;
- unknown action / bad JSON / a write over GET: 400 with a bare JSON string.
"""

from __future__ import annotations

import json

import pytest
import requests

from portal.ckan.actions import ACTIONS

CKAN_JSON = "application/json;charset=utf-8"


def _call(site, name, *, method="POST", token=None, versioned=True, headers=None, **kwargs):
    prefix = "/api/3/action/" if versioned else "/api/action/"
    headers = dict(headers or {}) | ({"Authorization": token} if token else {})
    return requests.request(
        method, site.base + prefix + name, headers=headers, timeout=60, **kwargs
    )


def _help(site, name):
    return f"{site.base}/api/3/action/help_show?name={name}"


def test_api_roots_answer_their_version_as_ckan(site):
    # get_api(ver=1) answers the bare root; /api/<ver> its version.
    assert requests.get(site.base + "/api", timeout=30).json() == {"version": 1}
    for ver in (1, 2, 3):
        assert requests.get(f"{site.base}/api/{ver}", timeout=30).json() == {"version": ver}


@pytest.mark.parametrize("versioned", [True, False])
def test_success_envelope(site, versioned):
    r = _call(site, "status_show", json={}, versioned=versioned)
    assert r.status_code == 200
    assert r.headers["content-type"].replace(" ", "") == CKAN_JSON
    body = r.json()
    assert set(body) == {"help", "success", "result"}
    assert body["success"] is True
    assert body["help"] == _help(site, "status_show")
    assert body["result"]["ckan_version"].startswith("2.10")
    assert body["result"]["site_url"] == site.base


def test_get_passes_query_parameters_and_json_lists(site):
    r = _call(
        site,
        "package_search",
        method="GET",
        params={"q": "", "rows": "0", "facet.field": '["organization"]', "facet.limit": "-1"},
    )
    body = r.json()
    assert r.status_code == 200 and body["success"] is True
    result = body["result"]
    assert result["results"] == []
    assert sum(result["facets"]["organization"].values()) == result["count"]
    items = result["search_facets"]["organization"]["items"]
    assert {i["name"] for i in items} == set(result["facets"]["organization"])


def test_form_encoded_post_is_read_like_json(site):
    as_form = _call(site, "package_list", data={"limit": "3"}).json()["result"]
    as_json = _call(site, "package_list", json={"limit": 3}).json()["result"]
    assert as_form == as_json and len(as_json) == 3


def test_unknown_action_is_400_with_ckans_bare_string(site):
    for versioned in (True, False):
        r = _call(site, "no_such_action", json={}, versioned=versioned)
        assert r.status_code == 400
        assert r.json() == "Bad request - Action name not known: no_such_action"


def test_bad_json_is_400(site):
    r = _call(site, "package_show", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json().startswith("Bad request - JSON Error: Error decoding JSON data.")


def test_json_that_is_not_an_object_is_400(site):
    r = _call(site, "package_show", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == (
        "Bad request - JSON Error: Request data JSON decoded to [1, 2] but it needs to be a "
        "dictionary."
    )


def test_a_write_over_get_is_400(site):
    r = _call(site, "package_create", method="GET", params={"name": "x"})
    assert r.status_code == 400
    assert r.json() == (
        "Bad request - JSON Error: Invalid request. Please use POST method for your request"
    )


def test_not_found_is_404(site):
    r = _call(site, "package_show", json={"id": "no-such-dataset"})
    assert r.status_code == 404
    assert r.json() == {
        "help": _help(site, "package_show"),
        "success": False,
        "error": {"__type": "Not Found Error", "message": "Not found"},
    }


def test_missing_field_is_409_validation_error(site):
    r = _call(site, "package_show", json={})
    assert r.status_code == 409
    body = r.json()
    assert body["success"] is False and body["help"] == _help(site, "package_show")
    assert body["error"] == {"__type": "Validation Error", "id": ["Missing value"]}


def test_bad_number_is_409(site):
    r = _call(site, "package_search", json={"rows": "many"})
    assert r.status_code == 409
    assert r.json()["error"] == {"__type": "Validation Error", "rows": ["Invalid integer"]}


def test_write_without_token_is_403(site):
    r = _call(site, "package_create", json={"name": "nope", "owner_org": site.own})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["__type"] == "Authorization Error"
    assert error["message"].startswith("Access denied")


def test_unknown_token_is_anonymous(site):
    r = _call(site, "package_create", token="not-a-token", json={"name": "nope", "owner_org": "x"})
    assert r.status_code == 403


def test_bad_search_syntax_is_400_search_query_error(site):
    r = _call(site, "package_search", json={"q": 'title:"unclosed'})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["__type"] == "Search Query Error"
    assert error["message"].startswith("Search Query is invalid: ")


def test_help_show_gives_the_actions_documentation(site):
    r = _call(site, "help_show", method="GET", params={"name": "package_search"})
    assert r.status_code == 200
    assert "facet.field" in r.json()["result"]


def test_tokens_are_taken_from_either_header(site):
    token = site.tokens["root"]
    for header in ("Authorization", "X-CKAN-API-Key"):
        r = requests.post(
            site.base + "/api/3/action/user_show",
            json={},
            headers={header: token},
            timeout=30,
        )
        assert r.json()["result"]["name"] == "root"


def test_every_action_is_registered_with_schema_auth_and_documentation():
    issue_actions = {
        "status_show", "site_read", "package_list", "current_package_list_with_resources",
        "package_show", "package_search", "package_autocomplete", "resource_show",
        "resource_search", "organization_list", "organization_show", "group_list",
        "group_show", "tag_list", "tag_show", "license_list", "user_show", "package_create",
        "package_update", "package_patch", "package_delete", "resource_create",
        "resource_update", "resource_patch", "resource_delete", "organization_create",
        "organization_update", "group_create", "member_create", "organization_member_create",
        "datastore_create", "datastore_search",
    }  # fmt: skip
    assert issue_actions <= set(ACTIONS)
    for name, action in ACTIONS.items():
        assert action.function.__doc__, f"{name} has no docstring"
        assert action.auth.__doc__, f"{name}'s auth function has no docstring"
        assert isinstance(action.schema, dict)
        is_read = name.endswith(("_show", "_list", "_search", "_read", "_autocomplete"))
        is_read = is_read or name in (
            "current_package_list_with_resources",
            "organization_list_for_user",
        )
        assert action.read_only == is_read, name


def test_responses_are_json_for_every_read_action_over_get(site):
    for name, action in ACTIONS.items():
        if not action.read_only:
            continue
        r = _call(site, name, method="GET")
        assert r.headers["content-type"].replace(" ", "") == CKAN_JSON, name
        body = json.loads(r.text)
        assert isinstance(body, dict) and body["help"] == _help(site, name), name


def test_a_body_over_the_size_limit_is_413_before_it_is_read(site):
    """Security review R1: an (anonymous) client cannot make the server spool a huge upload."""
    import http.client
    from urllib.parse import urlsplit

    from portal.ckan.api import MAX_BODY

    where = urlsplit(site.base)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/3/action/resource_create")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        conn.endheaders()
        conn.send(b"--x\r\n")  # the rest never comes: the answer must not wait for it
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 413
    assert body["success"] is False and str(MAX_BODY) in body["error"]["message"]


def test_a_chunked_json_body_past_the_json_limit_is_413(site):
    """A body without a Content-Length is read only up to MAX_JSON (32 MiB), then refused."""
    import http.client
    from urllib.parse import urlsplit

    from portal.ckan.api import MAX_JSON

    where = urlsplit(site.base)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    chunk = b" " * (1 << 20)
    try:
        conn.putrequest("POST", "/api/3/action/package_search")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for _ in range(MAX_JSON // len(chunk) + 2):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading: the answer below says why
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 413
    assert body["success"] is False and str(MAX_JSON) in body["error"]["message"]
