"""core.devices on the CPU: discovery, choice, memory, precision, OOM fallback, job slots.

Device lists for machines we do not have (two GPUs, a T4, a Mac) are built as DeviceInfo,
so the choice and precision logic is tested on any machine; the real GPU paths are in
tests/test_device_gpu.py.
"""

from __future__ import annotations

import dataclasses
import time
import weakref

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import devices as dev
from core.devices import (
    DeviceInfo,
    OutOfMemoryEverywhere,
    PrecisionPolicy,
    choose_device,
    parse_device_choice,
    precision_policy,
    run_with_oom_fallback,
)
from core.paths import REPO_ROOT

GB = 1_000_000_000
CPU = DeviceInfo("cpu", "cpu", "CPU (x86_64)", 32 * GB, 16 * GB, cpu_cores=8, cpu_threads=16)
MPS = DeviceInfo("mps", "mps", "Apple MPS", 16 * GB, 12 * GB)
H100 = DeviceInfo("cuda:0", "cuda", "NVIDIA H100", 80 * GB, 20 * GB, (9, 0), True)
A100 = DeviceInfo("cuda:1", "cuda", "NVIDIA A100", 40 * GB, 35 * GB, (8, 0), True)
T4 = DeviceInfo("cuda:0", "cuda", "Tesla T4", 16 * GB, 15 * GB, (7, 5), False)
TWO_GPUS = [H100, A100, CPU]


# ---------------------------------------------------------------------------- discovery


def test_discovery_lists_this_machine_with_the_cpu_last():
    devices = dev.discover_devices()
    cuda = [d for d in devices if d.kind == "cuda"]
    assert len(cuda) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert [d.kind for d in devices].count("mps") == int(torch.backends.mps.is_available())
    cpu = devices[-1]
    assert cpu.id == "cpu" and cpu.kind == "cpu"
    assert 1 <= cpu.cpu_cores <= cpu.cpu_threads
    assert cpu.total_memory_bytes > cpu.free_memory_bytes > 0
    # every id is something torch accepts
    assert all(torch.device(d.id).type == d.kind for d in devices)


def test_device_info_is_frozen_and_labelled():
    with pytest.raises(dataclasses.FrozenInstanceError):
        H100.name = "other"  # type: ignore[misc]
    assert H100.label == "cuda:0 · NVIDIA H100 (80.0 GB)"
    assert CPU.label == "cpu · 8 cores / 16 threads"
    assert H100.device == torch.device("cuda", 0)


def test_format_bytes_uses_decimal_units():
    assert dev.format_bytes(999) == "999 B"
    assert dev.format_bytes(1_500_000) == "1.5 MB"
    assert dev.format_bytes(80 * GB) == "80.0 GB"
    assert dev.format_bytes(None) == "?"


# ---------------------------------------------------------------------------- choice


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("auto", "auto"),
        ("", "auto"),
        (None, "auto"),
        (" CUDA ", "cuda"),
        ("cuda:1", "cuda:1"),
        ("GPU:2", "cuda:2"),
        ("Cpu", "cpu"),
        ("mps", "mps"),
    ],
)
def test_parse_device_choice_normalises(typed, expected):
    assert parse_device_choice(typed) == expected


@pytest.mark.parametrize("typed", ["tpu", "cuda:-1", "cuda:x", "cpu:1", "cuda 1", "../etc"])
def test_parse_device_choice_rejects_with_a_sentence(typed):
    with pytest.raises(ValueError, match="is not a device name"):
        parse_device_choice(typed)


def test_auto_picks_the_gpu_with_most_free_memory():
    choice = choose_device("auto", devices=TWO_GPUS, env={})
    # the A100 has less memory in all but more of it free
    assert choice.device == torch.device("cuda:1")
    assert not choice.fell_back and choice.source == "auto"
    assert "most free memory" in choice.reason
    assert choose_device("cuda", devices=TWO_GPUS, env={}).device == torch.device("cuda:1")


def test_auto_breaks_ties_towards_the_lower_index():
    twin = dataclasses.replace(H100, id="cuda:1", free_memory_bytes=H100.free_memory_bytes)
    assert choose_device("auto", devices=[H100, twin, CPU], env={}).device.index == 0


