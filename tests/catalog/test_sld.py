"""catalog.sld: SLD 1.0 / SE 1.1 documents as GeoServer and QGIS write them, and hostile ones.

The documents below follow the shapes those tools export (GeoServer's ``popshade`` sample
style, QGIS's "Save Symbology → SLD" for categorized, graduated, point and raster layers),
with the Chinese property names and values Taiwanese agencies use.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from pyproj import Transformer

from catalog import Catalog
from catalog.sld import MAX_SLD_BYTES, parse_sld
from catalog.style import StyleError, parse_style

SLD_NS = (
    'xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
    'xmlns:se="http://www.opengis.net/se" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)

# GeoServer's sample style "popshade" (SLD 1.0.0, ISO-8859-1, CssParameter), as shipped.
POPSHADE = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<StyledLayerDescriptor version="1.0.0"
    xsi:schemaLocation="http://www.opengis.net/sld StyledLayerDescriptor.xsd"
    xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc"
    xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <NamedLayer>
    <Name>USA states population</Name>
    <UserStyle>
      <Name>population</Name>
      <Title>Population in the United States</Title>
      <Abstract>A sample filter that filters the United States into three
        categories of population, drawn in different colors</Abstract>
      <FeatureTypeStyle>
        <Rule>
          <Title>&lt; 2M</Title>
          <ogc:Filter>
            <ogc:PropertyIsLessThan>
             <ogc:PropertyName>PERSONS</ogc:PropertyName>
             <ogc:Literal>2000000</ogc:Literal>
            </ogc:PropertyIsLessThan>
          </ogc:Filter>
          <PolygonSymbolizer>
             <Fill>
                <CssParameter name="fill">#4DFF4D</CssParameter>
                <CssParameter name="fill-opacity">0.7</CssParameter>
             </Fill>
          </PolygonSymbolizer>
        </Rule>
        <Rule>
          <Title>2M - 4M</Title>
          <ogc:Filter>
            <ogc:PropertyIsBetween>
              <ogc:PropertyName>PERSONS</ogc:PropertyName>
              <ogc:LowerBoundary><ogc:Literal>2000000</ogc:Literal></ogc:LowerBoundary>
              <ogc:UpperBoundary><ogc:Literal>4000000</ogc:Literal></ogc:UpperBoundary>
            </ogc:PropertyIsBetween>
          </ogc:Filter>
          <PolygonSymbolizer>
             <Fill>
                <CssParameter name="fill">#FF4D4D</CssParameter>
                <CssParameter name="fill-opacity">0.7</CssParameter>
             </Fill>
          </PolygonSymbolizer>
        </Rule>
        <Rule>
          <Title>&gt; 4M</Title>
          <ogc:Filter>
            <ogc:PropertyIsGreaterThan>
             <ogc:PropertyName>PERSONS</ogc:PropertyName>
             <ogc:Literal>4000000</ogc:Literal>
            </ogc:PropertyIsGreaterThan>
          </ogc:Filter>
          <PolygonSymbolizer>
             <Fill>
                <CssParameter name="fill">#4D4DFF</CssParameter>
                <CssParameter name="fill-opacity">0.7</CssParameter>
             </Fill>
          </PolygonSymbolizer>
        </Rule>
        <Rule>
          <Title>Boundary</Title>
          <LineSymbolizer>
            <Stroke><CssParameter name="stroke-width">0.2</CssParameter></Stroke>
          </LineSymbolizer>
          <TextSymbolizer>
            <Label><ogc:PropertyName>STATE_ABBR</ogc:PropertyName></Label>
            <Font>
              <CssParameter name="font-family">Times New Roman</CssParameter>
              <CssParameter name="font-style">Normal</CssParameter>
              <CssParameter name="font-size">14</CssParameter>
            </Font>
            <LabelPlacement>
              <PointPlacement>
                <AnchorPoint><AnchorPointX>0.5</AnchorPointX><AnchorPointY>0.5</AnchorPointY>
                </AnchorPoint>
              </PointPlacement>
            </LabelPlacement>
            <Halo><Radius>3</Radius>
              <Fill><CssParameter name="fill">#FFFFFF</CssParameter></Fill>
            </Halo>
          </TextSymbolizer>
        </Rule>
      </FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>
"""


