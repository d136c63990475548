"""Run the benchmarks: `python -m tests.benchmarks` (all) or `python -m tests.benchmarks features`.

Each tests/benchmarks/bench_<name>.py has a `main()` that prints its own figures, measured
side by side in one run; this runner imports them in name order, prints a header per
benchmark and keeps going when one fails (the exit status says whether any did).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Benchmark names: bench_features.py -> "features"."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def run(names: list[str]) -> int:
    known = available()
    unknown = [name for name in names if name.removeprefix("bench_") not in known]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}. Available: {', '.join(known)}.")
        return 2
    failures = 0
    for name in [n.removeprefix("bench_") for n in names] or known:
        print(f"\n=== benchmark: {name} " + "=" * max(0, 60 - len(name)), flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(f"tests.benchmarks.bench_{name}").main()
        except Exception:  # one broken benchmark must not hide the others' figures
            failures += 1
            traceback.print_exc()
        print(f"=== {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
