"""hpcdo's benchmarks: round trips and time at a real supercomputer's latency.

Every scenario runs against the loopback test cluster (started here if
needed), directly and through a relay that delays every chunk by a fixed
time each way (bench/relay.py), side by side with the alternatives in
bench/baselines.py.  Wall time is the median of the repeats; remote
operations are counted from HPCDO_TRACE.  Prints a markdown table and
writes every figure to a JSON file.

    bench/run            # full: 30 and 300 runs, 3 repeats (about 10 minutes)
    bench/run --quick    # smoke pass: small sizes, 1 repeat (about 2 minutes)
    bench/run --only campaign   # the 1,000-run sweep alone
"""

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from relay import Relay, known_hosts_for  # noqa: E402

CLUSTER = os.environ.get("HPCDO_CLUSTER_DIR", "/var/lib/hpcdo-testcluster")
GEOMETRIES = ("straight", "bifurcation", "stenosis")

BASELINE_DODO = '''"""Benchmark baseline: hpcdo with one of bench/baselines.py's behaviours."""
import os
import sys
sys.path.insert(0, %r)
import baselines
baselines.install(os.environ["HPCDO_BENCH_BASELINE"])
from hpcdo.cli import needs_loader
needs_loader(__file__)
'''


def ensure_cluster():
    if os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "tests", "cluster", "up")], check=True,
                       stdout=subprocess.DEVNULL)
    if not os.path.exists(os.path.join(CLUSTER, "cluster.env")):
        sys.exit("bench: the test cluster is not up: run tests/cluster/up as root")


def ssh(command):
    return subprocess.run(
        ["ssh", "-i", os.path.join(CLUSTER, "id_ed25519"), "-p", "2222", "-o", "BatchMode=yes",
         "-o", "UserKnownHostsFile=" + os.path.join(CLUSTER, "known_hosts"),
         "-o", "StrictHostKeyChecking=yes", "hpcuser@127.0.0.1", command],
        capture_output=True, text=True, timeout=600)


