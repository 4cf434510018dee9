"""The portal's pages: home, dataset search, dataset, organization and group pages.

CKAN's paths (SPEC): ``/`` , ``/dataset`` (search with facets and paging), ``/dataset/{name}``,
``/organization`` and ``/organization/{name}``, ``/group`` and ``/group/{name}``; ``/map``
opens the map viewer on the catalog's basemap tileset. Pages are server-rendered and work
without JavaScript: the search is a GET form, facets are links, paging is links. The dataset
page's preview map is ``map.js`` (the same map as ``/map/{id}``), its attribute table is
rendered on the server from the stored features and refreshed by ``table.js``; ``pages.js``
adds copy buttons to the API snippets.

The search is ``package_search``'s own (:class:`portal.ckan.search.SearchIndex`), so a page
and the Action API always agree. Private datasets are shown only to members of their
organization (signed in through ``portal.web.auth`` when that module is present).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from catalog.model import LayerVersion
from portal.ckan.actions import ACTIONS
from portal.ckan.actions.registry import Context, validate
from portal.ckan.api import Portal, portal_of
from portal.ckan.auth import ANONYMOUS, Caller
from portal.ckan.errors import CkanError, NotFound, SearchQueryError
from portal.ckan.licenses import license_of
from portal.ckan.model import Dataset, Group, Organization, Resource, User
from portal.ckan.search import SearchParams, SearchResult
from portal.web import i18n
from portal.web.routes import BASEMAP_TILESET, build_page, map_config, render, script_json
from tiles.errors import LayerNotServed
from tiles.tilesets import tilesets

router = APIRouter()

#: Datasets per page of search results (and of organization and group pages).
ROWS = 20
#: Rows of a preview or attribute table rendered on the server.
PREVIEW_ROWS = 20
#: Features ``table.js`` asks OGC API Features for.
JS_ROWS = 50
#: The facets of the search page, in the order shown.
FACETS = (
    "organization",
    "groups",
    "tags",
    "res_format",
    "license_id",
    "category",
    "quality_label",
)
#: Values shown per facet.
FACET_LIMIT = 10
#: Sort orders offered (``package_search`` sort strings) → message key of their label.
SORTS = {
    "score desc, metadata_modified desc": "sort_relevance",
    "metadata_modified desc": "sort_modified",
    "metadata_created desc": "sort_created",
    "title_string asc": "sort_title_asc",
    "title_string desc": "sort_title_desc",
}
DEFAULT_SORT = next(iter(SORTS))
NAME = re.compile(r"[a-z0-9_-]{2,100}")
QUALITY_AXES = ("obtainable", "processable", "understandable")


# -- who is asking -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page.

    Attributes:
        user: the signed-in user, or None.
        caller: the same as the CKAN side sees it (roles by organization).
    """

    user: User | None = None
    caller: Caller = ANONYMOUS


def _auth() -> ModuleType | None:
    """``portal.web.auth`` (staff sign-in), when this version has it."""
    try:
        from portal.web import auth
    except ImportError:
        return None
    return auth


def _stats() -> ModuleType | None:
    """``portal.stats`` (usage statistics), when this version has it."""
    try:
        from portal import stats
    except ImportError:
        return None
    return stats


def viewer_of(request: Request, portal: Portal) -> Viewer:
    """The signed-in user of a request and their organization roles (anonymous without auth).

    Args:
        request: the request.
        portal: the app's portal.

    Returns:
        The viewer.
    """
    auth = _auth()
    user = auth.current_user(request) if auth is not None else None
    if user is None:
        return Viewer()
    roles = {m.organization: m.role for m in portal.store.memberships(user=user.name)}
    return Viewer(user, Caller(user, roles))


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """What every page needs from its request: language, paths and the viewer.

    Attributes:
        request: the request.
        lang: the page language.
        lang_param: the ``?lang=`` value to keep in links ("" when the language was negotiated).
        viewer: who is looking.
    """

    request: Request
    lang: str
    lang_param: str
    viewer: Viewer

    @property
    def msgs(self) -> Mapping[str, str]:
        """The page language's messages."""
        return i18n.messages(self.lang)

    def switch_url(self) -> str:
        """This page in the other language (the query kept)."""
        pairs = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        pairs.append(("lang", i18n.other(self.lang)))
        return f"{self.request.url.path}?{urlencode(pairs)}"


