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
# # Reuse `dsqn.spiking` in your own JAX model
#
# The spiking layers of the DSQN are plain functions: arrays in, arrays out, no module system and
# no hidden state. This notebook builds a small spiking classifier from them with nothing but
# JAX and optax:
#
# 1. a check that `dsqn.spiking` depends on JAX alone;
# 2. a two-moons data set generated with numpy;
# 3. a two-layer spiking MLP: direct encoding over $T$ steps, a LIF hidden layer whose time
#    constant is learned (the parametric LIF of Fang et al. 2021), and a spike-rate readout
#    followed by a dense layer (the DSQN output head);
# 4. training with optax Adam through the arctan surrogate gradient, as one jitted `lax.scan`;
# 5. loss and accuracy curves, the decision boundary, and the hidden firing rates;
# 6. several seeds trained at once with `jax.vmap`;
# 7. a sweep over the time constant $\tau$, trained as one program with `jax.vmap`;
# 8. swapping the readout for a non-spiking "max membrane" output neuron.
#
# Set the environment variable `DSQN_NOTEBOOK_SMALL=1` to run everything at tiny sizes.

# %%
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from dsqn import spiking

SMALL = os.environ.get("DSQN_NOTEBOOK_SMALL") == "1"

NUM_TRAIN = 512 if SMALL else 1024  # training points
NUM_TEST = 512 if SMALL else 1024  # held-out points
NOISE = 0.15  # standard deviation of the Gaussian noise added to the moons
TIME_STEPS = 8 if SMALL else 16  # simulation steps per input
HIDDEN = 32 if SMALL else 64  # LIF neurons in the hidden layer
BATCH_SIZE = 128  # points per gradient step
TRAIN_STEPS = 200 if SMALL else 800  # gradient steps
EVAL_EVERY = 25  # gradient steps between two test-set evaluations
LEARNING_RATE = 1e-2  # Adam step size
NUM_SEEDS = 2 if SMALL else 4  # seeds trained in parallel with vmap
# A clearly-better-than-chance bar (chance is 50%); the small run trains less, so its bar is lower.
MIN_TEST_ACCURACY = 0.85 if SMALL else 0.95

# The neuron of the DSQN paper: LIF, tau = 2, V_th = 1, hard reset to 0, arctan surrogate. Here
# tau = 2 is only where training starts: the model learns it.
INITIAL_TAU = 2.0
NEURON = dict(v_threshold=1.0, v_reset=0.0, surrogate=spiking.atan(alpha=2.0))
SWEEP_TAUS = [1.25, 2.0, 4.0] if SMALL else [1.25, 1.5, 2.0, 3.0, 4.0, 8.0]

# %% [markdown]
# ## 1. `dsqn.spiking` needs only JAX
#
# Importing the toolkit in a fresh interpreter loads JAX (and numpy, which JAX itself uses), but
# no neural-network library: no flax, no optax, no haiku, no torch. It can be dropped into any
# JAX code base.

# %%
probe = "import sys, dsqn.spiking; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
loaded = set(
    subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
)
frameworks = {"flax", "optax", "haiku", "equinox", "torch", "tensorflow", "chex"}
print("loaded by `import dsqn.spiking`:", sorted(loaded & (frameworks | {"jax", "numpy"})))
assert "jax" in loaded and not loaded & frameworks, loaded & frameworks

# %% [markdown]
# ## 2. Data: two interleaved half-moons
#
# Two classes that no straight line separates, so the hidden spiking layer has to do real work.
# Inputs are standardised with the statistics of the training set.


# %%
def two_moons(rng: np.random.Generator, num_points: int, noise: float):
    """Points x: [N, 2] float32 on two interleaved half-circles, labels y: [N] int32 in {0, 1}."""
    num_upper = num_points // 2
    angle = rng.uniform(0.0, np.pi, num_points)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    labels = (np.arange(num_points) >= num_upper).astype(np.int32)
    points = np.where(labels[:, None] == 0, upper, lower)
    points = points + noise * rng.standard_normal((num_points, 2))
    order = rng.permutation(num_points)
    return points[order].astype(np.float32), labels[order]


