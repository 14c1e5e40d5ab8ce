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
# # Inside an Atari DSQN: frames, spikes, Q-values and energy
#
# This notebook opens a Deep Spiking Q-Network checkpoint, lets its greedy policy play an Atari
# game, and looks at what happens inside the network at every decision:
#
# 1. load the parameters of a run's checkpoint;
# 2. play with the greedy policy through envpool's Python API, recording observations,
#    Q-values and each layer's spike counts;
# 3. look at one decision in detail: the 4-frame observation beside the spike maps of the
#    convolutional layers, spike rasters over the $T$ simulation steps, and membrane traces;
# 4. follow the whole game: Q-values, spike rasters over agent steps, firing rates per layer;
# 5. estimate the energy of each decision on neuromorphic hardware against the same network
#    with ReLUs.
#
# **Which agent.** Set the environment variable `DSQN_RUN_DIR` to the directory of an Atari
# DSQN run (made by `dsqn train dsqn --game Pong ...`) to look inside that agent;
# `DSQN_CHECKPOINT` selects its checkpoint (`best`, the default, `latest` or an agent step).
# Without `DSQN_RUN_DIR` the notebook first trains a tiny DSQN on Pong itself, for a few hundred
# agent steps on a CPU (a few dozen agent steps with `DSQN_NOTEBOOK_SMALL=1`). Be clear about
# what that gives: the paper trains for 50 million agent steps, and a network trained for a few
# hundred is still essentially its random initialisation. It does not play Pong, and, as
# section 3 shows, it hardly spikes at all. All the code and every check below work the same on
# a trained agent, where the pictures become interesting.

# %%
import os
import shlex
import tempfile
import warnings
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import dsqn
from dsqn import spiking
from dsqn.analyses import energy
from dsqn.cli import main as run_cli
from dsqn.envs import make_atari
from dsqn.training.loop import run_length

warnings.filterwarnings("ignore", message=".*precision lowered.*")

SMALL = os.environ.get("DSQN_NOTEBOOK_SMALL") == "1"
RUN_DIR = os.environ.get("DSQN_RUN_DIR")  # an Atari DSQN run directory, or None
CHECKPOINT = os.environ.get("DSQN_CHECKPOINT", "best")

MAX_PLAY_STEPS = 40 if SMALL else 3_000  # the game is cut after this many agent steps
RASTER_NEURONS = 48  # neurons shown per layer in the rasters
PLAY_SEED = 7  # seed of the environment the agent plays in

# %% [markdown]
# ## 1. The agent
#
# Without `DSQN_RUN_DIR`, a tiny run is trained here with the command-line entry point
# (`dsqn.cli.main` takes the arguments of the `dsqn` command). Its settings are shrunk to fit a
# CPU: $T$ = 8 simulation steps instead of 64, a replay of 1,000 transitions and one short
# evaluation game (in small mode $T$ = 4, 64 transitions and minibatches of 8). Everything else is
# the paper's DSQN.

# %%
if RUN_DIR is None:
    RUN_DIR = tempfile.mkdtemp(prefix="pong-dsqn-tiny-")
    steps = 24 if SMALL else 600
    tiny_run = {
        "--run.total_agent_steps": steps,
        "--run.log_period_agent_steps": steps // 2,
        "--run.checkpoint_period_agent_steps": steps,
        "--eval.period_agent_steps": steps,
        "--eval.episodes": 1,
        "--eval.max_episode_agent_steps": 20 if SMALL else 300,
        "--learner.warmup_agent_steps": steps // 2,
        "--learner.replay_capacity_transitions": 64 if SMALL else 1_000,
        "--learner.batch_size": 8 if SMALL else 32,
        "--network.time_steps": 4 if SMALL else 8,
    }
    args = ["train", "dsqn", "--game", "Pong", "--seeds", "0", "--run-dir", RUN_DIR]
    args += [str(token) for item in tiny_run.items() for token in item] + ["--no-progress"]
    print("$ dsqn", shlex.join(args))
    assert run_cli(args) == 0, "training failed"
    TRAINED_HERE = True
else:
    TRAINED_HERE = False
RUN_DIR = Path(RUN_DIR)

