"""WMTS 1.0.0 over real HTTP, read by real clients: OWSLib and GDAL's WMTS driver.

The layers are those of test_tilecache (a red square, a blue line and a green DEM in one
tileset; a red polygon with a hole; green point sites), so every expected pixel is known.
"""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from owslib.wmts import WebMapTileService
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling

from tests.serve import serving
from tests.tiles.test_tilecache import (
    DEM_ONLY,
    DONUT,
    DONUT_HOLE,
    LINE_POINT,
    PIXELS,
    SQUARE,
    SQUARE_MIDDLE,
    TILESET_ID,
    build_home,
    ingest,
    near,
    rgba,
)

OWS = "{http://www.opengis.net/ows/1.1}"
WMTS = "{http://www.opengis.net/wmts/1.0}"
EARTH = 2 * np.pi * 6378137
SETS = ("WebMercatorQuad", "WorldCRS84Quad", "TWD97TM2Quad")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wmts")
    home = build_home(folder)
    with serving(home) as base:
        yield base, home, folder


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def capabilities(base: str) -> WebMapTileService:
    return WebMapTileService(f"{base}/wmts/1.0.0/WMTSCapabilities.xml")


# --------------------------------------------------------------------------- OWSLib


def test_owslib_reads_every_source_in_three_matrix_sets(service):
    base, *_ = service
    wmts = capabilities(base)
    assert wmts.identification.type == "OGC WMTS" and wmts.identification.version == "1.0.0"
    assert "圖磚" in wmts.identification.title
    assert set(wmts.contents) == {
        TILESET_ID,
        "square-red",
        "line-blue",
        "dem-green",
        "donut-red",
        "sites-green",
    }
    square = wmts.contents["square-red"]
    assert square.title == "紅色方塊"
    assert square.boundingBoxWGS84 == pytest.approx(SQUARE)
    assert set(square.tilematrixsetlinks) == set(SETS)
    assert square.formats == ["image/png", "image/jpeg", "image/webp"]
    templates = {r["format"]: r["template"] for r in square.resourceURLs}
    assert templates["image/jpeg"] == (
        f"{base}/wmts/1.0.0/square-red/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/"
        "{TileRow}/{TileCol}.jpg"
    )
    assert wmts.contents[TILESET_ID].title == "測試圖組"


def test_the_matrix_sets_are_defined_as_the_standards_say(service):
    base, *_ = service
    sets = capabilities(base).tilematrixsets
    assert list(sets) == list(SETS)
    mercator = sets["WebMercatorQuad"]
    assert mercator.crs == "urn:ogc:def:crs:EPSG::3857"
    for z in range(25):
        m = mercator.tilematrix[str(z)]
        assert m.scaledenominator == pytest.approx(EARTH / 256 / 2**z / 0.00028, rel=1e-12)
        assert m.topleftcorner == pytest.approx((-EARTH / 2, EARTH / 2))
        assert (m.matrixwidth, m.matrixheight, m.tilewidth) == (2**z, 2**z, 256)
    crs84 = sets["WorldCRS84Quad"]
    assert crs84.crs == "urn:ogc:def:crs:OGC:1.3:CRS84"
    m0 = crs84.tilematrix["0"]
    assert (m0.matrixwidth, m0.matrixheight, m0.topleftcorner) == (2, 1, (-180.0, 90.0))
    assert m0.scaledenominator == pytest.approx(180 / 256 * EARTH / 360 / 0.00028)
    twd97 = sets["TWD97TM2Quad"]
    assert twd97.crs == "urn:ogc:def:crs:EPSG::3826"
    for z in range(17):
        m = twd97.tilematrix[str(z)]
        assert m.scaledenominator == pytest.approx(4096 / 2**z / 0.00028, rel=1e-12)
        assert m.topleftcorner == (-200000.0, 3000000.0)
        assert (m.matrixwidth, m.matrixheight) == (2**z, 2**z)


@pytest.mark.parametrize(("tms", "z"), [(s, z) for s, z in zip(SETS, (13, 12, 8), strict=True)])
def test_owslib_gets_tiles_whose_pixels_match_the_layers(service, tms, z):
    base, *_ = service
    wmts = capabilities(base)
    for lonlat, colour in (
        (SQUARE_MIDDLE, (255, 0, 0)),
        (LINE_POINT, (0, 0, 255)),
        (DEM_ONLY, (0, 255, 0)),
    ):
        x, y, col, row = PIXELS[tms](*lonlat, z)
        kvp = wmts.gettile(
            layer=TILESET_ID,
            tilematrixset=tms,
            tilematrix=str(z),
            row=y,
            column=x,
            format="image/png",
        ).read()
        assert near(rgba(kvp, col, row), (*colour, 255)), (tms, lonlat)
        template = next(
            r["template"]
            for r in wmts.contents[TILESET_ID].resourceURLs
            if r["format"] == "image/png"
        )
        rest_url = template.format(
            Style="default", TileMatrixSet=tms, TileMatrix=z, TileRow=y, TileCol=x
        )
        status, headers, rest = get(rest_url)
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert rest == kvp


