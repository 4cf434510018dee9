"""Quality labels (標章) of datasets, modelled on data.gov.tw's dataset quality check.

data.gov.tw checks every dataset by machine on three axes and awards a label from the
result; the portal computes the same three axes for each :class:`~portal.ckan.model.Dataset`:

- **obtainable** (可取得性): every resource answers: a download with 2xx and a body, a service
  with its capabilities document (WMS/WMTS/WFS capabilities, an OGC API collection, a TileJSON,
  a PMTiles archive);
- **processable** (可處理性): every resource's declared format is open and machine-readable
  (XLS/XLSX pass as "semi": structured but proprietary, with a note), the bytes are what the
  format says (a "CSV" that is an HTML page or a zip fails), and a text file's declared
  encoding matches its bytes (decided with :mod:`ingest.encoding`, the detector ingest uses);
- **understandable** (可理解性): 主要欄位說明 (``fields_description``) is present and names
  exactly the real columns (a layer's columns from the catalog; otherwise the header of a
  CSV resource or the keys of a JSON/GeoJSON resource), and the data changed within the
  declared update frequency (每日 = 1 day … 每年 = 1 year; 不定期 is always met).

Resources are fetched with bounded time and size: ``HEAD``, then a ranged ``GET`` of the first
64 KB. URLs are typed by agencies and fetched server-side, so fetching guards against SSRF:
only ``http``/``https``, at most a few redirects (each checked again), and no connection to a
private, loopback, link-local or otherwise non-public address, except to origins the caller
trusts (this portal's own base URL). The address is checked on the socket actually connected,
so DNS rebinding cannot slip past the check. The portal's own relative URLs
(``/download/...``) are fetched from its base URL, or, without a server, from the app itself
in-process (:class:`AppTransport`), through exactly the routes a server would answer with.

:func:`check_dataset` returns a typed :class:`QualityReport`; :func:`quality_extras` turns it
into the dataset extras ``quality_obtainable``, ``quality_processable``,
``quality_understandable`` ("pass"/"fail"), ``quality_label``, ``quality_checked`` and
``quality_findings`` that ``package_search`` facets on; :func:`with_quality` puts them on the
dataset, which the caller stores with ``PortalStore.put_dataset``.
"""

from __future__ import annotations

import asyncio
import csv
import http.client
import ipaddress
import json
import re
import socket
import ssl
import struct
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from catalog.search import normalize
from ingest import encoding as enc
from portal.ckan.model import Dataset, Resource

__all__ = [
    "AXES",
    "AXIS_NAMES",
    "EXTRA_KEYS",
    "AppTransport",
    "AxisResult",
    "FetchPolicy",
    "Fetched",
    "Fetcher",
    "Finding",
    "QualityReport",
    "check_dataset",
    "check_datasets",
    "described_names",
    "format_info",
    "frequency_period",
    "quality_extras",
    "sniff",
    "with_quality",
]

AXES = ("obtainable", "processable", "understandable")
"""The three axes, in data.gov.tw's order."""

AXIS_NAMES = {
    "obtainable": ("可取得性", "obtainable"),
    "processable": ("可處理性", "processable"),
    "understandable": ("可理解性", "understandable"),
}
"""Axis → (zh-TW name, English name)."""

EXTRA_KEYS = (
    "quality_obtainable",
    "quality_processable",
    "quality_understandable",
    "quality_label",
    "quality_checked",
    "quality_findings",
)
"""The dataset extras a check writes (every other extra is kept)."""

LABEL_PASS = "符合"
"""``quality_label`` of a dataset that passes all three axes."""

PREFIX_BYTES = 64 * 1024
"""How much of each resource is read (a ranged GET of the first 64 KB)."""


# =========================================================================== findings


@dataclass(frozen=True)
class Finding:
    """One thing a check found, in zh-TW and English.

    Attributes:
        axis: one of :data:`AXES`.
        code: a stable machine code ("http-status", "format-mismatch", "stale", ...).
        zh: the finding for people, in zh-TW.
        en: the same in English.
        resource: the resource it is about (its name, or its URL), "" for the dataset.
        fails: whether it fails the axis (False: a note, e.g. a "semi" open format).
    """

    axis: str
    code: str
    zh: str
    en: str
    resource: str = ""
    fails: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "axis": self.axis,
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "resource": self.resource,
            "fails": self.fails,
        }


@dataclass(frozen=True)
class AxisResult:
    """One axis of one dataset: passed when none of its findings fails it."""

    axis: str
    findings: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the axis passed."""
        return not any(f.fails for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The axis as JSON."""
        return {"passed": self.passed, "findings": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True)
class QualityReport:
    """The quality check of one dataset.

    Attributes:
        dataset_id: the dataset's id.
        dataset_name: its name.
        obtainable, processable, understandable: the three axes.
        checked_at: when the check ran (UTC).
    """

    dataset_id: str
    dataset_name: str
    obtainable: AxisResult
    processable: AxisResult
    understandable: AxisResult
    checked_at: datetime

    @property
    def axes(self) -> tuple[AxisResult, AxisResult, AxisResult]:
        """The three axes in :data:`AXES` order."""
        return (self.obtainable, self.processable, self.understandable)

    @property
    def passed(self) -> bool:
        """Whether all three axes passed."""
        return all(a.passed for a in self.axes)

    @property
    def failed_axes(self) -> tuple[str, ...]:
        """The axes that failed, in :data:`AXES` order."""
        return tuple(a.axis for a in self.axes if not a.passed)

    @property
    def label(self) -> str:
        """符合 when every axis passed, else 未符合： and the failed axes in zh-TW."""
        if self.passed:
            return LABEL_PASS
        return "未符合：" + "、".join(AXIS_NAMES[a][0] for a in self.failed_axes)

    @property
    def label_en(self) -> str:
        """The label in English."""
        if self.passed:
            return "meets all three axes"
        return "fails: " + ", ".join(self.failed_axes)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every axis."""
        return tuple(f for a in self.axes for f in a.findings)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON (what ``geoportal check --json`` prints per dataset)."""
        return {
            "id": self.dataset_id,
            "name": self.dataset_name,
            "passed": self.passed,
            "label": self.label,
            "label_en": self.label_en,
            "checked_at": _iso(self.checked_at),
            **{a.axis: a.to_dict() for a in self.axes},
        }


