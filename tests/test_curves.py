"""Perturbation curves and fidelity A against references and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from saliencybench.evaluations.curves.compute import mif_ranks, perturbation_curves, step_counts
from saliencybench.evaluations.curves.summary import fidelity_areas, normalize_curves
from saliencybench.stats import mean_interval


class Linear(nn.Module):
    """Logits w_k . x + b_k: the exact attribution of class k is w_k * x (fill 0)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.flatten(1).T + self.bias


@pytest.fixture
def linear():
    torch.manual_seed(0)
    channels, size, classes = 2, 6, 3
    model = Linear(torch.randn(classes, channels, size, size), torch.full((classes,), 40.0))
    inputs = torch.randn(32, channels, size, size)
    targets = torch.randint(0, classes, (32,))
    exact = (model.weight[targets] * inputs).sum(1)  # signed exact map, (N, H, W)
    return model, inputs, targets, exact


def test_step_counts():
    assert step_counts(4, 10).tolist() == [0, 3, 5, 8, 10]
    assert step_counts(20, 256)[-1] == 256
    with pytest.raises(ValueError, match="steps must be"):
        step_counts(0, 10)


def test_ranks_are_permutations_and_ties_random_but_seeded():
    maps = torch.tensor([[[3.0, 1.0], [2.0, 0.0]]])
    generator = torch.Generator().manual_seed(0)
    assert mif_ranks(maps, generator).tolist() == [[0, 2, 1, 3]]
    ties = torch.zeros(40, 4, 4)
    first = mif_ranks(ties, torch.Generator().manual_seed(1))
    again = mif_ranks(ties, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    assert torch.equal(first.sort(dim=1).values, torch.arange(16).expand(40, 16))
    assert len({tuple(row.tolist()) for row in first}) == 40
    with pytest.raises(ValueError, match="NaN"):
        mif_ranks(torch.full((1, 2, 2), float("nan")), generator)


def _reference_curves(model, inputs, maps, targets, steps, fill):
    """One image, one order, one step at a time (distinct scores, so no ties)."""
    n, _, height, width = inputs.shape
    counts = step_counts(steps, height * width).tolist()
    curves = np.zeros((n, 2, steps + 1))
    for i in range(n):
        scores = maps[i].flatten().numpy()
        for o, order in enumerate((np.argsort(-scores), np.argsort(scores))):
            for k, count in enumerate(counts):
                image = inputs[i].clone()
                rows, cols = np.unravel_index(order[:count], (height, width))
                image[:, rows, cols] = fill
                curves[i, o, k] = model(image[None])[0, targets[i]].item()
    return curves


@pytest.mark.parametrize(("steps", "fill", "batch_size"), [(5, 0.0, 7), (12, -1.5, 64)])
def test_batched_curves_equal_a_per_image_reference(linear, steps, fill, batch_size):
    model, inputs, targets, exact = linear
    maps = exact + 1e-3 * torch.randn_like(exact)  # distinct scores
    curves = perturbation_curves(
        model, inputs, maps, targets, steps=steps, fill_value=fill, batch_size=batch_size
    )
    reference = _reference_curves(model, inputs, maps, targets, steps, fill)
    np.testing.assert_allclose(curves.numpy(), reference, rtol=1e-4, atol=1e-3)


def test_curves_on_a_cnn_match_the_reference():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()
    inputs = torch.randn(6, 3, 8, 8)
    maps = torch.randn(6, 8, 8)
    targets = torch.randint(0, 5, (6,))
    curves = perturbation_curves(model, inputs, maps, targets, steps=8, batch_size=10)
    reference = _reference_curves(model, inputs, maps, targets, 8, 0.0)
    np.testing.assert_allclose(curves.numpy(), reference, rtol=1e-4, atol=1e-4)


def test_exact_attribution_gives_the_steepest_mif_descent(linear):
    """Removing pixels by decreasing w*x lowers the logit most: the closed-form minimum."""
    model, inputs, targets, exact = linear
    steps = 9
    curves = perturbation_curves(model, inputs, exact, targets, steps=steps).numpy()
    counts = step_counts(steps, 36).tolist()
    contributions = np.sort(exact.flatten(1).numpy(), axis=1)[:, ::-1]
    start = curves[:, 0, :1]
    cumulative = np.concatenate([np.zeros((32, 1)), np.cumsum(contributions, axis=1)], axis=1)
    np.testing.assert_allclose(curves[:, 0], start - cumulative[:, counts], rtol=1e-4, atol=1e-3)
    for other in (torch.rand_like(exact), exact.abs(), -exact):
        other_curves = perturbation_curves(model, inputs, other, targets, steps=steps).numpy()
        assert (curves[:, 0] <= other_curves[:, 0] + 1e-3).all()
    areas = fidelity_areas(curves)
    assert (areas > 0).all()


def test_lif_of_a_signed_map_rises_first(linear):
    model, inputs, targets, exact = linear
    curves = perturbation_curves(model, inputs, exact, targets, steps=10).numpy()
    has_negative = (exact.flatten(1) < 0).sum(1) >= 4
    assert has_negative.all()
    # the first LIF step removes only counter-evidence: the logit goes up
    assert (curves[:, 1, 1] > curves[:, 1, 0]).all()
    unsigned = perturbation_curves(model, inputs, exact.abs(), targets, steps=10).numpy()
    assert (unsigned[:, 1, 1] > curves[:, 1, 1]).sum() < 4


def test_random_maps_give_zero_fidelity_within_the_interval():
    torch.manual_seed(1)
    model = Linear(torch.randn(2, 1, 8, 8), torch.full((2,), 30.0))
    inputs = torch.randn(400, 1, 8, 8)
    targets = torch.zeros(400, dtype=torch.long)
    maps = torch.rand(400, 8, 8)
    areas = fidelity_areas(perturbation_curves(model, inputs, maps, targets, steps=10).numpy())
    interval = mean_interval(areas)
    assert abs(interval.mean) < 2 * interval.half_width
    exact = (model.weight[targets] * inputs).sum(1)
    informed = mean_interval(
        fidelity_areas(perturbation_curves(model, inputs, exact, targets, steps=10).numpy())
    )
    assert informed.mean - informed.half_width > interval.mean + interval.half_width


def test_fidelity_area_is_the_trapezoid_between_lif_and_mif():
    rng = np.random.default_rng(0)
    curves = rng.uniform(0.5, 2.0, size=(10, 2, 21))
    normalized = curves / curves[..., :1]
    grid = np.linspace(0, 1, 21)
    expected = 100 * (
        np.trapezoid(normalized[:, 1], grid, axis=1) - np.trapezoid(normalized[:, 0], grid, axis=1)
    )
    np.testing.assert_allclose(fidelity_areas(curves), expected)
    curves[3, :, 0] = -1.0
    assert np.isnan(normalize_curves(curves)[3]).all()
    assert np.isnan(fidelity_areas(curves)[3])


def test_mean_interval_is_the_normal_95_percent_interval():
    values = np.random.default_rng(2).normal(3.0, 2.0, size=50)
    interval = mean_interval(np.append(values, np.nan))
    low, high = stats.norm.interval(0.95, loc=values.mean(), scale=stats.sem(values))
    assert interval.count == 50
    assert interval.mean == pytest.approx(values.mean())
    assert interval.half_width == pytest.approx((high - low) / 2)
    assert np.isnan(mean_interval(np.array([1.0])).half_width)


# ----------------------------------------------------------------------- stage, summary, report


def _trained_stores(tmp_path):
    """A tiny dataset, a trained small CNN and two attribution stores (one with raw)."""
    from saliencybench import store
    from saliencybench.data import channel_stats, load_source
    from saliencybench.pipeline import attribute, train

    arrays = load_source("digits", {"max_train": 120, "max_test": 30}, 0)
    mean, std = channel_stats(arrays.train.images)
    splits = {
        split: store.DatasetSplit(part.images, part.labels)
        for split, part in (("train", arrays.train), ("test", arrays.test))
    }
    data = tmp_path / "digits.zarr"
    store.write_dataset(
        data, splits, class_names=arrays.class_names, mean=mean, std=std, source="digits"
    )
    checkpoint, sidecar = tmp_path / "model.pt", tmp_path / "model.json"
    train(
        data,
        model_name="small_cnn",
        model_entry={"architecture": "small_cnn"},
        recipe_name="standard",
        recipe_entry={"epochs": 3, "batch_size": 32, "lr": 0.05},
        seed=0,
        device="cpu",
        checkpoint=checkpoint,
        sidecar_path=sidecar,
    )
    stores = {}
    for name, entry in (
        ("saliency", {"method": "saliency", "store_raw": True}),
        ("random", {"method": "random"}),
    ):
        stores[name] = tmp_path / f"{name}.zarr"
        attribute(
            data,
            checkpoint,
            sidecar,
            method_name=name,
            method_entry=entry,
            target_rule="predicted",
            splits=["test"],
            batch_size=64,
            seed=0,
            device="cpu",
            output=stores[name],
        )
    return data, checkpoint, sidecar, stores


def test_stage_summary_table_and_figures(tmp_path):
    import csv

    from PIL import Image

    from saliencybench import store
    from saliencybench.evaluations.curves.compute import compute
    from saliencybench.evaluations.curves.report import (
        curves_figure,
        fidelity_table,
        lif_example_figure,
        write_report,
    )
    from saliencybench.evaluations.curves.spec import CURVES_FORMAT
    from saliencybench.evaluations.curves.summary import read_fidelity, summarize
    from saliencybench.plotting import write_csv

    data, checkpoint, sidecar, stores = _trained_stores(tmp_path)
    outputs = {}
    for name, maps in stores.items():
        outputs[name] = tmp_path / f"curves_{name}.zarr"
        compute(
            data,
            checkpoint,
            sidecar,
            maps,
            split="test",
            steps=6,
            fill_value=0.0,
            batch_size=50,
            max_images=20,
            seed=0,
            device="cpu",
            output=outputs[name],
        )
    saliency = store.read_xarray(outputs["saliency"], CURVES_FORMAT, "curves store")
    # raw kept: the stored unsigned map plus the signed and unsigned "prime" maps
    assert list(saliency["reduction"].values) == ["abs", "input_sum", "input_abs"]
    assert saliency["logits"].dims == ("reduction", "sample", "order", "fraction")
    assert saliency["logits"].shape == (3, 20, 2, 7)
    assert saliency["sample"].values.tolist() == sorted(set(saliency["sample"].values.tolist()))
    # the unperturbed point is the same image for both orders
    np.testing.assert_allclose(
        saliency["logits"].sel(order="mif", fraction=0.0),
        saliency["logits"].sel(order="lif", fraction=0.0),
    )
    random = store.read_xarray(outputs["random"], CURVES_FORMAT, "curves store")
    assert list(random["reduction"].values) == ["sum"]
    np.testing.assert_allclose(
        random["area"].values[0], fidelity_areas(random["logits"].values[0]), rtol=1e-6
    )

    summary = summarize({"standard": [outputs["random"], outputs["saliency"]]})
    assert list(summary["estimator"].values) == ["Random", "VG_abs", "VG'_sum", "VG'_abs"]
    path = tmp_path / "fidelity.nc"
    store.write_netcdf(summary, path)
    reread = read_fidelity(path)
    table = tmp_path / "fidelity.csv"
    write_csv(fidelity_table(reread), table)
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["recipe"] == "standard"
    area = mean_interval(saliency["area"].sel(reduction="input_sum").values)
    assert rows[0]["VG'_sum"] == f"{area.mean:.1f} ± {area.half_width:.1f}"
    for kind, draw in (("curves", curves_figure), ("lif", lif_example_figure)):
        png, pdf = tmp_path / f"{kind}.png", tmp_path / f"{kind}.pdf"
        draw(reread, [png, pdf], title="test")
        with Image.open(png) as image:
            image.verify()
        assert pdf.read_bytes().startswith(b"%PDF")
    # the report job writes the same table, and one file per figure format
    figures = {
        kind: [tmp_path / f"job_{kind}.png", tmp_path / f"job_{kind}.pdf"]
        for kind in ("curves", "lif")
    }
    write_report(
        path,
        title="test",
        table=tmp_path / "job.csv",
        curves=figures["curves"],
        lif_example=figures["lif"],
    )
    assert (tmp_path / "job.csv").read_bytes() == table.read_bytes()
    for png, pdf in figures.values():
        with Image.open(png) as image:
            image.verify()
        assert pdf.read_bytes().startswith(b"%PDF")
    # the summary job's recipe order is its own, not the sorted keys of its stores
    recipes = summarize({"b": [outputs["random"]], "a": [outputs["random"]]}, ["b", "a"])
    assert list(recipes["recipe"].values) == ["b", "a"]
    with pytest.raises(ValueError, match="do not name"):
        summarize({"a": [outputs["random"]]}, ["a", "b"])


def test_stage_errors(tmp_path):
    from saliencybench import store
    from saliencybench.evaluations.curves.compute import compute

    data, checkpoint, sidecar, stores = _trained_stores(tmp_path)
    kwargs = {
        "steps": 4,
        "fill_value": 0.0,
        "batch_size": 16,
        "max_images": 4,
        "seed": 0,
        "device": "cpu",
        "output": tmp_path / "out.zarr",
    }
    with pytest.raises(store.StoreError, match="no maps of the train split"):
        compute(data, checkpoint, sidecar, stores["random"], split="train", **kwargs)
    with pytest.raises(store.StoreError, match="not a curves store"):
        store.read_xarray(stores["random"], "saliencybench.curves/1", "curves store")
    assert not (tmp_path / "out.zarr").exists()


def test_mif_curve_equals_quantus_pixel_flipping():
    """Quantus' PixelFlipping is our MIF curve when steps remove whole pixels, fill included."""
    quantus = pytest.importorskip("quantus")
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()
    inputs = torch.randn(6, 4, 8, 8)
    maps = torch.randn(6, 8, 8)  # distinct scores: no tie-breaking to match
    targets = torch.randint(0, 5, (6,))
    steps, pixels_per_step, fill = 16, 4, -0.5
    curves = perturbation_curves(model, inputs, maps, targets, steps=steps, fill_value=fill)
    # Quantus ranks the map broadcast over channels, so a pixel's channels are adjacent in
    # its order and a step of 4 x 4 features removes 4 whole pixels (it also asks the step
    # to divide H x W, hence 4 channels).
    metric = quantus.PixelFlipping(
        features_in_step=4 * pixels_per_step,
        perturb_baseline=fill,
        disable_warnings=True,
        display_progressbar=False,
    )
    reference = metric(
        model=model,
        x_batch=inputs.numpy(),
        y_batch=targets.numpy(),
        a_batch=maps[:, None].numpy(),
        softmax=False,
        device="cpu",
        channel_first=True,
    )
    np.testing.assert_allclose(curves[:, 0, 1:].numpy(), np.array(reference), rtol=1e-4, atol=1e-5)


def test_road_curves_impute_each_copy_as_quantus_does():
    """Without noise, each perturbed copy is Quantus's noisy linear imputation of its holes."""
    from quantus.functions.perturb_func import noisy_linear_imputation

    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).eval()
    inputs = torch.randn(5, 2, 8, 8)
    maps = torch.randn(5, 8, 8)
    targets = torch.randint(0, 3, (5,))
    steps = 4
    curves = perturbation_curves(
        model, inputs, maps, targets, steps=steps, fill_value="road", road_noise=0.0, batch_size=7
    )
    counts = step_counts(steps, 64).tolist()
    for i in range(len(inputs)):
        scores = maps[i].flatten().numpy()
        for o, order in enumerate((np.argsort(-scores), np.argsort(scores))):
            for k, count in enumerate(counts):
                image = inputs[i].double().numpy()
                if count:
                    image = noisy_linear_imputation(image, indices=order[:count], noise=0.0)
                logit = model(torch.as_tensor(image, dtype=torch.float32)[None])[0, targets[i]]
                assert curves[i, o, k].item() == pytest.approx(logit.item(), rel=1e-4, abs=1e-4)


