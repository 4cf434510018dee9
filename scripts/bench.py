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
