"""Benchmarks: each figure is measured beside its reference in the same run on this machine.

Results are kept in docs/benchmarks.json (one record per figure, replaced when the figure is
run again) and rendered into docs/benchmarks.md with the machine and versions they ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import hashlib
import importlib.util
import json
import math
import mmap
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from catalog.model import LayerVersion
    from catalog.style import Style

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench-work"
CACHE = WORK / "cache"  # kept across runs: the city corpus and its ingested home
SAMPLES = WORK / "samples"  # kept across runs: sample outputs to look at (never committed)
RESULTS = ROOT / "docs" / "benchmarks.json"
REPORT = ROOT / "docs" / "benchmarks.md"
GEOPORTAL = [sys.executable, "-m", "geoportal.cli"]

FIGURES: dict[str, Callable[[argparse.Namespace], dict]] = {}


def figure(fn: Callable[[argparse.Namespace], dict]) -> Callable[[argparse.Namespace], dict]:
    """Register a benchmark figure under its function name (underscores → dashes)."""
    FIGURES[fn.__name__.replace("_", "-")] = fn
    return fn


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


@figure
def sample_city(args: argparse.Namespace) -> dict:
    """`geoportal sample --scale city`: wall time and size, all cores vs one worker process."""
    out = WORK / "city"
    runs: dict[str, list[float]] = {"all cores": [], "--jobs 1 (reference)": []}
    summary: dict = {}
    for _ in range(args.repeat):
        for label, jobs in (("all cores", "0"), ("--jobs 1 (reference)", "1")):
            seconds, stdout = _timed(
                [
                    *GEOPORTAL,
                    "sample",
                    "--scale",
                    "city",
                    "--out",
                    str(out),
                    "--jobs",
                    jobs,
                    "--json",
                ]
            )
            runs[label].append(seconds)
            summary = json.loads(stdout)
    rows = [
        {
            "what": label,
            "median_s": round(statistics.median(v), 2),
            "runs_s": [round(x, 2) for x in v],
        }
        for label, v in runs.items()
    ]
    ratio = rows[1]["median_s"] / rows[0]["median_s"]
    return {
        "title": "Sample corpus, city scale (`geoportal sample --scale city`)",
        "rows": rows,
        "notes": [
            f"{summary['entries']} manifest entries, {summary['layers']} catalog layers, "
            f"{summary['files']} files, {summary['bytes'] / 1e6:.0f} MB on disk.",
            f"All cores vs one worker: {ratio:.2f}× faster. Median of {args.repeat} runs each "
            "(wall time of the whole command, process start included).",
        ],
    }


def _digest(paths: list[Path], *extra: str) -> str:
    """A short content hash of files (in the given order) and strings."""
    h = hashlib.sha256()
    for text in extra:
        h.update(text.encode() + b"\0")
    for path in paths:
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _city_corpus() -> Path:
    """The city corpus, generated once and kept in the cache until the generator changes."""
    generator = sorted((ROOT / "geoportal" / "sample").rglob("*.py"))
    out = CACHE / f"city-{_digest(generator, 'city', '20231')}"
    if not (out / "expected.json").exists():
        _clear_cache("city-")
        subprocess.run(
            [*GEOPORTAL, "sample", "--scale", "city", "--out", str(out), "--json"],
            check=True,
            capture_output=True,
        )
    return out


def _city_home() -> Path:
    """A data home with the city corpus ingested, kept in the cache keyed by the corpus hash.

    Figures that need the city's layers share it; ingest (~70 s) runs once per corpus.
    """
    corpus = _city_corpus()
    home = CACHE / f"home-{_digest([corpus / 'layers.yaml', corpus / 'expected.json'])}"
    done = home / ".bench-ingested"
    if not done.exists():
        _clear_cache("home-")
        print("   ingesting the city corpus into a cached bench home …", file=sys.stderr)
        _timed_ok([*GEOPORTAL, "ingest", str(corpus / "layers.yaml"), "--home", str(home)])
        done.write_text(corpus.name)
    return home


def _clear_cache(prefix: str) -> None:
    """Remove cached entries starting with ``prefix`` (a stale corpus or home)."""
    for old in CACHE.glob(f"{prefix}*"):
        shutil.rmtree(old, ignore_errors=True)


CSV_HEADS = (
    ("經度", "緯度"),
    ("lon", "lat"),
    ("Longitude", "Latitude"),
    ("X坐標", "Y坐標"),
    ("TWD97X", "TWD97Y"),
    ("橫座標", "縱座標"),
    ("橫坐標67", "縱坐標67"),
)


def _ogr2ogr_commands(corpus: Path, out: Path) -> list[list[str]]:
    """Plain GDAL conversions of every source to EPSG:4326 GeoPackage (rasters to COG).

    The reference is handed what it cannot find out itself: the CRS of CSV coordinates and the
    coordinate column names (from expected.json), and /vsizip/ paths for zips.
    """
    import yaml

    truth = json.loads((corpus / "expected.json").read_text(encoding="utf-8"))["layers"]
    entries = yaml.safe_load((corpus / "layers.yaml").read_text(encoding="utf-8"))["layers"]
    cmds = []
    for e in entries:
        src = corpus / e["source"]
        t = next(v for v in truth.values() if v["entry"] == e["id"])
        dst = str(out / f"{e['id']}.gpkg")
        if src.suffix == ".tif":
            cmds.append(
                ["gdal_translate", "-q", "-of", "COG", str(src), str(out / f"{e['id']}.tif")]
            )
            continue
        path = f"/vsizip/{src}" if src.suffix == ".zip" else str(src)
        cmd = ["ogr2ogr", "-f", "GPKG", "-t_srs", "EPSG:4326", "-nlt", "PROMOTE_TO_MULTI", dst]
        if src.suffix in (".csv", ".txt"):
            head = src.read_bytes()[:2000].decode("utf-8", "ignore")
            xy = next((p for p in CSV_HEADS if p[0] in head and p[1] in head), ("x", "y"))
            cmd += [
                "-s_srs",
                t.get("crs") or "EPSG:4326",
                "-oo",
                f"X_POSSIBLE_NAMES={xy[0]}",
                "-oo",
                f"Y_POSSIBLE_NAMES={xy[1]}",
                "-oo",
                "AUTODETECT_TYPE=YES",
            ]
        cmd.append(path)
        if e.get("layer"):
            cmd.append(e["layer"])
        cmds.append(cmd)
    return cmds


def _run_all(cmds: list[list[str]], jobs: int) -> tuple[float, int]:
    from concurrent.futures import ThreadPoolExecutor

    def one(cmd: list[str]) -> int:
        return subprocess.run(cmd, capture_output=True).returncode

    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        codes = list(pool.map(one, cmds))
    return time.perf_counter() - start, sum(c != 0 for c in codes)


@figure
def ingest_city(args: argparse.Namespace) -> dict:
    """`geoportal ingest` of the city corpus vs plain ogr2ogr/gdal_translate of the same inputs."""
    if not shutil.which("ogr2ogr"):
        raise SystemExit("ingest-city needs ogr2ogr: apt-get install gdal-bin")
    corpus = _city_corpus()
    jobs = os.cpu_count() or 1
    runs: dict[str, list[float]] = {
        "geoportal ingest (fresh home)": [],
        "geoportal ingest (re-run, unchanged)": [],
        f"ogr2ogr + gdal_translate, {jobs} at a time (reference)": [],
    }
    failures = 0
    summary: dict = {}
    for i in range(args.repeat):
        home = WORK / f"home-{i}"
        seconds, stdout = _timed_ok(
            [*GEOPORTAL, "ingest", str(corpus / "layers.yaml"), "--home", str(home), "--json"]
        )
        runs["geoportal ingest (fresh home)"].append(seconds)
        summary = json.loads(stdout)
        seconds, _ = _timed_ok(
            [*GEOPORTAL, "ingest", str(corpus / "layers.yaml"), "--home", str(home), "--json"]
        )
        runs["geoportal ingest (re-run, unchanged)"].append(seconds)
        shutil.rmtree(home, ignore_errors=True)
        out = WORK / f"ogr-{i}"
        out.mkdir()
        seconds, failures = _run_all(_ogr2ogr_commands(corpus, out), jobs)
        runs[list(runs)[2]].append(seconds)
        shutil.rmtree(out, ignore_errors=True)
    rows = [
        {"what": k, "median_s": round(statistics.median(v), 1), "runs_s": [round(x, 1) for x in v]}
        for k, v in runs.items()
    ]
    statuses: dict[str, int] = {}
    for layer in summary["layers"]:
        statuses[layer["status"]] = statuses.get(layer["status"], 0) + 1
    ratio = rows[0]["median_s"] / rows[2]["median_s"]
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "title": "Ingest of the city corpus (`geoportal ingest`) vs plain ogr2ogr",
        "rows": rows,
        "notes": [
            f"geoportal: {', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))} "
            "(the refused ones are refused on purpose: a Git-LFS pointer).",
            f"geoportal / ogr2ogr = {ratio:.2f}. The reference ({gdal}) converts each source "
            "to an EPSG:4326 GeoPackage and each raster to a COG, told the CSV coordinate "
            f"columns and CRS; {failures} of its conversions failed outright (sources with no "
            "declared CRS such as a shapefile without .prj or a TopoJSON, a zip whose "
            "shapefile sits in nested folders, a zip inside a zip, pipe- and tab-delimited "
            "text), and it decides nothing: Big5 and UTF-8 DBFs without .cpg come out "
            "garbled, TWD67 goes through PROJ's ballpark operation (~830 m off), no "
            "geometry is repaired, nothing is versioned or catalogued.",
        ],
    }


def _timed_ok(cmd: list[str]) -> tuple[float, str]:
    """Like _timed, but an exit status of 1 (some layers refused) is a result, not an error."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[3]} failed: {out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout


# ---- Servers under load (tile-serving, wms-getmap): wrk against ours and the reference -------

WRK_THREADS = 2
WRK_CONNECTIONS = 64
WRK_SECONDS = 20
WARMUP_SECONDS = 3
WRK_TIMEOUT = 60  # a slow answer is latency, not an error
SERVER_WORKERS = 2  # GEOPORTAL_WORKERS, nginx worker_processes, mapserv FastCGI processes
WRK_MARK = "WRK-RESULT"
DEBIAN_PACKAGES = {"mapserv": "cgi-mapserver", "ogr2ogr": "gdal-bin"}


class FigureSkipped(Exception):
    """A figure cannot run on this machine (a reference tool or a feature is missing)."""


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        packages = " ".join(DEBIAN_PACKAGES.get(t, t) for t in missing)
        raise FigureSkipped(
            f"needs {', '.join(missing)}: apt-get install {packages} "
            "(./scripts/bench installs them when run as root)"
        )


@dataclass(frozen=True)
class Load:
    """One wrk run: how many requests were answered and how fast."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # responses other than 2xx/3xx, plus socket errors and timeouts

    @property
    def rps(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds


def wrk_script(paths: list[str]) -> str:
    """A wrk Lua script cycling through ``paths``, each wrk thread from its own offset.

    Its ``done`` prints one ``WRK-RESULT {json}`` line (request count, duration, latency
    percentiles in µs, error counts): nothing depends on wrk's human-readable report.

    Raises:
        ValueError: no paths.
    """
    if not paths:
        raise ValueError("wrk_script needs at least one request path")
    items = ",\n".join(f"  {json.dumps(p)}" for p in paths)
    return f"""-- generated by scripts/bench.py: cycle through a fixed list of request paths
