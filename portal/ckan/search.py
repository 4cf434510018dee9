"""The ``package_search`` engine: an in-memory, CJK-aware index of the portal's datasets.

CKAN hands ``package_search`` to Solr; this module answers the same parameters without one, for
the few thousand datasets a city publishes. A :class:`SearchIndex` is built once per catalog
change (well under a second for 3,300 datasets) and answers a query with facets in a few
milliseconds.

What it follows from CKAN (``ckan/lib/search/query.py``, CKAN 2.10/2.11, and its Solr schema):

- ``q`` without a colon is a *dismax* query over ``name^4 title^4 tags^2 groups^2 text`` with
  minimum-should-match ``2<-1 5<80%`` (one or two terms: all must match; three to five: all
  but one; more: 80 %, rounded down); ``+term`` and ``-term`` force or forbid a term.
- ``q`` with a colon, and ``fq``, are Lucene queries with ``q.op=AND`` (adjacent clauses are
  all required) and the default field ``text``; ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``,
  ``+``/``-``, parentheses, ``field:value``, ``field:"phrase"``, ``field:(a OR b)``, ranges
  ``field:[a TO b]`` / ``{a TO b}`` with ``*`` and date math (``NOW-1DAY``, ``NOW/DAY``),
  ``field:*``, trailing wildcards ``term*`` and ``*:*``. ``AND`` binds tighter than ``OR``.
  A ``q`` without a colon that uses ``AND``/``OR`` explicitly is read the same way.
- Fields keep CKAN's names and types: ``string`` fields (``name``, ``tags``, ``groups``,
  ``organization``, ``res_format``, ``license_id``, ...) match whole values; ``text`` fields
  (``title``, ``notes``, ``res_name``, ``res_description``, ``author``, ``maintainer``,
  ``extras_*`` and the catch-all ``text``) match words; any other field name is an (empty
  unless an extra of that name exists) ``string`` field, as CKAN's ``<dynamicField name="*">``.
- Results are the active datasets only (and deleted ones when asked), private ones only for
  their organization's members or a sysadmin.

Where it differs on purpose: words are CJK-aware (``catalog.search``: Chinese as character
bigrams, ``台`` = ``臺``, full-width = half-width, Latin words prefix-matched, so ``停車場`` finds
``停車場資訊``), ``string`` fields compare after the same normalisation (so ``res_format:csv``
finds ``CSV``), and ranking is BM25 with CKAN's field boosts.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from types import MappingProxyType
from typing import Any

import numpy as np

from catalog.search import index_tokens as _index_tokens
from catalog.search import normalize, query_tokens, runs
from portal.ckan.errors import SearchQueryError
from portal.ckan.model import Dataset, Group, Organization

#: Fields a free-text (dismax) query searches, with CKAN's boosts (``QUERY_FIELDS``).
QUERY_FIELDS: Mapping[str, float] = {
    "name": 4.0,
    "title": 4.0,
    "tags": 2.0,
    "groups": 2.0,
    "text": 1.0,
}

#: The text fields behind the free-text boosts besides ``text`` (``tags``/``groups`` as words,
#: so that part of a Chinese tag counts).
_DISMAX_TEXT = (
    ("title", QUERY_FIELDS["title"]),
    ("_tags", QUERY_FIELDS["tags"]),
    ("_groups", QUERY_FIELDS["groups"]),
)

#: Dismax tie breaker: the best field's score plus this share of the other fields' scores.
TIE = 0.1

#: BM25 parameters (Lucene's defaults).
BM25_K1 = 1.2
BM25_B = 0.75

#: Whole-value (Solr ``string``) fields, searchable and facetable.
KEYWORD_FIELDS = frozenset(
    {
        "id",
        "name",
        "title_string",
        "state",
        "private",
        "capacity",
        "organization",
        "owner_org",
        "groups",
        "tags",
        "res_format",
        "res_url",
        "license_id",
        "category",
        "update_frequency",
        "layer_id",
        "source",
        "url",
        "version",
        "type",
        "dataset_type",
    }
)

#: Word (Solr ``text``) fields; ``extras_<key>`` fields are text too.
TEXT_FIELDS = frozenset(
    {
        "text",
        "title",
        "notes",
        "res_name",
        "res_description",
        "author",
        "author_email",
        "maintainer",
        "maintainer_email",
        "fields_description",
    }
)

#: Date fields (ranges with date math).
DATE_FIELDS = frozenset({"metadata_modified", "metadata_created"})

#: Integer fields.
INT_FIELDS = frozenset({"num_resources", "num_tags"})

#: Fields ``sort`` accepts (``score`` is the relevance).
SORT_FIELDS = (
    "score",
    "metadata_modified",
    "metadata_created",
    "title_string",
    "name",
    "id",
    "num_resources",
    "num_tags",
)

#: The default order (CKAN's).
DEFAULT_SORT = "score desc, metadata_modified desc"

_TEXT_ALIASES = {"_text_": "text"}
_NONE: Mapping[str, Any] = MappingProxyType({})
_UNIT_SEP = "\x1f"
_VALUE_SEP = "\x1e"


@dataclass(frozen=True)
class SearchParams:
    """One ``package_search`` request, parsed.

    Attributes:
        q: the query (CKAN/Solr syntax); "" finds everything.
        fq: a filter query (Lucene syntax); it filters without changing the ranking.
        sort: comma-separated ``field asc|desc`` keys (one of :data:`SORT_FIELDS`).
        rows: how many datasets to return.
        start: how many to skip first.
        facet_fields: fields to count values of (``organization``, ``groups``, ``tags``,
            ``res_format``, ``license_id``, ``category``, ``update_frequency``, an extra's key
            such as ``quality_label``, or ``extras_<key>``).
        facet_limit: at most this many values per facet field (-1: all of them).
        facet_mincount: leave out values counted fewer times.
        include_private: include private datasets the viewer may see.
        viewer_orgs: names (or ids) of the organizations whose private datasets the viewer may
            see; None for a sysadmin, who sees every private dataset.
        include_deleted: include deleted datasets.
    """

    q: str = ""
    fq: str = ""
    sort: str = DEFAULT_SORT
    rows: int = 10
    start: int = 0
    facet_fields: tuple[str, ...] = ()
    facet_limit: int = 50
    facet_mincount: int = 1
    include_private: bool = False
    viewer_orgs: frozenset[str] | None = frozenset()
    include_deleted: bool = False


@dataclass(frozen=True)
class SearchResult:
    """What a search found.

    Attributes:
        count: how many datasets match in all.
        datasets: the requested page of them, in order.
        facets: facet field → value → count, most frequent first (ties by value).
    """

    count: int
    datasets: list[Dataset]
    facets: dict[str, dict[str, int]]


# -- the query tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class _All:
    """``*:*``: every visible dataset."""


@dataclass(frozen=True)
class _Term:
    """A word (or a whole value for string fields) in a field; None = the dismax fields."""

    field: str | None
    text: str
    tokens: tuple[str, ...]
    wildcard: bool = False
    boost: float = 1.0


@dataclass(frozen=True)
class _Phrase:
    """Words that must stand next to each other (slop > 0: anywhere in the field)."""

    field: str | None
    text: str
    tokens: tuple[str, ...]
    slop: int = 0
    boost: float = 1.0


@dataclass(frozen=True)
class _Range:
    """``field:[low TO high]``; None bounds are open (``*``)."""

    field: str
    low: str | None
    high: str | None
    include_low: bool
    include_high: bool


@dataclass(frozen=True)
class _Exists:
    """``field:*``: the field has a value."""

    field: str


@dataclass(frozen=True)
class _Bool:
    """Clauses: all ``must``, at least ``min_should`` of ``should``, none of ``must_not``."""

    must: tuple[_Node, ...] = ()
    should: tuple[_Node, ...] = ()
    must_not: tuple[_Node, ...] = ()
    min_should: int = 0
    boost: float = 1.0


_Node = _All | _Term | _Phrase | _Range | _Exists | _Bool


def field_kind(name: str) -> str:
    """The type of a search field, as CKAN's Solr schema has it.

    Args:
        name: a field name from a query (``title``, ``tags``, ``extras_x``, ``anything``).

    Returns:
        "text", "keyword", "date" or "int"; unknown names are "keyword" (Solr's ``*``).
    """
    name = _TEXT_ALIASES.get(name, name)
    if name in TEXT_FIELDS or name.startswith("extras_"):
        return "text"
    if name in DATE_FIELDS:
        return "date"
    if name in INT_FIELDS:
        return "int"
    return "keyword"


def min_should_match(clauses: int) -> int:
    """CKAN's ``mm=2<-1 5<80%``: how many of ``clauses`` optional terms must match.

    Args:
        clauses: the number of optional (neither ``+`` nor ``-``) terms of a dismax query.

    Returns:
        All of one or two, all but one of three to five, 80 % (rounded down) of more.
    """
    if clauses <= 2:
        return clauses
    if clauses <= 5:
        return clauses - 1
    return clauses * 80 // 100


# -- the query parser ------------------------------------------------------------------------

_TERM_STOP = frozenset('()"[]{}^:~')
_RANGE_SPLIT = re.compile(r"\s+TO\s+")


@dataclass(frozen=True)
class _Tok:
    """A lexical token of a query."""

    kind: str  # ( ) AND OR NOT + - TERM PHRASE RANGE FIELD BOOST
    text: str = ""
    wildcard: bool = False
    extra: tuple = ()


def _lex(query: str) -> list[_Tok]:
    """Split a Lucene query into tokens.

    Raises:
        SearchQueryError: an unterminated phrase or range, or a bad boost.
    """
    tokens: list[_Tok] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Tok(char))
            i += 1
        elif char == '"':
            i = _lex_phrase(query, i, tokens)
        elif char in "[{":
            i = _lex_range(query, i, tokens)
        elif char == "^":
            i = _lex_boost(query, i, tokens)
        elif query.startswith(("&&", "||"), i):
            tokens.append(_Tok("AND" if char == "&" else "OR"))
            i += 2
        elif char in "+-!":
            i += 1
            if i < len(query) and not query[i].isspace():
                tokens.append(_Tok("NOT" if char == "!" else char))
        elif char in "]}":
            raise SearchQueryError(f"unexpected {char!r} at position {i} of {query!r}")
        else:
            i = _lex_term(query, i, tokens)
    return tokens


def _lex_phrase(query: str, i: int, tokens: list[_Tok]) -> int:
    """Read ``"..."`` (and a ``~slop``) starting at ``i``; return the position after it."""
    out: list[str] = []
    j = i + 1
    while j < len(query) and query[j] != '"':
        if query[j] == "\\" and j + 1 < len(query):
            j += 1
        out.append(query[j])
        j += 1
    if j >= len(query):
        raise SearchQueryError(f"unterminated phrase (missing '\"') in {query!r}")
    j += 1
    slop = 0
    if j < len(query) and query[j] == "~":
        match = re.match(r"~(\d*)", query[j:])
        slop = int(match.group(1) or 2) if match else 0
        j += len(match.group(0)) if match else 1
    tokens.append(_Tok("PHRASE", "".join(out), extra=(slop,)))
    return j


def _lex_range(query: str, i: int, tokens: list[_Tok]) -> int:
    """Read ``[a TO b]`` / ``{a TO b}`` starting at ``i``; return the position after it."""
    match = re.compile(r"[\]}]").search(query, i + 1)
    if match is None:
        raise SearchQueryError(f"unterminated range (missing ']' or '}}') in {query!r}")
    body = query[i + 1 : match.start()].strip()
    parts = _RANGE_SPLIT.split(body)
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise SearchQueryError(f"a range must read [low TO high], got {query[i : match.end()]!r}")
    low, high = (_unquote(p.strip()) for p in parts)
    bounds = (query[i] == "[", match.group(0) == "]")
    tokens.append(_Tok("RANGE", body, extra=(low, high, *bounds)))
    return match.end()


def _unquote(value: str) -> str | None:
    """A range bound: ``*`` → None, ``"x"`` → x."""
    if value == "*":
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _lex_boost(query: str, i: int, tokens: list[_Tok]) -> int:
    """Read ``^2.5`` starting at ``i``; return the position after it."""
    match = re.compile(r"\^(\d+(?:\.\d+)?)").match(query, i)
    if match is None:
        raise SearchQueryError(f"a boost needs a number after '^' at position {i} of {query!r}")
    tokens.append(_Tok("BOOST", match.group(1)))
    return match.end()


def _lex_term(query: str, i: int, tokens: list[_Tok]) -> int:
    """Read a bare word (or ``field:``) starting at ``i``; return the position after it."""
    out: list[str] = []
    wildcard = escaped_any = False
    j = i
    while j < len(query):
        char = query[j]
        if char.isspace() or char in _TERM_STOP:
            break
        if char == "\\" and j + 1 < len(query):
            out.append(query[j + 1])
            escaped_any = True
            j += 2
            continue
        wildcard = wildcard or char in "*?"
        out.append(char)
        j += 1
    text = "".join(out)
    if j < len(query) and query[j] == ":":
        tokens.append(_Tok("FIELD", text))
        return j + 1
    if j < len(query) and query[j] == "~":  # fuzzy / proximity marker: ignored
        j += len(re.compile(r"~[\d.]*").match(query, j).group(0))
    if text in ("AND", "OR", "NOT") and not escaped_any:
        tokens.append(_Tok(text))
    else:
        tokens.append(_Tok("TERM", text, wildcard=wildcard))
    return j


class _Parser:
    """Recursive-descent parser of the token list into a :data:`_Node` tree."""

    def __init__(self, query: str, dismax: bool) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.pos = 0
        self.dismax = dismax

    def parse(self) -> _Node | None:
        """The query's tree, or None when nothing in it can match anything (no words)."""
        node = self._sequence(None, top=True)
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.pos].kind!r}")
        return node

    def _error(self, what: str) -> SearchQueryError:
        return SearchQueryError(f"{what} in {self.query!r}")

    def _peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise self._error("unexpected end of query")
        self.pos += 1
        return tok

    def _sequence(self, field: str | None, top: bool = False) -> _Node | None:
        """Clauses up to ``)`` or the end, joined by AND/OR/implicit operators."""
        items: list[tuple[str | None, str | None, _Node | None]] = []
        explicit = False
        while (tok := self._peek()) is not None and tok.kind != ")":
            conj = None
            if tok.kind in ("AND", "OR"):
                if not items:
                    raise self._error(f"{tok.kind} without a clause before it")
                conj = self._take().kind
                explicit = True
            occur, node = self._clause(field)
            explicit = explicit or occur == "NOT"
            items.append((conj, occur, node))
        if not items and not top:
            raise self._error("empty parentheses")
        return _combine(items, mm=top and self.dismax and not explicit)

    def _clause(self, field: str | None) -> tuple[str | None, _Node | None]:
        """One clause with its ``+``/``-``/``NOT`` marker."""
        occur = None
        tok = self._peek()
        if tok is not None and tok.kind in ("+", "-", "NOT"):
            occur = self._take().kind
        tok = self._take()
        if tok.kind == "(":
            node = self._group(field)
        elif tok.kind == "FIELD":
            node = self._field_value(tok.text)
        elif tok.kind in ("TERM", "PHRASE"):
            node = self._leaf(field, tok)
        elif tok.kind == "RANGE" and field is not None:
            node = _Range(field, *tok.extra)
        else:
            raise self._error(f"unexpected {tok.kind!r}")
        return occur, node

    def _group(self, field: str | None) -> _Node | None:
        node = self._sequence(field)
        if self._peek() is None or self._take().kind != ")":
            raise self._error("missing ')'")
        boost = self._boost()
        if boost != 1.0 and node is not None:
            node = _Bool(must=(node,), boost=boost)
        return node

    def _field_value(self, name: str) -> _Node | None:
        if name == "*":
            tok = self._take()
            if tok.kind != "TERM" or tok.text != "*":
                raise self._error("'*:' must be followed by '*'")
            return _All()
        if not name:
            raise self._error("a field name is missing before ':'")
        name = _TEXT_ALIASES.get(name, name)
        tok = self._take()
        if tok.kind == "(":
            return self._group(name)
        if tok.kind == "RANGE":
            return _Range(name, *tok.extra)
        if tok.kind in ("TERM", "PHRASE"):
            return self._leaf(name, tok)
        raise self._error(f"field {name!r} has no value")

    def _boost(self) -> float:
        tok = self._peek()
        if tok is not None and tok.kind == "BOOST":
            self.pos += 1
            return float(tok.text)
        return 1.0

    def _leaf(self, field: str | None, tok: _Tok) -> _Node | None:
        """A word or phrase in a field; None when it has nothing to search for."""
        boost = self._boost()
        text = tok.text
        if tok.kind == "TERM" and text.replace("*", "") == "" and "*" in text:
            return _All() if field is None else _Exists(field)
        kind = "text" if field is None else field_kind(field)
        if kind == "text":
            if tok.kind == "TERM" and tok.wildcard and not _trailing_wildcard(text):
                raise self._error(
                    f"wildcards in words may only end them ({text!r}); use string fields"
                )
            tokens = tuple(query_tokens(text.rstrip("*")))
            if not tokens:
                return None
        else:
            tokens = ()
            if not text.strip():
                return None
        if tok.kind == "PHRASE":
            return _Phrase(field, text, tokens, tok.extra[0], boost)
        return _Term(field, text, tokens, tok.wildcard, boost)


