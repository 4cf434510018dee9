"""The portal's datasets as DCAT (DCAT-AP style): ``/catalog.jsonld``, ``.ttl`` and ``.rdf``.

:func:`catalog_graph` is pure: one page of datasets (and the organizations that own them) gives
an :class:`rdflib.Graph` with

- the ``dcat:Catalog`` (zh-TW and English title and description, publisher, homepage,
  language, ``dct:issued``/``dct:modified``) listing the page's datasets;
- one ``dcat:Dataset`` per dataset (``{base}/dataset/{id}``): identifier, titles, description,
  ``dcat:keyword`` (@zh-TW), ``dcat:theme`` (the data.gov.tw category and the groups), the
  publisher (``foaf:Organization``), issued/modified (``xsd:dateTime``), accrual periodicity
  (EU frequency authority URIs, from data.gov.tw's 每日/每月/… vocabulary), ``dct:spatial``
  with ``locn:geometry`` (GeoJSON and WKT literals) and ``dcat:bbox``, landing page
  ``{base}/dataset/{name}``, licence, access rights and a ``vcard`` contact point when the
  dataset names a maintainer or author;
- one ``dcat:Distribution`` per resource (``{base}/dataset/{id}/resource/{rid}``):
  ``dcat:accessURL`` (and ``dcat:downloadURL`` for downloads and uploads), ``dct:format``
  (EU file-type URIs where the format has one), ``dcat:mediaType`` (IANA URIs),
  ``dcat:byteSize`` when known; a web service's distribution has a ``dcat:accessService``
  (``dcat:DataService``, endpoint URL and description, ``dct:conformsTo`` the OGC standard);
- paging as ckanext-dcat does it: a ``hydra:PagedCollection`` (``hydra:totalItems``,
  ``hydra:itemsPerPage``, ``hydra:firstPage``/``previousPage``/``nextPage``/``lastPage``).

The routes take every *public active* dataset from the app's portal (``portal.ckan.api``),
keep those matching ``?q=`` (every CJK-aware token of the query in the title, description,
tags or organization) and ``?modified_since=`` (ISO 8601 date or datetime), and answer page
``?page=N`` (100 datasets a page, from 1) in the serialisation the path names.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import shapely
import shapely.errors
from fastapi import APIRouter, HTTPException, Request, Response
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from catalog.search import index_tokens, query_tokens
from portal.ckan.api import portal_of
from portal.ckan.licenses import license_of
from portal.ckan.model import Dataset, Organization, Resource

__all__ = [
    "FORMATS",
    "PAGE_SIZE",
    "CatalogInfo",
    "CatalogQuery",
    "catalog_graph",
    "frequency_uri",
    "router",
    "select_datasets",
]

LOCN = Namespace("http://www.w3.org/ns/locn#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
EU_FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
EU_FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
EU_LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
EU_ACCESS = Namespace("http://publications.europa.eu/resource/authority/access-right/")
IANA = "https://www.iana.org/assignments/media-types/"

PAGE_SIZE = 100
"""Datasets per page, as ckanext-dcat's default."""

#: Serialisations: path suffix → (rdflib format, media type).
FORMATS = {
    "jsonld": ("json-ld", "application/ld+json"),
    "ttl": ("turtle", "text/turtle"),
    "rdf": ("xml", "application/rdf+xml"),
}

#: Prefixes bound in every graph (and the JSON-LD context).
PREFIXES = {
    "dcat": DCAT,
    "dct": DCTERMS,
    "foaf": FOAF,
    "vcard": VCARD,
    "locn": LOCN,
    "hydra": HYDRA,
    "gsp": GSP,
    "skos": SKOS,
    "xsd": XSD,
    "rdfs": RDFS,
}

