"""Export a stored layer version to every open download format.

One exporter serves ``geoportal export`` and ``/download/{id}.{fmt}``. The input is a layer
version's store file: a GeoPackage with one table ``features`` (EPSG:4326 lon/lat, 2-D, one
geometry type; no geometry for tables). Every format is streamed in Arrow record batches from
GDAL (``pyogrio.raw.open_arrow``) to a GDAL driver (``pyogrio.write_arrow``) or to pyarrow's
Parquet writer, so a 1M-point layer never becomes 1M Python objects; where a format needs a
change (CSV coordinates, KML names, shapefile field names) it is made per batch with Arrow
compute or shapely's vectorised functions.

Per-format choices:

- **geojson**: RFC 7946 (GDAL ``RFC7946=YES``): lon/lat, no ``crs`` member, 8 decimals (see
  ``GEOJSON_DECIMALS``), polygon rings wound as the RFC says; UTF-8 with Chinese as
  characters; dates and datetimes as the ISO 8601 text the store holds. Tables become
  features with ``"geometry": null``.
- **csv**: UTF-8 with BOM (Excel in Taiwan then reads Chinese right), CRLF line ends, quoting
  as GDAL's CSV driver does (``IF_AMBIGUOUS``). Attribute columns first, in store order, then
  the geometry: a Point layer gets two numeric columns ``lon`` and ``lat`` (EPSG:4326, 7
  decimals); every other geometry type gets one ``wkt`` column (7 decimals). A store column
  already called so pushes ours to ``lon_1`` / ``wkt_1``. Tables are written as they are.
  Dates are ``YYYY-MM-DD``; datetimes the stored ISO 8601 text.
- **kml**: GDAL's streaming KML driver (LIBKML builds the whole document in memory: 5 GB for
  1M points). One Placemark per feature; every attribute in ``ExtendedData``/``SchemaData``
  under its original name; the Placemark ``<name>`` comes from the first of ``名稱``,
  ``name``, ``Name``, ``NAME``, ``標題``, ``title`` or else a string column ending in ``名稱``.
  Not for tables.
- **gpkg**: a GeoPackage whose one table is named after the layer id, with an R-tree spatial
  index; types kept (integers, reals, dates, datetimes as UTC per the GeoPackage spec).
- **shp.zip**: ``<layer_id>.shp/.shx/.dbf/.prj/.cpg`` and ``fields.csv`` in one zip. The DBF is
  UTF-8 and the ``.cpg`` says ``UTF-8``; the ``.prj`` is GDAL's ESRI WKT of EPSG:4326. Field
  names are cut to the DBF's 10 bytes on a character boundary (a ``_raw`` suffix is kept),
  made unique ignoring case with ``_1``, ``_2`` ..., and ``fields.csv`` (UTF-8 with BOM) maps
  every original name to its shapefile name. Points and MultiPoints (promoted), lines and
  polygons (single or multi) each fit one shapefile type; a layer that mixes families gets one
  shapefile per family (``<layer_id>_point.shp``, ``_line``, ``_polygon``). Datetimes are
  written as ISO 8601 text (the DBF date type has no time). Not for tables.
- **parquet**: GeoParquet 1.1: the geometry as ISO WKB in column ``geometry``, ``geo`` metadata
  with the geometry types present, bbox and the EPSG:4326 CRS as PROJJSON. Tables are plain
  Parquet.

Every export is written into a temporary folder next to ``out`` and moved into place with
``os.replace``: an export that fails leaves no file (and an older ``out`` untouched).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS

from catalog.errors import CatalogError

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "StoreInfo",
    "export_layer",
    "read_store",
    "shapefile_field_names",
]

STORE_TABLE = "features"
"""The one table of a store GeoPackage."""

STORE_CRS = "EPSG:4326"
"""The CRS of stored geometry (lon/lat axis order)."""

DBF_NAME_BYTES = 10
"""Longest field name a DBF holds, in bytes."""

COORDINATE_DECIMALS = 7
"""Decimals of lon/lat in CSV (about 1 cm)."""

GEOJSON_DECIMALS = 8
"""Decimals GDAL is asked for in GeoJSON: at 7 its writer takes a last digit after six zeros
for round-off noise and drops it (121.0000009 → 121.0, 9 cm); at 8 that costs at most 1 cm."""

_LAYER_ID = re.compile(r"[a-z0-9-]+")
_KINDS = ("vector", "table", "raster")
_BATCH_ROWS = 65_536
_WKB_TYPES = {
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_SHP_FAMILY = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "MultiLineString": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}
_KML_NAME_FIELDS = ("名稱", "name", "Name", "NAME", "標題", "title")
_FIELD_TYPES = {
    "OFTString": "string",
    "OFTInteger": "integer",
    "OFTInteger64": "integer",
    "OFTReal": "real",
    "OFTDate": "date",
    "OFTDateTime": "datetime (ISO 8601 text)",
    "OFTTime": "time",
    "OFTBinary": "binary",
}


class ExportError(CatalogError):
    """A layer version that cannot be exported as asked; no output file is left behind.

    Attributes:
        layer_id: the layer concerned.
        fmt: the format asked for.
        reason: a short stable code: "unknown-format", "raster", "unknown-kind",
            "bad-layer-id", "no-geometry", "geometry-type", "too-wide", "bad-store" or
            "failed".
    """

    def __init__(self, layer_id: str, fmt: str, reason: str, message: str) -> None:
        self.layer_id, self.fmt, self.reason = layer_id, fmt, reason
        super().__init__(message)


@dataclass(frozen=True)
class StoreInfo:
    """What an export needs to know about a store file, read once from its ``features`` table.

    Attributes:
        path: the store GeoPackage.
        geometry_name: the geometry column, or None for a table (or a table-kind layer).
        geometry_type: the declared geometry type ("Point", ...), or None.
        fields: attribute column names in store order.
        field_types: GDAL field types ("OFTString", ...), parallel to ``fields``.
        bounds: (minx, miny, maxx, maxy) in EPSG:4326, or None (a table, an empty layer).
        feature_count: features or rows stored.
    """

    path: Path
    geometry_name: str | None
    geometry_type: str | None
    fields: tuple[str, ...]
    field_types: tuple[str, ...]
    bounds: tuple[float, float, float, float] | None
    feature_count: int


Writer = Callable[[StoreInfo, Path, str], None]
"""Writes a store into a file (path) for a layer id; raises on failure."""


@dataclass(frozen=True)
class ExportFormat:
    """One download format.

    Attributes:
        name: the format's name in URLs and on the command line ("geojson", "shp.zip", ...).
        media_type: the HTTP Content-Type of a download.
        suffix: the file name suffix, with its dot (".geojson", ".shp.zip", ...).
        needs_geometry: True when the format cannot hold a table without geometry.
        writer: the function that writes it (store, temporary path, layer id).
    """

    name: str
    media_type: str
    suffix: str
    needs_geometry: bool
    writer: Writer = field(repr=False, compare=False)


# --------------------------------------------------------------------------- public API


def export_layer(src: Path, kind: str, fmt: str, out: Path, *, layer_id: str) -> Path:
    """Write a stored layer version as one download file, atomically.

    Args:
        src: the version's store GeoPackage (table ``features``).
        kind: the version's kind: "vector" or "table" ("raster" is refused).
        fmt: a key of :data:`FORMATS`.
        out: the file to write; its folder is created when missing. It is replaced only
            when the export succeeded.
        layer_id: the layer's id (``[a-z0-9-]+``): the layer name inside GeoPackage, KML and
            GeoJSON and the shapefile names inside the zip.

    Returns:
        ``out``.

    Raises:
        ExportError: unknown format or kind, a raster, a format that cannot hold a table, a
            missing or unreadable store, or a translation that failed.
    """
    spec = _check_request(kind, fmt, layer_id)
    store = read_store(src, kind=kind, layer_id=layer_id, fmt=fmt)
    if spec.needs_geometry and store.geometry_name is None:
        can = ", ".join(name for name, f in FORMATS.items() if not f.needs_geometry)
        raise ExportError(
            layer_id,
            fmt,
            "no-geometry",
            f"layer {layer_id!r} is a table without geometry; {fmt} cannot hold it — "
            f"download it as one of: {can}",
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp = work / f"{layer_id}{spec.suffix}"
        with _translated(layer_id, fmt):
            spec.writer(store, tmp, layer_id)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def read_store(src: Path, *, kind: str, layer_id: str, fmt: str = "") -> StoreInfo:
    """Describe a store file's ``features`` table.

    Args:
        src: the store GeoPackage.
        kind: "vector" (a geometry column is required) or "table" (geometry ignored).
        layer_id: the layer, for messages.
        fmt: the format being exported, for messages.

    Returns:
        The table's description.

    Raises:
        ExportError: the file is missing, is not a store, or its geometry is not EPSG:4326.
    """
    src = Path(src)
    if not src.is_file():
        raise ExportError(layer_id, fmt, "bad-store", f"layer {layer_id!r}: no store file {src}")
    try:
        info = pyogrio.read_info(src, layer=STORE_TABLE, force_total_bounds=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ExportError(
            layer_id,
            fmt,
            "bad-store",
            f"layer {layer_id!r}: {src} is not a store GeoPackage with a table "
            f"{STORE_TABLE!r}: {exc}",
        ) from exc
    # pyogrio's Arrow stream names an unnamed geometry column "wkb"
    geometry = (info["geometry_name"] or "wkb") if info["geometry_type"] else None
    if kind == "vector" and geometry is None:
        raise ExportError(
            layer_id,
            fmt,
            "bad-store",
            f"layer {layer_id!r} is a vector layer but {src} has "
            "no geometry column — re-ingest the layer",
        )
    if kind != "vector":
        geometry = None
    elif info["crs"] not in (STORE_CRS, "OGC:CRS84"):
        raise ExportError(
            layer_id,
            fmt,
            "bad-store",
            f"layer {layer_id!r}: {src} holds geometry in "
            f"{info['crs']}, not {STORE_CRS} — re-ingest the layer",
        )
    bounds = info["total_bounds"] if geometry else None
    if bounds is not None and not np.all(np.isfinite(bounds)):
        bounds = None
    return StoreInfo(
        path=src,
        geometry_name=geometry,
        geometry_type=info["geometry_type"] if geometry else None,
        fields=tuple(info["fields"]),
        field_types=tuple(info["ogr_types"]),
        bounds=tuple(float(v) for v in bounds) if bounds is not None else None,
        feature_count=int(info["features"]),
    )


def shapefile_field_names(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Map field names to DBF field names: at most 10 UTF-8 bytes and unique ignoring case.

    A name that fits is kept (those are placed first, so a cut name never takes a name that
    exists as it is). A longer name is cut on a character boundary, keeping a ``_raw`` suffix
    (``人口數_raw`` → ``人口_raw``); a name already taken gets ``_1``, ``_2`` ... within the 10
    bytes.

    Args:
        names: field names in order.

    Returns:
        original name → shapefile name, in the order given.
    """
    taken: set[str] = set()
    chosen: dict[str, str] = {}
    fitting = [n for n in names if len(n.encode("utf-8")) <= DBF_NAME_BYTES]
    for name in fitting + [n for n in names if n not in fitting]:
        base = _dbf_cut(name)
        candidate, number = base, 0
        while candidate.casefold() in taken:
            number += 1
            suffix = f"_{number}"
            candidate = _utf8_cut(base, DBF_NAME_BYTES - len(suffix)) + suffix
        taken.add(candidate.casefold())
        chosen[name] = candidate
    return {name: chosen[name] for name in names}