def _trailing_wildcard(text: str) -> bool:
    """Whether the only wildcards of a word are ``*`` at its end."""
    stem = text.rstrip("*")
    return "*" not in stem and "?" not in stem


def _combine(
    items: Sequence[tuple[str | None, str | None, _Node | None]], mm: bool
) -> _Node | None:
    """Join clauses: dismax minimum-should-match, or AND before OR with AND as default."""
    kept = [(conj, occur, node) for conj, occur, node in items if node is not None]
    if not kept:
        return None
    if mm:
        should = tuple(n for _, occur, n in kept if occur is None)
        return _simplify(
            _Bool(
                must=tuple(n for _, occur, n in kept if occur == "+"),
                should=should,
                must_not=tuple(n for _, occur, n in kept if occur in ("-", "NOT")),
                min_should=min_should_match(len(should)),
            )
        )
    chains: list[list[tuple[str | None, _Node]]] = [[]]
    for conj, occur, node in kept:
        if conj == "OR" and chains[-1]:
            chains.append([])
        chains[-1].append((occur, node))
    joined = [_chain(chain) for chain in chains]
    if len(joined) == 1:
        return joined[0]
    return _Bool(should=tuple(joined), min_should=1)


def _chain(chain: Sequence[tuple[str | None, _Node]]) -> _Node:
    """Clauses that must all hold (the negated ones must not)."""
    return _simplify(
        _Bool(
            must=tuple(n for occur, n in chain if occur not in ("-", "NOT")),
            must_not=tuple(n for occur, n in chain if occur in ("-", "NOT")),
        )
    )


