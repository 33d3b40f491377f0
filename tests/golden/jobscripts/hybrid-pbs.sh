#!/bin/bash
#PBS -N hybrid-wide
#PBS -l select=2:ncpus=128:mpiprocs=32:ompthreads=4:mem=102400mb
#PBS -l walltime=01:00:00
#PBS -q standard
#PBS -A proj1
#PBS -o job.out
#PBS -j oe
# PBS starts a job in $HOME: go back to where it was submitted
if [ -n "${PBS_O_WORKDIR:-}" ]; then cd "$PBS_O_WORKDIR" || exit 1; fi
# Written by hpcdo: run wide of recipe hybrid on machine hybrid-pbs.
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
export OMP_NUM_THREADS=4 || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
export HYBRID_LABEL='wide: 256 cores on 2 nodes' || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
export OMP_PLACES=cores || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
mpiexec -n 64 -ppn 32 --depth=4 --cpu-bind depth ./hybrid --geometry cube.gmy --ranks 64 --threads 4
hpcdo_exit $?
