"""Whole-layer downloads: ``/download/{id}.{fmt}``.

A vector or table layer is downloaded in every format of :data:`catalog.export.FORMATS`
(geojson, csv, kml, gpkg, shp.zip, parquet; tables: not kml or shp.zip), written by the same
exporter as ``geoportal export``; a raster layer is downloaded as ``.tif``, the stored
Cloud-Optimized GeoTIFF itself.

Each export is made once per layer version and format and kept under
``<home>/downloads/<layer id>/<version>.<fmt>``. The first request takes an exclusive
``flock`` on ``<home>/downloads/<layer id>/.<fmt>.lock`` (threads and ``serve --workers N``
processes alike), looks again, and exports; requests arriving meanwhile wait for the lock and
then find the file. The exporter writes into a temporary folder and renames the result into
place, so a crash never leaves half a file where it is served. A format the exporter refuses
for a layer (a shapefile of GeometryCollections, a DBF too wide) is remembered next to the
exports as ``<version>.<fmt>.refused`` holding the message, so it is not retried on every
request. When a new version is exported, the layer's files of older versions written before it
was published are removed; :func:`prune_downloads` prunes the whole home (and drops removed
layers).

The layer and its current version come from the catalog view's snapshot
(``app.state.view.snapshot()``), never from a query per request. Responses are streamed from
an open file (a pruned file that is still being sent stays readable), with ``Content-Type``,
``Content-Length``, ``Content-Disposition`` (``filename*`` in UTF-8), an ``ETag`` of version
and format, ``Last-Modified`` (when the version was published), ``Cache-Control``, ``304`` on
``If-None-Match`` / ``If-Modified-Since``, single byte ranges (``206``, ``If-Range``; ``416``
past the end) and ``HEAD``. ``X-Cache: MISS`` says this request ran the exporter, ``HIT``
that it was served from the cache.

Errors are JSON ``{"error": code, "message": text}``: 400 ``bad-request`` (not
``{id}.{format}``, or not a layer id), 404 ``not-found`` (no such published layer), 404
``format-unavailable`` (the message lists the formats the layer has), 500 ``export-failed``.

Every download served (a 200, or a 206 from byte 0; not ``HEAD`` or ``304``) is counted in
process by :func:`on_download`; :func:`download_counts` reads the counters (issue #8 persists
them for usage statistics).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from catalog.export import FORMATS, ExportError, export_layer
from catalog.files import exclusive
from catalog.model import LayerVersion
from catalog.view import Snapshot

__all__ = [
    "DOWNLOADS_DIR",
    "RASTER_FORMAT",
    "Download",
    "DownloadError",
    "available_formats",
    "cache_path",
    "download_counts",
    "on_download",
    "parse_name",
    "prune_downloads",
    "resolve_download",
    "router",
]

logger = logging.getLogger(__name__)

router = APIRouter()

DOWNLOADS_DIR = "downloads"
"""Folder of the data home holding the cached exports, one subfolder per layer."""

RASTER_FORMAT = "tif"
"""The one download format of a raster layer: its stored Cloud-Optimized GeoTIFF."""

RASTER_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
"""Content-Type of a raster download."""

CACHE_CONTROL = "public, max-age=300"
"""Download URLs name no version, so clients revalidate (ETag) after five minutes."""

CHUNK_BYTES = 256 * 1024
"""Bytes read and sent at a time."""

STALE_WORK_SECONDS = 6 * 3600
"""Age after which :func:`prune_downloads` removes a temporary export folder (a crashed run)."""

LAYER_ID = re.compile(r"[a-z0-9-]+")

#: Exporter refusals that mean "this layer has no such format" (404), not a failure (500).
_REFUSALS = frozenset({"unknown-format", "raster", "no-geometry", "geometry-type", "too-wide"})
_REFUSED = ".refused"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

_counts: dict[str, int] = {}
_counts_lock = threading.Lock()


class DownloadError(Exception):
    """A download request that cannot be answered with the file.

    Attributes:
        status: the HTTP status of the answer.
        code: the ``error`` member of the JSON body.
        message: the ``message`` member (zh-TW first, then English where people read it).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """The JSON error response (with ``headers`` added)."""
        return JSONResponse(
            {"error": self.code, "message": self.message},
            status_code=self.status,
            headers={"Cache-Control": "no-store", **(headers or {})},
        )


