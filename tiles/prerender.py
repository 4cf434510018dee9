"""Pre-rendered raster tile archives: raster layers and tilesets drawn into PMTiles.

Each *source* — a raster layer (DEM, imagery) or a tileset (the layers a manifest's
``tileset:`` groups, drawn bottom first with their styles) — becomes one PMTiles v3 archive of
WebMercatorQuad 256×256 tiles, ``HOME/tiles/<source id>/<stamp>.raster.pmtiles``, rendered by
the renderer the WMS uses (``tiles.render.get_renderer()``, Mapnik):

- raster layers from zoom 0 to their native zoom (the first zoom whose pixels are at least as
  fine as the raster's cells; at most :data:`MAX_RASTER_ZOOM`), as 32-bit PNG;
- tilesets from zoom 0 to :data:`TILESET_MAX_ZOOM` only (the tile cache renders deeper tiles on
  demand and reads this archive first), as 8-bit palette PNG when every member is a vector
  layer (antialiased edges survive the quantizer; about half the bytes), else 32-bit PNG.

Fully transparent tiles are not stored (a reader treats a missing tile inside the archive's
zooms and bounds as transparent). The archive is named after the source's *stamp* — a raster
layer's version plus a hash of its style, a tileset's own stamp: the tile cache's keys of
``tiles.tilesets`` — so an unchanged source is never re-rendered. It is written as
``*.part.raster.pmtiles`` and renamed, so a reader never sees half an archive; parts left by
killed builds are removed by the next build.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mercantile
import rasterio
from pmtiles.tile import Compression, TileType, deserialize_header, serialize_header, zxy_to_tileid
from pmtiles.writer import Writer
from rasterio.errors import RasterioError

from catalog.model import Layer, LayerVersion
from catalog.view import Snapshot
from tiles import tilesets
from tiles.build import TILES_DIR, Built, clean_stale_parts
from tiles.errors import LayerNotServed, RenderError, TileBuildError
from tiles.matrix import WEB_MERCATOR, tile_address
from tiles.raster import ground_pixel_size
from tiles.render import get_renderer
from tiles.tilecache import EMPTY, render_tile

TILE_SIZE = 256
MAX_RASTER_ZOOM = 16
TILESET_MAX_ZOOM = 12
_MERCATOR_M_PER_PX_Z0 = 2 * math.pi * 6378137 / TILE_SIZE  # 156543.03 m at the equator
_TILE_TYPES = {"png": TileType.PNG, "png8": TileType.PNG, "webp": TileType.WEBP}


def prerendered_archive(home: Path, source_id: str, stamp: str) -> Path:
    """Where the pre-rendered raster archive of a source (layer or tileset) at ``stamp`` lives."""
    return home / TILES_DIR / source_id / f"{stamp}.raster.pmtiles"


@dataclass(frozen=True)
class Source:
    """What one raster archive draws: a raster layer, or a tileset's layers (bottom first).

    Attributes:
        id: the raster layer's id or the tileset's id.
        kind: "raster" or "tileset".
        title: zh-TW title (the layer's or the tileset's).
        stamp: changes whenever what the archive shows changes; names the archive.
        members: (layer, current version) drawn, bottom first.
        drawn: the same source as the tile cache draws it (``tiles.tilesets``).
    """

    id: str
    kind: str
    title: str
    stamp: str
    members: tuple[tuple[Layer, LayerVersion], ...]
    drawn: tilesets.RasterSource

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """Union of the members' bboxes (EPSG:4326), or None when none has one."""
        return tilesets.union_bbox([v.bbox for _, v in self.members if v.bbox])

    @property
    def format(self) -> str:
        """The tile encoding (a key of tiles.render.FORMATS)."""
        if self.kind == "tileset" and all(v.kind == "vector" for _, v in self.members):
            return "png8"
        return "png"


def _from(snapshot: Snapshot, found: tilesets.RasterSource) -> Source:
    members = tuple((snapshot.layers[i], snapshot.versions[i]) for i in found.layer_ids)
    kind = "tileset" if found.kind == "tileset" else "raster"
    return Source(found.id, kind, found.title, found.cache_key, members, found)


def raster_source(layer: Layer, version: LayerVersion) -> Source:
    """The source of a raster layer's archive.

    Its stamp is the tile cache's key for the layer (``tiles.tilesets``): the version and a
    hash of the layer's style, so a restyle renders a new archive.
    """
    alone = Snapshot({layer.id: layer}, {layer.id: version}, "")
    return _from(alone, tilesets.raster_source(alone, layer.id))