def _simplify(node: _Bool) -> _Node:
    """A boolean of one required clause is that clause."""
    if len(node.must) == 1 and not node.should and not node.must_not and node.boost == 1.0:
        return node.must[0]
    if len(node.should) == 1 and not node.must and not node.must_not and node.min_should == 1:
        return node.should[0]
    return node


def parse_query(query: str, dismax: bool = False) -> _Node | None:
    """Parse a CKAN/Solr query.

    Args:
        query: the ``q`` or ``fq`` text.
        dismax: read bare terms with minimum-should-match (CKAN's ``q`` without a colon).

    Returns:
        The query tree; None when the query has no searchable words at all.

    Raises:
        SearchQueryError: the query is not valid syntax.
    """
    return _Parser(query, dismax).parse()


# -- dates ------------------------------------------------------------------------------------

_DATE_MATH = re.compile(
    r"(?P<base>NOW|\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)"
    r"(?P<ops>(?:[+-]\d+[A-Z]+|/[A-Z]+)*)"
)
_DATE_OP = re.compile(r"([+-])(\d+)([A-Z]+)|/([A-Z]+)")
_UNITS = {
    "YEAR": "year",
    "MONTH": "month",
    "DAY": "day",
    "DATE": "day",
    "HOUR": "hour",
    "MINUTE": "minute",
    "SECOND": "second",
    "MILLI": "millisecond",
    "MILLISECOND": "millisecond",
}


