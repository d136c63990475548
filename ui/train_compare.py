"""Train page, section 6: compare the session's runs, download or delete one.

The table (sortable by clicking a column) lists every run of this session with its final
metrics and main settings; from two runs on, chosen runs are overlaid on one chart. A run
downloads as the run store's archive (JSON + safetensors) and as a standalone training script
(core.training.export_script). Deleting asks for confirmation and refuses a run still training.
"""

from __future__ import annotations

import contextlib
import json
import re

import pandas as pd
import streamlit as st

from core.jobs.manager import JobManager
from core.jobs.sweeps import sweep_rows, sweeps_in
from core.training.export_script import script_file_name, training_script
from core.training.runs import MODEL_FILE, RunError, RunStore
from core.training.support import run_rows
from core.viz.training import compare_curves_figure
from ui.train_live import RUN_DATA_KEY

METRICS = {
    "val_accuracy": "validation accuracy",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "loss": "training loss",
}
LIMIT_IN_NAME = re.compile(r"· (\d+)/class$")


def compare_section(store: RunStore, jobs: JobManager, owner: str) -> None:
    runs, problems = store.scan(owner)
    for problem in problems:
        if problem.path.is_dir() and _owned_guess(problem.path, owner):
            st.warning(f"Run folder {problem.run_id} cannot be read: {problem.reason}")
    if not runs:
        st.caption("Your runs will be listed here.")
        return
    table = pd.DataFrame(run_rows(runs))
    st.dataframe(
        table,
        hide_index=True,
        key="train_runs_table",
        column_config={
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "val loss": st.column_config.NumberColumn(format="%.3f"),
            "lr": st.column_config.NumberColumn(format="%g"),
        },
    )
    ids = [r.run_id for r in runs]
    labels = {r.run_id: f"{r.name or r.run_id} ({r.run_id[-6:]})" for r in runs}
    if st.session_state.get("train_compare_known") != ids:
        # New or deleted runs: compare the newest two again.
        st.session_state["train_compare_known"] = ids
        st.session_state["train_compare_runs"] = ids[:2]
    _sweep_ranking(runs)
    if len(runs) > 1:
        _overlay(store, owner, ids, labels)
    else:
        # One run's curves are section 4's and the Curves tab's: a third copy here cost every
        # tab of a class a plotly chart drawn at the moment its first run ended.
        st.caption("Train a second run to overlay the curves of both here and see what differs.")
    _manage(store, jobs, owner, ids, labels)


def _overlay(store: RunStore, owner: str, ids: list[str], labels: dict) -> None:
    """The chosen runs' curves on one chart, and the settings in which they differ."""
    chosen = st.multiselect(
        "Overlay the curves of", ids, format_func=labels.get, key="train_compare_runs"
    )
    metric = st.segmented_control(
        "Metric",
        list(METRICS),
        format_func=METRICS.get,
        default="val_accuracy",
        required=True,
        key="train_compare_metric",
    )
    if chosen:
        curves = {labels[r]: store.read_metrics(r) for r in chosen}
        st.plotly_chart(
            compare_curves_figure(curves, metric=metric or "val_accuracy"),
            key="train_compare_chart",
        )
        _differences(store, chosen, owner, labels)


def _sweep_ranking(runs: list) -> None:
    """A sweep's trials ranked by validation accuracy, the values they tried as columns."""
    sweeps = sweeps_in(runs)
    if not sweeps:
        return
    st.subheader("Sweeps: which values did best")
    names = {
        sweep_id: f"{name or 'sweep'} · {trials} trials ({sweep_id[-6:]})"
        for sweep_id, name, trials in sweeps
    }
    sweep_id = st.selectbox("Sweep", list(names), format_func=names.get, key="train_compare_sweep")
    rows = sweep_rows(runs, sweep_id)
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="train_sweep_ranking",
        column_config={
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "val loss": st.column_config.NumberColumn(format="%.3f"),
            "learning rate": st.column_config.NumberColumn(format="%g"),
        },
    )
    best = rows[0] if rows and rows[0]["rank"] == 1 else None
    if best is not None:
        tried = ", ".join(
            f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in best.items()
            if k
            not in ("rank", "trial", "status", "val accuracy", "val loss", "epochs done", "run")
        )
        st.caption(
            f"Best so far: trial {best['trial']} ({tried}) with {best['val accuracy']:.1%} "
            "validation accuracy. With a few clips, differences of a few percent can be chance: "
            "run the best two again with another seed before trusting the order."
        )
    if st.button("Overlay these trials' curves", key="train_sweep_overlay"):
        st.session_state["train_compare_runs"] = [row["run"] for row in rows]


