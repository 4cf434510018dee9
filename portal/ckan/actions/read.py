"""Read actions: status, datasets, search, resources, organizations, groups, tags, licences, users.

Every function here is ``action(context, data) -> result`` with ``data`` already validated by
its schema (see :data:`SCHEMAS`); the docstrings are what ``help_show`` returns. What a caller
sees is filtered by :meth:`portal.ckan.auth.Caller.can_read`: private datasets only for the
members of their organization, deleted ones only for editors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from geoportal import __version__
from portal.ckan import dicts
from portal.ckan.actions.registry import (
    Context,
    Invalid,
    Schema,
    boolean_validator,
    default,
    ignore_missing,
    int_validator,
    json_list,
    limit_to,
    list_of_strings,
    natural_number_validator,
    not_empty,
    one_of,
    unicode_safe,
)
from portal.ckan.errors import NotFound, ValidationError
from portal.ckan.licenses import LICENSES
from portal.ckan.model import ROLES, Dataset

#: The CKAN version this portal answers as (its Action API is that version's).
CKAN_VERSION = "2.10.4"

#: ``rows`` is capped here, as CKAN's ``ckan.search.rows_max``.
ROWS_MAX = 1000

#: Facets shown by ``package_search`` when ``facet.field`` is not given (CKAN shows none).
SEARCH_FACET_TITLES = {
    "organization": "Organizations",
    "groups": "Groups",
    "tags": "Tags",
    "res_format": "Formats",
    "license_id": "Licenses",
}


def _visible(ctx: Context, include_private: bool = True) -> list[Dataset]:
    """Active datasets the caller may read (private ones only with ``include_private``)."""
    return [
        d
        for d in ctx.portal.datasets()
        if (include_private or not d.private) and ctx.caller.can_read(d)
    ]


def _pkg(ctx: Context, ds: Dataset) -> dict:
    return dicts.package_dict(ds, ctx.portal.organizations(), ctx.portal.groups(), ctx.base_url)


def status_show(ctx: Context, data: dict) -> dict:
    """The site's status: its title, URL, CKAN version and extensions.

    Returns:
        ``site_title``, ``site_description``, ``site_url``, ``ckan_version``,
        ``locale_default``, ``extensions``, ``error_emails_to`` and ``geoportal_version``.
    """
    return {
        "site_title": "臺中市開放資料平臺 Geoportal",
        "site_description": "城市圖資服務與開放資料平臺 (a city's map-service and open-data "
        "portal)",
        "site_url": ctx.base_url,
        "ckan_version": CKAN_VERSION,
        "error_emails_to": None,
        "locale_default": "zh_Hant_TW",
        "extensions": ["datastore", "spatial_metadata", "dcat", "geoportal"],
        "geoportal_version": __version__,
    }


def site_read(ctx: Context, data: dict) -> bool:
    """Whether the caller may read the site: always True.

    Returns:
        True.
    """
    return True


def help_show(ctx: Context, data: dict) -> str:
    """The documentation of an action.

    Args:
        ctx: the context.
        data: ``name``: the action's name.

    Returns:
        The action's docstring.
    """
    from portal.ckan.actions import ACTIONS

    action = ACTIONS.get(data["name"])
    if action is None:
        raise NotFound("Action function not found")
    return action.function.__doc__ or ""


def package_list(ctx: Context, data: dict) -> list[str]:
    """Names of all public active datasets, in name order.

    Args:
        ctx: the context.
        data: ``limit`` and ``offset`` (optional) page the list.

    Returns:
        Dataset names.
    """
    names = [d.name for d in ctx.portal.datasets() if not d.private]
    return _page(names, data.get("limit"), data.get("offset", 0))


def _page(items: list, limit: int | None, offset: int) -> list:
    return items[offset:] if limit is None else items[offset : offset + limit]


def current_package_list_with_resources(ctx: Context, data: dict) -> list[dict]:
    """Public active datasets with their resources, most recently modified first.

    Args:
        ctx: the context.
        data: ``limit`` (default all), ``offset`` or ``page`` (1-based, with ``limit``).

    Returns:
        Package dicts.
    """
    datasets = sorted(
        (d for d in ctx.portal.datasets() if not d.private),
        key=lambda d: (d.metadata_modified or 0, d.name),
        reverse=True,
    )
    limit, offset = data.get("limit"), data.get("offset", 0)
    if "page" in data and limit:
        offset = (data["page"] - 1) * limit
    return [_pkg(ctx, d) for d in _page(datasets, limit, offset)]


def package_show(ctx: Context, data: dict) -> dict:
    """One dataset with its resources, tags, groups and organization.

    Args:
        ctx: the context.
        data: ``id``: the dataset's id or name.

    Returns:
        The package dict.
    """
    return _pkg(ctx, ctx.store.dataset(data["id"]))


def _search_params(ctx: Context, data: dict) -> Any:
    from portal.ckan.search import SearchParams

    fq = data.get("fq", "")
    if data.get("fq_list"):
        fq = " AND ".join(f"({f})" for f in [fq, *data["fq_list"]] if f)
    facets = tuple(data.get("facet.field", ())) if data.get("facet", True) else ()
    return SearchParams(
        q=data.get("q", ""),
        fq=fq,
        sort=data.get("sort", "score desc, metadata_modified desc"),
        rows=data.get("rows", 10),
        start=data.get("start", 0),
        facet_fields=facets,
        facet_limit=data.get("facet.limit", 50),
        facet_mincount=data.get("facet.mincount", 1),
        include_private=bool(data.get("include_private", False)) and ctx.caller.user is not None,
        viewer_orgs=ctx.caller.viewer_orgs,
        include_deleted=bool(data.get("include_deleted", False)) and ctx.caller.sysadmin,
    )


def _facet_title(ctx: Context, field: str, value: str) -> str:
    if field == "organization":
        org = ctx.portal.organizations().get(value)
        return org.title if org else value
    if field == "groups":
        group = ctx.portal.groups().get(value)
        return group.title if group else value
    return value


def package_search(ctx: Context, data: dict) -> dict:
    """Search datasets (CKAN/Solr syntax) with facets.

    Args:
        ctx: the context.
        data: ``q`` (terms, "phrases", field:value, AND/OR/NOT), ``fq``, ``fq_list``,
            ``sort`` (e.g. ``score desc, metadata_modified desc``), ``rows`` (≤ 1000),
            ``start``, ``facet`` (default true), ``facet.field`` (a JSON list),
            ``facet.limit`` (default 50, -1 for all), ``facet.mincount``, ``include_private``
            (the caller's organizations' private datasets) and ``include_deleted``
            (sysadmins).

    Returns:
        ``count``, ``results`` (package dicts), ``facets`` (field → value → count),
        ``search_facets`` (field → title and items) and ``sort``.
    """
    params = _search_params(ctx, data)
    result = ctx.portal.index().search(params)
    search_facets = {}
    for field, counts in result.facets.items():
        items = [
            {"name": v, "display_name": _facet_title(ctx, field, v), "count": n}
            for v, n in counts.items()
        ]
        search_facets[field] = {"title": field, "items": items}
    return {
        "count": result.count,
        "facets": result.facets,
        "results": [_pkg(ctx, d) for d in result.datasets],
        "sort": params.sort,
        "search_facets": search_facets,
    }


def package_autocomplete(ctx: Context, data: dict) -> list[dict]:
    """Datasets whose name or title starts with (or contains) what was typed.

    Args:
        ctx: the context.
        data: ``q``: the text typed; ``limit`` (default 10).

    Returns:
        ``name``, ``title``, ``match_field`` and ``match_displayed`` of each match.
    """
    q = data["q"]
    out = []
    for ds in ctx.portal.index().autocomplete(q, data.get("limit", 10)):
        in_name = q.lower() in ds.name.lower()
        out.append(
            {
                "name": ds.name,
                "title": ds.title,
                "match_field": "name" if in_name else "title",
                "match_displayed": f"{ds.name} ({ds.title})" if in_name else ds.title,
            }
        )
    return out


def resource_show(ctx: Context, data: dict) -> dict:
    """One resource.

    Args:
        ctx: the context.
        data: ``id``: the resource's id.

    Returns:
        The resource dict.
    """
    res = ctx.store.resource(data["id"])
    return dicts.resource_dict(res, ctx.base_url, ctx.store.dataset(res.package_id))


#: Resource fields ``resource_search`` may query.
RESOURCE_SEARCH_FIELDS = (
    "id",
    "name",
    "description",
    "format",
    "url",
    "mimetype",
    "package_id",
    "kind",
    "encoding",
)


def _resource_terms(query: list[str]) -> list[tuple[str, str]]:
    terms = []
    for item in query:
        field, sep, term = item.partition(":")
        if not sep:
            raise ValidationError({"query": ['Resource search query must be "field:term"']})
        if field not in RESOURCE_SEARCH_FIELDS:
            raise ValidationError(
                {"query": [f'Field "{field}" not recognised in resource_search.']}
            )
        terms.append((field, term.lower()))
    return terms


def resource_search(ctx: Context, data: dict) -> dict:
    """Resources of public datasets whose fields contain the given terms.

    Args:
        ctx: the context.
        data: ``query``: ``field:term`` or a list of them (all must match; a term matches
            when the field contains it, case-insensitively; ``url`` and ``format`` too);
            ``order_by`` (a field), ``offset``, ``limit``.

    Returns:
        ``count`` and ``results`` (resource dicts).
    """
    terms = _resource_terms(data.get("query", []))
    found = []
    for ds in ctx.portal.datasets():
        if ds.private:
            continue
        for res in ds.resources:
            values = dicts.resource_dict(res, ctx.base_url, ds)
            if all(term in str(values.get(field) or "").lower() for field, term in terms):
                found.append(values)
    if data.get("order_by"):
        key = data["order_by"]
        found.sort(key=lambda r: str(r.get(key) or ""))
    return {"count": len(found), "results": _page(found, data.get("limit"), data["offset"])}


def _counts_by_org(ctx: Context) -> Counter[str]:
    return Counter(d.owner_org for d in _visible(ctx))


def _counts_by_group(ctx: Context) -> Counter[str]:
    return Counter(g for d in _visible(ctx) for g in d.groups)


def _sorted(items: list, sort: str, title: Any) -> list:
    field, _, direction = sort.strip().partition(" ")
    key = (lambda o: (title(o) or "").lower()) if field == "title" else (lambda o: o.name)
    return sorted(items, key=key, reverse=direction.strip().lower() == "desc")


def organization_list(ctx: Context, data: dict) -> list:
    """Organizations (the agencies).

    Args:
        ctx: the context.
        data: ``all_fields`` (dicts instead of names), ``include_dataset_count``,
            ``organizations`` (only these names), ``sort`` (``title asc`` default, or
            ``name``), ``limit``, ``offset``.

    Returns:
        Names, or organization dicts.
    """
    orgs = [o for o in ctx.portal.organizations().values() if o.state == "active"]
    if data.get("organizations"):
        wanted = set(data["organizations"])
        orgs = [o for o in orgs if o.name in wanted]
    orgs = _sorted(orgs, data["sort"], lambda o: o.title)
    orgs = _page(orgs, data.get("limit"), data.get("offset", 0))
    if not data.get("all_fields"):
        return [o.name for o in orgs]
    counts = _counts_by_org(ctx) if data.get("include_dataset_count", True) else Counter()
    return [dicts.organization_dict(o, counts[o.name]) for o in orgs]


def organization_show(ctx: Context, data: dict) -> dict:
    """One organization, with its members and (optionally) its datasets.

    Args:
        ctx: the context.
        data: ``id`` (name or id), ``include_datasets`` (default false: up to 1000 package
            dicts the caller may see), ``include_users`` (default true).

    Returns:
        The organization dict.
    """
    org = ctx.store.organization(data["id"])
    mine = [d for d in _visible(ctx) if d.owner_org == org.name]
    out = dicts.organization_dict(org, len(mine))
    if data.get("include_datasets"):
        out["packages"] = [_pkg(ctx, d) for d in mine[:ROWS_MAX]]
    if data.get("include_users", True):
        out["users"] = [
            {"name": m.user, "capacity": m.role}
            for m in ctx.store.memberships(organization=org.name)
        ]
    return out


def organization_list_for_user(ctx: Context, data: dict) -> list[dict]:
    """Organizations where the caller (or ``id``) holds a role with ``permission``.

    Args:
        ctx: the context.
        data: ``id`` (a user; default the caller), ``permission`` (``read``: member,
            ``create_dataset``/``update_dataset``/``delete_dataset``: editor,
            ``manage_group``: admin; default ``manage_group``).

    Returns:
        Organization dicts (with ``capacity``).
    """
    need = {"read": "member", "manage_group": "admin"}.get(data["permission"], "editor")
    user = ctx.store.user(data["id"]) if data.get("id") else ctx.caller.user
    if user is None:
        return []
    orgs = ctx.portal.organizations()
    if user.sysadmin:
        return [dicts.organization_dict(o) | {"capacity": "admin"} for o in orgs.values()]
    out = []
    for m in ctx.store.memberships(user=user.id):
        if ROLES.index(m.role) >= ROLES.index(need) and m.organization in orgs:
            out.append(dicts.organization_dict(orgs[m.organization]) | {"capacity": m.role})
    return out


def group_list(ctx: Context, data: dict) -> list:
    """Groups (themes).

    Args:
        ctx: the context.
        data: ``all_fields``, ``include_dataset_count``, ``groups`` (only these names),
            ``sort``, ``limit``, ``offset`` as ``organization_list``.

    Returns:
        Names, or group dicts.
    """
    groups = [g for g in ctx.portal.groups().values() if g.state == "active"]
    if data.get("groups"):
        wanted = set(data["groups"])
        groups = [g for g in groups if g.name in wanted]
    groups = _sorted(groups, data["sort"], lambda g: g.title)
    groups = _page(groups, data.get("limit"), data.get("offset", 0))
    if not data.get("all_fields"):
        return [g.name for g in groups]
    counts = _counts_by_group(ctx) if data.get("include_dataset_count", True) else Counter()
    return [dicts.group_dict(g, counts[g.name]) for g in groups]


def group_show(ctx: Context, data: dict) -> dict:
    """One group, optionally with its datasets.

    Args:
        ctx: the context.
        data: ``id`` (name or id), ``include_datasets`` (default false).

    Returns:
        The group dict.
    """
    group = ctx.store.group(data["id"])
    mine = [d for d in _visible(ctx) if group.name in d.groups]
    out = dicts.group_dict(group, len(mine))
    if data.get("include_datasets"):
        out["packages"] = [_pkg(ctx, d) for d in mine[:ROWS_MAX]]
    out["users"] = []
    return out


def _tags(ctx: Context) -> dict[str, list[Dataset]]:
    tags: dict[str, list[Dataset]] = {}
    for ds in _visible(ctx, include_private=False):
        for tag in ds.tags:
            tags.setdefault(tag, []).append(ds)
    return tags


def tag_list(ctx: Context, data: dict) -> list:
    """Tags of public datasets, in name order.

    Args:
        ctx: the context.
        data: ``query`` (only tags containing it), ``all_fields`` (tag dicts),
            ``vocabulary_id`` (this portal has free tags only, so any vocabulary is unknown).

    Returns:
        Tag names, or tag dicts.

    Raises:
        NotFound: a ``vocabulary_id`` was given (as CKAN does for an unknown vocabulary).
    """
    if data.get("vocabulary_id"):
        raise NotFound(f"could not find vocabulary '{data['vocabulary_id']}'")
    names = sorted(_tags(ctx))
    if data.get("query"):
        needle = data["query"].lower()
        names = [n for n in names if needle in n.lower()]
    if data.get("all_fields"):
        return [dicts.tag_dict(n) for n in names]
    return names


def tag_show(ctx: Context, data: dict) -> dict:
    """One tag (by name or id), optionally with its datasets.

    Args:
        ctx: the context.
        data: ``id``: the tag's name or id; ``include_datasets`` (default false).

    Returns:
        The tag dict.
    """
    tags = _tags(ctx)
    name = data["id"]
    if name not in tags:
        name = next((n for n in tags if dicts.tag_dict(n)["id"] == data["id"]), None)
    if name is None:
        raise NotFound("Could not find tag")
    out = dicts.tag_dict(name)
    if data.get("include_datasets"):
        out["packages"] = [_pkg(ctx, d) for d in tags[name]]
    return out


def license_list(ctx: Context, data: dict) -> list[dict]:
    """The licences datasets may carry, Taiwan's Open Government Data License first.

    Returns:
        Licence dicts (id, title, url, od_conformance, ...).
    """
    return [lic.as_dict() for lic in LICENSES]


def user_show(ctx: Context, data: dict) -> dict:
    """One user (the caller, without ``id``); e-mail only for themself and sysadmins.

    Args:
        ctx: the context.
        data: ``id``: the user's name or id; ``include_datasets`` (default false).

    Returns:
        The user dict.
    """
    if data.get("id"):
        user = ctx.store.user(data["id"])
    elif ctx.caller.user is not None:
        user = ctx.caller.user
    else:
        raise NotFound()
    if user.state != "active" and not ctx.caller.sysadmin:
        raise NotFound()
    created = [d for d in _visible(ctx) if d.creator_user_id == user.id]
    mine = ctx.caller.sysadmin or (ctx.caller.user is not None and ctx.caller.user.id == user.id)
    out = dicts.user_dict(user, private=mine, datasets=len(created))
    if data.get("include_datasets"):
        out["datasets"] = [_pkg(ctx, d) for d in created]
    return out


def _facet_fields(value: Any) -> list[str]:
    fields = json_list(value)
    if not all(isinstance(f, str) for f in fields):
        raise Invalid("Must be a JSON list of field names")
    return fields


_PAGE: Schema = {
    "limit": [ignore_missing, natural_number_validator],
    "offset": [default(0), natural_number_validator],
}
_ID: Schema = {"id": [not_empty, unicode_safe]}
_GROUP_LIST: Schema = {
    **_PAGE,
    "all_fields": [boolean_validator],
    "include_dataset_count": [default(True), boolean_validator],
    "sort": [default("title asc"), unicode_safe],
}

SCHEMAS: dict[str, Schema] = {
    "status_show": {},
    "site_read": {},
    "help_show": {"name": [not_empty, unicode_safe]},
    "package_list": _PAGE,
    "current_package_list_with_resources": {
        **_PAGE,
        "page": [ignore_missing, int_validator],
    },
    "package_show": {"id": [not_empty, unicode_safe]},
    "package_search": {
        "q": [default(""), unicode_safe],
        "fq": [default(""), unicode_safe],
        "fq_list": [ignore_missing, list_of_strings],
        "sort": [default("score desc, metadata_modified desc"), unicode_safe],
        "rows": [default(10), natural_number_validator, limit_to(ROWS_MAX)],
        "start": [default(0), natural_number_validator],
        "facet": [default(True), boolean_validator],
        "facet.field": [default([]), _facet_fields],
        "facet.limit": [default(50), int_validator],
        "facet.mincount": [default(1), natural_number_validator],
        "include_private": [boolean_validator],
        "include_deleted": [boolean_validator],
        "include_drafts": [boolean_validator],
    },
    "package_autocomplete": {
        "q": [not_empty, unicode_safe],
        "limit": [default(10), natural_number_validator, limit_to(100)],
    },
    "resource_show": _ID,
    "resource_search": {
        "query": [not_empty, list_of_strings],
        "order_by": [ignore_missing, one_of(RESOURCE_SEARCH_FIELDS)],
        **_PAGE,
    },
    "organization_list": {**_GROUP_LIST, "organizations": [ignore_missing, list_of_strings]},
    "organization_show": {
        **_ID,
        "include_datasets": [boolean_validator],
        "include_users": [default(True), boolean_validator],
    },
    "organization_list_for_user": {
        "id": [ignore_missing, unicode_safe],
        "permission": [default("manage_group"), unicode_safe],
    },
    "group_list": {**_GROUP_LIST, "groups": [ignore_missing, list_of_strings]},
    "group_show": {**_ID, "include_datasets": [boolean_validator]},
    "tag_list": {
        "query": [ignore_missing, unicode_safe],
        "vocabulary_id": [ignore_missing, unicode_safe],
        "all_fields": [boolean_validator],
    },
    "tag_show": {**_ID, "include_datasets": [boolean_validator]},
    "license_list": {},
    "user_show": {
        "id": [ignore_missing, unicode_safe],
        "include_datasets": [boolean_validator],
    },
}
