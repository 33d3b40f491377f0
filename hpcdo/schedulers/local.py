"""The local scheduler: the jobscript runs in the background, tracked by its pid.

It needs no batch system, so it serves the embedded ``localhost`` machine
and any workstation reached over SSH.  The job runs in a session of its own
(``setsid`` where there is one) so neither a Ctrl-C in the terminal nor the
end of the SSH session reaches it; the word ``hpcdo-job`` on its command
line guards against a recycled pid being taken for the job.
"""

from .base import JobState, Scheduler


class Local(Scheduler):
    name = "local"
    template = "local.sh.j2"
    states = {"RUNNING": JobState.RUNNING}
    #: seconds a cancelled job has to end on TERM before it is killed
    grace = 10

    def submit_snippet(self):
        # The submission ignores HUP, INT and TERM so that it is never cut
        # between starting the job and recording its id; a child would inherit
        # that, and a job that ignores TERM can be neither cancelled nor
        # trapped, so the job's subshell restores them first.
        return ("if command -v setsid >/dev/null 2>&1; then "
                "(trap - HUP INT TERM PIPE; exec setsid bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) & "
                "else (trap - INT TERM PIPE; exec nohup bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) & "
                "fi; id=$!")

    def status_snippet(self):
        return ('for i in $(printf "%s" "$ids" | tr , " "); do '
                'a=$(ps -o args= -p "$i" 2>/dev/null) && '
                'case "$a" in *hpcdo-job*) echo "$i RUNNING";; esac; done')

    def cancel_snippet(self):
        # TERM goes to the job's process group (its own session, under
        # setsid) and to every process of its tree outside that group (all of
        # it without setsid), found from one snapshot of the process table;
        # what still runs after the grace is killed, the jobscript's shell
        # last so that its TERM trap can still leave the exit marker.  The
        # builtin kill of dash takes no ``--`` and a pid list only, so
        # ``kill -TERM -<pgid>`` is the one form every sh accepts.  A pid
        # whose command line lacks ``hpcdo-job`` is no longer the job: it is
        # left alone, as the status snippet would call it ended.
        return CANCEL % {"grace": int(self.grace)}


#: the process table as "pid ppid pgid state" lines: ps where it takes these
#: POSIX columns, else /proc/<pid>/stat ("pid (comm) state ppid pgid ...")
_TABLE = (r"""hpcdo_ps() { ps -A -o pid= -o ppid= -o pgid= -o stat= 2>/dev/null | grep . || """
          r"""cat /proc/[0-9]*/stat 2>/dev/null | """
          r"""sed -n 's/^\([0-9]*\) (.*) \([A-Za-z]\) \([0-9]*\) \([0-9]*\) .*/\1 \3 \4 \2/p'; }""")

#: ``r``'s process tree and process group, from the table: every pid (m=all)
#: or only those outside the group (m=out)
_TREE = ("awk -v r=\"$i\" -v m=%s '{ pp[$1] = $2; pg[$1] = $3 } END { t[r] = 1; "
         "do { n = 0; for (p in pp) if (!(p in t) && (pp[p] in t)) { t[p] = 1; n++ } } while (n); "
         "for (p in pg) if (pg[p] == r) t[p] = 1; "
         "for (p in t) if ((p in pp) && p ~ /^[0-9]+$/ && (m == \"all\" || pg[p] != r)) printf \"%%%%s \", p }'")

CANCEL = "\n".join([
    _TABLE,
    # the pids of $hpcdo_all that still run (a zombie has ended)
    "hpcdo_left() { hpcdo_ps | awk -v l=\" $hpcdo_all \" "
    "'$4 !~ /^Z/ && index(l, \" \" $1 \" \") { printf \"%%s \", $1 }'; }",
    'hpcdo_tab=$(hpcdo_ps); hpcdo_all=; hpcdo_job=',
    'for i in $(printf "%%s" "$ids" | tr , " "); do',
    '  case $i in ""|*[!0-9]*|0|1) continue;; esac',
    '  a=$(ps -o args= -p "$i" 2>/dev/null) || continue',
    '  case $a in *hpcdo-job*) ;; *) continue;; esac',
    '  hpcdo_job="$hpcdo_job $i"',
    '  hpcdo_all="$hpcdo_all $(printf "%%s\\n" "$hpcdo_tab" | ' + _TREE % "all" + ')"',
    '  o=$(printf "%%s\\n" "$hpcdo_tab" | ' + _TREE % "out" + ')',
    '  kill -TERM -"$i" 2>/dev/null',
    '  [ -z "$o" ] || kill -TERM $o 2>/dev/null',
    'done',
    'hpcdo_end=$(( $(date +%%s) + %(grace)d ))',
    'while l=$(hpcdo_left); [ -n "$l" ] && [ "$(date +%%s)" -lt "$hpcdo_end" ]; do '
    'sleep 0.2 2>/dev/null || sleep 1; done',
    'if [ -n "$l" ]; then',
    '  for p in $l; do case " $hpcdo_job " in *" $p "*) ;; *) kill -KILL "$p" 2>/dev/null;; esac; done',
    '  hpcdo_all=$hpcdo_job; hpcdo_end=$(( $(date +%%s) + 2 ))',
    '  while l=$(hpcdo_left); [ -n "$l" ] && [ "$(date +%%s)" -lt "$hpcdo_end" ]; do '
    'sleep 0.2 2>/dev/null || sleep 1; done',
    '  for i in $hpcdo_job; do kill -KILL -"$i" 2>/dev/null; kill -KILL "$i" 2>/dev/null; done',
    'fi',
    'true'])
