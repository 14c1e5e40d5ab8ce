"""Videos of a trained agent playing, with its network's activity at every decision.

``dsqn evaluate RUN_DIR --video DIR`` plays ``--episodes`` full games per seed under the run's
evaluation protocol (its epsilon, its episode cap) and writes one MP4 per game, one frame per
decision, at the game's pace (Atari: 15 decisions per second, i.e. 60 emulator frames per
second; classic control: 30). Each frame shows, side by side:

- the game: on Atari the newest of the four 84x84 grey frames the network sees; on CartPole a
  drawing of the cart and pole from the observation; on other classic games the observation;
- the Q-values, with the chosen action marked (and whether epsilon-greedy chose it at random);
- for spiking networks, the firing rate of every spiking layer at this decision (spikes per
  neuron per time step, from the spike counts the network sows), and the spike raster of fc1
  over the T time steps of this decision.

The raster is fc1's spikes at every time step of the same forward pass, as the network sows
them in its :data:`dsqn.models.networks.SPIKE_TRAINS` collection, and is checked against the spike
counts it sows: a raster that disagrees with the network is an error, never a picture.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dsqn.config import Config, NetworkConfig
from dsqn.models.networks import SPIKE_TRAINS
from dsqn.runtime import prng

__all__ = [
    "Decision",
    "RASTER_LAYER",
    "decision_activity",
    "play_episode",
    "FrameRenderer",
    "write_video",
    "record_videos",
]

RASTER_LAYER = "fc1"
"""The layer whose spikes over the T time steps are drawn as a raster."""

DPI = 100
# Frame sizes are multiples of 16 pixels, the block size of H.264.
SPIKING_SIZE_INCHES = (12.8, 4.8)
RELU_SIZE_INCHES = (8.0, 4.8)


class Decision(NamedTuple):
    """What the agent saw and did at one decision (one env, numpy).

    Attributes:
      obs: the observation the network got (Atari uint8 ``[4, 84, 84]``; classic ``[D]``).
      q: float32 ``[A]`` Q-values.
      action: the action taken.
      explored: whether epsilon-greedy drew it at random.
      firing_rates: layer -> spikes per neuron per time step at this decision (spiking only).
      raster: ``[T, N]`` spikes of :data:`RASTER_LAYER` over the time steps (spiking only).
      score: the raw game score so far, this decision's reward included.
    """

    obs: np.ndarray
    q: np.ndarray
    action: int
    explored: bool
    firing_rates: dict[str, float]
    raster: np.ndarray | None
    score: float


def decision_activity(module, network: NetworkConfig, params: Any, obs: jax.Array):
    """One forward pass of a batch ``obs [B, ...]``: ``(q [B, A], firing_rates {layer: [B]},
    raster [T, B, N] or None)``; firing rates and raster only for spiking networks.

    Raises:
      RuntimeError: the raster's spike counts differ from those the network sowed.
    """
    q, state = module.apply({"params": params}, obs, mutable=["intermediates", SPIKE_TRAINS])
    inter = state.get("intermediates", {})
    counts = {k.removeprefix("spikes_"): v[0] for k, v in inter.items() if k.startswith("spikes_")}
    if not counts:
        return q, {}, None
    t, b = network.time_steps, obs.shape[0]
    rates = {k: v.reshape(b, -1).mean(axis=1) / t for k, v in counts.items()}
    (raster,) = state[SPIKE_TRAINS][f"spikes_{RASTER_LAYER}"]
    return q, rates, raster


def _check_raster(raster: np.ndarray, rate: float, time_steps: int) -> None:
    neurons = raster.shape[-1]
    expected = rate * time_steps * neurons
    if not np.isclose(raster.sum(), expected, rtol=1e-5, atol=0.5):
        raise RuntimeError(
            f"the {RASTER_LAYER} raster has {raster.sum():.0f} spikes, the network counted "
            f"{expected:.0f}"
        )


def play_episode(
    config: Config,
    module,
    params: Any,
    env: Any,
    epsilon: float,
    rng: np.random.Generator,
) -> Iterator[Decision]:
    """Plays one full game of a one-env pool, yielding every decision.

    The pool is reset first; the game ends at game over or at the episode cap (envpool's
    truncation). Rewards are the raw game score.
    """
    from dsqn.envs.stepping import python_step, reset

    forward = jax.jit(functools.partial(decision_activity, module, config.network))
    ts = reset(env)
    score = 0.0
    while True:
        obs = np.asarray(ts.obs)
        q, rates, raster = jax.device_get(forward(params, jnp.asarray(obs)))
        explored = bool(rng.random() < epsilon)
        action = int(rng.integers(q.shape[-1])) if explored else int(np.argmax(q[0]))
        ts = python_step(env, np.array([action], np.int32))
        score += float(ts.raw_reward[0])
        rates = {k: float(v[0]) for k, v in rates.items()}
        layer_raster = None
        if raster is not None:
            layer_raster = np.asarray(raster[:, 0]).reshape(raster.shape[0], -1)
            _check_raster(layer_raster, rates[RASTER_LAYER], config.network.time_steps)
        yield Decision(obs[0], q[0], action, explored, rates, layer_raster, score)
        if bool(ts.game_over[0]):
            return


class FrameRenderer:
    """Draws decisions as RGB frames ``[H, W, 3]`` uint8 of a fixed size (matplotlib, no
    pyplot): the game, the Q-values and, for spiking networks, firing rates and the raster."""

    def __init__(self, config: Config, num_actions: int, first: Decision):
        self.suite, self.game = config.env.suite, config.env.game
        self.spiking = first.raster is not None
        size = SPIKING_SIZE_INCHES if self.spiking else RELU_SIZE_INCHES
        self.fig = Figure(figsize=size, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        columns = 4 if self.spiking else 2
        grid = self.fig.add_gridspec(2, columns, height_ratios=(1, 1))
        self.ax_game = self.fig.add_subplot(grid[:, 0])
        self.ax_q = self.fig.add_subplot(grid[0, 1] if self.spiking else grid[:, 1])
        self._init_game(first)
        self._init_q(num_actions)
        if self.spiking:
            self._init_rates(first)
            self._init_raster(first)
        self.fig.subplots_adjust(
            left=0.03, right=0.98, top=0.92, bottom=0.1, wspace=0.35, hspace=0.55
        )

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of every frame in pixels."""
        width, height = self.fig.get_size_inches() * DPI
        return int(round(height)), int(round(width))

    def _init_game(self, first: Decision) -> None:
        ax = self.ax_game
        ax.set_xticks([])
        ax.set_yticks([])
        if self.suite == "atari":
            self.game_image = ax.imshow(first.obs[-1], cmap="gray", vmin=0, vmax=255)
        elif self.suite == "minatar":
            channels = first.obs.shape[-1]
            self.game_image = ax.imshow(
                minatar_picture(first.obs), cmap="tab10", vmin=0, vmax=9, interpolation="nearest"
            )
            ax.set_xlabel(f"{channels} channels (colour = channel)", fontsize="small")
        elif self.game.startswith("CartPole"):
            ax.set(xlim=(-2.6, 2.6), ylim=(-0.6, 1.6), aspect="equal")
            ax.axhline(0, color="0.5", lw=1)
            (self.cart,) = ax.plot([], [], color="C0", lw=10, solid_capstyle="butt")
            (self.pole,) = ax.plot([], [], color="C1", lw=4)
        else:
            self.obs_bars = ax.barh(range(len(first.obs)), first.obs, color="C0")
            limit = max(1.0, float(np.abs(first.obs).max()) * 2)
            ax.set(xlim=(-limit, limit), title="observation")
        self.game_title = ax.set_title("")

    def _init_q(self, num_actions: int) -> None:
        self.q_bars = self.ax_q.bar(range(num_actions), np.zeros(num_actions), color="0.6")
        self.ax_q.set_xticks(range(num_actions))
        self.ax_q.set(ylabel="Q")
        self.q_title = self.ax_q.set_title("")

    def _init_rates(self, first: Decision) -> None:
        ax = self.fig.add_subplot(self.fig.axes[0].get_gridspec()[1, 1])
        layers = list(first.firing_rates)
        self.rate_bars = ax.bar(layers, [0.0] * len(layers), color="C2")
        self.rate_texts = [
            ax.text(i, 0.0, "", ha="center", va="bottom", fontsize="small")
            for i in range(len(layers))
        ]
        ax.set(ylim=(0, 1.15), ylabel="spikes / neuron / step", title="firing rate per layer")
        ax.tick_params(axis="x", labelsize="small")

    def _init_raster(self, first: Decision) -> None:
        ax = self.fig.add_subplot(self.fig.axes[0].get_gridspec()[:, 2:])
        t, n = first.raster.shape
        self.raster_image = ax.imshow(
            first.raster.T, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
        )
        ax.set(xlabel=f"time step (T = {t})", ylabel=f"{RASTER_LAYER} neuron ({n})")
        self.raster_title = ax.set_title("")

    def render(self, decision: Decision, step: int) -> np.ndarray:
        """The frame of ``decision``, the ``step``-th of its game (from 0)."""
        self._draw_game(decision)
        self.game_title.set_text(f"{self.game}  decision {step + 1}  score {decision.score:g}")
        for i, (bar, value) in enumerate(zip(self.q_bars, decision.q, strict=True)):
            bar.set_height(float(value))
            bar.set_color("C3" if i == decision.action else "0.6")
        low, high = float(decision.q.min()), float(decision.q.max())
        pad = max(0.05 * (high - low), 1e-3)
        self.ax_q.set_ylim(min(0.0, low - pad), max(0.0, high + pad))
        how = "random (epsilon)" if decision.explored else "greedy"
        self.q_title.set_text(f"Q-values: action {decision.action} ({how})")
        if self.spiking:
            rates = decision.firing_rates.values()
            for bar, text, rate in zip(self.rate_bars, self.rate_texts, rates, strict=True):
                bar.set_height(rate)
                text.set_position((bar.get_x() + bar.get_width() / 2, rate + 0.02))
                text.set_text(f"{rate:.3f}")
            self.raster_image.set_data(decision.raster.T)
            rate = decision.firing_rates[RASTER_LAYER]
            self.raster_title.set_text(f"{RASTER_LAYER} spikes (rate {rate:.3f})")
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def _draw_game(self, decision: Decision) -> None:
        if self.suite == "atari":
            self.game_image.set_data(decision.obs[-1])
        elif self.suite == "minatar":
            self.game_image.set_data(minatar_picture(decision.obs))
        elif self.game.startswith("CartPole"):
            x, theta = float(decision.obs[0]), float(decision.obs[2])
            self.cart.set_data([x - 0.25, x + 0.25], [0.0, 0.0])
            self.pole.set_data([x, x + np.sin(theta)], [0.0, np.cos(theta)])
        else:
            for bar, value in zip(self.obs_bars, decision.obs, strict=True):
                bar.set_width(float(value))


