"""The shared sidebar: the device panel shown on every page.

The user's pick lives in `st.session_state["device_choice"]` (set up in ui/state.py); pages
read it and call `core.devices.resolve_device(...)`. When the server sets AUDIO_DL_DEVICE the
pick is fixed for everyone and the menu is disabled.
"""

from __future__ import annotations

import streamlit as st

from core.devices import (
    AUTO,
    DEVICE_ENV_VAR,
    choose_device,
    discover_devices,
    forced_device_choice,
    precision_policy,
)
from ui import status_push

# Live status refresh period (seconds): the pushed view asks the server this often (a few
# milliseconds each), the fallback fragment reruns this often.
MEMORY_REFRESH_SECONDS = 5


def render_device_panel() -> None:
    """Device menu, the device in use with its precision, live memory and the trainings."""
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
    owner = st.session_state.get("session_id", "")
    pushed = status_push.available() and status_push.status_view(
        owner, str(choice.device), MEMORY_REFRESH_SECONDS
    )
    if not pushed:
        _live_device_status(owner, str(choice.device))


@st.fragment(run_every=MEMORY_REFRESH_SECONDS)
def _live_device_status(owner: str, device: str) -> None:
    """Memory, the class's trainings and the workers, refreshed without rerunning the page:
    the fallback of the pushed view (ui/status_push.py), which costs no script run.

    Reading the job folders costs milliseconds and never starts Ray: pages that need no
    worker never wait for one.
    """
    # Three short lines in one caption keep the panel small on every page.
    st.caption("  \n".join(status_push.status_lines(owner, device)))
