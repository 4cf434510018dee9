"""SLD 1.0 / SE 1.1 documents → the manifest style schema of :mod:`catalog.style`.

Agencies that run GeoServer, QGIS or ArcGIS often already have their map styles as SLD files.
:func:`parse_sld` reads one (StyledLayerDescriptor → NamedLayer → UserStyle → FeatureTypeStyle
→ Rule, in SLD 1.0 with ``CssParameter`` or SE 1.1 with ``SvgParameter``; namespaces with or
without prefixes) and returns the mapping a manifest's ``style:`` would hold, so the catalog
stores the style itself and never needs the file again.

The schema says less than SLD can: one symbol per layer whose colour may vary by one attribute
(categorized or graduated), one label, one scale range. A document that says more than that
raises :class:`~catalog.style.StyleError` naming the element, rather than drawing something
else than the agency meant. Cosmetic details the renderer decides by itself (font family, halo,
label placement, line joins, vendor options) are skipped. docs/styles.md has the full matrix.

The XML is parsed with defusedxml: a document type declaration (and so any entity, internal or
external) is refused, nothing is fetched from the network, and documents above
:data:`MAX_SLD_BYTES` are refused before parsing.
"""

from __future__ import annotations

import codecs
import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import fromstring

from catalog.style import Style, StyleError, parse_colour, parse_style

#: larger documents are refused unread (a real SLD is a few kB to a few hundred kB)
MAX_SLD_BYTES = 4 * 1024 * 1024
#: SLD / SE versions read
VERSIONS = ("1.0.0", "1.1.0")
#: WellKnownName → the schema's marker
MARKERS = ("circle", "square", "triangle", "star", "cross")

# Elements that only describe (titles, legends) or only tune what the renderer decides itself.
_METADATA = frozenset(
    {
        "Name",
        "Title",
        "Abstract",
        "Description",
        "LegendGraphic",
        "IsDefault",
        "FeatureTypeName",
        "SemanticTypeIdentifier",
        "CoverageName",
        "VendorOption",
        "LayerFeatureConstraints",
    }
)
_TEXT_COSMETIC = frozenset({"LabelPlacement", "Halo", "Priority", "Geometry"})
_IGNORED_PARAMS = frozenset(
    {
        "stroke-linejoin",
        "stroke-linecap",
        "stroke-dashoffset",
        "font-family",
        "font-style",
        "font-weight",
    }
)
_EXPAT_ENCODINGS = frozenset({"utf-8", "utf-16", "iso8859-1", "latin-1", "ascii"})
_DECLARATION = re.compile(rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']+)[\"']")
# SLD defaults (SLD 1.0 §11): stroke black 1 px, mark a grey square of 6 px, text black 10 px.
_SLD_STROKE = "#000000"
_SLD_MARK_FILL = "#808080"
_SLD_MARK_SIZE = 6.0
_SLD_FONT_SIZE = 10.0


def parse_sld(data: bytes, layer_name: str | None = None) -> dict:
    """The manifest style mapping of an SLD 1.0.0 or SE 1.1.0 document.

    Args:
        data: the document's bytes (any encoding XML declares; Big5 included).
        layer_name: which NamedLayer to read when the document holds several (matched on its
            Name); a document with one NamedLayer is read whatever its name.

    Returns:
        A mapping in the schema of :mod:`catalog.style` (keys such as ``fill``, ``stroke``,
        ``categorized``, ``graduated``, ``label``, ``min_scale``), valid for
        :func:`~catalog.style.parse_style`.

    Raises:
        StyleError: the document is not readable XML, is hostile (a DTD, entities, too large),
            is not an SLD, or says something the schema cannot express; the message names
            the element.
    """
    root = _parse_xml(data)
    style_el = _user_style(root, layer_name)
    rules = list(_rules(style_el))
    out = _convert(rules)
    title = _title(style_el)
    if title:
        out["title"] = title
    try:
        parse_style(out)
    except StyleError as e:
        raise StyleError(f"the SLD gives a style that is not valid: {e}") from None
    return {k: out[k] for k in Style.model_fields if k in out}


