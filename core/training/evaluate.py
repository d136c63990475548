"""How well a trained classifier does, class by class, and what it has learned to see.

`evaluate_model` runs a model over a labelled feature tensor and returns an `Evaluation`:
accuracy and loss, per-class precision / recall / F1, the confusion matrix, the
misclassified examples (with the file and time window so a page can play them) and the
penultimate-layer embeddings with 2-D PCA and t-SNE projections.

`predict_proba` / `predict_windows` classify a waveform with a loaded run
(core.training.runs.LoadedRun) through its InputRecipe, one window at a time (the reference the
batched timeline of core.inference is measured against).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from core.training.runs import LoadedRun


@dataclass(frozen=True)
class Misclassified:
    """One validation example the model got wrong.

    source: file path (or `memory:<n>` for a browser clip); start_seconds / duration_seconds:
    the window inside it (duration None = to the end); confidence: softmax probability of
    the wrong prediction.
    """

    index: int  # position in the evaluated set
    source: str
    start_seconds: float
    duration_seconds: float | None
    ref: str
    group: str
    true_label: str
    predicted_label: str
    confidence: float


@dataclass(frozen=True)
class Evaluation:
    """Scores on one labelled set. Arrays are numpy; `to_dict()` gives the JSON-safe part.

    confusion[i][j]: examples of true class i predicted as class j.
    embeddings: (N, D) penultimate-layer outputs; projection_pca / projection_tsne: (N, 2)
    (t-SNE is None when switched off or with fewer than 5 examples).
    """

    labels: tuple[str, ...]
    accuracy: float
    loss: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]
    misclassified: tuple[Misclassified, ...]
    true: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    embeddings: np.ndarray | None = field(default=None, repr=False)
    projection_pca: np.ndarray | None = field(default=None, repr=False)
    projection_tsne: np.ndarray | None = field(default=None, repr=False)

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1)) if self.f1 else 0.0

    def to_dict(self, *, with_projections: bool = True) -> dict[str, Any]:
        """JSON-safe summary (projections rounded; embeddings left out: they can be large)."""
        out: dict[str, Any] = {
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "loss": self.loss,
            "macro_f1": self.macro_f1,
            "precision": list(self.precision),
            "recall": list(self.recall),
            "f1": list(self.f1),
            "support": list(self.support),
            "confusion": [list(row) for row in self.confusion],
            "misclassified": [m.__dict__ for m in self.misclassified],
            "true": self.true.tolist(),
            "predicted": self.predicted.tolist(),
        }
        if with_projections:
            for name in ("projection_pca", "projection_tsne"):
                value = getattr(self, name)
                out[name] = None if value is None else np.round(value, 4).tolist()
        return out


@torch.no_grad()
def forward_batches(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    *,
    batch_size: int = 256,
    features: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (N, C) for inputs (N, ...) in batches on `device`, on the CPU as float32.

    With features=True also the penultimate activations (N, D) from `forward_features`.
    """
    net = getattr(model, "module", model)
    was_training = net.training
    net.eval()
    logits, embeddings = [], []
    for start in range(0, x.shape[0], batch_size):
        batch = x[start : start + batch_size].to(device, non_blocking=True)
        if features and hasattr(net, "head_index"):
            # SpecNetwork: the layers from head_index on turn the embedding into logits.
            hidden = net.forward_features(batch)
            embeddings.append(hidden.float().reshape(hidden.shape[0], -1).cpu())
            logits.append(net.layers[net.head_index :](hidden).float().cpu())
        elif features and hasattr(net, "forward_features"):  # an ensemble: two passes
            hidden = net.forward_features(batch)
            embeddings.append(hidden.float().reshape(hidden.shape[0], -1).cpu())
            logits.append(net(batch).float().cpu())
        else:
            logits.append(net(batch).float().cpu())
    net.train(was_training)
    out = torch.cat(logits) if logits else torch.empty(0)
    return out, (torch.cat(embeddings) if embeddings else None)


def scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of logits (N, C) against labels (N,)."""
    if y.numel() == 0:
        return float("nan"), float("nan")
    loss = F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()


def evaluate_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    labels: Sequence[str],
    refs: Sequence[Any] = (),
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    embeddings: bool = True,
    tsne: bool = True,
    seed: int = 0,
) -> Evaluation:
    """Evaluate `model` on inputs x (N, ...) with labels y (N,) int64.

    refs: one core.data.datasets.AudioExample per row (for the misclassified list), or empty.
    embeddings: also compute penultimate embeddings and their PCA (and t-SNE if `tsne`).
    """
    device = torch.device(device)
    logits, hidden = forward_batches(model, x, device, batch_size=batch_size, features=embeddings)
    loss, accuracy = scores(logits, y)
    probs = torch.softmax(logits, dim=1).numpy()
    true, predicted = y.numpy(), probs.argmax(1) if len(probs) else np.zeros(0, dtype=np.int64)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    tp = np.diag(confusion).astype(np.float64)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0
    )
    wrong = [
        _misclassified(
            i,
            refs[i] if i < len(refs) else None,
            labels,
            int(true[i]),
            int(predicted[i]),
            float(probs[i, predicted[i]]),
        )
        for i in np.flatnonzero(true != predicted)
    ]
    emb = hidden.numpy() if hidden is not None else None
    return Evaluation(
        labels=tuple(labels),
        accuracy=accuracy,
        loss=loss,
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        f1=tuple(float(v) for v in f1),
        support=tuple(int(v) for v in confusion.sum(1)),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        misclassified=tuple(wrong),
        true=true,
        predicted=predicted,
        probabilities=probs,
        embeddings=emb,
        projection_pca=project_pca(emb) if emb is not None else None,
        projection_tsne=project_tsne(emb, seed=seed) if emb is not None and tsne else None,
    )


def _misclassified(
    i: int, ref: Any, labels: Sequence[str], true: int, pred: int, confidence: float
) -> Misclassified:
    return Misclassified(
        index=i,
        source=getattr(ref, "source", ""),
        start_seconds=float(getattr(ref, "start_seconds", 0.0)),
        duration_seconds=getattr(ref, "duration_seconds", None),
        ref=getattr(ref, "ref", f"example {i}"),
        group=getattr(ref, "group", ""),
        true_label=labels[true],
        predicted_label=labels[pred],
        confidence=confidence,
    )


def project_pca(embeddings: np.ndarray) -> np.ndarray | None:
    """First two principal components of (N, D) embeddings -> (N, 2) (None if N < 2)."""
    if embeddings.shape[0] < 2:
        return None
    centred = embeddings - embeddings.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))) if out.shape[1] < 2 else out


def project_tsne(
    embeddings: np.ndarray, *, seed: int = 0, max_points: int = 2000
) -> np.ndarray | None:
    """2-D t-SNE of (N, D) embeddings (scikit-learn, PCA initialisation), None if N < 5.

    Only the first `max_points` rows are projected (t-SNE is quadratic); the rest are NaN.
    """
    n = embeddings.shape[0]
    if n < 5:
        return None
    # Lazy: scikit-learn takes about a second to import; only this projection needs it.
    from sklearn.manifold import TSNE

    m = min(n, max_points)
    perplexity = float(min(30, max(2, (m - 1) // 3)))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        embeddings[:m]
    )
    out = np.full((n, 2), np.nan)
    out[:m] = points
    return out


# --------------------------------------------------------------------------- inference


def predict_proba(
    run: LoadedRun, samples: np.ndarray, sample_rate: int, *, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Class probabilities (C,) of one clip for a loaded run (core.training.runs.LoadedRun).

    samples: float32 (n,) at `sample_rate` Hz; the clip goes through the run's InputRecipe
    (cropped or padded to the run's clip length, centred, as validation examples were).
    """
    x = run.recipe.clip(samples, sample_rate).model_input
    logits, _ = forward_batches(run.model, x, torch.device(device))
    return torch.softmax(logits, dim=1)[0].numpy()


def predict_windows(
    run: LoadedRun,
    samples: np.ndarray,
    sample_rate: int,
    *,
    hop_seconds: float | None = None,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over time for a long clip: returns (start_seconds (W,), probs (W, C)).

    Windows are the run's clip length, `hop_seconds` apart (default: half a window); a clip
    shorter than one window gives one row.
    """
    recipe = run.recipe
    rate = recipe.sample_rate
    y = recipe.to_recipe_rate(samples, sample_rate)
    window = recipe.window_samples
    hop = max(1, int(round((hop_seconds if hop_seconds else window / rate / 2) * rate)))
    starts = list(range(0, max(1, len(y) - window + 1), hop))
    probs = np.stack([predict_proba(run, y[s : s + window], rate, device=device) for s in starts])
    return np.array(starts, dtype=np.float64) / rate, probs
