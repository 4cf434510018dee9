"""WMS 1.3.0 and 1.1.1 (KVP, GET) on the shared renderer: ``/wms`` and ``/wms/{layer_id}``.

A request reads as one line of flow: the query string becomes a case-insensitive
:class:`Params`, an operation parses it once into a typed request (:class:`MapParams`,
:class:`FeatureInfoParams`, :class:`LegendParams`), layer names resolve through the cached
catalog view (:func:`tiles.layers.render_layer`), and one service call answers it: the renderer
draws the map or the legend, :func:`tiles.features.features_at` finds features,
:func:`tiles.wms_capabilities.capabilities` returns the cached document.

Every problem with a request is a :class:`WmsError` carrying an OGC exception code; one
function, :func:`exception_response`, turns it into the ServiceExceptionReport of the request's
version (1.3.0 or 1.1.1 codes and media types), or into an image when the client asked for
``EXCEPTIONS=INIMAGE`` / ``BLANK`` on GetMap. Bad input never yields a 500.

Axis order: WMS 1.3.0 with EPSG:4326 or EPSG:3824 takes BBOX as lat,lon; CRS:84 and every
projected CRS are x,y; 1.1.1 is always x,y. The renderer always gets an x-first bbox.
"""

from __future__ import annotations

import io
import logging
import math
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request, Response
from PIL import Image, ImageDraw, ImageFont

from catalog.style import geometry_kind
from catalog.view import Snapshot
from tiles.errors import LayerNotServed, RenderError, TilesError
from tiles.features import ENCODERS, Feature, PointQuery, QueriedLayer, features_at
from tiles.layers import render_layer
from tiles.render import FORMATS, MAX_SIZE, MapRequest, RenderLayer, get_renderer
from tiles.render import scale_denominator as map_scale
from tiles.wms_capabilities import (
    CRSS_130,
    LATLON_CRSS,
    LAYER_LIMIT,
    LEGEND_ROW,
    LEGEND_WIDTH,
    STYLE_NAME,
    Service,
    capabilities,
)

router = APIRouter()
log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]
VERSIONS = ("1.1.1", "1.3.0")
MAX_FEATURE_COUNT = 1000
CACHE_MAPS = "public, max-age=60"


# --------------------------------------------------------------------------- errors


