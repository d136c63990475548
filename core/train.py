"""The command line for training: `python -m core.train --data builtin:digits --epochs 20`.

It stays at `core/train.py` because `python -m core.train` is the command students and teachers
type (README, model cards, exported scripts, torchrun); it sits above every package of core, so
it may drive any of them. Under `torchrun --nproc_per_node=N -m core.train ...` every process
runs this same main() and the trainer joins them with DDP (core.training.ddp); rank 0 prints
and writes the run. The recipe (sample rate, mel bands, window, trimming, normalisation,
augmentation, start) is chosen from the measured data unless --no-auto-recipe is given
(core.data.profile; the spoken digits get exactly TrainConfig()). With `--workers N` it
instead submits one job to Ray (the embedded instance, or the cluster at
AUDIO_DL_RAY_ADDRESS): N Ray workers train with DDP (core.jobs.distributed) and this process
draws their progress from the job's files.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.audio.input_recipe import NORMALIZATION_MODES
from core.data.augment import AugmentConfig
from core.data.datasets import AudioDataset, DatasetError
from core.data.sources import load_dataset
from core.training.ddp import distributed_from_env
from core.training.trainer import OPTIMIZERS, SCHEDULES, TrainConfig, TrainEvent, train


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m core.train", description="Train an audio classifier and save it as a run."
    )
    p.add_argument(
        "--data",
        default=defaults.data,
        help="builtin:digits, a folder per class, a zip, esc50:PATH, urbansound8k:PATH, "
        "gtzan:PATH, speechcommands:PATH",
    )
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument(
        "--runs-dir", default=None, help="run store root (default: AUDIO_DL_RUNS_DIR or ./runs)"
    )
    p.add_argument("--model", default=defaults.model, help="preset name")
    p.add_argument(
        "--members",
        type=int,
        default=defaults.members,
        help="copies of the network trained side by side as an ensemble (1: one network)",
    )
    p.add_argument(
        "--spec", default=None, help="a ModelSpec JSON file to train instead of the preset"
    )
    p.add_argument(
        "--split",
        default=defaults.split,
        choices=("random", "stratified", "group", "holdout", "fold"),
    )
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument(
        "--val-groups",
        default="",
        help="comma-separated groups for --split holdout (e.g. a speaker)",
    )
    p.add_argument("--val-folds", default="", help="comma-separated folds for --split fold")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default: the recipe's; "
        f"{defaults.learning_rate:g} with --no-auto-recipe, the fine-tuning one with --start-from)",
    )
    p.add_argument("--optimizer", default=defaults.optimizer, choices=OPTIMIZERS)
    p.add_argument("--schedule", default=defaults.schedule, choices=SCHEDULES)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device)
    p.add_argument(
        "--normalization",
        default=None,
        choices=NORMALIZATION_MODES,
        help=f"default: the recipe's ({defaults.normalization} with --no-auto-recipe)",
    )
    p.add_argument(
        "--clip-seconds",
        type=float,
        default=None,
        help=f"default: the recipe's ({defaults.clip_seconds} with --no-auto-recipe)",
    )
    p.add_argument(
        "--auto-recipe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the data and choose sample rate, mel bands, clip length, trimming, "
        "normalisation, augmentation and the start from it (core.data.profile; printed with "
        "reasons; on by default); --clip-seconds, --normalization, --no-augment, --lr, "
        "--start-from and a network of your own (--model, --spec) still win. "
        "--no-auto-recipe: TrainConfig's fixed defaults (the spoken digits' recipe)",
    )
    p.add_argument(
        "--start-from",
        default=None,
        metavar="READY_MODEL",
        help="start from the weights of a ready model in models/ (e.g. instruments-cnn: "
        "transfer learning; its input settings are used) or 'none' for random weights "
        "(default: the recipe's choice; random with --no-auto-recipe)",
    )
    p.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    p.add_argument("--no-augment", action="store_true", help="switch every augmentation off")
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE projection at the end")
    p.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="train data-parallel (DDP) across this many Ray workers, one GPU each on a GPU: "
        "the embedded Ray of this machine, or the cluster at AUDIO_DL_RAY_ADDRESS; "
        "--batch-size is the global batch (leave at 1 under torchrun)",
    )
    p.add_argument("--name", default="", help="a label for the run")
    p.add_argument("--owner", default="cli")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the command-line flags describe."""
    return TrainConfig(
        data=args.data,
        epochs=args.epochs,
        model=args.model,
        split=args.split,
        val_fraction=args.val_fraction,
        val_groups=tuple(g.strip() for g in args.val_groups.split(",") if g.strip()),
        val_folds=tuple(int(f) for f in args.val_folds.split(",") if f.strip()),
        batch_size=args.batch_size,
        learning_rate=TrainConfig.learning_rate if args.lr is None else args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
        early_stopping_patience=args.patience,
        members=args.members,
        normalization=args.normalization or TrainConfig.normalization,
        clip_seconds=TrainConfig.clip_seconds if args.clip_seconds is None else args.clip_seconds,
        augment=AugmentConfig.off() if args.no_augment else AugmentConfig(),
        tsne=not args.no_tsne,
        workers=args.workers,
        name=args.name,
    )


