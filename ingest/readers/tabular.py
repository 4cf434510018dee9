"""Tables: delimited text (.csv .tsv .txt) and Excel workbooks (.xlsx .xls).

Both readers turn a file into rows of text cells and share everything after that: finding the
header (blank leading lines, a title line, a second header row in English), choosing the
coordinate columns (manifest override, else the usual Taiwanese headers checked against the
values: swapped 經度/緯度 headers are detected and undone), and building a :class:`RawLayer`
whose attributes are the remaining columns as text. Values are typed later, the same way for
every text source, by :mod:`ingest.attributes`.

Text files are decoded from their bytes: manifest override > UTF-8 (BOM or valid) > CP950
(Big5, vendor characters mapped by :mod:`ingest.encoding`) > the best of both with the
undecodable bytes replaced and reported.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

from catalog.model import Decision, Repair
from ingest import encoding as enc
from ingest.errors import SourceRefused
from ingest.readers.base import RawLayer, Reader, ReadOptions

#: The first bytes of a Git-LFS pointer file (a placeholder committed instead of the data).
LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
#: Delimiters tried, in order of preference on a tie.
DELIMITERS = (",", "\t", "|", ";")
DELIMITER_NAMES = {",": ",", "\t": "tab", "|": "|", ";": ";"}

_BOM_UTF8 = b"\xef\xbb\xbf"
_BOM_UTF16 = (b"\xff\xfe", b"\xfe\xff")
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SNIFF_CHARS = 65536
_MAX_TITLE_ROWS = 3
_LOOKAHEAD = 20

Row = tuple[int, list[str]]  # (line or sheet row number, cells)


# --- readers -------------------------------------------------------------------------------------


class DelimitedTextReader(Reader):
    """Comma, semicolon, pipe or tab delimited text in UTF-8, CP950/Big5 or a named encoding."""

    name = "csv"
    suffixes = (".csv", ".tsv", ".txt")

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read the table (text files have no sublayers; ``sublayer`` is ignored).

        Raises:
            ingest.errors.SourceRefused: empty file, Git-LFS pointer, unknown encoding override,
                malformed quoting, missing override columns or an invalid override CRS.
        """
        data = read_source_bytes(path, options)
        return read_text_bytes(data, path.suffix.lower(), options)


class ExcelReader(Reader):
    """Excel workbooks: .xlsx through openpyxl, legacy .xls through xlrd; sheets are sublayers.

    A ".xls" that is really delimited text (a common export) is read as text, with a warning;
    an HTML table posing as ".xls" is refused.
    """

    name = "excel"
    suffixes = (".xlsx", ".xlsm", ".xls")

    def sublayers(self, path: Path) -> list[str]:
        """Names of the non-empty sheets when there are several, else []."""
        data = path.read_bytes()
        kind = _spreadsheet_kind(data)
        if kind not in ("xlsx", "xls"):
            return []
        names = [name for name, rows in _sheets(data, kind, str(path)) if _has_cells(rows)]
        return names if len(names) > 1 else []

    def read(self, path: Path, sublayer: str | None, options: ReadOptions) -> RawLayer:
        """Read one sheet (``sublayer``), or the first non-empty sheet when it is None.

        Raises:
            ingest.errors.SourceRefused: empty file, Git-LFS pointer, a workbook that cannot be
                opened, an HTML page posing as a workbook, or no sheet of that name.
        """
        data = read_source_bytes(path, options)
        kind = _spreadsheet_kind(data)
        if kind == "text":
            raw = read_text_bytes(data, ".csv", options)
            raw.warnings.insert(0, f"{path.name} is delimited text, not a workbook: read as text")
            return raw
        if kind == "html":
            raise SourceRefused(
                options.display,
                "html-not-spreadsheet",
                "this file is an HTML page (a web table), not an Excel workbook",
                "open it in Excel or LibreOffice and save it as .xlsx or .csv",
            )
        if kind is None:
            raise _unreadable(options, "it is neither .xlsx (zip) nor .xls (OLE2)")
        _sheet, rows, decisions, warnings = _pick_sheet(data, kind, sublayer, options)
        builder = TableBuilder(options, where="row", decisions=decisions, warnings=warnings)
        raw = builder.build(Grid.from_rows(rows))
        raw.sublayer = sublayer
        return raw


# --- bytes and text ------------------------------------------------------------------------------


def read_source_bytes(path: Path, options: ReadOptions) -> bytes:
    """The file's bytes; refuses empty files and Git-LFS pointers.

    Args:
        path: the file.
        options: the manifest's options (``display`` names the file in messages).

    Raises:
        ingest.errors.SourceRefused: reason "empty" or "git-lfs-pointer".
    """
    data = path.read_bytes()
    if not data.strip(b" \t\r\n\x00" + _BOM_UTF8):
        raise SourceRefused(
            options.display,
            "empty",
            f"{path.name} is empty (0 records, no header)",
            "hand in the file with its data",
        )
    if data.startswith(LFS_MAGIC):
        raise SourceRefused(
            options.display,
            "git-lfs-pointer",
            f"{path.name} is a Git-LFS pointer file, not the data itself",
            "fetch the real file with `git lfs pull` (or download it from the LFS server) "
            "and hand that in",
        )
    return data


