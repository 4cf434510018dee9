"""The corpus plan: which sources exist, how each one is written, and the truth about it.

A *source* is one file (or zip, or GeoPackage) an agency hands in; it yields one or more
manifest entries, and each entry yields one or more catalog layers. Every builder writes its
files and returns :class:`Entry` objects that carry the truth (:class:`Expected`) recorded in
``expected.json``: the real CRS, counts, bounding boxes and exact attribute values, so that
ingest tests can check themselves against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import shapely

from geoportal.sample import formats as fm
from geoportal.sample import names, tables
from geoportal.sample.city import ISLANDS, CityModel, rng_for
from geoportal.sample.formats import Column, Table

# Every class of mess the corpus contains, with what it is. Tests check each one is present.
MESS_CLASSES: dict[str, str] = {
    "big5-dbf-no-cpg": "shapefile whose DBF is Big5/CP950 and has no .cpg",
    "big5-ldid-says-so": "Big5 DBF whose language driver byte (0x4F) says Big5",
    "big5-ldid-silent": "Big5 DBF whose language driver byte is 0 (says nothing)",
    "big5-vendor-chars": "Big5 vendor-extension bytes (absent from CP950) for place names",
    "utf8-dbf-no-cpg": "UTF-8 DBF with no .cpg",
    "utf8-cut-at-field-width": "UTF-8 text cut mid-character at an 80-byte DBF field",
    "cpg-lies": ".cpg says UTF-8, the bytes are Big5",
    "prj-custom-wkt": ".prj with custom WKT that matches no EPSG code (TM2[TWD97], twd97)",
    "prj-tm2-wgs84-datum": ".prj with a TM2 projection on a 'WGS84' datum",
    "prj-missing": "no .prj at all: CRS must be inferred from coordinate ranges",
    "geojson-legacy-crs": "GeoJSON with a legacy `crs` member in EPSG:3826",
    "coords-3d": "3-D coordinates",
    "far-islands": "extent legitimately reaching far islands (Penghu, Kinmen, Matsu, Lanyu)",
    "tm2-zone-119": "TWD97 TM2 zone 119 (EPSG:3825) coordinates",
    "twd67": "TWD67 TM2 coordinates (EPSG:3828) that need a datum shift",
    "crs-epsg-3824": "TWD97 geographic coordinates (EPSG:3824)",
    "crs-epsg-3857": "Web Mercator coordinates (EPSG:3857)",
    "zip-cp950-names": "zip with Chinese file names stored in CP950 without the UTF-8 flag",
    "zip-macosx-junk": "zip with __MACOSX/ AppleDouble junk",
    "zip-nested-folders": "zip whose shapefile sits in nested folders",
    "zip-nested-zip": "zip inside a zip",
    "git-lfs-pointer": "a Git-LFS pointer file posing as data",
    "csv-big5": "CSV in Big5",
    "csv-utf8-bom": "CSV in UTF-8 with a BOM",
    "csv-pipe": "pipe-delimited text",
    "csv-tab": "tab-delimited text",
    "csv-two-header-rows": "two header rows (Chinese, then English)",
    "csv-lonlat": "CSV with lon/lat columns",
    "csv-tm2-xy": "CSV with TM2 X/Y columns",
    "csv-empty-coords": "rows with empty coordinates",
    "csv-swapped-latlon": "lat/lon columns whose headers are swapped",
    "csv-units": "numbers with units (3,869 公尺)",
    "csv-roc-dates": "ROC dates (民國112/01/31 = 2023-01-31)",
    "csv-thousands": "numbers with thousands separators",
    "csv-embedded-newlines": "quoted values with embedded newlines",
    "manifest-overrides": "CRS and coordinate columns given in the manifest",
    "kml-folders": "KML with several folders, each a layer",
    "kml-mixed-geometry": "KML folder with points, lines and polygons mixed",
    "gpkg-multi-layer": "GeoPackage with several layers",
    "gpkg-multi-crs": "GeoPackage whose layers are in different CRSs",
    "multi-sublayer-no-layer-key": "multi-layer source with no `layer:`: yields <id>-<n>",
    "topojson": "TopoJSON, quantised, no CRS declared",
    "unclosed-rings": "polygon rings that are not closed",
    "invalid-geometry": "self-intersecting (bow-tie) polygons",
    "null-geometry": "features with no geometry",
    "raster-float32-nodata-32767": "float32 DEM with nodata -32767",
    "raster-float64-nodata-min": "float64 DEM with nodata -1.797693e+308",
    "raster-sidecars": "external .ovr, .aux.xml and .tfw sidecars",
    "raster-custom-wkt": "raster CRS as custom TM2 WKT with no EPSG code",
    "raster-rgb": "an RGB scan / orthophoto",
}


@dataclass(frozen=True)
class Meta:
    """The descriptive fields of a manifest entry."""

    title: str
    title_en: str
    agency: str
    category: str
    keywords: tuple[str, ...]
    update_frequency: str
    description: str


@dataclass
class Expected:
    """The truth about one catalog layer that ingest should produce."""

    id: str
    kind: str
    format: str
    crs: str
    geometry_type: str = ""
    sublayer: str | None = None
    encoding: str | None = None
    feature_count: int = 0
    null_geometries: int = 0
    invalid_geometries: int = 0
    bbox: list[float] = field(default_factory=list)
    bbox_source: list[float] = field(default_factory=list)
    mess: list[str] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    outcome: str = "ok"
    reason: str = ""
    raster: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON form stored in expected.json."""
        d = dict(self.__dict__)
        return {k: v for k, v in d.items() if v not in (None, "", [], {})}


@dataclass
class Entry:
    """One manifest entry and the catalog layers it yields."""

    id: str
    meta: Meta
    source: str
    expected: list[Expected]
    layer: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    style: dict = field(default_factory=dict)
    tileset: str = ""

    def manifest(self, defaults: dict[str, str]) -> dict:
        """The entry as it appears in layers.yaml (keys equal to the defaults are left out)."""
        m = self.meta
        d: dict = {"id": self.id, "title": m.title, "title_en": m.title_en}
        agency = names.agency_full(m.agency)
        if agency != defaults.get("agency"):
            d["agency"] = agency
        d |= {"category": m.category, "source": self.source}
        if self.layer:
            d["layer"] = self.layer
        d |= self.overrides
        d |= {
            "update_frequency": m.update_frequency,
            "keywords": list(m.keywords),
            "description": m.description,
        }
        if self.style:
            d["style"] = self.style
        if self.tileset:
            d["tileset"] = self.tileset
        return d


@dataclass
class Context:
    """What every builder needs: where to write, the seed, the scale and the city."""

    out: Path
    seed: int
    scale: str
    city: CityModel

    @property
    def big(self) -> bool:
        """Whether this is the city-scale corpus."""
        return self.scale == "city"

    def path(self, rel: str) -> Path:
        """An output path (parents created) for a corpus-relative name."""
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@dataclass(frozen=True)
class Task:
    """A unit of work for one builder, small enough to send to a worker process."""

    builder: str
    id: str
    params: tuple = ()


# --- truth helpers ----------------------------------------------------------------------------


