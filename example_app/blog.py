"""The blog: every post is prerendered, from the list of posts."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from flask_ondemand import prerender

from .posts import BY_SLUG, POSTS

blog = Blueprint("blog", __name__, url_prefix="/blog")


def post_paths() -> list[dict[str, str]]:
    # Astro's getStaticPaths: one dict of URL values per page to prerender.
    return [{"slug": post.slug} for post in POSTS]


@blog.route("/<slug>/")
@prerender(paths=post_paths)
def post(slug: str) -> str:
    if slug not in BY_SLUG:
        abort(404)
    return render_template("post.html", post=BY_SLUG[slug])
