{##
Each run's block, in a subshell: it takes a lock in its run directory and
submits only if job.id still holds what the caller saw, ignoring hang-ups
and interrupts from then on.  Its answer lines (@submitted, @busy,
@changed, @error) go to fd 3, the caller's pipe, and name the run.
##}
{% macro full(what) %}{ rm -f job.sh.tmp; printf "@error %s cannot {{ what }} in the run directory (disk full or over quota?)\n" "$k" >&3; exit 0; }{% endmacro %}
{##
another checkout sharing the work root may have rebuilt the executable
since this call did: checked before the snapshot is linked and again after,
under the recipe's build lock, so a build going on (its stamp removed until
it ends) is waited for rather than taken for another executable
##}
{% macro same_binary(r) %}
grep -q {{ r.binary }} {{ r.build_stamp }} 2>/dev/null || { rm -f {{ r.names }}; printf "@error %s the executable on the machine is no longer the one this call built (another checkout of the project shares this work root?); call again\n" "$k" >&3; exit 0; }
{% endmacro %}
{% macro take_build_lock(r) %}
m=0; while ! mkdir {{ r.build_lock }} 2>/dev/null; do
  t=0; p=; o=; read -r t p o < {{ r.build_lock }}/t 2>/dev/null; case $t in ''|*[!0-9]*) t=0;; esac
  if [ $(( $(date +%s) - t )) -gt 7200 ] || { [ "$o" = "$h" ] && ! kill -0 "${p:-0}" 2>/dev/null; }; then rm -rf {{ r.build_lock }}; continue; fi
  m=$((m + 1)); [ "$m" -gt 3600 ] && { printf "@error %s another hpcdo has been building this recipe for an hour; call again\n" "$k" >&3; exit 0; }
  sleep 1
