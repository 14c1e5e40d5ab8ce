"""What a run's config is: its sections as frozen dataclasses, with the paper's values as defaults.

Every quantity of time says its unit: ``agent_steps`` are decisions of the agent (one env step of
one environment, 4 emulator frames on Atari); ``frames`` are emulator frames. A run of
``total_agent_steps = 50_000_000`` is the paper's 200M frames.

This module imports nothing of dsqn, so that every other module may read the config's shape.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ConfigError",
    "NetworkConfig",
    "EnvConfig",
    "LearnerConfig",
    "EvalConfig",
    "RunConfig",
    "SweepConfig",
    "Config",
    "SECTIONS",
    "STEPPINGS",
    "PRIORITY_FIELD_PREFIX",
]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and what is valid."""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The Q-network (see :mod:`dsqn.models.networks`).

    Attributes:
      kind: ``"dsqn"`` (spiking hidden layers) or ``"dqn"`` (ReLU). The observation decides
        between the Atari CNN and the MLP.
      time_steps: simulation steps T per forward pass (spiking only). Paper: 64.
      neuron: ``"lif"`` (paper), ``"if"`` (no leak, the paper's ablation) or ``"plif"`` (the
        Parametric LIF of Fang et al. 2021: each spiking layer learns ``1/tau = sigmoid(w)``,
        starting from ``tau``).
      tau: LIF membrane time constant; PLIF's initial one (must be > 1). Paper: 2.0.
      v_threshold: firing threshold (the initial one with ``learn_threshold``). Paper: 1.0.
      v_reset: hard-reset potential (paper: 0.0), or ``None`` for soft reset.
      decay_input: LIF charge convention; the paper's code uses True.
      detach_reset: stop gradients through the reset. Paper: False.
      surrogate: surrogate derivative (atan, sigmoid, piecewise_quadratic, fast_sigmoid).
      surrogate_alpha: its sharpness. Paper: atan with alpha 2.0.
      readout: rate (paper; Chen et al. 2022's "fr-mlp"), spike_rate, or a non-spiking
        output neuron decoded by Chen et al.'s membrane decoders: membrane_max ("max-mem"),
        membrane_max_abs ("max-abs-mem"), membrane_mean ("mean-mem"), membrane_last
        ("last-mem"); see :mod:`dsqn.spiking.readout`.
      learn_threshold: learn one firing threshold per spiking layer, starting from
        ``v_threshold``. Paper: False (fixed thresholds).
      head: the output head: ``"linear"`` (paper), ``"dueling"`` (Wang et al. 2016's dueling
        architecture, Q = V + A - mean(A), as Wang & Ueda 2022's ``--dueling``; in DSQN the
        value and the advantages are read out from the same fc1 rate) or ``"shared_bias"`` (one
        output bias for all actions, van Hasselt et al. 2016's tuned Double DQN); see
        :mod:`dsqn.models.networks`.
      dueling_joined: the dueling DQN's (ReLU, two 512-unit streams) output layer: ``False``
        (Wang & Ueda 2022): the weights between the streams are held at zero for the whole run
        (their gradient hook); ``True``: they start at zero and are trained with the rest (a
        deviation; the behaviour of runs saved before this field). Other networks ignore it.
      norm: ``"none"`` (paper) or ``"popnorm"``: PL-SDQN's potential-based layer normalisation
        (Sun et al. 2022) of a spiking layer's input currents, per sample over its neurons, with
        a learned scale and shift per neuron starting at ``v_threshold - v_reset`` and
        ``v_reset``; on Atari before the three convolutional spiking layers (as their code), in
        the MLP before every hidden layer (spiking only; see :mod:`dsqn.models.networks`).
      neuron_backend: how the neuron layers run (spiking only): ``"scan"`` (one ``lax.scan``
        step per time step, the reference) or ``"pallas"`` (one fused kernel per layer forward
        and one backward; the same spikes, gradients equal up to float rounding; see
        :mod:`dsqn.spiking.fused`). A speed option, not a model change.
      param_init: ``"torch"`` (PyTorch defaults, as the paper's code) or ``"lecun"``.
      hidden_sizes: hidden layer widths of the MLP for vector observations.
      compute_dtype: ``"float32"`` or ``"bfloat16"`` for activations (parameters stay float32).
    """

    kind: str = "dsqn"
    time_steps: int = 64
    neuron: str = "lif"
    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    readout: str = "rate"
    learn_threshold: bool = False
    head: str = "linear"
    dueling_joined: bool = False
    norm: str = "none"
    neuron_backend: str = "scan"
    param_init: str = "torch"
    hidden_sizes: tuple[int, ...] = (128, 128)
    compute_dtype: str = "float32"


STEPPINGS: tuple[str, ...] = ("xla", "callback")
"""How a pool is stepped inside jit (``env.stepping``): envpool's XLA custom call, or a host
callback. :mod:`dsqn.envs.stepping` implements them and reads this list; it lives here because
importing ``dsqn.envs`` needs envpool, which validating a config must not."""


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The environment (see :mod:`dsqn.envs`).

    Attributes:
      suite: ``"atari"``, ``"classic"`` (CartPole-v1, Acrobot-v1, MountainCar-v0) or
        ``"minatar"`` (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders; MinAtar's games in
        JAX with the original package's sticky actions 0.1 and difficulty ramping, no time
        limit; see :mod:`dsqn.envs.minatar`).
      game: Atari game (``Pong`` or ``Pong-v5``), classic env name or MinAtar game.
      protocol: Atari protocol, ``"paper"`` (the authors') or ``"machado"`` (Machado et al. 2018).
      envs_per_seed: environments stepped in parallel for each seed. The paper used 1; more envs
        keep the schedule in agent steps (one update per ``update_period_agent_steps``
        transitions) but collect data from several episodes at once.
      max_episode_agent_steps: episode cap in agent steps; ``None`` keeps the protocol's
        (paper: 18,000 = 72,000 frames; machado: 27,000; MinAtar: none, as the original).
      stepping: how the jitted training and evaluation programs step the env pools:
        ``"xla"`` (envpool's XLA custom call) or ``"callback"`` (envpool's Python step through
        a JAX host callback), with the same results. Runs sharded over several devices always
        use callbacks. Switch to ``"callback"`` where envpool's XLA interface fails with your
        JAX version or GPU (envpool issues 281, 313, 391).
      life_loss_stack: the training observation after a life loss under episodic life:
        ``"refill"`` (paper: four copies of the new life's first frame, the OpenAI Baselines
        ``FrameStack`` that the authors' ``wrap_deepmind(..., frame_stack=True)`` applies at
        every reset) or ``"carry"`` (envpool's stack, which goes on across the life loss).
    """

    suite: str = "atari"
    game: str = "Pong"
    protocol: str = "paper"
    envs_per_seed: int = 1
    max_episode_agent_steps: int | None = None
    stepping: str = "xla"
    life_loss_stack: str = "refill"


PRIORITY_FIELD_PREFIX = "priority_"
"""The learner fields ``priority_<name>`` are the settings of prioritized replay's priority rule,
whose field ``<name>`` they are (:class:`dsqn.learning.replay.PriorityRule` is made from them)."""


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Q-learning (see :mod:`dsqn.learning.losses`, :mod:`dsqn.learning.agent`).

    Attributes:
      loss: ``"dqn"`` (paper), ``"double"`` (Double DQN) or ``"cdqn"`` (C-DQN).
      td_error: ``"huber"`` (smooth L1, delta 1, paper) or ``"mse"``.
      discount: gamma. Paper: 0.99.
      learning_rate: Adam step size (the first one when it decays). Paper: 1e-4.
      learning_rate_end: the step size reached after learning_rate_decay_agent_steps, decayed
        linearly from learning_rate over the updates (update k of the run is at k x
        update_period_agent_steps agent steps of learning) and constant after; ``None``
        (paper): constant. A named deviation; no preset uses it.
      learning_rate_decay_agent_steps: agent steps of learning (after the warm-up) over which
        the step size decays to learning_rate_end; set both or neither.
      adam_eps: Adam epsilon. Paper: PyTorch's default 1e-8.
      weight_decay: decoupled weight decay lambda of AdamW (``torch.optim.AdamW``), on every
        parameter; 0 (paper): plain Adam. Sun et al. 2022 (PL-SDQN): AdamW's default 0.01.
      neuron_learning_rate_scale: the learnable neuron parameters' step size (PLIF's ``w``,
        learned thresholds), as a multiple of ``learning_rate``. 1.0 (default): one Adam step
        size for every parameter, as Fang et al. 2021 and spikingjelly train PLIF. Each such
        parameter is one scalar shared by a whole layer, a layer-wide gain, yet Adam's
        per-parameter normalisation moves it as fast as any single weight; a value below 1
        slows it alone (a deviation from Fang et al.; cartpole-dsqn-plif: 0.03).
      max_grad_norm: global gradient-norm clip, or ``None`` (paper: no clipping).
      batch_size: minibatch size. Paper: 32.
      update_period_agent_steps: one SGD update every this many agent steps. Paper: 4.
      target_update_period_agent_steps: hard target copy period. Paper: 10,000.
      warmup_agent_steps: uniformly random actions, no learning, for this long. Paper: 50,000.
      schedule_counts_warmup: whether the schedules (exploration, updates, target syncs,
        importance exponent, evaluation period, run length) count the warm-up's agent steps.
        False (paper): they start when the warm-up ends and the run lasts the warm-up plus
        run.total_agent_steps, as in the authors' code (``DqnAgent._explore``, then a training
        counter from 0; github.com/AptX395/Deep-Spiking-Q-Networks, ``agent/agent.py``).
        Wang & Ueda 2022's code counts from the first agent step (``step_idx``): True.
      epsilon_schedule: ``"linear"`` (paper: epsilon_start -> epsilon_end over
        epsilon_decay_agent_steps) or ``"exponential_linear"`` (Wang & Ueda 2022,
        ``epsilon_scheduler``: exponential from epsilon_start to epsilon_mid over
        epsilon_mid_agent_steps, then linear to epsilon_end at epsilon_decay_agent_steps).
      epsilon_start: initial exploration rate. Paper: 1.0; Wang & Ueda 2022: 1.0.
      epsilon_mid: the exploration rate where exponential_linear turns linear. Wang & Ueda
        2022 (``--eps-mid``): 0.1.
      epsilon_mid_agent_steps: where exponential_linear turns linear, in schedule agent steps.
        Wang & Ueda 2022: 1,000,000.
      epsilon_end: final exploration rate. Paper: 0.1; van Hasselt et al. 2016 (tuned Double
        DQN): 0.01; Wang & Ueda 2022 (``--eps-final``): 0.01.
      epsilon_decay_agent_steps: schedule agent steps at which epsilon reaches epsilon_end.
        Paper: 1,000,000; Wang & Ueda 2022: 40,000,000.
      truncation_bootstraps: whether a transition cut by the episode cap bootstraps from its
        next state (discount 1). Paper: False: the authors' mask is 0 at every ``done`` of the
        Baselines wrappers, the 18,000-step time limit included (``mask = 0.0 if is_done``);
        Wang & Ueda 2022 likewise.
      cdqn_double_q: with the C-DQN loss, the DQN term's target action a* is the online
        network's argmax (double Q-learning, van Hasselt et al. 2016), not the target network's.
        Wang & Ueda 2022's Atari runs: True (``--double``). Only valid with loss cdqn.
      replay_capacity_transitions: replay size per seed. Paper: 1,000,000.
      replay_sampling: ``"uniform"`` (paper) or ``"proportional"``: prioritized replay, P(i)
        proportional to (|TD error| + priority_epsilon)^priority_exponent (Schaul et al. 2016,
        "Prioritized Experience Replay", proportional variant; Wang & Ueda 2022 use it).
      priority_exponent: alpha of prioritized replay. Schaul et al. 2016 (proportional,
        Atari): 0.6; Wang & Ueda 2022 (ConvergentDQN ``--alpha``): 0.6.
      priority_epsilon: added to |TD error|. OpenAI Baselines (``prioritized_replay_eps``):
        1e-6; Wang & Ueda 2022 (``--prio-eps``): 1e-10.
      priority_initial_max: priority (before the exponent) of new transitions until the first
        update. Schaul et al. 2016 / OpenAI Baselines: 1.0; Wang & Ueda 2022: 100.
      priority_max_tracking: the priority of new transitions: ``"running"``, the largest ever
        assigned (Schaul et al. 2016 / OpenAI Baselines), or ``"last_updated"``, the largest of
        the slots' last assigned priorities (Wang & Ueda 2022's max segment tree).
      priority_floor_of_mean: raise every updated sampling mass to at least this fraction of the
        mean mass, or ``None`` (Schaul et al. 2016). Wang & Ueda 2022: 0.1 (``--ratio-min-prio``
        10).
      priority_predecessor_fraction: raise the transition before each sampled one to at least
        (this x |TD error|)^alpha; 0 turns it off (Schaul et al. 2016). Wang & Ueda 2022: 0.5.
      importance_exponent_start: beta of the importance weights at agent step 0, annealed
        linearly to 1. Schaul et al. 2016 (proportional): 0.4; Wang & Ueda 2022
        (``--beta-start``): 0.4.
      importance_exponent_anneal_agent_steps: agent steps over which beta reaches 1; ``None``:
        the run's length (Schaul et al. 2016: 1 at the end of learning). Wang & Ueda 2022
        (``--beta-frames``, in agent steps despite the name): 50,000,000.
      importance_weights_normalized: divide the weights by the largest one any stored transition
        could get, so that they are <= 1 (Schaul et al. 2016 / OpenAI Baselines). Wang & Ueda
        2022: False (``--IS-weight-only-smaller`` off).
      importance_weight_max: cap on the weights, or ``None``. Wang & Ueda 2022: 20 (twice
        ``--ratio-min-prio``).
    """

    loss: str = "dqn"
    td_error: str = "huber"
    discount: float = 0.99
    learning_rate: float = 1e-4
    learning_rate_end: float | None = None
    learning_rate_decay_agent_steps: int | None = None
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    neuron_learning_rate_scale: float = 1.0
    max_grad_norm: float | None = None
    batch_size: int = 32
    update_period_agent_steps: int = 4
    target_update_period_agent_steps: int = 10_000
    warmup_agent_steps: int = 50_000
    schedule_counts_warmup: bool = False
    epsilon_schedule: str = "linear"
    epsilon_start: float = 1.0
    epsilon_mid: float = 0.1
    epsilon_mid_agent_steps: int = 1_000_000
    epsilon_end: float = 0.1
    epsilon_decay_agent_steps: int = 1_000_000
    truncation_bootstraps: bool = False
    cdqn_double_q: bool = False
    replay_capacity_transitions: int = 1_000_000
    replay_sampling: str = "uniform"
    priority_exponent: float = 0.6
    priority_epsilon: float = 1e-6
    priority_initial_max: float = 1.0
    priority_max_tracking: str = "running"
    priority_floor_of_mean: float | None = None
    priority_predecessor_fraction: float = 0.0
    importance_exponent_start: float = 0.4
    importance_exponent_anneal_agent_steps: int | None = None
    importance_weights_normalized: bool = True
    importance_weight_max: float | None = None


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (see :mod:`dsqn.learning.evaluation`).

    Attributes:
      period_agent_steps: evaluate every this many agent steps. Paper: 250,000.
      episodes: episodes per evaluation and seed, run in parallel. Paper: 30.
      epsilon: exploration rate while evaluating. Paper: 0.05.
      max_episode_agent_steps: episode cap while evaluating; ``None`` keeps the protocol's.
      best_ties: which checkpoint is kept as the best when an evaluation's mean equals the best
        so far: ``"later"`` (paper: the authors' ``if max_average_score <= average_score``) or
        ``"earlier"``.
    """

    period_agent_steps: int = 250_000
    episodes: int = 30
    epsilon: float = 0.05
    max_episode_agent_steps: int | None = None
    best_ties: str = "later"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Length, seeds, logging and checkpoints of a run.

    Attributes:
      total_agent_steps: training length per seed. Paper: 50,000,000 (200M frames).
      seeds: independent seeds trained together in one process (a vmapped axis).
      log_period_agent_steps: one jitted chunk of training between two log lines.
      checkpoint_period_agent_steps: save the latest checkpoint this often.
      checkpoint_period_minutes: also save one when this many minutes of wall-clock time have
        passed since the last save (checked between chunks), so that a preempted or killed job
        loses at most about this much work; ``None``: by agent steps only.
      save_replay: include the replay buffer in checkpoints (large, but resumes exactly).
      check_memory: refuse a run whose replays, training states and compiled scratch memory
        do not fit in the memory available (host RAM on CPU, each accelerator's memory), before
        allocating them (see :mod:`dsqn.training.memory_budget`); ``False`` only warns.
      keep_checkpoints: how many latest checkpoints to keep.
      matmul_precision: precision of float32 matrix products and convolutions in every program
        of training, evaluation and conversion: ``"default"`` (JAX's: float32 on CPU,
        TensorFloat-32 on NVIDIA Ampere and later GPUs), ``"high"`` or ``"highest"`` (float32
        arithmetic); see :mod:`dsqn.runtime.precision`. The paper does not state the authors'.
      shard_seeds: with several local devices (GPUs), split the seed axis over all of them (a
        1-D mesh); the number of seeds must then be a multiple of the number of devices.
    """

    total_agent_steps: int = 50_000_000
    seeds: tuple[int, ...] = (0,)
    log_period_agent_steps: int = 10_000
    checkpoint_period_agent_steps: int = 1_000_000
    checkpoint_period_minutes: float | None = None
    save_replay: bool = True
    check_memory: bool = True
    keep_checkpoints: int = 2
    matmul_precision: str = "default"
    shard_seeds: bool = True


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Hyperparameter axes trained beside the seeds, in one program (see :mod:`dsqn.config.sweep`).

    Each field lists values of the config field it names (``network_tau`` -> ``network.tau``);
    empty (the default) means not swept. The run trains one agent per combination of the listed
    values and per seed, point-major, as one vmapped axis. Only these numeric fields can be
    swept: array shapes and code paths (time steps, layer sizes, batch and replay sizes, the
    neuron, the loss) cannot vary within one program. ``dsqn train ... --sweep network.tau 1.5 2
    4`` sets ``sweep.network_tau``.

    Attributes:
      network_tau: values of network.tau (LIF time constant; PLIF: its initial value).
      network_v_threshold: values of network.v_threshold (firing threshold).
      network_surrogate_alpha: values of network.surrogate_alpha (surrogate sharpness).
      learner_learning_rate: values of learner.learning_rate (Adam step size).
      learner_adam_eps: values of learner.adam_eps (Adam epsilon).
      learner_neuron_learning_rate_scale: values of learner.neuron_learning_rate_scale (the
        learnable neuron parameters' step size relative to the learning rate).
      learner_discount: values of learner.discount (gamma).
      learner_epsilon_start: values of learner.epsilon_start (initial exploration rate).
      learner_epsilon_mid: values of learner.epsilon_mid (exploration rate at the end of the
        exponential phase of Wang & Ueda's schedule).
      learner_epsilon_end: values of learner.epsilon_end (final exploration rate).
    """

    network_tau: tuple[float, ...] = ()
    network_v_threshold: tuple[float, ...] = ()
    network_surrogate_alpha: tuple[float, ...] = ()
    learner_learning_rate: tuple[float, ...] = ()
    learner_adam_eps: tuple[float, ...] = ()
    learner_neuron_learning_rate_scale: tuple[float, ...] = ()
    learner_discount: tuple[float, ...] = ()
    learner_epsilon_start: tuple[float, ...] = ()
    learner_epsilon_mid: tuple[float, ...] = ()
    learner_epsilon_end: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run. ``name`` is the preset it came from (or a user's label)."""

    name: str = "dsqn"
    network: NetworkConfig = NetworkConfig()
    env: EnvConfig = EnvConfig()
    learner: LearnerConfig = LearnerConfig()
    eval: EvalConfig = EvalConfig()
    run: RunConfig = RunConfig()
    sweep: SweepConfig = SweepConfig()


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config) if f.name != "name")
"""The sections of a :class:`Config`, in order: ``network``, ``env``, ..., ``sweep``."""
