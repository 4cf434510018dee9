"""OGC WMTS 1.0.0: GetCapabilities and GetTile, in the KVP and RESTful encodings.

- ``/wmts?SERVICE=WMTS&REQUEST=GetCapabilities`` and ``/wmts/1.0.0/WMTSCapabilities.xml``:
  every tileset and every drawable layer (vector layers drawn as raster too), each in the three
  tile matrix sets of :mod:`tiles.matrix`, with ResourceURL templates. ``?tileset=<id>`` keeps
  one tileset and its members, ``?category=<分類>`` the layers of one category (and the tilesets
  holding them). Documents are built once per catalog snapshot stamp, base URL and filter.
- ``/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=…&STYLE=default&FORMAT=image/png&
  TILEMATRIXSET=…&TILEMATRIX=…&TILEROW=…&TILECOL=…`` and
  ``/wmts/1.0.0/{layer}/{style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.{png,jpg,webp}``.

Errors are OWS 1.1 exception reports (``ows:ExceptionReport``) with the WMTS codes and HTTP
statuses: MissingParameterValue, InvalidParameterValue, TileOutOfRange and
VersionNegotiationFailed 400, OperationNotSupported 501, NoApplicableCode 500.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from catalog.view import Snapshot
from tiles.errors import LayerNotServed, RenderError, TilesError
from tiles.matrix import (
    INFO,
    WORLD_CRS84,
    TileOutOfRange,
    UnknownMatrixSet,
    UnknownTileMatrix,
    lonlat_to_xy,
    matrix_set,
    matrix_sets,
)
from tiles.render import FORMATS
from tiles.tilecache import blank_tile, raster_tile
from tiles.tilesets import RasterSource, raster_source, raster_sources, tilesets

log = logging.getLogger(__name__)
router = APIRouter()

WMTS_NS = "http://www.opengis.net/wmts/1.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"
for _prefix, _uri in (("", WMTS_NS), ("ows", OWS_NS), ("xlink", XLINK_NS), ("xsi", XSI_NS)):
    ET.register_namespace(_prefix, _uri)

VERSION = "1.0.0"
STYLE = "default"
#: WMTS Format (media type) → renderer format, and REST extension → renderer format.
MEDIA_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
_EXT_OF = {"png": "png", "jpeg": "jpg", "webp": "webp"}
XML = "application/xml"
TILE_CACHE = "public, max-age=3600"
CAPS_CACHE = "public, max-age=60"

#: OWS exception code → HTTP status (WMTS 1.0.0 table 28, OWS Common 1.1 table 28).
STATUS = {
    "MissingParameterValue": 400,
    "InvalidParameterValue": 400,
    "TileOutOfRange": 400,
    "VersionNegotiationFailed": 400,
    "InvalidUpdateSequence": 400,
    "OperationNotSupported": 501,
    "NoApplicableCode": 500,
}


class OwsException(Exception):
    """An OWS exception: ``code`` (a key of :data:`STATUS`), the ``locator`` and a message."""

    def __init__(self, code: str, locator: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.locator = locator
        self.text = text


def exception_report(error: OwsException) -> Response:
    """The ``ows:ExceptionReport`` document of ``error``, with its HTTP status."""
    root = ET.Element(
        f"{{{OWS_NS}}}ExceptionReport",
        {
            "version": VERSION,
            f"{{{XML_NS}}}lang": "en",
            f"{{{XSI_NS}}}schemaLocation": (
                f"{OWS_NS} http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd"
            ),
        },
    )
    attrs = {"exceptionCode": error.code}
    if error.locator:
        attrs["locator"] = error.locator
    exc = ET.SubElement(root, f"{{{OWS_NS}}}Exception", attrs)
    ET.SubElement(exc, f"{{{OWS_NS}}}ExceptionText").text = error.text
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=STATUS[error.code], media_type=XML)


def _translate(error: Exception) -> OwsException:
    """The OWS exception a domain error means for a client."""
    if isinstance(error, OwsException):
        return error
    if isinstance(error, LayerNotServed):
        return OwsException("InvalidParameterValue", "Layer", str(error))
    if isinstance(error, UnknownMatrixSet):
        return OwsException("InvalidParameterValue", "TileMatrixSet", str(error))
    if isinstance(error, UnknownTileMatrix):
        return OwsException("InvalidParameterValue", "TileMatrix", str(error))
    if isinstance(error, TileOutOfRange):
        return OwsException("TileOutOfRange", error.locator, str(error))
    if isinstance(error, RenderError):
        log.error("WMTS render failed: %s", error)
        return OwsException("NoApplicableCode", "", f"the tile could not be drawn: {error}")
    log.exception("WMTS request failed")
    return OwsException("NoApplicableCode", "", "internal error; the server log has details")


def _ows(handler: Callable[[], Response]) -> Response:
    """Run ``handler``; any error becomes an OWS exception report, never a bare 500."""
    try:
        return handler()
    except Exception as e:  # the protocol edge: every failure is answered in OWS terms
        return exception_report(_translate(e))


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class TileRequest:
    """A GetTile request, parsed (KVP and REST both end up here)."""

    layer: str
    style: str
    tms: str
    matrix: str
    row: str
    col: str
    fmt: str  # renderer format: png, jpeg, webp


def _kvp(request: Request) -> dict[str, str]:
    """Query parameters with lower-case names (OWS KVP names are case-insensitive)."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key.lower(), value)
    return out


