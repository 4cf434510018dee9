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
from catalog.model import Agency, Decision, Layer, LayerVersion, Lineage, Repair
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

    @property
    def ok(self) -> bool:
        """Whether this layer succeeded or was unchanged."""
        return self.status in ("published", "unchanged")

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
            message=f"{spec.origin}: {error}{detail}",
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
            out.append(_build_unit(spec, home, shash, lid, unit, work, len(units) > 1))
        return out
    except SourceRefused as e:
        return [LayerReport.refused(spec.id, spec.id, e)]
    except Exception as e:  # one bad entry must never stop the others
        return [LayerReport.failed(spec, e, "\n" + traceback.format_exc(limit=3))]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_unit(
    spec: LayerSpec, home: Path, shash: str, lid: str, unit, work: Path, several: bool
) -> _Built | LayerReport:
    try:
        nl = normalise_unit(unit, _options(spec, unit.display), work / f"unit-{lid}")
    except SourceRefused as e:
        return LayerReport.refused(lid, spec.id, e)
    stored = store.write_version(home, lid, nl)
    lineage = Lineage(
        source=unit.display,
        sublayer=unit.sublayer,
        source_hash=f"{shash}:{PIPELINE_VERSION}",
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
    )
    title = f"{spec.title}（{unit.name}）" if several else spec.title
    return _Built(lid, title, version, report)


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
    reports: list[LayerReport] = []
    todo: list[tuple[LayerSpec, str]] = []
    known = {layer.id for layer in catalog.layers()}
    for spec in specs:
        try:
            shash = source_hash(spec)
        except SourceRefused as e:
            reports.append(LayerReport.refused(spec.id, spec.id, e))
            continue
        unchanged = _unchanged(catalog, spec, shash, known)
        if unchanged:
            reports += unchanged
            _upsert(catalog, spec, agency_slug, [(r.id, None) for r in unchanged])
            if progress:
                progress(spec.id)
        else:
            todo.append((spec, shash))
    for spec, results in _map(todo, home, jobs):
        reports += _publish(catalog, home, spec, results, keep_versions, agency_slug)
        if progress:
            progress(spec.id)
    order = {spec.id: i for i, spec in enumerate(specs)}
    reports.sort(key=lambda r: order.get(r.entry, len(order)))  # stable: units keep their order
    return IngestRun(reports)


def _source_size(spec: LayerSpec) -> int:
    try:
        return sum(f.stat().st_size for p in source_files(spec) for f in _files(p))
    except (OSError, SourceRefused):
        return 0


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]


def _map(todo: list[tuple[LayerSpec, str]], home: Path, jobs: int):
    """Run the entries (largest sources first, for balance); yield results as they finish."""
    jobs = min(jobs or os.cpu_count() or 1, max(1, len(todo)))
    todo = sorted(todo, key=lambda item: _source_size(item[0]), reverse=True)
    if jobs == 1:
        _init(str(home))
        for item in todo:
            yield item[0], _run(item)
        return
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init, initargs=(str(home),)
    ) as pool:
        futures = {pool.submit(_run, item): item[0] for item in todo}
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                yield spec, fut.result()
            except Exception as e:  # a worker that died (e.g. out of memory)
                yield spec, [LayerReport.failed(spec, e, " (the worker process failed)")]


def _unchanged(catalog: Catalog, spec: LayerSpec, shash: str, known: set[str]) -> list[LayerReport]:
    """Reports for an entry whose source and options are what its current versions came from."""
    key = f"{shash}:{PIPELINE_VERSION}"
    reports = []
    for lid in _known_ids(known, spec):
        try:
            current = catalog.current(lid)
        except LayerNotFound:
            return []
        if current is None or current.lineage.source_hash != key:
            return []
        reports.append(
            LayerReport(
                lid,
                "unchanged",
                spec.id,
                version=current.version,
                kind=current.kind,
                features_out=current.feature_count,
            )
        )
    return reports


def _known_ids(known: set[str], spec: LayerSpec) -> list[str]:
    """The catalog ids an entry yielded last time: its id, or its numbered sublayers."""
    pattern = re.compile(rf"{re.escape(spec.id)}-\d+")
    ids = [lid for lid in known if lid == spec.id or pattern.fullmatch(lid)]
    return [spec.id] if spec.id in ids else sorted(ids, key=lambda s: int(s.rsplit("-", 1)[1]))


def _upsert(
    catalog: Catalog,
    spec: LayerSpec,
    agency_slug: Callable[[str], str],
    titled: list[tuple[str, str | None]],
) -> None:
    agency = Agency(agency_slug(spec.agency), spec.agency)
    for lid, title in titled:
        catalog.upsert_layer(
            Layer(
                id=lid,
                title=title or catalog.get_layer(lid).title,
                agency=agency,
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


def _publish(
    catalog: Catalog,
    home: Path,
    spec: LayerSpec,
    results: list,
    keep: int,
    agency_slug: Callable[[str], str],
) -> list[LayerReport]:
    reports = []
    for item in results:
        if isinstance(item, LayerReport):
            reports.append(item)
            continue
        try:
            _upsert(catalog, spec, agency_slug, [(item.layer_id, item.title)])
            pruned = catalog.publish_version(item.version, keep=keep)
        except CatalogError as e:
            item.report.status, item.report.message = "failed", str(e)
        else:
            for old in pruned:
                store.remove_version_file(home, old.path)
        reports.append(item.report)
    return reports