def recipe_from_data(
    config: TrainConfig, args: argparse.Namespace, dataset: AudioDataset
) -> TrainConfig:
    """`config` with the recipe chosen from the data (the default; --no-auto-recipe turns it
    off); its reasons go to stderr.

    Flags the user gave explicitly (--clip-seconds, --normalization, --no-augment, --lr) win. A
    network the user named (--model, --spec) wins over the recipe's ready start, which would
    bring its own network: it trains from random weights unless --start-from says otherwise.
    """
    from core.data.profile import apply_recipe, recipe_for_dataset

    recipe = recipe_for_dataset(dataset)
    print(f"recipe for {recipe.kind}: {recipe.profile.summary()}", file=sys.stderr)
    for name, choice in recipe.choices().items():
        print(f"  {name}: {choice.reason}", file=sys.stderr)
    chosen = apply_recipe(config, recipe)
    own_network = args.spec is not None or args.model != TrainConfig.model
    if chosen.start_from and own_network:
        print(
            f"  start: random weights, for the network you named (not {chosen.start_from}'s; "
            f"--start-from {chosen.start_from} would use its network)",
            file=sys.stderr,
        )
        chosen = dataclasses.replace(chosen, start_from="", learning_rate=TrainConfig.learning_rate)
    explicit = {
        "clip_seconds": args.clip_seconds,
        "normalization": args.normalization,
        "augment": config.augment if args.no_augment else None,
        "learning_rate": args.lr,
    }
    return dataclasses.replace(chosen, **{k: v for k, v in explicit.items() if v is not None})


