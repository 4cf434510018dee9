"""The CKAN actions this portal offers, in one explicit registry (:data:`ACTIONS`).

Each entry names the function, its schema (validators, run first), its auth function (run
next) and whether it is side-effect free (callable with GET). Nothing else is an action.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.ckan import auth
from portal.ckan.actions import datastore, read, write
from portal.ckan.actions.registry import Action, Context

_AuthFn = Callable[[Context, dict], None]


def _read(function: Callable, check: _AuthFn = auth.auth_anyone) -> Action:
    return Action(function, read.SCHEMAS[function.__name__], check, read_only=True)


def _write(function: Callable, check: _AuthFn) -> Action:
    return Action(function, write.SCHEMAS[function.__name__], check, read_only=False)


ACTIONS: dict[str, Action] = {
    # site
    "status_show": _read(read.status_show),
    "site_read": _read(read.site_read),
    "help_show": _read(read.help_show),
    # datasets and resources
    "package_list": _read(read.package_list),
    "current_package_list_with_resources": _read(read.current_package_list_with_resources),
    "package_show": _read(read.package_show, auth.auth_package_show),
    "package_search": _read(read.package_search),
    "package_autocomplete": _read(read.package_autocomplete),
    "resource_show": _read(read.resource_show, auth.auth_resource_show),
    "resource_search": _read(read.resource_search),
    # organizations, groups, tags, licences, users
    "organization_list": _read(read.organization_list),
    "organization_show": _read(read.organization_show),
    "organization_list_for_user": _read(read.organization_list_for_user, auth.auth_logged_in),
    "group_list": _read(read.group_list),
    "group_show": _read(read.group_show),
    "tag_list": _read(read.tag_list),
    "tag_show": _read(read.tag_show),
    "license_list": _read(read.license_list),
    "user_show": _read(read.user_show),
    # writes
    "package_create": _write(write.package_create, auth.auth_package_create),
    "package_update": _write(write.package_update, auth.auth_package_update),
    "package_patch": _write(write.package_patch, auth.auth_package_update),
    "package_delete": _write(write.package_delete, auth.auth_package_delete),
    "resource_create": _write(write.resource_create, auth.auth_resource_create),
    "resource_update": _write(write.resource_update, auth.auth_resource_update),
    "resource_patch": _write(write.resource_patch, auth.auth_resource_update),
    "resource_delete": _write(write.resource_delete, auth.auth_resource_update),
    "organization_create": _write(write.organization_create, auth.auth_sysadmin),
    "organization_update": _write(write.organization_update, auth.auth_organization_update),
    "group_create": _write(write.group_create, auth.auth_sysadmin),
    "member_create": _write(write.member_create, auth.auth_member_create),
    "organization_member_create": _write(
        write.organization_member_create, auth.auth_organization_member_create
    ),
    # DataStore
    "datastore_create": Action(
        datastore.datastore_create,
        datastore.SCHEMAS["datastore_create"],
        datastore.auth_datastore_create,
        read_only=False,
    ),
    "datastore_search": Action(
        datastore.datastore_search,
        datastore.SCHEMAS["datastore_search"],
        auth.auth_resource_show,
        read_only=True,
    ),
}

__all__ = ["ACTIONS", "Action", "Context"]
