"""Agency uploads through the ingest pipeline, over HTTP with ckanapi (issue #7 item 7).

A served copy of the ingested small corpus of its own (uploads add layers, which other tests
must not see), users and tokens made with the real CLI. Expectations come from the files
themselves, read independently (pyogrio, the csv module), and from the catalog.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ckanapi
import pyogrio
import pytest

from catalog.db import Catalog
from catalog.errors import LayerNotFound
from tests.portal.ckan.conftest import _two_agencies, give_role, make_user
from tests.serve import serving

SHAPEFILE = "mo3www-streamlit-3Dwebmaps/臺北市區界圖_20220915"
TM2_CSV = "kiang-tainan_basecode/house/data/raw.csv"
GEOJSON_3826 = "godspeedhuang-Landuse_GeoJSON_Web/static/L0107.json"
GEOJSON_SMALL = "g0v-twgeojson/legacy/twCounty1982.json"
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


@dataclass
class UploadSite:
    """The served portal of these tests."""

    base: str
    home: Path
    own: str
    other: str
    tokens: dict[str, str]

    def api(self, user: str | None = "editor") -> ckanapi.RemoteCKAN:
        """A ckanapi client acting as ``user`` (None: anonymous)."""
        return ckanapi.RemoteCKAN(self.base, apikey=self.tokens.get(user or ""))


@pytest.fixture(scope="module")
def up(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadSite]:
    """A private served copy of the ingested home with an editor here and one elsewhere."""
    home = tmp_path_factory.mktemp("upload") / "home"
    shutil.copytree(ingested, home)
    own, other = _two_agencies(home)
    tokens = {"editor": make_user(home, "up-editor"), "outsider": make_user(home, "up-outsider")}
    give_role(home, own, "up-editor", "editor")
    give_role(home, other, "up-outsider", "editor")
    with serving(home) as base:
        yield UploadSite(base, home, own, other, tokens)


def _zip_folder(folder: Path, out: Path) -> Path:
    """Zip a folder's files (under the folder's own, Chinese, name) as an agency would."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return out


def _current(home: Path, layer_id: str):
    """The layer's current version, or None (also when there is no such layer)."""
    with Catalog.open(home) as catalog:
        try:
            return catalog.current(layer_id)
        except LayerNotFound:
            return None


def _dropped(layer_report: dict) -> int:
    """Records the report says were dropped (its drop-* repairs)."""
    return sum(r["count"] for r in layer_report["repairs"] if r["kind"].startswith("drop"))


def _new_dataset(up: UploadSite, name: str, **extra) -> dict:
    return up.api().action.package_create(
        name=name,
        owner_org=up.own,
        title=extra.pop("title", f"上傳測試 {name}"),
        tags=[{"name": "上傳"}, {"name": "測試"}],
        **extra,
    )


def _upload(up: UploadSite, path: Path, user: str = "editor", **fields) -> dict:
    with path.open("rb") as f:
        return up.api(user).action.resource_create(upload=f, **fields)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _formats(pkg: dict) -> set[str]:
    return {r["format"] for r in pkg["resources"]}


