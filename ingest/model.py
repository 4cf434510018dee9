"""Typed objects of ingest: what a source yields once read, decided and normalised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from catalog.model import Decision, Repair


@dataclass
class NormalizedLayer:
    """One layer of a source after reading, CRS and encoding decisions, and repair.

    Attributes:
        sublayer: the sublayer's name (GeoPackage table, KML folder), or None for single-layer
            sources.
        kind: "vector", "table" (no coordinates) or "raster".
        frame: vector → GeoDataFrame in EPSG:4326 with 2-D geometry; table → DataFrame;
            raster → None. Columns keep the source's original (Chinese) names, typed values;
            a "<name>_raw" column keeps the text where parsing changed a value.
        raster_path: raster → the Cloud-Optimized GeoTIFF written for it; else None.
        source_crs: the CRS the source was in ("EPSG:3826"), None for tables.
        geometry_type: "Point", "MultiPolygon", ... ("" for tables and rasters).
        features_in: records read from the source (before dropping null geometries).
        decisions: every decision taken (crs, encoding, columns, ...).
        repairs: every repair made, with counts and record ids.
        warnings: anything a person should read.
    """

    sublayer: str | None
    kind: str
    frame: gpd.GeoDataFrame | pd.DataFrame | None
    source_crs: str | None
    geometry_type: str = ""
    features_in: int = 0
    raster_path: Path | None = None
    decisions: list[Decision] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def features_out(self) -> int:
        """Records kept (0 for rasters)."""
        return 0 if self.frame is None else len(self.frame)

    def decision(self, kind: str) -> Decision | None:
        """The decision of ``kind`` ("crs", "encoding", ...), if one was taken."""
        return next((d for d in self.decisions if d.kind == kind), None)

    def repair(self, kind: str) -> Repair | None:
        """The repair of ``kind``, if one was made."""
        return next((r for r in self.repairs if r.kind == kind), None)


@dataclass(frozen=True)
class LayerSpec:
    """One layer to ingest, as a manifest entry, supply-list row, folder or file describes it.

    Attributes:
        id: layer id, ``[a-z0-9-]+``, unique, stable (the collection id everywhere).
        title: zh-TW title.
        source: the source as written (relative path, glob, zip, http(s) URL).
        base: folder that relative sources are resolved against (the manifest's folder).
        origin: where the spec came from, for messages: "layers.yaml: entry 3 (id roads)".
        title_en, agency, category, update_frequency, keywords, description, license, style,
            tileset: descriptive metadata (SPEC manifest keys).
        layer: one sublayer of a multi-layer source; None = all (ids "<id>-<n>").
        crs, encoding, x, y: manifest overrides.
    """

    id: str
    title: str
    source: str
    base: Path
    origin: str
    title_en: str = ""
    agency: str = ""
    category: str = ""
    update_frequency: str = ""
    keywords: tuple[str, ...] = ()
    description: str = ""
    license: str = ""
    style: dict = field(default_factory=dict, compare=False, hash=False)
    tileset: str = ""
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    x: str | None = None
    y: str | None = None