# %% [markdown]
# `dsqn.load_agent(run_dir, checkpoint)` restores a checkpoint of the run's first seed (another
# with `seed=...`) and returns the agent: the run's `config`, the flax `network`, its `params`,
# and the agent step those parameters come from. It reads only the run directory.

# %%
agent = dsqn.load_agent(RUN_DIR, CHECKPOINT)
config = agent.config
assert config.env.suite == "atari" and config.network.kind == "dsqn", (
    f"{RUN_DIR} is a {config.network.kind} run on {config.env.game}; this notebook needs an "
    "Atari DSQN run"
)
params, network = agent.params, agent.network
T = config.network.time_steps
GAME = config.env.game
print(f"run {RUN_DIR}, checkpoint {CHECKPOINT!r}: seed {agent.seed}, ")
print(f"parameters from agent step {agent.agent_steps} of {run_length(config)}")
print(f"{GAME}, T = {T}, neuron {config.network.neuron}, tau {config.network.tau}, ", end="")
print(f"V_th {config.network.v_threshold}, readout {config.network.readout}")
print("layers:", {name: layer["kernel"].shape for name, layer in params.items()})

# %% [markdown]
# ## 2. Playing a game with the greedy policy
#
# The environment is envpool's Atari pool through its Python (gymnasium) API, with the run's
# evaluation settings: full games (no end of episode at a life loss), raw scores, frame skip 4,
# 84x84 grayscale frames, and a stack of the last 4 frames as observation, `uint8 [1, 4, 84, 84]`.
# At every agent step the network computes the Q-values and the agent takes the action with the
# highest one (epsilon = 0).
#
# The DSQN sows, for every spiking layer, the number of spikes of each neuron summed over the
# $T$ simulation steps into flax's `intermediates` collection (`spikes_conv1: [1, 20, 20, 32]`,
# ...); `network.apply(..., mutable=["intermediates"])` returns them next to the Q-values. One
# decision is one forward pass, so these are the spikes *per action*.


# %%
@jax.jit
def act(params, obs):
    """Q-values [1, A] and each layer's spike counts over T, {layer: [1, ...]}."""
    q, state = network.apply({"params": params}, obs, mutable=["intermediates"])
    counts = {k.removeprefix("spikes_"): v[0] for k, v in state["intermediates"].items()}
    return q, counts


env = make_atari(GAME, 1, seed=PLAY_SEED, protocol=config.env.protocol, train=False)
obs, _ = env.reset()
frames, q_trace, rewards, spike_trace = [], [], [], []
for _ in range(MAX_PLAY_STEPS):
    q, counts = act(params, jnp.asarray(obs))
    action = int(jnp.argmax(q[0]))
    frames.append(obs[0])
    q_trace.append(np.asarray(q[0]))
    # Counts are integers 0..T per neuron; uint8 storage keeps a long game in memory.
    spike_trace.append({k: np.asarray(v[0]).astype(np.uint8) for k, v in counts.items()})
    obs, reward, terminated, truncated, _ = env.step(np.array([action]))
    rewards.append(float(reward[0]))
    if terminated[0] or truncated[0]:
        break
env.close()

frames = np.stack(frames)  # [N, 4, 84, 84] uint8
q_trace = np.stack(q_trace)  # [N, A]
rewards = np.array(rewards)  # [N]
LAYERS = list(spike_trace[0])  # in network order: conv1, conv2, conv3, fc1
layer_counts = {k: np.stack([s[k] for s in spike_trace]) for k in LAYERS}  # {k: [N, ...]}
num_steps, num_actions = q_trace.shape
game_over = bool(terminated[0] or truncated[0])
print(f"played {num_steps} agent steps ({'a full game' if game_over else 'cut short'}), ", end="")
print(f"score {rewards.sum():+.0f}; spiking layers: {LAYERS}")

# The observation is a sliding window of frames: each step drops the oldest frame and appends
# a new one (frame stack, oldest first).
np.testing.assert_array_equal(frames[1:, :3], frames[:-1, 1:])
assert all(layer_counts[k].max() <= T for k in LAYERS)