class WmsError(TilesError):
    """A request WMS cannot answer, with its OGC exception code (1.3.0 spelling).

    Attributes:
        code: "LayerNotDefined", "InvalidCRS", ... (1.1.1 names are derived when reporting).
        locator: the parameter at fault, e.g. "LAYERS" (reported in 1.3.0 only).
        status: the HTTP status of the XML report (from :data:`STATUS` unless given).
    """

    def __init__(
        self, code: str, message: str, locator: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.locator = locator
        self.status = status or STATUS.get(code, 400)


#: Exception code → HTTP status of its XML report; every other code is a client error (400).
STATUS = {
    "OperationNotSupported": 501,
    "CurrentUpdateSequence": 200,
    "NoApplicableCode": 500,
}
#: 1.3.0 code → 1.1.1 code, where they differ.
CODES_111 = {"InvalidCRS": "InvalidSRS"}


def _layer_missing(name: str, why: str = "no such layer in this service") -> WmsError:
    return WmsError("LayerNotDefined", f"layer {name!r}: {why}", "LAYERS")


# --------------------------------------------------------------------------- parameters


class Params:
    """The query string as case-insensitive names → first value."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in items:
            self._values.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (any case), or ``default``."""
        return self._values.get(name.lower(), default)

    def first(self, *names: str) -> str | None:
        """The value of the first of ``names`` present."""
        return next((self._values[n] for n in names if n in self._values), None)

    def require(self, name: str, *aliases: str) -> str:
        """The non-empty value of ``name`` (or an alias).

        Raises:
            WmsError: MissingParameterValue.
        """
        value = self.first(name.lower(), *(a.lower() for a in aliases))
        if value is None or not value.strip():
            raise WmsError(
                "MissingParameterValue", f"parameter {name.upper()} is required", name.upper()
            )
        return value.strip()


def negotiate_version(requested: str | None) -> str:
    """The capabilities version to answer for ``VERSION`` (WMS version negotiation)."""
    if not requested:
        return "1.3.0"
    try:
        number = tuple(int(p) for p in requested.strip().split("."))
    except ValueError:
        return "1.3.0"
    return "1.3.0" if number >= (1, 3, 0) else "1.1.1"


def operation_version(params: Params) -> str:
    """The version of a GetMap/GetFeatureInfo/GetLegendGraphic request (default 1.3.0).

    Raises:
        WmsError: InvalidParameterValue for a version this service does not speak.
    """
    text = (params.first("version", "wmtver") or "1.3.0").strip()
    if text == "1.3.0":
        return "1.3.0"
    if text in ("1.1.1", "1.1.0", "1.1"):
        return "1.1.1"
    raise WmsError(
        "InvalidParameterValue", f"VERSION {text!r}: this service speaks 1.3.0 and 1.1.1", "VERSION"
    )


_CRS_ALIASES = {"EPSG:900913": "EPSG:3857", "EPSG:102100": "EPSG:3857", "EPSG:102113": "EPSG:3857"}
_BGCOLOR = re.compile(r"(?:0x|#)([0-9a-fA-F]{6})")
_MAP_FORMATS = {
    "image/png": "png",
    "png": "png",
    "image/png;mode=32bit": "png",
    "image/png;mode=24bit": "png",
    "image/png;mode=8bit": "png8",
    "image/png8": "png8",
    "png8": "png8",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "image/webp": "webp",
    "webp": "webp",
}


def parse_crs(params: Params, version: str) -> str:
    """The request's CRS, upper case ("EPSG:3826", "CRS:84").

    Raises:
        WmsError: MissingParameterValue, or InvalidCRS for a CRS this service does not draw.
    """
    primary, other = ("crs", "srs") if version == "1.3.0" else ("srs", "crs")
    crs = params.require(primary, other).upper()
    crs = _CRS_ALIASES.get(crs, crs)
    if crs not in CRSS_130:
        raise WmsError(
            "InvalidCRS",
            f"{primary.upper()} {crs!r} is not offered; use one of {', '.join(CRSS_130)}",
            primary.upper(),
        )
    return crs


def parse_bbox(params: Params, version: str, crs: str) -> BBox:
    """BBOX as (minx, miny, maxx, maxy) with x first (swapped for 1.3.0 lat/lon CRSs).

    Raises:
        WmsError: MissingParameterValue or InvalidParameterValue.
    """
    text = params.require("bbox")
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise WmsError("InvalidParameterValue", f"BBOX {text!r}: four numbers a,b,c,d", "BBOX")
    if values[0] >= values[2] or values[1] >= values[3]:
        raise WmsError(
            "InvalidParameterValue", f"BBOX {text!r}: minimum must be below maximum", "BBOX"
        )
    if version == "1.3.0" and crs in LATLON_CRSS:
        return values[1], values[0], values[3], values[2]
    return values  # type: ignore[return-value]


def parse_size(params: Params, name: str, default: int | None = None, limit: int = MAX_SIZE) -> int:
    """A pixel size (WIDTH, HEIGHT) in 1..limit.

    Raises:
        WmsError: MissingParameterValue or InvalidParameterValue.
    """
    text = params.get(name)
    if (text is None or not text.strip()) and default is not None:
        return default
    text = params.require(name)
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise WmsError(
            "InvalidParameterValue",
            f"{name.upper()} {text!r}: a whole number of pixels from 1 to {limit}",
            name.upper(),
        )
    return int(text)


def image_format(text: str | None, locator: str = "FORMAT") -> str:
    """The renderer format ("png", "png8", "jpeg", "webp") of a FORMAT value.

    Raises:
        WmsError: InvalidFormat.
    """
    key = re.sub(r"\s+", "", (text or "").lower())
    if key not in _MAP_FORMATS:
        raise WmsError(
            "InvalidFormat",
            f"{locator} {text!r}: one of image/png, image/png; mode=8bit, image/jpeg, image/webp",
            locator,
        )
    return _MAP_FORMATS[key]


def parse_bool(params: Params, name: str) -> bool:
    """A TRUE/FALSE parameter (any case), FALSE when absent.

    Raises:
        WmsError: InvalidParameterValue.
    """
    text = (params.get(name) or "FALSE").strip().upper()
    if text not in ("TRUE", "FALSE"):
        raise WmsError(
            "InvalidParameterValue", f"{name.upper()} {text!r}: TRUE or FALSE", name.upper()
        )
    return text == "TRUE"


def parse_bgcolor(params: Params) -> str:
    """BGCOLOR (0xRRGGBB) as "#rrggbb", white when absent.

    Raises:
        WmsError: InvalidParameterValue.
    """
    text = (params.get("bgcolor") or "0xFFFFFF").strip()
    match = _BGCOLOR.fullmatch(text)
    if not match:
        raise WmsError("InvalidParameterValue", f"BGCOLOR {text!r}: 0xRRGGBB", "BGCOLOR")
    return "#" + match.group(1).lower()


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(","))


