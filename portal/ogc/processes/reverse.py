"""Process ``address-reverse``: a point → the nearest door plate(s) (門牌), with distances.

The door plates of the layer version are held in EPSG:3826 in a shapely ``STRtree`` (the
address index of ``address``, built once per version); the point is transformed to EPSG:3826
and the door plates within ``max_distance`` metres are returned nearest first (ties by id).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pygeoapi.process.base import BaseProcessor

from portal.ogc.processes.address import address_index
from portal.ogc.processes.common import (
    CRS_INPUT,
    POINT_INPUT,
    POINT_SCHEMA,
    bilingual,
    check_inputs,
    lonlat,
    metric_point,
    number_input,
    parse_crs,
    point_input,
)

MAX_DISTANCE = 5_000.0

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "address-reverse",
    "title": bilingual("坐標反查門牌", "Reverse address lookup"),
    "description": bilingual(
        "輸入一點坐標，回傳最近的門牌地址及距離（公尺，TWD97 二度分帶計算）。",
        "The nearest door-plate address(es) to a point, with distances in metres "
        "(computed in EPSG:3826).",
    ),
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["門牌", "反查", "reverse geocoding", "address"],
    "links": [],
    "inputs": {
        "point": POINT_INPUT,
        "crs": CRS_INPUT,
        "limit": {
            "title": bilingual("筆數", "Limit"),
            "description": bilingual("預設 1，最大 50", "Default 1, at most 50"),
            "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 1},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "max_distance": {
            "title": bilingual("搜尋半徑（公尺）", "Search radius (metres)"),
            "description": bilingual("預設 200，最大 5,000", "Default 200, at most 5,000"),
            "schema": {"type": "number", "minimum": 0, "maximum": MAX_DISTANCE, "default": 200},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "result": {
            "title": bilingual("最近門牌", "Nearest door plates"),
            "description": bilingual(
                "candidates（address、point、twd97、distance 公尺）",
                "candidates (address, point, twd97, distance in metres)",
            ),
            "schema": {
                "type": "object",
                "contentMediaType": "application/json",
                "properties": {"candidates": {"type": "array"}, "point": POINT_SCHEMA},
            },
        }
    },
    "example": {"inputs": {"point": [120.68, 24.15], "limit": 3}},
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


class AddressReverseProcessor(BaseProcessor):
    """Reverse address lookup (pygeoapi processor)."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.layer: dict = processor_def["address"]

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        """Find the nearest door plates (see the module docstring).

        Raises:
            ProcessInputError: a bad point, CRS, limit or distance.
        """
        data = check_inputs(data, _INPUTS)
        crs = parse_crs(data.get("crs"))
        point = metric_point(point_input(data), crs)
        limit = number_input(data, "limit", 1, 1, 50, integer=True)
        radius = number_input(data, "max_distance", 200.0, 0.0, MAX_DISTANCE)
        index = address_index(Path(self.layer["path"]))
        rows = index.tree.query(point, predicate="dwithin", distance=radius)
        dist = shapely.distance(index.metric[rows], point) if len(rows) else np.zeros(0)
        order = np.lexsort((index.features.fids[rows], dist))[: int(limit)]
        candidates = [
            {**index.describe(int(rows[k])), "distance": round(float(dist[k]), 3)} for k in order
        ]
        return "application/json", {
            "layer": self.layer["layer"],
            "point": lonlat(point),
            "candidates": candidates,
        }

    def __repr__(self) -> str:
        return f"<AddressReverseProcessor> {self.name}"