data_rng = np.random.default_rng(0)
x_train, y_train = two_moons(data_rng, NUM_TRAIN, NOISE)
x_test, y_test = two_moons(data_rng, NUM_TEST, NOISE)
mean, std = x_train.mean(axis=0), x_train.std(axis=0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

fig, ax = plt.subplots(figsize=(5, 4))
for label, color in [(0, "tab:blue"), (1, "tab:orange")]:
    ax.scatter(*x_train[y_train == label].T, s=8, color=color, label=f"class {label}")
ax.set(title=f"Two moons: {NUM_TRAIN} training points", xlabel="$x_1$ (standardised)")
ax.set(ylabel="$x_2$ (standardised)")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. A two-layer spiking MLP
#
# The parameters are a dict of arrays, and the forward pass is a function of the parameters and
# the input:
#
# - **direct encoding:** the analog input is presented unchanged at every one of the $T$ steps.
#   Because the first layer is linear, it is applied once and its output current is fed to the
#   neurons at every step: `spiking.lif(current, time_steps=T)` (the DSQN does the same with its
#   first convolution), `[B, HIDDEN] -> [T, B, HIDDEN]` spikes;
# - **a learnable time constant:** neuron parameters are values, so `tau` can come from the
#   parameters. As in the parametric LIF (PLIF) neuron of Fang et al. 2021 the model learns
#   `w_tau`, with $1/\tau = \text{sigmoid}(w)$ (`spiking.plif_tau`), which keeps $\tau > 1$;
# - **readout:** `spiking.spike_rate` averages the spikes over time and a dense layer maps the
#   rates to class logits, $\text{logits} = W_2 \frac{1}{T}\sum_t S[t] + b_2$, the DSQN output head.
#
# Biases are broadcast explicitly (`b[None]`), so the model also runs under
# `jax_numpy_rank_promotion="raise"`.

# %%
Params = dict[str, jax.Array]


def init_params(key: jax.Array, tau: float | jax.Array = INITIAL_TAU) -> Params:
    """Gaussian weights (the input weights are large enough that many neurons cross V_th = 1)
    and the PLIF parameter ``w_tau`` that gives the time constant ``tau``."""
    key_1, key_2 = jax.random.split(key)
    return {
        "w1": 2.0 * jax.random.normal(key_1, (2, HIDDEN)),
        "b1": jnp.zeros((HIDDEN,)),
        "w2": jax.random.normal(key_2, (HIDDEN, 2)) / jnp.sqrt(HIDDEN),
        "b2": jnp.zeros((2,)),
        "w_tau": spiking.plif_weight(tau),
    }


def hidden_spikes(params: Params, x: jax.Array) -> jax.Array:
    """x: [B, 2] -> spikes of the hidden LIF layer, [T, B, HIDDEN]."""
    current = x @ params["w1"] + params["b1"][None]  # [B, HIDDEN], computed once
    tau = spiking.plif_tau(params["w_tau"])
    return spiking.lif(current, time_steps=TIME_STEPS, tau=tau, **NEURON)


def logits_from_spikes(params: Params, spikes: jax.Array, readout: str) -> jax.Array:
    """[T, B, HIDDEN] spikes -> [B, 2] logits, by spike rate or by a max-membrane output neuron."""
    if readout == "rate":
        return spiking.spike_rate(spikes) @ params["w2"] + params["b2"][None]
    if readout == "max-mem":
        output_current = spikes @ params["w2"] + params["b2"][None, None]  # [T, B, 2]
        return spiking.membrane(
            output_current, decoder="max", tau=spiking.plif_tau(params["w_tau"])
        )
    raise ValueError(f"unknown readout {readout!r}; valid: 'rate', 'max-mem'")


def predict(params: Params, x: jax.Array, readout: str = "rate") -> jax.Array:
    """x: [B, 2] -> class logits [B, 2]."""
    return logits_from_spikes(params, hidden_spikes(params, x), readout)


params = init_params(jax.random.key(0))
spikes = hidden_spikes(params, jnp.asarray(x_train[:4]))
print(
    {name: value.shape for name, value in params.items()}, "tau:", spiking.plif_tau(params["w_tau"])
)
print("hidden spikes:", spikes.shape, spikes.dtype, "| logits:", predict(params, x_train[:4]).shape)

# %% [markdown]
# ## 4. Training: optax Adam through the surrogate gradient
#
# In the forward pass the hidden layer emits exact 0/1 spikes; in the backward pass `jax.grad`
# uses the arctan surrogate derivative of each spike, and reaches `w_tau` through the neuron's
# dynamics as it reaches the weights. Nothing else is special: the loss is the softmax
# cross-entropy of the logits, and optax updates the parameter dict. With `learn_tau=False` the
# time constant is held where it started (used by the sweep of section 7).
#
# Following the `make_train(...) -> train(key)` pattern, the whole run, including
# minibatch sampling and periodic test evaluation, is one pure function of a random key made of
# two nested `lax.scan`s. It can be jitted as one program, and later vmapped over keys.


# %%
def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def make_train(readout: str = "rate", learn_tau: bool = True):
    """Returns train(key, tau) -> (params, metrics), a full training run as a pure function of
    the key and the initial (or, without ``learn_tau``, fixed) time constant."""
    optimizer = optax.adam(LEARNING_RATE)
    x_tr, y_tr = jnp.asarray(x_train), jnp.asarray(y_train)
    x_te, y_te = jnp.asarray(x_test), jnp.asarray(y_test)

    def loss_fn(params, x, y):
        if not learn_tau:
            params = {**params, "w_tau": jax.lax.stop_gradient(params["w_tau"])}
        logits = predict(params, x, readout)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, accuracy(logits, y)

    def gradient_step(carry, key):
        params, opt_state = carry
        batch = jax.random.randint(key, (BATCH_SIZE,), 0, NUM_TRAIN)
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, x_tr[batch], y_tr[batch]
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, acc)

    def train_then_evaluate(carry, key):
        carry, (loss, acc) = jax.lax.scan(gradient_step, carry, jax.random.split(key, EVAL_EVERY))
        test_accuracy = accuracy(predict(carry[0], x_te, readout), y_te)
        return carry, (loss, acc, test_accuracy)

    def train(key: jax.Array, tau: float | jax.Array = INITIAL_TAU):
        init_key, steps_key = jax.random.split(key)
        params = init_params(init_key, tau)
        carry = (params, optimizer.init(params))
        chunk_keys = jax.random.split(steps_key, TRAIN_STEPS // EVAL_EVERY)
        (params, _), (loss, acc, test_accuracy) = jax.lax.scan(
            train_then_evaluate, carry, chunk_keys
        )
        metrics = {
            "train_loss": loss.reshape(-1),  # [TRAIN_STEPS], one per minibatch
            "train_accuracy": acc.reshape(-1),  # [TRAIN_STEPS]
            "test_accuracy": test_accuracy,  # [TRAIN_STEPS // EVAL_EVERY]
        }
        return params, metrics

    return train


train = jax.jit(make_train("rate"))
start = time.perf_counter()
params, metrics = jax.block_until_ready(train(jax.random.key(0)))
print(f"compiled and trained {TRAIN_STEPS} steps in {time.perf_counter() - start:.1f} s")
final_test_accuracy = float(metrics["test_accuracy"][-1])
print(f"test accuracy: {final_test_accuracy:.3f}")
assert final_test_accuracy > MIN_TEST_ACCURACY, final_test_accuracy
learned_tau = float(spiking.plif_tau(params["w_tau"]))
print(f"time constant: {INITIAL_TAU} at initialisation, {learned_tau:.3f} after training")
assert abs(learned_tau - INITIAL_TAU) > 1e-3, "the gradient reaches tau"

# %% [markdown]
# ## 5. What the network learned
#
# Training curves: the minibatch loss and accuracy at every step (faint) with a running mean, and
# the accuracy on the held-out set every `EVAL_EVERY` steps.


# %%
def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


train_steps = np.arange(1, TRAIN_STEPS + 1)
eval_steps = EVAL_EVERY * np.arange(1, TRAIN_STEPS // EVAL_EVERY + 1)
window = EVAL_EVERY
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(train_steps, metrics["train_loss"], alpha=0.3, color="tab:blue")
axes[0].plot(train_steps[window - 1 :], running_mean(np.asarray(metrics["train_loss"]), window))
axes[0].set(title="Training loss", xlabel="gradient step", ylabel="cross-entropy (minibatch)")
axes[1].plot(
    train_steps, metrics["train_accuracy"], alpha=0.3, color="tab:blue", label="train (minibatch)"
)
axes[1].plot(eval_steps, metrics["test_accuracy"], "o-", color="tab:orange", label="test")
axes[1].axhline(0.5, color="gray", ls=":", label="chance")
axes[1].set(title="Accuracy", xlabel="gradient step", ylabel="accuracy", ylim=(0.4, 1.0))
axes[1].legend(loc="lower right")
fig.suptitle(f"Spiking MLP on two moons (T={TIME_STEPS}, {HIDDEN} LIF neurons, rate readout)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The decision boundary, and the firing rate of a few hidden neurons over the input plane. Each
# neuron's current is a linear function of the input and its rate a thresholded staircase of that
# current (the f-I curve of notebook 1), so its rate map is a set of parallel bands: silent, a
# few intermediate levels, saturated. Training makes the input weights large, so the staircase is
# narrow and each neuron acts almost as a half-plane detector; the shown neurons are those with
# the widest band of intermediate rates. The output layer combines these half-planes into the
# curved boundary.

# %%
grid_size = 60 if SMALL else 150
lo, hi = x_train.min(axis=0) - 0.5, x_train.max(axis=0) + 0.5
g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], grid_size), np.linspace(lo[1], hi[1], grid_size))
grid = jnp.asarray(np.stack([g1.ravel(), g2.ravel()], axis=1), jnp.float32)
grid_spikes = jax.jit(hidden_spikes)(params, grid)
grid_rates = np.asarray(spiking.spike_rate(grid_spikes)).reshape(grid_size, grid_size, HIDDEN)
grid_prob = np.asarray(jax.nn.softmax(logits_from_spikes(params, grid_spikes, "rate"))[:, 1])

fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
contour = axes[0].contourf(g1, g2, grid_prob.reshape(g1.shape), levels=20, cmap="RdBu_r")
axes[0].contour(g1, g2, grid_prob.reshape(g1.shape), levels=[0.5], colors="black")
for label, color in [(0, "tab:blue"), (1, "tab:orange")]:
    axes[0].scatter(*x_test[y_test == label].T, s=5, color=color, edgecolor="white", lw=0.2)
axes[0].set(
    title=f"Decision boundary (test acc. {final_test_accuracy:.3f})", xlabel="$x_1$", ylabel="$x_2$"
)
fig.colorbar(contour, ax=axes[0], label="P(class 1)")
graded = ((grid_rates > 0) & (grid_rates < 1)).mean(axis=(0, 1))  # [HIDDEN]
shown = np.argsort(graded)[::-1][:3]
for ax, neuron in zip(axes[1:], shown, strict=True):
    image = ax.contourf(g1, g2, grid_rates[..., neuron], levels=TIME_STEPS + 1, cmap="viridis")
    ax.set(title=f"hidden neuron {neuron}: firing rate", xlabel="$x_1$", ylabel="$x_2$")
    fig.colorbar(image, ax=ax, label="spikes/step")
fig.tight_layout()
plt.show()

# %% [markdown]
# Firing rates over the test set: how active the hidden layer is, neuron by neuron and per input,
# and the total number of hidden spikes one classification costs (the quantity that a
# neuromorphic energy estimate multiplies by the fan-out).

