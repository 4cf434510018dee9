"""Errors of the catalog package: every message names the layer (and version) concerned."""

from __future__ import annotations


class CatalogError(Exception):
    """Root of catalog errors; database errors are translated into it at the catalog's edge."""


class LayerNotFound(CatalogError, LookupError):
    """No layer with this id is in the catalog.

    Attributes:
        layer_id: the id asked for.
    """

    def __init__(self, layer_id: str) -> None:
        self.layer_id = layer_id
        super().__init__(
            f"no layer {layer_id!r} in the catalog — `geoportal layers` lists the layer ids"
        )


class LayerVersionNotFound(CatalogError, LookupError):
    """The layer exists but has no version with this id (it was never published or was pruned).

    Attributes:
        layer_id: the layer's id.
        version: the version asked for.
    """

    def __init__(self, layer_id: str, version: str) -> None:
        self.layer_id, self.version = layer_id, version
        super().__init__(
            f"layer {layer_id!r} has no version {version!r} — it was never published or has "
            "been pruned; the layer's versions are listed by Catalog.versions()"
        )
