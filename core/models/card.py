"""Model cards: what a trained classifier knows and how well it does, measured honestly.

A classifier's validation accuracy answers one question: how often it is right on the kind
of clips it was validated on. For spoken digits there are two very different questions:

- **new takes of speakers it knows**: clips held out at random, whose speakers also
  recorded the training clips (a stratified split). Easy: the voice, the microphone and the
  room are familiar.
- **a speaker it never heard**: every clip of one speaker held out of training (a holdout
  split), which is the case of a student recording their own voice. Much harder.

A card states both, with how each was measured, beside the model's classes, sample rate,
clip length and training data. Ready-made models ship one as `card.json` in their run folder
(written by `scripts/build_digits_model.py`, which trains the model and the
leave-one-speaker-out folds that measure it). For a student's own run the card is derived
from the run's `config.json`, `model.json` and `summary.json`: its split says which of the
two questions its validation accuracy answers; the other is "not measured", with how to
measure it.

Cards are read as hostile input (a run archive or a models/ folder may hold anything): any
problem raises `ModelCardError` with a sentence for the student, never a traceback.

Why one module of about 600 lines: reading, deriving and checking a model card belong together.
The last third is the parser's rules for an untrusted card.json (types, ranges, lengths), kept
beside the dataclasses they check so that a new field gets its rule in the same edit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data.datasets import load_example_audio
from core.files import write_json_atomic

CARD_FILE = "card.json"
CARD_FORMAT = "audio-dl-studio/model-card"
MAX_CARD_BYTES = 64 * 1024  # a card is a few hundred bytes; anything this large is not one
MAX_TEXT = 600  # characters kept of any free-text field
MAX_LABELS = 1000
MAX_GROUPS = 200


class ModelCardError(ValueError):
    """A model card that is missing, unreadable or does not fit its model; str() is a sentence."""


@dataclass(frozen=True)
class Measurement:
    """One accuracy figure and how it was measured.

    title: what it answers, for the page ("A speaker it never heard").
    accuracy: share of clips named right, 0..1 (the mean over folds when there are folds).
    clips: clips scored in all. how: one sentence on the method.
    per_group: accuracy per held-out group (e.g. per unseen speaker), may be empty.
    folds_measured / folds_total: for leave-one-group-out, how many of the possible folds
    were trained and scored (0 / 0 when there were no folds).
    """

    title: str
    accuracy: float
    clips: int
    how: str
    per_group: Mapping[str, float] = field(default_factory=dict)
    folds_measured: int = 0
    folds_total: int = 0


@dataclass(frozen=True)
class MeasureRange:
    """How one measure of the training clips spread: low and high are the 2.5th and 97.5th
    percentiles (95 % of the clips lie between), median the 50th."""

    low: float
    median: float
    high: float


@dataclass(frozen=True)
class TrainingSound:
    """What the training clips sounded like, to notice a clip unlike them (core.data.profile
    .measure_sound at the model's sample rate; seconds, dB per 10 ms, Hz)."""

    clips: int  # clips measured
    sounding_seconds: MeasureRange
    change_db: MeasureRange
    bandwidth_hz: MeasureRange


# A clip counts as unlike the training clips when a measure lies this many times beyond their
# range (below low / factor or above high * factor): wide enough that held-out clips of the
# same kind pass (tested on unheard speakers and an unheard soundfont), narrow enough that a
# word is not taken for a note or a note for a word.
UNLIKE_FACTOR = 1.5
UNLIKE_CHECK_SECONDS = 30.0  # of a clip measured by unlike_training


@dataclass(frozen=True)
class ModelCard:
    """What a model knows and how well it does.

    labels: class names in output order. sample_rate: Hz of its features. clip_seconds:
    audio per example. data: the training data source (e.g. "builtin:digits");
    data_description: a sentence about it. group_noun: what a group of the data is
    ("speaker", "recording"). unseen: accuracy on a group held out of training, or None with
    `unseen_missing` saying why. known: accuracy on new clips of groups seen in training, or
    None with `known_missing`. command: how the model was trained (may be ""). source:
    "card" (a card.json written with the model) or "summary" (derived from the run's files).
    sound: the kind of sound it knows, in words. training_sound: what its training clips
    measured (`unlike_training` compares a clip with it), None when not measured.
    """

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    clip_seconds: float
    data: str
    data_description: str = ""
    group_noun: str = "speaker"
    unseen: Measurement | None = None
    known: Measurement | None = None
    unseen_missing: str = ""
    known_missing: str = ""
    command: str = ""
    notes: tuple[str, ...] = ()
    source: str = "card"
    sound: str = ""  # the kind of sound it knows, in words ("spoken digits, one word per clip")
    training_sound: TrainingSound | None = None  # None: not measured (no clip check)

    def to_dict(self) -> dict[str, Any]:
        """The card.json content (format tag first)."""
        record = {"format": CARD_FORMAT, **asdict(self)}
        record.pop("source")
        record["labels"] = list(self.labels)
        record["notes"] = list(self.notes)
        return record


# --------------------------------------------------------------------------- reading


def read_model_card(run_dir: str | Path) -> ModelCard:
    """The card of the run folder `run_dir`: its card.json, else derived from its summary.

    card.json (if present) must be a card of this model: same classes and sample rate as
    model.json. Without it, the card is derived from config.json + model.json + summary.json
    (`card_from_run`). Raises ModelCardError with a sentence when neither can be read.
    """
    run_dir = Path(run_dir)
    meta = _read_object(run_dir / "model.json", "The model's description (model.json)")
    path = run_dir / CARD_FILE
    if path.exists():
        card = parse_model_card(_read_text(path, "The model card (card.json)"))
        labels = tuple(str(label) for label in meta.get("labels") or ())
        if labels and card.labels != labels:
            raise ModelCardError(
                "The model card (card.json) lists other classes than the model "
                f"({', '.join(card.labels[:5])}... against {', '.join(labels[:5])}...): it "
                "belongs to another model, so its figures are not shown."
            )
        rate = _feature_rate(meta)
        if rate and card.sample_rate != rate:
            raise ModelCardError(
                f"The model card (card.json) says {card.sample_rate} Hz but the model computes "
                f"its features at {rate} Hz: it belongs to another model, so its figures are "
                "not shown."
            )
        return card
    config = _read_object(run_dir / "config.json", "The run's settings (config.json)")
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        raise ModelCardError(
            "This run has no summary yet (it is still training, or it was interrupted), so "
            "there is no measured accuracy to show."
        )
    summary = _read_object(summary_path, "The run's summary (summary.json)")
    name = str(config.get("name") or run_dir.name)[:MAX_TEXT]
    return card_from_run(config.get("train_config") or {}, summary, meta, name=name)


def parse_model_card(text: str) -> ModelCard:
    """A ModelCard from card.json text; ModelCardError with a sentence when it is not one."""
    if len(text) > MAX_CARD_BYTES:
        raise ModelCardError(
            f"The model card (card.json) is {len(text) // 1024} KB; a card is a few hundred "
            "bytes, so this file is not one."
        )
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelCardError(
            f"The model card (card.json) is not valid JSON (line {error.lineno})."
        ) from None
    if not isinstance(record, dict):
        raise ModelCardError("The model card (card.json) is not a JSON object.")
    if record.get("format") != CARD_FORMAT:
        raise ModelCardError(
            f"The file card.json is not a model card (its format is {record.get('format')!r}, "
            f"expected {CARD_FORMAT!r})."
        )
    labels = record.get("labels")
    if (
        not isinstance(labels, list)
        or not 0 < len(labels) <= MAX_LABELS
        or not all(isinstance(x, str | int) for x in labels)
    ):
        raise ModelCardError("The model card (card.json) has no readable list of classes.")
    return ModelCard(
        name=_text(record.get("name"), "name"),
        labels=tuple(str(x)[:MAX_TEXT] for x in labels),
        sample_rate=_number(record.get("sample_rate"), "sample_rate", int, 1, 1_000_000),
        clip_seconds=_number(record.get("clip_seconds"), "clip_seconds", float, 0.001, 3600),
        data=_text(record.get("data"), "data"),
        data_description=_text(record.get("data_description", ""), "data_description"),
        group_noun=_text(record.get("group_noun", "speaker"), "group_noun")[:40] or "group",
        unseen=_measurement(record.get("unseen"), "unseen"),
        known=_measurement(record.get("known"), "known"),
        unseen_missing=_text(record.get("unseen_missing", ""), "unseen_missing"),
        known_missing=_text(record.get("known_missing", ""), "known_missing"),
        command=_text(record.get("command", ""), "command", limit=2 * MAX_TEXT),
        notes=tuple(_text(n, "notes") for n in _list(record.get("notes", []), "notes")[:20]),
        source="card",
        sound=_text(record.get("sound", ""), "sound"),
        training_sound=_training_sound(record.get("training_sound")),
    )


# --------------------------------------------------------------------------- deriving


GROUP_NOUNS = {"builtin:digits": "speaker", "speechcommands": "speaker"}


def group_noun_for(data: str) -> str:
    """What one group of a dataset is: "speaker" for the digits and Speech Commands."""
    data = str(data)
    for prefix, noun in GROUP_NOUNS.items():
        if data == prefix or data.startswith(prefix + ":"):
            return noun
    return "recording"


def titles_for(noun: str) -> tuple[str, str]:
    """(unseen title, known title) for the page, e.g. "A speaker it never heard"."""
    if noun == "speaker":
        return "A speaker it never heard", "New takes of speakers it knows"
    return f"A {noun} it never heard", f"New clips of {noun}s it trained on"


def card_from_run(
    train_config: Mapping[str, Any],
    summary: Mapping[str, Any],
    model_meta: Mapping[str, Any],
    *,
    name: str = "",
) -> ModelCard:
    """Derive a card from a run's saved settings, model description and summary.

    The validation accuracy counts as "unseen" when the split kept whole groups out of
    training (holdout, group, or official folds, which keep each source in one fold) and as
    "known" for random and stratified splits (the same speakers on both sides). The other
    figure is None with a sentence saying how to measure it.
    """
    if not isinstance(train_config, Mapping) or not isinstance(summary, Mapping):
        raise ModelCardError("The run's settings or summary are not readable JSON objects.")
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), Mapping) else {}
    accuracy = metrics.get("val_accuracy")
    if not _is_share(accuracy):
        status = str(summary.get("status", "unknown"))[:40]
        raise ModelCardError(
            f"This run ended {status} without a measured validation accuracy, so there is "
            "nothing to report about how well it does."
        )
    evaluation = summary.get("evaluation") if isinstance(summary.get("evaluation"), Mapping) else {}
    true = evaluation.get("true")
    clips = len(true) if isinstance(true, list) else 0
    data = str(train_config.get("data", "") or "unknown data")[:MAX_TEXT]
    noun = group_noun_for(data)
    unseen_title, known_title = titles_for(noun)
    split = str(train_config.get("split", ""))
    groups = [str(g) for g in _list_or_empty(train_config.get("val_groups"))][:MAX_GROUPS]
    folds = [str(f) for f in _list_or_empty(train_config.get("val_folds"))][:MAX_GROUPS]
    share = float(accuracy)
    fraction = train_config.get("val_fraction")
    percent = f"{fraction:.0%} " if _is_share(fraction) else ""
    unseen = known = None
    unseen_missing = known_missing = ""
    if split == "holdout" and groups:
        unseen = Measurement(
            unseen_title,
            share,
            clips,
            f"every clip of {_names(groups)} was held out of training and scored at the end "
            f"({noun} held out: {len(groups)}).",
            per_group={groups[0]: share} if len(groups) == 1 else {},
        )
    elif split == "group":
        unseen = Measurement(
            unseen_title,
            share,
            clips,
            f"whole {noun}s (about {percent}of the clips) were held out of training by a "
            "group split and scored at the end.",
        )
    elif split == "fold":
        unseen = Measurement(
            unseen_title,
            share,
            clips,
            f"the dataset's official fold(s) {_names(folds)} were held out of training (the "
            "folds keep each source recording on one side).",
        )
    else:
        known = Measurement(
            known_title,
            share,
            clips,
            f"a {split or 'random'} {percent}of the clips was held out of training; their "
            f"{noun}s also recorded training clips.",
        )
    if unseen is None:
        unseen_missing = (
            f"Not measured: this run's validation clips come from {noun}s it also trained on. "
            f"To measure it, train again with the split 'holdout' and one {noun} as the "
            "validation group."
        )
    if known is None:
        known_missing = (
            f"Not measured: this run kept whole {noun}s out of training. To measure it, "
            "train again with a stratified split."
        )
    rate = _feature_rate(model_meta)
    clip_seconds = train_config.get("clip_seconds")
    labels = tuple(str(x)[:MAX_TEXT] for x in _list_or_empty(model_meta.get("labels")))
    return ModelCard(
        name=name[:MAX_TEXT],
        labels=labels[:MAX_LABELS],
        sample_rate=rate or 0,
        clip_seconds=float(clip_seconds) if _is_number(clip_seconds) else 0.0,
        data=data,
        group_noun=noun,
        unseen=unseen,
        known=known,
        unseen_missing=unseen_missing,
        known_missing=known_missing,
        source="summary",
    )


