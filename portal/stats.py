"""Usage statistics and ``/metrics``: page views, downloads and API calls, counted cheaply.

Counting is in two steps, so that serving a tile never waits for a database:

1. :func:`record` (and the :class:`UsageMiddleware`, which calls it for downloads and API
   calls) adds one to an in-memory counter keyed by (day, kind, dataset, organization), under
   a lock;
2. a background thread of each server process adds those counts to the catalog database's
   ``usage_counts`` table every :data:`FLUSH_SECONDS` seconds and when the server shuts down,
   with an UPSERT (``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``, on SQLite and
   PostgreSQL alike), so any number of worker processes and servers add up without losing a
   count.

Days are Taiwan days (UTC+8). Only counts are kept: no IP address, user, cookie, referrer or
user agent is stored, and nothing is sent to any third party.

The middleware classifies each answered request (status < 400) by its path:

- ``/download/{id}.{fmt}`` and an uploaded resource's ``/dataset/{id}/resource/{rid}/download``
  → a download of the dataset (a ``GET`` answered with the whole file, or with a range from
  byte 0, as :func:`portal.downloads.on_download` counts);
- ``/api/3/action/package_show`` (``id`` from the query or the JSON/form body), and
  ``resource_show`` / ``datastore_search`` / ``datastore_info`` (by resource id) → an API call
  on that dataset; other actions and ``/api`` roots → an API call on no dataset;
- ``/ogc/collections/{id}/…`` → an API call on ``id``; other ``/ogc`` paths → on none;
- ``/wms?LAYERS=a,b`` (also ``QUERY_LAYERS``, ``LAYER``) and ``/wms/{id}`` → one API call per
  layer named; ``/wmts/1.0.0/{layer}/…`` and ``/wmts?LAYER=…`` → on that layer;
  ``/tiles/{id}/…``, ``/tiles/{id}.json``, ``/tiles/{id}.pmtiles`` → on ``id``;
- the DCAT feed (``/catalog.jsonld|ttl|rdf``) → an API call on no dataset.

Page views are recorded by the pages themselves (``record(app, "view", dataset, org)``).
A use whose organization is not given is attributed when it is flushed: a catalog layer's
agency, else the owning organization of the portal dataset (by name or id; a resource id
finds its dataset).

``/metrics`` answers in the Prometheus text format: requests and their latency by route
family (tiles, wms, wmts, ogc, api, download, pages, static, dcat, other), the catalog's
layers and the portal's datasets, and the usage counts of the database. With ``geoportal
serve --workers N`` the request metrics of all workers are added up (prometheus_client's
multiprocess mode, in a folder per server under the system's temporary folder).
``/admin/stats`` is the sysadmins' page of the counts.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import URL, Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from catalog.db import create_catalog_engine
from catalog.files import process_alive
from catalog.schema import (
    USAGE_KINDS,
    agencies,
    portal_datasets,
    portal_resources,
    usage_counts,
)

__all__ = [
    "FLUSH_SECONDS",
    "KINDS",
    "TAIWAN",
    "Hit",
    "Recorder",
    "Usage",
    "UsageMiddleware",
    "family_of",
    "install",
    "record",
    "recorder_of",
    "router",
    "top_datasets",
    "usage",
    "usage_of",
]

log = logging.getLogger(__name__)

router = APIRouter()

#: The kinds of use counted.
KINDS = USAGE_KINDS

#: Seconds between two flushes of a process's counts to the database.
FLUSH_SECONDS = 5.0

#: The days of the statistics: Taiwan's (UTC+8 all year).
TAIWAN = timezone(timedelta(hours=8), "Asia/Taipei")

#: Days :attr:`Usage.last_30_days` covers (today included).
RECENT_DAYS = 30

#: Bytes of a POSTed Action API body looked at for a dataset id (a larger body is not).
BODY_LIMIT = 64 * 1024

#: Actions whose data names a dataset (``id``) or a resource (``id`` / ``resource_id``).
DATASET_ACTIONS = frozenset({"package_show"})
RESOURCE_ACTIONS = frozenset({"resource_show", "datastore_search", "datastore_info"})

#: How a resource id is marked until the flush finds its dataset.
RESOURCE_REF = "resource:"

#: Content-Type of ``/metrics``: the classic text format every Prometheus version reads.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Latency histogram buckets (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_API_ROOTS = frozenset({"api", "catalog.jsonld", "catalog.ttl", "catalog.rdf"})


_EPOCH = date(1970, 1, 1).toordinal()
_OFFSET = int(TAIWAN.utcoffset(None).total_seconds())
_today: tuple[int, date] = (-1, date.min)


def today() -> date:
    """Today in Taiwan (cheap: the date is made once a day)."""
    global _today
    number = (int(time.time()) + _OFFSET) // 86400
    if _today[0] != number:
        _today = (number, date.fromordinal(_EPOCH + number))
    return _today[1]


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Usage:
    """Uses of a dataset, an organization or the whole portal.

    Attributes:
        views: page views.
        downloads: file downloads.
        api_calls: API, tile and map-service calls.
        last_30_days: ``YYYY-MM-DD`` → uses of all kinds that day, for the last 30 days
            (today included, oldest first, days without use at 0).
    """

    views: int
    downloads: int
    api_calls: int
    last_30_days: dict[str, int]


#: A pending count's key: (day, kind, dataset or "", organization or None = not yet known).
_Key = tuple[date, str, str, str | None]


class Recorder:
    """The usage counts of one server process and the thread that writes them out.

    Args:
        engine: the catalog database (``usage_counts`` exists: migration 0004).
        attribute: maps the datasets of counts whose organization is unknown to
            (dataset name, organization); called by the flushing thread.
        interval: seconds between flushes.
    """

    def __init__(
        self,
        engine: Engine,
        attribute: Callable[[set[str]], dict[str, tuple[str, str]]],
        interval: float = FLUSH_SECONDS,
    ) -> None:
        self.engine = engine
        self._attribute = attribute
        self._interval = interval
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[_Key, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    def add(self, kind: str, dataset: str | None, organization: str | None, n: int = 1) -> None:
        """Count ``n`` uses (in memory; written out by the next flush).

        Args:
            kind: "view", "download" or "api".
            dataset: the dataset's name (or id), None for a use of no dataset.
            organization: its organization's name, None to let the flush find it.
            n: how many.

        Raises:
            ValueError: an unknown kind.
        """
        if kind not in KINDS:
            raise ValueError(f"usage kind must be one of {KINDS}, not {kind!r}")
        key = (today(), kind, dataset or "", organization if dataset else "")
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + n
            if self._thread is None and not self._closed:
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usage-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def pending(self) -> int:
        """Uses counted in memory and not yet written out."""
        with self._lock:
            return sum(self._pending.values())

    def flush(self) -> int:
        """Write the pending counts to the database (kept for the next try if that fails).

        Returns:
            How many uses were written.
        """
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                rows = self._rows(batch)
                _upsert(self.engine, rows)
            except Exception as exc:  # the thread must go on: keep the counts, try again
                if not isinstance(exc, SQLAlchemyError | OSError):
                    log.exception("writing usage counts failed")
                log.warning(
                    "usage counts not written yet (%d kept for the next try): %s",
                    sum(batch.values()),
                    exc,
                )
                with self._lock:
                    for key, n in batch.items():
                        self._pending[key] = self._pending.get(key, 0) + n
                return 0
            return sum(r["n"] for r in rows)

    def _rows(self, batch: dict[_Key, int]) -> list[dict[str, Any]]:
        """The UPSERT rows of a batch: organizations found, equal keys added, sorted."""
        unknown = {k[2] for k in batch if k[3] is None}
        found = self._attribute(unknown) if unknown else {}
        merged: dict[tuple[date, str, str, str], int] = {}
        for (day, kind, dataset, organization), n in batch.items():
            if organization is None:
                dataset, organization = found.get(dataset, (dataset, ""))
            if dataset.startswith(RESOURCE_REF):  # a resource whose dataset is gone
                dataset = ""
            key = (day, kind, dataset, organization)
            merged[key] = merged.get(key, 0) + n
        return [
            {"day": k[0], "kind": k[1], "dataset": k[2], "organization": k[3], "n": n}
            for k, n in sorted(merged.items())  # one order in every process: no deadlocks
        ]

    def close(self) -> None:
        """Stop the flushing thread and write out what is left (at shutdown; idempotent)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._interval + 30)
        self.flush()


