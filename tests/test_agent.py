"""dsqn.learning.agent: exploration schedule, action selection, one update, target sync, network
choice."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxprs import loops_and_kernels

from dsqn import config as C
from dsqn.config import LearnerConfig, NetworkConfig
from dsqn.learning import agent, losses, replay
from dsqn.models.networks import DQN, DSQN, MLPDQN, MLPDSQN, MinAtarDSQN


def test_epsilon_schedule_is_the_papers():
    """1.0 -> 0.1 over 1M agent steps counted from the end of the 50k warm-up (the authors'
    training counter starts after it); with the warm-up counted, from the first step."""
    cfg = LearnerConfig()
    eps = lambda t, c=cfg: float(agent.epsilon_at(c, t))  # noqa: E731
    assert eps(0) == 1.0 and eps(49_999) == 1.0 and eps(50_000) == 1.0
    assert eps(550_000) == pytest.approx(0.55)
    assert eps(1_050_000) == pytest.approx(0.1)
    assert eps(40_000_000) == pytest.approx(0.1)
    counted = LearnerConfig(schedule_counts_warmup=True)
    assert eps(49_999, counted) == 1.0
    assert eps(50_000, counted) == pytest.approx(1.0 - 0.9 * 0.05)
    assert eps(500_000, counted) == pytest.approx(0.55)


def test_epsilon_schedule_of_wang_and_ueda():
    """ConvergentDQN's epsilon_scheduler: 1.0 * exp(-t / (1e6 / ln 10)) up to 1M steps, then
    linear to 0.01 at 40M; the warm-up (counted in their step) acts at random."""
    cfg = C.preset("cdqn").learner
    eps = lambda t: float(agent.epsilon_at(cfg, t))  # noqa: E731
    rate = 1e6 / np.log(1.0 / 0.1)
    assert eps(49_999) == 1.0
    for t in (50_000, 300_000, 999_999):
        assert eps(t) == pytest.approx(np.exp(-t / rate), rel=1e-5)
    assert eps(1_000_000) == pytest.approx(0.1)
    assert eps(20_500_000) == pytest.approx(0.1 - 0.09 * 19.5 / 39, rel=1e-5)
    assert eps(40_000_000) == pytest.approx(0.01) and eps(45_000_000) == pytest.approx(0.01)


def test_select_actions_greedy_and_random():
    q = jnp.array([[0.0, 2.0, 1.0]] * 2000)
    greedy = agent.select_actions(jax.random.key(0), q, 0.0)
    assert bool(jnp.all(greedy == 1))
    rand = agent.select_actions(jax.random.key(1), q, 1.0)
    counts = np.bincount(np.asarray(rand), minlength=3) / 2000
    np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.05)
    mixed = agent.select_actions(jax.random.key(2), q, 0.3)
    # greedy with prob 0.7 + 0.3/3
    assert float(jnp.mean(mixed == 1)) == pytest.approx(0.8, abs=0.04)


@pytest.mark.parametrize(
    "kind,shape,cls",
    [
        ("dqn", (4, 84, 84), DQN),
        ("dsqn", (4, 84, 84), DSQN),
        ("dqn", (4,), MLPDQN),
        ("dsqn", (4,), MLPDSQN),
    ],
)
def test_make_network_picks_by_observation(kind, shape, cls):
    net = agent.make_network(NetworkConfig(kind=kind, time_steps=3), 5, shape)
    assert isinstance(net, cls)


def _filled_replay(num=64, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    state = replay.init(num * 2, 1, np.zeros(dim, np.float32), num_actions=2)
    for _ in range(num):
        obs = rng.normal(size=(1, dim))
        state = replay.add(
            state,
            jnp.asarray(obs, jnp.float32),
            jnp.asarray(rng.integers(0, 2, 1), jnp.int32),
            jnp.asarray(3.0 * obs[:, 0] + 1.0, jnp.float32),  # a learnable reward
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
        )
    return state


@pytest.mark.parametrize("loss", ["dqn", "double", "cdqn"])
def test_update_changes_params_and_counts(loss):
    net = MLPDQN(2, hidden_sizes=(16,))
    cfg = LearnerConfig(loss=loss, batch_size=16, learning_rate=1e-2, max_grad_norm=10.0)
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))
    rep = _filled_replay()
    new, rep_after, metrics = agent.update(state, rep, network=net, optimizer=opt, config=cfg)
    jax.tree.map(np.testing.assert_array_equal, rep_after, rep)  # uniform: replay unchanged
    assert int(new.updates) == 1
    assert set(metrics) == {"loss", "q_mean"} and np.isfinite(float(metrics["loss"]))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
    assert all(jax.tree.leaves(changed))
    # The target network does not move with an update; a sync copies the online parameters.
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new.target_params, state.target_params)
    )
    synced = agent.sync_target(new)
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), synced.target_params, new.params)
    )
    # Every update draws a fresh minibatch: the key advances.
    key_data = jax.random.key_data
    assert not np.array_equal(np.asarray(key_data(new.key)), np.asarray(key_data(state.key)))


def test_update_with_the_pallas_neuron_backend_equals_the_scans():
    """One real update of a spiking MLP with each neuron backend: the same loss and Q (the
    forward passes spike alike) and the same new parameters up to float rounding."""
    cfg = LearnerConfig(batch_size=8, learning_rate=1e-2)
    opt = agent.make_optimizer(cfg)
    rep = _filled_replay(num=16)
    out, counts = {}, {}
    for backend in ("scan", "pallas"):
        network = NetworkConfig(time_steps=4, hidden_sizes=(16,), neuron_backend=backend)
        net = agent.make_network(network, 2, (4,))
        assert net.neuron_backend == backend
        state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))

        def update(s, r, net=net):
            return agent.update(s, r, network=net, optimizer=opt, config=cfg)

        out[backend] = (state, *jax.jit(update)(state, rep))
        counts[backend] = loops_and_kernels(jax.make_jaxpr(update)(state, rep).jaxpr)
    # Online forward (saving charges), target forward, backward: three kernels for three loops.
    (loops, kernels), (ref_loops, ref_kernels) = counts["pallas"], counts["scan"]
    assert (ref_loops - loops, kernels, ref_kernels) == (3, 3, 0)
    (_, new, _, metrics), (state, ref_new, _, ref_metrics) = out["pallas"], out["scan"]
    assert float(metrics["loss"]) == float(ref_metrics["loss"]) > 0
    assert float(metrics["q_mean"]) == float(ref_metrics["q_mean"])
    step = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), ref_new.params, state.params)
    assert min(jax.tree.leaves(step)) > 1e-3  # every parameter moved
    apart = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new.params, ref_new.params)
    assert max(jax.tree.leaves(apart)) < 1e-6


def _prioritized_replay(cfg, num=64, dim=4):
    rng = np.random.default_rng(0)
    state = replay.init(
        num * 2, 1, np.zeros(dim, np.float32), num_actions=2, priority_rule=agent.priority_rule(cfg)
    )
    no = jnp.zeros(1, bool)
    for _ in range(num):
        obs = jnp.asarray(rng.normal(size=(1, dim)), jnp.float32)
        action = jnp.asarray(rng.integers(0, 2, 1), jnp.int32)
        state = replay.add(state, obs, action, obs[:, 0] * 3.0, no, no, no)
    slot, env = np.indices(state.flags.shape, np.int32)
    td = jnp.asarray(rng.exponential(size=slot.size) ** 2, jnp.float32)
    return replay.update_priorities(state, slot.ravel(), env.ravel(), td, agent.priority_rule(cfg))


def test_prioritized_update_weights_the_loss_and_sets_priorities():
    """An update on a prioritized replay: its loss is the importance-weighted Huber loss of
    the TD errors computed here from the network, and the sampled transitions' priorities become
    (|td| + eps)^alpha."""
    net = MLPDQN(2, hidden_sizes=(16,))
    cfg = LearnerConfig(
        batch_size=8,
        discount=0.9,
        replay_sampling="proportional",
        priority_exponent=0.5,
        priority_epsilon=0.01,
    )
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))
    state = state._replace(target_params=jax.tree.map(lambda x: 0.5 * x, state.params))
    rep = _prioritized_replay(cfg)
    new, rep_after, metrics = agent.update(state, rep, 0.7, network=net, optimizer=opt, config=cfg)

    _, sample_key = jax.random.split(state.key)
    slot, env, weights = replay.sample_proportional(rep, sample_key, 8, 0.7)
    batch = replay.gather(rep, slot, env)
    q = np.asarray(net.apply({"params": state.params}, batch.obs))
    q_next = np.asarray(net.apply({"params": state.target_params}, batch.next_obs))
    target = np.asarray(batch.reward) + 0.9 * np.asarray(batch.discount) * q_next.max(1)
    td = target - q[np.arange(8), np.asarray(batch.action)]
    huber = np.where(np.abs(td) <= 1, 0.5 * td**2, np.abs(td) - 0.5)
    np.testing.assert_allclose(metrics["loss"], np.mean(np.asarray(weights) * huber), rtol=1e-5)
    assert not np.allclose(np.asarray(weights), 1.0)
    np.testing.assert_allclose(rep_after.priority[slot, env], (np.abs(td) + 0.01) ** 0.5, rtol=1e-5)
    untouched = np.ones(rep.priority.shape, bool)
    untouched[np.asarray(slot), np.asarray(env)] = False
    np.testing.assert_array_equal(rep_after.priority[untouched], rep.priority[untouched])


def test_priority_rule_reads_every_priority_setting():
    """The replay's rule is the learner config's priority settings, every one of them; uniform
    replay has none."""
    cfg = LearnerConfig(
        replay_sampling="proportional",
        priority_exponent=0.7,
        priority_epsilon=1e-3,
        priority_initial_max=5.0,
        priority_max_tracking="last_updated",
        priority_floor_of_mean=0.2,
        priority_predecessor_fraction=0.25,
    )
    assert agent.priority_rule(cfg) == replay.PriorityRule(
        exponent=0.7,
        epsilon=1e-3,
        initial_max=5.0,
        max_tracking="last_updated",
        floor_of_mean=0.2,
        predecessor_fraction=0.25,
    )
    assert agent.priority_rule(dataclasses.replace(cfg, replay_sampling="uniform")) is None


def test_importance_exponent_schedule():
    cfg = LearnerConfig(importance_exponent_start=0.4)
    beta = lambda t, total: float(agent.importance_exponent_at(cfg, t, total))  # noqa: E731
    assert beta(0, 1000) == pytest.approx(0.4)
    assert beta(500, 1000) == pytest.approx(0.7)
    assert beta(2000, 1000) == 1.0
    fixed = LearnerConfig(importance_exponent_anneal_agent_steps=50_000_000)
    assert float(agent.importance_exponent_at(fixed, 10_000_000, 10_000_000)) == pytest.approx(0.52)


def test_repeated_updates_fit_a_fixed_replay():
    net = MLPDQN(2, hidden_sizes=(32,))
    cfg = LearnerConfig(batch_size=32, learning_rate=3e-3, discount=0.0)  # pure regression
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4)))
    rep = _filled_replay()
    step = jax.jit(lambda s: agent.update(s, rep, network=net, optimizer=opt, config=cfg))
    first = None
    for _ in range(400):
        state, _, m = step(state)
        first = float(m["loss"]) if first is None else first
    assert float(m["loss"]) < 0.2 * first


def test_q_values_and_spikes_per_sample_counts():
    net = MLPDSQN(3, time_steps=4, hidden_sizes=(8,))
    obs = jnp.ones((5, 4)) * 3
    params = net.init(jax.random.key(0), obs)["params"]
    q, counts = agent.q_values_and_spikes(net, params, obs)
    assert q.shape == (5, 3) and set(counts) == {"fc1"} and counts["fc1"].shape == (5,)
    _, none = agent.q_values_and_spikes(
        MLPDQN(3), MLPDQN(3).init(jax.random.key(0), obs)["params"], obs
    )
    assert none == {}


# ----------------------------------------------------------------------------- golden numbers
# One update on a 2-sample minibatch of a tiny ReLU MLP, against NumPy: the forward passes on s
# (online) and s' (target, and online for Double DQN and C-DQN), the targets with gamma and the
# done mask, the Huber loss and its hand-derived gradients.

GAMMA = 0.9
OBS_DIM, HIDDEN, ACTIONS = 2, 5, 3


def _np_params(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "fc1": {"kernel": rng.normal(size=(OBS_DIM, HIDDEN)), "bias": rng.normal(size=HIDDEN)},
        "out": {"kernel": rng.normal(size=(HIDDEN, ACTIONS)), "bias": rng.normal(size=ACTIONS)},
    }


def _np_forward(p: dict, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    pre = x @ p["fc1"]["kernel"] + p["fc1"]["bias"]
    hidden = np.maximum(pre, 0.0)
    return hidden @ p["out"]["kernel"] + p["out"]["bias"], (x, pre, hidden)


def _np_backward(p: dict, cache: tuple, dq: np.ndarray) -> dict:
    """Gradients of ``sum(dq * Q(x))`` with respect to the MLP's parameters."""
    x, pre, hidden = cache
    dpre = (dq @ p["out"]["kernel"].T) * (pre > 0)
    return {
        "fc1": {"kernel": x.T @ dpre, "bias": dpre.sum(0)},
        "out": {"kernel": hidden.T @ dq, "bias": dq.sum(0)},
    }


