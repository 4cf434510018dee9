"""The portal pages (/, /dataset, /dataset/{name}, /organization, /group) in real Chromium.

The small corpus (ingested, tiles built) is copied and given a few non-spatial datasets (one
with DataStore rows, one with a quality label, one private) and two groups, then served by
the real `geoportal serve`. Expectations come from the store, the stored GeoPackage and the
CKAN Action API through `ckanapi` — never from the pages themselves. Screenshots of every page
kind go to docs/screenshots/.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import ckanapi
import numpy as np
import pyogrio
import pytest
import shapely

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ckan.actions import ACTIONS
from portal.ckan.actions.registry import Context, validate
from portal.ckan.api import Portal
from portal.ckan.auth import Caller
from portal.ckan.model import Dataset, Group, Resource, User
from portal.ckan.store import PortalStore
from portal.web import i18n
from portal.web.routes import OWN
from tests.portal import browser as shared
from tests.portal.browser import BACKGROUND, close_colour
from tests.serve import serving

browser = shared.browser  # the fixtures, shared with the other browser tests
visit = shared.visit

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ZH = i18n.messages("zh-TW")
EN = i18n.messages("en")
TRANSPORT_ORG = "tai-zhong-shi-zheng-fu-jiao-tong-ju"
#: Rows of the tabular dataset's DataStore table (a 停車場 fee list).
FEES = [
    {"停車場": f"第{n}號公有停車場", "行政區": district, "每小時費率": 20 + 10 * (n % 3)}
    for n, district in enumerate(["西屯區", "北屯區", "南屯區", "中區", "東區", "西區"], 1)
]
FINDINGS = "可處理性：〔bus.csv〕宣告編碼為 UTF-8，內容卻是 Big5"


def _extra_datasets() -> list[Dataset]:
    fee_res = Resource(
        id="00000000-0000-4000-8000-000000000001",
        package_id="00000000-0000-4000-8000-0000000000a1",
        name="停車費率表",
        url="https://data.example.invalid/fees.csv",
        format="CSV",
    )
    bus_res = Resource(
        id="00000000-0000-4000-8000-000000000002",
        package_id="00000000-0000-4000-8000-0000000000a2",
        name="公車運量",
        url="https://data.example.invalid/bus.csv",
        format="CSV",
    )
    return [
        Dataset(
            id="00000000-0000-4000-8000-0000000000a1",
            name="parking-fees",
            title="臺中市公有停車場收費費率",
            title_en="Public car park fees",
            owner_org=TRANSPORT_ORG,
            notes="各公有停車場之每小時收費費率。",
            category="交通及通訊",
            update_frequency="每年",
            maintainer="交通局停管處",
            maintainer_email="parking@example.invalid",
            fields_description="停車場：名稱；行政區；每小時費率：新臺幣元",
            tags=("停車場", "費率"),
            groups=("transport",),
            resources=(fee_res,),
            source="api",
        ),
        Dataset(
            id="00000000-0000-4000-8000-0000000000a2",
            name="bus-ridership",
            title="臺中市公車運量統計",
            owner_org=TRANSPORT_ORG,
            notes="各路線每月運量。",
            category="交通及通訊",
            update_frequency="每月",
            tags=("公車",),
            groups=("transport",),
            resources=(bus_res,),
            extras=(
                ("quality_label", "未符合：可處理性"),
                ("quality_obtainable", "pass"),
                ("quality_processable", "fail"),
                ("quality_understandable", "pass"),
                ("quality_findings", FINDINGS),
                ("quality_checked", "2024-05-01T08:00:00"),
            ),
            source="api",
        ),
        Dataset(
            id="00000000-0000-4000-8000-0000000000a3",
            name="parking-private-plan",
            title="停車場內部規劃（非公開）",
            owner_org=TRANSPORT_ORG,
            private=True,
            category="交通及通訊",
            tags=("停車場",),
            source="api",
        ),
    ]


@pytest.fixture(scope="module")
def site(tiled, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, data home): a copy of the tiled corpus plus non-spatial datasets and groups."""
    source, _ = tiled
    home = tmp_path_factory.mktemp("pages") / "home"
    shutil.copytree(source, home)
    store = PortalStore.open(home)
    view = CatalogView(Catalog.open(home))
    store.sync_layers(view.snapshot())
    store.put_group(
        Group(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, "transport")),
            name="transport",
            title="交通主題",
            title_en="Transport",
        )
    )
    store.put_group(
        Group(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, "safety")),
            name="safety",
            title="防災主題",
            title_en="Safety",
        )
    )
    for name, group in (("public-parking", "transport"), ("evacuation-shelters", "safety")):
        ds = store.dataset(name)
        store.put_dataset(replace(ds, groups=(group,)))
    for ds in _extra_datasets():
        store.put_dataset(ds)
    admin = store.put_user(
        User(id=str(uuid.uuid4()), name="admin", sysadmin=True), password="secret-pw-1"
    )
    portal = Portal(store, home, view)
    ctx = Context(portal, Caller(admin), "http://localhost", "datastore_create")
    action = ACTIONS["datastore_create"]
    data = {
        "resource_id": "00000000-0000-4000-8000-000000000001",
        "fields": [
            {"id": "停車場", "type": "text"},
            {"id": "行政區", "type": "text"},
            {"id": "每小時費率", "type": "int"},
        ],
        "records": FEES,
    }
    action.function(ctx, validate(data, action.schema))
    store.close()
    with serving(home) as base:
        yield base, home


