"""ingest.manifest: manifests, supply lists, folders and single files → LayerSpecs."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
import yaml

from ingest.errors import ManifestError
from ingest.manifest import (
    ENTRY_KEYS,
    NO_SOURCE,
    UPDATE_FREQUENCIES,
    LoadResult,
    canonical_encoding,
    crs_from_text,
    encoding_from_text,
    header_field,
    layer_id,
    load_specs,
    normalise_update_frequency,
    parse_crs,
    slugify,
    split_keywords,
)

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
TAOYUAN = REAL / "opendata-tw-datapackage" / "tycg_opendata_supply_list.xls"
TAICHUNG = REAL / "DragonChen-opendata-tw-list-crawler" / "out" / "raw" / "08_Taichung.csv"
ID_RE = re.compile(r"[a-z0-9-]+")


@pytest.fixture(scope="module")
def real() -> Path:
    """The real-data folder, read in place; skip when it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real data not present at {REAL}")
    return REAL


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def by_id(result: LoadResult) -> dict:
    return {s.id: s for s in result.specs}


# --- the sample corpus: layers.yaml ---------------------------------------------------------
# Positions and values are taken from expected.json and the raw YAML (read with yaml, not with
# the loader), so the tests follow the generator when its corpus changes.


@pytest.fixture(scope="module")
def raw_manifest(small_corpus) -> dict:
    return yaml.safe_load((small_corpus / "layers.yaml").read_text(encoding="utf-8"))


def test_sample_manifest_yields_exactly_the_expected_entries(small_corpus, expected):
    result = load_specs([small_corpus / "layers.yaml"])
    got = [(s.id, s.source, s.layer) for s in result.specs]
    assert got == [(e["id"], e["source"], e["layer"]) for e in expected["entries"]]
    assert all(s.base == small_corpus.resolve() for s in result.specs)
    assert result.skipped == []


def test_sample_manifest_keeps_overrides_and_merges_defaults(small_corpus, expected, raw_manifest):
    specs = by_id(load_specs([small_corpus / "layers.yaml"]))
    cp = specs["control-points-twd67"]
    assert (cp.crs, cp.x, cp.y) == ("EPSG:3828", "橫坐標67", "縱坐標67")
    assert cp.crs == expected["layers"]["control-points-twd67"]["crs"]
    index = [e["id"] for e in expected["entries"]].index("control-points-twd67") + 1
    assert cp.origin.endswith(f"layers.yaml: entry {index} (id control-points-twd67)")
    defaults = raw_manifest["defaults"]
    for entry in raw_manifest["layers"]:
        spec = specs[entry["id"]]
        assert spec.agency == entry.get("agency", defaults["agency"])
        assert spec.license == defaults["license"] == "OGDL-Taiwan-1.0"
        assert spec.keywords == tuple(entry["keywords"])
        assert (spec.title, spec.title_en) == (entry["title"], entry["title_en"])
        assert spec.crs == entry.get("crs")  # only the TWD67 control points override it


def test_sample_manifest_normalises_update_frequency_and_keeps_the_original(
    small_corpus, raw_manifest
):
    result = load_specs([small_corpus / "layers.yaml"])
    odd = [
        (i, e["id"])
        for i, e in enumerate(raw_manifest["layers"], 1)
        if e["update_frequency"] == "不定時"
    ]
    assert odd, "the generator writes 不定時 in some entries"
    specs = by_id(result)
    assert {specs[lid].update_frequency for _, lid in odd} == {"不定期"}
    assert [n.origin.rsplit("/", 1)[1] for n in result.normalisations] == [
        f"layers.yaml: entry {i} (id {lid})" for i, lid in odd
    ]
    assert {(n.field, n.original, n.value) for n in result.normalisations} == {
        ("update_frequency", "不定時", "不定期")
    }
    rows = ", ".join(str(i) for i, _ in odd)
    assert any(f'"不定時" → "不定期" ({len(odd)} entries: {rows})' in w for w in result.warnings)


def test_a_folder_with_layers_yaml_is_read_through_it(small_corpus, expected):
    result = load_specs([small_corpus])
    assert [s.id for s in result.specs] == [e["id"] for e in expected["entries"]]


def test_the_same_manifest_twice_is_loaded_once(small_corpus, expected):
    result = load_specs([small_corpus, small_corpus / "layers.yaml"])
    assert len(result.specs) == len(expected["entries"])
    assert any("already loaded" in w for w in result.warnings)


# --- the sample corpus: 供應清單.csv -------------------------------------------------------


