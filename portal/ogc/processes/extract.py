"""Process ``extract``: layers clipped to a polygon or a district, as a download.

The area is a GeoJSON (Multi)Polygon in any supported CRS, or a district or village of the
boundary layers named by its name or code (``西屯區``, ``660000060``, ``永安里``). Each layer's
features meeting the area are read through the store's R-tree and clipped to it in EPSG:4326
(points kept when covered; lines and polygons cut at the edge, keeping only their own
dimension), written to a temporary store GeoPackage and exported with ``catalog.export`` —
the same exporter as ``/download`` — so every format has the same rules as a whole-layer
download. One layer answers with that file (its format's media type); several layers with a
zip of one file per layer (``<layer id>.<ext>``).

An extract is bounded by :data:`MAX_FEATURES` features in all (a larger area is refused with
a pointer to the whole-layer downloads). It runs synchronously by default; a client that sends
``Prefer: respond-async`` gets a job instead (201, ``Location: /ogc/jobs/{id}``), and fetches
the file from ``/ogc/jobs/{id}/results`` when the job is done (``portal.ogc.jobs``).
"""

from __future__ import annotations

import copy
import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.errors
import shapely
from pygeoapi.process.base import BaseProcessor

from catalog.export import FORMATS, ExportError, export_layer
from portal.ogc.processes.common import (
    CRS_SCHEMA,
    METRIC,
    STORE,
    ProcessInputError,
    bilingual,
    check_inputs,
    geometry_input,
    parse_crs,
    transform_geometry,
)
from portal.ogc.processes.district import boundary_index

#: Features an extract may hold in all; layers one extract may name.
MAX_FEATURES = 100_000
MAX_LAYERS = 10
#: Formats offered (names as in /download).
EXTRACT_FORMATS = ("geojson", "gpkg", "shp.zip", "csv", "kml", "parquet")

