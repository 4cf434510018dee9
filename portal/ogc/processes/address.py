"""Process ``address-lookup``: a Taiwanese address → point, from the door-plate (門牌) layer.

**Normalisation** (both the query and the layer's structured fields, the same way):
Unicode NFKC (full-width digits and letters become half-width: ``１７`` → ``17``), white space
removed, ``台`` → ``臺``, ``-`` and ``之`` in door numbers written ``之`` (``8-1號`` → ``8之1號``),
and Chinese numerals before ``段``, ``巷``, ``弄``, ``號`` and ``鄰`` written in Arabic digits
(``三段`` → ``3段``, ``十五巷`` → ``15巷``).

**Parsing.** After normalisation the address is read left to right against the vocabulary of
the layer: the county (``臺中市``, or ``臺中`` without 市), the district (``西屯區`` or
``西屯``), the village (``永安里`` or ``永安``), an optional ``N鄰`` (ignored: door plates are
unique without it), then the street (a ``街路段`` value of the layer, e.g. ``西屯路3段``),
``N巷``, ``N弄`` and the number ``N號`` (``號`` may be left out). County, district and village
are optional and may be written without 市/區/里; the street and the number are required.

**Matching and score** (0–1): door plates with the same street, lane, alley and number score
1.0, minus 0.2 when the given district differs and 0.1 when the given village differs (those
that agree are listed first). Without an exact door plate, the nearest number on the same
street, lane and alley scores 0.7, on the same street and lane 0.5, on the same street 0.3,
each minus 0.002 per number of difference and 0.2 / 0.1 for a differing district / village
(kept ≥ 0.05), nearest first, so a caller can tell an interpolated answer from an exact one
(``match`` says which).

The index (normalised keys → rows) is built once per layer version file and cached.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pygeoapi.process.base import BaseProcessor

from portal.ogc.processes.common import (
    METRIC,
    STORE,
    ProcessInputError,
    StoredFeatures,
    VersionCache,
    bilingual,
    check_inputs,
    json_value,
    number_input,
    read_features,
    transform_geometry,
)

_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "兩": 2, "三": 3, "四": 4, "五": 5}
_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"([〇零一二兩三四五六七八九十百千]+)(?=[段巷弄號鄰之])")
_HYPHEN_NUMBER = re.compile(r"(\d+)[-－~](\d+)(?=號|$)")
_TAIL = re.compile(r"^(?:(?P<lane>\d+)巷)?(?:(?P<alley>\d+)弄)?(?P<number>\d+(?:之\d+)?)號?$")
_NEIGHBOURHOOD = re.compile(r"^\d+鄰")
_LOOSE = re.compile(
    r"^(?P<street>.+?(?:路|街|大道|道)(?:\d+段)?)(?:(?P<lane>\d+)巷)?(?:(?P<alley>\d+)弄)?"
    r"(?P<number>\d+(?:之\d+)?)號?$"
)

#: Fields of the door-plate layer: role → field name.
FIELDS = {
    "county": "縣市",
    "town": "鄉鎮市區",
    "village": "村里",
    "street": "街路段",
    "lane": "巷",
    "alley": "弄",
    "number": "號",
    "full": "完整地址",
}


def chinese_number(text: str) -> int:
    """The value of a Chinese numeral (一 … 九千九百九十九; digit strings like 一二 too)."""
    if not any(c in _UNITS for c in text):
        value = 0
        for c in text:
            value = value * 10 + _DIGITS[c]
        return value
    total, digit = 0, 0
    for c in text:
        if c in _UNITS:
            total += (digit or 1) * _UNITS[c]
            digit = 0
        else:
            digit = _DIGITS[c]
    return total + digit


def normalise(text: str) -> str:
    """The normalised form of an address or address part (see the module docstring)."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(text.split()).replace("台", "臺")
    text = _CN_NUMBER.sub(lambda m: str(chinese_number(m.group(1))), text)
    return _HYPHEN_NUMBER.sub(r"\1之\2", text)


def _number_value(number: str) -> int:
    head = number.split("之")[0]
    return int(head) if head.isdigit() else 0


@dataclass(frozen=True)
class ParsedAddress:
    """An address read into its parts (normalised; empty string when not given)."""

    street: str
    lane: str
    alley: str
    number: str
    county: str = ""
    town: str = ""
    village: str = ""

    def as_dict(self) -> dict[str, str]:
        """The parts as JSON."""
        return {k: v for k, v in self.__dict__.items() if v}