def test_sample_supply_list_matches_its_rows(small_corpus, expected):
    truth = expected["supply_list"]["rows"]
    result = load_specs([small_corpus / expected["supply_list"]["path"]])
    assert [(s.title, s.source, s.layer) for s in result.specs] == [
        (r["title"], r["source"], r["layer"]) for r in truth
    ]
    assert result.skipped == []
    for number, (spec, row) in enumerate(zip(result.specs, truth, strict=True), 2):
        assert ID_RE.fullmatch(spec.id) and len(spec.id) <= 60
        assert spec.origin.endswith(f"供應清單.csv: row {number} (id {spec.id})")
        assert spec.base == small_corpus.resolve()
        written = row["update_frequency"]
        assert spec.update_frequency == ("不定期" if written == "不定時" else written)
    assert len({s.id for s in result.specs}) == len(result.specs)


def test_sample_supply_list_records_every_frequency_normalisation(small_corpus, expected):
    truth = expected["supply_list"]["rows"]
    result = load_specs([small_corpus / "供應清單.csv"])
    rows = [i + 2 for i, r in enumerate(truth) if r["update_frequency"] == "不定時"]
    assert rows, "the generator writes 不定時 in some rows"
    assert [n.origin.rsplit(": row ", 1)[1] for n in result.normalisations] == list(map(str, rows))
    assert {(n.original, n.value) for n in result.normalisations} == {("不定時", "不定期")}
    assert any("更新頻率" in w and '"不定時" → "不定期"' in w for w in result.warnings)


# The generator writes each layer's true CRS as agencies spell it: reading it back must give
# the true code again.
SUPPLY_CRS = {"EPSG:3826", "EPSG:4326", "EPSG:3828", "EPSG:3824", "EPSG:3825", "EPSG:3857"}


def test_sample_supply_list_reads_crs_encoding_keywords_and_multiline_cells(small_corpus, expected):
    truth = expected["supply_list"]["rows"]
    supply = load_specs([small_corpus / "供應清單.csv"]).specs
    manifest = by_id(load_specs([small_corpus / "layers.yaml"]))
    crs_seen = set()
    for spec, row in zip(supply, truth, strict=True):
        layer = expected["layers"][expected["entries"][_entry(expected, row)]["yields"][0]]
        entry = manifest[row["entry_id"]]
        assert spec.crs == (layer["crs"] if layer["crs"] in SUPPLY_CRS else None)
        crs_seen.add(spec.crs)
        assert spec.encoding == (
            canonical_encoding(layer["encoding"]) if layer.get("encoding") else None
        )
        assert spec.keywords == entry.keywords
        assert (spec.agency, spec.category) == (entry.agency, entry.category)
        # the description cell holds a CRLF inside quotes: one cell with a newline
        assert spec.description == entry.description.replace("，", "，\n", 1)
        assert "\n" in spec.description and "\r" not in spec.description
    assert {"EPSG:3826", "EPSG:4326"} <= crs_seen


def _entry(expected: dict, row: dict) -> int:
    return [e["id"] for e in expected["entries"]].index(row["entry_id"])


def test_manifest_and_supply_list_together_keep_ids_unique(small_corpus, expected):
    result = load_specs([small_corpus / "layers.yaml", small_corpus / "供應清單.csv"])
    assert len(result.specs) == len(expected["entries"]) + len(expected["supply_list"]["rows"])
    assert len({s.id for s in result.specs}) == len(result.specs)


# --- supply lists made in code --------------------------------------------------------------

BIG5_LIST = (
    "桃園市政府開放資料供應清單\r\n"
    "編號, 資料集 名稱 ,提供機關,服務分類,更新頻率,資料下載網址,坐標系統,編碼格式,"
    "資料集說明,標籤/關鍵字,授權方式\r\n"
    '1,公園,工務局,休閒旅遊 (72),不定時,data\\公園.shp,TWD97,BIG5,"第一行\r\n第二行",'
    '"公園, 綠地",政府資料開放授權條款－第1版\r\n'
    "2,預算書,主計處,公共資訊,每年,,,,,預算,\r\n"
    "3,公園,工務局,休閒旅遊,每周,https://example.org/parks2.zip,TWD67 TM2 119,UTF-8,,,\r\n"
    ",,,,,,,,,,\r\n"
    "4,路燈,建設局,公共資訊,每1月,lamps.csv,NAD27 State Plane,ANSI,,,\r\n"
)


def test_big5_supply_list_with_a_title_row_and_odd_headers(tmp_path):
    path = write(tmp_path / "list.csv", BIG5_LIST, "cp950")
    result = load_specs([path])
    specs = result.specs
    assert [(s.id, s.title, s.source) for s in specs] == [
        ("gong-yuan", "公園", "data/公園.shp"),
        ("gong-yuan-2", "公園", "https://example.org/parks2.zip"),
        ("lu-deng", "路燈", "lamps.csv"),
    ]
    park, park2, lamps = specs
    assert park.description == "第一行\n第二行"
    assert park.keywords == ("公園", "綠地")
    assert (park.crs, park.encoding) == ("EPSG:3826", "cp950")
    assert (park.category, park.update_frequency) == ("休閒旅遊", "不定期")
    assert park.license == "OGDL-Taiwan-1.0"
    assert (park2.crs, park2.update_frequency) == ("EPSG:3827", "每週")
    assert (lamps.crs, lamps.encoding, lamps.update_frequency) == (None, None, "每月")
    assert [(s.row, s.title, s.reason) for s in result.skipped] == [(4, "預算書", NO_SOURCE)]
    text = "\n".join(result.warnings)
    assert "NAD27 State Plane" in text and "no override" in text
    assert "TWD97 without a projection read as TM2 zone 121" in text
    assert "1 of 4 rows have an empty 資料下載網址 and are skipped (rows 4)" in text
    assert "Windows path separators" in text
    assert "ANSI" in text


