"""Render instrument notes, train the shipped instrument-family model with the recipe the data
chooses, measure it on a soundfont it never heard, ship it.

    python -m scripts.build_instruments_model [--runs-dir runs/instruments-model] [--reuse]
                                              [--jobs 2] [--epochs 20] [--members 1]

Steps (each training is the plain `python -m core.train ... --auto-recipe` command line,
printed as it runs, so the recipe is the one `core.data.profile` chooses from the notes):

1. Notes: six families (piano, guitar, strings, brass, reed, flute), four General MIDI
   programs each, 7 pitches x 3 velocities, rendered with fluidsynth through four
   soundfonts made apart (FluidR3, TimGM6mb, Csound's GMbank and MuseScore General Lite;
   core.data.render_notes.SOUNDFONTS), 2016 clips, cached under <cache>/rendered_notes/
   (core.data.render_notes.cached_notes).
2. The shipped model: all four soundfonts, a stratified split (20 % of each family held out,
   seed 0); its accuracy on those notes is "new notes of soundfonts it knows".
3. Leave-one-soundfont-out: trained on three soundfonts and scored on the fourth, once per
   soundfont. The mean is "a soundfont it never heard" (the case of a real instrument, or
   another synthesiser); each fold's per-family recall and the families the folds confused
   most go into the card's notes.
4. The shipped run folder is copied to models/instruments-cnn with its card.json (classes,
   rate, the kind of sound, what the training clips measured for the Classify page's "does
   not sound like" check) and models/instruments-cnn.spec.json.

Budget: one network (--members 1) for the engine's 20 epochs per training (the start a
fine-tuning copies is one network), so the five fit in about 15 minutes of an idle 2-core CPU
(--jobs 2; a crowded one takes several times that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from core import paths
from core.data.datasets import folder_per_class
from core.data.render_notes import SOUNDFONT_TITLES, SOUNDFONTS, cached_notes
from core.models.card import (
    Measurement,
    ModelCard,
    leave_one_group_out,
    read_model_card,
    training_sound_of_dataset,
    write_model_card,
)
from core.training.runs import RunStore
from scripts.model_build import (
    Extra,
    accuracy_and_clips,
    family_recall,
    ship,
    train_with_folds,
)

SHIPPED_NAME = "instruments-cnn"
SOUND = (
    "single instrument notes (piano, guitar, strings, brass, reed, flute), about 1.5 s each, "
    "rendered from General MIDI soundfonts"
)


def data_source(notes: Path) -> str:
    """The --data of the trainings: the notes' folder relative to the repository (the trainings
    run there), so the shipped config.json names no folder of the machine that built it."""
    return "folder:" + Path(os.path.relpath(notes.resolve(), paths.REPO_ROOT)).as_posix()


def train_command(
    runs_dir: Path, notes: Path, name: str, args: argparse.Namespace, extra: Extra
) -> list[str]:
    """The `python -m core.train` argument list of one training (recipe chosen from the data)."""
    return [
        sys.executable,
        "-m",
        "core.train",
        "--data",
        data_source(notes),
        "--auto-recipe",
        # random weights: the recipe would start notes from the shipped model itself, which
        # heard every soundfont (the folds' "never heard" would not hold)
        "--start-from",
        "none",
        "--no-tsne",
        "--owner",
        "shipped",
        "--seed",
        str(args.seed),
        "--epochs",
        str(args.epochs),
        "--members",
        str(args.members),
        "--runs-dir",
        str(runs_dir),
        "--name",
        name,
        *extra,
    ]


def most_confused(store: RunStore, run_ids, top: int = 3) -> str:
    """The `top` (true family, predicted family) pairs most often confused over these runs'
    validation notes, summed, as 'piano heard as guitar (41 notes), ...'."""
    counts: dict[tuple[str, str], int] = {}
    for run_id in run_ids:
        evaluation = store.read_summary(run_id)["evaluation"]
        labels = evaluation["labels"]
        for i, row in enumerate(evaluation["confusion"]):
            for j, count in enumerate(row):
                if i != j and count:
                    pair = (labels[i], labels[j])
                    counts[pair] = counts.get(pair, 0) + int(count)
    worst = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{a} heard as {b} ({n} notes)" for (a, b), n in worst) or "nothing"


def build_card(
    store: RunStore, notes: Path, shipped_id: str, fold_ids: dict[str, str], commands: dict
) -> ModelCard:
    """The card of the shipped run, from its own summary and the soundfont folds'."""
    meta = json.loads((store.run_path(shipped_id) / "model.json").read_text())
    config = store.get(shipped_id).train_config
    dataset = folder_per_class(notes, name="rendered notes")
    fonts = sorted({e.group for e in dataset.examples})
    known_accuracy, known_clips = accuracy_and_clips(store, shipped_id)
    known = Measurement(
        "New notes of soundfonts it knows",
        known_accuracy,
        known_clips,
        f"the shipped model itself, scored on the {known_clips} notes a stratified split "
        f"(20 % of each family, seed {config['seed']}) held out of its training; the same "
        f"soundfonts ({', '.join(SOUNDFONT_TITLES.get(f, f) for f in fonts)}) played its "
        "training notes.",
    )
    scores = {
        SOUNDFONT_TITLES.get(font, font): accuracy_and_clips(store, run_id)
        for font, run_id in fold_ids.items()
    }
    unseen = leave_one_group_out(
        "A soundfont it never heard",
        scores,
        groups_total=len(fonts),
        noun="soundfont",
        how=(
            f"leave-one-soundfont-out: the same recipe trained {len(scores)} times, each time "
            f"on the notes of {len(fonts) - 1} soundfont(s) and scored on the same notes played "
            f"by the one left out, which it never heard; the mean of the {len(scores)} folds."
        ),
    )
    notes_text = [
        f"Trained without {SOUNDFONT_TITLES.get(font, font)}, per family: "
        + ", ".join(f"{k} {v:.0%}" for k, v in family_recall(store, run_id).items())
        + "."
        for font, run_id in fold_ids.items()
    ]
    notes_text += [
        f"The folds learnt from {len(fonts) - 1} soundfont(s), the shipped model from "
        f"{len(fonts)}: a real instrument or another synthesiser may fare a little better than "
        "the unseen figure. Most often confused in the folds: "
        + most_confused(store, fold_ids.values())
        + ".",
        "MuseScore General borrows some of FluidR3 Mono's samples, so the folds scored on "
        "FluidR3 and on MuseScore each learnt part of what they were scored on; TimGM6mb's and "
        "the Csound bank's folds are the stricter figures.",
        f"Budget: {config['members']} network(s), {config['epochs']} epochs per training, on a "
        "shared 2-core CPU (scripts/build_instruments_model.py).",
    ]
    rate = int(meta["feature_config"]["sample_rate"])
    return ModelCard(
        name=SHIPPED_NAME,
        labels=tuple(meta["labels"]),
        sample_rate=rate,
        clip_seconds=float(config["clip_seconds"]),
        data="rendered notes (core.data.render_notes)",
        data_description=(
            f"{len(dataset.labels)} families x 4 General MIDI programs x 7 pitches (C3-C5) x 3 "
            f"velocities, rendered by fluidsynth with {len(fonts)} soundfonts "
            f"({', '.join(SOUNDFONT_TITLES.get(f, f) for f in fonts)}; licences in "
            f"data/ATTRIBUTION.md), {len(dataset.examples)} notes; trained on "
            f"{len(dataset.examples) - known_clips} of them."
        ),
        group_noun="soundfont",
        unseen=unseen,
        known=known,
        command=commands[SHIPPED_NAME] + "   # unseen soundfont: the same with --split "
        f"holdout --val-groups FONT ({', '.join(fonts)})",
        notes=tuple(notes_text),
        sound=SOUND,
        training_sound=training_sound_of_dataset(dataset, rate),
    )