def _required(params: dict[str, str], name: str, locator: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise OwsException("MissingParameterValue", locator, f"parameter {locator} is missing")
    return value


def _kvp_tile(params: dict[str, str]) -> TileRequest:
    version = _required(params, "version", "Version")
    if version != VERSION:
        raise OwsException("InvalidParameterValue", "Version", f"VERSION {version!r}: only 1.0.0")
    layer = _required(params, "layer", "Layer")
    if "style" not in params:
        raise OwsException("MissingParameterValue", "Style", "parameter Style is missing")
    media = _required(params, "format", "Format")
    if media not in MEDIA_TYPES:
        raise OwsException(
            "InvalidParameterValue", "Format", f"Format {media!r}: one of {sorted(MEDIA_TYPES)}"
        )
    return TileRequest(
        layer=layer,
        style=params["style"],
        tms=_required(params, "tilematrixset", "TileMatrixSet"),
        matrix=_required(params, "tilematrix", "TileMatrix"),
        row=_required(params, "tilerow", "TileRow"),
        col=_required(params, "tilecol", "TileCol"),
        fmt=MEDIA_TYPES[media],
    )


def _index(text: str, locator: str) -> int:
    if not text.isdigit():
        raise OwsException(
            "InvalidParameterValue", locator, f"{locator} must be a non-negative integer: {text!r}"
        )
    return int(text)


def _level(tms_id: str, matrix: str) -> int:
    """The zoom level of the tile matrix identified ``matrix`` in set ``tms_id``."""
    for z, m in enumerate(matrix_set(tms_id).tileMatrices):
        if m.id == matrix:
            return z
    raise UnknownTileMatrix(tms_id, matrix)


def _tile(request: Request, t: TileRequest) -> Response:
    """Answer a parsed GetTile."""
    if t.style not in (STYLE, ""):
        raise OwsException("InvalidParameterValue", "Style", f"Style {t.style!r}: only 'default'")
    snapshot: Snapshot = request.app.state.view.snapshot()
    source = raster_source(snapshot, t.layer)
    z = _level(t.tms, t.matrix)
    row, col = _index(t.row, "TileRow"), _index(t.col, "TileCol")
    etag = f'"{source.cache_key}-{t.tms}-{z}-{col}-{row}-{t.fmt}"'
    headers = {"ETag": etag, "Cache-Control": TILE_CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    home = request.app.state.settings.home
    data = raster_tile(home, snapshot, source.id, t.tms, z, col, row, t.fmt)
    return Response(data or blank_tile(t.fmt), media_type=FORMATS[t.fmt][0], headers=headers)


# --------------------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class CapabilitiesFilter:
    """Which sources a capabilities document lists (both empty: all of them)."""

    tileset: str = ""
    category: str = ""


def _selected(snapshot: Snapshot, flt: CapabilitiesFilter) -> list[RasterSource]:
    sources = raster_sources(snapshot)
    if flt.tileset:
        tileset = tilesets(snapshot).get(flt.tileset)
        if tileset is None:
            raise OwsException(
                "InvalidParameterValue",
                "tileset",
                f"no tileset {flt.tileset!r}; known: {sorted(tilesets(snapshot))}",
            )
        keep = {tileset.id, *tileset.layer_ids}
        sources = [s for s in sources if s.id in keep]
    if flt.category:
        sources = [s for s in sources if flt.category in s.category]
        if not sources:
            raise OwsException(
                "InvalidParameterValue", "category", f"no layer in category {flt.category!r}"
            )
    return sources


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    ns, _, name = tag.rpartition(":")
    uri = {"ows": OWS_NS, "xlink": XLINK_NS, "": WMTS_NS}[ns]
    el = ET.SubElement(parent, f"{{{uri}}}{name}", {_attr(k): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _attr(name: str) -> str:
    if name == "lang":
        return f"{{{XML_NS}}}lang"
    if name == "href":
        return f"{{{XLINK_NS}}}href"
    return name


def _num(value: float) -> str:
    return repr(float(value))


def _titles(parent: ET.Element, zh: str, en: str) -> None:
    _sub(parent, "ows:Title", zh, lang="zh-TW")
    if en:
        _sub(parent, "ows:Title", en, lang="en")


def _service(root: ET.Element, base: str) -> None:
    ident = _sub(root, "ows:ServiceIdentification")
    _titles(ident, "geoportal 圖磚服務（WMTS）", "geoportal tile service (WMTS)")
    _sub(
        ident,
        "ows:Abstract",
        "各機關圖層與圖組的預先切割圖磚，提供 Web 麥卡托、經緯度與 TWD97 二度分帶三種圖磚矩陣。",
    )
    _sub(ident, "ows:ServiceType", "OGC WMTS")
    _sub(ident, "ows:ServiceTypeVersion", VERSION)
    _sub(ident, "ows:Fees", "none")
    _sub(ident, "ows:AccessConstraints", "none")
    provider = _sub(root, "ows:ServiceProvider")
    _sub(provider, "ows:ProviderName", "geoportal")
    _sub(provider, "ows:ProviderSite", href=f"{base}/")
    _sub(provider, "ows:ServiceContact")
    ops = _sub(root, "ows:OperationsMetadata")
    for name, rest in (("GetCapabilities", "WMTSCapabilities.xml"), ("GetTile", "")):
        http = _sub(_sub(_sub(ops, "ows:Operation", name=name), "ows:DCP"), "ows:HTTP")
        for href, encoding in ((f"{base}/wmts/1.0.0/{rest}", "RESTful"), (f"{base}/wmts?", "KVP")):
            get = _sub(http, "ows:Get", href=href)
            allowed = _sub(_sub(get, "ows:Constraint", name="GetEncoding"), "ows:AllowedValues")
            _sub(allowed, "ows:Value", encoding)


def _layer(contents: ET.Element, source: RasterSource, base: str) -> None:
    el = _sub(contents, "Layer")
    _titles(el, source.title, source.title_en)
    if source.description:
        _sub(el, "ows:Abstract", source.description)
    if source.bbox:
        wgs = _sub(el, "ows:WGS84BoundingBox", crs="urn:ogc:def:crs:OGC:2:84")
        _sub(wgs, "ows:LowerCorner", f"{_num(source.bbox[0])} {_num(source.bbox[1])}")
        _sub(wgs, "ows:UpperCorner", f"{_num(source.bbox[2])} {_num(source.bbox[3])}")
    _sub(el, "ows:Identifier", source.id)
    if source.bbox:
        for tms_id in (m for m in INFO if m != WORLD_CRS84):
            try:
                minx, miny, maxx, maxy = lonlat_to_xy(source.bbox, tms_id)
            except TilesError:  # not expressible in that CRS: clients use the WGS84 box
                continue
            box = _sub(el, "ows:BoundingBox", crs=INFO[tms_id].wmts_crs)
            _sub(box, "ows:LowerCorner", f"{minx:.3f} {miny:.3f}")
            _sub(box, "ows:UpperCorner", f"{maxx:.3f} {maxy:.3f}")
    style = _sub(el, "Style", isDefault="true")
    _sub(style, "ows:Title", "預設樣式")
    _sub(style, "ows:Identifier", STYLE)
    for media in MEDIA_TYPES:
        _sub(el, "Format", media)
    for tms_id in INFO:
        _sub(_sub(el, "TileMatrixSetLink"), "TileMatrixSet", tms_id)
    for media, fmt in MEDIA_TYPES.items():
        template = (
            f"{base}/wmts/1.0.0/{source.id}/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/"
            f"{{TileRow}}/{{TileCol}}.{_EXT_OF[fmt]}"
        )
        _sub(el, "ResourceURL", format=media, resourceType="tile", template=template)


def _matrix_set(contents: ET.Element, tms_id: str) -> None:
    info = INFO[tms_id]
    tms = matrix_sets()[tms_id]
    el = _sub(contents, "TileMatrixSet")
    _titles(el, info.title, info.title_en)
    _sub(el, "ows:Identifier", tms_id)
    _sub(el, "ows:SupportedCRS", info.wmts_crs)
    if info.well_known_scale_set:
        _sub(el, "WellKnownScaleSet", info.well_known_scale_set)
    for m in tms.tileMatrices:
        tm = _sub(el, "TileMatrix")
        _sub(tm, "ows:Identifier", m.id)
        _sub(tm, "ScaleDenominator", _num(m.scaleDenominator))
        _sub(tm, "TopLeftCorner", f"{_num(m.pointOfOrigin[0])} {_num(m.pointOfOrigin[1])}")
        _sub(tm, "TileWidth", str(m.tileWidth))
        _sub(tm, "TileHeight", str(m.tileHeight))
        _sub(tm, "MatrixWidth", str(m.matrixWidth))
        _sub(tm, "MatrixHeight", str(m.matrixHeight))


def capabilities_xml(snapshot: Snapshot, base: str, flt: CapabilitiesFilter) -> bytes:
    """The capabilities document (UTF-8 XML) for the sources ``flt`` selects."""
    sources = _selected(snapshot, flt)
    root = ET.Element(
        f"{{{WMTS_NS}}}Capabilities",
        {
            "version": VERSION,
            f"{{{XSI_NS}}}schemaLocation": (
                f"{WMTS_NS} http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd"
            ),
        },
    )
    _service(root, base)
    contents = _sub(root, "Contents")
    for source in sources:
        _layer(contents, source, base)
    for tms_id in INFO:
        _matrix_set(contents, tms_id)
    _sub(root, "ServiceMetadataURL", href=f"{base}/wmts/1.0.0/WMTSCapabilities.xml")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


_documents: OrderedDict[tuple[str, str, CapabilitiesFilter], bytes] = OrderedDict()
_documents_lock = threading.Lock()
_DOCUMENTS = 32


def _cached_capabilities(snapshot: Snapshot, base: str, flt: CapabilitiesFilter) -> bytes:
    key = (snapshot.stamp, base, flt)
    with _documents_lock:
        doc = _documents.get(key)
        if doc is not None:
            _documents.move_to_end(key)
            return doc
    doc = capabilities_xml(snapshot, base, flt)
    with _documents_lock:
        _documents[key] = doc
        while len(_documents) > _DOCUMENTS:
            _documents.popitem(last=False)
    return doc


def _capabilities(request: Request, params: dict[str, str]) -> Response:
    accept = params.get("acceptversions")
    if accept and VERSION not in [v.strip() for v in accept.split(",")]:
        raise OwsException(
            "VersionNegotiationFailed", "AcceptVersions", f"{accept!r}: this server speaks 1.0.0"
        )
    flt = CapabilitiesFilter(params.get("tileset", ""), params.get("category", ""))
    snapshot: Snapshot = request.app.state.view.snapshot()
    base = str(request.base_url).rstrip("/")
    doc = _cached_capabilities(snapshot, base, flt)
    tag = hashlib.sha1(f"{snapshot.stamp}|{base}|{flt}".encode()).hexdigest()[:16]
    headers = {"ETag": f'"{tag}"', "Cache-Control": CAPS_CACHE}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(doc, media_type=XML, headers=headers)


# --------------------------------------------------------------------------- routes


def _kvp_dispatch(request: Request) -> Response:
    params = _kvp(request)
    service = _required(params, "service", "Service")
    if service.upper() != "WMTS":
        raise OwsException("InvalidParameterValue", "Service", f"SERVICE {service!r}: WMTS")
    operation = _required(params, "request", "Request")
    if operation.lower() == "getcapabilities":
        return _capabilities(request, params)
    if operation.lower() == "gettile":
        return _tile(request, _kvp_tile(params))
    raise OwsException(
        "OperationNotSupported",
        "Request",
        f"REQUEST {operation!r} is not supported: GetCapabilities or GetTile",
    )


@router.get("/wmts")
def wmts_kvp(request: Request) -> Response:
    """WMTS 1.0.0 in the KVP encoding: GetCapabilities and GetTile."""
    return _ows(lambda: _kvp_dispatch(request))


@router.get("/wmts/1.0.0/WMTSCapabilities.xml")
def wmts_capabilities(request: Request) -> Response:
    """The RESTful capabilities document (``?tileset=`` and ``?category=`` filter it)."""
    return _ows(lambda: _capabilities(request, _kvp(request)))


def _rest_tile(request: Request, layer: str, style: str, tms: str, parts: tuple) -> Response:
    matrix, row, col_ext = parts
    col, dot, ext = col_ext.rpartition(".")
    if not dot or ext.lower() not in EXTENSIONS:
        raise OwsException(
            "InvalidParameterValue", "Format", f"tile extension {ext!r}: png, jpg or webp"
        )
    return _tile(request, TileRequest(layer, style, tms, matrix, row, col, EXTENSIONS[ext.lower()]))


@router.get("/wmts/1.0.0/{layer}/{style}/{tms}/{matrix}/{row}/{col_ext}")
def wmts_rest_tile(
    request: Request, layer: str, style: str, tms: str, matrix: str, row: str, col_ext: str
) -> Response:
    """GetTile in the RESTful encoding: ``{TileRow}/{TileCol}.{png,jpg,webp}``."""
    return _ows(lambda: _rest_tile(request, layer, style, tms, (matrix, row, col_ext)))


@router.get("/wmts/1.0.0/{rest:path}")
def wmts_rest_unknown(rest: str) -> Response:
    """Any other path under the RESTful root: an exception report, not a bare 404."""
    return exception_report(
        OwsException(
            "InvalidParameterValue",
            "ResourceURL",
            f"/wmts/1.0.0/{rest} is neither WMTSCapabilities.xml nor "
            "{layer}/{style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.{png,jpg,webp}",
        )
    )
