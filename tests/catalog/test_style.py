"""catalog.style: the display-style schema, its defaults per geometry type and its messages."""

from __future__ import annotations

import pytest

from catalog.style import Style, StyleError, geometry_kind, parse_colour, parse_style


@pytest.mark.parametrize(
    ("gtype", "kind"),
    [
        ("Polygon", "polygon"),
        ("MultiPolygon", "polygon"),
        ("LineString", "line"),
        ("MultiLineString", "line"),
        ("Point", "point"),
        ("MultiPoint", "point"),
        ("", ""),
        ("Mixed", ""),
    ],
)
def test_geometry_kind(gtype, kind):
    assert geometry_kind(gtype) == kind


def test_an_empty_style_draws_with_the_defaults_of_its_geometry():
    polygon, line, point = (parse_style({}, g) for g in ("MultiPolygon", "LineString", "Point"))
    assert polygon.fill and polygon.stroke and polygon.fill != line.stroke
    assert line.stroke and line.fill is None
    assert point.fill and point.marker == "circle"
    assert len({polygon.fill, line.stroke, point.fill}) == 3  # each kind is recognisable
    assert parse_style({}, "") == Style()


def test_written_keys_override_the_geometry_defaults():
    style = parse_style({"fill": "#ffcc00", "stroke_width": 0}, "Polygon")
    assert style.fill == "#ffcc00"
    assert style.stroke == parse_style({}, "Polygon").stroke  # not written: the default
    assert style.stroke_width == 0


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("#FC0", "#ffcc00"),
        ("#FFCC00", "#ffcc00"),
        ("#ffcc0080", "#ffcc0080"),
        (" Red ", "#ff0000"),
        ("grey", "#808080"),
        ("transparent", "#00000000"),
    ],
)
def test_colours_are_stored_as_lower_case_hex(written, stored):
    assert parse_colour(written) == stored
    assert parse_style({"fill": written}).fill == stored
    assert parse_style(
        {"categorized": {"field": "分區", "values": {"住宅區": written}}}
    ).categorized


@pytest.mark.parametrize("bad", ["#ffcc", "黃色", "rgb(1,2,3)", "ffcc00", ""])
def test_a_bad_colour_is_refused_with_its_value(bad):
    with pytest.raises(StyleError, match="is not a colour"):
        parse_colour(bad)
    with pytest.raises(StyleError, match=r"style key 'stroke': .* is not a colour"):
        parse_style({"stroke": bad})


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"filll": "#fff"}, r"unknown style key 'filll' \(did you mean 'fill'\?\)"),
        ({"opacity": 1.5}, r"style key 'opacity': .*less than or equal to 1"),
        ({"fill_opacity": -0.1}, r"style key 'fill_opacity'"),
        ({"marker": "hexagon"}, r"style key 'marker': .*'circle'"),
        ({"marker_size": 0}, r"style key 'marker_size'"),
        ({"label_size": 200}, r"style key 'label_size'"),
        (
            {"categorized": {"field": "分區", "values": {"住宅區": "黃"}}},
            r"style key 'categorized\.values\.住宅區': '黃' is not a colour",
        ),
        (
            {"categorized": {"field": "分區", "values": {}, "colour": "#fff"}},
            r"unknown style key 'categorized\.colour'",
        ),
        (
            {"graduated": {"field": "人口數", "breaks": [1000, 5000], "colors": ["#fff"]}},
            r"graduated needs one colour more than breaks \(2 breaks, 1 colours\)",
        ),
        (
            {"graduated": {"field": "人口數", "breaks": [5000, 1000], "colors": ["red"] * 3}},
            r"graduated breaks must be increasing",
        ),
        (
            {
                "categorized": {"field": "a", "values": {}},
                "graduated": {"field": "a", "breaks": [], "colors": ["red"]},
            },
            r"^a style is either categorized or graduated, not both$",
        ),
        ({"min_scale": 50000, "max_scale": 10000}, r"max_scale must be greater than min_scale"),
        ({"colormap": [{"value": "high", "color": "red"}]}, r"style key 'colormap\.0\.value'"),
    ],
)
def test_an_invalid_style_names_the_key(raw, match):
    with pytest.raises(StyleError, match=match):
        parse_style(raw, "Polygon")


def test_a_style_that_is_not_a_mapping():
    with pytest.raises(StyleError, match="a style is a mapping of style keys, not a str"):
        parse_style("red")  # type: ignore[arg-type]


def test_the_sld_key_is_not_part_of_a_stored_style():
    assert parse_style({"sld": "styles/x.sld", "fill": "#fff"}).fill == "#ffffff"


def test_scale_range_min_inclusive_max_exclusive():
    style = parse_style({"min_scale": 1000, "max_scale": 20000})
    assert not style.visible_at(999)
    assert style.visible_at(1000)
    assert style.visible_at(19999)
    assert not style.visible_at(20000)
    assert Style().visible_at(1) and Style().visible_at(1e9)  # 0 = no limit


def test_a_full_manifest_style_round_trips_through_its_json_form():
    raw = {
        "fill": "#f4a261",
        "fill_opacity": 0.6,
        "stroke": "#264653",
        "stroke_width": 1.2,
        "label": "名稱",
        "max_scale": 50000,
        "graduated": {
            "field": "人口數",
            "breaks": [1000, 5000, 20000],
            "colors": ["#fee5d9", "#fcae91", "#fb6a4a", "#cb181d"],
        },
    }
    style = parse_style(raw, "Polygon")
    again = parse_style(style.model_dump(mode="json", exclude_unset=True), "Polygon")
    assert again == style
    assert style.graduated.breaks == (1000, 5000, 20000)
