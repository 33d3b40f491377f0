{## Receive one file on stdin; keep it only if all its bytes arrived. ##}
d={{ directory }}
mkdir -p "$d" && rm -f "$d/.hpcdo-stamp" || exit 1
t="$d/.hpcdo-part.$$"
cat > "$t" || { rm -f "$t"; exit 1; }
n=$(wc -c < "$t" | tr -d " ")
if [ "$n" != {{ size }} ]; then rm -f "$t"; echo "hpcdo: upload cut short: $n of {{ size }} bytes arrived" >&2; exit 1; fi
{##
read-only: every run directory holds a hard link to it, and a job that
wrote to its input would change what the stamp says was uploaded
##}
chmod a-w "$t" && mv -f "$t" "$d"/{{ filename }} || exit 1
{{ stamp }}
