"""OGC API - Tiles of vector layers: a pygeoapi tile provider over our PMTiles archives.

pygeoapi has no PMTiles provider; :class:`GeoportalTileProvider` is one. Every vector layer
collection offers vector tiles (MVT) in two tile matrix sets:

- ``WebMercatorQuad``: the tiles of the layer version's tippecanoe archive
  (``tiles.build.archive_path``), read through the process-wide cached tile source
  (``tiles.source.open_archive``: header and directories parsed once, the file memory-mapped).
  The tiles are the same bytes ``/tiles/{id}/{z}/{x}/{y}.mvt`` serves (stored gzip-compressed;
  pygeoapi's response is decompressed here, then gzip-encoded by the app when the client
  accepts it).
- ``TWD97TM2Quad`` (``tiles.matrix``; EPSG:3826): an archive holds WebMercator tiles only, so
  these tiles are cut on demand from the stored GeoPackage version in that grid: R-tree lookup
  of the tile's extent (plus a 64/4096 buffer), geometries projected to TM2, clipped, simplified
  to the tile's resolution and encoded with ``mapbox_vector_tile`` (extent 4096). Over
  :data:`MAX_FEATURES` features in a tile, an even sample by feature id is kept (as tippecanoe
  drops the densest features at low zooms). Cut tiles are kept in a small LRU per process.

Why vector tiles in both sets rather than rendered PNG for TWD97: pygeoapi's tile endpoints give
a collection one tile provider with one media type and ``dataType``, and the OGC API - Tiles
"vector" tileset (``/collections/{id}/tiles``) is not a map tileset; MVT in both keeps every
tile of the collection in one format and the attributes available to clients. Rendered TWD97
PNG tiles remain at WMTS (``/wmts``, TileMatrixSet ``TWD97TM2Quad``).

pygeoapi reads its tile matrix sets from JSON files inside its package; ``TWD97TM2Quad`` (the
definition ``tiles.matrix`` serves to WMTS) is added to the enumeration pygeoapi consults when
this module is imported, so ``/ogc/TileMatrixSets/TWD97TM2Quad`` and the tileset documents
describe it.
"""

from __future__ import annotations

import gzip
import math
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mapbox_vector_tile
import pygeoapi.api.tiles as _api_tiles
import pygeoapi.models.provider.base as _models
import pygeoapi.provider.base_mvt as _base_mvt
import pygeoapi.provider.tile as _provider_tile
import pyproj
import shapely
from pmtiles.tile import Compression
from pygeoapi.models.provider.base import (
    LinkType,
    TileMatrixSetEnumType,
    TileSetMetadata,
    TwoDBoundingBoxType,
)
from pygeoapi.provider.base import ProviderConnectionError
from pygeoapi.provider.base_mvt import BaseMVTProvider
from pygeoapi.provider.tile import ProviderTileNotFoundError, ProviderTilesetIdNotFoundError

from portal.ogc.provider import open_store
from tiles.build import archive_path, tile_zooms
from tiles.errors import TilesError
from tiles.matrix import (
    TWD97,
    TWD97_MAXZOOM,
    WEB_MERCATOR,
    TileAddress,
    lonlat_to_xy,
    tile_address,
    tile_bbox,
    twd97_definition,
)
from tiles.source import open_archive

if TYPE_CHECKING:
    from catalog.model import Layer, LayerVersion
    from portal.ogc.config import Site

#: Dotted path of the tile provider, as pygeoapi loads it.
TILE_PROVIDER = "portal.ogc.tiles.GeoportalTileProvider"
MVT = "application/vnd.mapbox-vector-tile"
#: The tile matrix sets every vector collection offers.
SCHEMES = (WEB_MERCATOR, TWD97)
#: MVT coordinate extent and the buffer around a cut tile (in those units).
EXTENT = 4096
BUFFER = 64
#: Features kept in one cut TWD97 tile at most (an even sample by feature id beyond that).
MAX_FEATURES = 20_000
#: Zoom range advertised when the layer has no archive (TWD97 tiles are cut from the store).
DEFAULT_ZOOMS = (0, TWD97_MAXZOOM)
#: URI naming the TWD97 set (it is not in the OGC registry; its definition is served at
#: /ogc/TileMatrixSets/TWD97TM2Quad).
TWD97_URI = "urn:geoportal:def:tilematrixset:TWD97TM2Quad"


