{##
The Slurm under Tianhe is old: the id comes from "Submitted batch job N",
not --parsable.  The script's plain "#SBATCH --x=y" lines also go on the
command line, as NSCC's manual submits (see tianhe.py).
##}
so=$(sed -n "s|^#SBATCH \(--[a-z-]*=[A-Za-z0-9_.,:=+@%/-]*\)$|\1|p" job.sh)
out=$({{ submit_command }} $so ./job.sh); rc=$?; printf "%s\n" "$out"
id=$(printf "%s\n" "$out" | sed -n "s/^Submitted batch job \([0-9][0-9]*\).*/\1/p" | head -n 1)
[ "$rc" -eq 0 ] && [ -n "$id" ]