def _upsert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Add ``rows``' counts to ``usage_counts`` in one transaction."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(usage_counts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "kind", "dataset", "organization"],
        set_={"n": usage_counts.c.n + stmt.excluded.n},
    )
    with engine.connect() as conn:
        conn.execution_options(catalog_write=True)  # SQLite: BEGIN IMMEDIATE, busy timeout
        with conn.begin():
            conn.execute(stmt, rows)


def _engine_of(app: FastAPI) -> Engine:
    """An engine on the app's catalog database (the same URL ``Catalog.open`` uses)."""
    settings = app.state.settings
    if settings.catalog_url:
        return create_catalog_engine(settings.catalog_url)
    database = (Path(settings.home) / "catalog.sqlite").resolve()
    return create_catalog_engine(URL.create("sqlite", database=str(database)))


class _Attribution:
    """Finds the dataset name and organization of dataset names, ids and resource ids."""

    def __init__(self, app: FastAPI, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def __call__(self, refs: set[str]) -> dict[str, tuple[str, str]]:
        """(dataset name, organization) of each ref found (refs not found are left out)."""
        found: dict[str, tuple[str, str]] = {}
        view = getattr(self.app.state, "view", None)
        layers = view.snapshot().layers if view is not None else {}
        for ref in refs:
            if ref in layers:
                found[ref] = (ref, layers[ref].agency.name)
        rest = [r for r in refs if r and r not in found]
        if rest:
            found |= self._from_portal(rest)
        return found

    def _from_portal(self, refs: list[str]) -> dict[str, tuple[str, str]]:
        names = [r for r in refs if not r.startswith(RESOURCE_REF)]
        resources = [r.removeprefix(RESOURCE_REF) for r in refs if r.startswith(RESOURCE_REF)]
        d = portal_datasets.c
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            if names:
                query = select(d.name, d.id, d.owner_org).where(d.name.in_(names) | d.id.in_(names))
                for name, uid, org in conn.execute(query):
                    for ref in (name, uid):
                        found[ref] = (name, org)
            if resources:
                query = (
                    select(portal_resources.c.id, d.name, d.owner_org)
                    .join(portal_datasets, portal_resources.c.package_id == d.id)
                    .where(portal_resources.c.id.in_(resources))
                )
                for rid, name, org in conn.execute(query):
                    found[RESOURCE_REF + rid] = (name, org)
        return found


_RECORDER_LOCK = threading.Lock()


def recorder_of(app: FastAPI) -> Recorder:
    """The app's usage recorder, made on first use (``app.state.usage``).

    Args:
        app: the geoportal app (``app.state.settings`` set).

    Returns:
        The recorder.
    """
    recorder = getattr(app.state, "usage", None)
    if recorder is not None:
        return recorder
    with _RECORDER_LOCK:
        recorder = getattr(app.state, "usage", None)
        if recorder is None:
            engine = _engine_of(app)
            recorder = Recorder(engine, _Attribution(app, engine))
            app.state.usage = recorder
    return recorder


def record(app: FastAPI, kind: str, dataset: str | None, organization: str | None) -> None:
    """Count one use: cheap (an in-memory increment), written out within a few seconds.

    Args:
        app: the geoportal app (``request.app``).
        kind: "view" (a page), "download" (a file) or "api" (an API or map-service call).
        dataset: the dataset's name (a layer id for layers), or None for no dataset.
        organization: the dataset's organization (name), or None to have it looked up.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    recorder_of(app).add(kind, dataset, organization)


# --------------------------------------------------------------------------- reading


def _filters(dataset: str | None, organization: str | None) -> list[Any]:
    c = usage_counts.c
    where = []
    if dataset is not None:
        where.append(c.dataset == dataset)
    if organization is not None:
        where.append(c.organization == organization)
    return where


def _kind_sums(c: Any) -> list[Any]:
    """SUM(n) per kind, as three columns views, downloads, api."""
    return [
        func.coalesce(func.sum(case((c.kind == kind, c.n), else_=0)), 0).label(kind)
        for kind in KINDS
    ]


def recent_days(end: date | None = None) -> list[date]:
    """The :data:`RECENT_DAYS` days ending with ``end`` (default today), oldest first."""
    end = end or today()
    return [end - timedelta(days=n) for n in range(RECENT_DAYS - 1, -1, -1)]


def usage(app: FastAPI, dataset: str | None = None, organization: str | None = None) -> Usage:
    """The uses written out so far, of one dataset, one organization or everything.

    Args:
        app: the geoportal app.
        dataset: a dataset name, or None for all.
        organization: an organization name, or None for all.

    Returns:
        The counts (uses of the last :data:`FLUSH_SECONDS` seconds may not be in yet).
    """
    c = usage_counts.c
    where = _filters(dataset, organization)
    days = recent_days()
    with recorder_of(app).engine.connect() as conn:
        views, downloads, api = conn.execute(select(*_kind_sums(c)).where(*where)).one()
        per_day = conn.execute(
            select(c.day, func.sum(c.n)).where(*where, c.day >= days[0]).group_by(c.day)
        ).all()
    daily = {d.isoformat(): 0 for d in days}
    for day, n in per_day:
        key = day.isoformat()
        if key in daily:
            daily[key] = int(n)
    return Usage(int(views), int(downloads), int(api), daily)


def top_datasets(app: FastAPI, kind: str = "view", limit: int = 10) -> list[tuple[str, int]]:
    """The most used datasets of one kind of use, most used first (ties by name).

    Args:
        app: the geoportal app.
        kind: "view", "download" or "api".
        limit: at most this many.

    Returns:
        (dataset name, uses) pairs.

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"usage kind must be one of {KINDS}, not {kind!r}")
    c = usage_counts.c
    total = func.sum(c.n).label("total")
    query = (
        select(c.dataset, total)
        .where(c.kind == kind, c.dataset != "")
        .group_by(c.dataset)
        .order_by(total.desc(), c.dataset)
        .limit(max(limit, 0))
    )
    with recorder_of(app).engine.connect() as conn:
        return [(name, int(n)) for name, n in conn.execute(query)]


