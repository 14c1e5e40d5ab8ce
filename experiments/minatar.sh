#!/usr/bin/env bash
# The MinAtar study of docs/results/minatar, cell by cell (hours of CPU; about 1-3 h per DQN or
# DSQN cell of 3 seeds x 1M agent steps on 2 cores). Resumable: run it again after an
# interruption and every unfinished cell continues from its last checkpoint.
#
#   bash experiments/minatar.sh [ROOT] [OUT]      (defaults: runs/minatar docs/results/minatar)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-runs/minatar}
OUT=${2:-docs/results/minatar}
grid() { python experiments/grid.py --suite minatar --root "$ROOT" "$@"; }

# DQN and DSQN (T = 8) on Breakout, SpaceInvaders and Asterix, seeds 0 1 2.
grid --games Breakout SpaceInvaders Asterix --algorithms minatar-dqn minatar-dsqn
# The silent-start remedy beside the untouched network (README: MinAtar).
grid --games Breakout Asterix --algorithms minatar-dsqn --tag vth0.1 -- --network.v_threshold 0.1
# T = 4 and 16 on Breakout, one run each (T = 8 is the cell above); T shapes the program.
for T in 4 16; do
  grid --games Breakout --algorithms minatar-dsqn --seeds 0 --tag "T$T" -- --network.time_steps "$T"
done
# A vectorised sweep of the membrane time constant, in one process; tau = 2 (the preset's) is
# seed 0 of the Breakout cell above (agents that share a seed start from the same draws).
grid --games Breakout --algorithms minatar-dsqn --seeds 0 --sweep network.tau 1.5 4
# Tan et al.'s ANN-to-SNN conversion of every DQN cell's best checkpoints (T = 500, the 99.9th
# percentile, 15,000 normalisation frames per seed: the paper's settings), into
# ROOT/<game>/converted-snn.
grid --games Breakout SpaceInvaders Asterix --algorithms convert
# Energy per action of every finished spiking cell's best checkpoints (dsqn energy).
for run in "$ROOT"/*/minatar-dsqn "$ROOT"/*/minatar-dsqn-vth0.1; do
  if [ -f "$run/evaluation.json" ] && [ ! -f "$run/energy.json" ]; then
    dsqn energy "$run"
  fi
done
python experiments/minatar_results.py "$ROOT" --out "$OUT"