def read_text_bytes(data: bytes, suffix: str, options: ReadOptions) -> RawLayer:
    """Decode, split and build a layer from the bytes of a delimited text file.

    Args:
        data: the file's bytes.
        suffix: the file's lower-case suffix (".tsv" prefers tab on a tie).
        options: the manifest's options.

    Returns:
        The layer as read.

    Raises:
        ingest.errors.SourceRefused: see :meth:`DelimitedTextReader.read`.
    """
    text, enc_decision, repairs = decode_text(data, options)
    delimiter, delim_decision = sniff_delimiter(text, suffix)
    grid = split_text(text, delimiter, options)
    builder = TableBuilder(options, where="line", decisions=[enc_decision, delim_decision])
    builder.repairs.extend(repairs)
    return builder.build(grid)


def decode_text(data: bytes, options: ReadOptions) -> tuple[str, Decision, list[Repair]]:
    """Decode a text file: override > BOM > valid UTF-8 > CP950/Big5 > best effort, reported.

    Args:
        data: the file's bytes.
        options: ``encoding`` is the manifest's override, ``display`` names the file.

    Returns:
        The text, the encoding decision and the repairs decoding needed (vendor characters,
        undecodable bytes, with their line numbers).

    Raises:
        ingest.errors.SourceRefused: reason "unknown-encoding" for an override Python does not
            know.
    """
    if options.encoding:
        return _decode_override(data, options)
    if data.startswith(_BOM_UTF8):
        text, repairs = _decode_lines(data[3:], "utf-8")
        return text, Decision("encoding", "utf-8", "bom", 1.0, "UTF-8 byte-order mark"), repairs
    if data.startswith(_BOM_UTF16):
        text = data.decode("utf-16", errors="replace")
        bad = text.count("\ufffd")
        repairs = [_undecodable(bad, [])] if bad else []
        return text, Decision("encoding", "utf-16", "bom", 1.0, "UTF-16 byte-order mark"), repairs
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_not_utf8(data)
    if data.isascii():
        return text, Decision("encoding", "utf-8", "bytes", 1.0, "ASCII only"), []
    detail = "valid UTF-8 (no BOM)"
    return text, Decision("encoding", "utf-8", "bytes", 0.99, detail), []


def _decode_override(data: bytes, options: ReadOptions) -> tuple[str, Decision, list[Repair]]:
    try:
        codec = enc.normalise(options.encoding or "")
    except LookupError as e:
        raise SourceRefused(
            options.display,
            "unknown-encoding",
            f"the manifest names encoding {options.encoding!r}, which is not a known encoding",
            "use a name such as utf-8 or cp950 (Big5)",
        ) from e
    decision = Decision("encoding", codec, "manifest", 1.0, "as the manifest says")
    if codec == "utf-8" and data.startswith(_BOM_UTF8):
        data = data[3:]
    if codec in ("utf-8", "cp950"):
        text, repairs = _decode_lines(data, codec)
        return text, decision, repairs
    try:
        return data.decode(codec), decision, []
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        return text, decision, [_undecodable(text.count("\ufffd"), [])]


def _decode_not_utf8(data: bytes) -> tuple[str, Decision, list[Repair]]:
    try:
        text = data.decode("cp950")
    except UnicodeDecodeError:
        pass
    else:
        detail = "not valid UTF-8; valid CP950 (Big5)"
        return text, Decision("encoding", "cp950", "bytes", 0.9, detail), []
    big5, big5_log = _decode_lines_logged(data, "cp950")
    if not big5_log.undecodable:
        detail = "not valid UTF-8; CP950 (Big5) with vendor-extension characters"
        return big5, Decision("encoding", "cp950", "bytes", 0.8, detail), _repairs(big5_log)
    utf8, utf8_log = _decode_lines_logged(data, "utf-8")
    bad_big5, bad_utf8 = len(set(big5_log.undecodable)), len(set(utf8_log.undecodable))
    if bad_utf8 < bad_big5:
        detail = (
            f"neither valid UTF-8 nor CP950; read as UTF-8, which leaves fewer undecodable lines "
            f"({bad_utf8} against {bad_big5} as Big5)"
        )
        return utf8, Decision("encoding", "utf-8", "bytes", 0.3, detail), _repairs(utf8_log)
    detail = (
        f"neither valid UTF-8 nor CP950; read as CP950 (Big5) with {bad_big5} undecodable "
        "line(s) replaced"
    )
    return big5, Decision("encoding", "cp950", "bytes", 0.3, detail), _repairs(big5_log)


def _decode_lines(data: bytes, codec: str) -> tuple[str, list[Repair]]:
    try:
        return data.decode(codec), []
    except UnicodeDecodeError:
        text, log = _decode_lines_logged(data, codec)
        return text, _repairs(log)


def _decode_lines_logged(data: bytes, codec: str) -> tuple[str, enc.DecodeLog]:
    """Decode line by line so every repair names its line (0x0A is never a Big5 trail byte)."""
    log = enc.DecodeLog()
    lines = []
    for i, raw in enumerate(data.split(b"\n"), 1):
        if codec == "cp950":
            lines.append(decode_big5_line(raw, f"line {i}", log))
        else:
            lines.append(enc.decode(raw, codec, f"line {i}", log))
    return "\n".join(lines), log


def decode_big5_line(raw: bytes, record: str, log: enc.DecodeLog) -> str:
    """Decode CP950; vendor codes mapped (MOI table, then Big5-HKSCS), the rest replaced.

    Only a lead byte followed by a valid trail byte is taken as a pair, so an invalid byte
    never swallows the delimiter or character after it.

    Args:
        raw: one line's bytes.
        record: how repairs name it ("line 12").
        log: where vendor characters and undecodable bytes are logged.

    Returns:
        The text.
    """
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        try:
            out.append(raw[pos:].decode("cp950"))
            break
        except UnicodeDecodeError as e:
            out.append(raw[pos : pos + e.start].decode("cp950"))
            pos += e.start
        pair = raw[pos : pos + 2]
        if len(pair) == 2 and 0x81 <= pair[0] <= 0xFE and _is_big5_trail(pair[1]):
            out.append(_vendor_char(pair, record, log))
            pos += 2
        else:
            out.append("\ufffd")
            log.undecodable.append(record)
            pos += 1
    return "".join(out)


