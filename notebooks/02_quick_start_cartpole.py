# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quick start: train a spiking Q-network on CartPole
#
# This notebook goes through one complete run of the `dsqn` pipeline on a problem small enough
# for a laptop CPU:
#
# 1. train a spiking Q-network (the `cartpole-dsqn` preset: a two-layer spiking MLP, LIF
#    neurons, $T = 8$ simulation steps per decision) on CartPole-v1, with two seeds trained
#    together in one process;
# 2. look at the run directory it writes;
# 3. read `metrics.csv` and `evaluations.csv` (with the `csv` module and numpy only) and plot the
#    learning curves;
# 4. read `evaluation.json`: the best-checkpoint score **and** the final-policy score;
# 5. resume the run for more steps, as `dsqn train --resume` does after an interruption;
# 6. reload a checkpoint, check that it gives exactly the same greedy Q-values as the parameters
#    held in memory, and re-evaluate it.
#
# Every step calls the same entry point as the `dsqn` command line, `dsqn.cli.main([...])`, so
# each cell has a one-line shell equivalent, printed next to it.
#
# The full-size run (30,000 agent steps, two seeds) takes a few minutes on a CPU. Set the
# environment variable `DSQN_NOTEBOOK_SMALL=1` to run everything at tiny sizes (one seed, 2,000
# agent steps): the agent then learns next to nothing, but every cell and check still runs.

# %%
import csv
import json
import os
import shlex
import tempfile
import warnings
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import dsqn
from dsqn.cli import main as run_cli
from dsqn.envs import make_classic
from dsqn.learning.evaluation import Evaluator
from dsqn.learning.evaluation_stats import average_max_q
from dsqn.rundir.loading import stack_params
from dsqn.runtime import prng

# gymnasium warns about float64 bounds of the CartPole observation space; harmless here.
warnings.filterwarnings("ignore", message=".*precision lowered.*")

SMALL = os.environ.get("DSQN_NOTEBOOK_SMALL") == "1"

SEEDS = [0] if SMALL else [0, 1]  # trained together: seeds are a vmapped axis
TOTAL_AGENT_STEPS = 2_000 if SMALL else 30_000  # first training session
RESUMED_AGENT_STEPS = 3_000 if SMALL else 40_000  # after resuming
LOG_PERIOD = 500 if SMALL else 1_000  # one metrics.csv row per seed this often
EVAL_PERIOD = 1_000 if SMALL else 5_000  # evaluate every seed this often
CHECKPOINT_PERIOD = 1_000 if SMALL else 10_000
EVAL_EPISODES = 3 if SMALL else 10  # full games per evaluation and seed
WARMUP = 500 if SMALL else 1_000  # uniformly random actions before learning starts

# Where the run goes: a fresh directory under RUN_ROOT. Set RUN_ROOT to a folder of yours to
# keep the run after the notebook ends; None uses the system's temporary directory.
RUN_ROOT = None
RUN_DIR = Path(tempfile.mkdtemp(prefix="cartpole-dsqn-", dir=RUN_ROOT))
print("run directory:", RUN_DIR)


# %% [markdown]
# ## 1. Train
#
# The preset `cartpole-dsqn` fixes the network, the learner (Adam, Huber loss, a target network,
# epsilon-greedy exploration decaying from 1.0 to 0.05 over 10,000 agent steps) and the
# evaluation protocol (greedy games, epsilon 0). Any config field can be overridden with
# `--section.field VALUE`; here the length of the run, the logging, evaluation and checkpoint
# periods and the number of evaluation games. `dsqn presets cartpole-dsqn` prints every field.
#
# Training runs in jitted chunks of `LOG_PERIOD` agent steps (acting, environment steps, replay
# and updates all inside one XLA program); between chunks the runner writes logs, evaluates and
# saves checkpoints. The first chunk includes the compilation.


# %%
def run_dsqn(*args: str) -> None:
    """Runs `dsqn ARGS...` in this process; prints the shell equivalent; fails on errors."""
    print("$ dsqn", shlex.join(args))
    exit_code = run_cli(list(args))
    assert exit_code == 0, f"dsqn {args[0]} exited with code {exit_code}"


