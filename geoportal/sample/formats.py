"""Writers for every source format the corpus uses, with byte-level control over the mess.

GDAL (through pyogrio and rasterio) writes geometry, GeoPackages and GeoTIFFs; DBF tables,
GeoJSON, TopoJSON, KML, CSV and zips are written here byte by byte, because the point of the
corpus is files that GDAL would never write: Big5 DBFs without a .cpg, UTF-8 cut at the field
width, legacy ``crs`` members, unclosed rings, cp950 names inside zips.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pyogrio
import shapely
from pyproj import Transformer

# Fixed timestamps make every output byte-identical for the same seed.
FIXED_DATE = date(2023, 1, 31)
ZIP_TIME = (2023, 1, 31, 9, 0, 0)
pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2023-01-31T09:00:00Z"})

# .prj texts agencies really ship. None of them carries an EPSG code.
PRJ_TM2_TWD97 = (
    'PROJCS["TM2[TWD97]",GEOGCS["GRS80",DATUM["D_GRS_1980",SPHEROID["GRS_1980",6378137.0,'
    '298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",250000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",121.0],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
PRJ_LOWER_TWD97 = (
    'PROJCS["twd97",GEOGCS["GCS_TWD97",DATUM["D_TWD97",SPHEROID["GRS_1980",6378137.0,'
    '298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["false_easting",250000.0],'
    'PARAMETER["false_northing",0.0],PARAMETER["central_meridian",121.0],'
    'PARAMETER["scale_factor",0.9999],PARAMETER["latitude_of_origin",0.0],UNIT["Meter",1.0]]'
)
PRJ_TM2_WGS84_DATUM = (
    'PROJCS["TM2_121",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,'
    '298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",250000.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",121.0],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)
WKT_TM2_TWD97_RASTER = (
    'PROJCS["TM2_TWD97",GEOGCS["GCS_GRS80",DATUM["D_GRS_1980",SPHEROID["GRS 1980",6378137,'
    '298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",121],PARAMETER["scale_factor",0.9999],'
    'PARAMETER["false_easting",250000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)
CUSTOM_PRJ = {
    "tm2-twd97": PRJ_TM2_TWD97,
    "twd97": PRJ_LOWER_TWD97,
    "tm2-wgs84": PRJ_TM2_WGS84_DATUM,
}

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 18734512\n"
)


@dataclass
class Column:
    """One attribute column: its name, kind (str, int, float, date) and DBF width."""

    name: str
    kind: str
    values: list
    width: int = 0
    decimals: int = 0


@dataclass
class Table:
    """A layer's features in EPSG:4326: geometries (None = null) and attribute columns."""

    geometry: np.ndarray
    columns: list[Column] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.geometry)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


# --- coordinates ------------------------------------------------------------------------------

_TRANSFORMERS: dict[str, Transformer] = {}


def _transformer(src: str, dst: str) -> Transformer:
    key = f"{src}>{dst}"
    if key not in _TRANSFORMERS:
        _TRANSFORMERS[key] = Transformer.from_crs(src, dst, always_xy=True)
    return _TRANSFORMERS[key]


def project_xy(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat → ``crs``. TWD67 goes through TWD97 TM2 and EPSG's TWD67↔TWD97 offsets (15487).

    PROJ has no TWD67 datum shift from WGS 84 (only a ballpark one that is ~800 m off), so
    the route through EPSG:3826 is the one that gives agency-true TWD67 coordinates.
    """
    if crs in ("EPSG:4326", "CRS:84"):
        return np.asarray(x, float), np.asarray(y, float)
    if crs == "EPSG:3828":
        x, y = _transformer("EPSG:4326", "EPSG:3826").transform(x, y)
        return _transformer("EPSG:3826", "EPSG:3828").transform(x, y)
    return _transformer("EPSG:4326", crs).transform(x, y)


def project(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Geometries in lon/lat → ``crs`` (None stays None; Z is kept)."""
    if crs in ("EPSG:4326", "CRS:84"):
        return geoms

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = project_xy(coords[:, 0], coords[:, 1], crs)
        out = coords.copy()
        out[:, 0], out[:, 1] = x, y
        return out

    return shapely.transform(geoms, fn, include_z=True)


def is_geographic(crs: str) -> bool:
    """Whether ``crs`` has degrees as coordinates."""
    return crs in ("EPSG:4326", "EPSG:3824", "CRS:84")


def precision(crs: str) -> int:
    """Decimals worth keeping for coordinates in ``crs``."""
    return 7 if is_geographic(crs) else 3


# --- DBF / shapefile --------------------------------------------------------------------------


def mixed_big5(text: str) -> bytes:
    """Encode as CP950, falling back per character to Big5-HKSCS for vendor characters."""
    try:
        return text.encode("cp950")
    except UnicodeEncodeError:
        return b"".join(_big5_char(ch) for ch in text)


def _big5_char(ch: str) -> bytes:
    try:
        return ch.encode("cp950")
    except UnicodeEncodeError:
        return ch.encode("big5hkscs")


ENCODERS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda s: s.encode("utf-8"),
    "cp950": mixed_big5,
}


