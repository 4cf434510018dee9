"""What the CLI prints: the ingest report and the layer list, as tables or as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from catalog.model import Decision, LayerVersion, SearchHit
    from ingest.manifest import LoadResult
    from ingest.pipeline import IngestRun

STATUS_STYLE = {
    "published": "green",
    "unchanged": "dim",
    "refused": "yellow",
    "failed": "red",
    "removed": "magenta",
}


def _console() -> Console:
    """A console that does not squeeze tables into 80 columns when output is redirected."""
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=200)
    return console


def _decision(d: Decision | None) -> str:
    if d is None:
        return ""
    conf = "" if d.confidence >= 0.99 else f" {d.confidence:.0%}"
    return f"{d.value} ({d.source}{conf})"


def print_ingest(run: IngestRun, loaded: LoadResult, console: Console | None = None) -> None:
    """The per-layer table, then the reasons of refused/failed layers, then totals."""
    console = console or _console()
    table = Table(title="geoportal ingest", show_lines=False)
    for col in ("layer", "status", "in → out", "CRS", "encoding", "repairs", "warnings"):
        table.add_column(col, overflow="fold")
    for r in run.reports:
        repairs = ", ".join(f"{x.kind}×{x.count}" for x in r.repairs)
        table.add_row(
            r.id,
            f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]",
            f"{r.features_in} → {r.features_out}"
            if r.status == "published"
            else (str(r.features_out) if r.status == "unchanged" else ""),
            _decision(r.crs),
            _decision(r.encoding),
            repairs,
            str(len(r.warnings)) if r.warnings else "",
        )
    console.print(table)
    for r in run.reports:
        if not r.ok or r.status == "removed":
            console.print(f"[{STATUS_STYLE[r.status]}]{r.id}[/]: {r.message}", highlight=False)
    for s in loaded.skipped:
        console.print(f"[dim]skipped[/] {s}", highlight=False)
    counts: dict[str, int] = {}
    for r in run.reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do")


def ingest_json(run: IngestRun, loaded: LoadResult) -> dict:
    """The ingest report as JSON-ready data."""
    return {
        "command": "ingest",
        "status": "ok" if run.ok else "failed",
        "layers": [asdict(r) for r in run.reports],
        "skipped": [asdict(s) for s in loaded.skipped],
        "warnings": list(loaded.warnings),
    }


def print_layers(
    rows: list[tuple[SearchHit, LayerVersion | None]],
    query: str | None,
    console: Console | None = None,
) -> None:
    """The layer list."""
    console = console or _console()
    table = Table(title=f"layers matching {query!r}" if query else "layers")
    for col in ("id", "title", "agency", "kind", "features", "source CRS", "version"):
        table.add_column(col, overflow="fold")
    for hit, v in rows:
        layer = hit.layer
        table.add_row(
            layer.id,
            layer.title,
            layer.agency.title,
            v.kind if v else "",
            str(v.feature_count) if v else "",
            v.source_crs if v else "",
            v.version if v else "",
        )
    console.print(table)
    console.print(f"{len(rows)} layer(s)")


def layers_json(rows: list[tuple[SearchHit, LayerVersion | None]]) -> list[dict]:
    """The layer list as JSON-ready data."""
    out = []
    for hit, v in rows:
        layer = hit.layer
        out.append(
            {
                "id": layer.id,
                "title": layer.title,
                "title_en": layer.title_en,
                "agency": layer.agency.title,
                "category": layer.category,
                "keywords": list(layer.keywords),
                "score": hit.score,
                "version": v.version if v else None,
                "kind": v.kind if v else None,
                "features": v.feature_count if v else None,
                "bbox": list(v.bbox) if v and v.bbox else None,
                "source_crs": v.source_crs if v else None,
                "geometry_type": v.geometry_type if v else None,
            }
        )
    return out
