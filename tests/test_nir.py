"""dsqn.models.nir: spiking Q-networks written as NIR graphs and run back on the dsqn engine.

The mapping is checked against NIR's own equations, simulated here by a forward-Euler loop in
NumPy written from NIR's documentation (``tau dv/dt = (v_leak - v) + r I``, fire where
``v > v_threshold``, reset to ``v_reset``), not by dsqn's engine; the round trip
``from_nir(to_nir(network))`` against the flax networks' own Q-values and spike counts.
"""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nir = pytest.importorskip("nir")

import dsqn  # noqa: E402
from dsqn import cli, spiking  # noqa: E402
from dsqn.envs import make_seed_pool  # noqa: E402
from dsqn.models import conversion  # noqa: E402
from dsqn.models import nir as dn  # noqa: E402
from dsqn.models.networks import (  # noqa: E402
    DQN,
    DSQN,
    MLPDQN,
    MLPDSQN,
    MinAtarDQN,
    MinAtarDSQN,
    is_neuron_parameter,
)

# ----------------------------------------------------------------------------- NIR's equations


def euler_neuron(node, currents: np.ndarray, dt: float = 1.0):
    """NIR's LIF / IF / LI / I node by forward Euler, float32, ``currents [T, ...]``: returns
    the node's output over time (spikes, or the membrane for LI and I). The membrane starts at
    ``v_reset`` (LI: ``v_leak``; I: 0)."""
    f = np.float32
    if isinstance(node, nir.LIF | nir.IF):
        v = np.broadcast_to(np.asarray(node.v_reset, f), currents.shape[1:]).copy()
    elif isinstance(node, nir.LI):
        v = np.broadcast_to(np.asarray(node.v_leak, f), currents.shape[1:]).copy()
    else:
        v = np.zeros(currents.shape[1:], f)
    out = []
    for current in currents.astype(f):
        if isinstance(node, nir.LIF | nir.LI):
            k = f(dt) / np.asarray(node.tau, f)
            v = v + k * (np.asarray(node.v_leak, f) - v + np.asarray(node.r, f) * current)
        else:
            v = v + f(dt) * np.asarray(node.r, f) * current
        if isinstance(node, nir.LI | nir.I):
            out.append(v.copy())
            continue
        z = (v > np.asarray(node.v_threshold, f)).astype(f)
        v = np.where(z > 0, np.asarray(node.v_reset, f), v)
        out.append(z)
    return np.stack(out)


def lif_layer(**options):
    """A one-layer MLPDSQN-like neuron node, exported through the public mapping."""
    network = MLPDSQN(2, hidden_sizes=(8,), time_steps=12, **options)
    params = network.init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    return network, params, dn.to_nir(network, params)


# ----------------------------------------------------------------------------- the mapping


def test_the_paper_neuron_is_written_with_its_values():
    """tau = 2, V_th = 1, hard reset to 0, decay_input: NIR's tau 2, r 1, v_leak 0, v_reset 0,
    v_threshold the float32 just below 1 (NIR fires on >, dsqn on >=)."""
    node = lif_layer()[2].nodes["fc1_lif"]
    assert isinstance(node, nir.LIF)
    np.testing.assert_array_equal(node.tau, np.full(8, 2.0))
    np.testing.assert_array_equal(node.r, np.ones(8))
    np.testing.assert_array_equal(node.v_leak, np.zeros(8))
    np.testing.assert_array_equal(node.v_reset, np.zeros(8))
    np.testing.assert_array_equal(node.v_threshold, np.full(8, 0.99999994, np.float32))


def test_decay_input_false_scales_r_and_dt_scales_tau():
    network = MLPDSQN(2, hidden_sizes=(8,), tau=4.0, decay_input=False, v_reset=0.5)
    params = network.init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    node = dn.to_nir(network, params, dt=1e-3).nodes["fc1_lif"]
    np.testing.assert_allclose(node.tau, np.full(8, 4e-3), rtol=1e-7)
    np.testing.assert_array_equal(node.r, np.full(8, 4.0))
    np.testing.assert_array_equal(node.v_leak, np.full(8, 0.5))
    np.testing.assert_array_equal(node.v_reset, np.full(8, 0.5))


