{##
Follow a run's job.out from byte {{ offset }} for up to {{ seconds }} seconds, like tail -f:
every second, what was added goes to stdout; it stops early once the job's exit marker is
there (after printing what the job wrote last).  POSIX sh only: no tail -f --pid.  Then the
byte offset reached and whether the job ended go to stderr, "@tail <offset> <ended>".
A job.out shorter than the offset (the run was submitted again) is read from its start.
##}
cd {{ rundir }} 2>/dev/null || { echo "@tail 0 0 norun" >&2; exit 0; }
off={{ offset }}
left={{ seconds }}
ended=0
t=$(mktemp 2>/dev/null) || t="${TMPDIR:-/tmp}/hpcdo-tail.$$"
trap 'rm -f "$t"' EXIT
trap 'exit 130' INT TERM HUP PIPE
while :; do
  {## the marker is looked at before reading: what the job wrote before it is read this round ##}
  [ -f job.exit ] && ended=1
  if [ -f job.out ]; then
    size=$(wc -c < job.out)
    size=$((size + 0))
    [ "$size" -lt "$off" ] && off=0
    if [ "$size" -gt "$off" ]; then
      tail -c "+$((off + 1))" job.out > "$t"
      n=$(wc -c < "$t")
      n=$((n + 0))
      cat "$t"
      off=$((off + n))
    fi
  fi
  [ "$ended" = 1 ] && break
  [ "$left" -le 0 ] && break
  sleep 1
  left=$((left - 1))
done
echo "@tail $off $ended" >&2
exit 0
