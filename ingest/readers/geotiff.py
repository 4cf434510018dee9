"""GeoTIFF rasters (DEMs, orthophotos): the reader only opens and describes them.

Conversion to a Cloud-Optimized GeoTIFF happens in ``ingest.raster`` once the CRS is decided.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError

from catalog.model import Decision
from ingest.errors import SourceRefused
from ingest.readers.base import RawLayer, Reader, ReadOptions


class GeoTIFFReader(Reader):
    """GeoTIFF and plain TIFF with a world file."""

    name = "geotiff"
    suffixes = (".tif", ".tiff")

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Describe the raster: its declared CRS; the pipeline converts it."""
        try:
            with rasterio.open(path) as ds:
                wkt = ds.crs.to_wkt() if ds.crs else None
                detail = f"{ds.width}×{ds.height}, {ds.count} band(s) of {ds.dtypes[0]}"
        except RasterioIOError as e:
            raise SourceRefused(
                options.display, "unreadable", f"not a readable raster ({e})"
            ) from e
        return RawLayer(
            sublayer=None,
            attributes=pd.DataFrame(),
            geometry=None,
            crs_wkt=wkt,
            crs_evidence="geotiff" if wkt else "none",
            raster_path=path,
            decisions=[Decision("raster", "geotiff", "file", 1.0, detail)],
        )


READERS = {"geotiff": GeoTIFFReader()}
