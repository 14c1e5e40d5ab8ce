#!/usr/bin/env bash
# The README's figures, made by the project's own commands from two finished MinAtar runs:
# a DQN run and a DSQN run of the same game (docs/results/minatar).
#
#   bash experiments/readme_figures.sh DQN_RUN DSQN_RUN [OUT]      (OUT: docs/figures)
#
# - learning_curves.png: evaluation return against agent steps (`dsqn report`);
# - spiking_agent_frame.png: one decision of the DSQN agent's video (`dsqn evaluate --video`):
#   the game, its Q-values, every layer's firing rate and fc1's spike raster over the T steps;
# - firing_rates.png, energy.png: per-layer firing rates and energy per action of the DSQN run at
#   its best checkpoint (`dsqn energy`, then `dsqn report`).
set -euo pipefail
DQN_RUN=$1
DSQN_RUN=$2
OUT=${3:-docs/figures}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

dsqn energy "$DSQN_RUN"
dsqn report "$DQN_RUN" "$DSQN_RUN" --out "$WORK/report"
game=$(basename "$(ls "$WORK"/report/figures/energy_*.png)" .png)
game=${game#energy_}
cp "$WORK/report/figures/learning_return_mean_$game.png" "$OUT/learning_curves.png"
cp "$WORK/report/figures/firing_rates_$game.png" "$OUT/firing_rates.png"
cp "$WORK/report/figures/energy_$game.png" "$OUT/energy.png"

dsqn evaluate "$DSQN_RUN" --video "$WORK/video" --episodes 1
video=$(ls "$WORK"/video/*seed0_episode0.mp4)
python - "$video" "$OUT/spiking_agent_frame.png" <<'PY'
import sys

import imageio.v2 as imageio

reader = imageio.get_reader(sys.argv[1])
frames = reader.count_frames()
imageio.imwrite(sys.argv[2], reader.get_data(min(60, frames - 1)))  # decision 61, or the last
PY
ls -l "$OUT"
