"""Display styles and raster tilesets of the sample corpus (the manifest's ``style:``/``tileset:``).

A city styles a subset of its layers and groups some of them into raster tilesets, one per
WMTS service (Taichung runs seven): administrative boundaries, roads, land use, buildings,
terrain, orthophoto and disaster prevention. The showcase layers carry every kind of style the
schema has (graduated, categorized, outline only, markers, labels, scale ranges, a DEM colour
ramp, an agency SLD file), at both scales; at city scale the generic themes add more members.
Everything here is a pure function of the task, so the corpus stays byte-deterministic, and
every field a style names exists in the layer the builder writes.
"""

from __future__ import annotations

import copy
from pathlib import Path

from geoportal.sample import corpus as cp
from geoportal.sample import names

#: the raster tilesets (WMTS services) of the corpus, in the order a portal lists them
TILESETS = ("行政區界", "道路", "土地使用", "建物", "地形", "正射影像", "防災")
#: the agency SLD file of the corpus, relative to the corpus folder (and so to layers.yaml)
SLD_PATH = "都市發展局/styles/使用分區.sld"
#: the entry whose style is that SLD file
SLD_ENTRY = "dakeng-zoning"


def _hex(rgb: str) -> str:
    r, g, b = (int(v) for v in rgb.split(","))
    return f"#{r:02x}{g:02x}{b:02x}"


#: the zoning colours of Taiwan's urban plans (the 顏色 column of the zoning layers)
ZONE_COLOURS = {zone: _hex(rgb) for zone, _, rgb in names.ZONE_KINDS}
ROAD_COLOURS = dict(
    zip(names.ROAD_KINDS, ("#d62828", "#f77f00", "#fcbf49", "#8d99ae", "#a68a64"), strict=True)
)
DEM_RAMP = [
    {"value": 0, "color": "#4d9221"},
    {"value": 100, "color": "#a6d96a"},
    {"value": 500, "color": "#fee08b"},
    {"value": 1500, "color": "#d8b365"},
    {"value": 2500, "color": "#8c510a"},
    {"value": 3500, "color": "#f5f5f5"},
]


def _zoning(title: str) -> dict:
    return {
        "fill_opacity": 0.75,
        "stroke": "#555555",
        "stroke_width": 0.4,
        "categorized": {"field": "分區", "values": dict(ZONE_COLOURS), "other": "#cccccc"},
        "title": title,
    }


_FLOOD = {"fill": "#4895ef", "fill_opacity": 0.45, "stroke": "#1d4e89", "stroke_width": 0.5}
_RIVER = {"stroke": "#0096c7", "stroke_width": 2.0, "label": "名稱", "label_color": "#023e8a"}
_MRT = {"stroke": "#00a650", "stroke_width": 3.0, "label": "名稱"}

#: showcase entry id → (style, tileset)
SHOWCASE: dict[str, tuple[dict, str]] = {
    "taichung-districts": (
        {
            "fill_opacity": 0.55,
            "stroke": "#343a40",
            "stroke_width": 1.2,
            "label": "TOWNNAME",
            "label_size": 13,
            "graduated": {
                "field": "人口數",
                "breaks": [110000, 180000, 250000],
                "colors": ["#fee5d9", "#fcae91", "#fb6a4a", "#cb181d"],
            },
            "title": "行政區人口數",
        },
        "行政區界",
    ),
    "taichung-villages": (
        {"fill_opacity": 0, "stroke": "#6c757d", "stroke_width": 0.6, "title": "村里界線"},
        "行政區界",
    ),
    "road-centerlines": (
        {
            "stroke_width": 1.6,
            "categorized": {"field": "等級", "values": dict(ROAD_COLOURS)},
            "title": "道路等級",
        },
        "道路",
    ),
    "mrt-routes": (_MRT, "道路"),
    "buildings": (
        {
            "fill_opacity": 0.85,
            "stroke": "#7f5539",
            "stroke_width": 0.3,
            "graduated": {
                "field": "樓層數",
                "breaks": [4, 8, 16],
                "colors": ["#fff3b0", "#f9c74f", "#f8961e", "#c1121f"],
            },
            "title": "建物樓層數",
        },
        "建物",
    ),
    "land-use-current": (_zoning("土地使用分類"), "土地使用"),
    "urban-zoning-twd67": (_zoning("都市計畫使用分區"), "土地使用"),
    SLD_ENTRY: ({"sld": SLD_PATH}, "土地使用"),
    "dem-20m": ({"colormap": DEM_RAMP, "hillshade": True, "title": "分層設色"}, "地形"),
    "dem-5m-dakeng": ({"colormap": DEM_RAMP, "hillshade": True, "title": "分層設色"}, "地形"),
    "orthophoto-2023": ({}, "正射影像"),
    "flood-potential": (_FLOOD, "防災"),
    "rivers": (_RIVER, "防災"),
    "pumping-stations": (
        {"marker": "square", "marker_size": 9, "fill": "#0077b6", "label": "名稱"},
        "防災",
    ),
    "rain-gauges": ({"marker": "triangle", "marker_size": 9, "fill": "#48cae4"}, "防災"),
    "evacuation-shelters": (
        {"marker": "star", "marker_size": 12, "fill": "#2a9d8f", "label": "名稱"},
        "防災",
    ),
    "storm-manholes": (
        {"marker": "circle", "marker_size": 4, "fill": "#5e548e", "max_scale": 10000},
        "防災",
    ),
    "door-plates": (
        {"marker": "circle", "marker_size": 4, "fill": "#6c757d", "max_scale": 20000},
        "",
    ),
    "elementary-schools": (
        {
            "marker": "triangle",
            "marker_size": 10,
            "fill": "#f4a261",
            "stroke": "#ffffff",
            "label": "名稱",
            "label_size": 11,
        },
        "",
    ),
    "medical-facilities": ({"marker": "cross", "marker_size": 10, "fill": "#d62828"}, ""),
    "public-markets": (
        {"marker": "square", "marker_size": 8, "fill": "#e76f51", "label": "名稱"},
        "",
    ),
    "ibike-stations": (
        {
            "marker": "circle",
            "marker_size": 7,
            "fill": "#f2c14e",
            "stroke": "#6a4c00",
            "stroke_width": 1.0,
        },
        "",
    ),
    "heritage-monuments": (
        {"marker": "star", "marker_size": 11, "fill": "#9d0208", "label": "名稱"},
        "",
    ),
    "school-districts": (
        {"fill": "#e9edc9", "fill_opacity": 0.5, "stroke": "#606c38", "stroke_width": 0.8},
        "",
    ),
}

