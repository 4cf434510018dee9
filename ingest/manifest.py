"""Turn what a user passes to ``geoportal ingest SOURCE...`` into :class:`LayerSpec` objects.

A SOURCE is one of:

1. a manifest (``.yaml``/``.yml``) in the SPEC format: ``defaults`` merged into each entry of
   ``layers``, every entry validated by :class:`ManifestEntry`;
2. an agency supply list (供應清單) or catalog export (``.csv``, ``.xlsx``, ``.xls``) with
   Chinese headers: one spec per row that names a data source; the other rows come back as
   :class:`SkippedRow`;
3. a folder: its ``layers.yaml`` if it has one, else one spec per recognisable data source
   inside it, recursively (sidecars, ``__MACOSX`` and hidden files ignored; a subfolder with its
   own ``layers.yaml`` is read through that manifest);
4. a single data file or ``.zip``: one spec.

Ids are unique across everything loaded. Ids written in manifests are kept (a duplicate is a
:class:`~ingest.errors.ManifestError` naming both origins); every other id is derived from the
title or file name with :func:`layer_id` and made unique with ``-2``, ``-3`` suffixes.

Metadata is normalised to data.gov.tw's vocabulary (update frequency, service category, agency
codes, licence name); every change is kept in :attr:`LoadResult.normalisations` with the value
as written, and summarised in :attr:`LoadResult.warnings`.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import xlrd
import yaml
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pypinyin import Style, lazy_pinyin

from catalog.sld import MAX_SLD_BYTES, parse_sld
from catalog.style import StyleError, parse_style
from ingest.errors import ManifestError
from ingest.model import LayerSpec


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: the keys of a manifest entry, in SPEC order
ENTRY_KEYS = _words(
    "id title title_en agency category source layer crs encoding x y update_frequency keywords "
    "description style tileset license"
)
#: the reason given for supply-list rows that name no data source
NO_SOURCE = "no data source column/value"
#: derived ids are cut (at a hyphen) to at most this many characters before any -2 suffix
ID_MAX_LENGTH = 60
#: data.gov.tw's update-frequency vocabulary (plus its "每N日"-style forms)
UPDATE_FREQUENCIES = _words("即時 每分鐘 每小時 每日 每週 每月 每季 每半年 每年 不定期 不更新")
#: supply-list header synonyms per LayerSpec field; matching ignores spaces, full-width forms,
#: case, 坐/座 and 台/臺, a trailing "(…)" note, and takes either half of "標籤/關鍵字"
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    field_name: _words(names)
    for field_name, names in {
        "title": "資料集名稱 資料名稱 名稱 資料集中文名稱 中文名稱 標題",
        "title_en": "英文名稱 資料集英文名稱 英文資料集名稱 英文標題",
        "agency": "資料集提供機關 提供機關 機關名稱 機關 提供單位 資料提供機關 權責機關",
        "category": "服務分類 分類 資料分類 分類及編號 資料集分類 類別",
        "update_frequency": "更新頻率 更新週期 更新周期 更新頻次",
        "source": "檔案位置 資料位置 檔案路徑 資料路徑 下載網址 資料下載網址 下載連結 "
        "資料下載連結 資源網址 資源下載網址 URL",
        "layer": "圖層 子圖層",
        "crs": "坐標系統 座標系統 坐標系 坐標參考系統 空間參考系統 投影坐標系統",
        "encoding": "編碼格式 編碼 字元編碼 文字編碼 檔案編碼",
        "description": "資料集描述 描述 資料集說明 說明 資料描述 摘要",
        "keywords": "關鍵字 標籤 關鍵詞",
        "license": "授權方式 授權條款 授權",
    }.items()
}
#: headers of columns that link to a web page about a dataset, which is not a data source
LANDING_PAGE_HEADERS = ("資料集連結網址", "資料連結網址", "資料集網址", "資料集說明網址")
#: file suffixes a folder scan takes as data sources
DATA_SUFFIXES = frozenset(
    _words(
        ".shp .geojson .json .topojson .kml .kmz .gpkg .csv .tsv .txt .xlsx .xls .tif .tiff .zip"
    )
)
#: sidecar suffixes, never data sources on their own (.aux.xml and .shp.xml end in .xml)
SIDECAR_SUFFIXES = frozenset(
    _words(
        ".shx .dbf .prj .cpg .qpj .sbn .sbx .xml .ovr .tfw .tifw .aux .fix .qix .ain .aih .atx "
        ".lock .gpkg-wal .gpkg-shm"
    )
)

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls")
_MANIFEST_SUFFIXES = (".yaml", ".yml")
_MANIFEST_NAMES = ("layers.yaml", "layers.yml")
# A supply list has a title column and at least two of these (a data table rarely does).
_CATALOG_FIELDS = frozenset(
    {"source", "update_frequency", "agency", "encoding", "crs", "license", "keywords"}
)
_HEADER_ROWS_SEARCHED = 10
_SNIFF_BYTES = 65536
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_GEOJSON_TYPE = re.compile(
    r'"type"\s*:\s*"(FeatureCollection|Feature|Topology|GeometryCollection|Point|MultiPoint|'
    r'LineString|MultiLineString|Polygon|MultiPolygon)"'
)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SkippedRow:
    """A supply-list row that names no data source, so no layer comes of it.

    Attributes:
        file: the supply list, as given.
        row: the row number as a spreadsheet shows it (row 1 is the first row of the sheet or
            file; a CSV record with newlines inside quoted cells is one row).
        title: the row's title ("" when it has none).
        reason: why it was skipped (:data:`NO_SOURCE`).
        agency: the row's agency (normalised), so a person knows whom to ask.
    """

    file: str
    row: int
    title: str
    reason: str
    agency: str = ""


@dataclass(frozen=True)
class Normalisation:
    """A metadata value rewritten to the portal's vocabulary, with the value as written.

    Attributes:
        origin: where the value was: "供應清單.csv: row 5" or "layers.yaml: entry 9".
        field: the LayerSpec field ("update_frequency", "category", "agency", "license").
        original: the value as written.
        value: the value used.
    """

    origin: str
    field: str
    original: str
    value: str


@dataclass
class LoadResult:
    """What :func:`load_specs` found in its sources.

    Attributes:
        specs: one spec per layer to ingest, in source order.
        skipped: supply-list rows that name no data source.
        warnings: sentences for people: normalisations, guesses, ignored files and rows.
        normalisations: every metadata value rewritten, with the original.
    """

    specs: list[LayerSpec] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    normalisations: list[Normalisation] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Value parsers (public: the readers and the CLI use the same vocabulary)


def slugify(text: str, max_length: int = ID_MAX_LENGTH, fallback: str = "unknown") -> str:
    """A readable, deterministic slug of a zh-TW text (ids, agency names).

    Han characters become toneless pinyin syllables (pypinyin), other letters and digits are
    kept (accents dropped), and every run of anything else becomes one hyphen:
    "臺中市AED設置地點" → "tai-zhong-shi-aed-she-zhi-di-dian". Slugs longer than
    ``max_length`` are cut at a hyphen.

    Args:
        text: the title, file stem or agency name.
        max_length: the longest slug returned.
        fallback: what to return when nothing usable is left ("" or only punctuation).

    Returns:
        A slug matching ``[a-z0-9-]+`` (or ``fallback``).
    """
    text = unicodedata.normalize("NFKC", text)
    joined = "-".join(lazy_pinyin(text, style=Style.NORMAL))
    ascii_text = unicodedata.normalize("NFKD", joined).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        head = slug[: max_length + 1]
        slug = head.rsplit("-", 1)[0] if "-" in head else slug[:max_length]
    return slug.strip("-") or fallback


def layer_id(text: str) -> str:
    """The id derived for a layer from its title or file stem (see :func:`slugify`).

    Args:
        text: the title or file stem.

    Returns:
        An id matching ``[a-z0-9-]+`` of at most :data:`ID_MAX_LENGTH` characters ("layer"
        when nothing usable is left); :func:`load_specs` adds -2, -3 … to make it unique.
    """
    return slugify(text, ID_MAX_LENGTH, fallback="layer")


def parse_crs(value: str | int) -> str:
    """Normalise a CRS as a manifest may write it.

    Args:
        value: "EPSG:3826", "epsg:3826", "EPSG::3826", 3826, "3826", "CRS:84", "OGC:CRS84",
            or the OGC URN / http URI forms of those.

    Returns:
        "EPSG:<code>" or "CRS:84".

    Raises:
        ValueError: the value is not one of those forms (the message suggests the EPSG code
            when the text is a description such as "TWD97 TM2").
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a CRS")
    if isinstance(value, int):
        return f"EPSG:{value}"
    text = unicodedata.normalize("NFKC", str(value)).strip()
    compact = re.sub(r"\s+", "", text).upper()
    m = re.fullmatch(
        r"(?:EPSG:{1,2}|URN:OGC:DEF:CRS:EPSG:[\d.]*:|HTTPS?://WWW\.OPENGIS\.NET/DEF/CRS/EPSG/\d+/)?"
        r"(\d{4,6})",
        compact,
    )
    if m:
        return f"EPSG:{int(m.group(1))}"
    if re.fullmatch(
        r"(?:OGC:)?CRS:?84|URN:OGC:DEF:CRS:OGC:1\.3:CRS84|HTTPS?://WWW\.OPENGIS\.NET/DEF/CRS/OGC/"
        r"1\.3/CRS84",
        compact,
    ):
        return "CRS:84"
    guess, _ = crs_from_text(text)
    hint = f" (it reads like {guess}: write crs: {guess})" if guess else ""
    raise ValueError(f"{text!r} is not an EPSG code or CRS:84{hint}")


