"""Every published catalog layer as a portal dataset (CKAN package), with its resources.

:func:`dataset_of_layer` is pure: a :class:`~catalog.model.Layer`, its current
:class:`~catalog.model.LayerVersion` and, when the portal already holds the layer's dataset,
that dataset, give the dataset the portal stores. The dataset's name is the layer id, its
organization the layer's agency; title, description, keywords, category, update frequency and
licence come from the layer; the extent, feature count, geometry type, source CRS and columns
from the version.

Resources are *generated*: one per thing the portal really serves for that kind of layer, with
deterministic ids (:func:`resource_id`) and URLs relative to the site root (made absolute at the
API edge):

============  ===========================================  ======================================
kind          downloads (``/download/{id}.{fmt}``)         services
============  ===========================================  ======================================
vector        geojson, csv, kml, shp.zip, gpkg, parquet    WMS, WMTS, OGC API Features, TileJSON
                                                           (MVT), PMTiles
table         the exporter's formats that need no          —
              geometry: geojson, csv, gpkg, parquet
raster        tif (the stored Cloud-Optimized GeoTIFF)     WMS, WMTS, OGC API Coverages, TileJSON
                                                           (PNG)
============  ===========================================  ======================================

Download formats come from :data:`catalog.export.FORMATS` (a format that needs geometry is not
offered for a table). A vector layer's TileJSON and PMTiles read the archive
``geoportal tiles build`` makes; they answer 404 until it has run.

Everything a client added through the API to an existing dataset is kept: its groups, its
non-generated resources (listed after the generated ones), its extras other than the generated
ones, ``private``, contacts (author, maintainer), ``url``, ``version``, the creator, and a
``fields_description`` an agency wrote (one generated from the columns is regenerated).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

from catalog.export import FORMATS
from catalog.model import FieldInfo, Layer, LayerVersion
from portal.ckan.model import Dataset, Resource

__all__ = [
    "GENERATED_EXTRAS",
    "NAMESPACE",
    "dataset_id",
    "dataset_of_layer",
    "describe_fields",
    "generated_resources",
    "license_id",
    "organization_id",
    "resource_id",
    "spatial_of_bbox",
    "tag_names",
]

NAMESPACE = uuid.UUID("108cf413-8781-57da-b2fd-b1b381ddaf8d")
"""The namespace of every deterministic id of the portal (``uuid5(NAMESPACE_URL, ...)``)."""

GENERATED_EXTRAS = (
    "feature_count",
    "geometry_type",
    "source_crs",
    "layer_version",
    "layer_kind",
    "fields",
    "license_text",
)
"""Extras :func:`dataset_of_layer` writes; every other extra of an existing dataset is kept."""

#: Licence texts (case-folded, spaces and dashes removed) → an id of ``portal.ckan.licenses``
#: (licences it does not list become "other-open", or "other-closed" when not open).
_LICENSES = {
    "ogdltaiwan1.0": "OGDL-Taiwan-1.0",
    "政府資料開放授權條款第1版": "OGDL-Taiwan-1.0",
    "政府資料開放授權條款第一版": "OGDL-Taiwan-1.0",
    "政府資料開放授權條款": "OGDL-Taiwan-1.0",
    "ccby4.0": "CC-BY-4.0",
    "ccby": "CC-BY-4.0",
    "創用cc姓名標示4.0國際": "CC-BY-4.0",
    "ccbysa4.0": "other-open",
    "ccbysa": "other-open",
    "cc01.0": "CC0-1.0",
    "cc0": "CC0-1.0",
    "ccbync4.0": "other-closed",
    "odbl1.0": "ODbL-1.0",
    "odbl": "ODbL-1.0",
    "odcby1.0": "other-open",
    "pddl1.0": "other-open",
    "otheropen": "other-open",
    "otherclosed": "other-closed",
    "notspecified": "notspecified",
}
_LICENSE_URLS = {
    "data.gov.tw/license": "OGDL-Taiwan-1.0",
    "creativecommons.org/licenses/by/4.0": "CC-BY-4.0",
    "creativecommons.org/publicdomain/zero/1.0": "CC0-1.0",
    "opendatacommons.org/licenses/odbl": "ODbL-1.0",
}
_TAG_ALLOWED = re.compile(r"[^\w .\-]+")
TAG_LENGTH = (2, 100)
"""CKAN's tag length limits (``MIN_TAG_LENGTH``, ``MAX_TAG_LENGTH``)."""


