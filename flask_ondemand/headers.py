"""Header text: what may be sent in a response's head, and merging ``Vary`` values.

The page helpers check what a view sets, the build checks what a prerendered page's response
carried, and the server merges a page's ``Vary`` with its own.
"""

from __future__ import annotations

import re

from .errors import UnsafeHeaderError

# Control characters (C0, DEL, and C1, where U+0085 is) and Unicode's line and paragraph
# separators: a server, a proxy or a client could end a line at any of them.
_LINE_BREAKING = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
# Those, and what Latin-1 cannot encode, which HTTP/1.1 cannot send.
_UNSAFE = re.compile(rf"{_LINE_BREAKING}|[^\x00-\xff]")
# In a URL, other text is fine: Werkzeug sends it percent-encoded.
_UNSAFE_IN_URL = re.compile(_LINE_BREAKING)
#: RFC 9110's token: what a header or cookie name is made of. Anything else could smuggle
#: another field or attribute.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def check_header_text(what: str, text: str, *, url: bool = False) -> str:
    """Refuse text bound for the head of a response that could split it, or that HTTP cannot
    carry: any control character, U+2028 and U+2029, or (but in a ``url``, which Werkzeug
    encodes) a character outside Latin-1."""
    unsafe = (_UNSAFE_IN_URL if url else _UNSAFE).search(text)
    if unsafe:
        raise UnsafeHeaderError(
            f"{what} contains {unsafe.group()!r}: a control character, a line separator or a"
            f" character outside Latin-1 cannot be sent in a response's head: {text!r}"
        )
    return text


def check_header_name(name: str) -> str:
    """Refuse a header name that is not an HTTP token."""
    if not TOKEN.fullmatch(name):
        raise UnsafeHeaderError(f"a header name must be an HTTP token, not {name!r}")
    return name


def merge_vary(*values: str) -> str:
    """One ``Vary`` value naming each field of ``values`` once, in order."""
    fields: dict[str, str] = {}
    for value in values:
        for name in value.split(","):
            if name.strip():
                fields.setdefault(name.strip().lower(), name.strip())
    return ", ".join(fields.values())