def parse_date(text: str, now: datetime | None = None) -> datetime:
    """A Solr date or date-math expression as a UTC datetime.

    Args:
        text: ``2024-01-01T00:00:00Z``, ``2024-01-01``, ``NOW``, ``NOW-1DAY``, ``NOW/DAY``,
            ``2024-01-01T00:00:00Z+6MONTHS`` ...
        now: what ``NOW`` is (default: the current time).

    Returns:
        The instant, timezone-aware.

    Raises:
        SearchQueryError: not a date.
    """
    match = _DATE_MATH.fullmatch(text.strip())
    if match is None:
        raise SearchQueryError(f"{text!r} is not a date (use 2024-01-31T00:00:00Z or NOW-1DAY)")
    base = match.group("base")
    if base == "NOW":
        value = now or datetime.now(UTC)
    else:
        value = _aware(datetime.fromisoformat(base.replace("Z", "+00:00")))
    for sign, amount, unit, round_to in _DATE_OP.findall(match.group("ops")):
        if round_to:
            value = _round_date(value, _unit(round_to, text))
        else:
            step = int(amount) if sign == "+" else -int(amount)
            value = _add_date(value, _unit(unit, text), step)
    return value


def _aware(value: datetime) -> datetime:
    """Naive datetimes are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _unit(name: str, text: str) -> str:
    unit = _UNITS.get(name.removesuffix("S")) or _UNITS.get(name)
    if unit is None:
        raise SearchQueryError(f"unknown date unit {name!r} in {text!r}")
    return unit


def _round_date(value: datetime, unit: str) -> datetime:
    fields = ["month", "day", "hour", "minute", "second", "microsecond"]
    start = {"year": 0, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5}
    if unit == "millisecond":
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    reset = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0}
    return value.replace(**{f: reset[f] for f in fields[start[unit] :]})


def _add_date(value: datetime, unit: str, step: int) -> datetime:
    if unit in ("year", "month"):
        months = value.month - 1 + step * (12 if unit == "year" else 1)
        year, month = value.year + months // 12, months % 12 + 1
        last = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return value.replace(year=year, month=month, day=min(value.day, last))
    return value + timedelta(**{f"{unit}s": step})


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# -- the index ------------------------------------------------------------------------------


@dataclass
class _Doc:
    """One dataset as the index holds it.

    Attributes:
        dataset: the record itself.
        texts: text field → its raw texts (for phrases).
        tokens: text field → token → match factor (``catalog.search.index_tokens``).
        org: its organization, when known.
        units: text field (``text``: all of them) → its texts as phrase units, values apart
            (filled when a phrase needs them).
    """

    dataset: Dataset
    texts: dict[str, tuple[str, ...]]
    tokens: dict[str, Mapping[str, float]]
    org: Organization | None
    units: dict[str, str] = field(default_factory=dict)


def _units(text: str) -> str:
    """A text as its phrase units (CJK characters, Latin words) joined by a separator."""
    parts: list[str] = []
    for is_cjk, run in runs(text):
        parts.extend(run if is_cjk else (run,))
    return _UNIT_SEP + _UNIT_SEP.join(parts) + _UNIT_SEP


class _Tokenizer:
    """``index_tokens`` with a cache: agencies, categories, formats and tags repeat a lot."""

    def __init__(self) -> None:
        self.cache: dict[str | tuple[str, ...], Mapping[str, float]] = {}

    def __call__(self, texts: tuple[str, ...]) -> Mapping[str, float]:
        key: str | tuple[str, ...] = texts[0] if len(texts) == 1 else texts
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = _index_tokens(texts)
        return found


def _text_fields(
    ds: Dataset, org: Organization | None, groups: Mapping[str, Group]
) -> dict[str, tuple[str, ...]]:
    """The raw texts of a dataset's word fields (internal ones start with ``_``)."""
    group_texts: tuple[str, ...] = ()
    if ds.groups:
        group_texts = tuple(
            chain.from_iterable(
                (name, groups[name].title, groups[name].title_en) if name in groups else (name,)
                for name in ds.groups
            )
        )
    resources = ds.resources
    fields = {
        "title": (ds.title, ds.title_en),
        "notes": (ds.notes,),
        "_tags": ds.tags,
        "_groups": group_texts,
        "res_name": tuple(r.name for r in resources),
        "res_description": tuple(r.description for r in resources),
        "author": (ds.author,),
        "author_email": (ds.author_email,),
        "maintainer": (ds.maintainer,),
        "maintainer_email": (ds.maintainer_email,),
        "fields_description": (ds.fields_description,),
        "_name": (ds.name,),
        "_organization": (ds.owner_org, org.title, org.title_en) if org else (ds.owner_org,),
        "_other": (
            ds.category,
            ds.update_frequency,
            ds.license_id,
            *(r.format for r in resources),
        ),
    }
    for key, value in ds.extras:
        fields[f"extras_{key}"] = (value,)
    kept = {}
    for name, texts in fields.items():
        texts = tuple(filter(None, texts))
        if texts:
            kept[name] = texts
    return kept


