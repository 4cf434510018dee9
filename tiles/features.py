"""Features of a stored layer version near a map pixel: the backend of WMS GetFeatureInfo.

A query is a point in the map's CRS, the map's pixel size and a tolerance in pixels. The
tolerance box is converted to EPSG:4326 (the stored CRS) and handed to GDAL as a spatial
filter, so the GeoPackage's R-tree picks the candidates (never a full-layer scan); each
candidate is then tested exactly in the map's pixel space with shapely: a polygon must hold
the pixel's centre, a point or a line must pass within the tolerance. Hits come back nearest
first.

The encoders turn hits into the GetFeatureInfo formats: GeoJSON, a small zh-TW HTML table,
plain text and GML 2 (``application/vnd.ogc.gml``).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from tiles.errors import TilesError

STORED_CRS = "EPSG:4326"
#: At most this many candidates are read from the spatial index for one query.
MAX_CANDIDATES = 20_000


class FeatureQueryError(TilesError):
    """A layer version's stored features could not be read for a query."""


@dataclass(frozen=True)
class Feature:
    """One feature found by a query.

    Attributes:
        layer_id: the layer it belongs to.
        fid: its feature id in the stored version.
        properties: attribute name (original, often Chinese) → value, in stored column order.
        geometry: its geometry in EPSG:4326 (lon/lat).
        distance: how far from the queried pixel it is, in pixels (0 inside a polygon).
    """

    layer_id: str
    fid: int
    properties: dict[str, Any]
    geometry: BaseGeometry | None
    distance: float = 0.0


@dataclass(frozen=True)
class PointQuery:
    """A pixel of a map, as a point in the map's CRS.

    Attributes:
        x: easting (or longitude) of the pixel's centre, in ``crs``.
        y: northing (or latitude) of the pixel's centre, in ``crs``.
        crs: the map's CRS with x first ("EPSG:3826", "EPSG:4326" means lon/lat).
        resolution: map units per pixel along x and along y.
        tolerance: pixels a point or line may be away from the pixel's centre and still count.
    """

    x: float
    y: float
    crs: str
    resolution: tuple[float, float]
    tolerance: float = 0.0

    def box(self, crs: str = STORED_CRS) -> tuple[float, float, float, float]:
        """The tolerance box around the point (one pixel more), as a bbox in ``crs``."""
        pad = self.tolerance + 1
        dx, dy = pad * self.resolution[0], pad * self.resolution[1]
        box = (self.x - dx, self.y - dy, self.x + dx, self.y + dy)
        if _same_crs(self.crs, crs):
            return box
        return _transformer(self.crs, crs).transform_bounds(*box, densify_pts=21)


