"""package_search engine (portal/ckan/search.py) over the real Taichung catalog export.

Expectations are computed here, independently of the engine: from the CSV rows with
``collections.Counter``, plain substring tests on the normalised text (a CJK word is found when
every character bigram of it is in the dataset's text) and set algebra.
"""

from __future__ import annotations

import csv
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.search import normalize
from portal.ckan.errors import SearchQueryError
from portal.ckan.model import Dataset, Group, Organization, Resource
from portal.ckan.search import SearchIndex, SearchParams, min_should_match, parse_date

pytestmark = pytest.mark.realdata

TAICHUNG = Path("DragonChen-opendata-tw-list-crawler/out/raw/08_Taichung.csv")
BASE = datetime(2023, 1, 1, tzinfo=UTC)
FORMATS = ("CSV", "JSON", "XML")
ALL = 100_000


def _rows(real_data: Path) -> list[dict[str, str]]:
    with (real_data / TAICHUNG).open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _tags(keywords: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in re.split(r"[,、，\s]+", keywords) if t))


def _dataset(row: dict[str, str], slugs: dict[str, str], copy: int = 0) -> Dataset:
    """A dataset from one row of the export (copy > 0: a variant, for the 3,300 benchmark)."""
    number = int(row["編號"])
    name = f"tc-{number}" if not copy else f"tc-{number}-v{copy}"
    ds_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    title = row["資料集名稱"] if not copy else f"{row['資料集名稱']}（第{copy}版）"
    resource = Resource(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, name + ":r")),
        package_id=ds_id,
        name=title,
        url=row["資料集連結網址"],
        format=FORMATS[number % 3],
    )
    return Dataset(
        id=ds_id,
        name=name,
        title=title,
        owner_org=slugs[row["資料集提供機關"]],
        notes=row["資料集說明"],
        category=row["資料分類"],
        update_frequency=row["更新頻率"],
        fields_description=row["主要欄位說明"],
        tags=_tags(row["關鍵字"]),
        resources=(resource,),
        license_id="OGDL-Taiwan-1.0" if number % 5 else "CC-BY-4.0",
        metadata_created=BASE + timedelta(days=number % 97, minutes=copy),
        metadata_modified=BASE + timedelta(days=number * 7 % 365, minutes=copy),
        source="catalog-export",
    )


def _orgs(rows: list[dict[str, str]]) -> tuple[dict[str, str], dict[str, Organization]]:
    agencies = sorted({r["資料集提供機關"] for r in rows})
    slugs = {a: f"org-{i:02d}" for i, a in enumerate(agencies)}
    orgs = {
        slug: Organization(id=str(uuid.uuid5(uuid.NAMESPACE_URL, a)), name=slug, title=a)
        for a, slug in slugs.items()
    }
    return slugs, orgs


def _synthetic(orgs: dict[str, Organization]) -> list[Dataset]:
    """Hand-made datasets for phrases, Latin words, privacy, deletion, groups and extras."""
    now = datetime.now(UTC)
    org_a, org_b = sorted(orgs)[:2]

    def make(name: str, title: str, **kw) -> Dataset:
        return Dataset(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            name=name,
            title=title,
            owner_org=kw.pop("owner_org", org_a),
            metadata_created=kw.pop("created", BASE),
            metadata_modified=kw.pop("modified", BASE),
            **kw,
        )

    return [
        make("syn-scattered", "路邊停車與轉運車場", notes="停車 與 車場 分開寫"),
        make("syn-exact", "停車場"),
        make("syn-notes-only", "交通設施", notes="本資料含停車場位置"),
        make("syn-latin", "英文資料", title_en="Parking lots of Taichung", tags=("parking",)),
        make("syn-private-a", "機密停車場名冊", private=True, owner_org=org_a),
        make("syn-private-b", "另一機密停車場", private=True, owner_org=org_b),
        make("syn-deleted", "已刪除停車場", state="deleted"),
        make("syn-recent", "剛更新的停車場", modified=now - timedelta(hours=1)),
        make("syn-group", "公園綠地", groups=("parks",)),
        make(
            "syn-quality-gold",
            "金標章資料",
            extras=(("quality_label", "gold"), ("quality_obtainable", "yes")),
        ),
        make("syn-quality-silver", "銀標章資料", extras=(("quality_label", "silver"),)),
        make("syn-quality-gold-2", "又一金標章", extras=(("quality_label", "gold"),)),
    ]


