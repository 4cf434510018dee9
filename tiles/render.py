"""The map renderer shared by WMS GetMap, WMTS raster tiles and XYZ png/webp tiles.

One interface (:class:`Renderer`), registered by name; the one engine is Mapnik (the PyPI
wheel carries its OGR/GDAL/PostGIS input plugins and PROJ). Why Mapnik, in docs/rendering.md:
it is a cartographic renderer (antialiasing, label placement with collision avoidance and
halos, CJK shaping through HarfBuzz, reprojection per layer, GPKG read through its R-tree),
where cairo or skia would leave us to write all of that, and MapServer's mapscript has no
working wheel for Python 3.13.

Requests are typed (:class:`MapRequest`); the caller (a protocol) has already resolved
layers, styles, the CRS and the axis order: ``bbox`` is always (minx, miny, maxx, maxy) in
the CRS's easting/northing (x = longitude for geographic CRSs).
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalog.model import Layer, LayerVersion
from catalog.style import Style, geometry_kind
from tiles.errors import RenderError

#: Output formats: name → (media type, mapnik format string).
FORMATS = {
    "png": ("image/png", "png32"),
    "png8": ("image/png", "png8:m=h"),
    "jpeg": ("image/jpeg", "jpeg85"),
    "webp": ("image/webp", "webp:quality=85"),
}
#: CRSs every renderer draws in, as EPSG codes (CRS:84 is EPSG:4326 in lon/lat order).
CRSS = ("EPSG:3826", "EPSG:3825", "EPSG:3857", "EPSG:4326", "EPSG:3824")
MAX_SIZE = 4096
CJK_FONT_DIR = "/usr/share/fonts/opentype/noto"
_METERS_PER_DEGREE = 6378137 * 2 * math.pi / 360
_PIXEL_M = 0.00028  # OGC standardized rendering pixel: 0.28 mm


@dataclass(frozen=True)
class RenderLayer:
    """A layer version drawn with a style; ``source`` is the file the renderer reads."""

    layer: Layer
    version: LayerVersion
    style: Style
    source: Path  # GPKG (vector) or display-ready GeoTIFF (raster), absolute


@dataclass(frozen=True)
class MapRequest:
    """One map image to draw."""

    layers: tuple[RenderLayer, ...]
    bbox: tuple[float, float, float, float]  # minx, miny, maxx, maxy in crs, x first
    crs: str  # "EPSG:3826", ...
    width: int
    height: int
    format: str = "png"  # a key of FORMATS
    transparent: bool = True
    bgcolor: str = "#ffffff"
    buffer_size: int = 0  # pixels drawn around the map, so markers and labels at tile edges match


def scale_denominator(bbox: tuple[float, float, float, float], crs: str, width: int) -> float:
    """The OGC scale denominator of a map (0.28 mm pixels), as WMS/WMTS/SLD define it."""
    span = bbox[2] - bbox[0]
    if crs in ("EPSG:4326", "EPSG:3824", "CRS:84"):
        span *= _METERS_PER_DEGREE
    return span / width / _PIXEL_M


class Renderer(Protocol):
    """What draws maps and legends."""

    name: str

    def render(self, request: MapRequest) -> bytes:
        """The encoded image (``request.format``) of the map."""
        ...

    def legend(self, layer: RenderLayer, width: int, height: int, fmt: str) -> bytes:
        """A legend image for one layer's style: a swatch per class, with its label."""
        ...


_RENDERERS: dict[str, type] = {}


def register(name: str):
    """Register a renderer class under ``name``."""

    def deco(cls: type) -> type:
        _RENDERERS[name] = cls
        cls.name = name
        return cls

    return deco


_instances: dict[str, Renderer] = {}
_instances_lock = threading.Lock()


def get_renderer(name: str = "mapnik") -> Renderer:
    """The process-wide renderer registered as ``name``."""
    with _instances_lock:
        if name not in _instances:
            if name not in _RENDERERS:
                raise RenderError(f"no renderer {name!r}; known: {sorted(_RENDERERS)}")
            _instances[name] = _RENDERERS[name]()
        return _instances[name]


