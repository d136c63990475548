"""Reinforcement learning you can hear: a k-armed bandit and a melody-writing environment.

The course's vocabulary maps onto this module one to one:

- **environment**: `MelodyEnv`, a melody of `length` steps written note by note;
- **state**: `(position, last)`: the step being written and the last sounding pitch
  (index into the pitch range, or `NO_NOTE` before the first note);
- **action**: the next pitch (index into the pitch range) or `HOLD` (extend the last note);
- **reward**: a weighted sum of menu terms (`RewardWeights`), chosen by the student;
- **return**: the (discounted) sum of rewards over an episode (one whole melody);
- **policy**: what the agent plays in each state: greedy on a Q-table (`QLearningAgent`)
  or a softmax over learnt preferences (`PolicyGradientAgent`, REINFORCE);
- **exploration vs exploitation**: epsilon (Q-learning), entropy bonus (policy gradient),
  and in the bandit: greedy, epsilon-greedy and UCB side by side with their regret.

The state (position, last pitch) holds everything the reward depends on, so the
environment is Markov and deterministic; `optimal_return` finds the best melody by dynamic
programming, which is how the tests check that Q-learning reaches the optimum.
Everything here is numpy; training is a generator that yields one event per episode.

Why one module of a little over 500 lines: the environment, the two agents and the bandit share
the vocabulary above, and a student reads them side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------
# k-armed bandit
# ---------------------------------------------------------------------------------------

BANDIT_AGENTS = ("random", "greedy", "epsilon-greedy", "UCB")


@dataclass(frozen=True)
class BanditConfig:
    n_arms: int = 10  # arms (slot machines); true means drawn from N(0, 1)
    steps: int = 1000  # pulls per run
    runs: int = 100  # independent bandits (seeds) averaged into each curve
    epsilon: float = 0.1  # exploration rate of epsilon-greedy
    ucb_c: float = 2.0  # exploration bonus weight of UCB
    seed: int = 0


@dataclass(frozen=True)
class BanditResult:
    agent: str
    cumulative_regret: np.ndarray  # (steps,) mean over runs of sum of (best mean - chosen mean)
    mean_reward: np.ndarray  # (steps,) mean over runs of the reward received at each step
    optimal_rate: np.ndarray  # (steps,) fraction of runs that pulled the best arm at each step


def run_bandit(config: BanditConfig, agent: str) -> BanditResult:
    """Play `config.runs` independent Gaussian bandits with one agent, vectorised over runs.

    Every agent sees the same arms and the same reward noise for a given seed, so their
    curves differ only by their decisions. Regret is the expected reward lost against always
    pulling the best arm: `best_mean - mean[chosen]`, summed over steps.

    Args:
        config: bandit size, length, number of runs, epsilon and UCB constant.
        agent: one of `BANDIT_AGENTS`.
    Returns:
        BanditResult with arrays of shape (steps,).
    """
    if agent not in BANDIT_AGENTS:
        raise ValueError(f"Unknown bandit agent {agent!r}; choose one of {BANDIT_AGENTS}.")
    runs, arms, steps = config.runs, config.n_arms, config.steps
    means = np.random.default_rng(config.seed).normal(0.0, 1.0, (runs, arms))
    noise = np.random.default_rng([config.seed, 1]).normal(0.0, 1.0, (steps, runs))
    choice_rng = np.random.default_rng([config.seed, 2])
    best = means.max(axis=1)
    best_arm = means.argmax(axis=1)
    estimates = np.zeros((runs, arms))
    counts = np.zeros((runs, arms))
    rows = np.arange(runs)
    regret = np.empty(steps)
    rewards = np.empty(steps)
    optimal = np.empty(steps)
    for t in range(steps):
        chosen = _bandit_choice(agent, estimates, counts, t, config, choice_rng)
        reward = means[rows, chosen] + noise[t]
        counts[rows, chosen] += 1
        # incremental sample mean: Q <- Q + (r - Q) / n
        estimates[rows, chosen] += (reward - estimates[rows, chosen]) / counts[rows, chosen]
        regret[t] = np.mean(best - means[rows, chosen])
        rewards[t] = reward.mean()
        optimal[t] = np.mean(chosen == best_arm)
    return BanditResult(agent, np.cumsum(regret), rewards, optimal)


def _bandit_choice(agent, estimates, counts, t, config, rng) -> np.ndarray:
    runs, arms = estimates.shape
    if agent == "random":
        return rng.integers(0, arms, runs)
    # tiny random tie-break so that all-zero estimates do not always pick arm 0
    jitter = rng.random((runs, arms)) * 1e-9
    if agent == "UCB":
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = config.ucb_c * np.sqrt(np.log(t + 1) / counts)
        scores = np.where(counts == 0, np.inf, estimates + bonus)
        return np.argmax(scores + jitter, axis=1)
    greedy = np.argmax(estimates + jitter, axis=1)
    if agent == "greedy":
        return greedy
    explore = rng.random(runs) < config.epsilon
    return np.where(explore, rng.integers(0, arms, runs), greedy)


def compare_bandit_agents(
    config: BanditConfig, agents: tuple[str, ...] = BANDIT_AGENTS
) -> dict[str, BanditResult]:
    """`run_bandit` for each agent on the same bandits; {agent: result}."""
    return {agent: run_bandit(config, agent) for agent in agents}


# ---------------------------------------------------------------------------------------
# the melody environment
# ---------------------------------------------------------------------------------------

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
REWARD_TERMS = ("in_key", "end_on_tonic", "small_steps", "no_repeat", "rhythm")
# What each menu term computes, in words; the page shows these as the sliders' help, and
# tests/test_rl.py checks them on known melodies so the words cannot drift from the code.
REWARD_RULES = {
    "in_key": "+1 for each new note in the scale, -1 for one outside it (holds score 0)",
    "end_on_tonic": "+2 if the last sounding note is the key's tonic, -2 if not",
    "small_steps": "+1 for a step of 1-2 semitones from the note just before, -1 for a leap "
    "over 4 semitones, 0 otherwise (the first note and holds score 0)",
    "no_repeat": "-1 when a new note has the same pitch as the note sounding just before it "
    "(C C or C hold C); only the previous note counts, so C D C is not penalised: the state "
    "remembers the last note only",
    "rhythm": "+1 when a new note or a hold falls where the rhythm pattern says, -1 otherwise",
}


def pitch_name(midi: int) -> str:
    """'C4' for MIDI 60."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