def crs_from_text(text: str) -> tuple[str | None, str]:
    """Read a coordinate system from the free text agencies write in supply lists.

    "TWD97 TM2 121分帶" → EPSG:3826, "TWD97 TM2 119分帶" → EPSG:3825, "TWD97經緯度" → EPSG:3824,
    "TWD67 TM2" → EPSG:3828, "WGS84" → EPSG:4326, "WGS84 UTM 51N" → EPSG:32651,
    "Web Mercator" → EPSG:3857, "EPSG:3826" → EPSG:3826.

    Args:
        text: the cell as written.

    Returns:
        (code or None when the text names no coordinate system this function knows, a note
        when the code rests on an assumption, e.g. "TWD97" alone read as TM2 zone 121).
    """
    s = unicodedata.normalize("NFKC", text).upper().replace("坐", "座")
    compact = re.sub(r"[\s_\-()\[\]/,]", "", s)
    m = re.search(r"EPSG:*(\d{4,6})", compact)
    if m:
        return f"EPSG:{int(m.group(1))}", ""
    if re.fullmatch(r"\d{4,6}", compact):
        return f"EPSG:{int(compact)}", ""
    if "CRS84" in compact:
        return "CRS:84", ""
    if any(k in compact for k in ("WEBMERCATOR", "3857", "900913", "GOOGLEMERCATOR", "偽麥卡托")):
        return "EPSG:3857", ""
    if "TWD97" in compact or "TWD1997" in compact:
        return _twd(compact, geographic=3824, zone119=3825, zone121=3826, name="TWD97")
    if "TWD67" in compact or "TWD1967" in compact:
        return _twd(compact, geographic=3821, zone119=3827, zone121=3828, name="TWD67")
    if "WGS84" in compact or "WGS1984" in compact:
        utm = re.search(r"UTM(?:ZONE)?(\d{1,2})([NS]?)", compact)
        if utm:
            return f"EPSG:{(32700 if utm.group(2) == 'S' else 32600) + int(utm.group(1))}", ""
        return "EPSG:4326", ""
    if compact in ("經緯度", "LATLON", "LONLAT", "LATLNG"):
        return "EPSG:4326", "longitude/latitude without a datum read as WGS84"
    return None, ""


def _twd(
    compact: str, *, geographic: int, zone119: int, zone121: int, name: str
) -> tuple[str, str]:
    if "119" in compact:
        return f"EPSG:{zone119}", ""
    projected = ("TM2", "TM", "分帶", "橫麥卡托", "121")
    if any(k in compact for k in projected):
        return f"EPSG:{zone121}", ""
    geographic_words = ("經緯度", "地理座標", "LATLON", "LONLAT", "GEOGRAPHIC", "度分秒")
    if any(k in compact for k in geographic_words):
        return f"EPSG:{geographic}", ""
    return f"EPSG:{zone121}", f"{name} without a projection read as TM2 zone 121"


def canonical_encoding(name: str) -> str | None:
    """The codec name the readers take for an encoding as people write it.

    "UTF-8", "utf8", "UTF-8 BOM" → "utf-8"; "BIG5", "Big-5", "cp950", "MS950" → "cp950" (what
    Taiwanese "Big5" files really are: Big5 plus Microsoft's extensions); any other codec
    Python knows → its canonical name.

    Args:
        name: the encoding as written.

    Returns:
        The codec name, or None when it names no codec.
    """
    key = re.sub(r"[\s_\-()]", "", unicodedata.normalize("NFKC", name).lower())
    if key in ("utf8", "utf8sig", "utf8bom", "utf8withbom", "unicodeutf8"):
        return "utf-8"
    if key in ("big5", "cp950", "ms950", "windows950", "big5tw", "big5e"):
        return "cp950"
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def encoding_from_text(text: str) -> tuple[str | None, str]:
    """Read the encoding cell of a supply list ("UTF-8", "BIG5", "UTF-8, Big5", ", UTF-8").

    Args:
        text: the cell as written.

    Returns:
        (codec or None, a note when nothing or several encodings were recognised).
    """
    tokens = [t for t in re.split(r"[,、/;；，\s]+", text) if t]
    found = list(dict.fromkeys(c for t in tokens if (c := canonical_encoding(t))))
    if len(found) == 1 and len(tokens) == 1:
        return found[0], ""
    if len(found) == 1:
        unknown = len(tokens) > len(found)
        return found[0], "unrecognised words ignored" if unknown else ""
    if found:
        return None, "several encodings listed; none used (detected from each file instead)"
    return None, "not an encoding this list knows; none used (detected from the file instead)"