def minatar_picture(obs: np.ndarray) -> np.ndarray:
    """A MinAtar observation bool ``[10, 10, C]`` as one int grid ``[10, 10]``: 0 where no
    channel is set, else 1 + the first channel set (as the original package's display)."""
    obs = np.asarray(obs, bool)
    return np.where(obs.any(-1), obs.argmax(-1) + 1, 0)


def write_video(path: Path, frames: Iterator[np.ndarray], fps: int) -> int:
    """Writes RGB frames to an MP4 (H.264) file; returns the number of frames."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ModuleNotFoundError(
            "videos need imageio and imageio-ffmpeg: pip install -e '.[video]'", name="imageio"
        ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with warnings.catch_warnings():
        # JAX warns on every fork; imageio-ffmpeg forks only to exec ffmpeg at once.
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=16)
        with writer:
            for frame in frames:
                writer.append_data(frame)
                count += 1
    return count


def record_videos(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    checkpoint: str = "best",
    episodes: int = 1,
    epsilon: float | None = None,
) -> list[dict[str, Any]]:
    """One MP4 per game: ``episodes`` games per seed of a run's checkpoint.

    Returns:
      Per video: ``path``, ``seed``, ``episode``, ``frames`` (= decisions of the game),
      ``score`` (raw) and ``agent_steps`` (of the checkpoint).
    """
    from dsqn.envs import make_seed_pool
    from dsqn.rundir.loading import load_agents

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    agents = load_agents(run_dir, checkpoint)
    config = agents[0].config
    epsilon = config.eval.epsilon if epsilon is None else epsilon
    fps = 15 if config.env.suite == "atari" else 30
    game = config.env.game.removesuffix("-v5")
    videos = []
    for agent in agents:
        env = make_seed_pool(config, 1, [agent.seed], train=False)
        rng = np.random.default_rng([agent.seed, prng.VIDEO])
        for episode in range(episodes):
            decisions = play_episode(config, agent.network, agent.params, env, epsilon, rng)
            path = Path(out_dir) / f"{game}_{config.name}_seed{agent.seed}_episode{episode}.mp4"
            scores: list[float] = []
            frames = _frames(config, agent.spaces.num_actions, decisions, scores)
            count = write_video(path, frames, fps)
            videos.append(
                dict(
                    path=str(path),
                    seed=agent.seed,
                    episode=episode,
                    frames=count,
                    score=scores[-1],
                    agent_steps=agent.agent_steps,
                )
            )
    return videos


def _frames(
    config: Config, num_actions: int, decisions: Iterator[Decision], scores: list[float]
) -> Iterator[np.ndarray]:
    """Rendered frames of the decisions; appends each decision's score to ``scores``."""
    renderer = None
    for step, decision in enumerate(decisions):
        renderer = renderer or FrameRenderer(config, num_actions, decision)
        scores.append(decision.score)
        yield renderer.render(decision, step)
