"""Labelled audio datasets: where examples come from and how they are split.

A dataset is a list of `AudioExample`s (a file or an in-memory clip, a class index, a group
and an optional time window) plus the class names. Layouts:

- `builtin_digits()`: the shipped spoken digits, `{digit}_{speaker}_{take}.wav`, group = speaker.
- `folder_per_class(path)`: `path/<class>/*.wav`; group = source file (or speaker when the
  file names carry one, as in Speech Commands' `{speaker}_nohash_{n}.wav`).
- `dataset_from_zip(data)`: an uploaded zip holding class folders, extracted safely.
- `esc50(path)`, `urbansound8k(path)`: the CSV layouts with their official folds.
- `gtzan(path)`: a folder per genre.
- `speech_commands(path, download=False)`: Google Speech Commands (torchaudio downloads it,
  only when asked).
- `dataset_from_clips(items)`: clips recorded or uploaded per class in the browser.
- `load_dataset(source)`: one string for all of them (`builtin:digits`, `esc50:/data/ESC-50`,
  a folder, a zip file...), as used by `TrainConfig.data` and the command line.

Splits (`split_dataset`) are random, stratified, by group or by named groups / folds; a
`leakage_report` says which groups or files sit on both sides; `class_balance` counts labels.
Every failure caused by the user's data raises `DatasetError` with a sentence to show.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import stat
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from core import paths
from core.files import atomic_open, write_text_atomic

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


# --------------------------------------------------------------------------- reading audio


def load_example_audio(
    dataset: AudioDataset, example: AudioExample, sample_rate: int
) -> np.ndarray:
    """Decoded mono samples of one example at `sample_rate` Hz, float32 shape (n,).

    Raises core.audio.io.AudioError when the file cannot be decoded.
    """
    from core.audio.io import load_audio, resample

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


# --------------------------------------------------------------------------- layouts


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


def _is_audio(path: Path) -> bool:
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
            if _is_audio(path):
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

    Each clip is a core.audio.io.AudioClip or the bytes of an audio file (decoded here). Each clip
    is its own group. Raises DatasetError (or core.audio.io.AudioError for undecodable bytes) when
    fewer than two labels are present or a label has fewer than `min_per_class` clips.
    """
    from core.audio.io import AudioClip, load_audio

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


# --------------------------------------------------------------------------- zip uploads


@dataclass(frozen=True)
class ZipReport:
    """What `extract_zip_safely` wrote and what it refused, one "entry: reason" per item."""

    root: Path
    extracted: tuple[Path, ...]
    skipped: tuple[str, ...]


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link (ignored)"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path (refused)"
    if ".." in PurePosixPath(name).parts:
        return "a path leaving the archive with '..' (refused)"
    return None


