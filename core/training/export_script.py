"""A standalone Python script that trains a run again from the command line.

Choice: the script embeds the run's exact TrainConfig and network spec as JSON and calls
the project's own `core.training.trainer.train()` generator, instead of `python -m core.train` with
flags. The CLI exposes only the common options (no feature settings, augmentation
strengths, label smoothing or an edited network), so flags could not reproduce every run;
the JSON can, field for field. The script runs from the repository root:

    python train_<run>.py                  # same data, same settings, same seed
    python train_<run>.py --epochs 3 --device cpu --runs-dir /tmp/runs
    python train_<run>.py --dry-run        # check and print the settings, train nothing

Clips recorded in the browser never were files, so such a run's script asks for `--data`
(a folder with one sub-folder per class holding the exported clips).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SCRIPT_TEMPLATE = '''#!/usr/bin/env python
"""Train again: {title}

Written by Audio DL Studio's Train page for run {run_id}. It calls the project's
core.training.trainer.train() with the run's exact settings; run it from the repository root:

    python {file_name}                 # same data, settings and seed
    python {file_name} --epochs 3      # override a few options
    python {file_name} --dry-run       # print the settings, train nothing
"""

import argparse
import dataclasses
import json
import os
import sys

TRAIN_CONFIG = json.loads(r"""
{config_json}
""")
SPEC = json.loads(r"""
{spec_json}
""")
DATA = {data!r}  # None: recorded in the browser, pass --data
LIMIT_PER_CLASS = {limit_per_class!r}  # 0: every clip; n: a seeded draw of n clips per class


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help="data source (core.data.sources.load_dataset)")
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda:0, mps ...")
    parser.add_argument("--limit-per-class", type=int, default=LIMIT_PER_CLASS)
    parser.add_argument(
        "--runs-dir", default=None, help="run store (default AUDIO_DL_RUNS_DIR or ./runs)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check the settings and stop")
    parser.add_argument("--repo", default=".", help="the Audio DL Studio checkout (default: here)")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.repo))  # the project's core package

    from core.data.sources import load_dataset
    from core.models.spec import ModelSpec
    from core.training.runs import RunStore
    from core.training.trainer import TrainConfig, train
    from core.training.support import limit_per_class

    config = TrainConfig.from_dict(TRAIN_CONFIG)
    changes = {{"data": args.data or config.data}}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.device is not None:
        changes["device"] = args.device
    config = dataclasses.replace(config, **changes)
    spec = ModelSpec.from_dict(SPEC) if SPEC is not None else None
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    if not args.data:
        print(
            "error: this run trained on clips recorded in the browser; pass --data FOLDER",
            file=sys.stderr,
        )
        return 2
    # the same seeded draw the page made
    dataset = limit_per_class(load_dataset(config.data), args.limit_per_class, seed=0)
    store = RunStore(args.runs_dir)
    final = None
    for event in train(config, dataset=dataset, spec=spec, store=store, owner="script"):
        if event.kind in ("epoch_end", "evaluation") or event.is_final:
            shown = event.val_accuracy if event.kind != "epoch_end" else event.accuracy
            metric = "val acc" if event.kind != "epoch_end" else "acc"
            figure = "" if shown is None else f" {{metric}} {{shown:.3f}}"
            epoch = f"{{event.epoch}}/{{event.epochs}}"
            print(f"{{event.kind}} epoch {{epoch}}{{figure}} {{event.message}}".rstrip())
        final = event
    if final is not None and final.run_id:
        print(f"run {{final.run_id}} in {{store.root / final.run_id}}")
    return 0 if final is not None and final.kind == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def script_file_name(run_id: str) -> str:
    """A safe file name for the script of `run_id`."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in run_id)[:80]
    return f"train_{safe or 'run'}.py"


def training_script(
    train_config: Mapping[str, Any],
    spec: Mapping[str, Any] | None,
    *,
    run_id: str = "",
    name: str = "",
    data: str | None = None,
    limit_per_class: int = 0,
) -> str:
    """The text of a script that trains `train_config` (TrainConfig.to_dict()) again.

    spec: the run's network (ModelSpec.to_dict(), e.g. model.json's "spec") or None for the
    preset named in the config. data: the data source to load (default: the config's
    `data`); None or "" with recorded clips: the script requires --data. limit_per_class:
    the quick-run subset the page used (0 = all clips). The JSON is embedded verbatim, so
    `TrainConfig.from_dict` in the script rebuilds the same config.
    """
    source = data if data is not None else str(train_config.get("data") or "")
    config_json = json.dumps(dict(train_config), indent=2, sort_keys=True, allow_nan=False)
    spec_json = json.dumps(dict(spec) if spec is not None else None, indent=2)
    for text in (config_json, spec_json):
        if '"""' in text:  # cannot happen with json.dumps, but the template relies on it
            raise ValueError("settings contain a triple quote")
    title = (name or run_id or "a training run").replace('"', "'").replace("\n", " ")[:120]
    return SCRIPT_TEMPLATE.format(
        title=title,
        run_id=run_id or "(unsaved)",
        file_name=script_file_name(run_id),
        config_json=config_json,
        spec_json=spec_json,
        data=source or None,
        limit_per_class=int(limit_per_class),
    )
