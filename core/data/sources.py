"""One entry point for every kind of data set: `load_dataset(source)`.

`source` is `builtin:digits`, a folder with one sub-folder per class, a known layout (GTZAN,
ESC-50, UrbanSound8K, Speech Commands) or a zip; each problem raises `DatasetError` with a
sentence.
"""

from __future__ import annotations

from pathlib import Path

from core.data.datasets import (
    AudioDataset,
    DatasetError,
    builtin_digits,
    esc50,
    folder_per_class,
    gtzan,
    speech_commands,
    urbansound8k,
)
from core.data.zips import dataset_from_zip

# --- one entry point

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
        f"{source!r} is neither a folder, a zip file nor builtin:digits "
        f"(layouts: {', '.join(LAYOUTS)})."
    )
