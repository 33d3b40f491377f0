{##
Unpack a tar of changed files from stdin into the source, apply deletions,
stamp.  The stream ends with a member .hpcdo-end holding the seal: tar
cannot tell a stream cut between two members from a whole one.
##}
{% if recipe_dir %}
{% include "build_lock.sh" %}
{% endif %}
s={{ src }}
mkdir -p "$s" && rm -f "$s/.hpcdo-stamp" "$s/.hpcdo-end" || exit 1
tar -xmf - -C "$s" || { echo "hpcdo: the source upload was cut short" >&2; exit 1; }
read -r e < "$s/.hpcdo-end" 2>/dev/null || e=
rm -f "$s/.hpcdo-end"
[ "$e" = {{ seal }} ] || { echo "hpcdo: the source upload was cut short (between two files)" >&2; exit 1; }
if [ -f "$s/.hpcdo-delete" ]; then
  while IFS= read -r f; do rm -f "$s/$f"; done < "$s/.hpcdo-delete"; rm -f "$s/.hpcdo-delete"
fi
{{ stamp }}