def _is_big5_trail(byte: int) -> bool:
    return 0x40 <= byte <= 0x7E or 0xA1 <= byte <= 0xFE


def _vendor_char(pair: bytes, record: str, log: enc.DecodeLog) -> str:
    if pair in enc.MOI_VENDOR:
        ch = enc.MOI_VENDOR[pair]
        log.vendor[ch].append(record)
        return ch
    try:
        ch = pair.decode("big5hkscs")
    except UnicodeDecodeError:
        log.undecodable.append(record)
        return "\ufffd"
    log.vendor_via_hkscs[ch].append(record)
    return ch


def _repairs(log: enc.DecodeLog) -> list[Repair]:
    out: list[Repair] = []
    if log.utf8_cut:
        out.append(
            Repair(
                "utf8-cut",
                len(log.utf8_cut),
                "UTF-8 cut mid-character at the end of a line: the partial character was dropped",
                tuple(log.utf8_cut[:50]),
            )
        )
    for label, table, how in (
        ("vendor-char", log.vendor, "Taiwan household-registration vendor table"),
        ("vendor-char-hkscs", log.vendor_via_hkscs, "Big5-HKSCS table (verify)"),
    ):
        for ch, recs in table.items():
            detail = f"Big5 vendor character decoded as {ch} via the {how}"
            out.append(Repair(label, len(recs), detail, tuple(dict.fromkeys(recs))[:50]))
    if log.undecodable:
        lines = list(dict.fromkeys(log.undecodable))
        out.append(_undecodable(len(lines), lines))
    return out


def _undecodable(count: int, records: Sequence[str]) -> Repair:
    """``count`` lines (or values) with bytes replaced by U+FFFD."""
    detail = "lines with bytes that decode in no candidate encoding; those bytes became U+FFFD"
    return Repair("undecodable-bytes", count, detail, tuple(records[:50]))


def sniff_delimiter(text: str, suffix: str = "") -> tuple[str, Decision]:
    """Choose the delimiter (comma, tab, pipe, semicolon) that splits the rows most evenly.

    Args:
        text: the decoded text.
        suffix: the file's suffix; ".tsv" wins ties for tab.

    Returns:
        The delimiter and the decision (value "," "tab" "|" or ";").
    """
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    order = ("\t", *[d for d in DELIMITERS if d != "\t"]) if suffix == ".tsv" else DELIMITERS
    best, best_score = order[0], (0.0, 0)
    for d in order:
        score = _delimiter_score(sample, d)
        if score > best_score:
            best, best_score = d, score
    consistency, fields = best_score
    if fields < 2:
        detail = "no delimiter splits the rows: one column"
        return best, Decision("delimiter", DELIMITER_NAMES[best], "bytes", 0.3, detail)
    detail = f"{fields} fields in {consistency:.0%} of the first rows"
    return best, Decision(
        "delimiter", DELIMITER_NAMES[best], "bytes", round(consistency, 2), detail
    )


def _delimiter_score(sample: str, delimiter: str) -> tuple[float, int]:
    try:
        rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
    except csv.Error:
        return (0.0, 0)
    counts = [len(r) for r in rows[:200] if any(c.strip() for c in r)]
    if not counts:
        return (0.0, 0)
    fields, freq = Counter(counts).most_common(1)[0]
    if fields < 2:
        return (0.0, 0)
    return (freq / len(counts), fields)


def split_text(text: str, delimiter: str, options: ReadOptions) -> Grid:
    """Split text into cells; quoted cells may hold delimiters and line breaks.

    pandas' C tokenizer does the work when every row fits the first row's width (fast for
    millions of rows); otherwise (a title line, ragged rows, broken quoting) the csv module.

    Raises:
        ingest.errors.SourceRefused: reason "malformed-csv" when the csv parser gives up.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(text.encode("utf-8")),
            sep=delimiter,
            header=None,
            dtype=object,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            encoding="utf-8",
            low_memory=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return Grid.from_rows(split_rows(text, delimiter, options))
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    return Grid(columns, _line_numbers(text, columns, len(frame)))


def _line_numbers(text: str, columns: Sequence[Sequence[str]], n: int) -> list[int]:
    """The line each row starts on (rows span several lines when cells hold line breaks)."""
    breaks = text.count("\n") + (0 if text.endswith("\n") else 1)
    if breaks == n:
        return list(range(1, n + 1))
    extra = np.zeros(n, dtype=np.int64)
    for col in columns:
        extra += np.fromiter((v.count("\n") for v in col), dtype=np.int64, count=n)
    starts = np.arange(1, n + 1) + np.concatenate(([0], np.cumsum(extra)[:-1]))
    return starts.tolist()


def split_rows(text: str, delimiter: str, options: ReadOptions) -> list[Row]:
    """Rows of cells with the line each starts on, through the (lenient) csv module.

    Raises:
        ingest.errors.SourceRefused: reason "malformed-csv" when the csv parser gives up.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[Row] = []
    start = 1
    try:
        for cells in reader:
            rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as e:
        raise SourceRefused(
            options.display,
            "malformed-csv",
            f"cannot split line {reader.line_num} into cells ({e})",
            "check the quoting on that line",
        ) from e
    return rows


