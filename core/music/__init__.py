"""Music analysis that computes each shared representation once and reuses it.

`MusicAnalysis(y, config)` is lazy: a property is computed the first time it is asked for and
kept. Every representation is derived from the one it depends on, never from the waveform
again:

    waveform ─ STFT ─┬─ magnitude ─ centroid, bandwidth, roll-off, flatness, RMS, tuning
                     ├─ power ─ mel ─ log-mel ─┬─ MFCC
                     │                         └─ onset strength ─┬─ onsets
                     │                                            ├─ tempogram ─ tempo
                     │                                            └─ beats (given the tempo)
                     ├─ chroma (STFT)
                     └─ HPSS masks ─ harmonic / percussive waveforms
    waveform ─ CQT (tuned by the STFT's tuning) ─┬─ harmonic part ─ NNLS notes ─┬─ chroma ─ key, key-gram
                                                  │                              └─ opening / final bass (key)
                                                  └─ chroma (CQT) ─┬─ chord flux (beats)
                                                                 ├─ chroma (CENS)
                                                                 └─ (with MFCC) self-similarity ─ novelty ─ segments

librosa computes each step; the saving comes from handing it the shared intermediate
(`S=`, `C=`, `onset_envelope=`, `tg=`) instead of the waveform. Features that a clip cannot
support (tempo of silence, structure of 0.2 s) raise `NotComputable` with a sentence for the
student; `MusicAnalysis.limitations()` lists them without raising.
"""

from core.music.export import export_csv, export_json, frame_table
from core.music.keys import (
    DEFAULT_PROFILES,
    KEY_NAMES,
    KEY_PROFILE_SETS,
    KRUMHANSL_MAJOR,
    KRUMHANSL_MINOR,
    MEAN_OF_ALL,
    PITCH_CLASSES,
    PROFILE_CHOICES,
    TEMPERLEY_MAJOR,
    TEMPERLEY_MINOR,
    KeyEstimate,
    KeyGram,
    TonicCues,
    bass_line,
    estimate_key,
    key_correlations,
    keygram,
    nnls_chroma,
    profile_template,
    tonic_cues,
)
from core.music.pitch import PitchContour
from core.music.rhythm import (
    MetricalLevel,
    TempoChoice,
    beat_tracking_envelope,
    chroma_flux,
    drop_off_grid_edge_beats,
    metrical_levels,
    mix_clicks,
    refine_tempo,
)
from core.music.session import (
    AnalysisConfig,
    MusicAnalysis,
    NotComputable,
    prepare_signal,
)
from core.music.spectral import (
    HOP_CHOICES,
    N_FFT_CHOICES,
    SPECTROGRAM_SCALES,
    WINDOWS,
    SpectrogramView,
    blockwise,
    harmonic_mask,
)
from core.music.structure import Structure, compute_structure, foote_novelty

__all__ = [
    "DEFAULT_PROFILES",
    "MEAN_OF_ALL",
    "PROFILE_CHOICES",
    "KeyGram",
    "MetricalLevel",
    "TempoChoice",
    "beat_tracking_envelope",
    "chroma_flux",
    "key_correlations",
    "keygram",
    "metrical_levels",
    "nnls_chroma",
    "profile_template",
    "TonicCues",
    "bass_line",
    "tonic_cues",
    "HOP_CHOICES",
    "KEY_NAMES",
    "KEY_PROFILE_SETS",
    "KRUMHANSL_MAJOR",
    "KRUMHANSL_MINOR",
    "N_FFT_CHOICES",
    "PITCH_CLASSES",
    "SPECTROGRAM_SCALES",
    "TEMPERLEY_MAJOR",
    "TEMPERLEY_MINOR",
    "WINDOWS",
    "AnalysisConfig",
    "KeyEstimate",
    "MusicAnalysis",
    "NotComputable",
    "PitchContour",
    "SpectrogramView",
    "Structure",
    "blockwise",
    "compute_structure",
    "drop_off_grid_edge_beats",
    "estimate_key",
    "export_csv",
    "export_json",
    "foote_novelty",
    "frame_table",
    "harmonic_mask",
    "mix_clicks",
    "prepare_signal",
    "refine_tempo",
]
