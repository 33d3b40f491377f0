{##
Where a run's program listens for steering: its steer.json, one line, and whether its job has
ended (the jobscript's exit marker).  Answers, one a line:
  @norun           no run directory (the run was never submitted here)
  @ended           job.exit exists: the job has ended
  @steer <json>    the steer.json the program published ({"host": ..., "port": ...})
  @nosteer         no steer.json: the program publishes no port (or not yet, or no more)
##}
cd {{ rundir }} 2>/dev/null || { echo "@norun"; exit 0; }
[ -f job.exit ] && echo "@ended"
if [ -f steer.json ]; then
  printf '@steer %s\n' "$(tr -d '\n' < steer.json)"
else
  echo "@nosteer"
fi
exit 0
