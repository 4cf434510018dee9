"""The generators behind ./scripts/bench: wrk scripts, nginx configs, mapfiles, tile choice.

Each runs against the real tool it was written for (wrk, nginx, MapServer's mapserv,
tippecanoe, the pmtiles reader); a test whose tool is not installed is skipped.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import mercantile
import numpy as np
import pyogrio
import pytest
import shapely
from PIL import Image
from pmtiles.reader import MmapSource, all_tiles
from pyproj import Geod, Transformer

from catalog.style import parse_style
from tiles.build import tippecanoe_binary
from tiles.render import scale_denominator

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench"] = bench
_spec.loader.exec_module(bench)

needs = {
    tool: pytest.mark.skipif(not shutil.which(tool), reason=f"{tool} not installed")
    for tool in ("wrk", "nginx", "mapserv")
}


# ---- wrk ------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: Counter

    def do_GET(self):
        self.seen[self.path] += 1
        self.send_response(404 if self.path.endswith("/missing") else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # wrk drops its connections when it stops


@pytest.fixture
def recorder():
    handler = type("Handler", (_Recorder,), {"seen": Counter()})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    server.shutdown()
    server.server_close()


@needs["wrk"]
def test_wrk_script_asks_for_exactly_the_listed_paths_and_reports_them(recorder, tmp_path):
    base, seen = recorder
    paths = [f"/tiles/a/{z}/{x}/{y}.mvt" for z, x, y in [(10, 1, 2), (11, 3, 4), (12, 5, 6)]]
    paths.append("/wms?LAYERS=%E5%BB%BA%E7%89%A9&BBOX=1,2,3,4")
    script = tmp_path / "s.lua"
    script.write_text(bench.wrk_script(paths))
    load = bench._wrk(base, script, 2)
    assert set(seen) == set(paths)
    # each thread cycles the list from its own offset: every path equally often, give or take
    # one per thread and the requests made but never sent when wrk stopped
    assert max(seen.values()) - min(seen.values()) <= bench.WRK_THREADS + bench.WRK_CONNECTIONS
    # wrk counts the answered requests: those still in flight at the end were seen, not counted
    sent = sum(seen.values())
    assert sent - bench.WRK_CONNECTIONS <= load.requests <= sent
    assert load.errors == 0
    assert 0 < load.p50_ms <= load.p99_ms
    assert load.rps == pytest.approx(load.requests / load.seconds)


@needs["wrk"]
def test_wrk_results_count_error_statuses(recorder, tmp_path):
    base, seen = recorder
    script = tmp_path / "s.lua"
    script.write_text(bench.wrk_script(["/ok", "/missing"]))
    load = bench._wrk(base, script, 1)
    assert seen["/missing"] - bench.WRK_CONNECTIONS <= load.errors <= seen["/missing"]
    assert load.errors > 0


def test_wrk_script_refuses_an_empty_list():
    with pytest.raises(ValueError, match="at least one"):
        bench.wrk_script([])


def test_parse_wrk_says_when_wrk_reported_nothing():
    with pytest.raises(ValueError, match="WRK-RESULT"):
        bench.parse_wrk("Running 1s test @ http://x\nunable to connect\n")


# ---- tiles: which tiles, extracted and served by nginx ---------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A real tippecanoe archive of 3,000 points, denser in one corner of Taichung."""
    rng = random.Random(7)
    tmp = tmp_path_factory.mktemp("archive")
    lines = []
    for i in range(3000):
        if i % 3:
            lon, lat = 120.68 + rng.gauss(0, 0.01), 24.15 + rng.gauss(0, 0.01)
        else:
            lon, lat = rng.uniform(120.5, 120.9), rng.uniform(24.0, 24.4)
        geometry = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
        lines.append(json.dumps({"type": "Feature", "properties": {"n": i}, "geometry": geometry}))
    source = tmp / "points.geojsons"
    source.write_text("\n".join(lines))
    out = tmp / "points.pmtiles"
    subprocess.run(
        [tippecanoe_binary(), "-o", str(out), "--quiet", "-l", "p", "-z14", str(source)],
        check=True,
    )
    return out