def split_keywords(value: str | list | tuple | None) -> tuple[str, ...]:
    """Keywords as a tuple: a list as is, a string split on 、，,;；and newlines.

    Args:
        value: a list of keywords or one string.

    Returns:
        The keywords, stripped, without empties and repeats, in their order.
    """
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else [str(v) for v in value if v is not None]
    words = (w.strip() for item in items for w in re.split(r"[、，,;；\r\n]+", item))
    return tuple(dict.fromkeys(w for w in words if w))


_FREQ_ALIASES = {
    "不定時": "不定期",
    "不固定": "不定期",
    "不定": "不定期",
    "隨時": "不定期",
    "視需要": "不定期",
    "依需求": "不定期",
    "實時": "即時",
    "即時性": "即時",
    "不再更新": "不更新",
    "停止更新": "不更新",
    "已停止更新": "不更新",
    "一次性": "不更新",
}
_FREQ_RE = re.compile(
    r"(?:每隔|每)?(\d+|一|二|兩|三|六|十二|半)?個?(分鐘|小時|星期|禮拜|年度|分|時|日|天|週|周|月|季|年)"
    r"(?:一次|1次)?"
)
_FREQ_COUNTS = {"一": 1.0, "二": 2.0, "兩": 2.0, "三": 3.0, "六": 6.0, "十二": 12.0, "半": 0.5}
_FREQ_UNITS = {
    "分": "分鐘",
    "分鐘": "分鐘",
    "時": "小時",
    "小時": "小時",
    "日": "日",
    "天": "日",
    "週": "週",
    "周": "週",
    "星期": "週",
    "禮拜": "週",
    "月": "月",
    "季": "季",
    "年": "年",
    "年度": "年",
}
_FREQ_NOTE = "normalised to data.gov.tw's update-frequency vocabulary"
_FREQ_UNKNOWN = "not in data.gov.tw's update-frequency vocabulary; kept as written"


def normalise_update_frequency(text: str) -> tuple[str, str]:
    """Normalise an update frequency to data.gov.tw's vocabulary (:data:`UPDATE_FREQUENCIES`).

    不定時 → 不定期, 每周 → 每週, 每天 → 每日, 每月更新 → 每月, 每3個月 → 每季, 每1年 → 每年;
    "每10日"-style counts are kept in that form, as data.gov.tw writes them.

    Args:
        text: the value as written.

    Returns:
        (value, note): the note says what was done ("" when the value was already right);
        unknown values are kept as written, with a note saying so.
    """
    written = text.strip()
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", written))
    if not s:
        return "", ""
    if s not in _FREQ_ALIASES and s.endswith("更新") and not s.startswith("不") and s != "更新":
        s = s[: -len("更新")]
    value = _FREQ_ALIASES.get(s, s)
    if value not in UPDATE_FREQUENCIES:
        m = _FREQ_RE.fullmatch(value)
        value = _frequency(m.group(1) or "1", _FREQ_UNITS[m.group(2)]) if m else None
    if value is None:
        return written, _FREQ_UNKNOWN
    return value, "" if value == written else _FREQ_NOTE


def _frequency(count_text: str, unit: str) -> str | None:
    count = _FREQ_COUNTS.get(count_text) or float(count_text)
    special = {(3.0, "月"): "每季", (6.0, "月"): "每半年", (12.0, "月"): "每年"}
    special |= {(0.5, "年"): "每半年", (2.0, "季"): "每半年", (4.0, "季"): "每年"}
    if (count, unit) in special:
        return special[count, unit]
    if count == 1:
        return f"每{unit}"
    if count != int(count) or count <= 0:
        return None
    return f"每{int(count)}{unit}"


def _normalise_category(text: str) -> tuple[str, str]:
    written = text.strip()
    value = re.sub(r"\s*[(（]\s*\d+\s*[)）]$", "", written).replace("遷徒", "遷徙")
    note = "normalised to data.gov.tw's service-category names (counts and misspellings)"
    return value, "" if value == written else note


def _normalise_agency(text: str) -> tuple[str, str]:
    written = text.strip()
    m = re.fullmatch(r"[0-9A-Z]{6,12}\s*[【\[(（]\s*(.+?)\s*[】\])）]", written)
    if not m:
        return written, ""
    return m.group(1), "agency code removed"


def _normalise_license(text: str) -> tuple[str, str]:
    written = text.strip()
    compact = re.sub(r"[\s\-－—–_]", "", unicodedata.normalize("NFKC", written))
    ogdl = compact.startswith("政府資料開放授權條款") and compact.removeprefix(
        "政府資料開放授權條款"
    ) in ("", "第1版", "第一版")
    if ogdl or compact.rstrip("/").lower().endswith("data.gov.tw/license"):
        value = "OGDL-Taiwan-1.0"
        return value, "" if value == written else "normalised to its identifier"
    return written, ""


_NORMALISERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "update_frequency": normalise_update_frequency,
    "category": _normalise_category,
    "agency": _normalise_agency,
    "license": _normalise_license,
}


def header_field(name: str) -> str | None:
    """The LayerSpec field a supply-list header means (see :data:`HEADER_SYNONYMS`).

    Args:
        name: the header as written ("資料集名稱", " 檔案位置 ", "座標系統", "標籤/關鍵字").

    Returns:
        The field name, or None for columns that map to no field.
    """
    key = _header_key(name)
    if not key:
        return None
    if key in _HEADER_INDEX:
        return _HEADER_INDEX[key]
    stripped = re.sub(r"[(\[【<].*?[)\]】>]", "", key)
    if stripped in _HEADER_INDEX:
        return _HEADER_INDEX[stripped]
    for part in re.split(r"[/、|]", stripped):
        if part in _HEADER_INDEX:
            return _HEADER_INDEX[part]
    return None


def _header_key(name: str) -> str:
    key = unicodedata.normalize("NFKC", str(name)).translate(_ZERO_WIDTH)
    key = re.sub(r"[\s*:]", "", key).lower()
    return key.replace("坐", "座").replace("台", "臺")


_HEADER_INDEX = {_header_key(s): f for f, names in HEADER_SYNONYMS.items() for s in names}
_LANDING_KEYS = frozenset(_header_key(h) for h in LANDING_PAGE_HEADERS)


# ---------------------------------------------------------------------------------------------
# Manifest models (the edge: what a person writes)


_TEXT_KEYS = _words(
    "title title_en agency category source update_frequency description tileset license"
)


