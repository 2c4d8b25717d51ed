"""Checks of the styled tables in an HTML page, as a browser would apply their CSS.

pandas writes each cell's style as a rule addressed to the cell's id (``#T_<table>_row3_col2 {
font-weight: bold; }``), so two tables with the same id receive each other's rules. These
helpers read a page's ``<style>`` rules and its tables and report:

* table ids that occur more than once on the page;
* bold cells that are not their column's best: where :mod:`motionseg.tables` marked the cells
  that compete (class ``rank-min`` / ``rank-max``), the bold cells must be exactly those with the
  best shown value among them; in a table without marks (made before the marks existed), a bold
  value must at least be the lowest or highest of its column, the oracle row aside.

Used by ``test_site.py`` on the built book and by ``test_tables.py`` on tables made in the test.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

import bs4

BOLD = re.compile(r"font-weight\s*:\s*(bold|bolder|[6-9]00)\b")
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
ID_SELECTOR = re.compile(r"^#([\w-]+)$")
RANKS = {"rank-min": min, "rank-max": max}


def _soup(page: Any) -> Any:
    return page if isinstance(page, bs4.BeautifulSoup) else bs4.BeautifulSoup(page, "html.parser")


def styled_tables(page: Any) -> list[Any]:
    """The tables pandas' Styler made (their ids start with ``T_``)."""
    return [t for t in _soup(page).find_all("table") if str(t.get("id", "")).startswith("T_")]


def shared_ids(page: Any) -> list[str]:
    """Ids of styled tables that occur more than once on the page."""
    counts = Counter(t["id"] for t in styled_tables(page))
    return sorted(i for i, n in counts.items() if n > 1)


def bold_ids(page: Any) -> set[str]:
    """Ids of the elements that a rule of the page's ``<style>`` elements, addressed by id, makes bold."""
    out: set[str] = set()
    for style in _soup(page).find_all("style"):
        for selectors, body in RULE.findall(style.get_text()):
            if BOLD.search(body):
                for sel in selectors.split(","):
                    m = ID_SELECTOR.match(sel.strip())
                    if m:
                        out.add(m.group(1))
    return out


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def _row_label(td: Any) -> str:
    row = td.find_parent("tr")
    head = row.find("th") if row else None
    return head.get_text(" ", strip=True) if head else ""


def bold_problems(page: Any) -> list[str]:
    """Bold cells that are not their column's best (see the module docstring)."""
    soup = _soup(page)
    bold = bold_ids(soup)
    problems = []
    for table in styled_tables(soup):
        caption = table.find("caption")
        name = f"table {table['id']}" + (f" ({caption.get_text(' ', strip=True)[:60]})" if caption else "")
        columns: dict[str, list[Any]] = {}
        for td in table.select("tbody td"):
            col = next((c for c in td.get("class", []) if re.fullmatch(r"col\d+", c)), None)
            if col:
                columns.setdefault(col, []).append(td)
        for col, cells in columns.items():
            shown = [td for td in cells if td.get("id") in bold]
            ranked = [td for td in cells if set(td.get("class", [])) & set(RANKS)]
            if ranked:
                rank = next(c for c in ranked[0]["class"] if c in RANKS)
                values = {id(td): _number(td.get_text()) for td in ranked}
                numbers = [v for v in values.values() if v is not None]
                if not numbers:
                    continue
                top = RANKS[rank](numbers)
                wrong = [td for td in shown if values.get(id(td)) != top]  # not competing, or not the best
                if wrong or not shown:
                    problems.append(f"{name}, {col}: bold {[td.get_text(strip=True) for td in shown]} but the "
                                    f"{'lowest' if rank == 'rank-min' else 'highest'} of the competing cells is {top:g}")
            elif shown:
                numbers = [v for td in cells if "oracle" not in _row_label(td)
                           for v in [_number(td.get_text())] if v is not None]
                boldv = {_number(td.get_text()) for td in shown}
                if len(boldv) > 1 or not numbers or not boldv <= {min(numbers), max(numbers)}:
                    problems.append(f"{name}, {col}: bold {sorted(boldv, key=str)} is neither the lowest nor the "
                                    f"highest of the column ({min(numbers, default=None)} .. "
                                    f"{max(numbers, default=None)}; no rank marks)")
    return problems
