"""`geoportal ingest`: specs in, versions published, a report out.

Each manifest entry runs in a worker process: resolve its source, read and normalise every
unit, write each version file atomically. The parent publishes the versions into the catalog
(one writer, one transaction per layer), so a failed or interrupted layer never touches the
layer's current version, and a bad layer never stops the others.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.errors import CatalogError, LayerNotFound
from catalog.model import (
    Agency,
    Decision,
    IngestEntry,
    Layer,
    LayerVersion,
    Lineage,
    Repair,
)
from ingest import store
from ingest.errors import SourceRefused
from ingest.model import LayerSpec, NormalizedLayer
from ingest.normalise import normalise_unit
from ingest.readers import ReadOptions
from ingest.sources import resolve, select, source_files, source_hash

if TYPE_CHECKING:
    from catalog.db import Catalog

PIPELINE_VERSION = "2"  # bump when normalisation changes, so unchanged sources are re-read


@dataclass
class LayerReport:
    """The outcome for one catalog layer (or for an entry that failed before having layers)."""

    id: str
    status: str  # "published", "unchanged", "refused", "failed"
    entry: str
    version: str = ""
    kind: str = ""
    features_in: int = 0
    features_out: int = 0
    crs: Decision | None = None
    encoding: Decision | None = None
    repairs: list[Repair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    message: str = ""
    sublayer: str = ""
    detail: str = ""  # a traceback for "failed", for bug reports; not shown in the table

    @property
    def ok(self) -> bool:
        """Whether this layer succeeded, was unchanged, or was retired with its source."""
        return self.status in ("published", "unchanged", "removed")

    @classmethod
    def refused(cls, layer_id: str, entry: str, error: SourceRefused) -> LayerReport:
        """A layer (or entry) refused, with the refusal's reason and message."""
        return cls(layer_id, "refused", entry, reason=error.reason, message=str(error))

    @classmethod
    def failed(cls, spec: LayerSpec, error: BaseException, detail: str = "") -> LayerReport:
        """An entry that failed unexpectedly (a bug or a dead worker), named by its origin."""
        return cls(
            spec.id,
            "failed",
            spec.id,
            reason=type(error).__name__,
            message=f"{spec.origin}: unexpected error {type(error).__name__}: {error} "
            "(please report it with the detail)",
            detail=detail,
        )


@dataclass
class _Built:
    """A version written by a worker, waiting to be published by the parent."""

    layer_id: str
    title: str
    version: LayerVersion
    report: LayerReport


def read_source(
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    x: str | None = None,
    y: str | None = None,
    work: Path | None = None,
) -> list[NormalizedLayer]:
    """Read any source (file, folder, zip) the way ingest does, without publishing it.

    Returns one NormalizedLayer per unit (sublayer), in source order. Extracted archives and
    converted rasters go to ``work`` (a new temporary folder if None; the caller removes it).

    Raises:
        SourceRefused: the source (or one of its units) cannot be ingested as it is.
    """
    path = Path(path).resolve()
    spec = LayerSpec(
        id="source",
        title=path.name,
        source=path.name,
        base=path.parent,
        origin=str(path),
        layer=layer,
        crs=crs,
        encoding=encoding,
        x=x,
        y=y,
    )
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="geoportal-read-"))
    units = select(resolve(spec, work), spec)
    return [
        normalise_unit(u, _options(spec, u.display), work / f"unit-{i}")
        for i, u in enumerate(units)
    ]


def _options(spec: LayerSpec, display: str) -> ReadOptions:
    return ReadOptions(display=display, encoding=spec.encoding, crs=spec.crs, x=spec.x, y=spec.y)


def layer_ids(spec: LayerSpec, n_units: int) -> list[str]:
    """Catalog ids an entry yields: its id, or ``<id>-<n>`` per sublayer when there are several."""
    return [spec.id] if n_units == 1 else [f"{spec.id}-{i}" for i in range(1, n_units + 1)]