_KEYWORD_VALUES: Mapping[str, Callable[[Dataset, Organization | None], Sequence[str]]] = {
    "id": lambda ds, org: (ds.id,),
    "name": lambda ds, org: (ds.name,),
    "title_string": lambda ds, org: (ds.title,),
    "state": lambda ds, org: (ds.state,),
    "private": lambda ds, org: ("true" if ds.private else "false",),
    "capacity": lambda ds, org: ("private" if ds.private else "public",),
    "organization": lambda ds, org: (ds.owner_org,),
    "owner_org": lambda ds, org: (org.id, ds.owner_org) if org else (ds.owner_org,),
    "groups": lambda ds, org: ds.groups,
    "tags": lambda ds, org: ds.tags,
    "res_format": lambda ds, org: tuple(dict.fromkeys(r.format for r in ds.resources)),
    "res_url": lambda ds, org: tuple(r.url for r in ds.resources),
    "license_id": lambda ds, org: (ds.license_id,),
    "category": lambda ds, org: (ds.category,),
    "update_frequency": lambda ds, org: (ds.update_frequency,),
    "layer_id": lambda ds, org: (ds.layer_id or "",),
    "source": lambda ds, org: (ds.source,),
    "url": lambda ds, org: (ds.url,),
    "version": lambda ds, org: (ds.version,),
    "type": lambda ds, org: ("dataset",),
    "dataset_type": lambda ds, org: ("dataset",),
}


def _keyword_values(doc: _Doc, name: str) -> Sequence[str]:
    """A dataset's values of a string field: a built-in one, ``extras_<key>`` or an extra's key."""
    values = _KEYWORD_VALUES.get(name)
    if values is not None:
        found = values(doc.dataset, doc.org)
    else:
        key = name.removeprefix("extras_")
        found = tuple(value for k, value in doc.dataset.extras if k == key)
    return [v for v in found if v]


def _make_doc(
    ds: Dataset, org: Organization | None, groups: Mapping[str, Group], tokenize: _Tokenizer
) -> _Doc:
    """Index one dataset."""
    texts = _text_fields(ds, org, groups)
    tokens = {name: tokenize(values) for name, values in texts.items() if values}
    return _Doc(ds, texts, tokens, org)


def _merged(doc: _Doc) -> dict[str, float]:
    """The catch-all ``text`` field's tokens: every text field's."""
    merged: dict[str, float] = {}
    for toks in doc.tokens.values():
        merged.update(toks)
    return merged