@dataclass(frozen=True)
class Download:
    """One downloadable file: a cached export or a stored raster.

    Attributes:
        layer_id: the layer.
        version: the layer version the file holds.
        fmt: the format's name ("geojson", "shp.zip", "tif", ...).
        path: the file on disk.
        media_type: its Content-Type.
        filename: the name offered to the user (layer id + extension).
        published: when the version was published (the Last-Modified time).
        exported: True when this request ran the exporter (a cache miss).
    """

    layer_id: str
    version: str
    fmt: str
    path: Path
    media_type: str
    filename: str
    published: datetime
    exported: bool = False

    @property
    def etag(self) -> str:
        """The strong entity tag: the version and the format."""
        return f'"{self.version}-{self.fmt}"'

    @property
    def last_modified(self) -> str:
        """The Last-Modified header value (HTTP date)."""
        return format_datetime(_utc(self.published), usegmt=True)


# --------------------------------------------------------------------------- resolving


def parse_name(name: str) -> tuple[str, str]:
    """Split the last path segment ``{id}.{fmt}`` into layer id and format.

    Args:
        name: e.g. ``"tainan-villages.shp.zip"``.

    Returns:
        (layer id, format), e.g. ``("tainan-villages", "shp.zip")``.

    Raises:
        DownloadError: 400 when it is not ``{id}.{format}`` or the id is not a layer id.
    """
    layer_id, dot, fmt = name.partition(".")
    if not dot or not fmt:
        raise DownloadError(
            400,
            "bad-request",
            f"下載網址應為 /download/{{id}}.{{格式}} — expected /download/{{id}}.{{format}}, "
            f"not {name!r}",
        )
    if not LAYER_ID.fullmatch(layer_id):
        raise DownloadError(
            400,
            "bad-request",
            f"{layer_id!r} 不是圖層代碼 — {layer_id!r} is not a layer id "
            "(lower-case letters, digits and '-')",
        )
    return layer_id, fmt


def available_formats(version: LayerVersion) -> list[str]:
    """The download formats a layer version has, in the order the portal lists them.

    Args:
        version: the layer's current version.

    Returns:
        ``["tif"]`` for a raster; every exporter format for a vector layer; those without
        ``needs_geometry`` for a table.
    """
    if version.kind == "raster":
        return [RASTER_FORMAT]
    if version.kind == "table":
        return [name for name, spec in FORMATS.items() if not spec.needs_geometry]
    return list(FORMATS)


def cache_path(home: Path, layer_id: str, version: str, fmt: str) -> Path:
    """Where the export of one layer version in one format is kept.

    Args:
        home: the data home.
        layer_id: a validated layer id.
        version: the version's hash.
        fmt: a key of :data:`catalog.export.FORMATS`.

    Returns:
        ``<home>/downloads/<layer id>/<version>.<fmt>``.
    """
    return home / DOWNLOADS_DIR / layer_id / f"{version}.{fmt}"


def resolve_download(home: Path, snapshot: Snapshot, layer_id: str, fmt: str) -> Download:
    """The file that answers ``/download/{layer_id}.{fmt}``, exported first if needed.

    Args:
        home: the data home.
        snapshot: the catalog snapshot the layer and its current version are read from.
        layer_id: a validated layer id.
        fmt: the format asked for.

    Returns:
        The download (``exported`` tells whether the exporter ran for it).

    Raises:
        DownloadError: 404 for an unknown or unpublished layer or a format it does not have,
            500 when the export failed.
    """
    version = snapshot.versions.get(layer_id)
    if version is None:
        state = "尚未發布 has no published version" if layer_id in snapshot.layers else ""
        raise DownloadError(
            404,
            "not-found",
            f"找不到圖層 {layer_id!r} — no layer {layer_id!r}" + (f" ({state})" if state else ""),
        )
    formats = available_formats(version)
    if fmt not in formats:
        raise _unavailable(layer_id, fmt, formats, _why_not(version, fmt))
    if fmt == RASTER_FORMAT:
        return _download(version, fmt, home / version.path, RASTER_MEDIA_TYPE)
    path, exported = _ensure_export(home, version, fmt)
    return _download(version, fmt, path, FORMATS[fmt].media_type, exported)


def _why_not(version: LayerVersion, fmt: str) -> str:
    """Why a known layer has no such format, for the 404 message."""
    if version.kind == "raster":
        return "網格圖層只提供 GeoTIFF — a raster layer is downloaded as GeoTIFF"
    if fmt in FORMATS:
        return f"無幾何的表格無法存成 {fmt} — a table without geometry cannot be {fmt}"
    return f"沒有 {fmt!r} 格式 — there is no format {fmt!r}"


def _unavailable(layer_id: str, fmt: str, formats: list[str], why: str) -> DownloadError:
    """The 404 of a format the layer does not have, listing those it has."""
    listed = ", ".join(f".{f}" for f in formats)
    return DownloadError(
        404,
        "format-unavailable",
        f"圖層 {layer_id!r} 無法下載為 {fmt!r}：{why}. 可用格式 formats: {listed}",
    )


