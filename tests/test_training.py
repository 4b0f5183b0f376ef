"""Recipes, schedules and the batched augmentations, against closed forms and torchvision."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms import RandomErasing as TorchvisionRandomErasing

from saliencybench.inference import accuracy, normalize
from saliencybench.training import (
    AUGMENTATIONS,
    SCHEDULES,
    FeaturePerturbation,
    RandomErasing,
    Recipe,
    RecipeError,
    build_augmentation,
    train_model,
)


def _square_free_probability(p2: float, s_max: int) -> float:
    """P(an interior pixel is covered by no square) under Algorithm 1.

    A square starting dy rows above and dx columns left of the pixel covers it when its side
    exceeds max(dy, dx); sides are uniform on 1..s_max.
    """
    free = 1.0
    for dy in range(s_max):
        for dx in range(s_max):
            free *= 1.0 - p2 * (s_max - max(dy, dx)) / s_max
    return free


@pytest.mark.parametrize(
    ("p1_max", "p2", "s_max"), [(0.25, 0.1, 3), (0.0, 0.05, 5), (0.3, 0.0, 1), (0.3, 0.01, 10)]
)
def test_fpa_masked_share_matches_algorithm_1(p1_max, p2, s_max):
    fpa = FeaturePerturbation(p=1.0, p1_max=p1_max, p2=p2, s_max=s_max)
    generator = torch.Generator().manual_seed(0)
    shares = []
    for _ in range(300):
        mask = fpa.mask((8, 40, 40), generator, torch.device("cpu"))
        interior = mask[:, s_max - 1 :, s_max - 1 :]  # pixels every square start can reach
        shares.append(interior.float().mean().item())
    expected = 1.0 - (1.0 - p1_max / 2.0) * _square_free_probability(p2, s_max)
    # p1 is drawn once per batch: 300 batches give a standard error of about 0.004.
    assert np.mean(shares) == pytest.approx(expected, abs=0.015)


def test_fpa_perturbs_a_batch_with_probability_p_and_fills_value():
    fpa = FeaturePerturbation(p=0.3, p1_max=0.25, p2=0.1, s_max=3, value=-7.0)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 16, 16)
    changed = 0
    for _ in range(1000):
        out = fpa(images, generator)
        if not torch.equal(out, images):
            changed += 1
            diff = out != images
            assert torch.all(out[diff] == -7.0)
            # a pixel is masked in all channels at once
            assert torch.equal(diff.all(1), diff.any(1))
    assert changed / 1000 == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("name", ["fpa", "random_erasing"])
def test_augmentation_value_in_pixel_units_is_converted_per_channel(name):
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.5)
    spec = {"name": name, "p": 1.0, "value": {"pixel": 0.5}}
    augmentation = build_augmentation(spec, mean, std)
    images = torch.randn(8, 3, 16, 16)
    out = augmentation(images, torch.Generator().manual_seed(0))
    masked = (out != images).any(1)
    assert masked.any()
    expected = torch.tensor([0.5, 0.0, -0.2])  # (0.5 - mean) / std
    filled = out.permute(1, 0, 2, 3)[:, masked].T  # (pixels, channels)
    torch.testing.assert_close(filled, expected.expand(len(filled), 3))
    with pytest.raises(RecipeError, match="needs the dataset's channel mean and std"):
        build_augmentation(spec)(images, torch.Generator().manual_seed(0))
    with pytest.raises(RecipeError, match="parameter 'value'"):
        build_augmentation({"name": name, "value": "grey"})


def test_random_erasing_matches_torchvision_area_distribution():
    ours = RandomErasing(p=1.0, scale=[0.02, 0.33], ratio=[0.3, 3.3], value=0.0)
    generator = torch.Generator().manual_seed(0)
    mask = ours.mask((4000, 32, 32), generator, torch.device("cpu"))
    our_share = mask.float().mean((1, 2))
    torch.manual_seed(0)
    reference = TorchvisionRandomErasing(p=1.0, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)
    ones = torch.ones(1, 32, 32)
    theirs = torch.stack([(reference(ones) == 0).float().mean() for _ in range(1500)])
    assert our_share.mean().item() == pytest.approx(theirs.mean().item(), abs=0.015)
    assert our_share.std().item() == pytest.approx(theirs.std().item(), abs=0.015)
    # erased regions are single rectangles
    rows, cols = mask.any(2), mask.any(1)
    assert torch.equal(mask.sum((1, 2)), rows.sum(1) * cols.sum(1))


def test_random_erasing_probability():
    erase = RandomErasing(p=0.25)
    mask = erase.mask((4000, 16, 16), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert mask.any(2).any(1).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_augmentation_registry_and_errors():
    assert {"none", "fpa", "random_erasing"} <= set(AUGMENTATIONS.names())
    assert isinstance(build_augmentation({"name": "fpa", "p": 0.2}), FeaturePerturbation)
    with pytest.raises(RecipeError, match="p1_max"):
        build_augmentation({"name": "fpa", "p1_max": 1.5})
    with pytest.raises(RecipeError, match="unknown parameter 'sigma'"):
        build_augmentation({"name": "fpa", "sigma": 1})
    with pytest.raises(KeyError, match="fpa"):
        build_augmentation({"name": "fap"})


def test_schedules():
    recipe = Recipe(epochs=10, schedule="step", milestones=[3, 6], gamma=0.1)
    step = SCHEDULES.get("step")(100, recipe)
    assert [step(s) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cosine = SCHEDULES.get("cosine")(100, recipe)
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == 0.0
    assert SCHEDULES.get("constant")(100, recipe)(77) == 1.0


def test_recipe_rejects_unknown_keys():
    with pytest.raises(RecipeError, match="'epoch'"):
        Recipe.from_config({"epoch": 3})


def _tiny_problem(seed=0, n=256):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 8, 8, generator=generator)
    labels = (images[:, 0, :4].mean((1, 2)) > 0).long()  # class decided by the top half
    return images, labels


def _tiny_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 2),
    )


def test_training_is_repeatable_and_learns():
    images, labels = _tiny_problem()
    recipe = Recipe(epochs=6, batch_size=32, lr=0.05, augmentation={"name": "fpa", "p": 0.5})
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _tiny_model()
        history = train_model(model, images, labels, recipe, seed=3, log_every_epoch=lambda m: None)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])
    assert history[-1]["train_accuracy"] > 0.8  # measured on augmented batches
    assert accuracy(model, images, labels) > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    torch.manual_seed(0)
    other = _tiny_model()
    train_model(other, images, labels, recipe, seed=4, log_every_epoch=lambda m: None)
    assert not torch.equal(other.state_dict()["3.weight"], states[0]["3.weight"])


def test_mixed_precision_and_channels_last_train_and_leave_a_plain_checkpoint():
    """bfloat16 autocast and the channels-last layout change the arithmetic, not the
    result's quality; the trained weights come back float32 in the default layout."""
    images, labels = _tiny_problem()
    plain = Recipe(epochs=6, batch_size=32, lr=0.05)
    torch.manual_seed(0)
    reference = _tiny_model()
    train_model(reference, images, labels, plain, seed=3, log_every_epoch=lambda m: None)
    for entry in ({"precision": "bfloat16"}, {"channels_last": True}):
        recipe = Recipe.from_config({"epochs": 6, "batch_size": 32, "lr": 0.05, **entry})
        torch.manual_seed(0)
        model = _tiny_model()
        train_model(model, images, labels, recipe, seed=3, log_every_epoch=lambda m: None)
        assert accuracy(model, images, labels) > 0.9, entry
        for name, tensor in model.state_dict().items():
            assert tensor.dtype == torch.float32 and tensor.is_contiguous(), (entry, name)
        weight, trained = model.state_dict()["3.weight"], reference.state_dict()["3.weight"]
        if "precision" in entry:  # bfloat16 rounds the forward pass: other weights
            assert not torch.equal(weight, trained)
        torch.testing.assert_close(weight, trained, rtol=0.2, atol=0.05)


