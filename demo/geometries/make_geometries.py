#!/usr/bin/env python3
"""Generate the demo geometries for lbflow (pure standard library).

Writes straight.gmy, bifurcation.gmy and stenosis.gmy next to this script
(or into the directory given as the only argument).  The output is
deterministic, so re-running the script reproduces the committed files
byte for byte.

File format (see demo/lbflow/README.md for the full description):

    lbflow-geometry 1
    <nx> <ny>
    <ny rows of nx characters, first row = top of the domain (y = ny-1)>

    '#' wall   '.' fluid   'I' inlet (fixed density)   'O' outlet (fixed density)
"""

import math
import os
import sys


def render(nx, ny, is_fluid, inlet_outlet):
    """Return the file text for a geometry.

    is_fluid(x, y) -> bool, with y = 0 the bottom row and cell centres at
    (x + 0.5, y + 0.5).  If inlet_outlet is true, fluid cells in the first
    column become 'I' and fluid cells in the last column become 'O'.
    """
    grid = [["#"] * nx for _ in range(ny)]
    for y in range(ny):
        for x in range(nx):
            if is_fluid(x, y):
                grid[y][x] = "."
    if inlet_outlet:
        for y in range(ny):
            if grid[y][0] == ".":
                grid[y][0] = "I"
            if grid[y][nx - 1] == ".":
                grid[y][nx - 1] = "O"
    lines = ["lbflow-geometry 1", "%d %d" % (nx, ny)]
    for y in reversed(range(ny)):  # first row written is the top of the domain
        lines.append("".join(grid[y]))
    return "\n".join(lines) + "\n"


def straight():
    """Straight vessel, 32 cells wide, periodic along x (no inlet/outlet).

    Driven by the body force only: the steady state is plane Poiseuille flow.
    """
    nx, ny = 200, 60
    y0, y1 = 14, 46  # fluid rows y0 .. y1-1 (32 rows)
    return render(nx, ny, lambda x, y: y0 <= y < y1, inlet_outlet=False)


def stenosis():
    """Vessel 40 cells wide with a smooth (cosine) narrowing to 50 % width."""
    nx, ny = 200, 60
    yc = ny / 2.0  # centreline
    r0 = 20.0  # half-width of the healthy vessel
    depth = 0.5  # fraction of the half-width removed at the throat
    xc, length = 100.0, 60.0  # centre and length of the narrowing

    def half_width(xm):
        d = xm - xc
        if abs(d) >= length / 2.0:
            return r0
        return r0 * (1.0 - depth * 0.5 * (1.0 + math.cos(2.0 * math.pi * d / length)))

    def is_fluid(x, y):
        return abs((y + 0.5) - yc) < half_width(x + 0.5)

    return render(nx, ny, is_fluid, inlet_outlet=True)


def bifurcation():
    """A trunk (24 cells wide) that splits smoothly into two branches.

    The branch radius follows Murray's law (r_branch = r_trunk / 2**(1/3)).
    Inlet on the left of the trunk, one outlet at the end of each branch.
    """
    nx, ny = 240, 80
    yc = ny / 2.0
    r_trunk = 12.0
    r_branch = r_trunk / 2.0 ** (1.0 / 3.0)  # about 9.52
    x_split, x_end = 80.0, 140.0  # branches separate between these x
    offset = 20.0  # final distance of each branch centreline from yc

    def s(xm):  # smooth 0 -> 1 over the splitting region
        if xm <= x_split:
            return 0.0
        if xm >= x_end:
            return 1.0
        return 0.5 * (1.0 - math.cos(math.pi * (xm - x_split) / (x_end - x_split)))

    def ds(xm):  # derivative of s
        if xm <= x_split or xm >= x_end:
            return 0.0
        k = math.pi / (x_end - x_split)
        return 0.5 * k * math.sin(k * (xm - x_split))

    def is_fluid(x, y):
        xm, ym = x + 0.5, y + 0.5
        r = r_trunk + (r_branch - r_trunk) * s(xm)
        slope = offset * ds(xm)
        # vertical half-thickness of a tube of radius r with this slope
        h = r * math.sqrt(1.0 + slope * slope)
        for sign in (-1.0, 1.0):
            c = yc + sign * offset * s(xm)
            if abs(ym - c) < h:
                return True
        return False

    return render(nx, ny, is_fluid, inlet_outlet=True)


def main(argv):
    outdir = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, make in (("straight", straight), ("bifurcation", bifurcation),
                       ("stenosis", stenosis)):
        path = os.path.join(outdir, name + ".gmy")
        with open(path, "w", newline="\n") as fh:
            fh.write(make())
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