def _np_update(loss: str, online: dict, target: dict, t: dict) -> dict:
    """Loss, mean Q(s, a), gradients, and which samples are in Huber's linear part or took
    C-DQN's residual term, of one update on transitions ``t`` (arrays [B])."""
    b = len(t["action"])
    rows = np.arange(b)
    q, cache = _np_forward(online, t["obs"])
    q_next_online, cache_next = _np_forward(online, t["next_obs"])
    q_next_target, _ = _np_forward(target, t["next_obs"])
    bootstrap = GAMMA * t["discount"]
    q_taken = q[rows, t["action"]]
    if loss == "double":
        y = t["reward"] + bootstrap * q_next_target[rows, q_next_online.argmax(1)]
    else:
        y = t["reward"] + bootstrap * q_next_target.max(1)
    td = y - q_taken
    residual = np.zeros(b, bool)
    if loss == "cdqn":  # Wang & Ueda: the larger of the DQN and the residual (MSBE) errors
        td_residual = t["reward"] + bootstrap * q_next_online.max(1) - q_taken
        residual = np.abs(td_residual) > np.abs(td)
        td = np.where(residual, td_residual, td)
    huber = np.where(np.abs(td) <= 1, 0.5 * td**2, np.abs(td) - 0.5)
    dtd = np.clip(td, -1, 1) / b  # d loss / d td
    dq = np.zeros_like(q)
    dq[rows, t["action"]] = -dtd
    dq_next = np.zeros_like(q)
    dq_next[rows, q_next_online.argmax(1)] = np.where(residual, bootstrap * dtd, 0.0)
    grads = jax.tree.map(
        np.add, _np_backward(online, cache, dq), _np_backward(online, cache_next, dq_next)
    )
    return {
        "loss": float(huber.mean()),
        "q_mean": float(q_taken.mean()),
        "grads": grads,
        "linear": np.abs(td) > 1,
        "residual": residual,
        "double_differs": q_next_online.argmax(1) != q_next_target.argmax(1),
    }


