"""The sample corpus: deterministic, complete, and exactly what expected.json says it is."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import yaml
from pyproj import CRS, Transformer

from geoportal.sample import SampleError, generate, plan
from geoportal.sample.corpus import MESS_CLASSES
from tests.geoportal.sample.readback import read_layer, read_shapefile

SPEC_CRS = {"EPSG:3826", "EPSG:3825", "EPSG:3824", "EPSG:3828", "EPSG:4326", "EPSG:3857"}
TAICHUNG = (120.46, 23.99, 121.45, 24.44)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _manifest(corpus: Path) -> dict:
    return yaml.safe_load((corpus / "layers.yaml").read_text(encoding="utf-8"))


def _entries_by_id(corpus: Path) -> dict[str, dict]:
    return {e["id"]: e for e in _manifest(corpus)["layers"]}


def test_same_seed_gives_identical_bytes_whatever_the_job_count(small_corpus, tmp_path):
    again = tmp_path / "again"
    generate(again, scale="small", seed=20231, jobs=1)
    assert _digest(again) == _digest(small_corpus)


def test_another_seed_gives_another_corpus(small_corpus, tmp_path):
    other = tmp_path / "other"
    generate(other, scale="small", seed=7, layers=12, jobs=1)
    a = _digest(small_corpus)
    b = _digest(other)
    common = set(a) & set(b)
    assert common, "the showcase files should exist in both"
    assert sum(a[k] != b[k] for k in common) > len(common) // 2


def test_manifest_follows_the_spec(small_corpus, expected):
    doc = _manifest(small_corpus)
    assert doc["defaults"]["license"] == "OGDL-Taiwan-1.0"
    entries = doc["layers"]
    assert len(entries) == 40
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids)
    for e in entries:
        assert re.fullmatch(r"[a-z0-9-]+", e["id"]), e["id"]
        assert e["title"] and e["category"] and e["update_frequency"] and e["keywords"]
        assert (small_corpus / e["source"]).is_file(), e["source"]
    # Every catalog layer in expected.json comes from exactly one entry, and ids stay unique.
    yielded = [lid for e in expected["entries"] for lid in e["yields"]]
    assert sorted(yielded) == sorted(expected["layers"])
    assert [e["id"] for e in expected["entries"]] == ids


def test_multi_sublayer_source_without_layer_key_yields_numbered_ids(small_corpus, expected):
    entries = _entries_by_id(small_corpus)
    for e in expected["entries"]:
        if len(e["yields"]) > 1:
            assert "layer" not in entries[e["id"]]
            assert e["yields"] == [f"{e['id']}-{n}" for n in range(1, len(e["yields"]) + 1)]


def test_every_class_of_mess_is_present(expected):
    classes = expected["mess_classes"]
    assert set(classes) == set(MESS_CLASSES)
    missing = [k for k, v in classes.items() if not v["layers"]]
    assert not missing, f"mess classes with no layer: {missing}"


def test_every_crs_and_format_is_present(expected):
    layers = expected["layers"].values()
    assert {x["crs"] for x in layers if x.get("crs")} >= SPEC_CRS
    formats = {x["format"] for x in layers}
    assert formats >= {"shapefile", "geojson", "topojson", "kml", "csv", "gpkg", "geotiff"}
    sources = {x["source"].rsplit(".", 1)[-1] for x in layers if x["format"] == "shapefile"}
    assert sources >= {"shp", "zip"}, "zipped and unzipped shapefiles"
    assert any(x["raster"].get("count") == 3 for x in layers if x["kind"] == "raster")


def _close(a: list[float], b: list[float], tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def _same_value(got, want) -> bool:
    if want is None and got == "":
        return True  # an empty CSV cell: null once ingested
    if isinstance(want, float) and got is not None:
        return abs(float(got) - want) < 1e-6 * max(1.0, abs(want))
    if isinstance(got, str) and not isinstance(want, str) and want is not None:
        return got == str(want)
    return got == want


def test_vector_layers_read_back_as_expected(small_corpus, expected, tmp_path):
    """Counts, bounding boxes and sample attribute values match the files, layer by layer."""
    entries = _entries_by_id(small_corpus)
    problems = []
    checked = 0
    for lid, layer in expected["layers"].items():
        if layer["kind"] != "vector" or layer.get("outcome", "ok") != "ok":
            continue
        got = read_layer(small_corpus, layer, entries[layer["entry"]], tmp_path)
        checked += 1
        if len(got.records) != layer["feature_count"]:
            problems.append(f"{lid}: {len(got.records)} records, expected {layer['feature_count']}")
        nulls = sum(g is None for g in got.geometry)
        if nulls != layer.get("null_geometries", 0):
            problems.append(f"{lid}: {nulls} null geometries")
        tol = 2e-7 if CRS(layer["crs"]).is_geographic else 0.01
        if not _close(got.bbox, layer["bbox_source"], tol):
            problems.append(f"{lid}: bbox {got.bbox} != {layer['bbox_source']}")
        problems += _sample_problems(lid, layer, got)
    assert checked >= 30
    assert not problems, "\n".join(problems)


def _sample_problems(lid: str, layer: dict, got) -> list[str]:
    out = []
    for s in layer["samples"]:
        ((key, value),) = s["where"].items()
        matches = [r for r in got.records if r.get(key) == value]
        if len(matches) != 1:
            out.append(f"{lid}: {len(matches)} records with {key}={value}")
            continue
        rec = matches[0]
        raw = s.get("raw", {})
        for col, want in s["attributes"].items():
            want = raw.get(col, want)
            if col not in rec or not _same_value(rec[col], want):
                out.append(f"{lid}/{value}: {col}={rec.get(col)!r}, expected {want!r}")
    return out


def test_rasters_read_back_as_expected(small_corpus, expected):
    rasters = [x for x in expected["layers"].values() if x["kind"] == "raster"]
    assert len(rasters) >= 3
    for layer in rasters:
        with rasterio.open(small_corpus / layer["source"]) as ds:
            info = layer["raster"]
            assert (ds.width, ds.height, ds.count) == (info["width"], info["height"], info["count"])
            assert ds.dtypes[0] == info["dtype"]
            assert ds.nodata == info.get("nodata")
            b = ds.bounds
            assert _close([b.left, b.bottom, b.right, b.top], layer["bbox_source"], 0.01)


def test_dem_nodata_and_sidecars(small_corpus, expected):
    dem = expected["layers"]["dem-20m"]
    path = small_corpus / dem["source"]
    for sidecar in (path.with_suffix(".tfw"), Path(f"{path}.aux.xml"), Path(f"{path}.ovr")):
        assert sidecar.is_file(), sidecar
    with rasterio.open(path) as ds:
        data = ds.read(1)
        assert ds.nodata == -32767
        assert (data == -32767).any() and (data != -32767).any()
        assert ds.overviews(1) == [2, 4, 8]
        # Terrain rises from the coast to the mountains, as Taichung's does.
        valid = np.where(data == -32767, np.nan, data)
        west, east = np.nanmean(valid[:, : ds.width // 4]), np.nanmean(valid[:, -ds.width // 3 :])
        assert east > west + 500


def test_float64_dem_has_min_double_nodata_and_custom_wkt(small_corpus, expected):
    dem = expected["layers"]["dem-5m-dakeng"]
    with rasterio.open(small_corpus / dem["source"]) as ds:
        assert ds.dtypes[0] == "float64"
        assert ds.nodata == pytest.approx(-1.7976931348623157e308)
        assert ds.crs.to_epsg() is None, "the WKT must be custom, with no EPSG code"
        tm = ds.crs.to_dict()
        assert (tm["lon_0"], tm["k"], tm["x_0"]) == (121, 0.9999, 250000)


def test_big5_dbf_with_vendor_characters_and_no_cpg(small_corpus, expected):
    layer = expected["layers"]["taichung-villages"]
    shp = small_corpus / layer["source"]
    assert not shp.with_suffix(".cpg").exists()
    dbf = shp.with_suffix(".dbf").read_bytes()
    assert dbf[29] == 0x4F, "language driver byte says Big5"
    with pytest.raises(UnicodeDecodeError):
        dbf.decode("cp950")
    got = read_shapefile(shp, "cp950")
    names = {r["VILLNAME"] for r in got.records}
    assert {"後廍里", "磘仔里", "坔頭里", "槺榔里"} <= names
    prj = shp.with_suffix(".prj").read_text()
    assert prj.startswith('PROJCS["TM2[TWD97]"') and "AUTHORITY" not in prj


def test_utf8_cut_at_field_width(small_corpus, expected):
    layer = expected["layers"]["school-districts"]
    dbf = (small_corpus / layer["source"]).with_suffix(".dbf").read_bytes()
    header_len = int.from_bytes(dbf[8:10], "little")
    record_len = int.from_bytes(dbf[10:12], "little")
    cut = 0
    for i in range(layer["feature_count"]):
        rec = dbf[header_len + i * record_len : header_len + (i + 1) * record_len]
        field = rec[-80:].rstrip(b" ")
        try:
            field.decode("utf-8")
        except UnicodeDecodeError:
            cut += 1
    assert cut > 0, "some descriptions must end mid-character"
    shown = [s for s in layer["samples"] if "說明" in s["attributes"]]
    assert all(len(s["attributes"]["說明"].encode()) <= 80 for s in shown)


def test_cpg_that_lies(small_corpus, expected):
    shp = small_corpus / expected["layers"]["mrt-routes"]["source"]
    assert shp.with_suffix(".cpg").read_text().upper() == "UTF-8"
    dbf = shp.with_suffix(".dbf").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        dbf[32:].decode("utf-8")
    dbf[32:].decode("cp950")


def test_zip_with_cp950_names_macosx_junk_and_nested_folders(small_corpus, expected):
    path = small_corpus / expected["layers"]["road-centerlines"]["source"]
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert all(not i.flag_bits & 0x800 for i in infos), "names must not be flagged UTF-8"
    names = [i.orig_filename.encode("cp437").decode("cp950") for i in infos]
    assert "道路中心線/112年度/道路中心線.shp" in names
    assert any(n.startswith("__MACOSX/") for n in names)


def test_zip_inside_zip(small_corpus, expected):
    path = small_corpus / expected["layers"]["urban-zoning-twd67"]["source"]
    with zipfile.ZipFile(path, metadata_encoding="cp950") as zf:
        (inner,) = zf.namelist()
        assert inner.endswith(".zip")


def test_git_lfs_pointer_poses_as_data(small_corpus, expected):
    layer = expected["layers"]["traffic-counts"]
    assert layer["outcome"] == "refused"
    text = (small_corpus / layer["source"]).read_text()
    assert text.startswith("version https://git-lfs.github.com/spec/v1")


def test_twd67_coordinates_carry_the_datum_shift(small_corpus, expected, tmp_path):
    """TWD67 X/Y sit ~830 m west and ~200 m north of TWD97 X/Y (EPSG:15487), not on top."""
    layer = expected["layers"]["control-points-twd67"]
    entry = _entries_by_id(small_corpus)[layer["entry"]]
    got = read_layer(small_corpus, layer, entry, tmp_path)
    twd67 = np.array([[float(r["橫坐標67"]), float(r["縱坐標67"])] for r in got.records])
    to97 = Transformer.from_crs("EPSG:3828", "EPSG:3826", always_xy=True)
    x97, y97 = to97.transform(twd67[:, 0], twd67[:, 1])
    shift = np.column_stack([x97, y97]) - twd67
    assert np.allclose(shift, [828.589, -206.915], atol=0.01)
    lon, lat = Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True).transform(x97, y97)
    bbox = layer["bbox"]
    assert bbox[0] - 1e-6 <= lon.min() and lon.max() <= bbox[2] + 1e-6
    assert bbox[1] - 1e-6 <= lat.min() and lat.max() <= bbox[3] + 1e-6


def test_geometry_looks_like_a_city(small_corpus, expected, tmp_path):
    entries = _entries_by_id(small_corpus)
    districts = read_layer(
        small_corpus,
        expected["layers"]["district-boundaries-legacy"],
        entries["district-boundaries-legacy"],
        tmp_path,
    )
    assert len(districts.records) == 29
    # Districts partition the city: they do not overlap and stay within Taichung's extent.
    polys = [shapely.make_valid(g) for g in districts.geometry if g is not None]
    union = shapely.union_all(polys)
    assert sum(p.area for p in polys) == pytest.approx(union.area, rel=1e-6)
    minx, miny, maxx, maxy = union.bounds
    assert TAICHUNG[0] <= minx and maxx <= TAICHUNG[2]
    assert TAICHUNG[1] <= miny and maxy <= TAICHUNG[3]
    # Roads form a connected network: most segments share endpoints with the largest component.
    roads = read_layer(
        small_corpus, expected["layers"]["road-centerlines"], entries["road-centerlines"], tmp_path
    )
    assert _largest_component_share(roads.geometry) > 0.8
    # Points cluster in the urban core (around 120.67E, 24.15N).
    plates = read_layer(
        small_corpus, expected["layers"]["door-plates"], entries["door-plates"], tmp_path
    )
    xy = np.array([[g.x, g.y] for g in plates.geometry if g is not None])
    lon, lat = Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True).transform(
        xy[:, 0], xy[:, 1]
    )
    near_core = np.hypot(lon - 120.672, lat - 24.15) < 0.08
    assert near_core.mean() > 0.4


def _largest_component_share(lines: list) -> float:
    parent: dict = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    ends = []
    for g in lines:
        c = np.round(np.asarray(g.coords)[[0, -1], :2], 3)
        a, b = tuple(c[0]), tuple(c[1])
        parent[find(a)] = find(b)
        ends.append(a)
    roots = [find(a) for a in ends]
    _, counts = np.unique(np.array([hash(r) for r in roots]), return_counts=True)
    return counts.max() / len(roots)


def test_supply_list_has_chinese_headers_and_embedded_newlines(small_corpus, expected):
    supply = expected["supply_list"]
    raw = (small_corpus / supply["path"]).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.startswith("資料集名稱,資料集提供機關,服務分類,更新頻率")
    assert "\r\n" in text.split("\r\n", 1)[1].split('"')[1], "an embedded newline in a quoted cell"
    assert len(supply["rows"]) >= 5
    for row in supply["rows"]:
        assert row["title"] in text and (small_corpus / row["source"]).is_file()


def test_city_plan_has_574_entries_and_the_big_layers():
    tasks = plan("city", None, 20231)
    from geoportal.sample.corpus import SHOWCASE_ENTRIES

    entries = sum(SHOWCASE_ENTRIES.get(t.id, 1) for t in tasks)
    assert entries == 574
    ids = {t.id for t in tasks}
    # "<id>-<n>" belongs to the sublayers of entry <id>: no entry may be called that.
    suffixed = [i.rsplit("-", 1) for i in ids if "-" in i]
    assert not [i for i in suffixed if i[1].isdigit() and len(i[1]) <= 2 and i[0] in ids]
    builders = {t.builder for t in tasks}
    assert {"addresses_csv", "buildings_zip", "roads_zip", "dem_float32"} <= builders
    assert len({t.id for t in tasks}) == len(tasks)


def test_refuses_to_overwrite_a_folder_that_is_not_a_corpus(tmp_path):
    victim = tmp_path / "mine"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me")
    with pytest.raises(SampleError, match="not empty and holds no earlier corpus"):
        generate(victim, layers=3)
    assert (victim / "notes.txt").read_text() == "keep me"


def test_regenerating_replaces_an_earlier_corpus_whole(tmp_path):
    out = tmp_path / "c"
    generate(out, layers=12, jobs=1)
    (out / "stale.txt").write_text("left over")
    generate(out, layers=3, jobs=1)
    assert not (out / "stale.txt").exists()
    doc = json.loads((out / "expected.json").read_text(encoding="utf-8"))
    assert len(doc["entries"]) == 3
    assert not list(tmp_path.glob(".c.tmp-*"))
