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
    cache: dict[str, object] = {"at": 0.0, "ids": set()}

    def layer_ids() -> set[str]:
        """Layer ids, refreshed at most every few seconds (ingest may run meanwhile)."""
        if time.monotonic() - cache["at"] > 5:
            cache["ids"] = {layer.id for layer in app.state.catalog.layers()}
            cache["at"] = time.monotonic()
        return cache["ids"]

    app.state.layer_ids = layer_ids

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness."""
        return {"status": "ok", "version": __version__}

    app.include_router(tiles_router)
    return app
