{##
The machine check (check_script, `doit machine=X check`): one script asks
everything a new machine must answer, and prints one line per finding:
"@c<TAB>name<TAB>OK|WARN|FAIL|INFO<TAB>detail" (detail on one line).
"@t start|end <seconds>" bracket it for the clock offset, and anything
printed before "@t start" came from the login's start-up files.  It never
submits a job (the scheduler's test or verify mode only) and leaves nothing
behind: what it writes goes in a temporary directory it removes on exit.
The work root is not created: where it does not exist yet, the nearest
directory above it must be writable.
##}
t0=$(date +%s.%N 2>/dev/null)
case $t0 in *[!0-9.]*|"") t0=$(date +%s);; esac
printf '@t start %s\n' "$t0"
set -u
c() { printf '@c\t%s\t%s\t%s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\t\n\r' '   ' | cut -c1-400)"; }
{## tm CMD ARG...: a program on PATH under timeout where there is one (a wedged scheduler must not hang the check) ##}
tm() { case $(command -v "$1" 2>/dev/null) in /*) if command -v timeout >/dev/null 2>&1; then timeout 60 "$@"; return; fi;; esac; "$@"; }
u=$(id -un 2>/dev/null || printf '%s' "${USER:-?}")
c user INFO "$u on $(uname -n 2>/dev/null)"
c shell INFO "$(getent passwd "$u" 2>/dev/null | cut -d: -f7)"

{## the work root, or the nearest directory above it that exists ##}
R={{ root }}
w=$R
while [ ! -d "$w" ] && [ "$w" != / ] && [ "$w" != . ]; do w=$(dirname "$w"); done
t=
if t=$(mktemp -d "$w/.hpcdo-check.XXXXXX" 2>/dev/null) || { t="$w/.hpcdo-check.$$" && mkdir "$t" 2>/dev/null; }; then
  trap 'rm -rf "$t"' EXIT
  trap 'exit 1' HUP INT TERM
  if printf 'x\n' > "$t/w" 2>/dev/null && [ -d "$R" ]; then c root OK "$R is writable"
  elif [ -s "$t/w" ]; then c root OK "$R does not exist yet (made on first use); $w is writable"
  else c root FAIL "cannot write a file in $w"; fi
else
  t=
  if [ -d "$R" ]; then c root FAIL "cannot write in $R"; else c root FAIL "$R does not exist and $w is not writable"; fi
fi
c space - "$(df -Pk "$w" 2>/dev/null | awk 'NR == 2 { print $4 " " $6 }')"
if command -v lfs >/dev/null 2>&1 && [ "$(stat -f -c %T "$w" 2>/dev/null)" = lustre ]; then
  c quota - "$(tm lfs quota -h -u "$u" "$w" 2>&1 | tail -n +2 | head -n 4)"
elif command -v quota >/dev/null 2>&1; then
  c quota - "$(tm quota -s 2>&1 | head -n 6)"
else
  c quota INFO "no quota tool (quota, lfs) on the machine"
fi

{## the module system, then each module in order, in this shell (a later one may need an earlier one); o: their output ##}
{% if init or modules %}
o=/dev/null
[ -n "$t" ] && o="$t/out"
{% endif %}
{% if init %}
if [ -r {{ init_path }} ]; then
  {## first in a subshell: an init file that exits must not end the check ##}
  if ( {{ init }} ) > "$o" 2>&1 && { {{ init }}; } > "$o" 2>&1; then c module_init OK {{ init_path }}
  else c module_init FAIL "sourcing it failed: $(tail -n 3 "$o" 2>/dev/null)"; fi
else
  c module_init FAIL "no readable file "{{ init_path }}
fi
{% endif %}
if command -v module >/dev/null 2>&1; then
  c module_system OK "$(module --version 2>&1 | grep -v '^[[:space:]]*$' | head -n 1)"
else
  c module_system - "no module command"
fi
{% for label, line in modules %}
if command -v module >/dev/null 2>&1; then
  {{ line }} > "$o" 2>&1; rc=$?
  if [ "$rc" -ne 0 ] || grep -qi -e error -e 'unable to locate' "$o" 2>/dev/null; then
    c module FAIL {{ label }}": $(grep -v '^[[:space:]]*$' "$o" 2>/dev/null | head -n 3)"
  else
    c module OK {{ label }}
  fi
else
  c module FAIL {{ label }}": no module command"
fi
{% endfor %}
{% for line in exports %}
{{ line }}
{% endfor %}

{## build tools: cmake, the compilers CMake would pick (CC/CXX/FC, else the usual names) ##}
if v=$(tm {{ cmake }} --version 2>&1 </dev/null); then c cmake OK "$(printf '%s\n' "$v" | head -n 1)"
else c cmake FAIL "$(printf '%s\n' "$v" | head -n 2)"; fi
comp() {
  n=$1; l=$2; e=$3; shift 3
  [ -n "$e" ] && set -- "$e"
  for x in "$@"; do
    p=$(command -v "$x" 2>/dev/null) || continue
    c "$n" OK "$p: $(tm "$x" --version 2>&1 </dev/null | grep -v '^[[:space:]]*$' | head -n 1)"
    return 0
  done
  c "$n" "$l" "not found: $*"
}
comp cc FAIL {{ cc }} cc gcc clang icx
comp cxx FAIL {{ cxx }} c++ g++ clang++ icpx CC
comp fc INFO {{ fc }} gfortran ftn ifx ifort flang nvfortran
comp mpicc INFO "" mpicc

{## the scheduler: its commands, whether it answers, and whether it would take a job like ours ##}
cmd() { if p=$(command -v "$2" 2>/dev/null); then c command OK "$1: $p"; else c command - "$1: $2 not found"; fi; }
{% for role, command in commands %}
cmd {{ role }} {{ command }}
{% endfor %}
{% if kind == "local" %}
c queue OK "jobs run in the background here (no batch system)"
{% else %}
if v=$({{ query }} 2>&1); then c queue OK {{ query_text }}; else c queue FAIL {{ query_text }}": $(printf '%s\n' "$v" | tail -n 3)"; fi
{% endif %}
{% if jobscript %}
if [ -n "$t" ] && printf '%s' {{ jobscript }} > "$t/job.sh"; then
  cd "$t" || exit 1
{% if kind == "slurm" %}
  if v=$(tm {{ submit_command }} --test-only job.sh 2>&1); then c job_test OK "$v"; else c job_test FAIL "$v"; fi
  if v=$(tm sacctmgr -n -P show assoc where user="$u" format=account,partition,qos 2>/dev/null) && [ -n "$v" ]; then
    printf '%s\n' "$v" | sed 's/^/@a /'
  fi
{% elif kind == "sge" %}
  if v=$(tm {{ submit_command }} -w v job.sh 2>&1); then c job_test OK "$v"; else c job_test FAIL "$v"; fi
{% elif kind == "pbs" %}
  if grep -q sbatch "$(command -v {{ submit_command }})" 2>/dev/null && command -v sbatch >/dev/null 2>&1; then
    {## Slurm's PBS wrappers: Slurm underneath has a test mode ##}
    if v=$(tm sbatch --test-only {{ wrapped }} --wrap=true 2>&1); then c job_test OK "$v"; else c job_test FAIL "$v"; fi
{% if partition %}
  elif v=$(tm {{ queue_command }} -Q {{ partition }} 2>&1); then
    c job_test - "$v"
  else
    c job_test FAIL "$v"
{% else %}
  else
    c job_test INFO "PBS has no test submission: account and resources not checked"
{% endif %}
  fi
{% elif kind == "lsf" %}
{% if partition %}
  if v=$(tm bqueues {{ partition }} 2>&1); then c job_test - "$v"; else c job_test FAIL "$v"; fi
{% else %}
  c job_test INFO "LSF has no test submission: the default queue will be used"
{% endif %}
{% endif %}
  cd / || exit 1
else
  c job_test INFO "not tested: no writable directory for the test jobscript"
fi
{% endif %}
t1=$(date +%s.%N 2>/dev/null)
case $t1 in *[!0-9.]*|"") t1=$(date +%s);; esac
printf '@t end %s\n' "$t1"
exit 0