@dataclass(frozen=True)
class RewardWeights:
    """How much each menu term counts; the goal of the agent lives only here."""

    in_key: float = 1.0  # +1 for a new note in the scale, -1 outside it
    end_on_tonic: float = 1.0  # +2 if the melody ends on the tonic, -2 otherwise
    small_steps: float = 0.5  # +1 for a step of 1-2 semitones, -1 for a leap over 4
    no_repeat: float = 0.5  # -1 for a new note at the pitch of the note just before it
    rhythm: float = 0.0  # +1 when onset/hold matches the rhythm pattern, -1 otherwise

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in REWARD_TERMS}


@dataclass(frozen=True)
class MelodyConfig:
    length: int = 8  # notes (steps) per melody: one episode
    low_pitch: int = 60  # MIDI pitch of action 0 (60 = C4)
    n_pitches: int = 13  # chromatic range from low_pitch (13 = one octave C4..C5)
    tonic: int = 0  # pitch class of the key's tonic (0 = C, 9 = A)
    scale: str = "major"  # a key of SCALES
    rhythm: str = "x-x-xxx-"  # x: a new note, -: hold; repeated to `length`
    weights: RewardWeights = field(default_factory=RewardWeights)


class MelodyEnv:
    """Write a melody of `config.length` steps; each step plays a pitch or holds.

    States are `(position, last)` with `last` in `0..n_pitches-1` or `NO_NOTE`; actions are
    `0..n_pitches-1` (a pitch) or `HOLD`. Rewards are deterministic and tabulated once in
    `rewards[position, last, action]`, so agents and dynamic programming share them.
    """

    def __init__(self, config: MelodyConfig):
        _validate_melody_config(config)
        self.config = config
        self.length = config.length
        self.n_pitches = config.n_pitches
        self.HOLD = config.n_pitches  # action index
        self.NO_NOTE = config.n_pitches  # `last` index before the first note
        self.n_actions = config.n_pitches + 1
        self.n_last = config.n_pitches + 1
        self.pitches = np.arange(config.low_pitch, config.low_pitch + config.n_pitches)
        scale = SCALES[config.scale]
        self.in_scale = np.array([(p - config.tonic) % 12 in scale for p in self.pitches])
        self.rhythm = [config.rhythm[i % len(config.rhythm)] == "x" for i in range(self.length)]
        # next_last[last, action]: the sounding pitch after the action
        self.next_last = np.empty((self.n_last, self.n_actions), dtype=np.int64)
        self.next_last[:, : self.n_pitches] = np.arange(self.n_pitches)
        self.next_last[:, self.HOLD] = np.arange(self.n_last)
        weights = config.weights.as_dict()
        self.terms = self._term_table()  # (terms, length, n_last, n_actions)
        self.rewards = np.tensordot(
            np.array([weights[t] for t in REWARD_TERMS]), self.terms, axes=1
        )
        # the same tables as nested lists, for agents that step through them in python
        self.reward_lists = self.rewards.tolist()
        self.next_lists = self.next_last.tolist()

    @property
    def n_states(self) -> int:
        return self.length * self.n_last

    def reset(self) -> tuple[int, int]:
        return (0, self.NO_NOTE)

    def step(self, state: tuple[int, int], action: int) -> tuple[tuple[int, int], float, bool]:
        """(next_state, reward, done) for one action; the environment itself keeps no state."""
        position, last = state
        reward = float(self.rewards[position, last, action])
        next_state = (position + 1, int(self.next_last[last, action]))
        return next_state, reward, position + 1 == self.length

    def reward_terms(self, state: tuple[int, int], action: int) -> dict[str, float]:
        """Unweighted value of each menu term for one step (plain python: the reference)."""
        position, last = state
        is_note = action != self.HOLD
        sounding = action if is_note else last
        terms = dict.fromkeys(REWARD_TERMS, 0.0)
        if is_note:
            terms["in_key"] = 1.0 if self.in_scale[action] else -1.0
            if last != self.NO_NOTE:
                interval = abs(int(self.pitches[action]) - int(self.pitches[last]))
                terms["small_steps"] = (
                    1.0 if 1 <= interval <= 2 else (-1.0 if interval > 4 else 0.0)
                )
                terms["no_repeat"] = -1.0 if interval == 0 else 0.0
        wants_onset = self.rhythm[position]
        terms["rhythm"] = 1.0 if is_note == wants_onset else -1.0
        if position == self.length - 1:
            on_tonic = (
                sounding != self.NO_NOTE
                and (int(self.pitches[sounding]) - self.config.tonic) % 12 == 0
            )
            terms["end_on_tonic"] = 2.0 if on_tonic else -2.0
        return terms

    def _term_table(self) -> np.ndarray:
        table = np.zeros((len(REWARD_TERMS), self.length, self.n_last, self.n_actions))
        for position in range(self.length):
            for last in range(self.n_last):
                for action in range(self.n_actions):
                    terms = self.reward_terms((position, last), action)
                    table[:, position, last, action] = [terms[t] for t in REWARD_TERMS]
        return table

    def rollout(self, actions) -> float:
        """Undiscounted return of a full action sequence."""
        state, total = self.reset(), 0.0
        for action in actions:
            state, reward, _ = self.step(state, int(action))
            total += reward
        return total

    def action_label(self, action: int) -> str:
        return "hold" if action == self.HOLD else pitch_name(int(self.pitches[action]))

    def to_notes(self, actions) -> list[tuple[int, int, int]]:
        """Merge holds: [(midi_pitch, start_step, n_steps)]; a leading hold is a rest."""
        notes: list[list[int]] = []
        for step, action in enumerate(actions):
            if action == self.HOLD:
                if notes:
                    notes[-1][2] += 1
                continue
            notes.append([int(self.pitches[action]), step, 1])
        return [tuple(n) for n in notes]


