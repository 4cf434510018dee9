"""Safe archive handling: zips (nested too) extracted with limits, CP950 names and no escapes.

Agencies' zips come from Windows (names in CP950 without the UTF-8 flag), from Macs
(``__MACOSX/`` AppleDouble junk, ``.DS_Store``), with nested folders and zips inside zips. A
zip is a public input: an entry may try to escape the extraction folder (``../``, absolute
paths, symlinks) or be a bomb. Every entry is checked before a byte is written.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.errors import SourceRefused

JUNK_DIRS = ("__MACOSX",)
JUNK_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one archive may expand to (nested archives included)."""

    max_total_bytes: int = 8 * 2**30
    max_entry_ratio: int = 1000
    max_entries: int = 20_000
    max_depth: int = 3


@dataclass
class Extracted:
    """An extracted archive: its folder, the entries skipped as junk, names decoded."""

    root: Path
    skipped: list[str] = field(default_factory=list)
    decoded_names: str = "utf-8"


def _decoded_name(info: zipfile.ZipInfo) -> tuple[str, str]:
    """The entry's real name: UTF-8 when flagged, else CP950 if it decodes, else CP437."""
    if info.flag_bits & 0x800:
        return info.filename, "utf-8"
    raw = info.filename.encode("cp437")
    for codec in ("utf-8", "cp950"):
        try:
            name = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        return name, ("ascii" if name.isascii() else codec)
    return info.filename, "cp437"


def _is_junk(parts: tuple[str, ...]) -> bool:
    return (
        any(p in JUNK_DIRS for p in parts) or parts[-1] in JUNK_FILES or parts[-1].startswith("._")
    )


def _safe_parts(name: str, display: str) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(p == ".." for p in path.parts) or ":" in path.parts[0]:
        raise SourceRefused(
            display,
            "zip-path-escape",
            f"archive entry {name!r} points outside the archive",
            "re-create the zip with relative paths",
        )
    return tuple(p for p in path.parts if p not in ("", "."))


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits, self.bytes, self.entries = limits, 0, 0

    def spend(self, info: zipfile.ZipInfo, display: str) -> None:
        self.entries += 1
        self.bytes += info.file_size
        lim = self.limits
        if self.entries > lim.max_entries:
            raise SourceRefused(
                display,
                "zip-too-many-entries",
                f"the archive holds more than {lim.max_entries} entries",
            )
        if self.bytes > lim.max_total_bytes:
            raise SourceRefused(
                display,
                "zip-too-large",
                f"the archive expands to more than {lim.max_total_bytes} bytes",
            )
        if info.compress_size and info.file_size / info.compress_size > lim.max_entry_ratio:
            raise SourceRefused(
                display,
                "zip-bomb",
                f"entry {info.filename!r} expands {info.file_size // info.compress_size}× "
                f"(limit {lim.max_entry_ratio}×): refused as a possible zip bomb",
            )


def _copy_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, display: str) -> None:
    """Copy an entry, refusing one that expands beyond the size its header declares."""
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise SourceRefused(
                    display, "zip-bomb", f"entry {info.filename!r} expands beyond its declared size"
                )
            dst.write(chunk)


def extract(
    path: Path, into: Path, *, display: str | None = None, limits: Limits = Limits()
) -> Extracted:
    """Extract ``path`` (and zips inside it, up to ``limits.max_depth``) into ``into``.

    Nested zips are extracted into a folder named after them (``inner.zip`` → ``inner/``).

    Raises:
        SourceRefused: not a zip, an entry escaping the folder, a symlink, or a limit exceeded.
    """
    display = display or str(path)
    result = Extracted(into)
    _extract(path, into, display, _Budget(limits), 0, result)
    return result


def _extract(
    path: Path, into: Path, display: str, budget: _Budget, depth: int, result: Extracted
) -> None:
    if depth > budget.limits.max_depth:
        raise SourceRefused(
            display, "zip-too-deep", f"zips nested more than {budget.limits.max_depth} deep"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceRefused(
            display,
            "bad-zip",
            f"not a readable zip archive ({e})",
            "check that the upload finished and the file is a .zip",
        ) from e
    with zf:
        for info in zf.infolist():
            name, codec = _decoded_name(info)
            if codec not in ("ascii", "utf-8"):
                result.decoded_names = codec
            parts = _safe_parts(name, display)
            if not parts or info.is_dir():
                continue
            if _is_junk(parts):
                result.skipped.append(name)
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SourceRefused(
                    display, "zip-symlink", f"archive entry {name!r} is a symbolic link"
                )
            budget.spend(info, display)
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_bounded(zf, info, target, display)
            if target.suffix.lower() == ".zip":
                inner = target.with_suffix("")
                _extract(target, inner, f"{display}!{name}", budget, depth + 1, result)
                target.unlink()
