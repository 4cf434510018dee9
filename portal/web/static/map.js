/* Layer map viewer: turns #map into a MapLibre GL JS map of one layer or tileset.
   Settings come from the page (#map-config, written by portal/web/routes.py). */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("map-config").textContent);
  var container = document.getElementById("map");
  var message = document.getElementById("map-message");
  /* Absolute URLs (MapLibre fetches tiles in a worker); kept unencoded: "{z}", "{range}". */
  var absolute = function (path) { return window.location.origin + path; };

  var legend = document.getElementById("legend");
  if (legend) {
    var img = legend.querySelector("img");
    var hide = function () { legend.hidden = true; };
    img.addEventListener("error", hide);
    if (img.complete && img.naturalWidth === 0) { hide(); }
  }

  function webgl() {
    try {
      var c = document.createElement("canvas");
      return !!(c.getContext("webgl2") || c.getContext("webgl"));
    } catch (e) {
      return false;
    }
  }

  if (typeof maplibregl === "undefined" || !webgl()) {
    message.textContent = config.text.no_webgl;
    return;
  }
  message.remove();

  function style() {
    var sources = {};
    var layers = [{ id: "background", type: "background",
                    paint: { "background-color": "#f5f5f2" } }];
    if (config.basemap) {
      sources.basemap = { type: "raster", url: absolute(config.basemap.tilejson), tileSize: 256 };
      layers.push({ id: "basemap", type: "raster", source: "basemap",
                    paint: { "raster-opacity": 0.6 } });
    }
    if (config.kind === "vector") {
      sources.layer = { type: "vector", url: absolute(config.tilejson) };
      layers = layers.concat(config.layers);
    } else {
      sources.layer = { type: "raster", url: absolute(config.tilejson), tileSize: 256 };
      layers.push({ id: config.id, type: "raster", source: "layer" });
    }
    return { version: 8, glyphs: absolute(config.glyphs), sources: sources, layers: layers };
  }

  var b = config.bounds;
  var map = new maplibregl.Map({
    container: container,
    style: style(),
    bounds: b ? [[b[0], b[1]], [b[2], b[3]]] : undefined,
    fitBoundsOptions: { padding: 24 },
    center: b ? undefined : [120.68, 24.15],
    zoom: b ? undefined : 9,
    localIdeographFontFamily: "'Noto Sans CJK TC', 'Noto Sans TC', 'PingFang TC', " +
      "'Microsoft JhengHei', sans-serif",
    attributionControl: { compact: true },
    cooperativeGestures: false
  });
  map.getCanvas().setAttribute("aria-label", container.getAttribute("aria-label"));
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  window.geoportalMap = map;

  /* Marker shapes other than circles, drawn once as SDF icons (coloured by the style). */
  var SHAPES = {
    square: function (g, s) { g.rect(s * 0.2, s * 0.2, s * 0.6, s * 0.6); },
    triangle: function (g, s) {
      g.moveTo(s / 2, s * 0.12); g.lineTo(s * 0.9, s * 0.85); g.lineTo(s * 0.1, s * 0.85);
      g.closePath();
    },
    star: function (g, s) {
      for (var i = 0; i < 10; i++) {
        var r = (i % 2 ? 0.18 : 0.42) * s, a = Math.PI * i / 5 - Math.PI / 2;
        g[i ? "lineTo" : "moveTo"](s / 2 + r * Math.cos(a), s / 2 + r * Math.sin(a));
      }
      g.closePath();
    },
    cross: function (g, s) {
      g.rect(s * 0.4, s * 0.1, s * 0.2, s * 0.8); g.rect(s * 0.1, s * 0.4, s * 0.8, s * 0.2);
    }
  };
  map.on("styleimagemissing", function (e) {
    var shape = SHAPES[e.id.replace(/^marker-/, "")];
    if (!shape || map.hasImage(e.id)) { return; }
    var size = 32, canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    var g = canvas.getContext("2d");
    g.fillStyle = "#ffffff";
    g.beginPath();
    shape(g, size);
    g.fill();
    map.addImage(e.id, g.getImageData(0, 0, size, size), { sdf: true });
  });

  /* Popups: the attributes of the feature clicked, as a table. */
  var queryable = config.layers.filter(function (l) { return !l.layout || !l.layout["text-field"]; })
    .map(function (l) { return l.id; });

  function table(properties) {
    var t = document.createElement("table");
    var caption = t.createCaption();
    caption.textContent = config.text.popup_title;
    var head = t.createTHead().insertRow();
    [config.text.attribute, config.text.value].forEach(function (label) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      head.appendChild(th);
    });
    var body = t.createTBody();
    Object.keys(properties).forEach(function (key) {
      var row = body.insertRow();
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = key;
      row.appendChild(th);
      row.insertCell().textContent = String(properties[key]);
    });
    return t;
  }

  if (queryable.length) {
    var popup = new maplibregl.Popup({ maxWidth: "22rem", focusAfterOpen: true });
    map.on("click", function (e) {
      var found = map.queryRenderedFeatures(e.point, { layers: queryable });
      if (!found.length) { popup.remove(); return; }
      popup.setLngLat(e.lngLat).setDOMContent(table(found[0].properties)).addTo(map);
    });
    queryable.forEach(function (id) {
      map.on("mouseenter", id, function () { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", id, function () { map.getCanvas().style.cursor = ""; });
    });
  }
})();