def _bbox(geoms: np.ndarray) -> list[float]:
    present = [g for g in geoms if g is not None]
    if not present:
        return []
    return [round(float(v), 7) for v in shapely.total_bounds(np.array(present, dtype=object))]


def _gtype(geoms: np.ndarray) -> str:
    kinds = sorted({g.geom_type for g in geoms if g is not None})
    return kinds[0] if len(kinds) == 1 else "Mixed"


def _read_value(col: Column, value, encoding: str | None, dbf: bool):
    """The value a correct reader gets back from the file for ``value``."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if col.kind == "float":
        return round(float(value), col.decimals) if dbf else float(value)
    if col.kind == "int":
        return int(value)
    if dbf and col.kind == "str":
        codec = "utf-8" if encoding == "utf-8" else "big5hkscs"
        raw = (fm.ENCODERS[encoding or "utf-8"](value))[: col.width]
        return raw.decode(codec, errors="ignore").rstrip()
    return value


def samples_of(
    table: Table,
    idxs: list[int],
    key: str,
    *,
    encoding: str | None = None,
    dbf: bool = False,
    empty_is_null: bool = False,
) -> list[dict]:
    """Exact attribute values of chosen records, keyed by a unique column.

    A record without geometry is marked ``"geometry": null`` (ingest drops it); with
    ``empty_is_null`` (text formats) an empty string's truth is null.
    """
    key_col = table.column(key)
    out = []
    for i in sorted(set(idxs)):
        attrs = {c.name: _read_value(c, c.values[i], encoding, dbf) for c in table.columns}
        if empty_is_null:
            attrs = {k: None if v == "" else v for k, v in attrs.items()}
        sample = {"where": {key: key_col.values[i]}, "attributes": attrs}
        if table.geometry[i] is None:
            sample["geometry"] = None
        out.append(sample)
    return out


def expect(
    id_: str,
    table: Table,
    *,
    fmt: str,
    crs: str,
    mess: list[str],
    key: str,
    extra: list[int] = (),
    encoding: str | None = None,
    dbf: bool = False,
    sublayer: str | None = None,
    invalid: int = 0,
) -> Expected:
    """Truth for a vector layer: counts, bboxes, and three or more sample records."""
    n = len(table)
    idxs = [0, n // 2, n - 1, *extra]
    return Expected(
        id=id_,
        kind="vector",
        format=fmt,
        crs=crs,
        geometry_type=_gtype(table.geometry),
        sublayer=sublayer,
        encoding=encoding,
        feature_count=n,
        null_geometries=sum(g is None for g in table.geometry),
        invalid_geometries=invalid,
        bbox=_bbox(table.geometry),
        bbox_source=_bbox(fm.project(table.geometry, crs)),
        mess=sorted(set(mess)),
        samples=samples_of(
            table, idxs, key, encoding=encoding, dbf=dbf, empty_is_null=fmt == "csv"
        ),
    )


def meta(
    title: str,
    title_en: str,
    agency: str,
    category: str,
    keywords: tuple[str, ...],
    freq: str,
    what: str,
) -> Meta:
    """Manifest metadata with a standard description."""
    desc = f"{names.agency_full(agency)}提供之{title}圖資，{what}。"
    return Meta(title, title_en, agency, category, keywords, freq, desc)


def with_nulls(table: Table, rng: np.random.Generator, k: int) -> list[int]:
    """Blank out the geometry of ``k`` records (not the first or last); returns their indexes."""
    n = len(table)
    if n < 6 or k == 0:
        return []
    idx = sorted(int(i) for i in rng.choice(np.arange(1, n - 1), size=min(k, n - 2), replace=False))
    geoms = table.geometry.copy()
    geoms[idx] = None
    table.geometry = geoms
    return idx


BUILDERS: dict[str, Callable[[Context, Task], list[Entry]]] = {}


def builder(fn: Callable[[Context, Task], list[Entry]]) -> Callable[[Context, Task], list[Entry]]:
    """Register a builder under its function name."""
    BUILDERS[fn.__name__] = fn
    return fn


def _shp_entry(
    ctx: Context,
    task: Task,
    m: Meta,
    rel: str,
    table: Table,
    crs: str,
    *,
    encoding: str = "utf-8",
    ldid: int = 0,
    cpg: str | None = "UTF-8",
    prj: str | None = "epsg",
    mess: list[str] = (),
    key: str = "編號",
    extra: list[int] = (),
    invalid: int = 0,
) -> Entry:
    fm.write_shapefile(ctx.path(rel), table, crs, encoding=encoding, ldid=ldid, cpg=cpg, prj=prj)
    exp = expect(
        task.id,
        table,
        fmt="shapefile",
        crs=crs,
        mess=list(mess),
        key=key,
        extra=list(extra),
        encoding=encoding,
        dbf=True,
        invalid=invalid,
    )
    return Entry(task.id, m, rel, [exp])


def _zip_shapefile(
    ctx: Context, rel_zip: str, inner_dir: str, stem: str, table: Table, crs: str, **kw
) -> list[tuple[str, bytes]]:
    """Write a shapefile to a scratch folder and return its files as zip entries."""
    scratch = ctx.path(f".scratch/{rel_zip}/{stem}.shp")
    files = fm.write_shapefile(scratch, table, crs, **kw)
    entries = [(f"{inner_dir}{f.name}", f.read_bytes()) for f in files]
    for f in files:
        f.unlink()
    return entries


# --- the showcase: every class of mess, at every scale -----------------------------------------


@builder
def districts(ctx: Context, task: Task) -> list[Entry]:
    """The baseline: a clean shapefile with GDAL's own .prj and a .cpg."""
    table = tables.district_table(ctx.city)
    m = meta(
        "臺中市行政區界",
        "Taichung district boundaries",
        "民政局",
        "公共資訊",
        ("行政區", "區界"),
        "不定期",
        "包含本市29個行政區之範圍、代碼與人口數",
    )
    return [
        _shp_entry(
            ctx, task, m, "民政局/行政區界/臺中市行政區界.shp", table, "EPSG:3826", key="TOWNCODE"
        )
    ]


@builder
def villages(ctx: Context, task: Task) -> list[Entry]:
    """Villages: Big5 DBF with vendor characters, no .cpg, LDID 0x4F, custom TM2[TWD97] .prj."""
    table = tables.village_table(ctx.city)
    vendor = [
        i for i, v in enumerate(table.column("VILLNAME").values) if v in names.VENDOR_VILLAGES
    ]
    m = meta(
        "臺中市村里界",
        "Taichung village boundaries",
        "民政局",
        "公共資訊",
        ("村里", "行政區"),
        "每年",
        "包含本市各村里之範圍與代碼",
    )
    return [
        _shp_entry(
            ctx,
            task,
            m,
            "民政局/村里界/臺中市村里界.shp",
            table,
            "EPSG:3826",
            encoding="cp950",
            ldid=0x4F,
            cpg=None,
            prj="tm2-twd97",
            key="VILLCODE",
            extra=vendor,
            mess=["big5-dbf-no-cpg", "big5-ldid-says-so", "big5-vendor-chars", "prj-custom-wkt"],
        )
    ]


