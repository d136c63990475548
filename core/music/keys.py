"""Key estimation: a clip's pitch-class profile correlated with 24 major and minor key profiles.

The profile comes from `nnls_chroma`: note activations found by non-negative least squares
against a dictionary of harmonic tones (after Mauch & Dixon 2010, "NNLS Chroma"), written
here rather than taken from a library because the page teaches how it works: a plain chroma
adds every overtone to some pitch class (the 3rd partial of C lands on G), which pulls the key
a fifth up; explaining the spectrum as notes with partials puts the energy back on the notes.

The profile alone often cannot tell a minor key from its relative major (G minor and B-flat
major share all seven notes). Pieces open and, above all, close on their tonic in the bass,
so the lowest note of the first and last sounding moments (`tonic_cues`) adds a bonus to the
two keys on that note; "why this key" shows both parts of the score (`KeyEstimate.reason`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


# Key profiles: how strongly each scale degree (tonic first) belongs to a key.
# Krumhansl & Kessler (1982), probe-tone ratings.
KRUMHANSL_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)


KRUMHANSL_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


# Temperley (2007), pitch-class frequencies in the Kostka-Payne textbook corpus.
TEMPERLEY_MAJOR = (
    0.748,
    0.060,
    0.488,
    0.082,
    0.670,
    0.460,
    0.096,
    0.715,
    0.104,
    0.366,
    0.057,
    0.400,
)


TEMPERLEY_MINOR = (
    0.712,
    0.084,
    0.474,
    0.618,
    0.049,
    0.460,
    0.105,
    0.747,
    0.404,
    0.067,
    0.133,
    0.330,
)


# Aarden (2003), Essen folk-song corpus; values as in Humdrum's keycor and music21.
AARDEN_ESSEN_MAJOR = (
    17.7661,
    0.145624,
    14.9265,
    0.160186,
    19.8049,
    11.3587,
    0.291248,
    22.062,
    0.145624,
    8.15494,
    0.232998,
    4.95122,
)
AARDEN_ESSEN_MINOR = (
    18.2648,
    0.737619,
    14.0499,
    16.8599,
    0.702494,
    14.4362,
    0.702494,
    18.6161,
    4.56621,
    1.93186,
    7.37619,
    1.75623,
)
# Bellman (2005) after Budge (1943), chord frequencies in classical music; Humdrum's keycor.
BELLMAN_BUDGE_MAJOR = (16.80, 0.86, 12.95, 1.41, 13.49, 11.93, 1.25, 20.28, 1.80, 8.04, 0.62, 10.57)
BELLMAN_BUDGE_MINOR = (18.16, 0.69, 12.99, 13.34, 1.07, 11.15, 1.38, 21.07, 7.49, 1.53, 0.92, 10.21)

# Profile families the student can choose; each is (major, minor), tonic first.
KEY_PROFILE_SETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "Krumhansl-Schmuckler": (KRUMHANSL_MAJOR, KRUMHANSL_MINOR),
    "Temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
    "Aarden-Essen": (AARDEN_ESSEN_MAJOR, AARDEN_ESSEN_MINOR),
    "Bellman-Budge": (BELLMAN_BUDGE_MAJOR, BELLMAN_BUDGE_MINOR),
}
# The default, chosen on the 80 development chorales with the tonic cues below (exact key, whole
# pieces / first 30 s): mean of all four families 0.975 / 0.938, Aarden-Essen 0.975 / 0.950,
# Krumhansl 0.975 / 0.887, Temperley 0.950 / 0.900, Bellman-Budge 0.925 / 0.887. The mean
# leans on no single corpus's statistics; never chosen on data/music.
MEAN_OF_ALL = "Mean of all families"
DEFAULT_PROFILES = MEAN_OF_ALL
PROFILE_CHOICES = (MEAN_OF_ALL, *KEY_PROFILE_SETS)
# Tonic cues (development chorales; see docs/ARCHITECTURE.md): a bonus added to the profile
# correlation (-1..1) of both keys whose tonic is the bass of the last / first sounding block.
# The final bass weighs more: a piece ends on a cadence, while it may open on an upbeat (the
# dominant). Final 0.2 + opening 0.1 gave 0.975 exact (no cues: 0.875); 0.3 / 0.1
# gave 0.975 on whole pieces but 0.887 on 30 s excerpts, which do not end on a cadence.
FINAL_BASS_BONUS = 0.2
OPENING_BASS_BONUS = 0.1
BASS_MIN_SHARE = 0.5  # a block's bass: its lowest note with ≥ half the strongest activation
SOUNDING_SHARE = 0.1  # blocks below this share of the median block are silence or reverb tail
PARTIAL_DECAY = 0.8  # amplitude of partial h is decay ** (h - 1) (development set: 0.6-0.9 tried)
N_PARTIALS = 8


KEY_NAMES = tuple(f"{p} major" for p in PITCH_CLASSES) + tuple(f"{p} minor" for p in PITCH_CLASSES)


@dataclass(frozen=True)
class TonicCues:
    """The bass at the start and at the end of a clip: where tonal pieces sit on their tonic.

    opening_bass / final_bass: pitch class 0..11 (C = 0) of the lowest strong note in the first
    / last sounding block, or None when the clip has no sounding block.
    """

    opening_bass: int | None
    final_bass: int | None

    def bonus(self) -> np.ndarray:
        """What the cues add to each key's score, shape (24,), rows as KEY_NAMES."""
        bonus = np.zeros(24)
        for pitch_class, weight in (
            (self.opening_bass, OPENING_BASS_BONUS),
            (self.final_bass, FINAL_BASS_BONUS),
        ):
            if pitch_class is not None:
                bonus[[pitch_class, 12 + pitch_class]] += weight  # its major and its minor key
        return bonus


