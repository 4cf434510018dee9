"""OGC API - Features on our store: a pygeoapi provider over one stored GeoPackage version.

Every vector layer version is one GeoPackage (table ``features``, EPSG:4326 lon/lat, integer
primary key ``fid``, a GeoPackage R-tree on the geometry column). The provider reads it with
plain SQLite: a bbox goes through the R-tree (envelopes that cross the bbox edge are refined
exactly with shapely), paging is LIMIT/OFFSET with ``numberMatched`` from COUNT, and CQL2
filters (text or JSON, parsed by pygeoapi with pygeofilter) are compiled here to a
PARAMETERISED WHERE clause over a whitelist of queryables: the layer's columns. Identifiers are
only ever taken from that whitelist; every value travels as a bound parameter.

pygeoapi constructs a provider object on every request; construction here is a dictionary
lookup: the opened state of a version (columns, types, count, R-tree name, per-thread read-only
connections) lives in a module-level LRU keyed by the file path (versions are immutable).

The PostgreSQL/PostGIS catalog backend keeps features in the same GeoPackage files, so this one
provider serves both deployments.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from pygeoapi.crs import CrsTransformSpec
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeofilter import ast
from pygeofilter import values as fvalues

#: Stored table name (one table per GeoPackage version).
TABLE = "features"

#: Names a filter may use for the primary geometry.
GEOMETRY_NAMES = frozenset({"geometry", "geom"})

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}

#: SQLite declared type (upper-cased prefix) → JSON Schema type and format.
_TYPES: tuple[tuple[str, str, str | None], ...] = (
    ("DATETIME", "string", "date-time"),
    ("DATE", "string", "date"),
    ("BOOL", "boolean", None),
    ("TINYINT", "integer", None),
    ("SMALLINT", "integer", None),
    ("MEDIUMINT", "integer", None),
    ("BIGINT", "integer", None),
    ("INT", "integer", None),
    ("REAL", "number", None),
    ("FLOAT", "number", None),
    ("DOUBLE", "number", None),
    ("NUMERIC", "number", None),
)


def _quote(name: str) -> str:
    """SQL identifier quoting; only ever applied to names read from the file's own schema."""
    return '"' + name.replace('"', '""') + '"'


def _json_type(declared: str) -> tuple[str, str | None]:
    upper = declared.upper()
    for prefix, kind, fmt in _TYPES:
        if upper.startswith(prefix):
            return kind, fmt
    return "string", None


def wkb_of(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (None for null or empty geometries)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0x10:  # empty geometry
        return None
    return blob[8 + _ENVELOPE_BYTES.get((flags >> 1) & 0x07, 0) :]


def _point_xy(wkb: bytes) -> tuple[float, float] | None:
    """(x, y) of a 2-D WKB point, else None (then shapely decides)."""
    if len(wkb) != 21:
        return None
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", wkb, 1)
    if kind != 1:
        return None
    return struct.unpack_from(order + "dd", wkb, 5)


def _intersects_box(blob: bytes, minx: float, miny: float, maxx: float, maxy: float) -> int:
    """SQLite function: does the geometry intersect the box (exact, for R-tree candidates)."""
    wkb = wkb_of(blob)
    if wkb is None:
        return 0
    xy = _point_xy(wkb)
    if xy is not None:
        return int(minx <= xy[0] <= maxx and miny <= xy[1] <= maxy)
    return int(shapely.intersects(shapely.from_wkb(wkb), shapely.box(minx, miny, maxx, maxy)))


_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "intersects": shapely.intersects,
    "disjoint": shapely.disjoint,
    "within": shapely.within,
    "contains": shapely.contains,
    "touches": shapely.touches,
    "crosses": shapely.crosses,
    "overlaps": shapely.overlaps,
    "equals": shapely.equals,
}


@dataclass(frozen=True)
class Column:
    """A queryable column: its name, quoted identifier and JSON Schema type."""

    name: str
    ident: str
    type: str
    format: str | None = None