def _prefixes(text: str, names: set[str], suffixes: str) -> list[tuple[str, str]]:
    """(name, rest) for each vocabulary name ``text`` starts with (also without its suffix)."""
    found = []
    for name in names:
        forms = [name]
        if len(name) > 2 and name[-1] in suffixes:
            forms.append(name[:-1])
        for form in forms:
            if text.startswith(form):
                found.append((len(form), name, text[len(form) :]))
    found.sort(key=lambda t: -t[0])
    return [(name, rest) for _, name, rest in found] + [("", text)]


@dataclass
class AddressIndex:
    """The door plates of one layer version, indexed by normalised address parts."""

    features: StoredFeatures
    metric: np.ndarray
    tree: shapely.STRtree
    parts: dict[str, np.ndarray]
    exact: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    along: dict[tuple[str, ...], list[tuple[int, int]]] = field(default_factory=dict)
    counties: set[str] = field(default_factory=set)
    towns: set[str] = field(default_factory=set)
    villages: set[str] = field(default_factory=set)
    streets: set[str] = field(default_factory=set)

    def parse(self, address: str) -> ParsedAddress:
        """Read ``address`` into parts with the layer's vocabulary (module docstring).

        Raises:
            ProcessInputError: no street and door number can be read.
        """
        text = normalise(address)
        for county, rest1 in _prefixes(text, self.counties, "市縣"):
            for town, rest2 in _prefixes(rest1, self.towns, "區鄉鎮市"):
                for village, rest3 in _prefixes(rest2, self.villages, "里村"):
                    parsed = self._street_part(_NEIGHBOURHOOD.sub("", rest3))
                    if parsed is not None:
                        return ParsedAddress(*parsed, county=county, town=town, village=village)
        loose = _LOOSE.match(_NEIGHBOURHOOD.sub("", text))
        if loose is None:
            raise ProcessInputError(
                f"cannot read a street and a door number (…路/街 … 號) from {address!r}"
            )
        return ParsedAddress(*(loose.group(k) or "" for k in ("street", "lane", "alley", "number")))

    def _street_part(self, text: str) -> tuple[str, str, str, str] | None:
        for end in range(len(text), 0, -1):
            street = text[:end]
            if street not in self.streets:
                continue
            tail = _TAIL.match(text[end:])
            if tail:
                return street, tail["lane"] or "", tail["alley"] or "", tail["number"]
        return None

    def candidates(self, parsed: ParsedAddress) -> list[tuple[int, float, str]]:
        """(row, score, match kind) of the door plates answering ``parsed``, best first."""
        key = (parsed.street, parsed.lane, parsed.alley, parsed.number)
        rows = self.exact.get(key, [])
        if rows:
            return sorted(((r, self._area_score(r, parsed), "exact") for r in rows), key=_rank)
        wanted = _number_value(parsed.number)
        levels = (
            ((parsed.street, parsed.lane, parsed.alley), 0.7, "nearest-number"),
            ((parsed.street, parsed.lane), 0.5, "same-lane"),
            ((parsed.street,), 0.3, "same-street"),
        )
        for along_key, base, kind in levels:
            plates = self.along.get(along_key)
            if not plates:
                continue
            ranked = sorted(
                (
                    base - 0.002 * abs(value - wanted) - (1.0 - self._area_score(row, parsed)),
                    abs(value - wanted),
                    row,
                )
                for value, row in plates
            )
            ranked.sort(key=lambda t: (-t[0], t[1], t[2]))
            return [(row, max(0.05, round(score, 3)), kind) for score, _, row in ranked]
        return []

    def _area_score(self, row: int, parsed: ParsedAddress) -> float:
        score = 1.0
        if parsed.town and self.parts["town"][row] != parsed.town:
            score -= 0.2
        if parsed.village and self.parts["village"][row] != parsed.village:
            score -= 0.1
        return round(score, 3)

    def describe(self, row: int) -> dict:
        """A door plate as JSON: address, point (lon/lat), TM2 x/y and the layer's fields."""
        geom = self.features.geometries[row]
        metric = self.metric[row]
        props = self.features.properties(row)
        full = props.get(FIELDS["full"]) or "".join(
            str(self.parts[k][row]) + s
            for k, s in (
                ("county", ""),
                ("town", ""),
                ("village", ""),
                ("street", ""),
                ("lane", "巷"),
                ("alley", "弄"),
                ("number", "號"),
            )
            if self.parts[k][row]
        )
        return {
            "address": full,
            "point": [geom.x, geom.y],
            "twd97": [round(metric.x, 3), round(metric.y, 3)],
            "id": int(self.features.fids[row]),
            "properties": props,
        }


