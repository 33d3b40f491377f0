{##
Receive a tar of changed files from stdin, apply it and the deletions to the
source, stamp.  The stream ends with a member .hpcdo-end holding the seal:
tar cannot tell a stream cut between two members from a whole one.

The stream is unpacked beside the source first, and only a sealed one is
applied, under the build lock: a sync whose connection died (its stdin cut,
its process left waiting for the lock by a dropped session) never touches
the source or its stamp, so it cannot remove the stamp a later sync wrote.
##}
s={{ src }}
{## "$inc", not "$t": build_lock.sh reads the lock holder's time into t ##}
inc="$s.hpcdo-incoming.$$"
rm -rf "$inc" && mkdir -p "$inc" || exit 1
tar -xmf - -C "$inc" || { rm -rf "$inc"; echo "hpcdo: the source upload was cut short" >&2; exit 1; }
read -r e < "$inc/.hpcdo-end" 2>/dev/null || e=
[ "$e" = {{ seal }} ] || { rm -rf "$inc"; echo "hpcdo: the source upload was cut short (between two files)" >&2; exit 1; }
rm -f "$inc/.hpcdo-end"
{% if recipe_dir %}
{% include "build_lock.sh" %}
{% endif %}
mkdir -p "$s" && rm -f "$s/.hpcdo-stamp" || { rm -rf "$inc"; exit 1; }
(cd "$inc" && tar -cf - .) | tar -xmf - -C "$s" || { rm -rf "$inc"; echo "hpcdo: cannot write the source on the machine" >&2; exit 1; }
rm -rf "$inc"
if [ -f "$s/.hpcdo-delete" ]; then
  while IFS= read -r f; do rm -f "$s/$f"; done < "$s/.hpcdo-delete"; rm -f "$s/.hpcdo-delete"
fi
{{ stamp }}
