"""WMS 1.3.0 / 1.1.1 over real HTTP, checked with real clients (owslib, GDAL's WMS driver).

Pixels are checked where the stored data says they must be: a point inside a district (from
the stored GeoPackage) is painted, a point away from every district is transparent;
GetFeatureInfo at a district returns that district's exact attributes from expected.json.
"""

from __future__ import annotations

import io
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from lxml import etree
from owslib.util import ServiceException
from owslib.wms import WebMapService
from PIL import Image
from pyproj import Transformer
from rasterio.windows import Window

from catalog import Catalog
from catalog.view import CatalogView, Snapshot
from tests.tiles.conftest import run, serving
from tiles.wms_capabilities import Service, capabilities

WMS_NS = {"w": "http://www.opengis.net/wms", "xlink": "http://www.w3.org/1999/xlink"}
OGC_NS = {"ogc": "http://www.opengis.net/ogc"}
DISTRICTS = "taichung-districts"
MEDICAL = "medical-facilities"


# --------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def wms(served) -> tuple[str, Path]:
    return served


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def wms_get(base: str, path: str = "/wms", **params: object) -> tuple[int, str, bytes]:
    return get(f"{base}{path}?{urllib.parse.urlencode({k: str(v) for k, v in params.items()})}")


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


# --------------------------------------------------------------------------- truth


def stored(home: Path, layer_id: str):
    with Catalog.open(home) as c:
        version = c.current(layer_id)
    return pyogrio.read_dataframe(home / version.path, layer="features")


def to_crs(crs: str) -> Transformer:
    return Transformer.from_crs(
        "EPSG:4326", "EPSG:4326" if crs == "CRS:84" else crs, always_xy=True
    )


def project(geom, crs: str):
    t = to_crs(crs)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


@pytest.fixture(scope="module")
def district(wms, expected) -> dict:
    """A sample district from expected.json, its stored geometry, and the union of all."""
    _, home = wms
    frame = stored(home, DISTRICTS)
    sample = expected["layers"][DISTRICTS]["samples"][0]
    row = frame[frame["TOWNCODE"] == sample["where"]["TOWNCODE"]].iloc[0]
    return {
        "attributes": sample["attributes"],
        "geometry": row.geometry,
        "inside": row.geometry.point_on_surface(),
        "union": shapely.union_all(frame.geometry.values),
    }


class Map:
    """A map request with square pixels over the districts, and pixel ↔ CRS helpers."""

    def __init__(self, union, crs: str, width: int = 512, pad: float = 0.15) -> None:
        minx, miny, maxx, maxy = project(union, crs).bounds
        dx, dy = (maxx - minx) * pad, (maxy - miny) * pad
        minx, miny, maxx, maxy = minx - dx, miny - dy, maxx + dx, maxy + dy
        self.crs, self.width = crs, width
        self.height = round(width * (maxy - miny) / (maxx - minx))
        maxy = miny + (maxx - minx) * self.height / width  # square pixels
        self.bbox = (minx, miny, maxx, maxy)
        self.res = (maxx - minx) / width

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        return int((x - self.bbox[0]) / self.res), int((self.bbox[3] - y) / self.res)

    def centre(self, col: int, row: int) -> tuple[float, float]:
        return self.bbox[0] + (col + 0.5) * self.res, self.bbox[3] - (row + 0.5) * self.res

    def wire_bbox(self, version: str) -> str:
        b = self.bbox
        if version == "1.3.0" and self.crs in ("EPSG:4326", "EPSG:3824"):
            b = (b[1], b[0], b[3], b[2])  # latitude first
        return ",".join(repr(v) for v in b)

    def outside_pixel(self, union) -> tuple[int, int]:
        """A pixel whose centre is at least 6 pixels away from every district."""
        shape = project(union, self.crs)
        for row in range(2, self.height, 7):
            for col in range(2, self.width, 7):
                if shape.distance(shapely.Point(self.centre(col, row))) > 6 * self.res:
                    return col, row
        raise AssertionError("no pixel outside the districts")

    def inside_pixel(self, point) -> tuple[int, int]:
        return self.pixel(*project(point, self.crs).coords[0])


def getmap_params(m: Map, version: str, layers: str = DISTRICTS, **extra) -> dict:
    crs_key = "CRS" if version == "1.3.0" else "SRS"
    return {
        "SERVICE": "WMS",
        "VERSION": version,
        "REQUEST": "GetMap",
        "LAYERS": layers,
        "STYLES": "",
        crs_key: m.crs,
        "BBOX": m.wire_bbox(version),
        "WIDTH": m.width,
        "HEIGHT": m.height,
        "FORMAT": "image/png",
        "TRANSPARENT": "TRUE",
        **extra,
    }


# --------------------------------------------------------------------------- GetMap


@pytest.mark.parametrize(
    ("version", "crs"),
    [
        ("1.3.0", "EPSG:3826"),
        ("1.3.0", "EPSG:4326"),  # BBOX in lat,lon order
        ("1.3.0", "CRS:84"),
        ("1.3.0", "EPSG:3857"),
        ("1.3.0", "EPSG:3825"),
        ("1.3.0", "EPSG:3824"),
        ("1.1.1", "EPSG:4326"),  # BBOX in lon,lat order
        ("1.1.1", "EPSG:3826"),
    ],
)
def test_getmap_paints_the_district_and_leaves_the_sea_transparent(wms, district, version, crs):
    base, _ = wms
    m = Map(district["union"], crs)
    status, ctype, body = wms_get(base, **getmap_params(m, version))
    assert status == 200 and ctype == "image/png", body[:300]
    image = rgba(body)
    assert image.shape == (m.height, m.width, 4)
    col, row = m.inside_pixel(district["inside"])
    assert image[row, col, 3] > 0, f"pixel {col},{row} inside the district is not painted"
    col, row = m.outside_pixel(district["union"])
    assert image[row, col, 3] == 0, f"pixel {col},{row} outside every district is painted"


