"""The deep Q-learning algorithm, as pure functions of one agent.

- ``replay``: frame-deduplicated circular replay (pure, vmappable);
- ``losses``: the DQN, Double DQN and C-DQN TD losses;
- ``agent``: train state, epsilon-greedy acting, one update, target sync;
- ``evaluation``: the evaluation protocol (``Evaluator``: full games in one jitted loop);
- ``evaluation_stats``: per-seed and over-seed statistics of an evaluation's games (NumPy).
"""