@dataclass(frozen=True)
class _Download:
    """How the portal presents one download format: CKAN label, zh-TW name, media type."""

    label: str
    name: str
    mimetype: str
    description: str
    encoding: str = ""


_DOWNLOADS = {
    "geojson": _Download(
        "GeoJSON",
        "GeoJSON 下載",
        "application/geo+json",
        "全圖層 GeoJSON（RFC 7946，WGS 84 經緯度）。Whole layer as GeoJSON (RFC 7946, lon/lat).",
        "UTF-8",
    ),
    "csv": _Download(
        "CSV",
        "CSV 下載",
        "text/csv",
        "全圖層 CSV（UTF-8 含 BOM；點位為 lon/lat 欄，其他幾何為 wkt 欄）。"
        "Whole layer as CSV (UTF-8 with BOM; points as lon/lat columns, other geometry as WKT).",
        "UTF-8",
    ),
    "kml": _Download(
        "KML",
        "KML 下載",
        "application/vnd.google-earth.kml+xml",
        "全圖層 KML，屬性置於 ExtendedData。Whole layer as KML, attributes in ExtendedData.",
        "UTF-8",
    ),
    "shp.zip": _Download(
        "SHP",
        "Shapefile 下載",
        "application/zip",
        "Shapefile 壓縮檔（UTF-8 DBF、.cpg、.prj 與欄位對照 fields.csv）。"
        "Zipped shapefile (UTF-8 DBF, .cpg, .prj and the field name map fields.csv).",
        "UTF-8",
    ),
    "gpkg": _Download(
        "GPKG",
        "GeoPackage 下載",
        "application/geopackage+sqlite3",
        "全圖層 GeoPackage（含空間索引）。Whole layer as a GeoPackage (with a spatial index).",
    ),
    "parquet": _Download(
        "GeoParquet",
        "GeoParquet 下載",
        "application/vnd.apache.parquet",
        "全圖層 GeoParquet 1.1（WKB 幾何）。Whole layer as GeoParquet 1.1 (WKB geometry).",
    ),
}
_TABLE_PARQUET = _Download(
    "Parquet",
    "Parquet 下載",
    "application/vnd.apache.parquet",
    "全表 Parquet。The whole table as Parquet.",
)
_GEOTIFF = _Download(
    "GeoTIFF",
    "GeoTIFF 下載",
    "image/tiff",
    "原始網格資料（Cloud-Optimized GeoTIFF）。The stored raster as a Cloud-Optimized GeoTIFF.",
)


# --------------------------------------------------------------------------- ids


def dataset_id(name: str) -> str:
    """The id of the dataset named ``name`` (``uuid5(NAMESPACE, "dataset:" + name)``)."""
    return str(uuid.uuid5(NAMESPACE, f"dataset:{name}"))


def resource_id(dataset_name: str, key: str) -> str:
    """The id of a generated resource: ``uuid5(NAMESPACE, f"{dataset_name}:{key}")``.

    Args:
        dataset_name: the dataset's name (for a layer: the layer id).
        key: what the resource is within the dataset ("geojson", "wms", "tilejson", ...).
    """
    return str(uuid.uuid5(NAMESPACE, f"{dataset_name}:{key}"))


def organization_id(name: str) -> str:
    """The id of the organization named ``name`` (``uuid5(NAMESPACE, "organization:" + name)``)."""
    return str(uuid.uuid5(NAMESPACE, f"organization:{name}"))


# --------------------------------------------------------------------------- metadata


