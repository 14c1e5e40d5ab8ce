"""Reports over many run directories: tables, statistics and figures (``dsqn report``).

- ``aggregates``: robust statistics over runs (IQM, optimality gap, stratified bootstrap);
- ``report``: the paper's tables (Markdown, CSV, DataFrames);
- ``plots``: figures (matplotlib Figures, PNG).
"""