run_dsqn(
    "train",
    "cartpole-dsqn",
    "--run-dir",
    str(RUN_DIR),
    "--seeds",
    *map(str, SEEDS),
    "--run.total_agent_steps",
    str(TOTAL_AGENT_STEPS),
    "--run.log_period_agent_steps",
    str(LOG_PERIOD),
    "--run.checkpoint_period_agent_steps",
    str(CHECKPOINT_PERIOD),
    "--eval.period_agent_steps",
    str(EVAL_PERIOD),
    "--eval.episodes",
    str(EVAL_EPISODES),
    "--learner.warmup_agent_steps",
    str(WARMUP),
    "--no-progress",
)

# %% [markdown]
# ## 2. The run directory
#
# One run is one directory, and everything reported about the run is computed from its files
# (see `docs/run_directory.md`):
#
# - `config.json`: the fully resolved config, plus `meta` (versions, backend, date, command
#   line, and the environment's observation shape and number of actions); `dsqn train --resume`
#   and `dsqn.load_agent` rebuild the run from it;
# - `metrics.csv`: one row per seed and log period: training episode return and length, loss,
#   mean Q, epsilon, updates, agent steps per second, and the firing rate of each spiking layer;
# - `evaluations.csv`: one row per seed and evaluation: mean, std, min and max score over
#   `EVAL_EPISODES` full games, mean length, average max-Q;
# - `evaluation.json`: the final results, best-checkpoint and final-policy scores per seed;
# - `evaluations/`: written later by `dsqn evaluate`, one file per re-evaluated checkpoint;
# - `tensorboard/`: the same scalars as event files (`tensorboard --logdir RUN_DIR`);
# - `checkpoints/`: orbax checkpoints, one folder per agent step (the latest two are kept):
#   parameters, target parameters, optimiser state, random keys, replay buffer, and each seed's
#   best-evaluated parameters.


# %%
def show_tree(root: Path, max_depth: int = 2) -> None:
    """Prints the files under root (to max_depth levels) with their sizes."""
    for path in sorted(root.rglob("*")):
        depth = len(path.relative_to(root).parts)
        if depth > max_depth:
            continue
        if path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            print(f"{'  ' * (depth - 1)}{path.name}/  ({size / 1e6:.2f} MB)")
        else:
            print(f"{'  ' * (depth - 1)}{path.name}  ({path.stat().st_size / 1e3:.1f} kB)")


show_tree(RUN_DIR)
for name in ["config.json", "metrics.csv", "evaluations.csv", "evaluation.json"]:
    assert (RUN_DIR / name).is_file(), name
checkpoint_steps = sorted(int(p.name) for p in (RUN_DIR / "checkpoints").iterdir())
assert checkpoint_steps[-1] == TOTAL_AGENT_STEPS, checkpoint_steps

config_json = json.loads((RUN_DIR / "config.json").read_text())
print("\nnetwork:", config_json["network"])
print("seeds:", config_json["run"]["seeds"], "| env:", config_json["env"]["game"])
print("command:", " ".join(config_json["meta"]["command"]))
assert config_json["run"]["seeds"] == SEEDS

# %% [markdown]
# ## 3. Learning curves
#
# Both CSV files have a header row and one row per seed and time point; empty cells mean "no
# value" (for instance no training episode finished during that log period, or no update happened
# yet during warm-up). The helper below reads a file into one dict of float arrays per seed, with
# NaN for empty cells.


