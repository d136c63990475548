"""The shared sidebar: the device panel shown on every page.

The user's pick lives in `st.session_state["device_choice"]` (set up in ui/state.py); pages
read it and call `core.device.resolve_device(...)`. When the server sets AUDIO_DL_DEVICE the
pick is fixed for everyone and the menu is disabled.
"""

from __future__ import annotations

import streamlit as st

from core.device import (
    AUTO,
    DEVICE_ENV_VAR,
    choose_device,
    discover_devices,
    forced_device_choice,
    get_job_limiter,
    memory_stats,
    precision_policy,
)

# Live memory refresh period (seconds). Every open browser tab reruns the fragment this
# often, so keep it modest for a class sharing one server.
MEMORY_REFRESH_SECONDS = 5


def render_device_panel() -> None:
    """Device menu, the device in use with its precision, live memory and job slots."""
    devices = discover_devices()
    forced = forced_device_choice()
    labels = {AUTO: "auto (best available)"} | {d.id: d.label for d in devices}
    choice = choose_device(st.session_state.get("device_choice"), devices=devices)
    if forced is not None:
        # The server decides: the (disabled) menu shows its pick, not the session's.
        st.session_state["device_choice"] = AUTO if choice.requested == AUTO else str(choice.device)
    elif st.session_state.get("device_choice") not in labels:
        # A pick from an earlier machine state (a GPU that went away) would break the menu.
        st.session_state["device_choice"] = AUTO

    st.selectbox(
        "Device",
        options=list(labels),
        format_func=labels.__getitem__,
        key="device_choice",
        disabled=forced is not None,
        help="Where models train and run. 'auto' takes the GPU with the most free memory.",
    )
    choice = choose_device(st.session_state["device_choice"], devices=devices)
    if forced is not None:
        st.caption(f"Fixed by the server: `{DEVICE_ENV_VAR}={forced}`")
    if choice.fell_back:
        st.warning(choice.reason)
    info = next((d for d in devices if d.device == choice.device), None)
    st.caption(f"Using **{choice.device}** · {precision_policy(info or choice.device).summary}")
    _live_device_status(str(choice.device))


@st.fragment(run_every=MEMORY_REFRESH_SECONDS)
def _live_device_status(device: str) -> None:
    """Memory and job slots, refreshed on their own without rerunning the page."""
    usage = get_job_limiter().usage(device)
    slots = usage.summary()
    session_id = st.session_state.get("session_id")
    if session_id in usage.waiting:
        slots += f" · your job is {usage.waiting.index(session_id) + 1} in the queue"
    # Two lines in one caption keeps the panel short on every page.
    st.caption(f"{memory_stats(device).summary()}  \n{slots}")
