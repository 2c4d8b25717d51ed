"""Tests of the Moving MNIST generator (``motionseg.data``).

Small ``n`` keeps the suite fast; ``size=64`` is used where the property does not
depend on the resolution (the random draws are identical for every size).
"""
from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.transform import resize

from motionseg import data as D
from motionseg.data import (
    Backgrounds,
    DataFileError,
    MovingMNIST,
    load_mnist,
    make_patch,
    make_sequence,
    make_sequences,
)

KEYS = ("frames", "alpha", "fg", "bg", "velocity")
IMAGE_KEYS = ("frames", "alpha", "fg", "bg")
VENDORED = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seqs() -> dict[str, np.ndarray]:
    """Eight test sequences at the paper's resolution (shared, read-only)."""
    return make_sequences(8, split="test", seed=0)


@pytest.fixture(scope="module")
def many64() -> dict[str, np.ndarray]:
    """Velocities and canvas squares (y, x, side per frame) of 200 test sequences at 64 x 64.

    Made in batches and reduced at once, so that 200 sequences cost little memory.
    """
    velocity, squares = [], []
    for batch in D.iter_batches(200, 50, "test", 0, size=64):
        velocity.append(batch["velocity"])
        squares.append([[_square(a) for a in seq] for seq in batch["alpha"]])
    return {"velocity": np.concatenate(velocity), "squares": np.concatenate(squares)}


@pytest.fixture(scope="module")
def velocities64(many64: dict[str, np.ndarray]) -> np.ndarray:
    return many64["velocity"]


@pytest.fixture
def clean_mnist_cache(monkeypatch: pytest.MonkeyPatch):
    """Empty the MNIST cache before and after a test that changes where MNIST comes from."""
    monkeypatch.delenv("MOTIONSEG_MNIST_DIR", raising=False)
    D.clear_caches()
    yield
    D.clear_caches()


@pytest.fixture
def vendored_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_mnist_cache) -> Path:
    """A copy of ``data/mnist`` that ``motionseg.data`` reads as its vendored folder."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in VENDORED:
        shutil.copy(D.MNIST_DIR / name, folder / name)
    monkeypatch.setattr(D, "MNIST_DIR", folder)
    return folder


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _user_folder(folder: Path, n: int | None = None, compress: bool = True) -> Path:
    """Write the MNIST test split (optionally only its first ``n`` items) as IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, name, magic in (("images", "t10k-images-idx3-ubyte", 0x803),
                              ("labels", "t10k-labels-idx1-ubyte", 0x801)):
        if n is None and compress:  # the original files
            shutil.copy(D.MNIST_DIR / f"{name}.gz", folder / f"{name}.gz")
            continue
        array = load_mnist("test")[0 if kind == "images" else 1]
        raw = _idx_bytes(array if n is None else array[:n], magic)
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / name).write_bytes(raw)
    return folder


def _pooled_cover(size: int, y: int, x: int, side: int) -> np.ndarray:
    """The 2x2-pooled coverage of a ``side`` square at canvas (y, x), computed here, not by the module."""
    cover = np.zeros((2 * size, 2 * size))
    cover[y:y + side, x:x + side] = 1.0
    return cover.reshape(size, 2, size, 2).mean(axis=(1, 3))


def _square(a: np.ndarray) -> tuple[int, int, int]:
    """(y, x, side) on the 2x canvas of the opaque square whose pooled coverage is ``a``.

    Fails unless ``a`` is exactly the pooled coverage of one square.
    """
    rows, cols = a.max(axis=1), a.max(axis=0)
    r0, c0 = int(np.flatnonzero(rows)[0]), int(np.flatnonzero(cols)[0])
    side = int(round(2 * float(rows.sum())))
    assert side == int(round(2 * float(cols.sum()))), "not a square"
    y, x = 2 * r0 + int(rows[r0] == 0.5), 2 * c0 + int(cols[c0] == 0.5)
    np.testing.assert_array_equal(a, _pooled_cover(a.shape[0], y, x, side))
    return y, x, side


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


# --------------------------------------------------------------------------- output format


def test_output_keys_shapes_dtypes_and_range(seqs: dict[str, np.ndarray]) -> None:
    assert set(seqs) == set(KEYS)
    for key in IMAGE_KEYS:
        arr = seqs[key]
        assert arr.shape == (8, 20, 128, 128), key
        assert arr.dtype == np.float32, key
        assert np.isfinite(arr).all(), key
        assert arr.min() >= 0.0 and arr.max() <= 1.0, key
    assert seqs["velocity"].shape == (8, 2)
    assert seqs["velocity"].dtype == np.float32


def test_size_option_changes_only_the_resolution() -> None:
    small = make_sequences(3, size=64)
    assert small["frames"].shape == (3, 20, 64, 64)
    # the random draws do not depend on the size: same velocities as at 128 x 128
    np.testing.assert_array_equal(small["velocity"], make_sequences(3)["velocity"])


# --------------------------------------------------------------------------- the square patch


def test_alpha_is_an_opaque_square(seqs: dict[str, np.ndarray]) -> None:
    alpha = seqs["alpha"]
    for i in range(alpha.shape[0]):
        sides = set()
        for t in range(20):
            a = alpha[i, t]
            r0, r1, c0, c1 = _bbox(a > 0)
            box = a[r0:r1 + 1, c0:c1 + 1]
            # the support is a full rectangle whose sides differ by at most the one
            # half-covered row/column that a half-pixel position adds
            assert (box > 0).all()
            assert abs((r1 - r0) - (c1 - c0)) <= 1
            # opaque: alpha is 1 everywhere inside the border rows/columns
            assert (a[r0 + 1:r1, c0 + 1:c1] == 1).all()
            # fractional values only on the border rows/columns of the support
            frac = np.argwhere((a > 0) & (a < 1))
            on_border = np.isin(frac[:, 0], (r0, r1)) | np.isin(frac[:, 1], (c0, c1))
            assert on_border.all()
            # a square (separable) coverage: alpha = outer(row profile, column profile)
            np.testing.assert_array_equal(a, np.outer(a.max(axis=1), a.max(axis=0)))
            assert set(np.unique(a)) <= {0.0, 0.25, 0.5, 1.0}
            # its effective height and width (covered area per column / row) are equal
            height = float(a.sum(axis=0).max())
            width = float(a.sum(axis=1).max())
            assert height == width
            sides.add(height)
        assert len(sides) == 1, "the patch changes size over time"
        side = sides.pop()
        assert 15 <= side <= 26, side
        assert side * 2 == int(side * 2)  # a whole number of canvas pixels


def test_alpha_moves_exactly_with_the_velocity(seqs: dict[str, np.ndarray]) -> None:
    """The square read back from alpha moves by exactly the velocity; the pooled alpha's own
    centroid does too, up to the pooling bias of an odd canvas side (1/60 px at most for
    sides >= 15 canvas px; a 27 px patch moving by half pixels alternates by that much)."""
    yy, xx = np.mgrid[:128, :128].astype(np.float64)
    t = np.arange(20, dtype=np.float64)[:, None]
    for i in range(seqs["alpha"].shape[0]):
        v = seqs["velocity"][i].astype(np.float64)
        squares = np.array([_square(a) for a in seqs["alpha"][i]], dtype=np.float64)
        exact = (squares[:, :2] + squares[:, 2:] / 2) / 2
        np.testing.assert_array_equal(exact, exact[0] + t * v)
        a = seqs["alpha"][i].astype(np.float64)
        mass = a.sum(axis=(1, 2))
        centroid = np.stack([(a * yy).sum(axis=(1, 2)) / mass, (a * xx).sum(axis=(1, 2)) / mass], axis=1)
        np.testing.assert_allclose(centroid, centroid[0] + t * v, rtol=0, atol=0.04)