# --------------------------------------------------------------------------- typed requests


@dataclass(frozen=True)
class MapParams:
    """The map part of GetMap and GetFeatureInfo, parsed and validated.

    Attributes:
        version: "1.3.0" or "1.1.1".
        layers: layer ids, bottom first.
        styles: style names, one per layer ("" = the layer's default).
        crs: as requested, normalised ("EPSG:3826", "CRS:84", ...).
        bbox: (minx, miny, maxx, maxy) in ``crs`` with x (easting, longitude) first.
        width: pixels.
        height: pixels.
        format: renderer format: "png", "png8", "jpeg", "webp".
        transparent: whether the background is transparent (not for JPEG).
        bgcolor: "#rrggbb".
    """

    version: str
    layers: tuple[str, ...]
    styles: tuple[str, ...]
    crs: str
    bbox: BBox
    width: int
    height: int
    format: str
    transparent: bool
    bgcolor: str

    @property
    def render_crs(self) -> str:
        """The CRS handed to the renderer (CRS:84 is EPSG:4326 with x first)."""
        return "EPSG:4326" if self.crs == "CRS:84" else self.crs

    @property
    def resolution(self) -> tuple[float, float]:
        """Map units per pixel along x and y."""
        minx, miny, maxx, maxy = self.bbox
        return (maxx - minx) / self.width, (maxy - miny) / self.height

    def pixel_centre(self, i: int, j: int) -> tuple[float, float]:
        """The map coordinates (x first) of the centre of pixel column i, row j."""
        rx, ry = self.resolution
        return self.bbox[0] + (i + 0.5) * rx, self.bbox[3] - (j + 0.5) * ry


def parse_styles(params: Params, layers: tuple[str, ...]) -> tuple[str, ...]:
    """STYLES: empty (every default) or one entry per layer.

    Raises:
        WmsError: InvalidParameterValue when the counts differ.
    """
    text = params.get("styles") or ""
    if not text.strip():
        return ("",) * len(layers)
    styles = _names(text)
    if len(styles) != len(layers):
        raise WmsError(
            "InvalidParameterValue",
            f"STYLES has {len(styles)} entries for {len(layers)} LAYERS; give one per layer "
            "or leave it empty",
            "STYLES",
        )
    return styles


def parse_map(
    params: Params, version: str, default_layer: str | None, need_format: bool = True
) -> MapParams:
    """The :class:`MapParams` of a GetMap (or the map part of a GetFeatureInfo).

    Raises:
        WmsError: the first problem found, with its code and locator.
    """
    if params.first("sld", "sld_body"):
        raise WmsError(
            "InvalidParameterValue",
            "SLD and SLD_BODY are not supported: each layer is drawn with its own style",
            "SLD_BODY",
        )
    if default_layer and not (params.get("layers") or "").strip():
        layers: tuple[str, ...] = (default_layer,)
    else:
        layers = _names(params.require("layers"))
    if len(layers) > LAYER_LIMIT:
        raise WmsError(
            "InvalidParameterValue",
            f"{len(layers)} LAYERS: at most {LAYER_LIMIT} in one map",
            "LAYERS",
        )
    crs = parse_crs(params, version)
    fmt = params.get("format")
    return MapParams(
        version=version,
        layers=layers,
        styles=parse_styles(params, layers),
        crs=crs,
        bbox=parse_bbox(params, version, crs),
        width=parse_size(params, "width"),
        height=parse_size(params, "height"),
        format=image_format(params.require("format") if need_format else fmt or "image/png"),
        transparent=parse_bool(params, "transparent"),
        bgcolor=parse_bgcolor(params),
    )


@dataclass(frozen=True)
class FeatureInfoParams:
    """A GetFeatureInfo: the map, the layers to query, the pixel and the output format.

    Attributes:
        map: the map the client shows.
        query_layers: layer ids to query (each one of ``map.layers``).
        info_format: a key of :data:`tiles.features.ENCODERS`.
        i: pixel column (0 = left).
        j: pixel row (0 = top).
        feature_count: at most this many features per layer.
        buffer: tolerance in pixels for points and lines (None = from the layer's style).
    """

    map: MapParams
    query_layers: tuple[str, ...]
    info_format: str
    i: int
    j: int
    feature_count: int
    buffer: float | None