def test_a_tile_outside_the_data_is_a_blank_image(service):
    base, *_ = service
    status, headers, body = get(f"{base}/wmts/1.0.0/square-red/default/WebMercatorQuad/3/0/0.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(body)).convert("RGBA")
    assert image.size == (256, 256) and image.getextrema()[3] == (0, 0)
    status, headers, body = get(f"{base}/wmts/1.0.0/square-red/default/WebMercatorQuad/3/0/0.jpg")
    assert Image.open(io.BytesIO(body)).convert("RGB").getextrema() == ((255, 255),) * 3


def test_tiles_carry_an_etag_and_answer_304(service):
    base, *_ = service
    x, y, _, _ = PIXELS["TWD97TM2Quad"](*SQUARE_MIDDLE, 9)
    url = f"{base}/wmts/1.0.0/square-red/default/TWD97TM2Quad/9/{y}/{x}.webp"
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    assert "max-age" in headers["Cache-Control"]
    assert get(url, {"If-None-Match": headers["ETag"]})[0] == 304


# --------------------------------------------------------------------------- GDAL


def _gdal(base: str, layer: str, tms: str):
    return rasterio.open(
        f"WMTS:{base}/wmts/1.0.0/WMTSCapabilities.xml,layer={layer},tilematrixset={tms}"
    )


@pytest.mark.parametrize("tms", ["WebMercatorQuad", "TWD97TM2Quad"])
def test_gdal_reads_the_polygon_painted_and_its_hole_empty(service, tms):
    base, *_ = service
    hole = ((DONUT_HOLE[0] + DONUT_HOLE[2]) / 2, (DONUT_HOLE[1] + DONUT_HOLE[3]) / 2)
    ring = ((DONUT[0] + DONUT_HOLE[0]) / 2, hole[1])
    with _gdal(base, "donut-red", tms) as ds:
        assert ds.count == 4 and ds.crs.to_epsg() == (3857 if tms == "WebMercatorQuad" else 3826)
        to_ds = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True)
        for (lon, lat), painted in ((ring, True), (hole, False)):
            row, col = ds.index(*to_ds.transform(lon, lat))
            pixel = ds.read(window=((row, row + 1), (col, col + 1)))[:, 0, 0]
            if painted:
                assert near(tuple(pixel), (255, 0, 0, 255))
            else:
                assert pixel[3] == 0
        # the whole layer at a coarse overview: ring painted, hole empty
        whole = ds.read(out_shape=(4, 64, 64), resampling=Resampling.nearest)
        assert whole[3, 32, 32] == 0
        assert near(tuple(whole[:, 32, 3]), (255, 0, 0, 255))


def test_gdal_reads_the_tileset_in_twd97(service):
    base, *_ = service
    with _gdal(base, TILESET_ID, "TWD97TM2Quad") as ds:
        to_ds = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True)
        # the line is straight between its projected ends (not along the curved parallel)
        ends = [to_ds.transform(lon, LINE_POINT[1]) for lon in (120.58, 120.66)]
        on_line = ((ends[0][0] + ends[1][0]) / 2, (ends[0][1] + ends[1][1]) / 2)
        for xy, colour in (
            (to_ds.transform(*SQUARE_MIDDLE), (255, 0, 0)),
            (on_line, (0, 0, 255)),
            (to_ds.transform(*DEM_ONLY), (0, 255, 0)),
        ):
            row, col = ds.index(*xy)
            pixel = ds.read(window=((row, row + 1), (col, col + 1)))[:, 0, 0]
            assert near(tuple(pixel), (*colour, 255)), xy


# --------------------------------------------------------------------------- documents


def _identifiers(body: bytes) -> set[str]:
    root = ET.fromstring(body)
    return {el.findtext(f"{OWS}Identifier") for el in root.iter(f"{WMTS}Layer")}


def test_capabilities_filter_by_tileset_and_category(service):
    base, *_ = service
    status, _, body = get(f"{base}/wmts/1.0.0/WMTSCapabilities.xml?tileset={TILESET_ID}")
    assert status == 200
    assert _identifiers(body) == {TILESET_ID, "square-red", "line-blue", "dem-green"}
    status, _, body = get(
        f"{base}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities&category=休閒旅遊".replace(
            "休閒旅遊", urllib.request.quote("休閒旅遊")
        )
    )
    assert status == 200 and _identifiers(body) == {"sites-green"}