def _golden_transitions(kinds: tuple[str, str], online: dict, target: dict) -> dict:
    """Two consecutive transitions of the given kinds ([2] arrays; a non-terminal first one's
    next observation is the second's observation). Rewards are chosen so that, under C-DQN,
    the first transition takes the residual term if it bootstraps and the second the DQN term;
    the first's TD error lies in Huber's linear part."""
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(2, OBS_DIM)).astype(np.float32)
    next_obs = rng.normal(size=(2, OBS_DIM)).astype(np.float32)
    if kinds[0] == "nonterminal":
        next_obs[0] = obs[1]
    action = np.array([2, 0])
    discount = np.array([0.0 if k == "terminal" else 1.0 for k in kinds], np.float32)
    q = _np_forward(online, obs.astype(np.float64))[0][[0, 1], action]
    next_target = _np_forward(target, next_obs.astype(np.float64))[0].max(1)
    next_online = _np_forward(online, next_obs.astype(np.float64))[0].max(1)
    delta = GAMMA * discount * (next_online - next_target)  # td_residual - td_dqn
    td_dqn = np.array([3.0 * (np.sign(delta[0]) or 1.0), -delta[1] if discount[1] else -0.4])
    reward = (td_dqn + q - GAMMA * discount * next_target).astype(np.float32)
    return dict(obs=obs, next_obs=next_obs, action=action, reward=reward, discount=discount)


