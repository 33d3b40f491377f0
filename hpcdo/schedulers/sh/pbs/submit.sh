{##
The Slurm PBS wrappers (slurm-wlm-torque) read no "#PBS" line from the
script: when qsub is one of them, the script's plain "#PBS -x value" lines
are passed as options (its -l takes one list, so they are joined).
##}
if grep -q sbatch "$(command -v {{ submit_command }})" 2>/dev/null; then
  pl=$(sed -n "s|^#PBS -l \([A-Za-z0-9_.,:=+@%/-]*\)$|\1|p" job.sh | paste -s -d , -)
  po=$(sed -n "s|^#PBS \(-[A-Za-km-z]\) \([A-Za-z0-9_.,:=+@%/-]*\)$|\1 \2|p" job.sh)
else
  pl=; po=
fi
out=$({{ submit_command }} $po ${pl:+-l "$pl"} ./job.sh); rc=$?; printf "%s\n" "$out"
id=$(printf "%s\n" "$out" | sed -n "/^[0-9][0-9]*[]A-Za-z0-9_.[-]*$/p" | head -n 1)
[ "$rc" -eq 0 ] && [ -n "$id" ]
