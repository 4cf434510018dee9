"""Every layer of the sample corpus read the way ingest reads it, checked against the truth.

expected.json (written by `geoportal sample`) holds, for every layer, the real CRS, counts,
bounding box and exact attribute values; ingest must find them without being told.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
import yaml

from ingest.errors import SourceRefused
from ingest.pipeline import read_source

SKIP_FORMATS: set[str] = set()


def _entries(corpus) -> dict[str, dict]:
    doc = yaml.safe_load((corpus / "layers.yaml").read_text(encoding="utf-8"))
    return {e["id"]: e for e in doc["layers"]}


def _read_entry(corpus, entry: dict, work):
    return read_source(
        corpus / entry["source"],
        layer=entry.get("layer"),
        crs=entry.get("crs"),
        encoding=entry.get("encoding"),
        x=entry.get("x"),
        y=entry.get("y"),
        work=work / entry["id"],
    )


@pytest.fixture(scope="module")
def ingested(small_corpus, expected, tmp_path_factory):
    """{layer id: NormalizedLayer or SourceRefused} for every layer of the small corpus."""
    entries = _entries(small_corpus)
    work = tmp_path_factory.mktemp("read")
    out = {}
    for e in expected["entries"]:
        try:
            layers = _read_entry(small_corpus, entries[e["id"]], work)
        except SourceRefused as err:
            for lid in e["yields"]:
                out[lid] = err
            continue
        assert len(layers) == len(e["yields"]), e["id"]
        out.update(zip(e["yields"], layers, strict=True))
    return out


def _same(got, want) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    if isinstance(got, date):
        got = got.isoformat()
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-6)
    if hasattr(got, "item"):
        got = got.item()
    return got == want


def test_refused_layers_are_refused_with_their_reason(expected, ingested):
    for lid, truth in expected["layers"].items():
        if truth.get("outcome") == "refused":
            got = ingested[lid]
            assert isinstance(got, SourceRefused), lid
            assert got.reason == truth["reason"]


def test_crs_is_decided_right_without_being_told(expected, ingested):
    wrong = []
    for lid, truth in expected["layers"].items():
        got = ingested[lid]
        if isinstance(got, SourceRefused):
            continue
        if got.source_crs != truth["crs"]:
            wrong.append(f"{lid}: {got.source_crs} ({got.decision('crs')}), truth {truth['crs']}")
    assert not wrong, "\n".join(wrong)


def test_positions_counts_and_nulls(expected, ingested):
    wrong = []
    for lid, truth in expected["layers"].items():
        got = ingested[lid]
        if isinstance(got, SourceRefused) or truth["kind"] != "vector":
            continue
        nulls = truth.get("null_geometries", 0)
        if (
            got.features_in != truth["feature_count"]
            or got.features_out != truth["feature_count"] - nulls
        ):
            wrong.append(
                f"{lid}: in/out {got.features_in}/{got.features_out}, truth "
                f"{truth['feature_count']} with {nulls} null"
            )
        bounds = list(got.frame.total_bounds)
        # TWD67 goes through a 7 m transformation; everything else within centimetres.
        tol = 1e-4 if truth["crs"] == "EPSG:3828" else 2e-6
        if any(abs(a - b) > tol for a, b in zip(bounds, truth["bbox"], strict=True)):
            wrong.append(f"{lid}: bbox {bounds} != {truth['bbox']}")
    assert not wrong, "\n".join(wrong)


def test_text_is_decoded_exactly_and_values_typed(expected, ingested):
    wrong = []
    for lid, truth in expected["layers"].items():
        got = ingested[lid]
        if isinstance(got, SourceRefused) or truth["kind"] != "vector":
            continue
        frame = got.frame
        for s in truth["samples"]:
            if "geometry" in s:
                continue  # a record without geometry: dropped, and counted elsewhere
            ((key, value),) = s["where"].items()
            rows = frame[frame[key].astype(str) == str(value)] if key in frame else []
            if len(rows) != 1:
                wrong.append(f"{lid}: {len(rows)} rows with {key}={value}")
                continue
            row = rows.iloc[0]
            for col, want in s["attributes"].items():
                if col not in frame.columns or not _same(row[col], want):
                    wrong.append(f"{lid}/{value}: {col}={row.get(col)!r}, truth {want!r}")
            for col, text in s.get("raw", {}).items():
                raw_col = f"{col}_raw"
                if raw_col in frame.columns and row[raw_col] != text:
                    wrong.append(f"{lid}/{value}: {raw_col}={row[raw_col]!r}, truth {text!r}")
    assert not wrong, "\n".join(wrong[:40])


def test_encoding_decisions(expected, ingested):
    wrong = []
    for lid, truth in expected["layers"].items():
        got = ingested[lid]
        if isinstance(got, SourceRefused) or "encoding" not in truth:
            continue
        decision = got.decision("encoding")
        if decision is None or decision.value != truth["encoding"]:
            wrong.append(f"{lid}: {decision}, truth {truth['encoding']}")
    assert not wrong, "\n".join(wrong)


def test_every_repair_is_reported(expected, ingested):
    checks = {
        "utf8-cut-at-field-width": "utf8-cut",
        "big5-vendor-chars": "vendor-char-hkscs",
        "invalid-geometry": "make-valid",
        "null-geometry": "drop-null-geometry",
        "unclosed-rings": "close-ring",
    }
    missing = []
    for mess, repair in checks.items():
        for lid in expected["mess_classes"][mess]["layers"]:
            got = ingested[lid]
            if isinstance(got, SourceRefused) or got.repair(repair) is None:
                missing.append(f"{lid}: no {repair} repair for {mess}")
    assert not missing, "\n".join(missing)


def test_rasters_become_cogs_in_the_right_crs(expected, ingested):
    import rasterio

    for lid, truth in expected["layers"].items():
        if truth["kind"] != "raster":
            continue
        got = ingested[lid]
        assert got.kind == "raster" and got.source_crs == truth["crs"], lid
        with rasterio.open(got.raster_path) as ds:
            assert ds.crs.to_epsg() == int(truth["crs"].split(":")[1])
            assert (ds.width, ds.height) == (truth["raster"]["width"], truth["raster"]["height"])
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            if max(ds.width, ds.height) > 512:
                assert ds.overviews(1), "a COG larger than a block has internal overviews"
            if ds.dtypes[0].startswith("float"):
                assert ds.nodata == -9999
                data = ds.read(1)
                assert (data == -9999).any() and data[data != -9999].min() > -1000
