"""Benchmark scenario "Transfers": many small files and one big file, up and down, at a given RTT.

Every variant goes through :class:`relay.Relay` (a delay line on loopback, so
0 ms RTT still pays for the relay) to the test cluster's sshd, and every one
verifies host keys against a known_hosts file trusting the cluster's key
under the relay's port.

Variants
  ``hpcdo``               the project's own code: ``SSHRemote`` +
                          ``transfer.send_files`` with ``scripts.sync_script``
                          up, ``transfer.receive_files`` with a script printing
                          one header line and ``tar -cf -`` of the directory down
  ``hpcdo upload_script`` (big file, up) ``scripts.upload_script`` +
                          ``remote.run(..., stdin=file)``: how a geometry goes up
  ``rsync``               ``rsync -a -e "ssh -p PORT ... StrictHostKeyChecking=yes"``
  ``sftp per file``       fabric ``Connection.put`` / ``get``, one file at a time,
                          over one connection opened once

Each timing is wall clock from a cold start: the connection (ssh, paramiko
or fabric) is opened inside the timed region, as a user running one command
would see it.  Each repeat goes to a fresh destination (remotely under
``/home/hpcuser/hpcdo-bench-*``, locally under a temporary directory), is
checked afterwards (names, sizes and a content digest of the whole tree,
outside the timed region) and deleted.  ``remote_ops`` is, for ``hpcdo``,
the number of HPCDO_TRACE lines (connect + commands); for ``sftp per file``,
1 (connect) + the SFTP requests sent; for rsync it is not counted.
``wire_bytes`` is what crossed the relay, both directions.

    python3 bench/transfers.py                 # full: 2000 files, 200 MB, N=3, RTT 0 and 50 ms
    python3 bench/transfers.py --quick         # 20 small files, 20 MB, N=1: about 35 s
    python3 bench/transfers.py --rtt 50 --json out.json

From Python: ``run(rtts_ms=(0, 50), quick=False) -> list[dict]``.
"""

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    from .relay import Relay, known_hosts_for
except ImportError:              # run as a script: bench/ is sys.path[0]
    from relay import Relay, known_hosts_for

from hpcdo.remote import scripts, trace, transfer            # noqa: E402
from hpcdo.remote.ssh import SSHRemote                       # noqa: E402

CLUSTER_DIR = os.environ.get("HPCDO_CLUSTER_DIR", "/var/lib/hpcdo-testcluster")
TARGET = ("127.0.0.1", 2222)
USER = "hpcuser"
KEY = os.path.join(CLUSTER_DIR, "id_ed25519")
KNOWN_HOSTS = os.path.join(CLUSTER_DIR, "known_hosts")
REMOTE_HOME = "/home/hpcuser"

SEED = 20240601
FULL = {"small_files": 2000, "big_bytes": 200 * 10**6, "repeats": 3}
SFTP_SAMPLE = 200
QUICK = {"small_files": 20, "big_bytes": 20 * 10**6, "repeats": 1}   # per-file SFTP at 50 ms: ~0.35 s a file
SMALL_MIN, SMALL_MAX = 1024, 20 * 1024
SUBDIRS = 5
#: a measurement that takes longer than this is cut off (the relay is closed under it)
MEASURE_LIMIT = 1800.0
SUBPROCESS_LIMIT = 1800

BIG_NAME = "big.bin"


# -- data -----------------------------------------------------------------------

def make_small_tree(root, count, seed=SEED):
    """``count`` files of 1-20 KB of random bytes in SUBDIRS subdirectories; returns their names."""
    rng = random.Random(seed)
    names = []
    for i in range(count):
        rel = "d%d/f%05d.dat" % (i % SUBDIRS, i)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(rng.randbytes(rng.randint(SMALL_MIN, SMALL_MAX)))
        names.append(rel)
    return names