def test_capabilities_are_cached_and_rebuilt_when_the_catalog_changes(service):
    base, home, folder = service
    url = f"{base}/wmts/1.0.0/WMTSCapabilities.xml"
    _, headers, first = get(url)
    assert get(url)[2] == first
    assert get(url, {"If-None-Match": headers["ETag"]})[0] == 304
    (folder / "more.yaml").write_text(
        "layers:\n  - {id: more-sites, title: 更多站點, source: sites.geojson}\n", "utf-8"
    )
    ingest(folder / "more.yaml", home)
    deadline = time.monotonic() + 30  # the server re-reads the catalog every few seconds
    while "more-sites" not in _identifiers(second := get(url)[2]):
        assert time.monotonic() < deadline, "the new layer never reached the capabilities"
        time.sleep(0.5)
    headers2 = get(url)[1]
    assert "more-sites" in _identifiers(second) and "more-sites" not in _identifiers(first)
    assert headers2["ETag"] != headers["ETag"]


def _report(body: bytes) -> tuple[str, str]:
    root = ET.fromstring(body)
    assert root.tag == f"{OWS}ExceptionReport"
    exc = root.find(f"{OWS}Exception")
    assert exc.findtext(f"{OWS}ExceptionText")
    return exc.get("exceptionCode"), exc.get("locator")


KVP = "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=square-red&STYLE=default"
TILE = "&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=3"


@pytest.mark.parametrize(
    ("path", "status", "code", "locator"),
    [
        (f"{KVP}{TILE}&TILEROW=8&TILECOL=0", 400, "TileOutOfRange", "TileRow"),
        (f"{KVP}{TILE}&TILEROW=0&TILECOL=99", 400, "TileOutOfRange", "TileCol"),
        (f"{KVP}{TILE}&TILEROW=0", 400, "MissingParameterValue", "TileCol"),
        (f"{KVP}{TILE}&TILEROW=x&TILECOL=0", 400, "InvalidParameterValue", "TileRow"),
        (
            f"{KVP.replace('square-red', 'nope')}{TILE}&TILEROW=0&TILECOL=0",
            400,
            "InvalidParameterValue",
            "Layer",
        ),
        (
            f"{KVP}{TILE.replace('png', 'gif')}&TILEROW=0&TILECOL=0",
            400,
            "InvalidParameterValue",
            "Format",
        ),
        (
            f"{KVP.replace('default', 'fancy')}{TILE}&TILEROW=0&TILECOL=0",
            400,
            "InvalidParameterValue",
            "Style",
        ),
        ("/wmts?REQUEST=GetCapabilities", 400, "MissingParameterValue", "Service"),
        ("/wmts?SERVICE=WMTS", 400, "MissingParameterValue", "Request"),
        ("/wmts?SERVICE=WMTS&REQUEST=GetFeatureInfo", 501, "OperationNotSupported", "Request"),
        ("/wmts?SERVICE=WMTS&REQUEST=Explode", 501, "OperationNotSupported", "Request"),
        (
            "/wmts?SERVICE=WMTS&REQUEST=GetCapabilities&ACCEPTVERSIONS=2.0.0",
            400,
            "VersionNegotiationFailed",
            "AcceptVersions",
        ),
        (
            "/wmts/1.0.0/square-red/default/GoogleMapsCompatible/3/0/0.png",
            400,
            "InvalidParameterValue",
            "TileMatrixSet",
        ),
        (
            "/wmts/1.0.0/square-red/default/TWD97TM2Quad/17/0/0.png",
            400,
            "InvalidParameterValue",
            "TileMatrix",
        ),
        (
            "/wmts/1.0.0/square-red/default/WorldCRS84Quad/0/0/2.png",
            400,
            "TileOutOfRange",
            "TileCol",
        ),
        (
            "/wmts/1.0.0/square-red/default/WebMercatorQuad/0/0/0.tif",
            400,
            "InvalidParameterValue",
            "Format",
        ),
        ("/wmts/1.0.0/square-red/default", 400, "InvalidParameterValue", "ResourceURL"),
        (
            "/wmts/1.0.0/WMTSCapabilities.xml?tileset=no-such",
            400,
            "InvalidParameterValue",
            "tileset",
        ),
    ],
)
def test_bad_requests_get_ows_exception_reports(service, path, status, code, locator):
    base, *_ = service
    got_status, headers, body = get(base + path)
    assert got_status == status
    assert headers["Content-Type"].startswith("application/xml")
    assert _report(body) == (code, locator)