def _build_entry(spec: LayerSpec, home: Path, shash: str) -> list[_Built | LayerReport]:
    """Worker: resolve, normalise and store every unit of one entry."""
    work = home / "tmp" / f"ingest-{os.getpid()}-{re.sub(r'[^a-z0-9-]', '', spec.id)}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        units = select(resolve(spec, work), spec)
        out: list[_Built | LayerReport] = []
        for lid, unit in zip(layer_ids(spec, len(units)), units, strict=True):
            try:
                out.append(_build_unit(spec, home, shash, lid, unit, work, len(units) > 1))
            except Exception as e:  # one bad unit must not take its siblings down
                report = LayerReport.failed(spec, e, traceback.format_exc(limit=5))
                report.id, report.sublayer = lid, unit.name
                out.append(report)
        return out
    except SourceRefused as e:
        return [LayerReport.refused(spec.id, spec.id, e)]
    except Exception as e:  # one bad entry must never stop the others
        return [LayerReport.failed(spec, e, traceback.format_exc(limit=5))]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_unit(
    spec: LayerSpec, home: Path, shash: str, lid: str, unit, work: Path, several: bool
) -> _Built | LayerReport:
    try:
        nl = normalise_unit(unit, _options(spec, unit.display), work / f"unit-{lid}")
    except SourceRefused as e:
        report = LayerReport.refused(lid, spec.id, e)
        report.sublayer = unit.name
        return report
    stored = store.write_version(home, lid, nl)
    lineage = Lineage(
        source=unit.display,
        sublayer=unit.sublayer,
        source_hash=shash,
        reader=unit.reader.name,
        decisions=tuple(nl.decisions),
        repairs=tuple(nl.repairs),
        warnings=tuple(nl.warnings),
    )
    version = LayerVersion(
        layer_id=lid,
        version=stored.version,
        created=datetime.now(UTC),
        kind=nl.kind,
        path=stored.path,
        geometry_type=nl.geometry_type,
        feature_count=nl.features_out,
        bbox=stored.bbox,
        source_crs=nl.source_crs or "",
        fields=stored.fields,
        lineage=lineage,
        size_bytes=stored.size_bytes,
    )
    report = LayerReport(
        lid,
        "published",
        spec.id,
        version=stored.version,
        kind=nl.kind,
        features_in=nl.features_in,
        features_out=nl.features_out,
        crs=nl.decision("crs"),
        encoding=nl.decision("encoding"),
        repairs=list(nl.repairs),
        warnings=list(nl.warnings),
        sublayer=unit.name,
    )
    return _Built(lid, _title(spec, unit.name, several), version, report)


_HOME: Path | None = None


def _init(home: str) -> None:
    global _HOME
    _HOME = Path(home)


def _run(args: tuple[LayerSpec, str]) -> list[_Built | LayerReport]:
    spec, shash = args
    assert _HOME is not None
    return _build_entry(spec, _HOME, shash)


@dataclass
class IngestRun:
    """Everything one `geoportal ingest` did."""

    reports: list[LayerReport]

    @property
    def ok(self) -> bool:
        """Whether every layer succeeded or was unchanged."""
        return all(r.ok for r in self.reports)


def ingest(
    specs: list[LayerSpec],
    home: Path,
    catalog: Catalog,
    *,
    jobs: int = 0,
    keep_versions: int = 5,
    agency_slug: Callable[[str], str],
    progress: Callable[[str], None] | None = None,
) -> IngestRun:
    """Ingest ``specs`` into ``catalog``, publishing changed layers; see the module docstring."""
    store.clean_partial(home)
    run = _Run(catalog, home, keep_versions, agency_slug)
    pending: list[tuple[LayerSpec, str]] = []
    keys: dict[str, str] = {}
    for spec in specs:
        try:
            key = keys[spec.id] = f"{source_hash(spec)}:{PIPELINE_VERSION}"
        except SourceRefused as e:
            run.reports.append(LayerReport.refused(spec.id, spec.id, e))
            continue
        if run.unchanged(spec, key):
            if progress:
                progress(spec.id)
        else:
            pending.append((spec, key))
    # Entries build in any order but publish in manifest order (as soon as every earlier
    # entry has published), so which entry keeps a contested layer id never depends on timing.
    order = {spec.id: i for i, spec in enumerate(specs)}
    waiting: dict[int, tuple[LayerSpec, list]] = {}
    queue = sorted(order[spec.id] for spec, _ in pending)
    for spec, results in _map(pending, home, jobs):
        waiting[order[spec.id]] = (spec, results)
        while queue and queue[0] in waiting:
            done_spec, done_results = waiting.pop(queue.pop(0))
            run.publish(done_spec, keys[done_spec.id], done_results)
        if progress:
            progress(spec.id)
    run.reports.sort(key=lambda r: order.get(r.entry, len(order)))  # stable: units keep order
    return IngestRun(run.reports)


def _title(spec: LayerSpec, name: str, several: bool) -> str:
    return f"{spec.title}（{name}）" if several else spec.title