def extract_zip_safely(
    data: bytes | str | Path,
    dest: str | Path,
    *,
    max_files: int = MAX_ZIP_FILES,
    max_total_bytes: int = MAX_ZIP_BYTES,
) -> ZipReport:
    """Extract the audio files of a zip into `dest`, refusing anything dangerous.

    Absolute paths, `..` components and symbolic links are skipped and reported; files that
    are not audio are skipped and reported; more than `max_files` entries or more than
    `max_total_bytes` uncompressed bytes (declared or actually inflated) raise DatasetError
    before or while writing, so a zip bomb cannot fill the disk. Returns a ZipReport.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"This file is not a readable zip archive ({error}).") from None
    dest = Path(dest)
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > max_files:
            raise DatasetError(f"The zip holds {len(infos)} files; the limit is {max_files}.")
        declared = sum(i.file_size for i in infos)
        if declared > max_total_bytes:
            raise DatasetError(
                f"The zip would expand to {declared / 1e6:.0f} MB; the limit is {max_total_bytes / 1e6:.0f} MB."
            )
        extracted, skipped, written = [], [], 0
        for info in infos:
            reason = _unsafe_reason(info)
            if reason is None and not _is_audio(Path(info.filename)):
                reason = "not an audio file"
            if reason is None and any(
                p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(info.filename).parts
            ):
                reason = "hidden or system file"
            if reason:
                skipped.append(f"{info.filename}: {reason}")
                continue
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            if not target.resolve().is_relative_to(dest.resolve()):
                skipped.append(f"{info.filename}: a path leaving the archive (refused)")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = _copy_capped(archive, info, target, written, max_total_bytes)
            extracted.append(target)
    return ZipReport(dest, tuple(extracted), tuple(skipped))


def _copy_capped(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: int, cap: int
) -> int:
    """Inflate one member into target, counting real bytes (headers can lie about sizes)."""
    try:
        with archive.open(info) as source, atomic_open(target) as sink:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > cap:
                    raise DatasetError(f"The zip expands beyond {cap / 1e6:.0f} MB; refused.")
                sink.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DatasetError(f"{info.filename} in the zip is damaged ({error}).") from None
    return written


def dataset_from_zip(
    data: bytes | str | Path, *, name: str = "uploaded zip", dest: str | Path | None = None
) -> AudioDataset:
    """A folder-per-class data set from a zip (bytes of an upload, or a path).

    The archive is extracted safely (see `extract_zip_safely`) into `dest` (default: a folder
    under the cache named by the zip's hash, reused when the same zip comes again). Entries
    that were refused or are not audio appear in the data set's `skipped`.
    """
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    digest = hashlib.sha1(raw).hexdigest()[:16]
    dest = Path(dest) if dest is not None else paths.cache_dir() / "uploads" / digest
    if dest.exists() and not (dest / ".complete").exists():
        shutil.rmtree(dest)  # a half-finished earlier extraction
    report_path = dest / ".complete"
    if report_path.exists():
        skipped = tuple(
            line for line in report_path.read_text(encoding="utf-8").splitlines() if line
        )
    else:
        report = extract_zip_safely(raw, dest)
        skipped = report.skipped
        write_text_atomic(report_path, "\n".join(skipped))
    root = _class_root(dest)
    dataset = folder_per_class(root, name=name)
    return AudioDataset(dataset.name, dataset.labels, dataset.examples, skipped + dataset.skipped)


def _class_root(folder: Path) -> Path:
    """Descend through single wrapping folders (zips often hold one top folder)."""
    while True:
        children = [p for p in folder.iterdir() if not p.name.startswith((".", "_"))]
        dirs = [p for p in children if p.is_dir()]
        if len(dirs) == 1 and not any(_is_audio(p) for p in children if p.is_file()):
            folder = dirs[0]
        else:
            return folder


# --------------------------------------------------------------------------- one entry point

LAYOUTS = ("builtin", "folder", "zip", "esc50", "urbansound8k", "gtzan", "speechcommands")


def load_dataset(source: str, *, download: bool = False) -> AudioDataset:
    """The data set named by one string.

    `builtin:digits`; `esc50:PATH`, `urbansound8k:PATH`, `gtzan:PATH`, `speechcommands:PATH`,
    `folder:PATH`, `zip:PATH`; or a bare PATH whose layout is detected (a .zip file, an ESC-50
    or UrbanSound8K folder by its metadata CSV, else folder per class). `download` only
    matters for Speech Commands.
    """
    source = source.strip()
    kind, _, rest = source.partition(":")
    if kind == "builtin":
        if rest != "digits":
            raise DatasetError(
                f"Unknown built-in data set {rest!r}; the built-in one is builtin:digits."
            )
        return builtin_digits()
    readers = {
        "esc50": esc50,
        "urbansound8k": urbansound8k,
        "gtzan": gtzan,
        "folder": folder_per_class,
        "zip": lambda p: dataset_from_zip(p, name=f"zip:{p}"),
        "speechcommands": lambda p: speech_commands(p, download=download),
    }
    if kind in readers and rest:
        return readers[kind](rest)
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() == ".zip":
        return dataset_from_zip(path, name=str(path))
    if (path / "meta" / "esc50.csv").is_file():
        return esc50(path)
    if (path / "metadata" / "UrbanSound8K.csv").is_file():
        return urbansound8k(path)
    if (path / "genres_original").is_dir():
        return gtzan(path)
    if path.is_dir():
        return folder_per_class(path)
    raise DatasetError(
        f"{source!r} is neither a folder, a zip file nor builtin:digits (layouts: {', '.join(LAYOUTS)})."
    )


# --------------------------------------------------------------------------- windows


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
    from core.audio.io import probe_audio

    return probe_audio(example.source).duration_seconds - example.start_seconds


# --------------------------------------------------------------------------- splits

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
                "A fold split needs a data set with folds (ESC-50, UrbanSound8K) and the validation fold(s)."
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
            f"{len(self.shared_groups)} group(s) and {len(self.shared_sources)} source file(s) appear in "
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
