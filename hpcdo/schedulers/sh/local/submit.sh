{##
The submission ignores HUP, INT and TERM so that it is never cut between
starting the job and recording its id; a child would inherit that, and a
job that ignores TERM can be neither cancelled nor trapped, so the job's
subshell restores them first.  The job runs in a session of its own where
there is setsid; "hpcdo-job" on its command line marks it as the job.
##}
if command -v setsid >/dev/null 2>&1; then
  (trap - HUP INT TERM PIPE; exec setsid bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) &
else
  (trap - INT TERM PIPE; exec nohup bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) &
fi
id=$!
