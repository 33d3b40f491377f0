{% include "build_lock.sh" %}
{% include "build_setup.sh" %}
cd {{ recipe_dir }} || exit 1
rm -f build/.hpcdo-configure build/.hpcdo-compile
mkdir -p build && cd build || exit 1
{% if fresh %}
rm -rf CMakeCache.txt CMakeFiles/[0-9]* CMakeFiles/CMakeTmp CMakeFiles/CMakeScratch
{% endif %}
{{ cache_stamp }} || exit 1
{## the output goes to hpcdo as it comes and into the log (as in compile.sh): on a full disk the log
   file cannot hold the message that says so, hpcdo still has it ##}
exec 4>&1
rc=$( { { {{ cmake }} {{ options }} ../src 2>&1 3>&- 4>&-; echo "$?" >&3; } | tee .hpcdo-configure.log >&4 2>/dev/null; } 3>&1 )
exec 4>&-
[ "${rc:-1}" -eq 0 ] || exit "${rc:-1}"
{{ stamp }}
