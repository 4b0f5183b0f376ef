"""Training recipes: SGD with momentum, LR schedules and batched on-device augmentation.

Small datasets live on the device as one tensor and mini-batches are index slices of a
seeded permutation (no DataLoader), as in Jordan's CIFAR-10 speed runs; augmentations act on
whole batches on the device.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from saliencybench import units
from saliencybench.inference import accuracy, normalized_fill, predict_logits
from saliencybench.registry import Registry

log = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe or augmentation parameter that is unknown or out of range."""


class TrainingError(RuntimeError):
    """A trained model that no evaluation can use (e.g. non-finite outputs)."""


# No trained classifier has logits near this; float32 products of such logits with
# captum's kernel weights (1e6 for empty and full coalitions) overflow.
LOGIT_LIMIT = 1e10


def check_outputs(model: nn.Module, inputs: Tensor, name: str) -> None:
    """Raise :class:`TrainingError` if ``model``'s logits in eval mode are non-finite or
    beyond ``LOGIT_LIMIT`` in magnitude.

    Every method and evaluation would fail later, far from the cause: typically BatchNorm
    running statistics that lag the weights, as in torchvision's MNASNet (momentum 0.0003)
    trained from random weights for a few steps, whose logits reach 1e34.
    """
    if not len(inputs):
        return
    largest = float(predict_logits(model, inputs[:256]).abs().max())
    if not largest <= LOGIT_LIMIT:  # also true for NaN
        raise TrainingError(
            f"{name}: the trained model's logits in eval mode reach {largest:.3g}; its "
            "BatchNorm running statistics lag its weights (MNASNet updates them with "
            "momentum 0.0003): start from pretrained weights or train for more steps"
        )


# ----------------------------------------------------------------------- augmentations


