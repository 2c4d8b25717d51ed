"""Figures and animations are stored compactly, so that the chapters stay light (issue 24: at most
250 KB per animation, 1 MB per page, 4 MB for the chapter notebooks together).

The animation of a real 128 px test sequence is measured, and its decoded frames are compared with
the panels they show (one fixed palette: greys within half a palette step); ``figures.show``
stores figures of images as JPEG and plots as palette PNGs by default.
"""
from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # this module only: no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from motionseg import data, figures, zoo  # noqa: E402

N_SEED = 10
GIF_LIMIT = 250_000  # bytes per animation


@pytest.fixture(scope="module")
def run() -> tuple[np.ndarray, dict[str, torch.Tensor], torch.Tensor]:
    """A real test sequence (128 px) and the committed zero-parameter model's states and predictions."""
    seq = data.make_sequences(1, split="test", seed=0)
    model = zoo.load("zero_param")
    with torch.no_grad():
        pred, states = model.run(torch.from_numpy(seq["frames"][:, :N_SEED]), N_SEED, keep_states=True)
    return seq["frames"][0], {k: v[0] for k, v in states.stacked().items()}, pred[0]


def frames_of(gif: bytes) -> list[np.ndarray]:
    image = Image.open(io.BytesIO(gif))
    out = []
    for k in range(image.n_frames):
        image.seek(k)
        out.append(np.asarray(image.convert("RGB")).astype(int))
    return out


def test_states_animation_is_small_and_shows_the_panels(run: Any) -> None:
    frames, states, _ = run
    assert frames.shape[-1] == 128
    gif = figures.animate_states(frames, states)
    assert len(gif) <= GIF_LIMIT, f"states animation {len(gif) / 1e3:.0f} KB (limit {GIF_LIMIT / 1e3:.0f} KB)"
    assert gif == figures.animate_states(frames, states)  # the same bytes on every run (nbval compares them)
    decoded = frames_of(gif)
    assert len(decoded) == 10  # frames 1, 3, ..., 19
    size, gap, head = 128, 2, 16
    step = 255 / (figures.animations.GREYS - 1)
    for shown_k, k in ((0, 0), (4, 8), (9, 18)):  # frame 1, the last seed frame shown, the last prediction
        t = k + 1
        shown = decoded[shown_k][head:head + size]
        expected = [figures._panel(frames[t]), figures._panel(states["frame"][k]), figures._panel(states["fg"][k]),
                    figures._panel(states["bg"][k]), figures._panel(states["alpha"][k])]
        for i, panel in enumerate(expected):
            got = shown[:, i * (size + gap):i * (size + gap) + size]
            assert np.abs(got - panel).max() <= step / 2 + 1, (t, i)  # nearest of the palette's greys
        phase = figures._panel(figures.motion_image(states["motion"][k]), "twilight", -np.pi, np.pi)
        got = shown[:, 5 * (size + gap):5 * (size + gap) + size]
        assert np.abs(got - phase).mean() < 12, t  # 16 colours of a cyclic map


def test_predictions_animation_is_small(run: Any) -> None:
    frames, _, pred = run
    gif = figures.animate_predictions(frames, {f"model {i}": pred for i in range(7)})  # chapter 07: seven models
    assert len(gif) <= GIF_LIMIT
    decoded = frames_of(gif)
    assert len(decoded) == 10
    got = decoded[3][16:16 + 128, 130:258]  # the first model's panel, predicted frame 13
    assert np.abs(got - figures._panel(pred[3])).max() <= 255 / (figures.animations.GREYS - 1) / 2 + 1


def test_show_stores_figures_of_images_as_jpeg_and_plots_as_small_png(run: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    frames, states, _ = run
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    figures.show(figures.plot_states(frames, states, [1, 2, 3, 5, 9, 10, 12, 15, 19]))
    figures.show(figures.plot_per_frame({n: {"per_frame": {"mse": list(np.geomspace(1e-3 * (i + 1), 2e-2, 10))}}
                                         for i, n in enumerate("abcdefg")}, "mse"))
    states_image, curve_image = shown
    assert states_image.format == "jpeg" and states_image.data[:2] == b"\xff\xd8"
    # 270 KB as PNG, 146 KB as JPEG at quality 88 (the old defaults), about 85 KB now
    assert len(states_image.data) < 100_000, len(states_image.data)
    assert curve_image.format == "png"
    assert Image.open(io.BytesIO(curve_image.data)).mode == "P"  # a palette image
    assert len(curve_image.data) < 20_000, len(curve_image.data)  # 38 KB in full colour
    assert plt.get_fignums() == []  # show closes what it showed


def test_encode_respects_an_explicit_format() -> None:
    fig = figures.plot_sequence(np.random.default_rng(0).random((20, 64, 64)))
    assert figures.common.encode(fig)[1] == "jpeg"  # 10 frames of 64 px: images
    data, fmt = figures.common.encode(fig, "png", colors=None)
    assert fmt == "png" and Image.open(io.BytesIO(data)).mode in ("RGB", "RGBA")
    with pytest.raises(ValueError, match="fmt"):
        figures.common.encode(fig, "gif")
    plt.close(fig)
