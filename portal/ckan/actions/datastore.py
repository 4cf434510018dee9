"""The DataStore: tabular rows of a resource, searchable (``datastore_create``/``_search``).

Rows sent with ``datastore_create`` live in a table of the catalog database named after the
resource (``datastore_<hash of the id>``), built with SQLAlchemy Core from the declared fields:
column names are checked against the declared fields, values are always bound parameters, and
no SQL is ever assembled from request text. A catalog layer's generated CSV resource needs no
``datastore_create``: ``datastore_search`` reads the layer's stored GeoPackage (table
``features``) read-only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from portal.ckan import auth
from portal.ckan.actions import write
from portal.ckan.actions.registry import (
    Context,
    Invalid,
    Schema,
    boolean_validator,
    default,
    ignore_missing,
    json_object,
    limit_to,
    natural_number_validator,
    not_empty,
    one_of,
    unicode_safe,
)
from portal.ckan.errors import NotFound, ValidationError
from portal.ckan.model import Dataset, Resource

#: DataStore field types (CKAN's names) → how they are stored; aliases map to the first name.
TYPES: dict[str, str] = {
    "text": "text",
    "int": "int",
    "int4": "int",
    "int8": "int",
    "integer": "int",
    "bigint": "int",
    "numeric": "numeric",
    "float": "numeric",
    "float8": "numeric",
    "double": "numeric",
    "bool": "bool",
    "boolean": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "json": "json",
}

#: ``limit`` of ``datastore_search`` is capped here (CKAN's ``ckan.datastore.search.rows_max``).
ROWS_MAX = 32000


@dataclass(frozen=True)
class Field:
    """A DataStore column: its id (name) and CKAN type."""

    id: str
    type: str


@dataclass(frozen=True)
class Source:
    """What ``datastore_search`` reads: a table, its fields, and the column behind ``_id``."""

    table: Table
    fields: tuple[Field, ...]
    id_column: str


# -- fields and values -----------------------------------------------------------------------


def _fields(raw: Any) -> tuple[Field, ...]:
    """Declared fields: ``[{"id": ..., "type": ...}]``; ids unique, not ``_``-prefixed."""
    if not isinstance(raw, list):
        raise ValidationError({"fields": ["fields must be a list of {id, type}"]})
    out: list[Field] = []
    for item in raw:
        fid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(fid, str) or not fid or fid.startswith("_") or '"' in fid:
            raise ValidationError({"fields": [f"{fid!r} is not a valid field name"]})
        if len(fid) > 63:
            raise ValidationError({"fields": [f'Field name "{fid}" is longer than 63 characters']})
        kind = str(item.get("type") or "text").lower()
        if kind not in TYPES:
            raise ValidationError({"fields": [f'"{kind}" is not a valid field type']})
        if any(f.id == fid for f in out):
            raise ValidationError({"fields": [f'Duplicate field name "{fid}"']})
        out.append(Field(fid, TYPES[kind]))
    return tuple(out)


def _column(f: Field) -> Column:
    kind = {
        "int": BigInteger,
        "numeric": Double,
        "bool": Boolean,
        "json": JSON,
    }.get(f.type, Text)
    return Column(f.id, kind(), nullable=True)


def _value(f: Field, value: Any, row: int) -> Any:
    """A record's value converted to its field's type (None stays None)."""
    if value is None or (value == "" and f.type != "text"):
        return None
    try:
        if f.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if f.type == "numeric":
            return float(value)
        if f.type == "bool":
            return boolean_validator(value)
        if f.type == "date":
            return date.fromisoformat(str(value)[:10]).isoformat()
        if f.type == "timestamp":
            return datetime.fromisoformat(str(value)).isoformat()
        if f.type == "json":
            return value
    except (TypeError, ValueError):
        raise ValidationError(
            {"records": [f"row {row}: {value!r} is not a valid {f.type} for field {f.id!r}"]}
        ) from None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rows(fields: Sequence[Field], records: Any) -> list[dict[str, Any]]:
    if not isinstance(records, list):
        raise ValidationError({"records": ["records must be a list of objects"]})
    by_id = {f.id: f for f in fields}
    rows = []
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise ValidationError({"records": [f"row {n} is not an object"]})
        unknown = [k for k in rec if k not in by_id]
        if unknown:
            raise ValidationError({"records": [f'row {n} has extra keys "{", ".join(unknown)}"']})
        rows.append({k: _value(by_id[k], v, n) for k, v in rec.items()})
    return rows


def table_name(resource_id: str) -> str:
    """The name of a resource's DataStore table (derived from its id, never from text)."""
    return "datastore_" + hashlib.sha256(resource_id.encode("utf-8")).hexdigest()[:32]


