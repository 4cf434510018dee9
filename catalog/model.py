"""Typed records of the catalog: agencies, layers, versions, search hits.

These are what every other package sees of the catalog; rows and dicts stay inside
``catalog.db``. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Agency:
    """An agency (CKAN organization): ``name`` is its stable slug, ``title`` its zh-TW name."""

    name: str
    title: str
    title_en: str = ""


@dataclass(frozen=True)
class FieldInfo:
    """One attribute column of a layer version: original (Chinese) name and its type.

    ``type`` is one of: string, integer, decimal, date, datetime, boolean.
    """

    name: str
    type: str
    raw_of: str | None = None  # set on a "<name>_raw" column: the column whose raw text it keeps


@dataclass(frozen=True)
class Decision:
    """A decision ingest took about a source (CRS, encoding, coordinate columns, ...).

    Attributes:
        kind: what was decided: "crs", "encoding", "columns", "delimiter", "header_rows", ...
        value: the outcome, e.g. "EPSG:3826", "cp950".
        source: what it rests on: "manifest", "prj-epsg", "prj-params", "crs-member",
            "ranges", "cpg", "ldid", "bytes", "default", ...
        confidence: 0..1 (1 for explicit statements such as a manifest override).
        detail: a sentence for people, in English.
    """

    kind: str
    value: str
    source: str
    confidence: float = 1.0
    detail: str = ""


@dataclass(frozen=True)
class Repair:
    """Something ingest changed to make the data right, with how many records it touched."""

    kind: str  # "make-valid", "close-ring", "drop-null-geometry", "utf8-cut", "vendor-char", ...
    count: int
    detail: str = ""
    records: tuple[str, ...] = ()  # record ids (key values or row numbers), at most a few dozen


@dataclass(frozen=True)
class Lineage:
    """Where a version came from and everything ingest decided or repaired on the way."""

    source: str  # the source as the manifest names it (path, zip!member, URL)
    sublayer: str | None
    source_hash: str  # sha256 of the source bytes (all files of a shapefile, the zip, ...)
    reader: str  # registered reader name
    decisions: tuple[Decision, ...] = ()
    repairs: tuple[Repair, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerVersion:
    """One immutable version of a layer's data.

    Attributes:
        layer_id: the layer's id.
        version: content hash (hex, 16 chars) of the normalised data; equal data, equal version.
        created: when it was published.
        kind: "vector", "raster" or "table" (no geometry).
        path: the stored data, relative to the data home (a file, never outside the home).
        geometry_type: "Point", "MultiPolygon", ... ("" for rasters and tables).
        feature_count: features (or rows) stored.
        bbox: (minx, miny, maxx, maxy) in EPSG:4326, or None for tables.
        source_crs: the CRS the source was in, e.g. "EPSG:3826".
        fields: attribute columns in source order.
        lineage: how it was made.
        size_bytes: size of the stored data.
    """

    layer_id: str
    version: str
    created: datetime
    kind: str
    path: str
    geometry_type: str
    feature_count: int
    bbox: tuple[float, float, float, float] | None
    source_crs: str
    fields: tuple[FieldInfo, ...]
    lineage: Lineage
    size_bytes: int = 0


@dataclass(frozen=True)
class Layer:
    """A catalog layer: its descriptive metadata and its current version (if any)."""

    id: str
    title: str
    agency: Agency
    title_en: str = ""
    description: str = ""
    category: str = ""
    keywords: tuple[str, ...] = ()
    license: str = "OGDL-Taiwan-1.0"
    update_frequency: str = ""
    style: dict = field(default_factory=dict, compare=False, hash=False)
    tileset: str = ""
    current_version: str | None = None
    created: datetime | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class IngestEntry:
    """What one manifest entry yielded the last time it was ingested.

    Attributes:
        id: the entry's id (the manifest id).
        source_hash: hash of the source bytes and reading options (and pipeline version).
        units: (layer id, sublayer or file name) of every unit the source held, in order.
        complete: whether every unit was published (a refused or failed unit makes it False).
        updated: when it was recorded.
    """

    id: str
    source_hash: str
    units: tuple[tuple[str, str], ...]
    complete: bool
    updated: datetime


@dataclass(frozen=True)
class SearchHit:
    """A layer found by a search, with its relevance score (higher is better)."""

    layer: Layer
    score: float