@pytest.fixture(scope="module")
def corpus(real_data: Path) -> tuple[list[Dataset], dict[str, Organization], dict[str, Group]]:
    rows = _rows(real_data)
    assert len(rows) == 1136
    slugs, orgs = _orgs(rows)
    datasets = [_dataset(r, slugs) for r in rows] + _synthetic(orgs)
    groups = {"parks": Group(id=str(uuid.uuid4()), name="parks", title="公園與休閒")}
    return datasets, orgs, groups


@pytest.fixture(scope="module")
def index(corpus) -> SearchIndex:
    datasets, orgs, groups = corpus
    return SearchIndex(datasets, orgs, groups)


@pytest.fixture(scope="module")
def public(corpus) -> list[Dataset]:
    """What anonymous users see: active, public datasets."""
    return [d for d in corpus[0] if d.state == "active" and not d.private]


def _haystack(ds: Dataset, orgs: dict[str, Organization]) -> str:
    """Every text of a dataset a free-text query searches, normalised, one per line."""
    org = orgs.get(ds.owner_org)
    parts = [
        ds.name,
        ds.title,
        ds.title_en,
        ds.notes,
        ds.fields_description,
        ds.category,
        ds.update_frequency,
        ds.license_id,
        ds.owner_org,
        org.title if org else "",
        *ds.tags,
        *ds.groups,
        *(r.name for r in ds.resources),
        *(r.format for r in ds.resources),
        *(v for _, v in ds.extras),
    ]
    return "\n".join(normalize(p) for p in parts if p)


def _has_word(text: str, word: str) -> bool:
    """A CJK word is in a text when each of its character bigrams is."""
    word = normalize(word)
    if len(word) == 1:
        return word in text
    return all(word[i : i + 2] in text for i in range(len(word) - 1))


def _names(index: SearchIndex, **params) -> list[str]:
    result = index.search(SearchParams(rows=ALL, **params))
    assert result.count == len(result.datasets)
    return [d.name for d in result.datasets]


# -- free text ---------------------------------------------------------------------------------


def test_q_finds_every_dataset_whose_title_has_the_word(index, public):
    found = set(_names(index, q="停車場"))
    with_title = {d.name for d in public if "停車場" in d.title}
    assert len(with_title) >= 5
    assert with_title <= found
    assert "syn-notes-only" in found  # in the description only


def test_q_matches_exactly_the_datasets_that_hold_every_bigram(index, public, corpus):
    orgs = corpus[1]
    for word in ("停車場", "交通事故", "公園", "垃圾", "臺中市", "衛生局"):
        expected = {d.name for d in public if _has_word(_haystack(d, orgs), word)}
        assert set(_names(index, q=word)) == expected, word
        assert expected, word


def test_variants_and_full_width_are_folded(index):
    assert _names(index, q="台中") == _names(index, q="臺中")
    assert _names(index, q="ＰＡＲＫＩＮＧ") == _names(index, q="parking")


def test_latin_words_are_prefix_matched_and_wildcards_end_words(index):
    assert "syn-latin" in _names(index, q="park")
    assert "syn-latin" in _names(index, q="taich*")
    assert "syn-latin" not in _names(index, q="lotsx")


def test_phrase_requires_adjacent_characters(index, public, corpus):
    orgs = corpus[1]
    terms = set(_names(index, q="停車場"))
    phrase = set(_names(index, q='"停車場"'))
    assert "syn-scattered" in terms
    assert "syn-scattered" not in phrase
    expected = {d.name for d in public if "停車場" in _haystack(d, orgs)}
    assert phrase == expected


def test_two_terms_must_both_match_three_terms_all_but_one(index, public, corpus):
    orgs = corpus[1]
    hay = {d.name: _haystack(d, orgs) for d in public}
    words = ["交通", "警察局", "統計"]
    both = {n for n, h in hay.items() if all(_has_word(h, w) for w in words[:2])}
    assert set(_names(index, q=" ".join(words[:2]))) == both
    at_least_two = {n for n, h in hay.items() if sum(_has_word(h, w) for w in words) >= 2}
    assert set(_names(index, q=" ".join(words))) == at_least_two
    assert min_should_match(3) == 2 and min_should_match(6) == 4 and min_should_match(2) == 2