def _iso(when: datetime) -> str:
    """UTC, seconds, no zone suffix: CKAN's timestamp style."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def quality_extras(report: QualityReport) -> dict[str, str]:
    """The dataset extras of a report (see :data:`EXTRA_KEYS`).

    ``quality_findings`` holds the failing findings in zh-TW, one a line (at most 20), for the
    dataset page; it is "" when the dataset passed.
    """
    failing = [f for f in report.findings if f.fails]
    lines = [f"{AXIS_NAMES[f.axis][0]}：{_where(f)}{f.zh}" for f in failing[:20]]
    if len(failing) > 20:
        lines.append(f"……另有 {len(failing) - 20} 項")
    return {
        "quality_obtainable": "pass" if report.obtainable.passed else "fail",
        "quality_processable": "pass" if report.processable.passed else "fail",
        "quality_understandable": "pass" if report.understandable.passed else "fail",
        "quality_label": report.label,
        "quality_checked": _iso(report.checked_at),
        "quality_findings": "\n".join(lines),
    }


def _where(finding: Finding) -> str:
    return f"〔{finding.resource}〕" if finding.resource else ""


def with_quality(dataset: Dataset, report: QualityReport) -> Dataset:
    """``dataset`` with its quality extras replaced by the report's (other extras kept).

    Raises:
        ValueError: the report is of another dataset.
    """
    if report.dataset_id != dataset.id:
        raise ValueError(f"report of dataset {report.dataset_id} given for dataset {dataset.id}")
    kept = tuple(e for e in dataset.extras if e[0] not in EXTRA_KEYS)
    return replace(dataset, extras=(*kept, *quality_extras(report).items()))


# =========================================================================== fetching


class FetchError(Exception):
    """A resource could not be fetched; ``zh`` and the message say why."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        self.code = code
        self.zh = zh
        super().__init__(en)


@dataclass(frozen=True)
class FetchPolicy:
    """Bounds and trust of fetching.

    Attributes:
        timeout: seconds for connecting and for each read; also the budget of one request.
        max_bytes: how much of a body is read.
        max_redirects: redirects followed per request (each target checked again).
        trusted_origins: ``scheme://host:port`` origins that may be on private or loopback
            addresses (this portal's own base URL, an intranet agency server).
        user_agent: the User-Agent sent.
    """

    timeout: float = 20.0
    max_bytes: int = PREFIX_BYTES
    max_redirects: int = 5
    trusted_origins: frozenset[str] = frozenset()
    user_agent: str = "geoportal-quality-check/1 (+data.gov.tw-style dataset check)"


@dataclass(frozen=True)
class Fetched:
    """What one request answered (the body cut at the policy's ``max_bytes``).

    Attributes:
        url: the URL finally answered (after redirects).
        status: the HTTP status.
        headers: response headers, names lower-case.
        body: the first bytes of the body (decompressed when the server compressed it).
        complete: the whole body was read.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool


class Transport(Protocol):
    """Something that answers one HTTP request (no redirects followed)."""

    def request(
        self, method: str, url: str, headers: Mapping[str, str], policy: FetchPolicy
    ) -> Fetched:
        """Send one request and read at most ``policy.max_bytes`` of the answer."""


def origin(url: str) -> str:
    """``scheme://host:port`` of an absolute http(s) URL (default ports filled in)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _guarded_connect(allow_private: bool) -> Callable[..., socket.socket]:
    """A ``socket.create_connection`` that connects only to public addresses (unless allowed).

    Every address the name resolves to is tried in turn; a non-public one is skipped, so a
    name that resolves only to private addresses fails before any byte is sent.
    """

    def connect(
        address: tuple[str, int], timeout: float | None = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        refused = None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            if not allow_private and not _public(sockaddr[0]):
                refused = sockaddr[0]
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError:
                sock.close()
                continue
            return sock
        if refused is not None:
            raise FetchError(
                "private-address",
                f"拒絕連線：{host} 指向非公開位址 {refused}",
                f"refused: {host} resolves to the non-public address {refused}",
            )
        raise OSError(f"could not connect to {host}:{port}")

    return connect


class NetworkTransport:
    """HTTP(S) over the network with the SSRF guard (:func:`_guarded_connect`)."""

    def request(
        self, method: str, url: str, headers: Mapping[str, str], policy: FetchPolicy
    ) -> Fetched:
        """Send one request; connect only where the policy allows; read a bounded body.

        Raises:
            FetchError: refused address, timeout, TLS or connection failure.
        """
        host, port, target = _http_target(url)
        allow_private = origin(url) in policy.trusted_origins
        if urlsplit(url).scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=policy.timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=policy.timeout)
        conn._create_connection = _guarded_connect(allow_private)  # type: ignore[attr-defined]
        try:
            conn.request(method, target, headers=dict(headers))
            response = conn.getresponse()
            body, complete = _read_bounded(response, method, policy)
            answered = {k.lower(): v for k, v in response.getheaders()}
            return Fetched(url, response.status, answered, body, complete)
        except FetchError:
            raise
        except TimeoutError as e:
            raise FetchError(
                "timeout", f"逾時（{policy.timeout:g} 秒）", f"timed out ({policy.timeout:g} s)"
            ) from e
        except ssl.SSLError as e:
            raise FetchError("tls", f"TLS 錯誤：{e}", f"TLS error: {e}") from e
        except (OSError, http.client.HTTPException) as e:
            raise FetchError("unreachable", f"無法連線：{e}", f"cannot connect: {e}") from e
        finally:
            conn.close()


def _http_target(url: str) -> tuple[str, int | None, str]:
    """(ASCII host, port, request target) of a URL; Chinese paths and IDN hosts encoded.

    Raises:
        FetchError: the URL has no host, a bad port or a host IDNA cannot encode.
    """
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (UnicodeError, ValueError) as e:
        raise FetchError("bad-url", f"網址格式錯誤：{url}", f"malformed URL {url!r}: {e}") from e
    if not host:
        raise FetchError("bad-url", f"網址沒有主機名稱：{url}", f"URL {url!r} names no host")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return host, port, path + (f"?{query}" if query else "")


