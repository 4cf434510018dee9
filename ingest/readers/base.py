"""The reader interface: one implementation per source format, registered by name.

A reader turns one file (already extracted from any archive) into :class:`RawLayer` objects:
decoded attributes and geometries in the source's own coordinates, plus what the file says
about its CRS. Deciding the CRS, reprojecting, repairing geometry and typing text values
happen after the reader, the same way for every format (``ingest.pipeline``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from catalog.model import Decision, Repair


@dataclass(frozen=True)
class ReadOptions:
    """What the manifest says about a source, for the reader to honour.

    Attributes:
        display: the source's name in messages, e.g. "建設局/道路.zip!道路/道路.shp".
        encoding: text encoding override ("cp950", "utf-8", ...).
        crs: CRS override ("EPSG:3828"); readers of coordinate columns use it to choose them.
        x: name of the x / longitude column of a table.
        y: name of the y / latitude column of a table.
    """

    display: str
    encoding: str | None = None
    crs: str | None = None
    x: str | None = None
    y: str | None = None


@dataclass
class RawLayer:
    """One layer as read, before CRS decision, reprojection, repair and typing.

    Attributes:
        sublayer: the sublayer's name (GeoPackage table, KML folder) or None.
        attributes: decoded attribute columns with the source's original names and order.
            Formats that type their values (DBF numbers, GeoPackage) keep those types; text
            formats (CSV, KML) give strings, typed later by ``ingest.attributes``.
        geometry: shapely geometries (None for a record without geometry) in the source's
            coordinates, or None when the source has no geometry at all (a table).
        crs_wkt: the CRS the source declares (.prj text, GeoPackage SRS, GeoJSON ``crs``
            member, GeoTIFF WKT), or None when it declares none.
        crs_evidence: where ``crs_wkt`` came from ("prj", "gpkg", "crs-member", "geotiff"),
            or "implicit-4326" for formats defined in lon/lat (KML, RFC 7946 GeoJSON,
            TopoJSON), or "none".
        text_columns: names of columns that came as text and may hold typed values.
        decisions: decisions the reader took (encoding, delimiter, header rows, columns).
        repairs: repairs the reader made (UTF-8 cut at field width, vendor characters).
        warnings: anything a person should read.
        raster_path: for rasters, the file to convert (attributes empty, geometry None).
    """

    sublayer: str | None
    attributes: pd.DataFrame
    geometry: np.ndarray | None
    crs_wkt: str | None = None
    crs_evidence: str = "none"
    text_columns: tuple[str, ...] = ()
    decisions: list[Decision] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raster_path: Path | None = None


class Reader(ABC):
    """Reads one source format."""

    #: the registered name, e.g. "shapefile"
    name: ClassVar[str]
    #: lower-case file suffixes this reader takes, e.g. (".shp",)
    suffixes: ClassVar[tuple[str, ...]]

    def sublayers(self, path: Path) -> list[str]:
        """Names of the sublayers in source order; [] for single-layer formats."""
        return []

    @abstractmethod
    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read one layer (``sublayer`` None for single-layer formats).

        Raises:
            ingest.errors.SourceRefused: the file cannot be read as it is (names the file and
                says what to change).
        """
