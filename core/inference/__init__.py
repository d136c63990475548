"""Using a trained model: classify clips and long recordings, explain, listen live.

- `classifier`  InferenceModel (a run + its input recipe), classify_clip, classify_windows,
                segments of a timeline
- `saliency`    occlusion and Grad-CAM maps over the model input
- `streaming`   live listening (a package: frames, classifier_stream, tuner, stream, slots)

Layering: builds on `core.audio`, `core.data`, `core.models` and `core.training.runs`.
"""