def _install_twd97() -> None:
    """Add TWD97TM2Quad to the tile matrix sets pygeoapi enumerates (once per process)."""
    if any(e.value.tileMatrixSet == TWD97 for e in _models.TileMatrixSetEnum):
        return
    definition = twd97_definition()
    twd97 = TileMatrixSetEnumType(
        tileMatrixSet=TWD97,
        tileMatrixSetURI=TWD97_URI,
        crs=definition["crs"],
        title=definition["title"],
        orderedAxes=definition["orderedAxes"],
        wellKnownScaleSet="",
        tileMatrices=definition["tileMatrices"],
    )
    members = {e.name: e.value for e in _models.TileMatrixSetEnum}
    members["TWD97TM2QUAD"] = twd97
    enum = Enum("TileMatrixSetEnum", members)
    for module in (_models, _api_tiles, _provider_tile, _base_mvt):
        module.TileMatrixSetEnum = enum


_install_twd97()


def tile_provider(layer: Layer, version: LayerVersion, site: Site) -> list[dict]:
    """The OGC API - Tiles provider definition of a vector layer version."""
    if version.kind != "vector":
        return []
    archive = archive_path(site.home, layer.id, version.version, tile_zooms(layer))
    return [
        {
            "type": "tile",
            "name": TILE_PROVIDER,
            "data": str(archive),
            "options": {
                "layer": layer.id,
                "features": str(site.home / version.path),
                "bounds": list(version.bbox) if version.bbox else None,
                "schemes": list(SCHEMES),
                "zoom": {"min": DEFAULT_ZOOMS[0], "max": DEFAULT_ZOOMS[1]},
            },
            "format": {"name": "mvt", "mimetype": MVT},
        }
    ]


def _int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ProviderTileNotFoundError(f"{name} {value!r} is not an integer") from None
    if number < 0:
        raise ProviderTileNotFoundError(f"{name} {value!r} is negative")
    return number


