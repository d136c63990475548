"""Measure a data set's sound, then choose the training recipe that fits it, with reasons.

The engine's default recipe (core.training.trainer.TrainConfig) was tuned on spoken digits: 8 kHz
audio, 32 mel bands, silence trimmed and the word stretched to a 1-second window. Instrument notes,
dog barks or chords need other settings: the harmonics that tell a flute from an oboe lie
above 4 kHz, and stretching a note to the window throws away how long it rings.

`profile_dataset(dataset)` measures a bounded, seeded sample of clips (sample rates,
bandwidth, durations, silence); `choose_recipe(profile)` turns the measurements into a
`RecipeChoice`, one value per setting with a sentence that says why; `apply_recipe(config,
choice)` writes the choices into a TrainConfig. Every choice is only a default: the Train
page shows the reasons and keeps each one on a slider. The rules are written out here (not
learnt) so a student can read why each number was picked.

Why one module of a little over 500 lines: measuring a data set and choosing its recipe are read
together; each choice cites the measurement it rests on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import welch

from core.audio.clip import AudioError
from core.audio.features import FeatureConfig
from core.audio.io import load_audio
from core.audio.levels import to_mono
from core.data.augment import AugmentConfig
from core.data.datasets import AudioDataset, AudioExample
from core.data.starting_weights import learning_rate_for, start_from_for

MAX_PROFILE_CLIPS = 48  # clips measured per data set: enough for medians, fast on a slow CPU
MAX_PROFILE_SECONDS = 30.0  # decoded per clip at most
# The bandwidth is the frequency below which this share of the energy lies. 99 % is not
# enough: the upper partials that tell a flute from an oboe are quiet (rendered notes: 99 % of
# the energy below 3.2 kHz, 99.9 % below 5.9 kHz), yet they carry the timbre.
ENERGY_FRACTION = 0.999
SILENCE_DB = 40.0  # frames this far below a clip's loudest frame count as silence
FRAME_SECONDS, HOP_SECONDS = 0.025, 0.010  # the frames silence is measured on
SPEECH_BAND_HZ = 4000.0  # the telephone band: spoken words are intelligible within it
RATES = (8000, 16000, 22050)  # the sample rates the recipe chooses from (the page's slider)
EVENT_MAX_SECONDS = 1.0  # an "isolated event" (a word, a clap) sounds for less than this
# ... and either its length varies between clips or it sits inside silence
# coefficient of variation of the sounding durations (the digits: 0.20-0.29 over four seeds of
# the sample; rendered notes: 0.09)
EVENT_DURATION_SPREAD = 0.15
EVENT_LEAD_SECONDS = 0.1  # median silence before the sound starts
MAX_CLIP_SECONDS = 4.0  # the page's clip-length slider ends here
TRIM_DB = 20.0  # core.training.trainer.TrainConfig.trim_db: the digits' trim level


@dataclass(frozen=True)
class ClipMeasure:
    """What one clip measured: its native rate, length and where its sound is (seconds)."""

    sample_rate: int
    duration_seconds: float
    leading_silence_seconds: float  # before the first frame within SILENCE_DB of the peak
    trailing_silence_seconds: float  # after the last such frame
    silent_fraction: float  # share of all frames more than SILENCE_DB below the peak
    sounding_seconds: float  # first to last sounding frame


@dataclass(frozen=True)
class DatasetProfile:
    """Measurements of a sample of a data set's clips (seconds, hertz).

    bandwidth_hz: the frequency below which ENERGY_FRACTION of the energy lies, over the
    average of the measured clips' power spectra (each clip scaled to unit energy, so a loud
    clip does not outweigh a quiet one).
    """

    clips_measured: int
    clips_total: int
    sample_rates: tuple[int, ...]  # distinct native rates, ascending
    bandwidth_hz: float
    energy_fraction: float
    median_duration_seconds: float
    longest_duration_seconds: float
    p90_duration_seconds: float  # 90 % of the clips are at most this long
    median_sounding_seconds: float
    sounding_spread: float  # coefficient of variation (std / mean) of the sounding durations
    median_leading_silence_seconds: float
    median_trailing_silence_seconds: float
    mean_silent_fraction: float
    failed: int = 0  # sampled clips that could not be decoded

    @property
    def max_sample_rate(self) -> int:
        return self.sample_rates[-1] if self.sample_rates else 0

    def summary(self) -> str:
        """One sentence of what was measured, for the page and the command line."""
        rates = ", ".join(f"{r / 1000:g} kHz" for r in self.sample_rates)
        return (
            f"Measured on {self.clips_measured} of {self.clips_total} clips: recorded at {rates}; "
            f"{self.energy_fraction:.1%} of the energy below {self.bandwidth_hz / 1000:.1f} kHz; "
            f"clips {self.median_duration_seconds:.2f} s long (median; 90 % at most "
            f"{self.p90_duration_seconds:.2f} s), sounding for {self.median_sounding_seconds:.2f} "
            f"s (spread {self.sounding_spread:.0%}), {self.median_leading_silence_seconds:.2f} s "
            f"of silence before the sound and {self.mean_silent_fraction:.0%} of frames silent."
        )


@dataclass(frozen=True)
class Choice:
    """One setting of the recipe and the sentence that says why."""

    value: object
    reason: str


@dataclass(frozen=True)
class RecipeChoice:
    """The recipe chosen for a data set: each setting with its reason.

    kind: "isolated events" (short sounds inside silence, like words: trimmed and stretched)
    or "sustained sounds" (notes, textures: kept as they are, their length and attack intact).
    """

    kind: str
    sample_rate: Choice  # Hz
    n_mels: Choice
    clip_seconds: Choice
    trim_db: Choice  # float dB or None (no trimming)
    normalization: Choice
    augment: Choice  # an AugmentConfig
    profile: DatasetProfile
    # the ready model (its name) the network starts from; "" : random weights
    start_from: Choice = Choice("", "Random weights.")
    learning_rate: Choice = Choice(3e-3, "3e-3, the engine's default.")  # peak, per step

    def choices(self) -> dict[str, Choice]:
        """The settings in the order the page shows them."""
        return {
            "sample rate": self.sample_rate,
            "mel bands": self.n_mels,
            "clip length": self.clip_seconds,
            "trimming": self.trim_db,
            "normalisation": self.normalization,
            "augmentation": self.augment,
            "starting weights": self.start_from,
            "learning rate": self.learning_rate,
        }

    def reasons(self) -> list[str]:
        return [choice.reason for choice in self.choices().values()]

    def feature_config(self):
        """The FeatureConfig of the choice: 25 ms windows every 10 ms, bands up to Nyquist."""
        return feature_config_for(int(self.sample_rate.value), int(self.n_mels.value))


def feature_config_for(sample_rate: int, n_mels: int, *, win_ms: float = 25, hop_ms: float = 10):
    """Log-mel settings at `sample_rate` Hz: windows of win_ms, hops of hop_ms, n_mels bands.

    The same arithmetic as the Train page's sliders, so a recipe and the sliders that show
    it build equal configs (at 8 kHz and 32 bands: core.training.trainer.default_feature_config()).
    """
    win = int(sample_rate * win_ms / 1000)
    return FeatureConfig(
        sample_rate=sample_rate,
        n_fft=max(256, 2 ** math.ceil(math.log2(win))),
        win_length=win,
        hop_length=int(sample_rate * hop_ms / 1000),
        n_mels=n_mels,
        n_mfcc=min(20, n_mels),
        f_max=sample_rate / 2,
    )


# --------------------------------------------------------------------------- measuring


def sample_examples(
    dataset: AudioDataset, max_clips: int = MAX_PROFILE_CLIPS, seed: int = 0
) -> list[AudioExample]:
    """Up to max_clips examples, taken in turn from each class (seeded), so every class counts."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[AudioExample]] = {}
    for example in dataset.examples:
        by_class.setdefault(example.label, []).append(example)
    queues = [list(rng.permutation(len(v))) for v in by_class.values()]
    members = list(by_class.values())
    picked: list[AudioExample] = []
    while len(picked) < max_clips and any(queues):
        for queue, examples in zip(queues, members, strict=True):
            if queue and len(picked) < max_clips:
                picked.append(examples[queue.pop()])
    return picked