def _title(el: Element) -> str:
    """A Title (SLD 1.0), a Description/Title (SE 1.1) or else the Name of an element."""
    description = _child(el, "Description")
    inner = _child(description, "Title") if description is not None else None
    return _text(_child(el, "Title")) or _text(inner) or _text(_child(el, "Name"))


# ---------------------------------------------------------------------------------------------
# XML


def _parse_xml(data: bytes) -> Element:
    if len(data) > MAX_SLD_BYTES:
        raise StyleError(
            f"the SLD is {len(data):,} bytes; more than {MAX_SLD_BYTES:,} is refused unread"
        )
    try:
        return fromstring(_as_expat_encoding(data), forbid_dtd=True)
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden):
        raise StyleError(
            "the SLD declares a DTD (<!DOCTYPE …>): DTDs and entities are refused, as they can "
            "read local files, reach the network or expand without bound; remove the DOCTYPE"
        ) from None
    except DefusedXmlException as e:
        raise StyleError(f"the SLD uses an XML feature that is refused ({e})") from None
    except ParseError as e:
        raise StyleError(_not_well_formed(data, e)) from None


def _not_well_formed(data: bytes, error: ParseError) -> str:
    undeclared = _DECLARATION.match(data[:512]) is None and not data.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        if undeclared:
            return (
                "the SLD is not UTF-8 and declares no encoding: save it as UTF-8 or start it "
                'with <?xml version="1.0" encoding="Big5"?>'
            )
    return f"the SLD is not well-formed XML ({error})"


def _as_expat_encoding(data: bytes) -> bytes:
    """Re-encode a document declared in an encoding expat lacks (Big5, CP950) as UTF-8."""
    m = _DECLARATION.match(data[:512])
    if m is None:
        return data
    declared = m.group(2).decode("ascii", "replace")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise StyleError(f"the SLD declares encoding {declared!r}, which is unknown") from None
    if codec in _EXPAT_ENCODINGS or codec.startswith("utf-16"):
        return data
    if codec == "big5":
        codec = "cp950"  # what Taiwanese "Big5" files really are
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise StyleError(
            f"the SLD declares encoding {declared!r} but byte {e.start} is not {declared}"
        ) from None
    body = text[len(m.group(0).decode(codec)) :]
    head = re.sub(r"encoding\s*=\s*[\"'][^\"']+[\"']", 'encoding="UTF-8"', m.group(0).decode(codec))
    return (head.lstrip("\ufeff") + body).encode("utf-8")


def _name(el: Element) -> str:
    """The local name of an element: no namespace, no prefix."""
    return el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""


def _child(el: Element, name: str) -> Element | None:
    return next((c for c in el if _name(c) == name), None)


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _name(c) == name]


