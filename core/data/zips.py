"""Zip uploads made safe: a folder-per-class data set from an archive nobody checked.

`extract_zip_safely` refuses paths that leave the archive, hidden and system files, non-audio
entries and archives that expand past a cap (counting real bytes, since headers can lie), and
writes each member atomically; `dataset_from_zip` turns the result into an `AudioDataset`.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core import paths
from core.data.datasets import (
    MAX_ZIP_BYTES,
    MAX_ZIP_FILES,
    AudioDataset,
    DatasetError,
    folder_per_class,
    is_audio,
)
from core.files import atomic_open, write_text_atomic

# --- zip uploads


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
                f"The zip would expand to {declared / 1e6:.0f} MB; "
                f"the limit is {max_total_bytes / 1e6:.0f} MB."
            )
        extracted, skipped, written = [], [], 0
        for info in infos:
            reason = _unsafe_reason(info)
            if reason is None and not is_audio(Path(info.filename)):
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
        if len(dirs) == 1 and not any(is_audio(p) for p in children if p.is_file()):
            folder = dirs[0]
        else:
            return folder
