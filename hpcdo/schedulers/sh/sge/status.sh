{##
One qstat for all of the user's jobs; qacct (one call per job) only for the
ids qstat no longer lists.  When qstat itself fails (qmaster down) only
@qfail is printed: accounting alone would make every running job look gone.
##}
if q=$({{ queue_command }} -u "$(id -un)" 2>/dev/null); then
  printf "%s\n" "$q"
  l=" $(printf "%s\n" "$q" | awk '{print $1}' | tr "\n" " ") "
  if command -v {{ accounting_command }} >/dev/null 2>&1; then
    for i in $(printf "%s" "$ids" | tr , " "); do
      case "$l" in *" $i "*) ;; *) {{ accounting_command }} -j "$i" 2>/dev/null;; esac
    done
  fi
else
  echo @qfail
fi
true
