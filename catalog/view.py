"""A process's cached view of the catalog: all layers and their current versions.

Serving code (capabilities documents, tile lookups, WMS layer resolution) asks the view, not
the database: the view re-reads the catalog at most every ``ttl`` seconds (one query for the
layers, one for their current versions), and its ``stamp`` changes whenever anything a client
could see changed, so documents built from it can be cached under that stamp.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from catalog.db import Catalog
from catalog.model import Layer, LayerVersion


@dataclass(frozen=True)
class Snapshot:
    """The catalog at one moment.

    Attributes:
        layers: layer id → layer, ordered by id.
        versions: layer id → current version (layers never published are absent).
        stamp: a short hash of everything above; equal stamps, equal snapshots.
    """

    layers: dict[str, Layer]
    versions: dict[str, LayerVersion]
    stamp: str

    def published(self) -> list[tuple[Layer, LayerVersion]]:
        """(layer, current version) of every published layer, ordered by layer id."""
        return [(lyr, self.versions[i]) for i, lyr in self.layers.items() if i in self.versions]


class CatalogView:
    """Snapshots of ``catalog``, checked at most every ``ttl`` seconds (thread-safe).

    A check costs one tiny query (:meth:`Catalog.change_marker`); the layers and versions are
    re-read only when it changed. Readers never wait for a re-read: while one thread reads
    the catalog, the others keep answering from the previous snapshot.
    """

    def __init__(self, catalog: Catalog, ttl: float = 5.0) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self._lock = threading.Lock()  # held by the one thread refreshing
        self._at = -1e9
        self._marker: tuple[int, str] | None = None
        self._snapshot: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        """The current snapshot (checked for changes if older than ``ttl``)."""
        current = self._snapshot
        if current is not None and time.monotonic() - self._at <= self.ttl:
            return current
        if current is not None and not self._lock.acquire(blocking=False):
            return current  # another thread is refreshing; this one answers from the last
        if current is None:
            self._lock.acquire()
        try:
            if self._snapshot is None or time.monotonic() - self._at > self.ttl:
                marker = self.catalog.change_marker()
                if self._snapshot is None or marker != self._marker:
                    self._snapshot = self._read()
                    self._marker = marker
                self._at = time.monotonic()
            return self._snapshot
        finally:
            self._lock.release()

    def refresh(self) -> Snapshot:
        """Re-read now (after a write made by this process)."""
        with self._lock:
            self._at = -1e9
            self._marker = None
        return self.snapshot()

    def _read(self) -> Snapshot:
        layers = {lyr.id: lyr for lyr in self.catalog.layers()}
        versions = self.catalog.current_all()
        digest = hashlib.sha1()
        for lyr in layers.values():
            digest.update(f"{lyr.id}|{lyr.current_version}|{lyr.modified}\n".encode())
        return Snapshot(layers, versions, digest.hexdigest()[:16])