def test_relevance_puts_the_exact_title_first_and_title_above_description(index):
    names = _names(index, q="停車場")
    assert names[0] == "syn-exact"
    assert names.index("syn-exact") < names.index("syn-notes-only")
    with_title = [n for n in names if n.startswith("tc-")]
    assert names.index(with_title[0]) < names.index("syn-notes-only")


# -- fielded queries and boolean logic -----------------------------------------------------------


def test_field_queries_match_whole_values_of_string_fields(index, public):
    tagged = {d.name for d in public if "交通事故" in d.tags}
    assert tagged
    assert set(_names(index, q="tags:交通事故")) == tagged
    assert set(_names(index, q='tags:"交通事故"')) == tagged
    org = public[0].owner_org
    assert set(_names(index, q=f"organization:{org}")) == {
        d.name for d in public if d.owner_org == org
    }
    assert set(_names(index, q="res_format:csv")) == {
        d.name for d in public if any(r.format == "CSV" for r in d.resources)
    }
    assert set(_names(index, q="name:tc-1*")) == _set(public, lambda d: d.name.startswith("tc-1"))


def test_title_field_searches_titles_only(index, public):
    expected = {d.name for d in public if _has_word(normalize(d.title), "停車場")}
    assert set(_names(index, q="title:停車場")) == expected
    assert "syn-notes-only" not in expected


def _set(public: Iterable[Dataset], pred) -> set[str]:
    return {d.name for d in public if pred(d)}


def test_boolean_logic_equals_set_algebra(index, public):
    traffic = _set(public, lambda d: d.category == "交通資訊")
    monthly = _set(public, lambda d: d.update_frequency == "每月")
    yearly = _set(public, lambda d: d.update_frequency == "每年")
    assert traffic and monthly and yearly

    def q(text: str) -> set[str]:
        return set(_names(index, q=text))

    assert q("category:交通資訊 AND update_frequency:每月") == traffic & monthly
    assert q("category:交通資訊 update_frequency:每月") == traffic & monthly  # q.op=AND
    assert q("category:交通資訊 && update_frequency:每月") == traffic & monthly
    assert q("category:交通資訊 OR update_frequency:每月") == traffic | monthly
    assert q("category:交通資訊 || update_frequency:每月") == traffic | monthly
    assert q("category:交通資訊 NOT update_frequency:每月") == traffic - monthly
    assert q("category:交通資訊 -update_frequency:每月") == traffic - monthly
    assert q("category:交通資訊 AND !update_frequency:每月") == traffic - monthly
    assert q("(update_frequency:每月 OR update_frequency:每年) AND category:交通資訊") == (
        (monthly | yearly) & traffic
    )
    assert q("update_frequency:(每月 OR 每年)") == monthly | yearly
    assert q("category:交通資訊 AND update_frequency:每月 OR update_frequency:每年") == (
        (traffic & monthly) | yearly
    )
    assert q("*:* -category:交通資訊") == {d.name for d in public} - traffic


def test_fq_filters_without_changing_the_order(index, public):
    plain = _names(index, q="交通")
    filtered = _names(index, q="交通", fq="update_frequency:每月")
    monthly = _set(public, lambda d: d.update_frequency == "每月")
    assert filtered == [n for n in plain if n in monthly]
    assert filtered


def test_date_ranges_and_date_math(index, public):
    cut = datetime(2023, 6, 1, tzinfo=UTC)
    expected = _set(public, lambda d: d.metadata_modified >= cut)
    assert set(_names(index, q="metadata_modified:[2023-06-01T00:00:00Z TO *]")) == expected
    exclusive = _set(public, lambda d: d.metadata_modified < cut)
    assert set(_names(index, fq="metadata_modified:[* TO 2023-06-01T00:00:00Z}")) == exclusive
    assert set(_names(index, q="metadata_modified:[NOW-1DAY TO NOW]")) == {"syn-recent"}
    now = datetime(2024, 3, 31, 15, 30, tzinfo=UTC)
    assert parse_date("NOW-1MONTH/DAY", now) == datetime(2024, 2, 29, tzinfo=UTC)
    assert parse_date("2024-01-31T00:00:00Z+1YEAR") == datetime(2025, 1, 31, tzinfo=UTC)


def test_number_ranges(index, public):
    assert set(_names(index, q="num_tags:[2 TO *]")) == _set(public, lambda d: len(d.tags) >= 2)


# -- facets ----------------------------------------------------------------------------------


FACETS = ("organization", "groups", "tags", "res_format", "license_id", "category")