def _validate_melody_config(config: MelodyConfig) -> None:
    if not 1 <= config.length <= 32:
        raise ValueError("A melody needs between 1 and 32 steps.")
    if not 2 <= config.n_pitches <= 36:
        raise ValueError("The pitch range needs between 2 and 36 pitches.")
    if config.low_pitch < 0 or config.low_pitch + config.n_pitches > 128:
        raise ValueError("The pitch range must stay within MIDI pitches 0-127.")
    if config.scale not in SCALES:
        raise ValueError(f"Unknown scale {config.scale!r}; choose one of {tuple(SCALES)}.")
    if not config.rhythm or set(config.rhythm) - {"x", "-"}:
        raise ValueError("A rhythm pattern uses only 'x' (new note) and '-' (hold).")
    if not 0 <= config.tonic <= 11:
        raise ValueError("The tonic is a pitch class between 0 (C) and 11 (B).")


def optimal_return(env: MelodyEnv, discount: float = 1.0) -> tuple[float, list[int]]:
    """Best achievable (discounted) return and one melody reaching it, by backward induction.

    V[position, last] = max_a rewards[position, last, a] + discount * V[position + 1, next]
    over the `length x n_last` states: exact because the environment is known and small.
    """
    values = np.zeros((env.length + 1, env.n_last))
    best_actions = np.zeros((env.length, env.n_last), dtype=np.int64)
    for position in reversed(range(env.length)):
        q = env.rewards[position] + discount * values[position + 1][env.next_last]
        best_actions[position] = q.argmax(axis=1)
        values[position] = q.max(axis=1)
    state, actions = env.reset(), []
    for position in range(env.length):
        action = int(best_actions[position, state[1]])
        actions.append(action)
        state = (position + 1, int(env.next_last[state[1], action]))
    return float(values[0, env.NO_NOTE]), actions


