"""A layer's display style (catalog/style.py) as MapLibre GL style layers.

The map viewer draws vector layers from their MVT tiles in the browser; these layers make it
look like the WMS picture of the same layer: the same fill, stroke and marker colours, the
categorized colours as a ``match`` expression, graduated classes as a ``step`` expression, the
label, and the scale range as a zoom range. Marker shapes other than circles are drawn by
``map.js`` as icons named ``marker-<shape>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from catalog.style import Style, geometry_kind, parse_style

#: Scale denominator of MapLibre zoom 0 (512 px tiles, 0.28 mm pixels) at the equator.
SCALE_AT_ZOOM0 = 559082264.0287178 / 2
#: Zoom range MapLibre accepts for a style layer.
MAX_ZOOM = 24.0

#: Pixels a marker shape spans in map.js's 32 px icons (the size ``marker_size`` names).
ICON_SHAPE = 26

Json = dict | list | str | float | int | bool | None


@dataclass(frozen=True)
class ZoomRange:
    """The zooms a layer is drawn at (MapLibre: minzoom inclusive, maxzoom exclusive)."""

    minzoom: float = 0.0
    maxzoom: float = MAX_ZOOM


def rgba(colour: str, alpha: float = 1.0) -> str:
    """``#rrggbb`` or ``#rrggbbaa`` (as the style stores them) as a CSS ``rgba()``.

    Args:
        colour: a stored style colour.
        alpha: multiplied into the colour's own alpha.
    """
    text = colour.lstrip("#")
    r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    a = int(text[6:8], 16) / 255 if len(text) == 8 else 1.0
    return f"rgba({r},{g},{b},{round(a * alpha, 4)})"


def zoom_range(style: Style, latitude: float) -> ZoomRange:
    """The zoom range matching the style's ``min_scale``/``max_scale`` at ``latitude``.

    A layer is drawn when ``min_scale <= scale < max_scale``; the scale of a Web Mercator map
    shrinks with the cosine of the latitude, so the range is computed where the layer lies.
    """
    at0 = SCALE_AT_ZOOM0 * math.cos(math.radians(latitude))
    low = math.log2(at0 / style.max_scale) if style.max_scale else 0.0
    high = math.log2(at0 / style.min_scale) if style.min_scale else MAX_ZOOM
    return ZoomRange(max(0.0, min(low, MAX_ZOOM)), max(0.0, min(high, MAX_ZOOM)))


def _by_value(style: Style, base: str | None) -> Json:
    """The colour expression of a categorized or graduated style, else the plain colour."""
    if style.categorized:
        c = style.categorized
        pairs: list[Json] = []
        for value, colour in c.values.items():
            pairs += [value, rgba(colour)]
        other = rgba(c.other) if c.other else "rgba(0,0,0,0)"
        return ["match", ["to-string", ["get", c.field]], *pairs, other]
    if style.graduated:
        g = style.graduated
        steps: list[Json] = [rgba(g.colors[0])]
        for brk, colour in zip(g.breaks, g.colors[1:], strict=True):
            steps += [brk, rgba(colour)]
        return ["step", ["to-number", ["get", g.field]], *steps]
    return rgba(base) if base else "rgba(0,0,0,0)"


def _filter(style: Style) -> Json:
    """Features a categorized style without ``other`` leaves undrawn are filtered out."""
    c = style.categorized
    if c is None or c.other is not None or not c.values:
        return None
    return ["match", ["to-string", ["get", c.field]], list(c.values), True, False]


def _polygon(style: Style) -> list[dict]:
    out = [
        {
            "type": "fill",
            "paint": {
                "fill-color": _by_value(style, style.fill),
                "fill-opacity": style.fill_opacity * style.opacity,
            },
        }
    ]
    if style.stroke and style.stroke_width > 0:
        out.append(
            {
                "type": "line",
                "paint": {
                    "line-color": rgba(style.stroke),
                    "line-width": style.stroke_width,
                    "line-opacity": style.opacity,
                },
            }
        )
    return out


def _line(style: Style) -> list[dict]:
    return [
        {
            "type": "line",
            "layout": {"line-join": "round", "line-cap": "round"},
            "paint": {
                "line-color": _by_value(style, style.stroke),
                "line-width": style.stroke_width,
                "line-opacity": style.opacity,
            },
        }
    ]


def _point(style: Style) -> list[dict]:
    colour = _by_value(style, style.fill)
    stroke = rgba(style.stroke) if style.stroke else "rgba(0,0,0,0)"
    if style.marker == "circle":
        return [
            {
                "type": "circle",
                "paint": {
                    "circle-color": colour,
                    "circle-radius": style.marker_size / 2,
                    "circle-stroke-color": stroke,
                    "circle-stroke-width": style.stroke_width if style.stroke else 0,
                    "circle-opacity": style.opacity,
                    "circle-stroke-opacity": style.opacity,
                },
            }
        ]
    return [
        {
            "type": "symbol",
            "layout": {
                "icon-image": f"marker-{style.marker}",
                "icon-size": style.marker_size / ICON_SHAPE,
                "icon-allow-overlap": True,
            },
            "paint": {
                "icon-color": colour,
                "icon-halo-color": stroke,
                "icon-halo-width": style.stroke_width if style.stroke else 0,
                "icon-opacity": style.opacity,
            },
        }
    ]


def _label(style: Style, kind: str) -> dict:
    return {
        "type": "symbol",
        "layout": {
            "text-field": ["to-string", ["get", style.label]],
            "text-size": style.label_size,
            "text-font": ["Noto Sans CJK TC Regular"],
            "symbol-placement": "line" if kind == "line" else "point",
            "text-offset": [0, 1.1] if kind == "point" else [0, 0],
            "text-optional": True,
        },
        "paint": {
            "text-color": rgba(style.label_color),
            "text-halo-color": "rgba(255,255,255,0.9)",
            "text-halo-width": 1.5,
            "text-opacity": style.opacity,
        },
    }


_BY_KIND = {"polygon": _polygon, "line": _line, "point": _point}


def vector_layers(
    source_id: str, layer_name: str, style: Style, geometry_type: str, latitude: float
) -> list[dict]:
    """MapLibre style layers drawing one MVT layer the way the WMS draws it.

    Args:
        source_id: the MapLibre source holding the layer's tiles.
        layer_name: the MVT layer name (the layer id).
        style: the layer's parsed style (defaults for its geometry applied).
        geometry_type: the version's geometry type; "Geometry" (mixed) draws every kind.
        latitude: where the layer lies (for the scale range).

    Returns:
        Style layers, bottom first, with ids ``<layer_name>-<n>``; the labels come last.
    """
    kind = geometry_kind(geometry_type)
    kinds = [kind] if kind else ["polygon", "line", "point"]
    zooms = zoom_range(style, latitude)
    mixed = len(kinds) > 1
    out: list[dict] = []
    for k in kinds:
        geometry = {"polygon": "Polygon", "line": "LineString", "point": "Point"}[k]
        for part in _BY_KIND[k](parse_defaults(style, k) if mixed else style):
            conditions = [c for c in (_filter(style),) if c is not None]
            if mixed:
                conditions.append(["==", ["geometry-type"], geometry])
            if conditions:
                part["filter"] = conditions[0] if len(conditions) == 1 else ["all", *conditions]
            out.append(part)
    if style.label:
        out.append(_label(style, kind))
    for n, part in enumerate(out, start=1):
        part.update(id=f"{layer_name}-{n}", source=source_id, **{"source-layer": layer_name})
        if zooms.minzoom > 0:
            part["minzoom"] = round(zooms.minzoom, 3)
        if zooms.maxzoom < MAX_ZOOM:
            part["maxzoom"] = round(zooms.maxzoom, 3)
    return out


def parse_defaults(style: Style, kind: str) -> Style:
    """``style`` with the default colours of geometry ``kind`` where it leaves them unset."""
    written = style.model_dump(exclude_unset=True)
    return parse_style(written, {"polygon": "Polygon", "line": "LineString"}.get(kind, "Point"))
