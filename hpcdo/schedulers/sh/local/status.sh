{## a job runs while its pid runs with "hpcdo-job" on its command line (a recycled pid does not) ##}
for i in $(printf "%s" "$ids" | tr , " "); do
  a=$(ps -o args= -p "$i" 2>/dev/null) && case "$a" in *hpcdo-job*) echo "$i RUNNING";; esac
done
true