# Generic themes (city scale): theme title → (style, tileset of the theme-level layer).
_THEME_STYLES: dict[str, tuple[dict, str]] = {
    "土地使用現況": (_zoning("土地使用分類"), ""),
    "淹水潛勢": (_FLOOD, ""),
    "公園綠地": ({"fill": "#95d5b2", "fill_opacity": 0.7, "stroke": "#2d6a4f"}, ""),
    "公車路線": ({"stroke": "#3a86ff", "stroke_width": 1.5}, "道路"),
    "捷運路線": (_MRT, "道路"),
    "自行車道": ({"stroke": "#52b788", "stroke_width": 1.5}, ""),
    "河川": (_RIVER, "防災"),
    "區域排水": ({"stroke": "#48cae4", "stroke_width": 1.2}, "防災"),
    "抽水站": ({"marker": "square", "marker_size": 9, "fill": "#0077b6"}, "防災"),
    "消防隊": ({"marker": "star", "marker_size": 11, "fill": "#d00000", "label": "名稱"}, ""),
    "警察派出所": ({"marker": "square", "marker_size": 9, "fill": "#023e8a"}, ""),
    "圖書館": ({"marker": "circle", "marker_size": 8, "fill": "#7b2cbf", "label": "名稱"}, ""),
}
_PLAN_STYLES: tuple[tuple[dict, str], ...] = (
    (_zoning("都市計畫使用分區"), "土地使用"),
    (_zoning("公共設施用地"), "土地使用"),
    ({"marker": "cross", "marker_size": 5, "fill": "#6d597a", "max_scale": 10000}, ""),
    ({"stroke": "#adb5bd", "stroke_width": 2.0}, "道路"),
)
#: dense point themes handed in per district: small markers drawn only from 1:20,000 on
_DENSE = {"marker": "circle", "marker_size": 4, "max_scale": 20000}
_DENSE_COLOURS = ("#6c757d", "#e63946", "#457b9d", "#f4a261", "#2a9d8f", "#8338ec")


def style_of(task: cp.Task, entry_id: str) -> tuple[dict, str]:
    """The (style, tileset) of one manifest entry ({} and "" when it has none).

    Args:
        task: the task that built the entry (its builder and parameters say the theme).
        entry_id: the entry's id (a showcase task may yield several entries).
    """
    if task.builder != "generic":
        return SHOWCASE.get(entry_id, ({}, ""))
    family, idx, variant, _ = task.params
    if family == "plan":
        return _PLAN_STYLES[idx]
    theme = names.THEMES[idx]
    style, tileset = _THEME_STYLES.get(theme.title, ({}, ""))
    if not style and theme.kind == "points" and theme.per == "district":
        style = _DENSE | {"fill": _DENSE_COLOURS[idx % len(_DENSE_COLOURS)]}
    return style, tileset if not variant else ""


def apply(tasks: list[cp.Task], results: dict[str, list[cp.Entry]]) -> None:
    """Set the style and tileset of every entry built for ``tasks`` (in place)."""
    for task in tasks:
        for entry in results[task.id]:
            style, tileset = style_of(task, entry.id)
            entry.style, entry.tileset = copy.deepcopy(style), tileset


