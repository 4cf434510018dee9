"""The portal's two languages: a message table and language negotiation.

zh-TW is the default; English is chosen by ``?lang=en`` or by the browser's
``Accept-Language``. Pages take their text from :func:`messages`, never from literals in
templates, so both languages always carry the same keys (a test compares them).
"""

from __future__ import annotations

import importlib
from types import MappingProxyType

DEFAULT = "zh-TW"
LANGUAGES = ("zh-TW", "en")

_ZH = {
    "site": "臺中市地理資訊入口網",
    "skip": "跳到地圖",
    "language": "語言",
    "switch_to": "English",
    "map_of": "{title}地圖",
    "map_label": "{title}的互動地圖：可用方向鍵平移、加減號縮放",
    "agency": "提供機關",
    "kind": "類型",
    "kind_vector": "向量圖層",
    "kind_raster": "網格圖層",
    "kind_tileset": "圖組",
    "legend": "圖例",
    "legend_alt": "{title}圖例",
    "features": "圖徵數",
    "source_crs": "原始坐標系統",
    "extent": "範圍（經緯度）",
    "links": "資料服務",
    "tilejson": "TileJSON（XYZ 圖磚）",
    "ogc": "OGC API Features",
    "members": "包含圖層",
    "popup_title": "圖徵屬性",
    "attribute": "欄位",
    "value": "值",
    "no_js": "此地圖需要 JavaScript 與 WebGL；請改用下方的資料服務連結。",
    "no_webgl": "此瀏覽器無法顯示互動地圖（需要 WebGL）。",
    "basemap": "底圖：{title}",
    "not_found": "找不到圖層或圖組「{id}」。",
    "bad_id": "「{id}」不是圖層代碼（只能使用小寫英文字母、數字與連字號）。",
    "not_found_title": "找不到頁面",
}

_EN = {
    "site": "Taichung Geoportal",
    "skip": "Skip to map",
    "language": "Language",
    "switch_to": "中文",
    "map_of": "Map of {title}",
    "map_label": "Interactive map of {title}: arrow keys pan, plus and minus zoom",
    "agency": "Agency",
    "kind": "Type",
    "kind_vector": "Vector layer",
    "kind_raster": "Raster layer",
    "kind_tileset": "Tileset",
    "legend": "Legend",
    "legend_alt": "Legend of {title}",
    "features": "Features",
    "source_crs": "Source CRS",
    "extent": "Extent (lon/lat)",
    "links": "Data services",
    "tilejson": "TileJSON (XYZ tiles)",
    "ogc": "OGC API Features",
    "members": "Layers",
    "popup_title": "Feature attributes",
    "attribute": "Attribute",
    "value": "Value",
    "no_js": "This map needs JavaScript and WebGL; use the data service links below instead.",
    "no_webgl": "This browser cannot show the interactive map (WebGL is needed).",
    "basemap": "Basemap: {title}",
    "not_found": "There is no layer or tileset {id!r}.",
    "bad_id": "{id!r} is not a layer id (lower-case letters, digits and hyphens only).",
    "not_found_title": "Page not found",
}

#: Modules holding the message tables of one family of pages each (``ZH`` and ``EN`` dicts
#: with the same keys); merged with the table above, a key defined twice is an error.
PARTS = ("portal.web.i18n_pages", "portal.web.i18n_embed", "portal.web.i18n_stats")


def _merged() -> dict[str, MappingProxyType]:
    zh, en = dict(_ZH), dict(_EN)
    for name in PARTS:
        part = importlib.import_module(name)
        for table, extra in ((zh, part.ZH), (en, part.EN)):
            clash = table.keys() & extra.keys()
            if clash:
                raise RuntimeError(f"{name} redefines messages {sorted(clash)}")
            table.update(extra)
    return {"zh-TW": MappingProxyType(zh), "en": MappingProxyType(en)}


_TABLE = _merged()


def messages(lang: str) -> MappingProxyType:
    """The message table of ``lang`` (one of :data:`LANGUAGES`; anything else gets zh-TW)."""
    return _TABLE.get(lang, _TABLE[DEFAULT])


def _from_tag(tag: str) -> str | None:
    """The supported language a BCP 47 tag asks for, or None."""
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh-TW"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(query: str | None, accept_language: str | None) -> str:
    """The page language: ``?lang=`` first, then ``Accept-Language`` by weight, else zh-TW.

    Args:
        query: the ``lang`` query parameter, if any ("en", "zh-TW", "zh"...).
        accept_language: the request's ``Accept-Language`` header, if any.
    """
    if query and (lang := _from_tag(query)):
        return lang
    ranked: list[tuple[float, int, str]] = []
    for n, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if (lang := _from_tag(tag)) and weight > 0:
            ranked.append((-weight, n, lang))
    return min(ranked)[2] if ranked else DEFAULT


def other(lang: str) -> str:
    """The language the switch offers on a page in ``lang``."""
    return "en" if lang == "zh-TW" else "zh-TW"
