"""Styles and tilesets of the sample corpus: valid, about fields the layers really have."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml

from catalog.sld import parse_sld
from catalog.style import geometry_kind, parse_style
from geoportal.sample import plan
from geoportal.sample.styles import SLD_ENTRY, SLD_PATH, TILESETS, style_of
from tests.geoportal.sample.readback import read_layer


@pytest.fixture(scope="module")
def entries(small_corpus) -> dict[str, dict]:
    doc = yaml.safe_load((small_corpus / "layers.yaml").read_text(encoding="utf-8"))
    return {e["id"]: e for e in doc["layers"]}


@pytest.fixture(scope="module")
def styled(small_corpus, entries, expected, tmp_path_factory) -> dict[str, tuple[dict, list]]:
    """Per styled vector layer: its style mapping (SLD read) and its records as written."""
    scratch = tmp_path_factory.mktemp("styled")
    out = {}
    for lid, layer in expected["layers"].items():
        entry = entries[layer["entry"]]
        if "style" not in entry or layer["kind"] != "vector" or layer.get("outcome") == "refused":
            continue
        style = dict(entry["style"])
        if "sld" in style:
            style = parse_sld((small_corpus / style.pop("sld")).read_bytes()) | style
        out[lid] = (style, read_layer(small_corpus, layer, entry, scratch).records)
    return out


def _hex(rgb: str) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb.split(","))


def test_every_style_is_valid_for_its_geometry(entries, expected, small_corpus):
    checked = 0
    for layer in expected["layers"].values():
        style = entries[layer["entry"]].get("style")
        if style is None:
            continue
        if "sld" in style:
            style = parse_sld((small_corpus / style["sld"]).read_bytes())
        parse_style(style, layer.get("geometry_type", ""))
        checked += 1
    assert checked >= 20


def test_styles_name_only_fields_the_layers_have(styled):
    problems = []
    for lid, (style, records) in styled.items():
        named = [style.get("label")]
        named += [style[k]["field"] for k in ("categorized", "graduated") if k in style]
        for name in filter(None, named):
            missing = sum(name not in r for r in records)
            if missing:
                problems.append(f"{lid}: {missing} records without field {name!r}")
    assert not problems, "\n".join(problems)


def test_categorized_styles_colour_every_value_in_the_data(styled):
    checked = 0
    for lid, (style, records) in styled.items():
        c = style.get("categorized")
        if c is None:
            continue
        found = Counter(r[c["field"]] for r in records)
        unlisted = {v: n for v, n in found.items() if v not in c["values"]}
        assert not unlisted or c.get("other"), f"{lid}: values drawn by no class: {unlisted}"
        assert len(set(found) & set(c["values"])) >= 3, f"{lid}: classes match little: {found}"
        checked += 1
    assert checked >= 4  # roads, land use, two zonings


def test_graduated_styles_have_features_in_every_class(styled):
    checked = 0
    for lid, (style, records) in styled.items():
        g = style.get("graduated")
        if g is None:
            continue
        values = np.array([r[g["field"]] for r in records], dtype=float)
        classes = np.digitize(values, g["breaks"])  # class i: breaks[i-1] <= v < breaks[i]
        assert set(classes) == set(range(len(g["colors"]))), f"{lid}: {Counter(classes)}"
        checked += 1
    assert checked >= 2  # districts by population, buildings by floors


def test_the_agency_sld_colours_zones_as_the_data_own_colour_column_says(
    small_corpus, entries, styled
):
    assert entries[SLD_ENTRY]["style"] == {"sld": SLD_PATH}
    text = (small_corpus / SLD_PATH).read_text(encoding="utf-8")
    assert 'version="1.1.0"' in text and "<ogc:PropertyName>分區</ogc:PropertyName>" in text
    style, records = styled[SLD_ENTRY]
    values = style["categorized"]["values"]
    for r in records:
        assert values[r["分區"]] == _hex(r["顏色"]), r


def test_the_small_corpus_has_the_seven_tilesets_with_published_layers(entries, expected):
    members: dict[str, list[str]] = {}
    for lid, layer in expected["layers"].items():
        tileset = entries[layer["entry"]].get("tileset")
        if tileset and layer.get("outcome", "ok") == "ok":
            members.setdefault(tileset, []).append(lid)
    assert set(members) == set(TILESETS)
    assert set(members["行政區界"]) == {"taichung-districts", "taichung-villages"}
    assert {"dem-20m", "dem-5m-dakeng"} <= set(members["地形"])
    for lid in members["地形"]:
        assert expected["layers"][lid]["kind"] == "raster"
        assert entries[lid]["style"]["colormap"]


def test_the_brief_examples(entries, expected):
    districts = entries["taichung-districts"]["style"]
    assert districts["graduated"]["field"] == "人口數" and districts["label"] == "TOWNNAME"
    villages = parse_style(entries["taichung-villages"]["style"], "Polygon")
    assert villages.fill_opacity == 0 and villages.stroke  # outline only
    assert entries["road-centerlines"]["style"]["categorized"]["field"] == "等級"
    assert entries["door-plates"]["style"]["max_scale"] == 20000
    markers = {
        lid: e["style"]["marker"]
        for lid, e in entries.items()
        if geometry_kind(expected["layers"].get(lid, {}).get("geometry_type", "")) == "point"
        and "marker" in e.get("style", {})
    }
    assert len(set(markers.values())) == 5  # every marker shape is used
    assert sum("label" in e.get("style", {}) for e in entries.values()) >= 8


def test_city_scale_groups_more_layers_into_the_same_seven_tilesets():
    tasks = plan("city", None, 20231)
    by_tileset: Counter[str] = Counter()
    styled = 0
    for t in tasks:
        style, tileset = style_of(t, t.id)
        styled += bool(style)
        if style and "sld" not in style:
            parse_style(style)  # valid: the city manifest loads
        if tileset:
            by_tileset[tileset] += 1
    assert set(by_tileset) == set(TILESETS)
    assert by_tileset["土地使用"] > 10 and by_tileset["道路"] > 5  # per plan area
    assert 100 < styled < len(tasks)  # a subset, not everything
