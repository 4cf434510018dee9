"""Typing of text attribute columns (CSV, Excel, KML ExtendedData) after reading.

Agencies write numbers and dates as text in many ways: ``1,234``, full-width ``１２３``,
``3,869 公尺``, ``12.5%``, ROC dates ``112/01/31``, ``民國112年1月31日``, ``1120131``. A column
is converted only when every non-empty value parses the same way; identifiers, codes with
leading zeros and mixed columns stay text. Where parsing changed the text (anything but a plain
number or ISO date), the original text is kept in a ``<name>_raw`` column right after the typed
one, so nothing is lost. Every conversion (and every refusal a person may wonder about) is a
:class:`~catalog.model.Decision` of kind ``"column-type"``.

Typed columns use these dtypes: integer → pandas ``Int64``; decimal → ``float64`` (NaN for
null); date → object column of :class:`datetime.date` (None for null); datetime → pandas
``datetime64`` (NaT for null); boolean → pandas ``boolean``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from catalog.model import Decision, FieldInfo

#: Values that mean "no value" in a typed column (compared after NFKC and stripping).
NULL_TOKENS = frozenset({"", "-", "無"})

#: Units accepted after a number (NFKC-normalised; Latin units compared case-insensitively).
UNITS = frozenset(
    {
        "公尺", "米", "公分", "公釐", "公里", "平方公尺", "平方米", "平方公里", "公頃", "坪",
        "公斤", "公噸", "噸", "%", "‰", "人", "戶", "輛", "台", "臺", "個", "座", "處", "間",
        "棟", "床", "席", "格", "位", "元", "萬元", "千元", "億元", "度", "小時", "分鐘", "秒",
        "天", "年", "次", "件", "株", "棵", "m", "km", "cm", "mm", "m2", "km2", "m3", "ha",
        "kg", "kw", "kwh", "mw",
    }
)  # fmt: skip

# Chinese name parts that make a column an identifier, whatever its values look like.
_ID_PARTS = (
    "編號", "代碼", "代號", "電話", "郵遞區號", "郵遞", "區號", "統編", "統一編號", "號碼",
    "傳真", "手機", "地號", "建號", "門牌", "序號", "識別碼", "編碼", "字號", "證號", "帳號",
    "條碼",
)  # fmt: skip
# Names ending in 號/碼 (編號, 點號, 建物號, 門牌號 …) are identifiers; 巷/弄 are address parts.
_ID_SUFFIXES = ("號", "碼")
_ID_EXACT = frozenset({"巷", "弄", "巷弄"})
_ID_TOKENS = frozenset(
    {
        "id", "code", "no", "tel", "phone", "fax", "zip", "zipcode", "postcode", "postal",
        "sn", "uid", "uuid", "fid", "gid", "oid", "pid", "objectid", "mobile", "key",
    }
)  # fmt: skip

_INT64_MAX = 2**63 - 1

_NUMBER = re.compile(
    r"^(?P<sign>[+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s*(?P<unit>[^\d\s.,+\-].*))?$"
)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_ROC = r"^(?P<roc>(?:中華)?民國)?\s*(?P<y>\d{2,4})\s*"
_SEP_DATE = re.compile(_ROC + r"(?P<sep>[/.\-])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})$")
_CJK_DATE = re.compile(_ROC + r"年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")
_COMPACT_DATE = re.compile(r"^\d{7,8}$")
_FULLWIDTH = re.compile(r"[０-９，．／－＋]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_PATTERN_TEXT = {
    "plain": "plain numbers",
    "thousands": "thousands separators ('1,234')",
    "fullwidth": "full-width digits ('１２３')",
    "unit": "a unit after the number",
    "sign": "an explicit '+' sign",
    "iso": "ISO dates ('2023-01-31')",
    "iso-unpadded": "ISO-like dates without zero padding ('2023-1-31')",
    "gregorian-sep": "Gregorian dates with / or . ('2023/1/31')",
    "gregorian-cjk": "Gregorian dates in Chinese ('2023年1月31日')",
    "roc-sep": "ROC dates ('112/01/31' = 2023-01-31)",
    "roc-cjk": "ROC dates in Chinese ('民國112年1月31日')",
    "roc-compact": "compact ROC dates ('1120131' = 2023-01-31)",
    "compact": "compact dates ('20230131')",
    "time": "date and time",
    "boolean": "true/false",
    "null-token": "'-' or '無' for no value",
}


@dataclass
class TypedResult:
    """The outcome of :func:`type_columns`.

    Attributes:
        frame: the new DataFrame: typed columns in place, each ``<name>_raw`` column right
            after the column whose text it keeps.
        decisions: one ``"column-type"`` decision per converted column, and one per column
            kept as text for a reason a person may wonder about (identifier name, leading
            zeros, mixed values).
        fields: every column of ``frame`` in order, with its type (``raw_of`` set on raw
            columns).
    """

    frame: pd.DataFrame
    decisions: list[Decision] = field(default_factory=list)
    fields: list[FieldInfo] = field(default_factory=list)


@dataclass(frozen=True)
class Parsed:
    """One text value parsed.

    Attributes:
        kind: "integer", "decimal", "date", "datetime", "boolean", or "code" (a number with
            leading zeros: an identifier, never converted).
        value: the typed value (None for "code").
        pattern: how it was written (a key of the pattern descriptions, e.g. "thousands").
        unit: the unit written after a number, or None.
        changed: True when the typed value does not render back to the same text (anything but
            a plain number or ISO date), so the original must be kept.
    """

    kind: str
    value: object
    pattern: str
    unit: str | None = None
    changed: bool = False


@dataclass
class _Plan:
    """What to do with one column."""

    kind: str = "string"
    unit: str | None = None
    patterns: set[str] = field(default_factory=set)
    parsed: dict[str, Parsed | None] = field(default_factory=dict)
    raw_needed: bool = False
    reason: str = ""  # why a column that might have been typed stays text
    example: str = ""


def type_columns(frame: pd.DataFrame, columns: Sequence[str]) -> TypedResult:
    """Type the text columns ``columns`` of ``frame``.

    Args:
        frame: the attributes as read; the columns to type hold ``str`` or None.
        columns: the names of the columns that came as text (``RawLayer.text_columns``).

    Returns:
        The typed frame, the decisions taken and the field list (every column of the new
        frame, in order).

    Raises:
        KeyError: a name in ``columns`` is not a column of ``frame``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"type_columns: no column(s) {missing} in the frame")
    wanted = set(columns)
    out: dict[object, object] = {}
    fields: list[FieldInfo] = []
    decisions: list[Decision] = []
    for name in frame.columns:
        if name not in wanted:
            out[name] = frame[name]
            fields.append(FieldInfo(name, field_type(frame[name])))
            continue
        texts = _texts(frame[name])
        uniques = [u for u in pd.unique(texts.dropna()) if u.strip()]
        plan = _plan_column(str(name), uniques)
        raw = _raw_name(name, frame.columns)
        decision = _decision_for(str(name), plan, raw)
        if decision is not None:
            decisions.append(decision)
        if plan.kind == "string":
            out[name] = _blank_to_none(texts)
            fields.append(FieldInfo(name, "string"))
            continue
        out[name] = _typed_values(plan, texts)
        fields.append(FieldInfo(name, plan.kind))
        if plan.raw_needed:
            out[raw] = _blank_to_none(texts)
            fields.append(FieldInfo(raw, "string", raw_of=name))
    typed = pd.DataFrame(out, index=frame.index)
    return TypedResult(typed, decisions, fields)


