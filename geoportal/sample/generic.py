"""The bulk of a city's layers: each theme once, per district, per year or per plan area.

Formats, CRSs, encodings and a little mess are drawn per layer from its own seeded generator,
in the proportions a city's agencies hand them in.
"""

from __future__ import annotations

import numpy as np
import shapely

from geoportal.sample import corpus as cp
from geoportal.sample import formats as fm
from geoportal.sample import names, tables
from geoportal.sample.city import rng_for, sample_in
from geoportal.sample.corpus import Context, Entry, Task, builder, expect, meta, with_nulls
from geoportal.sample.formats import Table

PLAN_THEMES = (
    names.Theme(
        "都市計畫使用分區",
        "urban zoning",
        "都市發展局",
        "購屋及遷徙",
        "zones",
        "分區",
        ("都市計畫", "使用分區"),
    ),
    names.Theme(
        "都市計畫公共設施用地",
        "public facility land",
        "都市發展局",
        "購屋及遷徙",
        "zones",
        "公設用地",
        ("都市計畫", "公共設施"),
    ),
    names.Theme(
        "都市計畫樁位",
        "planning stakes",
        "都市發展局",
        "購屋及遷徙",
        "points",
        "樁位",
        ("都市計畫", "樁位"),
    ),
    names.Theme(
        "都市計畫道路",
        "planned roads",
        "都市發展局",
        "交通及通訊",
        "lines",
        "計畫道路",
        ("都市計畫", "道路"),
    ),
)

FORMATS = {
    "points": (
        ("shp", 0.30),
        ("shp.zip", 0.15),
        ("geojson", 0.20),
        ("csv-lonlat", 0.15),
        ("csv-tm2", 0.10),
        ("gpkg", 0.10),
    ),
    "lines": (("shp", 0.45), ("shp.zip", 0.15), ("geojson", 0.25), ("gpkg", 0.15)),
    "zones": (
        ("shp", 0.40),
        ("shp.zip", 0.20),
        ("geojson", 0.20),
        ("gpkg", 0.15),
        ("topojson", 0.05),
    ),
}
# (prj, crs, mess) for generic shapefiles.
SHP_CRS = (
    (("epsg", "EPSG:3826", ()), 0.68),
    (("tm2-twd97", "EPSG:3826", ("prj-custom-wkt",)), 0.10),
    (("twd97", "EPSG:3826", ("prj-custom-wkt",)), 0.05),
    ((None, "EPSG:3826", ("prj-missing",)), 0.05),
    (("epsg", "EPSG:3824", ("crs-epsg-3824",)), 0.04),
    (("epsg", "EPSG:3828", ("twd67",)), 0.04),
    (("epsg", "EPSG:4326", ()), 0.04),
)
# (encoding, ldid, cpg, mess) for generic shapefiles.
SHP_ENCODING = (
    (("utf-8", 0, "UTF-8", ()), 0.60),
    (("cp950", 0x4F, None, ("big5-dbf-no-cpg", "big5-ldid-says-so")), 0.18),
    (("cp950", 0x78, "950", ()), 0.10),
    (("utf-8", 0, None, ("utf8-dbf-no-cpg",)), 0.12),
)


def _pick(rng: np.random.Generator, options):
    values = [o for o, _ in options]
    weights = np.array([w for _, w in options])
    return values[int(rng.choice(len(values), p=weights / weights.sum()))]