def _read_bounded(
    response: http.client.HTTPResponse, method: str, policy: FetchPolicy
) -> tuple[bytes, bool]:
    """Read at most ``max_bytes`` within the time budget; (body, whether it is all)."""
    if method == "HEAD":
        return b"", True
    deadline = time.monotonic() + policy.timeout
    chunks: list[bytes] = []
    got = 0
    while got < policy.max_bytes:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read1(min(16384, policy.max_bytes - got))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks), False


class _Enough(Exception):
    """Raised inside an in-process response once enough of the body is in."""


class AppTransport:
    """Requests answered in-process by an ASGI app (the portal itself, without a server).

    The app sees an ordinary HTTP request for host ``base`` (so the URLs it writes are
    right); at most ``max_bytes`` of the body are collected, then the response is abandoned.
    """

    def __init__(self, app: Any, base: str = "http://geoportal.local") -> None:
        self.app = app
        self.base = base.rstrip("/")

    def request(
        self, method: str, url: str, headers: Mapping[str, str], policy: FetchPolicy
    ) -> Fetched:
        """Run one request through the app (in a private event loop).

        Raises:
            FetchError: the app failed or took longer than the policy's timeout.
        """
        try:
            return asyncio.run(
                asyncio.wait_for(self._call(method, url, headers, policy), policy.timeout)
            )
        except TimeoutError as e:
            raise FetchError(
                "timeout", f"逾時（{policy.timeout:g} 秒）", f"timed out ({policy.timeout:g} s)"
            ) from e

    async def _call(
        self, method: str, url: str, headers: Mapping[str, str], policy: FetchPolicy
    ) -> Fetched:
        parts = urlsplit(url)
        host = urlsplit(self.base).netloc
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": urlsplit(self.base).scheme,
            "path": unquote(parts.path or "/"),
            "raw_path": (parts.path or "/").encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(b"host", host.encode())]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 0),
            "server": (urlsplit(self.base).hostname or "geoportal.local", 80),
        }
        state: dict[str, Any] = {
            "status": None,
            "headers": {},
            "body": [],
            "size": 0,
            "done": False,
        }
        sent = asyncio.Event()

        async def receive() -> dict:
            if not sent.is_set():
                sent.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # never: the client does not disconnect
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                _collect(state, message, policy.max_bytes)

        try:
            await self.app(scope, receive, send)
        except Exception as e:  # the app's own failure, or our _Enough
            if not _is_enough(e) and state["status"] is None:
                raise FetchError("app-error", f"程式錯誤：{e!r}", f"the app failed: {e!r}") from e
        if state["status"] is None:
            raise FetchError("app-error", "程式沒有回應", "the app sent no response")
        body = b"".join(state["body"])[: policy.max_bytes]
        return Fetched(url, state["status"], state["headers"], body, state["done"])


def _collect(state: dict[str, Any], message: dict, limit: int) -> None:
    chunk = message.get("body", b"")
    state["body"].append(chunk)
    state["size"] += len(chunk)
    if not message.get("more_body", False):
        state["done"] = True
    elif state["size"] >= limit:
        raise _Enough


def _is_enough(error: BaseException) -> bool:
    if isinstance(error, _Enough):
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_is_enough(e) for e in error.exceptions)
    return _is_enough(error.__cause__) if error.__cause__ is not None else False


@dataclass(frozen=True)
class Probe:
    """What fetching one resource gave: the ranged GET (after a HEAD), or why it failed.

    Attributes:
        url: the absolute URL fetched ("" when the URL could not even be resolved).
        get: the GET's answer, when one came.
        head: the HEAD's answer, when one came.
        error: why nothing usable came.
    """

    url: str
    get: Fetched | None = None
    head: Fetched | None = None
    error: FetchError | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer with a body."""
        return self.get is not None and 200 <= self.get.status < 300 and bool(self.get.body)


class Fetcher:
    """Fetches resources' URLs: absolute ones over the network, relative ones from the portal.

    Args:
        policy: time and size bounds, trusted origins.
        base_url: this portal's base URL; relative URLs are joined onto it and its origin is
            trusted (it may be on a loopback or private address).
        app: without ``base_url``, the portal's ASGI app answering relative URLs in-process.
        network: the transport for the network (default :class:`NetworkTransport`).
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        base_url: str | None = None,
        app: AppTransport | None = None,
        network: Transport | None = None,
    ) -> None:
        policy = policy or FetchPolicy()
        if base_url:
            base_url = base_url.rstrip("/") + "/"
            if urlsplit(base_url).scheme not in ("http", "https"):
                raise ValueError(f"base URL {base_url!r} is not an http(s) URL")
            policy = replace(policy, trusted_origins=policy.trusted_origins | {origin(base_url)})
        self.policy = policy
        self.base_url = base_url
        self.app = app
        self.network = network or NetworkTransport()

    def resolve(self, url: str) -> str:
        """The absolute URL a resource's URL names.

        Raises:
            FetchError: an empty URL, a scheme other than http(s), or a relative URL with
                neither a base URL nor the app to answer it.
        """
        url = url.strip()
        if not url:
            raise FetchError("no-url", "沒有網址", "the resource has no URL")
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            return url
        if scheme:
            raise FetchError(
                "scheme",
                f"不允許的網址協定 {scheme}:（只接受 http、https）",
                f"scheme {scheme}: is not allowed (only http and https)",
            )
        if self.base_url:
            return urljoin(self.base_url, url.lstrip("/"))
        if self.app is not None:
            return urljoin(self.app.base + "/", url.lstrip("/"))
        raise FetchError(
            "relative-url",
            "相對網址，但沒有入口網站網址可以對照",
            "a relative URL, and no portal base URL to resolve it against",
        )

    def _transport(self, url: str) -> Transport:
        if self.app is not None and origin(url) == origin(self.app.base):
            return self.app
        return self.network

    def request(self, method: str, url: str, headers: Mapping[str, str]) -> Fetched:
        """One request, following at most ``max_redirects`` redirects to http(s) URLs.

        Raises:
            FetchError: as the transport, or a redirect loop / a redirect to another scheme.
        """
        for _ in range(self.policy.max_redirects + 1):
            fetched = self._transport(url).request(method, url, headers, self.policy)
            location = fetched.headers.get("location")
            if fetched.status not in (301, 302, 303, 307, 308) or not location:
                return _decoded(fetched, self.policy.max_bytes)
            url = urljoin(url, location)
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise FetchError(
                    "scheme",
                    f"轉址到不允許的網址 {url}",
                    f"redirected to a URL that is not http(s): {url}",
                )
        raise FetchError(
            "redirects",
            f"轉址超過 {self.policy.max_redirects} 次",
            f"more than {self.policy.max_redirects} redirects",
        )

    def probe(self, url: str) -> Probe:
        """HEAD, then a ranged GET of the first ``max_bytes`` of a resource's URL."""
        try:
            absolute = self.resolve(url)
        except FetchError as e:
            return Probe("", error=e)
        common = {"User-Agent": self.policy.user_agent, "Accept": "*/*"}
        try:
            head = self.request("HEAD", absolute, common)
            get = self.request(
                "GET",
                absolute,
                {
                    **common,
                    "Range": f"bytes=0-{self.policy.max_bytes - 1}",
                    "Accept-Encoding": "identity",
                },
            )
        except FetchError as e:
            return Probe(absolute, error=e)
        return Probe(absolute, get=get, head=head)


