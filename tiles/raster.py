"""Display-ready rasters: what the renderer draws for a DEM or an image, made once per style.

Mapnik draws RGBA images; a stored DEM is a float grid of heights. ``display_raster`` turns a
stored raster version into an RGBA GeoTIFF in the raster's own CRS (tiled, DEFLATE, internal
overviews averaged under the alpha mask), once per (version, style):

- a single-band DEM (float or integer) becomes a colour relief — the style's ``colormap``
  stops, or a hypsometric ramp over the data's range (greens → yellows → browns → white) —
  multiplied by a hillshade (sun at azimuth 315°, altitude 45°; Horn's gradient computed with
  numpy, nodata neighbours replaced by the centre cell so edges and holes shade cleanly)
  when ``style.hillshade``; nodata and non-finite cells are transparent;
- 8-bit RGB/RGBA imagery passes through with its alpha (or its nodata/mask) as alpha; a
  paletted band is expanded; other multi-band rasters are stretched over their range.

The work goes window by window (1024² cells, a one-cell halo for the gradient), so a DEM of
any size costs a few tens of MB of memory. The file is written as ``*.part`` and renamed, under
an exclusive lock on a sidecar ``.lock`` file, so any number of threads and processes may ask
for it at once: one makes it, the others wait and reuse it.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from catalog.files import exclusive
from catalog.model import Layer, LayerVersion
from catalog.style import ColorStop, Style
from tiles.errors import RenderError

TILES_DIR = "tiles"
BLOCK = 1024  # cells per side of a processing window
AZIMUTH = 315.0  # degrees clockwise from north: light from the north-west
ALTITUDE = 45.0  # degrees above the horizon
_METERS_PER_DEGREE = 111_320.0

#: The default hypsometric ramp: (fraction of the data's range, colour).
DEFAULT_RAMP: tuple[tuple[float, str], ...] = (
    (0.00, "#1a9641"),
    (0.12, "#52b151"),
    (0.25, "#a6d96a"),
    (0.40, "#f3eea0"),
    (0.55, "#e0b860"),
    (0.70, "#b07a45"),
    (0.85, "#8c6a58"),
    (1.00, "#ffffff"),
)


def style_hash(style: Style) -> str:
    """Eight hex digits that change whenever anything in ``style`` changes."""
    return hashlib.sha1(style.model_dump_json().encode()).hexdigest()[:8]


def display_path(home: Path, layer_id: str, version: str, style: Style) -> Path:
    """Where the display raster of a layer version drawn with ``style`` lives."""
    return home / TILES_DIR / layer_id / f"{version}-{style_hash(style)}.display.tif"


def display_raster(home: Path, layer: Layer, version: LayerVersion, style: Style) -> Path:
    """The display-ready RGBA GeoTIFF of a raster layer version, made on first use.

    Args:
        home: the data home.
        layer: the layer.
        version: its raster version (a GeoTIFF at ``home / version.path``).
        style: the display style (``colormap``, ``hillshade``).

    Returns:
        The absolute path of the display raster.

    Raises:
        RenderError: the stored raster cannot be read or the display raster not written.
    """
    target = display_path(home, layer.id, version.version, style)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target.with_name(target.name + ".lock")):
        if target.exists():  # made by another thread or process while we waited
            return target
        part = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.part")
        try:
            _write_display(home / version.path, part, style)
            os.replace(part, target)
        except (RasterioError, OSError, ValueError) as e:
            raise RenderError(
                f"layer {layer.id!r}: cannot make the display raster of version "
                f"{version.version} ({version.path}): {e}"
            ) from None
        finally:
            part.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- writing


def _write_display(source: Path, out: Path, style: Style) -> None:
    with rasterio.open(source) as ds:
        painter = _painter(ds, style)
        profile = {
            "driver": "GTiff",
            "width": ds.width,
            "height": ds.height,
            "count": 4,
            "dtype": "uint8",
            "crs": ds.crs,
            "transform": ds.transform,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "DEFLATE",
            "predictor": 2,
            "photometric": "RGB",
            "alpha": "YES",
            "BIGTIFF": "IF_SAFER",
        }
        with rasterio.open(out, "w", **profile) as dst:
            dst.colorinterp = (
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.alpha,
            )
            for window in windows(ds.width, ds.height):
                dst.write(painter(ds, window), window=window)
    factors = overview_factors(profile["width"], profile["height"])
    if factors:
        with (
            rasterio.Env(COMPRESS_OVERVIEW="DEFLATE", PREDICTOR_OVERVIEW="2"),
            rasterio.open(out, "r+") as dst,
        ):
            dst.build_overviews(factors, Resampling.average)


def windows(width: int, height: int, size: int = BLOCK) -> Iterator[Window]:
    """Windows of at most ``size``×``size`` cells covering a raster, row by row."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def overview_factors(width: int, height: int, smallest: int = 256) -> list[int]:
    """Overview decimation factors (2, 4, 8, ...) until the raster fits in ``smallest``."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > smallest:
        factors.append(f)
        f *= 2
    return factors


def _painter(ds, style: Style):
    """The function that paints a window of ``ds`` as 4×h×w RGBA uint8."""
    palette = ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette
    if palette:
        return _paint_palette
    if ds.count >= 3:
        if ds.dtypes[0] == "uint8":
            return _paint_rgb
        return _StretchPainter(_band_ranges(ds, min(ds.count, 3)))
    low, high = _band_ranges(ds, 1)[0]
    return ReliefPainter(
        stops=ramp_stops(style.colormap, low, high),
        hillshade=style.hillshade,
        pixel=ground_pixel_size(ds),
    )


def _paint_rgb(ds, window: Window) -> np.ndarray:
    rgb = ds.read((1, 2, 3), window=window)
    if ds.count >= 4 and ds.colorinterp[3] == ColorInterp.alpha:
        alpha = ds.read(4, window=window)
    else:
        alpha = ds.dataset_mask(window=window)
    rgb[:, alpha == 0] = 0
    return np.concatenate([rgb, alpha[None]], axis=0)


def _paint_palette(ds, window: Window) -> np.ndarray:
    index = ds.read(1, window=window)
    table = np.zeros((256, 4), np.uint8)
    for i, colour in ds.colormap(1).items():
        if 0 <= i < 256:
            table[i] = colour
    out = table[index].transpose(2, 0, 1).copy()
    out[3][ds.read_masks(1, window=window) == 0] = 0
    return out


@dataclass(frozen=True)
class _StretchPainter:
    ranges: list[tuple[float, float]]

    def __call__(self, ds, window: Window) -> np.ndarray:
        bands = ds.read((1, 2, 3), window=window).astype(np.float64)
        mask = ds.dataset_mask(window=window)
        out = np.zeros((4, *mask.shape), np.uint8)
        for i, (low, high) in enumerate(self.ranges):
            scaled = (bands[i] - low) / max(high - low, 1e-12) * 255
            out[i] = np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)
        out[3] = np.where(mask > 0, 255, 0)
        out[:3, mask == 0] = 0
        return out


def _band_ranges(ds, count: int) -> list[tuple[float, float]]:
    """(min, max) of the valid cells of the first ``count`` bands, window by window."""
    lows = [math.inf] * count
    highs = [-math.inf] * count
    for window in windows(ds.width, ds.height):
        for b in range(count):
            values = valid_cells(ds, b + 1, window)
            finite = values[np.isfinite(values)]
            if finite.size:
                lows[b] = min(lows[b], float(finite.min()))
                highs[b] = max(highs[b], float(finite.max()))
    return [(lo, hi) if lo <= hi else (0.0, 1.0) for lo, hi in zip(lows, highs, strict=True)]


def valid_cells(ds, band: int, window: Window) -> np.ndarray:
    """The band's cells in ``window`` as float32, NaN where nodata, masked or non-finite."""
    values = ds.read(band, window=window).astype(np.float32)
    values[ds.read_masks(band, window=window) == 0] = np.nan
    values[~np.isfinite(values)] = np.nan
    return values