def _replay_of(t: dict, kinds: tuple[str, str]) -> replay.ReplayState:
    """One env's replay holding the two transitions as envpool yields them: after a terminal
    or truncated step, the done observation is the input of the auto-reset step, which is never
    a transition; the newest slot (the last next observation) starts none either."""
    state = replay.init(8, 1, np.zeros(OBS_DIM, np.float32), num_actions=ACTIONS)

    def add(state, obs, action, reward, kind="nonterminal", reset_step=False):
        flags = (kind == "terminal", kind == "truncated", reset_step)
        return replay.add(
            state,
            jnp.asarray(obs[None], jnp.float32),
            jnp.asarray([action], jnp.int32),
            jnp.asarray([reward], jnp.float32),
            *(jnp.asarray([f]) for f in flags),
        )

    for i, kind in enumerate(kinds):
        state = add(state, t["obs"][i], t["action"][i], t["reward"][i], kind)
        if kind != "nonterminal":
            state = add(state, t["next_obs"][i], 1, 0.0, reset_step=True)
    state = add(state, t["next_obs"][1], 1, 0.0)
    assert int(replay.size(state)) == 2
    return state


def _to_jax(tree: dict) -> dict:
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


def _as_float32(tree: dict) -> dict:
    return jax.tree.map(lambda x: np.asarray(x, np.float32).astype(np.float64), tree)


KIND_PAIRS = [("nonterminal", "terminal"), ("nonterminal", "truncated"), ("terminal", "truncated")]