def test_xlsx_supply_list(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["資料名稱", "機關名稱", "更新頻率", "檔案位置", "圖層", "座標系統", "英文名稱"])
    sheet.append(["抽水站", "水利局", "每 月", "防災.gpkg", "抽水站", "EPSG:3826", "Pumps"])
    sheet.append(["雨量站", "水利局", "每年", None, None, None, None])
    sheet.append([None, "水利局", "每年", "data/水位站.geojson", None, None, None])
    book.save(tmp_path / "清單.xlsx")
    book.save(tmp_path / "另存.xls")  # an .xlsx workbook under an .xls name: read by its bytes
    assert load_specs([tmp_path / "另存.xls"]).specs[0].title == "抽水站"
    result = load_specs([tmp_path / "清單.xlsx"])
    spec, untitled = result.specs
    assert (untitled.id, untitled.title) == ("shui-wei-zhan", "水位站")
    assert any(
        '資料名稱: empty; the file name used: "水位站" (1 row: 4)' in w for w in result.warnings
    )
    assert (spec.title, spec.title_en, spec.layer, spec.crs) == (
        "抽水站",
        "Pumps",
        "抽水站",
        "EPSG:3826",
    )
    assert spec.update_frequency == "每月"
    assert [(s.row, s.title) for s in result.skipped] == [(3, "雨量站")]


def test_a_data_csv_is_not_taken_for_a_supply_list(tmp_path):
    path = write(tmp_path / "回收站.csv", "編號,名稱,分類,說明,經度,緯度\n1,站,a,b,120.6,24.1\n")
    (spec,) = load_specs([path]).specs
    assert (spec.id, spec.title, spec.source) == ("hui-shou-zhan", "回收站", "回收站.csv")


def test_supply_list_without_a_source_column_skips_every_row(tmp_path):
    path = write(
        tmp_path / "l.csv",
        "資料集名稱,資料集提供機關,更新頻率,資料集連結網址\nA,甲,每月,http://x/dataset/1\n"
        "B,乙,每年,http://x/dataset/2\n",
    )
    result = load_specs([path])
    assert result.specs == []
    assert [(s.row, s.title, s.agency) for s in result.skipped] == [(2, "A", "甲"), (3, "B", "乙")]
    assert any("資料集連結網址 links to a dataset's web page" in w for w in result.warnings)


# --- folders and single files ---------------------------------------------------------------


def test_folder_scan_of_a_corpus_subfolder(small_corpus):
    folder = small_corpus / "水利局"
    result = load_specs([folder])
    assert [s.source for s in result.specs] == [
        "數值地形模型/DEM_臺中市.tif",
        "河川.geojson",
        "防災圖資.gpkg",
        "雨水下水道人孔.shp",
    ]
    assert [s.origin for s in result.specs] == [s.source for s in result.specs]
    assert all(s.base == folder.resolve() for s in result.specs)
    dem = result.specs[0]
    assert (dem.id, dem.title) == ("dem-tai-zhong-shi", "DEM_臺中市")
    assert result.warnings == []  # .ovr, .aux.xml, .tfw, .shx, .dbf, .prj, .cpg: silent