def _decoded(fetched: Fetched, limit: int) -> Fetched:
    """The body decompressed when the server sent it gzip/deflate despite ``identity``."""
    coding = fetched.headers.get("content-encoding", "").lower()
    if coding not in ("gzip", "x-gzip", "deflate") or not fetched.body:
        return fetched
    try:
        body = zlib.decompressobj(47).decompress(fetched.body, limit)
    except zlib.error:
        return fetched
    return replace(fetched, body=body)


# =========================================================================== sniffing

_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"%PDF", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"PAR1", "parquet"),
    (b"PMTiles", "pmtiles"),
    (b"\x1f\x8b", "gzip"),
    (b"\x00\x00\x27\x0a", "shp"),
    (b"Rar!", "rar"),
    (b"7z\xbc\xaf", "7z"),
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_XML_PROLOG = ((b"<?", b"?>"), (b"<!--", b"-->"), (b"<!", b">"))
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


@dataclass(frozen=True)
class Sniffed:
    """What a body's first bytes are.

    Attributes:
        kind: "zip", "pdf", "ole2", "png", "jpeg", "gif", "tiff", "sqlite", "parquet",
            "pmtiles", "gzip", "shp", "rar", "7z", "html", "xml", "json", "text", "binary"
            or "empty".
        detail: for xml the root element's local name; for zip the member names seen.
        complete: for zip, whether ``detail`` lists every member.
    """

    kind: str
    detail: tuple[str, ...] = ()
    complete: bool = False

    @property
    def label(self) -> str:
        """For people: "zip", "XML (kml)", "HTML", ..."""
        if self.kind == "xml" and self.detail:
            return f"XML（{self.detail[0]}）"
        return {"html": "HTML", "json": "JSON", "text": "text", "empty": "empty"}.get(
            self.kind, self.kind.upper() if len(self.kind) <= 4 else self.kind
        )


def sniff(prefix: bytes) -> Sniffed:
    """Tell what a body is from its first bytes (magic numbers, then text shapes)."""
    if not prefix:
        return Sniffed("empty")
    for magic, kind in _MAGIC:
        if prefix.startswith(magic):
            if kind == "zip":
                names, complete = zip_names(prefix)
                return Sniffed("zip", names, complete)
            return Sniffed(kind)
    body = prefix
    for bom in _BOMS:
        if body.startswith(bom):
            body = body[len(bom) :]
            break
    if b"\x00" in body[:1024] and not prefix.startswith(_BOMS[1:]):
        return Sniffed("binary")
    text = body.lstrip()
    if text.startswith(b"<"):
        return _sniff_markup(text)
    if text[:1] in (b"{", b"["):
        return Sniffed("json")
    return Sniffed("text")


def _sniff_markup(text: bytes) -> Sniffed:
    lower = text[:2048].lower()
    if lower.startswith(b"<!doctype html") or b"<html" in lower or b"<body" in lower:
        return Sniffed("html")
    rest = text
    while True:  # skip the declaration, comments, processing instructions and DOCTYPE
        rest = rest.lstrip()
        closing = next((c for o, c in _XML_PROLOG if rest.startswith(o)), None)
        if closing is None:
            break
        end = rest.find(closing)
        if end < 0:
            return Sniffed("xml")
        rest = rest[end + len(closing) :]
    match = _XML_ROOT.match(rest)
    return Sniffed("xml", (match.group(2).decode("ascii", "replace"),) if match else ())


def zip_names(prefix: bytes) -> tuple[tuple[str, ...], bool]:
    """Member names of a zip from its local file headers within ``prefix``.

    Returns:
        (names, complete): complete when the listing reached the central directory.
    """
    names: list[str] = []
    at = 0
    while prefix.startswith(b"PK\x03\x04", at) and at + 30 <= len(prefix):
        flags, _, _, _, _, csize, _, nlen, xlen = struct.unpack_from("<HHHHIIIHH", prefix, at + 6)
        raw = prefix[at + 30 : at + 30 + nlen]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        if flags & 0x08 and csize == 0:  # sizes follow the data: cannot skip to the next
            return tuple(names), False
        at += 30 + nlen + xlen + csize
    complete = prefix.startswith(b"PK\x01\x02", at) or prefix.startswith(b"PK\x05\x06", at)
    return tuple(names), complete


# =========================================================================== formats


