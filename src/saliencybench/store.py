"""Zarr stores: dataset and attribution stores, written atomically and checked on opening.

Every store is a Zarr 3 group written to a temporary sibling and renamed into place, so a
killed job never leaves a half-written store behind. Arrays carry ``dimension_names`` so
``xarray.open_zarr(path, group=split)`` works on every store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

# Snakemake puts a timestamp file into every directory() output; it is not part of the store.
warnings.filterwarnings("ignore", message=r".*\.snakemake_timestamp.*")

DATASET_FORMAT = "saliencybench.dataset/1"
ATTRIBUTION_FORMAT = "saliencybench.attributions/1"
SPLITS = ("train", "test")
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
# Chunks of about this many bytes along the sample axis: large enough for fast sequential
# reads, small enough that one sample's lookup does not decompress the whole split.
_CHUNK_BYTES = 4 * 2**20


class StoreError(ValueError):
    """A store that is missing, corrupt or of the wrong kind; the message names the path."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it to ``path``.

    Works for files and directories. An existing ``path`` is replaced only after the new
    content is complete; on an exception the temporary sibling is removed and ``path`` is
    left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, trash)
            os.replace(tmp, final)
            _remove(trash)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write a JSON file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    per_sample = max(1, int(np.prod(shape[1:])) * itemsize)
    rows = max(1, min(shape[0], _CHUNK_BYTES // per_sample))
    return (rows, *shape[1:])


def _put(group: zarr.Group, name: str, data: np.ndarray, dims: tuple[str, ...]) -> None:
    data = np.ascontiguousarray(data)
    array = group.create_array(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=_chunks(data.shape, data.dtype.itemsize),
        compressors=_COMPRESSOR,
        dimension_names=list(dims),
    )
    array[...] = data


IMAGE_DIMS = ("sample", "channel", "y", "x")


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of ``arrays`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.shape}:{array.dtype.str};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def file_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- datasets


@dataclass
class DatasetSplit:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray  # int64 (N,)
    masks: np.ndarray | None = None  # bool (N, H, W)


@dataclass
class DatasetStore:
    """A dataset store read into memory, with its attributes."""

    path: str
    splits: dict[str, DatasetSplit]
    attrs: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.attrs["class_names"])

    @property
    def mean(self) -> list[float]:
        return list(self.attrs["mean"])

    @property
    def std(self) -> list[float]:
        return list(self.attrs["std"])

    @property
    def content_hash(self) -> str:
        return str(self.attrs["content_hash"])

    def __getitem__(self, split: str) -> DatasetSplit:
        return self.splits[split]


def _split_arrays(splits: Mapping[str, DatasetSplit]) -> dict[str, np.ndarray]:
    """The arrays the content hash covers: images and labels of every split."""
    hashed = {}
    for split, data in splits.items():
        hashed[f"{split}/images"] = data.images
        hashed[f"{split}/labels"] = data.labels
    return hashed


def make_dataset(
    splits: Mapping[str, DatasetSplit],
    *,
    class_names: list[str],
    mean: list[float],
    std: list[float],
    source: str,
    extra_attrs: Mapping[str, Any] | None = None,
    path: str = "",
) -> DatasetStore:
    """A dataset held in memory with the attributes a written store of it would have.

    Args:
        splits: ``{"train": DatasetSplit, "test": DatasetSplit}``.
        mean, std: per-channel statistics of the training images scaled to [0, 1].
        source: where the data came from, for provenance.
        path: what to call it in messages (it has no file).
    """
    missing = [split for split in SPLITS if split not in splits]
    if missing:
        raise ValueError(f"dataset splits missing: {missing}")
    attrs = {
        "format": DATASET_FORMAT,
        "class_names": list(class_names),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "source": source,
        "content_hash": content_hash(_split_arrays(splits)),
        **dict(extra_attrs or {}),
    }
    return DatasetStore(path, dict(splits), attrs)


def save_dataset(path: str | os.PathLike[str], dataset: DatasetStore) -> str:
    """Write a dataset held in memory as a store, atomically; return its content hash."""
    with atomic_path(path) as tmp:
        root = zarr.open_group(tmp, mode="w")
        for split, data in dataset.splits.items():
            group = root.create_group(split)
            _put(group, "images", data.images.astype(np.uint8, copy=False), IMAGE_DIMS)
            _put(group, "labels", data.labels.astype(np.int64, copy=False), ("sample",))
            if data.masks is not None:
                _put(group, "masks", data.masks.astype(bool, copy=False), ("sample", "y", "x"))
        root.attrs.update(dataset.attrs)
    return dataset.content_hash


def write_dataset(
    path: str | os.PathLike[str], splits: Mapping[str, DatasetSplit], **attributes: Any
) -> str:
    """Write a dataset store atomically and return its content hash.

    Args:
        attributes: ``class_names``, ``mean``, ``std``, ``source`` and ``extra_attrs``, as
            :func:`make_dataset` takes them.
    """
    return save_dataset(path, make_dataset(splits, **attributes))


def _open_group(path: str | os.PathLike[str], expected_format: str, what: str) -> zarr.Group:
    if not Path(path).exists():
        raise StoreError(f"{path}: {what} does not exist")
    try:
        root = zarr.open_group(str(path), mode="r")
        found = root.attrs.get("format")
    except Exception as error:  # zarr raises several types for unreadable metadata
        raise StoreError(
            f"{path}: not a readable Zarr {what} ({type(error).__name__}: {error}); "
            "delete it and rerun"
        ) from None
    if found != expected_format:
        raise StoreError(
            f"{path}: not a {what} (format attribute {found!r}, expected {expected_format!r}); "
            "delete it and rerun"
        )
    return root


def _read_array(root: zarr.Group, name: str, path: str | os.PathLike[str], what: str):
    try:
        return root[name][...]
    except KeyError:
        raise StoreError(f"{path}: {what} lacks array {name!r}; delete it and rerun") from None
    except Exception as error:
        raise StoreError(
            f"{path}: array {name!r} is corrupt ({type(error).__name__}: {error}); "
            "delete it and rerun"
        ) from None


def read_dataset(path: str | os.PathLike[str], *, verify: bool = True) -> DatasetStore:
    """Read a whole dataset store into memory.

    Args:
        verify: recompute the content hash and compare it with the stored one.

    Raises:
        StoreError: the store is missing, of another kind, incomplete or corrupt.
    """
    root = _open_group(path, DATASET_FORMAT, "dataset store")
    attrs = dict(root.attrs)
    splits = {}
    for split in SPLITS:
        images = _read_array(root, f"{split}/images", path, "dataset store")
        labels = _read_array(root, f"{split}/labels", path, "dataset store")
        masks = None
        if f"{split}/masks" in root:
            masks = _read_array(root, f"{split}/masks", path, "dataset store")
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise StoreError(
                f"{path}: {split} arrays have shapes {images.shape} and {labels.shape}, "
                "expected (N, C, H, W) and (N,)"
            )
        splits[split] = DatasetSplit(images, labels, masks)
    if verify:
        if content_hash(_split_arrays(splits)) != attrs.get("content_hash"):
            raise StoreError(f"{path}: content hash mismatch; delete it and rerun")
    return DatasetStore(str(path), splits, attrs)


# ----------------------------------------------------------------------- attributions


@dataclass
class AttributionSplit:
    maps: np.ndarray  # float32 (N, H, W)
    targets: np.ndarray  # int64 (N,): the class each map explains
    raw: np.ndarray | None = None  # float32 (N, C, H, W) before the 2-D reduction


@dataclass
class AttributionStore:
    path: str
    splits: dict[str, AttributionSplit]
    attrs: dict[str, Any]

    def __getitem__(self, split: str) -> AttributionSplit:
        return self.splits[split]


def write_attributions(
    path: str | os.PathLike[str],
    splits: Mapping[str, AttributionSplit],
    attrs: Mapping[str, Any],
) -> None:
    """Write an attribution store atomically (one group per split)."""
    with atomic_path(path) as tmp:
        root = zarr.open_group(tmp, mode="w")
        for split, data in splits.items():
            group = root.create_group(split)
            _put(group, "maps", data.maps.astype(np.float32, copy=False), ("sample", "y", "x"))
            _put(group, "targets", data.targets.astype(np.int64, copy=False), ("sample",))
            if data.raw is not None:
                _put(group, "raw", data.raw.astype(np.float32, copy=False), IMAGE_DIMS)
        root.attrs.update({"format": ATTRIBUTION_FORMAT, "splits": list(splits), **attrs})


def read_attributions(path: str | os.PathLike[str]) -> AttributionStore:
    """Read an attribution store into memory; raises StoreError when unreadable."""
    root = _open_group(path, ATTRIBUTION_FORMAT, "attribution store")
    attrs = dict(root.attrs)
    splits = {}
    for split in attrs.get("splits", []):
        maps = _read_array(root, f"{split}/maps", path, "attribution store")
        targets = _read_array(root, f"{split}/targets", path, "attribution store")
        raw = None
        if f"{split}/raw" in root:
            raw = _read_array(root, f"{split}/raw", path, "attribution store")
        splits[split] = AttributionSplit(maps, targets, raw)
    return AttributionStore(str(path), splits, attrs)


# ----------------------------------------------------------------------- evaluation stores


def flat_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes NetCDF and Zarr both hold: numbers and strings; None as ''; others as JSON."""
    flat = {}
    for key, value in attrs.items():
        if value is None:
            value = ""
        elif not isinstance(value, str | int | float):
            value = json.dumps(value)
        flat[key] = value
    return flat


def write_xarray(dataset, path: str | os.PathLike[str]) -> None:
    """Write an xarray Dataset as a Zarr store, atomically; its ``format`` attribute names it."""
    dataset = dataset.copy()
    dataset.attrs = flat_attrs(dataset.attrs)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # String coordinates (method and reduction names) have no Zarr 3 data type yet;
        # zarr-python and xarray read them back, which is all these stores need.
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        dataset.to_zarr(tmp, mode="w", consolidated=False, zarr_format=3)


def read_xarray(path: str | os.PathLike[str], expected_format: str, what: str):
    """Open an evaluation store written by :func:`write_xarray` and load it into memory."""
    import xarray as xr

    _open_group(path, expected_format, what)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="zarr")
            return xr.open_zarr(path, consolidated=False).load()
    except Exception as error:
        raise StoreError(
            f"{path}: {what} is corrupt ({type(error).__name__}: {error}); delete it and rerun"
        ) from None


def write_netcdf(dataset, path: str | os.PathLike[str]) -> None:
    """Write a summary Dataset as NetCDF (h5netcdf), atomically."""
    dataset = dataset.copy()
    dataset.attrs = flat_attrs(dataset.attrs)
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")


def read_netcdf(path: str | os.PathLike[str], expected_format: str, what: str):
    """Open a summary written by :func:`write_netcdf`, loaded into memory and checked."""
    import xarray as xr

    if not Path(path).is_file():
        raise StoreError(f"{path}: {what} does not exist")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as opened:
            summary = opened.load()
    except (OSError, ValueError) as error:
        raise StoreError(f"{path}: unreadable {what} ({error}); delete it and rerun") from None
    if summary.attrs.get("format") != expected_format:
        raise StoreError(f"{path}: not a {what}; delete it and rerun")
    return summary
