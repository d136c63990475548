"""Sweeps: train the same recipe with several values of a few settings and rank the runs.

A sweep varies up to four settings of a TrainConfig that students most often wonder about:
the learning rate, the batch size, the number of ensemble members and the strength of the
augmentation. Every trial is an ordinary training run (the job manager queues them on Ray
workers, core.jobs.manager.JobManager.submit_sweep); its run carries the sweep's id, its place and
the values it tried (`RunInfo.sweep`), so the comparison can rank them side by side.

Two ways to choose the trials:
- "grid": every combination of the listed values (2 rates x 2 batch sizes = 4 trials).
- "random": `trials` draws; the learning rate is drawn log-uniformly between the lowest and
  the highest listed rate, the other settings from their lists. For the same number of
  trials, random search tries more distinct learning rates than a grid (Bergstra & Bengio,
  2012), which matters because the rate usually matters most.

    space = SweepSpace(learning_rates=(1e-3, 3e-3), batch_sizes=(16, 32))
    trials = plan_sweep(base_config, space)       # [SweepTrial(index, values, config), ...]
    rows = sweep_rows(store.list_runs(owner), sweep_id)   # ranked, varied values as columns

Nothing here imports streamlit or Ray.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.data.augment import AugmentConfig
from core.models.layers import MAX_MEMBERS

MAX_TRIALS = 12  # a sweep is a class exercise, not a cluster-filling search
SWEEP_MODES = ("grid", "random")
# The varied settings: the key in SweepTrial.values and the column the comparison shows.
VARIED = {
    "learning_rate": "learning rate",
    "batch_size": "batch size",
    "members": "members",
    "augment_strength": "augmentation strength",
}


class SweepError(ValueError):
    """The sweep's settings cannot make trials; str() is a sentence for the page."""


@dataclass(frozen=True)
class SweepSpace:
    """The values a sweep tries; a setting with one value (or none) is not varied.

    learning_rates: peak learning rates, each > 0 (random mode: the range's two ends).
    batch_sizes: clips per optimiser step, each 1..65536.
    members: networks in the ensemble, each 1..core.model_spec.MAX_MEMBERS.
    augment_strengths: multipliers of the page's augmentation (0 = off, 1 = as set, 2 =
        twice as strong; see `scale_augment`).
    mode: "grid" (every combination) or "random" (`trials` draws, seeded by `seed`).
    An empty tuple keeps the base config's value.
    """

    learning_rates: tuple[float, ...] = ()
    batch_sizes: tuple[int, ...] = ()
    members: tuple[int, ...] = ()
    augment_strengths: tuple[float, ...] = ()
    mode: str = "grid"
    trials: int = 4  # random mode only
    seed: int = 0  # random mode only

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in SWEEP_MODES:
            problems.append(f"The sweep's mode must be grid or random, not {self.mode!r}.")
        if any(not (math.isfinite(r) and r > 0) for r in self.learning_rates):
            problems.append("Every learning rate must be a positive number.")
        if any(not (isinstance(b, int) and 1 <= b <= 65_536) for b in self.batch_sizes):
            problems.append("Every batch size must be a whole number from 1 to 65536.")
        if any(not (isinstance(m, int) and 1 <= m <= MAX_MEMBERS) for m in self.members):
            problems.append(f"Every number of members must be from 1 to {MAX_MEMBERS}.")
        if any(not (math.isfinite(s) and 0 <= s <= 3) for s in self.augment_strengths):
            problems.append("Every augmentation strength must be between 0 (off) and 3.")
        if self.mode == "random" and not (isinstance(self.trials, int) and self.trials >= 1):
            problems.append("A random sweep needs at least 1 trial.")
        if problems:
            raise SweepError(" ".join(problems))

    def varied(self) -> tuple[str, ...]:
        """The keys of VARIED this sweep really varies (two or more distinct values)."""
        lists = self._lists()
        return tuple(key for key in VARIED if len(set(lists[key])) > 1)

    def _lists(self) -> dict[str, tuple]:
        return {
            "learning_rate": tuple(self.learning_rates),
            "batch_size": tuple(self.batch_sizes),
            "members": tuple(self.members),
            "augment_strength": tuple(self.augment_strengths),
        }