class BenchProject:
    """A copy of the project with a generated recipe of ``runs`` runs and its own work root."""

    def __init__(self, workdir, runs, name, steps=20):
        self.path = os.path.join(workdir, name)
        os.makedirs(self.path)
        for item in ("dodo.py", "pyproject.toml", "machines", "demo", "jobscripts"):
            src = os.path.join(ROOT, item)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.path, item),
                                ignore=shutil.ignore_patterns("machines_user.yml"))
            else:
                shutil.copy2(src, self.path)
        os.makedirs(os.path.join(self.path, "recipes"))
        self.write_recipe(runs, steps)
        with open(os.path.join(self.path, "dodo_baseline.py"), "w") as fh:
            fh.write(BASELINE_DODO % HERE)
        self.remote_root = "hpcdo-bench/%s-%s" % (name, uuid.uuid4().hex[:8])
        self.port = 2222
        self.known_hosts = os.path.join(CLUSTER, "known_hosts")

    def write_recipe(self, runs, steps):
        lines = ["from hpcdo.recipe import LocalTree, Recipe",
                 "recipe = Recipe(name='lbflow', source=LocalTree('demo/lbflow'), executable='lbflow',",
                 "    cmake_options={'CMAKE_BUILD_TYPE': 'Release'},",
                 "    geometries={g: 'demo/geometries/%s.gmy' % g for g in " + repr(GEOMETRIES) + "},",
                 "    outputs=['summary.json'])",
                 "for i in range(%d):" % runs,
                 "    g = %r[i %% 3]" % (GEOMETRIES,),
                 "    recipe.run('r%%04d' %% i, geometry=g, args=['--geometry', '{geometry}', '--steps', "
                 "%d, '--output-every', 0], walltime='00:05:00')" % steps]
        with open(self.recipe_path(), "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def recipe_path(self):
        return os.path.join(self.path, "recipes", "bench.py")

    def doit(self, *args, machine="testslurm", baseline=None, check=True):
        """Run doit; return (seconds, trace records, stdout)."""
        trace = os.path.join(self.path, ".trace.jsonl")
        if os.path.exists(trace):
            os.remove(trace)
        env = dict(os.environ, HPCDO_TRACE=trace)
        argv = [sys.executable, "-m", "doit"]
        if baseline:
            env["HPCDO_BENCH_BASELINE"] = baseline
            argv += ["-f", "dodo_baseline.py"]
        argv += ["machine=" + machine]
        if machine == "testslurm":
            argv += ["remote_root=" + self.remote_root, "port=%d" % self.port, "known_hosts=" + self.known_hosts]
        start = time.monotonic()
        proc = subprocess.run(argv + list(args), cwd=self.path, capture_output=True, text=True, env=env)
        seconds = time.monotonic() - start
        if check and proc.returncode != 0:
            raise SystemExit("bench: doit %s failed:\n%s%s" % (" ".join(args), proc.stdout[-3000:], proc.stderr[-3000:]))
        records = []
        if os.path.exists(trace):
            with open(trace) as fh:
                records = [json.loads(line) for line in fh if line.strip()]
        return seconds, records, proc.stdout

    def through(self, relay, known_hosts):
        self.port = relay.port if relay else 2222
        self.known_hosts = known_hosts

    def cleanup(self):
        ssh("scancel -u hpcuser -n none 2>/dev/null; rm -rf %s" % self.remote_root)


class Latency:
    """Relays for each RTT, with a known_hosts file trusting the cluster under each relay port."""

    def __init__(self, workdir, rtts):
        self.relays, self.known = {}, {}
        for rtt in rtts:
            if rtt == 0:
                # a known_hosts of the benchmark's own gives it connection agents
                # of its own (persist), started with the code under test
                self.relays[0] = None
                self.known[0] = os.path.join(workdir, "known_hosts_0")
                shutil.copy(os.path.join(CLUSTER, "known_hosts"), self.known[0])
                continue
            relay = Relay(("127.0.0.1", 2222), one_way_ms=rtt / 2.0).__enter__()
            self.relays[rtt] = relay
            self.known[rtt] = known_hosts_for(relay.port, os.path.join(CLUSTER, "known_hosts"),
                                              os.path.join(workdir, "known_hosts_%d" % rtt))

    def use(self, project, rtt):
        project.through(self.relays[rtt], self.known[rtt])

    def close(self):
        for relay in self.relays.values():
            if relay is not None:
                relay.__exit__(None, None, None)


def ops(records):
    return sum(1 for r in records if r["op"] in ("run", "connect"))


def measure(project, args, repeats, **kw):
    times, counts = [], []
    for _ in range(repeats):
        seconds, records, _out = project.doit(*args, **kw)
        times.append(seconds)
        counts.append(ops(records))
    return statistics.median(times), max(counts), times


def row(scenario, case, variant, rtt, seconds, remote_ops=None, repeats=None, **extra):
    out = {"scenario": scenario, "case": case, "variant": variant, "rtt_ms": rtt,
           "seconds": round(seconds, 3), "remote_ops": remote_ops}
    if repeats:
        out["repeats"] = [round(t, 3) for t in repeats]
    out.update(extra)
    return out


# -- scenarios -------------------------------------------------------------------

def scenario_noop_and_scale(workdir, latency, sizes, repeats, rows):
    """1 (no-op) and 4 (submit and status at scale) share their projects."""
    projects = {}
    for runs in sizes:
        project = BenchProject(workdir, runs, "noop%d" % runs)
        projects[runs] = project
        latency.use(project, 0)
        project.doit("compile", "send_geometry")
        latency.use(project, 50)
        seconds, records, _ = project.doit("submit")
        rows.append(row("4 submit", "%d runs" % runs, "hpcdo (batched)", 50, seconds, ops(records),
                        submit_commands=sum(1 for r in records if r["what"].startswith("submit"))))
        seconds, records, _ = project.doit("wait")
        polls = [r for r in records if r["what"].startswith("poll")]
        rows.append(row("4 status", "%d runs" % runs, "hpcdo", 50, seconds, ops(records),
                        polls=len(polls), ops_per_poll=1 if polls else 0))
        latency.use(project, 0)
        project.doit("fetch_results")

        # one command per job, same work, jobs cancelled afterwards
        perjob = BenchProject(workdir, runs, "perjob%d" % runs)
        latency.use(perjob, 0)
        perjob.doit("compile", "send_geometry")
        latency.use(perjob, 50)
        seconds, records, _ = perjob.doit("submit", baseline="perjob")
        rows.append(row("4 submit", "%d runs" % runs, "one command per job", 50, seconds, ops(records),
                        submit_commands=sum(1 for r in records if r["what"].startswith("submit"))))
        ssh("scancel -u hpcuser; rm -rf %s" % perjob.remote_root)

    for rtt in (0, 50):
        for runs, project in projects.items():
            latency.use(project, rtt)
            seconds, count, times = measure(project, ["fetch_results"], repeats)
            rows.append(row("1 no-op", "%d runs" % runs, "hpcdo", rtt, seconds, count, times))
            for baseline, label in (("perstep", "per-step checks"),
                                    ("fabsim", "connection per command")):
                if runs > 30 and rtt == 50 and baseline == "fabsim":
                    continue        # minutes of handshakes; the 30-run figure makes the point
                seconds, count, times = measure(project, ["fetch_results"], 1, baseline=baseline)
                rows.append(row("1 no-op", "%d runs" % runs, label, rtt, seconds, count, times))
    for project in projects.values():
        project.cleanup()


def scenario_incremental(workdir, latency, rows):
    """2: bytes and time of a one-line edit's rebuild against a cold build, at 50 ms."""
    project = BenchProject(workdir, 3, "incremental")
    latency.use(project, 50)
    seconds, records, _ = project.doit("compile")
    sent = sum(r["bytes_out"] for r in records)
    rows.append(row("2 rebuild", "cold build", "hpcdo", 50, seconds, ops(records), bytes_sent=sent))
    path = os.path.join(project.path, "demo", "lbflow", "src", "output.c")
    with open(path) as fh:
        text = fh.read()
    with open(path, "w") as fh:
        fh.write(text.replace('max_velocity\\"', 'max_speed\\"', 1))
    seconds, records, out = project.doit("compile")
    sent = sum(r["bytes_out"] for r in records)
    log = ssh("cat %s/lbflow/build/.hpcdo-compile.log" % project.remote_root).stdout
    rows.append(row("2 rebuild", "one-line edit", "hpcdo", 50, seconds, ops(records), bytes_sent=sent,
                    objects_rebuilt=log.count("Building C object"), edited_file_bytes=len(text)))
    project.cleanup()


def scenario_list(workdir, repeats, rows):
    """5: doit list with 5000 runs in a generated recipe, on localhost."""
    project = BenchProject(workdir, 5000, "list5000")
    first, _records, _out = project.doit("list", machine="localhost")   # creates doit's database
    seconds, _count, times = measure(project, ["list"], max(repeats, 3), machine="localhost")
    rows.append(row("5 local overhead", "doit list, 5000 runs", "hpcdo", 0, seconds, 0, times,
                    first_call=round(first, 3)))


def scenario_results(quick, rows):
    import results
    rows.extend(results.run(5000 if quick else 70000))


def scenario_transfers(rtts, quick, rows):
    import transfers
    rows.extend(transfers.run(rtts_ms=rtts, quick=quick))


# -- targets -----------------------------------------------------------------------

def judge(rows):
    """Each target: (what, met, figure)."""
    def get(scenario, case, variant, rtt):
        for r in rows:
            if (r["scenario"], r["case"], r["variant"], r["rtt_ms"]) == (scenario, case, variant, rtt):
                return r
        return None

    verdicts = []
    noop30 = get("1 no-op", "30 runs", "hpcdo", 50)
    if noop30:
        verdicts.append(("no-op, 30 runs, 50 ms RTT: at most 1.0 s", noop30["seconds"] <= 1.0,
                         "%.2f s, %d remote ops" % (noop30["seconds"], noop30["remote_ops"])))
        per = get("1 no-op", "30 runs", "per-step checks", 50)
        if per:
            verdicts.append(("no-op, 30 runs: at least 10x faster than per-step checks",
                             per["seconds"] >= 10 * noop30["seconds"],
                             "%.1fx (%.2f s vs %.2f s)" % (per["seconds"] / noop30["seconds"],
                                                            per["seconds"], noop30["seconds"])))
        noop300 = get("1 no-op", "300 runs", "hpcdo", 50)
        if noop300:
            verdicts.append(("no-op, 300 runs within 1.5x the time of 30", noop300["seconds"] <= 1.5 * noop30["seconds"],
                             "%.2fx (%.2f s vs %.2f s)" % (noop300["seconds"] / noop30["seconds"],
                                                            noop300["seconds"], noop30["seconds"])))
    cold = get("2 rebuild", "cold build", "hpcdo", 50)
    edit = get("2 rebuild", "one-line edit", "hpcdo", 50)
    if cold and edit:
        verdicts.append(("rebuild: bytes sent grow with the edit, not the tree",
                         edit["bytes_sent"] < cold["bytes_sent"] / 4 and edit["objects_rebuilt"] == 1,
                         "%d bytes for the edit (one %d-byte file) vs %d cold; %d object rebuilt"
                         % (edit["bytes_sent"], edit["edited_file_bytes"], cold["bytes_sent"],
                            edit["objects_rebuilt"])))
    for r in rows:
        if r["scenario"] == "4 status":
            verdicts.append(("status poll is one remote command (%s)" % r["case"], r["ops_per_poll"] == 1,
                             "%d polls, 1 command each" % r["polls"]))
    lst = get("5 local overhead", "doit list, 5000 runs", "hpcdo", 0)
    if lst:
        verdicts.append(("doit list with 5000 runs under 2 s", lst["seconds"] < 2.0, "%.2f s" % lst["seconds"]))
    for case in sorted({r["case"] for r in rows if r["scenario"] == "transfer"}):
        if "small" in case:
            mine, other = get("transfer", case, "hpcdo", 50), get("transfer", case, "sftp per file", 50)
            if mine and other:
                verdicts.append(("%s at 50 ms: at least 10x per-file SFTP" % case,
                                 other["seconds"] >= 10 * mine["seconds"],
                                 "%.1fx (%.2f s vs %.1f s)" % (other["seconds"] / mine["seconds"], mine["seconds"],
                                                              other["seconds"])))
            continue
        other = get("transfer", case, "rsync", 50)
        for variant in ("hpcdo", "hpcdo upload_script"):
            mine = get("transfer", case, variant, 50)
            if mine and other:
                ratio = other["seconds"] / mine["seconds"]
                verdicts.append(("%s at 50 ms (%s): at least 0.8x rsync's throughput" % (case, variant),
                                 ratio >= 0.8, "%.2fx (%.1f vs %.1f MB/s)" % (ratio, mine["mb_per_s"],
                                                                             other["mb_per_s"])))
    import campaign
    verdicts.extend(campaign.judge(get, rows))
    return verdicts


def table(rows, verdicts):
    out = ["| scenario | case | variant | RTT ms | seconds | remote ops | notes |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        notes = ", ".join("%s=%s" % (k, v) for k, v in r.items()
                          if k not in ("scenario", "case", "variant", "rtt_ms", "seconds", "remote_ops", "repeats"))
        out.append("| %s | %s | %s | %s | %.3f | %s | %s |" % (r["scenario"], r["case"], r["variant"], r["rtt_ms"],
                                                               r["seconds"], r.get("remote_ops", ""), notes))
    out += ["", "| target | met | figure |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % (what, "met" if ok else "MISSED", fig) for what, ok, fig in verdicts]
    return "\n".join(out)


DOC_HEAD = """# Benchmarks

Written by `bench/run --doc docs/benchmarks.md` from one full run (`bench/run`) on the machine
described below. Every scenario runs against the loopback test cluster (OpenSSH, Slurm), at
0 ms and through a relay that delays every chunk by 25 ms each way (50 ms RTT, a UK laptop to a
European machine). Wall time is the median of the repeats (whole `doit` invocations, Python
start-up included); remote operations are counted from `HPCDO_TRACE` (connects and commands).

Baselines, run in the same invocation on the same cluster (bench/baselines.py):

- **per-step checks**: each task checks its own state with its own remote command through
  fabric's `Connection.run` over one shared connection (a straightforward doit + fabric dodo.py);
- **connection per command**: the same with a new SSH connection for every command (FabSim3);
- **one command per job**: submission without batching;
- **rsync** over OpenSSH and **per-file SFTP** (fabric `put`/`get`) for transfers.

Scenario 6 (bench/results.py) fetches one run of 70,000 one-byte result files and probes it,
straight to the cluster's sshd: before issue 11.9 that fetch never ended.

Scenario 7 (bench/campaign.py) is a campaign: a 1,000-run sweep from one recipe line under
`max_jobs: 50`, submitted at 50 ms, run to the end while squeue is sampled, then its no-op.

testslurm keeps its connection in an agent between calls (`persist: 600`), so a no-op pays
neither the SSH library's start-up nor the handshake; the first call of each benchmark
project pays both.

## Machine

%s

## Results

%s
"""


#: the hand-written part of the doc, kept when the figures are written again
NOTES = "## Reading the figures"


def write_doc(path, text):
    """Write the generated head and table, keeping the existing doc's hand-written notes."""
    try:
        with open(path) as fh:
            old = fh.read()
    except OSError:
        old = ""
    if NOTES in old:
        text += "\n" + old[old.index(NOTES):]
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def machine_text():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = "%.0f GiB" % (int(fh.readline().split()[1]) / 2 ** 20)
    except (OSError, ValueError, IndexError):
        pass
    return "- %s, %d cores, %s memory\n- %s, Python %s\n- run on %s" % (
        cpu or platform.processor(), os.cpu_count(), mem, platform.platform(), platform.python_version(),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke pass: small sizes, one repeat")
    parser.add_argument("--out", default=os.path.join(HERE, "out", "results.json"))
    parser.add_argument("--only", help="comma list of scenarios: noop,incremental,list,transfers,results,campaign")
    parser.add_argument("--doc", help="also write this markdown file (docs/benchmarks.md)")
    args = parser.parse_args()
    ensure_cluster()
    # measure this checkout's code, whatever copy of hpcdo is installed: every
    # doit (and the connection agents it starts) imports hpcdo from ROOT first
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, ROOT)
    # ... and import it as an installed package is imported: from bytecode
    # (pip compiles it at install).  With PYTHONDONTWRITEBYTECODE set and no
    # __pycache__ in the checkout, every call compiled hpcdo's ~60 modules
    # from source, 0.15 s of a 0.45 s no-op, a cost no user pays.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(os.path.join(ROOT, "hpcdo"), quiet=1)
    only = set(args.only.split(",")) if args.only else {"noop", "incremental", "list", "transfers", "results",
                                                        "campaign"}
    repeats = 1 if args.quick else 3
    workdir = tempfile.mkdtemp(prefix="hpcdo-bench-")
    latency = Latency(workdir, (0, 50))
    rows = []
    start = time.monotonic()
    try:
        if "noop" in only:
            scenario_noop_and_scale(workdir, latency, (30,) if args.quick else (30, 300), repeats, rows)
        if "incremental" in only:
            scenario_incremental(workdir, latency, rows)
        if "list" in only:
            scenario_list(workdir, repeats, rows)
        if "transfers" in only:
            scenario_transfers((0, 50), args.quick, rows)
        if "results" in only:
            scenario_results(args.quick, rows)
        if "campaign" in only:
            import campaign
            rows.extend(campaign.run(workdir, latency, BenchProject, row, ops, ssh, args.quick, repeats))
    finally:
        latency.close()
        shutil.rmtree(workdir, ignore_errors=True)
    verdicts = judge(rows)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version()},
              "quick": args.quick, "seconds": round(time.monotonic() - start, 1),
              "rows": rows, "targets": [{"target": w, "met": ok, "figure": f} for w, ok, f in verdicts]}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(table(rows, verdicts))
    if args.doc:
        write_doc(args.doc, DOC_HEAD % (machine_text(), table(rows, verdicts)))
    print("\nbench: %s pass in %.0f s; figures in %s" % ("quick" if args.quick else "full",
                                                         result["seconds"], args.out))


if __name__ == "__main__":
    main()