@dataclass(frozen=True)
class FormatInfo:
    """How the check treats a declared format.

    Attributes:
        label: the canonical label.
        openness: "open" (open and machine-readable), "semi" (machine-readable but
            proprietary, data.gov.tw's treatment of XLS) or "closed" (PDF, Word, images, HTML).
        accepts: function of the sniffed body: whether the bytes are this format.
        text: whether a character encoding applies.
        columns: how columns are read from it: "csv", "json", "geojson" or "".
        service: it is a web service answering a capabilities document.
    """

    label: str
    openness: str
    accepts: Callable[[Sniffed], bool]
    text: bool = False
    columns: str = ""
    service: bool = False


def _kind(*kinds: str) -> Callable[[Sniffed], bool]:
    return lambda s: s.kind in kinds


def _xml_root(*roots: str) -> Callable[[Sniffed], bool]:
    wanted = {r.lower() for r in roots}
    return lambda s: s.kind == "xml" and bool(s.detail) and s.detail[0].lower() in wanted


def _zip_with(*suffixes: str) -> Callable[[Sniffed], bool]:
    def accepts(s: Sniffed) -> bool:
        if s.kind != "zip":
            return False
        found = any(n.lower().endswith(suffixes) for n in s.detail)
        return found or not s.complete  # a member past the first 64 KB cannot be seen

    return accepts


def _ooxml(folder: str) -> Callable[[Sniffed], bool]:
    def accepts(s: Sniffed) -> bool:
        if s.kind != "zip":
            return False
        return any(n.startswith(folder) for n in s.detail) or (
            not s.complete and "[Content_Types].xml" in s.detail
        )

    return accepts


def _ods(s: Sniffed) -> bool:
    return s.kind == "zip" and bool(s.detail) and s.detail[0] == "mimetype"


_OPEN = "open"
_TEXTUAL = _kind("text", "json", "xml")
_FORMATS: dict[str, FormatInfo] = {
    f.label: f
    for f in (
        FormatInfo("CSV", _OPEN, _kind("text"), text=True, columns="csv"),
        FormatInfo("TSV", _OPEN, _kind("text"), text=True, columns="csv"),
        FormatInfo("TXT", _OPEN, _TEXTUAL, text=True),
        FormatInfo("JSON", _OPEN, _kind("json"), text=True, columns="json"),
        FormatInfo("GEOJSON", _OPEN, _kind("json"), text=True, columns="geojson"),
        FormatInfo("TOPOJSON", _OPEN, _kind("json"), text=True),
        FormatInfo("JSON-LD", _OPEN, _kind("json"), text=True),
        FormatInfo("XML", _OPEN, _kind("xml"), text=True),
        FormatInfo("RDF", _OPEN, _kind("xml"), text=True),
        FormatInfo("TTL", _OPEN, _kind("text"), text=True),
        FormatInfo("GML", _OPEN, _kind("xml"), text=True),
        FormatInfo("KML", _OPEN, _xml_root("kml"), text=True),
        FormatInfo("KMZ", _OPEN, _zip_with(".kml")),
        FormatInfo("SHP", _OPEN, lambda s: s.kind == "shp" or _zip_with(".shp")(s)),
        FormatInfo("ZIP", _OPEN, _kind("zip")),
        FormatInfo("GPKG", _OPEN, _kind("sqlite")),
        FormatInfo("GEOPARQUET", _OPEN, _kind("parquet")),
        FormatInfo("PARQUET", _OPEN, _kind("parquet")),
        FormatInfo("ODS", _OPEN, _ods),
        FormatInfo("GEOTIFF", _OPEN, _kind("tiff")),
        FormatInfo("TIFF", _OPEN, _kind("tiff")),
        FormatInfo("PMTILES", _OPEN, _kind("pmtiles"), service=True),
        FormatInfo(
            "WMS", _OPEN, _xml_root("WMS_Capabilities", "WMT_MS_Capabilities"), service=True
        ),
        FormatInfo("WMTS", _OPEN, _xml_root("Capabilities"), service=True),
        FormatInfo("WFS", _OPEN, _xml_root("WFS_Capabilities"), service=True),
        FormatInfo("OGC API FEATURES", _OPEN, _kind("json"), service=True),
        FormatInfo("OGC API COVERAGES", _OPEN, _kind("json"), service=True),
        FormatInfo("OGC API", _OPEN, _kind("json"), service=True),
        FormatInfo("TILEJSON", _OPEN, _kind("json"), service=True),
        FormatInfo("XLS", "semi", _kind("ole2")),
        FormatInfo("XLSX", "semi", _ooxml("xl/")),
        FormatInfo("PDF", "closed", _kind("pdf")),
        FormatInfo("DOC", "closed", _kind("ole2")),
        FormatInfo("DOCX", "closed", _ooxml("word/")),
        FormatInfo("PPT", "closed", _kind("ole2")),
        FormatInfo("PPTX", "closed", _ooxml("ppt/")),
        FormatInfo("JPEG", "closed", _kind("jpeg")),
        FormatInfo("PNG", "closed", _kind("png")),
        FormatInfo("GIF", "closed", _kind("gif")),
        FormatInfo("HTML", "closed", _kind("html")),
        FormatInfo("RAR", "closed", _kind("rar")),
        FormatInfo("7Z", "closed", _kind("7z")),
    )
}
_ALIASES = {
    "JPG": "JPEG",
    "TIF": "TIFF",
    "HTM": "HTML",
    "SHP.ZIP": "SHP",
    "SHAPEFILE": "SHP",
    "ESRI SHAPEFILE": "SHP",
    "GEOPACKAGE": "GPKG",
    "JSONLD": "JSON-LD",
    "TURTLE": "TTL",
    "OGC API - FEATURES": "OGC API FEATURES",
    "OGC API - COVERAGES": "OGC API COVERAGES",
    "OGCAPI": "OGC API",
    "網頁": "HTML",
}


def format_info(label: str) -> FormatInfo | None:
    """The check's view of a declared CKAN format label ("CSV", ".csv", "GeoJSON", ...).

    Returns:
        The format, or None for a label the check does not know.
    """
    key = " ".join(label.strip().lstrip(".").upper().split())
    key = _ALIASES.get(key, key)
    return _FORMATS.get(key)


# =========================================================================== the axes


