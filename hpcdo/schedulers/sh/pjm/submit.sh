{## pjsub reads the #PJM lines of the script; it prints "[INFO] PJM 0000 pjsub Job N submitted." ##}
out=$({{ submit_command }} job.sh); rc=$?; printf "%s\n" "$out"
id=$(printf "%s\n" "$out" | sed -n "s/.*pjsub Job \([0-9][0-9]*\) submitted.*/\1/p" | head -n 1)
[ "$rc" -eq 0 ] && [ -n "$id" ]
