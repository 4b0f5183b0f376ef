"""Model architectures by name, with activations made safe for modified-backprop methods."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.fx
from torch import nn

from saliencybench.preflight import WeightsFileError, read_state_dict_shapes, unwrap_state_dict
from saliencybench.registry import Registry

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model that cannot be built or loaded; one-line message."""


MODELS: Registry = Registry("model")


class SmallCNN(nn.Module):
    """The small CNN of the MNIST ROAR study (Loreth 2023, ch. 6.3).

    Two convolutions, two max-pool layers and three linear layers (LeNet-5 widths); every
    ReLU is its own module so GuidedBackprop and DeepLift see each use.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        if image_size < 4:
            raise ModelError(f"small_cnn needs images of at least 4 px, got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        side = image_size // 2 // 2
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu4(self.fc2(self.relu3(self.fc1(self.flatten(x)))))
        return self.fc3(x)


@MODELS.register("small_cnn")
def small_cnn(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return SmallCNN(in_channels, num_classes, image_size)


class AirbenchCNN(nn.Module):
    """A small convolution-BatchNorm network after airbench (Jordan 2024), for 8 to 64 px.

    A 3x3 stem and three blocks of 3x3 convolution, 2x2 max-pool, BatchNorm and ReLU, at
    widths 8, 16, 32 and 32, then a global max-pool and one linear layer. The global pool
    makes it translation invariant: evidence anywhere in the image reaches the classifier,
    which the flattened features of ``small_cnn`` do not give. About 16,000 parameters; on
    one CPU core the ``fast`` recipe of ``config.yaml`` trains it in about 20 s to 99 % on
    ``shapes`` (2,000 images, 32 px) and 98 % on ``mnist_sample`` (4,000, 28 px).
    Every ReLU is its own module, so GuidedBackprop and DeepLift see each use.
    """

    widths = (8, 16, 32, 32)

    def __init__(self, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        if image_size < 8:
            raise ModelError(f"airbench_cnn needs images of at least 8 px, got {image_size}")
        first = self.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, first, 3, padding=1, bias=False),
            nn.BatchNorm2d(first),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(inner, outer, 3, padding=1, bias=False),
                    nn.MaxPool2d(2),
                    nn.BatchNorm2d(outer),
                    nn.ReLU(),
                )
                for inner, outer in zip(self.widths[:-1], self.widths[1:], strict=True)
            )
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(self.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.blocks(self.stem(x)))))


@MODELS.register("airbench_cnn")
def airbench_cnn(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return AirbenchCNN(in_channels, num_classes, image_size)


class RepeatChannels(nn.Module):
    """Grayscale to RGB for ImageNet architectures; no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)


class WithChannelAdapter(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.adapter = RepeatChannels()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.adapter(x))


def _adapt_channels(net: nn.Module, in_channels: int, name: str) -> nn.Module:
    if in_channels == 3:
        return net
    if in_channels == 1:
        return WithChannelAdapter(net)
    raise ModelError(f"{name} takes 1 or 3 input channels, got {in_channels}")


@MODELS.register("cifar_resnet18")
def cifar_resnet18(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """ResNet-18 for small images (Brocki & Chung 2023, appendix A): 3x3 stem, no max-pool."""
    import torchvision  # imported on use: it costs seconds, and most jobs never need it

    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def _torchvision(name: str, min_size: int = 32, **kwargs):
    def build(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
        if image_size < min_size:
            raise ModelError(f"{name} needs images of at least {min_size} px, got {image_size}")
        import torchvision

        net = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)
        return _adapt_channels(net, in_channels, name)

    build.__doc__ = f"torchvision {name}, randomly initialized (weights come from a local file)."
    return build


for _name in ("resnet18", "resnet50", "densenet121", "mnasnet1_0", "vgg16", "mobilenet_v2"):
    MODELS.register(_name)(_torchvision(_name))
MODELS.register("inception_v3")(
    _torchvision("inception_v3", min_size=75, aux_logits=False, init_weights=True)
)

_RELU_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.relu_}
_ACTIVATIONS = (nn.ReLU, nn.ReLU6)