@pytest.fixture(scope="module")
def ckan(site) -> ckanapi.RemoteCKAN:
    base, _ = site
    return ckanapi.RemoteCKAN(base)


@pytest.fixture(scope="module")
def snapshot(site):
    _, home = site
    return CatalogView(Catalog.open(home)).snapshot()


@pytest.fixture(scope="module")
def store(site) -> Iterator[PortalStore]:
    _, home = site
    s = PortalStore.open(home)
    yield s
    s.close()


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _shot(v: shared.Visit, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


PAGES = {
    "home": "/",
    "search": "/dataset?q=%E5%81%9C%E8%BB%8A%E5%A0%B4",
    "dataset": "/dataset/taichung-districts",
    "dataset-table": "/dataset/parking-fees",
    "organization": f"/organization/{TRANSPORT_ORG}",
    "organizations": "/organization",
    "group": "/group/transport",
    "groups": "/group",
}


@pytest.mark.parametrize("kind", list(PAGES))
def test_page_loads_without_errors_or_outside_requests(site, visit, kind):
    base, _ = site
    v = visit().open(base + PAGES[kind], map_idle=kind == "dataset")
    assert v.errors == []
    assert v.failed == []
    assert v.outside(base) == []
    assert v.page.evaluate("document.documentElement.lang") == "zh-TW"
    nav = v.page.get_by_role("navigation", name=ZH["nav_label"]).first
    for key in ("nav_home", "nav_datasets", "nav_organizations", "nav_groups", "nav_map"):
        assert nav.get_by_role("link", name=ZH[key], exact=True).count() == 1
    _shot(v, kind)


@pytest.mark.parametrize("kind", ["home", "search", "dataset", "organization", "group"])
def test_no_serious_or_critical_accessibility_violations(site, visit, kind):
    from axe_playwright_python.sync_playwright import Axe

    base, _ = site
    v = visit().open(base + PAGES[kind], map_idle=kind == "dataset")
    results = Axe().run(v.page)
    bad = [
        (x["id"], x["impact"], [n["target"] for n in x["nodes"]][:3])
        for x in results.response["violations"]
        if x["impact"] in ("serious", "critical")
    ]
    assert bad == []
    assert v.outside(base) == []  # axe-core came from the package, not the internet


def _mentions(ds: dict, word: str) -> bool:
    texts = [ds["title"], ds.get("notes") or "", *(t["name"] for t in ds["tags"])]
    return any(word in t for t in texts)


def test_search_from_home_finds_the_parking_datasets(site, visit, store, ckan):
    base, _ = site
    public = [d for d in store.datasets(include_private=True) if not d.private]
    expected = {d.name for d in public if "停車場" in d.title}
    assert {"public-parking", "parking-fees"} <= expected
    v = visit().open(base + "/", map_idle=False)
    v.page.get_by_label(ZH["search_label"]).fill("停車場")
    v.page.get_by_role("button", name=ZH["search_button"]).click()
    v.page.wait_for_load_state()
    assert "/dataset?" in v.page.url
    found = v.page.locator(".dataset-title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop().split('?')[0])"
    )
    assert expected <= set(found)
    assert "parking-private-plan" not in found
    for name in found:
        assert _mentions(ckan.action.package_show(id=name), "停車"), name
    count = int(v.page.locator(".result-count").get_attribute("data-count"))
    assert count == ckan.action.package_search(q="停車場", rows=0)["count"]
    v.page.locator(".dataset-title a[href^='/dataset/public-parking']").click()
    v.page.wait_for_load_state()
    assert v.page.locator("h1").inner_text().startswith(store.dataset("public-parking").title)


def _count(v: shared.Visit) -> int:
    return int(v.page.locator(".result-count").get_attribute("data-count"))


def test_facet_click_narrows_like_package_search(site, visit, ckan):
    base, _ = site
    v = visit().open(base + "/dataset", map_idle=False)
    total = _count(v)
    assert total == ckan.action.package_search(rows=0)["count"]
    link = v.page.locator(f".facet-link[data-facet='organization'][data-value='{TRANSPORT_ORG}']")
    link.click()
    v.page.wait_for_load_state()
    narrowed = _count(v)
    fq = f'organization:"{TRANSPORT_ORG}"'
    assert narrowed == ckan.action.package_search(fq=fq, rows=0)["count"]
    assert 0 < narrowed < total
    tag = v.page.locator(".facet-link[data-facet='tags'][data-value='停車場']")
    tag.click()
    v.page.wait_for_load_state()
    both = ckan.action.package_search(fq=f'{fq} AND tags:"停車場"', rows=1000)
    assert _count(v) == both["count"] < narrowed
    shown = v.page.locator(".dataset-title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop().split('?')[0])"
    )
    assert set(shown) == {d["name"] for d in both["results"]}
    # removing the tag filter (its chip) brings the organization's count back
    v.page.locator(".active-filters a.chip").last.click()
    v.page.wait_for_load_state()
    assert _count(v) == narrowed


def test_paging_and_sort_follow_package_search(site, visit, ckan):
    base, _ = site
    sort = "title_string asc"
    v = visit().open(f"{base}/dataset?sort={quote(sort)}", map_idle=False)
    total = _count(v)
    assert total > 20
    names = ckan.action.package_search(sort=sort, rows=1000)["results"]
    first = [
        a.split("/")[-1].split("?")[0]
        for a in v.page.locator(".dataset-title a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
    ]
    assert first == [d["name"] for d in names[:20]]
    v.page.get_by_role("link", name=ZH["next_page"]).click()
    v.page.wait_for_load_state()
    second = v.page.locator(".dataset-title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop().split('?')[0])"
    )
    assert second == [d["name"] for d in names[20:40]]
    assert v.page.locator("#sort").input_value() == sort


def test_bad_search_parameters_get_a_400_page(site):
    base, _ = site
    for query in ("page=0", "page=abc", "sort=evil", "q=%22unclosed"):
        status, headers, body = _get(f"{base}/dataset?{query}")
        assert status == 400, query
        assert headers["content-type"].startswith("text/html")
        assert ZH["bad_request_title"] in body.decode()


def test_private_dataset_is_a_404_for_anonymous(site):
    base, _ = site
    status, _, body = _get(f"{base}/dataset/parking-private-plan")
    assert status == 404
    assert "停車場內部規劃" not in body.decode()
    status, _, body = _get(f"{base}/dataset/no-such-dataset?lang=en")
    assert status == 404
    assert EN["not_found_title"] in body.decode()
    assert _get(f"{base}/dataset/Bad%20Name")[0] == 400


@pytest.fixture(scope="module")
def district(site, snapshot) -> dict:
    """The largest district from the stored GeoPackage: a point well inside it."""
    _, home = site
    version = snapshot.versions["taichung-districts"]
    frame = pyogrio.read_dataframe(home / version.path, layer="features")
    row = frame.loc[frame.geometry.to_crs(3826).area.idxmax()]
    polygon = max(shapely.get_parts(row.geometry), key=lambda part: part.area)
    point = polygon.buffer(-0.01).representative_point()
    return {"lonlat": (point.x, point.y), "bbox": version.bbox, "name": row["TOWNNAME"]}


def test_dataset_preview_map_draws_the_layer(site, visit, district):
    base, _ = site
    v = visit().open(f"{base}/dataset/taichung-districts")
    image = v.map_image()
    pixels = np.asarray(image, dtype=int).reshape(-1, 3)
    drawn = (np.abs(pixels - BACKGROUND).max(axis=1) > 20).mean()
    assert drawn > 0.2  # not a blank map
    x, y = v.project(*district["lonlat"])
    assert 0 <= x < image.width and 0 <= y < image.height
    assert not close_colour(image.getpixel((x, y)), BACKGROUND, 20)
    lon, lat = v.page.evaluate(
        "(() => { const p = window.geoportalMap.unproject([4, 4]); return [p.lng, p.lat]; })()"
    )
    west, south, east, north = district["bbox"]
    if not (west <= lon <= east and south <= lat <= north):
        assert close_colour(image.getpixel((4, 4)), BACKGROUND, 3)
    tiles = [u for u in v.requests if "/tiles/taichung-districts/" in u and u.endswith(".mvt")]
    assert tiles


def test_attribute_table_shows_stored_features(site, visit, snapshot):
    base, home = site
    version = snapshot.versions["taichung-districts"]
    frame = pyogrio.read_dataframe(home / version.path, layer="features", read_geometry=False)
    names = set(frame["TOWNNAME"])
    v = visit().open(f"{base}/dataset/taichung-districts")
    table = v.page.locator("#attribute-table")
    table.locator("[data-source='ogc'], tbody tr").first.wait_for()
    v.page.wait_for_function("document.getElementById('attribute-table').dataset.source === 'ogc'")
    headers = table.locator("thead th").all_inner_texts()
    column = headers.index("TOWNNAME")
    shown = table.locator("tbody tr").evaluate_all(
        f"rows => rows.map(r => r.cells[{column}].textContent)"
    )
    assert len(shown) == min(50, len(frame))
    assert set(shown) <= names
    # without JavaScript the server's own rows are there
    context = v.context.browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/dataset/taichung-districts")
    rows = page.locator("#attribute-table tbody tr")
    assert rows.count() == 20
    assert set(rows.evaluate_all(f"rs => rs.map(r => r.cells[{column}].textContent)")) <= names
    assert page.locator("a[href*='/ogc/collections/taichung-districts/items']").count() == 1
    context.close()


def test_tabular_dataset_preview_table_and_quality_label(site, visit):
    base, _ = site
    v = visit().open(f"{base}/dataset/parking-fees", map_idle=False)
    table = v.page.locator("#preview-table")
    assert table.locator("thead th").all_inner_texts() == list(FEES[0])
    rows = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [[str(v) for v in fee.values()] for fee in FEES]
    assert v.page.locator("#map").count() == 0

    v = visit().open(f"{base}/dataset/bus-ridership", map_idle=False)
    quality = v.page.locator(".quality")
    assert quality.locator(".quality-label").inner_text() == "未符合：可處理性"
    verdicts = {
        row.get_attribute("data-axis"): row.locator("td").inner_text()
        for row in quality.locator("tr[data-axis]").all()
    }
    assert verdicts == {
        "obtainable": ZH["quality_pass"],
        "processable": ZH["quality_fail"],
        "understandable": ZH["quality_pass"],
    }
    assert FINDINGS in quality.locator(".findings").inner_text()


def test_download_button_delivers_the_file(site, visit, snapshot):
    base, _ = site
    v = visit().open(f"{base}/dataset/public-parking", map_idle=False)
    button = v.page.locator("a.button[data-format='GeoJSON']")
    with v.page.expect_download() as info:
        button.click()
    path = Path(info.value.path())
    status, _, body = _get(f"{base}/download/public-parking.geojson")
    assert status == 200
    assert path.stat().st_size == len(body)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert len(doc["features"]) == snapshot.versions["public-parking"].feature_count


def test_api_snippets_work_and_copy(site, visit):
    base, _ = site
    v = visit().open(f"{base}/dataset/public-parking", map_idle=False)
    v.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    texts = {
        s.get_attribute("data-snippet"): s.locator("code").inner_text()
        for s in v.page.locator(".snippet").all()
    }
    status, _, body = _get(texts["snippet_ogc"])
    assert status == 200 and json.loads(body)["features"]
    status, headers, body = _get(texts["snippet_wms"])
    assert status == 200 and headers["content-type"] == "image/png"
    xyz = texts["snippet_xyz"].format(z=0, x=0, y=0)
    assert _get(xyz)[0] in (200, 204)
    assert _get(texts["snippet_ckan"])[0] == 200
    assert texts["snippet_ckanapi"].endswith(f"-r {base}")
    snippet = v.page.locator(".snippet[data-snippet='snippet_wmts']")
    snippet.get_by_role("button").click()
    expect = snippet.locator(".copy-status")
    expect.filter(has_text=ZH["copied"]).wait_for()
    assert v.page.evaluate("navigator.clipboard.readText()") == texts["snippet_wmts"]
    embed = v.page.get_by_role("link", name=ZH["embed"], exact=True)
    assert embed.get_attribute("href") == "/maps/new?layer=public-parking"


def test_language_switch_keeps_english_while_browsing(site, visit):
    base, _ = site
    v = visit().open(base + "/", map_idle=False)
    page = v.page
    assert page.locator("h1").inner_text() == ZH["home_title"]
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == EN["home_title"]
    page.get_by_role("link", name=EN["nav_datasets"], exact=True).first.click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == EN["nav_datasets"]
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "zh-TW"
    english = visit(locale="en-US").open(base + "/group/transport", map_idle=False)
    assert english.page.evaluate("document.documentElement.lang") == "en"
    assert english.page.locator("h1").inner_text() == "Transport"


def test_organization_and_group_pages_list_their_datasets(site, visit, store, ckan):
    base, _ = site
    public = [d for d in store.datasets(include_private=False)]
    own = {d.name for d in public if d.owner_org == TRANSPORT_ORG}
    v = visit().open(f"{base}/organization/{TRANSPORT_ORG}", map_idle=False)
    assert v.page.locator("h1").inner_text() == store.organization(TRANSPORT_ORG).title
    assert _count(v) == len(own)
    shown = v.page.locator(".dataset-title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop().split('?')[0])"
    )
    assert set(shown) == own
    v.page.get_by_label(ZH["search_within"].format(title=store.organization(TRANSPORT_ORG).title))
    v.page.locator("#q").fill("公車")
    v.page.locator("#q").press("Enter")
    v.page.wait_for_load_state()
    assert (
        _count(v)
        == ckan.action.package_search(q="公車", fq=f'organization:"{TRANSPORT_ORG}"', rows=0)[
            "count"
        ]
    )

    members = {d.name for d in public if "transport" in d.groups}
    assert members == {"public-parking", "parking-fees", "bus-ridership"}
    g = visit().open(f"{base}/group/transport", map_idle=False)
    shown = g.page.locator(".dataset-title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop().split('?')[0])"
    )
    assert set(shown) == members
    lists = visit().open(f"{base}/group", map_idle=False)
    assert lists.page.get_by_role("link", name="交通主題").count() == 1


def test_home_counts_match_the_catalog(site, visit, store, snapshot):
    base, _ = site
    public = [d for d in store.datasets(include_private=False)]
    v = visit().open(base + "/", map_idle=False)

    def total(key: str) -> int:
        text = v.page.locator(f"[data-total='{key}']").inner_text()
        return int(text.replace(",", ""))

    assert total("count_datasets") == len(public)
    assert total("count_layers") == len([d for d in public if d.layer_id])
    assert total("count_agencies") == len({d.owner_org for d in public})
    categories = {d.category for d in public if d.category}
    shown = v.page.locator("section[aria-labelledby='categories-title'] li a").all_inner_texts()
    assert set(shown) == categories


def test_map_nav_opens_the_viewer(site, visit):
    base, _ = site
    v = visit().open(base + "/", map_idle=False)
    v.page.get_by_role("link", name=ZH["nav_map"], exact=True).click()
    v.page.wait_for_url("**/map/*")
    v.idle()
    assert v.errors == []


def test_own_assets_stay_small():
    assert sum(p.stat().st_size for p in OWN.values()) < 300_000


def test_signed_in_member_sees_the_private_dataset(site, visit):
    base, _ = site
    if _get(f"{base}/user/login")[0] != 200:
        pytest.skip("this version has no staff sign-in (portal.web.auth)")
    v = visit().open(f"{base}/dataset/parking-private-plan", map_idle=False)
    assert v.page.locator("h1").inner_text() == ZH["not_found_title"]
    v.page.get_by_role("link", name=ZH["sign_in"], exact=True).click()
    v.page.wait_for_load_state()
    v.page.locator("input[name='name']").fill("admin")
    v.page.locator("input[name='password']").fill("secret-pw-1")
    v.page.locator("form.login-form button[type='submit']").click()
    v.page.wait_for_load_state()
    v.page.goto(f"{base}/dataset/parking-private-plan")
    assert v.page.locator("h1").inner_text().startswith("停車場內部規劃")
    v.page.goto(f"{base}/dataset?q=%E5%81%9C%E8%BB%8A%E5%A0%B4")
    assert v.page.locator(".dataset-title a[href^='/dataset/parking-private-plan']").count() == 1
    v.page.get_by_role("button", name=ZH["sign_out"]).click()
    v.page.wait_for_load_state()
    assert _get(f"{base}/dataset/parking-private-plan")[0] == 404
    v.page.goto(f"{base}/dataset/parking-private-plan")
    assert v.page.locator("h1").inner_text() == ZH["not_found_title"]