class Augmentation(ABC):
    """A batched augmentation: ``(images, generator) -> images`` on the images' device."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise RecipeError(
                f"augmentation {self.name!r}: unknown parameter {unknown[0]!r}; "
                f"expected one of: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        self.params = {**self.defaults, **params}
        if "value" in self.params:
            try:
                self.params["value"] = units.check_fill(self.params["value"])
            except ValueError as error:
                raise RecipeError(
                    f"augmentation {self.name!r}: parameter 'value' {error}"
                ) from None
        # The dataset's channel normalization, for a ``value`` in pixel units.
        self.mean: tuple[float, ...] | None = None
        self.std: tuple[float, ...] | None = None
        self.check()

    def filled(self, images: Tensor, masked: Tensor) -> Tensor:
        """``images`` with the (N, H, W) ``masked`` pixels, all channels, set to ``value``
        (:mod:`saliencybench.units`: a number in the normalized space, or black, white,
        mean, {pixel: v})."""
        try:
            value = normalized_fill(self.params["value"], images, self.mean, self.std)
        except ValueError as error:
            raise RecipeError(f"augmentation {self.name!r}: parameter 'value': {error}") from None
        if isinstance(value, float):
            return images.masked_fill(masked.unsqueeze(1), value)
        return torch.where(masked.unsqueeze(1), value, images)

    def check(self) -> None:  # noqa: B027 - optional hook; most augmentations have no ranges
        """Raise RecipeError for out-of-range parameters."""

    @abstractmethod
    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor: ...


AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")


@AUGMENTATIONS.register("none")
class NoAugmentation(Augmentation):
    name = "none"

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        return images


def _uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device)


@AUGMENTATIONS.register("fpa")
class FeaturePerturbation(Augmentation):
    """Feature perturbation augmentation (Brocki & Chung 2023, Algorithm 1).

    A mini-batch is perturbed with probability ``p``. Then ``p1 ~ U(0, p1_max)`` is drawn
    for the batch; every pixel (all channels) is set to ``value`` with probability ``p1``,
    and at every pixel, with probability ``p2``, a ``value`` square of side
    ``s ~ U{1..s_max}`` starts (extending right and down, clipped at the border).
    ``value`` 0 is the training mean in the normalized space, the non-informative value the
    perturbation curves use by default; the FPA paper's 0 in its [-1, 1] inputs is
    ``{pixel: 0.5}``.
    """

    name = "fpa"
    defaults = {"p": 0.5, "p1_max": 0.25, "p2": 0.1, "s_max": 3, "value": 0.0}

    def check(self) -> None:
        p = self.params
        for key in ("p", "p1_max", "p2"):
            if not 0.0 <= p[key] <= 1.0:
                raise RecipeError(f"augmentation 'fpa': {key} must be in [0, 1], got {p[key]}")
        if int(p["s_max"]) < 1:
            raise RecipeError(f"augmentation 'fpa': s_max must be >= 1, got {p['s_max']}")

    def mask(self, shape: tuple[int, int, int], generator: torch.Generator, device) -> Tensor:
        """Boolean (N, H, W) mask of the pixels Algorithm 1 sets to ``value`` in a batch."""
        n, height, width = shape
        p1 = float(_uniform((1,), generator, device)) * self.params["p1_max"]
        masked = _uniform((n, height, width), generator, device) < p1
        starts = _uniform((n, height, width), generator, device) < self.params["p2"]
        s_max = int(self.params["s_max"])
        sides = torch.randint(1, s_max + 1, (n, height, width), generator=generator, device=device)
        for side in range(1, s_max + 1):
            anchored = (starts & (sides == side)).float().unsqueeze(1)
            # A square anchored at (y, x) covers (y..y+s-1, x..x+s-1): max-pool over the window
            # that ends at each pixel, i.e. pad top/left by s-1.
            padded = nn.functional.pad(anchored, (side - 1, 0, side - 1, 0))
            covered = nn.functional.max_pool2d(padded, side, stride=1).squeeze(1) > 0
            masked |= covered
        return masked

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        if float(_uniform((1,), generator, images.device)) >= self.params["p"]:
            return images
        n, _, height, width = images.shape
        masked = self.mask((n, height, width), generator, images.device)
        return self.filled(images, masked)


@AUGMENTATIONS.register("random_erasing")
class RandomErasing(Augmentation):
    """Random erasing (Zhong et al. 2020), batched; the semantics of torchvision's RandomErasing.

    Each image is erased with probability ``p``: a rectangle of area ``scale`` × image area
    and aspect ratio drawn log-uniformly from ``ratio`` is set to ``value``. Where
    torchvision retries up to ten times until the rectangle fits, the side lengths here are
    clipped to the image, which changes the area distribution only for extreme draws.
    """

    name = "random_erasing"
    defaults = {"p": 0.5, "scale": [0.02, 0.33], "ratio": [0.3, 3.3], "value": 0.0}

    def check(self) -> None:
        p = self.params
        if not 0.0 <= p["p"] <= 1.0:
            raise RecipeError(f"augmentation 'random_erasing': p must be in [0, 1], got {p['p']}")
        lo, hi = p["scale"]
        if not 0.0 < lo <= hi <= 1.0:
            raise RecipeError(f"augmentation 'random_erasing': bad scale {p['scale']}")
        lo, hi = p["ratio"]
        if not 0.0 < lo <= hi:
            raise RecipeError(f"augmentation 'random_erasing': bad ratio {p['ratio']}")

    def mask(self, shape: tuple[int, int, int], generator: torch.Generator, device) -> Tensor:
        n, height, width = shape
        lo, hi = self.params["scale"]
        area = height * width * (lo + (hi - lo) * _uniform((n,), generator, device))
        log_lo, log_hi = math.log(self.params["ratio"][0]), math.log(self.params["ratio"][1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * _uniform((n,), generator, device))
        erase_h = torch.sqrt(area * aspect).round().clamp(1, height)
        erase_w = torch.sqrt(area / aspect).round().clamp(1, width)
        top = ((height - erase_h + 1) * _uniform((n,), generator, device)).floor()
        left = ((width - erase_w + 1) * _uniform((n,), generator, device)).floor()
        chosen = _uniform((n,), generator, device) < self.params["p"]
        rows = torch.arange(height, device=device).view(1, -1, 1)
        cols = torch.arange(width, device=device).view(1, 1, -1)
        inside_rows = (rows >= top.view(-1, 1, 1)) & (rows < (top + erase_h).view(-1, 1, 1))
        inside_cols = (cols >= left.view(-1, 1, 1)) & (cols < (left + erase_w).view(-1, 1, 1))
        return inside_rows & inside_cols & chosen.view(-1, 1, 1)

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        n, _, height, width = images.shape
        masked = self.mask((n, height, width), generator, images.device)
        return self.filled(images, masked)


def build_augmentation(
    spec: dict[str, Any],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Augmentation:
    """``{"name": "fpa", "p": 0.5, ...}`` to an augmentation object; ``mean`` and ``std``
    (the dataset's channel normalization) turn a ``value`` in pixel units into the
    normalized space."""
    params = dict(spec)
    name = params.pop("name", "none")
    augmentation = AUGMENTATIONS.get(name)(**params)
    augmentation.mean = None if mean is None else tuple(mean)
    augmentation.std = None if std is None else tuple(std)
    return augmentation


# ----------------------------------------------------------------------- schedules

ScheduleFactory = Callable[[int, "Recipe"], Callable[[int], float]]
SCHEDULES: Registry[ScheduleFactory] = Registry("learning-rate schedule")


@SCHEDULES.register("constant")
def _constant(total_steps: int, recipe: Recipe) -> Callable[[int], float]:
    return lambda step: 1.0


@SCHEDULES.register("step")
def _step(total_steps: int, recipe: Recipe) -> Callable[[int], float]:
    """Multiply by ``gamma`` at each epoch in ``milestones`` (He et al. 2016)."""
    steps_per_epoch = max(1, total_steps // max(1, recipe.epochs))
    milestones = sorted(int(m) for m in recipe.milestones)

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch
        return recipe.gamma ** sum(epoch >= m for m in milestones)

    return factor


@SCHEDULES.register("cosine")
def _cosine(total_steps: int, recipe: Recipe) -> Callable[[int], float]:
    """Cosine annealing to zero over all steps (Loshchilov & Hutter 2017)."""
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


# ----------------------------------------------------------------------- recipes


# The recipe's ``precision``: the dtype of torch.autocast around the forward pass and the
# loss (None: plain float32). The weights, gradients and optimizer stay in float32.
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


@dataclass
class Recipe:
    """Everything that defines how a model is trained; one entry of config ``recipes``."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    horizontal_flip: bool = False
    augmentation: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    precision: str = "float32"
    channels_last: bool = False

    @classmethod
    def from_config(cls, entry: dict[str, Any]) -> Recipe:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(entry) - known)
        if unknown:
            raise RecipeError(
                f"recipe key {unknown[0]!r} is unknown; expected one of: {', '.join(sorted(known))}"
            )
        recipe = cls(**entry)
        SCHEDULES.get(recipe.schedule)
        if recipe.precision not in AUTOCAST_DTYPES:
            raise RecipeError(
                f"recipe key 'precision' is {recipe.precision!r}; expected one of: "
                f"{', '.join(AUTOCAST_DTYPES)}"
            )
        build_augmentation(recipe.augmentation)
        return recipe


