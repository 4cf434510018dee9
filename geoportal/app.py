"""The one ASGI app (`geoportal serve`): every protocol mounted on one FastAPI application."""

from __future__ import annotations

import time

from fastapi import FastAPI

from catalog.db import Catalog
from geoportal import __version__
from geoportal.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the catalog is opened once per process."""
    from tiles.routes import router as tiles_router

    settings = settings or load_settings()
    app = FastAPI(title="geoportal", version=__version__, docs_url="/api/docs")
    app.state.settings = settings
    app.state.catalog = Catalog.open(settings.home, settings.catalog_url)
    cache: dict[str, object] = {"at": 0.0, "versions": {}}

    def current_versions() -> dict[str, str]:
        """Layer id → current version, re-read every few seconds, never once per request.

        Ingest may publish meanwhile; a new version is a new archive, picked up on refresh.
        """
        if time.monotonic() - cache["at"] > 5:
            layers = app.state.catalog.layers()
            cache["versions"] = {
                lyr.id: lyr.current_version for lyr in layers if lyr.current_version
            }
            cache["at"] = time.monotonic()
        return cache["versions"]

    app.state.current_versions = current_versions

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness."""
        return {"status": "ok", "version": __version__}

    app.include_router(tiles_router)
    return app
