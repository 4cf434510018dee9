"""Tile endpoints: XYZ tiles, TileJSON 3.0 and the PMTiles archive itself (HTTP Range).

``.mvt`` tiles come from a vector layer's archive; ``.png``/``.webp`` tiles draw a layer or a
tileset through ``tiles.tilecache``. URLs name a layer (or tileset) id; the catalog resolves it
to the current version's archive, so a user string never reaches the file system. Tile URLs
are immutable per version (raster: per cache key): responses carry it in the ETag and long
cache lifetimes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import mercantile
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from catalog.view import Snapshot
from tiles.build import archive_path, tile_zooms
from tiles.errors import LayerNotServed
from tiles.matrix import WEB_MERCATOR, matrix_set
from tiles.render import FORMATS
from tiles.source import Archive, open_archive
from tiles.tilecache import raster_tile
from tiles.tilesets import RasterSource, raster_source

router = APIRouter()
LAYER_ID = re.compile(r"[a-z0-9-]+")
MVT = "application/vnd.mapbox-vector-tile"
CACHE = "public, max-age=3600"
RASTER_FORMATS = ("png", "webp")
#: Deepest zoom raster TileJSON advertises (tiles are drawn on demand down to zoom 24).
RASTER_MAX_ZOOM = 22


def _archive(request: Request, layer_id: str) -> tuple[str, Archive, Path]:
    if not LAYER_ID.fullmatch(layer_id):
        raise HTTPException(400, f"{layer_id!r} is not a layer id ([a-z0-9-]+)")
    snapshot = request.app.state.view.snapshot()
    current = snapshot.versions.get(layer_id)
    if current is None:
        raise HTTPException(404, f"no layer {layer_id!r} with tiles")
    version = current.version
    zooms = tile_zooms(snapshot.layers[layer_id])
    path = archive_path(request.app.state.settings.home, layer_id, version, zooms)
    if not path.exists():
        raise HTTPException(404, f"layer {layer_id!r} has no tiles yet: geoportal tiles build")
    return version, open_archive(path), path


def _int(text: str, name: str) -> int:
    if not text.isdigit():
        raise HTTPException(400, f"{name} must be a non-negative integer, not {text!r}")
    return int(text)


@router.get("/tiles/{layer_id}/{z}/{x}/{y}.{fmt}")
def tile(request: Request, layer_id: str, z: str, x: str, y: str, fmt: str) -> Response:
    """One XYZ tile: 204 for an empty tile inside the bounds, 404 outside, 400 if malformed.

    ``.mvt``: the stored vector tile (gzip as stored). ``.png`` / ``.webp``: the layer or
    tileset drawn in WebMercatorQuad (pre-rendered archive, tile cache, or the renderer).
    """
    if fmt not in ("mvt", "pbf", *RASTER_FORMATS):
        raise HTTPException(400, f"format {fmt!r}: .mvt (vector) or .png / .webp (raster)")
    zi, xi, yi = _int(z, "z"), _int(x, "x"), _int(y, "y")
    if xi >= 2**zi or yi >= 2**zi:
        raise HTTPException(400, f"tile {zi}/{xi}/{yi} does not exist (x, y < 2^z)")
    if fmt in RASTER_FORMATS:
        return _raster_tile(request, layer_id, zi, xi, yi, fmt)
    version, archive, _ = _archive(request, layer_id)
    etag = f'"{version}-{zi}-{xi}-{yi}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    h = archive.header
    data = archive.get(zi, xi, yi)
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if data is None:
        inside = h["min_zoom"] <= zi <= h["max_zoom"] and _overlaps(archive.bounds, zi, xi, yi)
        if not inside:
            raise HTTPException(404, f"tile {zi}/{xi}/{yi} is outside layer {layer_id!r}")
        return Response(status_code=204, headers=headers)
    headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=MVT, headers=headers)


def _raster_source(request: Request, source_id: str) -> tuple[Snapshot, RasterSource]:
    """The layer or tileset ``source_id`` names (400 if not an id, 404 if unknown)."""
    if not LAYER_ID.fullmatch(source_id):
        raise HTTPException(400, f"{source_id!r} is not a layer or tileset id ([a-z0-9-]+)")
    snapshot = request.app.state.view.snapshot()
    try:
        return snapshot, raster_source(snapshot, source_id)
    except LayerNotServed as e:
        raise HTTPException(404, str(e)) from None


def _raster_tile(request: Request, source_id: str, z: int, x: int, y: int, fmt: str) -> Response:
    """A WebMercatorQuad PNG/WebP tile of a layer or tileset."""
    snapshot, source = _raster_source(request, source_id)
    if z > matrix_set(WEB_MERCATOR).maxzoom:
        raise HTTPException(404, f"tile {z}/{x}/{y}: raster tiles go down to zoom 24")
    etag = f'"{source.cache_key}-{z}-{x}-{y}-{fmt}"'
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    home = request.app.state.settings.home
    data = raster_tile(home, snapshot, source.id, WEB_MERCATOR, z, x, y, fmt)
    if data is None:
        raise HTTPException(404, f"tile {z}/{x}/{y} is outside {source_id!r}")
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=FORMATS[fmt][0], headers=headers)


def _overlaps(bounds: tuple[float, float, float, float], z: int, x: int, y: int) -> bool:
    west, south, east, north = mercantile.bounds(x, y, z)
    return not (east < bounds[0] or west > bounds[2] or north < bounds[1] or south > bounds[3])


@router.get("/tiles/{layer_id}.json")
def tilejson(request: Request, layer_id: str) -> JSONResponse:
    """TileJSON 3.0 for MapLibre/Leaflet: tile URL template, zooms, bounds, vector_layers.

    A vector layer describes its MVT tiles; a tileset or a raster layer its PNG tiles.
    """
    if LAYER_ID.fullmatch(layer_id):
        version = request.app.state.view.snapshot().versions.get(layer_id)
        if version is None or version.kind == "raster":
            return _raster_tilejson(request, layer_id)
    version, archive, _ = _archive(request, layer_id)
    layer = request.app.state.catalog.get_layer(layer_id)
    h = archive.header
    base = str(request.base_url).rstrip("/")
    doc = {
        "tilejson": "3.0.0",
        "name": layer.title,
        "description": layer.description,
        "attribution": layer.agency.title,
        "version": version,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": h["min_zoom"],
        "maxzoom": h["max_zoom"],
        "bounds": list(archive.bounds),
        "center": [h["center_lon_e7"] / 1e7, h["center_lat_e7"] / 1e7, h["center_zoom"]],
        "vector_layers": archive.metadata.get("vector_layers", []),
    }
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=60"})


def _raster_tilejson(request: Request, source_id: str) -> JSONResponse:
    """TileJSON 3.0 of a tileset or raster layer: PNG tiles drawn on demand."""
    snapshot, source = _raster_source(request, source_id)
    base = str(request.base_url).rstrip("/")
    bounds = list(source.bbox or (-180.0, -85.0511287798066, 180.0, 85.0511287798066))
    span = max(bounds[2] - bounds[0], bounds[3] - bounds[1], 1e-9)
    agencies = dict.fromkeys(snapshot.layers[i].agency.title for i in source.layer_ids)
    doc = {
        "tilejson": "3.0.0",
        "name": source.title,
        "description": source.description,
        "attribution": "、".join(a for a in agencies if a),
        "version": source.cache_key,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{source.id}/{{z}}/{{x}}/{{y}}.png"],
        "minzoom": 0,
        "maxzoom": RASTER_MAX_ZOOM,
        "bounds": bounds,
        "center": [
            (bounds[0] + bounds[2]) / 2,
            (bounds[1] + bounds[3]) / 2,
            max(0, min(RASTER_MAX_ZOOM, math.floor(math.log2(360 / span)))),
        ],
    }
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=60"})


@router.get("/tiles/{layer_id}.pmtiles")
def pmtiles_archive(request: Request, layer_id: str) -> FileResponse:
    """The archive itself, with HTTP Range, for pmtiles.js clients."""
    version, _, path = _archive(request, layer_id)
    return FileResponse(
        path,
        media_type="application/vnd.pmtiles",
        headers={"ETag": f'"{version}"', "Cache-Control": CACHE},
    )
