"""dsqn.analyses.video: spike rasters against a hand-written LIF, and real MP4 files of played
games."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CARTPOLE_DQN

from dsqn import config as C
from dsqn.analyses.video import decision_activity
from dsqn.cli import main
from dsqn.models import networks

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")


def _lif_numpy(currents: np.ndarray, tau: float, v_th: float, v_reset: float) -> np.ndarray:
    """Reference LIF (decay_input, hard reset), one step at a time."""
    v = np.full(currents.shape[1:], v_reset)
    spikes = []
    for x in currents:
        v = v + (x - (v - v_reset)) / tau
        s = (v >= v_th).astype(np.float32)
        v = np.where(s > 0, v_reset, v)
        spikes.append(s)
    return np.stack(spikes)


@pytest.mark.parametrize("neuron,learn_threshold", [("lif", False), ("plif", True)])
def test_mlp_raster_matches_a_hand_written_lif_and_the_sown_counts(neuron, learn_threshold):
    options = dict(time_steps=6, tau=2.0, neuron=neuron, learn_threshold=learn_threshold)
    net_cfg = C.NetworkConfig(hidden_sizes=(16, 8), **options)
    module = networks.MLPDSQN(num_actions=2, hidden_sizes=(16, 8), **options)
    obs = jax.random.normal(jax.random.key(1), (3, 4)) * 3
    params = module.init(jax.random.key(0), obs)["params"]
    tau, v_th = 2.0, 1.0
    if neuron == "plif":  # a learnt time constant and threshold other than the initial ones
        params = {**params, "plif_w_fc1": jnp.asarray(0.5), "v_threshold_fc1": jnp.asarray(0.7)}
        tau, v_th = 1 + np.exp(-0.5), 0.7  # 1 / sigmoid(0.5)
    q, rates, raster = decision_activity(module, net_cfg, params, obs)
    np.testing.assert_array_equal(q, module.apply({"params": params}, obs))
    currents = np.asarray(obs @ params["fc1"]["kernel"]) + np.asarray(params["fc1"]["bias"])
    expected = _lif_numpy(np.broadcast_to(currents, (6, *currents.shape)), tau, v_th, 0.0)
    np.testing.assert_allclose(raster, expected)
    assert 0 < expected.mean() < 1  # some neurons fire, not all
    np.testing.assert_allclose(rates["fc1"], expected.mean(axis=(0, 2)), rtol=1e-6)
    assert set(rates) == {"fc1", "fc2"}


def test_atari_raster_is_the_time_batched_fc1_layer():
    net_cfg = C.NetworkConfig(time_steps=2)
    module = networks.DSQN(num_actions=4, time_steps=2)
    obs = jax.random.randint(jax.random.key(2), (1, 4, 84, 84), 0, 256).astype(jnp.uint8)
    params = jax.jit(module.init)(jax.random.key(0), obs)["params"]
    # Biases that make fc1 fire at different steps (an initialised network barely spikes).
    bias = jax.random.uniform(jax.random.key(3), (512,), minval=0.5, maxval=3.0)
    params = {**params, "fc1": {**params["fc1"], "bias": bias}}
    forward = jax.jit(lambda p, o: decision_activity(module, net_cfg, p, o))
    _, rates, raster = forward(params, obs)
    assert raster.shape == (2, 1, 512)
    # The sown counts (behind the firing rates) agree with the recomputed raster.
    assert 0.2 < float(np.asarray(raster).mean()) < 0.8
    np.testing.assert_allclose(rates["fc1"], np.asarray(raster).mean(axis=(0, 2)), rtol=1e-6)
    assert set(rates) == {"conv1", "conv2", "conv3", "fc1"}


# The shared tiny CartPole run's settings, with the spiking network at T = 4.
TINY_DSQN = ["train", "cartpole-dsqn", *TINY_CARTPOLE_DQN[2:], "--network.time_steps", "4"]


# Reading the videos back runs ffmpeg in a subprocess: JAX's fork warning does not apply.
@pytest.mark.filterwarnings("ignore:os.fork")
def test_evaluate_video_writes_one_mp4_per_game(tmp_path, capsys, tiny_cartpole_dqn_run):
    run = tmp_path / "dsqn"
    assert main([*TINY_DSQN, "--run-dir", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "videos"
    assert main(["evaluate", str(run), "--video", str(out), "--episodes", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    paths = sorted(out.glob("*.mp4"))
    assert [p.name for p in paths] == [
        "CartPole-v1_cartpole-dsqn_seed0_episode0.mp4",
        "CartPole-v1_cartpole-dsqn_seed0_episode1.mp4",
    ]
    for path, line in zip(paths, printed, strict=True):
        decisions = int(line.split(" decisions")[0].rsplit(", ", 1)[1])
        assert 1 <= decisions <= 30  # one frame per decision of a game capped at 30
        reader = imageio.get_reader(path)
        assert reader.count_frames() == decisions
        assert reader.get_meta_data()["size"] == (1280, 480)  # game, Q, rates, raster
        frame = reader.get_data(0)
        assert frame.shape == (480, 1280, 3) and frame.std() > 10  # drawn, not blank
    relu = tmp_path / "relu"
    assert main(["evaluate", str(tiny_cartpole_dqn_run), "--video", str(relu)]) == 0
    (path,) = relu.glob("*.mp4")
    assert imageio.get_reader(path).get_meta_data()["size"] == (800, 480)  # game and Q only