@dataclass(frozen=True)
class _Checked:
    """One resource with its declared format and what fetching it gave."""

    resource: Resource
    info: FormatInfo | None
    probe: Probe
    sniffed: Sniffed

    @property
    def name(self) -> str:
        return self.resource.name or self.resource.url


def _finding(
    axis: str, code: str, zh: str, en: str, item: _Checked | None = None, *, fails: bool = True
) -> Finding:
    return Finding(axis, code, zh, en, item.name if item else "", fails)


def _capabilities_url(url: str, info: FormatInfo | None) -> str:
    """A WMS/WMTS/WFS URL without a request gets ``SERVICE=…&REQUEST=GetCapabilities``."""
    if info is None or info.label not in ("WMS", "WMTS", "WFS"):
        return url
    parts = urlsplit(url)
    keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if "request" in keys or parts.path.lower().endswith(".xml"):
        return url
    query = parts.query + ("&" if parts.query else "")
    query += urlencode({"SERVICE": info.label, "REQUEST": "GetCapabilities"})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _answers_capabilities(item: _Checked) -> bool:
    """Whether a service resource answered what its kind answers to a client."""
    info = item.info
    if info is None or not info.accepts(item.sniffed):
        return False
    body = item.probe.get.body if item.probe.get else b""
    if info.label == "TILEJSON":
        doc = _json_object(body)
        return doc is not None and isinstance(doc.get("tiles"), list)
    if info.label.startswith("OGC API"):
        doc = _json_object(body)
        return doc is not None and ("id" in doc or "links" in doc)
    return True


def _obtainable(item: _Checked) -> list[Finding]:
    axis = "obtainable"
    probe = item.probe
    if probe.error is not None:
        return [_finding(axis, probe.error.code, probe.error.zh, str(probe.error), item)]
    get = probe.get
    assert get is not None
    if not 200 <= get.status < 300:
        return [
            _finding(
                axis,
                "http-status",
                f"HTTP {get.status}：無法取得 {probe.url}",
                f"HTTP {get.status}: {probe.url} cannot be obtained",
                item,
            )
        ]
    if not get.body:
        return [_finding(axis, "empty", "回應沒有內容", "the answer has no body", item)]
    is_service = item.resource.kind == "service" or (item.info is not None and item.info.service)
    if is_service and not _answers_capabilities(item):
        return [
            _finding(
                axis,
                "capabilities",
                f"服務沒有回應其能力文件（收到 {item.sniffed.label}）",
                f"the service did not answer with its capabilities (got {item.sniffed.label})",
                item,
            )
        ]
    return []


def _processable(item: _Checked) -> list[Finding]:
    axis = "processable"
    info = item.info
    declared = item.resource.format.strip()
    if info is None:
        zh = f"無法辨識的格式標示「{declared}」" if declared else "未標示檔案格式"
        en = f"unknown format label {declared!r}" if declared else "no format declared"
        return [_finding(axis, "unknown-format", zh, en, item)]
    if info.openness == "closed":
        return [
            _finding(
                axis,
                "closed-format",
                f"{declared} 不是開放的機器可讀格式",
                f"{declared} is not an open machine-readable format",
                item,
            )
        ]
    out = []
    if info.openness == "semi":
        out.append(
            _finding(
                axis,
                "semi-open-format",
                f"{declared} 為結構化但非開放格式，建議另提供 CSV 或 ODS",
                f"{declared} is structured but proprietary; offer CSV or ODS too",
                item,
                fails=False,
            )
        )
    if not item.probe.ok or info.service:
        return out  # unobtainable: said under obtainable; services: checked there
    if not info.accepts(item.sniffed):
        out.append(
            _finding(
                axis,
                "format-mismatch",
                f"宣告為 {declared}，內容卻是 {item.sniffed.label}",
                f"declared {declared}, but the bytes are {item.sniffed.label}",
                item,
            )
        )
    elif info.text:
        out += _encoding(item)
    return out


def _lines(prefix: bytes, complete: bool) -> list[bytes]:
    """Non-empty lines of a body prefix (a line cut by the prefix's end dropped)."""
    lines = prefix.split(b"\n")
    if not complete and len(lines) > 1:
        lines = lines[:-1]
    return [line.rstrip(b"\r") for line in lines if line.strip()]


def _encoding(item: _Checked) -> list[Finding]:
    """Whether the declared encoding is the bytes' (ingest's detector decides)."""
    axis = "processable"
    get = item.probe.get
    assert get is not None
    samples = _lines(get.body, get.complete)
    detected, confidence = enc.detect(samples)
    shown = {"utf-8": "UTF-8", "cp950": "Big5"}.get(detected, detected)
    declared = item.resource.encoding.strip()
    if not declared:
        return [
            _finding(
                axis,
                "no-encoding",
                f"未宣告編碼格式（內容看來是 {shown}）",
                f"no encoding declared (the bytes look like {shown})",
                item,
                fails=False,
            )
        ]
    try:
        claim = enc.normalise(declared)
    except LookupError:
        return [
            _finding(
                axis,
                "unknown-encoding",
                f"無法辨識的編碼格式「{declared}」",
                f"unknown encoding {declared!r}",
                item,
            )
        ]
    if all(s.isascii() for s in samples) or claim.startswith("utf-16"):
        return []
    wrong = not enc.fits(samples, claim) or (
        claim != detected and detected == "utf-8" and confidence >= 0.99
    )
    if not wrong:
        return []
    return [
        _finding(
            axis,
            "encoding-mismatch",
            f"宣告編碼為 {declared}，內容卻是 {shown}",
            f"declared encoding {declared}, but the bytes are {shown}",
            item,
        )
    ]


# --------------------------------------------------------------------------- understandable

_SEPARATORS = set("、,;\n|\t")
_TRAILING_GROUP = re.compile(r"\s*\([^()]*\)\s*$")


def described_names(text: str) -> list[str]:
    """The items of a 主要欄位說明, split on 、 , ； ; | and new lines outside brackets.

    "名稱、地址（文字）、電話:聯絡電話" gives ["名稱", "地址（文字）", "電話:聯絡電話"]; each
    item names one column, possibly with a type or a description after it (see
    :func:`_candidates`).
    """
    items, current, depth = [], [], 0
    for ch in unicodedata.normalize("NFKC", text):  # full-width （，： become ASCII
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch in _SEPARATORS and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]