#: data.gov.tw update frequencies → EU frequency authority codes.
_FREQUENCIES = {
    "即時": "UPDATE_CONT",
    "每分鐘": "1MIN",
    "每5分鐘": "5MIN",
    "每10分鐘": "10MIN",
    "每15分鐘": "15MIN",
    "每30分鐘": "30MIN",
    "每小時": "HOURLY",
    "每2小時": "BIHOURLY",
    "每3小時": "TRIHOURLY",
    "每12小時": "12HRS",
    "每日": "DAILY",
    "每週": "WEEKLY",
    "每2週": "BIWEEKLY",
    "每月": "MONTHLY",
    "每2月": "BIMONTHLY",
    "每季": "QUARTERLY",
    "每半年": "ANNUAL_2",
    "每年": "ANNUAL",
    "每2年": "BIENNIAL",
    "每3年": "TRIENNIAL",
    "每4年": "QUADRENNIAL",
    "每5年": "QUINQUENNIAL",
    "每10年": "DECENNIAL",
    "不定期": "IRREG",
    "不更新": "NEVER",
}

#: CKAN format labels → EU file-type authority codes.
_FILE_TYPES = {
    "GEOJSON": "GEOJSON",
    "CSV": "CSV",
    "KML": "KML",
    "KMZ": "KMZ",
    "SHP": "SHP",
    "GPKG": "GPKG",
    "GEOPARQUET": "PARQUET",
    "PARQUET": "PARQUET",
    "GEOTIFF": "GEOTIFF",
    "TIFF": "TIFF",
    "WMS": "WMS_SRVC",
    "WMTS": "WMTS_SRVC",
    "JSON": "JSON",
    "XML": "XML",
    "XLS": "XLS",
    "XLSX": "XLSX",
    "ODS": "ODS",
    "PDF": "PDF",
    "ZIP": "ZIP",
    "HTML": "HTML",
    "TXT": "TXT",
}

#: Service formats → (the standard the service conforms to, the service's endpoint path).
_STANDARDS = {
    "WMS": "http://www.opengis.net/def/serviceType/ogc/wms",
    "WMTS": "http://www.opengis.net/def/serviceType/ogc/wmts",
    "OGC API Features": "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "OGC API Coverages": "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core",
    "TileJSON": "https://github.com/mapbox/tilejson-spec/tree/master/3.0.0",
    "PMTiles": "https://github.com/protomaps/PMTiles/blob/main/spec/v3/spec.md",
}


@dataclass(frozen=True)
class CatalogInfo:
    """What the catalog says about itself.

    Attributes:
        title, title_en: the catalog's name (zh-TW, English).
        description, description_en: what it holds.
        publisher, publisher_en: who publishes it.
        publisher_url: the publisher's home page.
    """

    title: str = "臺中市開放資料平臺"
    title_en: str = "Taichung City open data portal"
    description: str = "臺中市政府各機關之開放資料集與地圖圖層。"
    description_en: str = "Open datasets and map layers of the Taichung City Government agencies."
    publisher: str = "臺中市政府"
    publisher_en: str = "Taichung City Government"
    publisher_url: str = "https://www.taichung.gov.tw/"


@dataclass(frozen=True)
class CatalogQuery:
    """Which datasets a catalog request asks for (parsed once from the query string).

    Attributes:
        page: the page, from 1.
        q: free text; every token must match (CJK-aware), "" for all.
        modified_since: keep datasets modified at or after it (UTC), or None.
        params: the query parameters to repeat in page links (``page`` excluded).
    """

    page: int = 1
    q: str = ""
    modified_since: datetime | None = None
    params: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CatalogQuery:
        """Parse ``page``, ``q`` and ``modified_since``.

        Raises:
            ValueError: a value is malformed (the message names it and says what is valid).
        """
        page_text = query.get("page", "1").strip() or "1"
        if not page_text.isdigit() or int(page_text) < 1:
            raise ValueError(f"page must be a whole number from 1, not {page_text!r}")
        since = query.get("modified_since", "").strip()
        q = query.get("q", "").strip()
        params = tuple((k, v) for k, v in (("q", q), ("modified_since", since)) if v)
        return cls(int(page_text), q, _parse_since(since) if since else None, params)


def _parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"modified_since must be an ISO 8601 date or datetime "
            f"(2024-01-31 or 2024-01-31T08:00:00Z), not {text!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --------------------------------------------------------------------------- selection


def _org_title(ds: Dataset, organizations: Mapping[str, Organization]) -> list[str]:
    org = organizations.get(ds.owner_org)
    return [org.title, org.title_en] if org else [ds.owner_org]


