"""Sphinx extension: after the build, remove from ``_static`` what no page loads.

* MathJax: sphinx-mathjax-offline copies all of MathJax 3 (about 24 MB: every combined
  component, the SVG output, the speech rule engine) while the pages load one combined
  component, ``tex-chtml.js`` (the ``mathjax_path`` it sets), and the CHTML fonts. Kept: that
  component, its fonts, and the TeX extensions it may autoload when a page uses their macros
  (``\\cancel``, ``\\color``, ...); the rest goes. Not shipped: the menu's accessibility
  explorer (off unless a reader switches it on), which needs the 4 MB speech rule engine.
* Source maps (``*.map``, 3.5 MB): a browser fetches them only for its developer tools.
* ``_static/locales``: the theme's translation catalogues, used while building, never by a page.

Runs at ``build-finished`` after sphinx-mathjax-offline (which copies MathJax at the same event,
with the default priority), so every build, incremental or not, ends slim.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)

# paths under _static/mathjax that pages load (or that the loaded component may load on demand)
MATHJAX_KEEP = ("output/chtml/fonts/woff-v2/", "input/tex/extensions/")


def _mathjax_keep(app: Any) -> tuple[str, ...]:
    component = str(app.config.mathjax_path or "")
    if component.startswith("mathjax/"):  # sphinx-mathjax-offline: relative to _static
        return (component.removeprefix("mathjax/"), *MATHJAX_KEEP)
    return ()  # another MathJax (a URL or a path we do not know): leave it alone


def slim(static: Path, mathjax_keep: tuple[str, ...]) -> int:
    """Remove what no page loads from ``static`` (a built ``_static``); returns the bytes removed."""
    removed: list[Path] = []
    mathjax = static / "mathjax"
    if mathjax_keep and (mathjax / mathjax_keep[0]).is_file():
        for path in mathjax.rglob("*"):
            rel = path.relative_to(mathjax).as_posix()
            if path.is_file() and not any(rel == k or rel.startswith(k) for k in mathjax_keep):
                removed.append(path)
    removed += [p for p in static.rglob("*.map") if p.is_file()]
    if (static / "locales").is_dir():
        removed += [p for p in (static / "locales").rglob("*") if p.is_file()]
    total = 0
    for path in removed:
        total += path.stat().st_size
        path.unlink()
    for folder in sorted((p for p in static.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return total


def _on_build_finished(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    if static.is_dir():
        removed = slim(static, _mathjax_keep(app))
        logger.info(f"slim_build: removed {removed / 2 ** 20:.1f} MiB that no page loads from _static")


def setup(app: Any) -> dict[str, Any]:
    app.connect("build-finished", _on_build_finished, priority=900)  # after sphinx-mathjax-offline copies MathJax
    return {"parallel_read_safe": True, "parallel_write_safe": True}
