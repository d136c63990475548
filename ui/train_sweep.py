"""Train page, "Try several values": queue a sweep of the page's recipe and watch its trials.

The student picks a few values of the learning rate, the batch size, the ensemble size and
the augmentation strength; core.jobs.sweeps turns them into trials (every combination, or random
draws) and the job manager queues them all on Ray workers at once (core.jobs.manager.submit_sweep),
running as many at a time as the per-session limit allows. Each trial becomes an ordinary run;
while it waits or runs, its progress and live curves are pushed here as an ordinary run's are
(ui/train_push.py): no script run until a trial ends, when this section and sections 5-6
rerun once (named fragments; the data and settings sections above are not rerun) to update
the table and the ranking. Where the push cannot reach the browser, the table and the running
trials' curves (ui/train_live.live_curves) are polled every POLL_SECONDS instead. The
comparison section (ui/train_compare.py) ranks a sweep's runs.
"""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from core.jobs.manager import (
    ClusterError,
    JobLimitReached,
    JobManager,
    get_job_manager,
    sweep_trials_at_once,
)
from core.jobs.sweeps import MAX_TRIALS, VARIED, SweepError, SweepSpace, plan_sweep
from core.training.trainer import TrainConfig
from ui import train_push
from ui.task_jobs import queueing_spinner
from ui.train_dataset import DataChoice
from ui.train_live import SWEEP_FRAGMENT, live_curves, page_run, rerun_with_review, review_follows
from ui.train_settings import BATCH_SIZES, LEARNING_RATES, MAX_ENSEMBLE

SWEEP_KEY = "train_sweep"  # the session's sweep id
STRENGTHS = [0.0, 0.5, 1.0, 1.5, 2.0]
POLL_SECONDS = 2.0


def sweep_section(
    jobs: JobManager, owner: str, config: TrainConfig | None, spec, data: DataChoice | None, device
) -> None:
    """The sweep's widgets, the planned trials and the Queue button; then its trials. One
    named fragment: a click in here, or a trial's end, does not rerun the page's data and
    settings sections (a trial's end also reruns sections 5-6, for the ranking)."""
    with page_run():
        _sweep_section(jobs, owner, config, spec, data, device)


@st.fragment(key=SWEEP_FRAGMENT)
def _sweep_section(jobs, owner, config, spec, data, device) -> None:
    with st.expander("Try several values: a sweep of trainings", expanded=False):
        st.markdown(
            "Which learning rate is best? Rather than guess, train the same recipe several "
            "times with different values and compare. **Grid** tries every combination; "
            "**random** draws the learning rate anywhere between your lowest and highest "
            "(on a log scale), which tries more distinct rates for the same number of runs."
        )
        space, trials = _planned(config)
        at_once = sweep_trials_at_once()
        if trials:
            epochs = trials[0].config.epochs
            st.caption(
                f"{len(trials)} trainings of {epochs} epoch{'s' if epochs != 1 else ''} each. "
                f"They queue now and run {at_once} at a time (the per-session limit), the "
                "rest wait in the queue; each becomes an ordinary run in section 6."
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {"trial": t.index + 1, **{VARIED[k]: v for k, v in t.values.items()}}
                        for t in trials
                    ]
                ),
                hide_index=True,
                key="train_sweep_plan",
            )
        pressed = st.button("Queue the sweep", key="train_sweep_start", disabled=not trials)
        if pressed and trials and config is not None and data is not None:
            _submit(jobs, owner, config, space, spec, data, device)
    sweep_view(owner)


def _planned(config: TrainConfig | None) -> tuple[SweepSpace | None, list]:
    """The sweep's widgets; returns the space and its trials (none while a value is wrong)."""
    left, middle, right = st.columns(3)
    mode = left.segmented_control(
        "Trials", ["grid", "random"], default="grid", required=True, key="train_sweep_mode"
    )
    count = 4
    if mode == "random":
        count = int(
            middle.number_input("Random trials", 2, MAX_TRIALS, 4, key="train_sweep_trials")
        )
    rates = st.multiselect(
        "Learning rates",
        LEARNING_RATES,
        default=[1e-3, 3e-3, 1e-2],
        format_func=lambda v: f"{v:g}",
        key="train_sweep_lrs",
    )
    batches = st.multiselect(
        "Batch sizes (none: the slider's)", BATCH_SIZES, key="train_sweep_batches"
    )
    members = st.multiselect(
        "Ensemble members (none: the slider's)",
        list(range(1, MAX_ENSEMBLE + 1)),
        key="train_sweep_members",
    )
    strengths = st.multiselect(
        "Augmentation strength (1 = as set above, 0 = off; none: as set)",
        STRENGTHS,
        format_func=lambda v: f"{v:g}x",
        key="train_sweep_augment",
    )
    if config is None:
        right.caption("Choose valid data and settings first.")
        return None, []
    try:
        space = SweepSpace(
            learning_rates=tuple(sorted(rates)),
            batch_sizes=tuple(sorted(batches)),
            members=tuple(sorted(members)),
            augment_strengths=tuple(sorted(strengths)),
            mode=mode or "grid",
            trials=count,
            seed=config.seed,
        )
        return space, plan_sweep(config, space)
    except SweepError as error:
        st.warning(str(error))
        return None, []