def test_archive_entries_address_every_tile_the_pmtiles_reader_finds(archive):
    with archive.open("rb") as f:
        expected = dict(all_tiles(MmapSource(f)))
    entries = bench.archive_entries(archive)
    assert set(entries) == set(expected)
    data = archive.read_bytes()
    for tile, (offset, length) in entries.items():
        assert data[offset : offset + length] == expected[tile]


def test_dense_tiles_take_every_zoom_under_the_densest_block(archive):
    sizes = {t: length for t, (_, length) in bench.archive_entries(archive).items()}
    chosen = bench.dense_tiles(sizes)
    # the densest z10 tile, by the bytes of its z14 tiles, found with mercantile
    weight: Counter = Counter()
    for (z, x, y), size in sizes.items():
        if z == 14:
            weight[mercantile.parent(mercantile.Tile(x, y, z), zoom=10)] += size
    densest = max(weight, key=weight.get)
    # the dense cluster sits at 120.68, 24.15
    assert densest == mercantile.tile(120.68, 24.15, 10)
    expected = set()
    for z, x, y in sizes:
        if 10 <= z <= 14:
            top = mercantile.parent(mercantile.Tile(x, y, z), zoom=10) if z > 10 else (x, y)
            if abs(top[0] - densest.x) <= 1 and abs(top[1] - densest.y) <= 1:
                expected.add((z, x, y))
    assert set(chosen) == expected
    assert {z for z, _, _ in chosen} == {10, 11, 12, 13, 14}
    assert chosen == sorted(chosen)


def test_dense_tiles_use_the_deepest_zoom_there_is():
    # z11 is the deepest zoom of 10-15 here; z10 tile 5/5 holds 12 bytes of it, 20/20 holds 9
    sizes = {(10, 5, 5): 1, (11, 10, 10): 5, (11, 11, 11): 7, (11, 40, 40): 9, (8, 1, 1): 99}
    assert bench.dense_tiles(sizes, block=1) == [(10, 5, 5), (11, 10, 10), (11, 11, 11)]
    assert bench.dense_tiles({(3, 1, 1): 1}) == []


