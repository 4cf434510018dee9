"""`geoportal tiles build`: one PMTiles archive per vector layer version, real MVT inside."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import mapbox_vector_tile
import mercantile
import pyogrio
import shapely
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import TileType

from catalog import Catalog
from tests.tiles.conftest import run


def _reader(path: Path):
    f = open(path, "rb")  # noqa: SIM115 - kept open for the reader's lifetime
    return Reader(MmapSource(f))


def test_every_vector_layer_gets_an_archive_and_the_rest_say_why_not(tiled, expected):
    _, report = tiled
    for lid, truth in expected["layers"].items():
        if truth.get("outcome") == "refused":
            assert lid not in report
        elif truth["kind"] == "raster":  # raster archives: see test_prerender.py
            assert (report[lid]["kind"], report[lid]["status"]) == ("raster", "built")
        else:
            assert report[lid]["status"] == "built", (lid, report[lid]["message"])
            assert Path(report[lid]["path"]).is_file()


def test_archive_holds_the_layer_as_mvt_with_its_chinese_attributes(tiled):
    home, report = tiled
    reader = _reader(Path(report["public-parking"]["path"]))
    header, meta = reader.header(), reader.metadata()
    assert header["tile_type"] == TileType.MVT
    (vl,) = meta["vector_layers"]
    assert vl["id"] == "public-parking"
    assert {"名稱", "車位數", "啟用日期"} <= set(vl["fields"])
    with Catalog.open(home) as c:
        version = c.current("public-parking")
    _, _, wkb, fields = pyogrio.raw.read(home / version.path, max_features=1)
    point = shapely.from_wkb(wkb[0])
    z = header["max_zoom"]
    tile = mercantile.tile(point.x, point.y, z)
    data = reader.get(z, tile.x, tile.y)
    decoded = mapbox_vector_tile.decode(gzip.decompress(data))
    names = {f["properties"].get("名稱") for f in decoded["public-parking"]["features"]}
    assert fields[1][0] in names


def test_unchanged_layers_are_not_rebuilt(tiled):
    home, report = tiled
    path = Path(report["taichung-villages"]["path"])
    before = path.stat().st_mtime_ns
    out = run("tiles", "build", "taichung-villages", "--json", home=home)
    rows = json.loads(out.stdout)["layers"]
    (again,) = [r for r in rows if r["kind"] != "tileset"]  # its tilesets come along
    assert again["status"] == "unchanged" and path.stat().st_mtime_ns == before


def test_unknown_layer_is_an_error(tiled):
    home, _ = tiled
    out = run("tiles", "build", "no-such-layer", home=home)
    assert out.returncode == 1 and "no-such-layer" in out.stderr


def test_a_zoom_range_in_the_manifest_style_overrides_the_density_choice(tmp_path):
    feats = [
        {
            "type": "Feature",
            "properties": {"n": i},
            "geometry": {"type": "Point", "coordinates": [120.6 + i * 0.001, 24.1]},
        }
        for i in range(50)
    ]
    (tmp_path / "p.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": feats})
    )
    manifest = tmp_path / "layers.yaml"
    home = tmp_path / "home"

    def build(style: str) -> Path:
        entry = f"  - {{id: pts, title: 點, source: p.geojson, style: {style}}}\n"
        manifest.write_text("layers:\n" + entry, encoding="utf-8")
        assert run("ingest", str(manifest), home=home).returncode == 0
        out = run("tiles", "build", "pts", "--json", home=home)
        (row,) = [r for r in json.loads(out.stdout)["layers"] if r["id"] == "pts"]
        assert row["status"] == "built", row
        return Path(row["path"])

    chosen = build("{}")
    ranged = build("{min_zoom: 2, max_zoom: 5}")
    header = _reader(ranged).header()
    assert (header["min_zoom"], header["max_zoom"]) == (2, 5)
    assert _reader(chosen).header()["max_zoom"] > 5  # tippecanoe chose from the density
    assert chosen.exists() and ranged != chosen  # a new archive; the old one is never replaced
