"""Data sets and what is measured about them before training.

- `datasets`       labelled clips: the shipped recordings, folders, known layouts, browser clips
- `sources`        load_dataset(source): one string for every kind of data set
- `zips`           zip uploads extracted safely
- `splits`         training / validation splits and leakage checks
- `feature_cache`  the training inputs of a data set, computed once and cached on disk
- `augment`        training-time augmentation of waveforms and spectrograms
- `profile`        measure a data set (rates, bandwidth, durations, silence) and choose a recipe
- `render_notes`   instrument notes rendered with fluidsynth and General MIDI soundfonts

Layering: builds on `core.audio`; used by `core.training` and the pages.
"""
