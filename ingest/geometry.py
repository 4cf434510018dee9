"""Geometry normalisation: valid, 2-D, lon/lat, one geometry type per layer, nothing lost quietly.

Runs after reprojection, so that near-zero segments that collapse in the new coordinates are
caught by the same validity check as the source's own invalid polygons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiLineString, MultiPoint, MultiPolygon

from catalog.model import Repair

FAMILY = {
    "Point": "Point",
    "MultiPoint": "Point",
    "LineString": "LineString",
    "MultiLineString": "LineString",
    "LinearRing": "LineString",
    "Polygon": "Polygon",
    "MultiPolygon": "Polygon",
}
MULTI = {"Point": MultiPoint, "LineString": MultiLineString, "Polygon": MultiPolygon}


@dataclass
class Normalised:
    """Geometries kept (aligned with ``keep``), their type, and what it took."""

    geometry: np.ndarray
    keep: np.ndarray
    geometry_type: str
    z: dict[str, np.ndarray] = field(default_factory=dict)
    repairs: list[Repair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def z_values(geoms: np.ndarray) -> dict[str, np.ndarray]:
    """Z of 3-D geometries as attributes: "z" for points, "z_min"/"z_max" otherwise."""
    present = ~shapely.is_missing(geoms)
    if not present.any() or not shapely.has_z(geoms[present]).any():
        return {}
    is_point = shapely.get_type_id(geoms) == 0
    if bool(np.all(is_point | ~present)):
        z = np.full(len(geoms), np.nan)
        z[present] = shapely.get_z(geoms[present])
        return {"z": z}
    zmin, zmax = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    for i in np.flatnonzero(present):
        z = shapely.get_coordinates(geoms[i], include_z=True)[:, 2]
        z = z[np.isfinite(z)]
        if len(z):
            zmin[i], zmax[i] = z.min(), z.max()
    return {"z_min": zmin, "z_max": zmax}


def _ids(mask: np.ndarray) -> tuple[str, ...]:
    return tuple(f"#{i + 1}" for i in np.flatnonzero(mask)[:50])


def normalise(geoms: np.ndarray) -> Normalised:
    """Repair, drop null/empty, and give the layer one geometry type (``geoms`` in lon/lat, 2-D).

    Invalid geometries are repaired with ``make_valid(method="structure")``; polygon layers keep
    only polygonal parts of a repair. One family of types → promoted to Multi* when any feature
    is multi; several families → kept as they are, type "Geometry", and reported.
    """
    repairs: list[Repair] = []
    warnings: list[str] = []
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    empty = np.zeros(len(geoms), bool)
    empty[~missing] = shapely.is_empty(geoms[~missing])
    drop = missing | empty
    if drop.any():
        repairs.append(
            Repair(
                "drop-null-geometry",
                int(drop.sum()),
                "features without geometry were dropped",
                _ids(drop),
            )
        )
    keep = ~drop
    g = geoms[keep]
    invalid = ~shapely.is_valid(g)
    if invalid.any():
        g = g.copy()
        g[invalid] = shapely.make_valid(g[invalid], method="structure", keep_collapsed=False)
        ids = _ids(np.isin(np.arange(len(geoms)), np.flatnonzero(keep)[invalid]))
        repairs.append(
            Repair(
                "make-valid",
                int(invalid.sum()),
                "invalid geometries (self-intersections, bow-ties, collapsed "
                "segments) were repaired",
                ids,
            )
        )
    g, gtype, extra = _one_type(g)
    warnings += extra
    still_empty = shapely.is_empty(g)
    if still_empty.any():
        idx = np.flatnonzero(keep)[still_empty]
        keep[idx] = False
        g = g[~still_empty]
        repairs.append(
            Repair(
                "drop-collapsed",
                int(still_empty.sum()),
                "geometries that collapsed to nothing when repaired were dropped",
                tuple(f"#{i + 1}" for i in idx[:50]),
            )
        )
    return Normalised(g, keep, gtype, repairs=repairs, warnings=warnings)


def _one_type(g: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    if len(g) == 0:
        return g, "", []
    types = shapely.get_type_id(g)
    names = np.array(
        [
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        ]
    )[types]
    families = {FAMILY.get(n, "GeometryCollection") for n in set(names)}
    if len(families) > 1:
        counts = {
            f: int(sum(FAMILY.get(n, "GeometryCollection") == f for n in names))
            for f in sorted(families)
        }
        text = ", ".join(f"{v} {k}" for k, v in counts.items())
        return g, "Geometry", [f"mixed geometry types ({text}): kept together as 'Geometry'"]
    family = families.pop()
    if family == "GeometryCollection":
        return g, "Geometry", ["geometry collections kept as 'Geometry'"]
    if not any(n.startswith("Multi") for n in set(names)):
        return g, family, []
    multi = MULTI[family]
    out = np.array(
        [geom if geom.geom_type.startswith("Multi") else multi([geom]) for geom in g], dtype=object
    )
    return out, f"Multi{family}", []
