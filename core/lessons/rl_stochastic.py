"""Reinforcement learning under uncertainty: a slippery, noisy melody world, value iteration on
its known model, and Q-learning from samples of it.

The melody world of `core.lessons.rl` is deterministic: the chosen pitch is played and its reward is
fixed. Here two kinds of chance enter, each a slider on the page:

- **slippery actions**: with probability `slip` the chosen step (a pitch or a hold) is replaced
  by one drawn uniformly from all steps (possibly the chosen one again), like a finger that
  sometimes lands on a random key;
- **noisy rewards**: every reward gets Gaussian noise of standard deviation `reward_noise_std`,
  like an audience whose applause varies.

The world stays a Markov decision process (MDP) with states (position, last note), so two
ways of finding a good policy can be compared on it:

- **value iteration** (dynamic programming) *reads the model*: the transition probabilities
  P(s' | s, a) and the expected rewards R(s, a) (the noise averages out), and repeats the
  Bellman optimality backup V(s) <- max_a R(s, a) + gamma * sum_s' P(s' | s, a) V(s') until
  nothing changes. It returns the optimal values V*, Q* and a greedy policy.
- **Q-learning** never sees the model: it plays episodes, meets slips and noise as they come,
  and moves Q(s, a) towards each sampled target r + gamma * max_a' Q(s', a').

Every policy's *expected* return is computed exactly (`policy_evaluation`, a linear solve), so
Q-learning's progress can be measured against the optimum without sampling error.

Written by hand (numpy only) because the page teaches how these algorithms work; the MDP
arrays are dense, which is fine for the few hundred states of the melody world.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.lessons.rl import MelodyEnv

# dense transition arrays above this many entries (states x actions x states) are refused:
# 4 million float64 numbers are 32 MB, far more than the page's largest world (about 0.7 M)
MAX_MODEL_ENTRIES = 4_000_000


@dataclass(frozen=True)
class Uncertainty:
    slip: float = 0.2  # probability that the chosen step is replaced by a uniformly random one
    reward_noise_std: float = 0.0  # standard deviation of Gaussian noise added to each reward

    def __post_init__(self):
        if not 0.0 <= self.slip <= 1.0:
            raise ValueError("The slip probability must be between 0 and 1.")
        if not 0.0 <= self.reward_noise_std <= 100.0:
            raise ValueError("The reward noise must be a standard deviation between 0 and 100.")


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP as arrays; an episode ends with the probability missing from a row.

    `transitions[s, a, s2]` = P(s2 | s, a); each row sums to 1 - P(the episode ends), so the
    last step of an episode has an all-zero row (no terminal state to carry around).
    `rewards[s, a]` is the expected reward of taking a in s. `start` is the first state.
    """

    transitions: np.ndarray  # (states, actions, states)
    rewards: np.ndarray  # (states, actions)
    start: int = 0

    def __post_init__(self):
        p, r = np.asarray(self.transitions), np.asarray(self.rewards)
        if p.ndim != 3 or p.shape[0] != p.shape[2] or r.shape != p.shape[:2]:
            raise ValueError(
                f"Transitions must be (states, actions, states) and rewards (states, actions); "
                f"got {p.shape} and {r.shape}."
            )
        if (p < -1e-12).any() or (p.sum(axis=2) > 1 + 1e-9).any():
            raise ValueError("Transition probabilities must be >= 0 and sum to at most 1.")
        if not 0 <= self.start < p.shape[0]:
            raise ValueError("The start state is not one of the states.")

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[1]


@dataclass(frozen=True, eq=False)
class ValueIterationResult:
    values: np.ndarray  # (states,) V*(s): the best expected return from s
    q: np.ndarray  # (states, actions) Q*(s, a): expected return of a in s, then optimal play
    policy: np.ndarray  # (states,) int: a greedy action of Q* (the first on ties)
    sweeps: int  # Bellman backups over all states until the largest change was <= tolerance
    changes: tuple[float, ...]  # the largest change of V in each sweep (the last <= tolerance)


def bellman_q(mdp: TabularMDP, values: np.ndarray, discount: float) -> np.ndarray:
    """Q(s, a) = R(s, a) + discount * sum_s' P(s' | s, a) V(s'); shape (states, actions)."""
    return mdp.rewards + discount * (mdp.transitions @ values)