@builder
def statistical_areas_topojson(ctx: Context, task: Task) -> list[Entry]:
    """Villages of the central districts as a quantised TopoJSON (no CRS declared)."""
    full = tables.village_table(ctx.city)
    central = {"中區", "東區", "南區", "西區", "北區", "西屯區"}
    keep = [i for i, t in enumerate(full.column("TOWNNAME").values) if t in central]
    table = Table(
        full.geometry[keep],
        [Column(c.name, c.kind, [c.values[i] for i in keep], c.width) for c in full.columns],
    )
    rel = "主計處/統計區/最小統計區.topo.json"
    fm.write_topojson(ctx.path(rel), "stat_area", table)
    m = meta(
        "臺中市市區統計區",
        "Central Taichung statistical areas",
        "主計處",
        "公共資訊",
        ("統計區", "村里"),
        "每年",
        "以村里為單位之市區統計區",
    )
    # Quantisation moves vertices by up to half a grid step: bbox truth is the quantised one.
    exp = expect(task.id, table, fmt="topojson", crs="EPSG:4326", mess=["topojson"], key="VILLCODE")
    return [Entry(task.id, m, rel, [exp])]


@builder
def roads_zip(ctx: Context, task: Task) -> list[Entry]:
    """Road centre lines (≈50k at city scale) zipped on a Mac by a Windows-named folder."""
    rng = rng_for(ctx.seed, task.id)
    n = 50_000 if ctx.big else 400
    segs = ctx.city.road_network(n, rng)
    geoms = shapely.linestrings(segs)
    table = tables.line_table(geoms, rng, "道路", "R")
    table.columns.insert(
        2, Column("等級", "str", rng.choice(names.ROAD_KINDS, len(geoms)).tolist(), width=16)
    )
    inner = "道路中心線/112年度/"
    entries = _zip_shapefile(
        ctx, "建設局/道路中心線.zip", inner, "道路中心線", table, "EPSG:3826", cpg=None, prj="twd97"
    )
    fm.write_zip(
        ctx.path("建設局/道路中心線.zip"),
        entries + fm.macosx_junk([e[0] for e in entries]),
        cp950_names=True,
    )
    m = meta(
        "臺中市道路中心線",
        "Road centre lines",
        "建設局",
        "交通及通訊",
        ("道路", "路網"),
        "每季",
        "包含市區道路中心線、道路等級與長度",
    )
    exp = expect(
        task.id,
        table,
        fmt="shapefile",
        crs="EPSG:3826",
        key="編號",
        encoding="utf-8",
        dbf=True,
        mess=[
            "zip-cp950-names",
            "zip-macosx-junk",
            "zip-nested-folders",
            "utf8-dbf-no-cpg",
            "prj-custom-wkt",
        ],
    )
    return [Entry(task.id, m, "建設局/道路中心線.zip", [exp])]


@builder
def buildings_zip(ctx: Context, task: Task) -> list[Entry]:
    """Building footprints (≈300k at city scale), zipped, with no .prj (CRS must be inferred)."""
    rng = rng_for(ctx.seed, task.id)
    n = 300_000 if ctx.big else 800
    table = tables.building_table(ctx.city.buildings(n, rng), rng)
    entries = _zip_shapefile(
        ctx, "地政局/建物輪廓.zip", "", "建物輪廓", table, "EPSG:3826", prj=None
    )
    fm.write_zip(ctx.path("地政局/建物輪廓.zip"), entries, cp950_names=True)
    m = meta(
        "臺中市建物輪廓",
        "Building footprints",
        "地政局",
        "購屋及遷徙",
        ("建物", "房屋"),
        "每年",
        "包含建物平面輪廓、樓層數與構造",
    )
    exp = expect(
        task.id,
        table,
        fmt="shapefile",
        crs="EPSG:3826",
        key="建物號",
        encoding="utf-8",
        dbf=True,
        mess=["prj-missing", "zip-cp950-names"],
    )
    return [Entry(task.id, m, "地政局/建物輪廓.zip", [exp])]


@builder
def zoning_nested_zip(ctx: Context, task: Task) -> list[Entry]:
    """Old urban-planning zones in TWD67 TM2, a zip inside a zip."""
    rng = rng_for(ctx.seed, task.id)
    n = 1200 if ctx.big else 60
    table = tables.zone_table(
        ctx.city.zones(n, rng, (120.68, 24.15), 0.06), rng, "臺中市都市計畫", "Z"
    )
    files = _zip_shapefile(ctx, "都市發展局/使用分區.zip", "", "使用分區_TWD67", table, "EPSG:3828")
    inner_zip = ctx.path(".scratch/inner.zip")
    fm.write_zip(inner_zip, files, cp950_names=True)
    rel = "都市發展局/都市計畫使用分區_TWD67.zip"
    fm.write_zip(ctx.path(rel), [("使用分區_TWD67.zip", inner_zip.read_bytes())], cp950_names=True)
    inner_zip.unlink()
    m = meta(
        "臺中市都市計畫使用分區（TWD67）",
        "Urban zoning (TWD67)",
        "都市發展局",
        "購屋及遷徙",
        ("都市計畫", "使用分區"),
        "不定期",
        "舊版TWD67坐標之都市計畫使用分區",
    )
    exp = expect(
        task.id,
        table,
        fmt="shapefile",
        crs="EPSG:3828",
        key="編號",
        encoding="utf-8",
        dbf=True,
        mess=["zip-nested-zip", "twd67"],
    )
    return [Entry(task.id, m, rel, [exp])]


def _csv_entry(
    ctx: Context,
    task: Task,
    m: Meta,
    rel: str,
    table: Table,
    header: list[list[str]],
    rows: list[list[str]],
    *,
    crs: str,
    mess: list[str],
    key: str = "編號",
    encoding: str = "utf-8",
    bom: bool = False,
    delimiter: str = ",",
    overrides: dict[str, str] | None = None,
    raw_of: Callable[[int], dict] | None = None,
    extra: list[int] = (),
) -> Entry:
    fm.write_csv(ctx.path(rel), header, rows, encoding=encoding, bom=bom, delimiter=delimiter)
    exp = expect(
        task.id,
        table,
        fmt="csv",
        crs=crs,
        mess=mess,
        key=key,
        extra=list(extra),
        encoding="cp950" if encoding == "cp950" else "utf-8",
    )
    if raw_of is not None:
        for s in exp.samples:
            i = table.column(key).values.index(s["where"][key])
            s["raw"] = raw_of(i)
    return Entry(task.id, m, rel, [exp], overrides=overrides or {})


def _fmt_xy(table: Table, crs: str) -> tuple[list[str], list[str]]:
    """Coordinates as agencies write them: TM2 to 0.001 m, degrees to 7 decimals, '' for none."""
    digits = fm.precision(crs)
    geoms = fm.project(table.geometry, crs)
    xs, ys = [], []
    for g in geoms:
        if g is None:
            xs.append("")
            ys.append("")
        else:
            xs.append(f"{g.x:.{digits}f}")
            ys.append(f"{g.y:.{digits}f}")
    return xs, ys


def _snap_points(table: Table) -> None:
    """Round lon/lat points to the 7 decimals a CSV holds, so the truth matches the file."""
    table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")