def make_activations_distinct(model: nn.Module) -> nn.Module:
    """Give every ReLU use its own non-inplace module, so hooks see each use once.

    Captum's GuidedBackprop, Deconvolution and DeepLift override the backward pass of
    ``nn.ReLU`` modules through hooks: a module called twice (torchvision ResNet blocks
    reuse ``self.relu``), an in-place ReLU or a functional ``F.relu`` breaks them. The model
    is traced with torch.fx and each such call site gets a fresh module; parameter names
    are unchanged, so checkpoints load into either form. ReLU6 is made distinct as well,
    though captum only overrides ``nn.ReLU``.
    """
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    calls: dict[str, int] = {}
    graph = torch.fx.symbolic_trace(model)
    functional = False
    for node in graph.graph.nodes:
        if node.op == "call_module" and isinstance(graph.get_submodule(node.target), _ACTIVATIONS):
            calls[node.target] = calls.get(node.target, 0) + 1
        elif (node.op == "call_function" and node.target in _RELU_FUNCTIONS) or (
            node.op == "call_method" and node.target in ("relu", "relu_")
        ):
            functional = True
    if not functional and all(count == 1 for count in calls.values()):
        return model
    counter = 0
    for node in list(graph.graph.nodes):
        replacement = None
        if node.op == "call_module":
            module = graph.get_submodule(node.target)
            if isinstance(module, _ACTIVATIONS) and calls[node.target] > 1:
                replacement = type(module)()
        elif (node.op == "call_function" and node.target in _RELU_FUNCTIONS) or (
            node.op == "call_method" and node.target in ("relu", "relu_")
        ):
            replacement = nn.ReLU()
        if replacement is None:
            continue
        name = f"relu_distinct_{counter}"
        counter += 1
        graph.add_submodule(name, replacement)
        with graph.graph.inserting_after(node):
            new = graph.graph.call_module(name, args=(node.args[0],))
        node.replace_all_uses_with(new)
        graph.graph.erase_node(node)
    graph.graph.lint()
    graph.recompile()
    return graph


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    weights: str | None = None,
) -> nn.Module:
    """Build a registered architecture, load optional local weights, make activations distinct."""
    model = MODELS.get(name)(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size
    )
    if weights:
        load_weights(model, weights, architecture=name)
    return make_activations_distinct(model)


def with_module_metadata(state: Mapping[str, torch.Tensor], model: nn.Module) -> OrderedDict:
    """``state`` as ``load_state_dict`` takes it, with the module version metadata of
    ``model`` where ``state`` carries none (a dict rebuilt key by key loses it). Some
    modules read their version from it on loading: torchvision's MNASNet refuses a
    state_dict without one."""
    ordered = OrderedDict(state)
    metadata = getattr(state, "_metadata", None)
    ordered._metadata = metadata if metadata is not None else model.state_dict()._metadata
    return ordered