def _download(
    version: LayerVersion, fmt: str, path: Path, media_type: str, exported: bool = False
) -> Download:
    suffix = f".{RASTER_FORMAT}" if fmt == RASTER_FORMAT else FORMATS[fmt].suffix
    return Download(
        layer_id=version.layer_id,
        version=version.version,
        fmt=fmt,
        path=path,
        media_type=media_type,
        filename=f"{version.layer_id}{suffix}",
        published=version.created,
        exported=exported,
    )


# --------------------------------------------------------------------------- the cache


def _ensure_export(home: Path, version: LayerVersion, fmt: str) -> tuple[Path, bool]:
    """The cached export of ``version`` in ``fmt``, made under the format's lock if missing.

    Returns:
        (path, True if this call ran the exporter).
    """
    out = cache_path(home, version.layer_id, version.version, fmt)
    if out.is_file():
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    refused = out.with_name(out.name + _REFUSED)
    with exclusive(out.parent / f".{fmt}.lock"):
        if out.is_file():  # exported by another thread or process while this one waited
            return out, False
        if refused.is_file():
            raise _unavailable(
                version.layer_id, fmt, available_formats(version), refused.read_text("utf-8")
            )
        try:
            export_layer(home / version.path, version.kind, fmt, out, layer_id=version.layer_id)
        except ExportError as e:
            raise _export_refused(version, fmt, refused, e) from None
    logger.info("exported %s version %s as %s", version.layer_id, version.version, fmt)
    _prune_layer(out.parent, version.version, before=_utc(version.created).timestamp())
    return out, True


def _export_refused(
    version: LayerVersion, fmt: str, refused: Path, error: ExportError
) -> DownloadError:
    """The answer to an export the exporter refused; a refusal is remembered on disk."""
    if error.reason not in _REFUSALS:
        logger.error("export of %s as %s failed: %s", version.layer_id, fmt, error)
        return DownloadError(
            500,
            "export-failed",
            f"圖層 {version.layer_id!r} 匯出 {fmt} 失敗 — exporting it failed: {error}",
        )
    _write_atomic(refused, str(error))
    formats = [f for f in available_formats(version) if f != fmt]
    return _unavailable(version.layer_id, fmt, formats, str(error))


