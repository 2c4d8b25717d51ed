"""The emulated other CPU (tests/cpu_emulation) that .ci/run uses to check the notebooks.

A check that silently emulates nothing would pass on every machine and prove nothing: these
tests make sure the perturbation reaches a process started elsewhere (as nbval's kernels are,
in the chapters' folder) and that it is of the size of a kernel's rounding, not of a bug.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATION = ROOT / "tests" / "cpu_emulation"

PROBE = """
import json, numpy as np, torch
x = torch.from_numpy(np.random.default_rng(0).random((2, 64, 64)).astype(np.float32))
exact = np.fft.fft2(x.numpy().astype(np.float64))
ours = torch.fft.fft2(x).numpy()
conv = torch.nn.functional.conv2d(x[:, None], torch.ones(1, 1, 3, 3))
print(json.dumps({"wrapped": hasattr(torch.fft.fft2, "__wrapped__"),
                  "conv_wrapped": hasattr(torch.nn.functional.conv2d, "__wrapped__"),
                  "rel": float(np.abs(ours - exact).max() / np.abs(exact).max())}))
"""


def _probe(emulate: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("MOTIONSEG_EMULATE_CPU", "PYTHONPATH")}
    if emulate:
        env.update(MOTIONSEG_EMULATE_CPU="1", PYTHONPATH=str(EMULATION))
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT / "chapters", env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_emulation_reaches_a_process_in_another_folder() -> None:
    plain, emulated = _probe(False), _probe(True)
    assert not plain["wrapped"] and emulated["wrapped"] and emulated["conv_wrapped"]
    # a few float32 roundings: larger than the plain kernel's error, far below any real change
    assert emulated["rel"] > plain["rel"]
    assert emulated["rel"] < 1e-5


@pytest.mark.skipif(os.environ.get("MOTIONSEG_EMULATE_CPU") != "1", reason="not an emulated run")
def test_this_run_is_emulated() -> None:
    import torch

    assert hasattr(torch.fft.fft2, "__wrapped__"), "MOTIONSEG_EMULATE_CPU=1 but tests/cpu_emulation is not active"
