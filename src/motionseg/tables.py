"""Tables of the book as HTML: a caption, number formats, the best value of a column in bold, and an
HTML id that is the same on every run and differs between different tables.

This module sits below :mod:`motionseg.results` (which builds the tables from committed results)
and :mod:`motionseg.figures`; it imports neither, so imports run one way.

Why the id matters: pandas writes each cell's style (the bold "best") as a CSS rule addressed to
the table's id (``#T_<id>_row3_col2``). Two tables on one page with the same id receive each
other's rules, so a cell is bold because another table's best sits at its position. The id is
therefore a hash of the rendered table (values, formats, caption, styles) unless one is given.
"""
from __future__ import annotations

import hashlib
from typing import Any, Hashable, Iterable, Mapping

import pandas as pd
from pandas.io.formats.style import Styler

# Class of every cell that competes for "best" in its column, by direction; the site test reads
# them to check that the bold cell is the column's best.
RANK_CLASS = {True: "rank-min", False: "rank-max"}
_DRAFT_ID = "draft"


class BookStyler(Styler):
    """A :class:`pandas.io.formats.style.Styler` whose HTML id, unless set with :meth:`set_uuid`,
    is derived from the table it renders, at rendering time (so a caption set later counts too)."""

    _fixed_uuid = False

    def set_uuid(self, uuid: str) -> "BookStyler":
        """Name the table's HTML id explicitly (it must then be unique on its page)."""
        self._fixed_uuid = True
        return super().set_uuid(uuid)

    def to_html(self, buf: Any = None, *, table_uuid: str | None = None, **kwargs: Any) -> str | None:
        """The HTML of the table; without a fixed id, the id is ``t`` + a hash of the table's HTML."""
        if table_uuid is None and not self._fixed_uuid:
            table_uuid = table_id(super().to_html(table_uuid=_DRAFT_ID, **kwargs))
        return super().to_html(buf, table_uuid=table_uuid, **kwargs)


def table_id(html: str) -> str:
    """A short id for a table from its HTML (rendered with a placeholder id)."""
    return "t" + hashlib.md5(html.encode()).hexdigest()[:10]


def style_table(frame: pd.DataFrame, uuid: str | None = None, caption: str = "",
                formats: Mapping[Hashable, str] | str | None = None, index: bool = True,
                best: Mapping[Hashable, bool] | None = None, best_among: Iterable[Hashable] | None = None,
                na_rep: str | None = None) -> BookStyler:
    """A chapter's table: numbers formatted, a caption above, compact cells, numbers right-aligned.

    ``best`` maps columns to "lower is better" (True) or "higher is better" (False): the best value
    of each among the ``best_among`` rows (default: all) is bold, and those rows' cells carry the
    class ``rank-min`` or ``rank-max``. ``uuid`` names the HTML id; by default it is derived from
    the rendered table (pandas would draw a random one, and the notebook tests compare the HTML).
    """
    # no id on every cell: only cells with a style of their own (the best values) get one, and the
    # number columns are right-aligned by one rule per column (a rule per cell made most of the
    # notebooks' table HTML)
    styler = BookStyler(frame, cell_ids=False)
    if formats is not None:
        styler = styler.format(formats, na_rep=na_rep)
    elif na_rep is not None:
        styler = styler.format(na_rep=na_rep)
    if uuid is not None:
        styler = styler.set_uuid(uuid)
    numbers = [i for i, dtype in enumerate(frame.dtypes) if pd.api.types.is_numeric_dtype(dtype)]
    # compact (a smaller font, less padding): a table of seven number columns fits the page column
    styler = (styler.set_caption(caption)
              .set_table_styles([{"selector": "", "props": [("font-size", "0.9em")]},
                                 {"selector": "th, td", "props": [("padding", "0.1em 0.5em")]},
                                 {"selector": "caption", "props": [("caption-side", "top")]},
                                 *({"selector": f"td.col{i}", "props": [("text-align", "right")]} for i in numbers)]))
    if best:
        styler = _mark_best(styler, frame, best, best_among)
    return styler if index else styler.hide(axis="index")


def _mark_best(styler: BookStyler, frame: pd.DataFrame, best: Mapping[Hashable, bool],
               best_among: Iterable[Hashable] | None) -> BookStyler:
    """Bold the best value of each ``best`` column among the candidate rows; class the candidates."""
    candidates = [r for r in (best_among if best_among is not None else frame.index) if r in frame.index]
    classes = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for col, lower in best.items():
        if col not in frame.columns:
            continue
        classes.loc[candidates, col] = RANK_CLASS[bool(lower)]
        values = pd.to_numeric(frame.loc[candidates, col], errors="coerce").dropna()
        if not len(values):
            continue
        top = values.min() if lower else values.max()
        styler = styler.apply(lambda s, b=top: ["font-weight: bold" if (row in candidates and v == b) else ""
                                                for row, v in s.items()], subset=[col], axis=0)
    return styler.set_td_classes(classes)
