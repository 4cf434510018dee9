"""Web pages: the layer map viewer (``/map/{id}``) and the static assets it needs.

Pages are server-rendered (Jinja2) and readable without JavaScript; ``map.js`` turns the map
panel into a MapLibre GL JS map. MapLibre is served from the ``maplibre`` PyPI package
(``maplibre/srcjs/``), so the page works offline: no CDN, no external basemap.

Static files are looked up in tables built at import (file name → path): a URL never becomes
a path, so there is nothing to traverse. Asset URLs carry a content hash (``?v=``), which lets
responses be cached for a year.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import jinja2
import jinja2.runtime
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from catalog.view import Snapshot
from portal.web import i18n
from portal.web.mapstyle import vector_layers
from tiles.errors import LayerNotServed
from tiles.layers import layer_style
from tiles.tilesets import RasterSource, raster_source, tilesets

router = APIRouter()

HERE = Path(__file__).resolve().parent
LAYER_ID = re.compile(r"[a-z0-9-]+")
#: The manifest name of the tileset drawn under every map as its offline basemap.
BASEMAP_TILESET = "行政區界"
IMMUTABLE = "public, max-age=31536000, immutable"
#: What pages may load: only this server (MapLibre's worker starts from a blob: URL).
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; worker-src 'self' blob:; "
    "child-src blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
_MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".map": "application/json",
}


def _files(folder: Path | None) -> dict[str, Path]:
    """Servable files under ``folder`` by their relative POSIX path (none if it is absent)."""
    if folder is None or not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in _MEDIA
    }


def _maplibre_folder() -> Path | None:
    """``maplibre/srcjs`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec("maplibre")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "srcjs"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


OWN = _files(HERE / "static")
MAPLIBRE = {k: v for k, v in _files(_maplibre_folder()).items() if k.startswith("maplibre-gl")}
_VERSIONS = {**{f"maplibre/{k}": _digest(p) for k, p in MAPLIBRE.items()}}
_VERSIONS |= {k: _digest(p) for k, p in OWN.items()}


def static_url(name: str) -> str:
    """URL of a static asset (``map.js``, ``maplibre/maplibre-gl.js``) with its content hash."""
    return f"/static/{name}?v={_VERSIONS.get(name, '0')}"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_env.globals["static_url"] = static_url


@jinja2.pass_context
def href(context: jinja2.runtime.Context, path: str, **params: object) -> str:
    """A link to one of our pages that keeps the page's language when it came from ``?lang=``.

    Args:
        context: the template context (its ``lang_param`` is the ``?lang=`` value to keep).
        path: the page's path (``/dataset``).
        **params: query parameters; None or "" values are left out, lists repeat the key.

    Returns:
        The path with its query string.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None and item != "":
                pairs.append((key, str(item)))
    if context.get("lang_param"):
        pairs.append(("lang", str(context["lang_param"])))
    return f"{path}?{urlencode(pairs)}" if pairs else path


_env.globals["href"] = href


def _asset(path: Path) -> FileResponse:
    return FileResponse(
        path,
        media_type=_MEDIA[path.suffix],
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


@router.get("/static/maplibre/{name}", include_in_schema=False)
def maplibre_asset(name: str) -> Response:
    """MapLibre GL JS (``maplibre-gl.js``, ``maplibre-gl.css``) from the ``maplibre`` package."""
    path = MAPLIBRE.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return _asset(path)


@router.get("/static/glyphs/{fontstack}/{glyph_range}.pbf", include_in_schema=False)
def glyphs(fontstack: str, glyph_range: str) -> Response:
    """An empty glyph range: labels are drawn with the browser's own CJK font.

    MapLibre needs a ``glyphs`` URL to draw labels at all; it draws Chinese characters
    locally (``localIdeographFontFamily``), so no font file has to leave the server.
    """
    return Response(
        b"",
        media_type="application/x-protobuf",
        headers={"Cache-Control": IMMUTABLE},
    )


@router.get("/static/{name:path}", include_in_schema=False)
def own_asset(name: str) -> Response:
    """The portal's own scripts and style sheets (``portal/web/static``)."""
    path = OWN.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return _asset(path)


@dataclass(frozen=True)
class Basemap:
    """The raster tileset drawn under the layer."""

    id: str
    title: str
    tilejson: str


@dataclass(frozen=True)
class MapPage:
    """Everything the map viewer shows of one layer or tileset.

    Attributes:
        id: the layer or tileset id.
        kind: "vector", "raster" or "tileset".
        title: in the page's language (zh-TW when no English title exists).
        agency: the agency (or agencies of a tileset's members), in the page's language.
        bounds: (west, south, east, north) in EPSG:4326, or None when unknown.
        tilejson: URL of the TileJSON the map reads its tiles from.
        style_layers: MapLibre style layers of a vector layer (empty for rasters).
        legend: the WMS GetLegendGraphic URL of a layer; None for a tileset (its members are
            listed instead) and when this server has no WMS.
        basemap: the tileset drawn under the layer, None when there is none (or it is this).
        members: titles of a tileset's layers.
        feature_count: features of a vector layer, None otherwise.
        source_crs: the CRS the data came in ("" for a tileset).
    """

    id: str
    kind: str
    title: str
    agency: str
    bounds: tuple[float, float, float, float] | None
    tilejson: str
    style_layers: tuple[dict, ...]
    legend: str | None
    basemap: Basemap | None
    members: tuple[str, ...] = ()
    feature_count: int | None = None
    source_crs: str = ""


def _has_wms(request: Request) -> bool:
    """Whether the app serves WMS (``create_app`` sets ``app.state.wms``)."""
    return bool(getattr(request.app.state, "wms", False))


def _basemap(snapshot: Snapshot, source: RasterSource) -> Basemap | None:
    """The 行政區界 tileset, unless it is what the page shows or already holds the layer."""
    for tileset in tilesets(snapshot).values():
        if tileset.name != BASEMAP_TILESET:
            continue
        if tileset.id == source.id or set(source.layer_ids) & set(tileset.layer_ids):
            return None
        return Basemap(tileset.id, tileset.title, f"/tiles/{tileset.id}.json")
    return None


def _localized(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" and en else zh


def build_page(request: Request, source_id: str, lang: str) -> MapPage:
    """The map page of a layer or tileset.

    Raises:
        LayerNotServed: no drawable layer or tileset has this id.
    """
    snapshot = request.app.state.view.snapshot()
    source = raster_source(snapshot, source_id)
    legend = None
    if _has_wms(request) and source.kind != "tileset":
        legend = (
            "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic"
            f"&LAYER={source.id}&FORMAT=image/png"
        )
    members = [snapshot.layers[i] for i in source.layer_ids]
    agencies = dict.fromkeys(_localized(m.agency.title, m.agency.title_en, lang) for m in members)
    common = {
        "id": source.id,
        "title": _localized(source.title, source.title_en, lang),
        "agency": "、".join(a for a in agencies if a),
        "bounds": source.bbox,
        "tilejson": f"/tiles/{source.id}.json",
        "legend": legend,
        "basemap": _basemap(snapshot, source),
    }
    if source.kind == "tileset":
        titles = tuple(_localized(m.title, m.title_en, lang) for m in members)
        return MapPage(kind="tileset", style_layers=(), members=titles, **common)
    layer, version = snapshot.layers[source.id], snapshot.versions[source.id]
    if version.kind == "raster":
        return MapPage(kind="raster", style_layers=(), source_crs=version.source_crs, **common)
    latitude = (version.bbox[1] + version.bbox[3]) / 2 if version.bbox else 0.0
    style = layer_style(layer, version)
    drawn = vector_layers("layer", layer.id, style, version.geometry_type, latitude)
    return MapPage(
        kind="vector",
        style_layers=tuple(drawn),
        feature_count=version.feature_count,
        source_crs=version.source_crs,
        **common,
    )


def map_config(page: MapPage, msgs: Mapping[str, str]) -> str:
    """The map's settings for ``map.js``, as JSON safe inside a ``<script>`` element.

    Any page that holds ``#map``, ``#map-message`` and a ``<script type="application/json"
    id="map-config">`` with this text gets the map of ``page`` from ``map.js``.

    Args:
        page: what the map shows (:func:`build_page`).
        msgs: the page language's message table.

    Returns:
        The JSON text, with ``<``, ``>`` and ``&`` escaped.
    """
    doc = {
        "id": page.id,
        "kind": page.kind,
        "bounds": page.bounds,
        "tilejson": page.tilejson,
        "layers": list(page.style_layers),
        "basemap": asdict(page.basemap) if page.basemap else None,
        "glyphs": "/static/glyphs/{fontstack}/{range}.pbf",
        "text": {k: msgs[k] for k in ("popup_title", "attribute", "value", "no_webgl")},
    }
    return script_json(doc)


def script_json(doc: object) -> str:
    """``doc`` as JSON that is safe inside a ``<script type="application/json">`` element.

    ``<``, ``>`` and ``&`` are escaped (no ``</script>`` can end the element early), and so
    are U+2028 and U+2029 (line terminators to JavaScript parsers before ES2019).
    """
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(template: str, status: int, lang: str, **context: object) -> HTMLResponse:
    """A page from a template, with the page headers (CSP, language) every page carries.

    Args:
        template: the template's file name under ``templates/``.
        status: the HTTP status.
        lang: the page language.
        **context: the template's variables (``path`` at least, for the language switch).

    Returns:
        The HTML response.
    """
    msgs = i18n.messages(lang)
    body = _env.get_template(template).render(lang=lang, other=i18n.other(lang), t=msgs, **context)
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Content-Language": lang,
        "Vary": "Accept-Language",
    }
    return HTMLResponse(body, status_code=status, headers=headers)


@router.get("/map/{layer_id}", response_class=HTMLResponse)
def map_page(request: Request, layer_id: str, lang: str | None = None) -> HTMLResponse:
    """A full-page map of one layer or tileset: title, agency, legend, popups, fitted to it.

    ``?lang=en`` (or ``Accept-Language``) gives the English page; zh-TW is the default.
    """
    language = i18n.negotiate(lang, request.headers.get("accept-language"))
    msgs = i18n.messages(language)
    if not LAYER_ID.fullmatch(layer_id):
        message = msgs["bad_id"].format(id=layer_id)
        return render("error.html", 400, language, message=message, path=request.url.path)
    try:
        page = build_page(request, layer_id, language)
    except LayerNotServed:
        message = msgs["not_found"].format(id=layer_id)
        return render("error.html", 404, language, message=message, path=request.url.path)
    return render(
        "map.html", 200, language, page=page, config=map_config(page, msgs), path=request.url.path
    )