def candidates() -> list[Task]:
    """Every generic layer the city could have, in a fixed order (ids not yet unique)."""
    out = []
    for i, th in enumerate(names.THEMES):
        out.append(Task("generic", cp.slug(th.title_en), ("theme", i, "", "")))
        if th.per == "district":
            for d in names.DISTRICTS:
                out.append(
                    Task(
                        "generic",
                        f"{cp.slug(th.title_en)}-{cp.slug(d[1])}",
                        ("theme", i, "district", d[0]),
                    )
                )
        elif th.per == "year":
            for y in names.YEARS_ROC:
                out.append(
                    Task(
                        "generic",
                        f"{cp.slug(th.title_en)}-{y + 1911}",
                        ("theme", i, "year", str(y)),
                    )
                )
    for plan in names.PLAN_AREAS:
        for i, th in enumerate(PLAN_THEMES):
            out.append(
                Task(
                    "generic",
                    f"{cp.slug(th.title_en)}-{_plan_slug(plan)}",
                    ("plan", i, "plan", plan),
                )
            )
    return out


def _plan_slug(plan: str) -> str:
    for name, en, *_ in names.DISTRICTS:
        if plan.startswith(name[:-1]) or plan.startswith(name[:2]):
            return cp.slug(en)
    specials = {
        "臺中市都市計畫": "taichung",
        "大坑風景區": "dakeng",
        "臺中港特定區": "taichung-port",
        "高鐵臺中站地區": "hsr-station",
        "水湳機場原址": "shuinan",
        "烏日溪南": "wuri-xinan",
    }
    return specials[plan]


def _title(th: names.Theme, variant: str, value: str) -> tuple[str, str]:
    if variant == "district":
        en = next(d[1] for d in names.DISTRICTS if d[0] == value)
        return f"臺中市{value}{th.title}", f"{th.title_en} — {en} District"
    if variant == "year":
        return f"臺中市{th.title}（{value}年）", f"{th.title_en} {int(value) + 1911}"
    if variant == "plan":
        return f"{value}{th.title}", f"{th.title_en.capitalize()} — {_plan_en(value)}"
    return f"臺中市{th.title}", th.title_en


def _plan_en(plan: str) -> str:
    return _plan_slug(plan).replace("-", " ").title()


def _centre(ctx: Context, variant: str, value: str) -> tuple[float, float] | None:
    name = value if variant == "district" else value[:2] + "區"
    for d in ctx.city.districts:
        if d.name == name or (variant == "plan" and d.name.startswith(value[:2])):
            c = d.polygon.representative_point()
            return (c.x, c.y)
    return None


def _table(
    ctx: Context, rng: np.random.Generator, th: names.Theme, variant: str, value: str, prefix: str
) -> Table:
    big = ctx.big
    centre = _centre(ctx, variant, value)
    if th.kind == "points":
        n = int(np.clip(rng.lognormal(5.0, 1.0), 10, 4000)) if big else int(rng.integers(5, 60))
        xy = None
        if variant == "district":
            poly = next(d.polygon for d in ctx.city.districts if d.name == value)
            xy = sample_in(poly, n, rng)
        return tables.point_table(ctx.city, rng, n, th.noun, prefix, xy=xy)
    if th.kind == "lines":
        n = int(rng.integers(10, 400)) if big else int(rng.integers(3, 20))
        return tables.line_table(ctx.city.lines(n, rng), rng, th.noun, prefix)
    n = int(rng.integers(10, 300)) if big else int(rng.integers(4, 20))
    plan = value if variant == "plan" else th.title
    return tables.zone_table(ctx.city.zones(n, rng, centre, 0.03), rng, plan, prefix)


