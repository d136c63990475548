"""Training engine: overhead of train() against a bare loop, what the feature cache saves, and
the default recipe's accuracy on the built-in digits (random split and unseen speakers).

`python -m tests.benchmarks training` prints every figure. AUDIO_DL_BENCH_QUICK=1 skips
the accuracy part (ten full trainings: a random split and four unseen speakers, on two
seeds). Timings interleave the two contenders epoch by epoch, so a busy shared machine
slows both alike; CPU seconds are printed beside wall seconds because on a shared machine
wall time says more about the neighbours.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from core.audio.input_recipe import fit_frames
from core.data.augment import AugmentConfig
from core.data.datasets import builtin_digits
from core.data.feature_cache import FeatureCache, clear_memory_cache
from core.data.splits import split_dataset
from core.devices import resolve_device
from core.models.build import build_model, member_networks
from core.models.presets import preset_spec
from core.training.trainer import TrainConfig, train

SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def _bare_epoch(model, optimizer, scheduler, x, y, batch_size: int, generator, device) -> float:
    """One epoch of the plainest loop: shuffle, slice, forward, backward, step. Returns seconds."""
    start = time.perf_counter()
    model.train()
    order = torch.randperm(x.shape[0], generator=generator)
    for i in range(0, len(order), batch_size):
        index = order[i : i + batch_size]
        xb, yb = x[index].to(device), y[index].to(device)
        logits = model(xb)
        if logits.dim() == 3:  # an ensemble's members, (members, batch, classes): each its own loss
            loss = sum(F.cross_entropy(member, yb, label_smoothing=0.1) for member in logits)
        else:
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for member in member_networks(model):
            torch.nn.utils.clip_grad_norm_(member.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        loss.item()  # a real loop looks at its loss
    return time.perf_counter() - start


def _prepared(config: TrainConfig, dataset, indices):
    """The exact training tensors train() builds: (N, 1, bins, frames), (N,)."""
    from core.audio.input_recipe import Normalization

    cache = FeatureCache(config.features, config.feature_kind)
    frames = config.features.num_frames(
        int(round(config.clip_seconds * config.features.sample_rate))
    )
    norm = Normalization(config.normalization)
    x = torch.stack(
        [
            fit_frames(norm.apply(cache.features(dataset, dataset.examples[i])), frames)
            for i in indices
        ]
    )
    return x.unsqueeze(1), torch.as_tensor(dataset.targets[list(indices)])


def throughput_and_cache(device: torch.device, epochs: int = 4) -> None:
    """train() vs bare loop (augmentation off in both, same model/optimiser/schedule/data)."""
    dataset = builtin_digits()
    with tempfile.TemporaryDirectory() as cache_root:
        os.environ["AUDIO_DL_CACHE_DIR"] = cache_root
        clear_memory_cache()
        config = dataclasses.replace(
            TrainConfig(),
            epochs=epochs,
            augment=AugmentConfig.off(),
            embeddings=False,
            tsne=False,
            split="random",
        )
        split = split_dataset(dataset, method="random", seed=config.seed)
        events = train(config, dataset=dataset, device=device)
        marks, train_sps, epoch_seconds = [time.perf_counter()], [], []
        bare_sps = []
        x = y = model = None
        for event in events:
            if event.kind == "epoch_end":
                epoch_seconds.append(time.perf_counter() - marks[-1])
                train_sps.append(event.samples_per_second)
                if x is None:  # the cache is warm now: build the bare loop's tensors
                    x, y = _prepared(config, dataset, split.train)
                    torch.manual_seed(0)
                    spec = preset_spec(config.model, input_shape=tuple(x.shape[1:]), num_outputs=10)
                    model = build_model(spec.with_members(config.members)).to(device)
                    optimizer = torch.optim.AdamW(
                        model.parameters(),
                        lr=config.learning_rate,
                        weight_decay=config.weight_decay,
                    )
                    steps = -(-x.shape[0] // config.batch_size) * epochs
                    scheduler = torch.optim.lr_scheduler.OneCycleLR(
                        optimizer, max_lr=config.learning_rate, total_steps=steps, pct_start=0.25
                    )
                    generator = torch.Generator().manual_seed(0)
                seconds = _bare_epoch(
                    model, optimizer, scheduler, x, y, config.batch_size, generator, device
                )
                bare_sps.append(x.shape[0] / seconds)
                marks.append(time.perf_counter())
            elif event.kind == "started":
                marks = [time.perf_counter()]  # model built, torch warmed up: epoch 1 starts
        os.environ.pop("AUDIO_DL_CACHE_DIR", None)
    steady_train = statistics.median(train_sps[1:])
    steady_bare = statistics.median(bare_sps[1:])
    print(
        f"device {device}, {len(split.train)} training clips, batch {config.batch_size}, "
        f"{epochs} epochs interleaved, {config.members} members"
    )
    print(f"train() samples/s (epochs 2..{epochs}, median): {steady_train:8.1f}")
    print(f"bare loop samples/s (same epochs, median):      {steady_bare:8.1f}")
    print(f"ratio train()/bare: {steady_train / steady_bare:.2f}  (target >= 0.90)")
    print(
        f"epoch 1 (decode + features, empty cache): {epoch_seconds[0]:.1f} s; "
        f"epoch 2 (cached): {epoch_seconds[1]:.1f} s"
    )
    print(f"feature cache speed-up, epoch 1 / epoch 2: {epoch_seconds[0] / epoch_seconds[1]:.2f}x")
    saved = epoch_seconds[0] - epoch_seconds[1]
    print(
        f"decoding + features saved by the cache: {saved:.1f} s per epoch "
        f"({100 * saved / epoch_seconds[0]:.0f} % of epoch 1; "
        f"the rest is the {config.members}-member network)"
    )


def _fold(config: TrainConfig, device: torch.device) -> tuple[float, float, float]:
    """(validation accuracy, wall seconds, CPU seconds) of one default training."""
    wall, cpu = time.perf_counter(), time.process_time()
    final = None
    for event in train(config, device=device):
        final = event
    assert final is not None and final.kind == "finished", final.message if final else "no events"
    return final.val_accuracy, time.perf_counter() - wall, time.process_time() - cpu


def accuracy(device: torch.device, seeds: tuple[int, ...] = (0, 1)) -> None:
    """The default TrainConfig on the digits: a random split, then leave one speaker out.

    Each figure is measured for every seed in `seeds`: with 400 clips per unseen speaker and
    three training voices, one seed's mean moves by a point or two, so the figure quoted is
    the mean over seeds and each seed is printed beside it.
    """
    base = dataclasses.replace(TrainConfig(), embeddings=False, tsne=False)
    print(
        f"default recipe: {base.epochs} epochs, {base.features.n_mels} mels at "
        f"{base.features.sample_rate} Hz, normalization {base.normalization}, "
        f"{base.model} x {base.members} members, equaliser ±{base.augment.eq_db:g} dB"
    )
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}"
    )
    for seed in seeds:
        acc, wall, cpu = _fold(dataclasses.replace(base, split="random", seed=seed), device)
        print(
            f"seed {seed} random split: val accuracy {acc:.4f} "
            f"(target >= 0.97)  wall {wall:.0f} s, CPU {cpu:.0f} s"
        )
    means = []
    for seed in seeds:
        scores = []
        for speaker in SPEAKERS:
            config = dataclasses.replace(base, split="holdout", val_groups=(speaker,), seed=seed)
            acc, wall, cpu = _fold(config, device)
            scores.append(acc)
            print(
                f"seed {seed} unseen speaker {speaker:8s}: accuracy {acc:.4f}  "
                f"wall {wall:.0f} s, CPU {cpu:.0f} s (target <= 180 s)"
            )
        means.append(statistics.mean(scores))
        print(f"seed {seed} leave-one-speaker-out mean accuracy: {means[-1]:.4f}")
    print(
        f"leave-one-speaker-out mean accuracy over seeds {', '.join(map(str, seeds))}: "
        f"{statistics.mean(means):.4f} (target >= 0.80)"
    )


def main() -> None:
    device = resolve_device("auto")
    throughput_and_cache(device)
    if os.environ.get("AUDIO_DL_BENCH_QUICK") != "1":
        accuracy(device)


if __name__ == "__main__":
    main()
