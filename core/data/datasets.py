"""Labelled audio datasets: where examples come from and how they are split.

A dataset is a list of `AudioExample`s (a file or an in-memory clip, a class index, a group
and an optional time window) plus the class names. Layouts:

- `builtin_digits()`: the shipped spoken digits, `{digit}_{speaker}_{take}.wav`, group = speaker.
- `folder_per_class(path)`: `path/<class>/*.wav`; group = source file (or speaker when the
  file names carry one, as in Speech Commands' `{speaker}_nohash_{n}.wav`).
- `dataset_from_zip(data)` (core.data.zips): an uploaded zip holding class folders, extracted
  safely.
- `esc50(path)`, `urbansound8k(path)`: the CSV layouts with their official folds.
- `gtzan(path)`: a folder per genre.
- `speech_commands(path, download=False)`: Google Speech Commands (torchaudio downloads it,
  only when asked).
- `dataset_from_clips(items)`: clips recorded or uploaded per class in the browser.
- `load_dataset(source)` (core.data.sources): one string for all of them (`builtin:digits`,
  `esc50:/data/ESC-50`, a folder, a zip file...), as used by `TrainConfig.data` and the
  command line.

Splits (`split_dataset`, core.data.splits) are random, stratified, by group or by named
groups / folds; a `leakage_report` says which groups or files sit on both sides;
`class_balance` counts labels.
Every failure caused by the user's data raises `DatasetError` with a sentence to show.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import paths
from core.audio.clip import AudioClip
from core.audio.io import load_audio, probe_audio
from core.audio.levels import resample

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".m4a", ".opus"}
)
# Zip caps: generous for a course data set, small enough that a zip bomb cannot fill the disk.
MAX_ZIP_FILES = 20_000
MAX_ZIP_BYTES = 2 * 1024**3  # total uncompressed size, bytes
DIGIT_NAME = re.compile(r"^(?P<digit>\d+)_(?P<speaker>[A-Za-z]+)_(?P<take>\d+)$")
SPEAKER_NAME = re.compile(r"^(?P<speaker>[0-9a-f]{8})_nohash_\d+$")  # Speech Commands
MEMORY_PREFIX = "memory:"


class DatasetError(ValueError):
    """A data set cannot be used; str() is a sentence for the student."""


@dataclass(frozen=True)
class AudioExample:
    """One labelled example.

    source: a file path, or `memory:<n>` for a clip held in `AudioDataset.memory`.
    label: class index into `AudioDataset.labels`.
    group: what must never sit on both sides of a split (speaker, source file, ...).
    start_seconds / duration_seconds: the window inside the source (None = to its end).
    fold: the official fold for layouts that have one (ESC-50, UrbanSound8K), else None.
    """

    source: str
    label: int
    group: str
    start_seconds: float = 0.0
    duration_seconds: float | None = None
    fold: int | None = None

    @property
    def name(self) -> str:
        """The file name (or memory key) without folders."""
        return self.source if self.in_memory else Path(self.source).name

    @property
    def in_memory(self) -> bool:
        return self.source.startswith(MEMORY_PREFIX)

    @property
    def ref(self) -> str:
        """A short human-readable reference: `name` or `name @ 1.50 s`."""
        if self.start_seconds == 0.0 and self.duration_seconds is None:
            return self.name
        return f"{self.name} @ {self.start_seconds:.2f} s"


@dataclass(frozen=True)
class AudioDataset:
    """Labelled examples, class names and what was skipped while reading them.

    memory maps `memory:<n>` sources to (samples float32 (n,), sample_rate Hz) for clips that
    never were files (recorded in the browser).
    """

    name: str
    labels: tuple[str, ...]
    examples: tuple[AudioExample, ...]
    skipped: tuple[str, ...] = ()  # "file: reason" for each file left out
    memory: Mapping[str, tuple[np.ndarray, int]] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def targets(self) -> np.ndarray:
        """Class index of every example, shape (N,), int64."""
        return np.array([e.label for e in self.examples], dtype=np.int64)

    def subset(self, indices: Iterable[int]) -> AudioDataset:
        """The same data set restricted to these example indices."""
        chosen = tuple(self.examples[i] for i in indices)
        return AudioDataset(self.name, self.labels, chosen, self.skipped, self.memory)


# --- reading audio


def load_example_audio(
    dataset: AudioDataset, example: AudioExample, sample_rate: int
) -> np.ndarray:
    """Decoded mono samples of one example at `sample_rate` Hz, float32 shape (n,).

    Raises core.audio.clip.AudioError when the file cannot be decoded.
    """
    if example.in_memory:
        samples, rate = dataset.memory[example.source]
        samples = resample(samples, rate, sample_rate) if rate != sample_rate else samples
    else:
        samples = load_audio(example.source, sample_rate=sample_rate, allow_silent=True).samples
    start = int(round(example.start_seconds * sample_rate))
    stop = (
        None
        if example.duration_seconds is None
        else start + int(round(example.duration_seconds * sample_rate))
    )
    return np.ascontiguousarray(samples[start:stop], dtype=np.float32)


def content_hash(dataset: AudioDataset, example: AudioExample) -> str:
    """A hash of the example's source bytes (memoised per file path, size and mtime)."""
    if example.in_memory:
        samples, rate = dataset.memory[example.source]
        return hashlib.sha1(
            np.ascontiguousarray(samples).tobytes() + str(rate).encode()
        ).hexdigest()
    st_ = os.stat(example.source)
    return _file_hash(example.source, st_.st_size, st_.st_mtime_ns)


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    key = (path, size, mtime_ns)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = hashlib.sha1(Path(path).read_bytes()).hexdigest()
    return _FILE_HASHES[key]


