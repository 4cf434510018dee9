"""Attribute tables for each kind of layer, drawn from a seeded generator.

Field names are at most three CJK characters (or ASCII) so that they fit a DBF's 10-byte field
names in both Big5 and UTF-8 — agencies' real files are cut there, and tests compare names.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import shapely

from geoportal.sample import names
from geoportal.sample.city import M_PER_DEG_LAT, M_PER_DEG_LON, CityModel
from geoportal.sample.formats import Column, Table

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _dates(rng: np.random.Generator, n: int, start: date = date(1995, 1, 1)) -> list[date]:
    days = rng.integers(0, 10_000, n)
    return [start + timedelta(days=int(d)) for d in days]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(2200, 2799, n)
    b = rng.integers(0, 9999, n)
    return [f"04-{x}-{y:04d}" for x, y in zip(a, b, strict=True)]


def _district_names(city: CityModel, xy: np.ndarray) -> list[str]:
    idx = city.district_of(xy[:, 0], xy[:, 1])
    return [city.districts[i].name if i >= 0 else "" for i in idx]


def point_table(
    city: CityModel,
    rng: np.random.Generator,
    n: int,
    noun: str,
    prefix: str,
    xy: np.ndarray | None = None,
) -> Table:
    """Points of interest: id, name, district, address, phone, opening date, a count, a class."""
    if xy is None:
        xy = city.clustered_points(n, rng)
    dist = _district_names(city, xy)
    roads = rng.choice(names.ROAD_NAMES, n)
    numbers = rng.integers(1, 800, n)
    nm = [
        f"{d[:-1] if d else '臺中'}{r}{noun}" + (f"{k % 9 + 1}" if k % 3 == 0 else "")
        for d, r, k in zip(dist, roads, range(n), strict=True)
    ]
    addr = [f"臺中市{d}{r}{no}號" for d, r, no in zip(dist, roads, numbers, strict=True)]
    return Table(
        geometry=shapely.points(xy),
        columns=[
            Column("編號", "str", [f"{prefix}{i + 1:05d}" for i in range(n)], width=12),
            Column("名稱", "str", nm, width=60),
            Column("行政區", "str", dist, width=12),
            Column("地址", "str", addr, width=120),
            Column("電話", "str", _phones(rng, n), width=16),
            Column("設立日", "date", _dates(rng, n)),
            Column("數量", "int", [int(v) for v in rng.integers(1, 500, n)], width=6),
            Column("類別", "str", [noun] * n, width=30),
        ],
    )


def line_table(geoms: np.ndarray, rng: np.random.Generator, noun: str, prefix: str) -> Table:
    """Lines: id, name, length in metres, a class."""
    n = len(geoms)
    coords = [np.asarray(g.coords) for g in geoms]
    length = [
        float(np.sum(np.hypot(np.diff(c[:, 0]) * M_PER_DEG_LON, np.diff(c[:, 1]) * M_PER_DEG_LAT)))
        for c in coords
    ]
    roads = rng.choice(names.ROAD_NAMES, n)
    return Table(
        geometry=geoms,
        columns=[
            Column("編號", "str", [f"{prefix}{i + 1:05d}" for i in range(n)], width=12),
            Column(
                "名稱", "str", [f"{r[:2]}{noun}{i % 7 + 1}" for i, r in enumerate(roads)], width=60
            ),
            Column("長度", "float", [round(v, 2) for v in length], width=14, decimals=2),
            Column("類別", "str", [noun] * n, width=30),
        ],
    )


def zone_table(geoms: np.ndarray, rng: np.random.Generator, plan: str, prefix: str) -> Table:
    """Zoning polygons: id, zone name and code, plan name (truncated name 計畫_1), area, colour."""
    n = len(geoms)
    kinds = rng.integers(0, len(names.ZONE_KINDS), n)
    area = [float(g.area * M_PER_DEG_LON * M_PER_DEG_LAT) for g in geoms]
    return Table(
        geometry=geoms,
        columns=[
            Column("編號", "str", [f"{prefix}{i + 1:05d}" for i in range(n)], width=12),
            Column("分區", "str", [names.ZONE_KINDS[k][0] for k in kinds], width=30),
            Column("代碼", "str", [names.ZONE_KINDS[k][1] for k in kinds], width=4),
            Column("計畫_1", "str", [plan] * n, width=60),
            Column("面積", "float", [round(a, 1) for a in area], width=14, decimals=1),
            Column("顏色", "str", [names.ZONE_KINDS[k][2] for k in kinds], width=12),
        ],
    )


def district_table(city: CityModel) -> Table:
    """The 29 districts with MOI-style columns."""
    ds = city.districts
    pops = [int(40_000 + (int(d.code[-4:]) * 7919) % 240_000) for d in ds]
    return Table(
        geometry=np.array([d.polygon for d in ds], dtype=object),
        columns=[
            Column("TOWNCODE", "str", [d.code for d in ds], width=12),
            Column("COUNTYNAME", "str", [names.CITY] * len(ds), width=20),
            Column("TOWNNAME", "str", [d.name for d in ds], width=20),
            Column("TOWNENG", "str", [e[1] for e in names.DISTRICTS], width=30),
            Column("人口數", "int", pops, width=8),
            Column(
                "面積",
                "float",
                [round(d.polygon.area * M_PER_DEG_LON * M_PER_DEG_LAT / 1e6, 3) for d in ds],
                width=12,
                decimals=3,
            ),
        ],
    )


def village_table(city: CityModel) -> Table:
    """About 600 villages with MOI-style columns."""
    vs = city.villages
    return Table(
        geometry=np.array([v.polygon for v in vs], dtype=object),
        columns=[
            Column("VILLCODE", "str", [v.code for v in vs], width=16),
            Column("COUNTYNAME", "str", [names.CITY] * len(vs), width=20),
            Column("TOWNNAME", "str", [v.district for v in vs], width=20),
            Column("VILLNAME", "str", [v.name for v in vs], width=20),
            Column("人口數", "int", [1000 + (i * 7919) % 9000 for i in range(len(vs))], width=8),
        ],
    )


def address_table(city: CityModel, rng: np.random.Generator, n: int) -> Table:
    """Door plates (門牌): unique addresses numbered along each street, TM2 coordinates added later.

    Returns a Table whose columns are the structured address and the full address; numbers
    increase with x within each (district, street, lane, alley) so addresses are unique.
    """
    xy = city.clustered_points(n, rng, urban=0.9)
    tree = shapely.STRtree([v.polygon for v in city.villages])
    pts = shapely.points(xy)
    p_idx, v_idx = tree.query(pts, predicate="within")
    village = np.full(n, -1)
    village[p_idx] = v_idx
    # Points on a shared edge fall in no village: give them the nearest.
    missing = np.flatnonzero(village < 0)
    if len(missing):
        village[missing] = tree.nearest(pts[missing])
    vs = city.villages
    d_names = sorted({v.district for v in vs})
    d_of = np.array([d_names.index(vs[i].district) for i in village])
    street = (d_of * 7 + rng.integers(0, 6, n)) % len(names.STREET_NAMES)
    section = rng.integers(0, 4, n)
    lane = np.where(rng.random(n) < 0.45, rng.integers(1, 400, n), 0)
    alley = np.where((lane > 0) & (rng.random(n) < 0.35), rng.integers(1, 30, n), 0)
    key = ((d_of * 64 + street) * 4 + section) * 400 * 30 + lane * 30 + alley
    order = np.lexsort((xy[:, 0], key))
    sorted_key = key[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, n]))
    number = np.empty(n, dtype=np.int64)
    number[order] = np.arange(n) - starts + 1
    neighbourhood = rng.integers(1, 30, n)
    sec_txt = ["", "一段", "二段", "三段"]
    streets = [names.STREET_NAMES[s] + sec_txt[c] for s, c in zip(street, section, strict=True)]
    lanes = [f"{la}巷" if la else "" for la in lane]
    alleys = [f"{al}弄" if al else "" for al in alley]
    towns = [vs[i].district for i in village]
    vills = [vs[i].name for i in village]
    full = [
        f"臺中市{t}{v}{nb}鄰{s}{la}{al}{no}號".translate(FULLWIDTH)
        for t, v, nb, s, la, al, no in zip(
            towns, vills, neighbourhood, streets, lanes, alleys, number, strict=True
        )
    ]
    return Table(
        geometry=pts,
        columns=[
            Column("編號", "str", [f"A{i + 1:07d}" for i in range(n)]),
            Column("縣市", "str", [names.CITY] * n),
            Column("鄉鎮市區", "str", towns),
            Column("村里", "str", vills),
            Column("鄰", "int", [int(v) for v in neighbourhood]),
            Column("街路段", "str", streets),
            Column("巷", "str", [str(v) if v else "" for v in lane]),
            Column("弄", "str", [str(v) if v else "" for v in alley]),
            Column("號", "str", [str(v) for v in number]),
            Column("完整地址", "str", full),
        ],
    )


def building_table(geoms: np.ndarray, rng: np.random.Generator) -> Table:
    """Building footprints: id, floors, structure, construction year (ROC)."""
    n = len(geoms)
    structures = np.array(["RC", "SRC", "磚造", "鋼骨", "木造"])
    return Table(
        geometry=geoms,
        columns=[
            Column("建物號", "str", [f"B{i + 1:07d}" for i in range(n)], width=10),
            Column("樓層數", "int", [int(v) for v in rng.integers(1, 30, n)], width=3),
            Column("構造", "str", structures[rng.integers(0, 5, n)].tolist(), width=8),
            Column("建築年", "int", [int(v) for v in rng.integers(45, 113, n)], width=4),
        ],
    )
