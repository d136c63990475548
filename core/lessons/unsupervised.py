"""Unsupervised learning on a sound collection: embeddings, 2-D maps, clusters, an autoencoder.

No labels are used to learn anything here. A collection of clips becomes a matrix of
embeddings (one row per clip): MFCC statistics, the bottleneck of a log-mel autoencoder
trained on the collection itself, or (extension point, `EMBEDDING_SOURCES`) the penultimate
layer of a trained classifier. PCA or t-SNE draws the rows on a 2-D map; k-means and HDBSCAN
(a density-based method that finds the number of clusters itself and leaves outliers as
noise) group them. When the clips carry labels (digit, speaker, source recording), the
adjusted Rand index says how well the clusters found *without* them match them.

Clusters are computed in the full (standardised) embedding space, not on the 2-D map: the
map is only a picture, and a projection can merge or tear apart groups.

Why one module of about 550 lines: it is the Sound explorer's whole lesson, in the order the
page teaches it (collections, embeddings, projection and clustering, the autoencoder); its
sections share the Collection type and the embedding matrix.
"""

from __future__ import annotations

import copy
import functools
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import librosa
import numpy as np
import torch
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from torch import nn

from core import paths
from core.audio.clip import AudioError
from core.audio.features import (
    FeatureConfig,
    MelSpectrogram,
    make_feature_transform,
    mel_filterbank,
)
from core.audio.io import load_audio
from core.audio.levels import rms
from core.data.zips import extract_zip_safely
from core.inference.classifier import prepare_clip

SAMPLE_RATE = 16000  # Hz: every clip of a collection is resampled to this
DIGIT_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<take>\d+)$")
ZIP_MAX_FILES = 1000  # an explorer collection, not a training set: keep the page responsive
ZIP_MAX_BYTES = 300 * 1024**2  # total uncompressed size of an uploaded zip
ZIP_MAX_CLIP_SECONDS = 10.0  # longer files are trimmed to their first 10 s


@dataclass(frozen=True, eq=False)
class Clip:
    name: str  # shown next to the player
    samples: np.ndarray  # float32 mono, shape (n,), at the collection's sample rate
    labels: dict[str, str] = field(
        default_factory=dict
    )  # e.g. {"digit": "3", "speaker": "jackson"}