def bass_line(notes: np.ndarray, min_share: float = BASS_MIN_SHARE) -> np.ndarray:
    """Each block's bass: (semitones, blocks) activations -> (blocks,) semitone index, -1 if silent.

    The bass is the lowest note whose activation reaches min_share of the block's strongest
    note (a weak low activation is more often a fitting error than a bass line).
    """
    a = np.asarray(notes, dtype=np.float64)
    loudest = a.max(axis=0, initial=0.0)
    strong = (a >= min_share * loudest[None, :]) & (a > 0)
    return np.where(loudest > 0, np.argmax(strong, axis=0), -1)


def tonic_cues(notes: np.ndarray, sounding_share: float = SOUNDING_SHARE) -> TonicCues:
    """The opening and final bass pitch classes of note activations (semitones from a C, blocks).

    Sounding blocks: total activation above sounding_share x the median of the non-silent
    blocks, so a fade-out or reverb tail does not count as the last chord.
    """
    a = np.asarray(notes, dtype=np.float64)
    energy = a.sum(axis=0)
    if not (energy > 0).any():
        return TonicCues(None, None)
    sounding = np.flatnonzero(energy > sounding_share * np.median(energy[energy > 0]))
    bass = bass_line(a[:, sounding[[0, -1]]])
    return TonicCues(*(int(b) % 12 if b >= 0 else None for b in bass))