class Store:
    """The opened state of one stored version: schema, count, per-thread connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        con = self.connection()
        try:
            geom = con.execute(
                "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (TABLE,)
            ).fetchone()
            info = con.execute(f"PRAGMA table_info({_quote(TABLE)})").fetchall()
            rtree = con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                (f"rtree_{TABLE}_{geom[0]}" if geom else "",),
            ).fetchone()
            self.count = con.execute(f"SELECT COUNT(*) FROM {_quote(TABLE)}").fetchone()[0]
        except sqlite3.Error as err:
            raise ProviderConnectionError(f"cannot read stored layer {path}: {err}") from err
        if not info:
            raise ProviderConnectionError(f"stored layer {path} has no table {TABLE!r}")
        self.geometry = _quote(geom[0]) if geom else None
        self.rtree = _quote(rtree[0]) if rtree else None
        pk = [row[1] for row in info if row[5]]
        self.pk = _quote(pk[0] if pk else "rowid")
        skip = {geom[0] if geom else None, pk[0] if pk else None}
        self.columns: dict[str, Column] = {}
        for row in info:
            if row[1] in skip:
                continue
            kind, fmt = _json_type(row[2] or "")
            self.columns[row[1]] = Column(row[1], _quote(row[1]), kind, fmt)

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (the file is immutable: no locking needed)."""
        con = getattr(self._local, "con", None)
        if con is None:
            uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
            try:
                con = sqlite3.connect(uri, uri=True)
            except sqlite3.Error as err:
                raise ProviderConnectionError(f"cannot open stored layer {self.path}") from err
            con.execute("PRAGMA case_sensitive_like = ON")
            con.create_function("gp_in_box", 5, _intersects_box, deterministic=True)
            geoms: list[Any] = []
            con.create_function("gp_relate", 3, _relate_factory(geoms))
            self._local.con, self._local.geoms = con, geoms
        return con

    def filter_geometries(self) -> list[Any]:
        """This thread's list of filter geometries that ``gp_relate`` refers to by index."""
        self.connection()
        return self._local.geoms


def _relate_factory(geoms: list[Any]) -> Callable[[bytes, str, int], int]:
    def relate(blob: bytes, op: str, index: int) -> int:
        wkb = wkb_of(blob)
        if wkb is None:
            return int(op == "disjoint")
        return int(_RELATIONS[op](shapely.from_wkb(wkb), geoms[index]))

    return relate


@lru_cache(maxsize=512)
def open_store(path: str) -> Store:
    """The cached opened state of a stored version (versions never change in place)."""
    return Store(Path(path))


# ----------------------------------------------------------------------------------------------
# CQL2 → parameterised SQL


class FilterError(ProviderInvalidQueryError):
    """A filter that cannot be answered: unknown property, unsupported operator, bad value."""

    def __init__(self, message: str) -> None:
        super().__init__(message, user_msg=message)


@dataclass
class Where:
    """A WHERE clause under construction: SQL fragments with ``?`` and their parameters."""

    store: Store
    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    geoms: list[Any] = field(default_factory=list)

    def column(self, name: str) -> Column:
        """The whitelisted column named ``name`` (FilterError for anything else)."""
        col = self.store.columns.get(name)
        if col is None:
            raise FilterError(f"unknown property {name!r}: see /queryables for the properties")
        return col

    def value(self, literal: Any) -> str:
        """Bind a literal; returns its ``?`` marker for the SQL text."""
        self.params.append(_literal(literal))
        return "?"

    def clause(self) -> str:
        """The combined clause (``1 = 1`` when empty)."""
        return " AND ".join(f"({p})" for p in self.parts) or "1 = 1"


def _literal(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise FilterError(f"unsupported value in filter: {value!r}")


def _operand(where: Where, node: Any) -> tuple[str, bool]:
    """SQL for a comparison operand and whether it is a property."""
    if isinstance(node, ast.Attribute):
        return where.column(node.name).ident, True
    if isinstance(node, ast.Node):
        raise FilterError(f"unsupported expression in filter: {node!r}")
    return where.value(node), False


_COMPARE = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}

