"""The three tile matrix sets against their references: mercantile, the OGC definitions, pyproj."""

from __future__ import annotations

import math
import random

import mercantile
import pytest
from morecantile import TileMatrixSet
from pyproj import Transformer

from tiles.matrix import (
    TWD97,
    WEB_MERCATOR,
    WORLD_CRS84,
    TileOutOfRange,
    UnknownMatrixSet,
    UnknownTileMatrix,
    lonlat_to_xy,
    matrix_sets,
    tile_address,
    tile_bbox,
    tiles_covering,
)

EARTH = 2 * math.pi * 6378137  # WebMercator circumference (m)
M_PER_DEGREE = EARTH / 360
PIXEL = 0.00028
#: Places the TWD97 grid must cover (lon, lat): the main island's extremes and the islands.
PLACES = {
    "金門 Kinmen (west end)": (118.13, 24.42),
    "馬祖東引 Matsu Dongyin": (120.49, 26.37),
    "澎湖 Penghu (south)": (119.30, 23.20),
    "蘭嶼 Orchid Island": (121.60, 21.90),
    "七星岩 Qixingyan (south end)": (120.83, 21.75),
    "彭佳嶼 Pengjia Islet (north-east)": (122.08, 25.63),
    "東沙 Pratas": (116.72, 20.70),
}


def test_the_three_sets_are_served():
    assert list(matrix_sets()) == [WEB_MERCATOR, WORLD_CRS84, TWD97]


def test_web_mercator_quad_conforms_to_mercantile():
    rng = random.Random(4)
    for _ in range(300):
        z = rng.randint(0, 22)
        x, y = rng.randrange(2**z), rng.randrange(2**z)
        ours = tile_bbox(tile_address(WEB_MERCATOR, z, x, y))
        ref = mercantile.xy_bounds(x, y, z)
        assert ours == pytest.approx((ref.left, ref.bottom, ref.right, ref.top), abs=1e-6)


def test_web_mercator_scales_are_google_maps_compatible():
    tms = matrix_sets()[WEB_MERCATOR]
    for z in range(tms.maxzoom + 1):
        m = tms.matrix(z)
        assert m.scaleDenominator == pytest.approx(EARTH / 256 / 2**z / PIXEL, rel=1e-12)
        assert m.pointOfOrigin == pytest.approx((-EARTH / 2, EARTH / 2))
        assert (m.matrixWidth, m.matrixHeight) == (2**z, 2**z)


def test_world_crs84_quad_is_two_tiles_wide_at_level_zero():
    rng = random.Random(7)
    for _ in range(200):
        z = rng.randint(0, 20)
        span = 180 / 2**z
        x, y = rng.randrange(2 ** (z + 1)), rng.randrange(2**z)
        ours = tile_bbox(tile_address(WORLD_CRS84, z, x, y))
        expected = (-180 + x * span, 90 - (y + 1) * span, -180 + (x + 1) * span, 90 - y * span)
        assert ours == pytest.approx(expected, abs=1e-9)
        m = matrix_sets()[WORLD_CRS84].matrix(z)
        assert m.scaleDenominator == pytest.approx(span / 256 * M_PER_DEGREE / PIXEL, rel=1e-9)


def test_twd97_set_is_the_documented_quadtree():
    tms = matrix_sets()[TWD97]
    assert tms.crs.to_epsg() == 3826
    assert (tms.minzoom, tms.maxzoom) == (0, 16)
    for z in range(17):
        m = tms.matrix(z)
        assert m.id == str(z)
        assert m.cellSize == 4096 / 2**z
        assert m.scaleDenominator == pytest.approx(4096 / 2**z / PIXEL, rel=1e-12)
        assert tuple(m.pointOfOrigin) == (-200_000.0, 3_000_000.0)
        assert (m.tileWidth, m.tileHeight) == (256, 256)
        assert (m.matrixWidth, m.matrixHeight) == (2**z, 2**z)
    assert tile_bbox(tile_address(TWD97, 2, 1, 3)) == (
        -200_000 + 262_144,
        3_000_000 - 4 * 262_144,
        -200_000 + 2 * 262_144,
        3_000_000 - 3 * 262_144,
    )


@pytest.mark.parametrize("place", PLACES)
def test_twd97_set_covers_taiwan_and_the_outlying_islands(place):
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True).transform(*PLACES[place])
    west, south, east, north = tile_bbox(tile_address(TWD97, 0, 0, 0))
    assert west < e < east and south < n < north
    tms = matrix_sets()[TWD97]
    t = tms.tile(*PLACES[place], 16)  # morecantile's own lookup agrees with the definition
    assert (t.x, t.y) == (int((e + 200_000) // 16), int((3_000_000 - n) // 16))


def test_twd97_set_round_trips_through_ogc_tms_json():
    tms = matrix_sets()[TWD97]
    again = TileMatrixSet.model_validate_json(tms.model_dump_json(exclude_none=True))
    assert again.model_dump() == tms.model_dump()
    assert again.id == TWD97 and again.crs.to_epsg() == 3826


def test_bad_addresses_name_what_is_wrong():
    with pytest.raises(UnknownMatrixSet, match="GoogleMapsCompatible"):
        tile_address("GoogleMapsCompatible", 0, 0, 0)
    with pytest.raises(UnknownTileMatrix, match=r"levels 0\.\.24"):
        tile_address(WEB_MERCATOR, 25, 0, 0)
    with pytest.raises(TileOutOfRange, match=r"columns 0\.\.3, rows 0\.\.1") as info:
        tile_address(WORLD_CRS84, 1, 4, 0)
    assert info.value.locator == "TileCol"
    with pytest.raises(TileOutOfRange) as info:
        tile_address(WORLD_CRS84, 1, 0, 2)
    assert info.value.locator == "TileRow"


def test_tiles_covering_a_bbox_match_mercantile():
    bbox = (120.60, 24.10, 120.64, 24.14)
    for z in (8, 12, 15):
        ref = list(mercantile.tiles(*bbox, z))
        x0, y0, x1, y1 = tiles_covering(bbox, WEB_MERCATOR, z)
        assert (x0, y0, x1, y1) == (
            min(t.x for t in ref),
            min(t.y for t in ref),
            max(t.x for t in ref),
            max(t.y for t in ref),
        )


def test_lonlat_to_xy_clamps_to_the_mercator_square():
    minx, miny, maxx, maxy = lonlat_to_xy((-180, -90, 180, 90), WEB_MERCATOR)
    assert (minx, maxy) == pytest.approx((-EARTH / 2, EARTH / 2))
    assert (maxx, miny) == pytest.approx((EARTH / 2, -EARTH / 2))