def test_frames_are_the_alpha_composite(seqs: dict[str, np.ndarray]) -> None:
    frames, alpha, fg, bg = (seqs[k] for k in IMAGE_KEYS)
    solid = (alpha == 0) | (alpha == 1)
    composite = alpha * fg + (1 - alpha) * bg
    np.testing.assert_array_equal(frames[solid], composite[solid])
    # where alpha is 1 the frame is the foreground, where 0 the background
    np.testing.assert_array_equal(frames[alpha == 1], fg[alpha == 1])
    np.testing.assert_array_equal(frames[alpha == 0], bg[alpha == 0])
    # the foreground is only defined on the patch
    assert (fg[alpha == 0] == 0).all()


def test_background_is_static(seqs: dict[str, np.ndarray]) -> None:
    bg = seqs["bg"]
    np.testing.assert_array_equal(bg, np.broadcast_to(bg[:, :1], bg.shape))
    # and it is a real image, not a constant
    assert (bg.reshape(8, -1).std(axis=1) > 0.01).all()


def test_velocities_are_half_pixel_multiples(seqs: dict[str, np.ndarray], velocities64: np.ndarray) -> None:
    for v in (seqs["velocity"], velocities64):
        assert (np.abs(v) <= 2.0).all()
        np.testing.assert_array_equal(v * 2, np.round(v * 2))
    allowed = set(np.arange(-2.0, 2.01, 0.5).tolist())
    assert set(np.unique(velocities64).tolist()) <= allowed


def test_velocity_distribution_covers_both_signs_and_zero(velocities64: np.ndarray) -> None:
    for axis in range(2):
        v = velocities64[:, axis]
        assert (v > 0).any() and (v < 0).any() and (v == 0).any()
    # over 200 sequences every one of the nine values occurs on some axis
    assert set(np.unique(velocities64).tolist()) == set(np.arange(-2.0, 2.01, 0.5).tolist())


def test_first_frame_follows_the_velocity_sign(seqs: dict[str, np.ndarray]) -> None:
    """The patch starts at the edge it moves away from (centred for zero velocity)."""
    for i in range(8):
        a = seqs["alpha"][i, 0]
        r0, r1, c0, c1 = _bbox(a > 0)
        for v, lo, hi in ((seqs["velocity"][i, 0], r0, r1), (seqs["velocity"][i, 1], c0, c1)):
            if v > 0:
                assert lo <= 2
            elif v < 0:
                assert hi >= 128 - 3
            else:
                assert abs((lo + hi) / 2 - 63.5) <= 1


@pytest.mark.parametrize("size", [64, 128])
def test_patch_keeps_a_canvas_pixel_from_the_border(size: int) -> None:
    """The recipe starts a moving patch 1 canvas px from the edge: after 2x2 pooling the
    outermost output row/column is at most half covered, never fully."""
    alpha = make_sequences(8, size=size)["alpha"]
    border = np.concatenate([alpha[..., 0, :], alpha[..., -1, :], alpha[..., :, 0], alpha[..., :, -1]], axis=-1)
    assert border.max() <= 0.5


def test_patch_stays_inside_the_frame(seqs: dict[str, np.ndarray]) -> None:
    """Whatever the border margin, the patch never leaves (or wraps around) the frame."""
    alpha = seqs["alpha"]
    area = alpha.sum(axis=(2, 3))
    np.testing.assert_array_equal(area, np.broadcast_to(area[:, :1], area.shape))


# --------------------------------------------------------------------------- determinism


def test_batch_independence(seqs: dict[str, np.ndarray]) -> None:
    first4 = make_sequences(4)
    for key in KEYS:
        np.testing.assert_array_equal(first4[key], seqs[key][:4], err_msg=key)
    middle = make_sequences(2, start=3)
    for key in KEYS:
        np.testing.assert_array_equal(middle[key], seqs[key][3:5], err_msg=key)


def test_make_sequence_equals_the_row(seqs: dict[str, np.ndarray]) -> None:
    one = make_sequence(5)
    assert set(one) == set(KEYS)
    for key in KEYS:
        assert one[key].shape == seqs[key].shape[1:]
        np.testing.assert_array_equal(one[key], seqs[key][5], err_msg=key)


def test_repeatable() -> None:
    a, b = make_sequences(2, size=64, seed=7), make_sequences(2, size=64, seed=7)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])


def test_seeds_and_splits_differ() -> None:
    base = make_sequences(3, split="test", seed=0, size=64)
    other_seed = make_sequences(3, split="test", seed=1, size=64)
    train = make_sequences(3, split="train", seed=0, size=64)
    for other in (other_seed, train):
        for i in range(3):
            assert not np.array_equal(base["frames"][i], other["frames"][i])
            assert not np.array_equal(base["bg"][i], other["bg"][i])


def test_dataset_matches_the_generator() -> None:
    ref = make_sequences(3, split="train", seed=5, start=0, size=64)
    ds = MovingMNIST(3, split="train", seed=5, size=64)
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        assert set(item) == set(KEYS)
        for key in KEYS:
            assert isinstance(item[key], torch.Tensor) and item[key].dtype == torch.float32
            np.testing.assert_array_equal(item[key].numpy(), ref[key][i], err_msg=key)
    with pytest.raises(IndexError):
        ds[3]


@pytest.mark.parametrize("num_workers, batch_size, shuffle",
                         [(0, 1, False), (0, 3, True), (2, 3, False), (2, 1, True)])
def test_dataloader_gives_the_same_per_index_data(num_workers: int, batch_size: int, shuffle: bool) -> None:
    n = 6
    ref = make_sequences(n, split="test", seed=3, size=64)
    ds = MovingMNIST(n, split="test", seed=3, size=64)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                         num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(1))
    seen = []
    for batch in loader:
        assert batch["frames"].shape[1:] == (20, 64, 64)
        for b in range(batch["frames"].shape[0]):
            # find the reference row this item is, by its frames; all keys must then match
            matches = [i for i in range(n) if np.array_equal(batch["frames"][b].numpy(), ref["frames"][i])]
            assert len(matches) == 1
            i = matches[0]
            for key in KEYS:
                np.testing.assert_array_equal(batch[key][b].numpy(), ref[key][i], err_msg=key)
            seen.append(i)
    assert sorted(seen) == list(range(n))
    if not shuffle:
        assert seen == list(range(n))


def test_iter_batches_matches_one_call() -> None:
    whole = make_sequences(5, size=128)
    parts = list(D.iter_batches(5, 2))
    assert [p["frames"].shape[0] for p in parts] == [2, 2, 1]
    for key in KEYS:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


# --------------------------------------------------------------------------- vendored MNIST


def test_vendored_mnist_loads() -> None:
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.max() == 9


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
def test_corrupt_vendored_file_is_reported(vendored_copy: Path, name: str) -> None:
    path = vendored_copy / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    _, md5 = D.MNIST_FILES[("test", "images" if "images" in name else "labels")]
    with pytest.raises(DataFileError) as info:
        load_mnist("test")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert name in message
    assert md5 in message
    assert "corrupt" in message
    assert "restore" in message and "git checkout" in message
    # the generator reports it as well
    D.clear_caches()
    with pytest.raises(DataFileError, match=re.escape(name)):
        make_sequences(1, size=64)


def test_corrupt_train_file_does_not_break_test_split(vendored_copy: Path) -> None:
    path = vendored_copy / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    assert load_mnist("test")[0].shape == (10000, 28, 28)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.gz"):
        load_mnist("train")


def test_missing_vendored_file_is_reported(vendored_copy: Path) -> None:
    (vendored_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError) as info:
        load_mnist("test")
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "missing" in message
    assert D.MNIST_FILES[("test", "labels")][1] in message


def test_intact_vendored_copy_loads(vendored_copy: Path) -> None:
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)


# --------------------------------------------------------------------------- user MNIST folder