class GeoportalTileProvider(BaseMVTProvider):
    """pygeoapi MVT tile provider over a layer's PMTiles archive (see module docstring)."""

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        self.options = dict(provider_def.get("options") or {})
        self.layer = self.options["layer"]
        self.features = self.options["features"]
        self.archive = None
        path = Path(self.data)
        if path.exists():
            self.archive = open_archive(path)
            h = self.archive.header
            self.options["zoom"] = {"min": h["min_zoom"], "max": h["max_zoom"]}
        self._service_url = ""

    def __repr__(self) -> str:
        return f"<GeoportalTileProvider> {self.data}"

    def get_layer(self) -> str:
        """The MVT layer name in the tiles: the layer id."""
        return self.layer

    def get_fields(self) -> dict:
        """The layer's attributes (from the stored version) and their JSON Schema types."""
        return {c.name: {"type": c.type} for c in open_store(self.features).columns.values()}

    def get_tiling_schemes(self) -> list[TileMatrixSetEnumType]:
        """WebMercatorQuad and TWD97TM2Quad, as pygeoapi describes tile matrix sets."""
        found = {e.value.tileMatrixSet: e.value for e in _models.TileMatrixSetEnum}
        return [found[s] for s in SCHEMES]

    def get_tiles_service(
        self,
        baseurl: str | None = None,
        servicepath: str | None = None,
        dirpath: str | None = None,
        tile_type: str | None = None,
    ) -> dict:
        """Links to the tiles (URL template) and the tileset metadata."""
        self._service_url = servicepath or ""
        return self.get_tms_links()

    def get_tiles(
        self,
        layer: str | None = None,
        tileset: str | None = None,
        z: Any = None,
        y: Any = None,
        x: Any = None,
        format_: str | None = None,
    ) -> bytes | None:
        """One MVT tile (uncompressed), None when the tile is empty but inside the layer.

        Raises:
            ProviderTilesetIdNotFoundError: not one of :data:`SCHEMES` (HTTP 404).
            ProviderTileNotFoundError: not a tile of the set, or outside the layer (HTTP 404).
        """
        if tileset not in SCHEMES:
            raise ProviderTilesetIdNotFoundError(
                f"tile matrix set {tileset!r} is not offered; one of {list(SCHEMES)}"
            )
        zi, xi, yi = _int(z, "tileMatrix"), _int(x, "tileCol"), _int(y, "tileRow")
        try:
            tile = tile_address(tileset, zi, xi, yi)
        except TilesError as err:
            raise ProviderTileNotFoundError(str(err)) from None
        if tileset == WEB_MERCATOR:
            return self._archive_tile(tile)
        return cut_tile(self.features, self.layer, tile, _bounds(self.options.get("bounds")))

    def _archive_tile(self, tile: TileAddress) -> bytes | None:
        if self.archive is None:
            raise ProviderTileNotFoundError(
                f"layer {self.layer!r} has no vector tiles yet (geoportal tiles build)"
            )
        h = self.archive.header
        data = self.archive.get(tile.z, tile.x, tile.y)
        if data is None:
            if h["min_zoom"] <= tile.z <= h["max_zoom"] and _touches(self.archive.bounds, tile):
                return None
            raise ProviderTileNotFoundError(f"tile {tile.z}/{tile.y}/{tile.x} is outside the layer")
        if h["tile_compression"] == Compression.GZIP:
            return gzip.decompress(data)
        return data

    def get_html_metadata(
        self, dataset, server_url, layer, tileset, title, description, keywords, **kwargs
    ) -> dict:
        """What pygeoapi's tileset HTML page shows."""
        metadata_url = f"{server_url}/collections/{dataset}/tiles/{tileset}/metadata"
        return {
            "id": dataset,
            "title": title,
            "tileset": tileset,
            "collections_path": self._tile_url(server_url, dataset, tileset),
            "json_url": f"{metadata_url}?f=json",
        }

    def get_default_metadata(
        self, dataset, server_url, layer, tileset, title, description, keywords, **kwargs
    ) -> dict:
        """OGC Tile Set Metadata of the collection's tiles in ``tileset``."""
        schemes = {s.tileMatrixSet: s for s in self.get_tiling_schemes()}
        scheme = schemes.get(tileset)
        if scheme is None:
            raise ProviderTilesetIdNotFoundError(
                f"tile matrix set {tileset!r} is not offered; one of {list(SCHEMES)}"
            )
        zmin, zmax = self._zooms(tileset)
        content = TileSetMetadata(
            title=title,
            description=description,
            keywords=keywords,
            crs=scheme.crs,
            tileMatrixSetURI=scheme.tileMatrixSetURI,
        )
        root = server_url.rstrip("/").removesuffix("/ogc")
        links = [
            LinkType(
                href=f"{server_url}/TileMatrixSets/{tileset}",
                rel="http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                type="application/json",
                title=f"{tileset} tile matrix set definition",
            ),
            LinkType(
                href=self._tile_url(server_url, dataset, tileset),
                rel="item",
                type=MVT,
                title=f"{tileset} vector tiles for {layer}",
            ),
            LinkType(
                href=f"{root}/tiles/{dataset}.json",
                rel="describedby",
                type="application/json",
                title="TileJSON (WebMercatorQuad)",
            ),
        ]
        content.links = links
        bounds = _bounds(self.options.get("bounds"))
        out = content.model_dump(exclude_none=True, by_alias=True)
        out["dataType"] = "vector"
        out["tileMatrixSetLimits"] = _limits(tileset, zmin, zmax, bounds)
        if bounds is not None:
            box = TwoDBoundingBoxType(
                lowerLeft=[bounds[0], bounds[1]],
                upperRight=[bounds[2], bounds[3]],
                crs="http://www.opengis.net/def/crs/OGC/1.3/CRS84",
            )
            out["boundingBox"] = box.model_dump(exclude_none=True)
        out["layers"] = [
            {
                "id": self.layer,
                "dataType": "vector",
                "minTileMatrix": str(zmin),
                "maxTileMatrix": str(zmax),
                "propertiesSchema": {"type": "object", "properties": self.get_fields()},
            }
        ]
        return out

    def get_vendor_metadata(
        self, dataset, server_url, layer, tileset, title, description, keywords, **kwargs
    ) -> dict:
        """TileJSON 3.0 of the WebMercatorQuad tiles (TileJSON has no other grids)."""
        if tileset != WEB_MERCATOR:
            raise ProviderConnectionError(
                f"TileJSON describes WebMercatorQuad tiles only, not {tileset}"
            )
        zmin, zmax = self._zooms(tileset)
        bounds = _bounds(self.options.get("bounds")) or (-180.0, -85.05, 180.0, 85.05)
        vector_layers = self.archive.metadata.get("vector_layers", []) if self.archive else []
        return {
            "tilejson": "3.0.0",
            "name": title,
            "description": description,
            "tiles": [self._tile_url(server_url, dataset, tileset)],
            "minzoom": zmin,
            "maxzoom": zmax,
            "bounds": list(bounds),
            "vector_layers": vector_layers,
        }

    def _zooms(self, tileset: str) -> tuple[int, int]:
        if tileset == WEB_MERCATOR and self.archive is not None:
            return self.options["zoom"]["min"], self.options["zoom"]["max"]
        return DEFAULT_ZOOMS

    @staticmethod
    def _tile_url(server_url: str, dataset: str, tileset: str) -> str:
        return (
            f"{server_url}/collections/{dataset}/tiles/{tileset}"
            "/{tileMatrix}/{tileRow}/{tileCol}?f=mvt"
        )


def _bounds(value: Any) -> tuple[float, float, float, float] | None:
    return tuple(value) if value else None


