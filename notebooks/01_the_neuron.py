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
# # The neuron: LIF and IF dynamics, resets and surrogate gradients
#
# A Deep Spiking Q-Network replaces every ReLU of a DQN with a layer of spiking neurons. This
# notebook looks at one such neuron on its own, using the pure-JAX functions of `dsqn.spiking`:
#
# 1. the equations (leaky integrate-and-fire, LIF, and integrate-and-fire, IF);
# 2. membrane traces and spike rasters for constant and noisy input currents;
# 3. hard reset versus soft reset ("reset by subtraction");
# 4. the effect of the time constant $\tau$ and the threshold $V_{th}$ (a sweep over $\tau$ as one
#    vmapped call, and a gradient with respect to $\tau$);
# 5. firing rate versus input current (f-I curves), against closed forms;
# 6. surrogate gradients: what `jax.grad` of a spike returns;
# 7. what `detach_reset` changes in the gradient.
#
# Set the environment variable `DSQN_NOTEBOOK_SMALL=1` to run everything at tiny sizes.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from dsqn import spiking

SMALL = os.environ.get("DSQN_NOTEBOOK_SMALL") == "1"

TIME_STEPS = 40 if SMALL else 100  # length of the traces, in simulation steps
NUM_NEURONS = 12 if SMALL else 40  # neurons in the noisy-input rasters
FI_TIME_STEPS = 64 if SMALL else 500  # steps over which an f-I firing rate is measured
FI_NUM_CURRENTS = 41 if SMALL else 251  # input currents on the f-I curves

# The paper's neuron: LIF with tau = 2, V_th = 1, hard reset to V_reset = 0, arctan surrogate
# with alpha = 2 (these are also the defaults of `spiking.lif`).
TAU, V_TH, V_RESET = 2.0, 1.0, 0.0
steps = np.arange(TIME_STEPS)

# %% [markdown]
# ## 1. Equations
#
# A layer of neurons receives an input current $X[t]$ at every time step $t = 0, \dots, T-1$ and
# keeps a membrane potential $V$. Each step has three phases (spikingjelly's convention, which
# the DSQN paper's code follows; `decay_input=True` is the default):
#
# $$
# \begin{aligned}
# \text{charge (LIF):}\quad & H[t] = V[t-1] + \frac{1}{\tau}\big(X[t] - (V[t-1] - V_{reset})\big)\\
# \text{charge (IF):}\quad & H[t] = V[t-1] + X[t]\\
# \text{fire:}\quad & S[t] = \Theta\big(H[t] - V_{th}\big), \qquad \Theta(x) = 1 \text{ if } x \ge 0
#   \text{ else } 0\\
# \text{hard reset:}\quad & V[t] = H[t]\,(1 - S[t]) + V_{reset}\,S[t]\\
# \text{soft reset:}\quad & V[t] = H[t] - V_{th}\,S[t]
# \end{aligned}
# $$
#
# with $V[-1] = V_{reset}$ (0 for soft reset). The DSQN paper uses LIF with $\tau = 2$,
# $V_{th} = 1$, $V_{reset} = 0$ and hard reset. With `decay_input=False` the charge is
# $H[t] = V[t-1] - (V[t-1] - V_{reset})/\tau + X[t]$ instead.
#
# `spiking.lif(x_seq, ...)` and `spiking.integrate_and_fire(x_seq, ...)` run these equations
# over a time-first input `x_seq: [T, ...]` and return the spikes `S: [T, ...]`; with
# `return_membrane=True` they also return $V[t]$, the membrane *after* the reset. `v_reset=None`
# selects the soft reset.
#
# The charge $H[t]$ is not returned, but it follows from $V[t-1]$ and $X[t]$. The helper below
# recomputes it, and the next section checks that the returned spikes are exactly
# $\Theta(H - V_{th})$.


# %%
def lif_charge(v_seq: np.ndarray, x_seq: np.ndarray, tau: float, v_rest: float) -> np.ndarray:
    """H[t] of a LIF neuron (decay_input=True) from its post-reset membrane V and input X."""
    v_prev = np.concatenate([np.full_like(v_seq[:1], v_rest), v_seq[:-1]])
    return v_prev + (x_seq - (v_prev - v_rest)) / tau