@pytest.mark.parametrize("compress", [True, False])
def test_user_folder_argument(tmp_path: Path, clean_mnist_cache, compress: bool) -> None:
    ref_images, ref_labels = load_mnist("test")
    folder = _user_folder(tmp_path / "user", compress=compress)
    images, labels = load_mnist("test", folder=str(folder))
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)


def test_user_folder_environment_variable(tmp_path: Path, clean_mnist_cache,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _user_folder(tmp_path / "small", n=10)
    D.clear_caches()
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", str(folder))
    images, labels = load_mnist("test")
    assert images.shape == (10, 28, 28) and labels.shape == (10,)
    # the generator draws its digits from that folder
    out = make_sequences(2, size=64)
    assert out["frames"].shape == (2, 20, 64, 64)


def test_nonexistent_user_folder(tmp_path: Path, clean_mnist_cache) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataFileError, match=re.escape(str(missing))):
        load_mnist("test", folder=str(missing))


def test_user_folder_without_the_files(tmp_path: Path, clean_mnist_cache) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte"):
        load_mnist("test", folder=str(tmp_path / "empty"))


@pytest.mark.parametrize("content", ["not idx", "not gzip", "truncated gzip", "truncated idx"])
def test_user_folder_with_a_bad_file(tmp_path: Path, clean_mnist_cache, content: str) -> None:
    folder = _user_folder(tmp_path / "bad", n=50)
    path = folder / "t10k-images-idx3-ubyte.gz"
    if content == "not idx":
        path.write_bytes(gzip.compress(b"hello, this is not an IDX file at all"))
    elif content == "not gzip":
        path.write_bytes(b"plain text pretending to be gzip")
    elif content == "truncated gzip":
        raw = path.read_bytes()
        path.write_bytes(raw[:len(raw) // 2])
    else:
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte"):
        load_mnist("test", folder=str(folder))


def test_user_folder_without_images(tmp_path: Path, clean_mnist_cache) -> None:
    folder = _user_folder(tmp_path / "none", n=0)
    with pytest.raises(DataFileError, match="no images"):
        load_mnist("test", folder=str(folder))


def test_user_folder_with_labels_in_place_of_images(tmp_path: Path, clean_mnist_cache) -> None:
    folder = _user_folder(tmp_path / "swap", n=50)
    shutil.copy(folder / "t10k-labels-idx1-ubyte.gz", folder / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataFileError, match="magic"):
        load_mnist("test", folder=str(folder))


# --------------------------------------------------------------------------- STL-10 backgrounds


def _fake_stl10(root: Path, k: int = 3, value: int | None = None, seed: int = 0) -> Path:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in ("train_X.bin", "test_X.bin"):
        if value is None:
            images = rng.integers(0, 256, size=(k, 3, 96, 96), dtype=np.uint8)
        else:
            images = np.full((k, 3, 96, 96), value, dtype=np.uint8)
        images.tofile(folder / name)
    return folder


@pytest.mark.parametrize("split", ["train", "test"])
def test_stl10_backgrounds(tmp_path: Path, split: str) -> None:
    _fake_stl10(tmp_path)
    out = make_sequences(2, split=split, size=64, backgrounds=Backgrounds(str(tmp_path)))
    for key in IMAGE_KEYS:
        assert out[key].shape == (2, 20, 64, 64)
        assert out[key].dtype == np.float32
        assert out[key].min() >= 0 and out[key].max() <= 1


def test_stl10_backgrounds_are_used(tmp_path: Path) -> None:
    """Constant STL-10 images give a constant (inverted) background; the folder itself works too."""
    folder = _fake_stl10(tmp_path, value=51)
    out = make_sequences(2, size=64, backgrounds=Backgrounds(str(folder)))
    np.testing.assert_allclose(out["bg"], 1 - 51 / 255, atol=1e-3)


def test_stl10_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_stl10(tmp_path, value=204)
    monkeypatch.setenv("MOTIONSEG_STL10_DIR", str(tmp_path))
    assert Backgrounds.default() == Backgrounds(str(tmp_path))
    out = make_sequences(1, size=64)
    np.testing.assert_allclose(out["bg"], 1 - 204 / 255, atol=1e-3)


def test_stl10_file_of_the_wrong_size(tmp_path: Path) -> None:
    folder = _fake_stl10(tmp_path)
    (folder / "test_X.bin").write_bytes(np.zeros(3 * 96 * 96 + 5, np.uint8).tobytes())
    with pytest.raises(DataFileError, match="test_X.bin"):
        make_sequences(1, split="test", size=64, backgrounds=Backgrounds(str(tmp_path)))


def test_stl10_missing_file(tmp_path: Path) -> None:
    folder = _fake_stl10(tmp_path)
    (folder / "test_X.bin").unlink()
    with pytest.raises(DataFileError, match="test_X.bin"):
        make_sequences(1, split="test", size=64, backgrounds=Backgrounds(str(tmp_path)))


# --------------------------------------------------------------------------- held-out photos


def _photo_values(monkeypatch: pytest.MonkeyPatch, split: str = "train") -> dict[str, float]:
    """Make each bundled photo of ``split`` one flat grey level, so a background names its photo."""
    values = {name: (i + 1) / 20 for i, name in enumerate(D.PHOTOS[split])}
    flat = tuple(np.full((120, 130), v, np.float32) for v in values.values())
    monkeypatch.setattr(D, "_skimage_photos", lambda s: flat if s == split else pytest.fail("other split"))
    return values


def _photos_used(out: dict[str, np.ndarray], values: dict[str, float]) -> set[str]:
    levels = 1 - out["bg"][:, 0, 0, 0]
    return {min(values, key=lambda n: abs(values[n] - v)) for v in levels}


def test_held_out_photos_are_a_part_of_the_training_photos() -> None:
    assert set(D.HELD_OUT_PHOTOS) < set(D.PHOTOS["train"]) and D.PHOTO_SETS[0] == "all"


def test_photo_sets_divide_the_training_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _photo_values(monkeypatch)
    held = _photos_used(make_sequences(30, "train", seed=3, size=64, photo_set="held_out"), values)
    assert held == set(D.HELD_OUT_PHOTOS)  # all three, and no other
    fit = _photos_used(make_sequences(60, "train", seed=3, size=64, photo_set="fit"), values)
    assert not fit & set(D.HELD_OUT_PHOTOS) and len(fit) >= 7
    every = _photos_used(make_sequences(60, "train", seed=3, size=64), values)
    assert every & set(D.HELD_OUT_PHOTOS) and every - set(D.HELD_OUT_PHOTOS)


def test_photo_set_all_is_the_default_data_byte_for_byte() -> None:
    a, b = make_sequences(2, "train", seed=5), make_sequences(2, "train", seed=5, photo_set="all")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    fit = make_sequences(2, "train", seed=5, photo_set="fit")
    # only the background's photo changes: digits, velocities and masks stay
    assert np.array_equal(a["alpha"], fit["alpha"]) and np.array_equal(a["velocity"], fit["velocity"])


def test_stl10_holds_out_every_tenth_image(tmp_path: Path) -> None:
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    # image i is flat grey level i (23 images: 0, 10 and 20 are held out)
    np.repeat(np.arange(23, dtype=np.uint8), 3 * 96 * 96).tofile(folder / "train_X.bin")
    source = Backgrounds(str(tmp_path))

    def images(photo_set: str) -> set[int]:
        out = make_sequences(40, "train", seed=1, size=64, backgrounds=source, photo_set=photo_set)
        return {int(round((1 - v) * 255)) for v in out["bg"][:, 0, 0, 0]}

    assert images("held_out") == {0, 10, 20}
    fit = images("fit")
    assert not fit & {0, 10, 20} and fit <= set(range(1, 23)) and len(fit) >= 12


@pytest.mark.parametrize("options, message", [
    (dict(split="test", photo_set="fit"), "the test split has only photo_set 'all'"),
    (dict(split="train", photo_set="validation"), "unknown photo_set 'validation': allowed are all, fit, held_out"),
    (dict(split="train", photo_set="held_out", background="textures"), "but background is 'textures'"),
])
def test_bad_photo_set(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_sequences(1, size=64, **options)
    split = options.pop("split")
    with pytest.raises(ValueError, match=re.escape(message)):
        D.MovingMNIST(1, split, size=64, **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        D.iter_batches(1, 1, split, size=64, **options)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("n", [0, -1, 2.0, "3", True, None])
def test_bad_n(n) -> None:
    with pytest.raises(ValueError, match="n must be a positive integer"):
        make_sequences(n)


@pytest.mark.parametrize("size", [63, 512, 32, 65.0])
def test_bad_size(size) -> None:
    with pytest.raises(ValueError, match=r"unsupported size .*allowed"):
        make_sequences(1, size=size)
    with pytest.raises(ValueError, match="unsupported size"):
        MovingMNIST(1, size=size)


@pytest.mark.parametrize("max_speed", [2.25, -1, 10, 0.3])
def test_bad_max_speed(max_speed: float) -> None:
    with pytest.raises(ValueError, match="max_speed") as info:
        make_sequences(1, size=64, max_speed=max_speed)
    assert str(max_speed) in str(info.value)
    with pytest.raises(ValueError, match="max_speed"):
        MovingMNIST(1, size=64, max_speed=max_speed)


def test_max_speed_limit_is_named() -> None:
    with pytest.raises(ValueError, match=r"allowed are 0 to 2\.0"):
        D.check_options(64, 10)


@pytest.mark.parametrize("size, max_speed", [(64, 2.0), (64, 0), (128, 1.5), (256, 4.0)])
def test_supported_options(size: int, max_speed: float) -> None:
    D.check_options(size, max_speed)


def test_zero_max_speed_gives_static_patches() -> None:
    out = make_sequences(2, size=64, max_speed=0)
    assert (out["velocity"] == 0).all()
    np.testing.assert_array_equal(out["frames"], np.broadcast_to(out["frames"][:, :1], out["frames"].shape))


@pytest.mark.parametrize("split", ["val", "Test", ""])
def test_unknown_split(split: str) -> None:
    with pytest.raises(ValueError, match=r"unknown split .*train, test"):
        make_sequences(1, split=split)
    with pytest.raises(ValueError, match="unknown split"):
        MovingMNIST(1, split=split)
    with pytest.raises(ValueError, match="unknown split"):
        load_mnist(split)


def test_bad_start_and_length() -> None:
    with pytest.raises(ValueError, match="start"):
        make_sequences(1, start=-1)
    with pytest.raises(ValueError, match="length"):
        MovingMNIST(0)
    with pytest.raises(ValueError, match="batch_size"):
        next(D.iter_batches(4, 0))


# --------------------------------------------------------------------------- make_patch


@pytest.mark.parametrize("index", [0, 1, 7])
def test_make_patch_frame(index: int) -> None:
    digit = load_mnist("test")[0][index]
    patch = make_patch(digit)
    assert patch.dtype == np.float32
    assert patch.ndim == 2 and patch.shape[0] == patch.shape[1]
    assert patch.min() >= 0 and patch.max() <= 1
    # size: the square bounding box scaled by 1.5, 4 px padding and 3 rings on each side
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    side = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    assert patch.shape[0] == int(round(side * 1.5)) + 2 * 4 + 2 * 3
    # three 1 px rings (0.5, 0.75, 0.5), outside in
    for ring, value in enumerate((0.5, 0.75, 0.5)):
        inner = patch[ring:patch.shape[0] - ring, ring:patch.shape[1] - ring]
        edge = np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]])
        assert (edge == value).all(), (ring, np.unique(edge))
    # then 4 px of zero padding all round
    body = patch[3:-3, 3:-3]
    assert (body[:4] == 0).all() and (body[-4:] == 0).all()
    assert (body[:, :4] == 0).all() and (body[:, -4:] == 0).all()
    # and the digit itself inside
    digit_area = body[4:-4, 4:-4]
    assert digit_area.max() > 0.5
    assert (digit_area > 0).any(axis=1)[[0, -1]].any() or (digit_area > 0).any(axis=0)[[0, -1]].any()


def test_make_patch_blank_digit() -> None:
    patch = make_patch(np.zeros((28, 28), np.uint8))
    assert np.isfinite(patch).all()
    assert patch.shape == (28 * 3 // 2 + 14,) * 2
    assert (patch[7:-7, 7:-7] == 0).all()
    assert patch[0, 0] == 0.5 and patch[1, 1] == 0.75 and patch[2, 2] == 0.5


def test_make_patch_full_digit() -> None:
    patch = make_patch(np.full((28, 28), 255, np.uint8))
    assert np.isfinite(patch).all()
    np.testing.assert_allclose(patch[7:-7, 7:-7], 1.0)


# --------------------------------------------------------------------------- seeds, indices, caches


BAD_SEEDS = [1.7, 2.0, np.float64(1.0), "3", "abc", None, True, False, np.bool_(True),
             -1, np.int64(-1), 2**32, np.uint64(2**32), 2**40]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_bad_seed_is_refused_everywhere(seed) -> None:
    """No coercion: 1.7, '3' or 2**32 used to give the data of seeds 1, 3 and 0."""
    calls = {"make_sequences": lambda: make_sequences(1, seed=seed, size=64),
             "make_sequence": lambda: make_sequence(0, seed=seed, size=64),
             "MovingMNIST": lambda: MovingMNIST(1, seed=seed, size=64),
             "iter_batches": lambda: D.iter_batches(1, 1, seed=seed, size=64)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"seed .*allowed are integers .*not bool.* 0 to below 2\*\*32"):
            call()


def test_good_seeds() -> None:
    ref = make_sequences(1, seed=5, size=64)["frames"]
    for seed in (np.int64(5), np.uint32(5), np.int8(5)):
        np.testing.assert_array_equal(make_sequences(1, seed=seed, size=64)["frames"], ref)
    # the largest seed is allowed and is not seed 0 in disguise
    top = make_sequences(1, seed=2**32 - 1, size=64)["frames"]
    assert not np.array_equal(top, make_sequences(1, seed=0, size=64)["frames"])
    assert MovingMNIST(1, seed=np.int64(7), size=64).seed == 7


@pytest.mark.parametrize("value", [1.0, "1", True, None, -1, 2**63], ids=repr)
def test_bad_start_and_index(value) -> None:
    with pytest.raises(ValueError, match=r"start .*allowed are integers"):
        make_sequences(1, start=value, size=64)
    with pytest.raises(ValueError, match=r"index .*allowed are integers"):
        make_sequence(value, size=64)


def test_start_plus_n_must_stay_below_the_index_limit() -> None:
    with pytest.raises(ValueError, match=r"start \+ n .*2\*\*63"):
        make_sequences(2, start=2**63 - 1, size=64)


def test_numpy_integers_are_accepted_for_counts_and_indices() -> None:
    ref = make_sequences(2, start=3, size=64)
    got = make_sequences(np.int64(2), start=np.uint16(3), size=64)
    np.testing.assert_array_equal(got["frames"], ref["frames"])
    np.testing.assert_array_equal(make_sequence(np.int32(4), size=64)["frames"], ref["frames"][1])
    ds = MovingMNIST(np.int64(5), size=64)
    assert len(ds) == 5
    np.testing.assert_array_equal(ds[np.int64(3)]["frames"].numpy(), ds[3]["frames"].numpy())


@pytest.mark.parametrize("value", [2.0, "2", True, None], ids=repr)
def test_dataset_length_and_index_must_be_integers(value) -> None:
    with pytest.raises(ValueError, match=r"length .*allowed are integers"):
        MovingMNIST(value, size=64)
    with pytest.raises(ValueError, match="index must be an integer"):
        MovingMNIST(3, size=64)[value]


@pytest.mark.parametrize("n, batch_size", [(0, 1), (1.5, 1), (True, 1), (4, 0), (4, 2.0), (4, True), (4, -1)],
                         ids=repr)
def test_iter_batches_checks_its_arguments_at_the_call(n, batch_size) -> None:
    # no next(): the error comes when the iterator is made, not at the first batch
    with pytest.raises(ValueError, match="n |batch_size "):
        D.iter_batches(n, batch_size)


def test_iter_batches_passes_the_options_on() -> None:
    parts = list(D.iter_batches(3, 2, "train", 4, size=64, max_speed=1.0, n_frames=5))
    whole = make_sequences(3, "train", 4, size=64, max_speed=1.0, n_frames=5)
    for key in KEYS:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key], err_msg=key)


