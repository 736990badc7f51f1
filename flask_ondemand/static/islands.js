// flask_ondemand's server islands. Each <ondemand-island data-src="..."> placeholder a page's
// defer() wrote is fetched with the visitor's cookies, and its fragment takes the placeholder's
// place. Until then, on an error, and without JavaScript, the placeholder shows its fallback.
// A fragment's scripts do not run: a page's own script files do that.
(function () {
  "use strict";

  function load(island) {
    fetch(island.getAttribute("data-src"), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status + " from " + response.url);
        }
        return response.text();
      })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html;
        island.replaceWith(template.content);
      })
      .catch(function () {
        // The fallback stays: the page is still whole without the island.
      });
  }

  function loadAll() {
    document.querySelectorAll("ondemand-island[data-src]").forEach(load);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loadAll);
  } else {
    loadAll();
  }
})();
