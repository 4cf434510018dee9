"""Typed portal records ⇄ CKAN's JSON dicts (the shapes ``package_show`` & co. return).

Only the API edge sees dicts: actions turn records into CKAN's shapes here, and turn what a
client posted back into records. Times are written as CKAN writes them (ISO 8601, UTC, no
offset); URLs this portal serves are stored relative and made absolute with the request's base
URL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from portal.ckan.layers import NAMESPACE
from portal.ckan.licenses import license_of
from portal.ckan.model import Dataset, Group, Organization, Resource, User

#: Our dataset fields that CKAN does not have; returned top-level and accepted top-level or as
#: extras (a client that only knows CKAN's core fields sends them as extras).
OWN_FIELDS = ("title_en", "category", "update_frequency", "fields_description", "spatial")

#: Core fields of a resource dict; any other key a client sends becomes a resource extra.
RESOURCE_CORE = frozenset(
    {
        "id",
        "package_id",
        "name",
        "url",
        "format",
        "description",
        "mimetype",
        "mimetype_inner",
        "size",
        "position",
        "created",
        "last_modified",
        "metadata_modified",
        "datastore_active",
        "state",
        "url_type",
        "hash",
        "cache_url",
        "cache_last_updated",
        "resource_type",
        "encoding",
        "kind",
        "generated",
        "upload",
    }
)


def ckan_time(value: datetime | None) -> str | None:
    """A time as CKAN writes it: ``2024-05-01T08:30:00.123456`` (UTC, no offset).

    Args:
        value: an aware datetime, or None.

    Returns:
        The text, or None.
    """
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


def absolute(url: str, base_url: str) -> str:
    """A resource URL as clients see it: this portal's own paths made absolute.

    Args:
        url: the stored URL (``/download/x.geojson`` or ``https://…``).
        base_url: the request's base URL, without a trailing slash.

    Returns:
        The absolute URL.
    """
    return base_url + url if url.startswith("/") else url


def tag_dict(name: str) -> dict:
    """CKAN's tag dict (free tags: no vocabulary)."""
    return {
        "display_name": name,
        "id": str(uuid.uuid5(NAMESPACE, f"tag:{name}")),
        "name": name,
        "state": "active",
        "vocabulary_id": None,
    }


def resource_dict(res: Resource, base_url: str, dataset: Dataset | None = None) -> dict:
    """CKAN's resource dict.

    Args:
        res: the resource.
        base_url: the request's base URL.
        dataset: its dataset (for ``metadata_modified``), when at hand.

    Returns:
        The dict, extras as top-level keys as CKAN returns them.
    """
    layer_rows = bool(
        dataset is not None and dataset.layer_id and res.generated and res.format == "CSV"
    )  # datastore_search reads a layer's rows behind its generated CSV
    out: dict[str, Any] = {
        "cache_last_updated": None,
        "cache_url": None,
        "created": ckan_time(res.created),
        "datastore_active": res.datastore_active or layer_rows,
        "description": res.description,
        "format": res.format,
        "hash": "",
        "id": res.id,
        "last_modified": ckan_time(res.last_modified),
        "metadata_modified": ckan_time(
            res.last_modified or (dataset.metadata_modified if dataset else res.created)
        ),
        "mimetype": res.mimetype or None,
        "mimetype_inner": None,
        "name": res.name,
        "package_id": res.package_id,
        "position": res.position,
        "resource_type": None,
        "size": res.size,
        "state": "active",
        "url": absolute(res.url, base_url),
        "url_type": "upload" if res.kind == "upload" else None,
        "kind": res.kind,
        "generated": res.generated,
    }
    if res.encoding:
        out["encoding"] = res.encoding
    for key, value in res.extras:
        out.setdefault(key, value)
    return out


def organization_dict(
    org: Organization, package_count: int | None = None, *, brief: bool = False
) -> dict:
    """CKAN's organization dict.

    Args:
        org: the organization.
        package_count: how many datasets the caller can see in it, when counted.
        brief: the short form embedded in a package dict.

    Returns:
        The dict.
    """
    out: dict[str, Any] = {
        "id": org.id,
        "name": org.name,
        "title": org.title,
        "type": "organization",
        "description": org.description,
        "image_url": org.image_url,
        "created": ckan_time(org.created),
        "is_organization": True,
        "approval_status": "approved",
        "state": org.state,
    }
    if brief:
        return out
    out.update(
        display_name=org.title or org.name,
        image_display_url=org.image_url,
        title_en=org.title_en,
        num_followers=0,
        package_count=package_count or 0,
        extras=[],
        groups=[],
        tags=[],
    )
    return out


def group_dict(group: Group, package_count: int | None = None, *, brief: bool = False) -> dict:
    """CKAN's group dict (``brief``: the form listed in a package's ``groups``).

    Args:
        group: the group.
        package_count: how many datasets the caller can see in it, when counted.
        brief: the short form.

    Returns:
        The dict.
    """
    out: dict[str, Any] = {
        "description": group.description,
        "display_name": group.title or group.name,
        "id": group.id,
        "image_display_url": group.image_url,
        "name": group.name,
        "title": group.title,
    }
    if brief:
        return out
    out.update(
        type="group",
        is_organization=False,
        approval_status="approved",
        image_url=group.image_url,
        created=ckan_time(group.created),
        state=group.state,
        title_en=group.title_en,
        num_followers=0,
        package_count=package_count or 0,
        extras=[],
        groups=[],
        tags=[],
    )
    return out


def user_dict(user: User, *, private: bool = False, datasets: int = 0) -> dict:
    """CKAN's user dict; e-mail only for the user themself and sysadmins (``private``).

    Args:
        user: the user.
        private: include private details (e-mail).
        datasets: how many datasets the user created.

    Returns:
        The dict.
    """
    out = {
        "id": user.id,
        "name": user.name,
        "fullname": user.fullname,
        "display_name": user.fullname or user.name,
        "about": "",
        "created": ckan_time(user.created),
        "sysadmin": user.sysadmin,
        "state": user.state,
        "image_display_url": "",
        "number_created_packages": datasets,
    }
    if private:
        out["email"] = user.email
    return out


def package_dict(
    ds: Dataset,
    organizations: Mapping[str, Organization],
    groups: Mapping[str, Group],
    base_url: str,
) -> dict:
    """CKAN's package dict, as ``package_show`` returns it, plus this portal's own fields.

    Args:
        ds: the dataset.
        organizations: organizations by name.
        groups: groups by name.
        base_url: the request's base URL.

    Returns:
        The dict.
    """
    org = organizations.get(ds.owner_org)
    lic = license_of(ds.license_id)
    extras = dict(ds.extras)
    if ds.spatial and "spatial" not in extras:
        extras["spatial"] = ds.spatial
    out: dict[str, Any] = {
        "author": ds.author,
        "author_email": ds.author_email,
        "creator_user_id": ds.creator_user_id,
        "id": ds.id,
        "isopen": bool(lic and lic.is_open),
        "license_id": ds.license_id,
        "license_title": lic.title if lic else ds.license_id,
        "license_url": lic.url if lic else "",
        "maintainer": ds.maintainer,
        "maintainer_email": ds.maintainer_email,
        "metadata_created": ckan_time(ds.metadata_created),
        "metadata_modified": ckan_time(ds.metadata_modified),
        "name": ds.name,
        "notes": ds.notes,
        "num_resources": len(ds.resources),
        "num_tags": len(ds.tags),
        "organization": organization_dict(org, brief=True) if org else None,
        "owner_org": org.id if org else None,
        "private": ds.private,
        "state": ds.state,
        "title": ds.title,
        "type": "dataset",
        "url": ds.url,
        "version": ds.version,
        "extras": [{"key": k, "value": v} for k, v in extras.items()],
        "groups": [group_dict(groups[g], brief=True) for g in ds.groups if g in groups],
        "tags": [tag_dict(t) for t in ds.tags],
        "resources": [resource_dict(r, base_url, ds) for r in ds.resources],
        "relationships_as_object": [],
        "relationships_as_subject": [],
        "layer_id": ds.layer_id,
        "layer_version": ds.layer_version,
        "source": ds.source,
    }
    for name in OWN_FIELDS:
        out[name] = getattr(ds, name)
    for key, value in ds.extras:
        if key.startswith("quality_"):
            out[key] = value
    return out


# -- parsing what clients post ----------------------------------------------------------------


def tags_of(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The tag names a client sent (``tags`` as dicts or names, or ``tag_string``), or None.

    Args:
        data: the posted package dict.

    Returns:
        Tag names in order without repeats, or None when the client sent none.
    """
    if "tags" in data and data["tags"] is not None:
        raw = data["tags"]
        if isinstance(raw, str):
            raw = json.loads(raw) if raw.startswith("[") else raw.split(",")
        names = [t.get("name", "") if isinstance(t, Mapping) else str(t) for t in raw]
    elif "tag_string" in data:
        names = str(data["tag_string"]).split(",")
    else:
        return None
    return tuple(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def extras_of(data: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """The extras a client sent (a list of ``{key, value}``), or None.

    Args:
        data: the posted package dict.

    Returns:
        (key, value) pairs, or None when the client sent no ``extras``.
    """
    raw = data.get("extras")
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = json.loads(raw)
    pairs = []
    for item in raw:
        if isinstance(item, Mapping) and item.get("key"):
            if item.get("deleted") in (True, "on", "True", "true"):
                continue
            value = item.get("value", "")
            pairs.append((str(item["key"]), value if isinstance(value, str) else json.dumps(value)))
    return pairs


def resource_extras(data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A posted resource's non-core keys, as extras (values as text).

    Args:
        data: the posted resource dict.

    Returns:
        (key, value) pairs.
    """
    out = []
    for key, value in data.items():
        if key in RESOURCE_CORE or value is None:
            continue
        out.append((key, value if isinstance(value, str) else json.dumps(value)))
    return tuple(out)


def names_of(items: Iterable[Any]) -> list[str]:
    """Names (or ids) from a list of dicts with ``name``/``id``, or of plain strings."""
    out = []
    for item in items:
        value = (item.get("name") or item.get("id")) if isinstance(item, Mapping) else item
        if value:
            out.append(str(value))
    return out
