"""Infidelity and max-sensitivity (Yeh et al. 2019) against closed forms and captum.

The optimal explanations ``square`` and ``noisy_baseline`` are checked on a linear model,
where they are known exactly, and on a small nonlinear model, where Prop. 2.1 says they have
the least infidelity under their own perturbation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import NoiseTunnel, Saliency
from torch import nn

from saliencybench.evaluations.robustness.compute import (
    Explanation,
    SmoothedExplanation,
    _examples_per_batch,
    evaluate_method,
    noisy_baseline,
    square_removal,
)
from saliencybench.evaluations.robustness.report import robustness_table
from saliencybench.evaluations.robustness.summary import summarize
from saliencybench.methods import METHODS, AttributionContext, all_square_masks, square_masks

CONTEXT = AttributionContext(seed=0, input_range=(-3.0, 3.0))


class Linear(nn.Module):
    """Logits w_k . x: the local explanation of class k is w_k, the global one w_k * x."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.flatten(1).T


def _settings(**changes):
    settings = {
        "scopes": ["local", "global"],
        "baseline": 0.0,
        "infidelity": {"n_samples": 100, "normalize": True, "square_side": 2, "noise_std": 0.2},
        "sensitivity": {"radius": 0.02, "n_samples": 8},
        "smoothing": {"nt_samples": 4, "noise_level": 0.1, "nt_samples_batch_size": None},
        "batch_size": 16,
        "max_examples_per_batch": 2048,
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


@pytest.fixture
def linear():
    torch.manual_seed(0)
    model = Linear(torch.randn(3, 2, 6, 6)).eval()
    inputs = torch.randn(12, 2, 6, 6)
    targets = torch.randint(0, 3, (12,))
    return model, inputs, targets


@pytest.fixture(scope="module")
def nonlinear():
    """A small CNN fitted briefly to a nonlinear target, so that its logits vary with x."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 36, 2),
    )
    inputs = torch.randn(256, 1, 6, 6)
    labels = ((inputs[:, 0, :3].sum((1, 2)) * inputs[:, 0, 3:].sum((1, 2))) > 0).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, inputs[:16], labels[:16]


def _method(name, model, **params):
    return METHODS.get(name)(model, CONTEXT, **params)


# ----------------------------------------------------------------------- optimal explanations


def test_noisy_baseline_recovers_the_weights_of_a_linear_model(linear):
    model, inputs, targets = linear
    method = _method("noisy_baseline", model, n_samples=400, ridge=1e-10)
    phi = method.attribute(inputs, targets, 0)
    torch.testing.assert_close(phi, model.weight[targets], atol=1e-4, rtol=1e-4)


def test_square_recovers_the_contributions_of_a_linear_model(linear):
    model, inputs, targets = linear
    exact = (model.weight[targets] * inputs).sum(1, keepdim=True)
    # single pixels: E[m m^T] is diagonal and the contributions are identified
    phi = _method("square", model, side=1, ridge=1e-9).attribute(inputs, targets, 0)
    torch.testing.assert_close(phi, exact, atol=1e-4, rtol=1e-4)
    # 2x2 squares: fewer squares than pixels, but every square's sum is exact
    phi = _method("square", model, side=2, ridge=1e-9).attribute(inputs, targets, 0)
    masks = square_masks(6, 6, 2).flatten(1)
    torch.testing.assert_close(
        phi.flatten(1) @ masks.T, exact.flatten(1) @ masks.T, atol=1e-3, rtol=1e-3
    )


def test_square_masks_cover_every_position():
    masks = square_masks(5, 4, 2)
    assert masks.shape == (4 * 3, 5, 4)
    assert torch.equal(masks.sum((1, 2)), torch.full((12,), 4.0))
    assert len({tuple(mask.flatten().tolist()) for mask in masks}) == 12


@pytest.mark.parametrize(("height", "width"), [(6, 6), (28, 28), (7, 12)])
def test_every_square_of_sides_one_to_ten_is_counted(height, width):
    sides = [side for side in range(1, 11) if side <= min(height, width)]
    masks = all_square_masks(height, width, sides)
    expected = sum((height - side + 1) * (width - side + 1) for side in sides)
    assert len(masks) == expected  # 5,605 on MNIST's 28x28, Yeh et al.'s setting
    assert len({tuple(mask.flatten().tolist()) for mask in masks}) == expected


def test_square_with_several_sides_recovers_the_contributions_of_a_linear_model(linear):
    model, inputs, targets = linear
    exact = (model.weight[targets] * inputs).sum(1, keepdim=True)
    phi = _method("square", model, side=[1, 2, 3], ridge=1e-9).attribute(inputs, targets, 0)
    torch.testing.assert_close(phi, exact, atol=1e-4, rtol=1e-4)
    with pytest.raises(Exception, match="distinct sides"):
        _method("square", model, side=[2, 2])


def _exhaustive_infidelity_by_hand(model, inputs, targets, attributions, masks, normalize):
    """E over every square of (beta I^T phi - (f(x) - f(x without the square)))^2."""
    values = []
    for x, target, phi in zip(inputs, targets, attributions, strict=True):
        removed = torch.where(masks[:, None].bool(), 0.0, x[None])
        drops = model(x[None])[0, target] - model(removed)[:, target]
        explained = (masks[:, None] * phi[None]).sum((1, 2, 3))
        beta = (explained * drops).sum() / (explained * explained).sum() if normalize else 1.0
        values.append(((beta * explained - drops) ** 2).mean().item())
    return np.array(values)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("budget", [2048, 40])
def test_exhaustive_square_removal_is_every_square_once(nonlinear, normalize, budget):
    """Captum's infidelity over every square, whatever its chunking, equals a hand loop."""
    model, inputs, targets = nonlinear
    inputs, targets = inputs[:4], targets[:4]
    infidelity = {"exhaustive": True, "square_side": [1, 2, 3], "normalize": normalize}
    settings = _settings(scopes=["global"], infidelity=infidelity, max_examples_per_batch=budget)
    method = _method("saliency", model)
    results = evaluate_method(
        model, inputs, targets, method, settings, seed=0, input_range=CONTEXT.input_range
    )
    attributions = method.attribute(inputs, targets, 0) * inputs  # global: times x - 0
    expected = _exhaustive_infidelity_by_hand(
        model, inputs, targets, attributions, all_square_masks(6, 6, [1, 2, 3]), normalize
    )
    np.testing.assert_allclose(results["infidelity"][0, 0], expected, rtol=1e-4)


def test_square_removal_with_several_sides_draws_among_all_their_squares():
    masks = all_square_masks(6, 6, [1, 4])
    perturb = square_removal([1, 4], 0.0, torch.Generator().manual_seed(0))
    indicator, removed = perturb(torch.ones(400, 2, 6, 6))
    drawn = indicator[:, 0].flatten(1)
    known = {tuple(mask.flatten().tolist()) for mask in masks}
    assert all(tuple(row.tolist()) in known for row in drawn)
    torch.testing.assert_close(removed, 1 - indicator)
    # uniform over the 36 + 9 squares: about 9/45 of the draws are 4x4
    assert (drawn.sum(1) == 16).float().mean().item() == pytest.approx(0.2, abs=0.06)


def test_optimal_explanations_have_the_least_infidelity_under_their_perturbation(nonlinear):
    """Yeh et al. (2019), Prop. 2.1, on a nonlinear model: lower INFD than IG and saliency."""
    model, inputs, targets = nonlinear
    settings = _settings(infidelity={"n_samples": 400}, sensitivity={"n_samples": 2})
    settings["smoothing"]["nt_samples"] = 2

    def mean_infidelity(name, scope, **params):
        method = _method(name, model, **params)
        results = evaluate_method(
            model, inputs, targets, method, settings, seed=3, input_range=CONTEXT.input_range
        )
        return np.nanmean(results["infidelity"][0, settings["scopes"].index(scope)])

    square = mean_infidelity("square", "global", side=2)
    noisy = mean_infidelity("noisy_baseline", "local", n_samples=2000)
    for other in ("integrated_gradients", "saliency"):
        assert square < mean_infidelity(other, "global")
        assert noisy < mean_infidelity(other, "local")


# ----------------------------------------------------------------------- closed forms


def test_exact_global_explanation_has_zero_infidelity_under_square_removal(linear):
    model, inputs, targets = linear
    for normalize in (True, False):
        settings = _settings(scopes=["global"], infidelity={"normalize": normalize})
        exact = evaluate_method(
            model,
            inputs,
            targets,
            _method("input_x_gradient", model),
            settings,
            seed=0,
            input_range=CONTEXT.input_range,
        )
        noise = evaluate_method(
            model,
            inputs,
            targets,
            _method("random", model),
            settings,
            seed=0,
            input_range=CONTEXT.input_range,
        )
        # float32 logits of about 10: squared rounding errors of about 1e-6
        assert np.abs(exact["infidelity"][0]).max() < 1e-5
        assert noise["infidelity"][0].mean() > 1e-1


def test_saliency_of_a_linear_model_has_zero_sensitivity_and_infidelity(linear):
    model, inputs, targets = linear
    results = evaluate_method(
        model,
        inputs,
        targets,
        _method("saliency", model),
        _settings(scopes=["local"]),
        seed=0,
        input_range=CONTEXT.input_range,
    )
    # the gradient of a linear model is its weights, whatever the input
    assert np.abs(results["sensitivity"][:, 0]).max() < 1e-6
    assert np.abs(results["infidelity"][:, 0]).max() < 1e-4  # logits of about 10


def test_constant_explanation_has_zero_sensitivity(linear):
    model, inputs, targets = linear

    class Constant(METHODS.get("random")):
        def attribute(self, inputs, target, batch_seed):
            return torch.ones_like(inputs)

    method = Constant(model, CONTEXT)
    results = evaluate_method(
        model,
        inputs,
        targets,
        method,
        _settings(scopes=["local"]),
        seed=0,
        input_range=CONTEXT.input_range,
    )
    assert np.abs(results["sensitivity"][:, 0]).max() == 0.0


def test_global_explanation_is_the_local_one_times_the_input(linear):
    model, inputs, targets = linear
    for name in ("integrated_gradients", "saliency", "deeplift", "input_x_gradient"):
        method = _method(name, model)
        local = Explanation(method, "local", 0.0, seed=0)(inputs, targets)
        global_ = Explanation(method, "global", 0.0, seed=0)(inputs, targets)
        torch.testing.assert_close(local, model.weight[targets], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(global_, model.weight[targets] * inputs, atol=1e-4, rtol=1e-4)


def test_global_methods_without_local_counterpart_skip_the_local_scope(linear):
    model, inputs, targets = linear
    results = evaluate_method(
        model,
        inputs,
        targets,
        _method("occlusion", model, window_size=2, stride=2),
        _settings(),
        seed=0,
        input_range=CONTEXT.input_range,
    )
    assert np.isnan(results["infidelity"][:, 0]).all()
    assert np.isfinite(results["infidelity"][:, 1]).all()


# ----------------------------------------------------------------------- captum references


def test_smoothing_is_captum_noise_tunnel_of_saliency(linear):
    model, inputs, targets = linear
    model = nn.Sequential(nn.Flatten(), nn.Linear(72, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    inputs = inputs.reshape(12, 72).reshape(12, 2, 6, 6)
    smoothed = SmoothedExplanation(
        Explanation(_method("saliency", model), "local", 0.0, seed=0),
        model,
        nt_samples=5,
        stdev=0.3,
        nt_samples_batch_size=None,
        seed=4,
    )
    ours = smoothed(inputs, targets)
    torch.manual_seed(np.random.SeedSequence([4, 1]).generate_state(1)[0] & 0x7FFFFFFF)
    reference = NoiseTunnel(Saliency(model)).attribute(
        inputs.clone().requires_grad_(),
        nt_type="smoothgrad",
        nt_samples=5,
        stdevs=0.3,
        target=targets,
        abs=False,
    )
    torch.testing.assert_close(ours, reference)


def test_perturbations_are_what_they_claim(linear):
    _, inputs, _ = linear
    generator = torch.Generator().manual_seed(0)
    indicator, removed = square_removal(2, -1.5, generator)(inputs)
    assert torch.equal(indicator.sum((1, 2, 3)), torch.full((12,), 2 * 2 * 2.0))
    torch.testing.assert_close(removed, torch.where(indicator.bool(), -1.5, inputs))
    perturbation, noisy = noisy_baseline(0.2, 0.5, generator)(inputs)
    torch.testing.assert_close(inputs - perturbation, noisy)
    assert abs(float((noisy - 0.5).std()) - 0.2) < 0.02


def test_runs_are_seeded(nonlinear):
    model, inputs, targets = nonlinear
    settings = _settings(sensitivity={"n_samples": 3})

    def run():
        return evaluate_method(
            model,
            inputs[:6],
            targets[:6],
            _method("smoothgrad", model, nt_samples=3),
            settings,
            seed=7,
            input_range=CONTEXT.input_range,
        )

    first, second = run(), run()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize("per_call", [None, 3])
def test_uniform_smoothing_averages_copies_uniform_in_the_box(per_call):
    x = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    target = torch.zeros(4, dtype=torch.long)
    radius = 0.5

    def smoothed(explanation):
        return SmoothedExplanation(
            explanation,
            nn.Identity(),
            nt_samples=3000,
            stdev=radius,
            nt_samples_batch_size=per_call,
            seed=0,
            noise="uniform",
        )(x, target)

    # copies x + u: their mean is x, the mean of u^2 is r^2 / 3 (Gaussian noise: r^2)
    offsets = []
    mean = smoothed(lambda noisy, t: offsets.append(noisy.view(-1, *x.shape) - x) or noisy)
    torch.testing.assert_close(mean, x, atol=0.03, rtol=0)
    drawn = torch.cat(offsets)
    assert drawn.abs().max() <= radius and drawn.abs().max() > 0.99 * radius
    square = smoothed(lambda noisy, t: (noisy - x.repeat(len(noisy) // len(x), 1, 1, 1)) ** 2)
    torch.testing.assert_close(square, torch.full_like(x, radius**2 / 3), atol=0.01, rtol=0)


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_smoothing_lowers_sensitivity_of_the_gradient(nonlinear, noise):
    """Yeh et al. (2019), Theorem 4.1 and Table 1: -SG is less sensitive than the gradient."""
    model, inputs, targets = nonlinear
    settings = _settings(
        scopes=["local"],
        sensitivity={"n_samples": 20, "radius": 0.1},
        smoothing={"nt_samples": 32, "noise_level": 0.1, "noise": noise},
    )
    results = evaluate_method(
        model,
        inputs,
        targets,
        _method("saliency", model),
        settings,
        seed=0,
        input_range=CONTEXT.input_range,
    )
    plain, smoothed = np.nanmean(results["sensitivity"][:, 0], axis=1)
    assert smoothed < plain


def _robustness_store(tmp_path, name, values, smoothings, stem=None):
    import xarray as xr

    from saliencybench import store
    from saliencybench.evaluations.robustness.spec import ROBUSTNESS_FORMAT

    dataset = xr.Dataset(
        {
            "infidelity": (("smoothing", "scope", "sample"), values),
            "sensitivity": (("smoothing", "scope", "sample"), values / 2),
        },
        coords={"smoothing": list(smoothings), "scope": ["local", "global"]},
        attrs={"format": ROBUSTNESS_FORMAT, "name": name},
    )
    path = tmp_path / f"{stem or name}.zarr"
    store.write_xarray(dataset, path)
    return path


def test_summary_and_table(tmp_path):
    from saliencybench.evaluations.robustness.spec import SMOOTHINGS

    rng = np.random.default_rng(0)
    paths, written = [], {}
    for name in ("saliency", "square"):
        values = rng.random((2, 2, 10))
        if name == "square":
            values[1] = np.nan  # no smoothed variant
            values[:, 0] = np.nan  # no local scope
        paths.append(_robustness_store(tmp_path, name, values, SMOOTHINGS))
        written[name] = values
    summary = summarize(paths)
    cell = summary.sel(attribution="saliency", smoothing="none", scope="local")
    assert float(cell["infidelity"]) == pytest.approx(written["saliency"][0, 0].mean())
    half_width = 1.96 * written["saliency"][0, 0].std(ddof=1) / np.sqrt(10)
    assert float(cell["infidelity_ci"]) == pytest.approx(half_width, rel=1e-3)
    assert int(cell["images"]) == 10
    rows = robustness_table(summary)
    assert [row["method"] for row in rows] == ["saliency", "saliency-SG", "square"]
    assert rows[2]["SENS_MAX (local)"] == ""
    assert rows[2]["INFD square (global)"] != ""

    # one store per method and smoothing (the jobs' layout): the same summary
    split = [
        _robustness_store(tmp_path, "saliency", written["saliency"][:1], ["none"], "s_none"),
        _robustness_store(tmp_path, "saliency", written["saliency"][1:], ["smoothgrad"], "s_sg"),
        _robustness_store(tmp_path, "square", written["square"][:1], ["none"], "q_none"),
    ]
    assert summarize(split).identical(summary)
    with pytest.raises(ValueError, match="saliency with smoothing none is in two stores"):
        summarize([*split, split[0]])


def test_one_job_per_smoothing_gives_the_numbers_of_one_job_for_both(nonlinear):
    """Each smoothing draws from its own seeded streams: splitting the job moves no digit."""
    model, inputs, targets = nonlinear
    inputs, targets = inputs[:12], targets[:12]
    settings = _settings(batch_size=5, max_examples_per_batch=64)
    for name in ("random", "saliency", "integrated_gradients"):
        params = {"n_steps": 4} if name == "integrated_gradients" else {}

        def run(smoothings, name=name, params=params):
            return evaluate_method(
                model,
                inputs,
                targets,
                _method(name, model, **params),
                settings,
                seed=5,
                input_range=CONTEXT.input_range,
                smoothings=smoothings,
            )

        both = run(("none", "smoothgrad"))
        # the smoothed job first, as a scheduler may start it
        smoothed, plain = run(("smoothgrad",)), run(("none",))
        for metric in ("infidelity", "sensitivity"):
            assert np.isfinite(both[metric]).any()
            np.testing.assert_array_equal(plain[metric][0], both[metric][0], err_msg=name)
            np.testing.assert_array_equal(smoothed[metric][0], both[metric][1], err_msg=name)
    with pytest.raises(ValueError, match="smoothing 'smoothgard'"):
        run(("smoothgard",))


def test_numbers_equal_a_direct_call_of_captum_metrics_with_the_same_seed(nonlinear):
    """The same seeds give captum's own infidelity and sensitivity_max, default batching."""
    from captum.metrics import infidelity, sensitivity_max

    model, inputs, targets = nonlinear
    settings = _settings()
    results = evaluate_method(
        model,
        inputs,
        targets,
        _method("saliency", model),
        settings,
        seed=3,
        input_range=CONTEXT.input_range,
    )
    gradient = Saliency(model)

    def local(x, target):
        return gradient.attribute(x, target=target, abs=False)

    def global_(x, target):
        # sensitivity_max passes a 1-tuple of inputs; captum's attribute returns one alike
        if isinstance(x, tuple):
            return (local(x[0], target) * x[0],)
        return local(x, target) * x

    span = CONTEXT.input_range[1] - CONTEXT.input_range[0]
    for k, (explain, perturbation) in enumerate(
        [
            (local, lambda g: noisy_baseline(0.2, 0.0, g)),
            (global_, lambda g: square_removal(2, 0.0, g)),
        ]
    ):
        generator = torch.Generator()
        generator.manual_seed(int(np.random.SeedSequence([3, 0, k]).generate_state(1)[0]))
        perturb = perturbation(generator)
        box = _uniform_box(0.02 * span, generator)
        expected_infidelity = infidelity(
            model,
            perturb,
            inputs,
            explain(inputs, targets),
            target=targets,
            n_perturb_samples=100,
            normalize=True,
        )
        expected_sensitivity = sensitivity_max(
            explain, inputs, perturb_func=box, n_perturb_samples=8, target=targets
        )
        np.testing.assert_allclose(
            results["infidelity"][0, k], expected_infidelity.double().numpy(), rtol=1e-5
        )
        np.testing.assert_allclose(
            results["sensitivity"][0, k], expected_sensitivity.double().numpy(), rtol=1e-5
        )


def _uniform_box(radius, generator):
    """An independent copy of the uniform L-infinity box draw."""

    def perturb(inputs):
        offset = torch.rand(inputs.shape, generator=generator)
        return inputs + (2.0 * offset - 1.0) * radius

    return perturb


def test_batch_budget_counts_the_rows_each_explanation_sends(nonlinear):
    """Integrated gradients sends n_steps rows per copy, smoothing nt_samples times more."""
    model, _, _ = nonlinear
    integrated = _method("integrated_gradients", model, n_steps=50)
    smoothgrad = _method("smoothgrad", model, nt_samples=12)
    assert integrated.rows_per_input == 50
    assert smoothgrad.rows_per_input == 12
    assert _method("smoothgrad", model, nt_samples_batch_size=3).rows_per_input == 3
    assert _method("saliency", model).rows_per_input == 1
    sensitivity = {"n_samples": 50}
    settings = _settings(max_examples_per_batch=2048)
    # 2048 rows: 40 copies of IG, one per image of a 32-image batch at least
    assert _examples_per_batch(settings, 32, sensitivity, integrated.rows_per_input) == 40
    assert _examples_per_batch(settings, 32, sensitivity, 50 * 10) == 32
    assert _examples_per_batch(settings, 64, sensitivity) == 2048
    assert _examples_per_batch(settings, 32, sensitivity) == 1600  # every copy in one call


def test_smoothing_splits_its_copies_to_fit_the_row_budget(nonlinear):
    model, inputs, targets = nonlinear
    explanation = Explanation(_method("integrated_gradients", model, n_steps=50), "local", 0.0, 0)

    def smoothed(**changes):
        options = {"nt_samples": 10, "stdev": 0.1, "nt_samples_batch_size": None, "seed": 0}
        return SmoothedExplanation(explanation, model, **{**options, **changes})

    split = smoothed(row_budget=2048, rows_per_input=50)
    assert split._copies_per_call(32) == 1  # 32 images x 50 steps: one copy per pass
    assert split._copies_per_call(8) == 5
    assert split._copies_per_call(4) is None  # all ten copies fit
    assert smoothed(row_budget=None)._copies_per_call(32) is None
    assert smoothed(row_budget=2048, nt_samples_batch_size=3)._copies_per_call(32) == 3
    maps = split(inputs[:8], targets[:8])
    assert maps.shape == inputs[:8].shape and torch.isfinite(maps).all()


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

    run = {"dataset": "digits", "model": "small_cnn", "recipe": "standard", "seed": "0"}
    return SimpleNamespace(**run, **names)


def _keywords(function, *paths: str) -> set[str]:
    """The keyword-only parameters of ``function``, less those the adapter fills with paths."""
    import inspect

    parameters = inspect.signature(function).parameters.items()
    return {name for name, p in parameters if p.kind is p.KEYWORD_ONLY} - set(paths)


def test_robustness_metrics_settings_are_the_job_arguments(default_config):
    from saliencybench.evaluations.robustness import compute, spec

    wildcards = _wildcards(method="saliency", smoothing="smoothgrad")
    settings = spec.robustness_metrics_settings(default_config, wildcards)
    assert set(settings) == {
        "method_name",
        "smoothing",
        "method_entry",
        "settings",
        "seed",
        "device",
    }
    assert set(settings) == _keywords(compute.compute, "targets_path", "output", "chance_margin")
    assert set(settings["settings"]) == {
        "split",
        "max_images",
        "scopes",
        "baseline",
        "infidelity",
        "sensitivity",
        "smoothing",
        "batch_size",
        "max_examples_per_batch",
    }
    assert set(settings["settings"]) == set(default_config["robustness"]) - {"methods"}
    assert settings["method_entry"] == default_config["methods"]["saliency"]
    # no method list: dropping another method reruns none of this method's jobs
    fewer = {**default_config, "robustness": {**default_config["robustness"]}}
    fewer["robustness"]["methods"] = ["saliency"]
    assert spec.robustness_metrics_settings(fewer, wildcards) == settings


def test_sizes_resolve_per_device_type(default_config):
    """A CPU keeps the sizes it had as plain numbers; CUDA takes its own; a plain number
    serves every device."""
    from saliencybench.evaluations.robustness.spec import size_for_device, sized_for_device

    section = default_config["robustness"]
    assert section["max_examples_per_batch"] == {"cpu": 2048, "cuda": 16384}
    cpu = sized_for_device(section, "cpu")
    assert (cpu["batch_size"], cpu["max_examples_per_batch"]) == (32, 2048)
    cuda = sized_for_device(section, "cuda")
    assert (cuda["batch_size"], cuda["max_examples_per_batch"]) == (128, 16384)
    assert cuda["infidelity"] == section["infidelity"]
    assert size_for_device(512, "cuda") == size_for_device(512, "mps") == 512
    assert size_for_device({"cpu": 4, "cuda": 8}, "mps") == 4


def test_robustness_summary_settings_are_the_job_arguments(default_config):
    from saliencybench.evaluations.robustness import spec, summary

    settings = spec.robustness_summary_settings(default_config, _wildcards())
    assert set(settings) == set()
    assert set(settings) == _keywords(summary.summarize)


def test_robustness_report_settings_are_the_job_arguments(default_config):
    from saliencybench.evaluations.robustness import report, spec

    settings = spec.robustness_report_settings(default_config, _wildcards())
    assert set(settings) == {"title"}
    assert set(settings) == _keywords(report.write_report, "table", "figures")
    assert settings["title"] == "digits / small_cnn / standard / seed 0: sensitivity and infidelity"
