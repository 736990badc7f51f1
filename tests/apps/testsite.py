"""A site with one of everything the core must handle. Tests copy it into a project folder and
build it through the real ``flask`` CLI.

Environment variables change it between builds:
- SITE_VERSION: text shown on /about/, to tell builds apart.
- SITE_BREAK: adds one broken route: raise, status, nopost, nopaths, setcookie, session,
  readcookie (which only warns), defer (a defer() of a view that is no island), many (25
  failing pages), slow (a page that takes two minutes), big (3 MB), exit (a view that ends
  its process), sysexit, warn (a view's own warning), refused (a generator whose database is
  down).
- SITE_GONE=hello,guide: /hello (and /guide/) answer 404. SITE_GUIDE=short: /guide/ too short
  to compress. SITE_SHAPE=folder: /shape/ instead of /shape.
- SITE_CALL_LOG: a file every view appends its endpoint to, to prove which views ran.
- SITE_HOOK: the X-Hook header every response gets, in place of its hook's word.
"""

from __future__ import annotations

import os
import time
import warnings

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)
from isles import isles
from lab import lab
from widgets import widgets

from flask_ondemand import Freezer, OnDemand, cookies, prerender, response
from flask_ondemand import redirect as ondemand_redirect

PRODUCTS = {1: "Kettle", 2: "Teapot", 3: "Cup"}
CSP = "default-src 'self'"
POSTS = {"first": "First post", "second": "Second post"}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-secret"
    app.config["ONDEMAND_REDIRECT_HOSTS"] = ["docs.example.com"]
    app.config.from_prefixed_env()  # FLASK_ONDEMAND_OUT_DIR=... and the like
    OnDemand(app)
    freezer = Freezer(app)

    Stamp(app)

    @app.cli.command("count-products")
    def count_products() -> None:
        """An app CLI command, to show that flask_ondemand leaves the app's CLI alone."""
        print(f"{len(PRODUCTS)} products")

    @app.before_request
    def log_call() -> None:
        log = os.environ.get("SITE_CALL_LOG")
        if log and request.endpoint:
            with open(log, "a") as file:
                file.write(f"{request.endpoint} {request.method}\n")

    @app.after_request
    def mark_response(response: Response) -> Response:
        response.headers["X-Hook"] = os.environ.get("SITE_HOOK") or g.get("hook", "missing")
        return response

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "Custom 404 page", 404

    @app.route("/")
    def index() -> str:
        return render_template("index.html")

    @app.route("/about/")
    def about() -> str:
        return f"About, version {os.environ.get('SITE_VERSION', '1')}"

    @app.route("/terms/")
    def terms() -> str:
        # Headers a prerendered page sets are kept in the manifest and sent with its file.
        response.headers["X-Robots-Tag"] = "noindex"
        response.headers["Cache-Control"] = "public, max-age=600"
        return "Terms"

    @app.route("/secure/")
    def secure() -> Response:
        # A view's own Response with its own headers: they are the file's.
        page = Response("Secure page", headers={"Content-Security-Policy": "default-src 'none'"})
        page.headers["Referrer-Policy"] = "no-referrer"
        return page

    @app.route("/tuple-headers/")
    def tuple_headers() -> tuple[str, dict[str, str]]:
        return "Tuple headers", {"X-From-Tuple": "yes"}

    @app.route("/manual/")
    def manual() -> Response:
        # Long enough to have a .gz copy; its own Vary must be merged with Accept-Encoding.
        text = "<h1>Manual</h1>" + "<p>Each language has its own manual page.</p>" * 60
        return Response(text, headers={"Vary": "Accept-Language"})

    @app.route("/guide/")
    def guide() -> str:
        # Long enough (over 1 KiB of text) for the build to precompress it, unless short.
        if "guide" in os.environ.get("SITE_GONE", "").split(","):
            abort(404)
        times = 1 if os.environ.get("SITE_GUIDE") == "short" else 60
        return "<h1>Guide</h1>" + "<p>Read this guide slowly and carefully.</p>" * times

    if os.environ.get("SITE_SHAPE") == "folder":
        app.add_url_rule("/shape/", "shape", lambda: "a folder page")
    else:
        app.add_url_rule("/shape", "shape", lambda: "a file page")

    # A page, and a page in a folder of its name: /docs's file is docs/index.html.
    app.add_url_rule("/docs", "docs", lambda: "Docs")
    app.add_url_rule("/docs/popup", "docs_popup", lambda: "Docs popup")

    @app.route("/hello")
    def hello() -> str:
        if "hello" in os.environ.get("SITE_GONE", "").split(","):
            abort(404)
        return "<h1>Hello</h1>"

    @app.route("/feed")
    def feed() -> Response:
        return Response("<feed/>", mimetype="application/atom+xml")

    @app.route("/robots.txt")
    def robots() -> Response:
        return Response("User-agent: *\n", mimetype="text/plain")

    @app.route("/data.json")
    def data() -> dict[str, object]:
        return {"products": sorted(PRODUCTS.values())}

    @app.route("/products/<int:number>/")
    def product(number: int) -> str:
        if number not in PRODUCTS:
            abort(404)
        return f"Product {PRODUCTS[number]}"

    @freezer.register_generator
    def product_urls():  # type: ignore[no-untyped-def]
        # Frozen-Flask's way: 1 and 2 come from here, 3 from a url_for on the index page.
        yield "product", {"number": 1}
        yield "product", {"number": 2}

    @app.route("/posts/<slug>/")
    @prerender(paths=lambda: [{"slug": slug} for slug in POSTS])
    def post(slug: str) -> str:
        if slug not in POSTS:
            abort(404)
        return POSTS[slug]

    @app.route("/pages/", defaults={"number": 1})
    @app.route("/pages/<int:number>/")
    def pages(number: int) -> str:
        return f"Page {number}"

    @app.route("/lang/<any(en, fr):lang>/")
    def language(lang: str) -> str:
        return f"Language {lang}"

    @app.route("/old/")
    def old() -> Response:
        return redirect(url_for("about"), 301)

    @app.route("/account/")
    @prerender(False)
    def account() -> str:
        # url_for still builds URLs of prerendered pages in the slim app.
        return f"Account of {session.get('user', 'nobody')}; see {url_for('about')}"

    @app.route("/links/")
    @prerender(False)
    def links() -> str:
        # Built for each request's own host: the served app keeps URLs by host, among others.
        return f"{url_for('about', _external=True)} {url_for('product', number=7)}"

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        if request.method == "POST":
            session["user"] = request.form["user"]
            return redirect(url_for("account"), 303)
        return "Login form"

    @app.route("/contact/", methods=["GET", "POST"])
    @prerender(True)
    def contact() -> str:
        if request.method == "POST":
            return f"Thanks, {request.form.get('name', '')}"
        return "Contact form"

    # Flask's documented pattern for a rule whose view comes later; here it never does.
    app.add_url_rule("/ghost/", endpoint="ghost")

    cart = prerender(False)(Blueprint("cart", __name__, url_prefix="/cart"))

    @cart.route("/")
    def show() -> str:
        return f"Cart: {session.get('cart', [])}"

    @cart.route("/add", methods=["POST"])
    def add() -> Response:
        session["cart"] = [*session.get("cart", []), request.form["item"]]
        return redirect(url_for("cart.show"), 303)

    @cart.before_app_request
    def cart_hook() -> None:
        # A blueprint's app-wide hook: it must run for every on-demand request.
        g.hook = "ran"

    app.register_blueprint(cart)
    app.register_blueprint(widgets)
    app.register_blueprint(lab)
    app.register_blueprint(isles)

    @app.route("/moved/")
    def moved() -> Response:
        # The helper's redirect in a prerendered route: a 308 in the manifest.
        return ondemand_redirect(url_for("about"), 308)

    _add_breakage(app, freezer, os.environ.get("SITE_BREAK", ""))
    return app


