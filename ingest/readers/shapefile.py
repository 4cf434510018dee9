"""Shapefiles: geometry through GDAL, the DBF's text decoded here from its raw bytes.

GDAL decides a DBF's encoding from the .cpg or the language byte and falls back to
ISO-8859-1, which garbles UTF-8 DBFs without a .cpg and Big5 vendor characters without a word.
So the DBF is opened with ``ENCODING=ISO-8859-1`` (each byte one character), every string is
turned back into its bytes, and the encoding is decided and applied by ``ingest.encoding``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from catalog.model import Decision, Repair
from ingest import encoding as enc
from ingest.readers import ogr
from ingest.readers.base import RawLayer, Reader, ReadOptions


@dataclass(frozen=True)
class DbfField:
    """A DBF field descriptor: raw name bytes, type letter and width."""

    name: bytes
    type: str
    width: int


def dbf_header(path: Path) -> tuple[int, list[DbfField]]:
    """(language driver byte, field descriptors) of a .dbf file."""
    with open(path, "rb") as f:
        head = f.read(32)
        header_len = struct.unpack("<H", head[8:10])[0]
        body = f.read(max(0, header_len - 32))
    fields = []
    for i in range(0, len(body) - 31, 32):
        d = body[i : i + 32]
        if d[0] == 0x0D:
            break
        fields.append(DbfField(d[:11].split(b"\0")[0], chr(d[11]), d[16]))
    return head[29], fields


class ShapefileReader(Reader):
    """ESRI shapefiles (.shp with .dbf, .prj, .cpg sidecars), and orphan .dbf tables."""

    name = "shapefile"
    suffixes = (".shp", ".dbf")

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read geometry, decide the DBF encoding, decode its text."""
        _, attrs, geoms, fixed = ogr.read(path, options.display, ENCODING="ISO-8859-1")
        dbf = _sidecar(path, ".dbf")
        ldid, fields = dbf_header(dbf) if dbf else (0, [])
        widths = {f.name.decode("latin-1"): f.width for f in fields}
        samples, sample_widths = _text_samples(attrs, widths)
        decision, warnings = decide_encoding(path, options, ldid, samples, sample_widths)
        frame, repairs = _decode_frame(attrs, decision.value, widths)
        prj = _sidecar(path, ".prj")
        crs_wkt = prj.read_text(encoding="latin-1") if prj else None
        if path.suffix.lower() == ".dbf":
            geoms = None  # an orphan .dbf: a table, never invented points
        return RawLayer(
            sublayer=None,
            attributes=frame,
            geometry=geoms,
            crs_wkt=crs_wkt,
            crs_evidence="prj" if crs_wkt else "none",
            decisions=[decision],
            text_columns=tuple(c for c in frame.columns if _is_text(frame[c])),
            repairs=ogr.ring_repair(fixed) + repairs,
            warnings=warnings,
        )


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col)


def _sidecar(path: Path, suffix: str) -> Path | None:
    for s in (suffix, suffix.upper()):
        p = path.with_suffix(s)
        if p.exists():
            return p
    return None


def _text_samples(
    attrs: pd.DataFrame, widths: dict[str, int]
) -> tuple[list[bytes], list[int | None]]:
    samples: list[bytes] = [name.encode("latin-1") for name in attrs.columns]
    sample_widths: list[int | None] = [None] * len(samples)
    for name in attrs.columns:
        col = attrs[name]
        if not _is_text(col):
            continue
        for v in col.dropna().head(5000):
            if isinstance(v, str):
                samples.append(v.encode("latin-1"))
                sample_widths.append(widths.get(name))
    return samples, sample_widths


def decide_encoding(
    path: Path, options: ReadOptions, ldid: int, samples: list[bytes], widths: list[int | None]
) -> tuple[Decision, list[str]]:
    """Override > .cpg (checked) > language byte (checked) > the bytes."""
    warnings: list[str] = []
    if options.encoding:
        value = enc.normalise(options.encoding)
        return Decision("encoding", value, "manifest", 1.0, "as the manifest says"), warnings
    cpg = _sidecar(path, ".cpg")
    claim = enc.from_cpg(cpg.read_text(encoding="latin-1")) if cpg else None
    if claim:
        if enc.credible(samples, claim, widths):
            return Decision("encoding", claim, "cpg", 0.99, f"the .cpg says {claim}"), warnings
        warnings.append(
            f"the .cpg says {claim} but the text is not {claim}: decided from the bytes"
        )
    ld = enc.LDID.get(ldid)
    if ld:
        if enc.credible(samples, ld, widths):
            return Decision(
                "encoding", ld, "ldid", 0.95, f"the DBF language byte 0x{ldid:02X} says {ld}"
            ), warnings
        warnings.append(f"the DBF language byte says {ld} but the text is not {ld}")
    value, conf = enc.detect(samples, widths)
    detail = "detected from the bytes" + (" (no .cpg)" if not cpg else "")
    return Decision("encoding", value, "bytes", conf, detail), warnings


def _decode_frame(
    attrs: pd.DataFrame, encoding: str, widths: dict[str, int]
) -> tuple[pd.DataFrame, list[Repair]]:
    log = enc.DecodeLog()
    out = {}
    for name in attrs.columns:
        real = enc.decode(name.encode("latin-1"), encoding, "field names", log)
        col = attrs[name]
        if _is_text(col):
            width = widths.get(name)
            col = pd.Series(
                [
                    enc.decode(v.encode("latin-1"), encoding, f"#{i + 1}", log, width).rstrip()
                    or None
                    if isinstance(v, str)
                    else v
                    for i, v in enumerate(col)
                ],
                dtype=object,
            )
        out[real] = col
    return pd.DataFrame(out), repairs_from(log)


def repairs_from(log: enc.DecodeLog) -> list[Repair]:
    """Repairs (and their record ids) that decoding needed."""
    out = []
    if log.utf8_cut:
        out.append(
            Repair(
                "utf8-cut",
                len(log.utf8_cut),
                "UTF-8 text cut mid-character at the DBF field width: the partial "
                "character was dropped",
                tuple(log.utf8_cut[:50]),
            )
        )
    for label, table in (("vendor-char", log.vendor), ("vendor-char-hkscs", log.vendor_via_hkscs)):
        for ch, recs in table.items():
            how = (
                "Taiwan household-registration vendor table"
                if label == "vendor-char"
                else "Big5-HKSCS table (verify: agencies' vendor tables differ)"
            )
            out.append(
                Repair(
                    label,
                    len(recs),
                    f"Big5 vendor character decoded as {ch} via the {how}",
                    tuple(recs[:50]),
                )
            )
    if log.undecodable:
        out.append(
            Repair(
                "undecodable-bytes",
                len(log.undecodable),
                "bytes that decode in no table were replaced by U+FFFD",
                tuple(log.undecodable[:50]),
            )
        )
    return out


READERS = {"shapefile": ShapefileReader()}