@builder
def addresses_csv(ctx: Context, task: Task) -> list[Entry]:
    """Door plates (≈1M at city scale): UTF-8 BOM, TM2 橫座標/縱座標, some without coordinates."""
    rng = rng_for(ctx.seed, task.id)
    n = 1_000_000 if ctx.big else 3000
    table = tables.address_table(ctx.city, rng, n)
    empty = with_nulls(table, rng, max(3, n // 2000))
    xs, ys = _fmt_xy(table, "EPSG:3826")
    cols = table.columns
    header = [[c.name for c in cols] + ["橫座標", "縱座標"]]
    str_cols = [[str(v) for v in c.values] for c in cols]
    rows = [list(r) for r in zip(*str_cols, xs, ys, strict=True)]
    m = meta(
        "臺中市門牌地址",
        "Door-plate addresses",
        "民政局",
        "購屋及遷徙",
        ("門牌", "地址"),
        "每月",
        "包含本市門牌之結構化地址與TWD97坐標",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "民政局/門牌/臺中市門牌地址.csv",
            table,
            header,
            rows,
            crs="EPSG:3826",
            bom=True,
            mess=["csv-utf8-bom", "csv-tm2-xy", "csv-empty-coords", "null-geometry"],
            raw_of=lambda i: {"橫座標": xs[i], "縱座標": ys[i]},
            extra=empty[:1],
        )
    ]


def _roc(d: date, style: str) -> str:
    y = d.year - 1911
    if style == "slash":
        return f"{y}/{d.month:02d}/{d.day:02d}"
    return f"民國{y}年{d.month}月{d.day}日"


@builder
def parking_big5_csv(ctx: Context, task: Task) -> list[Entry]:
    """Parking lots: Big5 CSV, lon/lat, thousands separators, ROC dates."""
    rng = rng_for(ctx.seed, task.id)
    n = 900 if ctx.big else 40
    table = tables.point_table(ctx.city, rng, n, "停車場", "PK")
    _snap_points(table)
    spaces = [int(v) for v in rng.integers(20, 4000, n)]
    table.columns[6] = Column("車位數", "int", spaces)
    dates = table.column("設立日").values
    xs, ys = _fmt_xy(table, "EPSG:4326")
    header = [
        ["編號", "名稱", "行政區", "地址", "電話", "啟用日期", "車位數", "類別", "經度", "緯度"]
    ]
    rows = [[c.values[i] if c.kind == "str" else "" for c in table.columns] for i in range(n)]
    for i, r in enumerate(rows):
        r[5] = _roc(dates[i], "slash")
        r[6] = f"{spaces[i]:,}"
        r += [xs[i], ys[i]]
    table.columns[5] = Column("啟用日期", "date", dates)
    m = meta(
        "臺中市公有路外停車場",
        "Public off-street parking",
        "交通局",
        "交通及通訊",
        ("停車場", "交通"),
        "每月",
        "包含停車場位置、車位數與啟用日期",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "交通局/停車場/公有路外停車場.csv",
            table,
            header,
            rows,
            crs="EPSG:4326",
            encoding="cp950",
            mess=["csv-big5", "csv-lonlat", "csv-thousands", "csv-roc-dates"],
            raw_of=lambda i: {"車位數": rows[i][6], "啟用日期": rows[i][5]},
        )
    ]


@builder
def recycling_pipe_csv(ctx: Context, task: Task) -> list[Entry]:
    """Recycling stations: pipe-delimited, two header rows, numbers with units."""
    rng = rng_for(ctx.seed, task.id)
    n = 600 if ctx.big else 30
    table = tables.point_table(ctx.city, rng, n, "回收站", "RC")
    _snap_points(table)
    radius = [int(v) for v in rng.integers(100, 5000, n)]
    area = [round(float(v), 1) for v in rng.uniform(10, 400, n)]
    base = table.columns[:5]
    table.columns = [*base, Column("服務半徑", "int", radius), Column("面積", "float", area)]
    xs, ys = _fmt_xy(table, "EPSG:4326")
    header = [
        ["編號", "名稱", "行政區", "地址", "電話", "服務半徑", "面積", "經度", "緯度"],
        ["ID", "Name", "District", "Address", "Phone", "Radius", "Area", "Longitude", "Latitude"],
    ]
    rows = [
        [str(c.values[i]) for c in base]
        + [f"{radius[i]:,} 公尺", f"{area[i]} 平方公尺", xs[i], ys[i]]
        for i in range(n)
    ]
    m = meta(
        "臺中市資源回收站",
        "Recycling stations",
        "環境保護局",
        "生活安全及品質",
        ("回收", "環保"),
        "不定時",
        "包含回收站位置、服務半徑與面積",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "環境保護局/資源回收站.csv",
            table,
            header,
            rows,
            crs="EPSG:4326",
            delimiter="|",
            mess=["csv-pipe", "csv-two-header-rows", "csv-units", "csv-thousands", "csv-lonlat"],
            raw_of=lambda i: {"服務半徑": rows[i][5], "面積": rows[i][6]},
        )
    ]


@builder
def shelters_swapped_csv(ctx: Context, task: Task) -> list[Entry]:
    """Evacuation shelters: the 緯度 column holds longitudes and 經度 latitudes."""
    rng = rng_for(ctx.seed, task.id)
    n = 500 if ctx.big else 30
    table = tables.point_table(ctx.city, rng, n, "收容所", "SH")
    _snap_points(table)
    xs, ys = _fmt_xy(table, "EPSG:4326")
    cols = [c for c in table.columns if c.kind == "str"]
    table.columns = cols
    header = [[c.name for c in cols] + ["緯度", "經度"]]
    rows = [[c.values[i] for c in cols] + [xs[i], ys[i]] for i in range(n)]
    m = meta(
        "臺中市避難收容處所",
        "Evacuation shelters",
        "消防局",
        "生活安全及品質",
        ("避難", "防災"),
        "每年",
        "包含避難收容處所位置與聯絡資訊",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "消防局/避難收容處所.csv",
            table,
            header,
            rows,
            crs="EPSG:4326",
            mess=["csv-swapped-latlon", "csv-lonlat"],
            raw_of=lambda i: {"緯度": xs[i], "經度": ys[i]},
        )
    ]


@builder
def control_points_twd67_csv(ctx: Context, task: Task) -> list[Entry]:
    """Survey control points in TWD67 TM2; the manifest names the CRS and the X/Y columns."""
    rng = rng_for(ctx.seed, task.id)
    n = 400 if ctx.big else 25
    table = tables.point_table(ctx.city, rng, n, "三角點", "TP")
    table.columns = [c for c in table.columns if c.name in ("編號", "名稱", "行政區")]
    xs, ys = _fmt_xy(table, "EPSG:3828")
    header = [["點號", "點名", "行政區", "橫坐標67", "縱坐標67"]]
    rows = [
        [
            table.columns[0].values[i],
            table.columns[1].values[i],
            table.columns[2].values[i],
            xs[i],
            ys[i],
        ]
        for i in range(n)
    ]
    table.columns[0].name, table.columns[1].name = "點號", "點名"
    m = meta(
        "臺中市三角點（TWD67）",
        "Survey control points (TWD67)",
        "地政局",
        "購屋及遷徙",
        ("三角點", "測量"),
        "不定期",
        "舊版TWD67坐標之測量控制點",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "地政局/三角點_TWD67.csv",
            table,
            header,
            rows,
            crs="EPSG:3828",
            key="點號",
            mess=["twd67", "manifest-overrides", "csv-tm2-xy"],
            overrides={"crs": "EPSG:3828", "x": "橫坐標67", "y": "縱坐標67"},
        )
    ]


