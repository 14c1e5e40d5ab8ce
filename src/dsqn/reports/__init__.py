"""Reports over many run directories: tables, statistics and figures (``dsqn report``).

- ``aggregates``: robust statistics over runs (IQM, optimality gap, stratified bootstrap);
- ``runs``: run discovery and the `Run` record (sweep points, order of games and algorithms);
- ``results``: the runs pooled into score cells (`collect` -> `Results`);
- ``tables``: the paper's tables as rows (pairs, human-normalised, aggregates, energy,
  sensitivity);
- ``markdown``: the tables as Markdown, and ``report.md``;
- ``report``: the report written out (``report.md``, CSV files) and as DataFrames;
- ``curves``: the figures' data from the CSV logs (per-seed curves, bands over seeds);
- ``drawing``: what every figure shares (colours, names, option checks);
- ``curve_figures``, ``bar_figures``, ``score_figures``: the figures (matplotlib Figures);
- ``plots``: the figures written as PNG files.
"""
