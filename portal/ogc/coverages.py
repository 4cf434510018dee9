"""OGC API - Coverages for raster layers: pygeoapi's rasterio provider on the stored COG.

Every raster layer version is stored as one Cloud-Optimized GeoTIFF in its source CRS (usually
EPSG:3826) with its nodata value set. pygeoapi's own ``RasterioProvider`` reads that file
directly (windowed reads through the COG's internal tiling), so the provider definition only
names the file and its native format; ``/ogc/collections/{id}/coverage`` then answers
CoverageJSON (``f=json``) or GeoTIFF (``f=GTiff``), with ``bbox`` (lon/lat or ``bbox-crs``),
``subset`` on the file's axes and ``properties`` (bands).

pygeoapi's coverage operation answers a malformed ``bbox`` with HTTP 500 (and the OGC code
``InvalidParameterValue``); importing this module installs a wrapper around
``pygeoapi.api.coverages.get_collection_coverage`` (before ``portal.ogc.app`` routes to it)
that answers such client errors with 400.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import pygeoapi.api.coverages as _coverages_api
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeoapi.provider.rasterio_ import RasterioProvider

if TYPE_CHECKING:
    from catalog.model import Layer, LayerVersion
    from portal.ogc.config import Site

#: pygeoapi's rasterio coverage provider with request checks (dotted path, as pygeoapi loads it).
COVERAGE_PROVIDER = "portal.ogc.coverages.GeoportalCoverageProvider"

#: Native output format of the stored rasters (GDAL driver name, media type).
NATIVE_FORMAT = {"name": "GTiff", "mimetype": "application/x-geotiff"}


def coverage_provider(layer: Layer, version: LayerVersion, site: Site) -> list[dict]:
    """The OGC API - Coverages provider definition of a raster layer version.

    Args:
        layer: the layer (unused: every raster layer is a coverage).
        version: its current version; only ``kind == "raster"`` applies.
        site: where the data home is.

    Returns:
        One provider definition, or none for vector and table layers.
    """
    if version.kind != "raster":
        return []
    return [
        {
            "type": "coverage",
            "name": COVERAGE_PROVIDER,
            "data": str(site.home / version.path),
            "options": {"DATA_ENCODING": "COG"},
            "format": dict(NATIVE_FORMAT),
        }
    ]


class GeoportalCoverageProvider(RasterioProvider):
    """pygeoapi's ``RasterioProvider``, with malformed subsets answered as client errors.

    The stock provider indexes ``subset`` bounds blindly: a one-value (slice) subset such as
    ``y(2670000)`` ends in an IndexError, hence HTTP 500. Here every subset must be a
    ``lower:upper`` range with lower <= upper, else HTTP 400.
    """

    def query(self, properties=None, subsets=None, bbox=None, **kwargs: Any) -> Any:
        """Check the subsets, then query as pygeoapi's rasterio provider does.

        Raises:
            ProviderInvalidQueryError: a subset that is not a ``lower:upper`` range (HTTP 400).
        """
        for axis, bounds in (subsets or {}).items():
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                msg = f"subset {axis}: give a range lower:upper (lower <= upper)"
                raise ProviderInvalidQueryError(msg, user_msg=msg)
        return super().query(
            properties=properties or [], subsets=subsets or {}, bbox=bbox, **kwargs
        )


def _client_errors_as_400(operation: Any) -> Any:
    """``operation`` with pygeoapi's 500 ``InvalidParameterValue`` answers turned into 400."""

    def get_collection_coverage(api: Any, request: Any, dataset: str) -> tuple[dict, int, Any]:
        headers, status, content = operation(api, request, dataset)
        if status == HTTPStatus.INTERNAL_SERVER_ERROR and isinstance(content, str | bytes):
            try:
                code = json.loads(content).get("code")
            except (ValueError, AttributeError):
                code = None
            if code == "InvalidParameterValue":
                status = HTTPStatus.BAD_REQUEST
        return headers, status, content

    get_collection_coverage.wrapped = operation
    return get_collection_coverage


if not hasattr(_coverages_api.get_collection_coverage, "wrapped"):
    _coverages_api.get_collection_coverage = _client_errors_as_400(
        _coverages_api.get_collection_coverage
    )
