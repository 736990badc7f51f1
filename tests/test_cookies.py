"""`cookies`, through gunicorn with a real cookie jar, and in-process for its API edges."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.http import parse_cookie

from flask_ondemand import Cookie, UnsafeHeaderError, cookies

from .conftest import BuiltSite
from .servers import Browser, Server, fetch, gunicorn, post_form

WERKZEUG = tuple(int(part) for part in version("werkzeug").split(".")[:2])


def test_astro_counter_with_a_real_cookie_jar(site: BuiltSite) -> None:
    browser = Browser(site.server.url)
    assert [browser.get("/lab/visits").text for _ in range(3)] == [
        "Visits: 0",
        "Visits: 1",
        "Visits: 2",
    ]
    assert browser.cookie("visits") == "2"


def test_a_non_numeric_counter_starts_over(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/visits", headers={"Cookie": "visits=lots"})
    assert reply.text == "Visits: 0"


def test_defaults_are_httponly_lax_and_path_root(site: BuiltSite) -> None:
    header = fetch(site.server.url, "/lab/visits").headers["Set-Cookie"]
    assert header == "visits=0; HttpOnly; Path=/; SameSite=Lax"


def test_secure_when_the_request_came_over_https(site: BuiltSite) -> None:
    # gunicorn trusts X-Forwarded-Proto from 127.0.0.1, as it would from a TLS proxy there.
    header = fetch(site.server.url, "/lab/visits", headers={"X-Forwarded-Proto": "https"}).headers[
        "Set-Cookie"
    ]
    assert header == "visits=0; Secure; HttpOnly; Path=/; SameSite=Lax"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("str", 200),
        ("template", 200),
        ("dict", 200),
        ("list", 200),
        ("tuple", 201),
        ("response", 202),
    ],
)
def test_a_cookie_reaches_every_kind_of_response(site: BuiltSite, kind: str, status: int) -> None:
    reply = fetch(site.server.url, f"/lab/returns/{kind}")
    assert reply.status == status  # the view's own status, kept
    assert reply.headers["Set-Cookie"].startswith(f"kind={kind};")


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "with space",
        "semi;colon",
        'quote"d',
        "comma,separated",
        "ünïcødé ✓",
        "back\\slash",
        "line\r\nbreak",
        "",
    ],
)
def test_any_string_round_trips(site: BuiltSite, value: str) -> None:
    browser = Browser(site.server.url)
    written = browser.post("/lab/cookies/set", {"name": "note", "value": value})
    assert json.loads(written.body) == {"value": value}  # a get in the same request sees it
    read = json.loads(browser.get("/lab/cookies/read?name=note").body)
    assert read["value"] == value


def test_dicts_are_stored_as_json(site: BuiltSite) -> None:
    browser = Browser(site.server.url)
    browser.post("/lab/cookies/set", {"name": "cart", "value": "cup,pot", "as": "json"})
    read = json.loads(browser.get("/lab/cookies/read?name=cart&json=1").body)
    assert read["json"] == {"items": ["cup", "pot"], "n": 7}


@pytest.mark.parametrize(
    ("value", "number", "boolean"),
    [
        ("12.5", 12.5, True),
        ("0", 0.0, False),
        ("false", None, False),
        ("abc", None, True),
        ("1_000", None, True),
    ],
)
def test_number_and_boolean_as_in_astro(
    site: BuiltSite, value: str, number: float | None, boolean: bool
) -> None:
    reply = fetch(site.server.url, "/lab/cookies/read?name=c", headers={"Cookie": f"c={value}"})
    assert json.loads(reply.body) == {
        "has": True,
        "value": value,
        "number": number,
        "boolean": boolean,
    }


def test_malformed_json_is_a_400_not_a_500(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/cookies/read?name=c&json=1", headers={"Cookie": "c={oops"})
    assert reply.status == 400
    assert "does not hold JSON" in reply.text


def test_json_nested_too_deep_is_a_400(site: BuiltSite) -> None:
    deep = "[" * 1500 + "]" * 1500
    reply = fetch(
        site.server.url, "/lab/cookies/read?name=c&json=1", headers={"Cookie": f"c={deep}"}
    )
    assert reply.status == 400


def test_delete_drops_the_cookie(site: BuiltSite) -> None:
    browser = Browser(site.server.url)
    browser.get("/lab/visits")
    assert browser.cookie("visits") == "0"
    deleted = browser.post("/lab/cookies/delete", {"name": "visits"})
    assert json.loads(deleted.body) == {"has": False}  # seen in the same request
    assert browser.cookie("visits") is None


def signed_wire(url: str, name: str, value: str) -> str:
    """The value of the cookie the site sets for ``cookies.set(name, value, signed=True)``."""
    written = post_form(url, "/lab/cookies/set", {"name": name, "value": value, "signed": "1"})
    return written.headers["Set-Cookie"].split(";")[0].removeprefix(f"{name}=")


def read_signed(url: str, name: str, wire: str) -> object:
    reply = fetch(
        url, f"/lab/cookies/read?name={name}&signed=1", headers={"Cookie": f'{name}="{wire}"'}
    )
    return json.loads(reply.body)["value"]


def test_signed_cookie_round_trip_and_tampering(site: BuiltSite) -> None:
    browser = Browser(site.server.url)
    browser.post("/lab/cookies/set", {"name": "user", "value": "alice", "signed": "1"})
    wire = browser.cookie("user")
    assert wire is not None
    assert "alice" not in wire  # encoded, so a forger cannot just edit the value
    assert json.loads(browser.get("/lab/cookies/read?name=user&signed=1").body)["value"] == "alice"
    # A signed value is "payload.signature". Mallory's own payload is a real one, in the
    # cookie's format: it reads as "mallory" only with the signature the site made for it.
    payload, _, signature = wire.rpartition(".")
    mallory = signed_wire(site.server.url, "user", "mallory")
    assert read_signed(site.server.url, "user", mallory) == "mallory"
    mallorys_payload = mallory.rpartition(".")[0]
    assert mallorys_payload != payload
    for forged in (
        f"{mallorys_payload}.{signature}",  # alice's valid signature on mallory's payload
        mallorys_payload,  # no signature at all
        # Its own signature, one character changed (the first: the last holds padding bits).
        f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}",
        wire[:-1],
        "alice",
        "",
        "a.b.c",
    ):
        assert read_signed(site.server.url, "user", forged) is None, forged


def test_a_signed_value_only_counts_under_its_own_name(site: BuiltSite) -> None:
    browser = Browser(site.server.url)
    browser.post("/lab/cookies/set", {"name": "role", "value": "admin", "signed": "1"})
    reply = fetch(
        site.server.url,
        "/lab/cookies/read?name=user&signed=1",
        headers={"Cookie": f"user={browser.cookie('role')}"},
    )
    assert json.loads(reply.body)["value"] is None


def test_an_expired_signed_value_reads_as_absent(site: BuiltSite) -> None:
    written = post_form(
        site.server.url,
        "/lab/cookies/set",
        {"name": "t", "value": "v", "signed": "1", "max_age": "-60"},
    )
    assert json.loads(written.body) == {"value": None}
    wire = written.headers["Set-Cookie"].split(";")[0]
    reply = fetch(site.server.url, "/lab/cookies/read?name=t&signed=1", headers={"Cookie": wire})
    assert json.loads(reply.body)["value"] is None


@pytest.fixture(scope="module")
def rotated(site: BuiltSite) -> Iterator[Server]:
    """The same build served after the secret key was rotated: the old key is a fallback."""
    env = {"FLASK_SECRET_KEY": "new-secret", "FLASK_SECRET_KEY_FALLBACKS": '["test-secret"]'}
    with gunicorn(site.out, cwd=site.project, env=env) as server:
        yield server


def test_key_rotation_honours_secret_key_fallbacks(
    site: BuiltSite, rotated: Server, tmp_path: Path
) -> None:
    old = post_form(
        site.server.url, "/lab/cookies/set", {"name": "user", "value": "alice", "signed": "1"}
    )
    wire = old.headers["Set-Cookie"].split(";")[0]
    reply = fetch(rotated.url, "/lab/cookies/read?name=user&signed=1", headers={"Cookie": wire})
    assert json.loads(reply.body)["value"] == "alice"
    renewed = post_form(
        rotated.url, "/lab/cookies/set", {"name": "user", "value": "alice", "signed": "1"}
    )
    new_wire = renewed.headers["Set-Cookie"].split(";")[0]
    assert new_wire != wire  # signed with the new key
    stale = fetch(
        site.server.url, "/lab/cookies/read?name=user&signed=1", headers={"Cookie": new_wire}
    )
    assert json.loads(stale.body)["value"] is None  # the old server does not know the new key


# In-process: the API's edges.


def test_cookie_conversions() -> None:
    for text in ("", "inf", "-Infinity", "nan", "1e400", "1_000"):
        assert math.isnan(Cookie("c", text).number()), text
    assert Cookie("c", "1e3").number() == 1000.0
    assert Cookie("c", " 3 ").number() == 3.0
    for text in ("", "abc", "inf", "1_000"):
        assert Cookie("c", text).number(default=0) == 0, text
    assert Cookie("c", "2.5").number(default=0) == 2.5
    assert Cookie("c", "").boolean() is False
    assert Cookie("c", "true").boolean() is True
    assert Cookie("c", "[1, 2]").json() == [1, 2]


@pytest.mark.parametrize("name", ["a\r\nb", "a=b; Domain=evil.example", "sp ace", "", "ü"])
def test_names_that_are_not_tokens_are_refused(app: Flask, name: str) -> None:
    with app.test_request_context():
        with pytest.raises(UnsafeHeaderError, match="a cookie name must be an RFC 6265 token"):
            cookies.set(name, "1")
        with pytest.raises(UnsafeHeaderError, match="a cookie name must be an RFC 6265 token"):
            cookies.delete(name)


@pytest.mark.parametrize("samesite", ["lax; Secure", "Relaxed", "", "None; Domain=evil.example"])
def test_a_bad_samesite_is_a_clear_value_error(app: Flask, samesite: str) -> None:
    message = f"cookies.set('c'): samesite must be 'Strict', 'Lax' or 'None', not {samesite!r}"
    with app.test_request_context(), pytest.raises(ValueError, match=re.escape(message)):
        cookies.set("c", "1", samesite=samesite)


@pytest.mark.parametrize(
    "domain", ["example.com; Secure", "exa mple.com", "evil.example;", "a\tb.com", "", "."]
)
def test_a_bad_domain_is_a_clear_value_error(app: Flask, domain: str) -> None:
    with app.test_request_context():
        with pytest.raises(ValueError, match=r"^cookies.set\('c'\): domain must be a host name"):
            cookies.set("c", "1", domain=domain)
        with pytest.raises(ValueError, match=r"^cookies.delete\('c'\): domain must be a host"):
            cookies.delete("c", domain=domain)


def test_samesite_in_any_case_and_domains_that_are_fine(app: Flask) -> None:
    @app.route("/")
    def index() -> str:
        cookies.set("a", "1", samesite="strict", domain=".example.com")
        cookies.set("b", "1", samesite="NONE", secure=True, domain="bücher.example")
        return ""

    first, second = app.test_client().get("/").headers.getlist("Set-Cookie")
    assert "; Domain=example.com;" in first
    assert "; SameSite=Strict" in first
    assert "; Domain=xn--bcher-kva.example;" in second
    assert "; SameSite=None" in second


def test_values_need_no_check(app: Flask) -> None:
    """Werkzeug quotes and escapes what a value needs, so any str value is safe to send: one
    that tries to end the header or add an attribute stays the cookie's value."""
    value = "line\r\nbreak; Domain=evil.example"

    @app.route("/")
    def index() -> str:
        cookies.set("fine", value)
        return ""

    header = app.test_client().get("/").headers["Set-Cookie"]
    assert "\r" not in header
    assert "\n" not in header
    # Read as a browser would: the value comes back whole, and the attributes are ours alone.
    assert list(parse_cookie(header).items(multi=True)) == [
        ("fine", value),
        ("HttpOnly", ""),
        ("Path", "/"),
        ("SameSite", "Lax"),
    ]


