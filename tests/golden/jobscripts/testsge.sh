#!/bin/bash
#$ -N lbflow-straight
#$ -S /bin/bash
#$ -cwd
#$ -o job.out -j y
#$ -l h_rt=00:05:00
#$ -pe smp 1
#$ -q all.q
# Written by hpcdo: run straight of recipe lbflow on machine testsge.
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
echo "hpcdo-test: sge job ${JOB_ID:-none} in queue ${QUEUE:-?} on $(hostname) as $(id -un) with ${NSLOTS:-?} slots"
./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?

