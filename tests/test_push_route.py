"""The tokens of the pushed views (ui/push_route.py `Channels`): what a token names, and what
is forgotten when: stale entries and tokens nobody asked about for a while, at the next
registration; never a token still in use."""

from __future__ import annotations

import threading
import time

from ui import push_route


def test_a_token_names_what_was_registered_and_nothing_else():
    channels = push_route.Channels()
    ann, bob = channels.open(("ann", "cpu")), channels.open(("bob", "cuda:0"))
    assert ann != bob and len(ann) >= 20  # 128 random bits, URL-safe
    assert channels.ask(ann) == ("ann", "cpu") and channels.ask(bob) == ("bob", "cuda:0")
    for unknown in ("", None, "nobody", ann[:-1]):
        assert channels.ask(unknown) is None and unknown not in channels
    channels.close(ann)
    assert ann not in channels and channels.ask(ann) is None and bob in channels
    channels.close("never opened")  # nothing to close: no error
    assert channels.named() == [("bob", "cuda:0")]


def test_stale_entries_are_forgotten_at_the_next_registration():
    ended = set()
    channels = push_route.Channels(stale=lambda job: job in ended)
    first, second = channels.open("job-1"), channels.open("job-2")
    ended.add("job-1")
    assert first in channels  # nothing is forgotten by a timer or by asking
    third = channels.open("job-3")
    assert first not in channels and second in channels and third in channels


def test_a_token_nobody_asked_about_is_forgotten_one_asked_about_is_kept():
    channels = push_route.Channels(forget_seconds=0.3)
    asked, closed_tab = channels.open("asked"), channels.open("closed tab")
    for _ in range(4):
        time.sleep(0.1)
        assert channels.ask(asked) == "asked"  # a polling view keeps its token alive
    channels.forget_old()
    assert asked in channels and closed_tab not in channels


def test_pages_registering_while_the_route_asks_lose_no_token():
    channels = push_route.Channels(forget_seconds=60)
    tokens: list[str] = []
    lock = threading.Lock()

    def page(index: int) -> None:
        for j in range(200):
            token = channels.open((index, j))
            assert channels.ask(token) == (index, j)
            with lock:
                tokens.append(token)

    threads = [threading.Thread(target=page, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 800 and all(token in channels for token in tokens)
    assert len(channels.named()) == 800
