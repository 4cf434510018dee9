"""Staff sign-in, the map composer, saved maps and the seven widgets, in real Chromium.

The portal runs as `geoportal serve` on one port; each widget is embedded in a host page
served by a second, tiny ``http.server`` on another port (another origin), with an iframe or
with the JS loader. Expectations come from the stored data (pyogrio/shapely) and pyproj,
never from the widget: coordinates, districts, features within a distance, colours.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from PIL import Image
from pyproj import Transformer

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ckan.model import User
from portal.ckan.store import Membership, PortalStore
from portal.web import i18n
from portal.web.routes import OWN
from tests.portal.browser import CHROMIUM, FLAGS
from tests.serve import serving

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

NO_WEBGL = [*FLAGS[:4], "--no-first-run", "--disable-webgl", "--disable-3d-apis"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BACKGROUND = (0xF5, 0xF5, 0xF2)
ORG = "tai-zhong-shi-zheng-fu-min-zheng-ju"
OTHER_ORG = "tai-zhong-shi-zheng-fu-xiao-fang-ju"
PASSWORD = "correct horse 8"
#: Wait until map ``i`` (None: the page's one map) has drawn everything; fail after 60 s (a
#: promise that never settles would hang the test run: Playwright's evaluate has no timeout).
IDLE = """(i) => new Promise((done, fail) => {
  setTimeout(() => fail(new Error("the map never became idle")), 60000);
  const wait = () => {
    const map = i === null ? window.geoportalMap : (window.geoportalMaps || [])[i];
    if (!map) { setTimeout(wait, 50); return; }
    map.once("idle", () => done(true));
    map.triggerRepaint();
  };
  wait();
})"""
HIDE_BASEMAP = """() => { for (const m of (window.geoportalMaps || [window.geoportalMap]))
  if (m.getLayer('basemap')) m.setLayoutProperty('basemap', 'visibility', 'none'); }"""
TO_WGS84 = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tiled, tmp_path_factory) -> Path:
    """A copy of the tiled small corpus with three staff users."""
    source, _ = tiled
    target = tmp_path_factory.mktemp("embed") / "home"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("secret.key"))
    store = PortalStore.open(target)
    try:
        for name, org, role in (
            ("editor", ORG, "editor"),
            ("outsider", OTHER_ORG, "editor"),
            ("reader", ORG, "member"),
        ):
            store.put_user(User(id=f"id-{name}", name=name, fullname=name), password=PASSWORD)
            store.put_membership(Membership(org, name, role))
    finally:
        store.close()
    return target


@pytest.fixture(scope="module")
def base(home) -> Iterator[str]:
    with serving(home) as url:
        yield url


@pytest.fixture(scope="module")
def snapshot(home):
    return CatalogView(Catalog.open(home)).snapshot()


def _frame(home: Path, snapshot, layer_id: str):
    version = snapshot.versions[layer_id]
    return pyogrio.read_dataframe(home / version.path, layer="features")


class Host:
    """A second web server (another origin) serving host pages from memory."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                body = pages.get(path)
                self.send_response(200 if body else 204 if path == "/favicon.ico" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, name: str, html: str) -> str:
        self.pages[f"/{name}"] = html.encode()
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Host, Host]]:
    a, b = Host(), Host()
    yield a, b
    a.close()
    b.close()


def _launch(p, flags):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it with apt)")
    return p.chromium.launch(executable_path=str(CHROMIUM), args=flags, headless=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator:
    b = _launch(playwright, FLAGS)
    yield b
    b.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1100, "height": 700}, locale="zh-TW")
    p = context.new_page()
    p.errors = []
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
    p.on("response", lambda r: r.status >= 400 and p.errors.append(f"{r.url}: {r.status}"))
    yield p
    context.close()


