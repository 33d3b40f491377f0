{##
Wait until no other hpcdo builds this recipe in this work root.  The lock
is a directory (mkdir is atomic everywhere) holding "time pid host"; it is
taken over when its holder is gone (same host, no such process) or has held
it for two hours, and removed when the script ends or is cut off.
Values: recipe_dir, lock ("$R"/<recipe_dir>/.hpcdo-build.lock).
##}
mkdir -p {{ recipe_dir }} || exit 1
n=0; while ! mkdir {{ lock }} 2>/dev/null; do
  t=0; p=; o=; read -r t p o < {{ lock }}/t 2>/dev/null
  if [ $(( $(date +%s) - ${t:-0} )) -gt 7200 ] || { [ "$o" = "$(hostname)" ] && ! kill -0 "${p:-0}" 2>/dev/null; }; then rm -rf {{ lock }}; continue; fi
  [ "$n" -eq 0 ] && echo "hpcdo: another hpcdo is building here; waiting" >&2
  n=$((n + 1)); [ "$n" -gt 3600 ] && { echo "hpcdo: gave up waiting for the build lock" >&2; exit 1; }
  sleep 1
done
printf "%s %s %s\n" "$(date +%s)" "$$" "$(hostname)" > {{ lock }}/t
trap 'rm -rf {{ lock }}' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
