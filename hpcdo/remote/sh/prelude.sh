{## Enter the work root (creating it) and define the helpers all scripts use: h, a content hash of stdin. ##}
set -u
R={{ root }}
mkdir -p "$R" && cd "$R" || { echo "hpcdo: cannot use the work root $R" >&2; exit 97; }
h() { if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -c1-64; else cksum | tr " " -; fi; }
