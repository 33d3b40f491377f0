"""Scenario 7: a campaign, a sweep of many runs under a queue limit (issue 15).

One recipe line makes the sweep (``recipe.sweep`` over 100 force values
with 10 replicas: 1,000 runs).  Built and its geometry sent at 0 ms, the
campaign is then submitted at 50 ms RTT under the machine's ``max_jobs``,
counting the submission's round trips and seconds; it runs to the end with ``fetch_results`` while
a sampler counts the user's jobs in ``squeue`` every half second (jobs
queued at peak); then the no-op is timed at 50 ms, the figure the target
compares with the 30-run no-op of scenario 1.
"""

import statistics
import threading
import time

#: the sweep: 100 values x 10 replicas (a quick pass uses 6 x 10)
FORCES_FULL, FORCES_QUICK, REPLICAS = 100, 6, 10
MAX_JOBS = 50
#: the packings measured: ``array`` and ``allocation`` join when hpcdo has them (issue 15)
PACKS = ("none",)


def recipe_text(forces, replicas, steps=20):
    values = ", ".join("%.3e" % (1e-5 * (1 + i / 10.0)) for i in range(forces))
    return "\n".join([
        "from hpcdo.recipe import LocalTree, Recipe",
        "recipe = Recipe(name='lbflow', source=LocalTree('demo/lbflow'), executable='lbflow',",
        "    cmake_options={'CMAKE_BUILD_TYPE': 'Release'},",
        "    geometries={'straight': 'demo/geometries/straight.gmy'}, outputs=['summary.json'])",
        "recipe.sweep('c', {'force': [%s]}, replicas=%d, geometry='straight'," % (values, replicas),
        "             args=['--geometry', '{geometry}', '--steps', %d, '--force', '{force}'," % steps,
        "                   '--output-every', 0], walltime='00:05:00')",
        ""])


class QueueSampler:
    """Counts the user's jobs in squeue (array elements each count, as a site's limit counts them) every ``every`` seconds, in a thread, until stopped."""

    def __init__(self, ssh, every=0.5):
        self.ssh, self.every = ssh, every
        self.counts = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            out = self.ssh("squeue -h -r -u hpcuser -o %i | wc -l").stdout.strip()
            if out.isdigit():
                self.counts.append(int(out))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak(self):
        return max(self.counts) if self.counts else 0


def run(workdir, latency, project_cls, row, ops, ssh, quick, repeats):
    """The campaign's rows, for each packing variant."""
    forces = FORCES_QUICK if quick else FORCES_FULL
    runs = forces * REPLICAS
    rows = []
    for pack in PACKS:
        project = project_cls(workdir, 1, "campaign-%s" % pack)
        with open(project.recipe_path(), "w") as fh:
            fh.write(recipe_text(forces, REPLICAS))
        keys = ["max_jobs=%d" % MAX_JOBS, "pack=%s" % pack]
        case, variant = "%d-run sweep" % runs, "max_jobs %d, pack %s" % (MAX_JOBS, pack)
        latency.use(project, 0)
        project.doit("compile", "send_geometry", *keys)
        latency.use(project, 50)
        with QueueSampler(ssh) as sampler:
            seconds, records, _ = project.doit("submit", *keys)
            submit_ops = ops(records)
            submit_cmds = sum(1 for r in records if r["what"].startswith("submit"))
            latency.use(project, 0)
            done_seconds, _records, _ = project.doit("fetch_results", *keys)
        rows.append(row("7 campaign", case, variant, 50, seconds, submit_ops,
                        submit_commands=submit_cmds, peak_jobs_queued=sampler.peak,
                        samples=len(sampler.counts), to_results_s=round(done_seconds, 1)))
        latency.use(project, 50)
        times, counts = [], []
        for _ in range(repeats):
            s, records, out = project.doit("fetch_results", *keys)
            times.append(s)
            counts.append(ops(records))
        rows.append(row("7 campaign no-op", case, variant, 50, statistics.median(times), max(counts),
                        times))
        project.cleanup()
        time.sleep(1)
    return rows


def judge(get, rows):
    """The campaign's targets: the no-op within 1.5x the 30-run no-op, the queue never over max_jobs."""
    verdicts = []
    noop30 = get("1 no-op", "30 runs", "hpcdo", 50)
    for r in rows:
        if r["scenario"] == "7 campaign no-op" and noop30:
            verdicts.append(("%s (%s) no-op at 50 ms within 1.5x the 30-run no-op" % (r["case"], r["variant"]),
                             r["seconds"] <= 1.5 * noop30["seconds"] and r["remote_ops"] == 1,
                             "%.2fx (%.2f s vs %.2f s), %d remote op(s)"
                             % (r["seconds"] / noop30["seconds"], r["seconds"], noop30["seconds"],
                                r["remote_ops"])))
        if r["scenario"] == "7 campaign":
            verdicts.append(("%s (%s): jobs queued never over max_jobs" % (r["case"], r["variant"]),
                             0 < r["peak_jobs_queued"] <= MAX_JOBS,
                             "peak %d of %d, %d samples" % (r["peak_jobs_queued"], MAX_JOBS, r["samples"])))
    return verdicts