def _owned_guess(path, owner: str) -> bool:
    """A broken folder is shown only if its (partial) config names this owner."""
    try:
        return f'"owner": "{owner}"' in (path / "config.json").read_text(encoding="utf-8")
    except OSError:
        return False


def _differences(store: RunStore, chosen: list[str], owner: str, labels: dict) -> None:
    if len(chosen) < 2:
        return
    rows = store.compare(chosen, owner=owner)
    differs = {
        labels[row["run_id"]]: {
            k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row["differs"].items()
        }
        for row in rows
    }
    if any(differs.values()):
        st.caption("Settings that differ between the chosen runs:")
        st.dataframe(pd.DataFrame(differs).astype(str), key="train_compare_diff")
    else:
        st.caption(
            "The chosen runs have the same settings (only chance differs, if the seed does not)."
        )


def _manage(store: RunStore, jobs: JobManager, owner: str, ids: list[str], labels: dict) -> None:
    st.subheader("Download or delete a run")
    run_id = st.selectbox("Run", ids, format_func=labels.get, key="train_manage_run")
    try:
        info = store.get(run_id, owner)
        archive = store.export_archive(run_id, owner=owner)
    except (RunError, OSError) as error:
        st.error(str(error))
        return
    left, middle, right = st.columns(3)
    left.download_button(
        "Download run (weights + config)",
        archive,
        file_name=f"run-{run_id}.zip",
        mime="application/zip",
        key="train_download_run",
    )
    middle.download_button(
        "Download training script",
        _script(info),
        file_name=script_file_name(run_id),
        mime="text/x-python",
        key="train_download_script",
    )
    if right.button("Delete run", key="train_delete"):
        st.session_state["train_delete_pending"] = run_id
    if st.session_state.get("train_delete_pending") == run_id:
        _confirm_delete(store, jobs, owner, run_id, labels[run_id])


def _confirm_delete(store: RunStore, jobs: JobManager, owner: str, run_id: str, label: str) -> None:
    st.warning(f"Delete {label} for good? Its weights, curves and results are removed.")
    yes, no, _ = st.columns([1, 1, 3])
    if no.button("Cancel", key="train_delete_no"):
        st.session_state.pop("train_delete_pending", None)
        st.rerun()
    if yes.button("Yes, delete", type="primary", key="train_delete_yes"):
        if any(s.run_id == run_id and not s.done for s in jobs.jobs(owner)):
            st.error("This run is still training: press Stop first, then delete it.")
            return
        try:
            store.delete(run_id, owner=owner)
        except (RunError, OSError) as error:
            st.error(f"Could not delete the run: {error}")
            return
        st.session_state.pop("train_delete_pending", None)
        st.rerun()


def _script(info) -> str:
    """The standalone training script of a run (its saved network, data and subset)."""
    spec = None  # no model yet (a failed run): the script trains the config's preset
    with contextlib.suppress(OSError, ValueError):
        spec = json.loads((info.path / MODEL_FILE).read_text(encoding="utf-8")).get("spec")
    known = st.session_state.get(RUN_DATA_KEY, {}).get(info.run_id)
    match = LIMIT_IN_NAME.search(info.name)
    limit = known["limit"] if known else int(match.group(1)) if match else 0
    data = (
        known["script_data"]
        if known
        else ("" if str(info.train_config.get("data", "")).startswith("clips:") else None)
    )
    return training_script(
        info.train_config,
        spec,
        run_id=info.run_id,
        name=info.name,
        data=data,
        limit_per_class=limit,
    )
