"""Text encodings of agency data: deciding them from evidence and bytes, decoding without loss.

The decision order (issue #3): manifest override > .cpg (checked against the bytes: .cpg files
lie) > DBF language driver byte (checked too) > detection from the bytes. Decoding never
garbles silently: UTF-8 cut at a DBF field's width loses only the partial character and is
reported; Big5 vendor-extension characters are mapped where a table has them and reported;
anything else undecodable becomes U+FFFD and is counted with its record ids.
"""

from __future__ import annotations

import codecs
from collections import defaultdict
from dataclasses import dataclass, field

# Big5 user-defined-area codes used by Taiwan's household-registration (戶役政) systems for
# place-name characters missing from Big5. Deduced from real MOI-derived village files (the
# Tainan village boundaries: 塩埕/塩洲/塩行/塩田里, 槺榔里, 玉峯里, 山脚里) where Big5-HKSCS maps
# the same codes to other characters. Checked before HKSCS.
MOI_VENDOR: dict[bytes, str] = {
    b"\x9a\xac": "塩",
    b"\x9e\xf5": "槺",
    b"\x94\xa2": "峯",
    b"\x97\xa3": "脚",
}

# DBF language driver ids (byte 29) and the code page they state.
LDID: dict[int, str] = {
    0x4F: "cp950",
    0x78: "cp950",
    0x7A: "gbk",
    0x7B: "cp932",
    0x79: "cp949",
    0x7C: "cp874",
    0x7D: "cp1255",
    0x57: "cp1252",
    0x03: "cp1252",
    0x01: "cp437",
    0x02: "cp850",
    0x13: "cp932",
    0x4D: "gbk",
    0x4E: "cp949",
}

CPG_ALIASES = {
    "950": "cp950",
    "big5": "cp950",
    "cp950": "cp950",
    "ms950": "cp950",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "65001": "utf-8",
    "936": "gbk",
    "1252": "cp1252",
    "ansi 1252": "cp1252",
    "88591": "latin-1",
    "iso-8859-1": "latin-1",
    "iso88591": "latin-1",
}


def normalise(name: str) -> str:
    """A codec name as geoportal records it: "utf-8", "cp950", ... (Big5 → cp950).

    Raises:
        LookupError: unknown encoding.
    """
    key = name.strip().lower().replace("_", "-")
    if key in CPG_ALIASES:
        return CPG_ALIASES[key]
    info = codecs.lookup(key)
    return {"big5": "cp950", "utf-8-sig": "utf-8"}.get(info.name, info.name)


def from_cpg(text: str) -> str | None:
    """The encoding a .cpg file names, or None if it names nothing known."""
    try:
        return normalise(text.strip().splitlines()[0]) if text.strip() else None
    except LookupError:
        return None


@dataclass
class DecodeLog:
    """What decoding a set of byte strings needed: repairs and record ids per kind."""

    utf8_cut: list[str] = field(default_factory=list)
    vendor: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    vendor_via_hkscs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    undecodable: list[str] = field(default_factory=list)


def _big5_pair(pair: bytes) -> tuple[str, str]:
    """One Big5 double-byte code → (character, how: "cp950"|"moi"|"hkscs"|"none")."""
    try:
        return pair.decode("cp950"), "cp950"
    except UnicodeDecodeError:
        pass
    if pair in MOI_VENDOR:
        return MOI_VENDOR[pair], "moi"
    try:
        return pair.decode("big5hkscs"), "hkscs"
    except UnicodeDecodeError:
        return "\ufffd", "none"