@builder
def polling_csv_newlines(ctx: Context, task: Task) -> list[Entry]:
    """Polling stations: embedded newlines in quoted notes, dates as 民國112年1月31日."""
    rng = rng_for(ctx.seed, task.id)
    n = 800 if ctx.big else 30
    table = tables.point_table(ctx.city, rng, n, "投票所", "VT")
    _snap_points(table)
    notes = [
        f"投票所設於{a}\r\n無障礙設施：{'有' if i % 2 else '無'}"
        for i, a in enumerate(table.column("地址").values)
    ]
    dates = table.column("設立日").values
    cols = [c for c in table.columns if c.kind == "str"]
    table.columns = [*cols, Column("備註", "str", notes), Column("設置日期", "date", dates)]
    xs, ys = _fmt_xy(table, "EPSG:4326")
    header = [[c.name for c in cols] + ["備註", "設置日期", "經度", "緯度"]]
    rows = [
        [c.values[i] for c in cols] + [notes[i], _roc(dates[i], "long"), xs[i], ys[i]]
        for i in range(n)
    ]
    m = meta(
        "臺中市投票所",
        "Polling stations",
        "民政局",
        "選舉及投票",
        ("選舉", "投票"),
        "不定期",
        "包含投票所位置、無障礙設施與設置日期",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "民政局/投票所.csv",
            table,
            header,
            rows,
            crs="EPSG:4326",
            mess=["csv-embedded-newlines", "csv-roc-dates", "csv-lonlat"],
            raw_of=lambda i: {"設置日期": rows[i][-3]},
        )
    ]


@builder
def aed_tsv(ctx: Context, task: Task) -> list[Entry]:
    """AED locations: tab-delimited .txt with TM2 X坐標/Y坐標."""
    rng = rng_for(ctx.seed, task.id)
    n = 700 if ctx.big else 30
    table = tables.point_table(ctx.city, rng, n, "AED", "AED")
    xs, ys = _fmt_xy(table, "EPSG:3826")
    cols = [c for c in table.columns if c.kind == "str"]
    table.columns = cols
    header = [[c.name for c in cols] + ["X坐標", "Y坐標"]]
    rows = [[c.values[i] for c in cols] + [xs[i], ys[i]] for i in range(n)]
    m = meta(
        "臺中市AED設置地點",
        "AED locations",
        "衛生局",
        "就醫",
        ("AED", "急救"),
        "每季",
        "包含自動體外心臟電擊去顫器設置地點",
    )
    return [
        _csv_entry(
            ctx,
            task,
            m,
            "衛生局/AED設置地點.txt",
            table,
            header,
            rows,
            crs="EPSG:3826",
            delimiter="\t",
            mess=["csv-tab", "csv-tm2-xy"],
        )
    ]


@builder
def zoning_geojson_legacy_crs(ctx: Context, task: Task) -> list[Entry]:
    """大坑 zoning: GeoJSON in EPSG:3826 via a legacy ``crs`` member, colours as strings."""
    rng = rng_for(ctx.seed, task.id)
    n = 300 if ctx.big else 40
    table = tables.zone_table(
        ctx.city.zones(n, rng, (120.76, 24.19), 0.03), rng, "大坑風景區", "DK"
    )
    rel = "都市發展局/大坑風景區使用分區.json"
    fm.write_geojson(
        ctx.path(rel), table, "EPSG:3826", legacy_crs="urn:ogc:def:crs:EPSG::3826", name="B0102"
    )
    m = meta(
        "大坑風景區都市計畫使用分區",
        "Dakeng zoning",
        "都市發展局",
        "購屋及遷徙",
        ("都市計畫", "大坑"),
        "不定期",
        "大坑風景區都市計畫之使用分區",
    )
    exp = expect(
        task.id, table, fmt="geojson", crs="EPSG:3826", key="編號", mess=["geojson-legacy-crs"]
    )
    return [Entry(task.id, m, rel, [exp])]


@builder
def rivers_geojson_3d(ctx: Context, task: Task) -> list[Entry]:
    """Rivers: GeoJSON lines with 3-D coordinates (elevation of the water surface)."""
    rng = rng_for(ctx.seed, task.id)
    n = 120 if ctx.big else 12
    flat = ctx.city.lines(n, rng, vertices=20)
    z = [np.linspace(rng.uniform(200, 900), rng.uniform(0, 50), 20) for _ in range(n)]
    geoms = np.array(
        [
            shapely.LineString(np.column_stack([np.asarray(g.coords), zz]))
            for g, zz in zip(flat, z, strict=True)
        ],
        dtype=object,
    )
    table = tables.line_table(flat, rng, "溪", "RV")
    table.geometry = geoms
    rel = "水利局/河川.geojson"
    fm.write_geojson(ctx.path(rel), table)
    m = meta(
        "臺中市河川",
        "Rivers",
        "水利局",
        "生活安全及品質",
        ("河川", "水系"),
        "不定期",
        "包含河川中心線與水面高程",
    )
    exp = expect(task.id, table, fmt="geojson", crs="EPSG:4326", key="編號", mess=["coords-3d"])
    return [Entry(task.id, m, rel, [exp])]


@builder
def districts_unclosed_geojson(ctx: Context, task: Task) -> list[Entry]:
    """A legacy district file: unclosed rings and two features with null geometry."""
    rng = rng_for(ctx.seed, task.id)
    table = tables.district_table(ctx.city)
    table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")
    unclosed = list(range(0, len(table), 3))
    nulls = with_nulls(table, rng, 2)
    unclosed = [i for i in unclosed if i not in nulls]
    rel = "民政局/舊版行政區界.json"
    fm.write_geojson(ctx.path(rel), table, unclosed_rings=unclosed)
    m = meta(
        "臺中市行政區界（舊版）",
        "District boundaries (legacy file)",
        "民政局",
        "公共資訊",
        ("行政區",),
        "不定期",
        "舊系統匯出之行政區界",
    )
    exp = expect(
        task.id,
        table,
        fmt="geojson",
        crs="EPSG:4326",
        key="TOWNCODE",
        mess=["unclosed-rings", "null-geometry"],
    )
    return [Entry(task.id, m, rel, [exp])]


def _bowtie(poly) -> shapely.Polygon:
    minx, miny, maxx, maxy = poly.bounds
    return shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy), (minx, miny)])


