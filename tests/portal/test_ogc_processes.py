"""OGC API - Processes at /ogc: the five function APIs, executed over real HTTP.

Every expectation comes from pyproj, from the stored GeoPackages of the layers (read with
pyogrio and shapely) or from the corpus, never from the code under test.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from email.message import Message
from pathlib import Path

import jsonschema
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from pygeoapi.openapi import get_oas

from catalog.db import Catalog
from catalog.view import CatalogView
from portal.ogc.config import Site, build_config, validate
from portal.ogc.processes.registry import add_input_schemas

PROCESSES = (
    "coordinate-conversion",
    "district-lookup",
    "spatial-query",
    "address-lookup",
    "address-reverse",
    "extract",
)
TAIWAN = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3826", always_xy=True)
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3826", "EPSG:4326", always_xy=True)


def request(url: str, data: bytes | None = None, method: str = "GET", **headers: str):
    """(status, headers, body) of a request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def post(base: str, process: str, inputs: dict, **headers: str) -> tuple[int, Message, bytes]:
    """(status, headers, body) of an execution request; HTTP errors are answers too."""
    body = json.dumps({"inputs": inputs}).encode()
    url = f"{base}/ogc/processes/{process}/execution"
    return request(url, body, "POST", **{"Content-Type": "application/json", **headers})


def run(base: str, process: str, inputs: dict) -> dict:
    status, _, body = post(base, process, inputs)
    assert status == 200, body[:500]
    return json.loads(body)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def base(ogc) -> str:
    return ogc[0]


@pytest.fixture(scope="module")
def stores(ingested) -> dict[str, Path]:
    """Layer id → stored GeoPackage of its current version."""
    with Catalog.open(ingested) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    return {lyr.id: ingested / v.path for lyr, v in snapshot.published() if v.kind == "vector"}


def read(path: Path):
    """(fids, shapely geometries in EPSG:4326, {field: values}) of a store."""
    meta, fids, wkb, data = pyogrio.raw.read(path, return_fids=True)
    return fids, shapely.from_wkb(wkb), dict(zip(meta["fields"], data, strict=True))


def to_tm2(geoms):
    return shapely.transform(geoms, lambda c: np.column_stack(TAIWAN.transform(c[:, 0], c[:, 1])))


# -- discovery -----------------------------------------------------------------------------


def test_config_with_processes_validates(ingested):
    with Catalog.open(ingested) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    config = build_config(snapshot, Site("http://portal.example", ingested))
    validate(config)
    kinds = {k: v["type"] for k, v in config["resources"].items() if v["type"] == "process"}
    assert set(kinds) == set(PROCESSES)
    district = config["resources"]["district-lookup"]["processor"]["boundaries"]
    assert [b["layer"] for b in district] == ["taichung-districts", "taichung-villages"]
    door = config["resources"]["address-lookup"]["processor"]["address"]
    assert door["layer"] == "door-plates"


def test_processes_are_listed_with_bilingual_titles(base):
    listed = get_json(f"{base}/ogc/processes?f=json")["processes"]
    assert {p["id"] for p in listed} >= set(PROCESSES)
    english = get_json(f"{base}/ogc/processes/district-lookup?f=json&lang=en")
    chinese = get_json(f"{base}/ogc/processes/district-lookup?f=json")
    assert english["title"] == "District lookup"
    assert chinese["title"] == "行政區查詢"
    assert set(english["inputs"]) == {"point", "crs"}


def test_openapi_describes_every_execution_with_an_example(base):
    doc = get_json(f"{base}/ogc/openapi?f=json")
    for pid in PROCESSES:
        post_op = doc["paths"][f"/processes/{pid}/execution"]["post"]
        example = post_op["requestBody"]["content"]["application/json"]["example"]
        description = get_json(f"{base}/ogc/processes/{pid}?f=json")
        assert set(example["inputs"]) <= set(description["inputs"]), pid


