{## the user's pending and running jobs in $n, each array element on its own line (-r); empty when squeue fails (grep -c counts 0 and fails on an empty queue: that is no failure) ##}
if n=$({{ queue_command }} -h -r -u "$(id -un)" -o %i 2>/dev/null); then n=$(printf "%s\n" "$n" | grep -c .); else n=; fi