def load_weights(model: nn.Module, path: str, architecture: str = "the model") -> None:
    """Load a local state_dict (``weights_only=True``) into ``model``, checked tensor by tensor.

    Every tensor must have the model's shape, with one exception: a classifier head (the
    module of :func:`classifier_layer`) that differs only in its number of outputs (weights
    for another number of classes) is re-initialized as a whole, weight and bias keeping
    the model's fresh initialization, and logged. Keys of a bare torchvision model are
    matched to a channel adapter's ``net.`` keys and vice versa.

    Raises:
        ModelError: one line naming ``path``: the file is missing or not a plain state_dict
            (the same line config validation gives), its keys do not match, or tensors
            other than the head's output size differ in shape (the first few, both shapes).
    """
    try:
        # the torch-free reader first: the same one-line refusals as config validation
        read_state_dict_shapes(path)
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = unwrap_state_dict(loaded)
    except WeightsFileError as error:
        raise ModelError(f"{path}: {error}") from None
    except Exception as error:  # torch refuses what the reader let through
        first = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        raise ModelError(
            f"{path}: not a plain state_dict ({type(error).__name__}: {first})"
        ) from None
    own = model.state_dict()
    if not set(state) & set(own):
        # weights of a bare torchvision model loaded into a channel adapter, or vice versa
        for candidate in (
            {f"net.{k}": v for k, v in state.items()},
            {k.removeprefix("net."): v for k, v in state.items()},
        ):
            if set(candidate) & set(own):
                state = candidate
                break
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelError(
            f"{path}: keys do not match the architecture of {architecture} "
            f"(missing {len(missing)}: {missing[:3]}, unexpected {len(unexpected)}: "
            f"{unexpected[:3]})"
        )
    differing = [k for k, v in state.items() if tuple(own[k].shape) != tuple(v.shape)]
    head = _head_keys(model)
    reinitialized = (
        bool(differing) and set(differing) <= set(head) and _only_outputs_differ(state, own, head)
    )
    if reinitialized:
        outputs = (state[head[0]].shape[0], own[head[0]].shape[0])
        for key in head:  # weight and bias alike: a head half loaded scores at chance
            del state[key]
    elif differing:
        # the other tensors first: they are what makes the file unusable
        shown = [k for k in differing if k not in head] + [k for k in differing if k in head]
        listed = "; ".join(
            f"{k} {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
            for k in shown[:3]
        )
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        raise ModelError(
            f"{path}: {len(shown)} tensor(s) of another shape than {architecture}'s: {listed}{more}"
        )
    # the keys were rewritten above, so the file's own metadata no longer matches them;
    # strict unless the head was left out on purpose (keys were compared above)
    model.load_state_dict(with_module_metadata(state, model), strict=not reinitialized)
    if reinitialized:
        log.info(
            "weights %s: classifier head %s re-initialized (%d outputs in the file, %d in %s)",
            path,
            " and ".join(head),
            *outputs,
            architecture,
        )


def _head_keys(model: nn.Module) -> list[str]:
    """The state_dict keys of the classifier head (weight and, where it has one, bias)."""
    head = classifier_layer(model)
    name = next(name for name, module in model.named_modules() if module is head)
    prefix = f"{name}." if name else ""
    return [f"{prefix}{key}" for key in head.state_dict()]


def _only_outputs_differ(
    state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], head: list[str]
) -> bool:
    """Whether the file's head differs from the model's in its output size only: the same
    number of inputs, and one output size shared by its weight and bias."""
    outputs = {tuple(state[k].shape)[:1] for k in head}
    return len(outputs) == 1 and all(
        tuple(state[k].shape)[1:] == tuple(own[k].shape)[1:] for k in head
    )


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The last ``nn.Conv2d`` in module order (forward order for the registered models)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ModelError("the model has no Conv2d layer")
    return convs[-1]


def classifier_layer(model: nn.Module) -> nn.Module:
    """The final linear classifier; its input is the penultimate encoding."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError("the model has no Linear layer")
    return linears[-1]


def penultimate_encodings(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256):
    """The encodings h(x): the input of the final linear classifier, flattened (N, J).

    The layer before the classification layer, as the hermitry ratio uses it (the hermitry
    paper, Sec. 3.2). Read through a forward pre-hook on :func:`classifier_layer`, batched,
    without gradients; the model's mode is left as it is.
    """
    captured: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple) -> None:
        captured.append(args[0].detach().flatten(1))

    handle = classifier_layer(model).register_forward_pre_hook(record)
    try:
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                model(inputs[start : start + batch_size])
    finally:
        handle.remove()
    if not captured:
        return inputs.new_zeros((0, classifier_layer(model).in_features))
    return torch.cat(captured)