# --- layouts


def builtin_digits() -> AudioDataset:
    """The shipped spoken digits (classes "0".."9"); group = speaker."""
    files = paths.builtin_digit_files()
    if not files:
        raise DatasetError("The built-in spoken digits are missing from data/digits.")
    labels = tuple(str(d) for d in range(10))
    examples = []
    for path in files:
        match = DIGIT_NAME.match(path.stem)
        if match:
            examples.append(AudioExample(str(path), int(match["digit"]), match["speaker"]))
    return AudioDataset("builtin:digits", labels, tuple(examples))


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def _group_for(path: Path) -> str:
    """Speaker when the name carries one (digits, Speech Commands), else the source file."""
    for pattern in (SPEAKER_NAME, DIGIT_NAME):
        match = pattern.match(path.stem)
        if match:
            return match["speaker"]
    return path.stem


def folder_per_class(root: str | Path, *, name: str | None = None) -> AudioDataset:
    """Every `root/<class>/**/<audio file>`; class names are the sub-folder names, sorted.

    Files that are not audio are skipped and reported in `skipped`; hidden folders and
    symbolic links are ignored. Raises DatasetError when fewer than two classes hold audio.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"The folder {root} does not exist.")
    class_dirs = sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "_"))
    )
    found: dict[str, list[Path]] = {}
    skipped = []
    for class_dir in class_dirs:
        for path in sorted(class_dir.rglob("*")):
            if (
                path.is_symlink()
                or not path.is_file()
                or any(part.startswith(".") for part in path.relative_to(root).parts)
            ):
                continue
            if is_audio(path):
                found.setdefault(class_dir.name, []).append(path)
            else:
                skipped.append(f"{path.relative_to(root)}: not an audio file")
    if len(found) < 2:
        raise DatasetError(
            f"{root.name or root} needs at least two class folders with audio files in them "
            f"(found {len(found)}): put each class's recordings in a folder named after the class."
        )
    labels = tuple(sorted(found))
    examples = tuple(
        AudioExample(str(path), index, _group_for(path))
        for index, label in enumerate(labels)
        for path in found[label]
    )
    return AudioDataset(name or str(root), labels, examples, tuple(skipped))


def gtzan(root: str | Path) -> AudioDataset:
    """GTZAN: a folder per genre (`genres_original/<genre>/*.wav` or `<genre>/*.au`)."""
    root = Path(root)
    inner = root / "genres_original"
    return folder_per_class(inner if inner.is_dir() else root, name=f"gtzan:{root}")


def esc50(root: str | Path) -> AudioDataset:
    """ESC-50: `meta/esc50.csv` (filename, fold, target, category, src_file) and `audio/`.

    group = the freesound source file (the folds keep each source in one fold).
    """
    root = Path(root)
    rows = _read_csv(root / "meta" / "esc50.csv", ("filename", "fold", "target", "category"))
    labels, index = _labels_by_id(rows, "target", "category")
    return _csv_dataset(
        f"esc50:{root}",
        labels,
        (
            (
                root / "audio" / r["filename"],
                index[r["category"]],
                r.get("src_file") or r["filename"],
                int(r["fold"]),
            )
            for r in rows
        ),
    )


def _labels_by_id(
    rows: list[dict[str, str]], id_column: str, name_column: str
) -> tuple[tuple[str, ...], dict[str, int]]:
    """Class names ordered by the CSV's numeric class id, and name -> label index."""
    names = {int(r[id_column]): r[name_column] for r in rows}
    labels = tuple(names[i] for i in sorted(names))
    return labels, {label: i for i, label in enumerate(labels)}