def test_input_schemas_go_into_the_openapi_document(ingested):
    with Catalog.open(ingested) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    config = build_config(snapshot, Site("http://portal.example", ingested))
    oas = add_input_schemas(get_oas(config, fail_on_invalid_collection=False), config)
    for pid in PROCESSES:
        body = oas["paths"][f"/processes/{pid}/execution"]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]["properties"]["inputs"]
        example = body["content"]["application/json"]["example"]["inputs"]
        jsonschema.validate(example, schema)
    conversion = oas["paths"]["/processes/coordinate-conversion/execution"]["post"]
    inputs = conversion["requestBody"]["content"]["application/json"]["schema"]
    assert inputs["properties"]["inputs"]["required"] == ["points", "source_crs", "target_crs"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"points": [1, 2], "source_crs": 3}, inputs["properties"]["inputs"])


# -- coordinate conversion -----------------------------------------------------------------

CODES = ("EPSG:3826", "EPSG:3825", "EPSG:3828", "EPSG:4326", "EPSG:3824", "EPSG:3857")


def reference(points_3826: np.ndarray, code: str) -> np.ndarray:
    """Points (EPSG:3826) in ``code`` by pyproj; TWD67 through EPSG:15487."""
    x, y = points_3826[:, 0], points_3826[:, 1]
    if code == "EPSG:3828":
        t = pyproj.Transformer.from_crs("EPSG:3826", "EPSG:3828", always_xy=True)
        assert "TWD67 / TM2 zone 121 to TWD97 / TM2 zone 121" in t.description
    else:
        t = pyproj.Transformer.from_crs("EPSG:3826", code, always_xy=True)
    return np.column_stack(t.transform(x, y))


def close_mm(got: np.ndarray, want: np.ndarray, code: str) -> None:
    tol = 1e-8 if code in ("EPSG:4326", "EPSG:3824") else 1e-3  # 1e-8 degree ≈ 1 mm
    assert np.max(np.abs(got - want)) <= tol


def ref_convert(points: np.ndarray, source: str, target: str) -> np.ndarray:
    """Pyproj's best operation; with TWD67, its best TM2-to-TM2 one (EPSG:15487) via 3826."""
    steps = [(source, target)]
    if "EPSG:3828" in (source, target):
        steps = [(source, "EPSG:3826"), ("EPSG:3826", target)]
    x, y = points[:, 0], points[:, 1]
    for a, b in steps:
        if a != b:
            x, y = pyproj.Transformer.from_crs(a, b, always_xy=True).transform(x, y)
    return np.column_stack([x, y])


@pytest.fixture(scope="module")
def sample_points() -> np.ndarray:
    """500 points over the Taiwan main island, EPSG:3826 (fixed seed)."""
    rng = np.random.default_rng(20231)
    return np.column_stack([rng.uniform(170_000, 330_000, 500), rng.uniform(2.45e6, 2.78e6, 500)])


@pytest.mark.parametrize("source", CODES)
def test_batch_conversion_equals_pyproj_to_the_millimetre(base, sample_points, source):
    points = reference(sample_points, source)
    for target in CODES:
        if target == source:
            continue
        want = ref_convert(points, source, target)
        out = run(
            base,
            "coordinate-conversion",
            {"points": points.tolist(), "source_crs": source, "target_crs": target},
        )
        assert out["crs"] == target
        close_mm(np.asarray(out["points"]), want, target)


def test_single_point_twd67_goes_through_epsg_15487(base):
    t = pyproj.Transformer.from_crs("EPSG:3828", "EPSG:3826", always_xy=True)
    want = t.transform(217000.0, 2671000.0)
    out = run(
        base,
        "coordinate-conversion",
        {"points": [217000, 2671000], "source_crs": "3828", "target_crs": "EPSG:3826"},
    )
    assert np.allclose(out["points"], want, atol=1e-3, rtol=0)
    assert "TWD67 / TM2 zone 121 to TWD97 / TM2 zone 121" in out["operation"]
    # 830 m is what the ballpark operation would lose: the answer moved by the datum shift
    assert abs(out["points"][0] - 217000 - 828.589) < 1e-3