# --------------------------------------------------------------------------- DEMs


def ramp_stops(
    colormap: tuple[ColorStop, ...], low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stop values and their RGBA colours (float, 0–255): the style's, or the default ramp.

    The default ramp is spread over [low, high], the range of the data.
    """
    if colormap:
        ordered = sorted(colormap, key=lambda s: s.value)
        values = np.array([s.value for s in ordered], np.float64)
        colours = np.array([hex_rgba(s.color) for s in ordered], np.float64)
        return values, colours
    span = high - low if high > low else 1.0
    values = np.array([low + f * span for f, _ in DEFAULT_RAMP], np.float64)
    colours = np.array([hex_rgba(c) for _, c in DEFAULT_RAMP], np.float64)
    return values, colours


def hex_rgba(colour: str) -> tuple[int, int, int, int]:
    """(r, g, b, a) of a '#rrggbb' or '#rrggbbaa' colour."""
    text = colour.lstrip("#")
    alpha = int(text[6:8], 16) if len(text) == 8 else 255
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16), alpha


def colour_relief(values: np.ndarray, stops: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """RGBA (4×h×w float, 0–255) of ``values`` linearly interpolated between the stops.

    Values beyond the first or last stop take that stop's colour; NaN cells get alpha 0.
    """
    positions, colours = stops
    flat = np.nan_to_num(values, nan=positions[0])
    out = np.stack([np.interp(flat, positions, colours[:, i]) for i in range(4)])
    out[3][np.isnan(values)] = 0
    return out


def ground_pixel_size(ds) -> tuple[float, float]:
    """The raster's cell size in metres on the ground, (x, y)."""
    xres, yres = abs(ds.transform.a), abs(ds.transform.e)
    crs = ds.crs
    if crs is not None and crs.is_geographic:
        lat = (ds.bounds.bottom + ds.bounds.top) / 2
        return xres * _METERS_PER_DEGREE * math.cos(math.radians(lat)), yres * _METERS_PER_DEGREE
    factor = 1.0
    if crs is not None and crs.is_projected:
        try:
            factor = float(crs.linear_units_factor[1])
        except (RasterioError, ValueError, TypeError):
            factor = 1.0
    return xres * factor, yres * factor


def exaggeration(pixel: tuple[float, float]) -> float:
    """Vertical exaggeration for shading: 1 at ≤10 m cells, growing to 5 at coarse grids.

    Coarse DEMs average slopes away; without some exaggeration their relief looks flat.
    """
    return float(min(5.0, max(1.0, math.sqrt(min(pixel) / 10.0))))


def hillshade(
    padded: np.ndarray,
    pixel: tuple[float, float],
    azimuth: float = AZIMUTH,
    altitude: float = ALTITUDE,
    z_factor: float = 1.0,
) -> np.ndarray:
    """Lambertian shading (0–1) of the inner cells of ``padded`` (a one-cell halo around them).

    Horn's 3×3 gradient; NaN neighbours (nodata, outside the raster) take the centre cell's
    value, so edges and holes get the slope of what is there instead of a cliff.

    Args:
        padded: heights, (h+2)×(w+2), NaN where there is no data.
        pixel: cell size (x, y) in the heights' unit (metres).
        azimuth: where the light comes from, degrees clockwise from north.
        altitude: the light's height above the horizon, degrees.
        z_factor: vertical exaggeration.

    Returns:
        h×w shading: cos of the angle between the surface normal and the light, ≥ 0.
    """
    centre = padded[1:-1, 1:-1]
    rows, cols = padded.shape

    def near(dr: int, dc: int) -> np.ndarray:
        v = padded[1 + dr : rows - 1 + dr, 1 + dc : cols - 1 + dc]
        return np.where(np.isnan(v), centre, v)

    a, b, c = near(-1, -1), near(-1, 0), near(-1, 1)
    d, f = near(0, -1), near(0, 1)
    g, h, i = near(1, -1), near(1, 0), near(1, 1)
    dz_east = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * pixel[0]) * z_factor
    dz_north = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * pixel[1]) * z_factor
    az, alt = math.radians(azimuth), math.radians(altitude)
    light = (math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt))
    dot = -dz_east * light[0] - dz_north * light[1] + light[2]
    shade = dot / np.sqrt(dz_east**2 + dz_north**2 + 1)
    return np.clip(np.nan_to_num(shade, nan=light[2]), 0, 1)