def _pixel(params: Params, names: tuple[str, str], size: int) -> int:
    name = names[0].upper()
    text = params.require(*names)
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        raise WmsError("InvalidPoint", f"{name} {text!r} is not a pixel position", name) from None
    if not 0 <= value < size:
        raise WmsError("InvalidPoint", f"{name}={value} is outside the map (0..{size - 1})", name)
    return value


def _count(params: Params) -> int:
    text = (params.get("feature_count") or "1").strip()
    if not text.isdigit() or int(text) < 1:
        raise WmsError(
            "InvalidParameterValue", f"FEATURE_COUNT {text!r}: a positive number", "FEATURE_COUNT"
        )
    return min(int(text), MAX_FEATURE_COUNT)


def _buffer(params: Params) -> float | None:
    text = params.get("buffer")
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise WmsError("InvalidParameterValue", f"BUFFER {text!r}: 0 to 100 pixels", "BUFFER")
    return value


def info_format(text: str | None) -> str:
    """The encoder key of an INFO_FORMAT value (text/plain when absent).

    Raises:
        WmsError: InvalidFormat.
    """
    key = re.sub(r"\s+", "", (text or "text/plain").lower()).split(";")[0]
    if key not in ENCODERS:
        raise WmsError(
            "InvalidFormat",
            f"INFO_FORMAT {text!r}: one of {', '.join(sorted(ENCODERS))}",
            "INFO_FORMAT",
        )
    return key


def parse_feature_info(
    params: Params, version: str, default_layer: str | None
) -> FeatureInfoParams:
    """The :class:`FeatureInfoParams` of a GetFeatureInfo.

    Raises:
        WmsError: the first problem found.
    """
    map_params = parse_map(params, version, default_layer, need_format=False)
    text = params.get("query_layers") or ""
    if default_layer and not text.strip():
        query = (default_layer,)
    else:
        query = _names(params.require("query_layers"))
    for name in query:
        if name not in map_params.layers:
            raise WmsError(
                "LayerNotDefined", f"QUERY_LAYERS {name!r} is not one of LAYERS", "QUERY_LAYERS"
            )
    ij = (("i", "x"), ("j", "y")) if version == "1.3.0" else (("x", "i"), ("y", "j"))
    return FeatureInfoParams(
        map=map_params,
        query_layers=query,
        info_format=info_format(params.get("info_format")),
        i=_pixel(params, ij[0], map_params.width),
        j=_pixel(params, ij[1], map_params.height),
        feature_count=_count(params),
        buffer=_buffer(params),
    )


@dataclass(frozen=True)
class LegendParams:
    """A GetLegendGraphic: one layer's style as swatches with labels.

    Attributes:
        layer: the layer id.
        style: the style name ("" = default).
        format: renderer format.
        width: image width in pixels.
        height: height of one legend row in pixels.
    """

    layer: str
    style: str
    format: str
    width: int
    height: int


def parse_legend(params: Params, default_layer: str | None) -> LegendParams:
    """The :class:`LegendParams` of a GetLegendGraphic.

    Raises:
        WmsError: the first problem found.
    """
    text = params.get("layer") or ""
    layer = default_layer if default_layer and not text.strip() else params.require("layer")
    return LegendParams(
        layer=layer,
        style=(params.get("style") or "").strip(),
        format=image_format(params.get("format") or "image/png"),
        width=parse_size(params, "width", LEGEND_WIDTH, 1024),
        height=parse_size(params, "height", LEGEND_ROW, 256),
    )


# --------------------------------------------------------------------------- error reports


@dataclass(frozen=True)
class ErrorMode:
    """How to report an error: the version, the EXCEPTIONS mode and the image it replaces."""

    version: str
    exceptions: str  # "xml", "inimage" or "blank"
    width: int = 256
    height: int = 256
    format: str = "png"
    transparent: bool = False
    bgcolor: str = "#ffffff"


_EXCEPTIONS = {
    "xml": "xml",
    "application/vnd.ogc.se_xml": "xml",
    "text/xml": "xml",
    "inimage": "inimage",
    "application/vnd.ogc.se_inimage": "inimage",
    "blank": "blank",
    "application/vnd.ogc.se_blank": "blank",
}


