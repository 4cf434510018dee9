"""Process ``coordinate-conversion``: points between TWD97, TWD67, WGS 84 and Web Mercator.

One point or a batch (up to :data:`MAX_POINTS`), always in x/y order (easting, northing or
longitude, latitude). The transformation is PROJ's best operation between the two CRSs, except
that TWD67 (EPSG:3828) goes through EPSG:3826 with EPSG:15487 (see ``common``); EPSG:3827 is
refused. Results are not rounded.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from pygeoapi.process.base import BaseProcessor

from portal.ogc.processes.common import (
    CRS_NAMES,
    CRS_SCHEMA,
    POINT_SCHEMA,
    ProcessInputError,
    bilingual,
    check_inputs,
    operation,
    parse_crs,
    points_array,
)

#: The largest batch one request may convert.
MAX_POINTS = 10_000

_CODES = ", ".join(CRS_NAMES)

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "coordinate-conversion",
    "title": bilingual("坐標轉換", "Coordinate conversion"),
    "description": bilingual(
        "在 TWD97 二度分帶 (EPSG:3826/3825)、TWD67 二度分帶 (EPSG:3828)、WGS 84 經緯度 "
        "(EPSG:4326/CRS84)、TWD97 經緯度 (EPSG:3824) 與 Web Mercator (EPSG:3857) 之間轉換"
        "單點或多點坐標（最多 10,000 點）。坐標一律為 x/y 順序（橫坐標、縱坐標或經度、緯度）。"
        "TWD67 以 EPSG:15487 轉換至 TWD97；EPSG:3827 無官方轉換參數，不提供。",
        "Convert one point or a batch (up to 10,000) between TWD97 TM2 (EPSG:3826/3825), "
        "TWD67 TM2 (EPSG:3828), WGS 84 lon/lat (EPSG:4326/CRS84), TWD97 lon/lat (EPSG:3824) "
        "and Web Mercator (EPSG:3857). Coordinates are always x/y (easting, northing or "
        "longitude, latitude). TWD67 goes to TWD97 with EPSG:15487; EPSG:3827 has no "
        "documented transformation and is refused.",
    ),
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["坐標轉換", "TWD97", "TWD67", "coordinate conversion", "datum"],
    "links": [],
    "inputs": {
        "points": {
            "title": bilingual("坐標", "Points"),
            "description": bilingual(
                "一點 [x, y] 或多點 [[x, y], ...]（最多 10,000 點）",
                "One point [x, y] or a list [[x, y], ...] (at most 10,000)",
            ),
            "schema": {
                "oneOf": [
                    POINT_SCHEMA,
                    {"type": "array", "items": POINT_SCHEMA, "minItems": 1, "maxItems": MAX_POINTS},
                ]
            },
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "source_crs": {
            "title": bilingual("來源坐標系統", "Source CRS"),
            "description": bilingual(f"可用：{_CODES}、CRS84", f"One of {_CODES}, CRS84"),
            "schema": CRS_SCHEMA,
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "target_crs": {
            "title": bilingual("目標坐標系統", "Target CRS"),
            "description": bilingual(f"可用：{_CODES}、CRS84", f"One of {_CODES}, CRS84"),
            "schema": CRS_SCHEMA,
            "minOccurs": 1,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "result": {
            "title": bilingual("轉換結果", "Converted points"),
            "description": bilingual(
                "points（與輸入同形）、crs、所用轉換 operation 與其精度 accuracy_m",
                "points (shaped as the input), crs, the operation used and its accuracy_m",
            ),
            "schema": {
                "type": "object",
                "contentMediaType": "application/json",
                "properties": {
                    "points": {"type": "array"},
                    "crs": {"type": "string"},
                    "source_crs": {"type": "string"},
                    "operation": {"type": "string"},
                    "accuracy_m": {"type": ["number", "null"]},
                },
            },
        }
    },
    "example": {
        "inputs": {
            "points": [217000.0, 2671000.0],
            "source_crs": "EPSG:3828",
            "target_crs": "EPSG:4326",
        }
    },
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


class CoordinateConversionProcessor(BaseProcessor):
    """Coordinate conversion (pygeoapi processor)."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        """Convert the points (see the module docstring).

        Raises:
            ProcessInputError: bad points or an unsupported CRS.
        """
        data = check_inputs(data, _INPUTS)
        for name in ("source_crs", "target_crs"):
            if name not in data:
                raise ProcessInputError(f"input {name!r} is required, e.g. EPSG:3826")
        source = parse_crs(data["source_crs"], "source_crs")
        target = parse_crs(data["target_crs"], "target_crs")
        raw = data.get("points")
        arr = points_array(raw, "points", MAX_POINTS)
        op = operation(source, target)
        x, y = op.transform(arr[:, 0], arr[:, 1])
        bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
        if len(bad):
            raise ProcessInputError(
                f"points[{int(bad[0])}] {arr[bad[0]].tolist()} has no position in {target} "
                f"(is it really in {source}?)"
            )
        pts = np.column_stack([x, y]).tolist()
        single = isinstance(raw, list) and not isinstance(raw[0], list)
        return "application/json", {
            "points": pts[0] if single else pts,
            "crs": target,
            "source_crs": source,
            "operation": op.description,
            "accuracy_m": op.accuracy,
        }

    def __repr__(self) -> str:
        return f"<CoordinateConversionProcessor> {self.name}"
