#!/bin/bash
#SBATCH --job-name=hydro-onegpu
#SBATCH --ntasks=4
#SBATCH --nodes=1
#SBATCH --gpus-per-node=4
#SBATCH --time=00:30:00
#SBATCH --output=job.out
#SBATCH --partition=batch
# Written by hpcdo: run onegpu of recipe hydro on machine frontier.
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
module load PrgEnv-amd || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
module load craype-accel-amd-gfx90a || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
module load rocm || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
module load cmake || { echo "hpcdo: job setup step 4 failed" >&2; hpcdo_exit 98; }
export CC=cc || { echo "hpcdo: job setup step 5 failed" >&2; hpcdo_exit 98; }
export CXX=CC || { echo "hpcdo: job setup step 6 failed" >&2; hpcdo_exit 98; }
export FC=ftn || { echo "hpcdo: job setup step 7 failed" >&2; hpcdo_exit 98; }
srun --ntasks=4 --gpus-per-task=1 --gpu-bind=closest ./hydro --ranks 4
hpcdo_exit $?