def test_road_curves_are_seeded_and_their_noise_is_in_the_normalized_space():
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 1, bias=False)).eval()
    nn.init.ones_(model[1].weight)  # the logit is the sum of the pixels
    inputs = torch.full((40, 1, 6, 6), 2.0)  # a constant image imputes to itself
    maps = torch.randn(40, 6, 6)
    targets = torch.zeros(40, dtype=torch.long)
    kwargs = {"steps": 2, "fill_value": "road", "road_noise": 0.1, "seed": 3}
    curves = perturbation_curves(model, inputs, maps, targets, **kwargs)
    assert torch.equal(curves, perturbation_curves(model, inputs, maps, targets, **kwargs))
    assert (curves[:, :, 0] == 72.0).all()  # nothing removed yet
    # every pixel removed: nothing to impute from, so the image is the training mean (0 in
    # the normalized space) plus noise, and the logit the sum of 36 draws of N(0, 0.1^2)
    drawn = curves[:, :, 2].flatten()
    assert float(drawn.mean()) == pytest.approx(0.0, abs=0.3)
    assert float(drawn.std()) == pytest.approx(0.6, rel=0.2)
    with pytest.raises(ValueError, match="unknown fill 'blur'"):
        perturbation_curves(model, inputs, maps, targets, steps=2, fill_value="blur")


