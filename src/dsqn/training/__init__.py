"""Training runs: ``dsqn train`` from the jitted chunk to the outer loop.

- ``chunk``: ``make_train(config) -> Experiment``, jitted chunks of env steps and updates,
  vmapped over the agents (seeds x sweep points);
- ``launch``: ``run_training``, the entry point of ``dsqn train``: config, run directory, lock,
  experiment, memory check, stop signals, then the run's steps;
- ``loop``: the steps of a run (``TrainingRun``): chunks, logs, evaluations, checkpoints, resume;
- ``write_failures``: what a failed write says (the cause, the space needed, how to resume);
- ``logs``: metrics.csv / evaluations.csv rows, TensorBoard, W&B, progress lines;
- ``memory_budget``: the memory a run needs, refused or warned before it is allocated.
"""