def refresh_card_sound() -> Path:
    """Measure the training notes again into the shipped card (kind of sound and training
    sound), without training again."""
    folder = paths.MODELS_DIR / SHIPPED_NAME
    card = read_model_card(folder)
    dataset = folder_per_class(cached_notes(), name="rendered notes")
    sound = training_sound_of_dataset(dataset, card.sample_rate)
    return write_model_card(dataclasses.replace(card, sound=SOUND, training_sound=sound), folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs/instruments-model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse finished runs by name")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time (1 thread each)")
    parser.add_argument("--no-ship", action="store_true", help="measure only; leave models/")
    parser.add_argument(
        "--refresh-card",
        action="store_true",
        help="only measure the notes into the shipped card; train nothing",
    )
    args = parser.parse_args(argv)
    if args.refresh_card:
        print(f"updated {refresh_card_sound()}")
        return 0
    notes = cached_notes()
    store = RunStore(Path(args.runs_dir).resolve())
    runs = train_with_folds(
        store,
        SHIPPED_NAME,
        list(SOUNDFONTS),
        lambda root, name, extra: train_command(root, notes, name, args, extra),
        reuse=args.reuse,
        jobs=args.jobs,
    )
    card = build_card(store, notes, runs.shipped, runs.folds, runs.commands)
    print(json.dumps(card.to_dict(), indent=2))
    if not args.no_ship:
        print(f"shipped to {ship(store, runs.shipped, card, name=SHIPPED_NAME)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