def test_1_3_0_epsg4326_with_lon_lat_order_is_not_the_same_map(wms, district):
    """The axis-order rule is applied, not guessed: lon,lat order in 1.3.0 is another place."""
    base, _ = wms
    m = Map(district["union"], "EPSG:4326")
    wrong = getmap_params(m, "1.3.0", BBOX=m.wire_bbox("1.1.1"))
    status, _, body = wms_get(base, **wrong)
    # a latitude of 120° is off the earth: an error report or an empty map, never the districts
    assert status == 400 or rgba(body)[..., 3].max() == 0


def test_non_square_pixels_stretch_the_map_to_the_requested_bbox(wms, district):
    """WMS maps the BBOX exactly onto WIDTH×HEIGHT, even when the pixels are not square."""
    base, _ = wms
    m = Map(district["union"], "EPSG:3826")
    width, height = m.width // 2, m.height * 2
    # the layer twice: a map no other test has drawn, so the renderer builds it afresh
    params = getmap_params(m, "1.3.0", f"{DISTRICTS},{DISTRICTS}", WIDTH=width, HEIGHT=height)
    x, y = project(district["inside"], "EPSG:3826").coords[0]
    col = int((x - m.bbox[0]) / (m.bbox[2] - m.bbox[0]) * width)
    row = int((m.bbox[3] - y) / (m.bbox[3] - m.bbox[1]) * height)
    ocol, orow = m.outside_pixel(district["union"])
    for _ in range(3):  # the same answer on every request, whichever thread draws it
        image = rgba(wms_get(base, **params)[2])
        assert image.shape == (height, width, 4)
        assert image[row, col, 3] > 0
        assert image[orow * 2 + 1, ocol // 2, 3] == 0


def test_owslib_1_3_0_getmap_in_epsg4326_and_1_1_1_in_twd97(wms, district):
    base, _ = wms
    for version, crs in (("1.3.0", "EPSG:4326"), ("1.1.1", "EPSG:3826")):
        client = WebMapService(f"{base}/wms", version=version)
        m = Map(district["union"], crs)
        # owslib takes x,y order and swaps it itself for 1.3.0 EPSG:4326
        reply = client.getmap(
            layers=[DISTRICTS],
            styles=[""],
            srs=crs,
            bbox=m.bbox,
            size=(m.width, m.height),
            format="image/png",
            transparent=True,
        )
        image = rgba(reply.read())
        col, row = m.inside_pixel(district["inside"])
        assert image[row, col, 3] > 0
        col, row = m.outside_pixel(district["union"])
        assert image[row, col, 3] == 0


def _gdal_description(base: str, m: Map, version: str) -> str:
    crs_tag = "CRS" if version == "1.3.0" else "SRS"
    # GDAL sends x,y unless told the 1.3.0 EPSG:4326 order (its documented BBoxOrder option)
    order = "<BBoxOrder>yxYX</BBoxOrder>" if m.wire_bbox(version) != m.wire_bbox("1.1.1") else ""
    return (
        f'<GDAL_WMS><Service name="WMS"><Version>{version}</Version>'
        f"<ServerUrl>{base}/wms?</ServerUrl><{crs_tag}>{m.crs}</{crs_tag}>"
        f"<ImageFormat>image/png</ImageFormat><Transparent>TRUE</Transparent>"
        f"<Layers>{DISTRICTS}</Layers>{order}</Service>"
        f"<DataWindow><UpperLeftX>{m.bbox[0]!r}</UpperLeftX><UpperLeftY>{m.bbox[3]!r}</UpperLeftY>"
        f"<LowerRightX>{m.bbox[2]!r}</LowerRightX><LowerRightY>{m.bbox[1]!r}</LowerRightY>"
        f"<SizeX>{m.width}</SizeX><SizeY>{m.height}</SizeY></DataWindow>"
        "<BandsCount>4</BandsCount><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>"
        "</GDAL_WMS>"
    )


@pytest.mark.parametrize(
    ("version", "crs"), [("1.3.0", "EPSG:3826"), ("1.3.0", "EPSG:4326"), ("1.1.1", "EPSG:3857")]
)
def test_gdal_wms_driver_reads_a_window(wms, district, tmp_path, version, crs):
    base, _ = wms
    m = Map(district["union"], crs)
    xml = tmp_path / "service.xml"
    xml.write_text(_gdal_description(base, m, version))
    with rasterio.open(xml) as ds:
        assert ds.count == 4 and (ds.width, ds.height) == (m.width, m.height)
        for (col, row), painted in (
            (m.inside_pixel(district["inside"]), True),
            (m.outside_pixel(district["union"]), False),
        ):
            # a 5×5 window around the pixel: GDAL fetches the blocks it needs with GetMap
            window = Window(col - 2, row - 2, 5, 5)
            alpha = ds.read(4, window=window)
            assert (alpha[2, 2] > 0) == painted, (col, row)


def test_gdal_opens_a_wms_connection_string(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826", width=256)
    url = (
        f"WMS:{base}/wms?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS={DISTRICTS}"
        f"&SRS=EPSG:3826&BBOX={m.wire_bbox('1.1.1')}&FORMAT=image/png&TRANSPARENT=TRUE"
    )
    with rasterio.open(url) as ds:
        x, y = project(district["inside"], "EPSG:3826").coords[0]
        row, col = ds.index(x, y)
        assert ds.read(4, window=Window(col, row, 1, 1))[0, 0] > 0
        assert tuple(ds.bounds) == pytest.approx(m.bbox)


def _interior_point(frame):
    """A point of the layer strictly inside the layer's extent (see the edge test below)."""
    west, south, east, north = frame.total_bounds
    return next(g for g in frame.geometry if west < g.x < east and south < g.y < north)


def test_several_layers_are_drawn_bottom_first(wms, district):
    base, home = wms
    point = _interior_point(stored(home, MEDICAL))
    m = Map(district["union"], "EPSG:3826", width=1024)
    col, row = m.inside_pixel(point)

    def draw(layers: str) -> np.ndarray:
        return rgba(wms_get(base, **getmap_params(m, "1.3.0", layers))[2])

    marker, polygons = draw(MEDICAL), draw(DISTRICTS)
    # the marker's opaque pixels around the point, where the districts draw another colour
    near = [
        (r, c)
        for r in range(row - 3, row + 4)
        for c in range(col - 3, col + 4)
        if marker[r, c, 3] == 255 and (marker[r, c] != polygons[r, c]).any()
    ]
    assert near, "the point's marker is not drawn"
    on_top, below = draw(f"{DISTRICTS},{MEDICAL}"), draw(f"{MEDICAL},{DISTRICTS}")
    for r, c in near:
        assert (on_top[r, c] == marker[r, c]).all()  # the marker hides the polygon
    assert any((below[r, c] != marker[r, c]).any() for r, c in near)  # polygons drawn over it


def test_points_on_the_edge_of_the_layer_extent_are_drawn(wms):
    base, home = wms
    frame = stored(home, MEDICAL)
    west, south, east, north = frame.total_bounds
    edge = [g for g in frame.geometry if g.x in (west, east) or g.y in (south, north)]
    assert edge
    for point in edge:
        params = {
            "SERVICE": "WMS",
            "VERSION": "1.3.0",
            "REQUEST": "GetMap",
            "LAYERS": MEDICAL,
            "STYLES": "",
            "CRS": "CRS:84",
            "WIDTH": 101,
            "HEIGHT": 101,
            "FORMAT": "image/png",
            "TRANSPARENT": "TRUE",
            "BBOX": f"{point.x - 0.005},{point.y - 0.005},{point.x + 0.005},{point.y + 0.005}",
        }
        assert rgba(wms_get(base, **params)[2])[50, 50, 3] > 0, point


def test_styles_must_name_the_layers_style(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826", width=128)
    two = f"{DISTRICTS},{MEDICAL}"
    ok = wms_get(base, **getmap_params(m, "1.3.0", two, STYLES="default,"))
    assert ok[0] == 200 and ok[1] == "image/png"
    status, _, body = wms_get(base, **getmap_params(m, "1.3.0", two, STYLES="default,fancy"))
    assert status == 400 and report(body) == ("StyleNotDefined", "STYLES")


def test_formats_transparency_and_background(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826", width=256)
    out = m.outside_pixel(district["union"])
    ins = m.inside_pixel(district["inside"])
    _, ctype, body = wms_get(
        base, **getmap_params(m, "1.3.0", FORMAT="image/jpeg", BGCOLOR="0x00FF00")
    )
    image = rgba(body)
    assert ctype == "image/jpeg" and (image[..., 3] == 255).all()
    assert np.abs(image[out[1], out[0], :3].astype(int) - (0, 255, 0)).max() < 12
    _, ctype, body = wms_get(base, **getmap_params(m, "1.3.0", FORMAT="image/webp"))
    image = rgba(body)
    assert ctype == "image/webp" and image[out[1], out[0], 3] == 0 and image[ins[1], ins[0], 3]
    _, ctype, body = wms_get(
        base, **getmap_params(m, "1.3.0", TRANSPARENT="FALSE", BGCOLOR="0x102030")
    )
    assert tuple(rgba(body)[out[1], out[0]]) == (0x10, 0x20, 0x30, 255)
    _, ctype, body = wms_get(base, **getmap_params(m, "1.3.0", FORMAT="image/png; mode=8bit"))
    image = rgba(body)
    assert ctype == "image/png" and image[out[1], out[0], 3] == 0 and image[ins[1], ins[0], 3]


def test_parameter_names_are_case_insensitive(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826", width=128)
    params = {k.lower(): v for k, v in getmap_params(m, "1.3.0").items()}
    status, ctype, body = wms_get(base, **params)
    assert status == 200 and ctype == "image/png"
    col, row = m.inside_pixel(district["inside"])
    assert rgba(body)[row, col, 3] > 0


def test_a_raster_layer_is_drawn(wms):
    base, home = wms
    with Catalog.open(home) as c:
        dem = c.current("dem-20m")
    west, south, east, north = dem.bbox
    cx, cy = (west + east) / 2, (south + north) / 2
    d = (east - west) / 8
    bbox = f"{cy - d},{cx - d},{cy + d},{cx + d}"  # 1.3.0 EPSG:4326: lat,lon
    status, ctype, body = wms_get(
        base,
        SERVICE="WMS",
        VERSION="1.3.0",
        REQUEST="GetMap",
        LAYERS="dem-20m",
        STYLES="",
        CRS="EPSG:4326",
        BBOX=bbox,
        WIDTH=64,
        HEIGHT=64,
        FORMAT="image/png",
        TRANSPARENT="TRUE",
    )
    assert status == 200 and ctype == "image/png", body[:300]
    assert rgba(body)[32, 32, 3] > 0


# --------------------------------------------------------------------------- GetFeatureInfo


def gfi_params(m: Map, version: str, col: int, row: int, layers: str = DISTRICTS, **extra):
    params = getmap_params(m, version, layers)
    params.update(REQUEST="GetFeatureInfo", QUERY_LAYERS=layers, INFO_FORMAT="application/json")
    params.update({"I": col, "J": row} if version == "1.3.0" else {"X": col, "Y": row})
    params.update(extra)
    return params


@pytest.mark.parametrize(("version", "crs"), [("1.3.0", "EPSG:4326"), ("1.1.1", "EPSG:3826")])
def test_owslib_getfeatureinfo_returns_the_districts_exact_attributes(wms, district, version, crs):
    base, _ = wms
    client = WebMapService(f"{base}/wms", version=version)
    m = Map(district["union"], crs)
    reply = client.getfeatureinfo(
        layers=[DISTRICTS],
        srs=crs,
        bbox=m.bbox,
        size=(m.width, m.height),
        format="image/png",
        query_layers=[DISTRICTS],
        info_format="application/json",
        xy=m.inside_pixel(district["inside"]),
        feature_count=5,
    )
    doc = json.loads(reply.read())
    assert len(doc["features"]) == 1
    props = doc["features"][0]["properties"]
    expected_attrs = district["attributes"]
    assert {k: props[k] for k in expected_attrs} == expected_attrs
    assert shapely.geometry.shape(doc["features"][0]["geometry"]).equals(district["geometry"])


def test_getfeatureinfo_in_html_text_and_gml(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826")
    col, row = m.inside_pixel(district["inside"])
    name = district["attributes"]["TOWNNAME"]
    status, ctype, body = wms_get(base, **gfi_params(m, "1.3.0", col, row, INFO_FORMAT="text/html"))
    assert status == 200 and ctype.startswith("text/html")
    assert f"<td>{name}</td>" in body.decode() and "臺中市行政區界" in body.decode()
    _, ctype, body = wms_get(base, **gfi_params(m, "1.3.0", col, row, INFO_FORMAT="text/plain"))
    assert ctype.startswith("text/plain") and f"TOWNNAME = {name}" in body.decode()
    _, ctype, body = wms_get(
        base, **gfi_params(m, "1.1.1", col, row, INFO_FORMAT="application/vnd.ogc.gml")
    )
    assert ctype.startswith("application/vnd.ogc.gml")
    root = etree.fromstring(body)
    member = root.find("{http://www.opengis.net/gml}featureMember/*")
    assert etree.QName(member).localname == DISTRICTS
    assert member.findtext("{urn:x-geoportal:layers}TOWNNAME") == name


def test_getfeatureinfo_outside_every_district_is_empty(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826")
    col, row = m.outside_pixel(district["union"])
    doc = json.loads(wms_get(base, **gfi_params(m, "1.3.0", col, row))[2])
    assert doc == {"type": "FeatureCollection", "features": []}


@pytest.fixture(scope="module")
def facility(wms, expected) -> dict:
    """A sample medical facility (a point), its stored location in TWD97, and the others."""
    _, home = wms
    frame = stored(home, MEDICAL)
    sample = expected["layers"][MEDICAL]["samples"][0]
    mask = frame["編號"] == sample["where"]["編號"]
    xy = project(frame[mask].geometry.iloc[0], "EPSG:3826").coords[0]
    others = [project(g, "EPSG:3826") for g in frame[~mask].geometry]
    return {"attributes": sample["attributes"], "xy": xy, "others": others, "all": frame}


def _map_around(xy: tuple[float, float], res: float = 10.0, size: int = 200) -> Map:
    m = Map.__new__(Map)
    half = res * size / 2
    m.crs, m.width, m.height, m.res = "EPSG:3826", size, size, res
    m.bbox = (xy[0] - half, xy[1] - half, xy[0] + half, xy[1] + half)
    return m


def test_a_point_is_found_within_the_pixel_tolerance(wms, facility):
    """A click hits a point within half its marker plus 3 pixels (docs/wms.md)."""
    base, home = wms
    with Catalog.open(home) as c:
        reach = c.get_layer(MEDICAL).style.get("marker_size", 7) / 2 + 3
    m = _map_around(facility["xy"])
    nearest_other = min(shapely.Point(facility["xy"]).distance(o) for o in facility["others"])
    assert nearest_other > 60 * m.res  # nothing else near: the test below is about tolerance
    col, row = m.pixel(*facility["xy"])
    near, far = math.floor(reach) - 1, math.ceil(reach) + 3
    hit = json.loads(wms_get(base, **gfi_params(m, "1.3.0", col + near, row, MEDICAL))[2])
    props = hit["features"][0]["properties"]
    assert {k: props[k] for k in facility["attributes"]} == facility["attributes"]
    miss = json.loads(wms_get(base, **gfi_params(m, "1.3.0", col, row - far, MEDICAL))[2])
    assert miss["features"] == []
    # BUFFER sets the tolerance in pixels
    wide = gfi_params(m, "1.3.0", col, row - far, MEDICAL, BUFFER=far + 2)
    assert len(json.loads(wms_get(base, **wide)[2])["features"]) == 1


def test_feature_count_returns_the_nearest_points_first(wms, facility):
    base, _ = wms
    m = _map_around(facility["xy"], res=200.0, size=400)  # the whole city in view
    col, row = m.pixel(*facility["xy"])
    params = gfi_params(m, "1.3.0", col, row, MEDICAL, FEATURE_COUNT=3, BUFFER=100)
    doc = json.loads(wms_get(base, **params)[2])
    centre = shapely.Point(m.centre(col, row))
    frame = facility["all"]
    distances = sorted(
        (centre.distance(project(g, "EPSG:3826")), code)
        for g, code in zip(frame.geometry, frame["編號"], strict=True)
    )
    within = [code for d, code in distances if d <= 100 * m.res][:3]
    assert [f["properties"]["編號"] for f in doc["features"]] == within
    assert len(within) == 3


def test_a_line_is_found_within_the_tolerance(wms):
    base, home = wms
    roads = stored(home, "road-centerlines")
    line = project(roads.geometry.iloc[0], "EPSG:3826")
    point = line.interpolate(0.5, normalized=True)
    m = _map_around(point.coords[0], res=5.0)
    col, row = m.pixel(*point.coords[0])
    doc = json.loads(wms_get(base, **gfi_params(m, "1.3.0", col, row, "road-centerlines"))[2])
    assert doc["features"], "the line under the pixel was not found"
    found = shapely.geometry.shape(doc["features"][0]["geometry"])
    assert project(found, "EPSG:3826").distance(shapely.Point(m.centre(col, row))) < 5 * m.res


def test_getfeatureinfo_on_a_raster_is_layer_not_queryable(wms, district):
    base, _ = wms
    m = Map(district["union"], "EPSG:3826", width=64)
    status, _, body = wms_get(base, **gfi_params(m, "1.3.0", 3, 3, "dem-20m"))
    assert status == 400 and report(body) == ("LayerNotQueryable", "QUERY_LAYERS")


# --------------------------------------------------------------------------- capabilities


def published(home: Path) -> dict:
    with Catalog.open(home) as c:
        layers = {lyr.id: lyr for lyr in c.layers()}
        return {
            i: (layers[i], v) for i, v in c.current_all().items() if v.kind in ("vector", "raster")
        }


def test_capabilities_1_3_0_list_every_layer_grouped_with_zh_tw_titles(wms):
    base, home = wms
    client = WebMapService(f"{base}/wms", version="1.3.0")
    truth = published(home)
    assert set(client.contents) == set(truth)
    assert client.identification.title.startswith("geoportal 網路地圖服務")
    for layer_id, (layer, version) in truth.items():
        entry = client[layer_id]
        assert entry.title == layer.title
        assert entry.parent.title == (layer.category or "未分類")
        assert entry.parent.parent.title == (layer.agency.title or "未指定機關")
        assert entry.queryable == (1 if version.kind == "vector" else 0)
        assert entry.boundingBoxWGS84 == pytest.approx(version.bbox)
        assert set(entry.crsOptions) >= {"EPSG:3826", "EPSG:3825", "EPSG:3857", "EPSG:4326"}
        assert "CRS:84" in entry.crsOptions
        assert "GetLegendGraphic" in entry.styles["default"]["legend"]


def test_capabilities_1_3_0_bounding_boxes_follow_pyproj_and_the_axis_order(wms):
    base, home = wms
    status, ctype, body = wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")
    assert status == 200 and ctype.startswith("text/xml")
    root = etree.fromstring(body)
    assert root.get("version") == "1.3.0"
    assert root.findtext("w:Service/w:MaxWidth", namespaces=WMS_NS) == "4096"
    truth = published(home)
    for layer in root.iterfind(".//w:Layer[w:Name]", WMS_NS):
        west, south, east, north = truth[layer.findtext("w:Name", namespaces=WMS_NS)][1].bbox
        boxes = {b.get("CRS"): b for b in layer.findall("w:BoundingBox", WMS_NS)}
        geo = boxes["EPSG:4326"]  # latitude first
        assert [float(geo.get(k)) for k in ("minx", "miny", "maxx", "maxy")] == pytest.approx(
            [south, west, north, east]
        )
        crs84 = boxes["CRS:84"]
        assert float(crs84.get("minx")) == pytest.approx(west)
        reference = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
        want = reference.transform_bounds(west, south, east, north, densify_pts=21)
        got = [float(boxes["EPSG:3826"].get(k)) for k in ("minx", "miny", "maxx", "maxy")]
        assert got == pytest.approx(want, abs=0.01)


def test_capabilities_1_1_1_parse_and_use_latlon_and_srs(wms):
    base, home = wms
    client = WebMapService(f"{base}/wms", version="1.1.1")
    assert set(client.contents) == set(published(home))
    entry = client[DISTRICTS]
    assert "EPSG:3826" in entry.crsOptions
    assert [op.name for op in client.operations] == [
        "GetCapabilities",
        "GetMap",
        "GetFeatureInfo",
        "GetLegendGraphic",
    ]
    assert "image/webp" in client.getOperationByName("GetMap").formatOptions
    _, ctype, body = wms_get(base, SERVICE="WMS", VERSION="1.1.1", REQUEST="GetCapabilities")
    assert ctype.startswith("application/vnd.ogc.wms_xml")
    root = etree.fromstring(body)
    assert root.tag == "WMT_MS_Capabilities" and root.get("version") == "1.1.1"
    layer = root.find(f".//Layer[Name='{DISTRICTS}']")
    box = {b.get("SRS"): b for b in layer.findall("BoundingBox")}["EPSG:4326"]
    assert float(box.get("minx")) < 122 and float(box.get("miny")) < 26  # x = longitude


@pytest.mark.parametrize(
    ("asked", "answered"), [("1.0.0", "1.1.1"), ("1.2.0", "1.1.1"), ("2.0", "1.3.0")]
)
def test_capabilities_version_negotiation(wms, asked, answered):
    base, _ = wms
    _, _, body = wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities", VERSION=asked)
    assert etree.fromstring(body).get("version") == answered


def test_legend_urls_in_the_capabilities_answer_with_the_advertised_size(wms):
    base, _ = wms
    root = etree.fromstring(wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")[2])
    layer = root.find(f".//w:Layer[w:Name='{DISTRICTS}']", WMS_NS)
    legend = layer.find("w:Style/w:LegendURL", WMS_NS)
    href = legend.find("w:OnlineResource", WMS_NS).get("{http://www.w3.org/1999/xlink}href")
    status, ctype, body = get(href)
    assert status == 200 and ctype == "image/png"
    image = Image.open(io.BytesIO(body))
    assert image.size == (int(legend.get("width")), int(legend.get("height")))
    assert rgba(body)[..., 3].max() > 0


def test_a_one_layer_service_and_a_category_service(wms):
    base, home = wms
    one = WebMapService(f"{base}/wms/{DISTRICTS}", version="1.3.0")
    assert list(one.contents) == [DISTRICTS]
    assert one.identification.title.startswith("臺中市行政區界")
    reply = one.getmap(
        layers=[DISTRICTS],
        srs="EPSG:3826",
        bbox=(200000, 2650000, 300000, 2710000),
        size=(200, 120),
        format="image/png",
        transparent=True,
    )
    assert rgba(reply.read())[..., 3].max() > 0
    truth = published(home)
    category = truth[DISTRICTS][0].category
    client = WebMapService(f"{base}/wms?category={urllib.parse.quote(category)}", version="1.1.1")
    assert set(client.contents) == {i for i, (lyr, _) in truth.items() if lyr.category == category}
    href = client.getOperationByName("GetMap").methods[0]["url"]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query) == {"category": [category]}
    # a layer of another category is not in this service
    other = next(i for i, (lyr, _) in truth.items() if lyr.category != category)
    status, _, body = wms_get(
        base,
        category=category,
        SERVICE="WMS",
        VERSION="1.3.0",
        REQUEST="GetLegendGraphic",
        LAYER=other,
    )
    assert status == 400 and report(body)[0] == "LayerNotDefined"


def test_the_capabilities_are_cached_per_stamp_and_rebuilt_when_it_changes(wms):
    _, home = wms
    with Catalog.open(home) as c:
        snapshot = CatalogView(c).snapshot()
        first = capabilities(snapshot, "1.3.0", Service(), "http://h")
        assert capabilities(snapshot, "1.3.0", Service(), "http://h") is first
        assert capabilities(snapshot, "1.3.0", Service(), "http://other") is not first
        layers = dict(snapshot.layers)
        layers[DISTRICTS] = replace(layers[DISTRICTS], title="改過的標題")
        changed = Snapshot(layers, snapshot.versions, snapshot.stamp + "x")
        rebuilt = capabilities(changed, "1.3.0", Service(), "http://h")
        assert (
            b"\xe6\x94\xb9\xe9\x81\x8e\xe7\x9a\x84\xe6\xa8\x99\xe9\xa1\x8c" in rebuilt
        )  # 改過的標題
        assert "改過的標題".encode() not in first


def test_capabilities_of_574_layers_are_complete(wms):
    _, home = wms
    with Catalog.open(home) as c:
        snapshot = CatalogView(c).snapshot()
    layers, versions = {}, {}
    sources = [
        (lyr, snapshot.versions[i]) for i, lyr in snapshot.layers.items() if i in snapshot.versions
    ]
    for n in range(574):
        layer, version = sources[n % len(sources)]
        new_id = f"{layer.id}-{n:03d}"
        layers[new_id] = replace(layer, id=new_id)
        versions[new_id] = replace(version, layer_id=new_id)
    big = Snapshot(layers, versions, "big574")
    doc = capabilities(big, "1.3.0", Service(), "http://h")
    client = WebMapService("http://h/wms", version="1.3.0", xml=doc)
    drawable = {i for i, v in versions.items() if v.kind in ("vector", "raster")}
    assert set(client.contents) == drawable


def test_updatesequence_equal_to_the_current_one_says_so(wms):
    base, _ = wms
    root = etree.fromstring(wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")[2])
    sequence = root.get("updateSequence")
    status, _, body = wms_get(
        base, SERVICE="WMS", REQUEST="GetCapabilities", UPDATESEQUENCE=sequence
    )
    assert status == 200 and report(body)[0] == "CurrentUpdateSequence"


# --------------------------------------------------------------------------- errors


def report(body: bytes) -> tuple[str, str | None]:
    """(code, locator) of a 1.3.0 or 1.1.1 ServiceExceptionReport."""
    root = etree.fromstring(body)
    assert etree.QName(root).localname == "ServiceExceptionReport", body[:300]
    exc = root.find("ogc:ServiceException", OGC_NS)
    if exc is None:
        exc = root.find("ServiceException")
    assert exc.text.strip()
    return exc.get("code"), exc.get("locator")


GOOD = {
    "SERVICE": "WMS",
    "VERSION": "1.3.0",
    "REQUEST": "GetMap",
    "LAYERS": DISTRICTS,
    "STYLES": "",
    "CRS": "EPSG:3826",
    "BBOX": "200000,2650000,300000,2710000",
    "WIDTH": "100",
    "HEIGHT": "60",
    "FORMAT": "image/png",
}


@pytest.mark.parametrize(
    ("change", "status", "code", "locator"),
    [
        ({"LAYERS": "no-such-layer"}, 400, "LayerNotDefined", "LAYERS"),
        ({"LAYERS": ""}, 400, "MissingParameterValue", "LAYERS"),
        ({"LAYERS": ",".join([DISTRICTS] * 101)}, 400, "InvalidParameterValue", "LAYERS"),
        ({"STYLES": "fancy"}, 400, "StyleNotDefined", "STYLES"),
        ({"STYLES": "a,b"}, 400, "InvalidParameterValue", "STYLES"),
        ({"CRS": "EPSG:9999"}, 400, "InvalidCRS", "CRS"),
        ({"CRS": None}, 400, "MissingParameterValue", "CRS"),
        ({"FORMAT": "image/gif"}, 400, "InvalidFormat", "FORMAT"),
        ({"FORMAT": None}, 400, "MissingParameterValue", "FORMAT"),
        ({"BBOX": None}, 400, "MissingParameterValue", "BBOX"),
        ({"BBOX": "1,2,3"}, 400, "InvalidParameterValue", "BBOX"),
        ({"BBOX": "a,b,c,d"}, 400, "InvalidParameterValue", "BBOX"),
        ({"BBOX": "300000,2650000,200000,2710000"}, 400, "InvalidParameterValue", "BBOX"),
        ({"BBOX": "nan,1,2,3"}, 400, "InvalidParameterValue", "BBOX"),
        ({"WIDTH": "5000"}, 400, "InvalidParameterValue", "WIDTH"),
        ({"WIDTH": "-3"}, 400, "InvalidParameterValue", "WIDTH"),
        ({"HEIGHT": "abc"}, 400, "InvalidParameterValue", "HEIGHT"),
        ({"TRANSPARENT": "maybe"}, 400, "InvalidParameterValue", "TRANSPARENT"),
        ({"BGCOLOR": "red"}, 400, "InvalidParameterValue", "BGCOLOR"),
        ({"EXCEPTIONS": "pdf"}, 400, "InvalidParameterValue", "EXCEPTIONS"),
        ({"VERSION": "2.0.0"}, 400, "InvalidParameterValue", "VERSION"),
        ({"SERVICE": "WFS"}, 400, "InvalidParameterValue", "SERVICE"),
        ({"REQUEST": None}, 400, "MissingParameterValue", "REQUEST"),
        ({"REQUEST": "GetStyles"}, 501, "OperationNotSupported", "REQUEST"),
        ({"REQUEST": "DescribeLayer"}, 501, "OperationNotSupported", "REQUEST"),
        ({"SLD_BODY": "<StyledLayerDescriptor/>"}, 400, "InvalidParameterValue", "SLD_BODY"),
        (
            {"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": DISTRICTS, "I": "1"},
            400,
            "MissingParameterValue",
            "J",
        ),
        (
            {"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": DISTRICTS, "I": "500", "J": "1"},
            400,
            "InvalidPoint",
            "I",
        ),
        (
            {"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": DISTRICTS, "I": "1", "J": "inf"},
            400,
            "InvalidPoint",
            "J",
        ),
        (
            {"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": DISTRICTS, "I": "x", "J": "1"},
            400,
            "InvalidPoint",
            "I",
        ),
        (
            {"REQUEST": "GetFeatureInfo", "QUERY_LAYERS": MEDICAL, "I": "1", "J": "1"},
            400,
            "LayerNotDefined",
            "QUERY_LAYERS",
        ),
        (
            {
                "REQUEST": "GetFeatureInfo",
                "QUERY_LAYERS": DISTRICTS,
                "I": "1",
                "J": "1",
                "INFO_FORMAT": "application/pdf",
            },
            400,
            "InvalidFormat",
            "INFO_FORMAT",
        ),
        (
            {
                "REQUEST": "GetFeatureInfo",
                "QUERY_LAYERS": DISTRICTS,
                "I": "1",
                "J": "1",
                "FEATURE_COUNT": "0",
            },
            400,
            "InvalidParameterValue",
            "FEATURE_COUNT",
        ),
        ({"REQUEST": "GetLegendGraphic", "LAYER": "nope"}, 400, "LayerNotDefined", "LAYERS"),
        ({"REQUEST": "GetLegendGraphic", "LAYER": None}, 400, "MissingParameterValue", "LAYER"),
    ],
)
def test_bad_requests_get_a_1_3_0_exception_report(wms, change, status, code, locator):
    base, _ = wms
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    got_status, ctype, body = wms_get(base, **params)
    assert (got_status, ctype) == (status, "text/xml; charset=utf-8"), body[:300]
    assert report(body) == (code, locator)
    root = etree.fromstring(body)
    assert root.get("version") == "1.3.0" and root.nsmap[None] == "http://www.opengis.net/ogc"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"SRS": "EPSG:9999"}, "InvalidSRS"),
        ({"LAYERS": "nope"}, "LayerNotDefined"),
        ({"FORMAT": "image/tiff"}, "InvalidFormat"),
    ],
)
def test_1_1_1_reports_use_1_1_1_codes_and_media_type(wms, change, code):
    base, _ = wms
    params = {**GOOD, "VERSION": "1.1.1", "SRS": "EPSG:3826", **change}
    del params["CRS"]
    status, ctype, body = wms_get(base, **params)
    assert status == 400 and ctype == "application/vnd.ogc.se_xml; charset=utf-8"
    assert b"exception_1_1_1.dtd" in body
    root = etree.fromstring(body)
    assert root.get("version") == "1.1.1" and report(body)[0] == code


def test_owslib_raises_the_service_exception(wms):
    base, _ = wms
    client = WebMapService(f"{base}/wms", version="1.3.0")
    with pytest.raises(ServiceException, match="no-such-layer"):
        client.getmap(
            layers=["no-such-layer"],
            srs="EPSG:3826",
            bbox=(200000, 2650000, 300000, 2710000),
            size=(100, 60),
            format="image/png",
        )


@pytest.mark.parametrize(
    ("version", "inimage", "blank"),
    [
        ("1.3.0", "INIMAGE", "BLANK"),
        ("1.1.1", "application/vnd.ogc.se_inimage", "application/vnd.ogc.se_blank"),
    ],
)
def test_inimage_and_blank_exceptions_are_map_sized_images(wms, version, inimage, blank):
    base, _ = wms
    params = {**GOOD, "VERSION": version, "LAYERS": "no-such-layer", "TRANSPARENT": "TRUE"}
    status, ctype, body = wms_get(base, **params, EXCEPTIONS=inimage)
    image = rgba(body)
    assert status == 200 and ctype == "image/png" and image.shape == (60, 100, 4)
    assert (image[..., 0] > 150).any() and (image[..., 3] > 0).any()  # red error text
    status, ctype, body = wms_get(base, **params, EXCEPTIONS=blank)
    assert status == 200 and ctype == "image/png" and rgba(body)[..., 3].max() == 0
    params.update(TRANSPARENT="FALSE", BGCOLOR="0x00FF00", FORMAT="image/jpeg")
    status, ctype, body = wms_get(base, **params, EXCEPTIONS=blank)
    image = rgba(body)
    assert ctype == "image/jpeg" and np.abs(image[..., :3].astype(int) - (0, 255, 0)).max() < 12


def test_unknown_one_layer_service_and_empty_category(wms):
    base, _ = wms
    status, _, body = wms_get(base, "/wms/no-such-layer", SERVICE="WMS", REQUEST="GetCapabilities")
    assert status == 404 and report(body)[0] == "LayerNotDefined"
    status, _, body = wms_get(
        base, category="不存在的類別", SERVICE="WMS", REQUEST="GetCapabilities"
    )
    assert status == 400 and report(body) == ("InvalidParameterValue", "category")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "REQUEST=GetMap&BBOX=%00%ff&WIDTH=1e9",
        "request=getmap&layers=,,,&crs=EPSG:3826&bbox=1,2,3,4&width=1&height=1&format=image/png",
        "REQUEST=GetFeatureInfo&LAYERS=taichung-districts&CRS=CRS:84&BBOX=0,0,1,1&WIDTH=10"
        "&HEIGHT=10&QUERY_LAYERS=taichung-districts&I=-1&J=0",
        "REQUEST=GetLegendGraphic&LAYER=taichung-districts&WIDTH=99999",
        "REQUEST=GetCapabilities&VERSION=abc",
        "REQUEST=GetMap&LAYERS=%01%02%1f&CRS=EPSG%3A3826&BBOX=1,2,3,4&WIDTH=1&HEIGHT=1"
        "&FORMAT=image/png",
        "REQUEST=%00GetMap",
        "REQUEST=GetMap&LAYERS=../../etc/passwd&STYLES=&CRS=EPSG:3826&BBOX=1,2,3,4&WIDTH=1"
        "&HEIGHT=1&FORMAT=image/png",
    ],
)
def test_garbage_never_yields_a_server_error(wms, query):
    base, _ = wms
    status, ctype, body = get(f"{base}/wms?{query}")
    assert status < 500 or status == 501, body[:300]  # 501: OperationNotSupported
    assert b"Traceback" not in body
    if "xml" in ctype:
        etree.fromstring(body)  # well-formed, whatever the input held


# --------------------------------------------------------------------------- styled legend


@pytest.fixture(scope="module")
def styled(small_corpus, tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """A home of one categorized, scale-limited polygon layer, served; (base, home, folder)."""
    folder = tmp_path_factory.mktemp("styled")
    home = folder / "home"
    features = [
        {
            "type": "Feature",
            "properties": {"分區": zone},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, 24.1], [x + 0.01, 24.1], [x + 0.01, 24.11], [x, 24.1]]],
            },
        }
        for x, zone in ((120.60, "住宅區"), (120.62, "商業區"), (120.64, "工業區"))
    ]
    (folder / "zones.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    (folder / "layers.yaml").write_text(
        "layers:\n"
        "  - id: zoning\n"
        "    title: 使用分區\n"
        "    source: zones.geojson\n"
        "    style:\n"
        "      max_scale: 500000\n"
        "      categorized:\n"
        "        field: 分區\n"
        "        values: {住宅區: '#f6bd60', 商業區: '#e76f51'}\n"
        "        other: '#cccccc'\n",
        encoding="utf-8",
    )
    out = run("ingest", str(folder / "layers.yaml"), home=home)
    assert out.returncode == 0, out.stderr
    with serving(home) as base:
        yield base, home, folder


