{##
lf DIR... TESTS: "@f <size> <mtime> <path>" for each regular file find selects,
so a fingerprint depends on each file's own name, size and modification
time only: never on column padding or on link counts.  Where stat -c is
missing, ls -lnd lines are parsed field by field (minute precision).  stat
gets its names from find -exec +, never from a shell expansion, so any
number of files fits.
##}
lf() { find "$@" -type f -exec stat -c '@f %s %Y %n' {} + 2>/dev/null; }
stat -c %Y . >/dev/null 2>&1 || lf() { find "$@" -type f -exec ls -lnd {} + 2>/dev/null; }
