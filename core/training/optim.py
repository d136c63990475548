"""The optimiser and learning-rate schedule a TrainConfig asks for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from core.training.config import TrainConfig


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, Any, Any]:
    """(optimizer, step_scheduler, epoch_scheduler) for `config`.

    optimizer: SGD with Nesterov momentum, Adam or AdamW at `config.learning_rate`.
    step_scheduler: stepped after every optimiser step ("cosine", "one_cycle" over
    `total_steps`), else None; epoch_scheduler: stepped after every epoch ("step": times
    `step_gamma` every `step_epochs` epochs), else None. "constant" has neither.
    """
    c = config
    if c.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            parameters,
            lr=c.learning_rate,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            nesterov=True,
        )
    elif c.optimizer == "adam":
        optimizer = torch.optim.Adam(parameters, lr=c.learning_rate, weight_decay=c.weight_decay)
    else:
        optimizer = torch.optim.AdamW(parameters, lr=c.learning_rate, weight_decay=c.weight_decay)
    step_scheduler, epoch_scheduler = None, None
    if c.schedule == "cosine":
        step_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, total_steps)
        )
    elif c.schedule == "one_cycle":
        total = max(2, total_steps)
        # OneCycleLR divides by the length of its warm-up phase, pct_start * total - 1
        # steps, which is zero for exactly 4 steps (a tiny run): warm up a little longer.
        warmup_fraction = 0.3 if total == 4 else 0.25
        step_scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=c.learning_rate, total_steps=total, pct_start=warmup_fraction
        )
    elif c.schedule == "step":
        epoch_scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=c.step_epochs, gamma=c.step_gamma
        )
    return optimizer, step_scheduler, epoch_scheduler