def _table(name: str, fields: Sequence[Field]) -> Table:
    return Table(
        name,
        MetaData(),
        Column("_id", Integer, primary_key=True, autoincrement=True),
        *(_column(f) for f in fields),
    )


# -- the registry of DataStore tables --------------------------------------------------------


def _registered(conn: Connection, resource_id: str) -> tuple[str, tuple[Field, ...], list] | None:
    from catalog.schema import portal_datastore

    row = conn.execute(
        select(portal_datastore).where(portal_datastore.c.resource_id == resource_id)
    ).first()
    if row is None:
        return None
    return row.table_name, tuple(Field(f["id"], f["type"]) for f in row.fields), row.primary_key


def _register(
    conn: Connection, resource_id: str, fields: Sequence[Field], primary_key: list[str]
) -> None:
    from catalog.schema import portal_datastore

    conn.execute(
        insert(portal_datastore).values(
            resource_id=resource_id,
            table_name=table_name(resource_id),
            fields=[{"id": f.id, "type": f.type} for f in fields],
            primary_key=primary_key,
            created=datetime.now(UTC),
        )
    )


def _primary_key(raw: Any, fields: Sequence[Field]) -> list[str]:
    if raw in (None, "", []):
        return []
    keys = raw.split(",") if isinstance(raw, str) else raw
    keys = [str(k).strip() for k in keys]
    names = {f.id for f in fields}
    bad = [k for k in keys if k not in names]
    if bad:
        raise ValidationError({"primary_key": [f'field "{bad[0]}" not in table']})
    return keys


def _upsert(conn: Connection, table: Table, rows: list[dict], primary_key: list[str]) -> None:
    if primary_key:
        missing = [n for n, r in enumerate(rows, 1) if any(r.get(k) is None for k in primary_key)]
        if missing:
            raise ValidationError({"records": [f"row {missing[0]}: primary key value missing"]})
        keys = [tuple(r[k] for k in primary_key) for r in rows]
        if len(set(keys)) != len(keys):
            raise ValidationError({"records": ["primary key values repeat among the records"]})
        cols = tuple_(*(table.c[k] for k in primary_key))
        for start in range(0, len(keys), 500):
            conn.execute(delete(table).where(cols.in_(keys[start : start + 500])))
    if rows:
        conn.execute(insert(table), rows)


def auth_datastore_create(ctx: Context, data: dict) -> None:
    """Who may load rows: editors of the resource's dataset, or of ``resource.package_id``.

    Args:
        ctx: the context.
        data: the validated request.

    Raises:
        NotAuthorized: the caller may not edit the dataset.
    """
    if not data.get("resource_id") and isinstance(data.get("resource"), dict):
        auth.auth_resource_create(ctx, {"package_id": data["resource"].get("package_id") or ""})
    else:
        auth.auth_resource_update_rows(ctx, data)


def _target(ctx: Context, data: dict) -> Resource:
    """The resource ``datastore_create`` writes to, creating it when ``resource`` is given.

    As in CKAN, a new resource made here has no file of its own: its URL is where its rows
    are read (``datastore_search``).

    Raises:
        ValidationError: neither or both of ``resource_id`` and ``resource``.
    """
    if data.get("resource_id"):
        if data.get("resource") is not None:
            raise ValidationError({"resource": ["Cannot specify both resource and resource_id"]})
        return ctx.store.resource(data["resource_id"])
    if data.get("resource") is None:
        raise ValidationError({"resource_id": ["Missing value"]})
    posted = data["resource"]
    if not posted.get("package_id"):
        raise ValidationError({"resource": {"package_id": ["Missing value"]}})
    placeholder = {**posted, "url": posted.get("url") or "/api/3/action/datastore_search"}
    made = write.resource_create(ctx, placeholder)
    res = ctx.store.resource(made["id"])
    if not posted.get("url"):
        url = f"/api/3/action/datastore_search?resource_id={res.id}"
        res = ctx.store.put_resource(replace(res, url=url))
    return res


