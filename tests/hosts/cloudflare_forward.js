// A JavaScript Worker in place of the cloudflare adapter's src/entry.py, for `wrangler dev`.
//
// Why a stand-in: Python Workers cannot run here, as workerd downloads its Pyodide bundle at
// run time. Everything else is Cloudflare's own: wrangler dev (workerd) serves the assets
// with the generated _redirects, _headers and run_worker_first. This Worker does what
// entry.py does, with the wsgi build of the same site (on gunicorn, at ORIGIN) as the app:
// a GET of a page that run_worker_first sends here goes back to the assets; anything else
// goes to the app. entry.py itself runs under CPython against workers-runtime-sdk's own
// workers/wsgi.py (tests/test_adapters_cloudflare.py).
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const assetUrls = JSON.parse(env.ASSET_URLS);
    if (["GET", "HEAD"].includes(request.method) && assetUrls.includes(url.pathname)) {
      return env.ASSETS.fetch(request);
    }
    const headers = new Headers(request.headers);
    headers.set("X-Forwarded-Proto", url.protocol.slice(0, -1));
    const init = { method: request.method, headers, redirect: "manual" };
    if (!["GET", "HEAD"].includes(request.method)) {
      init.body = await request.arrayBuffer();
    }
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), init);
  },
};