def page_request(request: Request, portal: Portal, lang: str | None) -> PageRequest:
    """The language (``?lang=``, else ``Accept-Language``, else zh-TW) and viewer of a page."""
    language = i18n.negotiate(lang, request.headers.get("accept-language"))
    keep = language if lang and lang.strip() else ""
    return PageRequest(request, language, keep, viewer_of(request, portal))


def _show(pr: PageRequest, template: str, status: int = 200, **context: object) -> HTMLResponse:
    auth = _auth()
    csrf = ""
    if auth is not None and pr.viewer.user is not None and hasattr(auth, "csrf_token"):
        csrf = auth.csrf_token(pr.request)
    return render(
        template,
        status,
        pr.lang,
        path=pr.request.url.path,
        switch_url=pr.switch_url(),
        lang_param=pr.lang_param,
        user=pr.viewer.user,
        signin=auth is not None,
        csrf=csrf,
        **context,
    )


def _error(pr: PageRequest, status: int, message: str) -> HTMLResponse:
    key = "not_found_title" if status == 404 else "bad_request_title"
    return _show(pr, "error.html", status, message=message, title=pr.msgs[key])


def localized(zh: str, en: str, lang: str) -> str:
    """The English text on English pages when there is one, else the zh-TW text."""
    return en if lang == "en" and en else zh


