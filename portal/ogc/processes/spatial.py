"""Process ``spatial-query``: features of a layer near a point or meeting a geometry.

The query geometry (a point, or any GeoJSON geometry) and the distance are taken in EPSG:3826
metres. Candidates are read from the layer version's store through its R-tree (GDAL's bbox
filter on the search area's lon/lat envelope), transformed to EPSG:3826 and kept when
``dwithin(feature, query, distance)`` (distance 0: intersects). Features come back as a GeoJSON
FeatureCollection in CRS84, nearest first, each with its ``distance`` in metres (a GeoJSON
foreign member, so the layer's own properties stay untouched).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import shapely
from pygeoapi.process.base import BaseProcessor

from portal.ogc.processes.common import (
    CRS_SCHEMA,
    METRIC,
    POINT_SCHEMA,
    STORE,
    ProcessInputError,
    bilingual,
    check_inputs,
    geometry_input,
    layer_input,
    metric_point,
    number_input,
    parse_crs,
    point_input,
    read_features,
    transform_geometry,
)

#: Most features one answer holds; the largest search distance.
MAX_LIMIT = 10_000
MAX_DISTANCE = 50_000.0

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "spatial-query",
    "title": bilingual("空間查詢", "Spatial query"),
    "description": bilingual(
        "查詢圖層中距離某點（或某幾何）指定公尺內、或與某 GeoJSON 幾何相交的圖徵及其屬性；"
        "距離以 TWD97 二度分帶 (EPSG:3826) 公尺計算，結果依距離排序。",
        "Features of a layer within a distance (metres) of a point or geometry, or "
        "intersecting a GeoJSON geometry, with their attributes; distances are computed in "
        "EPSG:3826 metres and the nearest come first.",
    ),
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["空間查詢", "環域", "spatial query", "buffer", "intersects"],
    "links": [],
    "inputs": {
        "layer": {
            "title": bilingual("圖層", "Layer"),
            "description": bilingual("圖層代碼（/ogc/collections 的 id）", "A collection id"),
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "point": {
            "title": bilingual("中心點", "Point"),
            "description": bilingual(
                "[x, y]；與 geometry 擇一", "[x, y]; give either point or geometry"
            ),
            "schema": POINT_SCHEMA,
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "geometry": {
            "title": bilingual("幾何", "Geometry"),
            "description": bilingual("GeoJSON 幾何", "A GeoJSON geometry"),
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "distance": {
            "title": bilingual("距離（公尺）", "Distance (metres)"),
            "description": bilingual(
                "0 表示相交；point 查詢預設 100 公尺，最大 50,000",
                "0 means intersecting; default 100 m for a point, 0 for a geometry; at most 50,000",
            ),
            "schema": {"type": "number", "minimum": 0, "maximum": MAX_DISTANCE},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "crs": {
            "title": bilingual("坐標系統", "CRS"),
            "description": bilingual(
                "point / geometry 的坐標系統，預設 EPSG:4326 (x/y)", "CRS of point / geometry"
            ),
            "schema": CRS_SCHEMA,
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "limit": {
            "title": bilingual("筆數上限", "Limit"),
            "description": bilingual("預設 100，最大 10,000", "Default 100, at most 10,000"),
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "features": {
            "title": bilingual("圖徵", "Features"),
            "description": bilingual(
                "GeoJSON FeatureCollection（CRS84），含 numberMatched、numberReturned",
                "GeoJSON FeatureCollection (CRS84) with numberMatched and numberReturned",
            ),
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        }
    },
    "example": {"inputs": {"layer": "aed-locations", "point": [120.68, 24.15], "distance": 1000}},
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


def _query(data: dict, crs: str) -> tuple[shapely.Geometry, float]:
    """The query geometry in EPSG:3826 and the distance."""
    has_point, has_geometry = "point" in data, "geometry" in data
    if has_point == has_geometry:
        raise ProcessInputError("give exactly one of 'point' and 'geometry'")
    if has_point:
        geom = metric_point(point_input(data), crs)
        return geom, number_input(data, "distance", 100.0, 0.0, MAX_DISTANCE)
    geom = geometry_input(data["geometry"], "geometry", crs)
    return geom, number_input(data, "distance", 0.0, 0.0, MAX_DISTANCE)


def _search_bbox(geom: shapely.Geometry, distance: float) -> tuple[float, float, float, float]:
    """The lon/lat envelope of ``geom`` grown by ``distance`` metres (with 1 m to spare)."""
    area = shapely.box(*shapely.bounds(geom)).buffer(distance + 1.0, join_style="mitre")
    area = shapely.segmentize(area, 500.0)
    return tuple(float(v) for v in shapely.bounds(transform_geometry(area, METRIC, STORE)))


def _feature(fid: int, geometry: shapely.Geometry | None, props: dict, distance: float) -> dict:
    return {
        "type": "Feature",
        "id": int(fid),
        "geometry": shapely.geometry.mapping(geometry) if geometry is not None else None,
        "properties": props,
        "distance": round(distance, 3),
    }


class SpatialQueryProcessor(BaseProcessor):
    """Spatial query (pygeoapi processor); ``layers`` (id → store) come from the registry."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.layers: dict[str, str] = processor_def.get("layers", {})

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        """Run the query (see the module docstring).

        Raises:
            ProcessInputError: an unknown layer, bad geometry, distance or limit.
        """
        data = check_inputs(data, _INPUTS)
        layer, path = layer_input(data, "layer", self.layers)
        crs = parse_crs(data.get("crs"))
        query, distance = _query(data, crs)
        limit = number_input(data, "limit", 100, 1, MAX_LIMIT, integer=True)
        features = read_features(path, _search_bbox(query, distance))
        present = np.array([g is not None for g in features.geometries], dtype=bool)
        features = features.subset(np.flatnonzero(present))
        metric = transform_geometry(features.geometries, STORE, METRIC)
        near = shapely.dwithin(metric, query, distance) if len(metric) else np.zeros(0, bool)
        idx = np.flatnonzero(near)
        dist = shapely.distance(metric[idx], query) if len(idx) else np.zeros(0)
        order = np.lexsort((features.fids[idx], dist))
        chosen = order[: int(limit)]
        items = [
            _feature(
                features.fids[idx[k]],
                features.geometries[idx[k]],
                features.properties(int(idx[k])),
                float(dist[k]),
            )
            for k in chosen
        ]
        return "application/geo+json", {
            "type": "FeatureCollection",
            "layer": layer,
            "numberMatched": len(idx),
            "numberReturned": len(items),
            "features": items,
        }

    def __repr__(self) -> str:
        return f"<SpatialQueryProcessor> {self.name}"
