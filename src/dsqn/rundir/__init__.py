"""The run directory: one run, one directory (docs/run_directory.md).

- ``files``: every file of a run directory, read and written in one place;
- ``checkpoints``: orbax checkpoints (atomic saves, corrupt ones set aside);
- ``lock``: one writer per run directory;
- ``loading``: ``load_agent`` / ``load_agents``: trained agents without an environment.
"""
