"""Playground frame cost: one training step plus every heatmap figure, against a plain torch step.

The issue's budget: with a 2-8-8-1 network on 500 points, a step plus the redraw of every
heatmap must take at most 100 ms on the CPU so play mode animates smoothly. The three
measurements alternate in one loop (same machine load for each) and medians are printed.
"""

from __future__ import annotations

import os
import statistics
import time

import plotly.io as pio
import torch
from torch import nn

from core.lessons.playground2d import Playground, PlaygroundConfig
from core.viz.network import decision_figure, loss_figure, neuron_mosaic_figure

REPEATS = 60
BUDGET_MS = 100.0


def _plain_torch_step():
    """The same network, optimiser, loss and batch written directly in torch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(250, 2), (torch.rand(250) > 0.5).float()

    def step() -> None:
        batch = torch.randint(0, 250, (10,))
        loss = nn.functional.binary_cross_entropy_with_logits(model(x[batch]).squeeze(-1), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return step


def _figures(playground: Playground) -> list:
    axis, probability, layers = playground.grid_activations(50)
    train, test = playground.train_points, playground.test_points
    history = playground.history
    return [
        decision_figure(axis, probability, train.xy, train.labels, test.xy, test.labels),
        neuron_mosaic_figure(layers, ["x", "y"]),
        loss_figure(history.epochs, history.train_loss, history.test_loss),
    ]


def _timed(function) -> tuple[float, float, object]:
    """(wall ms, process CPU ms, result): CPU time shows the cost without the machine's queue."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def _one_thread(step):
    def run() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            step()
        finally:
            torch.set_num_threads(previous)

    return run


def main() -> None:
    playground = Playground(PlaygroundConfig(dataset="circle", n_points=500, hidden=(8, 8)))
    plain = _plain_torch_step()
    cases = {
        "plain": plain,
        "plain1": _one_thread(plain),
        "step": lambda: playground.step(1),
        "figures": lambda: _figures(playground),
    }
    for function in cases.values():  # warm up every path once
        function()
    wall: dict[str, list[float]] = {name: [] for name in [*cases, "json"]}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    for _ in range(REPEATS):
        for name, function in cases.items():
            w, c, result = _timed(function)
            wall[name].append(w)
            cpu[name].append(c)
        w, c, _ = _timed(lambda figures=result: [pio.to_json(f) for f in figures])
        wall["json"].append(w)
        cpu["json"].append(c)
    w = {name: statistics.median(values) for name, values in wall.items()}
    c = {name: statistics.median(values) for name, values in cpu.items()}
    rows = [
        ("plain torch step (default threads)", "plain"),
        ("plain torch step (1 thread)", "plain1"),
        ("playground step (+ train/test loss)", "step"),
        ("grid pass + 3 figures (50x50 grid)", "figures"),
        ("figures to JSON (Streamlit's part)", "json"),
    ]
    print(
        f"2-8-8-1 on 500 points (250 train), batch 10, Adam; medians of {REPEATS}; "
        f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'':38s} {'wall ms':>8s} {'CPU ms':>8s} {'wall / plain 1-thread step':>28s}")
    for label, name in rows:
        print(f"  {label:38s} {w[name]:8.2f} {c[name]:8.2f} {w[name] / w['plain1']:27.1f}x")
    frame_wall, frame_cpu = w["step"] + w["figures"], c["step"] + c["figures"]
    print(
        f"  {'frame = step + figures':38s} {frame_wall:8.2f} {frame_cpu:8.2f}   "
        f"({frame_wall / BUDGET_MS:.0%} of the {BUDGET_MS:.0f} ms budget, wall)"
    )
    print(f"  {'frame + JSON':38s} {frame_wall + w['json']:8.2f} {frame_cpu + c['json']:8.2f}")


if __name__ == "__main__":
    main()