def test_if_and_plif_values():
    node = lif_layer(neuron="if")[2].nodes["fc1_if"]
    assert isinstance(node, nir.IF)
    np.testing.assert_array_equal(node.r, np.ones(8))
    network, params, graph = lif_layer(neuron="plif", tau=3.0)
    w = float(params["plif_w_fc1"])
    np.testing.assert_allclose(graph.nodes["fc1_lif"].tau, np.full(8, 1 + np.exp(-w)), rtol=1e-6)
    np.testing.assert_allclose(graph.nodes["fc1_lif"].tau, 3.0, rtol=1e-6)


def test_threshold_mapping_is_exact_in_float32():
    v = np.float32(1.0)
    assert dn.nir_threshold(v) < v and not v > dn.nir_threshold(np.float32(1.5))
    assert v > dn.nir_threshold(v) and not np.nextafter(v, np.float32(0)) > dn.nir_threshold(v)
    np.testing.assert_array_equal(dn.dsqn_threshold(dn.nir_threshold([0.3, 1.0, 7.0])),
                                  np.float32([0.3, 1.0, 7.0]))  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"decay_input": False},
        {"neuron": "if"},
        {"tau": 1.5, "v_reset": 0.25, "v_threshold": 0.8},
        {"decay_input": False, "v_reset": -0.3, "tau": 3.0},
    ],
    ids=["paper", "no-decay-input", "if", "tau-1.5-reset-0.25", "no-decay-reset--0.3"],
)
def test_nir_equations_give_dsqns_spikes(options):
    """The exported node, simulated by NIR's Euler equations, fires exactly where dsqn's
    neuron does, on currents that make every neuron fire often (and sometimes land on the
    threshold: multiples of 0.25)."""
    network, params, graph = lif_layer(**options)
    currents = np.round(
        np.asarray(jax.random.uniform(jax.random.key(3), (40, 5, 8), minval=-0.5, maxval=2.0)) * 4
    ) / np.float32(4)
    kind = "if" if network.neuron == "if" else "lif"
    node = graph.nodes[f"fc1_{kind}"]
    expected = euler_neuron(node, currents)
    neuron_options = dict(v_threshold=network.v_threshold, v_reset=network.v_reset)
    if kind == "if":
        spikes = spiking.integrate_and_fire(jnp.asarray(currents), **neuron_options)
    else:
        spikes = spiking.lif(
            jnp.asarray(currents), tau=network.tau, decay_input=network.decay_input,
            **neuron_options,
        )  # fmt: skip
    assert 0.1 < expected.mean() < 0.9
    np.testing.assert_array_equal(np.asarray(spikes), expected)


def test_a_wrong_mapping_is_seen_by_the_equations():
    """The check above is not blind: tau written as 1/tau, or the threshold left at V_th
    (NIR's > against dsqn's >=), gives other spikes."""
    network, params, graph = lif_layer(tau=4.0)
    node = graph.nodes["fc1_lif"]
    currents = np.full((20, 1, 8), 1.0, np.float32)  # decays to V_th = 1 only in the limit
    currents[:, :, 4:] = 4.0  # charge 0, 1, ... lands on V_th exactly at the first step
    spikes = np.asarray(spiking.lif(jnp.asarray(currents), tau=4.0))
    np.testing.assert_array_equal(euler_neuron(node, currents), spikes)
    inverted = nir.LIF(1 / node.tau, node.r, node.v_leak, node.v_threshold, node.v_reset)
    assert not np.array_equal(euler_neuron(inverted, currents), spikes)
    at_threshold = nir.LIF(node.tau, node.r, node.v_leak, np.ones(8, np.float32), node.v_reset)
    assert not np.array_equal(euler_neuron(at_threshold, currents), spikes)