def _dbf_field_bytes(col: Column, value, encode: Callable[[str], bytes]) -> bytes:
    if value is None:
        return b" " * col.width
    if col.kind == "str":
        raw = encode(str(value))[: col.width]
        return raw + b" " * (col.width - len(raw))
    if col.kind == "date":
        return value.strftime("%Y%m%d").encode("ascii")
    if col.kind == "float":
        return f"{value:>{col.width}.{col.decimals}f}".encode("ascii")[: col.width]
    return f"{int(value):>{col.width}d}".encode("ascii")[: col.width]


def write_dbf(path: Path, table: Table, encoding: str, ldid: int) -> None:
    """A dBase III table, text in ``encoding``, language driver byte ``ldid``, fixed date.

    Text longer than a field is cut at the byte width, exactly as ArcGIS does, so UTF-8 text
    may end mid-character.
    """
    encode = ENCODERS[encoding]
    cols = table.columns
    types = {"str": b"C", "int": b"N", "float": b"N", "date": b"D"}
    for c in cols:
        if c.kind == "date":
            c.width = 8
    descriptors = b""
    for c in cols:
        name = encode(c.name)
        if len(name) > 10:
            raise ValueError(
                f"DBF field name {c.name!r} is {len(name)} bytes in {encoding}: max 10"
            )
        descriptors += (
            name.ljust(11, b"\0")
            + types[c.kind]
            + b"\0" * 4
            + bytes([c.width, c.decimals])
            + b"\0" * 14
        )
    record_len = 1 + sum(c.width for c in cols)
    header_len = 32 + len(descriptors) + 1
    header = (
        struct.pack(
            "<BBBBIHH",
            3,
            FIXED_DATE.year - 1900,
            FIXED_DATE.month,
            FIXED_DATE.day,
            len(table),
            header_len,
            record_len,
        )
        + b"\0" * 17
        + bytes([ldid])
        + b"\0" * 2
    )
    with open(path, "wb") as f:
        f.write(header + descriptors + b"\r")
        for i in range(len(table)):
            f.write(b" " + b"".join(_dbf_field_bytes(c, c.values[i], encode) for c in cols))
        f.write(b"\x1a")


def write_shapefile(
    path: Path,
    table: Table,
    crs: str,
    *,
    encoding: str = "utf-8",
    ldid: int = 0,
    cpg: str | None = "UTF-8",
    prj: str | None = "epsg",
) -> list[Path]:
    """A shapefile whose geometry GDAL writes and whose .dbf/.cpg/.prj are as told.

    Args:
        path: the .shp path.
        table: the features, in lon/lat.
        crs: the CRS the coordinates are written in.
        encoding: the DBF's real text encoding ("utf-8" or "cp950").
        ldid: the DBF language driver byte (0 = says nothing, 0x4F/0x78 = Big5).
        cpg: the .cpg text, or None for no .cpg at all (it may lie on purpose).
        prj: "epsg" for GDAL's own .prj, a key of CUSTOM_PRJ for an agency WKT, None for none.

    Returns:
        Every file written.
    """
    geoms = project(table.geometry, crs)
    present = [g for g in geoms if g is not None]
    gtype = _ogr_type(present)
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    pyogrio.raw.write(
        str(path),
        wkb,
        field_data=[np.arange(len(table), dtype=np.int32)],
        fields=["fid_tmp"],
        driver="ESRI Shapefile",
        geometry_type=gtype,
        crs=crs,
        layer_options={"ENCODING": "UTF-8"},
    )
    for ext in (".cpg", ".prj"):
        path.with_suffix(ext).unlink(missing_ok=True)
    write_dbf(path.with_suffix(".dbf"), table, encoding, ldid)
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg, encoding="ascii")
    if prj == "epsg":
        path.with_suffix(".prj").write_text(_esri_wkt(crs), encoding="ascii")
    elif prj is not None:
        path.with_suffix(".prj").write_text(CUSTOM_PRJ[prj], encoding="ascii")
    return [
        path.with_suffix(e)
        for e in (".shp", ".shx", ".dbf", ".cpg", ".prj")
        if path.with_suffix(e).exists()
    ]


