"""The start of every model job: the gate that refuses a model which learned nothing."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from support import ROOT

from saliencybench import jobkit, pipeline, planning, store
from saliencybench.config import validate
from saliencybench.evaluations.curves import compute as curves
from saliencybench.evaluations.hermitry import compute as hermitry
from saliencybench.evaluations.randomization import compute as randomization
from saliencybench.evaluations.robustness import compute as robustness
from saliencybench.models import build_model

RECIPE = {"epochs": 2, "batch_size": 16, "lr": 0.05}
SIZE = 8


def _dataset(path: Path, test_labels: list[int], *, classes: int = 4, seed: int = 0) -> Path:
    """A store of noise images (no class differs from another) with the given test labels."""
    rng = np.random.default_rng(seed)
    train_labels = np.arange(80) % classes

    def split(labels) -> store.DatasetSplit:
        labels = np.asarray(labels, dtype=np.int64)
        images = rng.integers(0, 256, (len(labels), 1, SIZE, SIZE), dtype=np.uint8)
        return store.DatasetSplit(images, labels)

    store.write_dataset(
        path,
        {"train": split(train_labels), "test": split(test_labels)},
        class_names=[f"c{k}" for k in range(classes)],
        mean=[0.5],
        std=[0.25],
        source="noise",
        extra_attrs={"name": "noise"},
    )
    return path


def _saved(folder: Path, data: Path, test_accuracy: float, name: str = "seed0"):
    """A model saved by the train job's own writer, its sidecar claiming ``test_accuracy``."""
    dataset = store.read_dataset(data)
    model = build_model(
        "small_cnn", in_channels=1, num_classes=len(dataset.class_names), image_size=SIZE
    )
    result = pipeline.FitResult(model, [], test_accuracy, test_accuracy, 0.0, "cpu")
    checkpoint, sidecar = folder / f"{name}.pt", folder / f"{name}.json"
    pipeline.save_trained(
        result,
        dataset,
        data,
        model_name="small_cnn",
        model_entry={"architecture": "small_cnn"},
        recipe_name="standard",
        recipe_entry=RECIPE,
        seed=0,
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    return checkpoint, sidecar


@pytest.fixture
def balanced(tmp_path) -> Path:
    """Four classes, 20 test images each: chance is 25 %."""
    return _dataset(tmp_path / "balanced.zarr", list(np.arange(80) % 4))


def test_chance_is_the_most_frequent_class():
    assert jobkit.chance_accuracy(np.array([0, 1, 2, 3])) == 0.25
    assert jobkit.chance_accuracy(np.array([0, 0, 0, 1, 2])) == 0.6
    assert jobkit.chance_accuracy(np.array([], dtype=np.int64)) == 0.0


def test_a_model_at_chance_is_refused_with_its_name_and_accuracies(tmp_path, balanced):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.27)
    with pytest.raises(jobkit.ModelNotLearnedError) as caught:
        jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=0.1)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "model small_cnn (dataset noise, recipe standard, seed 0): test accuracy 27.0 % is "
        "not clearly above chance (25.0 %, the most frequent class) — required 35.0 % "
        "(config key chance_margin: 0.1);"
    )
    assert "recipes.standard.epochs" in message and "recipes.standard.lr" in message
    assert "chance_margin: null" in message


def test_a_model_clearly_above_chance_passes(tmp_path, balanced):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.4)
    run = jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=0.1)
    assert run.sidecar["test_accuracy"] == 0.4
    # chance + margin itself passes, although 0.25 + 0.1 is not 0.35 in floating point
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.35, "edge")
    jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=0.1)


def test_chance_of_imbalanced_data_is_the_majority_share(tmp_path):
    # 1/K would be 25 %: a model that always answers class 0 reaches 70 % here
    data = _dataset(tmp_path / "imbalanced.zarr", [0] * 56 + [1, 2, 3] * 8)
    checkpoint, sidecar = _saved(tmp_path, data, 0.72)
    with pytest.raises(jobkit.ModelNotLearnedError, match=r"72\.0 % .* chance \(70\.0 %"):
        jobkit.load_run(data, checkpoint, sidecar, "cpu", chance_margin=0.05)
    assert json.loads(sidecar.read_text())["chance_accuracy"] == 0.7


def test_margin_null_disables_the_gate(tmp_path, balanced):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.1)
    run = jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=None)
    assert run.sidecar["test_accuracy"] == 0.1
    jobkit.load_run(balanced, checkpoint, sidecar, "cpu")  # outside the workflow: no gate


def test_the_permuted_label_model_loaded_beside_is_exempt(tmp_path, balanced):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.9)
    permuted = _saved(tmp_path, balanced, 0.25, "seed0-permuted-labels")
    run = jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=0.1)
    _, loaded = run.load_beside(*permuted)
    assert loaded["test_accuracy"] == 0.25


def test_a_sidecar_without_test_accuracy_is_refused(tmp_path, balanced):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.9)
    entries = store.read_json(sidecar, "sidecar")
    del entries["test_accuracy"]
    store.write_json(sidecar, entries)
    with pytest.raises(store.StoreError, match="no test_accuracy"):
        jobkit.load_run(balanced, checkpoint, sidecar, "cpu", chance_margin=0.1)


