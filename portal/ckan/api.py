"""CKAN's Action API over HTTP: ``/api/3/action/{name}`` and ``/api/action/{name}``.

This is the one place where portal errors become HTTP responses, exactly as CKAN 2.10's
``ckan/views/api.py`` answers:

- success: ``200 {"help": ".../api/3/action/help_show?name=<action>", "success": true,
  "result": ...}``;
- ``403 {"help", "success": false, "error": {"__type": "Authorization Error", "message":
  "Access denied: ..."}}``, ``404`` "Not Found Error" ("Not found: ..."), ``409`` "Validation
  Error" (field → messages beside ``__type``), ``400`` "Search Query Error";
- a malformed request (unknown action, bad JSON, a write called with GET) is ``400`` with a bare
  JSON string, e.g. ``"Bad request - Action name not known: xxx"``;
- anything unexpected is ``500`` "Internal Server Error" (logged with its traceback).

GET takes the query parameters (only for side-effect-free actions); POST takes a JSON body, a
form (urlencoded) or a multipart form whose file field ``upload`` is a resource's file.
``/api`` and ``/api/{1,2,3}`` answer ``{"version": N}`` as CKAN does.

:class:`Portal` holds, per process, the store and what is built from it (organizations, groups,
datasets and the search index, rebuilt when the store's revision changes) and keeps the layer
datasets in line with the catalog view (synced whenever the view's stamp changes).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from catalog.model import LayerVersion
from catalog.view import CatalogView, Snapshot
from portal.ckan.actions import ACTIONS
from portal.ckan.actions.registry import Context, Upload, validate
from portal.ckan.auth import caller_of
from portal.ckan.errors import (
    BadRequest,
    CkanError,
    NotAuthorized,
    NotFound,
    SearchQueryError,
    ValidationError,
)
from portal.ckan.model import Dataset, Group, Organization
from portal.ckan.store import PortalStore

log = logging.getLogger("portal.ckan")

router = APIRouter()

#: Content type of every Action API answer (CKAN's).
JSON_TYPE = "application/json;charset=utf-8"
#: The largest request body the Action API reads, an uploaded file included (2 GiB): larger
#: ones are refused (413) before anything is read or spooled to disk.
MAX_BODY = 2 << 30
#: The largest JSON or form body read into memory (32 MiB): checked on the declared length
#: and again while reading, so a chunked body without a length cannot grow past it either.
MAX_JSON = 32 << 20


class PayloadTooLarge(CkanError):
    """The request body is larger than :data:`MAX_BODY`."""

    type = "Payload Too Large"
    status = 413


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"請求內容 {size} 位元組超過上限 {limit} 位元組。"
        f"The request body ({size} bytes) is over the limit of {limit} bytes."
    )


def _check_length(request: Request, limit: int = MAX_BODY) -> None:
    """Refuse a body whose declared length is over ``limit`` (or not a number)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise BadRequest(f"Content-Length {declared!r} is not a number") from None
    if size > limit:
        raise _too_large(size, limit)


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it grows past ``limit``."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class _Built:
    """What is built from one revision of the store."""

    marker: int
    datasets: list[Dataset]  # all, deleted included
    organizations: dict[str, Organization]
    groups: dict[str, Group]
    index: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Portal:
    """The portal of one process: the store, cached views of it and the catalog sync.

    Args:
        store: the portal store.
        home: the data home (uploads live under it).
        view: the catalog view whose layers become datasets, or None.
    """

    def __init__(self, store: PortalStore, home: Path, view: CatalogView | None) -> None:
        self.store = store
        self.home = home
        self.view = view
        self._snapshot: Snapshot | None = None
        self._sync_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._built: _Built | None = None
        self._stale = True

    def sync(self) -> None:
        """Bring the layer datasets in line with the catalog when the view's stamp changed."""
        if self.view is None:
            return
        snapshot = self.view.snapshot()
        if self._snapshot is not None and snapshot.stamp == self._snapshot.stamp:
            return
        with self._sync_lock:
            if self._snapshot is None or snapshot.stamp != self._snapshot.stamp:
                changed = self.store.sync_layers(snapshot)
                if changed:
                    log.info("portal: %d layer datasets brought in line with the catalog", changed)
                self._snapshot = snapshot
                self._stale = True

    def begin(self) -> None:
        """Before answering a request: sync with the catalog, and look for store changes."""
        self.sync()
        self._stale = True

    def invalidate(self) -> None:
        """After a write: what is cached is re-checked against the store on next use."""
        self._stale = True

    def _current(self) -> _Built:
        built = self._built
        if built is not None and not self._stale:
            return built
        marker = self.store.change_marker()
        if built is not None and built.marker == marker:
            self._stale = False
            return built
        with self._build_lock:
            built = self._built
            if built is None or built.marker != marker:
                built = _Built(
                    marker=marker,
                    datasets=self.store.datasets(include_private=True, include_deleted=True),
                    organizations={o.name: o for o in self.store.organizations()},
                    groups={g.name: g for g in self.store.groups()},
                )
                self._built = built
            self._stale = False
            return built

    def datasets(self) -> list[Dataset]:
        """Active datasets (private ones included), in name order."""
        return [d for d in self._current().datasets if d.state == "active"]

    def organizations(self) -> dict[str, Organization]:
        """Organizations by name."""
        return self._current().organizations

    def groups(self) -> dict[str, Group]:
        """Groups by name."""
        return self._current().groups

    def index(self) -> Any:
        """The search index of the current datasets (built on first use per revision)."""
        from portal.ckan.search import SearchIndex

        built = self._current()
        if built.index is None:
            with built.lock:
                if built.index is None:
                    built.index = SearchIndex(built.datasets, built.organizations, built.groups)
        return built.index

    def layer_version(self, layer_id: str) -> LayerVersion | None:
        """The current version of a catalog layer, or None."""
        if self.view is None:
            return None
        return self.view.snapshot().versions.get(layer_id)


