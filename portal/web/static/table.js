/* The dataset page's attribute table: the server rendered the first rows from the store;
   this replaces them with the first features of the layer from OGC API Features. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("table-config").textContent);
  var table = document.getElementById("attribute-table");
  if (!table || !window.fetch) { return; }

  function cell(value) {
    if (value === null || value === undefined) { return ""; }
    if (typeof value === "object") { return JSON.stringify(value); }
    return String(value);
  }

  fetch(config.items, { headers: { Accept: "application/geo+json" } })
    .then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    })
    .then(function (doc) {
      var features = doc.features || [];
      if (!features.length) { return; }
      var columns = [];
      table.querySelectorAll("thead th").forEach(function (th) { columns.push(th.textContent); });
      features.forEach(function (f) {
        Object.keys(f.properties || {}).forEach(function (k) {
          if (columns.indexOf(k) < 0) { columns.push(k); }
        });
      });
      var head = document.createElement("tr");
      columns.forEach(function (c) {
        var th = document.createElement("th");
        th.scope = "col";
        th.textContent = c;
        head.appendChild(th);
      });
      var body = document.createElement("tbody");
      features.forEach(function (f) {
        var row = body.insertRow();
        columns.forEach(function (c) { row.insertCell().textContent = cell((f.properties || {})[c]); });
      });
      table.tHead.replaceChildren(head);
      table.tBodies[0].replaceWith(body);
      table.caption.textContent = config.caption.replace("{n}", String(features.length));
      table.dataset.source = "ogc";
    })
    .catch(function () { /* the server-rendered rows stay */ });
})();