def test_folder_scan_rules(tmp_path):
    root = tmp_path / "交付"
    for name in ("道路.shp", "道路.shx", "道路.dbf", "道路.prj", "道路.cpg", "道路.shp.xml"):
        write(root / name, "x")
    write(root / "河川.geojson", '{"type": "FeatureCollection", "features": []}')
    write(root / "統計區.topo.json", '{"type":"Topology","objects":{}}')
    write(root / "expected.json", '{"layers": {"a": {"geometry_type": "Point"}}}')
    write(root / "DEM.tif", "x")
    write(root / "DEM.tif.aux.xml", "<x/>")
    write(root / "DEM.tif.ovr", "x")
    write(root / "DEM.tfw", "1\n0\n0\n-1\n0\n0\n")
    write(root / "說明.txt", "這是說明文件，請參考。\n沒有表格。\n")
    write(root / "站點.txt", "名稱|X|Y\n甲|1|2\n")
    write(root / "報告.pdf", "%PDF")
    write(root / "孤兒.dbf", "x")
    write(root / ".hidden.csv", "a,b\n1,2\n")
    write(root / "~$清單.xlsx", "x")
    write(root / "__MACOSX" / "._道路.shp", "x")
    write(root / "供應清單.csv", "資料集名稱,資料集提供機關,更新頻率\nA,甲,每月\n")
    write(root / "子" / "道路.zip", "PK")
    write(
        root / "別人" / "layers.yaml",
        "layers:\n  - {id: other-roads, title: 道路, source: r.shp}\n",
    )
    result = load_specs([root])
    got = [(s.id, s.title, s.source) for s in result.specs]
    # name order; the subfolder with a layers.yaml is read through it, with its own base
    assert got == [
        ("dem", "DEM", "DEM.tif"),
        ("other-roads", "道路", "r.shp"),
        ("dao-lu", "道路", "子/道路.zip"),
        ("gu-er", "孤兒", "孤兒.dbf"),  # an orphan .dbf: ingested as a table
        ("he-chuan", "河川", "河川.geojson"),
        ("zhan-dian", "站點", "站點.txt"),
        ("tong-ji-qu", "統計區", "統計區.topo.json"),
        ("dao-lu-2", "道路", "道路.shp"),
    ]
    assert result.specs[1].base == (root / "別人").resolve()
    assert result.specs[2].origin == "子/道路.zip"
    (warning,) = [w for w in result.warnings if "ignored" in w]
    for name in ("expected.json", "說明.txt", "報告.pdf", "供應清單.csv"):
        assert name in warning
    for name in (".hidden.csv", "__MACOSX", "道路.shx", "DEM.tif.ovr", "~$清單.xlsx"):
        assert name not in warning


def test_single_file_and_zip(small_corpus):
    zipped = small_corpus / "建設局" / "道路中心線.zip"
    aed = small_corpus / "衛生局" / "AED設置地點.txt"
    specs = load_specs([zipped, aed]).specs
    assert [(s.id, s.title, s.source, s.base, s.origin) for s in specs] == [
        ("dao-lu-zhong-xin-xian", "道路中心線", "道路中心線.zip", zipped.parent, str(zipped)),
        ("aed-she-zhi-di-dian", "AED設置地點", "AED設置地點.txt", aed.parent, str(aed)),
    ]


# --- errors ---------------------------------------------------------------------------------

ROADS = "  - id: roads\n    title: 道路\n    source: roads.shp\n"


def test_unknown_key_names_file_entry_key_and_known_keys(tmp_path):
    path = write(tmp_path / "layers.yaml", f"layers:\n{ROADS}  - id: rivers\n    titel: 河川\n")
    with pytest.raises(ManifestError, match=r"layers\.yaml: entry 2 \(id rivers\): ") as e:
        load_specs([path])
    assert "unknown key 'titel' (did you mean 'title'?)" in str(e.value)
    assert "known keys: " + ", ".join(ENTRY_KEYS) in str(e.value)


def test_bad_id_says_what_to_write(tmp_path):
    path = write(
        tmp_path / "layers.yaml", "layers:\n  - {id: Roads_2023, title: 道路, source: r}\n"
    )
    with pytest.raises(
        ManifestError,
        match=r"layers\.yaml: entry 1 \(id Roads_2023\): key 'id': 'Roads_2023' is not a valid "
        r"id: .*e\.g\. id: roads-2023",
    ):
        load_specs([path])


def test_duplicate_id_across_two_manifests_names_both(tmp_path):
    a = write(tmp_path / "a" / "layers.yaml", f"layers:\n{ROADS}")
    b = write(
        tmp_path / "b" / "layers.yaml", f"layers:\n  - {{id: x, title: X, source: x}}\n{ROADS}"
    )
    with pytest.raises(
        ManifestError,
        match=rf"duplicate id 'roads': {re.escape(str(a))}: entry 1 \(id roads\) and "
        rf"{re.escape(str(b))}: entry 2 \(id roads\)",
    ):
        load_specs([a, b])


def test_missing_source_key(tmp_path):
    path = write(tmp_path / "m.yml", "layers:\n  - id: roads\n    title: 道路\n")
    with pytest.raises(
        ManifestError,
        match=r"m\.yml: entry 1 \(id roads\): key 'source' is missing: write source: ",
    ):
        load_specs([path])


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match=r"nowhere\.yaml: no such file or folder"):
        load_specs([tmp_path / "nowhere.yaml"])


def test_unreadable_yaml_names_the_line(tmp_path):
    path = write(tmp_path / "layers.yaml", "layers:\n  - id: roads\n   title: [道路\n")
    with pytest.raises(ManifestError, match=r"layers\.yaml: not readable as YAML \(line \d+"):
        load_specs([path])