# %%
test_spikes = np.asarray(jax.jit(hidden_spikes)(params, jnp.asarray(x_test)))  # [T, N, HIDDEN]
rate_per_neuron = test_spikes.mean(axis=(0, 1))  # [HIDDEN]
spikes_per_input = test_spikes.sum(axis=(0, 2))  # [N]
silent = int(np.sum(rate_per_neuron == 0))

fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
axes[0].bar(np.arange(HIDDEN), np.sort(rate_per_neuron)[::-1], color="tab:green")
axes[0].set(
    title=f"Mean firing rate per hidden neuron ({silent} silent)",
    xlabel="hidden neuron (sorted)",
    ylabel="spikes/step",
)
axes[1].hist(spikes_per_input, bins=30, color="tab:purple")
axes[1].set(
    title=f"Hidden spikes per input (mean {spikes_per_input.mean():.0f})",
    xlabel=f"spikes over T={TIME_STEPS} steps and {HIDDEN} neurons",
    ylabel="test inputs",
)
example = 0
t_idx, n_idx = np.nonzero(test_spikes[:, example, :])
axes[2].scatter(t_idx, n_idx, marker="|", s=80, color="black")
axes[2].set(
    title=f"Hidden raster for test input {example} (class {y_test[example]})",
    xlabel="time step $t$",
    ylabel="hidden neuron",
    xlim=(-0.5, TIME_STEPS - 0.5),
    ylim=(-1, HIDDEN),
)
fig.tight_layout()
plt.show()
print(f"mean hidden firing rate: {test_spikes.mean():.3f} spikes per neuron per step")

