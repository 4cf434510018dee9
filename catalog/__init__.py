"""The spatial catalog: layers, versions, metadata, lineage and search (SQLite or PostgreSQL)."""

from catalog.db import Catalog
from catalog.errors import CatalogError, LayerNotFound, LayerVersionNotFound
from catalog.model import (
    Agency,
    Decision,
    FieldInfo,
    Layer,
    LayerVersion,
    Lineage,
    Repair,
    SearchHit,
)

__all__ = [
    "Agency",
    "Catalog",
    "CatalogError",
    "Decision",
    "FieldInfo",
    "Layer",
    "LayerNotFound",
    "LayerVersion",
    "LayerVersionNotFound",
    "Lineage",
    "Repair",
    "SearchHit",
]
