"""``cookies``: read, set and delete cookies from a page, as ``Astro.cookies``, optionally signed.

Reads see the request's cookies, and what the page itself set or deleted earlier in the same
request. Writes are sent with the response, whatever the view returns.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, request
from itsdangerous import BadData, URLSafeSerializer
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from .errors import UnsafeHeaderError
from .headers import TOKEN
from .page import OutgoingCookie, page_state
from .safety import note_request_data, quietly

_SALT = "flask_ondemand.cookie"


@dataclass(frozen=True)
class Cookie:
    """One cookie's value, with Astro's conversions."""

    name: str
    value: str

    def json(self) -> Any:
        """The value parsed as JSON. Malformed JSON is the client's fault: a 400, not a 500."""
        try:
            return json.loads(self.value)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            raise BadRequest(f"The cookie {self.name!r} does not hold JSON.") from None

    def number(self, *, default: float = math.nan) -> float:
        """The value as a number, or ``default`` when it is not a finite one.

        ``default`` is NaN, as Astro's ``number()`` returns; ``visit.number(default=0)`` is the
        plain way to count. Python's ``float()`` is made stricter: no ``"1_000"``, ``"inf"`` or
        ``"nan"``, and no infinity, so that ``int()`` of a number that is not ``default``
        cannot raise.
        """
        text = self.value.strip()
        if not text or "_" in text:
            return default
        try:
            number = float(text)
        except ValueError:
            return default
        return number if math.isfinite(number) else default

    def boolean(self) -> bool:
        """False for "false", "0" and "", True otherwise, as in Astro."""
        return self.value not in ("false", "0", "")


class Cookies:
    """The current page's cookies. Use the module-level ``cookies`` object."""

    def has(self, name: str) -> bool:
        """True when the request sent the cookie, or the page set it, and did not delete it."""
        note_request_data(f"cookies.has({name!r})")
        return self._wire_value(name) is not None

    def get(self, name: str, *, signed: bool = False) -> Cookie | None:
        """The cookie, or None. With ``signed=True`` a value that is unsigned, tampered with,
        signed with an unknown key or expired also reads as None.

        Reads ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` when ``signed``.
        """
        note_request_data(f"cookies.get({name!r})")
        value = self._wire_value(name)
        if value is None:
            return None
        if signed:
            value = _unsign(name, value)
            if value is None:
                return None
        return Cookie(name, value)

    def set(
        self,
        name: str,
        value: Any,
        *,
        max_age: int | timedelta | None = None,
        expires: datetime | int | float | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool | None = None,
        samesite: str | None = None,
        partitioned: bool = False,
        signed: bool = False,
    ) -> None:
        """Set a cookie on the response. A str is stored as it is; anything else as JSON.

        Defaults are the safe ones: HttpOnly, SameSite=Lax, and Secure when the request came
        over HTTPS (behind a proxy, let Werkzeug's ProxyFix tell). ``signed=True`` signs the
        value with the app's ``SECRET_KEY``, and makes ``max_age``/``expires`` part of what is
        signed, so an old value cannot be replayed past its expiry.

        Reads ``SECRET_KEY`` when ``signed``.
        """
        state = page_state()
        state.check_open(f"cookies.set({name!r})")
        note_request_data(f"cookies.set({name!r})", write=True)
        _check_name(name)
        _check_domain(f"cookies.set({name!r})", domain)
        same_site = _same_site(name, samesite)
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if signed:
            text = _sign(name, text, _expiry(max_age, expires))
        # The value needs no check: Werkzeug quotes and escapes whatever a cookie value needs.
        state.outgoing[name] = OutgoingCookie(
            text,
            {
                "max_age": max_age,
                "expires": expires,
                "path": path,
                "domain": domain,
                "secure": _secure_by_default(name) if secure is None else secure,
                "httponly": True if httponly is None else httponly,
                "samesite": same_site,
                **_partitioned(f"cookies.set({name!r})", partitioned),
            },
        )

    def delete(
        self,
        name: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        partitioned: bool = False,
    ) -> None:
        """Delete a cookie: the response tells the browser to drop it.

        ``path`` and ``domain`` must be those it was set with; so must ``secure`` and
        ``partitioned`` for a Secure or Partitioned cookie, or the browser ignores the deletion.
        ``secure`` defaults as in :meth:`set`.
        """
        state = page_state()
        state.check_open(f"cookies.delete({name!r})")
        note_request_data(f"cookies.delete({name!r})", write=True)
        _check_name(name)
        _check_domain(f"cookies.delete({name!r})", domain)
        state.outgoing[name] = OutgoingCookie(
            None,
            {
                "path": path,
                "domain": domain,
                "secure": _secure_by_default(name) if secure is None else secure,
                **_partitioned(f"cookies.delete({name!r})", partitioned),
            },
        )

    def _wire_value(self, name: str) -> str | None:
        state = page_state()
        if name in state.outgoing:
            return state.outgoing[name].value
        with quietly():  # the read is noted by the cookie's name
            return request.cookies.get(name)