@builder
def generic(ctx: Context, task: Task) -> list[Entry]:
    """One generic layer: theme (+ variant) → table → a format drawn by weight."""
    family, idx, variant, value = task.params
    th = (names.THEMES if family == "theme" else PLAN_THEMES)[idx]
    rng = rng_for(ctx.seed, task.id)
    title, title_en = _title(th, variant, value)
    table = _table(ctx, rng, th, variant, value, "F")
    mess: list[str] = []
    if rng.random() < 0.05 and len(table) >= 6:
        with_nulls(table, rng, int(rng.integers(1, 4)))
        mess.append("null-geometry")
    fmt = _pick(rng, FORMATS[th.kind])
    freq = names.FREQUENCIES[int(rng.integers(0, len(names.FREQUENCIES)))]
    m = meta(
        title, title_en, th.agency, th.category, th.keywords, freq, f"包含{th.noun}之位置與屬性"
    )
    base = f"{th.agency}/{title}"
    if fmt in ("shp", "shp.zip"):
        prj, crs, crs_mess = _pick(rng, SHP_CRS)
        encoding, ldid, cpg, enc_mess = _pick(rng, SHP_ENCODING)
        mess += [*crs_mess, *enc_mess]
        kw = {"encoding": encoding, "ldid": ldid, "cpg": cpg, "prj": prj}
        if fmt == "shp":
            return [cp._shp_entry(ctx, task, m, f"{base}.shp", table, crs, mess=mess, **kw)]
        cp950 = bool(rng.random() < 0.5)
        entries = cp._zip_shapefile(ctx, f"{base}.zip", "", title, table, crs, **kw)
        fm.write_zip(ctx.path(f"{base}.zip"), entries, cp950_names=cp950)
        mess += ["zip-cp950-names"] if cp950 else []
        exp = expect(
            task.id,
            table,
            fmt="shapefile",
            crs=crs,
            mess=mess,
            key="編號",
            encoding=encoding,
            dbf=True,
        )
        return [Entry(task.id, m, f"{base}.zip", [exp])]
    if fmt == "geojson":
        table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")
        fm.write_geojson(ctx.path(f"{base}.geojson"), table)
        exp = expect(task.id, table, fmt="geojson", crs="EPSG:4326", mess=mess, key="編號")
        return [Entry(task.id, m, f"{base}.geojson", [exp])]
    if fmt == "topojson":
        fm.write_topojson(ctx.path(f"{base}.topojson"), cp.slug(title_en) or "layer", table)
        exp = expect(
            task.id, table, fmt="topojson", crs="EPSG:4326", mess=[*mess, "topojson"], key="編號"
        )
        return [Entry(task.id, m, f"{base}.topojson", [exp])]
    if fmt == "gpkg":
        crs = "EPSG:3826" if rng.random() < 0.7 else "EPSG:4326"
        cp._gpkg(ctx, f"{base}.gpkg", [(title, table, crs)])
        exp = expect(task.id, table, fmt="gpkg", crs=crs, mess=mess, key="編號")
        return [Entry(task.id, m, f"{base}.gpkg", [exp])]
    return [_generic_csv(ctx, task, m, base, table, fmt, rng, mess)]


def _generic_csv(
    ctx: Context,
    task: Task,
    m: cp.Meta,
    base: str,
    table: Table,
    fmt: str,
    rng: np.random.Generator,
    mess: list[str],
) -> Entry:
    big5 = bool(rng.random() < 0.3)
    if fmt == "csv-lonlat":
        crs = "EPSG:4326"
        cp._snap_points(table)
        heads = [("經度", "緯度"), ("lon", "lat"), ("Longitude", "Latitude")][int(rng.integers(3))]
        mess.append("csv-lonlat")
    else:
        crs = "EPSG:3826"
        heads = [("X坐標", "Y坐標"), ("TWD97X", "TWD97Y")][int(rng.integers(2))]
        mess.append("csv-tm2-xy")
    if big5:
        mess.append("csv-big5")
    xs, ys = cp._fmt_xy(table, crs)
    header = [[c.name for c in table.columns] + list(heads)]
    rows = [
        [_csv_text(c.values[i]) for c in table.columns] + [xs[i], ys[i]] for i in range(len(table))
    ]
    if any(g is None for g in table.geometry):
        mess.append("csv-empty-coords")
    return cp._csv_entry(
        ctx,
        task,
        m,
        f"{base}.csv",
        table,
        header,
        rows,
        crs=crs,
        mess=mess,
        encoding="cp950" if big5 else "utf-8",
        bom=bool(not big5 and rng.random() < 0.5),
    )


def _csv_text(v) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)
