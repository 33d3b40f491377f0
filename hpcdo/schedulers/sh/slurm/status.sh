{##
All of the user's jobs in one squeue (an unknown id in a -j list can fail
the whole call); sacct only for the jobs squeue has forgotten, and only
where accounting exists.  sacct's lines keep their "|": its state can be
several words ("CANCELLED by 1000").  A failing squeue (controller down)
prints @qfail: "not in the queue" would wrongly read as "gone".  Beyond
id, state and exit code, the same two queries say when each job was
submitted, started and ended, its time limit and why it waits (reason
last: it may hold blanks); hpcdo.remote.jobinfo reads those, in the
standard time format whatever the user's SLURM_TIME_FORMAT says.
##}
SLURM_TIME_FORMAT=standard; export SLURM_TIME_FORMAT
if q=$({{ queue_command }} -h -t all -u "$(id -un)" -o "%i %T %V %S %l %r" 2>/dev/null); then
  printf "%s\n" "$q"
  l=" $(printf "%s\n" "$q" | awk '{print $1}' | tr "\n" " ") "
  miss=
  for i in $(printf "%s" "$ids" | tr , " "); do
    case "$l" in *" $i "*) ;; *) miss="$miss${miss:+,}$i";; esac
  done
  if [ -n "$miss" ] && command -v {{ accounting_command }} >/dev/null 2>&1; then
    {{ accounting_command }} -n -X -P -j "$miss" -o JobID,State,ExitCode,Submit,Start,End,Elapsed,Timelimit,Reason 2>/dev/null
  fi
else
  echo @qfail
fi
true
