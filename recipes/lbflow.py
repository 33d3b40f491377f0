"""The demo: lbflow, a 2-D lattice-Boltzmann solver for flow in a vessel.

Three geometries (a straight vessel, a bifurcation and a stenosis) and a few
runs that finish in seconds on one core.  The source is the local tree in
demo/lbflow, so uncommitted edits count: edit a file and rerun
`doit fetch_results`, and only the steps that depend on it run again.
"""

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