@dataclass
class _Postings:
    """One text field's inverted index, as flat arrays grouped by token.

    Attributes:
        vocab: token → its number.
        starts: where each token's entries begin in ``docs``/``weights`` (one extra at the end).
        docs: datasets, grouped by token.
        weights: each entry's match factor (1, or ``PREFIX_FACTOR`` for a Latin word prefix).
        norm: each dataset's BM25 length factor for the field (0 where it is empty).
    """

    vocab: dict[str, int]
    starts: np.ndarray
    docs: np.ndarray
    weights: np.ndarray
    norm: np.ndarray

    def entries(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """(datasets, factors) of a token; empty arrays when no dataset has it."""
        number = self.vocab.get(token)
        if number is None:
            return _NO_IDS, _NO_WEIGHTS
        begin, end = self.starts[number], self.starts[number + 1]
        return self.docs[begin:end], self.weights[begin:end]


def _postings(token_maps: Sequence[Mapping[str, float] | None]) -> _Postings:
    """Invert per-dataset token maps of one field (the loops run in C: extend, map, sort)."""
    maps = [toks or {} for toks in token_maps]
    lengths = np.fromiter(map(len, maps), dtype=np.intp, count=len(maps))
    tokens: list[str] = []
    for toks in maps:
        tokens.extend(toks)
    vocab = {token: number for number, token in enumerate(dict.fromkeys(tokens))}
    ids = np.fromiter(map(vocab.__getitem__, tokens), dtype=np.intp, count=len(tokens))
    weights = np.fromiter(
        chain.from_iterable(map(dict.values, maps)), dtype=float, count=len(tokens)
    )
    docs = np.repeat(np.arange(len(maps), dtype=np.intp), lengths)
    order = np.argsort(ids, kind="stable")
    starts = np.zeros(len(vocab) + 1, dtype=np.intp)
    np.cumsum(np.bincount(ids, minlength=len(vocab)), out=starts[1:])
    present = lengths > 0
    average = float(lengths[present].mean()) if present.any() else 1.0
    ratio = lengths / average
    norm = (BM25_K1 + 1.0) / (1.0 + BM25_K1 * (1.0 - BM25_B + BM25_B * ratio))
    return _Postings(vocab, starts, docs[order], weights[order], np.where(present, norm, 0.0))


@dataclass
class _Keywords:
    """One string field's index.

    Attributes:
        ids: normalised value → datasets holding it.
        values: the distinct raw values.
        alpha: each value's rank in alphabetical order (facet ties).
        entry_doc, entry_value: (dataset, value number) pairs, for counting facets.
        has: datasets with any value.
    """

    ids: dict[str, np.ndarray]
    values: list[str]
    alpha: np.ndarray
    entry_doc: np.ndarray
    entry_value: np.ndarray
    has: np.ndarray


def _keywords(docs: Sequence[_Doc], name: str) -> _Keywords:
    """Index one string field of the datasets."""
    numbers: dict[str, int] = {}
    by_value: dict[str, list[int]] = {}
    entry_doc: list[int] = []
    entry_value: list[int] = []
    for number, doc in enumerate(docs):
        values = _keyword_values(doc, name)
        for value in dict.fromkeys(values) if len(values) > 1 else values:
            known = numbers.get(value)
            if known is None:
                known = numbers[value] = len(numbers)
                by_value.setdefault(normalize(value).strip(), [])
            by_value[normalize(value).strip()].append(number)
            entry_doc.append(number)
            entry_value.append(known)
    values = list(numbers)
    alpha = np.empty(len(values), dtype=np.intp)
    alpha[sorted(range(len(values)), key=values.__getitem__)] = np.arange(len(values))
    docs_ = np.array(entry_doc, dtype=np.intp)
    has = np.zeros(len(docs), dtype=bool)
    has[docs_] = True
    return _Keywords(
        {v: np.unique(np.array(d, dtype=np.intp)) for v, d in by_value.items()},
        values,
        alpha,
        docs_,
        np.array(entry_value, dtype=np.intp),
        has,
    )


def _timestamp(value: datetime | None) -> float:
    """A datetime as POSIX seconds (NaN: none)."""
    return math.nan if value is None else _aware(value).timestamp()


def _ranks(values: Sequence[object]) -> np.ndarray:
    """Each value's rank among the distinct values (equal values share one)."""
    distinct = {value: rank for rank, value in enumerate(sorted(set(values)))}
    return np.array([distinct[v] for v in values], dtype=np.int64)


#: A query's answer: which datasets match, and their scores (0 where they do not).
_Match = tuple[np.ndarray, np.ndarray]


@dataclass
class _Query:
    """What one search evaluates against: the visible datasets and the clock."""

    universe: np.ndarray
    now: datetime


#: Text fields indexed when the index is built (the others on first use).
_EAGER_TEXT = ("text", "title", "_tags", "_groups")


class SearchIndex:
    """An in-memory ``package_search`` index of datasets.

    Build it once per catalog change (``PortalStore.change_marker()`` tells when) and share it
    between requests: searching never changes what it answers (it only fills caches).
    """

    def __init__(
        self,
        datasets: Iterable[Dataset],
        organizations: Mapping[str, Organization] = _NONE,
        groups: Mapping[str, Group] = _NONE,
    ) -> None:
        """Index datasets.

        Args:
            datasets: every dataset, whatever its state or visibility (search filters them).
            organizations: organizations by name (their titles become searchable text and
                their ids ``owner_org`` values).
            groups: groups by name (their titles become searchable text).
        """
        orgs_by_key = {key: org for org in organizations.values() for key in (org.name, org.id)}
        tokenize = _Tokenizer()
        self._docs = [
            _make_doc(ds, orgs_by_key.get(ds.owner_org), groups, tokenize) for ds in datasets
        ]
        self._size = len(self._docs)
        self._text: dict[str, _Postings] = {"text": _postings([_merged(d) for d in self._docs])}
        for name in _EAGER_TEXT[1:]:
            self._text_postings(name)
        self._kw: dict[str, _Keywords] = {}
        self._numbers = {
            "metadata_modified": np.array(
                [_timestamp(d.dataset.metadata_modified) for d in self._docs], dtype=float
            ),
            "metadata_created": np.array(
                [_timestamp(d.dataset.metadata_created) for d in self._docs], dtype=float
            ),
            "num_resources": np.array([len(d.dataset.resources) for d in self._docs], dtype=float),
            "num_tags": np.array([len(d.dataset.tags) for d in self._docs], dtype=float),
        }
        self._states = np.array([d.dataset.state for d in self._docs], dtype=object)
        self._private = np.array([d.dataset.private for d in self._docs], dtype=bool)
        self._sort_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._titles: list[str] | None = None

    def __len__(self) -> int:
        """How many datasets are indexed (in any state)."""
        return self._size

    # -- lazily built parts ----------------------------------------------------------------

    def _text_postings(self, name: str) -> _Postings:
        """A text field's postings (built on first use)."""
        found = self._text.get(name)
        if found is None:
            found = self._text[name] = _postings([d.tokens.get(name) for d in self._docs])
        return found

    def _keyword_index(self, name: str) -> _Keywords:
        """A string field's index (built on first use)."""
        found = self._kw.get(name)
        if found is None:
            found = self._kw[name] = _keywords(self._docs, name)
        return found

    def _sort_array(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(missing, rank) arrays of a sort field (built on first use)."""
        found = self._sort_arrays.get(name)
        if found is not None:
            return found
        if name in self._numbers:
            values = self._numbers[name]
            missing = np.isnan(values)
            ranks = _ranks([0.0 if m else v for m, v in zip(missing, values, strict=True)])
        else:
            attr = {"title_string": "title", "name": "name", "id": "id"}[name]
            raw = [getattr(d.dataset, attr) for d in self._docs]
            values_ = [normalize(v) if name == "title_string" else v for v in raw]
            missing = np.zeros(self._size, dtype=bool)
            ranks = _ranks(values_)
        found = self._sort_arrays[name] = (missing, ranks)
        return found

    # -- searching -------------------------------------------------------------------------

    def search(self, params: SearchParams) -> SearchResult:
        """Answer a ``package_search``.

        Args:
            params: the request.

        Returns:
            The count, the page of datasets and the facet counts.

        Raises:
            SearchQueryError: bad ``q``/``fq`` syntax, an unknown or malformed ``sort``, a
                negative ``rows``/``start``, or a facet on a text field.
        """
        if params.rows < 0 or params.start < 0:
            raise SearchQueryError(
                f"rows and start must be 0 or more, got {params.rows} and {params.start}"
            )
        order = parse_sort(params.sort)
        facet_fields = _check_facets(params.facet_fields)
        ctx = _Query(self._visible(params), datetime.now(UTC))
        mask, score = self._run(params.q, ctx)
        if params.fq.strip():
            node = parse_query(params.fq)
            if node is not None:
                mask &= self._eval(node, ctx)[0]
        page = self._page(mask, score, order, params.start, params.rows)
        return SearchResult(
            count=int(mask.sum()),
            datasets=[self._docs[d].dataset for d in page],
            facets={
                name: self._facet(name, mask, params.facet_limit, params.facet_mincount)
                for name in facet_fields
            },
        )

    def autocomplete(self, q: str, limit: int = 10) -> list[Dataset]:
        """``package_autocomplete``: public active datasets whose name or title contains ``q``.

        Args:
            q: what the user has typed so far (``台中`` finds ``臺中``; case is ignored).
            limit: at most this many.

        Returns:
            Datasets whose title (then name) starts with ``q`` first, then shorter titles,
            then by name.
        """
        needle = normalize(q).strip()
        if not needle or limit <= 0:
            return []
        if self._titles is None:
            self._titles = [
                normalize(f"{d.dataset.title} {d.dataset.title_en}") for d in self._docs
            ]
        public = (self._states == "active") & ~self._private
        found: list[tuple[tuple[bool, bool, int, str], int]] = []
        for number in np.flatnonzero(public):
            title, name = self._titles[number], self._docs[number].dataset.name
            if needle in title or needle in name:
                key = (not title.startswith(needle), not name.startswith(needle), len(title), name)
                found.append((key, int(number)))
        return [self._docs[d].dataset for _, d in heapq.nsmallest(limit, found)]

    def _visible(self, params: SearchParams) -> np.ndarray:
        """The datasets this request may see."""
        alive = self._states == "active"
        if params.include_deleted:
            alive |= self._states == "deleted"
        visible = alive & ~self._private
        if params.include_private:
            private = alive & self._private
            if params.viewer_orgs is not None:
                owners = self._keyword_index("owner_org")
                member = np.zeros(self._size, dtype=bool)
                for org in params.viewer_orgs:
                    member[owners.ids.get(normalize(org).strip(), _NO_IDS)] = True
                private &= member
            visible |= private
        return visible

    def _run(self, q: str, ctx: _Query) -> _Match:
        """Datasets matching ``q`` among the visible ones, with their scores."""
        stripped = q.strip()
        node = None
        if stripped not in ("", '""', "''"):
            node = parse_query(stripped, dismax=":" not in stripped)
        if node is None:
            return ctx.universe.copy(), np.zeros(self._size)
        mask, score = self._eval(node, ctx)
        return mask & ctx.universe, score

    def _page(
        self,
        mask: np.ndarray,
        score: np.ndarray,
        order: Sequence[tuple[str, bool]],
        start: int,
        rows: int,
    ) -> np.ndarray:
        """The requested slice of the matches in the requested order (ties by name)."""
        selected = np.flatnonzero(mask)
        keys: list[np.ndarray] = []
        for name, desc in [*order, ("name", False)]:
            if name == "score":
                keys.append(-score[selected] if desc else score[selected])
                continue
            missing, ranks = self._sort_array(name)
            keys.extend((missing[selected], -ranks[selected] if desc else ranks[selected]))
        ordered = selected[np.lexsort(keys[::-1])] if len(selected) else selected
        return ordered[start : start + rows]

    def _facet(self, name: str, mask: np.ndarray, limit: int, mincount: int) -> dict[str, int]:
        """Value counts of a string field over the matches, most frequent first."""
        index = self._keyword_index(name)
        if not index.values:
            return {}
        chosen = index.entry_value[mask[index.entry_doc]]
        counts = np.bincount(chosen, minlength=len(index.values))
        kept = np.flatnonzero(counts >= max(mincount, 1))
        kept = kept[np.lexsort((index.alpha[kept], -counts[kept]))]
        if limit >= 0:
            kept = kept[:limit]
        return {index.values[v]: int(counts[v]) for v in kept}

    # -- evaluation ------------------------------------------------------------------------

    def _none(self) -> _Match:
        return np.zeros(self._size, dtype=bool), np.zeros(self._size)

    def _eval(self, node: _Node, ctx: _Query) -> _Match:
        """Datasets matching a query tree (possibly beyond the visible ones), with scores."""
        match node:
            case _All():
                return ctx.universe.copy(), np.zeros(self._size)
            case _Bool():
                return self._eval_bool(node, ctx)
            case _Term(field=None) | _Phrase(field=None):
                return self._eval_default(node)
            case _Term() | _Phrase():
                return self._eval_field(node, ctx)
            case _Range():
                return self._eval_range(node, ctx)
            case _Exists():
                return self._eval_exists(node)
        raise AssertionError(node)  # pragma: no cover - every node kind is handled above

    def _eval_bool(self, node: _Bool, ctx: _Query) -> _Match:
        score = np.zeros(self._size)
        if node.must:
            mask = np.ones(self._size, dtype=bool)
            for child in node.must:
                child_mask, child_score = self._eval(child, ctx)
                mask &= child_mask
                score += child_score
        else:
            mask = ctx.universe.copy() if not node.should else np.ones(self._size, dtype=bool)
        if node.should:
            hits = np.zeros(self._size, dtype=np.int32)
            for child in node.should:
                child_mask, child_score = self._eval(child, ctx)
                hits += child_mask
                score += child_score
            mask &= hits >= (node.min_should if node.must else max(node.min_should, 1))
        for child in node.must_not:
            mask &= ~self._eval(child, ctx)[0]
        return mask, np.where(mask, score * node.boost, 0.0)

    def _idf(self, df: int) -> float:
        """BM25 inverse document frequency of something ``df`` datasets have."""
        return math.log(1.0 + (self._size - df + 0.5) / (df + 0.5))

    def _token_idf(self, token: str) -> float:
        return self._idf(len(self._text["text"].entries(token)[0]))

    def _words(self, name: str, tokens: Sequence[str]) -> _Match:
        """Datasets whose text field has every token, with BM25 scores."""
        postings = self._text_postings(name)
        count = np.zeros(self._size, dtype=np.int32)
        score = np.zeros(self._size)
        for token in tokens:
            docs, factors = postings.entries(token)
            if not len(docs):
                return self._none()
            count[docs] += 1
            score[docs] += self._token_idf(token) * factors
        mask = count == len(tokens)
        return mask, np.where(mask, score * postings.norm, 0.0)

    def _text_match(
        self, name: str, node: _Term | _Phrase, within: np.ndarray | None = None
    ) -> _Match:
        """A word or phrase in one text field (``text``: in any), among ``within`` if given."""
        mask, score = self._words(name, node.tokens)
        if within is not None:
            mask &= within
        if isinstance(node, _Phrase) and node.slop == 0:
            needle = _units(node.text)
            for d in np.flatnonzero(mask):
                if not self._has_phrase(self._docs[d], name, needle):
                    mask[d] = False
        return mask, np.where(mask, score, 0.0)

    def _has_phrase(self, doc: _Doc, name: str, needle: str) -> bool:
        """Whether one text field of a dataset (any, for ``text``) holds the phrase's units."""
        units = doc.units.get(name)
        if units is None:
            texts = (
                chain.from_iterable(doc.texts.values())
                if name == "text"
                else doc.texts.get(name, ())
            )
            # values are kept apart by a mark no needle holds, so a phrase never spans two
            units = doc.units[name] = _VALUE_SEP.join(map(_units, texts))
        return needle in units

    def _eval_default(self, node: _Term | _Phrase) -> _Match:
        """A bare word or phrase: dismax over :data:`QUERY_FIELDS`."""
        text_mask, text_score = self._text_match("text", node)
        scores = [text_score * QUERY_FIELDS["text"]]
        for name, boost in _DISMAX_TEXT:
            if text_mask.any():
                scores.append(self._text_match(name, node, within=text_mask)[1] * boost)
        name_mask = np.zeros(self._size, dtype=bool)
        if isinstance(node, _Term):
            ids = self._keyword_ids("name", node.text, node.wildcard)
            name_mask[ids] = True
            scores.append(name_mask * self._idf(len(ids)) * QUERY_FIELDS["name"])
        stacked = np.vstack(scores)
        best = stacked.max(axis=0)
        total = best + TIE * (stacked.sum(axis=0) - best)
        mask = text_mask | name_mask
        return mask, np.where(mask, total * node.boost, 0.0)

    def _eval_field(self, node: _Term | _Phrase, ctx: _Query) -> _Match:
        """A word, phrase or value in a named field."""
        name = node.field
        assert name is not None
        kind = field_kind(name)
        if kind == "text":
            mask, score = self._text_match(name, node)
            return mask, score * node.boost
        if kind in ("date", "int"):
            value = self._bound(kind, node.text, ctx)
            return self._numbers[name] == value, np.zeros(self._size)
        wildcard = isinstance(node, _Term) and node.wildcard
        ids = self._keyword_ids(name, node.text, wildcard)
        mask = np.zeros(self._size, dtype=bool)
        mask[ids] = True
        return mask, mask * (self._idf(len(ids)) * node.boost)

    def _keyword_ids(self, name: str, text: str, wildcard: bool) -> np.ndarray:
        """Datasets with a string-field value equal to (or matching the pattern) ``text``."""
        ids = self._keyword_index(name).ids
        value = normalize(text).strip()
        if not wildcard:
            return ids.get(value, _NO_IDS)
        pattern = re.compile(fnmatch.translate(value))
        found = [docs for v, docs in ids.items() if pattern.match(v)]
        return np.unique(np.concatenate(found)) if found else _NO_IDS

    def _eval_exists(self, node: _Exists) -> _Match:
        """``field:*``."""
        kind = field_kind(node.field)
        if kind == "text":
            mask = self._text_postings(node.field).norm > 0
        elif kind in ("date", "int"):
            mask = ~np.isnan(self._numbers[node.field])
        else:
            mask = self._keyword_index(node.field).has.copy()
        return mask, np.zeros(self._size)

    def _bound(self, kind: str, text: str | None, ctx: _Query) -> float | None:
        """A bound or value of a date (as POSIX seconds) or int field; None: open."""
        if text is None:
            return None
        if kind == "date":
            return parse_date(text, ctx.now).timestamp()
        try:
            return float(int(text))
        except ValueError:
            raise SearchQueryError(f"{text!r} is not a whole number") from None

    def _eval_range(self, node: _Range, ctx: _Query) -> _Match:
        """``field:[low TO high]`` on a date, int or string field."""
        kind = field_kind(node.field)
        if kind == "text":
            raise SearchQueryError(
                f"ranges need a date, number or string field; {node.field!r} is a text field"
            )
        if kind in ("date", "int"):
            values = self._numbers[node.field]
            low, high = self._bound(kind, node.low, ctx), self._bound(kind, node.high, ctx)
            with np.errstate(invalid="ignore"):
                mask = ~np.isnan(values)
                if low is not None:
                    mask &= values >= low if node.include_low else values > low
                if high is not None:
                    mask &= values <= high if node.include_high else values < high
            return mask, np.zeros(self._size)
        low_s = None if node.low is None else normalize(node.low).strip()
        high_s = None if node.high is None else normalize(node.high).strip()
        mask = np.zeros(self._size, dtype=bool)
        for value, ids in self._keyword_index(node.field).ids.items():
            if _within(value, low_s, high_s, node.include_low, node.include_high):
                mask[ids] = True
        return mask, np.zeros(self._size)


_NO_IDS = np.zeros(0, dtype=np.intp)
_NO_WEIGHTS = np.zeros(0, dtype=float)


def _within(value: str, low: str | None, high: str | None, inc_low: bool, inc_high: bool) -> bool:
    """Whether ``value`` lies between the bounds (None: open)."""
    if low is not None and (value < low or (value == low and not inc_low)):
        return False
    return not (high is not None and (value > high or (value == high and not inc_high)))


def parse_sort(sort: str) -> list[tuple[str, bool]]:
    """Parse a ``sort`` parameter.

    Args:
        sort: e.g. ``"score desc, metadata_modified desc"``; "" means :data:`DEFAULT_SORT`.

    Returns:
        (field, descending) pairs, in order.

    Raises:
        SearchQueryError: an unknown field or a direction other than asc/desc.
    """
    keys: list[tuple[str, bool]] = []
    for part in (sort.strip() or DEFAULT_SORT).split(","):
        words = part.split()
        if len(words) != 2 or words[1].lower() not in ("asc", "desc"):
            raise SearchQueryError(
                f'Invalid "sort" parameter {sort!r}: each key is "field asc" or "field desc"'
            )
        if words[0] not in SORT_FIELDS:
            raise SearchQueryError(
                f'Invalid "sort" parameter {sort!r}: cannot sort by {words[0]!r} '
                f"(use {', '.join(SORT_FIELDS)})"
            )
        keys.append((words[0], words[1].lower() == "desc"))
    return keys


def _check_facets(fields: Sequence[str]) -> tuple[str, ...]:
    """Facet fields must be string fields (or extras); a field asked twice counts once."""
    for name in fields:
        if field_kind(name) != "keyword" and not name.startswith("extras_"):
            raise SearchQueryError(
                f"cannot facet on {name!r}: facets count whole values of string fields "
                "(organization, groups, tags, res_format, license_id, ...)"
            )
    return tuple(dict.fromkeys(fields))


__all__ = [
    "DEFAULT_SORT",
    "QUERY_FIELDS",
    "SORT_FIELDS",
    "SearchIndex",
    "SearchParams",
    "SearchResult",
    "field_kind",
    "min_should_match",
    "parse_date",
    "parse_query",
    "parse_sort",
]
