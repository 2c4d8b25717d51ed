"""The book's HTML tables: ids unique and stable, the bold "best" right, Table 1 narrow.

Chapter 08 showed ten per-set tables with the same rows and columns; their ids were derived from
rows and columns only, so they shared one id and each table received the others' bold cells.
These tests put several tables on one page, as a chapter does, and read the page as a browser
applies its CSS (``tablecheck``, also used by the site test on the built book).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tablecheck

from motionseg import figures, results, tables

MODELS = ["zero_param", "learnable", "copy_last", "oracle"]


def per_set(seed: int) -> pd.DataFrame:
    """A per-set table as chapter 08 shows it: same rows and columns for every set, other values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"label": MODELS, "L1": rng.random(4), "MSE": rng.random(4) / 10, "SSIM": rng.random(4)},
                        index=pd.Index(MODELS, name="model"))


def page(*stylers: "tables.BookStyler") -> str:
    return "\n".join(s.to_html() for s in stylers)


def not_oracle(frame: pd.DataFrame) -> list[str]:
    return [m for m in frame.index if m != "oracle"]


def test_tables_with_the_same_rows_and_columns_get_their_own_ids_and_bold() -> None:
    frames = [per_set(seed) for seed in range(4)]
    html = page(*[results.style(f, best_among=not_oracle(f), caption=f"set {i}") for i, f in enumerate(frames)])
    assert len(tablecheck.styled_tables(html)) == 4
    assert tablecheck.shared_ids(html) == []
    assert tablecheck.bold_problems(html) == []
    # the same values without a caption still differ: the id follows the values too
    html = page(*[results.style_grid(f[["L1", "MSE"]], "{:.5f}", True) for f in frames])
    assert tablecheck.shared_ids(html) == [] and tablecheck.bold_problems(html) == []


def test_the_checker_finds_a_shared_id_and_the_bold_it_leaks() -> None:
    """What chapter 08 showed: one id for two tables, so the first bolds the second's best too."""
    a, b = per_set(1), per_set(2)
    styled = [results.style(a, uuid="same"), results.style(b, uuid="same")]
    for styler in styled:  # the book's tables give ids to styled cells only; pandas' default, to all
        styler.cell_ids = True
    html = page(*styled)
    assert tablecheck.shared_ids(html) == ["T_same"]
    problems = tablecheck.bold_problems(html)
    assert problems and all("T_same" in p for p in problems)


def test_the_checker_finds_a_wrong_bold_in_an_unmarked_table() -> None:
    """Tables stored before the rank marks: a bold value must be the column's lowest or highest."""
    frame = pd.DataFrame({"MSE": [0.3, 0.1, 0.2]}, index=["a", "b", "c"])
    wrong = frame.style.set_uuid("old").apply(lambda s: ["font-weight: bold" if v == 0.2 else "" for v in s])
    assert tablecheck.bold_problems(wrong.to_html())
    right = frame.style.set_uuid("old").apply(lambda s: ["font-weight: bold" if v == 0.1 else "" for v in s])
    assert tablecheck.bold_problems(right.to_html()) == []


def test_ids_are_the_same_on_every_run_and_follow_the_content() -> None:
    frame = per_set(3)
    first, again = results.style(frame, caption="x").to_html(), results.style(frame, caption="x").to_html()
    assert first == again  # the notebook tests compare the HTML
    assert results.style(frame, caption="y").to_html() != first
    # a caption set after styling (chapter 07 does) counts too: the id is taken when the table is rendered
    assert results.style(frame).set_caption("x").to_html() != results.style(frame).set_caption("y").to_html()
    ids = {tablecheck.styled_tables(results.style(frame, caption=c).to_html())[0]["id"] for c in "xyz"}
    assert len(ids) == 3


def test_an_explicit_id_is_kept() -> None:
    frame = per_set(4)
    assert tablecheck.styled_tables(tables.style_table(frame, "inference-speed").to_html())[0]["id"] == \
        "T_inference-speed"
    assert tablecheck.styled_tables(results.style(frame, uuid="mine").to_html())[0]["id"] == "T_mine"
    # the chapters that still call figures.style_table get the same function
    assert figures.style_table is tables.style_table


