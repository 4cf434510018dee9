"""The one ASGI app (`geoportal serve`): every protocol mounted on one FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from catalog.db import Catalog
from catalog.view import CatalogView
from geoportal import __version__
from geoportal.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the catalog is opened once per process."""
    from portal.ckan.api import portal_of
    from portal.ckan.api import router as ckan_router
    from portal.ckan.dcat import router as dcat_router
    from portal.downloads import prune_downloads
    from portal.downloads import router as downloads_router
    from portal.ogc.app import mount as mount_ogc
    from portal.stats import install as install_stats
    from portal.web.embed import router as embed_router
    from portal.web.pages import router as pages_router
    from portal.web.routes import router as web_router
    from tiles.routes import router as tiles_router
    from tiles.wms import router as wms_router
    from tiles.wmts import router as wmts_router

    settings = settings or load_settings()
    app = FastAPI(title="geoportal", version=__version__, docs_url="/api/docs")
    app.state.settings = settings
    app.state.catalog = Catalog.open(settings.home, settings.catalog_url)
    app.state.view = CatalogView(app.state.catalog)

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness."""
        return {"status": "ok", "version": __version__}

    app.include_router(tiles_router)
    app.include_router(wms_router)
    app.state.wms = True  # pages link legends to /wms
    app.include_router(wmts_router)
    app.include_router(downloads_router)
    # cached exports of versions no longer current (a running server prunes a layer's older
    # files itself when it first exports the newer version)
    prune_downloads(settings.home, app.state.view.snapshot())
    app.include_router(ckan_router)
    portal_of(app)  # the portal store opened and the layers' datasets in line with the catalog
    app.include_router(dcat_router)
    mount_ogc(app)  # pygeoapi at /ogc, configured from app.state.view
    app.include_router(embed_router)  # staff sign-in, map composer, /maps, /embed
    app.include_router(pages_router)  # the portal pages
    install_stats(app)  # usage counts (middleware), /metrics, /admin/stats
    app.include_router(web_router)  # last: it owns the /static/{name} catch-all
    return app
