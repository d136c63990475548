"""Key estimation: a clip's pitch-class profile correlated with 24 major and minor key profiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


KEY_PROFILE_SETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "Krumhansl-Schmuckler": (KRUMHANSL_MAJOR, KRUMHANSL_MINOR),
    "Temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
}


KEY_NAMES = tuple(f"{p} major" for p in PITCH_CLASSES) + tuple(f"{p} minor" for p in PITCH_CLASSES)


@dataclass(frozen=True)
class KeyEstimate:
    """The key found by correlating the clip's chroma profile with 24 key profiles.

    profile: the clip's pitch-class distribution, shape (12,), sums to 1 (C first).
    correlations: {profile set name: array (24,)}: Pearson r with C major..B major,
        then C minor..B minor.
    key_index: 0..23 into KEY_NAMES (argmax of the mean correlation over profile sets).
    confidence: 0..1: the best mean correlation, scaled down when the profile is flat
        (noise has no key: its profile barely departs from uniform).
    """

    profile: np.ndarray
    correlations: dict[str, np.ndarray]
    key_index: int
    correlation: float
    margin: float  # best minus second-best mean correlation
    tonal_strength: float  # 0..1, how far the profile is from flat
    confidence: float

    @property
    def name(self) -> str:
        return KEY_NAMES[self.key_index]

    @property
    def is_confident(self) -> bool:
        return self.confidence >= 0.5


def estimate_key(chroma_profile: np.ndarray) -> KeyEstimate:
    """Key by correlating a pitch-class profile with 24 rotated key profiles per profile set.

    chroma_profile: shape (12,), energy per pitch class with C first (any scale).
    The decision is the argmax of the correlation averaged over KEY_PROFILE_SETS. Confidence
    is that correlation (negative counts as 0) times the profile's tonal strength: its
    coefficient of variation relative to 0.5 (a single triad's profile has ~1.3, broadband
    noise ~0.05), capped at 1.
    """
    profile = np.asarray(chroma_profile, dtype=np.float64)
    total = profile.sum()
    profile = profile / total if total > 0 else np.full(12, 1 / 12)
    correlations = {
        name: _key_correlations(profile, major, minor)
        for name, (major, minor) in KEY_PROFILE_SETS.items()
    }
    mean = np.mean(list(correlations.values()), axis=0)
    order = np.argsort(mean)[::-1]
    best = int(order[0])
    tonal = float(min(1.0, (profile.std() / profile.mean()) / 0.5))
    return KeyEstimate(
        profile=profile,
        correlations=correlations,
        key_index=best,
        correlation=float(mean[best]),
        margin=float(mean[best] - mean[order[1]]),
        tonal_strength=tonal,
        confidence=float(max(0.0, mean[best]) * tonal),
    )


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
