"""`geoportal check`: the quality labels (標章) of the portal's datasets.

Checks datasets on data.gov.tw's three axes (:mod:`portal.ckan.quality`), stores the result on
each dataset as extras (``quality_obtainable``, ``quality_processable``,
``quality_understandable``, ``quality_label``, ``quality_checked``, ``quality_findings``), and
reports per dataset; it exits 1 when any checked dataset fails an axis, naming the dataset,
the axis and the finding.

Wired into the CLI by ``app.command("check")(check)`` in :mod:`geoportal.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from geoportal.options import err, progress
from geoportal.settings import Settings, load_settings

if TYPE_CHECKING:
    from portal.ckan.model import Dataset
    from portal.ckan.quality import Fetcher, FetchPolicy, QualityReport

EXIT_FAILED = 1

out = Console(highlight=False, soft_wrap=True)


def check(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="DATASET", help="Dataset names or ids (default: all)."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Check this running server (e.g. http://127.0.0.1:8000); default: the "
            "portal's own URLs are answered in-process.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Datasets checked at once.")] = 8,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds allowed per request (connect, read, total).")
    ] = 20.0,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="An origin (http://10.0.0.5:8080) that may be on a private address; repeatable.",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", envvar="GEOPORTAL_HOME", help="Data home (default ./geoportal-home)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
) -> None:
    """Check datasets' quality labels (可取得性, 可處理性, 可理解性) and store them."""
    from catalog.errors import CatalogError
    from portal.ckan.errors import CkanError
    from portal.ckan.quality import FetchPolicy

    settings = load_settings(home=home)
    try:
        policy = FetchPolicy(timeout=timeout, trusted_origins=_trusted(allow or []))
        reports = _run(settings, names or [], base_url, policy, jobs, as_json)
    except (LookupError, ValueError, CatalogError, CkanError) as e:
        _fail(str(e), as_json)
    failed = [r for r in reports if not r.passed]
    if as_json:
        print(json.dumps(_summary(reports), ensure_ascii=False))
    else:
        _print(reports)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _trusted(origins: Sequence[str]) -> frozenset[str]:
    """The ``--allow-origin`` values as origins.

    Raises:
        ValueError: a value is not an http(s) URL with a host.
    """
    from urllib.parse import urlsplit

    from portal.ckan.quality import origin

    for value in origins:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--allow-origin {value!r} is not an origin like http://10.0.0.5:8080")
    return frozenset(origin(v) for v in origins)


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(
            json.dumps(
                {"command": "check", "status": "failed", "error": message}, ensure_ascii=False
            )
        )
    err.print(f"geoportal check: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILED)


def _run(
    settings: Settings,
    names: Sequence[str],
    base_url: str | None,
    policy: FetchPolicy,
    jobs: int,
    as_json: bool,
) -> list[QualityReport]:
    """Sync the layer datasets, check the chosen datasets, store the results."""
    from catalog.db import Catalog
    from catalog.view import CatalogView
    from portal.ckan.quality import check_datasets, with_quality
    from portal.ckan.store import PortalStore

    with Catalog.open(settings.home, settings.catalog_url) as catalog:
        snapshot = CatalogView(catalog).snapshot()
    store = PortalStore.open(settings.home, settings.catalog_url)
    try:
        store.sync_layers(snapshot)  # every published layer has its current dataset
        datasets = _chosen(store.datasets(include_private=True), names)
        columns = {
            lid: [f.name for f in version.fields] for lid, version in snapshot.versions.items()
        }
        fetcher = _fetcher(settings, base_url, policy, datasets)
        with progress(as_json) as bar:
            task = bar.add_task("check", total=len(datasets), current="")
            reports = check_datasets(
                datasets,
                fetcher,
                columns_of=columns.get,
                jobs=jobs,
                progress=lambda name: bar.update(task, advance=1, current=name),
            )
        for report in reports:  # re-read: the dataset may have been edited meanwhile
            store.put_dataset(with_quality(store.dataset(report.dataset_id), report), touch=False)
    finally:
        store.close()
    return reports


def _chosen(datasets: list[Dataset], names: Sequence[str]) -> list[Dataset]:
    """The datasets named (by name or id), in the order given; all when none are named.

    Raises:
        LookupError: a name matches no active dataset.
    """
    if not names:
        return datasets
    by_key = {d.name: d for d in datasets} | {d.id: d for d in datasets}
    unknown = [n for n in names if n not in by_key]
    if unknown:
        raise LookupError(f"no such dataset: {', '.join(unknown)}")
    return list({by_key[n].id: by_key[n] for n in names}.values())


def _fetcher(
    settings: Settings, base_url: str | None, policy: FetchPolicy, datasets: list[Dataset]
) -> Fetcher:
    """A fetcher against ``base_url``, or answering the portal's own URLs in-process."""
    from portal.ckan.quality import AppTransport, Fetcher

    if base_url:
        return Fetcher(policy, base_url=base_url)
    relative = any(
        not r.url.lower().startswith(("http:", "https:")) for d in datasets for r in d.resources
    )
    if not relative:
        return Fetcher(policy)
    from geoportal.app import create_app

    app = create_app(settings)
    return Fetcher(policy, app=AppTransport(app, f"http://{settings.host}:{settings.port}"))


def _summary(reports: list[QualityReport]) -> dict:
    failed = [r for r in reports if not r.passed]
    return {
        "command": "check",
        "status": "failed" if failed else "ok",
        "checked": len(reports),
        "passed": len(reports) - len(failed),
        "failed": len(failed),
        "datasets": [r.to_dict() for r in reports],
    }


def _print(reports: list[QualityReport]) -> None:
    from portal.ckan.quality import AXIS_NAMES

    table = Table(title="資料集品質檢測 Dataset quality check")
    table.add_column("資料集 dataset", overflow="fold")
    for zh, en in AXIS_NAMES.values():
        table.add_column(f"{zh} {en}", justify="center")
    table.add_column("標章 label", overflow="fold")
    for r in reports:
        marks = ["✓ pass" if a.passed else "✗ fail" for a in r.axes]
        table.add_row(r.dataset_name, *marks, r.label)
    out.print(table)
    for r in reports:
        for axis in r.axes:
            for f in axis.findings:
                if f.fails:
                    zh, en = AXIS_NAMES[f.axis]
                    where = f" [{f.resource}]" if f.resource else ""
                    out.print(f"{r.dataset_name}: {zh} {en}{where}: {f.zh} / {f.en}", markup=False)
    passed = sum(r.passed for r in reports)
    out.print(
        f"{passed} of {len(reports)} datasets meet all three axes. {passed}/{len(reports)} 符合。"
    )