@builder
def landuse_invalid_shp(ctx: Context, task: Task) -> list[Entry]:
    """Current land use: bow-tie polygons and null geometries in a shapefile."""
    rng = rng_for(ctx.seed, task.id)
    n = 2000 if ctx.big else 50
    table = tables.zone_table(
        ctx.city.zones(n, rng, (120.64, 24.20), 0.05), rng, "土地使用現況", "LU"
    )
    geoms = table.geometry.copy()
    bad = list(range(5, len(geoms), 17))
    for i in bad:
        geoms[i] = _bowtie(geoms[i])
    table.geometry = geoms
    nulls = with_nulls(table, rng, 3)
    bad = [i for i in bad if i not in nulls]
    m = meta(
        "臺中市土地使用現況",
        "Current land use",
        "地政局",
        "購屋及遷徙",
        ("土地使用",),
        "每年",
        "包含土地使用現況之分類與面積",
    )
    return [
        _shp_entry(
            ctx,
            task,
            m,
            "地政局/土地使用現況.shp",
            table,
            "EPSG:3826",
            mess=["invalid-geometry", "null-geometry"],
            extra=bad[:2],
            invalid=len(bad),
        )
    ]


def _kml_folders(
    ctx: Context, rng: np.random.Generator, spec: list[tuple[str, str, str, int]], mixed: bool
) -> list[tuple[str, Table]]:
    out = []
    for folder, noun, kind, n in spec:
        if kind == "points":
            table = tables.point_table(ctx.city, rng, n, noun, noun[:1])
            table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")
        elif kind == "lines":
            table = tables.line_table(ctx.city.lines(n, rng), rng, noun, noun[:1])
        else:
            table = tables.zone_table(ctx.city.zones(n, rng), rng, folder, noun[:1])
        if mixed:
            pts = shapely.points(ctx.city.clustered_points(2, rng))
            geoms = table.geometry.copy()
            geoms[1], geoms[2] = pts[0], ctx.city.lines(1, rng)[0]
            table.geometry = geoms
        table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")
        table.columns = [c for c in table.columns if c.kind == "str"]
        out.append((folder, table))
    return out


def _label(table: Table) -> str:
    return "名稱" if any(c.name == "名稱" for c in table.columns) else "分區"


@builder
def tourism_kml(ctx: Context, task: Task) -> list[Entry]:
    """A My Maps export: three folders, one with mixed geometry; no ``layer:`` → <id>-<n>."""
    rng = rng_for(ctx.seed, task.id)
    k = 4 if ctx.big else 1
    spec = [
        ("景點", "景點", "points", 30 * k),
        ("自行車道", "車道", "lines", 8 * k),
        ("商圈範圍", "商圈", "zones", 6 * k),
    ]
    folders = _kml_folders(ctx, rng, spec, mixed=False)
    mixed = _kml_folders(ctx, rng, [("綜合", "設施", "points", 10 * k)], mixed=True)
    folders += mixed
    rel = "觀光旅遊局/臺中觀光地圖.kml"
    fm.write_kml(ctx.path(rel), "臺中觀光地圖", [(f, t, _label(t)) for f, t in folders])
    exps = []
    for i, (folder, table) in enumerate(folders, start=1):
        mess = ["kml-folders", "multi-sublayer-no-layer-key"]
        if folder == "綜合":
            mess.append("kml-mixed-geometry")
        exps.append(
            expect(
                f"{task.id}-{i}",
                table,
                fmt="kml",
                crs="EPSG:4326",
                key="編號",
                mess=mess,
                sublayer=folder,
            )
        )
    m = meta(
        "臺中觀光地圖",
        "Taichung tourism map",
        "觀光旅遊局",
        "休閒旅遊",
        ("觀光", "景點"),
        "不定期",
        "包含景點、自行車道、商圈範圍與綜合設施",
    )
    return [Entry(task.id, m, rel, exps)]


@builder
def heritage_kml_split(ctx: Context, task: Task) -> list[Entry]:
    """A heritage KML whose folders the manifest lists one by one with ``layer:``."""
    rng = rng_for(ctx.seed, task.id)
    k = 3 if ctx.big else 1
    spec = [
        ("古蹟", "古蹟", "points", 20 * k),
        ("歷史建築", "歷史建築", "points", 25 * k),
        ("文化景觀", "文化景觀", "zones", 5 * k),
    ]
    folders = _kml_folders(ctx, rng, spec, mixed=False)
    rel = "文化資產處/文化資產.kml"
    fm.write_kml(ctx.path(rel), "臺中市文化資產", [(f, t, _label(t)) for f, t in folders])
    ids = ["heritage-monuments", "heritage-historic-buildings", "heritage-cultural-landscapes"]
    ens = ["Monuments", "Historic buildings", "Cultural landscapes"]
    out = []
    for (folder, table), id_, en in zip(folders, ids, ens, strict=True):
        m = meta(
            f"臺中市{folder}",
            en,
            "文化資產處",
            "休閒旅遊",
            ("文化資產", folder),
            "不定期",
            f"本市登錄之{folder}",
        )
        exp = expect(
            id_,
            table,
            fmt="kml",
            crs="EPSG:4326",
            key="編號",
            mess=["kml-folders"],
            sublayer=folder,
        )
        out.append(Entry(id_, m, rel, [exp], layer=folder))
    return out


def _gpkg(ctx: Context, rel: str, layers: list[tuple[str, Table, str]]) -> None:
    path = ctx.path(rel)
    path.unlink(missing_ok=True)
    for i, (name, table, crs) in enumerate(layers):
        fm.write_gpkg_layer(path, name, table, crs, append=i > 0)


@builder
def flood_gpkg_split(ctx: Context, task: Task) -> list[Entry]:
    """A disaster-prevention GeoPackage: three layers in three CRSs, listed with ``layer:``."""
    rng = rng_for(ctx.seed, task.id)
    k = 5 if ctx.big else 1
    pumps = tables.point_table(ctx.city, rng, 20 * k, "抽水站", "PS")
    flood = tables.zone_table(
        ctx.city.zones(30 * k, rng, (120.66, 24.12), 0.05), rng, "淹水潛勢", "FL"
    )
    gauges = tables.point_table(ctx.city, rng, 15 * k, "雨量站", "RG")
    layers = [
        ("抽水站", pumps, "EPSG:3826", "pumping-stations", "Pumping stations"),
        ("淹水潛勢", flood, "EPSG:4326", "flood-potential", "Flood potential"),
        ("雨量站", gauges, "EPSG:3824", "rain-gauges", "Rain gauges"),
    ]
    rel = "水利局/防災圖資.gpkg"
    _gpkg(ctx, rel, [(n, t, c) for n, t, c, _, _ in layers])
    out = []
    for name, table, crs, id_, en in layers:
        m = meta(
            f"臺中市{name}",
            en,
            "水利局",
            "生活安全及品質",
            ("防災", name),
            "每年",
            f"防災圖資之{name}",
        )
        mess = ["gpkg-multi-layer", "gpkg-multi-crs"]
        if crs == "EPSG:3824":
            mess.append("crs-epsg-3824")
        exp = expect(id_, table, fmt="gpkg", crs=crs, key="編號", mess=mess, sublayer=name)
        out.append(Entry(id_, m, rel, [exp], layer=name))
    return out