def _write_atomic(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


def _prune_layer(
    folder: Path, keep: str, *, before: float | None = None, stale_work: float | None = None
) -> int:
    """Remove a layer folder's files of every version but ``keep``; returns how many.

    Args:
        folder: ``<home>/downloads/<layer id>``.
        keep: the version whose files stay.
        before: only remove files last written before this POSIX time (None: all). A
            download passes its version's publication time: files of older versions made
            before it are superseded, while a file a worker with a not yet refreshed
            catalog view writes later (of whichever version) is left to
            :func:`prune_downloads`, so two workers never remove each other's current files.
        stale_work: remove temporary export folders (``.<name>.<random>.tmp``) older than
            this many seconds (None: never; a running export owns them). Lock files
            (``.<fmt>.lock``) always stay, so a lock is never split between two files.
    """
    removed = 0
    for entry in folder.iterdir() if folder.is_dir() else []:
        try:
            age = time.time() - entry.stat().st_mtime
            if entry.name.startswith("."):
                if stale_work is not None and entry.name.endswith(".tmp") and age > stale_work:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
                continue
            if entry.name.split(".", 1)[0] != keep and (
                before is None or entry.stat().st_mtime < before
            ):
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # removed meanwhile by another worker
    return removed


def prune_downloads(home: Path, snapshot: Snapshot) -> int:
    """Remove cached exports that no current layer version needs.

    Files of versions that are no longer current are removed, as are the folders of layers
    that are gone or hold no published version, and temporary export folders left by a
    crashed process (older than :data:`STALE_WORK_SECONDS`). Call it after the catalog
    changed (after an ingest) or at start-up; downloads already prune a layer's older
    versions when they export a newer one.

    Args:
        home: the data home.
        snapshot: the catalog snapshot whose current versions are kept.

    Returns:
        How many files and folders were removed.
    """
    root = home / DOWNLOADS_DIR
    removed = 0
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir():
            continue
        version = snapshot.versions.get(folder.name)
        if version is None or version.kind == "raster":
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            continue
        removed += _prune_layer(folder, version.version, stale_work=STALE_WORK_SECONDS)
    return removed


# --------------------------------------------------------------------------- counting


def on_download(layer_id: str, fmt: str) -> None:
    """Count one download of ``layer_id`` in ``fmt`` (thread-safe, in this process).

    Args:
        layer_id: the layer downloaded.
        fmt: the format ("geojson", "tif", ...).
    """
    key = f"{layer_id}.{fmt}"
    with _counts_lock:
        _counts[key] = _counts.get(key, 0) + 1


def download_counts() -> dict[str, int]:
    """Downloads served by this process since it started.

    Returns:
        ``"<layer id>.<fmt>"`` (the download's file name) → count; a copy.
    """
    with _counts_lock:
        return dict(_counts)


# --------------------------------------------------------------------------- HTTP


@router.api_route("/download/{name}", methods=["GET", "HEAD"])
def download(request: Request, name: str) -> Response:
    """A whole layer as one file: ``/download/{id}.{geojson,csv,kml,shp.zip,gpkg,parquet,tif}``.

    Exported once per layer version and format, then streamed from the cache with ETag,
    Last-Modified, conditional requests (304), byte ranges (206) and HEAD.
    """
    try:
        layer_id, fmt = parse_name(name)
        snapshot = request.app.state.view.snapshot()
        if _not_modified(request, snapshot, layer_id, fmt):
            return _not_modified_response(snapshot, layer_id, fmt)
        item, handle = _open(request, snapshot, layer_id, fmt)
        return _file_response(request, item, handle)
    except DownloadError as e:
        return e.response()


def _not_modified(request: Request, snapshot: Snapshot, layer_id: str, fmt: str) -> bool:
    """Whether the client's copy is current, decided without exporting anything."""
    version = snapshot.versions.get(layer_id)
    if version is None or fmt not in available_formats(version):
        return False
    probe = _download(version, fmt, Path(), "")
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or probe.etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    published = _utc(version.created).replace(microsecond=0)
    return when.tzinfo is not None and published <= when


def _not_modified_response(snapshot: Snapshot, layer_id: str, fmt: str) -> Response:
    probe = _download(snapshot.versions[layer_id], fmt, Path(), "")
    return Response(status_code=304, headers=_cache_headers(probe))


def _cache_headers(item: Download) -> dict[str, str]:
    return {
        "ETag": item.etag,
        "Last-Modified": item.last_modified,
        "Cache-Control": CACHE_CONTROL,
    }


def _open(
    request: Request, snapshot: Snapshot, layer_id: str, fmt: str
) -> tuple[Download, BinaryIO]:
    """Resolve the download and open its file (once more if it was pruned in between)."""
    home = request.app.state.settings.home
    for _ in range(2):
        item = resolve_download(home, snapshot, layer_id, fmt)
        try:
            return item, item.path.open("rb")
        except FileNotFoundError:
            continue  # removed by a prune between resolving and opening: export again
    raise DownloadError(
        500,
        "export-failed",
        f"圖層 {layer_id!r} 的 {fmt} 檔案剛被移除，請重試 — the file was just removed; retry",
    )


def _file_response(request: Request, item: Download, handle: BinaryIO) -> Response:
    """Stream ``item`` (whole, or one byte range) from its open file."""
    size = os.fstat(handle.fileno()).st_size
    headers = {
        **_cache_headers(item),
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(item.filename),
    }
    if item.fmt != RASTER_FORMAT:  # a raster is its stored file, never an export
        headers["X-Cache"] = "MISS" if item.exported else "HIT"
    status, start, end = _byte_range(request, item, size)
    if status == 416:
        handle.close()
        return DownloadError(
            416, "range-not-satisfiable", f"請求的範圍超出檔案 — the file has {size} bytes"
        ).response({"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers=headers, media_type=item.media_type)
    if start == 0:
        on_download(item.layer_id, item.fmt)
    return StreamingResponse(
        _chunks(handle, start, end - start),
        status_code=status,
        headers=headers,
        media_type=item.media_type,
    )


def _byte_range(request: Request, item: Download, size: int) -> tuple[int, int, int]:
    """The status and byte span [start, end) to send.

    Returns:
        (200, 0, size) for the whole file: no Range, an ``If-Range`` that does not match, or
        a header asking several ranges or malformed (which a server may ignore, RFC 9110);
        (206, start, end) for one satisfiable range; (416, 0, 0) for one past the end.
    """
    whole = (200, 0, size)
    header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if header is None or (if_range is not None and if_range not in (item.etag, item.last_modified)):
        return whole
    found = _RANGE.fullmatch(header.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return whole
    first, last = found.groups()
    if first == "":  # the last N bytes
        length = int(last)
        return (206, max(size - length, 0), size) if length > 0 and size > 0 else (416, 0, 0)
    start = int(first)
    if last != "" and int(last) < start:
        return whole  # an invalid range is ignored
    if start >= size:
        return (416, 0, 0)
    return (206, start, size if last == "" else min(int(last) + 1, size))


def _chunks(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """The bytes [start, start + length) of an open file, in chunks; closes it."""
    try:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(CHUNK_BYTES, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        handle.close()


def _disposition(filename: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 ``filename*`` (RFC 6266)."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _utc(moment: datetime) -> datetime:
    """A datetime in UTC (naive ones are taken as UTC, as the catalog stores them)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
