{## bsub reads the script on its standard input, so that its #BSUB lines count ##}
out=$({{ submit_command }} < job.sh); rc=$?; printf "%s\n" "$out"
id=$(printf "%s\n" "$out" | sed -n "s/^Job <\([0-9][0-9]*\)> is submitted.*/\1/p" | head -n 1)
[ "$rc" -eq 0 ] && [ -n "$id" ]
