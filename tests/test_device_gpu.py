"""core.devices on real accelerators: run wherever CUDA (or MPS) is present, skipped elsewhere.

`pytest -m gpu` runs only these. Each test checks what only real hardware can show: that
autocast really computes in the policy's dtype, that memory figures move when tensors are
allocated, that a real CUDA out-of-memory error is recovered from.
"""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import devices as dev

pytestmark = pytest.mark.gpu

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
needs_mps = pytest.mark.skipif(not torch.backends.mps.is_available(), reason="needs Apple MPS")
GIB = 1024**3


def _fit_line(device: torch.device, steps: int = 60) -> tuple[float, float]:
    """Train y = 3x - 1 with the policy's autocast and scaler; (first loss, last loss)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=generator).to(device)
    y = x @ torch.full((16, 1), 3.0, device=device) - 1.0
    model = torch.nn.Linear(16, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = dev.make_grad_scaler(dev.precision_policy(device))
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        with dev.autocast_context(device):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    return losses[0], losses[-1]


# ---------------------------------------------------------------------------- CUDA


@needs_cuda
def test_cuda_discovery_matches_torch():
    cuda = [d for d in dev.discover_devices() if d.kind == "cuda"]
    assert len(cuda) == torch.cuda.device_count()
    for index, info in enumerate(cuda):
        props = torch.cuda.get_device_properties(index)
        assert info.id == f"cuda:{index}" and info.name == props.name
        assert info.compute_capability == (props.major, props.minor)
        assert 0 < info.free_memory_bytes <= info.total_memory_bytes
        assert info.supports_bf16 == ((props.major, props.minor) >= (8, 0))
    choice = dev.choose_device("auto")
    assert choice.device.type == "cuda" and not choice.fell_back


@needs_cuda
def test_cuda_autocast_matmul_runs_in_the_policy_dtype():
    device = torch.device("cuda:0")
    policy = dev.precision_policy(device)
    expected = torch.bfloat16 if torch.cuda.get_device_capability(0) >= (8, 0) else torch.float16
    assert policy.autocast_dtype == expected
    a = torch.randn(512, 512, device=device)
    b = torch.randn(512, 512, device=device)
    with dev.autocast_context(device):
        product = a @ b
    assert product.dtype == expected
    reference = (a.double() @ b.double()).float()
    relative = (product.float() - reference).norm() / reference.norm()
    # bf16 keeps 8 mantissa bits: about 0.4 % error per element, far less in the norm
    assert 0 < relative < 2e-2
    with dev.autocast_context(device, enabled=False):
        assert (a @ b).dtype == torch.float32


@needs_cuda
def test_cuda_tf32_changes_fp32_matmul_accuracy_on_ampere_and_newer():
    if torch.cuda.get_device_capability(0) < (8, 0):
        pytest.skip("TF32 needs Ampere (compute capability 8.0) or newer")
    device = torch.device("cuda:0")
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    reference = a.double() @ b.double()
    saved = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        assert dev.configure_tf32(device) is True
        tf32_error = ((a @ b).double() - reference).norm() / reference.norm()
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        ieee_error = ((a @ b).double() - reference).norm() / reference.norm()
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved
    # TF32 keeps 10 mantissa bits against fp32's 23: its error is orders of magnitude larger
    assert tf32_error > 10 * ieee_error


@needs_cuda
def test_cuda_memory_stats_follow_an_allocation():
    device = torch.device("cuda:0")
    before = dev.memory_stats(device)
    block = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device=device)
    after = dev.memory_stats(device)
    assert after.allocated_bytes - before.allocated_bytes >= 256 * 1024 * 1024
    assert after.reserved_bytes >= after.allocated_bytes > 0
    assert after.free_bytes < before.free_bytes <= after.total_bytes
    assert "allocated" in after.summary()
    del block


def _allocate_gib(batch: int, device: torch.device) -> int:
    """A step whose memory grows with the batch: one GiB per item on the GPU."""
    if device.type == "cpu":
        return batch  # the CPU path of this test only proves it was reached
    block = torch.empty(batch * GIB // 4, dtype=torch.float32, device=device)
    block.fill_(1.0)
    return batch


@needs_cuda
def test_real_cuda_oom_halves_the_batch_until_it_fits():
    device = torch.device("cuda:0")
    torch.cuda.empty_cache()  # memory cached by earlier tests would blur "what fits"
    free, total = torch.cuda.mem_get_info(0)
    start = 1 << (int(total // GIB) * 4).bit_length()  # several times more than the card has
    baseline = torch.cuda.memory_allocated(0)
    outcome = dev.run_with_oom_fallback(_allocate_gib, batch_size=start, device=device)
    assert outcome.device == device
    assert outcome.batch_size * GIB <= free
    assert outcome.batch_size * 2 * GIB > free * 0.5  # halving stopped near what fits
    assert len(outcome.messages) == (start // outcome.batch_size).bit_length() - 1
    assert torch.cuda.memory_allocated(0) == baseline  # the failed attempts left nothing


@needs_cuda
def test_real_cuda_oom_past_the_floor_moves_to_the_cpu():
    device = torch.device("cuda:0")
    too_big = 1 << (int(torch.cuda.mem_get_info(0)[1] // GIB) * 4).bit_length()
    outcome = dev.run_with_oom_fallback(
        _allocate_gib, batch_size=too_big, device=device, min_batch_size=too_big // 2
    )
    assert outcome.device == torch.device("cpu") and outcome.value == too_big
    assert "continuing on cpu" in outcome.messages[-1]


@needs_cuda
def test_cuda_training_with_the_policy_converges():
    first, last = _fit_line(torch.device("cuda:0"))
    assert last < 0.05 * first


@needs_cuda
def test_sidebar_panel_reports_the_gpu():
    def panel():
        from ui.sidebar import render_device_panel
        from ui.state import init_session_state

        init_session_state()
        render_device_panel()

    app = AppTest.from_function(panel, default_timeout=60).run()
    assert not app.exception
    captions = " | ".join(c.value for c in app.caption)
    assert "Using **cuda:" in captions and "allocated" in captions
    assert any(o.startswith("cuda:0 · ") for o in app.selectbox(key="device_choice").options)


# ---------------------------------------------------------------------------- MPS


@needs_mps
def test_mps_discovery_and_autocast():
    assert any(d.kind == "mps" for d in dev.discover_devices())
    device = torch.device("mps")
    policy = dev.precision_policy(device)
    a = torch.randn(256, 256, device=device)
    with dev.autocast_context(device):
        product = a @ a
    assert product.dtype == (policy.autocast_dtype or torch.float32)


@needs_mps
def test_mps_memory_stats_follow_an_allocation():
    before = dev.memory_stats("mps")
    block = torch.ones(64 * 1024 * 1024, dtype=torch.uint8, device="mps")
    after = dev.memory_stats("mps")
    assert after.allocated_bytes - before.allocated_bytes >= 64 * 1024 * 1024
    del block


@needs_mps
def test_mps_training_with_the_policy_converges():
    first, last = _fit_line(torch.device("mps"))
    assert last < 0.05 * first
