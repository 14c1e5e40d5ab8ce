"""dsqn: Deep Spiking Q-Networks in JAX.

``dsqn.load_agent(run_dir, "best")`` loads a trained agent (:mod:`dsqn.rundir.loading`); the spiking
toolkit is :mod:`dsqn.spiking`. The agent-loading names are imported on first use, so that
``import dsqn.spiking`` stays free of flax and orbax.
"""

__version__ = "0.1.0"

__all__ = ["Agent", "load_agent", "load_agents"]


def __getattr__(name: str):
    if name in __all__:
        from dsqn.rundir import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'dsqn' has no attribute {name!r}")
