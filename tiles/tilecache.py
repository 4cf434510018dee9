"""Raster tiles of layers and tilesets, in any served tile matrix set, cached on disk.

:func:`raster_tile` is the one way WMTS GetTile and the XYZ ``.png``/``.webp`` URLs get a tile:

1. a pre-rendered PMTiles archive of the source (``tiles.prerender``; WebMercatorQuad only),
   when one exists for the source's current stamp and holds the tile in the requested format;
2. the on-disk cache ``HOME/tilecache/<source id>/<cache key>/<matrix set>/<z>/<x>/<y>.<fmt>``
   (written atomically: a temporary file, then ``os.replace``; an empty tile is a 0-byte file);
3. otherwise the tile is drawn 256×256 by the one renderer (``tiles.render``) and stored.

A source's cache key changes whenever what it draws changes (new version, new style, a member
added to a tileset), so cached tiles are never stale; the first tile stored under a new key
removes the directories of the source's older keys.

Point symbols and labels reach beyond the feature that carries them: for sources with points
or labels the tile is drawn with a margin of pixels on every side and the middle cut out, so
a marker or a label on a tile edge is drawn whole on both tiles instead of being cut.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import threading
from functools import lru_cache
from pathlib import Path

import mercantile
from pmtiles.tile import Compression, TileType

from catalog.style import geometry_kind
from catalog.view import Snapshot
from tiles.errors import RenderError, TilesError
from tiles.layers import render_layer
from tiles.matrix import (
    INFO,
    TILE_SIZE,
    WEB_MERCATOR,
    TileAddress,
    cell_size,
    lonlat_to_xy,
    tile_address,
    tile_bbox,
)
from tiles.render import FORMATS, MapRequest, RenderLayer, get_renderer, mapnik_module
from tiles.source import open_archive
from tiles.tilesets import RasterSource, raster_source, raster_sources

log = logging.getLogger(__name__)

#: Formats raster tiles come in (keys of tiles.render.FORMATS).
TILE_FORMATS = ("png", "webp", "jpeg")
#: What :func:`raster_tile` returns for a tile inside the source's extent with nothing drawn.
EMPTY = b""
#: Pixels a symbol may reach beyond its feature: tiles this far outside the extent are drawn.
SYMBOL_REACH = 32
#: Margin (pixels) drawn around a tile of a source with labels / with point symbols.
LABEL_MARGIN = 64
POINT_MARGIN = 16


def raster_tile(
    home: Path,
    snapshot: Snapshot,
    source_id: str,
    tms_id: str,
    z: int,
    x: int,
    y: int,
    fmt: str,
) -> bytes | None:
    """The encoded tile ``z/x/y`` of a layer or tileset in a tile matrix set.

    Args:
        home: the data home.
        snapshot: the catalog snapshot that resolves ``source_id``.
        source_id: a layer id or a tileset id.
        tms_id: a tile matrix set id (see :func:`tiles.matrix.matrix_sets`).
        z: tile matrix (zoom level).
        x: tile column, from the left.
        y: tile row, from the top.
        fmt: "png", "webp" or "jpeg" (JPEG is opaque on white; the others transparent).

    Returns:
        The image bytes; :data:`EMPTY` (``b""``) when the tile is inside the source's extent
        but nothing is drawn on it; None when the tile is outside the source's extent.

    Raises:
        LayerNotServed: ``source_id`` names no drawable layer or tileset.
        UnknownMatrixSet, UnknownTileMatrix, TileOutOfRange: not a tile of the set.
        RenderError: an unknown format, or the source could not be drawn.
    """
    if fmt not in TILE_FORMATS:
        raise RenderError(f"tile format {fmt!r}: one of {list(TILE_FORMATS)}")
    source = raster_source(snapshot, source_id)
    tile = tile_address(tms_id, z, x, y)
    if not touches(source, tile):
        return None
    data = _prerendered(home, source, tile, fmt)
    if data is not None:
        return data
    path = cache_path(home, source, tile, fmt)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = render_tile(home, snapshot, source, tile, fmt)
    _store(home, source, path, data)
    return data


def touches(source: RasterSource, tile: TileAddress) -> bool:
    """Whether the tile is within :data:`SYMBOL_REACH` pixels of the source's extent."""
    if source.bbox is None:
        return True
    try:
        minx, miny, maxx, maxy = _xy_extent(source.bbox, tile.tms)
    except TilesError:  # an extent the set's CRS cannot express: draw and see
        return True
    reach = SYMBOL_REACH * cell_size(tile.tms, tile.z)
    tminx, tminy, tmaxx, tmaxy = tile_bbox(tile)
    return not (
        tmaxx < minx - reach or tminx > maxx + reach or tmaxy < miny - reach or tminy > maxy + reach
    )


