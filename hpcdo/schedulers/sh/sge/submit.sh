{## -terse prints "123" (or "123.1-10:1" for an array); older qsub prints 'Your job 123 ("name") has been submitted' ##}
out=$({{ submit_command }} -terse ./job.sh) && printf "%s\n" "$out" &&
  id=$(printf "%s\n" "$out" | sed -n -e "s/^Your job \([0-9][0-9]*\).*/\1/p" \
    -e "s/^\([0-9][0-9]*\)\([.][0-9:-]*\)\{0,1\}$/\1/p" | head -n 1) && [ -n "$id" ]
