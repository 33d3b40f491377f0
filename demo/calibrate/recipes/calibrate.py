"""Calibrate lbflow's driving force so that the flow rate through the stenosis hits a target.

An iterative workflow (docs/loops.md): iteration 1 runs lbflow with a first
guess of the body force; :func:`calibrate` reads each iteration's fetched
summary.json and gives the next force, by Newton's step for a flow rate
proportional to the force after the first run, and by the secant through
the last two runs after that, until the flow rate is within 1% of TARGET
(at most 8 iterations).  Each iteration is the run ``calibrate-01``,
``calibrate-02`` ... with its own signature: an interrupted call resumes at
the iteration it was in, and a change of this file's function reruns from
the first iteration whose force changes.

    cd demo/calibrate && doit fetch_results        # or: doit machine=<name> fetch_results

The history is results/<machine>/calibrate.history.json (``doit status``
shows it), the plot results/<machine>/calibrate.convergence.png.
"""

import json
import os

from hpcdo.loop import Converged, Next
from hpcdo.recipe import LocalTree, Recipe

#: the flow rate through the middle of the stenosis to reach (lattice units), and how close
TARGET = 3.0
TOLERANCE = 0.01

recipe = Recipe(
    name="lbflow",
    source=LocalTree("../lbflow"),
    executable="lbflow",
    cmake_options={"CMAKE_BUILD_TYPE": "Release", "LBFLOW_PRECISION": "double"},
    geometries={"stenosis": "../geometries/stenosis.gmy"},
    outputs=["summary.json"],
)


@recipe.loop("calibrate", first={"force": 1e-5}, max_iterations=8, geometry="stenosis",
             args=["--geometry", "{geometry}", "--steps", 2000, "--tau", 1.0, "--force", "{force}",
                   "--output-every", 0],
             cores=1, walltime="00:05:00")
def calibrate(results, params, history):
    """The next force from this iteration's flow rate: Newton's step, then the secant."""
    with open(os.path.join(results, "summary.json")) as fh:
        flow = json.load(fh)["flow_rate_mid"]
    force = params["force"]
    if abs(flow - TARGET) <= TOLERANCE * TARGET:
        return Converged(value=flow)
    if not history:
        # the flow rate is nearly proportional to the force: aim straight at the target
        return Next(value=flow, force=force * TARGET / flow)
    before = history[-1]
    slope = (flow - before["value"]) / (force - before["params"]["force"])
    return Next(value=flow, force=force + (TARGET - flow) / slope)
