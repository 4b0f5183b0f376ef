"""Zarr stores: dataset and attribution stores, written atomically and checked on opening.

Every store is a Zarr 3 group written to a temporary sibling and renamed into place, so a
killed job never leaves a half-written store behind. Arrays carry ``dimension_names`` so
``xarray.open_zarr(path, group=split)`` works on every store.

Every store (Zarr or NetCDF) records a SHA-256 of each of its arrays in the attribute
``array_hashes``, written after the arrays, and every JSON file one of its content under
``content_sha256``; every reader recomputes them before the data are used. A deleted
chunk (read back as Zarr's fill value) or a flipped byte is a StoreError naming the store
and the array, not a wrong number.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
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

log = logging.getLogger("saliencybench")

# Snakemake puts a timestamp file into every directory() output; it is not part of the store.
warnings.filterwarnings("ignore", message=r".*\.snakemake_timestamp.*")

DATASET_FORMAT = "saliencybench.dataset/1"
ATTRIBUTION_FORMAT = "saliencybench.attributions/1"
SPLITS = ("train", "test")
HASHES = "array_hashes"
# The key of a JSON file's own content hash (checkpoint sidecars, ROAR records).
JSON_HASH = "content_sha256"
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
    remove_stale_temporaries(final)
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


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary siblings of ``path`` that a killed write left behind (``.NAME.tmp-*``,
    ``.NAME.old-*``)."""
    final = Path(path)
    if not final.parent.is_dir():
        return []
    patterns = (f".{final.name}.tmp-*", f".{final.name}.old-*")
    return sorted(found for pattern in patterns for found in final.parent.glob(pattern))


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Remove what a killed write of ``path`` left behind.

    Safe because Snakemake never runs two jobs with the same output at once and its lock
    keeps two runs out of one directory: a temporary sibling of an output about to be
    written belongs to no live job.
    """
    for stale in stale_temporaries(path):
        log.info("removing %s, left by an interrupted write", stale)
        _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _json_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a JSON payload in one canonical text (sorted keys, no spaces), which
    every value survives: floats are written as their shortest repr and read back equal."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write a JSON file atomically, with the SHA-256 of its content under ``JSON_HASH``."""
    body = {key: value for key, value in payload.items() if key != JSON_HASH}
    body[JSON_HASH] = _json_digest(body)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json` and check its content hash.

    Returns:
        The payload, without the hash.

    Raises:
        StoreError: the file is missing, unreadable, not an object, or its content differs
            from what was written.
    """
    try:
        payload = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise StoreError(f"{path}: {what} does not exist") from None
    except (OSError, ValueError) as error:
        raise StoreError(f"{path}: unreadable {what} ({error}); delete it and rerun") from None
    if not isinstance(payload, dict):
        raise StoreError(f"{path}: {what} is not a JSON object; delete it and rerun")
    recorded = payload.pop(JSON_HASH, None)
    if recorded is None:
        log.warning("%s: %s has no content hash (written by an older version)", path, what)
    elif _json_digest(payload) != recorded:
        raise StoreError(
            f"{path}: {what} differs from what was written (edited or damaged since); "
            "delete it and rerun"
        )
    return payload


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    per_sample = max(1, int(np.prod(shape[1:])) * itemsize)
    rows = max(1, min(shape[0], _CHUNK_BYTES // per_sample))
    return (rows, *shape[1:])


def _put(
    group: zarr.Group, name: str, data: np.ndarray, dtype: Any, dims: tuple[str, ...]
) -> np.ndarray:
    """Write ``data`` as ``dtype`` into a new array of ``group``; return what was written."""
    data = np.ascontiguousarray(data, dtype=dtype)
    array = group.create_array(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=_chunks(data.shape, data.dtype.itemsize),
        compressors=_COMPRESSOR,
        dimension_names=list(dims),
    )
    array[...] = data
    return data


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


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of one array's shape, kind of data and values.

    Numbers are hashed as bytes; strings and objects (the label coordinates of evaluation
    stores) as their text, which survives every round trip through Zarr and NetCDF.
    """
    array = np.asarray(array)
    digest = hashlib.sha256()
    if array.dtype.kind in "OUS":
        digest.update(f"{array.shape}:text;".encode())
        digest.update("\x1f".join(str(item) for item in array.ravel().tolist()).encode())
    else:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}:{array.dtype.str};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def array_hashes(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """``{name: array_digest}`` for every array, the ``array_hashes`` attribute of a store."""
    return {name: array_digest(arrays[name]) for name in sorted(arrays)}


def check_array_hashes(
    path: str | os.PathLike[str], what: str, recorded: Any, arrays: Mapping[str, np.ndarray]
) -> None:
    """Compare the arrays read from a store with the hashes recorded when it was written.

    Args:
        recorded: the store's ``array_hashes`` attribute (a mapping, or its JSON text);
            None for a store written before stores carried hashes, which is read with a
            warning.

    Raises:
        StoreError: an array is missing or its content differs from what was written.
    """
    if recorded is None or recorded == "":
        log.warning("%s: %s has no array hashes (written by an older version)", path, what)
        return
    if isinstance(recorded, str):
        try:
            recorded = json.loads(recorded)
        except ValueError:
            raise StoreError(
                f"{path}: unreadable {HASHES} attribute; delete the {what} and rerun"
            ) from None
    for name, expected in sorted(recorded.items()):
        if name not in arrays:
            raise StoreError(f"{path}: {what} lacks array {name!r}; delete it and rerun")
        if array_digest(arrays[name]) != expected:
            raise StoreError(
                f"{path}: array {name!r} differs from what was written (damaged or edited "
                f"since); delete the {what} and rerun"
            )


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
        written = {}
        for split, data in dataset.splits.items():
            group = root.create_group(split)
            written[f"{split}/images"] = _put(group, "images", data.images, np.uint8, IMAGE_DIMS)
            written[f"{split}/labels"] = _put(group, "labels", data.labels, np.int64, ("sample",))
            if data.masks is not None:
                written[f"{split}/masks"] = _put(
                    group, "masks", data.masks, bool, ("sample", "y", "x")
                )
        # last, so a store whose arrays were not all written carries no hashes to match
        root.attrs.update({**dataset.attrs, HASHES: array_hashes(written)})
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
        raise format_error(path, found, expected_format, what)
    return root


def format_error(path: str | os.PathLike[str], found: Any, expected: str, what: str) -> StoreError:
    """The error for a file whose ``format`` attribute is not the one this version reads:
    an older version of the same format (``name/N``), or something else entirely."""
    if isinstance(found, str) and found.rsplit("/", 1)[0] == expected.rsplit("/", 1)[0]:
        return StoreError(
            f"{path}: {what} in format {found!r}, written by another version of saliencybench "
            f"(this one reads {expected!r}); delete it and rerun to rebuild it"
        )
    return StoreError(
        f"{path}: not a {what} (format attribute {found!r}, expected {expected!r}); "
        "delete it and rerun"
    )


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
    recorded = attrs.pop(HASHES, None)
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
        if recorded is not None:  # names the damaged array; stores before hashes lack it
            read = dict(_split_arrays(splits))
            read.update({f"{s}/masks": d.masks for s, d in splits.items() if d.masks is not None})
            check_array_hashes(path, "dataset store", recorded, read)
        # the content hash is the dataset's identity in every sidecar: it must match too
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
        written = {}
        for split, data in splits.items():
            group = root.create_group(split)
            written[f"{split}/maps"] = _put(
                group, "maps", data.maps, np.float32, ("sample", "y", "x")
            )
            written[f"{split}/targets"] = _put(
                group, "targets", data.targets, np.int64, ("sample",)
            )
            if data.raw is not None:
                written[f"{split}/raw"] = _put(group, "raw", data.raw, np.float32, IMAGE_DIMS)
        root.attrs.update(
            {
                "format": ATTRIBUTION_FORMAT,
                "splits": list(splits),
                **attrs,
                HASHES: array_hashes(written),
            }
        )


def read_attributions(path: str | os.PathLike[str]) -> AttributionStore:
    """Read an attribution store into memory; raises StoreError when unreadable."""
    root = _open_group(path, ATTRIBUTION_FORMAT, "attribution store")
    attrs = dict(root.attrs)
    recorded = attrs.pop(HASHES, None)
    splits = {}
    read = {}
    for split in attrs.get("splits", []):
        for name in ("maps", "targets", "raw"):
            if name != "raw" or f"{split}/raw" in root:
                read[f"{split}/{name}"] = _read_array(
                    root, f"{split}/{name}", path, "attribution store"
                )
        splits[split] = AttributionSplit(
            read[f"{split}/maps"], read[f"{split}/targets"], read.get(f"{split}/raw")
        )
    check_array_hashes(path, "attribution store", recorded, read)
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
    dataset.attrs.pop(HASHES, None)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # String coordinates (method and reduction names) have no Zarr 3 data type yet;
        # zarr-python and xarray read them back, which is all these stores need.
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        dataset.to_zarr(tmp, mode="w", consolidated=False, zarr_format=3)
        # Hashed as a reader will see the arrays (after decoding), then recorded last.
        hashes = array_hashes(_variables(_open_xarray_zarr(tmp)))
        zarr.open_group(str(tmp), mode="r+").attrs[HASHES] = hashes


def _variables(dataset) -> dict[str, np.ndarray]:
    """The arrays of an xarray Dataset that its hashes cover: data variables and coordinates."""
    return {str(name): variable.values for name, variable in dataset.variables.items()}


def _open_xarray_zarr(path: str | os.PathLike[str]):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="zarr")
        return xr.open_zarr(path, consolidated=False).load()


def _checked(dataset, path: str | os.PathLike[str], what: str):
    """``dataset`` after comparing its arrays with its recorded hashes, without them."""
    check_array_hashes(path, what, dataset.attrs.pop(HASHES, None), _variables(dataset))
    return dataset


def read_xarray(path: str | os.PathLike[str], expected_format: str, what: str):
    """Open an evaluation store written by :func:`write_xarray`, load it into memory and
    check its array hashes."""
    _open_group(path, expected_format, what)
    try:
        dataset = _open_xarray_zarr(path)
    except Exception as error:
        raise StoreError(
            f"{path}: {what} is corrupt ({type(error).__name__}: {error}); delete it and rerun"
        ) from None
    return _checked(dataset, path, what)


def write_netcdf(dataset, path: str | os.PathLike[str]) -> None:
    """Write a summary Dataset as NetCDF (h5netcdf), atomically."""
    import h5netcdf

    dataset = dataset.copy()
    dataset.attrs = flat_attrs(dataset.attrs)
    dataset.attrs.pop(HASHES, None)
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")
        # Hashed as a reader will see the arrays (after decoding), then recorded last.
        hashes = array_hashes(_variables(_open_netcdf(tmp)))
        with h5netcdf.File(tmp, "a") as handle:
            handle.attrs[HASHES] = json.dumps(hashes, sort_keys=True)


def read_netcdf(path: str | os.PathLike[str], expected_format: str, what: str):
    """Open a summary written by :func:`write_netcdf`, loaded into memory and checked."""
    if not Path(path).is_file():
        raise StoreError(f"{path}: {what} does not exist")
    try:
        summary = _open_netcdf(path)
    except (OSError, ValueError) as error:
        raise StoreError(f"{path}: unreadable {what} ({error}); delete it and rerun") from None
    if summary.attrs.get("format") != expected_format:
        raise format_error(path, summary.attrs.get("format"), expected_format, what)
    return _checked(summary, path, what)


def _open_netcdf(path: str | os.PathLike[str]):
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as opened:
        return opened.load()