@dataclass(frozen=True)
class KeyEstimate:
    """The key found from the clip's chroma profile (24 key profiles) and its tonic cues.

    profile: the clip's pitch-class distribution, shape (12,), sums to 1 (C first).
    correlations: {profile set name: array (24,)}: Pearson r with C major..B major,
        then C minor..B minor.
    profile_correlations: the deciding correlations, shape (24,): the family `profiles`, or
        the mean over every family.
    cues: the opening and final bass (None: the profile decided alone).
    scores: profile_correlations + the cues' bonus, shape (24,); the key is their argmax.
    key_index: 0..23 into KEY_NAMES.
    correlation: the key's deciding profile correlation (without the bonus).
    margin: the key's score minus the runner-up's.
    confidence: 0..1: the key's profile correlation (negative counts as 0), scaled down when
        the profile is flat (noise has no key: its profile barely departs from uniform).
    """

    profile: np.ndarray
    correlations: dict[str, np.ndarray]
    key_index: int
    correlation: float
    margin: float  # best minus second-best score
    tonal_strength: float  # 0..1, how far the profile is from flat
    confidence: float
    profiles: str = DEFAULT_PROFILES  # the family (or MEAN_OF_ALL) that decided
    profile_correlations: np.ndarray | None = None
    scores: np.ndarray | None = None
    cues: TonicCues | None = None

    @property
    def name(self) -> str:
        return KEY_NAMES[self.key_index]

    @property
    def is_confident(self) -> bool:
        return self.confidence >= 0.5

    @property
    def profile_key_index(self) -> int:
        """The key the profiles alone would give (argmax of profile_correlations)."""
        return int(np.argmax(self.profile_correlations))

    def candidates(self, n: int = 3) -> list[dict[str, float | str]]:
        """The n best keys by score: key, profile r, opening and final bass bonus, score."""
        bonus_open = TonicCues(self.cues.opening_bass, None).bonus() if self.cues else np.zeros(24)
        bonus_final = TonicCues(None, self.cues.final_bass).bonus() if self.cues else np.zeros(24)
        return [
            {
                "key": KEY_NAMES[i],
                "profile r": round(float(self.profile_correlations[i]), 3),
                "opening bass": round(float(bonus_open[i]), 2),
                "final bass": round(float(bonus_final[i]), 2),
                "score": round(float(self.scores[i]), 3),
            }
            for i in np.argsort(self.scores)[::-1][:n]
        ]

    def reason(self) -> str:
        """Why this key, in sentences: what the profiles say and what the bass adds."""
        r, scores = self.profile_correlations, self.scores
        by_profile = self.profile_key_index
        profile_part = (
            f"The profiles alone point to {KEY_NAMES[by_profile]} (r = {r[by_profile]:.2f})"
        )
        cues = self.cues or TonicCues(None, None)
        heard = [
            f"{where} on {PITCH_CLASSES[pc]} (+{weight:g} to the keys on {PITCH_CLASSES[pc]})"
            for where, pc, weight in (
                ("opens", cues.opening_bass, OPENING_BASS_BONUS),
                ("ends", cues.final_bass, FINAL_BASS_BONUS),
            )
            if pc is not None
        ]
        if not heard:
            return profile_part + "; no bass was found at the start or the end, so they decide."
        bass = (
            "Tonal pieces open and close on their tonic, and the bass here "
            + " and ".join(heard)
            + "."
        )
        if by_profile == self.key_index:
            return f"{bass} {profile_part}, and with the bass cues {self.name} stays in front."
        related = (
            "; a minor key and its relative major share all seven notes"
            if _relative(by_profile) == self.key_index
            else ""
        )
        return (
            f"{bass} {profile_part}; {self.name} has r = {r[self.key_index]:.2f}{related}. "
            f"With the bass cues {self.name} scores {scores[self.key_index]:.3f} against "
            f"{scores[by_profile]:.3f}: the bass decides."
        )


def _relative(key_index: int) -> int:
    """The relative key: C major (0) <-> A minor (21), A minor -> C major."""
    if key_index < 12:
        return 12 + (key_index + 9) % 12
    return (key_index - 12 + 3) % 12


def estimate_key(
    chroma_profile: np.ndarray,
    profiles: str = DEFAULT_PROFILES,
    cues: TonicCues | None = None,
) -> KeyEstimate:
    """Key by correlating a pitch-class profile with 24 rotated key profiles, plus tonic cues.

    chroma_profile: shape (12,), energy per pitch class with C first (any scale).
    profiles: a name in KEY_PROFILE_SETS, or MEAN_OF_ALL (the correlation averaged over
    every family). Correlations with every family are kept, so "why this key" can show them
    all. cues: the opening and final bass (`tonic_cues`); their bonus is added to the deciding
    correlation of the keys on those notes (None: the profile decides alone). Confidence is the
    key's deciding correlation (negative counts as 0) times the profile's tonal strength: its
    coefficient of variation relative to 0.5 (a single triad's profile has ~1.3, broadband
    noise ~0.05), capped at 1. An unknown `profiles` raises ValueError.
    """
    if profiles not in KEY_PROFILE_SETS and profiles != MEAN_OF_ALL:
        raise ValueError(
            f"Unknown key profiles {profiles!r}; choose one of {', '.join(PROFILE_CHOICES)}."
        )
    profile = np.asarray(chroma_profile, dtype=np.float64)
    total = profile.sum()
    profile = profile / total if total > 0 and np.isfinite(total) else np.full(12, 1 / 12)
    correlations = {
        name: _key_correlations(profile, major, minor)
        for name, (major, minor) in KEY_PROFILE_SETS.items()
    }
    deciding = (
        np.mean(list(correlations.values()), axis=0)
        if profiles == MEAN_OF_ALL
        else correlations[profiles]
    )
    scores = deciding + (cues.bonus() if cues is not None else 0.0)
    order = np.argsort(-scores, kind="stable")  # best first; a tie goes to the earlier key
    best = int(order[0])
    tonal = float(min(1.0, (profile.std() / profile.mean()) / 0.5))
    return KeyEstimate(
        profile=profile,
        correlations=correlations,
        key_index=best,
        correlation=float(deciding[best]),
        margin=float(scores[best] - scores[order[1]]),
        tonal_strength=tonal,
        confidence=float(max(0.0, deciding[best]) * tonal),
        profiles=profiles,
        profile_correlations=deciding,
        scores=scores,
        cues=cues,
    )


