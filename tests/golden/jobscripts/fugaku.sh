#!/bin/bash
#PJM --name lbflow-straight
#PJM -L "node=1"
#PJM -L "rscgrp=small"
#PJM -L "elapse=00:05:00"
#PJM --mpi "proc=1"
#PJM --mpi "max-proc-per-node=1"
#PJM -o job.out
#PJM -j
#PJM -s
# run where the job was submitted
if [ -n "${PJM_O_WORKDIR:-}" ]; then cd "$PJM_O_WORKDIR" || exit 1; fi
# Written by hpcdo: run straight of recipe lbflow on machine fugaku.
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
# PJM sends SIGXCPU at the elapse limit (then SIGKILL): leave the marker of a timed-out job
trap 'hpcdo_exit 152' XCPU
export CC=mpifccpx || { echo "hpcdo: job setup step 1 failed" >&2; hpcdo_exit 98; }
export CXX=mpiFCCpx || { echo "hpcdo: job setup step 2 failed" >&2; hpcdo_exit 98; }
export FC=mpifrtpx || { echo "hpcdo: job setup step 3 failed" >&2; hpcdo_exit 98; }
mpiexec -n 1 ./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05
hpcdo_exit $?