@dataclass(frozen=True)
class Row:
    """One line of the admin page: a dataset's or an organization's uses.

    Attributes:
        name: the dataset's or organization's name ("" for uses of none).
        title: its title in the page's language ("" when unknown).
        organization: the dataset's organization title (organizations: "").
        views, downloads, api_calls: all-time counts.
        recent: uses of all kinds in the last 30 days.
    """

    name: str
    title: str
    organization: str
    views: int
    downloads: int
    api_calls: int
    recent: int


def breakdown(app: FastAPI, by: str, lang: str) -> list[Row]:
    """Uses grouped by dataset or by organization, with titles, in name order.

    Args:
        app: the geoportal app.
        by: "dataset" or "organization".
        lang: "zh-TW" or "en" (the titles' language).

    Returns:
        One row per dataset (organization) with any use.
    """
    c = usage_counts.c
    group = c.dataset if by == "dataset" else c.organization
    since = recent_days()[0]
    recent = func.sum(case((c.day >= since, c.n), else_=0)).label("recent")
    query = select(group, *_kind_sums(c), recent, func.max(c.organization)).group_by(group)
    engine = recorder_of(app).engine
    with engine.connect() as conn:
        counts = conn.execute(query.order_by(group)).all()
        org_titles = _titles(conn, agencies.c.name, agencies.c.title, agencies.c.title_en, lang)
        if by == "dataset":
            d = portal_datasets.c
            titles = _titles(conn, d.name, d.title, d.title_en, lang)
            owners = dict(conn.execute(select(d.name, d.owner_org)).all())
    rows = []
    for name, views, downloads, api, recent_n, org in counts:
        if by == "dataset":
            title = titles.get(name, "")
            owner = org_titles.get(owners.get(name, org), owners.get(name, org))
        else:
            title, owner = org_titles.get(name, name), ""
        rows.append(Row(name, title, owner, int(views), int(downloads), int(api), int(recent_n)))
    return rows