class ManifestDefaults(BaseModel):
    """The ``defaults`` of a manifest: any entry key but ``id``, merged into every entry."""

    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True, frozen=True
    )

    title: str = ""
    title_en: str = ""
    agency: str = ""
    category: str = ""
    source: str = ""
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    x: str | None = None
    y: str | None = None
    update_frequency: str = ""
    keywords: tuple[str, ...] = ()
    description: str = ""
    style: dict[str, Any] = Field(default_factory=dict)
    tileset: str = ""
    license: str = ""

    @field_validator(*_TEXT_KEYS, mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v

    @field_validator("layer", "x", "y", mode="after")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("crs", mode="before")
    @classmethod
    def _crs(cls, v: Any) -> str | None:
        if v is None or v == "":
            return None
        if not isinstance(v, str | int):
            raise ValueError(f"{v!r} is not a CRS")
        return parse_crs(v)

    @field_validator("encoding", mode="after")
    @classmethod
    def _encoding(cls, v: str | None) -> str | None:
        if not v:
            return None
        codec = canonical_encoding(v)
        if codec is None:
            raise ValueError(f"{v!r} is not an encoding Python knows")
        return codec

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords(cls, v: Any) -> tuple[str, ...]:
        if v is not None and not isinstance(v, str | list | tuple):
            raise ValueError(f"{v!r} is neither a list nor a string")
        return split_keywords(v)

    @field_validator("style", mode="before")
    @classmethod
    def _style(cls, v: Any, info: ValidationInfo) -> Any:
        context = info.context or {}
        return validated_style(
            v, context.get("base"), info.data.get("layer"), context.get("sld_cache")
        )


class ManifestEntry(ManifestDefaults):
    """One entry of ``layers:`` in a manifest, after ``defaults`` are merged in (SPEC keys).

    ``title`` and ``source`` are required; ``id`` should be written (an entry without one gets
    an id derived from its title, and a warning).
    """

    id: str | None = None
    title: str
    source: str

    @field_validator("id", mode="after")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9-]+", v):
            raise ValueError(
                f"{v!r} is not a valid id: use lower-case letters a-z, digits and hyphens, "
                f"e.g. id: {layer_id(v)}"
            )
        return v

    @field_validator("title", "source", mode="after")
    @classmethod
    def _required(cls, v: str) -> str:
        if not v:
            raise ValueError("is empty")
        return v

    def spec_fields(self) -> dict[str, Any]:
        """The LayerSpec keyword arguments this entry gives (all but id, base and origin)."""
        return self.model_dump(exclude={"id"})


_KEY_HINTS = {
    "id": "write an id of lower-case letters, digits and hyphens, e.g. id: roads-2023",
    "title": "write title: <the layer's zh-TW title>",
    "source": (
        "write source: <file, folder, .zip, glob or http(s) URL>, relative to the manifest's folder"
    ),
    "crs": "write crs: EPSG:3826 (any EPSG code, or CRS:84)",
    "encoding": "write encoding: cp950 or encoding: utf-8",
    "keywords": "write keywords: [道路, 路網] or keywords: 道路、路網",
    "style": "docs/styles.md lists the style keys and what SLD can say",
}


# ---------------------------------------------------------------------------------------------
# Styles