@builder
def industry_gpkg_whole(ctx: Context, task: Task) -> list[Entry]:
    """An industry GeoPackage with two layers and no ``layer:`` → <id>-1, <id>-2."""
    rng = rng_for(ctx.seed, task.id)
    k = 4 if ctx.big else 1
    parks = tables.zone_table(
        ctx.city.zones(12 * k, rng, (120.60, 24.20), 0.04), rng, "產業園區", "IP"
    )
    factories = tables.point_table(ctx.city, rng, 40 * k, "工廠", "FA")
    rel = "經濟發展局/產業園區.gpkg"
    _gpkg(ctx, rel, [("產業園區範圍", parks, "EPSG:3826"), ("園區廠商", factories, "EPSG:3826")])
    exps = [
        expect(
            f"{task.id}-1",
            parks,
            fmt="gpkg",
            crs="EPSG:3826",
            key="編號",
            sublayer="產業園區範圍",
            mess=["gpkg-multi-layer", "multi-sublayer-no-layer-key"],
        ),
        expect(
            f"{task.id}-2",
            factories,
            fmt="gpkg",
            crs="EPSG:3826",
            key="編號",
            sublayer="園區廠商",
            mess=["gpkg-multi-layer", "multi-sublayer-no-layer-key"],
        ),
    ]
    m = meta(
        "臺中市產業園區",
        "Industrial parks",
        "經濟發展局",
        "投資理財",
        ("產業", "招商"),
        "每半年",
        "包含產業園區範圍與園區廠商",
    )
    return [Entry(task.id, m, rel, exps)]


def _island_points(rng: np.random.Generator, zone: int | None, per: int) -> tuple[np.ndarray, list]:
    pts, labels = [], []
    for name, county, lon, lat, z in ISLANDS:
        if zone is not None and z != zone:
            continue
        for j in range(per):
            pts.append((lon + rng.normal() * 0.01, lat + rng.normal() * 0.01))
            labels.append((f"{name}碼頭{j + 1}", county))
    return np.round(np.array(pts), 7), labels


@builder
def islands_3825_shp(ctx: Context, task: Task) -> list[Entry]:
    """Ferry piers on Penghu and Kinmen in TM2 zone 119 (EPSG:3825)."""
    rng = rng_for(ctx.seed, task.id)
    pts, labels = _island_points(rng, 119, 4 if ctx.big else 2)
    n = len(pts)
    table = Table(
        shapely.points(pts),
        [
            Column("編號", "str", [f"IS{i + 1:04d}" for i in range(n)], width=8),
            Column("名稱", "str", [lb[0] for lb in labels], width=40),
            Column("縣市", "str", [lb[1] for lb in labels], width=12),
        ],
    )
    m = meta(
        "臺中港離島航線碼頭",
        "Offshore island ferry piers",
        "交通局",
        "交通及通訊",
        ("離島", "航線"),
        "不定期",
        "臺中港往來澎湖、金門航線之碼頭位置",
    )
    return [
        _shp_entry(
            ctx,
            task,
            m,
            "交通局/離島航線碼頭.shp",
            table,
            "EPSG:3825",
            mess=["tm2-zone-119", "far-islands"],
        )
    ]


@builder
def ports_geojson_far(ctx: Context, task: Task) -> list[Entry]:
    """Ports of Taiwan incl. far islands: a legitimate extent of ~6° × 4°."""
    rng = rng_for(ctx.seed, task.id)
    pts, labels = _island_points(rng, None, 2)
    pts = np.vstack([[[120.5146, 24.2871]], pts])
    labels = [("臺中港", "臺中市"), *labels]
    n = len(pts)
    table = Table(
        shapely.points(pts),
        [
            Column("編號", "str", [f"PT{i + 1:04d}" for i in range(n)]),
            Column("名稱", "str", [lb[0] for lb in labels]),
            Column("縣市", "str", [lb[1] for lb in labels]),
        ],
    )
    rel = "交通局/港口與碼頭.geojson"
    fm.write_geojson(ctx.path(rel), table)
    m = meta(
        "臺中港及離島港口",
        "Ports and island harbours",
        "交通局",
        "交通及通訊",
        ("港口",),
        "不定期",
        "臺中港及澎湖、金門、馬祖、蘭嶼等離島港口",
    )
    exp = expect(task.id, table, fmt="geojson", crs="EPSG:4326", key="編號", mess=["far-islands"])
    return [Entry(task.id, m, rel, [exp])]


def _points_shp(
    ctx: Context, task: Task, m: Meta, rel: str, noun: str, n: int, crs: str, **kw
) -> Entry:
    rng = rng_for(ctx.seed, task.id)
    table = tables.point_table(ctx.city, rng, n, noun, noun[:1] if noun.isascii() else "P")
    return _shp_entry(ctx, task, m, rel, table, crs, **kw)


@builder
def schools_3824_shp(ctx: Context, task: Task) -> list[Entry]:
    """Elementary schools in TWD97 geographic (EPSG:3824)."""
    m = meta(
        "臺中市國民小學",
        "Elementary schools",
        "教育局",
        "求學及進修",
        ("學校", "國小"),
        "每年",
        "包含國民小學位置與聯絡資訊",
    )
    return [
        _points_shp(
            ctx,
            task,
            m,
            "教育局/國民小學.shp",
            "國小",
            240 if ctx.big else 20,
            "EPSG:3824",
            mess=["crs-epsg-3824"],
        )
    ]


@builder
def bikes_3857_shp(ctx: Context, task: Task) -> list[Entry]:
    """Public bike stations in Web Mercator (EPSG:3857)."""
    m = meta(
        "臺中市公共自行車租賃站",
        "Public bike stations",
        "交通局",
        "交通及通訊",
        ("iBike", "自行車"),
        "每月",
        "包含公共自行車租賃站位置",
    )
    return [
        _points_shp(
            ctx,
            task,
            m,
            "交通局/公共自行車租賃站.shp",
            "租賃站",
            900 if ctx.big else 25,
            "EPSG:3857",
            mess=["crs-epsg-3857"],
        )
    ]


@builder
def mrt_cpg_lies(ctx: Context, task: Task) -> list[Entry]:
    """MRT routes: the .cpg says UTF-8 but the DBF is Big5."""
    rng = rng_for(ctx.seed, task.id)
    table = tables.line_table(ctx.city.lines(6 if ctx.big else 3, rng, 30), rng, "捷運線", "M")
    m = meta(
        "臺中捷運路線",
        "MRT routes",
        "捷運工程處",
        "交通及通訊",
        ("捷運",),
        "不定期",
        "包含捷運綠線及規劃路線",
    )
    return [
        _shp_entry(
            ctx,
            task,
            m,
            "捷運工程處/捷運路線.shp",
            table,
            "EPSG:3826",
            encoding="cp950",
            ldid=0,
            cpg="UTF-8",
            mess=["cpg-lies"],
        )
    ]


@builder
def school_districts_truncated(ctx: Context, task: Task) -> list[Entry]:
    """School districts: a UTF-8 description cut mid-character at the 80-byte field width."""
    rng = rng_for(ctx.seed, task.id)
    n = 200 if ctx.big else 20
    table = tables.zone_table(ctx.city.zones(n, rng, (120.67, 24.16), 0.05), rng, "學區", "SD")
    vills = [v.name for v in ctx.city.villages]
    text = [
        "本學區範圍包含"
        + "、".join(vills[(i * 7 + j) % len(vills)] for j in range(6))
        + "等里，學生應就讀本校。"
        for i in range(n)
    ]
    table.columns.append(Column("說明", "str", text, width=80))
    cut = [
        i
        for i, t in enumerate(text)
        if len(t.encode()) > 80
        and t.encode()[:80].decode("utf-8", "ignore").encode() != t.encode()[:80]
    ]
    m = meta(
        "臺中市國民中學學區",
        "Junior high school districts",
        "教育局",
        "求學及進修",
        ("學區",),
        "每年",
        "包含國民中學學區範圍與說明",
    )
    return [
        _shp_entry(
            ctx,
            task,
            m,
            "教育局/國中學區.shp",
            table,
            "EPSG:3826",
            mess=["utf8-cut-at-field-width"],
            extra=cut[:2],
        )
    ]