def test_a_categorized_legend_has_a_row_per_class_as_advertised(styled):
    base, _, _ = styled
    root = etree.fromstring(wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")[2])
    layer = root.find(".//w:Layer[w:Name='zoning']", WMS_NS)
    legend = layer.find("w:Style/w:LegendURL", WMS_NS)
    assert legend.get("height") == "60"  # two values and "other"
    assert layer.findtext("w:MaxScaleDenominator", namespaces=WMS_NS) == "500000.0"
    status, ctype, body = wms_get(
        base,
        SERVICE="WMS",
        VERSION="1.3.0",
        REQUEST="GetLegendGraphic",
        LAYER="zoning",
        FORMAT="image/png",
        STYLE="default",
    )
    assert status == 200 and ctype == "image/png" and Image.open(io.BytesIO(body)).size == (240, 60)
    image = rgba(body)
    swatches = {tuple(image[y, 12, :3]) for y in (10, 30, 50)}
    assert len(swatches) == 3  # three different colours


def test_a_layer_outside_its_scale_range_is_neither_drawn_nor_queryable(styled):
    base, _, _ = styled
    params = {
        "SERVICE": "WMS",
        "VERSION": "1.3.0",
        "LAYERS": "zoning",
        "STYLES": "",
        "CRS": "CRS:84",
        "WIDTH": 100,
        "HEIGHT": 100,
        "FORMAT": "image/png",
        "TRANSPARENT": "TRUE",
        "QUERY_LAYERS": "zoning",
        "INFO_FORMAT": "application/json",
        "I": 50,
        "J": 50,
    }
    near = "120.6025,24.1005,120.6035,24.1015"  # ≈ 1:4,000: drawn
    far = "119.1,22.6,122.1,25.6"  # ≈ 1:12,000,000: beyond max_scale
    drawn = rgba(wms_get(base, **params, REQUEST="GetMap", BBOX=near)[2])
    assert drawn[50, 50, 3] > 0
    hidden = rgba(wms_get(base, **params, REQUEST="GetMap", BBOX=far)[2])
    assert hidden[..., 3].max() == 0
    found = json.loads(wms_get(base, **params, REQUEST="GetFeatureInfo", BBOX=near)[2])
    assert [f["properties"]["分區"] for f in found["features"]] == ["住宅區"]
    far_info = json.loads(wms_get(base, **params, REQUEST="GetFeatureInfo", BBOX=far)[2])
    assert far_info["features"] == []


def test_a_new_layer_shows_up_in_the_capabilities_when_the_catalog_changes(styled):
    base, home, folder = styled
    before = wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")[2]
    assert b"<Name>zoning-copy</Name>" not in before
    (folder / "more.yaml").write_text(
        "layers:\n  - {id: zoning-copy, title: 使用分區副本, source: zones.geojson}\n",
        encoding="utf-8",
    )
    assert run("ingest", str(folder / "more.yaml"), home=home).returncode == 0
    deadline = time.monotonic() + 60  # the catalog view re-reads within its ttl
    while True:
        after = wms_get(base, SERVICE="WMS", REQUEST="GetCapabilities")[2]
        if b"<Name>zoning-copy</Name>" in after:
            break
        assert time.monotonic() < deadline, "the capabilities never showed the new layer"
        time.sleep(0.5)
    root = etree.fromstring(after)
    assert root.get("updateSequence") != etree.fromstring(before).get("updateSequence")
    assert math.isfinite(
        float(root.find(".//w:Layer[w:Name='zoning-copy']/w:BoundingBox", WMS_NS).get("minx"))
    )
