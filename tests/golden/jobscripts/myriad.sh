#!/bin/bash
#$ -N lbflow-straight
#$ -S /bin/bash
#$ -cwd
#$ -o job.out -j y
#$ -l h_rt=00:05:00
#$ -pe mpi 1
#$ -l mem=4G
#$ -l tmpfs=10G
# Written by hpcdo: run straight of recipe lbflow on machine myriad.
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
case $- in *u*) set +u; . /etc/profile.d/modules.sh; rc=$?; set -u;; *) . /etc/profile.d/modules.sh; rc=$?;; esac; [ "$rc" -eq 0 ] || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
module load default-modules || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
module load cmake/3.21.1 || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
gerun ./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?
