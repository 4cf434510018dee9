"""OGC API - Records: the catalog as the searchable records collection ``catalog``.

One record per published layer, id = layer id, built from the catalog snapshot: title,
description, keywords, agency, category, ``type`` (the layer kind: vector, raster, table),
geometry = the layer's bbox as a polygon (CRS84), ``time`` = when the current version was
created, and links to the layer's OGC API collection, dataset page, WMS, WMTS, TileJSON and
downloads. ``/ogc/collections/catalog/items`` answers ``q`` (the catalog's own CJK-aware search,
``Catalog.search``: ``q=停車`` finds 停車場 layers, ranked by score), ``bbox``, ``datetime``,
``type`` and ``agency`` (agency title or its short name), plus ``category``, ``sortby``,
``limit``/``offset`` paging and item by id.

The provider is constructed by pygeoapi per request; it only looks up a process-wide
:class:`~catalog.view.CatalogView` per data home (the catalog database opened once, the snapshot
re-read at most every few seconds), so a request costs the filtering of a few hundred records
in memory, plus one search query when ``q`` is given.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from catalog.db import Catalog
from catalog.view import CatalogView

if TYPE_CHECKING:
    from catalog.model import Layer, LayerVersion
    from catalog.view import Snapshot
    from portal.ogc.config import Site

#: The records collection id.
COLLECTION = "catalog"

#: Dotted path of the records provider, as pygeoapi loads it.
RECORD_PROVIDER = "portal.ogc.records.CatalogRecordProvider"

#: Environment variable naming a non-default catalog database (as ``geoportal serve`` sets it).
CATALOG_URL_ENV = "GEOPORTAL_CATALOG_URL"

#: Record properties a client may filter and sort on, with their JSON Schema types.
FIELDS: dict[str, dict[str, str]] = {
    "title": {"type": "string"},
    "description": {"type": "string"},
    "type": {"type": "string"},
    "agency": {"type": "string"},
    "category": {"type": "string"},
    "keywords": {"type": "string"},
    "license": {"type": "string"},
    "updateFrequency": {"type": "string"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
}

_SEARCH_LIMIT = 100_000


class RecordQueryError(ProviderInvalidQueryError):
    """A records query that cannot be answered (bad datetime, unknown sort property)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, user_msg=message)


_views_lock = threading.Lock()
_views: dict[tuple[str, str | None], CatalogView] = {}


def catalog_view(home: Path) -> CatalogView:
    """The process-wide catalog view of the data home ``home`` (opened on first use)."""
    url = os.environ.get(CATALOG_URL_ENV) or None
    key = (str(home), url)
    with _views_lock:
        view = _views.get(key)
        if view is None:
            view = _views[key] = CatalogView(Catalog.open(home, url))
        return view