# --------------------------------------------------------------------------- plumbing


def _check_request(kind: str, fmt: str, layer_id: str) -> ExportFormat:
    """Validate the format, kind and layer id before touching any file."""
    spec = FORMATS.get(fmt)
    if spec is None:
        raise ExportError(
            layer_id,
            fmt,
            "unknown-format",
            f"unknown export format {fmt!r} for layer {layer_id!r}; known formats: "
            + ", ".join(FORMATS),
        )
    if kind == "raster":
        raise ExportError(
            layer_id,
            fmt,
            "raster",
            f"layer {layer_id!r} is a raster layer; raster layers are downloaded as GeoTIFF, "
            f"not {fmt}",
        )
    if kind not in _KINDS:
        raise ExportError(
            layer_id,
            fmt,
            "unknown-kind",
            f"layer {layer_id!r} has unknown kind {kind!r}; expected one of: " + ", ".join(_KINDS),
        )
    if not _LAYER_ID.fullmatch(layer_id):
        raise ExportError(
            layer_id,
            fmt,
            "bad-layer-id",
            f"layer id {layer_id!r} is not a layer id (lower-case letters, digits and '-')",
        )
    return spec


@contextmanager
def _translated(layer_id: str, fmt: str) -> Iterator[None]:
    """Turn GDAL and Arrow errors into an ExportError that names the layer and format."""
    try:
        yield
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        pa.ArrowException,
    ) as exc:
        raise ExportError(
            layer_id, fmt, "failed", f"exporting layer {layer_id!r} to {fmt} failed: {exc}"
        ) from exc


