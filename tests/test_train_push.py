"""The Train page's pushed progress (ui/train_push.py): what a long-polling browser gets of a
real training on a Ray worker, how often the server reads the job's files for it, and the
route on a real Starlette app."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from core.data.datasets import folder_per_class
from core.jobs.manager import JobManager
from core.training.runs import RunStore
from core.training.support import records_of
from core.viz.training import training_curve_series
from tests.asgi_helpers import get, run
from tests.test_datasets import make_tone_folder
from tests.test_jobs import LONG
from tests.test_train import TINY_SPEC, TONE_CONFIG
from ui import live_push, push_route, train_push


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return folder_per_class(make_tone_folder(tmp_path_factory.mktemp("tones"), per_class=6))


@pytest.fixture
def jobs(ray_cluster, tmp_path) -> JobManager:
    return JobManager(RunStore(tmp_path / "runs"), env={})


def _follow(token: str, on_reply=None) -> list[dict]:
    """Poll as the component does (after = the last version, points = what it has) until
    the job ends; every reply. on_reply(replies so far) runs after each."""
    replies, after, have = [], -1, 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        reply = run(train_push.next_progress(token, after, points=have, timeout=5))
        json.dumps(reply, allow_nan=False)  # what the route sends (Starlette refuses NaN)
        replies.append(reply)
        assert reply["points"]["from"] == have
        have, after = reply["points"]["to"], reply["version"]
        if reply["done"]:
            return replies
        if on_reply is not None:
            on_reply(replies)
    raise AssertionError("the training did not end")


def test_a_polling_browser_sees_a_real_training_advance_and_gets_each_point_once(jobs, tones):
    job = jobs.submit(LONG, owner="alice", dataset=tones, spec=TINY_SPEC, device="cpu")
    token = train_push.open_channel(jobs, job, "alice")

    def stop_after_a_few_readings(replies: list[dict]) -> None:
        running = [r for r in replies if r["state"] == "running" and r["points"]["to"]]
        if len(running) == 4:
            jobs.cancel(job, "alice")  # the page's Stop: the worker ends after its step

    replies = _follow(token, stop_after_a_few_readings)
    versions = [r["version"] for r in replies]
    # Each reply newer than the one before, unless the poll timed out (the worker's start).
    assert versions == sorted(versions) and len(set(versions)) >= 5
    # The progress was seen moving: the texts and the points grew reading after reading.
    running = [r for r in replies if r["state"] == "running" and r["points"]["to"]]
    assert len({r["text"] for r in running}) == len(running) >= 4
    assert [r["points"]["to"] for r in running] == sorted({r["points"]["to"] for r in running})
    assert all(0 < r["progress"] < 1 and "samples/s" in r["text"] for r in running)
    final, status = replies[-1], jobs.status(job, "alice")
    assert final["state"] == "stopped" and final["text"] == train_push.progress_text(status)
    assert final["text"].startswith("stopped · epoch ")
    events = jobs.events(job, "alice")
    assert final["caption"] == train_push.started_caption(events[0].info, status)
    assert final["caption"].startswith(f"{events[0].info['train_examples']} training / ")
    assert final["totalSteps"] == events[-1].total_steps > 0
    # Sent piece by piece, the points add up to the curves the figure draws.
    joined = [([], []) for _ in training_curve_series([])]
    for reply in replies:
        for (xs, ys), (new_x, new_y) in zip(joined, reply["points"]["series"], strict=True):
            xs.extend(new_x)
            ys.extend(new_y)
    expected = training_curve_series(records_of(events))
    assert [(list(x), list(y)) for x, y in expected] == [(x, y) for x, y in joined]
    assert all(xs for xs, _ in joined)  # running, epoch and validation points, both panels
    # A browser that lost its points (a reload) gets them all again.
    again = run(train_push.next_progress(token, -1, points=10**6, timeout=1))
    assert again["points"]["from"] == 0 and again["points"]["to"] == final["points"]["to"]


def test_polls_of_one_job_share_its_reads_and_the_event_loop_never_waits_on_a_file(jobs, tones):
    job = jobs.submit(LONG, owner="bob", dataset=tones, spec=TINY_SPEC, device="cpu")
    try:
        tokens = [train_push.open_channel(jobs, job, "bob") for _ in range(8)]
        watch = train_push._CHANNELS.ask(tokens[0])
        assert all(train_push._CHANNELS.ask(t) is watch for t in tokens)  # one per job

        async def eight_tabs_and_a_ticker(seconds: float):
            gaps, last = [], time.perf_counter()

            async def ticker():
                nonlocal last
                while True:
                    await asyncio.sleep(0.01)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.ensure_future(ticker())
            polls = [train_push.next_progress(t, 10**6, timeout=seconds) for t in tokens]
            replies = await asyncio.gather(*polls)
            tick.cancel()
            return replies, max(gaps)

        reads = watch.reads
        started = time.perf_counter()
        replies, longest_gap = run(eight_tabs_and_a_ticker(3.0))
        took = time.perf_counter() - started
        assert 2.9 < took < 5  # nothing newer than 10**6: each waited for its timeout
        assert all(r["state"] in ("queued", "running") for r in replies)
        # Eight waiting tabs, one reading every READ_SECONDS: about 6 in 3 s, not 8 x 6.
        assert watch.reads - reads <= took / train_push.READ_SECONDS + 2
        assert longest_gap < 0.25  # the loop kept running while the files were read
    finally:
        jobs.cancel(job, "bob")
        jobs.wait(job, "bob", timeout=60)


def test_a_token_is_the_only_way_to_a_job_and_only_to_its_owners(jobs, tones):
    guessed = run(train_push.next_progress("not-a-token", -1, timeout=1))
    assert guessed == {"unknown": True, "done": False, "sentAt": guessed["sentAt"]}
    job = jobs.submit(TONE_CONFIG, owner="carol", dataset=tones, spec=TINY_SPEC, device="cpu")
    jobs.wait(job, "carol", timeout=300)
    # A token registered for someone else's job learns nothing of it but the page's sentence.
    stranger = train_push.open_channel(jobs, job, "mallory")
    reply = run(train_push.next_progress(stranger, -1, timeout=1))
    assert reply["done"] and reply["error"] == f"There is no job {job} for this session."
    assert "text" not in reply and reply["points"]["to"] == 0
    # An ended job's channel is forgotten when the next channel opens.
    token = train_push.open_channel(jobs, job, "carol")
    assert run(train_push.next_progress(token, -1, timeout=1))["state"] == "finished"
    train_push.open_channel(jobs, job, "carol")
    assert not train_push.is_open(token) and not train_push.is_open(stranger)


def test_both_routes_answer_on_one_starlette_app(jobs, tones):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def catch_all(request):  # like Streamlit's static files: every path answers
        return PlainTextResponse("<html>app</html>")

    app = Starlette(routes=[Route("/{path:path}", catch_all)])
    push_route.add_route(app, live_push.ROUTE, live_push.route_answer)
    for _ in range(2):
        push_route.add_route(app, train_push.ROUTE, train_push.route_answer)
    paths = [r.path for r in app.router.routes]
    assert paths.count("/audio-dl/train-progress") == paths.count("/audio-dl/live-answer") == 1
    job = jobs.submit(TONE_CONFIG, owner="dave", dataset=tones, spec=TINY_SPEC, device="cpu")
    jobs.wait(job, "dave", timeout=300)
    token = train_push.open_channel(jobs, job, "dave")
    status, headers, body = get(app, "/audio-dl/train-progress", f"token={token}&after=-1")
    assert status == 200 and headers[b"cache-control"] == b"no-store"
    reply = json.loads(body)
    assert reply["state"] == "finished" and reply["points"]["from"] == 0
    _, _, body = get(app, "/audio-dl/train-progress", f"token={token}&after=x&points=oops")
    assert json.loads(body)["points"]["from"] == 0  # what is not a number counts as nothing
    _, _, body = get(app, "/audio-dl/live-answer", "token=nothing&after=0")
    assert json.loads(body)["ended"] is True  # the live answer's route still answers
    assert get(app, "/elsewhere", "")[2] == b"<html>app</html>"  # the app's own paths


def test_outside_a_server_the_route_cannot_be_installed_and_the_page_polls():
    assert train_push.install_route() is False  # no script context, no websocket