def validated_style(
    value: Any,
    base: Path | None = None,
    layer: str | None = None,
    sld_cache: dict[tuple[Path, str | None], dict] | None = None,
) -> dict[str, Any]:
    """The style mapping stored for a manifest ``style:`` value, validated and normalised.

    ``{sld: path}`` (optionally ``sld_layer: <NamedLayer name>``) is read relative to the
    manifest's folder and replaced by the style the SLD says; any other keys written beside
    ``sld`` override it. The geometry type is not known yet: geometry defaults are applied
    when the layer is drawn. Colours come back as ``#rrggbb[aa]`` and only the keys written
    are kept, so the catalog stores the style itself and never needs the SLD file.

    Args:
        value: the ``style:`` value as written (None for none).
        base: the manifest's folder (default: the working folder).
        layer: the entry's ``layer:``, tried as the SLD NamedLayer when ``sld_layer`` is absent.
        sld_cache: parsed SLD files by (path, NamedLayer), shared by the entries of a manifest.

    Returns:
        The style mapping (``{}`` for none), valid for :func:`catalog.style.parse_style`.

    Raises:
        ValueError: the style or its SLD cannot be used; the message names the style key, or
            the SLD file and element.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"{value!r} is not a mapping: write style as a mapping, e.g. "
            "style: {fill: '#ffcc00', stroke: '#333333'} or style: {sld: styles/分區.sld}"
        )
    style = dict(value)
    if "sld" in style:
        path = style.pop("sld")
        name = style.pop("sld_layer", None) or layer
        style = _read_sld(path, base or Path.cwd(), name, sld_cache) | style
    elif "sld_layer" in style:
        raise ValueError("sld_layer names a NamedLayer of an SLD file: write sld: <file> too")
    try:
        parsed = parse_style(style, "")
    except StyleError as e:
        raise ValueError(str(e)) from None
    return parsed.model_dump(mode="json", exclude_unset=True)


def _read_sld(
    path: Any,
    base: Path,
    layer: str | None,
    cache: dict[tuple[Path, str | None], dict] | None,
) -> dict[str, Any]:
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"sld: {path!r} is not a file name; write sld: styles/<name>.sld")
    if "://" in path:
        raise ValueError(
            f"sld: {path!r} is a URL: SLD files are read from the manifest's folder, never "
            "fetched; save the file next to the manifest"
        )
    root = base.resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root):
        raise ValueError(f"sld: {path!r} is outside the manifest's folder {root}")
    key = (file, layer)
    if cache is not None and key in cache:
        return dict(cache[key])
    if not file.is_file():
        raise ValueError(f"sld: {path!r}: no such file in {root}")
    with file.open("rb") as f:
        data = f.read(MAX_SLD_BYTES + 1)
    try:
        parsed = parse_sld(data, layer)
    except StyleError as e:
        raise ValueError(f"sld: {path!r}: {e}") from None
    if cache is not None:
        cache[key] = parsed
    return dict(parsed)


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class _Draft:
    """A spec before its id is settled."""

    where: str  # "layers.yaml: entry 3", "供應清單.csv: row 4", or a folder's relative path
    fields: dict[str, Any]  # LayerSpec keyword arguments except id and origin
    explicit_id: str | None = None
    id_from: str = ""
    with_id: bool = True  # origin = "<where> (id <id>)"; else origin = where
    derived_warning: bool = False

    def origin(self, spec_id: str) -> str:
        return f"{self.where} (id {spec_id})" if self.with_id else self.where


@dataclass
class _Load:
    drafts: list[_Draft] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    normalisations: list[Normalisation] = field(default_factory=list)
    seen: dict[Path, str] = field(default_factory=dict)
    sld_cache: dict[tuple[Path, str | None], dict] = field(default_factory=dict)

    def claim(self, path: Path, display: str) -> bool:
        """False (and a warning) when this file was already loaded in this run."""
        real = path.resolve()
        if real in self.seen:
            self.warnings.append(f"{display}: already loaded as {self.seen[real]}; ignored")
            return False
        self.seen[real] = display
        return True


class _Tally:
    """Aggregates per-row observations of one file into one warning per (column, kind)."""

    def __init__(self, display: str, unit: str = "row") -> None:
        self.display = display
        self.unit = unit
        self._seen: dict[tuple[str, str], dict[str, list[int]]] = {}

    def add(self, column: str, kind: str, detail: str, index: int) -> None:
        self._seen.setdefault((column, kind), {}).setdefault(detail, []).append(index)

    def warnings(self) -> list[str]:
        out = []
        for (column, kind), details in self._seen.items():
            parts = [f"{d} ({self._rows(rows)})" for d, rows in list(details.items())[:6]]
            if len(details) > 6:
                parts.append(f"and {len(details) - 6} more")
            out.append(f"{self.display}: {column}: {kind}: " + "; ".join(parts))
        return out

    def _rows(self, rows: list[int]) -> str:
        noun = self.unit if len(rows) == 1 else {"entry": "entries"}.get(self.unit, "rows")
        shown = ", ".join(map(str, rows[:5])) + (", …" if len(rows) > 5 else "")
        return f"{len(rows)} {noun}: {shown}"


def load_specs(sources: list[Path]) -> LoadResult:
    """Read every SOURCE given to ``geoportal ingest`` into layer specs.

    Args:
        sources: manifests (.yaml/.yml), supply lists (.csv/.xlsx/.xls with Chinese headers),
            folders, or single data files / zips, in the order given.

    Returns:
        The specs (ids unique across all sources), the supply-list rows skipped for naming no
        data source, warnings, and every metadata normalisation.

    Raises:
        ManifestError: a source is missing or cannot be understood, or two manifest entries
            share an id; the message names the file, the entry and the key, and says what to
            write instead.
    """
    load = _Load()
    for source in sources:
        _load_source(Path(source), load)
    return _finish(load)


def _load_source(path: Path, load: _Load) -> None:
    display = str(path)
    if not path.exists():
        raise ManifestError(f"{display}: no such file or folder; check the path")
    if path.is_dir():
        _scan_folder(path, display, load)
        return
    suffix = path.suffix.lower()
    if suffix in _MANIFEST_SUFFIXES:
        _load_manifest(path, display, load)
    elif suffix in _TABLE_SUFFIXES and _is_supply_list(path):
        _load_supply_list(path, display, load)
    else:
        _load_file(path, display, load)


def _finish(load: _Load) -> LoadResult:
    taken: dict[str, str] = {}
    ids: list[str | None] = []
    for d in load.drafts:
        if d.explicit_id is not None and d.explicit_id in taken:
            raise ManifestError(
                f"duplicate id {d.explicit_id!r}: {taken[d.explicit_id]} and "
                f"{d.origin(d.explicit_id)}; ids must be unique across everything loaded: "
                "rename one of them"
            )
        if d.explicit_id is not None:
            taken[d.explicit_id] = d.origin(d.explicit_id)
        ids.append(d.explicit_id)
    result = LoadResult(
        skipped=load.skipped, warnings=load.warnings, normalisations=load.normalisations
    )
    for d, spec_id in zip(load.drafts, ids, strict=True):
        if spec_id is None:
            spec_id = _unique(layer_id(d.id_from), taken)
            taken[spec_id] = d.origin(spec_id)
        if d.derived_warning:
            result.warnings.append(
                f"{d.origin(spec_id)}: no id written; derived {spec_id!r} from the title: "
                f"write id: {spec_id} to keep it stable"
            )
        spec = LayerSpec(id=spec_id, origin=d.origin(spec_id), **d.fields)
        if _source_missing(spec):
            result.warnings.append(
                f"{spec.origin}: source {spec.source!r} does not exist in {spec.base}"
            )
        result.specs.append(spec)
    return result


def _unique(base: str, taken: dict[str, str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _source_missing(spec: LayerSpec) -> bool:
    source = spec.source
    if "://" in source or "!" in source or any(c in source for c in "*?["):
        return False
    return not (spec.base / source).exists()


def _normalise_fields(
    fields: dict[str, Any],
    labels: dict[str, str],
    tally: _Tally,
    index: int,
    where: str,
    load: _Load,
) -> None:
    for name, normalise in _NORMALISERS.items():
        original = fields.get(name) or ""
        if not original:
            continue
        value, note = normalise(original)
        label = labels.get(name, name)
        if value != original:
            fields[name] = value
            load.normalisations.append(Normalisation(where, name, original, value))
            tally.add(label, note, f'"{original}" → "{value}"', index)
        elif note:
            tally.add(label, note, f'"{original}"', index)


# ---------------------------------------------------------------------------------------------
# 1. YAML manifests


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key_node.value!r} is written twice (first on line "
                    f"{seen[key_node.value] + 1})",
                    key_node.start_mark,
                )
            seen[key_node.value] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, display: str) -> Any:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(
            f"{display}: not UTF-8 text (byte {e.start}); save the manifest as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError(
            f"{display}: not readable as YAML ({at}{e.problem or e.context}); fix the syntax "
            "there: entries go under layers: as '- id: …' items, and values holding ': ' or "
            "'#' need quotes"
        ) from None
    except yaml.YAMLError as e:
        raise ManifestError(f"{display}: not readable as YAML ({e}); fix the syntax") from None


def _manifest_parts(doc: Any, display: str) -> tuple[dict[str, Any], list[Any]]:
    shape = "a mapping with layers: (a list of entries) and optional defaults:"
    if doc is None:
        raise ManifestError(f"{display}: the manifest is empty; write {shape}")
    if not isinstance(doc, dict):
        raise ManifestError(f"{display}: the manifest is a {type(doc).__name__}; write {shape}")
    unknown = sorted(str(k) for k in doc if k not in ("defaults", "layers"))
    if unknown:
        raise ManifestError(
            f"{display}: unknown top-level key {unknown[0]!r}; known keys: defaults, layers "
            "(entry keys such as title: go inside the entries of layers:)"
        )
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ManifestError(f"{display}: defaults: must be a mapping of entry keys")
    if "layers" not in doc:
        raise ManifestError(f"{display}: key 'layers' is missing; write {shape}")
    layers = doc["layers"] or []
    if not isinstance(layers, list):
        raise ManifestError(f"{display}: key 'layers' must be a list of entries ('- id: …')")
    return defaults, layers


def _validate_defaults(
    defaults: dict[str, Any], display: str, context: dict[str, Any]
) -> dict[str, Any]:
    if "id" in defaults:
        raise ManifestError(
            f"{display}: defaults: key 'id' cannot have a default; give each entry its own id"
        )
    try:
        ManifestDefaults.model_validate(defaults, context=context)
    except ValidationError as e:
        raise ManifestError(_validation_message(e, f"{display}: defaults")) from None
    return defaults


def _validation_message(err: ValidationError, label: str) -> str:
    messages = []
    for e in err.errors(include_url=False):
        key = str(e["loc"][0]) if e["loc"] else ""
        hint = _KEY_HINTS.get(key, "")
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, ENTRY_KEYS, n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            messages.append(f"unknown key {key!r}{maybe}; known keys: {', '.join(ENTRY_KEYS)}")
        elif e["type"] == "missing":
            messages.append(f"key {key!r} is missing: {hint}")
        else:
            msg = str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"]
            messages.append(f"key {key!r}: {msg}" + (f"; {hint}" if hint else ""))
    return f"{label}: " + "; ".join(messages)


def _load_manifest(path: Path, display: str, load: _Load) -> None:
    if not load.claim(path, display):
        return
    defaults, entries = _manifest_parts(_read_yaml(path, display), display)
    base = path.parent.resolve()
    defaults = _validate_defaults(defaults, display, _context(base, load))
    tally = _Tally(display, unit="entry")
    for index, raw in enumerate(entries, 1):
        load.drafts.append(_manifest_entry(raw, index, defaults, display, base, tally, load))
    if not entries:
        load.warnings.append(f"{display}: layers: is empty; nothing to ingest")
    load.warnings.extend(tally.warnings())


def _context(base: Path, load: _Load) -> dict[str, Any]:
    """The validation context of a manifest's models: its folder and the SLD files read."""
    return {"base": base, "sld_cache": load.sld_cache}


