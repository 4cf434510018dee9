"""The tile matrix sets raster tiles are served in, and tile addresses within them.

Three sets, all morecantile :class:`~morecantile.TileMatrixSet` objects (OGC Two Dimensional
Tile Matrix Set 2.0, the model OGC API Tiles uses as well):

- ``WebMercatorQuad`` (EPSG:3857, the XYZ grid of every web map; WMTS well-known scale set
  GoogleMapsCompatible), from morecantile's registry;
- ``WorldCRS84Quad`` (CRS84 longitude/latitude, two tiles at level 0), from the registry;
- ``TWD97TM2Quad`` (EPSG:3826, TWD97 / TM2 zone 121): geoportal's own quadtree grid for
  Taiwan, defined below in the OGC 2D-TMS JSON encoding. Its top-left corner is
  (-200 000 E, 3 000 000 N), level 0 is one 256-pixel tile of 4 096 m cells and every level
  halves the cell, down to level 16 (6.25 cm). Level 0 spans E -200 000 … 848 576 and
  N 1 951 424 … 3 000 000: Taiwan, Penghu, Kinmen, Matsu, Green Island, Orchid Island and
  Pratas. docs/wmts.md says why this grid and how it compares to the national services.

A tile is addressed by (matrix set id, level, column, row) — :class:`TileAddress`, with the
column x and the row y counted from the top-left as in XYZ and WMTS; :func:`tile_address`
validates one, :func:`tile_bbox` gives its extent in the set's CRS (x/easting first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile
from morecantile import Tile, TileMatrixSet
from pyproj import Transformer

from tiles.errors import TilesError

WEB_MERCATOR = "WebMercatorQuad"
WORLD_CRS84 = "WorldCRS84Quad"
TWD97 = "TWD97TM2Quad"

#: OGC standardized rendering pixel size (0.28 mm), which scale denominators are based on.
PIXEL_SIZE = 0.00028
#: TWD97TM2Quad: top-left corner (easting, northing), level-0 cell size (m), deepest level.
TWD97_ORIGIN = (-200_000.0, 3_000_000.0)
TWD97_CELL0 = 4096.0
TWD97_MAXZOOM = 16
TILE_SIZE = 256


@dataclass(frozen=True)
class MatrixSetInfo:
    """How a tile matrix set is named to renderers and in WMTS capabilities.

    Attributes:
        id: the set's identifier (URLs, WMTS ``TileMatrixSet``).
        render_crs: the CRS the renderer draws its tiles in ("EPSG:3857", ...).
        wmts_crs: the WMTS ``ows:SupportedCRS`` URN (its axis order is the TopLeftCorner's).
        well_known_scale_set: WMTS 1.0 ``WellKnownScaleSet`` URN, or "" when none applies.
        title: zh-TW title.
        title_en: English title.
    """

    id: str
    render_crs: str
    wmts_crs: str
    well_known_scale_set: str
    title: str
    title_en: str


INFO = {
    WEB_MERCATOR: MatrixSetInfo(
        WEB_MERCATOR,
        "EPSG:3857",
        "urn:ogc:def:crs:EPSG::3857",
        "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible",
        "Web 麥卡托（全球）",
        "Web Mercator (world)",
    ),
    WORLD_CRS84: MatrixSetInfo(
        WORLD_CRS84,
        "EPSG:4326",
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "",
        "經緯度（CRS84，全球）",
        "Longitude/latitude (CRS84, world)",
    ),
    TWD97: MatrixSetInfo(
        TWD97,
        "EPSG:3826",
        "urn:ogc:def:crs:EPSG::3826",
        "",
        "TWD97 二度分帶（TM2 121，臺灣及離島）",
        "TWD97 / TM2 zone 121 (Taiwan and outlying islands)",
    ),
}


class UnknownMatrixSet(TilesError):
    """A tile matrix set id that is not one of :func:`matrix_sets`."""

    def __init__(self, tms_id: str) -> None:
        super().__init__(f"tile matrix set {tms_id!r} is not served; one of {sorted(INFO)}")
        self.tms_id = tms_id


class UnknownTileMatrix(TilesError):
    """A tile matrix (zoom level) that the set does not have."""

    def __init__(self, tms_id: str, level: object) -> None:
        tms = matrix_sets()[tms_id]
        super().__init__(
            f"tile matrix {level!r} is not in {tms_id} (levels {tms.minzoom}..{tms.maxzoom})"
        )
        self.tms_id = tms_id
        self.level = level


class TileOutOfRange(TilesError):
    """A tile column or row outside its tile matrix; ``locator`` names which one."""

    def __init__(self, tms_id: str, z: int, x: int, y: int, locator: str) -> None:
        matrix = matrix_sets()[tms_id].matrix(z)
        super().__init__(
            f"Tile(x={x}, y={y}, z={z}) is outside {tms_id} level {z}: columns "
            f"0..{matrix.matrixWidth - 1}, rows 0..{matrix.matrixHeight - 1}"
        )
        self.locator = locator


@dataclass(frozen=True)
class TileAddress:
    """One tile of a tile matrix set: level ``z``, column ``x``, row ``y`` (from top-left)."""

    tms: str
    z: int
    x: int
    y: int


def twd97_definition() -> dict:
    """The TWD97TM2Quad set in the OGC 2D-TMS 2.0 JSON encoding."""
    matrices = []
    for z in range(TWD97_MAXZOOM + 1):
        cell = TWD97_CELL0 / 2**z
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / PIXEL_SIZE,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": list(TWD97_ORIGIN),
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": 2**z,
                "matrixHeight": 2**z,
            }
        )
    span = TWD97_CELL0 * TILE_SIZE
    west, north = TWD97_ORIGIN
    return {
        "id": TWD97,
        "title": "TWD97 / TM2 zone 121 quadtree for Taiwan, Penghu, Kinmen and Matsu",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3826",
        "orderedAxes": ["E", "N"],
        "boundingBox": {
            "lowerLeft": [west, north - span],
            "upperRight": [west + span, north],
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3826",
        },
        "tileMatrices": matrices,
    }


@lru_cache(maxsize=1)
def matrix_sets() -> dict[str, TileMatrixSet]:
    """The served tile matrix sets by id (built once; TileMatrixSet objects are immutable)."""
    return {
        WEB_MERCATOR: morecantile.tms.get(WEB_MERCATOR),
        WORLD_CRS84: morecantile.tms.get(WORLD_CRS84),
        TWD97: TileMatrixSet.model_validate(twd97_definition()),
    }


def matrix_set(tms_id: str) -> TileMatrixSet:
    """The set named ``tms_id``.

    Raises:
        UnknownMatrixSet: not a served set.
    """
    try:
        return matrix_sets()[tms_id]
    except KeyError:
        raise UnknownMatrixSet(tms_id) from None


def tile_address(tms_id: str, z: int, x: int, y: int) -> TileAddress:
    """A validated tile address.

    Raises:
        UnknownMatrixSet: ``tms_id`` is not served.
        UnknownTileMatrix: the set has no level ``z``.
        TileOutOfRange: ``x`` (locator "TileCol") or ``y`` ("TileRow") is outside level z.
    """
    tms = matrix_set(tms_id)
    if not tms.minzoom <= z <= tms.maxzoom:
        raise UnknownTileMatrix(tms_id, z)
    matrix = tms.matrix(z)
    if not 0 <= x < matrix.matrixWidth:
        raise TileOutOfRange(tms_id, z, x, y, "TileCol")
    if not 0 <= y < matrix.matrixHeight:
        raise TileOutOfRange(tms_id, z, x, y, "TileRow")
    return TileAddress(tms_id, z, x, y)


def tile_bbox(tile: TileAddress) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the tile in its set's CRS, x (easting, longitude) first."""
    b = matrix_set(tile.tms).xy_bounds(Tile(tile.x, tile.y, tile.z))
    return (b.left, b.bottom, b.right, b.top)


def cell_size(tms_id: str, z: int) -> float:
    """Ground size of one pixel at level ``z``, in the set's CRS units (m or degrees)."""
    return matrix_set(tms_id).matrix(z).cellSize


def scale_denominator(tms_id: str, z: int) -> float:
    """The WMTS scale denominator of level ``z``."""
    return matrix_set(tms_id).matrix(z).scaleDenominator


@lru_cache(maxsize=8)
def _from_lonlat(tms_id: str) -> Transformer:
    return Transformer.from_crs("OGC:CRS84", INFO[tms_id].render_crs, always_xy=True)


_MAX_MERCATOR_LAT = 85.0511287798066


def lonlat_to_xy(
    bbox: tuple[float, float, float, float], tms_id: str
) -> tuple[float, float, float, float]:
    """A lon/lat bbox (EPSG:4326, lon first) as a bbox in the set's CRS (edges densified)."""
    west, south, east, north = bbox
    if tms_id == WORLD_CRS84:
        return (west, south, east, north)
    if tms_id == WEB_MERCATOR:
        south = max(south, -_MAX_MERCATOR_LAT)
        north = min(north, _MAX_MERCATOR_LAT)
    out = _from_lonlat(tms_id).transform_bounds(west, south, east, north, densify_pts=21)
    if not all(math.isfinite(v) for v in out):
        raise TilesError(f"bbox {bbox} cannot be expressed in {tms_id}")
    return out


def tiles_covering(
    bbox: tuple[float, float, float, float], tms_id: str, z: int
) -> tuple[int, int, int, int]:
    """(min col, min row, max col, max row) of the level-z tiles that a lon/lat bbox touches."""
    minx, miny, maxx, maxy = lonlat_to_xy(bbox, tms_id)
    matrix = matrix_set(tms_id).matrix(z)
    ox, oy = matrix.pointOfOrigin
    span_x = matrix.cellSize * matrix.tileWidth
    span_y = matrix.cellSize * matrix.tileHeight

    def clamp(v: float, top: int) -> int:
        return min(max(math.floor(v), 0), top - 1)

    return (
        clamp((minx - ox) / span_x, matrix.matrixWidth),
        clamp((oy - maxy) / span_y, matrix.matrixHeight),
        clamp((maxx - ox) / span_x, matrix.matrixWidth),
        clamp((oy - miny) / span_y, matrix.matrixHeight),
    )
