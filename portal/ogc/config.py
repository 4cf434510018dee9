"""The running pygeoapi configuration: the ``pygeoapi-config.yml`` template plus the catalog.

The template (repository root) holds the server settings, limits and the zh-TW / English
metadata; ``resources`` is filled here with one collection per published layer (id = layer id),
with its titles, description, keywords, extent and links to the portal dataset page, WMS,
WMTS, TileJSON and downloads. The config is rebuilt whenever the catalog snapshot's stamp
changes (``portal.ogc.app`` caches it under the stamp), never edited by hand.

Providers per layer kind come from an explicit registry (``PROVIDER_BUILDERS``): a vector layer
gets the OGC API - Features provider on its stored GeoPackage; tile, coverage, record and
process resources plug in by adding builders there or to ``RESOURCE_BUILDERS``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from pygeoapi.config import validate_config as _pygeoapi_validate
from pygeoapi.util import yaml_load

from catalog.model import Layer, LayerVersion
from catalog.view import Snapshot
from portal.ogc.coverages import coverage_provider
from portal.ogc.jobs import manager_config
from portal.ogc.processes.registry import process_resources
from portal.ogc.records import records_resource
from portal.ogc.tiles import tile_provider

#: The template, at the repository root.
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "pygeoapi-config.yml"

#: Dotted path of the Features provider, as pygeoapi loads it.
FEATURE_PROVIDER = "portal.ogc.provider.GeoportalProvider"

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

#: Output CRSs every Features collection offers (first: the default, lon/lat).
FEATURE_CRS = (
    CRS84,
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/3826",
    "http://www.opengis.net/def/crs/EPSG/0/3825",
    "http://www.opengis.net/def/crs/EPSG/0/3824",
    "http://www.opengis.net/def/crs/EPSG/0/3857",
)

#: Whole-layer download formats served at /download/{id}.{fmt}: extension → (media type, title).
DOWNLOADS = {
    "geojson": ("application/geo+json", "GeoJSON"),
    "csv": ("text/csv", "CSV"),
    "kml": ("application/vnd.google-earth.kml+xml", "KML"),
    "gpkg": ("application/geopackage+sqlite3", "GeoPackage"),
    "shp.zip": ("application/zip", "Shapefile (zip)"),
    "parquet": ("application/vnd.apache.parquet", "GeoParquet"),
}

_WORLD = [-180.0, -90.0, 180.0, 90.0]


class OgcConfigError(ValueError):
    """The template or the generated configuration is not a valid pygeoapi configuration."""


@dataclass(frozen=True)
class Site:
    """Where the app is reached: the public root URL, without a trailing slash.

    Attributes:
        root: e.g. ``http://127.0.0.1:8000`` (or with a path prefix behind a proxy).
        home: the data home, where layer versions are stored.
    """

    root: str
    home: Path

    @property
    def ogc(self) -> str:
        """The pygeoapi base URL (``{root}/ogc``)."""
        return f"{self.root}/ogc"


#: Builds the provider definitions of one layer version (none when it does not apply).
ProviderBuilder = Callable[[Layer, LayerVersion, Site], list[dict]]
#: Builds extra resources (records catalog, processes) from the whole snapshot.
ResourceBuilder = Callable[[Snapshot, Site], dict[str, dict]]


def feature_provider(layer: Layer, version: LayerVersion, site: Site) -> list[dict]:
    """The OGC API - Features provider definition of a vector layer version."""
    if version.kind != "vector":
        return []
    return [
        {
            "type": "feature",
            "name": FEATURE_PROVIDER,
            "data": str(site.home / version.path),
            "id_field": "fid",
            "storage_crs": CRS84,
            "crs": list(FEATURE_CRS),
            "options": {"layer": layer.id, "version": version.version},
        }
    ]


#: Layer kind is not consulted here: each builder decides whether it applies.
PROVIDER_BUILDERS: tuple[ProviderBuilder, ...] = (feature_provider,)
RESOURCE_BUILDERS: tuple[ResourceBuilder, ...] = ()
PROVIDER_BUILDERS += (coverage_provider,)  # OGC API - Coverages: raster layers
RESOURCE_BUILDERS += (records_resource,)  # OGC API - Records: the catalog
PROVIDER_BUILDERS += (tile_provider,)  # OGC API - Tiles: vector layers (MVT)
RESOURCE_BUILDERS += (process_resources,)  # OGC API - Processes: function APIs

_template_lock = threading.Lock()
_template_cache: dict[tuple[Path, int], dict] = {}


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    """The template as a dict (``${VAR}`` expanded), cached until the file changes.

    Raises:
        OgcConfigError: when the file is missing or not a mapping with a ``server`` section.
    """
    try:
        key = (path, path.stat().st_mtime_ns)
    except OSError as err:
        raise OgcConfigError(f"pygeoapi template {path} cannot be read: {err}") from err
    with _template_lock:
        if key not in _template_cache:
            with path.open(encoding="utf-8") as fh:
                data = yaml_load(fh)
            if not isinstance(data, dict) or "server" not in data or "metadata" not in data:
                raise OgcConfigError(
                    f"pygeoapi template {path} needs 'server' and 'metadata' sections"
                )
            _template_cache.clear()
            _template_cache[key] = data
        return copy.deepcopy(_template_cache[key])


def _bilingual(zh: str, en: str) -> dict[str, str]:
    return {"zh-TW": zh, "en": en or zh}


def links(layer: Layer, version: LayerVersion, site: Site) -> list[dict]:
    """Links from a collection (or record) to the same layer in the portal's other services."""
    r, lid = site.root, layer.id
    wmts = f"{r}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"
    if layer.category:  # the category's layers and tilesets: a small document
        wmts += "&" + urlencode({"category": layer.category})
    raster = version.kind == "raster"
    out = [
        {
            "type": "text/html",
            "rel": "describedby",
            "title": "資料集頁面 Dataset page",
            "href": f"{r}/dataset/{lid}",
        },
        {
            "type": "application/vnd.ogc.wms_xml",
            "rel": "alternate",
            "title": "WMS 服務能力文件 WMS capabilities",
            "href": f"{r}/wms/{lid}?SERVICE=WMS&REQUEST=GetCapabilities",
        },
        {
            "type": "application/xml",
            "rel": "alternate",
            "title": "WMTS 服務能力文件 WMTS capabilities",
            "href": wmts,
        },
        {
            "type": "application/json",
            "rel": "alternate",
            "title": "TileJSON 網格圖磚 TileJSON (raster)"
            if raster
            else "TileJSON 向量圖磚 TileJSON (vector)",
            "href": f"{r}/tiles/{lid}.json",
        },
    ]
    if raster:  # the stored Cloud-Optimized GeoTIFF is the raster's download
        out.append(
            {
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "rel": "alternate",
                "title": "下載 GeoTIFF Download GeoTIFF",
                "href": f"{r}/download/{lid}.tif",
            }
        )
        return out
    for ext, (media, name) in DOWNLOADS.items():
        out.append(
            {
                "type": media,
                "rel": "alternate",
                "title": f"下載 {name} Download {name}",
                "href": f"{r}/download/{lid}.{ext}",
            }
        )
    return out