def select_datasets(
    datasets: Sequence[Dataset],
    organizations: Mapping[str, Organization],
    query: CatalogQuery,
) -> list[Dataset]:
    """The public active datasets a query keeps, ordered by name.

    Args:
        datasets: candidate datasets (private and deleted ones are dropped here too).
        organizations: organization name → organization, for matching ``q`` on its title.
        query: the parsed request.

    Returns:
        The matching datasets (every page of them).
    """
    out = [d for d in datasets if not d.private and d.state == "active"]
    if query.modified_since is not None:
        since = query.modified_since
        out = [d for d in out if d.metadata_modified is not None and d.metadata_modified >= since]
    tokens = query_tokens(query.q) if query.q else []
    if tokens:
        out = [d for d in out if _matches(d, organizations, tokens)]
    return sorted(out, key=lambda d: d.name)


def _matches(ds: Dataset, organizations: Mapping[str, Organization], tokens: list[str]) -> bool:
    texts = [ds.title, ds.title_en, ds.notes, ds.name, *ds.tags, *_org_title(ds, organizations)]
    found = index_tokens([t for t in texts if t])
    return all(t in found for t in tokens)


# --------------------------------------------------------------------------- the graph


def frequency_uri(update_frequency: str) -> URIRef | None:
    """The EU frequency authority URI of a data.gov.tw update frequency, or None."""
    code = _FREQUENCIES.get(update_frequency.strip())
    return EU_FREQUENCY[code] if code else None


def _absolute(base: str, url: str) -> str:
    return base + url if url.startswith("/") else url


def _lit(text: str, lang: str) -> Literal:
    return Literal(text, lang=lang)


def _when(value: datetime | None) -> Literal | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return Literal(value.astimezone(UTC).isoformat(), datatype=XSD.dateTime)