def _texts(series: pd.Series) -> pd.Series:
    """The column as an object Series of str, None where null (other values as str)."""
    values = series.to_numpy(dtype=object, copy=True)
    null = pd.isna(values)
    values[null] = None
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        values = np.array([_as_text(v) for v in values], dtype=object)
    return pd.Series(values, index=series.index, dtype=object)


def _blank_to_none(texts: pd.Series) -> pd.Series:
    """Empty or whitespace-only text → None (the distinct values are checked, not every row)."""
    present = texts.dropna()
    blanks = [u for u in pd.unique(present) if not u.strip()]
    if not blanks:
        return texts
    return texts.where(~texts.isin(blanks), None)


# --- one value -----------------------------------------------------------------------------------


def parse_value(text: str) -> Parsed | None:
    """Parse one non-empty text value as a number, date, datetime or boolean.

    Compact dates (``1120131``) are not recognised here: they need the column's header
    (see :func:`type_columns`).

    Args:
        text: the value as written.

    Returns:
        The parsed value, a ``"code"`` result for numbers with leading zeros, or None when the
        text is none of these.
    """
    stripped = text.strip()
    norm = _nfkc(stripped)
    fullwidth = _FULLWIDTH.search(stripped) is not None
    if norm.lower() in ("true", "false"):
        return Parsed("boolean", norm.lower() == "true", "boolean")
    for parser in (_parse_number, _parse_date, _parse_datetime):
        parsed = parser(norm)
        if parsed is not None:
            if fullwidth and parsed.kind != "code":
                return Parsed(parsed.kind, parsed.value, "fullwidth", parsed.unit, changed=True)
            if norm != stripped:  # other compatibility characters (㎡, ², full-width letters)
                return Parsed(parsed.kind, parsed.value, parsed.pattern, parsed.unit, True)
            return parsed
    return None