def test_crs84_and_ogc_uris_are_accepted(base):
    out = run(
        base,
        "coordinate-conversion",
        {
            "points": [120.68, 24.15],
            "source_crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
            "target_crs": "http://www.opengis.net/def/crs/EPSG/0/3826",
        },
    )
    assert np.allclose(out["points"], TAIWAN.transform(120.68, 24.15), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"points": [1, 2], "source_crs": "EPSG:3827", "target_crs": "EPSG:3826"}, "EPSG:3827"),
        ({"points": [1, 2], "source_crs": "EPSG:2000", "target_crs": "EPSG:3826"}, "supported"),
        ({"points": [1, "a"], "source_crs": "EPSG:3826", "target_crs": "EPSG:4326"}, "pair"),
        (
            {"points": [[1, 2]] * 10_001, "source_crs": "EPSG:3826", "target_crs": "EPSG:4326"},
            "10000",
        ),
        ({"points": [1, 2], "target_crs": "EPSG:4326"}, "source_crs"),
        (
            {"points": [1, 2], "source_crs": "EPSG:3826", "target_crs": "EPSG:4326", "x": 1},
            "unknown",
        ),
    ],
)
def test_bad_conversion_input_is_a_400_with_a_message(base, inputs, message):
    status, _, body = post(base, "coordinate-conversion", inputs)
    assert status == 400
    assert message in json.loads(body)["description"]


# -- district lookup -----------------------------------------------------------------------


def edge_points(path: Path, name_field: str, code_field: str, pairs: int = 6):
    """Points 1 m inside each side of shared edges: [(x, y, name, code)] in EPSG:3826."""
    _, geoms, fields = read(path)
    tm2 = to_tm2(geoms)
    tree = shapely.STRtree(tm2)
    out, seen = [], 0
    for i, poly in enumerate(tm2):
        for j in tree.query(poly, predicate="touches"):
            if j <= i:
                continue
            shared = shapely.intersection(poly.boundary, tm2[j].boundary)
            lines = [p for p in shapely.get_parts(shapely.line_merge(shared)) if p.length > 20]
            if not lines:
                continue
            a, b = np.asarray(lines[0].coords[:2])
            mid, d = (a + b) / 2, (b - a) / np.linalg.norm(b - a)
            normal = np.array([-d[1], d[0]])
            for side in (1.0, -1.0):
                p = mid + side * normal
                k = i if poly.contains(shapely.Point(p)) else j
                assert tm2[k].contains(shapely.Point(p))
                out.append((p[0], p[1], str(fields[name_field][k]), str(fields[code_field][k])))
            seen += 1
            break
        if seen >= pairs:
            break
    assert seen == pairs
    return out


def test_district_lookup_is_right_one_metre_either_side_of_district_edges(base, stores):
    for x, y, name, code in edge_points(stores["taichung-districts"], "TOWNNAME", "TOWNCODE"):
        out = run(base, "district-lookup", {"point": [x, y], "crs": "EPSG:3826"})
        assert out["town"]["name"] == name and out["town"]["code"] == code
        assert out["county"]["name"] == "臺中市"


def test_district_lookup_is_right_one_metre_either_side_of_village_edges(base, stores):
    for x, y, name, code in edge_points(stores["taichung-villages"], "VILLNAME", "VILLCODE"):
        out = run(base, "district-lookup", {"point": [x, y], "crs": "EPSG:3826"})
        assert out["village"]["name"] == name and out["village"]["code"] == code
        assert out["village"]["code"].startswith(out["town"]["code"])


def test_district_lookup_in_lonlat_and_twd67(base, stores):
    _, geoms, fields = read(stores["taichung-districts"])
    inner = shapely.point_on_surface(geoms[3])
    out = run(base, "district-lookup", {"point": [inner.x, inner.y]})
    assert out["town"]["name"] == fields["TOWNNAME"][3]
    x, y = TAIWAN.transform(inner.x, inner.y)
    x67, y67 = pyproj.Transformer.from_crs("EPSG:3826", "EPSG:3828", always_xy=True).transform(x, y)
    out = run(base, "district-lookup", {"point": [x67, y67], "crs": "EPSG:3828"})
    assert out["town"]["name"] == fields["TOWNNAME"][3]


