"""Coordinate reference systems: deciding a source's CRS and bringing it to EPSG:4326.

Order of evidence (issue #3): a manifest override > what the file declares (.prj, GeoPackage
SRS, GeoJSON ``crs`` member, GeoTIFF WKT) matched to EPSG — by code, or by projection
parameters for the custom TM2 WKTs agencies ship — > inference from coordinate ranges.
Every decision is recorded with its source and confidence; a source whose CRS cannot be
decided is refused with what to add to the manifest.

TWD67 (EPSG:3828) goes to TWD97 through EPSG:15487 ("TWD67 / TM2 zone 121 to TWD97 / TM2
zone 121 (1)", grid offsets, 7 m): PROJ has no datum transformation from TWD67 to WGS 84 and
would otherwise fall back to a ballpark operation ~830 m off.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from catalog.model import Decision
from ingest.errors import SourceRefused

# Taiwan, Penghu, Kinmen, Matsu, Lanyu, Pratas and Taiping Island (Kaohsiung), with margin.
TAIWAN_LONLAT = (114.0, 10.0, 124.5, 27.0)
TM2_X = (40_000.0, 460_000.0)
TM2_Y = (2_380_000.0, 2_960_000.0)
WEBMERC_X = (13_000_000.0, 13_900_000.0)
WEBMERC_Y = (2_300_000.0, 3_100_000.0)

EPSG_NAMES = {
    "EPSG:3826": "TWD97 / TM2 zone 121",
    "EPSG:3825": "TWD97 / TM2 zone 119",
    "EPSG:3824": "TWD97 (lon/lat)",
    "EPSG:3828": "TWD67 / TM2 zone 121",
    "EPSG:3827": "TWD67 / TM2 zone 119",
    "EPSG:4326": "WGS 84 (lon/lat)",
    "EPSG:3857": "Web Mercator",
    "EPSG:32650": "WGS 84 / UTM 50N",
    "EPSG:32651": "WGS 84 / UTM 51N",
}


def normalise(code: str | int) -> str:
    """The EPSG form ("EPSG:3826") of 3826, "epsg:3826", "urn:ogc:def:crs:EPSG::3826"; CRS:84.

    Raises:
        ValueError: not an EPSG code pyproj knows.
    """
    text = str(code).strip()
    if text.upper() in ("CRS:84", "OGC:CRS84", "CRS84"):
        return "EPSG:4326"
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        crs = CRS.from_user_input(text)
    except CRSError as e:
        raise ValueError(f"unknown CRS {code!r}: write it as EPSG:3826") from e
    epsg = crs.to_epsg()
    if epsg is None:
        raise ValueError(f"CRS {code!r} has no EPSG code: write it as EPSG:3826")
    return f"EPSG:{epsg}"


def _tm_params(crs: CRS) -> dict | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "lose information" in PROJ strings
            d = crs.to_dict()
    except CRSError:
        return None
    if d.get("proj") != "tmerc":
        return None
    return d


def match_declared(wkt: str) -> tuple[str, str, float] | None:
    """(EPSG code, how, confidence) for a declared CRS, or None if nothing matches.

    ``how`` is "epsg" when the declaration carries or identifies a code, "params" when a
    custom WKT was matched by its projection parameters (TM2 central meridian 121/119,
    scale 0.9999, false easting 250 km; GRS 80 or WGS 84 ellipsoid = TWD97, GRS 67 = TWD67).
    """
    try:
        crs = CRS.from_user_input(wkt)
    except CRSError:
        return None
    tm = _tm_params(crs)
    if tm is not None:
        match = _match_tm2(tm)
        if match is None:
            return None
        code = match[0]
        if crs.to_epsg(min_confidence=70) == int(code.split(":")[1]):
            return code, "epsg", 1.0
        return code, "params", 0.95
    epsg = crs.to_epsg(min_confidence=70)
    if epsg is not None:
        return f"EPSG:{epsg}", "epsg", 1.0
    if crs.is_geographic:
        ellps = crs.ellipsoid.name if crs.ellipsoid else ""
        if "1980" in ellps or "GRS" in ellps.upper():
            return "EPSG:3824", "params", 0.9
        if "84" in ellps:
            return "EPSG:4326", "params", 0.9
    return None


def _match_tm2(tm: dict) -> tuple[str, str, float] | None:
    lon0, k, x0, y0 = tm.get("lon_0"), tm.get("k", tm.get("k_0")), tm.get("x_0"), tm.get("y_0", 0)
    if not (math.isclose(k or 0, 0.9999) and math.isclose(x0 or 0, 250000) and not y0):
        return None
    ellps = (tm.get("ellps") or "").upper()
    a = tm.get("a")
    if ellps in ("AUST_SA", "GRS67") or (a and math.isclose(a, 6378160)):
        datum = "TWD67"
    elif ellps in ("GRS80", "WGS84", "") or (a and math.isclose(a, 6378137)):
        datum = "TWD97"
    else:
        return None
    table = {
        ("TWD97", 121): "EPSG:3826",
        ("TWD97", 119): "EPSG:3825",
        ("TWD67", 121): "EPSG:3828",
        ("TWD67", 119): "EPSG:3827",
    }
    code = table.get((datum, round(lon0 or 0)))
    return None if code is None else (code, "params", 0.95)


def infer_from_ranges(bounds: tuple[float, float, float, float]) -> tuple[str, float, str] | None:
    """(EPSG code, confidence, explanation) from coordinate ranges, or None."""
    minx, miny, maxx, maxy = bounds
    lo = TAIWAN_LONLAT
    if lo[0] <= minx and maxx <= lo[2] and lo[1] <= miny and maxy <= lo[3]:
        return "EPSG:4326", 0.9, "coordinates are longitudes/latitudes around Taiwan"
    if TM2_X[0] <= minx and maxx <= TM2_X[1] and TM2_Y[0] <= miny and maxy <= TM2_Y[1]:
        return (
            "EPSG:3826",
            0.7,
            "coordinates are TM2 metres; zone 121 assumed (Penghu, Kinmen and Matsu data "
            "in zone 119 would need crs: EPSG:3825 in the manifest)",
        )
    if (
        WEBMERC_X[0] <= minx
        and maxx <= WEBMERC_X[1]
        and WEBMERC_Y[0] <= miny
        and maxy <= WEBMERC_Y[1]
    ):
        return "EPSG:3857", 0.8, "coordinates are Web Mercator metres around Taiwan"
    return None


def _plausible(code: str, bounds: tuple[float, float, float, float] | None) -> bool:
    """Whether data in ``code`` with ``bounds`` lands around Taiwan."""
    if bounds is None:
        return True
    lon, lat = _transform_xy(
        code, np.array([bounds[0], bounds[2]]), np.array([bounds[1], bounds[3]])
    )
    if not np.all(np.isfinite(lon)):
        return False
    lo = TAIWAN_LONLAT
    return bool(
        lo[0] - 2 <= lon.min()
        and lon.max() <= lo[2] + 2
        and lo[1] - 2 <= lat.min()
        and lat.max() <= lo[3] + 2
    )


def decide(
    display: str,
    *,
    override: str | None,
    declared_wkt: str | None,
    evidence: str,
    bounds: tuple[float, float, float, float] | None,
) -> Decision:
    """Decide the CRS of a source.

    Raises:
        SourceRefused: no evidence decides it ("crs-undecided"), with the manifest key to add.
    """
    if override:
        code = normalise(override)
        return Decision(
            "crs", code, "manifest", 1.0, f"{EPSG_NAMES.get(code, code)}, as the manifest says"
        )
    if evidence == "implicit-4326":
        if _plausible("EPSG:4326", bounds):
            return Decision("crs", "EPSG:4326", "format", 1.0, "the format is defined in lon/lat")
    elif declared_wkt:
        match = match_declared(declared_wkt)
        if match and _plausible(match[0], bounds):
            code, how, conf = match
            source = f"{evidence}-{how}"
            detail = f"{EPSG_NAMES.get(code, code)}, " + (
                "declared" if how == "epsg" else "a custom WKT matched by its projection parameters"
            )
            return Decision("crs", code, source, conf, detail)
    inferred = infer_from_ranges(bounds) if bounds else None
    if inferred:
        code, conf, why = inferred
        if declared_wkt or evidence == "implicit-4326":
            why = f"the declared CRS does not fit the coordinates; {why}"
        return Decision("crs", code, "ranges", conf, why)
    extent = (
        "no coordinates"
        if bounds is None
        else "coordinates " + ", ".join(f"{v:.6g}" for v in bounds)
    )
    declared = "none"
    if evidence == "implicit-4326":
        declared = "lon/lat by its format, but the coordinates are not around Taiwan"
    elif declared_wkt:
        match = match_declared(declared_wkt)
        declared = (
            "unrecognised WKT"
            if match is None
            else f"{match[0]}, but the coordinates do not fit it (a stray point such as 0,0?)"
        )
    raise SourceRefused(
        display,
        "crs-undecided",
        f"cannot decide the coordinate system ({extent}; declared: {declared})",
        "add `crs: EPSG:<code>` to the manifest entry "
        "(EPSG:3826 for TWD97 TM2, EPSG:4326 for lon/lat)",
    )


@lru_cache(maxsize=32)
def _transformers(code: str) -> tuple[Transformer, ...]:
    """The chain of transformers from ``code`` to EPSG:4326 (TWD67 goes via EPSG:3826)."""
    if code == "EPSG:3828":
        return (
            Transformer.from_crs("EPSG:3828", "EPSG:3826", always_xy=True),
            Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True),
        )
    return (Transformer.from_crs(code, "EPSG:4326", always_xy=True),)


def check_supported(code: str, display: str) -> None:
    """Refuse CRSs whose transformation to WGS 84 would silently be wrong."""
    if code == "EPSG:3827":
        raise SourceRefused(
            display,
            "crs-no-datum-shift",
            "TWD67 / TM2 zone 119 (EPSG:3827) has no datum transformation to TWD97 in PROJ; "
            "a plain reprojection would be hundreds of metres off",
            "convert the data to TWD97 (EPSG:3825) first",
        )


def _transform_xy(code: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if code == "EPSG:4326":
        return np.asarray(x, float), np.asarray(y, float)
    for t in _transformers(code):
        x, y = t.transform(x, y)
    return np.asarray(x), np.asarray(y)


def to_wgs84(geoms: np.ndarray, code: str) -> np.ndarray:
    """Geometries from ``code`` to EPSG:4326 lon/lat (2-D; None stays None)."""
    if code == "EPSG:4326":
        return shapely.force_2d(geoms)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = _transform_xy(code, coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


def bounds_of(geoms: np.ndarray) -> tuple[float, float, float, float] | None:
    """Bounds of the non-empty geometries, or None if there are none."""
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)] if len(geoms) else geoms
    if len(present) == 0:
        return None
    b = shapely.total_bounds(present)
    return tuple(float(v) for v in b) if np.all(np.isfinite(b)) else None