@dataclass(frozen=True, eq=False)
class Collection:
    clips: tuple[Clip, ...]
    sample_rate: int = SAMPLE_RATE
    skipped: tuple[str, ...] = ()  # "name: reason" for every file left out

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label kinds carried by every clip (e.g. ("digit", "speaker"))."""
        if not self.clips:
            return ()
        common = set(self.clips[0].labels)
        for clip in self.clips[1:]:
            common &= set(clip.labels)
        return tuple(sorted(common))

    def labels(self, kind: str) -> list[str]:
        return [clip.labels[kind] for clip in self.clips]


# ---------------------------------------------------------------------------- collections


def builtin_digit_collection(n_clips: int = 200, seed: int = 0) -> Collection:
    """A balanced subset of the shipped spoken digits: every (digit, speaker) pair equally.

    n_clips is rounded down to a multiple of the number of pairs (40 for 10 digits x 4
    speakers). Labels: "digit" and "speaker".
    """
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in paths.builtin_digit_files():
        match = DIGIT_NAME.match(path.stem)
        if match:
            groups.setdefault((match["digit"], match["speaker"]), []).append(path)
    if not groups:
        raise FileNotFoundError("The spoken-digit recordings are missing from data/digits.")
    rng = np.random.default_rng(seed)
    per_group = max(1, n_clips // len(groups))
    clips = []
    for (digit, speaker), files in sorted(groups.items()):
        for index in sorted(rng.choice(len(files), min(per_group, len(files)), replace=False)):
            audio = load_audio(files[index], sample_rate=SAMPLE_RATE)
            clips.append(
                Clip(files[index].stem, audio.samples, {"digit": digit, "speaker": speaker})
            )
    return Collection(tuple(clips))


def builtin_music_collection(window_seconds: float = 2.0, windows_per_clip: int = 10) -> Collection:
    """Windows cut from the shipped music and sound clips; label "recording" (the source).

    Windows quieter than -40 dBFS RMS are left out (they would cluster as "silence").
    """
    clips, skipped = [], []
    hop = int(window_seconds * SAMPLE_RATE)
    for path in paths.builtin_music_clips():
        audio = load_audio(
            path, sample_rate=SAMPLE_RATE, max_seconds=window_seconds * windows_per_clip
        )
        source = path.stem.replace("_", " ")[:40]
        for start in range(0, audio.num_samples - hop + 1, hop):
            window = audio.samples[start : start + hop]
            name = f"{source} @ {start / SAMPLE_RATE:.0f} s"
            if rms(window) < 0.01:
                skipped.append(f"{name}: nearly silent")
                continue
            clips.append(Clip(name, window, {"recording": source}))
    return Collection(tuple(clips), skipped=tuple(skipped))


def collection_from_zip(data: bytes, *, max_files: int = ZIP_MAX_FILES) -> Collection:
    """The audio files of an uploaded zip, extracted safely, as a collection.

    Extraction uses `core.data.zips.extract_zip_safely` (caps on file count and total size, no
    absolute or `..` paths, symbolic links and non-audio files skipped and reported) into a
    temporary folder that is removed afterwards. Labels: "folder" when the files sit in at
    least two sub-folders; "digit"/"speaker" when every name follows `{digit}_{speaker}_{n}`.
    Files that do not decode are skipped with the reason.

    Raises:
        DatasetError (a ValueError) for an unreadable or oversized zip; ValueError when no
        usable clip remains.
    """
    clips, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="explore_zip_") as tmp:
        report = extract_zip_safely(data, tmp, max_files=max_files, max_total_bytes=ZIP_MAX_BYTES)
        skipped.extend(report.skipped)
        for path in sorted(report.extracted):
            relative = PurePosixPath(path.relative_to(tmp).as_posix())
            try:
                audio = load_audio(path, sample_rate=SAMPLE_RATE, max_seconds=ZIP_MAX_CLIP_SECONDS)
            except AudioError as error:
                skipped.append(f"{relative}: {error}")
                continue
            clips.append(Clip(str(relative), audio.samples, {"folder": str(relative.parent)}))
    if len(clips) < 3:
        raise ValueError(
            f"The zip holds {len(clips)} usable audio file(s); the explorer needs at least 3."
        )
    return Collection(_infer_labels(clips), skipped=tuple(skipped))


def _infer_labels(clips: list[Clip]) -> tuple[Clip, ...]:
    folders = {clip.labels["folder"] for clip in clips}
    matches = [DIGIT_NAME.match(PurePosixPath(clip.name).stem) for clip in clips]
    out = []
    for clip, match in zip(clips, matches, strict=True):
        labels = dict(clip.labels) if len(folders) > 1 else {}
        if all(matches):
            labels.update(digit=match["digit"], speaker=match["speaker"])
        out.append(Clip(clip.name, clip.samples, labels))
    return tuple(out)


# ----------------------------------------------------------------------------- embeddings

MFCC_CONFIG = FeatureConfig(
    sample_rate=SAMPLE_RATE, n_fft=512, hop_length=160, n_mels=40, n_mfcc=20
)


def _pad_batch(clips: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
    lengths = np.array([len(c) for c in clips])
    batch = torch.zeros(len(clips), int(lengths.max()))
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = torch.from_numpy(np.asarray(clip, dtype=np.float32))
    return batch, lengths


@torch.inference_mode()
def mfcc_statistics(
    clips: list[np.ndarray],
    *,
    config: FeatureConfig = MFCC_CONFIG,
    device: torch.device | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Mean and standard deviation over time of each MFCC: shape (n_clips, 2 * n_mfcc).

    Clips of different lengths are zero-padded into batches of `batch_size`; statistics use
    only each clip's own frames (`config.num_frames(len)`). Because the transform pads with
    zeros at the edges anyway, a batch gives the same numbers as one clip at a time. Clips
    are batched in order of length (rows come back in the input order).

    clips: float32 mono waveforms at `config.sample_rate`. device: where to compute (CPU by
    default).
    """
    if not clips:
        raise ValueError("There are no clips to embed.")
    device = device or torch.device("cpu")
    transform = make_feature_transform(config, "mfcc").to(device)
    # batch clips of similar length together, so little time goes into padding
    order = np.argsort([len(c) for c in clips], kind="stable")
    rows = np.empty((len(clips), 2 * config.n_mfcc), dtype=np.float32)
    for start in range(0, len(clips), batch_size):
        chunk = order[start : start + batch_size]
        batch, lengths = _pad_batch([clips[i] for i in chunk])
        mfcc = transform(batch.to(device)).cpu().numpy()  # (b, n_mfcc, frames)
        for row, features, length in zip(chunk, mfcc, lengths, strict=True):
            valid = features[:, : config.num_frames(int(length))]
            rows[row] = np.concatenate([valid.mean(axis=1), valid.std(axis=1)])
    return rows


