"""The course's ideas and the page that shows each one (used by the Home page)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    explanation: str  # what belongs here and not in the field around it


# nested from the outside in: each field is a part of the one before it
FIELDS: tuple[Field, ...] = (
    Field(
        "Artificial intelligence",
        "Machines doing tasks that seem to need intelligence, by any means: search, planning, "
        "rules written by hand, or learning.",
    ),
    Field(
        "Machine learning",
        "AI that learns its behaviour from data instead of following hand-written rules: a "
        "model with parameters, fitted to examples or experience. It has three paradigms, told "
        "apart by what the data gives the learner.",
    ),
    Field(
        "Deep learning",
        "Machine learning with neural networks deep enough (a composition of many layers) to "
        "learn their own features from raw inputs such as waveforms or spectrograms. It is a "
        "kind of model, not a paradigm: deep networks are trained in all three.",
    ),
)


@dataclass(frozen=True)
class Paradigm:
    name: str
    learns_from: str  # what the data gives the learner
    goal: str
    page_urls: tuple[str, ...]  # url_path of the pages that teach it, in this app


PARADIGMS: tuple[Paradigm, ...] = (
    Paradigm(
        "Supervised learning",
        "examples with labels (a clip and the word it says)",
        "predict the label of new examples; a loss compares predictions with the labels",
        ("train", "classify"),
    ),
    Paradigm(
        "Unsupervised learning",
        "examples without labels",
        "find structure: groups, maps, compressed codes (an autoencoder rebuilds its input)",
        ("explore",),
    ),
    Paradigm(
        "Reinforcement learning",
        "rewards for its own actions, often late and noisy",
        "a policy that maximises the cumulative reward over a sequence of decisions",
        ("reinforce",),
    ),
)


@dataclass(frozen=True)
class CourseTopic:
    group: str  # "Deep learning in audio", "Areas of machine learning", "Foundations"
    title: str
    explanation: str  # plain course language, one or two sentences
    page_url: str  # url_path of the page that shows it (linked once registered)


COURSE_TOPICS: tuple[CourseTopic, ...] = (
    CourseTopic(
        "Foundations",
        "Tensors",
        "Every sound, spectrogram and weight is a tensor: an array with a shape, a dtype and a "
        "device. Matrix products, broadcasting and shared memory are the habits all DL code uses.",
        "tensors",
    ),
    CourseTopic(
        "Foundations",
        "A network is a function with parameters",
        "A neural network maps inputs to outputs based on parameters. "
        "Beyond one layer it is a composition of functions f = f_n ∘ … ∘ f_1; "
        "deep learning studies compositions deep enough.",
        "network",
    ),
    CourseTopic(
        "Deep learning in audio",
        "Features from spectrograms",
        "A waveform becomes a time-frequency picture (STFT, log-mel, MFCC, chroma) that networks "
        "and analysis read far more easily than raw samples.",
        "music",
    ),
    CourseTopic(
        "Deep learning in audio",
        "Classifying audio, or parts of it",
        "A trained model names what it hears in a clip, or slides along a long recording and "
        "says what happens when.",
        "classify",
    ),
    CourseTopic(
        "Deep learning in audio",
        "Musical analysis",
        "Tempo and beats, key, pitch, harmony and structure: "
        "what a piece is made of, seen and heard.",
        "music",
    ),
    CourseTopic(
        "Areas of machine learning",
        "Supervised learning",
        "Learn a mapping from labelled examples: record or pick clips per class, tune the "
        "hyperparameters with sliders and watch the model learn.",
        "train",
    ),
    CourseTopic(
        "Areas of machine learning",
        "Unsupervised learning",
        "Find structure without labels: embed a sound collection, "
        "project it to 2-D and cluster it.",
        "explore",
    ),
    CourseTopic(
        "Areas of machine learning",
        "Reinforcement learning",
        "An agent makes a sequence of decisions under uncertainty and learns the sequence that "
        "maximises cumulative reward; the goal lives only in the reward.",
        "reinforce",
    ),
)
