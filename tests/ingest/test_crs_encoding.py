"""CRS and encoding decisions on their own: evidence order, refusals, transformations."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer

from geoportal.sample.formats import CUSTOM_PRJ
from ingest import crs as crsmod
from ingest import encoding as enc
from ingest.errors import SourceRefused

TAICHUNG_TM2 = (210_000.0, 2_660_000.0, 230_000.0, 2_680_000.0)
TAICHUNG_LONLAT = (120.6, 24.1, 120.8, 24.2)


def test_override_beats_everything():
    d = crsmod.decide(
        "x",
        override="epsg:3828",
        declared_wkt=CUSTOM_PRJ["tm2-twd97"],
        evidence="prj",
        bounds=TAICHUNG_TM2,
    )
    assert (d.value, d.source, d.confidence) == ("EPSG:3828", "manifest", 1.0)


@pytest.mark.parametrize("key", sorted(CUSTOM_PRJ))
def test_custom_tm2_wkts_match_3826_by_parameters(key):
    d = crsmod.decide(
        "x", override=None, declared_wkt=CUSTOM_PRJ[key], evidence="prj", bounds=TAICHUNG_TM2
    )
    assert d.value == "EPSG:3826" and d.source.startswith("prj")


def test_twd67_wkt_is_recognised_by_its_ellipsoid():
    wkt = CRS("EPSG:3828").to_wkt("WKT1_ESRI").replace("TWD_1967_TM_Taiwan", "my_twd67")
    d = crsmod.decide("x", override=None, declared_wkt=wkt, evidence="prj", bounds=TAICHUNG_TM2)
    assert d.value == "EPSG:3828"


def test_ranges_decide_when_nothing_is_declared():
    lonlat = crsmod.decide(
        "x", override=None, declared_wkt=None, evidence="none", bounds=TAICHUNG_LONLAT
    )
    tm2 = crsmod.decide("x", override=None, declared_wkt=None, evidence="none", bounds=TAICHUNG_TM2)
    assert (lonlat.value, lonlat.source) == ("EPSG:4326", "ranges")
    assert (tm2.value, tm2.source) == ("EPSG:3826", "ranges") and tm2.confidence < 0.9
    assert "EPSG:3825" in tm2.detail, "the detail says what to write for zone 119 data"


def test_a_declared_crs_that_contradicts_the_coordinates_is_not_believed():
    d = crsmod.decide(
        "x",
        override=None,
        declared_wkt=CRS("EPSG:4326").to_wkt(),
        evidence="prj",
        bounds=TAICHUNG_TM2,
    )
    assert (d.value, d.source) == ("EPSG:3826", "ranges")
    assert "does not fit" in d.detail


def test_undecidable_crs_is_refused_with_what_to_write():
    with pytest.raises(SourceRefused, match=r"add `crs: EPSG:<code>` to the manifest") as e:
        crsmod.decide(
            "roads.shp",
            override=None,
            declared_wkt=None,
            evidence="none",
            bounds=(5.0, 5.0, 900.0, 900.0),
        )
    assert e.value.reason == "crs-undecided" and "roads.shp" in str(e.value)


def test_twd67_zone_119_is_refused_rather_than_shifted_wrongly():
    with pytest.raises(SourceRefused, match="EPSG:3825"):
        crsmod.check_supported("EPSG:3827", "penghu.shp")


def test_twd67_goes_through_the_epsg_15487_offsets():
    x67, y67 = 217_480.305, 2_671_681.749
    (g,) = crsmod.to_wgs84(np.array([shapely.Point(x67, y67)]), "EPSG:3828")
    lon, lat = Transformer.from_crs(3826, 4326, always_xy=True).transform(
        x67 + 828.589, y67 - 206.915
    )
    assert abs(g.x - lon) < 1e-8 and abs(g.y - lat) < 1e-8
    # The ballpark route PROJ would take from 3828 straight to 4326 is hundreds of metres off.
    bx, by = Transformer.from_crs(3828, 4326, always_xy=True).transform(x67, y67)
    assert np.hypot((bx - g.x) * 101_000, (by - g.y) * 111_000) > 500


def test_utf8_cut_at_field_width_drops_only_the_partial_character():
    log = enc.DecodeLog()
    raw = "臺中市西屯區".encode()[:14]  # 4 whole characters and 2 bytes of the fifth
    assert enc.decode(raw, "utf-8", "#3", log, width=14) == "臺中市西"
    assert log.utf8_cut == ["#3"]


def test_invalid_utf8_in_the_middle_is_not_called_a_cut():
    log = enc.DecodeLog()
    text = enc.decode(b"\xe8\x87" + "中".encode(), "utf-8", "#1", log, width=40)
    assert "\ufffd" in text and log.undecodable == ["#1"] and not log.utf8_cut


def test_vendor_characters_moi_first_then_hkscs_then_reported():
    log = enc.DecodeLog()
    assert enc.decode(b"\x9a\xac" + "埕里".encode("cp950"), "cp950", "#1", log) == "塩埕里"
    assert dict(log.vendor) == {"塩": ["#1"]}
    assert enc.decode(b"\x93\x53\xa8\xbd", "cp950", "#2", log) == "廍里"
    assert dict(log.vendor_via_hkscs) == {"廍": ["#2"]}
    assert enc.decode(b"\xff\xfe", "cp950", "#3", log) == "\ufffd"
    assert log.undecodable == ["#3"]


def test_detection_prefers_valid_utf8_and_falls_back_to_big5():
    assert enc.detect(["臺中市".encode()]) == ("utf-8", 0.99)
    assert enc.detect(["臺中市".encode("cp950")])[0] == "cp950"
    assert enc.detect([b"ascii only"]) == ("utf-8", 1.0)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("UTF-8", "utf-8"),
        ("950", "cp950"),
        ("BIG5", "cp950"),
        ("65001", "utf-8"),
        ("nonsense", None),
        ("", None),
    ],
)
def test_cpg_texts(text, want):
    assert enc.from_cpg(text) == want


def test_a_lone_big5_lead_byte_does_not_swallow_the_next_character():
    log = enc.DecodeLog()
    assert enc.decode(b"\xa4," + "中".encode("cp950"), "cp950", "#1", log) == "\ufffd,中"
    assert log.undecodable == ["#1"]


def test_a_single_byte_code_page_claim_is_overruled_by_big5_bytes():
    samples = ["臺中市西屯區".encode("cp950"), "北屯區".encode("cp950")]
    assert enc.credible(samples, "cp1252") is False
    assert enc.credible([b"plain ascii"], "cp1252") is True
    assert enc.credible(["臺中".encode()], "utf-8") is True


def test_short_big5_that_happens_to_be_utf8_is_read_as_big5():
    assert enc.detect([b"\xc4\xa1"])[0] == "cp950"


def test_far_islands_in_lon_lat_are_plausible():
    d = crsmod.decide(
        "x",
        override=None,
        declared_wkt=None,
        evidence="implicit-4326",
        bounds=(114.36, 10.37, 120.7, 24.2),
    )  # Taiping Island to Taichung
    assert d.value == "EPSG:4326" and d.source == "format"


def test_a_declared_crs_that_does_not_fit_says_so():
    with pytest.raises(SourceRefused, match="EPSG:3826, but the coordinates do not fit"):
        crsmod.decide(
            "x",
            override=None,
            declared_wkt=CRS("EPSG:3826").to_wkt("WKT1_ESRI"),
            evidence="prj",
            bounds=(0.0, 0.0, 230_000.0, 2_680_000.0),
        )
