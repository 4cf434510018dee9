"""OGC API through pygeoapi: the running config built from the catalog, our providers, the mount.

``portal.ogc.config`` turns the ``pygeoapi-config.yml`` template and a catalog snapshot into the
running pygeoapi configuration; ``portal.ogc.provider`` is the OGC API - Features provider on
our stored GeoPackage versions; ``portal.ogc.app`` mounts pygeoapi at ``/ogc`` in the one app.
"""