def _text(el: Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _unexpected(el: Element, where: str, what: str = "") -> StyleError:
    tail = f": {what}" if what else ""
    return StyleError(f"{where}: <{_name(el)}> cannot be expressed in a portal style{tail}")


# ---------------------------------------------------------------------------------------------
# Document → one UserStyle


def _user_style(root: Element, layer_name: str | None) -> Element:
    kind = _name(root)
    if kind in ("UserStyle", "FeatureTypeStyle", "CoverageStyle"):
        return root if kind == "UserStyle" else _wrap(root)
    if kind == "NamedLayer":
        return _default_style(root, "NamedLayer")
    if kind != "StyledLayerDescriptor":
        raise StyleError(
            f"the document's root is <{kind}>, not an SLD <StyledLayerDescriptor> "
            "(nor a NamedLayer, UserStyle or FeatureTypeStyle)"
        )
    version = root.get("version")
    if version is not None and version not in VERSIONS:
        raise StyleError(
            f"StyledLayerDescriptor version {version!r}: SLD 1.0.0 and SE 1.1.0 are read"
        )
    for el in root:
        if _name(el) == "UserLayer":
            raise _unexpected(el, "StyledLayerDescriptor", "inline or remote data is not read")
    layers = _children(root, "NamedLayer")
    if not layers:
        raise StyleError("the SLD has no <NamedLayer>")
    return _default_style(_pick_layer(layers, layer_name), "NamedLayer")


def _wrap(style: Element) -> Element:
    user = Element("UserStyle")
    user.append(style)
    return user


def _pick_layer(layers: list[Element], layer_name: str | None) -> Element:
    names = [_text(_child(el, "Name")) for el in layers]
    if layer_name is not None and layer_name in names:
        return layers[names.index(layer_name)]
    if len(layers) == 1:
        return layers[0]
    listed = ", ".join(repr(n) for n in names)
    asked = f"none is named {layer_name!r}" if layer_name else "name the one to use"
    raise StyleError(f"the SLD holds {len(layers)} NamedLayers ({listed}); {asked}")


def _default_style(layer: Element, where: str) -> Element:
    for el in layer:
        if _name(el) == "NamedStyle":
            raise _unexpected(el, where, "it names a style kept on another server")
    styles = _children(layer, "UserStyle")
    if not styles:
        raise StyleError(f"{where} {_text(_child(layer, 'Name'))!r} has no <UserStyle>")
    default = [s for s in styles if _text(_child(s, "IsDefault")).lower() in ("1", "true")]
    return (default or styles)[0]


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class _Filter:
    """A rule filter the schema can express."""

    kind: str  # "eq" | "range" | "else"
    field: str = ""
    value: str = ""
    lo: float | None = None
    hi: float | None = None


@dataclass
class _Sym:
    """What one symbolizer says: explicit style keys, and keys implied by absent elements."""

    kind: str  # "polygon" | "line" | "point" | "text" | "raster"
    where: str
    props: dict[str, Any] = field(default_factory=dict)
    implied: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Rule:
    where: str
    filter: _Filter | None
    min_scale: float
    max_scale: float
    symbols: list[_Sym]


def _rules(style: Element) -> Iterator[_Rule]:
    n = 0
    for fts in style:
        kind = _name(fts)
        if kind in _METADATA:
            continue
        if kind not in ("FeatureTypeStyle", "CoverageStyle"):
            raise _unexpected(fts, "UserStyle")
        for el in fts:
            if _name(el) == "Rule":
                n += 1
                yield _rule(el, n)
            elif _name(el) not in _METADATA:
                raise _unexpected(el, kind)


def _rule(el: Element, n: int) -> _Rule:
    label = _title(el)
    where = f"Rule {label!r}" if label else f"Rule {n}"
    flt: _Filter | None = None
    scales = {"MinScaleDenominator": 0.0, "MaxScaleDenominator": 0.0}
    symbols = []
    for c in el:
        kind = _name(c)
        if kind in _SYMBOLIZERS:
            _check_uom(c, f"{where} {kind}")
            symbols.append(_SYMBOLIZERS[kind](c, f"{where} {kind}"))
        elif kind == "Filter":
            flt = _filter(c, where)
        elif kind == "ElseFilter":
            flt = _Filter("else")
        elif kind in scales:
            scales[kind] = _number(_text(c), f"{where} {kind}")
        elif kind not in _METADATA:
            raise _unexpected(c, where)
    return _Rule(where, flt, scales["MinScaleDenominator"], scales["MaxScaleDenominator"], symbols)


def _check_uom(el: Element, where: str) -> None:
    uom = el.get("uom", "")
    if uom and not uom.rstrip("/").endswith("pixel"):
        raise StyleError(f"{where}: uom {uom!r}: sizes in ground units cannot be expressed")


def _number(text: str, where: str) -> float:
    try:
        value = float(text.strip().removesuffix("px"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise StyleError(f"{where}: {text!r} is not a number")
    return value


def _colour(text: str, where: str) -> str:
    try:
        return parse_colour(text)
    except StyleError as e:
        raise StyleError(f"{where}: {e}") from None


def _with_alpha(colour: str, opacity: float | None) -> str:
    """``colour`` with ``opacity`` folded into its alpha channel (#rrggbbaa)."""
    if opacity is None or opacity >= 1:
        return colour
    alpha = int(colour[7:9], 16) / 255 if len(colour) == 9 else 1.0
    return f"{colour[:7]}{round(max(opacity, 0.0) * alpha * 255):02x}"


# ---------------------------------------------------------------------------------------------
# Filters


_COMPARE = {
    "PropertyIsEqualTo": "eq",
    "PropertyIsGreaterThanOrEqualTo": "lo",
    "PropertyIsGreaterThan": "lo",
    "PropertyIsLessThan": "hi",
    "PropertyIsLessThanOrEqualTo": "hi",
}
_FLIP = {"lo": "hi", "hi": "lo", "eq": "eq"}


def _filter(el: Element, where: str) -> _Filter:
    parts = list(el)
    if len(parts) != 1:
        raise StyleError(f"{where}: a <Filter> holds one condition, not {len(parts)}")
    cond = parts[0]
    kind = _name(cond)
    if kind == "PropertyIsEqualTo":
        name, value, _ = _comparison(cond, where)
        return _Filter("eq", name, value)
    if kind in _COMPARE or kind in ("And", "PropertyIsBetween"):
        return _range(cond, where)
    raise _unexpected(
        cond,
        f"{where} Filter",
        "filters are read as PropertyIsEqualTo (categorized) or numeric ranges (graduated)",
    )


def _comparison(el: Element, where: str) -> tuple[str, str, bool]:
    """(property, literal, whether the literal came first) of a binary comparison."""
    kinds = [_name(c) for c in el]
    if sorted(kinds) != ["Literal", "PropertyName"]:
        raise StyleError(
            f"{where} {_name(el)}: compares {' and '.join(kinds) or 'nothing'}; "
            "only a PropertyName and a Literal can be compared"
        )
    name = _text(_child(el, "PropertyName"))
    value = _text(_child(el, "Literal"))
    return name, value, kinds[0] == "Literal"


def _range(el: Element, where: str) -> _Filter:
    bounds: dict[str, float] = {}
    fields: set[str] = set()
    for cond in _children_of_range(el, where):
        kind = _name(cond)
        if kind == "PropertyIsBetween":
            name = _text(_child(cond, "PropertyName"))
            lo, hi = (_text(_child(cond, b)) for b in ("LowerBoundary", "UpperBoundary"))
            fields.add(name)
            _bound(bounds, "lo", _number(lo, f"{where} {kind}"), where)
            _bound(bounds, "hi", _number(hi, f"{where} {kind}"), where)
            continue
        side = _COMPARE.get(kind)
        if side is None or side == "eq":
            raise _unexpected(cond, f"{where} And", "only numeric bounds can be combined")
        name, value, flipped = _comparison(cond, where)
        fields.add(name)
        _bound(bounds, _FLIP[side] if flipped else side, _number(value, f"{where} {kind}"), where)
    if len(fields) != 1:
        raise StyleError(f"{where}: a range must bound one property, not {sorted(fields)}")
    return _Filter("range", fields.pop(), lo=bounds.get("lo"), hi=bounds.get("hi"))


def _children_of_range(el: Element, where: str) -> list[Element]:
    if _name(el) != "And":
        return [el]
    parts = list(el)
    if not 1 <= len(parts) <= 2:
        raise StyleError(f"{where} And: a range has a lower and an upper bound, not {len(parts)}")
    return parts


def _bound(bounds: dict[str, float], side: str, value: float, where: str) -> None:
    if side in bounds:
        raise StyleError(
            f"{where}: the range has two {'lower' if side == 'lo' else 'upper'} bounds"
        )
    bounds[side] = value


# ---------------------------------------------------------------------------------------------
# Symbolizers


def _params(el: Element, where: str, known: set[str]) -> dict[str, str]:
    """The CssParameter / SvgParameter values of ``el`` (other children are the caller's)."""
    out = {}
    for p in el:
        if _name(p) not in ("CssParameter", "SvgParameter"):
            continue
        key = p.get("name", "")
        if key in _IGNORED_PARAMS:
            continue
        if key not in known:
            raise StyleError(
                f"{where}: {_name(p)} {key!r} cannot be expressed in a portal style "
                f"(read: {', '.join(sorted(known))})"
            )
        for inner in p:
            if _name(inner) != "Literal":
                raise StyleError(f"{where}: {key!r} is computed by <{_name(inner)}>; use a value")
        out[key] = _text(p)
    return out


def _only(el: Element, where: str, allowed: set[str]) -> None:
    for c in el:
        name = _name(c)
        if name not in allowed and name not in ("CssParameter", "SvgParameter", *_METADATA):
            raise _unexpected(c, where)


def _fill(el: Element, where: str) -> tuple[str, float | None]:
    where = f"{where} Fill"
    _only(el, where, set())
    p = _params(el, where, {"fill", "fill-opacity"})
    colour = _colour(p.get("fill", "#808080"), where)
    opacity = _number(p["fill-opacity"], where) if "fill-opacity" in p else None
    return colour, opacity


def _stroke(el: Element, where: str) -> dict[str, Any]:
    where = f"{where} Stroke"
    _only(el, where, set())
    p = _params(el, where, {"stroke", "stroke-width", "stroke-opacity", "stroke-dasharray"})
    if p.get("stroke-dasharray", "").strip():
        raise StyleError(f"{where}: stroke-dasharray: dashed lines cannot be expressed")
    opacity = _number(p["stroke-opacity"], where) if "stroke-opacity" in p else None
    colour = _with_alpha(_colour(p.get("stroke", _SLD_STROKE), where), opacity)
    width = _number(p["stroke-width"], where) if "stroke-width" in p else 1.0
    return {"stroke": colour, "stroke_width": width}


def _geometry_check(el: Element, where: str) -> None:
    geom = _child(el, "Geometry")
    if geom is not None and [_name(c) for c in geom] != ["PropertyName"]:
        raise StyleError(f"{where} Geometry: a computed geometry cannot be expressed")


def _polygon(el: Element, where: str) -> _Sym:
    _only(el, where, {"Fill", "Stroke", "Geometry"})
    _geometry_check(el, where)
    sym = _Sym("polygon", where)
    fill, stroke = _child(el, "Fill"), _child(el, "Stroke")
    if fill is None:
        sym.implied["fill_opacity"] = 0.0  # SLD: no Fill, no fill
    else:
        sym.props["fill"], opacity = _fill(fill, where)
        sym.props["fill_opacity"] = 1.0 if opacity is None else opacity  # SLD: opaque
    if stroke is None:
        sym.implied["stroke_width"] = 0.0  # SLD: no Stroke, no outline
    else:
        sym.props |= _stroke(stroke, where)
    return sym


def _line(el: Element, where: str) -> _Sym:
    _only(el, where, {"Stroke", "Geometry"})
    _geometry_check(el, where)
    stroke = _child(el, "Stroke")
    props = _stroke(stroke, where) if stroke is not None else {"stroke": _SLD_STROKE}
    return _Sym("line", where, props={"stroke_width": 1.0} | props)


def _point(el: Element, where: str) -> _Sym:
    _only(el, where, {"Graphic", "Geometry"})
    _geometry_check(el, where)
    graphic = _child(el, "Graphic")
    sym = _Sym("point", where)
    if graphic is None:
        sym.props |= {"marker": "square", "marker_size": _SLD_MARK_SIZE, "fill": _SLD_MARK_FILL}
        return sym
    gw = f"{where} Graphic"
    _only(graphic, gw, {"Mark", "Size", "Opacity", "Rotation", "AnchorPoint", "Displacement"})
    rotation = _text(_child(graphic, "Rotation"))
    if rotation and _number(rotation, f"{gw} Rotation") % 360:
        raise StyleError(f"{gw} Rotation: rotated markers cannot be expressed")
    marks = _children(graphic, "Mark")
    if len(marks) > 1:
        raise StyleError(f"{gw}: {len(marks)} Marks: one marker per point can be expressed")
    opacity_text = _text(_child(graphic, "Opacity"))
    opacity = _number(opacity_text, f"{gw} Opacity") if opacity_text else None
    size = _text(_child(graphic, "Size"))
    sym.props["marker_size"] = _number(size, f"{gw} Size") if size else _SLD_MARK_SIZE
    sym.props |= _mark(marks[0] if marks else None, gw, opacity)
    return sym


def _mark(mark: Element | None, where: str, opacity: float | None) -> dict[str, Any]:
    if mark is None:
        return {"marker": "square", "fill": _with_alpha(_SLD_MARK_FILL, opacity)}
    where = f"{where} Mark"
    _only(mark, where, {"WellKnownName", "Fill", "Stroke"})
    wkn = (_text(_child(mark, "WellKnownName")) or "square").lower()
    if wkn not in MARKERS:
        raise StyleError(f"{where} WellKnownName {wkn!r}: the markers are {', '.join(MARKERS)}")
    out: dict[str, Any] = {"marker": wkn}
    fill, stroke = _child(mark, "Fill"), _child(mark, "Stroke")
    if fill is None and stroke is None:
        fill_colour, fill_opacity = _SLD_MARK_FILL, None
        out |= {"stroke": _with_alpha(_SLD_STROKE, opacity), "stroke_width": 1.0}
    elif fill is None:
        fill_colour, fill_opacity = "#00000000", None
    else:
        fill_colour, fill_opacity = _fill(fill, where)
    out["fill"] = _with_alpha(_with_alpha(fill_colour, fill_opacity), opacity)
    if stroke is not None:
        s = _stroke(stroke, where)
        out |= {"stroke": _with_alpha(s["stroke"], opacity), "stroke_width": s["stroke_width"]}
    elif fill is not None:
        out["stroke_width"] = 0.0
    return out


def _textsym(el: Element, where: str) -> _Sym:
    _only(el, where, {"Label", "Font", "Fill", *_TEXT_COSMETIC})
    label = _child(el, "Label")
    if label is None:
        raise StyleError(f"{where}: no <Label>")
    parts = list(label)
    loose = (label.text or "").strip() or (parts and (parts[-1].tail or "").strip())
    if [_name(c) for c in parts] != ["PropertyName"] or loose:
        raise StyleError(
            f"{where} Label: only a label that is one attribute (one PropertyName) can be expressed"
        )
    props: dict[str, Any] = {"label": _text(parts[0]), "label_size": _SLD_FONT_SIZE}
    font = _child(el, "Font")
    if font is not None:
        p = _params(font, f"{where} Font", {"font-size"})
        if "font-size" in p:
            props["label_size"] = _number(p["font-size"], f"{where} Font")
    fill = _child(el, "Fill")
    colour, opacity = _fill(fill, where) if fill is not None else ("#000000", None)
    props["label_color"] = _with_alpha(colour, opacity)
    return _Sym("text", where, props=props)


def _raster(el: Element, where: str) -> _Sym:
    _only(el, where, {"Opacity", "ColorMap", "ShadedRelief", "ContrastEnhancement", "Geometry"})
    props: dict[str, Any] = {"hillshade": _child(el, "ShadedRelief") is not None}
    opacity = _text(_child(el, "Opacity"))
    if opacity:
        props["opacity"] = _number(opacity, f"{where} Opacity")
    cmap = _child(el, "ColorMap")
    if cmap is not None:
        props["colormap"] = _colormap(cmap, f"{where} ColorMap")
    return _Sym("raster", where, props=props)


def _colormap(el: Element, where: str) -> list[dict]:
    if el.get("type", "ramp") != "ramp":
        raise StyleError(f"{where}: type {el.get('type')!r}: only a colour ramp can be expressed")
    interpolate = _child(el, "Interpolate")  # SE 1.1
    if interpolate is not None:
        return [
            {
                "value": _number(_text(_child(p, "Data")), f"{where} InterpolationPoint"),
                "color": _colour(_text(_child(p, "Value")), f"{where} InterpolationPoint"),
            }
            for p in _children(interpolate, "InterpolationPoint")
        ]
    stops = []
    for entry in el:
        if _name(entry) != "ColorMapEntry":
            raise _unexpected(entry, where, "a colour ramp of ColorMapEntry is read")
        w = f"{where} ColorMapEntry"
        opacity = entry.get("opacity")
        colour = _colour(entry.get("color", ""), w)
        stops.append(
            {
                "value": _number(entry.get("quantity", ""), w),
                "color": _with_alpha(colour, _number(opacity, w) if opacity else None),
            }
        )
    return stops


#: symbolizer element → its reader
_SYMBOLIZERS: dict[str, Callable[[Element, str], _Sym]] = {
    "PolygonSymbolizer": _polygon,
    "LineSymbolizer": _line,
    "PointSymbolizer": _point,
    "TextSymbolizer": _textsym,
    "RasterSymbolizer": _raster,
}


# ---------------------------------------------------------------------------------------------
# Rules → one style


class _Merge:
    """Style keys gathered from several symbolizers; a key said twice must say the same."""

    def __init__(self) -> None:
        self.props: dict[str, tuple[Any, str]] = {}
        self.implied: dict[str, Any] = {}

    def add(self, props: dict[str, Any], where: str, implied: dict | None = None) -> None:
        for key, value in props.items():
            if key in self.props and self.props[key][0] != value:
                first, at = self.props[key]
                raise StyleError(
                    f"{where} sets {key} {value!r} but {at} sets {first!r}: a portal style has "
                    f"one {key} per layer"
                )
            self.props.setdefault(key, (value, where))
        for key, value in (implied or {}).items():
            self.implied.setdefault(key, value)

    def result(self) -> dict[str, Any]:
        out = {k: v for k, v in self.implied.items() if k not in self.props}
        return out | {k: v for k, (v, _) in self.props.items()}


_CLASS_KEY = {"polygon": "fill", "point": "fill", "line": "stroke"}


def _convert(rules: list[_Rule]) -> dict[str, Any]:
    drawn = [r for r in rules if r.symbols]
    if not drawn:
        raise StyleError("no Rule of the SLD draws anything (no symbolizer)")
    out = _scale_range(drawn)
    classed = [r for r in drawn if r.filter is not None]
    if all(r.filter.kind == "else" for r in classed):
        classed = []  # an ElseFilter beside no filter at all draws every feature
    merge = _Merge()
    for r in drawn:
        if r not in classed:
            for s in r.symbols:
                merge.add(s.props, s.where, s.implied)
    if classed:
        out |= _classes(classed, merge)
    return merge.result() | out


def _scale_range(rules: list[_Rule]) -> dict[str, float]:
    first = rules[0]
    for r in rules[1:]:
        if (r.min_scale, r.max_scale) != (first.min_scale, first.max_scale):
            raise StyleError(
                f"{r.where}: Min/MaxScaleDenominator {_scales(r)} differ from {first.where}'s "
                f"{_scales(first)}: a portal style has one scale range"
            )
    out = {}
    if first.min_scale:
        out["min_scale"] = first.min_scale
    if first.max_scale:
        out["max_scale"] = first.max_scale
    return out


def _scales(r: _Rule) -> str:
    return f"({r.min_scale:.0f}, {f'{r.max_scale:.0f}' if r.max_scale else '∞'})"


def _class_colour(rule: _Rule) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(class key, class colour, the rule's other keys, its implied keys)."""
    merge = _Merge()
    for s in rule.symbols:
        merge.add(s.props, s.where, s.implied)
    kinds = {s.kind for s in rule.symbols} - {"text"}
    kind = next((k for k in ("polygon", "point", "line") if k in kinds), "")
    if not kind:
        raise StyleError(f"{rule.where}: a filtered Rule must draw a symbol, not only a label")
    key = _CLASS_KEY[kind]
    props = {k: v for k, (v, _) in merge.props.items()}
    if key not in props:
        raise StyleError(f"{rule.where}: a filtered Rule must set a {key} colour")
    colour = props.pop(key)
    return key, colour, props, merge.implied


def _classes(rules: list[_Rule], merge: _Merge) -> dict[str, Any]:
    kinds = {r.filter.kind for r in rules} - {"else"}
    if len(kinds) != 1:
        raise StyleError(
            "the Rules mix PropertyIsEqualTo with numeric ranges: a style is categorized or "
            "graduated, not both"
        )
    parts = [(r, *_class_colour(r)) for r in rules]
    first = parts[0]
    for r, key, _, rest, _ in parts[1:]:
        if key != first[1] or rest != first[3]:
            raise StyleError(
                f"{r.where} differs from {first[0].where} in more than its {first[1]} colour: "
                "classes of a portal style share everything but their colour"
            )
    merge.add(first[3], first[0].where, first[4])
    if first[1] in merge.props:
        raise StyleError(
            f"{merge.props[first[1]][1]} sets {first[1]} for every feature beside filtered "
            f"Rules that set it per class: drop one of them"
        )
    colours = [(r, colour) for r, _, colour, _, _ in parts]
    if kinds == {"eq"}:
        return {"categorized": _categorized(colours)}
    return {"graduated": _graduated(colours)}


def _categorized(classes: list[tuple[_Rule, str]]) -> dict[str, Any]:
    fields = {r.filter.field for r, _ in classes if r.filter.kind == "eq"}
    if len(fields) != 1:
        raise StyleError(f"the Rules compare several properties ({', '.join(sorted(fields))})")
    values: dict[str, str] = {}
    other = None
    for r, colour in classes:
        if r.filter.kind == "else":
            if other is not None:
                raise StyleError(f"{r.where}: a second ElseFilter")
            other = colour
            continue
        if r.filter.value in values:
            raise StyleError(f"{r.where}: value {r.filter.value!r} has two Rules")
        values[r.filter.value] = colour
    out: dict[str, Any] = {"field": fields.pop(), "values": values}
    if other is not None:
        out["other"] = other
    return out


def _lower(rule: _Rule) -> float:
    return -float("inf") if rule.filter.lo is None else rule.filter.lo


def _graduated(classes: list[tuple[_Rule, str]]) -> dict[str, Any]:
    for r, _ in classes:
        if r.filter.kind == "else":
            raise StyleError(f"{r.where}: an ElseFilter beside numeric ranges cannot be expressed")
    fields = {r.filter.field for r, _ in classes}
    if len(fields) != 1:
        raise StyleError(f"the Rules bound several properties ({', '.join(sorted(fields))})")
    ordered = sorted(classes, key=lambda c: _lower(c[0]))
    breaks = []
    for (a, _), (b, _) in itertools.pairwise(ordered):
        if a.filter.hi is None or b.filter.lo is None or a.filter.hi != b.filter.lo:
            raise StyleError(
                f"{a.where} ends at {a.filter.hi} and {b.where} starts at {b.filter.lo}: "
                "graduated classes must follow each other without gaps or overlaps"
            )
        breaks.append(a.filter.hi)
    return {"field": fields.pop(), "breaks": breaks, "colors": [c for _, c in ordered]}