def leave_one_group_out(
    name: str,
    scores: Mapping[str, tuple[float, int]],
    *,
    groups_total: int,
    noun: str = "speaker",
    how: str = "",
) -> Measurement:
    """The "unseen" measurement from leave-one-group-out folds.

    scores: {held-out group: (accuracy 0..1, clips scored)}, one entry per fold trained.
    The figure is the mean of the folds' accuracies (each group counts once, whatever its
    number of clips). groups_total: folds possible (groups in the data), so a card says
    when only some were measured.
    """
    if not scores:
        raise ModelCardError("No leave-one-out fold was measured.")
    for group, (accuracy, _clips) in scores.items():
        if not _is_share(accuracy):
            raise ModelCardError(f"The fold without {group} has no accuracy between 0 and 1.")
    mean = sum(a for a, _ in scores.values()) / len(scores)
    clips = sum(int(c) for _, c in scores.values())
    default_how = (
        f"leave-one-{noun}-out: the same recipe trained {len(scores)} times, each time with "
        f"every clip of one {noun} held out, and scored on that {noun}; the mean of the "
        f"{len(scores)} folds ({groups_total} possible)."
    )
    return Measurement(
        name or titles_for(noun)[0],
        mean,
        clips,
        how or default_how,
        per_group={g: float(a) for g, (a, _) in scores.items()},
        folds_measured=len(scores),
        folds_total=groups_total,
    )


