"""Classifying audio with a trained run: one clip, many clips, or parts of a long recording.

This module is the one import for callers (the Classify pages, the Ray tasks, the live stream,
the tests); the work is split by what it does:

- `core.inference.model`       InferenceModel (a network + its InputRecipe), loading it from a
                               run, folding conv + batch norm for speed
- `core.inference.model_menu`  the shipped models and a student's runs as menu entries, loading
                               one, importing a run archive (checked, never unpickled)
- `core.inference.clip`        one clip: prepare as training did, classify, top-k, "unsure",
                               warnings for a clip far from the training data
- `core.inference.timeline`    windows over a long recording, smoothing, segments
- `core.inference.batch`       many files to one table (and its CSV), safe download names
"""

from core.inference.batch import BatchRow, batch_csv, classify_files, file_stem
from core.inference.clip import (
    CLIPPED_FRACTION,
    DEFAULT_TOP_K,
    LONG_CLIP_FACTOR,
    LOUD_RMS_DBFS,
    QUIET_RMS_DBFS,
    UNSURE_MARGIN,
    UNSURE_PROBABILITY,
    ClipResult,
    Prediction,
    PreparedClip,
    classify_clip,
    clip_warnings,
    prepare_clip,
    to_model_rate,
    top_k,
    unsure_reason,
)
from core.inference.model import (
    DEFAULT_BATCH,
    InferenceError,
    InferenceModel,
    describe_model,
    model_from_loaded_run,
    optimise_for_inference,
)
from core.inference.model_menu import (
    PICKLE_HINT,
    ModelChoice,
    available_models,
    card_for,
    import_run_archive,
    load_choice,
    shipped_store,
    weights_problem,
)
from core.inference.timeline import (
    SILENCE_GATE_DB,
    Segment,
    WindowResult,
    classify_windows,
    find_segments,
    segment_audio,
    smooth_probabilities,
)

__all__ = [
    "CLIPPED_FRACTION",
    "DEFAULT_BATCH",
    "DEFAULT_TOP_K",
    "LONG_CLIP_FACTOR",
    "LOUD_RMS_DBFS",
    "PICKLE_HINT",
    "QUIET_RMS_DBFS",
    "SILENCE_GATE_DB",
    "UNSURE_MARGIN",
    "UNSURE_PROBABILITY",
    "BatchRow",
    "ClipResult",
    "InferenceError",
    "InferenceModel",
    "ModelChoice",
    "Prediction",
    "PreparedClip",
    "Segment",
    "WindowResult",
    "available_models",
    "batch_csv",
    "card_for",
    "classify_clip",
    "classify_files",
    "classify_windows",
    "clip_warnings",
    "describe_model",
    "file_stem",
    "find_segments",
    "import_run_archive",
    "load_choice",
    "model_from_loaded_run",
    "optimise_for_inference",
    "prepare_clip",
    "segment_audio",
    "shipped_store",
    "smooth_probabilities",
    "to_model_rate",
    "top_k",
    "unsure_reason",
    "weights_problem",
]