def test_point_outside_every_boundary_is_found_false(base):
    out = run(base, "district-lookup", {"point": [119.5, 23.5]})
    assert out["found"] is False and out["town"] is None


# -- spatial query -------------------------------------------------------------------------


def test_features_within_a_distance_match_a_pyproj_reference(base, stores):
    fids, geoms, fields = read(stores["aed-locations"])
    centre = (120.675, 24.15)
    cx, cy = TAIWAN.transform(*centre)
    dist = shapely.distance(to_tm2(geoms), shapely.Point(cx, cy))
    want = [int(f) for f in fids[np.argsort(dist, kind="stable")] if dist[fids == f][0] <= 2000]
    out = run(
        base, "spatial-query", {"layer": "aed-locations", "point": list(centre), "distance": 2000}
    )
    assert out["numberMatched"] == len(want) > 0
    assert [f["id"] for f in out["features"]] == want
    first = out["features"][0]
    k = int(np.flatnonzero(fids == first["id"])[0])
    assert first["properties"]["名稱"] == fields["名稱"][k]
    assert abs(first["distance"] - dist[k]) < 0.01


def test_features_intersecting_a_polygon_in_tm2(base, stores):
    fids, geoms, _ = read(stores["buildings"])
    x0, y0 = TAIWAN.transform(120.66, 24.14)
    box = shapely.box(x0, y0, x0 + 1500, y0 + 1500)
    want = sorted(int(f) for f, g in zip(fids, to_tm2(geoms), strict=True) if g.intersects(box))
    out = run(
        base,
        "spatial-query",
        {
            "layer": "buildings",
            "geometry": shapely.geometry.mapping(box),
            "crs": "EPSG:3826",
            "limit": 10000,
        },
    )
    assert sorted(f["id"] for f in out["features"]) == want
    assert out["numberMatched"] == len(want)


def test_limit_caps_the_answer(base):
    out = run(
        base,
        "spatial-query",
        {"layer": "door-plates", "point": [120.68, 24.15], "distance": 5000, "limit": 3},
    )
    assert out["numberReturned"] == 3 < out["numberMatched"]
    distances = [f["distance"] for f in out["features"]]
    assert distances == sorted(distances)


# -- address lookup and reverse ------------------------------------------------------------

WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
CN = {"1段": "一段", "2段": "二段", "3段": "三段"}


@pytest.fixture(scope="module")
def plates(stores):
    return read(stores["door-plates"])


def _plate_rows(fields, n=6):
    """Rows with a lane and alley, and rows with a section, for variety."""
    lanes = np.flatnonzero([bool(v) for v in fields["弄"]])[:n]
    sections = np.flatnonzero(["段" in s for s in fields["街路段"]])[:n]
    return [int(i) for i in np.r_[lanes, sections]]


def _variants(fields, i):
    town, village = fields["鄉鎮市區"][i], fields["村里"][i]
    street, lane, alley, number = (fields[k][i] or "" for k in ("街路段", "巷", "弄", "號"))
    tail = (f"{lane}巷" if lane else "") + (f"{alley}弄" if alley else "") + f"{number}號"
    arabic = street
    for digit, chinese in CN.items():
        arabic = arabic.replace(chinese, digit)
    return [
        fields["完整地址"][i],
        f"台中市{town}{village}{arabic}{tail}",
        f"臺中{town[:-1] if len(town) > 2 else town}{arabic}{tail}".translate(WIDE),
        f"{town}{street}{tail}".translate(WIDE),
    ]


def test_address_variants_find_the_door_plate(base, plates):
    fids, geoms, fields = plates
    for i in _plate_rows(fields):
        for address in _variants(fields, i):
            out = run(base, "address-lookup", {"address": address})
            best = out["candidates"][0]
            assert best["id"] == int(fids[i]), address
            assert best["score"] == 1.0 and best["match"] == "exact"
            assert best["point"] == pytest.approx([geoms[i].x, geoms[i].y], abs=1e-9)


