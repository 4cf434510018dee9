"""The portal's storage: datasets, resources, organizations, groups, users, roles and tokens.

:class:`PortalStore` keeps the open-data portal in the catalog's own database (SQLite in the
data home, or PostgreSQL), in the ``portal_*`` tables of ``catalog.schema``; organizations are
the catalog's ``agencies``. Rows never leave this module: callers get the typed records of
``portal.ckan.model``. Every write bumps one revision counter (:meth:`PortalStore.change_marker`)
so caches such as the search index know when to rebuild.

Passwords are stored as scrypt hashes and API tokens as SHA-256 hashes: a token is shown once,
when it is created, and cannot be read back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    MetaData,
    Row,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import StatementError

from catalog.db import Catalog, create_catalog_engine, home_database_url
from catalog.schema import (
    agencies,
    portal_datasets,
    portal_datastore,
    portal_groups,
    portal_members,
    portal_meta,
    portal_resources,
    portal_tokens,
    portal_users,
)
from catalog.view import Snapshot
from portal.ckan.errors import CkanError, NotFound, ValidationError
from portal.ckan.layers import dataset_of_layer, organization_id
from portal.ckan.model import (
    ROLES,
    ApiToken,
    Dataset,
    Group,
    Membership,
    Organization,
    Resource,
    User,
)

log = logging.getLogger("portal.ckan")

#: Key prefix, in ``portal_meta``, of an upload's claim on a layer id (see ``claim_layer``).
_CLAIM = "adopt:"

#: PostgreSQL advisory lock serialising portal writes across processes.
_PG_PORTAL_LOCK = 0x706F7274616C  # "portal"

#: scrypt parameters of stored password hashes (n, r, p).
_SCRYPT = (2**14, 8, 1)

#: A token's ``last_access`` is rewritten at most this often (one write per request is waste).
_ACCESS_RESOLUTION = timedelta(minutes=1)

_DATASET_TEXT = (
    "name",
    "title",
    "owner_org",
    "notes",
    "title_en",
    "private",
    "state",
    "license_id",
    "url",
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "category",
    "update_frequency",
    "fields_description",
    "spatial",
    "layer_id",
    "layer_version",
    "source",
    "creator_user_id",
)


class StoreError(CkanError):
    """The portal database refused or failed an operation (answered as 500)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """A salted scrypt hash of a password, as stored.

    Args:
        password: the password.

    Returns:
        ``scrypt$n$r$p$salt$hash`` (hex).
    """
    n, r, p = _SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password`.

    Args:
        password: the password given.
        stored: the stored hash.

    Returns:
        True when they match.
    """
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        mine = hashlib.scrypt(
            password.encode("utf-8"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(mine.hex(), digest)


# -- rows ⇄ records --------------------------------------------------------------------------


def _dataset_values(ds: Dataset) -> dict[str, Any]:
    values = {name: getattr(ds, name) for name in _DATASET_TEXT}
    values.update(
        id=ds.id,
        tags=list(ds.tags),
        groups=list(ds.groups),
        extras=[[k, v] for k, v in ds.extras],
        metadata_created=ds.metadata_created,
        metadata_modified=ds.metadata_modified,
    )
    return values


def _row_to_dataset(row: Row[Any], resources: tuple[Resource, ...]) -> Dataset:
    m: Mapping[str, Any] = row._mapping
    return Dataset(
        id=m["id"],
        tags=tuple(m["tags"]),
        groups=tuple(m["groups"]),
        extras=tuple((str(k), str(v)) for k, v in m["extras"]),
        resources=resources,
        metadata_created=m["metadata_created"],
        metadata_modified=m["metadata_modified"],
        **{name: m[name] for name in _DATASET_TEXT},
    )


def _resource_values(res: Resource, position: int) -> dict[str, Any]:
    return {
        "id": res.id,
        "package_id": res.package_id,
        "name": res.name,
        "url": res.url,
        "format": res.format,
        "kind": res.kind,
        "description": res.description,
        "mimetype": res.mimetype,
        "size": res.size,
        "position": position,
        "generated": res.generated,
        "encoding": res.encoding,
        "extras": [[k, v] for k, v in res.extras],
        "created": res.created,
        "last_modified": res.last_modified,
        "datastore_active": res.datastore_active,
    }


def _row_to_resource(row: Row[Any]) -> Resource:
    m: Mapping[str, Any] = row._mapping
    return Resource(
        id=m["id"],
        package_id=m["package_id"],
        name=m["name"],
        url=m["url"],
        format=m["format"],
        kind=m["kind"],
        description=m["description"],
        mimetype=m["mimetype"],
        size=m["size"],
        position=m["position"],
        generated=bool(m["generated"]),
        encoding=m["encoding"],
        extras=tuple((str(k), str(v)) for k, v in m["extras"]),
        created=m["created"],
        last_modified=m["last_modified"],
        datastore_active=bool(m["datastore_active"]),
    )


def _row_to_organization(row: Row[Any]) -> Organization:
    return Organization(
        id=organization_id(row.name),
        name=row.name,
        title=row.title,
        title_en=row.title_en,
        description=row.description,
        image_url=row.image_url,
        created=row.created,
        state=row.state,
    )


def _row_to_group(row: Row[Any]) -> Group:
    return Group(
        id=row.id,
        name=row.name,
        title=row.title,
        title_en=row.title_en,
        description=row.description,
        image_url=row.image_url,
        created=row.created,
        state=row.state,
    )


def _row_to_user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        fullname=row.fullname,
        email=row.email,
        sysadmin=bool(row.sysadmin),
        state=row.state,
        created=row.created,
    )


def _with_id(dataset: Dataset, dataset_id: str) -> Dataset:
    """The dataset under another id (its resources pointing at it)."""
    resources = tuple(replace(r, package_id=dataset_id) for r in dataset.resources)
    return replace(dataset, id=dataset_id, resources=resources)


def _same_content(a: Dataset, b: Dataset) -> bool:
    """Equal but for the timestamps (a rewrite would change nothing a client sees)."""
    return replace(a, metadata_created=None, metadata_modified=None) == replace(
        b, metadata_created=None, metadata_modified=None
    )


class PortalStore:
    """The portal's records in the catalog database.

    Args:
        url: the catalog database URL (``sqlite:///…`` or ``postgresql+psycopg://…``); it is
            migrated to the newest schema first.

    Raises:
        CatalogError: the database cannot be reached or migrated.
    """

    def __init__(self, url: str | URL) -> None:
        Catalog(url).close()  # migrates the database (portal tables included) to the head
        self._engine: Engine = create_catalog_engine(url)

    @classmethod
    def open(cls, home: Path, url: str | None = None) -> PortalStore:
        """Open the portal store of a data home (the same database as its catalog).

        Args:
            home: the data home.
            url: a database URL; default the SQLite file ``home/catalog.sqlite``.

        Returns:
            The open store.
        """
        return cls(home_database_url(home, url))

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (the DataStore keeps its tables in the same database)."""
        return self._engine

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()

    @contextmanager
    def transaction(self, *, write: bool = True, bump: bool = True) -> Iterator[Connection]:
        """One transaction, committed at the end; a write bumps the portal's revision.

        Args:
            write: take the write lock (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL advisory
                lock) and bump the revision counter.
            bump: with ``write``, bump the revision (False for bookkeeping no client sees).

        Yields:
            The connection.

        Raises:
            StoreError: the database failed.
        """
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(catalog_write=True)
                with conn.begin():
                    if write and conn.dialect.name == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(_PG_PORTAL_LOCK)))
                    yield conn
                    if write and bump:
                        _bump(conn)
        except StatementError as exc:
            raise StoreError(f"the portal database failed: {exc.orig}") from exc

    def change_marker(self) -> int:
        """The portal's revision: it changes whenever anything in the portal changed."""
        with self.transaction(write=False) as conn:
            value = conn.scalar(select(portal_meta.c.value).where(portal_meta.c.key == "revision"))
            return int(value or 0)

    # -- datasets ----------------------------------------------------------------------------

    def dataset(self, name_or_id: str) -> Dataset:
        """One dataset, by name or id (deleted ones included).

        Args:
            name_or_id: the dataset's name or id.

        Returns:
            The dataset.

        Raises:
            NotFound: no such dataset.
        """
        with self.transaction(write=False) as conn:
            return _get_dataset(conn, name_or_id)

    def datasets(
        self, include_private: bool = True, include_deleted: bool = False
    ) -> list[Dataset]:
        """All datasets, ordered by name.

        Args:
            include_private: include private datasets.
            include_deleted: include deleted datasets.

        Returns:
            The datasets with their resources.
        """
        stmt = select(portal_datasets).order_by(portal_datasets.c.name)
        if not include_private:
            stmt = stmt.where(portal_datasets.c.private.is_(False))
        if not include_deleted:
            stmt = stmt.where(portal_datasets.c.state == "active")
        with self.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
            grouped: dict[str, list[Resource]] = {}
            res_stmt = select(portal_resources).order_by(
                portal_resources.c.package_id, portal_resources.c.position
            )
            for r in conn.execute(res_stmt):
                grouped.setdefault(r.package_id, []).append(_row_to_resource(r))
        return [_row_to_dataset(r, tuple(grouped.get(r.id, ()))) for r in rows]

    def dataset_by_layer(self, layer_id: str) -> Dataset | None:
        """The dataset presenting a catalog layer, if any.

        Args:
            layer_id: the layer's id.

        Returns:
            The dataset, or None.
        """
        with self.transaction(write=False) as conn:
            row = conn.execute(
                select(portal_datasets.c.id).where(portal_datasets.c.layer_id == layer_id)
            ).first()
            return None if row is None else _get_dataset(conn, row.id)

    def put_dataset(self, dataset: Dataset, touch: bool = True) -> Dataset:
        """Insert a dataset or replace it (by id), with all its resources.

        ``metadata_modified`` is set to now (with ``touch``; without it the stored value is
        kept, for writes that change nothing a publisher did, such as quality labels);
        ``metadata_created`` is kept from the stored dataset (or taken from ``dataset``, or
        now). Resources are renumbered in their order.

        Args:
            dataset: the dataset.
            touch: set ``metadata_modified`` to now; False keeps the stored value (or the one
                ``dataset`` carries, or now, for a new dataset).

        Returns:
            The dataset as stored.

        Raises:
            ValidationError: its name is taken by another dataset, or its organization does
                not exist.
        """
        with self.transaction() as conn:
            _write_dataset(conn, dataset, _now(), touch)
            return _get_dataset(conn, dataset.id)

    def put_datasets(self, datasets: Iterable[Dataset], touch: bool = True) -> int:
        """Insert or replace many datasets in one transaction (one revision bump).

        Each is written as :meth:`put_dataset` writes it; a bulk import of thousands of
        datasets costs one commit instead of thousands. All or nothing: when one is refused,
        none is stored.

        Args:
            datasets: the datasets, written in order (a later one may take a name an earlier
                one gave up).
            touch: as for :meth:`put_dataset`.

        Returns:
            How many datasets were written.

        Raises:
            ValidationError: a dataset's name is taken by another dataset, or its organization
                does not exist (the message names the dataset); nothing was stored.
        """
        now = _now()
        written = 0
        with self.transaction() as conn:
            for dataset in datasets:
                try:
                    _write_dataset(conn, dataset, now, touch)
                except ValidationError as exc:
                    raise ValidationError(
                        {k: [f"{dataset.name}: {m}" for m in v] for k, v in exc.errors.items()}
                    ) from None
                written += 1
        return written

    def delete_dataset(self, name_or_id: str) -> Dataset:
        """Mark a dataset deleted (CKAN keeps deleted datasets; ``purge_dataset`` removes).

        Args:
            name_or_id: the dataset's name or id.

        Returns:
            The deleted dataset.

        Raises:
            NotFound: no such dataset.
        """
        with self.transaction() as conn:
            ds = _get_dataset(conn, name_or_id)
            conn.execute(
                update(portal_datasets)
                .where(portal_datasets.c.id == ds.id)
                .values(state="deleted", metadata_modified=_now())
            )
            return _get_dataset(conn, ds.id)

    def purge_dataset(self, name_or_id: str) -> None:
        """Remove a dataset, its resources and their DataStore tables for good.

        Args:
            name_or_id: the dataset's name or id.

        Raises:
            NotFound: no such dataset.
        """
        with self.transaction() as conn:
            ds = _get_dataset(conn, name_or_id)
            for res in ds.resources:
                _drop_datastore(conn, res.id)
            conn.execute(delete(portal_resources).where(portal_resources.c.package_id == ds.id))
            conn.execute(delete(portal_datasets).where(portal_datasets.c.id == ds.id))

    # -- resources ---------------------------------------------------------------------------

    def resource(self, resource_id: str) -> Resource:
        """One resource.

        Args:
            resource_id: its id.

        Returns:
            The resource.

        Raises:
            NotFound: no such resource.
        """
        with self.transaction(write=False) as conn:
            return _get_resource(conn, resource_id)

    def put_resource(self, resource: Resource) -> Resource:
        """Insert a resource (appended to its dataset) or replace it (keeping its place).

        The dataset's ``metadata_modified`` is set to now.

        Args:
            resource: the resource; ``package_id`` names its dataset.

        Returns:
            The resource as stored.

        Raises:
            NotFound: its dataset does not exist.
        """
        now = _now()
        with self.transaction() as conn:
            ds = _get_dataset(conn, resource.package_id)
            old = next((r for r in ds.resources if r.id == resource.id), None)
            if old is None:
                conn.execute(
                    insert(portal_resources).values(
                        **_resource_values(
                            replace(resource, created=resource.created or now),
                            len(ds.resources),
                        )
                    )
                )
            else:
                values = _resource_values(resource, old.position)
                values["created"] = old.created or now
                conn.execute(
                    update(portal_resources)
                    .where(portal_resources.c.id == resource.id)
                    .values(**values)
                )
            _touch(conn, ds.id, now)
            return _get_resource(conn, resource.id)

    def delete_resource(self, resource_id: str) -> Resource:
        """Remove a resource (and its DataStore table); the others close up.

        Args:
            resource_id: its id.

        Returns:
            The removed resource.

        Raises:
            NotFound: no such resource.
        """
        with self.transaction() as conn:
            res = _get_resource(conn, resource_id)
            _drop_datastore(conn, resource_id)
            conn.execute(delete(portal_resources).where(portal_resources.c.id == resource_id))
            rest = conn.execute(
                select(portal_resources.c.id)
                .where(portal_resources.c.package_id == res.package_id)
                .order_by(portal_resources.c.position)
            ).all()
            for position, row in enumerate(rest):
                conn.execute(
                    update(portal_resources)
                    .where(portal_resources.c.id == row.id)
                    .values(position=position)
                )
            _touch(conn, res.package_id, _now())
            return res

    # -- organizations and groups ------------------------------------------------------------

    def organizations(self) -> list[Organization]:
        """All organizations (the catalog's agencies), ordered by name."""
        with self.transaction(write=False) as conn:
            rows = conn.execute(select(agencies).order_by(agencies.c.name))
            return [_row_to_organization(r) for r in rows]

    def organization(self, name_or_id: str) -> Organization:
        """One organization, by name or id.

        Args:
            name_or_id: its name (the agency slug) or its id.

        Returns:
            The organization.

        Raises:
            NotFound: no such organization.
        """
        with self.transaction(write=False) as conn:
            return _get_organization(conn, name_or_id)

    def put_organization(self, organization: Organization) -> Organization:
        """Insert or update an organization (an agency row).

        Args:
            organization: the organization, identified by its name.

        Returns:
            The organization as stored.
        """
        values = {
            "title": organization.title,
            "title_en": organization.title_en,
            "description": organization.description,
            "image_url": organization.image_url,
            "state": organization.state,
        }
        with self.transaction() as conn:
            row = conn.execute(select(agencies).where(agencies.c.name == organization.name)).first()
            if row is None:
                conn.execute(
                    insert(agencies).values(
                        name=organization.name, created=organization.created or _now(), **values
                    )
                )
            else:
                conn.execute(
                    update(agencies)
                    .where(agencies.c.name == organization.name)
                    .values(created=row.created or organization.created or _now(), **values)
                )
            return _get_organization(conn, organization.name)

    def groups(self) -> list[Group]:
        """All groups, ordered by name."""
        with self.transaction(write=False) as conn:
            return [_row_to_group(r) for r in conn.execute(select(portal_groups).order_by("name"))]

    def group(self, name_or_id: str) -> Group:
        """One group, by name or id.

        Args:
            name_or_id: its name or id.

        Returns:
            The group.

        Raises:
            NotFound: no such group.
        """
        with self.transaction(write=False) as conn:
            row = conn.execute(
                select(portal_groups).where(
                    or_(portal_groups.c.name == name_or_id, portal_groups.c.id == name_or_id)
                )
            ).first()
        if row is None:
            raise NotFound()
        return _row_to_group(row)

    def put_group(self, group: Group) -> Group:
        """Insert or replace a group (by id).

        Args:
            group: the group.

        Returns:
            The group as stored.

        Raises:
            ValidationError: another group has its name.
        """
        values = {
            "name": group.name,
            "title": group.title,
            "title_en": group.title_en,
            "description": group.description,
            "image_url": group.image_url,
            "state": group.state,
        }
        with self.transaction() as conn:
            other = conn.scalar(
                select(portal_groups.c.id).where(
                    portal_groups.c.name == group.name, portal_groups.c.id != group.id
                )
            )
            if other is not None:
                raise ValidationError({"name": ["Group name already exists in database"]})
            done = conn.execute(
                update(portal_groups).where(portal_groups.c.id == group.id).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(portal_groups).values(
                        id=group.id, created=group.created or _now(), **values
                    )
                )
            row = conn.execute(select(portal_groups).where(portal_groups.c.id == group.id)).one()
            return _row_to_group(row)

    # -- users, roles, tokens ----------------------------------------------------------------

    def users(self) -> list[User]:
        """All users, ordered by name."""
        with self.transaction(write=False) as conn:
            return [_row_to_user(r) for r in conn.execute(select(portal_users).order_by("name"))]

    def user(self, name_or_id: str) -> User:
        """One user, by name or id.

        Args:
            name_or_id: the user's name or id.

        Returns:
            The user.

        Raises:
            NotFound: no such user.
        """
        with self.transaction(write=False) as conn:
            return _get_user(conn, name_or_id)

    def put_user(self, user: User, password: str | None = None) -> User:
        """Insert or update a user (by id); the password, when given, is stored hashed.

        Args:
            user: the user.
            password: a new password, or None to keep the stored one.

        Returns:
            The user as stored.

        Raises:
            ValidationError: another user has its name.
        """
        values: dict[str, Any] = {
            "name": user.name,
            "fullname": user.fullname,
            "email": user.email,
            "sysadmin": user.sysadmin,
            "state": user.state,
        }
        if password is not None:
            values["password_hash"] = hash_password(password)
        with self.transaction() as conn:
            other = conn.scalar(
                select(portal_users.c.id).where(
                    portal_users.c.name == user.name, portal_users.c.id != user.id
                )
            )
            if other is not None:
                raise ValidationError({"name": ["That login name is not available."]})
            done = conn.execute(
                update(portal_users).where(portal_users.c.id == user.id).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(portal_users).values(
                        id=user.id, created=user.created or _now(), **values
                    )
                )
            return _get_user(conn, user.id)

    def check_password(self, name: str, password: str) -> User | None:
        """The active user whose name and password these are, or None.

        Args:
            name: the login name.
            password: the password given.

        Returns:
            The user, or None.
        """
        with self.transaction(write=False) as conn:
            row = conn.execute(select(portal_users).where(portal_users.c.name == name)).first()
        if row is None or row.state != "active" or not row.password_hash:
            return None
        return _row_to_user(row) if verify_password(password, row.password_hash) else None

    def memberships(
        self, user: str | None = None, organization: str | None = None
    ) -> list[Membership]:
        """Roles held in organizations, optionally of one user and/or one organization.

        Args:
            user: a user's name or id, or None for all users.
            organization: an organization's name, or None for all.

        Returns:
            The memberships (user by name), ordered by organization then user.
        """
        stmt = (
            select(portal_members.c.organization, portal_members.c.role, portal_users.c.name)
            .join(portal_users, portal_users.c.id == portal_members.c.user_id)
            .order_by(portal_members.c.organization, portal_users.c.name)
        )
        if user is not None:
            stmt = stmt.where(or_(portal_users.c.name == user, portal_users.c.id == user))
        if organization is not None:
            stmt = stmt.where(portal_members.c.organization == organization)
        with self.transaction(write=False) as conn:
            return [Membership(r.organization, r.name, r.role) for r in conn.execute(stmt)]

    def put_membership(self, membership: Membership) -> Membership:
        """Give a user a role in an organization (replacing any role held there).

        Args:
            membership: organization name, user name or id, role.

        Returns:
            The membership as stored.

        Raises:
            NotFound: the user or organization does not exist.
            ValidationError: the role is not one of member, editor, admin.
        """
        if membership.role not in ROLES:
            raise ValidationError({"role": [f"role must be one of {', '.join(ROLES)}"]})
        with self.transaction() as conn:
            user = _get_user(conn, membership.user)
            org = _get_organization(conn, membership.organization)
            where = (portal_members.c.organization == org.name) & (
                portal_members.c.user_id == user.id
            )
            done = conn.execute(update(portal_members).where(where).values(role=membership.role))
            if done.rowcount == 0:
                conn.execute(
                    insert(portal_members).values(
                        organization=org.name, user_id=user.id, role=membership.role
                    )
                )
            return Membership(org.name, user.name, membership.role)

    def delete_membership(self, organization: str, user: str) -> None:
        """Take a user's role in an organization away (nothing happens if there is none).

        Args:
            organization: the organization's name or id.
            user: the user's name or id.

        Raises:
            NotFound: the user or organization does not exist.
        """
        with self.transaction() as conn:
            u = _get_user(conn, user)
            org = _get_organization(conn, organization)
            conn.execute(
                delete(portal_members).where(
                    portal_members.c.organization == org.name, portal_members.c.user_id == u.id
                )
            )

    def create_token(self, user: str, name: str) -> tuple[ApiToken, str]:
        """Make an API token for a user; only its hash is stored.

        Args:
            user: the user's name or id.
            name: what the token is called.

        Returns:
            (the token's record, the token itself — shown to the user once).

        Raises:
            NotFound: no such user.
        """
        token = secrets.token_urlsafe(32)
        record = ApiToken(id=str(uuid.uuid4()), user_id="", name=name, created=_now())
        with self.transaction() as conn:
            owner = _get_user(conn, user)
            record = replace(record, user_id=owner.id)
            conn.execute(
                insert(portal_tokens).values(
                    id=record.id,
                    user_id=owner.id,
                    name=name,
                    token_hash=_hash_token(token),
                    created=record.created,
                )
            )
        return record, token

    def tokens(self, user: str) -> list[ApiToken]:
        """A user's API tokens (their records; the tokens themselves are not kept).

        Args:
            user: the user's name or id.

        Returns:
            The token records, oldest first.

        Raises:
            NotFound: no such user.
        """
        with self.transaction(write=False) as conn:
            owner = _get_user(conn, user)
            rows = conn.execute(
                select(portal_tokens)
                .where(portal_tokens.c.user_id == owner.id)
                .order_by(portal_tokens.c.created)
            )
            return [ApiToken(r.id, r.user_id, r.name, r.created, r.last_access) for r in rows]

    def user_of_token(self, token: str) -> User | None:
        """The active user a token belongs to (and note that it was used), or None.

        Args:
            token: the token as the client sent it.

        Returns:
            The user, or None for an unknown token or a deleted user.
        """
        if not token:
            return None
        with self.transaction(write=False) as conn:
            row = conn.execute(
                select(
                    portal_users, portal_tokens.c.id.label("token_id"), portal_tokens.c.last_access
                )
                .join(portal_tokens, portal_tokens.c.user_id == portal_users.c.id)
                .where(portal_tokens.c.token_hash == _hash_token(token))
            ).first()
        if row is None or row.state != "active":
            return None
        now = _now()
        if row.last_access is None or now - row.last_access > _ACCESS_RESOLUTION:
            with self._engine.begin() as conn:  # not a portal change: no revision bump
                conn.execute(
                    update(portal_tokens)
                    .where(portal_tokens.c.id == row.token_id)
                    .values(last_access=now)
                )
        return _row_to_user(row)

    # -- catalog layers ----------------------------------------------------------------------

    def sync_layers(self, snapshot: Snapshot) -> int:
        """Make one dataset per published catalog layer; retire those whose layer is gone.

        A layer dataset is rewritten only when :func:`portal.ckan.layers.dataset_of_layer`
        gives something different from what is stored; what clients added through the API
        (groups, extras, resources) is kept by it, and so is the stored dataset's id.
        Organizations of new agencies exist already (the catalog writes the agency rows).

        A new layer whose id is the name of a dataset that presents no layer (one from a
        catalog export, or made through the API) takes that name: the dataset becomes the
        layer's when an upload to it claimed the layer (:meth:`claim_layer`), else it is
        renamed (:func:`free_name`), keeping its id, and the rename is logged.

        Args:
            snapshot: the catalog view's snapshot.

        Returns:
            How many datasets were written, renamed or marked deleted.
        """
        stored = self.datasets(include_deleted=True)
        existing = {d.layer_id: d for d in stored if d.layer_id is not None}
        names = {d.name: d for d in stored}
        claims = self.layer_claims()
        changed = 0
        for layer, version in snapshot.published():
            old = existing.pop(layer.id, None)
            other = names.get(layer.id)
            if old is None and other is not None and other.layer_id is None:
                if layer.id in claims:
                    old = other  # an upload made this dataset the layer's
                else:
                    self._rename_for_layer(other, layer.id, names)
                    changed += 1
            new = dataset_of_layer(layer, version, old)
            if old is not None:
                new = _with_id(new, old.id)
            if old is not None and old.state == "deleted":
                new = replace(new, state="active")
            if old is None or not _same_content(new, old):
                self.put_dataset(new)
                changed += 1
            if layer.id in claims:
                self.release_layer_claim(layer.id)
        for ds in existing.values():
            if ds.state != "deleted":
                self.delete_dataset(ds.id)
                changed += 1
        return changed

    def _rename_for_layer(self, dataset: Dataset, layer_id: str, names: dict[str, Dataset]) -> None:
        """Give the name ``layer_id`` up to the layer of that id (the dataset keeps its id)."""
        name = free_name(dataset, names)
        self.put_dataset(replace(dataset, name=name), touch=False)
        names.pop(dataset.name, None)
        names[name] = replace(dataset, name=name)
        log.warning(
            "portal: dataset %s (%s) renamed %r → %r: the new catalog layer %r takes its name",
            dataset.id,
            dataset.source,
            dataset.name,
            name,
            layer_id,
        )

    def claim_layer(self, layer_id: str) -> None:
        """Note that an upload is making the non-layer dataset named ``layer_id`` a layer's.

        :meth:`sync_layers` then gives the new layer that dataset (its id, resources and what
        clients set) instead of renaming it. The claim is bookkeeping no client sees (no
        revision bump); it is released by the sync that uses it or by
        :meth:`release_layer_claim`.

        Args:
            layer_id: the layer id (= the dataset's name).
        """
        key = _CLAIM + layer_id
        with self.transaction(bump=False) as conn:
            if conn.scalar(select(portal_meta.c.key).where(portal_meta.c.key == key)) is None:
                conn.execute(insert(portal_meta).values(key=key, value=1))

    def release_layer_claim(self, layer_id: str) -> None:
        """Drop an upload's claim on a layer id (see :meth:`claim_layer`).

        Args:
            layer_id: the layer id.
        """
        with self.transaction(bump=False) as conn:
            conn.execute(delete(portal_meta).where(portal_meta.c.key == _CLAIM + layer_id))

    def layer_claims(self) -> set[str]:
        """The layer ids uploads have claimed (see :meth:`claim_layer`)."""
        with self.transaction(write=False) as conn:
            keys = conn.scalars(select(portal_meta.c.key).where(portal_meta.c.key.like("adopt:%")))
            return {k[len(_CLAIM) :] for k in keys}


def free_name(dataset: Dataset, names: Mapping[str, Dataset]) -> str:
    """The name a dataset moves to when a catalog layer takes its name (deterministic).

    ``<name>-dataset`` when free, else ``<name>-dataset-<6 hex of sha1(id)>`` (longer hashes
    while taken); at most 100 characters, CKAN's limit.

    Args:
        dataset: the dataset giving its name up.
        names: the names in use.

    Returns:
        The new name.
    """
    digest = hashlib.sha1(dataset.id.encode()).hexdigest()
    candidates = [f"{dataset.name[:92]}-dataset"]
    candidates += [f"{dataset.name[: 84 - n]}-dataset-{digest[:n]}" for n in range(6, 41, 2)]
    return next(c for c in candidates if c not in names)


# -- helpers (inside a transaction) ----------------------------------------------------------


def _bump(conn: Connection) -> None:
    done = conn.execute(
        update(portal_meta)
        .where(portal_meta.c.key == "revision")
        .values(value=portal_meta.c.value + 1)
    )
    if done.rowcount == 0:
        conn.execute(insert(portal_meta).values(key="revision", value=1))


def _write_dataset(conn: Connection, dataset: Dataset, now: datetime, touch: bool) -> None:
    """Insert or replace one dataset and its resources (see :meth:`PortalStore.put_dataset`)."""
    _check_dataset_refs(conn, dataset)
    old = conn.execute(
        select(portal_datasets.c.metadata_created, portal_datasets.c.metadata_modified).where(
            portal_datasets.c.id == dataset.id
        )
    ).first()
    created = (old.metadata_created if old else None) or dataset.metadata_created or now
    modified = now
    if not touch:
        modified = (old.metadata_modified if old else None) or dataset.metadata_modified or now
    values = _dataset_values(replace(dataset, metadata_created=created, metadata_modified=modified))
    if old is None:
        conn.execute(insert(portal_datasets).values(**values))
    else:
        conn.execute(
            update(portal_datasets).where(portal_datasets.c.id == dataset.id).values(**values)
        )
    _replace_resources(conn, dataset, now)


def _get_dataset(conn: Connection, name_or_id: str) -> Dataset:
    row = conn.execute(
        select(portal_datasets).where(
            or_(portal_datasets.c.id == name_or_id, portal_datasets.c.name == name_or_id)
        )
    ).first()
    if row is None:
        raise NotFound()
    resources = conn.execute(
        select(portal_resources)
        .where(portal_resources.c.package_id == row.id)
        .order_by(portal_resources.c.position)
    )
    return _row_to_dataset(row, tuple(_row_to_resource(r) for r in resources))


def _get_resource(conn: Connection, resource_id: str) -> Resource:
    row = conn.execute(select(portal_resources).where(portal_resources.c.id == resource_id)).first()
    if row is None:
        raise NotFound("Resource was not found.")
    return _row_to_resource(row)


def _get_organization(conn: Connection, name_or_id: str) -> Organization:
    row = conn.execute(select(agencies).where(agencies.c.name == name_or_id)).first()
    if row is None:
        names = conn.scalars(select(agencies.c.name)).all()
        name = next((n for n in names if organization_id(n) == name_or_id), None)
        if name is not None:
            row = conn.execute(select(agencies).where(agencies.c.name == name)).first()
    if row is None:
        raise NotFound()
    return _row_to_organization(row)


def _get_user(conn: Connection, name_or_id: str) -> User:
    row = conn.execute(
        select(portal_users).where(
            or_(portal_users.c.name == name_or_id, portal_users.c.id == name_or_id)
        )
    ).first()
    if row is None:
        raise NotFound()
    return _row_to_user(row)


def _check_dataset_refs(conn: Connection, dataset: Dataset) -> None:
    errors: dict[str, list[str]] = {}
    taken = conn.scalar(
        select(portal_datasets.c.id).where(
            portal_datasets.c.name == dataset.name, portal_datasets.c.id != dataset.id
        )
    )
    if taken is not None:
        errors["name"] = ["That URL is already in use."]
    if conn.scalar(select(agencies.c.name).where(agencies.c.name == dataset.owner_org)) is None:
        errors["owner_org"] = ["Organization does not exist"]
    if errors:
        raise ValidationError(errors)


def _replace_resources(conn: Connection, dataset: Dataset, now: datetime) -> None:
    old = {
        r.id: r
        for r in conn.execute(
            select(portal_resources.c.id, portal_resources.c.created).where(
                portal_resources.c.package_id == dataset.id
            )
        )
    }
    keep = {r.id for r in dataset.resources}
    for gone in set(old) - keep:
        _drop_datastore(conn, gone)
    conn.execute(delete(portal_resources).where(portal_resources.c.package_id == dataset.id))
    rows = []
    for position, res in enumerate(dataset.resources):
        prior = old.get(res.id)
        created = res.created or (prior.created if prior else None) or now
        rows.append(
            _resource_values(replace(res, package_id=dataset.id, created=created), position)
        )
    if rows:
        conn.execute(insert(portal_resources), rows)


def _touch(conn: Connection, dataset_id: str, now: datetime) -> None:
    conn.execute(
        update(portal_datasets)
        .where(portal_datasets.c.id == dataset_id)
        .values(metadata_modified=now)
    )


def _drop_datastore(conn: Connection, resource_id: str) -> None:
    """Drop a resource's DataStore table, if it has one."""
    name = conn.scalar(
        select(portal_datastore.c.table_name).where(portal_datastore.c.resource_id == resource_id)
    )
    if name is None:
        return
    Table(name, MetaData()).drop(conn, checkfirst=True)  # the name is the portal's own
    conn.execute(delete(portal_datastore).where(portal_datastore.c.resource_id == resource_id))


def sync(home: Path, url: str | None = None) -> int:
    """Bring the portal's layer datasets in line with the catalog (for the CLI, after ingest).

    Args:
        home: the data home.
        url: the catalog database URL, default the home's SQLite file.

    Returns:
        How many datasets were written or marked deleted.
    """
    from catalog.view import CatalogView

    with Catalog.open(home, url) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    store = PortalStore.open(home, url)
    try:
        return store.sync_layers(snapshot)
    finally:
        store.close()
