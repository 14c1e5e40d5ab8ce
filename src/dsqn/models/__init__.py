"""The models: flax Q-networks built on :mod:`dsqn.spiking`, and methods on them.

- ``networks``: the Q-networks (DQN, DSQN, their MLP and MinAtar forms, heads, readouts);
- ``convolution``: the VALID convolutions the networks use (fast gradients on CPU);
- ``conversion``: Tan et al.'s ANN-to-SNN method (converted networks, layer scales);
- ``nir``: spiking Q-networks to and from NIR graphs.
"""
