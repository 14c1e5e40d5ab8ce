"""Analyses of trained runs, each behind a ``dsqn`` subcommand.

- ``reevaluation``: ``dsqn evaluate``, a checkpoint's agents on fresh games;
- ``energy``: the energy model: spike statistics, synaptic operations and energy per action;
- ``energy_report``: ``dsqn energy``, a checkpoint's spike statistics and energy measured;
- ``convert_run``: ``dsqn convert``, a DQN run converted into a spiking run;
- ``robustness``: scores under Gaussian noise and FGSM (``dsqn robustness``);
- ``video``: ``dsqn evaluate --video``, games beside Q-values and spikes.
"""
