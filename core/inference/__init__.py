"""Using a trained model: classify clips and long recordings, explain, listen live.

- `classifier`  the one import for callers, re-exporting the five modules that do the work:
  - `model`       InferenceModel (a run + its input recipe), loading it from a run
  - `model_menu`  the shipped models and a student's runs, loading one, importing an archive
  - `clip`        one clip: prepare as training did, classify, "unsure", warnings
  - `timeline`    windows over a long recording, smoothing, segments
  - `batch`       many files to one table and its CSV
- `saliency`    occlusion and Grad-CAM maps over the model input
- `streaming`   live listening (a package: frames, classifier_stream, tuner, stream, slots)

Layering: builds on `core.audio`, `core.data`, `core.models` and `core.training.runs`.
"""
