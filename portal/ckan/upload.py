"""Agency uploads through the ingest pipeline: a spatial file posted to a dataset becomes a layer.

A file posted with ``resource_create`` / ``resource_update`` (multipart field ``upload``) is
first written to a staging folder and classified (:func:`classify`):

- **spatial** (shapefile zip, GeoJSON, TopoJSON, KML/KMZ, GeoPackage, GeoTIFF, a zip holding
  such files) and **tabular** (CSV/TSV/delimited text) files go through the same pipeline as
  ``geoportal ingest`` (:func:`ingest.pipeline.ingest`) and become a new version of the
  dataset's layer: the layer it presents, or — for a dataset that presents none — a new layer
  whose id is the dataset's name and whose metadata (title, agency, category, keywords,
  licence, update frequency, description) is the dataset's. A CSV without coordinate columns
  becomes a table layer (``datastore_search`` reads it);
- **spreadsheets** (.xlsx/.xls) are read the same way and become a layer when they hold
  coordinates; without coordinates they are kept as plain files;
- anything else (PDF, documents, supply lists, JSON that is not GeoJSON) is a plain file.

The pipeline's report (the same fields ``geoportal ingest --json`` prints) is returned to the
uploader and kept on the resource (extra ``ingest_report``). A file the pipeline refuses leaves
everything as it was — no resource, no version, the stored file of a replaced resource kept —
and the action answers 409 with the report's messages under ``upload``.

After a published version the dataset is synced at once (downloads, WMS, WMTS, OGC API,
TileJSON and PMTiles resources appear) and the layer's tiles are built in a background thread.
Uploads to one layer are serialised (a thread lock and a file lock per layer id, so worker
processes of one data home wait for each other too).
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import shutil
import threading
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from catalog.db import Catalog
from catalog.errors import LayerNotFound
from catalog.model import Layer
from catalog.view import CatalogView
from ingest.errors import SourceRefused
from ingest.manifest import LoadResult, canonical_encoding, is_supply_list, parse_crs, slugify
from ingest.model import LayerSpec
from ingest.pipeline import IngestRun, LayerReport, ingest, read_source
from ingest.sources import resolve, select
from portal.ckan.errors import ValidationError
from portal.ckan.model import Dataset, Organization, Resource

if TYPE_CHECKING:
    from portal.ckan.api import Portal

log = logging.getLogger("portal.ckan.upload")

#: Resource extra holding the ingest report (JSON) of an ingested upload.
REPORT_EXTRA = "ingest_report"

#: Resource fields (extras) read as ingest options, as a manifest entry's keys.
OPTION_KEYS = ("layer", "crs", "x", "y")

#: What an uploaded file is taken for (see :func:`classify`).
SPATIAL, TABULAR, SHEET, PLAIN = "spatial", "tabular", "sheet", "plain"

#: File suffixes of spatial formats (a zip is spatial when it holds one of these, or a CSV).
SPATIAL_SUFFIXES = (".shp", ".geojson", ".topojson", ".kml", ".kmz", ".gpkg", ".tif", ".tiff")
_TABULAR_SUFFIXES = (".csv", ".tsv", ".txt")
_SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_GEOJSON_TYPE = re.compile(
    r'"type"\s*:\s*"(FeatureCollection|Feature|Topology|GeometryCollection|Point|MultiPoint|'
    r'LineString|MultiLineString|Polygon|MultiPolygon)"'
)
_LAYER_ID = re.compile(r"[a-z0-9-]+")
_SNIFF = 65536

#: Staging and lock folders, under the data home.
_STAGING = ("tmp", "uploads")
_LOCKS = ("tmp", "locks")


@dataclass(frozen=True)
class UploadOutcome:
    """What became of an uploaded file.

    Attributes:
        resource: the resource as stored.
        report: the ingest report (``geoportal ingest --json``'s fields), or None for a plain
            file.
        layer_id: the layer the file became a version of, or None.
    """

    resource: Resource
    report: dict[str, Any] | None = None
    layer_id: str | None = None


# -- staging and classification ------------------------------------------------------------


def stage(home: Path, stream: BinaryIO, name: str) -> Path:
    """Write an uploaded stream to a new staging folder of its own.

    Args:
        home: the data home.
        stream: the uploaded file.
        name: the safe file name to store it under.

    Returns:
        The staged file (:func:`receive` removes its folder).
    """
    folder = home.joinpath(*_STAGING, uuid.uuid4().hex)
    folder.mkdir(parents=True)
    path = folder / name
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return path


def _head(path: Path) -> str:
    with path.open("rb") as f:
        return f.read(_SNIFF).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")


def _is_data_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    lower = name.lower()
    return lower.endswith((*SPATIAL_SUFFIXES, ".json", ".csv", ".tsv", ".zip"))


def _zip_kind(path: Path) -> str:
    if not zipfile.is_zipfile(path):
        return SPATIAL  # a broken zip (or a pointer file) posing as data: ingest refuses it
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return SPATIAL
    return SPATIAL if any(_is_data_member(n) for n in names) else PLAIN


def _delimited(path: Path) -> bool:
    lines = [x for x in _head(path).splitlines() if x.strip()][:2]
    return bool(lines) and any(
        lines[0].count(d) >= 1 and all(x.count(d) == lines[0].count(d) for x in lines)
        for d in ",\t|;"
    )


def classify(path: Path) -> str:
    """What an uploaded file is taken for, from its name and first bytes.

    Args:
        path: the staged file.

    Returns:
        :data:`SPATIAL` (ingested), :data:`TABULAR` (ingested: a layer with coordinates, a
        table without), :data:`SHEET` (a layer when it holds coordinates, else plain) or
        :data:`PLAIN` (kept as a file).
    """
    name = path.name.lower()
    if name.endswith(".zip"):
        return _zip_kind(path)
    if name.endswith(".json"):
        return SPATIAL if _GEOJSON_TYPE.search(_head(path)) else PLAIN
    if name.endswith(SPATIAL_SUFFIXES):
        return SPATIAL
    if name.endswith(_TABULAR_SUFFIXES):
        if name.endswith(".txt") and not _delimited(path):
            return PLAIN
        return PLAIN if is_supply_list(path) else TABULAR
    if name.endswith(_SHEET_SUFFIXES):
        return PLAIN if is_supply_list(path) else SHEET
    return PLAIN


# -- locks ---------------------------------------------------------------------------------

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def layer_lock(home: Path, layer_id: str) -> Iterator[None]:
    """Hold the upload lock of one layer (threads of this process and other processes).

    Args:
        home: the data home (the lock file lives under ``tmp/locks``).
        layer_id: the layer id (``[a-z0-9-]+``).

    Yields:
        None, while the lock is held.
    """
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault(layer_id, threading.Lock())
    folder = home.joinpath(*_LOCKS)
    folder.mkdir(parents=True, exist_ok=True)
    with lock, (folder / f"upload-{layer_id}.lock").open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- the layer an upload goes to -------------------------------------------------------------


def target_layer_id(dataset: Dataset) -> str:
    """The layer an upload to ``dataset`` makes a version of: its layer, or one named as it.

    Args:
        dataset: the dataset.

    Returns:
        The layer id.

    Raises:
        ValidationError: the dataset's name cannot be a layer id.
    """
    if dataset.layer_id:
        return dataset.layer_id
    if not _LAYER_ID.fullmatch(dataset.name):
        raise ValidationError(
            {
                "upload": [
                    f"資料集名稱 {dataset.name!r} 不能作為圖層代碼（只能用 a-z、0-9 與 -）。"
                    f"The dataset name {dataset.name!r} cannot be a layer id ([a-z0-9-]+): "
                    f"rename the dataset (package_patch name="
                    f"{dataset.name.replace('_', '-')}) and upload again"
                ]
            }
        )
    return dataset.name


def _existing_layer(catalog: Catalog, dataset: Dataset, layer_id: str) -> Layer | None:
    """The catalog layer the upload versions (None: a new one), refusing id conflicts."""
    try:
        layer = catalog.get_layer(layer_id)
    except LayerNotFound:
        return None
    if dataset.layer_id is None and catalog.current(layer_id) is not None:
        raise ValidationError(
            {
                "upload": [
                    f"目錄中已有圖層 {layer_id!r}，屬於另一筆資料集。The catalog already has a "
                    f"published layer {layer_id!r} (another dataset presents it): upload to "
                    "that dataset, or rename this one"
                ]
            }
        )
    return layer


def _options(resource: Resource) -> dict[str, str | None]:
    """Ingest options from the resource (``layer``, ``crs``, ``x``, ``y``, ``encoding``)."""
    extras = dict(resource.extras)
    out: dict[str, str | None] = {k: (extras.get(k) or "").strip() or None for k in OPTION_KEYS}
    if out["crs"]:
        try:
            out["crs"] = parse_crs(out["crs"])
        except ValueError as exc:
            raise ValidationError({"crs": [str(exc)]}) from None
    out["encoding"] = None
    if resource.encoding.strip():
        out["encoding"] = canonical_encoding(resource.encoding)
        if out["encoding"] is None:
            raise ValidationError({"encoding": [f"unknown encoding {resource.encoding!r}"]})
    return out


def _spec(
    layer_id: str,
    dataset: Dataset,
    layer: Layer | None,
    org: Organization,
    path: Path,
    options: dict[str, str | None],
) -> LayerSpec:
    """The layer spec of an upload: the layer's metadata, or (new layer) the dataset's."""
    common = {
        "id": layer_id,
        "source": path.name,
        "base": path.parent,
        "origin": f"upload {path.name} (dataset {dataset.name})",
        **options,
    }
    if layer is not None:
        return LayerSpec(
            title=layer.title,
            title_en=layer.title_en,
            agency=layer.agency.title,
            category=layer.category,
            update_frequency=layer.update_frequency,
            keywords=layer.keywords,
            description=layer.description,
            license=layer.license,
            style=layer.style,
            tileset=layer.tileset,
            **common,
        )
    return LayerSpec(
        title=dataset.title or dataset.name,
        title_en=dataset.title_en,
        agency=org.title,
        category=dataset.category,
        update_frequency=dataset.update_frequency,
        keywords=dataset.tags,
        description=dataset.notes,
        license=dataset.license_id,
        **common,
    )


# -- before the pipeline: one layer, and the right kind ------------------------------------


def _refusal(spec: LayerSpec, reason: str, message: str) -> LayerReport:
    return LayerReport(spec.id, "refused", spec.id, reason=reason, message=message)


def _one_unit(spec: LayerSpec, work: Path) -> LayerReport | None:
    """A refusal unless the source resolves to exactly one layer (``layer`` picks one)."""
    try:
        units = select(resolve(spec, work), spec)
    except SourceRefused as exc:
        return LayerReport.refused(spec.id, spec.id, exc)
    if len(units) == 1:
        return None
    names = ", ".join(u.name for u in units)
    return _refusal(
        spec,
        "several-layers",
        f"{spec.source}: 檔案含 {len(units)} 個圖層（{names}）；以資源欄位 layer 指定其一。"
        f"The file holds {len(units)} layers ({names}) and a dataset presents one: name it "
        "with the resource field layer=<name>",
    )


def _read_kind(spec: LayerSpec, work: Path) -> str | LayerReport:
    """Read the source as ingest does: its kind ("vector", "table", ...) or a refusal."""
    try:
        read = read_source(
            spec.base / spec.source,
            layer=spec.layer,
            crs=spec.crs,
            encoding=spec.encoding,
            x=spec.x,
            y=spec.y,
            work=work,
        )
    except SourceRefused as exc:
        return LayerReport.refused(spec.id, spec.id, exc)
    return read[0].kind


def precheck(
    spec: LayerSpec, kind: str, current_kind: str | None, work: Path
) -> LayerReport | str | None:
    """What must hold before the pipeline publishes anything.

    Args:
        spec: the upload's layer spec.
        kind: what :func:`classify` said.
        current_kind: the kind of the layer's current version, or None.
        work: a scratch folder.

    Returns:
        A refusal report; :data:`PLAIN` when the file is to be kept as a plain file (a
        spreadsheet without coordinates); None to go on.
    """
    refused = _one_unit(spec, work / "units")
    if refused is not None:
        return refused
    needs_read = kind == SHEET or (kind == TABULAR and current_kind not in (None, "table"))
    if not needs_read:
        return None
    read = _read_kind(spec, work / "read")
    if isinstance(read, LayerReport) or read != "table":
        return read if isinstance(read, LayerReport) else None
    if kind == SHEET:
        return PLAIN
    return _refusal(
        spec,
        "no-coordinates",
        f"{spec.source}: 找不到坐標欄位，而圖層 {spec.id} 是地圖圖層。No coordinate columns "
        f"found, and layer {spec.id!r} is a {current_kind} layer: name the columns with the "
        "resource fields x=<column> and y=<column>, or upload the table to a dataset of its own",
    )


# -- the upload ----------------------------------------------------------------------------


def _messages(reports: list[LayerReport]) -> list[str]:
    return [
        f"{r.status}" + (f" ({r.reason})" if r.reason else "") + f": {r.message}"
        for r in reports
        if not r.ok
    ] or ["the file was not ingested"]


def _refuse(reports: list[LayerReport]) -> ValidationError:
    return ValidationError({"upload": _messages(reports)})


def report_json(reports: list[LayerReport], spec: LayerSpec) -> dict[str, Any]:
    """The ingest report of an upload: what ``geoportal ingest --json`` prints.

    Args:
        reports: the pipeline's per-layer reports.
        spec: the upload's spec.

    Returns:
        ``command``, ``status``, ``layers`` (status, features in → out, CRS and encoding
        decisions, repairs, warnings per layer), ``skipped`` and ``warnings``.
    """
    from geoportal.report import ingest_json

    return ingest_json(IngestRun(reports), LoadResult(specs=[spec]))


def private_note() -> dict[str, Any]:
    """The report of a spatial file kept, not ingested, because its dataset is private.

    A layer's services and downloads are public; a private dataset's file is only readable by
    its organization, so it is not published.

    Returns:
        A report of ``geoportal ingest --json``'s shape, ``status`` "skipped", with the reason.
    """
    return {
        "command": "ingest",
        "status": "skipped",
        "layers": [],
        "skipped": [],
        "warnings": [
            "私有資料集：檔案僅保存（限本機關讀取），不發布為圖層。The dataset is private: the "
            "file is kept (readable by its organization only) and not published as a layer, "
            "whose services and downloads are public; make the dataset public and upload it "
            "again to publish it"
        ],
    }


def _place(staged: Path, home: Path, resource: Resource) -> None:
    """Move the staged file to the resource's upload folder (replacing an earlier file)."""
    from portal.ckan.actions.write import UPLOADS

    root = (home / UPLOADS).resolve()
    folder = (root / resource.id).resolve()
    if folder.parent != root:
        raise ValidationError({"id": [f"Resource id {resource.id!r} cannot name an upload folder"]})
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.move(staged, folder / staged.name)


def _keep(portal: Portal, resource: Resource, staged: Path) -> Resource:
    """Store a plain upload: the file in its folder, the resource as it is."""
    _place(staged, portal.home, resource)
    return portal.store.put_resource(resource)


def _with_report(resource: Resource, report: dict[str, Any]) -> Resource:
    extras = tuple(e for e in resource.extras if e[0] != REPORT_EXTRA)
    text = json.dumps(report, ensure_ascii=False, default=str)
    return replace(resource, extras=(*extras, (REPORT_EXTRA, text)))


@contextmanager
def _catalog(portal: Portal) -> Iterator[Catalog]:
    if portal.view is not None:
        yield portal.view.catalog
        return
    with Catalog(portal.store.engine.url) as catalog:
        yield catalog


def receive(portal: Portal, dataset: Dataset, resource: Resource, staged: Path) -> UploadOutcome:
    """Take an uploaded file: ingest it into the dataset's layer, or keep it as a file.

    Args:
        portal: the portal (store, data home, catalog view).
        dataset: the resource's dataset.
        resource: the resource (kind "upload", ``url`` its download path).
        staged: the staged file (its folder is removed in any case).

    Returns:
        The outcome: the stored resource, and the ingest report for ingested files.

    Raises:
        ValidationError: the file was refused (under ``upload``: the report's messages) or an
            option is invalid; nothing was changed.
    """
    try:
        kind = classify(staged)
        if kind == PLAIN:
            return UploadOutcome(_keep(portal, resource, staged))
        layer_id = target_layer_id(dataset)
        with layer_lock(portal.home, layer_id):
            return _ingest(portal, portal.store.dataset(dataset.id), resource, staged, kind)
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


def _ingest(
    portal: Portal, dataset: Dataset, resource: Resource, staged: Path, kind: str
) -> UploadOutcome:
    """Under the layer's lock: check, run the pipeline, store, sync, start the tiles."""
    if dataset.private and dataset.layer_id is None:
        note = private_note()
        return UploadOutcome(_keep(portal, _with_report(resource, note), staged), note)
    layer_id = target_layer_id(dataset)
    org = portal.store.organization(dataset.owner_org)
    with _catalog(portal) as catalog:
        layer = _existing_layer(catalog, dataset, layer_id)
        current = catalog.current(layer_id) if layer is not None else None
        spec = _spec(layer_id, dataset, layer, org, staged, _options(resource))
        checked = precheck(spec, kind, current.kind if current else None, staged.parent / "work")
        if checked == PLAIN:
            return UploadOutcome(_keep(portal, resource, staged))
        if isinstance(checked, LayerReport):
            raise _refuse([checked])
        with _claim(portal, layer_id, dataset.layer_id is None):
            run = _run_pipeline(portal, catalog, spec, org)
            if not run.ok:
                raise _refuse(run.reports)
        report = report_json(run.reports, spec)
        _place(staged, portal.home, resource)
        stored = portal.store.put_resource(_with_report(resource, report))
        _sync(portal, catalog)
    published = [r for r in run.reports if r.status == "published" and r.kind != "table"]
    if published:
        start_tiles(portal, layer_id)
    log.info("upload %s → layer %s: %s", staged.name, layer_id, report["status"])
    return UploadOutcome(stored, report, layer_id)


@contextmanager
def _claim(portal: Portal, layer_id: str, needed: bool) -> Iterator[None]:
    """Claim ``layer_id`` for the dataset while the pipeline runs; release it if that fails.

    A successful run leaves the claim to the sync that adopts the dataset.
    """
    if not needed:
        yield
        return
    portal.store.claim_layer(layer_id)
    try:
        yield
    except BaseException:
        portal.store.release_layer_claim(layer_id)
        raise


def _run_pipeline(
    portal: Portal, catalog: Catalog, spec: LayerSpec, org: Organization
) -> IngestRun:
    """`geoportal ingest` of one spec (in this thread), keeping the organization as it was."""
    from geoportal.settings import load_settings

    def agency_slug(title: str) -> str:
        return org.name if title == org.title else slugify(title)

    run = ingest(
        [spec],
        portal.home,
        catalog,
        jobs=1,
        keep_versions=load_settings(home=portal.home).keep_versions,
        agency_slug=agency_slug,
    )
    after = portal.store.organization(org.name)
    if (after.title, after.title_en) != (org.title, org.title_en):
        portal.store.put_organization(org)  # the pipeline writes agencies without title_en
    return run


def _sync(portal: Portal, catalog: Catalog) -> None:
    """Bring the layer datasets in line with the catalog now (not at the view's next check)."""
    if portal.view is not None:
        portal.view.refresh()
        portal.sync()
    else:
        portal.store.sync_layers(CatalogView(catalog).snapshot())
    portal.invalidate()


# -- tiles ---------------------------------------------------------------------------------


def build_tiles(home: Path, view: CatalogView, layer_id: str) -> None:
    """Build the tiles of one layer (and the tilesets it is drawn into), as ``tiles build``.

    Args:
        home: the data home.
        view: the catalog view.
        layer_id: the layer.
    """
    from tiles.build import build_all, plan

    items, tilesets = plan(view.refresh(), [layer_id])
    for built in build_all(home, items, jobs=1, tilesets=tilesets):
        level = logging.WARNING if built.status == "failed" else logging.INFO
        log.log(level, "tiles of %s: %s %s", built.layer_id, built.status, built.message)


def start_tiles(portal: Portal, layer_id: str) -> threading.Thread | None:
    """Build a layer's tiles in a background thread (TileJSON and PMTiles appear when done).

    Args:
        portal: the portal (data home, catalog view).
        layer_id: the layer.

    Returns:
        The thread, or None when the portal has no catalog view.
    """
    if portal.view is None:
        return None

    def run() -> None:
        try:
            with layer_lock(portal.home, f"tiles-{layer_id}"):
                build_tiles(portal.home, portal.view, layer_id)
        except Exception:  # a background thread: say what failed, never die silently
            log.exception("tiles of uploaded layer %s failed", layer_id)

    thread = threading.Thread(target=run, name=f"tiles-{layer_id}", daemon=True)
    thread.start()
    return thread