def _manifest_entry(
    raw: Any,
    index: int,
    defaults: dict[str, Any],
    display: str,
    base: Path,
    tally: _Tally,
    load: _Load,
) -> _Draft:
    where = f"{display}: entry {index}"
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    label = f"{where} (id {raw_id})" if raw_id is not None else f"{where} (no id)"
    if not isinstance(raw, dict):
        raise ManifestError(
            f"{label}: an entry must be a mapping of keys (- id: …, title: …, source: …), "
            f"not a {type(raw).__name__}"
        )
    try:
        entry = ManifestEntry.model_validate({**defaults, **raw}, context=_context(base, load))
    except ValidationError as e:
        raise ManifestError(_validation_message(e, label)) from None
    fields = entry.spec_fields() | {"base": base}
    _normalise_fields(fields, {}, tally, index, label, load)
    return _Draft(
        where,
        fields,
        explicit_id=entry.id,
        id_from=entry.title,
        derived_warning=entry.id is None,
    )


# ---------------------------------------------------------------------------------------------
# 2. Supply lists


@dataclass
class _Table:
    """The rows of one CSV file or one worksheet: (row number, cells as text)."""

    name: str
    rows: list[tuple[int, list[str]]]


@dataclass
class _Header:
    """Where a supply list's header row is and what its columns mean."""

    index: int  # position of the header row in _Table.rows
    columns: dict[str, int]  # field -> column
    labels: dict[str, str]  # field -> header as written
    notes: list[str] = field(default_factory=list)
    landing: list[str] = field(default_factory=list)


def _is_supply_list(path: Path) -> bool:
    try:
        tables = _read_tables(path, str(path), limit=_HEADER_ROWS_SEARCHED)
    except (ManifestError, OSError):
        return False
    return any(_find_header(t.rows) is not None for t in tables)


def _find_header(rows: list[tuple[int, list[str]]]) -> _Header | None:
    for i, (_, cells) in enumerate(rows[:_HEADER_ROWS_SEARCHED]):
        header = _map_header(cells, i)
        if "title" in header.columns and len(_CATALOG_FIELDS & header.columns.keys()) >= 2:
            return header
    return None


def _map_header(cells: list[str], index: int) -> _Header:
    header = _Header(index, {}, {})
    for j, cell in enumerate(cells):
        name = _clean_line(cell)
        spec_field = header_field(name)
        if spec_field is None:
            if _header_key(name) in _LANDING_KEYS:
                header.landing.append(name)
            continue
        if spec_field in header.columns:
            header.notes.append(
                f"columns {header.labels[spec_field]!r} and {name!r} both mean {spec_field}; "
                f"using {header.labels[spec_field]!r}"
            )
            continue
        header.columns[spec_field] = j
        header.labels[spec_field] = name
    return header


def _load_supply_list(path: Path, display: str, load: _Load) -> None:
    if not load.claim(path, display):
        return
    found = [(t, h) for t in _read_tables(path, display) if (h := _find_header(t.rows))]
    if not found:  # _is_supply_list said yes on the first rows: only a changed file gets here
        raise ManifestError(
            f"{display}: no header row with a title column (資料集名稱) and two of 檔案位置, "
            "資料集提供機關, 更新頻率, 編碼格式, 坐標系統, 關鍵字, 授權方式 in its first "
            f"{_HEADER_ROWS_SEARCHED} rows; add those headers"
        )
    table, header = found[0]
    if len(found) > 1:
        others = ", ".join(t.name for t, _ in found[1:])
        load.warnings.append(f"{display}: read sheet {table.name!r} only; ignored {others}")
    load.warnings.extend(f"{display}: {note}" for note in header.notes)
    tally = _Tally(display)
    base = path.parent.resolve()
    skipped_before = len(load.skipped)
    rows = 0
    for number, cells in table.rows[header.index + 1 :]:
        rows += _supply_row(number, cells, header, display, base, tally, load)
    load.warnings.extend(tally.warnings())
    _skipped_summary(display, header, load.skipped[skipped_before:], rows, load)


def _skipped_summary(
    display: str, header: _Header, skipped: list[SkippedRow], rows: int, load: _Load
) -> None:
    if not skipped:
        return
    numbers = ", ".join(str(s.row) for s in skipped[:8]) + (", …" if len(skipped) > 8 else "")
    if "source" not in header.columns:
        names = "/".join(HEADER_SYNONYMS["source"][:6])
        landing = (
            f"; {'/'.join(header.landing)} links to a dataset's web page, not to its data"
            if header.landing
            else ""
        )
        load.warnings.append(
            f"{display}: no data-source column ({names}, …){landing}: all {rows} rows skipped; "
            "add a 檔案位置 column with each dataset's file or download URL"
        )
        return
    load.warnings.append(
        f"{display}: {len(skipped)} of {rows} rows have an empty "
        f"{header.labels['source']} and are skipped (rows {numbers})"
    )


def _supply_row(
    number: int,
    cells: list[str],
    header: _Header,
    display: str,
    base: Path,
    tally: _Tally,
    load: _Load,
) -> int:
    """Turn one row into a draft or a skipped row; 0 for a blank row, else 1."""
    if not any(_clean_line(c) for c in cells):
        return 0
    values = {f: cells[j] if j < len(cells) else "" for f, j in header.columns.items()}
    fields = _supply_fields(values, header.labels, tally, number)
    where = f"{display}: row {number}"
    _normalise_fields(fields, header.labels, tally, number, where, load)
    if not fields["source"]:
        load.skipped.append(
            SkippedRow(display, number, fields["title"], NO_SOURCE, fields["agency"])
        )
        return 1
    if not fields["title"]:
        fields["title"] = _title_from_name(fields["source"].rsplit("/", 1)[-1])
        label = header.labels.get("title", "title")
        tally.add(label, "empty; the file name used", f'"{fields["title"]}"', number)
    load.drafts.append(_Draft(where, fields | {"base": base}, id_from=fields["title"]))
    return 1