def _submit(
    jobs: JobManager,
    owner: str,
    config: TrainConfig,
    space: SweepSpace,
    spec,
    data: DataChoice,
    device,
) -> None:
    try:
        with queueing_spinner("the sweep"):
            sweep_id = jobs.submit_sweep(
                config,
                space,
                owner=owner,
                dataset=data.dataset,
                spec=spec,
                device=device,
                name=config.name,
            )
    except (SweepError, JobLimitReached) as error:
        st.warning(str(error))
        return
    except ClusterError as error:
        st.error(str(error))
        return
    st.session_state[SWEEP_KEY] = sweep_id  # sweep_view draws its trials next


def sweep_view(owner: str) -> None:
    """The session's newest sweep: each trial's state and progress, pushed (or polled) while
    it runs."""
    jobs = get_job_manager()
    sweep_id = st.session_state.get(SWEEP_KEY) or jobs.current_sweep(owner)
    if not sweep_id:
        return
    st.session_state[SWEEP_KEY] = sweep_id
    done = all(s.done for s in jobs.sweep_jobs(sweep_id, owner))
    if done:  # seen whole: no rerun needed when it ends
        st.session_state["train_sweep_seen"] = sweep_id
    elif train_push.available():
        _trials(sweep_id, owner, pushed=True)  # each trial's view reruns the page as it ends
        return
    st.fragment(_trials, run_every=None if done else POLL_SECONDS)(sweep_id, owner)


def _trials(sweep_id: str, owner: str, pushed: bool = False) -> None:
    jobs = get_job_manager()
    trials = jobs.sweep_jobs(sweep_id, owner)
    if not trials:
        return
    finished = sum(s.done for s in trials)
    st.subheader(f"Sweep: {finished} of {len(trials)} trainings ended")
    rows = []
    for status in trials:
        place = f"number {status.queue_position} in the queue" if status.queue_position else ""
        rows.append(
            {
                "trial": int(status.sweep.get("trial", 0)) + 1,
                **{VARIED[k]: v for k, v in status.sweep.get("values", {}).items()},
                "state": status.state,
                "progress": status.progress,
                "val accuracy": status.val_accuracy,
                "note": place or (status.message if not status.done else ""),
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="train_sweep_trials_table",
        column_config={
            "progress": st.column_config.ProgressColumn(min_value=0, max_value=1),
            "val accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    if pushed:
        st.caption("Each trial's progress is pushed below; the table changes as trials end.")
        _pushed_trials(jobs, trials, owner)
    else:
        train_push.polled_caption(POLL_SECONDS)
        _running_curves(jobs, trials, owner)
    if finished < len(trials):
        if st.button("Stop the sweep", key="train_sweep_stop"):
            stopped = jobs.cancel_sweep(sweep_id, owner)
            st.info(f"Stopping {stopped} training(s): the running one keeps its weights as a run.")
    elif st.session_state.get("train_sweep_seen") != sweep_id:
        st.session_state["train_sweep_seen"] = sweep_id
        if not review_follows():
            st.rerun(scope="app")  # the ranking in section 6 shows the new runs


def _trial_caption(status) -> str:
    trial = int(status.sweep.get("trial", 0)) + 1
    varied = ", ".join(f"{VARIED[k]} {v:g}" for k, v in status.sweep.get("values", {}).items())
    return f"Trial {trial} ({varied})"


def _pushed_trials(jobs: JobManager, trials: list, owner: str) -> None:
    """A pushed progress view (ui/train_push.py) per trial still queued or running; a
    browser that cannot reach the route makes the page poll from then on."""
    for status in trials:
        if status.done:
            continue
        st.caption(_trial_caption(status))
        ended = functools.partial(rerun_with_review, SWEEP_FRAGMENT)
        if not train_push.job_view(jobs, status.job_id, owner, height=220, on_change=ended):
            st.rerun()


def _running_curves(jobs: JobManager, trials: list, owner: str) -> None:
    """The live loss / accuracy curves of each running trial, drawn as an ordinary run's
    (ui.train_live's code and caches, one slot per trial)."""
    for status in trials:
        if status.state != "running":
            continue
        trial = int(status.sweep.get("trial", 0)) + 1
        accuracy = (
            f" · val accuracy {status.val_accuracy:.1%}" if status.val_accuracy is not None else ""
        )
        st.caption(
            f"{_trial_caption(status)} on {status.node or 'a worker'}: epoch {status.epoch}/"
            f"{status.epochs} · {status.progress:.0%}{accuracy}"
        )
        st.plotly_chart(
            live_curves(jobs, status.job_id, owner, slot=f"train_sweep_trial_{trial}"),
            key=f"train_sweep_curves_{trial}",
        )
