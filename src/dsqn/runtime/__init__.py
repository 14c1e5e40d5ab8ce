"""What every program of a run shares with JAX's runtime.

- ``prng``: the PRNG streams of a run, in one table;
- ``precision``: the float32 matmul precision of the jitted programs;
- ``distributed``: several processes running one program (jax.distributed);
- ``versions``: what a run ran on (dependency versions, platform, source commit).
"""
