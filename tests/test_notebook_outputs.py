"""The tolerant comparison of notebook outputs (tests/notebook_outputs.py): loose enough for
another CPU's rounding, strict enough that a changed number, text or animation still fails."""
from __future__ import annotations

import base64

import numpy as np
import pytest

import notebook_outputs as nbo
from motionseg import figures


@pytest.mark.parametrize("stored, fresh, same", [
    ("0.24", "0.23", True),  # a value on a rounding boundary (the AVX-512 case of chapter 02)
    ("0.370", "0.369", True),
    ("0.24", "0.22", False),  # two units of the last digit: a real change
    ("0.370", "0.372", False),
    ("0.002518929248733912", "0.002518718338717008", True),  # 8e-5 apart: another CPU (chapter 04)
    ("19.185929732697705", "19.179163806317668", True),  # 3.5e-4 apart: a ratio of two such MSEs
    ("0.002518929248733912", "0.00253", False),  # 0.4 %: a retrained checkpoint
    ("800", "801", False),  # counts are exact
    ("1.5e-05", "1.6e-05", True),
    ("1.5e-05", "1.7e-05", False),
    ("-0.0", "0.0", True),
])
def test_numbers(stored: str, fresh: str, same: bool) -> None:
    assert nbo.numbers_match(stored, fresh) is same


def test_texts_mask_numbers_but_not_words() -> None:
    row = "<td>zero_param</td><td>{}</td><td>{}</td>"
    assert nbo.texts_match(row.format("0.00252", "0.955"), row.format("0.00252", "0.954"))
    assert not nbo.texts_match(row.format("0.00252", "0.955"), row.format("0.00262", "0.955"))
    assert not nbo.texts_match(row.format("0.00252", "0.955"), row.replace("zero", "one").format("0.00252", "0.955"))
    assert not nbo.texts_match("MSE 0.1 and 0.2", "MSE 0.1")
    assert nbo.texts_match("#T_t07e7491b td {padding: 0.15em}", "#T_t07e7491b td {padding: 0.15em}")
    # a table's id is a hash of its rendering: masked, while the table itself is still compared
    table = '<style>#T_t{} td {{padding: 0.15em}}</style><table id="T_t{}"><td>{}</td></table>'
    assert nbo.texts_match(table.format("22d639237a", "22d639237a", "0.370"),
                           table.format("ce34249932", "ce34249932", "0.369"))
    assert not nbo.texts_match(table.format("22d639237a", "22d639237a", "0.370"),
                               table.format("ce34249932", "ce34249932", "0.390"))
    assert not nbo.texts_match("#T_a07e7491b", "#T_a07e7491c")  # other ids are text, not numbers


def _animation(seed: int = 0, frames: int = 4) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(seed)
    images = rng.random((frames, 3, 32, 32))
    grids = [(figures._row([figures._panel(p) for p in im]), f"frame {k}") for k, im in enumerate(images)]
    return images, figures._gif(grids, ["a", "b", "c"])


def test_gifs_tolerate_rounding_but_not_another_picture() -> None:
    images, gif = _animation()
    rounded = images + 1e-6 * np.random.default_rng(1).standard_normal(images.shape)
    grids = [(figures._row([figures._panel(p) for p in im]), f"frame {k}") for k, im in enumerate(rounded)]
    assert nbo.gifs_match(gif, figures._gif(grids, ["a", "b", "c"]))
    assert nbo.gifs_match(base64.b64encode(gif).decode(), gif)
    swapped = images.copy()
    swapped[2, 1] = images[1, 1]  # one panel of one frame shows another frame's state
    grids = [(figures._row([figures._panel(p) for p in im]), f"frame {k}") for k, im in enumerate(swapped)]
    assert not nbo.gifs_match(gif, figures._gif(grids, ["a", "b", "c"]))
    assert not nbo.gifs_match(gif, _animation(frames=3)[1])
    assert not nbo.gifs_match(gif, b"not a gif")


def test_reconcile_replaces_only_what_matches() -> None:
    stored = [{"output_type": "display_data", "data": {"application/papermill.record/text/plain": "0.24"}},
              {"output_type": "display_data", "data": {"text/plain": "0.5"}},
              {"output_type": "stream", "name": "stdout", "text": "took 12.5 s, MSE 0.00252\n"}]
    fresh = [{"output_type": "display_data", "data": {"application/papermill.record/text/plain": "0.23"}},
             {"output_type": "display_data", "data": {"text/plain": "0.7"}},
             {"output_type": "stream", "name": "stdout", "text": "took 9.1 s, MSE 0.00252\n"}]
    nbo.reconcile(stored, fresh, lambda s: s.replace("12.5 s", "TIME").replace("9.1 s", "TIME"))
    assert fresh[0]["data"]["application/papermill.record/text/plain"] == "0.24"
    assert fresh[1]["data"]["text/plain"] == "0.7"  # a real change stays for nbval to report
    assert fresh[2]["text"] == stored[2]["text"]


def test_nbval_compares_through_reconcile() -> None:
    from nbval.plugin import IPyNbCell

    assert getattr(IPyNbCell.compare_outputs, "_motionseg", False), "conftest.py did not install the comparison"