def value_iteration(
    mdp: TabularMDP, discount: float = 1.0, *, tolerance: float = 1e-10, max_sweeps: int = 10_000
) -> ValueIterationResult:
    """Optimal values and a greedy policy by repeated Bellman optimality backups.

    Starts from V = 0 and sweeps V(s) <- max_a Q(s, a) over all states at once until the
    largest change is at most `tolerance`. In an episode of n steps the values are exact after
    n sweeps (each sweep carries the reward one step further back), and one more sweep
    confirms that nothing changes.

    Args:
        mdp: the known model (transition probabilities and expected rewards).
        discount: gamma in [0, 1]; 1 counts the whole episode (it must end for sure).
        tolerance: stop when max |V_new - V| <= tolerance.
        max_sweeps: give up (ValueError) after this many sweeps: the values do not settle,
            which with discount 1 means some policy never ends its episodes.
    Returns:
        ValueIterationResult with values (states,), q (states, actions), policy (states,).
    """
    if not 0.0 <= discount <= 1.0:
        raise ValueError("The discount must be between 0 and 1.")
    values = np.zeros(mdp.n_states)
    changes: list[float] = []
    for sweep in range(1, max_sweeps + 1):
        q = bellman_q(mdp, values, discount)
        new_values = q.max(axis=1)
        changes.append(float(np.abs(new_values - values).max()))
        values = new_values
        if changes[-1] <= tolerance:
            q = bellman_q(mdp, values, discount)
            return ValueIterationResult(values, q, q.argmax(axis=1), sweep, tuple(changes))
    raise ValueError(
        f"Value iteration did not settle in {max_sweeps} sweeps: with discount {discount} "
        "some policy never ends its episodes. Lower the discount."
    )


def policy_evaluation(mdp: TabularMDP, policy: np.ndarray, discount: float = 1.0) -> np.ndarray:
    """The exact expected return V_pi(s) of a deterministic policy, for every state.

    Solves the Bellman expectation equations V = R_pi + discount * P_pi V, a linear system
    (I - discount * P_pi) V = R_pi, where P_pi[s, s'] = P(s' | s, policy[s]).

    Args:
        mdp: the known model.
        policy: (states,) int, the action played in each state.
        discount: gamma in [0, 1].
    Returns:
        (states,) float64 expected (discounted) returns.
    """
    policy = np.asarray(policy, dtype=np.int64)
    if policy.shape != (mdp.n_states,) or policy.min() < 0 or policy.max() >= mdp.n_actions:
        raise ValueError("A policy needs one valid action per state.")
    rows = np.arange(mdp.n_states)
    p_pi, r_pi = mdp.transitions[rows, policy], mdp.rewards[rows, policy]
    try:
        return np.linalg.solve(np.eye(mdp.n_states) - discount * p_pi, r_pi)
    except np.linalg.LinAlgError:
        raise ValueError(
            "This policy never ends its episodes, so with discount 1 its return is infinite."
        ) from None


# ---------------------------------------------------------------------------------------
# the slippery, noisy melody world
# ---------------------------------------------------------------------------------------


class SlipperyMelodyWorld:
    """`core.lessons.rl.MelodyEnv` with slippery actions and noisy rewards.

    States are flattened to `s = position * n_last + last` (`state_index`); actions are the
    melody's (pitches, then HOLD). `model()` gives the exact MDP for value iteration;
    `step(state, action, rng)` samples it, which is all Q-learning ever sees.
    """

    def __init__(self, melody: MelodyEnv, uncertainty: Uncertainty):
        self.melody, self.uncertainty = melody, uncertainty
        self.length, self.n_last, self.n_actions = melody.length, melody.n_last, melody.n_actions
        n = self.n_actions
        # executed[a, b] = P(step b is played | step a was chosen)
        self.executed = (1.0 - uncertainty.slip) * np.eye(n) + uncertainty.slip / n
        self._model: TabularMDP | None = None

    @property
    def n_states(self) -> int:
        return self.length * self.n_last

    def state_index(self, position: int, last: int) -> int:
        return position * self.n_last + last

    @property
    def start(self) -> int:
        return self.state_index(0, self.melody.NO_NOTE)

    def expected_rewards(self) -> np.ndarray:
        """E[reward | position, last, chosen action], shape (length, n_last, n_actions).

        The reward is that of the step actually played, averaged over slips; the noise has
        mean zero, so it does not change the expectation.
        """
        return self.melody.rewards @ self.executed.T

    def model(self) -> TabularMDP:
        """The exact MDP: (states, actions, states) transition probabilities and rewards."""
        if self._model is None:
            entries = self.n_states * self.n_actions * self.n_states
            if entries > MAX_MODEL_ENTRIES:
                raise ValueError(
                    f"This world has {self.n_states} states: too many for the dense model "
                    "value iteration uses here. Shorten the melody or narrow the pitch range."
                )
            transitions = np.zeros((self.n_states, self.n_actions, self.n_states))
            next_last = self.melody.next_last  # (n_last, n_actions): sounding note after a step
            for position in range(self.length - 1):  # the last step ends the episode
                for last in range(self.n_last):
                    s = self.state_index(position, last)
                    targets = self.state_index(position + 1, next_last[last])  # (n_actions,)
                    # chosen a, played b with P = executed[a, b], then the state after b
                    np.add.at(transitions[s], (slice(None), targets), self.executed)
            rewards = self.expected_rewards().reshape(self.n_states, self.n_actions)
            self._model = TabularMDP(transitions, rewards, self.start)
        return self._model

    def step(
        self, position: int, last: int, action: int, rng: np.random.Generator
    ) -> tuple[int, float, int]:
        """One sampled step: (played action, noisy reward, sounding note afterwards)."""
        played = action
        if rng.random() < self.uncertainty.slip:
            played = int(rng.integers(self.n_actions))
        reward = float(self.melody.rewards[position, last, played])
        if self.uncertainty.reward_noise_std > 0:
            reward += self.uncertainty.reward_noise_std * float(rng.standard_normal())
        return played, reward, int(self.melody.next_last[last, played])

    def policy_table(self, policy: np.ndarray) -> np.ndarray:
        """A flat policy (states,) as (length, n_last)."""
        return np.asarray(policy).reshape(self.length, self.n_last)

    def sample_melody(
        self, policy: np.ndarray, rng: np.random.Generator
    ) -> tuple[list[int], list[int], float]:
        """Play one episode with a flat policy: (chosen actions, played actions, return)."""
        last, chosen, played_actions, total = self.melody.NO_NOTE, [], [], 0.0
        for position in range(self.length):
            action = int(policy[self.state_index(position, last)])
            played, reward, last = self.step(position, last, action, rng)
            chosen.append(action)
            played_actions.append(played)
            total += reward
        return chosen, played_actions, total


