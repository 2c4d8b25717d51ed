"""The CUDA path: every model and the FFT-based steps agree with the CPU within stated tolerances.

Skipped without a GPU; ``benchmarks/gpu_session.sh`` runs it first on a device. Tolerances: the
GPU's FFT and convolution kernels round differently, and TF32 (on by default for convolutions on
Ampere and later) keeps 10 bits of mantissa, so outputs may differ by about 1e-3 of their range;
a wrong device transfer or a missing ``.to(device)`` differs by far more (or raises).
"""
from __future__ import annotations

import pytest
import torch

from motionseg import data, fourier, zoo

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

OUT_ATOL = 2e-3  # predictions in [0, 1]
GRAD_RTOL = 5e-2  # gradient norms per parameter tensor, relative


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return torch.from_numpy(data.make_sequences(2, split="test", seed=0)["frames"])


def test_fft_steps_agree() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 128, 128, generator=gen)
    y = torch.roll(x, (3, -2), dims=(-2, -1))
    cpu = fourier.phase_difference(x, y)
    gpu = fourier.phase_difference(x.cuda(), y.cuda()).cpu()
    assert float((cpu - gpu).abs().max()) < 1e-3
    for fn in (fourier.two_sided_phase_filter, fourier.averaging_phase_filter):
        assert float((fn(cpu) - fn(cpu.cuda()).cpu()).abs().max()) < 1e-3
    shift = torch.tensor([[1.5, -0.5], [0.0, 2.0]])
    assert float((fourier.fourier_shift(x, shift) - fourier.fourier_shift(x.cuda(), shift.cuda()).cpu()).abs().max()) < 1e-4


@pytest.mark.parametrize("name", [n for n in zoo.names() if n not in zoo.AUTHORS])
def test_forward_and_backward_agree(name: str, frames: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = zoo.build(name)
    gpu_model = zoo.build(name)
    gpu_model.load_state_dict(model.state_dict())
    gpu_model = gpu_model.cuda()
    seed, target = frames[:, :10], frames[:, 10:]
    outs, grads = [], []
    for m, dev in ((model, "cpu"), (gpu_model, "cuda")):
        pred = m(seed.to(dev), 10)
        loss = ((pred - target.to(dev)) ** 2).mean()
        loss.backward()
        outs.append(pred.detach().cpu())
        grads.append({n: p.grad.norm().item() for n, p in m.named_parameters() if p.grad is not None})
    assert float((outs[0] - outs[1]).abs().max()) < OUT_ATOL
    for n, g in grads[0].items():
        assert grads[1][n] == pytest.approx(g, rel=GRAD_RTOL, abs=1e-6), n


@pytest.mark.parametrize("name", zoo.AUTHORS)
def test_released_weights_agree(name: str, frames: torch.Tensor) -> None:
    model = zoo.load(name)
    with torch.no_grad():
        cpu = model(frames[:, :10], 10)
        gpu = model.cuda()(frames[:, :10].cuda(), 10).cpu()
    assert float((cpu - gpu).abs().max()) < OUT_ATOL