class Staff:
    """A signed-in staff member talking to the portal over HTTP (cookies and CSRF token)."""

    def __init__(self, base: str, name: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        form = self.opener.open(f"{base}/user/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = f"name={name}&password={PASSWORD.replace(' ', '+')}&csrf_token={token}"
        data += "&came_from=/maps"
        self.opener.open(f"{base}/user/login", data=data.encode())
        try:
            composer = self.opener.open(f"{base}/maps/new").read().decode()
        except urllib.error.HTTPError as e:  # not a composer: the page still carries the token
            composer = e.read().decode()
        found = re.search(r'"csrf":"([^"]+)"', composer) or re.search(
            r'name="csrf_token" value="([^"]+)"', composer
        )
        self.csrf = found.group(1) if found else ""

    def call(self, method: str, path: str, body: object = None, csrf: bool = True):
        headers = {"Content-Type": "application/json"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def save(self, doc: dict) -> str:
        status, body = self.call("POST", "/maps", {"organization": ORG, **doc})
        assert status == 201, body
        return body["id"]


@pytest.fixture(scope="module")
def editor(base) -> Staff:
    return Staff(base, "editor")


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# -- helpers for widgets in host pages -------------------------------------------------------------

IFRAME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host</title>
</head><body style="margin:0"><h1 style="margin:0;font-size:16px">Host site</h1>
<iframe id="w" src="{src}" width="900" height="560" style="border:0" title="map"></iframe>
<script>
window.received = [];
window.addEventListener("message", (e) => {{
  if (e.origin === "{base}") window.received.push(e.data);
}});
</script></body></html>"""

LOADER_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host</title>
</head><body style="margin:0"><h1 style="margin:0;font-size:16px">Host site (loader)</h1>
<script>window.received = []; window.domEvents = [];
document.addEventListener("geoportal:location", (e) => window.domEvents.push(e.detail));
</script>
<script src="{base}/static/loader.js" data-map="{map}" data-width="900" data-height="560"></script>
<script>geoportal.on("location", (d) => window.received.push(d));
geoportal.on("*", (d) => (window.all = (window.all || []).concat([d.type])));</script>
</body></html>"""


def embed(page, host: Host, base: str, map_id: str, *, loader: bool = False, name: str = ""):
    """Open a host page embedding the widget; returns (iframe element, its frame)."""
    html = (
        LOADER_PAGE.format(base=base, map=map_id)
        if loader
        else IFRAME_PAGE.format(src=f"{base}/embed/{map_id}", base=base)
    )
    url = host.put(name or f"{map_id}.html", html)
    page.goto(url)
    handle = page.wait_for_selector("iframe")
    frame = handle.content_frame()
    frame.wait_for_load_state()
    return handle, frame


def idle(frame, i: int | None = None) -> None:
    frame.evaluate(IDLE, i)


def at(frame, lon: float, lat: float, map_id: str = "map") -> tuple[float, float]:
    """Where (lon, lat) is inside the iframe (CSS px from its top left)."""
    return tuple(
        frame.evaluate(
            """([lon, lat, id]) => {
              const r = document.getElementById(id).getBoundingClientRect();
              const p = window.geoportalMap.project([lon, lat]);
              return [r.left + p.x, r.top + p.y];
            }""",
            [lon, lat, map_id],
        )
    )


def picture(handle) -> Image.Image:
    return Image.open(io.BytesIO(handle.screenshot())).convert("RGB")


def click(page, handle, xy: tuple[float, float]) -> None:
    box = handle.bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def _near(a, b, tolerance: int) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def shoot(handle, kind: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    handle.screenshot(path=str(SCREENSHOTS / f"embed-{kind}.png"))


def unlabelled(polygon) -> shapely.Point:
    """A point well inside a polygon's largest part, away from where its label is drawn."""
    part = max(shapely.get_parts(polygon), key=lambda p: p.area)
    label = shapely.ops.polylabel(part, tolerance=1e-4)
    return part.buffer(-0.01).difference(label.buffer(0.06)).representative_point()


def inside(polygon) -> shapely.Point:
    """A point well inside a polygon (its largest part)."""
    part = max(shapely.get_parts(polygon), key=lambda p: p.area)
    return shapely.Point(shapely.ops.polylabel(part, tolerance=1e-5))


# -- sign-in and the composer -----------------------------------------------------------------


def test_sign_in_compose_in_the_ui_save_and_read_the_json(base, page, snapshot):
    page.goto(f"{base}/maps/new")
    assert "/user/login" in page.url
    page.fill("#login-name", "editor")
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#composer:not([hidden])")
    page.fill("#map-title", "行政區與 AED")
    page.fill("#layer-q", "行政區")
    page.click("#layer-search")
    title = snapshot.layers["taichung-districts"].title
    page.get_by_role("button", name=f"加入 {title}", exact=True).click()
    page.fill("#layer-q", "AED")
    page.click("#layer-search")
    aed = snapshot.layers["aed-locations"].title
    page.get_by_role("button", name=f"加入 {aed}", exact=True).click()
    page.wait_for_selector("#layer-list li:nth-child(2) input[type=color]")
    page.uncheck("#own-1")
    page.fill("#color-1", "#ff0000")
    page.check("#kind-nearby")
    page.fill("#map-origins", "https://www.example.gov.tw\nhttp://127.0.0.1:9")
    page.wait_for_function("() => window.geoportalMap.getLayer('aed-locations-1')")
    page.evaluate(IDLE, None)
    page.evaluate("window.geoportalMap.jumpTo({center: [120.65, 24.16], zoom: 12})")
    page.click("#use-view")
    page.click("#save")
    page.wait_for_selector("#snippets:not([hidden])")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "composer.png"), full_page=True)
    map_id = page.locator("#link-json").get_attribute("href").rstrip("/").split("/")[-1]
    status, _, body = _get(f"{base}/maps/{map_id}")
    assert status == 200
    doc = json.loads(body)
    assert doc["title"] == "行政區與 AED"
    assert doc["kind"] == "nearby" and doc["letter"] == "f"
    assert doc["organization"] == ORG
    assert [layer["id"] for layer in doc["layers"]] == ["taichung-districts", "aed-locations"]
    assert doc["layers"][1]["color"] == "#ff0000"
    assert doc["origins"] == ["https://www.example.gov.tw", "http://127.0.0.1:9"]
    assert doc["view"]["center"] == pytest.approx([120.65, 24.16], abs=1e-5)
    assert doc["view"]["zoom"] == pytest.approx(12, abs=1e-3)
    snippet = page.locator("#snippet-script").input_value()
    assert snippet == f'<script src="{base}/static/loader.js" data-map="{map_id}"></script>'
    assert f'src="{base}/embed/{map_id}"' in page.locator("#snippet-iframe").input_value()
    assert page.errors == []


def test_wrong_password_and_missing_csrf_are_refused(base):
    assert _get(f"{base}/user/login")[0] == 200
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/user/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    with pytest.raises(urllib.error.HTTPError) as wrong:
        opener.open(
            f"{base}/user/login", data=f"name=editor&password=x&csrf_token={token}".encode()
        )
    assert wrong.value.code == 401
    assert i18n.messages("zh-TW")["login_failed"] in wrong.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as forged:
        opener.open(f"{base}/user/login", data=b"name=editor&password=x&csrf_token=forged")
    assert forged.value.code == 400
    assert not any(c.name == "geoportal_session" for c in jar)


def test_who_may_save_what(base, editor):
    doc = {"title": "權限", "kind": "a", "layers": ["taichung-districts"]}
    map_id = editor.save(doc)
    outsider = Staff(base, "outsider")
    status, body = outsider.call("PUT", f"/maps/{map_id}", doc)
    assert status == 403, body
    status, _ = outsider.call("POST", "/maps", {**doc, "organization": ORG})
    assert status == 403
    status, _ = outsider.call("DELETE", f"/maps/{map_id}")
    assert status == 403
    reader = Staff(base, "reader")  # a member, not an editor
    assert reader.call("POST", "/maps", {**doc, "organization": ORG})[0] == 403
    status, body = editor.call("PUT", f"/maps/{map_id}", {**doc, "title": "改"}, csrf=False)
    assert status == 403 and "CSRF" in body["detail"]
    anonymous = urllib.request.Request(
        f"{base}/maps", data=json.dumps({**doc, "organization": ORG}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous)
    assert refused.value.code == 401
    status, body = editor.call("PUT", f"/maps/{map_id}", {**doc, "title": "改"})
    assert status == 200 and body["title"] == "改"
    assert json.loads(_get(f"{base}/maps/{map_id}")[2])["title"] == "改"


def test_bad_maps_get_a_clear_400(editor):
    cases = [
        ({"title": "x", "layers": []}, "layers"),
        ({"title": "x", "layers": ["no-such-layer"]}, "no-such-layer"),
        ({"title": "x", "layers": ["taichung-districts"], "kind": "z"}, "kind"),
        ({"title": "x", "layers": ["taichung-districts"], "origins": ["javascript:1"]}, "origin"),
        (
            {"title": "x", "layers": ["taichung-districts"], "origins": ["https://a.tw; x"]},
            "origin",
        ),
        ({"title": "x", "layers": [{"id": "aed-locations", "color": "red"}]}, "colour"),
        ({"title": "x", "kind": "compare", "layers": ["aed-locations"]}, "two layers"),
        (
            {
                "title": "x",
                "layers": [{"id": "aed-locations", "thematic": {"field": "沒有", "mode": "x"}}],
            },
            "mode",
        ),
    ]
    for doc, word in cases:
        status, body = editor.call("POST", "/maps", {"organization": ORG, **doc})
        assert status == 400, (doc, body)
        assert word in body["detail"], (word, body["detail"])


def test_private_maps_are_hidden_from_anonymous(base, editor):
    map_id = editor.save({"title": "內部", "public": False, "layers": ["taichung-districts"]})
    assert _get(f"{base}/maps/{map_id}")[0] == 404
    assert _get(f"{base}/embed/{map_id}")[0] == 404
    assert editor.call("GET", f"/maps/{map_id}")[0] == 200


def test_other_pages_keep_frame_ancestors_none(base, editor):
    map_id = editor.save({"title": "x", "layers": ["taichung-districts"]})
    _, headers, _ = _get(f"{base}/embed/{map_id}")
    assert headers["content-security-policy"].endswith("frame-ancestors 'self'")
    for path in ("/user/login", "/map/taichung-districts"):
        _, headers, _ = _get(base + path)
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path


# -- the widgets, each from another origin ---------------------------------------------------------


def test_a_layer_viewer_draws_layers_legend_and_popups(base, editor, page, hosts, home, snapshot):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "圖層檢視",
            "kind": "a",
            "layers": ["taichung-districts", {"id": "aed-locations", "color": "#ff0000"}],
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    aeds = _frame(home, snapshot, "aed-locations")
    image = picture(handle)
    red = 0
    for point in aeds.geometry[:10]:
        x, y = at(frame, point.x, point.y)
        if 0 <= x < image.width and 0 <= y < image.height:
            r, g, b = image.getpixel((int(x), int(y)))
            red += r > 170 and g < 90 and b < 90
    assert red >= 5
    legend = frame.locator(".legend img").first
    assert frame.evaluate("(img) => img.naturalWidth", legend.element_handle()) > 0
    district = _frame(home, snapshot, "taichung-districts")
    row = district.loc[district.geometry.to_crs(3826).area.idxmax()]
    point = inside(row.geometry)
    click(page, handle, at(frame, point.x, point.y))
    popup = frame.locator(".maplibregl-popup")
    popup.wait_for()
    assert row["TOWNNAME"] in popup.inner_text()
    shoot(handle, "viewer")
    assert page.errors == []


def test_b_location_picker_posts_coordinates_and_district(
    base, editor, page, hosts, home, snapshot
):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "位置選取",
            "kind": "b",
            "layers": ["taichung-villages"],
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id, loader=True)
    idle(frame)
    villages = _frame(home, snapshot, "taichung-villages")
    districts = _frame(home, snapshot, "taichung-districts")
    target = inside(villages.geometry.iloc[len(villages) // 2])
    click(page, handle, at(frame, target.x, target.y))
    page.wait_for_function("window.received.length > 0", timeout=20000)
    message = page.evaluate("window.received[0]")
    assert page.evaluate("window.domEvents.length") == 1
    assert message["type"] == "location" and message["map"] == map_id
    lon, lat = message["wgs84"]
    assert abs(lon - target.x) < 0.002 and abs(lat - target.y) < 0.002
    x, y = TO_WGS84.transform(lon, lat)
    assert abs(message["twd97"][0] - x) < 1 and abs(message["twd97"][1] - y) < 1
    here = shapely.Point(lon, lat)
    village = villages[villages.geometry.contains(here)].iloc[0]
    town = districts[districts.geometry.contains(here)].iloc[0]
    assert message["district"]["village"] == village["VILLNAME"]
    assert message["district"]["town"] == town["TOWNNAME"]
    assert message["district"]["county"] == town["COUNTYNAME"]
    assert frame.locator("#picked-district").inner_text().endswith(village["VILLNAME"])
    shoot(handle, "picker")
    assert "ready" in page.evaluate("window.all")


def test_c_address_and_poi_search(base, editor, page, hosts, home, snapshot):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "地址與地點搜尋",
            "kind": "c",
            "layers": ["evacuation-shelters"],
            "search_layer": "evacuation-shelters",
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    plates = _frame(home, snapshot, "door-plates")
    plate = plates.iloc[7]
    frame.fill("#search-q", plate["完整地址"])
    frame.locator("#search-form button").click()
    page.wait_for_function("() => window.received.some((m) => m.type === 'select')", timeout=20000)
    chosen = page.evaluate("window.received.find((m) => m.type === 'select')")
    assert chosen["wgs84"] == pytest.approx([plate.geometry.x, plate.geometry.y], abs=1e-6)
    shelters = _frame(home, snapshot, "evacuation-shelters")
    name = shelters["名稱"].iloc[3]
    frame.select_option("#search-mode", "poi")
    frame.fill("#search-q", name)
    frame.locator("#search-form button").click()
    expect(frame.locator("#results")).to_contain_text(name)
    expected = {n for n in shelters["名稱"] if name in n}
    texts = set(frame.locator("#results li button").all_inner_texts())
    assert texts == expected
    shoot(handle, "search")


def test_d_thematic_map_colours_districts_by_attribute(base, editor, page, hosts, home, snapshot):
    host, _ = hosts
    districts = _frame(home, snapshot, "taichung-districts")
    big = districts.loc[districts.geometry.to_crs(3826).area.sort_values().index[-2:]]
    colours = ["#e41a1c", "#377eb8"]
    values = dict(zip(big["TOWNNAME"], colours, strict=True))
    map_id = editor.save(
        {
            "title": "主題地圖",
            "kind": "d",
            "layers": [
                {
                    "id": "taichung-districts",
                    "thematic": {"field": "TOWNNAME", "mode": "categorized", "values": values},
                }
            ],
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    frame.evaluate(HIDE_BASEMAP)
    idle(frame)
    image = picture(handle)
    opacity = snapshot.layers["taichung-districts"].style.get("fill_opacity", 0.6)
    for (_, row), colour in zip(big.iterrows(), colours, strict=True):
        point = unlabelled(row.geometry)
        x, y = at(frame, point.x, point.y)
        expected = tuple(
            round(c * opacity + u * (1 - opacity))
            for c, u in zip(_hex(colour), BACKGROUND, strict=True)
        )
        assert _near(image.getpixel((int(x), int(y))), expected, 14), (row["TOWNNAME"], expected)
    legend = frame.locator(".legend .classes li").all_inner_texts()
    assert legend[:2] == list(values)
    shoot(handle, "thematic")


def test_e_compare_swipes_between_two_layers(base, editor, page, hosts, home, snapshot):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "圖層比較",
            "kind": "e",
            "layers": [
                {"id": "aed-locations", "color": "#ff0000"},
                {"id": "evacuation-shelters", "color": "#0000ff"},
            ],
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    idle(frame, 1)
    aed = _frame(home, snapshot, "aed-locations").geometry
    shelter = _frame(home, snapshot, "evacuation-shelters").geometry

    def colour_at(points, swipe: int) -> list[tuple]:
        frame.evaluate(
            "(v) => { const s = document.getElementById('swipe'); s.value = v;"
            " s.dispatchEvent(new Event('input')); }",
            swipe,
        )
        image = picture(handle)
        out = []
        for p in points[:10]:
            x, y = at(frame, p.x, p.y)
            if 0 <= x < image.width and 0 <= y < image.height:
                out.append(image.getpixel((int(x), int(y))))
        return out

    reds = colour_at(aed, 100)  # the right map clipped away: the left layer shows
    assert sum(r > 170 and g < 90 and b < 90 for r, g, b in reds) >= 5
    blues = colour_at(shelter, 0)  # the right map covers all
    assert sum(b > 170 and r < 90 and g < 90 for r, g, b in blues) >= 5
    assert sum(r > 170 and g < 90 and b < 90 for r, g, b in colour_at(aed, 0)) == 0
    colour_at(aed, 50)
    shoot(handle, "compare")


def test_f_nearby_finder_lists_features_within_the_distance(
    base, editor, page, hosts, home, snapshot
):
    host, _ = hosts
    distance = 3000
    map_id = editor.save(
        {
            "title": "周邊查詢",
            "kind": "f",
            "layers": ["public-parking"],
            "distance": distance,
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    parking = _frame(home, snapshot, "public-parking")
    start = parking.geometry.iloc[0]
    click(page, handle, at(frame, start.x + 0.003, start.y + 0.002))
    page.wait_for_function("() => window.received.some((m) => m.type === 'nearby')", timeout=20000)
    found = page.evaluate("window.received.find((m) => m.type === 'nearby')")
    lon, lat = found["wgs84"]
    cx, cy = TO_WGS84.transform(lon, lat)
    xs, ys = TO_WGS84.transform(parking.geometry.x.to_numpy(), parking.geometry.y.to_numpy())
    metres = np.hypot(np.asarray(xs) - cx, np.asarray(ys) - cy)
    expected = sorted(metres[metres <= distance])
    assert found["count"] == len(expected) > 0
    assert [f["distance"] for f in found["features"]] == pytest.approx(expected, abs=0.5)
    assert frame.locator("#results li").count() == len(expected)
    names = {parking["名稱"].iloc[i] for i in np.flatnonzero(metres <= distance)}
    listed = {t.split("（")[0] for t in frame.locator("#results li").all_inner_texts()}
    assert listed == names
    shoot(handle, "nearby")


def test_g_table_filters_and_syncs_with_the_map(base, editor, page, hosts, home, snapshot):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "地圖與屬性表",
            "kind": "g",
            "layers": [{"id": "evacuation-shelters", "color": "#0000ff"}],
            "origins": [host.origin],
        }
    )
    handle, frame = embed(page, host, base, map_id)
    idle(frame)
    shelters = _frame(home, snapshot, "evacuation-shelters")
    frame.uncheck("#filter-view")
    expect(frame.locator("#table tbody tr")).to_have_count(len(shelters))
    name = shelters["名稱"].iloc[5]
    frame.fill("#filter-q", name)
    frame.locator("#filter-form button").click()
    expect(frame.locator("#table tbody tr")).to_have_count(1)
    frame.locator("#table tbody tr").first.click()
    assert frame.locator("#table tbody tr.selected").inner_text().count(name) == 1
    marked = frame.evaluate(
        "window.geoportalMap.getSource('marks').serialize().data.features[0].properties['名稱']"
    )
    assert marked == name
    frame.fill("#filter-q", "")
    frame.locator("#filter-form button").click()
    expect(frame.locator("#table tbody tr")).to_have_count(len(shelters))
    other = shelters.iloc[11]
    frame.evaluate(
        "([lon, lat]) => window.geoportalMap.jumpTo({center: [lon, lat], zoom: 10})",
        [other.geometry.x, other.geometry.y],
    )
    idle(frame)
    click(page, handle, at(frame, other.geometry.x, other.geometry.y))
    expect(frame.locator("#table tbody tr.selected")).to_have_count(1)
    assert other["名稱"] in frame.locator("#table tbody tr.selected").inner_text()
    shoot(handle, "table")


# -- framing and fallbacks --------------------------------------------------------------------


def test_a_site_not_allowed_cannot_frame_the_widget(base, editor, page, hosts):
    allowed, other = hosts
    map_id = editor.save(
        {"title": "x", "layers": ["taichung-districts"], "origins": [allowed.origin]}
    )
    blocked: list[str] = []
    page.on("console", lambda m: "frame-ancestors" in m.text and blocked.append(m.text))
    _, frame = embed(page, other, base, map_id, name="refused.html")
    page.wait_for_timeout(500)
    assert frame.locator("#widget-title").count() == 0
    assert blocked or frame.url.startswith("chrome-error")
    _, frame = embed(page, allowed, base, map_id, name="allowed.html")
    frame.locator("#widget-title").wait_for()


def test_without_webgl_the_widget_shows_the_wms_picture(base, editor, playwright, hosts):
    host, _ = hosts
    map_id = editor.save(
        {
            "title": "無 WebGL",
            "kind": "a",
            "layers": ["taichung-districts"],
            "view": {"center": [120.68, 24.15], "zoom": 10},
            "origins": [host.origin],
        }
    )
    browser = _launch(playwright, NO_WEBGL)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        handle, frame = embed(page, host, base, map_id)
        img = frame.locator("#map img.fallback")
        img.wait_for()
        expect(img).to_have_js_property("complete", True)
        src = img.get_attribute("src")
        assert src.startswith("/wms?") and "REQUEST=GetMap" in src and "taichung-districts" in src
        assert frame.evaluate("document.querySelector('#map img.fallback').naturalWidth") > 0
        pixels = np.asarray(picture(frame.locator("#map").element_handle()), dtype=int)
        assert (np.abs(pixels - pixels[0, 0]).max(axis=2) > 30).mean() > 0.05
        page.wait_for_function("() => window.received.some((m) => m.fallback)")
        shoot(handle, "fallback")
    finally:
        browser.close()


def test_english_widget_and_own_assets_stay_small(base, editor):
    map_id = editor.save({"title": "x", "kind": "b", "layers": ["taichung-districts"]})
    _, headers, body = _get(f"{base}/embed/{map_id}?lang=en")
    assert headers["content-language"] == "en"
    assert i18n.messages("en")["embed_pick_hint"] in body.decode()
    status, headers, body = _get(f"{base}/static/loader.js")
    assert status == 200 and b"geoportal" in body
    assert "max-age=3600" in headers["cache-control"]
    assert sum(p.stat().st_size for p in OWN.values()) < 300_000


# -- security review (R1) --------------------------------------------------------------------------


def test_odd_csrf_tokens_and_cookies_are_refused_not_crashes(base):
    """A non-ASCII CSRF token or session signature is a 400/403/anonymous, never a 500."""
    staff = Staff(base, "editor")
    staff.csrf = "é" * 43
    status, body = staff.call("POST", "/maps", {"organization": ORG, "title": "x", "layers": []})
    assert status == 403 and "CSRF" in body["detail"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        staff.opener.open(f"{base}/user/logout", data="csrf_token=é".encode())
    assert refused.value.code == 400
    forged = urllib.request.Request(
        f"{base}/maps", headers={"Cookie": "geoportal_session=eyJ1IjoiaWQtZWRpdG9yIn0.\u00e9"}
    )
    with urllib.request.urlopen(forged) as r:  # anonymous: the sign-in page
        assert r.status == 200 and "/user/login" in r.url


def test_sign_in_never_redirects_off_site(base):
    """``came_from`` that a browser would read as another host ends up at ``/``."""
    for came_from in ("//evil.tw/x", "/\\evil.tw", "https://evil.tw/", "/\t/evil.tw", "/%0a/x"):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
        form = opener.open(f"{base}/user/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode(
            {"name": "reader", "password": PASSWORD, "csrf_token": token, "came_from": came_from}
        )
        with pytest.raises(urllib.error.HTTPError) as moved:
            opener.open(f"{base}/user/login", data=data.encode())
        assert moved.value.code == 303
        location = moved.value.headers["location"]
        assert urllib.parse.urlsplit(location).netloc in ("", urllib.parse.urlsplit(base).netloc)
        assert not location.startswith("//") and location.startswith("/"), (came_from, location)
        if came_from.startswith("/\t") or came_from.startswith("/%0a"):
            assert location == "/", (came_from, location)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_json_in_script_escapes_line_separators(editor, base):
    """U+2028/U+2029 in a map title reach the page's JSON escaped, like <, > and &."""
    map_id = editor.save({"title": "a\u2028b\u2029</script>&", "layers": ["taichung-districts"]})
    _, _, html = _get(f"{base}/embed/{map_id}")
    text = html.decode()
    config = re.search(r'<script type="application/json" id="embed-config">(.*?)</script>', text)
    assert config is not None
    raw = config.group(1)
    assert "\u2028" not in raw and "\u2029" not in raw and "<" not in raw and "&" not in raw
    assert json.loads(raw)["title"] == "a\u2028b\u2029</script>&"


def test_moving_a_map_to_another_organization_needs_a_role_there(base, editor):
    """An editor of ORG cannot hand a map to OTHER_ORG (where they hold no role)."""
    doc = {"title": "搬家", "layers": ["taichung-districts"]}
    map_id = editor.save(doc)
    status, body = editor.call("PUT", f"/maps/{map_id}", {**doc, "organization": OTHER_ORG})
    assert status == 403, body
    assert json.loads(_get(f"{base}/maps/{map_id}")[2])["organization"] == ORG