def collection(layer: Layer, version: LayerVersion, site: Site) -> dict | None:
    """The pygeoapi resource of one published layer, or None when no provider applies."""
    providers = [p for build in PROVIDER_BUILDERS for p in build(layer, version, site)]
    if not providers:
        return None
    agency_en = layer.agency.title_en or layer.agency.title
    description_en = f"{layer.title_en or layer.title}, {agency_en}."
    keywords = list(layer.keywords) or [layer.title]
    if layer.category and layer.category not in keywords:
        keywords.append(layer.category)
    return {
        "type": "collection",
        "title": _bilingual(layer.title, layer.title_en),
        "description": _bilingual(layer.description or layer.title, description_en),
        "keywords": keywords,
        "links": links(layer, version, site),
        "extents": {
            "spatial": {
                "bbox": list(version.bbox) if version.bbox else list(_WORLD),
                "crs": CRS84,
            }
        },
        "providers": providers,
    }


def build_config(snapshot: Snapshot, site: Site, template: dict | None = None) -> dict:
    """The running pygeoapi configuration for ``snapshot`` served at ``site``.

    Args:
        snapshot: the catalog view's snapshot; every published layer becomes a collection.
        site: public root URL and data home.
        template: the template dict (default: ``load_template()``).

    Returns:
        A configuration dict that ``pygeoapi.api.API`` accepts.
    """
    config = template if template is not None else load_template()
    config["server"]["url"] = site.ogc
    config["server"]["manager"] = manager_config(site.home)
    config["metadata"]["identification"]["url"] = f"{site.root}/"
    resources: dict[str, dict] = {}
    for layer, version in snapshot.published():
        resource = collection(layer, version, site)
        if resource is not None:
            resources[layer.id] = resource
    for build in RESOURCE_BUILDERS:
        resources.update(build(snapshot, site))
    config["resources"] = resources
    return config


def validate(config: dict) -> None:
    """Validate ``config`` against pygeoapi's own configuration schema.

    Raises:
        OgcConfigError: naming the first schema violation and where it is.
    """
    from jsonschema.exceptions import ValidationError

    try:
        _pygeoapi_validate(config)
    except ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise OgcConfigError(f"pygeoapi config invalid at {where}: {err.message}") from err