def test_auto_prefers_mps_then_cpu():
    assert choose_device("auto", devices=[MPS, CPU], env={}).device.type == "mps"
    only_cpu = choose_device("auto", devices=[CPU], env={})
    assert only_cpu.device.type == "cpu" and not only_cpu.fell_back


def test_explicit_choices_are_honoured():
    assert choose_device("cuda:0", devices=TWO_GPUS, env={}).device == torch.device("cuda:0")
    assert choose_device("cpu", devices=TWO_GPUS, env={}).device == torch.device("cpu")
    assert choose_device("mps", devices=[MPS, CPU], env={}).source == "session"


@pytest.mark.parametrize("wanted", ["cuda:3", "mps", "cuda"])
def test_unavailable_choice_falls_back_to_cpu_with_a_reason(wanted):
    choice = choose_device(wanted, devices=[CPU], env={})
    assert choice.device == torch.device("cpu")
    assert choice.fell_back
    assert wanted in choice.reason and "not available" in choice.reason
    assert "found: cpu" in choice.reason


def test_garbage_choice_falls_back_to_cpu():
    choice = choose_device("rm -rf /", devices=TWO_GPUS, env={})
    assert choice.device.type == "cpu" and choice.fell_back
    assert "not a device name" in choice.reason
    huge = choose_device("x" * 10_000, devices=TWO_GPUS, env={})
    assert huge.fell_back and len(huge.reason) < 200


def test_environment_overrides_the_session_choice():
    env = {dev.DEVICE_ENV_VAR: "cuda:0"}
    choice = choose_device("cpu", devices=TWO_GPUS, env=env)
    assert choice.device == torch.device("cuda:0")
    assert choice.forced_by_env and "AUDIO_DL_DEVICE" in choice.reason
    # a blank variable is no override
    assert (
        choose_device("cpu", devices=TWO_GPUS, env={dev.DEVICE_ENV_VAR: "  "}).device.type == "cpu"
    )
    # an override the machine cannot honour still falls back, saying so
    forced_missing = choose_device("auto", devices=[CPU], env={dev.DEVICE_ENV_VAR: "cuda:1"})
    assert forced_missing.fell_back and forced_missing.forced_by_env


def test_resolve_device_reads_the_real_environment(monkeypatch):
    monkeypatch.setenv(dev.DEVICE_ENV_VAR, "cpu")
    assert dev.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setenv(dev.DEVICE_ENV_VAR, "cuda:97")
    assert dev.resolve_device("auto") == torch.device("cpu")
    monkeypatch.delenv(dev.DEVICE_ENV_VAR)
    assert dev.resolve_device("not a device") == torch.device("cpu")
    assert dev.resolve_device() == choose_device("auto").device


# ---------------------------------------------------------------------------- memory


def test_cpu_memory_stats_follow_the_process():
    before = dev.memory_stats("cpu")
    assert before.device == "cpu" and before.reserved_bytes is None
    assert 0 < before.free_bytes < before.total_bytes
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, written so its pages are resident
    after = dev.memory_stats(torch.device("cpu"))
    assert after.allocated_bytes - before.allocated_bytes > 48 * 1024 * 1024
    del block
    assert after.summary().startswith("app ") and " of " in after.summary()


# ---------------------------------------------------------------------------- precision


@pytest.mark.parametrize(
    ("info", "dtype", "tf32", "summary"),
    [
        (H100, torch.bfloat16, True, "bf16 autocast · TF32 matmuls"),
        (A100, torch.bfloat16, True, "bf16 autocast · TF32 matmuls"),
        (T4, torch.float16, False, "fp16 autocast"),
        (CPU, None, False, "fp32"),
    ],
    ids=["hopper", "ampere", "turing", "cpu"],
)
def test_precision_policy_per_device(info, dtype, tf32, summary):
    policy = precision_policy(info)
    assert (policy.autocast_dtype, policy.tf32, policy.summary) == (dtype, tf32, summary)
    assert dev.needs_grad_scaler(policy) == (dtype == torch.float16)


def test_mps_policy_uses_fp16_only_where_torch_autocasts_on_mps():
    expected = torch.float16 if torch.amp.is_autocast_available("mps") else None
    assert precision_policy(MPS).autocast_dtype == expected
    assert precision_policy(torch.device("cpu")) == PrecisionPolicy("cpu", None, False)


