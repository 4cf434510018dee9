"""OGC API - Coverages of the DEM layers at /ogc, read with owslib and rasterio.

Expected values are read from the stored COG of the layer's current version with rasterio.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import rasterio
from owslib.ogcapi.coverages import Coverages
from rasterio.io import MemoryFile

from catalog.db import Catalog

DEMS = ("dem-20m", "dem-5m-dakeng")


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def stored(ogc) -> dict[str, str]:
    """Layer id → path of the stored COG of its current version."""
    _, home = ogc
    with Catalog.open(home) as catalog:
        return {i: str(home / catalog.current(i).path) for i in DEMS}


def _inner_bbox(path: str) -> tuple[list[float], list[float]]:
    """A lon/lat bbox well inside the raster, and the same box in the raster's CRS."""
    from pyproj import Transformer

    with rasterio.open(path) as src:
        b = src.bounds
        w, h = b.right - b.left, b.top - b.bottom
        native = [b.left + 0.3 * w, b.bottom + 0.3 * h, b.left + 0.6 * w, b.bottom + 0.6 * h]
        to_lonlat = Transformer.from_crs(src.crs, "OGC:CRS84", always_xy=True)
    lonlat = list(to_lonlat.transform_bounds(*native))
    return lonlat, native


@pytest.mark.parametrize("layer", DEMS)
def test_geotiff_bbox_values_equal_the_stored_raster(ogc, stored, layer):
    base, _ = ogc
    lonlat, _ = _inner_bbox(stored[layer])
    bbox = ",".join(f"{v:.6f}" for v in lonlat)
    status, _, body = get(f"{base}/ogc/collections/{layer}/coverage?f=GTiff&bbox={bbox}")
    assert status == 200, body[:300]
    with MemoryFile(body) as mem, mem.open() as out, rasterio.open(stored[layer]) as src:
        assert out.crs == src.crs
        assert out.res == src.res
        data = out.read(1, masked=True)
        rows, cols = np.nonzero(~np.ma.getmaskarray(data))
        assert len(rows) > 4
        xs, ys = rasterio.transform.xy(out.transform, rows, cols)
        expected = np.array([v[0] for v in src.sample(zip(xs, ys, strict=True))])
        np.testing.assert_array_equal(data[rows, cols].filled(), expected)


def test_coveragejson_subset_in_native_coordinates_equals_the_stored_window(ogc, stored):
    base, _ = ogc
    layer = "dem-5m-dakeng"
    with rasterio.open(stored[layer]) as src:
        x0 = src.bounds.left + 10 * src.res[0]
        y1 = src.bounds.top - 10 * src.res[1]
        x1, y0 = x0 + 8 * src.res[0], y1 - 6 * src.res[1]
        window = rasterio.windows.from_bounds(x0, y0, x1, y1, src.transform)
        expected = src.read(1, window=window)
    api = Coverages(f"{base}/ogc")
    raw = api.coverage(layer, subset={"x": (x0, x1), "y": (y0, y1)}).read()
    cov = json.loads(raw)
    assert cov["type"] == "Coverage"
    (values,) = cov["ranges"].values()
    got = np.array(values["values"], dtype=float).reshape(values["shape"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_every_raster_layer_is_a_coverage_collection(ogc):
    base, home = ogc
    with Catalog.open(home) as catalog:
        rasters = {
            lyr.id
            for lyr in catalog.layers()
            if (v := catalog.current(lyr.id)) and v.kind == "raster"
        }
    assert set(DEMS) <= rasters
    for layer in rasters:
        status, _, body = get(f"{base}/ogc/collections/{layer}?f=json")
        assert status == 200
        rels = {link["rel"] for link in json.loads(body)["links"]}
        assert "http://www.opengis.net/def/rel/ogc/1.0/coverage" in rels


@pytest.mark.parametrize(
    "query",
    ["bbox=1,2,3", "bbox=a,b,c,d", "subset=x(1:2),y(3)", "properties=nope", "f=nope"],
)
def test_bad_coverage_requests_are_ogc_exceptions_not_500(ogc, query):
    base, _ = ogc
    status, _, body = get(f"{base}/ogc/collections/dem-20m/coverage?{query}")
    assert 400 <= status < 500, (status, body[:300])


@pytest.mark.parametrize("layer", DEMS)
def test_raster_collection_links_to_its_geotiff_download(ogc, stored, layer):
    base, _ = ogc
    status, _, body = get(f"{base}/ogc/collections/{layer}?f=json")
    assert status == 200
    links = [
        link
        for link in json.loads(body)["links"]
        if link["href"].endswith(f"/download/{layer}.tif")
    ]
    assert len(links) == 1 and links[0]["type"].startswith("image/tiff")
    status, _, tif = get(links[0]["href"])
    assert status == 200
    with open(stored[layer], "rb") as f:
        assert tif == f.read()