def native_audio(dataset: AudioDataset, example: AudioExample) -> tuple[np.ndarray, int]:
    """(mono float32 samples (n,), native sample rate in Hz) of one example, not resampled."""
    if example.in_memory:
        samples, rate = dataset.memory[example.source]
        samples = to_mono(np.asarray(samples, dtype=np.float32))
    else:
        clip = load_audio(example.source, allow_silent=True, max_seconds=MAX_PROFILE_SECONDS)
        samples, rate = clip.samples, clip.sample_rate
    start = int(round(example.start_seconds * rate))
    stop = (
        None
        if example.duration_seconds is None
        else start + int(round(example.duration_seconds * rate))
    )
    return np.ascontiguousarray(samples[start:stop], dtype=np.float32), int(rate)


def measure_clip(
    samples: np.ndarray, sample_rate: int, *, silence_db: float = SILENCE_DB
) -> ClipMeasure:
    """Length and silence of one clip (samples (n,) at sample_rate Hz); frames more than
    silence_db under the loudest frame are silence."""
    duration = len(samples) / sample_rate
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    hop = max(1, int(HOP_SECONDS * sample_rate))
    if len(samples) < frame:
        return ClipMeasure(sample_rate, duration, 0.0, 0.0, 0.0, duration)
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), frame)[::hop]
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    sounding = energy_db > energy_db.max() - silence_db
    first, last = int(np.argmax(sounding)), len(sounding) - 1 - int(np.argmax(sounding[::-1]))
    lead = first * hop / sample_rate
    tail = max(0.0, duration - (last * hop + frame) / sample_rate)
    return ClipMeasure(
        sample_rate=sample_rate,
        duration_seconds=duration,
        leading_silence_seconds=lead,
        trailing_silence_seconds=tail,
        silent_fraction=float(1 - sounding.mean()),
        sounding_seconds=max(0.0, duration - lead - tail),
    )


