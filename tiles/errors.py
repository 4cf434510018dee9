"""Errors of the tiles package: every message names the layer and says what went wrong."""

from __future__ import annotations


class TilesError(Exception):
    """Root of tiles errors."""


class TileBuildError(TilesError):
    """Building a layer's tile archive failed; the previous archive (if any) is untouched."""


class RenderError(TilesError):
    """A map could not be drawn (bad style, unreadable source, unknown format)."""


class LayerNotServed(TilesError):
    """A layer id that names nothing drawable (unknown, unpublished, or a table)."""

    def __init__(self, layer_id: str, why: str) -> None:
        super().__init__(f"layer {layer_id!r}: {why}")
        self.layer_id = layer_id