@builder
def medical_wgs84_prj(ctx: Context, task: Task) -> list[Entry]:
    """Medical facilities with a TM2 .prj on a 'WGS84' datum (really TWD97 TM2)."""
    m = meta(
        "臺中市醫療院所",
        "Medical facilities",
        "衛生局",
        "就醫",
        ("醫院", "診所"),
        "每月",
        "包含醫院與診所位置",
    )
    return [
        _points_shp(
            ctx,
            task,
            m,
            "衛生局/醫療院所.shp",
            "診所",
            1500 if ctx.big else 25,
            "EPSG:3826",
            prj="tm2-wgs84",
            mess=["prj-tm2-wgs84-datum"],
        )
    ]


@builder
def public_art_big5_silent(ctx: Context, task: Task) -> list[Entry]:
    """Public art: Big5 DBF, no .cpg, and a language byte that says nothing."""
    m = meta(
        "臺中市公共藝術",
        "Public art",
        "文化局",
        "休閒旅遊",
        ("藝術",),
        "不定期",
        "包含公共藝術作品設置地點",
    )
    return [
        _points_shp(
            ctx,
            task,
            m,
            "文化局/公共藝術.shp",
            "公共藝術",
            300 if ctx.big else 20,
            "EPSG:3826",
            encoding="cp950",
            ldid=0,
            cpg=None,
            mess=["big5-dbf-no-cpg", "big5-ldid-silent"],
        )
    ]


@builder
def lfs_pointer(ctx: Context, task: Task) -> list[Entry]:
    """A Git-LFS pointer where the traffic-count GeoJSON should be: ingest must refuse it."""
    rel = "交通局/道路交通量調查.geojson"
    ctx.path(rel).write_text(fm.LFS_POINTER, encoding="ascii")
    m = meta(
        "臺中市道路交通量調查",
        "Traffic counts",
        "交通局",
        "交通及通訊",
        ("交通量",),
        "每年",
        "路口交通量調查結果",
    )
    exp = Expected(
        id=task.id,
        kind="vector",
        format="geojson",
        crs="",
        outcome="refused",
        reason="git-lfs-pointer",
        mess=["git-lfs-pointer"],
    )
    return [Entry(task.id, m, rel, [exp])]


@builder
def manholes_3d_shp(ctx: Context, task: Task) -> list[Entry]:
    """Storm-sewer manholes as PointZ with the ground elevation as Z."""
    rng = rng_for(ctx.seed, task.id)
    n = 3000 if ctx.big else 40
    table = tables.point_table(ctx.city, rng, n, "人孔", "MH")
    xy = shapely.get_coordinates(table.geometry)
    z = np.round(rng.uniform(20, 120, n), 2)
    table.geometry = shapely.points(np.column_stack([xy, z]))
    m = meta(
        "臺中市雨水下水道人孔",
        "Storm sewer manholes",
        "水利局",
        "生活安全及品質",
        ("下水道", "人孔"),
        "每年",
        "包含人孔位置與地面高程",
    )
    return [
        _shp_entry(
            ctx, task, m, "水利局/雨水下水道人孔.shp", table, "EPSG:3826", mess=["coords-3d"]
        )
    ]


@builder
def markets_geojson(ctx: Context, task: Task) -> list[Entry]:
    """A clean RFC 7946 GeoJSON in lon/lat."""
    rng = rng_for(ctx.seed, task.id)
    table = tables.point_table(ctx.city, rng, 60 if ctx.big else 15, "市場", "MK")
    table.geometry = shapely.set_precision(table.geometry, 1e-7, mode="pointwise")
    rel = "經濟發展局/公有零售市場.geojson"
    fm.write_geojson(ctx.path(rel), table)
    m = meta(
        "臺中市公有零售市場",
        "Public markets",
        "經濟發展局",
        "開創事業",
        ("市場",),
        "每年",
        "包含公有零售市場位置與攤位數",
    )
    return [
        Entry(
            task.id,
            m,
            rel,
            [expect(task.id, table, fmt="geojson", crs="EPSG:4326", key="編號", mess=[])],
        )
    ]


# Rasters are in corpus_raster to keep this module readable.
from geoportal.sample import corpus_raster  # noqa: E402

BUILDERS.update(corpus_raster.BUILDERS)

SHOWCASE: tuple[Task, ...] = (
    Task("districts", "taichung-districts"),
    Task("villages", "taichung-villages"),
    Task("statistical_areas_topojson", "statistical-areas"),
    Task("roads_zip", "road-centerlines"),
    Task("buildings_zip", "buildings"),
    Task("zoning_nested_zip", "urban-zoning-twd67"),
    Task("addresses_csv", "door-plates"),
    Task("parking_big5_csv", "public-parking"),
    Task("recycling_pipe_csv", "recycling-stations"),
    Task("shelters_swapped_csv", "evacuation-shelters"),
    Task("control_points_twd67_csv", "control-points-twd67"),
    Task("polling_csv_newlines", "polling-stations"),
    Task("aed_tsv", "aed-locations"),
    Task("zoning_geojson_legacy_crs", "dakeng-zoning"),
    Task("rivers_geojson_3d", "rivers"),
    Task("districts_unclosed_geojson", "district-boundaries-legacy"),
    Task("landuse_invalid_shp", "land-use-current"),
    Task("tourism_kml", "tourism-map"),
    Task("heritage_kml_split", "heritage"),
    Task("flood_gpkg_split", "flood-prevention"),
    Task("industry_gpkg_whole", "industrial-parks"),
    Task("islands_3825_shp", "island-ferry-piers"),
    Task("ports_geojson_far", "ports"),
    Task("schools_3824_shp", "elementary-schools"),
    Task("bikes_3857_shp", "ibike-stations"),
    Task("mrt_cpg_lies", "mrt-routes"),
    Task("school_districts_truncated", "school-districts"),
    Task("medical_wgs84_prj", "medical-facilities"),
    Task("public_art_big5_silent", "public-art"),
    Task("lfs_pointer", "traffic-counts"),
    Task("manholes_3d_shp", "storm-manholes"),
    Task("markets_geojson", "public-markets"),
    Task("dem_float32", "dem-20m"),
    Task("dem_float64_custom_wkt", "dem-5m-dakeng"),
    Task("orthophoto_rgb", "orthophoto-2023"),
)

# Entries each showcase task yields in the manifest (most yield one).
SHOWCASE_ENTRIES = {"heritage": 3, "flood-prevention": 3}


def slug(text: str) -> str:
    """A layer-id fragment from English text: lower case, [a-z0-9-]."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "")).strip("-")
