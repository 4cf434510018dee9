"""The catalog backend: one ``Catalog`` class over SQLite or PostgreSQL (SQLAlchemy Core).

The same statements run on both databases. Opening a catalog migrates it to the newest schema
(alembic, configured in code). Writes are serialised: on SQLite each write transaction starts
with ``BEGIN IMMEDIATE`` (WAL mode, so readers in other processes never wait for it); on
PostgreSQL it takes a transaction-level advisory lock. Rows never leave this module: callers
get the typed records of ``catalog.model``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Row,
    Select,
    Subquery,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    make_url,
    select,
    update,
)
from sqlalchemy.exc import StatementError

from catalog.errors import CatalogError, LayerNotFound, LayerVersionNotFound
from catalog.model import (
    Agency,
    Decision,
    FieldInfo,
    IngestEntry,
    Layer,
    LayerVersion,
    Lineage,
    Repair,
    SearchHit,
)
from catalog.schema import agencies, ingest_entries, layer_versions, layers, search_tokens
from catalog.search import query_tokens, weighted_tokens

MIGRATIONS = Path(__file__).resolve().with_name("migrations")

#: How long (ms) a SQLite connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: PostgreSQL advisory lock that serialises catalog writes (and migrations) across processes.
_PG_WRITE_LOCK = 0x67656F706F7274  # "geoport"

_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
)

_DESCRIPTIVE = (
    "title",
    "title_en",
    "agency_name",
    "description",
    "category",
    "keywords",
    "license",
    "update_frequency",
    "style",
    "tileset",
)


def _json_dumps(value: Any) -> str:
    """JSON as stored: readable Chinese, compact, strict (no NaN: PostgreSQL refuses it)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per SQLite connection: let SQLAlchemy emit BEGIN; WAL, foreign keys, busy timeout."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Start a SQLite transaction: IMMEDIATE (take the write lock now) for catalog writes."""
    write = conn.get_execution_options().get("catalog_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_catalog_engine(url: str | URL) -> Engine:
    """An engine set up as the catalog needs it (SQLite: WAL, foreign keys, busy timeout).

    Args:
        url: ``sqlite:///abs/path.sqlite`` or ``postgresql+psycopg://user@host:5432/db``.

    Returns:
        The engine (no connection is made yet).
    """
    url = make_url(url)
    engine = create_engine(
        url,
        json_serializer=_json_dumps,
        pool_pre_ping=url.get_backend_name() == "postgresql",
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def migration_config(connection: Connection | None = None) -> Config:
    """The alembic configuration of the catalog, built in code (there is no alembic.ini).

    Args:
        connection: the connection to migrate, already in a transaction the caller commits.
            Without it, set the ``sqlalchemy.url`` main option before running a command.

    Returns:
        The configuration, ``script_location`` pointing at ``catalog/migrations``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def home_database_url(home: Path, url: str | None = None) -> str | URL:
    """The catalog database of a data home: ``url`` when given, else ``home/catalog.sqlite``.

    The catalog and the portal store share this database; the home is created if missing.
    """
    if url is not None:
        return url
    home.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str((home / "catalog.sqlite").resolve()))


def _now() -> datetime:
    return datetime.now(UTC)


def _check_version(version: LayerVersion) -> None:
    """Refuse versions the catalog must not store: paths leaving the home, naive times, NaNs."""
    what = f"version {version.version!r} of layer {version.layer_id!r}"
    path = version.path
    if (
        not path
        or PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).anchor
        or "\\" in path
        or ".." in PurePosixPath(path).parts
    ):
        raise CatalogError(
            f"{what}: path {path!r} must be relative to the data home and stay inside it"
        )
    if version.created.utcoffset() is None:
        raise CatalogError(f"{what}: created must be a timezone-aware (UTC) datetime")
    if version.bbox is not None and not all(math.isfinite(v) for v in version.bbox):
        raise CatalogError(f"{what}: bbox {version.bbox!r} must be four finite numbers")
    if not all(math.isfinite(d.confidence) for d in version.lineage.decisions):
        raise CatalogError(f"{what}: every decision's confidence must be a finite number")


def _layer_values(layer: Layer) -> dict[str, Any]:
    """The descriptive columns of a layer row."""
    return {
        "title": layer.title,
        "title_en": layer.title_en,
        "agency_name": layer.agency.name,
        "description": layer.description,
        "category": layer.category,
        "keywords": list(layer.keywords),
        "license": layer.license,
        "update_frequency": layer.update_frequency,
        "style": dict(layer.style),
        "tileset": layer.tileset,
    }


def _layer_texts(layer: Layer) -> dict[str, str | Sequence[str]]:
    """The searchable texts of a layer's metadata (the field names come with its version)."""
    return {
        "title": layer.title,
        "title_en": layer.title_en,
        "keywords": layer.keywords,
        "category": layer.category,
        "description": layer.description,
        "agency": (layer.agency.title, layer.agency.title_en),
    }


def _field_texts(fields: Iterable[FieldInfo]) -> dict[str, Sequence[str]]:
    """The searchable field names of a version (``*_raw`` copies left out)."""
    return {"fields": [f.name for f in fields if f.raw_of is None]}


def _version_values(version: LayerVersion) -> dict[str, Any]:
    """The columns of a layer_versions row."""
    bbox = version.bbox or (None, None, None, None)
    lineage = version.lineage
    return {
        "layer_id": version.layer_id,
        "version": version.version,
        "created": version.created,
        "kind": version.kind,
        "path": version.path,
        "geometry_type": version.geometry_type,
        "feature_count": version.feature_count,
        "bbox_minx": bbox[0],
        "bbox_miny": bbox[1],
        "bbox_maxx": bbox[2],
        "bbox_maxy": bbox[3],
        "source_crs": version.source_crs,
        "fields": [{"name": f.name, "type": f.type, "raw_of": f.raw_of} for f in version.fields],
        "lineage_source": lineage.source,
        "lineage_sublayer": lineage.sublayer,
        "lineage_source_hash": lineage.source_hash,
        "lineage_reader": lineage.reader,
        "lineage_decisions": [
            {
                "kind": d.kind,
                "value": d.value,
                "source": d.source,
                "confidence": d.confidence,
                "detail": d.detail,
            }
            for d in lineage.decisions
        ],
        "lineage_repairs": [
            {"kind": r.kind, "count": r.count, "detail": r.detail, "records": list(r.records)}
            for r in lineage.repairs
        ],
        "lineage_warnings": list(lineage.warnings),
        "size_bytes": version.size_bytes,
    }


def _row_to_version(row: Row[Any]) -> LayerVersion:
    """A LayerVersion from a layer_versions row."""
    m: Mapping[str, Any] = row._mapping
    bbox = None
    if m["bbox_minx"] is not None:
        bbox = (m["bbox_minx"], m["bbox_miny"], m["bbox_maxx"], m["bbox_maxy"])
    lineage = Lineage(
        source=m["lineage_source"],
        sublayer=m["lineage_sublayer"],
        source_hash=m["lineage_source_hash"],
        reader=m["lineage_reader"],
        decisions=tuple(Decision(**d) for d in m["lineage_decisions"]),
        repairs=tuple(
            Repair(**{**r, "records": tuple(r.get("records", ()))}) for r in m["lineage_repairs"]
        ),
        warnings=tuple(m["lineage_warnings"]),
    )
    return LayerVersion(
        layer_id=m["layer_id"],
        version=m["version"],
        created=m["created"],
        kind=m["kind"],
        path=m["path"],
        geometry_type=m["geometry_type"],
        feature_count=m["feature_count"],
        bbox=bbox,
        source_crs=m["source_crs"],
        fields=tuple(FieldInfo(**f) for f in m["fields"]),
        lineage=lineage,
        size_bytes=m["size_bytes"],
    )


def _layer_select() -> Select[Any]:
    """Layers joined with their agencies."""
    return select(
        layers,
        agencies.c.title.label("agency_title"),
        agencies.c.title_en.label("agency_title_en"),
    ).join_from(layers, agencies, layers.c.agency_name == agencies.c.name)


def _row_to_layer(row: Row[Any]) -> Layer:
    """A Layer from a row of ``_layer_select()``."""
    m: Mapping[str, Any] = row._mapping
    return Layer(
        id=m["id"],
        title=m["title"],
        agency=Agency(
            name=m["agency_name"], title=m["agency_title"], title_en=m["agency_title_en"]
        ),
        title_en=m["title_en"],
        description=m["description"],
        category=m["category"],
        keywords=tuple(m["keywords"]),
        license=m["license"],
        update_frequency=m["update_frequency"],
        style=dict(m["style"]),
        tileset=m["tileset"],
        current_version=m["current_version"],
        created=m["created"],
        modified=m["modified"],
    )


def _matches(tokens: Sequence[str]) -> Subquery:
    """Layers matching every token, with their score.

    A token's score in a layer is its best weight over the layer's fields; a layer's score is
    the sum over the query's tokens. Layers missing any token are left out.
    """
    per_token = (
        select(
            search_tokens.c.layer_id,
            search_tokens.c.token,
            func.max(search_tokens.c.weight).label("best"),
        )
        .where(search_tokens.c.token.in_(list(tokens)))
        .group_by(search_tokens.c.layer_id, search_tokens.c.token)
        .subquery("per_token")
    )
    return (
        select(per_token.c.layer_id, func.sum(per_token.c.best).label("score"))
        .group_by(per_token.c.layer_id)
        .having(func.count() == len(tokens))
        .subquery("matches")
    )


class Catalog:
    """The catalog of agencies, layers, their versions and lineage, with search.

    Args:
        url: ``sqlite:///abs/path.sqlite`` or ``postgresql+psycopg://user@host:5432/dbname``.
            The database is migrated to the newest schema on open.

    Open one catalog per process (worker processes open their own); SQLite allows many
    readers alongside the one writer.

    Raises:
        CatalogError: the database cannot be reached or migrated.

    Example:
        >>> with Catalog.open(home) as catalog:  # doctest: +SKIP
        ...     catalog.search("停車場")
    """

    def __init__(self, url: str | URL) -> None:
        self._engine = create_catalog_engine(url)
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def open(cls, home: Path, url: str | None = None) -> Catalog:
        """Open the catalog of a data home.

        Args:
            home: the data home; created if missing.
            url: a database URL; default the SQLite file ``home/catalog.sqlite``.

        Returns:
            The open catalog.
        """
        return cls(home_database_url(home, url))

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close the catalog's database connections."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"

    @contextmanager
    def _transaction(self, what: str, *, write: bool = True) -> Iterator[Connection]:
        """One transaction, committed at the end; database errors become CatalogError.

        Args:
            what: what it does, for error messages ("publish version … of layer …").
            write: take the catalog's write lock (SQLite: BEGIN IMMEDIATE).
        """
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(catalog_write=True)
                with conn.begin():
                    if write and conn.dialect.name == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(_PG_WRITE_LOCK)))
                    yield conn
        except StatementError as exc:  # DBAPIError, or a value the driver cannot take
            raise CatalogError(f"could not {what} ({self.url}): {exc.orig}") from exc

    def _migrate(self) -> None:
        """Bring the database to the newest schema (serialised against other processes)."""
        with self._transaction("migrate the catalog") as conn:
            command.upgrade(migration_config(conn), "head")

    # -- agencies ----------------------------------------------------------------------------

    def upsert_agency(self, agency: Agency) -> None:
        """Insert an agency or update its titles.

        Args:
            agency: the agency, identified by its ``name``.
        """
        with self._transaction(f"store agency {agency.name!r}") as conn:
            _put_agency(conn, agency)

    def agencies(self) -> list[Agency]:
        """All agencies, ordered by name.

        Returns:
            The agencies.
        """
        with self._transaction("list agencies", write=False) as conn:
            rows = conn.execute(select(agencies).order_by(agencies.c.name))
            return [Agency(name=r.name, title=r.title, title_en=r.title_en) for r in rows]

    # -- layers ------------------------------------------------------------------------------

    def upsert_layer(self, layer: Layer) -> Layer:
        """Insert a layer or update its descriptive metadata (and its agency).

        ``current_version``, ``created`` and ``modified`` of ``layer`` are ignored: the catalog
        keeps them. ``created`` is set on insert; ``modified`` on insert and whenever the
        metadata actually changes (storing the same metadata again changes nothing).

        Args:
            layer: the layer's metadata.

        Returns:
            The layer as stored.

        Raises:
            CatalogError: the metadata cannot be stored (e.g. a style that is not JSON).
        """
        try:
            _json_dumps(layer.style)
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"layer {layer.id!r}: style must be JSON data ({exc})") from exc
        with self._transaction(f"store layer {layer.id!r}") as conn:
            _put_agency(conn, layer.agency)
            values = _layer_values(layer)
            row = conn.execute(select(layers).where(layers.c.id == layer.id)).first()
            now = _now()
            if row is None:
                conn.execute(
                    insert(layers).values(
                        id=layer.id, current_version=None, created=now, modified=now, **values
                    )
                )
            elif any(getattr(row, name) != values[name] for name in _DESCRIPTIVE):
                conn.execute(
                    update(layers).where(layers.c.id == layer.id).values(modified=now, **values)
                )
            _reindex(conn, layer.id, _layer_texts(layer))
            return _get_layer(conn, layer.id)

    def get_layer(self, layer_id: str) -> Layer:
        """One layer.

        Args:
            layer_id: the layer's id.

        Returns:
            The layer.

        Raises:
            LayerNotFound: no layer has this id.
        """
        with self._transaction(f"read layer {layer_id!r}", write=False) as conn:
            return _get_layer(conn, layer_id)

    def layers(self) -> list[Layer]:
        """All layers, ordered by id.

        Returns:
            The layers.
        """
        with self._transaction("list layers", write=False) as conn:
            rows = conn.execute(_layer_select().order_by(layers.c.id))
            return [_row_to_layer(r) for r in rows]

    def delete_layer(self, layer_id: str) -> list[LayerVersion]:
        """Delete a layer with all its versions and search tokens (its agency stays).

        Args:
            layer_id: the layer's id.

        Returns:
            The deleted versions, newest first, so the caller can delete their files.

        Raises:
            LayerNotFound: no layer has this id.
        """
        with self._transaction(f"delete layer {layer_id!r}") as conn:
            gone = _versions(conn, layer_id)
            conn.execute(update(layers).where(layers.c.id == layer_id).values(current_version=None))
            conn.execute(delete(layers).where(layers.c.id == layer_id))
            return gone

    # -- versions ----------------------------------------------------------------------------

    def publish_version(self, version: LayerVersion, keep: int = 5) -> list[LayerVersion]:
        """Make a version the layer's current one, then prune old versions; all or nothing.

        In one transaction: store the version (unless this layer already has a version with
        this id: that one is kept as stored), make it current, bump the layer's ``modified``
        (unless it already was current) and re-index the field names; then delete the versions
        beyond the newest ``keep`` (by ``created``), never the current one. If anything fails,
        nothing changes and the previous current version stays current.

        Args:
            version: the version; its layer must be in the catalog.
            keep: how many of the newest versions to keep (the current one is always kept).

        Returns:
            The pruned versions, newest first: the caller deletes their files.

        Raises:
            LayerNotFound: the layer is not in the catalog.
            CatalogError: the version is invalid (path outside the home, naive time, ...) or the
                database refused it; nothing was changed.
            ValueError: ``keep`` is negative.
        """
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, got {keep}")
        _check_version(version)
        layer_id, name = version.layer_id, version.version
        with self._transaction(f"publish version {name!r} of layer {layer_id!r}") as conn:
            current = conn.scalars(
                select(layers.c.current_version).where(layers.c.id == layer_id)
            ).first()
            if current is None and not _layer_exists(conn, layer_id):
                raise LayerNotFound(layer_id)
            stored = _version_row(conn, layer_id, name)
            if stored is None:
                conn.execute(insert(layer_versions).values(**_version_values(version)))
                fields = version.fields
            else:
                fields = _row_to_version(stored).fields
            if current != name:
                conn.execute(
                    update(layers)
                    .where(layers.c.id == layer_id)
                    .values(current_version=name, modified=_now())
                )
                _reindex(conn, layer_id, _field_texts(fields))
            return _prune(conn, layer_id, name, keep)

    def current(self, layer_id: str) -> LayerVersion | None:
        """The layer's current version.

        Args:
            layer_id: the layer's id.

        Returns:
            The current version, or None if none was published yet.

        Raises:
            LayerNotFound: no layer has this id.
        """
        with self._transaction(f"read the current version of {layer_id!r}", write=False) as conn:
            joined = layers.outerjoin(
                layer_versions,
                and_(
                    layer_versions.c.layer_id == layers.c.id,
                    layer_versions.c.version == layers.c.current_version,
                ),
            )
            row = conn.execute(
                select(layers.c.current_version.label("_current"), layer_versions)
                .select_from(joined)
                .where(layers.c.id == layer_id)
            ).first()
            if row is None:
                raise LayerNotFound(layer_id)
            return None if row._current is None else _row_to_version(row)

    def change_marker(self) -> tuple[int, str]:
        """A cheap fingerprint of the layers table: (layer count, latest ``modified``).

        Every upsert and publish bumps a layer's ``modified`` and a delete changes the count,
        so an unchanged marker means nothing a client sees has changed.
        """
        with self._transaction("read the change marker", write=False) as conn:
            count, latest = conn.execute(
                select(func.count(), func.max(layers.c.modified)).select_from(layers)
            ).one()
            return int(count), str(latest)

    def current_all(self) -> dict[str, LayerVersion]:
        """Every layer's current version in one query: layer id → version (unpublished omitted).

        Returns:
            The current versions.
        """
        with self._transaction("read the current versions", write=False) as conn:
            joined = layers.join(
                layer_versions,
                and_(
                    layer_versions.c.layer_id == layers.c.id,
                    layer_versions.c.version == layers.c.current_version,
                ),
            )
            rows = conn.execute(select(layer_versions).select_from(joined))
            return {r.layer_id: _row_to_version(r) for r in rows}

    def version(self, layer_id: str, version: str) -> LayerVersion:
        """One version of a layer.

        Args:
            layer_id: the layer's id.
            version: the version's id.

        Returns:
            The version.

        Raises:
            LayerNotFound: no layer has this id.
            LayerVersionNotFound: the layer has no such version (any more).
        """
        with self._transaction(f"read version {version!r} of {layer_id!r}", write=False) as conn:
            row = _version_row(conn, layer_id, version)
            if row is not None:
                return _row_to_version(row)
            if not _layer_exists(conn, layer_id):
                raise LayerNotFound(layer_id)
            raise LayerVersionNotFound(layer_id, version)

    def versions(self, layer_id: str) -> list[LayerVersion]:
        """All stored versions of a layer, newest first.

        Args:
            layer_id: the layer's id.

        Returns:
            The versions, newest (by ``created``) first.

        Raises:
            LayerNotFound: no layer has this id.
        """
        with self._transaction(f"list versions of {layer_id!r}", write=False) as conn:
            return _versions(conn, layer_id)

    # -- search ------------------------------------------------------------------------------

    # -- ingest entries ----------------------------------------------------------------------

    def entry(self, entry_id: str) -> IngestEntry | None:
        """What a manifest entry yielded the last time it was ingested (None if never).

        Args:
            entry_id: the manifest entry's id.

        Returns:
            The recorded entry, or None.
        """
        with self._transaction(f"read ingest entry {entry_id!r}", write=False) as conn:
            row = conn.execute(
                select(ingest_entries).where(ingest_entries.c.id == entry_id)
            ).first()
        if row is None:
            return None
        units = tuple((str(a), str(b)) for a, b in row.units)
        return IngestEntry(row.id, row.source_hash, units, bool(row.complete), row.updated)

    def record_entry(self, entry: IngestEntry) -> None:
        """Insert or replace what a manifest entry yielded.

        Args:
            entry: the entry's state after an ingest.
        """
        values = {
            "source_hash": entry.source_hash,
            "units": [list(u) for u in entry.units],
            "complete": entry.complete,
            "updated": entry.updated,
        }
        with self._transaction(f"record ingest entry {entry.id!r}") as conn:
            done = conn.execute(
                update(ingest_entries).where(ingest_entries.c.id == entry.id).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(ingest_entries).values(id=entry.id, **values))

    def search(self, query: str, limit: int = 50, offset: int = 0) -> list[SearchHit]:
        """Search layers; Chinese needs no spaces.

        Searched: title, English title, keywords, agency, category, description and the
        current version's field names. Every token of the query must match (a space means
        AND). Hits are ordered by score (title > keywords > agency/category > description/field
        names), then by id. An empty query returns all layers, ordered by id, with score 0.

        Args:
            query: what the user typed, e.g. ``"臺中 停車場"``.
            limit: at most this many hits.
            offset: skip this many hits first (paging).

        Returns:
            The hits.

        Raises:
            ValueError: ``limit`` or ``offset`` is negative.
        """
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be 0 or more, got {limit} and {offset}")
        tokens = query_tokens(query)
        with self._transaction(f"search the catalog for {query!r}", write=False) as conn:
            if not tokens:
                stmt = _layer_select().order_by(layers.c.id).limit(limit).offset(offset)
                return [SearchHit(_row_to_layer(r), 0.0) for r in conn.execute(stmt)]
            matches = _matches(tokens)
            stmt = (
                _layer_select()
                .add_columns(matches.c.score.label("_score"))
                .join(matches, matches.c.layer_id == layers.c.id)
                .order_by(matches.c.score.desc(), layers.c.id)
                .limit(limit)
                .offset(offset)
            )
            return [SearchHit(_row_to_layer(r), float(r._score)) for r in conn.execute(stmt)]

    def count(self, query: str) -> int:
        """How many layers ``search(query)`` finds in all.

        Args:
            query: as for ``search``.

        Returns:
            The number of matching layers (all layers for an empty query).
        """
        tokens = query_tokens(query)
        with self._transaction(f"count the catalog's hits for {query!r}", write=False) as conn:
            if not tokens:
                return conn.scalar(select(func.count()).select_from(layers)) or 0
            return conn.scalar(select(func.count()).select_from(_matches(tokens))) or 0


