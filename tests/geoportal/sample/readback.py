"""Read a generated layer back with real readers (pyogrio, rasterio, csv, ElementTree).

The readers are told the truth (encoding, sublayer, CRS) from expected.json: the point is to
check that the files hold what expected.json says, not to decide anything — deciding is
ingest's job. Text from DBFs is read as raw bytes (pyogrio with latin-1) and decoded here,
because pyogrio refuses UTF-8 cut at the field width, which the corpus contains on purpose.
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import shapely
from pyogrio import raw

COORD_HEADERS = (
    ("經度", "緯度"),
    ("lon", "lat"),
    ("Longitude", "Latitude"),
    ("X坐標", "Y坐標"),
    ("TWD97X", "TWD97Y"),
    ("橫座標", "縱座標"),
)
KML = "{http://www.opengis.net/kml/2.2}"


@dataclass
class ReadBack:
    """What a layer's files hold: records (attributes by column), geometries, raw text."""

    records: list[dict]
    geometry: list
    raw_text: list[dict] | None = None

    @property
    def bbox(self) -> list[float]:
        """Bounds of the non-null geometries, in the file's own coordinates."""
        present = [g for g in self.geometry if g is not None]
        return list(shapely.total_bounds(np.array(present, dtype=object)))


def decode_big5(b: bytes) -> str:
    """CP950, falling back to Big5-HKSCS for vendor-extension characters."""
    try:
        return b.decode("cp950")
    except UnicodeDecodeError:
        return b.decode("big5hkscs")


def decode(b: bytes, encoding: str) -> str:
    """Decode DBF bytes; a UTF-8 character cut at the field width is dropped."""
    if encoding == "cp950":
        return decode_big5(b)
    return b.decode("utf-8", errors="ignore")


def extract(path: Path, into: Path) -> Path:
    """Unzip (recursively, CP950 names honoured) and return the folder."""
    with zipfile.ZipFile(path, metadata_encoding="cp950") as zf:
        for info in zf.infolist():
            if info.filename.startswith("__MACOSX/") or info.is_dir():
                continue
            target = into / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            if target.suffix.lower() == ".zip":
                extract(target, target.with_suffix(""))
    return into


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _geoms(wkb) -> list:
    # on_invalid="fix" closes the unclosed rings the corpus holds on purpose.
    return [None if g is None else shapely.from_wkb(g, on_invalid="fix") for g in wkb]


def read_shapefile(shp: Path, encoding: str) -> ReadBack:
    """Geometry from GDAL, attributes from the DBF's raw bytes decoded with ``encoding``."""
    # The ENCODING open option overrides .cpg and language byte; ISO-8859-1 maps each byte to
    # one character, so encoding back to latin-1 gives the DBF's bytes untouched.
    meta, _, wkb, fields = raw.read(shp, ENCODING="ISO-8859-1")
    names = [decode(n.encode("latin-1"), encoding) for n in meta["fields"]]
    records = []
    for i in range(len(wkb)):
        rec = {}
        for name, col in zip(names, fields, strict=True):
            v = _plain(col[i])
            if isinstance(v, str):
                v = decode(v.encode("latin-1"), encoding).rstrip() or None
            rec[name] = v
        records.append(rec)
    return ReadBack(records, _geoms(wkb))


def read_ogr(path: Path, layer: str | None = None) -> ReadBack:
    """A GeoJSON, TopoJSON or GeoPackage layer through pyogrio."""
    with warnings.catch_warnings():
        # GDAL warns about the unclosed rings the corpus holds on purpose.
        warnings.filterwarnings("ignore", "Non closed ring", RuntimeWarning)
        meta, _, wkb, fields = raw.read(path, layer=layer)
    records = [
        {n: _plain(c[i]) for n, c in zip(meta["fields"], fields, strict=True)}
        for i in range(len(wkb))
    ]
    return ReadBack(records, _geoms(wkb))


def read_kml(path: Path, folder: str) -> ReadBack:
    """One KML folder, parsed with ElementTree (GDAL's LIBKML mangles Chinese Data names)."""
    root = ElementTree.parse(path).getroot()
    for f in root.iter(f"{KML}Folder"):
        if f.findtext(f"{KML}name") == folder:
            break
    else:
        raise AssertionError(f"no folder {folder!r} in {path}")
    records, geoms = [], []
    for pm in f.iter(f"{KML}Placemark"):
        records.append({d.get("name"): d.findtext(f"{KML}value") for d in pm.iter(f"{KML}Data")})
        coords = [
            tuple(map(float, c.split(",")[:2]))
            for node in pm.iter(f"{KML}coordinates")
            for c in node.text.split()
        ]
        geoms.append(shapely.MultiPoint(coords))
    return ReadBack(records, geoms)


def read_csv(
    path: Path, encoding: str, header_rows: int, delimiter: str, xy: tuple[str, str]
) -> ReadBack:
    """A delimited text file; coordinates from the named columns (empty → no geometry)."""
    codec = "cp950" if encoding == "cp950" else "utf-8-sig"
    with open(path, encoding=codec, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    header, body = rows[0], rows[header_rows:]
    records = [dict(zip(header, r, strict=True)) for r in body]
    geoms = []
    for r in records:
        x, y = r[xy[0]], r[xy[1]]
        geoms.append(shapely.Point(float(x), float(y)) if x and y else None)
    return ReadBack(records, geoms, raw_text=records)


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a generated text file (comma, pipe or tab)."""
    codec = "cp950" if encoding == "cp950" else "utf-8-sig"
    first = path.read_bytes().decode(codec).split("\r\n", 1)[0]
    return max(",|\t", key=first.count)


def coordinate_columns(header: list[str], overrides: dict) -> tuple[str, str]:
    """The x/y columns, as the manifest or the usual Taiwanese headers name them."""
    if "x" in overrides:
        return overrides["x"], overrides["y"]
    for x, y in COORD_HEADERS:
        if x in header and y in header:
            return x, y
    raise AssertionError(f"no coordinate columns in {header}")


def read_layer(corpus: Path, layer: dict, manifest_entry: dict, scratch: Path) -> ReadBack:
    """Read the layer ``layer`` (an expected.json record) back from the corpus."""
    src = corpus / layer["source"]
    fmt, encoding = layer["format"], layer.get("encoding", "utf-8")
    if fmt == "shapefile":
        if src.suffix == ".zip":
            folder = extract(src, scratch / layer["id"])
            src = next(p for p in folder.rglob("*.shp"))
        return read_shapefile(src, encoding)
    if fmt in ("geojson", "topojson", "gpkg"):
        return read_ogr(src, layer.get("sublayer"))
    if fmt == "kml":
        return read_kml(src, layer["sublayer"])
    if fmt == "csv":
        delimiter = sniff_delimiter(src, encoding)
        header_rows = 2 if "csv-two-header-rows" in layer.get("mess", []) else 1
        codec = "cp950" if encoding == "cp950" else "utf-8-sig"
        with open(src, encoding=codec, newline="") as f:
            header = next(csv.reader(io.StringIO(f.readline()), delimiter=delimiter))
        x, y = coordinate_columns(header, manifest_entry)
        if "csv-swapped-latlon" in layer.get("mess", []):
            x, y = y, x
        return read_csv(src, encoding, header_rows, delimiter, (x, y))
    raise AssertionError(f"no reader for format {fmt}")
