"""Learning paradigms: batched embeddings, table-driven Q-learning, a vectorised bandit (CPU).

1. MFCC-statistics embeddings of the explorer's 200 built-in digit clips (16 kHz): the
   batched `mfcc_statistics` (64 clips a batch, clips grouped by length) against the same
   function one clip at a time, and against the librosa loop a student would write first
   (`librosa.feature.mfcc` per clip, then mean and std). Goal: batched >= 2x the librosa loop.
2. Q-learning on the default melody task (8 steps, 14 actions): `QLearningAgent` (rewards
   read from the environment's precomputed table) against a plain-python reference that
   recomputes every reward from the menu terms and keeps Q in dicts. Episodes per second,
   goal >= 3x.
3. The bandit: `run_bandit` (all runs advance together as numpy arrays) against a plain
   loop over runs and steps, for epsilon-greedy with 10 arms, 1000 steps, 50 runs.
   Goal >= 5x.

Every side runs once to warm up, then REPEATS times; the best time counts (shared machine).
Run: `.venv/bin/python -m tests.benchmarks paradigms`
"""

from __future__ import annotations

import random
import time

import librosa
import numpy as np

from core.lessons import rl
from core.lessons import unsupervised as uns

REPEATS = 3


def best_time(fn, repeats: int = REPEATS) -> tuple[float, object]:
    result = fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def librosa_mfcc_statistics(clips: list[np.ndarray], config=uns.MFCC_CONFIG) -> np.ndarray:
    rows = []
    for y in clips:
        mel = librosa.feature.melspectrogram(
            y=y,
            sr=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            center=True,
            pad_mode="constant",
            htk=False,
            norm="slaney",
        )
        log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=config.top_db)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc, norm="ortho")
        rows.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
    return np.stack(rows)


def bench_embeddings() -> None:
    clips = [c.samples for c in uns.builtin_digit_collection(n_clips=200).clips]
    t_batched, batched = best_time(lambda: uns.mfcc_statistics(clips, batch_size=64))
    t_single, single = best_time(lambda: uns.mfcc_statistics(clips, batch_size=1))
    t_librosa, reference = best_time(lambda: librosa_mfcc_statistics(clips))
    print(f"MFCC statistics of {len(clips)} clips ({sum(map(len, clips)) / 16000:.0f} s of audio)")
    print(f"  batched (64 a batch)   {t_batched * 1000:8.1f} ms")
    print(
        f"  one clip at a time     {t_single * 1000:8.1f} ms   ratio {t_single / t_batched:5.2f}x"
    )
    print(
        f"  librosa loop           {t_librosa * 1000:8.1f} ms   "
        f"ratio {t_librosa / t_batched:5.2f}x (goal >= 2x)"
    )
    print(f"  max |batched - one at a time| = {np.abs(batched - single).max():.2e}")
    print(f"  max |batched - librosa|       = {np.abs(batched - reference).max():.2e} (MFCC units)")


def reference_q_learning(env: rl.MelodyEnv, episodes: int, seed: int = 0) -> list[float]:
    """Plain python: rewards recomputed from the menu terms, Q in a dict of lists."""
    rng = random.Random(seed)
    weights = env.config.weights.as_dict()
    q: dict[tuple[int, int], list[float]] = {}
    returns = []
    for _ in range(episodes):
        position, last, total = 0, env.NO_NOTE, 0.0
        while position < env.length:
            values = q.setdefault((position, last), [0.0] * env.n_actions)
            if rng.random() < 0.2:
                action = rng.randrange(env.n_actions)
            else:
                action = max(range(env.n_actions), key=values.__getitem__)
            terms = env.reward_terms((position, last), action)
            reward = sum(weights[t] * terms[t] for t in rl.REWARD_TERMS)
            next_last = last if action == env.HOLD else action
            done = position + 1 == env.length
            future = (
                0.0 if done else max(q.setdefault((position + 1, next_last), [0.0] * env.n_actions))
            )
            values[action] += 0.5 * (reward + future - values[action])
            position, last, total = position + 1, next_last, total + reward
        returns.append(total)
    return returns


def bench_q_learning(episodes: int = 2000) -> None:
    env = rl.MelodyEnv(rl.MelodyConfig())

    def ours():
        agent = rl.QLearningAgent(env, rl.QLearningConfig(0.5, 1.0, 0.2, seed=0))
        return [agent.run_episode() for _ in range(episodes)]

    t_ours, returns = best_time(ours)
    t_ref, ref_returns = best_time(lambda: reference_q_learning(env, episodes))
    best, _ = rl.optimal_return(env)
    print(f"Q-learning, {episodes} episodes of the default melody task (optimum {best:.1f})")
    print(f"  QLearningAgent         {episodes / t_ours:10.0f} episodes/s")
    print(
        f"  plain python reference {episodes / t_ref:10.0f} episodes/s   "
        f"ratio {t_ref / t_ours:5.2f}x (goal >= 3x)"
    )
    print(
        f"  mean return of the last 200 episodes: ours {np.mean(returns[-200:]):.2f}, "
        f"reference {np.mean(ref_returns[-200:]):.2f}"
    )
    agent = rl.QLearningAgent(env, rl.QLearningConfig(0.5, 1.0, 0.2, seed=0))
    t_train, _ = best_time(lambda: list(rl.train(agent, 500)), repeats=1)
    print(
        f"  rl.train (adds the greedy melody's return per episode): {500 / t_train:.0f} episodes/s"
    )


def reference_bandit(config: rl.BanditConfig) -> np.ndarray:
    """One run at a time, one step at a time: the loop from a textbook."""
    rng = np.random.default_rng(config.seed)
    regret = np.zeros(config.steps)
    for _ in range(config.runs):
        means = rng.normal(0, 1, config.n_arms)
        estimates = np.zeros(config.n_arms)
        counts = np.zeros(config.n_arms)
        for t in range(config.steps):
            if rng.random() < config.epsilon:
                arm = int(rng.integers(config.n_arms))
            else:
                arm = int(np.argmax(estimates))
            reward = means[arm] + rng.normal()
            counts[arm] += 1
            estimates[arm] += (reward - estimates[arm]) / counts[arm]
            regret[t] += means.max() - means[arm]
    return np.cumsum(regret / config.runs)


def bench_bandit() -> None:
    config = rl.BanditConfig(n_arms=10, steps=1000, runs=50, epsilon=0.1)
    t_ours, ours = best_time(lambda: rl.run_bandit(config, "epsilon-greedy"))
    t_ref, ref = best_time(lambda: reference_bandit(config), repeats=1)
    print(
        f"Bandit, epsilon-greedy, {config.runs} runs x {config.steps} steps x {config.n_arms} arms"
    )
    print(f"  run_bandit (vectorised over runs) {t_ours * 1000:8.1f} ms")
    print(
        f"  loop over runs and steps          {t_ref * 1000:8.1f} ms   "
        f"ratio {t_ref / t_ours:5.1f}x (goal >= 5x)"
    )
    print(
        f"  final cumulative regret: ours {ours.cumulative_regret[-1]:.0f}, loop {ref[-1]:.0f} "
        "(different random streams, same distribution)"
    )


def main() -> None:
    bench_embeddings()
    bench_q_learning()
    bench_bandit()


if __name__ == "__main__":
    main()