def test_a_model_trained_on_images_without_evidence_is_refused(tmp_path, balanced):
    """The issue's case, end to end: training on classes the images do not tell apart ends
    near chance, and the attribute job stops before computing a map."""
    checkpoint, sidecar = tmp_path / "noise.pt", tmp_path / "noise.json"
    written = pipeline.train(
        balanced,
        model_name="small_cnn",
        model_entry={"architecture": "small_cnn"},
        recipe_name="standard",
        recipe_entry=RECIPE,
        seed=0,
        device="cpu",
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    assert written["chance_accuracy"] == 0.25 and written["test_accuracy"] < 0.35
    with pytest.raises(jobkit.ModelNotLearnedError, match="model small_cnn"):
        pipeline.attribute(
            balanced,
            checkpoint,
            sidecar,
            method_name="saliency",
            method_entry={"method": "saliency"},
            target_rule="predicted",
            splits=["test"],
            batch_size=16,
            seed=0,
            device="cpu",
            chance_margin=0.1,
            output=tmp_path / "never.zarr",
        )
    assert not (tmp_path / "never.zarr").exists()


# Every job that loads a trained model, with the arguments it needs to reach load_run (the
# paths it reads after load_run are never opened).
JOBS = {
    "attribute": lambda data, ckpt, side, out: pipeline.attribute(
        data,
        ckpt,
        side,
        method_name="saliency",
        method_entry={"method": "saliency"},
        target_rule="predicted",
        splits=["test"],
        batch_size=16,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "curves": lambda data, ckpt, side, out: curves.compute(
        data,
        ckpt,
        side,
        out.parent / "missing-maps.zarr",
        split="test",
        steps=4,
        fill_value=0.0,
        batch_size=16,
        max_images=None,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "robustness": lambda data, ckpt, side, out: robustness.compute(
        data,
        ckpt,
        side,
        method_name="saliency",
        method_entry={"method": "saliency"},
        settings={},
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "randomization": lambda data, ckpt, side, out: randomization.compute(
        data,
        ckpt,
        side,
        method_name="saliency",
        method_entry={"method": "saliency"},
        permuted_checkpoint=None,
        permuted_sidecar=None,
        split="test",
        max_images=None,
        layer_types=["conv"],
        examples=1,
        target_rule="predicted",
        batch_size=16,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "hermitry_reference": lambda data, ckpt, side, out: hermitry.reference(
        data,
        ckpt,
        side,
        foreign_path=None,
        split="test",
        classes=None,
        max_per_class=None,
        covariance="ledoit_wolf",
        percentile=95,
        noise_images=1,
        batch_size=16,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "hermitry_capture": lambda data, ckpt, side, out: hermitry.capture(
        data,
        ckpt,
        side,
        out.parent / "missing-reference.zarr",
        method_name="occlusion",
        method_entry={"method": "occlusion"},
        max_queries_per_image=None,
        target_rule="predicted",
        batch_size=16,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
    "hermitry_evaluations": lambda data, ckpt, side, out: hermitry.evaluations(
        data,
        ckpt,
        side,
        out.parent / "missing-reference.zarr",
        [],
        map_methods=[],
        fractions=[0.5],
        roar_fill="mean",
        blur_sigma=1.0,
        steps=2,
        curves_fill=0.0,
        square_side=None,
        noise_std=0.1,
        baseline=0.0,
        infidelity_samples=2,
        batch_size=16,
        seed=0,
        device="cpu",
        chance_margin=0.1,
        output=out,
    ),
}


@pytest.mark.parametrize("job", sorted(JOBS))
def test_every_model_job_passes_its_margin_to_the_gate(tmp_path, balanced, job):
    checkpoint, sidecar = _saved(tmp_path, balanced, 0.25)
    with pytest.raises(jobkit.ModelNotLearnedError, match=r"required 35\.0 %"):
        JOBS[job](balanced, checkpoint, sidecar, tmp_path / "never.zarr")
    assert not (tmp_path / "never.zarr").exists()


def _wildcards():
    return SimpleNamespace(
        dataset="mnist_sample",
        model="small_cnn",
        recipe="brief",
        seed="0",
        method="saliency",
        smoothing="none",
    )


ADAPTERS = (
    "attribute",
    "curves",
    "robustness_metrics",
    "randomization",
    "hermitry_reference",
    "hermitry_capture",
    "hermitry_evaluations",
)


def test_every_model_job_reads_the_margin_from_config_not_its_settings():
    """The margin decides whether a job may run, not what it writes: the adapters read it
    from the config, so it is in no rule's params and changing it reruns nothing; the
    default experiment keeps the default margin."""
    from saliencybench.evaluations.curves import spec as curves_spec
    from saliencybench.evaluations.hermitry import spec as hermitry_spec
    from saliencybench.evaluations.randomization import spec as randomization_spec
    from saliencybench.evaluations.robustness import spec as robustness_spec

    config = validate(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert config["chance_margin"] == 0.1
    functions = [
        planning.attribute_settings,
        curves_spec.perturbation_curves_settings,
        robustness_spec.robustness_metrics_settings,
        randomization_spec.parameter_randomization_settings,
        hermitry_spec.hermitry_reference_settings,
        hermitry_spec.hermitry_capture_settings,
        hermitry_spec.hermitry_evaluations_settings,
    ]
    for function in functions:
        assert "chance_margin" not in function(config, _wildcards()), function.__name__
    for adapter in ADAPTERS:
        text = (ROOT / "workflow_scripts" / f"{adapter}.py").read_text()
        assert 'chance_margin=snakemake.config["chance_margin"]' in text, adapter
    keywords = inspect.signature(pipeline.attribute).parameters.values()
    taken = {p.name for p in keywords if p.kind is p.KEYWORD_ONLY} - {"output", "chance_margin"}
    assert set(planning.attribute_settings(config, _wildcards())) == taken
