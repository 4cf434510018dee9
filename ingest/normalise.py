"""One unit in, one NormalizedLayer out: read → decide CRS → lon/lat → repair → type values."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from catalog.model import Decision
from ingest import crs as crsmod
from ingest import geometry, raster
from ingest.attributes import type_columns
from ingest.model import NormalizedLayer
from ingest.readers import RawLayer, ReadOptions
from ingest.sources import Unit


def normalise_unit(unit: Unit, options: ReadOptions, work: Path) -> NormalizedLayer:
    """Read one unit and bring it to the stored form (EPSG:4326, valid, typed).

    Raises:
        ingest.errors.SourceRefused: the unit cannot be ingested as it is.
    """
    raw = unit.reader.read(unit.path, unit.sublayer, options)
    if raw.raster_path is not None:
        return _raster(unit, raw, options, work)
    if raw.geometry is None:
        return _table(unit, raw)
    return _vector(unit, raw, options)


def _typed(raw: RawLayer, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Decision]]:
    text = [c for c in raw.text_columns if c in frame.columns]
    if not text:
        return frame, []
    result = type_columns(frame, text)
    return result.frame, list(result.decisions)


def _table(unit: Unit, raw: RawLayer) -> NormalizedLayer:
    frame, typing = _typed(raw, raw.attributes.reset_index(drop=True))
    return NormalizedLayer(
        sublayer=unit.sublayer,
        kind="table",
        frame=frame,
        source_crs=None,
        features_in=len(frame),
        decisions=raw.decisions + typing,
        repairs=list(raw.repairs),
        warnings=[*raw.warnings, "no coordinates: catalogued as a table without geometry"],
    )


def _vector(unit: Unit, raw: RawLayer, options: ReadOptions) -> NormalizedLayer:
    geoms = np.asarray(raw.geometry, dtype=object)
    decision = crsmod.decide(
        options.display,
        override=options.crs,
        declared_wkt=raw.crs_wkt,
        evidence=raw.crs_evidence,
        bounds=crsmod.bounds_of(geoms),
    )
    crsmod.check_supported(decision.value, options.display)
    z = geometry.z_values(geoms)
    lonlat = crsmod.to_wgs84(geoms, decision.value)
    norm = geometry.normalise(lonlat)
    attrs = raw.attributes.reset_index(drop=True)
    for name, values in z.items():
        while name in attrs.columns:  # never overwrite a real attribute called z
            name = f"{name}_"
        attrs[name] = values
    attrs = attrs.loc[norm.keep].reset_index(drop=True)
    attrs, typing = _typed(raw, attrs)
    frame = gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(norm.geometry, crs="EPSG:4326"))
    warnings = [*raw.warnings, *norm.warnings]
    if z:
        warnings.append(f"3-D coordinates: Z kept as attribute(s) {', '.join(z)}")
    if decision.confidence < 0.9:
        warnings.append(f"CRS {decision.value} inferred ({decision.detail})")
    return NormalizedLayer(
        sublayer=unit.sublayer,
        kind="vector",
        frame=frame,
        source_crs=decision.value,
        geometry_type=norm.geometry_type,
        features_in=len(geoms),
        decisions=[decision, *raw.decisions, *typing],
        repairs=[*raw.repairs, *norm.repairs],
        warnings=warnings,
    )


def _raster(unit: Unit, raw: RawLayer, options: ReadOptions, work: Path) -> NormalizedLayer:
    decision = crsmod.decide(
        options.display,
        override=options.crs,
        declared_wkt=raw.crs_wkt,
        evidence=raw.crs_evidence,
        bounds=raster.bounds(raw.raster_path),
    )
    crsmod.check_supported(decision.value, options.display)
    work.mkdir(parents=True, exist_ok=True)
    result = raster.to_cog(raw.raster_path, decision.value, work / f"{unit.path.stem}.cog.tif")
    return NormalizedLayer(
        sublayer=unit.sublayer,
        kind="raster",
        frame=None,
        source_crs=decision.value,
        raster_path=result.path,
        decisions=[decision, *raw.decisions, *result.decisions],
        repairs=[*raw.repairs, *result.repairs],
        warnings=[*raw.warnings]
        + (
            [f"CRS {decision.value} inferred ({decision.detail})"]
            if decision.confidence < 0.9
            else []
        ),
    )