def test_yaml_that_is_not_utf8(tmp_path):
    path = write(tmp_path / "layers.yaml", f"layers:\n{ROADS}", "cp950")
    with pytest.raises(ManifestError, match=r"layers\.yaml: not UTF-8 text"):
        load_specs([path])


def test_a_key_written_twice(tmp_path):
    path = write(tmp_path / "layers.yaml", f"layers:\n{ROADS}    source: other.shp\n")
    with pytest.raises(ManifestError, match=r"key 'source' is written twice \(first on line 4\)"):
        load_specs([path])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"the manifest is empty"),
        ("- id: roads\n", r"the manifest is a list; write a mapping with layers:"),
        ("layer:\n" + ROADS, r"unknown top-level key 'layer'"),
        ("defaults: {id: x}\nlayers: []\n", r"defaults: key 'id' cannot have a default"),
        ("defaults: {agncy: x}\nlayers: []\n", r"defaults: unknown key 'agncy'"),
        ("layers:\n  - roads\n", r"entry 1 \(no id\): an entry must be a mapping"),
        (
            "layers:\n  - {id: r, title: 道路, source: r, crs: TWD97 TM2}\n",
            r"entry 1 \(id r\): key 'crs': 'TWD97 TM2' is not an EPSG code.*write crs: EPSG:3826",
        ),
        (
            "layers:\n  - {id: r, title: 道路, source: r, encoding: klingon}\n",
            r"entry 1 \(id r\): key 'encoding': 'klingon' is not an encoding",
        ),
        (
            "layers:\n  - {id: r, title: '', source: r}\n",
            r"entry 1 \(id r\): key 'title': is empty; write title:",
        ),
        (
            "layers:\n  - {id: r, title: 道路, source: r, style: red}\n",
            r"entry 1 \(id r\): key 'style': .*write style as a mapping",
        ),
    ],
)
def test_manifest_errors(tmp_path, text, match):
    path = write(tmp_path / "layers.yaml", text)
    with pytest.raises(ManifestError, match=re.escape(str(path)) + r".*" + match):
        load_specs([path])


def test_a_sidecar_given_alone(tmp_path):
    path = write(tmp_path / "roads.prj", "PROJCS[]")
    with pytest.raises(ManifestError, match=r"roads\.prj: a sidecar of another file"):
        load_specs([path])


def test_manifest_values_are_normalised(tmp_path):
    path = write(
        tmp_path / "layers.yaml",
        "defaults: {license: OGDL-Taiwan-1.0}\n"
        "layers:\n"
        "  - {id: a, title: 甲, source: a.shp, crs: 3826, encoding: BIG5, keywords: '甲、乙,丙'}\n"
        "  - {id: b, title: 乙, source: 'http://x/b.zip', crs: epsg:4326, keywords: [甲, 1]}\n"
        "  - {title: 丙地圖, source: c.kml, crs: CRS:84, layer: 2023, x: null}\n",
    )
    write(tmp_path / "a.shp", "x")
    result = load_specs([path])
    a, b, c = result.specs
    assert (a.crs, a.encoding, a.keywords) == ("EPSG:3826", "cp950", ("甲", "乙", "丙"))
    assert (b.crs, b.keywords) == ("EPSG:4326", ("甲", "1"))
    assert (c.id, c.crs, c.layer, c.x) == ("bing-di-tu", "CRS:84", "2023", None)
    assert any("entry 3 (id bing-di-tu): no id written" in w for w in result.warnings)
    assert any("source 'c.kml' does not exist" in w for w in result.warnings)
    assert not any("b.zip" in w for w in result.warnings)  # URLs are not checked


# --- value parsers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("TWD97 TM2 121分帶", "EPSG:3826"),
        ("TWD97 TM2 119分帶", "EPSG:3825"),
        ("TWD97經緯度", "EPSG:3824"),
        ("TWD97 二度分帶", "EPSG:3826"),
        ("TWD97", "EPSG:3826"),
        ("TWD67 TM2", "EPSG:3828"),
        ("TWD67 TM2 119", "EPSG:3827"),
        ("WGS84", "EPSG:4326"),
        ("WGS 84 經緯度", "EPSG:4326"),
        ("WGS84 UTM 51N", "EPSG:32651"),
        ("Web Mercator", "EPSG:3857"),
        ("EPSG:3826", "EPSG:3826"),
        ("ＥＰＳＧ：３８２６", "EPSG:3826"),
        ("3826", "EPSG:3826"),
        ("CRS84", "CRS:84"),
        ("本地坐標", None),
        ("NAD27", None),
    ],
)
def test_crs_from_text(text, code):
    assert crs_from_text(text)[0] == code


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("EPSG:3826", "EPSG:3826"),
        ("epsg:3826", "EPSG:3826"),
        ("EPSG::3826", "EPSG:3826"),
        (3826, "EPSG:3826"),
        ("3826", "EPSG:3826"),
        ("CRS:84", "CRS:84"),
        ("OGC:CRS84", "CRS:84"),
        ("urn:ogc:def:crs:EPSG::3828", "EPSG:3828"),
        ("http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326"),
    ],
)
def test_parse_crs(value, code):
    assert parse_crs(value) == code


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("不定時", "不定期"),
        ("不定期", "不定期"),
        ("每周", "每週"),
        ("每星期", "每週"),
        ("每天", "每日"),
        ("每月更新", "每月"),
        ("每 月", "每月"),
        ("每1月", "每月"),
        ("每3個月", "每季"),
        ("每半年", "每半年"),
        ("每6月", "每半年"),
        ("每一年", "每年"),
        ("每年度", "每年"),
        ("每10日", "每10日"),
        ("即時", "即時"),
        ("不更新", "不更新"),
        ("停止更新", "不更新"),
        ("每小時", "每小時"),
    ],
)
def test_normalise_update_frequency(text, value):
    assert normalise_update_frequency(text)[0] == value
    assert value in UPDATE_FREQUENCIES or re.fullmatch(r"每\d+\w+", value)