def test_a_shapefile_zip_makes_the_dataset_a_layer(up, real_data, tmp_path):
    zipped = _zip_folder(real_data / SHAPEFILE, tmp_path / "臺北市區界圖.shp.zip")
    source_count = pyogrio.read_info(next((real_data / SHAPEFILE).glob("*.shp")))["features"]
    created = _new_dataset(up, "taipei-districts", title="臺北市區界圖", license_id="CC-BY-4.0")
    assert _current(up.home, "taipei-districts") is None

    res = _upload(up, zipped, package_id="taipei-districts", name="區界圖原始檔")

    report = res["ingest"]
    assert report["command"] == "ingest" and report["status"] == "ok"
    (layer,) = report["layers"]
    assert layer["id"] == "taipei-districts" and layer["status"] == "published"
    assert layer["features_in"] == source_count
    assert layer["features_out"] == source_count - _dropped(layer)
    assert layer["crs"]["value"].startswith("EPSG:")
    current = _current(up.home, "taipei-districts")
    assert current.version == layer["version"] and current.feature_count == layer["features_out"]
    assert json.loads(res["ingest_report"]) == report  # kept on the resource for the page

    pkg = up.api(None).action.package_show(id="taipei-districts")
    assert pkg["id"] == created["id"]  # the dataset itself became the layer's
    assert pkg["layer_id"] == "taipei-districts" and pkg["title"] == "臺北市區界圖"
    assert pkg["license_id"] == "CC-BY-4.0"
    assert {"GeoJSON", "CSV", "KML", "SHP", "GPKG", "WMS", "WMTS", "OGC API Features"} <= (
        _formats(pkg)
    )
    uploaded = next(r for r in pkg["resources"] if r["id"] == res["id"])
    assert uploaded["url_type"] == "upload" and json.loads(uploaded["ingest_report"]) == report
    status, body = _get(f"{up.base}/download/taipei-districts.geojson")
    assert status == 200 and len(json.loads(body)["features"]) == layer["features_out"]
    status, body = _get(uploaded["url"])
    assert status == 200 and body == zipped.read_bytes()

    deadline = time.monotonic() + 300  # tiles are built in the background: wait for them
    while (status := _get(f"{up.base}/tiles/taipei-districts.json")[0]) != 200:
        assert time.monotonic() < deadline, f"TileJSON still {status}"
        time.sleep(1)
    assert {"TileJSON", "PMTiles"} <= _formats(pkg)


def test_a_geojson_is_a_new_version_of_a_layer_dataset(up, real_data, tmp_path):
    with Catalog.open(up.home) as catalog:
        layer = next(
            lyr
            for lyr in catalog.layers()
            if lyr.agency.name == up.own
            and (v := catalog.current(lyr.id)) is not None
            and v.kind == "vector"
        )
        before = catalog.current(layer.id)
    source = real_data / GEOJSON_3826
    source_count = pyogrio.read_info(source)["features"]

    res = _upload(up, source, package_id=layer.id)

    (report,) = res["ingest"]["layers"]
    assert report["status"] == "published" and report["id"] == layer.id
    assert report["crs"]["value"] == "EPSG:3826"  # the legacy crs member was read
    assert report["features_in"] == source_count
    assert report["features_out"] == source_count - _dropped(report)
    after = _current(up.home, layer.id)
    assert after.version != before.version and after.version == report["version"]
    assert after.feature_count == report["features_out"]
    pkg = up.api(None).action.package_show(id=layer.id)
    assert pkg["title"] == layer.title  # the layer's metadata stays the layer's
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    assert extras["layer_version"] == after.version
    assert extras["feature_count"] == str(report["features_out"])


def test_a_tm2_csv_becomes_a_point_layer(up, real_data):
    source = real_data / TM2_CSV
    with source.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    with_xy = sum(1 for r in rows if r["X坐標"].strip() and r["Y坐標"].strip())
    _new_dataset(up, "tainan-houses")

    res = _upload(up, source, package_id="tainan-houses")

    (report,) = res["ingest"]["layers"]
    assert report["status"] == "published" and report["kind"] == "vector"
    assert report["crs"]["value"] == "EPSG:3826"
    assert report["features_in"] == len(rows)
    assert report["features_out"] == len(rows) - _dropped(report) == with_xy
    current = _current(up.home, "tainan-houses")
    assert current.geometry_type.endswith("Point") and current.feature_count == with_xy
    minx, miny, maxx, maxy = current.bbox  # Tainan, in lon/lat
    assert 119.9 < minx <= maxx < 120.7 and 22.8 < miny <= maxy < 23.5
    status, body = _get(f"{up.base}/download/tainan-houses.geojson")
    assert status == 200 and len(json.loads(body)["features"]) == with_xy