def _qgis_rule(zone: str, colour: str, opacity: str = "") -> str:
    extra = f'<se:SvgParameter name="fill-opacity">{opacity}</se:SvgParameter>' if opacity else ""
    return f"""
        <se:Rule>
          <se:Name>{zone}</se:Name>
          <se:Description><se:Title>{zone}</se:Title></se:Description>
          <ogc:Filter xmlns:ogc="http://www.opengis.net/ogc">
            <ogc:PropertyIsEqualTo>
              <ogc:PropertyName>使用分區</ogc:PropertyName>
              <ogc:Literal>{zone}</ogc:Literal>
            </ogc:PropertyIsEqualTo>
          </ogc:Filter>
          <se:PolygonSymbolizer>
            <se:Fill>
              <se:SvgParameter name="fill">{colour}</se:SvgParameter>{extra}
            </se:Fill>
            <se:Stroke>
              <se:SvgParameter name="stroke">#232323</se:SvgParameter>
              <se:SvgParameter name="stroke-width">1</se:SvgParameter>
              <se:SvgParameter name="stroke-linejoin">bevel</se:SvgParameter>
            </se:Stroke>
          </se:PolygonSymbolizer>
        </se:Rule>"""


def qgis_categorized(*, rules: str | None = None, label: bool = True) -> bytes:
    """QGIS 3 "Save Symbology → SLD" of a categorized zoning layer (SE 1.1, UTF-8)."""
    rules = rules or "".join(
        _qgis_rule(zone, colour)
        for zone, colour in (("住宅區", "#ffff00"), ("商業區", "#ff0000"), ("農業區", "#00c800"))
    )
    text = ""
    if label:
        text = """
        <se:Rule>
          <se:TextSymbolizer>
            <se:Label><ogc:PropertyName>分區名稱</ogc:PropertyName></se:Label>
            <se:Font>
              <se:SvgParameter name="font-family">Noto Sans CJK TC</se:SvgParameter>
              <se:SvgParameter name="font-size">13</se:SvgParameter>
            </se:Font>
            <se:LabelPlacement><se:PointPlacement><se:AnchorPoint>
              <se:AnchorPointX>0</se:AnchorPointX><se:AnchorPointY>0.5</se:AnchorPointY>
            </se:AnchorPoint></se:PointPlacement></se:LabelPlacement>
            <se:Fill><se:SvgParameter name="fill">#323232</se:SvgParameter></se:Fill>
            <se:VendorOption name="maxDisplacement">1</se:VendorOption>
          </se:TextSymbolizer>
        </se:Rule>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<StyledLayerDescriptor {SLD_NS} version="1.1.0"
    xsi:schemaLocation="http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">
  <NamedLayer>
    <se:Name>都市計畫使用分區</se:Name>
    <UserStyle>
      <se:Name>都市計畫使用分區</se:Name>
      <se:FeatureTypeStyle>{rules}{text}
      </se:FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>
""".encode()


def _graduated_rule(lo: str, hi: str, colour: str, first: bool) -> str:
    lower = "PropertyIsGreaterThanOrEqualTo" if first else "PropertyIsGreaterThan"
    return f"""
        <se:Rule>
          <se:Name> {lo} - {hi} </se:Name>
          <ogc:Filter xmlns:ogc="http://www.opengis.net/ogc">
            <ogc:And>
              <ogc:{lower}>
                <ogc:PropertyName>人口數</ogc:PropertyName>
                <ogc:Literal>{lo}</ogc:Literal>
              </ogc:{lower}>
              <ogc:PropertyIsLessThanOrEqualTo>
                <ogc:PropertyName>人口數</ogc:PropertyName>
                <ogc:Literal>{hi}</ogc:Literal>
              </ogc:PropertyIsLessThanOrEqualTo>
            </ogc:And>
          </ogc:Filter>
          <se:PolygonSymbolizer>
            <se:Fill><se:SvgParameter name="fill">{colour}</se:SvgParameter></se:Fill>
            <se:Stroke>
              <se:SvgParameter name="stroke">#232323</se:SvgParameter>
              <se:SvgParameter name="stroke-opacity">0.5</se:SvgParameter>
              <se:SvgParameter name="stroke-width">0.26</se:SvgParameter>
            </se:Stroke>
          </se:PolygonSymbolizer>
        </se:Rule>"""


# QGIS 3 graduated export: the first class is >= lo, the others > lo, all <= hi.
QGIS_GRADUATED = f"""<?xml version="1.0" encoding="UTF-8"?>
<StyledLayerDescriptor {SLD_NS} version="1.1.0">
  <NamedLayer>
    <se:Name>行政區人口</se:Name>
    <UserStyle>
      <se:Name>行政區人口</se:Name>
      <se:FeatureTypeStyle>{
    _graduated_rule("40000", "100000", "#fff5f0", True)
    + _graduated_rule("100000", "200000", "#fb6a4a", False)
    + _graduated_rule("200000", "280000", "#67000d", False)
}
      </se:FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>
""".encode()

