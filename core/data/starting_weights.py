"""The recipe's starting weights: random, or a ready model's to fine-tune (transfer learning).

The recipe (core.data.profile) chooses, per kind of sound, whether a training starts from a
ready model in models/ and at which learning rate; core.training.transfer does the loading
and copying. The choice needs only what the ready model reads (its features, feature kind and
normalisation, from its config.json), so it is read here without loading any weights.

Measured on rendered instrument notes (tests/benchmarks/bench_recipes.py, docs/ARCHITECTURE.md
"Starting from a ready model"): trained on one soundfont and scored on another that neither
the training nor the ready model heard, starting from a ready model scored far above random
weights, and a fine-tuning rate of 1e-3 above the from-scratch 3e-3. Nothing was measured for
isolated events: the one ready model for words learnt the shipped digits themselves, so
starting from it would hide what a student's own recordings teach.
"""

from __future__ import annotations

import json
from pathlib import Path

from core import paths
from core.audio.features import FeatureConfig

# The ready model measured to help each kind of sound (core.data.profile's kinds) as a start.
READY_START_FOR = {"sustained sounds": "instruments-cnn"}
FROM_SCRATCH_LEARNING_RATE = 3e-3  # core.training.config.TrainConfig.learning_rate
# A third of the from-scratch rate, so the first steps, driven by a head that starts at random,
# do not wash out what the layers learnt.
FINE_TUNE_LEARNING_RATE = 1e-3


def ready_models() -> dict[str, Path]:
    """The ready models in models/ that have weights: {name: run folder}, oldest first (the
    "name" and "created_utc" of each models/<run>/config.json; unreadable folders left out).
    The one lookup of a ready model by name: core.training.transfer loads what it finds."""
    found = []
    for config_path in paths.MODELS_DIR.glob("*/config.json"):
        folder = config_path.parent
        if not ((folder / "model.json").is_file() and (folder / "model.safetensors").is_file()):
            continue
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("name"):
            found.append((str(config.get("created_utc", "")), str(config["name"]), folder))
    return {name: folder for _, name, folder in sorted(found)}


def ready_model_input(name: str) -> tuple[FeatureConfig, str, str] | None:
    """(features, feature kind, normalisation) of the ready model called `name`, from its
    config.json (no weights loaded); None when there is no readable ready model of that name."""
    folder = ready_models().get(name)
    if folder is None:
        return None
    try:
        train = json.loads((folder / "config.json").read_text(encoding="utf-8"))["train_config"]
        features = FeatureConfig.from_dict(train["features"])
        return features, str(train["feature_kind"]), str(train["normalization"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start_from_for(kind: str, features: FeatureConfig, normalization: str) -> tuple[str, str]:
    """(ready model name or "" for random weights, the reason): READY_START_FOR[kind] when it
    reads exactly the chosen log-mel input."""
    name = READY_START_FOR.get(kind, "")
    if not name:
        return "", (
            "Random weights: no ready model was measured to help with short events like "
            "words (the ready digits model learnt the shipped digits themselves)."
        )
    if ready_model_input(name) != (features, "logmel", normalization):
        return "", (
            f"Random weights: the ready model {name} reads another input than the one "
            "chosen for your clips (its first layer learnt other numbers)."
        )
    return name, (
        f"Start from the ready model {name} (notes of six instrument families from four "
        "soundfonts) and fine-tune it: what it learnt about timbre carries over. Trained on "
        "one soundfont's notes and scored on another that neither the training nor the ready "
        "model had heard, this scored 0.89-0.95 where random weights scored 0.68-0.95 (four "
        "pairs of soundfonts, its own six classes). With other classes its classifier layer "
        "starts afresh and learns alone for the first epochs (0.87 where random weights "
        "scored 0.66-0.74)."
    )


def learning_rate_for(start_from: str) -> tuple[float, str]:
    """(peak learning rate, the reason) for a training starting from `start_from` ("": random)."""
    if start_from:
        return FINE_TUNE_LEARNING_RATE, (
            f"{FINE_TUNE_LEARNING_RATE:g}, a third of the usual: fine-tuning nudges weights "
            "that already work (notes learnt from FluidR3, scored on TimGM6mb: 0.92-0.99 "
            "where 3e-3 scored 0.85-0.88)."
        )
    return FROM_SCRATCH_LEARNING_RATE, "3e-3 (AdamW, one-cycle schedule): from random weights."
