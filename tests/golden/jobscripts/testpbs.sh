#!/bin/bash
#PBS -N lbflow-straight
#PBS -l select=1:ncpus=1:mpiprocs=1
#PBS -l walltime=00:05:00
#PBS -q debug
#PBS -o job.out
#PBS -j oe
# PBS starts a job in $HOME: go back to where it was submitted
if [ -n "${PBS_O_WORKDIR:-}" ]; then cd "$PBS_O_WORKDIR" || exit 1; fi
# Written by hpcdo: run straight of recipe lbflow on machine testpbs.
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
echo "hpcdo-test: pbs job ${PBS_JOBID:-${SLURM_JOB_ID:-none}} on $(hostname) as $(id -un) in $(pwd)"
./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?

