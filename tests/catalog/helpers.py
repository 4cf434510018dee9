"""Records built in code for the catalog tests, and the reader process of the concurrency test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from catalog import (
    Agency,
    Catalog,
    Decision,
    FieldInfo,
    Layer,
    LayerVersion,
    Lineage,
    Repair,
)

T0 = datetime(2024, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)

TRANSPORT = Agency("transportation", "臺中市政府交通局", "Transportation Bureau")
PARKING_OFFICE = Agency("parking-office", "停車管理處", "Parking Management Office")
EDUCATION = Agency("education", "臺中市政府教育局", "Education Bureau")
CIVIL = Agency("civil-affairs", "臺中市政府民政局", "Civil Affairs Bureau")


def make_layer(layer_id: str, title: str, agency: Agency = TRANSPORT, **kw: Any) -> Layer:
    """A layer with the given metadata (everything else defaulted)."""
    return Layer(id=layer_id, title=title, agency=agency, **kw)


def make_version(
    layer_id: str,
    n: int,
    *,
    fields: tuple[FieldInfo, ...] = (FieldInfo("名稱", "string"),),
    **kw: Any,
) -> LayerVersion:
    """Version number ``n`` of a layer: created ``n`` hours after T0, a distinct hash."""
    values: dict[str, Any] = {
        "layer_id": layer_id,
        "version": f"{n:016x}",
        "created": T0 + timedelta(hours=n),
        "kind": "vector",
        "path": f"layers/{layer_id}/{n:016x}.parquet",
        "geometry_type": "Point",
        "feature_count": 10 * n,
        "bbox": (120.5, 24.0, 121.0, 24.4),
        "source_crs": "EPSG:3826",
        "fields": fields,
        "lineage": Lineage(
            source=f"sources/{layer_id}.csv", sublayer=None, source_hash="ab" * 32, reader="csv"
        ),
        "size_bytes": 1000 * n,
    }
    values.update(kw)
    return LayerVersion(**values)


def full_version(layer_id: str) -> LayerVersion:
    """A version with every field of LayerVersion set to something non-default."""
    return LayerVersion(
        layer_id=layer_id,
        version="0123456789abcdef",
        created=datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=UTC),
        kind="vector",
        path=f"layers/{layer_id}/0123456789abcdef.gpkg",
        geometry_type="MultiPolygon",
        feature_count=3_000_000_000,
        bbox=(120.4612345678901, 23.9987654321, 121.4509876543, 24.4412345678),
        source_crs="EPSG:3826",
        fields=(
            FieldInfo("門牌號碼", "string"),
            FieldInfo("面積", "decimal"),
            FieldInfo("建立日期", "date"),
            FieldInfo("建立日期_raw", "string", raw_of="建立日期"),
        ),
        lineage=Lineage(
            source="agency/建物.zip!建物/建物.shp",
            sublayer="建物",
            source_hash="f" * 64,
            reader="shapefile",
            decisions=(
                Decision("crs", "EPSG:3826", "prj-params", 0.8333333333333334, "TM2 parameters"),
                Decision("encoding", "cp950", "cpg"),
            ),
            repairs=(
                Repair("make-valid", 3, "self-intersections fixed", ("12", "40", "77")),
                Repair("vendor-char", 1),
            ),
            warnings=("2 records without geometry", "造字 U+E000 mapped"),
        ),
        size_bytes=2**40,
    )


def open_and_write(url: str, layer_id: str, out: Any) -> None:
    """Worker process: open the catalog (migrating it if need be), store a layer, report."""
    try:
        with Catalog(url) as catalog:
            catalog.upsert_layer(make_layer(layer_id, f"圖層 {layer_id}"))
            catalog.publish_version(make_version(layer_id, 1))
        out.put(("ok", layer_id))
    except BaseException as exc:  # report anything to the test process
        out.put(("error", f"{layer_id}: {type(exc).__name__}: {exc}"))


def read_while_writing(
    url: str, layer_id: str, final: str, ready: Any, done: Any, out: Any
) -> None:
    """Reader process: read the layer's current version until the writer is done.

    Reports to ``out`` (a queue) either ("ok", reads) or ("error", message). Every read must
    see a current version that exists and never goes backwards.
    """
    try:
        with Catalog(url) as catalog:
            ready.set()
            last, reads = "", 0
            while True:
                finished = done.is_set()
                current = catalog.current(layer_id)
                reads += 1
                if current is not None:
                    if current.version < last:
                        raise AssertionError(f"current went back from {last} to {current.version}")
                    if current != make_version(layer_id, int(current.version, 16)):
                        raise AssertionError(
                            f"current {current.version} differs from what was written"
                        )
                    last = current.version
                if finished:
                    if last != final:
                        raise AssertionError(f"writer done but current is {last}, not {final}")
                    break
        out.put(("ok", reads))
    except BaseException as exc:  # report anything to the test process
        out.put(("error", f"{type(exc).__name__}: {exc}"))
