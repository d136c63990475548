"""Training / validation splits that do not leak, and how to check that they do not.

`split_dataset` splits at random, stratified by class, or by holding out whole groups (for
example every clip of one speaker, so the validation score measures voices the model never
heard); `leakage_report` counts groups and recordings found on both sides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.data.datasets import AudioDataset, DatasetError

# --- splits

SPLIT_METHODS = ("random", "stratified", "group", "holdout", "fold")


@dataclass(frozen=True)
class Split:
    """Indices into a data set's examples: training and validation, disjoint."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    method: str


def split_dataset(
    dataset: AudioDataset,
    *,
    method: str = "stratified",
    val_fraction: float = 0.2,
    seed: int = 0,
    val_groups: Sequence[str] = (),
    val_folds: Sequence[int] = (),
) -> Split:
    """Split example indices into training and validation.

    method: "random" (examples shuffled), "stratified" (each class split in proportion),
    "group" (whole groups, e.g. speakers or source files, go to one side; about
    `val_fraction` of the examples end in validation), "holdout" (the groups named in
    `val_groups` are the validation set, e.g. one speaker for leave-one-speaker-out), or
    "fold" (examples whose official fold is in `val_folds`). Deterministic for a seed.
    """
    n = len(dataset)
    if n < 2:
        raise DatasetError("A data set needs at least two examples to split.")
    if not 0.0 < val_fraction < 1.0 and method in ("random", "stratified", "group"):
        raise DatasetError("The validation fraction must be between 0 and 1.")
    rng = np.random.default_rng(seed)
    if method == "random":
        order = rng.permutation(n)
        n_val = min(n - 1, max(1, int(round(val_fraction * n))))
        val = order[:n_val]
    elif method == "stratified":
        val = []
        targets = dataset.targets
        for label in np.unique(targets):
            members = rng.permutation(np.flatnonzero(targets == label))
            # Every class with two or more clips gets at least one validation clip (and
            # keeps at least one for training), so a small recorded dataset is still measured.
            n_val = max(1, int(round(val_fraction * len(members))))
            val.extend(members[: min(n_val, len(members) - 1)] if len(members) > 1 else [])
        val = np.array(val, dtype=np.int64)
    elif method == "group":
        val = _group_split(dataset, val_fraction, rng)
    elif method == "holdout":
        wanted = set(val_groups)
        unknown = wanted - {e.group for e in dataset.examples}
        if not wanted or unknown:
            raise DatasetError(
                f"Unknown validation group(s): {', '.join(sorted(unknown)) or '(none given)'}."
            )
        val = np.array(
            [i for i, e in enumerate(dataset.examples) if e.group in wanted], dtype=np.int64
        )
    elif method == "fold":
        folds = set(val_folds)
        if not folds or all(e.fold is None for e in dataset.examples):
            raise DatasetError(
                "A fold split needs a data set with folds (ESC-50, UrbanSound8K) "
                "and the validation fold(s)."
            )
        val = np.array(
            [i for i, e in enumerate(dataset.examples) if e.fold in folds], dtype=np.int64
        )
    else:
        raise DatasetError(f"Unknown split {method!r}; choose one of {', '.join(SPLIT_METHODS)}.")
    val_set = set(int(i) for i in val)
    train = tuple(i for i in range(n) if i not in val_set)
    if not train or not val_set:
        raise DatasetError("This split leaves the training or the validation set empty.")
    return Split(train, tuple(sorted(val_set)), method)


def _group_split(
    dataset: AudioDataset, val_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    groups = sorted({e.group for e in dataset.examples})
    if len(groups) < 2:
        raise DatasetError("A split by group needs at least two groups (speakers or source files).")
    sizes = Counter(e.group for e in dataset.examples)
    target = val_fraction * len(dataset)
    chosen, count = set(), 0
    for g in rng.permutation(len(groups)):
        if count >= target or len(chosen) == len(groups) - 1:
            break
        chosen.add(groups[g])
        count += sizes[groups[g]]
    return np.array(
        [i for i, e in enumerate(dataset.examples) if e.group in chosen], dtype=np.int64
    )


@dataclass(frozen=True)
class LeakageReport:
    """Groups and source files present on both sides of a split (empty = no leak)."""

    shared_groups: tuple[str, ...]
    shared_sources: tuple[str, ...]

    @property
    def leaks(self) -> bool:
        return bool(self.shared_groups or self.shared_sources)

    def message(self) -> str:
        """One sentence for the page."""
        if not self.leaks:
            return "No speaker, group or source file appears on both sides of the split."
        return (
            f"{len(self.shared_groups)} group(s) and {len(self.shared_sources)} source file(s) "
            "appear in "
            "both training and validation, so validation accuracy overstates how well the model "
            "handles new speakers or recordings; split by group to measure that."
        )


def leakage_report(dataset: AudioDataset, split: Split) -> LeakageReport:
    """Which groups and which source files sit on both sides of `split`."""
    train = [dataset.examples[i] for i in split.train]
    val = [dataset.examples[i] for i in split.val]
    groups = {e.group for e in train} & {e.group for e in val}
    sources = {e.source for e in train} & {e.source for e in val}
    return LeakageReport(tuple(sorted(groups)), tuple(sorted(sources)))


def class_balance(dataset: AudioDataset, indices: Iterable[int] | None = None) -> dict[str, int]:
    """Examples per class name (every class listed, zero included), in label order."""
    chosen = range(len(dataset)) if indices is None else indices
    counts = Counter(dataset.examples[i].label for i in chosen)
    return {label: counts.get(k, 0) for k, label in enumerate(dataset.labels)}
