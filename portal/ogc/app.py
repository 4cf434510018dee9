"""pygeoapi mounted at ``/ogc`` in the one app, its configuration following the catalog.

pygeoapi's own Starlette module reads one config file at import time; here pygeoapi's
framework-independent core (``pygeoapi.api``: functions returning ``(headers, status,
content)``) is driven by a thin adapter instead, with an ``API`` object built from the config
that ``portal.ogc.config`` generates. That object is cached under the catalog snapshot's stamp
and the public root URL (links in pygeoapi documents are absolute), so a new layer version is
served as soon as the catalog view sees it, without a restart.

Two request adjustments make pygeoapi's parsing fit our data: CQL2 text names made of
non-ASCII letters (our properties are Chinese, which pygeofilter's grammar does not accept
bare) are double-quoted before parsing, and ``filter-lang=cql2-json`` in a GET query string is
accepted (pygeoapi only reads CQL2 JSON from a POST body).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path

import pygeoapi.api as core_api
import pygeoapi.api.coverages as coverages_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.maps as maps_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
import pygeoapi.crs as pygeoapi_crs
import pyproj
from fastapi import FastAPI
from pygeoapi.api import API, APIRequest, apply_gzip
from pygeoapi.crs import get_crs
from pygeoapi.openapi import get_oas
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from catalog.view import CatalogView
from portal.ogc.config import TEMPLATE_PATH, Site, build_config, load_template
from portal.ogc.processes.registry import add_input_schemas

#: Where pygeoapi lives in the one app.
MOUNT = "/ogc"

STATIC_DIR = Path(core_api.__file__).resolve().parents[1] / "static"

#: How many (catalog stamp, public root) API objects are kept (one per host name in use).
API_CACHE_SIZE = 8


class _ClientErrorFilter(logging.Filter):
    """Keep pygeoapi's error records (with tracebacks) for 5xx answers only.

    pygeoapi logs every exception report at ERROR, 4xx included; a bad filter from a client is
    not a server error. The answer's status is read from ``API.get_exception``'s frame.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName != "get_exception":
            return True
        frame = sys._getframe()
        while frame is not None:
            if frame.f_code.co_name == "get_exception" and "status" in frame.f_locals:
                return int(frame.f_locals["status"]) >= HTTPStatus.INTERNAL_SERVER_ERROR
            frame = frame.f_back
        return True


logging.getLogger("pygeoapi.api").addFilter(_ClientErrorFilter())
# It logs rejected filters at ERROR before answering 400 through get_exception.
logging.getLogger("pygeoapi.api.itemtypes").setLevel(logging.CRITICAL)


@lru_cache(maxsize=64)
def _bbox_transformer(from_crs: str, to_crs: str) -> tuple[pyproj.Transformer | None, bool]:
    source, target = get_crs(from_crs), get_crs(to_crs)
    if source == target:
        return None, False
    return pyproj.Transformer.from_crs(source, target), target.to_epsg() == 3857


def transform_bbox(bbox: list, from_crs: str, to_crs: str, always_xy: bool = False) -> list:
    """``pygeoapi.crs.transform_bbox`` with the CRS lookups cached (same results).

    pygeoapi builds two CRSs, identifies one against the whole EPSG database and builds a
    transformer for every bbox request, even from CRS84 to CRS84: about 0.1 s each time. It is
    installed as the name ``pygeoapi.api.itemtypes`` calls.
    """
    if always_xy or not isinstance(from_crs, str) or not isinstance(to_crs, str):
        return pygeoapi_crs.transform_bbox(bbox, from_crs, to_crs, always_xy)
    transformer, to_web_mercator = _bbox_transformer(from_crs, to_crs)
    if transformer is None:
        return list(bbox)
    if to_web_mercator:
        bbox = [bbox[0], max(-85.0511, bbox[1]), bbox[2], min(85.0511, bbox[3])]
    n = len(bbox) // 2
    return list(transformer.transform(*bbox[:n]) + transformer.transform(*bbox[n:]))


itemtypes_api.transform_bbox = transform_bbox


Answer = tuple[dict, int, str | bytes]


class DocumentCache:
    """Metadata documents one API object answered (dropped with it when the catalog changes).

    Bounded by entries and by bytes: a query string makes a new entry, so clients varying it
    cannot fill the memory.

    Args:
        size: entries kept (least recently used dropped first).
        max_bytes: the contents kept add up to at most this.
    """

    def __init__(self, size: int = 512, max_bytes: int = 64 * 2**20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, Answer] = OrderedDict()

    def get(self, key: tuple) -> Answer | None:
        """The cached answer for ``key``, if any."""
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer

    def put(self, key: tuple, answer: Answer) -> None:
        """Keep ``answer`` under ``key`` (not when it alone is over the byte budget)."""
        size = len(answer[2])
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old[2])
            self._items[key] = answer
            self._bytes += size
            while len(self._items) > self.size or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped[2])


@dataclass(frozen=True)
class Served:
    """The pygeoapi API object of one catalog stamp and public root, with its documents."""

    api: API
    documents: DocumentCache