def measure_training_sound(clips: Iterable[np.ndarray], sample_rate: int) -> TrainingSound:
    """The spread of `measure_sound` over training clips (each (n,) float32 at sample_rate Hz,
    the model's rate). Raises ModelCardError when no clip has any sound."""
    # Lazy: core.data.profile brings scipy.signal (~600 modules); Network only reads cards.
    from core.data.profile import measure_sound

    measures = [measure_sound(clip, sample_rate) for clip in clips]
    measures = [m for m in measures if m.sounding_seconds > 0]
    if not measures:
        raise ModelCardError("None of the training clips had any sound to measure.")

    def spread(name: str) -> MeasureRange:
        values = np.array([getattr(m, name) for m in measures], dtype=np.float64)
        low, median, high = np.percentile(values, [2.5, 50, 97.5])
        return MeasureRange(round(float(low), 4), round(float(median), 4), round(float(high), 4))

    return TrainingSound(
        clips=len(measures),
        sounding_seconds=spread("sounding_seconds"),
        change_db=spread("change_db"),
        bandwidth_hz=spread("bandwidth_hz"),
    )


def training_sound_of_dataset(
    dataset, sample_rate: int, *, max_clips: int = 240, seed: int = 0
) -> TrainingSound:
    """measure_training_sound over a seeded sample of a data set, taken in turn from each class
    (core.data.profile.sample_examples), decoded at the model's `sample_rate`."""
    # Lazy: core.data.profile brings scipy.signal (~600 modules); Network only reads cards.
    from core.data.profile import sample_examples

    examples = sample_examples(dataset, max_clips, seed)
    return measure_training_sound(
        (load_example_audio(dataset, example, sample_rate) for example in examples), sample_rate
    )