_PORTAL_LOCK = threading.Lock()


def portal_of(app: FastAPI) -> Portal:
    """The app's portal, made on first use (store opened, layer datasets synced).

    Args:
        app: the geoportal app (``app.state.settings`` and ``app.state.view`` set).

    Returns:
        The portal.
    """
    portal = getattr(app.state, "portal", None)
    if portal is not None:
        return portal
    with _PORTAL_LOCK:
        portal = getattr(app.state, "portal", None)
        if portal is None:
            settings = app.state.settings
            store = PortalStore.open(settings.home, settings.catalog_url)
            portal = Portal(store, settings.home, getattr(app.state, "view", None))
            portal.sync()
            app.state.portal = portal
    return portal


# -- the envelope ------------------------------------------------------------------------------


def _json(status: int, body: Any) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(", ", ": "), default=str)
    return Response(text, status_code=status, media_type=JSON_TYPE)


def bad_request(message: str = "") -> Response:
    """CKAN's 400 for a malformed request: a bare JSON string ``"Bad request - ..."``."""
    return _json(400, f"Bad request - {message}" if message else "Bad request")


def _error_body(exc: CkanError) -> dict:
    if isinstance(exc, NotAuthorized):
        message = "Access denied" + (f": {exc.message}" if exc.message else "")
        return {"__type": exc.type, "message": message}
    if isinstance(exc, NotFound):
        detail = exc.message if exc.message and exc.message != "Not found" else ""
        return {"__type": exc.type, "message": "Not found" + (f": {detail}" if detail else "")}
    if isinstance(exc, SearchQueryError):
        return {"__type": exc.type, "message": f"Search Query is invalid: {exc.message!r}"}
    if isinstance(exc, ValidationError | PayloadTooLarge):
        return exc.error_dict()
    return {"__type": "Internal Server Error", "message": "Internal Server Error"}


def error_response(help_url: str, exc: CkanError) -> Response:
    """The response for an error an action raised (the one exception → HTTP table).

    Args:
        help_url: the ``help`` member.
        exc: the error.

    Returns:
        The JSON response with CKAN's status and envelope.
    """
    if isinstance(exc, BadRequest) and not isinstance(exc, SearchQueryError):
        return bad_request(exc.message)
    known = NotAuthorized | NotFound | ValidationError | PayloadTooLarge
    status = exc.status if isinstance(exc, known) else 500
    if isinstance(exc, SearchQueryError):
        status = 400
    if status == 500:
        log.error("portal action failed: %s", exc.message, exc_info=exc.__cause__ or exc)
    return _json(status, {"help": help_url, "error": _error_body(exc), "success": False})


# -- request data ------------------------------------------------------------------------------


