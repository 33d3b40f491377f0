{## the user's jobs not yet finished (states C and F have ended) in $n, subjobs listed where qstat knows -t; empty when qstat fails ##}
if n=$({{ queue_command }} -t 2>/dev/null || {{ queue_command }} 2>/dev/null); then
  n=$(printf "%s\n" "$n" | awk -v u="$(id -un)" '$3 == u && $5 !~ /^[CF]$/' | grep -c .)
else n=; fi