# --- workbooks -----------------------------------------------------------------------------------


def _spreadsheet_kind(data: bytes) -> str | None:
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(_CFB_MAGIC):
        return "xls"
    head = data[:4096].lstrip(_BOM_UTF8 + b" \t\r\n").lower()
    if head.startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"<meta")):
        return "html"
    if b"\x00" in head:
        return None
    return "text"


def _sheets(data: bytes, kind: str, display: str) -> list[tuple[str, list[Row]]]:
    try:
        return _xlsx_sheets(data) if kind == "xlsx" else _xls_sheets(data)
    except SourceRefused:
        raise
    except Exception as e:  # openpyxl, xlrd and zipfile raise many kinds: all mean "unreadable"
        raise _unreadable(ReadOptions(display), f"{type(e).__name__}: {e}") from e


def _xlsx_sheets(data: bytes) -> list[tuple[str, list[Row]]]:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        out = []
        for ws in wb.worksheets:
            rows = [
                (i, [cell_text(v) for v in values])
                for i, values in enumerate(ws.iter_rows(values_only=True), 1)
            ]
            out.append((ws.title, rows))
        return out
    finally:
        wb.close()


def _xls_sheets(data: bytes) -> list[tuple[str, list[Row]]]:
    import xlrd

    book = xlrd.open_workbook(file_contents=data, on_demand=True)
    try:
        out = []
        for sheet in book.sheets():
            rows = [
                (r + 1, [_xls_cell(sheet.cell(r, c), book.datemode) for c in range(sheet.ncols)])
                for r in range(sheet.nrows)
            ]
            out.append((sheet.name, rows))
        return out
    finally:
        book.release_resources()


def _xls_cell(cell: object, datemode: int) -> str:
    import xlrd

    ctype, value = cell.ctype, cell.value  # type: ignore[attr-defined]
    if ctype == xlrd.XL_CELL_DATE:
        try:
            return cell_text(xlrd.xldate.xldate_as_datetime(value, datemode))
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell_text(value)
    if ctype == xlrd.XL_CELL_BOOLEAN:
        return cell_text(bool(value))
    if ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "#ERR")
    if ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    return cell_text(value)