@pytest.mark.parametrize("r_is_tau", [False, True], ids=["r-free", "r-equals-tau"])
def test_from_nir_runs_nirs_lif_equations(r_is_tau):
    """A LIF node of per-neuron values dsqn never writes (v_leak != v_reset, any r, dt = 0.5),
    run by ``from_nir``, fires where NIR's Euler equations do."""
    rng = np.random.default_rng(0)
    n, f = 6, np.float32
    tau = rng.uniform(1.0, 4.0, n).astype(f)
    node = nir.LIF(
        tau=tau, r=tau / f(0.5) if r_is_tau else rng.uniform(0.5, 2.0, n).astype(f),
        v_leak=rng.uniform(-0.2, 0.4, n).astype(f), v_threshold=rng.uniform(0.8, 1.2, n).astype(f),
        v_reset=rng.uniform(-0.3, 0.1, n).astype(f),
    )  # fmt: skip
    graph = nir.NIRGraph(
        nodes={"input": nir.Input({"input": np.array([n])}), "lif": node,
               "output": nir.Output({"output": np.array([n])})},
        edges=[("input", "lif"), ("lif", "output")],
    )  # fmt: skip
    currents = rng.uniform(-0.5, 1.5, (60, 3, n)).astype(f)
    expected = euler_neuron(node, currents, dt=0.5)
    assert 0.1 < expected.mean() < 0.9
    imported = dn.from_nir(graph, dt=0.5)
    spikes = imported.apply(imported.params, jnp.asarray(currents))
    np.testing.assert_array_equal(np.asarray(spikes), expected)


# ----------------------------------------------------------------------------- round trip

PER_NEURON = {"tau": np.linspace(1.5, 4.0, 16), "v_threshold": np.linspace(0.6, 1.2, 16)}
MLP_VARIANTS = [  # every neuron, readout and head, few compilations
    {},
    {"decay_input": False, "head": "dueling", **PER_NEURON},
    {"neuron": "plif", "tau": 3.0, "learn_threshold": True, "head": "shared_bias"},
    {"readout": "spike_rate", "head": "dueling", "v_threshold": 0.7},
    {"readout": "membrane_max", "neuron": "plif"},
    {"readout": "membrane_last", "head": "dueling", "neuron": "if"},
]


def perturbed(params, key):
    """Parameters moved off their initial values, as training would: kernels scaled up so that
    every layer fires, biases, learned time constants and thresholds shifted."""

    def move(path, x):
        name = path[-1].key
        stream = zlib.crc32(jax.tree_util.keystr(path).encode())
        noise = jax.random.normal(jax.random.fold_in(key, stream), x.shape)
        if name == "kernel":
            return 3 * x + 0.1 * noise * jnp.std(x)
        return x + (0.1 if is_neuron_parameter(name) else 0.2) * noise

    return jax.tree_util.tree_map_with_path(move, params)


def q_and_spike_counts(network, params, obs):
    """The flax network's Q-values and per-layer spike counts, from one jitted call."""
    q, state = jax.jit(network.apply, static_argnames="mutable")(
        {"params": params}, obs, mutable=("intermediates",)
    )
    counts = {
        k.removeprefix("spikes_"): np.asarray(v[0]) for k, v in state["intermediates"].items()
    }
    return np.asarray(q), counts