@contextmanager
def _batches(
    store: StoreInfo,
    *,
    datetime_as_string: bool,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Stream the store's table as Arrow batches (geometry as ISO WKB)."""
    with pyogrio.raw.open_arrow(
        store.path,
        layer=STORE_TABLE,
        columns=columns,
        read_geometry=store.geometry_name is not None,
        batch_size=_BATCH_ROWS,
        use_pyarrow=True,
        datetime_as_string=datetime_as_string,
    ) as (_meta, reader):
        yield reader


def _mapped(
    reader: pa.RecordBatchReader, fn: Callable[[pa.RecordBatch], pa.RecordBatch]
) -> pa.RecordBatchReader:
    """A reader applying ``fn`` to every batch; the schema is ``fn`` of an empty batch."""
    schema = fn(_empty_batch(reader.schema)).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield fn(batch)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _write_ogr(
    reader: pa.RecordBatchReader,
    path: Path,
    driver: str,
    layer: str,
    store: StoreInfo,
    *,
    geometry_type: str | None = None,
    **options: dict[str, str],
) -> None:
    """Write a stream through a GDAL driver (geometry, if any, in EPSG:4326)."""
    geometry = store.geometry_name
    pyogrio.write_arrow(
        reader,
        path,
        driver=driver,
        layer=layer,
        geometry_name=geometry,
        geometry_type=(geometry_type or store.geometry_type) if geometry else None,
        crs=STORE_CRS if geometry else None,
        encoding="UTF-8",
        **options,
    )


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch with no rows."""
    return pa.RecordBatch.from_pylist([], schema=schema)


def _utf8_cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _dbf_cut(name: str) -> str:
    """A field name cut to the DBF's 10 bytes, keeping a ``_raw`` suffix when it can."""
    if len(name.encode("utf-8")) <= DBF_NAME_BYTES:
        return name
    if name.endswith("_raw"):
        base = _utf8_cut(name[: -len("_raw")], DBF_NAME_BYTES - len("_raw"))
        if base:
            return base + "_raw"
    return _utf8_cut(name, DBF_NAME_BYTES)


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2`` ... whichever is not taken."""
    candidate, number = name, 0
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _unique_folded(name: str, folded: set[str]) -> str:
    """``name``, or ``name_1`` ..., whose case-folded form is not in ``folded``."""
    candidate, number = name, 0
    while candidate.casefold() in folded:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _as_text(batch: pa.RecordBatch, *, dates: bool = True) -> pa.RecordBatch:
    """Dates and datetimes as ISO 8601 text fields, for the formats that write text.

    Datetimes arrive as the stored text (``datetime_as_string``) but tagged as DateTime for
    GDAL, whose CSV and KML drivers would rewrite them as ``YYYY/MM/DD HH:MM:SS``; the tag
    is dropped. Dates become ``YYYY-MM-DD`` (``dates=False`` keeps them typed, for DBF).
    """
    columns, fields = [], []
    for col, f in zip(batch.columns, batch.schema, strict=True):
        if dates and pa.types.is_date(f.type):
            col, f = pc.cast(col, pa.string()), pa.field(f.name, pa.string())
        elif pa.types.is_string(f.type) and f.metadata:
            f = f.remove_metadata()
        columns.append(col)
        fields.append(f)
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


# --------------------------------------------------------------------------- geometry types


def _wkb_type(header: bytes) -> str:
    """The geometry type named by the first 5 bytes of a WKB."""
    order = "<" if header[0] == 1 else ">"
    (code,) = struct.unpack(order + "I", header[1:5])
    return _WKB_TYPES.get((code & 0x0FFFFFFF) % 1000, f"WKB type {code}")


def _wkb_headers(store: StoreInfo) -> dict[bytes, str]:
    """Every distinct WKB header (byte order + type) in the store → its geometry type.

    One pass over the geometry column only, in Arrow: nulls (and nothing else) are skipped.
    """
    headers: set[bytes] = set()
    with _batches(store, datetime_as_string=False, columns=[]) as reader:
        for batch in reader:
            col = batch.column(store.geometry_name)
            headers.update(h for h in pc.unique(pc.binary_slice(col, 0, 5)).to_pylist() if h)
    return {h: _wkb_type(h) for h in headers}


def _geometry_types(store: StoreInfo) -> set[str]:
    """The geometry types present (the declared one when every geometry is null)."""
    types = set(_wkb_headers(store).values())
    if not types and store.geometry_type in _SHP_FAMILY:
        types = {store.geometry_type}
    return types


# --------------------------------------------------------------------------- GeoJSON, GPKG


def _write_geojson(store: StoreInfo, path: Path, layer_id: str) -> None:
    """RFC 7946 GeoJSON via GDAL; datetimes as the stored ISO text."""
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": str(GEOJSON_DECIMALS)}
    with _batches(store, datetime_as_string=True) as reader:
        _write_ogr(
            _mapped(reader, _as_text),
            path,
            "GeoJSON",
            layer_id,
            store,
            layer_options=options if store.geometry_name else {},
        )


def _write_gpkg(store: StoreInfo, path: Path, layer_id: str) -> None:
    """A GeoPackage whose table is named after the layer, with an R-tree index."""
    options = {"SPATIAL_INDEX": "YES"} if store.geometry_name else {}
    with _batches(store, datetime_as_string=False) as reader:
        _write_ogr(reader, path, "GPKG", layer_id, store, layer_options=options)


# --------------------------------------------------------------------------- CSV


def _csv_transform(store: StoreInfo, points: bool) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Per-batch: dates as text, geometry replaced by lon/lat (points) or a wkt column."""
    geometry = store.geometry_name
    taken = set(store.fields)
    lon, lat, wkt = _unique("lon", taken), _unique("lat", taken), _unique("wkt", taken)

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = _as_text(batch)
        if geometry is None:
            return batch
        geoms = shapely.from_wkb(batch.column(geometry).to_numpy(zero_copy_only=False))
        batch = batch.drop_columns([geometry])
        if points:
            for name, values in ((lon, shapely.get_x(geoms)), (lat, shapely.get_y(geoms))):
                values = np.round(values, COORDINATE_DECIMALS)
                batch = batch.append_column(name, pa.array(values, pa.float64(), from_pandas=True))
            return batch
        text = shapely.to_wkt(geoms, rounding_precision=COORDINATE_DECIMALS, trim=True)
        return batch.append_column(wkt, pa.array(text, pa.string()))

    return transform


def _write_csv(store: StoreInfo, path: Path, layer_id: str) -> None:
    """CSV (UTF-8 with BOM, CRLF) via GDAL's CSV driver, geometry as lon/lat or wkt."""
    points = store.geometry_name is not None and _geometry_types(store) == {"Point"}
    transform = _csv_transform(store, points)
    attributes_only = replace(store, geometry_name=None)
    with _batches(store, datetime_as_string=True) as reader:
        _write_ogr(
            _mapped(reader, transform),
            path,
            "CSV",
            layer_id,
            attributes_only,
            layer_options={"WRITE_BOM": "YES", "LINEFORMAT": "CRLF"},
        )


# --------------------------------------------------------------------------- KML


def _kml_name_field(store: StoreInfo) -> str | None:
    """The attribute that names Placemarks, or None."""
    strings = [n for n, t in zip(store.fields, store.field_types, strict=True) if t == "OFTString"]
    for name in _KML_NAME_FIELDS:
        if name in strings:
            return name
    return next((n for n in strings if n.endswith("名稱")), None)


def _write_kml(store: StoreInfo, path: Path, layer_id: str) -> None:
    """KML via GDAL's streaming KML driver: attributes in ExtendedData, a name per Placemark.

    GDAL's KML driver moves its ``NameField`` into ``<name>`` and its ``DescriptionField`` into
    ``<description>``, matching column names without regard to case. A copy of the naming
    column is added under a name no store column has in any case, and the description field is
    named after no column at all, so every store column (``description`` included) stays in
    ExtendedData under its own name — except a column called ``name`` in another case than
    ``Name``: every GDAL KML layer has a ``Name`` field, which takes it (``SimpleData
    name="Name"``).
    """
    name_field = _kml_name_field(store)
    taken = {f.casefold() for f in store.fields}
    name_column = _unique_folded("Name", taken)
    description_column = _unique_folded("Description", taken | {name_column.casefold()})

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = _as_text(batch)
        if name_field is not None:
            batch = batch.append_column(name_column, batch.column(name_field))
        return batch

    with _batches(store, datetime_as_string=True) as reader:
        _write_ogr(
            _mapped(reader, transform),
            path,
            "KML",
            layer_id.replace("-", "_"),  # what GDAL would launder it to, without its warning
            store,
            dataset_options={"NameField": name_column, "DescriptionField": description_column},
        )


# --------------------------------------------------------------------------- shapefile


@dataclass(frozen=True)
class _ShpPart:
    """One shapefile of a shp.zip: its stem, type, and which WKB headers (None: all) go in."""

    stem: str
    geometry_type: str
    headers: frozenset[bytes] | None
    keep_null: bool
    promote_points: bool


def _shp_parts(store: StoreInfo, layer_id: str) -> list[_ShpPart]:
    """The shapefiles a layer needs: one per geometry family present."""
    headers = _wkb_headers(store)
    types = set(headers.values()) or {store.geometry_type or "Point"}
    unfit = sorted(t for t in types if t not in _SHP_FAMILY)
    if unfit:
        raise ExportError(
            layer_id,
            "shp.zip",
            "geometry-type",
            f"layer {layer_id!r} has {', '.join(unfit)} geometries, which a shapefile cannot "
            "hold — download it as gpkg, geojson, kml or parquet",
        )
    families = sorted({_SHP_FAMILY[t] for t in types}, key=["point", "line", "polygon"].index)
    parts = []
    for i, family in enumerate(families):
        in_family = {t for t in types if _SHP_FAMILY[t] == family}
        geometry_type = {"line": "MultiLineString", "polygon": "MultiPolygon"}.get(
            family, "MultiPoint" if "MultiPoint" in in_family else "Point"
        )
        parts.append(
            _ShpPart(
                stem=layer_id if len(families) == 1 else f"{layer_id}_{family}",
                geometry_type=geometry_type,
                headers=None
                if len(families) == 1
                else frozenset(h for h, t in headers.items() if _SHP_FAMILY[t] == family),
                keep_null=i == 0,
                promote_points=geometry_type == "MultiPoint" and "Point" in in_family,
            )
        )
    return parts


def _shp_transform(
    store: StoreInfo, part: _ShpPart, names: dict[str, str]
) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Per-batch: keep this part's rows, promote Points, rename fields to their DBF names."""
    geometry = store.geometry_name
    assert geometry is not None  # shp.zip needs geometry; checked by export_layer

    def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
        col = batch.column(geometry)
        if part.headers is not None:
            wanted = pa.array(sorted(part.headers), pa.binary())
            keep = pc.fill_null(pc.is_in(pc.binary_slice(col, 0, 5), value_set=wanted), False)
            if part.keep_null:
                keep = pc.or_(keep, pc.is_null(col))
            batch = batch.filter(keep)
            col = batch.column(geometry)
        if part.promote_points and batch.num_rows:
            geoms = shapely.from_wkb(col.to_numpy(zero_copy_only=False))
            single = shapely.get_type_id(geoms) == shapely.GeometryType.POINT
            geoms[single] = shapely.multipoints(geoms[single], indices=np.arange(single.sum()))
            index = batch.schema.get_field_index(geometry)
            wkb = pa.array(shapely.to_wkb(geoms), pa.binary())
            batch = batch.set_column(index, batch.schema.field(index), wkb)
        batch = _as_text(batch, dates=False)
        return batch.rename_columns([names.get(n, n) for n in batch.schema.names])

    return transform


def _write_fields_csv(store: StoreInfo, names: dict[str, str], path: Path) -> None:
    """fields.csv: original name → shapefile name and type (UTF-8 with BOM, CRLF)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(["original", "shapefile", "type"])
        for name, ogr_type in zip(store.fields, store.field_types, strict=True):
            writer.writerow([name, names[name], _FIELD_TYPES.get(ogr_type, ogr_type)])


def _zip_folder(folder: Path, path: Path) -> None:
    """Zip every file of ``folder`` (flat, sorted) into ``path``, streaming each file.

    Deflate level 1: 2.5 times faster than the default 6 on shapefiles, 5% larger. Names are
    stored as UTF-8 (``zipfile`` sets the UTF-8 flag on any non-ASCII name).
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member in sorted(folder.iterdir()):
            archive.write(member, member.name)


def _check_dbf(shp: Path, fields: int, layer_id: str) -> None:
    """Refuse a DBF that GDAL wrote but nobody can read.

    A DBF record holds at most 65,535 bytes; GDAL writes a wider one (string fields grow to
    254 bytes) with a wrapped record length, and every reader then sees no fields at all.
    """
    found = len(pyogrio.read_info(shp)["fields"])
    if found != fields:
        raise ExportError(
            layer_id,
            "shp.zip",
            "too-wide",
            f"layer {layer_id!r} does not fit a shapefile: its {fields} fields make a DBF "
            "record longer than 65,535 bytes — download it as gpkg, geojson, csv or parquet",
        )


def _write_shp_zip(store: StoreInfo, path: Path, layer_id: str) -> None:
    """A zip of UTF-8 shapefile(s) with .cpg, .prj and fields.csv."""
    folder = path.parent / "shp"
    folder.mkdir()
    names = shapefile_field_names(store.fields)
    for part in _shp_parts(store, layer_id):
        with _batches(store, datetime_as_string=True) as reader:
            _write_ogr(
                _mapped(reader, _shp_transform(store, part, names)),
                folder / f"{part.stem}.shp",
                "ESRI Shapefile",
                part.stem,
                store,
                geometry_type=part.geometry_type,
            )
        _check_dbf(folder / f"{part.stem}.shp", len(names), layer_id)
    _write_fields_csv(store, names, folder / "fields.csv")
    _zip_folder(folder, path)


# --------------------------------------------------------------------------- Parquet


def _geo_metadata(store: StoreInfo, column: str) -> dict[str, str]:
    """The GeoParquet 1.1 ``geo`` file metadata for a store's geometry column."""
    meta: dict = {
        "encoding": "WKB",
        "geometry_types": sorted(_geometry_types(store)),
        "crs": CRS.from_user_input(STORE_CRS).to_json_dict(),
        "edges": "planar",
    }
    if store.bounds is not None:
        meta["bbox"] = list(store.bounds)
    geo = {"version": "1.1.0", "primary_column": column, "columns": {column: meta}}
    return {"geo": json.dumps(geo, ensure_ascii=False)}


def _write_parquet(store: StoreInfo, path: Path, layer_id: str) -> None:
    """GeoParquet 1.1 (WKB ``geometry`` column) or plain Parquet for tables, via pyarrow."""
    column = _unique("geometry", set(store.fields))
    metadata = _geo_metadata(store, column) if store.geometry_name else None
    with _batches(store, datetime_as_string=False) as reader:
        fields = [
            pa.field(column, pa.binary()) if f.name == store.geometry_name else f
            for f in reader.schema
        ]
        schema = pa.schema(fields, metadata=metadata)
        with pq.ParquetWriter(path, schema) as writer:
            for batch in reader:
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))


# --------------------------------------------------------------------------- registry

FORMATS: dict[str, ExportFormat] = {
    "geojson": ExportFormat("geojson", "application/geo+json", ".geojson", False, _write_geojson),
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", ".csv", False, _write_csv),
    "kml": ExportFormat("kml", "application/vnd.google-earth.kml+xml", ".kml", True, _write_kml),
    "gpkg": ExportFormat("gpkg", "application/geopackage+sqlite3", ".gpkg", False, _write_gpkg),
    "shp.zip": ExportFormat("shp.zip", "application/zip", ".shp.zip", True, _write_shp_zip),
    "parquet": ExportFormat(
        "parquet", "application/vnd.apache.parquet", ".parquet", False, _write_parquet
    ),
}
"""Every download format by name, in the order the portal lists them."""
