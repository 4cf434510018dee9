"""Non-spatial datasets from agency catalog exports and supply lists (``geoportal ingest``).

An agency's supply list (供應清單) or catalog export lists every dataset it publishes; only some
name a spatial data source. ``geoportal ingest`` makes a catalog layer of each row that names a
data source (:func:`ingest.manifest.load_specs`); this module makes a portal dataset
(:class:`~portal.ckan.model.Dataset`, ``source`` "catalog-export") of every other row, from the
same table read the same way (:func:`ingest.manifest.read_supply_table`). It reads:

- supply lists and catalog exports (.csv/.tsv/.txt/.xlsx/.xls with Chinese headers), such as
  Taichung's catalog export and Taoyuan's supply list;
- data.gov.tw metadata records (JSON) — one file, or a folder of them — in both of the schema
  generations data.gov.tw has used (upper-case English keys: ``TITLE``, ``AGENCY``, ``RESOURCE``;
  and Chinese keys: ``title``, ``提供機關``, ``資料資源``, with optional ``[r]`` resource lists).

Every row becomes a dataset or is refused with its row number and the reason (no title, no
agency, the same dataset twice). Metadata is normalised as supply lists are for layers
(update frequency, service category, agency codes, licence): every rewrite is in
:attr:`CatalogImport.normalisations`, and the value as written stays in an extra.

Names are stable: the pinyin slug of the title (:func:`ingest.manifest.slugify`); titles whose
slug collides within an import get ``-`` and six hex digits of the hash of the row's own key (its
landing-page URL, data.gov.tw node, or agency and title), whatever the row order.
:func:`record` stores the datasets in a :class:`~portal.ckan.store.PortalStore`: a dataset
already stored for the same key keeps its name and id, so importing the same export again
changes nothing but the metadata that changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ingest.errors import ManifestError
from ingest.manifest import (
    LANDING_PAGE_HEADERS,
    LoadResult,
    Normalisation,
    SupplyTable,
    canonical_encoding,
    clean_line,
    clean_text,
    header_key,
    is_supply_list,
    normalise_metadata,
    read_supply_table,
    slugify,
    split_keywords,
)
from portal.ckan.layers import (
    dataset_id,
    license_id,
    organization_id,
    resource_id,
    tag_names,
)
from portal.ckan.model import Dataset, Organization, Resource

if TYPE_CHECKING:
    from portal.ckan.store import PortalStore

__all__ = [
    "EXTRA_COLUMNS",
    "IMPORT_EXTRAS",
    "SOURCE",
    "CatalogImport",
    "FileReport",
    "RecordCounts",
    "RefusedRow",
    "datasets_from_catalog",
    "datasets_from_catalogs",
    "is_catalog_source",
    "is_metadata_record",
    "record",
    "split_sources",
    "split_tags",
    "without_imported",
]

SOURCE = "catalog-export"
"""The ``source`` of the datasets this module makes (and the marker of their resources)."""

#: Extras an import writes (rewritten by every import; any other extra of a stored dataset is
#: kept).
IMPORT_EXTRAS = frozenset(
    {
        "source_key",
        "source_file",
        "source_row",
        "data_gov_tw_node",
        "maintainer_phone",
        "spatial_scope",
        "theme",
        "dataset_type",
        "language",
        "charge",
        "remarks",
        "related_url",
        "issued",
        "source_modified",
        "license_url",
        "license_text",
        "declared_formats",
        "declared_encoding",
        *(f"{name}_original" for name in ("agency", "category", "update_frequency", "license")),
    }
)

#: Columns read beside ``ingest.manifest.HEADER_SYNONYMS``: name → headers, preferred first.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "fields_description": ("主要欄位說明", "欄位說明", "資料欄位說明", "主要欄位", "欄位"),
    "contact": ("資料集提供機關聯絡人", "提供機關聯絡人", "聯絡人", "聯絡人姓名", "資料集聯絡人"),
    "phone": (
        "資料集提供機關聯絡人電話",
        "資料集提供機關電話",
        "提供機關聯絡人電話",
        "聯絡人電話",
        "聯絡電話",
        "電話",
    ),
    "email": (
        "資料集提供機關聯絡人電子郵件",
        "提供機關聯絡人電子郵件",
        "聯絡人電子郵件",
        "電子郵件",
        "電子信箱",
        "email",
        "e-mail",
    ),
    "spatial_scope": ("資料集空間範圍", "空間範圍"),
    "formats": ("檔案格式", "資源格式", "資料格式"),
    "license_url": ("授權說明網址",),
    "remarks": ("備註",),
    "theme": ("主題分類",),
    "dataset_type": ("資料集類型",),
    "language": ("資料集語系", "語系"),
    "charge": ("計費方式",),
    "issued": ("建立日期", "上架日期"),
    "modified": ("最後更新時間", "詮釋資料更新時間"),
}

_SHORT_HASH = 6
_RECORD_MAX_BYTES = 4 * 1024 * 1024  # a data.gov.tw record is a few kilobytes
_RECORD_SNIFF = 4096
_RECORD_KEY = re.compile(rb'"(?:TITLE|title|node|NODE)"\s*:')
_NAME_MAX = 80  # slug part; with "-" and a hash well under CKAN's 100
_RESOURCE_MARK = ("source", SOURCE)
# Escapes a crawler wrote as text ("\r\n", "\t", "\u0026", '\"'): JSON's, left undecoded.
_LINE_ESCAPES = re.compile(r"\\r\\n|\\n|\\r|\\t")
_CHAR_ESCAPES = re.compile(r'\\u([0-9a-fA-F]{4})|\\(["/])')
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE = re.compile(r"(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
# Keywords: agencies separate them with 、，,;； or newlines, and with spaces between Chinese
# words ("捐贈 芳名錄"); a space inside a Latin phrase ("Google Analytics") is kept.
_KEYWORD_SPACE = re.compile(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])")

#: Format labels as written (upper-cased) → CKAN label; others are kept upper-cased.
_FORMAT_LABELS = {
    "GEOJSON": "GeoJSON",
    "壓縮檔": "ZIP",
    "其他": "",
    "OTHER": "",
    "WEBSERVICES": "API",
    "WEBSERVICE": "API",
    "網頁": "HTML",
    "HTM": "HTML",
    "TIF": "GeoTIFF",
    "TIFF": "GeoTIFF",
    "GPKG": "GPKG",
    "SHAPEFILE": "SHP",
}
_MIMETYPES = {
    "CSV": "text/csv",
    "JSON": "application/json",
    "GeoJSON": "application/geo+json",
    "XML": "application/xml",
    "RSS": "application/rss+xml",
    "RDF": "application/rdf+xml",
    "KML": "application/vnd.google-earth.kml+xml",
    "KMZ": "application/vnd.google-earth.kmz",
    "PDF": "application/pdf",
    "ZIP": "application/zip",
    "XLS": "application/vnd.ms-excel",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "ODT": "application/vnd.oasis.opendocument.text",
    "DOC": "application/msword",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "TXT": "text/plain",
    "HTML": "text/html",
    "PNG": "image/png",
    "JPG": "image/jpeg",
    "GeoTIFF": "image/tiff",
}
_SUFFIX_FORMATS = {
    "csv": "CSV",
    "json": "JSON",
    "geojson": "GeoJSON",
    "xml": "XML",
    "kml": "KML",
    "kmz": "KMZ",
    "pdf": "PDF",
    "zip": "ZIP",
    "xls": "XLS",
    "xlsx": "XLSX",
    "ods": "ODS",
    "odt": "ODT",
    "doc": "DOC",
    "docx": "DOCX",
    "txt": "TXT",
    "htm": "HTML",
    "html": "HTML",
    "shp": "SHP",
    "gpkg": "GPKG",
    "tif": "GeoTIFF",
    "tiff": "GeoTIFF",
    "png": "PNG",
    "jpg": "JPG",
    "rdf": "RDF",
}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class RefusedRow:
    """A row (or metadata record) that became no dataset, and why.

    Attributes:
        file: the export, as given (for a data.gov.tw folder: the record's file).
        row: the row number as a spreadsheet shows it (0 for a JSON record).
        title: the row's title ("" when it has none).
        reason: why no dataset was made of it.
    """

    file: str
    row: int
    title: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: row {self.row}" if self.row else self.file
        title = f" ({self.title})" if self.title else ""
        return f"{where}{title}: {self.reason}"


@dataclass
class FileReport:
    """What one export gave.

    Attributes:
        file: the export, as given.
        kind: "supply list" or "data.gov.tw metadata".
        rows: non-blank data rows (for metadata: JSON records read).
        datasets: datasets made.
        layers: rows that name a data source (they become layers through the ingest pipeline).
        refused: rows refused (see :attr:`CatalogImport.refused`).
        merged: ``[r]`` resource lists merged into their record (data.gov.tw folders).
        agencies: datasets per agency (zh-TW name), in first-seen order.
    """

    file: str
    kind: str
    rows: int = 0
    datasets: int = 0
    layers: int = 0
    refused: int = 0
    merged: int = 0
    agencies: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for the ingest report."""
        unit = "rows" if self.kind == "supply list" else "records"
        merged = f", {self.merged} resource lists merged" if self.merged else ""
        agencies = ", ".join(f"{a} {n}" for a, n in self.agencies.items())
        return (
            f"{self.file}: {self.rows} {unit} → {self.datasets} datasets, {self.layers} layers, "
            f"{self.refused} refused{merged}; {len(self.agencies)} agencies: {agencies}"
        )


@dataclass
class CatalogImport:
    """The datasets and organizations an import makes, and what it said.

    Attributes:
        datasets: one per accepted row, in source order, names unique.
        organizations: one per agency the datasets name, in first-seen order.
        warnings: sentences for people: normalisations, decoded escapes, ignored files.
        normalisations: every metadata value rewritten, with the value as written.
        refused: rows that became no dataset, with the reason.
        files: one report per export read.
        rows: (file, row) of every supply-list row made a dataset or refused.
    """

    datasets: list[Dataset] = field(default_factory=list)
    organizations: list[Organization] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    normalisations: list[Normalisation] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    rows: set[tuple[str, int]] = field(default_factory=set)

    def report_lines(self) -> list[str]:
        """The per-file lines, then each refused row, for the ingest report."""
        return [f.line() for f in self.files] + [f"refused {r}" for r in self.refused]

    def counts(self) -> dict[str, Any]:
        """Counts for ``--json``: totals and per file."""
        return {
            "datasets": len(self.datasets),
            "organizations": len(self.organizations),
            "refused": len(self.refused),
            "files": [
                {
                    "file": f.file,
                    "kind": f.kind,
                    "rows": f.rows,
                    "datasets": f.datasets,
                    "layers": f.layers,
                    "refused": f.refused,
                    "agencies": dict(f.agencies),
                }
                for f in self.files
            ],
            "refused_rows": [
                {"file": r.file, "row": r.row, "title": r.title, "reason": r.reason}
                for r in self.refused
            ],
        }


@dataclass(frozen=True)
class RecordCounts:
    """What :func:`record` did to the store.

    Attributes:
        created: datasets new to the store.
        updated: datasets whose metadata changed.
        unchanged: datasets stored already exactly so.
        renamed: new datasets whose name was taken by another dataset, so given a suffix.
        organizations_created: agencies new to the store.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    renamed: int = 0
    organizations_created: int = 0

    def line(self) -> str:
        """One line for the ingest report."""
        renamed = f" ({self.renamed} given a suffix: their name was taken)" if self.renamed else ""
        return (
            f"portal datasets: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged{renamed}; {self.organizations_created} organizations "
            "created"
        )

    def as_dict(self) -> dict[str, int]:
        """The counts as JSON-ready data."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "organizations_created": self.organizations_created,
        }