def deterministic_plan_policy(world: SlipperyMelodyWorld, discount: float = 1.0) -> np.ndarray:
    """The optimal policy of the world *without* slips (flat, (states,)): the plan of a
    student who ignores the uncertainty, to be evaluated in the slippery world."""
    calm = SlipperyMelodyWorld(world.melody, Uncertainty(slip=0.0))
    return value_iteration(calm.model(), discount).policy


# ---------------------------------------------------------------------------------------
# Q-learning from samples
# ---------------------------------------------------------------------------------------


STEP_SIZES = ("1/n", "constant")


@dataclass(frozen=True)
class SampleQLearningConfig:
    step_size: str = "1/n"  # "1/n": alpha = 1 / (updates of this state-action so far), so Q
    # is the running average of its sampled targets (noise averages out); "constant": alpha
    learning_rate: float = 0.1  # alpha of the "constant" step size (unused by "1/n")
    discount: float = 1.0  # gamma
    epsilon: float = 0.3  # probability of a random choice while learning
    seed: int = 0

    def __post_init__(self):
        if self.step_size not in STEP_SIZES:
            raise ValueError(f"Unknown step size {self.step_size!r}; choose one of {STEP_SIZES}.")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError("The Q-learning rate must be in (0, 1].")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError("The discount must be between 0 and 1.")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("The exploration (epsilon) must be between 0 and 1.")


@dataclass(frozen=True)
class UncertainEpisodeEvent:
    episode: int  # 1-based count of episodes learnt so far
    episode_return: float  # the sampled return of this episode (slips, noise, exploration)
    greedy_expected_return: float | None  # exact expected return of the greedy policy now,
    # computed on the evaluation schedule only (None in between)


class SampleQLearner:
    """Tabular Q-learning in a `SlipperyMelodyWorld`: it knows only what it samples.

    Q has shape (states, actions) over the flattened states; `visits` counts the updates of
    each (state, action), so the page can grey out states the agent has never been in.
    """

    def __init__(self, world: SlipperyMelodyWorld, config: SampleQLearningConfig):
        self.world, self.config = world, config
        # nested python lists: one step touches one short row, and list indexing is several
        # times faster than numpy scalars at that size (as in core.lessons.rl.QLearningAgent)
        self._q = [[0.0] * world.n_actions for _ in range(world.n_states)]
        self._visits = [[0] * world.n_actions for _ in range(world.n_states)]
        self.rng = np.random.default_rng(config.seed)
        self.episodes = 0

    @property
    def q(self) -> np.ndarray:
        """Q-values, shape (states, actions) (a copy)."""
        return np.array(self._q)

    @property
    def visits(self) -> np.ndarray:
        """Updates of each (state, action), shape (states, actions) (a copy)."""
        return np.array(self._visits, dtype=np.int64)

    def greedy_policy(self) -> np.ndarray:
        """(states,) the action with the highest Q in each state (the first on ties)."""
        return self.q.argmax(axis=1)

    def run_episode(self) -> float:
        """One episode, epsilon-greedy on Q, updating Q after every step; its sampled return."""
        world, cfg, q, visits = self.world, self.config, self._q, self._visits
        n_last, length, n_actions = world.n_last, world.length, world.n_actions
        rewards, next_last = world.melody.reward_lists, world.melody.next_lists
        slip, noise_std = world.uncertainty.slip, world.uncertainty.reward_noise_std
        average, alpha = cfg.step_size == "1/n", cfg.learning_rate
        # the episode's random draws at once (the same draws as world.step, in bulk)
        explore = (self.rng.random(length) < cfg.epsilon).tolist()
        slips = (self.rng.random(length) < slip).tolist()
        random_actions = self.rng.integers(n_actions, size=(2, length)).tolist()
        noise = (noise_std * self.rng.standard_normal(length)).tolist()
        last, total = world.melody.NO_NOTE, 0.0
        for position in range(length):
            s = position * n_last + last
            row = q[s]
            action = random_actions[0][position] if explore[position] else row.index(max(row))
            played = random_actions[1][position] if slips[position] else action
            reward = rewards[position][last][played] + noise[position]
            last = next_last[last][played]
            target = reward
            if position + 1 < length:
                target += cfg.discount * max(q[(position + 1) * n_last + last])
            visits[s][action] += 1
            step = 1.0 / visits[s][action] if average else alpha
            # the update is for the action *chosen*: the agent does not know it slipped
            row[action] += step * (target - row[action])
            total += reward
        self.episodes += 1
        return total

    def expected_greedy_return(self) -> float:
        """Exact expected return of the greedy policy from the start (uses the model)."""
        values = policy_evaluation(self.world.model(), self.greedy_policy(), self.config.discount)
        return float(values[self.world.start])


