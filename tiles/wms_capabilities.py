"""WMS 1.1.1 and 1.3.0 capabilities documents, built from the catalog view and cached.

A :class:`Service` says which published layers one WMS endpoint offers: all of them (``/wms``),
one category or one agency (``/wms?category=行政區域``, ``/wms?agency=…``) or a single layer
(``/wms/{id}``, for agencies that want a one-layer service). Every vector and raster layer is a
named, styled layer (tables are not); layers are grouped by agency, then by category, under one
unnamed root that lists the CRSs. Vector layers are queryable.

Documents are cached per (version, service, base URL, snapshot stamp): the stamp changes when
the catalog does, so a stale document is never served and an unchanged catalog never rebuilds
one. Per-layer bounding boxes in the projected CRSs are computed with pyproj once per bbox.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pyproj import Transformer

from catalog.model import Layer, LayerVersion
from catalog.style import Style
from catalog.view import Snapshot
from tiles.layers import layer_style
from tiles.render import MAX_SIZE
from tiles.tilesets import union_bbox

BBox = tuple[float, float, float, float]

#: CRSs offered, as advertised in 1.3.0 (CRS:84 is lon/lat WGS 84) and in 1.1.1.
CRSS_130 = ("EPSG:3826", "EPSG:3825", "EPSG:3824", "EPSG:3857", "EPSG:4326", "CRS:84")
CRSS_111 = ("EPSG:3826", "EPSG:3825", "EPSG:3824", "EPSG:3857", "EPSG:4326")
#: Geographic CRSs whose axis order is latitude first in WMS 1.3.0.
LATLON_CRSS = frozenset({"EPSG:4326", "EPSG:3824"})
_PROJECTED = ("EPSG:3826", "EPSG:3825", "EPSG:3857")

#: GetMap output formats: advertised media type → renderer format (tiles.render.FORMATS).
MAP_FORMATS = {
    "image/png": "png",
    "image/png; mode=8bit": "png8",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
}
INFO_FORMATS = ("text/plain", "text/html", "application/json", "application/vnd.ogc.gml")
LEGEND_FORMATS = ("image/png", "image/jpeg", "image/webp")
STYLE_NAME = "default"
LAYER_LIMIT = 100  # layers in one GetMap
LEGEND_WIDTH = 240
LEGEND_ROW = 20
_PIXEL_DIAGONAL_M = 0.00028 * math.sqrt(2)  # 1.1.1 ScaleHint: ground size of a pixel diagonal

SERVICE_TITLE = "geoportal 網路地圖服務（WMS）"
SERVICE_ABSTRACT = (
    "各機關圖資之網路地圖服務（WMS 1.3.0／1.1.1），依機關與類別分組；支援 TWD97 "
    "（EPSG:3826、EPSG:3825）、EPSG:3824、EPSG:4326、CRS:84 與 Web Mercator（EPSG:3857）。"
    " Web Map Service of the agencies' layers, grouped by agency and category."
)
ACCESS = "政府資料開放授權條款－第1版（OGDL-Taiwan-1.0），除另有標示外。"


@dataclass(frozen=True)
class Service:
    """Which layers one WMS endpoint publishes; no field set = every published layer.

    Attributes:
        category: only layers of this category (data.gov.tw service category, zh-TW).
        agency: only layers of this agency (its slug or its zh-TW title).
        layer_id: only this layer (the ``/wms/{id}`` one-layer service).
    """

    category: str | None = None
    agency: str | None = None
    layer_id: str | None = None

    def accepts(self, layer: Layer) -> bool:
        """Whether ``layer`` belongs to this service."""
        if self.layer_id is not None and layer.id != self.layer_id:
            return False
        if self.category is not None and layer.category != self.category:
            return False
        return self.agency is None or self.agency in (layer.agency.name, layer.agency.title)

    def url(self, base_url: str) -> str:
        """The service's GET URL prefix (clients append ``key=value&…`` to it)."""
        path = f"{base_url}/wms" if self.layer_id is None else f"{base_url}/wms/{self.layer_id}"
        query = {k: v for k, v in (("category", self.category), ("agency", self.agency)) if v}
        return f"{path}?{urlencode(query)}&" if query else f"{path}?"

    def layers(self, snapshot: Snapshot) -> list[tuple[Layer, LayerVersion]]:
        """The drawable (vector or raster) published layers of this service, by id."""
        return [
            (layer, version)
            for layer, version in snapshot.published()
            if version.kind in ("vector", "raster") and self.accepts(layer)
        ]


# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class LayerEntry:
    """One named layer as the templates print it."""

    id: str
    title: str
    abstract: str
    keywords: tuple[str, ...]
    attribution: str
    queryable: bool
    opaque: bool
    wgs84: BBox
    bbox130: Markup
    bbox111: Markup
    style_title: str
    legend_height: int
    min_scale: float
    max_scale: float
    scale_hint: tuple[float, float | str] | None


@dataclass(frozen=True)
class Group:
    """An unnamed layer that groups others (an agency, a category, the root)."""

    title: str
    abstract: str
    wgs84: BBox
    bbox130: Markup
    bbox111: Markup
    groups: tuple[Group, ...] = ()
    layers: tuple[LayerEntry, ...] = ()


@lru_cache(maxsize=8)
def _to(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


_BOXES: dict[BBox, dict[str, BBox]] = {}
_BOXES_LOCK = threading.Lock()
_DENSIFY = 23  # points per bbox edge: the corners and the 21 of transform_bounds(densify_pts=21)


def _edge_points(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat of points along the four edges of each bbox: two (n, 4·densify) arrays."""
    t = np.linspace(0.0, 1.0, _DENSIFY)
    w, s, e, n = (boxes[:, i : i + 1] for i in range(4))
    lon = np.hstack(
        [w + (e - w) * t, np.repeat(e, _DENSIFY, 1), e - (e - w) * t, np.repeat(w, _DENSIFY, 1)]
    )
    lat = np.hstack(
        [np.repeat(s, _DENSIFY, 1), s + (n - s) * t, np.repeat(n, _DENSIFY, 1), n - (n - s) * t]
    )
    return lon, lat


def crs_boxes_many(bboxes: list[BBox]) -> list[dict[str, BBox]]:
    """Each lon/lat bbox as a bbox (x first) in every offered CRS but CRS:84.

    The edges are densified and every bbox is projected in one call per CRS (the same result
    as pyproj's ``transform_bounds`` for areas that do not cross the antimeridian); results
    are kept per bbox, so a rebuilt document only projects new bboxes.
    """
    with _BOXES_LOCK:
        missing = list(dict.fromkeys(b for b in bboxes if b not in _BOXES))
    if missing:
        lon, lat = _edge_points(np.asarray(missing, dtype=float))
        done: dict[BBox, dict[str, BBox]] = {b: {} for b in missing}
        for crs in _PROJECTED:
            x, y = _to(crs).transform(lon, lat)
            edges = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1).tolist()
            for box, projected in zip(missing, edges, strict=True):
                done[box][crs] = tuple(projected)
        for box, out in done.items():
            out["EPSG:4326"] = out["EPSG:3824"] = box  # TWD97 geographic ≈ WGS 84 (null shift)
        with _BOXES_LOCK:
            if len(_BOXES) > 50_000:
                _BOXES.clear()
            _BOXES.update(done)
    with _BOXES_LOCK:
        return [_BOXES[b] for b in bboxes]


def crs_boxes(wgs84: BBox) -> dict[str, BBox]:
    """``wgs84`` (lon/lat) as a bbox (x first) in every offered CRS but CRS:84."""
    return crs_boxes_many([wgs84])[0]


def _attrs(values: tuple[float, ...]) -> str:
    return " ".join(
        f'{k}="{v!r}"' for k, v in zip(("minx", "miny", "maxx", "maxy"), values, strict=True)
    )


def _box_elements(wgs84: BBox, boxes: dict[str, BBox]) -> tuple[Markup, Markup]:
    """The bounding-box elements of a layer, ready to print: (1.3.0, 1.1.1)."""
    w, s, e, n = (repr(v) for v in wgs84)
    b130 = [
        f"<EX_GeographicBoundingBox><westBoundLongitude>{w}</westBoundLongitude>"
        f"<eastBoundLongitude>{e}</eastBoundLongitude><southBoundLatitude>{s}"
        f"</southBoundLatitude><northBoundLatitude>{n}</northBoundLatitude>"
        "</EX_GeographicBoundingBox>",
        f'<BoundingBox CRS="CRS:84" {_attrs(wgs84)}/>',
    ]
    b111 = [f"<LatLonBoundingBox {_attrs(wgs84)}/>"]
    for crs in CRSS_111:
        b = boxes[crs]
        b111.append(f'<BoundingBox SRS="{crs}" {_attrs(b)}/>')
        axis = (b[1], b[0], b[3], b[2]) if crs in LATLON_CRSS else b
        b130.append(f'<BoundingBox CRS="{crs}" {_attrs(axis)}/>')
    return Markup("\n".join(b130)), Markup("\n".join(b111))


def legend_rows(style: Style, kind: str) -> int:
    """How many rows (classes) the legend of a style has."""
    if kind == "raster":
        return 1
    if style.categorized:
        return len(style.categorized.values) + (1 if style.categorized.other else 0) or 1
    if style.graduated:
        return len(style.graduated.colors)
    return 1


def _scale_hint(style: Style) -> tuple[float, float | str] | None:
    if not (style.min_scale or style.max_scale):
        return None
    low = round(style.min_scale * _PIXEL_DIAGONAL_M, 6)
    return low, round(style.max_scale * _PIXEL_DIAGONAL_M, 6) if style.max_scale else "Infinity"


#: Where a layer without a bbox is said to be: Taiwan with its outlying islands.
TAIWAN = (118.1, 21.8, 122.1, 26.4)


def _wgs84(version: LayerVersion) -> BBox:
    return version.bbox or TAIWAN


def layer_entry(layer: Layer, version: LayerVersion, boxes: dict[str, BBox]) -> LayerEntry:
    """The capabilities entry of one published layer (``boxes``: its bbox in each CRS)."""
    style = layer_style(layer, version)
    wgs84 = _wgs84(version)
    abstract = layer.description
    if layer.title_en:
        abstract = f"{abstract}\n{layer.title_en}" if abstract else layer.title_en
    keywords = tuple(dict.fromkeys(k for k in (*layer.keywords, layer.category) if k))
    b130, b111 = _box_elements(wgs84, boxes)
    return LayerEntry(
        id=layer.id,
        title=layer.title,
        abstract=abstract,
        keywords=keywords,
        attribution=layer.agency.title,
        queryable=version.kind == "vector",
        opaque=False,
        wgs84=wgs84,
        bbox130=b130,
        bbox111=b111,
        style_title=style.title or "預設樣式",
        legend_height=LEGEND_ROW * legend_rows(style, version.kind),
        min_scale=style.min_scale,
        max_scale=style.max_scale,
        scale_hint=_scale_hint(style),
    )


def _group(
    title: str, abstract: str, groups: tuple[Group, ...], layers: tuple[LayerEntry, ...]
) -> Group:
    wgs84 = union_bbox([g.wgs84 for g in groups] + [e.wgs84 for e in layers])
    b130, b111 = _box_elements(wgs84, crs_boxes(wgs84))
    return Group(title, abstract, wgs84, b130, b111, groups, layers)


UNCATEGORISED = "未分類"
NO_AGENCY = "未指定機關"


def agency_title(layer: Layer) -> str:
    """The title of the layer's agency group (a manifest without an agency still has one)."""
    return layer.agency.title or NO_AGENCY


def layer_tree(entries: list[tuple[Layer, LayerEntry]], title: str, abstract: str) -> Group:
    """Root → agency → category → layers; agencies and categories in zh-TW title order."""
    by_agency: dict[str, dict[str, list[LayerEntry]]] = {}
    for layer, entry in entries:
        category = layer.category or UNCATEGORISED
        by_agency.setdefault(agency_title(layer), {}).setdefault(category, []).append(entry)
    agencies = []
    for agency in sorted(by_agency):
        categories = tuple(
            _group(category, "", (), tuple(items))
            for category, items in sorted(by_agency[agency].items())
        )
        agencies.append(_group(agency, "", categories, ()))
    return _group(title, abstract, tuple(agencies), ())


# --------------------------------------------------------------------------- documents


_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=False,
    lstrip_blocks=False,
    keep_trailing_newline=True,
)
_TEMPLATES = {"1.3.0": "wms_130.xml", "1.1.1": "wms_111.xml"}


@dataclass(frozen=True)
class ServiceInfo:
    """The Service section: title, abstract, keywords, access constraints."""

    title: str
    abstract: str
    keywords: tuple[str, ...]
    access: str


def service_info(service: Service, snapshot: Snapshot) -> ServiceInfo:
    """Title and abstract of a (possibly filtered) service, zh-TW first."""
    title, abstract = SERVICE_TITLE, SERVICE_ABSTRACT
    if service.layer_id is not None:
        layer = snapshot.layers[service.layer_id]
        title = f"{layer.title}（WMS）"
        abstract = layer.description or abstract
    elif service.category or service.agency:
        names = "・".join(x for x in (service.agency, service.category) if x)
        title = f"{names}（WMS）"
    keywords = ("WMS", "網路地圖服務", "地圖", "TWD97", "開放資料")
    return ServiceInfo(title, abstract, keywords, ACCESS)


def build_capabilities(snapshot: Snapshot, version: str, service: Service, base_url: str) -> bytes:
    """The capabilities document (uncached); ``version`` is "1.3.0" or "1.1.1"."""
    url = service.url(base_url)
    info = service_info(service, snapshot)
    published = service.layers(snapshot)
    boxes = crs_boxes_many([_wgs84(v) for _, v in published])
    entries = [
        (layer, layer_entry(layer, v, b)) for (layer, v), b in zip(published, boxes, strict=True)
    ]
    root = layer_tree(entries, info.title, info.abstract)

    def legend_url(layer_id: str, wms_version: str) -> str:
        query = {
            "SERVICE": "WMS",
            "VERSION": wms_version,
            "REQUEST": "GetLegendGraphic",
            "LAYER": layer_id,
            "STYLE": STYLE_NAME,
            "FORMAT": "image/png",
        }
        if wms_version == "1.3.0":
            query["SLD_VERSION"] = "1.1.0"
        return url + urlencode(query)

    text = _ENV.get_template(_TEMPLATES[version]).render(
        service=info,
        url=url,
        update_sequence=snapshot.stamp,
        max_size=MAX_SIZE,
        layer_limit=LAYER_LIMIT,
        map_formats=tuple(MAP_FORMATS),
        info_formats=INFO_FORMATS,
        legend_formats=LEGEND_FORMATS,
        crss=CRSS_130 if version == "1.3.0" else CRSS_111,
        root=root,
        style_name=STYLE_NAME,
        legend_width=LEGEND_WIDTH,
        legend_url=legend_url,
    )
    return text.encode("utf-8")


_CACHE: OrderedDict[tuple, bytes] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 64


def capabilities(snapshot: Snapshot, version: str, service: Service, base_url: str) -> bytes:
    """The capabilities document, from the cache when the catalog has not changed."""
    key = (version, service, base_url, snapshot.stamp)
    with _CACHE_LOCK:
        doc = _CACHE.get(key)
        if doc is not None:
            _CACHE.move_to_end(key)
            return doc
    doc = build_capabilities(snapshot, version, service, base_url)
    with _CACHE_LOCK:
        _CACHE[key] = doc
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return doc