# A GeoServer point style with a scale range and a label (SLD 1.0).
GEOSERVER_POINTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld"
    xmlns:ogc="http://www.opengis.net/ogc">
  <NamedLayer>
    <Name>taichung:aed</Name>
    <UserStyle>
      <Title>AED \xe8\xa8\xad\xe7\xbd\xae\xe5\x9c\xb0\xe9\xbb\x9e</Title>
      <FeatureTypeStyle>
        <Rule>
          <Name>aed</Name>
          <MaxScaleDenominator>50000</MaxScaleDenominator>
          <PointSymbolizer>
            <Graphic>
              <Mark>
                <WellKnownName>star</WellKnownName>
                <Fill><CssParameter name="fill">#E63946</CssParameter></Fill>
                <Stroke>
                  <CssParameter name="stroke">#FFFFFF</CssParameter>
                  <CssParameter name="stroke-width">1.5</CssParameter>
                </Stroke>
              </Mark>
              <Size>12</Size>
            </Graphic>
          </PointSymbolizer>
          <TextSymbolizer>
            <Label>
              <ogc:PropertyName>\xe5\x90\x8d\xe7\xa8\xb1</ogc:PropertyName>
            </Label>
            <Font><CssParameter name="font-size">11</CssParameter></Font>
            <Fill><CssParameter name="fill">#1D3557</CssParameter></Fill>
          </TextSymbolizer>
        </Rule>
      </FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>
"""

# Road centre lines by class, no namespaces at all (as some ArcGIS converters write them).
BARE_LINES = """<StyledLayerDescriptor version="1.0.0">
  <NamedLayer><Name>道路中心線</Name>
    <UserStyle><Name>道路等級</Name>
      <FeatureTypeStyle>
        <Rule><Name>快速道路</Name>
          <Filter><PropertyIsEqualTo><PropertyName>等級</PropertyName>
            <Literal>快速道路</Literal></PropertyIsEqualTo></Filter>
          <LineSymbolizer><Stroke>
            <CssParameter name="stroke">#D62828</CssParameter>
            <CssParameter name="stroke-width">3</CssParameter>
            <CssParameter name="stroke-opacity">0.5</CssParameter>
            <CssParameter name="stroke-linecap">round</CssParameter>
          </Stroke></LineSymbolizer>
        </Rule>
        <Rule><Name>主要道路</Name>
          <Filter><PropertyIsEqualTo><Literal>主要道路</Literal>
            <PropertyName>等級</PropertyName></PropertyIsEqualTo></Filter>
          <LineSymbolizer><Stroke>
            <CssParameter name="stroke">#F77F00</CssParameter>
            <CssParameter name="stroke-width">3</CssParameter>
            <CssParameter name="stroke-opacity">0.5</CssParameter>
          </Stroke></LineSymbolizer>
        </Rule>
        <Rule><Name>其他道路</Name><ElseFilter/>
          <LineSymbolizer><Stroke>
            <CssParameter name="stroke">#8D99AE</CssParameter>
            <CssParameter name="stroke-width">3</CssParameter>
            <CssParameter name="stroke-opacity">0.5</CssParameter>
          </Stroke></LineSymbolizer>
        </Rule>
      </FeatureTypeStyle>
    </UserStyle>
  </NamedLayer>
</StyledLayerDescriptor>
""".encode()

# A GeoServer DEM colour ramp (SLD 1.0 ColorMap) and QGIS's SE 1.1 pseudocolour export.
GEOSERVER_DEM = b"""<?xml version="1.0" encoding="UTF-8"?>
<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld">
  <NamedLayer><Name>dem</Name><UserStyle><Title>DEM</Title>
    <FeatureTypeStyle><Rule>
      <RasterSymbolizer>
        <Opacity>0.8</Opacity>
        <ColorMap>
          <ColorMapEntry color="#4D9221" quantity="0" label="0 m"/>
          <ColorMapEntry color="#FEE08B" quantity="500"/>
          <ColorMapEntry color="#F5F5F5" quantity="3500" opacity="0.5"/>
        </ColorMap>
        <ShadedRelief><ReliefFactor>55</ReliefFactor></ShadedRelief>
      </RasterSymbolizer>
    </Rule></FeatureTypeStyle>
  </UserStyle></NamedLayer>