@pytest.mark.parametrize(
    "options",
    MLP_VARIANTS,
    ids=["paper", "no-decay-per-neuron-dueling", "plif-threshold-shared-bias",
         "spike-rate-dueling", "membrane-max-plif", "membrane-last-if-dueling"],
)  # fmt: skip
def test_round_trip_of_mlps(options, tmp_path):
    """``from_nir(to_nir(network))`` (through a .nir file) gives the network's Q-values and
    every layer's spike counts; per-neuron parameters are written per neuron."""
    network = MLPDSQN(3, hidden_sizes=(16, 16), time_steps=10, **options)
    obs = jax.random.normal(jax.random.key(1), (32, 4)) * 2
    params = perturbed(network.init(jax.random.key(0), obs)["params"], jax.random.key(2))
    graph = dn.to_nir(network, params)
    if np.ndim(network.tau) == 1:  # per neuron: one value per neuron in the graph
        np.testing.assert_allclose(graph.nodes["fc2_lif"].tau, network.tau, rtol=1e-7)
        np.testing.assert_array_equal(graph.nodes["fc1_lif"].r, np.float32(network.tau))
        np.testing.assert_array_equal(
            graph.nodes["fc2_lif"].v_threshold, dn.nir_threshold(network.v_threshold)
        )
    nir.write(tmp_path / "net.nir", graph)
    imported = dn.from_nir(tmp_path / "net.nir")
    q, counts = q_and_spike_counts(network, params, obs)
    apply = jax.jit(imported.apply, static_argnames=("time_steps", "spikes"))
    outputs, trains = apply(imported.params, obs, time_steps=10, spikes=True)
    readout = imported.metadata["dsqn_readout"]
    np.testing.assert_allclose(dn.decode(outputs, readout), q, rtol=1e-5, atol=1e-6)
    assert counts["fc1"].sum() > 0 and counts["fc2"].sum() > 0
    for layer, count in counts.items():
        kind = "if" if network.neuron == "if" else "lif"
        np.testing.assert_array_equal(np.asarray(trains[f"{layer}_{kind}"].sum(0)), count)


def test_imported_function_jits_and_vmaps():
    network, params, graph = lif_layer()
    imported = dn.from_nir(graph)
    obs = jax.random.normal(jax.random.key(1), (4, 3))
    apply = jax.jit(imported.apply, static_argnames=("time_steps", "spikes"))
    direct = imported.apply(imported.params, obs, time_steps=12)
    np.testing.assert_array_equal(apply(imported.params, obs, time_steps=12), direct)
    sequence = jnp.broadcast_to(obs, (12, *obs.shape))  # the same input as a sequence
    np.testing.assert_array_equal(apply(imported.params, sequence), direct)
    stacked = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), imported.params)
    both = jax.vmap(lambda p: imported.apply(p, obs, time_steps=12))(stacked)
    np.testing.assert_array_equal(both[0], direct)
    assert not np.array_equal(both[1], direct)


@pytest.fixture(scope="module")
def dsqn_case():
    """A DSQN (dueling head, T = 4) whose every layer fires, two frames, and its Q-values and
    spike counts computed by the flax network."""
    network = DSQN(3, time_steps=4, head="dueling")
    obs = jax.random.randint(jax.random.key(1), (2, 4, 84, 84), 0, 256).astype(jnp.uint8)
    return firing_case(network, obs, kernel_scale=8)


def firing_case(network, obs, kernel_scale: float):
    """``network`` initialised on ``obs`` with its kernels scaled by ``kernel_scale`` so that
    every layer fires (at initialisation the deep layers are silent): the network, its
    parameters, the observations, and the Q-values and spike counts the flax network computes."""
    params = network.init(jax.random.key(0), obs)["params"]
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: x * kernel_scale if path[-1].key == "kernel" else x, params
    )
    apply = jax.jit(network.apply, static_argnames="mutable")
    q, state = apply({"params": params}, obs, mutable=("intermediates",))
    counts = {
        k.removeprefix("spikes_"): np.asarray(v[0]) for k, v in state["intermediates"].items()
    }
    for layer, count in counts.items():
        assert count.mean() > 0.1, layer
    return network, params, np.asarray(obs), q, counts


def channels_last(counts: np.ndarray) -> np.ndarray:
    """Spike counts of a conv layer, NIR's ``[B, C, H, W]`` -> dsqn's ``[B, H, W, C]``."""
    return counts.transpose(0, 2, 3, 1) if counts.ndim == 4 else counts


def test_round_trip_of_a_dsqn(dsqn_case):
    """The Atari DSQN (conv1 once, channels-first graph, permuted fc1, 1/255 folded): the same
    spike counts in every layer and the same Q-values."""
    network, params, obs, q, counts = dsqn_case
    imported = dn.from_nir(dn.to_nir(network, params))
    apply = jax.jit(imported.apply, static_argnums=(2, 3))
    outputs, trains = apply(imported.params, jnp.asarray(obs), 4, True)  # uint8 frames
    np.testing.assert_allclose(dn.decode(outputs), q, rtol=1e-5, atol=1e-5)
    for layer, count in counts.items():
        got = channels_last(np.asarray(trains[f"{layer}_lif"].sum(0)))
        np.testing.assert_array_equal(got, count)


