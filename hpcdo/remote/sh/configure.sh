{% include "build_lock.sh" %}
{% include "build_setup.sh" %}
cd {{ recipe_dir }} || exit 1
rm -f build/.hpcdo-configure build/.hpcdo-compile
mkdir -p build && cd build || exit 1
{% if fresh %}
rm -rf CMakeCache.txt CMakeFiles/[0-9]* CMakeFiles/CMakeTmp CMakeFiles/CMakeScratch
{% endif %}
{{ cache_stamp }} || exit 1
{## the output is kept in the shell too: on a full disk the log file cannot hold the message that says so ##}
out=$({{ cmake }} {{ options }} ../src 2>&1); rc=$?
printf "%s\n" "$out"; printf "%s\n" "$out" > .hpcdo-configure.log 2>/dev/null
[ "$rc" -eq 0 ] || exit "$rc"
{{ stamp }}
