"""The figures show the right arrays in the right panels.

Each panel's image is read back from the returned figure (``ax.images[0].get_array()``)
and compared with the array it should show. Every input frame and state is distinct
(random), so a panel showing a neighbouring frame or the wrong state fails.
"""
from __future__ import annotations

from typing import Iterator

import matplotlib

matplotlib.use("Agg")  # this module only: no display needed, nothing set globally

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from motionseg import figures  # noqa: E402

T, H, W = 20, 12, 16  # not square, so a transposed image fails too
N_SEED = 10


def rand(*shape: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def shown(fig: Figure, rows: int, cols: int) -> list[list[np.ndarray]]:
    """The image array of every panel, as rows x cols (axes are created row by row)."""
    assert len(fig.axes) == rows * cols
    out = []
    for i in range(rows):
        row = []
        for j in range(cols):
            ax = fig.axes[i * cols + j]
            assert len(ax.images) == 1
            row.append(np.asarray(ax.images[0].get_array()))
        out.append(row)
    return out


def clim(fig: Figure, i: int, cols: int, j: int = 0) -> tuple[float, float]:
    return fig.axes[i * cols + j].images[0].get_clim()


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_plot_sequence_default_and_given_steps() -> None:
    frames = rand(T, H, W, seed=0)
    fig = figures.plot_sequence(frames)
    steps = list(range(0, T, 2))
    panels = shown(fig, 1, len(steps))
    for j, t in enumerate(steps):
        np.testing.assert_array_equal(panels[0][j], frames[t])
        assert fig.axes[j].get_title() == f"t={t}"
        # a fixed grey scale: frames are comparable across panels
        assert clim(fig, 0, len(steps), j) == (0.0, 1.0)
    fig = figures.plot_sequence(frames, steps=[3, 17])
    panels = shown(fig, 1, 2)
    np.testing.assert_array_equal(panels[0][0], frames[3])
    np.testing.assert_array_equal(panels[0][1], frames[17])


def test_plot_layers_shows_frame_fg_alpha_bg_of_that_time() -> None:
    seq = {k: rand(T, H, W, seed=s) for s, k in enumerate(("frames", "fg", "alpha", "bg"))}
    t = 7
    panels = shown(figures.plot_layers(seq, t=t), 1, 4)
    for j, key in enumerate(("frames", "fg", "alpha", "bg")):
        np.testing.assert_array_equal(panels[0][j], seq[key][t], err_msg=key)


def make_states(steps: int = T - 1) -> dict[str, torch.Tensor]:
    """States of one sequence as ``model.run(...).stacked()`` gives them (entry k is frame k + 1)."""
    states = {k: torch.from_numpy(rand(steps, H, W, seed=10 + s)) for s, k in enumerate(("frame", "fg", "bg", "alpha"))}
    phase = torch.from_numpy(rand(steps, H, W, seed=20)) * 6 - 3
    states["motion"] = torch.polar(torch.ones_like(phase), phase)
    return states


def test_plot_states_shows_entry_t_minus_1_in_column_t() -> None:
    frames = rand(T, H, W, seed=1)
    states = make_states()
    steps = [1, 4, 9, 10, 19]
    rows = ("frame", "pred", "fg", "bg", "alpha", "motion")
    fig = figures.plot_states(frames, states, steps, rows=rows)
    panels = shown(fig, len(rows), len(steps))
    for j, t in enumerate(steps):
        k = t - 1  # entry k belongs to frame k + 1
        expected = {"frame": frames[t], "pred": states["frame"][k].numpy(), "fg": states["fg"][k].numpy(),
                    "bg": states["bg"][k].numpy(), "alpha": states["alpha"][k].numpy(),
                    # phase of T with the zero frequency moved to the centre, computed with numpy
                    "motion": np.fft.fftshift(np.angle(states["motion"][k].numpy()), axes=(-2, -1))}
        for i, row in enumerate(rows):
            np.testing.assert_allclose(panels[i][j], expected[row], rtol=1e-6, atol=1e-6, err_msg=f"{row}, t={t}")
    cols = len(steps)
    for i, row in enumerate(rows):
        lo, hi = clim(fig, i, cols)
        if row == "motion":
            assert (lo, hi) == pytest.approx((-np.pi, np.pi))
        else:
            assert (lo, hi) == (0.0, 1.0), row


def test_plot_states_row_subset() -> None:
    frames = rand(T, H, W, seed=2)
    states = make_states()
    fig = figures.plot_states(frames, states, [12], rows=("alpha", "frame"))
    panels = shown(fig, 2, 1)
    np.testing.assert_array_equal(panels[0][0], states["alpha"][11].numpy())
    np.testing.assert_array_equal(panels[1][0], frames[12])


def test_plot_predictions_aligns_predictions_with_truth() -> None:
    frames = rand(T, H, W, seed=3)
    preds = {"model a": rand(T - N_SEED, H, W, seed=4), "model b": torch.from_numpy(rand(T - N_SEED, H, W, seed=5))}
    fig = figures.plot_predictions(frames, preds, n_seed=N_SEED)
    steps = list(range(N_SEED, T, 2))
    panels = shown(fig, 3, len(steps))
    for j, t in enumerate(steps):
        np.testing.assert_array_equal(panels[0][j], frames[t])
        # prediction index 0 is frame n_seed
        np.testing.assert_array_equal(panels[1][j], preds["model a"][t - N_SEED])
        np.testing.assert_array_equal(panels[2][j], preds["model b"][t - N_SEED].numpy())
    assert [fig.axes[i * len(steps)].get_ylabel() for i in range(3)] == ["ground truth", "model a", "model b"]


def test_plot_predictions_given_steps_and_seed() -> None:
    frames = rand(T, H, W, seed=6)
    preds = {"m": rand(T - 8, H, W, seed=7)}
    panels = shown(figures.plot_predictions(frames, preds, n_seed=8, steps=[8, 13]), 2, 2)
    np.testing.assert_array_equal(panels[0][1], frames[13])
    np.testing.assert_array_equal(panels[1][0], preds["m"][0])
    np.testing.assert_array_equal(panels[1][1], preds["m"][5])


def test_plot_per_frame_draws_each_models_curve() -> None:
    results = {"a": {"per_frame": {"mse": [0.1, 0.2, 0.4]}}, "b": {"per_frame": {"mse": [0.3, 0.2, 0.1]}}}
    fig = figures.plot_per_frame(results, "mse", n_seed=10)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    for line, name in zip(lines, ("a", "b")):
        np.testing.assert_array_equal(line.get_xdata(), [10, 11, 12])
        np.testing.assert_array_equal(line.get_ydata(), results[name]["per_frame"]["mse"])


def test_animations_show_every_frame_and_stay_small() -> None:
    import io

    import torch
    from PIL import Image

    from motionseg import data, zoo

    seq = data.make_sequences(1, "test", 0, size=64)
    model = zoo.build("zero_param").eval()
    with torch.no_grad():
        pred, states = model.run(torch.from_numpy(seq["frames"][:, :10]), 10, keep_states=True)
    gif = figures.animate_states(seq["frames"][0], {k: v[0] for k, v in states.stacked().items()})
    image = Image.open(io.BytesIO(gif))
    assert image.format == "GIF" and image.n_frames == 10  # frames 1, 3, ..., 19
    assert Image.open(io.BytesIO(figures.animate_states(seq["frames"][0], {k: v[0] for k, v in states.stacked().items()},
                                                        every=1))).n_frames == 19
    assert image.size[0] == 6 * 64 + 5 * 2  # six panels with gaps
    gif = figures.animate_predictions(seq["frames"][0], {"a": pred[0], "b": pred[0]})
    image = Image.open(io.BytesIO(gif))
    assert image.n_frames == 10 and image.size[0] == 3 * 64 + 2 * 2
    assert len(gif) < 1_000_000


def test_long_animation_labels_wrap_within_their_panel() -> None:
    """A model's name wider than its panel used to run over the next panel's label (chapter 07)."""
    import io

    from PIL import Image

    from motionseg.figures.animations import _gif

    grid = np.full((64, 2 * 64, 3), 255, dtype=np.uint8)
    gif = _gif([(grid, "caption")], ["paper without param: the authors' weights", "b"], scale=1)
    first = np.asarray(Image.open(io.BytesIO(gif)).convert("L"))
    head = first.shape[0] - 64 - 16
    assert head > 16  # the long label took several lines
    dark_columns = np.nonzero((first[:head] < 128).any(axis=0))[0]
    # the first label stays left of the second panel (whose label starts 4 px into it)
    assert not np.any((dark_columns >= 64 - 2) & (dark_columns < 64 + 4))


def test_the_learning_curve_circles_the_step_whose_weights_were_kept() -> None:
    history = {"step": [1, 2, 3, 4], "loss": [0.4, 0.3, 0.3, 0.2], "val_step": [2, 4], "val_mse": [0.1, 0.2]}
    fig = figures.plot_learning_curve({"run": history}, selected={"run": 2})
    kept = [line for line in fig.axes[0].lines if line.get_label() == "weights kept"]
    assert len(kept) == 1 and list(kept[0].get_xdata()) == [2] and list(kept[0].get_ydata()) == [0.1]
    plain = figures.plot_learning_curve({"run": history})
    assert not [line for line in plain.axes[0].lines if line.get_label() == "weights kept"]


def test_the_learning_curve_marks_each_restart() -> None:
    history = {"step": [1, 2, 3, 4, 5, 6], "loss": [0.4, 0.3, 0.3, 0.2, 0.2, 0.2], "val_step": [2, 4, 6],
               "val_mse": [0.1, 0.2, 0.1], "restarts": [4]}
    fig = figures.plot_learning_curve({"run": history, "other": {**history, "restarts": [2]}})
    marks = [line for line in fig.axes[0].lines if list(line.get_xdata()) in ([4, 4], [2, 2])]
    assert sorted(line.get_xdata()[0] for line in marks) == [2, 4]
    assert [line.get_label() for line in marks].count("restart from the best weights") == 1
