"""Rasters to Cloud-Optimized GeoTIFF: decided CRS assigned, nodata made sane, overviews built.

DEMs arrive as float32/float64 with odd nodata (−32767, −1.797693e+308, none at all) and
sidecars (.ovr, .aux.xml, .tfw). The stored version is a COG (GDAL's COG driver: tiled,
DEFLATE, internal overviews) with the EPSG code the CRS decision found; float rasters are
stored as float32 with nodata −9999 (every old nodata value and every non-finite cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds

from catalog.model import Decision, Repair

NODATA_FLOAT = -9999.0
TWD67_DX, TWD67_DY = 828.589, -206.915  # EPSG:15487, TWD67 TM2 → TWD97 TM2


@dataclass
class RasterResult:
    """What converting a raster produced."""

    path: Path
    bbox: tuple[float, float, float, float]
    decisions: list[Decision]
    repairs: list[Repair]
    info: str


def bounds(path: Path) -> tuple[float, float, float, float]:
    """The raster's bounds in its own coordinates."""
    with rasterio.open(path) as ds:
        return tuple(ds.bounds)


def to_cog(src: Path, crs: str, dst: Path) -> RasterResult:
    """Write ``src`` as a COG at ``dst`` in ``crs`` (assigned, not warped).

    TWD67 TM2 (EPSG:3828) rasters are moved to TWD97 TM2 by EPSG:15487, which is a pure
    translation of the grid (+828.589 m E, −206.915 m N): exact for a raster's origin.
    """
    decisions: list[Decision] = []
    repairs: list[Repair] = []
    with rasterio.open(src) as ds:
        transform = ds.transform
        if crs == "EPSG:3828":
            transform = Affine(
                transform.a,
                transform.b,
                transform.c + TWD67_DX,
                transform.d,
                transform.e,
                transform.f + TWD67_DY,
            )
            decisions.append(
                Decision(
                    "datum-shift",
                    "EPSG:15487",
                    "policy",
                    1.0,
                    "TWD67 grid moved to TWD97 TM2 by EPSG:15487",
                )
            )
            crs = "EPSG:3826"
        profile = {
            "driver": "COG",
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "crs": CRS.from_string(crs),
            "transform": transform,
            "compress": "DEFLATE",
            "blocksize": 512,
            "BIGTIFF": "IF_SAFER",
        }
        data = ds.read()
        is_float = np.issubdtype(data.dtype, np.floating)
        if is_float:
            data, fixed = _normalise_nodata(data, ds.nodata)
            profile |= {
                "dtype": "float32",
                "nodata": NODATA_FLOAT,
                "predictor": 3,
                "resampling": "average",
            }
            if fixed:
                repairs.append(
                    Repair(
                        "raster-nodata",
                        fixed,
                        f"nodata {ds.nodata!r} and non-finite cells set to {NODATA_FLOAT}",
                    )
                )
            if ds.dtypes[0] != "float32":
                decisions.append(
                    Decision(
                        "raster-dtype",
                        "float32",
                        "policy",
                        1.0,
                        f"{ds.dtypes[0]} stored as float32",
                    )
                )
        else:
            profile |= {"dtype": ds.dtypes[0], "nodata": ds.nodata, "predictor": 2}
            if ds.count >= 3:
                profile["photometric"] = "RGB"
        west, south, east, north = array_bounds(ds.height, ds.width, transform)
        bbox = transform_bounds(
            CRS.from_string(crs), "EPSG:4326", west, south, east, north, densify_pts=21
        )
        info = f"{ds.width}×{ds.height}, {ds.count} band(s), {profile['dtype']}"
    tmp = dst.with_name(dst.name + ".part")
    with rasterio.open(tmp, "w", **profile) as out:
        out.write(data)
    tmp.replace(dst)
    return RasterResult(dst, tuple(float(v) for v in bbox), decisions, repairs, info)


def _normalise_nodata(data: np.ndarray, nodata: float | None) -> tuple[np.ndarray, int]:
    bad = ~np.isfinite(data)
    if nodata is not None and np.isfinite(nodata):
        bad |= data == nodata
    bad |= np.abs(data) > 1e30  # −1.797693e+308 written with fewer digits than it was stored
    out = np.where(bad, NODATA_FLOAT, data).astype(np.float32)
    return out, int(bad.sum())