def test_autocast_context_is_a_no_op_on_cpu():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with dev.autocast_context(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        product = a @ b
    assert product.dtype == torch.float32
    # disabled autocast never asks the (absent) GPU anything
    with dev.autocast_context("cuda:0", enabled=False):
        assert (a @ b).dtype == torch.float32


def test_configure_tf32_sets_torch_matmul_precision():
    saved = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        assert dev.configure_tf32(H100) is True
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
        assert dev.configure_tf32("cpu") is False
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved


def test_grad_scaler_scales_only_for_fp16():
    loss = torch.tensor(2.0)
    plain = dev.make_grad_scaler(precision_policy(CPU))
    assert not plain.is_enabled() and plain.scale(loss).item() == 2.0
    # an fp16 policy gets a live scaler; the CPU backend lets us check it really scales
    scaling = dev.make_grad_scaler(PrecisionPolicy("cpu", torch.float16, False))
    assert scaling.is_enabled() and scaling.scale(loss).item() == 2.0 * scaling.get_scale()


# ---------------------------------------------------------------------------- OOM fallback


def oom_above(limit: int, *, on=("cuda",), calls=None):
    """A step that raises a real torch OutOfMemoryError for batches above `limit` on `on`."""

    def step(batch: int, device: torch.device) -> str:
        if calls is not None:
            calls.append((batch, str(device)))
        if device.type in on and batch > limit:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {batch} GiB on {device}"
            )
        return f"done {batch} on {device}"

    return step


def test_oom_halves_the_batch_until_it_fits():
    calls = []
    outcome = run_with_oom_fallback(
        oom_above(20, calls=calls), batch_size=64, device="cuda:0", min_batch_size=1
    )
    assert calls == [(64, "cuda:0"), (32, "cuda:0"), (16, "cuda:0")]
    assert (outcome.batch_size, outcome.device, outcome.value) == (
        16,
        torch.device("cuda:0"),
        "done 16 on cuda:0",
    )
    assert len(outcome.messages) == 2 and "retrying with 32" in outcome.messages[0]
    assert outcome.recovered


def test_oom_past_the_floor_moves_to_the_cpu_with_the_reason():
    calls, heard = [], []
    outcome = run_with_oom_fallback(
        oom_above(0, calls=calls),
        batch_size=64,
        device=torch.device("cuda:1"),
        min_batch_size=16,
        on_message=heard.append,
    )
    assert [b for b, d in calls if d == "cuda:1"] == [64, 32, 16]
    assert outcome.device == torch.device("cpu") and outcome.batch_size == 64
    assert heard == list(outcome.messages)
    assert "even with batch 16" in outcome.messages[-1] and "cpu" in outcome.messages[-1]


def test_no_oom_means_one_call_and_no_messages():
    calls = []
    outcome = run_with_oom_fallback(oom_above(99, calls=calls), batch_size=8, device="cuda:0")
    assert calls == [(8, "cuda:0")] and outcome.messages == () and not outcome.recovered


def test_runtime_errors_mentioning_oom_count_and_others_propagate():
    def cudnn_oom(batch, device):
        if batch > 4:
            raise RuntimeError("CUDA error: out of memory (cuDNN workspace)")
        return batch

    assert run_with_oom_fallback(cudnn_oom, batch_size=16, device="cuda:0").value == 4

    calls = []

    def broken(batch, device):
        calls.append(batch)
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError, match="a bug"):
        run_with_oom_fallback(broken, batch_size=16, device="cuda:0")
    assert calls == [16]


def test_oom_types_are_configurable():
    class FakeAcceleratorOOM(Exception):
        pass

    def step(batch, device):
        if device.type == "mps":
            raise FakeAcceleratorOOM("no room")
        return batch

    outcome = run_with_oom_fallback(
        step, batch_size=4, device="mps", min_batch_size=2, oom_types=(FakeAcceleratorOOM,)
    )
    assert outcome.device.type == "cpu" and len(outcome.messages) == 2


def test_oom_everywhere_raises_with_all_reasons():
    with pytest.raises(OutOfMemoryEverywhere) as raised:
        run_with_oom_fallback(oom_above(0, on=("cuda", "cpu")), batch_size=4, device="cuda:0")
    # cuda 4 -> 2 -> 1 -> cpu; cpu 4 -> 2 -> 1 -> give up
    assert len(raised.value.messages) == 6
    assert "smaller model" in str(raised.value)
    with pytest.raises(OutOfMemoryEverywhere):
        run_with_oom_fallback(oom_above(0, on=("cpu",)), batch_size=2, device="cpu")


