"""Search (catalog/search.py): the tokeniser, and catalog search on both backends."""

from __future__ import annotations

import pytest

from catalog import Agency, Catalog, FieldInfo
from catalog.search import (
    FIELD_WEIGHTS,
    MAX_TOKEN_LENGTH,
    PREFIX_FACTOR,
    index_tokens,
    normalize,
    query_tokens,
    weighted_tokens,
)
from tests.catalog.helpers import (
    CIVIL,
    EDUCATION,
    PARKING_OFFICE,
    TRANSPORT,
    make_layer,
    make_version,
)

# -- the tokeniser -------------------------------------------------------------------------------


def test_cjk_text_is_indexed_as_bigrams_and_single_characters():
    assert index_tokens("停車場") == {
        "停": 1.0,
        "車": 1.0,
        "場": 1.0,
        "停車": 1.0,
        "車場": 1.0,
    }
    assert index_tokens("區") == {"區": 1.0}


def test_cjk_query_becomes_its_bigrams_or_its_single_character():
    assert query_tokens("停車場") == ["停車", "車場"]
    assert query_tokens("停車") == ["停車"]
    assert query_tokens("停") == ["停"]


def test_spaces_and_punctuation_separate_terms():
    assert query_tokens("臺中 停車場") == ["臺中", "停車", "車場"]
    assert query_tokens("停車場（公有）") == ["停車", "車場", "公有"]
    assert "場公" not in index_tokens("停車場（公有）")
    assert query_tokens("  ，。!? ") == []
    assert query_tokens("") == []


def test_latin_words_are_lower_cased_with_prefixes_weighted_lower():
    tokens = index_tokens("Public off-street Parking")
    assert tokens["parking"] == 1.0
    assert tokens["park"] == PREFIX_FACTOR
    assert tokens["p"] == PREFIX_FACTOR
    assert tokens["off"] == tokens["street"] == tokens["public"] == 1.0
    assert "off-street" not in tokens
    assert query_tokens("Public PARKING") == ["public", "parking"]


def test_a_word_that_is_also_a_prefix_keeps_the_whole_word_weight():
    tokens = index_tokens("park parking")
    assert tokens["park"] == 1.0
    assert tokens["parki"] == PREFIX_FACTOR


def test_mixed_scripts_digits_and_full_width_forms():
    assert query_tokens("ＰＡＲＫＩＮＧ１２３") == ["parking123"]
    assert query_tokens("108年度A區") == ["108", "年度", "a", "區"]
    assert index_tokens("R1道路")["r1"] == 1.0
    assert index_tokens("R1道路")["道路"] == 1.0


def test_tai_variants_fold_together():
    assert normalize("台中市") == "臺中市"
    assert query_tokens("台中") == query_tokens("臺中") == ["臺中"]
    assert "臺中" in index_tokens("台中市")


def test_long_words_are_cut_the_same_way_in_text_and_query():
    word = "x" * (MAX_TOKEN_LENGTH + 10)
    assert query_tokens(word) == ["x" * MAX_TOKEN_LENGTH]
    assert index_tokens(word)["x" * MAX_TOKEN_LENGTH] == 1.0


def test_several_texts_are_tokenised_separately():
    tokens = index_tokens(["停車", "場站"])
    assert "停車" in tokens and "場站" in tokens
    assert "車場" not in tokens


def test_weighted_tokens_multiply_field_weight_and_match_factor():
    rows = weighted_tokens({"title": "Parking", "description": "停車"})
    assert ("title", "parking", FIELD_WEIGHTS["title"]) in rows
    assert ("title", "park", FIELD_WEIGHTS["title"] * PREFIX_FACTOR) in rows
    assert ("description", "停車", FIELD_WEIGHTS["description"]) in rows
    with pytest.raises(KeyError):
        weighted_tokens({"nonsense": "x"})


def test_field_weights_rank_title_over_keywords_over_agency_over_description():
    w = FIELD_WEIGHTS
    assert w["title"] == w["title_en"] > w["keywords"] > w["agency"] == w["category"]
    assert w["category"] > w["description"] == w["fields"]


# -- catalog search ------------------------------------------------------------------------------


@pytest.fixture
def city(catalog: Catalog) -> Catalog:
    """A small catalog of Taichung-like layers."""
    catalog.upsert_layer(
        make_layer(
            "parking-public",
            "公有路外停車場",
            agency=TRANSPORT,
            title_en="Public off-street parking",
            keywords=("停車", "交通"),
            category="交通及通訊",
            description="本市公有路外停車場之位置、格位數與收費標準。",
        )
    )
    catalog.upsert_layer(
        make_layer("parking-info", "停車場資訊", agency=PARKING_OFFICE, category="交通及通訊")
    )
    catalog.upsert_layer(
        make_layer(
            "bus-stops",
            "公車站位",
            agency=TRANSPORT,
            title_en="Bus stops",
            description="含港灣式停車彎之公車站位置。",
            category="交通及通訊",
        )
    )
    catalog.upsert_layer(
        make_layer("schools", "學校位置", agency=EDUCATION, title_en="Schools", category="教育")
    )
    catalog.publish_version(
        make_version(
            "schools", 1, fields=(FieldInfo("學校名稱", "string"), FieldInfo("停車位數", "integer"))
        )
    )
    catalog.upsert_layer(
        make_layer(
            "districts",
            "行政區界",
            agency=CIVIL,
            title_en="District boundaries",
            description="臺中市 29 個行政區之界線。",
            category="政府施政",
        )
    )
    return catalog


