"""From a manifest's ``source`` to the files to read: paths, globs, folders, zips, URLs.

A source resolves to one or more *units* (a file and, for multi-layer formats, a sublayer).
Zips are extracted into a private work folder with ``ingest.archive``; URLs are downloaded
there with a size limit. Sources that only pose as data (Git-LFS pointers, empty files) are
refused before any reader sees them.
"""

from __future__ import annotations

import glob
import hashlib
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingest import archive
from ingest.errors import SourceRefused
from ingest.model import LayerSpec
from ingest.readers import DATA_SUFFIXES, Reader, reader_for

SIDECARS = {
    ".shx",
    ".dbf",
    ".prj",
    ".cpg",
    ".qpj",
    ".sbn",
    ".sbx",
    ".xml",
    ".ovr",
    ".tfw",
    ".aux",
    ".qmd",
    ".fix",
    ".atx",
    ".ain",
    ".aih",
    ".ixs",
    ".mxs",
    ".lock",
}
MAX_DOWNLOAD = 4 * 2**30
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"


@dataclass(frozen=True)
class Unit:
    """One readable layer of a source: a file, its reader, and a sublayer (or None)."""

    path: Path
    reader: Reader
    sublayer: str | None
    name: str  # the sublayer's or file's name, for titles and ``layer:`` matching
    display: str


def guard(path: Path, display: str) -> None:
    """Refuse files that only pose as data.

    Raises:
        SourceRefused: an empty file or a Git-LFS pointer.
    """
    size = path.stat().st_size
    if size == 0:
        raise SourceRefused(display, "empty-file", "the file is empty")
    if size < 1024:
        head = path.read_bytes()[:200]
        if head.startswith(LFS_MAGIC):
            raise SourceRefused(
                display,
                "git-lfs-pointer",
                "this is a Git-LFS pointer file, not the data it points to",
                "fetch the real file (`git lfs pull`) and hand that in",
            )


def is_data_file(path: Path) -> bool:
    """Whether a file found in a folder or zip is a data source (not a sidecar or junk)."""
    name = path.name.lower()
    if name.startswith(".") or "__macosx" in (p.lower() for p in path.parts):
        return False
    if path.suffix.lower() == ".dbf":
        return not any(path.with_suffix(s).exists() for s in (".shp", ".SHP"))
    if name.endswith(".aux.xml") or path.suffix.lower() in SIDECARS:
        return False
    return name.endswith(tuple(DATA_SUFFIXES)) or path.suffix.lower() == ".zip"


def source_files(spec: LayerSpec) -> list[Path]:
    """The local files a spec's source names (before extraction), for hashing and reading.

    Raises:
        SourceRefused: nothing matches the source.
    """
    src = spec.source
    if src.startswith(("http://", "https://")):
        return []
    path = Path(src) if Path(src).is_absolute() else spec.base / src
    if any(ch in src for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not matches:
            raise SourceRefused(
                src,
                "not-found",
                "the pattern matches no file",
                f"check the path relative to {spec.base}",
            )
        return matches
    if not path.exists():
        raise SourceRefused(
            src, "not-found", "no such file or folder", f"check the path relative to {spec.base}"
        )
    return [path]


def source_hash(spec: LayerSpec) -> str:
    """A sha256 of the source's bytes and of the manifest options that change its reading.

    Sidecars of a shapefile and every file of a folder are included.
    """
    h = hashlib.sha256()
    for key in ("layer", "crs", "encoding", "x", "y"):
        h.update(f"{key}={getattr(spec, key)}\n".encode())
    if spec.source.startswith(("http://", "https://")):
        h.update(spec.source.encode())
        return h.hexdigest()
    for path in source_files(spec):
        for f in _hashable_files(path):
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()


def _hashable_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix.lower() == ".shp":
        return sorted(
            p
            for p in path.parent.iterdir()
            if p.is_file() and p.name.split(".")[0] == path.name.split(".")[0]
        )
    return [path]


def _download(url: str, work: Path) -> Path:
    target = work / "download" / (url.rstrip("/").rsplit("/", 1)[-1] or "download")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(target, "wb") as out:
            copied = 0
            while chunk := resp.read(1 << 20):
                copied += len(chunk)
                if copied > MAX_DOWNLOAD:
                    raise SourceRefused(url, "too-large", f"larger than {MAX_DOWNLOAD} bytes")
                out.write(chunk)
    except OSError as e:
        raise SourceRefused(url, "download-failed", f"cannot download it ({e})") from e
    return target


def resolve(spec: LayerSpec, work: Path) -> list[Unit]:
    """Every unit of a spec's source, in source order (``spec.layer`` not applied yet)."""
    if spec.source.startswith(("http://", "https://")):
        files = [_download(spec.source, work)]
    else:
        files = source_files(spec)
    units: list[Unit] = []
    for path in files:
        units += _units_of(path, spec.source if len(files) == 1 else str(path), work)
    if not units:
        raise SourceRefused(spec.source, "no-data", "holds no data file geoportal can read")
    return units


def _units_of(path: Path, display: str, work: Path) -> list[Unit]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_data_file(p))
        return [u for p in found for u in _units_of(p, f"{display}/{p.relative_to(path)}", work)]
    if path.suffix.lower() == ".zip" and not path.name.lower().endswith(".kmz"):
        guard(path, display)
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        into = work / f"zip-{digest}"
        shutil.rmtree(into, ignore_errors=True)
        archive.extract(path, into, display=display)
        found = sorted(p for p in into.rglob("*") if p.is_file() and is_data_file(p))
        return [
            u
            for p in found
            for u in _units_of(p, f"{display}!{p.relative_to(into).as_posix()}", work)
        ]
    guard(path, display)
    reader = reader_for(path, display)
    subs = reader.sublayers(path)
    if not subs:
        return [Unit(path, reader, None, _stem(path), display)]
    return [Unit(path, reader, s, s, f"{display}#{s}") for s in subs]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".topo.json",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def select(units: list[Unit], spec: LayerSpec) -> list[Unit]:
    """Apply ``layer:``: the unit whose sublayer (or file) name matches.

    Raises:
        SourceRefused: no unit has that name (the message lists the names there are).
    """
    if spec.layer is None:
        return units
    match = [u for u in units if spec.layer in (u.sublayer, u.name)]
    if not match:
        names = ", ".join(u.name for u in units)
        raise SourceRefused(
            spec.source,
            "no-such-layer",
            f"has no layer {spec.layer!r}",
            f"layers there are: {names}",
        )
    return match[:1]
