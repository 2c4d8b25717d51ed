"""Sphinx extension: declare each script and stylesheet of a page once.

Sphinx 7 keeps an inline script added after the builder started (sphinx-thebe's
``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) twice, once with the file name
``None`` and once with ``""``; the second ``const`` is a JavaScript syntax error on every page.
"""
from __future__ import annotations

from typing import Any


def _key(asset: Any) -> tuple:
    return (asset.filename or "", asset.priority, tuple(sorted(asset.attributes.items())))


def _dedupe(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    for name in ("script_files", "css_files"):
        if name in context:
            context[name] = list({_key(a): a for a in reversed(context[name])}.values())[::-1]


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)  # after extensions that add page assets
    return {"parallel_read_safe": True, "parallel_write_safe": True}