def train_q_learning(
    learner: SampleQLearner, episodes: int, *, evaluate_every: int = 0
) -> Iterator[UncertainEpisodeEvent]:
    """Learn for `episodes` more episodes, yielding an event after each one.

    The greedy policy's exact expected return is computed every `evaluate_every` episodes
    (0: about 100 times over the call) and after the last one.
    """
    if not 1 <= episodes <= 100_000:
        raise ValueError("Train between 1 and 100000 episodes at a time.")
    every = evaluate_every if evaluate_every > 0 else max(1, episodes // 100)
    for i in range(1, episodes + 1):
        episode_return = learner.run_episode()
        evaluate = i % every == 0 or i == episodes
        expected = learner.expected_greedy_return() if evaluate else None
        yield UncertainEpisodeEvent(learner.episodes, episode_return, expected)


@dataclass(frozen=True, eq=False)
class PolicyComparison:
    optimum: float  # value iteration's V*(start): the best expected return
    deterministic_plan: float  # expected return here of the plan that ignores slips
    learner: float  # expected return of Q-learning's greedy policy
    agreeing_states: int  # visited states where Q-learning's choice is optimal (ties count)
    visited_states: int  # states Q-learning has updated at least once


def compare_policies(
    world: SlipperyMelodyWorld, optimal: ValueIterationResult, learner: SampleQLearner
) -> PolicyComparison:
    """Expected returns of the three policies from the start, and where Q-learning agrees."""
    model, discount = world.model(), learner.config.discount
    plan = policy_evaluation(model, deterministic_plan_policy(world, discount), discount)
    greedy = learner.greedy_policy()
    visited = learner.visits.sum(axis=1) > 0
    rows = np.arange(world.n_states)
    optimal_choice = optimal.q[rows, greedy] >= optimal.values - 1e-9
    return PolicyComparison(
        optimum=float(optimal.values[world.start]),
        deterministic_plan=float(plan[world.start]),
        learner=learner.expected_greedy_return(),
        agreeing_states=int((optimal_choice & visited).sum()),
        visited_states=int(visited.sum()),
    )


def reachable_states(world: SlipperyMelodyWorld) -> np.ndarray:
    """(states,) bool: every state but the impossible ones of step 1, where nothing has been
    played yet (some policy reaches all the others: a hold keeps "no note", any pitch sets it)."""
    reachable = np.ones((world.length, world.n_last), dtype=bool)
    reachable[0] = False
    reachable[0, world.melody.NO_NOTE] = True
    return reachable.reshape(-1)


def policy_grid(
    world: SlipperyMelodyWorld, values: np.ndarray, policy: np.ndarray, shown: np.ndarray
) -> tuple[np.ndarray, list[list[str]]]:
    """A policy laid out for display: rows = the last note (notes, then "no note yet"),
    columns = the step.

    Args:
        world: gives the grid's shape and the action names.
        values, policy, shown: (states,) value, action and whether to show each state.
    Returns:
        ((n_last, length) values with NaN where not shown, (n_last, length) action labels).
    """
    grid = np.where(shown, values, np.nan).reshape(world.length, world.n_last).T
    actions = np.asarray(policy).reshape(world.length, world.n_last).T
    labels = [[world.melody.action_label(int(a)) for a in row] for row in actions]
    return grid, labels
