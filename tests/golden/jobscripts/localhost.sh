#!/bin/bash
# Written by hpcdo: run straight of recipe lbflow on machine localhost.
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
./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?
