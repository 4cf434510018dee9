"""Tile endpoints: XYZ tiles, TileJSON 3.0 and the PMTiles archive itself (HTTP Range).

URLs name a layer id; the catalog resolves it to the current version's archive, so a user
string never reaches the file system. Archive URLs are immutable per version: responses carry
the version as ETag and long cache lifetimes.
"""

from __future__ import annotations

import re
from pathlib import Path

import mercantile
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from tiles.build import archive_path
from tiles.source import Archive, open_archive

router = APIRouter()
LAYER_ID = re.compile(r"[a-z0-9-]+")
MVT = "application/vnd.mapbox-vector-tile"
CACHE = "public, max-age=3600"


def _archive(request: Request, layer_id: str) -> tuple[str, Archive, Path]:
    if not LAYER_ID.fullmatch(layer_id):
        raise HTTPException(400, f"{layer_id!r} is not a layer id ([a-z0-9-]+)")
    version = request.app.state.current_versions().get(layer_id)
    if version is None:
        raise HTTPException(404, f"no layer {layer_id!r} with tiles")
    path = archive_path(request.app.state.settings.home, layer_id, version)
    if not path.exists():
        raise HTTPException(404, f"layer {layer_id!r} has no tiles yet: geoportal tiles build")
    return version, open_archive(path), path


def _int(text: str, name: str) -> int:
    if not text.isdigit():
        raise HTTPException(400, f"{name} must be a non-negative integer, not {text!r}")
    return int(text)


@router.get("/tiles/{layer_id}/{z}/{x}/{y}.{fmt}")
def tile(request: Request, layer_id: str, z: str, x: str, y: str, fmt: str) -> Response:
    """One XYZ tile: the stored MVT (gzip as stored); 204 inside the bounds, 404 outside."""
    if fmt not in ("mvt", "pbf"):
        raise HTTPException(400, f"format {fmt!r}: vector tiles are .mvt")
    zi, xi, yi = _int(z, "z"), _int(x, "x"), _int(y, "y")
    if xi >= 2**zi or yi >= 2**zi:
        raise HTTPException(400, f"tile {zi}/{xi}/{yi} does not exist (x, y < 2^z)")
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


def _overlaps(bounds: tuple[float, float, float, float], z: int, x: int, y: int) -> bool:
    west, south, east, north = mercantile.bounds(x, y, z)
    return not (east < bounds[0] or west > bounds[2] or north < bounds[1] or south > bounds[3])


@router.get("/tiles/{layer_id}.json")
def tilejson(request: Request, layer_id: str) -> JSONResponse:
    """TileJSON 3.0 for MapLibre/Leaflet: tile URL template, zooms, bounds, vector_layers."""
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


@router.get("/tiles/{layer_id}.pmtiles")
def pmtiles_archive(request: Request, layer_id: str) -> FileResponse:
    """The archive itself, with HTTP Range, for pmtiles.js clients."""
    version, _, path = _archive(request, layer_id)
    return FileResponse(
        path,
        media_type="application/vnd.pmtiles",
        headers={"ETag": f'"{version}"', "Cache-Control": CACHE},
    )
