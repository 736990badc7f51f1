"""Sphinx configuration of the flask_ondemand docs: ``tox -e docs`` builds them."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "flask_ondemand"
author = "the flask_ondemand authors"
copyright = "flask_ondemand authors"
release = _version("flask-ondemand")

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "flask_ondemand"

# Signatures as written; types in the signature, where the code has them.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Python is the language of the code blocks unless they say otherwise.
highlight_language = "python"