class Stamp:
    """A stand-in for a third-party extension: it stamps every response it sees, and adds the
    security headers Flask-Talisman adds, from an after_request hook as Talisman does (a
    view's own Content-Security-Policy wins, as with Talisman's per-view options)."""

    def __init__(self, app: Flask) -> None:
        app.extensions["stamp"] = self
        app.after_request(self.stamp)

    def stamp(self, response: Response) -> Response:
        response.headers["X-Stamp"] = "extension"
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response


def _add_breakage(app: Flask, freezer: Freezer, kind: str) -> None:
    if kind == "raise":

        @app.route("/broken/")
        def broken() -> str:
            return str(1 / 0)

    elif kind == "status":

        @app.route("/teapot/")
        def teapot() -> tuple[str, int]:
            return "I'm a teapot", 418

    elif kind == "nopost":

        @app.route("/submit", methods=["POST"])
        @prerender(True)
        def submit() -> str:
            return "never"

    elif kind == "nopaths":

        @app.route("/things/<name>/")
        @prerender(True)
        def thing(name: str) -> str:
            return name

    elif kind == "setcookie":

        @app.route("/welcome/")
        def welcome() -> str:
            cookies.set("seen", "1")
            return "Welcome"

    elif kind == "session":

        @app.route("/welcome/")
        def welcome_session() -> str:
            session["seen"] = True
            return "Welcome"

    elif kind == "slow":

        @app.route("/slow/")
        def slow() -> str:
            time.sleep(120)  # long enough to be killed in the middle of the build
            return "slow"

    elif kind == "big":

        @app.route("/big/")
        def big() -> str:
            return "x" * 3_000_000  # more than the little disk of the fault tests holds

    elif kind == "exit":

        @app.route("/bye/")
        def bye() -> str:
            os._exit(3)  # the process rendering it dies on the spot

    elif kind == "sysexit":

        @app.route("/bye/")
        def sys_exit() -> str:
            raise SystemExit(3)

    elif kind == "warn":

        @app.route("/careful/")
        def careful() -> str:
            warnings.warn("a view's own warning", UserWarning, stacklevel=1)
            return "careful"

    elif kind == "refused":

        @freezer.register_generator
        def from_the_database():  # type: ignore[no-untyped-def]
            raise ConnectionRefusedError("database down")

    elif kind == "many":

        @app.route("/many/<int:number>/")
        @prerender(paths=lambda: [{"number": number} for number in range(25)])
        def many(number: int) -> str:
            return str(number / 0)

    elif kind == "defer":

        @app.route("/deferred/")
        def deferred() -> str:
            return render_template_string("{{ defer('about') }}")  # about is no island

    elif kind == "readcookie":

        @app.route("/greeting/")
        def greeting() -> str:
            name = cookies.get("name")
            agent = request.headers.get("User-Agent")
            return f"Hello {name.value if name else 'stranger'} on {agent}"