def profile_template(profiles: str, minor: bool, tonic: int = 0) -> np.ndarray:
    """A family's major or minor profile rotated to `tonic` (0 = C), scaled to sum 1, shape (12,).

    MEAN_OF_ALL gives the mean of every family's scaled profile.
    """
    families = list(KEY_PROFILE_SETS) if profiles == MEAN_OF_ALL else [profiles]
    scaled = [np.asarray(KEY_PROFILE_SETS[name][int(minor)], dtype=np.float64) for name in families]
    mean = np.mean([t / t.sum() for t in scaled], axis=0)
    return np.roll(mean, tonic)


def key_correlations(chroma_profiles: np.ndarray, profiles: str = DEFAULT_PROFILES) -> np.ndarray:
    """Pearson r of each column's profile with the 24 keys: (12, n) -> (24, n).

    A column with no energy gets r = 0 everywhere.
    """
    columns = np.asarray(chroma_profiles, dtype=np.float64)
    families = list(KEY_PROFILE_SETS) if profiles == MEAN_OF_ALL else [profiles]
    out = np.zeros((24, columns.shape[1]))
    for name in families:
        major, minor = KEY_PROFILE_SETS[name]
        templates = np.array(
            [np.roll(major, k) for k in range(12)] + [np.roll(minor, k) for k in range(12)]
        )
        t = templates - templates.mean(axis=1, keepdims=True)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        p = columns - columns.mean(axis=0, keepdims=True)
        norms = np.linalg.norm(p, axis=0)
        p = np.divide(p, norms, out=np.zeros_like(p), where=norms > 0)
        out += t @ p
    return out / len(families)


def harmonic_dictionary(
    n_semitones: int, decay: float = PARTIAL_DECAY, partials: int = N_PARTIALS
) -> np.ndarray:
    """Columns = the semitone spectra of harmonic tones: shape (n_semitones, n_semitones).

    Column n has partial h (1..partials) at semitone n + round(12 log2 h) with amplitude
    decay ** (h - 1); partials above the top semitone are dropped.
    """
    dictionary = np.zeros((n_semitones, n_semitones))
    for note in range(n_semitones):
        for h in range(1, partials + 1):
            row = note + int(round(12 * np.log2(h)))
            if row < n_semitones:
                dictionary[row, note] += decay ** (h - 1)
    return dictionary