class OgcService:
    """pygeoapi ``API`` objects for the current catalog snapshot, built once per stamp.

    Args:
        view: the app's catalog view.
        home: the data home.
        template: the pygeoapi-config.yml template.
    """

    def __init__(self, view: CatalogView, home: Path, template: Path = TEMPLATE_PATH) -> None:
        self.view = view
        self.home = home
        self.template = template
        self._lock = threading.Lock()
        self._apis: OrderedDict[tuple[str, str], Served] = OrderedDict()
        self._openapi_lock = threading.Lock()

    def config(self, root: str) -> dict:
        """The running configuration for the current snapshot, served at ``root``."""
        snapshot = self.view.snapshot()
        return build_config(snapshot, Site(root, self.home), load_template(self.template))

    def api(self, root: str) -> Served:
        """The API object for the current snapshot at public root URL ``root`` (cached)."""
        snapshot = self.view.snapshot()
        key = (snapshot.stamp, root)
        with self._lock:
            served = self._apis.get(key)
            if served is not None:
                self._apis.move_to_end(key)
                return served
            config = build_config(snapshot, Site(root, self.home), load_template(self.template))
            api = API(config, {})
            served = self._apis[key] = Served(api, DocumentCache())
            while len(self._apis) > API_CACHE_SIZE:
                self._apis.popitem(last=False)
        # The OpenAPI document describes every collection (about 2 s for 574 layers): build it
        # now, beside the requests, so that /ogc/openapi rarely waits for it.
        threading.Thread(target=self.openapi, args=(api,), name="ogc-openapi", daemon=True).start()
        return served

    def openapi(self, api: API) -> None:
        """Fill ``api.openapi`` (built in the background when the API object is made)."""
        if api.openapi:
            return
        with self._openapi_lock:
            if not api.openapi:
                oas = get_oas(api.config, fail_on_invalid_collection=False)
                api.openapi = add_input_schemas(oas, api.config)


# -- request adjustments --------------------------------------------------------------------------

_CQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\W\d][\w.:]*|.", re.S)


def quote_identifiers(text: str) -> str:
    """Double-quote bare CQL2 property names that pygeofilter's grammar cannot read.

    Names containing non-ASCII letters (``名稱``) and one-letter names are quoted; string
    literals, quoted names and function names (followed by ``(``) are left alone.
    """
    out = []
    for match in _CQL_TOKEN.finditer(text):
        token = match.group(0)
        bare = token[0] not in "'\"" and (token[0].isalpha() or token[0] == "_")
        if bare and (not token.isascii() or len(token) == 1):
            following = text[match.end() :].lstrip()
            if not following.startswith("("):
                token = '"' + token.replace('"', '""') + '"'
        out.append(token)
    return "".join(out)


def _adjust(api_request: APIRequest) -> None:
    """Apply the CQL2 adjustments described in the module docstring to a parsed request."""
    params = api_request.params
    text = params.get("filter")
    if text is None:
        return
    args = dict(params)
    if (params.get("filter-lang") or "").lower() == "cql2-json":
        api_request._data = text.encode("utf-8")
        del args["filter"]
    else:
        args["filter"] = quote_identifiers(text)
    api_request._args = args


# -- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One pygeoapi operation: path, core function, path parameters passed in order."""

    path: str
    func: Callable
    params: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("GET",)
    skip_valid_check: bool = False
    openapi: bool = False
    cached: bool = False


_C = "/collections/{collection_id}"
_T = _C + "/tiles/{tileMatrixSetId}"

#: The operations served under /ogc (Features now; Tiles, Coverages, Maps and Processes
#: endpoints route to pygeoapi already and answer once their providers are configured).
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/", core_api.landing_page, cached=True),
    Endpoint("/openapi", core_api.openapi_, openapi=True, cached=True),
    Endpoint("/conformance", core_api.conformance, cached=True),
    Endpoint("/TileMatrixSets", tiles_api.tilematrixsets),
    Endpoint("/TileMatrixSets/{tileMatrixSetId}", tiles_api.tilematrixset, ("tileMatrixSetId",)),
    Endpoint("/collections", core_api.describe_collections, cached=True),
    Endpoint(_C, core_api.describe_collections, ("collection_id",), cached=True),
    Endpoint(_C + "/schema", core_api.get_collection_schema, ("collection_id",), cached=True),
    Endpoint(_C + "/queryables", itemtypes_api.get_collection_queryables, ("collection_id",)),
    Endpoint(
        _C + "/items",
        itemtypes_api.get_collection_items,
        ("collection_id",),
        methods=("GET", "POST"),
        skip_valid_check=True,
    ),
    Endpoint(
        _C + "/items/{item_id}", itemtypes_api.get_collection_item, ("collection_id", "item_id")
    ),
    Endpoint(_C + "/tiles", tiles_api.get_collection_tiles, ("collection_id",)),
    Endpoint(
        _T,
        tiles_api.get_collection_tiles_metadata,
        ("collection_id", "tileMatrixSetId"),
        skip_valid_check=True,
    ),
    Endpoint(
        _T + "/metadata",
        tiles_api.get_collection_tiles_metadata,
        ("collection_id", "tileMatrixSetId"),
        skip_valid_check=True,
    ),
    Endpoint(
        _T + "/{tileMatrix}/{tileRow}/{tileCol}",
        tiles_api.get_collection_tiles_data,
        ("collection_id", "tileMatrixSetId", "tileMatrix", "tileRow", "tileCol"),
        skip_valid_check=True,
    ),
    Endpoint(
        _C + "/coverage",
        coverages_api.get_collection_coverage,
        ("collection_id",),
        skip_valid_check=True,
    ),
    Endpoint(_C + "/map", maps_api.get_collection_map, ("collection_id",)),
    Endpoint("/processes", processes_api.describe_processes),
    Endpoint("/processes/{process_id}", processes_api.describe_processes, ("process_id",)),
    Endpoint(
        "/processes/{process_id}/execution",
        processes_api.execute_process,
        ("process_id",),
        methods=("POST",),
    ),
    Endpoint("/jobs", processes_api.get_jobs),
    Endpoint("/jobs/{job_id}", processes_api.get_jobs, ("job_id",)),
    Endpoint("/jobs/{job_id}", processes_api.delete_job, ("job_id",), methods=("DELETE",)),
    Endpoint("/jobs/{job_id}/results", processes_api.get_job_result, ("job_id",)),
)


