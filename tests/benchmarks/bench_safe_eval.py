"""The expression console's overhead: evaluate() versus plain eval() of the same expressions.

Both run side by side on the same named tensors. For small tensors the ratio is the cost of
parsing, checking and walking the tree in Python; for larger ones the torch work dominates
and the ratio should approach 1. Refusals are timed too: they must stay far below a second.
"""

from __future__ import annotations

import time

import torch

from core.tensors.console_rules import ConsoleError
from core.tensors.safe_eval import evaluate

EXPRESSIONS = (
    "A @ B",
    "X[:, None] * w",
    "torch.softmax(Z, dim=-1)",
    "(A @ B).sum(dim=0)",
    "torch.relu(A - 0.5).mean()",
)
REFUSED = (
    "torch.zeros(10**10)",
    "2**10**10",
    "().__class__.__base__.__subclasses__()",
    "[0] * 10**9",
)


def _names(n: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "A": torch.randn(n, n, generator=generator),
        "B": torch.randn(n, n, generator=generator),
        "X": torch.randn(n, generator=generator),
        "w": torch.randn(n, generator=generator),
        "Z": torch.randn(n, n, generator=generator),
    }


def _time(call, repeats: int) -> float:
    call()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    torch.set_num_threads(1)  # the same thread count for both sides, stable figures
    print(
        f"{'size':>6} {'expression':<28} {'plain eval':>12} "
        f"{'console':>12} {'ratio':>7} {'overhead':>10}"
    )
    overheads = []
    for n, repeats in ((4, 300), (256, 20)):
        names = _names(n)
        for source in EXPRESSIONS:
            # plain eval gets the text too: both sides parse on every call
            plain = _time(lambda s=source, v=names: eval(s, {"torch": torch}, dict(v)), repeats)
            safe = _time(lambda s=source, v=names: evaluate(s, v), repeats)
            overheads.append(safe - plain)
            print(
                f"{n:>6} {source:<28} {plain * 1e6:>10.1f}us {safe * 1e6:>10.1f}us "
                f"{safe / plain:>6.1f}x {(safe - plain) * 1e6:>8.0f}us"
            )
    overheads.sort()
    median = overheads[len(overheads) // 2]
    print(f"median overhead of parsing, checking and walking the tree: {median * 1e6:.0f} us")
    names = _names(4)
    for source in REFUSED:

        def refuse(s=source) -> None:
            try:
                evaluate(s, names)
            except ConsoleError:
                return
            raise AssertionError(f"{s} was not refused")

        print(f"refused {source!r:<45} in {_time(refuse, 50) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