# %%
def read_csv_by_seed(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """{seed: {column: float array over the rows of that seed}}; empty cells become NaN."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    by_seed: dict[int, dict[str, np.ndarray]] = {}
    for seed in sorted({int(row["seed"]) for row in rows}):
        seed_rows = [row for row in rows if int(row["seed"]) == seed]
        by_seed[seed] = {
            column: np.array([float(row[column]) if row[column] else np.nan for row in seed_rows])
            for column in seed_rows[0]
        }
    return by_seed


metrics = read_csv_by_seed(RUN_DIR / "metrics.csv")
evaluations = read_csv_by_seed(RUN_DIR / "evaluations.csv")
print("metrics.csv columns:", list(metrics[SEEDS[0]]))
print("evaluations.csv columns:", list(evaluations[SEEDS[0]]))

expected_log_steps = np.arange(LOG_PERIOD, TOTAL_AGENT_STEPS + 1, LOG_PERIOD)
expected_eval_steps = np.arange(EVAL_PERIOD, TOTAL_AGENT_STEPS + 1, EVAL_PERIOD)
assert sorted(metrics) == sorted(evaluations) == SEEDS
for seed in SEEDS:
    np.testing.assert_array_equal(metrics[seed]["agent_steps"], expected_log_steps)
    np.testing.assert_array_equal(evaluations[seed]["agent_steps"], expected_eval_steps)

# %% [markdown]
# Left: the mean return of the training episodes that ended in each log period. These episodes
# are played with exploration (epsilon-greedy, epsilon decaying over the first 10,000 agent
# steps), so they understate the greedy policy. Middle: the evaluation score, the mean over
# `EVAL_EPISODES` greedy games (band: one standard deviation over those games). CartPole-v1 gives
# +1 per step the pole stays up and caps an episode at 500. Right: the firing rate of the two
# hidden spiking layers while acting (spikes per neuron per simulation step).

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4))
for seed in SEEDS:
    m, e = metrics[seed], evaluations[seed]
    axes[0].plot(m["agent_steps"], m["episode_return"], "o-", ms=3, label=f"seed {seed}")
    line = axes[1].plot(e["agent_steps"], e["return_mean"], "o-", label=f"seed {seed}")[0]
    axes[1].fill_between(
        e["agent_steps"],
        e["return_mean"] - e["return_std"],
        e["return_mean"] + e["return_std"],
        color=line.get_color(),
        alpha=0.2,
    )
    for layer, style in [("fc1", "-"), ("fc2", "--")]:
        axes[2].plot(
            m["agent_steps"], m[f"firing_rate_{layer}"], style, color=line.get_color(), label=None
        )
axes[0].set(
    title="Training episodes (with exploration)",
    xlabel="agent steps",
    ylabel="mean episode return",
)
axes[1].set(
    title=f"Evaluation: {EVAL_EPISODES} greedy games per point",
    xlabel="agent steps",
    ylabel="mean score (+- std over games)",
)
axes[2].plot([], [], "k-", label="fc1")
axes[2].plot([], [], "k--", label="fc2")
axes[2].set(
    title="Firing rate while acting", xlabel="agent steps", ylabel="spikes / neuron / time step"
)
for ax in axes:
    ax.legend(fontsize=8)
fig.suptitle(f"cartpole-dsqn on CartPole-v1, {len(SEEDS)} seed(s), {TOTAL_AGENT_STEPS} agent steps")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Best checkpoint and final policy
#
# During training every evaluation that beats a seed's best mean so far stores that seed's
# parameters as its *best* parameters (kept in every checkpoint). At the end of the run both the
# final parameters and the best parameters play fresh evaluation games, and `evaluation.json`
# reports both:
#
# - `best`: the score of the checkpoint with the highest evaluation mean (`selection_mean`),
#   re-measured on new games (`mean`). This is the paper's protocol. It is optimistic, because the
#   checkpoint was *selected* on evaluation scores.
# - `final`: the score of the policy at the end of training, with no selection.

# %%
evaluation = json.loads((RUN_DIR / "evaluation.json").read_text())
print(f"{'seed':>4} | {'best: step':>10} {'selection':>9} {'fresh mean':>10} | {'final: mean':>11}")
for seed in SEEDS:
    entry = evaluation["per_seed"][str(seed)]
    best, final = entry["best"], entry["final"]
    print(
        f"{seed:>4} | {best['agent_steps']:>10} {best['selection_mean']:>9.1f} "
        f"{best['mean']:>10.1f} | {final['mean']:>11.1f}"
    )
    # The best checkpoint is the evaluation with the highest mean in evaluations.csv (the first
    # one, if several tie), and its selection score is that mean.
    e = evaluations[seed]
    best_row = int(np.argmax(e["return_mean"]))
    assert best["agent_steps"] == e["agent_steps"][best_row], (best, e["agent_steps"])
    assert np.isclose(best["selection_mean"], e["return_mean"][best_row], rtol=1e-5)
    assert final["agent_steps"] == TOTAL_AGENT_STEPS
    assert len(final["scores"]) == len(best["scores"]) == EVAL_EPISODES
summary = evaluation["summary"]
print(
    f"mean over seeds: best checkpoint {summary['best']['mean']:.1f}, "
    f"final policy {summary['final']['mean']:.1f}"
)

# %% [markdown]
# ## 5. Resume the run
#
# A run stopped by Ctrl-C, a cluster time limit or even a `kill -9` continues from its latest
# checkpoint with `dsqn train --resume RUN_DIR`. The checkpoint holds everything that shapes the
# future of training: parameters, target parameters, optimiser state, counters, random keys and
# the replay buffer. Only the emulators' state cannot be saved: every environment starts a new
# episode on resume.
#
# Here the run finished normally, and resuming it with a larger `run.total_agent_steps` trains
# it further. Before resuming, the agents of the last checkpoint are loaded into memory; they are
# compared with the reloaded checkpoint in section 6.
#
# `dsqn.load_agent(run_dir, checkpoint, seed=...)` returns one seed's trained agent: its
# `config`, `network` (a flax module) and `params`, with `q(obs)` and `act(obs)`. `checkpoint`
# is `"best"`, `"final"` or an agent step that has a checkpoint. It reads only the run
# directory: no environment is built. `dsqn.load_agents` loads every seed at once.

# %%
agents_in_memory = dsqn.load_agents(RUN_DIR, "final")
assert [a.agent_steps for a in agents_in_memory] == [TOTAL_AGENT_STEPS] * len(SEEDS)
print("parameter shapes:", jax.tree.map(lambda x: x.shape, agents_in_memory[0].params))

rows_before = (RUN_DIR / "metrics.csv").read_text().splitlines()
run_dsqn(
    "train",
    "--resume",
    str(RUN_DIR),
    "--run.total_agent_steps",
    str(RESUMED_AGENT_STEPS),
    "--no-progress",
)
rows_after = (RUN_DIR / "metrics.csv").read_text().splitlines()

# The earlier log rows are kept as they were, and the new rows continue them.
assert rows_after[: len(rows_before)] == rows_before
metrics = read_csv_by_seed(RUN_DIR / "metrics.csv")
evaluations = read_csv_by_seed(RUN_DIR / "evaluations.csv")
for seed in SEEDS:
    np.testing.assert_array_equal(
        metrics[seed]["agent_steps"], np.arange(LOG_PERIOD, RESUMED_AGENT_STEPS + 1, LOG_PERIOD)
    )
evaluation = json.loads((RUN_DIR / "evaluation.json").read_text())
assert evaluation["agent_steps"] == RESUMED_AGENT_STEPS
print(f"{len(rows_after) - len(rows_before)} new rows in metrics.csv")
print("checkpoints now:", sorted(int(p.name) for p in (RUN_DIR / "checkpoints").iterdir()))

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for seed in SEEDS:
    e = evaluations[seed]
    ax.plot(e["agent_steps"], e["return_mean"], "o-", label=f"seed {seed}")
ax.axvline(TOTAL_AGENT_STEPS, color="gray", ls=":", label="resumed here")
ax.set(
    title="Evaluation score before and after resuming",
    xlabel="agent steps",
    ylabel=f"mean score over {EVAL_EPISODES} greedy games",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Reload a checkpoint and re-evaluate it
#
# The checkpoint of agent step `TOTAL_AGENT_STEPS` is still on disk (the run keeps its latest
# two). Reloading it gives back exactly the parameters held in memory since before the resume:
# the greedy Q-values of a batch of CartPole states are bitwise identical, hence so are the
# greedy actions. The parameters of the resumed run's last checkpoint differ, since it trained
# further.
#
# `agent.q(observations)` gives the Q-values `[B, 2]` of a batch of observations as the
# environment yields them.

# %%
agents_reloaded = dsqn.load_agents(RUN_DIR, TOTAL_AGENT_STEPS)
agents_resumed = dsqn.load_agents(RUN_DIR, "final")
assert [a.agent_steps for a in agents_resumed] == [RESUMED_AGENT_STEPS] * len(SEEDS)

# A batch of CartPole states: reset 64 environments and take 10 random actions in each.
env = make_classic("CartPole-v1", 64, seed=12345)
observations, _ = env.reset()
rng = np.random.default_rng(0)
for _ in range(10):
    observations, *_ = env.step(rng.integers(0, 2, size=64))


for i, seed in enumerate(SEEDS):
    q_memory = np.asarray(agents_in_memory[i].q(observations))
    q_disk = np.asarray(agents_reloaded[i].q(observations))
    q_later = np.asarray(agents_resumed[i].q(observations))
    np.testing.assert_array_equal(q_disk, q_memory)
    np.testing.assert_array_equal(q_disk.argmax(axis=1), q_memory.argmax(axis=1))
    assert not np.array_equal(q_later, q_memory), "the resumed run should have changed the params"
    agree = np.mean(q_later.argmax(axis=1) == q_memory.argmax(axis=1))
    print(
        f"seed {seed}: reloaded == in memory (max |dQ| = {np.abs(q_disk - q_memory).max()}); "
        f"after resuming, {agree:.0%} of the greedy actions are unchanged"
    )

# %% [markdown]
# Re-evaluating a checkpoint: `Evaluator(config, network, seeds)` owns its own pool of
# evaluation environments (environment seeds disjoint from training's) and plays one full game
# per environment, for all seeds at once, inside one jitted loop. Called with the parameters
# stacked over seeds (`stack_params`) and one random key per seed, it returns
# scores, lengths and the average max-Q per game.
#
# The command line does the same: `dsqn evaluate RUN_DIR --checkpoint STEP` reloads the
# checkpoint, evaluates it with a fresh evaluator and the keys of its named random stream
# (`dsqn.runtime.prng.Stream.EVALUATE`; `dsqn.runtime.prng` lists every stream of a run), and writes
# `RUN_DIR/evaluations/STEP.json`. A fresh evaluator given the same keys plays the same games,
# so the in-memory parameters evaluated here score exactly as the checkpoint evaluated by the
# command line. (The keys only matter when the evaluation epsilon is above 0; this preset
# evaluates greedily.)

# %%
first = agents_in_memory[0]
evaluator = Evaluator(first.config, first.network, SEEDS)
keys = prng.stream_keys(SEEDS, prng.Stream.EVALUATE)
result = evaluator(stack_params([a.params for a in agents_in_memory]), keys)

run_dsqn("evaluate", str(RUN_DIR), "--checkpoint", str(TOTAL_AGENT_STEPS))
reevaluated = json.loads((RUN_DIR / "evaluations" / f"{TOTAL_AGENT_STEPS}.json").read_text())
for i, seed in enumerate(SEEDS):
    scores = reevaluated["per_seed"][str(seed)]["scores"]
    np.testing.assert_array_equal(result.returns[i], scores)
    print(
        f"seed {seed}: {len(scores)} games, mean {np.mean(scores):.1f}, "
        f"average max Q {average_max_q(result.max_q[i]):.2f}"
    )

fig, ax = plt.subplots(figsize=(7, 3.5))
for i, seed in enumerate(SEEDS):
    ax.plot(np.sort(result.returns[i])[::-1], "o-", label=f"seed {seed}")
ax.set(
    title=f"Checkpoint {TOTAL_AGENT_STEPS}: score of each re-evaluation game",
    xlabel="game (sorted by score)",
    ylabel="score (steps balanced)",
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Where next
#
# - `dsqn train cartpole-dqn` trains the same MLP with ReLU instead of spiking neurons, for a
#   comparison; `dsqn report RUN_DIRS... --out report/` turns several runs into tables and plots.
# - `dsqn train dsqn --game Pong` trains the paper's DSQN on Atari (this needs a GPU and days).
# - Notebook 3 opens a trained Atari DSQN and looks at its spikes, Q-values and energy.
#
# The run directory of this notebook was created under the system's temporary directory unless
# `RUN_ROOT` was set:

# %%
print(RUN_DIR)
