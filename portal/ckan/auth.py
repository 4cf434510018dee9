"""Who is calling, and what they may do: the portal's authorization model (CKAN's).

- **anonymous** (no token, or a token the portal does not know): reads public datasets.
- **member** of an organization: also reads the organization's private datasets.
- **editor**: also creates, updates and deletes the organization's datasets and resources.
- **admin**: also edits the organization and gives roles in it.
- **sysadmin**: everything, everywhere.

The caller is identified by an API token (made with ``geoportal user token``) sent raw in
``Authorization`` or ``X-CKAN-API-Key`` (``ckanapi`` sends both; ``Bearer <token>`` is taken
too). Every write needs one. The ``auth_*`` functions are the actions' auth functions:
``auth(context, data)`` returns when the caller may go on and raises
:class:`~portal.ckan.errors.NotAuthorized` (403) otherwise, with CKAN's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portal.ckan.errors import NotAuthorized, NotFound, ValidationError
from portal.ckan.model import ROLES, Dataset, User

if TYPE_CHECKING:
    from portal.ckan.actions.registry import Context
    from portal.ckan.store import PortalStore


@dataclass(frozen=True)
class Caller:
    """The user behind a request (None: anonymous) and their roles.

    Attributes:
        user: the user, or None for anonymous.
        roles: organization name → role (member, editor, admin).
    """

    user: User | None = None
    roles: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The user's name ("" for anonymous, as CKAN writes it in messages)."""
        return self.user.name if self.user else ""

    @property
    def sysadmin(self) -> bool:
        """Whether the caller is a sysadmin."""
        return bool(self.user and self.user.sysadmin)

    def has_role(self, organization: str, role: str) -> bool:
        """Whether the caller holds ``role`` or a stronger one in ``organization``.

        Args:
            organization: the organization's name.
            role: member, editor or admin.

        Returns:
            True for sysadmins and for users with at least that role there.
        """
        if self.sysadmin:
            return True
        held = self.roles.get(organization)
        return held is not None and ROLES.index(held) >= ROLES.index(role)

    def can_read(self, dataset: Dataset) -> bool:
        """Whether the caller may see a dataset (public and active, or a member's)."""
        if not dataset.private and dataset.state == "active":
            return True
        return self.has_role(dataset.owner_org, "member")

    def can_edit(self, dataset: Dataset) -> bool:
        """Whether the caller may change a dataset (editor of its organization)."""
        return self.has_role(dataset.owner_org, "editor")

    @property
    def viewer_orgs(self) -> frozenset[str] | None:
        """Organizations whose private datasets the caller sees (None: all, a sysadmin)."""
        return None if self.sysadmin else frozenset(self.roles)


ANONYMOUS = Caller()


def token_of(headers: Mapping[str, str]) -> str:
    """The API token a request carries ("" for none).

    Args:
        headers: the request headers (case-insensitive mapping).

    Returns:
        The token from ``Authorization`` (raw or ``Bearer …``) or ``X-CKAN-API-Key``.
    """
    raw = headers.get("authorization") or headers.get("x-ckan-api-key") or ""
    raw = raw.strip()
    if raw.lower().startswith("bearer "):
        raw = raw[7:].strip()
    return raw


def caller_of(store: PortalStore, headers: Mapping[str, str]) -> Caller:
    """Identify the caller of a request.

    Args:
        store: the portal store.
        headers: the request headers.

    Returns:
        The caller (anonymous when there is no token or the token is unknown).
    """
    user = store.user_of_token(token_of(headers))
    if user is None:
        return ANONYMOUS
    roles = {m.organization: m.role for m in store.memberships(user=user.id)}
    return Caller(user, roles)


def _refuse(message: str) -> NotAuthorized:
    return NotAuthorized(message)


# -- auth functions ---------------------------------------------------------------------------


def auth_anyone(ctx: Context, data: dict) -> None:
    """Anyone may call it (what they see is filtered by the action)."""


def auth_sysadmin(ctx: Context, data: dict) -> None:
    """Only sysadmins."""
    if not ctx.caller.sysadmin:
        raise _refuse(f"User {ctx.caller.name} not authorized to {ctx.action.replace('_', ' ')}")


def _dataset(ctx: Context, name_or_id: object) -> Dataset:
    return ctx.store.dataset(str(name_or_id))