@dataclass(frozen=True)
class SweepTrial:
    """One trial: its place (0-based), the values it tries (keys of VARIED) and its config."""

    index: int
    values: Mapping[str, Any]
    config: Any  # core.training.trainer.TrainConfig


def new_sweep_id() -> str:
    """A fresh sweep id, e.g. "sweep-20260101-120000-a1b2c3" (sorts by time)."""
    return f"sweep-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def scale_augment(augment: AugmentConfig, strength: float) -> AugmentConfig:
    """The augmentation `strength` times as strong: 0 = everything off, 1 = unchanged.

    Amounts (warps, shifts, mask sizes, gain, speed, equaliser, mixup's alpha) are
    multiplied and capped at their largest allowed value; the numbers of masks are
    multiplied and rounded; added noise gets 20*log10(strength) dB louder (a lower SNR).
    """
    if not (math.isfinite(strength) and strength >= 0):
        raise SweepError("The augmentation strength must be a number, 0 or more.")
    if strength == 0:
        return AugmentConfig.off()
    a = augment

    def amount(value: float, cap: float) -> float:
        return min(cap, value * strength)

    noise = a.noise_snr_db
    if noise is not None:
        noise = max(-10.0, min(80.0, noise - 20 * math.log10(strength)))
    return AugmentConfig(
        freq_warp=amount(a.freq_warp, 0.49),
        time_stretch=amount(a.time_stretch, 0.49),
        time_shift=amount(a.time_shift, 0.5),
        time_masks=min(10, round(a.time_masks * strength)),
        time_mask_fraction=amount(a.time_mask_fraction, 0.5),
        freq_masks=min(10, round(a.freq_masks * strength)),
        freq_mask_fraction=amount(a.freq_mask_fraction, 0.5),
        mixup_alpha=amount(a.mixup_alpha, 10.0),
        gain_db=amount(a.gain_db, 40.0),
        noise_snr_db=noise,
        speed=amount(a.speed, 0.49),
        eq_db=amount(a.eq_db, 24.0),
    )


def plan_sweep(base: Any, space: SweepSpace, *, max_trials: int = MAX_TRIALS) -> list[SweepTrial]:
    """The trials of a sweep: `base` (a core.training.trainer.TrainConfig) with the space's values.

    Grid: the product of the lists in VARIED's order. Random: `space.trials` draws from a
    generator seeded with `space.seed` (learning rate log-uniform over the listed range,
    the others uniformly from their lists). Each trial's config gets the name
    "<base name> · lr=0.003 · batch=16" (its varied values). Raises SweepError when nothing
    varies, when there are more than `max_trials` trials, or when a combination is not a
    valid TrainConfig.
    """
    lists = space._lists()
    varied = space.varied()
    if not varied and not (space.mode == "random" and space.trials > 1):
        raise SweepError(
            "Choose at least two values of one setting: a sweep compares trainings that differ."
        )
    fixed = {key: (values[0] if values else None) for key, values in lists.items()}
    if space.mode == "grid":
        grid = itertools.product(*(_distinct(lists[key]) for key in varied))
        combos = [dict(zip(varied, values, strict=True)) for values in grid]
    else:
        combos = _random_combos(lists, varied, space.trials, space.seed)
    if len(combos) > max_trials:
        raise SweepError(
            f"That makes {len(combos)} trainings; a sweep may have at most {max_trials}. "
            "Remove a value or two (or use a random sweep with fewer trials)."
        )
    trials = []
    for index, combo in enumerate(combos):
        values = {key: combo.get(key, fixed[key]) for key in VARIED if key in varied}
        trials.append(SweepTrial(index, values, _trial_config(base, {**fixed, **combo}, values)))
    return trials


def _distinct(values: Sequence) -> list:
    return list(dict.fromkeys(values))


