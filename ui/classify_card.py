"""Classify page, the model card: how well the chosen model does on a voice it never heard,
beside new takes of voices it knows, and what it was trained on."""

from __future__ import annotations

import re

import streamlit as st

from core.inference.classifier import ModelChoice, card_for
from core.models.card import Measurement, ModelCard, ModelCardError, titles_for, unlike_training
from core.training.runs import RunError

_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~$])")


def _plain(text: str) -> str:
    """Text from a card shown literally: a card may come from anyone's archive."""
    return _MARKDOWN.sub(r"\\\1", text)


def _percent(share: float) -> str:
    return f"{share:.1%}"


def show_model_card(choice: ModelChoice) -> ModelCard | None:
    """Two accuracies side by side with how they were measured; a sentence when unreadable."""
    try:
        card = card_for(choice)
    except (ModelCardError, RunError) as error:
        st.warning(f"No accuracy can be shown for this model: {error}", icon=":material/info:")
        return None
    unseen_title, known_title = _titles(card)
    left, right = st.columns(2)
    _metric(left, unseen_title, card.unseen, card.unseen_missing)
    _metric(right, known_title, card.known, card.known_missing)
    if card.unseen is not None and card.known is not None:
        gap = card.known.accuracy - card.unseen.accuracy
        st.caption(
            f"Your own voice is a {card.group_noun} it never heard: expect about "
            f"{_percent(card.unseen.accuracy)}, not {_percent(card.known.accuracy)} "
            f"({gap * 100:.1f} points apart)."
        )
    with st.expander("How these figures were measured", icon=":material/fact_check:"):
        rows = {
            "classes": ", ".join(card.labels) if len(card.labels) <= 20 else f"{len(card.labels)}",
            "sample rate": f"{card.sample_rate} Hz" if card.sample_rate else "unknown",
            "clip length": f"{card.clip_seconds:g} s" if card.clip_seconds else "unknown",
            "trained on": card.data
            + (f": {card.data_description}" if card.data_description else ""),
        }
        st.table({"": list(rows), "value": list(rows.values())})
        for title, measurement in ((unseen_title, card.unseen), (known_title, card.known)):
            if measurement is not None:
                st.markdown(f"**{_plain(title)}**: {_plain(measurement.how)}")
                if measurement.per_group:
                    per = " · ".join(
                        f"{_plain(g)} {_percent(a)}" for g, a in measurement.per_group.items()
                    )
                    st.caption(f"per held-out {_plain(card.group_noun)}: {per}")
        for note in card.notes:
            st.caption(_plain(note))
        if card.command:
            st.code(card.command, language="bash")
        if card.source == "summary":
            st.caption(
                "Derived from this run's saved settings and final evaluation (it ships no "
                "card.json)."
            )
    return card


def _titles(card: ModelCard) -> tuple[str, str]:
    unseen, known = titles_for(card.group_noun)
    return (
        card.unseen.title if card.unseen is not None and card.unseen.title else unseen,
        card.known.title if card.known is not None and card.known.title else known,
    )


def _metric(column, title: str, measurement: Measurement | None, missing: str) -> None:
    if measurement is None:
        column.metric(title, "not measured", help=missing or None)
        if missing:
            column.caption(_plain(missing))
        return
    detail = f"{measurement.clips} clips"
    if measurement.folds_total:
        detail = (
            f"mean of {measurement.folds_measured} of {measurement.folds_total} folds, {detail}"
        )
    column.metric(title, _percent(measurement.accuracy), help=measurement.how or None)
    column.caption(detail)


def warn_if_unlike_training(prefix: str, clip) -> list[str]:
    """A warning when `clip` (an AudioClip at the model's rate) does not sound like the model's
    training clips (core.models.card.unlike_training over the card's training_sound); returns
    the reasons shown ([] when it does, or when the card measured nothing to compare)."""
    card = st.session_state.get(f"{prefix}_card")
    if not isinstance(card, ModelCard) or card.training_sound is None:
        return []
    samples = clip.samples if clip.samples.ndim == 1 else clip.samples.mean(axis=0)
    reasons = unlike_training(
        card.training_sound, samples, clip.sample_rate, window_seconds=card.clip_seconds
    )
    if reasons:
        kind = _plain(card.sound) if card.sound else "its training clips"
        st.warning(
            f"This clip does not sound like what this model was trained on ({kind}): "
            + "; ".join(_plain(r) for r in reasons)
            + ". It will still name one of its classes, but the answer may mean little.",
            icon=":material/warning:",
        )
    return reasons