def auth_package_show(ctx: Context, data: dict) -> None:
    """Public active datasets for anyone; private (or deleted) ones for their members."""
    ds = _dataset(ctx, data.get("id") or data.get("name_or_id") or "")
    if not ctx.caller.can_read(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to read package {ds.id}")


def auth_package_create(ctx: Context, data: dict) -> None:
    """Editors and admins of the owning organization."""
    if ctx.caller.user is None:
        raise _refuse("User  not authorized to create packages")
    try:
        org = ctx.store.organization(str(data.get("owner_org")))
    except NotFound:
        raise ValidationError({"owner_org": ["Organization does not exist"]}) from None
    if not ctx.caller.has_role(org.name, "editor"):
        raise _refuse(f"User {ctx.caller.name} not authorized to add dataset to this organization")


def auth_package_update(ctx: Context, data: dict) -> None:
    """Editors and admins of the dataset's organization (and, on a move, of the new one)."""
    ds = _dataset(ctx, data.get("id") or data.get("name") or "")
    if not ctx.caller.can_edit(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit package {ds.id}")
    target = data.get("owner_org")
    if target and target not in (ds.owner_org,):
        try:
            org = ctx.store.organization(str(target))
        except NotFound:
            return  # the action refuses it: "Organization does not exist"
        if org.name != ds.owner_org and not ctx.caller.has_role(org.name, "editor"):
            raise _refuse(
                f"User {ctx.caller.name} not authorized to add dataset to this organization"
            )


def auth_package_delete(ctx: Context, data: dict) -> None:
    """Editors and admins of the dataset's organization."""
    ds = _dataset(ctx, data.get("id") or "")
    if not ctx.caller.can_edit(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to delete package {ds.id}")


def auth_resource_show(ctx: Context, data: dict) -> None:
    """Whoever may read the resource's dataset."""
    res = ctx.store.resource(str(data.get("resource_id") or data.get("id") or ""))
    ds = _dataset(ctx, res.package_id)
    if not ctx.caller.can_read(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to read resource {res.id}")


def auth_resource_create(ctx: Context, data: dict) -> None:
    """Editors and admins of the dataset's organization."""
    ds = _dataset(ctx, data.get("package_id") or "")
    if not ctx.caller.can_edit(ds):
        raise _refuse(
            f"User {ctx.caller.name} not authorized to create resources on dataset {ds.id}"
        )


def auth_resource_update(ctx: Context, data: dict) -> None:
    """Editors and admins of the resource's dataset's organization."""
    res = ctx.store.resource(str(data.get("id") or data.get("resource_id") or ""))
    ds = _dataset(ctx, res.package_id)
    if not ctx.caller.can_edit(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit resource {res.id}")


def auth_organization_update(ctx: Context, data: dict) -> None:
    """Admins of the organization."""
    org = ctx.store.organization(str(data.get("id") or data.get("name") or ""))
    if not ctx.caller.has_role(org.name, "admin"):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit organization {org.id}")


def auth_organization_member_create(ctx: Context, data: dict) -> None:
    """Admins of the organization."""
    org = ctx.store.organization(str(data.get("id") or ""))
    if not ctx.caller.has_role(org.name, "admin"):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit organization {org.id}")


def auth_member_create(ctx: Context, data: dict) -> None:
    """Organizations: their admins. Groups: sysadmins, and editors filing their datasets.

    A group has no members of its own here: a dataset may be put into a group by whoever may
    edit the dataset; users are added to groups only by sysadmins.
    """
    target = str(data.get("id") or "")
    if data.get("object_type") == "package":
        try:
            ctx.store.group(target)
        except NotFound:
            pass
        else:
            ds = _dataset(ctx, data.get("object") or "")
            if not ctx.caller.can_edit(ds):
                raise _refuse(f"User {ctx.caller.name} not authorized to edit group {target}")
            return
    try:
        org = ctx.store.organization(target)
    except NotFound:
        if not ctx.caller.sysadmin:
            raise _refuse(f"User {ctx.caller.name} not authorized to edit group {target}") from None
        return
    if not ctx.caller.has_role(org.name, "admin"):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit group {org.id}")


def auth_logged_in(ctx: Context, data: dict) -> None:
    """Any user with a valid token."""
    if ctx.caller.user is None:
        raise _refuse("Only logged in users may do this")


def auth_resource_update_rows(ctx: Context, data: dict) -> None:
    """DataStore rows: editors and admins of the resource's dataset's organization.

    Unlike ``resource_update`` this is allowed on generated resources too.
    """
    res = ctx.store.resource(str(data.get("resource_id") or ""))
    ds = _dataset(ctx, res.package_id)
    if not ctx.caller.can_edit(ds):
        raise _refuse(f"User {ctx.caller.name} not authorized to edit resource {res.id}")