def _put_agency(conn: Connection, agency: Agency) -> None:
    """Insert or update an agency; re-index its layers' agency tokens when titles change.

    An agency given without an English title keeps the one stored (a manifest entry names the
    agency in Chinese only; the English title comes from elsewhere, e.g. the portal's API).
    """
    row = conn.execute(select(agencies).where(agencies.c.name == agency.name)).first()
    if row is None:
        conn.execute(insert(agencies).values(**_agency_values(agency), created=_now()))
        return
    if not agency.title_en and row.title_en:
        agency = replace(agency, title_en=row.title_en)
    if (row.title, row.title_en) == (agency.title, agency.title_en):
        return
    conn.execute(
        update(agencies).where(agencies.c.name == agency.name).values(**_agency_values(agency))
    )
    layer_ids = conn.scalars(select(layers.c.id).where(layers.c.agency_name == agency.name))
    texts = {"agency": (agency.title, agency.title_en)}
    for layer_id in layer_ids.all():
        _reindex(conn, layer_id, texts)


def _agency_values(agency: Agency) -> dict[str, str]:
    return {"name": agency.name, "title": agency.title, "title_en": agency.title_en}


def _layer_exists(conn: Connection, layer_id: str) -> bool:
    return conn.scalar(select(layers.c.id).where(layers.c.id == layer_id)) is not None


