"""Tilesets and raster tile sources: what a raster tile or a WMTS layer draws.

A tileset is named by the manifest (``tileset: 行政區界`` on each member layer) and drawn as
one picture of all its published members. Its id in URLs and WMTS identifiers is
``ingest.manifest.slugify(name)`` ([a-z0-9-]+, e.g. "xing-zheng-qu-jie"). Members are drawn
rasters first, then polygons, lines and points, ties by layer id.

A tileset whose slug is already a layer id (or another tileset's) is numbered "-2", "-3", ...
in name order, so one id never names two things.

A raster source is either a layer (vector or raster, drawn with its style) or a tileset. Each
source has a ``stamp`` that
changes when what it draws changes:

- a layer: its current version string (the contract with ``tiles.prerender``);
- a tileset: a hash of its members' (id, version, style).

On-disk caches key a source by :attr:`RasterSource.cache_key`, which for a layer adds a hash of
its style to the version (a restyle keeps the version but changes the picture).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from catalog.model import Layer, LayerVersion
from catalog.style import geometry_kind
from catalog.view import Snapshot
from ingest.manifest import slugify
from tiles.errors import LayerNotServed

_KIND_ORDER = {"raster": 0, "polygon": 1, "line": 2, "point": 3}

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Tileset:
    """A named group of layers drawn together.

    Attributes:
        id: slug of the name, used in URLs and as the WMTS layer identifier.
        name: the name as the manifest wrote it (zh-TW).
        title: what people read: the name.
        layer_ids: published, drawable members in drawing order (bottom first).
        stamp: hash of the members' (id, version, style); changes when the picture may.
        bbox: union of the members' extents (EPSG:4326, lon first), None if none has one.
    """

    id: str
    name: str
    title: str
    layer_ids: tuple[str, ...]
    stamp: str
    bbox: BBox | None = None


@dataclass(frozen=True)
class RasterSource:
    """What one raster tile URL draws: a layer or a tileset, resolved from the catalog.

    Attributes:
        id: the layer or tileset id.
        kind: "layer" or "tileset".
        title: zh-TW title.
        title_en: English title ("" when none).
        description: zh-TW description ("" when none).
        layer_ids: the layers drawn, bottom first.
        stamp: the version (layer) or the tileset stamp.
        cache_key: ``stamp`` plus a style hash for a layer; the tileset stamp for a tileset.
        bbox: extent in EPSG:4326 (lon first), None when unknown.
        category: the layer's category; for a tileset, its members' categories.
    """

    id: str
    kind: str
    title: str
    title_en: str
    description: str
    layer_ids: tuple[str, ...]
    stamp: str
    cache_key: str
    bbox: BBox | None
    category: tuple[str, ...] = ()


def _style_json(layer: Layer) -> str:
    return json.dumps(layer.style, sort_keys=True, ensure_ascii=False)


def _drawable(version: LayerVersion | None) -> bool:
    return version is not None and version.kind in ("vector", "raster")


def _order_key(version: LayerVersion) -> tuple[int, str]:
    kind = "raster" if version.kind == "raster" else geometry_kind(version.geometry_type)
    return (_KIND_ORDER.get(kind, 1), version.layer_id)


def union_bbox(boxes: list[BBox]) -> BBox | None:
    """The bbox covering all of ``boxes`` (None for none)."""
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _free_id(slug: str, taken: dict[str, Tileset], snapshot: Snapshot) -> str:
    """``slug``, numbered ("-2", "-3", ...) if a layer or an earlier tileset already has it."""
    candidate, n = slug, 1
    while candidate in taken or candidate in snapshot.layers:
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


def _build(snapshot: Snapshot) -> dict[str, Tileset]:
    members: dict[str, list[LayerVersion]] = {}
    for layer in snapshot.layers.values():
        version = snapshot.versions.get(layer.id)
        if layer.tileset and _drawable(version):
            members.setdefault(layer.tileset, []).append(version)
    out: dict[str, Tileset] = {}
    for name in sorted(members):
        ordered = sorted(members[name], key=_order_key)
        digest = hashlib.sha1(name.encode())
        for v in ordered:
            digest.update(f"\n{v.layer_id}|{v.version}|".encode())
            digest.update(_style_json(snapshot.layers[v.layer_id]).encode())
        tileset_id = _free_id(slugify(name), out, snapshot)
        out[tileset_id] = Tileset(
            id=tileset_id,
            name=name,
            title=name,
            layer_ids=tuple(v.layer_id for v in ordered),
            stamp=digest.hexdigest()[:16],
            bbox=union_bbox([v.bbox for v in ordered if v.bbox]),
        )
    return out


_cache: OrderedDict[str, dict[str, Tileset]] = OrderedDict()
_cache_lock = threading.Lock()


def tilesets(snapshot: Snapshot) -> dict[str, Tileset]:
    """Tileset id → tileset, for every tileset with at least one drawable published member.

    Built once per snapshot stamp (a snapshot without a stamp is not cached).
    """
    if not snapshot.stamp:
        return _build(snapshot)
    with _cache_lock:
        found = _cache.get(snapshot.stamp)
        if found is not None:
            _cache.move_to_end(snapshot.stamp)
            return found
    built = _build(snapshot)
    with _cache_lock:
        _cache[snapshot.stamp] = built
        while len(_cache) > 8:
            _cache.popitem(last=False)
    return built


def _layer_source(layer: Layer, version: LayerVersion) -> RasterSource:
    style = hashlib.sha1(_style_json(layer).encode()).hexdigest()[:8]
    return RasterSource(
        id=layer.id,
        kind="layer",
        title=layer.title,
        title_en=layer.title_en,
        description=layer.description,
        layer_ids=(layer.id,),
        stamp=version.version,
        cache_key=f"{version.version}-{style}",
        bbox=version.bbox,
        category=(layer.category,) if layer.category else (),
    )


def _tileset_source(snapshot: Snapshot, tileset: Tileset) -> RasterSource:
    categories = {snapshot.layers[i].category for i in tileset.layer_ids}
    titles = "、".join(snapshot.layers[i].title for i in tileset.layer_ids)
    return RasterSource(
        id=tileset.id,
        kind="tileset",
        title=tileset.title,
        title_en="",
        description=f"圖組，包含：{titles}",
        layer_ids=tileset.layer_ids,
        stamp=tileset.stamp,
        cache_key=tileset.stamp,
        bbox=tileset.bbox,
        category=tuple(sorted(c for c in categories if c)),
    )


def raster_source(snapshot: Snapshot, source_id: str) -> RasterSource:
    """The layer or tileset ``source_id`` names.

    Raises:
        LayerNotServed: no drawable published layer and no tileset has this id.
    """
    layer = snapshot.layers.get(source_id)
    version = snapshot.versions.get(source_id)
    if layer is not None and _drawable(version):
        return _layer_source(layer, version)
    tileset = tilesets(snapshot).get(source_id)
    if tileset is not None:
        return _tileset_source(snapshot, tileset)
    if version is not None:
        raise LayerNotServed(source_id, "a table has no geometry to draw")
    raise LayerNotServed(source_id, "no such layer or tileset with a published version")


def raster_sources(snapshot: Snapshot) -> list[RasterSource]:
    """Every raster source: tilesets first (by id), then drawable layers (by id)."""
    out = [_tileset_source(snapshot, t) for t in tilesets(snapshot).values()]
    out += [
        _layer_source(layer, version)
        for layer, version in snapshot.published()
        if _drawable(version)
    ]
    return out