def _random_combos(lists: Mapping[str, tuple], varied: Sequence[str], trials: int, seed: int):
    generator = np.random.default_rng(seed)
    combos = []
    for _ in range(trials):
        combo: dict[str, Any] = {}
        for key in varied:
            choices = _distinct(lists[key])
            if key == "learning_rate":
                low, high = math.log10(min(choices)), math.log10(max(choices))
                # Three significant digits: a readable name, the same run when seeded again.
                combo[key] = float(f"{10 ** generator.uniform(low, high):.3g}")
            else:
                combo[key] = choices[int(generator.integers(len(choices)))]
        combos.append(combo)
    return combos


def _trial_config(base: Any, settings: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    changes: dict[str, Any] = {}
    if settings["learning_rate"] is not None:
        changes["learning_rate"] = float(settings["learning_rate"])
    if settings["batch_size"] is not None:
        changes["batch_size"] = int(settings["batch_size"])
    if settings["members"] is not None:
        changes["members"] = int(settings["members"])
    if settings["augment_strength"] is not None:
        changes["augment"] = scale_augment(base.augment, float(settings["augment_strength"]))
    label = " · ".join(f"{_SHORT[k]}={_format(v)}" for k, v in values.items())
    changes["name"] = f"{base.name} · {label}" if base.name else label
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as error:
        raise SweepError(f"The trial {label} is not a valid training: {error}") from None


_SHORT = {
    "learning_rate": "lr",
    "batch_size": "batch",
    "members": "members",
    "augment_strength": "augment",
}


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_of(run: Any) -> Mapping[str, Any]:
    """The sweep record of a core.training.runs.RunInfo ({} for a run that is not a trial)."""
    sweep = getattr(run, "sweep", None)
    return sweep if isinstance(sweep, Mapping) else {}


def sweeps_in(runs: Iterable[Any]) -> list[tuple[str, str, int]]:
    """(sweep id, name, trials) of every sweep among `runs`, newest first."""
    found: dict[str, tuple[str, str, int]] = {}
    for run in runs:
        sweep = sweep_of(run)
        sweep_id = str(sweep.get("id", ""))
        if sweep_id and sweep_id not in found:
            found[sweep_id] = (sweep_id, str(sweep.get("name", "")), int(sweep.get("trials", 0)))
    return sorted(found.values(), key=lambda item: item[0], reverse=True)


def sweep_rows(runs: Iterable[Any], sweep_id: str) -> list[dict[str, Any]]:
    """The trials of one sweep as table rows, best first.

    Ranked by final validation accuracy (higher first), ties and runs without one by
    validation loss (lower first); unfinished runs come last and have no rank. Columns:
    rank, trial (1-based), the varied values (VARIED's labels), status, val accuracy,
    val loss, epochs done, run (id).
    """
    trials = [run for run in runs if sweep_of(run).get("id") == sweep_id]
    varied = [key for key in VARIED if any(key in sweep_of(r).get("values", {}) for r in trials)]

    def order(run: Any) -> tuple:
        metrics = dict(run.metrics)
        accuracy, loss = metrics.get("val_accuracy"), metrics.get("val_loss")
        return (
            accuracy is None,
            -(accuracy if accuracy is not None else 0.0),
            loss if loss is not None else math.inf,
            int(sweep_of(run).get("trial", 0)),
        )

    rows = []
    for rank, run in enumerate(sorted(trials, key=order), start=1):
        sweep, metrics = sweep_of(run), dict(run.metrics)
        ranked = metrics.get("val_accuracy") is not None
        row: dict[str, Any] = {
            "rank": rank if ranked else None,
            "trial": int(sweep.get("trial", 0)) + 1,
        }
        row.update({VARIED[key]: sweep.get("values", {}).get(key) for key in varied})
        row.update(
            {
                "status": run.status,
                "val accuracy": metrics.get("val_accuracy"),
                "val loss": metrics.get("val_loss"),
                "epochs done": metrics.get("epochs_done"),
                "run": run.run_id,
            }
        )
        rows.append(row)
    return rows