# ---------------------------------------------------------------------------------------------
# The common shape every source is read into


@dataclass(frozen=True)
class _Link:
    """A link resource before its dataset's name is known."""

    url: str
    name: str
    format: str
    description: str = ""
    encoding: str = ""


@dataclass
class _Record:
    """One dataset as read, before naming."""

    file: str
    row: int  # 0 for a JSON record
    key: str
    source: str  # the export as given (a folder for records read from one)
    title: str
    agency: str
    title_en: str = ""
    notes: str = ""
    fields_description: str = ""
    category: str = ""
    update_frequency: str = ""
    license: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()
    links: list[_Link] = field(default_factory=list)
    extras: list[tuple[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # field → header or key as written

    @property
    def origin(self) -> str:
        return f"{self.file}: row {self.row}" if self.row else self.file


class _Tally:
    """Per-file observations, aggregated into one warning per (field, what)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str, str], dict[str, list[str]]] = {}

    def add(self, file: str, column: str, what: str, detail: str, where: str) -> None:
        self.seen.setdefault((file, column, what), {}).setdefault(detail, []).append(where)

    def warnings(self) -> list[str]:
        out = []
        for (file, column, what), details in self.seen.items():
            parts = [f"{d} ({_places(w)})" for d, w in list(details.items())[:6]]
            if len(details) > 6:
                parts.append(f"and {len(details) - 6} more")
            out.append(f"{file}: {column}: {what}: " + "; ".join(parts))
        return out


def _places(where: list[str]) -> str:
    shown = ", ".join(where[:5]) + (", …" if len(where) > 5 else "")
    unit = "row" if all(w.isdigit() for w in where) else "record"
    return f"{len(where)} {unit}{'' if len(where) == 1 else 's'}: {shown}"


# ---------------------------------------------------------------------------------------------
# Text helpers


def split_tags(value: str | list | tuple | None) -> tuple[str, ...]:
    """Keywords as agencies write them, split into CKAN tags.

    Splits on 、，,;；and line breaks (:func:`ingest.manifest.split_keywords`), and on spaces
    next to a Chinese character ("捐贈 芳名錄" is two keywords; "Google Analytics" one); then
    :func:`portal.ckan.layers.tag_names` keeps what CKAN accepts.

    Args:
        value: one cell of keywords, or a list of them.

    Returns:
        The tags, each once, in order.
    """
    words = [w for k in split_keywords(value) for w in _KEYWORD_SPACE.split(k) if w.strip()]
    return tag_names(words)


def _decode_escapes(text: str, lines: bool) -> str:
    if "\\" not in text:
        return text
    if lines:
        text = _LINE_ESCAPES.sub(lambda m: "\t" if m.group() == "\\t" else "\n", text)
    return _CHAR_ESCAPES.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), text)


def _date(text: str) -> str:
    m = _DATE.search(text)
    if not m:
        return ""
    y, mo, d, h, mi, s = m.groups()
    day = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    return day if h is None else f"{day}T{int(h):02d}:{int(mi):02d}:{int(s or 0):02d}"


def _format_label(text: str) -> str:
    label = clean_line(text).upper().lstrip(".")
    return _FORMAT_LABELS.get(label, label)


def _format_of_url(url: str) -> str:
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query):
        if key.lower() in ("format", "ft", "type") and value.lower() in _SUFFIX_FORMATS:
            return _SUFFIX_FORMATS[value.lower()]
    name = parts.path.rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _SUFFIX_FORMATS.get(suffix, "")


def _encoding_label(text: str) -> str:
    codec = canonical_encoding(text) if clean_line(text) else None
    return {"utf-8": "UTF-8", "cp950": "BIG5"}.get(codec or "", (codec or "").upper())


def _short_hash(key: str, length: int = _SHORT_HASH) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:length]


def _base_name(title: str) -> str:
    slug = slugify(title, _NAME_MAX, fallback="dataset")
    return slug if len(slug) >= 2 else f"dataset-{slug}"


# ---------------------------------------------------------------------------------------------
# Normalising a record (shared by every source)


def _normalise(record: _Record, tally: _Tally, result: CatalogImport) -> None:
    """Rewrite agency, category, update frequency and licence; keep what was written."""
    for name in ("agency", "category", "update_frequency", "license"):
        written = getattr(record, name)
        if not written:
            continue
        value, note = normalise_metadata(name, written)
        label = record.labels.get(name, name)
        if value != written:
            setattr(record, name, value)
            result.normalisations.append(Normalisation(record.origin, name, written, value))
            record.extras.append((f"{name}_original", written))
            tally.add(record.source, label, note, f'"{written}" → "{value}"', _where(record))
        elif note:
            tally.add(record.source, label, note, f'"{written}"', _where(record))


def _where(record: _Record) -> str:
    return str(record.row) if record.row else Path(record.file).name


def _maintainer(name: str, phone: str) -> str:
    if name and phone:
        return f"{name} ({phone})"
    return name or phone


# ---------------------------------------------------------------------------------------------
# 1. Supply lists and catalog exports


@dataclass(frozen=True)
class _Columns:
    """Where a table's fields are: LayerSpec fields and :data:`EXTRA_COLUMNS`."""

    fields: dict[str, int]
    landing: tuple[int, ...]
    labels: dict[str, str]


def _columns(table: SupplyTable) -> _Columns:
    keys = [header_key(h) for h in table.headers]
    fields = dict(table.columns)
    labels = {f: table.headers[j] for f, j in fields.items()}
    used = set(fields.values())
    for name, synonyms in EXTRA_COLUMNS.items():
        for synonym in synonyms:
            key = header_key(synonym)
            j = next((j for j, k in enumerate(keys) if k == key and j not in used), None)
            if j is not None:
                fields[name], labels[name] = j, table.headers[j]
                used.add(j)
                break
    landing_keys = [header_key(h) for h in LANDING_PAGE_HEADERS]
    landing = tuple(
        j for key in landing_keys for j, k in enumerate(keys) if k == key and j not in used
    )
    return _Columns(fields, landing, labels)


def _table_import(path: Path, result: CatalogImport, tally: _Tally) -> list[_Record]:
    table = read_supply_table(path)
    result.warnings.extend(f"{table.file}: {note}" for note in table.notes)
    columns = _columns(table)
    report = FileReport(table.file, "supply list")
    result.files.append(report)
    records = []
    for number, cells in table.rows:
        if not any(clean_line(c) for c in cells):
            continue
        report.rows += 1
        if table.names_source(cells):
            report.layers += 1
            continue
        record = _table_record(table, columns, number, cells, tally)
        records.append(record)
        result.rows.add((table.file, number))
    return records


def _table_record(
    table: SupplyTable, columns: _Columns, number: int, cells: list[str], tally: _Tally
) -> _Record:
    def cell(name: str) -> str:
        return table.cell(cells, columns.fields.get(name))

    def line(name: str) -> str:
        return clean_line(_decode_escapes(cell(name), lines=False))

    def text(name: str) -> str:
        raw = cell(name)
        decoded = _decode_escapes(raw, lines=True)
        if decoded != raw:
            what = "escapes written as text (\\r\\n, \\t, \\u…) decoded"
            tally.add(table.file, columns.labels[name], what, "line breaks kept", str(number))
        return clean_text(decoded)

    landing = [u for j in columns.landing if "://" in (u := _line_at(table, cells, j))]
    record = _Record(
        file=table.file,
        row=number,
        source=table.file,
        key=f"url:{landing[0]}" if landing else "",
        title=line("title"),
        agency=line("agency"),
        title_en=line("title_en"),
        notes=text("description"),
        fields_description=text("fields_description"),
        category=line("category"),
        update_frequency=line("update_frequency"),
        license=line("license") or line("license_url"),
        maintainer=_maintainer(line("contact"), line("phone")),
        maintainer_email=line("email") if _EMAIL.fullmatch(line("email")) else "",
        url=landing[0] if landing else "",
        tags=split_tags(cell("keywords")),
    )
    if not record.key:
        record.key = f"title:{record.agency}:{record.title}"
    record.links = _landing_links(table, columns.landing, cells)
    record.labels = dict(columns.labels)
    if not line("license") and "license_url" in columns.labels:
        record.labels["license"] = columns.labels["license_url"]
    _table_extras(record, line, text, tally)
    _declared(record, line("formats"), line("encoding"))
    return record


def _line_at(table: SupplyTable, cells: list[str], column: int) -> str:
    """A cell as one line, with the unicode escapes a crawler left as text decoded."""
    return clean_line(_decode_escapes(table.cell(cells, column), lines=False))


def _landing_links(table: SupplyTable, landing: tuple[int, ...], cells: list[str]) -> list[_Link]:
    """A link resource per landing-page URL: a web page about the dataset (HTML)."""
    links: list[_Link] = []
    for j in landing:
        url = _line_at(table, cells, j)
        if "://" in url and url not in (x.url for x in links):
            header = table.headers[j]
            fmt = _format_of_url(url) or "HTML"
            links.append(_Link(url, f"{header}（資料集網頁）", fmt, f"{header}: {url}"))
    return links


def _table_extras(
    record: _Record, line: Callable[[str], str], text: Callable[[str], str], tally: _Tally
) -> None:
    record.extras = [("source_key", record.key), ("source_file", Path(record.file).name)]
    record.extras.append(("source_row", str(record.row)))
    if phone := line("phone"):
        record.extras.append(("maintainer_phone", phone))
    for name in ("spatial_scope", "theme", "dataset_type", "language", "charge"):
        if value := line(name):
            record.extras.append((name, value))
    if remarks := text("remarks"):
        record.extras.append(("remarks", remarks))
    for name, key in (("issued", "issued"), ("modified", "source_modified")):
        _date_extra(record, key, line(name), record.labels.get(name, name), tally)
    if (lic := line("license_url")) and lic != record.license:
        record.extras.append(("license_url", lic))


def _declared(record: _Record, formats: str, encoding: str) -> None:
    """Formats and encoding a row declares for its data, kept as extras (its link is a page)."""
    if formats:
        labels = [_format_label(f) for f in re.split(r"[,、，;/\s]+", formats) if f.strip()]
        record.extras.append(("declared_formats", ", ".join(dict.fromkeys(x for x in labels if x))))
    if encoding:
        record.extras.append(("declared_encoding", encoding))


# ---------------------------------------------------------------------------------------------
# 2. data.gov.tw metadata records (JSON)


def _read_record(path: Path) -> tuple[str | None, Any]:
    """(kind, document) of a data.gov.tw record; (None, None) for any other file.

    Only small files whose first bytes hold a record's key are parsed: a folder of agency
    data may hold GeoJSON files of hundreds of megabytes.
    """
    try:
        with path.open("rb") as f:
            data = f.read(_RECORD_MAX_BYTES + 1)
    except OSError:
        return None, None
    if len(data) > _RECORD_MAX_BYTES or not _RECORD_KEY.search(data[:_RECORD_SNIFF]):
        return None, None
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, None
    kind = _kind(doc)
    return (kind, doc) if kind else (None, None)


def _kind(doc: Any) -> str | None:
    """Which record a JSON document is: new (TITLE), old (title), resources ([r]) or None."""
    if not isinstance(doc, dict):
        return None
    if "TITLE" in doc and "AGENCY" in doc:
        return "new"
    if "title" in doc and "提供機關" in doc:
        return "old"
    if "node" in doc and "resource_0_url" in doc:
        return "resources"
    return None


def is_metadata_record(path: Path) -> bool:
    """Whether a file is a data.gov.tw metadata record (either schema) or a ``[r]`` list.

    Args:
        path: any file.

    Returns:
        True for a .json file holding one.
    """
    return path.suffix.lower() == ".json" and path.is_file() and _read_record(path)[0] is not None


def is_catalog_source(path: Path) -> bool:
    """Whether ``geoportal ingest`` should make datasets of a SOURCE.

    Args:
        path: a SOURCE as given to ``geoportal ingest``.

    Returns:
        True for a supply list / catalog export, a data.gov.tw metadata record, or a folder
        holding metadata records.
    """
    if path.is_dir():
        return any(is_metadata_record(p) for p in _json_files(path))
    return path.is_file() and (is_supply_list(path) or is_metadata_record(path))


def _json_files(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*.json")):
        parts = p.relative_to(folder).parts
        if not any(x.startswith(".") or x == "__MACOSX" for x in parts) and p.is_file():
            yield p


def _json_import(path: Path, result: CatalogImport, tally: _Tally) -> list[_Record]:
    files = list(_json_files(path)) if path.is_dir() else [path]
    report = FileReport(str(path), "data.gov.tw metadata")
    result.files.append(report)
    records: list[_Record] = []
    sidecars: list[tuple[Path, dict]] = []
    ignored = 0
    for file in files:
        kind, doc = _read_record(file)
        if kind is None:
            ignored += 1
            continue
        report.rows += 1
        if kind == "resources":
            sidecars.append((file, doc))
            continue
        schema = _NEW if kind == "new" else _OLD
        records.append(_json_record(doc, str(file), str(path), schema, tally))
    if not path.is_dir() and not records and not sidecars:
        raise ManifestError(
            f"{path}: not a data.gov.tw metadata record (a JSON object with TITLE and AGENCY, "
            "or title and 提供機關)"
        )
    if ignored:
        result.warnings.append(
            f"{path}: ignored {ignored} JSON files that are not data.gov.tw metadata records"
        )
    report.merged = _merge_sidecars(records, sidecars, result, report)
    return records


def _node(value: Any) -> str:
    text = clean_line(_text(value))
    return str(int(text)) if text.isdigit() else text


def _text(value: Any) -> str:
    """A JSON value as text: strings as they are, lists joined with 、, numbers written."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "、".join(_text(v) for v in value if _text(v).strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


@dataclass(frozen=True)
class _Schema:
    """The keys of one data.gov.tw record generation: field → key, and its resources' keys."""

    keys: dict[str, str]
    resources: str
    resource_keys: tuple[str, str, str, str]  # url, format, description, encoding


_NEW = _Schema(
    {
        "title": "TITLE",
        "agency": "AGENCY",
        "notes": "DESC",
        "fields_description": "SCHEMA",
        "category": "SERVICE_TYPE",
        "update_frequency": "UPDATE_FREQ",
        "license": "LICENCE",
        "maintainer": "AGENCY_CONTACT",
        "keywords": "KEYWORDS",
        "node": "NODE",
        "theme": "CATEGORY",
        "dataset_type": "DATA_TYPE",
        "charge": "CHARGE",
        "remarks": "NOTES",
        "issued": "DATE_PUBLISH",
        "source_modified": "DATE_UPDATE_META",
        "related_url": "相關網址",
    },
    "RESOURCE",
    ("RES_URL", "RES_FILETYPE", "RES_DESC", "RES_ENCODE"),
)
_OLD = _Schema(
    {
        "title": "title",
        "agency": "提供機關",
        "notes": "資料集描述",
        "fields_description": "主要欄位說明",
        "category": "服務分類",
        "update_frequency": "更新頻率",
        "license": "授權方式",
        "maintainer": "提供機關聯絡人",
        "keywords": "關鍵字",
        "node": "node",
        "theme": "主題分類",
        "dataset_type": "資料集類型",
        "charge": "計費方式",
        "remarks": "備註",
        "issued": "上架日期",
        "source_modified": "詮釋資料更新時間",
        "related_url": "相關網址",
    },
    "資料資源",
    ("資源網址", "檔案格式", "資源描述", "編碼"),
)
_JSON_EXTRAS = ("theme", "dataset_type", "charge", "remarks", "related_url")


def _json_record(doc: dict, file: str, source: str, schema: _Schema, tally: _Tally) -> _Record:
    """A data.gov.tw record of either generation in the common shape."""

    def get(name: str) -> str:
        return _text(doc.get(schema.keys[name]))

    node = _node(doc.get(schema.keys["node"]))
    title, agency = clean_line(get("title")), clean_line(get("agency"))
    record = _Record(
        file=file,
        row=0,
        key=f"data.gov.tw:{node}" if node else f"title:{agency}:{title}",
        source=source,
        title=title,
        agency=agency,
        notes=clean_text(get("notes")),
        fields_description=clean_text(get("fields_description")),
        category=clean_line(get("category")),
        update_frequency=clean_line(get("update_frequency")),
        license=clean_line(get("license")),
        maintainer=clean_line(get("maintainer")),
        url=f"https://data.gov.tw/dataset/{node}" if node.isdigit() else "",
        tags=split_tags(doc.get(schema.keys["keywords"]) or None),
        labels=dict(schema.keys),
    )
    if not record.update_frequency:
        tally.add(source, schema.keys["update_frequency"], "missing", "left empty", _where(record))
    resources = doc.get(schema.resources) or []
    for r in resources.values() if isinstance(resources, dict) else resources:
        if isinstance(r, dict):
            _add_link(record, _json_link(r, schema.resource_keys))
    record.extras = [("source_key", record.key), ("source_file", Path(file).name)]
    if node:
        record.extras.append(("data_gov_tw_node", node))
    record.extras.extend((k, v) for k in _JSON_EXTRAS if (v := clean_text(get(k))))
    for name in ("issued", "source_modified"):
        _date_extra(record, name, get(name), schema.keys[name], tally)
    return record


def _json_link(r: dict, keys: tuple[str, str, str, str]) -> _Link:
    url, fmt, desc, encoding = (_text(r.get(k)) for k in keys)
    url = clean_line(url)
    label = _format_label(fmt) or _format_of_url(url)
    desc = clean_text(desc)
    return _Link(url, clean_line(desc) or label or url, label, desc, _encoding_label(encoding))


def _date_extra(record: _Record, key: str, value: str, label: str, tally: _Tally) -> None:
    """Keep a date as an ISO extra; a value that is no date is left out, with a warning."""
    if not clean_line(value):
        return
    date = _date(value)
    if date:
        record.extras.append((key, date))
    else:
        detail = f'"{clean_line(value)}"'
        tally.add(record.source, label, "not a date; left out", detail, _where(record))


def _add_link(record: _Record, link: _Link) -> bool:
    if not link.url or any(x.url == link.url for x in record.links):
        return False
    record.links.append(link)
    return True


def _merge_sidecars(
    records: list[_Record],
    sidecars: list[tuple[Path, dict]],
    result: CatalogImport,
    report: FileReport,
) -> int:
    """Add the resources of ``[r]`` lists to their records (by node); count those merged."""
    by_node: dict[str, _Record] = {}
    for r in records:
        by_node.setdefault(r.key.removeprefix("data.gov.tw:"), r)
    merged = 0
    for file, doc in sidecars:
        node = _node(str(doc.get("node", "")).split("-", 1)[0])
        target = by_node.get(node)
        if target is None:
            result.refused.append(
                RefusedRow(str(file), 0, "", f"a resource list of node {node} without its record")
            )
            report.refused += 1
            continue
        merged += 1
        n = 0
        while f"resource_{n}_url" in doc:
            keys = (f"resource_{n}_url", f"filetype_{n}", f"res_name_{n}", f"encoding_{n}")
            _add_link(target, _json_link(doc, keys))
            n += 1
    return merged


# ---------------------------------------------------------------------------------------------
# Accepting, naming and building datasets


def _accept(records: list[_Record], result: CatalogImport, tally: _Tally) -> list[_Record]:
    """Normalise every record; refuse those without title or agency and repeated keys."""
    reports = {f.file: f for f in result.files}
    kept: dict[str, _Record] = {}
    for record in records:
        report = reports[record.source]
        reason = _refusal(record, kept)
        if reason:
            result.refused.append(RefusedRow(record.file, record.row, record.title, reason))
            report.refused += 1
            continue
        _normalise(record, tally, result)
        kept[record.key] = record
        report.datasets += 1
        report.agencies[record.agency] = report.agencies.get(record.agency, 0) + 1
    return list(kept.values())


def _refusal(record: _Record, kept: dict[str, _Record]) -> str:
    if not record.title:
        return "no title (資料集名稱 is empty)"
    if not record.agency:
        return "no agency (資料集提供機關 is empty): a dataset needs an owning organization"
    if record.key in kept:
        return f"the same dataset ({record.key}) as {kept[record.key].origin}; read once"
    return ""


def _names(records: list[_Record]) -> list[str]:
    """Unique, order-independent names: a slug, or slug-hash when slugs collide."""
    bases = [_base_name(r.title) for r in records]
    counts = Counter(bases)
    names = [
        base if counts[base] == 1 else f"{base}-{_short_hash(r.key)}"
        for base, r in zip(bases, records, strict=True)
    ]
    taken = Counter(names)
    for i, (name, r) in enumerate(zip(names, records, strict=True)):
        length = _SHORT_HASH
        while taken[name] > 1:  # a slug-hash equal to another slug: lengthen the hash
            taken[name] -= 1
            length += 2
            name = f"{bases[i]}-{_short_hash(r.key, length)}"
            taken[name] += 1
        names[i] = name
    return names


def _dataset(record: _Record, name: str) -> Dataset:
    did = dataset_id(name)
    lid = license_id(record.license)
    extras = list(record.extras)
    if record.license and record.license != lid:  # the licence as written, when not an id
        extras.append(("license_text", record.license))
    return Dataset(
        id=did,
        name=name,
        title=record.title,
        owner_org=slugify(record.agency),
        notes=record.notes,
        title_en=record.title_en,
        license_id=lid,
        url=record.url,
        maintainer=record.maintainer,
        maintainer_email=record.maintainer_email,
        category=record.category,
        update_frequency=record.update_frequency,
        fields_description=record.fields_description,
        tags=record.tags,
        extras=tuple(extras),
        resources=_resources(record.links, name, did),
        source=SOURCE,
    )


def _resources(links: list[_Link], name: str, package_id: str) -> tuple[Resource, ...]:
    return tuple(
        Resource(
            id=resource_id(name, f"link:{link.url}"),
            package_id=package_id,
            name=link.name,
            url=link.url,
            format=link.format,
            kind="link",
            description=link.description,
            mimetype=_MIMETYPES.get(link.format, ""),
            position=i,
            encoding=link.encoding,
            extras=(_RESOURCE_MARK,),
        )
        for i, link in enumerate(links)
    )


def _organizations(records: list[_Record], result: CatalogImport) -> list[Organization]:
    orgs: dict[str, Organization] = {}
    for record in records:
        name = slugify(record.agency)
        if name not in orgs:
            orgs[name] = Organization(id=organization_id(name), name=name, title=record.agency)
        elif orgs[name].title != record.agency:
            result.warnings.append(
                f"{record.origin}: agency {record.agency!r} has the same slug {name!r} as "
                f"{orgs[name].title!r}; both are organization {orgs[name].title!r}"
            )
    return list(orgs.values())


def datasets_from_catalogs(paths: list[Path]) -> CatalogImport:
    """Read agency catalog exports, supply lists and data.gov.tw records into datasets.

    Args:
        paths: supply lists / catalog exports (.csv/.tsv/.txt/.xlsx/.xls), data.gov.tw
            metadata records (.json), or folders of them, in the order given.

    Returns:
        The datasets (names unique across all of them), their organizations, per-file
        reports, refused rows, warnings and normalisations.

    Raises:
        ManifestError: a source is missing, or cannot be read as an export or a record; the
            message names the file and says what to do.
    """
    result = CatalogImport()
    tally = _Tally()
    records: list[_Record] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ManifestError(f"{path}: no such file or folder; check the path")
        if path.is_dir() or path.suffix.lower() == ".json":
            records.extend(_json_import(path, result, tally))
        else:
            records.extend(_table_import(path, result, tally))
    accepted = _accept(records, result, tally)
    result.warnings.extend(tally.warnings())
    for r in result.refused:
        if r.row:
            result.rows.add((r.file, r.row))
    names = _names(accepted)
    result.datasets = [_dataset(r, n) for r, n in zip(accepted, names, strict=True)]
    result.organizations = _organizations(accepted, result)
    return result


def datasets_from_catalog(path: Path) -> CatalogImport:
    """Read one agency catalog export, supply list, data.gov.tw record or folder of records.

    Args:
        path: the export (see :func:`datasets_from_catalogs`).

    Returns:
        What :func:`datasets_from_catalogs` returns for it alone.

    Raises:
        ManifestError: the source is missing or unreadable.
    """
    return datasets_from_catalogs([path])


# ---------------------------------------------------------------------------------------------
# Storing


def _extra(dataset: Dataset, key: str) -> str:
    return next((v for k, v in dataset.extras if k == key), "")


def _renamed(dataset: Dataset, name: str) -> Dataset:
    did = dataset_id(name)
    resources = tuple(
        replace(r, id=resource_id(name, f"link:{r.url}"), package_id=did) for r in dataset.resources
    )
    return replace(dataset, id=did, name=name, resources=resources)


def _merged(new: Dataset, old: Dataset) -> Dataset:
    """``new`` with what the API added to ``old`` kept: groups, resources, extras, state."""
    extras = (*new.extras, *(e for e in old.extras if e[0] not in IMPORT_EXTRAS))
    kept = tuple(r for r in old.resources if _RESOURCE_MARK not in r.extras)
    resources = tuple(replace(r, position=i) for i, r in enumerate((*new.resources, *kept)))
    return replace(
        new,
        extras=extras,
        resources=resources,
        groups=old.groups,
        private=old.private,
        state=old.state,
        creator_user_id=old.creator_user_id,
        metadata_created=old.metadata_created,
        metadata_modified=old.metadata_modified,
    )


def _same(a: Dataset, b: Dataset) -> bool:
    strip = {"metadata_modified": None, "metadata_created": None}
    ra = tuple(replace(r, created=None, last_modified=None) for r in a.resources)
    rb = tuple(replace(r, created=None, last_modified=None) for r in b.resources)
    return replace(a, resources=ra, **strip) == replace(b, resources=rb, **strip)


def _free_name(dataset: Dataset, taken: Callable[[str], bool]) -> str:
    key = _extra(dataset, "source_key")
    base = dataset.name
    length = _SHORT_HASH
    name = base
    while taken(name):
        name = f"{base}-{_short_hash(key, length)}"
        length += 2
    return name


def record(
    store: PortalStore, result: CatalogImport, reserved: Collection[str] = ()
) -> RecordCounts:
    """Store an import's datasets and organizations: create, update, or leave unchanged.

    A dataset already stored for the same source key (``source_key`` extra) keeps its stored
    name and id; its groups, API-added resources and extras, privacy and state are kept. A new
    dataset whose name is taken (by another dataset, or by a name in ``reserved``) gets the
    hash of its key as a suffix. Organizations are added when missing and otherwise left as
    they are.

    Args:
        store: the portal store.
        result: what :func:`datasets_from_catalogs` read.
        reserved: names datasets may not take (the catalog's layer ids: their datasets are
            named so).

    Returns:
        The counts.
    """
    stored = {d.name: d for d in store.datasets(include_private=True, include_deleted=True)}
    by_key = {
        key: d for d in stored.values() if d.source == SOURCE and (key := _extra(d, "source_key"))
    }
    orgs = {o.name for o in store.organizations()}
    counts = Counter[str]()
    for org in result.organizations:
        if org.name not in orgs:
            store.put_organization(org)
            counts["organizations_created"] += 1
    used = set(reserved)
    pending: list[Dataset] = []
    for dataset in result.datasets:
        old = by_key.get(_extra(dataset, "source_key"))
        if old is not None:
            dataset = _renamed(dataset, old.name) if old.name != dataset.name else dataset
        else:
            name = _free_name(dataset, lambda n: n in stored or n in used)
            counts["renamed"] += name != dataset.name
            dataset = _renamed(dataset, name) if name != dataset.name else dataset
        used.add(dataset.name)
        status, write = _outcome(dataset, old)
        counts[status] += 1
        if write is not None:
            pending.append(write)
    store.put_datasets(pending)  # one transaction: all of the file's datasets, or none
    return RecordCounts(**{k: counts[k] for k in RecordCounts.__dataclass_fields__})


def _outcome(dataset: Dataset, old: Dataset | None) -> tuple[str, Dataset | None]:
    """("created" | "updated" | "unchanged", the dataset to write or None)."""
    if old is None:
        return "created", dataset
    merged = _merged(dataset, old)
    return ("unchanged", None) if _same(merged, old) else ("updated", merged)


# ---------------------------------------------------------------------------------------------
# What `geoportal ingest` needs around the import


def split_sources(sources: list[Path]) -> tuple[list[Path], list[Path]]:
    """Which SOURCEs go to the layer ingest and which are read for datasets.

    A supply list goes to both (its rows that name a data source are layers, the others
    datasets); a folder goes to both (its data files are layers, its data.gov.tw records
    datasets); a single data.gov.tw record is read for a dataset only.

    Args:
        sources: the SOURCEs given to ``geoportal ingest``.

    Returns:
        (sources for :func:`ingest.manifest.load_specs`, sources for
        :func:`datasets_from_catalogs`).
    """
    layer_sources = [s for s in sources if not (s.is_file() and is_metadata_record(s))]
    catalog_sources = [s for s in sources if s.exists() and is_catalog_source(s)]
    return layer_sources, catalog_sources


def without_imported(loaded: LoadResult, imported: CatalogImport) -> LoadResult:
    """The layer ingest's load result without what the import reports instead.

    The rows of a supply list that name no data source are datasets now, not rows "skipped":
    they, and the sentences summing them up, are left out of the layer report; so are the
    files of a folder of data.gov.tw records "ignored" as layers (they are datasets).

    Args:
        loaded: what :func:`ingest.manifest.load_specs` read.
        imported: what :func:`datasets_from_catalogs` read from the same sources.

    Returns:
        A copy of ``loaded`` without those rows and sentences.
    """
    lists = [f.file for f in imported.files if f.kind == "supply list"]
    folders = [f.file for f in imported.files if f.kind != "supply list" and Path(f.file).is_dir()]
    summaries = [
        *(
            rf"{re.escape(f)}: (no data-source column \(|\d+ of \d+ rows have an empty )"
            for f in lists
        ),
        *(
            rf"{re.escape(f)}: (ignored \d+ files: |no data sources found in this folder$)"
            for f in folders
        ),
    ]
    patterns = [re.compile(p) for p in summaries]
    return replace(
        loaded,
        skipped=[s for s in loaded.skipped if (s.file, s.row) not in imported.rows],
        warnings=[w for w in loaded.warnings if not any(p.match(w) for p in patterns)],
    )
