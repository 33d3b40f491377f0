{## the login reaches git through the environment and a GIT_ASKPASS program (askpass.sh), never argv ##}
HPCDO_GIT_USER={{ user }} HPCDO_GIT_PASS={{ password }}; export HPCDO_GIT_USER HPCDO_GIT_PASS
hpcdo_askpass=$(mktemp "${TMPDIR:-/tmp}/hpcdo-askpass.XXXXXX" 2>/dev/null) || hpcdo_askpass="$HOME/.hpcdo-askpass.$$"
trap 'rm -f "$hpcdo_askpass"' EXIT
printf %s {{ askpass }} > "$hpcdo_askpass" && chmod 700 "$hpcdo_askpass" && GIT_ASKPASS=$hpcdo_askpass && export GIT_ASKPASS
