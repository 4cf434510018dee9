"""The version store: one immutable file per layer version, written atomically.

Vector and table versions are GeoPackages (one table ``features``; EPSG:4326 lon/lat with an
R-tree spatial index; original Chinese column names); rasters are Cloud-Optimized GeoTIFFs.
A version's name is the content hash of its data, so re-ingesting identical data yields the
same version. Files are written under a ``.part`` name and renamed into place: a reader never
sees half a version, and an interrupted write leaves only a ``*.part.*`` file that the next
run removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from catalog.model import FieldInfo
from ingest.attributes import field_type
from ingest.model import NormalizedLayer

LAYERS_DIR = "layers"
STORE_FORMAT = b"geoportal-gpkg-2"  # part of every version hash: a new format, a new file


@dataclass(frozen=True)
class Stored:
    """Where a version was stored and what it holds."""

    version: str
    path: str  # relative to the data home
    size_bytes: int
    bbox: tuple[float, float, float, float] | None
    fields: tuple[FieldInfo, ...]


def layer_dir(home: Path, layer_id: str) -> Path:
    """The folder of a layer's versions (ids are validated [a-z0-9-]+ before they get here)."""
    return home / LAYERS_DIR / layer_id


def clean_partial(home: Path) -> int:
    """Remove ``.part`` files that interrupted runs left behind; returns how many.

    A part file carries its writer's pid; files of a process that is still running (another
    ingest on the same home) are left alone.
    """
    root = home / LAYERS_DIR
    removed = 0
    for p in root.glob("*/*.part.*") if root.exists() else []:
        if not _alive(p.name.split(".")[1]):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def fields_of(frame: pd.DataFrame) -> tuple[FieldInfo, ...]:
    """Field descriptions of a frame's attribute columns (``<name>_raw`` marked as raw text)."""
    cols = [c for c in frame.columns if c != "geometry"]
    out = []
    for c in cols:
        raw_of = c[: -len("_raw")] if c.endswith("_raw") and c[: -len("_raw")] in cols else None
        out.append(FieldInfo(str(c), field_type(frame[c]), raw_of))
    return tuple(out)


ARROW_TYPES = {
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("ms"),
    "string": pa.string(),
}


def _arrow_values(series: pd.Series, kind: str) -> pa.Array:
    values = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in series]
    if kind == "string":
        values = [None if v is None else str(v) for v in values]
    elif kind == "datetime":
        values = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in values]
    return pa.array(values, ARROW_TYPES[kind])


def _arrow(frame: pd.DataFrame, fields: tuple[FieldInfo, ...], with_geometry: bool) -> pa.Table:
    """The frame as an Arrow table: typed columns (dates as GeoPackage DATE), WKB geometry."""
    columns = {f.name: _arrow_values(frame[f.name], f.type) for f in fields}
    if with_geometry:
        wkb = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object))
        columns["geometry"] = pa.array(wkb, pa.binary())
    return pa.table(columns)


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO text (GeoPackage DATE is text too); other objects as strings."""
    out = frame.copy()
    for c in out.columns:
        if c == "geometry" or out[c].dtype != object:
            continue
        out[c] = [
            None
            if v is None or (isinstance(v, float) and np.isnan(v))
            else v.isoformat()
            if isinstance(v, (date, datetime))
            else str(v)
            for v in out[c]
        ]
    return out


def content_hash(frame: pd.DataFrame) -> str:
    """A hash of the normalised data: column names, values and geometry WKB."""
    h = hashlib.sha256(STORE_FORMAT)
    for c in frame.columns:
        h.update(str(c).encode())
        col = frame[c]
        if c == "geometry" or isinstance(col, gpd.GeoSeries):
            wkb = shapely.to_wkb(np.asarray(col.values, dtype=object))
            for b in wkb:
                h.update(b or b"\0")
        else:
            h.update(pd.util.hash_pandas_object(col.astype(str), index=False).values.tobytes())
    return h.hexdigest()[:16]


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def write_version(home: Path, layer_id: str, layer: NormalizedLayer) -> Stored:
    """Store a normalised layer as a new version (or find the identical one already stored)."""
    folder = layer_dir(home, layer_id)
    folder.mkdir(parents=True, exist_ok=True)
    if layer.kind == "raster":
        return _write_raster(home, folder, layer)
    fields = fields_of(layer.frame)
    version = content_hash(_storable(layer.frame))
    target = folder / f"{version}.gpkg"
    if not target.exists():
        part = folder / f"{version}.{os.getpid()}.part.gpkg"
        part.unlink(missing_ok=True)
        table = _arrow(layer.frame, fields, with_geometry=layer.kind == "vector")
        kwargs: dict = {"layer": "features", "driver": "GPKG"}
        if layer.kind == "vector":
            gtype = (
                layer.geometry_type if layer.geometry_type not in ("Geometry", "") else "Unknown"
            )
            kwargs |= {"geometry_name": "geometry", "geometry_type": gtype, "crs": "EPSG:4326"}
        pyogrio.write_arrow(table, part, **kwargs)
        os.replace(part, target)
    bbox = None
    if layer.kind == "vector" and len(layer.frame):
        bbox = tuple(float(v) for v in layer.frame.total_bounds)
    return Stored(
        version,
        target.relative_to(home).as_posix(),
        target.stat().st_size,
        bbox,
        fields,
    )


def _write_raster(home: Path, folder: Path, layer: NormalizedLayer) -> Stored:
    import rasterio
    from rasterio.warp import transform_bounds

    version = _file_hash(layer.raster_path)
    target = folder / f"{version}.tif"
    if not target.exists():
        part = folder / f"{version}.{os.getpid()}.part.tif"
        shutil.copyfile(layer.raster_path, part)
        os.replace(part, target)
    with rasterio.open(target) as ds:
        bbox = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    return Stored(
        version,
        target.relative_to(home).as_posix(),
        target.stat().st_size,
        tuple(float(v) for v in bbox),
        (),
    )


def remove_version_file(home: Path, rel_path: str) -> None:
    """Delete a pruned version's file (only inside the layers folder)."""
    path = (home / rel_path).resolve()
    if (home / LAYERS_DIR).resolve() in path.parents:
        path.unlink(missing_ok=True)