def datastore_create(ctx: Context, data: dict) -> dict:
    """Create a resource's DataStore table and/or add rows to it.

    Args:
        ctx: the context.
        data: ``resource_id`` (an existing resource) or ``resource`` (a resource dict for
            ``resource_create``: a new DataStore-only resource), ``fields`` (``[{"id", "type"}]``,
            types text, int, numeric, bool, date, timestamp, json; needed the first time),
            ``records`` (a list of objects), ``primary_key`` (field ids; rows with the same
            key are replaced), ``force`` (accepted for compatibility).

    Returns:
        ``resource_id``, ``fields``, ``primary_key`` and ``method`` (records left out).
    """
    res = _target(ctx, data)
    if res.generated:
        raise ValidationError(
            {
                "resource_id": [
                    f"Resource {res.id} is generated from a catalog layer: its rows are the "
                    "layer's features (datastore_search reads them)"
                ]
            }
        )
    with ctx.store.transaction() as conn:
        known = _registered(conn, res.id)
        if known is None:
            fields = _fields(data.get("fields"))
            if not fields:
                raise ValidationError({"fields": ["Missing value"]})
            primary_key = _primary_key(data.get("primary_key"), fields)
            table = _table(table_name(res.id), fields)
            table.create(conn)
            _register(conn, res.id, fields, primary_key)
        else:
            name, fields, primary_key = known
            if data.get("fields") is not None:
                declared = _fields(data["fields"])
                if [f.id for f in declared] != [f.id for f in fields]:
                    raise ValidationError(
                        {"fields": ["fields differ from the table's; create a new resource"]}
                    )
            table = _table(name, fields)
        _upsert(conn, table, _rows(fields, data.get("records", [])), primary_key)
    if not res.datastore_active:
        ctx.store.put_resource(replace(res, datastore_active=True))
        ctx.portal.invalidate()
    return {
        "resource_id": res.id,
        "fields": [{"id": f.id, "type": f.type} for f in fields],
        "primary_key": primary_key,
        "method": "upsert" if primary_key else "insert",
    }


# -- searching ---------------------------------------------------------------------------------


_SQL_TYPES = (
    ("INT", "int"),
    ("REAL", "numeric"),
    ("FLOA", "numeric"),
    ("DOUB", "numeric"),
    ("NUM", "numeric"),
    ("BOOL", "bool"),
    ("DATETIME", "timestamp"),
    ("TIMESTAMP", "timestamp"),
    ("DATE", "date"),
)


def _ckan_type(sql_type: str) -> str:
    upper = sql_type.upper()
    return next((t for key, t in _SQL_TYPES if key in upper), "text")


@contextmanager
def _layer_source(path: Path) -> Iterator[tuple[Connection, Source]]:
    """A layer's stored GeoPackage, opened read-only: attribute columns of ``features``."""
    engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            geometry = set()
            if inspect(conn).has_table("gpkg_geometry_columns"):
                geometry = {
                    r[0]
                    for r in conn.exec_driver_sql(
                        "SELECT column_name FROM gpkg_geometry_columns "
                        "WHERE lower(table_name) = 'features'"
                    )
                }
            table = Table("features", MetaData(), autoload_with=conn)
            pk = next((c.name for c in table.columns if c.primary_key), "fid")
            fields = tuple(
                Field(c.name, _ckan_type(str(c.type)))
                for c in table.columns
                if c.name not in geometry and c.name != pk
            )
            yield conn, Source(table, fields, pk)
    finally:
        engine.dispose()


def _layer_store(ctx: Context, ds: Dataset, res: Resource) -> Path | None:
    """The stored GeoPackage behind a layer dataset's generated CSV, if that is what it is."""
    if not (res.generated and ds.layer_id and res.format.upper() == "CSV"):
        return None
    version = ctx.portal.layer_version(ds.layer_id)
    if version is None or not version.path.endswith(".gpkg"):
        return None
    path = ctx.home / version.path
    return path if path.is_file() else None


@contextmanager
def _source(ctx: Context, res: Resource) -> Iterator[tuple[Connection, Source]]:
    with ctx.store.transaction(write=False) as conn:
        known = _registered(conn, res.id)
        if known is not None:
            name, fields, _ = known
            yield conn, Source(_table(name, fields), fields, "_id")
            return
    path = _layer_store(ctx, ctx.store.dataset(res.package_id), res)
    if path is None:
        raise NotFound(f'Resource "{res.id}" was not found.')
    with _layer_source(path) as found:
        yield found


def _column_of(source: Source, name: str, param: str) -> ColumnElement:
    if name == "_id":
        return source.table.c[source.id_column]
    if name not in {f.id for f in source.fields}:
        raise ValidationError({param: [f'field "{name}" not in table']})
    return source.table.c[name]


def _like(column: ColumnElement, text: str) -> ColumnElement:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(func.cast(column, String)).like(f"%{escaped}%", escape="\\")


def _where(source: Source, data: dict) -> list[ColumnElement]:
    conds: list[ColumnElement] = []
    for name, value in (data.get("filters") or {}).items():
        column = _column_of(source, name, "filters")
        values = value if isinstance(value, list) else [value]
        conds.append(or_(*(func.cast(column, String) == str(v) for v in values)))
    q = data.get("q")
    if isinstance(q, dict):
        for name, text in q.items():
            conds.append(_like(_column_of(source, name, "q"), str(text)))
    elif q:
        columns = [source.table.c[f.id] for f in source.fields]
        for word in str(q).split():
            conds.append(or_(*(_like(c, word) for c in columns)))
    return conds