def _titles(conn: Any, key: Any, zh: Any, en: Any, lang: str) -> dict[str, str]:
    return {k: (e if lang == "en" and e else z) for k, z, e in conn.execute(select(key, zh, en))}


def daily(app: FastAPI) -> list[tuple[str, int, int, int]]:
    """Uses per day of the last 30 days: (YYYY-MM-DD, views, downloads, API calls)."""
    c = usage_counts.c
    days = recent_days()
    query = select(c.day, *_kind_sums(c)).where(c.day >= days[0]).group_by(c.day)
    with recorder_of(app).engine.connect() as conn:
        found = {day: (int(v), int(d), int(a)) for day, v, d, a in conn.execute(query)}
    return [(day.isoformat(), *found.get(day, (0, 0, 0))) for day in days]


# --------------------------------------------------------------------------- classifying


@dataclass(frozen=True)
class Hit:
    """One use a request made.

    Attributes:
        kind: "download" or "api".
        dataset: the dataset name or id (``resource:<id>`` for a resource), or None.
    """

    kind: str
    dataset: str | None


#: Route families of the request metrics, by first path segment.
_FAMILIES = {
    "tiles": "tiles",
    "wms": "wms",
    "wmts": "wmts",
    "ogc": "ogc",
    "api": "api",
    "download": "download",
    "static": "static",
    "catalog.jsonld": "dcat",
    "catalog.ttl": "dcat",
    "catalog.rdf": "dcat",
    "healthz": "other",
    "metrics": "other",
    "favicon.ico": "other",
}


