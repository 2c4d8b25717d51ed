"""How the notebook checks (nbval) compare a chapter's stored outputs with a fresh run.

nbval compares every output as bytes. Numbers computed live and GIF animations encoded from
them change in the last bits with the CPU's math kernels (an AVX-512 machine rounds FFTs
differently from an AVX2 one), so byte equality would tie the book's tests to one machine.
Before nbval compares a cell, :func:`reconcile` therefore replaces a fresh output by the
stored one when the two agree within the tolerances below; anything else is left to nbval's
exact comparison, which then fails with its usual report.

* **Text** (plain text, HTML tables, Markdown, glued values, printed streams): identical once
  every number and every table's content-derived HTML id is masked; integers identical; each decimal number equal within a relative
  :data:`RTOL`, or within one unit of its last printed digit (a value that sits on a rounding
  boundary, ``0.235`` printed as ``0.24`` on one machine and ``0.23`` on another).
* **GIF animations**: decoded, the same number of frames of the same size; per frame the mean
  absolute difference at most :data:`GIF_MEAN_LEVELS` grey levels and at most
  :data:`GIF_FAR_SHARE` of the pixels more than :data:`GIF_FAR_LEVELS` levels apart (an
  adaptive palette may map a few pixels to another entry). A panel showing another state or
  frame changes a sixth of the image by far more.

PNG and JPEG figures are not compared by nbval at all; the data behind every figure and
animation is checked by ``tests/test_figures_data.py``.
"""
from __future__ import annotations

import base64
import io
import math
import os
import re
from typing import Any, Callable

# Measured with emulated kernels (tests/cpu_emulation, a few float32 roundings per FFT and
# convolution): numbers computed live in the chapters moved by up to 3.5e-4 relative (a ratio
# of two MSEs over 100 sequences); an animation frame by up to 0.27 grey levels on average, with
# 0.11 % of its pixels more than 32 levels apart (the adaptive palette maps them to other
# entries). A retrained checkpoint or another sequence moves numbers by percents, and a panel
# showing another state changes a sixth of a frame.
RTOL = 1e-3
GIF_MEAN_LEVELS = 1.0
GIF_FAR_LEVELS = 32
GIF_FAR_SHARE = 5e-3

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def _last_digit_unit(token: str) -> float:
    """One unit of the last printed digit: ``0.370`` -> 0.001, ``1.5e-05`` -> 1e-06."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_match(stored: str, fresh: str, rtol: float = RTOL) -> bool:
    """Whether two printed numbers agree within the tolerances of this module."""
    if stored == fresh:
        return True
    integral = not any(c in stored + fresh for c in ".eE")
    if integral:  # counts (steps, sequences, parameters) are exact
        return False
    a, b = float(stored), float(fresh)
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    unit = min(_last_digit_unit(stored), _last_digit_unit(fresh))
    diff, size = abs(a - b), max(abs(a), abs(b))
    _log(f"number {stored} {fresh} rel {diff / size if size else 0:.3g} units {diff / unit:.3g}")
    return diff <= max(rtol * size, unit * (1 + 1e-9))


def _log(line: str) -> None:
    """With MOTIONSEG_NBCOMPARE_LOG set, record each tolerated difference (to measure the spread)."""
    path = os.environ.get("MOTIONSEG_NBCOMPARE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


# The HTML id of a styled table is a hash of the table as rendered (motionseg.tables.table_id), so a
# number that moves in its last digit changes the id too: ids are masked, their tables compared.
TABLE_ID = re.compile(r"T_t[0-9a-f]{10}")


def texts_match(stored: str, fresh: str, rtol: float = RTOL) -> bool:
    """Identical text once numbers and table ids are masked, and every pair of numbers matching."""
    if stored == fresh:
        return True
    stored, fresh = TABLE_ID.sub("T_id", stored), TABLE_ID.sub("T_id", fresh)
    if NUMBER.sub("#", stored) != NUMBER.sub("#", fresh):
        return False
    return all(numbers_match(a, b, rtol) for a, b in zip(NUMBER.findall(stored), NUMBER.findall(fresh)))


def _gif_frames(data: str | bytes) -> list[Any]:
    import numpy as np
    from PIL import Image, ImageSequence

    raw = base64.b64decode(data) if isinstance(data, str) else data
    with Image.open(io.BytesIO(raw)) as img:
        return [np.asarray(f.convert("L"), dtype=np.int16) for f in ImageSequence.Iterator(img)]


def gifs_match(stored: str | bytes, fresh: str | bytes) -> bool:
    """Two GIF animations (base64 or bytes) showing the same frames within the tolerances."""
    if stored == fresh:
        return True
    try:
        a, b = _gif_frames(stored), _gif_frames(fresh)
    except Exception:  # not a readable GIF: leave it to the exact comparison
        return False
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return False
    for x, y in zip(a, b):
        diff = abs(x - y)
        _log(f"gif mean {diff.mean():.3g} far {(diff > GIF_FAR_LEVELS).mean():.3g}")
        if diff.mean() > GIF_MEAN_LEVELS or (diff > GIF_FAR_LEVELS).mean() > GIF_FAR_SHARE:
            return False
    return True


def _join(value: Any) -> Any:
    return "".join(value) if isinstance(value, list) else value


def reconcile(stored: list[dict[str, Any]], fresh: list[dict[str, Any]],
              sanitize: Callable[[Any], Any] = lambda s: s) -> None:
    """Replace, in place, each fresh output value by the stored one where the two agree.

    Outputs are paired in order; a cell whose outputs differ in number or kind is left alone.
    ``sanitize`` is nbval's own sanitiser (timings and addresses masked) applied before the
    comparison of texts.
    """
    if len(stored) != len(fresh):
        return
    for ref, new in zip(stored, fresh):
        if ref.get("output_type") != new.get("output_type"):
            continue
        if "text" in ref and "text" in new:  # streams
            if texts_match(sanitize(_join(ref["text"])), sanitize(_join(new["text"]))):
                new["text"] = ref["text"]
        ref_data, new_data = ref.get("data") or {}, new.get("data") or {}
        for key in set(ref_data) & set(new_data):
            a, b = _join(ref_data[key]), _join(new_data[key])
            if a == b:
                continue
            if key == "image/gif":
                same = gifs_match(a, b)
            elif isinstance(a, str) and isinstance(b, str) and not key.startswith("image/"):
                same = texts_match(sanitize(a), sanitize(b))  # text, HTML, glued values
            else:
                same = False
            if same:
                new_data[key] = ref_data[key]


def install() -> None:
    """Make nbval compare through :func:`reconcile` (called from the root ``conftest.py``)."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to patch
        return
    if getattr(IPyNbCell.compare_outputs, "_motionseg", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self: Any, test: list, ref: list, skip_compare: Any = None) -> bool:
        reconcile(ref, test, self.sanitize)
        return original(self, test, ref, skip_compare)

    compare_outputs._motionseg = True  # type: ignore[attr-defined]
    IPyNbCell.compare_outputs = compare_outputs
