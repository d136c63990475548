"""Data sets and what is measured about them before training.

- `datasets`       labelled clips from folders, zips and the shipped recordings; splits
- `feature_cache`  the training inputs of a data set, computed once and cached on disk
- `augment`        training-time augmentation of waveforms and spectrograms
- `profile`        measure a data set (rates, bandwidth, durations, silence) and choose a recipe
- `render_notes`   instrument notes rendered with fluidsynth and General MIDI soundfonts

Layering: builds on `core.audio`; used by `core.training` and the pages.
"""