@pytest.mark.parametrize("kinds", KIND_PAIRS, ids="+".join)
@pytest.mark.parametrize("loss", ["dqn", "double", "cdqn"])
def test_update_equals_numpy_golden_numbers(loss, kinds):
    online, target = _as_float32(_np_params(1)), _as_float32(_np_params(2))
    t = _golden_transitions(kinds, online, target)
    rep = _replay_of(t, kinds)
    net = MLPDQN(ACTIONS, hidden_sizes=(HIDDEN,))
    # A truncated transition bootstraps here (discount 1, as _golden_transitions builds it).
    cfg = LearnerConfig(loss=loss, discount=GAMMA, batch_size=2, truncation_bootstraps=True)
    sgd = optax.sgd(1.0)  # new params = params - gradient: the gradient is observable
    state = agent.TrainState(
        params=_to_jax(online),
        target_params=_to_jax(target),
        opt_state=sgd.init(_to_jax(online)),
        key=jax.random.key(3),
        updates=jnp.zeros((), jnp.int32),
        best_params=_to_jax(online),
        best_return=jnp.full((), -jnp.inf),
        best_agent_steps=jnp.full((), -1, jnp.int32),
    )
    new, _, metrics = agent.update(state, rep, network=net, optimizer=sgd, config=cfg)

    # Sampling is with replacement: the minibatch is (0, 0), (1, 1) or one of each. The update
    # must match one of these exactly; the key is one that draws both transitions.
    t64 = jax.tree.map(lambda x: x.astype(np.float64) if x.dtype.kind == "f" else x, t)
    candidates = {
        pair: _np_update(loss, online, target, {k: v[list(pair)] for k, v in t64.items()})
        for pair in [(0, 0), (1, 1), (0, 1)]
    }
    matched = [p for p, c in candidates.items() if np.isclose(c["loss"], metrics["loss"], 1e-5)]
    assert matched == [(0, 1)], f"loss {float(metrics['loss'])} matches minibatches {matched}"
    ref = candidates[(0, 1)]
    assert float(metrics["q_mean"]) == pytest.approx(ref["q_mean"], rel=1e-5)
    grads = jax.tree.map(lambda p, n: np.asarray(p) - np.asarray(n), state.params, new.params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        want = ref["grads"][path[0].key][path[1].key]
        np.testing.assert_allclose(g, want, atol=2e-5, err_msg=jax.tree_util.keystr(path))
    # The case covers what it claims: both Huber regimes; C-DQN takes each term once when both
    # transitions bootstrap; Double DQN's target action differs from the max on a bootstrap.
    assert ref["linear"].tolist() in ([True, False], [True, True])
    if loss == "cdqn":
        assert ref["residual"].tolist() == [t["discount"][0] == 1, False]
    if loss == "double":
        assert (ref["double_differs"] & (t["discount"] == 1)).any()


def test_first_adam_step_follows_the_config():
    """Adam's first step is ``-lr g / (|g| + eps)`` (bias-corrected moments g and g^2)."""
    cfg = LearnerConfig(learning_rate=0.25, adam_eps=0.5)
    opt = agent.make_optimizer(cfg)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    g = np.array([0.5, -2.0, 0.0])
    updates, _ = opt.update({"w": jnp.asarray(g)}, opt.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.25 * g / (np.abs(g) + 0.5), rtol=2e-5)


def test_learning_rate_decays_linearly_over_the_updates_then_stays():
    """With a constant gradient g Adam's k-th step is ``-lr(k) g / (|g| + eps)``; lr decays
    0.3 -> 0.1 over 8 agent steps of learning = 4 updates (period 2), by hand, also with a
    traced start (a sweep's); without learning_rate_end it stays 0.3."""
    params = {"w": jnp.zeros((2,))}
    grads = {"w": jnp.array([0.5, -2.0])}
    direction = np.asarray(grads["w"]) / (np.abs(np.asarray(grads["w"])) + 0.5)

    def steps(lr, end):
        decay = {}
        if end is not None:
            decay = dict(learning_rate_end=end, learning_rate_decay_agent_steps=8)
        opt = agent.make_optimizer(
            LearnerConfig(learning_rate=lr, adam_eps=0.5, update_period_agent_steps=2, **decay)
        )
        state, out = opt.init(params), []
        for _ in range(6):
            update, state = opt.update(grads, state, params)
            out.append(update["w"])
        return jnp.stack(out)

    expected = -np.array([0.3, 0.25, 0.2, 0.15, 0.1, 0.1])[:, None] * direction
    np.testing.assert_allclose(steps(0.3, 0.1), expected, rtol=1e-5)
    traced = jax.jit(lambda lr: steps(lr, 0.1))(jnp.float32(0.3))
    np.testing.assert_allclose(traced, expected, rtol=1e-5)
    np.testing.assert_allclose(steps(0.3, None), -0.3 * np.ones((6, 1)) * direction, rtol=1e-5)


def test_neuron_learning_rate_scale_scales_only_the_neuron_parameters_steps():
    """Adam's first step ``-lr g / (|g| + eps)``, times the scale for PLIF's ``w`` and learned
    thresholds only; the state is Adam's, and a traced scale (a sweep's) gives the same."""
    params = {
        "fc1": {"kernel": jnp.ones((2,))},
        "plif_w_fc1": jnp.zeros(()),
        "v_threshold_fc2": jnp.ones(()),
    }
    grads = {
        "fc1": {"kernel": jnp.array([0.5, -2.0])},
        "plif_w_fc1": jnp.array(-1.5),
        "v_threshold_fc2": jnp.array(0.25),
    }
    adam = lambda g: -0.25 * np.asarray(g) / (np.abs(np.asarray(g)) + 0.5)  # noqa: E731

    def first_step(scale):
        opt = agent.make_optimizer(
            LearnerConfig(learning_rate=0.25, adam_eps=0.5, neuron_learning_rate_scale=scale)
        )
        state = opt.init(params)
        assert jax.tree.structure(state) == jax.tree.structure(optax.adam(0.1).init(params))
        return opt.update(grads, state, params)[0]

    for updates in (first_step(0.1), jax.jit(first_step)(jnp.float32(0.1))):
        np.testing.assert_allclose(updates["fc1"]["kernel"], adam(grads["fc1"]["kernel"]), 2e-5)
        np.testing.assert_allclose(updates["plif_w_fc1"], 0.1 * adam(-1.5), rtol=2e-5)
        np.testing.assert_allclose(updates["v_threshold_fc2"], 0.1 * adam(0.25), rtol=2e-5)
    same = first_step(1.0)
    np.testing.assert_allclose(same["plif_w_fc1"], adam(-1.5), rtol=2e-5)


def _atari_replay(num: int = 12, actions: int = 3) -> replay.ReplayState:
    """A one-env replay of random Atari frames, random actions and rewards."""
    rng = np.random.default_rng(5)
    state = replay.init(2 * num, 1, np.zeros((4, 84, 84), np.uint8), num_actions=actions)
    for _ in range(num):
        state = replay.add(
            state,
            jnp.asarray(rng.integers(0, 256, (1, 4, 84, 84)), jnp.uint8),
            jnp.asarray(rng.integers(0, actions, 1), jnp.int32),
            jnp.asarray(rng.normal(size=1), jnp.float32),
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
            jnp.zeros(1, bool),
        )
    return state


@pytest.mark.parametrize("joined", [False, True])
def test_dueling_dqn_streams_stay_apart_through_training(joined):
    """Wang & Ueda's DuelingDQN masks the gradient of fc2's cross-stream blocks (advantages
    <- value stream, value <- advantage stream) for the whole run: after several C-DQN updates
    with their optimiser (Adam eps 5e-5, clip 10, double Q) those weights are still exactly
    zero while the stream blocks moved. ``dueling_joined`` trains them (the check can fail)."""
    network = NetworkConfig(kind="dqn", head="dueling", dueling_joined=joined)
    net = agent.make_network(network, 3, (4, 84, 84))
    cfg = dataclasses.replace(
        C.preset("cdqn").learner, batch_size=4, replay_sampling="uniform", learning_rate=1e-3
    )
    opt = agent.make_optimizer(cfg)
    state = agent.init_train_state(jax.random.key(0), net, opt, jnp.zeros((1, 4, 84, 84)))
    rep = _atari_replay()
    step = jax.jit(lambda s: agent.update(s, rep, network=net, optimizer=opt, config=cfg)[0])
    kernel0 = np.asarray(state.params["fc2"]["kernel"])
    for _ in range(3):
        state = step(state)
    kernel = np.asarray(state.params["fc2"]["kernel"])
    cross = np.concatenate([kernel[512:, :3].ravel(), kernel[:512, 3].ravel()])
    assert not np.concatenate([kernel0[512:, :3].ravel(), kernel0[:512, 3].ravel()]).any()
    assert (kernel[:512, :3] != kernel0[:512, :3]).any()
    assert (kernel[512:, 3] != kernel0[512:, 3]).any()
    if joined:
        assert cross.any()
    else:
        assert not cross.any()


def _shapes(jaxpr) -> set[tuple[int, ...]]:
    """Every shape a value of ``jaxpr`` takes, recursively through loops and custom rules."""
    shapes = {tuple(getattr(v.aval, "shape", ())) for e in jaxpr.eqns for v in e.outvars}
    for eqn in jaxpr.eqns:
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            shapes |= _shapes(sub)
    return shapes


def _sgd_state(net, params) -> agent.TrainState:
    sgd = optax.sgd(1.0)
    return agent.TrainState(
        params=params,
        target_params=jax.tree.map(lambda x: x * 0.9 + 0.01, params),
        opt_state=sgd.init(params),
        key=jax.random.key(4),
        updates=jnp.zeros((), jnp.int32),
        best_params=params,
        best_return=jnp.full((), -jnp.inf),
        best_agent_steps=jnp.full((), -1, jnp.int32),
    )


def test_double_q_argmax_forward_is_not_differentiated():
    """Double DQN's online Q(s', .) only picks a*: the update computes it in a forward pass of
    its own, and the gradient program never runs on the 2B batch [s; s'] (7 + 7 = 14 appears in
    no shape of it), while the loss and the gradient equal those of the former path, one
    differentiated forward over [s; s'] (rebuilt here). C-DQN still differentiates through
    Q(s', .): its program has the 2B batch."""
    batch_size = 7
    net = MLPDSQN(3, time_steps=3, hidden_sizes=(16,), v_threshold=0.2)
    cfg = LearnerConfig(loss="double", batch_size=batch_size)
    rep = _filled_replay(num=32)
    state = _sgd_state(net, net.init(jax.random.key(1), jnp.zeros((1, 4)))["params"])
    new, _, metrics = agent.update(state, rep, network=net, optimizer=optax.sgd(1.0), config=cfg)

    # The former path, on the minibatch the update draws.
    _, sample_key = jax.random.split(state.key)
    slot, env = replay.sample_indices(rep, sample_key, batch_size)
    batch = replay.gather(rep, slot, env, bootstrap_truncated=False)

    def former_loss(params):
        q_next_target = net.apply({"params": state.target_params}, batch.next_obs)
        both = net.apply({"params": params}, jnp.concatenate([batch.obs, batch.next_obs]))
        q, q_next_online = jnp.split(both, 2)
        args = (batch.action, batch.reward, batch.discount, q_next_target, q_next_online)
        return losses.double_dqn_loss(q, *args, gamma=cfg.discount)[0]

    loss, grads = jax.value_and_grad(former_loss)(state.params)
    assert float(metrics["loss"]) == pytest.approx(float(loss), rel=1e-6) and float(loss) > 0
    step = jax.tree.map(lambda a, b: a - b, state.params, new.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), step, grads)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))

    def gradient_program(loss_kind):
        config = LearnerConfig(loss=loss_kind, batch_size=batch_size)

        def grad(s):
            return agent.update(s, rep, network=net, optimizer=optax.sgd(1.0), config=config)

        return _shapes(jax.make_jaxpr(grad)(state).jaxpr)

    doubled = [s for s in gradient_program("double") if 2 * batch_size in s]
    assert not doubled, doubled
    assert any(2 * batch_size in s for s in gradient_program("cdqn"))


