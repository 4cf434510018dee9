"""Typing of text attribute columns: every rule, the never-convert cases and the raw text kept."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from catalog.model import FieldInfo
from ingest.attributes import (
    TypedResult,
    looks_like_identifier,
    parse_value,
    type_columns,
)


def typed(column: str, values: list[str | None]) -> TypedResult:
    frame = pd.DataFrame({column: pd.Series(values, dtype=object)})
    return type_columns(frame, [column])


def cells(result: TypedResult, column: str) -> list[object]:
    out = []
    for v in result.frame[column]:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def field_types(result: TypedResult) -> dict[str, str]:
    return {f.name: f.type for f in result.fields}


# --- single values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value", "unit", "changed"),
    [
        ("1234", "integer", 1234, None, False),
        ("-12", "integer", -12, None, False),
        ("0", "integer", 0, None, False),
        ("1,234", "integer", 1234, None, True),
        ("1,234,567", "integer", 1234567, None, True),
        ("１２３", "integer", 123, None, True),
        ("１，２３４", "integer", 1234, None, True),
        ("12.5", "decimal", 12.5, None, False),
        ("0.5", "decimal", 0.5, None, False),
        ("1,234.5", "decimal", 1234.5, None, True),
        ("3,869 公尺", "integer", 3869, "公尺", True),
        ("3869公尺", "integer", 3869, "公尺", True),
        ("35 平方公尺", "integer", 35, "平方公尺", True),
        ("35.2 平方公尺", "decimal", 35.2, "平方公尺", True),
        ("12.5%", "decimal", 12.5, "%", True),
        ("120 m", "integer", 120, "m", True),
        ("3 km²", "integer", 3, "km2", True),
        ("２０ ㎡", "integer", 20, "m2", True),
        ("TRUE", "boolean", True, None, False),
        ("false", "boolean", False, None, False),
    ],
)
def test_parse_numbers(text, kind, value, unit, changed):
    p = parse_value(text)
    assert p is not None
    assert (p.kind, p.value, p.unit, p.changed) == (kind, value, unit, changed)
    assert type(p.value) is type(value)


@pytest.mark.parametrize(
    ("text", "iso", "changed"),
    [
        ("2023-01-31", "2023-01-31", False),
        ("2023-1-31", "2023-01-31", True),
        ("2023/1/31", "2023-01-31", True),
        ("2023.01.31", "2023-01-31", True),
        ("112/01/31", "2023-01-31", True),
        ("112.01.31", "2023-01-31", True),
        ("112-1-31", "2023-01-31", True),
        ("99/12/31", "2010-12-31", True),
        ("民國112/01/31", "2023-01-31", True),
        ("民國112年1月31日", "2023-01-31", True),
        ("中華民國112年1月31日", "2023-01-31", True),
        ("112年1月31日", "2023-01-31", True),
        ("112 年 1 月 31 日", "2023-01-31", True),
        ("2023年1月31日", "2023-01-31", True),
        ("１１２／０１／３１", "2023-01-31", True),
    ],
)
def test_parse_dates(text, iso, changed):
    p = parse_value(text)
    assert p is not None and p.kind == "date"
    assert p.value == dt.date.fromisoformat(iso)
    assert p.changed is changed


@pytest.mark.parametrize(
    ("text", "value", "changed"),
    [
        ("2023-01-31 08:30:00", dt.datetime(2023, 1, 31, 8, 30), False),
        ("2023-01-31T08:30:15", dt.datetime(2023, 1, 31, 8, 30, 15), False),
        ("2023/1/31 8:30", dt.datetime(2023, 1, 31, 8, 30), True),
        ("112/01/31 08:30", dt.datetime(2023, 1, 31, 8, 30), True),
        ("民國112年1月31日 08:30", dt.datetime(2023, 1, 31, 8, 30), True),
    ],
)
def test_parse_datetimes(text, value, changed):
    p = parse_value(text)
    assert p is not None and p.kind == "datetime"
    assert (p.value, p.changed) == (value, changed)


@pytest.mark.parametrize(
    "text",
    [
        "1,23",  # not a thousands separator
        "12,34,567",
        "1.2.3.4",
        "112/13/01",  # no month 13
        "112/02/30",
        "2023-02-30",
        "民國2023年1月1日",  # a Gregorian year after 民國
        "12號",  # not a unit
        "12之1",
        "1e5",
        "abc",
        "04-2222-3333",
        "8/3",
    ],
)
def test_parse_rejects(text):
    assert parse_value(text) is None


@pytest.mark.parametrize("text", ["0010", "066000", "00", "0,123", "012.5"])
def test_leading_zeros_are_codes(text):
    p = parse_value(text)
    if p is not None:
        assert p.kind == "code"


# --- identifier names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "編號",
        "代碼",
        "代號",
        "電話",
        "郵遞區號",
        "統一編號",
        "點號",
        "號",
        "建物號",
        "識別碼",
        "巷",
        "弄",
        "ID",
        "id",
        "CODE",
        "TOWNCODE",
        "VILLCODE",
        "OBJECTID",
        "Phone No",
        "zip_code",
        "StoreId",
        "tel",
    ],
)
def test_identifier_names(name):
    assert looks_like_identifier(name)


@pytest.mark.parametrize(
    "name", ["人口數", "面積", "鄰", "車位數", "Radius", "Area", "valid", "年度"]
)
def test_not_identifier_names(name):
    assert not looks_like_identifier(name)


# --- columns -------------------------------------------------------------------------------------


def test_integers_with_thousands_separators_keep_their_text():
    r = typed("車位數", ["1,234", "808", None, ""])
    assert cells(r, "車位數") == [1234, 808, None, None]
    assert str(r.frame["車位數"].dtype) == "Int64"
    assert cells(r, "車位數_raw") == ["1,234", "808", None, None]
    assert r.fields == [
        FieldInfo("車位數", "integer"),
        FieldInfo("車位數_raw", "string", raw_of="車位數"),
    ]
    (d,) = r.decisions
    assert (d.kind, d.value) == ("column-type", "integer")
    assert "車位數" in d.detail and "thousands" in d.detail and "車位數_raw" in d.detail


def test_plain_numbers_need_no_raw_column():
    r = typed("人口", ["12", "-3", " 7 ", None])
    assert cells(r, "人口") == [12, -3, 7, None]
    assert list(r.frame.columns) == ["人口"]
    assert field_types(r) == {"人口": "integer"}


def test_decimals_and_integers_mix_to_decimal():
    r = typed("長度", ["12", "12.5", "0.25"])
    assert cells(r, "長度") == [12.0, 12.5, 0.25]
    assert r.frame["長度"].dtype == np.float64
    assert field_types(r) == {"長度": "decimal"}
    assert "長度_raw" not in r.frame.columns


def test_full_width_digits():
    r = typed("數量", ["１２３", "４５", "6"])
    assert cells(r, "數量") == [123, 45, 6]
    assert cells(r, "數量_raw") == ["１２３", "４５", "6"]
    assert "full-width" in r.decisions[0].detail


def test_numbers_with_units_record_the_unit():
    r = typed("服務半徑", ["3,869 公尺", "120 公尺", "1,813 公尺"])
    assert cells(r, "服務半徑") == [3869, 120, 1813]
    assert cells(r, "服務半徑_raw") == ["3,869 公尺", "120 公尺", "1,813 公尺"]
    (d,) = r.decisions
    assert d.value == "integer" and "unit 公尺" in d.detail
    r = typed("面積", ["35 平方公尺", "35.2 平方公尺"])
    assert cells(r, "面積") == [35.0, 35.2]
    assert "unit 平方公尺" in r.decisions[0].detail
    r = typed("比率", ["12.5%", "3%"])
    assert cells(r, "比率") == [12.5, 3.0]
    assert "unit %" in r.decisions[0].detail


def test_different_units_stay_text():
    r = typed("距離", ["120 m", "3 km"])
    assert field_types(r) == {"距離": "string"}
    assert cells(r, "距離") == ["120 m", "3 km"]


def test_units_with_and_without_unit_stay_text():
    r = typed("距離", ["120 公尺", "35"])
    assert field_types(r) == {"距離": "string"}


def test_roc_dates():
    r = typed("啟用日期", ["112/01/31", "104/12/31", None])
    assert cells(r, "啟用日期") == [dt.date(2023, 1, 31), dt.date(2015, 12, 31), None]
    assert cells(r, "啟用日期_raw") == ["112/01/31", "104/12/31", None]
    (d,) = r.decisions
    assert d.value == "date" and "ROC" in d.detail
    r = typed("設置日期", ["民國112年1月31日", "民國100年4月2日"])
    assert cells(r, "設置日期") == [dt.date(2023, 1, 31), dt.date(2011, 4, 2)]
    r = typed("日期", ["112.01.31", "112年2月1日"])
    assert cells(r, "日期") == [dt.date(2023, 1, 31), dt.date(2023, 2, 1)]


def test_iso_dates_need_no_raw_column():
    r = typed("日期", ["2023-01-31", "2015-12-31"])
    assert cells(r, "日期") == [dt.date(2023, 1, 31), dt.date(2015, 12, 31)]
    assert list(r.frame.columns) == ["日期"]
    assert field_types(r) == {"日期": "date"}


def test_gregorian_slash_dates_keep_their_text():
    r = typed("日期", ["2023/1/31", "2023/02/01"])
    assert cells(r, "日期") == [dt.date(2023, 1, 31), dt.date(2023, 2, 1)]
    assert cells(r, "日期_raw") == ["2023/1/31", "2023/02/01"]


def test_compact_roc_dates_only_under_a_date_header():
    r = typed("核准日期", ["1120131", "1041231"])
    assert cells(r, "核准日期") == [dt.date(2023, 1, 31), dt.date(2015, 12, 31)]
    assert cells(r, "核准日期_raw") == ["1120131", "1041231"]
    assert "compact ROC" in r.decisions[0].detail
    r = typed("設立日", ["1120131", "1041231"])
    assert field_types(r)["設立日"] == "date"
    r = typed("數量", ["1120131", "1041231"])  # no date header: numbers
    assert cells(r, "數量") == [1120131, 1041231]
    r = typed("日期", ["1120131", "20230131"])  # not all seven digits: no compact dates
    assert field_types(r) == {"日期": "integer"}
    r = typed("日期", ["1120131", "1121331"])  # month 13: not dates
    assert field_types(r) == {"日期": "integer"}


def test_datetimes():
    r = typed("更新時間", ["2017-08-18 15:37:43", "2017-08-18 14:38:42"])
    assert cells(r, "更新時間") == [
        dt.datetime(2017, 8, 18, 15, 37, 43),
        dt.datetime(2017, 8, 18, 14, 38, 42),
    ]
    assert field_types(r) == {"更新時間": "datetime"}


def test_dates_and_datetimes_mix_to_datetime():
    r = typed("時間", ["2023-01-31", "2023-01-31 08:00", None])
    assert field_types(r) == {"時間": "datetime"}
    assert str(r.frame["時間"].dtype).startswith("datetime64")
    assert cells(r, "時間") == [dt.datetime(2023, 1, 31), dt.datetime(2023, 1, 31, 8), None]


def test_python_values_in_other_columns_give_their_field_type():
    frame = pd.DataFrame(
        {
            "整數": pd.Series([1, 2, None], dtype=object),
            "小數": pd.Series([1.5, 2, None], dtype=object),
            "布林": pd.Series([True, False, None], dtype=object),
            "日期": pd.Series([dt.date(2020, 1, 1), None, None], dtype=object),
            "文字": pd.Series(["a", None, None], dtype=object),
        }
    )
    r = type_columns(frame, [])
    assert field_types(r) == {
        "整數": "integer",
        "小數": "decimal",
        "布林": "boolean",
        "日期": "date",
        "文字": "string",
    }


def test_booleans():
    r = typed("啟用", ["TRUE", "FALSE", None])
    assert cells(r, "啟用") == [True, False, None]
    assert field_types(r) == {"啟用": "boolean"}


def test_null_tokens_become_null_and_their_text_is_kept():
    r = typed("人口", ["12", "-", "無", "  ", "", None, "3"])
    assert cells(r, "人口") == [12, None, None, None, None, None, 3]
    assert cells(r, "人口_raw") == ["12", "-", "無", None, None, None, "3"]
    assert "'-' or '無'" in r.decisions[0].detail


def test_a_column_of_only_null_tokens_stays_text():
    r = typed("備註", ["-", "無", None])
    assert field_types(r) == {"備註": "string"}
    assert cells(r, "備註") == ["-", "無", None]
    assert r.decisions == []


def test_blank_text_becomes_null_in_text_columns():
    r = typed("名稱", ["甲", "", "   ", None])
    assert cells(r, "名稱") == ["甲", None, None, None]


def test_leading_zeros_are_never_converted():
    r = typed("類別", ["0010", "12", "13"])
    assert field_types(r) == {"類別": "string"}
    assert cells(r, "類別") == ["0010", "12", "13"]
    (d,) = r.decisions
    assert d.value == "string" and "leading zeros" in d.detail
    r = typed("行政區", ["066000", "066001"])
    assert cells(r, "行政區") == ["066000", "066001"]


@pytest.mark.parametrize("name", ["編號", "代碼", "電話", "郵遞區號", "ID", "TOWNCODE", "號", "巷"])
def test_identifier_columns_stay_text(name):
    r = typed(name, ["400", "406", "1234"])
    assert field_types(r) == {name: "string"}
    assert cells(r, name) == ["400", "406", "1234"]
    (d,) = r.decisions
    assert d.value == "string" and "identifier" in d.detail


def test_mixed_columns_stay_text():
    r = typed("資料量", ["13", "24筆", "5"])
    assert field_types(r) == {"資料量": "string"}
    assert cells(r, "資料量") == ["13", "24筆", "5"]
    assert "mixed" in r.decisions[0].detail
    r = typed("值", ["12", "2023-01-31"])  # numbers and dates
    assert field_types(r) == {"值": "string"}
    r = typed("名稱", ["中央公園", "12"])  # text first: plain text, nothing to say
    assert field_types(r) == {"名稱": "string"}
    assert r.decisions == []


def test_raw_columns_sit_right_after_and_other_columns_pass_through():
    frame = pd.DataFrame(
        {
            "名稱": ["甲", "乙"],
            "車位數": ["1,234", None],  # pandas' own string dtype is fine too
            "面積": [1.5, 2.5],  # a typed (non-text) column: not touched
            "日期": ["112/01/31", "112/02/01"],
        },
        index=[10, 11],
    )
    r = type_columns(frame, ["名稱", "車位數", "日期"])
    assert list(r.frame.columns) == ["名稱", "車位數", "車位數_raw", "面積", "日期", "日期_raw"]
    assert list(r.frame.index) == [10, 11]
    assert [f.name for f in r.fields] == list(r.frame.columns)
    assert field_types(r)["面積"] == "decimal"
    assert list(r.frame["面積"]) == [1.5, 2.5]
    assert cells(r, "日期") == [dt.date(2023, 1, 31), dt.date(2023, 2, 1)]
    assert cells(r, "車位數") == [1234, None]
    assert cells(r, "車位數_raw") == ["1,234", None]


def test_a_raw_name_already_taken_gets_another():
    frame = pd.DataFrame({"車位數": ["1,234"], "車位數_raw": ["x"]}, dtype=object)
    r = type_columns(frame, ["車位數", "車位數_raw"])
    assert list(r.frame.columns) == ["車位數", "車位數_raw2", "車位數_raw"]
    assert r.fields[1] == FieldInfo("車位數_raw2", "string", raw_of="車位數")


def test_unknown_columns_are_an_error():
    with pytest.raises(KeyError, match="不存在"):
        type_columns(pd.DataFrame({"a": ["1"]}), ["不存在"])


def test_an_empty_frame():
    r = type_columns(pd.DataFrame({"a": pd.Series([], dtype=object)}), ["a"])
    assert list(r.frame.columns) == ["a"] and len(r.frame) == 0
    assert r.fields == [FieldInfo("a", "string")]


def test_the_input_frame_is_not_changed():
    frame = pd.DataFrame({"車位數": pd.Series(["1,234", None], dtype=object)})
    type_columns(frame, ["車位數"])
    assert list(frame["車位數"]) == ["1,234", None]