def cell_text(value: object) -> str:
    """A workbook cell as text: numbers without a spurious ".0", dates in ISO form.

    Args:
        value: the cell's value as openpyxl or xlrd gives it.

    Returns:
        "" for an empty cell; "TRUE"/"FALSE" for booleans; "2023-01-31" for a date (or a
        datetime at midnight); "2023-01-31 08:30:00" for other datetimes; integral floats as
        integers; other floats in their shortest round-trip form.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _has_cells(rows: list[Row]) -> bool:
    return any(c.strip() for _, cells in rows for c in cells)


def _pick_sheet(
    data: bytes, kind: str, sublayer: str | None, options: ReadOptions
) -> tuple[str, list[Row], list[Decision], list[str]]:
    sheets = _sheets(data, kind, options.display)
    filled = [(n, rows) for n, rows in sheets if _has_cells(rows)]
    warnings: list[str] = []
    if sublayer is not None:
        match = [(n, rows) for n, rows in sheets if n == sublayer]
        if not match:
            names = ", ".join(n for n, _ in sheets)
            raise SourceRefused(
                options.display,
                "no-such-sheet",
                f"the workbook has no sheet {sublayer!r} (sheets: {names})",
                "name one of its sheets",
            )
        name, rows = match[0]
    elif filled:
        name, rows = filled[0]
        if len(filled) > 1:
            warnings.append(f"the workbook has {len(filled)} sheets with data; read {name!r}")
    else:  # no sheet holds a value: the builder refuses it as empty
        name, rows = (sheets[0][0] if sheets else ""), []
    detail = f"sheet {name!r} of {len(sheets)}"
    return name, rows, [Decision("sheet", name, "default", 1.0, detail)], warnings


def _unreadable(options: ReadOptions, why: str) -> SourceRefused:
    return SourceRefused(
        options.display,
        "unreadable-spreadsheet",
        f"cannot open the workbook ({why})",
        "open it in Excel or LibreOffice and save it again as .xlsx (not password-protected)",
    )


# --- the table -----------------------------------------------------------------------------------


@dataclass
class Grid:
    """Cells by column (every column as long as the grid) and the line or row each row is on.

    Attributes:
        columns: the cells, column by column ("" for an empty or missing cell).
        lines: the source line (text) or sheet row (workbook) of each row, 1-based.
    """

    columns: list[Sequence[str]]
    lines: list[int]

    @classmethod
    def from_rows(cls, rows: list[Row]) -> Grid:
        """A grid from ragged rows, short rows padded with ""."""
        width = max((len(cells) for _, cells in rows), default=0)
        padded = [cells + [""] * (width - len(cells)) for _, cells in rows]
        columns = [list(col) for col in zip(*padded, strict=True)] if padded else []
        return cls(columns, [line for line, _ in rows])

    def __len__(self) -> int:
        return len(self.lines)

    def row(self, i: int, trim: bool = True) -> list[str]:
        """The cells of row ``i`` (0-based), trailing empty cells dropped when ``trim``."""
        cells = [col[i] for col in self.columns]
        while trim and cells and not cells[-1].strip():
            cells.pop()
        return cells


@dataclass
class Header:
    """Where the header is and what was skipped around it.

    Attributes:
        index: the header row's index in the grid.
        data_from: the index of the first data row.
        decision: the "header_rows" decision.
    """

    index: int
    data_from: int
    decision: Decision


@dataclass
class TableBuilder:
    """Turns a grid of text cells into a :class:`RawLayer` (shared by both readers).

    Attributes:
        options: the manifest's options.
        where: how rows are numbered in messages: "line" (text) or "row" (sheet).
        decisions: decisions taken so far (encoding, delimiter, sheet), appended to.
        repairs: repairs made so far.
        warnings: warnings so far.
    """

    options: ReadOptions
    where: str = "line"
    decisions: list[Decision] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _unnamed: set[str] = field(default_factory=set, repr=False)

    def build(self, grid: Grid) -> RawLayer:
        """Header, data rows, coordinate columns, geometry and attributes.

        Raises:
            ingest.errors.SourceRefused: no cell with a value, override columns missing, or
                an invalid override CRS.
        """
        header = locate_header(grid, self.where)
        if header is None:
            raise SourceRefused(
                self.options.display, "empty", "no rows in it", "hand in the file with its data"
            )
        self.decisions.append(header.decision)
        names = self._names(grid.row(header.index, trim=False))
        lines, columns = self._body(grid, header.data_from)
        names, columns = self._drop_unnamed_empty(names, columns, lines)
        pick = choose_coordinates(names, columns, self.options)
        self.decisions.extend(pick.decisions)
        self.warnings.extend(pick.warnings)
        geometry = None
        if pick.x is not None and pick.y is not None:
            geometry = self._points(columns, (names[pick.x], names[pick.y]), lines, pick)
        attrs = pd.DataFrame(
            {
                names[i]: pd.Series(_none_for_empty(col), dtype=object)
                for i, col in enumerate(columns)
                if i not in (pick.x, pick.y)
            },
            index=pd.RangeIndex(len(lines)),
        )
        crs_wkt, evidence = self._crs(geometry is not None)
        return RawLayer(
            sublayer=None,
            attributes=attrs,
            geometry=geometry,
            crs_wkt=crs_wkt,
            crs_evidence=evidence,
            text_columns=tuple(attrs.columns),
            decisions=self.decisions,
            repairs=self.repairs,
            warnings=self.warnings,
        )

    def _names(self, cells: list[str]) -> list[str]:
        names: list[str] = []
        seen: Counter[str] = Counter()
        for i, cell in enumerate(cells, 1):
            name = clean_name(cell)
            if not name:
                name = f"column_{i}"
                self._unnamed.add(name)
            seen[name] += 1
            if seen[name] > 1:
                new = f"{name}_{seen[name]}"
                self.warnings.append(f"column name {name!r} repeats: the repeat is named {new!r}")
                name = new
            names.append(name)
        return names

    def _drop_unnamed_empty(
        self, names: list[str], columns: list[np.ndarray], lines: list[int]
    ) -> tuple[list[str], list[np.ndarray]]:
        """Columns with neither a name nor a value (trailing delimiters) are not columns.

        A column without a name that holds values (rows with more cells than the header:
        often an unquoted delimiter inside a value) is kept, named, and reported.
        """
        keep = []
        for i, (name, col) in enumerate(zip(names, columns, strict=True)):
            rows = np.flatnonzero(col != "")
            if name in self._unnamed and not len(rows):
                continue
            keep.append(i)
            if name in self._unnamed:
                where = ", ".join(f"{self.where} {lines[r]}" for r in rows[:5])
                self.warnings.append(
                    f"column {i + 1} has no name but {len(rows)} value(s) ({where}): named "
                    f"{name!r}; check those rows for a delimiter inside a value"
                )
        return [names[i] for i in keep], [columns[i] for i in keep]

    def _body(self, grid: Grid, start: int) -> tuple[list[int], list[np.ndarray]]:
        """The data rows' columns without the rows that hold nothing (reported if inside)."""
        lines = np.asarray(grid.lines[start:], dtype=np.int64)
        cols = [np.asarray(c[start:], dtype=object) for c in grid.columns]
        filled = np.zeros(len(lines), dtype=bool)
        for c in cols:
            filled |= c != ""
        last = np.flatnonzero(filled)
        interior = ~filled[: last[-1] + 1] if len(last) else np.zeros(0, dtype=bool)
        if interior.any():  # blank lines at the end are not worth a word
            recs = tuple(f"{self.where} {n}" for n in lines[: len(interior)][interior][:50])
            detail = "rows with no value in any column were skipped"
            self.repairs.append(Repair("empty-rows", int(interior.sum()), detail, recs))
        return lines[filled].tolist(), [c[filled] for c in cols]

    def _points(
        self,
        columns: list[np.ndarray],
        xy_names: tuple[str, str],
        lines: list[int],
        pick: Coordinates,
    ) -> np.ndarray:
        xs, ys = columns[pick.x or 0], columns[pick.y or 0]
        (x, bad_x), (y, bad_y) = pick.parsed or (parse_numbers(xs), parse_numbers(ys))
        if pick.swapped:
            x, y = y, x
        bad = sorted(set(bad_x) | set(bad_y))
        if bad:
            where = ", ".join(f"{self.where} {lines[i]}: {xs[i]!r}/{ys[i]!r}" for i in bad[:5])
            self.warnings.append(
                f"{len(bad)} row(s) have {xy_names[0]}/{xy_names[1]} values that are not "
                f"numbers ({where}): no geometry for them"
            )
        geoms = np.full(len(x), None, dtype=object)
        ok = np.isfinite(x) & np.isfinite(y)
        geoms[ok] = shapely.points(x[ok], y[ok])
        return geoms

    def _crs(self, has_geometry: bool) -> tuple[str | None, str]:
        if not self.options.crs or not has_geometry:
            return None, "none"
        return crs_wkt(self.options), "manifest"