def _parse_number(t: str) -> Parsed | None:
    m = _NUMBER.match(t)
    if m is None:
        return None
    digits = m["int"].replace(",", "")
    if len(digits) > 1 and digits.startswith("0"):
        return Parsed("code", None, "leading-zero")
    unit = m["unit"]
    if unit is not None:
        unit = unit.strip()
        if _unit_key(unit) not in UNITS:
            return None
    sign = -1 if m["sign"] == "-" else 1
    pattern = "unit" if unit else "thousands" if "," in m["int"] else "plain"
    if m["sign"] == "+" and pattern == "plain":
        pattern = "sign"
    changed = pattern != "plain"
    if m["frac"] is None:
        value = sign * int(digits)
        if abs(value) > _INT64_MAX:
            return None
        return Parsed("integer", value, pattern, unit, changed)
    return Parsed("decimal", sign * float(digits + m["frac"]), pattern, unit, changed)


def _parse_date(t: str) -> Parsed | None:
    m = _ISO_DATE.match(t)
    if m is not None:
        d = _make_date(int(m[1]), int(m[2]), int(m[3]))
        if d is None:
            return None
        plain = len(m[2]) == 2 and len(m[3]) == 2
        return Parsed("date", d, "iso" if plain else "iso-unpadded", changed=not plain)
    for regex, roc_pattern, greg_pattern in (
        (_SEP_DATE, "roc-sep", "gregorian-sep"),
        (_CJK_DATE, "roc-cjk", "gregorian-cjk"),
    ):
        m = regex.match(t)
        if m is None:
            continue
        year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
        if len(m["y"]) == 4:
            if m["roc"]:
                return None
            d, pattern = _make_date(year, month, day), greg_pattern
        else:
            d, pattern = _make_date(year + 1911, month, day), roc_pattern
        return None if d is None else Parsed("date", d, pattern, changed=True)
    return None


def _parse_datetime(t: str) -> Parsed | None:
    parts = re.split(r"(?<=[\d日])(?:T|\s+)(?=\d{1,2}:)", t, maxsplit=1)
    if len(parts) != 2:
        return None
    d = _parse_date(parts[0])
    tm = _TIME.match(parts[1])
    if d is None or tm is None:
        return None
    hour, minute, sec = int(tm[1]), int(tm[2]), int(tm[3] or 0)
    micro = int((tm[4] or "0").ljust(6, "0"))
    if hour > 23 or minute > 59 or sec > 59:
        return None
    day = d.value
    value = datetime(day.year, day.month, day.day, hour, minute, sec, micro)
    plain = d.pattern == "iso" and len(tm[1]) == 2
    return Parsed("datetime", value, "time" if plain else d.pattern, changed=not plain)


