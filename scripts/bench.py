"""Benchmarks: each figure is measured beside its reference in the same run on this machine.

Results are kept in docs/benchmarks.json (one record per figure, replaced when the figure is
run again) and rendered into docs/benchmarks.md with the machine and versions they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench-work"
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


def _city_corpus() -> Path:
    """The city corpus, generated once per bench run."""
    out = WORK / "city"
    if not (out / "expected.json").exists():
        subprocess.run(
            [*GEOPORTAL, "sample", "--scale", "city", "--out", str(out), "--json"],
            check=True,
            capture_output=True,
        )
    return out


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
        lines += ["", "| what | median (s) | runs (s) |", "|---|---:|---|"]
        for row in r["rows"]:
            runs = ", ".join(str(x) for x in row["runs_s"])
            lines.append(f"| {row['what']} | {row['median_s']} | {runs} |")
        lines += [""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


def main() -> None:
    """Run the chosen figures (all by default) and rewrite docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figures", nargs="*", help="figures to run (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args()
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
            record = FIGURES[name](args)
            record["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            record["machine"] = machine()
            results[name] = record
            RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    REPORT.write_text(render(results), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