def _lenient[T](parse: Callable[[], T], default: T) -> T:
    try:
        return parse()
    except WmsError:
        return default


def error_mode(params: Params) -> ErrorMode:
    """The error report a request asked for, read leniently (it must never fail itself)."""
    if (params.get("request") or "").strip().lower() in ("getcapabilities", "capabilities"):
        version = negotiate_version(params.first("version", "wmtver"))
    else:
        version = _lenient(lambda: operation_version(params), "1.3.0")
    exceptions = _EXCEPTIONS.get((params.get("exceptions") or "xml").strip().lower(), "xml")
    return ErrorMode(
        version=version,
        exceptions=exceptions,
        width=_lenient(lambda: parse_size(params, "width", 256), 256),
        height=_lenient(lambda: parse_size(params, "height", 256), 256),
        format=_lenient(lambda: image_format(params.get("format") or "png"), "png"),
        transparent=_lenient(lambda: parse_bool(params, "transparent"), False),
        bgcolor=_lenient(lambda: parse_bgcolor(params), "#ffffff"),
    )


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return escape(_XML_INVALID.sub("?", text))


def exception_report(error: WmsError, version: str) -> tuple[bytes, str]:
    """The ServiceExceptionReport XML of ``error`` in ``version``, with its media type."""
    if version == "1.1.1":
        code = CODES_111.get(error.code, error.code)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/'
            'exception_1_1_1.dtd">\n<ServiceExceptionReport version="1.1.1">\n'
            f"<ServiceException code={quoteattr(code)}>{_xml_text(error.message)}"
            "</ServiceException>\n</ServiceExceptionReport>\n"
        )
        return body.encode(), "application/vnd.ogc.se_xml; charset=utf-8"
    locator = f" locator={quoteattr(error.locator)}" if error.locator else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/ogc '
        'http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">\n'
        f"<ServiceException code={quoteattr(error.code)}{locator}>{_xml_text(error.message)}"
        "</ServiceException>\n</ServiceExceptionReport>\n"
    )
    return body.encode(), "text/xml; charset=utf-8"


_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in _FONT_FILES:
        if Path(path).exists():
            return ImageFont.truetype(path, 12)
    return ImageFont.load_default()