class _Builder:
    """Adds catalog, datasets and distributions to one graph."""

    def __init__(self, base: str, organizations: Mapping[str, Organization]) -> None:
        self.g = Graph()
        for prefix, ns in PREFIXES.items():
            self.g.bind(prefix, ns)
        self.base = base.rstrip("/")
        self.organizations = organizations

    def add(self, s: URIRef | BNode, p: URIRef, o: URIRef | BNode | Literal | None) -> None:
        if o is not None and (not isinstance(o, Literal) or str(o) != ""):
            self.g.add((s, p, o))

    def publisher(self, name: str) -> URIRef:
        ref = URIRef(f"{self.base}/organization/{quote(name)}")
        org = self.organizations.get(name)
        self.add(ref, RDF.type, FOAF.Organization)
        self.add(ref, FOAF.name, _lit(org.title if org else name, "zh-TW"))
        if org is not None:
            self.add(ref, FOAF.name, _lit(org.title_en, "en"))
            self.add(ref, DCTERMS.identifier, Literal(org.id))
        return ref

    def dataset(self, ds: Dataset) -> URIRef:
        ref = URIRef(f"{self.base}/dataset/{ds.id}")
        add = self.add
        add(ref, RDF.type, DCAT.Dataset)
        add(ref, DCTERMS.identifier, Literal(ds.id))
        add(ref, DCTERMS.title, _lit(ds.title, "zh-TW"))
        add(ref, DCTERMS.title, _lit(ds.title_en, "en"))
        add(ref, DCTERMS.description, _lit(ds.notes, "zh-TW"))
        for tag in ds.tags:
            add(ref, DCAT.keyword, _lit(tag, "zh-TW"))
        add(ref, DCTERMS.publisher, self.publisher(ds.owner_org))
        add(ref, DCTERMS.issued, _when(ds.metadata_created))
        add(ref, DCTERMS.modified, _when(ds.metadata_modified))
        add(ref, DCAT.landingPage, URIRef(f"{self.base}/dataset/{ds.name}"))
        add(ref, DCTERMS.accessRights, EU_ACCESS.PUBLIC)
        add(ref, OWL_VERSION_INFO, Literal(ds.version))
        self.themes(ref, ds)
        self.frequency(ref, ds.update_frequency)
        self.spatial(ref, ds.spatial)
        self.contact(ref, ds)
        licence = self.licence(ds.license_id)
        add(ref, DCTERMS.license, licence)
        for resource in ds.resources:
            add(ref, DCAT.distribution, self.distribution(ds, resource, licence))
        return ref

    def themes(self, ref: URIRef, ds: Dataset) -> None:
        if ds.category:
            concept = URIRef(f"{self.base}/dataset?{urlencode({'category': ds.category})}")
            self.add(concept, RDF.type, SKOS.Concept)
            self.add(concept, SKOS.prefLabel, _lit(ds.category, "zh-TW"))
            self.add(ref, DCAT.theme, concept)
        for group in ds.groups:
            self.add(ref, DCAT.theme, URIRef(f"{self.base}/group/{quote(group)}"))

    def frequency(self, ref: URIRef, update_frequency: str) -> None:
        if not update_frequency:
            return
        uri = frequency_uri(update_frequency)
        if uri is None:  # a frequency the EU vocabulary has no code for: say it in words
            node = BNode()
            self.add(node, RDF.type, DCTERMS.Frequency)
            self.add(node, RDFS.label, _lit(update_frequency, "zh-TW"))
            self.add(ref, DCTERMS.accrualPeriodicity, node)
        else:
            self.add(ref, DCTERMS.accrualPeriodicity, uri)

    def spatial(self, ref: URIRef, spatial: str) -> None:
        if not spatial:
            return
        try:
            geometry = shapely.from_geojson(spatial)
            compact = json.dumps(json.loads(spatial), separators=(",", ":"))
        except (shapely.errors.GEOSException, ValueError):
            return  # an unreadable extent is left out rather than published wrong
        location = BNode()
        self.add(location, RDF.type, DCTERMS.Location)
        self.add(location, LOCN.geometry, Literal(compact, datatype=GSP.geoJSONLiteral))
        wkt = shapely.to_wkt(geometry, rounding_precision=7, trim=True)
        self.add(location, LOCN.geometry, Literal(wkt, datatype=GSP.wktLiteral))
        self.add(location, DCAT.bbox, Literal(wkt, datatype=GSP.wktLiteral))
        self.add(ref, DCTERMS.spatial, location)

    def contact(self, ref: URIRef, ds: Dataset) -> None:
        name = ds.maintainer or ds.author
        email = ds.maintainer_email or ds.author_email
        if not name and not email:
            return
        node = BNode()
        self.add(node, RDF.type, VCARD.Kind)
        self.add(node, VCARD.fn, Literal(name or email))
        if email:
            self.add(node, VCARD.hasEmail, URIRef(f"mailto:{email}"))
        self.add(ref, DCAT.contactPoint, node)

    def licence(self, license_id: str) -> URIRef | None:
        lic = license_of(license_id)
        if lic is None or not lic.url:
            return None
        ref = URIRef(lic.url)
        self.add(ref, RDF.type, DCTERMS.LicenseDocument)
        self.add(ref, RDFS.label, Literal(lic.title))
        self.add(ref, DCTERMS.identifier, Literal(lic.id))
        return ref

    def distribution(self, ds: Dataset, res: Resource, licence: URIRef | None) -> URIRef:
        ref = URIRef(f"{self.base}/dataset/{ds.id}/resource/{res.id}")
        add = self.add
        url = URIRef(_absolute(self.base, res.url))
        add(ref, RDF.type, DCAT.Distribution)
        add(ref, DCTERMS.identifier, Literal(res.id))
        add(ref, DCTERMS.title, _lit(res.name, "zh-TW"))
        add(ref, DCTERMS.description, _lit(res.description, "zh-TW"))
        add(ref, DCAT.accessURL, url)
        if res.kind in ("download", "upload"):
            add(ref, DCAT.downloadURL, url)
        add(ref, DCTERMS.format, self.file_type(res.format))
        mimetype = res.mimetype.split(";")[0].strip()
        if mimetype:
            add(ref, DCAT.mediaType, URIRef(IANA + mimetype))
        if res.size is not None:
            add(ref, DCAT.byteSize, Literal(res.size, datatype=XSD.nonNegativeInteger))
        add(ref, DCTERMS.issued, _when(res.created))
        add(ref, DCTERMS.modified, _when(res.last_modified))
        add(ref, DCTERMS.license, licence)
        if res.kind == "service":
            add(ref, DCAT.accessService, self.service(ds, res, url))
        return ref

    def file_type(self, label: str) -> URIRef | Literal | None:
        if not label:
            return None
        code = _FILE_TYPES.get(label.strip().upper())
        if code is None:
            return Literal(label)
        ref = EU_FILE_TYPE[code]
        self.add(ref, RDF.type, DCTERMS.MediaTypeOrExtent)
        return ref

    def service(self, ds: Dataset, res: Resource, url: URIRef) -> URIRef:
        ref = URIRef(f"{self.base}/dataset/{ds.id}/resource/{res.id}#service")
        add = self.add
        add(ref, RDF.type, DCAT.DataService)
        add(ref, DCTERMS.title, _lit(res.name, "zh-TW"))
        parts = urlsplit(str(url))
        add(ref, DCAT.endpointURL, URIRef(f"{parts.scheme}://{parts.netloc}{parts.path}"))
        add(ref, DCAT.endpointDescription, url)
        standard = _STANDARDS.get(res.format)
        if standard:
            add(ref, DCTERMS.conformsTo, URIRef(standard))
        add(ref, DCAT.servesDataset, URIRef(f"{self.base}/dataset/{ds.id}"))
        return ref


