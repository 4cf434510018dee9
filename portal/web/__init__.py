"""The portal's web pages: server-rendered Jinja2 with MapLibre GL JS served offline.

``portal.web.routes.router`` serves the pages (``/map/{id}``) and the static assets
(``/static/...``, MapLibre itself at ``/static/maplibre/...`` from the ``maplibre`` package).
"""
