"""The README's results section, written from ``results/`` (``python -m motionseg report --readme``).

The section lies between two markers in README.md; :func:`update_readme` replaces what is between
them, and a test checks that the committed README equals what this module writes.
"""
from __future__ import annotations

from pathlib import Path

from . import results

README = results.RESULTS.parent / "README.md"
START, END = "<!-- results: written by `python -m motionseg report --readme` -->", "<!-- results: end -->"


def readme_section(root: Path | None = None) -> str:
    """Table 1 and the ladder's headline as Markdown, from the committed results."""
    table = results.table1(root=root)
    shown = table.rename(columns={"label": "model"}).set_index("model")
    verdict = results.verdicts(table)
    lines = [START, "",
             f"Full test set ({int(table['n'].iloc[0]):,} sequences of our generator, scikit-image backgrounds; "
             "the paper's numbers beside ours):", "",
             results.markdown(shown, ["L1", "MSE", "SSIM", "paper L1", "paper MSE", "paper SSIM", "parameters",
                                      "gains", "steps", "minutes"]), ""]
    for name in verdict.index:
        met = [m for m in verdict.columns if verdict.loc[name, m]]
        missed = [m for m in verdict.columns if not verdict.loc[name, m]]
        lines.append(f"- {results.LABELS[name]}: " + (f"meets the paper's {', '.join(met)}" if met else "")
                     + ("; " if met and missed else "") + (f"misses its {', '.join(missed)}" if missed else "") + ".")
    try:
        ladder = results.variants("ladder", root=None if root is None else Path(root) / "variants")
        first, last = ladder.iloc[0], ladder.iloc[-1]
        lines += ["", f"The ladder from the paper's zero-parameter model to ours, one change at a time, with the same "
                      f"short training for every rung: MSE {first['MSE']:.5f} ({first['variant']}) to {last['MSE']:.5f} "
                      f"({last['variant']}); the book's Table 1 chapter has every rung."]
    except FileNotFoundError:
        pass
    lines += ["", END]
    return "\n".join(lines)


def update_readme(path: Path | None = None, root: Path | None = None, check: bool = False) -> bool:
    """Write the results section into ``path`` (default: :data:`README`); with ``check``, only say
    whether it is up to date. Every results file is read and checked before anything is written."""
    path = Path(path if path is not None else README)
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no results markers: put the lines {START!r} and {END!r} where the table goes")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    new = before + readme_section(root) + after
    if check:
        return new == text
    path.write_text(new)
    return True