def test_a_csv_without_coordinates_becomes_a_table_datastore_reads(up, tmp_path):
    table = tmp_path / "停車場收費.csv"
    rows = [("名稱", "小型車費率"), ("府前停車場", "40"), ("市政停車場", "30")]
    rows.append(("文心停車場", "20"))
    table.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    _new_dataset(up, "parking-fees")

    res = _upload(up, table, package_id="parking-fees")

    (report,) = res["ingest"]["layers"]
    assert report["status"] == "published" and report["kind"] == "table"
    assert report["features_out"] == len(rows) - 1
    pkg = up.api(None).action.package_show(id="parking-fees")
    generated = next(r for r in pkg["resources"] if r["format"] == "CSV" and r["generated"])
    found = up.api(None).action.datastore_search(resource_id=generated["id"], q="文心")
    assert [r["名稱"] for r in found["records"]] == ["文心停車場"]
    assert "WMS" not in _formats(pkg)  # a table has no map services


def _refused(up: UploadSite, path: Path, **fields) -> dict:
    with pytest.raises(ckanapi.ValidationError) as caught:
        _upload(up, path, **fields)
    return caught.value.error_dict


def test_a_refused_file_leaves_the_dataset_as_it_was(up, real_data, tmp_path):
    _new_dataset(up, "refused-target")
    good = _zip_folder(real_data / SHAPEFILE, tmp_path / "區界.shp.zip")
    kept = _upload(up, good, package_id="refused-target")
    version = _current(up.home, "refused-target").version
    before = up.api(None).action.package_show(id="refused-target")

    truncated = tmp_path / "truncated.shp.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    pointer = tmp_path / "區界圖.shp.zip"
    pointer.write_text(LFS_POINTER, encoding="ascii")
    error = _refused(up, truncated, package_id="refused-target")
    assert error["__type"] == "Validation Error"
    assert any("zip" in m for m in error["upload"]), error
    error = _refused(up, pointer, package_id="refused-target")
    assert any("git-lfs-pointer" in m and "Git-LFS" in m for m in error["upload"]), error
    # a new file for the uploaded resource, refused: the stored file stays
    with pointer.open("rb") as f, pytest.raises(ckanapi.ValidationError):
        up.api().action.resource_update(id=kept["id"], upload=f)

    assert up.api(None).action.package_show(id="refused-target") == before
    assert _current(up.home, "refused-target").version == version
    status, body = _get(next(r for r in before["resources"] if r["id"] == kept["id"])["url"])
    assert status == 200 and body == good.read_bytes()


def test_a_refused_first_upload_leaves_a_plain_dataset_plain(up, tmp_path):
    before = _new_dataset(up, "still-plain")
    pointer = tmp_path / "data.geojson"
    pointer.write_text(LFS_POINTER, encoding="ascii")
    error = _refused(up, pointer, package_id="still-plain")
    assert any("Git-LFS" in m for m in error["upload"])
    after = up.api(None).action.package_show(id="still-plain")
    assert after == up.api(None).action.package_show(id=before["id"])
    assert after["layer_id"] is None and after["resources"] == []
    assert after["metadata_modified"] == before["metadata_modified"]
    with Catalog.open(up.home) as catalog:
        assert "still-plain" not in {lyr.id for lyr in catalog.layers()}


def test_non_spatial_files_stay_plain_uploads(up, tmp_path):
    _new_dataset(up, "plain-docs")
    pdf = tmp_path / "說明.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    res = _upload(up, pdf, package_id="plain-docs")
    assert "ingest" not in res and res["url_type"] == "upload"
    pkg = up.api(None).action.package_show(id="plain-docs")
    assert pkg["layer_id"] is None and [r["id"] for r in pkg["resources"]] == [res["id"]]
    assert _get(res["url"]) == (200, pdf.read_bytes())


