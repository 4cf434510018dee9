"""Raster sources: DEMs with awkward nodata and sidecars, and an RGB orthophoto."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import from_origin

from geoportal.sample import formats as fm
from geoportal.sample.city import rng_for

if TYPE_CHECKING:
    from geoportal.sample.corpus import Context, Entry, Task

BUILDERS: dict[str, Callable[[Context, Task], list[Entry]]] = {}

NODATA_MIN_DOUBLE = -1.7976931348623157e308


def _builder(fn: Callable[[Context, Task], list[Entry]]) -> Callable[[Context, Task], list[Entry]]:
    BUILDERS[fn.__name__] = fn
    return fn


def elevation(lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Taichung-like terrain: coastal plain, the Dadu plateau, mountains rising to the east."""
    plain = np.clip((lon - 120.62) * 900, 0, None)
    plateau = 220 * np.exp(-(((lon - 120.585) / 0.02) ** 2))
    mountains = np.clip((lon - 120.78) * 6000, 0, 3700)
    noise = np.zeros_like(lon)
    for _ in range(6):
        fx, fy = rng.uniform(20, 120, 2)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        noise += np.sin(lon * fx + px) * np.cos(lat * fy + py)
    return (plain + plateau + mountains * (0.8 + 0.1 * noise) + 15 * noise).astype(np.float64)


def _grid_lonlat(transform, width: int, height: int, crs: str) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs = transform.c + cols * transform.a
    ys = transform.f + rows * transform.e
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    return lon, lat


def _aux_xml(path, data: np.ndarray, nodata: float) -> None:
    """The PAM .aux.xml with band statistics that ArcGIS and QGIS leave next to a raster."""
    valid = data[data != nodata]
    stats = {
        "STATISTICS_MAXIMUM": f"{valid.max():.6f}",
        "STATISTICS_MEAN": f"{valid.mean():.6f}",
        "STATISTICS_MINIMUM": f"{valid.min():.6f}",
        "STATISTICS_STDDEV": f"{valid.std():.6f}",
        "STATISTICS_VALID_PERCENT": f"{100 * valid.size / data.size:.3f}",
    }
    items = "\n".join(f'      <MDI key="{k}">{v}</MDI>' for k, v in stats.items())
    path.write_text(
        '<PAMDataset>\n  <PAMRasterBand band="1">\n    <Metadata>\n'
        f"{items}\n    </Metadata>\n  </PAMRasterBand>\n</PAMDataset>\n",
        encoding="utf-8",
    )


def _raster_expected(task_id: str, path, crs: str, mess: list[str]):
    from geoportal.sample.corpus import Expected

    with rasterio.open(path) as ds:
        b = ds.bounds
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
            [b.left, b.right, b.left, b.right], [b.bottom, b.bottom, b.top, b.top]
        )
        info = {
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "dtype": ds.dtypes[0],
            "nodata": ds.nodata,
            "resolution": [abs(ds.transform.a), abs(ds.transform.e)],
        }
    return Expected(
        id=task_id,
        kind="raster",
        format="geotiff",
        crs=crs,
        mess=sorted(mess),
        bbox=[round(min(lon), 7), round(min(lat), 7), round(max(lon), 7), round(max(lat), 7)],
        bbox_source=[round(v, 3) for v in (b.left, b.bottom, b.right, b.top)],
        raster=info,
    )


@_builder
def dem_float32(ctx: Context, task: Task) -> list[Entry]:
    """A 20 m (city) DEM of the whole city, float32, nodata −32767 outside, with sidecars."""
    from geoportal.sample.corpus import Entry, meta

    rng = rng_for(ctx.seed, task.id)
    res = 40.0 if ctx.big else 400.0
    x0, y0, x1, y1 = 196_000.0, 2_652_000.0, 298_000.0, 2_704_000.0
    width, height = int((x1 - x0) / res), int((y1 - y0) / res)
    transform = from_origin(x0, y1, res, res)
    lon, lat = _grid_lonlat(transform, width, height, "EPSG:3826")
    data = elevation(lon, lat, rng).astype(np.float32)
    outside = ~shapely.contains_xy(ctx.city.outline, lon, lat)
    data[outside] = -32767
    rel = "水利局/數值地形模型/DEM_臺中市.tif"
    path = ctx.path(rel)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:3826",
        "transform": transform,
        "nodata": -32767,
        "TFW": "YES",
        "TILED": "NO",
        "COMPRESS": "LZW",
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    with rasterio.Env(TIFF_USE_OVR=True), rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4, 8], Resampling.average)
    _aux_xml(path.with_name(path.name + ".aux.xml"), data, -32767)
    m = meta(
        "臺中市數值地形模型",
        "Digital elevation model",
        "水利局",
        "生活安全及品質",
        ("DEM", "地形", "高程"),
        "不定期",
        f"網格間距{res:g}公尺之數值地形模型",
    )
    exp = _raster_expected(
        task.id, path, "EPSG:3826", ["raster-float32-nodata-32767", "raster-sidecars"]
    )
    return [Entry(task.id, m, rel, [exp])]