def family_of(path: str) -> str:
    """The route family of a path for the request metrics ("pages" for portal pages).

    Args:
        path: the request path.

    Returns:
        tiles, wms, wmts, ogc, api, download, static, dcat, other or pages.
    """
    first = path.lstrip("/").split("/", 1)[0]
    return _FAMILIES.get(first, "pages")


@dataclass(frozen=True)
class Answer:
    """What the middleware saw of a request and its response.

    Attributes:
        method: the HTTP method.
        path: the request path.
        query: the raw query string.
        status: the response status.
        content_range: the response's Content-Range header ("" when none).
        body: the request body read by the app (Action API POSTs only, else b"").
        content_type: the request's Content-Type.
    """

    method: str
    path: str
    query: bytes = b""
    status: int = 200
    content_range: str = ""
    body: bytes = b""
    content_type: str = ""


def usage_of(answer: Answer) -> list[Hit]:
    """The uses a request made (none for errors, HEAD and pages).

    Args:
        answer: the request and its response.

    Returns:
        The downloads and API calls it counts as.
    """
    if answer.method not in ("GET", "POST") or not 200 <= answer.status < 400:
        return []
    parts = answer.path.strip("/").split("/")
    handler = _CLASSIFIERS.get(parts[0])
    return handler(parts, answer) if handler else []


def _whole_file(answer: Answer) -> bool:
    """A download served: the whole file, or a range from byte 0 (not a 304)."""
    if answer.method != "GET":
        return False
    return answer.status == 200 or (
        answer.status == 206 and answer.content_range.startswith("bytes 0-")
    )


def _download(parts: list[str], answer: Answer) -> list[Hit]:
    if len(parts) != 2 or not _whole_file(answer):
        return []
    layer_id = parts[1].partition(".")[0]
    return [Hit("download", layer_id)] if layer_id else []


def _dataset_page(parts: list[str], answer: Answer) -> list[Hit]:
    """``/dataset/{id}/resource/{rid}/download[/{file}]``: an uploaded file downloaded."""
    is_file = len(parts) in (5, 6) and parts[2] == "resource" and parts[4] == "download"
    if not is_file or not _whole_file(answer):
        return []
    return [Hit("download", parts[1])]


def _params(answer: Answer) -> dict[str, str]:
    """Query parameters, names upper-cased (OGC services take them in any case)."""
    text = answer.query.decode("latin-1")
    return {k.upper(): v for k, v in parse_qsl(text, keep_blank_values=True)}


def _named(*values: str) -> list[Hit]:
    names = dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip())
    return [Hit("api", n) for n in names] or [Hit("api", None)]


def _wms(parts: list[str], answer: Answer) -> list[Hit]:
    if len(parts) == 2:
        return [Hit("api", parts[1])]
    params = _params(answer)
    return _named(*(params.get(k, "") for k in ("LAYERS", "QUERY_LAYERS", "LAYER")))


def _wmts(parts: list[str], answer: Answer) -> list[Hit]:
    if len(parts) >= 7 and parts[1] == "1.0.0":
        return [Hit("api", parts[2])]
    if len(parts) == 1:
        return _named(_params(answer).get("LAYER", ""))
    return [Hit("api", None)]