def test_missing_number_gives_the_nearest_number_with_a_lower_score(base, plates):
    fids, _, fields = plates
    i = _plate_rows(fields)[0]
    lane, alley = fields["巷"][i], fields["弄"][i]
    street = fields["街路段"][i]
    same = [
        k
        for k in range(len(fids))
        if (fields["街路段"][k], fields["巷"][k], fields["弄"][k]) == (street, lane, alley)
    ]
    top = max(same, key=lambda k: int(fields["號"][k]))
    address = f"{fields['鄉鎮市區'][top]}{street}{lane}巷{alley}弄{int(fields['號'][top]) + 1}號"
    out = run(base, "address-lookup", {"address": address})
    best = out["candidates"][0]
    assert best["id"] == int(fids[top])
    assert best["match"] == "nearest-number" and 0 < best["score"] < 1


def test_reverse_finds_the_nearest_door_plate_with_its_distance(base, plates):
    fids, geoms, _ = plates
    tm2 = to_tm2(geoms[[g is not None for g in geoms]])
    tree = shapely.STRtree(tm2)
    for i in range(0, len(tm2), 97):
        nearest = tree.query(tm2[i], predicate="dwithin", distance=20)
        if len(nearest) == 1:
            break
    x, y = tm2[i].x + 3.0, tm2[i].y
    lon, lat = TO_LONLAT.transform(x, y)
    out = run(base, "address-reverse", {"point": [lon, lat]})
    (best,) = out["candidates"]
    valid = fids[[g is not None for g in geoms]]
    assert best["id"] == int(valid[i])
    assert abs(best["distance"] - 3.0) < 0.01
    out = run(
        base,
        "address-reverse",
        {"point": [x, y], "crs": "EPSG:3826", "limit": 5, "max_distance": 500},
    )
    distances = [c["distance"] for c in out["candidates"]]
    assert distances == sorted(distances) and len(distances) > 1


# -- extract -------------------------------------------------------------------------------


def _busiest_district(stores) -> tuple[str, shapely.Geometry]:
    """The district holding the most AED locations (name, polygon)."""
    _, areas, fields = read(stores["taichung-districts"])
    _, points, _ = read(stores["aed-locations"])
    counts = [int(np.sum(shapely.covers(a, points))) for a in areas]
    k = int(np.argmax(counts))
    return str(fields["TOWNNAME"][k]), areas[k]


def test_extract_by_district_as_gpkg_zip(base, stores, tmp_path):
    name, area = _busiest_district(stores)
    status, headers, body = post(
        base,
        "extract",
        {"layers": ["aed-locations", "road-centerlines"], "district": name, "format": "gpkg"},
    )
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path)
    _, geoms, _ = read(stores["aed-locations"])
    want = int(np.sum(shapely.covers(area, geoms)))
    got = pyogrio.read_info(tmp_path / "aed-locations.gpkg")["features"]
    assert got == want > 0
    _, lines, _ = read(stores["road-centerlines"])
    _, _, wkb, _ = pyogrio.raw.read(tmp_path / "road-centerlines.gpkg")
    clipped = shapely.from_wkb(wkb)
    assert len(clipped) == int(
        np.sum(shapely.intersects(area, lines) & ~shapely.touches(area, lines))
    )
    # cut at the edge: nothing sticks out of the district (1e-7° ≈ 1 cm)
    assert shapely.covers(area.buffer(1e-7), clipped).all()


def test_extract_polygon_as_geojson(base, stores):
    x0, y0 = TAIWAN.transform(120.66, 24.14)
    box = shapely.box(x0, y0, x0 + 2000, y0 + 2000)
    status, headers, body = post(
        base,
        "extract",
        {"layers": "buildings", "geometry": shapely.geometry.mapping(box), "crs": "EPSG:3826"},
    )
    assert status == 200, body[:300]
    assert headers["Content-Type"].startswith("application/geo+json")
    doc = json.loads(body)
    _, geoms, _ = read(stores["buildings"])
    want = int(
        np.sum(shapely.intersects(to_tm2(geoms), box) & ~shapely.touches(to_tm2(geoms), box))
    )
    assert len(doc["features"]) == want > 0