@lru_cache(maxsize=4096)
def _xy_extent(
    bbox: tuple[float, float, float, float], tms_id: str
) -> tuple[float, float, float, float]:
    return lonlat_to_xy(bbox, tms_id)


def cache_path(home: Path, source: RasterSource, tile: TileAddress, fmt: str) -> Path:
    """Where the tile is cached (ids are catalog ids and registry keys, never user text)."""
    return (
        home
        / "tilecache"
        / source.id
        / source.cache_key
        / tile.tms
        / str(tile.z)
        / str(tile.x)
        / f"{tile.y}.{fmt}"
    )


def _margin(layers: tuple[RenderLayer, ...]) -> int:
    margin = 0
    for item in layers:
        if item.style.label:
            return LABEL_MARGIN
        if item.version.kind == "vector" and geometry_kind(item.version.geometry_type) in (
            "point",
            "",
        ):
            margin = POINT_MARGIN
    return margin


def render_tile(
    home: Path, snapshot: Snapshot, source: RasterSource, tile: TileAddress, fmt: str
) -> bytes:
    """Draw one tile with the renderer; :data:`EMPTY` when nothing is drawn on it."""
    layers = tuple(render_layer(home, snapshot, i) for i in source.layer_ids)
    bbox = tile_bbox(tile)
    crs = INFO[tile.tms].render_crs
    opaque = fmt == "jpeg"
    # Points and labels reaching over the tile edge are drawn in both neighbours (Mapnik's
    # buffer), so markers and labels are never cut at tile seams.
    request = MapRequest(
        layers,
        bbox,
        crs,
        TILE_SIZE,
        TILE_SIZE,
        fmt,
        transparent=not opaque,
        buffer_size=_margin(layers),
    )
    data = get_renderer().render(request)
    return EMPTY if data == blank_tile(fmt) else data


def _blank_image(fmt: str):
    mapnik = mapnik_module()
    image = mapnik.Image(TILE_SIZE, TILE_SIZE)
    if fmt == "jpeg":
        image.fill(mapnik.Color("#ffffff"))
    return image


@lru_cache(maxsize=8)
def blank_tile(fmt: str) -> bytes:
    """An encoded tile with nothing on it: transparent (PNG, WebP) or white (JPEG)."""
    return _blank_image(fmt).to_string(FORMATS[fmt][1])


_PMTILES_TYPES = {"png": TileType.PNG, "webp": TileType.WEBP}  # JPEG is never pre-rendered


def _prerendered(home: Path, source: RasterSource, tile: TileAddress, fmt: str) -> bytes | None:
    """The tile from the source's pre-rendered archive, or None to draw it.

    The archive (``tiles.prerender``) is named by the source's cache key and leaves fully
    transparent tiles out: a tile missing inside its zooms and bounds is :data:`EMPTY`.
    """
    if tile.tms != WEB_MERCATOR or fmt not in _PMTILES_TYPES:
        return None
    try:
        from tiles.prerender import prerendered_archive
    except ImportError:
        return None
    path = prerendered_archive(home, source.id, source.cache_key)
    if not path.is_file():
        return None
    archive = open_archive(path)
    h = archive.header
    if h["tile_type"] != _PMTILES_TYPES[fmt] or not h["min_zoom"] <= tile.z <= h["max_zoom"]:
        return None
    data = archive.get(tile.z, tile.x, tile.y)
    if data is None:
        west, south, east, north = mercantile.bounds(tile.x, tile.y, tile.z)
        b = archive.bounds
        inside = west < b[2] and east > b[0] and south < b[3] and north > b[1]
        return EMPTY if inside else None
    if h["tile_compression"] == Compression.GZIP:
        data = gzip.decompress(data)
    return data


def _store(home: Path, source: RasterSource, path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a read-only data home only loses the cache."""
    key_dir = home / "tilecache" / source.id / source.cache_key
    new_key = not key_dir.exists()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("tile cache: cannot write %s: %s", path, e)
        tmp.unlink(missing_ok=True)
        return
    if new_key:
        for old in key_dir.parent.iterdir():
            if old.name != source.cache_key and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)


def prune_tilecache(home: Path, snapshot: Snapshot) -> int:
    """Remove cached tiles of sources that are gone and of stale cache keys.

    Returns:
        How many directories were removed.
    """
    root = home / "tilecache"
    if not root.is_dir():
        return 0
    current = {s.id: s.cache_key for s in raster_sources(snapshot)}
    removed = 0
    for source_dir in root.iterdir():
        if not source_dir.is_dir():
            continue
        keep = current.get(source_dir.name)
        for key_dir in source_dir.iterdir():
            if key_dir.name != keep:
                shutil.rmtree(key_dir, ignore_errors=True)
                removed += 1
        if keep is None:
            shutil.rmtree(source_dir, ignore_errors=True)
    return removed