def _tiles(parts: list[str], answer: Answer) -> list[Hit]:
    if len(parts) < 2:
        return []
    name = parts[1]
    if len(parts) == 2:
        for suffix in (".json", ".pmtiles"):
            if name.endswith(suffix):
                return [Hit("api", name.removesuffix(suffix))]
        return []
    return [Hit("api", name)]


def _ogc(parts: list[str], answer: Answer) -> list[Hit]:
    if len(parts) >= 3 and parts[1] == "collections" and parts[2]:
        return [Hit("api", parts[2])]
    return [Hit("api", None)]


def _action_data(answer: Answer) -> dict[str, Any]:
    """The data an Action API request carried (query for GET, JSON or form body for POST)."""
    if answer.method == "GET":
        return dict(parse_qsl(answer.query.decode("latin-1")))
    ctype = answer.content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(answer.body.decode("latin-1")))
    if ctype == "multipart/form-data" or not answer.body.strip():
        return {}
    try:
        data = json.loads(answer.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _api(parts: list[str], answer: Answer) -> list[Hit]:
    action = parts[-1] if len(parts) >= 3 and parts[-2] == "action" else ""
    if action in DATASET_ACTIONS or action in RESOURCE_ACTIONS:
        data = _action_data(answer)
        key = "resource_id" if "resource_id" in data else "id"
        ref = data.get(key)
        if isinstance(ref, str) and ref:
            return [Hit("api", ref if action in DATASET_ACTIONS else RESOURCE_REF + ref)]
    return [Hit("api", None)]


def _feed(parts: list[str], answer: Answer) -> list[Hit]:
    return [Hit("api", None)]


_CLASSIFIERS: dict[str, Callable[[list[str], Answer], list[Hit]]] = {
    "download": _download,
    "dataset": _dataset_page,
    "wms": _wms,
    "wmts": _wmts,
    "tiles": _tiles,
    "ogc": _ogc,
    "api": _api,
    **{name: _feed for name in _API_ROOTS - {"api"}},
}


# --------------------------------------------------------------------------- metrics


def _multiprocess_dir() -> Path | None:
    """The metrics folder shared by the workers of one ``serve --workers N`` (else None).

    Workers are started by uvicorn's supervisor with ``multiprocessing``: the folder is named
    after that parent process. Folders of servers that have stopped are removed.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return Path(configured)
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return None
    root = Path(tempfile.gettempdir())
    for old in root.glob("geoportal-metrics-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != parent.pid and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"geoportal-metrics-{parent.pid}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class Metrics:
    """The request metrics of one app and the registry ``/metrics`` reads.

    Args:
        app: the geoportal app (its catalog and usage counts are read at each scrape).
    """

    def __init__(self, app: FastAPI) -> None:
        folder = _multiprocess_dir()
        if folder is not None:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values

        if folder is not None and not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()  # imported before the env was set
        self.registry = CollectorRegistry()
        own = None if folder is not None else self.registry
        if folder is not None:
            multiprocess.MultiProcessCollector(self.registry, path=str(folder))
        self.requests = Counter(
            "geoportal_http_requests",
            "HTTP requests answered, by route family, method and status.",
            ("family", "method", "status"),
            registry=own,
        )
        self.latency = Histogram(
            "geoportal_http_request_duration_seconds",
            "Time to answer HTTP requests (until the last byte was sent), by route family.",
            ("family",),
            buckets=BUCKETS,
            registry=own,
        )
        self.registry.register(_CatalogCollector(app))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, family: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (family, method, status)
        child = self._children.get(key)
        if child is None:
            method_label = method if method in ("GET", "POST", "HEAD", "OPTIONS") else "other"
            child = (
                self.requests.labels(family, method_label, str(status)),
                self.latency.labels(family),
            )
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _CatalogCollector:
    """Gauges of the catalog and portal, and the usage counts, read at each scrape."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def describe(self) -> list:
        """Nothing up front: the metrics are read from the database at each scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """The catalog, portal and usage metrics."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshot = self.app.state.view.snapshot()
        layers = GaugeMetricFamily("geoportal_catalog_layers", "Layers in the catalog.")
        layers.add_metric([], len(snapshot.layers))
        yield layers
        published = GaugeMetricFamily(
            "geoportal_catalog_published_layers", "Layers with a published version."
        )
        published.add_metric([], len(snapshot.versions))
        yield published
        engine = recorder_of(self.app).engine
        with engine.connect() as conn:
            yield from _portal_gauges(conn, GaugeMetricFamily)
            yield from _usage_counters(conn, CounterMetricFamily)


def _portal_gauges(conn: Any, gauge: Any) -> Iterable[Any]:
    d = portal_datasets.c
    datasets = gauge(
        "geoportal_portal_datasets",
        "Active datasets of the portal, by visibility.",
        labels=["private"],
    )
    counts = dict(
        conn.execute(select(d.private, func.count()).where(d.state == "active").group_by(d.private))
        .tuples()
        .all()
    )
    for private in (False, True):
        datasets.add_metric(["true" if private else "false"], counts.get(private, 0))
    yield datasets
    organizations = gauge("geoportal_portal_organizations", "Organizations (agencies).")
    organizations.add_metric([], conn.scalar(select(func.count()).select_from(agencies)) or 0)
    yield organizations


def _usage_counters(conn: Any, counter: Any) -> Iterable[Any]:
    c = usage_counts.c
    total = counter(
        "geoportal_usage",
        "Uses written out by all server processes: page views, downloads, API calls.",
        labels=["kind"],
    )
    by_kind = dict(conn.execute(select(c.kind, func.sum(c.n)).group_by(c.kind)).tuples().all())
    for kind in KINDS:
        total.add_metric([kind], int(by_kind.get(kind) or 0))
    yield total
    per_org = counter(
        "geoportal_usage_organization",
        "Uses by organization (agency) and kind.",
        labels=["organization", "kind"],
    )
    query = (
        select(c.organization, c.kind, func.sum(c.n))
        .where(c.organization != "")
        .group_by(c.organization, c.kind)
        .order_by(c.organization, c.kind)
    )
    for org, kind, n in conn.execute(query):
        per_org.add_metric([org, kind], int(n))
    yield per_org


# --------------------------------------------------------------------------- the middleware


class UsageMiddleware:
    """ASGI middleware: request metrics, usage counts, and the last flush at shutdown.

    Args:
        app: the ASGI app it wraps.
        geoportal: the geoportal app (its recorder and metrics).
    """

    def __init__(self, app: Any, geoportal: FastAPI) -> None:
        self.app = app
        self.recorder = recorder_of(geoportal)
        self.metrics: Metrics = geoportal.state.metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Pass the request on; count it once its response has been sent."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen: dict[str, Any] = {"status": 500, "range": "", "body": []}
        started = time.perf_counter()

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-range":
                        seen["range"] = value.decode("latin-1")
            await send(message)

        reading = self._tee(receive, seen["body"]) if _is_action_post(scope) else receive
        try:
            await self.app(scope, reading, sending)
        finally:
            self._count(scope, seen, time.perf_counter() - started)

    def _count(self, scope: dict, seen: dict[str, Any], seconds: float) -> None:
        path = scope["path"]
        self.metrics.observe(family_of(path), scope["method"], seen["status"], seconds)
        answer = Answer(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b""),
            status=seen["status"],
            content_range=seen["range"],
            body=b"".join(seen["body"]),
            content_type=_header(scope, b"content-type"),
        )
        for hit in usage_of(answer):
            self.recorder.add(hit.kind, hit.dataset, None)

    @staticmethod
    def _tee(receive: Callable, chunks: list[bytes]) -> Callable:
        """``receive`` keeping a copy of the body the app reads (up to :data:`BODY_LIMIT`)."""
        size = [0]

        async def reading() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                data = message.get("body", b"")
                size[0] += len(data)
                if size[0] <= BODY_LIMIT:
                    chunks.append(data)
                else:
                    chunks.clear()
            return message

        return reading

    def _on_shutdown(self, send: Callable) -> Callable:
        """``send`` of the lifespan that writes the last counts out before shutdown ends."""

        async def sending(message: dict) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(self.recorder.close)
            await send(message)

        return sending


