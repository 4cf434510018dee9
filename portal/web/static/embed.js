/* Embeddable map widgets (/embed/{map}): one script for the seven kinds.
   Settings come from #embed-config (portal/web/embed.py widget_config). Without WebGL the
   map becomes a static WMS picture. Events go to the host page with postMessage
   ({source: "geoportal", map, type, ...}); loader.js turns them into DOM events.
   The composer reuses buildStyle/createMap through window.geoportalWidget. */
(function () {
  "use strict";

  var FONTS = "'Noto Sans CJK TC', 'Noto Sans TC', 'PingFang TC', 'Microsoft JhengHei', sans-serif";
  var abs = function (p) { return /^https?:/.test(p) ? p : window.location.origin + p; };
  var empty = function () { return { type: "FeatureCollection", features: [] }; };
  var fmt = function (text, values) {
    return text.replace(/\{(\w+)(:[^}]*)?\}/g, function (m, k) { return k in values ? values[k] : m; });
  };

  function webgl() {
    if (window.GEOPORTAL_NO_WEBGL) { return false; }
    try {
      var c = document.createElement("canvas");
      return !!(c.getContext("webgl2") || c.getContext("webgl"));
    } catch (e) {
      return false;
    }
  }

  var IS = function (types) { return ["match", ["geometry-type"], types, true, false]; };

  /* The MapLibre style of a widget configuration; `only` keeps some layers (by index). */
  function buildStyle(cfg, only) {
    var sources = {};
    var layers = [{ id: "background", type: "background", paint: { "background-color": "#f5f5f2" } }];
    if (cfg.external) {
      sources.external = { type: "raster", tiles: cfg.external.tiles, tileSize: 256,
                           attribution: cfg.external.attribution };
      layers.push({ id: "external", type: "raster", source: "external" });
    } else if (cfg.basemap) {
      sources.basemap = { type: "raster", url: abs(cfg.basemap.tilejson), tileSize: 256 };
      layers.push({ id: "basemap", type: "raster", source: "basemap", paint: { "raster-opacity": 0.6 } });
    }
    cfg.layers.forEach(function (l, n) {
      if (only && only.indexOf(n) < 0) { return; }
      if (l.kind === "vector") {
        sources["s" + n] = { type: "vector", url: abs(l.tilejson) };
        layers = layers.concat(l.layers);
      } else {
        sources["s" + n] = { type: "raster", url: abs(l.tilejson), tileSize: 256 };
        layers.push({ id: "r" + n, type: "raster", source: "s" + n,
                      paint: { "raster-opacity": l.opacity } });
      }
    });
    sources.marks = { type: "geojson", data: empty() };
    layers.push(
      { id: "marks-fill", type: "fill", source: "marks", filter: IS(["Polygon", "MultiPolygon"]),
        paint: { "fill-color": "#ffd400", "fill-opacity": 0.3 } },
      { id: "marks-line", type: "line", source: "marks", filter: IS(["Polygon", "MultiPolygon",
        "LineString", "MultiLineString"]), paint: { "line-color": "#c00000", "line-width": 3 } },
      { id: "marks-point", type: "circle", source: "marks", filter: IS(["Point", "MultiPoint"]),
        paint: { "circle-radius": 8, "circle-color": "#c00000", "circle-stroke-color": "#ffffff",
                 "circle-stroke-width": 2 } });
    return { version: 8, glyphs: abs(cfg.glyphs), sources: sources, layers: layers };
  }

  var SHAPES = {
    square: function (g, s) { g.rect(s * 0.2, s * 0.2, s * 0.6, s * 0.6); },
    triangle: function (g, s) {
      g.moveTo(s / 2, s * 0.12); g.lineTo(s * 0.9, s * 0.85); g.lineTo(s * 0.1, s * 0.85); g.closePath();
    },
    star: function (g, s) {
      for (var i = 0; i < 10; i++) {
        var r = (i % 2 ? 0.18 : 0.42) * s, a = Math.PI * i / 5 - Math.PI / 2;
        g[i ? "lineTo" : "moveTo"](s / 2 + r * Math.cos(a), s / 2 + r * Math.sin(a));
      }
      g.closePath();
    },
    cross: function (g, s) { g.rect(s * 0.4, s * 0.1, s * 0.2, s * 0.8); g.rect(s * 0.1, s * 0.4, s * 0.8, s * 0.2); }
  };

  function createMap(container, cfg, only) {
    var v = cfg.view, b = cfg.bounds;
    var options = {
      container: container,
      style: buildStyle(cfg, only),
      localIdeographFontFamily: FONTS,
      attributionControl: { compact: true },
      fitBoundsOptions: { padding: 20 }
    };
    if (v) { options.center = v.center; options.zoom = v.zoom; }
    else if (b) { options.bounds = [[b[0], b[1]], [b[2], b[3]]]; }
    else { options.center = [120.68, 24.15]; options.zoom = 9; }
    var map = new maplibregl.Map(options);
    map.getCanvas().setAttribute("aria-label", container.getAttribute("aria-label") || "");
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
    map.on("styleimagemissing", function (e) {
      var shape = SHAPES[e.id.replace(/^marker-/, "")];
      if (!shape || map.hasImage(e.id)) { return; }
      var size = 32, canvas = document.createElement("canvas");
      canvas.width = canvas.height = size;
      var g = canvas.getContext("2d");
      g.fillStyle = "#ffffff"; g.beginPath(); shape(g, size); g.fill();
      map.addImage(e.id, g.getImageData(0, 0, size, size), { sdf: true });
    });
    return map;
  }

  /* Style layers a click may hit (labels excluded). */
  function queryable(cfg) {
    var ids = [];
    cfg.layers.forEach(function (l) {
      (l.layers || []).forEach(function (s) {
        if (!s.layout || !s.layout["text-field"]) { ids.push(s.id); }
      });
    });
    return ids;
  }

  function attributeTable(cfg, properties) {
    var t = document.createElement("table");
    t.createCaption().textContent = cfg.text.popup_title;
    var head = t.createTHead().insertRow();
    [cfg.text.attribute, cfg.text.value].forEach(function (label) {
      var th = document.createElement("th");
      th.scope = "col"; th.textContent = label; head.appendChild(th);
    });
    var body = t.createTBody();
    Object.keys(properties).forEach(function (key) {
      var row = body.insertRow(), th = document.createElement("th");
      th.scope = "row"; th.textContent = key; row.appendChild(th);
      row.insertCell().textContent = String(properties[key]);
    });
    return t;
  }

  function popups(map, cfg) {
    var ids = queryable(cfg);
    if (!ids.length) { return; }
    var popup = new maplibregl.Popup({ maxWidth: "20rem", focusAfterOpen: true });
    map.on("click", function (e) {
      var found = map.queryRenderedFeatures(e.point, { layers: ids.filter(function (i) { return map.getLayer(i); }) });
      if (!found.length) { popup.remove(); return; }
      popup.setLngLat(e.lngLat).setDOMContent(attributeTable(cfg, found[0].properties)).addTo(map);
    });
  }

  /* The WMS picture of the map for browsers without WebGL, sized to the container. */
  function fallback(container, cfg) {
    if (!cfg.fallback) { return; }
    var url = new URL(cfg.fallback, window.location.origin);
    var bbox = url.searchParams.get("BBOX").split(",").map(Number);
    var w = Math.max(200, Math.round(container.clientWidth || 800));
    var h = Math.max(150, Math.round(container.clientHeight || 500));
    var res = (bbox[2] - bbox[0]) / Number(url.searchParams.get("WIDTH"));
    var cx = (bbox[0] + bbox[2]) / 2, cy = (bbox[1] + bbox[3]) / 2;
    url.searchParams.set("BBOX", [cx - w / 2 * res, cy - h / 2 * res, cx + w / 2 * res, cy + h / 2 * res]
      .map(function (x) { return x.toFixed(2); }).join(","));
    url.searchParams.set("WIDTH", String(w));
    url.searchParams.set("HEIGHT", String(h));
    var note = document.createElement("p");
    note.className = "map-message";
    note.textContent = cfg.text.embed_fallback;
    var img = document.createElement("img");
    img.className = "fallback";
    img.alt = document.getElementById("widget-title").textContent;
    img.width = w; img.height = h;
    img.src = url.pathname + url.search;
    container.replaceChildren(img, note);
  }

  function execute(process, inputs) {
    return fetch("/ogc/processes/" + process + "/execution", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ inputs: inputs })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { throw new Error(body.description || body.detail || String(r.status)); }
        return body;
      });
    });
  }

  function items(layer, params) {
    return fetch("/ogc/collections/" + encodeURIComponent(layer) + "/items?" + params, {
      headers: { Accept: "application/geo+json" }
    }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  }

  /* A readable name of a feature: a name-like text property, else its id. */
  function label(feature) {
    var p = feature.properties || {};
    var keys = Object.keys(p);
    var named = keys.filter(function (k) { return /名稱|name|名$/i.test(k) && p[k]; });
    var text = keys.filter(function (k) { return typeof p[k] === "string" && p[k]; });
    var key = named[0] || text[0];
    return key ? String(p[key]) : String(feature.id);
  }

  function centerOf(geometry) {
    var xs = [], ys = [];
    (function walk(c) {
      if (typeof c[0] === "number") { xs.push(c[0]); ys.push(c[1]); } else { c.forEach(walk); }
    })(geometry.coordinates);
    return {
      center: [(Math.min.apply(null, xs) + Math.max.apply(null, xs)) / 2,
               (Math.min.apply(null, ys) + Math.max.apply(null, ys)) / 2],
      bounds: [[Math.min.apply(null, xs), Math.min.apply(null, ys)],
               [Math.max.apply(null, xs), Math.max.apply(null, ys)]]
    };
  }

  function show(map, feature) {
    map.getSource("marks").setData({ type: "FeatureCollection", features: [feature] });
    if (!feature.geometry) { return; }
    var c = centerOf(feature.geometry);
    if (feature.geometry.type === "Point") {
      map.easeTo({ center: c.center, zoom: Math.max(map.getZoom(), 15) });
    } else {
      map.fitBounds(c.bounds, { padding: 40, maxZoom: 16 });
    }
  }

  function circle(lon, lat, metres) {
    var ring = [];
    for (var i = 0; i <= 64; i++) {
      var a = 2 * Math.PI * i / 64;
      ring.push([lon + metres * Math.cos(a) / (111320 * Math.cos(lat * Math.PI / 180)),
                 lat + metres * Math.sin(a) / 110574]);
    }
    return { type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [ring] } };
  }

  /* -- the widget ------------------------------------------------------------------------- */

  function start(cfg) {
    var container = document.getElementById("map");
    var status = document.getElementById("status");
    var results = document.getElementById("results");
    var events = window.geoportalEvents = [];
    var parentOrigin = null;
    if (window.parent !== window) {
      if (location.ancestorOrigins && location.ancestorOrigins.length) {
        parentOrigin = location.ancestorOrigins[0];
      } else if (document.referrer) {
        try { parentOrigin = new URL(document.referrer).origin; } catch (e) { parentOrigin = null; }
      }
    }
    function post(type, data) {
      var message = Object.assign({ source: "geoportal", map: cfg.map, type: type }, data || {});
      events.push(message);
      if (parentOrigin && parentOrigin !== "null") {
        window.parent.postMessage(message, parentOrigin);
      }
    }
    function say(text) { if (status) { status.textContent = text; } }
    function failed(err) { say(fmt(cfg.text.embed_error, { message: err.message })); }

    document.querySelectorAll(".legend img").forEach(function (img) {
      var hide = function () { img.hidden = true; };
      img.addEventListener("error", hide);
      if (img.complete && img.naturalWidth === 0) { hide(); }
    });

    if (typeof maplibregl === "undefined" || !webgl()) {
      fallback(container, cfg);
      if (cfg.kind === "compare") {
        ["map2", "swipe", "swipe-line"].forEach(function (id) {
          var el = document.getElementById(id);
          if (el) { el.hidden = true; }
        });
      }
      post("ready", { fallback: true });
      return;
    }

    var map = createMap(container, cfg, cfg.kind === "compare" ? [0] : null);
    window.geoportalMap = map;
    var marker = null;
    function mark(lon, lat) {
      if (!marker) { marker = new maplibregl.Marker({ color: "#c00000" }); }
      marker.setLngLat([lon, lat]).addTo(map);
    }

    function list(entries, onChoose) {
      results.replaceChildren();
      entries.forEach(function (entry, n) {
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = entry.text;
        button.addEventListener("click", function () { onChoose(entry, n); });
        li.appendChild(button);
        results.appendChild(li);
      });
    }

    var KINDS = {
      viewer: function () { popups(map, cfg); },
      thematic: function () { popups(map, cfg); },
      picker: function () {
        function pick(lon, lat) {
          mark(lon, lat);
          say(cfg.text.embed_searching);
          Promise.all([
            execute("coordinate-conversion", { points: [lon, lat], source_crs: "EPSG:4326",
                                               target_crs: "EPSG:3826" }),
            execute("district-lookup", { point: [lon, lat], crs: "EPSG:4326" })
          ]).then(function (answers) {
            var xy = answers[0].points, d = answers[1];
            var name = function (part) { return part ? part.name : null; };
            var code = function (part) { return part ? part.code : null; };
            var district = d.found ? { county: name(d.county), town: name(d.town), village: name(d.village) } : null;
            document.getElementById("picked").hidden = false;
            document.getElementById("picked-wgs84").textContent = lon.toFixed(6) + ", " + lat.toFixed(6);
            document.getElementById("picked-twd97").textContent = xy[0].toFixed(2) + ", " + xy[1].toFixed(2);
            document.getElementById("picked-district").textContent = district ?
              [district.county, district.town, district.village].filter(Boolean).join(" ") : cfg.text.embed_no_district;
            say("");
            post("location", {
              wgs84: [lon, lat], twd97: [xy[0], xy[1]], district: district,
              codes: d.found ? { county: code(d.county), town: code(d.town), village: code(d.village) } : null
            });
          }).catch(failed);
        }
        map.on("click", function (e) { pick(e.lngLat.lng, e.lngLat.lat); });
        window.geoportalPick = pick;
        addressSearch(function (c) { map.easeTo({ center: c.point, zoom: Math.max(map.getZoom(), 16) }); pick(c.point[0], c.point[1]); });
      },
      search: function () {
        popups(map, cfg);
        addressSearch(function (c) {
          mark(c.point[0], c.point[1]);
          map.easeTo({ center: c.point, zoom: Math.max(map.getZoom(), 16) });
          post("select", { address: c.address, wgs84: c.point, twd97: c.twd97 });
        });
      },
      nearby: function () {
        popups(map, cfg);
        var layer = cfg.layers[0];
        function near(lon, lat) {
          say(cfg.text.embed_searching);
          execute("spatial-query", { layer: layer.id, point: [lon, lat], distance: cfg.distance, limit: 500 })
            .then(function (fc) {
              var area = circle(lon, lat, cfg.distance);
              var centre = { type: "Feature", properties: {}, geometry: { type: "Point", coordinates: [lon, lat] } };
              map.getSource("marks").setData({ type: "FeatureCollection", features: [area, centre].concat(fc.features) });
              say(fmt(cfg.text.embed_nearby_found, { n: fc.numberMatched, distance: cfg.distance }));
              list(fc.features.map(function (f) {
                return { text: label(f) + "（" + fmt(cfg.text.embed_distance_m, { d: Math.round(f.distance) }) + "）", feature: f };
              }), function (entry) { show(map, entry.feature); post("select", { id: entry.feature.id, properties: entry.feature.properties }); });
              post("nearby", { wgs84: [lon, lat], distance: cfg.distance, count: fc.numberMatched,
                               features: fc.features.map(function (f) { return { id: f.id, label: label(f), distance: f.distance }; }) });
            }).catch(failed);
        }
        map.on("click", function (e) { near(e.lngLat.lng, e.lngLat.lat); });
        window.geoportalNear = near;
      },
      table: function () { table(); },
      compare: function () { compare(); }
    };

    function addressSearch(onChoose) {
      var form = document.getElementById("search-form");
      var mode = document.getElementById("search-mode");
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var q = document.getElementById("search-q").value.trim();
        if (!q) { return; }
        say(cfg.text.embed_searching);
        if (mode && mode.value === "poi") {
          items(cfg.search_layer.id, "f=json&limit=20&q=" + encodeURIComponent(q)).then(function (fc) {
            say(fc.features.length ? fmt(cfg.text.embed_results, { n: fc.features.length }) : cfg.text.embed_no_results);
            var choose = function (entry) { show(map, entry.feature); post("select", { id: entry.feature.id, properties: entry.feature.properties }); };
            var entries = fc.features.map(function (f) { return { text: label(f), feature: f }; });
            list(entries, choose);
            if (entries.length) { choose(entries[0]); }
          }).catch(failed);
          return;
        }
        execute("address-lookup", { address: q, limit: 10 }).then(function (answer) {
          var found = answer.candidates || [];
          say(found.length ? fmt(cfg.text.embed_results, { n: found.length }) : cfg.text.embed_no_results);
          var entries = found.map(function (c) { return { text: c.address, point: c.point, address: c.address, twd97: c.twd97 }; });
          list(entries, onChoose);
          if (entries.length) { onChoose(entries[0]); }
        }).catch(failed);
      });
    }

    function table() {
      var layer = cfg.layers[0];
      var tableEl = document.getElementById("table");
      var columns = layer.fields.slice(0, 8);
      var rows = [], features = [], timer = null;
      var head = tableEl.tHead.insertRow();
      columns.forEach(function (c) {
        var th = document.createElement("th"); th.scope = "col"; th.textContent = c; head.appendChild(th);
      });
      function select(n, scroll) {
        rows.forEach(function (r, i) { r.classList.toggle("selected", i === n); r.setAttribute("aria-selected", String(i === n)); });
        if (n < 0) { return; }
        show(map, features[n]);
        if (scroll) { rows[n].scrollIntoView({ block: "nearest" }); }
        post("select", { id: features[n].id, properties: features[n].properties });
      }
      function load() {
        var params = "f=json&limit=100";
        var q = document.getElementById("filter-q").value.trim();
        if (q) { params += "&q=" + encodeURIComponent(q); }
        if (document.getElementById("filter-view").checked) {
          var b = map.getBounds();
          params += "&bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (x) { return x.toFixed(6); }).join(",");
        }
        say(cfg.text.embed_searching);
        items(layer.id, params).then(function (fc) {
          features = fc.features;
          var body = tableEl.tBodies[0];
          body.replaceChildren();
          rows = features.map(function (f, n) {
            var tr = body.insertRow();
            tr.tabIndex = 0;
            tr.setAttribute("aria-selected", "false");
            columns.forEach(function (c) { var v = f.properties[c]; tr.insertCell().textContent = v === null || v === undefined ? "" : String(v); });
            tr.addEventListener("click", function () { select(n, false); });
            tr.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(n, false); } });
            return tr;
          });
          say(fmt(cfg.text.embed_table_count, { n: features.length }) +
              (fc.numberMatched !== undefined ? " / " + fc.numberMatched : ""));
          post("table", { count: features.length, matched: fc.numberMatched });
        }).catch(failed);
      }
      var ids = queryable(cfg);
      map.on("click", function (e) {
        var found = map.queryRenderedFeatures(e.point, { layers: ids.filter(function (i) { return map.getLayer(i); }) });
        if (!found.length) { return; }
        var p = found[0].properties;
        var n = features.findIndex(function (f) {
          return columns.every(function (c) { return !(c in p) || String(f.properties[c]) === String(p[c]); });
        });
        if (n >= 0) { select(n, true); }
      });
      map.on("moveend", function () {
        if (!document.getElementById("filter-view").checked) { return; }
        clearTimeout(timer); timer = setTimeout(load, 250);
      });
      document.getElementById("filter-form").addEventListener("submit", function (e) { e.preventDefault(); load(); });
      document.getElementById("filter-view").addEventListener("change", load);
      map.once("load", load);
    }

    function compare() {
      var over = document.getElementById("map2");
      var map2 = createMap(over, cfg, [1]);
      window.geoportalMaps = [map, map2];
      var busy = false;
      function follow(a, b) {
        a.on("move", function () {
          if (busy) { return; }
          busy = true;
          b.jumpTo({ center: a.getCenter(), zoom: a.getZoom(), bearing: a.getBearing(), pitch: a.getPitch() });
          busy = false;
        });
      }
      follow(map, map2); follow(map2, map);
      var swipe = document.getElementById("swipe"), line = document.getElementById("swipe-line");
      function clip() {
        over.style.clipPath = "inset(0 0 0 " + swipe.value + "%)";
        line.style.left = swipe.value + "%";
      }
      swipe.addEventListener("input", clip);
      clip();
      popups(map, cfg);
      popups(map2, cfg);
    }

    (KINDS[cfg.kind] || KINDS.viewer)();
    map.once("load", function () { post("ready", { kind: cfg.kind }); });
    map.on("moveend", function () {
      var c = map.getCenter();
      post("view", { center: [c.lng, c.lat], zoom: map.getZoom() });
    });
  }

  window.geoportalWidget = { buildStyle: buildStyle, createMap: createMap, webgl: webgl, queryable: queryable };
  var node = document.getElementById("embed-config");
  if (node) { start(JSON.parse(node.textContent)); }
})();