</StyledLayerDescriptor>
"""
QGIS_DEM = f"""<?xml version="1.0" encoding="UTF-8"?>
<StyledLayerDescriptor {SLD_NS} version="1.1.0">
  <NamedLayer><se:Name>DEM_臺中市</se:Name><UserStyle><se:Name>DEM_臺中市</se:Name>
    <se:FeatureTypeStyle><se:Rule><se:Name>Single symbol</se:Name>
      <se:RasterSymbolizer>
        <se:Opacity>1</se:Opacity>
        <se:ColorMap>
          <se:Interpolate fallbackValue="#2b83ba">
            <se:LookupValue>Rasterdata</se:LookupValue>
            <se:InterpolationPoint><se:Data>0</se:Data><se:Value>#2b83ba</se:Value>
            </se:InterpolationPoint>
            <se:InterpolationPoint><se:Data>1800</se:Data><se:Value>#ffffbf</se:Value>
            </se:InterpolationPoint>
            <se:InterpolationPoint><se:Data>3600</se:Data><se:Value>#d7191c</se:Value>
            </se:InterpolationPoint>
          </se:Interpolate>
        </se:ColorMap>
      </se:RasterSymbolizer>
    </se:Rule></se:FeatureTypeStyle>
  </UserStyle></NamedLayer>