# --------------------------------------------------------------------------- Mapnik


def _x(value: str) -> str:
    return html.escape(value, quote=True)


def _field(name: str) -> str:
    # mapnik expression attribute reference; ] and ' cannot appear inside
    if "]" in name or "'" in name:
        raise RenderError(f"attribute {name!r} cannot be used in a style")
    return f"[{name}]"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_FONTSET = "cjk"


@dataclass(frozen=True)
class _Rule:
    filter: str  # mapnik expression or "" (else-filter handled by caller)
    color: str | None  # overrides fill (polygon/point) or stroke (line)
    label: str  # legend text
    else_filter: bool = False


def _rules(style: Style) -> list[_Rule]:
    if style.categorized:
        c = style.categorized
        rules = [
            _Rule(f"{_field(c.field)} = {_literal(v)}", colour, v) for v, colour in c.values.items()
        ]
        if c.other:
            rules.append(_Rule("", c.other, "其他 other", else_filter=True))
        return rules
    if style.graduated:
        g = style.graduated
        edges = [None, *g.breaks, None]
        rules = []
        for i, colour in enumerate(g.colors):
            lo, hi = edges[i], edges[i + 1]
            parts = []
            if lo is not None:
                parts.append(f"{_field(g.field)} >= {lo!r}")
            if hi is not None:
                parts.append(f"{_field(g.field)} < {hi!r}")
            text = f"{'' if lo is None else f'{lo:g}'} – {'' if hi is None else f'{hi:g}'}"
            rules.append(_Rule(" and ".join(parts), colour, text.strip()))
        return rules
    return [_Rule("", None, "")]


def _scale_attrs(style: Style) -> str:
    out = ""
    if style.min_scale:
        out += f"<MinScaleDenominator>{style.min_scale}</MinScaleDenominator>"
    if style.max_scale:
        out += f"<MaxScaleDenominator>{style.max_scale}</MaxScaleDenominator>"
    return out


def _symbolizers(kind: str, style: Style, colour: str | None) -> str:
    stroke = style.stroke or "#333333"
    if kind == "polygon":
        fill = colour or style.fill or "#8ecae6"
        out = f'<PolygonSymbolizer fill="{fill}" fill-opacity="{style.fill_opacity}" gamma="0.7"/>'
        if style.stroke_width > 0 and style.stroke:
            out += (
                f'<LineSymbolizer stroke="{stroke}" stroke-width="{style.stroke_width}" '
                'stroke-linejoin="round"/>'
            )
        return out
    if kind == "line":
        return (
            f'<LineSymbolizer stroke="{colour or stroke}" stroke-width="{style.stroke_width}" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
    fill = colour or style.fill or "#e63946"
    size = style.marker_size
    outline = style.stroke or "#ffffff"
    # a circle is Mapnik's own ellipse; the other symbols are small SVGs
    file = "" if style.marker == "circle" else f' file="{_svg_marker(style.marker)}"'
    return (
        f'<MarkersSymbolizer{file} fill="{fill}" width="{size}" height="{size}" '
        f'stroke="{outline}" stroke-width="{style.stroke_width if style.stroke else 0.8}" '
        'allow-overlap="true" ignore-placement="true"/>'
    )


_SVG_PATHS = {
    "square": "M1,1 H19 V19 H1 Z",
    "triangle": "M10,1 L19,18 H1 Z",
    "star": "M10,1 L12.6,7.2 19.5,7.6 14.2,12 15.9,18.6 10,15 4.1,18.6 5.8,12 0.5,7.6 7.4,7.2 Z",
    "cross": "M7,0 H13 V7 H20 V13 H13 V20 H7 V13 H0 V7 H7 Z",
}
_svg_files: dict[str, str] = {}


def _svg_marker(name: str) -> str:
    if name not in _svg_files:
        from tempfile import gettempdir

        path = Path(gettempdir()) / f"geoportal-marker-{name}.svg"
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">'
            f'<path d="{_SVG_PATHS[name]}" fill="#000"/></svg>'
        )
        os.replace(part, path)  # other processes never read half a marker
        _svg_files[name] = str(path)
    return _svg_files[name]


