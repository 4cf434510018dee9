"""Hostile and sloppy inputs for the KML, GeoJSON and raster readers."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from ingest.errors import SourceRefused
from ingest.pipeline import read_source

KML = (
    '<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2" '
    'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>{}</Document></kml>'
)


def test_kml_coordinates_with_spaces_and_gps_tracks(tmp_path):
    path = tmp_path / "t.kml"
    path.write_text(
        KML.format(
            "<Placemark><name>線</name><LineString><coordinates>120.6, 24.1 120.7, 24.2"
            "</coordinates></LineString></Placemark>"
            "<Placemark><name>軌跡</name><gx:Track><when>2020-01-01</when>"
            "<gx:coord>120.6 24.1 10</gx:coord><gx:coord>120.61 24.11 12</gx:coord></gx:Track>"
            "</Placemark>"
        ),
        encoding="utf-8",
    )
    (layer,) = read_source(path)
    assert layer.features_out == 2 and layer.geometry_type == "LineString"
    assert list(layer.frame["name"]) == ["線", "軌跡"]


def test_kml_with_a_malformed_coordinate_is_refused_naming_the_placemark(tmp_path):
    path = tmp_path / "bad.kml"
    path.write_text(
        KML.format(
            "<Placemark><name>壞點</name><Point><coordinates>abc,def"
            "</coordinates></Point></Placemark>"
        ),
        encoding="utf-8",
    )
    with pytest.raises(SourceRefused, match="placemark 壞點: malformed coordinate"):
        read_source(path)


def test_kmz_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.kmz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doc.kml", KML.format(" " * 20_000_000))
    with pytest.raises(SourceRefused, match="zip bomb"):
        read_source(path)


def test_big5_geojson_is_refused_with_the_fix_and_read_with_it(tmp_path):
    path = tmp_path / "big5.geojson"
    path.write_bytes(
        b'{"type":"FeatureCollection","features":[{"type":"Feature",'
        b'"properties":{"n":"' + "臺中市".encode("cp950") + b'"},'
        b'"geometry":{"type":"Point","coordinates":[120.6,24.1]}}]}'
    )
    with pytest.raises(SourceRefused, match="add `encoding: cp950`"):
        read_source(path)
    (layer,) = read_source(path, encoding="cp950")
    assert list(layer.frame["n"]) == ["臺中市"]


def _tiff(path, crs: str, x0: float, y0: float):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(x0, y0, 10, 10),
    ) as ds:
        ds.write(np.ones((1, 4, 4), "float32"))
    return path


def test_twd67_raster_is_moved_by_the_datum_shift(tmp_path):
    path = _tiff(tmp_path / "t67.tif", "EPSG:3828", 217_000, 2_672_000)
    (layer,) = read_source(path, work=tmp_path / "w")
    assert layer.source_crs == "EPSG:3828"
    with rasterio.open(layer.raster_path) as ds:
        assert ds.crs.to_epsg() == 3826
        assert (ds.transform.c, ds.transform.f) == pytest.approx((217_828.589, 2_671_793.085))


def test_twd67_zone_119_raster_is_refused(tmp_path):
    path = _tiff(tmp_path / "t67z119.tif", "EPSG:3827", 300_000, 2_600_000)
    with pytest.raises(SourceRefused, match="EPSG:3825"):
        read_source(path, work=tmp_path / "w")