local paths = {{
{items}
}}
local threads = 0
function setup(thread)
  thread:set("first", math.floor(threads * #paths / {WRK_THREADS}))
  threads = threads + 1
end
local i = 0
function init(args)
  i = first or 0
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARK} {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"status": %d, "socket": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def parse_wrk(stdout: str) -> Load:
    """The Load a wrk_script's ``done`` reported.

    Raises:
        ValueError: the output has no such line (wrk stopped before the end).
    """
    for line in stdout.splitlines():
        if line.startswith(WRK_MARK):
            r = json.loads(line[len(WRK_MARK) :])
            return Load(
                requests=r["requests"],
                seconds=r["duration_us"] / 1e6,
                p50_ms=r["p50_us"] / 1000,
                p99_ms=r["p99_us"] / 1000,
                errors=r["status"] + r["socket"],
            )
    raise ValueError(f"wrk printed no {WRK_MARK} line:\n{stdout[-2000:]}")


def nginx_conf(work: Path, port: int, locations: str) -> str:
    """An nginx.conf for a foreground nginx on 127.0.0.1:``port``.

    Args:
        work: folder of the pid file and the temporary files (errors go to stderr).
        port: port to listen on.
        locations: the ``location`` blocks of its one server.

    Returns:
        The configuration text.
    """
    temp = "\n".join(f"  {kind}_temp_path {work / 'temp' / kind};" for kind in NGINX_TEMP)
    # started by root, workers would run as nobody, who may not read the files: stay root
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# generated by scripts/bench.py
daemon off;
{user}worker_processes {SERVER_WORKERS};
pid {work / "nginx.pid"};
error_log stderr warn;
events {{
  worker_connections 1024;
}}
http {{
  access_log off;
{temp}
  types {{
    application/vnd.mapbox-vector-tile mvt;
    image/png png;
  }}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


NGINX_TEMP = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def static_tiles_location(root: Path) -> str:
    """The nginx location serving ``root``/tiles/… files: stored gzip MVT, as geoportal does."""
    return f"""    location /tiles/ {{
      root {root};
      add_header Content-Encoding gzip;
      add_header Cache-Control "public, max-age=3600";
    }}"""


def fastcgi_location(path: str, upstream: str, config: Path) -> str:
    """The nginx location passing ``path`` to the FastCGI server (mapserv) at ``upstream``."""
    params = {
        "QUERY_STRING": "$query_string",
        "REQUEST_METHOD": "$request_method",
        "CONTENT_TYPE": "$content_type",
        "CONTENT_LENGTH": "$content_length",
        "SCRIPT_NAME": "$uri",
        "REQUEST_URI": "$request_uri",
        "SERVER_PROTOCOL": "$server_protocol",
        "SERVER_NAME": "$host",
        "SERVER_PORT": "$server_port",
        "REMOTE_ADDR": "$remote_addr",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "MAPSERVER_CONFIG_FILE": str(config),
    }
    lines = "\n".join(f"      fastcgi_param {k} {v};" for k, v in params.items())
    return f"""    location = {path} {{
      fastcgi_pass {upstream};
{lines}
    }}"""


def mapfile(gpkg: Path, layer: str, extent: Bbox, style: Style) -> str:
    """A MapServer mapfile: one WMS polygon layer drawn from a stored GeoPackage.

    Args:
        gpkg: the stored version (table "features", EPSG:4326).
        layer: the WMS layer name.
        extent: the map's extent in EPSG:3826.
        style: the layer's geoportal style, drawn as Mapnik draws it: its classes, fill
            opacity, outline, scale range; AGG antialiased, polygon gamma 0.7.

    Returns:
        The mapfile text (UTF-8: attribute names may be Chinese).
    """
    x0, y0, x1, y1 = extent
    scales = "".join(
        f"\n    {key} {value:g}"
        for key, value in (("MINSCALEDENOM", style.min_scale), ("MAXSCALEDENOM", style.max_scale))
        if value
    )
    opacity = (
        f"\n    COMPOSITE\n      OPACITY {round(style.opacity * 100)}\n    END"
        if style.opacity < 1
        else ""
    )
    return f"""# generated by scripts/bench.py
MAP
  NAME "bench"
  EXTENT {x0} {y0} {x1} {y1}
  SIZE {GETMAP_SIZE} {GETMAP_SIZE}
  UNITS METERS
  IMAGETYPE "png"
  PROJECTION
    "init=epsg:3826"
  END
  OUTPUTFORMAT
    NAME "png"
    DRIVER AGG/PNG
    MIMETYPE "image/png"
    IMAGEMODE RGBA
    EXTENSION "png"
    TRANSPARENT ON
    FORMATOPTION "GAMMA=0.7"
  END
  WEB
    METADATA
      "wms_title" "bench"
      "wms_srs" "EPSG:3826 EPSG:4326 EPSG:3857"
      "wms_enable_request" "*"
    END
  END
  LAYER
    NAME "{layer}"
    TYPE POLYGON
    STATUS ON
    CONNECTIONTYPE OGR
    CONNECTION "{gpkg}"
    DATA "features"{scales}{opacity}
    PROJECTION
      "init=epsg:4326"
    END
    METADATA
      "wms_title" "{layer}"
    END
{mapserver_classes(style)}
  END
END
"""


def mapserver_classes(style: Style) -> str:
    """The MapServer CLASS blocks of a polygon style: one per categorized/graduated class."""
    outline = ""
    if style.stroke and style.stroke_width > 0:
        outline = (
            "\n      STYLE\n"
            f'        OUTLINECOLOR "{style.stroke}"\n'
            f"        WIDTH {style.stroke_width:g}\n"
            "        ANTIALIAS TRUE\n"
            "      END"
        )
    blocks = []
    for expression, colour in _classes(style):
        test = f"\n      EXPRESSION {expression}" if expression else ""
        blocks.append(
            f"    CLASS{test}\n"
            "      STYLE\n"
            f'        COLOR "{colour or style.fill or DEFAULT_FILL}"\n'
            f"        OPACITY {round(style.fill_opacity * 100)}\n"
            f"      END{outline}\n"
            "    END"
        )
    return "\n".join(blocks)


DEFAULT_FILL = "#8ecae6"  # geoportal's polygon fill when a style names none


def _classes(style: Style) -> list[tuple[str, str | None]]:
    """(MapServer expression or "", colour or None) per class, in the renderer's order."""
    if style.categorized:
        c = style.categorized
        out = [(f'("[{c.field}]" = "{_ms_string(v)}")', colour) for v, colour in c.values.items()]
        return [*out, ("", c.other)] if c.other else out
    if style.graduated:
        g = style.graduated
        edges = [None, *g.breaks, None]
        out = []
        for i, colour in enumerate(g.colors):
            parts = []
            if edges[i] is not None:
                parts.append(f"([{g.field}] >= {edges[i]!r})")
            if edges[i + 1] is not None:
                parts.append(f"([{g.field}] < {edges[i + 1]!r})")
            out.append((f"({' AND '.join(parts)})" if parts else "", colour))
        return out
    return [("", None)]


def _ms_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def mapserver_config(map_path: Path) -> str:
    """A MapServer 8 config file: ``map_path`` is the one mapfile, no other can be asked for."""
    return f"""# generated by scripts/bench.py
CONFIG
  ENV
    MS_MAPFILE "{map_path}"
    MS_MAP_NO_PATH "1"
  END
END
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _running(
    name: str, cmd: list[str], ready: str, log: Path, env: dict | None = None, wait: float = 60
):
    """Run a server in its own process group for the block; wait until ``ready`` answers 200.

    Raises:
        RuntimeError: the server exited, or did not answer within ``wait`` seconds.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + wait
        while not _answers(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} did not start ({' '.join(cmd)}):\n{tail}")
            time.sleep(0.2)
        yield
    finally:
        _stop_group(proc)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop a server this script started, with the workers it forked (its process group)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def _geoportal_server(home: Path, work: Path) -> Iterator[str]:
    """`geoportal serve` over ``home`` with GEOPORTAL_WORKERS workers; yields its base URL.

    Log level warning: no access log line per request (nginx runs with access_log off too).
    """
    port = _free_port()
    cmd, env = _geoportal_command(home, port)
    base = f"http://127.0.0.1:{port}"
    with _running("geoportal serve", cmd, f"{base}/healthz", work / "geoportal.log", env):
        yield base


@contextmanager
def _nginx(work: Path, locations: str, ready_path: str) -> Iterator[str]:
    """A foreground nginx with its own generated nginx.conf; yields its base URL."""
    port = _free_port()
    for kind in NGINX_TEMP:
        (work / "temp" / kind).mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(nginx_conf(work, port, locations))
    cmd = ["nginx", "-p", str(work), "-e", "stderr", "-c", str(conf)]
    base = f"http://127.0.0.1:{port}"
    with _running("nginx", cmd, base + ready_path, work / "nginx.out"):
        yield base


@contextmanager
def _fastcgi(cmd: list[str], processes: int, env: dict, log: Path) -> Iterator[str]:
    """``processes`` FastCGI processes sharing one listening socket, as spawn-fcgi starts them.

    The socket is their standard input (the FastCGI convention); the kernel hands each
    connection to one idle process. Yields ``host:port``; stops the processes after the block.
    """
    with socket.socket() as sock, log.open("wb") as out:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        host, port = sock.getsockname()
        procs = [
            subprocess.Popen(
                cmd, stdin=sock.fileno(), stdout=out, stderr=out, env=env, start_new_session=True
            )
            for _ in range(processes)
        ]
        try:
            yield f"{host}:{port}"
        finally:
            for proc in procs:
                _stop_group(proc)


def _wrk(base: str, script: Path, seconds: int) -> Load:
    cmd = [
        "wrk",
        f"--threads={WRK_THREADS}",
        f"--connections={WRK_CONNECTIONS}",
        f"--duration={seconds}s",
        f"--timeout={WRK_TIMEOUT}s",
        f"--script={script}",
        base,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr[-2000:]}")
    return parse_wrk(done.stdout)


def _compare_load(servers: dict[str, str], script: Path, repeat: int) -> dict[str, list[Load]]:
    """Run wrk against each server in turn, ``repeat`` rounds, after a warm-up of each."""
    for base in servers.values():
        _wrk(base, script, WARMUP_SECONDS)
    loads: dict[str, list[Load]] = {name: [] for name in servers}
    for _ in range(repeat):
        for name, base in servers.items():
            load = _wrk(base, script, WRK_SECONDS)
            print(
                f"   {name}: {load.rps:.0f} req/s, p50 {load.p50_ms:.1f} ms, "
                f"p99 {load.p99_ms:.1f} ms, {load.errors} errors",
                file=sys.stderr,
            )
            loads[name].append(load)
    return loads


def _load_rows(loads: dict[str, list[Load]]) -> list[dict]:
    """One row per server: median req/s, each run's, and the latencies of the median run."""
    rows = []
    for name, runs in loads.items():
        middle = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        rows.append(
            {
                "what": name,
                "median": round(statistics.median(r.rps for r in runs), 1),
                "runs": [round(r.rps, 1) for r in runs],
                "p50_ms": round(middle.p50_ms, 1),
                "p99_ms": round(middle.p99_ms, 1),
                "errors": sum(r.errors for r in runs),
            }
        )
    return rows


def _versions(*cmds: list[str]) -> str:
    """The first line each command prints (stdout or stderr), joined."""
    out = []
    for cmd in cmds:
        done = subprocess.run(cmd, capture_output=True, text=True)
        text = (done.stdout.strip() or done.stderr.strip()).splitlines()
        first = text[0] if text else cmd[0]
        # mapserv lists its build options, wrk its copyright: keep the version
        out.append(first.split(" OUTPUT=")[0].split(" Copyright")[0])
    return "; ".join(out)


def _load_notes(rows: list[dict], what: str) -> list[str]:
    ours, ref = rows[0], rows[1]
    return [
        f"geoportal / reference = {ours['median'] / ref['median']:.2f} in req/s; p50 latency "
        f"{ours['p50_ms']} ms vs {ref['p50_ms']} ms, p99 {ours['p99_ms']} ms vs "
        f"{ref['p99_ms']} ms (latencies of the median run).",
        f"wrk: {WRK_THREADS} threads, {WRK_CONNECTIONS} connections, {WRK_SECONDS} s per run, "
        f"{len(ours['runs'])} runs per server alternating after a {WARMUP_SECONDS} s warm-up "
        f"of each, keep-alive, {WRK_TIMEOUT} s timeout; both servers with {SERVER_WORKERS} "
        f"worker processes, no access log, on the same {os.cpu_count()} cores as wrk. {what} "
        f"Non-2xx answers, socket errors and timeouts over all runs: {ours['errors']} for "
        f"geoportal, {ref['errors']} for the reference.",
    ]


# ---- Vector tiles: build (tiles-city) and serving (tile-serving) -----------------------------

TIPPECANOE_SETTINGS = (
    "-zg",
    "--drop-densest-as-needed",
    "--extend-zooms-if-still-dropping",
    "--maximum-tile-bytes=500000",
)
SERVED_ZOOMS = range(10, 16)  # street level: the city's zooms 10–15 are ~2,300 tiles
Tile = tuple[int, int, int]


def _largest_vector_layers(corpus: Path, n: int) -> list[tuple[str, int, str]]:
    """(layer id, features, geometry type) of the corpus's ``n`` largest vector layers."""
    truth = json.loads((corpus / "expected.json").read_text(encoding="utf-8"))["layers"]
    vectors = [
        (lid, t["feature_count"], t["geometry_type"])
        for lid, t in truth.items()
        if t.get("kind") == "vector" and t.get("outcome") == "ok"
    ]
    return sorted(vectors, key=lambda v: -v[1])[:n]


def _current(home: Path, layer_id: str) -> LayerVersion:
    from catalog.db import Catalog

    with Catalog.open(home) as catalog:
        version = catalog.current(layer_id)
    if version is None:
        raise RuntimeError(f"layer {layer_id!r} has no published version in {home}")
    return version


def _archive(home: Path, layer_id: str) -> Path:
    from tiles.build import archive_path

    return archive_path(home, layer_id, _current(home, layer_id).version)


def _build_ours(home: Path, layer_id: str) -> float:
    """Wall time of `geoportal tiles build ID --jobs 1` from scratch (the archive removed).

    A layer brings the raster tilesets it is in: if one of those was built too (the first
    build in this home), the build is timed again, with only the layer's archive to make.
    """
    cmd = [*GEOPORTAL, "tiles", "build", layer_id, "--jobs", "1", "--home", str(home), "--json"]
    for _ in range(2):
        _archive(home, layer_id).unlink(missing_ok=True)
        seconds, stdout = _timed(cmd)
        others = [
            r["id"]
            for r in json.loads(stdout)["layers"]
            if r["id"] != layer_id and r["status"] == "built"
        ]
        if not others:
            break
        print(f"   (also built {', '.join(others)}: timing {layer_id} again)", file=sys.stderr)
    return seconds


def _build_reference(source: Path, out: Path, layer_id: str) -> float:
    """Wall time of plain tippecanoe, same settings, reading the GeoJSON sequence ``source``."""
    from tiles.build import tippecanoe_binary

    out.unlink(missing_ok=True)
    cmd = [tippecanoe_binary(), "--output", str(out), "--force", "--quiet"]
    seconds, _ = _timed([*cmd, "--layer", layer_id, *TIPPECANOE_SETTINGS, str(source)])
    return seconds


def _geojson_seq(home: Path, layer_id: str, out: Path) -> Path:
    """The stored GeoPackage of a layer's current version as a GeoJSON sequence."""
    import pyogrio

    target = out / f"{layer_id}.geojsons"
    meta, table = pyogrio.read_arrow(home / _current(home, layer_id).path, layer="features")
    pyogrio.write_arrow(
        table,
        target,
        driver="GeoJSONSeq",
        geometry_name=meta["geometry_name"] or "geometry",
        geometry_type=meta["geometry_type"],
        crs="EPSG:4326",
    )
    return target


def archive_entries(path: Path) -> dict[Tile, tuple[int, int]]:
    """Every tile a PMTiles archive addresses: (z, x, y) → (absolute offset, length)."""
    from pmtiles.tile import deserialize_directory, deserialize_header, tileid_to_zxy

    out: dict[Tile, tuple[int, int]] = {}
    with path.open("rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        h = deserialize_header(data[:127])
        pending = [(h["root_offset"], h["root_length"])]
        while pending:
            offset, length = pending.pop()
            for e in deserialize_directory(data[offset : offset + length]):
                if e.run_length == 0:
                    pending.append((h["leaf_directory_offset"] + e.offset, e.length))
                for i in range(e.run_length):
                    out[tileid_to_zxy(e.tile_id + i)] = (h["tile_data_offset"] + e.offset, e.length)
        data.close()
    return out


def dense_tiles(sizes: dict[Tile, int], zooms: range = SERVED_ZOOMS, block: int = 3) -> list[Tile]:
    """The tiles of ``zooms`` under the densest ``block``×``block`` tiles of zoom zooms[0].

    Densest: the zooms[0] tile whose tiles at the deepest zoom present hold the most bytes;
    the block around it is taken whole, every zoom, as a client zooming in there asks for it.

    Args:
        sizes: the existing tiles, (z, x, y) → bytes.
        zooms: the zoom levels to take.
        block: the side of the square of zooms[0] tiles, centred on the densest.

    Returns:
        The tiles, ordered by zoom, x, y (empty if none is in ``zooms``).
    """
    top = zooms[0]
    deep = max((z for z, _, _ in sizes if z in zooms), default=top)
    weight: dict[tuple[int, int], int] = {}
    for (z, x, y), size in sizes.items():
        if z == deep:
            key = (x >> (deep - top), y >> (deep - top))
            weight[key] = weight.get(key, 0) + size
    if not weight:
        return []
    cx, cy = max(weight, key=lambda k: (weight[k], k))
    half = block // 2
    return sorted(
        (z, x, y)
        for z, x, y in sizes
        if z in zooms and abs((x >> (z - top)) - cx) <= half and abs((y >> (z - top)) - cy) <= half
    )


@figure
def tiles_city(args: argparse.Namespace) -> dict:
    """Vector-tile build of the city's 3 largest layers vs plain tippecanoe (same settings)."""
    from tiles.build import tippecanoe_binary

    home = _city_home()
    runs = args.explicit_repeat or 1
    out = WORK / "tiles-city"
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    notes: list[str] = []
    for layer_id, count, geometry in _largest_vector_layers(_city_corpus(), 3):
        source = _geojson_seq(home, layer_id, out)
        theirs = out / f"{layer_id}.pmtiles"
        ours: list[float] = []
        ref: list[float] = []
        for _ in range(runs):
            ours.append(_build_ours(home, layer_id))
            ref.append(_build_reference(source, theirs, layer_id))
            print(
                f"   {layer_id}: ours {ours[-1]:.1f} s, tippecanoe {ref[-1]:.1f} s", file=sys.stderr
            )
        label = f"{layer_id} ({count:,} {geometry.lower()}s)"
        rows += [
            _time_row(f"{label}: `geoportal tiles build --jobs 1`", ours),
            _time_row(f"{label}: plain tippecanoe (reference)", ref),
        ]
        ratio = statistics.median(ours) / statistics.median(ref)
        notes.append(
            f"{layer_id}: geoportal / tippecanoe = {ratio:.2f}; archives "
            f"{_describe(_archive(home, layer_id))} vs {_describe(theirs)}."
        )
        theirs.unlink(missing_ok=True)
        source.unlink(missing_ok=True)
    version = _versions([tippecanoe_binary(), "--version"])
    notes.append(
        f"Both are {version} with `{' '.join(TIPPECANOE_SETTINGS)}`, one layer at a time. "
        "geoportal's time is the whole command: process start, catalog lookup, the stored "
        "GeoPackage written out as FlatGeobuf, tippecanoe, the archive moved into place. The "
        "reference reads the same features as a GeoJSON sequence exported from the stored "
        f"GeoPackage beforehand (untimed). {runs} run(s) each (`--repeat N` for more)."
    )
    return {
        "title": "Vector-tile build of the city's largest layers vs plain tippecanoe",
        "rows": rows,
        "notes": notes,
    }


def _time_row(what: str, seconds: list[float]) -> dict:
    return {
        "what": what,
        "median_s": round(statistics.median(seconds), 1),
        "runs_s": [round(s, 1) for s in seconds],
    }


def _describe(archive: Path) -> str:
    """Size, tile count and zoom range of a PMTiles archive, for the notes."""
    from pmtiles.tile import deserialize_header

    with archive.open("rb") as f:
        h = deserialize_header(f.read(127))
    return (
        f"{archive.stat().st_size / 1e6:.1f} MB, {h['addressed_tiles_count']:,} tiles, "
        f"z{h['min_zoom']}–{h['max_zoom']}"
    )


def _extract(archive: Path, tiles: list[Tile], root: Path) -> int:
    """Write ``tiles`` out of ``archive`` as root/{z}/{x}/{y}.mvt, bytes as stored; total size."""
    entries = archive_entries(archive)
    total = 0
    with archive.open("rb") as f:
        for z, x, y in tiles:
            offset, length = entries[(z, x, y)]
            f.seek(offset)
            target = root / str(z) / str(x) / f"{y}.mvt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read(length))
            total += length
    return total


@figure
def tile_serving(args: argparse.Namespace) -> dict:
    """XYZ vector tile req/s (wrk) from the largest layer's PMTiles vs nginx on the same files."""
    _need("wrk", "nginx")
    home = _city_home()
    layer_id, count, geometry = _largest_vector_layers(_city_corpus(), 1)[0]
    archive = _archive(home, layer_id)
    if not archive.exists():
        print(f"   building the tiles of {layer_id} (untimed) …", file=sys.stderr)
        _timed([*GEOPORTAL, "tiles", "build", layer_id, "--home", str(home)])
    work = WORK / "tile-serving"
    sizes = {t: e[1] for t, e in archive_entries(archive).items()}
    tiles = dense_tiles(sizes)
    total = _extract(archive, tiles, work / "www" / "tiles" / layer_id)
    paths = [f"/tiles/{layer_id}/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    random.Random(4).shuffle(paths)
    script = work / "tiles.lua"
    script.write_text(wrk_script(paths))
    location = static_tiles_location(work / "www")
    with _geoportal_server(home, work) as ours, _nginx(work, location, paths[0]) as nginx:
        servers = {"geoportal serve (PMTiles)": ours, "nginx, tiles as files (reference)": nginx}
        _same_bytes(servers, paths[:20])
        loads = _compare_load(servers, script, args.repeat)
    rows = _load_rows(loads)
    zooms = sorted({t[0] for t in tiles})
    what = (
        f"Requests cycle through {len(paths):,} existing tiles of {layer_id} "
        f"({count:,} {geometry.lower()}s), z{zooms[0]}–{zooms[-1]} over the densest 3×3 "
        f"z{zooms[0]} tiles ({total / len(paths) / 1e3:.1f} kB gzip on average), the same "
        "list for both; nginx serves them extracted from the archive as files, gzip as "
        "stored, with `Content-Encoding: gzip`."
    )
    return {
        "title": "XYZ vector tile serving (req/s, wrk): `geoportal serve` vs nginx",
        "unit": "req/s",
        "rows": rows,
        "notes": [
            *_load_notes(rows, what),
            _versions(["nginx", "-v"], ["wrk", "-v"]) + ".",
        ],
    }


def _same_bytes(servers: dict[str, str], paths: list[str]) -> None:
    """Both servers answer ``paths`` with 200 and the same body (the stored gzip bytes).

    Raises:
        RuntimeError: a server answered otherwise.
    """
    for path in paths:
        bodies = set()
        for name, base in servers.items():
            with urllib.request.urlopen(base + path, timeout=30) as r:
                if r.status != 200 or r.headers.get("Content-Encoding") != "gzip":
                    raise RuntimeError(f"{name} answered {r.status} without gzip for {path}")
                bodies.add(r.read())
        if len(bodies) != 1:
            raise RuntimeError(f"the servers disagree on {path}")


# ---- WMS GetMap (wms-getmap): geoportal's /wms vs MapServer over FastCGI ---------------------

OGC_PIXEL_M = 0.00028  # the OGC "standardized rendering pixel": 0.28 mm
GETMAP_SIZE = 256
GETMAP_SCALES = (2_000, 20_000)
GETMAP_COUNT = 200
Bbox = tuple[float, float, float, float]


def wms_bboxes(
    centre: tuple[float, float], n: int, spread: float = 1500.0, seed: int = 4
) -> list[Bbox]:
    """``n`` square EPSG:3826 bboxes for 256×256 GetMaps around ``centre``.

    Scale denominators are log-uniform over GETMAP_SCALES (OGC 0.28 mm pixels); centres are
    uniform within ``spread`` metres of ``centre``. Same arguments, same list.
    """
    rng = random.Random(seed)
    lo, hi = (math.log(s) for s in GETMAP_SCALES)
    out = []
    for _ in range(n):
        half = math.exp(rng.uniform(lo, hi)) * GETMAP_SIZE * OGC_PIXEL_M / 2
        x = centre[0] + rng.uniform(-spread, spread)
        y = centre[1] + rng.uniform(-spread, spread)
        out.append((round(x - half, 2), round(y - half, 2), round(x + half, 2), round(y + half, 2)))
    return out


def getmap_path(layer: str, bbox: Bbox) -> str:
    """The /wms GetMap request path: WMS 1.3.0, EPSG:3826 (east, north), 256×256 PNG."""
    query = urllib.parse.urlencode(
        {
            "SERVICE": "WMS",
            "VERSION": "1.3.0",
            "REQUEST": "GetMap",
            "LAYERS": layer,
            "STYLES": "",
            "CRS": "EPSG:3826",
            "BBOX": ",".join(f"{v:.2f}" for v in bbox),
            "WIDTH": str(GETMAP_SIZE),
            "HEIGHT": str(GETMAP_SIZE),
            "FORMAT": "image/png",
            "TRANSPARENT": "TRUE",
        },
        safe=",/:",
    )
    return f"/wms?{query}"


def _dense_centre(gpkg: Path, cell: float = 1000.0) -> tuple[float, float]:
    """The EPSG:3826 centre of the ``cell``-metre square holding the most feature centres.

    Reads the features' boxes from the GeoPackage's R-tree: no geometry is decoded.
    """
    import sqlite3

    import numpy as np
    from pyproj import Transformer

    with closing(sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)) as db:
        (column,) = db.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = 'features'"
        ).fetchone()
        rows = db.execute(
            f'SELECT (minx + maxx) / 2, (miny + maxy) / 2 FROM "rtree_features_{column}"'
        ).fetchall()
    lon, lat = np.array(rows).T
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True).transform(lon, lat)
    cells, counts = np.unique(
        np.stack([np.floor(x / cell), np.floor(y / cell)]), axis=1, return_counts=True
    )
    best = cells[:, int(np.argmax(counts))]
    return (float(best[0]) + 0.5) * cell, (float(best[1]) + 0.5) * cell


def _check_png(name: str, url: str, save: Path) -> float:
    """Fetch one GetMap, check it is a 256×256 PNG with something drawn, and save it.

    Returns:
        The share of its pixels that are not fully transparent.

    Raises:
        RuntimeError: not a PNG, the wrong size, or nothing drawn.
    """
    from PIL import Image

    with urllib.request.urlopen(url, timeout=60) as r:
        kind, body = r.headers.get("Content-Type", ""), r.read()
    if not kind.startswith("image/png") or not body.startswith(b"\x89PNG"):
        raise RuntimeError(f"{name} answered {kind!r}, not a PNG: {body[:300]!r}")
    save.parent.mkdir(parents=True, exist_ok=True)
    save.write_bytes(body)
    with Image.open(save) as image:
        rgba = image.convert("RGBA")
    if rgba.size != (GETMAP_SIZE, GETMAP_SIZE):
        raise RuntimeError(f"{name} drew {rgba.size}, not {GETMAP_SIZE}×{GETMAP_SIZE}")
    drawn = 1 - rgba.getchannel("A").histogram()[0] / (GETMAP_SIZE * GETMAP_SIZE)
    if drawn == 0:
        raise RuntimeError(f"{name} drew nothing for {url}")
    return drawn


def _largest_polygon_layer(corpus: Path) -> tuple[str, int]:
    for layer_id, count, geometry in _largest_vector_layers(corpus, 100):
        if "polygon" in geometry.lower():
            return layer_id, count
    raise RuntimeError("the city corpus has no polygon layer")


@figure
def wms_getmap(args: argparse.Namespace) -> dict:
    """WMS GetMap 256×256 PNG req/s on the 300k buildings: geoportal /wms vs MapServer."""
    _need("wrk", "nginx", "mapserv")
    if importlib.util.find_spec("tiles.wms") is None:
        raise FigureSkipped("geoportal has no WMS yet (tiles/wms.py)")
    home = _city_home()
    layer_id, count = _largest_polygon_layer(_city_corpus())
    gpkg, style = _stored(home, layer_id)
    centre = _dense_centre(gpkg)
    paths = [getmap_path(layer_id, b) for b in wms_bboxes(centre, GETMAP_COUNT)]
    work = WORK / "wms-getmap"
    work.mkdir(parents=True, exist_ok=True)
    script = work / "getmap.lua"
    script.write_text(wrk_script(paths))
    map_path, config = work / "bench.map", work / "mapserver.conf"
    extent = (centre[0] - 20_000, centre[1] - 20_000, centre[0] + 20_000, centre[1] + 20_000)
    map_path.write_text(mapfile(gpkg, layer_id, extent, style), encoding="utf-8")
    config.write_text(mapserver_config(map_path), encoding="utf-8")
    env = {**os.environ, "MAPSERVER_CONFIG_FILE": str(config)}
    mapserv = [shutil.which("mapserv") or "mapserv"]
    with (
        _geoportal_server(home, work) as ours,
        _fastcgi(mapserv, SERVER_WORKERS, env, work / "mapserv.log") as upstream,
        _nginx(work, fastcgi_location("/wms", upstream, config), paths[0]) as reference,
    ):
        if not _answers(ours + paths[0]):
            raise FigureSkipped("`geoportal serve` does not answer GetMap on /wms (not routed yet)")
        servers = {
            "geoportal /wms (Mapnik)": ours,
            "MapServer mapserv, FastCGI behind nginx (reference)": reference,
        }
        drawn = [
            _check_png(name, base + paths[0], SAMPLES / f"wms-getmap-{i}.png")
            for i, (name, base) in enumerate(servers.items())
        ]
        loads = _compare_load(servers, script, args.repeat)
    rows = _load_rows(loads)
    what = (
        f"Requests cycle through {len(paths)} GetMaps of {layer_id} ({count:,} polygons; both "
        "read its stored GeoPackage) around its densest square kilometre (±1.5 km), scales "
        f"1:{GETMAP_SCALES[0]:,}–1:{GETMAP_SCALES[1]:,}, the same list for both. MapServer "
        f"draws the layer's own style ({_describe_style(style)}) from a generated mapfile, "
        f"AGG antialiased. One sample bbox: {drawn[0]:.0%} vs {drawn[1]:.0%} of the pixels "
        f"drawn (both PNGs kept in {SAMPLES.relative_to(ROOT)}/ to compare)."
    )
    return {
        "title": "WMS GetMap 256×256 PNG (req/s, wrk): geoportal `/wms` vs MapServer",
        "unit": "req/s",
        "rows": rows,
        "notes": [
            *_load_notes(rows, what),
            _versions(["mapserv", "-v"], ["nginx", "-v"], ["wrk", "-v"]) + ".",
        ],
    }


def _stored(home: Path, layer_id: str) -> tuple[Path, Style]:
    """The stored GeoPackage of a layer's current version and the style WMS draws it with."""
    from catalog.db import Catalog
    from tiles.layers import layer_style

    with Catalog.open(home) as catalog:
        layer = catalog.get_layer(layer_id)
    version = _current(home, layer_id)
    return home / version.path, layer_style(layer, version)


def _describe_style(style: Style) -> str:
    if style.graduated:
        g = style.graduated
        breaks = ", ".join(f"{b:g}" for b in g.breaks)
        fill = f"{len(g.colors)} colours graduated by {g.field} at {breaks}"
    elif style.categorized:
        fill = f"{len(style.categorized.values)} colours categorized by {style.categorized.field}"
    else:
        fill = f"fill {style.fill or DEFAULT_FILL}"
    outline = (
        f", outline {style.stroke} {style.stroke_width:g} px"
        if style.stroke and style.stroke_width > 0
        else ""
    )
    return f"{fill} at {style.fill_opacity:.0%} opacity{outline}"


# ---- OGC API (ogc-features, ogc-collections): geoportal /ogc vs stock pygeoapi --------------

FEATURE_WINDOWS = 200  # bbox windows, the same list in the same order for both servers
FEATURE_TARGET = 1000  # features a window holds, and the `limit` asked for
FEATURE_TOLERANCE = 100  # a window holds FEATURE_TARGET ± this many features
FEATURE_MAX_HALF_DEG = 0.02  # a centre needing a wider window (±~2 km) is not a dense area
FEATURE_CLIENTS = 4  # connections of the concurrent passes
FEATURE_WARMUP = 20  # untimed requests to each server before the first pass
COLLECTIONS_WARM = 50  # warm GET /collections after the cold one
CLIENT_TIMEOUT = 300  # seconds: a slow answer is latency, not an error
#: Installed beside pygeoapi, Starlette and uvicorn (pinned to our versions) for the reference:
#: GDAL's Python bindings (``osgeo``), which pygeoapi's OGR provider imports.
STOCK_EXTRA = ("gdal-wheel",)
#: pygeoapi's stock providers replacing ours in the reference's configuration.
STOCK_FEATURE_PROVIDER = "OGR"
STOCK_COVERAGE_PROVIDER = "rasterio"


@dataclass(frozen=True)
class Latency:
    """Latency percentiles of a set of requests, in milliseconds."""

    p50_ms: float
    p95_ms: float
    p99_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values``, interpolated between closest ranks.

    Args:
        values: the sample (any order).
        q: the percentile, 0–100.

    Returns:
        The value (numpy's default "linear" method).

    Raises:
        ValueError: no values, or ``q`` outside 0–100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0–100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(seconds: Sequence[float]) -> Latency:
    """p50, p95 and p99 of request times given in seconds, in milliseconds (0.1 ms)."""
    return Latency(*(round(percentile(seconds, q) * 1000, 1) for q in (50, 95, 99)))


def count_in(lon: np.ndarray, lat: np.ndarray, bbox: Bbox) -> int:
    """How many of the points lie in ``bbox`` (minx, miny, maxx, maxy), edges included."""
    x0, y0, x1, y1 = bbox
    return int(((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)).sum())


def bbox_windows(
    lon: np.ndarray,
    lat: np.ndarray,
    n: int,
    target: int = FEATURE_TARGET,
    tolerance: int = FEATURE_TOLERANCE,
    max_half: float = FEATURE_MAX_HALF_DEG,
    seed: int = 6,
) -> list[Bbox]:
    """``n`` lon/lat windows each holding ``target`` ± ``tolerance`` of the points.

    Each window is centred on a point drawn at random, so windows fall where the points are
    dense; it is square on the ground (lon half-width = lat half-width / cos lat) and sized by
    bisection. Corners are rounded to 6 decimals (~0.1 m) and the rounded window is the one
    counted (edges included, as a bbox query intersects). Same arguments, same list.

    Args:
        lon: the points' longitudes.
        lat: their latitudes.
        n: windows wanted.
        target: points a window should hold.
        tolerance: how far from ``target`` a window may be.
        max_half: largest lat half-width tried (degrees); sparser centres are skipped.
        seed: the random draw of centres.

    Returns:
        (minx, miny, maxx, maxy) per window.

    Raises:
        ValueError: ``n`` such windows were not found in 50·n draws (too few or sparse points).
    """
    import numpy as np

    order = np.argsort(lon, kind="stable")
    xs, ys = np.asarray(lon, dtype=float)[order], np.asarray(lat, dtype=float)[order]
    rng = random.Random(seed)
    out: list[Bbox] = []
    for _ in range(50 * n if len(xs) else 0):
        if len(out) == n:
            break
        i = rng.randrange(len(xs))
        window = _sized_window(xs, ys, (float(xs[i]), float(ys[i])), target, tolerance, max_half)
        if window is not None:
            out.append(window)
    if len(out) < n:
        raise ValueError(
            f"found {len(out)} of {n} windows holding {target}±{tolerance} of {len(xs)} points "
            f"within ±{max_half}°"
        )
    return out


def _sorted_count(xs: np.ndarray, ys: np.ndarray, bbox: Bbox) -> int:
    """count_in for points sorted by longitude: only the lon slice is scanned."""
    import numpy as np

    start, stop = np.searchsorted(xs, bbox[0], "left"), np.searchsorted(xs, bbox[2], "right")
    y = ys[start:stop]
    return int(np.count_nonzero((y >= bbox[1]) & (y <= bbox[3])))


def _sized_window(
    xs: np.ndarray,
    ys: np.ndarray,
    centre: tuple[float, float],
    target: int,
    tolerance: int,
    max_half: float,
) -> Bbox | None:
    """The window around ``centre`` holding ``target`` ± ``tolerance`` points, if one is found."""
    cx, cy = centre
    stretch = 1 / math.cos(math.radians(cy))

    def box(half: float) -> Bbox:
        x0, y0, x1, y1 = cx - half * stretch, cy - half, cx + half * stretch, cy + half
        return round(x0, 6), round(y0, 6), round(x1, 6), round(y1, 6)

    low, high = 1e-6, max_half
    if _sorted_count(xs, ys, box(high)) < target - tolerance:
        return None
    for _ in range(60):
        window = box(math.sqrt(low * high))
        count = _sorted_count(xs, ys, window)
        if abs(count - target) <= tolerance:
            return window
        low, high = (
            (math.sqrt(low * high), high) if count < target else (low, math.sqrt(low * high))
        )
    return None


def items_path(layer: str, bbox: Bbox, limit: int = FEATURE_TARGET) -> str:
    """The OGC API - Features items request of one window as JSON, below the API's root."""
    query = urllib.parse.urlencode(
        {"bbox": ",".join(f"{v:.6f}" for v in bbox), "limit": str(limit), "f": "json"},
        safe=",",
    )
    return f"/collections/{urllib.parse.quote(layer, safe='')}/items?{query}"


def stock_config(config: dict, root: str, keep: set[str] | None = None) -> dict:
    """The pygeoapi configuration geoportal generates, rewritten for stock pygeoapi.

    The same collections with the same metadata, read by pygeoapi's own providers from the
    same stored files: each Features provider becomes the OGR provider on the GeoPackage
    (table ``features``, id ``fid``), each Coverages provider the rasterio provider on the
    same raster. Our PMTiles tile providers (stock pygeoapi has none for PMTiles), the records
    catalog, the processes and their job manager are geoportal plugins and are left out;
    collections left without a provider are dropped.

    Args:
        config: a configuration from ``portal.ogc.config.build_config``.
        root: where the stock server answers (its ``server.url``).
        keep: collection ids to keep (default: all).

    Returns:
        A new configuration; ``config`` is not changed.
    """
    from pygeoapi.plugin import PLUGINS

    out = copy.deepcopy({k: v for k, v in config.items() if k != "resources"})
    out["server"]["url"] = root
    manager = out["server"].get("manager", {}).get("name")
    if manager is not None and manager not in PLUGINS["process_manager"]:
        del out["server"]["manager"]  # ours (jobs of our processes): stock uses its default
    resources: dict[str, dict] = {}
    for rid, resource in config["resources"].items():
        if resource.get("type") != "collection" or (keep is not None and rid not in keep):
            continue
        providers = [p for p in map(_stock_provider, resource.get("providers", [])) if p]
        if providers:
            resources[rid] = {**copy.deepcopy(resource), "providers": providers}
    out["resources"] = resources
    return out


def _stock_provider(provider: dict) -> dict | None:
    """The stock pygeoapi provider for the data of one of ours, or None when there is none."""
    if provider["type"] == "feature":
        stock = {
            "type": "feature",
            "name": STOCK_FEATURE_PROVIDER,
            "data": {"source_type": "GPKG", "source": provider["data"]},
            "id_field": provider["id_field"],
            "layer": "features",
        }
        for key in ("storage_crs", "crs"):
            if key in provider:
                stock[key] = copy.deepcopy(provider[key])
        return stock
    if provider["type"] == "coverage":
        return {
            "type": "coverage",
            "name": STOCK_COVERAGE_PROVIDER,
            "data": provider["data"],
            "options": copy.deepcopy(provider.get("options", {})),
            "format": copy.deepcopy(provider["format"]),
        }
    return None


def _ogc_config(home: Path, root: str) -> dict:
    """The pygeoapi configuration geoportal serves for ``home`` at ``root`` (as /ogc does)."""
    from catalog.db import Catalog
    from catalog.view import CatalogView
    from portal.ogc.config import Site, build_config

    with Catalog.open(home) as catalog:
        return build_config(CatalogView(catalog).snapshot(), Site(root, home))


def _stock_pygeoapi() -> Path:
    """The Python of a virtualenv with stock pygeoapi as released, for the references.

    pygeoapi, Starlette and uvicorn at our versions, plus STOCK_EXTRA; installed with pip once
    into the cache (keyed by the versions).

    Raises:
        FigureSkipped: pip could not install them.
    """
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in ("pygeoapi", "starlette", "uvicorn")]
    venv = CACHE / f"stock-pygeoapi-{_digest([], *pins, *STOCK_EXTRA)}"
    ready = venv / ".bench-ready"
    if not ready.exists():
        _clear_cache("stock-pygeoapi-")
        print(f"   installing {' '.join(pins)} into a cached virtualenv …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *pins, *STOCK_EXTRA]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            raise FigureSkipped(f"pip could not install {' '.join(pip[5:])}: {done.stderr[-800:]}")
        ready.write_text(" ".join(pins))
    return venv / "bin" / "python"


def _stock_openapi(python: Path, config: dict, work: Path) -> tuple[Path, Path]:
    """Write the stock configuration and generate its OpenAPI document (`pygeoapi openapi`).

    Returns:
        (configuration file, OpenAPI file).
    """
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    conf, oas = work / "stock-pygeoapi.yml", work / "stock-openapi.yml"
    conf.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    cmd = [str(python.parent / "pygeoapi"), "openapi", "generate", str(conf)]
    done = subprocess.run(
        [*cmd, "--output-file", str(oas)], capture_output=True, text=True, env=_stock_env(conf)
    )
    if done.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {done.stderr[-2000:]}")
    return conf, oas


def _stock_env(conf: Path, oas: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYGEOAPI_CONFIG"] = str(conf)
    if oas is not None:
        env["PYGEOAPI_OPENAPI"] = str(oas)
    return env


@contextmanager
def _stock_server(python: Path, conf: Path, oas: Path, work: Path) -> Iterator[str]:
    """Stock pygeoapi's Starlette app under uvicorn, SERVER_WORKERS workers; yields its URL.

    The port is the one of the configuration's ``server.url`` (pygeoapi's links use it).
    """
    cmd, env, root = _stock_command(python, conf, oas)
    log = work / "stock-pygeoapi.log"
    # it reads and validates its whole OpenAPI document on start: slow with 577 collections
    with _running("stock pygeoapi", cmd, f"{root}/conformance?f=json", log, env, wait=600):
        yield root


@dataclass(frozen=True)
class Pass:
    """One pass over a list of requests: each one's time, the wall time and the bodies."""

    seconds: tuple[float, ...]
    wall: float
    bodies: tuple[bytes, ...]  # as received (gzip when the server compressed)

    @property
    def rps(self) -> float:
        """Requests answered per second of wall time."""
        return len(self.seconds) / self.wall

    def documents(self) -> list[dict]:
        """The JSON answers, decompressed and parsed."""
        return [json.loads(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b) for b in self.bodies]


def request_pass(base: str, paths: list[str], clients: int = 1) -> Pass:
    """GET every path once over ``clients`` keep-alive connections, gzip accepted.

    Args:
        base: the API root (``http://host:port/prefix``); each path is appended to it.
        paths: the requests, taken in order by whichever connection is free.
        clients: concurrent connections (one thread each).

    Returns:
        The pass; times run from sending the request to the last byte of the answer.

    Raises:
        RuntimeError: an answer other than 200.
    """
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    url = urllib.parse.urlsplit(base)
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []

    def one(path: str) -> tuple[float, bytes]:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=CLIENT_TIMEOUT)
            connections.append(local.conn)
        start = time.perf_counter()
        local.conn.request("GET", url.path + path, headers={"Accept-Encoding": "gzip"})
        answer = local.conn.getresponse()
        body = answer.read()
        seconds = time.perf_counter() - start
        if answer.status != 200:
            raise RuntimeError(f"{base}{path} answered {answer.status}: {body[:300]!r}")
        return seconds, body

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(one, paths))
    finally:
        for conn in connections:
            conn.close()
    wall = time.perf_counter() - start
    return Pass(tuple(a[0] for a in answers), wall, tuple(a[1] for a in answers))


def _largest_point_layer(corpus: Path) -> tuple[str, int]:
    for layer_id, count, geometry in _largest_vector_layers(corpus, 100):
        if "point" in geometry.lower():
            return layer_id, count
    raise RuntimeError("the city corpus has no point layer")


def _points(gpkg: Path) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of a stored point layer, from its geometries (not the R-tree)."""
    import pyogrio
    import shapely

    meta, table = pyogrio.read_arrow(gpkg, layer="features", columns=[])
    column = meta["geometry_name"] or "wkb_geometry"
    xy = shapely.get_coordinates(shapely.from_wkb(table[column].to_numpy(zero_copy_only=False)))
    return xy[:, 0], xy[:, 1]


def _pass_row(what: str, passes: list[Pass]) -> dict:
    """A req/s row: median and runs, the latencies of the median run, the request count."""
    middle = sorted(passes, key=lambda p: p.rps)[len(passes) // 2]
    lat = latency(middle.seconds)
    return {
        "what": what,
        "median": round(statistics.median(p.rps for p in passes), 1),
        "runs": [round(p.rps, 1) for p in passes],
        "p50_ms": lat.p50_ms,
        "p95_ms": lat.p95_ms,
        "p99_ms": lat.p99_ms,
        "requests": sum(len(p.seconds) for p in passes),
    }


@dataclass(frozen=True)
class Returned:
    """What a server returned for one window: its numberReturned (None when absent), the ids."""

    number_returned: int | None
    ids: frozenset


def _returned(documents: list[dict]) -> list[Returned]:
    return [
        Returned(d.get("numberReturned"), frozenset(f.get("id") for f in d["features"]))
        for d in documents
    ]


def _stock_versions(python: Path) -> str:
    code = (
        "import pygeoapi, starlette, uvicorn; from osgeo import gdal; "
        "print(f'pygeoapi {pygeoapi.__version__}, Starlette {starlette.__version__}, "
        "uvicorn {uvicorn.__version__}, GDAL {gdal.__version__} (gdal-wheel)')"
    )
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()


def _load_now() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


SHARED_MACHINE = (
    "The machine's {cores} cores were shared with other work during this run (load average "
    "{start} at the start, {end} at the end): absolute figures are noisy; both servers ran "
    "alternately in the same conditions, so read the ratios."
)

STOCK_WHY = (
    "Reference: stock pygeoapi ({versions}) in its own process and virtualenv, its Starlette "
    "app under uvicorn, with a configuration generated by geoportal's "
    "`portal.ogc.config.build_config` and then given pygeoapi's own providers "
    "(`scripts/bench.py: stock_config`). Its `SQLiteGPKG` provider could not be used: it "
    "loads mod_spatialite, and no Python ≥ 3.12 here (pygeoapi {pygeoapi} needs 3.12) has "
    "sqlite3 extension loading compiled in; the OGR provider reads the same GeoPackage "
    "through GDAL instead, with GDAL's R-tree spatial filter."
)


@figure
def ogc_features(args: argparse.Namespace) -> dict:
    """OGC API Features bbox queries of ~1,000 of the 1M points: /ogc vs stock pygeoapi (OGR)."""
    home = _city_home()
    layer_id, count = _largest_point_layer(_city_corpus())
    gpkg = home / _current(home, layer_id).path
    lon, lat = _points(gpkg)
    windows = bbox_windows(lon, lat, FEATURE_WINDOWS)
    expected = [min(count_in(lon, lat, w), FEATURE_TARGET) for w in windows]
    paths = [items_path(layer_id, w) for w in windows]
    work = WORK / "ogc-features"
    python = _stock_pygeoapi()
    root = f"http://127.0.0.1:{_free_port()}"
    config = stock_config(_ogc_config(home, root), root, keep={layer_id})
    conf, oas = _stock_openapi(python, config, work)
    modes = (
        ("sequential, 1 client", 1),
        (f"{FEATURE_CLIENTS} concurrent clients", FEATURE_CLIENTS),
    )
    load_start = _load_now()
    with _geoportal_server(home, work) as ours, _stock_server(python, conf, oas, work) as stock:
        servers = {
            "geoportal /ogc (GeoportalProvider)": ours + "/ogc",
            f"stock pygeoapi, {STOCK_FEATURE_PROVIDER} provider (reference)": stock,
        }
        returned = {
            name: _returned(request_pass(base, paths).documents()) for name, base in servers.items()
        }
        for base in servers.values():
            request_pass(base, paths[:FEATURE_WARMUP], FEATURE_CLIENTS)
        passes: dict[tuple[str, str], list[Pass]] = {}
        for _ in range(args.repeat):
            for mode, clients in modes:
                for name, base in servers.items():
                    run = request_pass(base, paths, clients)
                    passes.setdefault((mode, name), []).append(run)
                    lat = latency(run.seconds)
                    print(
                        f"   {name}, {mode}: {run.rps:.1f} req/s, p50 {lat.p50_ms} ms, "
                        f"p95 {lat.p95_ms} ms, p99 {lat.p99_ms} ms",
                        file=sys.stderr,
                    )
    rows = [_pass_row(f"{name}, {mode}", runs) for (mode, name), runs in passes.items()]
    notes = [
        _features_what(layer_id, count, windows, expected),
        _same_counts(returned, expected),
        *_ratio_notes(rows, [m for m, _ in modes]),
        f"A Python client (http.client, keep-alive, `Accept-Encoding: gzip`, as both "
        f"servers gzip) times each request from sending it to the last byte; "
        f"{len(paths)} requests per pass, one pass per server and mode per round, "
        f"{args.repeat} rounds alternating between the servers after one untimed pass (the "
        f"count check above) and {FEATURE_WARMUP} warm-up requests; both servers with "
        f"{SERVER_WORKERS} uvicorn worker processes, on the same {os.cpu_count()} cores "
        "as the client. Latencies are those of the median run.",
        STOCK_WHY.format(versions=_stock_versions(python), pygeoapi=_pygeoapi_version()),
        SHARED_MACHINE.format(cores=os.cpu_count(), start=load_start, end=_load_now()),
    ]
    return {
        "title": "OGC API Features bbox query, ~1,000 of 1M points (req/s): `/ogc` vs pygeoapi",
        "unit": "req/s",
        "rows": rows,
        "notes": notes,
    }


def _pygeoapi_version() -> str:
    from importlib.metadata import version

    return version("pygeoapi")


def _features_what(layer_id: str, count: int, windows: list[Bbox], expected: list[int]) -> str:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    sides = [geod.inv(x0, y0, x0, y1)[2] for x0, y0, _, y1 in windows]
    return (
        f"{len(windows)} bbox windows over {layer_id} ({count:,} points), each centred on a "
        "point drawn at random (so in the dense areas) and sized to hold "
        f"{FEATURE_TARGET - FEATURE_TOLERANCE:,}–{FEATURE_TARGET + FEATURE_TOLERANCE:,} of "
        "the stored points (counted from the stored geometries); sides "
        f"{min(sides):.0f}–{max(sides):.0f} m (median {statistics.median(sides):.0f} m). Each "
        f"request: `items?bbox=…&limit={FEATURE_TARGET}&f=json`, expecting "
        f"{min(expected):,}–{max(expected):,} features back; the same list in the same order "
        "for both servers."
    )


def _same_counts(returned: dict[str, list[Returned]], expected: list[int]) -> str:
    """The sanity check: features returned per window, against the stored points and each other.

    Features are counted in each answer; its numberReturned, where it gives one, must agree.
    Where a window holds no more than the limit, both servers must return the same ids.
    """
    parts = []
    for name, got in returned.items():
        counts = [len(r.ids) for r in got]
        wrong = [(i, c, e) for i, (c, e) in enumerate(zip(counts, expected, strict=True)) if c != e]
        detail = "".join(f"; window {i}: {c} returned, {e} expected" for i, c, e in wrong[:3])
        stated = [r.number_returned for r in got if r.number_returned is not None]
        claim = (
            "no numberReturned in its answers (the OGR provider sets none)"
            if not stated
            else f"numberReturned equal to the features sent in "
            f"{sum(r.number_returned == len(r.ids) for r in got)} of {len(got)} answers"
        )
        parts.append(f"{name}: {len(got) - len(wrong)} of {len(got)} as expected{detail}, {claim}")
    ours, ref = returned.values()
    whole = [i for i, e in enumerate(expected) if e < FEATURE_TARGET]
    same = sum(ours[i].ids == ref[i].ids for i in whole)
    return (
        "Features returned per window, checked against the stored points in it (capped at the "
        f"limit): {'; '.join(parts)}. Of the {len(whole)} windows holding fewer than "
        f"{FEATURE_TARGET:,} points, both servers returned the same feature ids in {same}; "
        "windows holding more are cut at the limit in each server's own order (fid order for "
        "geoportal, R-tree order for OGR), so those ids differ by design."
    )


def _ratio_notes(rows: list[dict], modes: list[str]) -> list[str]:
    """The geoportal / reference ratios per mode; rows are (ours, reference) pairs in order."""
    out = []
    for i, mode in enumerate(modes):
        ours, ref = rows[2 * i], rows[2 * i + 1]
        out.append(
            f"{mode}: geoportal / stock pygeoapi = {ours['median'] / ref['median']:.2f} in "
            f"req/s ({ours['median']} vs {ref['median']}); p50 {ours['p50_ms']} vs "
            f"{ref['p50_ms']} ms, p95 {ours['p95_ms']} vs {ref['p95_ms']} ms, p99 "
            f"{ours['p99_ms']} vs {ref['p99_ms']} ms."
        )
    return out


COLLECTIONS_PATH = "/collections?f=json"


@figure
def ogc_collections(args: argparse.Namespace) -> dict:
    """GET /ogc/collections (JSON) with every city layer, cold and warm: /ogc vs stock pygeoapi."""
    home = _city_home()
    work = WORK / "ogc-collections"
    python = _stock_pygeoapi()
    root = f"http://127.0.0.1:{_free_port()}"
    config = stock_config(_ogc_config(home, root), root)
    conf, oas = _stock_openapi(python, config, work)
    ours = "geoportal /ogc"
    providers = f"{STOCK_FEATURE_PROVIDER}/{STOCK_COVERAGE_PROVIDER}"
    ref = f"stock pygeoapi, the same layers, {providers} providers (reference)"
    starts = {
        ours: lambda: _prefixed(_geoportal_server(home, work), "/ogc"),
        ref: lambda: _stock_server(python, conf, oas, work),
    }
    cold: dict[str, list[float]] = {name: [] for name in starts}
    warm: dict[str, list[Pass]] = {name: [] for name in starts}
    sizes: dict[str, tuple[int, int]] = {}
    load_start = _load_now()
    for _ in range(args.repeat):
        for name, start in starts.items():
            with start() as base:
                first = request_pass(base, [COLLECTIONS_PATH])
                runs = request_pass(base, [COLLECTIONS_PATH] * COLLECTIONS_WARM)
            cold[name].append(first.seconds[0])
            warm[name].append(runs)
            doc = first.documents()[0]
            sizes[name] = (len(doc["collections"]), len(first.bodies[0]))
            lat = latency(runs.seconds)
            print(
                f"   {name}: cold {first.seconds[0] * 1000:.0f} ms, warm p50 {lat.p50_ms} ms, "
                f"p95 {lat.p95_ms} ms",
                file=sys.stderr,
            )
    rows = []
    for name in starts:
        rows.append(_ms_row(f"{name}: cold (first request after start)", cold[name]))
        rows.append(_warm_row(f"{name}: warm ({COLLECTIONS_WARM} requests)", warm[name]))
    return {
        "title": "OGC API `/collections` with every city layer (ms): `/ogc` vs stock pygeoapi",
        "unit": "ms",
        "rows": rows,
        "notes": [
            *_collections_notes(rows, sizes, python, args.repeat),
            SHARED_MACHINE.format(cores=os.cpu_count(), start=load_start, end=_load_now()),
        ],
    }


@contextmanager
def _prefixed(server: contextlib.AbstractContextManager[str], prefix: str) -> Iterator[str]:
    with server as base:
        yield base + prefix


def _ms_row(what: str, seconds: list[float]) -> dict:
    ms = [round(s * 1000, 1) for s in seconds]
    return {"what": what, "median": round(statistics.median(ms), 1), "runs": ms}


def _warm_row(what: str, passes: list[Pass]) -> dict:
    """Median and runs of each pass's p50 (ms), with the percentiles of the median pass."""
    p50s = [latency(p.seconds).p50_ms for p in passes]
    middle = sorted(passes, key=lambda p: latency(p.seconds).p50_ms)[len(passes) // 2]
    lat = latency(middle.seconds)
    return {
        "what": what,
        "median": round(statistics.median(p50s), 1),
        "runs": p50s,
        "p50_ms": lat.p50_ms,
        "p95_ms": lat.p95_ms,
        "p99_ms": lat.p99_ms,
    }


def _collections_notes(
    rows: list[dict], sizes: dict[str, tuple[int, int]], python: Path, repeat: int
) -> list[str]:
    (ours, (n_ours, b_ours)), (ref, (n_ref, b_ref)) = sizes.items()
    return [
        f"{ours}: {n_ours} collections ({b_ours / 1e3:.0f} kB gzip); {ref}: {n_ref} "
        f"collections ({b_ref / 1e3:.0f} kB gzip). The reference has every layer geoportal "
        "publishes as a collection with the same metadata and links, minus geoportal's own "
        "records catalog collection; its collections carry no tiles (stock pygeoapi has no "
        "PMTiles provider).",
        f"Cold: geoportal {rows[0]['median']} ms vs {rows[2]['median']} ms; warm p50 "
        f"{rows[1]['median']} vs {rows[3]['median']} ms, p95 {rows[1]['p95_ms']} vs "
        f"{rows[3]['p95_ms']} ms (median run). Each of {repeat} rounds starts each server "
        f"afresh ({SERVER_WORKERS} uvicorn workers), times `GET /collections?f=json` once "
        f"(cold: the first request after the server answers its readiness probe — "
        f"`/healthz` for geoportal, `/conformance` for pygeoapi), then {COLLECTIONS_WARM} "
        "more on one keep-alive connection (warm), gzip accepted.",
        STOCK_WHY.format(versions=_stock_versions(python), pygeoapi=_pygeoapi_version()),
    ]


# ---- CKAN package_search (ckan-search) and serve cold start (serve-cold-start) ----------------

REAL_DATA = ROOT.parent / "shared" / "data" / "real"
#: The real agency catalog exports ingested beside the city's layer datasets (docs/datasets.md).
CATALOG_EXPORTS = (
    Path("DragonChen-opendata-tw-list-crawler/out/raw/08_Taichung.csv"),
    Path("opendata-tw-datapackage/tycg_opendata_supply_list.xls"),
    Path("opendata-tw-datapackage/dgtw_metadata_commit_8d7f7daa"),
)
SEARCH_FACETS = ("organization", "groups", "tags", "res_format", "license_id")
SEARCH_ROWS = 20
SEARCH_FACET_LIMIT = 50  # CKAN's default facet.limit: both engines return this many per field
SEARCH_TERMS = (
    "停車場",
    "公車",
    "空氣品質",
    "人口",
    "道路",
    '"交通事故"',
    "學校",
    "公園",
    "垃圾",
    "路燈",
    "臺中市 交通事故",
    "parking",
    "bus",
    "air quality",
    "population",
    "road",
)
SEARCH_ORGS = 3  # q="" with fq=organization:X for the largest organizations
SEARCH_CYCLES = 5  # each pass asks the query list this many times
SEARCH_CLIENTS = 4
#: Terms whose substring-in-title counts both engines must agree on (CJK, no 台/臺).
AGREEMENT_TERMS = ("停車場", "公車", "空氣品質", "人口", "道路", "交通事故")
PG_URL = os.environ.get("GEOPORTAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
COLD_POLL = 0.05  # seconds between attempts while a server is starting
COLD_WAIT = 600


@dataclass(frozen=True)
class SearchQuery:
    """One package_search of the benchmark: a query and a filter query."""

    q: str = ""
    fq: str = ""

    @property
    def label(self) -> str:
        """How the notes name it."""
        return (
            f"fq={self.fq}"
            if self.fq and not self.q
            else self.q + (f" fq={self.fq}" * bool(self.fq))
        )


def package_search_path(query: SearchQuery, rows: int = SEARCH_ROWS) -> str:
    """The Action API GET path of one search with the benchmark's facets (JSON list as text).

    Args:
        query: q and fq (left out when empty).
        rows: datasets per page.

    Returns:
        ``/api/3/action/package_search?…``, percent-encoded.
    """
    params = {"q": query.q}
    if query.fq:
        params["fq"] = query.fq
    params["rows"] = str(rows)
    params["facet.field"] = json.dumps(list(SEARCH_FACETS))
    params["facet.limit"] = str(SEARCH_FACET_LIMIT)
    return "/api/3/action/package_search?" + urllib.parse.urlencode(params)


def like_terms(q: str) -> list[str]:
    """The LIKE patterns of a free-text query for the PostgreSQL reference: one per word.

    A quoted phrase is one pattern; other words split on whitespace; ``%``, ``_`` and the
    backslash are escaped (PostgreSQL's default LIKE escape is the backslash).

    Args:
        q: the query as sent to package_search (no field syntax).

    Returns:
        ``%word%`` patterns, all of which must match; none for an empty query.
    """
    words: list[str] = []
    for i, part in enumerate(q.split('"')):
        if i % 2:
            words.append(part.strip())
        else:
            words.extend(part.split())
    escaped = (w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words if w)
    return [f"%{w}%" for w in escaped]


@dataclass(frozen=True)
class RefDataset:
    """One public active dataset as the PostgreSQL reference holds it."""

    name: str
    title: str  # title and English title
    notes: str
    organization: str  # the owner_org as package_search facets it
    org_title: str
    license_id: str
    modified: datetime | None
    tags: tuple[str, ...]
    groups: tuple[str, ...]
    formats: tuple[str, ...]  # distinct resource formats

    @property
    def document(self) -> str:
        """The text the reference searches: title, notes, tags and organization title."""
        return "\n".join([self.title, self.notes, " ".join(self.tags), self.org_title])


def ref_datasets(datasets: Sequence, organizations: dict) -> list[RefDataset]:
    """The public active datasets of a portal as RefDatasets (what package_search shows anyone).

    Args:
        datasets: ``portal.ckan.model.Dataset`` records, any state.
        organizations: organizations by name (their titles are searched too).

    Returns:
        One RefDataset per public active dataset, in the given order.
    """
    by_key = {key: org for org in organizations.values() for key in (org.name, org.id)}
    out = []
    for ds in datasets:
        if ds.state != "active" or ds.private:
            continue
        org = by_key.get(ds.owner_org)
        out.append(
            RefDataset(
                name=ds.name,
                title=" ".join(filter(None, (ds.title, ds.title_en))),
                notes=ds.notes,
                organization=ds.owner_org,
                org_title=org.title if org else "",
                license_id=ds.license_id,
                modified=ds.metadata_modified,
                tags=tuple(dict.fromkeys(ds.tags)),
                groups=tuple(dict.fromkeys(ds.groups)),
                formats=tuple(dict.fromkeys(r.format for r in ds.resources if r.format)),
            )
        )
    return out


class PgReference:
    """The same searches and facet counts done by PostgreSQL: ILIKE over a trigram GIN index.

    Everything lives in a temporary schema, dropped by :meth:`close`. Facets are GROUP BY
    counts over the matches (``facet.limit`` values per field, most frequent first, ties by
    value in code-point order), the page is ``rows`` datasets, title matches first, then the
    newest; one statement (one round trip) per search.
    """

    def __init__(self, url: str = PG_URL) -> None:
        """Connect and create the schema.

        Raises:
            FigureSkipped: no PostgreSQL answers at ``url``.
        """
        import psycopg

        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise FigureSkipped(f"no PostgreSQL at {url}: {exc}") from exc
        self.url = url
        self.schema = f"bench_ckan_{os.getpid()}"
        self.version = self.conn.execute("SHOW server_version").fetchone()[0]
        self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.execute(f"CREATE SCHEMA {self.schema}")
        self.trigram = self._trigram()

    def _trigram(self) -> str | None:
        """The schema holding pg_trgm (created here if the server has it), or None."""
        found = self.conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        ).fetchone()
        if found:
            return found[0]
        available = self.conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
        ).fetchone()
        if not available:
            return None
        self.conn.execute(f"CREATE EXTENSION pg_trgm SCHEMA {self.schema}")
        return self.schema

    def search_path(self) -> str:
        """The search_path of a connection to the reference's schema."""
        return ", ".join(dict.fromkeys(filter(None, (self.schema, self.trigram, "public"))))

    def load(self, rows: Sequence[RefDataset]) -> None:
        """Create the tables, copy the datasets in, index and analyze."""
        s = self.schema
        with self.conn.cursor() as cur:
            cur.execute(f"SET search_path = {self.search_path()}")
            cur.execute(
                f"CREATE TABLE {s}.ds (id int PRIMARY KEY, name text, title text, notes text, "
                'org text COLLATE "C", license text COLLATE "C", modified timestamptz, '
                "doc text)"
            )
            for table in ("tags", "groups", "formats"):
                cur.execute(f'CREATE TABLE {s}.ds_{table} (id int, value text COLLATE "C")')
            with cur.copy(f"COPY {s}.ds FROM STDIN") as copy:
                for i, r in enumerate(rows):
                    copy.write_row(
                        (
                            i,
                            r.name,
                            r.title,
                            r.notes,
                            r.organization,
                            r.license_id,
                            r.modified,
                            r.document,
                        )
                    )
            for table in ("tags", "groups", "formats"):
                with cur.copy(f"COPY {s}.ds_{table} FROM STDIN") as copy:
                    for i, r in enumerate(rows):
                        for value in getattr(r, table):
                            copy.write_row((i, value))
                cur.execute(f"CREATE INDEX ON {s}.ds_{table} (id)")
            if self.trigram:
                cur.execute(f"CREATE INDEX ds_doc_trgm ON {s}.ds USING gin (doc gin_trgm_ops)")
                cur.execute(f"CREATE INDEX ds_title_trgm ON {s}.ds USING gin (title gin_trgm_ops)")
            cur.execute(f"CREATE INDEX ON {s}.ds (org)")
            for table in ("ds", "ds_tags", "ds_groups", "ds_formats"):
                cur.execute(f"ANALYZE {s}.{table}")

    def statement(self, query: SearchQuery, rows: int = SEARCH_ROWS) -> tuple[str, list]:
        """The one SQL statement of a search and its parameters.

        Args:
            query: q (free text: every word a substring of the dataset's text) and fq (only
                ``organization:NAME``).
            rows: datasets on the page.

        Returns:
            (SQL, parameters); the statement yields (count, page JSON, facets JSON).

        Raises:
            ValueError: an fq other than ``organization:NAME``.
        """
        patterns = like_terms(query.q)
        where = ["doc ILIKE %s"] * len(patterns)
        params: list = list(patterns)
        if query.fq:
            field, _, value = query.fq.partition(":")
            if field != "organization" or not value:
                raise ValueError(f"the reference only filters organization:NAME, not {query.fq}")
            where.append("org = %s")
            params.append(value.strip('"'))
        first = patterns[0] if patterns else "%"
        facets = " UNION ALL ".join(
            f"(SELECT '{name}' AS field, {value} AS value, count(*) AS n FROM {source} "
            f"GROUP BY 2 ORDER BY 3 DESC, 2 LIMIT {SEARCH_FACET_LIMIT})"
            for name, value, source in (
                ("organization", "org", "m"),
                ("groups", "t.value", f"{self.schema}.ds_groups t JOIN m USING (id)"),
                ("tags", "t.value", f"{self.schema}.ds_tags t JOIN m USING (id)"),
                ("res_format", "t.value", f"{self.schema}.ds_formats t JOIN m USING (id)"),
                ("license_id", "license", "m"),
            )
        )
        sql = (
            f"WITH m AS MATERIALIZED (SELECT id, name, title, notes, org, license, modified "
            f"FROM {self.schema}.ds WHERE {' AND '.join(where) or 'true'}) "
            "SELECT (SELECT count(*) FROM m), "
            "(SELECT coalesce(json_agg(p), '[]') FROM (SELECT name, title, notes FROM m "
            "ORDER BY title ILIKE %s DESC, modified DESC NULLS LAST, name "
            f"LIMIT {int(rows)}) p), "
            f"(SELECT coalesce(json_agg(f), '[]') FROM ({facets}) f)"
        )
        return sql, [*params, first]

    def connect(self):
        """A new connection whose search_path is the reference's schema."""
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(f"SET search_path = {self.search_path()}")
        return conn

    def search(self, conn, query: SearchQuery) -> tuple[int, dict[str, dict[str, int]]]:
        """Run one search on ``conn``: the match count and the facet counts."""
        count, _page, facets = conn.execute(*self.statement(query)).fetchone()
        out: dict[str, dict[str, int]] = {name: {} for name in SEARCH_FACETS}
        for f in facets:
            out[f["field"]][f["value"]] = f["n"]
        return count, out

    def title_count(self, conn, term: str) -> int:
        """How many datasets hold ``term`` in their title (substring, case-insensitive)."""
        return conn.execute(
            f"SELECT count(*) FROM {self.schema}.ds WHERE title ILIKE %s", like_terms(f'"{term}"')
        ).fetchone()[0]

    def close(self) -> None:
        """Drop the schema (and pg_trgm if it was created in it) and disconnect."""
        with suppress(Exception):
            self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.close()


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _copy_home(src: Path, dst: Path) -> None:
    """A copy of a data home: the catalog database through SQLite's backup, files hard-linked.

    Stored versions are never rewritten in place, so links are safe; the database is copied
    consistently even while a server has it open.
    """
    import sqlite3

    shutil.rmtree(dst, ignore_errors=True)
    skip = shutil.ignore_patterns("catalog.sqlite*", ".bench-*", "tmp", "jobs")
    shutil.copytree(src, dst, copy_function=_link_or_copy, ignore=skip)
    with (
        closing(sqlite3.connect(f"file:{src / 'catalog.sqlite'}?mode=ro", uri=True)) as a,
        closing(sqlite3.connect(dst / "catalog.sqlite")) as b,
    ):
        a.backup(b)


def _search_home() -> tuple[Path, dict]:
    """The city home plus the real agency catalog exports, cached; (home, ingest summary).

    Raises:
        FigureSkipped: the real data is not on this machine.
    """
    sources = [REAL_DATA / p for p in CATALOG_EXPORTS]
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        raise FigureSkipped(f"the real catalog exports are missing: {', '.join(missing)}")
    city = _city_home()
    files = [p for s in sources for p in ([s] if s.is_file() else sorted(s.rglob("*.json")))]
    code = [ROOT / "portal" / "ckan" / "imports.py"]
    home = CACHE / f"search-home-{_digest([*code, *files], city.name)}"
    done = home / ".bench-imports.json"
    if not done.exists():
        _clear_cache("search-home-")
        print("   copying the city home and ingesting the catalog exports …", file=sys.stderr)
        _copy_home(city, home)
        _, stdout = _timed_ok(
            [*GEOPORTAL, "ingest", *map(str, sources), "--home", str(home), "--json"]
        )
        from portal.ckan.store import sync

        sync(home)
        done.write_text(json.dumps(json.loads(stdout).get("datasets", {}), ensure_ascii=False))
    return home, json.loads(done.read_text())


def _portal(home: Path) -> tuple[list, dict, dict]:
    """(every dataset, organizations by name, groups by name) of a home's portal store."""
    from portal.ckan.store import PortalStore

    store = PortalStore.open(home)
    try:
        datasets = store.datasets(include_private=True, include_deleted=True)
        return (
            datasets,
            {o.name: o for o in store.organizations()},
            {g.name: g for g in store.groups()},
        )
    finally:
        store.close()


def search_queries(refs: Sequence[RefDataset], orgs: int = SEARCH_ORGS) -> list[SearchQuery]:
    """The benchmark's searches: SEARCH_TERMS, then q="" filtered to the largest organizations."""
    sizes: dict[str, int] = {}
    for r in refs:
        sizes[r.organization] = sizes.get(r.organization, 0) + 1
    largest = sorted(sizes, key=lambda o: (-sizes[o], o))[:orgs]
    return [
        *(SearchQuery(q=t) for t in SEARCH_TERMS),
        *(SearchQuery(fq=f"organization:{o}") for o in largest),
    ]


def _timed_calls(fn: Callable[[SearchQuery], object], queries: list[SearchQuery]) -> list[float]:
    out = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        out.append(time.perf_counter() - start)
    return out


def _pg_pass(ref: PgReference, queries: list[SearchQuery], clients: int) -> Pass:
    """The reference's searches over ``clients`` connections, timed like request_pass."""
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    conns: list = []

    def one(query: SearchQuery) -> float:
        if not hasattr(local, "conn"):
            local.conn = ref.connect()
            conns.append(local.conn)
        start = time.perf_counter()
        local.conn.execute(*ref.statement(query)).fetchone()
        return time.perf_counter() - start

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            seconds = list(pool.map(one, queries))
    finally:
        for conn in conns:
            conn.close()
    return Pass(tuple(seconds), time.perf_counter() - start, ())


def _search_row(what: str, passes: list[Pass]) -> dict:
    """Median p50 (ms) over passes, the percentiles of the median pass, and its req/s."""
    row = _warm_row(what, passes)
    row["rps"] = round(statistics.median(p.rps for p in passes), 1)
    return row


@figure
def ckan_search(args: argparse.Namespace) -> dict:
    """CKAN package_search p50/p95 (q + 5 facets) over ~4,000 datasets vs PostgreSQL ILIKE."""
    from portal.ckan.search import SearchIndex, SearchParams

    home, imported = _search_home()
    datasets, organizations, groups = _portal(home)
    refs = ref_datasets(datasets, organizations)
    queries = search_queries(refs)
    work = WORK / "ckan-search"
    work.mkdir(parents=True, exist_ok=True)
    load_start = _load_now()

    index = SearchIndex(datasets, organizations, groups)

    def ours(query: SearchQuery):
        return index.search(
            SearchParams(
                q=query.q,
                fq=query.fq,
                rows=SEARCH_ROWS,
                facet_fields=SEARCH_FACETS,
                facet_limit=SEARCH_FACET_LIMIT,
            )
        )

    expected = {query: ours(query) for query in queries}
    ref = PgReference()
    try:
        started = time.perf_counter()
        ref.load(refs)
        load_s = time.perf_counter() - started
        with closing(ref.connect()) as conn:
            pg_found = {query: ref.search(conn, query) for query in queries}
            agreement = _agreement(index, ref, conn)
        run = queries * SEARCH_CYCLES
        passes: dict[str, list[Pass]] = {}
        modes = (("sequential, 1 client", 1), (f"{SEARCH_CLIENTS} concurrent clients", 4))
        with _geoportal_server(home, work) as base:
            paths = [package_search_path(q) for q in queries]
            first = request_pass(base, paths)
            http_found = dict(zip(queries, first.documents(), strict=True))
            request_pass(base, paths * 2, SEARCH_CLIENTS)  # warm-up
            _pg_pass(ref, queries * 2, SEARCH_CLIENTS)
            for _ in range(args.repeat):
                for mode, clients in modes:
                    for name, timed in (
                        (
                            "geoportal serve, HTTP package_search",
                            lambda c: request_pass(base, [package_search_path(q) for q in run], c),
                        ),
                        (
                            "PostgreSQL ILIKE + GROUP BY, database side, no HTTP (reference)",
                            lambda c: _pg_pass(ref, run, c),
                        ),
                    ):
                        done = timed(clients)
                        passes.setdefault(f"{name}, {mode}", []).append(done)
                        lat = latency(done.seconds)
                        print(
                            f"   {name}, {mode}: p50 {lat.p50_ms} ms, p95 {lat.p95_ms} ms, "
                            f"{done.rps:.0f}/s",
                            file=sys.stderr,
                        )
                inproc = _timed_calls(ours, run)
                passes.setdefault("SearchIndex.search in process, no HTTP", []).append(
                    Pass(tuple(inproc), sum(inproc), ())
                )
    finally:
        ref.close()
    rows = [_search_row(what, runs) for what, runs in passes.items()]
    layers = sum(1 for d in datasets if d.layer_id and d.state == "active" and not d.private)
    notes = _search_notes(
        refs,
        layers,
        imported,
        queries,
        expected,
        http_found,
        pg_found,
        agreement,
        ref,
        load_s,
        args,
    )
    notes.append(SHARED_MACHINE.format(cores=os.cpu_count(), start=load_start, end=_load_now()))
    return {
        "title": f"CKAN `package_search` with 5 facets over {len(refs):,} datasets (ms)",
        "unit": "ms",
        "rows": rows,
        "notes": notes,
    }


def _agreement(index, ref: PgReference, conn) -> list[tuple[str, int, int]]:
    """(term, ours, reference) title-substring counts: ours as a ``title:"term"`` phrase."""
    from portal.ckan.search import SearchParams

    return [
        (t, index.search(SearchParams(q=f'title:"{t}"', rows=0)).count, ref.title_count(conn, t))
        for t in AGREEMENT_TERMS
    ]


def _search_notes(
    refs, layers, imported, queries, expected, http_found, pg_found, agreement, ref, load_s, args
) -> list[str]:
    per_file = "; ".join(
        f"{Path(f['file']).name} {f['rows']:,} rows → {f['datasets']:,} datasets"
        for f in imported.get("files", [])
    )
    grouped = sum(1 for r in refs if r.groups)
    same_http = sum(
        http_found[q]["result"]["count"] == expected[q].count
        and http_found[q]["result"]["facets"] == expected[q].facets
        for q in queries
    )
    counts = ", ".join(f"{q.label} {expected[q].count} vs {pg_found[q][0]}" for q in queries)
    same_orgs = [q for q in queries if q.fq]
    agree = ", ".join(f"{t} {a} vs {b}" for t, a, b in agreement)
    agreeing = [q for q in queries if expected[q].count == pg_found[q][0]]
    facets_same = sum(expected[q].facets == pg_found[q][1] for q in agreeing)
    index_kind = (
        "pg_trgm GIN indexes on the searched text and on the title"
        if ref.trigram
        else "no index on the text (pg_trgm is not available): sequential ILIKE scans"
    )
    return [
        f"{len(refs):,} public datasets: the city home's {layers} layer datasets plus the "
        "real agency catalog exports ingested with `geoportal ingest` into a copy of it "
        f"({per_file}; {imported.get('stored', {}).get('created', '?')} created, "
        f"{imported.get('organizations', '?')} organizations). {grouped} datasets are in a "
        "group (none of the sources assigns groups), so the `groups` facet is empty.",
        f"Each search: `package_search` with `facet.field={json.dumps(list(SEARCH_FACETS))}`, "
        f"`facet.limit={SEARCH_FACET_LIMIT}`, `rows={SEARCH_ROWS}`; {len(queries)} searches "
        f"({', '.join(q.label for q in queries)}), the list asked {SEARCH_CYCLES} times per "
        f"pass ({len(queries) * SEARCH_CYCLES} requests), {args.repeat} passes per engine and "
        "mode alternating, after an untimed check pass and a warm-up. Rows give the median "
        "of the passes' p50 and the p50/p95/p99 of the median pass; `geoportal serve` with "
        f"{SERVER_WORKERS} uvicorn workers, the client (http.client, keep-alive, gzip) on "
        "the same cores.",
        f"HTTP answers equal to the in-process SearchIndex (count and facets): {same_http} of "
        f"{len(queries)} searches.",
        f"Reference: PostgreSQL {ref.version} at 127.0.0.1 (the machine's own), loaded from "
        f"the same public datasets ({load_s:.1f} s: tables of datasets, tags, groups and "
        f"formats, {index_kind}), driven from Python with psycopg {_psycopg_version()}, one "
        "statement per search: every word ILIKE `%word%` over title, English title, notes, "
        "tags and organization title, facets as GROUP BY counts over the matches, the page "
        "title matches first. It is a database-side figure (no HTTP, no JSON of the datasets "
        "beyond name/title/notes): compare it with the in-process SearchIndex row, not with "
        "the HTTP rows. pg_trgm needs three characters to use its index, so the two-character "
        "Chinese words (公車, 人口 …) scan the whole index (PostgreSQL's GIN full-scan path).",
        f"Matches (ours vs PostgreSQL): {counts}. They differ by design: ours matches every "
        "character bigram of a Chinese word anywhere in a dataset's text (停車 and 車場 in "
        "different places, 台 = 臺, full width = half width) and Latin words by their "
        "beginning in more fields (resource names, extras, category, formats), PostgreSQL a "
        "literal substring (a Latin word inside longer words too) in fewer fields. Where "
        f"the counts agree ({len(agreeing)} searches), the facets agree in {facets_same}. "
        "The organization filters (semantics the same) agree: "
        + ", ".join(f"{q.fq} {expected[q].count} vs {pg_found[q][0]}" for q in same_orgs)
        + ".",
        "Same semantics, same answer — the term as a substring of the title (ours "
        f'`q=title:"term"`, a phrase of adjacent bigrams; PostgreSQL `title ILIKE %term%`): '
        f"{agree}.",
    ]


def _psycopg_version() -> str:
    import psycopg

    return psycopg.__version__


def first_answer(
    url: str, proc: subprocess.Popen, started: float, wait: float = COLD_WAIT
) -> float:
    """Seconds from ``started`` (perf_counter) until ``url`` first answers 200.

    Refused connections and other statuses (a server still starting) are retried every
    COLD_POLL seconds; once connected, the answer is waited for.

    Raises:
        RuntimeError: the process exited, or no 200 within ``wait`` seconds.
    """
    import urllib.error

    deadline = started + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(deadline - time.perf_counter(), 1)) as r:
                r.read()
                if r.status == 200:
                    return time.perf_counter() - started
        except urllib.error.HTTPError:
            pass
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before {url} answered")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {wait} s")
        time.sleep(COLD_POLL)


def _geoportal_command(home: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """`geoportal serve` on ``port`` with SERVER_WORKERS workers, no access log."""
    env = {
        **os.environ,
        "GEOPORTAL_WORKERS": str(SERVER_WORKERS),
        "GEOPORTAL_LOG_LEVEL": "warning",
    }
    return [*GEOPORTAL, "serve", "--port", str(port), "--home", str(home)], env


def _stock_command(python: Path, conf: Path, oas: Path) -> tuple[list[str], dict[str, str], str]:
    """Stock pygeoapi under uvicorn as _stock_server runs it: (command, environment, root URL)."""
    import yaml

    root = yaml.safe_load(conf.read_text(encoding="utf-8"))["server"]["url"]
    port = urllib.parse.urlsplit(root).port
    cmd = [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(SERVER_WORKERS)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    return cmd, _stock_env(conf, oas), root


def _cold(cmd: list[str], env: dict, url: str, log: Path) -> tuple[float, bytes]:
    """Start a server, time its first 200 for ``url``; (seconds, that answer's body)."""
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        seconds = first_answer(url, proc, started)
        with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT) as r:
            return seconds, r.read()
    finally:
        _stop_group(proc)


@figure
def serve_cold_start(args: argparse.Namespace) -> dict:
    """`geoportal serve` cold start to first response with 574 layers vs stock pygeoapi."""
    from portal.ckan.store import sync

    home = _city_home()
    sync(home)  # the layer datasets as the first request would write them: not timed
    work = WORK / "serve-cold-start"
    python = _stock_pygeoapi()
    root = f"http://127.0.0.1:{_free_port()}"
    conf, oas = _stock_openapi(python, stock_config(_ogc_config(home, root), root), work)
    stock_cmd, stock_env, stock_root = _stock_command(python, conf, oas)
    search = "/api/3/action/package_search?" + urllib.parse.urlencode({"q": "停車場"})

    def ours(path: str) -> tuple[list[str], dict, str]:
        port = _free_port()
        cmd, env = _geoportal_command(home, port)
        return cmd, env, f"http://127.0.0.1:{port}{path}"

    starts = {
        "geoportal serve → first `/ogc/collections?f=json`": lambda: ours(
            "/ogc" + COLLECTIONS_PATH
        ),
        "geoportal serve → first `package_search?q=停車場`": lambda: ours(search),
        "stock pygeoapi → first `/collections?f=json` (reference)": lambda: (
            stock_cmd,
            stock_env,
            stock_root + COLLECTIONS_PATH,
        ),
    }
    load_start = _load_now()
    for start in starts.values():  # untimed: the files into the page cache
        cmd, env, url = start()
        _cold(cmd, env, url, work / "warm.log")
    times: dict[str, list[float]] = {name: [] for name in starts}
    bodies: dict[str, bytes] = {}
    for _ in range(args.repeat):
        for name, start in starts.items():
            cmd, env, url = start()
            seconds, bodies[name] = _cold(cmd, env, url, work / "cold.log")
            times[name].append(seconds)
            print(f"   {name}: {seconds:.2f} s", file=sys.stderr)
    rows = [_time_row(name, runs) for name, runs in times.items()]
    docs = {
        name: json.loads(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b)
        for name, b in bodies.items()
    }
    names = list(starts)
    n_ours = len(docs[names[0]]["collections"])
    n_ref = len(docs[names[2]]["collections"])
    found = docs[names[1]]["result"]["count"]
    ratio = rows[0]["median_s"] / rows[2]["median_s"]
    return {
        "title": "`geoportal serve` cold start to first response with the city's layers (s)",
        "rows": rows,
        "notes": [
            f"Time from starting the process to the first 200 answer of the URL (polled every "
            f"{COLD_POLL * 1000:.0f} ms; a request that connects waits for its answer), each "
            f"server started afresh with {SERVER_WORKERS} uvicorn workers, median of "
            f"{args.repeat} starts per row, after one untimed start of each (files in the "
            "page cache; the portal's layer datasets already synced, as after any first "
            "start).",
            f"geoportal answered {n_ours} collections and {found} datasets for 停車場; stock "
            f"pygeoapi {n_ref} collections (every layer, minus geoportal's records catalog, "
            "same metadata; OGR/rasterio providers, configuration and OpenAPI document "
            "generated beforehand, untimed). geoportal / pygeoapi to the first collections "
            f"answer = {ratio:.2f}.",
            STOCK_WHY.format(versions=_stock_versions(python), pygeoapi=_pygeoapi_version()),
            SHARED_MACHINE.format(cores=os.cpu_count(), start=load_start, end=_load_now()),
        ],
    }


def machine() -> dict:
    """The machine and versions the figures ran on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import pyogrio
    import rasterio

    from geoportal import __version__

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "geoportal": __version__,
        "gdal (pyogrio)": pyogrio.__gdal_version_string__,
        "rasterio": rasterio.__version__,
    }


def render(results: dict) -> str:
    """docs/benchmarks.md from the stored results."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `./scripts/bench` — do not edit by hand. Every figure runs beside its",
        "reference in the same run on the same machine; re-run a figure with",
        "`./scripts/bench FIGURE` (`./scripts/bench --list` names them).",
        "",
    ]
    for name, r in sorted(results.items()):
        lines += [f"## {r['title']}", "", f"Figure `{name}`, run {r['when']}.", ""]
        m = r["machine"]
        lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in m.items()) + ".")
        lines += ["", *_table(r), ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


LATENCIES = (
    ("p50_ms", "p50 latency (ms)"),
    ("p95_ms", "p95 latency (ms)"),
    ("p99_ms", "p99 latency (ms)"),
)


def _table(record: dict) -> list[str]:
    """A figure's rows as a Markdown table: medians and runs in its unit (default seconds).

    Timed figures' rows hold ``median_s``/``runs_s``; figures with a ``unit`` (req/s) hold
    ``median``/``runs`` and, for servers under load, the latencies of the median run.
    """
    unit = record.get("unit", "s")
    suffix = "" if "unit" in record else "_s"
    extra = [(k, h) for k, h in LATENCIES if any(k in row for row in record["rows"])]
    head = f"| what | median ({unit}) | runs ({unit}) |" + "".join(f" {h} |" for _, h in extra)
    lines = [head, "|---|---:|---|" + "---:|" * len(extra)]
    for row in record["rows"]:
        runs = ", ".join(str(x) for x in row[f"runs{suffix}"])
        cells = "".join(f" {row.get(k, '')} |" for k, _ in extra)
        lines.append(f"| {row['what']} | {row[f'median{suffix}']} | {runs} |{cells}")
    return lines


def main() -> None:
    """Run the chosen figures (all by default) and rewrite docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figures", nargs="*", help="figures to run (default: all)")
    parser.add_argument(
        "--repeat",
        type=int,
        help="runs per measurement (default 3; tiles-city runs once unless this is given)",
    )
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args()
    args.explicit_repeat = args.repeat
    args.repeat = args.repeat or 3
    if args.list:
        for name, fn in FIGURES.items():
            print(f"{name}: {fn.__doc__}")
        return
    unknown = [f for f in args.figures if f not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    WORK.mkdir(exist_ok=True)
    try:
        for name in args.figures or list(FIGURES):
            print(f"== {name}", file=sys.stderr)
            try:
                record = FIGURES[name](args)
            except FigureSkipped as e:
                print(f"   skipped: {name} {e}", file=sys.stderr)
                continue
            record["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            record["machine"] = machine()
            if RESULTS.exists():  # another run may have written figures meanwhile: keep them
                results = {**json.loads(RESULTS.read_text()), **results}
            results[name] = record
            RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    finally:
        for path in WORK.iterdir():
            if path not in (CACHE, SAMPLES):
                shutil.rmtree(path, ignore_errors=True)
    REPORT.write_text(render(results), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