def _ids(catalog: Catalog, query: str) -> list[str]:
    return [hit.layer.id for hit in catalog.search(query)]


def test_chinese_substrings_are_found_without_spaces(city: Catalog):
    assert _ids(city, "停車場") == ["parking-info", "parking-public"]
    assert _ids(city, "路外停車") == ["parking-public"]
    assert _ids(city, "行政區") == ["districts"]


def test_a_shorter_query_finds_more_ranked_by_where_it_matches(city: Catalog):
    # titles first (id order between equal scores), then description / field-name matches
    assert _ids(city, "停車") == ["parking-info", "parking-public", "bus-stops", "schools"]


def test_one_character_queries_work(city: Catalog):
    assert _ids(city, "停") == ["parking-info", "parking-public", "bus-stops", "schools"]
    assert _ids(city, "界") == ["districts"]


def test_english_titles_are_searchable_case_insensitively_and_by_prefix(city: Catalog):
    # parking-info's agency is the "Parking Management Office": an agency match ranks lower
    assert _ids(city, "parking") == ["parking-public", "parking-info"]
    assert _ids(city, "PARKING") == ["parking-public", "parking-info"]
    assert _ids(city, "Park") == ["parking-public", "parking-info"]
    assert _ids(city, "off street") == ["parking-public"]
    assert _ids(city, "bus stop") == ["bus-stops"]


def test_every_query_term_must_match(city: Catalog):
    assert _ids(city, "臺中 停車場") == ["parking-public"]
    assert _ids(city, "台中 停車場") == ["parking-public"]  # 台 and 臺 are the same
    assert _ids(city, "停車場 parking") == ["parking-public", "parking-info"]
    assert _ids(city, "停車場 street") == ["parking-public"]
    assert _ids(city, "停車場 學校") == []


def test_agency_category_keywords_and_field_names_are_searched(city: Catalog):
    assert _ids(city, "教育局") == ["schools"]
    assert _ids(city, "Education Bureau") == ["schools"]
    assert _ids(city, "政府施政") == ["districts"]
    assert _ids(city, "學校名稱") == ["schools"]
    assert _ids(city, "收費標準") == ["parking-public"]


def test_ranking_title_then_keywords_then_category_then_description(catalog: Catalog):
    def add(layer_id: str, title: str, **kw: object) -> None:
        catalog.upsert_layer(make_layer(layer_id, title, agency=kw.pop("agency", CIVIL), **kw))

    add("d-description", "道路", description="道路交通事故統計")
    add("c-category", "號誌", category="交通及通訊")
    add("b-keywords", "公車路線", keywords=("交通",))
    add("a-title", "交通事故地點")
    add("e-fields", "路燈")
    catalog.publish_version(make_version("e-fields", 1, fields=(FieldInfo("交通區", "string"),)))
    add("f-agency", "橋梁", agency=Agency("highways", "交通部公路局"))
    hits = catalog.search("交通")
    assert [hit.layer.id for hit in hits] == [
        "a-title",
        "b-keywords",
        "c-category",
        "f-agency",
        "d-description",
        "e-fields",
    ]
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1] > scores[2] == scores[3] > scores[4] == scores[5] > 0


def test_empty_query_lists_every_layer_by_id(city: Catalog):
    ids = ["bus-stops", "districts", "parking-info", "parking-public", "schools"]
    assert _ids(city, "") == ids
    assert _ids(city, " ，") == ids
    assert city.count("") == 5
    assert {hit.score for hit in city.search("")} == {0.0}


def test_count_and_paging_agree_with_search(city: Catalog):
    everything = _ids(city, "停車")
    assert city.count("停車") == len(everything) == 4
    assert [h.layer.id for h in city.search("停車", limit=2)] == everything[:2]
    assert [h.layer.id for h in city.search("停車", limit=2, offset=2)] == everything[2:]
    assert city.search("停車", offset=10) == []
    assert [h.layer.id for h in city.search("", limit=2, offset=1)] == ["districts", "parking-info"]
    assert city.count("沒有這種圖層") == 0
    with pytest.raises(ValueError, match="limit"):
        city.search("停車", limit=-1)


def test_hits_carry_the_whole_layer(city: Catalog):
    (hit,) = city.search("學校")
    assert hit.layer == city.get_layer("schools")
    assert hit.layer.current_version == make_version("schools", 1).version


def test_search_follows_metadata_and_version_changes(city: Catalog):
    city.upsert_layer(make_layer("parking-info", "機車停車格", agency=PARKING_OFFICE))
    assert _ids(city, "停車場") == ["parking-public"]
    assert _ids(city, "機車") == ["parking-info"]
    # field names are those of the current version only
    city.publish_version(make_version("schools", 2, fields=(FieldInfo("樓層", "integer"),)))
    assert _ids(city, "停車位") == []
    assert _ids(city, "樓層") == ["schools"]
    # an agency renamed is found under its new name
    city.upsert_agency(Agency("education", "臺中市教育處", "Education Department"))
    assert _ids(city, "教育局") == []
    assert _ids(city, "教育處") == ["schools"]
    assert _ids(city, "department") == ["schools"]
    city.delete_layer("schools")
    assert _ids(city, "學校") == []


@pytest.mark.parametrize(
    "query", ["'; DROP TABLE layers; --", "停車' OR '1'='1", "%", "_", "\\", '"', "\x00"]
)
def test_hostile_queries_are_only_text(city: Catalog, query: str):
    assert city.search(query) == [] or query_tokens(query) == []
    assert [layer.id for layer in city.layers()] == _ids(city, "")