def _label(kind: str, style: Style) -> str:
    if not style.label:
        return ""
    placement = "line" if kind == "line" else ("interior" if kind == "polygon" else "point")
    dy = ' dy="-8"' if kind == "point" else ""
    return (
        f'<TextSymbolizer fontset-name="{_FONTSET}" size="{style.label_size}" '
        f'fill="{style.label_color}" halo-fill="#ffffff" halo-radius="1.5" '
        f'placement="{placement}"{dy} avoid-edges="false" minimum-padding="4">'
        f"{_x(_field(style.label))}</TextSymbolizer>"
    )


#: Mapnik's geometry-type filter values for our geometry kinds.
_GEOMETRY_TYPE = {"polygon": "polygon", "line": "linestring", "point": "point"}


def _style_xml(name: str, kind: str, style: Style) -> str:
    """One Mapnik style; ``kind`` "" (a layer of mixed geometry types) draws each type its way."""
    if kind:
        return _single_kind_style(name, kind, style)
    plain = _rules(style)
    listed = [r.filter for r in plain if r.filter]
    rules = []
    for each in ("polygon", "line", "point"):
        of_kind = f"[mapnik::geometry_type] = {_GEOMETRY_TYPE[each]}"
        for rule in plain:
            condition = rule.filter
            if rule.else_filter and listed:  # explicit: ElseFilter would cross geometry types
                condition = "not (" + " or ".join(f"({f})" for f in listed) + ")"
            where = f"({condition}) and {of_kind}" if condition else of_kind
            body = _symbolizers(each, style, rule.color)
            rules.append(f"<Rule>{_scale_attrs(style)}<Filter>{_x(where)}</Filter>{body}</Rule>")
        if style.label:
            label = f"<Filter>{_x(of_kind)}</Filter>{_label(each, style)}"
            rules.append(f"<Rule>{_scale_attrs(style)}{label}</Rule>")
    return f'<Style name="{_x(name)}" opacity="{style.opacity}">{"".join(rules)}</Style>'


def _single_kind_style(name: str, kind: str, style: Style) -> str:
    rules = []
    for rule in _rules(style):
        head = "<ElseFilter/>" if rule.else_filter else ""
        if rule.filter:
            head = f"<Filter>{_x(rule.filter)}</Filter>"
        body = _symbolizers(kind, style, rule.color)
        rules.append(f"<Rule>{_scale_attrs(style)}{head}{body}</Rule>")
    if style.label:
        rules.append(f"<Rule>{_scale_attrs(style)}{_label(kind, style)}</Rule>")
    return f'<Style name="{_x(name)}" opacity="{style.opacity}">{"".join(rules)}</Style>'


def _raster_style_xml(name: str, style: Style) -> str:
    return (
        f'<Style name="{_x(name)}" opacity="{style.opacity}"><Rule>{_scale_attrs(style)}'
        '<RasterSymbolizer scaling="bilinear"/></Rule></Style>'
    )


def _extent(bbox: tuple[float, float, float, float] | None) -> str:
    """The datasource extent, padded.

    Mapnik clips queries to the OGR layer extent, which the GPKG stores rounded: features
    lying exactly on the layer's edge would never be drawn.
    """
    if bbox is None:
        return ""
    pad = 1e-5
    box = f"{bbox[0] - pad},{bbox[1] - pad},{bbox[2] + pad},{bbox[3] + pad}"
    return f'<Parameter name="extent">{box}</Parameter>'


def _srs(crs: str) -> str:
    return "epsg:4326" if crs == "CRS:84" else crs.lower()