def nnls_notes(
    cqt_magnitude: np.ndarray,
    bins_per_octave: int,
    block_frames: int = 20,
    decay: float = PARTIAL_DECAY,
) -> np.ndarray:
    """Note activations, overtones explained away: (bins, frames) -> (semitones, blocks).

    cqt_magnitude: a tuned CQT starting at a C, bins_per_octave a multiple of 12 (each
    semitone's bins are summed). Frames are averaged in blocks of block_frames (20 x 23 ms
    ≈ 0.46 s: key needs no finer time) before solving min ||D a - x||, a ≥ 0, per block with
    D = `harmonic_dictionary`. Row n is the semitone n above the CQT's lowest C (C1 = MIDI 24
    in the page's config). Blocks: ceil(frames / block_frames).
    """
    per_semitone = bins_per_octave // 12
    c = np.asarray(cqt_magnitude, dtype=np.float64)
    # Bin 0 sits on the C; centre each semitone's bins on it (C - 1/3, C, C + 1/3 at 36/octave).
    shift = per_semitone // 2
    c = np.vstack([np.zeros((shift, c.shape[1])), c[: c.shape[0] - shift]])
    n_semitones = c.shape[0] // per_semitone
    semitones = c[: n_semitones * per_semitone].reshape(n_semitones, per_semitone, -1).sum(axis=1)
    n_blocks = max(1, -(-semitones.shape[1] // block_frames))
    padded = np.zeros((n_semitones, n_blocks * block_frames))
    padded[:, : semitones.shape[1]] = semitones
    blocks = padded.reshape(n_semitones, n_blocks, block_frames).mean(axis=2)
    dictionary = harmonic_dictionary(n_semitones, decay)
    activations = np.zeros_like(blocks)
    for j in range(n_blocks):
        if blocks[:, j].any():
            activations[:, j] = scipy.optimize.nnls(dictionary, blocks[:, j])[0]
    return activations


def fold_to_chroma(notes: np.ndarray) -> np.ndarray:
    """Sum note activations over octaves: (semitones from a C, blocks) -> (12, blocks)."""
    octaves = notes.shape[0] // 12
    return notes[: octaves * 12].reshape(octaves, 12, -1).sum(axis=0)


def nnls_chroma(
    cqt_magnitude: np.ndarray,
    bins_per_octave: int,
    block_frames: int = 20,
    decay: float = PARTIAL_DECAY,
) -> np.ndarray:
    """Chroma of note activations, overtones explained away: (bins, frames) -> (12, blocks).

    `nnls_notes` folded onto 12 pitch classes (C first).
    """
    return fold_to_chroma(nnls_notes(cqt_magnitude, bins_per_octave, block_frames, decay))


def _key_correlations(
    profile: np.ndarray, major: tuple[float, ...], minor: tuple[float, ...]
) -> np.ndarray:
    """Pearson r of profile with the 12 major then 12 minor rotations, shape (24,)."""
    templates = np.array(
        [np.roll(major, k) for k in range(12)] + [np.roll(minor, k) for k in range(12)]
    )
    t = templates - templates.mean(axis=1, keepdims=True)
    p = profile - profile.mean()
    denom = np.linalg.norm(t, axis=1) * np.linalg.norm(p)
    return (t @ p) / denom if denom.all() else np.zeros(24)


@dataclass(frozen=True)
class KeyGram:
    """Key over time: each block's surrounding window correlated with the 24 keys."""

    times: np.ndarray  # block centres in seconds, shape (blocks,)
    correlations: np.ndarray  # Pearson r, shape (24, blocks), rows as KEY_NAMES
    window_seconds: float
    profiles: str

    @property
    def key_indices(self) -> np.ndarray:
        """The best key per block, shape (blocks,)."""
        return np.argmax(self.correlations, axis=0)

    def regions(self) -> list[tuple[float, float, str]]:
        """Runs of one key as (start seconds, end seconds, key name), in time order."""
        keys, times = self.key_indices, self.times
        if keys.size == 0:
            return []
        step = float(times[1] - times[0]) if times.size > 1 else 0.0
        edges = [0, *np.flatnonzero(np.diff(keys)) + 1, keys.size]
        return [
            (float(times[a] - step / 2), float(times[b - 1] + step / 2), KEY_NAMES[int(keys[a])])
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]


def keygram(
    chroma_blocks: np.ndarray,
    block_seconds: float,
    window_seconds: float = 8.0,
    profiles: str = DEFAULT_PROFILES,
) -> KeyGram:
    """Local key: chroma summed over a window centred on each block, correlated with 24 keys.

    chroma_blocks: shape (12, blocks), e.g. `nnls_chroma`, block_seconds apart.
    window_seconds: the span heard at once (a modulation shows when the window has moved
    past it). Returns a KeyGram with one column per block.
    """
    blocks = np.asarray(chroma_blocks, dtype=np.float64)
    width = max(1, int(round(window_seconds / block_seconds)))
    kernel = np.ones(width)
    summed = np.vstack([np.convolve(row, kernel, mode="same") for row in blocks])
    times = (np.arange(blocks.shape[1]) + 0.5) * block_seconds
    return KeyGram(times, key_correlations(summed, profiles), window_seconds, profiles)
