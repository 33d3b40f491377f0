{##
The state probe (probe_script).  s KEY STAMP PATH...: "@s KEY TEXT", TEXT
the stamp's first line, or empty when the stamp or a product is missing.
Stamps are read with the shell's own read (no process per file), every
run's markers with one grep and every run's results with one lf, so the
probe's cost on the machine hardly grows with the number of runs.
##}
s() { k=$1; f=$2; shift 2; for p in "$@"; do [ -e "$p" ] || { printf '@s\t%s\t\n' "$k"; return 0; }; done
  v=; [ -f "$f" ] && read -r v < "$f"; printf '@s\t%s\t%s\n' "$k" "$v"; }
{% include "lf.sh" %}
ids=
{% for key, stamp, products in stamps %}
s {{ key }} {{ stamp }} {{ products }}
{% endfor %}
{##
what each branch or tag names now: "@g KEY SHA REF"; never prompts (no
terminal, BatchMode for ssh) and gives up after 30 s where timeout exists
##}
{% for key, url, ref, auth in heads %}
({{ auth }}{ t=; command -v timeout >/dev/null 2>&1 && t='timeout 30'; GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes' $t git ls-remote -- {{ url }} {{ ref }} 2>/dev/null | awk -v k={{ key }} '{ print "@g", k, $1, $2 }'; })
{% endfor %}
{##
The runs of each parent directory, entered once: one grep prints each
marker's first line after its file's name (/dev/null makes it name the file
even when there is one); the awk reads those lines and prints, comma
separated, the ids to ask the scheduler about: jobs with an id and no exit
marker, or one that says a signal ended them (exit 128-299); one lf lists
the results.
##}
{% for parent, markers, listing in parents %}
if cd {{ parent }} 2>/dev/null; then
m=$(grep -e '' -- /dev/null {{ markers }} 2>/dev/null)
printf '@m %s\n%s\n' {{ parent }} "$m"
i=$(printf '%s\n' "$m" | awk -F: '!($1 in seen) { seen[$1] = 1; v = substr($0, length($1) + 2); gsub(/^[ \t]+|[ \t]+$/, "", v)
  n = split($1, p, "/"); d = substr($1, 1, length($1) - length(p[n]) - 1)
  if (p[n] == "job.id") id[d] = v; else if (p[n] == "job.exit") { split(v, e, " "); ex[d] = e[1] } }
END { for (d in id) if (id[d] != "" && (!(d in ex) || ex[d] ~ /^(12[89]|1[3-9][0-9]|2[0-9][0-9])?$/)) {
  printf "%s%s", sep, id[d]; sep = "," } }')
[ -n "$i" ] && ids="$ids${ids:+,}$i"
printf '@ls %s\n' {{ parent }}
lf {{ listing }}
cd "$R" || exit 97
fi
{% endfor %}
{% if query_timeout %}
{##
each scheduler query command found on PATH becomes a function running it
under timeout (which stops its whole process group): a wedged squeue then
reads as no answer (@qfail), not a hang; one the machine's shell_setup
already made a function is left as it is
##}
if command -v timeout >/dev/null 2>&1; then for c in {{ query_commands }}; do case $(command -v $c 2>/dev/null) in /*) eval "$c() { timeout {{ query_timeout }} $c \"\$@\"; }";; esac; done; fi
{% endif %}
# shellcheck disable=SC2046,SC2086 # the scheduler splits its id list on purpose
if [ -n "$ids" ]; then
echo @q
{{ status }}
fi
exit 0
