"""`geoportal user …`: portal users, their roles in organizations, and API tokens.

API tokens are how scripts and ``ckanapi`` write to the portal: ``geoportal user token NAME``
prints a new token once (only its hash is kept). Roles: member (reads the organization's
private datasets), editor (writes its datasets), admin (also manages the organization).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from geoportal.options import HomeOpt, JsonOpt, err
from geoportal.settings import load_settings

if TYPE_CHECKING:  # the portal is imported when a command runs (keeps `geoportal` quick)
    from portal.ckan.store import PortalStore

#: Roles (as portal.ckan.model.ROLES), weakest first.
ROLES = ("member", "editor", "admin")

user_app = typer.Typer(
    help="Portal users, roles and API tokens. 平臺使用者、角色與 API 金鑰。", no_args_is_help=True
)


def _store(home: Path | None) -> PortalStore:
    from portal.ckan.store import PortalStore

    settings = load_settings(home=home)
    return PortalStore.open(settings.home, settings.catalog_url)


def _fail(command: str, message: str) -> NoReturn:
    err.print(f"geoportal user {command}: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def _print(as_json: bool, summary: dict, text: str) -> None:
    print(json.dumps(summary, ensure_ascii=False) if as_json else text)


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: 2–100 of a-z, 0-9, - and _.")],
    email: Annotated[str, typer.Option("--email", help="E-mail address.")] = "",
    fullname: Annotated[str, typer.Option("--fullname", help="Full name (shown).")] = "",
    sysadmin: Annotated[bool, typer.Option("--sysadmin", help="May do everything.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input.")
    ] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a portal user (a sysadmin with --sysadmin)."""
    from portal.ckan.actions.registry import Invalid, name_validator
    from portal.ckan.errors import CkanError
    from portal.ckan.model import User

    try:
        name_validator(name)
    except Invalid as e:
        _fail("add", f"{name!r}: {e}")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        _fail("add", "--password-stdin given but standard input held no password")
    store = _store(home)
    try:
        try:
            store.user(name)
        except CkanError:
            pass
        else:
            _fail("add", f"a user named {name!r} exists already")
        user = store.put_user(
            User(
                id=str(uuid.uuid4()), name=name, fullname=fullname, email=email, sysadmin=sysadmin
            ),
            password=password,
        )
    finally:
        store.close()
    _print(
        as_json,
        {
            "command": "user add",
            "status": "ok",
            "id": user.id,
            "name": user.name,
            "sysadmin": user.sysadmin,
        },
        f"Added user {user.name}{' (sysadmin)' if user.sysadmin else ''}, id {user.id}.",
    )


@user_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    token_name: Annotated[str, typer.Option("--name", help="What to call the token.")] = "cli",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an API token for a user and print it (once: only its hash is kept)."""
    from portal.ckan.errors import CkanError

    store = _store(home)
    try:
        record, secret = store.create_token(name, token_name)
    except CkanError:
        _fail("token", f"no user named {name!r} (add one with `geoportal user add`)")
    finally:
        store.close()
    if as_json:
        print(
            json.dumps(
                {
                    "command": "user token",
                    "status": "ok",
                    "user": name,
                    "name": record.name,
                    "id": record.id,
                    "token": secret,
                }
            )
        )
    else:
        err.print(f"API token {record.name!r} for {name} (shown once; keep it safe):")
        print(secret)


@user_app.command("role")
def role(
    organization: Annotated[str, typer.Argument(metavar="ORG", help="Organization (agency) name.")],
    name: Annotated[str, typer.Argument(metavar="USER", help="The user's name.")],
    capacity: Annotated[str, typer.Argument(metavar="ROLE", help="admin, editor or member.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a role in an organization: admin, editor or member."""
    from portal.ckan.errors import CkanError
    from portal.ckan.model import Membership

    if capacity not in ROLES:
        _fail("role", f"role {capacity!r} is not one of {', '.join(ROLES)}")
    store = _store(home)
    try:
        try:
            store.organization(organization)
        except CkanError:
            _fail("role", f"no organization named {organization!r}")
        try:
            store.user(name)
        except CkanError:
            _fail("role", f"no user named {name!r}")
        m = store.put_membership(Membership(organization, name, capacity))
    finally:
        store.close()
    _print(
        as_json,
        {
            "command": "user role",
            "status": "ok",
            "organization": m.organization,
            "user": m.user,
            "role": m.role,
        },
        f"{m.user} is now {m.role} of {m.organization}.",
    )


@user_app.command("list")
def list_users(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List portal users with their roles."""
    store = _store(home)
    try:
        users = store.users()
        roles: dict[str, list[str]] = {}
        for m in store.memberships():
            roles.setdefault(m.user, []).append(f"{m.role}@{m.organization}")
    finally:
        store.close()
    rows = [
        {
            "name": u.name,
            "id": u.id,
            "email": u.email,
            "sysadmin": u.sysadmin,
            "state": u.state,
            "roles": roles.get(u.name, []),
        }
        for u in users
    ]
    if as_json:
        print(json.dumps({"command": "user list", "users": rows}, ensure_ascii=False))
        return
    if not rows:
        print("No users yet: add one with `geoportal user add NAME`.")
    for r in rows:
        flags = " sysadmin" if r["sysadmin"] else ""
        print(f"{r['name']}{flags}  {' '.join(r['roles']) or '-'}")
