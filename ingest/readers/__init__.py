"""Readers, one per source format, in one explicit registry."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import SourceRefused
from ingest.readers import geotiff, kml, shapefile, tabular, vector
from ingest.readers.base import RawLayer, Reader, ReadOptions

REGISTRY: dict[str, Reader] = {
    **shapefile.READERS,
    **vector.READERS,
    **kml.READERS,
    **tabular.READERS,
    **geotiff.READERS,
}

DATA_SUFFIXES = {s for r in REGISTRY.values() for s in r.suffixes} | {".topo.json"}


def _json_kind(path: Path) -> str:
    """Whether a .json file is "topojson" or "geojson", from its first bytes."""
    head = path.read_bytes()[:4096].decode("utf-8", errors="ignore")
    compact = head.replace(" ", "").replace("\n", "")
    return "topojson" if '"type":"Topology"' in compact else "geojson"


def reader_for(path: Path, display: str) -> Reader:
    """The reader for a file, by its suffix (and, for .json, its content).

    Raises:
        SourceRefused: no reader takes this kind of file.
    """
    name = path.name.lower()
    if name.endswith((".topo.json", ".topojson")):
        return REGISTRY["topojson"]
    if name.endswith(".json"):
        return REGISTRY[_json_kind(path)]
    for reader in REGISTRY.values():
        if name.endswith(reader.suffixes):
            return reader
    known = ", ".join(sorted(DATA_SUFFIXES))
    raise SourceRefused(
        display,
        "unknown-format",
        f"no reader for {path.suffix or 'this'} files",
        f"hand in one of: {known}",
    )


__all__ = ["REGISTRY", "RawLayer", "ReadOptions", "Reader", "reader_for"]