def unlike_training(
    sound: TrainingSound, samples: np.ndarray, sample_rate: int, *, window_seconds: float = 0.0
) -> list[str]:
    """Sentences saying how a clip differs from the model's training clips ([] when it does not).

    samples: (n,) float32 at sample_rate, the model's own rate (the page decodes clips to it).
    A measure differs when it lies beyond UNLIKE_FACTOR times the training range. A clip much
    longer than the model's window (over twice window_seconds) is classified window by window,
    so its sounding length is not compared; only its first UNLIKE_CHECK_SECONDS are measured;
    a silent clip is left to the silence checks.
    """
    # Lazy: core.data.profile brings scipy.signal (~600 modules); Network only reads cards.
    from core.data.profile import measure_sound

    whole = window_seconds <= 0 or len(samples) / sample_rate <= 2 * window_seconds
    # The first UNLIKE_CHECK_SECONDS tell the kind of sound; a 10-minute file need not be
    # measured whole on every rerun of the page.
    clip = measure_sound(samples[: int(UNLIKE_CHECK_SECONDS * sample_rate)], sample_rate)
    if clip.sounding_seconds <= 0:
        return []
    found = []
    low, high = sound.sounding_seconds.low, sound.sounding_seconds.high
    if clip.sounding_seconds < low / UNLIKE_FACTOR or (
        whole and clip.sounding_seconds > high * UNLIKE_FACTOR
    ):
        found.append(
            f"it sounds for {clip.sounding_seconds:.2f} s, while the model's training sounds "
            f"lasted {low:.2f}-{high:.2f} s"
        )
    low, high = sound.change_db.low, sound.change_db.high
    if clip.change_db > high * UNLIKE_FACTOR:
        found.append(
            f"its sound changes by {clip.change_db:.1f} dB every 10 ms, faster than the "
            f"training sounds ({low:.1f}-{high:.1f} dB)"
        )
    elif clip.change_db < low / UNLIKE_FACTOR:
        found.append(
            f"its sound changes by {clip.change_db:.1f} dB every 10 ms, steadier than the "
            f"training sounds ({low:.1f}-{high:.1f} dB)"
        )
    low, high = sound.bandwidth_hz.low, sound.bandwidth_hz.high
    if clip.bandwidth_hz < low / UNLIKE_FACTOR:
        found.append(
            f"its energy stops at {clip.bandwidth_hz / 1000:.1f} kHz, below the training "
            f"sounds' {low / 1000:.1f}-{high / 1000:.1f} kHz"
        )
    return found