def test_recipe_precision_must_be_known():
    with pytest.raises(RecipeError, match="'precision' is 'float16'; expected one of"):
        Recipe.from_config({"precision": "float16"})


def test_normalize_is_a_per_channel_z_score():
    images = np.stack([np.full((2, 2), 0), np.full((2, 2), 255)])[None].astype(np.uint8)
    out = normalize(images, [0.5, 0.5], [0.25, 0.5], torch.device("cpu"))
    assert out[0, 0, 0, 0].item() == pytest.approx(-2.0)
    assert out[0, 1, 0, 0].item() == pytest.approx(1.0)
    assert math.isclose(out.dtype.itemsize, 4)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    ("momentum", "nesterov", "weight_decay"),
    [(0.0, False, 0.0), (0.9, False, 5e-4), (0.9, True, 1e-4)],
)
def test_sgd_matches_torch_optim_exactly(momentum, nesterov, weight_decay, foreach):
    """Both of torch.optim.SGD's implementations (one tensor at a time, the CPU default;
    multi-tensor, the CUDA default) give the same bits as ours."""
    from saliencybench.training import SGD

    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    ours = copy.deepcopy(reference)
    torch_sgd = torch.optim.SGD(
        reference.parameters(),
        lr=0.1,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        foreach=foreach,
    )
    our_sgd = SGD(
        list(ours.parameters()), momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )
    for step in range(12):
        lr = 0.1 * 0.8**step
        for group in torch_sgd.param_groups:
            group["lr"] = lr
        x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        for model, optimizer in ((reference, torch_sgd), (ours, our_sgd)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
        torch_sgd.step()
        our_sgd.step(lr)
        for a, b in zip(reference.parameters(), ours.parameters(), strict=True):
            assert torch.equal(a, b)


def test_seeding_a_cpu_job_leaves_torch_compiler_stack_unloaded():
    """PyTorch's deterministic mode imports its compiler stack (seconds of every training
    job's start-up); CPU kernels need no such mode, so a CPU job does not switch it on."""
    from support import fresh_python

    code = (
        "import sys, torch\n"
        "from saliencybench.inference import seed_everything\n"
        "seed_everything(3, 'cpu')\n"
        "print(torch.initial_seed(), torch.are_deterministic_algorithms_enabled(),\n"
        "      'torch._dynamo' in sys.modules)\n"
    )
    assert fresh_python(code).split() == ["3", "False", "False"]


@pytest.mark.parametrize("foreach", [False, True])
def test_sgd_matches_torch_optim_when_a_parameter_starts_late(foreach):
    """A parameter without a gradient is skipped and gets its momentum buffer at its first
    gradient, as torch.optim.SGD does."""
    from saliencybench.training import SGD

    torch.manual_seed(1)
    reference = nn.ModuleList([nn.Linear(4, 3), nn.Linear(4, 3)])
    ours = copy.deepcopy(reference)
    torch_sgd = torch.optim.SGD(
        reference.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, foreach=foreach
    )
    our_sgd = SGD(list(ours.parameters()), momentum=0.9, weight_decay=1e-3)
    for step in range(10):
        x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        for model, optimizer in ((reference, torch_sgd), (ours, our_sgd)):
            optimizer.zero_grad()
            heads = model if step >= 4 else model[:1]
            sum(nn.functional.cross_entropy(head(x), y) for head in heads).backward()
        torch_sgd.step()
        our_sgd.step(0.05)
        for a, b in zip(reference.parameters(), ours.parameters(), strict=True):
            assert torch.equal(a, b)
