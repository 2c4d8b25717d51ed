"""Tests of the memory guard on ``n_future`` (``motionseg.validation``, issue 23).

The guard estimates a call's peak memory from the model, the batch, the frames and whether
autograd records the call, and refuses a call that would not fit into the memory available.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from motionseg import validation, zoo

SIZE = 64
ROOT = Path(__file__).resolve().parents[1]
GIB = 2 ** 30


def seeds(b: int = 1, s: int = 10) -> torch.Tensor:
    return torch.rand(b, s, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.fixture()
def two_gib(monkeypatch) -> None:
    """A machine with 2 GiB available."""
    monkeypatch.setattr(validation, "available_memory", lambda device=None: 2 * GIB, raising=False)
    monkeypatch.setattr(validation, "_memory_bytes", lambda: 2 * GIB, raising=False)  # the guard before issue 23


def test_an_autograd_call_is_sized_by_its_graph_not_its_output(two_gib) -> None:
    """vln_resnet keeps ~750 frames' worth per step for backward: 150 frames of 64 x 64 are 2.4 MB of
    output but about 2.3 GiB of graph, more than 80% of 2 GiB."""
    model = zoo.build("vln_resnet", image_size=SIZE)
    x = seeds()
    with pytest.raises(ValueError) as err:
        model(x, 150)
    message = str(err.value)
    assert "\n" not in message and "with autograd" in message
    assert "the limit of 1.6 GiB (80% of the 2.0 GiB available)" in message
    assert "predict_in_chunks" in message and "torch.no_grad()" in message
    with torch.no_grad():  # without autograd the same call fits
        assert validation.check_seed_frames(x, 2, 150, model=model) == 150


def test_the_error_says_how_many_frames_fit(two_gib) -> None:
    model = zoo.build("vln_resnet", image_size=SIZE)
    with pytest.raises(ValueError, match=r"predict at most (\d+) frames per call for this batch") as err:
        model(seeds(4), 100)
    fits = int(str(err.value).split("predict at most ")[1].split()[0])
    validation.check_seed_frames(seeds(4), 2, fits, model=model)  # that many pass ...
    with pytest.raises(ValueError):
        validation.check_seed_frames(seeds(4), 2, fits + 1, model=model)  # ... one more does not


@pytest.mark.parametrize("name, family", [("zero_param", "filter"), ("learnable_plus", "filter"),
                                          ("conv_pgp", "ConvPGP"), ("vln_ldc", "VLNLDC")])
def test_every_model_has_its_family_multiples(name: str, family: str) -> None:
    for autograd in (False, True):
        assert validation.peak_multiples(zoo.build(name, image_size=SIZE), autograd) == \
            validation.PEAK_MULTIPLES[family][autograd]
        assert validation.peak_multiples(None, autograd) == validation.PEAK_MULTIPLES["filter"][autograd]


def test_autograd_is_what_would_be_recorded() -> None:
    model = zoo.build("conv_pgp")
    x = seeds()
    assert validation.records_autograd(x, model)
    with torch.no_grad():
        assert not validation.records_autograd(x, model)
    model.requires_grad_(False)
    assert not validation.records_autograd(x, model)
    assert validation.records_autograd(x.requires_grad_(), model)


def test_the_limit_is_the_memory_available_now(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "psutil", None)  # as here: psutil is not a dependency
    monkeypatch.setattr(validation, "_meminfo_available", lambda: 3 * GIB)
    assert validation.available_memory() == 3 * GIB
    monkeypatch.setattr(validation, "_meminfo_available", lambda: None)  # no /proc: free pages
    found = validation.available_memory()
    assert found is None or found > 0


def test_chunks_of_sequences_predict_what_one_call_would(monkeypatch) -> None:
    model = zoo.build("zero_param").eval()
    x = seeds(4)
    two, output = validation.estimate_bytes(None, 2, 10, 5, SIZE, SIZE, autograd=False), 4 * 4 * 5 * SIZE * SIZE
    # room for the output and two sequences at a time, not four
    monkeypatch.setattr(validation, "available_memory", lambda device=None: (two + output) / validation.MEMORY_SHARE)
    with torch.no_grad(), pytest.raises(ValueError, match="n_future=5 would need"):
        model(x, 5)
    calls = []
    chunked = validation.predict_in_chunks(lambda s, n: calls.append(len(s)) or model(s, n), x, 5)
    assert calls == [2, 2]
    with torch.no_grad():
        for i in range(4):
            torch.testing.assert_close(chunked[i:i + 1], model(x[i:i + 1], 5), atol=0, rtol=0)


def _peak_memory_benchmark():
    spec = importlib.util.spec_from_file_location("peak_memory", ROOT / "benchmarks" / "peak_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, mode, n, batch", [("learnable", "autograd", 2, 2), ("learnable_plus", "nograd", 20, 4),
                                                  ("vln_resnet", "autograd", 5, 1)])
def test_the_estimate_is_above_the_measured_peak(name: str, mode: str, n: int, batch: int) -> None:
    """The peak of a first call in a fresh process stays below the estimate that the guard uses.

    learnable with autograd keeps the most per seed frame, learnable_plus without it the most
    per predicted frame (its states kept, as evaluate keeps them), a VLN the most of all.
    """
    measured = _peak_memory_benchmark().peak(name, mode, n, SIZE, batch)
    model = zoo.build(name, image_size=SIZE)
    estimate = validation.estimate_bytes(model if name in zoo.BASELINES else None, batch, 10, n, SIZE, SIZE,
                                         autograd=mode == "autograd")
    assert measured <= estimate, (measured, estimate)
    assert measured > 0.2 * estimate  # and the estimate is not uselessly loose