def _is_action_post(scope: dict) -> bool:
    return scope["method"] == "POST" and "/action/" in scope["path"]


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


# --------------------------------------------------------------------------- wiring


def install(app: FastAPI) -> None:
    """Count usage and serve ``/metrics`` and ``/admin/stats`` on ``app``.

    Adds :class:`UsageMiddleware` and this module's routes; the recorder's thread starts with
    the first use counted.

    Args:
        app: the geoportal app (``create_app``), not yet started.
    """
    recorder_of(app)
    app.state.metrics = Metrics(app)
    app.add_middleware(UsageMiddleware, geoportal=app)
    app.include_router(router)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency by route family, catalog gauges, usage."""
    body = request.app.state.metrics.render()
    return Response(body, media_type=METRICS_TYPE, headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------- /admin/stats

#: Sort keys of the admin page's tables → the Row attribute they sort by.
SORTS = {
    "name": "name",
    "views": "views",
    "downloads": "downloads",
    "api": "api_calls",
    "recent": "recent",
}

#: Dataset rows the admin page shows at most.
MAX_ROWS = 500


def _is_sysadmin(request: Request) -> bool:
    """Whether a sysadmin is asking: signed in (portal.web.auth) or by API token."""
    try:
        from portal.web.auth import current_user
    except ImportError:  # the sign-in pages are not part of this build
        current_user = None
    if current_user is not None:
        user = current_user(request)
        if user is not None and getattr(user, "sysadmin", False):
            return True
    from portal.ckan.api import portal_of
    from portal.ckan.auth import caller_of, token_of

    if not token_of(request.headers):
        return False
    return caller_of(portal_of(request.app).store, request.headers).sysadmin


def _login_url(request: Request) -> str:
    """The sign-in page returning here, "" when this build has no sign-in pages."""
    try:
        from portal.web.auth import login_url
    except ImportError:
        return ""
    return login_url(request)


def _page(
    request: Request, status: int, language: str, asked: str | None, **context: object
) -> Response:
    """The admin page rendered with the portal's page frame (header, language switch)."""
    from portal.web import i18n, routes

    try:
        from portal.web import auth
    except ImportError:  # the sign-in pages are not part of this build
        auth = None
    user = auth.current_user(request) if auth is not None else None
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    pairs.append(("lang", i18n.other(language)))
    return routes.render(
        "admin_stats.html",
        status,
        language,
        path=request.url.path,
        switch_url=f"{request.url.path}?{urlencode(pairs)}",
        lang_param=language if asked and asked.strip() else "",
        user=user,
        signin=auth is not None,
        csrf=auth.csrf_token(request) if auth is not None and user is not None else "",
        **context,
    )


