"""Dataset and attribution stores: round trips, xarray access, atomic writes, corruption."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from saliencybench import store


def _splits(rng, n=(12, 5), masks=True):
    out = {}
    for split, count in zip(store.SPLITS, n, strict=True):
        out[split] = store.DatasetSplit(
            rng.integers(0, 256, (count, 3, 6, 7), dtype=np.uint8),
            rng.integers(0, 4, count).astype(np.int64),
            rng.random((count, 6, 7)) > 0.5 if masks else None,
        )
    return out


def _write(path, splits):
    return store.write_dataset(
        path, splits, class_names=list("abcd"), mean=[0.1] * 3, std=[0.2] * 3, source="test"
    )


def test_dataset_round_trip_and_xarray(tmp_path):
    rng = np.random.default_rng(0)
    splits = _splits(rng)
    path = tmp_path / "d.zarr"
    digest = _write(path, splits)
    loaded = store.read_dataset(path)
    assert loaded.content_hash == digest
    assert loaded.class_names == list("abcd")
    for split in store.SPLITS:
        np.testing.assert_array_equal(loaded[split].images, splits[split].images)
        np.testing.assert_array_equal(loaded[split].labels, splits[split].labels)
        np.testing.assert_array_equal(loaded[split].masks, splits[split].masks)
        assert loaded[split].images.dtype == np.uint8
    ds = xr.open_zarr(path, group="train", consolidated=False)
    assert ds["images"].dims == ("sample", "channel", "y", "x")
    assert ds["masks"].dims == ("sample", "y", "x")
    # only the temporary sibling was ever visible under another name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_content_hash_tracks_content(tmp_path):
    rng = np.random.default_rng(0)
    splits = _splits(rng, masks=False)
    first = _write(tmp_path / "a.zarr", splits)
    splits["test"].labels[0] += 1
    assert _write(tmp_path / "b.zarr", splits) != first


def test_failed_write_keeps_previous_store(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.zarr"
    _write(path, _splits(rng))
    before = store.read_dataset(path).content_hash
    with pytest.raises(RuntimeError), store.atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "partial").write_text("x")
        raise RuntimeError("killed")
    assert store.read_dataset(path).content_hash == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_atomic_replace_of_existing_store(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.zarr"
    _write(path, _splits(rng))
    second = _write(path, _splits(rng))
    assert store.read_dataset(path).content_hash == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_missing_store(tmp_path):
    with pytest.raises(store.StoreError, match="nothing.zarr: dataset store does not exist"):
        store.read_dataset(tmp_path / "nothing.zarr")


def test_store_without_metadata_is_refused(tmp_path):
    path = tmp_path / "d.zarr"
    _write(path, _splits(np.random.default_rng(0)))
    (path / "zarr.json").unlink()
    with pytest.raises(store.StoreError, match=r"d\.zarr: not a readable Zarr dataset store"):
        store.read_dataset(path)


def test_truncated_chunk_is_refused(tmp_path):
    path = tmp_path / "d.zarr"
    _write(path, _splits(np.random.default_rng(0)))
    chunk = next(
        p for p in (path / "train" / "images").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(store.StoreError, match=r"d\.zarr: array 'train/images' is corrupt"):
        store.read_dataset(path)


def test_missing_array_is_refused(tmp_path):
    path = tmp_path / "d.zarr"
    _write(path, _splits(np.random.default_rng(0)))
    import shutil

    shutil.rmtree(path / "test" / "labels")
    with pytest.raises(store.StoreError, match="lacks array 'test/labels'"):
        store.read_dataset(path)


def test_attribution_store_is_not_a_dataset_store(tmp_path):
    path = tmp_path / "m.zarr"
    split = store.AttributionSplit(np.zeros((2, 3, 3), np.float32), np.zeros(2, np.int64))
    store.write_attributions(path, {"test": split}, {"method": "saliency"})
    with pytest.raises(store.StoreError, match="not a dataset store"):
        store.read_dataset(path)
    loaded = store.read_attributions(path)
    assert loaded.attrs["method"] == "saliency" and list(loaded.splits) == ["test"]
    ds = xr.open_zarr(path, group="test", consolidated=False)
    assert ds["maps"].dims == ("sample", "y", "x")


def test_edited_content_fails_the_hash_check(tmp_path):
    path = tmp_path / "d.zarr"
    _write(path, _splits(np.random.default_rng(0)))
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["content_hash"] = "0" * 64
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(store.StoreError, match="content hash mismatch"):
        store.read_dataset(path)
    assert store.read_dataset(path, verify=False).content_hash == "0" * 64


def test_write_json_is_atomic(tmp_path: Path):
    target = tmp_path / "x.json"
    store.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