def map_xml(layers: tuple[RenderLayer, ...], crs: str) -> str:
    """The Mapnik XML of a map drawing ``layers`` (bottom first) in ``crs``."""
    styles, lyrs = [], []
    for i, item in enumerate(layers):
        name = f"s{i}"
        if item.version.kind == "raster":
            styles.append(_raster_style_xml(name, item.style))
            ds = (
                '<Parameter name="type">gdal</Parameter>'
                f'<Parameter name="file">{_x(str(item.source))}</Parameter>'
            )
            srs = item.version.source_crs.lower() or "epsg:3826"
        else:
            kind = geometry_kind(item.version.geometry_type)  # "" for mixed types
            styles.append(_style_xml(name, kind, item.style))
            ds = (
                '<Parameter name="type">ogr</Parameter>'
                f'<Parameter name="file">{_x(str(item.source))}</Parameter>'
                '<Parameter name="layer">features</Parameter>'
                f"{_extent(item.version.bbox)}"
            )
            srs = "epsg:4326"
        lyrs.append(
            f'<Layer name="l{i}" srs="{srs}"><StyleName>{name}</StyleName>'
            f"<Datasource>{ds}</Datasource></Layer>"
        )
    fontset = (
        f'<FontSet name="{_FONTSET}"><Font face-name="Noto Sans CJK TC Regular"/>'
        '<Font face-name="DejaVu Sans Book"/></FontSet>'
    )
    return f'<Map srs="{_srs(crs)}">{fontset}{"".join(styles)}{"".join(lyrs)}</Map>'


def mapnik_module():
    """Import Mapnik without letting it break PROJ and GDAL for the rest of the process.

    The mapnik wheel points PROJ_LIB and GDAL_DATA at folders of its own (without proj.db)
    unless they are set; rasterio and pyproj in this process and in child processes then fail
    on EPSG codes. Setting them to pyproj's and rasterio's data first keeps every library on
    complete data (Mapnik draws identically with them).
    """
    if "mapnik" not in sys.modules:
        import pyproj.datadir
        import rasterio

        proj = pyproj.datadir.get_data_dir()
        os.environ.setdefault("PROJ_LIB", proj)
        os.environ.setdefault("PROJ_DATA", proj)
        gdal_data = Path(rasterio.__file__).parent / "gdal_data"
        if gdal_data.is_dir():
            os.environ.setdefault("GDAL_DATA", str(gdal_data))
    import mapnik

    return mapnik


def _register_fonts() -> None:
    mapnik = mapnik_module()

    # Debian's fonts-noto-cjk (installed by scripts/demo and scripts/test); DejaVu ships
    # inside the mapnik wheel and is the fallback for Latin text.
    if Path(CJK_FONT_DIR).is_dir():
        mapnik.register_fonts(CJK_FONT_DIR)


@register("mapnik")
class MapnikRenderer:
    """Mapnik maps built once per (layers, styles, CRS) and kept per thread.

    A Mapnik Map is not thread-safe, and building one opens every datasource; keeping the
    last few per thread makes a request cost only the drawing itself.
    """

    name = "mapnik"
    CACHE = 32

    def __init__(self) -> None:
        _register_fonts()
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(os.cpu_count() or 1)

    def _map(self, layers: tuple[RenderLayer, ...], crs: str):
        mapnik = mapnik_module()
        xml = map_xml(layers, crs)
        key = hashlib.sha1(xml.encode()).hexdigest()
        cache: OrderedDict = getattr(self._local, "maps", None) or OrderedDict()
        self._local.maps = cache
        m = cache.get(key)
        if m is None:
            m = mapnik.Map(256, 256)
            try:
                mapnik.load_map_from_string(m, xml)
            except RuntimeError as e:
                raise RenderError(f"cannot build the map: {e}") from None
            cache[key] = m
            while len(cache) > self.CACHE:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return m

    def render(self, request: MapRequest) -> bytes:
        """Draw the map and encode it."""
        mapnik = mapnik_module()

        if request.format not in FORMATS:
            raise RenderError(f"format {request.format!r}: one of {sorted(FORMATS)}")
        m = self._map(request.layers, request.crs)
        m.resize(request.width, request.height)
        m.buffer_size = request.buffer_size
        if request.transparent and request.format != "jpeg":
            m.background = mapnik.Color(0, 0, 0, 0)
        else:
            m.background = mapnik.Color(request.bgcolor)
        m.aspect_fix_mode = mapnik.aspect_fix_mode.RESPECT  # WMS: stretch, never grow the bbox
        m.zoom_to_box(mapnik.Box2d(*request.bbox))
        image = mapnik.Image(request.width, request.height)
        with self._slots:  # more maps at once than cores only makes every one of them late
            mapnik.render(m, image)
        return image.to_string(FORMATS[request.format][1])

    def legend(self, layer: RenderLayer, width: int, height: int, fmt: str) -> bytes:
        """Swatches for each class of the style (or one swatch), with their labels."""
        mapnik = mapnik_module()

        kind = (
            "raster"
            if layer.version.kind == "raster"
            else geometry_kind(layer.version.geometry_type)
        )
        rules = _rules(layer.style) if kind != "raster" else []
        rows = [(r.color, r.label or layer.layer.title) for r in rules] or [
            (None, layer.layer.title)
        ]
        row_h = max(height, 20)
        m = mapnik.Map(width, row_h * len(rows))
        m.background = mapnik.Color(255, 255, 255, 0 if fmt != "jpeg" else 255)
        xml = _legend_xml(kind, layer.style, rows, row_h)
        mapnik.load_map_from_string(m, xml)
        m.zoom_to_box(mapnik.Box2d(0, 0, width, row_h * len(rows)))
        image = mapnik.Image(m.width, m.height)
        mapnik.render(m, image)
        return image.to_string(FORMATS.get(fmt, FORMATS["png"])[1])