def decode_big5(raw: bytes, record: str, log: DecodeLog) -> str:
    """Decode CP950, mapping vendor codes (MOI table, then Big5-HKSCS) and logging each one."""
    try:
        return raw.decode("cp950")
    except UnicodeDecodeError:
        pass
    out, i = [], 0
    while i < len(raw):
        b = raw[i]
        if b < 0x80:
            out.append(chr(b))
            i += 1
            continue
        trail = raw[i + 1] if i + 1 < len(raw) else None
        if trail is None or not (0x40 <= trail <= 0x7E or 0xA1 <= trail <= 0xFE):
            out.append("\ufffd")  # a lone lead byte: do not swallow the next character
            log.undecodable.append(record)
            i += 1
            continue
        ch, how = _big5_pair(raw[i : i + 2])
        out.append(ch)
        if how == "moi":
            log.vendor[ch].append(record)
        elif how == "hkscs":
            log.vendor_via_hkscs[ch].append(record)
        elif how == "none":
            log.undecodable.append(record)
        i += 2
    return "".join(out)


def decode_utf8(raw: bytes, record: str, log: DecodeLog, width: int | None = None) -> str:
    """Decode UTF-8; a character cut at the end of a full-width field is dropped and logged."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        tail = len(raw) - e.start
        if e.end == len(raw) and tail < 4 and (width is None or len(raw) >= width - 3):
            try:
                text = raw[: e.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                log.utf8_cut.append(record)
                return text
        log.undecodable.append(record)
        return raw.decode("utf-8", errors="replace")


def decode(raw: bytes, encoding: str, record: str, log: DecodeLog, width: int | None = None) -> str:
    """Decode one value in ``encoding`` with the repairs above."""
    if encoding == "utf-8":
        return decode_utf8(raw, record, log, width)
    if encoding == "cp950":
        return decode_big5(raw, record, log)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        log.undecodable.append(record)
        return raw.decode(encoding, errors="replace")


SINGLE_BYTE = {"cp1252", "latin-1", "iso8859-1", "cp437", "cp850", "cp874", "cp1255"}


def credible(samples: list[bytes], claim: str, widths: list[int | None] | None = None) -> bool:
    """Whether a .cpg's or language byte's claim can be believed for these bytes.

    A single-byte code page decodes any bytes, so "it decodes" proves nothing: such a claim is
    overruled when the non-ASCII bytes read as UTF-8 or Big5 text instead.
    """
    if claim in SINGLE_BYTE:
        if all(s.isascii() for s in samples):
            return True
        value, confidence = detect(samples, widths)
        return not (value in ("utf-8", "cp950") and confidence >= 0.9)
    return fits(samples, claim, widths)


def _cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF or o >= 0x20000


def fits(samples: list[bytes], encoding: str, widths: list[int | None] | None = None) -> bool:
    """Whether every sample decodes in ``encoding`` (allowing cut UTF-8 and vendor codes)."""
    log = DecodeLog()
    for i, raw in enumerate(samples):
        width = widths[i] if widths else None
        decode(raw, encoding, str(i), log, width)
    return not log.undecodable


def detect(samples: list[bytes], widths: list[int | None] | None = None) -> tuple[str, float]:
    """Guess the encoding of byte strings: (encoding, confidence).

    Pure ASCII → utf-8 (1.0). Valid UTF-8 with multi-byte text → utf-8 (0.99: random Big5 is
    almost never valid UTF-8). Otherwise CP950/Big5 if it decodes (0.9, less with vendor codes),
    else the best of the two with undecodable bytes (0.3).
    """
    text = [s for s in samples if s]
    if all(s.isascii() for s in text):
        return "utf-8", 1.0
    if fits(text, "utf-8", widths if widths and len(widths) == len(text) else None):
        decoded = "".join(s.decode("utf-8", errors="ignore") for s in text)
        if not any(_cjk(c) for c in decoded) and fits(text, "cp950"):
            # Short Big5 text can be valid UTF-8 by chance (b"\xc4\xa1" is 纂 and ġ): with no
            # CJK in the UTF-8 reading, the Big5 reading is the likelier one here.
            return "cp950", 0.7
        return "utf-8", 0.99
    log = DecodeLog()
    for i, raw in enumerate(text):
        decode_big5(raw, str(i), log)
    if not log.undecodable:
        return "cp950", 0.9 if not log.vendor_via_hkscs else 0.8
    return "cp950", 0.3