def _rank(item: tuple[int, float, str]) -> tuple[float, int]:
    return (-item[1], item[0])


def _parts(features: StoredFeatures) -> dict[str, np.ndarray]:
    n = len(features)
    parts = {}
    for role, name in FIELDS.items():
        if role == "full":
            continue
        if name in features.fields:
            values = [json_value(v) for v in features.column(name)]
            parts[role] = np.array(["" if v is None else normalise(str(v)) for v in values])
        else:
            parts[role] = np.full(n, "", dtype=object)
    return parts


def build_index(path: Path) -> AddressIndex:
    """The address index of a door-plate store (all door plates with a point)."""
    features = read_features(path)
    keep = np.array([g is not None and not g.is_empty for g in features.geometries], dtype=bool)
    features = features.subset(np.flatnonzero(keep))
    metric = transform_geometry(features.geometries, STORE, METRIC)
    parts = _parts(features)
    index = AddressIndex(features, metric, shapely.STRtree(metric), parts)
    along: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
    exact: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    street, lane, alley, number = (parts[k] for k in ("street", "lane", "alley", "number"))
    for row in range(len(features)):
        s, la, al, no = str(street[row]), str(lane[row]), str(alley[row]), str(number[row])
        exact[(s, la, al, no)].append(row)
        value = _number_value(no)
        for key in ((s, la, al), (s, la), (s,)):
            along[key].append((value, row))
    index.exact, index.along = dict(exact), dict(along)
    index.counties = {str(v) for v in parts["county"] if v}
    index.towns = {str(v) for v in parts["town"] if v}
    index.villages = {str(v) for v in parts["village"] if v}
    index.streets = {str(v) for v in street if v}
    return index


_CACHE = VersionCache(build_index, size=2)


def address_index(path: Path) -> AddressIndex:
    """The cached index of a door-plate layer version."""
    return _CACHE.get(Path(path))


PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "address-lookup",
    "title": bilingual("門牌地址定位", "Address lookup (geocoding)"),
    "description": bilingual(
        "輸入臺灣門牌地址（全形或半形數字、臺或台、段/巷/弄/號，可省略市、區、里），"
        "依目錄中的門牌圖層回傳坐標與比對分數 (0–1)。",
        "A Taiwanese address (full- or half-width digits, 臺 or 台, 段/巷/弄/號, with or "
        "without 市/區/里) → its point from the door-plate (門牌) layer, with a match score "
        "(0–1).",
    ),
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["門牌", "地址", "地理編碼", "geocoding", "address"],
    "links": [],
    "inputs": {
        "address": {
            "title": bilingual("地址", "Address"),
            "description": bilingual(
                "例如 臺中市北區永富里西屯路二段３號", "e.g. 台中市西屯路2段3號"
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "limit": {
            "title": bilingual("候選筆數", "Candidates"),
            "description": bilingual("預設 5，最大 50", "Default 5, at most 50"),
            "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "result": {
            "title": bilingual("候選地址", "Candidates"),
            "description": bilingual(
                "parsed（解析結果）與 candidates（address、point 經緯度、twd97、score、match）",
                "parsed (the address read) and candidates (address, point lon/lat, twd97, score, "
                "match)",
            ),
            "schema": {
                "type": "object",
                "contentMediaType": "application/json",
                "properties": {
                    "parsed": {"type": "object"},
                    "candidates": {"type": "array"},
                    "layer": {"type": "string"},
                },
            },
        }
    },
    "example": {"inputs": {"address": "臺中市北區永富里１７鄰西屯路二段３號"}},
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


class AddressLookupProcessor(BaseProcessor):
    """Address lookup (pygeoapi processor); ``address`` (the door-plate layer) from the registry."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.layer: dict = processor_def["address"]

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        """Geocode the address (see the module docstring).

        Raises:
            ProcessInputError: no address, or no street and door number in it.
        """
        data = check_inputs(data, _INPUTS)
        address = data.get("address")
        if not isinstance(address, str) or not address.strip() or len(address) > 200:
            raise ProcessInputError("input 'address' is required: a text of 1–200 characters")
        limit = number_input(data, "limit", 5, 1, 50, integer=True)
        index = address_index(Path(self.layer["path"]))
        parsed = index.parse(address)
        found = index.candidates(parsed)[: int(limit)]
        candidates = [
            {**index.describe(row), "score": score, "match": kind} for row, score, kind in found
        ]
        return "application/json", {
            "layer": self.layer["layer"],
            "parsed": parsed.as_dict(),
            "candidates": candidates,
        }

    def __repr__(self) -> str:
        return f"<AddressLookupProcessor> {self.name}"