def _key(text: str) -> str:
    """How names compare: NFKC, case-folded, 台→臺, no white space."""
    return "".join(normalize(text).split())


def _candidates(item: str) -> set[str]:
    """The column names an item may mean: itself, the part before ``:``, before its brackets."""
    item = unicodedata.normalize("NFKC", item)
    out = {_key(item)}
    if ":" in item:
        out.add(_key(item.split(":", 1)[0]))
    stripped = item
    while (match := _TRAILING_GROUP.search(stripped)) and match.start() > 0:
        stripped = stripped[: match.start()]
        out.add(_key(stripped))
    out.add(_key(re.split(r"[(\[]", item, maxsplit=1)[0]))
    out.discard("")
    return out


def _csv_columns(body: bytes, complete: bool, declared: str) -> list[str]:
    lines = _lines(body, complete)
    if not lines:
        return []
    header = lines[0]
    try:
        claim = enc.normalise(declared) if declared else ""
    except LookupError:
        claim = ""
    if not claim or not enc.fits([header], claim):
        claim = enc.detect([header])[0]
    text = enc.decode(header, claim, "header", enc.DecodeLog()).lstrip("\ufeff")
    delimiter = max(",\t|;", key=text.count)
    row = next(csv.reader([text], delimiter=delimiter), [])
    return [c.strip() for c in row if c.strip()]