# ---------------------------------------------------------------------------------------
# agents
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QLearningConfig:
    learning_rate: float = 0.5  # alpha: how far each update moves Q towards its target
    discount: float = 1.0  # gamma: weight of future reward (1 = the whole melody counts)
    epsilon: float = 0.2  # exploration: probability of a random action while learning
    seed: int = 0


@dataclass(frozen=True)
class PolicyGradientConfig:
    learning_rate: float = 0.05  # step size on the policy's preferences (logits)
    discount: float = 1.0  # gamma for the return-to-go G_t
    entropy: float = 0.05  # exploration: bonus for keeping the policy spread out
    seed: int = 0


@dataclass(frozen=True)
class EpisodeEvent:
    episode: int  # 1-based count of episodes trained so far by this agent
    episode_return: float  # undiscounted return of the melody played while learning
    greedy_return: float  # undiscounted return of the greedy melody after this episode


class QLearningAgent:
    """Tabular Q-learning: Q[position, last, action], epsilon-greedy while learning."""

    name = "Q-learning"

    def __init__(self, env: MelodyEnv, config: QLearningConfig):
        _check_unit_interval(config.discount, "discount")
        _check_unit_interval(config.epsilon, "exploration (epsilon)")
        if not 0 < config.learning_rate <= 1:
            raise ValueError("The Q-learning rate must be in (0, 1].")
        self.env, self.config = env, config
        # Q as nested python lists: this loop touches one 14-number row per step, and indexing
        # a list is several times faster than a numpy scalar at that size (see
        # tests/benchmarks/bench_paradigms.py). `q` gives the numpy view of it.
        self._q = [[[0.0] * env.n_actions for _ in range(env.n_last)] for _ in range(env.length)]
        self.rng = np.random.default_rng(config.seed)
        self.episodes = 0

    @property
    def q(self) -> np.ndarray:
        """Q-values, shape (length, n_last, n_actions) (a copy)."""
        return np.array(self._q)

    def greedy_action(self, state) -> int:
        values = self._q[state[0]][state[1]]
        return values.index(max(values))  # the first best action on ties

    def run_episode(self) -> float:
        env, q = self.env, self._q
        alpha, gamma = self.config.learning_rate, self.config.discount
        rewards, next_last = env.reward_lists, env.next_lists
        # the episode's random draws in two calls rather than two per step
        explore = (self.rng.random(env.length) < self.config.epsilon).tolist()
        random_actions = self.rng.integers(env.n_actions, size=env.length).tolist()
        last, total = env.NO_NOTE, 0.0
        for position in range(env.length):
            values = q[position][last]
            action = random_actions[position] if explore[position] else values.index(max(values))
            reward = rewards[position][last][action]
            following = next_last[last][action]
            target = reward
            if position + 1 < env.length:
                target += gamma * max(q[position + 1][following])
            values[action] += alpha * (target - values[action])
            last, total = following, total + reward
        self.episodes += 1
        return total

    def table(self) -> np.ndarray:
        """Q-values, shape (length, n_last, n_actions)."""
        return self.q