_SPATIAL = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryWithin: "within",
    ast.GeometryContains: "contains",
    ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps",
    ast.GeometryEquals: "equals",
}


def _comparison(where: Where, node: ast.Comparison) -> str:
    lhs, lprop = _operand(where, node.lhs)
    rhs, rprop = _operand(where, node.rhs)
    if not (lprop or rprop):
        raise FilterError("a comparison needs a property on one side")
    return f"{lhs} {_COMPARE[type(node)]} {rhs}"


def _between(where: Where, node: ast.Between) -> str:
    col = where.column(_attribute(node.lhs)).ident
    low, high = where.value(node.low), where.value(node.high)
    return f"{col} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high}"


def _like(where: Where, node: ast.Like) -> str:
    """CQL2 LIKE: ``%`` and ``_`` wildcards, backslash escape, case-sensitive."""
    col = where.column(_attribute(node.lhs)).ident
    if not isinstance(node.pattern, str):
        raise FilterError("LIKE needs a text pattern")
    return f"{col} {'NOT ' if node.not_ else ''}LIKE {where.value(node.pattern)} ESCAPE '\\'"


def _in(where: Where, node: ast.In) -> str:
    col = where.column(_attribute(node.lhs)).ident
    if not node.sub_nodes or any(isinstance(v, ast.Node) for v in node.sub_nodes):
        raise FilterError("IN needs a list of values")
    marks = ", ".join(where.value(v) for v in node.sub_nodes)
    return f"{col} {'NOT ' if node.not_ else ''}IN ({marks})"


def _is_null(where: Where, node: ast.IsNull) -> str:
    name = _attribute(node.lhs)
    if name in GEOMETRY_NAMES and name not in where.store.columns:
        ident = where.store.geometry or "NULL"
    else:
        ident = where.column(name).ident
    return f"{ident} IS {'NOT ' if node.not_ else ''}NULL"


def _attribute(node: Any) -> str:
    if not isinstance(node, ast.Attribute):
        raise FilterError(f"expected a property name, got {node!r}")
    return node.name


def _geometry_value(node: Any) -> Any:
    if isinstance(node, fvalues.Geometry | fvalues.Envelope):
        try:
            return shapely.geometry.shape(node.geometry)
        except (ValueError, TypeError, AttributeError) as err:
            raise FilterError(f"invalid geometry in filter: {err}") from err
    raise FilterError("a spatial predicate needs the geometry property and a geometry literal")


def _spatial_sql(where: Where, op: str, geom: Any) -> str:
    if where.store.geometry is None:
        raise FilterError("this collection has no geometry")
    shapely.prepare(geom)
    where.geoms.append(geom)
    index = len(where.geoms) - 1
    # Parameters are bound in textual order: the R-tree prefilter's first, then the relation's.
    prefilter = ""
    if op != "disjoint" and where.store.rtree is not None and not geom.is_empty:
        minx, miny, maxx, maxy = geom.bounds
        prefilter = (
            f"f.{where.store.pk} IN (SELECT id FROM {where.store.rtree} WHERE maxx >= "
            f"{where.value(minx)} AND minx <= {where.value(maxx)} AND maxy >= "
            f"{where.value(miny)} AND miny <= {where.value(maxy)}) AND "
        )
    geometry = f"f.{where.store.geometry}"
    return f"{prefilter}gp_relate({geometry}, {where.value(op)}, {where.value(index)})"


def _spatial(where: Where, node: ast.SpatialComparisonPredicate) -> str:
    lhs, rhs = node.lhs, node.rhs
    if isinstance(rhs, ast.Attribute) and not isinstance(lhs, ast.Attribute):
        lhs, rhs = rhs, lhs  # S_INTERSECTS(POINT(..), geometry)
    if _attribute(lhs) not in GEOMETRY_NAMES:
        raise FilterError(f"spatial predicates apply to 'geometry', not {lhs.name!r}")
    return _spatial_sql(where, _SPATIAL[type(node)], _geometry_value(rhs))