@pytest.mark.parametrize("bootstraps", [False, True])
def test_update_follows_truncation_bootstraps(bootstraps):
    """A transition cut by the time limit bootstraps (discount 1) only with
    learner.truncation_bootstraps; without it the target is its reward alone (the authors'
    mask 0 at every done). The update equals the NumPy reference of that discount."""
    kinds = ("nonterminal", "truncated")
    online, target = _as_float32(_np_params(1)), _as_float32(_np_params(2))
    t = _golden_transitions(kinds, online, target)  # truncated: discount 1
    rep = _replay_of(t, kinds)
    net = MLPDQN(ACTIONS, hidden_sizes=(HIDDEN,))
    cfg = LearnerConfig(discount=GAMMA, batch_size=2, truncation_bootstraps=bootstraps)
    sgd = optax.sgd(1.0)
    state = agent.TrainState(
        params=_to_jax(online),
        target_params=_to_jax(target),
        opt_state=sgd.init(_to_jax(online)),
        key=jax.random.key(3),  # draws both transitions (as the golden test)
        updates=jnp.zeros((), jnp.int32),
        best_params=_to_jax(online),
        best_return=jnp.full((), -jnp.inf),
        best_agent_steps=jnp.full((), -1, jnp.int32),
    )
    _, _, metrics = agent.update(state, rep, network=net, optimizer=sgd, config=cfg)
    t64 = jax.tree.map(lambda x: x.astype(np.float64) if x.dtype.kind == "f" else x, t)
    want = {
        bootstrap: _np_update(
            "dqn", online, target, dict(t64, discount=np.array([1.0, float(bootstrap)]))
        )["loss"]
        for bootstrap in (False, True)
    }
    assert want[False] != pytest.approx(want[True], rel=1e-3)
    assert float(metrics["loss"]) == pytest.approx(want[bootstraps], rel=1e-5)