def _parse_compact_date(t: str) -> Parsed | None:
    if len(t) == 7:
        d = _make_date(int(t[:3]) + 1911, int(t[3:5]), int(t[5:]))
        return None if d is None else Parsed("date", d, "roc-compact", changed=True)
    year = int(t[:4])
    if not 1800 <= year <= 2200:
        return None
    d = _make_date(year, int(t[4:6]), int(t[6:]))
    return None if d is None else Parsed("date", d, "compact", changed=True)


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- one column ----------------------------------------------------------------------------------


def looks_like_identifier(name: str) -> bool:
    """True when a column name says it holds identifiers, codes or phone numbers.

    Args:
        name: the column's name as written (Chinese or English).

    Returns:
        True for names such as 編號, 代碼, 電話, 郵遞區號, 點號, 巷, ID, TOWNCODE, Phone No.
    """
    n = _nfkc(name).strip()
    if not n:
        return False
    if n in _ID_EXACT or n.endswith(_ID_SUFFIXES) or any(p in n for p in _ID_PARTS):
        return True
    tokens = {t.lower() for t in _CAMEL.findall(n)}
    if tokens & _ID_TOKENS:
        return True
    compact = re.sub(r"[^A-Za-z]", "", n)
    return compact.isupper() and compact.endswith(("ID", "CODE"))


def _is_date_header(name: str) -> bool:
    n = _nfkc(name)
    return "日" in n or "date" in n.lower()


def _plan_column(name: str, uniques: list[str]) -> _Plan:
    """Decide a column's type from its distinct non-blank values."""
    if not uniques:
        return _Plan()
    if looks_like_identifier(name):
        return _identifier_plan(uniques)
    if _is_date_header(name):
        compact = _compact_plan(uniques)
        if compact is not None:
            return compact
    return _scan(uniques)


def _identifier_plan(uniques: list[str]) -> _Plan:
    """A column named as an identifier: text; say so when the values look typed."""
    plan = _Plan()
    looks = _scan(uniques[:50])
    if looks.kind != "string":
        plan.reason = f"the name looks like an identifier; values look like {looks.kind}"
        plan.example = looks.example
    return plan


def _compact_plan(uniques: list[str]) -> _Plan | None:
    """Compact dates (1120131, 20230131): only under a date header, all values one length."""
    plan = _Plan(kind="date", raw_needed=True)
    lengths: set[int] = set()
    for v in uniques:
        n = _nfkc(v.strip())
        if n in NULL_TOKENS:
            plan.patterns.add("null-token")
            continue
        lengths.add(len(n))
        p = _parse_compact_date(n) if _COMPACT_DATE.match(n) and len(lengths) == 1 else None
        if p is None:
            return None
        plan.parsed[v] = p
        plan.patterns.add(p.pattern)
        plan.example = plan.example or v
    return plan if plan.parsed else None


def _scan(uniques: Iterable[str]) -> _Plan:
    """Parse the distinct values; the column is typed only when all parse the same way."""
    plan = _Plan()
    kinds: set[str] = set()
    units: set[str | None] = set()
    tokens = False
    for v in uniques:
        if _nfkc(v.strip()) in NULL_TOKENS:
            tokens = True
            continue
        p = parse_value(v)
        if p is not None and p.kind == "code":
            return _Plan(reason="leading zeros: a code, not a number", example=v)
        if p is None or not _compatible(kinds, units, p):
            return _mixed_plan(plan, kinds, v)
        kinds.add(p.kind)
        units.add(p.unit)
        plan.parsed[v] = p
        plan.patterns.add(p.pattern)
        plan.raw_needed |= p.changed
        plan.example = plan.example or v
    if not kinds:
        return _Plan()
    plan.kind = _merge_kinds(kinds)
    plan.unit = next(iter(units))
    if tokens:  # '-' and '無' become null; their text is kept
        plan.raw_needed = True
        plan.patterns.add("null-token")
    return plan