class _Run:
    """The parent's side of one ingest: unchanged checks, publication, the entries' record."""

    def __init__(
        self, catalog: Catalog, home: Path, keep: int, agency_slug: Callable[[str], str]
    ) -> None:
        self.catalog, self.home, self.keep, self.agency_slug = catalog, home, keep, agency_slug
        self.reports: list[LayerReport] = []
        self.claimed: dict[str, str] = {}  # layer id → entry id, for this run

    def unchanged(self, spec: LayerSpec, key: str) -> bool:
        """Report an entry as unchanged if its source, options and results are as recorded.

        URLs are always fetched again (a same-content download is still reported unchanged).
        """
        if spec.source.startswith(("http://", "https://")):
            return False
        state = self.catalog.entry(spec.id)
        if state is None or state.source_hash != key or not state.complete:
            return False
        currents = [self.catalog.current(lid) for lid, _ in state.units]
        if any(v is None for v in currents) or any(lid in self.claimed for lid, _ in state.units):
            return False
        several = len(state.units) > 1
        for (lid, name), v in zip(state.units, currents, strict=True):
            self._upsert(spec, lid, _title(spec, name, several))
            self.claimed[lid] = spec.id
            self.reports.append(
                LayerReport(
                    lid,
                    "unchanged",
                    spec.id,
                    version=v.version,
                    kind=v.kind,
                    features_out=v.feature_count,
                    sublayer=name,
                )
            )
        return True

    def publish(self, spec: LayerSpec, key: str, results: list) -> None:
        """Publish an entry's versions, record what it yielded, retire what it no longer does."""
        units: list[tuple[str, str]] = []
        complete = True
        for item in results:
            report = item if isinstance(item, LayerReport) else self._publish_one(spec, item)
            self.reports.append(report)
            complete &= report.ok
            if report.status != "refused" or report.id != spec.id or len(results) > 1:
                units.append((report.id, report.sublayer))
        if not any(r.ok for r in self.reports if r.entry == spec.id):
            return  # nothing of the entry got through: keep its old record and layers
        previous = self.catalog.entry(spec.id)
        self.catalog.record_entry(
            IngestEntry(spec.id, key, tuple(units), complete, datetime.now(UTC))
        )
        if previous is not None:
            self._retire(spec, {lid for lid, _ in previous.units} - {lid for lid, _ in units})

    def _publish_one(self, spec: LayerSpec, item: _Built) -> LayerReport:
        lid, report = item.layer_id, item.report
        owner = self.claimed.get(lid)
        if owner is not None and owner != spec.id:
            self._discard(item.version)
            return LayerReport(
                lid,
                "refused",
                spec.id,
                reason="id-collision",
                sublayer=report.sublayer,
                message=f"{spec.origin}: layer id {lid!r} is already the id of "
                f"entry {owner!r}'s layer — rename one of the two entries",
            )
        self.claimed[lid] = spec.id
        try:
            self._upsert(spec, lid, item.title)
            current = self.catalog.current(lid)
            if current is not None and current.version == item.version.version:
                report.status = "unchanged"  # a new source that yields the same data
                return report
            pruned = self.catalog.publish_version(item.version, keep=self.keep)
        except CatalogError as e:
            report.status, report.message = "failed", str(e)
            return report
        for old in pruned:
            store.remove_version_file(self.home, old.path)
        return report

    def _discard(self, version: LayerVersion) -> None:
        """Delete a built file that will not be published, unless a catalog version uses it."""
        try:
            used = {v.path for v in self.catalog.versions(version.layer_id)}
        except LayerNotFound:
            used = set()
        if version.path not in used:
            store.remove_version_file(self.home, version.path)

    def _retire(self, spec: LayerSpec, stale: set[str]) -> None:
        """Remove layers an entry used to yield and no longer does (a sublayer that went)."""
        for lid in sorted(stale - set(self.claimed)):
            try:
                removed = self.catalog.delete_layer(lid)
            except LayerNotFound:
                continue
            for v in removed:
                store.remove_version_file(self.home, v.path)
            self.reports.append(
                LayerReport(
                    lid,
                    "removed",
                    spec.id,
                    message=f"{spec.origin}: the source no longer holds this layer; removed",
                )
            )

    def _upsert(self, spec: LayerSpec, lid: str, title: str) -> None:
        self.catalog.upsert_layer(
            Layer(
                id=lid,
                title=title,
                agency=Agency(self.agency_slug(spec.agency), spec.agency),
                title_en=spec.title_en,
                description=spec.description,
                category=spec.category,
                keywords=spec.keywords,
                license=spec.license or "OGDL-Taiwan-1.0",
                update_frequency=spec.update_frequency,
                style=spec.style,
                tileset=spec.tileset,
            )
        )


def _source_size(spec: LayerSpec) -> int:
    try:
        return sum(f.stat().st_size for p in source_files(spec) for f in _files(p))
    except (OSError, SourceRefused):
        return 0


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]


def _map(pending: list[tuple[LayerSpec, str]], home: Path, jobs: int):
    """Run the entries (largest sources first, for balance); yield results as they finish."""
    jobs = min(jobs or os.cpu_count() or 1, max(1, len(pending)))
    pending = sorted(pending, key=lambda item: _source_size(item[0]), reverse=True)
    if jobs == 1:
        _init(str(home))
        for item in pending:
            yield item[0], _run(item)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init, initargs=(str(home),)
    ) as pool:
        futures = {pool.submit(_run, item): item[0] for item in pending}
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                yield spec, fut.result()
            except Exception as e:  # a worker that died (e.g. out of memory)
                yield spec, [LayerReport.failed(spec, e, " (the worker process failed)")]