def _none_for_empty(col: np.ndarray) -> np.ndarray:
    out = col.copy()
    out[out == ""] = None
    return out


def crs_wkt(options: ReadOptions) -> str:
    """The WKT of the manifest's CRS override.

    Raises:
        ingest.errors.SourceRefused: reason "bad-crs" when pyproj does not know it.
    """
    try:
        return pyproj.CRS.from_user_input(options.crs).to_wkt()
    except pyproj.exceptions.CRSError as e:
        raise SourceRefused(
            options.display,
            "bad-crs",
            f"the manifest's crs {options.crs!r} is not a CRS pyproj knows",
            "write it as EPSG:3826 (TWD97 TM2 121), EPSG:3828 (TWD67 TM2 121), EPSG:4326, …",
        ) from e


def clean_name(cell: str) -> str:
    """A header cell without surrounding spaces, BOMs or zero-width characters."""
    return cell.strip().strip("\ufeff\u200b").strip()


# --- the header ----------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9 _./()#%&'-]*$")
_ENGLISH_HEADER_WORDS = frozenset(
    {
        "id", "no", "name", "address", "addr", "phone", "tel", "district", "town", "village",
        "city", "county", "type", "class", "category", "date", "time", "year", "area", "length",
        "radius", "note", "notes", "remark", "remarks", "code", "x", "y", "lon", "lng", "lat",
        "longitude", "latitude", "count", "number", "status", "description", "title", "url",
    }
)  # fmt: skip


def _first_rows(grid: Grid, wanted: int) -> list[tuple[int, list[str]]]:
    """The first ``wanted`` non-blank rows as (index, cells)."""
    out = []
    for i in range(len(grid)):
        cells = grid.row(i)
        if any(c.strip() for c in cells):
            out.append((i, cells))
            if len(out) == wanted:
                break
    return out


def locate_header(grid: Grid, where: str = "line") -> Header | None:
    """Find the header row: skip blank leading rows and single-cell title rows above it.

    A second row that repeats the header in English (編號|名稱 then ID|Name) is skipped too.

    Args:
        grid: the cells.
        where: "line" or "row", for the decision's wording.

    Returns:
        Where the header and the data are, or None when no cell holds a value.
    """
    first = _first_rows(grid, _MAX_TITLE_ROWS + 2 + _LOOKAHEAD)
    if not first:
        return None
    notes = []
    if first[0][0]:
        notes.append(f"{first[0][0]} blank {where}(s) before the header skipped")
    titles = _title_rows(first)
    if titles:
        shown = "; ".join(repr(" ".join(c for c in cells if c.strip())) for _, cells in titles)
        notes.append(f"title {shown} above the header skipped")
    index, cells = first[len(titles)]
    line = grid.lines[index]
    detail = f"column names from {where} {line}"
    rest = first[len(titles) + 1 :]
    if rest and _is_english_copy(cells, rest[0][1], [c for _, c in rest[1:]]):
        second = rest[0][0]
        shown = ", ".join(c.strip() for c in rest[0][1] if c.strip())
        detail += f"; {where} {grid.lines[second]} ({shown}) repeats them in English: skipped"
        detail = "; ".join([detail, *notes])
        return Header(index, second + 1, Decision("header_rows", "2", "values", 0.9, detail))
    if notes:
        detail = "; ".join([detail, *notes])
        return Header(index, index + 1, Decision("header_rows", "1", "values", 0.8, detail))
    return Header(index, index + 1, Decision("header_rows", "1", "default", 1.0, detail))


