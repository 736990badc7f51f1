"""The blog's data. A real site would read files or a database here, at build time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Post:
    slug: str
    title: str
    date: str
    body: str


POSTS = [
    Post(
        "hybrid-rendering",
        "Hybrid rendering with Flask",
        "2026-11-02",
        "Most pages of a site are the same for everyone. They can be files.",
    ),
    Post(
        "prerendered-pages",
        "Prerendered pages",
        "2026-11-09",
        "A prerendered page is rendered once, at build time, and served at file speed.",
    ),
    Post(
        "on-demand-pages",
        "Pages on demand",
        "2026-11-16",
        "A page that reads cookies or a session runs per request, in a slim app.",
    ),
]

BY_SLUG = {post.slug: post for post in POSTS}
