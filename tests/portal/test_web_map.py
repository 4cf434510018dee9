"""The layer map viewer (/map/{id}) in real headless Chromium, over real HTTP.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/test), driven by Playwright for
Python; MapLibre draws with WebGL on SwiftShader. Expected colours and places come from the
catalog (the layer's stored style) and the stored GeoPackage, never from the page.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyogrio
import pytest
import shapely
from shapely.ops import polylabel

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.web import i18n
from portal.web.routes import OWN
from tests.portal import browser as shared
from tests.portal.browser import BACKGROUND, close_colour
from tests.serve import serving

browser = shared.browser  # the fixtures, shared with the other browser tests
visit = shared.visit


@pytest.fixture(scope="module")
def site(tiled) -> Iterator[tuple[str, Path]]:
    """(base URL, data home): the tiled small corpus served with the web pages."""
    home, _ = tiled
    with serving(home) as base:
        yield base, home


@pytest.fixture(scope="module")
def snapshot(site):
    _, home = site
    return CatalogView(Catalog.open(home)).snapshot()


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _over(colour: tuple[int, int, int], alpha: float, under: tuple[int, int, int]) -> tuple:
    return tuple(round(c * alpha + u * (1 - alpha)) for c, u in zip(colour, under, strict=True))


@pytest.fixture(scope="module")
def district(site, snapshot) -> dict:
    """The largest district from the stored GeoPackage: its TOWNNAME, expected colour, a point.

    The point lies well inside the polygon and away from where MapLibre puts its label.
    """
    _, home = site
    version = snapshot.versions["taichung-districts"]
    frame = pyogrio.read_dataframe(home / version.path, layer="features")
    row = frame.loc[frame.geometry.to_crs(3826).area.idxmax()]
    polygon = max(shapely.get_parts(row.geometry), key=lambda part: part.area)
    label = polylabel(polygon, tolerance=1e-4)
    inside = polygon.buffer(-0.01).difference(label.buffer(0.06))
    point = inside.representative_point()
    style = snapshot.layers["taichung-districts"].style
    classes = style["graduated"]
    n = sum(row[classes["field"]] >= b for b in classes["breaks"])
    return {
        "name": row["TOWNNAME"],
        "lonlat": (point.x, point.y),
        "colour": _over(_hex(classes["colors"][n]), style["fill_opacity"], BACKGROUND),
        "bbox": version.bbox,
    }


@pytest.mark.parametrize(
    "layer_id",
    ["taichung-districts", "dem-20m", "evacuation-shelters", "road-centerlines", "fang-zai"],
)
def test_page_loads_without_errors_or_outside_requests(site, visit, layer_id):
    base, _ = site
    v = visit().open(f"{base}/map/{layer_id}")
    assert v.errors == []
    assert v.failed == []
    host = urlsplit(base).netloc
    outside = [u for u in v.requests if urlsplit(u).scheme in ("http", "https")]
    assert [u for u in outside if urlsplit(u).netloc != host] == []
    assert any("/static/maplibre/maplibre-gl.js" in u for u in v.requests)
    broken = v.page.evaluate(
        "[...document.images].filter(i => !i.closest('[hidden]') && i.naturalWidth === 0)"
        ".map(i => i.src)"
    )
    assert broken == []


def test_title_agency_and_zh_tw_by_default(site, visit, snapshot):
    base, _ = site
    layer = snapshot.layers["taichung-districts"]
    v = visit().open(f"{base}/map/taichung-districts")
    assert v.page.evaluate("document.documentElement.lang") == "zh-TW"
    assert v.page.locator("h1").inner_text() == layer.title
    assert layer.agency.title in v.page.locator(".facts").inner_text()
    assert layer.title in v.page.title()


def test_district_drawn_in_its_fill_colour_and_background_outside(site, visit, district):
    base, _ = site
    v = visit().open(f"{base}/map/taichung-districts")
    image = v.map_image()
    x, y = v.project(*district["lonlat"])
    assert 0 <= x < image.width and 0 <= y < image.height
    assert close_colour(image.getpixel((x, y)), district["colour"], 14), (
        image.getpixel((x, y)),
        district["colour"],
    )
    lon, lat = v.page.evaluate(
        "(() => { const p = window.geoportalMap.unproject([8, 8]); return [p.lng, p.lat]; })()"
    )
    west, south, east, north = district["bbox"]
    assert not (west <= lon <= east and south <= lat <= north)
    assert close_colour(image.getpixel((8, 8)), BACKGROUND, 3)


def test_click_opens_a_popup_with_the_feature_townname(site, visit, district):
    base, _ = site
    v = visit().open(f"{base}/map/taichung-districts")
    x, y = v.project(*district["lonlat"])
    v.page.locator("#map canvas").click(position={"x": x, "y": y})
    popup = v.page.locator(".maplibregl-popup")
    popup.wait_for()
    row = popup.locator("tr", has=v.page.locator("th", has_text="TOWNNAME"))
    assert row.locator("td").inner_text() == district["name"]


def test_english_by_query_accept_language_and_switch(site, visit, snapshot):
    base, _ = site
    layer = snapshot.layers["taichung-districts"]
    v = visit().open(f"{base}/map/taichung-districts?lang=en")
    page = v.page
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == (layer.title_en or layer.title)
    assert page.locator(".facts dt").first.inner_text() == i18n.messages("en")["agency"]
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "zh-TW"
    assert page.locator(".facts dt").first.inner_text() == i18n.messages("zh-TW")["agency"]

    english = visit(locale="en-US").open(f"{base}/map/taichung-districts")
    assert english.page.evaluate("document.documentElement.lang") == "en"


def test_dem_raster_draws_non_background_pixels(site, visit, snapshot):
    base, _ = site
    v = visit().open(f"{base}/map/dem-20m")
    v.page.evaluate(
        "(() => { const m = window.geoportalMap;"
        " if (m.getLayer('basemap')) m.setLayoutProperty('basemap', 'visibility', 'none'); })()"
    )
    v.idle()
    image = v.map_image()
    west, south, east, north = snapshot.versions["dem-20m"].bbox
    x0, y0 = v.project(west, north)
    x1, y1 = v.project(east, south)
    box = image.crop((max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height)))
    pixels = np.asarray(box, dtype=int).reshape(-1, 3)
    drawn = (np.abs(pixels - BACKGROUND).max(axis=1) > 30).sum()
    assert drawn > 0.2 * len(pixels)
    assert close_colour(image.getpixel((8, 8)), BACKGROUND, 3)


def test_map_and_controls_are_reachable_by_keyboard(site, visit):
    base, _ = site
    v = visit().open(f"{base}/map/taichung-districts")
    page = v.page
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.className"))
        if "maplibregl-canvas" in focused[-1]:
            break
    assert "maplibregl-canvas" in focused[-1], focused
    assert page.evaluate("document.activeElement.getAttribute('aria-label')")
    zoom = page.evaluate("window.geoportalMap.getZoom()")
    page.keyboard.press("=")
    page.wait_for_timeout(50)
    v.idle()
    assert page.evaluate("window.geoportalMap.getZoom()") > zoom
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    assert page.evaluate("document.activeElement.getAttribute('aria-label')")


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_maplibre_served_from_the_package_with_long_cache(site):
    base, _ = site
    status, headers, body = _get(f"{base}/static/maplibre/maplibre-gl.js")
    assert status == 200
    assert b"MapLibre GL JS" in body[:200]
    assert "max-age=31536000" in headers["cache-control"]
    assert headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/static/maplibre/..%2F__init__.py",
        "/static/maplibre/%2E%2E/__init__.py",
        "/static/maplibre/pywidget.js",
        "/static/..%2Froutes.py",
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/static/templates/map.html",
    ],
)
def test_static_paths_never_leave_the_asset_tables(site, path):
    base, _ = site
    status, _, body = _get(base + path)
    assert status == 404
    assert b"import" not in body


def test_unknown_and_malformed_ids_get_a_page_not_a_500(site):
    base, _ = site
    status, headers, body = _get(f"{base}/map/no-such-layer")
    assert status == 404
    assert headers["content-type"].startswith("text/html")
    assert b"no-such-layer" in body
    status, _, _ = _get(f"{base}/map/BAD_id")
    assert status == 400


def test_own_assets_stay_small():
    assert sum(p.stat().st_size for p in OWN.values()) < 300_000


def test_both_languages_have_the_same_messages():
    assert set(i18n.messages("zh-TW")) == set(i18n.messages("en"))


@pytest.mark.parametrize(
    ("query", "header", "lang"),
    [
        (None, None, "zh-TW"),
        ("en", "zh-TW", "en"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "fr, en;q=0.5, zh-TW;q=0.8", "zh-TW"),
        (None, "fr", "zh-TW"),
        ("xx", "en", "en"),
    ],
)
def test_language_negotiation(query, header, lang):
    assert i18n.negotiate(query, header) == lang


def test_style_becomes_maplibre_expressions():
    from catalog.style import parse_style
    from portal.web.mapstyle import vector_layers, zoom_range

    roads = parse_style(
        {"categorized": {"field": "等級", "values": {"快速道路": "#d62828"}}}, "LineString"
    )
    (line,) = vector_layers("layer", "roads", roads, "LineString", 24.0)
    assert line["paint"]["line-color"][0] == "match"
    assert line["filter"] == ["match", ["to-string", ["get", "等級"]], ["快速道路"], True, False]
    assert line["source-layer"] == "roads"
    dense = parse_style({"max_scale": 20000}, "Point")
    zooms = zoom_range(dense, 24.0)
    # MapLibre zoom z (512 px tiles) shows 1:279,541,132 × cos(lat) / 2^z.
    scale = 279_541_132.014 * 0.9135455 / 2**zooms.minzoom
    assert scale == pytest.approx(20000, rel=1e-3)