def _bbox(where: Where, node: ast.BBox) -> str:
    if _attribute(node.lhs) not in GEOMETRY_NAMES:
        raise FilterError(f"BBOX applies to 'geometry', not {node.lhs.name!r}")
    box = shapely.box(node.minx, node.miny, node.maxx, node.maxy)
    if node.crs:
        try:
            tr = _transformer(pyproj.CRS.from_user_input(node.crs), pyproj.CRS("OGC:CRS84"))
        except pyproj.exceptions.CRSError as err:
            raise FilterError(f"unknown CRS in BBOX: {node.crs!r}") from err
        box = shapely.box(*tr.transform_bounds(*box.bounds))
    return _spatial_sql(where, "intersects", box)


def _combination(where: Where, node: ast.Combination) -> str:
    op = "AND" if isinstance(node, ast.And) else "OR"
    return f"({compile_node(where, node.lhs)}) {op} ({compile_node(where, node.rhs)})"


def _not(where: Where, node: ast.Not) -> str:
    return f"NOT ({compile_node(where, node.sub_node)})"


def _include(where: Where, node: ast.Include) -> str:
    return "0" if node.not_ else "1"


_COMPILERS: dict[type, Callable[[Where, Any], str]] = {
    **dict.fromkeys(_COMPARE, _comparison),
    **dict.fromkeys(_SPATIAL, _spatial),
    ast.And: _combination,
    ast.Or: _combination,
    ast.Not: _not,
    ast.Between: _between,
    ast.Like: _like,
    ast.In: _in,
    ast.IsNull: _is_null,
    ast.BBox: _bbox,
    ast.Include: _include,
}


def compile_node(where: Where, node: Any) -> str:
    """SQL for one filter node (parameters appended to ``where``).

    Raises:
        FilterError: for unknown properties and operators this store cannot answer.
    """
    compiler = _COMPILERS.get(type(node))
    if compiler is None:
        raise FilterError(f"unsupported filter operation: {type(node).__name__}")
    return compiler(where, node)


# ----------------------------------------------------------------------------------------------
# Output


@lru_cache(maxsize=64)
def _transformer(source: pyproj.CRS, target: pyproj.CRS, always_xy: bool = False):
    return pyproj.Transformer.from_crs(source, target, always_xy=always_xy)


def _spec_transformer(spec: CrsTransformSpec | None) -> pyproj.Transformer | None:
    if spec is None:
        return None
    return _transformer(
        pyproj.CRS.from_wkt(spec.source_crs_wkt),
        pyproj.CRS.from_wkt(spec.target_crs_wkt),
        spec.always_xy,
    )


def _geojson(blobs: Sequence[bytes | None], tr: pyproj.Transformer | None) -> list[dict | None]:
    """GeoJSON geometries of GeoPackage blobs (vectorised), transformed when asked."""
    wkbs = [wkb_of(b) for b in blobs]
    present = [i for i, w in enumerate(wkbs) if w is not None]
    out: list[dict | None] = [None] * len(wkbs)
    if not present:
        return out
    geoms = shapely.from_wkb(np.array([wkbs[i] for i in present], dtype=object))
    if tr is not None:
        geoms = shapely.transform(geoms, lambda x, y: tr.transform(x, y), interleaved=False)
    # One parse of one JSON array is many times faster than a parse per geometry.
    parsed = json.loads("[" + ",".join(shapely.to_geojson(geoms).tolist()) + "]")
    for i, geometry in zip(present, parsed, strict=True):
        out[i] = geometry
    return out


