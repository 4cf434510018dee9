/* The map composer (/maps/new, /maps/{map}/edit): pick layers, order and style them, choose
   the widget kind and the initial view, save the map (JSON to /maps) and show the embed
   snippets. Settings come from #composer-config (portal/web/embed.py); the preview map is
   drawn with embed.js's style builder, from the configuration /maps/preview answers. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("composer-config").textContent);
  var T = config.text;
  var W = window.geoportalWidget;
  var $ = function (id) { return document.getElementById(id); };
  var fmt = function (text, values) {
    return text.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  };
  if (typeof maplibregl === "undefined" || !W || !W.webgl()) { return; }
  $("needs-js").hidden = true;
  var form = $("composer");
  form.hidden = false;

  var doc = config.doc;
  var state = {
    id: doc ? doc.id : null,
    layers: doc ? doc.layers.map(function (l) {
      return { id: l.id, title: l.id, kind: "", geometry: "", fields: [], color: l.color,
               opacity: l.opacity, thematic: l.thematic };
    }) : [],
    view: doc ? doc.view : null
  };
  var searchLayer = doc ? doc.search_layer : "";

  function request(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRF-Token": config.csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (answer) {
        if (!r.ok) { throw new Error(answer.detail || answer.title || String(r.status)); }
        return answer;
      });
    });
  }

  /* -- the document ---------------------------------------------------------------------- */

  function current() {
    var kind = form.querySelector("input[name=kind]:checked");
    var origins = $("map-origins").value.split(/\s+/).filter(Boolean);
    return {
      title: $("map-title").value.trim(),
      organization: $("map-org").value,
      kind: kind ? kind.value : "viewer",
      public: $("map-public").checked,
      layers: state.layers.map(function (l) {
        return { id: l.id, color: l.color || null, opacity: Number(l.opacity), thematic: l.thematic || null };
      }),
      view: state.view,
      origins: origins.length ? origins : ["'self'"],
      basemap: $("map-basemap").value,
      distance: Number($("map-distance").value) || 500,
      search_layer: $("map-search-layer").value
    };
  }

  /* -- preview --------------------------------------------------------------------------- */

  var empty = { layers: [], glyphs: "/static/glyphs/{fontstack}/{range}.pbf", basemap: null,
                view: { center: [120.68, 24.15], zoom: 9 } };
  var map = W.createMap($("preview"), empty);
  window.geoportalMap = map;
  var fitted = !!state.view;
  if (state.view) { map.jumpTo({ center: state.view.center, zoom: state.view.zoom }); }
  var timer = null;

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var body = current();
      if (!body.layers.length) { map.setStyle(W.buildStyle(empty)); return; }
      body.title = body.title || "preview";
      request("POST", "/maps/preview", body).then(function (cfg) {
        cfg.layers.forEach(function (l, n) {
          var s = state.layers[n];
          if (s && s.id === l.id) { s.title = l.title; s.kind = l.kind; s.geometry = l.geometry; s.fields = l.fields; }
        });
        renderLayers(false);
        map.setStyle(W.buildStyle(cfg));
        if (!fitted && cfg.bounds) {
          var b = cfg.bounds;
          map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 0 });
          fitted = true;
        }
        $("save-status").textContent = "";
      }).catch(function (err) { $("save-status").textContent = err.message; });
    }, 150);
  }

  function showView() {
    $("view-text").textContent = state.view ? fmt(T.composer_js_view, {
      lon: state.view.center[0].toFixed(5), lat: state.view.center[1].toFixed(5),
      zoom: state.view.zoom.toFixed(2)
    }) : $("view-text").dataset.none;
  }
  $("view-text").dataset.none = $("view-text").textContent;
  $("use-view").addEventListener("click", function () {
    var c = map.getCenter();
    state.view = { center: [Number(c.lng.toFixed(6)), Number(c.lat.toFixed(6))], zoom: Number(map.getZoom().toFixed(3)) };
    showView();
  });
  $("clear-view").addEventListener("click", function () { state.view = null; showView(); });
  showView();

  /* -- layers ---------------------------------------------------------------------------- */

  function button(text, onClick, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (label) { b.setAttribute("aria-label", label); }
    b.addEventListener("click", onClick);
    return b;
  }

  function row() {
    var div = document.createElement("div");
    div.className = "row";
    for (var i = 0; i < arguments.length; i++) { div.appendChild(arguments[i]); }
    return div;
  }

  function labelled(text, input, id) {
    input.id = id;
    var l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = text;
    return [l, input];
  }

  function thematicClasses(layer, n) {
    var ul = document.createElement("ul");
    ul.className = "classes";
    var t = layer.thematic;
    var entries = t.mode === "categorized" ? Object.keys(t.values).map(function (v) { return [v, t.values[v]]; })
      : t.colors.map(function (c, i) {
          var lo = i ? t.breaks[i - 1] : null, hi = i < t.breaks.length ? t.breaks[i] : null;
          return [(lo === null ? "< " + hi : hi === null ? "≥ " + lo : lo + " – < " + hi), c, i];
        });
    entries.forEach(function (e, k) {
      var li = document.createElement("li");
      var input = document.createElement("input");
      input.type = "color";
      input.value = e[1];
      input.addEventListener("change", function () {
        if (t.mode === "categorized") { t.values[e[0]] = input.value; } else { t.colors[e[2]] = input.value; }
        refresh();
      });
      var parts = labelled(e[0], input, "class-" + n + "-" + k);
      li.appendChild(parts[1]); li.appendChild(parts[0]);
      ul.appendChild(li);
    });
    return ul;
  }

  function layerItem(layer, n) {
    var li = document.createElement("li");
    li.dataset.id = layer.id;
    var title = document.createElement("strong");
    title.textContent = layer.title;
    li.appendChild(title);
    li.appendChild(row(
      button(T.composer_js_up, function () { move(n, -1); }, T.composer_js_up + " " + layer.title),
      button(T.composer_js_down, function () { move(n, 1); }, T.composer_js_down + " " + layer.title),
      button(T.composer_js_remove, function () { state.layers.splice(n, 1); renderLayers(true); },
             T.composer_js_remove + " " + layer.title)));
    if (layer.kind === "vector") {
      var own = document.createElement("input");
      own.type = "checkbox";
      own.checked = !layer.color;
      var colour = document.createElement("input");
      colour.type = "color";
      colour.value = layer.color || "#1f78b4";
      colour.disabled = !layer.color;
      own.addEventListener("change", function () {
        layer.color = own.checked ? null : colour.value;
        if (!own.checked) { layer.thematic = null; }
        renderLayers(true);
      });
      colour.addEventListener("change", function () { layer.color = colour.value; refresh(); });
      li.appendChild(row.apply(null, [own, labelFor(own, T.composer_js_own_style, "own-" + n)]
        .concat(labelled(T.composer_js_color, colour, "color-" + n))));
    }
    var opacity = document.createElement("input");
    opacity.type = "range"; opacity.min = "0"; opacity.max = "1"; opacity.step = "0.05";
    opacity.value = String(layer.opacity);
    opacity.addEventListener("change", function () { layer.opacity = Number(opacity.value); refresh(); });
    li.appendChild(row.apply(null, labelled(T.composer_js_opacity, opacity, "opacity-" + n)));
    if (layer.kind === "vector" && layer.fields.length) {
      var select = document.createElement("select");
      [""].concat(layer.fields).forEach(function (f) {
        var o = document.createElement("option");
        o.value = f; o.textContent = f || T.composer_js_thematic_none;
        o.selected = layer.thematic ? layer.thematic.field === f : f === "";
        select.appendChild(o);
      });
      select.addEventListener("change", function () {
        if (!select.value) { layer.thematic = null; renderLayers(true); return; }
        request("GET", "/maps/layers/" + encodeURIComponent(layer.id) + "/fields/" + encodeURIComponent(select.value))
          .then(function (t) { layer.thematic = t; layer.color = null; renderLayers(true); })
          .catch(function (err) { $("save-status").textContent = err.message; });
      });
      li.appendChild(row.apply(null, labelled(T.composer_js_thematic, select, "thematic-" + n)));
      if (layer.thematic) { li.appendChild(thematicClasses(layer, n)); }
    }
    return li;
  }

  function labelFor(input, text, id) {
    input.id = id;
    var l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = text;
    return l;
  }

  function move(n, by) {
    var to = n + by;
    if (to < 0 || to >= state.layers.length) { return; }
    var item = state.layers.splice(n, 1)[0];
    state.layers.splice(to, 0, item);
    renderLayers(true);
  }

  function renderLayers(changed) {
    var list = $("layer-list");
    list.replaceChildren.apply(list, state.layers.map(layerItem));
    var select = $("map-search-layer");
    var chosen = select.value || searchLayer;
    var options = [select.options[0]];
    state.layers.forEach(function (l) {
      if (l.kind !== "vector") { return; }
      var o = document.createElement("option");
      o.value = l.id; o.textContent = l.title; o.selected = l.id === chosen;
      options.push(o);
    });
    select.replaceChildren.apply(select, options);
    if (changed) { refresh(); }
  }

  function add(found) {
    if (state.layers.some(function (l) { return l.id === found.id; })) { return; }
    state.layers.push({ id: found.id, title: found.title, kind: found.kind, geometry: found.geometry,
                        fields: (found.fields || []).map(function (f) { return f.name || f; }),
                        color: null, opacity: 1, thematic: null });
    renderLayers(true);
  }

  function search() {
    var results = $("layer-results");
    results.textContent = T.composer_js_searching;
    request("GET", "/maps/layers?q=" + encodeURIComponent($("layer-q").value.trim())).then(function (answer) {
      results.replaceChildren();
      if (!answer.layers.length) { results.textContent = T.composer_js_no_results; return; }
      answer.layers.forEach(function (found) {
        var li = document.createElement("li");
        li.appendChild(document.createTextNode(found.title + "（" + found.agency + "） "));
        li.appendChild(button(T.composer_js_add, function () { add(found); }, T.composer_js_add + " " + found.title));
        results.appendChild(li);
      });
    }).catch(function (err) { results.textContent = err.message; });
  }
  $("layer-search").addEventListener("click", search);
  $("layer-q").addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); search(); }
  });
  ["map-basemap"].forEach(function (id) { $(id).addEventListener("change", refresh); });

  /* -- save ------------------------------------------------------------------------------ */

  function saved(answer) {
    state.id = answer.id;
    $("save-status").textContent = fmt(T.composer_js_saved, { id: answer.id });
    $("snippets").hidden = false;
    $("snippet-iframe").value = answer.snippets.iframe;
    $("snippet-script").value = answer.snippets.script;
    $("link-embed").href = answer.links.embed;
    $("link-json").href = answer.links.self;
    if (window.location.pathname !== "/maps/" + answer.id + "/edit") {
      window.history.replaceState(null, "", "/maps/" + answer.id + "/edit" + window.location.search.replace(/([?&])layer=[^&]*&?/, "$1").replace(/[?&]$/, ""));
    }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = current();
    if (!body.layers.length) { $("save-status").textContent = T.composer_js_no_layers; return; }
    $("save-status").textContent = T.composer_js_saving;
    var call = state.id ? request("PUT", "/maps/" + state.id, body) : request("POST", "/maps", body);
    call.then(saved).catch(function (err) {
      $("save-status").textContent = fmt(T.composer_js_failed, { message: err.message });
    });
  });

  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var area = $(b.dataset.copy);
      area.select();
      var done = function () { b.textContent = T.composer_js_copied; };
      if (navigator.clipboard) { navigator.clipboard.writeText(area.value).then(done, done); } else { done(); }
    });
  });

  renderLayers(false);
  if (config.add_layer) {
    request("GET", "/maps/layers?q=" + encodeURIComponent(config.add_layer)).then(function (answer) {
      var hit = answer.layers.filter(function (l) { return l.id === config.add_layer; })[0];
      if (hit) { add(hit); }
    });
  }
  if (state.layers.length) { refresh(); }
  if (doc) { saved({ id: doc.id, snippets: config.snippets || { iframe: "", script: "" }, links: { embed: "/embed/" + doc.id, self: "/maps/" + doc.id } }); $("save-status").textContent = ""; }
})();