class PolicyGradientAgent:
    """REINFORCE with a tabular softmax policy pi(a | position, last) and a running baseline."""

    name = "Policy gradient (REINFORCE)"

    def __init__(self, env: MelodyEnv, config: PolicyGradientConfig):
        _check_unit_interval(config.discount, "discount")
        if not 0 < config.learning_rate <= 10:
            raise ValueError("The policy-gradient learning rate must be in (0, 10].")
        if not 0 <= config.entropy <= 1:
            raise ValueError("The entropy bonus must be between 0 and 1.")
        self.env, self.config = env, config
        self.logits = np.zeros((env.length, env.n_last, env.n_actions))
        self.baseline = np.zeros(env.length)  # running mean of the return-to-go per step
        self.rng = np.random.default_rng(config.seed)
        self.episodes = 0

    def probabilities(self, state) -> np.ndarray:
        z = self.logits[state]
        e = np.exp(z - z.max())
        return e / e.sum()

    def greedy_action(self, state) -> int:
        return int(np.argmax(self.logits[state]))

    def act(self, state) -> int:
        return int(self.rng.choice(self.env.n_actions, p=self.probabilities(state)))

    def run_episode(self) -> float:
        env, cfg = self.env, self.config
        state, done = env.reset(), False
        states, actions, rewards = [], [], []
        while not done:
            action = self.act(state)
            next_state, reward, done = env.step(state, action)
            states.append(state)
            actions.append(action)
            rewards.append(reward)
            state = next_state
        returns_to_go = np.zeros(len(rewards))
        running = 0.0
        for t in reversed(range(len(rewards))):
            running = rewards[t] + cfg.discount * running
            returns_to_go[t] = running
        for t, (s, a) in enumerate(zip(states, actions, strict=True)):
            pi = self.probabilities(s)
            advantage = returns_to_go[t] - self.baseline[t]
            # grad of log pi(a|s) w.r.t. the logits is onehot(a) - pi
            grad = -pi
            grad[a] += 1.0
            # grad of the entropy -sum pi log pi w.r.t. the logits
            log_pi = np.log(pi + 1e-12)
            entropy_grad = -pi * (log_pi - np.sum(pi * log_pi))
            self.logits[s] += cfg.learning_rate * (advantage * grad + cfg.entropy * entropy_grad)
        self.baseline += 0.1 * (returns_to_go - self.baseline)
        self.episodes += 1
        return float(sum(rewards))

    def table(self) -> np.ndarray:
        """Action probabilities, shape (length, n_last, n_actions)."""
        z = self.logits - self.logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


def _check_unit_interval(value: float, name: str) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"The {name} must be between 0 and 1.")


def greedy_melody(agent) -> list[int]:
    """The actions the agent plays when it only exploits: its melody of the moment."""
    env = agent.env
    state, actions = env.reset(), []
    for _ in range(env.length):
        action = agent.greedy_action(state)
        actions.append(action)
        state, _, _ = env.step(state, action)
    return actions


def melody_statistics(env: MelodyEnv, actions) -> dict[str, float]:
    """What a melody does, for comparing rewards: {"in_key": fraction of new notes in the
    scale, "mean_interval": mean absolute step between new notes in semitones, "holds":
    number of held steps}."""
    notes = [a for a in actions if a != env.HOLD]
    pitches = env.pitches[notes] if notes else np.array([])
    return {
        "in_key": float(np.mean(env.in_scale[notes])) if notes else 0.0,
        "mean_interval": float(np.abs(np.diff(pitches)).mean()) if len(notes) > 1 else 0.0,
        "holds": len(actions) - len(notes),
    }


def greedy_path_values(agent) -> tuple[list[str], np.ndarray]:
    """Rows of the agent's table along its greedy melody: (row labels, (length, n_actions))."""
    env, table = agent.env, agent.table()
    state, labels, rows = env.reset(), [], []
    for position in range(env.length):
        last = "start" if state[1] == env.NO_NOTE else env.action_label(state[1])
        labels.append(f"step {position + 1} (after {last})")
        rows.append(table[state])
        state, _, _ = env.step(state, int(np.argmax(table[state])))
    return labels, np.array(rows)


def train(agent, episodes: int) -> Iterator[EpisodeEvent]:
    """Train for `episodes` more episodes, yielding an EpisodeEvent after each one.

    The agent keeps its table, so calling `train` again continues where it stopped.
    """
    if not 1 <= episodes <= 100_000:
        raise ValueError("Train between 1 and 100000 episodes at a time.")
    for _ in range(episodes):
        episode_return = agent.run_episode()
        greedy = agent.env.rollout(greedy_melody(agent))
        yield EpisodeEvent(agent.episodes, episode_return, greedy)


def make_agent(
    algorithm: str,
    env: MelodyEnv,
    *,
    learning_rate: float,
    discount: float,
    exploration: float,
    seed: int = 0,
):
    """A fresh agent: algorithm "Q-learning" (exploration = epsilon) or "Policy gradient"
    (exploration = entropy bonus)."""
    if algorithm == "Q-learning":
        return QLearningAgent(env, QLearningConfig(learning_rate, discount, exploration, seed))
    if algorithm.startswith("Policy gradient"):
        return PolicyGradientAgent(
            env, PolicyGradientConfig(learning_rate, discount, exploration, seed)
        )
    raise ValueError(f"Unknown algorithm {algorithm!r}.")
