"""The model inputs of a training's examples: computed once, kept in memory, augmented anew.

`ExampleBank` is the data side of one run of the trainer (core.training.trainer): every
example's normalised, fixed-length features of shape (1, bins, frames), made by the run's
InputRecipe from the feature cache the first time the example is asked for and kept in one
tensor after that; per-clip augmentations (waveform changes, the log-mel equaliser) are made
anew every time an example is drawn for training. A file that cannot be decoded is left out
and remembered with its reason, so a run reports it instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.audio.clip import AudioError
from core.audio.input_recipe import InputRecipe
from core.data.augment import AugmentConfig, augment_waveform, random_equalizer
from core.data.datasets import AudioDataset, load_example_audio
from core.data.feature_cache import FeatureCache


class ExampleBank:
    """Features of a data set's examples for one training run.

    data: the AudioDataset; cache: its FeatureCache (raw features, computed once, on disk);
    recipe: the run's InputRecipe (fits raw features to (bins, frames) and normalises them);
    augment: the run's AugmentConfig; equalize: apply the log-mel equaliser (dB features only);
    failed: examples already known to be undecodable (index -> reason), e.g. from fitting the
    normalisation.
    """

    def __init__(
        self,
        data: AudioDataset,
        cache: FeatureCache,
        recipe: InputRecipe,
        *,
        augment: AugmentConfig,
        equalize: bool,
        failed: Mapping[int, str] | None = None,
    ):
        config = recipe.config
        self.data = data
        self.cache = cache
        self.recipe = recipe
        self.augment = augment
        self.equalize = equalize
        self.sample_rate = config.features.sample_rate
        self.bins = config.features.num_bins(config.kind)
        self.frames = config.clip_frames
        self.failed: dict[int, str] = dict(failed or {})  # index -> why it was left out
        self.bank = torch.zeros(len(data), 1, self.bins, self.frames)
        self.ready = torch.zeros(len(data), dtype=torch.bool)
        self.targets = torch.as_tensor(data.targets)
        self.raw_features: dict[int, torch.Tensor] = {}  # kept for the equaliser only
        self.waves: dict[int, np.ndarray] = {}  # decoded audio, for waveform augmentation

    def example(self, index: int) -> torch.Tensor | None:
        """The normalised, fixed-length features (1, bins, frames) of one example, None if its
        file could not be decoded."""
        if self.ready[index]:
            return self.bank[index]
        if index in self.failed:
            return None
        try:
            raw = self.cache.features(self.data, self.data.examples[index])
        except (AudioError, OSError) as error:
            self.failed[index] = f"{self.data.examples[index].ref}: {error}"
            return None
        self.bank[index, 0] = self.recipe.fit(raw)
        if self.equalize:  # the equaliser acts before trimming: keep the untrimmed features
            self.raw_features[index] = raw
        self.ready[index] = True
        return self.bank[index]

    def augmented_example(
        self, index: int, rng: np.random.Generator | None, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Features of one example after the per-clip augmentations, made anew every time:
        waveform changes (when `rng` is given: the features are recomputed from the changed
        audio) and the log-mel equaliser, both before trimming and normalising."""
        if self.example(index) is None:
            return None
        if rng is not None:
            raw = self.cache.compute(self._augmented_wave(index, rng))
        else:
            raw = self.raw_features[index]
        if self.equalize:
            raw = random_equalizer(raw, self.augment.eq_db, generator)
        return self.recipe.fit(raw)[None]

    def _augmented_wave(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """One example's audio after the waveform-domain augmentations (decoded once)."""
        if index not in self.waves:
            self.waves[index] = load_example_audio(
                self.data, self.data.examples[index], self.sample_rate
            )
        return augment_waveform(self.waves[index], self.sample_rate, self.augment, rng)

    def batch(
        self,
        indices: Sequence[int],
        rng: np.random.Generator | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (n, 1, bins, frames) and targets (n,) of `indices` (undecodable ones left
        out); with a `generator` (training), the per-clip augmentations (waveform when `rng`
        is given, equaliser) are applied."""
        per_clip = generator is not None and (rng is not None or self.equalize)
        if per_clip:
            items = [(i, self.augmented_example(i, rng, generator)) for i in indices]
        else:
            items = [(i, self.example(i)) for i in indices]
        kept = [(i, x) for i, x in items if x is not None]
        if not kept:
            return torch.empty(0, 1, self.bins, self.frames), torch.empty(0, dtype=torch.long)
        if not per_clip and all(self.ready[i] for i, _ in kept):
            index = torch.as_tensor([i for i, _ in kept])
            return self.bank.index_select(0, index), self.targets.index_select(0, index)
        return torch.stack([x for _, x in kept]), self.targets[[i for i, _ in kept]]

    def evaluation_tensors(
        self, indices: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """Features, targets and the examples themselves (for their names) of `indices`,
        without augmentation: the validation set."""
        x, y = self.batch(indices)
        kept = [i for i in indices if self.ready[i]]
        return x, y, [self.data.examples[i] for i in kept]

    def skip_message(self) -> str:
        """A sentence about the examples left out, "" when none was."""
        if not self.failed:
            return ""
        return f"{len(self.failed)} example(s) could not be decoded and were left out."
