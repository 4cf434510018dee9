"""Write actions: datasets, resources (with file uploads), organizations, groups and members.

As CKAN: ``package_update`` replaces a dataset with what was sent (resources are kept when
``resources`` is not sent), ``package_patch`` changes only the fields sent. What a catalog
layer's dataset takes from the layer (:data:`LAYER_OWNED`: name, organization, titles,
description, category, update frequency, licence, extent, tags) and the resources generated
from it (downloads and services) follow the layer and are not changed through the API;
privacy, contacts, groups, extras and added resources are the API's.

An uploaded file (multipart field ``upload``) is staged, then goes through :func:`on_upload`,
the one hook every upload goes through: a spatial or tabular file is ingested into the
dataset's layer by :mod:`portal.ckan.upload` (the action's result then carries the ingest
report under ``ingest``; a refused file is a 409 and changes nothing). A kept file lives under
``<home>/uploads/<resource id>/<file name>`` and is served at
``/dataset/<dataset id>/resource/<resource id>/download/<file name>``.
"""

from __future__ import annotations

import mimetypes
import re
import shutil
import unicodedata
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from portal.ckan import dicts, upload
from portal.ckan.actions.registry import (
    Context,
    Schema,
    boolean_validator,
    ignore_missing,
    name_validator,
    not_empty,
    one_of,
    unicode_safe,
)
from portal.ckan.errors import NotFound, ValidationError
from portal.ckan.model import ROLES, Dataset, Group, Membership, Organization, Resource
from portal.ckan.upload import UploadOutcome

if TYPE_CHECKING:
    from portal.ckan.api import Portal

#: Text fields of a dataset a client sets directly.
_DATASET_TEXT = (
    "title",
    "notes",
    "url",
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license_id",
    *dicts.OWN_FIELDS,
)

#: Fields of a layer's dataset that come from the catalog layer (the API cannot change them).
LAYER_OWNED = (
    "name",
    "owner_org",
    "title",
    "title_en",
    "notes",
    "category",
    "update_frequency",
    "license_id",
    "spatial",
    "tags",
)

#: Folder of uploaded files, under the data home.
UPLOADS = "uploads"


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# -- datasets --------------------------------------------------------------------------------