def make_big_file(path, size, seed=SEED + 1):
    rng = random.Random(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    left = size
    with open(path, "wb") as fh:
        while left > 0:
            n = min(left, 4 << 20)
            fh.write(rng.randbytes(n))
            left -= n


def tree_digest(root):
    """(file count, total bytes, digest) of the regular files under ``root``, hpcdo's own excluded.

    The digest is ``sha256sum`` of the ``sha256sum`` lines of the files in
    C-sorted order, so the remote side computes the same with coreutils.
    """
    names = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.startswith(".hpcdo-"):
                continue
            names.append(os.path.relpath(os.path.join(dirpath, f), root))
    names.sort(key=lambda s: s.encode())
    outer = hashlib.sha256()
    total = 0
    for rel in names:
        h = hashlib.sha256()
        with open(os.path.join(root, rel), "rb") as fh:
            while True:
                block = fh.read(1 << 20)
                if not block:
                    break
                h.update(block)
                total += len(block)
        outer.update(("%s  %s\n" % (h.hexdigest(), rel)).encode())
    return len(names), total, outer.hexdigest()


REMOTE_DIGEST = (
    'cd %s || exit 3\n'
    "n=$(find . -type f ! -name '.hpcdo-*' | wc -l)\n"
    "b=$(find . -type f ! -name '.hpcdo-*' -printf '%%s\\n' | awk '{s+=$1} END {printf \"%%d\", s}')\n"
    "d=$(find . -type f ! -name '.hpcdo-*' -printf '%%P\\n' | LC_ALL=C sort | "
    "xargs -r -d '\\n' sha256sum | sha256sum | cut -c1-64)\n"
    'echo "$n $b $d"\n')


# -- the bench --------------------------------------------------------------------

class Bench:
    """Local data, a remote base directory, a direct (undelayed) remote for setup and checks."""

    def __init__(self, quick=False, small_files=None, big_bytes=None, repeats=None, log=None):
        sizes = dict(QUICK if quick else FULL)
        if small_files is not None:
            sizes["small_files"] = small_files
        if big_bytes is not None:
            sizes["big_bytes"] = big_bytes
        if repeats is not None:
            sizes["repeats"] = repeats
        self.small_files = sizes["small_files"]
        self.big_bytes = sizes["big_bytes"]
        self.repeats = sizes["repeats"]
        self.log = log or (lambda msg: None)
        self.work = tempfile.mkdtemp(prefix="hpcdo-bench-")
        self.base = "%s/hpcdo-bench-%s" % (REMOTE_HOME, uuid.uuid4().hex[:10])
        self.direct = SSHRemote(TARGET[0], user=USER, port=TARGET[1], identity_file=KEY,
                                known_hosts=KNOWN_HOSTS, name="bench-direct")
        self.small_root = os.path.join(self.work, "small")
        self.big_root = os.path.join(self.work, "big")
        self.small_names = []
        self.sample_names = []
        self.sample_root = os.path.join(self.work, "sample")
        self.expect = {}
        self.relay = None
        self.known_hosts = None
        self._seq = 0

    # -- set-up and tear-down ---------------------------------------------
    def setup(self):
        for path in (KEY, KNOWN_HOSTS):
            if not os.path.exists(path):
                raise SystemExit("bench: %s is missing; start the test cluster with tests/cluster/up" % path)
        t = time.perf_counter()
        self.small_names = make_small_tree(self.small_root, self.small_files)
        make_big_file(os.path.join(self.big_root, BIG_NAME), self.big_bytes)
        self.expect = {"small": tree_digest(self.small_root), "big": tree_digest(self.big_root)}
        if self.small_files > SFTP_SAMPLE:
            # per-file SFTP pays ~7 round trips a file: at 50 ms, 2000 files take
            # 10 minutes a direction, so it is timed on a sample and scaled
            self.sample_names = self.small_names[:SFTP_SAMPLE]
            for name in self.sample_names:
                os.makedirs(os.path.dirname(os.path.join(self.sample_root, name)), exist_ok=True)
                shutil.copy2(os.path.join(self.small_root, name), os.path.join(self.sample_root, name))
            self.expect["sample"] = tree_digest(self.sample_root)
        self.log("data: %d small files (%d bytes), one file of %d bytes, made in %.1f s"
                 % (self.expect["small"][0], self.expect["small"][1], self.big_bytes, time.perf_counter() - t))
        # the sources of the downloads, sent once without delay
        for kind, root, names in (("small", self.small_root, self.small_names),
                                  ("big", self.big_root, [BIG_NAME]),
                                  ("sample", self.sample_root, self.sample_names)):
            if not names:
                continue
            seal = transfer.new_seal()
            transfer.send_files(self.direct, scripts.sync_script(self.base, "source/" + kind, "bench", seal),
                                root, names, what="bench setup", seal=seal)
            self.check_remote("source/" + kind, kind)

    def cleanup(self):
        try:
            self.direct.run("rm -rf %s" % shlex.quote(self.base), what="bench cleanup", check=False)
        finally:
            self.direct.close()
            if self.relay is not None:
                self.relay.close()
                self.relay = None
            shutil.rmtree(self.work, ignore_errors=True)

    def use_rtt(self, rtt_ms):
        if self.relay is not None:
            self.relay.close()
        self.relay = Relay(TARGET, one_way_ms=rtt_ms / 2.0).start()
        self.known_hosts = known_hosts_for(self.relay.port, KNOWN_HOSTS,
                                           os.path.join(self.work, "known_hosts.%d" % self.relay.port))

    # -- helpers ------------------------------------------------------------
    def fresh(self, label):
        """A fresh destination: (remote path relative to the base, new empty local directory)."""
        self._seq += 1
        rel = "dest/%03d-%s" % (self._seq, label.replace(" ", "-"))
        local = os.path.join(self.work, "dest", "%03d-%s" % (self._seq, label.replace(" ", "-")))
        os.makedirs(local)
        return rel, local

    def remote_path(self, rel):
        return "%s/%s" % (self.base, rel)

    def check_remote(self, rel, kind):
        got = self.direct.run(REMOTE_DIGEST % shlex.quote(self.remote_path(rel)), what="bench check").text.split()
        want = self.expect[kind]
        if got != [str(want[0]), str(want[1]), want[2]]:
            raise RuntimeError("bench: %s on the machine does not match the source: %s != %s"
                               % (rel, got, list(want)))

    def check_local(self, path, kind):
        got = tree_digest(path)
        if got != self.expect[kind]:
            raise RuntimeError("bench: %s does not match the source: %s != %s" % (path, got, self.expect[kind]))

    def drop(self, rel, local):
        self.direct.run("rm -rf %s" % shlex.quote(self.remote_path(rel)), what="bench cleanup")
        shutil.rmtree(local, ignore_errors=True)

    def ssh_remote(self):
        return SSHRemote("127.0.0.1", user=USER, port=self.relay.port, identity_file=KEY,
                         known_hosts=self.known_hosts, name="bench-relay")

    def ssh_command(self):
        return " ".join(shlex.quote(w) for w in [
            "ssh", "-F", "/dev/null", "-p", str(self.relay.port), "-i", KEY,
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes"])

    def fabric_connection(self):
        import fabric
        import paramiko

        conn = fabric.Connection("127.0.0.1", user=USER, port=self.relay.port, connect_timeout=30,
                                 connect_kwargs={"key_filename": [KEY], "look_for_keys": False,
                                                 "allow_agent": False})
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        conn.client.load_host_keys(self.known_hosts)
        return conn

    def src(self, kind):
        if kind == "small":
            return self.small_root, self.small_names
        if kind == "sample":
            return self.sample_root, self.sample_names
        return self.big_root, [BIG_NAME]

    # -- one measurement ------------------------------------------------------
    def measure(self, variant, direction, kind):
        """Run one repeat of one variant; returns (seconds, remote_ops, wire_bytes). Checked, then deleted."""
        rel, local = self.fresh("%s-%s-%s" % (variant, direction, kind))
        before = self.relay.stats()
        relay = self.relay
        watchdog = threading.Timer(MEASURE_LIMIT, relay.close)   # a hang ends as an error, not forever
        watchdog.daemon = True
        watchdog.start()
        try:
            seconds, ops = VARIANTS[variant](self, direction, kind, rel, local)
        finally:
            watchdog.cancel()
        after = self.relay.stats()
        wire = (after["bytes_up"] - before["bytes_up"]) + (after["bytes_down"] - before["bytes_down"])
        if direction == "up":
            self.check_remote(rel, kind)
        else:
            self.check_local(local, kind)
        self.drop(rel, local)
        return seconds, ops, wire


class _Traced:
    """Point HPCDO_TRACE at a fresh file for the block; ``ops`` counts its lines afterwards."""

    def __init__(self, work):
        self.path = os.path.join(work, "trace-%s.jsonl" % uuid.uuid4().hex[:8])
        self.ops = None
        self.records = []

    def __enter__(self):
        self._old = os.environ.get("HPCDO_TRACE")
        os.environ["HPCDO_TRACE"] = self.path
        return self

    def __exit__(self, *exc):
        if self._old is None:
            os.environ.pop("HPCDO_TRACE", None)
        else:
            os.environ["HPCDO_TRACE"] = self._old
        self.records = trace.read(self.path)
        self.ops = len(self.records)
        if os.path.exists(self.path):
            os.remove(self.path)
        return False


def download_script(remote_root, rel):
    """A header line, ``@tar``, then a tar of the directory ``rel`` (what ``fetch_script`` does for a run)."""
    return scripts.prelude(remote_root) + (
        'cd %s || { echo "hpcdo-bench: no such directory" >&2; exit 3; }\n'
        'echo "@bench $(date +%%s)"\n'
        "echo @tar\n"
        "tar -cf - .\n" % scripts.q(rel))


def _hpcdo(bench, direction, kind, rel, local):
    root, names = bench.src(kind)
    remote = bench.ssh_remote()
    try:
        with _Traced(bench.work) as tr:
            t = time.perf_counter()
            if direction == "up":
                seal = transfer.new_seal()
                transfer.send_files(remote, scripts.sync_script(bench.base, rel, "bench", seal), root, names,
                                    what="bench upload", seal=seal)
            else:
                header, files = transfer.receive_files(remote, download_script(bench.base, "source/" + kind),
                                                       local, what="bench download")
                files = [f for f in files if not os.path.basename(f).startswith(".hpcdo-")]
                if len(files) != len(names) or not header or not header[0].startswith("@bench"):
                    raise RuntimeError("bench: hpcdo download got %d files, header %r" % (len(files), header))
            seconds = time.perf_counter() - t
    finally:
        remote.close()
    return seconds, tr.ops


def _hpcdo_upload_script(bench, direction, kind, rel, local):
    if direction != "up" or kind != "big":
        raise ValueError("upload_script is for one file, up")
    path = os.path.join(bench.big_root, BIG_NAME)
    size = os.path.getsize(path)
    remote = bench.ssh_remote()
    try:
        with _Traced(bench.work) as tr:
            t = time.perf_counter()
            with open(path, "rb") as fh:
                remote.run(scripts.upload_script(bench.base, rel, BIG_NAME, size, "bench"), stdin=fh,
                           what="bench upload_script")
            seconds = time.perf_counter() - t
    finally:
        remote.close()
    return seconds, tr.ops


def _rsync(bench, direction, kind, rel, local):
    root, _names = bench.src(kind)
    remote = "%s@127.0.0.1:" % USER
    if direction == "up":
        args = [root + "/", remote + bench.remote_path(rel) + "/"]
        bench.direct.run("mkdir -p %s" % shlex.quote(os.path.dirname(bench.remote_path(rel))), what="bench mkdir")
    else:
        args = [remote + bench.remote_path("source/" + kind) + "/", local + "/"]
    t = time.perf_counter()
    proc = subprocess.run(["rsync", "-a", "-e", bench.ssh_command()] + args, capture_output=True,
                          text=True, timeout=SUBPROCESS_LIMIT)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError("bench: rsync failed (exit %d): %s" % (proc.returncode, proc.stderr.strip()[-2000:]))
    return seconds, None


def _sftp(bench, direction, kind, rel, local):
    root, names = bench.src(kind)
    conn = bench.fabric_connection()
    count = {"n": 0}
    dest = bench.remote_path(rel)
    source = bench.remote_path("source/" + kind)
    try:
        t = time.perf_counter()
        conn.open()
        sftp = conn.sftp()
        request = sftp._async_request

        def counted(*args, **kwargs):      # every SFTP request the client sends
            count["n"] += 1
            return request(*args, **kwargs)

        sftp._async_request = counted
        if direction == "up":
            made = set()
            for d in [dest] + sorted({"%s/%s" % (dest, os.path.dirname(n)) for n in names if "/" in n}):
                if d not in made:
                    _sftp_makedirs(sftp, d, made)
            for name in names:
                conn.put(os.path.join(root, name), remote="%s/%s" % (dest, name))
        else:
            for name in names:
                target = os.path.join(local, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                conn.get("%s/%s" % (source, name), local=target)
        seconds = time.perf_counter() - t
    finally:
        conn.close()
    return seconds, 1 + count["n"]


def _sftp_makedirs(sftp, path, made):
    parent = os.path.dirname(path)
    if parent not in made and parent != REMOTE_HOME and parent.startswith(REMOTE_HOME + "/"):
        try:
            sftp.stat(parent)
            made.add(parent)
        except IOError:
            _sftp_makedirs(sftp, parent, made)
    sftp.mkdir(path)
    made.add(path)


VARIANTS = {
    "hpcdo": _hpcdo,
    "hpcdo upload_script": _hpcdo_upload_script,
    "rsync": _rsync,
    "sftp per file": _sftp,
}


def cases(bench):
    """(case label, direction, kind, variants) in the order they run."""
    small = "%d small files" % bench.small_files
    big = "%s file" % _size_label(bench.big_bytes)
    return [
        (small + " up", "up", "small", ["hpcdo", "rsync", "sftp per file"]),
        (small + " down", "down", "small", ["hpcdo", "rsync", "sftp per file"]),
        (big + " up", "up", "big", ["hpcdo", "hpcdo upload_script", "rsync", "sftp per file"]),
        (big + " down", "down", "big", ["hpcdo", "rsync", "sftp per file"]),
    ]


def _size_label(n):
    return "%g MB" % (n / 1e6) if n >= 10**6 else "%g KB" % (n / 1e3)


def run(rtts_ms=(0, 50), quick=False, small_files=None, big_bytes=None, repeats=None,
        variants=None, log=None):
    """Run the scenario at each RTT; returns one row per (case, variant, RTT).

    Row keys: scenario, case, variant, rtt_ms, seconds (median), mb_per_s
    (payload MB = 10**6 bytes per second, from the median), remote_ops,
    bytes (payload), wire_bytes (through the relay, both ways, median run),
    repeats (seconds of every repeat).
    """
    bench = Bench(quick=quick, small_files=small_files, big_bytes=big_bytes, repeats=repeats, log=log)
    rows = []
    try:
        bench.setup()
        for rtt in rtts_ms:
            bench.use_rtt(rtt)
            for label, direction, kind, names in cases(bench):
                for variant in names:
                    if variants and variant not in variants:
                        continue
                    scale, note = 1.0, None
                    if variant == "sftp per file" and kind == "small" and rtt > 0 and bench.sample_names:
                        scale = bench.small_files / float(len(bench.sample_names))
                        note = "timed on %d of the %d files, scaled" % (len(bench.sample_names), bench.small_files)
                        runs = [bench.measure(variant, direction, "sample")]
                        runs = [(r[0] * scale, int(r[1] * scale), int(r[2] * scale)) for r in runs]
                    else:
                        runs = [bench.measure(variant, direction, kind) for _ in range(bench.repeats)]
                    seconds = [r[0] for r in runs]
                    med = statistics.median(seconds)
                    mid = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
                    payload = bench.expect[kind][1]
                    row = {
                        "scenario": "transfer", "case": label, "variant": variant, "rtt_ms": rtt,
                        "seconds": round(med, 4), "mb_per_s": round(payload / 1e6 / med, 2),
                        "remote_ops": mid[1], "bytes": payload, "wire_bytes": mid[2],
                        "repeats": [round(s, 4) for s in seconds],
                    }
                    if note:
                        row["sampled"] = note
                    rows.append(row)
                    bench.log("rtt %3g ms  %-24s %-20s %8.3f s %8.2f MB/s  ops=%s"
                              % (rtt, label, variant, med, row["mb_per_s"], row["remote_ops"]))
    finally:
        bench.cleanup()
    return rows


# -- report ----------------------------------------------------------------------

def markdown(rows):
    lines = ["| RTT ms | case | variant | seconds (median) | MB/s | remote ops | wire MB | repeats (s) |",
             "|---:|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append("| %g | %s | %s | %.3f | %.2f | %s | %.1f | %s |" % (
            r["rtt_ms"], r["case"], r["variant"], r["seconds"], r["mb_per_s"],
            "-" if r["remote_ops"] is None else r["remote_ops"], r["wire_bytes"] / 1e6,
            ", ".join("%.3f" % s for s in r["repeats"])))
    return "\n".join(lines)


def targets(rows, rtt=50):
    """The project's targets at ``rtt``: hpcdo >= 0.8x rsync (big file), >= 10x per-file SFTP (small files)."""
    def speed(case_part, variant):
        for r in rows:
            if r["rtt_ms"] == rtt and case_part in r["case"] and r["variant"] == variant:
                return r["mb_per_s"]
        return None

    out = []
    for direction in ("up", "down"):
        big = [r["case"] for r in rows if r["rtt_ms"] == rtt and r["case"].endswith("file " + direction)]
        small = [r["case"] for r in rows if r["rtt_ms"] == rtt and "small files " + direction in r["case"]]
        if big:
            h, s = speed(big[0], "hpcdo"), speed(big[0], "rsync")
            if h and s:
                out.append(("%s: hpcdo / rsync" % big[0], h / s, 0.8))
        if small:
            h, s = speed(small[0], "hpcdo"), speed(small[0], "sftp per file")
            if h and s:
                out.append(("%s: hpcdo / per-file SFTP" % small[0], h / s, 10.0))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--rtt", type=float, nargs="+", default=[0, 50], help="RTTs in ms (default 0 50)")
    parser.add_argument("--small-files", type=int)
    parser.add_argument("--big-mb", type=float)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--variant", action="append", help="only these variants (repeatable)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    rows = run(tuple(args.rtt), quick=args.quick, small_files=args.small_files,
               big_bytes=int(args.big_mb * 10**6) if args.big_mb else None,
               repeats=args.repeats, variants=args.variant, log=log)
    print(markdown(rows))
    checks = targets(rows)
    if checks:
        print()
        for label, ratio, want in checks:
            print("- %s = %.2fx (target >= %gx): %s" % (label, ratio, want, "met" if ratio >= want else "MISSED"))
    print("\nwall time %.1f s" % (time.perf_counter() - start))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