done
printf "%s %s %s\n" "$(date +%s)" "$$" "$h" > {{ r.build_lock }}/t
trap 'rm -rf .submit.lock {{ r.build_lock }}' EXIT
{% endmacro %}
{##
the scheduler's submit (sets $id) and cancel (of the jobs in $ids), defined
once for all the runs.  Their code splits id and option lists into words on
purpose (SC2046, SC2086); the local scheduler's ps | grep . asks whether ps
printed anything (SC2009); and SC2030, SC2031: each run's subshell sets what
these functions read.
##}
# shellcheck disable=SC2009,SC2030,SC2031,SC2046,SC2086
hpcdo_submit() {
{{ submit }}
}
# shellcheck disable=SC2009,SC2030,SC2031,SC2046,SC2086
hpcdo_cancel() {
{{ cancel }}
}
{##
max_jobs: the user's jobs in the queue are counted once (by the scheduler;
one that cannot count takes the jobs the caller knows active), and a run is
submitted only while there is a free place; the others answer @deferred
and are sent again in a later round.  A block that submitted exits 10.
##}
{% if max_jobs %}
# shellcheck disable=SC2009,SC2046,SC2086
{
{{ count }}
}
case $n in -) n={{ known }};; ''|*[!0-9]*) n={{ max_jobs }};; esac
free=$(({{ max_jobs }} - n))
{% endif %}
{% for r in requests %}
{% if max_jobs %}
if [ "$free" -lt {{ r.slots }} ]; then printf "@deferred %s\n" {{ r.key }}; else
{% endif %}
(
k={{ r.key }}
d={{ r.rundir }}
mkdir -p "$d" && cd "$d" || { printf "@error %s cannot enter the run directory\n" "$k"; exit 0; }
trap '' HUP INT TERM PIPE
exec 3>&1 >>submit.log 2>&1
now=$(date +%s); h=$(hostname 2>/dev/null || uname -n)
{##
the lock is taken over only from a holder known to be gone: on this login
node, when its process has ended (whatever the clock says); from another
node, or with no record, after lock_life seconds.  A holder still inside a
slow sbatch keeps it however long that takes.
##}
if ! mkdir .submit.lock 2>/dev/null; then
  t=0; p=; o=; read -r t p o < .submit.lock/t 2>/dev/null; case $t in ''|*[!0-9]*) t=0;; esac
  if [ "$o" = "$h" ] && [ -n "$p" ]; then kill -0 "$p" 2>/dev/null && s=0 || s=1; else [ $((now - t)) -gt {{ lock_life }} ] && s=1 || s=0; fi
  if [ "$s" = 1 ]; then rm -rf .submit.lock; mkdir .submit.lock 2>/dev/null || { printf "@busy %s\n" "$k" >&3; exit 0; }
  else printf "@busy %s\n" "$k" >&3; exit 0; fi
fi
printf "%s %s %s\n" "$now" "$$" "$h" > .submit.lock/t
trap 'rm -rf .submit.lock' EXIT
cur=$(cat job.id 2>/dev/null)
if [ "$cur" != {{ r.expected_id }} ]; then printf "@changed %s %s\n" "$k" "$cur" >&3; exit 0; fi
{% if r.binary %}{{ take_build_lock(r) }}{{ same_binary(r) }}{% endif %}
cat > job.sh.tmp <<'{{ r.end }}' || {{ full("write the jobscript") }}
{{ r.jobscript }}{{ r.end }}
{## keep the previous attempt's files rather than overwrite them ##}
if [ -n "$cur" ]; then prev="previous/$cur"; mkdir -p "$prev"; for p in {{ r.patterns }}; do for f in $p; do case $f in {{ r.keep }}) ;; *) [ -e "$f" ] && mv -f "$f" "$prev/";; esac; done; done; fi
rm -f job.exit job.started job.id job.cancelled
{% for source, name in r.links %}
{## a directory (an input tree) is linked symbolically: hard links are for files ##}
if [ -d {{ source }} ]; then rm -rf {{ name }} && ln -s {{ source }} {{ name }}; else ln -f {{ source }} {{ name }} 2>/dev/null || cp -f {{ source }} {{ name }}; fi || { printf "@error %s cannot copy %s into the run directory\n" "$k" {{ name }} >&3; exit 0; }
{% endfor %}
{% if r.binary %}{{ same_binary(r) }}
rm -rf {{ r.build_lock }}; trap 'rm -rf .submit.lock' EXIT
{% endif %}
mv -f job.sh.tmp job.sh || {{ full("write the jobscript") }}
{## the jobs in a row for these inputs: automatic resubmissions are counted against retries ##}
{% if r.fresh %}
n=0
{% else %}
n=0; [ -n "$cur" ] && [ "$(cat job.sig 2>/dev/null)" = {{ r.sig }} ] && { read -r n 2>/dev/null < job.tries; case $n in ""|*[!0-9]*) n=1;; esac; }
{% endif %}
printf "%s\n" {{ r.sig }} > job.sig && printf "%s\n" "$((n + 1))" > job.tries || {{ full("record the inputs") }}
{## fd 3 is the caller's pipe: a job that inherited it would hold the connection open until it ended ##}
if hpcdo_submit 3>&-; then
{##
job.id is created only where there is none (ln, or noclobber where links
are not allowed): if another hpcdo recorded a job meanwhile (it took over a
lock it had reason to think abandoned), ours is the one taken back.  A job
whose id cannot be recorded would run unknown to every later call: it is
taken back too.
##}
  if ! { printf "%s\n" "$id" > .job.id.$$ && { ln .job.id.$$ job.id 2>/dev/null || (set -C; cat .job.id.$$ > job.id) 2>/dev/null; }; }; then
    rm -f .job.id.$$; other=$(cat job.id 2>/dev/null); ids=$id; hpcdo_cancel 3>&-
    [ -n "$other" ] && { printf "@changed %s %s\n" "$k" "$other" >&3; exit 0; }
    printf "@error %s job %s was submitted but its id cannot be recorded in the run directory (disk full or over quota?), so it was cancelled\n" "$k" "$id" >&3; exit 0
  fi
  rm -f .job.id.$$
  printf "@submitted %s %s\n" "$k" "$id" >&3{{ "; exit 10" if max_jobs else "" }}
else
  printf "@error %s the scheduler refused the job:\n" "$k" >&3
  [ -s submit.log ] || printf "@error %s (no message: the run directory may be full)\n" "$k" >&3
  tail -n 5 submit.log | while IFS= read -r l; do printf "@error %s %s\n" "$k" "$l" >&3; done
fi
)
{% if max_jobs %}
[ $? -ne 10 ] || free=$((free - {{ r.slots }}))
fi
{% endif %}
{% endfor %}