def standardize(embeddings: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per dimension, so no single coefficient dominates distances."""
    return StandardScaler().fit_transform(np.asarray(embeddings, dtype=np.float64))


# A named embedding method: (collection, device) -> (n_clips, dims). The page lists these;
# "Autoencoder bottleneck" is added by the page once a model is trained (it needs the model).
EmbeddingFn = Callable[[Collection, torch.device], np.ndarray]
EMBEDDING_SOURCES: dict[str, EmbeddingFn] = {
    "MFCC statistics": lambda collection, device: mfcc_statistics(
        [c.samples for c in collection.clips], device=device
    ),
}


def penultimate_embeddings(
    model: nn.Module, inputs: torch.Tensor, *, device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Activations entering the model's last nn.Linear (its penultimate layer), (n, features).

    Extension point for "penultimate layer of a trained model": any classifier whose final
    layer is an nn.Linear works; `inputs` is what its forward takes, (n, ...). A forward hook
    captures the input of the last Linear, so the model itself needs no change.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("This model has no final linear layer to read a penultimate layer from.")
    captured: list[torch.Tensor] = []
    handle = linears[-1].register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    try:
        model = model.to(device).eval()
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                model(inputs[start : start + batch_size].to(device))
    finally:
        handle.remove()
    return torch.cat([c.flatten(1) for c in captured]).cpu().numpy()


def trained_model_embeddings(collection: Collection, model) -> np.ndarray:
    """Penultimate-layer embeddings of a trained classifier (a
    core.inference.classifier.InferenceModel).

    Each clip is prepared exactly as the classifier's training prepared its inputs
    (`core.inference.classifier.prepare_clip`: resample, features, normalisation, centre crop/pad),
    then `penultimate_embeddings` reads the activations entering its last linear layer.
    Works on a copy of the network, because the loaded model may be shared by every session.
    Returns (n_clips, features).
    """
    inputs = torch.cat(
        [
            prepare_clip(c.samples, collection.sample_rate, model).model_input
            for c in collection.clips
        ]
    )
    network = copy.deepcopy(model.network)
    return penultimate_embeddings(network, inputs, device=model.device)


# ------------------------------------------------------------------- projection, clustering

PROJECTIONS = ("PCA", "t-SNE")
TSNE_ITERATIONS = 500  # gradient steps of the t-SNE map (scikit-learn's max_iter)


def project_2d(
    embeddings: np.ndarray, method: str = "PCA", *, seed: int = 0, verbose: int = 0
) -> np.ndarray:
    """A 2-D map of (n, d) embeddings: shape (n, 2). Standardises first.

    PCA keeps the two directions of largest variance (linear, global distances); t-SNE keeps
    neighbourhoods (non-linear; distances between far groups mean little). Perplexity is
    capped for small collections. verbose: scikit-learn's t-SNE log level (2 prints every
    50th iteration, which core.jobs.tasks turns into progress).
    """
    x = standardize(embeddings)
    if len(x) < 3:
        raise ValueError("A map needs at least 3 clips.")
    if method == "PCA":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "t-SNE":
        perplexity = float(min(30.0, (len(x) - 1) / 3))
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            max_iter=TSNE_ITERATIONS,
            random_state=seed,
            verbose=verbose,
        )
        return tsne.fit_transform(x)
    raise ValueError(f"Unknown projection {method!r}; choose one of {PROJECTIONS}.")


CLUSTERINGS = ("k-means", "HDBSCAN")


@dataclass(frozen=True)
class ClusterConfig:
    method: str = "k-means"  # one of CLUSTERINGS
    k: int = 10  # k-means: number of clusters
    min_cluster_size: int = 5  # HDBSCAN: smallest group that counts as a cluster
    seed: int = 0


def cluster(embeddings: np.ndarray, config: ClusterConfig = ClusterConfig()) -> np.ndarray:
    """Cluster ids, shape (n,), on standardised embeddings; HDBSCAN marks noise with -1."""
    x = standardize(embeddings)
    if config.method == "k-means":
        if not 1 <= config.k <= len(x):
            raise ValueError(f"k must be between 1 and the number of clips ({len(x)}).")
        return KMeans(n_clusters=config.k, n_init=4, random_state=config.seed).fit_predict(x)
    if config.method == "HDBSCAN":
        if not 2 <= config.min_cluster_size <= len(x):
            raise ValueError(f"The minimum cluster size must be between 2 and {len(x)}.")
        return HDBSCAN(min_cluster_size=config.min_cluster_size, copy=True).fit_predict(x)
    raise ValueError(f"Unknown clustering {config.method!r}; choose one of {CLUSTERINGS}.")


def label_agreement(clusters: np.ndarray, collection: Collection) -> dict[str, float]:
    """Adjusted Rand index of the clusters against each label kind: {kind: ARI}.

    1 = the same partition, about 0 = no better than chance (it can go slightly negative).
    HDBSCAN's noise points (-1) count as one more group.
    """
    return {
        kind: float(adjusted_rand_score(collection.labels(kind), clusters))
        for kind in collection.label_names
    }


# ---------------------------------------------------------------------------- autoencoder


@dataclass(frozen=True)
class AutoencoderConfig:
    n_mels: int = 64  # mel bands of each input patch (multiple of 8)
    frames: int = 64  # frames of each patch (multiple of 8): about 1 s at hop 256, 16 kHz
    n_fft: int = 1024
    hop_length: int = 256
    top_db: float = 80.0  # dynamic range kept below each clip's peak, mapped onto [0, 1]
    bottleneck: int = 16  # size of the code: the autoencoder embedding
    channels: int = 8  # width of the first convolution (small: trains live on a CPU)
    learning_rate: float = 3e-3
    batch_size: int = 16
    seed: int = 0

    def feature_config(self, sample_rate: int = SAMPLE_RATE) -> FeatureConfig:
        return FeatureConfig(
            sample_rate=sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            top_db=None,
        )


@dataclass(frozen=True, eq=False)
class MelPatches:
    patches: np.ndarray  # (n, 1, n_mels, frames) float32 in [0, 1]: 0 = top_db below peak
    peak_db: np.ndarray  # (n,) each clip's peak in dB (ref 1.0), to undo the scaling


def log_mel_patches(
    clips: list[np.ndarray],
    config: AutoencoderConfig = AutoencoderConfig(),
    *,
    sample_rate: int = SAMPLE_RATE,
) -> MelPatches:
    """Fixed-size log-mel patches: each clip centre-cropped or zero-padded to
    `(frames - 1) * hop_length` samples, mel power in dB relative to its own peak, floored at
    `-top_db` and scaled to [0, 1]."""
    n_samples = (config.frames - 1) * config.hop_length
    fixed = []
    for clip in clips:
        if len(clip) >= n_samples:
            start = (len(clip) - n_samples) // 2
            fixed.append(clip[start : start + n_samples])
        else:
            fixed.append(np.pad(clip, (0, n_samples - len(clip))))
    mel = MelSpectrogram(config.feature_config(sample_rate))
    with torch.inference_mode():
        power = mel(torch.from_numpy(np.stack(fixed).astype(np.float32)))
    db = 10 * torch.log10(power.clamp_min(1e-10))
    peak = db.amax(dim=(-2, -1), keepdim=True)
    scaled = ((db - peak + config.top_db) / config.top_db).clamp(0, 1)
    return MelPatches(scaled.unsqueeze(1).numpy(), peak.flatten().numpy())


def patch_to_audio(
    patch: np.ndarray,
    peak_db: float,
    config: AutoencoderConfig = AutoencoderConfig(),
    *,
    sample_rate: int = SAMPLE_RATE,
    n_iter: int = 32,
) -> np.ndarray:
    """Invert a [0, 1] log-mel patch (n_mels, frames) to a waveform with Griffin-Lim.

    Undo the scaling to mel power, spread the mel bands back over linear frequencies with
    the pseudo-inverse of the filterbank (least squares, clipped at zero: far faster than
    librosa's non-negative least squares and just as audible here), and let Griffin-Lim
    (librosa.griffinlim) invent phases that agree with the magnitudes. The result sounds
    phasey: a mel spectrogram has thrown away the phase and fine frequency detail.
    Returns float32, peak-normalised to 0.9.
    """
    db = np.asarray(patch, dtype=np.float64).reshape(config.n_mels, config.frames)
    mel_power = 10 ** ((db * config.top_db - config.top_db + peak_db) / 10)
    linear_power = np.maximum(_mel_pseudo_inverse(config, sample_rate) @ mel_power, 0.0)
    audio = librosa.griffinlim(
        np.sqrt(linear_power),
        n_iter=n_iter,
        hop_length=config.hop_length,
        n_fft=config.n_fft,
        random_state=0,
    )
    peak = float(np.abs(audio).max())
    return (audio * (0.9 / peak) if peak > 0 else audio).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _mel_pseudo_inverse(config: AutoencoderConfig, sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) least-squares inverse of core.audio.features' slaney mel filterbank."""
    return np.linalg.pinv(mel_filterbank(config.feature_config(sample_rate)).double().numpy())


class ConvAutoencoder(nn.Module):
    """(n, 1, n_mels, frames) -> code (n, bottleneck) -> (n, 1, n_mels, frames) in [0, 1].

    Three stride-2 convolutions halve the patch three times, a linear layer squeezes it into
    `bottleneck` numbers, and the mirror image rebuilds it. The only training signal is the
    input itself: no labels.
    """

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        if config.n_mels % 8 or config.frames % 8:
            raise ValueError("The autoencoder needs n_mels and frames that are multiples of 8.")
        c = config.channels
        self.inner = (2 * c, config.n_mels // 8, config.frames // 8)
        flat = self.inner[0] * self.inner[1] * self.inner[2]
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, config.bottleneck),
        )
        self.decoder_input = nn.Linear(config.bottleneck, flat)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.decoder_input(code).view(-1, *self.inner))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@dataclass(frozen=True)
