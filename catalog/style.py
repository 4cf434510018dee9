"""A layer's display style: what the manifest's ``style:`` says, typed and validated.

The schema is geoportal's own, kept close to what a GIS user writes (and to what SLD / SE can
say, so an agency's SLD file converts to it): one symbolizer per geometry kind, optional
categorized or graduated colours by an attribute, an optional label and scale range.

```yaml
style:
  fill: "#f4a261"          # polygons (and point symbols)
  fill_opacity: 0.6
  stroke: "#264653"        # outlines and lines
  stroke_width: 1.2        # pixels
  opacity: 1.0             # the whole layer
  marker: circle           # circle | square | triangle | star | cross
  marker_size: 8           # pixels
  label: 名稱               # attribute drawn as label (Chinese welcome)
  label_size: 12
  label_color: "#222222"
  min_scale: 0             # drawn when scale denominator >= min_scale ...
  max_scale: 50000         # ... and < max_scale (0 = no limit)
  categorized: {field: 使用分區, values: {住宅區: "#f6bd60", 商業區: "#e76f51"}, other: "#cccccc"}
  graduated:
    field: 人口數
    breaks: [1000, 5000, 20000]
    colors: ["#fee5d9", "#fcae91", "#fb6a4a", "#cb181d"]
  sld: styles/landuse.sld  # or: an SLD 1.0 / SE 1.1 file (relative to the manifest)
```

``graduated.colors`` has one colour more than ``breaks``: class i is ``breaks[i-1] <= v <
breaks[i]``. Rasters take ``colormap`` (DEM colour relief stops) and ``hillshade``.

An ``sld:`` file is read when the manifest is loaded (:func:`catalog.sld.parse_sld`, via
``ingest.manifest.validated_style``) and replaced by the style it says, so a stored style never
holds ``sld``. docs/styles.md documents every key, the defaults and the SLD support matrix.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from catalog.errors import CatalogError

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_NAMED = {
    "black": "#000000",
    "white": "#ffffff",
    "red": "#ff0000",
    "green": "#008000",
    "blue": "#0000ff",
    "yellow": "#ffff00",
    "orange": "#ffa500",
    "gray": "#808080",
    "grey": "#808080",
    "purple": "#800080",
    "brown": "#a52a2a",
    "transparent": "#00000000",
}


class StyleError(CatalogError):
    """A style (manifest ``style:`` or SLD file) that cannot be used; the message says why."""


def _colour(value: str) -> str:
    text = value.strip().lower()
    text = _NAMED.get(text, text)
    if not _HEX.fullmatch(text):
        raise ValueError(f"{value!r} is not a colour (#rgb, #rrggbb, #rrggbbaa or a basic name)")
    if len(text) == 4:
        text = "#" + "".join(c * 2 for c in text[1:])
    return text


def parse_colour(value: str) -> str:
    """A colour as the style schema stores it: ``#rrggbb`` or ``#rrggbbaa``, lower case.

    Args:
        value: ``#rgb``, ``#rrggbb``, ``#rrggbbaa`` or a basic CSS name ("red", "grey").

    Raises:
        StyleError: the value is not a colour.
    """
    try:
        return _colour(value)
    except ValueError as e:
        raise StyleError(str(e)) from None


Colour = Annotated[str, AfterValidator(_colour)]
Unit = Annotated[float, Field(ge=0, le=1)]


class Categorized(BaseModel):
    """Colours by the value of an attribute (one class per value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str
    values: dict[str, Colour]
    other: Colour | None = None  # colour of any other value; None = not drawn


class Graduated(BaseModel):
    """Colours by numeric classes of an attribute."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str
    breaks: tuple[float, ...]
    colors: tuple[Colour, ...]

    @model_validator(mode="after")
    def _classes(self) -> Graduated:
        if len(self.colors) != len(self.breaks) + 1:
            raise ValueError(
                f"graduated needs one colour more than breaks "
                f"({len(self.breaks)} breaks, {len(self.colors)} colours)"
            )
        if list(self.breaks) != sorted(self.breaks):
            raise ValueError("graduated breaks must be increasing")
        return self


class ColorStop(BaseModel):
    """One stop of a raster colour ramp: value → colour."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float
    color: Colour


class Style(BaseModel):
    """A layer's display style. Every field has a default, so ``Style()`` draws something."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fill: Colour | None = None
    fill_opacity: Unit = 0.6
    stroke: Colour | None = None
    stroke_width: Annotated[float, Field(ge=0, le=50)] = 1.0
    opacity: Unit = 1.0
    marker: Literal["circle", "square", "triangle", "star", "cross"] = "circle"
    marker_size: Annotated[float, Field(gt=0, le=200)] = 7.0
    label: str | None = None
    label_size: Annotated[float, Field(gt=0, le=72)] = 12.0
    label_color: Colour = "#222222"
    min_scale: Annotated[float, Field(ge=0)] = 0.0
    max_scale: Annotated[float, Field(ge=0)] = 0.0
    categorized: Categorized | None = None
    graduated: Graduated | None = None
    colormap: tuple[ColorStop, ...] = ()
    hillshade: bool = True
    min_zoom: Annotated[int, Field(ge=0, le=22)] | None = None  # vector tiles: shallowest zoom
    max_zoom: Annotated[int, Field(ge=0, le=22)] | None = None  # deepest (None: from density)
    title: str = ""  # a human name for the style (legends, capabilities)

    @model_validator(mode="after")
    def _one_classification(self) -> Style:
        if self.categorized and self.graduated:
            raise ValueError("a style is either categorized or graduated, not both")
        if self.max_scale and self.max_scale <= self.min_scale:
            raise ValueError("max_scale must be greater than min_scale")
        if None not in (self.min_zoom, self.max_zoom) and self.max_zoom < self.min_zoom:
            raise ValueError("max_zoom must not be less than min_zoom")
        return self

    def visible_at(self, scale_denominator: float) -> bool:
        """Whether the layer is drawn at this scale denominator."""
        if scale_denominator < self.min_scale:
            return False
        return not (self.max_scale and scale_denominator >= self.max_scale)


#: Default colours by geometry kind: readable on a light basemap, distinct from each other.
_DEFAULTS = {
    "polygon": {"fill": "#8ecae6", "stroke": "#1d3557"},
    "line": {"stroke": "#e76f51", "stroke_width": 1.6},
    "point": {"fill": "#e63946", "stroke": "#ffffff"},
}


def geometry_kind(geometry_type: str) -> str:
    """'polygon', 'line', 'point' (or '' for none) from an OGC geometry type name."""
    g = geometry_type.lower()
    if "polygon" in g:
        return "polygon"
    if "line" in g:
        return "line"
    if "point" in g:
        return "point"
    return ""


def parse_style(raw: dict, geometry_type: str = "") -> Style:
    """The typed style of a manifest ``style:`` mapping, with defaults for the geometry type.

    Raises:
        StyleError: the mapping is not a valid style (the message names the key).
    """
    if not isinstance(raw, dict):
        raise StyleError(f"a style is a mapping of style keys, not a {type(raw).__name__}")
    defaults = _DEFAULTS.get(geometry_kind(geometry_type), {})
    merged = {**defaults, **{k: v for k, v in raw.items() if k != "sld"}}
    try:
        return Style.model_validate(merged)
    except ValidationError as e:
        raise StyleError(_message(e.errors(include_url=False)[0])) from None


def _message(error: dict) -> str:
    """One pydantic error as a sentence that names the style key."""
    loc = [str(p) for p in error["loc"]]
    where = ".".join(loc)
    if error["type"] == "extra_forbidden":
        known = list(Style.model_fields) if len(loc) == 1 else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown style key {where!r}{maybe}"
    ctx = error.get("ctx") or {}
    msg = str(ctx["error"]) if error["type"] == "value_error" and "error" in ctx else error["msg"]
    return f"style key {where!r}: {msg}" if loc else msg
