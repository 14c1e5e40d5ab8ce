"""dsqn: Deep Spiking Q-Networks in JAX."""

__version__ = "0.1.0"