# %% [markdown]
# ## 3. One decision in detail
#
# The sown counts are sums over the $T$ simulation steps. To see individual spikes in time, the
# simplest honest method is to ask flax for the outputs the network computes anyway:
# `capture_intermediates` records the return value of chosen module methods. The DSQN's neuron
# layers are its methods `_fire_constant` (conv1, whose input current is the same at every step:
# direct encoding, conv1 computed once) and `_fire` (the other layers), which return the spikes
# `[T, 1, ...]`; the convolutions and dense layers (`__call__` of `nn.Conv`/`nn.Dense`) return
# the input currents. Nothing is recomputed outside the network. Two checks tie the captured
# values to the rest:
#
# - summing each captured spike train over time gives exactly the sown counts;
# - feeding the captured currents to `dsqn.spiking.lif` (the LIF equations of notebook 1) with the
#   run's neuron settings gives exactly the captured spikes, together with the membrane
#   potentials $V[t]$, which the network does not keep.
#
# The decision shown is the one with the most spikes in the game (the middle one if the network
# was silent throughout).


# %%
def capture_filter(module: nn.Module, method_name: str) -> bool:
    neuron_layer = method_name in ("_fire", "_fire_constant")
    weight_layer = isinstance(module, nn.Conv | nn.Dense) and method_name == "__call__"
    return neuron_layer or weight_layer


@jax.jit
def look_inside(params, obs):
    """Q [1, A], sown counts {layer: [1, ...]}, spikes {layer: [T, 1, ...]}, currents."""
    q, state = network.apply(
        {"params": params}, obs, capture_intermediates=capture_filter, mutable=["intermediates"]
    )
    inter = state["intermediates"]
    counts = {k.removeprefix("spikes_"): v[0] for k, v in inter.items() if k.startswith("spikes_")}
    spike_trains = [s for name in ("_fire_constant", "_fire") for s in inter.get(name, ())]
    currents = {name: inter[name]["__call__"][0] for name in params}
    fc1_rates = spiking.spike_rate(spike_trains[-1]) if spike_trains else None
    return q, counts, spike_trains, currents, fc1_rates


total_spikes = np.array([sum(int(s[k].sum()) for k in LAYERS) for s in spike_trace])
step = int(np.argmax(total_spikes)) if total_spikes.any() else num_steps // 2
q, counts, spike_trains, currents, fc1_rates = jax.device_get(
    look_inside(params, jnp.asarray(frames[step][None]))
)

# Match each captured spike train [T, 1, ...] to its layer by shape, and check it against the
# sown counts.
spikes = {}
for train in spike_trains:
    (layer,) = [k for k in LAYERS if counts[k].shape == train.shape[1:]]
    np.testing.assert_array_equal(train.sum(axis=0), counts[layer])
    spikes[layer] = train[:, 0]  # [T, ...]
assert list(spikes) == LAYERS
np.testing.assert_array_equal(q[0], q_trace[step])
print(f"decision at agent step {step}: {total_spikes[step]} spikes in all layers, ", end="")
print(f"action {int(np.argmax(q[0]))}")


# %%
def neuron_layer(current_seq: np.ndarray):
    """The run's spiking neurons over time: currents [T, ...] -> (spikes, membrane) [T, ...]."""
    net = config.network
    common = dict(v_threshold=net.v_threshold, v_reset=net.v_reset, return_membrane=True)
    if net.neuron == "if":
        return spiking.integrate_and_fire(jnp.asarray(current_seq), **common)
    return spiking.lif(jnp.asarray(current_seq), tau=net.tau, decay_input=net.decay_input, **common)


membranes, input_currents = {}, {}
for layer in LAYERS:
    current = currents[layer]
    if layer == LAYERS[0]:  # computed once: the same current at every simulation step
        current_seq = np.asarray(spiking.direct(jnp.asarray(current[0]), T))
    else:  # computed on all T steps at once: [T * 1, ...] -> [T, ...]
        current_seq = current.reshape(T, *current.shape[1:])
    recomputed, membrane = neuron_layer(current_seq)
    np.testing.assert_array_equal(np.asarray(recomputed), spikes[layer])
    membranes[layer], input_currents[layer] = np.asarray(membrane), current_seq
print("the LIF equations reproduce every captured spike of every layer")

# With the rate readout, Q is a linear function of fc1's firing rates (1/T) sum_t S_fc1[t].
if config.network.readout == "rate":
    w, b = params["fc2"]["kernel"], params["fc2"]["bias"]
    np.testing.assert_allclose(fc1_rates @ w + b[None], q, rtol=1e-5, atol=1e-5)

