// A JavaScript Worker in place of the cloudflare adapter's src/entry.py, for `wrangler dev`.
//
// Why a stand-in: Python Workers cannot run here, as workerd downloads its Pyodide bundle at
// run time. Everything else is Cloudflare's own: wrangler dev (workerd) serves the assets
// with the generated _redirects, _headers and run_worker_first. This Worker decides as
// entry.py does, from the same data (ASSET_URLS, LIVE_COOKIES, LIVE_PAGES, LIVE_QUERY), with
// the wsgi build of the same site (on gunicorn, at ORIGIN) as the app: a GET of a page of a
// live_query route with a query string goes to the app; a GET of a page that
// run_worker_first sends here for its other methods goes back to the assets; a GET of a page
// of a route that takes live cookies goes to the app with one of those cookies, and to the
// assets (then the app, if no asset answers) without, as does a live_query page's without a
// query; anything else goes to the app.
// entry.py itself runs under CPython against workers-runtime-sdk's own workers/wsgi.py
// (tests/test_adapters_cloudflare.py).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const assetUrls = JSON.parse(env.ASSET_URLS);
    const liveCookies = JSON.parse(env.LIVE_COOKIES);
    const livePages = JSON.parse(env.LIVE_PAGES).map((pattern) => new RegExp(pattern));
    const liveQuery = JSON.parse(env.LIVE_QUERY);
    if (["GET", "HEAD"].includes(request.method)) {
      const path = decodeURIComponent(url.pathname);
      const queried = liveQuery.includes(path);
      if (queried && url.search !== "") {
        return toApp(request, url, env);
      }
      if (assetUrls.includes(url.pathname)) {
        return env.ASSETS.fetch(request);
      }
      const cookies = (request.headers.get("Cookie") || "")
        .split(";")
        .map((pair) => pair.trim().split("=")[0]);
      const livePage = livePages.some((page) => page.test(path));
      const live = livePage && cookies.some((name) => liveCookies.includes(name));
      if ((livePage || queried) && !live) {
        const asset = await env.ASSETS.fetch(request);
        if (asset.status !== 404) {
          return asset;
        }
      }
    }
    return toApp(request, url, env);
  },
};

// The request, as the wsgi build on gunicorn gets it behind the Worker.
async function toApp(request, url, env) {
  const headers = new Headers(request.headers);
  headers.set("X-Forwarded-Proto", url.protocol.slice(0, -1));
  const init = { method: request.method, headers, redirect: "manual" };
  if (!["GET", "HEAD"].includes(request.method)) {
    init.body = await request.arrayBuffer();
  }
  return fetch(new URL(url.pathname + url.search, env.ORIGIN), init);
}