def urbansound8k(root: str | Path) -> AudioDataset:
    """UrbanSound8K: `metadata/UrbanSound8K.csv` and `audio/fold<k>/<slice_file_name>`.

    group = the freesound recording (fsID), so slices of one recording stay together.
    """
    root = Path(root)
    rows = _read_csv(
        root / "metadata" / "UrbanSound8K.csv", ("slice_file_name", "fold", "classID", "class")
    )
    labels, index = _labels_by_id(rows, "classID", "class")
    return _csv_dataset(
        f"urbansound8k:{root}",
        labels,
        (
            (
                root / "audio" / f"fold{r['fold']}" / r["slice_file_name"],
                index[r["class"]],
                r.get("fsID") or r["slice_file_name"],
                int(r["fold"]),
            )
            for r in rows
        ),
    )


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"The metadata file {path} is missing: is this the right folder?")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in required if not rows or c not in rows[0]]
    if missing:
        raise DatasetError(f"{path.name} lacks the column(s) {', '.join(missing)}.")
    try:
        for r in rows:
            int(r["fold"])
    except ValueError as error:
        raise DatasetError(f"{path.name} has a fold that is not a number: {error}.") from None
    return rows


def _csv_dataset(
    name: str, labels: tuple[str, ...], rows: Iterable[tuple[Path, int, str, int]]
) -> AudioDataset:
    examples, skipped = [], []
    for path, label, group, fold in rows:
        if path.is_file():
            examples.append(AudioExample(str(path), label, str(group), fold=fold))
        else:
            skipped.append(f"{path.name}: listed in the metadata but missing")
    if not examples:
        raise DatasetError(f"None of the files listed in the metadata of {name} were found.")
    return AudioDataset(name, labels, tuple(examples), tuple(skipped))


def speech_commands(root: str | Path, *, download: bool = False) -> AudioDataset:
    """Google Speech Commands v0.02 under `root` (folder per word, group = speaker).

    Downloads (about 2.3 GB, via torchaudio's loader) only when `download` is True;
    otherwise a missing copy raises DatasetError saying how to get it.
    """
    root = Path(root)
    extracted = root / "SpeechCommands" / "speech_commands_v0.02"
    if not extracted.is_dir() and download:
        try:
            # Lazy: only a first download needs torchaudio's dataset classes.
            from torchaudio.datasets import SPEECHCOMMANDS

            root.mkdir(parents=True, exist_ok=True)
            SPEECHCOMMANDS(str(root), download=True)
        except Exception as error:  # network errors come in many types
            raise DatasetError(
                f"Could not download Speech Commands ({type(error).__name__}: {error}). "
                "This machine may be offline: download speech_commands_v0.02.tar.gz elsewhere and "
                f"extract it into {extracted}."
            ) from None
    if not extracted.is_dir():
        raise DatasetError(
            f"Speech Commands is not in {extracted}. Tick 'download' (about 2.3 GB, needs the "
            "internet) or extract speech_commands_v0.02.tar.gz there."
        )
    dataset = folder_per_class(extracted, name=f"speechcommands:{root}")
    # _background_noise_ is not a word; folder_per_class already skips folders starting with "_".
    return dataset