def test_unknown_update_frequency_is_kept_with_a_note():
    assert normalise_update_frequency(" 看心情 ") == (
        "看心情",
        "not in data.gov.tw's update-frequency vocabulary; kept as written",
    )


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("資料集名稱", "title"),
        ("資料 名稱", "title"),
        ("名稱", "title"),
        ("資料集名稱(必填)", "title"),
        ("＊資料集名稱", "title"),
        ("英文名稱", "title_en"),
        ("資料集提供機關", "agency"),
        ("機關名稱", "agency"),
        ("服務分類", "category"),
        ("分類及編號", "category"),
        ("更新頻率", "update_frequency"),
        ("　檔案位置　", "source"),
        ("資料下載網址", "source"),
        ("url", "source"),
        ("圖層", "layer"),
        ("坐標系統", "crs"),
        ("座標系統", "crs"),
        ("編碼格式", "encoding"),
        ("資料集描述", "description"),
        ("資料集說明", "description"),
        ("標籤/關鍵字", "keywords"),
        ("授權方式", "license"),
        ("資料來源", None),  # Taoyuan: the providing agency, not a file
        ("資料連結網址", None),  # a landing page
        ("資料集連結網址", None),
        ("資料集說明網址", None),
        ("主要欄位說明", None),
        ("收錄期間(起)", None),
    ],
)
def test_header_field(header, field):
    assert header_field(header) == field


@pytest.mark.parametrize(
    ("text", "expected_id"),
    [
        ("臺中市行政區界", "tai-zhong-shi-xing-zheng-qu-jie"),
        ("臺中市AED設置地點", "tai-zhong-shi-aed-she-zhi-di-dian"),
        ("臺中市都市計畫使用分區（TWD67）", "tai-zhong-shi-du-shi-ji-hua-shi-yong-fen-qu-twd67"),
        ("DEM_臺中市", "dem-tai-zhong-shi"),
        ("Roads 2023", "roads-2023"),
        ("Café", "cafe"),
        ("！！！", "layer"),
    ],
)
def test_layer_id(text, expected_id):
    assert layer_id(text) == expected_id


def test_slugify_for_agencies():
    assert slugify("臺中市政府民政局") == "tai-zhong-shi-zheng-fu-min-zheng-ju"
    assert slugify("") == "unknown"


def test_layer_id_is_cut_at_a_hyphen():
    long_id = layer_id("104年度臺中市地方總預算第1次追加(減)預算案及附屬單位預算及綜計表")
    assert len(long_id) <= 60 and ID_RE.fullmatch(long_id) and not long_id.endswith("-")
    assert long_id.startswith("104-nian-du-tai-zhong-shi-di-fang-zong-yu-suan")


def test_encodings_and_keywords():
    assert [canonical_encoding(x) for x in ("UTF-8", "utf8", "BIG5", "Big-5", "cp950")] == [
        "utf-8",
        "utf-8",
        "cp950",
        "cp950",
        "cp950",
    ]
    assert encoding_from_text(", UTF-8") == ("utf-8", "")
    assert encoding_from_text("UTF-8, Big5")[0] is None
    assert split_keywords("道路、路網，橋梁,隧道;捷運；公車、道路") == (
        "道路",
        "路網",
        "橋梁",
        "隧道",
        "捷運",
        "公車",
    )


# --- real agency lists (read in place) ------------------------------------------------------


