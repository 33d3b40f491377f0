{% include "build_lock.sh" %}
{% include "build_setup.sh" %}
cd {{ recipe_dir }}/build || exit 1
rm -f .hpcdo-compile
out=$({{ build }} 2>&1); rc=$?
printf "%s\n" "$out"; printf "%s\n" "$out" > .hpcdo-compile.log 2>/dev/null
[ "$rc" -eq 0 ] || exit "$rc"
[ -f {{ executable }} ] || { echo "hpcdo: the build did not make "{{ executable }} >&2; exit 1; }
b=$(h < {{ executable }})
{{ stamp }}
printf "@binary %s\n" "$b"
