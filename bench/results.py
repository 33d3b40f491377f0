"""Benchmark scenario "6 many results": a run of tens of thousands of result files.

One run directory on the test cluster holds N one-byte files under ``out/``
(made there with ``split``, outside the timed region).  Timed, over SSH
straight to the cluster's sshd (no relay: the figure is the cost of the
files, not of the latency):

``fetch``  ``scripts.fetch_script`` + ``transfer.receive_files``, as the
           ``fetch_results`` step does (listing, tar, unpack with the exact
           choice of :mod:`hpcdo.outputs`), into a fresh local directory
``probe``  ``scripts.poll_script`` for that run + ``parse_probe``: what every
           later call pays to learn the run's fingerprint

Each is checked: all N files arrive, and the probe's fingerprint equals the
fetch's (else every call would fetch again).

    python3 bench/results.py             # 70,000 files
    python3 bench/results.py --files 5000
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from hpcdo import outputs  # noqa: E402
from hpcdo.remote import scripts, transfer  # noqa: E402
from hpcdo.remote.ssh import SSHRemote  # noqa: E402
from hpcdo.schedulers import get  # noqa: E402

CLUSTER = os.environ.get("HPCDO_CLUSTER_DIR", "/var/lib/hpcdo-testcluster")
PATTERNS = ["out"]


def run(files=70000, log=print):
    remote = SSHRemote("127.0.0.1", user="hpcuser", port=2222, identity_file=os.path.join(CLUSTER, "id_ed25519"),
                       known_hosts=os.path.join(CLUSTER, "known_hosts"), name="bench-results")
    base = "hpcdo-bench-results-%s" % uuid.uuid4().hex[:10]
    rundir = "runs/r"
    local = tempfile.mkdtemp(prefix="hpcdo-bench-results-")
    rows = []
    try:
        t = time.perf_counter()
        remote.run("mkdir -p %s/%s/out && cd %s/%s && echo '0 1' > job.exit && echo 1 > job.id && cd out && "
                   "seq %d | split -l 1 -a 6 - f" % (base, rundir, base, rundir, files), what="bench setup")
        log("results: %d files made on the machine in %.1f s" % (files, time.perf_counter() - t))

        dest = os.path.join(local, "fetch")
        os.makedirs(dest)
        t = time.perf_counter()
        listing, got = transfer.receive_files(
            remote, scripts.fetch_script(base, rundir, PATTERNS), dest, strip="r",
            accept=lambda rel: outputs.is_fetched(rel, PATTERNS), what="bench fetch")
        fetch_seconds = time.perf_counter() - t
        fetched = scripts.fetch_fingerprint(listing, rundir, PATTERNS)
        if len([f for f in got if f.startswith("out/")]) != files:
            raise RuntimeError("bench: fetched %d files of %d" % (len(got), files))

        local_sched = get("slurm")
        runs = [("k", rundir, PATTERNS)]
        t = time.perf_counter()
        text = remote.run(scripts.poll_script(base, runs, local_sched), what="bench probe").text
        probe_seconds = time.perf_counter() - t
        probed = scripts.parse_probe(text, local_sched, runs)[1]["k"]["fingerprint"]
        if probed != fetched:
            raise RuntimeError("bench: the probe's fingerprint %s is not the fetch's %s" % (probed, fetched))
        rows.append({"scenario": "6 many results", "case": "%d files" % files, "variant": "fetch", "rtt_ms": 0,
                     "seconds": round(fetch_seconds, 3), "remote_ops": 1})
        rows.append({"scenario": "6 many results", "case": "%d files" % files, "variant": "probe", "rtt_ms": 0,
                     "seconds": round(probe_seconds, 3), "remote_ops": 1, "answer_bytes": len(text)})
        log("results: fetch %.1f s, probe %.2f s (%d bytes of answer)" % (fetch_seconds, probe_seconds, len(text)))
    finally:
        remote.run("rm -rf %s" % shlex.quote(base), what="bench cleanup", check=False)
        remote.close()
        shutil.rmtree(local, ignore_errors=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=70000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.files), indent=2))


if __name__ == "__main__":
    main()
