"""The "see the function" playground: small networks on points of the plane.

A TensorFlow-Playground-style lab. Points (x, y) in [-6, 6]² carry a label 0 or 1; the
network sees chosen input features of each point (x, y, x², y², xy, sin x, sin y), and its
output, a probability of label 1, can be drawn over the whole plane. Every hidden neuron is
a function of the plane too, so its heatmap shows what it has learned.

Beyond the synthetic sets, `audio_feature_points` turns real clips into points: two
per-clip audio features (e.g. spectral centroid against loudness) of two classes of the
shipped recordings.

The network is a `ModelSpec` (core.models.spec) built from `PlaygroundConfig`, or any spec
whose stack maps the feature vector to one output.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.models.build import build_model
from core.models.shapes import output_shape
from core.models.spec import LayerSpec, ModelSpec

DOMAIN = 6.0  # the plane shown is [-DOMAIN, DOMAIN]²
DATASETS = ("circle", "xor", "gaussian", "spiral")
ACTIVATIONS = ("Tanh", "ReLU", "Sigmoid", "LeakyReLU", "GELU")
REGULARIZATIONS = ("none", "L1", "L2")
OPTIMIZERS = ("SGD", "Adam")
MAX_POINTS = 5000
MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 8  # per hidden layer, as in TensorFlow Playground: every neuron gets a heatmap

# name -> (label shown, function of (x, y) arrays)
FEATURES = {
    "x": ("x", lambda x, y: x),
    "y": ("y", lambda x, y: y),
    "x2": ("x²", lambda x, y: x * x),
    "y2": ("y²", lambda x, y: y * y),
    "xy": ("xy", lambda x, y: x * y),
    "sinx": ("sin x", lambda x, y: np.sin(x)),
    "siny": ("sin y", lambda x, y: np.sin(y)),
}


_ACTIVATION_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU)


class PlaygroundError(ValueError):
    """A setting the playground cannot use, with a sentence for the page."""


@dataclass(frozen=True)
class PlaygroundConfig:
    """Everything that defines one playground experiment (TensorFlow Playground's controls)."""

    dataset: str = "circle"  # one of DATASETS (or "audio" when the points come from clips)
    n_points: int = 500  # points generated, train and test together
    noise: float = 0.0  # 0..0.5: fraction of the domain added as random jitter
    test_fraction: float = 0.5  # share of the points held out for the test loss
    batch_size: int = 10  # points per training step
    features: tuple[str, ...] = ("x", "y")  # keys of FEATURES fed to the network
    hidden: tuple[int, ...] = (8, 8)  # neurons per hidden layer (empty: a linear model)
    activation: str = "Tanh"  # one of ACTIVATIONS, after every hidden layer
    regularization: str = "none"  # one of REGULARIZATIONS, on the weights (not the biases)
    regularization_rate: float = 0.0  # λ in loss + λ·Σ|w| (L1) or loss + λ·Σw²/2 (L2)
    learning_rate: float = 0.01  # Adam's step; 0.03 with SGD as in TensorFlow Playground
    optimizer: str = "Adam"  # "SGD" is TensorFlow Playground's; Adam is faster to watch
    seed: int = 0  # data, split and initial weights

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise PlaygroundError(" ".join(problems))


def _config_problems(c: PlaygroundConfig) -> list[str]:
    problems = []
    if c.dataset not in (*DATASETS, "audio"):
        problems.append(f"Unknown dataset {c.dataset!r}; choose one of {', '.join(DATASETS)}.")
    if not 20 <= c.n_points <= MAX_POINTS:
        problems.append(f"The number of points must be between 20 and {MAX_POINTS}.")
    if not 0.0 <= c.noise <= 0.5:
        problems.append("Noise must be between 0 and 0.5.")
    if not 0.1 <= c.test_fraction <= 0.9:
        problems.append("The test share must be between 10 % and 90 %.")
    if not 1 <= c.batch_size <= MAX_POINTS:
        problems.append(f"The batch size must be between 1 and {MAX_POINTS}.")
    if not c.features:
        problems.append("Choose at least one input feature.")
    unknown = [f for f in c.features if f not in FEATURES]
    if unknown:
        problems.append(f"Unknown input features: {', '.join(unknown)}.")
    if len(c.hidden) > MAX_HIDDEN_LAYERS or any(not 1 <= n <= MAX_NEURONS for n in c.hidden):
        problems.append(
            f"Use at most {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_NEURONS} neurons."
        )
    if c.activation not in ACTIVATIONS:
        problems.append(f"Unknown activation {c.activation!r}.")
    if c.regularization not in REGULARIZATIONS:
        problems.append(f"Unknown regularisation {c.regularization!r}.")
    if not 0.0 <= c.regularization_rate <= 10.0:
        problems.append("The regularisation rate must be between 0 and 10.")
    if not 1e-5 <= c.learning_rate <= 10.0:
        problems.append("The learning rate must be between 0.00001 and 10.")
    if c.optimizer not in OPTIMIZERS:
        problems.append(f"Unknown optimiser {c.optimizer!r}.")
    return problems


# --- data


@dataclass(frozen=True)
class Points:
    """Labelled points of the plane: xy (n, 2) float32 in about [-6, 6], labels (n,) 0/1."""

    xy: np.ndarray
    labels: np.ndarray
    axis_names: tuple[str, str] = ("x", "y")
    class_names: tuple[str, str] = ("class 0", "class 1")

    def __len__(self) -> int:
        return len(self.labels)


def make_points(name: str, n_points: int = 500, noise: float = 0.0, seed: int = 0) -> Points:
    """One of the synthetic sets of DATASETS, TensorFlow Playground's recipes.

    circle: label 1 inside radius 2.5, label 0 on a ring from 3.5 to 5. xor: label 1 where
    x·y > 0. gaussian: two blobs around (2, 2) and (-2, -2). spiral: two interleaved
    arms. `noise` (0..0.5) jitters the points; returns `Points` with xy of shape (n, 2).
    """
    rng = np.random.default_rng(seed)
    if name == "circle":
        xy, labels = _circle(rng, n_points, noise)
    elif name == "xor":
        xy, labels = _xor(rng, n_points, noise)
    elif name == "gaussian":
        xy, labels = _gaussian(rng, n_points, noise)
    elif name == "spiral":
        xy, labels = _spiral(rng, n_points, noise)
    else:
        raise PlaygroundError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    order = rng.permutation(len(labels))
    return Points(xy[order].astype(np.float32), labels[order].astype(np.int64))


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    half = n // 2
    r = np.concatenate(
        [rng.uniform(0, radius * 0.5, half), rng.uniform(radius * 0.7, radius, n - half)]
    )
    angle = rng.uniform(0, 2 * math.pi, n)
    xy = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    # As in TensorFlow Playground, noise moves where the label is decided, not the point:
    # points near the boundary then carry the "wrong" colour.
    jittered = xy + rng.uniform(-radius, radius, (n, 2)) * noise
    return xy, (np.hypot(jittered[:, 0], jittered[:, 1]) < radius * 0.5).astype(np.int64)


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.uniform(-5, 5, (n, 2))
    xy += np.where(xy > 0, 0.3, -0.3)  # keep a small gap along the axes
    jittered = xy + rng.uniform(-5, 5, (n, 2)) * noise
    return xy, (jittered[:, 0] * jittered[:, 1] >= 0).astype(np.int64)


def _gaussian(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    std = math.sqrt(0.5 + 3.5 * noise / 0.5)  # variance from 0.5 to 4, as the noise grows
    half = n // 2
    positive = rng.normal(2, std, (half, 2))
    negative = rng.normal(-2, std, (n - half, 2))
    return np.concatenate([positive, negative]), np.r_[np.ones(half), np.zeros(n - half)]


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    arms = []
    for delta, count in ((0.0, half), (math.pi, n - half)):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * math.pi + delta
        arm = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        arms.append(arm + rng.uniform(-1, 1, (count, 2)) * noise)
    return np.concatenate(arms), np.r_[np.ones(half), np.zeros(n - half)]


def split_points(points: Points, test_fraction: float, seed: int = 0) -> tuple[Points, Points]:
    """Shuffle and split into (train, test); both keep at least one point."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(points))
    n_test = min(max(1, int(round(len(points) * test_fraction))), len(points) - 1)
    test, train = order[:n_test], order[n_test:]

    def subset(idx: np.ndarray) -> Points:
        return Points(points.xy[idx], points.labels[idx], points.axis_names, points.class_names)

    return subset(train), subset(test)


def feature_matrix(xy: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """The network's inputs: one column per feature of FEATURES, shape (n, len(features))."""
    x, y = xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32)
    return np.stack([FEATURES[name][1](x, y) for name in features], axis=1).astype(np.float32)


def grid_points(resolution: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Axis values (resolution,) and the (resolution², 2) points of a grid over the plane.

    Row-major: point k is (axis[k % resolution], axis[k // resolution]), so a (n, 1) output
    reshaped to (resolution, resolution) is indexed [y, x], the orientation of a heatmap.
    """
    axis = np.linspace(-DOMAIN, DOMAIN, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis)
    return axis, np.stack([gx.ravel(), gy.ravel()], axis=1)


# --- the network


def playground_spec(config: PlaygroundConfig) -> ModelSpec:
    """The quick-controls network: features -> hidden layers with the activation -> 1 logit."""
    layers: list[LayerSpec] = []
    for width in config.hidden:
        layers += [LayerSpec.make("Linear", out_features=width), LayerSpec.make(config.activation)]
    layers.append(LayerSpec.make("Linear", out_features=1))
    return ModelSpec("playground", (len(config.features),), tuple(layers))


def adapt_spec(spec: ModelSpec, n_features: int) -> ModelSpec:
    """Another stack (e.g. the editor's) on the playground: n_features in, one logit out.

    The final Linear gets one output, read as the logit of class 1; layers after it (a
    Softmax or Sigmoid meant for a classifier's scores) are left out, and declared input
    sizes are inferred again. Raises SpecError with the reason when the stack cannot take
    a feature vector (a convolution needs channels and length, for instance).
    """
    adapted = spec.with_input_shape((n_features,)).with_num_outputs(1)
    last_linear = max(i for i, layer in enumerate(adapted.layers) if layer.kind == "Linear")
    layers = [
        layer.with_params(in_features=None) if layer.kind == "Linear" else layer
        for layer in adapted.layers[: last_linear + 1]
    ]
    adapted = adapted.with_layers(layers)
    output_shape(adapted)  # raises SpecError naming the failing layer
    return adapted


# --- training


def _check_batch_norm(spec: ModelSpec, batch_size: int) -> None:
    if batch_size < 2 and any(layer.kind.startswith("BatchNorm") for layer in spec.layers):
        raise PlaygroundError(
            "Batch normalisation needs at least 2 points per batch (it normalises over the "
            "batch): raise the batch size."
        )


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, then restore the setting.

    The playground's tensors are tiny (8×8 weights, 10-point batches): splitting them over
    threads saves nothing, and on a busy shared CPU waiting for a second thread to be
    scheduled made a step 5-10× slower in our measurements.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class History:
    """Loss after each evaluation: epochs (float) and mean binary cross-entropies."""

    epochs: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)


class Playground:
    """One running experiment: data, network, optimiser, step counter and loss history.

    Mutable on purpose (it lives in a session between reruns); every change goes through
    `step`, `reset` or the constructor. Runs on the CPU: the networks are tiny and a GPU
    round trip would cost more than the step.
    """

    def __init__(
        self, config: PlaygroundConfig, points: Points | None = None, spec: ModelSpec | None = None
    ):
        self.config = config
        self.points = (
            points
            if points is not None
            else make_points(config.dataset, config.n_points, config.noise, config.seed)
        )
        self.train_points, self.test_points = split_points(
            self.points, config.test_fraction, config.seed
        )
        self.spec = (
            adapt_spec(spec, len(config.features)) if spec is not None else playground_spec(config)
        )
        _check_batch_norm(self.spec, config.batch_size)
        self._x_train = torch.from_numpy(feature_matrix(self.train_points.xy, config.features))
        self._y_train = torch.from_numpy(self.train_points.labels.astype(np.float32))
        self._x_test = torch.from_numpy(feature_matrix(self.test_points.xy, config.features))
        self._y_test = torch.from_numpy(self.test_points.labels.astype(np.float32))
        self.reset()

    def reset(self) -> None:
        """New initial weights (seeded), a fresh optimiser, step 0, empty history."""
        torch.manual_seed(self.config.seed)
        self.model = build_model(self.spec)
        optimiser_class = torch.optim.Adam if self.config.optimizer == "Adam" else torch.optim.SGD
        self.optimizer = optimiser_class(self.model.parameters(), lr=self.config.learning_rate)
        self._generator = torch.Generator().manual_seed(self.config.seed)
        self._order = torch.randperm(len(self._y_train), generator=self._generator)
        self._cursor = 0
        self.steps = 0
        self.examples_seen = 0
        self.history = History()
        self._record()

    def retune(self, config: PlaygroundConfig) -> bool:
        """Take new training settings without losing the weights, as TensorFlow Playground does.

        Learning rate, optimiser, batch size and regularisation apply from the next step;
        returns False (and changes nothing) when `config` differs in anything else (data,
        features, layers), which needs a new Playground.
        """
        training = {
            "learning_rate",
            "optimizer",
            "batch_size",
            "regularization",
            "regularization_rate",
        }
        for name in PlaygroundConfig.__dataclass_fields__:
            if name not in training and getattr(config, name) != getattr(self.config, name):
                return False
        _check_batch_norm(self.spec, config.batch_size)
        if config.optimizer != self.config.optimizer:
            optimiser_class = torch.optim.Adam if config.optimizer == "Adam" else torch.optim.SGD
            self.optimizer = optimiser_class(self.model.parameters(), lr=config.learning_rate)
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate
        self.config = config
        return True

    @property
    def epoch(self) -> float:
        """Passes over the training points so far."""
        return self.examples_seen / len(self._y_train)

    def _weights(self) -> list[torch.Tensor]:
        return [m.weight for m in self.model.modules() if isinstance(m, nn.Linear)]

    def _penalty(self) -> torch.Tensor:
        rate = self.config.regularization_rate
        if self.config.regularization == "L1" and rate > 0:
            return rate * sum(w.abs().sum() for w in self._weights())
        if self.config.regularization == "L2" and rate > 0:
            return rate * 0.5 * sum((w * w).sum() for w in self._weights())
        return torch.zeros(())

    def _next_batch(self) -> torch.Tensor:
        size = min(self.config.batch_size, len(self._order))
        if self._cursor + size > len(self._order):
            self._order = torch.randperm(len(self._y_train), generator=self._generator)
            self._cursor = 0
        batch = self._order[self._cursor : self._cursor + size]
        self._cursor += size
        return batch

    def step(self, n_steps: int = 1) -> None:
        """Run n_steps minibatch updates, then record train and test loss once."""
        with one_thread():
            self._train_steps(n_steps)
            self._record()

    def _train_steps(self, n_steps: int) -> None:
        self.model.train()
        for _ in range(max(0, int(n_steps))):
            batch = self._next_batch()
            logits = self.model(self._x_train[batch]).squeeze(-1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, self._y_train[batch])
            self.optimizer.zero_grad(set_to_none=True)
            (loss + self._penalty()).backward()
            self.optimizer.step()
            self.steps += 1
            self.examples_seen += len(batch)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self._y_train) / self.config.batch_size))

    @torch.no_grad()
    def _record(self) -> None:
        self.model.eval()
        bce = nn.functional.binary_cross_entropy_with_logits
        self.history.epochs.append(self.epoch)
        self.history.train_loss.append(
            float(bce(self.model(self._x_train).squeeze(-1), self._y_train))
        )
        self.history.test_loss.append(
            float(bce(self.model(self._x_test).squeeze(-1), self._y_test))
        )

    @torch.no_grad()
    def accuracy(self, which: str = "test") -> float:
        """Share of points whose label the network gets right (threshold 0.5)."""
        self.model.eval()
        x, y = (self._x_test, self._y_test) if which == "test" else (self._x_train, self._y_train)
        predicted = (self.model(x).squeeze(-1) > 0).float()
        return float((predicted == y).float().mean())

    @torch.no_grad()
    def grid_activations(
        self, resolution: int = 50
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray]]]:
        """Everything the heatmaps show, computed in one pass over a grid of the plane.

        Returns (axis (r,), output probability (r, r) indexed [y, x], layers) where layers
        is a list of (name, values (units, r, r)): the input features first, then the
        output of every activation layer (each hidden neuron's function of the plane).
        """
        with one_thread():
            return self._grid_activations(resolution)

    def _grid_activations(
        self, resolution: int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray]]]:
        self.model.eval()
        axis, grid = grid_points(resolution)
        h = torch.from_numpy(feature_matrix(grid, self.config.features))
        layers = [("inputs", h.T.reshape(-1, resolution, resolution).numpy())]
        for module in self.model.layers:
            h = module(h)
            if isinstance(module, _ACTIVATION_MODULES) and h.ndim == 2:
                # a neuron's function of the plane; wide editor stacks show their first units
                units = h[:, :MAX_NEURONS].T.reshape(-1, resolution, resolution)
                layers.append((f"hidden {len(layers)}", units.numpy()))
        probability = torch.sigmoid(h[:, 0]).reshape(resolution, resolution).numpy()
        return axis, probability, layers


def train_until(playground: Playground, epochs: float) -> Playground:
    """Train until `epochs` passes over the training points (for tests and scripts)."""
    while playground.epoch < epochs:
        playground.step(playground.steps_per_epoch())
    return playground
