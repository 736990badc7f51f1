"""On-demand routes that exercise the page helpers: cookies, response, redirect, stream."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, render_template, request

from flask_ondemand import (
    HeadersSentError,
    cookies,
    prerender,
    redirect,
    response,
    safe_redirect,
    stream,
)

lab = prerender(False)(Blueprint("lab", __name__, url_prefix="/lab"))


@lab.route("/visits")
def visits() -> str:
    # Astro's counter: a missing or non-numeric cookie counts from 0.
    count = 0
    if cookies.has("visits"):
        number = (cookies.get("visits") or _zero).number()
        if number == number:  # not NaN
            count = int(number) + 1
    cookies.set("visits", str(count))
    return f"Visits: {count}"


_zero = type("Zero", (), {"number": lambda self: 0.0})()


@lab.route("/cookies/set", methods=["POST"])
def set_cookie() -> dict[str, object]:
    form = request.form
    signed = form.get("signed") == "1"
    value: object = form["value"]
    if form.get("as") == "json":
        value = {"items": form["value"].split(","), "n": len(form["value"])}
    options = {}
    if "max_age" in form:
        options["max_age"] = int(form["max_age"])
    cookies.set(form["name"], value, signed=signed, **options)  # type: ignore[arg-type]
    seen = cookies.get(form["name"], signed=signed)  # sees what was just set
    return {"value": seen.value if seen else None}


@lab.route("/cookies/read")
def read_cookie() -> dict[str, object]:
    name = request.args["name"]
    cookie = cookies.get(name, signed=request.args.get("signed") == "1")
    if cookie is None:
        return {"has": cookies.has(name), "value": None}
    number = cookie.number()
    result: dict[str, object] = {
        "has": cookies.has(name),
        "value": cookie.value,
        "number": None if number != number else number,
        "boolean": cookie.boolean(),
    }
    if request.args.get("json") == "1":
        result["json"] = cookie.json()
    return result


@lab.route("/cookies/delete", methods=["POST"])
def delete_cookie() -> dict[str, object]:
    cookies.delete(request.form["name"])
    return {"has": cookies.has(request.form["name"])}


@lab.route("/returns/<kind>")
def returns(kind: str):  # type: ignore[no-untyped-def]
    """Set a cookie, then return each kind of value a Flask view can return."""
    cookies.set("kind", kind)
    if kind == "str":
        return "a string"
    if kind == "template":
        return render_template("lab.html", word="template")
    if kind == "dict":
        return {"kind": "dict"}
    if kind == "list":
        return ["list"]
    if kind == "tuple":
        return "a tuple", 201
    return Response("a response", 202)


@lab.route("/status")
def status() -> str:
    response.status = 404
    response.status_text = "Product not found"
    return "No such product"


@lab.route("/headers")
def headers() -> str:
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers.add("X-Page", "one")
    response.headers.add("X-Page", "two")
    return "headers set by the page"


@lab.route("/own-response")
def own_response() -> Response:
    response.status = 418
    response.headers["X-Page"] = "ignored"
    cookies.set("own", "still-set")
    return Response("its own", 201, headers={"X-Own": "yes"})


@lab.route("/tuple")
def tuple_view():  # type: ignore[no-untyped-def]
    response.status = 404
    response.headers["X-A"] = "page"
    response.headers["X-B"] = "page"
    return "tuple body", 202, {"X-A": "tuple"}


@lab.route("/echo-header")
def echo_header() -> str:
    # Copies a query value into a header: a header injection attempt must be refused (400).
    response.headers["X-Echo"] = request.args.get("value", "")
    return "echoed"


@lab.route("/echo-status")
def echo_status() -> str:
    # Copies a query value into the status line's text: the same attempt, on the status line.
    response.status_text = request.args.get("value", "")
    return "echoed"


@lab.route("/go")
def go() -> Response:
    return redirect(request.args.get("to", "/"), int(request.args.get("status", "302")))


@lab.route("/safe")
def safe() -> Response:
    return safe_redirect(request.args.get("to"), "/fallback/")


@lab.route("/api", methods=["GET", "PUT", "DELETE"])
def api() -> dict[str, object]:
    return {"method": request.method}


def slow_call() -> str:
    """A slow data call of 1 s. With ?release=PATH it ends as soon as PATH exists, so a test can
    show, without timing anything, that the head reached it before this call ended."""
    release = request.args.get("release")
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        if release and os.path.exists(release):
            return "slow data (released by the client)"
        time.sleep(0.01)
    return "slow data"


@lab.route("/big")
def big() -> str:
    # 8 MB of text on demand: more than a client that never reads can take from the socket.
    return "An on-demand answer of text. " * 290_000


@lab.route("/upload", methods=["POST"])
def upload() -> str:
    return f"received {len(request.get_data())} bytes"


@lab.route("/stream")
def streamed() -> Response:
    cookies.set("streamed", "yes")
    response.headers["X-Stream"] = "before the first chunk"
    return stream("slow.html", slow=slow_call)


@lab.route("/stream-late")
def stream_late() -> Response:
    def chunks():  # type: ignore[no-untyped-def]
        response.headers["X-Early"] = "set before the first yield"
        yield "<p>head</p>"
        for attempt in (lambda: cookies.set("late", "1"), lambda: setattr(response, "status", 500)):
            try:
                attempt()
                yield "<p>changed after the first chunk</p>"
            except HeadersSentError as error:
                yield f"<p>refused: {error}</p>"

    return stream(chunks())
