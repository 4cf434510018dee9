"""The Mapnik renderer: features painted where they are, in the requested CRS, with styles."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from pyproj import Transformer

from catalog.model import Agency, FieldInfo, Layer, LayerVersion, Lineage
from catalog.style import parse_style
from tiles.render import MapRequest, RenderLayer, get_renderer, scale_denominator

CENTRE = (120.68, 24.15)  # Taichung
TO_3826 = Transformer.from_crs(4326, 3826, always_xy=True)


def _layer(
    folder: Path,
    layer_id: str,
    frame: gpd.GeoDataFrame,
    style: dict | None = None,
    geometry_type: str = "",
) -> RenderLayer:
    path = folder / f"{layer_id}.gpkg"
    frame.to_file(path, layer="features", driver="GPKG")
    gtype = geometry_type or frame.geometry.iloc[0].geom_type
    layer = Layer(id=layer_id, title=layer_id, agency=Agency("a", "機關"), style=style or {})
    version = LayerVersion(
        layer_id=layer_id,
        version="v1",
        created=datetime.now(UTC),
        kind="vector",
        path=path.name,
        geometry_type=gtype,
        feature_count=len(frame),
        bbox=tuple(frame.total_bounds),
        source_crs="EPSG:4326",
        fields=tuple(FieldInfo(c, "string") for c in frame.columns if c != "geometry"),
        lineage=Lineage("test", None, "0", "geojson"),
    )
    return RenderLayer(layer, version, parse_style(style or {}, gtype), path)


def _square(cx: float, cy: float, half: float) -> shapely.Polygon:
    return shapely.box(cx - half, cy - half, cx + half, cy + half)


def _draw(layers: tuple[RenderLayer, ...], bbox, crs: str, size=(256, 256), **kw) -> np.ndarray:
    png = get_renderer().render(MapRequest(layers, bbox, crs, size[0], size[1], **kw))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _pixel(bbox, size, x: float, y: float) -> tuple[int, int]:
    """(row, col) of map coordinates (x, y) in an image of ``size`` covering ``bbox``."""
    col = int((x - bbox[0]) / (bbox[2] - bbox[0]) * size[0])
    row = int((bbox[3] - y) / (bbox[3] - bbox[1]) * size[1])
    return row, col


def _bbox_3826(lon0, lat0, lon1, lat1) -> tuple[float, float, float, float]:
    x0, y0 = TO_3826.transform(lon0, lat0)
    x1, y1 = TO_3826.transform(lon1, lat1)
    return (x0, y0, x1, y1)


@pytest.fixture
def square(tmp_path) -> RenderLayer:
    frame = gpd.GeoDataFrame({"名稱": ["公園"]}, geometry=[_square(*CENTRE, 0.01)], crs=4326)
    return _layer(tmp_path, "square", frame, {"fill": "#ff0000", "fill_opacity": 1.0})


def test_a_polygon_is_painted_inside_and_transparent_outside_in_twd97(square):
    bbox = _bbox_3826(CENTRE[0] - 0.03, CENTRE[1] - 0.03, CENTRE[0] + 0.03, CENTRE[1] + 0.03)
    img = _draw((square,), bbox, "EPSG:3826")
    inside = _pixel(bbox, (256, 256), *TO_3826.transform(*CENTRE))
    outside = _pixel(bbox, (256, 256), *TO_3826.transform(CENTRE[0] + 0.02, CENTRE[1]))
    assert tuple(img[inside]) == (255, 0, 0, 255)
    assert img[outside][3] == 0


def test_the_map_is_drawn_in_the_requested_crs_not_stretched(square):
    """A lon/lat square is wider than tall in TWD97 metres (cos φ), square in EPSG:4326."""

    def painted_extent(img: np.ndarray) -> tuple[int, int]:
        rows, cols = np.nonzero(img[:, :, 3])
        return cols.max() - cols.min() + 1, rows.max() - rows.min() + 1

    geo = (CENTRE[0] - 0.02, CENTRE[1] - 0.02, CENTRE[0] + 0.02, CENTRE[1] + 0.02)
    w, h = painted_extent(_draw((square,), geo, "EPSG:4326"))
    assert abs(w - h) <= 1
    x, y = TO_3826.transform(*CENTRE)
    metres = (x - 2500, y - 2500, x + 2500, y + 2500)
    w, h = painted_extent(_draw((square,), metres, "EPSG:3826"))
    ratio = np.cos(np.radians(CENTRE[1]))
    assert w / h == pytest.approx(ratio, abs=0.03)


def test_categorized_colours_follow_the_attribute_and_unlisted_values_are_not_drawn(tmp_path):
    frame = gpd.GeoDataFrame(
        {"分區": ["住宅區", "商業區", "農業區"]},
        geometry=[
            _square(120.60, 24.15, 0.01),
            _square(120.65, 24.15, 0.01),
            _square(120.70, 24.15, 0.01),
        ],
        crs=4326,
    )
    style = {
        "fill_opacity": 1,
        "categorized": {"field": "分區", "values": {"住宅區": "#ffff00", "商業區": "#0000ff"}},
    }
    zoning = _layer(tmp_path, "zoning", frame, style)
    bbox = (120.58, 24.12, 120.72, 24.18)
    size = (280, 120)
    img = _draw((zoning,), bbox, "EPSG:4326", size)
    assert tuple(img[_pixel(bbox, size, 120.60, 24.15)]) == (255, 255, 0, 255)
    assert tuple(img[_pixel(bbox, size, 120.65, 24.15)]) == (0, 0, 255, 255)
    assert img[_pixel(bbox, size, 120.70, 24.15)][3] == 0


def test_graduated_classes_take_the_colour_of_their_interval(tmp_path):
    frame = gpd.GeoDataFrame(
        {"人口數": [500, 5000, 50000]},
        geometry=[
            _square(120.60, 24.15, 0.01),
            _square(120.65, 24.15, 0.01),
            _square(120.70, 24.15, 0.01),
        ],
        crs=4326,
    )
    style = {
        "fill_opacity": 1,
        "graduated": {
            "field": "人口數",
            "breaks": [1000, 10000],
            "colors": ["#00ff00", "#ff8000", "#800000"],
        },
    }
    people = _layer(tmp_path, "people", frame, style)
    bbox = (120.58, 24.12, 120.72, 24.18)
    size = (280, 120)
    img = _draw((people,), bbox, "EPSG:4326", size)
    colours = [tuple(img[_pixel(bbox, size, lon, 24.15)][:3]) for lon in (120.60, 120.65, 120.70)]
    assert colours == [(0, 255, 0), (255, 128, 0), (128, 0, 0)]


def test_points_get_their_marker_and_lines_their_stroke(tmp_path):
    points = _layer(
        tmp_path,
        "points",
        gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(*CENTRE)], crs=4326),
        {"fill": "#00ff00", "marker": "square", "marker_size": 12, "stroke_width": 0},
    )
    line = shapely.LineString(
        [(CENTRE[0] - 0.02, CENTRE[1] + 0.01), (CENTRE[0] + 0.02, CENTRE[1] + 0.01)]
    )
    lines = _layer(
        tmp_path,
        "lines",
        gpd.GeoDataFrame({"n": [1]}, geometry=[line], crs=4326),
        {"stroke": "#0000ff", "stroke_width": 5},
    )
    bbox = (CENTRE[0] - 0.03, CENTRE[1] - 0.03, CENTRE[0] + 0.03, CENTRE[1] + 0.03)
    img = _draw((lines, points), bbox, "EPSG:4326")
    assert tuple(img[_pixel(bbox, (256, 256), *CENTRE)]) == (0, 255, 0, 255)
    assert tuple(img[_pixel(bbox, (256, 256), CENTRE[0], CENTRE[1] + 0.01)]) == (0, 0, 255, 255)
    assert img[_pixel(bbox, (256, 256), CENTRE[0] + 0.01, CENTRE[1] - 0.01)][3] == 0


def test_chinese_labels_are_drawn_with_real_glyphs_not_boxes(tmp_path):
    """Missing glyphs all draw as the same box: two different names would look identical."""

    def label_image(name: str) -> np.ndarray:
        frame = gpd.GeoDataFrame({"名稱": [name]}, geometry=[shapely.Point(*CENTRE)], crs=4326)
        style = {"label": "名稱", "label_size": 20, "marker_size": 1, "fill": "#ffffff"}
        lyr = _layer(tmp_path, f"label-{ord(name[0])}", frame, style)
        bbox = (CENTRE[0] - 0.01, CENTRE[1] - 0.01, CENTRE[0] + 0.01, CENTRE[1] + 0.01)
        return _draw((lyr,), bbox, "EPSG:4326")

    taichung, tainan = label_image("臺中"), label_image("臺南")
    assert taichung[:, :, 3].any(), "the label was not drawn at all"
    assert not np.array_equal(taichung, tainan)


def test_scale_range_hides_a_layer_outside_it(square):
    style = square.style.model_copy(update={"max_scale": 50_000})
    ranged = RenderLayer(square.layer, square.version, style, square.source)
    x, y = TO_3826.transform(*CENTRE)
    near = (x - 1000, y - 1000, x + 1000, y + 1000)  # 1:~28,000 at 256 px
    far = (x - 20000, y - 20000, x + 20000, y + 20000)  # 1:~560,000
    assert (
        scale_denominator(near, "EPSG:3826", 256)
        < 50_000
        < scale_denominator(far, "EPSG:3826", 256)
    )
    assert _draw((ranged,), near, "EPSG:3826")[:, :, 3].any()
    assert not _draw((ranged,), far, "EPSG:3826")[:, :, 3].any()


def test_jpeg_is_opaque_with_the_background_colour_and_webp_decodes(square):
    bbox = (CENTRE[0] - 0.03, CENTRE[1] - 0.03, CENTRE[0] + 0.03, CENTRE[1] + 0.03)
    jpeg = _draw((square,), bbox, "EPSG:4326", format="jpeg", bgcolor="#00ff00")
    corner = jpeg[2, 2]
    assert corner[3] == 255 and corner[1] > 240 and corner[0] < 15
    webp = _draw((square,), bbox, "EPSG:4326", format="webp")
    assert webp[_pixel(bbox, (256, 256), *CENTRE)][0] > 240


def test_a_categorized_legend_has_one_swatch_per_class(tmp_path):
    frame = gpd.GeoDataFrame({"分區": ["住宅區"]}, geometry=[_square(*CENTRE, 0.01)], crs=4326)
    style = {
        "fill_opacity": 1,
        "categorized": {
            "field": "分區",
            "values": {"住宅區": "#ffff00", "商業區": "#0000ff", "工業區": "#ff00ff"},
        },
    }
    lyr = _layer(tmp_path, "zoning", frame, style)
    png = get_renderer().legend(lyr, 160, 20, "png")
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert img.shape[0] == 60  # three rows of 20 px
    swatches = [tuple(img[row * 20 + 10, 12][:3]) for row in range(3)]
    assert swatches == [(255, 255, 0), (0, 0, 255), (255, 0, 255)]
    assert img[:, 40:, 3].any(), "the class names are written beside the swatches"


def test_drawing_leaves_proj_and_gdal_usable_here_and_in_child_processes(square):
    """The mapnik wheel would point PROJ_LIB at a folder without proj.db; EPSG codes must work."""
    import rasterio.crs

    _draw((square,), (120.6, 24.1, 120.7, 24.2), "EPSG:4326")
    assert rasterio.crs.CRS.from_epsg(3826).to_epsg() == 3826
    code = "import rasterio.crs; print(rasterio.crs.CRS.from_epsg(3826).to_epsg())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.stdout.strip() == "3826", child.stderr


def test_a_layer_of_mixed_geometry_types_draws_each_type_its_way(tmp_path):
    """KML folders and GeoJSON often mix points, lines and polygons in one layer."""
    line = shapely.LineString([(120.60, 24.10), (120.60, 24.20)])
    frame = gpd.GeoDataFrame(
        {"類別": ["設施", "路線", "範圍"]},
        geometry=[shapely.Point(120.65, 24.15), line, _square(120.70, 24.15, 0.01)],
        crs=4326,
    )
    style = {
        "fill": "#00ff00",
        "fill_opacity": 1,
        "stroke": "#0000ff",
        "stroke_width": 4,
        "marker": "square",
        "marker_size": 10,
    }
    mixed = _layer(tmp_path, "mixed", frame, style, geometry_type="Geometry")  # as ingest stores
    bbox = (120.58, 24.12, 120.72, 24.18)
    size = (280, 120)
    img = _draw((mixed,), bbox, "EPSG:4326", size)
    assert tuple(img[_pixel(bbox, size, 120.65, 24.15)][:3]) == (0, 255, 0)  # the marker
    assert tuple(img[_pixel(bbox, size, 120.60, 24.15)][:3]) == (0, 0, 255)  # the line
    assert tuple(img[_pixel(bbox, size, 120.70, 24.15)][:3]) == (0, 255, 0)  # the polygon
    assert img[_pixel(bbox, size, 120.625, 24.13)][3] == 0