def _counter(datasets: Iterable[Dataset], field: str) -> Counter[str]:
    values = {
        "organization": lambda d: [d.owner_org],
        "groups": lambda d: list(d.groups),
        "tags": lambda d: list(d.tags),
        "res_format": lambda d: sorted({r.format for r in d.resources}),
        "license_id": lambda d: [d.license_id],
        "category": lambda d: [d.category] if d.category else [],
        "update_frequency": lambda d: [d.update_frequency] if d.update_frequency else [],
    }[field]
    return Counter(v for d in datasets for v in values(d))


@pytest.mark.parametrize("q", ["", "交通事故", "category:交通資訊 OR 公園"])
def test_facet_counts_equal_counts_over_the_matches(index, public, q):
    result = index.search(
        SearchParams(q=q, rows=ALL, facet_fields=(*FACETS, "update_frequency"), facet_limit=-1)
    )
    matched = {d.name for d in result.datasets}
    chosen = [d for d in public if d.name in matched]
    for field in (*FACETS, "update_frequency"):
        assert result.facets[field] == dict(_counter(chosen, field)), field


def test_facets_are_ordered_by_count_and_limited(index, public):
    result = index.search(SearchParams(facet_fields=("tags",), facet_limit=5, facet_mincount=2))
    counts = _counter(public, "tags")
    expected = sorted(((t, n) for t, n in counts.items() if n >= 2), key=lambda x: (-x[1], x[0]))
    assert list(result.facets["tags"].items()) == expected[:5]


def test_quality_extras_are_facets_and_filters(index, public):
    result = index.search(SearchParams(facet_fields=("quality_label", "extras_quality_label")))
    labels = Counter(v for d in public for k, v in d.extras if k == "quality_label")
    assert result.facets["quality_label"] == dict(labels.most_common())
    assert result.facets["extras_quality_label"] == dict(labels.most_common())
    gold = _set(public, lambda d: ("quality_label", "gold") in d.extras)
    assert set(_names(index, fq="quality_label:gold")) == gold
    assert set(_names(index, q="extras_quality_label:gold")) == gold


def test_groups_field_facet_and_group_title_search(index):
    assert _names(index, q="groups:parks") == ["syn-group"]
    assert "syn-group" in _names(index, q="休閒")


# -- paging and sorting --------------------------------------------------------------------------


def test_paging_is_consistent(index):
    full = _names(index, q="交通", sort="name asc")
    pages: list[str] = []
    start = 0
    while True:
        result = index.search(SearchParams(q="交通", sort="name asc", rows=7, start=start))
        assert result.count == len(full)
        if not result.datasets:
            break
        pages.extend(d.name for d in result.datasets)
        start += 7
    assert pages == full
    assert len(set(pages)) == len(pages)


def _by(datasets: list[Dataset], *keys: tuple[str, bool]) -> list[str]:
    """Sort with stable passes, the last key first (an independent multi-key sort)."""
    ordered = sorted(datasets, key=lambda d: d.name)
    for attr, desc in reversed(keys):
        ordered = sorted(ordered, key=lambda d: getattr(d, attr), reverse=desc)
    return [d.name for d in ordered]


@pytest.mark.parametrize(
    ("sort", "keys"),
    [
        ("metadata_modified desc", [("metadata_modified", True)]),
        ("metadata_created asc", [("metadata_created", False)]),
        ("name asc", [("name", False)]),
        ("name desc", [("name", True)]),
        ("metadata_created desc, name desc", [("metadata_created", True), ("name", True)]),
        (
            "metadata_created asc, metadata_modified desc",
            [("metadata_created", False), ("metadata_modified", True)],
        ),
    ],
)
def test_sort_orders(index, public, sort, keys):
    assert _names(index, sort=sort) == _by(public, *keys)


def test_title_string_sort(index, public):
    expected = [d.name for d in sorted(public, key=lambda d: (normalize(d.title), d.name))]
    assert _names(index, sort="title_string asc") == expected


def test_default_sort_is_score_then_newest(index):
    result = index.search(SearchParams(rows=ALL))
    stamps = [d.metadata_modified for d in result.datasets]
    assert stamps == sorted(stamps, reverse=True)


# -- visibility --------------------------------------------------------------------------------