cookies = Cookies()


def _check_name(name: str) -> None:
    # RFC 6265: a cookie name is an HTTP token. Anything else could smuggle attributes.
    if not TOKEN.fullmatch(name):
        raise UnsafeHeaderError(f"a cookie name must be an RFC 6265 token, not {name!r}")


_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
# A host name (international ones too, which Werkzeug encodes), or a parent domain with its
# leading dot: labels of letters, digits, "-" and "_", so nothing can end the attribute.
_DOMAIN = re.compile(r"\.?[\w-]+(?:\.[\w-]+)*")


def _same_site(name: str, value: str | None) -> str:
    if value is None:
        return "Lax"
    if not isinstance(value, str) or value.lower() not in _SAME_SITE:
        raise ValueError(
            f"cookies.set({name!r}): samesite must be 'Strict', 'Lax' or 'None', not {value!r}"
        )
    return _SAME_SITE[value.lower()]


def _check_domain(call: str, domain: str | None) -> None:
    if domain is not None and not (isinstance(domain, str) and _DOMAIN.fullmatch(domain)):
        raise ValueError(
            f"{call}: domain must be a host name such as 'example.com' or '.example.com',"
            f" not {domain!r}"
        )


# Werkzeug writes the Partitioned attribute from 3.1 on; flask_ondemand runs on 3.0 too.
_WERKZEUG_PARTITIONS = "partitioned" in inspect.signature(Response.set_cookie).parameters


def _partitioned(call: str, partitioned: bool) -> dict[str, bool]:
    """The ``partitioned`` option to give Werkzeug, which only 3.1 and later take."""
    if not partitioned:
        return {}
    if not _WERKZEUG_PARTITIONS:
        raise ValueError(f"{call}: partitioned=True needs Werkzeug 3.1 or later")
    return {"partitioned": True}


def _secure_by_default(name: str) -> bool:
    """Secure over HTTPS, and always for the __Secure- and __Host- prefixes, which need it."""
    return request.is_secure or name.startswith(("__Secure-", "__Host-"))


def _expiry(
    max_age: int | timedelta | None, expires: datetime | int | float | None
) -> float | None:
    if max_age is not None:
        seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else max_age
        return time.time() + seconds
    if isinstance(expires, datetime):
        return expires.timestamp()
    return float(expires) if expires is not None else None


def _serializer(name: str) -> URLSafeSerializer:
    app = current_app
    if not app.secret_key:
        raise RuntimeError("Signed cookies need the app's SECRET_KEY to be set.")
    # itsdangerous signs with the last key and accepts any, as Flask's session does.
    keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
    # The cookie's name is part of the salt: a signed value is only good under its own name.
    return URLSafeSerializer(keys, salt=f"{_SALT}:{name}")


def _sign(name: str, value: str, expires_at: float | None) -> str:
    return str(_serializer(name).dumps([value, expires_at]))


def _unsign(name: str, signed: str) -> str | None:
    try:
        value, expires_at = _serializer(name).loads(signed)
    except (BadData, ValueError, TypeError):
        return None
    if not isinstance(value, str):
        return None
    if expires_at is not None and not (
        isinstance(expires_at, (int, float)) and expires_at > time.time()
    ):
        return None
    return value
