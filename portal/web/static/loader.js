/* geoportal widget loader.
   <script src="https://PORTAL/static/loader.js" data-map="MAP-ID"></script>
   inserts the map's widget (an iframe of PORTAL/embed/MAP-ID) right after the script, and
   relays the widget's messages to the host page: as DOM events "geoportal:<type>" (bubbling
   from the iframe; event.detail is the message) and to handlers registered with
   geoportal.on(type, fn) ("*" for every type). Optional attributes: data-lang ("en"),
   data-width, data-height, data-title. Only messages from the portal's origin and from a
   widget this loader inserted are relayed. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.map) { return; }
  var origin = new URL(script.src, window.location.href).origin;
  var api = window.geoportal;
  if (!api || !api.frames) {
    api = window.geoportal = {
      frames: [],
      origins: [],
      handlers: {},
      on: function (type, fn) { (api.handlers[type] = api.handlers[type] || []).push(fn); return api; },
      off: function (type, fn) {
        api.handlers[type] = (api.handlers[type] || []).filter(function (h) { return h !== fn; });
        return api;
      }
    };
    window.addEventListener("message", function (e) {
      var data = e.data;
      if (api.origins.indexOf(e.origin) < 0 || !data || data.source !== "geoportal") { return; }
      var frame = api.frames.filter(function (f) { return f.contentWindow === e.source; })[0];
      if (!frame) { return; }
      frame.dispatchEvent(new CustomEvent("geoportal:" + data.type, { detail: data, bubbles: true }));
      (api.handlers[data.type] || []).concat(api.handlers["*"] || []).forEach(function (fn) {
        try { fn(data, frame); } catch (err) { setTimeout(function () { throw err; }); }
      });
    });
  }
  if (api.origins.indexOf(origin) < 0) { api.origins.push(origin); }
  var frame = document.createElement("iframe");
  var query = script.dataset.lang ? "?lang=" + encodeURIComponent(script.dataset.lang) : "";
  frame.src = origin + "/embed/" + encodeURIComponent(script.dataset.map) + query;
  frame.title = script.dataset.title || "地圖 Map";
  frame.width = script.dataset.width || "100%";
  frame.height = script.dataset.height || "480";
  frame.style.border = "0";
  frame.className = "geoportal-widget";
  frame.setAttribute("data-map", script.dataset.map);
  script.parentNode.insertBefore(frame, script.nextSibling);
  api.frames.push(frame);
})();