@dataclass(frozen=True)
class SoundMeasure:
    """Three numbers that tell kinds of sound apart, for one clip (seconds, dB, Hz).

    sounding_seconds: first to last frame within SOUNDING_DB of the loudest (a spoken digit
    about 0.5 s, a held note its whole length). change_db: how fast the sound changes, the
    median over neighbouring sounding frames (10 ms apart) of the mean absolute difference of
    their CHANGE_BANDS log-mel bands; speech moves from sound to sound (about 2-4 dB), a held
    note barely changes after its attack (under 1 dB). bandwidth_hz: the frequency below which
    ENERGY_FRACTION of the clip's energy lies, at the rate it was given.
    """

    sounding_seconds: float
    change_db: float
    bandwidth_hz: float


CHANGE_BANDS = 40  # mel bands the change between frames is measured on
# For comparing one clip with a model's training clips, "sounding" is within 25 dB of the
# loudest frame: a browser recording's background noise (often 30-40 dB under the voice)
# must not count as sound, or a one-word recording would seem to last as long as the file.
SOUNDING_DB = 25.0


def spectral_change_db(samples: np.ndarray, sample_rate: int) -> float:
    """How fast a clip's sound changes: median mean |dB difference| of neighbouring frames.

    samples (n,) at sample_rate Hz; frames of FRAME_SECONDS every HOP_SECONDS, CHANGE_BANDS
    log-mel bands (librosa), floored 80 dB under the clip's loudest band; only pairs of frames
    that are both within SOUNDING_DB of the loudest frame count (silence says nothing). 0.0
    when fewer than two frames sound.
    """
    import librosa

    n_fft = 2 ** math.ceil(math.log2(max(16, FRAME_SECONDS * sample_rate)))
    hop = max(1, int(HOP_SECONDS * sample_rate))
    if len(samples) < n_fft:
        return 0.0
    power = librosa.feature.melspectrogram(
        y=np.asarray(samples, dtype=np.float32),
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=CHANGE_BANDS,
        fmax=sample_rate / 2,
        center=False,
    )
    bands_db = librosa.power_to_db(power, ref=np.max, top_db=80.0)
    frame_db = 10 * np.log10(power.sum(axis=0) + 1e-20)
    sounding = frame_db > frame_db.max() - SOUNDING_DB
    both = sounding[1:] & sounding[:-1]
    if not both.any():
        return 0.0
    change = np.abs(np.diff(bands_db, axis=1)).mean(axis=0)
    return float(np.median(change[both]))