def test_an_editor_of_another_organization_may_not_upload(up, real_data):
    _new_dataset(up, "not-yours")
    with pytest.raises(ckanapi.NotAuthorized):
        _upload(up, real_data / GEOJSON_SMALL, user="outsider", package_id="not-yours")
    assert up.api(None).action.package_show(id="not-yours")["resources"] == []


def test_two_uploads_to_one_dataset_at_once_do_not_interleave(up, real_data):
    created = _new_dataset(up, "two-at-once")
    sources = [real_data / GEOJSON_SMALL, real_data / GEOJSON_3826]
    results: dict[int, dict] = {}

    def send(i: int) -> None:
        results[i] = _upload(up, sources[i], package_id="two-at-once")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 2
    versions = {results[i]["ingest"]["layers"][0]["version"] for i in range(2)}
    assert all(results[i]["ingest"]["status"] == "ok" for i in range(2))
    with Catalog.open(up.home) as catalog:
        stored = {v.version for v in catalog.versions("two-at-once")}
        current = catalog.current("two-at-once").version
    assert versions <= stored and current in versions
    pkg = up.api(None).action.package_show(id="two-at-once")
    assert pkg["id"] == created["id"] and pkg["layer_id"] == "two-at-once"
    assert {results[i]["id"] for i in range(2)} <= {r["id"] for r in pkg["resources"]}
    names = up.api(None).action.package_list()
    assert "two-at-once-dataset" not in names  # the dataset was made the layer's, not renamed


def test_a_private_dataset_keeps_a_spatial_file_unpublished(up, real_data):
    _new_dataset(up, "private-plan", private=True)
    source = real_data / GEOJSON_SMALL
    res = _upload(up, source, package_id="private-plan")
    assert res["ingest"]["status"] == "skipped" and "private" in res["ingest"]["warnings"][0]
    pkg = up.api().action.package_show(id="private-plan")
    assert pkg["layer_id"] is None and [r["id"] for r in pkg["resources"]] == [res["id"]]
    assert _current(up.home, "private-plan") is None
    assert _get(f"{up.base}/download/private-plan.geojson")[0] == 404
    assert _get(res["url"])[0] == 403  # the file itself: only for the organization


def test_a_resource_id_cannot_reach_outside_the_uploads_folder(up, tmp_path):
    """A client-chosen resource id like ``../x`` is refused (security review R1).

    Otherwise an upload to it would land in, or first remove, a folder outside the uploads.
    """
    victim = up.home / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    with pytest.raises(ckanapi.ValidationError) as refused:
        _new_dataset(up, "traversal", resources=[{"id": "../victim", "url": "https://a.tw/x"}])
    assert "id" in str(refused.value)
    created = _new_dataset(up, "traversal-ok", resources=[{"url": "https://a.tw/x"}])
    with pytest.raises(ckanapi.ValidationError):
        up.api().action.package_update(
            id=created["id"],
            name="traversal-ok",
            owner_org=up.own,
            resources=[{"id": "../../victim", "url": "https://a.tw/x"}],
        )
    assert (victim / "keep.txt").read_text() == "keep"
    assert not (up.home / "uploads" / ".." / "victim" / "x").exists()


def test_a_resource_id_of_another_dataset_cannot_be_taken(up):
    """An editor cannot claim (move or overwrite) another dataset's resource by its id."""
    theirs = up.api("outsider").action.package_create(
        name="theirs-private",
        owner_org=up.other,
        private=True,
        resources=[{"url": "https://a.tw/secret.csv", "name": "secret"}],
    )
    stolen = theirs["resources"][0]["id"]
    with pytest.raises(ckanapi.ValidationError):
        _new_dataset(up, "thief", resources=[{"id": stolen, "url": "https://a.tw/mine"}])
    after = up.api("outsider").action.resource_show(id=stolen)
    assert after["package_id"] == theirs["id"] and after["url"] == "https://a.tw/secret.csv"
