"""The tabular readers against the sample corpus's CSV layers, real files and Excel built here.

Every CSV layer of the small corpus is read with ``DelimitedTextReader`` and typed with
``type_columns``, then checked against expected.json: record count, null geometries, the
points' bounds in the file's own CRS, the exact typed values of the samples and the raw text
kept where parsing changed it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
import yaml

from catalog.model import Decision
from geoportal.sample.formats import LFS_POINTER
from ingest import encoding as enc
from ingest.attributes import TypedResult, type_columns
from ingest.errors import SourceRefused
from ingest.readers.base import RawLayer, ReadOptions
from ingest.readers.tabular import (
    READERS,
    DelimitedTextReader,
    ExcelReader,
    cell_text,
    classify_header,
    decode_big5_line,
    range_kind,
)

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"
CONVENIENCE = REAL / "ChiaJung-Yeh-Spatial-Analysis/data/convenience_store/convenience_store.csv"
TAINAN_HOUSES = REAL / "kiang-tainan_basecode/house/data/raw.csv"

CSV = DelimitedTextReader()
EXCEL = ExcelReader()


# --- helpers -------------------------------------------------------------------------------------


def manifest(corpus: Path) -> dict[str, dict]:
    """layers.yaml entries by id (they carry the crs/x/y overrides)."""
    doc = yaml.safe_load((corpus / "layers.yaml").read_text(encoding="utf-8"))
    return {e["id"]: e for e in doc["layers"]}


def options_for(corpus: Path, layer: dict) -> ReadOptions:
    entry = manifest(corpus)[layer["entry"]]
    return ReadOptions(
        display=layer["source"], crs=entry.get("crs"), x=entry.get("x"), y=entry.get("y")
    )


def read(corpus: Path, layer: dict) -> tuple[RawLayer, TypedResult]:
    raw = CSV.read(corpus / layer["source"], None, options_for(corpus, layer))
    return raw, type_columns(raw.attributes, raw.text_columns)


def csv_layers(expected: dict) -> list[dict]:
    return [v for v in expected["layers"].values() if v["format"] == "csv"]


def layer(expected: dict, layer_id: str) -> dict:
    return expected["layers"][layer_id]


def decision(raw: RawLayer, kind: str) -> Decision:
    found = [d for d in raw.decisions if d.kind == kind]
    assert found, f"no {kind!r} decision in {raw.decisions}"
    return found[0]


def is_null(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def plain(v: object) -> object:
    """A typed cell in the form expected.json writes it (dates as ISO strings)."""
    if is_null(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def sample_row(frame: pd.DataFrame, where: dict) -> int:
    ((key, value),) = where.items()
    hits = np.flatnonzero(frame[key].to_numpy(dtype=object) == value)
    assert len(hits) == 1, f"{where}: {len(hits)} rows"
    return int(hits[0])


def point_bounds(geometry: np.ndarray) -> np.ndarray:
    present = np.array([g for g in geometry if g is not None], dtype=object)
    return shapely.total_bounds(present)


# --- every CSV layer of the small corpus ---------------------------------------------------------


def test_the_corpus_has_the_csv_layers_this_file_checks(expected):
    ids = {v["id"] for v in csv_layers(expected)}
    assert {
        "door-plates",
        "public-parking",
        "recycling-stations",
        "evacuation-shelters",
        "control-points-twd67",
        "polling-stations",
        "aed-locations",
    } <= ids


def test_every_csv_layer_reads_with_its_counts_and_bounds(small_corpus, expected):
    for lay in csv_layers(expected):
        raw, _ = read(small_corpus, lay)
        assert len(raw.attributes) == lay["feature_count"], lay["id"]
        assert raw.geometry is not None, lay["id"]
        assert len(raw.geometry) == lay["feature_count"], lay["id"]
        assert sum(g is None for g in raw.geometry) == lay["null_geometries"], lay["id"]
        # TM2 is written to 0.001 m, degrees to 7 decimals (and the truth snapped to them)
        atol = 1e-7 if lay["crs"] == "EPSG:4326" else 1e-3
        np.testing.assert_allclose(
            point_bounds(raw.geometry), lay["bbox_source"], rtol=0, atol=atol, err_msg=lay["id"]
        )
        assert all(g is None or g.geom_type == "Point" for g in raw.geometry)


def test_every_csv_layer_types_the_samples_exactly(small_corpus, expected):
    for lay in csv_layers(expected):
        _, typed = read(small_corpus, lay)
        frame = typed.frame
        for sample in lay["samples"]:
            i = sample_row(frame, sample["where"])
            for col, want in sample["attributes"].items():
                got = plain(frame[col].iloc[i])
                if want in ("", None):
                    assert got is None, (lay["id"], col, got)
                elif isinstance(want, float):
                    assert got == pytest.approx(want), (lay["id"], col)
                else:
                    assert got == want, (lay["id"], col, got, want)
                    assert type(got) is type(want), (lay["id"], col, got, want)


def test_every_csv_layer_keeps_the_raw_text_where_parsing_changed_it(small_corpus, expected):
    for lay in csv_layers(expected):
        raw, typed = read(small_corpus, lay)
        frame = typed.frame
        raw_of = {f.name: f.raw_of for f in typed.fields if f.raw_of}
        for sample in lay["samples"]:
            i = sample_row(frame, sample["where"])
            for col, text in sample.get("raw", {}).items():
                if col in frame.columns:
                    kept = f"{col}_raw"
                    assert raw_of.get(kept) == col, (lay["id"], col, typed.fields)
                    assert frame[kept].iloc[i] == text, (lay["id"], col)
                    assert list(frame.columns).index(kept) == list(frame.columns).index(col) + 1
                else:  # a coordinate column: its text is the point
                    point = raw.geometry[i]
                    if text == "":
                        assert point is None
                    else:
                        assert float(text) in (pytest.approx(point.x), pytest.approx(point.y))


def test_every_csv_layer_keeps_source_column_order_without_the_coordinates(small_corpus, expected):
    for lay in csv_layers(expected):
        raw, _ = read(small_corpus, lay)
        want = list(lay["samples"][0]["attributes"])
        assert list(raw.attributes.columns) == want, lay["id"]
        assert raw.text_columns == tuple(want)
        assert all(
            v is None or isinstance(v, str) for c in raw.attributes for v in raw.attributes[c]
        )


def test_encoding_decisions_come_from_the_bytes(small_corpus, expected):
    for lay in csv_layers(expected):
        raw, _ = read(small_corpus, lay)
        d = decision(raw, "encoding")
        assert d.value == lay["encoding"], lay["id"]
    parking, _ = read(small_corpus, layer(expected, "public-parking"))
    assert decision(parking, "encoding").value == "cp950"
    assert decision(parking, "encoding").source == "bytes"
    doors, _ = read(small_corpus, layer(expected, "door-plates"))
    assert decision(doors, "encoding") == Decision(
        "encoding", "utf-8", "bom", 1.0, "UTF-8 byte-order mark"
    )
    assert "編號" in doors.attributes.columns  # the BOM is not part of the first name


def test_delimiters_are_sniffed(small_corpus, expected):
    want = {"recycling-stations": "|", "aed-locations": "tab", "door-plates": ","}
    for lid, value in want.items():
        raw, _ = read(small_corpus, layer(expected, lid))
        assert decision(raw, "delimiter").value == value


def test_two_header_rows_keep_the_chinese_names(small_corpus, expected):
    raw, typed = read(small_corpus, layer(expected, "recycling-stations"))
    d = decision(raw, "header_rows")
    assert d.value == "2"
    assert "Longitude" in d.detail
    assert list(raw.attributes.columns)[:2] == ["編號", "名稱"]
    assert raw.attributes["編號"].iloc[0] == "RC00001"  # the English row is not a record
    units = {d.value: d.detail for d in typed.decisions if "服務半徑" in d.detail}
    assert "公尺" in units["integer"]


def test_swapped_lat_lon_headers_are_detected_and_undone(small_corpus, expected):
    lay = layer(expected, "evacuation-shelters")
    raw, _ = read(small_corpus, lay)
    d = decision(raw, "columns")
    assert d.source == "values"
    assert "headers 經度/緯度 are swapped" in d.detail
    assert d.value == "緯度,經度"
    xs = [g.x for g in raw.geometry]
    ys = [g.y for g in raw.geometry]
    assert min(xs) > 118 and max(xs) < 123
    assert min(ys) > 21 and max(ys) < 27
    assert raw.crs_wkt is None and raw.crs_evidence == "none"


def test_tm2_columns_are_reported_as_projected(small_corpus, expected):
    for lid, names in (("door-plates", "橫座標,縱座標"), ("aed-locations", "X坐標,Y坐標")):
        raw, _ = read(small_corpus, layer(expected, lid))
        assert decision(raw, "columns").value == names
        assert decision(raw, "coordinates").value == "tm2-metres"
        assert raw.crs_evidence == "none"


def test_manifest_overrides_name_the_columns_and_the_crs(small_corpus, expected):
    lay = layer(expected, "control-points-twd67")
    raw, _ = read(small_corpus, lay)
    assert decision(raw, "columns") == Decision(
        "columns",
        "橫坐標67,縱坐標67",
        "manifest",
        1.0,
        "x from 橫坐標67, y from 縱坐標67, as the manifest says",
    )
    assert raw.crs_evidence == "manifest"
    assert "TWD67" in raw.crs_wkt
    assert list(raw.attributes.columns) == ["點號", "點名", "行政區"]


def test_without_overrides_the_twd67_columns_are_still_found(small_corpus, expected):
    lay = layer(expected, "control-points-twd67")
    raw = CSV.read(small_corpus / lay["source"], None, ReadOptions(lay["source"]))
    assert decision(raw, "columns").value == "橫坐標67,縱坐標67"
    assert raw.crs_wkt is None
    np.testing.assert_allclose(point_bounds(raw.geometry), lay["bbox_source"], atol=1e-3)


def test_override_column_missing_is_refused(small_corpus, expected):
    lay = layer(expected, "control-points-twd67")
    opts = ReadOptions(lay["source"], x="X", y="縱坐標67")
    with pytest.raises(SourceRefused, match=r"三角點_TWD67.csv: .*coordinate column 'X'") as e:
        CSV.read(small_corpus / lay["source"], None, opts)
    assert e.value.reason == "column-missing"


def test_embedded_newlines_survive(small_corpus, expected):
    lay = layer(expected, "polling-stations")
    raw, typed = read(small_corpus, lay)
    sample = lay["samples"][0]
    i = sample_row(raw.attributes, sample["where"])
    assert raw.attributes["備註"].iloc[i] == sample["attributes"]["備註"]
    assert "\r\n" in raw.attributes["備註"].iloc[i]
    assert typed.frame["設置日期"].iloc[i] == dt.date.fromisoformat(
        sample["attributes"]["設置日期"]
    )


def test_the_supply_list_is_a_table_without_geometry(small_corpus, expected):
    supply = expected["supply_list"]
    raw = CSV.read(small_corpus / supply["path"], None, ReadOptions(supply["path"]))
    assert raw.geometry is None
    assert raw.crs_wkt is None
    assert len(raw.attributes) == len(supply["rows"])
    assert list(raw.attributes["資料集名稱"]) == [r["title"] for r in supply["rows"]]
    assert list(raw.attributes["更新頻率"]) == [r["update_frequency"] for r in supply["rows"]]
    assert not [d for d in raw.decisions if d.kind == "columns"]


# --- refusals and repairs ------------------------------------------------------------------------


def test_a_git_lfs_pointer_is_refused(tmp_path):
    path = tmp_path / "交通量.csv"
    path.write_text(LFS_POINTER, encoding="ascii")
    with pytest.raises(SourceRefused, match=r"交通量.csv: .*Git-LFS pointer.*git lfs pull") as e:
        CSV.read(path, None, ReadOptions("交通局/交通量.csv"))
    assert e.value.reason == "git-lfs-pointer"
    assert e.value.source == "交通局/交通量.csv"
    xlsx = tmp_path / "a.xlsx"
    xlsx.write_text(LFS_POINTER, encoding="ascii")
    with pytest.raises(SourceRefused, match="git lfs pull"):
        EXCEL.read(xlsx, None, ReadOptions("a.xlsx"))


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n", b"\xef\xbb\xbf", b"  \n"])
def test_an_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "空.csv"
    path.write_bytes(content)
    with pytest.raises(SourceRefused, match=r"^空.csv: 空.csv is empty") as e:
        CSV.read(path, None, ReadOptions("空.csv"))
    assert e.value.reason == "empty"


def test_undecodable_bytes_are_replaced_and_reported_with_their_lines(tmp_path):
    path = tmp_path / "壞.csv"
    body = (
        "名稱,值\r\n臺中,1\r\n".encode("cp950") + b"\xff\xff,2\r\n" + "南屯,3\r\n".encode("cp950")
    )
    path.write_bytes(body)
    raw = CSV.read(path, None, ReadOptions("壞.csv"))
    d = decision(raw, "encoding")
    assert (d.value, d.source) == ("cp950", "bytes")
    assert d.confidence < 0.5
    (repair,) = [r for r in raw.repairs if r.kind == "undecodable-bytes"]
    assert repair.count == 1
    assert repair.records == ("line 3",)
    # an invalid byte never swallows the delimiter after it
    assert list(raw.attributes["值"]) == ["1", "2", "3"]
    assert raw.attributes["名稱"].iloc[1] == "\ufffd\ufffd"
    assert raw.attributes["名稱"].iloc[2] == "南屯"


def test_big5_vendor_characters_are_mapped_and_reported(tmp_path):
    path = tmp_path / "里.csv"
    path.write_bytes("村里,人口\r\n".encode("cp950") + b"\x9a\xac" + "埕里,12\r\n".encode("cp950"))
    raw = CSV.read(path, None, ReadOptions("里.csv"))
    assert raw.attributes["村里"].iloc[0] == "塩埕里"
    assert decision(raw, "encoding").value == "cp950"
    (repair,) = raw.repairs
    assert (repair.kind, repair.count, repair.records) == ("vendor-char", 1, ("line 2",))


def test_decode_big5_line_takes_pairs_only_with_a_valid_trail_byte():
    log = enc.DecodeLog()
    assert decode_big5_line(b"\xfa,1", "line 1", log) == "\ufffd,1"
    assert log.undecodable == ["line 1"]


def test_an_encoding_override_wins(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("名稱,值\r\n臺中,1\r\n".encode("cp950"))
    raw = CSV.read(path, None, ReadOptions("a.csv", encoding="big5"))
    assert decision(raw, "encoding") == Decision(
        "encoding", "cp950", "manifest", 1.0, "as the manifest says"
    )
    assert raw.attributes["名稱"].iloc[0] == "臺中"
    with pytest.raises(SourceRefused, match="not a known encoding") as e:
        CSV.read(path, None, ReadOptions("a.csv", encoding="klingon"))
    assert e.value.reason == "unknown-encoding"


def test_blank_lines_and_a_title_above_the_header_are_skipped(tmp_path):
    path = tmp_path / "公園.csv"
    path.write_text(
        "\r\n\r\n臺中市公園一覽表\r\n名稱,面積,經度,緯度\r\n"
        '中央公園,"1,234",120.6,24.1\r\n,,,\r\n南屯公園,35,120.7,24.2\r\n\r\n',
        encoding="utf-8",
    )
    raw = CSV.read(path, None, ReadOptions("公園.csv"))
    assert list(raw.attributes.columns) == ["名稱", "面積"]
    assert list(raw.attributes["名稱"]) == ["中央公園", "南屯公園"]
    d = decision(raw, "header_rows")
    assert d.value == "1"
    assert "line 4" in d.detail and "臺中市公園一覽表" in d.detail
    (repair,) = raw.repairs
    assert (repair.kind, repair.count, repair.records) == ("empty-rows", 1, ("line 6",))


def test_ragged_rows_and_unparseable_coordinates_are_reported(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "代碼,名稱,X,Y\n"
        "1,a,200000,2600000,extra\n"
        "2\n"
        '3,c,"２０１,０００.5",２６００１００\n'
        "4,d,abc,2600000\n",
        encoding="utf-8",
    )
    raw = CSV.read(path, None, ReadOptions("r.csv"))
    assert [None if g is None else (g.x, g.y) for g in raw.geometry] == [
        (200000.0, 2600000.0),
        None,
        (201000.5, 2600100.0),
        None,
    ]
    assert list(raw.attributes["名稱"]) == ["a", None, "c", "d"]
    assert list(raw.attributes["column_5"]) == ["extra", None, None, None]  # nothing dropped
    assert any("column 5 has no name but 1 value(s) (line 2)" in w for w in raw.warnings)
    assert any("line 5: 'abc'" in w for w in raw.warnings)


def test_unnamed_columns_are_dropped_when_empty_and_named_when_not(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("名稱,面積,,\r\n甲,1,x,\r\n乙,2,,\r\n", encoding="utf-8")
    raw = CSV.read(path, None, ReadOptions("t.csv"))
    assert list(raw.attributes.columns) == ["名稱", "面積", "column_3"]
    assert list(raw.attributes["column_3"]) == ["x", None]
    (warning,) = raw.warnings
    assert warning.startswith("column 3 has no name but 1 value(s) (line 2): named 'column_3'")


def test_repeated_names_are_made_unique(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("名稱,名稱,備註\n甲,乙,丙\n", encoding="utf-8")
    raw = CSV.read(path, None, ReadOptions("t.csv"))
    assert list(raw.attributes.columns) == ["名稱", "名稱_2", "備註"]
    assert any("repeats" in w for w in raw.warnings)


def test_tab_and_semicolon_files(tmp_path):
    tsv = tmp_path / "a.tsv"
    tsv.write_text("名稱\t經度\t緯度\n甲\t120.5\t24.1\n", encoding="utf-8")
    raw = CSV.read(tsv, None, ReadOptions("a.tsv"))
    assert decision(raw, "delimiter").value == "tab"
    assert raw.geometry[0].equals(shapely.Point(120.5, 24.1))
    semi = tmp_path / "b.csv"
    semi.write_text("name;lon;lat\nA;120.5;24.1\n", encoding="utf-8")
    raw = CSV.read(semi, None, ReadOptions("b.csv"))
    assert decision(raw, "delimiter").value == ";"
    assert list(raw.attributes.columns) == ["name"]


def test_a_table_without_coordinates_has_no_geometry(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("年度,人口\n112,2800000\n", encoding="utf-8")
    raw = CSV.read(path, None, ReadOptions("t.csv", crs="EPSG:3826"))
    assert raw.geometry is None
    assert raw.crs_wkt is None and raw.crs_evidence == "none"
    assert list(raw.attributes.columns) == ["年度", "人口"]


def test_columns_named_x_y_that_hold_no_numbers_are_not_coordinates(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("X,Y\na,b\nc,d\n", encoding="utf-8")
    raw = CSV.read(path, None, ReadOptions("t.csv"))
    assert raw.geometry is None
    assert list(raw.attributes.columns) == ["X", "Y"]


# --- header classification and ranges ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "axis", "family"),
    [
        ("經度", "x", "lonlat"),
        ("緯度", "y", "lonlat"),
        ("Longitude", "x", "lonlat"),
        (" LAT ", "y", "lonlat"),
        ("lng", "x", "lonlat"),
        ("經度(WGS84)", "x", "lonlat"),
        ("X坐標", "x", "projected"),
        ("Y座標", "y", "projected"),
        ("TWD97X", "x", "projected"),
        ("TWD97_Y", "y", "projected"),
        ("POINT_X", "x", "projected"),
        ("橫坐標", "x", "projected"),
        ("縱座標", "y", "projected"),
        ("Ｘ坐標", "x", "projected"),
        ("x", "x", "projected"),
        ("E", "x", "projected"),
        ("N", "y", "projected"),
    ],
)
def test_classify_header(name, axis, family):
    got = classify_header(name)
    assert got is not None and got[:2] == (axis, family)


@pytest.mark.parametrize("name", ["名稱", "地址", "Name", "面積", "經費", "index", "緯"])
def test_classify_header_ignores_other_names(name):
    assert classify_header(name) is None


def test_range_kind():
    lon, lat = np.array([120.5, 121.0]), np.array([24.1, 24.5])
    assert range_kind(lon, lat)[0] == "degrees"
    assert range_kind(lat, lon)[0] == "degrees-swapped"
    x, y = np.array([205000.0, 240000.0]), np.array([2660000.0, 2700000.0])
    assert range_kind(x, y)[0] == "tm2"
    assert range_kind(y, x)[0] == "tm2-swapped"
    assert range_kind(np.array([5e6]), np.array([5e6]))[0] == "unknown"


# --- Excel ---------------------------------------------------------------------------------------


def _workbook(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "公園"
    ws.append(["名稱", "開放日期", "面積", "TWD97X", "TWD97Y"])
    ws.append(["中央公園", "112/01/31", 12.5, 210000.5, 2670000.25])
    ws.append(["南屯公園", dt.datetime(2023, 2, 1), 3, None, None])
    ws.append(["編號0", "民國100年4月2日", 1200, 215000, 2680000])
    stats = wb.create_sheet("統計")
    stats.append(["臺中市人口統計"])
    stats.append(["區", "人口", "郵遞區號"])
    stats.append(["中區", 18000, "400"])
    stats.append(["北屯區", 300000, "406"])
    wb.create_sheet("空白")
    wb.save(path)


def test_excel_sheets_are_sublayers(tmp_path):
    path = tmp_path / "公園.xlsx"
    _workbook(path)
    assert EXCEL.sublayers(path) == ["公園", "統計"]


def test_excel_sheet_with_coordinates_and_roc_dates(tmp_path):
    path = tmp_path / "公園.xlsx"
    _workbook(path)
    raw = EXCEL.read(path, "公園", ReadOptions("公園.xlsx"))
    assert raw.sublayer == "公園"
    assert list(raw.attributes.columns) == ["名稱", "開放日期", "面積"]
    assert [None if g is None else (g.x, g.y) for g in raw.geometry] == [
        (210000.5, 2670000.25),
        None,
        (215000.0, 2680000.0),
    ]
    assert decision(raw, "coordinates").value == "tm2-metres"
    typed = type_columns(raw.attributes, raw.text_columns)
    assert [plain(v) for v in typed.frame["開放日期"]] == ["2023-01-31", "2023-02-01", "2011-04-02"]
    assert list(typed.frame["開放日期_raw"]) == ["112/01/31", "2023-02-01", "民國100年4月2日"]
    assert list(typed.frame["面積"]) == [12.5, 3.0, 1200.0]


def test_excel_title_row_and_a_table_sheet(tmp_path):
    path = tmp_path / "公園.xlsx"
    _workbook(path)
    raw = EXCEL.read(path, "統計", ReadOptions("公園.xlsx"))
    assert raw.geometry is None
    assert list(raw.attributes.columns) == ["區", "人口", "郵遞區號"]
    assert "row 2" in decision(raw, "header_rows").detail
    typed = type_columns(raw.attributes, raw.text_columns)
    assert list(typed.frame["人口"]) == [18000, 300000]
    assert list(typed.frame["郵遞區號"]) == ["400", "406"]


def test_excel_without_a_sheet_name_reads_the_first_sheet_with_data(tmp_path):
    path = tmp_path / "公園.xlsx"
    _workbook(path)
    raw = EXCEL.read(path, None, ReadOptions("公園.xlsx"))
    assert decision(raw, "sheet").value == "公園"
    assert any("2 sheets" in w for w in raw.warnings)
    with pytest.raises(SourceRefused, match="no sheet '其他'") as e:
        EXCEL.read(path, "其他", ReadOptions("公園.xlsx"))
    assert e.value.reason == "no-such-sheet"


def test_excel_single_sheet_has_no_sublayers(tmp_path):
    path = tmp_path / "one.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["name", "lon", "lat"])
    wb.active.append(["A", 120.1, 23.5])
    wb.save(path)
    assert EXCEL.sublayers(path) == []
    raw = EXCEL.read(path, None, ReadOptions("one.xlsx", crs="EPSG:4326"))
    assert raw.geometry[0].equals(shapely.Point(120.1, 23.5))
    assert raw.crs_evidence == "manifest" and "WGS 84" in raw.crs_wkt


def test_a_broken_workbook_is_refused(tmp_path):
    path = tmp_path / "壞.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(SourceRefused, match=r"壞.xlsx: cannot open the workbook") as e:
        EXCEL.read(path, None, ReadOptions("壞.xlsx"))
    assert e.value.reason == "unreadable-spreadsheet"
    html = tmp_path / "表.xls"
    html.write_text("<html><table><tr><td>1</td></tr></table></html>", encoding="utf-8")
    with pytest.raises(SourceRefused, match="HTML") as e:
        EXCEL.read(html, None, ReadOptions("表.xls"))
    assert e.value.reason == "html-not-spreadsheet"


def test_a_csv_posing_as_xls_is_read_as_text(tmp_path):
    path = tmp_path / "假.xls"
    path.write_bytes("名稱,經度,緯度\r\n甲,120.5,24.1\r\n".encode("cp950"))
    raw = EXCEL.read(path, None, ReadOptions("假.xls"))
    assert raw.attributes["名稱"].iloc[0] == "甲"
    assert decision(raw, "encoding").value == "cp950"
    assert "not a workbook" in raw.warnings[0]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "TRUE"),
        (12.0, "12"),
        (120.6450483, "120.6450483"),
        (dt.datetime(2023, 1, 31), "2023-01-31"),
        (dt.datetime(2023, 1, 31, 8, 30), "2023-01-31 08:30:00"),
        (dt.date(2023, 1, 31), "2023-01-31"),
        ("0010", "0010"),
    ],
)
def test_cell_text(value, text):
    assert cell_text(value) == text


def test_the_registry_exposes_both_readers():
    assert READERS["csv"].name == "csv" and READERS["excel"].name == "excel"
    assert ".txt" in READERS["csv"].suffixes and ".xls" in READERS["excel"].suffixes


# --- real files (read in place; skipped when absent) ---------------------------------------------


@pytest.mark.realdata
def test_real_convenience_stores_big5_lon_lat():
    if not CONVENIENCE.is_file():
        pytest.skip(f"real data not present at {CONVENIENCE}")
    raw = CSV.read(CONVENIENCE, None, ReadOptions("convenience_store.csv"))
    # counted independently: csv module over the bytes decoded as cp950 (no BOM, not UTF-8)
    assert len(raw.attributes) == 11368
    assert decision(raw, "encoding").value == "cp950"
    assert decision(raw, "encoding").source == "bytes"
    assert decision(raw, "columns").value == "lon,lat"
    assert sum(g is None for g in raw.geometry) == 0
    np.testing.assert_allclose(
        point_bounds(raw.geometry),
        [118.247347700767, 21.9072979610047, 121.944932092761, 26.2243370800698],
    )
    first = raw.attributes.iloc[0].to_dict()
    assert first == {
        "company": "7_11",
        "store": "篤勝門市",
        "code": "209122",
        "address": "基隆市七堵區大德路103號",
        "phone": "02-24516884",
    }
    assert raw.geometry[0].equals(shapely.Point(121.691537764668, 25.0828094809969))
    last = raw.attributes.iloc[-1]
    assert (last["store"], last["address"]) == ("OK蘇澳蘇港店", "宜蘭縣蘇澳鎮蘇港路397號、399號1樓")
    counts = raw.attributes["company"].value_counts().to_dict()
    assert counts == {"7_11": 6478, "全家便利商店": 3984, "OK便利商店": 764, "萊爾富便利商店": 142}
    typed = type_columns(raw.attributes, raw.text_columns)
    assert all(f.type == "string" for f in typed.fields)  # "code" is an identifier
    assert typed.frame["code"].iloc[-1] == "1104"


@pytest.mark.realdata
def test_real_tainan_houses_tm2_with_missing_coordinates():
    if not TAINAN_HOUSES.is_file():
        pytest.skip(f"real data not present at {TAINAN_HOUSES}")
    raw = CSV.read(TAINAN_HOUSES, None, ReadOptions("raw.csv"))
    assert len(raw.attributes) == 280
    assert decision(raw, "encoding").value == "utf-8"
    assert decision(raw, "columns").value == "X坐標,Y坐標"
    assert decision(raw, "coordinates").value == "tm2-metres"
    missing = [i for i, g in enumerate(raw.geometry) if g is None]
    assert missing == [253, 254, 255, 259, 260, 271]  # data rows 254, 255, 256, 260, 261, 272
    assert list(raw.attributes.columns) == ["原地址", "結果地址", "說明"]
    assert raw.attributes["原地址"].iloc[254] == "台南市 城東段556地號"
    assert raw.attributes["結果地址"].iloc[254] is None
    assert raw.attributes["說明"].iloc[254] == "查無符合門牌地址"
    assert raw.geometry[0].equals(shapely.Point(166111.32, 2544057.74))
    assert raw.attributes["結果地址"].iloc[0] == "臺南市安平區建平里13鄰建平十四街105號"
    np.testing.assert_allclose(
        point_bounds(raw.geometry), [161837.71, 2539993.39, 174404.56, 2570381.49]
    )


def test_expected_json_is_what_these_tests_read(small_corpus):
    # guards the helpers above: layers.yaml and expected.json agree on the CSV entries
    exp = json.loads((small_corpus / "expected.json").read_text(encoding="utf-8"))
    entries = manifest(small_corpus)
    for lay in csv_layers(exp):
        assert entries[lay["entry"]]["source"] == lay["source"]
