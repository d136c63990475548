"""Train the shipped digits model with the default recipe, measure it honestly, ship it.

    python -m scripts.build_digits_model [--runs-dir runs/digits-model] [--reuse]
                                         [--folds george,jackson,lucas,nicolas] [--seed 0]

Steps (each training is the plain `python -m core.train` command line, printed as it runs):

1. The shipped model: TrainConfig() defaults on builtin:digits with a stratified split
   (20 % of each digit's takes held out, seed 0). Its accuracy on those held-out takes is
   the "new takes of speakers it knows" figure.
2. Leave-one-speaker-out: the same command with `--split holdout --val-groups SPEAKER`, once
   per speaker in --folds. The mean of their accuracies on the unheard speaker is the "a
   speaker it never heard" figure (the case of a student's own voice). These models are
   measured, not shipped; each learnt from three voices where the shipped one had four.
3. The shipped run folder is copied to models/digits-cnn (replacing the old one), its
   card.json written (`core.models.card`), and models/digits-cnn.spec.json rewritten from the
   network actually trained.

--reuse picks up finished runs of the same name in --runs-dir instead of training again
(so an interrupted build resumes). --jobs N trains N at a time, each on one torch thread
(OMP_NUM_THREADS=1: on a crowded CPU, threads of one process that wait for each other waste
their share). A default training takes about 2 minutes of an idle 2-core CPU and 10-25
minutes of a crowded one: five of them make the full build.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from core import paths
from core.data.datasets import builtin_digits
from core.models.card import (
    Measurement,
    ModelCard,
    leave_one_group_out,
    read_model_card,
    training_sound_of_dataset,
    write_model_card,
)
from core.training.runs import RunStore
from scripts.model_build import accuracy_and_clips, ship, train_with_folds

SHIPPED_NAME = "digits-cnn"
SPEAKERS = ("george", "jackson", "lucas", "nicolas")
SOUND = "spoken digits, one word per clip (English, four adult male speakers)"
BASE_ARGS = ("--data", "builtin:digits", "--no-tsne", "--owner", "shipped")


def train_command(runs_dir: Path, name: str, seed: int, extra: tuple[str, ...]) -> list[str]:
    """The `python -m core.train` argument list of one training."""
    return [
        sys.executable,
        "-m",
        "core.train",
        *BASE_ARGS,
        "--seed",
        str(seed),
        "--runs-dir",
        str(runs_dir),
        "--name",
        name,
        *extra,
    ]


def build_card(
    store: RunStore, shipped_id: str, fold_ids: dict[str, str], commands: dict
) -> ModelCard:
    """The card of the shipped run, from its own summary and the folds' summaries."""
    meta = json.loads((store.run_path(shipped_id) / "model.json").read_text())
    config = store.get(shipped_id).train_config
    dataset = builtin_digits()
    speakers = sorted({e.group for e in dataset.examples})
    known_accuracy, known_clips = accuracy_and_clips(store, shipped_id)
    known = Measurement(
        "New takes of speakers it knows",
        known_accuracy,
        known_clips,
        f"the shipped model itself, scored on the {known_clips} takes a stratified split "
        f"(20 % of each digit, seed {config['seed']}) held out of its training; the same "
        f"{len(speakers)} speakers recorded its training takes.",
    )
    unseen = leave_one_group_out(
        "A speaker it never heard",
        {speaker: accuracy_and_clips(store, run_id) for speaker, run_id in fold_ids.items()},
        groups_total=len(speakers),
    )
    notes = (
        f"The unseen-speaker folds learnt from {len(speakers) - 1} voices, the shipped model "
        f"from {len(speakers)}: a fifth voice may fare a little better than this figure.",
        "The default recipe (trimming, the equaliser, the ensemble) was chosen on these same "
        "leave-one-speaker-out folds, with no fifth speaker kept aside, so the figure is "
        "likely somewhat optimistic for a new voice, microphone and room.",
    )
    return ModelCard(
        name=SHIPPED_NAME,
        labels=tuple(meta["labels"]),
        sample_rate=int(meta["feature_config"]["sample_rate"]),
        clip_seconds=float(config["clip_seconds"]),
        data="builtin:digits",
        data_description=(
            f"the shipped spoken digits (data/digits): {len(speakers)} speakers "
            f"({', '.join(speakers)}) x 10 digits, {len(dataset.examples)} clips; trained on "
            f"{len(dataset.examples) - known_clips} of them."
        ),
        group_noun="speaker",
        unseen=unseen,
        known=known,
        command=commands[SHIPPED_NAME] + "   # unseen speaker: the same with --split holdout "
        "--val-groups SPEAKER",
        notes=notes,
        sound=SOUND,
        training_sound=training_sound_of_dataset(
            dataset, int(meta["feature_config"]["sample_rate"])
        ),
    )


def refresh_card_sound() -> Path:
    """Add the kind of sound and what the training clips measured to the shipped card, without
    training again (for cards written before those fields existed)."""
    folder = paths.MODELS_DIR / SHIPPED_NAME
    card = read_model_card(folder)
    sound = training_sound_of_dataset(builtin_digits(), card.sample_rate)
    return write_model_card(replace(card, sound=SOUND, training_sound=sound), folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs/digits-model")
    parser.add_argument("--folds", default=",".join(SPEAKERS), help="speakers to hold out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="reuse finished runs by name")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time (1 thread each)")
    parser.add_argument("--no-ship", action="store_true", help="measure only; leave models/")
    parser.add_argument(
        "--refresh-card",
        action="store_true",
        help="only add the sound measures to the shipped card; train nothing",
    )
    args = parser.parse_args(argv)
    if args.refresh_card:
        print(f"updated {refresh_card_sound()}")
        return 0
    runs_dir = Path(args.runs_dir).resolve()
    store = RunStore(runs_dir)
    folds = [s for s in args.folds.split(",") if s]
    unknown = set(folds) - set(SPEAKERS)
    if unknown:
        parser.error(f"unknown speakers: {', '.join(sorted(unknown))}")
    runs = train_with_folds(
        store,
        SHIPPED_NAME,
        folds,
        lambda root, name, extra: train_command(root, name, args.seed, extra),
        reuse=args.reuse,
        jobs=args.jobs,
    )
    card = build_card(store, runs.shipped, runs.folds, runs.commands)
    print(json.dumps(card.to_dict(), indent=2))
    if not args.no_ship:
        print(f"shipped to {ship(store, runs.shipped, card, name=SHIPPED_NAME)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