def measure_sound(samples: np.ndarray, sample_rate: int) -> SoundMeasure:
    """sounding length, spectral change and bandwidth of one clip (samples (n,) at sample_rate)."""
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < 16 or not np.any(samples):
        return SoundMeasure(0.0, 0.0, 0.0)
    return SoundMeasure(
        sounding_seconds=measure_clip(
            samples, sample_rate, silence_db=SOUNDING_DB
        ).sounding_seconds,
        change_db=spectral_change_db(samples, sample_rate),
        bandwidth_hz=bandwidth_hz([clip_power_spectrum(samples, sample_rate)]),
    )


def clip_power_spectrum(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies Hz (F,), power (F,) summing to 1) of one clip: Welch's average periodogram."""
    segment = min(len(samples), 2 ** int(round(math.log2(max(16, sample_rate * 0.064)))))
    freqs, power = welch(samples.astype(np.float64), fs=sample_rate, nperseg=segment)
    total = power.sum()
    return freqs, (power / total if total > 0 else power)


def bandwidth_hz(
    spectra: list[tuple[np.ndarray, np.ndarray]], fraction: float = ENERGY_FRACTION
) -> float:
    """The frequency below which `fraction` of the average normalised power lies (Hz).

    spectra: (frequencies, power summing to 1) per clip, at any rates; they are averaged on
    a common 10 Hz grid up to the highest Nyquist frequency (zero above a clip's own).
    """
    if not spectra:
        return 0.0
    top = max(float(f[-1]) for f, _ in spectra)
    grid = np.arange(0.0, top + 10.0, 10.0)
    average = np.zeros_like(grid)
    for freqs, power in spectra:
        density = np.interp(grid, freqs, power / max(freqs[1] - freqs[0], 1e-9), right=0.0)
        average += density
    cumulative = np.cumsum(average)
    if cumulative[-1] <= 0:
        return 0.0
    return float(grid[int(np.searchsorted(cumulative, fraction * cumulative[-1]))])