def dataset_from_clips(
    items: Iterable[tuple[str, object]], *, name: str = "recorded clips", min_per_class: int = 1
) -> AudioDataset:
    """A data set from (label, clip) pairs recorded or uploaded in the browser.

    Each clip is a core.audio.clip.AudioClip or the bytes of an audio file (decoded here). Each clip
    is its own group. Raises DatasetError (or core.audio.clip.AudioError for undecodable bytes) when
    fewer than two labels are present or a label has fewer than `min_per_class` clips.
    """
    memory: dict[str, tuple[np.ndarray, int]] = {}
    pairs = []
    for n, (label, clip) in enumerate(items):
        label = str(label).strip()
        if not label:
            raise DatasetError("Every clip needs a class name.")
        if not isinstance(clip, AudioClip):
            clip = load_audio(clip, name=f"clip {n + 1}")
        key = f"{MEMORY_PREFIX}{n}:{label}"
        memory[key] = (
            np.asarray(clip.samples, dtype=np.float32).reshape(-1),
            int(clip.sample_rate),
        )
        pairs.append((label, key))
    counts = Counter(label for label, _ in pairs)
    if len(counts) < 2:
        raise DatasetError("Record or upload clips for at least two classes.")
    short = [
        f"{label} ({count})" for label, count in sorted(counts.items()) if count < min_per_class
    ]
    if short:
        raise DatasetError(
            f"Each class needs at least {min_per_class} clips; too few: {', '.join(short)}."
        )
    labels = tuple(sorted(counts))
    index = {label: i for i, label in enumerate(labels)}
    examples = tuple(AudioExample(key, index[label], key) for label, key in pairs)
    return AudioDataset(name, labels, examples, (), memory)


# --- windows


def make_windows(
    dataset: AudioDataset, *, window_seconds: float, hop_seconds: float
) -> AudioDataset:
    """Cut every example longer than `window_seconds` into windows `hop_seconds` apart.

    Every window is `window_seconds` long: when the hop does not land on the end, one more
    window aligned to the end covers the tail. A window keeps its source's label and group
    (so a group split keeps all windows of a file together); an example shorter than one
    window stays whole (padded later). Durations come from the file header
    (core.audio.io.probe_audio), so nothing is decoded here.
    """
    if window_seconds <= 0 or hop_seconds <= 0:
        raise DatasetError("Window and hop must be longer than 0 s.")
    examples = []
    for example in dataset.examples:
        total = _duration(dataset, example)
        if total <= window_seconds:
            examples.append(example)
            continue
        count = int((total - window_seconds) // hop_seconds + 1e-9) + 1
        starts = [k * hop_seconds for k in range(count)]
        if starts[-1] + window_seconds < total - 1e-6:
            starts.append(total - window_seconds)
        examples.extend(
            AudioExample(
                example.source,
                example.label,
                example.group,
                example.start_seconds + start,
                window_seconds,
                example.fold,
            )
            for start in starts
        )
    return AudioDataset(
        dataset.name, dataset.labels, tuple(examples), dataset.skipped, dataset.memory
    )


def _duration(dataset: AudioDataset, example: AudioExample) -> float:
    """Seconds covered by an example (its window, or its source from start_seconds on)."""
    if example.duration_seconds is not None:
        return example.duration_seconds
    if example.in_memory:
        samples, rate = dataset.memory[example.source]
        return len(samples) / rate - example.start_seconds

    return probe_audio(example.source).duration_seconds - example.start_seconds
