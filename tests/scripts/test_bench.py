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
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import mercantile
import pytest
import shapely
from PIL import Image
from pmtiles.reader import MmapSource, all_tiles
from pyproj import Transformer

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