def _sorted(rows: list[Row], sort: str, order: str) -> list[Row]:
    attribute = SORTS[sort]
    ranked = sorted(rows, key=lambda r: r.name)  # ties in name order, whatever the direction
    return sorted(ranked, key=lambda r: getattr(r, attribute), reverse=order == "desc")


@router.get("/admin/stats", include_in_schema=False)
def admin_stats(
    request: Request, lang: str | None = None, sort: str = "views", order: str = "desc"
) -> Response:
    """Usage per dataset and per agency, and per day of the last 30 days (sysadmins only).

    A sysadmin is recognised by the sign-in session or by an API token (``Authorization``);
    anyone else gets 403. ``?sort=name|views|downloads|api|recent&order=asc|desc`` orders
    the tables; ``?lang=en`` gives the English page.
    """
    from portal.web import i18n

    language = i18n.negotiate(lang, request.headers.get("accept-language"))
    msgs = i18n.messages(language)
    common = {"sort": sort, "order": order, "login": _login_url(request)}
    if not _is_sysadmin(request):
        page = _page(request, 403, language, lang, denied=True, message="", **common)
    elif sort not in SORTS or order not in ("asc", "desc"):
        message = msgs["stats_bad_sort"].format(sort=sort, order=order, keys=", ".join(SORTS))
        page = _page(request, 400, language, lang, denied=False, message=message, **common)
    else:
        datasets = _sorted(breakdown(request.app, "dataset", language), sort, order)
        organizations = _sorted(breakdown(request.app, "organization", language), sort, order)
        page = _page(
            request,
            200,
            language,
            lang,
            denied=False,
            message="",
            total=usage(request.app),
            days=daily(request.app),
            datasets=datasets[:MAX_ROWS],
            shown=min(len(datasets), MAX_ROWS),
            dataset_count=len(datasets),
            organizations=organizations,
            flush_seconds=int(FLUSH_SECONDS),
            **common,
        )
    page.headers["Cache-Control"] = "no-store"
    return page