# ----------------------------------------------------------------------- job settings


@pytest.fixture
def default_config():
    from pathlib import Path

    import yaml

    from saliencybench.config import validate

    root = Path(__file__).resolve().parents[1]
    return validate(yaml.safe_load((root / "configs" / "digits.yaml").read_text()))


def _wildcards(**names):
    from types import SimpleNamespace

    return SimpleNamespace(**names)


def test_perturbation_curves_settings_are_the_job_arguments(default_config):
    import inspect

    from saliencybench.evaluations.curves import compute, spec

    wildcards = _wildcards(
        dataset="digits", model="small_cnn", recipe="standard", seed="0", method="saliency"
    )
    settings = spec.perturbation_curves_settings(default_config, wildcards)
    assert set(settings) == {
        "split",
        "steps",
        "fill_value",
        "batch_size",
        "max_images",
        "seed",
        "device",
    }
    keywords = inspect.signature(compute.compute).parameters
    # the adapter passes the output and the chance gate (a config key that changes no output)
    assert set(settings) == {k for k, p in keywords.items() if p.kind is p.KEYWORD_ONLY} - {
        "output",
        "chance_margin",
    }
    assert settings["steps"] == default_config["curves"]["steps"] == 20
    # no method list: dropping another method reruns none of this method's jobs
    fewer = {**default_config, "methods": {"saliency": default_config["methods"]["saliency"]}}
    assert spec.perturbation_curves_settings(fewer, wildcards) == settings


def test_fidelity_summary_settings_are_the_job_arguments(default_config):
    from saliencybench.config import canonical
    from saliencybench.evaluations.curves import spec

    wildcards = _wildcards(dataset="digits", model="small_cnn", seed="0")
    settings = spec.fidelity_summary_settings(default_config, wildcards)
    assert set(settings) == {"stores", "recipes"}
    assert settings["recipes"] == ["standard"]
    assert settings["stores"] == spec.stores_by_recipe(default_config, wildcards)
    assert canonical(settings)["recipes"] == settings["recipes"]


def test_fidelity_report_settings_are_the_job_arguments(default_config):
    from saliencybench.evaluations.curves import spec

    wildcards = _wildcards(dataset="shapes", model="small_cnn", seed="0")
    settings = spec.fidelity_report_settings(default_config, wildcards)
    assert settings == {"title": "shapes / small_cnn"}