def _same_crs(a: str, b: str) -> bool:
    return a == b or {a, b} == {"CRS:84", "EPSG:4326"}


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def features_at(path: Path, layer_id: str, query: PointQuery, limit: int) -> list[Feature]:
    """The features of a stored vector version at ``query``'s pixel, nearest first.

    Args:
        path: the version's GeoPackage (table ``features``, EPSG:4326, with an R-tree).
        layer_id: the layer id, copied into the results.
        query: the pixel, its CRS, the pixel size and the tolerance.
        limit: at most this many features.

    Raises:
        FeatureQueryError: the stored file cannot be read.
    """
    if limit < 1:
        return []
    try:
        meta, table = pyogrio.read_arrow(
            path,
            layer="features",
            bbox=query.box(),
            return_fids=True,
            max_features=MAX_CANDIDATES,
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as e:
        raise FeatureQueryError(f"layer {layer_id!r}: cannot read {path.name}: {e}") from None
    if table.num_rows == 0:
        return []
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    if geom_col not in table.column_names:
        geom_col = table.column_names[-1]
    fid_col = next(c for c in (meta.get("fid_column"), "fid", "OGC_FID") if c in table.column_names)
    geoms = shapely.from_wkb(table.column(geom_col).to_numpy(zero_copy_only=False))
    distances = _pixel_distances(geoms, query)
    hits = np.flatnonzero(distances <= query.tolerance + 1e-9)
    if hits.size == 0:
        return []
    order = hits[np.lexsort((hits, distances[hits]))][:limit]
    fids = table.column(fid_col).to_pylist()
    rows = table.drop_columns([geom_col, fid_col]).take(order).to_pylist()
    return [
        Feature(layer_id, int(fids[i]), row, geoms[i], float(distances[i]))
        for i, row in zip(order, rows, strict=True)
    ]


def _pixel_distances(geoms: np.ndarray, query: PointQuery) -> np.ndarray:
    """Distance of each geometry from the query's pixel centre, in pixels (inf for none)."""
    rx, ry = query.resolution
    if _same_crs(query.crs, STORED_CRS):

        def to_pixels(c: np.ndarray) -> np.ndarray:
            return np.column_stack(((c[:, 0] - query.x) / rx, (c[:, 1] - query.y) / ry))
    else:
        transformer = _transformer(STORED_CRS, query.crs)

        def to_pixels(c: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(c[:, 0], c[:, 1])
            return np.column_stack(((np.asarray(x) - query.x) / rx, (np.asarray(y) - query.y) / ry))

    projected = shapely.transform(geoms, to_pixels)
    distances = shapely.distance(projected, shapely.Point(0, 0))
    return np.where(np.isnan(distances), math.inf, distances)


# --------------------------------------------------------------------------- encoders


@dataclass(frozen=True)
class QueriedLayer:
    """A layer that was queried: its id and zh-TW title (encoders name empty layers too)."""

    id: str
    title: str


def _plain(value: Any) -> Any:
    """A JSON-friendly value: dates as ISO 8601, decimals as numbers, bytes as hex."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    return "" if value is None else str(value)


def to_geojson(features: Sequence[Feature], layers: Sequence[QueriedLayer]) -> str:
    """A GeoJSON FeatureCollection (RFC 7946, lon/lat); each feature names its layer."""
    del layers  # every feature names its own layer
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"{f.layer_id}.{f.fid}",
                "layer": f.layer_id,
                "properties": {k: _plain(v) for k, v in f.properties.items()},
                "geometry": mapping(f.geometry) if f.geometry is not None else None,
            }
            for f in features
        ],
    }
    return json.dumps(doc, ensure_ascii=False)


def to_html(features: Sequence[Feature], layers: Sequence[QueriedLayer]) -> str:
    """A small zh-TW HTML page: one table per queried layer, every value escaped."""
    parts = [
        '<!DOCTYPE html><html lang="zh-Hant-TW"><head><meta charset="utf-8">',
        "<title>圖徵查詢結果</title><style>table{border-collapse:collapse;margin:.5em 0}",
        "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}th{background:#eef}",
        "</style></head><body>",
    ]
    for layer in layers:
        hits = [f for f in features if f.layer_id == layer.id]
        parts.append(f"<h2>{html.escape(layer.title)}（{html.escape(layer.id)}）</h2>")
        if not hits:
            parts.append("<p>此位置查無圖徵</p>")
            continue
        names = list(hits[0].properties)
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        parts.append(f"<table><tr><th>編號</th>{head}</tr>")
        for f in hits:
            cells = "".join(f"<td>{html.escape(_text(f.properties.get(n)))}</td>" for n in names)
            parts.append(f"<tr><td>{f.fid}</td>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def to_text(features: Sequence[Feature], layers: Sequence[QueriedLayer]) -> str:
    """Plain text: a heading per queried layer, then ``name = value`` lines per feature."""
    lines = []
    for layer in layers:
        hits = [f for f in features if f.layer_id == layer.id]
        lines.append(f"圖層 {layer.id}（{layer.title}）：{len(hits)} 筆圖徵")
        for f in hits:
            lines.append(f"--- 圖徵 {layer.id}.{f.fid}")
            lines.extend(f"{k} = {_text(v)}" for k, v in f.properties.items())
        lines.append("")
    return "\n".join(lines)


GML_NS = "http://www.opengis.net/gml"
GP_NS = "urn:x-geoportal:layers"
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")


def xml_name(name: str) -> str:
    """``name`` as an XML element name: characters XML refuses become ``_``."""
    if _NCNAME.fullmatch(name):
        return name
    cleaned = re.sub(r"[^\w.\-]", "_", name)
    return cleaned if _NCNAME.fullmatch(cleaned) else f"_{cleaned}"


def _coords(geom: BaseGeometry) -> str:
    text = " ".join(f"{x!r},{y!r}" for x, y, *_ in geom.coords)
    return f'<gml:coordinates decimal="." cs="," ts=" ">{text}</gml:coordinates>'


def _gml_polygon(geom: BaseGeometry) -> str:
    out = f"<gml:outerBoundaryIs><gml:LinearRing>{_coords(geom.exterior)}"
    out += "</gml:LinearRing></gml:outerBoundaryIs>"
    for ring in geom.interiors:
        out += f"<gml:innerBoundaryIs><gml:LinearRing>{_coords(ring)}"
        out += "</gml:LinearRing></gml:innerBoundaryIs>"
    return out


_GML_SRS = 'srsName="EPSG:4326"'
_MULTI = {
    "MultiPoint": "pointMember",
    "MultiLineString": "lineStringMember",
    "MultiPolygon": "polygonMember",
    "GeometryCollection": "geometryMember",
}


def gml_geometry(geom: BaseGeometry, top: bool = True) -> str:
    """A GML 2 geometry (lon/lat, as GML 2 writes EPSG:4326)."""
    srs = f" {_GML_SRS}" if top else ""
    kind = geom.geom_type
    if kind == "Point":
        return f"<gml:Point{srs}>{_coords(geom)}</gml:Point>"
    if kind in ("LineString", "LinearRing"):
        return f"<gml:LineString{srs}>{_coords(geom)}</gml:LineString>"
    if kind == "Polygon":
        return f"<gml:Polygon{srs}>{_gml_polygon(geom)}</gml:Polygon>"
    member = _MULTI[kind]
    inner = "".join(
        f"<gml:{member}>{gml_geometry(g, top=False)}</gml:{member}>" for g in geom.geoms
    )
    return f"<gml:{kind}{srs}>{inner}</gml:{kind}>"


def to_gml(features: Sequence[Feature], layers: Sequence[QueriedLayer]) -> str:
    """A GML 2 FeatureCollection whose members are elements named after their layer."""
    del layers
    members = []
    for f in features:
        tag = f"gp:{xml_name(f.layer_id)}"
        body = (
            "" if f.geometry is None else f"<gp:geometry>{gml_geometry(f.geometry)}</gp:geometry>"
        )
        body += "".join(
            f"<gp:{xml_name(k)}>{escape(_text(v))}</gp:{xml_name(k)}>"
            for k, v in f.properties.items()
        )
        fid = quoteattr(f"{f.layer_id}.{f.fid}")
        members.append(f"<gml:featureMember><{tag} fid={fid}>{body}</{tag}></gml:featureMember>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="{GML_NS}" '
        f'xmlns:gp="{GP_NS}">{"".join(members)}</wfs:FeatureCollection>'
    )


Encoder = Callable[[Sequence[Feature], Sequence[QueriedLayer]], str]

#: INFO_FORMAT → (encoder, response media type). Aliases map to the same encoder.
ENCODERS: dict[str, tuple[Encoder, str]] = {
    "application/json": (to_geojson, "application/json"),
    "application/geo+json": (to_geojson, "application/geo+json"),
    "text/html": (to_html, "text/html"),
    "text/plain": (to_text, "text/plain"),
    "application/vnd.ogc.gml": (to_gml, "application/vnd.ogc.gml"),
    "text/xml": (to_gml, "text/xml"),
}