@pytest.fixture(scope="module")
def minatar_case():
    """A MinAtar DSQN (T = 8) whose layers fire, binary frames, and its Q-values and spike
    counts computed by the flax network."""
    obs = jax.random.bernoulli(jax.random.key(2), 0.2, (3, 10, 10, 6))
    return firing_case(MinAtarDSQN(5, time_steps=8), obs, kernel_scale=6)


def test_round_trip_of_a_minatar_dsqn(minatar_case):
    """MinAtar's DSQN (one conv layer, the frame read channels-first): the same spike counts
    in every layer and the same Q-values."""
    network, params, obs, q, counts = minatar_case
    graph = dn.to_nir(network, params)
    assert tuple(graph.nodes["input"].input_type["input"]) == (6, 10, 10)
    assert list(graph.nodes) == [
        "conv1", "conv1_lif", "flatten", "fc1", "fc1_lif", "fc2", "input", "output"
    ]  # fmt: skip
    imported = dn.from_nir(graph)
    apply = jax.jit(imported.apply, static_argnums=(2, 3))
    chw = jnp.asarray(obs.transpose(0, 3, 1, 2), jnp.float32)
    outputs, trains = apply(imported.params, chw, 8, True)
    np.testing.assert_allclose(dn.decode(outputs), q, rtol=1e-5, atol=1e-5)
    for layer, count in counts.items():
        got = channels_last(np.asarray(trains[f"{layer}_lif"].sum(0)))
        np.testing.assert_array_equal(got, count)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "network, message",
    [
        (MLPDQN(2, hidden_sizes=(8,)), "'fc1' is followed by a ReLU"),
        (DQN(2), "'conv1' is followed by a ReLU"),
        (MLPDSQN(2, hidden_sizes=(8,), v_reset=None), "'fc1'.*soft reset"),
        (conversion.ConvertedMLPSNN(2, hidden_sizes=(8,)), "soft reset"),
        (MLPDSQN(2, hidden_sizes=(8,), readout="membrane_max", head="dueling"), "'out'"),
        (MinAtarDQN(3), "MinAtarDQN: layer 'conv1' is followed by a ReLU"),
        (conversion.ConvertedMinAtarSNN(3), "soft reset"),
        (MinAtarDSQN(3, norm="popnorm"), "'conv1'.*network.norm 'popnorm'"),
        (MLPDSQN(2, hidden_sizes=(8,), norm="popnorm"), "'fc1'.*network.norm 'popnorm'"),
    ],
    ids=[
        "mlp-dqn", "dqn", "soft-reset", "converted", "dueling-after-max", "minatar-dqn",
        "converted-minatar", "minatar-popnorm", "mlp-popnorm",
    ],
)  # fmt: skip
def test_what_nir_cannot_express_is_refused(network, message):
    if isinstance(network, DQN):
        obs = jnp.zeros((1, 4, 84, 84))
    elif isinstance(network, MinAtarDQN | MinAtarDSQN | conversion.ConvertedMinAtarSNN):
        obs = jnp.zeros((1, 10, 10, 4))
    else:
        obs = jnp.zeros((1, 3))
    params = network.init(jax.random.key(0), obs)["params"]
    with pytest.raises(dn.NIRExportError, match=message):
        dn.to_nir(network, params)