def test_private_datasets_only_for_their_organization(index, corpus):
    org_a = next(d.owner_org for d in corpus[0] if d.name == "syn-private-a")
    org_id_a = corpus[1][org_a].id

    def seen(**kw) -> set[str]:
        return {n for n in _names(index, q="機密", **kw) if n.startswith("syn-private")}

    assert seen() == set()
    assert seen(viewer_orgs=None) == set()  # include_private is off
    assert seen(include_private=True) == set()
    assert seen(include_private=True, viewer_orgs=frozenset({org_a})) == {"syn-private-a"}
    assert seen(include_private=True, viewer_orgs=frozenset({org_id_a})) == {"syn-private-a"}
    assert seen(include_private=True, viewer_orgs=None) == {"syn-private-a", "syn-private-b"}
    assert set(_names(index, q="capacity:private", include_private=True, viewer_orgs=None)) == {
        "syn-private-a",
        "syn-private-b",
    }


def test_deleted_datasets_only_when_asked(index):
    assert "syn-deleted" not in _names(index, q="停車場")
    assert "syn-deleted" in _names(index, q="停車場", include_deleted=True)
    assert _names(index, q="state:deleted", include_deleted=True) == ["syn-deleted"]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (SearchParams(q="(停車場"), "missing '\\)'"),
        (SearchParams(q='"停車場'), "unterminated phrase"),
        (SearchParams(q="title:"), "no value|end of query"),
        (SearchParams(q="AND 停車場"), "AND without a clause"),
        (SearchParams(q="停車場 OR"), "end of query"),
        (SearchParams(q="metadata_modified:[yesterday TO *]"), "not a date"),
        (SearchParams(q="metadata_modified:[2024-01-01 *]"), "low TO high"),
        (SearchParams(q="title:[a TO b]"), "text field"),
        (SearchParams(q="title:*車場"), "wildcards"),
        (SearchParams(fq="停車場)"), "unexpected"),
        (SearchParams(sort="popularity desc"), "cannot sort by"),
        (SearchParams(sort="name"), "asc"),
        (SearchParams(facet_fields=("title",)), "cannot facet"),
        (SearchParams(rows=-1), "0 or more"),
    ],
)
def test_bad_queries_raise_search_query_error(index, params, message):
    with pytest.raises(SearchQueryError, match=message) as caught:
        index.search(params)
    assert caught.value.status == 400


def test_unknown_fields_match_nothing_like_ckans_dynamic_string_field(index):
    assert _names(index, q="no_such_field:x") == []


def test_empty_and_punctuation_queries_find_everything(index, public):
    assert len(_names(index, q="")) == len(public)
    assert len(_names(index, q="、")) == len(public)


# -- autocomplete -------------------------------------------------------------------------------


def test_autocomplete(index, public):
    found = index.autocomplete("台中市公", limit=5)
    expected = [d for d in public if "臺中市公" in normalize(d.title)]
    assert len(found) == min(5, len(expected))
    assert all(normalize(d.title).startswith("臺中市公") for d in found)
    assert all(not d.private and d.state == "active" for d in index.autocomplete("機密"))
    assert index.autocomplete("") == []


# -- benchmark (printed, never asserted) -----------------------------------------------------------


def test_benchmark_3300_datasets(real_data, capsys):
    rows = _rows(real_data)
    slugs, orgs = _orgs(rows)
    datasets = [_dataset(r, slugs, copy) for copy in range(3) for r in rows][:3300]
    datasets = [
        replace(d, notes=f"{d.notes} 版本{i % 7}") if i >= len(rows) else d
        for i, d in enumerate(datasets)
    ]
    started, cpu = time.perf_counter(), time.process_time()
    index = SearchIndex(datasets, orgs)
    build, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    facets = ("organization", "groups", "tags", "res_format", "license_id")
    lines = [
        f"build {len(datasets)} datasets: {build * 1000:.0f} ms ({build_cpu * 1000:.0f} ms CPU)"
    ]
    for q in ("停車場", "臺中市 交通事故", '"交通事故"', "", "category:交通資訊 AND 105年"):
        times, cpus = [], []
        for _ in range(100):
            started, cpu = time.perf_counter(), time.process_time()
            index.search(SearchParams(q=q, facet_fields=facets))
            times.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        times.sort()
        cpus.sort()
        lines.append(
            f"q={q!r}: p50 {statistics.median(times):.2f} ms, p95 {times[94]:.2f} ms "
            f"(CPU p50 {statistics.median(cpus):.2f} ms, p95 {cpus[94]:.2f} ms)"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert len(index) == 3300