def _first_object(text: str, after: str = "") -> dict | None:
    """The first JSON object in ``text`` (after the key ``after``), even when ``text`` is cut."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list) and whole and isinstance(whole[0], dict) and not after:
        return whole[0]
    start = 0
    if after:
        match = re.search(rf'"{after}"\s*:\s*', text)
        if match is None:
            return None
        start = match.end()
    else:
        start = text.find("{", 1 if text.startswith("{") else 0)
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_columns(body: bytes, kind: str) -> list[str]:
    text = body.decode("utf-8-sig", errors="replace").strip()
    obj = _first_object(text, "properties" if kind == "geojson" else "")
    if kind == "json" and obj is None:
        obj = _json_object(body)
    return [str(k) for k in obj] if obj else []


def _resource_columns(items: Sequence[_Checked]) -> tuple[list[str], str] | None:
    """The columns of the first tabular resource that could be read: (columns, its name)."""
    for item in items:
        info, get = item.info, item.probe.get
        if info is None or not info.columns or not item.probe.ok or not info.accepts(item.sniffed):
            continue
        assert get is not None
        if info.columns == "csv":
            columns = _csv_columns(get.body, get.complete, item.resource.encoding)
        else:
            columns = _json_columns(get.body, info.columns)
        if columns:
            return columns, item.name
    return None


def _fields(
    dataset: Dataset,
    items: Sequence[_Checked],
    columns_of: Callable[[str], Sequence[str] | None] | None,
) -> list[Finding]:
    axis = "understandable"
    real = None
    if dataset.layer_id and columns_of is not None:
        layer_columns = columns_of(dataset.layer_id)
        if layer_columns is not None:
            real = (list(layer_columns), f"圖層 {dataset.layer_id}")
    if real is not None and not real[0]:  # a raster: no attribute columns to compare
        return [
            _finding(
                axis,
                "no-columns",
                "資料沒有屬性欄位（網格資料），無欄位可比對",
                "the data has no attribute columns (a raster): nothing to compare",
                fails=False,
            )
        ]
    if not dataset.fields_description.strip():
        return [
            _finding(axis, "no-fields-description", "缺少主要欄位說明", "no field descriptions")
        ]
    real = real or _resource_columns(items)
    if real is None:
        return [
            _finding(
                axis,
                "no-columns",
                "無法讀取資料欄位，未比對主要欄位說明",
                "the data's columns could not be read; field descriptions not compared",
                fails=False,
            )
        ]
    return _compare_fields(dataset.fields_description, *real)


def _compare_fields(description: str, columns: list[str], source: str) -> list[Finding]:
    axis = "understandable"
    items = described_names(description)
    described = set().union(*(_candidates(i) for i in items)) if items else set()
    keys = {_key(c) for c in columns}
    missing = [c for c in columns if _key(c) not in described]
    extra = [i for i in items if not (_candidates(i) & keys)]
    out = []
    if missing:
        out.append(
            _finding(
                axis,
                "fields-missing",
                f"主要欄位說明缺少實際欄位（{source}）：{'、'.join(missing[:12])}",
                f"field descriptions miss real columns ({source}): {', '.join(missing[:12])}",
            )
        )
    if extra:
        out.append(
            _finding(
                axis,
                "fields-extra",
                f"主要欄位說明列出資料沒有的欄位（{source}）：{'、'.join(extra[:12])}",
                f"field descriptions name columns the data lacks ({source}): "
                f"{', '.join(extra[:12])}",
            )
        )
    return out


_IRREGULAR = {
    "不定期",
    "不定時",
    "不定期更新",
    "不定時更新",
    "不更新",
    "無",
    "一次性",
    "單次",
    "irregular",
    "asneeded",
    "never",
}
_NUMBERS = {
    "一": 1,
    "二": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
    "十二": 12,
}
_UNITS = {
    "分鐘": timedelta(minutes=1),
    "分": timedelta(minutes=1),
    "小時": timedelta(hours=1),
    "時": timedelta(hours=1),
    "日": timedelta(days=1),
    "天": timedelta(days=1),
    "週": timedelta(days=7),
    "周": timedelta(days=7),
    "星期": timedelta(days=7),
    "月": timedelta(days=31),
    "季": timedelta(days=92),
    "半年": timedelta(days=184),
    "年": timedelta(days=366),
}
_ENGLISH = {
    "realtime": timedelta(days=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "semiannually": timedelta(days=184),
    "annually": timedelta(days=366),
    "yearly": timedelta(days=366),
}
_EVERY = re.compile(
    r"每\s*(\d+|十二|[一二兩三四五六七八九十])?\s*(個)?\s*(分鐘|小時|半年|星期|分|時|日|天|週|周|月|季|年)"
)


def frequency_period(text: str) -> timedelta | None:
    """The longest time between updates a declared update frequency allows.

    每日/每天 1 day, 每週 7 days, 每月 31, 每季 92, 每半年 184, 每年 366 days, "每2週" twice
    a unit; 即時 (real time) 1 day; 不定期/不定時 (irregular) None: always met.

    Raises:
        ValueError: the text names no frequency the check knows.
    """
    key = "".join(normalize(text).split()).replace("-", "")
    if key in {_key(i) for i in _IRREGULAR}:
        return None
    if key.startswith("即時") or key in _ENGLISH:
        return _ENGLISH.get(key, timedelta(days=1))
    match = _EVERY.search(key)
    if match is None:
        raise ValueError(f"unknown update frequency {text!r}")
    number, _, unit = match.groups()
    count = int(number) if number and number.isdigit() else _NUMBERS.get(number or "", 1)
    return _UNITS[unit] * max(count, 1)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _http_modified(probe: Probe) -> datetime | None:
    for answer in (probe.head, probe.get):
        if answer is not None and 200 <= answer.status < 300 and "last-modified" in answer.headers:
            try:
                return _aware(parsedate_to_datetime(answer.headers["last-modified"]))
            except (TypeError, ValueError):
                continue
    return None


def last_change(dataset: Dataset, probes: Iterable[Probe] = ()) -> datetime | None:
    """When the dataset's data last changed, by the best evidence at hand.

    The resources' ``last_modified``; for a resource without one, its server's
    ``Last-Modified``; with neither anywhere, the dataset's ``metadata_modified``.
    """
    probes = list(probes)
    times = []
    for i, resource in enumerate(dataset.resources):
        if resource.last_modified is not None:
            times.append(_aware(resource.last_modified))
        elif i < len(probes) and (served := _http_modified(probes[i])) is not None:
            times.append(served)
    if times:
        return max(times)
    return _aware(dataset.metadata_modified) if dataset.metadata_modified else None


def _frequency(dataset: Dataset, probes: Sequence[Probe], now: datetime) -> list[Finding]:
    axis = "understandable"
    declared = dataset.update_frequency.strip()
    if not declared:
        return [_finding(axis, "no-frequency", "未宣告更新頻率", "no update frequency declared")]
    try:
        period = frequency_period(declared)
    except ValueError:
        return [
            _finding(
                axis,
                "unknown-frequency",
                f"無法辨識的更新頻率「{declared}」",
                f"unknown update frequency {declared!r}",
            )
        ]
    if period is None:
        return []
    last = last_change(dataset, probes)
    if last is None:
        return [
            _finding(axis, "no-date", "沒有更新日期可以比對", "no modification date to compare")
        ]
    if now - last <= period:
        return []
    days = (now - last).days
    return [
        _finding(
            axis,
            "stale",
            f"更新頻率為「{declared}」，但最近一次更新在 {last:%Y-%m-%d}（{days} 天前）",
            f"update frequency {declared!r}, but the data last changed on {last:%Y-%m-%d} "
            f"({days} days ago)",
        )
    ]


# --------------------------------------------------------------------------- datasets


def _probe(fetcher: Fetcher, resource: Resource) -> _Checked:
    info = format_info(resource.format)
    probe = fetcher.probe(_capabilities_url(resource.url, info))
    body = probe.get.body if probe.get is not None and 200 <= probe.get.status < 300 else b""
    return _Checked(resource, info, probe, sniff(body))


def check_dataset(
    dataset: Dataset,
    fetcher: Fetcher,
    *,
    columns_of: Callable[[str], Sequence[str] | None] | None = None,
    now: datetime | None = None,
) -> QualityReport:
    """Check one dataset on the three axes.

    Args:
        dataset: the dataset (its resources are fetched).
        fetcher: fetches resource URLs (bounds, SSRF guard, base URL or in-process app).
        columns_of: a layer id → its real columns (the catalog's current version), used for
            datasets of layers; None: columns are read from the resources.
        now: the time to judge update frequency against (default: now).

    Returns:
        The report, ``checked_at`` = ``now``.
    """
    now = _aware(now or datetime.now(UTC))
    items = [_probe(fetcher, r) for r in sorted(dataset.resources, key=lambda r: r.position)]
    obtainable = [f for i in items for f in _obtainable(i)]
    processable = [f for i in items for f in _processable(i)]
    if not items:
        none = ("no-resources", "沒有任何資源", "the dataset has no resources")
        obtainable.append(_finding("obtainable", *none))
        processable.append(_finding("processable", *none))
    by_resource = {i.resource.id: i.probe for i in items}
    probes = [by_resource.get(r.id, Probe("")) for r in dataset.resources]
    understandable = _fields(dataset, items, columns_of) + _frequency(dataset, probes, now)
    return QualityReport(
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        obtainable=AxisResult("obtainable", tuple(obtainable)),
        processable=AxisResult("processable", tuple(processable)),
        understandable=AxisResult("understandable", tuple(understandable)),
        checked_at=now,
    )


def check_datasets(
    datasets: Sequence[Dataset],
    fetcher: Fetcher,
    *,
    columns_of: Callable[[str], Sequence[str] | None] | None = None,
    jobs: int = 8,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> list[QualityReport]:
    """Check many datasets on a thread pool (fetching is I/O-bound); reports in input order.

    Args:
        datasets: the datasets.
        fetcher: as :func:`check_dataset` (shared; it is thread-safe).
        columns_of: as :func:`check_dataset`.
        jobs: threads.
        progress: called with each dataset's name once it is checked.
        now: as :func:`check_dataset`; one time for the whole run.
    """
    now = _aware(now or datetime.now(UTC))

    def one(dataset: Dataset) -> QualityReport:
        report = check_dataset(dataset, fetcher, columns_of=columns_of, now=now)
        if progress is not None:
            progress(dataset.name)
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="quality") as pool:
        return list(pool.map(one, datasets))