def write_files(out: Path, entries: list[cp.Entry]) -> list[str]:
    """Write the style files the entries refer to; returns their corpus-relative paths."""
    written = []
    for entry in entries:
        path = entry.style.get("sld")
        if path == SLD_PATH:
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(zoning_sld(), encoding="utf-8")
            written.append(path)
    return written


def zoning_sld() -> str:
    """The 都市發展局's zoning style as QGIS exports it: SE 1.1, Chinese names and values."""
    rules = "".join(
        _sld_rule(zone, f"{zone}（{code}）", _equal_to("分區", zone), colour)
        for (zone, code, _), colour in zip(names.ZONE_KINDS, ZONE_COLOURS.values(), strict=True)
    )
    rules += _sld_rule("其他", "其他分區", "        <se:ElseFilter/>\n", "#cccccc")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:se="http://www.opengis.net/se" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1.0" '
        'xsi:schemaLocation="http://www.opengis.net/sld '
        'http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">\n'
        "  <NamedLayer>\n"
        "    <se:Name>大坑風景區使用分區</se:Name>\n"
        "    <UserStyle>\n"
        "      <se:Name>使用分區</se:Name>\n"
        "      <se:Description>\n"
        "        <se:Title>都市計畫使用分區</se:Title>\n"
        "        <se:Abstract>臺中市政府都市發展局都市計畫使用分區圖例</se:Abstract>\n"
        "      </se:Description>\n"
        "      <se:FeatureTypeStyle>\n"
        f"{rules}"
        "        <se:Rule>\n"
        "          <se:Name>分區標註</se:Name>\n"
        "          <se:TextSymbolizer>\n"
        "            <se:Label>\n"
        "              <ogc:PropertyName>分區</ogc:PropertyName>\n"
        "            </se:Label>\n"
        "            <se:Font>\n"
        '              <se:SvgParameter name="font-family">Microsoft JhengHei</se:SvgParameter>\n'
        '              <se:SvgParameter name="font-size">11</se:SvgParameter>\n'
        "            </se:Font>\n"
        "            <se:LabelPlacement>\n"
        "              <se:PointPlacement>\n"
        "                <se:AnchorPoint>\n"
        "                  <se:AnchorPointX>0.5</se:AnchorPointX>\n"
        "                  <se:AnchorPointY>0.5</se:AnchorPointY>\n"
        "                </se:AnchorPoint>\n"
        "              </se:PointPlacement>\n"
        "            </se:LabelPlacement>\n"
        "            <se:Halo>\n"
        "              <se:Radius>1</se:Radius>\n"
        "              <se:Fill>\n"
        '                <se:SvgParameter name="fill">#ffffff</se:SvgParameter>\n'
        "              </se:Fill>\n"
        "            </se:Halo>\n"
        "            <se:Fill>\n"
        '              <se:SvgParameter name="fill">#323232</se:SvgParameter>\n'
        "            </se:Fill>\n"
        "          </se:TextSymbolizer>\n"
        "        </se:Rule>\n"
        "      </se:FeatureTypeStyle>\n"
        "    </UserStyle>\n"
        "  </NamedLayer>\n"
        "</StyledLayerDescriptor>\n"
    )


def _equal_to(field: str, value: str) -> str:
    return (
        '        <ogc:Filter xmlns:ogc="http://www.opengis.net/ogc">\n'
        "          <ogc:PropertyIsEqualTo>\n"
        f"            <ogc:PropertyName>{field}</ogc:PropertyName>\n"
        f"            <ogc:Literal>{value}</ogc:Literal>\n"
        "          </ogc:PropertyIsEqualTo>\n"
        "        </ogc:Filter>\n"
    )


def _sld_rule(name: str, title: str, condition: str, colour: str) -> str:
    return (
        "        <se:Rule>\n"
        f"          <se:Name>{name}</se:Name>\n"
        "          <se:Description>\n"
        f"            <se:Title>{title}</se:Title>\n"
        "          </se:Description>\n"
        f"{condition}"
        "          <se:PolygonSymbolizer>\n"
        "            <se:Fill>\n"
        f'              <se:SvgParameter name="fill">{colour}</se:SvgParameter>\n'
        '              <se:SvgParameter name="fill-opacity">0.75</se:SvgParameter>\n'
        "            </se:Fill>\n"
        "            <se:Stroke>\n"
        '              <se:SvgParameter name="stroke">#232323</se:SvgParameter>\n'
        '              <se:SvgParameter name="stroke-width">0.5</se:SvgParameter>\n'
        '              <se:SvgParameter name="stroke-linejoin">bevel</se:SvgParameter>\n'
        "            </se:Stroke>\n"
        "          </se:PolygonSymbolizer>\n"
        "        </se:Rule>\n"
    )