@_builder
def dem_float64_custom_wkt(ctx: Context, task: Task) -> list[Entry]:
    """A 5 m float64 DEM of 大坑 with nodata −1.797693e+308 and a custom TM2_TWD97 WKT."""
    from geoportal.sample.corpus import Entry, meta

    rng = rng_for(ctx.seed, task.id)
    res = 5.0 if ctx.big else 50.0
    x0, y1 = 222_000.0, 2_676_000.0
    width, height = int(4000 / res), int(3000 / res)
    transform = from_origin(x0, y1, res, res)
    lon, lat = _grid_lonlat(transform, width, height, "EPSG:3826")
    data = elevation(lon, lat, rng) + 300
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    # Irregular survey boundary: the corner triangles are nodata.
    data[(cols + rows) < width * 0.2] = NODATA_MIN_DOUBLE
    data[(width - cols + height - rows) < width * 0.15] = NODATA_MIN_DOUBLE
    rel = "地政局/dem5m_大坑.tif"
    path = ctx.path(rel)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float64",
        crs=CRS.from_wkt(fm.WKT_TM2_TWD97_RASTER),
        transform=transform,
        nodata=NODATA_MIN_DOUBLE,
    ) as ds:
        ds.write(data, 1)
    m = meta(
        "大坑地區5公尺數值地形模型",
        "Dakeng 5 m DEM",
        "地政局",
        "生活安全及品質",
        ("DEM", "大坑"),
        "不定期",
        "大坑地區高解析度數值地形模型",
    )
    exp = _raster_expected(
        task.id, path, "EPSG:3826", ["raster-float64-nodata-min", "raster-custom-wkt"]
    )
    return [Entry(task.id, m, rel, [exp])]


@_builder
def orthophoto_rgb(ctx: Context, task: Task) -> list[Entry]:
    """An RGB orthophoto of central Taichung: buildings grey on green, with a .tfw."""
    from geoportal.sample.corpus import Entry, meta

    rng = rng_for(ctx.seed, task.id)
    res = 1.0 if ctx.big else 10.0
    x0, y1 = 215_000.0, 2_673_000.0
    width, height = int(2000 / res), int(1500 / res)
    transform = from_origin(x0, y1, res, res)
    to_tm2 = Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
    blds = ctx.city.buildings(4000 if ctx.big else 400, rng)
    blds = shapely.transform(blds, lambda c: np.column_stack(to_tm2.transform(c[:, 0], c[:, 1])))
    # Centre the footprints on the image.
    shift = np.array([x0 + 1000, y1 - 750]) - np.array(to_tm2.transform(120.672, 24.150))
    blds = shapely.transform(blds, lambda c: c + shift)
    mask = rasterize([(g, 1) for g in blds], out_shape=(height, width), transform=transform)
    noise = rng.integers(0, 25, (3, height, width))
    rgb = np.stack([np.where(mask, 150, 60), np.where(mask, 150, 110), np.where(mask, 155, 50)])
    rgb = (rgb + noise).astype(np.uint8)
    rel = "地政局/正射影像/正射影像_2023.tif"
    path = ctx.path(rel)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs="EPSG:3826",
        transform=transform,
        photometric="RGB",
        TFW="YES",
    ) as ds:
        ds.write(rgb)
    m = meta(
        "臺中市正射影像（2023）",
        "Orthophoto 2023",
        "地政局",
        "購屋及遷徙",
        ("正射影像", "航照"),
        "每年",
        "市中心正射影像",
    )
    exp = _raster_expected(task.id, path, "EPSG:3826", ["raster-rgb", "raster-sidecars"])
    return [Entry(task.id, m, rel, [exp])]