def _compatible(kinds: set[str], units: set[str | None], p: Parsed) -> bool:
    if not kinds:
        return True
    merged = kinds | {p.kind}
    if not (merged <= {"integer", "decimal"} or merged <= {"date", "datetime"} or len(merged) == 1):
        return False
    return p.unit in units


def _merge_kinds(kinds: set[str]) -> str:
    if kinds == {"integer", "decimal"}:
        return "decimal"
    if kinds == {"date", "datetime"}:
        return "datetime"
    return next(iter(kinds))


def _mixed_plan(plan: _Plan, kinds: set[str], failed: str) -> _Plan:
    if not kinds:
        return _Plan()
    return _Plan(
        reason=f"mixed values: some parse as {_merge_kinds(kinds)} ({plan.example!r}), "
        "others do not",
        example=failed,
    )


# --- output --------------------------------------------------------------------------------------


def _typed_values(plan: _Plan, texts: pd.Series) -> pd.Series | pd.api.extensions.ExtensionArray:
    mapping = {text: _widen(p.value, plan.kind) for text, p in plan.parsed.items()}
    mapped = texts.map(mapping)
    present = mapped.notna()
    if plan.kind == "integer":
        return pd.array(mapped.where(present, None).tolist(), dtype="Int64")
    if plan.kind == "decimal":
        return mapped.astype("float64")
    if plan.kind == "boolean":
        return pd.array(mapped.where(present, None).tolist(), dtype="boolean")
    if plan.kind == "datetime":
        return pd.to_datetime(mapped.where(present, None))
    return mapped.astype(object).where(present, None)


def _widen(value: object, kind: str) -> object:
    """A date in a datetime column becomes midnight of that day."""
    if kind == "datetime" and isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _decision_for(name: str, plan: _Plan, raw: str) -> Decision | None:
    if plan.kind == "string":
        if not plan.reason:
            return None
        return Decision(
            "column-type",
            "string",
            "values",
            1.0,
            f"{name}: kept as text — {plan.reason} (e.g. {plan.example!r})",
        )
    order = sorted(plan.patterns, key=lambda p: (p == "null-token", p))
    how = ", ".join(_PATTERN_TEXT.get(p, p) for p in order)
    detail = f"{name}: {plan.kind} from {how}"
    if plan.unit:
        detail += f"; unit {plan.unit}"
    detail += f" (e.g. {plan.example!r} → {_render(plan.parsed[plan.example].value)})"
    if plan.raw_needed:
        detail += f"; the original text is kept in {raw}"
    roc = any(p.startswith("roc") for p in plan.patterns)
    return Decision("column-type", plan.kind, "values", 0.98 if roc else 1.0, detail)


def _render(v: object) -> str:
    if isinstance(v, date | datetime):
        return v.isoformat()
    return repr(v)


def _raw_name(name: object, existing: Iterable[object]) -> str:
    taken = {str(c) for c in existing}
    raw = f"{name}_raw"
    k = 2
    while raw in taken:
        raw = f"{name}_raw{k}"
        k += 1
    return raw


def field_type(series: pd.Series) -> str:
    """The FieldInfo type of a column, from its dtype or the Python values it holds."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "decimal"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    present = series.dropna().tolist()
    if not present:
        return "string"
    for kind, types in _OBJECT_TYPES:
        if all(isinstance(v, types) and not isinstance(v, _NOT[kind]) for v in present):
            return kind
    return "string"


# Python values in an object column → field type (checked in this order).
_OBJECT_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("boolean", (bool, np.bool_)),
    ("integer", (int, np.integer)),
    ("decimal", (int, float, np.integer, np.floating)),
    ("datetime", datetime),
    ("date", date),
    ("string", str),
)
_NOT: dict[str, type | tuple[type, ...]] = {
    "boolean": (),
    "integer": (bool, np.bool_),
    "decimal": (bool, np.bool_),
    "datetime": (),
    "date": datetime,
    "string": (),
}


def _as_text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _unit_key(unit: str) -> str:
    return unit.lower() if unit.isascii() else unit