def _supply_fields(
    values: dict[str, str], labels: dict[str, str], tally: _Tally, number: int
) -> dict[str, Any]:
    def line(name: str) -> str:
        return _clean_line(values.get(name, ""))

    crs_text, encoding_text = line("crs"), line("encoding")
    crs, crs_note = crs_from_text(crs_text) if crs_text else (None, "")
    if crs_text and (crs is None or crs_note):
        note = (
            crs_note or "not a coordinate system known here; no override (detected from the data)"
        )
        tally.add(labels["crs"], note, f'"{crs_text}"' + (f" → {crs}" if crs else ""), number)
    encoding, encoding_note = encoding_from_text(encoding_text) if encoding_text else (None, "")
    if encoding_note:
        tally.add(labels["encoding"], encoding_note, f'"{encoding_text}"', number)
    return {
        "title": line("title"),
        "title_en": line("title_en"),
        "agency": line("agency"),
        "category": line("category"),
        "update_frequency": line("update_frequency"),
        "license": line("license"),
        "source": _source_cell(values.get("source", ""), labels.get("source", ""), tally, number),
        "layer": line("layer") or None,
        "crs": crs,
        "encoding": encoding,
        "keywords": split_keywords(values.get("keywords", "")),
        "description": _clean_text(values.get("description", "")),
    }


def _source_cell(value: str, label: str, tally: _Tally, number: int) -> str:
    lines = [s for s in (_clean_line(x) for x in _clean_text(value).split("\n")) if s]
    if not lines:
        return ""
    if len(lines) > 1:
        tally.add(label, "several sources in one cell; the first used", f'"{lines[0]}"', number)
    source = lines[0]
    if "://" not in source and "\\" in source:
        tally.add(label, "Windows path separators turned into /", f'"{source}"', number)
        source = source.replace("\\", "/")
    return source


def _clean_line(value: Any) -> str:
    text = str(value).translate(_ZERO_WIDTH)
    return re.sub(r"\s+", " ", text).strip()


def _clean_text(value: Any) -> str:
    text = str(value).translate(_ZERO_WIDTH).replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


# --- reading tables


def _read_tables(path: Path, display: str, limit: int | None = None) -> list[_Table]:
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_MAGIC):
        return _xlsx_tables(path, display, limit)
    if head.startswith(_OLE2_MAGIC):
        return _xls_tables(path, display, limit)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls") and head.lstrip().startswith(b"<"):
        raise ManifestError(
            f"{display}: an HTML page saved as {suffix}, not a workbook; open it in Excel and "
            "save it as .xlsx, or export it as CSV (UTF-8)"
        )
    return [_csv_table(path, display, limit)]


def _csv_table(path: Path, display: str, limit: int | None) -> _Table:
    with path.open("rb") as f:
        data = f.read(_SNIFF_BYTES if limit else -1)
    text, _ = _decode(data, display, partial=limit is not None)
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;|", key=first.count) if any(d in first for d in ",\t;|") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for number, row in enumerate(reader, 1):
            rows.append((number, row))
            if limit and number >= limit:
                break
    except csv.Error as e:
        raise ManifestError(
            f"{display}: row {reader.line_num}: not readable as CSV ({e}); save it again as "
            "CSV (UTF-8)"
        ) from None
    return _Table(path.name, rows)