def _order(source: Source, sort: str) -> list[ColumnElement]:
    order = []
    for part in (p.strip() for p in sort.split(",") if p.strip()):
        name, _, direction = part.rpartition(" ") if " " in part else (part, "", "asc")
        name = name.strip().strip('"')
        direction = direction.strip().lower()
        if direction not in ("asc", "desc"):
            raise ValidationError({"sort": [f'invalid sort direction "{direction}"']})
        column = _column_of(source, name, "sort")
        order.append(column.desc() if direction == "desc" else column.asc())
    return order or [source.table.c[source.id_column].asc()]


def _selected(source: Source, fields: list[str] | None) -> list[Field]:
    all_fields = [Field("_id", "int"), *source.fields]
    if not fields:
        return all_fields
    known = {f.id: f for f in all_fields}
    bad = [f for f in fields if f not in known]
    if bad:
        raise ValidationError({"fields": [f'field "{bad[0]}" not in table']})
    return [known[f] for f in fields]


def _record(row: Any, fields: Sequence[Field]) -> dict:
    out = {}
    for f, value in zip(fields, row, strict=True):
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[f.id] = value
    return out


def _search(conn: Connection, source: Source, data: dict) -> dict:
    fields = _selected(source, data.get("fields"))
    columns = [_column_of(source, f.id, "fields") for f in fields]
    where = _where(source, data)
    conds = and_(*where) if where else None
    stmt = select(*columns).order_by(*_order(source, data.get("sort", "")))
    if conds is not None:
        stmt = stmt.where(conds)
    stmt = stmt.limit(data["limit"]).offset(data["offset"])
    rows = [_record(r, fields) for r in conn.execute(stmt)]
    out: dict[str, Any] = {
        "fields": [{"id": f.id, "type": f.type} for f in fields],
        "records": rows
        if data["records_format"] == "objects"
        else [list(r.values()) for r in rows],
    }
    if data["include_total"]:
        count = select(func.count()).select_from(source.table)
        out["total"] = conn.scalar(count.where(conds) if conds is not None else count)
        out["total_was_estimated"] = False
    return out


def datastore_search(ctx: Context, data: dict) -> dict:
    """Search a resource's rows (its DataStore table, or a layer's stored features).

    Args:
        ctx: the context.
        data: ``resource_id``; ``q`` (text: every word must occur in some field; or an
            object field → text); ``filters`` (field → value or list of values, exact);
            ``fields`` (list or comma-separated ids); ``sort`` (``"field asc, other desc"``);
            ``limit`` (default 100, at most 32000); ``offset``; ``include_total`` (default
            true); ``records_format`` (``objects`` or ``lists``).

    Returns:
        ``resource_id``, ``fields`` (with types), ``records``, ``total``, ``limit``,
        ``offset`` and ``_links`` (start, next).
    """
    res = ctx.store.resource(data["resource_id"])
    with _source(ctx, res) as (conn, source):
        out = _search(conn, source, data)
    base = f"/api/3/action/datastore_search?resource_id={res.id}"
    out.update(
        resource_id=res.id,
        limit=data["limit"],
        offset=data["offset"],
        records_format=data["records_format"],
        include_total=data["include_total"],
        _links={
            "start": base,
            "next": f"{base}&offset={data['offset'] + data['limit']}",
        },
    )
    if data.get("q"):
        out["q"] = data["q"]
    if data.get("filters"):
        out["filters"] = data["filters"]
    if data.get("sort"):
        out["sort"] = data["sort"]
    return out


def _q(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        return json_object(value)
    return unicode_safe(value)


def _field_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else value.split(",")
    if not isinstance(value, list):
        raise Invalid("Must be a list of field ids")
    return [str(v).strip() for v in value if str(v).strip()]


SCHEMAS: dict[str, Schema] = {
    "datastore_create": {
        "resource_id": [ignore_missing, unicode_safe],
        "resource": [ignore_missing, json_object],
        "force": [boolean_validator],
    },
    "datastore_search": {
        "resource_id": [not_empty, unicode_safe],
        "q": [ignore_missing, _q],
        "filters": [ignore_missing, json_object],
        "fields": [ignore_missing, _field_list],
        "sort": [ignore_missing, unicode_safe],
        "limit": [default(100), natural_number_validator, limit_to(ROWS_MAX)],
        "offset": [default(0), natural_number_validator],
        "include_total": [default(True), boolean_validator],
        "records_format": [default("objects"), one_of(("objects", "lists"))],
    },
}
