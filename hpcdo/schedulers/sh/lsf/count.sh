{## the user's unfinished jobs in $n, one line per array element; empty when LSF does not answer ##}
n=$({{ queue_command }} -noheader -u "$(id -un)" 2>&1)
case "$n" in *"not responding"*|*"LSF is down"*) n=;; *) n=$(printf "%s\n" "$n" | grep -c "^[0-9]");; esac