def test_unsupported_nodes_and_cycles_are_refused():
    lif = nir.LIF(np.ones(2), np.ones(2), np.zeros(2), np.ones(2))
    pool = nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input({"input": np.array([1, 4, 4])}), "pool": pool,
               "output": nir.Output({"output": np.array([1, 2, 2])})},
        edges=[("input", "pool"), ("pool", "output")], type_check=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="node 'pool' is a SumPool2d"):
        dn.from_nir(graph)
    loop = nir.NIRGraph(
        nodes={"input": nir.Input({"input": np.array([2])}), "lif": lif,
               "w": nir.Linear(np.eye(2)), "output": nir.Output({"output": np.array([2])})},
        edges=[("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
        type_check=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="cycle"):
        dn.from_nir(loop)


def test_export_refuses_a_relu_network_and_writes_nothing(tiny_cartpole_dqn_run, tmp_path, capsys):
    out = tmp_path / "agent.nir"
    assert cli.main(["export", str(tiny_cartpole_dqn_run), "--out", str(out)]) == 2
    assert "'fc1' is followed by a ReLU" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())
    assert cli.main(["export", str(tiny_cartpole_dqn_run), "--out", str(out), "--dt", "0"]) == 2
    assert "--dt must be a finite number > 0, got 0.0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- another simulator
#
# A trained agent leaves JAX: ``dsqn export`` writes its NIR graph, and snnTorch, through its
# own NIR importer (``snntorch.import_nir.import_from_nir``), runs it to dsqn's spikes and
# Q-values.
#
# snnTorch 1.0's importer discretises NIR's LIF with a fixed ``dt = 1e-4`` (``beta = 1 - dt /
# tau``) and, for ``r dt / tau != 1``, divides the threshold by it instead of scaling the input;
# its neuron (``Leaky``, reset to zero, ``reset_delay=False``) is ``U[t] = beta U[t-1] + I[t]``,
# spike where ``U[t] > threshold``, then ``U = 0``. A graph exported with ``dt = 1e-4`` is then
# dsqn's LIF exactly, with the membrane scaled by ``tau`` for decay_input (threshold ``tau V_th``).
# Its importer reads NIR's ``IF`` as a leaky neuron (``beta = 0.9``, reset by subtraction), so the
# IF ablation is not checked here. Its ``Flatten`` passes NIR's per-sample ``start_dim`` to torch,
# which counts the batch axis: the Atari graph is run on one unbatched frame at a time.

SNNTORCH_DT = 1e-4

TINY_CARTPOLE_DSQN = [
    "train", "cartpole-dsqn", "--seeds", "0",
    "--run.total_agent_steps", "600",
    "--run.log_period_agent_steps", "300",
    "--run.checkpoint_period_agent_steps", "300",
    "--eval.period_agent_steps", "300",
    "--eval.episodes", "2",
    "--eval.max_episode_agent_steps", "30",
    "--learner.warmup_agent_steps", "100",
    "--learner.replay_capacity_transitions", "1000",
    "--network.hidden_sizes", "32", "32",
    "--no-progress",
]  # fmt: skip


def run_snntorch(graph, frames: np.ndarray, time_steps: int, *, batched: bool = True):
    """``graph`` imported by snnTorch, each observation presented for ``time_steps`` steps:
    outputs ``[B, T, ...]`` and every ``Leaky`` layer's spike counts ``{node: [B, ...]}``."""
    snn = pytest.importorskip("snntorch")
    torch = pytest.importorskip("torch")
    import_nir = pytest.importorskip("snntorch.import_nir")
    net = import_nir.import_from_nir(graph)
    leaky = {n: m for n, m in net.named_modules() if isinstance(m, snn.Leaky)}
    spikes: dict[str, list] = {}
    for name, module in leaky.items():
        module.register_forward_hook(
            lambda _m, _i, out, name=name: spikes.setdefault(name, []).append(out.detach())
        )
    batches = [frames] if batched else [f for f in frames]  # noqa: C416
    outputs, counts = [], {n: [] for n in leaky}
    with torch.no_grad():
        for batch in batches:
            for module in leaky.values():  # a new state for every batch
                module.mem = torch.zeros(0)
            spikes.clear()
            x = torch.from_numpy(np.asarray(batch, np.float32))
            steps = [net(x) for _ in range(time_steps)]
            outputs.append(torch.stack([s[0] if isinstance(s, tuple) else s for s in steps], -2))
            for name in leaky:
                counts[name].append(torch.stack(spikes[name]).sum(0))
    join = (lambda xs: torch.cat(xs)) if batched else (lambda xs: torch.stack(xs))
    return join(outputs).numpy(), {n: join(c).numpy() for n, c in counts.items()}


@pytest.fixture(scope="module")
def trained_agent(tmp_path_factory):
    """A real, tiny `cartpole-dsqn` run (one seed, 600 agent steps), exported by the CLI, and
    observations recorded from its agent playing."""
    run_dir = tmp_path_factory.mktemp("nir-runs") / "dsqn"
    assert cli.main([*TINY_CARTPOLE_DSQN, "--run-dir", str(run_dir)]) == 0
    out = run_dir.parent / "agent.nir"
    args = ["export", str(run_dir), "--checkpoint", "final", "--dt", str(SNNTORCH_DT)]
    assert cli.main([*args, "--out", str(out)]) == 0
    agent = dsqn.load_agent(run_dir, "final")
    env = make_seed_pool(agent.config, 8, [agent.seed], train=False)
    obs, _ = env.reset()
    frames = []
    for _ in range(8):
        frames.append(obs)
        obs, *_ = env.step(np.asarray(agent.act(obs)))
    env.close()
    frames = np.concatenate(frames)
    q, counts = q_and_spike_counts(agent.network, agent.params, jnp.asarray(frames))
    return agent, out, frames, q, counts


def test_snntorch_runs_an_exported_cartpole_agent_to_its_q_values(trained_agent):
    """The trained agent's graph, read from the file ``dsqn export`` wrote, run by snnTorch
    on recorded observations: every layer's spike counts equal dsqn's, and the mean output
    over the T steps is the agent's Q (float32 rounding: 1e-5)."""
    agent, path, frames, q, expected = trained_agent
    graph = nir.read(path)
    time_steps = int(graph.metadata["dsqn_time_steps"])
    outputs, counts = run_snntorch(graph, frames, time_steps)
    assert set(counts) == {f"{layer}_lif" for layer in expected}
    for layer, count in expected.items():
        assert 0.05 < count.mean() / time_steps < 0.95, layer  # the layers fire, not always
        np.testing.assert_array_equal(counts[f"{layer}_lif"], count)
    np.testing.assert_allclose(q, agent.q(frames), rtol=1e-6)
    np.testing.assert_allclose(outputs.mean(axis=1), q, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(outputs.mean(axis=1).argmax(-1), np.asarray(agent.act(frames)))
    # ... and dsqn's own importer reads the file back to the agent.
    imported = dn.from_nir(path)
    np.testing.assert_allclose(imported.q(frames), q, rtol=1e-5, atol=1e-6)


def test_a_wrong_mapping_changes_snntorchs_spikes(trained_agent):
    """The check above fails on a wrong mapping: tau written as 1/tau (or in steps, not in
    units of dt) gives snnTorch other spikes."""
    _, path, frames, _, counts = trained_agent
    time_steps = int(nir.read(path).metadata["dsqn_time_steps"])
    expected = counts["fc1"]
    for wrong in (lambda tau: 1 / tau, lambda tau: tau / SNNTORCH_DT):
        broken = nir.read(path)
        broken.nodes["fc1_lif"].tau = wrong(broken.nodes["fc1_lif"].tau).astype(np.float32)
        _, counts = run_snntorch(broken, frames, time_steps)
        assert not np.array_equal(counts["fc1_lif"], expected)


def test_snntorch_runs_an_exported_dsqn(dsqn_case):
    """The Atari DSQN's graph (Conv2d, Flatten, Affine, LIF; dueling head folded) run by
    snnTorch frame by frame: dsqn's spike counts in every layer and its Q-values."""
    network, params, obs, q, expected = dsqn_case
    graph = dn.to_nir(network, params, dt=SNNTORCH_DT)
    outputs, counts = run_snntorch(graph, obs, network.time_steps, batched=False)
    for layer, count in expected.items():
        got = counts[f"{layer}_lif"]
        got = got.transpose(0, 2, 3, 1) if got.ndim == 4 else got
        np.testing.assert_array_equal(got, count)
    np.testing.assert_allclose(outputs.mean(axis=1), q, rtol=1e-5, atol=1e-5)


def test_snntorch_runs_an_exported_minatar_dsqn(minatar_case):
    """MinAtar's DSQN graph run by snnTorch, one channels-first frame at a time: dsqn's spike
    counts in every layer and its Q-values."""
    network, params, obs, q, expected = minatar_case
    graph = dn.to_nir(network, params, dt=SNNTORCH_DT)
    frames = obs.transpose(0, 3, 1, 2)
    outputs, counts = run_snntorch(graph, frames, network.time_steps, batched=False)
    for layer, count in expected.items():
        np.testing.assert_array_equal(channels_last(counts[f"{layer}_lif"]), count)
    np.testing.assert_allclose(outputs.mean(axis=1), q, rtol=1e-5, atol=1e-5)


def test_a_graph_written_by_snntorch_runs_on_dsqn():
    """snnTorch's ``export_to_nir`` of a network of its own (Leaky neurons reset to zero, one
    time constant per neuron, written at its dt = 1e-4): dsqn's ``from_nir`` gives the spikes
    snnTorch itself computes, in both layers."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    export_nir = pytest.importorskip("snntorch.export_nir")
    torch.manual_seed(0)

    def leaky(n, beta, threshold, **options):
        return snn.Leaky(
            beta=torch.full((n,), beta), threshold=torch.full((n,), threshold),
            reset_mechanism="zero", reset_delay=False, init_hidden=True, **options,
        )  # fmt: skip

    net = torch.nn.Sequential(
        torch.nn.Linear(4, 16), leaky(16, 0.8, 1.0), torch.nn.Linear(16, 3),
        leaky(3, 0.6, 0.5, output=True),
    )  # fmt: skip
    with torch.no_grad():
        net[2].weight *= 3
    x = torch.randn(30, 5, 4) * 2
    graph = export_nir.export_to_nir(net, x[0, 0])
    hidden = []
    net[1].register_forward_hook(lambda _m, _i, out: hidden.append(out.detach()))
    with torch.no_grad():
        out = torch.stack([net(x_t)[0] for x_t in x]).numpy()
    hidden = torch.stack(hidden).numpy()
    assert 0.05 < hidden.mean() < 0.95 and 0.05 < out.mean() < 0.95

    imported = dn.from_nir(graph, dt=1e-4)
    assert [type(graph.nodes[n]).__name__ for n in imported.order] == [
        "Input", "Affine", "LIF", "Affine", "LIF", "Output"
    ]  # fmt: skip
    outputs, trains = imported.apply(imported.params, jnp.asarray(x.numpy()), spikes=True)
    np.testing.assert_array_equal(np.asarray(outputs), out)
    np.testing.assert_array_equal(np.asarray(trains["1"]), hidden)


@pytest.mark.parametrize(
    "options",
    [
        {"neuron": "plif", "tau": 3.0, "learn_threshold": True, "head": "dueling"},
        {"decay_input": False, "readout": "spike_rate", "head": "dueling"},
    ],
    ids=["plif-learned-threshold-dueling", "no-decay-input-spike-rate-dueling"],
)
def test_snntorch_runs_plif_and_the_other_readouts(options):
    """Learned time constants and thresholds (their values, one per layer), decay_input=False
    (r = tau) and the spiking readout with the dueling map as a Linear node after it."""
    network = MLPDSQN(3, hidden_sizes=(16, 12), time_steps=10, **options)
    obs = jax.random.normal(jax.random.key(1), (32, 4)) * 2
    params = perturbed(network.init(jax.random.key(0), obs)["params"], jax.random.key(2))
    q, expected = q_and_spike_counts(network, params, obs)
    graph = dn.to_nir(network, params, dt=SNNTORCH_DT)
    outputs, counts = run_snntorch(graph, np.asarray(obs), network.time_steps)
    for layer, count in expected.items():
        assert count.sum() > 0, layer
        np.testing.assert_array_equal(counts[f"{layer}_lif"], count)
    np.testing.assert_allclose(outputs.mean(axis=1), q, rtol=1e-5, atol=1e-5)