@pytest.mark.parametrize("name", ["cdqn", "cdsqn"])
def test_cdqn_presets_stop_their_50m_schedules_at_10m(name):
    """The README's figures: Wang & Ueda's schedules are written for 50M steps, the presets run
    10M agent steps with the warm-up inside them, so the last step has beta 0.52 and epsilon
    0.1 - 0.09 x 9 / 39 = 0.079; their evaluation games are capped at their 20,000 steps."""
    config = C.preset(name)
    assert agent.schedule_offset(config.learner) == 0
    last = config.run.total_agent_steps
    assert last == 10_000_000
    beta = agent.importance_exponent_at(config.learner, last, config.run.total_agent_steps)
    assert float(beta) == pytest.approx(0.52)
    assert float(agent.epsilon_at(config.learner, last)) == pytest.approx(0.0792308, rel=1e-5)
    assert config.eval.max_episode_agent_steps is None
    assert config.env.max_episode_agent_steps == 20_000  # the evaluation pools' fallback


def test_weight_decay_is_adamw():
    """With learner.weight_decay lambda, the first step is AdamW's (torch.optim.AdamW):
    ``-lr (g / (|g| + eps) + lambda theta)``; lambda 0 is plain Adam."""
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    g = np.array([0.5, -2.0, 0.0])
    for decay in (0.0, 0.1):
        opt = agent.make_optimizer(
            LearnerConfig(learning_rate=0.25, adam_eps=0.5, weight_decay=decay)
        )
        updates, _ = opt.update({"w": jnp.asarray(g)}, opt.init(params), params)
        want = -0.25 * (g / (np.abs(g) + 0.5) + decay * np.asarray(params["w"]))
        np.testing.assert_allclose(updates["w"], want, rtol=2e-5)


