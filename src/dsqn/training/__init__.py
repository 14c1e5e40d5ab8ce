"""Training runs: ``dsqn train`` from the jitted chunk to the outer loop.

- ``chunk``: ``make_train(config) -> Experiment``, jitted chunks of env steps and updates,
  vmapped over the agents (seeds x sweep points);
- ``loop``: the outer loop of ``dsqn train`` (evaluations, checkpoints, resume, signals);
- ``logs``: metrics.csv / evaluations.csv rows, TensorBoard, W&B, progress lines;
- ``memory_budget``: the memory a run needs, refused or warned before it is allocated.
"""