@needs["nginx"]
def test_nginx_serves_extracted_tiles_as_stored_with_gzip_encoding(archive, tmp_path):
    sizes = {t: length for t, (_, length) in bench.archive_entries(archive).items()}
    tiles = bench.dense_tiles(sizes)
    total = bench._extract(archive, tiles, tmp_path / "www" / "tiles" / "p")
    assert total == sum(sizes[t] for t in tiles)
    with archive.open("rb") as f:
        stored = dict(all_tiles(MmapSource(f)))
    location = bench.static_tiles_location(tmp_path / "www")
    z, x, y = tiles[-1]
    with bench._nginx(tmp_path, location, f"/tiles/p/{z}/{x}/{y}.mvt") as base:
        for z, x, y in tiles[:: max(1, len(tiles) // 20)]:
            with urllib.request.urlopen(f"{base}/tiles/p/{z}/{x}/{y}.mvt") as r:
                assert r.headers["Content-Encoding"] == "gzip"
                assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
                body = r.read()
            assert body == stored[(z, x, y)]
            assert gzip.decompress(body)  # a gzip stream, as geoportal serves it
    assert not (tmp_path / "nginx.pid").exists()  # stopped


# ---- WMS: bboxes and MapServer's mapfile -----------------------------------------------------


def test_wms_bboxes_are_square_256_pixel_maps_at_the_asked_scales():
    centre = (218_500.0, 2_666_500.0)
    boxes = bench.wms_bboxes(centre, 300)
    assert boxes == bench.wms_bboxes(centre, 300)  # same list every run
    assert len(set(boxes)) == 300
    scales = [scale_denominator(b, "EPSG:3826", 256) for b in boxes]
    assert 2_000 <= min(scales) < 3_000
    assert 15_000 < max(scales) <= 20_000
    for x0, y0, x1, y1 in boxes:
        assert x1 - x0 == pytest.approx(y1 - y0, abs=0.02)
        assert abs((x0 + x1) / 2 - centre[0]) <= 1500.01
        assert abs((y0 + y1) / 2 - centre[1]) <= 1500.01


def test_getmap_path_is_a_wms_130_getmap_of_256_pixels():
    path = bench.getmap_path("buildings", (1.0, 2.0, 3.5, 4.25))
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    assert path.startswith("/wms?")
    assert query["REQUEST"] == "GetMap" and query["VERSION"] == "1.3.0"
    assert query["BBOX"] == "1.00,2.00,3.50,4.25"
    assert query["CRS"] == "EPSG:3826"
    assert (query["WIDTH"], query["HEIGHT"], query["FORMAT"]) == ("256", "256", "image/png")


BUILDINGS_STYLE = {
    "fill_opacity": 0.85,
    "stroke": "#7f5539",
    "stroke_width": 0.3,
    "graduated": {
        "field": "樓層數",
        "breaks": [4, 8, 16],
        "colors": ["#fff3b0", "#f9c74f", "#f8961e", "#c1121f"],
    },
}


def _mapserv(map_path: Path, query: str, tmp_path: Path) -> bytes:
    config = tmp_path / "mapserver.conf"
    config.write_text(bench.mapserver_config(map_path))
    env = {
        **os.environ,
        "MAPSERVER_CONFIG_FILE": str(config),
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": query,
    }
    out = subprocess.run(["mapserv"], env=env, capture_output=True, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"image/png" in head, out[:500]
    return body


@needs["mapserv"]
@pytest.mark.parametrize(
    ("style", "colours"),
    [
        (BUILDINGS_STYLE, ["#fff3b0", "#f9c74f", "#f8961e", "#c1121f"]),
        ({}, ["#8ecae6"] * 4),  # the default polygon style
        (
            {"categorized": {"field": "構造", "values": {"RC": "#264653", "磚造": "#e9c46a"}}},
            ["#264653", "#e9c46a", None, None],  # no "other": the rest is not drawn
        ),
    ],
)
def test_mapfile_draws_the_layer_style_classes(style, colours, tmp_path):
    # four 200 m squares in a row, stored as geoportal stores them: EPSG:4326, table features
    to_4326 = Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True)
    centres = [(218_000.0 + 300 * i, 2_666_000.0) for i in range(4)]
    boxes = [shapely.box(x - 100, y - 100, x + 100, y + 100) for x, y in centres]
    frame = gpd.GeoDataFrame(
        {"樓層數": [2, 5, 10, 20], "構造": ["RC", "磚造", "木造", "鋼構"]},
        geometry=[shapely.transform(b, to_4326.transform, interleaved=False) for b in boxes],
        crs="EPSG:4326",
    )
    gpkg = tmp_path / "v.gpkg"
    frame.to_file(gpkg, layer="features", driver="GPKG")
    parsed = parse_style(style, "Polygon")
    bbox = (217_800.0, 2_665_700.0, 219_100.0, 2_667_000.0)
    map_path = tmp_path / "bench.map"
    map_path.write_text(bench.mapfile(gpkg, "buildings", bbox, parsed), encoding="utf-8")
    body = _mapserv(map_path, bench.getmap_path("buildings", bbox).split("?", 1)[1], tmp_path)
    image = Image.open(io.BytesIO(body)).convert("RGBA")
    assert image.size == (256, 256)
    scale = 256 / (bbox[2] - bbox[0])
    for (x, y), colour in zip(centres, colours, strict=True):
        px = image.getpixel((int((x - bbox[0]) * scale), int((bbox[3] - y) * scale)))
        if colour is None:
            assert px[3] == 0
            continue
        want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        # AGG premultiplies alpha: a few units of rounding on a translucent fill
        assert all(abs(a - b) <= 6 for a, b in zip(px[:3], want, strict=True)), (px, colour)
        assert abs(px[3] - parsed.fill_opacity * 255) <= 3
    assert image.getpixel((2, 2))[3] == 0  # outside every building: transparent


def test_mapserver_classes_escape_category_values():
    style = parse_style(
        {"categorized": {"field": "名稱", "values": {'say "hi"': "#000000"}}}, "Polygon"
    )
    assert 'EXPRESSION ("[名稱]" = "say \\"hi\\"")' in bench.mapserver_classes(style)


# ---- the report --------------------------------------------------------------------------------


def test_render_writes_each_figure_in_its_unit():
    machine = {"cpu": "x", "cores": 2}
    results = {
        "a-time": {
            "title": "A timed figure",
            "rows": [{"what": "ours", "median_s": 1.5, "runs_s": [1.4, 1.5, 1.6]}],
            "notes": ["n1"],
            "when": "now",
            "machine": machine,
        },
        "b-load": {
            "title": "A load figure",
            "unit": "req/s",
            "rows": [
                {"what": "ours", "median": 900.0, "runs": [900.0], "p50_ms": 3.1, "p99_ms": 9.9},
                {"what": "ref", "median": 1800.0, "runs": [1800.0], "p50_ms": 1.2, "p99_ms": 4.4},
            ],
            "notes": ["n2"],
            "when": "now",
            "machine": machine,
        },
    }
    text = bench.render(results)
    assert (
        "| what | median (s) | runs (s) |\n|---|---:|---|\n| ours | 1.5 | 1.4, 1.5, 1.6 |" in text
    )
    assert "| what | median (req/s) | runs (req/s) | p50 latency (ms) | p99 latency (ms) |" in text
    assert "| ref | 1800.0 | 1800.0 | 1.2 | 4.4 |" in text


# ---- OGC API: latency percentiles, bbox windows, the stock pygeoapi config, the client ---------


def test_percentile_interpolates_as_numpy_does():
    rng = np.random.default_rng(3)
    values = list(rng.exponential(0.05, 201))
    for q in (0, 1, 50, 95, 99, 100):
        assert bench.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert bench.percentile([4.0], 95) == 4.0
    lat = bench.latency([0.010, 0.020, 0.030, 0.040, 1.0])
    assert (lat.p50_ms, lat.p95_ms) == (
        30.0,
        pytest.approx(np.percentile([10, 20, 30, 40, 1000], 95), abs=0.05),
    )


def test_percentile_refuses_no_values_and_out_of_range_q():
    with pytest.raises(ValueError, match="no values"):
        bench.percentile([], 50)
    with pytest.raises(ValueError, match="outside 0–100"):
        bench.percentile([1.0], 101)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """60,000 points over Taichung: three dense town centres and a sparse countryside."""
    rng = np.random.default_rng(11)
    towns = [(120.68, 24.15, 0.01), (120.72, 24.26, 0.006), (120.58, 24.10, 0.015)]
    lon = [rng.normal(x, s, 18_000) for x, _, s in towns] + [rng.uniform(120.46, 121.45, 6_000)]
    lat = [rng.normal(y, s, 18_000) for _, y, s in towns] + [rng.uniform(23.99, 24.44, 6_000)]
    return np.concatenate(lon), np.concatenate(lat)


def test_bbox_windows_hold_the_target_count_and_are_square_on_the_ground(clustered):
    lon, lat = clustered
    windows = bench.bbox_windows(lon, lat, 40, target=500, tolerance=50, max_half=0.02)
    assert len(windows) == 40
    points = shapely.points(lon, lat)
    geod = Geod(ellps="WGS84")
    for x0, y0, x1, y1 in windows:
        # counted independently: a bbox query intersects, so points on an edge count
        inside = int(shapely.intersects(shapely.box(x0, y0, x1, y1), points).sum())
        assert 450 <= inside <= 550
        assert all(round(v, 6) == v for v in (x0, y0, x1, y1))
        width = geod.inv(x0, (y0 + y1) / 2, x1, (y0 + y1) / 2)[2]
        height = geod.inv(x0, y0, x0, y1)[2]
        assert width == pytest.approx(height, rel=0.01)
        assert height <= 2 * 0.02 * 111_000  # within max_half: a dense area
    assert windows == bench.bbox_windows(lon, lat, 40, target=500, tolerance=50, max_half=0.02)


def test_bbox_windows_say_when_the_points_are_too_sparse(clustered):
    lon, lat = clustered
    with pytest.raises(ValueError, match="windows holding 5000±10"):
        bench.bbox_windows(lon, lat, 5, target=5000, tolerance=10, max_half=0.001)
    with pytest.raises(ValueError, match="of 0 points"):
        bench.bbox_windows(np.array([]), np.array([]), 1)


def test_items_path_is_a_bbox_query_with_the_limit():
    path = bench.items_path("門牌 points", (120.1, 24.2, 120.3, 24.4), limit=1000)
    split = urllib.parse.urlsplit(path)
    assert urllib.parse.unquote(split.path) == "/collections/門牌 points/items"
    query = urllib.parse.parse_qs(split.query)
    assert query == {
        "bbox": ["120.100000,24.200000,120.300000,24.400000"],
        "limit": ["1000"],
        "f": ["json"],
    }


@pytest.fixture(scope="module")
def served_config(ingested) -> tuple[dict, Path]:
    """The generated pygeoapi config of the small corpus (before the stock rewrite)."""
    return bench._ogc_config(ingested, "http://127.0.0.1:8000"), ingested


def test_stock_config_serves_every_layer_from_its_stored_file_with_stock_providers(served_config):
    from pygeoapi.plugin import PLUGINS, load_plugin

    from catalog.db import Catalog
    from catalog.view import CatalogView
    from portal.ogc.config import validate

    config, home = served_config
    before = json.dumps(config, sort_keys=True, default=str)
    stock = bench.stock_config(config, "http://127.0.0.1:5999")
    assert json.dumps(config, sort_keys=True, default=str) == before  # not changed in place
    validate(stock)  # pygeoapi's own schema
    assert stock["server"]["url"] == "http://127.0.0.1:5999"
    assert "portal." not in json.dumps(stock, default=str)  # nothing of ours left to import
    with Catalog.open(home) as catalog:
        published = list(CatalogView(catalog).snapshot().published())
    stored = {layer.id: (version.kind, home / version.path) for layer, version in published}
    expected = {lid for lid, (kind, _) in stored.items() if kind in ("vector", "raster")}
    assert set(stock["resources"]) == expected
    for lid, resource in stock["resources"].items():
        kind, path = stored[lid]
        (provider,) = resource["providers"]
        assert provider["name"] in PLUGINS["provider"]
        assert resource["title"] == config["resources"][lid]["title"]
        if kind == "vector":
            assert provider["name"] == "OGR"
            assert Path(provider["data"]["source"]) == path
            # what the OGR provider opens: the layer by name, its FID column as the id
            info = pyogrio.read_info(path, layer=provider["layer"])
            assert info["fid_column"] == provider["id_field"]
        else:
            assert provider["name"] == "rasterio" and Path(provider["data"]) == path
            coverage = load_plugin("provider", provider)  # stock provider, really opened
            assert coverage.axes


def test_stock_config_keeps_only_the_asked_collections(served_config):
    config, _ = served_config
    stock = bench.stock_config(config, "http://127.0.0.1:5999", keep={"door-plates"})
    assert list(stock["resources"]) == ["door-plates"]


class _Json(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Counter

    def do_GET(self):
        self.seen[self.path] += 1
        body = json.dumps({"numberReturned": len(self.path), "path": self.path}).encode()
        status = 404 if self.path.endswith("/missing") else 200
        self.send_response(status)
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def json_server():
    handler = type("Handler", (_Json,), {"seen": Counter()})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("clients", [1, 4])
def test_request_pass_asks_each_path_once_and_keeps_the_answers_in_order(json_server, clients):
    base, seen = json_server
    paths = [f"/collections/x/items?bbox={i},0,{i + 1},1" for i in range(30)]
    run = bench.request_pass(base + "/ogc", paths, clients)
    assert seen == Counter("/ogc" + p for p in paths)
    assert [d["path"] for d in run.documents()] == ["/ogc" + p for p in paths]
    assert all(b[:2] == b"\x1f\x8b" for b in run.bodies)  # gzip was asked for
    assert len(run.seconds) == 30 and all(s > 0 for s in run.seconds)
    assert run.rps == pytest.approx(30 / run.wall)


def test_request_pass_fails_on_an_error_answer(json_server):
    base, _ = json_server
    with pytest.raises(RuntimeError, match="answered 404"):
        bench.request_pass(base, ["/ok", "/missing"])


def test_render_shows_p95_when_a_figure_has_it():
    record = {
        "title": "Latency",
        "unit": "ms",
        "rows": [
            {
                "what": "ours",
                "median": 5.0,
                "runs": [5.0],
                "p50_ms": 5.0,
                "p95_ms": 7.5,
                "p99_ms": 9.0,
            }
        ],
        "notes": [],
        "when": "now",
        "machine": {"cores": 2},
    }
    text = bench.render({"x": record})
    assert (
        "| median (ms) | runs (ms) | p50 latency (ms) | p95 latency (ms) | p99 latency (ms) |"
        in text
    )
    assert "| ours | 5.0 | 5.0 | 5.0 | 7.5 | 9.0 |" in text


# ---- ckan-search and serve-cold-start ---------------------------------------------------------


def test_package_search_path_carries_the_facets_rows_and_filter():
    path = bench.package_search_path(bench.SearchQuery(q="停車場", fq="organization:x"))
    url = urllib.parse.urlsplit(path)
    assert url.path == "/api/3/action/package_search"
    params = urllib.parse.parse_qs(url.query)
    assert params["q"] == ["停車場"] and params["fq"] == ["organization:x"]
    assert params["rows"] == ["20"]
    assert json.loads(params["facet.field"][0]) == [
        "organization",
        "groups",
        "tags",
        "res_format",
        "license_id",
    ]
    assert "fq" not in urllib.parse.parse_qs(
        urllib.parse.urlsplit(bench.package_search_path(bench.SearchQuery(q="x"))).query
    )


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def test_package_search_path_is_answered_by_the_real_api(ogc):
    base, _ = ogc
    everything = _get(base + bench.package_search_path(bench.SearchQuery()))["result"]
    names = _get(base + "/api/3/action/package_list")["result"]
    assert everything["count"] == len(names)
    assert len(everything["results"]) == min(20, len(names))
    assert set(everything["facets"]) == set(bench.SEARCH_FACETS)
    org = everything["results"][0]["organization"]["name"]
    shown = _get(base + f"/api/3/action/organization_show?id={org}&include_dataset_count=true")
    query = bench.SearchQuery(fq=f"organization:{org}")
    found = _get(base + bench.package_search_path(query))["result"]
    assert found["count"] == shown["result"]["package_count"] > 0


def test_like_terms_split_words_keep_phrases_and_escape_like_wildcards():
    assert bench.like_terms("") == []
    assert bench.like_terms("  air  quality ") == ["%air%", "%quality%"]
    assert bench.like_terms('"交通 事故" 臺中') == ["%交通 事故%", "%臺中%"]
    assert bench.like_terms("100%_\\") == ["%100\\%\\_\\\\%"]


@pytest.fixture
def pg_reference():
    try:
        ref = bench.PgReference()
    except bench.FigureSkipped as exc:
        pytest.skip(str(exc))
    yield ref
    ref.close()


def test_pg_reference_escapes_like_wildcards(pg_reference):
    def ref(name, title):
        return bench.RefDataset(name, title, "", "org", "", "other-open", None, (), (), ())

    pg_reference.load([ref("a", "100%_done"), ref("b", "100xxdone"), ref("c", "100%")])
    with closing(pg_reference.connect()) as conn:
        count, facets = pg_reference.search(conn, bench.SearchQuery(q="100%_"))
        assert count == 1
        assert facets["organization"] == {"org": 1}
        assert pg_reference.title_count(conn, "100%") == 2


@pytest.fixture
def portal_copy(ingested, tmp_path):
    from portal.ckan.store import sync

    home = tmp_path / "home"
    bench._copy_home(ingested, home)
    sync(home)
    return home


def test_copy_home_links_the_stored_files_and_copies_the_catalog(ingested, portal_copy):
    from catalog.db import Catalog

    with Catalog.open(ingested) as a, Catalog.open(portal_copy) as b:
        assert [layer.id for layer in a.layers()] == [layer.id for layer in b.layers()]
    stored = [p for p in (ingested / "layers").rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        assert os.path.samefile(path, portal_copy / path.relative_to(ingested))
    assert not os.path.samefile(ingested / "catalog.sqlite", portal_copy / "catalog.sqlite")


def _expected_search(datasets, organizations, words, org=None):
    """Count and facets computed here from the portal's records, not from the reference."""
    titles = {o.name: o.title for o in organizations.values()}
    matched = []
    for ds in datasets:
        if ds.state != "active" or ds.private or (org and ds.owner_org != org):
            continue
        text = " ".join(
            [ds.title, ds.title_en, ds.notes, *ds.tags, titles.get(ds.owner_org, "")]
        ).lower()
        if all(w.lower() in text for w in words):
            matched.append(ds)
    counts = {
        "organization": Counter(d.owner_org for d in matched),
        "groups": Counter(g for d in matched for g in set(d.groups)),
        "tags": Counter(t for d in matched for t in set(d.tags)),
        "res_format": Counter(f for d in matched for f in {r.format for r in d.resources} if f),
        "license_id": Counter(d.license_id for d in matched),
    }
    facets = {
        name: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:50])
        for name, c in counts.items()
    }
    return len(matched), facets


def test_pg_reference_counts_matches_and_facets_of_the_portal(portal_copy, pg_reference):
    datasets, organizations, _ = bench._portal(portal_copy)
    refs = bench.ref_datasets(datasets, organizations)
    assert len(refs) == sum(d.state == "active" and not d.private for d in datasets) > 0
    pg_reference.load(refs)
    queries = bench.search_queries(refs, orgs=2)
    sizes = Counter(d.owner_org for d in datasets if d.state == "active" and not d.private)
    largest = sorted(sizes, key=lambda o: (-sizes[o], o))[:2]
    assert [q.fq for q in queries[-2:]] == [f"organization:{o}" for o in largest]
    with closing(pg_reference.connect()) as conn:
        for query in [*queries, bench.SearchQuery(q="臺中市 道路")]:
            words = [w.strip("%") for w in bench.like_terms(query.q)]
            org = query.fq.partition(":")[2] or None
            assert pg_reference.search(conn, query) == _expected_search(
                datasets, organizations, words, org
            ), query


def test_first_answer_waits_for_a_server_that_starts_late(tmp_path):
    (tmp_path / "ready.txt").write_text("ok")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import http.server, time; time.sleep(0.5); "
        f"http.server.HTTPServer(('127.0.0.1', {port}), "
        "http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/ready.txt"
        seconds = bench.first_answer(url, proc, time.perf_counter(), wait=60)
        assert seconds > 0
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"ok"
    finally:
        proc.kill()
        proc.wait()


def test_first_answer_fails_when_the_server_exits_or_never_answers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with pytest.raises(RuntimeError, match="exited \\(3\\)"):
        bench.first_answer(url, gone, time.perf_counter())
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(RuntimeError, match="did not answer 200 within 1"):
            bench.first_answer(url, silent, time.perf_counter(), wait=1)
    finally:
        silent.kill()
        silent.wait()
