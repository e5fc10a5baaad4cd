#!/usr/bin/env bash
# Example: SMFP on humanoid over 2 nodes x 8 GPUs. One process per node; each process
# drives its node's GPUs, and jax.distributed joins them into one 16-device data mesh.
# Submit with: sbatch launch/slurm_example.sh
#SBATCH --job-name=mjx_smfp
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --output=runs/slurm-%j.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
make install                                  # idempotent; creates .venv on first use
.venv/bin/pip install -q -e ".[cuda]"         # the CUDA build of jax (once)
# Coordinator, process count and id default to SLURM's own variables.
srun .venv/bin/python -m launch.multihost -- \
    --env humanoid --agent smfp --preset fast --num_devices 0 --num_envs 65536 \
    --run_dir "runs/humanoid/smfp/slurm-${SLURM_JOB_ID}"
