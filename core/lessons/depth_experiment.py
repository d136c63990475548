"""'Deep enough': the same 2-D data learnt by networks of 0, 1, 2, 3 hidden layers.

Two questions, one experiment:

1. **Depth at a fixed width.** With no hidden layer the network is σ(w·x + b): its decision
   boundary, the points where w·x + b = 0, is a straight line, so it cannot separate XOR
   (no line puts the two diagonal quadrants on one side). A hidden layer with a nonlinear
   activation bends the boundary; without the activation, stacked Linear layers compose to
   one Linear map (W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂)) and stay a line.
2. **Depth against width at an equal parameter count.** For each depth the width whose
   network has about the same number of parameters (counted by `parameter_count` on the
   real spec) as a reference network, so only the arrangement of the parameters differs.

Each network is trained full-batch (every training point in every step) with Adam, for
several seeds of the initial weights; the data and its train/test split stay fixed so the
decision boundaries can be compared side by side. The training loop is written out here
rather than borrowed from the playground because this page teaches what it does: one
forward pass over all points, the loss, the gradient, one step (`train_full_batch`). The
experiment itself trains a network's seeds together (`train_seeds_full_batch`, torch.func
.vmap), which gives the same weights about 3x faster.

`run_depth_experiment(config)` is a generator of `DepthEvent`s (progress after each
network, then the `DepthResult`); `depth_experiment(config)` runs it to the end.

Why one module of a little over 500 lines: one experiment, from the data to the decision
boundaries, read top to bottom beside the page.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from core.lessons.playground2d import (
    ACTIVATIONS,
    DATASETS,
    FEATURES,
    Points,
    feature_matrix,
    grid_points,
    make_points,
    one_thread,
    split_points,
)
from core.models.build import build_model
from core.models.shapes import parameter_count
from core.models.spec import LayerSpec, ModelSpec

NO_ACTIVATION = "none"  # hidden layers without a nonlinearity: still a linear model
DEPTH_ACTIVATIONS = (*ACTIVATIONS, NO_ACTIVATION)
MAX_DEPTH = 5
MAX_WIDTH = 512  # widest hidden layer the equal-parameter family may use
MAX_SEEDS = 8
MAX_EPOCHS = 3000
BOUNDARY_RESOLUTION = 40  # grid cells per axis of each decision-boundary image
FAMILIES = ("fixed width", "equal parameters")


class DepthExperimentError(ValueError):
    """A setting the experiment cannot use, with a sentence for the page."""


@dataclass(frozen=True)
class DepthExperimentConfig:
    """Everything that defines one 'deep enough' experiment."""

    dataset: str = "xor"  # one of playground2d.DATASETS
    n_points: int = 400  # points generated, train and test together
    noise: float = 0.0  # 0..0.5, the playground's label noise
    test_fraction: float = 0.5  # share of the points held out to measure accuracy
    data_seed: int = 0  # the points and their split (the same for every network)
    features: tuple[str, ...] = ("x", "y")  # inputs of every network (keys of FEATURES)
    depths: tuple[int, ...] = (0, 1, 2, 3)  # hidden layers of the fixed-width networks
    width: int = 8  # neurons per hidden layer of the fixed-width networks
    activation: str = "Tanh"  # after every hidden layer; "none" leaves the stack linear
    compare_equal_parameters: bool = True  # also train the equal-parameter family
    parameter_budget: int | None = None  # None: the deepest fixed-width network's count
    seeds: int = 3  # initial weights tried per network (seeds 0 .. seeds-1)
    epochs: int = 300  # full-batch steps: one step sees every training point once
    learning_rate: float = 0.03  # Adam's step size

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise DepthExperimentError(" ".join(problems))

    @property
    def reference_budget(self) -> int:
        """The parameter count the equal-parameter networks aim at."""
        if self.parameter_budget is not None:
            return self.parameter_budget
        deepest = max(self.depths)
        return parameter_count(depth_spec(len(self.features), (self.width,) * deepest, "Tanh"))


def _config_problems(c: DepthExperimentConfig) -> list[str]:
    problems = []
    if c.dataset not in DATASETS:
        problems.append(f"Unknown dataset {c.dataset!r}; choose one of {', '.join(DATASETS)}.")
    if not 20 <= c.n_points <= 2000:
        problems.append("The number of points must be between 20 and 2000.")
    if not 0.0 <= c.noise <= 0.5:
        problems.append("Noise must be between 0 and 0.5.")
    if not 0.1 <= c.test_fraction <= 0.9:
        problems.append("The test share must be between 10 % and 90 %.")
    if not c.features or any(f not in FEATURES for f in c.features):
        problems.append("Choose at least one input feature among the playground's.")
    if not c.depths:
        problems.append("Choose at least one depth.")
    elif any(not 0 <= d <= MAX_DEPTH for d in c.depths) or len(set(c.depths)) != len(c.depths):
        problems.append(f"Depths must be different numbers from 0 to {MAX_DEPTH}.")
    if not 1 <= c.width <= 64:
        problems.append("The width must be between 1 and 64 neurons.")
    if c.activation not in DEPTH_ACTIVATIONS:
        problems.append(f"Unknown activation {c.activation!r}.")
    if c.parameter_budget is not None and not 5 <= c.parameter_budget <= 20_000:
        problems.append("The parameter budget must be between 5 and 20,000.")
    if not 1 <= c.seeds <= MAX_SEEDS:
        problems.append(f"Use 1 to {MAX_SEEDS} seeds.")
    if not 1 <= c.epochs <= MAX_EPOCHS:
        problems.append(f"Train for 1 to {MAX_EPOCHS} epochs.")
    if not 1e-4 <= c.learning_rate <= 1.0:
        problems.append("The learning rate must be between 0.0001 and 1.")
    return problems


# --------------------------------------------------------------------------- networks


def depth_spec(n_features: int, hidden: tuple[int, ...], activation: str) -> ModelSpec:
    """n_features -> hidden layers (widths `hidden`, each followed by `activation`) -> 1 logit.

    activation "none" adds no nonlinearity: the stack is then a product of linear maps.
    """
    layers: list[LayerSpec] = []
    for width in hidden:
        layers.append(LayerSpec.make("Linear", out_features=width))
        if activation != NO_ACTIVATION:
            layers.append(LayerSpec.make(activation))
    layers.append(LayerSpec.make("Linear", out_features=1))
    name = f"depth{len(hidden)}_" + ("x".join(map(str, hidden)) or "linear")
    return ModelSpec(name, (n_features,), tuple(layers))


def width_for_budget(n_features: int, depth: int, budget: int, activation: str = "Tanh") -> int:
    """The hidden width (1..MAX_WIDTH) whose `depth`-layer network's parameter count is
    closest to `budget` (ties go to the narrower). depth must be at least 1.

    The count grows with the width, so a bisection finds the first width at or above the
    budget; the answer is it or the width just below.
    """
    if depth < 1:
        raise DepthExperimentError("A network without hidden layers has no width to choose.")

    def count(width: int) -> int:
        return parameter_count(depth_spec(n_features, (width,) * depth, activation))

    low, high = 1, MAX_WIDTH
    while low < high:
        middle = (low + high) // 2
        if count(middle) >= budget:
            high = middle
        else:
            low = middle + 1
    candidates = [w for w in (low - 1, low) if w >= 1]
    return min(candidates, key=lambda w: (abs(count(w) - budget), w))


@dataclass(frozen=True)
class NetworkPlan:
    """One network of the experiment: which family, depth, width and its parameter count."""

    family: str  # one of FAMILIES
    depth: int  # hidden layers
    width: int  # neurons per hidden layer (0 for the linear model)
    parameters: int  # parameter_count of its spec

    @property
    def label(self) -> str:
        if self.depth == 0:
            return "0 hidden (linear)"
        return f"{self.depth} × {self.width}"


def plan_networks(config: DepthExperimentConfig) -> list[NetworkPlan]:
    """The fixed-width networks (every depth), then the equal-parameter ones (depth ≥ 1)."""
    n = len(config.features)
    plans = []
    for depth in sorted(config.depths):
        hidden = (config.width,) * depth
        count = parameter_count(depth_spec(n, hidden, config.activation))
        plans.append(NetworkPlan(FAMILIES[0], depth, config.width if depth else 0, count))
    if config.compare_equal_parameters:
        budget = config.reference_budget
        for depth in sorted(d for d in config.depths if d >= 1):
            width = width_for_budget(n, depth, budget, config.activation)
            count = parameter_count(depth_spec(n, (width,) * depth, config.activation))
            plans.append(NetworkPlan(FAMILIES[1], depth, width, count))
    return plans


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class DepthRun:
    """One trained network: its plan, seed, accuracies and final training loss.

    boundary: p(class 1) on a BOUNDARY_RESOLUTION² grid of the plane, indexed [y, x]
    (kept for the first seed only; None for the others).
    """

    plan: NetworkPlan
    seed: int
    train_accuracy: float
    test_accuracy: float
    train_loss: float
    boundary: np.ndarray | None = None


def train_full_batch(
    spec: ModelSpec,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    epochs: int,
    learning_rate: float,
    seed: int,
) -> tuple[nn.Module, float]:
    """Train `spec` from seeded initial weights with full-batch Adam; (network, final loss).

    x_train (n, features) float32, y_train (n,) float32 0/1; the loss is binary
    cross-entropy on the single output logit. Runs on the CPU, one thread (the tensors are
    tiny: more threads only add waiting).
    """
    network = build_model(spec, seed=seed)
    # fused: one kernel updates every parameter; on these tiny networks the per-tensor
    # overhead dominates, and fused Adam measured about 1.7x faster per step on a CPU
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate, fused=True)
    network.train()
    loss = torch.zeros(())
    for _ in range(epochs):
        logits = network(x_train).squeeze(-1)  # every training point, every step
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    network.eval()
    return network, float(loss.detach())


def train_seeds_full_batch(
    spec: ModelSpec,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    seeds: int,
    epochs: int,
    learning_rate: float,
) -> list[tuple[nn.Module, float]]:
    """`train_full_batch` for seeds 0 .. seeds-1 at once: [(network, final loss)] per seed.

    The same result as training the seeds one after another (tested), about 3x faster on a
    CPU: torch.func.vmap runs every seed's forward pass as one batched product per layer,
    so the fixed cost of each operation is paid once instead of once per seed. Each seed
    keeps its own parameters (stacked along a new first axis); the summed loss gives each
    seed exactly its own gradient, and Adam updates every number on its own.
    """
    networks = []
    for seed in range(seeds):
        # the same initial weights as train_full_batch(seed=seed)
        networks.append(build_model(spec, seed=seed))
    parameters, buffers = stack_module_state(networks)  # name -> (seeds, *shape) leaves
    skeleton = copy.deepcopy(networks[0]).to("meta")  # the structure, without storage

    def one_seed(params: dict, bufs: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(skeleton, (params, bufs), (x,)).squeeze(-1)

    all_seeds = torch.vmap(one_seed, in_dims=(0, 0, None))
    optimizer = torch.optim.Adam(parameters.values(), lr=learning_rate, fused=True)
    losses = torch.zeros(seeds)
    for _ in range(epochs):
        logits = all_seeds(parameters, buffers, x_train)  # (seeds, n)
        losses = nn.functional.binary_cross_entropy_with_logits(
            logits, y_train.expand_as(logits), reduction="none"
        ).mean(dim=1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
    trained = []
    for seed, network in enumerate(networks):
        state = {name: value[seed].detach().clone() for name, value in parameters.items()}
        network.load_state_dict(state, strict=False)
        trained.append((network.eval(), float(losses[seed].detach())))
    return trained


@torch.no_grad()
def _accuracy(network: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((network(x).squeeze(-1) > 0).float() == y).float().mean())


@torch.no_grad()
def _boundary(network: nn.Module, features: tuple[str, ...]) -> np.ndarray:
    _, grid = grid_points(BOUNDARY_RESOLUTION)
    logits = network(torch.from_numpy(feature_matrix(grid, features))).squeeze(-1)
    return torch.sigmoid(logits).reshape(BOUNDARY_RESOLUTION, BOUNDARY_RESOLUTION).numpy()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SummaryRow:
    """Test accuracy of one network over its seeds."""

    family: str
    depth: int
    width: int
    parameters: int
    mean_test_accuracy: float
    std_test_accuracy: float  # population standard deviation over the seeds
    min_test_accuracy: float
    max_test_accuracy: float
    mean_train_accuracy: float
    seeds: int


@dataclass(frozen=True)
class DepthResult:
    """Everything the page shows: the data, every trained network, the seconds it took."""

    config: DepthExperimentConfig
    train_points: Points
    test_points: Points
    axis: np.ndarray  # (BOUNDARY_RESOLUTION,) coordinates of the boundary images
    runs: tuple[DepthRun, ...]
    seconds: float
    trainings: int  # networks actually trained (one shared by both families counts once)

    def summary(self) -> list[SummaryRow]:
        """One row per planned network (plan order), statistics over its seeds."""
        rows = []
        plans = list(dict.fromkeys(run.plan for run in self.runs))
        for plan in plans:
            test = np.array([r.test_accuracy for r in self.runs if r.plan == plan])
            train = np.array([r.train_accuracy for r in self.runs if r.plan == plan])
            rows.append(
                SummaryRow(
                    plan.family,
                    plan.depth,
                    plan.width,
                    plan.parameters,
                    float(test.mean()),
                    float(test.std()),
                    float(test.min()),
                    float(test.max()),
                    float(train.mean()),
                    len(test),
                )
            )
        return rows

    def row(self, family: str, depth: int) -> SummaryRow:
        """The summary of one network; KeyError when it was not trained."""
        for row in self.summary():
            if row.family == family and row.depth == depth:
                return row
        raise KeyError((family, depth))

    def boundaries(self, family: str) -> list[tuple[NetworkPlan, np.ndarray]]:
        """(plan, p(class 1) grid) of the first seed of each depth of one family."""
        return [
            (run.plan, run.boundary)
            for run in self.runs
            if run.plan.family == family and run.boundary is not None
        ]


@dataclass(frozen=True)
class DepthEvent:
    """Progress of the experiment: `done` of `total` networks trained; the last carries
    the result (kind "finished")."""

    kind: str  # "progress" | "finished"
    done: int
    total: int
    message: str
    run: DepthRun | None = None
    result: DepthResult | None = None

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def run_depth_experiment(config: DepthExperimentConfig) -> Iterator[DepthEvent]:
    """Train every planned network for every seed, yielding one event per (network, seed).

    Networks that are the same in both families (same depth and width) are trained once
    and reported in both, so their numbers agree exactly. Takes a few seconds on one CPU
    core with the defaults (about 20 networks of at most a few hundred parameters).
    """
    started = time.perf_counter()
    points = make_points(config.dataset, config.n_points, config.noise, config.data_seed)
    train_points, test_points = split_points(points, config.test_fraction, config.data_seed)
    x_train = torch.from_numpy(feature_matrix(train_points.xy, config.features))
    y_train = torch.from_numpy(train_points.labels.astype(np.float32))
    x_test = torch.from_numpy(feature_matrix(test_points.xy, config.features))
    y_test = torch.from_numpy(test_points.labels.astype(np.float32))
    plans = plan_networks(config)
    total = len(plans) * config.seeds
    trained: dict[tuple[int, int], list[DepthRun]] = {}  # (depth, width) -> one run per seed
    runs: list[DepthRun] = []
    with one_thread():
        for plan in plans:
            key = (plan.depth, plan.width)
            if key not in trained:
                spec = depth_spec(
                    len(config.features), (plan.width,) * plan.depth, config.activation
                )
                results = train_seeds_full_batch(
                    spec,
                    x_train,
                    y_train,
                    seeds=config.seeds,
                    epochs=config.epochs,
                    learning_rate=config.learning_rate,
                )
                trained[key] = [
                    DepthRun(
                        plan,
                        seed,
                        _accuracy(network, x_train, y_train),
                        _accuracy(network, x_test, y_test),
                        loss,
                        _boundary(network, config.features) if seed == 0 else None,
                    )
                    for seed, (network, loss) in enumerate(results)
                ]
            for run in trained[key]:
                run = _with_plan(run, plan)
                runs.append(run)
                yield DepthEvent(
                    "progress",
                    len(runs),
                    total,
                    f"{plan.family}, {plan.label}, seed {run.seed}: test accuracy "
                    f"{run.test_accuracy:.0%}",
                    run=run,
                )
    axis, _ = grid_points(BOUNDARY_RESOLUTION)
    seconds = time.perf_counter() - started
    trainings = len(trained) * config.seeds
    result = DepthResult(config, train_points, test_points, axis, tuple(runs), seconds, trainings)
    yield DepthEvent("finished", total, total, f"{trainings} networks trained", result=result)


def _with_plan(run: DepthRun, plan: NetworkPlan) -> DepthRun:
    if run.plan == plan:
        return run
    return DepthRun(
        plan, run.seed, run.train_accuracy, run.test_accuracy, run.train_loss, run.boundary
    )


def depth_experiment(config: DepthExperimentConfig | None = None) -> DepthResult:
    """Run the whole experiment and return its result (for tests and scripts)."""
    result = None
    for event in run_depth_experiment(config or DepthExperimentConfig()):
        result = event.result or result
    assert result is not None  # the generator always ends with "finished"
    return result


def main(argv: list[str] | None = None) -> None:
    """`python -m core.lessons.depth_experiment --dataset spiral`: print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="xor", choices=DATASETS)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--activation", default="Tanh", choices=DEPTH_ACTIVATIONS)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depths", default="0,1,2,3", help="comma-separated hidden layers")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args(argv)
    try:
        config = DepthExperimentConfig(
            dataset=args.dataset,
            noise=args.noise,
            activation=args.activation,
            width=args.width,
            depths=tuple(int(d) for d in args.depths.split(",") if d.strip()),
            seeds=args.seeds,
            epochs=args.epochs,
        )
    except (DepthExperimentError, ValueError) as error:
        parser.error(str(error))
    result = depth_experiment(config)
    print(f"{config.dataset}: {result.trainings} trainings in {result.seconds:.1f} s")
    for row in result.summary():
        print(
            f"{row.family:17s} {row.depth} hidden × {row.width:3d} ({row.parameters:4d} params): "
            f"test {row.mean_test_accuracy:6.1%} ± {row.std_test_accuracy:5.1%} "
            f"(worst {row.min_test_accuracy:6.1%}), train {row.mean_train_accuracy:6.1%}"
        )


if __name__ == "__main__":
    main()