# %% [markdown]
# The observation of this decision (its 4 stacked frames, oldest first) beside the spike maps of
# the three convolutional layers. A convolutional layer's spikes form feature maps; each map
# below is the number of spikes at each position, summed over the layer's channels and the $T$
# steps. conv1 sees the frames through 8x8 windows with stride 4, so its 20x20 map is aligned
# with the frames (one pixel per 4x4 pixels of the frame).

# %%
conv_layers = [k for k in LAYERS if k.startswith("conv")]
fig, axes = plt.subplots(2, 4, figsize=(14, 7))
for i in range(4):
    axes[0, i].imshow(frames[step][i], cmap="gray", vmin=0, vmax=255)
    axes[0, i].set(title=f"frame t-{3 - i}" if i < 3 else "frame t (newest)")
    axes[0, i].axis("off")
for ax, layer in zip(axes[1], conv_layers, strict=False):
    spike_map = spikes[layer].sum(axis=(0, 3))  # [H, W]
    image = ax.imshow(spike_map, cmap="magma")
    channels = spikes[layer].shape[-1]
    ax.set(title=f"{layer}: spikes summed over {channels} ch. and T", xlabel="x", ylabel="y")
    fig.colorbar(image, ax=ax, fraction=0.046)
axes[1, -1].bar(
    range(num_actions),
    q[0],
    color=["tab:red" if a == q[0].argmax() else "gray" for a in range(num_actions)],
)
axes[1, -1].set(title="Q-values (red: greedy action)", xlabel="action", ylabel="Q")
fig.suptitle(f"{GAME}, agent step {step}: observation, convolutional spike maps and Q-values")
fig.tight_layout()
plt.show()

# %% [markdown]
# Spike rasters of this decision: for each layer, the `RASTER_NEURONS` neurons that spiked most
# (in a silent layer, simply the first ones), over the $T$ simulation steps. Below them, the
# input current and the membrane potential of the most active neuron of conv1 and of fc1:
# conv1's current is constant over the steps (direct encoding), the deeper layers' currents
# change as spikes arrive from the layer below.