def test_oom_retry_runs_after_the_failed_attempt_is_freed():
    # Tensors of a failed attempt must be collectable before the retry, or a GPU would
    # still be full when the smaller batch starts.
    alive_at_retry = []
    last = []

    def step(batch, device):
        if last:
            alive_at_retry.append(last[-1]() is not None)
        block = torch.empty(batch, 1024)
        last.append(weakref.ref(block))
        if batch > 1:
            raise torch.OutOfMemoryError("CUDA out of memory.")
        return batch

    run_with_oom_fallback(step, batch_size=8, device="cuda:0")
    assert alive_at_retry == [False, False, False]


def test_oom_rejects_bad_batch_sizes():
    with pytest.raises(ValueError, match="at least 1"):
        run_with_oom_fallback(oom_above(9), batch_size=0, device="cpu")


# ---------------------------------------------------------------------------- sidebar panel


def _panel_app():
    from ui.sidebar import render_device_panel
    from ui.state import init_session_state

    init_session_state()
    render_device_panel()


def _captions(app) -> str:
    return " | ".join(c.value for c in app.caption)


def test_dashboard_shows_the_device_panel_in_the_sidebar():
    app = AppTest.from_file(str(REPO_ROOT / "dashboard.py"), default_timeout=120).run()
    assert not app.exception
    select = app.sidebar.selectbox(key="device_choice")
    assert select.value == "auto"
    assert select.options[0] == "auto (best available)"
    assert any(option.startswith("cpu · ") for option in select.options)
    captions = " | ".join(c.value for c in app.sidebar.caption)
    assert "Using **" in captions and "Jobs: " in captions
    assert "workers start with the first training" in captions or "Ray" in captions


def test_choosing_the_cpu_in_the_panel():
    app = AppTest.from_function(_panel_app, default_timeout=60).run()
    app.selectbox(key="device_choice").set_value("cpu").run()
    assert not app.exception
    assert app.session_state["device_choice"] == "cpu"
    assert "Using **cpu** · fp32" in _captions(app)
    assert "app " in _captions(app)


def test_server_fixed_device_disables_the_menu(monkeypatch):
    monkeypatch.setenv(dev.DEVICE_ENV_VAR, "cuda:42")
    app = AppTest.from_function(_panel_app, default_timeout=60).run()
    assert not app.exception
    menu = app.selectbox(key="device_choice")
    assert menu.disabled and menu.value == "cpu"  # the menu shows what really runs
    assert "Fixed by the server: `AUDIO_DL_DEVICE=cuda:42`" in _captions(app)
    assert "cuda:42 is not available" in app.warning[0].value
    assert "Using **cpu**" in _captions(app)


def test_stale_choice_resets_to_auto():
    app = AppTest.from_function(_panel_app, default_timeout=60)
    app.session_state["device_choice"] = "cuda:9"
    app.run()
    assert not app.exception
    assert app.selectbox(key="device_choice").value == "auto"


def test_panel_shows_queued_jobs_and_the_users_place():
    import shutil

    from core.jobs.files import JobFolder
    from core.jobs.manager import get_job_manager

    app = AppTest.from_function(_panel_app, default_timeout=60)
    app.session_state["session_id"] = "me"
    app.session_state["device_choice"] = "cpu"
    # Three trainings waiting for a CPU worker, as their job folders say; the third is mine.
    root = get_job_manager().root
    folders = [JobFolder(root / f"job-panel-test-{i}") for i in range(3)]
    try:
        for i, (folder, owner) in enumerate(zip(folders, ("a", "b", "me"), strict=True)):
            folder.create(
                {
                    "job_id": folder.job_id,
                    "owner": owner,
                    "pool": "cpu",
                    "submitted_at": time.time() + i,
                }
            )
        app.run()
        captions = _captions(app)
    finally:
        for folder in folders:
            shutil.rmtree(folder.path, ignore_errors=True)
    assert "Jobs: 0 running · 3 queued · yours: number 3 in the queue" in captions
