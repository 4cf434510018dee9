"""The `geoportal` command line.

Every command takes ``--home`` (or ``GEOPORTAL_HOME``) and ``--json``; it exits non-zero on
failure (1; 2 for a command line typer cannot parse).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from geoportal import __version__
from geoportal.check import check
from geoportal.options import HomeOpt, JobsOpt, JsonOpt, err, progress
from geoportal.settings import Settings, load_settings
from geoportal.users import user_app

app = typer.Typer(
    name="geoportal",
    help="A city's map-service and open-data portal: ingest, catalog, tiles, WMS/WMTS, OGC API "
    "and a CKAN-compatible portal. 城市圖資服務與開放資料平臺。",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
tiles_app = typer.Typer(help="Build and manage tile archives. 圖磚。", no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")
app.add_typer(user_app, name="user")
app.command("check")(check)

# Exit codes: 0 ok, 1 the work failed (typer itself exits 2 on a bad command line).
EXIT_FAILED = 1


def _settings(home: Path | None) -> Settings:
    return load_settings(home=home)


def _fail(command: str, error: Exception) -> NoReturn:
    """Say what failed (the error names the input) and exit 1."""
    err.print(f"geoportal {command}: {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILED) from error


@app.callback(invoke_without_command=True)
def main_callback(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Geoportal: every command takes --home DIR and --json."""
    if version:
        print(f"geoportal {__version__}")
        raise typer.Exit()


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the corpus to.")],
    scale: Annotated[str, typer.Option(help="small (~40 layers) or city (574 layers).")] = "small",
    layers: Annotated[int | None, typer.Option(help="Manifest entries (default: scale's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 20231,
    jobs: JobsOpt = 0,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic Taichung-like agency corpus with its layers.yaml and expected.json."""
    from geoportal.sample import SampleError, generate, plan

    settings = _settings(home)
    try:
        total = len(plan(scale, layers, seed))
        with progress(as_json) as bar:
            task = bar.add_task("sample", total=total, current="")
            result = generate(
                out,
                scale=scale,
                layers=layers,
                seed=seed,
                jobs=jobs or settings.jobs,
                progress=lambda tid: bar.update(task, advance=1, current=tid),
            )
    except SampleError as e:
        _fail("sample", e)
    summary = {
        "command": "sample",
        "status": "ok",
        "out": str(result.out),
        "scale": result.scale,
        "seed": result.seed,
        "entries": result.entries,
        "layers": result.layers,
        "files": result.files,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 2),
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"Wrote {result.entries} manifest entries ({result.layers} layers, "
            f"{result.files} files, {result.bytes / 1e6:.1f} MB) to {result.out} "
            f"in {result.seconds:.1f} s.\nManifest: {result.out / 'layers.yaml'}  "
            f"Truth: {result.out / 'expected.json'}"
        )


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Manifests, supply lists, folders, files.")],
    jobs: JobsOpt = 0,
    keep: Annotated[
        int | None, typer.Option(help="Versions kept per layer (default GEOPORTAL_KEEP_VERSIONS).")
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read agency layers into the catalog and print a per-layer report."""
    run = _ingest(_settings(home), sources, jobs, keep, as_json)
    if not run.ok:
        raise typer.Exit(EXIT_FAILED)


def _ingest(settings: Settings, sources: list[Path], jobs: int, keep: int | None, as_json: bool):
    """Run an ingest and print its report; returns the IngestRun.

    Layers come from every SOURCE that holds data; the rows of supply lists and catalog
    exports that name no data source, and data.gov.tw metadata records, become portal
    datasets (portal.ckan.imports), stored after the layers.
    """
    from catalog.db import Catalog
    from geoportal import report
    from ingest.errors import ManifestError
    from ingest.manifest import load_specs, slugify
    from ingest.pipeline import ingest as run_ingest
    from portal.ckan import imports
    from portal.ckan.errors import CkanError
    from portal.ckan.store import PortalStore

    layer_sources, catalog_sources = imports.split_sources(sources)
    try:
        loaded = load_specs(layer_sources)
        imported = imports.datasets_from_catalogs(catalog_sources) if catalog_sources else None
    except ManifestError as e:
        if as_json:
            print(
                json.dumps(
                    {"command": "ingest", "status": "failed", "error": str(e)}, ensure_ascii=False
                )
            )
        _fail("ingest", e)
    with Catalog.open(settings.home, settings.catalog_url) as catalog, progress(as_json) as bar:
        task = bar.add_task("ingest", total=len(loaded.specs), current="")
        run = run_ingest(
            loaded.specs,
            settings.home,
            catalog,
            jobs=jobs or settings.jobs,
            keep_versions=keep or settings.keep_versions,
            agency_slug=slugify,
            progress=lambda sid: bar.update(task, advance=1, current=sid),
        )
        layer_ids = [layer.id for layer in catalog.layers()]
    _sync_portal(settings)  # every published layer is a portal dataset
    stored = None
    if imported is not None:
        loaded = imports.without_imported(loaded, imported)
        store = PortalStore.open(settings.home, settings.catalog_url)
        try:
            stored = imports.record(store, imported, reserved=layer_ids)
        except CkanError as e:
            _fail("ingest", e)
        finally:
            store.close()
    if as_json:
        summary = report.ingest_json(run, loaded)
        if imported is not None and stored is not None:
            summary["datasets"] = imported.counts() | {
                "stored": stored.as_dict(),
                "warnings": imported.warnings,
            }
        print(json.dumps(summary, ensure_ascii=False))
    else:
        report.print_ingest(run, loaded)
        if imported is not None and stored is not None:
            for line in [*imported.warnings, *imported.report_lines(), stored.line()]:
                print(line)
    return run


@app.command()
def layers(
    query: Annotated[str | None, typer.Argument(help="Search text (Chinese or English).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many layers.")] = 1000,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List and search the catalog's layers."""
    from catalog.db import Catalog
    from geoportal import report

    settings = _settings(home)
    with Catalog.open(settings.home, settings.catalog_url) as catalog:
        hits = catalog.search(query or "", limit=limit)
        rows = [(h, catalog.current(h.layer.id)) for h in hits]
    if as_json:
        print(json.dumps(report.layers_json(rows), ensure_ascii=False))
    else:
        report.print_layers(rows, query)


@app.command()
def export(
    layer_id: Annotated[str, typer.Argument(metavar="ID", help="Layer id.")],
    fmt: Annotated[str, typer.Option("--format", help="geojson|csv|kml|gpkg|shp.zip|parquet")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a layer's current version in an open format."""
    from catalog.db import Catalog
    from catalog.errors import CatalogError
    from catalog.export import FORMATS, export_layer

    settings = _settings(home)
    try:
        with Catalog.open(settings.home, settings.catalog_url) as catalog:
            version = catalog.current(layer_id)
        if version is None:
            raise CatalogError(f"layer {layer_id!r} has no published version yet")
        if fmt not in FORMATS:
            raise CatalogError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        out = output or Path(f"{layer_id}{FORMATS[fmt].suffix}")
        written = export_layer(
            settings.home / version.path, version.kind, fmt, out, layer_id=layer_id
        )
    except CatalogError as e:
        _fail("export", e)
    summary = {
        "command": "export",
        "status": "ok",
        "id": layer_id,
        "version": version.version,
        "format": fmt,
        "path": str(written),
        "bytes": written.stat().st_size,
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"Wrote {layer_id} (version {version.version}) as {fmt} to {written}")


@tiles_app.command("build")
def tiles_build(
    layer_ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...")] = None,
    jobs: JobsOpt = 0,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """(Re)build the tiles of layers and tilesets whose version changed.

    Vector layers get vector tiles (MVT); raster layers and tilesets get pre-rendered raster
    tiles. IDs name layers or tilesets (a layer brings the tilesets it is in); none = all.
    """
    from catalog.db import Catalog
    from catalog.view import CatalogView
    from tiles.build import build_all, plan
    from tiles.errors import TileBuildError

    settings = _settings(home)
    with Catalog.open(settings.home, settings.catalog_url) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    try:
        items, tilesets = plan(snapshot, layer_ids or ())
    except TileBuildError as e:
        _fail("tiles build", e)
    with progress(as_json) as bar:
        task = bar.add_task("tiles", total=len(items) + len(tilesets), current="")
        results = build_all(
            settings.home,
            items,
            jobs=jobs or settings.jobs,
            progress=lambda lid: bar.update(task, advance=1, current=lid),
            tilesets=tilesets,
        )
    from tiles.tilecache import prune_tilecache

    prune_tilecache(settings.home, snapshot)  # tiles drawn for earlier versions and styles
    rows = [
        {
            "id": b.layer_id,
            "kind": b.kind,
            "version": b.version,
            "status": b.status,
            "path": str(b.path) if b.path else None,
            "bytes": b.size_bytes,
            "message": b.message,
        }
        | ({"tiles": b.tiles, "zooms": list(b.zooms)} if b.zooms else {})
        for b in results
    ]
    if as_json:
        print(json.dumps({"command": "tiles build", "layers": rows}, ensure_ascii=False))
    else:
        for r in rows:
            note = f" ({r['bytes'] / 1e6:.1f} MB)" if r["bytes"] else ""
            what = "tileset " if r["kind"] == "tileset" else ""
            message = f" — {r['message']}" if r["message"] else ""
            print(f"{what}{r['id']}: {r['status']}{note}{message}")
    if any(b.status == "failed" for b in results):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the portal, OGC APIs, WMS/WMTS and tiles from one ASGI app."""
    import os

    import uvicorn

    settings = load_settings(home=home, host=host, port=port, workers=workers)
    # Worker processes build their app from the environment: hand the settings over there.
    os.environ["GEOPORTAL_HOME"] = str(settings.home.resolve())
    if settings.catalog_url:
        os.environ["GEOPORTAL_CATALOG_URL"] = settings.catalog_url
    if as_json:
        print(json.dumps({"command": "serve", "url": f"http://{settings.host}:{settings.port}/"}))
    uvicorn.run(
        "geoportal.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",  # a line per tile request costs throughput
    )


@app.command()
def publish(
    ckan: Annotated[str, typer.Option("--ckan", help="CKAN base URL.")],
    api_key: Annotated[str, typer.Option("--api-key", envvar="CKAN_API_KEY", help="API token.")],
    org: Annotated[
        str | None,
        typer.Option("--org", help="Put every dataset into this existing organization."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="This portal's public URL (default: settings)."),
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push every public dataset (one per layer, and imported ones) to a CKAN with ckanapi."""
    from portal.ckan.publish import Publisher, PublishError, publishable, remote
    from portal.ckan.store import PortalStore

    settings = _settings(home)
    store = PortalStore.open(settings.home, settings.catalog_url)
    try:
        _sync_portal(settings)
        datasets = publishable(store.datasets(include_private=False))
        organizations = {o.name: o for o in store.organizations()}
    finally:
        store.close()
    publisher = Publisher(remote(ckan, api_key), base_url or settings.site_url, org)
    try:
        version = publisher.check()
    except PublishError as e:
        _fail("publish", e)
    with progress(as_json) as bar:
        task = bar.add_task(f"publish → {ckan} (CKAN {version})", total=len(datasets), current="")

        def advance(outcome) -> None:
            bar.update(task, advance=1, current=f"{outcome.name}: {outcome.status}")

        report = publisher.publish(datasets, organizations, advance)
    summary = report.summary()
    if as_json:
        print(json.dumps({"command": "publish", **summary}, ensure_ascii=False))
    else:
        print(
            f"{ckan}: {summary['datasets']} datasets — {summary['created']} created, "
            f"{summary['updated']} updated, {summary['unchanged']} unchanged, "
            f"{summary['failed']} failed; organizations created: "
            f"{', '.join(summary['organizations_created']) or 'none'}"
        )
        for failure in report.failed:
            err.print(f"  {failure.name}: {failure.message}", markup=False, highlight=False)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def _sync_portal(settings: Settings) -> int:
    """Bring the portal's layer datasets in line with the catalog; how many changed."""
    from portal.ckan.store import sync

    return sync(settings.home, settings.catalog_url)


@app.command()
def demo(
    scale: Annotated[str, typer.Option(help="Corpus scale: small or city.")] = "small",
    port: Annotated[int | None, typer.Option(help="Port to serve on.")] = None,
    seed: Annotated[int, typer.Option(help="Corpus seed.")] = 20231,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: sample → ingest → tiles → serve, in the data home."""
    settings = _settings(home)
    out = settings.sample_dir
    if (out / "expected.json").exists() and _same_corpus(out, scale, seed):
        print(f"[1/4] sample: reusing the {scale} corpus in {out}")
    else:
        print(f"[1/4] sample: writing the {scale} corpus to {out}")
        sample(
            out=out,
            scale=scale,
            layers=None,
            seed=seed,
            jobs=settings.jobs,
            home=home,
            as_json=as_json,
        )
    print("[2/4] ingest", flush=True)
    run = _ingest(settings, [out / "layers.yaml"], settings.jobs, None, as_json)
    refused = [r.id for r in run.reports if r.status == "refused"]
    print(
        f"[2/4] ingest: {sum(r.ok for r in run.reports)} layers in the catalog; refused as "
        f"the corpus intends: {', '.join(refused) or 'none'}",
        flush=True,
    )
    print("[3/4] tiles", flush=True)
    tiles_build(layer_ids=None, jobs=settings.jobs, home=home, as_json=as_json)
    print(
        f"[4/4] serve: http://{settings.host}:{port or settings.port}/ (Ctrl-C stops it)",
        flush=True,
    )
    serve(host=None, port=port, workers=None, home=home, as_json=False)


def _same_corpus(out: Path, scale: str, seed: int) -> bool:
    try:
        gen = json.loads((out / "expected.json").read_text(encoding="utf-8"))["generator"]
    except (OSError, ValueError, KeyError):
        return False
    return gen.get("scale") == scale and gen.get("seed") == seed


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
