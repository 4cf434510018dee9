"""Staff sign-in for the web portal: a signed session cookie and CSRF tokens.

The session cookie holds the user's id, a random nonce and when it was issued, signed with
HMAC-SHA256 under a secret kept in ``<home>/secret.key`` (32 random bytes, made on first use,
mode 0600). It is HttpOnly, SameSite=Lax, and Secure when the request came over https.
Forms and JSON writes carry a CSRF token derived from the session nonce (before sign-in: from
a nonce in a separate cookie), checked with a constant-time comparison.

``current_user(request)`` is what pages call to know who is signed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from portal.ckan.errors import NotFound
from portal.ckan.model import User
from portal.web import i18n

router = APIRouter()

SESSION_COOKIE = "geoportal_session"
CSRF_COOKIE = "geoportal_csrf"
CSRF_HEADER = "x-csrf-token"
#: A session lasts this long (seconds) after sign-in.
MAX_AGE = 8 * 3600
#: Roles in an organization that may compose its maps.
COMPOSER_ROLES = ("editor", "admin")
_SECRET_LOCK = threading.Lock()


@dataclass(frozen=True)
class Session:
    """A signed-in session: whose it is, its nonce (CSRF tokens derive from it), when made."""

    user_id: str
    nonce: str
    issued: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_secret(home: Path) -> bytes:
    """The signing secret of a data home, made on first use (``secret.key``, mode 0600).

    Args:
        home: the data home.

    Returns:
        32 secret bytes.
    """
    path = home / "secret.key"
    with _SECRET_LOCK:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise RuntimeError(f"{path} holds no usable secret: delete it to make a new one")
    return bytes.fromhex(text) if len(text) == 64 else text.encode()


def _secret(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "session_secret", None) is None:
        state.session_secret = read_secret(Path(state.settings.home))
    return state.session_secret


def _mac(secret: bytes, text: str) -> str:
    return _b64(hmac.new(secret, text.encode(), hashlib.sha256).digest())


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of a client-sent value and an expected (ASCII) one.

    Compared as UTF-8 bytes: ``hmac.compare_digest`` raises on non-ASCII ``str``, which would
    turn a forged token or cookie into a server error instead of a refusal.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def sign(secret: bytes, payload: dict) -> str:
    """``payload`` as a signed cookie value (base64 JSON, a dot, base64 HMAC-SHA256)."""
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def unsign(secret: bytes, value: str) -> dict | None:
    """The payload of a signed value, or None when it is malformed or the signature is wrong."""
    body, _, mac = value.partition(".")
    if not body or not _same(mac, _mac(secret, body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def session(request: Request) -> Session | None:
    """The request's valid, unexpired session, or None."""
    raw = request.cookies.get(SESSION_COOKIE)
    payload = unsign(_secret(request), raw) if raw else None
    if payload is None:
        return None
    try:
        found = Session(str(payload["u"]), str(payload["n"]), int(payload["t"]))
    except (KeyError, TypeError, ValueError):
        return None
    return found if 0 <= time.time() - found.issued < MAX_AGE else None


def _portal(request: Request):  # -> portal.ckan.api.Portal (imported lazily)
    from portal.ckan.api import portal_of

    return portal_of(request.app)


def current_user(request: Request) -> User | None:
    """The signed-in, active user of this request, or None (cached on the request)."""
    if hasattr(request.state, "user"):
        return request.state.user
    found = session(request)
    user = None
    if found is not None:
        try:
            user = _portal(request).store.user(found.user_id)
        except NotFound:
            user = None
        if user is not None and user.state != "active":
            user = None
    request.state.user = user
    return user


def composer_organizations(request: Request, user: User | None) -> list[str]:
    """Names of the organizations whose maps ``user`` may compose (all, for a sysadmin).

    Args:
        request: the request (for the portal store).
        user: the signed-in user, or None.

    Returns:
        Organization names, sorted; empty for None and for users with no editor/admin role.
    """
    if user is None:
        return []
    portal = _portal(request)
    if user.sysadmin:
        return sorted(portal.organizations())
    held = portal.store.memberships(user=user.id)
    return sorted({m.organization for m in held if m.role in COMPOSER_ROLES})