def _get_layer(conn: Connection, layer_id: str) -> Layer:
    row = conn.execute(_layer_select().where(layers.c.id == layer_id)).first()
    if row is None:
        raise LayerNotFound(layer_id)
    return _row_to_layer(row)


def _version_row(conn: Connection, layer_id: str, version: str) -> Row[Any] | None:
    return conn.execute(
        select(layer_versions).where(
            layer_versions.c.layer_id == layer_id, layer_versions.c.version == version
        )
    ).first()


def _version_rows(conn: Connection, layer_id: str) -> list[Row[Any]]:
    """A layer's version rows, newest first (by created, then by insertion)."""
    return list(
        conn.execute(
            select(layer_versions)
            .where(layer_versions.c.layer_id == layer_id)
            .order_by(layer_versions.c.created.desc(), layer_versions.c.id.desc())
        )
    )


def _versions(conn: Connection, layer_id: str) -> list[LayerVersion]:
    rows = _version_rows(conn, layer_id)
    if not rows and not _layer_exists(conn, layer_id):
        raise LayerNotFound(layer_id)
    return [_row_to_version(r) for r in rows]


def _prune(conn: Connection, layer_id: str, current: str, keep: int) -> list[LayerVersion]:
    """Delete the versions beyond the newest ``keep``, never ``current``; return them."""
    doomed = [r for r in _version_rows(conn, layer_id)[keep:] if r.version != current]
    if doomed:
        conn.execute(delete(layer_versions).where(layer_versions.c.id.in_([r.id for r in doomed])))
    return [_row_to_version(r) for r in doomed]


def _reindex(conn: Connection, layer_id: str, texts: Mapping[str, str | Sequence[str]]) -> None:
    """Replace a layer's search tokens of the given fields."""
    conn.execute(
        delete(search_tokens).where(
            search_tokens.c.layer_id == layer_id, search_tokens.c.field.in_(list(texts))
        )
    )
    rows = [
        {"layer_id": layer_id, "field": field, "token": token, "weight": weight}
        for field, token, weight in weighted_tokens(texts)
    ]
    if rows:
        conn.execute(insert(search_tokens), rows)