def _decode(data: bytes, display: str, partial: bool) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig", "ignore" if partial else "strict"), "utf-8-sig"
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16", "ignore" if partial else "strict"), "utf-16"
    for encoding in ("utf-8", "cp950"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as e:
            if partial and e.start >= len(data) - 3:  # a character cut by the sniff
                return data[: e.start].decode(encoding), encoding
    if partial:
        return data.decode("cp950", "replace"), "cp950"
    raise ManifestError(
        f"{display}: neither UTF-8 nor Big5/CP950 text; save the list as CSV (UTF-8) or .xlsx"
    )


def _xlsx_tables(path: Path, display: str, limit: int | None) -> list[_Table]:
    # A file object, not the path: openpyxl refuses paths not ending in .xlsx, and agencies
    # save workbooks as .xls too.
    with path.open("rb") as f:
        try:
            book = openpyxl.load_workbook(f, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
            raise ManifestError(
                f"{display}: not readable as an .xlsx workbook ({e}); save it again from Excel"
            ) from None
        try:
            return [_sheet_table(sheet, limit) for sheet in book.worksheets]
        finally:
            book.close()


def _sheet_table(sheet: Any, limit: int | None) -> _Table:
    sheet.reset_dimensions()  # some writers record a wrong sheet size
    rows = sheet.iter_rows(min_row=1, max_row=limit, values_only=True)
    return _Table(sheet.title, [(n, [_cell_text(v) for v in r]) for n, r in enumerate(rows, 1)])


def _xls_tables(path: Path, display: str, limit: int | None) -> list[_Table]:
    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except (xlrd.XLRDError, xlrd.compdoc.CompDocError, OSError, ValueError) as e:
        raise ManifestError(
            f"{display}: not readable as an Excel 97-2003 workbook ({e}); save it as .xlsx or "
            "CSV (UTF-8)"
        ) from None
    try:
        tables = []
        for sheet in book.sheets():
            count = sheet.nrows if limit is None else min(limit, sheet.nrows)
            rows = [
                (r + 1, [_xls_cell(sheet.cell(r, c), book.datemode) for c in range(sheet.ncols)])
                for r in range(count)
            ]
            tables.append(_Table(sheet.name, rows))
        return tables
    finally:
        book.release_resources()


def _xls_cell(cell: xlrd.sheet.Cell, datemode: int) -> str:
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return _cell_text(xlrd.xldate.xldate_as_datetime(cell.value, datemode))
        except (xlrd.xldate.XLDateError, OverflowError):
            return _cell_text(cell.value)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    if cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    return _cell_text(cell.value)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------
# 3. Folders and 4. single files


def _scan_folder(folder: Path, display: str, load: _Load) -> None:
    manifest = _folder_manifest(folder)
    if manifest is not None:
        _load_manifest(manifest, str(folder / manifest.name), load)
        return
    base = folder.resolve()
    ignored: list[str] = []
    found = 0
    for path in _walk(folder, load, {base}):
        rel = path.relative_to(folder).as_posix()
        ok, why = _classify(path)
        if not ok:
            if why:
                ignored.append(f"{rel} ({why})")
            continue
        if not load.claim(path, rel):
            continue
        fields = {"title": _title_from_name(path.name), "source": rel, "base": base}
        load.drafts.append(_Draft(rel, fields, id_from=fields["title"], with_id=False))
        found += 1
    if ignored:
        shown = ", ".join(ignored[:10]) + (
            f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        )
        load.warnings.append(f"{display}: ignored {len(ignored)} files: {shown}")
    if not found:
        load.warnings.append(f"{display}: no data sources found in this folder")


def _folder_manifest(folder: Path) -> Path | None:
    return next((folder / n for n in _MANIFEST_NAMES if (folder / n).is_file()), None)


def _walk(folder: Path, load: _Load, seen: set[Path]) -> Iterator[Path]:
    """Files under ``folder`` in name order; subfolders with a layers.yaml load through it."""
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _is_junk(entry.name):
            continue
        if entry.is_dir():
            real = entry.resolve()
            if real in seen:  # a symlink loop
                continue
            seen.add(real)
            manifest = _folder_manifest(entry)
            if manifest is not None:
                _load_manifest(manifest, str(manifest), load)
            else:
                yield from _walk(entry, load, seen)
        elif entry.is_file():
            yield entry


def _is_junk(name: str) -> bool:
    return name.startswith((".", "~$")) or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _classify(path: Path) -> tuple[bool, str]:
    """(is a data source, why not: "" when a sidecar that needs no mention)."""
    suffix = path.suffix.lower()
    if suffix == ".dbf" and not _has_sibling(path, ".shp"):
        return True, ""  # an orphan .dbf: a table without geometry
    if suffix in SIDECAR_SUFFIXES:
        return False, ""
    if suffix not in DATA_SUFFIXES:
        return False, "not a data format"
    if suffix == ".json" and not _looks_geojson(path):
        return False, "JSON but not GeoJSON/TopoJSON"
    if suffix == ".txt" and not _looks_delimited(path):
        return False, "text but not a delimited table"
    if suffix in _TABLE_SUFFIXES and _is_supply_list(path):
        return False, "a supply list: pass it to ingest on its own"
    return True, ""


def _has_sibling(path: Path, suffix: str) -> bool:
    return any(path.with_suffix(s).exists() for s in (suffix, suffix.upper()))


def _head_text(path: Path, size: int = _SNIFF_BYTES) -> str:
    with path.open("rb") as f:
        data = f.read(size)
    return _decode(data, str(path), partial=True)[0]


def _looks_geojson(path: Path) -> bool:
    text = _head_text(path).lstrip()
    return text.startswith("{") and _GEOJSON_TYPE.search(text) is not None


def _looks_delimited(path: Path) -> bool:
    lines = [x for x in _head_text(path, 8192).splitlines() if x.strip()][:2]
    if not lines:
        return False
    return any(
        lines[0].count(d) >= 1 and all(x.count(d) == lines[0].count(d) for x in lines)
        for d in ",\t|;"
    )


def _title_from_name(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    for inner in (".topo", ".geo"):
        if stem.lower().endswith(inner):
            stem = stem[: -len(inner)]
    return stem


def _load_file(path: Path, display: str, load: _Load) -> None:
    ok, why = _classify(path)
    if not ok:
        what = why or "a sidecar of another file"
        raise ManifestError(
            f"{display}: {what}, not a data source; pass a manifest (.yaml), a supply list, a "
            "folder, or a data file (.shp, .geojson, .topojson, .kml/.kmz, .gpkg, .csv/.tsv/.txt, "
            ".xlsx/.xls, .tif, .zip)"
        )
    if not load.claim(path, display):
        return
    fields = {"title": _title_from_name(path.name), "source": path.name}
    fields["base"] = path.parent.resolve()
    load.drafts.append(_Draft(display, fields, id_from=fields["title"], with_id=False))


# ---------------------------------------------------------------------------------------------
# Supply-list tables for other readers: portal.ckan.imports makes a portal dataset of every
# row that names no data source, reading the same table the same way.


@dataclass(frozen=True)
class SupplyTable:
    """A supply list's table as :func:`load_specs` reads it, with what its header means.

    Attributes:
        file: the supply list, as given.
        sheet: the CSV file's name or the worksheet read (the first with a header row).
        header_row: the header row's number, as a spreadsheet shows it.
        headers: the header cells, each cleaned to one line.
        columns: LayerSpec field → column index (see :data:`HEADER_SYNONYMS`).
        rows: (row number, cells) of every row after the header, blank rows included.
        notes: sentences about the table: sheets not read, columns meaning the same field.
    """

    file: str
    sheet: str
    header_row: int
    headers: tuple[str, ...]
    columns: dict[str, int]
    rows: list[tuple[int, list[str]]]
    notes: tuple[str, ...] = ()

    def cell(self, cells: list[str], column: int | None) -> str:
        """The cell of a row in ``column`` ("" when the row is shorter or column is None)."""
        if column is None or column >= len(cells):
            return ""
        return cells[column]

    def names_source(self, cells: list[str]) -> bool:
        """Whether :func:`load_specs` makes a layer of this row (its source cell is not empty)."""
        return bool(clean_line(self.cell(cells, self.columns.get("source"))))


def is_supply_list(path: Path) -> bool:
    """Whether a .csv/.tsv/.txt/.xlsx/.xls file is a supply list or catalog export.

    Args:
        path: the file.

    Returns:
        True when one of its tables has a header row with a title column and two catalog
        columns within its first rows (what :func:`load_specs` takes for a supply list).
    """
    return path.suffix.lower() in _TABLE_SUFFIXES and _is_supply_list(path)


def read_supply_table(path: Path) -> SupplyTable:
    """Read a supply list's table exactly as :func:`load_specs` does.

    Args:
        path: a supply list or catalog export (.csv/.tsv/.txt/.xlsx/.xls).

    Returns:
        The table of its first sheet with a header row.

    Raises:
        ManifestError: the file cannot be read, or no sheet has a header row with a title
            column and two catalog columns; the message says what to fix.
    """
    display = str(path)
    found = [(t, h) for t in _read_tables(path, display) if (h := _find_header(t.rows))]
    if not found:
        raise ManifestError(
            f"{display}: no header row with a title column (資料集名稱) and two of 檔案位置, "
            "資料集提供機關, 更新頻率, 編碼格式, 坐標系統, 關鍵字, 授權方式 in its first "
            f"{_HEADER_ROWS_SEARCHED} rows; add those headers"
        )
    table, header = found[0]
    notes = list(header.notes)
    if len(found) > 1:
        notes.insert(
            0, f"read sheet {table.name!r} only; ignored {', '.join(t.name for t, _ in found[1:])}"
        )
    header_number, header_cells = table.rows[header.index]
    return SupplyTable(
        file=display,
        sheet=table.name,
        header_row=header_number,
        headers=tuple(clean_line(c) for c in header_cells),
        columns=dict(header.columns),
        rows=table.rows[header.index + 1 :],
        notes=tuple(notes),
    )


def header_key(name: str) -> str:
    """A header as supply-list matching compares it: NFKC, no spaces, lower case, 座, 臺.

    Args:
        name: the header as written.

    Returns:
        The comparison key ("" for an empty header).
    """
    return _header_key(name)


def clean_line(value: Any) -> str:
    """A cell as one line: zero-width characters dropped, whitespace runs made one space."""
    return _clean_line(value)


def clean_text(value: Any) -> str:
    """A cell as text: zero-width characters dropped, CR/CRLF line ends made LF, ends stripped."""
    return _clean_text(value)


def normalise_metadata(name: str, text: str) -> tuple[str, str]:
    """Normalise a metadata value to the portal's vocabulary, as supply lists are read.

    Args:
        name: "update_frequency", "category", "agency" or "license".
        text: the value as written.

    Returns:
        (value, note): the note says what was done or why the value was kept ("" when the
        value was already right).

    Raises:
        KeyError: ``name`` is not one of those fields.
    """
    return _NORMALISERS[name](text)