def csrf_token(request: Request) -> str:
    """The CSRF token forms and JSON writes of this request's client must send back.

    Signed in: derived from the session's nonce. Otherwise from the ``geoportal_csrf`` cookie's
    nonce; when the client has none yet a new one is made and left in
    ``request.state.new_csrf`` for :func:`finish` to set.
    """
    found = session(request)
    if found is not None:
        nonce = found.nonce
    else:
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if len(nonce) < 16:
            nonce = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(16)
            request.state.new_csrf = nonce
    return _mac(_secret(request), f"csrf|{nonce}")


def csrf_ok(request: Request, token: str | None) -> bool:
    """Whether ``token`` is this client's CSRF token (constant-time comparison)."""
    if not token:
        return False
    found = session(request)
    nonce = found.nonce if found is not None else request.cookies.get(CSRF_COOKIE) or ""
    if not nonce:
        return False
    return _same(token, _mac(_secret(request), f"csrf|{nonce}"))


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def finish(request: Request, response: Response) -> Response:
    """Set the CSRF nonce cookie on ``response`` when :func:`csrf_token` made a new one."""
    nonce = getattr(request.state, "new_csrf", None)
    if nonce:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=_secure(request), path="/"
        )
    return response


def _local(path: str | None) -> str:
    """``path`` when it is a path on this site, else ``/`` (no open redirects).

    Refused: other hosts (``//x``, a backslash), and control characters and their %-escapes,
    which browsers strip from URLs (``/<TAB>/x`` is read as ``//x``).
    """
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in unquote(path)):
        return "/"
    return path


def _render(request: Request, status: int, lang: str, **context: object) -> HTMLResponse:
    from portal.web.embed import render

    return render(request, "login.html", status, lang, **context)


def _language(request: Request) -> str:
    return i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


@router.get("/user/login", response_class=HTMLResponse)
def login_form(request: Request, came_from: str = "/") -> Response:
    """The staff sign-in form (name, password)."""
    lang = _language(request)
    response = _render(
        request, 200, lang, came_from=_local(came_from), error="", name="", csrf=csrf_token(request)
    )
    return finish(request, response)


@router.post("/user/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Sign in: check the CSRF token and the password, set the session cookie, go on.

    A wrong name or password re-shows the form with a message (HTTP 401); a missing or wrong
    CSRF token gets HTTP 400.
    """
    lang = _language(request)
    msgs = i18n.messages(lang)
    form = await request.form()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    came_from = _local(str(form.get("came_from", "/")))
    if not csrf_ok(request, str(form.get("csrf_token") or form.get("csrf") or "")):
        response = _render(
            request,
            400,
            lang,
            came_from=came_from,
            error=msgs["login_csrf"],
            name=name,
            csrf=csrf_token(request),
        )
        return finish(request, response)
    user = _portal(request).store.check_password(name, password) if name and password else None
    if user is None:
        response = _render(
            request,
            401,
            lang,
            came_from=came_from,
            error=msgs["login_failed"],
            name=name,
            csrf=csrf_token(request),
        )
        return finish(request, response)
    value = sign(
        _secret(request), {"u": user.id, "n": secrets.token_urlsafe(16), "t": int(time.time())}
    )
    response = RedirectResponse(came_from, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/user/logout")
async def logout(request: Request) -> Response:
    """Sign out (form with the CSRF token): the session cookie is removed."""
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf_token") or form.get("csrf") or "")):
        return Response("bad or missing CSRF token", status_code=400, media_type="text/plain")
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_url(request: Request) -> str:
    """The sign-in page, returning to this request's path afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/user/login?came_from={quote(here, safe='/')}"
