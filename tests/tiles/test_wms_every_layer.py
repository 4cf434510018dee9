"""Every sample layer and a spread of real agency layers: drawn and queryable in every CRS.

For each published vector layer, one stored feature is looked up in the GeoPackage (the
oracle), a small GetMap is asked for around it in each CRS the capabilities advertise, and
the pixel at the feature must be painted; GetFeatureInfo there must return that layer.
Raster layers must be painted at a cell that holds data.
"""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from PIL import Image
from pyproj import Transformer

from catalog import Catalog
from catalog.style import parse_style
from tests.serve import serving
from tests.tiles.conftest import run

#: (CRS, WMS version): every CRS the capabilities advertise, 4326 in both axis orders.
CRSS = [
    ("EPSG:3826", "1.3.0"),
    ("EPSG:3825", "1.3.0"),
    ("EPSG:3857", "1.3.0"),
    ("EPSG:3824", "1.3.0"),
    ("EPSG:4326", "1.3.0"),
    ("CRS:84", "1.3.0"),
    ("EPSG:4326", "1.1.1"),
]
SIZE = 64
HALF_M = 60.0  # half the map's width in metres: about 1:6,700, inside every sample scale range

#: Real files of different formats and classes of mess (../shared/data/real), ingested as-is.
REAL = {
    "real-tainan-villages": "gipong-shp2geojson/10tnvillage/10_tn-village.shp",
    "real-taichung-zoning": "godspeedhuang-Landuse_GeoJSON_Web/static/B0102.json",
    "real-scenic-spots": "ChiaJung-Yeh-Spatial-Analysis/ScenicSpot.gpkg",
    "real-convenience-stores": (
        "ChiaJung-Yeh-Spatial-Analysis/data/convenience_store/convenience_store.csv"
    ),
    "real-taipei-mrt": "ChiaJung-Yeh-Spatial-Analysis/data/taipei_mrt/taipei_mrt_route.shp",
    "real-tainan-basecode": "kiang-tainan_basecode/doc.kml",
    "real-lanyu-dtm": "mutolisp-twmap/inst/extdata/LanyuDTM.tif",
}


def _axes(crs: str, version: str) -> bool:
    """Whether the BBOX is written latitude first (WMS 1.3.0 with a geographic EPSG code)."""
    return version == "1.3.0" and crs in ("EPSG:4326", "EPSG:3824")


def _request(base: str, layer: str, lon: float, lat: float, crs: str, version: str, op: str):
    epsg = "EPSG:4326" if crs == "CRS:84" else crs
    x, y = Transformer.from_crs("EPSG:4326", epsg, always_xy=True).transform(lon, lat)
    if epsg in ("EPSG:4326", "EPSG:3824"):
        half = HALF_M / 111_320
        wide = half / np.cos(np.radians(lat))
        box = (x - wide, y - half, x + wide, y + half)
    else:
        box = (x - HALF_M, y - HALF_M, x + HALF_M, y + HALF_M)
    if _axes(crs, version):
        box = (box[1], box[0], box[3], box[2])
    params = {
        "SERVICE": "WMS",
        "VERSION": version,
        "REQUEST": op,
        "LAYERS": layer,
        "STYLES": "",
        ("CRS" if version == "1.3.0" else "SRS"): crs,
        "BBOX": ",".join(f"{v:.9f}" for v in box),
        "WIDTH": SIZE,
        "HEIGHT": SIZE,
        "FORMAT": "image/png",
        "TRANSPARENT": "TRUE",
    }
    if op == "GetFeatureInfo":
        centre = SIZE // 2
        params |= {"QUERY_LAYERS": layer, "INFO_FORMAT": "application/json", "FEATURE_COUNT": 5}
        params |= {"I": centre, "J": centre} if version == "1.3.0" else {"X": centre, "Y": centre}
    url = f"{base}/wms?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.headers.get("Content-Type", ""), r.read()


def _vector_anchor(path: Path, outline_only: bool) -> tuple[float, float]:
    """A point on the first non-empty stored feature (lon, lat).

    Inside a polygon, or on its outline when the style draws no fill.
    """
    frame = pyogrio.read_dataframe(path, layer="features", max_features=50)
    geom = next(g for g in frame.geometry if g is not None and not g.is_empty)
    if hasattr(geom, "geoms"):  # a multi-part feature: its first part
        geom = geom.geoms[0]
    if geom.geom_type == "LineString":
        point = shapely.line_interpolate_point(geom, 0.5, normalized=True)
    elif geom.geom_type == "Polygon" and outline_only:
        point = shapely.line_interpolate_point(geom.exterior, 0.5, normalized=True)
    elif geom.geom_type == "Polygon":
        point = shapely.point_on_surface(geom)
    else:
        point = geom
    return point.x, point.y


def _raster_anchor(path: Path) -> tuple[float, float]:
    """The centre of a cell holding data (lon, lat)."""
    with rasterio.open(path) as ds:
        band = ds.read(1, masked=True)
        rows, cols = np.nonzero(~np.ma.getmaskarray(band))
        i = len(rows) // 2
        x, y = ds.xy(rows[i], cols[i])
        return Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True).transform(x, y)


def _painted(png: bytes) -> bool:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    c = SIZE // 2
    return bool(img[c - 2 : c + 3, c - 2 : c + 3, 3].any())


def _check_every_layer(base: str, home: Path) -> list[str]:
    """Problems found (empty when every layer is drawn and queryable in every CRS)."""
    catalog = Catalog.open(home)
    problems = []
    for layer_id, version in sorted(catalog.current_all().items()):
        if version.kind == "table":
            continue
        raster = version.kind == "raster"
        path = home / version.path
        style = parse_style(catalog.get_layer(layer_id).style, version.geometry_type)
        outline_only = style.fill_opacity == 0
        lon, lat = _raster_anchor(path) if raster else _vector_anchor(path, outline_only)
        for crs, wms_version in CRSS:
            ctype, body = _request(base, layer_id, lon, lat, crs, wms_version, "GetMap")
            if ctype != "image/png" or not _painted(body):
                problems.append(f"{layer_id} {crs} {wms_version}: not drawn at its feature")
            if raster:
                continue
            ctype, body = _request(base, layer_id, lon, lat, crs, wms_version, "GetFeatureInfo")
            found = json.loads(body).get("features", []) if "json" in ctype else []
            if not found:
                problems.append(f"{layer_id} {crs} {wms_version}: GetFeatureInfo found nothing")
    return problems


def test_every_sample_layer_is_drawn_and_queryable_in_every_crs(served):
    base, home = served
    assert _check_every_layer(base, home) == []


@pytest.mark.realdata
def test_real_agency_layers_are_drawn_and_queryable_in_every_crs(real_data, tmp_path):
    lines = ["layers:"]
    for layer_id, rel in REAL.items():
        if not (real_data / rel).exists():
            pytest.skip(f"{rel} is not in ../shared/data/real")
        lines.append(f"  - {{id: {layer_id}, title: {layer_id}, source: '{real_data / rel}'}}")
    manifest = tmp_path / "layers.yaml"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    out = run("ingest", str(manifest), home=home)
    assert out.returncode == 0, out.stdout + out.stderr
    with serving(home) as base:
        assert _check_every_layer(base, home) == []
