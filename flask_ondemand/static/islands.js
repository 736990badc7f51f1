// flask_ondemand's server islands. The <ondemand-island data-src="..."> placeholders a page's
// defer() wrote are asked for in one request (the script tag's data-islands URL), with the
// visitor's cookies, and each fragment takes its placeholder's place. One request, not one an
// island, so that what one island writes to the session (a message read, a CSRF token made)
// is seen by the next, and one answer sets the cookie. Until then, for an island that fails,
// and without JavaScript, a placeholder shows its fallback. A fragment's scripts do not run:
// a page's own script files do that.
(function () {
  "use strict";

  var batch = document.currentScript && document.currentScript.getAttribute("data-islands");

  function place(island, html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    island.replaceWith(template.content);
  }

  function loadAll() {
    var islands = Array.prototype.slice.call(
      document.querySelectorAll("ondemand-island[data-src]")
    );
    if (!batch || islands.length === 0) {
      return;
    }
    var query = islands.map(function (island) {
      return "i=" + encodeURIComponent(island.getAttribute("data-src"));
    });
    // Their number, which the server checks: a proxy that keeps one value of a name would
    // otherwise put each answer after a missing one in the wrong placeholder.
    query.push("n=" + islands.length);
    fetch(batch + "?" + query.join("&"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status + " from " + response.url);
        }
        return response.json();
      })
      .then(function (answer) {
        if (answer.islands.length !== islands.length) {
          throw new Error(answer.islands.length + " answers for " + islands.length + " islands");
        }
        answer.islands.forEach(function (island, index) {
          if (island.status >= 200 && island.status < 300) {
            place(islands[index], island.html);
          }
        });
      })
      .catch(function () {
        // The fallbacks stay: the page is still whole without its islands.
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loadAll);
  } else {
    loadAll();
  }
})();
