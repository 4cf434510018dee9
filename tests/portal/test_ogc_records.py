"""OGC API - Records: the catalog as the records collection ``catalog``, read with owslib.

Expected answers come from the catalog's layers and versions (read with ``Catalog``), never
from the records provider.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from owslib.ogcapi.records import Records

from catalog.db import Catalog


@pytest.fixture(scope="module")
def published(ogc) -> dict:
    """Layer id → (layer, current version) of every published layer."""
    _, home = ogc
    with Catalog.open(home) as catalog:
        out = {}
        for lyr in catalog.layers():
            version = catalog.current(lyr.id)
            if version is not None:
                out[lyr.id] = (lyr, version)
        return out


@pytest.fixture(scope="module")
def api(ogc) -> Records:
    base, _ = ogc
    return Records(f"{base}/ogc")


def ids(answer: dict) -> set[str]:
    return {f["id"] for f in answer["features"]}


def test_catalog_is_a_records_collection_with_one_record_per_layer(api, published):
    assert "catalog" in api.records()
    answer = api.collection_items("catalog", limit=1000)
    assert ids(answer) == set(published)
    assert answer["numberMatched"] == len(published)


def test_q_uses_the_cjk_search(api, published):
    answer = api.collection_items("catalog", q="停車", limit=1000)
    with_title = {i for i, (lyr, _) in published.items() if "停車" in lyr.title}
    assert with_title
    assert with_title <= ids(answer)
    for rec in answer["features"]:
        lyr = published[rec["id"]][0]
        text = " ".join([lyr.title, lyr.description, lyr.category, *lyr.keywords])
        assert "停車" in text


def test_bbox_type_agency_and_datetime_filters(api, published):
    box = (120.65, 24.13, 120.70, 24.17)
    answer = api.collection_items("catalog", bbox=list(box), limit=1000)
    expected = {
        i
        for i, (_, v) in published.items()
        if v.bbox
        and not (
            v.bbox[2] < box[0] or v.bbox[0] > box[2] or v.bbox[3] < box[1] or v.bbox[1] > box[3]
        )
    }
    assert expected and ids(answer) == expected

    answer = api.collection_items("catalog", type="raster", limit=1000)
    assert ids(answer) == {i for i, (_, v) in published.items() if v.kind == "raster"}

    agency = published["dem-20m"][0].agency.title
    answer = api.collection_items("catalog", agency=agency, limit=1000)
    assert ids(answer) == {i for i, (lyr, _) in published.items() if lyr.agency.title == agency}

    created = sorted(v.created for _, v in published.values())
    middle = created[len(created) // 2]
    after = f"{middle.isoformat().replace('+00:00', 'Z')}/.."
    answer = api.collection_items("catalog", datetime_=after, limit=1000)
    assert ids(answer) == {i for i, (_, v) in published.items() if v.created >= middle}
    until = f"../{(middle - timedelta(microseconds=1)).isoformat().replace('+00:00', 'Z')}"
    answer = api.collection_items("catalog", datetime_=until, limit=1000)
    assert ids(answer) == {i for i, (_, v) in published.items() if v.created < middle}


def test_record_content_and_links(api, published, ogc):
    base, _ = ogc
    layer, version = published["door-plates"]
    rec = api.collection_item("catalog", "door-plates")
    props = rec["properties"]
    assert props["title"] == layer.title
    assert props["description"] == layer.description
    assert props["keywords"] == list(layer.keywords)
    assert props["agency"] == layer.agency.title
    assert props["category"] == layer.category
    w, s, e, n = version.bbox
    assert rec["geometry"]["coordinates"][0] == [[w, s], [e, s], [e, n], [w, n], [w, s]]
    hrefs = {link["href"] for link in rec["links"]}
    for href in (
        f"{base}/ogc/collections/door-plates",
        f"{base}/dataset/door-plates",
        f"{base}/tiles/door-plates.json",
        f"{base}/download/door-plates.geojson",
        f"{base}/wms/door-plates?SERVICE=WMS&REQUEST=GetCapabilities",
    ):
        assert href in hrefs
    assert any(h.startswith(f"{base}/wmts?") for h in hrefs)


def test_paging_and_sorting(api, published):
    first = api.collection_items("catalog", limit=5, sortby=("title", "desc"))
    second = api.collection_items("catalog", limit=5, offset=5, sortby=("title", "desc"))
    titles = sorted((lyr.title for lyr, _ in published.values()), reverse=True)
    got = [f["properties"]["title"] for f in first["features"] + second["features"]]
    assert got == titles[:10]
    assert any(link["rel"] == "next" for link in first["links"])


@pytest.mark.parametrize(
    "query",
    ["datetime=yesterday", "bbox=1,2,3", "sortby=nope", "limit=-1", "items/no-such-layer"],
)
def test_bad_requests_are_ogc_exceptions(ogc, query):
    base, _ = ogc
    path = query if query.startswith("items/") else f"items?{query}"
    try:
        with urllib.request.urlopen(f"{base}/ogc/collections/catalog/{path}", timeout=60) as r:
            status = r.status
    except urllib.error.HTTPError as err:
        status = err.code
    assert 400 <= status < 500