def shade_colours(rgba: np.ndarray, shade: np.ndarray, altitude: float = ALTITUDE) -> np.ndarray:
    """Relief colours multiplied by the hillshade, flat ground keeping its ramp colour.

    Slopes facing away from the light darken (to at most 25 % of the colour); slopes facing
    it brighten a little toward white.
    """
    ratio = shade / math.sin(math.radians(altitude))  # flat ground → 1
    dark = np.clip(ratio, 0.25, 1.0)
    light = np.clip(ratio - 1.0, 0.0, 1.0) * 0.3
    out = rgba.copy()
    out[:3] = rgba[:3] * dark + (255 - rgba[:3]) * light
    return out


@dataclass(frozen=True)
class ReliefPainter:
    """Paints DEM windows: colour relief, optionally multiplied by a hillshade."""

    stops: tuple[np.ndarray, np.ndarray]
    hillshade: bool
    pixel: tuple[float, float]

    def __call__(self, ds, window: Window) -> np.ndarray:
        """RGBA uint8 (4×h×w) of ``window``."""
        padded = _with_halo(ds, window)
        heights = padded[1:-1, 1:-1]
        rgba = colour_relief(heights, self.stops)
        if self.hillshade:
            shade = hillshade(padded, self.pixel, z_factor=exaggeration(self.pixel))
            rgba = shade_colours(rgba, shade)
        nodata = np.isnan(heights)
        rgba[:, nodata] = 0
        return np.clip(np.rint(rgba), 0, 255).astype(np.uint8)


def _with_halo(ds, window: Window) -> np.ndarray:
    """Heights of ``window`` plus one cell around it (NaN beyond the raster or at nodata)."""
    col, row = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    c0, r0 = max(col - 1, 0), max(row - 1, 0)
    c1, r1 = min(col + width + 1, ds.width), min(row + height + 1, ds.height)
    inner = valid_cells(ds, 1, Window(c0, r0, c1 - c0, r1 - r0))
    pad = (
        (r0 - (row - 1), (row + height + 1) - r1),
        (c0 - (col - 1), (col + width + 1) - c1),
    )
    return np.pad(inner, pad, constant_values=np.nan)