# %% [markdown]
# ## 6. Many seeds at once with `vmap`
#
# `train` is a pure function of its key, so `jax.vmap` turns it into a function that trains one
# independent network per key, and `jax.jit` compiles the batch of runs as one program. The
# different keys give different initial weights and minibatch orders; the check below guards
# against the classic mistake of every seed silently running the same thing.

# %%
seed_keys = jax.random.split(jax.random.key(1), NUM_SEEDS)
train_many = jax.jit(jax.vmap(make_train("rate")))
start = time.perf_counter()
seed_params, seed_metrics = jax.block_until_ready(train_many(seed_keys))
print(f"compiled and trained {NUM_SEEDS} seeds in {time.perf_counter() - start:.1f} s")

seed_accuracy = np.asarray(seed_metrics["test_accuracy"][:, -1])
print("test accuracy per seed:", np.round(seed_accuracy, 3))
print(f"mean {seed_accuracy.mean():.3f} +- {seed_accuracy.std():.3f} (std over seeds)")
assert (seed_accuracy > MIN_TEST_ACCURACY).all(), seed_accuracy
assert not np.allclose(seed_params["w1"][0], seed_params["w1"][1]), "seeds must differ"

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for seed in range(NUM_SEEDS):
    loss = np.asarray(seed_metrics["train_loss"][seed])
    axes[0].plot(train_steps[window - 1 :], running_mean(loss, window), label=f"seed {seed}")
    axes[1].plot(eval_steps, seed_metrics["test_accuracy"][seed], "o-", ms=3)
axes[0].set(
    title="Training loss per seed (running mean)", xlabel="gradient step", ylabel="cross-entropy"
)
axes[0].legend(fontsize=8)
axes[1].set(
    title="Test accuracy per seed", xlabel="gradient step", ylabel="accuracy", ylim=(0.4, 1.0)
)
fig.suptitle(f"{NUM_SEEDS} seeds trained in one jit(vmap(train)) call")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. A sweep over the time constant, in one program
#
# `tau` is an argument of `train`, and the toolkit's neurons accept a traced `tau`, so
# `jax.vmap(train, in_axes=(None, 0))` trains one network per time constant (same key, so the
# same initial weights and minibatches) as a single XLA program: no Python loop, no recompilation
# per value. Here `tau` is held fixed during training (`learn_tau=False`), so each member measures
# how well a LIF layer with that leak can learn the task. A member of the sweep equals the same
# value trained alone.

