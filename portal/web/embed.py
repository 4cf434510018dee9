"""The map composer, saved maps as JSON, and the seven embeddable widgets.

- ``/maps/new``, ``/maps/{map}/edit``: the composer (signed-in editors and admins of an
  organization, and sysadmins); ``/maps``: the maps the user may edit.
- ``/maps/{map}``: the map as JSON — GET (public maps: anyone; others: their organization),
  PUT and DELETE by the organization's editors with the CSRF token; ``POST /maps`` creates.
- ``/embed/{map}``: the widget page, framed by other sites: its CSP ``frame-ancestors`` is the
  map's allowed origins (``'self'`` by default); every other page keeps ``'none'``.

The widget reads everything it needs from one JSON configuration built here from the map and
the catalog (:func:`widget_config`): its layers' tiles and MapLibre style layers (with the
map's overrides applied), legends, the basemap, a static WMS picture for browsers without
WebGL, and the texts in the page's language.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from catalog.model import Layer, LayerVersion
from catalog.style import StyleError, geometry_kind, parse_style
from catalog.view import Snapshot
from geoportal.settings import ExternalBasemap
from portal.web import auth, i18n, routes
from portal.web.maps import (
    KINDS,
    MAP_ID,
    MapDoc,
    MapError,
    MapLayer,
    MapNotFound,
    MapStore,
    Thematic,
    doc_from_json,
    doc_to_json,
    new_map_id,
)
from portal.web.mapstyle import rgba, vector_layers
from portal.web.routes import BASEMAP_TILESET, script_json
from tiles.tilesets import tilesets

router = APIRouter()
router.include_router(auth.router)

#: CSP of the widget and composer pages; {ancestors} and {extra} are filled per map.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:{extra}; worker-src 'self' blob:; "
    "child-src blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'{extra}; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {ancestors}"
)
#: Size of the static WMS picture in the <noscript> fallback.
FALLBACK_SIZE = (800, 500)
#: Metres per pixel at MapLibre zoom 0 (512 px tiles) on the equator.
RESOLUTION_Z0 = 2 * math.pi * 6378137 / 512
QUALITATIVE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b2df8a",
    "#fb9a99",
    "#cab2d6",
)
#: Colour of the values a categorized thematic style does not list.
OTHER = "#bdbdbd"
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
#: Kinds whose first layer must be a vector layer (they query its features).
NEEDS_VECTOR = ("thematic", "nearby", "table")


# -- rendering ---------------------------------------------------------------------------------


def _hosts(basemaps: list[ExternalBasemap]) -> str:
    hosts = sorted({f"{urlsplit(b.url).scheme}://{urlsplit(b.url).netloc}" for b in basemaps})
    return "".join(f" {h}" for h in hosts)


def content_policy(ancestors: tuple[str, ...] = ("'none'",), basemaps: tuple = ()) -> str:
    """The CSP of a composer or widget page.

    Args:
        ancestors: the ``frame-ancestors`` sources (already checked by ``portal.web.maps``).
        basemaps: external basemaps the page may load tiles from (their hosts are allowed).

    Returns:
        The header value.
    """
    return CSP.format(ancestors=" ".join(ancestors), extra=_hosts(list(basemaps)))


def render(
    request: Request, template: str, status: int, lang: str, *, csp: str | None = None, **ctx: Any
) -> HTMLResponse:
    """A page of this module (or the sign-in page) in ``lang``, with its security headers.

    Rendered by :func:`portal.web.routes.render` (the portal's one template environment),
    with this module's CSP.

    Args:
        request: the request (its path and signed-in user reach the template).
        template: the template file name.
        status: the HTTP status.
        lang: the page language.
        csp: the Content-Security-Policy (default: no framing, no outside hosts).
        **ctx: the template's own variables.

    Returns:
        The response.
    """
    user = auth.current_user(request)
    keep = lang if request.query_params.get("lang") else ""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    pairs.append(("lang", i18n.other(lang)))
    ctx.setdefault("csrf", auth.csrf_token(request) if user is not None else "")
    response = routes.render(
        template,
        status,
        lang,
        path=request.url.path,
        switch_url=f"{request.url.path}?{urlencode(pairs)}",
        lang_param=keep,
        user=user,
        signin=True,
        **ctx,
    )
    response.headers["Content-Security-Policy"] = csp or content_policy()
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Cache-Control"] = "no-cache" if template == "embed.html" else "no-store"
    return response


def _lang(request: Request) -> str:
    return i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def problem(status: int, title: str, detail: str) -> JSONResponse:
    """An RFC 7807 problem document."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    lang = _lang(request)
    title = i18n.messages(lang)["embed_error_title"]
    return render(request, "embed_error.html", status, lang, title=title, message=message)


# -- the catalog side of a map -----------------------------------------------------------------


def _snapshot(request: Request) -> Snapshot:
    return request.app.state.view.snapshot()


def _store(request: Request) -> MapStore:
    store = getattr(request.app.state, "map_store", None)
    if store is None:
        from portal.ckan.api import portal_of

        store = MapStore(portal_of(request.app).store.engine)
        request.app.state.map_store = store
    return store


def _basemaps(request: Request) -> list[ExternalBasemap]:
    return list(getattr(request.app.state.settings, "basemaps", []) or [])


def _drawable(snapshot: Snapshot, layer_id: str) -> tuple[Layer, LayerVersion]:
    layer, version = snapshot.layers.get(layer_id), snapshot.versions.get(layer_id)
    if layer is None or version is None or version.kind not in ("vector", "raster"):
        raise MapError(f"layer {layer_id!r} is not a published map layer of this catalog")
    return layer, version


def _style_dict(layer: Layer, version: LayerVersion, item: MapLayer) -> dict:
    """The layer's stored style with the map's overrides written over it."""
    written = dict(layer.style or {})
    if item.color:
        written.pop("categorized", None)
        written.pop("graduated", None)
        kind = geometry_kind(version.geometry_type)
        keys = {"polygon": ("fill",), "line": ("stroke",), "point": ("fill",)}
        for key in keys.get(kind or "", ("fill", "stroke")):
            written[key] = item.color
    if item.thematic:
        written.pop("categorized", None)
        written.pop("graduated", None)
        t = item.thematic
        if t.mode == "categorized":
            written["categorized"] = {"field": t.field, "values": dict(t.values), "other": OTHER}
        else:
            written["graduated"] = {
                "field": t.field,
                "breaks": list(t.breaks),
                "colors": list(t.colors),
            }
    written["opacity"] = float(written.get("opacity", 1.0)) * item.opacity
    return written


def check_map(request: Request, doc: MapDoc) -> None:
    """Check a map against the catalog and the settings.

    Raises:
        MapError: a layer is missing or not drawable, a style override does not fit its layer,
            the kind needs what the layers do not give, or the basemap is not configured.
    """
    snapshot = _snapshot(request)
    for n, item in enumerate(doc.layers):
        layer, version = _drawable(snapshot, item.id)
        if version.kind == "raster" and (item.thematic or item.color):
            raise MapError(f"layers[{n}]: a raster layer takes no colour or thematic style")
        if item.thematic and item.thematic.field not in {f.name for f in version.fields}:
            raise MapError(
                f"layers[{n}].thematic.field: layer {item.id!r} has no field "
                f"{item.thematic.field!r}"
            )
        try:
            parse_style(_style_dict(layer, version, item), version.geometry_type)
        except StyleError as exc:
            raise MapError(f"layers[{n}]: {exc}") from exc
    first = snapshot.versions[doc.layers[0].id]
    if doc.kind in NEEDS_VECTOR and first.kind != "vector":
        raise MapError(f"a {doc.kind} widget needs a vector layer first")
    if doc.kind == "thematic" and doc.layers[0].thematic is None:
        raise MapError("a thematic widget needs a thematic style on its first layer")
    if doc.kind == "compare" and len(doc.layers) < 2:
        raise MapError("a compare widget needs two layers")
    if doc.search_layer:
        _layer, version = _drawable(snapshot, doc.search_layer)
        if version.kind != "vector":
            raise MapError("search_layer must be a vector layer")
    if doc.basemap and doc.basemap not in {b.id for b in _basemaps(request)}:
        raise MapError(f"basemap {doc.basemap!r} is not configured (GEOPORTAL_BASEMAPS)")


@dataclass(frozen=True)
class LegendClass:
    """One class of a thematic legend."""

    label: str
    color: str


def thematic_legend(t: Thematic, other: str) -> tuple[LegendClass, ...]:
    """The classes of a thematic style, as the legend lists them (``other``: its label)."""
    if t.mode == "categorized":
        return (
            *(LegendClass(value, colour) for value, colour in t.values),
            LegendClass(other, OTHER),
        )
    out = [LegendClass(f"< {t.breaks[0]:g}", t.colors[0])]
    for low, high, colour in zip(t.breaks, t.breaks[1:], t.colors[1:], strict=False):
        out.append(LegendClass(f"{low:g} – < {high:g}", colour))
    out.append(LegendClass(f"≥ {t.breaks[-1]:g}", t.colors[-1]))
    return tuple(out)


def _title(layer: Layer, lang: str) -> str:
    return layer.title_en if lang == "en" and layer.title_en else layer.title


def _layer_config(snapshot: Snapshot, item: MapLayer, n: int, lang: str, wms: bool) -> dict:
    layer, version = snapshot.layers[item.id], snapshot.versions[item.id]
    entry: dict[str, Any] = {
        "id": layer.id,
        "title": _title(layer, lang),
        "kind": version.kind,
        "geometry": geometry_kind(version.geometry_type) or "",
        "tilejson": f"/tiles/{layer.id}.json",
        "bbox": version.bbox,
        "fields": [f.name for f in version.fields if f.raw_of is None],
        "legend": (
            "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic"
            f"&LAYER={layer.id}&FORMAT=image/png"
            if wms and item.thematic is None and item.color is None
            else None
        ),
        "thematic": (
            {
                "field": item.thematic.field,
                "classes": [
                    {"label": c.label, "color": c.color}
                    for c in thematic_legend(item.thematic, i18n.messages(lang)["embed_other"])
                ],
            }
            if item.thematic
            else None
        ),
        "opacity": item.opacity,
        "layers": [],
    }
    if version.kind == "vector":
        style = parse_style(_style_dict(layer, version, item), version.geometry_type)
        latitude = (version.bbox[1] + version.bbox[3]) / 2 if version.bbox else 24.0
        entry["layers"] = vector_layers(f"s{n}", layer.id, style, version.geometry_type, latitude)
        if item.color:
            entry["swatch"] = rgba(item.color)
    return entry


def _union(boxes: list) -> list[float] | None:
    boxes = [b for b in boxes if b]
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _catalog_basemap(snapshot: Snapshot) -> dict | None:
    for tileset in tilesets(snapshot).values():
        if tileset.name == BASEMAP_TILESET:
            return {
                "id": tileset.id,
                "title": tileset.title,
                "tilejson": f"/tiles/{tileset.id}.json",
            }
    return None


def _external(basemap: ExternalBasemap) -> dict:
    url = (
        basemap.url.replace("{TileMatrix}", "{z}")
        .replace("{TileRow}", "{y}")
        .replace("{TileCol}", "{x}")
    )
    return {
        "id": basemap.id,
        "title": basemap.title,
        "tiles": [url],
        "attribution": basemap.attribution,
    }


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    x = math.radians(lon) * 6378137
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137
    return x, y


def fallback_url(doc: MapDoc, layer_ids: list[str], bounds: list[float] | None) -> str:
    """A static WMS GetMap picture (EPSG:3857) of the map's layers at its initial view."""
    width, height = FALLBACK_SIZE
    if doc.view is not None:
        cx, cy = _mercator(*doc.view.center)
        res = RESOLUTION_Z0 / 2**doc.view.zoom
        half_w, half_h = width / 2 * res, height / 2 * res
        bbox = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    else:
        west, south, east, north = bounds or (120.46, 23.99, 121.45, 24.44)
        x0, y0 = _mercator(west, south)
        x1, y1 = _mercator(east, north)
        res = max((x1 - x0) / width, (y1 - y0) / height) * 1.05
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        bbox = (
            cx - width / 2 * res,
            cy - height / 2 * res,
            cx + width / 2 * res,
            cy + height / 2 * res,
        )
    query = {
        "SERVICE": "WMS",
        "VERSION": "1.3.0",
        "REQUEST": "GetMap",
        "LAYERS": ",".join(layer_ids),
        "STYLES": "",
        "CRS": "EPSG:3857",
        "BBOX": ",".join(f"{v:.2f}" for v in bbox),
        "WIDTH": str(width),
        "HEIGHT": str(height),
        "FORMAT": "image/png",
        "TRANSPARENT": "FALSE",
    }
    return "/wms?" + urlencode(query, safe=",:/")


_TEXT_KEYS = (
    "popup_title",
    "attribute",
    "value",
    "no_webgl",
    "embed_fallback",
    "embed_picked",
    "embed_wgs84",
    "embed_twd97",
    "embed_district",
    "embed_no_district",
    "embed_searching",
    "embed_no_results",
    "embed_results",
    "embed_nearby_found",
    "embed_distance_m",
    "embed_table_count",
    "embed_error",
    "embed_swipe",
    "embed_address",
    "embed_poi",
)


def widget_config(request: Request, doc: MapDoc, lang: str) -> dict:
    """Everything ``embed.js`` needs to draw the widget of ``doc``.

    Raises:
        MapError: a layer of the map is gone from the catalog.
    """
    snapshot = _snapshot(request)
    wms = True  # tiles.wms is part of every geoportal app
    for item in doc.layers:
        _drawable(snapshot, item.id)
    layers = [_layer_config(snapshot, item, n, lang, wms) for n, item in enumerate(doc.layers)]
    bounds = _union([entry["bbox"] for entry in layers])
    external = {b.id: b for b in _basemaps(request)}
    msgs = i18n.messages(lang)
    search = doc.search_layer and snapshot.layers.get(doc.search_layer)
    return {
        "map": doc.id,
        "kind": doc.kind,
        "title": doc.title,
        "lang": lang,
        "view": {"center": list(doc.view.center), "zoom": doc.view.zoom} if doc.view else None,
        "bounds": bounds,
        "layers": layers,
        "basemap": _catalog_basemap(snapshot),
        "external": _external(external[doc.basemap]) if doc.basemap in external else None,
        "fallback": fallback_url(doc, [i.id for i in doc.layers], bounds) if wms else None,
        "distance": doc.distance,
        "search_layer": (
            {"id": doc.search_layer, "title": _title(search, lang)} if search else None
        ),
        "glyphs": "/static/glyphs/{fontstack}/{range}.pbf",
        "text": {k: msgs[k] for k in _TEXT_KEYS},
    }


def _frame_ancestors(doc: MapDoc) -> tuple[str, ...]:
    return doc.origins or ("'self'",)


# -- who may do what ---------------------------------------------------------------------------


def _may_read(request: Request, doc: MapDoc) -> bool:
    if doc.public:
        return True
    user = auth.current_user(request)
    if user is None:
        return False
    if user.sysadmin:
        return True
    from portal.ckan.api import portal_of

    held = portal_of(request.app).store.memberships(user=user.id, organization=doc.organization)
    return bool(held)


def _write_refusal(request: Request, organization: str) -> JSONResponse | None:
    """None when the signed-in user may write maps of ``organization``, else the problem."""
    user = auth.current_user(request)
    if user is None:
        return problem(401, "Unauthorized", "sign in first (/user/login)")
    if not auth.csrf_ok(request, request.headers.get(auth.CSRF_HEADER)):
        return problem(403, "Forbidden", "missing or wrong X-CSRF-Token header")
    if organization not in auth.composer_organizations(request, user):
        return problem(
            403,
            "Forbidden",
            f"{user.name} is not an editor or admin of organization {organization!r}",
        )
    return None


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MapError(f"the body is not JSON: {exc}") from exc


def _map_json(request: Request, doc: MapDoc) -> dict:
    base = str(request.base_url).rstrip("/")
    body = doc_to_json(doc)
    body["links"] = {
        "self": f"{base}/maps/{doc.id}",
        "embed": f"{base}/embed/{doc.id}",
        "edit": f"{base}/maps/{doc.id}/edit",
    }
    body["snippets"] = snippets(base, doc)
    return body


def snippets(base: str, doc: MapDoc) -> dict[str, str]:
    """The HTML a site pastes to embed the map: an iframe, or the JS loader."""
    title = doc.title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return {
        "iframe": (
            f'<iframe src="{base}/embed/{doc.id}" title="{title}" width="100%" height="480" '
            'style="border:0" loading="lazy"></iframe>'
        ),
        "script": f'<script src="{base}/static/loader.js" data-map="{doc.id}"></script>',
    }


# -- routes: saved maps as JSON ----------------------------------------------------------------


@router.get("/static/loader.js", include_in_schema=False)
def loader() -> Response:
    """The widget loader other sites include by this fixed URL (so cached for an hour only)."""
    return FileResponse(
        routes.OWN["loader.js"],
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.post("/maps")
async def create_map(request: Request) -> Response:
    """Save a new map (JSON body; signed in, CSRF header): 201 and the map with its links."""
    try:
        raw = await _body(request)
        org = raw.get("organization") if isinstance(raw, dict) else None
        refusal = _write_refusal(request, str(org or ""))
        if refusal is not None:
            return refusal
        user = auth.current_user(request)
        doc = doc_from_json(raw, map_id=new_map_id(), created_by=user.name if user else "")
        check_map(request, doc)
    except MapError as exc:
        return problem(400, "Bad Request", str(exc))
    saved = _store(request).put(doc)
    response = JSONResponse(_map_json(request, saved), status_code=201)
    response.headers["Location"] = f"/maps/{saved.id}"
    return response


@router.post("/maps/preview")
async def preview_map(request: Request) -> Response:
    """The widget configuration of an unsaved map (the composer's preview)."""
    user = auth.current_user(request)
    if user is None:
        return problem(401, "Unauthorized", "sign in first (/user/login)")
    if not auth.csrf_ok(request, request.headers.get(auth.CSRF_HEADER)):
        return problem(403, "Forbidden", "missing or wrong X-CSRF-Token header")
    try:
        raw = await _body(request)
        doc = doc_from_json(raw, map_id="preview", organization="preview")
        check_map(request, doc)
    except MapError as exc:
        return problem(400, "Bad Request", str(exc))
    return JSONResponse(widget_config(request, doc, _lang(request)))


@router.get("/maps/layers")
def find_layers(request: Request, q: str = "") -> Response:
    """Layers the composer can add, found by the portal's dataset search (``q``)."""
    from portal.ckan.api import portal_of
    from portal.ckan.errors import SearchQueryError
    from portal.ckan.search import SearchParams

    portal = portal_of(request.app)
    portal.begin()
    snapshot = _snapshot(request)
    user = auth.current_user(request)
    orgs = frozenset(auth.composer_organizations(request, user))
    params = SearchParams(q=q.strip()[:200], rows=50, include_private=bool(orgs), viewer_orgs=orgs)
    try:
        found = portal.index().search(params)
    except SearchQueryError as exc:
        return problem(400, "Bad Request", f"bad search: {exc}")
    out = []
    for ds in found.datasets:
        version = snapshot.versions.get(ds.layer_id or "")
        if version is None or version.kind not in ("vector", "raster"):
            continue
        layer = snapshot.layers[version.layer_id]
        out.append(
            {
                "id": layer.id,
                "title": _title(layer, _lang(request)),
                "agency": layer.agency.title,
                "kind": version.kind,
                "geometry": geometry_kind(version.geometry_type) or "",
                "bbox": version.bbox,
                "fields": [
                    {"name": f.name, "type": f.type} for f in version.fields if f.raw_of is None
                ],
            }
        )
    return JSONResponse({"count": len(out), "layers": out})


@router.get("/maps/layers/{layer_id}/fields/{field}")
def field_classes(request: Request, layer_id: str, field: str) -> Response:
    """A suggested thematic style for one field: categories (text) or quantile classes."""
    import numpy as np
    import pyogrio

    snapshot = _snapshot(request)
    try:
        _layer, version = _drawable(snapshot, layer_id)
    except MapError as exc:
        return problem(404, "Not Found", str(exc))
    info = next((f for f in version.fields if f.name == field), None)
    if version.kind != "vector" or info is None:
        return problem(404, "Not Found", f"layer {layer_id!r} has no field {field!r}")
    path = request.app.state.settings.home / version.path
    frame = pyogrio.read_dataframe(path, layer="features", columns=[field], read_geometry=False)
    column = frame[field].dropna()
    if info.type in ("integer", "decimal") and column.nunique() > len(QUALITATIVE):
        values = column.astype(float).to_numpy()
        breaks = sorted({float(np.quantile(values, q)) for q in (0.2, 0.4, 0.6, 0.8)})
        breaks = [round(b, 6) for b in breaks]
        colors = list(SEQUENTIAL[: len(breaks) + 1])
        return JSONResponse(
            {"field": field, "mode": "graduated", "breaks": breaks, "colors": colors}
        )
    counts = column.astype(str).value_counts()
    values = {str(v): QUALITATIVE[n] for n, v in enumerate(counts.index[: len(QUALITATIVE)])}
    return JSONResponse({"field": field, "mode": "categorized", "values": values})


@router.get("/maps/new", response_class=HTMLResponse)
def new_map(request: Request, layer: str | None = None) -> Response:
    """The map composer for a new map (``?layer=`` adds that layer first)."""
    return _composer(request, None, layer)


@router.get("/maps", response_class=HTMLResponse)
def my_maps(request: Request) -> Response:
    """The maps of the organizations the signed-in user may compose for."""
    user = auth.current_user(request)
    if user is None:
        return RedirectResponse(auth.login_url(request), status_code=303)
    orgs = auth.composer_organizations(request, user)
    maps = _store(request).list(orgs)
    return render(request, "composer_list.html", 200, _lang(request), maps=maps, kinds=KINDS)


@router.get("/maps/{map_id}")
def get_map(request: Request, map_id: str) -> Response:
    """A saved map as JSON (public maps to anyone, others to their organization's members)."""
    if not MAP_ID.fullmatch(map_id):
        return problem(400, "Bad Request", f"{map_id!r} is not a map id")
    try:
        doc = _store(request).get(map_id)
    except MapNotFound as exc:
        return problem(404, "Not Found", str(exc))
    if not _may_read(request, doc):
        return problem(404, "Not Found", f"there is no map {map_id!r}")
    return JSONResponse(
        _map_json(request, doc),
        headers={"Access-Control-Allow-Origin": "*"} if doc.public else None,
    )


@router.put("/maps/{map_id}")
@router.post("/maps/{map_id}")
async def put_map(request: Request, map_id: str) -> Response:
    """Replace a saved map (its organization's editors; CSRF header); it keeps its owner."""
    store = _store(request)
    try:
        current = store.get(map_id)
    except MapNotFound as exc:
        return problem(404, "Not Found", str(exc))
    refusal = _write_refusal(request, current.organization)
    if refusal is not None:
        return refusal
    try:
        raw = await _body(request)
        if isinstance(raw, dict) and raw.get("organization") not in (None, current.organization):
            target = str(raw["organization"])
            if (moved := _write_refusal(request, target)) is not None:
                return moved
        org = raw.get("organization") if isinstance(raw, dict) else None
        doc = doc_from_json(
            raw,
            map_id=map_id,
            organization=org or current.organization,
            created_by=current.created_by,
        )
        check_map(request, doc)
    except MapError as exc:
        return problem(400, "Bad Request", str(exc))
    return JSONResponse(_map_json(request, store.put(doc)))


@router.delete("/maps/{map_id}")
def delete_map(request: Request, map_id: str) -> Response:
    """Delete a saved map (its organization's editors; CSRF header): 204."""
    store = _store(request)
    try:
        current = store.get(map_id)
    except MapNotFound as exc:
        return problem(404, "Not Found", str(exc))
    refusal = _write_refusal(request, current.organization)
    if refusal is not None:
        return refusal
    store.delete(map_id)
    return Response(status_code=204)


# -- routes: pages -----------------------------------------------------------------------------


def _composer(request: Request, doc: MapDoc | None, layer: str | None) -> Response:
    user = auth.current_user(request)
    if user is None:
        return RedirectResponse(auth.login_url(request), status_code=303)
    lang = _lang(request)
    msgs = i18n.messages(lang)
    orgs = auth.composer_organizations(request, user)
    if not orgs or (doc is not None and doc.organization not in orgs):
        return _error_page(request, 403, msgs["composer_forbidden"])
    from portal.ckan.api import portal_of

    known = portal_of(request.app).organizations()
    organizations = [
        {
            "name": name,
            "title": (
                known[name].title_en if lang == "en" and known[name].title_en else known[name].title
            )
            if name in known
            else name,
        }
        for name in orgs
    ]
    basemaps = _basemaps(request)
    config = {
        "csrf": auth.csrf_token(request),
        "doc": doc_to_json(doc) if doc else None,
        "snippets": snippets(str(request.base_url).rstrip("/"), doc) if doc else None,
        "add_layer": layer or "",
        "organizations": organizations,
        "basemaps": [{"id": b.id, "title": b.title} for b in basemaps],
        "kinds": KINDS,
        "text": {k: msgs[k] for k in msgs if k.startswith("composer_js_")},
    }
    return render(
        request,
        "composer.html",
        200,
        lang,
        csp=content_policy(("'none'",), tuple(basemaps)),
        doc=doc,
        organizations=organizations,
        basemaps=basemaps,
        kinds=KINDS,
        config=script_json(config),
    )


@router.get("/maps/{map_id}/edit", response_class=HTMLResponse)
def edit_map(request: Request, map_id: str) -> Response:
    """The map composer for a saved map."""
    try:
        doc = _store(request).get(map_id)
    except MapNotFound:
        msgs = i18n.messages(_lang(request))
        return _error_page(request, 404, msgs["embed_not_found"].format(id=map_id))
    return _composer(request, doc, None)


@router.get("/embed/{map_id}", response_class=HTMLResponse)
def embed(request: Request, map_id: str) -> Response:
    """The widget of a saved map, framable by the map's allowed origins only."""
    lang = _lang(request)
    msgs = i18n.messages(lang)
    try:
        doc = _store(request).get(map_id) if MAP_ID.fullmatch(map_id) else None
    except MapNotFound:
        doc = None
    if doc is None or not _may_read(request, doc):
        return _error_page(request, 404, msgs["embed_not_found"].format(id=map_id))
    try:
        config = widget_config(request, doc, lang)
    except MapError as exc:
        return _error_page(request, 409, str(exc))
    external = [b for b in _basemaps(request) if b.id == doc.basemap]
    return render(
        request,
        "embed.html",
        200,
        lang,
        csp=content_policy(_frame_ancestors(doc), tuple(external)),
        doc=doc,
        widget=config,
        config=script_json(config),
    )