# %%
def most_active(counts_flat: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n neurons with the highest counts (ties: lowest index first)."""
    return np.argsort(-counts_flat, kind="stable")[:n]


fig, axes = plt.subplots(2, len(LAYERS), figsize=(4 * len(LAYERS), 7))
for col, layer in enumerate(LAYERS):
    trains = spikes[layer].reshape(T, -1)  # [T, neurons]
    shown = most_active(trains.sum(axis=0), RASTER_NEURONS)
    t_idx, n_idx = np.nonzero(trains[:, shown])
    axes[0, col].scatter(t_idx, n_idx, marker="|", s=60, color="black")
    axes[0, col].set(
        title=f"{layer}: {int(trains.sum())} spikes, {trains.shape[1]} neurons",
        xlabel="simulation step t",
        ylabel=f"neuron (top {len(shown)} by spikes)",
        xlim=(-0.5, T - 0.5),
        ylim=(-1, len(shown)),
    )
for col, layer in enumerate([LAYERS[0], LAYERS[-1]]):
    flat_v = membranes[layer].reshape(T, -1)
    flat_x = input_currents[layer].reshape(T, -1)
    flat_s = spikes[layer].reshape(T, -1)
    # the most active neuron, or in a silent layer the one whose membrane got highest
    neuron = int(np.argmax(flat_s.sum(0) * 1e6 + flat_v.max(0)))
    ax = axes[1, col]
    ax.plot(range(T), flat_x[:, neuron], "o-", color="tab:gray", label="input current X[t]")
    ax.plot(
        range(T), flat_v[:, neuron], "o-", color="tab:blue", label="membrane V[t] (after reset)"
    )
    ax.axhline(config.network.v_threshold, ls="--", color="tab:red", label="$V_{th}$")
    v_th = config.network.v_threshold
    ax.vlines(np.nonzero(flat_s[:, neuron])[0], 1.1 * v_th, 1.3 * v_th, color="k", label="spikes")
    ax.set(
        title=f"{layer}, neuron {neuron}",
        xlabel="simulation step t",
        ylabel="potential / current",
    )
    if T <= 16:
        ax.set_xticks(range(T))
    ax.legend(fontsize=7)
# The conv1 currents of all neurons against the threshold: a LIF neuron with decay_input fires
# under a constant current X only if X >= V_th.
ax = axes[1, 2]
ax.hist(currents[LAYERS[0]].ravel(), bins=100, color="tab:purple", log=True)
ax.axvline(config.network.v_threshold, ls="--", color="tab:red", label="$V_{th}$")
ax.set(title="conv1 input currents (all neurons)", xlabel="current", ylabel="neurons (log)")
ax.legend(fontsize=7)
axes[1, 3].axis("off")
fig.suptitle(f"Agent step {step}: spike rasters over the T={T} simulation steps (top) and traces")
fig.tight_layout()
plt.show()

above = float(np.mean(currents[LAYERS[0]] >= config.network.v_threshold))
print(f"{above:.4%} of conv1's neurons receive a current at or above V_th in this decision")
if TRAINED_HERE:
    print(
        f"This network was trained here for {run_length(config)} agent steps only: its "
        f"conv1 currents are those of its initialisation, at most {currents[LAYERS[0]].max():.2f}"
        f" against V_th = {config.network.v_threshold}, so it spikes little or not at all."
    )

# %% [markdown]
# ## 4. The whole game
#
# Q-values at every agent step, with the points scored and conceded marked. With a trained agent,
# look for Q-values that change ahead of the points; the tiny network trained here has nearly
# constant Q-values.

# %%
fig, axes = plt.subplots(2, 1, figsize=(13, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
for a in range(num_actions):
    axes[0].plot(q_trace[:, a], lw=1, label=f"action {a}")
for t in np.nonzero(rewards)[0]:
    axes[0].axvline(t, color="tab:green" if rewards[t] > 0 else "tab:red", alpha=0.3, lw=1)
axes[0].set(title=f"{GAME}: Q-values during the game (green: point won, red: point lost)")
axes[0].set(ylabel="Q(s, a)")
axes[0].legend(fontsize=7, ncol=num_actions)
axes[1].plot(q_trace.argmax(axis=1), ".", ms=2, color="black")
axes[1].set(title="greedy action", xlabel="agent step", ylabel="action")
fig.tight_layout()
plt.show()

# %% [markdown]
# Spike rasters over the game: for each layer, the spike count per decision (0 to $T$) of the
# `RASTER_NEURONS` neurons most active over the game, one column per agent step. Below, each
# layer's firing rate per decision, in spikes per neuron per simulation step:
# $r_l = S_l / (T N_l)$ with $S_l$ the layer's spikes in that decision and $N_l$ its number of
# neurons.

# %%
neurons = {k: int(np.prod(layer_counts[k].shape[1:])) for k in LAYERS}
rates = {k: layer_counts[k].reshape(num_steps, -1).sum(axis=1) / (T * neurons[k]) for k in LAYERS}

fig, axes = plt.subplots(len(LAYERS) + 1, 1, figsize=(13, 2.2 * (len(LAYERS) + 1)), sharex=True)
for ax, layer in zip(axes, LAYERS, strict=False):
    per_neuron = layer_counts[layer].reshape(num_steps, -1).astype(np.float32)  # [N, neurons]
    shown = most_active(per_neuron.sum(axis=0), RASTER_NEURONS)
    image = ax.imshow(
        per_neuron[:, shown].T, aspect="auto", cmap="Greys", vmin=0, vmax=T, interpolation="none"
    )
    ax.set(title=f"{layer}: spikes per decision, top {len(shown)} neurons", ylabel="neuron")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="spikes")
for layer in LAYERS:
    axes[-1].plot(rates[layer], lw=1, label=layer)
axes[-1].set(title="firing rate per decision", xlabel="agent step", ylabel="spikes/neuron/step")
axes[-1].legend(fontsize=7, ncol=len(LAYERS))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Energy per action
#
# `dsqn.analyses.energy` estimates the energy of one decision the way the paper does (45 nm CMOS
# figures of Horowitz 2014):
#
# - on neuromorphic hardware a spike costs one accumulate (0.9 pJ) at every synapse it reaches.
#   The synaptic operations of layer $l$ are $SOP_l = \sum_p S_l[p]\,\text{fanout}_{l+1}[p]$, the
#   spikes of each neuron $p$ times the number of synapses it feeds in the next layer;
# - the first layer receives the analog frames, so it needs real multiply-accumulates (MACs,
#   4.6 pJ each), once per decision;
# - the ANN of the same architecture, with ReLUs, needs the MACs of every layer.
#
# $$E_{SNN} = \text{MACs}_{conv1} \cdot 4.6\,\text{pJ} + \sum_l SOP_l \cdot 0.9\,\text{pJ},
# \qquad E_{ANN} = \sum_{\text{layers}} \text{MACs} \cdot 4.6\,\text{pJ}.$$
#
# `energy.layer_geometry` reads every layer's shapes, MACs and fan-out map from the flax network;
# `energy.spike_statistics` and `energy.energy_estimate` turn spike counts into these numbers.
# The cell below uses them on the spikes of the whole game, and computes the per-decision energy
# directly from the formula, as a check.

# %%
geometry = energy.layer_geometry(network, jnp.asarray(frames[:1]))
feeds = {layer.fed_by: layer for layer in geometry if layer.fed_by is not None}
for layer in geometry:
    print(
        f"{layer.name:>5}: {layer.kind:5} in {layer.input_shape} -> out {layer.output_shape}, "
        f"{layer.macs:>10,} MACs, fed by {layer.fed_by}"
    )
    # Every MAC of a layer is one (input position, synapse) pair: the fan-out map sums to it.
    assert np.isclose(layer.fanout.sum(), layer.macs)

# Synaptic operations and energy of each decision, from the formula.
sop_per_step = sum(
    layer_counts[k].reshape(num_steps, -1).astype(np.float64) @ feeds[k].fanout.reshape(-1)
    for k in LAYERS
    if k in feeds
)
first_layer_macs = geometry[0].macs
ann_macs = sum(layer.macs for layer in geometry)
snn_nj_per_step = (first_layer_macs * energy.PJ_PER_MAC + sop_per_step * energy.PJ_PER_AC) / 1e3
ann_nj = ann_macs * energy.PJ_PER_MAC / 1e3

# The same over the whole game with dsqn.analyses.energy.
game_sums = {k: layer_counts[k].sum(axis=0, dtype=np.float64) for k in LAYERS}
stats = energy.spike_statistics(geometry, game_sums, float(num_steps), T)
estimate = energy.energy_estimate(stats)
np.testing.assert_allclose(stats["synaptic_ops_per_action"], sop_per_step.mean(), rtol=1e-9)
np.testing.assert_allclose(estimate["energy_per_action_nj"]["snn"], snn_nj_per_step.mean())
np.testing.assert_allclose(estimate["energy_per_action_nj"]["ann"], ann_nj)
for k in LAYERS:
    np.testing.assert_allclose(stats["layers"][k]["firing_rate"], rates[k].mean(), rtol=1e-9)

print(f"\nper action, mean over {num_steps} decisions:")
print(f"{'layer':>6} {'neurons':>8} {'firing rate':>12} {'spikes':>10} {'SOP':>12}")
for k, s in stats["layers"].items():
    print(
        f"{k:>6} {s['neurons']:>8} {s['firing_rate']:>12.5f} {s['spikes_per_action']:>10.1f} "
        f"{s['synaptic_ops_per_action']:>12.1f}"
    )
nj = estimate["energy_per_action_nj"]
print(
    f"SNN: {nj['snn']:.1f} nJ (conv1 MACs {first_layer_macs * energy.PJ_PER_MAC / 1e3:.1f} nJ ",
    end="",
)
print(f"+ spikes {stats['synaptic_ops_per_action'] * energy.PJ_PER_AC / 1e3:.1f} nJ)")
print(f"ANN: {nj['ann']:.1f} nJ; ANN / SNN = {estimate['ann_over_snn']:.2f}")
conv1_share = first_layer_macs / ann_macs
print(f"conv1 holds {conv1_share:.1%} of the MACs: the SNN costs at least that share of the ANN")
assert 0.3 < conv1_share < 0.4, conv1_share
assert nj["snn"] >= conv1_share * nj["ann"] * (1 - 1e-9)

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [2, 1]})
axes[0].plot(snn_nj_per_step, lw=1, color="tab:blue", label="SNN (this agent)")
axes[0].axhline(ann_nj, color="tab:orange", ls="--", label="ANN, same architecture")
axes[0].axhline(
    first_layer_macs * energy.PJ_PER_MAC / 1e3, color="gray", ls=":", label="SNN floor: conv1 MACs"
)
axes[0].set(
    title="Estimated energy per decision during the game",
    xlabel="agent step",
    ylabel="energy per action (nJ)",
    yscale="log",
)
axes[0].legend(fontsize=8)
layer_rates = [stats["layers"][k]["firing_rate"] for k in LAYERS]
axes[1].bar(LAYERS, layer_rates, color="tab:green")
axes[1].set(
    title=f"Mean firing rate per layer (T={T})",
    xlabel="layer",
    ylabel="spikes / neuron / simulation step",
)
fig.tight_layout()
plt.show()

# %% [markdown]
# The SNN estimate can never fall below the cost of conv1's MACs, which is why the first layer's
# analog input matters: in the Nature-DQN topology conv1 holds about a third of all MACs, so even
# a silent spiking network costs a third of the ANN's energy. The spikes of the deeper layers add
# to that floor in proportion to their number and fan-out. For a trained agent
# `dsqn energy RUN_DIR` measures the same statistics over full evaluation games and writes them
# to `energy.json` and `energy.md`.
#
# What to look for with a trained agent (`DSQN_RUN_DIR`): whether the conv1 spike maps follow the
# ball and the paddles, whether the Q-values anticipate points, and how far the firing rates lift
# the energy per decision above the conv1 floor.

# %% [markdown]
# ## 6. The agent outside JAX: a NIR graph
#
# `agent.to_nir()` writes the Q-network as a graph of NIR (the Neuromorphic Intermediate
# Representation), which other SNN simulators and neuromorphic toolchains read: `Conv2d`,
# `Flatten` and `Affine` nodes for the layers and a `LIF` node per neuron layer, with the
# discrete neuron mapped exactly onto NIR's continuous-time one at dt = 1 (the equations are in
# the docstring of `dsqn.models.nir`). The graph's input is the observation, presented at each of
# the $T$ steps; Q is the mean of its output over the $T$ steps, the one step left to the reader.
# `dsqn export RUN_DIR --out agent.nir` writes the same file from the command line.
#
# `dsqn.models.nir.from_nir` reads a graph back and runs it on the toolkit's engine. Here it plays
# the recorded game again from the file: its Q-values and every layer's spike counts are the
# network's. The README (section "Leaving JAX") shows the same graph simulated by snnTorch.

# %%
try:
    import nir

    from dsqn.models import nir as dsqn_nir
except ImportError:  # the nir package comes with pip install -e ".[nir]"
    nir = None
    print('NIR export needs the nir package: pip install -e ".[nir]"')

if nir is not None:
    nir_path = Path(tempfile.mkdtemp(prefix="nir-")) / "agent.nir"
    nir.write(nir_path, agent.to_nir())
    imported = dsqn_nir.from_nir(nir_path)  # reads the file
    print(f"{nir_path}:", " -> ".join(imported.order))
    replay = jax.jit(lambda p, x: imported.apply(p, x, time_steps=T, spikes=True))
    same_counts, total = 0, 0
    for start in range(0, num_steps, 16):
        outputs, trains = replay(imported.params, jnp.asarray(frames[start : start + 16]))
        q_nir = dsqn_nir.decode(outputs, imported.metadata["dsqn_readout"])
        np.testing.assert_allclose(q_nir, q_trace[start : start + 16], rtol=1e-5, atol=1e-5)
        for layer in LAYERS:
            neuron = "if" if config.network.neuron == "if" else "lif"
            counts = np.asarray(trains[f"{layer}_{neuron}"].sum(0))
            if counts.ndim == 4:  # NIR is channels-first, the network channels-last
                counts = counts.transpose(0, 2, 3, 1)
            same_counts += int((counts == layer_counts[layer][start : start + 16]).sum())
            total += counts.size
    print(f"Q-values of {num_steps} decisions equal; spike counts equal for "
          f"{same_counts / total:.4%} of the neurons")  # fmt: skip
    assert same_counts / total > 0.999