def _title_rows(first: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Rows of one cell (at the row's start) above the first row of two or more cells."""
    for k, (_, cells) in enumerate(first[: _MAX_TITLE_ROWS + 1]):
        if sum(1 for c in cells if c.strip()) >= 2:
            titles = first[:k]
            return titles if all(c[0].strip() for _, c in titles) else []
    return []


def _is_english_copy(header: list[str], second: list[str], below: list[list[str]]) -> bool:
    head = [c.strip() for c in header]
    cells = [c.strip() for c in second]
    if not any(_CJK.search(c) for c in head):
        return False
    filled = [c for c in cells if c]
    if len(filled) < max(2, sum(1 for c in head if c) // 2):
        return False
    if not all(_LABEL.match(c) for c in filled):
        return False
    words = sum(1 for c in filled if c.lower() in _ENGLISH_HEADER_WORDS)
    if words >= max(1, len(filled) // 2):
        return True
    for j, cell in enumerate(cells):
        column = [r[j].strip() for r in below if j < len(r) and r[j].strip()]
        if cell and column and all(_number(v) is not None for v in column):
            return True
    return False


# --- coordinates ---------------------------------------------------------------------------------

_NAME_NOISE = re.compile(r"[\s_\-()（）\[\]【】:：.,/]")
_AFFIXES = (
    "twd97", "twd67", "wgs84", "tm2", "twd", "gps", "point", "坐標", "座標", "coordinate",
    "coord", "97", "67", "值",
)  # fmt: skip
# core name → (axis, family, strength): strength 3 lon/lat, 2 explicit X/Y, 1 bare X/Y, 0 E/N
_CORES: dict[str, tuple[str, str, int]] = {
    "經度": ("x", "lonlat", 3),
    "lon": ("x", "lonlat", 3),
    "lng": ("x", "lonlat", 3),
    "long": ("x", "lonlat", 3),
    "longitude": ("x", "lonlat", 3),
    "緯度": ("y", "lonlat", 3),
    "lat": ("y", "lonlat", 3),
    "latitude": ("y", "lonlat", 3),
    "橫": ("x", "projected", 2),
    "縱": ("y", "projected", 2),
    "easting": ("x", "projected", 2),
    "northing": ("y", "projected", 2),
    "x": ("x", "projected", 1),
    "y": ("y", "projected", 1),
    "e": ("x", "projected", 0),
    "n": ("y", "projected", 0),
}
_TM2_X = (100_000.0, 400_000.0)
_TM2_Y = (2_400_000.0, 2_900_000.0)
_SHARE = 0.9  # share of rows a range class needs
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


@dataclass
class Coordinates:
    """The coordinate columns chosen (indexes into the column list) and why.

    Attributes:
        x: the column read as x (longitude or easting), or None for a table.
        y: the column read as y, or None.
        swapped: True when the values are read the other way round (x from ``y``'s column).
        decisions: "columns" and "coordinates" decisions.
        warnings: anything a person should check.
        parsed: the x and y columns' values as :func:`parse_numbers` gives them (before any
            swap), or None.
    """

    x: int | None = None
    y: int | None = None
    swapped: bool = False
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parsed: tuple[tuple[np.ndarray, list[int]], tuple[np.ndarray, list[int]]] | None = None


def classify_header(name: str) -> tuple[str, str, int] | None:
    """Whether a header names a coordinate: (axis "x"|"y", family, strength) or None.

    Tolerates case, spaces, full-width characters and affixes: 經度, Longitude, lon, X坐標,
    TWD97X, POINT_X, 橫坐標, 縱座標67, X座標(TWD97), E, N …

    Args:
        name: the header as written.

    Returns:
        The axis, the family ("lonlat" or "projected") and a strength (3 lon/lat names,
        2 explicit projected names, 1 bare X/Y, 0 E/N); None for other names.
    """
    n = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", name).lower())
    core, stripped = _strip_affixes(n)
    hit = _CORES.get(core)
    if hit is None:
        return None
    axis, family, strength = hit
    if stripped and strength < 2:
        strength = 2
    return axis, family, strength


def _strip_affixes(n: str) -> tuple[str, bool]:
    stripped = False
    changed = True
    while changed and n:
        changed = False
        for a in _AFFIXES:
            if n.startswith(a) and len(n) > len(a):
                n, changed, stripped = n[len(a) :], True, True
            elif n.endswith(a) and len(n) > len(a):
                n, changed, stripped = n[: -len(a)], True, True
    return n, stripped


def choose_coordinates(
    names: list[str], columns: Sequence[np.ndarray], options: ReadOptions
) -> Coordinates:
    """Choose the coordinate columns: manifest override, else headers checked against values.

    Args:
        names: column names.
        columns: the columns' cells.
        options: ``x``/``y`` name override columns; ``crs`` decides between a lon/lat and a
            projected pair when both are present.

    Returns:
        The choice; ``x``/``y`` None when the table has no coordinate columns.

    Raises:
        ingest.errors.SourceRefused: reason "column-missing" for an override column that is
            not in the header (or only one of x/y given).
    """
    if options.x or options.y:
        return _override_columns(names, columns, options)
    for xi, yi, family, strength in _candidate_pairs(names, options):
        x, y = parse_numbers(columns[xi]), parse_numbers(columns[yi])
        pick = _judge_pair(names, (xi, yi), (x[0], y[0]), family, strength)
        if pick is not None:
            pick.parsed = (x, y)
            return pick
    return Coordinates()


def _override_columns(
    names: list[str], columns: Sequence[np.ndarray], options: ReadOptions
) -> Coordinates:
    if not (options.x and options.y):
        raise SourceRefused(
            options.display,
            "column-missing",
            "the manifest names only one coordinate column",
            "give both x and y (or neither, to let ingest find them)",
        )
    xi, yi = _find_column(names, options.x, options), _find_column(names, options.y, options)
    pick = Coordinates(xi, yi)
    detail = f"x from {names[xi]}, y from {names[yi]}, as the manifest says"
    pick.decisions.append(Decision("columns", f"{names[xi]},{names[yi]}", "manifest", 1.0, detail))
    pick.parsed = (parse_numbers(columns[xi]), parse_numbers(columns[yi]))
    x, y = pick.parsed[0][0], pick.parsed[1][0]
    kind, _share = range_kind(x, y)
    pick.decisions.append(_coordinates_decision(kind, x, y))
    if kind.endswith("-swapped"):
        pick.warnings.append(
            f"the manifest's x column {names[xi]} holds values that look like y and y like x; "
            "read as the manifest says"
        )
    return pick


def _find_column(names: list[str], wanted: str, options: ReadOptions) -> int:
    if wanted in names:
        return names.index(wanted)
    key = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", wanted).lower())
    for i, n in enumerate(names):
        if _NAME_NOISE.sub("", unicodedata.normalize("NFKC", n).lower()) == key:
            return i
    raise SourceRefused(
        options.display,
        "column-missing",
        f"the manifest names coordinate column {wanted!r}, which is not in the header "
        f"({', '.join(names)})",
        "correct x/y in the manifest",
    )


def _candidate_pairs(names: list[str], options: ReadOptions) -> list[tuple[int, int, str, int]]:
    heads = [(i, classify_header(n)) for i, n in enumerate(names)]
    xs = [(i, h) for i, h in heads if h is not None and h[0] == "x"]
    ys = [(i, h) for i, h in heads if h is not None and h[0] == "y"]
    pairs = [
        (xi, yi, hx[1], min(hx[2], hy[2]))
        for xi, hx in xs
        for yi, hy in ys
        if hx[1] == hy[1] and (hx[2] > 0) == (hy[2] > 0)
    ]
    prefer = _preferred_family(options)
    pairs.sort(key=lambda p: (p[2] != prefer, -p[3], abs(p[1] - p[0]), p[0]))
    return pairs


def _preferred_family(options: ReadOptions) -> str:
    if not options.crs:
        return "lonlat"
    try:
        geographic = pyproj.CRS.from_user_input(options.crs).is_geographic
    except pyproj.exceptions.CRSError:
        return "lonlat"
    return "lonlat" if geographic else "projected"


def _judge_pair(
    names: list[str],
    index: tuple[int, int],
    values: tuple[np.ndarray, np.ndarray],
    family: str,
    strength: int,
) -> Coordinates | None:
    (xi, yi), (x, y) = index, values
    both = np.isfinite(x) & np.isfinite(y)
    if not both.any():
        return None
    kind, share = range_kind(x, y)
    if strength <= 1 and kind == "unknown" and both.mean() < _SHARE:
        return None
    if strength == 0 and kind == "unknown":
        return None
    pick = Coordinates(xi, yi, swapped=kind.endswith("-swapped"))
    xn, yn = names[xi], names[yi]
    if pick.swapped:
        detail = (
            f"headers {xn}/{yn} are swapped: {yn} holds x values "
            f"({_span(y)}) and {xn} y values ({_span(x)}); x is read from {yn}, y from {xn}"
        )
        decision = Decision("columns", f"{yn},{xn}", "values", round(share, 2), detail)
        pick.decisions.append(decision)
        x, y = y, x
        kind = kind.removesuffix("-swapped")
    else:
        agree = "values agree" if kind != "unknown" else "values in no known range"
        detail = f"x from {xn}, y from {yn} ({_family_text(family)} by name; {agree})"
        confidence = 1.0 if strength >= 2 and kind != "unknown" else 0.8
        pick.decisions.append(Decision("columns", f"{xn},{yn}", "headers", confidence, detail))
    if family == "lonlat" and kind == "tm2":
        pick.warnings.append(f"{xn}/{yn} are named as degrees but hold TM2 metres")
    pick.decisions.append(_coordinates_decision(kind, x, y))
    return pick


def _family_text(family: str) -> str:
    return "longitude/latitude" if family == "lonlat" else "projected x/y"


def range_kind(x: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    """What the coordinate values look like: degrees, TM2 metres, either swapped, or unknown.

    Args:
        x: values of the x column (NaN where empty).
        y: values of the y column.

    Returns:
        ("degrees" | "degrees-swapped" | "tm2" | "tm2-swapped" | "unknown", share of the rows
        with both values that fit that class).
    """
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return "unknown", 0.0
    x, y = np.abs(x[ok]), np.abs(y[ok])
    classes = {
        "degrees": (x <= 180) & (y <= 90),
        "degrees-swapped": (x <= 90) & (y > 90) & (y <= 180),
        "tm2": _within(x, _TM2_X) & _within(y, _TM2_Y),
        "tm2-swapped": _within(x, _TM2_Y) & _within(y, _TM2_X),
    }
    shares = {k: float(v.mean()) for k, v in classes.items()}
    best = max(shares, key=lambda k: shares[k])
    if shares[best] < _SHARE:
        return "unknown", shares[best]
    return best, shares[best]


def _within(v: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (v >= bounds[0]) & (v <= bounds[1])


def _coordinates_decision(kind: str, x: np.ndarray, y: np.ndarray) -> Decision:
    spans = f"x {_span(x)}, y {_span(y)}"
    if kind == "degrees":
        detail = f"{spans}: longitude/latitude degrees"
        return Decision("coordinates", "degrees", "ranges", 0.95, detail)
    if kind == "tm2":
        detail = (
            f"{spans}: TM2 metres, a projected CRS (TWD97 or TWD67, zone 121 or 119): the CRS "
            "decision takes it from the ranges or the manifest"
        )
        return Decision("coordinates", "tm2-metres", "ranges", 0.9, detail)
    detail = f"{spans}: neither degrees nor Taiwan TM2 metres"
    return Decision("coordinates", "unknown", "ranges", 0.3, detail)


def _span(v: np.ndarray) -> str:
    ok = v[np.isfinite(v)]
    if not len(ok):
        return "none"
    return f"{ok.min():.10g}–{ok.max():.10g}"


def parse_numbers(cells: Sequence[str | None] | np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Coordinates from text: thousands separators and full-width digits allowed.

    Args:
        cells: the column's cells.

    Returns:
        The values (NaN where empty or not a finite number) and the indexes of the non-empty
        cells that are not numbers.
    """
    arr = np.asarray(cells, dtype=object)
    empty = pd.isna(arr) | (arr == "")
    try:
        values = np.where(empty, "nan", arr).astype("float64")
    except (ValueError, TypeError):
        values = np.array(pd.to_numeric(pd.Series(arr), errors="coerce"), dtype="float64")
    values[~np.isfinite(values)] = np.nan
    bad: list[int] = []
    for i in np.flatnonzero(np.isnan(values)):
        text = cells[i]
        if text is None or not text.strip():
            continue
        number = _number(text)
        if number is None:
            bad.append(int(i))
        else:
            values[i] = number
    return values, bad


def _number(text: str) -> float | None:
    t = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    try:
        v = float(t)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


READERS = {"csv": DelimitedTextReader(), "excel": ExcelReader()}