def test_pl_sdqn_preset_is_sun_et_al():
    """The pl-sdqn preset builds PL-SDQN: PopNorm, T = 16, tau 2, piecewise-quadratic surrogate
    (alpha 2), detached hard reset, rate readout, AdamW lr 1e-4 with decay 0.01; every value
    it sets is cited to their code."""
    config = C.validate(C.preset("pl-sdqn"))
    net = agent.make_network(config.network, 6, (4, 84, 84))
    assert isinstance(net, DSQN)
    assert (net.norm, net.time_steps, net.tau, net.surrogate, net.surrogate_alpha) == (
        "popnorm",
        16,
        2.0,
        "piecewise_quadratic",
        2.0,
    )
    assert net.detach_reset and net.v_reset == 0.0 and net.readout == "rate"
    assert (config.learner.learning_rate, config.learner.weight_decay) == (1e-4, 0.01)
    sources = C.preset_sources("pl-sdqn")
    assert all("Sun et al. 2022" in source for source in sources.values())
    assert {"network.norm", "network.time_steps", "learner.weight_decay"} <= set(sources)


@pytest.mark.parametrize(
    "name, base, network_class, obs_shape",
    [
        ("cartpole-pl-sdqn", "cartpole-dsqn", MLPDSQN, (4,)),
        ("minatar-pl-sdqn", "minatar-dsqn", MinAtarDSQN, (10, 10, 4)),
    ],
)
def test_pl_sdqn_suite_presets_are_sun_et_al_on_the_suites_protocol(
    name, base, network_class, obs_shape
):
    """The CartPole and MinAtar PL-SDQN presets: pl-sdqn's network and optimiser (every value
    as in pl-sdqn, cited to Sun et al.), on the suite's network shape, env, protocol and budget
    (every other value as the suite's spiking preset)."""
    config, sun, suite = C.validate(C.preset(name)), C.preset("pl-sdqn"), C.preset(base)
    net = agent.make_network(config.network, 3, obs_shape)
    assert type(net) is network_class and net.norm == "popnorm" and net.time_steps == 16
    sun_fields = {
        "network." + f
        for f in ("time_steps", "tau", "v_threshold", "v_reset", "decay_input", "detach_reset")
        + ("surrogate", "surrogate_alpha", "readout", "norm")
    } | {"learner.learning_rate", "learner.weight_decay", "learner.adam_eps"}
    sources = C.preset_sources(name)
    for field in sun_fields:
        section, key = field.split(".")
        value = getattr(getattr(config, section), key)
        assert value == getattr(getattr(sun, section), key), field
        assert "Sun et al. 2022" in sources[field], field
    for section in ("env", "eval", "run"):
        assert getattr(config, section) == getattr(suite, section), section
    same = {
        f.name for f in dataclasses.fields(config.learner) if f"learner.{f.name}" not in sun_fields
    }
    for key in same:
        assert getattr(config.learner, key) == getattr(suite.learner, key), key
    assert config.network.hidden_sizes == suite.network.hidden_sizes
