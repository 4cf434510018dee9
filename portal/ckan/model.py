"""Typed records of the open-data portal: datasets, resources, organizations, users, tokens.

Datasets are CKAN packages; groups, memberships and API tokens are CKAN's too. These are what
the portal's packages see; rows stay inside ``portal.ckan.store`` and dicts (CKAN's JSON
shapes) appear only at the API edge (``portal.ckan.dicts``). Times are timezone-aware UTC
datetimes. Organizations are the catalog's agencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: CKAN dataset states this portal keeps (``draft`` is not offered: datasets are complete).
DATASET_STATES = ("active", "deleted")

#: Roles a user may hold in an organization, weakest first (CKAN's capacities).
ROLES = ("member", "editor", "admin")

#: What a resource is, as the portal shows it: a whole-file download, a web service (WMS,
#: WMTS, OGC API, TileJSON), a link to somewhere else, or a file uploaded to this portal.
RESOURCE_KINDS = ("download", "service", "link", "upload")


@dataclass(frozen=True)
class Resource:
    """One resource of a dataset.

    Attributes:
        id: a UUID (deterministic, ``uuid5``, for resources generated from a catalog layer).
        package_id: the dataset's id.
        name: shown name (zh-TW).
        url: absolute URL for links; for this portal's own downloads and services the path
            (``/download/x.geojson``), made absolute with the request's base URL at the edge.
        format: CKAN format label: "GeoJSON", "CSV", "KML", "SHP", "GPKG", "GeoParquet",
            "WMS", "WMTS", "OGC API Features", "TileJSON", "PMTiles", "XLSX", ...
        kind: one of :data:`RESOURCE_KINDS`.
        description: free text.
        mimetype: the media type, when known.
        size: bytes, when known.
        position: order within the dataset (0 first).
        generated: made from the dataset's catalog layer; rewritten whenever the layer
            changes, read-only through the API.
        encoding: the declared character encoding of the file ("UTF-8", "BIG5"), when declared.
        extras: other key/value pairs a client set (kept and returned as CKAN does).
        created: when it was added.
        last_modified: when its data last changed.
        datastore_active: a DataStore table holds its rows.
    """

    id: str
    package_id: str
    name: str
    url: str
    format: str
    kind: str = "link"
    description: str = ""
    mimetype: str = ""
    size: int | None = None
    position: int = 0
    generated: bool = False
    encoding: str = ""
    extras: tuple[tuple[str, str], ...] = ()
    created: datetime | None = None
    last_modified: datetime | None = None
    datastore_active: bool = False


@dataclass(frozen=True)
class Dataset:
    """A dataset (CKAN package).

    Every catalog layer is one (``layer_id`` set, ``name`` = the layer id); others come from
    agency catalog exports and supply lists, or from ``package_create``.

    Attributes:
        id: a UUID (``uuid5`` of the name for datasets made from layers or catalog exports).
        name: the URL name, ``[a-z0-9_-]{2,100}``, unique.
        title: zh-TW title.
        owner_org: the owning organization's name (an agency slug).
        notes: description (zh-TW).
        title_en: English title, when known.
        private: visible only to members of the owning organization (and sysadmins).
        state: one of :data:`DATASET_STATES`.
        license_id: a license id of ``license_list`` ("OGDL-Taiwan-1.0", ...).
        url: the dataset's source or landing page, when any.
        version: free text version label.
        author, author_email, maintainer, maintainer_email: contacts (聯絡人).
        category: data.gov.tw service category (服務分類), e.g. "交通及通訊".
        update_frequency: data.gov.tw vocabulary (每日, 每月, 不定期, ...).
        fields_description: 主要欄位說明 as the agency wrote it ("" when absent).
        spatial: a GeoJSON geometry text of the extent (CKAN's ``spatial`` extra), or "".
        tags: tag names, in order.
        groups: group names the dataset belongs to.
        extras: other key/value pairs (CKAN extras), in order.
        resources: in position order.
        layer_id: the catalog layer this dataset presents, or None.
        layer_version: the layer version its resources were generated from, or None.
        source: where the record came from: "layer", "catalog-export", "api".
        metadata_created, metadata_modified: CKAN's timestamps.
        creator_user_id: the user who created it through the API, or None.
    """

    id: str
    name: str
    title: str
    owner_org: str
    notes: str = ""
    title_en: str = ""
    private: bool = False
    state: str = "active"
    license_id: str = "OGDL-Taiwan-1.0"
    url: str = ""
    version: str = ""
    author: str = ""
    author_email: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    category: str = ""
    update_frequency: str = ""
    fields_description: str = ""
    spatial: str = ""
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    extras: tuple[tuple[str, str], ...] = ()
    resources: tuple[Resource, ...] = ()
    layer_id: str | None = None
    layer_version: str | None = None
    source: str = "api"
    metadata_created: datetime | None = None
    metadata_modified: datetime | None = None
    creator_user_id: str | None = None


@dataclass(frozen=True)
class Organization:
    """An organization: one of the catalog's agencies.

    Attributes:
        id: a UUID (``uuid5`` of the name).
        name: the agency slug (the catalog's ``Agency.name``).
        title: zh-TW name; title_en its English name.
        description: free text.
        image_url: a logo URL, or "".
        created: when it was first seen.
        state: "active" or "deleted".
    """

    id: str
    name: str
    title: str
    title_en: str = ""
    description: str = ""
    image_url: str = ""
    created: datetime | None = None
    state: str = "active"


@dataclass(frozen=True)
class Group:
    """A group (a theme that datasets of any organization may join).

    Attributes mirror :class:`Organization`.
    """

    id: str
    name: str
    title: str
    title_en: str = ""
    description: str = ""
    image_url: str = ""
    created: datetime | None = None
    state: str = "active"


@dataclass(frozen=True)
class User:
    """A portal user. Passwords and tokens are stored hashed and never leave the store.

    Attributes:
        id: a UUID.
        name: login name, ``[a-z0-9_-]{2,100}``.
        fullname, email: as given.
        sysadmin: may do everything.
        state: "active" or "deleted".
        created: when added.
    """

    id: str
    name: str
    fullname: str = ""
    email: str = ""
    sysadmin: bool = False
    state: str = "active"
    created: datetime | None = None


@dataclass(frozen=True)
class Membership:
    """A user's role in an organization (one of :data:`ROLES`)."""

    organization: str
    user: str
    role: str


@dataclass(frozen=True)
class ApiToken:
    """An API token's record (the token itself is shown once, when created, and kept hashed).

    Attributes:
        id: a UUID.
        user_id: whose token it is.
        name: what the user called it.
        created: when made.
        last_access: when last used, or None.
    """

    id: str
    user_id: str
    name: str
    created: datetime
    last_access: datetime | None = None
