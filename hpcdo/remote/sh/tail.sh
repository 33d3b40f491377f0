cd {{ rundir }} 2>/dev/null && tail -n {{ lines }} job.out 2>/dev/null; exit 0
