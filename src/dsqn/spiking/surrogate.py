r"""Spike functions with surrogate gradients.

A spike function is the Heaviside step in the forward pass and a smooth surrogate in the
backward pass (Neftci, Mostafa & Zenke 2019):

.. math::

    S = \Theta(x) = \begin{cases} 1 & x \ge 0 \\ 0 & x < 0 \end{cases},
    \qquad \frac{\partial S}{\partial x} := g_\alpha(x)

where ``x = H - V_th`` is the membrane potential above threshold. Note ``Theta(0) = 1``
(spikingjelly's convention, which the DSQN paper's code uses).

Each surrogate is a small frozen dataclass and a JAX pytree whose one leaf is ``alpha`` (the
kind, ``name``, is static): with a float ``alpha`` it is hashable and comparable by value, so it
can be a static argument of ``jax.jit`` or a field of a flax module; ``alpha`` may also be a
traced value (jit over it, vmap over it: a sweep of sharpness in one program). Calling it
applies the spike function; ``.grad(x)`` evaluates the surrogate derivative ``g_alpha(x)``
directly. The spike function does not depend on ``alpha``, so its derivative with respect to
``alpha`` is 0.

Available surrogates (``alpha`` controls sharpness):

- :func:`atan` (the paper's, alpha = 2):
  ``g(x) = (alpha / 2) / (1 + (pi / 2 * alpha * x)^2)``
- :func:`sigmoid`: ``g(x) = alpha * s(alpha x) * (1 - s(alpha x))`` with ``s`` the logistic
- :func:`piecewise_quadratic` (triangle): ``g(x) = alpha - alpha^2 |x|`` for ``|x| < 1/alpha``,
  else 0
- :func:`fast_sigmoid` (SuperSpike, Zenke & Ganguli 2018): ``g(x) = 1 / (1 + alpha |x|)^2``

The forward value always has the dtype of ``x`` and the surrogate derivative is computed in
that dtype, so float32 and bfloat16 are both preserved.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Surrogate",
    "atan",
    "sigmoid",
    "piecewise_quadratic",
    "fast_sigmoid",
    "SURROGATES",
    "get_surrogate",
    "heaviside",
]


def heaviside(x: jax.Array) -> jax.Array:
    """The spike nonlinearity without a surrogate: ``1 where x >= 0 else 0``, dtype of ``x``."""
    return (x >= 0).astype(x.dtype)


@partial(jax.tree_util.register_dataclass, data_fields=["alpha"], meta_fields=["name"])
@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A spike function: Heaviside forward, ``grad(x)`` backward.

    Attributes:
      name: which surrogate derivative (a key of :data:`SURROGATES`).
      alpha: its sharpness parameter: a float, or an array (concrete or traced) broadcastable
        against the inputs. The factories (:func:`atan`, ...) check that a number is > 0.
    """

    name: str
    alpha: float | jax.Array

    def __post_init__(self) -> None:
        if self.name not in _DERIVATIVES:
            raise ValueError(
                f"unknown surrogate {self.name!r}; valid surrogates: {sorted(_DERIVATIVES)}"
            )

    def __call__(self, x: jax.Array) -> jax.Array:
        """Spikes ``Theta(x)`` with the surrogate derivative attached."""
        x = jnp.asarray(x)
        return _spike(self.name, x, jnp.asarray(self.alpha, x.dtype))

    def grad(self, x: jax.Array) -> jax.Array:
        """The surrogate derivative ``g_alpha(x)``, in the dtype of ``x``."""
        x = jnp.asarray(x)
        return _DERIVATIVES[self.name](x, jnp.asarray(self.alpha, x.dtype)).astype(x.dtype)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _spike(name: str, x: jax.Array, alpha: jax.Array) -> jax.Array:
    return heaviside(x)


@_spike.defjvp
def _spike_jvp(name: str, primals, tangents):
    (x, alpha), (dx, _) = primals, tangents
    return _spike(name, x, alpha), _DERIVATIVES[name](x, alpha).astype(x.dtype) * dx


def _atan_grad(x: jax.Array, alpha: float) -> jax.Array:
    return (alpha / 2) / (1 + jnp.square(math.pi / 2 * alpha * x))


def _sigmoid_grad(x: jax.Array, alpha: float) -> jax.Array:
    s = jax.nn.sigmoid(alpha * x)
    return alpha * s * (1 - s)


def _piecewise_quadratic_grad(x: jax.Array, alpha: float) -> jax.Array:
    return jnp.maximum(alpha - alpha * alpha * jnp.abs(x), 0)


def _fast_sigmoid_grad(x: jax.Array, alpha: float) -> jax.Array:
    return 1 / jnp.square(1 + alpha * jnp.abs(x))


_DERIVATIVES: dict[str, Callable[[jax.Array, float], jax.Array]] = {
    "atan": _atan_grad,
    "sigmoid": _sigmoid_grad,
    "piecewise_quadratic": _piecewise_quadratic_grad,
    "fast_sigmoid": _fast_sigmoid_grad,
}


def _number(alpha: float | jax.Array) -> float | jax.Array:
    """Checks a number (> 0) and makes it a float (hashable, comparable); arrays, which may be
    traced, are left as they are."""
    if not isinstance(alpha, (int, float, np.number)):
        return alpha
    if not alpha > 0:
        raise ValueError(f"surrogate alpha must be > 0, got {alpha!r}")
    return float(alpha)


def atan(alpha: float = 2.0) -> Surrogate:
    """Arctan surrogate (spikingjelly ``ATan``): ``g(x) = (alpha/2) / (1 + (pi/2 alpha x)^2)``."""
    return Surrogate("atan", _number(alpha))


def sigmoid(alpha: float = 4.0) -> Surrogate:
    """Sigmoid surrogate: ``g(x) = alpha s(alpha x) (1 - s(alpha x))``."""
    return Surrogate("sigmoid", _number(alpha))


def piecewise_quadratic(alpha: float = 1.0) -> Surrogate:
    """Triangle surrogate: ``g(x) = max(alpha - alpha^2 |x|, 0)``."""
    return Surrogate("piecewise_quadratic", _number(alpha))


def fast_sigmoid(alpha: float = 25.0) -> Surrogate:
    """SuperSpike / fast-sigmoid surrogate: ``g(x) = 1 / (1 + alpha |x|)^2``."""
    return Surrogate("fast_sigmoid", _number(alpha))


SURROGATES: dict[str, Callable[..., Surrogate]] = {
    "atan": atan,
    "sigmoid": sigmoid,
    "piecewise_quadratic": piecewise_quadratic,
    "fast_sigmoid": fast_sigmoid,
}


def get_surrogate(name: str, alpha: float | None = None) -> Surrogate:
    """Builds a surrogate by name, with its default ``alpha`` unless one is given."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; valid surrogates: {sorted(SURROGATES)}")
    return SURROGATES[name]() if alpha is None else SURROGATES[name](alpha)
