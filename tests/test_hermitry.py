"""The hermitry ratio: Mahalanobis distances against scikit-learn, the ratio by construction on
validation images and white noise, the capture of the inputs methods send, the evaluation
inputs, the stores and summary of one model, and config errors."""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from support import ROOT, SMALL, ConvNet, config_error
from torch import nn

from saliencybench.config import validate
from saliencybench.evaluations.hermitry import compute as hermitry_compute
from saliencybench.evaluations.hermitry import spec as hermitry_spec
from saliencybench.evaluations.hermitry.compute import (
    EncodingCapture,
    HermitryError,
    adapt_images,
    capture,
    capture_method,
    evaluation_inputs,
    fit_classes,
    mahalanobis,
    reference,
    thresholds,
)
from saliencybench.evaluations.hermitry.summary import (
    CONTROLS,
    fit_of,
    hermitry_level,
    hermitry_ratio,
    read_reference,
    read_store,
    summarize,
)
from saliencybench.methods import AttributionContext
from saliencybench.models import classifier_layer, penultimate_encodings
from saliencybench.pipeline import prepare_dataset, train

CTX = AttributionContext(seed=3, input_range=(-2.0, 2.5))


def _clusters(n: int = 120, features: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    mixing = rng.normal(size=(3, features, features))
    encodings = np.einsum("nf,nfg->ng", rng.normal(size=(n, features)), mixing[labels])
    return encodings + 3.0 * labels[:, None], labels


@pytest.mark.parametrize(
    ("covariance", "reference_estimator"),
    [("empirical", EmpiricalCovariance), ("ledoit_wolf", LedoitWolf)],
)
def test_mahalanobis_matches_scikit_learn(covariance, reference_estimator):
    encodings, labels = _clusters()
    fit = fit_classes(encodings, labels, [0, 1, 2], covariance)
    queries = np.random.default_rng(1).normal(size=(50, encodings.shape[1])) * 2
    query_classes = np.arange(50) % 3
    squared = mahalanobis(
        torch.as_tensor(queries), torch.as_tensor(query_classes), fit, squared=True
    ).numpy()
    distance = mahalanobis(torch.as_tensor(queries), torch.as_tensor(query_classes), fit).numpy()
    for c in range(3):
        expected = reference_estimator().fit(encodings[labels == c]).mahalanobis(queries)
        rows = query_classes == c
        np.testing.assert_allclose(squared[rows], expected[rows], rtol=1e-9)
        np.testing.assert_allclose(distance[rows] ** 2, expected[rows], rtol=1e-9)
    if covariance == "ledoit_wolf":
        assert ((fit.shrinkage > 0) & (fit.shrinkage < 1)).all()


def test_ledoit_wolf_keeps_a_singular_class_finite():
    rng = np.random.default_rng(0)
    encodings = rng.normal(size=(5, 20))  # fewer images than features: S_c is singular
    fit = fit_classes(encodings, np.zeros(5, np.int64), [0], "ledoit_wolf")
    d = mahalanobis(
        torch.as_tensor(rng.normal(size=(4, 20))), torch.zeros(4, dtype=torch.long), fit
    )
    assert torch.isfinite(d).all()


def test_thresholds_give_the_validation_images_h_of_one_minus_the_percentile():
    encodings, labels = _clusters(n=600)
    fit = fit_classes(encodings[:300], labels[:300], [0, 1, 2], "ledoit_wolf")
    held_out, held_labels = encodings[300:], labels[300:]
    d = mahalanobis(torch.as_tensor(held_out), torch.as_tensor(held_labels), fit).numpy()
    t = thresholds(d, held_labels, fit, 95)
    for k in range(3):
        own = d[held_labels == k]
        ratio = hermitry_ratio(own, t[k])
        assert 0.05 - 1 / len(own) <= ratio <= 0.05
    # uniform white noise over a box far wider than the classes: every input a hermit
    noise = np.random.default_rng(2).uniform(-50, 50, size=(300, encodings.shape[1]))
    noise_classes = np.arange(300) % 3
    d_noise = mahalanobis(torch.as_tensor(noise), torch.as_tensor(noise_classes), fit).numpy()
    assert hermitry_ratio(d_noise, t[noise_classes]) == pytest.approx(1.0, abs=0.01)
    assert hermitry_level(0.3) == "low" and hermitry_level(0.31) == "high"


def test_order_statistic_threshold_is_the_papers_nth_smallest_distance():
    fit = fit_classes(*_clusters(n=60), [0, 1, 2], "empirical")
    rng = np.random.default_rng(5)
    classes = np.repeat([0, 1, 2], [50, 37, 1])
    distances = rng.permutation(rng.gamma(2.0, size=len(classes)))
    t = thresholds(distances, classes, fit, 95, "order_statistic")
    for k, count in enumerate([50, 37, 1]):
        ordered = sorted(distances[classes == k])
        n = max(1, int(0.95 * count))  # 47, 35, then 0 raised to the smallest
        assert t[k] == ordered[n - 1]
    # numpy's interpolated percentile lies between the n-th and (n+1)-th smallest
    interpolated = thresholds(distances, classes, fit, 95)
    ordered = sorted(distances[classes == 0])
    assert ordered[46] <= interpolated[0] <= ordered[47] and interpolated[0] != t[0]
    with pytest.raises(HermitryError, match="threshold rule 'median'"):
        thresholds(distances, classes, fit, 95, "median")


# ----------------------------------------------------------------------- capture


class Counting(nn.Module):
    """Counts the rows of every forward call: the independent record of the queries."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        self.calls += 1
        return self.model(x)


@pytest.mark.parametrize("method", ["occlusion", "lime", "kernel_shap", "anchor"])
def test_capture_records_every_forward_evaluation(method):
    torch.manual_seed(0)
    inner = ConvNet().eval()
    counting = Counting(inner)
    images = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1, 2])
    encodings, owner, queries = capture_method(
        counting,
        images,
        targets,
        method=method,
        params=SMALL[method],
        context=CTX,
        max_queries_per_image=None,
        seed=0,
    )
    assert queries.sum() == counting.rows == len(encodings) == len(owner)
    assert np.array_equal(np.bincount(owner, minlength=3), queries)
    assert encodings.shape[1] == classifier_layer(inner).in_features
    # the capture leaves no hook behind
    assert not classifier_layer(inner)._forward_pre_hooks


class CountingUnperturbed(Counting):
    """Also counts the rows equal to one of the explained images."""

    def __init__(self, model: nn.Module, images: torch.Tensor) -> None:
        super().__init__(model)
        self.images = images
        self.unperturbed = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        same = (x[:, None] == self.images[None]).flatten(2).all(2).any(1)
        self.unperturbed += int(same.sum())
        return super().forward(x)


@pytest.mark.parametrize("method", ["occlusion", "kernel_shap", "lime"])
def test_capture_can_leave_out_the_unperturbed_image(method):
    torch.manual_seed(0)
    images = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    counting = CountingUnperturbed(ConvNet().eval(), images)
    kwargs = {"method": method, "params": SMALL[method], "context": CTX, "seed": 0}
    targets = torch.tensor([0, 1, 2])
    encodings, owner, queries = capture_method(
        counting, images, targets, max_queries_per_image=None, count_unperturbed=False, **kwargs
    )
    assert queries.sum() == counting.rows - counting.unperturbed == len(encodings)
    if method in ("occlusion", "kernel_shap"):
        assert counting.unperturbed >= len(images)  # captum sends each image once
    everything, _, all_queries = capture_method(
        ConvNet().eval(), images, targets, max_queries_per_image=None, **kwargs
    )
    assert all_queries.sum() == counting.rows


@pytest.mark.parametrize("count_unperturbed", [True, False])
@pytest.mark.parametrize("max_queries", [None, 5])
def test_occlusion_capture_in_batches_equals_one_image_per_call(count_unperturbed, max_queries):
    """Occlusion explains many images per call; its rows are assigned to their image by
    position, and the capture is the one of one image per call: the same owners, counts
    and cap draws exactly, the same rows in the same order up to the float rounding of a
    larger batch, also for a last batch of another size."""
    torch.manual_seed(0)
    model = ConvNet().eval()
    images = torch.randn(7, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    params = {**SMALL["occlusion"], "perturbations_per_eval": 3}
    kwargs = {
        "method": "occlusion",
        "params": params,
        "context": CTX,
        "seed": 0,
        "max_queries_per_image": max_queries,
        "count_unperturbed": count_unperturbed,
    }
    counting = Counting(model)
    alone = capture_method(counting, images, targets, images_per_call=1, **kwargs)
    calls_alone, counting.calls = counting.calls, 0
    batched = capture_method(counting, images, targets, images_per_call=3, **kwargs)
    assert np.array_equal(alone[1], batched[1]) and np.array_equal(alone[2], batched[2])
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-6)
    assert counting.calls == math.ceil(7 / 3) * (calls_alone // 7)  # three images a pass


def test_capture_refuses_a_method_whose_rows_do_not_follow_the_batch():
    wrapper = EncodingCapture(ConvNet().eval())
    wrapper.images_per_call = 3
    with pytest.raises(HermitryError, match="a forward pass of 4 rows for 3 images"):
        wrapper(torch.randn(4, 3, 12, 12))


def test_capture_cap_is_a_seeded_subsample_of_the_recorded_rows():
    torch.manual_seed(0)
    model = ConvNet().eval()
    images = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 1])
    kwargs = {"method": "lime", "params": SMALL["lime"], "context": CTX}
    full, full_owner, queries = capture_method(
        model, images, targets, max_queries_per_image=None, seed=0, **kwargs
    )
    capped_rows, owner, capped_queries = capture_method(
        model, images, targets, max_queries_per_image=7, seed=0, **kwargs
    )
    assert np.array_equal(queries, capped_queries)
    assert np.array_equal(np.bincount(owner), [7, 7])
    # every kept row is one of the rows the uncapped run recorded for the same image
    for i in range(2):
        distances = torch.cdist(capped_rows[owner == i], full[full_owner == i])
        assert (distances.min(dim=1).values < 1e-5).all()
    again, _, _ = capture_method(model, images, targets, max_queries_per_image=7, seed=0, **kwargs)
    assert torch.equal(again, capped_rows)


def test_encoding_capture_equals_the_penultimate_encodings():
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.randn(5, 3, 12, 12)
    wrapper = EncodingCapture(model)
    logits = wrapper(x[:2])
    wrapper(x[2:])
    assert torch.allclose(logits, model(x[:2]))
    assert torch.allclose(wrapper.take(), penultimate_encodings(model, x, batch_size=2))
    assert len(wrapper.take()) == 0 and wrapper.forward_calls == 2


def test_adapt_images_resizes_and_converts_channels():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    grey = adapt_images(rgb, 1, 16)
    assert grey.shape == (2, 1, 16, 16) and grey.dtype == np.uint8
    assert adapt_images(grey, 3, 8).shape == (2, 3, 8, 8)


# ----------------------------------------------------------------------- a trained model


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hermitry")
    data = folder / "digits.zarr"
    prepare_dataset(
        "digits",
        {"source": "digits", "options": {"image_size": 16, "max_train": 500, "max_test": 200}},
        seed=0,
        output=data,
    )
    shapes = folder / "shapes.zarr"
    prepare_dataset(
        "shapes",
        {"source": "shapes", "options": {"image_size": 32, "n_train": 20, "n_test": 30}},
        seed=0,
        output=shapes,
    )
    checkpoint, sidecar = folder / "seed0.pt", folder / "seed0.json"
    train(
        data,
        model_name="small_cnn",
        model_entry={"architecture": "small_cnn", "weights": None},
        recipe_name="standard",
        recipe_entry={"epochs": 8, "batch_size": 32, "lr": 0.05},
        seed=0,
        device="cpu",
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    references = {}
    for name, max_per_class in [("reference", None), ("small_reference", 4)]:
        references[name] = folder / f"{name}.zarr"
        reference(
            data,
            checkpoint,
            sidecar,
            foreign_path=shapes,
            split="test",
            classes=None,
            max_per_class=max_per_class,
            covariance="ledoit_wolf",
            percentile=95,
            noise_images=50,
            batch_size=256,
            seed=0,
            device="cpu",
            output=references[name],
        )
    return {"data": data, "checkpoint": checkpoint, "sidecar": sidecar, **references}


def _ratio(table, source: str) -> float:
    rows = table["source"].values == source
    klass = table["klass"].values[rows]
    threshold = table["threshold"].sel({"class": klass}).values
    return float((table["distance"].values[rows] > threshold).mean())


def test_reference_controls_on_a_trained_model(trained_digits):
    ref = read_reference(trained_digits["reference"])
    assert set(ref["source"].values) == set(CONTROLS)
    assert ref["precisions"].shape == (10, 84, 84)
    # validation images: H = 0.05 by construction, up to the rounding of small classes
    assert 0.0 < _ratio(ref, "train_val") <= 0.05
    # white noise is mostly hermits even for this small model (near 1 for most classes; the
    # classes 6 and 8 sit closest to it); the training images are not
    assert _ratio(ref, "white_noise") > 0.7
    assert _ratio(ref, "train_train") < 0.05
    assert ref.attrs["foreign"] == "shapes"


def test_capture_and_summary_of_a_trained_model(trained_digits, tmp_path):
    stores = []
    for method, params in [("occlusion", {"window_size": 4, "stride": 4}), ("lime", SMALL["lime"])]:
        out = tmp_path / f"{method}.zarr"
        capture(
            trained_digits["data"],
            trained_digits["checkpoint"],
            trained_digits["sidecar"],
            trained_digits["small_reference"],
            method_name=method,
            method_entry={"method": method, **params},
            max_queries_per_image=20,
            target_rule="predicted",
            batch_size=64,
            seed=0,
            device="cpu",
            output=out,
        )
        stored = read_store(out)
        assert (stored["queries"].values > 0).all()
        stores.append(str(out))
    summary = summarize(trained_digits["small_reference"], stores, None, low_ratio=0.3)
    entries = {str(s): i for i, s in enumerate(summary["source"].values)}
    assert list(summary["panel"].values) == ["occlusion", "lime", *CONTROLS]
    h = summary["hermitry_mean"].values
    assert h[entries["white_noise"]] > 0.7 and h[entries["train_train"]] < 0.05
    # captum's Occlusion asks for the unperturbed image first, then the 4 x 4 windows
    assert summary["count"].values[entries["occlusion"]].sum() == 40 * (1 + 16)
    assert np.isfinite(summary["density"].values).all()
    assert ((summary["normalized_threshold"] > 0) & (summary["normalized_threshold"] <= 1)).all()


def test_evaluation_inputs_follow_the_masking_and_the_curves(trained_digits):
    from saliencybench.inference import normalize
    from saliencybench.jobkit import load_trained_model
    from saliencybench.store import read_dataset

    ref = read_reference(trained_digits["reference"])
    dataset = read_dataset(trained_digits["data"])

    model, _ = load_trained_model(trained_digits["checkpoint"], trained_digits["sidecar"], "cpu")
    indices = ref["validation"].values[:12]
    images = dataset["test"].images[indices]
    labels = ref["validation_labels"].values[:12]
    inputs = normalize(images, dataset.mean, dataset.std, torch.device("cpu"))
    maps = np.random.default_rng(0).random((12, 16, 16)).astype(np.float32)

    table = evaluation_inputs(
        model,
        images,
        inputs,
        labels,
        indices,
        {"random": maps},
        {"random": labels},
        fit_of(ref),
        mean=dataset.mean,
        std=dataset.std,
        fractions=[0.5],
        roar_fill="mean",
        blur_sigma=2.0,
        steps=4,
        curves_fill=0.0,
        square_side=2,
        noise_std=0.2,
        baseline=0.0,
        infidelity_samples=3,
        batch_size=64,
        seed=0,
    )
    sources = table.source
    assert (sources == "roar").sum() == 12 and (sources == "mif").sum() == 12 * 5
    assert (sources == "infidelity_square").sum() == 36
    # step 0 of MIF is the unperturbed image: its distance is the validation distance
    mif0 = (sources == "mif") & (table.level == 0)
    val = ref["distance"].values[ref["source"].values == "train_val"][:12]
    np.testing.assert_allclose(table.distance[mif0], val, rtol=1e-5)
    # step K of MIF and LIF both perturb every pixel: the same input
    mif_k = table.distance[(sources == "mif") & (table.level == 1)]
    lif_k = table.distance[(sources == "lif") & (table.level == 1)]
    np.testing.assert_allclose(mif_k, lif_k, rtol=1e-6)


# ----------------------------------------------------------------------- config


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text())


def test_hermitry_defaults(config):
    config.pop("hermitry", None)
    validate(config)
    settings = config["hermitry"]
    assert settings["percentile"] == 95 and settings["low_ratio"] == 0.3
    assert settings["covariance"] == "ledoit_wolf" and settings["split"] == "test"
    experiment = {**config["experiments"][0], "methods": ["saliency", "occlusion", "lime"]}
    assert hermitry_spec.methods(config, experiment) == ["occlusion", "lime"]
    assert hermitry_spec.map_methods(config, experiment) == ["saliency", "occlusion", "lime"]
    assert hermitry_spec.foreign_dataset(config, "digits") == "shapes"
    config["hermitry"]["foreign"] = None
    assert hermitry_spec.foreign_dataset(config, "digits") is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"percentile": 100}, "config key 'hermitry.percentile'"),
        ({"low_ratio": 1.5}, "config key 'hermitry.low_ratio'"),
        ({"covariance": "shrunk"}, "'shrunk' is not one of: ledoit_wolf, empirical"),
        (
            {"methods": ["anchors"]},
            "config key 'hermitry.methods': 'anchors' is not defined in 'methods'",
        ),
        (
            {"map_methods": ["saliency"], "split": "train", "methods": []},
            None,
        ),
        ({"foreign": "cifar10"}, "config key 'hermitry.foreign': 'cifar10' is not defined"),
        ({"max_per_class": 0}, "config key 'hermitry.max_per_class'"),
    ],
)
def test_bad_hermitry_settings(config, change, expected):
    config["hermitry"] = change
    if expected is None:  # saliency maps both splits in the default config: valid
        validate(config)
        return
    assert expected in config_error(config)


def test_map_methods_must_map_the_split(config):
    config["hermitry"] = {"map_methods": ["lime"], "split": "train"}
    assert "'lime' attributes only the test split" in config_error(config)


def test_hermitry_is_an_evaluation(config):
    config["experiments"][0]["evaluations"] = ["hermitry"]
    validate(config)


# ----------------------------------------------------------------------- job settings

WILDCARDS = SimpleNamespace(
    dataset="digits", model="small_cnn", recipe="standard", seed="0", method="occlusion"
)
JOB_KEYS = ("batch_size", "seed", "device")
# the jobs that load the trained model get chance_margin from their adapter, not settings
MODEL_JOB_KEYS = JOB_KEYS


@pytest.mark.parametrize(
    ("rule", "keys"),
    [
        (
            "hermitry_reference",
            {"split", "classes", "max_per_class", "covariance", "percentile", "noise_images"}
            | set(MODEL_JOB_KEYS),
        ),
        (
            "hermitry_capture",
            {"method_name", "method_entry", "max_queries_per_image", "target_rule"}
            | set(MODEL_JOB_KEYS),
        ),
        (
            "hermitry_evaluations",
            {
                "map_methods",
                "fractions",
                "roar_fill",
                "blur_sigma",
                "steps",
                "curves_fill",
                "square_side",
                "noise_std",
                "baseline",
                "infidelity_samples",
            }
            | set(MODEL_JOB_KEYS),
        ),
        ("hermitry_summary", {"low_ratio", "attrs"}),
        ("hermitry_report", {"model", "title"}),
        ("hermitry_recipes", {"title"}),
    ],
)
def test_settings_hold_exactly_the_keys_each_job_reads(config, rule, keys):
    validate(config)
    settings = getattr(hermitry_spec, f"{rule}_settings")(config, WILDCARDS)
    assert set(settings) == keys


def test_keys_added_later_enter_the_params_only_when_set(config):
    """A finished job keeps its params (and is not rerun) unless the new key is set."""
    validate(config)
    reference = hermitry_spec.hermitry_reference_settings(config, WILDCARDS)
    capture = hermitry_spec.hermitry_capture_settings(config, WILDCARDS)
    evaluations = hermitry_spec.hermitry_evaluations_settings(config, WILDCARDS)
    assert "threshold_rule" not in reference and "count_unperturbed" not in capture
    assert "noise_clip" not in evaluations
    config["hermitry"].update(threshold="order_statistic", count_unperturbed=False)
    config["robustness"]["infidelity"]["clip"] = True
    validate(config)
    assert hermitry_spec.hermitry_reference_settings(config, WILDCARDS) == {
        **reference,
        "threshold_rule": "order_statistic",
    }
    assert hermitry_spec.hermitry_capture_settings(config, WILDCARDS) == {
        **capture,
        "count_unperturbed": False,
    }
    assert hermitry_spec.hermitry_evaluations_settings(config, WILDCARDS)["noise_clip"] is True
    for function in ("reference", "capture"):
        taken = inspect.signature(getattr(hermitry_compute, function)).parameters
        assert {"threshold_rule", "count_unperturbed"} & set(taken)


def test_settings_of_a_job_ignore_what_it_does_not_read(config):
    validate(config)
    capture = hermitry_spec.hermitry_capture_settings(config, WILDCARDS)
    evaluations = hermitry_spec.hermitry_evaluations_settings(config, WILDCARDS)
    assert capture["method_entry"] == config["methods"]["occlusion"]
    assert evaluations["map_methods"] == config["hermitry"]["map_methods"]
    assert evaluations["fractions"] == config["roar"]["fractions"]  # hermitry.fractions null
    # another method in the hermitry lists leaves one method's capture as it was
    config["hermitry"]["methods"] = ["occlusion", "lime"]
    config["hermitry"]["map_methods"] = ["saliency"]
    assert hermitry_spec.hermitry_capture_settings(config, WILDCARDS) == capture
    summary = hermitry_spec.hermitry_summary_settings(config, WILDCARDS)
    assert summary["attrs"] == {
        "dataset": "digits",
        "model": "small_cnn",
        "recipe": "standard",
        "model_seed": 0,
    }