def tileset_sources(snapshot: Snapshot) -> dict[str, Source]:
    """Every tileset of the catalog as a source: tileset id → source."""
    return {
        ts.id: _from(snapshot, tilesets.raster_source(snapshot, ts.id))
        for ts in tilesets.tilesets(snapshot).values()
    }


def resolve(snapshot: Snapshot, source_id: str) -> Source:
    """The source named ``source_id``: a published raster layer or a tileset.

    Raises:
        LayerNotServed: ``source_id`` names neither (a vector layer is pre-rendered only
            as a member of a tileset).
    """
    found = tilesets.raster_source(snapshot, source_id)
    version = snapshot.versions.get(source_id)
    if found.kind != "tileset" and (version is None or version.kind != "raster"):
        raise LayerNotServed(
            source_id, "a vector layer has vector tiles; only rasters and tilesets pre-render"
        )
    return _from(snapshot, found)


def source_stamp(snapshot: Snapshot, source_id: str) -> str:
    """The stamp of a source's current pre-rendered archive (see :func:`prerendered_archive`).

    Equal to ``tiles.tilesets.raster_source(snapshot, source_id).cache_key``: a raster
    layer's version plus its style hash, a tileset's stamp.

    Raises:
        LayerNotServed: ``source_id`` names neither a raster layer nor a tileset.
    """
    return resolve(snapshot, source_id).stamp


def native_zoom(home: Path, version: LayerVersion) -> int:
    """The first WebMercatorQuad zoom whose pixels are as fine as the raster's cells.

    Raises:
        TileBuildError: the stored raster cannot be read.
    """
    try:
        with rasterio.open(home / version.path) as ds:
            cell = min(ground_pixel_size(ds))
    except RasterioError as e:
        raise TileBuildError(f"layer {version.layer_id!r}: cannot read {version.path}: {e}") from e
    lat = (version.bbox[1] + version.bbox[3]) / 2 if version.bbox else 0.0
    metres = _MERCATOR_M_PER_PX_Z0 * math.cos(math.radians(lat))
    zoom = math.ceil(math.log2(metres / max(cell, 1e-9)) - 0.05)  # 5 % slack: no zoom for noise
    return max(0, min(MAX_RASTER_ZOOM, zoom))


def zoom_range(home: Path, source: Source, max_zoom: int | None = None) -> tuple[int, int]:
    """(min, max) zoom pre-rendered for ``source``; ``max_zoom`` overrides the default top."""
    if max_zoom is not None:
        return 0, max_zoom
    if source.kind == "raster":
        return 0, native_zoom(home, source.members[0][1])
    return 0, TILESET_MAX_ZOOM


def source_tiles(source: Source, zooms: tuple[int, int]) -> list[mercantile.Tile]:
    """Tiles covering any member's bbox at each zoom, in PMTiles tile-id order."""
    found: set[mercantile.Tile] = set()
    boxes = [v.bbox for _, v in source.members if v.bbox]
    for z in range(zooms[0], zooms[1] + 1):
        for w, s, e, n in boxes:
            found.update(mercantile.tiles(w, s, e, n, zooms=[z]))
    return sorted(found, key=lambda t: zxy_to_tileid(t.z, t.x, t.y))


def prerender(home: Path, snapshot: Snapshot, source_id: str, max_zoom: int | None = None) -> Built:
    """Render (or find) the pre-rendered archive of a raster layer or a tileset.

    Args:
        home: the data home.
        snapshot: the catalog.
        source_id: a raster layer id or a tileset id.
        max_zoom: the deepest zoom to render (default: native zoom / TILESET_MAX_ZOOM).

    Returns:
        What was done ("built", "unchanged", "skipped" when nothing is drawable).

    Raises:
        LayerNotServed: ``source_id`` names neither a raster layer nor a tileset.
        TileBuildError: a tile could not be rendered or the archive not written.
    """
    return prerender_source(home, resolve(snapshot, source_id), max_zoom)


def prerender_source(home: Path, source: Source, max_zoom: int | None = None) -> Built:
    """:func:`prerender` for an already resolved source (what build worker processes run)."""
    target = prerendered_archive(home, source.id, source.stamp)
    if target.exists():
        return _built(source, "unchanged", target, message="archive of this stamp exists")
    if source.bbox is None:
        return _built(source, "skipped", message="no member with geometry to draw")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_parts(target.parent)
    started = time.perf_counter()
    zooms = zoom_range(home, source, max_zoom)
    part = target.with_name(f"{source.stamp}.{os.getpid()}.part.raster.pmtiles")
    try:
        count = _write_archive(home, source, zooms, part)
        if count == 0:
            return _built(source, "skipped", message="every tile is transparent")
        os.replace(part, target)
    except RenderError as e:
        raise TileBuildError(f"{source.kind} {source.id!r}: {e}") from None
    except OSError as e:
        raise TileBuildError(f"{source.kind} {source.id!r}: cannot write {part.name}: {e}") from e
    finally:
        part.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return _built(
        source,
        "built",
        target,
        message=f"z{zooms[0]}–{zooms[1]}, {count} tiles, {seconds:.1f} s",
        tiles=count,
        zooms=zooms,
    )


