{## "sha256  ./path" for every file of the remote source tree (nothing where there is no sha256sum) ##}
cd {{ src }} 2>/dev/null || exit 0
command -v sha256sum >/dev/null 2>&1 || exit 0
find . -type f ! -name '.hpcdo-*' -exec sha256sum {} +