@dataclass(frozen=True)
class Interval:
    """A closed time interval; None on a side means open."""

    start: datetime | None
    end: datetime | None

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` falls inside."""
        return (self.start is None or when >= self.start) and (self.end is None or when <= self.end)


def _instant(text: str, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:  # a date: the whole day
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day.replace(hour=23, minute=59, second=59, microsecond=999999) if end else day
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise RecordQueryError(f"datetime {text!r} is not an RFC 3339 date or time") from err
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_datetime(text: str) -> Interval:
    """An OGC API ``datetime`` value (instant, date, or ``start/end`` with ``..``) as interval.

    Raises:
        RecordQueryError: not an RFC 3339 date, time or interval.
    """
    if "/" in text:
        start, _, end = text.partition("/")
        return Interval(_instant(start, end=False), _instant(end, end=True))
    return Interval(_instant(text, end=False), _instant(text, end=True))


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _polygon(bbox: tuple[float, float, float, float] | None) -> dict | None:
    if bbox is None:
        return None
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def record(layer: Layer, version: LayerVersion, root: str) -> dict:
    """The OGC API - Records record (a GeoJSON feature) of one published layer.

    Args:
        layer: the layer.
        version: its current version.
        root: the public root URL of the app (links are absolute).
    """
    from portal.ogc.config import Site, links  # at call time: config imports this module

    ogc = Site(root, Path()).ogc
    out = [
        {
            "rel": "collection" if version.kind != "table" else "describedby",
            "type": "application/json",
            "title": "OGC API 集合 OGC API collection",
            "href": f"{ogc}/collections/{layer.id}",
        },
        {
            "rel": "self",
            "type": "application/geo+json",
            "title": "本筆詮釋資料 This record",
            "href": f"{ogc}/collections/{COLLECTION}/items/{layer.id}",
        },
        *links(layer, version, Site(root, Path())),
    ]
    return {
        "id": layer.id,
        "type": "Feature",
        "conformsTo": ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"],
        "time": {"timestamp": _iso(version.created)},
        "geometry": _polygon(version.bbox),
        "properties": {
            "type": version.kind,
            "title": layer.title,
            "title_en": layer.title_en or None,
            "description": layer.description or layer.title,
            "keywords": list(layer.keywords),
            "themes": [{"concepts": [{"id": layer.category}], "scheme": "data.gov.tw"}]
            if layer.category
            else [],
            "agency": layer.agency.title,
            "agencyName": layer.agency.name,
            "category": layer.category,
            "license": layer.license,
            "updateFrequency": layer.update_frequency,
            "created": _iso(layer.created or version.created),
            "updated": _iso(version.created),
            "version": version.version,
            "featureCount": version.feature_count,
            "geometryType": version.geometry_type,
            "sourceCrs": version.source_crs,
            "language": "zh-TW",
        },
        "links": out,
    }


def _bbox_union(snapshot: Snapshot) -> list[float]:
    boxes = [v.bbox for _, v in snapshot.published() if v.bbox]
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def records_resource(snapshot: Snapshot, site: Site) -> dict[str, dict]:
    """The ``catalog`` records collection of the running configuration."""
    created = [v.created for _, v in snapshot.published()]
    spatial = {"bbox": _bbox_union(snapshot), "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    extents: dict[str, Any] = {"spatial": spatial}
    if created:
        extents["temporal"] = {"begin": min(created), "end": max(created)}
    return {
        COLLECTION: {
            "type": "collection",
            "title": {"zh-TW": "圖資目錄", "en": "Layer catalogue"},
            "description": {
                "zh-TW": "本平臺所有圖層的詮釋資料，可依關鍵字、範圍、時間、類型與機關查詢。",
                "en": "Metadata of every layer on this platform, searchable by text, "
                "extent, time, type and agency.",
            },
            "keywords": ["圖資目錄", "詮釋資料", "catalogue", "metadata"],
            "links": [
                {
                    "type": "text/html",
                    "rel": "alternate",
                    "title": "資料集清單 Datasets",
                    "href": f"{site.root}/dataset",
                }
            ],
            "extents": extents,
            "providers": [
                {
                    "type": "record",
                    "name": RECORD_PROVIDER,
                    "data": str(site.home),
                    "id_field": "id",
                    "time_field": "updated",
                    "title_field": "title",
                    "options": {"root": site.root},
                }
            ],
        }
    }


def _matches(rec: dict, key: str, value: str) -> bool:
    props = rec["properties"]
    if key == "agency":
        return value in (props["agency"], props["agencyName"])
    if key == "keywords":
        return value in props["keywords"]
    return str(props.get(key)) == value


def _intersects(rec: dict, bbox: Sequence[float]) -> bool:
    geometry = rec["geometry"]
    if geometry is None:
        return False
    ring = geometry["coordinates"][0]
    w, s, e, n = ring[0][0], ring[0][1], ring[2][0], ring[2][1]
    return not (e < bbox[0] or w > bbox[2] or n < bbox[1] or s > bbox[3])


class CatalogRecordProvider(BaseProvider):
    """pygeoapi record provider over the catalog snapshot (see module docstring)."""

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        self.view = catalog_view(Path(provider_def["data"]))
        self.root = (self.options or {}).get("root", "")
        self.id_field = "id"
        self._fields = self.get_fields()

    def get_fields(self) -> dict:
        """Record properties that can be filtered on and sorted by."""
        return {name: dict(spec) for name, spec in FIELDS.items()}

    def _records(self, q: str | None) -> list[dict]:
        snapshot = self.view.snapshot()
        if q and q.strip():
            hits = self.view.catalog.search(q, limit=_SEARCH_LIMIT)
            ids = [h.layer.id for h in hits if h.layer.id in snapshot.versions]
        else:
            ids = [lyr.id for lyr, _ in snapshot.published()]
        return [record(snapshot.layers[i], snapshot.versions[i], self.root) for i in ids]

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
        **kwargs: Any,
    ) -> dict:
        """Records matching every constraint, as a GeoJSON FeatureCollection dict.

        Args:
            offset: records to skip.
            limit: records to return at most.
            resulttype: "results", or "hits" for the count only.
            bbox: (minx, miny, maxx, maxy) in CRS84: records whose extent intersects it.
            datetime_: instant or interval the current version's creation time falls in.
            properties: (name, value) equality filters (``type``, ``agency``, ``category``...).
            sortby: [{"property": name, "order": "+"|"-"}]; default: search score, else id.
            select_properties: properties to return (all when empty).
            skip_geometry: leave geometries out.
            q: catalog search text (every term must match; Chinese needs no spaces).
            **kwargs: further pygeoapi keywords (language, filterq), unused.

        Raises:
            RecordQueryError: a malformed datetime (HTTP 400).
        """
        interval = parse_datetime(datetime_) if datetime_ else None
        found = []
        for rec in self._records(q):
            if bbox and not _intersects(rec, bbox):
                continue
            if interval and not interval.contains(_parse_time(rec["time"]["timestamp"])):
                continue
            if all(_matches(rec, k, v) for k, v in properties):
                found.append(rec)
        for key in reversed(sortby):
            name = key["property"]
            found.sort(
                key=lambda r, n=name: (r["properties"].get(n) is None, str(r["properties"].get(n))),
                reverse=key["order"] == "-",
            )
        page = [] if resulttype == "hits" else found[offset : offset + limit]
        return {
            "type": "FeatureCollection",
            "features": [_shape(r, select_properties, skip_geometry) for r in page],
            "numberMatched": len(found),
            "numberReturned": len(page),
        }

    def get(self, identifier: str, **kwargs: Any) -> dict:
        """The record of layer ``identifier``.

        Raises:
            ProviderItemNotFoundError: no published layer has that id (HTTP 404).
        """
        snapshot = self.view.snapshot()
        if identifier not in snapshot.versions:
            raise ProviderItemNotFoundError(
                f"no record {identifier!r}", user_msg=f"no record {identifier!r}"
            )
        return record(snapshot.layers[identifier], snapshot.versions[identifier], self.root)

    def __repr__(self) -> str:
        return f"<CatalogRecordProvider> {self.data}"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _shape(rec: dict, select: Sequence[str], skip_geometry: bool) -> dict:
    out = dict(rec)
    if select:
        out["properties"] = {k: v for k, v in rec["properties"].items() if k in select}
    if skip_geometry:
        out["geometry"] = None
    return out
