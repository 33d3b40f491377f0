"""The demo: lbflow, a 2-D lattice-Boltzmann solver for flow in a vessel.

Three geometries (a straight vessel, a bifurcation and a stenosis) and a few
runs that finish in seconds on one core.  The source is the local tree in
demo/lbflow, so uncommitted edits count: edit a file and rerun
`doit fetch_results`, and only the steps that depend on it run again.

The analysis ``report`` writes ``results/<machine>/report.md`` (flow rate,
mass change and MLUPS per run) and ``report.png`` (each vessel's speed).  The
picture needs matplotlib (``pip install 'hpcdo[demo]'``); without it the
report is ``report.md`` alone, whose first line says so, and the report is
made again, with its picture, once matplotlib is there.
"""

import importlib.util

from hpcdo.recipe import LocalTree, Recipe

recipe = Recipe(
    name="lbflow",
    source=LocalTree("demo/lbflow"),
    executable="lbflow",
    cmake_options={"CMAKE_BUILD_TYPE": "Release", "LBFLOW_PRECISION": "double"},
    geometries={
        "straight": "demo/geometries/straight.gmy",
        "bifurcation": "demo/geometries/bifurcation.gmy",
        "stenosis": "demo/geometries/stenosis.gmy",
    },
    outputs=["summary.json", "velocity.csv"],
)

for geometry in ("straight", "bifurcation", "stenosis"):
    recipe.run(geometry, geometry=geometry,
               args=["--geometry", "{geometry}", "--steps", 3000, "--tau", 1.0, "--force", 5e-5],
               cores=1, walltime="00:05:00")

# the column MLUPS of `doit machine=a,b,c`'s table of runs across machines
recipe.figure("MLUPS", "summary.json", "mlups")

#: the picture is made only where matplotlib is installed (the extra hpcdo[demo])
def _have_matplotlib():
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


PICTURE = _have_matplotlib()
NO_PICTURE = "report.png was not made: matplotlib is not installed (pip install 'hpcdo[demo]')"


@recipe.analysis("report", outputs=["report.md"] + (["report.png"] if PICTURE else []))
def report(results, out):
    """A table of each run's flow rate, mass change and MLUPS; a picture of each vessel's speed."""
    import json
    import os
    import sys
    if not PICTURE:
        print(NO_PICTURE, file=sys.stderr)
    runs = {}
    for run, path in sorted(results.items()):
        with open(os.path.join(path, "summary.json")) as fh:
            runs[run] = json.load(fh)
    lines = [] if PICTURE else [NO_PICTURE, ""]
    lines += ["# lbflow: %d runs" % len(runs), "",
              "| run | geometry | steps | flow rate (mid) | mass change | MLUPS |",
              "|---|---|---:|---:|---:|---:|"]
    for run, s in runs.items():
        lines.append("| %s | %s | %d | %s | %s | %s |" % (
            run, s["geometry"], s["steps"], number(s["flow_rate_mid"], "%.6g"),
            number(s["mass_change_relative"], "%.2e"), number(s["mlups"], "%.2f")))
    if PICTURE:
        lines += ["", "![speed in each vessel](report.png)"]
        picture({run: speeds(os.path.join(path, "velocity.csv"), runs[run]["nx"], runs[run]["ny"])
                 for run, path in sorted(results.items())}, os.path.join(out, "report.png"))
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def number(value, form):
    return "n/a" if value is None else form % value


def speeds(path, nx, ny):
    """The speed |u| of each fluid cell of a velocity.csv: an ny x nx grid, NaN at walls."""
    import csv
    import math
    cells = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                cells[int(row["x"]), int(row["y"])] = math.hypot(float(row["ux"]), float(row["uy"]))
            except (TypeError, ValueError):
                continue            # not a cell's row (an appended note): nothing to draw
    return [[cells.get((x, y), float("nan")) for x in range(nx)] for y in range(ny)]


def picture(grids, path):
    """One panel per run, the speed in colour, into ``path`` (matplotlib, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(grids), 1, figsize=(8, 2.6 * len(grids)), squeeze=False)
    for ax, (run, grid) in zip(axes[:, 0], grids.items()):
        image = ax.imshow(grid, origin="lower", cmap="viridis", interpolation="nearest")
        ax.set_title(run)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, label="|u| (lattice units)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
