{##
Receive one input (a file or a directory tree) as a tar on stdin, into the
content-addressed store: it arrives as "content" under <recipe>/inputs/<digest>.
The stream ends with a member .hpcdo-end holding the seal: only a whole
stream replaces the stored content, and only then is the stamp written.
##}
d={{ directory }}
mkdir -p "$d" && rm -f "$d/.hpcdo-stamp" || exit 1
inc="$d/.hpcdo-incoming.$$"
rm -rf "$inc" && mkdir -p "$inc" || exit 1
tar -xmf - -C "$inc" || { rm -rf "$inc"; printf "hpcdo: the upload of input %s was cut short\n" {{ name }} >&2; exit 1; }
read -r e < "$inc/.hpcdo-end" 2>/dev/null || e=
[ "$e" = {{ seal }} ] || { rm -rf "$inc"; printf "hpcdo: the upload of input %s was cut short (between two files)\n" {{ name }} >&2; exit 1; }
{## a directory with no files still arrives as a directory ##}
[ -e "$inc/content" ] || mkdir "$inc/content" || exit 1
if [ -e "$d/content" ]; then chmod -R u+w "$d/content" && rm -rf "$d/content" || { rm -rf "$inc"; exit 1; }; fi
mv "$inc/content" "$d/content" && rm -rf "$inc" || exit 1
{##
read-only, files and directories: run directories link to it (a file by a
hard link, a directory by a symbolic link), and a job that wrote into it
would change what every other run reads and what the stamp says was sent
##}
chmod -R a-w "$d/content" || exit 1
{{ stamp }}