def _finished(base: str, location: str) -> dict:
    """Poll a job's status document until it is no longer accepted or running."""
    deadline = time.monotonic() + 300
    while True:
        status, _, body = request(location + "?f=json")
        assert status == 200, body[:300]
        job = json.loads(body)
        if job["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_extract_runs_as_a_job_when_asked_to_respond_async(base, stores, tmp_path):
    name, area = _busiest_district(stores)
    inputs = {"layers": ["aed-locations"], "district": name, "format": "gpkg"}
    status, headers, body = post(base, "extract", inputs, Prefer="respond-async")
    assert status == 201, body[:300]
    assert headers["Preference-Applied"] == "respond-async"
    location = headers["Location"]
    job_id = json.loads(body)["jobID"]
    assert location.endswith(f"/ogc/jobs/{job_id}")

    job = _finished(base, location)
    assert job["status"] == "successful", job
    status, headers, result = request(f"{location}/results")
    assert status == 200
    assert headers["Content-Type"] == "application/geopackage+sqlite3"
    (tmp_path / "out.gpkg").write_bytes(result)
    _, points, _ = read(stores["aed-locations"])
    assert pyogrio.read_info(tmp_path / "out.gpkg")["features"] == int(
        np.sum(shapely.covers(area, points))
    )
    assert job_id in _jobs(base)

    status, _, _ = request(location, method="DELETE")
    assert status == 200
    assert request(location + "?f=json")[0] == 404


def test_a_failing_job_reports_failed_and_synchronous_calls_leave_no_job(base):
    status, headers, body = post(
        base, "extract", {"layers": "buildings", "district": "不存在區"}, Prefer="respond-async"
    )
    assert status == 201, body[:300]
    job = _finished(base, headers["Location"])
    assert job["status"] == "failed"
    assert "不存在區" in job["message"]
    assert request(headers["Location"] + "/results")[0] == 400

    before = _jobs(base)
    status, headers, _ = post(base, "coordinate-conversion", CONVERSION_INPUTS)
    assert status == 200
    assert "Location" not in headers
    assert _jobs(base) == before


def _jobs(base: str) -> list[str]:
    return [
        j["jobID"] for j in json.loads(request(f"{base}/ogc/jobs?f=json&limit=1000")[2])["jobs"]
    ]


CONVERSION_INPUTS = {
    "points": [[120.68, 24.15]],
    "source_crs": "EPSG:4326",
    "target_crs": "EPSG:3826",
}


@pytest.mark.parametrize(
    ("process", "inputs", "message"),
    [
        ("extract", {"layers": "nope", "district": "西區"}, "not published"),
        ("extract", {"layers": "buildings", "district": "不存在區"}, "district"),
        ("extract", {"layers": "buildings", "district": "西區", "format": "dxf"}, "format"),
        ("extract", {"layers": "buildings"}, "exactly one"),
        ("extract", {"layers": "buildings", "geometry": {"type": "Point"}}, "GeoJSON"),
        (
            "spatial-query",
            {"layer": "buildings", "point": [120.6, 24.1], "distance": -1},
            "between",
        ),
        ("spatial-query", {"layer": "dem-20m", "point": [120.6, 24.1]}, "not a published"),
        ("spatial-query", {"layer": "buildings"}, "exactly one"),
        ("district-lookup", {"point": "120,24"}, "point"),
        ("district-lookup", {"point": [120.6, 24.1], "crs": "EPSG:3827"}, "EPSG:3827"),
        ("address-lookup", {"address": "臺中市"}, "door number"),
        ("address-lookup", {"address": ""}, "address"),
        ("address-reverse", {"point": [120.6, 24.1], "limit": 0}, "limit"),
    ],
)
def test_bad_inputs_are_400_with_a_clear_message(base, process, inputs, message):
    status, _, body = post(base, process, inputs)
    assert status == 400, body[:300]
    assert message in json.loads(body)["description"]


def test_missing_inputs_and_unknown_process(base):
    status, _, _ = post(base, "no-such-process", {"a": 1})
    assert status == 404
    req = urllib.request.Request(
        f"{base}/ogc/processes/district-lookup/execution", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=60)
    assert err.value.code == 400