class SGD:
    """Stochastic gradient descent with momentum, the update of ``torch.optim.SGD``.

    The same arithmetic in the same order as PyTorch's SGD (dampening 0), in its
    multi-tensor form, so results are identical to both of its implementations; the
    learning rate is passed to each step. It exists because
    the first use of any ``torch.optim`` optimizer imports ``torch._dynamo``, about 2 s per
    process: a third of the start-up of a short retraining job (``benchmarks/roar.py``).
    """

    def __init__(
        self,
        parameters: list[Tensor],
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        if nesterov and momentum <= 0:
            raise RecipeError("nesterov momentum needs momentum > 0")
        self.parameters = [p for p in parameters if p.requires_grad]
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.buffers: list[Tensor | None] = [None] * len(self.parameters)
        self.lr = 0.0

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        # Multi-tensor (foreach) kernels, as torch.optim.SGD uses on CUDA: one launch per
        # operation for all parameters instead of one per parameter.
        self.lr = lr
        present = [i for i, p in enumerate(self.parameters) if p.grad is not None]
        if not present:
            return
        parameters = [self.parameters[i] for i in present]
        grads = [parameter.grad for parameter in parameters]
        if self.weight_decay != 0:
            grads = torch._foreach_add(grads, parameters, alpha=self.weight_decay)
        if self.momentum != 0:
            buffers = [self.buffers[i] for i in present]
            if all(buffer is not None for buffer in buffers):
                torch._foreach_mul_(buffers, self.momentum)
                torch._foreach_add_(buffers, grads, alpha=1.0)
            else:
                for k, i in enumerate(present):
                    if buffers[k] is None:
                        buffers[k] = self.buffers[i] = torch.clone(grads[k]).detach()
                    else:
                        buffers[k].mul_(self.momentum).add_(grads[k], alpha=1.0)
            if self.nesterov:
                grads = torch._foreach_add(grads, buffers, alpha=self.momentum)
            else:
                grads = buffers
        torch._foreach_add_(parameters, grads, alpha=-lr)


def _flip(images: Tensor, generator: torch.Generator) -> Tensor:
    flip = _uniform((images.shape[0],), generator, images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def train_model(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    recipe: Recipe,
    *,
    seed: int,
    eval_images: Tensor | None = None,
    eval_labels: Tensor | None = None,
    log_every_epoch: Callable[[str], None] = log.info,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on normalized ``images`` that already live on its device.

    Args:
        images, labels: the whole training split, (N, C, H, W) float and (N,) int64.
        seed: seeds the permutation, the augmentation and dropout; with the same seed and
            the same initial weights, training is repeatable on the CPU.
        eval_images, eval_labels: optional held-out data reported after each epoch.
        mean, std: the dataset's channel normalization in pixel units, for an augmentation
            ``value`` given in pixel units.

    Returns:
        One record per epoch: loss, train accuracy, learning rate, seconds, eval accuracy.
    """
    device = images.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    torch.manual_seed(seed)
    augmentation = build_augmentation(recipe.augmentation, mean, std)
    n = len(images)
    steps_per_epoch = max(1, math.ceil(n / recipe.batch_size))
    total_steps = steps_per_epoch * recipe.epochs
    optimizer = SGD(
        list(model.parameters()),
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay,
    )
    base_factor = SCHEDULES.get(recipe.schedule)(total_steps, recipe)
    warmup_steps = int(recipe.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warm * base_factor(step)

    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    autocast_dtype = AUTOCAST_DTYPES[recipe.precision]
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    history = []
    step = 0
    for epoch in range(recipe.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=device)
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for start in range(0, n, recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            batch, target = images[index], labels[index]
            if recipe.horizontal_flip:
                batch = _flip(batch, generator)
            batch = augmentation(batch, generator).contiguous(memory_format=memory_format)
            with (
                torch.autocast(device.type, dtype=autocast_dtype)
                if autocast_dtype is not None
                else contextlib.nullcontext()
            ):
                logits = model(batch)
                loss = loss_fn(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step(recipe.lr * factor(step))
            step += 1
            # Accumulate on the device: a .item() per step would synchronize with the GPU.
            total_loss += loss.detach() * len(index)
            correct += (logits.detach().argmax(1) == target).sum()
        record = {
            "epoch": epoch + 1,
            "loss": float(total_loss) / n,
            "train_accuracy": float(correct) / n,
            "lr": optimizer.lr,
            "seconds": time.perf_counter() - started,
        }
        if eval_images is not None and eval_labels is not None:
            record["eval_accuracy"] = accuracy(model, eval_images, eval_labels)
        history.append(record)
        if not math.isfinite(record["loss"]):
            raise RecipeError(f"training diverged at epoch {epoch + 1} (loss {record['loss']})")
        log_every_epoch(
            f"epoch {epoch + 1}/{recipe.epochs} loss {record['loss']:.4f} "
            f"train_acc {record['train_accuracy']:.4f}"
            + (f" eval_acc {record['eval_accuracy']:.4f}" if "eval_accuracy" in record else "")
            + f" lr {record['lr']:.5f} {record['seconds']:.1f}s"
        )
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return history
