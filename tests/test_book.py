"""The book's prose types no result numbers: they are glued from what the chapters compute.

A Markdown cell may not contain a decimal number with three or more significant digits (say
0.00252 or 11.7) outside math (``$...$``), code (backticks and fences) and glue roles; the
paper's own constants (its Table 1) are allowed, listed here. Each chapter's code also follows
the book's conventions: nbval markers are cell tags, not comments.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from motionseg import results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), ROOT / "intro.ipynb", ROOT / "reproduce.ipynb"])
# Constants of the paper (Table 1) and of the data recipe that prose may quote as they are.
ALLOWED = {f"{v:g}" for row in results.PAPER_TABLE1.values() for v in row[:3]} | {
    "0.0010", "0.0002", "0.9896", "0.9737", "0.9540", "0.9686", "0.9025", "0.0323", "0.0074", "0.0166",
    "0.0126", "0.0059", "0.0024", "0.0009", "0.0006",
}
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


def _prose(text: str) -> str:
    """Markdown without math, code and roles (glue, cite, numref, doc)."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    return text


def significant_digits(number: str) -> int:
    digits = number.replace(".", "").lstrip("0")
    return len(digits)


def typed_metrics(text: str) -> list[str]:
    return [n for n in NUMBER.findall(_prose(text)) if significant_digits(n) >= 3 and n not in ALLOWED]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_types_no_result_numbers(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    found = {i: typed_metrics("".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"}
    found = {i: v for i, v in found.items() if v}
    assert not found, f"{path.name}: hand-typed numbers in Markdown cells {found}; glue them from the code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_tags(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    comments = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "NBVAL_" in "".join(c["source"])]
    assert not comments, f"{path.name}: cells {comments} use # NBVAL_ comments; use the nbval-ignore-output tag"


def test_the_checker_finds_typed_metrics() -> None:
    assert typed_metrics("it scores MSE 0.00252 against the paper's 0.0010") == ["0.00252"]
    assert typed_metrics("took 11.7 minutes") == ["11.7"]
    assert typed_metrics("a $0.00252$ in math, `0.00252` in code, {glue:text}`x:.5f`, 2.5 px") == []


ANIMATION_LIMIT = 250_000  # bytes per stored animation (issue 24)
NOTEBOOKS_LIMIT = 4_000_000  # bytes: the chapter notebooks together, outputs included


def stored_images(path: Path) -> list[tuple[int, str, int]]:
    """(cell, MIME type, decoded bytes) of every image a notebook stores."""
    import base64

    found = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        for out in cell.get("outputs", []):
            for mime, data in out.get("data", {}).items():
                if mime.startswith("image/") and mime != "image/svg+xml":
                    found.append((i, mime, len(base64.b64decode("".join(data) if isinstance(data, list) else data))))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_animations_are_small(path: Path) -> None:
    big = [(i, n) for i, mime, n in stored_images(path) if mime == "image/gif" and n > ANIMATION_LIMIT]
    assert not big, (f"{path.name}: animations over {ANIMATION_LIMIT / 1e3:.0f} KB (cell, bytes): {big}; "
                     "show fewer frames (every=) or fewer panels")


def test_chapter_notebooks_are_light() -> None:
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    assert sum(sizes.values()) <= NOTEBOOKS_LIMIT, (
        f"the notebooks hold {sum(sizes.values()) / 1e6:.2f} MB (limit {NOTEBOOKS_LIMIT / 1e6:.0f} MB): "
        + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:4]))
