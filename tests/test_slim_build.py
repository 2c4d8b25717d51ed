"""The build extension ``_ext/slim_build.py`` removes what no page loads, and nothing a page loads.

On a small stand-in for a built ``_static``: the MathJax component the pages load, its CHTML
fonts and the TeX extensions it may autoload stay; other components, the SVG output, the speech
rule engine, source maps and the theme's locales go. (The site test checks the real build: its
size, and that MathJax still renders every page's math.)
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("slim_build", ROOT / "_ext" / "slim_build.py")
assert _spec and _spec.loader
slim_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slim_build)

KEPT = ["mathjax/tex-chtml.js", "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
        "mathjax/input/tex/extensions/cancel.js", "scripts/bootstrap.js", "styles/theme.css", "basic.css"]
REMOVED = ["mathjax/tex-svg.js", "mathjax/tex-mml-chtml.js", "mathjax/output/svg/fonts/tex.js",
           "mathjax/sre/mathmaps/de.json", "mathjax/a11y/explorer.js", "mathjax/output/chtml.js",
           "scripts/bootstrap.js.map", "styles/theme.css.map", "locales/de/LC_MESSAGES/booktheme.mo"]


def make_static(root: Path) -> Path:
    static = root / "_static"
    for rel in KEPT + REMOVED:
        path = static / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    return static


def present(static: Path) -> set[str]:
    return {p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()}


def test_slim_keeps_what_pages_load_and_removes_the_rest(tmp_path: Path) -> None:
    static = make_static(tmp_path)
    keep = ("tex-chtml.js", *slim_build.MATHJAX_KEEP)
    assert slim_build.slim(static, keep) == 100 * len(REMOVED)
    assert present(static) == set(KEPT)
    assert not (static / "locales").exists() and not (static / "mathjax" / "sre").exists()  # no empty folders


def test_slim_leaves_mathjax_alone_without_its_component(tmp_path: Path) -> None:
    """MathJax from elsewhere (another mathjax_path): only maps and locales go."""
    static = make_static(tmp_path)
    (static / "mathjax" / "tex-chtml.js").unlink()
    slim_build.slim(static, ())
    assert {r for r in REMOVED if r.startswith("mathjax/")} <= present(static)
    slim_build.slim(static, ("tex-chtml.js", *slim_build.MATHJAX_KEEP))  # the component is missing
    assert {r for r in REMOVED if r.startswith("mathjax/")} <= present(static)
