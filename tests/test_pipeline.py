"""The backbone stages as functions: repeatability, provenance, and bad inputs."""

import json
import shutil

import numpy as np
import pytest
import torch

from saliencybench import jobkit, pipeline, store
from saliencybench.methods import MethodError

DATASET = {"source": "digits", "options": {"max_train": 200, "max_test": 40}}
MODEL = {"architecture": "small_cnn", "weights": None}
RECIPE = {"epochs": 2, "batch_size": 32, "lr": 0.05}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    data = folder / "digits.zarr"
    pipeline.prepare_dataset("digits", DATASET, seed=0, output=data)
    outputs = []
    for run in ("a", "b"):
        checkpoint, sidecar = folder / f"{run}.pt", folder / f"{run}.json"
        pipeline.train(
            data,
            model_name="small_cnn",
            model_entry=MODEL,
            recipe_name="standard",
            recipe_entry=RECIPE,
            seed=0,
            device="cpu",
            checkpoint=checkpoint,
            sidecar_path=sidecar,
        )
        outputs.append((checkpoint, sidecar))
    return folder, data, outputs


def _attribute(data, checkpoint, sidecar, output, method="integrated_gradients", **entry):
    pipeline.attribute(
        data,
        checkpoint,
        sidecar,
        method_name=method,
        method_entry={"method": method, "n_steps": 8, **entry}
        if method == "integrated_gradients"
        else {"method": method, **entry},
        target_rule="predicted",
        splits=["train", "test"],
        batch_size=64,
        seed=0,
        device="cpu",
        output=output,
    )
    return store.read_attributions(output)


def test_training_is_repeatable_and_recorded(trained):
    _, data, ((ckpt_a, side_a), (ckpt_b, side_b)) = trained
    state_a = torch.load(ckpt_a, weights_only=True)
    state_b = torch.load(ckpt_b, weights_only=True)
    assert state_a._metadata  # module versions, which some architectures need to load
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    sidecar = json.loads(side_a.read_text())
    assert sidecar["data_hash"] == store.read_dataset(data).content_hash
    assert sidecar["checkpoint_sha256"] == store.file_hash(ckpt_a)
    assert len(sidecar["history"]) == 2 and 0 <= sidecar["test_accuracy"] <= 1
    assert sidecar["architecture"] == "small_cnn" and sidecar["image_shape"] == [1, 8, 8]


def test_attribution_is_repeatable_and_carries_provenance(trained):
    folder, data, ((ckpt, sidecar), _) = trained
    first = _attribute(data, ckpt, sidecar, folder / "ig1.zarr")
    second = _attribute(data, ckpt, sidecar, folder / "ig2.zarr")
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split].maps, second[split].maps)
    assert first["train"].maps.shape == (200, 8, 8)
    attrs = first.attrs
    assert attrs["parameters"] == {"n_steps": 8}
    assert attrs["reduction"] == "sum" and attrs["target_rule"] == "predicted"
    assert attrs["checkpoint_sha256"] == store.file_hash(ckpt)
    assert {"torch", "captum", "saliencybench"} <= set(attrs["versions"])
    model, _ = jobkit.load_trained_model(ckpt, sidecar, torch.device("cpu"))
    images = store.read_dataset(data)["test"].images
    dataset = store.read_dataset(data)
    from saliencybench.inference import normalize, predict_logits

    logits = predict_logits(model, normalize(images, dataset.mean, dataset.std, "cpu"))
    np.testing.assert_array_equal(first["test"].targets, logits.argmax(1).numpy())


def test_method_splits_and_raw(trained):
    folder, data, ((ckpt, sidecar), _) = trained
    result = _attribute(
        data,
        ckpt,
        sidecar,
        folder / "sal.zarr",
        method="saliency",
        splits=["test"],
        store_raw=True,
        reduction="input_sum",
    )
    assert list(result.splits) == ["test"]
    raw, maps = result["test"].raw, result["test"].maps
    assert raw.shape == (40, 1, 8, 8)
    dataset = store.read_dataset(data)
    from saliencybench.inference import normalize

    x = normalize(dataset["test"].images, dataset.mean, dataset.std, "cpu").numpy()
    np.testing.assert_allclose(maps, (raw * x).sum(1), rtol=1e-5, atol=1e-6)


def test_corrupt_checkpoint_is_refused_before_work(trained):
    folder, data, ((ckpt, sidecar), _) = trained
    broken = folder / "broken.pt"
    payload = bytearray(ckpt.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    broken.write_bytes(bytes(payload))
    with pytest.raises(store.StoreError, match=r"broken\.pt: checksum differs"):
        _attribute(data, broken, sidecar, folder / "never.zarr")
    assert not (folder / "never.zarr").exists()


def test_checkpoint_of_other_data_is_refused(trained, tmp_path):
    _, _, ((ckpt, sidecar), _) = trained
    other = tmp_path / "other.zarr"
    pipeline.prepare_dataset(
        "digits", {**DATASET, "options": {"max_train": 100}}, seed=1, output=other
    )
    with pytest.raises(store.StoreError, match="retrain the model"):
        _attribute(other, ckpt, sidecar, tmp_path / "never.zarr")


def test_corrupt_data_store_is_refused(trained, tmp_path):
    _, data, ((ckpt, sidecar), _) = trained
    copy = tmp_path / "copy.zarr"
    shutil.copytree(data, copy)
    chunk = next(
        p for p in (copy / "test" / "images").rglob("*") if p.name != "zarr.json" and p.is_file()
    )
    chunk.write_bytes(b"garbage")
    with pytest.raises(store.StoreError, match=r"copy\.zarr: array 'test/images' is corrupt"):
        _attribute(copy, ckpt, sidecar, tmp_path / "never.zarr")


def test_bad_method_parameter_is_refused(trained, tmp_path):
    _, data, ((ckpt, sidecar), _) = trained
    with pytest.raises(MethodError, match="n_steps"):
        _attribute(data, ckpt, sidecar, tmp_path / "never.zarr", n_steps=0)


@pytest.mark.parametrize("scale", [1e20, float("inf"), float("nan")])
def test_a_model_with_absurd_outputs_is_refused(scale):
    """MNASNet's BatchNorm barely moves its running statistics (momentum 0.0003): trained
    from random weights for a few steps its logits reach 1e34 in eval mode."""
    from saliencybench.training import TrainingError, check_outputs

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    inputs = torch.ones(5, 1, 2, 2)
    check_outputs(model, inputs, "fine")
    with torch.no_grad():
        model[1].bias.fill_(scale)
    with pytest.raises(TrainingError, match="^mnasnet1_0 with recipe short.*logits in eval"):
        check_outputs(model, inputs, "mnasnet1_0 with recipe short, seed 0")
