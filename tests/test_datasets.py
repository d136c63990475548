"""Datasets: every layout on small fixtures made here, safe zip extraction, leak-free splits."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from core.audio.levels import encode_wav
from core.data.datasets import (
    AudioDataset,
    AudioExample,
    DatasetError,
    builtin_digits,
    dataset_from_clips,
    esc50,
    folder_per_class,
    gtzan,
    load_example_audio,
    make_windows,
    speech_commands,
    urbansound8k,
)
from core.data.sources import load_dataset
from core.data.splits import class_balance, leakage_report, split_dataset
from core.data.zips import dataset_from_zip, extract_zip_safely
from tests.conftest import sine

RATE = 8000
TONES = {"high": 1500.0, "low": 300.0}


def tone(frequency: float, seconds: float = 0.3, seed: int = 0) -> np.ndarray:
    """A sine with a little noise, float32 (n,) at RATE."""
    rng = np.random.default_rng(seed)
    y = sine(frequency, seconds, RATE) + 0.02 * rng.standard_normal(int(seconds * RATE))
    return y.astype(np.float32)


def make_tone_folder(root: Path, per_class: int = 6, seconds: float = 0.3) -> Path:
    """root/<high|low>/<speaker>_nohash_<n>.wav: two separable classes, 3 'speakers'."""
    for label, frequency in TONES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            speaker = f"{n % 3:08x}"
            wave = tone(frequency * (1 + 0.02 * n), seconds, seed=n)
            sf.write(root / label / f"{speaker}_nohash_{n}.wav", wave, RATE)
    return root


def test_builtin_digits_groups_are_speakers(digit_files):
    dataset = builtin_digits()
    assert len(dataset) == len(digit_files)
    assert dataset.labels == tuple(str(d) for d in range(10))
    assert {e.group for e in dataset.examples} == {"george", "jackson", "lucas", "nicolas"}
    first = dataset.examples[0]
    assert Path(first.source).name.startswith(f"{first.label}_{first.group}_")


def test_folder_per_class_skips_and_reports_non_audio(tmp_path):
    root = make_tone_folder(tmp_path / "data", per_class=3)
    (root / "low" / "notes.txt").write_text("not audio")
    dataset = folder_per_class(root)
    assert dataset.labels == ("high", "low")
    assert len(dataset) == 6
    assert any("notes.txt" in s and "not an audio file" in s for s in dataset.skipped)
    # Speech-Commands-style names give the speaker as the group.
    assert {e.group for e in dataset.examples} == {"00000000", "00000001", "00000002"}
    first = dataset.examples[0]
    audio = load_example_audio(dataset, first, RATE)
    assert audio.dtype == np.float32 and audio.shape == (int(0.3 * RATE),)
    # The very tone written for that file (its number is in its name), to 16-bit precision.
    n = int(Path(first.source).stem.rsplit("_", 1)[1])
    written = tone(TONES[dataset.labels[first.label]] * (1 + 0.02 * n), 0.3, seed=n)
    np.testing.assert_allclose(audio, written, atol=1 / 32768 + 1e-6)


def test_folder_with_one_class_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    sf.write(tmp_path / "only" / "a.wav", tone(440), RATE)
    with pytest.raises(DatasetError, match="at least two class folders"):
        folder_per_class(tmp_path)


def test_esc50_layout_with_folds(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for i in range(6):
        name = f"{i % 3 + 1}-{100 + i}-A-{i % 2}.wav"
        sf.write(tmp_path / "audio" / name, tone(300 + 500 * (i % 2)), RATE)
        rows.append(f"{name},{i % 3 + 1},{i % 2},{['dog', 'rain'][i % 2]},False,{100 + i // 2},A")
    rows.append("missing.wav,1,0,dog,False,999,A")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows))
    dataset = load_dataset(str(tmp_path))
    assert dataset.name.startswith("esc50:")
    assert dataset.labels == ("dog", "rain")
    assert len(dataset) == 6 and any("missing.wav" in s for s in dataset.skipped)
    split = split_dataset(dataset, method="fold", val_folds=[1])
    assert all(dataset.examples[i].fold == 1 for i in split.val)
    assert all(dataset.examples[i].fold != 1 for i in split.train)


def test_urbansound8k_layout(tmp_path):
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for i in range(4):
        fold = i % 2 + 1
        (tmp_path / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        name = f"{500 + i}-0-0-{i}.wav"
        sf.write(tmp_path / "audio" / f"fold{fold}" / name, tone(300 + 700 * (i % 2)), RATE)
        rows.append(f"{name},{500 + i},0,1,1,{fold},{i % 2 * 3},{['air', 'horn'][i % 2]}")
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows))
    dataset = urbansound8k(tmp_path)
    assert dataset.labels == ("air", "horn")
    assert sorted(e.fold for e in dataset.examples) == [1, 1, 2, 2]
    assert {e.group for e in dataset.examples} == {"500", "501", "502", "503"}


def test_csv_without_required_columns_is_a_clear_error(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("name,label\na.wav,1\n")
    with pytest.raises(DatasetError, match="lacks the column"):
        esc50(tmp_path)


def test_gtzan_folder_per_genre(tmp_path):
    for genre in ("blues", "jazz"):
        (tmp_path / "genres_original" / genre).mkdir(parents=True)
        for n in range(2):
            sf.write(tmp_path / "genres_original" / genre / f"{genre}.{n:05d}.wav", tone(440), RATE)
    dataset = gtzan(tmp_path)
    assert dataset.labels == ("blues", "jazz") and len(dataset) == 4


def test_speech_commands_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="download"):
        speech_commands(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing fetched without being asked


def test_clips_from_the_browser():
    clips = [
        ("yes", encode_wav(tone(300), RATE)),
        ("no", encode_wav(tone(900), RATE)),
        ("yes", encode_wav(tone(310), RATE)),
    ]
    dataset = dataset_from_clips(clips)
    assert dataset.labels == ("no", "yes")
    assert class_balance(dataset) == {"no": 1, "yes": 2}
    audio = load_example_audio(dataset, dataset.examples[1], RATE)
    assert abs(len(audio) - 0.3 * RATE) <= 1
    # Each recording keeps its own sound: 300 or 310 Hz for "yes", 900 Hz for "no".
    for example in dataset.examples:
        y = load_example_audio(dataset, example, RATE)
        peak_hz = np.argmax(np.abs(np.fft.rfft(y * np.hanning(y.size)))) * RATE / y.size
        expected = 900 if dataset.labels[example.label] == "no" else 305
        assert abs(peak_hz - expected) <= 10, (dataset.labels[example.label], peak_hz)
    with pytest.raises(DatasetError, match="two classes"):
        dataset_from_clips([("yes", encode_wav(tone(300), RATE))])


def test_windows_cover_a_long_clip_and_keep_its_group(tmp_path):
    root = tmp_path / "long"
    for label, freq in TONES.items():
        (root / label).mkdir(parents=True)
        sf.write(root / label / "take.wav", tone(freq, seconds=2.0), RATE)
    dataset = make_windows(folder_per_class(root), window_seconds=0.5, hop_seconds=0.25)
    starts = sorted(e.start_seconds for e in dataset.examples if e.label == 0)
    assert starts == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    assert len({e.group for e in dataset.examples if e.label == 0}) == 1
    example = dataset.examples[1]
    window = load_example_audio(dataset, example, RATE)
    assert len(window) == int(0.5 * RATE)
    # The window is the file's samples from its start time on, not the file's beginning.
    whole, _ = sf.read(example.source, dtype="float32")
    start = int(round(example.start_seconds * RATE))
    assert start > 0
    np.testing.assert_array_equal(window, whole[start : start + len(window)])


# --------------------------------------------------------------------------- zip safety


def _zip(entries: list[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_zip_refuses_escaping_paths_and_links(tmp_path):
    wav_low, wav_high = encode_wav(tone(300), RATE), encode_wav(tone(1500), RATE)
    data = _zip(
        [
            ("set/low/a.wav", wav_low),
            ("set/high/b.wav", wav_high),
            ("set/low/../../evil.wav", wav_low),
            ("/abs/evil.wav", wav_low),
            ("set/readme.md", b"hello"),
        ],
        symlink="set/low/link.wav",
    )
    dest = tmp_path / "out"
    report = extract_zip_safely(data, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in report.extracted) == [
        "set/high/b.wav",
        "set/low/a.wav",
    ]
    reasons = "\n".join(report.skipped)
    assert "'..'" in reasons and "absolute path" in reasons and "symbolic link" in reasons
    assert "not an audio file" in reasons
    assert not (tmp_path / "evil.wav").exists() and not Path("/abs/evil.wav").exists()
    dataset = dataset_from_zip(data, dest=tmp_path / "again")
    assert dataset.labels == ("high", "low") and len(dataset.skipped) == 4


def test_zip_bomb_is_refused_before_filling_the_disk(tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/x.wav", b"\0" * (3 * 1024 * 1024))  # compresses to a few kB
    with pytest.raises(DatasetError, match="expand"):
        extract_zip_safely(bomb.getvalue(), tmp_path / "bomb", max_total_bytes=1024 * 1024)
    assert (
        not any(p.is_file() for p in (tmp_path / "bomb").rglob("*"))
        if (tmp_path / "bomb").exists()
        else True
    )
    many = _zip([(f"c/{i}.wav", b"x") for i in range(30)])
    with pytest.raises(DatasetError, match="30 files"):
        extract_zip_safely(many, tmp_path / "many", max_files=20)


def test_zip_whose_headers_lie_about_sizes_is_stopped_while_inflating(tmp_path):
    data = bytearray(_zip([("a/x.wav", b"\1" * 200_000)]))
    # Forge the declared sizes (local header and central directory) down to 10 bytes.
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.infolist()[0]
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    data[info.header_offset + 22 : info.header_offset + 26] = (10).to_bytes(4, "little")
    with pytest.raises(DatasetError):
        extract_zip_safely(bytes(data), tmp_path / "liar", max_total_bytes=50_000)


def test_not_a_zip_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not a readable zip"):
        extract_zip_safely(b"hello", tmp_path)


# --------------------------------------------------------------------------- splits


def _fake_dataset(groups: list[str], labels: list[int]) -> AudioDataset:
    examples = tuple(
        AudioExample(f"/x/{i}.wav", label, group)
        for i, (group, label) in enumerate(zip(groups, labels, strict=True))
    )
    return AudioDataset("fake", ("a", "b", "c"), examples)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.integers(0, 2)), min_size=4, max_size=60),
    st.floats(0.1, 0.5),
    st.integers(0, 1000),
)
def test_group_split_never_puts_a_group_on_both_sides(pairs, fraction, seed):
    groups, labels = [g for g, _ in pairs], [label for _, label in pairs]
    if len(set(groups)) < 2:
        return
    dataset = _fake_dataset(groups, labels)
    split = split_dataset(dataset, method="group", val_fraction=fraction, seed=seed)
    assert not leakage_report(dataset, split).leaks
    assert sorted(split.train + split.val) == list(range(len(dataset)))


def test_random_split_on_digits_reports_the_speaker_leak():
    dataset = builtin_digits()
    split = split_dataset(dataset, method="random", seed=1)
    report = leakage_report(dataset, split)
    assert report.leaks and len(report.shared_groups) == 4
    assert "split by group" in report.message()
    held = split_dataset(dataset, method="holdout", val_groups=["lucas"])
    assert not leakage_report(dataset, held).leaks
    assert {dataset.examples[i].group for i in held.val} == {"lucas"}


def test_stratified_split_keeps_class_proportions():
    dataset = builtin_digits()
    split = split_dataset(dataset, method="stratified", val_fraction=0.25, seed=3)
    assert set(class_balance(dataset, split.val).values()) == {40}
    assert split_dataset(dataset, method="stratified", val_fraction=0.25, seed=3) == split


def test_stratified_split_measures_every_class_of_a_tiny_recorded_set(tmp_path):
    # Two clips per class (a few recordings in the browser): 20 % of 2 rounds to 0, yet each
    # class must still put one clip in validation and keep one for training.
    dataset = folder_per_class(make_tone_folder(tmp_path, per_class=2))
    split = split_dataset(dataset, method="stratified", val_fraction=0.2, seed=0)
    assert set(class_balance(dataset, split.val).values()) == {1}
    assert set(class_balance(dataset, split.train).values()) == {1}


def test_unknown_holdout_group_is_named():
    with pytest.raises(DatasetError, match="zoe"):
        split_dataset(builtin_digits(), method="holdout", val_groups=["zoe"])
