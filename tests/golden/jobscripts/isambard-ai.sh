#!/bin/bash
#SBATCH --job-name=lbflow-straight
#SBATCH --ntasks=1
#SBATCH --nodes=1
#SBATCH --time=00:05:00
#SBATCH --output=job.out
# Written by hpcdo: run straight of recipe lbflow on machine isambard-ai.
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
module load PrgEnv-gnu || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
module load cudatoolkit || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
module load cmake || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
export CC=cc || { echo "hpcdo: job setup step 4 failed" >&2; hpcdo_exit 98; }
export CXX=CC || { echo "hpcdo: job setup step 5 failed" >&2; hpcdo_exit 98; }
export FC=ftn || { echo "hpcdo: job setup step 6 failed" >&2; hpcdo_exit 98; }
srun --ntasks=1 ./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?