@pytest.mark.realdata
def test_taoyuan_supply_list_xls(real):
    result = load_specs([TAOYUAN])
    # 1,429 datasets, none naming a file: 資料連結網址 is a landing page, 資料來源 an agency
    assert result.specs == []
    assert len(result.skipped) == 1429
    assert [s.row for s in result.skipped] == list(range(2, 1431))
    first, second, last = result.skipped[0], result.skipped[1], result.skipped[-1]
    assert (first.title, first.agency) == ("桃園市臨時暨短期照顧服務之委託單位", "社會局")
    assert (second.title, second.agency) == ("桃園市登革熱確診個案分布", "衛生局")
    assert (last.row, last.title, last.agency) == (1430, "桃園市其他天然災害出動救災人次", "消防局")
    assert {s.reason for s in result.skipped} == {NO_SOURCE}
    changes = {(n.field, n.original, n.value) for n in result.normalisations}
    assert ("agency", "380120000J 【社會局】", "社會局") in changes
    assert ("category", "生活安全及品質 (146)", "生活安全及品質") in changes
    assert ("license", "政府資料開放授權條款－第1版", "OGDL-Taiwan-1.0") in changes
    misspelt = [n for n in result.normalisations if n.original == "購屋及遷徒 (194)"]
    assert len(misspelt) == 165 and {n.value for n in misspelt} == {"購屋及遷徙"}
    # every spelling of 更新頻率 in this list is already data.gov.tw's
    assert not any(n.field == "update_frequency" for n in result.normalisations)
    text = "\n".join(result.warnings)
    assert "all 1429 rows skipped" in text and "資料連結網址" in text
    assert "UTF-8, Big5" in text  # a cell listing two encodings sets no override


@pytest.mark.realdata
def test_taichung_catalog_export_csv(real):
    result = load_specs([TAICHUNG])
    assert result.specs == []
    assert len(result.skipped) == 1136
    assert [s.row for s in result.skipped] == list(range(2, 1138))
    rows = {s.row: s for s in result.skipped}
    assert (rows[2].title, rows[2].agency) == (
        "臺中市年度建築物公共安全檢查稽查數量",
        "臺中市政府都市發展局",
    )
    assert (rows[23].title, rows[23].agency) == ("觀光旅館", "臺中市政府觀光旅遊局")
    assert rows[1137].title == "臺中市都市計畫圖(GIS)_TWD67"
    assert len({s.agency for s in result.skipped}) == 29
    freq = [n for n in result.normalisations if n.field == "update_frequency"]
    assert sum(n.original == "不定時" and n.value == "不定期" for n in freq) == 74
    weekly = [n.origin for n in freq if n.original == "每周"]
    assert [o.rsplit(": row ", 1)[1] for o in weekly] == ["383", "728"]
    assert {n.value for n in freq} == {"不定期", "每週"}
    text = "\n".join(result.warnings)
    assert "資料集連結網址 links to a dataset's web page" in text
    assert '"不定時" → "不定期" (74 rows: 23, 36, 49, 90, 91, …)' in text


@pytest.mark.realdata
def test_real_lists_are_recognised_as_supply_lists_not_data(real):
    result = load_specs([TAICHUNG, TAOYUAN])
    assert len(result.skipped) == 1136 + 1429
    assert sum("no data-source column" in w for w in result.warnings) == 2


# --- styles ---------------------------------------------------------------------------------


def _styled(tmp_path: Path, style: str, defaults: str = "") -> Path:
    head = f"defaults: {{{defaults}}}\n" if defaults else ""
    return write(
        tmp_path / "layers.yaml",
        f"{head}layers:\n  - id: zoning\n    title: 使用分區\n    source: z.shp\n"
        f"    style: {style}\n",
    )


def test_a_style_is_validated_and_stored_normalised(tmp_path):
    path = _styled(
        tmp_path,
        "{fill: '#FC0', stroke: grey, stroke_width: 2, label: 分區, "
        "categorized: {field: 分區, values: {住宅區: yellow, 商業區: '#E76F51'}}}",
    )
    (spec,) = load_specs([path]).specs
    assert spec.style == {
        "fill": "#ffcc00",
        "stroke": "#808080",
        "stroke_width": 2.0,
        "label": "分區",
        "categorized": {"field": "分區", "values": {"住宅區": "#ffff00", "商業區": "#e76f51"}},
    }  # only what was written: geometry defaults come when the layer is drawn


def test_an_sld_style_is_read_relative_to_the_manifest_and_stored_parsed(tmp_path):
    from catalog.sld import parse_sld
    from tests.catalog.test_sld import qgis_categorized

    sld = tmp_path / "styles" / "使用分區.sld"
    sld.parent.mkdir()
    sld.write_bytes(qgis_categorized())
    path = _styled(tmp_path, "{sld: styles/使用分區.sld, label_size: 16}")
    (spec,) = load_specs([path]).specs
    expected = parse_sld(qgis_categorized()) | {"label_size": 16.0}  # written keys win
    assert spec.style == expected
    assert "sld" not in spec.style  # the catalog never needs the file


