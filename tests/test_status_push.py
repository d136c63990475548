"""The sidebar's pushed status (ui/status_push.py): what the route answers a registered
session, and an unknown token, on a real Starlette app."""

from __future__ import annotations

import json

from core.jobs.manager import get_job_manager
from tests.asgi_helpers import get
from ui import push_route, status_push


def _app():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def catch_all(request):  # like Streamlit's static files: every path answers
        return PlainTextResponse("<html>app</html>")

    app = Starlette(routes=[Route("/{path:path}", catch_all)])
    push_route.add_route(app, status_push.ROUTE, status_push.route_answer)
    return app


def test_the_route_answers_a_registered_session_with_its_three_lines():
    app = _app()
    token = status_push.register("ann", "cpu")
    status, headers, body = get(app, "/audio-dl/status", f"token={token}&after=-1")
    assert status == 200 and headers[b"cache-control"] == b"no-store"
    reply = json.loads(body)
    memory, trainings, workers = reply["lines"]
    assert memory.startswith("app ") and " free " in memory, memory  # this process, this machine
    assert trainings == get_job_manager().overview("ann").summary()
    assert trainings.startswith("Jobs: ")
    assert workers == status_push.status_lines("ann", "cpu")[2]
    assert reply["version"] == 1
    _, _, body = get(app, "/audio-dl/status", f"token={token}&after=7")
    assert json.loads(body)["version"] == 8  # newer than what the browser has: it shows it


def test_an_unknown_token_is_told_so_and_never_names_anyone():
    app = _app()
    status_push.register("ann", "cpu")
    for query in ("token=nobody&after=0", "token=&after=-1", "after=x"):
        status, _, body = get(app, "/audio-dl/status", query)
        assert status == 200 and json.loads(body) == {"unknown": True}


def test_outside_a_server_the_route_cannot_be_installed_and_the_sidebar_uses_its_fragment():
    assert push_route.install_route(status_push.ROUTE, status_push.route_answer) is False