class GeoportalProvider(BaseProvider):
    """pygeoapi feature provider over one stored GeoPackage version (see module docstring)."""

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        self.store = open_store(str(provider_def["data"]))
        self.id_field = "fid"
        self._fields = self.get_fields()

    def get_fields(self) -> dict:
        """Queryable properties and their JSON Schema types (the whitelist of filters)."""
        out = {}
        for col in self.store.columns.values():
            spec = {"type": col.type}
            if col.format:
                spec["format"] = col.format
            out[col.name] = spec
        return out

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] = (),
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
        sortby: Sequence[dict] = (),
        select_properties: Sequence[str] = (),
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: ast.Node | None = None,
        crs_transform_spec: CrsTransformSpec | None = None,
        **kwargs: Any,
    ) -> dict:
        """Features matching every constraint, as a GeoJSON FeatureCollection dict.

        Args:
            offset: features to skip.
            limit: features to return at most.
            resulttype: "results", or "hits" for the count only.
            bbox: (minx, miny, maxx, maxy) in CRS84 (pygeoapi has applied bbox-crs).
            datetime_: ignored: stored layers carry no time dimension.
            properties: (name, value) equality filters from the query string.
            sortby: [{"property": name, "order": "+"|"-"}].
            select_properties: properties to return (all when empty).
            skip_geometry: leave geometries out.
            q: free-text terms matched in every text property.
            filterq: parsed CQL2 filter.
            crs_transform_spec: output CRS transformation (None: CRS84).
            **kwargs: further pygeoapi keywords (language), unused.

        Raises:
            ProviderInvalidQueryError: for unknown properties, bad values and unsupported
                filter operations (HTTP 400).
        """
        where = self._where(bbox, properties, q, filterq)
        matched = self._count(where)
        result: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [],
            "numberMatched": matched,
            "numberReturned": 0,
        }
        if resulttype == "hits" or limit <= 0:
            return result
        columns = self._select(select_properties)
        order = self._order(sortby)
        sql = (
            f"SELECT f.{self.store.pk}, "
            + ("NULL" if skip_geometry or not self.store.geometry else f"f.{self.store.geometry}")
            + "".join(f", f.{c.ident}" for c in columns)
            + f" FROM {_quote(TABLE)} AS f WHERE {where.clause()} ORDER BY {order}"
            + " LIMIT ? OFFSET ?"
        )
        rows = self._execute(where, sql, [*where.params, int(limit), int(offset)])
        result["features"] = self._features(rows, columns, crs_transform_spec)
        result["numberReturned"] = len(result["features"])
        return result

    def get(self, identifier: str, **kwargs: Any) -> dict:
        """One feature by its id (the stored ``fid``).

        Raises:
            ProviderItemNotFoundError: for ids that are not integers or not stored (404).
        """
        try:
            fid = int(str(identifier))
        except ValueError:
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r}") from None
        columns = list(self.store.columns.values())
        geom = f"f.{self.store.geometry}" if self.store.geometry else "NULL"
        sql = (
            f"SELECT f.{self.store.pk}, {geom}"
            + "".join(f", f.{c.ident}" for c in columns)
            + f" FROM {_quote(TABLE)} AS f WHERE f.{self.store.pk} = ?"
        )
        rows = self._execute(Where(self.store), sql, [fid])
        if not rows:
            raise ProviderItemNotFoundError(user_msg=f"no feature {identifier!r}")
        return self._features(rows, columns, kwargs.get("crs_transform_spec"))[0]

    # -- helpers -------------------------------------------------------------------------------

    def _where(
        self,
        bbox: Sequence[float],
        properties: Sequence[tuple[str, str]],
        q: str | None,
        filterq: ast.Node | None,
    ) -> Where:
        where = Where(self.store)
        if bbox:
            where.parts.append(self._bbox_sql(where, bbox))
        for name, raw in properties:
            col = where.column(name)
            where.parts.append(f"f.{col.ident} = {where.value(_typed(col, raw))}")
        if q:
            where.parts.append(self._text_sql(where, q))
        if filterq is not None:
            where.parts.append(compile_node(where, filterq))
        return where

    def _bbox_sql(self, where: Where, bbox: Sequence[float]) -> str:
        if len(bbox) == 6:
            bbox = (bbox[0], bbox[1], bbox[3], bbox[4])
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        if self.store.geometry is None:
            return "0"
        if self.store.rtree is None:
            box = [where.value(v) for v in (minx, miny, maxx, maxy)]
            return f"gp_in_box(f.{self.store.geometry}, {', '.join(box)})"
        # R-tree candidates; envelopes wholly inside the box need no exact test.
        p = [where.value(v) for v in (minx, maxx, miny, maxy)]
        inside = [where.value(v) for v in (minx, maxx, miny, maxy)]
        exact = [where.value(v) for v in (minx, miny, maxx, maxy)]
        return (
            f"f.{self.store.pk} IN (SELECT r.id FROM {self.store.rtree} AS r "
            f"JOIN {_quote(TABLE)} AS g ON g.{self.store.pk} = r.id "
            f"WHERE r.maxx >= {p[0]} AND r.minx <= {p[1]} AND r.maxy >= {p[2]} "
            f"AND r.miny <= {p[3]} AND ((r.minx >= {inside[0]} AND r.maxx <= {inside[1]} "
            f"AND r.miny >= {inside[2]} AND r.maxy <= {inside[3]}) "
            f"OR gp_in_box(g.{self.store.geometry}, {', '.join(exact)})))"
        )

    def _text_sql(self, where: Where, q: str) -> str:
        texts = [c for c in self.store.columns.values() if c.type == "string" and not c.format]
        terms = [t for t in q.replace(",", " ").split() if t]
        if not texts or not terms:
            return "1 = 1"
        clauses = []
        for term in terms:
            pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern += "%"
            ors = [f"f.{c.ident} LIKE {where.value(pattern)} ESCAPE '\\'" for c in texts]
            clauses.append("(" + " OR ".join(ors) + ")")
        return " AND ".join(clauses)

    def _select(self, names: Sequence[str]) -> list[Column]:
        if not names:
            return list(self.store.columns.values())
        wanted = set(names)
        unknown = wanted - set(self.store.columns)
        if unknown:
            raise FilterError(f"unknown properties: {', '.join(sorted(unknown))}")
        return [c for n, c in self.store.columns.items() if n in wanted]

    def _order(self, sortby: Sequence[dict]) -> str:
        keys = []
        for item in sortby:
            col = self.store.columns.get(item.get("property", ""))
            if col is None:
                raise FilterError(f"cannot sort by {item.get('property')!r}")
            keys.append(f"f.{col.ident} {'DESC' if item.get('order') == '-' else 'ASC'}")
        keys.append(f"f.{self.store.pk} ASC")
        return ", ".join(keys)

    def _count(self, where: Where) -> int:
        if not where.parts:
            return self.store.count
        sql = f"SELECT COUNT(*) FROM {_quote(TABLE)} AS f WHERE {where.clause()}"
        return int(self._execute(where, sql, where.params)[0][0])

    def _execute(self, where: Where, sql: str, params: Sequence[Any]) -> list[tuple]:
        con = self.store.connection()
        geoms = self.store.filter_geometries()
        geoms[:] = where.geoms
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise ProviderInvalidQueryError(
                f"query on {self.store.path} failed: {err}", user_msg="query cannot be answered"
            ) from err
        finally:
            geoms.clear()

    def _features(
        self, rows: list[tuple], columns: list[Column], spec: CrsTransformSpec | None
    ) -> list[dict]:
        geometries = _geojson([r[1] for r in rows], _spec_transformer(spec))
        names = [c.name for c in columns]
        return [
            {
                "type": "Feature",
                "id": row[0],
                "geometry": geom,
                "properties": dict(zip(names, row[2:], strict=True)),
            }
            for row, geom in zip(rows, geometries, strict=True)
        ]

    def __repr__(self) -> str:
        return f"<GeoportalProvider {self.store.path}>"


def _typed(col: Column, raw: str) -> Any:
    """A query-string value converted to the column's type (400 when it does not fit)."""
    try:
        if col.type == "integer":
            return int(raw)
        if col.type == "number":
            return float(raw)
    except ValueError:
        raise FilterError(f"{col.name}={raw!r}: expected a {col.type}") from None
    if col.type == "boolean":
        lowered = raw.strip().lower()
        if lowered not in {"true", "false", "1", "0"}:
            raise FilterError(f"{col.name}={raw!r}: expected true or false")
        return int(lowered in {"true", "1"})
    return raw
