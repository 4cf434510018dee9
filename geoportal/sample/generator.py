"""`geoportal sample`: plan the corpus, build every source (in parallel), write the truth.

The output folder holds the agency files, ``layers.yaml`` (the SPEC manifest), an agency
supply list ``供應清單.csv`` and ``expected.json``. It is written to a sibling temporary folder
and renamed into place at the end, so a failed or interrupted run never leaves half a corpus.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from geoportal.sample import corpus as cp
from geoportal.sample import generic, names, styles
from geoportal.sample.city import CityModel, rng_for
from geoportal.sample.formats import write_csv

GENERATOR_VERSION = 1
DEFAULTS = {"license": "OGDL-Taiwan-1.0", "agency": names.agency_full("都市發展局")}
SCALES = {"small": 40, "city": 574}


class SampleError(Exception):
    """The corpus cannot be written (bad arguments, or an output folder that is not a corpus)."""


@dataclass(frozen=True)
class SampleResult:
    """What a run produced."""

    out: Path
    scale: str
    seed: int
    entries: int
    layers: int
    files: int
    bytes: int
    seconds: float


def plan(scale: str, layers: int | None, seed: int) -> list[cp.Task]:
    """The tasks of a corpus: the showcase first, then generic layers up to the entry count."""
    if scale not in SCALES:
        raise SampleError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}")
    target = SCALES[scale] if layers is None else layers
    if target < 1:
        raise SampleError(f"--layers must be at least 1, not {target}")
    tasks: list[cp.Task] = []
    count = 0
    for t in cp.SHOWCASE:
        k = cp.SHOWCASE_ENTRIES.get(t.id, 1)
        if count + k > target:
            break
        tasks.append(t)
        count += k
    used = {t.id for t in cp.SHOWCASE} | {
        "heritage-monuments",
        "heritage-historic-buildings",
        "heritage-cultural-landscapes",
        "pumping-stations",
        "flood-potential",
        "rain-gauges",
    }
    pool = generic.candidates()
    order = rng_for(seed, "plan").permutation(len(pool))
    for i in order:
        if count >= target:
            break
        t = pool[int(i)]
        # "<id>-<n>" is reserved for the sublayers of a multi-layer entry (SPEC): a clashing
        # theme id gets a letter suffix instead ("industrial-parks-b").
        tid, k = t.id, 1
        while tid in used or (re.fullmatch(r".*-\d{1,2}", tid) and tid.rsplit("-", 1)[0] in used):
            tid, k = f"{t.id}-{'abcdefghijklmnopqrstuvwxyz'[k]}", k + 1
        used.add(tid)
        tasks.append(cp.Task(t.builder, tid, t.params))
        count += 1
    if count < target:
        raise SampleError(f"--layers {target} is more than the {count} layers the corpus knows")
    return tasks


_CTX: cp.Context | None = None


def _init_worker(out: str, seed: int, scale: str) -> None:
    global _CTX
    _CTX = cp.Context(Path(out), seed, scale, CityModel(seed))


def _run_task(task: cp.Task) -> tuple[str, list[cp.Entry]]:
    assert _CTX is not None
    return task.id, cp.BUILDERS[task.builder](_CTX, task)


def _cost(task: cp.Task) -> int:
    """Rough relative cost, to start the big sources first."""
    return {
        "addresses_csv": 100,
        "buildings_zip": 90,
        "roads_zip": 30,
        "dem_float32": 20,
        "dem_float64_custom_wkt": 10,
        "orthophoto_rgb": 10,
    }.get(task.builder, 1)


def generate(
    out: Path,
    *,
    scale: str = "small",
    layers: int | None = None,
    seed: int = 20231,
    jobs: int = 0,
    progress: Callable[[str], None] | None = None,
) -> SampleResult:
    """Write a synthetic Taichung-like agency corpus to ``out``.

    Args:
        out: output folder; replaced if it holds an earlier corpus, refused if it holds
            anything else.
        scale: "small" (~40 entries, seconds) or "city" (574 entries incl. the big layers).
        layers: number of manifest entries instead of the scale's default.
        seed: the corpus is a pure function of (scale, layers, seed).
        jobs: worker processes (0 = one per core).
        progress: called with each finished task id.

    Returns:
        A summary of what was written.
    """
    start = time.perf_counter()
    out = Path(out)
    _check_out(out)
    tasks = plan(scale, layers, seed)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        results = _build_all(tmp, tasks, seed, scale, jobs, progress)
        styles.apply(tasks, results)
        entries = [e for t in tasks for e in results[t.id]]
        shutil.rmtree(tmp / ".scratch", ignore_errors=True)
        styles.write_files(tmp, entries)
        _write_manifest(tmp, entries, scale, seed)
        supply = _write_supply_list(tmp, entries, seed)
        _write_expected(tmp, entries, scale, seed, supply)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = [p for p in out.rglob("*") if p.is_file()]
    return SampleResult(
        out=out,
        scale=scale,
        seed=seed,
        entries=len(entries),
        layers=sum(len(e.expected) for e in entries),
        files=len(files),
        bytes=sum(p.stat().st_size for p in files),
        seconds=time.perf_counter() - start,
    )


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SampleError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "expected.json").exists():
        raise SampleError(
            f"{out} is not empty and holds no earlier corpus (no expected.json): "
            "choose an empty or new folder"
        )


def _build_all(
    tmp: Path,
    tasks: list[cp.Task],
    seed: int,
    scale: str,
    jobs: int,
    progress: Callable[[str], None] | None,
) -> dict[str, list[cp.Entry]]:
    jobs = jobs or os.cpu_count() or 1
    ordered = sorted(tasks, key=_cost, reverse=True)
    results: dict[str, list[cp.Entry]] = {}
    if jobs == 1:
        _init_worker(str(tmp), seed, scale)
        for t in ordered:
            tid, entries = _run_task(t)
            results[tid] = entries
            if progress:
                progress(tid)
        return results
    # forkserver, not fork: forking a process that runs GDAL/BLAS threads can deadlock.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(str(tmp), seed, scale)
    ) as pool:
        for tid, entries in pool.map(_run_task, ordered, chunksize=1):
            results[tid] = entries
            if progress:
                progress(tid)
    return results


class _ManifestDumper(yaml.SafeDumper):
    """Writes lists of plain values (keywords, colours) inline, as people write manifests."""

    def ignore_aliases(self, data) -> bool:
        """Never write YAML anchors: each entry spells out its own style."""
        return True


_ManifestDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq",
        data,
        flow_style=all(isinstance(v, str | int | float) for v in data),
    ),
)


def _write_manifest(out: Path, entries: list[cp.Entry], scale: str, seed: int) -> None:
    doc = {"defaults": DEFAULTS, "layers": [e.manifest(DEFAULTS) for e in entries]}
    header = (
        f"# geoportal sample corpus (scale={scale}, seed={seed}): {len(entries)} entries.\n"
        "# Written by `geoportal sample`; the truth about every layer is in expected.json.\n"
    )
    text = yaml.dump(doc, Dumper=_ManifestDumper, allow_unicode=True, sort_keys=False, width=120)
    (out / "layers.yaml").write_text(header + text, encoding="utf-8")


SUPPLY_HEADER = [
    "資料集名稱",
    "資料集提供機關",
    "服務分類",
    "更新頻率",
    "檔案位置",
    "圖層",
    "坐標系統",
    "編碼格式",
    "資料集描述",
    "關鍵字",
]


def _write_supply_list(out: Path, entries: list[cp.Entry], seed: int) -> dict:
    """An agency supply list (供應清單) in the shape agencies fill it in, for a few entries."""
    rng = rng_for(seed, "supply-list")
    chosen = [e for e in entries if e.expected[0].outcome == "ok"][:: max(1, len(entries) // 12)]
    rows, truth = [], []
    crs_text = {
        "EPSG:3826": "TWD97 TM2 121分帶",
        "EPSG:4326": "WGS84",
        "EPSG:3828": "TWD67 TM2",
        "EPSG:3824": "TWD97經緯度",
        "EPSG:3825": "TWD97 TM2 119分帶",
        "EPSG:3857": "Web Mercator",
    }
    for e in chosen:
        freq = e.meta.update_frequency
        if freq == "不定期" and rng.random() < 0.5:
            freq = "不定時"
        exp = e.expected[0]
        rows.append(
            [
                e.meta.title,
                names.agency_full(e.meta.agency),
                e.meta.category,
                freq,
                e.source,
                e.layer or "",
                crs_text.get(exp.crs, ""),
                (exp.encoding or "").upper(),
                e.meta.description.replace("，", "，\r\n", 1),
                "、".join(e.meta.keywords),
            ]
        )
        truth.append(
            {
                "title": e.meta.title,
                "source": e.source,
                "layer": e.layer,
                "entry_id": e.id,
                "update_frequency": freq,
            }
        )
    write_csv(out / "供應清單.csv", [SUPPLY_HEADER], rows, bom=True)
    return {"path": "供應清單.csv", "rows": truth}


def _write_expected(
    out: Path, entries: list[cp.Entry], scale: str, seed: int, supply: dict
) -> None:
    layers = {
        x.id: x.to_json() | {"entry": e.id, "source": e.source} for e in entries for x in e.expected
    }
    mess: dict[str, list[str]] = {k: [] for k in cp.MESS_CLASSES}
    for lid, x in layers.items():
        for m in x.get("mess", []):
            mess[m].append(lid)
    doc = {
        "generator": {
            "name": "geoportal sample",
            "version": GENERATOR_VERSION,
            "scale": scale,
            "seed": seed,
        },
        "entries": [
            {"id": e.id, "source": e.source, "layer": e.layer, "yields": [x.id for x in e.expected]}
            for e in entries
        ],
        "layers": layers,
        "mess_classes": {k: {"what": cp.MESS_CLASSES[k], "layers": v} for k, v in mess.items()},
        "supply_list": supply,
    }
    (out / "expected.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=1, default=_json_default), encoding="utf-8"
    )


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
