"""Process ``district-lookup``: a point → 縣市 / 行政區 / 村里, names and codes.

The boundary layers are chosen from the catalog by ``registry.boundary_layers``. Each layer
version's polygons are transformed once to EPSG:3826 and indexed in a shapely ``STRtree``
(cached per version file); the point, in any supported CRS, is transformed to EPSG:3826 and
tested exactly (``covers``: a point on a shared edge belongs to the polygon listed first).
The county (縣市) is read from ``COUNTYNAME``; its code is the first five characters of the
district code (``TOWNCODE`` 660000010 → 66000), as in the national code scheme.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pygeoapi.process.base import BaseProcessor

from portal.ogc.processes.common import (
    CRS_INPUT,
    METRIC,
    POINT_INPUT,
    POINT_SCHEMA,
    STORE,
    ProcessInputError,
    VersionCache,
    bilingual,
    check_inputs,
    json_value,
    lonlat,
    metric_point,
    parse_crs,
    point_input,
    read_features,
    transform_geometry,
)


@dataclass(frozen=True)
class BoundaryIndex:
    """One boundary layer version in EPSG:3826 with its spatial index."""

    geometries: np.ndarray
    tree: shapely.STRtree
    codes: np.ndarray
    names: np.ndarray
    counties: np.ndarray | None

    def at(self, point: shapely.Point) -> int | None:
        """Position of the polygon covering ``point`` (EPSG:3826), or None."""
        hits = self.tree.query(point, predicate="intersects")
        if len(hits) == 0:
            return None
        return int(np.sort(hits)[0])

    def find(self, text: str) -> list[int]:
        """Positions of the polygons whose code or name is ``text``."""
        return [i for i in range(len(self.codes)) if text in (self.codes[i], self.names[i])]


def _build(boundary: dict) -> Any:
    def build(path: Path) -> BoundaryIndex:
        features = read_features(path)
        keep = np.flatnonzero(
            np.array([g is not None and not g.is_empty for g in features.geometries], dtype=bool)
        )
        features = features.subset(keep)
        geoms = transform_geometry(features.geometries, STORE, METRIC)
        county = boundary.get("county_field")
        return BoundaryIndex(
            geometries=geoms,
            tree=shapely.STRtree(geoms),
            codes=np.array([str(json_value(v)) for v in features.column(boundary["code_field"])]),
            names=np.array([str(json_value(v)) for v in features.column(boundary["name_field"])]),
            counties=features.column(county) if county else None,
        )

    return build


_CACHE: dict[str, VersionCache] = {}


def boundary_index(boundary: dict) -> BoundaryIndex:
    """The cached index of a boundary layer (a ``registry.Boundary`` dict)."""
    key = f"{boundary['level']}:{boundary['code_field']}:{boundary['name_field']}"
    cache = _CACHE.setdefault(key, VersionCache(_build(boundary)))
    return cache.get(Path(boundary["path"]))


def county_code(town_code: str) -> str | None:
    """The county code of a district code (its first five characters) when it is numeric."""
    head = town_code[:5]
    return head if len(town_code) > 5 and head.isdigit() else None


def _unit(index: BoundaryIndex, i: int, layer: str) -> dict:
    return {"name": str(index.names[i]), "code": str(index.codes[i]), "layer": layer}


def lookup(boundaries: list[dict], point: shapely.Point) -> dict:
    """{county, town, village} (each None when outside) of an EPSG:3826 point."""
    answer: dict[str, dict | None] = {"county": None, "town": None, "village": None}
    for boundary in boundaries:
        index = boundary_index(boundary)
        i = index.at(point)
        if i is None:
            continue
        answer[boundary["level"]] = _unit(index, i, boundary["layer"])
        if answer["county"] is None and index.counties is not None:
            code = county_code(str(index.codes[i]))
            answer["county"] = {"name": str(json_value(index.counties[i])), "code": code}
    return answer


PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "district-lookup",
    "title": bilingual("行政區查詢", "District lookup"),
    "description": bilingual(
        "輸入一點坐標，回傳所在之縣市、行政區（鄉鎮市區）與村里名稱及代碼，"
        "依目錄中的行政區界與村里界圖層判斷。",
        "The county (縣市), district (行政區) and village (村里), names and codes, of a point, "
        "from the boundary layers in the catalog.",
    ),
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["行政區", "村里", "district", "village", "point in polygon"],
    "links": [],
    "inputs": {
        "point": POINT_INPUT,
        "crs": CRS_INPUT,
    },
    "outputs": {
        "result": {
            "title": bilingual("所在行政區", "Administrative units"),
            "description": bilingual(
                "found、county、town、village（各含 name、code）與 point（經緯度）",
                "found, county, town, village (each with name and code) and point (lon/lat)",
            ),
            "schema": {
                "type": "object",
                "contentMediaType": "application/json",
                "properties": {
                    "found": {"type": "boolean"},
                    "county": {"type": ["object", "null"]},
                    "town": {"type": ["object", "null"]},
                    "village": {"type": ["object", "null"]},
                    "point": POINT_SCHEMA,
                },
            },
        }
    },
    "example": {"inputs": {"point": [120.68, 24.14], "crs": "EPSG:4326"}},
}

_INPUTS = tuple(PROCESS_METADATA["inputs"])


class DistrictLookupProcessor(BaseProcessor):
    """District lookup (pygeoapi processor); ``boundaries`` come from the registry."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, copy.deepcopy(PROCESS_METADATA))
        self.boundaries: list[dict] = processor_def.get("boundaries", [])

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        """Look the point up (see the module docstring).

        Raises:
            ProcessInputError: a bad point or CRS, or no boundary layers in the catalog.
        """
        data = check_inputs(data, _INPUTS)
        crs = parse_crs(data.get("crs"))
        point = metric_point(point_input(data), crs)
        if not self.boundaries:
            raise ProcessInputError("the catalog holds no boundary layers to look districts up")
        answer = lookup(self.boundaries, point)
        found = any(v is not None for v in answer.values())
        return "application/json", {"found": found, **answer, "point": lonlat(point)}

    def __repr__(self) -> str:
        return f"<DistrictLookupProcessor> {self.name}"