def _legend_xml(kind: str, style: Style, rows: list[tuple[str | None, str]], row_h: int) -> str:
    """A tiny map in pixel coordinates: one swatch geometry and one label per row."""
    import json

    features = []
    n = len(rows)
    for i, (colour, text) in enumerate(rows):
        y0 = (n - 1 - i) * row_h + 4
        y1 = y0 + row_h - 8
        if kind == "point":
            geom = {"type": "Point", "coordinates": [12, (y0 + y1) / 2]}
        elif kind == "line":
            geom = {"type": "LineString", "coordinates": [[3, y0 + 2], [21, y1 - 2]]}
        else:
            ring = [[3, y0], [21, y0], [21, y1], [3, y1], [3, y0]]
            geom = {"type": "Polygon", "coordinates": [ring]}
        features.append(
            {
                "type": "Feature",
                "geometry": geom,
                "properties": {"c": colour or "", "t": text, "ty": (y0 + y1) / 2},
            }
        )
    swatch_style = style.model_copy(update={"categorized": None, "graduated": None, "label": None})
    rules = []
    for colour in {c for c, _ in rows}:
        filt = f"<Filter>[c] = {_x(_literal(colour or ''))}</Filter>"
        rules.append(f"<Rule>{filt}{_symbolizers(kind or 'polygon', swatch_style, colour)}</Rule>")
    text_features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [28, f["properties"]["ty"]]},
            "properties": {"t": f["properties"]["t"]},
        }
        for f in features
    ]
    text_rule = (
        f'<Rule><TextSymbolizer fontset-name="{_FONTSET}" size="11" fill="#222222" '
        'horizontal-alignment="right" vertical-alignment="middle" allow-overlap="true">'
        "[t]</TextSymbolizer></Rule>"
    )
    return (
        '<Map srs="epsg:3857">'
        f'<FontSet name="{_FONTSET}"><Font face-name="Noto Sans CJK TC Regular"/>'
        '<Font face-name="DejaVu Sans Book"/></FontSet>'
        f'<Style name="sw">{"".join(rules)}</Style><Style name="tx">{text_rule}</Style>'
        '<Layer name="sw" srs="epsg:3857"><StyleName>sw</StyleName><Datasource>'
        '<Parameter name="type">geojson</Parameter><Parameter name="inline">'
        f"{_x(json.dumps({'type': 'FeatureCollection', 'features': features}))}"
        "</Parameter></Datasource></Layer>"
        '<Layer name="tx" srs="epsg:3857"><StyleName>tx</StyleName><Datasource>'
        '<Parameter name="type">geojson</Parameter><Parameter name="inline">'
        f"{_x(json.dumps({'type': 'FeatureCollection', 'features': text_features}))}"
        "</Parameter></Datasource></Layer></Map>"
    )