def _built(source: Source, status: str, path: Path | None = None, **kw) -> Built:
    size = path.stat().st_size if path is not None else 0
    return Built(source.id, source.stamp, status, path, size, kind=source.kind, **kw)


def render_tiles(
    home: Path, source: Source, tiles: list[mercantile.Tile], fmt: str
) -> Iterator[tuple[mercantile.Tile, bytes]]:
    """Each tile with something drawn on it, encoded, in the order given.

    Tiles are drawn exactly as the tile cache draws the zooms below (``tiles.tilecache``:
    the one renderer, with a margin for labels and point symbols so they are not cut at
    tile edges), so pre-rendered and on-demand zooms look alike.
    """
    view = Snapshot(
        {lyr.id: lyr for lyr, _ in source.members},
        {lyr.id: v for lyr, v in source.members},
        source.stamp,
    )
    for tile in tiles:
        address = tile_address(WEB_MERCATOR, tile.z, tile.x, tile.y)
        data = render_tile(home, view, source.drawn, address, fmt)
        if data != EMPTY:
            yield tile, data


def _write_archive(home: Path, source: Source, zooms: tuple[int, int], part: Path) -> int:
    """Render every tile of ``source`` into a PMTiles archive at ``part``; the tiles written."""
    count = 0
    with open(part, "wb") as f:
        writer = Writer(f)
        for tile, data in render_tiles(home, source, source_tiles(source, zooms), source.format):
            writer.write_tile(zxy_to_tileid(tile.z, tile.x, tile.y), data)
            count += 1
        if count:
            writer.finalize(_header(source, zooms), _metadata(source, zooms))
    if count:
        _fix_zooms(part, zooms, _center_zoom(source, zooms))
    return count


def _header(source: Source, zooms: tuple[int, int]) -> dict:
    west, south, east, north = source.bbox
    return {
        "tile_type": _TILE_TYPES[source.format],
        "tile_compression": Compression.NONE,
        "min_zoom": zooms[0],
        "max_zoom": zooms[1],
        "min_lon_e7": int(west * 1e7),
        "min_lat_e7": int(south * 1e7),
        "max_lon_e7": int(east * 1e7),
        "max_lat_e7": int(north * 1e7),
        "center_zoom": _center_zoom(source, zooms),
        "center_lon_e7": int((west + east) / 2 * 1e7),
        "center_lat_e7": int((south + north) / 2 * 1e7),
    }


def _center_zoom(source: Source, zooms: tuple[int, int]) -> int:
    """A zoom at which the whole source fits in about four tiles across."""
    west, _, east, _ = source.bbox
    fit = math.floor(math.log2(4 * 360 / max(east - west, 1e-9)))
    return max(zooms[0], min(zooms[1], fit))


def _metadata(source: Source, zooms: tuple[int, int]) -> dict:
    agencies = dict.fromkeys(lyr.agency.title for lyr, _ in source.members)
    return {
        "name": source.title,
        "description": f"{source.title}（預先繪製圖磚 pre-rendered tiles）",
        "attribution": "、".join(agencies),
        "version": source.stamp,
        "type": "overlay",
        "format": "webp" if source.format == "webp" else "png",
        "tile_size": TILE_SIZE,
        "minzoom": zooms[0],
        "maxzoom": zooms[1],
        "bounds": list(source.bbox),
        "geoportal": {
            "source": source.id,
            "kind": source.kind,
            "stamp": source.stamp,
            "renderer": get_renderer().name,
            "encoding": source.format,
            "layers": [
                {"id": lyr.id, "version": v.version, "title": lyr.title}
                for lyr, v in source.members
            ],
        },
    }


def _fix_zooms(path: Path, zooms: tuple[int, int], center_zoom: int) -> None:
    """Record the rendered zoom range in the header.

    The pmtiles Writer sets min/max zoom from the tiles it stored; a transparent top or
    bottom zoom would narrow them, and a reader would then render those zooms again instead of
    knowing they are empty.
    """
    with open(path, "r+b") as f:
        header = deserialize_header(f.read(127))
        header["min_zoom"], header["max_zoom"] = zooms
        header["center_zoom"] = center_zoom
        f.seek(0)
        f.write(serialize_header(header))