# -- search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """A search of the search page (or of an organization's or group's page), parsed.

    Attributes:
        q: the words searched for.
        sort: a ``package_search`` sort string of :data:`SORTS`.
        page: 1-based page number.
        filters: (facet field, value) pairs the user picked, in order.
        scope: a (field, value) filter the page itself adds (an organization's own page).
    """

    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    filters: tuple[tuple[str, str], ...] = ()
    scope: tuple[str, str] | None = None

    def fq(self) -> str:
        """The filter query: every picked value (and the page's scope) must hold."""
        pairs = [*self.filters, *([self.scope] if self.scope else [])]
        return " AND ".join(f'{name}:"{_escape(value)}"' for name, value in pairs)

    def params(self) -> SearchParams:
        """The ``package_search`` request of this page."""
        return SearchParams(
            q=self.q,
            fq=self.fq(),
            sort=self.sort,
            rows=ROWS,
            start=(self.page - 1) * ROWS,
            facet_fields=FACETS,
            facet_limit=FACET_LIMIT,
        )

    def query(self, **changes: Any) -> dict[str, Any]:
        """The query parameters of this search with some changed (for ``href``)."""
        q = changes.get("q", self.q)
        sort = changes.get("sort", self.sort)
        page = changes.get("page", 1)
        filters = changes.get("filters", self.filters)
        out: dict[str, Any] = {"q": q}
        for name in FACETS:
            values = [v for f, v in filters if f == name]
            if values:
                out[name] = values
        if sort != DEFAULT_SORT:
            out["sort"] = sort
        if page != 1:
            out["page"] = page
        return out

    def toggled(self, name: str, value: str) -> dict[str, Any]:
        """The query with a facet value added, or removed when it is already picked."""
        pair = (name, value)
        if pair in self.filters:
            return self.query(filters=tuple(f for f in self.filters if f != pair))
        return self.query(filters=(*self.filters, pair))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class BadSearch(ValueError):
    """A search page's parameters cannot be used (the message is the page's text)."""


def parse_search(request: Request, msgs: Mapping[str, str]) -> Search:
    """The search of a request's query string (``q``, facet fields, ``sort``, ``page``).

    Raises:
        BadSearch: a page that is no positive number, or a sort order not offered.
    """
    query = request.query_params
    raw_page = query.get("page", "1").strip() or "1"
    if not raw_page.isdigit() or int(raw_page) < 1 or len(raw_page) > 6:
        raise BadSearch(msgs["bad_page"].format(page=raw_page))
    sort = query.get("sort", DEFAULT_SORT).strip() or DEFAULT_SORT
    if sort not in SORTS:
        raise BadSearch(msgs["bad_sort"].format(sort=sort))
    filters = tuple(
        dict.fromkeys(
            (name, value.strip())
            for name in FACETS
            for value in query.getlist(name)
            if value.strip()
        )
    )
    return Search(query.get("q", "").strip(), sort, int(raw_page), filters)


@dataclass(frozen=True)
class FacetItem:
    """One value of a facet: its label, count, whether it is picked and where clicking goes."""

    value: str
    label: str
    count: int
    active: bool
    query: dict[str, Any]


@dataclass(frozen=True)
class Facet:
    """A facet field with its values."""

    name: str
    items: tuple[FacetItem, ...]


def _label(portal: Portal, name: str, value: str, lang: str) -> str:
    """A facet value as people read it (organization and group titles, licence titles)."""
    if name == "organization":
        org = portal.organizations().get(value)
        return localized(org.title, org.title_en, lang) if org else value
    if name == "groups":
        group = portal.groups().get(value)
        return localized(group.title, group.title_en, lang) if group else value
    if name == "license_id":
        lic = license_of(value)
        return lic.title if lic is not None else value
    return value


def facets_of(portal: Portal, search: Search, result: SearchResult, lang: str) -> list[Facet]:
    """The facets of a result, with picked values first and kept even when they count 0."""
    out = []
    for name in FACETS:
        counts = dict(result.facets.get(name, {}))
        for f, v in search.filters:
            if f == name:
                counts.setdefault(v, 0)
        items = [
            FacetItem(
                value,
                _label(portal, name, value, lang),
                count,
                (name, value) in search.filters,
                search.toggled(name, value),
            )
            for value, count in counts.items()
        ]
        items.sort(key=lambda i: not i.active)
        if items:
            out.append(Facet(name, tuple(items)))
    return out


@dataclass(frozen=True)
class Pager:
    """Paging links of a result list."""

    page: int
    pages: int
    links: tuple[tuple[int, dict[str, Any]], ...] = ()
    prev: dict[str, Any] | None = None
    next: dict[str, Any] | None = None


def pager_of(search: Search, count: int) -> Pager:
    """Links to the previous, next and nearby pages (at most 7 numbers)."""
    pages = max(1, math.ceil(count / ROWS))
    low = max(1, min(search.page - 3, pages - 6))
    numbers = range(low, min(pages, low + 6) + 1)
    return Pager(
        page=search.page,
        pages=pages,
        links=tuple((n, search.query(page=n)) for n in numbers),
        prev=search.query(page=search.page - 1) if search.page > 1 else None,
        next=search.query(page=search.page + 1) if search.page < pages else None,
    )


@dataclass(frozen=True)
class Item:
    """A dataset in a result list."""

    name: str
    title: str
    notes: str
    organization: str
    organization_title: str
    formats: tuple[str, ...]
    category: str
    modified: str
    private: bool
    layer: bool


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else ""


def item_of(portal: Portal, ds: Dataset, lang: str) -> Item:
    """A dataset as a result list shows it."""
    org = portal.organizations().get(ds.owner_org)
    notes = ds.notes.strip().replace("\n", " ")
    return Item(
        name=ds.name,
        title=localized(ds.title, ds.title_en, lang),
        notes=notes[:140] + ("…" if len(notes) > 140 else ""),
        organization=ds.owner_org,
        organization_title=localized(org.title, org.title_en, lang) if org else ds.owner_org,
        formats=tuple(dict.fromkeys(r.format for r in ds.resources if r.format)),
        category=ds.category,
        modified=_date(ds.metadata_modified),
        private=ds.private,
        layer=ds.layer_id is not None,
    )


def _run(portal: Portal, viewer: Viewer, params: SearchParams) -> SearchResult:
    """Search as the viewer may: private datasets of their organizations included."""
    if viewer.user is not None:
        params = replace(params, include_private=True, viewer_orgs=viewer.caller.viewer_orgs)
    return portal.index().search(params)


# -- usage statistics --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Usage numbers shown on a page (None of them when statistics are not kept)."""

    views: int
    downloads: int
    api_calls: int


def usage_of(request: Request, dataset: str | None = None, org: str | None = None) -> Usage | None:
    """Usage numbers of a dataset or an organization, when ``portal.stats`` exists."""
    stats = _stats()
    if stats is None:
        return None
    found = stats.usage(request.app, dataset=dataset, organization=org)
    return Usage(found.views, found.downloads, found.api_calls)


def record_view(request: Request, dataset: str | None, org: str | None) -> None:
    """Count a page view, when ``portal.stats`` exists."""
    stats = _stats()
    if stats is not None:
        stats.record(request.app, "view", dataset, org)


# -- routes: home and search -------------------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """A link with a count (a category, an agency, a group)."""

    name: str
    label: str
    count: int


def _top(request: Request, portal: Portal, viewer: Viewer, lang: str) -> tuple[str, list[Item]]:
    """The most viewed datasets (``portal.stats``), or the recently updated ones without."""
    stats = _stats()
    if stats is not None:
        visible = {d.name: d for d in portal.datasets() if viewer.caller.can_read(d)}
        names = [n for n, _ in stats.top_datasets(request.app, "view", 30) if n in visible]
        if names:
            return "most_used", [item_of(portal, visible[n], lang) for n in names[:6]]
    found = _run(portal, viewer, SearchParams(sort="metadata_modified desc", rows=6))
    return "recently_updated", [item_of(portal, d, lang) for d in found.datasets]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, lang: str | None = None) -> HTMLResponse:
    """The home page: search box, counts, categories, agencies, newest and most-used datasets."""
    portal = portal_of(request.app)
    portal.begin()
    pr = page_request(request, portal, lang)
    everything = _run(
        portal,
        pr.viewer,
        SearchParams(
            sort="metadata_created desc",
            rows=6,
            facet_fields=("category", "organization"),
            facet_limit=-1,
        ),
    )
    layers = _run(portal, pr.viewer, SearchParams(fq="layer_id:*", rows=0))
    categories = [Counted(v, v, n) for v, n in everything.facets["category"].items() if v.strip()]
    agencies = [
        Counted(v, _label(portal, "organization", v, pr.lang), n)
        for v, n in everything.facets["organization"].items()
    ]
    top_key, top = _top(request, portal, pr.viewer, pr.lang)
    record_view(request, None, None)
    return _show(
        pr,
        "home.html",
        totals={
            "count_datasets": everything.count,
            "count_layers": layers.count,
            "count_agencies": len(agencies),
        },
        categories=categories,
        agencies=agencies,
        newest=[item_of(portal, d, pr.lang) for d in everything.datasets],
        top_key=top_key,
        top=top,
    )


def _listing(
    pr: PageRequest, portal: Portal, search: Search
) -> tuple[SearchResult, list[Item], Pager] | str:
    """Run a page's search; the error message instead when the query cannot be parsed."""
    try:
        result = _run(portal, pr.viewer, search.params())
    except SearchQueryError as exc:
        return pr.msgs["bad_query"].format(error=exc.message)
    items = [item_of(portal, d, pr.lang) for d in result.datasets]
    return result, items, pager_of(search, result.count)


@router.get("/dataset", response_class=HTMLResponse)
def dataset_search(request: Request, lang: str | None = None) -> HTMLResponse:
    """Search results: ``q``, facet filters (``organization=``, ``tags=``...), ``sort``, ``page``.

    The same search as ``package_search``; facets are links that add or remove a filter.
    """
    portal = portal_of(request.app)
    portal.begin()
    pr = page_request(request, portal, lang)
    try:
        search = parse_search(request, pr.msgs)
    except BadSearch as exc:
        return _error(pr, 400, str(exc))
    found = _listing(pr, portal, search)
    if isinstance(found, str):
        return _error(pr, 400, found)
    result, items, pager = found
    return _show(
        pr,
        "search.html",
        search=search,
        count=result.count,
        items=items,
        facets=facets_of(portal, search, result, pr.lang),
        pager=pager,
        sorts=SORTS,
        active=[
            (f, v, _label(portal, f, v, pr.lang), search.toggled(f, v)) for f, v in search.filters
        ],
    )


# -- routes: the dataset page ------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceView:
    """A resource as the dataset page lists it."""

    name: str
    format: str
    url: str
    size: str
    download: bool


@dataclass(frozen=True)
class Table:
    """A preview table: column names and the first rows, with the total when known."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: int | None


@dataclass(frozen=True)
class Snippet:
    """A ready-to-copy API address or command."""

    key: str
    label: str
    text: str


@dataclass(frozen=True)
class Quality:
    """A dataset's quality label: the three axes, the label text and the findings."""

    label: str
    axes: tuple[tuple[str, bool], ...]
    findings: tuple[str, ...]
    checked: str


@dataclass(frozen=True)
class DatasetView:
    """Everything the dataset page shows."""

    dataset: Dataset
    title: str
    organization: Organization | None
    organization_title: str
    groups: tuple[tuple[str, str], ...]
    license_title: str
    license_url: str
    contact: tuple[str, ...]
    resources: tuple[ResourceView, ...]
    quality: Quality | None
    snippets: tuple[Snippet, ...]
    layer_kind: str = ""
    map_config: str = ""
    map_page: Any = None
    attributes: Table | None = None
    preview: Table | None = None
    extras: dict[str, str] = field(default_factory=dict)


def human_size(size: int | None) -> str:
    """Bytes as people read them (``1.2 MB``), "" when unknown."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def _quality(extras: Mapping[str, str]) -> Quality | None:
    if "quality_label" not in extras:
        return None
    axes = tuple((a, extras.get(f"quality_{a}") == "pass") for a in QUALITY_AXES)
    findings = tuple(f for f in extras.get("quality_findings", "").splitlines() if f.strip())
    return Quality(extras["quality_label"], axes, findings, extras.get("quality_checked", ""))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def datastore_rows(
    portal: Portal, viewer: Viewer, base: str, resource: Resource, limit: int
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], int] | None:
    """The first rows of a resource through ``datastore_search`` (DataStore or layer features).

    Returns:
        (columns, rows, total), or None when the resource has no rows to show.
    """
    action = ACTIONS["datastore_search"]
    ctx = Context(portal=portal, caller=viewer.caller, base_url=base, action="datastore_search")
    try:
        data = validate({"resource_id": resource.id, "limit": limit}, action.schema)
        action.auth(ctx, data)
        result = action.function(ctx, data)
    except CkanError:
        return None
    columns = tuple(f["id"] for f in result["fields"] if f["id"] != "_id")
    rows = tuple(tuple(_cell(r.get(c)) for c in columns) for r in result["records"])
    return columns, rows, int(result.get("total", len(rows)))


def _snippets(base: str, ds: Dataset, version: LayerVersion | None) -> tuple[Snippet, ...]:
    """API addresses for a dataset: OGC API, WMS, WMTS, XYZ for layers; CKAN for all."""
    out: list[tuple[str, str]] = []
    if version is not None and ds.layer_id:
        lid = ds.layer_id
        if version.kind != "raster":
            items = f"{base}/ogc/collections/{lid}/items?f=json&limit=100"
            out += [("snippet_ogc", items), ("snippet_curl", f"curl -sS '{items}'")]
        bbox = version.bbox or (120.46, 23.99, 121.45, 24.44)
        west, south, east, north = bbox
        height = max(64, min(1024, round(768 * (north - south) / max(east - west, 1e-9))))
        getmap = {
            "SERVICE": "WMS",
            "VERSION": "1.1.1",
            "REQUEST": "GetMap",
            "LAYERS": lid,
            "STYLES": "",
            "SRS": "EPSG:4326",
            "BBOX": f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}",
            "WIDTH": "768",
            "HEIGHT": str(height),
            "FORMAT": "image/png",
        }
        ext = "png" if version.kind == "raster" else "mvt"
        out += [
            ("snippet_wms", f"{base}/wms?{urlencode(getmap, safe=',:/')}"),
            ("snippet_wmts", f"{base}/wmts/1.0.0/WMTSCapabilities.xml"),
            ("snippet_xyz", f"{base}/tiles/{lid}/{{z}}/{{x}}/{{y}}.{ext}"),
            ("snippet_tilejson", f"{base}/tiles/{lid}.json"),
        ]
    out += [
        ("snippet_ckan", f"{base}/api/3/action/package_show?id={quote(ds.name)}"),
        ("snippet_ckanapi", f"ckanapi action package_show id={ds.name} -r {base}"),
    ]
    return tuple(Snippet(key, "", text) for key, text in out)


def _resource_view(r: Resource) -> ResourceView:
    return ResourceView(
        name=r.name,
        format=r.format,
        url=r.url,
        size=human_size(r.size),
        download=r.kind in ("download", "upload"),
    )


def _layer_parts(pr: PageRequest, portal: Portal, ds: Dataset, base: str) -> dict[str, Any]:
    """The preview map and attribute table of a layer dataset (nothing when it is no layer)."""
    if not ds.layer_id or portal.layer_version(ds.layer_id) is None:
        return {}
    try:
        page = build_page(pr.request, ds.layer_id, pr.lang)
    except LayerNotServed:
        return {}
    parts: dict[str, Any] = {
        "layer_kind": page.kind,
        "map_page": page,
        "map_config": map_config(page, pr.msgs),
    }
    if page.kind == "vector":
        csv = next((r for r in ds.resources if r.generated and r.format.upper() == "CSV"), None)
        found = datastore_rows(portal, pr.viewer, base, csv, PREVIEW_ROWS) if csv else None
        if found is not None:
            columns, rows, total = found
            caption = pr.msgs["attributes_caption"].format(
                title=localized(ds.title, ds.title_en, pr.lang), n=len(rows)
            )
            parts["attributes"] = Table(caption, columns, rows, total)
    return parts


def _preview(pr: PageRequest, portal: Portal, ds: Dataset, base: str) -> Table | None:
    """The first rows of a tabular dataset's first DataStore resource."""
    if ds.layer_id:
        return None
    for res in ds.resources:
        if not res.datastore_active:
            continue
        found = datastore_rows(portal, pr.viewer, base, res, PREVIEW_ROWS)
        if found is not None:
            columns, rows, total = found
            caption = pr.msgs["preview_caption"].format(name=res.name, n=len(rows))
            return Table(caption, columns, rows, total)
    return None


def dataset_view(pr: PageRequest, portal: Portal, ds: Dataset) -> DatasetView:
    """Gather what the dataset page shows of ``ds``."""
    base = str(pr.request.base_url).rstrip("/")
    org = portal.organizations().get(ds.owner_org)
    groups = portal.groups()
    lic = license_of(ds.license_id)
    extras = dict(ds.extras)
    version = portal.layer_version(ds.layer_id) if ds.layer_id else None
    contact = tuple(
        dict.fromkeys(
            v for v in (ds.maintainer, ds.maintainer_email, ds.author, ds.author_email) if v
        )
    )
    snippets = tuple(Snippet(s.key, pr.msgs[s.key], s.text) for s in _snippets(base, ds, version))
    return DatasetView(
        dataset=ds,
        title=localized(ds.title, ds.title_en, pr.lang),
        organization=org,
        organization_title=localized(org.title, org.title_en, pr.lang) if org else ds.owner_org,
        groups=tuple(
            (g, localized(groups[g].title, groups[g].title_en, pr.lang) if g in groups else g)
            for g in ds.groups
        ),
        license_title=lic.title if lic is not None else ds.license_id,
        license_url=lic.url if lic is not None else "",
        contact=contact,
        resources=tuple(_resource_view(r) for r in ds.resources),
        quality=_quality(extras),
        snippets=snippets,
        preview=_preview(pr, portal, ds, base),
        extras=extras,
        **_layer_parts(pr, portal, ds, base),
    )


def _readable(portal: Portal, viewer: Viewer, name: str) -> Dataset | None:
    try:
        ds = portal.store.dataset(name)
    except NotFound:
        return None
    if ds.state != "active" or not viewer.caller.can_read(ds):
        return None
    return ds


@router.get("/dataset/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, name: str, lang: str | None = None) -> HTMLResponse:
    """A dataset: metadata, quality label, resources, preview map and table, API snippets."""
    portal = portal_of(request.app)
    portal.begin()
    pr = page_request(request, portal, lang)
    if not NAME.fullmatch(name):
        return _error(pr, 400, pr.msgs["bad_name"].format(name=name))
    ds = _readable(portal, pr.viewer, name)
    if ds is None:
        return _error(pr, 404, pr.msgs["dataset_not_found"].format(name=name))
    view = dataset_view(pr, portal, ds)
    record_view(request, ds.name, ds.owner_org)
    return _show(
        pr,
        "dataset.html",
        view=view,
        usage=usage_of(request, dataset=ds.name),
        table_config=_table_config(pr, view),
        js_rows=JS_ROWS,
    )


def _table_config(pr: PageRequest, view: DatasetView) -> str:
    """Settings of ``table.js`` (the OGC API items URL of a vector layer), JSON for a script."""
    if view.attributes is None or not view.dataset.layer_id:
        return ""
    doc = {
        "items": f"/ogc/collections/{view.dataset.layer_id}/items?f=json&limit={JS_ROWS}",
        "caption": pr.msgs["attributes_caption"].format(title=view.title, n="{n}"),
    }
    return script_json(doc)


# -- routes: organizations and groups ----------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """An organization or a group as its page shows it."""

    kind: str
    name: str
    title: str
    description: str
    image_url: str


def _owner(kind: str, record: Organization | Group, lang: str) -> Owner:
    return Owner(
        kind,
        record.name,
        localized(record.title, record.title_en, lang),
        record.description,
        record.image_url,
    )


def _owners_page(request: Request, lang: str | None, kind: str) -> HTMLResponse:
    portal = portal_of(request.app)
    portal.begin()
    pr = page_request(request, portal, lang)
    records = portal.organizations() if kind == "organization" else portal.groups()
    field_name = "organization" if kind == "organization" else "groups"
    counts = _run(
        portal, pr.viewer, SearchParams(rows=0, facet_fields=(field_name,), facet_limit=-1)
    ).facets[field_name]
    owners = sorted(
        (
            Counted(r.name, localized(r.title, r.title_en, pr.lang), counts.get(r.name, 0))
            for r in records.values()
            if r.state == "active"
        ),
        key=lambda c: (-c.count, c.label),
    )
    return _show(pr, "owners.html", kind=kind, owners=owners)


def _owner_page(request: Request, name: str, lang: str | None, kind: str) -> HTMLResponse:
    portal = portal_of(request.app)
    portal.begin()
    pr = page_request(request, portal, lang)
    missing = "org_not_found" if kind == "organization" else "group_not_found"
    if not NAME.fullmatch(name):
        return _error(pr, 400, pr.msgs["bad_name"].format(name=name))
    records = portal.organizations() if kind == "organization" else portal.groups()
    record = records.get(name)
    if record is None or record.state != "active":
        return _error(pr, 404, pr.msgs[missing].format(name=name))
    try:
        search = parse_search(request, pr.msgs)
    except BadSearch as exc:
        return _error(pr, 400, str(exc))
    scope = ("organization" if kind == "organization" else "groups", name)
    search = Search(search.q, search.sort, search.page, (), scope)
    found = _listing(pr, portal, search)
    if isinstance(found, str):
        return _error(pr, 400, found)
    result, items, pager = found
    usage = None
    if kind == "organization":
        usage = usage_of(request, org=name)
        record_view(request, None, name)
    return _show(
        pr,
        "owner.html",
        owner=_owner(kind, record, pr.lang),
        search=search,
        count=result.count,
        items=items,
        pager=pager,
        sorts=SORTS,
        usage=usage,
    )


@router.get("/organization", response_class=HTMLResponse)
def organization_list(request: Request, lang: str | None = None) -> HTMLResponse:
    """Every agency with its number of datasets."""
    return _owners_page(request, lang, "organization")


@router.get("/organization/{name}", response_class=HTMLResponse)
def organization_page(request: Request, name: str, lang: str | None = None) -> HTMLResponse:
    """An agency: its description, usage numbers and its datasets (searchable, paged)."""
    return _owner_page(request, name, lang, "organization")


@router.get("/group", response_class=HTMLResponse)
def group_list(request: Request, lang: str | None = None) -> HTMLResponse:
    """Every group with its number of datasets."""
    return _owners_page(request, lang, "group")


@router.get("/group/{name}", response_class=HTMLResponse)
def group_page(request: Request, name: str, lang: str | None = None) -> HTMLResponse:
    """A group: its description and its datasets (searchable, paged)."""
    return _owner_page(request, name, lang, "group")


@router.get("/map", response_class=HTMLResponse, response_model=None)
def map_index(request: Request, lang: str | None = None) -> Response:
    """The map viewer on the catalog's basemap tileset (行政区界), or its first tileset."""
    found = tilesets(request.app.state.view.snapshot())
    chosen = next((t for t in found.values() if t.name == BASEMAP_TILESET), None)
    chosen = chosen or next(iter(found.values()), None)
    if chosen is None:
        portal = portal_of(request.app)
        pr = page_request(request, portal, lang)
        return _error(pr, 404, pr.msgs["no_basemap"])
    suffix = f"?{urlencode({'lang': lang})}" if lang else ""
    return RedirectResponse(f"/map/{chosen.id}{suffix}", status_code=307)