def if_charge(v_seq: np.ndarray, x_seq: np.ndarray, v_rest: float) -> np.ndarray:
    """H[t] of an IF neuron from its post-reset membrane V and input X."""
    v_prev = np.concatenate([np.full_like(v_seq[:1], v_rest), v_seq[:-1]])
    return v_prev + x_seq


def plot_trace(ax, x_seq, h_seq, v_seq, s_seq, v_threshold, title):
    """Charge H (dotted), membrane V (solid), threshold (dashed) and spikes (ticks on top)."""
    t = np.arange(len(v_seq))
    ax.plot(t, h_seq, ":", color="tab:blue", label="charge $H[t]$")
    ax.plot(t, v_seq, "-", color="tab:blue", label="membrane $V[t]$ (after reset)")
    ax.plot(t, x_seq, "-", color="tab:gray", alpha=0.6, label="input $X[t]$")
    ax.axhline(v_threshold, ls="--", color="tab:red", label="$V_{th}$")
    top = max(float(np.max(h_seq)), float(np.max(x_seq)), v_threshold) * 1.15
    ax.vlines(t[s_seq > 0], top, top * 1.1, color="black", label="spikes $S[t]$")
    ax.set(title=title, xlabel="time step $t$", ylabel="potential / current")


# %% [markdown]
# ## 2. Constant and noisy input
#
# A constant current $X = 1.5$ drives the LIF neuron towards $V = X$ (with `decay_input=True` the
# steady state of the charge equation is $X$ itself). Every time the charge crosses $V_{th}$ the
# neuron spikes and the hard reset sends $V$ back to 0, so the trajectory repeats periodically.
# The IF neuron has no leak: it sums its input until the sum reaches $V_{th}$, so a small current
# $X = 0.3$ suffices.

# %%
x_lif = np.full(TIME_STEPS, 1.5, np.float32)
x_if = np.full(TIME_STEPS, 0.3, np.float32)
s_lif, v_lif = spiking.lif(
    jnp.asarray(x_lif), tau=TAU, v_threshold=V_TH, v_reset=V_RESET, return_membrane=True
)
s_if, v_if = spiking.integrate_and_fire(
    jnp.asarray(x_if), v_threshold=V_TH, v_reset=V_RESET, return_membrane=True
)
s_lif, v_lif, s_if, v_if = map(np.asarray, (s_lif, v_lif, s_if, v_if))
h_lif = lif_charge(v_lif, x_lif, TAU, V_RESET)
h_if = if_charge(v_if, x_if, V_RESET)

# The returned spikes are exactly Theta(H - V_th) of the recomputed charge.
np.testing.assert_array_equal(s_lif, (h_lif >= V_TH).astype(np.float32))
np.testing.assert_array_equal(s_if, (h_if >= V_TH).astype(np.float32))