def test_best_among_limits_the_competitors_and_marks_them() -> None:
    frame = per_set(5)
    frame.loc["oracle", ["L1", "MSE"]] = 0.0  # best of all, but does not compete
    frame.loc["oracle", "SSIM"] = 1.0
    html = results.style(frame, best_among=not_oracle(frame)).to_html()
    assert tablecheck.bold_problems(html) == []
    soup = tablecheck._soup(html)
    bold = tablecheck.bold_ids(soup)
    oracle_row = MODELS.index("oracle")
    assert not any(f"_row{oracle_row}_" in i for i in bold)
    for col, name, lower in ((1, "L1", True), (2, "MSE", True), (3, "SSIM", False)):
        competing = frame.loc[not_oracle(frame), name]
        best_row = MODELS.index(competing.idxmin() if lower else competing.idxmax())
        cell = soup.select_one(f"td.row{best_row}.col{col}")
        assert cell["id"] in bold, name
        assert ("rank-min" if lower else "rank-max") in cell["class"]
    assert "rank-min" not in soup.select_one(f"td.row{oracle_row}.col1")["class"]


def test_the_html_is_what_style_showed_before_but_for_id_and_marks() -> None:
    """Moving the styling out of figures changed nothing a reader sees."""
    frame = per_set(6)
    html = results.style(frame, best_among=not_oracle(frame), caption="c").to_html()
    soup = tablecheck._soup(html)
    assert soup.find("caption").get_text() == "c"
    assert [td.get_text(strip=True) for td in soup.select("td.row0")] == \
        ["zero_param", f"{frame.iloc[0]['L1']:.4f}", f"{frame.iloc[0]['MSE']:.5f}", f"{frame.iloc[0]['SSIM']:.4f}"]


@pytest.fixture(scope="module")
def table1() -> pd.DataFrame:
    return results.table1()


def test_table1_puts_the_paper_beside_ours_in_at_most_8_columns(table1: pd.DataFrame) -> None:
    beside = results.table1_beside(table1)
    assert beside.shape[1] + 1 <= 8  # with the label column
    assert list(beside.index) == list(table1["label"])
    for metric in results.METRICS:
        np.testing.assert_array_equal(beside[(metric, "ours")], table1[metric])
        np.testing.assert_array_equal(beside[(metric, "paper")], table1[f"paper {metric}"].astype(float))
    assert list(beside.columns) == [(m, w) for m in results.METRICS for w in ("ours", "paper")]
    html = results.style_table1(table1, caption="Table 1").to_html()
    assert tablecheck.bold_problems(html) == []
    soup = tablecheck._soup(html)
    # our best of each metric is bold, the oracle's (better still) is not
    bold = tablecheck.bold_ids(soup)
    learnable_plus = list(table1.index).index("learnable_plus")
    assert {f"{soup.table['id']}_row{learnable_plus}_col{c}" for c in (0, 2, 4)} <= bold
    assert not any(f"_row{list(table1.index).index('oracle')}_" in i for i in bold)


def test_table1_budget_has_the_rest(table1: pd.DataFrame) -> None:
    budget = results.table1_budget(table1)
    assert budget.shape[1] + 1 <= 8
    assert list(budget.columns) == list(results.BUDGET_COLUMNS)
    trained = table1[table1["block"] != "reference"]
    assert list(budget.index) == list(trained["label"])
    np.testing.assert_array_equal(budget["steps"], trained["steps"])
    html = results.style_budget(table1, caption="What each row cost").to_html()
    assert "font-weight: bold" not in html
    assert tablecheck.shared_ids(html + results.style_table1(table1).to_html()) == []


def test_row_names_head_the_rows_in_place_of_the_index() -> None:
    """One column fewer: the label heads its row; best_among still names index entries."""
    frame = per_set(7)
    frame.loc["oracle", "MSE"] = 0.0
    styler = results.style(frame, ["label", "L1", "MSE"], best_among=not_oracle(frame), row_names="label")
    soup = tablecheck._soup(styler.to_html())
    assert [th.get_text(strip=True) for th in soup.select("tbody th")] == MODELS
    assert [th.get_text(strip=True) for th in soup.select("thead th.col_heading")] == ["L1", "MSE"]
    assert tablecheck.bold_problems(soup) == []
    oracle = soup.select_one(f"td.row{MODELS.index('oracle')}.col1")
    assert oracle.get("id") not in tablecheck.bold_ids(soup) and "rank-min" not in oracle["class"]


def test_number_columns_are_right_aligned_by_one_rule_each_and_plain_cells_carry_no_id() -> None:
    frame = pd.DataFrame({"MSE": [0.1, 0.2], "note": ["a", "b"], "IoU": [0.5, 0.9]}, index=["x", "y"])
    html = tables.style_table(frame, "t", best={"MSE": True}).to_html()
    assert "#T_t td.col0 {\n  text-align: right;" in html and "#T_t td.col2 {\n  text-align: right;" in html
    assert "td.col1 {" not in html  # the text column keeps the theme's alignment
    soup = tablecheck._soup(html)
    assert [td.get("id") for td in soup.select("tbody td")] == ["T_t_row0_col0", None, None, None, None, None]