OWL_VERSION_INFO = URIRef("http://www.w3.org/2002/07/owl#versionInfo")


def _page_url(base: str, path: str, page: int, params: tuple[tuple[str, str], ...]) -> str:
    return f"{base}{path}?{urlencode([*params, ('page', str(page))])}"


def catalog_graph(
    datasets: Sequence[Dataset],
    organizations: Mapping[str, Organization],
    base_url: str,
    page: int,
    total: int,
    *,
    path: str = "/catalog.ttl",
    params: tuple[tuple[str, str], ...] = (),
    page_size: int = PAGE_SIZE,
    info: CatalogInfo | None = None,
    issued: datetime | None = None,
    modified: datetime | None = None,
) -> Graph:
    """The DCAT graph of one catalog page.

    Args:
        datasets: the page's datasets (the caller has dropped private and deleted ones).
        organizations: organization name → organization (publishers' names and ids).
        base_url: the site's root URL, e.g. ``http://127.0.0.1:8000``; relative resource URLs
            are made absolute with it.
        page: this page's number, from 1.
        total: how many datasets all pages hold together.
        path: the catalog path the page links use (``/catalog.ttl``, ...).
        params: other query parameters the page links repeat (``q``, ``modified_since``).
        page_size: datasets per page.
        info: the catalog's own title, description and publisher.
        issued: the catalog's first publication (default: the page's earliest
            ``metadata_created``).
        modified: the catalog's last change (default: the page's latest
            ``metadata_modified``).

    Returns:
        The graph: catalog, datasets, distributions, services and paging.
    """
    info = info or CatalogInfo()
    b = _Builder(base_url, organizations)
    base = b.base
    catalog = URIRef(f"{base}/")
    b.add(catalog, RDF.type, DCAT.Catalog)
    b.add(catalog, DCTERMS.title, _lit(info.title, "zh-TW"))
    b.add(catalog, DCTERMS.title, _lit(info.title_en, "en"))
    b.add(catalog, DCTERMS.description, _lit(info.description, "zh-TW"))
    b.add(catalog, DCTERMS.description, _lit(info.description_en, "en"))
    b.add(catalog, FOAF.homepage, catalog)
    b.add(catalog, DCTERMS.language, EU_LANGUAGE.ZHO)
    b.add(catalog, DCTERMS.language, EU_LANGUAGE.ENG)
    publisher = URIRef(info.publisher_url)
    b.add(publisher, RDF.type, FOAF.Organization)
    b.add(publisher, FOAF.name, _lit(info.publisher, "zh-TW"))
    b.add(publisher, FOAF.name, _lit(info.publisher_en, "en"))
    b.add(catalog, DCTERMS.publisher, publisher)
    created = [d.metadata_created for d in datasets if d.metadata_created]
    changed = [d.metadata_modified for d in datasets if d.metadata_modified]
    b.add(catalog, DCTERMS.issued, _when(issued or (min(created) if created else None)))
    b.add(catalog, DCTERMS.modified, _when(modified or (max(changed) if changed else None)))
    for ds in datasets:
        b.add(catalog, DCAT.dataset, b.dataset(ds))
    _paging(b, path, params, page, total, page_size)
    return b.g