def profile_dataset(
    dataset: AudioDataset,
    *,
    max_clips: int = MAX_PROFILE_CLIPS,
    seed: int = 0,
    energy_fraction: float = ENERGY_FRACTION,
) -> DatasetProfile:
    """Measure a bounded, seeded sample of the data set's clips (at their own sample rates).

    Raises ValueError when no sampled clip can be decoded or has any sound.
    """
    measures: list[ClipMeasure] = []
    spectra = []
    failed = 0
    for example in sample_examples(dataset, max_clips, seed):
        try:
            samples, rate = native_audio(dataset, example)
        except (AudioError, OSError, KeyError):
            failed += 1
            continue
        if len(samples) < 16 or not np.any(samples):
            failed += 1
            continue
        measures.append(measure_clip(samples, rate))
        spectra.append(clip_power_spectrum(samples, rate))
    if not measures:
        raise ValueError("None of the sampled clips could be decoded or had any sound to measure.")
    durations = np.array([m.duration_seconds for m in measures])
    sounding = np.array([m.sounding_seconds for m in measures])
    return DatasetProfile(
        clips_measured=len(measures),
        clips_total=len(dataset.examples),
        sample_rates=tuple(sorted({m.sample_rate for m in measures})),
        bandwidth_hz=bandwidth_hz(spectra, energy_fraction),
        energy_fraction=energy_fraction,
        median_duration_seconds=float(np.median(durations)),
        longest_duration_seconds=float(durations.max()),
        p90_duration_seconds=float(np.percentile(durations, 90)),
        median_sounding_seconds=float(np.median(sounding)),
        sounding_spread=float(sounding.std() / sounding.mean()) if sounding.mean() > 0 else 0.0,
        median_leading_silence_seconds=float(
            np.median([m.leading_silence_seconds for m in measures])
        ),
        median_trailing_silence_seconds=float(
            np.median([m.trailing_silence_seconds for m in measures])
        ),
        mean_silent_fraction=float(np.mean([m.silent_fraction for m in measures])),
        failed=failed,
    )


# --------------------------------------------------------------------------- choosing


def is_isolated_event(profile: DatasetProfile) -> bool:
    """Short sounds whose length varies or that sit inside silence (words, claps, knocks)."""
    return profile.median_sounding_seconds < EVENT_MAX_SECONDS and (
        profile.sounding_spread >= EVENT_DURATION_SPREAD
        or profile.median_leading_silence_seconds >= EVENT_LEAD_SECONDS
    )