show = slice(0, min(TIME_STEPS, 30))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
plot_trace(
    axes[0],
    x_lif[show],
    h_lif[show],
    v_lif[show],
    s_lif[show],
    V_TH,
    f"LIF, tau={TAU}, constant X=1.5: {int(s_lif.sum())} spikes in {TIME_STEPS} steps",
)
plot_trace(
    axes[1],
    x_if[show],
    h_if[show],
    v_if[show],
    s_if[show],
    V_TH,
    f"IF, constant X=0.3: {int(s_if.sum())} spikes in {TIME_STEPS} steps",
)
axes[0].legend(loc="lower right", fontsize=8)
fig.suptitle("A single neuron under constant input (hard reset to 0)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Now `NUM_NEURONS` independent LIF neurons each receive their own noisy current
# $X[t] = \mu + \sigma\,\xi[t]$ with $\xi[t] \sim \mathcal{N}(0, 1)$. The whole population is one
# call: the input has shape `[T, NUM_NEURONS]` and `lif` scans over the leading time axis.
#
# With $\mu = 0.9$ the mean current is below threshold, so the constant-input neuron would never
# fire, yet the fluctuations still make it fire occasionally. With $\mu = 1.5$ the neurons fire
# regularly, with jitter.

# %%
rng = np.random.default_rng(0)
SIGMA = 0.5
fig, axes = plt.subplots(
    2, 2, figsize=(12, 5.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]}
)
for col, mu in enumerate([0.9, 1.5]):
    x_noisy = (mu + SIGMA * rng.standard_normal((TIME_STEPS, NUM_NEURONS))).astype(np.float32)
    s_noisy, v_noisy = spiking.lif(jnp.asarray(x_noisy), tau=TAU, return_membrane=True)
    s_noisy, v_noisy = np.asarray(s_noisy), np.asarray(v_noisy)
    h0 = lif_charge(v_noisy[:, 0], x_noisy[:, 0], TAU, V_RESET)
    plot_trace(
        axes[0, col],
        x_noisy[:, 0],
        h0,
        v_noisy[:, 0],
        s_noisy[:, 0],
        V_TH,
        f"neuron 0, X = {mu} + {SIGMA} N(0,1)",
    )
    axes[0, col].set_xlabel("")
    t_idx, n_idx = np.nonzero(s_noisy)
    axes[1, col].scatter(t_idx, n_idx, marker="|", s=60, color="black")
    axes[1, col].set(
        title=f"raster of {NUM_NEURONS} neurons, mean rate {s_noisy.mean():.3f} spikes/step",
        xlabel="time step $t$",
        ylabel="neuron",
        ylim=(-1, NUM_NEURONS),
    )