def _mixed(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """CKAN's ``mixed``: a key given once is a value, given more often a list."""
    out: dict[str, list[Any]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


async def _form_data(request: Request) -> tuple[Any, dict[str, Upload]]:
    form = await request.form()
    files = {
        k: Upload(v.filename or "upload", v.file)
        for k, v in form.multi_items()
        if isinstance(v, UploadFile)
    }
    values = [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
    if len(values) == 1 and values[0][1] in ("1", "") and not files:
        return _decode(values[0][0]), files  # an old client's JSON-as-form-key
    return _mixed(values), files


def _decode(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRequest(
            f"JSON Error: Error decoding JSON data. Error: {exc!r} "
            "JSON data extracted from the request: {}"
        ) from None


async def request_data(request: Request, read_only: bool) -> tuple[dict, dict[str, Upload]]:
    """The action's data (and uploaded files) from a request, as CKAN reads it.

    Args:
        request: the request.
        read_only: the action is side-effect free (GET allowed).

    Returns:
        (data, files).

    Raises:
        BadRequest: GET for a write, undecodable JSON, or data that is not an object.
        PayloadTooLarge: the body is over :data:`MAX_BODY` (multipart) or :data:`MAX_JSON`.
    """
    files: dict[str, Upload] = {}
    if request.method == "GET":
        if not read_only:
            raise BadRequest("JSON Error: Invalid request. Please use POST method for your request")
        data: Any = _mixed(list(request.query_params.multi_items()))
    else:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":  # files are spooled to disk, not held in memory
            _check_length(request, MAX_BODY)
            data, files = await _form_data(request)
        elif ctype == "application/x-www-form-urlencoded":
            _check_length(request, MAX_JSON)
            data, files = await _form_data(request)
        else:
            _check_length(request, MAX_JSON)
            body = await _read_capped(request, MAX_JSON)
            data = _decode(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise BadRequest(
            f"JSON Error: Request data JSON decoded to {data!r} but it needs to be a dictionary."
        )
    data.pop("callback", None)
    return data, files


# -- routes ------------------------------------------------------------------------------------


def _run(portal: Portal, request: Request, name: str, data: dict, files: dict) -> Any:
    """Identify the caller, validate, authorize and run an action (in a worker thread)."""
    action = ACTIONS[name]
    portal.begin()
    ctx = Context(
        portal=portal,
        caller=caller_of(portal.store, request.headers),
        base_url=str(request.base_url).rstrip("/"),
        action=name,
        files=files,
    )
    data = validate(data, action.schema)
    action.auth(ctx, data)
    return action.function(ctx, data)


async def _action(request: Request, name: str) -> Response:
    if name not in ACTIONS:
        return bad_request(f"Action name not known: {name}")
    base = str(request.base_url).rstrip("/")
    help_url = f"{base}/api/3/action/help_show?name={name}"
    try:
        data, files = await request_data(request, ACTIONS[name].read_only)
        portal = portal_of(request.app)
        result = await run_in_threadpool(_run, portal, request, name, data, files)
    except CkanError as exc:
        return error_response(help_url, exc)
    except Exception as exc:  # CKAN answers anything else as a 500 envelope
        error = CkanError(f"{name}: {exc!r}")
        error.__cause__ = exc
        return error_response(help_url, error)
    return _json(200, {"help": help_url, "success": True, "result": result})


@router.api_route("/api/action/{name}", methods=["GET", "POST"], include_in_schema=False)
async def action(request: Request, name: str) -> Response:
    """CKAN Action API (version 3, unversioned path): run action ``name``."""
    return await _action(request, name)


@router.api_route("/api/{ver:int}/action/{name}", methods=["GET", "POST"], include_in_schema=False)
async def action_versioned(request: Request, ver: int, name: str) -> Response:
    """CKAN Action API at ``/api/3/action/{name}`` (3 is the only action API version)."""
    if ver != 3:
        return JSONResponse({"detail": f"no action API version {ver}; use /api/3"}, 404)
    return await _action(request, name)


@router.get("/api", include_in_schema=False)
@router.get("/api/", include_in_schema=False)
def api_root() -> Response:
    """CKAN's API root: ``{"version": 1}`` (as CKAN answers the unversioned root)."""
    return _json(200, {"version": 1})


@router.get("/api/{ver:int}", include_in_schema=False)
def api_version(ver: int) -> Response:
    """The API version root: ``{"version": N}`` for N = 1, 2, 3."""
    if not 1 <= ver <= 3:
        return JSONResponse({"detail": f"no API version {ver}"}, 404)
    return _json(200, {"version": ver})


def _upload_path(portal: Portal, request: Request, dataset_id: str, resource_id: str) -> Path:
    """The stored file of an uploaded resource the caller may read (raises CkanError)."""
    res = portal.store.resource(resource_id)
    ds = portal.store.dataset(dataset_id)
    if res.package_id != ds.id or res.kind != "upload":
        raise NotFound("Resource was not found.")
    if not caller_of(portal.store, request.headers).can_read(ds):
        raise NotAuthorized(f"not authorized to read resource {res.id}")
    root = (portal.home / "uploads").resolve()
    path = (root / res.id / unquote(res.url.rsplit("/", 1)[-1])).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("the uploaded file is missing")
    return path


@router.get("/dataset/{dataset_id}/resource/{resource_id}/download", include_in_schema=False)
@router.get(
    "/dataset/{dataset_id}/resource/{resource_id}/download/{filename}", include_in_schema=False
)
async def download_upload(
    request: Request, dataset_id: str, resource_id: str, filename: str | None = None
) -> Response:
    """An uploaded resource's file (CKAN's download URL of uploads)."""
    portal = portal_of(request.app)
    try:
        path = await run_in_threadpool(_upload_path, portal, request, dataset_id, resource_id)
    except CkanError as exc:
        status = 403 if isinstance(exc, NotAuthorized) else 404
        return JSONResponse({"detail": exc.message or "Not found"}, status)
    if filename is not None and filename != path.name:
        return JSONResponse({"detail": f"resource {resource_id} has no file {filename!r}"}, 404)
    return FileResponse(path, filename=path.name)