def choose_recipe(profile: DatasetProfile) -> RecipeChoice:
    """The recipe's defaults for data measured as `profile`, each with its reason."""
    band_khz = profile.bandwidth_hz / 1000
    native = profile.max_sample_rate
    # The lowest rate whose Nyquist frequency (half the rate) keeps the bandwidth; never above
    # the recordings' own rate (upsampling adds no sound, only cost).
    needed = next((r for r in RATES if r / 2 >= profile.bandwidth_hz), RATES[-1])
    rate = min(needed, max((r for r in RATES if r <= native), default=RATES[0]))
    if rate < needed:
        rate_reason = (
            f"{rate / 1000:g} kHz, the rate your clips were recorded at: they hold nothing above "
            f"{rate / 2000:g} kHz, so a higher rate would add cost and no sound."
        )
    elif rate == RATES[0]:
        rate_reason = (
            f"{rate / 1000:g} kHz because {profile.energy_fraction:.1%} of your clips' energy lies "
            f"below {band_khz:.1f} kHz: the telephone band, where words are understood."
        )
    else:
        rate_reason = (
            f"{rate / 1000:g} kHz because your clips have energy up to {band_khz:.1f} kHz "
            f"({profile.energy_fraction:.1%} of it); a rate keeps frequencies up to half itself."
        )
    if rate <= 8000:
        mels = Choice(
            32,
            "32 mel bands over 0-4 kHz: few enough to blur a voice's pitch "
            "harmonics (they differ between speakers), enough to keep the formants.",
        )
    else:
        mels = Choice(
            64,
            f"64 mel bands over 0-{rate / 2000:g} kHz: fine enough to resolve the "
            "harmonics and the bright upper partials that tell timbres apart.",
        )
    if is_isolated_event(profile):
        kind = "isolated events"
        why = (
            f"varies by {profile.sounding_spread:.0%} between clips"
            if profile.sounding_spread >= EVENT_DURATION_SPREAD
            else f"sits after {profile.median_leading_silence_seconds:.2f} s of silence"
        )
        trim = Choice(
            TRIM_DB,
            f"Trim and stretch: your sounds are short (median "
            f"{profile.median_sounding_seconds:.2f} s) and their length {why}, like "
            f"words; cutting the silence (frames {TRIM_DB:g} dB under the peak) and "
            "stretching the sound to the window lines every example up.",
        )
        clip = Choice(1.0, "1 s window: each trimmed sound is stretched to fill it.")
        augment = Choice(
            AugmentConfig(),
            "Equaliser ±6 dB, mel warp, time stretch and shift, "
            "masks: another voice, microphone or pace, as for the digits.",
        )
    else:
        kind = "sustained sounds"
        trim = Choice(
            None,
            f"No trimming: your sounds last (median {profile.median_sounding_seconds:.2f} s"
            f", spread {profile.sounding_spread:.0%}) and start "
            f"{profile.median_leading_silence_seconds:.2f} s in; how long a sound rings and "
            "how it starts are part of what it is, and stretching would erase them.",
        )
        longest = min(MAX_CLIP_SECONDS, profile.p90_duration_seconds)
        seconds = min(MAX_CLIP_SECONDS, max(0.25, math.ceil(longest / 0.25 - 1e-6) * 0.25))
        cropped = (
            f"; longer clips are cut to their middle {seconds:g} s"
            if profile.longest_duration_seconds > seconds + 1e-6
            else ""
        )
        clip = Choice(
            seconds,
            f"{seconds:g} s window: 90 % of your clips last at most "
            f"{profile.p90_duration_seconds:.2f} s, so a whole sound fits, attack and "
            f"decay{cropped}.",
        )
        # Measured on rendered notes, trained on one soundfont and scored on another (docs/
        # ARCHITECTURE.md): none of the digits' augmentations, the equaliser alone, a
        # stronger equaliser with mixup, per-band normalisation, SpecAugment masks alone,
        # mixup alone or a pitch shift of about a semitone (speed ±6 %) beat training without
        # augmentation, so sustained sounds start without. Nor, in both directions, did finer
        # random EQs, a spectral tilt, envelope changes, a room, noise, mixing in another note
        # of the class or finer mel bands (3 Dec). What did help was more sources: learning
        # from two soundfonts instead of one scored 0.92 instead of 0.66 on a third.
        augment = Choice(
            AugmentConfig.off(),
            "No augmentation: on instrument notes scored on a soundfont the network never "
            "heard, none of the augmentations we measured (equalisers, a spectral tilt, a "
            "pitch shift, envelope changes, a room, noise, mel warp, masks, mixup) beat "
            "training without; what helped was recording each class from more sources (two "
            "soundfonts instead of one: 66 % -> 92 %). Switch one on below to try it on "
            "your sounds.",
        )
    normalization = Choice(
        "instance",
        "Per-clip normalisation: each clip to mean 0 and std 1, "
        "so loudness (distance, velocity, gain) does not decide the class.",
    )
    features = feature_config_for(rate, int(mels.value))
    start = Choice(*start_from_for(kind, features, str(normalization.value)))
    return RecipeChoice(
        kind=kind,
        start_from=start,
        learning_rate=Choice(*learning_rate_for(str(start.value))),
        sample_rate=Choice(rate, rate_reason),
        n_mels=mels,
        clip_seconds=clip,
        trim_db=trim,
        normalization=normalization,
        augment=augment,
        profile=profile,
    )


def apply_recipe(config, choice: RecipeChoice):
    """`config` (a TrainConfig) with the recipe's features, window, trimming, normalisation
    and augmentation; everything else (model, optimiser, split) unchanged."""
    return dataclasses.replace(
        config,
        features=choice.feature_config(),
        clip_seconds=float(choice.clip_seconds.value),
        trim_db=choice.trim_db.value,
        normalization=str(choice.normalization.value),
        augment=choice.augment.value,
        start_from=str(choice.start_from.value),
        learning_rate=float(choice.learning_rate.value),
    )


def recipe_for_dataset(dataset: AudioDataset, **kwargs) -> RecipeChoice:
    """profile_dataset then choose_recipe (kwargs go to profile_dataset)."""
    return choose_recipe(profile_dataset(dataset, **kwargs))
