"""Unsupervised core: embeddings, projections, clustering, zip collections, the autoencoder."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from core.audio.levels import encode_wav
from core.lessons import unsupervised as uns
from core.viz.paradigms import NOISE_COLOR, embedding_map
from tests.conftest import sine

CPU = torch.device("cpu")


def _blobs(n_per: int = 30, centres: int = 4, dims: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 10, (centres, dims))
    labels = np.repeat(np.arange(centres), n_per)
    return means[labels] + rng.normal(0, 0.5, (len(labels), dims)), labels


def _collection(labels) -> uns.Collection:
    clips = tuple(
        uns.Clip(f"c{i}", np.zeros(10, np.float32), {"truth": str(v)}) for i, v in enumerate(labels)
    )
    return uns.Collection(clips)


def test_kmeans_recovers_well_separated_clusters():
    x, labels = _blobs()
    found = uns.cluster(x, uns.ClusterConfig("k-means", k=4))
    assert uns.label_agreement(found, _collection(labels))["truth"] == pytest.approx(1.0)


def test_hdbscan_finds_the_number_of_clusters_itself():
    x, labels = _blobs(centres=3)
    found = uns.cluster(x, uns.ClusterConfig("HDBSCAN", min_cluster_size=5))
    assert len(set(found.tolist()) - {-1}) == 3
    assert uns.label_agreement(found, _collection(labels))["truth"] > 0.9


@pytest.mark.parametrize("method", uns.PROJECTIONS)
def test_projections_keep_separated_groups_apart(method):
    x, labels = _blobs(n_per=15, centres=3)
    xy = uns.project_2d(x, method)
    assert xy.shape == (45, 2)
    found = uns.cluster(xy, uns.ClusterConfig("k-means", k=3))
    assert uns.label_agreement(found, _collection(labels))["truth"] == pytest.approx(1.0)


def test_hostile_cluster_settings_raise_sentences():
    x, _ = _blobs(n_per=3, centres=2)
    with pytest.raises(ValueError, match="k must be between"):
        uns.cluster(x, uns.ClusterConfig("k-means", k=50))
    with pytest.raises(ValueError, match="minimum cluster size"):
        uns.cluster(x, uns.ClusterConfig("HDBSCAN", min_cluster_size=1))
    with pytest.raises(ValueError, match="at least 3"):
        uns.project_2d(x[:2], "PCA")


def test_mfcc_statistics_batched_equals_one_clip_at_a_time():
    clips = [sine(f, s, 16000) for f, s in ((220, 0.3), (440, 0.7), (880, 0.5))]
    batched = uns.mfcc_statistics(clips, batch_size=3)
    looped = uns.mfcc_statistics(clips, batch_size=1)
    assert batched.shape == (3, 40)
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-3)
    # different pitches give different timbre statistics
    assert np.linalg.norm(batched[0] - batched[2]) > 1.0


def test_mfcc_embeddings_separate_real_digits_better_than_chance():
    collection = uns.builtin_digit_collection(n_clips=120, seed=1)
    assert collection.label_names == ("digit", "speaker")
    embeddings = uns.mfcc_statistics([c.samples for c in collection.clips])
    found = uns.cluster(embeddings, uns.ClusterConfig("k-means", k=10))
    ari = uns.label_agreement(found, collection)
    shuffled = np.random.default_rng(0).permutation(collection.labels("digit"))
    chance = uns.adjusted_rand_score(shuffled, found)
    assert ari["digit"] > 0.03 > chance
    # four speakers: timbre statistics group voices even more clearly than words
    speakers = uns.cluster(embeddings, uns.ClusterConfig("k-means", k=4))
    assert uns.label_agreement(speakers, collection)["speaker"] > 0.4


def test_penultimate_embeddings_read_the_input_of_the_last_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(5, 4)
    got = uns.penultimate_embeddings(model, x, device=CPU, batch_size=2)
    np.testing.assert_allclose(got, torch.relu(model[0](x)).detach().numpy(), rtol=1e-6)


def _wav(samples) -> bytes:
    return encode_wav(samples, 16000)


def test_zip_collection_is_extracted_safely_and_labelled_by_folder():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder, freq in (("low", 200), ("high", 2000)):
            for take in range(2):
                archive.writestr(f"set/{folder}/{take}.wav", _wav(sine(freq + take, 0.4, 16000)))
        archive.writestr("set/readme.txt", "not audio")
        archive.writestr("../evil.wav", _wav(sine(300, 0.2, 16000)))
        archive.writestr("set/broken.wav", b"RIFF\x00\x00garbage")
        link = zipfile.ZipInfo("set/link.wav")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    collection = uns.collection_from_zip(buffer.getvalue())
    assert len(collection) == 4
    assert sorted(set(collection.labels("folder"))) == ["set/high", "set/low"]
    reasons = "\n".join(collection.skipped)
    for bad in ("readme.txt", "evil.wav", "link.wav", "broken.wav"):
        assert bad in reasons


def test_zip_collection_refuses_garbage_and_too_few_clips():
    with pytest.raises(ValueError, match="zip"):
        uns.collection_from_zip(b"this is not a zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("one.wav", _wav(sine(440, 0.3, 16000)))
    with pytest.raises(ValueError, match="at least 3"):
        uns.collection_from_zip(buffer.getvalue())


def test_log_mel_patch_inverts_to_the_same_pitch():
    config = uns.AutoencoderConfig()
    mel = uns.log_mel_patches([sine(1000, 1.2, 16000)], config)
    assert mel.patches.shape == (1, 1, config.n_mels, config.frames)
    assert mel.patches.min() >= 0 and mel.patches.max() == pytest.approx(1.0)
    audio = uns.patch_to_audio(mel.patches[0, 0], float(mel.peak_db[0]), config, n_iter=16)
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * 16000 / len(audio)
    assert abs(peak_hz - 1000) < 80  # within about one mel band at 1 kHz


def test_autoencoder_loss_falls_on_real_spectrograms():
    collection = uns.builtin_digit_collection(n_clips=40, seed=2)
    config = uns.AutoencoderConfig(seed=0)
    mel = uns.log_mel_patches([c.samples for c in collection.clips], config)
    torch.manual_seed(0)
    model = uns.ConvAutoencoder(config)
    _, untrained = uns.autoencoder_outputs(model, mel.patches, device=CPU)
    events = list(uns.train_autoencoder(model, mel.patches, config, steps=40, device=CPU))
    losses = [e.loss for e in events]
    assert [e.step for e in events] == list(range(1, 41))
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    codes, recon = uns.autoencoder_outputs(model, mel.patches, device=CPU)
    assert codes.shape == (len(collection), config.bottleneck)
    assert recon.shape == mel.patches.shape
    error = uns.reconstruction_error(mel.patches, recon)
    assert error < 0.3 * uns.reconstruction_error(mel.patches, untrained)


def test_embedding_map_has_every_clip_once_and_noise_in_grey():
    xy = np.arange(12, dtype=float).reshape(6, 2)
    groups = ["cluster 1", "noise", "cluster 10", "cluster 2", "cluster 1", "noise"]
    fig = embedding_map(xy, groups, [f"clip {i}" for i in range(6)])
    assert [t.name for t in fig.data] == ["cluster 1", "cluster 2", "cluster 10", "noise"]
    indices = sorted(int(i) for t in fig.data for i in t.customdata)
    assert indices == list(range(6))
    assert fig.data[-1].marker.color == NOISE_COLOR
    # Each point sits at its own clip's coordinates and is named after that clip.
    for trace in fig.data:
        members = [i for i, g in enumerate(groups) if g == trace.name]
        assert list(trace.customdata) == members
        np.testing.assert_array_equal(trace.x, xy[members, 0])
        np.testing.assert_array_equal(trace.y, xy[members, 1])
        assert [t.split("<br>")[0] for t in trace.text] == [f"clip {i}" for i in members]


def test_trained_model_embeddings_are_the_penultimate_layer_of_prepared_clips():
    from core.audio.features import FeatureConfig
    from core.audio.input_recipe import InputRecipe, Normalization
    from core.inference.classifier import InferenceModel, prepare_clip

    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()
    recipe = InputRecipe.make(FeatureConfig(), "logmel", 50, Normalization("instance"))
    model = InferenceModel(network, ("a", "b", "c"), recipe)
    collection = uns.Collection(
        tuple(uns.Clip(f"tone {f}", sine(f, 0.3 + f / 4000, 16000)) for f in (200, 700, 1500))
    )
    got = uns.trained_model_embeddings(collection, model)
    assert got.shape == (3, 4)
    with torch.no_grad():
        for row, clip in zip(got, collection.clips, strict=True):
            x = prepare_clip(clip.samples, 16000, model).model_input
            np.testing.assert_allclose(row, network[:-1](x)[0].numpy(), rtol=1e-5, atol=1e-6)
    # the shared network was not touched: no hook left behind
    assert not network[-1]._forward_hooks
