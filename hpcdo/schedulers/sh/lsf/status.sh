{##
"jobid|STAT|exit code|exit reason" lines; an LSF older than 10.1 knows no
exit_reason field and says so without a "|" line, so it is asked again
without it.  The fields after those four (submit, start and finish time,
pending reason) are read by hpcdo.remote.jobinfo.
##}
b=$({{ queue_command }} -a -noheader -o "jobid stat exit_code exit_reason submit_time start_time finish_time pend_reason delimiter='|'" $(printf "%s" "$ids" | tr , " ") 2>&1)
case "$b" in
  *"|"*) ;;
  *) b=$({{ queue_command }} -a -noheader -o "jobid stat exit_code delimiter='|'" $(printf "%s" "$ids" | tr , " ") 2>&1);;
esac
printf "%s\n" "$b"
case "$b" in *"not responding"*|*"LSF is down"*) echo @qfail;; esac
true