def _esri_wkt(crs: str) -> str:
    from pyproj import CRS

    return CRS.from_user_input(crs).to_wkt("WKT1_ESRI")


def _ogr_type(geoms: Sequence) -> str:
    kinds = {g.geom_type.replace("Multi", "") for g in geoms}
    has_z = any(shapely.has_z(g) for g in geoms)
    kind = kinds.pop() if len(kinds) == 1 else "Unknown"
    multi = any(g.geom_type.startswith("Multi") for g in geoms)
    name = ("Multi" + kind) if multi and kind != "Unknown" else kind
    return name + (" Z" if has_z and kind != "Unknown" else "")


# --- GeoPackage -------------------------------------------------------------------------------


def write_gpkg_layer(path: Path, layer: str, table: Table, crs: str, append: bool) -> None:
    """One table of a GeoPackage, written in ``crs`` (several CRSs per file are fine)."""
    geoms = project(table.geometry, crs)
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    data, names_ = [], []
    for c in table.columns:
        names_.append(c.name)
        if c.kind == "int":
            data.append(np.array([0 if v is None else v for v in c.values], dtype=np.int64))
        elif c.kind == "float":
            data.append(np.array([np.nan if v is None else v for v in c.values], dtype=float))
        else:
            data.append(np.array([None if v is None else str(v) for v in c.values], dtype=object))
    pyogrio.raw.write(
        str(path),
        wkb,
        field_data=data,
        fields=names_,
        layer=layer,
        driver="GPKG",
        geometry_type=_ogr_type([g for g in geoms if g is not None]),
        crs=crs,
        append=append,
        encoding="UTF-8",
    )


# --- GeoJSON / TopoJSON -----------------------------------------------------------------------


def _json_value(v):
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _rounded(obj, digits: int):
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, (list, tuple)):
        return [_rounded(o, digits) for o in obj]
    return obj


