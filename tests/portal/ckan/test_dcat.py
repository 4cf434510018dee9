"""The DCAT catalog: graphs of real layer datasets and hand-made ones, and the served feeds.

The served tests run the real app (``geoportal.app.create_app`` with the DCAT router) under
uvicorn over HTTP on a copy of the ingested small corpus, with datasets added through the
portal store: 120 public non-spatial ones (so the catalog has two pages) and a private one.
Every feed is parsed back with rdflib; expectations come from the store and the EU and OGC
vocabularies, not from the code under test.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import shapely
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ckan.dcat import CatalogQuery, catalog_graph, select_datasets
from portal.ckan.layers import dataset_id, dataset_of_layer, resource_id
from portal.ckan.model import Dataset, Organization, Resource
from portal.ckan.store import PortalStore
from tests.serve import serving

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
FREQ = "http://publications.europa.eu/resource/authority/frequency/"
BASE = "http://portal.example"
#: OGC's definition server names of the service types (OGC Naming Authority).
WMS_TYPE = URIRef("http://www.opengis.net/def/serviceType/ogc/wms")
WMTS_TYPE = URIRef("http://www.opengis.net/def/serviceType/ogc/wmts")
EXTRA = 120


def _handmade(i: int, owner: str, *, private: bool = False) -> Dataset:
    """A non-spatial dataset as an agency catalog export would give it."""
    name = f"handmade-{i:03d}" if not private else "secret-plan"
    did = dataset_id(name)
    resources = tuple(
        Resource(
            id=resource_id(name, f"link{j}"),
            package_id=did,
            name=f"資料下載 {j}",
            url=f"https://data.example.gov.tw/{name}/{j}.csv",
            format="CSV",
            kind="download",
            mimetype="text/csv",
            size=1000 + j,
            position=j,
        )
        for j in range(1 + i % 3)
    )
    return Dataset(
        id=did,
        name=name,
        title=f"手工資料集 {i} 停車場" if i % 10 == 0 else f"手工資料集 {i}",
        owner_org=owner,
        notes="非空間資料。",
        private=private,
        tags=("統計", "人口"),
        update_frequency="每10日" if i % 2 else "每月",
        maintainer="王小明" if i % 4 == 0 else "",
        maintainer_email="ming@example.gov.tw" if i % 4 == 0 else "",
        source="catalog-export",
        resources=resources,
        metadata_created=datetime(2024, 1, 1, tzinfo=UTC),
        metadata_modified=datetime(2024, 2, 1, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def layer_datasets(ingested: Path) -> list[Dataset]:
    snapshot = CatalogView(Catalog.open(ingested)).snapshot()
    return [dataset_of_layer(layer, version) for layer, version in snapshot.published()]


# --------------------------------------------------------------------------- the graph


def _datasets_of(g: Graph) -> dict[str, URIRef]:
    return {str(g.value(s, DCTERMS.identifier)): s for s in g.subjects(RDF.type, DCAT.Dataset)}


def test_graph_of_layer_and_handmade_datasets(layer_datasets: list[Dataset]) -> None:
    owner = layer_datasets[0].owner_org
    handmade = [_handmade(i, owner) for i in (0, 1, 4)]
    orgs = {owner: Organization(id="org-1", name=owner, title="某局", title_en="Some Bureau")}
    page = [*layer_datasets, *handmade]
    g = Graph().parse(data=catalog_graph(page, orgs, BASE, 1, len(page)).serialize(), format="ttl")
    nodes = _datasets_of(g)
    assert set(nodes) == {d.id for d in page}
    (catalog,) = g.subjects(RDF.type, DCAT.Catalog)
    assert set(g.objects(catalog, DCAT.dataset)) == set(nodes.values())
    assert {lit.language for lit in g.objects(catalog, DCTERMS.title)} == {"zh-TW", "en"}
    for d in page:
        _check_dataset(g, nodes[d.id], d)
    publisher = g.value(nodes[handmade[0].id], DCTERMS.publisher)
    assert Literal("某局", lang="zh-TW") in set(g.objects(publisher, FOAF.name))


def _check_dataset(g: Graph, node: URIRef, d: Dataset) -> None:
    titles = set(g.objects(node, DCTERMS.title))
    assert titles == {Literal(d.title, lang="zh-TW")} | (
        {Literal(d.title_en, lang="en")} if d.title_en else set()
    )
    assert {str(k) for k in g.objects(node, DCAT.keyword)} == set(d.tags)
    assert all(k.language == "zh-TW" for k in g.objects(node, DCAT.keyword))
    assert g.value(node, DCAT.landingPage) == URIRef(f"{BASE}/dataset/{d.name}")
    issued = g.value(node, DCTERMS.issued)
    assert issued.datatype == XSD.dateTime and issued.toPython() == d.metadata_created
    frequency = g.value(node, DCTERMS.accrualPeriodicity)
    if d.update_frequency == "每月":
        assert frequency == URIRef(FREQ + "MONTHLY")
    elif d.update_frequency == "每10日":  # no EU code: said in words
        assert str(g.value(frequency, URIRef("http://www.w3.org/2000/01/rdf-schema#label"))) == (
            "每10日"
        )
    distributions = list(g.objects(node, DCAT.distribution))
    assert len(distributions) == len(d.resources)
    by_id = {str(g.value(x, DCTERMS.identifier)): x for x in distributions}
    for r in d.resources:
        _check_distribution(g, by_id[r.id], r)
    if d.maintainer:
        contact = g.value(node, DCAT.contactPoint)
        assert str(g.value(contact, VCARD.fn)) == d.maintainer
        assert g.value(contact, VCARD.hasEmail) == URIRef(f"mailto:{d.maintainer_email}")
    _check_spatial(g, node, d)


def _check_distribution(g: Graph, node: URIRef, r: Resource) -> None:
    url = URIRef(BASE + r.url if r.url.startswith("/") else r.url)
    assert g.value(node, DCAT.accessURL) == url
    if r.kind == "download":
        assert g.value(node, DCAT.downloadURL) == url
    else:
        assert g.value(node, DCAT.downloadURL) is None
        service = g.value(node, DCAT.accessService)
        assert (service, RDF.type, DCAT.DataService) in g
        standard = g.value(service, DCTERMS.conformsTo)
        if r.format == "WMS":
            assert standard == WMS_TYPE
        if r.format == "WMTS":
            assert standard == WMTS_TYPE
        assert str(g.value(service, DCAT.endpointURL)) == url.split("?")[0]
    media = str(g.value(node, DCAT.mediaType))
    assert media == "https://www.iana.org/assignments/media-types/" + r.mimetype
    size = g.value(node, DCAT.byteSize)
    assert (size is None) == (r.size is None)
    if size is not None:
        assert int(size) == r.size


def _check_spatial(g: Graph, node: URIRef, d: Dataset) -> None:
    location = g.value(node, DCTERMS.spatial)
    if not d.spatial:
        assert location is None
        return
    literals = {lit.datatype: str(lit) for lit in g.objects(location, LOCN.geometry)}
    expected = shapely.from_geojson(d.spatial)
    assert shapely.from_geojson(literals[GSP.geoJSONLiteral]).equals(expected)
    assert shapely.from_wkt(literals[GSP.wktLiteral]).equals_exact(expected, 1e-7)


def test_paging_links() -> None:
    g = catalog_graph([], {}, BASE, 2, 250, path="/catalog.rdf", params=(("q", "停車"),))
    (page,) = g.subjects(RDF.type, HYDRA.PagedCollection)
    assert int(g.value(page, HYDRA.totalItems)) == 250
    assert int(g.value(page, HYDRA.itemsPerPage)) == 100
    link = f"{BASE}/catalog.rdf?q=%E5%81%9C%E8%BB%8A&page="
    assert str(g.value(page, HYDRA.firstPage)) == link + "1"
    assert str(g.value(page, HYDRA.previousPage)) == link + "1"
    assert str(g.value(page, HYDRA.nextPage)) == link + "3"
    assert str(g.value(page, HYDRA.lastPage)) == link + "3"


def test_selection_drops_private_and_deleted_and_filters(layer_datasets) -> None:
    owner = layer_datasets[0].owner_org
    made = [_handmade(i, owner) for i in range(12)]
    hidden = [_handmade(0, owner, private=True), replace_state(_handmade(99, owner))]
    every = [*made, *hidden]
    assert {d.name for d in select_datasets(every, {}, CatalogQuery())} == {d.name for d in made}
    parking = select_datasets(every, {}, CatalogQuery(q="停車"))
    assert {d.name for d in parking} == {"handmade-000", "handmade-010"}
    later = CatalogQuery.parse({"modified_since": "2024-03-01"})
    assert select_datasets(every, {}, later) == []
    for bad in ({"page": "0"}, {"page": "x"}, {"modified_since": "yesterday"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CatalogQuery.parse(bad)


def replace_state(d: Dataset) -> Dataset:
    from dataclasses import replace

    return replace(d, state="deleted")


# --------------------------------------------------------------------------- served


@pytest.fixture(scope="module")
def portal(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """(base URL, store) of the app serving a portal home with extra datasets."""
    home = tmp_path_factory.mktemp("dcat") / "home"
    shutil.copytree(ingested, home)
    store = PortalStore.open(home)
    store.sync_layers(CatalogView(Catalog.open(home)).snapshot())
    owner = store.organizations()[0].name
    for i in range(EXTRA):
        store.put_dataset(_handmade(i, owner))
    store.put_dataset(_handmade(0, owner, private=True))
    with serving(home) as base:
        yield base, store
        store.close()


def _fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


RDF_FORMATS = {
    "jsonld": ("application/ld+json", "json-ld"),
    "ttl": ("text/turtle", "turtle"),
    "rdf": ("application/rdf+xml", "xml"),
}


def _page(base: str, suffix: str, query: str = "") -> Graph:
    status, body, ctype = _fetch(f"{base}/catalog.{suffix}{query}")
    assert status == 200, body[:300]
    media, parser = RDF_FORMATS[suffix]
    assert ctype.startswith(media)
    return Graph().parse(data=body, format=parser)


def test_three_serialisations_parse_to_the_same_graph(portal) -> None:
    base, _ = portal
    graphs = {suffix: _page(base, suffix, "?page=2") for suffix in RDF_FORMATS}
    assert len(graphs["ttl"]) > 100
    # the page's own hydra node names the path it was asked on: compare the rest
    for g in graphs.values():
        for s in list(g.subjects(RDF.type, HYDRA.PagedCollection)):
            g.remove((s, None, None))
    assert isomorphic(graphs["ttl"], graphs["rdf"])
    assert isomorphic(graphs["ttl"], graphs["jsonld"])


def test_every_public_dataset_once_across_pages(portal) -> None:
    base, store = portal
    public = {d.id: d for d in store.datasets(include_private=False)}
    assert len(public) > 100
    seen: list[str] = []
    url = f"{base}/catalog.ttl"
    while url:
        status, body, _ = _fetch(url)
        assert status == 200
        g = Graph().parse(data=body, format="turtle")
        (page,) = g.subjects(RDF.type, HYDRA.PagedCollection)
        assert int(g.value(page, HYDRA.totalItems)) == len(public)
        nodes = _datasets_of(g)
        seen += nodes
        for did, node in nodes.items():
            assert len(list(g.objects(node, DCAT.distribution))) == len(public[did].resources)
        nxt = g.value(page, HYDRA.nextPage)
        url = str(nxt) if nxt is not None else ""
    assert sorted(seen) == sorted(public)
    assert dataset_id("secret-plan") not in seen


def test_private_dataset_never_appears(portal) -> None:
    base, store = portal
    private = store.dataset("secret-plan")
    assert private.private
    for suffix in RDF_FORMATS:
        for page in (1, 2):
            status, body, _ = _fetch(f"{base}/catalog.{suffix}?page={page}")
            assert status == 200
            assert private.id.encode() not in body and b"secret-plan" not in body


def test_query_filters_and_errors(portal) -> None:
    base, store = portal
    g = _page(base, "jsonld", "?q=%E5%81%9C%E8%BB%8A%E5%A0%B4")  # 停車場
    titles = {str(t) for n in _datasets_of(g).values() for t in g.objects(n, DCTERMS.title)}
    expected = {
        d.title
        for d in store.datasets(include_private=False)
        if "停車場" in d.title or "停車場" in d.notes or "停車場" in d.tags
    }
    assert expected and expected <= titles
    g = _page(base, "ttl", "?modified_since=2999-01-01")
    assert _datasets_of(g) == {}
    for query, status in (("?page=0", 400), ("?page=99", 404), ("?modified_since=x", 400)):
        code, body, _ = _fetch(f"{base}/catalog.ttl{query}")
        assert code == status, query
        assert json.loads(body)["detail"]
