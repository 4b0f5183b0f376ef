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
    assert store.read_json(target, "test file") == {"a": 1}
    assert set(json.loads(target.read_text())) == {"a", store.JSON_HASH}


# ----------------------------------------------------------------------- array hashes


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in array_dir.rglob("*") if p.is_file() and p.name != "zarr.json")


def _attribution_store(path: Path, n: int = 40) -> None:
    rng = np.random.default_rng(1)
    split = store.AttributionSplit(
        rng.normal(size=(n, 8, 8)).astype(np.float32), rng.integers(1, 4, n).astype(np.int64)
    )
    store.write_attributions(path, {"test": split}, {"method": "saliency"})


def test_deleted_chunk_of_maps_is_named(tmp_path):
    """Zarr reads a deleted chunk as its fill value; the hash check names the array."""
    path = tmp_path / "m.zarr"
    _attribution_store(path)
    _chunk_files(path / "test" / "maps")[0].unlink()
    with pytest.raises(store.StoreError, match=r"m\.zarr: array 'test/maps' differs from what"):
        store.read_attributions(path)


def test_deleted_chunk_of_targets_is_named(tmp_path):
    path = tmp_path / "m.zarr"
    _attribution_store(path)
    _chunk_files(path / "test" / "targets")[0].unlink()
    with pytest.raises(store.StoreError, match=r"'test/targets' differs"):
        store.read_attributions(path)


def test_deleted_chunk_of_dataset_masks_is_named(tmp_path):
    path = tmp_path / "d.zarr"
    _write(path, _splits(np.random.default_rng(0)))
    _chunk_files(path / "test" / "masks")[0].unlink()
    with pytest.raises(store.StoreError, match=r"'test/masks' differs"):
        store.read_dataset(path)


def test_chunk_rewritten_with_other_valid_data_is_caught(tmp_path):
    """A chunk that decompresses fine but holds other numbers (the case no codec catches)."""
    path, other = tmp_path / "m.zarr", tmp_path / "other.zarr"
    _attribution_store(path)
    rng = np.random.default_rng(7)
    split = store.AttributionSplit(
        rng.normal(size=(40, 8, 8)).astype(np.float32), np.ones(40, np.int64)
    )
    store.write_attributions(other, {"test": split}, {"method": "saliency"})
    mine, theirs = _chunk_files(path / "test" / "maps"), _chunk_files(other / "test" / "maps")
    mine[0].write_bytes(theirs[0].read_bytes())
    with pytest.raises(store.StoreError, match=r"'test/maps' differs"):
        store.read_attributions(path)


@pytest.mark.parametrize("offset", [0.3, 0.6, 0.9])
def test_flipped_bytes_in_a_chunk_never_pass(tmp_path, offset):
    """Eight flipped bytes either break decompression or change the data: both refused."""
    path = tmp_path / "m.zarr"
    _attribution_store(path)
    chunk = _chunk_files(path / "test" / "maps")[0]
    data = bytearray(chunk.read_bytes())
    start = int(len(data) * offset)
    for index in range(start, start + 8):
        data[index] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(store.StoreError, match=r"m\.zarr: array 'test/maps'"):
        store.read_attributions(path)


def _evaluation_dataset() -> xr.Dataset:
    rng = np.random.default_rng(3)
    return xr.Dataset(
        {"score": (("method", "sample"), rng.normal(size=(3, 50)))},
        coords={"method": ["saliency", "random", "integrated_gradients"]},
        attrs={"format": "saliencybench.test/1", "nested": {"a": [1, 2]}},
    )


def test_xarray_store_round_trip_and_deleted_chunk(tmp_path):
    path = tmp_path / "e.zarr"
    store.write_xarray(_evaluation_dataset(), path)
    loaded = store.read_xarray(path, "saliencybench.test/1", "test store")
    xr.testing.assert_identical(loaded.drop_attrs(), _evaluation_dataset().drop_attrs())
    assert store.HASHES not in loaded.attrs
    _chunk_files(path / "score")[0].unlink()
    with pytest.raises(store.StoreError, match=r"e\.zarr: array 'score' differs"):
        store.read_xarray(path, "saliencybench.test/1", "test store")


