"""The run store: every training run as a folder of JSON and safetensors, safe to share.

Layout of one run, `<root>/<run_id>/`:

    config.json        {"format", "run_id", "owner", "name", "created_utc", "train_config": {...}}
    metrics.jsonl      one JSON object per line, appended while training (step / epoch / eval)
    model.safetensors  the weights (tensors only: loading can never run code)
    model.json         {"spec": ModelSpec dict, "labels", "input_shape", and the input recipe
                        (core.audio.input_recipe.InputRecipeConfig.to_dict): "feature_config",
                        "feature_kind", "clip_frames", "normalization"}
    heartbeat          touched every second by the worker that trains it (empty file)
    summary.json       {"status": finished|stopped|failed|interrupted, "message", "metrics": {...},
                        "evaluation": {...}, "duration_seconds"}; absent while it runs

Every JSON and weight file is written atomically (temp file in the same folder, then
`os.replace`), so a crash or a kill leaves the previous version. A folder whose config.json
is missing or unreadable is reported by `scan()` as a `RunProblem` and skipped; it never
breaks `list_runs()`. Runs carry their owner (the browser session id) so students sharing
a server list only their own runs.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from core import paths
from core.audio.features import FeatureConfig
from core.audio.input_recipe import InputRecipe, InputRecipeConfig, Normalization
from core.files import to_jsonable, write_bytes_atomic, write_json_atomic
from core.models.spec import ModelSpec
from core.training.run_files import (  # noqa: F401  (re-exported: callers import them from here)
    ARCHIVE_MEMBERS,
    CARD_FILE,
    CONFIG_FILE,
    MAX_ARCHIVE_BYTES,
    METRICS_FILE,
    MODEL_FILE,
    MODEL_FORMAT,
    RUN_FORMAT,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    RunError,
    model_from_files,
    parse_member,
    read_archive,
)

RUNNING_GRACE_SECONDS = 600  # a run without summary whose metrics moved this recently is "running"
# A worker (core.jobs.files.Heartbeat) touches <run>/heartbeat every second while it trains:
# such a run is "running" while the file is fresh and "interrupted" once it is older than
# this (the worker was killed), instead of waiting RUNNING_GRACE_SECONDS.
HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_STALE_SECONDS = 8.0
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class RunInfo:
    """What the listing shows about one run (no weights loaded).

    status: "finished", "stopped", "failed", "interrupted" (from summary.json), "running"
    (no summary yet and a fresh worker heartbeat, or without one metrics written in the last
    10 minutes) or "interrupted" (no summary, stale).
    metrics: the final figures from the summary (e.g. val_accuracy), empty while running.
    """

    run_id: str
    path: Path
    owner: str
    name: str
    created_utc: str
    status: str
    has_model: bool
    train_config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    # a sweep's trial: {"id", "name", "trial" (0-based), "trials", "values"} (core.jobs.sweeps)
    sweep: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunProblem:
    """A folder under the root that is not a readable run, and why."""

    run_id: str
    path: Path
    reason: str


@dataclass
class LoadedRun:
    """A run ready to classify with: the model in eval mode plus everything to feed it.

    `recipe` is its InputRecipe (built on first use, then kept); feature_config,
    feature_kind, clip_frames and normalization are the recipe's parts as saved.
    normalization: {"mode": "utterance"} (per clip, per mel band), {"mode": "global",
    "mean": [..n_mels..], "std": [...]} (training-split statistics) or {"mode": "none"},
    with "trim_db".
    """

    info: RunInfo
    model: nn.Module
    spec: ModelSpec
    labels: tuple[str, ...]
    feature_config: FeatureConfig
    feature_kind: str
    clip_frames: int
    normalization: dict[str, Any]
    model_meta: dict[str, Any]
    summary: dict[str, Any]

    @cached_property
    def recipe(self) -> InputRecipe:
        """The waveform-to-input recipe the run was trained with (read-only; on the CPU)."""
        return InputRecipe.from_run(self)


def _now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a metrics file; a torn last line (a kill) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class RunStore:
    """Runs under one root folder (default core.paths.runs_dir()).

    Thread-safe for different runs; one run is written by one training at a time.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else paths.runs_dir()

    # ----------------------------------------------------------------- writing

    def run_path(self, run_id: str) -> Path:
        """The folder of `run_id`; RunError for an id that could escape the root."""
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise RunError(f"{run_id!r} is not a run id.")
        return self.root / run_id

    def create_run(
        self,
        train_config: Any,
        *,
        owner: str = "",
        name: str = "",
        sweep: Mapping[str, Any] | None = None,
    ) -> str:
        """Make a new run folder with its config.json; return the run id.

        train_config: the TrainConfig (any dataclass or dict), stored as JSON.
        owner: the session id that may see it; name: a label chosen by the student.
        sweep: for a sweep's trial, its record (core.jobs.sweeps), read back as RunInfo.sweep.
        """
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        path = self.run_path(run_id)
        path.mkdir(parents=True, exist_ok=False)
        config = {
            "format": RUN_FORMAT,
            "run_id": run_id,
            "owner": str(owner),
            "name": str(name)[:200],
            "created_utc": _now_utc(),
            "train_config": to_jsonable(train_config),
        }
        if sweep:
            config["sweep"] = to_jsonable(dict(sweep))
        write_json_atomic(path / CONFIG_FILE, config)
        return run_id

    def append_metrics(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records (one JSON line each) to metrics.jsonl.

        Appending is not atomic, but a torn last line is skipped when reading, so a kill
        loses at most the line being written.
        """
        lines = "".join(json.dumps(to_jsonable(dict(r)), allow_nan=False) + "\n" for r in records)
        if lines:
            with (self.run_path(run_id) / METRICS_FILE).open("a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()

    def save_model(
        self,
        run_id: str,
        model: nn.Module,
        *,
        spec: ModelSpec,
        labels: Iterable[str],
        recipe: InputRecipeConfig | InputRecipe | None = None,
        feature_config: FeatureConfig | None = None,
        feature_kind: str | None = None,
        clip_frames: int | None = None,
        normalization: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Write model.safetensors and model.json (weights first, both atomic).

        model: the trained network (a DDP wrapper is unwrapped); its state_dict is saved
        on the CPU. spec: its ModelSpec; labels: class names in output order. recipe: its
        input recipe (an InputRecipeConfig or InputRecipe); or, as before, the four parts
        feature_config, feature_kind, clip_frames and normalization (a dict).
        """
        if recipe is None:
            recipe = InputRecipeConfig(
                feature_config, feature_kind, clip_frames, Normalization.from_dict(normalization)
            )
        elif isinstance(recipe, InputRecipe):
            recipe = recipe.config
        model = getattr(model, "module", model)
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        path = self.run_path(run_id)
        write_bytes_atomic(path / WEIGHTS_FILE, save(state))
        meta = {
            "format": MODEL_FORMAT,
            "spec": spec.to_dict(),
            "labels": list(labels),
            **recipe.to_dict(),
            "input_shape": list(spec.input_shape),
            **to_jsonable(dict(extra or {})),
        }
        write_json_atomic(path / MODEL_FILE, meta)

    def finish(self, run_id: str, status: str, *, message: str = "", **summary: Any) -> None:
        """Write summary.json: the run is over with `status` (finished, stopped, failed)."""
        record = {"status": status, "message": message, "finished_utc": _now_utc(), **summary}
        write_json_atomic(self.run_path(run_id) / SUMMARY_FILE, record)

    def mark_interrupted(self, run_id: str, message: str) -> bool:
        """Write summary.json with status "interrupted" unless the run already has one.

        For a run whose worker died (kill -9, a node lost): its config, metrics and any
        weights saved so far stay. Returns True when the summary was written.
        """
        path = self.run_path(run_id)
        if not path.is_dir() or (path / SUMMARY_FILE).exists():
            return False
        self.finish(run_id, "interrupted", message=message)
        return True

    # ----------------------------------------------------------------- reading

    def scan(self, owner: str | None = None) -> tuple[list[RunInfo], list[RunProblem]]:
        """All readable runs (newest first) and the folders that are not, with reasons.

        owner: only runs of this owner (None: everyone's, e.g. for a teacher or the CLI).
        """
        runs, problems = [], []
        if not self.root.is_dir():
            return runs, problems
        for path in sorted(self.root.iterdir(), reverse=True):
            if not path.is_dir() or path.name.startswith(".") or not _RUN_ID.match(path.name):
                continue
            try:
                info = self._info(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems.append(RunProblem(path.name, path, _problem_reason(path, error)))
                continue
            if owner is None or info.owner == owner:
                runs.append(info)
        runs.sort(key=lambda r: (r.created_utc, r.run_id), reverse=True)
        return runs, problems

    def list_runs(self, owner: str | None = None) -> list[RunInfo]:
        """Readable runs of `owner` (None: all), newest first; broken folders are skipped."""
        return self.scan(owner)[0]

    def get(self, run_id: str, owner: str | None = None) -> RunInfo:
        """The RunInfo of one run; RunError when it is missing, broken or not `owner`'s."""
        path = self.run_path(run_id)
        if not path.is_dir():
            raise RunError(f"There is no run {run_id}.")
        try:
            info = self._info(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"Run {run_id} cannot be read: {_problem_reason(path, error)}") from None
        if owner is not None and info.owner != owner:
            raise RunError(f"There is no run {run_id}.")  # do not reveal other students' runs
        return info

    def _info(self, path: Path) -> RunInfo:
        config = _read_json(path / CONFIG_FILE)
        if config.get("format") != RUN_FORMAT:
            raise ValueError("config.json is not a run config")
        summary_path = path / SUMMARY_FILE
        summary: dict[str, Any] = {}
        if summary_path.exists():
            summary = _read_json(summary_path)
            status = str(summary.get("status", "finished"))
        elif (path / HEARTBEAT_FILE).exists():
            age = time.time() - (path / HEARTBEAT_FILE).stat().st_mtime
            status = "running" if age < HEARTBEAT_STALE_SECONDS else "interrupted"
        else:
            metrics = path / METRICS_FILE
            last = (metrics if metrics.exists() else path / CONFIG_FILE).stat().st_mtime
            status = "running" if time.time() - last < RUNNING_GRACE_SECONDS else "interrupted"
        return RunInfo(
            run_id=path.name,
            path=path,
            owner=str(config.get("owner", "")),
            name=str(config.get("name", "")),
            created_utc=str(config.get("created_utc", "")),
            status=status,
            has_model=(path / WEIGHTS_FILE).exists() and (path / MODEL_FILE).exists(),
            train_config=dict(config.get("train_config") or {}),
            metrics=dict(summary.get("metrics") or {}),
            message=str(summary.get("message", "")),
            sweep=config["sweep"] if isinstance(config.get("sweep"), dict) else {},
        )

    def read_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """The metric records of a run in the order they were written."""
        return read_metrics_file(self.run_path(run_id) / METRICS_FILE)

    def read_summary(self, run_id: str) -> dict[str, Any]:
        """summary.json of a run ({} while it runs)."""
        path = self.run_path(run_id) / SUMMARY_FILE
        return _read_json(path) if path.exists() else {}

    def load(
        self, run_id: str, *, owner: str | None = None, device: torch.device | str = "cpu"
    ) -> LoadedRun:
        """The trained model of a run, in eval mode on `device`, with its labels and features.

        Raises RunError when the run has no model yet or its files do not match.
        """
        info = self.get(run_id, owner)
        if not info.has_model:
            raise RunError(f"Run {run_id} has no saved model (status: {info.status}).")
        try:
            meta = _read_json(info.path / MODEL_FILE)
            weights = (info.path / WEIGHTS_FILE).read_bytes()
        except (OSError, ValueError) as error:
            raise RunError(f"Run {run_id}'s model files cannot be read ({error}).") from None
        model, spec = model_from_files(meta, weights)
        try:  # every model.json this app wrote: missing later keys get their old meaning
            recipe = InputRecipeConfig.from_dict(meta, default_clip_frames=spec.input_shape[-1])
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"Run {run_id}'s input recipe cannot be read ({error}).") from None
        return LoadedRun(
            info=info,
            model=model.to(device).eval(),
            spec=spec,
            labels=tuple(str(label) for label in meta["labels"]),
            feature_config=recipe.features,
            feature_kind=recipe.kind,
            clip_frames=recipe.clip_frames,
            normalization=dict(meta.get("normalization") or {"mode": "none"}),
            model_meta=meta,
            summary=self.read_summary(run_id),
        )

    def delete(self, run_id: str, *, owner: str | None = None) -> None:
        """Remove a run folder (only the owner's when `owner` is given)."""
        path = self.run_path(run_id)
        if owner is not None:
            self.get(run_id, owner)
        if not path.is_dir():
            raise RunError(f"There is no run {run_id}.")
        # Rename first so a half-deleted run never looks like a broken one in the listing.
        trash = self.root / f".deleting-{run_id}-{secrets.token_hex(3)}"
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def compare(self, run_ids: Iterable[str], *, owner: str | None = None) -> list[dict[str, Any]]:
        """One row per run: id, name, status, final metrics and the settings that differ.

        The row's "differs" maps each training setting whose value is not the same in every
        compared run to this run's value (e.g. {"lr": 0.01, "epochs": 20}).
        """
        infos = [self.get(r, owner) for r in run_ids]
        flat = [_flatten(i.train_config) for i in infos]
        keys = sorted({k for f in flat for k in f})
        differing = [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]
        return [
            {
                "run_id": i.run_id,
                "name": i.name,
                "status": i.status,
                **{k: v for k, v in i.metrics.items() if isinstance(v, (int, float, str))},
                "differs": {k: f.get(k) for k in differing},
            }
            for i, f in zip(infos, flat, strict=True)
        ]

    # ----------------------------------------------------------------- archives

    def export_archive(self, run_id: str, *, owner: str | None = None) -> bytes:
        """A zip of the run's JSON files and weights (no pickle), to download or share."""
        info = self.get(run_id, owner)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in ARCHIVE_MEMBERS:
                if (info.path / member).exists():
                    archive.write(info.path / member, member)
        return buffer.getvalue()

    def import_archive(self, data: bytes, *, owner: str = "") -> str:
        """Add a run from an `export_archive` zip; return its new run id.

        Only the known run files are accepted (no folders, no pickle), their total size
        is capped, the weights must be safetensors matching the spec's shapes. Raises
        RunError with the reason otherwise; nothing is written then.
        """
        members = read_archive(data)
        meta = parse_member(members, MODEL_FILE)
        config = parse_member(members, CONFIG_FILE)
        model_from_files(meta, members[WEIGHTS_FILE])  # validates weights against the spec
        for optional in (SUMMARY_FILE, CARD_FILE):
            if optional in members:
                parse_member(members, optional)
        run_id = self.create_run(
            config.get("train_config") or {}, owner=owner, name=str(config.get("name", "imported"))
        )
        path = self.run_path(run_id)
        for name in (WEIGHTS_FILE, MODEL_FILE, METRICS_FILE, SUMMARY_FILE, CARD_FILE):
            if name in members:
                write_bytes_atomic(path / name, members[name])
        if SUMMARY_FILE not in members:
            self.finish(run_id, "finished", message="imported")
        return run_id

    def export_tensorboard(self, run_id: str, log_dir: str | Path | None = None) -> Path:
        """Write the run's metrics as TensorBoard scalars; return the log folder.

        Default folder: `<run>/tensorboard`. View with `tensorboard --logdir <folder>`.
        """
        # Lazy: tensorboard is slow to import and optional (only the TensorBoard log).
        from torch.utils.tensorboard import SummaryWriter

        path = self.run_path(run_id)
        log_dir = Path(log_dir) if log_dir is not None else path / "tensorboard"
        with SummaryWriter(str(log_dir)) as writer:
            for record in self.read_metrics(run_id):
                step = int(record.get("global_step", record.get("step", 0)) or 0)
                kind = record.get("kind", "metric")
                for key, value in record.items():
                    if (
                        isinstance(value, (int, float))
                        and not isinstance(value, bool)
                        and key not in ("step", "global_step", "epoch")
                    ):
                        writer.add_scalar(f"{kind}/{key}", value, step)
        return log_dir


def _problem_reason(path: Path, error: BaseException) -> str:
    if not (path / CONFIG_FILE).exists():
        return "no config.json (the run was interrupted while being created)"
    if isinstance(error, json.JSONDecodeError):
        return f"a damaged JSON file ({error.msg})"
    return f"{type(error).__name__}: {error}"


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(_flatten(item, name + "."))
        else:
            flat[name] = item
    return flat
