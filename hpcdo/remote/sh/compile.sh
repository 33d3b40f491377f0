{% include "build_lock.sh" %}
{% include "build_setup.sh" %}
cd {{ recipe_dir }}/build || exit 1
rm -f .hpcdo-compile
{## the output goes to hpcdo as it comes (-v 2 shows it live) and into the log; a log that cannot
   be written (a full disk) still leaves the output to hpcdo; the build's status comes back on fd 3 ##}
exec 4>&1
rc=$( { { {{ build }} 2>&1 3>&- 4>&-; echo "$?" >&3; } | tee .hpcdo-compile.log >&4 2>/dev/null; } 3>&1 )
exec 4>&-
[ "${rc:-1}" -eq 0 ] || exit "${rc:-1}"
[ -f {{ executable }} ] || { echo "hpcdo: the build did not make "{{ executable }} >&2; exit 1; }
b=$(h < {{ executable }})
{{ stamp }}
printf "@binary %s\n" "$b"