def test_netcdf_summary_with_an_edited_value_is_refused(tmp_path):
    import h5netcdf

    path = tmp_path / "s.nc"
    store.write_netcdf(_evaluation_dataset(), path)
    loaded = store.read_netcdf(path, "saliencybench.test/1", "test summary")
    np.testing.assert_array_equal(loaded["score"].values, _evaluation_dataset()["score"].values)
    with h5netcdf.File(path, "a") as handle:
        handle.variables["score"][0, 0] = 42.0
    with pytest.raises(store.StoreError, match=r"s\.nc: array 'score' differs"):
        store.read_netcdf(path, "saliencybench.test/1", "test summary")


def test_summary_of_another_format_version_names_both_versions(tmp_path):
    netcdf, zarr_path = tmp_path / "s.nc", tmp_path / "e.zarr"
    store.write_netcdf(_evaluation_dataset(), netcdf)
    store.write_xarray(_evaluation_dataset(), zarr_path)
    for path, read in ((netcdf, store.read_netcdf), (zarr_path, store.read_xarray)):
        with pytest.raises(store.StoreError) as raised:
            read(path, "saliencybench.test/2", "test summary")
        assert str(raised.value) == (
            f"{path}: test summary in format 'saliencybench.test/1', written by another "
            "version of saliencybench (this one reads 'saliencybench.test/2'); delete it and "
            "rerun to rebuild it"
        )
        with pytest.raises(store.StoreError, match=r"not a test summary \(format attribute"):
            read(path, "saliencybench.other/1", "test summary")


def test_store_without_hashes_is_read_with_a_warning(tmp_path, caplog):
    """Stores written before stores carried hashes stay readable."""
    path = tmp_path / "m.zarr"
    _attribution_store(path)
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"][store.HASHES]
    (path / "zarr.json").write_text(json.dumps(meta))
    with caplog.at_level("WARNING"):
        assert store.read_attributions(path).splits["test"].maps.shape == (40, 8, 8)
    assert "has no array hashes" in caplog.text


def test_next_write_removes_stale_temporaries(tmp_path):
    """A write killed before its rename leaves `.NAME.tmp-*`; the next write removes it."""
    target = tmp_path / "m.zarr"
    stale = tmp_path / ".m.zarr.tmp-deadbeef"
    (stale / "test").mkdir(parents=True)
    (stale / "test" / "chunk").write_bytes(b"x" * 100)
    old = tmp_path / ".m.zarr.old-cafecafe"
    old.mkdir()
    unrelated = tmp_path / ".other.zarr.tmp-deadbeef"
    unrelated.mkdir()
    assert store.stale_temporaries(target) == [old, stale]
    _attribution_store(target)
    assert not stale.exists() and not old.exists() and unrelated.exists()
    assert store.read_attributions(target).attrs["method"] == "saliency"


def test_json_file_carries_and_checks_its_content_hash(tmp_path):
    path = tmp_path / "seed0.json"
    payload = {"test_accuracy": 0.9712, "history": [{"loss": 0.1}], "nan": float("nan")}
    store.write_json(path, payload)
    loaded = store.read_json(path, "checkpoint sidecar")
    assert loaded.keys() == payload.keys() and loaded["test_accuracy"] == 0.9712
    edited = json.loads(path.read_text())
    edited["test_accuracy"] = 0.99
    path.write_text(json.dumps(edited))
    with pytest.raises(store.StoreError, match=r"seed0\.json: checkpoint sidecar differs from"):
        store.read_json(path, "checkpoint sidecar")
    path.write_text("{not json")
    with pytest.raises(store.StoreError, match=r"seed0\.json: unreadable checkpoint sidecar"):
        store.read_json(path, "checkpoint sidecar")
    path.write_text("[1, 2]")
    with pytest.raises(store.StoreError, match="is not a JSON object"):
        store.read_json(path, "checkpoint sidecar")


def test_json_file_without_hash_is_read_with_a_warning(tmp_path, caplog):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"test_accuracy": 0.5}))
    with caplog.at_level("WARNING"):
        assert store.read_json(path, "checkpoint sidecar") == {"test_accuracy": 0.5}
    assert "has no content hash" in caplog.text
