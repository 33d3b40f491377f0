{{ auth }}GIT_TERMINAL_PROMPT=0; export GIT_TERMINAL_PROMPT
s={{ src }}
ref={{ ref }}
rm -f "$s/.hpcdo-stamp"
{## the origin is set to the URL each time: the recipe may have changed it ##}
if [ -d "$s/.git" ]; then git -C "$s" remote set-url origin {{ url }} && git -C "$s" fetch -q --force --tags origin || exit 1
else rm -rf "$s" && git clone -q -- {{ url }} "$s" || exit 1; fi
if git -C "$s" rev-parse -q --verify "refs/remotes/origin/$ref^{commit}" >/dev/null; then c="origin/$ref"; else c=$ref; fi
{##
a branch is followed to what was just fetched: a local branch of the same
name would stay at the commit of the first clone
##}
git -C "$s" checkout -q -f --detach "$c^{commit}" || exit 1
c=$(git -C "$s" rev-parse HEAD) || exit 1
{{ stamp }}
printf "@commit %s\n" "$c"