def _touches(bounds: tuple[float, float, float, float], tile: TileAddress) -> bool:
    minx, miny, maxx, maxy = lonlat_to_xy(bounds, tile.tms)
    tminx, tminy, tmaxx, tmaxy = tile_bbox(tile)
    return not (tmaxx < minx or tminx > maxx or tmaxy < miny or tminy > maxy)


def _limits(
    tileset: str, zmin: int, zmax: int, bounds: tuple[float, float, float, float] | None
) -> list[dict]:
    """OGC tileMatrixSetLimits: the tile rows and columns the layer's extent covers."""
    if bounds is None:
        return []
    from tiles.matrix import tiles_covering

    out = []
    for z in range(zmin, zmax + 1):
        c0, r0, c1, r1 = tiles_covering(bounds, tileset, z)
        out.append(
            {
                "tileMatrix": str(z),
                "minTileRow": r0,
                "maxTileRow": r1,
                "minTileCol": c0,
                "maxTileCol": c1,
            }
        )
    return out


@lru_cache(maxsize=4)
def _to_tm2() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:3826", always_xy=True)


@lru_cache(maxsize=4)
def _to_lonlat() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:3826", "OGC:CRS84", always_xy=True)


def _select(store: Any, lonlat: tuple[float, float, float, float]) -> list[tuple]:
    """(fid, geometry blob, *attributes) of the stored features whose envelope meets the box."""
    cols = list(store.columns.values())
    names = ", ".join(["f." + store.pk, "f." + store.geometry, *("f." + c.ident for c in cols)])
    con = store.connection()
    if store.rtree is None:
        sql = f"SELECT {names} FROM features AS f"
        return con.execute(sql).fetchall()
    where = "r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?"
    params = (lonlat[0], lonlat[2], lonlat[1], lonlat[3])
    join = f"features AS f JOIN {store.rtree} AS r ON r.id = f.{store.pk}"
    (count,) = con.execute(
        f"SELECT COUNT(*) FROM {store.rtree} AS r WHERE {where}", params
    ).fetchone()
    sample = ""
    if count > MAX_FEATURES:
        sample = f" AND f.{store.pk} % {math.ceil(count / MAX_FEATURES)} = 0"
    return con.execute(f"SELECT {names} FROM {join} WHERE {where}{sample}", params).fetchall()


@lru_cache(maxsize=256)
def cut_tile(
    features: str,
    layer: str,
    tile: TileAddress,
    bounds: tuple[float, float, float, float] | None,
) -> bytes | None:
    """An MVT tile of a stored layer version cut in the tile's (projected) grid.

    Args:
        features: the stored GeoPackage version.
        layer: the MVT layer name.
        tile: a TWD97TM2Quad tile.
        bounds: the layer's lon/lat extent (None: unknown).

    Returns:
        The encoded tile; None when nothing of the layer is in it but it is within the extent.

    Raises:
        ProviderTileNotFoundError: the tile is outside the layer's extent.
    """
    from portal.ogc.provider import wkb_of  # GeoPackage blob → WKB, the Features provider's

    if bounds is not None and not _touches(bounds, tile):
        raise ProviderTileNotFoundError(f"tile {tile.z}/{tile.y}/{tile.x} is outside the layer")
    minx, miny, maxx, maxy = tile_bbox(tile)
    pad = (maxx - minx) * BUFFER / EXTENT
    clip = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    lonlat = _to_lonlat().transform_bounds(*clip, densify_pts=21)
    store = open_store(features)
    rows = _select(store, lonlat)
    if not rows:
        return None
    names = list(store.columns)
    geoms = shapely.from_wkb([wkb_of(r[1]) for r in rows])
    geoms = shapely.transform(geoms, lambda xy: _stack(_to_tm2().transform(xy[:, 0], xy[:, 1])))
    geoms = shapely.clip_by_rect(geoms, *clip)
    geoms = shapely.simplify(geoms, (maxx - minx) / EXTENT / 2, preserve_topology=True)
    out = []
    for row, geom in zip(rows, geoms, strict=True):
        if geom is None or geom.is_empty:
            continue
        props = {k: v for k, v in zip(names, row[2:], strict=True) if v is not None}
        parts = geom.geoms if geom.geom_type == "GeometryCollection" else (geom,)
        out.extend({"geometry": g, "properties": props, "id": row[0]} for g in parts)
    if not out:
        return None
    return mapbox_vector_tile.encode(
        [{"name": layer, "features": out}],
        default_options={"quantize_bounds": (minx, miny, maxx, maxy), "extents": EXTENT},
    )


def _stack(xy: tuple) -> Any:
    import numpy as np

    return np.column_stack(xy)