</StyledLayerDescriptor>
""".encode()


# --- documents that convert ------------------------------------------------------------------


def test_geoserver_popshade_becomes_graduated_with_outline_and_label():
    style = parse_sld(POPSHADE)
    assert style == {
        "fill_opacity": 0.7,
        "stroke": "#000000",  # SLD's default stroke colour, drawn 0.2 px wide by "Boundary"
        "stroke_width": 0.2,
        "label": "STATE_ABBR",
        "label_size": 14.0,
        "label_color": "#000000",
        "graduated": {
            "field": "PERSONS",
            "breaks": [2000000.0, 4000000.0],
            "colors": ["#4dff4d", "#ff4d4d", "#4d4dff"],
        },
        "title": "Population in the United States",
    }
    assert parse_style(style, "MultiPolygon").graduated.colors[1] == "#ff4d4d"


def test_qgis_categorized_with_chinese_names_and_values():
    style = parse_sld(qgis_categorized())
    assert style["categorized"] == {
        "field": "使用分區",
        "values": {"住宅區": "#ffff00", "商業區": "#ff0000", "農業區": "#00c800"},
    }
    assert (style["stroke"], style["stroke_width"], style["fill_opacity"]) == ("#232323", 1.0, 1.0)
    assert (style["label"], style["label_size"], style["label_color"]) == (
        "分區名稱",
        13.0,
        "#323232",
    )
    assert style["title"] == "都市計畫使用分區"


def test_qgis_graduated_classes_become_breaks_and_stroke_opacity_an_alpha():
    style = parse_sld(QGIS_GRADUATED)
    assert style["graduated"] == {
        "field": "人口數",
        "breaks": [100000.0, 200000.0],
        "colors": ["#fff5f0", "#fb6a4a", "#67000d"],
    }
    assert style["stroke"] == "#23232380"  # stroke-opacity 0.5 → alpha 0x80
    assert style["stroke_width"] == 0.26


def test_geoserver_points_marker_label_and_scale_range():
    style = parse_sld(GEOSERVER_POINTS)
    assert style == {
        "fill": "#e63946",
        "stroke": "#ffffff",
        "stroke_width": 1.5,
        "marker": "star",
        "marker_size": 12.0,
        "label": "名稱",
        "label_size": 11.0,
        "label_color": "#1d3557",
        "max_scale": 50000.0,
        "title": "AED 設置地點",
    }
    assert parse_style(style, "Point").visible_at(20000)
    assert not parse_style(style, "Point").visible_at(50000)


def test_a_document_without_namespaces_reads_the_same():
    style = parse_sld(BARE_LINES)
    assert style["categorized"] == {
        "field": "等級",
        "values": {"快速道路": "#d6282880", "主要道路": "#f77f0080"},  # literal first: same
        "other": "#8d99ae80",
    }
    assert style["stroke_width"] == 3.0
    assert style["title"] == "道路等級"


def test_raster_colour_ramps_sld_10_and_se_11():
    dem = parse_sld(GEOSERVER_DEM)
    assert dem == {
        "opacity": 0.8,
        "colormap": [
            {"value": 0.0, "color": "#4d9221"},
            {"value": 500.0, "color": "#fee08b"},
            {"value": 3500.0, "color": "#f5f5f580"},
        ],
        "hillshade": True,
        "title": "DEM",
    }
    qgis = parse_sld(QGIS_DEM)
    assert [(s["value"], s["color"]) for s in qgis["colormap"]] == [
        (0.0, "#2b83ba"),
        (1800.0, "#ffffbf"),
        (3600.0, "#d7191c"),
    ]
    assert qgis["hillshade"] is False  # no ShadedRelief in the document


def test_big5_declared_document_is_read():
    text = qgis_categorized(label=False).decode().replace('encoding="UTF-8"', 'encoding="Big5"')
    style = parse_sld(text.encode("cp950"))
    assert list(style["categorized"]["values"]) == ["住宅區", "商業區", "農業區"]


def test_named_layer_is_chosen_by_name_when_there_are_several():
    one = qgis_categorized(label=False).decode()
    layer = one.split("<NamedLayer>", 1)[1].split("</NamedLayer>", 1)[0]
    lines = BARE_LINES.decode().split("<NamedLayer>", 1)[1].split("</NamedLayer>", 1)[0]
    both = one.replace(
        f"<NamedLayer>{layer}</NamedLayer>",
        f"<NamedLayer>{layer}</NamedLayer><NamedLayer>{lines}</NamedLayer>",
    ).encode()
    assert parse_sld(both, "道路中心線")["categorized"]["field"] == "等級"
    assert parse_sld(both, "都市計畫使用分區")["categorized"]["field"] == "使用分區"
    with pytest.raises(StyleError, match=r"2 NamedLayers \('都市計畫使用分區', '道路中心線'\)"):
        parse_sld(both)
    with pytest.raises(StyleError, match=r"none is named '河川'"):
        parse_sld(both, "河川")
    # One NamedLayer is read whatever name is asked for.
    assert parse_sld(qgis_categorized(), "another-name")["categorized"]


def test_the_default_user_style_is_read():
    two = POPSHADE.replace(
        b"<UserStyle>",
        b"<UserStyle><Name>plain</Name><FeatureTypeStyle><Rule><PolygonSymbolizer>"
        b'<Fill><CssParameter name="fill">#123456</CssParameter></Fill></PolygonSymbolizer>'
        b"</Rule></FeatureTypeStyle></UserStyle><UserStyle><IsDefault>1</IsDefault>",
        1,
    )
    assert "graduated" in parse_sld(two)


def test_a_bare_feature_type_style_is_read():
    doc = b"""<se:FeatureTypeStyle xmlns:se="http://www.opengis.net/se"><se:Rule>
      <se:LineSymbolizer><se:Stroke><se:SvgParameter name="stroke">#0096c7</se:SvgParameter>
      </se:Stroke></se:LineSymbolizer></se:Rule></se:FeatureTypeStyle>"""
    assert parse_sld(doc) == {"stroke": "#0096c7", "stroke_width": 1.0}


def test_polygon_without_fill_is_outline_only_and_without_stroke_has_none():
    outline = parse_sld(
        b'<FeatureTypeStyle><Rule><PolygonSymbolizer><Stroke><CssParameter name="stroke">'
        b"#6c757d</CssParameter></Stroke></PolygonSymbolizer></Rule></FeatureTypeStyle>"
    )
    assert outline == {"fill_opacity": 0.0, "stroke": "#6c757d", "stroke_width": 1.0}
    filled = parse_sld(
        b'<FeatureTypeStyle><Rule><PolygonSymbolizer><Fill><CssParameter name="fill">'
        b"#8ecae6</CssParameter></Fill></PolygonSymbolizer></Rule></FeatureTypeStyle>"
    )
    assert filled == {"fill": "#8ecae6", "fill_opacity": 1.0, "stroke_width": 0.0}


# --- documents that say more than a portal style can ------------------------------------------


def _rule(body: str, head: str = "") -> bytes:
    return (
        '<StyledLayerDescriptor xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" version="1.0.0"><NamedLayer><Name>x</Name>'
        f"<UserStyle><FeatureTypeStyle><Rule><Name>甲</Name>{head}{body}</Rule>"
        "</FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>"
    ).encode()


_POLY = (
    '<PolygonSymbolizer><Fill><CssParameter name="fill">#ff0000</CssParameter></Fill>'
    "</PolygonSymbolizer>"
)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (
            _rule(
                "<PointSymbolizer><Graphic><ExternalGraphic><OnlineResource "
                'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="icon.png"/>'
                "<Format>image/png</Format></ExternalGraphic></Graphic></PointSymbolizer>"
            ),
            r"Rule '甲' PointSymbolizer Graphic: <ExternalGraphic> cannot be expressed",
        ),
        (
            _rule(
                _POLY,
                "<ogc:Filter><ogc:PropertyIsLike wildCard='*' singleChar='.' escape='!'>"
                "<ogc:PropertyName>名稱</ogc:PropertyName><ogc:Literal>*公園</ogc:Literal>"
                "</ogc:PropertyIsLike></ogc:Filter>",
            ),
            r"Rule '甲' Filter: <PropertyIsLike> cannot be expressed",
        ),
        (
            _rule(
                _POLY,
                "<ogc:Filter><ogc:Or><ogc:PropertyIsEqualTo><ogc:PropertyName>a</ogc:PropertyName>"
                "<ogc:Literal>1</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Or></ogc:Filter>",
            ),
            r"<Or> cannot be expressed",
        ),
        (
            _rule(
                '<LineSymbolizer><Stroke><CssParameter name="stroke-dasharray">4 2</CssParameter>'
                "</Stroke></LineSymbolizer>"
            ),
            r"Rule '甲' LineSymbolizer Stroke: stroke-dasharray: dashed lines",
        ),
        (
            _rule(
                "<PolygonSymbolizer><Fill><GraphicFill><Graphic><Mark/></Graphic></GraphicFill>"
                "</Fill></PolygonSymbolizer>"
            ),
            r"PolygonSymbolizer Fill: <GraphicFill> cannot be expressed",
        ),
        (
            _rule(
                '<PolygonSymbolizer><Fill><CssParameter name="fill"><ogc:PropertyName>顏色'
                "</ogc:PropertyName></CssParameter></Fill></PolygonSymbolizer>"
            ),
            r"'fill' is computed by <PropertyName>",
        ),
        (
            _rule(
                "<TextSymbolizer><Label><ogc:PropertyName>路名</ogc:PropertyName> "
                "<ogc:PropertyName>段</ogc:PropertyName></Label></TextSymbolizer>"
            ),
            r"TextSymbolizer Label: only a label that is one attribute",
        ),
        (
            _rule(
                "<TextSymbolizer><Label>門牌 <ogc:PropertyName>號</ogc:PropertyName></Label>"
                "</TextSymbolizer>"
            ),
            r"only a label that is one attribute",
        ),
        (
            _rule(
                "<PointSymbolizer><Graphic><Mark><WellKnownName>shape://vertline</WellKnownName>"
                "</Mark></Graphic></PointSymbolizer>"
            ),
            r"WellKnownName 'shape://vertline': the markers are circle, square, triangle",
        ),
        (
            _rule(
                '<LineSymbolizer uom="http://www.opengeospatial.org/se/units/metre"><Stroke/>'
                "</LineSymbolizer>"
            ),
            r"uom .*metre.*ground units",
        ),
        (
            _rule(
                '<PolygonSymbolizer><Fill><CssParameter name="fill">#ff0000</CssParameter>'
                '<CssParameter name="fill-rule">evenodd</CssParameter></Fill></PolygonSymbolizer>'
            ),
            r"CssParameter 'fill-rule' cannot be expressed",
        ),
        (
            _rule(
                '<PolygonSymbolizer><Fill><CssParameter name="fill">土黃色</CssParameter></Fill>'
                "</PolygonSymbolizer>"
            ),
            r"PolygonSymbolizer Fill: '土黃色' is not a colour",
        ),
        (
            _rule(
                "<RasterSymbolizer><ColorMap type='intervals'><ColorMapEntry color='#000000' "
                "quantity='1'/></ColorMap></RasterSymbolizer>"
            ),
            r"ColorMap: type 'intervals': only a colour ramp",
        ),
        (_rule("<Rule/>"), r"Rule '甲': <Rule> cannot be expressed"),
        (_rule(""), r"no Rule of the SLD draws anything"),
    ],
)
def test_what_cannot_be_expressed_is_refused_naming_the_element(doc, match):
    with pytest.raises(StyleError, match=match):
        parse_sld(doc)


def test_classes_that_differ_in_more_than_colour_are_refused():
    rules = _qgis_rule("住宅區", "#ffff00") + _qgis_rule("商業區", "#ff0000", opacity="0.5")
    with pytest.raises(StyleError, match=r"Rule '商業區' differs from Rule '住宅區' in more than"):
        parse_sld(qgis_categorized(rules=rules))


def test_rules_on_two_properties_are_refused():
    other = _qgis_rule("住宅區", "#ffff00").replace("使用分區", "土地使用")
    with pytest.raises(StyleError, match=r"several properties \(使用分區, 土地使用\)"):
        parse_sld(qgis_categorized(rules=_qgis_rule("商業區", "#ff0000") + other))


def test_graduated_gaps_and_else_filter_are_refused():
    gap = QGIS_GRADUATED.replace(
        b"<ogc:Literal>100000</ogc:Literal>", b"<ogc:Literal>90000</ogc:Literal>", 1
    )
    with pytest.raises(
        StyleError, match=r"Rule '40000 - 100000' ends at 90000.0 and Rule '100000 - 200000' starts"
    ):
        parse_sld(gap)
    other = _graduated_rule("0", "1", "#cccccc", True)
    other = other.split("<ogc:Filter")[0] + "<se:ElseFilter/>" + other.split("</ogc:Filter>")[1]
    with_else = QGIS_GRADUATED.replace(
        b"</se:FeatureTypeStyle>", other.encode() + b"</se:FeatureTypeStyle>"
    )
    with pytest.raises(StyleError, match=r"an ElseFilter beside numeric ranges cannot be"):
        parse_sld(with_else)


def test_rules_with_different_scale_ranges_are_refused():
    doc = POPSHADE.replace(
        b"<Title>Boundary</Title>",
        b"<Title>Boundary</Title><MaxScaleDenominator>1e6</MaxScaleDenominator>",
    )
    with pytest.raises(
        StyleError,
        match=r"Rule 'Boundary': Min/MaxScaleDenominator \(0, 1000000\) differ from Rule '< 2M''s "
        r"\(0, ∞\): a portal style has one scale range",
    ):
        parse_sld(doc)


def test_mixing_equality_and_ranges_is_refused():
    rules = _qgis_rule("住宅區", "#ffff00") + _graduated_rule("1", "2", "#000000", True).replace(
        "人口數", "使用分區"
    )
    with pytest.raises(StyleError, match=r"mix PropertyIsEqualTo with numeric ranges"):
        parse_sld(qgis_categorized(rules=rules, label=False))


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (b"", r"not well-formed XML"),
        (b"<html><body>404 Not Found</body></html>", r"root is <html>, not an SLD"),
        (b'<StyledLayerDescriptor version="2.0"/>', r"version '2\.0': SLD 1\.0\.0 and SE 1\.1\.0"),
        (b"<StyledLayerDescriptor/>", r"has no <NamedLayer>"),
        (
            b"<StyledLayerDescriptor><NamedLayer><Name>a</Name><NamedStyle><Name>b</Name>"
            b"</NamedStyle></NamedLayer></StyledLayerDescriptor>",
            r"<NamedStyle> cannot be expressed.*another server",
        ),
        (
            b"<StyledLayerDescriptor><UserLayer/></StyledLayerDescriptor>",
            r"<UserLayer> cannot be expressed",
        ),
        ('<?xml version="1.0" encoding="Big5"?><a>臺</a>'.encode("cp950"), r"root is <a>"),
        (
            '<?xml version="1.0" encoding="Big5"?><a>臺中</a>'.encode(),
            r"declares encoding 'Big5' but byte \d+ is not Big5",
        ),
        (b'<?xml version="1.0" encoding="klingon"?><a/>', r"encoding 'klingon', which is unknown"),
        (
            "<StyledLayerDescriptor>臺中</StyledLayerDescriptor>".encode("cp950"),
            r"not UTF-8 and declares no encoding: save it as UTF-8 or start it with <\?xml",
        ),
        (b"<StyledLayerDescriptor><NamedLayer></StyledLayerDescriptor>", r"not well-formed"),
    ],
)
def test_documents_that_are_not_slds(doc, match):
    with pytest.raises(StyleError, match=match):
        parse_sld(doc)


# --- hostile documents -----------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<StyledLayerDescriptor><NamedLayer><Name>&lol9;</Name></NamedLayer></StyledLayerDescriptor>
"""


