"""Dataset sources: embedded, procedural and local real datasets, as uint8 arrays.

Nothing here downloads: real datasets are read from local paths in their standard on-disk
formats. No torch import, so config validation can call ``check_source`` cheaply.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
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


def _load_digits(*, seed: int, image_size: int | None, test_fraction: float) -> DatasetArrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_fraction) < 1.0:
        raise DatasetError(f"option 'test_fraction' must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    if image_size is not None:
        images = resize_batch(images, int(image_size))
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DatasetArrays(
        Split(images[train_idx], labels[train_idx]),
        Split(images[test_idx], labels[test_idx]),
        [str(d) for d in range(10)],
        "scikit-learn load_digits (UCI optical recognition of handwritten digits)",
    )


def _check_digits(options: dict[str, Any]) -> None:
    if not 0.0 < float(options["test_fraction"]) < 1.0:
        raise DatasetError(
            f"option 'test_fraction' must be in (0, 1), got {options['test_fraction']}"
        )
    size = options["image_size"]
    if size is not None and (not isinstance(size, int) or size < 4):
        raise DatasetError(f"option 'image_size' must be an integer >= 4 or null, got {size!r}")


SOURCES.register("digits")(
    Source(_load_digits, {"image_size": None, "test_fraction": 0.25}, _check_digits)
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
    low, high = options["object_scale"]
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


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), raw or gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path}: unreadable ({error})") from None
    if len(data) < 8:
        raise DatasetError(f"{path}: truncated IDX header")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        raise DatasetError(f"{path}: IDX magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DatasetError(
            f"{path}: {len(body)} bytes of data, expected {int(np.prod(shape))} for shape {shape}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _check_mnist(options: dict[str, Any]) -> None:
    folder = _require_path(options)
    for stem in _MNIST_FILES.values():
        _find_idx(folder, stem)


def _load_mnist(*, seed: int, path: str) -> DatasetArrays:
    folder = Path(path).expanduser()
    arrays = {
        key: read_idx(_find_idx(folder, stem), 2051 if key.endswith("images") else 2049)
        for key, stem in _MNIST_FILES.items()
    }
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DatasetError(
                f"{folder}: {split} has {len(images)} images but {len(labels)} labels"
            )
        splits.append(Split(images[:, None].copy(), labels.astype(np.int64)))
    names = [str(label) for label in range(int(arrays["train_labels"].max()) + 1)]
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
        raise DatasetError(f"{path}: not a CIFAR python batch ({error})") from None
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
    return folder


def _load_cifar10(*, seed: int, path: str) -> DatasetArrays:
    folder = _cifar_folder({"path": path})

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        payload = _unpickle(folder / name)
        try:
            data = np.asarray(payload["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(payload["labels"], dtype=np.int64)
        except (KeyError, ValueError) as error:
            raise DatasetError(f"{folder / name}: unexpected batch content ({error})") from None
        if len(data) != len(labels):
            raise DatasetError(f"{folder / name}: {len(data)} images but {len(labels)} labels")
        return data, labels

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_labels = batch("test_batch")
    meta = _unpickle(folder / "batches.meta")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    return DatasetArrays(
        Split(np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
        Split(test_images, test_labels),
        names or [str(i) for i in range(10)],
        f"CIFAR-10 python batches in {folder}",
    )


SOURCES.register("cifar10")(
    Source(_load_cifar10, {"path": _REQUIRED}, lambda options: _cifar_folder(options) and None)
)

# --------------------------------------------------------------------------- image folder

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


def _listing(folder: Path) -> tuple[list[str], dict[str, list[tuple[Path, str]]]]:
    """Class names and, per split, (file, class) pairs of a Food-101 or ImageNet-style tree."""
    if (folder / "meta" / "train.txt").is_file() and (folder / "images").is_dir():
        classes_file = folder / "meta" / "classes.txt"
        if classes_file.is_file():
            classes = [line.strip() for line in classes_file.read_text().splitlines() if line]
        else:
            classes = sorted(p.name for p in (folder / "images").iterdir() if p.is_dir())
        splits = {}
        for split in ("train", "test"):
            listed = folder / "meta" / f"{split}.txt"
            if not listed.is_file():
                raise DatasetError(f"Food-101 layout: {listed} not found")
            entries = []
            for line in listed.read_text().split():
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
    test_dir = next((folder / d for d in ("val", "test") if (folder / d).is_dir()), None)
    if not (folder / "train").is_dir() or test_dir is None:
        raise DatasetError(
            f"{folder}: expected a Food-101 layout (images/, meta/train.txt, meta/test.txt) or "
            "class folders under train/ and val/ or test/"
        )
    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{folder / 'train'}: no class folders")
    splits = {}
    for split, root in (("train", folder / "train"), ("test", test_dir)):
        splits[split] = [
            (path, label)
            for label in classes
            if (root / label).is_dir()
            for path in sorted((root / label).iterdir())
            if path.suffix.lower() in _IMAGE_SUFFIXES
        ]
    return classes, splits


def _decode(path: Path, resize: int, image_size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            scale = resize / min(width, height)
            new_w, new_h = max(resize, round(width * scale)), max(resize, round(height * scale))
            image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
            image = image.crop((left, top, left + image_size, top + image_size))
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except OSError as error:
        raise DatasetError(f"{path}: unreadable image ({error})") from None


def _load_image_folder(
    *, seed: int, path: str, image_size: int, resize: int | None, max_per_class: int | None
) -> DatasetArrays:
    folder = Path(path).expanduser()
    classes, splits = _listing(folder)
    index = {name: i for i, name in enumerate(classes)}
    resize = resize or round(image_size * 256 / 224)
    if resize < image_size:
        raise DatasetError(f"option 'resize' {resize} is smaller than 'image_size' {image_size}")
    rng = np.random.default_rng([seed, 3])
    out = []
    for split in ("train", "test"):
        entries = [(p, label) for p, label in splits[split] if label in index]
        if max_per_class is not None:
            kept = []
            for label in classes:
                mine = [e for e in entries if e[1] == label]
                chosen = rng.permutation(len(mine))[:max_per_class]
                kept.extend(mine[i] for i in sorted(chosen))
            entries = kept
        if not entries:
            raise DatasetError(f"{folder}: no images for the {split} split")
        with ThreadPoolExecutor() as pool:
            images = list(pool.map(lambda e: _decode(e[0], resize, image_size), entries))
        labels = np.array([index[label] for _, label in entries], dtype=np.int64)
        out.append(Split(np.stack(images), labels))
    return DatasetArrays(out[0], out[1], classes, f"image folder {folder}")


def _check_image_folder(options: dict[str, Any]) -> None:
    folder = _require_path(options)
    food = (folder / "meta" / "train.txt").is_file() and (folder / "images").is_dir()
    imagenet = (folder / "train").is_dir() and any((folder / d).is_dir() for d in ("val", "test"))
    if not (food or imagenet):
        raise DatasetError(
            f"{folder}: expected a Food-101 layout (images/, meta/train.txt, meta/test.txt) or "
            "class folders under train/ and val/ or test/"
        )
    size = options["image_size"]
    if not isinstance(size, int) or size < 8:
        raise DatasetError(f"option 'image_size' must be an integer >= 8, got {size!r}")


SOURCES.register("image_folder")(
    Source(
        _load_image_folder,
        {"path": _REQUIRED, "image_size": 224, "resize": None, "max_per_class": None},
        _check_image_folder,
    )
)
