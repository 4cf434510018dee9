"""Saved maps: what the composer makes and the embeddable widgets show.

A map (:class:`MapDoc`) belongs to one organization and names its widget kind (a–g), its
layers in drawing order with per-layer style overrides, its initial view, and the origins
allowed to frame it. It is kept in the catalog database (table ``maps``) through
:class:`MapStore`, and crosses HTTP as the JSON of :func:`doc_to_json` / :func:`doc_from_json`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine, Row

from catalog.schema import maps as maps_table

#: Widget kinds by their letter in issue #8 (a–g).
KINDS: dict[str, str] = {
    "a": "viewer",
    "b": "picker",
    "c": "search",
    "d": "thematic",
    "e": "compare",
    "f": "nearby",
    "g": "table",
}
MAP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
LAYER_ID = re.compile(r"[a-z0-9-]+")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: An origin a map may be framed by: 'self', *, or scheme://host[:port] (host may be *.x).
ORIGIN = re.compile(r"'self'|\*|https?://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?")
MAX_LAYERS = 10
MAX_ORIGINS = 20
MAX_DISTANCE = 5000.0


class MapError(ValueError):
    """A map document is not valid; the message says which part and why."""


class MapNotFound(LookupError):
    """No map has this id."""

    def __init__(self, map_id: str) -> None:
        super().__init__(f"there is no map {map_id!r}")
        self.map_id = map_id


@dataclass(frozen=True)
class Thematic:
    """A thematic (by-attribute) style of a layer.

    Attributes:
        field: the attribute coloured by.
        mode: "categorized" (one colour per value) or "graduated" (classes by breaks).
        values: categorized: (value, colour) pairs in legend order.
        breaks: graduated: class limits, ascending (class i is breaks[i-1] <= v < breaks[i]).
        colors: graduated: one colour per class (one more than breaks).
    """

    field: str
    mode: str
    values: tuple[tuple[str, str], ...] = ()
    breaks: tuple[float, ...] = ()
    colors: tuple[str, ...] = ()


@dataclass(frozen=True)
class MapLayer:
    """One layer of a map, with the composer's style overrides.

    Attributes:
        id: the catalog layer id.
        color: a single colour replacing the layer's own (``#rrggbb``), or None.
        opacity: 0–1, multiplied into the layer's style.
        thematic: a by-attribute style replacing the layer's own, or None.
    """

    id: str
    color: str | None = None
    opacity: float = 1.0
    thematic: Thematic | None = None


@dataclass(frozen=True)
class MapView:
    """The initial view: centre (lon, lat) and MapLibre zoom."""

    center: tuple[float, float]
    zoom: float


@dataclass(frozen=True)
class MapDoc:
    """A saved map.

    Attributes:
        id: the map id (``[a-z0-9-]``), part of ``/maps/{id}`` and ``/embed/{id}``.
        title: shown on the widget.
        organization: the owning organization (agency) name.
        kind: one of :data:`KINDS`' values.
        layers: drawn bottom first.
        view: the initial view, or None to fit the layers.
        origins: who may frame ``/embed/{id}`` (CSP frame-ancestors); ``'self'`` by default.
        public: anyone may read ``/maps/{id}`` and open the widget.
        basemap: id of an external basemap from ``GEOPORTAL_BASEMAPS``, "" for the catalog's.
        distance: the nearby finder's search distance (m).
        search_layer: the POI layer of the search widget ("" for address search only).
        created_by: the user who created it.
        created: when it was first saved.
        modified: when it was last saved.
    """

    id: str
    title: str
    organization: str
    kind: str
    layers: tuple[MapLayer, ...]
    view: MapView | None = None
    origins: tuple[str, ...] = ("'self'",)
    public: bool = True
    basemap: str = ""
    distance: float = 500.0
    search_layer: str = ""
    created_by: str = ""
    created: datetime | None = None
    modified: datetime | None = None


def new_map_id() -> str:
    """A fresh random map id (12 lower-case hex digits)."""
    return secrets.token_hex(6)


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MapError(f"{name} must be a number between {low:g} and {high:g}")
    if not low <= float(value) <= high:
        raise MapError(f"{name} must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _text(value: Any, name: str, limit: int, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MapError(f"{name} must be a non-empty text")
    if len(value) > limit:
        raise MapError(f"{name} is longer than {limit} characters")
    return value.strip()


def _colour(value: Any, name: str) -> str:
    if not isinstance(value, str) or not COLOUR.fullmatch(value):
        raise MapError(f"{name} must be a colour like #1f78b4, got {value!r}")
    return value.lower()


def _thematic(raw: Any, where: str) -> Thematic | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MapError(f"{where}.thematic must be an object or null")
    name = _text(raw.get("field"), f"{where}.thematic.field", 100)
    mode = raw.get("mode")
    if mode == "categorized":
        values = raw.get("values")
        if not isinstance(values, dict) or not values or len(values) > 50:
            raise MapError(f"{where}.thematic.values must map 1 to 50 values to colours")
        pairs = tuple(
            (str(k), _colour(v, f"{where}.thematic.values[{k!r}]")) for k, v in values.items()
        )
        return Thematic(name, mode, values=pairs)
    if mode == "graduated":
        breaks, colors = raw.get("breaks"), raw.get("colors")
        if not isinstance(breaks, list) or not isinstance(colors, list) or not breaks:
            raise MapError(f"{where}.thematic needs breaks and colors lists")
        nums = tuple(_number(b, f"{where}.thematic.breaks", -1e15, 1e15) for b in breaks)
        if list(nums) != sorted(nums) or len(colors) != len(nums) + 1 or len(nums) > 20:
            raise MapError(
                f"{where}.thematic: breaks must ascend (at most 20) and colors have one more"
            )
        cols = tuple(_colour(c, f"{where}.thematic.colors") for c in colors)
        return Thematic(name, mode, breaks=nums, colors=cols)
    raise MapError(f"{where}.thematic.mode must be 'categorized' or 'graduated'")


def _layer(raw: Any, n: int) -> MapLayer:
    where = f"layers[{n}]"
    if isinstance(raw, str):
        raw = {"id": raw}
    if not isinstance(raw, dict):
        raise MapError(f"{where} must be an object with an id")
    layer_id = raw.get("id")
    if not isinstance(layer_id, str) or not LAYER_ID.fullmatch(layer_id):
        raise MapError(f"{where}.id must be a layer id (a-z, 0-9, -), got {layer_id!r}")
    colour = raw.get("color")
    return MapLayer(
        id=layer_id,
        color=None if colour in (None, "") else _colour(colour, f"{where}.color"),
        opacity=_number(raw.get("opacity", 1.0), f"{where}.opacity", 0.0, 1.0),
        thematic=_thematic(raw.get("thematic"), where),
    )


def _view(raw: Any) -> MapView | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("center"), list | tuple):
        raise MapError("view must be {center: [lon, lat], zoom} or null")
    center = raw["center"]
    if len(center) != 2:
        raise MapError("view.center must be [lon, lat]")
    lon = _number(center[0], "view.center longitude", -180, 180)
    lat = _number(center[1], "view.center latitude", -85, 85)
    return MapView((lon, lat), _number(raw.get("zoom"), "view.zoom", 0, 22))


def _origins(raw: Any) -> tuple[str, ...]:
    if raw is None or raw == []:
        return ("'self'",)
    if not isinstance(raw, list) or len(raw) > MAX_ORIGINS:
        raise MapError(f"origins must be a list of at most {MAX_ORIGINS} origins")
    out: list[str] = []
    for value in raw:
        text = value.strip().rstrip("/") if isinstance(value, str) else value
        if text == "self":
            text = "'self'"
        if not isinstance(text, str) or not ORIGIN.fullmatch(text):
            raise MapError(
                f"origin {value!r} is not 'self', * or scheme://host[:port] "
                "(lower case, no path), e.g. https://www.example.gov.tw"
            )
        out.append(text)
    return tuple(dict.fromkeys(out))


def _kind(raw: Any) -> str:
    if isinstance(raw, str) and raw in KINDS:
        return KINDS[raw]
    if isinstance(raw, str) and raw in KINDS.values():
        return raw
    names = ", ".join(f"{k} = {v}" for k, v in KINDS.items())
    raise MapError(f"kind must be one of {names}; got {raw!r}")


def doc_from_json(
    raw: Any, *, map_id: str, organization: str | None = None, created_by: str = ""
) -> MapDoc:
    """A map document from its JSON form, checked (layers are checked against the catalog later).

    Args:
        raw: the decoded JSON body.
        map_id: the map's id (from the URL or freshly made).
        organization: the owner; None to take ``raw["organization"]``.
        created_by: the user saving it.

    Returns:
        The map.

    Raises:
        MapError: a part of the document is missing or wrong (the message names it).
    """
    if not isinstance(raw, dict):
        raise MapError("the map must be a JSON object")
    layers = raw.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise MapError(f"layers must list 1 to {MAX_LAYERS} layers")
    org = organization if organization is not None else raw.get("organization")
    search_layer = raw.get("search_layer") or ""
    if search_layer and not (isinstance(search_layer, str) and LAYER_ID.fullmatch(search_layer)):
        raise MapError("search_layer must be a layer id")
    basemap = raw.get("basemap") or ""
    if basemap and not (isinstance(basemap, str) and LAYER_ID.fullmatch(basemap)):
        raise MapError("basemap must be the id of a configured basemap")
    public = raw.get("public", True)
    if not isinstance(public, bool):
        raise MapError("public must be true or false")
    return MapDoc(
        id=map_id,
        title=_text(raw.get("title"), "title", 200),
        organization=_text(org, "organization", 100),
        kind=_kind(raw.get("kind", "viewer")),
        layers=tuple(_layer(item, n) for n, item in enumerate(layers)),
        view=_view(raw.get("view")),
        origins=_origins(raw.get("origins")),
        public=public,
        basemap=basemap,
        distance=_number(raw.get("distance", 500.0), "distance", 1, MAX_DISTANCE),
        search_layer=search_layer,
        created_by=created_by,
    )


def _thematic_json(t: Thematic | None) -> dict | None:
    if t is None:
        return None
    if t.mode == "categorized":
        return {"field": t.field, "mode": t.mode, "values": dict(t.values)}
    return {"field": t.field, "mode": t.mode, "breaks": list(t.breaks), "colors": list(t.colors)}


def doc_to_json(doc: MapDoc) -> dict[str, Any]:
    """The JSON form of a map (what ``GET /maps/{id}`` answers, without its links)."""
    return {
        "id": doc.id,
        "title": doc.title,
        "organization": doc.organization,
        "kind": doc.kind,
        "letter": next(k for k, v in KINDS.items() if v == doc.kind),
        "layers": [
            {
                "id": layer.id,
                "color": layer.color,
                "opacity": layer.opacity,
                "thematic": _thematic_json(layer.thematic),
            }
            for layer in doc.layers
        ],
        "view": {"center": list(doc.view.center), "zoom": doc.view.zoom} if doc.view else None,
        "origins": list(doc.origins),
        "public": doc.public,
        "basemap": doc.basemap,
        "distance": doc.distance,
        "search_layer": doc.search_layer,
        "created_by": doc.created_by,
        "created": doc.created.isoformat() if doc.created else None,
        "modified": doc.modified.isoformat() if doc.modified else None,
    }


def _from_row(row: Row[Any]) -> MapDoc:
    doc = doc_from_json(
        row.doc, map_id=row.id, organization=row.organization, created_by=row.created_by or ""
    )
    return replace(doc, created=row.created, modified=row.modified)


class MapStore:
    """Saved maps in the catalog database (table ``maps``), SQLite or PostgreSQL.

    Args:
        engine: the catalog database's engine (migrated to the head).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, map_id: str) -> MapDoc:
        """One map.

        Args:
            map_id: its id.

        Returns:
            The map.

        Raises:
            MapNotFound: no map has this id.
        """
        with self._engine.connect() as conn:
            row = conn.execute(select(maps_table).where(maps_table.c.id == map_id)).first()
        if row is None:
            raise MapNotFound(map_id)
        return _from_row(row)

    def put(self, doc: MapDoc) -> MapDoc:
        """Insert or replace a map (by id); ``created`` is kept, ``modified`` set to now.

        Args:
            doc: the map.

        Returns:
            The map as stored.
        """
        now = datetime.now(UTC)
        body = doc_to_json(doc)
        for key in ("id", "organization", "created_by", "created", "modified", "letter"):
            body.pop(key)
        values = {
            "organization": doc.organization,
            "title": doc.title,
            "kind": doc.kind,
            "public": doc.public,
            "doc": body,
            "modified": now,
        }
        with self._engine.begin() as conn:
            done = conn.execute(
                update(maps_table).where(maps_table.c.id == doc.id).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(maps_table).values(
                        id=doc.id, created_by=doc.created_by or None, created=now, **values
                    )
                )
        return self.get(doc.id)

    def list(self, organizations: Iterable[str] | None = None) -> list[MapDoc]:
        """Maps, newest first, optionally only those of some organizations.

        Args:
            organizations: organization names, or None for every map.

        Returns:
            The maps.
        """
        stmt = select(maps_table).order_by(maps_table.c.modified.desc(), maps_table.c.id)
        if organizations is not None:
            stmt = stmt.where(maps_table.c.organization.in_(list(organizations)))
        with self._engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(stmt)]

    def delete(self, map_id: str) -> None:
        """Delete a map.

        Args:
            map_id: its id.

        Raises:
            MapNotFound: no map has this id.
        """
        with self._engine.begin() as conn:
            done = conn.execute(delete(maps_table).where(maps_table.c.id == map_id))
        if done.rowcount == 0:
            raise MapNotFound(map_id)
