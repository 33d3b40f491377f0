{## the user's jobs running in the background: processes whose command line ends in "hpcdo-job" ##}
n=$(ps -u "$(id -un)" -o args= 2>/dev/null | grep -c "[h]pcdo-job$")
