{## the user's jobs in $n, each array task on its own line (-g d) after qstat's two header lines; empty when qstat fails ##}
if n=$({{ queue_command }} -g d -u "$(id -un)" 2>/dev/null); then n=$(printf "%s\n" "$n" | awk 'NR > 2 && NF' | grep -c .); else n=; fi