# %%
sweep_taus = jnp.asarray(SWEEP_TAUS)
sweep = jax.jit(jax.vmap(make_train("rate", learn_tau=False), in_axes=(None, 0)))
start = time.perf_counter()
sweep_params, sweep_metrics = jax.block_until_ready(sweep(jax.random.key(0), sweep_taus))
print(
    f"compiled and trained {len(SWEEP_TAUS)} time constants in {time.perf_counter() - start:.1f} s"
)
np.testing.assert_allclose(spiking.plif_tau(sweep_params["w_tau"]), sweep_taus, rtol=1e-5)
sweep_accuracy = np.asarray(sweep_metrics["test_accuracy"][:, -1])
sweep_rates = np.asarray(
    jax.vmap(lambda p: hidden_spikes(p, jnp.asarray(x_test)).mean())(sweep_params)
)
solo_params, solo_metrics = jax.jit(make_train("rate", learn_tau=False))(
    jax.random.key(0), sweep_taus[1]
)
solo_accuracy = float(solo_metrics["test_accuracy"][-1])
print(f"tau={SWEEP_TAUS[1]}: {sweep_accuracy[1]:.3f} in the sweep, {solo_accuracy:.3f} alone")
assert abs(sweep_accuracy[1] - solo_accuracy) < 0.02, (sweep_accuracy[1], solo_accuracy)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
axes[0].plot(SWEEP_TAUS, sweep_accuracy, "o-")
axes[0].set(title="Final test accuracy by (fixed) tau", xlabel="tau", ylabel="accuracy")
axes[1].plot(SWEEP_TAUS, sweep_rates, "s-", color="tab:orange")
axes[1].set(title="Hidden firing rate by tau", xlabel="tau", ylabel="spikes per neuron per step")
for ax in axes:
    ax.set_xscale("log")
fig.suptitle(f"{len(SWEEP_TAUS)} time constants trained in one jit(vmap(train)) call")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 8. Swapping the readout
#
# The readout is one function call, so other decoders are a one-line change. Here the hidden
# spikes drive a non-spiking leaky output neuron per class, decoded by its maximum membrane
# potential over time, `spiking.membrane(current, decoder="max")` (the "max-mem" readout of
# Chen et al. 2022), instead of the spike rate followed by a dense layer.

# %%
start = time.perf_counter()
params_mem, metrics_mem = jax.block_until_ready(jax.jit(make_train("max-mem"))(jax.random.key(0)))
accuracy_mem = float(metrics_mem["test_accuracy"][-1])
print(f"max-mem readout: test accuracy {accuracy_mem:.3f} ({time.perf_counter() - start:.1f} s)")
assert accuracy_mem > MIN_TEST_ACCURACY, accuracy_mem

fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(eval_steps, metrics["test_accuracy"], "o-", ms=3, label="spike rate + dense")
ax.plot(eval_steps, metrics_mem["test_accuracy"], "s-", ms=3, label="max membrane")
ax.axhline(0.5, color="gray", ls=":", label="chance")
ax.set(
    title="Test accuracy by readout (same seed)",
    xlabel="gradient step",
    ylabel="accuracy",
    ylim=(0.4, 1.0),
)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - `dsqn.spiking` is a set of pure functions over time-first arrays (`[T, ...]`); it imports
#   nothing but JAX, and works with any optimiser or parameter container.
# - A spiking layer is `spiking.lif(current, time_steps=T)` (direct encoding) or
#   `spiking.lif(currents)` for `[T, ...]` currents; its gradient is the surrogate's, chosen by
#   the `surrogate=` argument.
# - Neuron parameters (`tau`, `v_threshold`, `v_reset`, the surrogate's `alpha`) are values: they
#   can be learned (`tau` through `spiking.plif_tau`), vmapped over, or jitted as arguments.
# - Readouts (`spike_rate`, `membrane`) turn a `[T, ...]` activity into a `[...]` output.
# - Because nothing is hidden in objects, whole training runs compose with `jit` and `vmap`.