def _own_from_extras(data: dict, extras: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Lift our own fields sent as extras (as a stock CKAN client does) into ``data``."""
    kept = []
    for key, value in extras:
        if key in dicts.OWN_FIELDS:
            data.setdefault(key, value)
        else:
            kept.append((key, value))
    return kept


def _groups(ctx: Context, data: dict) -> tuple[str, ...] | None:
    if data.get("groups") is None:
        return None
    names = []
    for ref in dicts.names_of(data["groups"]):
        try:
            names.append(ctx.store.group(ref).name)
        except NotFound:
            raise ValidationError({"groups": [f"Group {ref} not found"]}) from None
    return tuple(dict.fromkeys(names))


def _relative(url: str, ctx: Context) -> str:
    """Our own absolute URLs are stored relative (the base URL is the request's)."""
    if ctx.base_url and url.startswith(ctx.base_url + "/"):
        return url[len(ctx.base_url) :]
    return url


#: A resource id a client may choose: letters, digits, ``_`` and ``-`` (a UUID fits); no dots
#: or slashes, since the id names the resource's folder under ``<home>/uploads``.
RESOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def _new_resource_id(ctx: Context, wanted: str, package_id: str) -> str:
    """The id of a new resource: ``wanted`` when it is safe and free, else a new UUID.

    Raises:
        ValidationError: ``wanted`` is not a plain id, or another dataset's resource has it.
    """
    if not wanted:
        return str(uuid.uuid4())
    if not RESOURCE_ID.fullmatch(wanted):
        raise ValidationError(
            {"id": [f"Resource id {wanted!r} may only hold letters, digits, _ and -"]}
        )
    try:
        taken = ctx.store.resource(wanted)
    except NotFound:
        return wanted
    if taken.package_id != package_id:
        raise ValidationError({"id": [f"Resource id {wanted!r} already exists"]})
    return wanted


def _resource_of(ctx: Context, data: dict, package_id: str, old: Resource | None) -> Resource:
    """A resource from a posted resource dict (``old``: the stored one it replaces).

    Raises:
        ValidationError: a new resource asks for an unsafe id or one already in use.
    """
    kind = old.kind if old is not None and old.kind == "upload" else "link"
    url = _relative(_text(data.get("url")), ctx)
    if old is not None and old.kind == "upload" and url != old.url:
        kind = "link"  # an uploaded file replaced by a link
    return Resource(
        id=old.id if old else _new_resource_id(ctx, _text(data.get("id")), package_id),
        package_id=package_id,
        name=_text(data.get("name")),
        url=url,
        format=_text(data.get("format")) or _format_of(url),
        kind=kind,
        description=_text(data.get("description")),
        mimetype=_text(data.get("mimetype")) or (mimetypes.guess_type(url)[0] or ""),
        size=_size(data.get("size")),
        encoding=_text(data.get("encoding")),
        extras=dicts.resource_extras(data),
        created=old.created if old else None,
        last_modified=_now(),
        datastore_active=old.datastore_active if old else False,
    )


def _size(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError({"size": ["Invalid integer"]}) from None


def _format_of(url: str) -> str:
    suffix = Path(url.split("?", 1)[0]).suffix.lstrip(".")
    return suffix.upper() if 0 < len(suffix) <= 8 else ""


def _resources(ctx: Context, data: dict, ds_id: str, old: Dataset | None) -> tuple[Resource, ...]:
    """The dataset's resources: generated ones kept as they are, others from ``data``."""
    stored = {r.id: r for r in old.resources} if old else {}
    if data.get("resources") is None:
        return tuple(stored.values())
    generated = [r for r in stored.values() if r.generated]
    out = list(generated)
    for item in data["resources"]:
        if not isinstance(item, dict):
            raise ValidationError({"resources": ["Resources must be objects"]})
        prior = stored.get(_text(item.get("id")))
        if prior is not None and prior.generated:
            continue
        out.append(_resource_of(ctx, item, ds_id, prior))
    return tuple(replace(r, position=i) for i, r in enumerate(out))


def _organization(ctx: Context, ref: str) -> Organization:
    try:
        return ctx.store.organization(ref)
    except NotFound:
        raise ValidationError({"owner_org": ["Organization does not exist"]}) from None


def _dataset_of(ctx: Context, data: dict, old: Dataset | None) -> Dataset:
    """The dataset a ``package_create``/``package_update`` request describes."""
    data = dict(data)
    extras = dicts.extras_of(data)
    extras = _own_from_extras(data, extras) if extras is not None else None
    org = _organization(ctx, _text(data.get("owner_org")))
    ds_id = old.id if old else _text(data.get("id")) or str(uuid.uuid4())
    base = old or Dataset(id=ds_id, name="", title="", owner_org=org.name)
    tags = dicts.tags_of(data)
    groups = _groups(ctx, data)
    fields: dict[str, Any] = {name: _text(data.get(name)) for name in _DATASET_TEXT}
    fields.update(
        license_id=fields["license_id"] or "OGDL-Taiwan-1.0",
        title=fields["title"] or data["name"],
        name=data["name"],
        owner_org=org.name,
        tags=tags or (),
    )
    if old is not None and old.layer_id:  # what the catalog layer says stays as it says
        fields.update({name: getattr(old, name) for name in LAYER_OWNED})
    return replace(
        base,
        **fields,
        id=ds_id,
        private=boolean_validator(data.get("private", False)),
        state="active",
        groups=groups if groups is not None else (base.groups if old else ()),
        extras=tuple(extras) if extras is not None else (),
        resources=_resources(ctx, data, ds_id, old),
        creator_user_id=base.creator_user_id if old else _creator(ctx),
        source=base.source if old else "api",
    )


def _creator(ctx: Context) -> str | None:
    return ctx.caller.user.id if ctx.caller.user else None


def _show(ctx: Context, ds: Dataset) -> dict:
    ctx.portal.invalidate()
    return dicts.package_dict(ds, ctx.portal.organizations(), ctx.portal.groups(), ctx.base_url)


def package_create(ctx: Context, data: dict) -> dict:
    """Create a dataset.

    Args:
        ctx: the context.
        data: ``name`` (URL name, required), ``owner_org`` (organization name or id,
            required), ``title``, ``notes``, ``private``, ``license_id``, ``url``,
            ``version``, ``author``/``maintainer`` (+ ``_email``), ``tags`` (list of
            ``{"name"}``) or ``tag_string``, ``groups`` (list of ``{"name"}``), ``extras``
            (list of ``{"key", "value"}``), ``resources`` (list of resource dicts), and this
            portal's ``title_en``, ``category``, ``update_frequency``,
            ``fields_description``, ``spatial`` (top-level or as extras).

    Returns:
        The created package dict.
    """
    if data.get("id") and not ctx.caller.sysadmin:
        data = {k: v for k, v in data.items() if k != "id"}
    if data.get("id"):
        try:
            ctx.store.dataset(data["id"])
        except NotFound:
            pass
        else:
            raise ValidationError({"id": ["Dataset id already exists"]})
    ds = ctx.store.put_dataset(_dataset_of(ctx, data, None))
    return _show(ctx, ds)


def _update(ctx: Context, data: dict) -> dict:
    old = ctx.store.dataset(_text(data.get("id") or data.get("name")))
    data = {"name": old.name, "owner_org": old.owner_org, **data}
    ds = ctx.store.put_dataset(_dataset_of(ctx, data, old))
    return _show(ctx, ds)


def package_update(ctx: Context, data: dict) -> dict:
    """Replace a dataset with what was sent.

    Fields not sent are cleared; resources are kept when ``resources`` is not sent.

    Args:
        ctx: the context.
        data: ``id`` (or ``name``) and the fields of ``package_create``.

    Returns:
        The updated package dict.
    """
    return _update(ctx, data)


def package_patch(ctx: Context, data: dict) -> dict:
    """Change only the fields sent (``package_show`` + these fields → ``package_update``).

    Args:
        ctx: the context.
        data: ``id`` (or ``name``) and any fields of ``package_create``.

    Returns:
        The updated package dict.
    """
    old = ctx.store.dataset(_text(data.get("id") or data.get("name")))
    current = dicts.package_dict(old, ctx.portal.organizations(), ctx.portal.groups(), "")
    current["owner_org"] = old.owner_org
    current.pop("organization", None)
    return _update(ctx, {**current, **data, "id": old.id})


def package_delete(ctx: Context, data: dict) -> None:
    """Delete a dataset (its state becomes ``deleted``; it leaves lists and searches).

    Args:
        ctx: the context.
        data: ``id``: the dataset's id or name.

    Returns:
        None.
    """
    ctx.store.delete_dataset(data["id"])
    ctx.portal.invalidate()


# -- resources -------------------------------------------------------------------------------


def safe_filename(name: str) -> str:
    """A stored file name from what the client called the file (no folders, no oddities).

    Args:
        name: the uploaded file's name.

    Returns:
        Letters (any script), digits, ``.``, ``_`` and ``-`` only; at most 100 characters.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"\s+", "-", name.strip())
    name = re.sub(r"[^\w.\-]", "", name).lstrip(".")
    if len(name) > 100:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: 99 - len(suffix)] + dot + suffix) if dot and len(suffix) < 10 else name[:100]
    return name or "upload"


def on_upload(portal: Portal, dataset: Dataset, resource: Resource, path: Path) -> UploadOutcome:
    """What happens to every uploaded file once staged (see :mod:`portal.ckan.upload`).

    A spatial or tabular file goes through the ingest pipeline and becomes a new version of
    the dataset's layer (the dataset becomes a layer dataset when it was none), the resource
    keeping the report in its ``ingest_report`` extra; any other file is stored as it is. A
    refused file changes nothing.

    Args:
        portal: the portal (store, data home, catalog view).
        dataset: the resource's dataset.
        resource: the resource, its ``url`` the file's download path.
        path: the staged file (moved into ``<home>/uploads/<resource id>/`` when kept).

    Returns:
        The stored resource, with the ingest report for ingested files.

    Raises:
        ValidationError: the pipeline refused the file (messages under ``upload``).
    """
    return upload.receive(portal, dataset, resource, path)


def _store_upload(ctx: Context, ds: Dataset, res: Resource) -> UploadOutcome:
    """Stage ``ctx.files["upload"]`` for ``res``, point the resource at it, and take it in."""
    file = ctx.files["upload"]
    name = safe_filename(file.filename)
    path = upload.stage(ctx.home, file.file, name)
    res = replace(
        res,
        kind="upload",
        url=f"/dataset/{ds.id}/resource/{res.id}/download/{quote(name)}",
        size=path.stat().st_size,
        mimetype=res.mimetype or (mimetypes.guess_type(name)[0] or ""),
        format=res.format or _format_of(name),
        name=res.name or name,
        last_modified=_now(),
    )
    return on_upload(ctx.portal, ds, res, path)


def _put_resource(ctx: Context, ds: Dataset, res: Resource) -> dict:
    if "upload" in ctx.files:
        outcome = _store_upload(ctx, ds, res)
    else:
        outcome = UploadOutcome(ctx.store.put_resource(res))
    ctx.portal.invalidate()
    out = dicts.resource_dict(outcome.resource, ctx.base_url, ctx.store.dataset(ds.id))
    if outcome.report is not None:
        out["ingest"] = outcome.report
    return out


def resource_create(ctx: Context, data: dict) -> dict:
    """Add a resource to a dataset: a link (``url``) or a file (multipart field ``upload``).

    A spatial file (shapefile zip, GeoJSON, KML/KMZ, GeoPackage, GeoTIFF, TopoJSON, CSV) is
    ingested as a new version of the dataset's layer; the result's ``ingest`` is the report.

    Args:
        ctx: the context.
        data: ``package_id`` (dataset id or name), ``url`` (unless a file is uploaded),
            ``name``, ``format``, ``description``, ``mimetype``, ``size``, ``encoding``;
            other keys are kept as resource extras (``layer``, ``crs``, ``x``, ``y`` are
            also read as ingest options of an uploaded file).

    Returns:
        The created resource dict.
    """
    ds = ctx.store.dataset(data["package_id"])
    if "upload" not in ctx.files and not data.get("url"):
        raise ValidationError({"url": ["Missing value"]})
    res = _resource_of(ctx, {k: v for k, v in data.items() if k != "id"}, ds.id, None)
    return _put_resource(ctx, ds, res)


def _editable(ctx: Context, resource_id: str) -> tuple[Dataset, Resource]:
    res = ctx.store.resource(resource_id)
    if res.generated:
        raise ValidationError(
            {
                "id": [
                    f"Resource {res.id} is generated from the dataset's catalog layer and "
                    "follows it; it cannot be changed through the API"
                ]
            }
        )
    return ctx.store.dataset(res.package_id), res


def resource_update(ctx: Context, data: dict) -> dict:
    """Replace a resource with what was sent (a new file may be uploaded).

    Args:
        ctx: the context.
        data: ``id`` and the fields of ``resource_create``.

    Returns:
        The updated resource dict.
    """
    ds, old = _editable(ctx, data["id"])
    if "upload" not in ctx.files and not data.get("url"):
        data = {**data, "url": old.url}
    res = _resource_of(ctx, data, ds.id, old)
    return _put_resource(ctx, ds, res)


def resource_patch(ctx: Context, data: dict) -> dict:
    """Change only the resource fields sent.

    Args:
        ctx: the context.
        data: ``id`` and any fields of ``resource_create``.

    Returns:
        The updated resource dict.
    """
    ds, old = _editable(ctx, data["id"])
    current = dicts.resource_dict(old, "", ds)
    return resource_update(ctx, {**current, **data})


def resource_delete(ctx: Context, data: dict) -> None:
    """Remove a resource (and its uploaded file and DataStore table).

    Args:
        ctx: the context.
        data: ``id``: the resource's id.

    Returns:
        None.
    """
    _, res = _editable(ctx, data["id"])
    ctx.store.delete_resource(res.id)
    root = (ctx.home / UPLOADS).resolve()
    folder = (root / res.id).resolve()
    if res.kind == "upload" and folder.parent == root and folder.is_dir():
        shutil.rmtree(folder)
    ctx.portal.invalidate()


# -- organizations, groups, members ------------------------------------------------------------


def organization_create(ctx: Context, data: dict) -> dict:
    """Create an organization (an agency); the creator becomes its admin.

    Args:
        ctx: the context.
        data: ``name`` (required), ``title``, ``title_en``, ``description``, ``image_url``.

    Returns:
        The organization dict.
    """
    try:
        ctx.store.organization(data["name"])
    except NotFound:
        pass
    else:
        raise ValidationError({"name": ["Group name already exists in database"]})
    org = ctx.store.put_organization(
        Organization(
            id="",
            name=data["name"],
            title=_text(data.get("title")) or data["name"],
            title_en=_text(data.get("title_en")),
            description=_text(data.get("description")),
            image_url=_text(data.get("image_url")),
        )
    )
    if ctx.caller.user is not None:
        ctx.store.put_membership(Membership(org.name, ctx.caller.user.id, "admin"))
    ctx.portal.invalidate()
    return dicts.organization_dict(org, 0)


def organization_update(ctx: Context, data: dict) -> dict:
    """Change an organization's title, English title, description or image.

    Args:
        ctx: the context.
        data: ``id`` (name or id) and the fields to set (as ``organization_create``).

    Returns:
        The organization dict.
    """
    old = ctx.store.organization(data["id"])
    org = ctx.store.put_organization(
        replace(
            old,
            title=_text(data.get("title")) or old.title,
            title_en=_text(data.get("title_en", old.title_en)),
            description=_text(data.get("description", old.description)),
            image_url=_text(data.get("image_url", old.image_url)),
        )
    )
    ctx.portal.invalidate()
    return dicts.organization_dict(org)


def group_create(ctx: Context, data: dict) -> dict:
    """Create a group (a theme datasets of any organization may join).

    Args:
        ctx: the context.
        data: ``name`` (required), ``title``, ``title_en``, ``description``, ``image_url``.

    Returns:
        The group dict.
    """
    try:
        ctx.store.group(data["name"])
    except NotFound:
        pass
    else:
        raise ValidationError({"name": ["Group name already exists in database"]})
    group = ctx.store.put_group(
        Group(
            id=str(uuid.uuid4()),
            name=data["name"],
            title=_text(data.get("title")) or data["name"],
            title_en=_text(data.get("title_en")),
            description=_text(data.get("description")),
            image_url=_text(data.get("image_url")),
        )
    )
    ctx.portal.invalidate()
    return dicts.group_dict(group, 0)


def _member_dict(group_id: str, table: str, object_id: str, capacity: str) -> dict:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"member:{group_id}:{table}:{object_id}")),
        "group_id": group_id,
        "table_name": table,
        "table_id": object_id,
        "capacity": capacity,
        "state": "active",
    }


def _add_to_group(ctx: Context, group: Group, ref: str) -> dict:
    ds = ctx.store.dataset(ref)
    if group.name not in ds.groups:
        ctx.store.put_dataset(replace(ds, groups=(*ds.groups, group.name)))
    ctx.portal.invalidate()
    return _member_dict(group.id, "package", ds.id, "public")


def member_create(ctx: Context, data: dict) -> dict:
    """Put a dataset into a group, or give a user a role in an organization.

    Args:
        ctx: the context.
        data: ``id`` (group or organization), ``object`` (dataset or user name/id),
            ``object_type`` (``package`` or ``user``), ``capacity`` (a role for users:
            member, editor, admin; ``public`` for datasets).

    Returns:
        The member dict.
    """
    target, ref = data["id"], data["object"]
    if data["object_type"] == "package":
        try:
            return _add_to_group(ctx, ctx.store.group(target), ref)
        except NotFound:
            raise ValidationError(
                {"id": ["Datasets join groups; a dataset's organization is its owner_org"]}
            ) from None
    org = ctx.store.organization(target)
    if data["capacity"] not in ROLES:
        raise ValidationError({"capacity": [f"Role must be one of {', '.join(ROLES)}"]})
    user = ctx.store.user(ref)
    ctx.store.put_membership(Membership(org.name, user.id, data["capacity"]))
    return _member_dict(org.id, "user", user.id, data["capacity"])


def organization_member_create(ctx: Context, data: dict) -> dict:
    """Give a user a role (member, editor, admin) in an organization.

    Args:
        ctx: the context.
        data: ``id`` (organization), ``username`` (user name or id), ``role``.

    Returns:
        The member dict.
    """
    return member_create(
        ctx,
        {
            "id": data["id"],
            "object": data["username"],
            "object_type": "user",
            "capacity": data["role"],
        },
    )


_NAME: Schema = {"name": [not_empty, name_validator]}
_GROUP: Schema = {
    **_NAME,
    "title": [ignore_missing, unicode_safe],
    "description": [ignore_missing, unicode_safe],
}

SCHEMAS: dict[str, Schema] = {
    "package_create": {
        **_NAME,
        "owner_org": [not_empty, unicode_safe],
        "title": [ignore_missing, unicode_safe],
        "private": [boolean_validator],
    },
    "package_update": {
        "id": [not_empty, unicode_safe],
        "name": [ignore_missing, name_validator],
        "owner_org": [ignore_missing, unicode_safe],
        "private": [boolean_validator],
    },
    "package_patch": {
        "id": [not_empty, unicode_safe],
        "name": [ignore_missing, name_validator],
        "owner_org": [ignore_missing, unicode_safe],
    },
    "package_delete": {"id": [not_empty, unicode_safe]},
    "resource_create": {
        "package_id": [not_empty, unicode_safe],
        "url": [ignore_missing, unicode_safe],
        "name": [ignore_missing, unicode_safe],
    },
    "resource_update": {"id": [not_empty, unicode_safe], "url": [ignore_missing, unicode_safe]},
    "resource_patch": {"id": [not_empty, unicode_safe], "url": [ignore_missing, unicode_safe]},
    "resource_delete": {"id": [not_empty, unicode_safe]},
    "organization_create": _GROUP,
    "organization_update": {"id": [not_empty, unicode_safe]},
    "group_create": _GROUP,
    "member_create": {
        "id": [not_empty, unicode_safe],
        "object": [not_empty, unicode_safe],
        "object_type": [not_empty, one_of(("package", "user"))],
        "capacity": [not_empty, unicode_safe],
    },
    "organization_member_create": {
        "id": [not_empty, unicode_safe],
        "username": [not_empty, unicode_safe],
        "role": [not_empty, one_of(ROLES)],
    },
}
