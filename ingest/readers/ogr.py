"""Helpers shared by the readers that go through GDAL/OGR (pyogrio)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio import raw
from pyogrio.errors import DataLayerError, DataSourceError

from catalog.model import Repair
from ingest.errors import SourceRefused


def geometries(wkb: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Shapely geometries from WKB, and how many needed their rings closed to be read."""
    if wkb is None:
        return np.array([], dtype=object), 0
    try:
        return shapely.from_wkb(wkb, on_invalid="raise"), 0
    except shapely.errors.GEOSException:
        pass
    out = np.empty(len(wkb), dtype=object)
    fixed = 0
    for i, g in enumerate(wkb):
        if g is None:
            continue
        try:
            out[i] = shapely.from_wkb(g, on_invalid="raise")
        except shapely.errors.GEOSException:
            out[i] = shapely.from_wkb(g, on_invalid="fix")
            fixed += 1
    return out, fixed


def ring_repair(fixed: int) -> list[Repair]:
    """The repair record for rings closed while reading."""
    if not fixed:
        return []
    return [Repair("close-ring", fixed, "polygon rings that were not closed were closed")]


def read(
    path: Path,
    display: str,
    layer: str | None = None,
    encoding: str | None = None,
    **open_options,
) -> tuple[dict, pd.DataFrame, np.ndarray, int]:
    """(meta, attributes, geometries, rings closed) of one OGR layer.

    Raises:
        SourceRefused: GDAL cannot open or read it, or its text is not in the encoding it
            should be (the message names the file and says what to add to the manifest).
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Non closed ring", RuntimeWarning)
            meta, _, wkb, fields = raw.read(path, layer=layer, encoding=encoding, **open_options)
    except UnicodeDecodeError as e:
        raise SourceRefused(
            display,
            "wrong-encoding",
            f"its text is not {encoding or 'UTF-8'} (byte 0x{e.object[e.start]:02X} does not "
            "decode)",
            "add `encoding: cp950` (or the right one) to the manifest entry",
        ) from e
    except (DataSourceError, DataLayerError) as e:
        raise SourceRefused(
            display,
            "unreadable",
            f"GDAL cannot read it ({e})",
            "check that the file is complete and in the format its name says",
        ) from e
    types = meta.get("ogr_types") or [None] * len(fields)
    attrs = pd.DataFrame(
        {
            name: _dates(col) if t == "OFTDate" else col
            for name, col, t in zip(meta["fields"], fields, types, strict=True)
        }
    )
    geoms, fixed = geometries(wkb)
    return meta, attrs, geoms, fixed


def _dates(col: np.ndarray) -> list:
    """An OGR Date column as datetime.date values (None for null), not midnight timestamps."""
    return [None if pd.isna(v) else pd.Timestamp(v).date() for v in col]


def layer_names(path: Path, display: str) -> list[str]:
    """The layers of a multi-layer source, in source order."""
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except DataSourceError as e:
        raise SourceRefused(display, "unreadable", f"GDAL cannot open it ({e})") from e
