#!/bin/bash
# SLURM job array over the cells of experiments/grid.py: array task N runs cell N
# (one (game, algorithm) pair, all its seeds in one process) on one GPU.
#
# Set GAMES / ALGORITHMS / SEEDS / ROOT below or in the environment, print the numbered cells,
# and submit with a matching --array range:
#
#   python experiments/grid.py --games $GAMES --algorithms $ALGORITHMS --root $ROOT --list
#   sbatch --array=0-33%8 experiments/slurm_array.sh          # 17 games x {dqn, dsqn}
#
# Conversion cells need their DQN finished: submit them as a second array that depends on the
# first, e.g.
#   JOB=$(sbatch --parsable --array=0-33 experiments/slurm_array.sh)
#   ALGORITHMS=convert sbatch --dependency=afterany:$JOB --array=0-16 experiments/slurm_array.sh
#
# Sizing, per cell with 3 seeds at the paper's settings:
# - GPU: one. The replay holds 1M transitions of ~7 KB per seed (about 7 GB), so 3 seeds take
#   about 21 GB of accelerator memory plus the networks; a 40 GB card is enough.
# - Host memory: checkpoints include the replay (set --run.save_replay false to drop it, at the
#   cost of an inexact resume), so allow about twice the replay size.
# - Preemption / time limit: --signal=B:TERM@600 below sends SIGTERM to this script's process
#   (grid.py, via exec) 600 s (+-60 s, SLURM's resolution) before the kill; grid.py passes it on
#   to the running dsqn, which finishes its current chunk (10,000 agent steps), writes its
#   checkpoint and exits; the requeued or resubmitted cell resumes from it. The lead time covers
#   one checkpoint write with full paper replays, about 56 s per seed (7.1 GB at 0.126 GB/s,
#   measured by `python -m benchmarks.checkpoint` on a local disk and scaled), i.e. about 170 s
#   for 3 seeds, plus one chunk (10,000 / sps seconds; sps is a column of metrics.csv). A slower
#   shared file system or longer chunks need more: measure yours with the same command. Where
#   jobs are killed without warning, EXTRA="--run.checkpoint_period_minutes 30" bounds the loss.
# - Time: depends on the GPU and on T. Measure first with a short cell (e.g.
#   EXTRA="--run.total_agent_steps 200000") and read the sps column of its metrics.csv; the
#   paper's runs are 50M agent steps per seed (Double variants 1M, C-DQN variants 10M). Cells
#   are resumable: a timed-out or preempted task continues from its latest checkpoint when it
#   is requeued or submitted again, and a finished cell is skipped.
# The log directory must exist before submitting: mkdir -p logs
#SBATCH --job-name=dsqn-grid
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=48:00:00
#SBATCH --requeue
#SBATCH --signal=B:TERM@600
#SBATCH --output=logs/%x-%A_%a.out

set -euo pipefail

GAMES=${GAMES:-"Atlantis BeamRider Boxing Breakout CrazyClimber Gopher Jamesbond Kangaroo Krull NameThisGame Pong RoadRunner SpaceInvaders StarGunner Tennis Tutankham VideoPinball"}
ALGORITHMS=${ALGORITHMS:-"dqn dsqn"}
SEEDS=${SEEDS:-"0 1 2"}
ROOT=${ROOT:-runs/grid}
# Extra `dsqn train` arguments, e.g. EXTRA="--run.total_agent_steps 10000000".
EXTRA=${EXTRA:-}

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  echo "SLURM_ARRAY_TASK_ID is not set: submit with sbatch --array=0-N (see --list)" >&2
  exit 2
fi

# shellcheck disable=SC2086  # the lists are meant to split into words
exec python experiments/grid.py \
  --games $GAMES --algorithms $ALGORITHMS --seeds $SEEDS --root "$ROOT" \
  --cell-index "$SLURM_ARRAY_TASK_ID" -- $EXTRA
