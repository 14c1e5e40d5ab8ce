"""Firing rates of the MinAtar DSQN at initialisation, on observations of real games.

MinAtar observations are binary. With PyTorch's default initialisation (the paper's) a conv1
current rarely reaches the threshold V_th = 1, and a LIF neuron driven by a constant current X
(tau = 2, decay_input) settles at X: below V_th it never fires. This measures, for each
(initialisation, threshold) variant, the fraction of neurons x time steps that spike in each layer
of ``minatar-dsqn``'s network, averaged over ``--agents`` initialisations and the observations of
``--steps`` steps of ``--envs`` random games. Prints JSON.

    python experiments/minatar_init_rates.py --game Breakout
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from dsqn import config
from dsqn.envs.minatar import make_minatar
from dsqn.learning import agent


def random_observations(game: str, envs: int, steps: int, seed: int) -> np.ndarray:
    """Observations bool ``[envs * steps, 10, 10, C]`` of uniformly random play."""
    pool = make_minatar(game, envs, seed=seed)
    obs = [pool.reset()[0]]
    rng = np.random.default_rng(seed)
    for _ in range(steps - 1):
        obs.append(pool.step(rng.integers(0, pool.action_space.n, envs))[0])
    return np.concatenate(obs)


def firing_rates(network_config, obs: np.ndarray, num_actions: int, agents: int) -> dict:
    network = agent.make_network(network_config, num_actions, obs.shape[1:])
    rates: dict[str, list[float]] = {}
    for seed in range(agents):
        params = network.init(jax.random.key(seed), jnp.asarray(obs[:1]))["params"]
        _, state = network.apply({"params": params}, jnp.asarray(obs), mutable=["intermediates"])
        for name, (counts,) in state["intermediates"].items():
            rate = float(jnp.mean(counts)) / network_config.time_steps
            rates.setdefault(name.removeprefix("spikes_"), []).append(rate)
    return {layer: float(np.mean(values)) for layer, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    parser.add_argument("--inits", nargs="+", default=["torch", "lecun"])
    args = parser.parse_args()
    obs = random_observations(args.game, args.envs, args.steps, seed=0)
    base = config.preset("minatar-dsqn").network
    num_actions = make_minatar(args.game, 1).action_space.n
    rows = []
    for init in args.inits:
        for threshold in args.thresholds:
            net = dataclasses.replace(base, param_init=init, v_threshold=threshold)
            rows.append(
                {
                    "param_init": init,
                    "v_threshold": threshold,
                    "firing_rate": firing_rates(net, obs, num_actions, args.agents),
                }
            )
    print(json.dumps({"game": args.game, "observations": len(obs), "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
