"""Reading tiles out of PMTiles archives, with the header and directories cached.

The pmtiles library's Reader parses the header and walks the directories on every ``get``;
here an archive is opened once (memory-mapped), its header, metadata and root directory are
parsed once, and leaf directories are kept in an LRU cache. Archives are immutable (one per
layer version), so nothing ever needs invalidating: a new version is a new file.
"""

from __future__ import annotations

import gzip
import json
import mmap
from functools import lru_cache
from pathlib import Path

from pmtiles.tile import (
    Compression,
    deserialize_directory,
    deserialize_header,
    find_tile,
    zxy_to_tileid,
)

from tiles.errors import TilesError


def _decompress(data: bytes, compression: Compression) -> bytes:
    if compression == Compression.GZIP:
        return gzip.decompress(data)
    if compression in (Compression.NONE, Compression.UNKNOWN):
        return data
    raise TilesError(f"unsupported PMTiles compression {compression!r}")


class Archive:
    """One PMTiles archive, opened once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.header = deserialize_header(self._map[0:127])
        h = self.header
        meta = self._map[h["metadata_offset"] : h["metadata_offset"] + h["metadata_length"]]
        self.metadata: dict = json.loads(_decompress(meta, h["internal_compression"]) or b"{}")
        self._root = self._directory(h["root_offset"], h["root_length"])
        self._leaf = lru_cache(maxsize=256)(self._directory)

    def _directory(self, offset: int, length: int) -> list:
        return deserialize_directory(self._map[offset : offset + length])  # gunzips itself

    def get(self, z: int, x: int, y: int) -> bytes | None:
        """The stored (still compressed) bytes of tile z/x/y, or None if the archive has none."""
        tile_id = zxy_to_tileid(z, x, y)
        directory = self._root
        h = self.header
        for _ in range(4):  # PMTiles v3: at most a few levels of leaf directories
            entry = find_tile(directory, tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = h["tile_data_offset"] + entry.offset
                return bytes(self._map[start : start + entry.length])
            directory = self._leaf(h["leaf_directory_offset"] + entry.offset, entry.length)
        return None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        h = self.header
        return (
            h["min_lon_e7"] / 1e7,
            h["min_lat_e7"] / 1e7,
            h["max_lon_e7"] / 1e7,
            h["max_lat_e7"] / 1e7,
        )


@lru_cache(maxsize=1024)
def open_archive(path: Path) -> Archive:
    """The archive at ``path``, opened once per process (archives never change)."""
    return Archive(path)