def write_model_card(card: ModelCard, run_dir: str | Path) -> Path:
    """Write `card` as `run_dir`/card.json (atomically); returns the path."""
    path = Path(run_dir) / CARD_FILE
    write_json_atomic(path, card.to_dict())
    return path


# --------------------------------------------------------------------------- checks


def _read_text(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_CARD_BYTES * 16:
            raise ModelCardError(f"{what} is too large to be read.")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelCardError(f"{what} is missing.") from None
    except (OSError, UnicodeDecodeError):
        raise ModelCardError(f"{what} cannot be read as text.") from None


def _read_object(path: Path, what: str) -> dict[str, Any]:
    text = _read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ModelCardError(f"{what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ModelCardError(f"{what} is not a JSON object.")
    return value


def _feature_rate(meta: Mapping[str, Any]) -> int | None:
    features = meta.get("feature_config")
    rate = features.get("sample_rate") if isinstance(features, Mapping) else None
    return int(rate) if _is_number(rate) and 0 < rate < 1_000_000 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_share(value: Any) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0


def _number(value: Any, key: str, kind: type, low: float, high: float) -> Any:
    if not _is_number(value) or not low <= value <= high:
        raise ModelCardError(
            f"The model card (card.json) has no valid {key} (a number from {low:g} to {high:g})."
        )
    return kind(value)


def _text(value: Any, key: str, *, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ModelCardError(f"The model card (card.json) field {key} is not text.")
    return value[:limit]


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ModelCardError(f"The model card (card.json) field {key} is not a list.")
    return value


def _list_or_empty(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _names(items: list[str]) -> str:
    return ", ".join(items) if items else "(none named)"


def _measurement(value: Any, key: str) -> Measurement | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelCardError(f"The model card (card.json) field {key} is not an object.")
    accuracy = value.get("accuracy")
    if not _is_share(accuracy):
        raise ModelCardError(
            f"The model card (card.json) gives {key} an accuracy of {str(accuracy)[:20]}, "
            "not a share between 0 and 1."
        )
    per_group = value.get("per_group", {})
    if not isinstance(per_group, dict) or len(per_group) > MAX_GROUPS:
        raise ModelCardError(f"The model card (card.json) field {key}.per_group is not readable.")
    if not all(_is_share(v) for v in per_group.values()):
        raise ModelCardError(
            f"The model card (card.json) field {key}.per_group holds an accuracy outside 0..1."
        )
    clips = value.get("clips", 0)
    measured, total = value.get("folds_measured", 0), value.get("folds_total", 0)
    for number, field_name in (
        (clips, "clips"),
        (measured, "folds_measured"),
        (total, "folds_total"),
    ):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 10**9:
            raise ModelCardError(
                f"The model card (card.json) field {key}.{field_name} is not a count."
            )
    if measured > total:
        raise ModelCardError(
            f"The model card (card.json) says {measured} of {total} folds were measured."
        )
    return Measurement(
        title=_text(value.get("title", ""), f"{key}.title")[:80],
        accuracy=float(accuracy),
        clips=clips,
        how=_text(value.get("how", ""), f"{key}.how"),
        per_group={str(g)[:80]: float(a) for g, a in per_group.items()},
        folds_measured=measured,
        folds_total=total,
    )


def _training_sound(value: Any) -> TrainingSound | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelCardError("The model card (card.json) field training_sound is not an object.")
    clips = value.get("clips")
    if not isinstance(clips, int) or isinstance(clips, bool) or not 0 < clips <= 10**9:
        raise ModelCardError(
            "The model card (card.json) field training_sound.clips is not a count."
        )
    ranges = {}
    for name in ("sounding_seconds", "change_db", "bandwidth_hz"):
        item = value.get(name)
        numbers = [item.get(k) for k in ("low", "median", "high")] if isinstance(item, dict) else []
        if (
            len(numbers) != 3
            or not all(_is_number(v) and 0 <= v <= 1e6 for v in numbers)
            or not (numbers[0] <= numbers[1] <= numbers[2])
        ):
            raise ModelCardError(
                f"The model card (card.json) field training_sound.{name} is not a range "
                "(low <= median <= high, numbers from 0)."
            )
        ranges[name] = MeasureRange(*(float(v) for v in numbers))
    return TrainingSound(clips=clips, **ranges)