def test_a_defaults_sld_applies_to_every_entry_and_sld_layer_picks_a_named_layer(tmp_path):
    from tests.catalog.test_sld import BARE_LINES, POPSHADE

    one = POPSHADE.decode("latin-1").replace('encoding="ISO-8859-1"', 'encoding="UTF-8"')
    lines = BARE_LINES.decode().split("<NamedLayer>", 1)[1].split("</NamedLayer>", 1)[0]
    both = one.replace("</NamedLayer>", f"</NamedLayer><NamedLayer>{lines}</NamedLayer>", 1)
    write(tmp_path / "city.sld", both)
    path = write(
        tmp_path / "layers.yaml",
        "defaults: {style: {sld: city.sld, sld_layer: 道路中心線}}\n"
        "layers:\n"
        "  - {id: roads, title: 道路, source: r.shp}\n"
        "  - {id: roads-2, title: 道路二, source: r2.shp}\n"
        "  - {id: states, title: 州, source: s.shp, style: "
        "{sld: city.sld, sld_layer: USA states population}}\n",
    )
    roads, roads2, states = load_specs([path]).specs
    assert roads.style["categorized"]["field"] == "等級"
    assert roads2.style == roads.style
    assert states.style["graduated"]["field"] == "PERSONS"


@pytest.mark.parametrize(
    ("style", "match"),
    [
        ("{fill: 黃}", r"key 'style': style key 'fill': '黃' is not a colour"),
        ("{filll: '#fff'}", r"key 'style': unknown style key 'filll' \(did you mean 'fill'\?\)"),
        (
            "{graduated: {field: 人口數, breaks: [1000], colors: ['#fff']}}",
            r"key 'style': style key 'graduated': graduated needs one colour more than breaks",
        ),
        ("{sld: styles/none.sld}", r"key 'style': sld: 'styles/none.sld': no such file in "),
        (
            "{sld: 'https://gis.example.tw/styles/zoning.sld'}",
            r"key 'style': sld: 'https://gis\.example\.tw/styles/zoning\.sld' is a URL: SLD "
            r"files are read from the manifest's folder, never fetched",
        ),
        ("{sld: ../outside.sld}", r"key 'style': sld: '\.\./outside\.sld' is outside the manifest"),
        (
            "{sld_layer: 道路}",
            r"key 'style': sld_layer names a NamedLayer .* write sld: <file> too",
        ),
        ("{sld: 3}", r"key 'style': sld: 3 is not a file name"),
        ("[fill, red]", r"key 'style': \['fill', 'red'\] is not a mapping: write style as a"),
    ],
)
def test_style_errors_name_the_file_the_entry_and_the_key(tmp_path, style, match):
    (tmp_path / "outside.sld").write_text("<x/>")
    folder = tmp_path / "manifest"
    path = _styled(folder, style)
    with pytest.raises(
        ManifestError, match=re.escape(str(path)) + r": entry 1 \(id zoning\): " + match
    ) as e:
        load_specs([path])
    assert "docs/styles.md" in str(e.value)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (
            "<StyledLayerDescriptor><NamedLayer><Name>a</Name><UserStyle><FeatureTypeStyle>"
            "<Rule><Name>icon</Name><PointSymbolizer><Graphic><ExternalGraphic/></Graphic>"
            "</PointSymbolizer></Rule></FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>",
            r"sld: 'styles/分區\.sld': Rule 'icon' PointSymbolizer Graphic: <ExternalGraphic> "
            r"cannot be expressed",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<StyledLayerDescriptor>&x;</StyledLayerDescriptor>",
            r"sld: 'styles/分區\.sld': the SLD declares a DTD",
        ),
    ],
)
def test_an_sld_that_cannot_be_used_names_the_sld_and_the_element(tmp_path, doc, match):
    write(tmp_path / "styles" / "分區.sld", doc)
    path = _styled(tmp_path, "{sld: styles/分區.sld}")
    with pytest.raises(ManifestError, match=r"entry 1 \(id zoning\): key 'style': " + match):
        load_specs([path])


def test_a_bad_style_in_defaults_names_defaults(tmp_path):
    path = _styled(tmp_path, "{fill: '#fff'}", defaults="style: {stroke: 灰}")
    with pytest.raises(
        ManifestError, match=r"layers\.yaml: defaults: key 'style': style key 'stroke': '灰'"
    ):
        load_specs([path])


def test_sample_manifest_styles_are_stored_parsed_and_the_agency_sld_is_read(
    small_corpus, raw_manifest
):
    from catalog.sld import parse_sld

    specs = by_id(load_specs([small_corpus / "layers.yaml"]))
    written = {e["id"]: e for e in raw_manifest["layers"] if "style" in e}
    assert written, "the sample corpus styles some of its layers"
    for lid, entry in written.items():
        style = specs[lid].style
        assert "sld" not in style
        if "sld" in entry["style"]:
            sld = (small_corpus / entry["style"]["sld"]).read_bytes()
            assert style == parse_sld(sld, entry.get("layer"))
        assert specs[lid].tileset == entry.get("tileset", "")
