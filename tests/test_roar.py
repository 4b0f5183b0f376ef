"""ROAR and KAR: masked-dataset materialization, retraining, summary, table and figure."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from saliencybench import store
from saliencybench.config import validate
from saliencybench.data import channel_stats, load_source
from saliencybench.evaluations.roar import spec
from saliencybench.evaluations.roar.compute import (
    masked_dataset,
    materialize,
    retrain,
    retrain_fraction,
    unretrained,
)
from saliencybench.evaluations.roar.report import roar_figure, roar_table, write_report
from saliencybench.evaluations.roar.summary import read_summary, summarize, summarize_run
from saliencybench.masking import pixel_count
from saliencybench.plotting import parse_cell, write_csv
from saliencybench.testing import ROOT, read_csv

MODEL = {"architecture": "small_cnn"}


def _dataset(tmp_path, n_train=40, n_test=20, size=8, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)
        labels = rng.integers(0, 3, n).astype(np.int64)
        splits[split] = store.DatasetSplit(images, labels)
    mean, std = channel_stats(splits["train"].images)
    path = tmp_path / "data.zarr"
    digest = store.write_dataset(
        path, splits, class_names=["a", "b", "c"], mean=mean, std=std, source="test"
    )
    return path, digest, splits, mean


def _attributions(
    tmp_path, splits, digest, *, name="saliency", only=None, seed=1, checkpoint_sha256=None
):
    rng = np.random.default_rng(seed)
    maps = {
        split: store.AttributionSplit(
            rng.normal(size=(len(data.labels), *data.images.shape[2:])).astype(np.float32),
            data.labels,
        )
        for split, data in splits.items()
        if only is None or split in only
    }
    path = tmp_path / f"{name}.zarr"
    attrs = {"name": name, "method": name, "data_hash": digest}
    if checkpoint_sha256 is not None:
        attrs["checkpoint_sha256"] = checkpoint_sha256
    store.write_attributions(path, maps, attrs)
    return path, maps


@pytest.mark.parametrize("mode", ["roar", "kar"])
def test_materialize_writes_a_dataset_store(tmp_path, mode):
    data_path, digest, splits, mean = _dataset(tmp_path)
    maps_path, maps = _attributions(tmp_path, splits, digest)
    output = tmp_path / "masked.zarr"
    materialize(
        data_path,
        maps_path,
        mode=mode,
        fraction=0.3,
        fill="mean",
        blur_sigma=2.0,
        seed=0,
        output=output,
    )
    masked = store.read_dataset(output)  # the trainer's reader, hash verified
    assert masked.attrs["masking"]["mode"] == mode
    assert masked.attrs["masking"]["data_hash"] == digest
    assert masked.mean == pytest.approx(mean)
    count = pixel_count(0.3, 64)
    fill = np.rint(np.asarray(mean) * 255).astype(np.uint8)
    for split, data in splits.items():
        np.testing.assert_array_equal(masked[split].labels, data.labels)
        changed = masked[split].images != data.images
        # the removed pixels, all channels, hold the channel means; the rest is unchanged
        flat = maps[split].maps.reshape(len(data.labels), -1)
        order = np.argsort(-flat if mode == "roar" else flat, axis=1)[:, :count]
        removed = np.zeros_like(flat, dtype=bool)
        np.put_along_axis(removed, order, True, axis=1)
        removed = removed.reshape(maps[split].maps.shape)
        expected = np.where(removed[:, None], fill[None, :, None, None], data.images)
        np.testing.assert_array_equal(masked[split].images, expected)
        assert changed.any(axis=1).sum() <= removed.sum()


def test_materialize_is_deterministic(tmp_path):
    data_path, digest, splits, _ = _dataset(tmp_path)
    maps_path, _ = _attributions(tmp_path, splits, digest)
    hashes = [
        materialize(
            data_path,
            maps_path,
            mode="roar",
            fraction=0.5,
            fill="noise",
            blur_sigma=2.0,
            seed=3,
            output=tmp_path / f"masked{i}.zarr",
        )
        for i in range(2)
    ]
    assert hashes[0] == hashes[1]


def test_materialize_needs_train_maps_of_the_same_data(tmp_path):
    data_path, digest, splits, _ = _dataset(tmp_path)
    test_only, _ = _attributions(tmp_path, splits, digest, name="lime", only=["test"])
    kwargs = {"mode": "roar", "fraction": 0.5, "fill": "mean", "blur_sigma": 2.0, "seed": 0}
    with pytest.raises(store.StoreError, match="no maps of the train split; ROAR needs"):
        materialize(data_path, test_only, output=tmp_path / "m.zarr", **kwargs)
    stale, _ = _attributions(tmp_path, splits, "0" * 64, name="stale")
    with pytest.raises(store.StoreError, match="computed on other data"):
        materialize(data_path, stale, output=tmp_path / "m.zarr", **kwargs)
    assert not (tmp_path / "m.zarr").exists()


def test_retraining_in_memory_equals_retraining_on_the_written_store(tmp_path):
    """The retrain rule masks in memory; keep_masked writes the same dataset as a store."""
    data_path, digest, splits, _ = _dataset(tmp_path)
    maps_path, _ = _attributions(tmp_path, splits, digest)
    kwargs = {"mode": "kar", "fraction": 0.3, "fill": "noise", "blur_sigma": 2.0, "seed": 2}
    in_memory = masked_dataset(data_path, maps_path, **kwargs)
    written = materialize(data_path, maps_path, output=tmp_path / "masked.zarr", **kwargs)
    from_store = store.read_dataset(tmp_path / "masked.zarr")
    assert written == in_memory.content_hash == from_store.content_hash
    assert from_store.attrs == in_memory.attrs
    for split in store.SPLITS:
        np.testing.assert_array_equal(from_store[split].images, in_memory[split].images)
    training = {
        "model_name": "small_cnn",
        "model_entry": MODEL,
        "recipe_name": "standard",
        "recipe_entry": {"epochs": 2, "batch_size": 16},
        "seeds": [0],
        "device": "cpu",
    }
    records = [
        retrain(data, output=tmp_path / f"{name}.json", **training)
        for name, data in (("memory", in_memory), ("store", tmp_path / "masked.zarr"))
    ]
    for record in records:
        del record["runs"][0]["train_seconds"], record["runs"][0]["history"]
    assert records[0]["runs"] == records[1]["runs"]
    assert records[0]["data_hash"] == records[1]["data_hash"] == written


def test_retrain_fraction_writes_each_mode_to_its_own_record(tmp_path):
    data_path, digest, splits, _ = _dataset(tmp_path)
    maps_path, _ = _attributions(tmp_path, splits, digest)
    kwargs = {
        "fraction": 0.5,
        "fill": "mean",
        "blur_sigma": 2.0,
        "mask_seed": 0,
        "model_name": "small_cnn",
        "model_entry": MODEL,
        "recipe_name": "standard",
        "recipe_entry": {"epochs": 1, "batch_size": 16},
        "seeds": [0, 1],
        "device": "cpu",
    }
    outputs = [tmp_path / "kar.json", tmp_path / "roar.json"]
    retrain_fraction(data_path, maps_path, modes=["kar", "roar"], outputs=outputs, **kwargs)
    for mode, output in zip(["kar", "roar"], outputs, strict=True):
        record = json.loads(output.read_text())
        assert record["mode"] == mode and record["fraction"] == 0.5
        assert [run["seed"] for run in record["runs"]] == [0, 1]
        expected = masked_dataset(
            data_path, maps_path, mode=mode, fraction=0.5, fill="mean", blur_sigma=2.0, seed=0
        )
        assert record["data_hash"] == expected.content_hash
    with pytest.raises(ValueError, match="2 modes but 1 output paths"):
        retrain_fraction(data_path, maps_path, modes=["roar", "kar"], outputs=outputs[:1], **kwargs)


def test_unretrained_is_the_original_model_on_the_test_images_retraining_sees(tmp_path):
    import torch

    from saliencybench.inference import accuracy, normalize
    from saliencybench.jobkit import load_trained_model
    from saliencybench.pipeline import train

    data_path, digest, splits, _ = _dataset(tmp_path, n_train=60, n_test=30)
    checkpoint, sidecar = tmp_path / "model.pt", tmp_path / "model.json"
    record = train(
        data_path,
        model_name="small_cnn",
        model_entry=MODEL,
        recipe_name="standard",
        recipe_entry={"epochs": 2, "batch_size": 16},
        seed=0,
        device="cpu",
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    maps_path, _ = _attributions(
        tmp_path, splits, digest, checkpoint_sha256=record["checkpoint_sha256"]
    )
    settings = {"fill": "noise", "blur_sigma": 2.0, "mask_seed": 5, "device": "cpu"}
    written = unretrained(
        data_path,
        maps_path,
        checkpoint,
        sidecar,
        modes=["roar", "kar"],
        fractions=[0.25, 0.75],
        **settings,
        output=tmp_path / "unretrained.json",
    )
    assert store.read_json(tmp_path / "unretrained.json", "record") == written
    assert written["unmasked_accuracy"] == pytest.approx(record["test_accuracy"])
    model, _ = load_trained_model(checkpoint, sidecar, torch.device("cpu"))
    dataset = store.read_dataset(data_path)
    labels = torch.as_tensor(splits["test"].labels)
    for mode in ("roar", "kar"):
        for fraction, label in ((0.25, "0.25"), (0.75, "0.75")):
            # the masked test split the retrained models are tested on
            masked = masked_dataset(
                data_path,
                maps_path,
                mode=mode,
                fraction=fraction,
                fill="noise",
                blur_sigma=2.0,
                seed=5,
            )["test"].images
            inputs = normalize(masked, dataset.mean, dataset.std, torch.device("cpu"))
            assert written["accuracy"][mode][label] == accuracy(model, inputs, labels)
    foreign, _ = _attributions(tmp_path, splits, digest, name="other", checkpoint_sha256="0" * 64)
    with pytest.raises(store.StoreError, match="maps of another checkpoint"):
        unretrained(
            data_path,
            foreign,
            checkpoint,
            sidecar,
            modes=["roar"],
            fractions=[0.5],
            **settings,
            output=tmp_path / "x.json",
        )


def test_retrain_rejects_an_unmasked_store(tmp_path):
    data_path, *_ = _dataset(tmp_path)
    with pytest.raises(store.StoreError, match="not a masked dataset store"):
        retrain(
            data_path,
            model_name="small_cnn",
            model_entry=MODEL,
            recipe_name="standard",
            recipe_entry={"epochs": 1},
            seeds=[0],
            device="cpu",
            output=tmp_path / "r.json",
        )


def _fake_results(tmp_path):
    """Retraining records as retrain() writes them, with known accuracies."""
    results = []
    for method in ("saliency", "random"):
        for mode in ("roar", "kar"):
            for fraction in (0.1, 0.5):
                runs = [
                    {
                        "seed": seed,
                        "test_accuracy": 0.9
                        - fraction * (0.5 if method == "random" else 1.0)
                        + 0.01 * seed * (1 if mode == "roar" else -1),
                        "train_accuracy": 1.0,
                    }
                    for seed in (0, 1, 2)
                ]
                path = tmp_path / f"{method}_{mode}_{fraction}.json"
                record = {
                    "format": "saliencybench.roar/1",
                    "method": method,
                    "mode": mode,
                    "fraction": fraction,
                    "runs": runs,
                }
                path.write_text(json.dumps(record))
                results.append(path)
    baselines = {}
    for seed in (0, 1, 2):
        path = tmp_path / f"seed{seed}.json"
        path.write_text(json.dumps({"test_accuracy": 0.95 + 0.01 * seed}))
        baselines[seed] = path
    return results, baselines


def _fake_unretrained(tmp_path, kar_as_retrained=False):
    """Records as unretrained() writes them: saliency below random under ROAR, as in the
    retrained records of ``_fake_results``; under KAR above random (against the retrained
    order) or, with ``kar_as_retrained``, below it."""
    paths = []
    for method in ("saliency", "random"):
        accuracy = {}
        for mode in ("roar", "kar"):
            lower = method == "saliency"
            if mode == "kar":
                lower = lower if kar_as_retrained else not lower
            accuracy[mode] = {"0.1": 0.8 - 0.1 * lower, "0.5": 0.6 - 0.2 * lower}
        record = {
            "format": "saliencybench.roar_unretrained/1",
            "method": method,
            "fill": "mean",
            "unmasked_accuracy": 0.93,
            "accuracy": accuracy,
        }
        path = tmp_path / f"{method}_unretrained.json"
        store.write_json(path, record)
        paths.append(path)
    return paths


@pytest.mark.parametrize("kar_as_retrained", [False, True])
def test_rows_without_retraining_and_their_ranking_agreement(tmp_path, kar_as_retrained):
    results, baselines = _fake_results(tmp_path)
    unretrained_paths = _fake_unretrained(tmp_path, kar_as_retrained)
    summary = summarize(results, baselines, unretrained=unretrained_paths)
    value = summary["unretrained_accuracy"].sel(attribution="saliency", mode="roar", fraction=0.5)
    assert float(value) == pytest.approx(0.4)
    assert float(summary["unretrained_baseline"]) == pytest.approx(0.93)
    rows = {(row["mode"], row["method"]): row for row in roar_table(summary)}
    assert rows[("roar, not retrained", "saliency")]["50%"] == "40.0"
    assert rows[("kar, not retrained", "random")]["0%"] == "93.0"
    # retrained: saliency below random in both modes (the fake records' slopes)
    assert rows[("roar", "Kendall tau, retrained vs not")]["10%"] == "+1.00"
    assert rows[("kar", "Kendall tau, retrained vs not")]["50%"] == (
        "+1.00" if kar_as_retrained else "-1.00"
    )
    png = tmp_path / "roar.png"
    roar_figure(summary, [png], title="test")
    with Image.open(png) as image:
        assert image.size[1] > 700  # a second row of panels


def test_summary_rejects_a_foreign_record_without_retraining(tmp_path):
    results, baselines = _fake_results(tmp_path)
    bogus = tmp_path / "bogus.json"
    store.write_json(bogus, {"format": "saliencybench.roar/1"})
    with pytest.raises(store.StoreError, match="not a ROAR record without retraining"):
        summarize(results, baselines, unretrained=[bogus])


def test_summary_table_and_figure_agree(tmp_path):
    results, baselines = _fake_results(tmp_path)
    summary = summarize(results, baselines, attrs={"dataset": "digits", "model_seed": 0})
    assert summary["accuracy"].dims == ("attribution", "mode", "fraction", "seed")
    assert list(summary["attribution"].values) == ["random", "saliency"]
    assert list(summary["fraction"].values) == [0.1, 0.5]
    np.testing.assert_allclose(summary["baseline_accuracy"].values, [0.95, 0.96, 0.97])
    # keyword selection works: `method` would be taken as sel's fill-method argument
    value = summary["accuracy"].sel(attribution="saliency", mode="kar", fraction=0.5, seed=2)
    assert float(value) == pytest.approx(0.9 - 0.5 - 0.02)
    path = tmp_path / "roar.nc"
    store.write_netcdf(summary, path)
    reread = read_summary(path)
    np.testing.assert_array_equal(reread["accuracy"].values, summary["accuracy"].values)
    table = tmp_path / "roar.csv"
    write_csv(roar_table(reread), table)
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["mode"], row["method"]) for row in rows] == [
        ("roar", "random"),
        ("roar", "saliency"),
        ("kar", "random"),
        ("kar", "saliency"),
    ]
    for row in rows:
        accuracy = reread["accuracy"].sel({"mode": row["mode"], "attribution": row["method"]}) * 100
        for fraction, column in ((0.1, "10%"), (0.5, "50%")):
            mean, std = parse_cell(row[column])
            values = accuracy.sel(fraction=fraction).values
            assert mean == pytest.approx(values.mean(), abs=0.005)
            assert std == pytest.approx(values.std(ddof=1), abs=0.005)
        assert parse_cell(row["0%"])[0] == pytest.approx(96.0, abs=0.005)
    png, pdf = tmp_path / "roar.png", tmp_path / "roar.pdf"
    roar_figure(reread, [png, pdf], title="test")
    with Image.open(png) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 800
    assert pdf.read_bytes().startswith(b"%PDF")


def test_summary_and_report_jobs_write_what_their_parts_give(tmp_path):
    results, baselines = _fake_results(tmp_path)
    provenance = {
        "dataset": "digits",
        "model": "small_cnn",
        "recipe": "standard",
        "model_seed": 0,
        "fill": "mean",
    }
    path = tmp_path / "accuracy.nc"
    summarize_run(
        results, list(baselines.values()), seeds=list(baselines), **provenance, output=path
    )
    written = read_summary(path)
    expected = summarize(results, baselines, attrs=provenance)
    for name in ("accuracy", "train_accuracy", "baseline_accuracy"):
        np.testing.assert_array_equal(written[name].values, expected[name].values)
    assert {key: written.attrs[key] for key in provenance} == provenance
    with pytest.raises(ValueError):  # one sidecar per retraining seed
        summarize_run(results, [], seeds=[0], **provenance, output=tmp_path / "x.nc")
    table, png, pdf = tmp_path / "roar.csv", tmp_path / "roar.png", tmp_path / "roar.pdf"
    write_report(path, title="test", table=table, figures=[png, pdf])
    assert read_csv(table) == roar_table(written)
    with Image.open(png) as image:
        assert image.format == "PNG"
    assert pdf.read_bytes().startswith(b"%PDF")


def test_mean_and_std_skip_missing_runs():
    from saliencybench.plotting import mean_std

    values = np.array([[0.5, 0.7, np.nan], [0.9, np.nan, np.nan], [np.nan] * 3])
    mean, std = mean_std(values)
    np.testing.assert_allclose(mean[:2], [0.6, 0.9])
    np.testing.assert_allclose(std[:2], [np.std([0.5, 0.7], ddof=1), 0.0])
    assert np.isnan(mean[2]) and std[2] == 0.0


def test_summary_rejects_foreign_files(tmp_path):
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"runs": []}))
    with pytest.raises(store.StoreError, match="not a ROAR result"):
        summarize([bogus], {})
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(store.StoreError, match="unreadable ROAR result"):
        summarize([broken], {})
    with pytest.raises(store.StoreError, match="unreadable ROAR summary"):
        read_summary(broken)


def _shapes_store(tmp_path):
    arrays = load_source(
        "shapes", {"image_size": 32, "n_train": 2000, "n_test": 400, "distractors": 2}, 0
    )
    mean, std = channel_stats(arrays.train.images)
    splits = {
        split: store.DatasetSplit(part.images, part.labels, part.masks)
        for split, part in (("train", arrays.train), ("test", arrays.test))
    }
    path = tmp_path / "shapes.zarr"
    digest = store.write_dataset(
        path, splits, class_names=arrays.class_names, mean=mean, std=std, source="shapes"
    )
    return path, digest, splits, len(arrays.class_names)


def test_ground_truth_roar_removes_the_class_and_random_does_not(tmp_path):
    """The sanity check of the whole ROAR path (Hooker et al. 2019, Sec. 4).

    Ranking pixels by the ground-truth object mask and removing a share just above the
    largest object removes every object pixel: retrained accuracy falls to chance. Removing
    the same share at random leaves most of each object, and accuracy stays far above chance.

    The ranking is the object mask plus half of its Gaussian blur, so that the pixels removed
    beyond the object form a halo around it. With the bare binary mask the extra pixels are
    scattered at random and the object's silhouette survives as a region of mean color, from
    which the retrained model still reads the shape (measured: 66 % against 50 % for random
    removal at the same share) -- the leakage through the mask that ROAR is known for.
    """
    data_path, digest, splits, n_classes = _shapes_store(tmp_path)
    object_share = max(float(data.masks.mean(axis=(1, 2)).max()) for data in splits.values())
    fraction = float(np.ceil((object_share + 0.02) * 20) / 20)
    truth = {
        split: store.AttributionSplit(
            (data.masks + 0.5 * ndimage.gaussian_filter(data.masks * 1.0, (0, 3, 3))).astype(
                np.float32
            ),
            data.labels,
        )
        for split, data in splits.items()
    }
    truth_path = tmp_path / "truth.zarr"
    store.write_attributions(truth_path, truth, {"name": "truth", "data_hash": digest})
    random_path, _ = _attributions(tmp_path, splits, digest, name="random")
    recipe = {"epochs": 15, "batch_size": 64, "lr": 0.03, "schedule": "cosine"}
    accuracy = {}
    for name, maps_path in (("truth", truth_path), ("random", random_path)):
        masked = tmp_path / f"{name}_masked.zarr"
        materialize(
            data_path,
            maps_path,
            mode="roar",
            fraction=fraction,
            fill="mean",
            blur_sigma=2.0,
            seed=0,
            output=masked,
        )
        record = retrain(
            masked,
            model_name="small_cnn",
            model_entry=MODEL,
            recipe_name="standard",
            recipe_entry=recipe,
            seeds=[0],
            device="cpu",
            output=tmp_path / f"{name}.json",
        )
        accuracy[name] = record["runs"][0]["test_accuracy"]
    chance = 1.0 / n_classes
    assert accuracy["truth"] < chance + 0.12, accuracy
    assert accuracy["random"] > 2.5 * chance, accuracy


# ----------------------------------------------------------------------- job settings


@pytest.fixture(scope="module")
def default_config():
    return validate(yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text()))


WILDCARDS = SimpleNamespace(
    dataset="digits",
    model="small_cnn",
    recipe="standard",
    seed="0",
    method="saliency",
    mode="kar",
    frac="0.3",
)


def test_mask_settings_are_the_masking_arguments(default_config):
    settings = spec.mask_settings(default_config, WILDCARDS)
    assert set(settings) == {"mode", "fraction", "fill", "blur_sigma", "seed"}
    assert settings["mode"] == "kar" and settings["fraction"] == 0.3


def test_retrain_settings_hold_no_other_method_or_fraction(default_config):
    settings = spec.retrain_settings(default_config, WILDCARDS)
    assert set(settings) == {
        "modes",
        "fraction",
        "fill",
        "blur_sigma",
        "mask_seed",
        "model_name",
        "model_entry",
        "recipe_name",
        "recipe_entry",
        "seeds",
        "device",
    }
    assert settings["fraction"] == 0.3 and settings["modes"] == ["roar", "kar"]
    # the list of methods is not among them: dropping a method reruns no other method's job
    fewer = {**default_config, "roar": {**default_config["roar"], "methods": ["saliency"]}}
    assert spec.retrain_settings(fewer, WILDCARDS) == settings


def test_roar_summary_settings_are_seeds_and_provenance(default_config):
    settings = spec.roar_summary_settings(default_config, WILDCARDS)
    assert set(settings) == {"seeds", "dataset", "model", "recipe", "model_seed", "fill"}
    assert settings["model_seed"] == 0
    # the seeds name the baselines input, in its order
    sidecars = spec.baselines(default_config, WILDCARDS)
    for seed, path in zip(settings["seeds"], sidecars, strict=True):
        assert path.endswith(f"seed{seed}.json")


def test_roar_report_settings_are_the_title(default_config):
    settings = spec.roar_report_settings(default_config, WILDCARDS)
    assert settings == {"title": "digits / small_cnn / standard / seed 0: retrained accuracy"}


def test_mask_only_control_reads_the_class_from_a_class_dependent_mask():
    """A map that puts its mass where the class says gives the class away through the
    removal mask alone; a random map does not (about chance)."""
    from saliencybench import store
    from saliencybench.evaluations.roar.compute import mask_dataset, mask_only_accuracy

    rng = np.random.default_rng(0)
    size, classes = 8, 4

    def split(n):
        labels = np.arange(n) % classes
        images = rng.integers(0, 256, (n, 1, size, size)).astype(np.uint8)
        return store.DatasetSplit(images, labels.astype(np.int64), None)

    splits = {"train": split(400), "test": split(200)}
    dataset = store.make_dataset(
        splits, class_names=[str(c) for c in range(classes)], mean=[0.5], std=[0.3], source="t"
    )

    def maps(kind):
        out = {}
        for name, part in splits.items():
            values = rng.random((len(part.labels), size, size)).astype(np.float32)
            if kind == "class":  # mass in the class's quarter of the rows
                for c in range(classes):
                    values[part.labels == c, 2 * c : 2 * c + 2] += 10.0
            out[name] = store.AttributionSplit(values, part.labels)
        return store.AttributionStore("maps", out, {})

    masks = mask_dataset(dataset, maps("class"), mode="roar", fraction=0.25, seed=0)
    assert masks["train"].images.shape == (400, 1, size, size)
    assert set(np.unique(masks["train"].images)) == {0, 255}
    assert (masks["train"].images == 255).mean() == pytest.approx(0.25)
    settings = {
        "mode": "roar",
        "fraction": 0.25,
        "model_entry": {"architecture": "small_cnn", "weights": None},
        "recipe_entry": {"epochs": 6, "batch_size": 32, "lr": 0.05},
        "seeds": [0],
    }
    leaked = mask_only_accuracy(dataset, maps("class"), **settings)
    unrelated = mask_only_accuracy(dataset, maps("random"), **settings)
    assert leaked[0] > 0.9
    assert unrelated[0] < 0.45