def exception_image(error: WmsError | None, mode: ErrorMode) -> bytes:
    """The map-sized image of an error: its text (INIMAGE) or nothing at all (BLANK)."""
    opaque = mode.format == "jpeg" or not mode.transparent
    background = mode.bgcolor if opaque else (0, 0, 0, 0)
    image = Image.new("RGBA", (mode.width, mode.height), background)
    if error is not None:
        draw = ImageDraw.Draw(image)
        columns = max(8, mode.width // 7)
        code = CODES_111.get(error.code, error.code) if mode.version == "1.1.1" else error.code
        text = "\n".join(textwrap.wrap(f"{code}: {error.message}", columns))
        draw.multiline_text((4, 4), text, fill=(200, 0, 0, 255), font=_font(), spacing=3)
    out = io.BytesIO()
    if mode.format == "jpeg":
        image.convert("RGB").save(out, "JPEG", quality=85)
    elif mode.format == "webp":
        image.save(out, "WEBP", quality=85)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def exception_response(error: WmsError, mode: ErrorMode, image: bool = False) -> Response:
    """The response for ``error``: the version's XML report, or an image on GetMap.

    Args:
        error: what went wrong.
        mode: the version and EXCEPTIONS mode of the request.
        image: whether the request was for an image (GetMap), where INIMAGE/BLANK apply.
    """
    if image and mode.exceptions in ("inimage", "blank") and error.status < 500:
        shown = error if mode.exceptions == "inimage" else None
        return Response(exception_image(shown, mode), media_type=FORMATS[mode.format][0])
    body, media_type = exception_report(error, mode.version)
    return Response(body, status_code=error.status, media_type=media_type)


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Context:
    """What an operation works with: the catalog snapshot, the data home and the service."""

    snapshot: Snapshot
    home: Path
    base_url: str
    service: Service

    @property
    def default_layer(self) -> str | None:
        """The layer a one-layer service (``/wms/{id}``) answers for when none is named."""
        return self.service.layer_id

    def layer(self, name: str, style: str = "") -> RenderLayer:
        """The drawable layer ``name`` of this service, checking the style name.

        Raises:
            WmsError: LayerNotDefined or StyleNotDefined.
        """
        layer = self.snapshot.layers.get(name)
        if layer is None or not self.service.accepts(layer):
            raise _layer_missing(name)
        try:
            drawable = render_layer(self.home, self.snapshot, name)
        except LayerNotServed as e:
            raise _layer_missing(name, str(e).split(": ", 1)[-1]) from None
        if style and style.lower() != STYLE_NAME:
            raise WmsError(
                "StyleNotDefined",
                f"layer {name!r} has no style {style!r}; its one style is {STYLE_NAME!r}",
                "STYLES",
            )
        return drawable


def get_capabilities(ctx: Context, params: Params) -> Response:
    """The capabilities document of the service, in the negotiated version."""
    version = negotiate_version(params.first("version", "wmtver"))
    sequence = (params.get("updatesequence") or "").strip()
    if sequence and sequence == ctx.snapshot.stamp:
        raise WmsError(
            "CurrentUpdateSequence",
            f"UPDATESEQUENCE {sequence!r} is the current one: the capabilities are unchanged",
            "UPDATESEQUENCE",
        )
    doc = capabilities(ctx.snapshot, version, ctx.service, ctx.base_url)
    fmt = (params.get("format") or "").strip().lower()
    media = "application/vnd.ogc.wms_xml" if version == "1.1.1" else "text/xml"
    if fmt == "text/xml":
        media = "text/xml"
    headers = {"Cache-Control": "public, max-age=60", "ETag": f'"{ctx.snapshot.stamp}-{version}"'}
    return Response(doc, media_type=f"{media}; charset=utf-8", headers=headers)


def _draw(call: Callable[[], bytes], what: str) -> bytes:
    """Run a renderer call, turning its failures into a NoApplicableCode report."""
    try:
        return call()
    except (RenderError, RuntimeError, OSError) as e:
        log.exception("WMS %s failed", what)
        raise WmsError("NoApplicableCode", f"{what} failed: {e}") from None


def get_map(ctx: Context, params: Params, version: str) -> Response:
    """The map image of a GetMap."""
    req = parse_map(params, version, ctx.default_layer)
    layers = tuple(ctx.layer(n, s) for n, s in zip(req.layers, req.styles, strict=True))
    request = MapRequest(
        layers=layers,
        bbox=req.bbox,
        crs=req.render_crs,
        width=req.width,
        height=req.height,
        format=req.format,
        transparent=req.transparent,
        bgcolor=req.bgcolor,
    )
    image = _draw(lambda: get_renderer().render(request), "GetMap")
    return Response(image, media_type=FORMATS[req.format][0], headers={"Cache-Control": CACHE_MAPS})


def tolerance(drawable: RenderLayer) -> float:
    """Pixels a click may miss a point or line by: half its symbol plus 3 (0 for polygons).

    A layer of mixed geometry types takes the larger of the point and line tolerances.
    """
    kind = geometry_kind(drawable.version.geometry_type)
    point = drawable.style.marker_size / 2 + 3
    line = drawable.style.stroke_width / 2 + 3
    if kind == "point":
        return point
    if kind == "line":
        return line
    return 0.0 if kind == "polygon" else max(point, line)


def get_feature_info(ctx: Context, params: Params, version: str) -> Response:
    """The features under a pixel of the map, in INFO_FORMAT."""
    req = parse_feature_info(params, version, ctx.default_layer)
    styles = dict(zip(req.map.layers, req.map.styles, strict=True))
    targets = [ctx.layer(name, styles[name]) for name in req.query_layers]
    for drawable in targets:
        if drawable.version.kind != "vector":
            raise WmsError(
                "LayerNotQueryable",
                f"layer {drawable.layer.id!r} is a raster; only vector layers are queryable",
                "QUERY_LAYERS",
            )
    x, y = req.map.pixel_centre(req.i, req.j)
    scale = map_scale(req.map.bbox, req.map.render_crs, req.map.width)
    found: list[Feature] = []
    for drawable in targets:
        if not drawable.style.visible_at(scale):
            continue  # not drawn at this scale, so nothing to click on
        query = PointQuery(
            x=x,
            y=y,
            crs=req.map.render_crs,
            resolution=req.map.resolution,
            tolerance=tolerance(drawable) if req.buffer is None else req.buffer,
        )
        try:
            found += features_at(drawable.source, drawable.layer.id, query, req.feature_count)
        except TilesError as e:
            log.exception("GetFeatureInfo on %s failed", drawable.layer.id)
            raise WmsError("NoApplicableCode", str(e)) from None
    encoder, media = ENCODERS[req.info_format]
    queried = [QueriedLayer(d.layer.id, d.layer.title) for d in targets]
    body = encoder(found, queried).encode("utf-8")
    return Response(body, media_type=f"{media}; charset=utf-8")


def get_legend_graphic(ctx: Context, params: Params, version: str) -> Response:
    """A legend image of one layer's style."""
    del version  # the same legend in both versions
    req = parse_legend(params, ctx.default_layer)
    drawable = ctx.layer(req.layer, req.style)
    image = _draw(
        lambda: get_renderer().legend(drawable, req.width, req.height, req.format),
        "GetLegendGraphic",
    )
    return Response(image, media_type=FORMATS[req.format][0], headers={"Cache-Control": CACHE_MAPS})


#: Operation (lower case, with the WMS 1.0 names) → handler and whether it answers an image.
OPERATIONS: dict[str, tuple[Callable[..., Response], bool]] = {
    "getmap": (get_map, True),
    "map": (get_map, True),
    "getfeatureinfo": (get_feature_info, False),
    "feature_info": (get_feature_info, False),
    "getlegendgraphic": (get_legend_graphic, False),
}


def _check_service(ctx: Context, params: Params) -> None:
    """Reject a SERVICE other than WMS and a service that publishes nothing."""
    service = (params.get("service") or "WMS").strip().upper()
    if service != "WMS":
        raise WmsError("InvalidParameterValue", f"SERVICE {service!r}: this is WMS", "SERVICE")
    if ctx.service.layer_id is not None:
        try:
            ctx.layer(ctx.service.layer_id)
        except WmsError as e:
            raise WmsError(e.code, e.message, e.locator, status=404) from None
    elif not ctx.service.layers(ctx.snapshot):
        where = "category" if ctx.service.category else "agency"
        layers = ctx.snapshot.layers.values()
        if where == "category":
            known = {lyr.category for lyr in layers}
        else:
            known = {lyr.agency.title for lyr in layers}
        value = ctx.service.category or ctx.service.agency
        raise WmsError(
            "InvalidParameterValue",
            f"{where} {value!r} has no published layers; known: {', '.join(sorted(known - {''}))}",
            where,
        )


def handle(request: Request, params: Params, service: Service) -> Response:
    """Answer one WMS request; every WMS error becomes the version's exception report."""
    mode = error_mode(params)
    image = False
    try:
        operation = params.require("request").lower()
        exceptions = params.get("exceptions")
        if exceptions and exceptions.strip().lower() not in _EXCEPTIONS:
            raise WmsError(
                "InvalidParameterValue",
                f"EXCEPTIONS {exceptions!r}: XML, INIMAGE or BLANK",
                "EXCEPTIONS",
            )
        image = OPERATIONS.get(operation, (None, False))[1]
        ctx = Context(
            snapshot=request.app.state.view.snapshot(),
            home=Path(request.app.state.settings.home),
            base_url=str(request.base_url).rstrip("/"),
            service=service,
        )
        _check_service(ctx, params)
        if operation in ("getcapabilities", "capabilities"):
            return get_capabilities(ctx, params)
        if operation not in OPERATIONS:
            raise WmsError(
                "OperationNotSupported",
                f"REQUEST {operation!r}: one of GetCapabilities, GetMap, GetFeatureInfo, "
                "GetLegendGraphic",
                "REQUEST",
            )
        handler = OPERATIONS[operation][0]
        return handler(ctx, params, operation_version(params))
    except WmsError as e:
        return exception_response(e, mode, image)


@router.get("/wms")
def wms(request: Request) -> Response:
    """WMS 1.3.0 / 1.1.1 over every published layer; ``?category=`` or ``?agency=`` narrow it."""
    params = Params(request.query_params.multi_items())
    service = Service(
        category=(params.get("category") or "").strip() or None,
        agency=(params.get("agency") or "").strip() or None,
    )
    return handle(request, params, service)


@router.get("/wms/{layer_id}")
def wms_layer(request: Request, layer_id: str) -> Response:
    """A one-layer WMS: the same protocol, publishing only ``layer_id``."""
    params = Params(request.query_params.multi_items())
    return handle(request, params, Service(layer_id=layer_id))