def test_billion_laughs_is_refused():
    with pytest.raises(StyleError, match=r"declares a DTD .*DTDs and entities are refused"):
        parse_sld(BILLION_LAUGHS)


def test_an_external_entity_is_refused_and_the_file_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("機密-d41d8cd9", encoding="utf-8")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<StyledLayerDescriptor><NamedLayer><Name>&xxe;</Name><UserStyle><FeatureTypeStyle>"
        "<Rule><TextSymbolizer><Label><PropertyName>&xxe;</PropertyName></Label>"
        "</TextSymbolizer></Rule></FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>"
    ).encode()
    with pytest.raises(StyleError, match=r"declares a DTD") as e:
        parse_sld(doc)
    assert "d41d8cd9" not in str(e.value)


@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "fetched">')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_nothing_is_fetched_external_dtd_parameter_entity_or_schema_location(listener):
    url, hits = listener
    hostile = [
        f'<!DOCTYPE StyledLayerDescriptor SYSTEM "{url}/sld.dtd"><StyledLayerDescriptor/>',
        f'<!DOCTYPE s [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><StyledLayerDescriptor/>',
    ]
    for doc in hostile:
        with pytest.raises(StyleError, match=r"declares a DTD"):
            parse_sld(doc.encode())
    located = qgis_categorized().replace(
        b"http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd", f"{url}/s.xsd".encode()
    )
    assert parse_sld(located)["categorized"]  # schemaLocation is only an attribute
    assert hits == []