def _site_root(request: Request) -> str:
    """The public root URL of the whole app (pygeoapi's links are absolute)."""
    root_path = request.scope.get("root_path", "")
    if root_path.endswith(MOUNT):
        root_path = root_path[: -len(MOUNT)]
    return f"{request.url.scheme}://{request.url.netloc}{root_path}"


def _response(headers: dict, status: int, content: str | bytes) -> Response:
    if headers.get("Content-Type") == "text/html":
        response: Response = HTMLResponse(content=content, status_code=status)
    else:
        response = Response(content, status_code=status)
    response.headers.update(headers)
    return response


def _call(loop: asyncio.AbstractEventLoop, func: Callable, *args: object) -> tuple:
    """Run a pygeoapi core function in a worker thread (some expect an event loop set)."""
    asyncio.set_event_loop(loop)
    return func(*args)


def _cache_key(request: Request) -> tuple:
    """What a cached document depends on besides the API object: path, query, negotiation."""
    h = request.headers
    query = tuple(sorted(request.query_params.multi_items()))
    negotiated = (h.get("accept", ""), h.get("accept-language", ""), h.get("accept-encoding", ""))
    return (request.url.path, query, *negotiated)


async def _answer(api: API, endpoint: Endpoint, request: Request) -> tuple[dict, int, str]:
    """The (headers, status, content) pygeoapi answers to ``request``, before gzip."""
    api_request = await APIRequest.from_starlette(request, api.locales)
    _adjust(api_request)
    if not endpoint.skip_valid_check and not api_request.is_valid():
        return api.get_format_exception(api_request)
    args = [request.path_params[p] for p in endpoint.params]
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _call, loop, endpoint.func, api, api_request, *args)


def _handler(service: OgcService, endpoint: Endpoint) -> Callable:
    async def handle(request: Request) -> Response:
        served = service.api(_site_root(request))
        api = served.api
        if endpoint.openapi:
            await asyncio.get_running_loop().run_in_executor(None, service.openapi, api)
        cache = served.documents if endpoint.cached else None
        key = _cache_key(request)
        answer = cache.get(key) if cache is not None else None
        if answer is None:
            headers, status, content = await _answer(api, endpoint, request)
            headers = dict(headers)
            if status != HTTPStatus.NO_CONTENT:
                content = apply_gzip(headers, content)  # cached compressed: 3 MB takes 0.1 s
            answer = (headers, status, content)
            if cache is not None and status == HTTPStatus.OK:
                cache.put(key, answer)
        headers, status, content = dict(answer[0]), answer[1], answer[2]
        if endpoint.func is processes_api.execute_process and (
            headers.get("Preference-Applied") != "respond-async"
        ):
            headers.pop("Location", None)  # a synchronous call leaves no job to point at
        return _response(headers, status, content)

    handle.__doc__ = f"pygeoapi: {endpoint.func.__name__}."
    return handle


def ogc_app(service: OgcService) -> Starlette:
    """The ASGI sub-application served under ``/ogc``."""
    routes = [Route(e.path, _handler(service, e), methods=list(e.methods)) for e in ENDPOINTS]
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="ogc-static"))
    return Starlette(routes=routes)


def mount(app: FastAPI) -> OgcService:
    """Mount pygeoapi at ``/ogc`` on ``app`` (uses ``app.state.view`` and ``.settings.home``).

    Returns:
        The service (also at ``app.state.ogc``), whose config follows the catalog.
    """
    service = OgcService(app.state.view, Path(app.state.settings.home))
    app.state.ogc = service
    landing = _handler(service, ENDPOINTS[0])

    async def landing_page(request: Request) -> Response:
        """OGC API landing page at ``/ogc`` (no trailing slash)."""
        return await landing(request)

    app.add_route(MOUNT, landing_page, methods=["GET"], include_in_schema=False)
    app.mount(MOUNT, ogc_app(service), name="ogc")
    return service
