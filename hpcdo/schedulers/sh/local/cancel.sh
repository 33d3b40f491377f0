{##
TERM goes to each job's process group (its own session, under setsid) and
to every process of its tree outside that group (all of it without
setsid), found from one snapshot of the process table; what still runs
after the grace is killed, the jobscript's shell last so that its TERM
trap can still leave the exit marker.  dash's builtin kill takes no "--"
and a pid list only, so "kill -TERM -<pgid>" is the one form every sh
accepts.  A pid whose command line lacks "hpcdo-job" is no longer the job:
it is left alone, as the status snippet would call it ended.

hpcdo_ps: the process table as "pid ppid pgid state" lines, from ps where
it takes these POSIX columns, else from /proc/<pid>/stat.
hpcdo_tree PID all|out: the pids of PID's tree and process group, or only
those outside the group.  hpcdo_left: those of $hpcdo_all still running (a
zombie has ended).
##}
hpcdo_ps() {
  ps -A -o pid= -o ppid= -o pgid= -o stat= 2>/dev/null | grep . ||
    cat /proc/[0-9]*/stat 2>/dev/null |
    sed -n 's/^\([0-9]*\) (.*) \([A-Za-z]\) \([0-9]*\) \([0-9]*\) .*/\1 \3 \4 \2/p'
}
hpcdo_tree() {
  printf "%s\n" "$hpcdo_tab" | awk -v r="$1" -v m="$2" '{ pp[$1] = $2; pg[$1] = $3 } END { t[r] = 1;
    do { n = 0; for (p in pp) if (!(p in t) && (pp[p] in t)) { t[p] = 1; n++ } } while (n);
    for (p in pg) if (pg[p] == r) t[p] = 1;
    for (p in t) if ((p in pp) && p ~ /^[0-9]+$/ && (m == "all" || pg[p] != r)) printf "%s ", p }'
}
hpcdo_left() {
  hpcdo_ps | awk -v l=" $hpcdo_all " '$4 !~ /^Z/ && index(l, " " $1 " ") { printf "%s ", $1 }'
}
hpcdo_tab=$(hpcdo_ps); hpcdo_all=; hpcdo_job=
for i in $(printf "%s" "$ids" | tr , " "); do
  case $i in ""|*[!0-9]*|0|1) continue;; esac
  a=$(ps -o args= -p "$i" 2>/dev/null) || continue
  case $a in *hpcdo-job*) ;; *) continue;; esac
  hpcdo_job="$hpcdo_job $i"
  hpcdo_all="$hpcdo_all $(hpcdo_tree "$i" all)"
  o=$(hpcdo_tree "$i" out)
  kill -TERM -"$i" 2>/dev/null
  [ -z "$o" ] || kill -TERM $o 2>/dev/null
done
hpcdo_end=$(( $(date +%s) + {{ grace }} ))
while l=$(hpcdo_left); [ -n "$l" ] && [ "$(date +%s)" -lt "$hpcdo_end" ]; do sleep 0.2 2>/dev/null || sleep 1; done
if [ -n "$l" ]; then
  for p in $l; do case " $hpcdo_job " in *" $p "*) ;; *) kill -KILL "$p" 2>/dev/null;; esac; done
  hpcdo_all=$hpcdo_job; hpcdo_end=$(( $(date +%s) + 2 ))
  while l=$(hpcdo_left); [ -n "$l" ] && [ "$(date +%s)" -lt "$hpcdo_end" ]; do sleep 0.2 2>/dev/null || sleep 1; done
  for i in $hpcdo_job; do kill -KILL -"$i" 2>/dev/null; kill -KILL "$i" 2>/dev/null; done
fi
true