def start_from_flag(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """`config` starting from the ready model --start-from names, with that model's input and
    the fine-tuning learning rate (--clip-seconds and --lr given explicitly still win);
    --start-from none: random weights (and the from-scratch learning rate).

    Raises ValueError (core.training.transfer.StartError) with a sentence for an unknown name.
    """
    from core.training.transfer import load_ready_start, start_settings

    if args.start_from is None:
        return config
    if args.start_from.lower() in ("", "none", "random"):  # from-scratch learning rate too
        rate = TrainConfig.learning_rate if args.lr is None else args.lr
        return dataclasses.replace(config, start_from="", learning_rate=rate)
    settings = start_settings(load_ready_start(args.start_from))
    for name, given in (("clip_seconds", args.clip_seconds), ("learning_rate", args.lr)):
        if given is not None:
            settings[name] = given
    print(f"starting from the ready model {args.start_from}", file=sys.stderr)
    return dataclasses.replace(config, **settings)


def progress_bar(total_steps: int) -> tqdm:
    """The command line's progress bar on stderr: optimiser steps done of `total_steps`, with
    the latest epoch, loss, validation accuracy, samples/s and ETA after it (tqdm)."""
    return tqdm(total=total_steps, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)


def _show(bar: tqdm, event: TrainEvent) -> None:
    """Move the bar to `event`'s step; epoch ends and evaluations redraw it at once."""
    bar.set_postfix_str(_describe(event), refresh=False)
    if event.step > bar.n:
        bar.update(event.step - bar.n)  # tqdm redraws at most every 0.1 s
    if event.kind != "step":
        bar.refresh()


def _describe(event: TrainEvent) -> str:
    parts = [f"epoch {event.epoch}/{event.epochs}"]
    if event.loss is not None:
        parts.append(f"loss {event.loss:.3f}")
    if event.val_accuracy is not None:
        parts.append(f"val acc {event.val_accuracy:.3f}")
    parts.append(f"{event.samples_per_second:.0f} samples/s")
    if event.eta_seconds:
        parts.append(f"ETA {event.eta_seconds:.0f} s")
    return " · ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: train, show progress, write a run, print where it is. Exit 0 on success."""
    from core.models.spec import ModelSpec
    from core.training.ddp import shutdown_distributed
    from core.training.runs import RunStore

    args = _parse_args(argv)
    try:
        config = config_from_args(args)
        spec = (
            ModelSpec.from_json(Path(args.spec).read_text(encoding="utf-8")) if args.spec else None
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dataset = None
    if args.auto_recipe:
        try:
            dataset = load_dataset(config.data)
            config = recipe_from_data(config, args, dataset)
        except (DatasetError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        config = start_from_flag(config, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dist = distributed_from_env()
    store = RunStore(args.runs_dir)
    if config.workers > 1:
        if dist is not None:
            print(
                "error: --workers starts its own processes on Ray; under torchrun leave it out "
                "(torchrun's --nproc_per_node says how many).",
                file=sys.stderr,
            )
            return 2
        return _train_on_workers(config, dataset, spec, store, owner=args.owner)
    main_process = dist is None or dist.is_main
    try:
        events = train(config, dataset=dataset, spec=spec, store=store, owner=args.owner)
        final = _follow(events, show=main_process)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        shutdown_distributed()
    if final is None:
        return 1
    if main_process:
        _print_result(final, store)
    return 0 if final.kind == "finished" else 1


def _follow(events: Iterator[TrainEvent], *, show: bool = True) -> TrainEvent | None:
    """Consume a training's events (drawing the progress bar when `show`); the last one."""
    bar, final = None, None
    try:
        for event in events:
            final = event
            if not show:
                continue
            if event.kind == "started":
                info = event.info
                print(
                    f"{info['dataset']}: {info['train_examples']} training / "
                    f"{info['val_examples']} validation examples, {len(info['labels'])} classes, "
                    f"{info['parameters']} parameters, on {info['device']} (x{info['world_size']})",
                    file=sys.stderr,
                )
                bar = progress_bar(event.total_steps)
            elif bar is not None and event.kind in ("step", "epoch_end", "evaluation"):
                _show(bar, event)
    finally:
        if bar is not None:
            bar.close()
    return final


def _train_on_workers(
    config: TrainConfig, dataset: AudioDataset | None, spec: Any, store: Any, *, owner: str
) -> int:
    """--workers N: one data-parallel job on Ray workers, followed here until it ends."""
    from core.jobs.distributed import follow_job
    from core.jobs.manager import ClusterError, JobLimitReached, JobManager

    jobs = JobManager(store)
    print(f"starting {config.workers} workers on Ray...", file=sys.stderr)
    try:
        job_id = jobs.submit(config, owner=owner, dataset=dataset, spec=spec)
    except (ClusterError, JobLimitReached) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = jobs.status(job_id, owner)
    print(f"job {job_id}: {status.resources}, {status.state}", file=sys.stderr)
    try:
        final = _follow(follow_job(jobs, job_id, owner))
    except KeyboardInterrupt:
        jobs.cancel(job_id, owner)
        status = jobs.wait(job_id, owner, timeout=30)
        print(f"\ninterrupted: the job is {status.state}", file=sys.stderr)
        return 130
    status = jobs.status(job_id, owner)
    if final is None or not final.is_final:
        print(f"{status.state}: {status.message}", file=sys.stderr)
        return 1
    _print_result(final, store)
    return 0 if final.kind == "finished" else 1


def _print_result(final: TrainEvent, store: Any) -> None:
    print(f"{final.kind}: {final.message}", file=sys.stderr)
    if final.val_accuracy is not None:
        print(f"validation accuracy {final.val_accuracy:.4f}", file=sys.stderr)
    if final.run_id:
        print(f"run {final.run_id} in {store.root / final.run_id}")


if __name__ == "__main__":
    sys.exit(main())
