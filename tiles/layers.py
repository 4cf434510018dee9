"""From a layer id to what the renderer draws: the current version, its style, its file.

WMS, WMTS and the XYZ raster tiles all resolve layers here, from the cached catalog view,
so a request costs no catalog query and a parsed style is reused until the layer changes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from catalog.model import Layer, LayerVersion
from catalog.style import Style, StyleError, parse_style
from catalog.view import Snapshot
from tiles.errors import LayerNotServed
from tiles.render import RenderLayer


@lru_cache(maxsize=4096)
def _style(style_json: str, geometry_type: str) -> Style:
    try:
        return parse_style(json.loads(style_json), geometry_type)
    except StyleError:
        # Manifest styles are validated at ingest; a style stored before a schema change
        # must not take the layer down: draw it with the default of its geometry type.
        return parse_style({}, geometry_type)


def layer_style(layer: Layer, version: LayerVersion) -> Style:
    """The parsed display style of a layer version (cached per layer state)."""
    return _style(json.dumps(layer.style, sort_keys=True), version.geometry_type)


def render_layer(home: Path, snapshot: Snapshot, layer_id: str) -> RenderLayer:
    """The renderable current version of ``layer_id``.

    Raises:
        LayerNotServed: no such layer, it has no published version, or it is a table.
    """
    layer = snapshot.layers.get(layer_id)
    version = snapshot.versions.get(layer_id)
    if layer is None or version is None:
        raise LayerNotServed(layer_id, "no such layer with a published version")
    if version.kind == "table":
        raise LayerNotServed(layer_id, "a table has no geometry to draw")
    source = home / version.path
    if version.kind == "raster":
        from tiles.raster import display_raster

        source = display_raster(home, layer, version, layer_style(layer, version))
    return RenderLayer(layer, version, layer_style(layer, version), source)