class AutoencoderEvent:
    step: int  # 1-based optimisation step
    total_steps: int
    loss: float  # mean squared reconstruction error of this step's batch (on [0, 1] patches)


def train_autoencoder(
    model: ConvAutoencoder,
    patches: np.ndarray,
    config: AutoencoderConfig,
    *,
    steps: int,
    device: torch.device,
) -> Iterator[AutoencoderEvent]:
    """Train `model` in place to reproduce `patches` (n, 1, n_mels, frames); yield each step.

    Adam on mean squared error, random mini-batches of `config.batch_size`, seeded by
    `config.seed`. Stop consuming the generator to stop training; the model keeps what it
    has learnt so far.
    """
    if not 1 <= steps <= 20_000:
        raise ValueError("Train the autoencoder for between 1 and 20000 steps.")
    data = torch.from_numpy(np.asarray(patches, dtype=np.float32)).to(device)
    if len(data) < 2:
        raise ValueError("The autoencoder needs at least 2 clips to learn from.")
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    for step in range(1, steps + 1):
        index = torch.randint(len(data), (min(config.batch_size, len(data)),), generator=generator)
        batch = data[index.to(device)]
        loss = nn.functional.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        yield AutoencoderEvent(step, steps, float(loss.detach()))
    model.eval()


@torch.inference_mode()
def autoencoder_outputs(
    model: ConvAutoencoder, patches: np.ndarray, *, device: torch.device, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n, bottleneck), reconstructions (n, 1, n_mels, frames)) for every patch."""
    model.to(device).eval()
    codes, recons = [], []
    data = torch.from_numpy(np.asarray(patches, dtype=np.float32))
    for start in range(0, len(data), batch_size):
        code = model.encode(data[start : start + batch_size].to(device))
        codes.append(code.cpu())
        recons.append(model.decode(code).cpu())
    return torch.cat(codes).numpy(), torch.cat(recons).numpy()


def reconstruction_error(patches: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean squared error between [0, 1] patches and their reconstructions."""
    return float(np.mean((np.asarray(patches) - np.asarray(reconstructions)) ** 2))