axes[0, 0].legend(loc="upper left", fontsize=7)
fig.suptitle("LIF neurons under noisy input (tau=2, V_th=1, hard reset)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Hard reset versus soft reset
#
# The hard reset sets $V$ to $V_{reset}$ and so discards the overshoot $H[t] - V_{th}$ above
# threshold. The soft reset subtracts $V_{th}$ and keeps the overshoot for the next spike. For an
# IF neuron this makes the spike count an exact running quantisation of the summed input, which is
# why conversion-based spiking networks (Tan et al. 2021, the paper's spiking baseline) use soft
# reset. With $X = 0.35$ the IF neuron with hard reset needs $\lceil 1/0.35 \rceil = 3$ steps per
# spike (rate $1/3$), while with soft reset its rate is $0.35$. The LIF neuron also fires more
# with soft reset, as each spike starts the next charge from the overshoot instead of from 0.

# %%
x_lif = np.full(TIME_STEPS, 1.3, np.float32)
x_if = np.full(TIME_STEPS, 0.35, np.float32)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, name, x in [(axes[0], "LIF (tau=2), X=1.3", x_lif), (axes[1], "IF, X=0.35", x_if)]:
    for reset, v_reset, color in [("hard", 0.0, "tab:blue"), ("soft", None, "tab:orange")]:
        if name.startswith("LIF"):
            s, v = spiking.lif(jnp.asarray(x), tau=TAU, v_reset=v_reset, return_membrane=True)
        else:
            s, v = spiking.integrate_and_fire(jnp.asarray(x), v_reset=v_reset, return_membrane=True)
        rate = float(s.mean())
        s, v = np.asarray(s)[show], np.asarray(v)[show]
        ax.plot(np.arange(len(v)), v, color=color, label=f"{reset} reset: rate {rate:.3f}")
        spike_level = 1.9 if reset == "hard" else 2.1
        ax.vlines(np.nonzero(s)[0], spike_level, spike_level + 0.15, color=color)
    ax.axhline(V_TH, ls="--", color="tab:red", label="$V_{th}$")
    ax.set(
        title=f"{name}: membrane after reset (ticks: spikes)",
        xlabel="time step $t$",
        ylabel="membrane $V[t]$",
        ylim=(-0.1, 2.4),
    )
    ax.legend(loc="center right", fontsize=8)
fig.suptitle("Hard reset (V <- 0) versus soft reset (V <- H - V_th)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Time constant and threshold
#
# A grid of LIF traces under the same constant input $X = 1.2$. Two things stand out:
#
# - with `decay_input=True` the membrane relaxes towards $X$ whatever $\tau$ is, so the neuron
#   fires only if $X \ge V_{th}$ (the rheobase is $V_{th}$, independent of $\tau$); $\tau$ sets
#   how fast it gets there, hence the firing rate. At $\tau = 1$ the neuron has no memory at all:
#   $H[t] = X[t]$.
# - a higher threshold lowers the rate, and at $V_{th} = 1.5 > X$ the neuron stays silent.

# %%
taus = [1.5, 4.0] if SMALL else [1.5, 2.0, 4.0, 8.0]
thresholds = [0.5, 1.0, 1.5]
x_grid = np.full(TIME_STEPS, 1.2, np.float32)
show_grid = slice(0, min(TIME_STEPS, 40))
fig, axes = plt.subplots(
    len(taus), len(thresholds), figsize=(12, 2.2 * len(taus)), sharex=True, sharey=True
)
for i, tau in enumerate(taus):
    for j, v_th in enumerate(thresholds):
        s, v = spiking.lif(jnp.asarray(x_grid), tau=tau, v_threshold=v_th, return_membrane=True)
        s, v = np.asarray(s), np.asarray(v)
        ax = axes[i, j]
        ax.plot(steps[show_grid], v[show_grid], color="tab:blue")
        ax.vlines(np.nonzero(s[show_grid])[0], 1.6, 1.8, color="black")
        ax.axhline(v_th, ls="--", color="tab:red")
        ax.set_title(f"tau={tau}, V_th={v_th}: rate {s.mean():.3f}", fontsize=9)
        if i == len(taus) - 1:
            ax.set_xlabel("time step $t$")
        if j == 0:
            ax.set_ylabel("membrane $V[t]$")
fig.suptitle("LIF under constant X=1.2: rows vary tau, columns vary V_th (dashed), ticks: spikes")
fig.tight_layout()
plt.show()

# %% [markdown]
# The charge convention matters for $\tau$. With `decay_input=False` the input is added undivided,
# $H = V - V/\tau + X$, and the membrane relaxes towards $\tau X$ instead of $X$: a slower leak
# then means more spikes, and the neuron fires for any $X \ge V_{th}/\tau$.
#
# The neuron parameters of `dsqn.spiking` are values, not constants: `tau` can be a traced array,
# so the whole curve below is **one** `jax.vmap` call over a vector of time constants (one XLA
# program, no Python loop), and `jax.grad` differentiates the firing rate with respect to `tau`
# through the surrogate (the same mechanism lets a network learn `tau`: the PLIF neuron).

# %%
tau_sweep = jnp.linspace(1.0, 8.0, 15 if SMALL else 57)
x_weak = jnp.full((FI_TIME_STEPS,), 0.8)


def firing_rate(tau: jax.Array, decay_input: bool) -> jax.Array:
    return spiking.spike_rate(spiking.lif(x_weak, tau=tau, decay_input=decay_input))


fig, ax = plt.subplots(figsize=(6, 3.5))
for decay_input, marker in [(True, "o"), (False, "s")]:
    rates = jax.jit(jax.vmap(lambda tau, d=decay_input: firing_rate(tau, d)))(tau_sweep)
    ax.plot(tau_sweep, rates, marker=marker, ms=3, label=f"decay_input={decay_input}")
    # Checked away from tau = 1.25 (decay_input=False), where the membrane settles exactly on
    # V_th = 1 and float rounding alone decides whether it ever fires.
    checked = [0, len(tau_sweep) // 2, len(tau_sweep) - 1]
    one_by_one = [float(firing_rate(float(tau_sweep[i]), decay_input)) for i in checked]
    assert np.allclose(rates[np.array(checked)], one_by_one), "vmap over tau = separate calls"
ax.set(
    title="LIF firing rate versus tau at constant X=0.8, V_th=1",
    xlabel="membrane time constant tau (steps)",
    ylabel="firing rate (spikes/step)",
)
ax.legend()
fig.tight_layout()
plt.show()
slope = jax.grad(firing_rate)(4.0, False)
print(f"surrogate d(rate)/d(tau) at tau=4, decay_input=False: {float(slope):.4f}")

# %% [markdown]
# ## 5. Firing rate versus input current (f-I curves)
#
# A spiking layer turns a current into a firing rate, so the f-I curve plays the role of the
# activation function. All currents are simulated at once: `spiking.direct(currents, T)` repeats
# the vector of currents over `T` steps, giving one neuron per current.
#
# Closed forms, for constant $X \ge 0$ and $V[-1] = 0$:
#
# - **IF, soft reset:** nothing is lost at a spike, so after $T$ steps the count is
#   $\lfloor T X / V_{th} \rfloor$ and the rate is $X / V_{th}$ for $0 \le X \le V_{th}$
#   (within $1/T$), saturating at 1 spike per step. This is the ReLU that conversion methods rely
#   on.
# - **IF, hard reset:** one spike every $\lceil V_{th}/X \rceil$ steps.
# - **LIF, hard reset:** from $V = 0$, $k$ steps give $V_k = X\,(1 - (1 - 1/\tau)^k)$, so the
#   neuron fires every $k^* = \min\{k : V_k \ge V_{th}\}$ steps, and never if $X < V_{th}$.

# %%
currents = np.linspace(0.0, 2.5, FI_NUM_CURRENTS).astype(np.float32)
x_fi = spiking.direct(jnp.asarray(currents), FI_TIME_STEPS)  # [T, num_currents]
fi_rates = {
    "LIF, hard reset": spiking.spike_rate(spiking.lif(x_fi, tau=TAU)),
    "LIF, soft reset": spiking.spike_rate(spiking.lif(x_fi, tau=TAU, v_reset=None)),
    "IF, hard reset": spiking.spike_rate(spiking.integrate_and_fire(x_fi)),
    "IF, soft reset": spiking.spike_rate(spiking.integrate_and_fire(x_fi, v_reset=None)),
}
fi_rates = {name: np.asarray(r) for name, r in fi_rates.items()}


def lif_hard_reset_rate(x: float, tau: float, v_threshold: float) -> float:
    """Asymptotic rate 1/k* of a LIF neuron (decay_input=True, hard reset to 0) at constant x."""
    if x < v_threshold:
        return 0.0
    k = 1
    while x * (1 - (1 - 1 / tau) ** k) < v_threshold:
        k += 1
    return 1.0 / k


closed_if_soft = np.clip(currents / V_TH, 0.0, 1.0)
closed_if_hard = np.where(currents > 0, 1.0 / np.ceil(V_TH / np.maximum(currents, 1e-9)), 0.0)
closed_lif_hard = np.array([lif_hard_reset_rate(float(x), TAU, V_TH) for x in currents])

# The simulated IF soft-reset rate matches X / V_th to within one spike over the window.
in_range = currents <= V_TH
error_if_soft = np.abs(fi_rates["IF, soft reset"] - closed_if_soft)[in_range]
assert error_if_soft.max() <= 1.0 / FI_TIME_STEPS + 1e-6, error_if_soft.max()
print(f"IF soft reset: max |rate - X/V_th| on [0, V_th] = {error_if_soft.max():.4f}")
print(f"(bound 1/T = {1 / FI_TIME_STEPS:.4f})")

fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for name in ["IF, soft reset", "IF, hard reset"]:
    axes[0].plot(currents, fi_rates[name], lw=2, label=f"{name} (simulated)")
axes[0].plot(currents, closed_if_soft, "k--", label="X / V_th (clipped to 1)")
axes[0].plot(currents, closed_if_hard, "k:", label="1 / ceil(V_th / X)")
axes[0].set(
    title=f"IF neuron, V_th={V_TH}, T={FI_TIME_STEPS}",
    xlabel="input current X",
    ylabel="firing rate (spikes/step)",
)
for name in ["LIF, soft reset", "LIF, hard reset"]:
    axes[1].plot(currents, fi_rates[name], lw=2, label=f"{name} (simulated)")
axes[1].plot(currents, closed_lif_hard, "k:", label="1 / k* (hard reset)")
axes[1].set(
    title=f"LIF neuron, tau={TAU}, V_th={V_TH}, T={FI_TIME_STEPS}",
    xlabel="input current X",
)
for ax in axes:
    ax.axvline(V_TH, color="tab:red", lw=0.8, alpha=0.5)
    ax.legend(fontsize=8)
fig.suptitle("f-I curves: firing rate versus constant input current")
fig.tight_layout()
plt.show()

# %% [markdown]
# The LIF curve is a staircase that starts at the rheobase $X = V_{th}$ and climbs slowly: with
# $\tau = 2$ and hard reset, a rate of 1 spike per step needs $X \ge 2 V_{th}$. A DSQN hidden
# layer therefore has a thresholded, saturating, quantised activation.

# %% [markdown]
# ## 6. Surrogate gradients
#
# $\Theta$ has zero derivative almost everywhere, so a network made of it cannot be trained by
# backpropagation as it is. `dsqn.spiking` keeps the exact Heaviside in the forward pass and
# substitutes a smooth surrogate derivative $g_\alpha(x)$ in the backward pass, with
# $x = H - V_{th}$:
#
# | surrogate | $g_\alpha(x)$ | default $\alpha$ |
# |---|---|---|
# | `atan` (the paper's) | $\dfrac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}$ | 2 |
# | `sigmoid` | $\alpha\,\sigma(\alpha x)\,(1 - \sigma(\alpha x))$ | 4 |
# | `piecewise_quadratic` | $\max(\alpha - \alpha^2 \lvert x\rvert, 0)$ | 1 |
# | `fast_sigmoid` (SuperSpike) | $1 / (1 + \alpha \lvert x\rvert)^2$ | 25 |
#
# A surrogate is a small frozen dataclass: calling it gives the spikes, `.grad(x)` gives
# $g_\alpha(x)$ directly. The cell below checks that `jax.grad` of the spike function returns
# exactly `.grad`, for every surrogate.

# %%
x_axis = jnp.linspace(-2.0, 2.0, 401 if SMALL else 2001)
fig, axes = plt.subplots(1, len(spiking.SURROGATES), figsize=(14, 3.2), sharey=True)
for ax, name in zip(axes, spiking.SURROGATES, strict=True):
    surrogate = spiking.get_surrogate(name)
    autodiff = jax.vmap(jax.grad(surrogate))(x_axis)
    closed_form = surrogate.grad(x_axis)
    np.testing.assert_allclose(np.asarray(autodiff), np.asarray(closed_form), rtol=1e-6, atol=0)
    assert np.array_equal(np.asarray(surrogate(x_axis)), np.asarray(spiking.heaviside(x_axis)))
    ax.plot(x_axis, surrogate(x_axis), color="black", label="forward: $\\Theta(x)$")
    ax.plot(x_axis, closed_form, color="tab:orange", lw=2, label="backward: $g_\\alpha(x)$")
    ax.set(title=f"{name}, alpha={surrogate.alpha:g}", xlabel="$x = H - V_{th}$")
axes[0].set_ylabel("value")
axes[0].legend(fontsize=8, loc="upper left")
fig.suptitle("Spike function (Heaviside) and the surrogate derivative used by jax.grad")
fig.tight_layout()
plt.show()
print("jax.grad(surrogate) == surrogate.grad for:", ", ".join(spiking.SURROGATES))

# %% [markdown]
# $\alpha$ trades sharpness for reach. A large $\alpha$ approximates the true derivative (a spike
# at $x = 0$) more closely but gives almost no gradient to neurons far from threshold; a small
# $\alpha$ spreads the gradient widely. The area under $g_\alpha$ is 1 for `atan`, `sigmoid` and
# `piecewise_quadratic`, the height of the step it replaces, but $2/\alpha$ for `fast_sigmoid`,
# so there $\alpha$ also scales the gradient.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for alpha in [1.0, 2.0, 4.0, 8.0]:
    ax.plot(x_axis, spiking.atan(alpha).grad(x_axis), label=f"alpha={alpha:g}")
ax.set(
    title="atan surrogate derivative for several alpha",
    xlabel="$x = H - V_{th}$",
    ylabel="$g_\\alpha(x)$",
)
ax.legend()
fig.tight_layout()
plt.show()

wide = np.linspace(-200.0, 200.0, 400_001)
for name in spiking.SURROGATES:
    surrogate = spiking.get_surrogate(name)
    area = np.trapezoid(np.asarray(surrogate.grad(jnp.asarray(wide, jnp.float32))), wide)
    print(f"{name:>20s} (alpha={surrogate.alpha:g}): area under g on [-200, 200] = {area:.3f}")

# %% [markdown]
# ## 7. `detach_reset`: cutting the gradient through the reset
#
# With hard reset, $V[t] = H[t](1 - S[t])$ (for $V_{reset} = 0$), so
#
# $$
# \frac{\partial V[t]}{\partial H[t]} = (1 - S[t]) - H[t]\, g_\alpha(H[t] - V_{th}).
# $$
#
# The second term is the path through the reset. `detach_reset=True` stops the gradient of the
# $S[t]$ used in the reset, which leaves only $1 - S[t]$; the forward pass is unchanged. The
# paper keeps the reset attached; Chen et al. 2022 detach it.
#
# A tiny example: one LIF neuron receives the constant current $w$ for $T = 16$ steps and we take
# the gradient of its spike count with respect to $w$.

# %%
DETACH_STEPS = 16


def spike_count(w: jax.Array, detach_reset: bool) -> jax.Array:
    """Number of spikes of one LIF neuron (paper settings) driven by the constant current w."""
    return spiking.lif(jnp.full((DETACH_STEPS,), w), tau=TAU, detach_reset=detach_reset).sum()


weights = jnp.linspace(0.5, 3.0, 26 if SMALL else 251)
counts = {}
grads = {}
for detach in (False, True):
    counts[detach] = jax.vmap(lambda w, d=detach: spike_count(w, d))(weights)
    grads[detach] = jax.vmap(jax.grad(lambda w, d=detach: spike_count(w, d)))(weights)
np.testing.assert_array_equal(np.asarray(counts[False]), np.asarray(counts[True]))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].step(weights, counts[False], where="post", color="black")
axes[0].set(
    title=f"forward: spike count over T={DETACH_STEPS} (identical for both)",
    xlabel="input current w",
    ylabel="spike count",
)
axes[1].plot(weights, grads[False], label="detach_reset=False (paper)")
axes[1].plot(weights, grads[True], label="detach_reset=True")
axes[1].axhline(0.0, color="gray", lw=0.8)
axes[1].set(
    title="backward: surrogate gradient d(count)/dw",
    xlabel="input current w",
    ylabel="gradient",
)
axes[1].legend()
fig.suptitle("Effect of detach_reset on the gradient of a single LIF neuron (atan, alpha=2)")
fig.tight_layout()
plt.show()

for w in [1.2, 2.0]:
    g_attached = float(jax.grad(spike_count)(jnp.float32(w), False))
    g_detached = float(jax.grad(spike_count)(jnp.float32(w), True))
    print(f"w={w}: d(count)/dw = {g_attached:+.3f} (attached), {g_detached:+.3f} (detached)")
smaller = float(np.mean(np.asarray(grads[False]) < np.asarray(grads[True])))
print(f"attached gradient < detached gradient at {smaller:.0%} of the swept currents")

# %% [markdown]
# Both are surrogates for the derivative of a staircase whose true derivative is zero almost
# everywhere, and the forward spikes are identical. The attached reset adds the term
# $-H\,g_\alpha(H - V_{th}) \le 0$ at every step where the charge is near threshold, so in this
# example it gives the smaller gradient. Which choice trains better is an empirical question:
# the paper keeps the reset attached, Chen et al. 2022 detach it, and `dsqn.spiking` exposes both
# through the named argument `detach_reset`.
