"""Geometry that looks like a city: districts, villages, roads, clustered points, buildings.

Everything is drawn in EPSG:4326 (lon/lat) from a seeded NumPy generator, vectorised with
shapely 2, so that the ``city`` scale (≈1M points, ≈300k polygons) takes seconds, not minutes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon

from geoportal.sample import names

# Metres per degree at Taichung's latitude (~24.15N): good enough for sizing features.
M_PER_DEG_LON = 101_600.0
M_PER_DEG_LAT = 110_800.0

# Far islands for layers whose extent legitimately reaches them: (name, county, lon, lat, zone)
ISLANDS: tuple[tuple[str, str, float, float, int], ...] = (
    ("馬公", "澎湖縣", 119.566, 23.566, 119),
    ("白沙", "澎湖縣", 119.597, 23.666, 119),
    ("西嶼", "澎湖縣", 119.507, 23.601, 119),
    ("望安", "澎湖縣", 119.505, 23.358, 119),
    ("七美", "澎湖縣", 119.425, 23.208, 119),
    ("金城", "金門縣", 118.317, 24.432, 119),
    ("烈嶼", "金門縣", 118.243, 24.434, 119),
    ("南竿", "連江縣", 119.940, 26.158, 119),
    ("東引", "連江縣", 120.493, 26.367, 121),
    ("蘭嶼", "臺東縣", 121.548, 22.045, 121),
    ("綠島", "臺東縣", 121.490, 22.660, 121),
    ("小琉球", "屏東縣", 120.370, 22.340, 121),
)


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on the corpus seed and a stable key (a layer id)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


@dataclass(frozen=True)
class Area:
    """A named polygon of the city partition (a district or a village)."""

    name: str
    code: str
    district: str
    polygon: Polygon


class CityModel:
    """The shared base geography of one corpus, determined by its seed alone."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.outline = Polygon(names.OUTLINE)

    @cached_property
    def districts(self) -> list[Area]:
        """The 29 districts: a Voronoi partition of the outline around real district centres."""
        centres = MultiPoint([(d[3], d[4]) for d in names.DISTRICTS])
        cells = shapely.voronoi_polygons(centres, extend_to=self.outline.buffer(0.5))
        cell_list = list(cells.geoms)
        areas = []
        for name, _en, code, lon, lat in names.DISTRICTS:
            cell = next(c for c in cell_list if c.contains(shapely.Point(lon, lat)))
            poly = _largest(cell.intersection(self.outline))
            areas.append(Area(name, names.CITY_CODE + code, name, poly))
        return areas

    @cached_property
    def villages(self) -> list[Area]:
        """About 600 villages: each district split by a Voronoi partition of random seeds."""
        rng = rng_for(self.seed, "villages")
        out: list[Area] = []
        used: set[str] = set()
        vendor = iter(names.VENDOR_VILLAGES)
        for d_idx, district in enumerate(self.districts):
            n = int(np.clip(district.polygon.area * 3800, 10, 48))
            pts = sample_in(district.polygon, n, rng)
            cells = shapely.voronoi_polygons(
                MultiPoint(pts), extend_to=district.polygon.buffer(0.2)
            )
            polys = [_largest(c.intersection(district.polygon)) for c in cells.geoms]
            polys = [p for p in polys if not p.is_empty]
            polys.sort(key=lambda p: (round(p.centroid.y, 6), round(p.centroid.x, 6)))
            for v_idx, poly in enumerate(polys):
                name = None
                # Some villages in rural districts carry vendor-extension characters.
                if d_idx % 5 == 3 and v_idx == 0:
                    name = next(vendor, None)
                while name is None or name in used:
                    name = rng.choice(names.VILLAGE_HEADS) + rng.choice(names.VILLAGE_TAILS) + "里"
                used.add(name)
                code = f"{district.code}-{v_idx + 1:03d}"
                out.append(Area(name, code, district.name, poly))
        return out

    def district_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index into ``districts`` of each lon/lat point (-1 when outside the city)."""
        idx = np.full(len(x), -1, dtype=np.int64)
        for i, d in enumerate(self.districts):
            inside = shapely.contains_xy(d.polygon, x, y)
            idx[inside & (idx < 0)] = i
        return idx

    def clustered_points(self, n: int, rng: np.random.Generator, urban: float = 0.85) -> np.ndarray:
        """``n`` lon/lat points inside the city, clustered around its urban cores."""
        out = np.empty((0, 2))
        cores = np.array([c[:2] for c in names.URBAN_CORES])
        weights = np.array([c[2] for c in names.URBAN_CORES])
        spread = np.array([c[3] for c in names.URBAN_CORES])
        minx, miny, _, maxy = self.outline.bounds
        # The plains west of 120.95E hold nearly everything that is not in an urban core.
        while len(out) < n:
            m = int((n - len(out)) * 1.3) + 16
            which = rng.choice(len(cores), size=m, p=weights / weights.sum())
            pts = cores[which] + rng.normal(size=(m, 2)) * spread[which, None]
            rural = rng.random(m) > urban
            pts[rural, 0] = rng.uniform(minx, 120.95, rural.sum())
            pts[rural, 1] = rng.uniform(miny, maxy, rural.sum())
            keep = shapely.contains_xy(self.outline, pts[:, 0], pts[:, 1])
            out = np.vstack([out, pts[keep]])
        return out[:n]

    def road_network(self, n_edges: int, rng: np.random.Generator) -> np.ndarray:
        """Connected road segments as an (n, 2, 2) array of lon/lat endpoints.

        Nodes are clustered like the city's buildings; edges are the short edges of their
        Delaunay triangulation, which keeps the network connected and planar.
        """
        n_nodes = max(8, n_edges // 2)
        edges = np.empty((0, 2, 2))
        while len(edges) < n_edges:
            pts = self.clustered_points(n_nodes, rng, urban=0.7)
            tri = shapely.delaunay_triangles(MultiPoint(pts), only_edges=True)
            coords = shapely.get_coordinates(tri.geoms).reshape(-1, 2, 2)
            length = np.hypot(*(coords[:, 1] - coords[:, 0]).T)
            coords = coords[length < np.quantile(length, 0.9)]
            mid = coords.mean(axis=1)
            coords = coords[shapely.contains_xy(self.outline, mid[:, 0], mid[:, 1])]
            edges = coords
            n_nodes = int(n_nodes * 1.2) + 4
        order = np.lexsort((edges[:, 0, 0], edges[:, 0, 1]))
        return edges[order][:n_edges]

    def buildings(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rotated rectangular footprints (8–40 m) as polygons, clustered in the cores."""
        centres = self.clustered_points(n, rng, urban=0.92)
        w = rng.uniform(8, 40, n)
        h = rng.uniform(8, 30, n)
        theta = rng.uniform(0, np.pi, n)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float) / 2
        cx = corners[None, :, 0] * w[:, None]
        cy = corners[None, :, 1] * h[:, None]
        c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
        xs = centres[:, 0, None] + (cx * c - cy * s) / M_PER_DEG_LON
        ys = centres[:, 1, None] + (cx * s + cy * c) / M_PER_DEG_LAT
        return shapely.polygons(np.stack([xs, ys], axis=-1))

    def zones(
        self,
        n: int,
        rng: np.random.Generator,
        around: tuple[float, float] | None = None,
        radius: float = 0.04,
    ) -> np.ndarray:
        """``n`` polygons tiling a neighbourhood (a plan area), as a Voronoi partition."""
        if around is None:
            around = tuple(self.clustered_points(1, rng)[0])
        region = shapely.Point(around).buffer(radius, quad_segs=8).intersection(self.outline)
        pts = sample_in(region, max(n, 2), rng)
        cells = shapely.voronoi_polygons(MultiPoint(pts), extend_to=region.buffer(0.1))
        polys = [_largest(c.intersection(region)) for c in cells.geoms]
        polys = [p for p in polys if not p.is_empty]
        polys.sort(key=lambda p: (round(p.centroid.y, 7), round(p.centroid.x, 7)))
        return np.array(polys[:n], dtype=object)

    def lines(self, n: int, rng: np.random.Generator, vertices: int = 12) -> np.ndarray:
        """``n`` meandering polylines (rivers, routes, trails) across the city."""
        starts = self.clustered_points(n, rng, urban=0.5)
        steps = rng.normal(size=(n, vertices - 1, 2)) * 0.004
        drift = rng.normal(size=(n, 1, 2)) * 0.004
        path = np.concatenate([starts[:, None, :], steps + drift], axis=1).cumsum(axis=1)
        return shapely.linestrings(path)


def sample_in(polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random lon/lat points inside ``polygon``."""
    minx, miny, maxx, maxy = polygon.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        m = (n - len(out)) * 4 + 8
        pts = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
        out = np.vstack([out, pts[shapely.contains_xy(polygon, pts[:, 0], pts[:, 1])]])
    return out[:n]


def _largest(geom) -> Polygon:
    """The largest polygon part of a (multi)polygon result, or an empty polygon."""
    if geom.is_empty:
        return Polygon()
    if geom.geom_type == "Polygon":
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"]
    return max(parts, key=lambda g: g.area) if parts else Polygon()