def license_id(text: str) -> str:
    """The CKAN ``license_list`` id a licence text names.

    Ids pass through; the usual spellings of the licences ``license_list`` offers, in Chinese
    or English, and their URLs map to their ids; an empty text is "notspecified" and any other
    text "other-open" (the text itself is kept in the ``license_text`` extra).

    Args:
        text: the licence as the layer records it ("OGDL-Taiwan-1.0", "政府資料開放授權條款-第1版",
            "CC BY 4.0", "https://data.gov.tw/license", ...).

    Returns:
        A license id.
    """
    written = text.strip()
    if not written:
        return "notspecified"
    key = re.sub(r"[\s\-_－—–]", "", written).casefold()
    if key in _LICENSES:
        return _LICENSES[key]
    url = re.sub(r"^https?://(www\.)?", "", written.casefold()).rstrip("/")
    for prefix, found in _LICENSE_URLS.items():
        if url.startswith(prefix):
            return found
    return "other-open"


def tag_names(keywords: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Keywords as CKAN tags: allowed characters only, 2–100 long, each once, in order.

    CKAN accepts letters (any script), digits, spaces, ``-``, ``_`` and ``.``; anything else
    becomes a space. A keyword shorter than two characters is dropped: a real CKAN refuses it.
    """
    out: dict[str, None] = {}
    for keyword in keywords:
        tag = " ".join(_TAG_ALLOWED.sub(" ", keyword).split())[: TAG_LENGTH[1]].strip()
        if len(tag) >= TAG_LENGTH[0]:
            out.setdefault(tag, None)
    return tuple(out)


def spatial_of_bbox(bbox: tuple[float, float, float, float] | None) -> str:
    """A GeoJSON geometry text of a lon/lat bbox (CKAN's ``spatial``).

    A Polygon, or a Point when the bbox is one point; "" for no bbox.
    """
    if bbox is None:
        return ""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if minx == maxx and miny == maxy:
        geometry: dict = {"type": "Point", "coordinates": [minx, miny]}
    else:
        ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
    return json.dumps(geometry, separators=(",", ":"))


_TYPE_NAMES = {
    "string": "文字 text",
    "integer": "整數 integer",
    "decimal": "數值 decimal",
    "date": "日期 date",
    "datetime": "日期時間 datetime",
    "boolean": "布林 boolean",
}


def describe_fields(fields: tuple[FieldInfo, ...] | list[FieldInfo]) -> str:
    """主要欄位說明 generated from a version's columns: one ``name（type）`` per column.

    A ``<name>_raw`` column says which column's original text it keeps.
    """
    parts = []
    for f in fields:
        text = f"{f.name}（{_TYPE_NAMES.get(f.type, f.type)}）"
        if f.raw_of:
            text = f"{f.name}（{f.raw_of} 的原始文字 original text of {f.raw_of}）"
        parts.append(text)
    return "、".join(parts)


def _fields_json(fields: tuple[FieldInfo, ...]) -> str:
    return json.dumps([{"name": f.name, "type": f.type} for f in fields], ensure_ascii=False)


def _fields_of_extra(text: str) -> tuple[FieldInfo, ...] | None:
    """The columns a ``fields`` extra lists (None when it is not such a list)."""
    try:
        items = json.loads(text)
        return tuple(FieldInfo(i["name"], i["type"]) for i in items)
    except (ValueError, TypeError, KeyError):
        return None


# --------------------------------------------------------------------------- resources


def _download(
    layer: Layer, version: LayerVersion, ext: str, spec: _Download, position: int
) -> Resource:
    return Resource(
        id=resource_id(layer.id, ext),
        package_id=dataset_id(layer.id),
        name=spec.name,
        url=f"/download/{layer.id}.{ext}",
        format=spec.label,
        kind="download",
        description=spec.description,
        mimetype=spec.mimetype,
        size=(version.size_bytes or None) if ext == "tif" else None,
        position=position,
        generated=True,
        encoding=spec.encoding,
        created=version.created,
        last_modified=version.created,
    )


def _downloads(layer: Layer, version: LayerVersion) -> list[tuple[str, _Download]]:
    """(extension, presentation) of every download the layer's kind has."""
    if version.kind == "raster":
        return [("tif", _GEOTIFF)]
    out = []
    for ext, fmt in FORMATS.items():
        if version.kind == "table" and fmt.needs_geometry:
            continue
        spec = _DOWNLOADS[ext]
        if version.kind == "table" and ext == "parquet":
            spec = _TABLE_PARQUET
        out.append((ext, spec))
    return out


@dataclass(frozen=True)
class _Service:
    key: str
    label: str
    name: str
    url: str
    mimetype: str
    description: str


def _services(layer: Layer, version: LayerVersion) -> list[_Service]:
    """The web services that publish a drawable layer (none for a table)."""
    if version.kind not in ("vector", "raster"):
        return []
    lid = layer.id
    raster = version.kind == "raster"
    wmts = "/wmts/1.0.0/WMTSCapabilities.xml"
    if layer.category:  # the category's layers and tilesets: a small document
        wmts += "?" + urlencode({"category": layer.category})
    out = [
        _Service(
            "wms",
            "WMS",
            "WMS 圖層服務",
            f"/wms/{lid}?SERVICE=WMS&REQUEST=GetCapabilities",
            "application/vnd.ogc.wms_xml",
            f"WMS 1.3.0／1.1.1 服務，圖層名稱 {lid}。WMS 1.3.0 / 1.1.1, layer name {lid}.",
        ),
        _Service(
            "wmts",
            "WMTS",
            "WMTS 圖磚服務",
            wmts,
            "application/xml",
            f"WMTS 1.0.0（WebMercatorQuad、WorldCRS84Quad、TWD97），圖層名稱 {lid}。"
            f"WMTS 1.0.0 (WebMercatorQuad, WorldCRS84Quad, TWD97), layer name {lid}.",
        ),
    ]
    if raster:
        out.append(
            _Service(
                "ogc",
                "OGC API Coverages",
                "OGC API Coverages 網格服務",
                f"/ogc/collections/{lid}",
                "application/json",
                "OGC API - Coverages 集合。OGC API - Coverages collection.",
            )
        )
        out.append(
            _Service(
                "tilejson",
                "TileJSON",
                "TileJSON 網格圖磚",
                f"/tiles/{lid}.json",
                "application/json",
                "PNG 網格圖磚（XYZ）的 TileJSON 3.0。TileJSON 3.0 of PNG raster tiles (XYZ).",
            )
        )
        return out
    out += [
        _Service(
            "ogc",
            "OGC API Features",
            "OGC API Features 圖徵服務",
            f"/ogc/collections/{lid}",
            "application/json",
            "OGC API - Features 集合（可查詢、可輸出 EPSG:3826）。"
            "OGC API - Features collection (queryable, also in EPSG:3826).",
        ),
        _Service(
            "tilejson",
            "TileJSON",
            "TileJSON 向量圖磚",
            f"/tiles/{lid}.json",
            "application/json",
            "向量圖磚（MVT，XYZ）的 TileJSON 3.0。TileJSON 3.0 of vector tiles (MVT, XYZ).",
        ),
        _Service(
            "pmtiles",
            "PMTiles",
            "PMTiles 向量圖磚檔",
            f"/tiles/{lid}.pmtiles",
            "application/vnd.pmtiles",
            "整個向量圖磚封存檔（支援 HTTP Range）。The whole vector tile archive (HTTP Range).",
        ),
    ]
    return out


def generated_resources(layer: Layer, version: LayerVersion) -> tuple[Resource, ...]:
    """The resources the portal serves for a layer version, downloads first, then services.

    Args:
        layer: the catalog layer.
        version: its current version (``kind`` decides which resources exist).

    Returns:
        Resources with deterministic ids, relative URLs and positions from 0.
    """
    out = [
        _download(layer, version, ext, spec, i)
        for i, (ext, spec) in enumerate(_downloads(layer, version))
    ]
    for service in _services(layer, version):
        out.append(
            Resource(
                id=resource_id(layer.id, service.key),
                package_id=dataset_id(layer.id),
                name=service.name,
                url=service.url,
                format=service.label,
                kind="service",
                description=service.description,
                mimetype=service.mimetype,
                position=len(out),
                generated=True,
                extras=(("layer_name", layer.id),),
                created=version.created,
                last_modified=version.created,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- the dataset


def _generated_extras(layer: Layer, version: LayerVersion) -> list[tuple[str, str]]:
    extras = [
        ("feature_count", str(version.feature_count)),
        ("geometry_type", version.geometry_type),
        ("source_crs", version.source_crs),
        ("layer_version", version.version),
        ("layer_kind", version.kind),
        ("fields", _fields_json(version.fields)),
    ]
    if license_id(layer.license) != layer.license.strip():
        extras.append(("license_text", layer.license))
    return extras


def _fields_description(version: LayerVersion, existing: Dataset | None) -> str:
    """The generated column description, or the one an agency wrote on ``existing``."""
    generated = describe_fields(version.fields)
    if existing is None or not existing.fields_description:
        return generated
    previous = _fields_of_extra(dict(existing.extras).get("fields", ""))
    if previous is not None and existing.fields_description == describe_fields(previous):
        return generated  # it was ours: regenerate for the new columns
    return existing.fields_description


def _kept_resources(
    generated: tuple[Resource, ...], existing: Dataset | None
) -> tuple[Resource, ...]:
    """Generated resources (keeping their first ``created``), then ``existing``'s own ones."""
    if existing is None:
        return generated
    created = {r.id: r.created for r in existing.resources if r.generated and r.created}
    ours = {r.id for r in generated}
    out = [replace(r, created=created.get(r.id, r.created)) for r in generated]
    others = [r for r in existing.resources if not r.generated and r.id not in ours]
    for r in sorted(others, key=lambda r: r.position):
        out.append(replace(r, position=len(out)))
    return tuple(out)


def _modified(layer: Layer, version: LayerVersion) -> datetime:
    times = [t for t in (layer.modified, layer.created, version.created) if t is not None]
    return max(times)


def dataset_of_layer(
    layer: Layer, version: LayerVersion, existing: Dataset | None = None
) -> Dataset:
    """The portal dataset presenting a published catalog layer.

    Args:
        layer: the catalog layer; its id becomes the dataset name, its agency the owner.
        version: the layer's current version: resources, extent and column facts.
        existing: the dataset the portal holds for this layer, if any: its API-side groups,
            non-generated resources, extras, privacy, contacts and agency-written
            ``fields_description`` are kept; generated resources and extras are rewritten.

    Returns:
        The dataset (``source`` "layer", ``state`` "active").

    Raises:
        ValueError: when ``version`` is not a version of ``layer``.
    """
    if version.layer_id != layer.id:
        raise ValueError(
            f"version {version.version} is of layer {version.layer_id!r}, not {layer.id!r}"
        )
    generated = _generated_extras(layer, version)
    own_keys = set(GENERATED_EXTRAS)
    kept_extras = tuple(e for e in (existing.extras if existing else ()) if e[0] not in own_keys)
    base = existing or Dataset(id="", name="", title="", owner_org="")
    return Dataset(
        id=dataset_id(layer.id),
        name=layer.id,
        title=layer.title,
        owner_org=layer.agency.name,
        notes=layer.description,
        title_en=layer.title_en,
        private=base.private,
        state="active",
        license_id=license_id(layer.license),
        url=base.url,
        version=base.version,
        author=base.author,
        author_email=base.author_email,
        maintainer=base.maintainer,
        maintainer_email=base.maintainer_email,
        category=layer.category,
        update_frequency=layer.update_frequency,
        fields_description=_fields_description(version, existing),
        spatial=spatial_of_bbox(version.bbox),
        tags=tag_names(layer.keywords),
        groups=base.groups,
        extras=(*generated, *kept_extras),
        resources=_kept_resources(generated_resources(layer, version), existing),
        layer_id=layer.id,
        layer_version=version.version,
        source="layer",
        metadata_created=layer.created or version.created,
        metadata_modified=_modified(layer, version),
        creator_user_id=base.creator_user_id,
    )