def _paging(
    b: _Builder,
    path: str,
    params: tuple[tuple[str, str], ...],
    page: int,
    total: int,
    page_size: int,
) -> None:
    """The hydra:PagedCollection ckanext-dcat adds (page URLs as literals, as it does)."""
    last = max(1, math.ceil(total / page_size))
    here = URIRef(_page_url(b.base, path, page, params))
    b.add(here, RDF.type, HYDRA.PagedCollection)
    b.add(here, HYDRA.totalItems, Literal(total, datatype=XSD.integer))
    b.add(here, HYDRA.itemsPerPage, Literal(page_size, datatype=XSD.integer))
    b.add(here, HYDRA.firstPage, Literal(_page_url(b.base, path, 1, params)))
    b.add(here, HYDRA.lastPage, Literal(_page_url(b.base, path, last, params)))
    if page > 1:
        b.add(here, HYDRA.previousPage, Literal(_page_url(b.base, path, page - 1, params)))
    if page < last:
        b.add(here, HYDRA.nextPage, Literal(_page_url(b.base, path, page + 1, params)))


# --------------------------------------------------------------------------- routes

router = APIRouter()

_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_ENTRIES = 32


def _datasets(request: Request) -> tuple[int, list[Dataset], dict[str, Organization]]:
    """The portal's revision, every public active dataset, and the organizations by name.

    The one place the DCAT routes get at the portal's records: the app's
    :class:`portal.ckan.api.Portal` (its :class:`~portal.ckan.store.PortalStore`, opened once,
    with the layer datasets brought in line with the catalog first).
    """
    portal = portal_of(request.app)
    portal.begin()
    marker = portal.store.change_marker()
    datasets = [d for d in portal.datasets() if not d.private and d.state == "active"]
    return marker, datasets, portal.organizations()


def _render(request: Request, suffix: str) -> Response:
    """One catalog page in one serialisation, cached until the portal changes."""
    try:
        query = CatalogQuery.parse(request.query_params)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    base = str(request.base_url).rstrip("/")
    marker, datasets, organizations = _datasets(request)
    key = (marker, base, suffix, query)
    with _cache_lock:
        body = _cache.get(key)
    if body is None:
        body = _serialise(datasets, organizations, base, suffix, query)
        with _cache_lock:
            _cache[key] = body
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    headers = {"Cache-Control": "public, max-age=60"}
    return Response(body, media_type=FORMATS[suffix][1], headers=headers)


def _serialise(
    datasets: list[Dataset],
    organizations: dict[str, Organization],
    base: str,
    suffix: str,
    query: CatalogQuery,
) -> bytes:
    """One page, serialised (404 for a page past the last one)."""
    selected = select_datasets(datasets, organizations, query)
    last = max(1, math.ceil(len(selected) / PAGE_SIZE))
    if query.page > last:
        raise HTTPException(404, f"page {query.page} does not exist: the catalog has {last}")
    start = (query.page - 1) * PAGE_SIZE
    created = [d.metadata_created for d in datasets if d.metadata_created]
    changed = [d.metadata_modified for d in datasets if d.metadata_modified]
    graph = catalog_graph(
        selected[start : start + PAGE_SIZE],
        organizations,
        base,
        query.page,
        len(selected),
        path=f"/catalog.{suffix}",
        params=query.params,
        issued=min(created) if created else None,
        modified=max(changed) if changed else None,
    )
    rdf_format = FORMATS[suffix][0]
    if rdf_format == "json-ld":
        context = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
        return graph.serialize(format="json-ld", context=context, auto_compact=True).encode()
    return graph.serialize(format=rdf_format, encoding="utf-8")


@router.get("/catalog.jsonld")
def catalog_jsonld(request: Request) -> Response:
    """DCAT catalog as JSON-LD (``?page=``, ``?q=``, ``?modified_since=``)."""
    return _render(request, "jsonld")


@router.get("/catalog.ttl")
def catalog_ttl(request: Request) -> Response:
    """DCAT catalog as Turtle (``?page=``, ``?q=``, ``?modified_since=``)."""
    return _render(request, "ttl")


@router.get("/catalog.rdf")
def catalog_rdf(request: Request) -> Response:
    """DCAT catalog as RDF/XML (``?page=``, ``?q=``, ``?modified_since=``)."""
    return _render(request, "rdf")