_FAMILY = {"Point": 0, "LineString": 1, "Polygon": 2}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "extract",
    "title": bilingual("範圍擷取下載", "Extract (clip and download)"),
    "description": bilingual(
        "將一個或多個圖層裁切至指定多邊形或行政區（區名、里名或代碼），"
        "以 GeoJSON、GeoPackage、Shapefile (zip)、CSV、KML 或 GeoParquet 下載；"
        "多個圖層時回傳 zip。單次最多 100,000 筆圖徵。",
        "Clip one or more layers to a polygon or a district (district or village name or "
        "code) and download them as GeoJSON, GeoPackage, shapefile (zip), CSV, KML or "
        "GeoParquet; several layers come as a zip. At most 100,000 features per extract.",
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["擷取", "裁切", "下載", "extract", "clip", "download"],
    "links": [],
    "inputs": {
        "layers": {
            "title": bilingual("圖層", "Layers"),
            "description": bilingual("圖層代碼或其清單（最多 10 個）", "Layer id(s), at most 10"),
            "schema": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": MAX_LAYERS,
                    },
                ]
            },
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "geometry": {
            "title": bilingual("範圍多邊形", "Polygon"),
            "description": bilingual(
                "GeoJSON Polygon / MultiPolygon；與 district 擇一", "Give geometry or district"
            ),
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "district": {
            "title": bilingual("行政區", "District"),
            "description": bilingual(
                "行政區或村里之名稱或代碼，例如 西屯區", "A district or village name or code"
            ),
            "schema": {"type": "string"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "crs": {
            "title": bilingual("坐標系統", "CRS"),
            "description": bilingual("geometry 的坐標系統，預設 EPSG:4326", "CRS of geometry"),
            "schema": CRS_SCHEMA,
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "format": {
            "title": bilingual("格式", "Format"),
            "description": bilingual("預設 geojson", "Default geojson"),
            "schema": {"type": "string", "enum": list(EXTRACT_FORMATS), "default": "geojson"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "file": {
            "title": bilingual("下載檔", "Download"),
            "description": bilingual(
                "所選格式之檔案；多個圖層時為 zip", "A file in the chosen format; a zip for several"
            ),
            "schema": {"type": "string", "contentEncoding": "binary"},
        }
    },
    "example": {
        "inputs": {"layers": ["aed-locations", "buildings"], "district": "西區", "format": "gpkg"}
    },
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


@dataclass(frozen=True)
class Area:
    """The extract area: EPSG:4326 polygon (clipping) and its description."""

    polygon: shapely.Geometry
    label: str


def _layer_ids(value: object, layers: dict[str, str]) -> list[str]:
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list) or not ids or not all(isinstance(v, str) for v in ids):
        raise ProcessInputError("input 'layers' is required: a layer id or a list of layer ids")
    if len(ids) > MAX_LAYERS:
        raise ProcessInputError(f"layers names {len(ids)} layers; at most {MAX_LAYERS}")
    unknown = [v for v in ids if v not in layers]
    if unknown:
        raise ProcessInputError(
            f"not published vector layers: {', '.join(unknown)}; see /ogc/collections"
        )
    return list(dict.fromkeys(ids))


def _district_area(text: str, boundaries: list[dict]) -> Area:
    name = text.strip().replace("台", "臺")
    for boundary in boundaries:
        index = boundary_index(boundary)
        hits = index.find(name)
        if len(hits) > 1:
            codes = ", ".join(str(index.codes[i]) for i in hits)
            raise ProcessInputError(f"district {text!r} is ambiguous; give its code: {codes}")
        if hits:
            polygon = transform_geometry(index.geometries[hits[0]], METRIC, STORE)
            return Area(shapely.make_valid(polygon), f"{index.names[hits[0]]}")
    raise ProcessInputError(
        f"district {text!r} is not a district or village name or code of the boundary layers"
    )


def _area(data: dict, boundaries: list[dict]) -> Area:
    has_geometry, has_district = "geometry" in data, "district" in data
    if has_geometry == has_district:
        raise ProcessInputError("give exactly one of 'geometry' and 'district'")
    if has_district:
        if not isinstance(data["district"], str) or not data["district"].strip():
            raise ProcessInputError("district must be a district or village name or code")
        return _district_area(data["district"], boundaries)
    geom = geometry_input(data["geometry"], "geometry", parse_crs(data.get("crs")))
    geom = shapely.get_parts(geom)
    polygons = [g for g in geom if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        raise ProcessInputError("geometry must be a Polygon or MultiPolygon")
    metric = shapely.union_all(polygons)
    polygon = transform_geometry(shapely.segmentize(metric, 100.0), METRIC, STORE)
    return Area(shapely.make_valid(polygon), "polygon")


def _clip(geoms: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    """Geometries cut to ``area`` (None where nothing of their own dimension is left)."""
    out = np.full(len(geoms), None, dtype=object)
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        dim = shapely.get_dimensions(geom)
        if dim == 0:
            out[i] = geom if area.covers(geom) else None
            continue
        cut = shapely.intersection(geom, area)
        parts = [
            p for p in shapely.get_parts(cut) if not p.is_empty and shapely.get_dimensions(p) == dim
        ]
        if parts:
            out[i] = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    return out


def _declared(geoms: np.ndarray, source: str) -> tuple[np.ndarray, str]:
    """Geometries and their declared type: Multi… when any clipped geometry is multi."""
    types = {g.geom_type for g in geoms}
    single = source.removeprefix("Multi")
    if single not in _FAMILY or not types:
        return geoms, source
    if not any(t.startswith("Multi") for t in types):
        return geoms, single
    multi = {
        "Point": shapely.MultiPoint,
        "LineString": shapely.MultiLineString,
        "Polygon": shapely.MultiPolygon,
    }[single]
    promoted = np.array(
        [g if g.geom_type.startswith("Multi") else multi([g]) for g in geoms], dtype=object
    )
    return promoted, f"Multi{single}"


def clip_store(src: Path, area: Area, out: Path, budget: int, layer: str) -> int:
    """Write the features of store ``src`` clipped to ``area`` as a store GeoPackage ``out``.

    Returns:
        The number of features written.

    Raises:
        ProcessInputError: more than ``budget`` features, or an unreadable store.
    """
    try:
        meta, table = pyogrio.raw.read_arrow(src, layer="features", bbox=area.polygon.bounds)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
        raise ProcessInputError(f"layer {layer!r}: the stored data cannot be read") from err
    column = meta.get("geometry_name") or "wkb"
    clipped = _clip(shapely.from_wkb(table[column].to_numpy(zero_copy_only=False)), area.polygon)
    keep = np.flatnonzero(np.array([g is not None for g in clipped], dtype=bool))
    if len(keep) > budget:
        raise ProcessInputError(
            f"the area holds more than {MAX_FEATURES} features in all (layer {layer!r}: "
            f"{len(keep)}); choose a smaller area or download whole layers at "
            f"/download/{layer}.<format>"
        )
    geoms, declared = _declared(clipped[keep], meta["geometry_type"] or "Unknown")
    table = table.take(pa.array(keep, type=pa.int64()))
    wkb = pa.array(shapely.to_wkb(geoms, flavor="iso") if len(geoms) else [], type=pa.binary())
    table = table.set_column(table.schema.get_field_index(column), column, wkb)
    field_meta = {b"ARROW:extension:name": b"geoarrow.wkb"}
    schema = table.schema.set(
        table.schema.get_field_index(column), pa.field(column, pa.binary(), metadata=field_meta)
    )
    pyogrio.write_arrow(
        table.cast(schema),
        out,
        layer="features",
        driver="GPKG",
        geometry_name=column,
        geometry_type=declared,
        crs=STORE,
        encoding="UTF-8",
    )
    return len(keep)


def _export(layer: str, store: Path, fmt: str, folder: Path) -> Path:
    out = folder / f"{layer}{FORMATS[fmt].suffix}"
    try:
        return export_layer(store, "vector", fmt, out, layer_id=layer)
    except ExportError as err:
        raise ProcessInputError(f"layer {layer!r} cannot be written as {fmt}: {err}") from err


def _zip(files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.name)
    return buffer.getvalue()


class ExtractProcessor(BaseProcessor):
    """Extract (pygeoapi processor); ``layers`` and ``boundaries`` come from the registry."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.layers: dict[str, str] = processor_def.get("layers", {})
        self.boundaries: list[dict] = processor_def.get("boundaries", [])

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, bytes]:
        """Clip and export (see the module docstring).

        Raises:
            ProcessInputError: unknown layers or format, a bad area, or too many features.
        """
        data = check_inputs(data, _INPUTS)
        ids = _layer_ids(data.get("layers"), self.layers)
        fmt = data.get("format", "geojson")
        if fmt not in EXTRACT_FORMATS:
            raise ProcessInputError(
                f"format {fmt!r} is not offered; use one of {', '.join(EXTRACT_FORMATS)}"
            )
        area = _area(data, self.boundaries)
        with tempfile.TemporaryDirectory(prefix="geoportal-extract-") as tmp:
            folder = Path(tmp)
            budget = MAX_FEATURES
            files = []
            for layer in ids:
                store = folder / f"{layer}.store.gpkg"
                budget -= clip_store(Path(self.layers[layer]), area, store, budget, layer)
                files.append(_export(layer, store, fmt, folder / "out"))
            if len(files) == 1:
                return FORMATS[fmt].media_type, files[0].read_bytes()
            return "application/zip", _zip(files)

    def __repr__(self) -> str:
        return f"<ExtractProcessor> {self.name}"
