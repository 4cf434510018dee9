"""Tilesets from the catalog: members, drawing order, ids, stamps; raster source resolution."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from catalog.model import Agency, Layer, LayerVersion, Lineage
from catalog.view import Snapshot
from ingest.manifest import slugify
from tiles.errors import LayerNotServed
from tiles.tilesets import raster_source, raster_sources, tilesets

NOW = datetime(2024, 1, 1, tzinfo=UTC)
AGENCY = Agency("test", "測試局")


def _layer(layer_id: str, tileset: str = "", style: dict | None = None, **kw) -> Layer:
    return Layer(
        id=layer_id,
        title=f"圖層 {layer_id}",
        agency=AGENCY,
        tileset=tileset,
        style=style or {},
        current_version="v1",
        **kw,
    )


def _version(layer_id: str, kind: str, geometry: str, bbox, version: str = "v1") -> LayerVersion:
    return LayerVersion(
        layer_id=layer_id,
        version=version,
        created=NOW,
        kind=kind,
        path=f"layers/{layer_id}/{version}.gpkg",
        geometry_type=geometry,
        feature_count=1,
        bbox=bbox,
        source_crs="EPSG:4326",
        fields=(),
        lineage=Lineage(source="x", sublayer=None, source_hash="0", reader="test"),
    )


def _snapshot(entries, stamp: str) -> Snapshot:
    """A snapshot; equal stamps must mean equal snapshots (tilesets are cached per stamp)."""
    layers = {lyr.id: lyr for lyr, _ in sorted(entries, key=lambda e: e[0].id)}
    versions = {lyr.id: v for lyr, v in entries if v is not None}
    return Snapshot(layers, versions, stamp)


def _catalog(stamp="s1", point_style=None) -> Snapshot:
    return _snapshot(
        [
            (
                _layer("b-points", "行政區界", point_style),
                _version("b-points", "vector", "Point", (121, 24, 122, 25)),
            ),
            (
                _layer("a-points", "行政區界"),
                _version("a-points", "vector", "MultiPoint", (120, 23, 121, 24)),
            ),
            (
                _layer("roads", "行政區界"),
                _version("roads", "vector", "LineString", (120.5, 23.5, 121, 24)),
            ),
            (
                _layer("zones", "行政區界", category="購屋及遷徙"),
                _version("zones", "vector", "MultiPolygon", (119, 22, 120, 23)),
            ),
            (_layer("dem", "行政區界"), _version("dem", "raster", "", (120, 22, 121, 23))),
            (_layer("stats", "行政區界"), _version("stats", "table", "", None)),
            (_layer("unpublished", "行政區界"), None),
            (_layer("alone"), _version("alone", "vector", "Polygon", (1, 2, 3, 4))),
        ],
        stamp,
    )


def test_members_are_drawn_rasters_polygons_lines_points_ties_by_id():
    found = tilesets(_catalog())
    assert list(found) == [slugify("行政區界")] == ["xing-zheng-qu-jie"]
    ts = found["xing-zheng-qu-jie"]
    assert ts.name == ts.title == "行政區界"
    assert ts.layer_ids == ("dem", "zones", "roads", "a-points", "b-points")
    assert ts.bbox == (119, 22, 122, 25)


def test_the_stamp_follows_members_versions_and_styles():
    base = tilesets(_catalog())["xing-zheng-qu-jie"].stamp
    assert tilesets(_catalog(stamp="s2"))["xing-zheng-qu-jie"].stamp == base
    restyled = _catalog(stamp="s3", point_style={"fill": "#000000"})
    assert tilesets(restyled)["xing-zheng-qu-jie"].stamp != base
    snap = _catalog(stamp="s4")
    snap.versions["roads"] = replace(snap.versions["roads"], version="v2")
    assert tilesets(snap)["xing-zheng-qu-jie"].stamp != base


def test_a_slug_taken_by_a_layer_is_numbered():
    snap = _snapshot(
        [
            (_layer("ce-shi", ""), _version("ce-shi", "vector", "Point", (0, 0, 1, 1))),
            (_layer("x", "測試"), _version("x", "vector", "Point", (0, 0, 1, 1))),
            (_layer("y", "測-試"), _version("y", "vector", "Point", (0, 0, 1, 1))),
        ],
        stamp="slugs",
    )
    found = tilesets(snap)
    assert {ts.name: ts.id for ts in found.values()} == {"測-試": "ce-shi-2", "測試": "ce-shi-3"}


def test_raster_sources_resolve_layers_and_tilesets():
    snap = _catalog()
    layer = raster_source(snap, "zones")
    assert (layer.kind, layer.stamp, layer.layer_ids) == ("layer", "v1", ("zones",))
    assert layer.cache_key.startswith("v1-") and layer.category == ("購屋及遷徙",)
    tileset = raster_source(snap, "xing-zheng-qu-jie")
    assert tileset.kind == "tileset" and tileset.cache_key == tileset.stamp
    assert "購屋及遷徙" in tileset.category
    with pytest.raises(LayerNotServed, match="table"):
        raster_source(snap, "stats")
    with pytest.raises(LayerNotServed, match="no such layer or tileset"):
        raster_source(snap, "unpublished")
    ids = [s.id for s in raster_sources(snap)]
    assert ids == ["xing-zheng-qu-jie", "a-points", "alone", "b-points", "dem", "roads", "zones"]


def test_a_restyle_changes_a_layer_cache_key_but_not_its_stamp():
    before = raster_source(_catalog(), "b-points")
    after = raster_source(_catalog(stamp="s9", point_style={"fill": "#123456"}), "b-points")
    assert before.stamp == after.stamp == "v1"
    assert before.cache_key != after.cache_key
