/* Portal pages: small enhancements of pages that work without JavaScript: copy buttons
   beside the API snippets of a dataset page. (The search page's sort list is applied with
   its button, never on change: WCAG 3.2.2.) */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  var labels = document.getElementById("copy-text");
  if (labels) {
    var text = JSON.parse(labels.textContent);
    document.querySelectorAll(".snippet").forEach(function (snippet) {
      var code = snippet.querySelector("code");
      var term = snippet.querySelector("dt");
      var button = document.createElement("button");
      var status = document.createElement("span");
      button.type = "button";
      button.className = "copy secondary";
      button.textContent = text.copy;
      button.setAttribute("aria-label", text.copy + " " + term.textContent);
      status.className = "copy-status";
      status.setAttribute("role", "status");
      button.addEventListener("click", function () {
        copyText(code.textContent).then(function () {
          status.textContent = text.copied;
        }, function () {
          status.textContent = text.failed;
          var range = document.createRange();
          range.selectNodeContents(code);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
        });
      });
      code.parentNode.appendChild(button);
      code.parentNode.appendChild(status);
    });
  }
})();