def test_empty_stl10_file_is_a_data_file_error(tmp_path: Path) -> None:
    folder = _fake_stl10(tmp_path)
    (folder / "test_X.bin").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"test_X\.bin is empty"):
        make_sequences(1, split="test", size=64, backgrounds=Backgrounds(str(tmp_path)))


def test_mnist_folder_from_the_environment_is_read_at_each_call(tmp_path: Path, clean_mnist_cache,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing MOTIONSEG_MNIST_DIR within a process takes effect (the cache used to ignore it)."""
    assert load_mnist("test")[0].shape == (10000, 28, 28)  # vendored, now cached
    folder = _user_folder(tmp_path / "small", n=10)
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", str(folder))
    assert load_mnist("test")[0].shape == (10, 28, 28)
    other = _user_folder(tmp_path / "smaller", n=7)
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", str(other))
    assert load_mnist("test")[0].shape == (7, 28, 28)
    monkeypatch.delenv("MOTIONSEG_MNIST_DIR")
    assert load_mnist("test")[0].shape == (10000, 28, 28)


def test_files_are_cached_per_folder_until_clear_caches(tmp_path: Path, clean_mnist_cache) -> None:
    folder = _user_folder(tmp_path / "user", n=10)
    assert load_mnist("test", folder=str(folder))[0].shape == (10, 28, 28)
    _user_folder(folder, n=4)  # rewritten in place: the cache still holds the old arrays
    assert load_mnist("test", folder=str(folder))[0].shape == (10, 28, 28)
    D.clear_caches()
    assert load_mnist("test", folder=str(folder))[0].shape == (4, 28, 28)


def test_relative_mnist_folder_follows_the_working_directory(tmp_path: Path, clean_mnist_cache,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _user_folder(tmp_path / "a" / "mnist", n=10)
    _user_folder(tmp_path / "b" / "mnist", n=7)
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", "mnist")
    monkeypatch.chdir(tmp_path / "a")
    assert load_mnist("test")[0].shape == (10, 28, 28)
    monkeypatch.chdir(tmp_path / "b")
    assert load_mnist("test")[0].shape == (7, 28, 28)
    assert load_mnist("test", folder="mnist")[0].shape == (7, 28, 28)


def test_stl10_folder_from_the_environment_is_read_at_each_call(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Both a changed variable and a relative folder after a change of directory take effect."""
    _fake_stl10(tmp_path / "a" / "stl", value=51)
    _fake_stl10(tmp_path / "b" / "stl", value=204)
    monkeypatch.setenv("MOTIONSEG_STL10_DIR", str(tmp_path / "a" / "stl"))
    np.testing.assert_allclose(make_sequences(1, size=64)["bg"], 1 - 51 / 255, atol=1e-3)
    monkeypatch.setenv("MOTIONSEG_STL10_DIR", str(tmp_path / "b" / "stl"))
    np.testing.assert_allclose(make_sequences(1, size=64)["bg"], 1 - 204 / 255, atol=1e-3)
    monkeypatch.setenv("MOTIONSEG_STL10_DIR", "stl")
    monkeypatch.chdir(tmp_path / "a")
    np.testing.assert_allclose(make_sequences(1, size=64)["bg"], 1 - 51 / 255, atol=1e-3)
    monkeypatch.chdir(tmp_path / "b")
    np.testing.assert_allclose(make_sequences(1, size=64)["bg"], 1 - 204 / 255, atol=1e-3)


# --------------------------------------------------------------------------- the recipe (reference notes §1)


RING_ROWS = (0.5, 0.75, 0.5, 0.0, 0.0, 0.0, 0.0)  # canvas rows from a patch edge inwards: rings, padding


def _recipe_patch(digit: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The canvas patch written from the recipe, independently of ``make_patch``: the digit
    (/255) in its square bounding box (shorter side padded symmetrically), resized by
    1.5 * scale, 4 px of zeros, then rings 0.5, 0.75, 0.5 from the inside out."""
    ys, xs = np.nonzero(digit)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    side = max(h, w)
    square = np.zeros((side, side))
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = digit[ys.min():ys.max() + 1, xs.min():xs.max() + 1] / 255.0
    n = int(np.rint(side * 1.5 * scale))
    body = np.clip(resize(square, (n, n), order=1, anti_aliasing=False, preserve_range=True), 0, 1)
    patch = np.zeros((n + 14, n + 14))
    for ring, value in enumerate(RING_ROWS):
        patch[ring:n + 14 - ring, ring:n + 14 - ring] = value
    patch[7:-7, 7:-7] = body
    return patch


def _shown_patch(seq: dict[str, np.ndarray], t: int, patch: np.ndarray) -> bool:
    """Whether frame t shows ``patch`` where alpha says the patch is (fg and frame)."""
    a = seq["alpha"][t]
    y, x, side = _square(a)
    if side != patch.shape[0]:
        return False
    size = a.shape[0]
    canvas = np.zeros((2 * size, 2 * size))
    canvas[y:y + side, x:x + side] = patch
    pooled = canvas.reshape(size, 2, size, 2).mean(axis=(1, 3))
    expected_fg = np.divide(pooled, a, out=np.zeros_like(pooled), where=a > 0)
    full = a == 1
    return bool(np.allclose(seq["fg"][t], expected_fg, rtol=0, atol=1e-5)
                and np.allclose(seq["frames"][t][full], pooled[full], rtol=0, atol=1e-5))


@pytest.fixture
def six_digits_per_split(tmp_path: Path, clean_mnist_cache, monkeypatch: pytest.MonkeyPatch
                         ) -> dict[str, np.ndarray]:
    """An MNIST folder with 6 real digits per split (train ones from MNIST train, test from test)."""
    digits = {split: load_mnist(split)[0][:6] for split in D.SPLITS}
    folder = tmp_path / "six"
    folder.mkdir()
    for split, prefix in (("train", "train"), ("test", "t10k")):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(digits[split], 0x803))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(6, np.uint8), 0x801))
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", str(folder))
    return digits


@pytest.mark.parametrize("scale", [1.0, 0.75, 2.0])
def test_digits_come_from_their_own_split(six_digits_per_split: dict[str, np.ndarray], scale: float) -> None:
    """Each sequence shows the recipe's patch of a digit of its own split, never of the other."""
    for split, other in (("train", "test"), ("test", "train")):
        out = make_sequences(6, split=split, seed=1, size=64, max_speed=1.0, scale=scale)
        used = set()
        for i in range(6):
            seq = {k: out[k][i] for k in IMAGE_KEYS}
            own = [j for j, d in enumerate(six_digits_per_split[split])
                   if all(_shown_patch(seq, t, _recipe_patch(d, scale)) for t in (0, 19))]
            foreign = [j for j, d in enumerate(six_digits_per_split[other])
                       if _shown_patch(seq, 0, _recipe_patch(d, scale))]
            assert len(own) == 1 and not foreign, (split, i, own, foreign)
            used.add(own[0])
        assert len(used) >= 3, "the digit draw hardly varies"


def test_every_speed_and_sign_quadrant_occurs(velocities64: np.ndarray) -> None:
    speeds = set(np.arange(-2.0, 2.01, 0.5).tolist())
    for axis in range(2):
        assert set(velocities64[:, axis].tolist()) == speeds, axis
    signs = {(int(np.sign(vy)), int(np.sign(vx))) for vy, vx in velocities64}
    assert {(1, 1), (1, -1), (-1, 1), (-1, -1)} <= signs


def test_patch_starts_at_the_border_it_moves_away_from(many64: dict[str, np.ndarray]) -> None:
    """Canvas start per axis: 1 for a positive velocity, canvas - side - 1 for a negative
    one, (canvas - side) // 2 for zero (read back from the first alpha)."""
    canvas = 128
    checked = set()
    for v, squares in zip(many64["velocity"], many64["squares"]):
        y, x, side = squares[0]
        for speed, start in ((v[0], y), (v[1], x)):
            if speed > 0:
                assert start == 1
            elif speed < 0:
                assert start == canvas - side - 1
            else:
                assert start == (canvas - side) // 2
            checked.add(int(np.sign(speed)))
    assert checked == {-1, 0, 1}


def test_patch_never_touches_a_border(seqs: dict[str, np.ndarray], many64: dict[str, np.ndarray]) -> None:
    """In every frame the square keeps at least 1 canvas px from each border, and its side is fixed."""
    at_128 = np.array([[_square(a) for a in seq] for seq in seqs["alpha"]])
    for squares, canvas in ((at_128, 256), (many64["squares"], 128)):
        y, x, side = squares[..., 0], squares[..., 1], squares[..., 2]
        assert y.min() >= 1 and x.min() >= 1
        assert (y + side).max() <= canvas - 1 and (x + side).max() <= canvas - 1
        np.testing.assert_array_equal(side, side[:, :1].repeat(side.shape[1], axis=1))
    # the moving patches start at the 1 px margins, so the check above is not vacuous
    first = many64["squares"][:, 0]
    assert (first[:, 0] == 1).any() and (first[:, 0] + first[:, 2] == 127).any()


def _check_rings(fg: np.ndarray, y: int, x: int, side: int) -> None:
    """Along each of the four edges of the square, fg shows the rings and the padding."""
    size = fg.shape[0]
    views = [(fg, y, x), (fg[::-1], 2 * size - y - side, x), (fg.T, x, y), (fg.T[::-1], 2 * size - x - side, y)]
    for view, top, left in views:
        # output columns whose two canvas columns lie in the edge band's uniform part
        cols = [c for c in range(size) if 2 * c >= left + 3 and 2 * c + 1 < left + side - 3]
        assert cols
        for r in range(top // 2, size):
            if 2 * r + 1 > top + len(RING_ROWS) - 1:
                break
            covered = [RING_ROWS[k - top] for k in (2 * r, 2 * r + 1) if top <= k]
            np.testing.assert_allclose(view[r, cols], np.mean(covered), rtol=0, atol=1e-6)


def test_frame_rings_and_padding_are_shown(seqs: dict[str, np.ndarray]) -> None:
    for i in range(4):
        for t in (0, 7, 19):
            _check_rings(seqs["fg"][i, t], *_square(seqs["alpha"][i, t]))


def _asymmetric_stl10_image() -> np.ndarray:
    """96 x 96 x RGB: brighter downwards (2 per row) and a bright left half (+40)."""
    rows = np.arange(96)[:, None] * 2
    left = (np.arange(96)[None, :] < 48) * 40
    return np.repeat((rows + left).astype(np.uint8)[..., None], 3, axis=2)


def test_stl10_images_keep_their_orientation(tmp_path: Path) -> None:
    """Written channel-first and column-major like STL-10, the image is read back upright."""
    img = _asymmetric_stl10_image()
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    img.transpose(2, 1, 0)[None].tofile(folder / "test_X.bin")  # N x C x W x H, as STL-10 stores it
    sample = Backgrounds(str(tmp_path)).sample("test", np.random.default_rng(0))
    np.testing.assert_allclose(sample, img[..., 0] / 255.0, rtol=0, atol=1e-3)
    bg = make_sequences(1, size=64, backgrounds=Backgrounds(str(tmp_path)))["bg"][0, 0]
    # inverted: the top is brighter than the bottom, and the left half darker than the right
    assert (np.diff(bg.mean(axis=1)) < 0).all()
    assert bg[:, :30].mean() < bg[:, 34:].mean() - 0.1


def test_pooled_identity_at_fractional_edges(tmp_path: Path) -> None:
    """frame = a*fg + (1-a)*bg also at fractional alpha when the background is flat within
    each 2x2 block (grey, constant STL-10); on photos the error is the background's
    variation inside the block times a(1-a), so at most a(1-a)."""
    flat = [make_sequences(3, size=64, background="grey"),
            make_sequences(3, size=64, backgrounds=Backgrounds(str(_fake_stl10(tmp_path, value=90))))]
    for out in flat:
        frames, a, fg, bg = (out[k] for k in IMAGE_KEYS)
        frac = (a > 0) & (a < 1)
        assert frac.any()
        np.testing.assert_allclose(frames, a * fg + (1 - a) * bg, rtol=0, atol=1e-6)
    out = make_sequences(3, size=64)
    frames, a, fg, bg = (out[k] for k in IMAGE_KEYS)
    assert (np.abs(frames - (a * fg + (1 - a) * bg)) <= a * (1 - a) + 1e-6).all()


# --------------------------------------------------------------------------- options beyond the paper


OPTION_SETS = {
    "bounce-fast-long": dict(bounce=True, max_speed=4.0, n_frames=40),
    "long-slow": dict(n_frames=30, max_speed=1.0),
    "two-digits": dict(n_digits=2),
    "two-digits-bounce": dict(n_digits=2, bounce=True, max_speed=3.0, n_frames=25),
    "three-shapes": dict(n_digits=3, foreground="shapes", max_speed=1.5),
    "shapes": dict(foreground="shapes"),
    "scale-0.75": dict(scale=0.75),
    "scale-2": dict(scale=2.0, max_speed=1.0),
    "noise": dict(background="noise"),
    "grey": dict(background="grey"),
    "textures": dict(background="textures"),
}


@pytest.fixture(scope="module")
def option_outputs() -> dict[str, dict[str, np.ndarray]]:
    return {name: make_sequences(3, "test", 2, size=64, **opts) for name, opts in OPTION_SETS.items()}


def _object_views(out: dict[str, np.ndarray], opts: dict) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per object: (alpha n x T x H x W, fg, initial velocity n x 2, per-frame velocity n x T x 2)."""
    T = opts.get("n_frames", 20)
    if opts.get("n_digits", 1) == 1:
        per_frame = out.get("velocity_per_frame", np.repeat(out["velocity"][:, None], T, axis=1))
        return [(out["alpha"], out["fg"], out["velocity"], per_frame)]
    views = []
    for k in range(opts["n_digits"]):
        v = out["obj_velocity"][:, k]
        per_frame = out["obj_velocity_per_frame"][:, k] if opts.get("bounce") else np.repeat(v[:, None], T, axis=1)
        views.append((out["obj_alpha"][:, k], out["obj_fg"][:, k], v, per_frame))
    return views


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_option_outputs_have_the_documented_keys(name: str, option_outputs) -> None:
    opts, out = OPTION_SETS[name], option_outputs[name]
    T, k = opts.get("n_frames", 20), opts.get("n_digits", 1)
    expected = {"frames": (3, T, 64, 64), "alpha": (3, T, 64, 64), "fg": (3, T, 64, 64),
                "bg": (3, T, 64, 64), "velocity": (3, 2)}
    if opts.get("bounce"):
        expected["velocity_per_frame"] = (3, T, 2)
    if k > 1:
        expected.update(obj_alpha=(3, k, T, 64, 64), obj_fg=(3, k, T, 64, 64), obj_velocity=(3, k, 2))
        if opts.get("bounce"):
            expected["obj_velocity_per_frame"] = (3, k, T, 2)
    assert {key: v.shape for key, v in out.items()} == expected
    for key, v in out.items():
        assert v.dtype == np.float32 and np.isfinite(v).all(), key
        if key not in ("velocity", "velocity_per_frame", "obj_velocity", "obj_velocity_per_frame"):
            assert v.min() >= 0 and v.max() <= 1, key


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_option_ground_truth_is_correct(name: str, option_outputs) -> None:
    """For every option: the frame recomposes from the ground truth, each alpha is its
    object's square (inside the frame), velocities match the alpha centroid's motion."""
    opts, out = OPTION_SETS[name], option_outputs[name]
    frames, alpha, fg, bg = (out[k] for k in IMAGE_KEYS)
    solid = (alpha == 0) | (alpha == 1)
    np.testing.assert_allclose(frames[solid], (alpha * fg + (1 - alpha) * bg)[solid], rtol=0, atol=1e-6)
    assert (fg[alpha == 0] == 0).all()
    np.testing.assert_array_equal(bg, np.broadcast_to(bg[:, :1], bg.shape))
    yy, xx = np.mgrid[:64, :64].astype(np.float64)
    for obj_alpha, obj_fg, v0, per_frame in _object_views(out, opts):
        np.testing.assert_array_equal(per_frame[:, 0], v0)
        for i in range(3):
            squares = np.array([_square(a) for a in obj_alpha[i]])
            assert squares[:, :2].min() >= 1 and (squares[:, :2] + squares[:, 2:]).max() <= 127
            assert (squares[:, 2] == squares[0, 2]).all()
            for t in (0, len(squares) // 2, len(squares) - 1):
                _check_rings(obj_fg[i, t], *squares[t])
            # the square's centroid, read back exactly on the canvas, in output px
            exact = (squares[:, :2] + squares[:, 2:] / 2) / 2
            np.testing.assert_array_equal(np.diff(exact, axis=0), per_frame[i, :-1])
            # the pooled alpha's own centroid: exact up to the pooling bias of an odd
            # canvas side (at most 1/60 px for sides >= 15 canvas px)
            a = obj_alpha[i].astype(np.float64)
            mass = a.sum(axis=(1, 2))
            centroid = np.stack([(a * yy).sum(axis=(1, 2)), (a * xx).sum(axis=(1, 2))], axis=1) / mass[:, None]
            np.testing.assert_allclose(np.diff(centroid, axis=0), per_frame[i, :-1], rtol=0, atol=0.04)


@pytest.mark.parametrize("name", ["bounce-fast-long", "two-digits-bounce", "three-shapes", "textures"])
def test_options_are_deterministic_per_index(name: str, option_outputs) -> None:
    opts, out = OPTION_SETS[name], option_outputs[name]
    again = make_sequences(2, "test", 2, start=1, size=64, **opts)
    one = make_sequence(2, "test", 2, size=64, **opts)
    item = MovingMNIST(3, "test", 2, size=64, **opts)[2]
    assert set(one) == set(out) == set(item)
    for key in out:
        np.testing.assert_array_equal(again[key], out[key][1:], err_msg=key)
        np.testing.assert_array_equal(one[key], out[key][2], err_msg=key)
        np.testing.assert_array_equal(item[key].numpy(), out[key][2], err_msg=key)
    other_seed = make_sequences(1, "test", 3, start=2, size=64, **opts)
    assert not np.array_equal(other_seed["frames"][0], out["frames"][2])


def test_options_change_only_what_they_name(seqs: dict[str, np.ndarray], option_outputs) -> None:
    ref = make_sequences(3, "test", 2, size=64)
    for name in ("noise", "grey", "textures"):  # only the background changes
        out = option_outputs[name]
        for key in ("alpha", "fg", "velocity"):
            np.testing.assert_array_equal(out[key], ref[key], err_msg=(name, key))
        assert not np.array_equal(out["bg"], ref["bg"])
    two = option_outputs["two-digits"]  # object 0 and the background are the one-digit sequence's
    np.testing.assert_array_equal(two["obj_alpha"][:, 0], ref["alpha"])
    np.testing.assert_array_equal(two["obj_fg"][:, 0], ref["fg"])
    np.testing.assert_array_equal(two["velocity"], ref["velocity"])
    np.testing.assert_array_equal(two["bg"], ref["bg"])
    # a longer sequence begins with the 20-frame one (no bounce)
    long = make_sequences(2, "test", 2, size=64, max_speed=1.0, n_frames=30)
    short = make_sequences(2, "test", 2, size=64, max_speed=1.0)
    for key in IMAGE_KEYS:
        np.testing.assert_array_equal(long[key][:, :20], short[key], err_msg=key)


def _reflect_steps(start: int, v: int, low: int, high: int, n: int) -> list[int]:
    """Positions of a point moving by v per step and reflecting at low and high, step by step."""
    pos, out = start, [start]
    for _ in range(n - 1):
        pos += v
        if pos < low:
            pos, v = 2 * low - pos, -v
        elif pos > high:
            pos, v = 2 * high - pos, -v
        out.append(pos)
    return out


def test_bounce_reflects_one_canvas_pixel_from_the_borders() -> None:
    out = make_sequences(6, "test", 0, size=64, bounce=True, max_speed=4.0, n_frames=40)
    flips = 0
    for i in range(6):
        squares = np.array([_square(a) for a in out["alpha"][i]])
        side = int(squares[0, 2])
        for axis in range(2):
            v = int(out["velocity"][i, axis] * 2)
            expected = _reflect_steps(int(squares[0, axis]), v, 1, 128 - side - 1, 40)
            np.testing.assert_array_equal(squares[:, axis], expected)
            step = out["velocity_per_frame"][i, :, axis]
            np.testing.assert_array_equal(step[:-1] * 2, np.diff(squares[:, axis]))
            flips += int((np.diff(np.sign(step)) != 0).sum())
    assert flips >= 6, "hardly any bounce: the test would not test reflection"


def test_speeds_up_to_4_px_per_frame() -> None:
    fast = make_sequences(100, size=64, bounce=True, max_speed=4.0, n_frames=2)["velocity"]
    assert set(fast.ravel().tolist()) == set(np.arange(-4.0, 4.01, 0.5).tolist())
    # without bounce where the frame allows it: 4 px/frame over 20 frames at 128 x 128
    out = make_sequences(2, size=128, max_speed=4.0)
    assert np.abs(out["velocity"]).max() <= 4.0
    D.check_options(256, 4.0, n_frames=40)


def test_two_digits_occlusion_order_and_union(option_outputs) -> None:
    """Object 0 is in front; alpha/fg are the union of the objects as the frame shows it."""
    for name in ("two-digits", "two-digits-bounce", "three-shapes"):
        out, k = option_outputs[name], OPTION_SETS[name]["n_digits"]
        obj_alpha, obj_fg, frames = out["obj_alpha"], out["obj_fg"], out["frames"]
        overlap_seen = False
        for i in range(3):
            for t in range(frames.shape[1]):
                squares = [_square(obj_alpha[i, j, t]) for j in range(k)]
                cover = np.zeros((128, 128))
                for y, x, side in squares:
                    cover[y:y + side, x:x + side] = 1
                np.testing.assert_array_equal(out["alpha"][i, t], cover.reshape(64, 2, 64, 2).mean(axis=(1, 3)))
                hidden = np.zeros((64, 64), bool)
                for j in range(k):  # front to back
                    mine = (obj_alpha[i, j, t] == 1) & ~hidden
                    np.testing.assert_array_equal(frames[i, t][mine], obj_fg[i, j, t][mine])
                    np.testing.assert_array_equal(out["fg"][i, t][mine], obj_fg[i, j, t][mine])
                    overlap_seen |= bool((hidden & (obj_alpha[i, j, t] == 1)).any())
                    hidden |= obj_alpha[i, j, t] > 0
        assert not np.array_equal(out["obj_velocity"][:, 0], out["obj_velocity"][:, 1])
        if name == "two-digits-bounce":
            assert overlap_seen, "no occlusion in these sequences: pick others"


def test_further_objects_start_at_random_places() -> None:
    out = make_sequences(8, "test", 0, size=64, n_digits=2)
    starts0 = {_square(a)[:2] for a in out["obj_alpha"][:, 0, 0]}
    starts1 = {_square(a)[:2] for a in out["obj_alpha"][:, 1, 0]}
    assert len(starts1) == 8 and len(starts1 - starts0) >= 6


def test_shapes_foreground_needs_no_mnist(tmp_path: Path, clean_mnist_cache,
                                          monkeypatch: pytest.MonkeyPatch, option_outputs) -> None:
    monkeypatch.setenv("MOTIONSEG_MNIST_DIR", str(tmp_path / "no-mnist-here"))
    with pytest.raises(DataFileError):
        make_sequences(1, size=64)
    out = make_sequences(3, "test", 2, size=64, foreground="shapes")
    np.testing.assert_array_equal(out["frames"], option_outputs["shapes"]["frames"])
    # a filled shape, not a digit stroke: the body holds a flat region of one value
    for i in range(3):
        y, x, side = _square(out["alpha"][i, 0])
        body = out["fg"][i, 0][(y + 8) // 2 + 1:(y + side - 8) // 2 - 1, (x + 8) // 2 + 1:(x + side - 8) // 2 - 1]
        values, counts = np.unique(body[body > 0], return_counts=True)
        assert counts.max() >= 9, (i, values, counts)
        # drawn on black (random_shapes' white background removed), at most 254/255
        assert body.max() <= 254 / 255 + 1e-6


def test_shape_images_are_visible_filled_shapes() -> None:
    """Each stand-in digit is one shape of one grey level (64..254) on black, at most 20 px."""
    for s in range(50):
        img = D._shape_image(np.random.default_rng(s))
        assert img.shape == (28, 28) and img.dtype == np.uint8
        levels = np.unique(img[img > 0])
        assert len(levels) == 1 and 64 <= levels[0] <= 254, (s, levels)
        rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= D.MAX_DIGIT_SIDE
        assert (img > 0).sum() >= 10


def test_scale_sets_the_patch_size(option_outputs) -> None:
    sides = {name: {_square(a)[2] for a in option_outputs[name]["alpha"][:, 0]}
             for name in ("scale-0.75", "scale-2")}
    ref = {_square(a)[2] for a in make_sequences(3, "test", 2, size=64)["alpha"][:, 0]}
    assert max(sides["scale-0.75"]) < min(ref) and max(ref) < min(sides["scale-2"])
    assert max(sides["scale-2"]) <= int(round(20 * 1.5 * 2)) + 14


def test_background_kinds(option_outputs, monkeypatch: pytest.MonkeyPatch) -> None:
    np.testing.assert_array_equal(option_outputs["grey"]["bg"], 0.5)
    noise = make_sequences(3, size=64, background="noise")["bg"][:, 0]
    assert noise.min() < 0.15 and noise.max() > 0.85 and abs(noise.mean() - 0.5) < 0.05
    # neighbouring pixels are hardly correlated beyond the resizing
    assert np.abs(np.diff(noise, axis=-1)).mean() > 0.1

    def no_photos(split: str):
        raise AssertionError("textures must not read the bundled photos")

    monkeypatch.setattr(D, "_skimage_photos", no_photos)
    textures = make_sequences(9, size=64, background="textures")["bg"][:, 0]
    assert (textures.reshape(9, -1).std(axis=1) > 0.05).all()
    assert len({t.tobytes() for t in textures}) == 9
    for kind in ("noise", "grey"):
        make_sequences(1, size=64, background=kind)


def test_textures_use_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """All of TEXTURES occur, and each kind looks like what it claims to be."""
    made: dict[str, list[np.ndarray]] = {kind: [] for kind in D.TEXTURES}
    for kind, maker in list(D._TEXTURE_MAKERS.items()):
        def counting(rng, n, kind=kind, maker=maker):
            img = maker(rng, n)
            made[kind].append(img)
            return img
        monkeypatch.setitem(D._TEXTURE_MAKERS, kind, counting)
    make_sequences(12, size=64, background="textures", n_frames=2)
    assert all(made.values()), {k: len(v) for k, v in made.items()}
    for kind, images in made.items():
        for img in images:
            assert img.shape == (96, 96) and img.min() >= 0 and img.max() <= 1
            levels = np.unique(img)
            if kind == "blobs":  # two grey levels at least 0.3 apart
                assert len(levels) == 2 and levels[1] - levels[0] >= 0.3
            else:
                assert len(levels) > 1000
            if kind == "plaid":  # a sum of two cosines: values symmetric about 0.5
                assert abs(float(np.median(img)) - 0.5) < 0.1 and img.std() > 0.1
            if kind == "fractal":  # stretched to the full range
                assert img.min() == 0 and img.max() == 1


BAD_OPTIONS = [
    (dict(max_speed=-0.5), r"max_speed .*>= 0"),
    (dict(max_speed=float("nan")), r"max_speed"),
    (dict(max_speed=float("inf")), r"max_speed"),
    (dict(max_speed=True), r"max_speed"),
    (dict(max_speed=4.5, bounce=True), r"allowed are 0 to 4\.0"),
    (dict(n_digits=0), r"n_digits .*from 1 to below 5"),
    (dict(n_digits=5), r"n_digits .*from 1 to below 5"),
    (dict(n_digits=2.0), r"n_digits .*integers"),
    (dict(foreground="grid"), r"unknown foreground 'grid': allowed are digit, shapes"),
    (dict(background="stl10"), r"unknown background 'stl10': allowed are photos, noise, grey, textures"),
    (dict(scale=0.5), r"scale .*0\.75 to 2\.0"),
    (dict(scale=2.5), r"scale .*0\.75 to 2\.0"),
    (dict(scale=float("nan")), r"scale .*0\.75 to 2\.0"),
    (dict(scale="1"), r"scale .*0\.75 to 2\.0"),
    (dict(scale=True), r"scale .*0\.75 to 2\.0"),
    (dict(n_frames=1), r"n_frames .*from 2 to below 101"),
    (dict(n_frames=0), r"n_frames .*from 2 to below 101"),
    (dict(n_frames=101), r"n_frames .*from 2 to below 101"),
    (dict(n_frames=20.0), r"n_frames .*integers"),
    (dict(bounce=1), r"bounce must be True or False"),
    (dict(bounce="yes"), r"bounce must be True or False"),
    (dict(n_frames=40), r"allowed are 0 to 1\.0 in 0\.5 steps.*or bounce=True"),
    (dict(scale=2.0), r"allowed are 0 to 1\.0 in 0\.5 steps.*or bounce=True"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS, ids=[repr(o) for o, _ in BAD_OPTIONS])
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_sequences(1, size=64, **options)
    with pytest.raises(ValueError, match=message):
        MovingMNIST(1, size=64, **options)
    with pytest.raises(ValueError, match=message):
        D.iter_batches(1, 1, size=64, **options)
    rest = {k: v for k, v in options.items() if k != "max_speed"}
    with pytest.raises(ValueError, match=message):
        D.check_options(64, options.get("max_speed", 2.0), **rest)