def write_geojson(
    path: Path,
    table: Table,
    crs: str = "EPSG:4326",
    *,
    legacy_crs: str | None = None,
    unclosed_rings: Iterable[int] = (),
    name: str | None = None,
) -> None:
    """A GeoJSON FeatureCollection; optionally with a legacy ``crs`` member and unclosed rings."""
    geoms = project(table.geometry, crs)
    unclosed = set(unclosed_rings)
    digits = precision(crs)
    features = []
    for i, g in enumerate(geoms):
        geometry = None
        if g is not None:
            geometry = shapely.geometry.mapping(g)
            geometry = {
                "type": geometry["type"],
                "coordinates": _rounded(geometry["coordinates"], digits),
            }
            if i in unclosed:
                geometry["coordinates"] = _open_rings(geometry)
        props = {c.name: _json_value(c.values[i]) for c in table.columns}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    doc: dict = {"type": "FeatureCollection"}
    if name:
        doc["name"] = name
    if legacy_crs:
        doc["crs"] = {"type": "name", "properties": {"name": legacy_crs}}
    doc["features"] = features
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def _open_rings(geometry: dict) -> list:
    """Drop the closing vertex of every ring, as hand-digitised legacy files do."""
    if geometry["type"] == "Polygon":
        return [ring[:-1] for ring in geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return [[ring[:-1] for ring in poly] for poly in geometry["coordinates"]]
    return geometry["coordinates"]


def write_topojson(path: Path, object_name: str, table: Table, scale: float = 1e5) -> None:
    """A quantised, delta-encoded TopoJSON of polygons (one arc per ring), lon/lat, no CRS."""
    minx, miny, maxx, maxy = shapely.total_bounds(table.geometry)
    q = scale - 1
    kx, ky = (maxx - minx) / q, (maxy - miny) / q
    arcs: list[list[list[int]]] = []
    geometries = []
    for i, g in enumerate(table.geometry):
        props = {c.name: _json_value(c.values[i]) for c in table.columns}
        if g is None:
            geometries.append({"type": None, "properties": props})
            continue
        rings = []
        for ring in [g.exterior, *g.interiors]:
            pts = np.asarray(ring.coords)[:, :2]
            qx = np.round((pts[:, 0] - minx) / kx).astype(np.int64)
            qy = np.round((pts[:, 1] - miny) / ky).astype(np.int64)
            delta = np.column_stack([np.diff(qx, prepend=0), np.diff(qy, prepend=0)])
            arcs.append(delta.tolist())
            rings.append(len(arcs) - 1)
        geometries.append({"type": "Polygon", "arcs": [[r] for r in rings], "properties": props})
    doc = {
        "type": "Topology",
        "transform": {"scale": [kx, ky], "translate": [minx, miny]},
        "objects": {object_name: {"type": "GeometryCollection", "geometries": geometries}},
        "arcs": arcs,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


# --- KML --------------------------------------------------------------------------------------


def _kml_coords(coords) -> str:
    return " ".join(f"{x:.7f},{y:.7f},0" for x, y, *_ in coords)


def _kml_geometry(g) -> str:
    t = g.geom_type
    if t == "Point":
        return f"<Point><coordinates>{_kml_coords(g.coords)}</coordinates></Point>"
    if t == "LineString":
        return f"<LineString><coordinates>{_kml_coords(g.coords)}</coordinates></LineString>"
    if t == "Polygon":
        inner = "".join(
            f"<innerBoundaryIs><LinearRing><coordinates>{_kml_coords(r.coords)}"
            "</coordinates></LinearRing></innerBoundaryIs>"
            for r in g.interiors
        )
        return (
            "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
            f"{_kml_coords(g.exterior.coords)}</coordinates></LinearRing></outerBoundaryIs>"
            f"{inner}</Polygon>"
        )
    return "<MultiGeometry>" + "".join(_kml_geometry(p) for p in g.geoms) + "</MultiGeometry>"


def write_kml(path: Path, document_name: str, folders: list[tuple[str, Table, str]]) -> None:
    """A KML document with one Folder per sublayer, as Google My Maps exports it.

    Args:
        path: the .kml path.
        document_name: the Document's name.
        folders: (folder name, features, name of the column also used as Placemark name).
    """
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write('<kml xmlns="http://www.opengis.net/kml/2.2"><Document>')
    out.write(f"<name>{escape(document_name)}</name>")
    for folder_name, table, name_col in folders:
        out.write(f"<Folder><name>{escape(folder_name)}</name>")
        for i, g in enumerate(table.geometry):
            label = table.column(name_col).values[i]
            data = "".join(
                f'<Data name="{escape(c.name)}"><value>{escape(str(_json_value(c.values[i])))}'
                "</value></Data>"
                for c in table.columns
            )
            out.write(f"<Placemark><name>{escape(str(label))}</name>")
            out.write(f"<ExtendedData>{data}</ExtendedData>{_kml_geometry(g)}</Placemark>")
        out.write("</Folder>")
    out.write("</Document></kml>\n")
    path.write_text(out.getvalue(), encoding="utf-8")


# --- CSV --------------------------------------------------------------------------------------


def write_csv(
    path: Path,
    header_rows: list[list[str]],
    rows: Iterable[Sequence[str]],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    delimiter: str = ",",
) -> None:
    """A delimited text file, header rows first, in ``encoding`` (cp950 allowed)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(header_rows)
    writer.writerows(rows)
    data = buf.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


# --- zip --------------------------------------------------------------------------------------


class Cp950ZipInfo(zipfile.ZipInfo):
    """A zip entry whose name is stored in CP950 with no UTF-8 flag, as Windows zips it."""

    def _encodeFilenameFlags(self):  # zipfile's own hook name
        try:
            return self.filename.encode("ascii"), self.flag_bits
        except UnicodeEncodeError:
            return self.filename.encode("cp950"), self.flag_bits & ~0x800


def write_zip(path: Path, entries: list[tuple[str, bytes]], *, cp950_names: bool = False) -> None:
    """A zip of (name inside the zip, bytes) entries with fixed timestamps."""
    info_cls = Cp950ZipInfo if cp950_names else zipfile.ZipInfo
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = info_cls(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def macosx_junk(names: Iterable[str]) -> list[tuple[str, bytes]]:
    """The ``__MACOSX/`` AppleDouble entries a Mac's Finder adds to every zip."""
    junk = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 34
    out = []
    for n in names:
        head, _, tail = n.rpartition("/")
        out.append((f"__MACOSX/{head + '/' if head else ''}._{tail}", junk))
    return out
