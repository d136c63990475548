"""From spec to `nn.Module`: `build_model(spec)` and the modules it is made of.

A `SpecNetwork` maps (batch, *input_shape) to (batch, *output_shape); `forward_features`
returns the input of the final Linear. A spec with `members > 1` builds an
`EnsembleNetwork` whose prediction averages the members' probabilities.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from core.models.layers import MAX_PARAMETERS, SpecError
from core.models.shapes import LayerReport, infer_shapes, parameter_count
from core.models.spec import LayerSpec, ModelSpec, last_linear_index


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a skip path (1×1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, 1, padding, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class FramesRNN(nn.Module):
    """A GRU or LSTM over the last axis (time): (batch, *features, frames) -> (batch, hidden).

    Every axis but the first and the last is flattened into one frame's features; the output
    is the final hidden state of each direction ("last") or the mean over frames ("mean").
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        output: str = "last",
    ):
        super().__init__()
        rnn_class = nn.GRU if cell == "GRU" else nn.LSTM
        self.rnn = rnn_class(
            input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.flatten(1, -2).transpose(1, 2)  # (batch, frames, features)
        sequence, hidden = self.rnn(frames)
        if self.output == "mean":
            return sequence.mean(dim=1)
        if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
            hidden = hidden[0]
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(hidden[-directions:]), dim=-1)


_CUSTOM_MODULES = {"ResidualBlock": ResidualBlock, "FramesRNN": FramesRNN}


def _module_call(layer: LayerSpec, report: LayerReport) -> tuple[str, tuple, dict[str, Any]]:
    """(constructor name, positional args, keyword args) of one layer on its input shape.

    The model builder and the code generator share it, so the generated code builds
    exactly the modules `build_model` builds.
    """
    kind, shape, p = layer.kind, report.input_shape, layer.param
    if kind == "Linear":
        return "nn.Linear", (shape[0], p("out_features")), {"bias": p("bias")}
    if kind in ("Conv1d", "Conv2d"):
        args = (shape[0], p("out_channels"), p("kernel_size"))
        return (
            f"nn.{kind}",
            args,
            {"stride": p("stride"), "padding": p("padding"), "bias": p("bias")},
        )
    if kind == "ResidualBlock":
        return (
            "ResidualBlock",
            (shape[0], p("out_channels")),
            {"stride": p("stride"), "kernel_size": p("kernel_size")},
        )
    if kind in ("GRU", "LSTM"):
        kwargs = {
            "num_layers": p("num_layers"),
            "bidirectional": p("bidirectional"),
            "output": p("output"),
        }
        return "FramesRNN", (kind, math.prod(shape[:-1]), p("hidden_size")), kwargs
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return f"nn.{kind}", (shape[0],), {}
    if kind == "LayerNorm":
        return "nn.LayerNorm", (shape[-1],), {}
    if kind == "Dropout":
        return "nn.Dropout", (float(p("p")),), {}
    if kind in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        return f"nn.{kind}", (p("kernel_size"),), {"stride": p("stride") or p("kernel_size")}
    if kind.startswith("Adaptive"):
        return f"nn.{kind}", (p("output_size"),), {}
    if kind == "Flatten":
        return "nn.Flatten", (), {}
    if kind == "LeakyReLU":
        return "nn.LeakyReLU", (float(p("negative_slope")),), {}
    if kind == "Softmax":
        return "nn.Softmax", (), {"dim": -1}
    return f"nn.{kind}", (), {}


def _instantiate(name: str, args: tuple, kwargs: dict[str, Any]) -> nn.Module:
    constructor = _CUSTOM_MODULES.get(name) or getattr(nn, name.removeprefix("nn."))
    return constructor(*args, **kwargs)


class SpecNetwork(nn.Module):
    """The network of a spec: `layers` (nn.Sequential) applied in order.

    forward: (batch, *input_shape) -> (batch, *output_shape).
    forward_features: the input of the final Linear (the penultimate embedding), or the
    output when the stack has no Linear.
    """

    def __init__(self, layers: list[nn.Module], head_index: int):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.head_index = head_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[: self.head_index](x)

    embed = forward_features


def average_members(member_logits: torch.Tensor) -> torch.Tensor:
    """(members, batch, classes) scores -> (batch, classes): log of the mean probability.

    Averaging probabilities, not raw scores, lets a confident member outvote unsure ones
    only as far as its probabilities say; softmax of the result is the mean probability.
    """
    log_probs = member_logits.float().log_softmax(dim=-1)
    return torch.logsumexp(log_probs, dim=0) - math.log(member_logits.shape[0])


class EnsembleNetwork(nn.Module):
    """Several copies of one network, each with its own random start (a deep ensemble).

    Different starts make different mistakes, above all on inputs unlike the training data
    (a new voice), so their average is more often right than any one of them.

    forward, training mode: every member's scores (members, batch, classes), so each member
    learns from the labels on its own (trained on their average instead, the members would
    lean on each other and grow alike). Evaluation mode: `average_members` of them, (batch,
    classes), like a single classifier. forward_features: the members' embeddings side by
    side, (batch, members × D).
    """

    def __init__(self, members: list[SpecNetwork]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        member_logits = torch.stack([member(x) for member in self.members])
        return member_logits if self.training else average_members(member_logits)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member.forward_features(x).flatten(1) for member in self.members], 1)

    embed = forward_features


def member_networks(model: nn.Module) -> list[nn.Module]:
    """The single networks inside `model`: an ensemble's members, else [model] itself."""
    members = getattr(model, "members", None)
    return list(members) if isinstance(members, nn.ModuleList) else [model]


def build_model(spec: ModelSpec, *, seed: int | None = None) -> SpecNetwork | EnsembleNetwork:
    """Build the spec's network (fresh random weights, on the CPU; move it with `.to(device)`).

    A spec with members > 1 gives an `EnsembleNetwork` of that many `SpecNetwork`s.
    seed: draw the initial weights from this seed (the same seed, the same weights) without
    touching torch's global random state, which every session of the server shares.
    Raises SpecError when the stack is invalid (see `infer_shapes`).
    """
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(spec)
    reports = infer_shapes(spec)
    head = last_linear_index(spec)

    def single() -> SpecNetwork:
        modules = [
            _instantiate(*_module_call(layer, report))
            for layer, report in zip(spec.layers, reports, strict=True)
        ]
        return SpecNetwork(modules, len(modules) if head is None else head)

    if spec.members == 1:
        return single()
    total = parameter_count(spec)
    if total > MAX_PARAMETERS:
        raise SpecError(
            None,
            f"{spec.members} members bring the ensemble to {total:,} parameters; "
            f"the app's limit is {MAX_PARAMETERS:,}",
        )
    return EnsembleNetwork([single() for _ in range(spec.members)])