def test_an_oversized_document_is_refused_unread():
    doc = qgis_categorized() + b" " * MAX_SLD_BYTES
    with pytest.raises(StyleError, match=r"bytes; more than .* is refused unread"):
        parse_sld(doc)


# --- an SLD through ingest, the catalog and the renderer ---------------------------------------

TO_3826 = Transformer.from_crs(4326, 3826, always_xy=True)
ZONES = [("住宅區", 120.60), ("商業區", 120.65), ("保護區", 120.70)]


def _render(request) -> bytes:
    from tiles.render import get_renderer

    return get_renderer().render(request)


def test_an_agency_sld_reaches_the_catalog_and_the_map_without_its_file(tmp_path):
    """Ingest a zoning layer whose manifest names an SLD; delete the SLD; draw the layer."""
    agency = tmp_path / "都市發展局"
    (agency / "styles").mkdir(parents=True)
    frame = gpd.GeoDataFrame(
        {"使用分區": [z for z, _ in ZONES], "分區名稱": [f"{z}一" for z, _ in ZONES]},
        geometry=[shapely.box(x - 0.01, 24.14, x + 0.01, 24.16) for _, x in ZONES],
        crs=4326,
    )
    frame.to_file(agency / "使用分區.geojson", driver="GeoJSON")
    rules = _qgis_rule("住宅區", "#ffff00") + _qgis_rule("商業區", "#ff0000")
    else_rule = _qgis_rule("其他", "#00ff00").split("<ogc:Filter", 1)
    else_rule = else_rule[0] + "<se:ElseFilter/>" + else_rule[1].split("</ogc:Filter>", 1)[1]
    sld = agency / "styles" / "使用分區.sld"
    sld.write_bytes(qgis_categorized(rules=rules + else_rule, label=False))
    manifest = tmp_path / "layers.yaml"
    manifest.write_text(
        "layers:\n"
        "  - id: zoning\n    title: 使用分區\n    source: 都市發展局/使用分區.geojson\n"
        "    style: {sld: 都市發展局/styles/使用分區.sld}\n    tileset: 土地使用\n",
        encoding="utf-8",
    )
    home = tmp_path / "home"
    out = subprocess.run(
        [sys.executable, "-m", "geoportal.cli", "ingest", str(manifest), "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    sld.unlink()

    from tiles.layers import layer_style
    from tiles.render import MapRequest, RenderLayer

    with Catalog.open(home) as catalog:
        layer, version = catalog.get_layer("zoning"), catalog.current("zoning")
    assert layer.tileset == "土地使用"
    assert layer.style["categorized"] == {
        "field": "使用分區",
        "values": {"住宅區": "#ffff00", "商業區": "#ff0000"},
        "other": "#00ff00",
    }
    item = RenderLayer(layer, version, layer_style(layer, version), home / version.path)
    x0, y0 = TO_3826.transform(120.58, 24.12)
    x1, y1 = TO_3826.transform(120.72, 24.18)
    bbox, size = (x0, y0, x1, y1), (512, 256)
    png = _render(MapRequest((item,), bbox, "EPSG:3826", *size))
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    for (_, lon), want in zip(ZONES, [(255, 255, 0), (255, 0, 0), (0, 255, 0)], strict=True):
        x, y = TO_3826.transform(lon, 24.153)
        col = int((x - bbox[0]) / (bbox[2] - bbox[0]) * size[0])
        row = int((bbox[3] - y) / (bbox[3] - bbox[1]) * size[1])
        assert tuple(img[row, col]) == (*want, 255), lon


def test_every_rule_is_named_in_messages_by_position_when_it_has_no_name():
    doc = _rule("").replace("<Rule><Name>甲</Name></Rule>".encode(), b"<Rule/><Rule><Rule/></Rule>")
    with pytest.raises(StyleError, match=r"Rule 2: <Rule> cannot be expressed"):
        parse_sld(doc)