def test_prefixed_and_partitioned_cookies_are_deleted_with_their_attributes(app: Flask) -> None:
    @app.route("/")
    def index() -> str:
        cookies.delete("__Host-id")
        cookies.delete("chip", secure=True, partitioned=True)
        return ""

    if WERKZEUG < (3, 1):  # Werkzeug 3.0 cannot write Partitioned: a clear error, not a 500
        with app.test_request_context(), pytest.raises(ValueError, match=r"needs Werkzeug 3\.1"):
            cookies.delete("chip", secure=True, partitioned=True)
        return
    headers = app.test_client().get("/").headers.getlist("Set-Cookie")
    assert headers[0].startswith("__Host-id=; Expires=Thu, 01 Jan 1970")
    assert "; Secure" in headers[0]
    assert "; Secure" in headers[1]
    assert "; Partitioned" in headers[1]


def test_signing_without_a_secret_key_is_a_clear_error(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(SECRET_KEY=None)
    with app.test_request_context(), pytest.raises(RuntimeError, match="need the app's SECRET_KEY"):
        cookies.set("x", "1", signed=True)


def test_helpers_need_the_extension() -> None:
    app = Flask("plain")
    with (
        app.test_request_context(),
        pytest.raises(RuntimeError, match="need OnDemand on the app 'plain'"),
    ):
        cookies.get("x")
