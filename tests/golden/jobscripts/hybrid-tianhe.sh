#!/bin/bash
#SBATCH --job-name=hybrid-wide
#SBATCH --ntasks=64
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
#SBATCH --output=job.out
#SBATCH --partition=standard
#SBATCH --account=proj1
# Written by hpcdo: run wide of recipe hybrid on machine hybrid-tianhe.
# It runs in its run directory and leaves job.started and job.exit (exit code
# and time) behind, so the outcome is known even when the scheduler forgets it;
# a requeued job clears the exit marker of its attempt before.
hpcdo_exit() {
    printf '%s %s\n' "$1" "$(date +%s)" > job.exit.tmp && mv -f job.exit.tmp job.exit
    exit "$1"
}
trap 'hpcdo_exit 143' TERM
trap 'hpcdo_exit 130' INT
rm -f job.exit
printf '%s %s\n' "$$" "$(date +%s)" > job.started
# srun no longer takes --cpus-per-task from the job (Slurm 22.05): pass it on
export SRUN_CPUS_PER_TASK=4
export OMP_NUM_THREADS=4 || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
export HYBRID_LABEL='wide: 256 cores on 2 nodes' || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
export OMP_PLACES=cores || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
yhrun -n 64 -c 4 ./hybrid --geometry cube.gmy --ranks 64 --threads 4
hpcdo_exit $?
