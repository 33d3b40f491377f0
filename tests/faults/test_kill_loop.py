"""Issue 11: kill -9 at random points of every step, over SSH, with a many-small-files tree.

One project (the ``tool`` project of tests/e2e/anyproject.py, with ~2,500
small extra source files so the sync's tar stream has thousands of member
boundaries) is deployed on the test cluster's Slurm machine over SSH
(``persist=0``: the call's own connection, which dies with it).  Each
iteration changes something (data files, CMakeLists.txt, tool.c, a run's
arguments, a local result), starts ``doit fetch_results`` in a process group
of its own, waits for the step it aims at to start (seen in doit's output
and in its HPCDO_TRACE records), sleeps a random delay and kills the whole
group with SIGKILL.  Once the machine has finished what the killed call left
running there, it checks:

1. no stamp without its complete content: a source stamp names a tree this
   test had, and the machine's tree is exactly that tree (sha256 of every
   file); a compile stamp's binary hash is the executable's; a configure
   stamp has its CMake cache and Makefile; a recorded job id is a job the
   scheduler has, run in that run directory;
2. one job per run and inputs: every job Slurm ever showed for a run
   directory was recorded by it (``job.id``) with the inputs (``job.sig``) it
   ran with, and no inputs of a run got two jobs (unless the earlier ended
   cancelled);
3. no partial file visible in ``results/``: every ``results/testslurm/<run>/``
   has a provenance file, every file it lists has the size the machine has
   for that job (output contents checked too), nothing unlisted; hidden
   ``.<run>.incoming-*``/``.<run>.old-*`` leftovers of a killed fetch are
   gone once a later fetch of that run has run.

Then one uninterrupted call must converge (exit 0, every result whole and
from the current code and arguments) and the next call runs nothing.

``HPCDO_KILL_SEED`` (default below) picks the schedule, the mutations and the
delays; ``HPCDO_KILL_POINTS`` the number of kills (default 30).
Kill timing still depends on the machine's speed, so a seed replays the
same choices, not necessarily the same instants.
"""

import hashlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)

import anyproject  # noqa: E402
from conftest import cluster_project  # noqa: E402
from hpcdo.signature import manifest_digest  # noqa: E402  (a source stamp's "sig": Deployment.clone_sig)

pytestmark = pytest.mark.cluster

SEED = int(os.environ.get("HPCDO_KILL_SEED", "20261124"))
KILLS = int(os.environ.get("HPCDO_KILL_POINTS", "30"))

#: the steps every kill is aimed at and counted by (probe: loading, connecting, the state probe)
STEPS = ("sync", "configure", "compile", "submit", "wait", "fetch")
AIMS = STEPS + ("probe",)
DATA_FILES = 2500
#: Slurm states of a job that has ended
ENDED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE"}

ALPHABET = bytes(range(ord("a"), ord("a") + 26))


def pattern(n):
    """What ``tool --bytes n`` writes."""
    return (ALPHABET * (n // 26 + 1))[:n]


@pytest.fixture
def tool(tmp_path, cluster):
    """A testslurm project of its own work root; its jobs are cancelled and its root removed afterwards."""
    yield from cluster_project(tmp_path, cluster, "testslurm")


class Call:
    """One ``doit fetch_results`` in a process group of its own, its output read as it comes."""

    def __init__(self, project, trace):
        self.trace = trace
        env = dict(os.environ, HPCDO_TRACE=trace, PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "doit", "machine=" + project.machine,
                "remote_root=" + project.remote_root, "persist=0", "fetch_results"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.killed_at = None

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def records(self):
        try:
            with open(self.trace) as fh:
                return [json.loads(line) for line in fh if line.endswith("\n") and line.strip()]
        except OSError:
            return []

    def did(self, prefix):
        return any(r.get("what", "").startswith(prefix) for r in self.records())

    def saw(self, prefix):
        return any(line.startswith(prefix) for line in list(self.lines))

    def kill(self):
        self.killed_at = time.monotonic() - self.started
        os.killpg(self.proc.pid, signal.SIGKILL)

    def finish(self, timeout=300):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("doit did not end within %d s:\n%s" % (timeout, "\n".join(self.lines[-40:])))
        self.reader.join(10)
        return self.proc.returncode

    @property
    def out(self):
        return "\n".join(self.lines)

    def tasks(self):
        return [line[3:] for line in self.lines if line.startswith(".  ")]


class KillLoop:
    def __init__(self, project, tmp_path):
        self.p = project
        self.c = project.cluster
        self.tmp = tmp_path
        self.rng = random.Random(SEED)
        self.n = 0                          # mutation counter: every input is new, never a past one
        self.version = 0                    # tool.c's "tool: done v<N>"
        self.args = {
            "many": lambda k: ["--files", 300 + k, 10, "out/f"],
            "big": lambda k: ["--bytes", 12000000 + k, "big.dat"],
            "small": lambda k: ["--bytes", 50 + k, "s.dat", "--sleep", 1],
            "nested": lambda k: ["--bytes", 4000 + k, "a/b/c.dat", "--files", 20, 100 + k, "a/g"],
        }
        self.k = {run: 0 for run in self.args}
        self.versions = {}                  # source stamp sig -> (iteration, {path: sha256})
        self.jobs = {}                      # (run, job id) -> (job.sig, iteration first recorded)
        self.ever = {}                      # (run, job id) -> last Slurm state seen
        self.leftovers = {}                 # hidden entry in results/testslurm -> iteration first seen
        self.cleared = set()                # leftovers seen gone after a later fetch of their run finished
        self.log = []
        self.landed = {}
        self.estimate = {"probe": 0.8, "sync": 0.9, "configure": 0.3, "compile": 0.35, "submit": 0.15,
                         "wait": 2.0, "fetch": 0.6}
        self.remote_src_sig = None
        self.home = None

    # -- the project --------------------------------------------------------------
    def setup(self):
        anyproject.make(self.p, self.recipe_runs())
        self.write_tool_c()
        data = self.p.file("tool/data")
        for i in range(DATA_FILES):
            self.write_data(os.path.join(data, "d%02d" % (i % 50), "f%04d.txt" % i), i)
        self.remember_tree(0)
        self.home = self.c.ssh("echo $HOME").stdout.strip()

    def recipe_runs(self):
        return [(run, make(self.k[run])) for run, make in self.args.items()]

    def write_tool_c(self):
        with open(self.p.file("tool/tool.c"), "w") as fh:
            fh.write(anyproject.TOOL_C.replace('"tool: done\\n"', '"tool: done v%d\\n"' % self.version))

    def write_data(self, path, i):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(("data %d of change %d\n" % (i, self.n)) * (1 + self.rng.randrange(8)))

    def local_tree(self):
        root = self.p.file("tool")
        tree = {}
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    tree[os.path.relpath(path, root).replace(os.sep, "/")] = hashlib.sha256(fh.read()).hexdigest()
        return tree

    def remember_tree(self, iteration):
        tree = self.local_tree()
        sig = manifest_digest(tree)
        self.versions.setdefault(sig, (iteration, tree))
        self.current_sig = sig

    # -- what each iteration changes, so that the step it aims at runs --------------
    def mutate(self, aim, iteration):
        self.n += 1
        kind = aim
        if aim == "probe":
            kind = self.rng.choice(["sync", "configure", "compile", "submit", "fetch", "none"])
        did = []
        if kind == "sync":
            data = self.p.file("tool/data")
            names = sorted(os.path.relpath(os.path.join(d, f), data)
                           for d, _s, fs in os.walk(data) for f in fs)
            count = self.rng.randint(len(names) // 5, len(names))
            for rel in self.rng.sample(names, count):
                self.write_data(os.path.join(data, rel), self.n)
            gone = self.rng.sample(names, self.rng.randint(0, 15))
            for rel in gone:
                if os.path.exists(os.path.join(data, rel)):
                    os.remove(os.path.join(data, rel))
            added = self.rng.randint(0, 15)
            for j in range(added):
                self.write_data(os.path.join(data, "n%02d" % self.rng.randrange(10), "g%d-%d.txt" % (self.n, j)), j)
            did.append("rewrote %d data files, removed %d, added %d" % (count, len(gone), added))
        elif kind == "configure":
            with open(self.p.file("tool/CMakeLists.txt"), "a") as fh:
                fh.write("# change %d\n" % self.n)
            did.append("CMakeLists.txt comment")
        elif kind == "compile":
            self.wait_for_jobs(list(self.args))       # a new binary: no run may have a job still going
            self.version += 1
            self.write_tool_c()
            did.append("tool.c now says v%d" % self.version)
        elif kind in ("submit", "wait") or (kind == "fetch" and self.rng.random() < 0.5):
            runs = self.rng.sample(sorted(self.args), self.rng.randint(1, 4 if kind == "submit" else 2))
            self.wait_for_jobs(runs)
            for run in runs:
                self.k[run] = self.n
            anyproject.write_recipe(self.p.path, self.recipe_runs())
            did.append("new arguments for " + ",".join(runs))
        elif kind == "fetch":
            present = [r for r in sorted(self.args) if os.path.isdir(self.p.results(r))]
            runs = self.rng.sample(present, min(len(present), self.rng.randint(1, 2)))
            for run in runs:
                subprocess.run(["rm", "-rf", self.p.results(run)], check=True)
            did.append("removed local results of " + (",".join(runs) or "(none there)"))
        self.remember_tree(iteration)
        return "; ".join(did) or "nothing"

    def wait_for_jobs(self, runs, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = [j for j in self.squeue() if j[1] not in ENDED and any(
                j[2].endswith("/tool/runs/" + r) for r in runs)]
            if not active:
                return
            time.sleep(0.3)
        raise AssertionError("jobs still not ended after %d s: %s" % (timeout, active))

    # -- one kill ----------------------------------------------------------------
    def triggered(self, aim, call):
        if aim == "probe":
            return True
        if aim == "sync":
            return call.did("list source")
        if aim == "configure":
            return call.saw(".  configure") and (call.did("sync") or self.remote_src_sig == self.current_sig)
        if aim == "compile":
            return call.saw(".  compile") and (call.did("sync") or self.remote_src_sig == self.current_sig)
        if aim == "submit":
            return call.did("compile ") or call.saw("-- compile")
        if aim == "wait":
            return call.saw(".  wait:")
        if aim == "fetch":
            return call.saw(".  fetch_results:")
        raise AssertionError(aim)

    def in_flight(self, call):
        """The step the call was in when it died, from what it printed and its trace."""
        tasks = call.tasks()
        done = [r.get("what", "") for r in call.records()]
        last = tasks[-1] if tasks else ""
        if last.startswith("fetch_results:"):
            return "fetch"
        if last.startswith("wait:"):
            return "wait"
        if last.startswith("submit:"):
            return "submit"
        if any(w.startswith("compile ") for w in done) or call.saw("-- compile"):
            return "submit"           # the batch submission runs before the first submit: line
        if last in ("clone", "configure", "compile"):
            if last == "clone" or (any(w == "list source" for w in done)
                                   and not any(w.startswith("sync ") for w in done)):
                return "sync"
            if not any(w.startswith("sync ") for w in done) and self.remote_src_sig != self.current_sig:
                return "sync"         # the sync inside configure/compile, before its listing came back
            return last
        return "probe"

    def run_one(self, iteration, aim):
        what = self.mutate(aim, iteration)
        call = Call(self.p, str(self.tmp / ("trace-%03d.jsonl" % iteration)))
        try:
            deadline = time.monotonic() + 120
            while call.proc.poll() is None and not self.triggered(aim, call):
                assert time.monotonic() < deadline, "the call never reached %s:\n%s" % (aim, call.out)
                time.sleep(0.003)
            # a call spends its first ~0.3 s starting Python and loading doit, before any connection
            delay = self.rng.uniform(0.2 if aim == "probe" else 0, self.estimate[aim])
            trigger_at = time.monotonic() - call.started
            time.sleep(delay)
        finally:
            if call.proc.poll() is None:
                call.kill()
        landed = None
        rc = call.finish()
        if call.killed_at is not None and rc == -signal.SIGKILL:
            landed = self.in_flight(call)
            self.landed[landed] = self.landed.get(landed, 0) + 1
        self.learn(call)
        entry = ("#%d aim=%s landed=%s at %.2fs (trigger %.2fs + %.2fs) rc=%s; changed: %s; steps: %s"
                 % (iteration, aim, landed or "(call ended first)", call.killed_at or 0, trigger_at, delay, rc,
                    what, " ".join(call.tasks()) or "-"))
        self.log.append(entry)
        print(entry, flush=True)
        return call, landed, entry

    def learn(self, call):
        """Keep the delay ranges near what the steps take on this machine."""
        for r in call.records():
            w, s = r.get("what", ""), r.get("seconds", 0)
            step = {"sync": "sync", "configure": "configure", "compile": "compile", "submit": "submit"}.get(
                w.split(" ")[0])
            if step and s > 0.02:
                self.estimate[step] = 0.5 * self.estimate[step] + 0.5 * max(0.05, s * 1.1)

    # -- the machine after a kill --------------------------------------------------
    def settle(self, timeout=120):
        """Wait until no script of the killed call runs on the machine any more (its jobs may)."""
        where = "%s/%s" % (self.home, self.p.remote_root)
        script = (
            "W=%s\n"
            "for f in $(find /proc -mindepth 2 -maxdepth 2 -name cwd \\( -lname \"$W\" -o -lname \"$W/*\" \\) "
            "2>/dev/null); do\n"
            "  p=${f#/proc/}; p=${p%%/cwd}; q=$p; job=0\n"
            "  while [ -n \"$q\" ] && [ \"$q\" -gt 1 ] 2>/dev/null; do\n"
            "    [ \"$(cat /proc/$q/comm 2>/dev/null)\" = slurmstepd ] && { job=1; break; }\n"
            "    q=$(cut -d' ' -f4 /proc/$q/stat 2>/dev/null)\n"
            "  done\n"
            "  [ $job = 0 ] && printf '%%s %%s\\n' \"$p\" \"$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | cut -c1-100)\"\n"
            "done; exit 0\n" % shlex.quote(where))
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            left = self.c.ssh(script).stdout.strip()
            quiet = quiet + 1 if not left else 0
            if quiet >= 2:
                return
            if time.monotonic() > deadline:
                raise AssertionError("scripts of a killed call still run on the machine after %d s:\n%s"
                                     % (timeout, left))
            time.sleep(0.25)

    def squeue(self):
        """(id, state, work dir) of every job Slurm shows (finished ones for MinJobAge) under this work root."""
        out = self.c.ssh("squeue -h -t all -o '%i %T %Z'").stdout
        rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
        mine = "/%s/tool/runs/" % self.p.remote_root.strip("/")
        return [r for r in rows if len(r) == 3 and mine in r[2] + "/"]

    def snapshot(self):
        """What the machine holds, in one round trip (OpenSSH, independent of hpcdo)."""
        script = "\n".join([
            "cd %s 2>/dev/null || { echo @noroot; exit 0; }" % shlex.quote(self.p.remote_root),
            "echo @srcstamp; cat tool/src/.hpcdo-stamp 2>/dev/null",
            "echo @src; [ -d tool/src ] && (cd tool/src && find . -type f ! -name '.hpcdo-*' -exec sha256sum {} +)",
            "echo @configure; cat tool/build/.hpcdo-configure 2>/dev/null",
            "echo @buildfiles; (cd tool/build 2>/dev/null && ls -d CMakeCache.txt Makefile 2>/dev/null)",
            "echo @compile; cat tool/build/.hpcdo-compile 2>/dev/null",
            "echo @binary; [ -f tool/build/tool ] && sha256sum < tool/build/tool | cut -c1-64",
            "echo @markers; (cd tool/runs 2>/dev/null && grep -H -e '' -- */job.id */job.sig 2>/dev/null)",
            "echo @files; (cd tool/runs 2>/dev/null && find . -type f -printf '%s %p\\n')",
            "echo @squeue; squeue -h -t all -o '%i %T %Z'",
            "exit 0",
        ])
        out = self.c.ssh(script, timeout=120).stdout
        snap = {"srcstamp": "", "src": {}, "configure": "", "buildfiles": [], "compile": "", "binary": "",
                "markers": {}, "files": {}, "squeue": []}
        section = None
        mine = "/%s/tool/runs/" % self.p.remote_root.strip("/")
        for line in out.splitlines():
            if line.startswith("@") and " " not in line:
                section = line[1:]
                continue
            if section == "srcstamp" or section == "configure" or section == "compile" or section == "binary":
                snap[section] += line.strip()
            elif section == "src" and "  ./" in line:
                digest, path = line.split("  ./", 1)
                snap["src"][path] = digest
            elif section == "buildfiles" and line.strip():
                snap["buildfiles"].append(line.strip())
            elif section == "markers" and ":" in line:
                path, _, value = line.partition(":")
                run, _, marker = path.partition("/")
                snap["markers"].setdefault(run, {}).setdefault(marker, value.strip())
            elif section == "files" and " " in line:
                size, path = line.split(" ", 1)
                snap["files"][path[2:] if path.startswith("./") else path] = int(size)
            elif section == "squeue":
                row = line.split(None, 2)
                if len(row) == 3 and mine in row[2] + "/":
                    snap["squeue"].append(row)
        return snap

    # -- the invariants ------------------------------------------------------------
    def check(self, iteration, call=None, landed=None):
        snap = self.snapshot()
        problems = []
        self.check_stamps(snap, problems)
        self.check_jobs(snap, iteration, problems)
        self.check_results(snap, iteration, call, problems)
        if call is not None and "Traceback" in call.out:
            problems.append("the call printed a traceback:\n" + call.out[-3000:])
        stamp = self._json(snap["srcstamp"])
        self.remote_src_sig = stamp.get("sig") if stamp else None
        if problems:
            raise AssertionError(
                "kill loop (HPCDO_KILL_SEED=%d), after kill #%d, which landed in: %s\n%s\n\n%s\n\n"
                "the killed call's output:\n%s\n\nall kills so far:\n%s"
                % (SEED, iteration, landed, self.log[-1] if self.log else "", "\n\n".join(problems),
                   call.out[-4000:] if call else "-", "\n".join(self.log)))
        return snap

    @staticmethod
    def _json(text):
        try:
            return json.loads(text) if text else None
        except ValueError:
            return {"unparsable": text}

    def check_stamps(self, snap, problems):
        # the source: its stamp is {"sig": manifest digest of the synced tree} (deploy.py do_clone)
        stamp = self._json(snap["srcstamp"])
        if stamp is not None:
            sig = stamp.get("sig")
            if sig not in self.versions:
                problems.append("invariant 1 (source): tool/src/.hpcdo-stamp %r names a tree this test never had"
                                % snap["srcstamp"])
            else:
                when, tree = self.versions[sig]
                held = snap["src"]
                missing = sorted(set(tree) - set(held))
                extra = sorted(set(held) - set(tree))
                differ = sorted(p for p in set(tree) & set(held) if tree[p] != held[p])
                if missing or extra or differ:
                    problems.append(
                        "invariant 1 (source): tool/src/.hpcdo-stamp says the tree of change #%d (%d files) is "
                        "synced, but the machine holds %d files: %d missing %s, %d extra %s, %d with other "
                        "content %s" % (when, len(tree), len(held), len(missing), missing[:5], len(extra),
                                        extra[:5], len(differ), differ[:5]))
        # configure: {"sig", "options"} once CMake succeeded, with its cache and Makefile
        if snap["configure"] and not {"CMakeCache.txt", "Makefile"} <= set(snap["buildfiles"]):
            problems.append("invariant 1 (configure): tool/build/.hpcdo-configure %r but the build directory "
                            "holds only %s" % (snap["configure"], snap["buildfiles"]))
        # compile: {"sig", "binary": sha256 of the executable} (scripts.compile_script)
        stamp = self._json(snap["compile"])
        if stamp is not None and stamp.get("binary") != snap["binary"]:
            problems.append("invariant 1 (compile): tool/build/.hpcdo-compile %r but the executable's sha256 "
                            "is %r" % (snap["compile"], snap["binary"] or "(no executable)"))

    def check_jobs(self, snap, iteration, problems):
        for job_id, state, _where in snap["squeue"]:
            run = _where.rstrip("/").rsplit("/", 1)[-1]
            self.ever[(run, job_id)] = state
        for run, markers in sorted(snap["markers"].items()):
            job_id, sig = markers.get("job.id", ""), markers.get("job.sig", "")
            if not job_id:
                continue
            known = self.jobs.get((run, job_id))
            if known is None:
                self.jobs[(run, job_id)] = (sig, iteration)
            elif known[0] != sig:
                problems.append("invariant 2: run %s records job %s with inputs %s, but it was recorded with %s "
                                "after kill #%d" % (run, job_id, sig[:16], known[0][:16], known[1]))
            if (run, job_id) not in self.ever:
                problems.append("invariant 1 (submit): run %s records job %s, which Slurm never showed for its "
                                "directory (squeue: %s)" % (run, job_id, snap["squeue"]))
        for (run, job_id), state in sorted(self.ever.items()):
            if (run, job_id) not in self.jobs and state != "CANCELLED":
                problems.append("invariant 2: job %s (%s) ran in run %s's directory but the run never recorded "
                                "it in job.id" % (job_id, state, run))
        by_inputs = {}
        for (run, job_id), (sig, when) in self.jobs.items():
            by_inputs.setdefault((run, sig), []).append((int(job_id), when))
        for (run, sig), ids in sorted(by_inputs.items()):
            ids.sort()
            earlier = [i for i, _w in ids[:-1] if self.ever.get((run, str(i))) != "CANCELLED"]
            if earlier:
                problems.append("invariant 2: run %s has %d jobs for the same inputs %s: %s (states %s)"
                                % (run, len(ids), sig[:16], ["%d (recorded after kill #%d)" % (i, w) for i, w in ids],
                                   [self.ever.get((run, str(i))) for i, _w in ids]))

    def check_results(self, snap, iteration, call, problems):
        parent = os.path.join(self.p.path, "results", self.p.machine)
        entries = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
        hidden = [e for e in entries if e.startswith(".")]
        for entry in hidden:
            if not any(entry.startswith((".%s.incoming-" % r, ".%s.old-" % r)) for r in self.args):
                problems.append("invariant 3: results/%s/%s is no leftover of a fetch" % (self.p.machine, entry))
        # a leftover of a killed fetch must be gone once a later fetch of its run has finished
        finished = self.fetches_finished(call) if call is not None else set()
        for entry, first in self.leftovers.items():
            if entry not in hidden and first < iteration and entry.split(".")[1] in finished:
                self.cleared.add(entry)
        for entry in hidden:
            run = next((r for r in self.args if entry.startswith((".%s.incoming-" % r, ".%s.old-" % r))), None)
            first = self.leftovers.setdefault(entry, iteration)
            if first < iteration and run in finished:
                problems.append("invariant 3: results/%s/%s, left by the fetch killed at #%d, is still there after "
                                "a fetch of run %s finished" % (self.p.machine, entry, first, run))
        for entry in entries:
            if entry.startswith("."):
                continue
            if entry not in self.args:
                problems.append("invariant 3: results/%s/%s is not a run's results" % (self.p.machine, entry))
                continue
            self.check_one_result(snap, entry, os.path.join(parent, entry), problems)

    def fetches_finished(self, call):
        """Runs whose fetch_results task ran to its end in ``call`` (doit runs one task at a time)."""
        shown = [line for line in call.lines if line.startswith((".  ", "-- ", "!! "))]
        done = set()
        for i, line in enumerate(shown):
            if line.startswith(".  fetch_results:") and (i + 1 < len(shown) or call.killed_at is None):
                done.add(line.split(":", 1)[1])
        return done

    def check_one_result(self, snap, run, where, problems):
        prov_path = os.path.join(where, "hpcdo-provenance.json")
        try:
            with open(prov_path) as fh:
                prov = json.load(fh)
        except (OSError, ValueError) as exc:
            problems.append("invariant 3: results/%s/%s has no readable provenance (%s); it holds %s"
                            % (self.p.machine, run, exc, sorted(os.listdir(where))[:10]))
            return
        job = str(prov.get("job_id", ""))
        current = snap["markers"].get(run, {}).get("job.id", "")
        base = run + "/" if job == current else "%s/previous/%s/" % (run, job)
        listed = set(prov.get("files", []))
        local = set()
        for dirpath, _dirs, files in os.walk(where):
            for name in files:
                local.add(os.path.relpath(os.path.join(dirpath, name), where).replace(os.sep, "/"))
        local.discard("hpcdo-provenance.json")
        if local - listed:
            problems.append("invariant 3: results/%s/%s holds files its provenance does not list: %s"
                            % (self.p.machine, run, sorted(local - listed)[:10]))
        for name in sorted(listed):
            path = os.path.join(where, name)
            if not os.path.isfile(path):
                problems.append("invariant 3: results/%s/%s/%s is listed in its provenance but missing"
                                % (self.p.machine, run, name))
                continue
            size = os.path.getsize(path)
            remote = snap["files"].get(base + name)
            if remote is None:
                problems.append("invariant 3: results/%s/%s/%s (job %s) has no counterpart %s on the machine"
                                % (self.p.machine, run, name, job, base + name))
            elif remote != size:
                problems.append("invariant 3: results/%s/%s/%s has %d bytes, the machine's %s has %d"
                                % (self.p.machine, run, name, size, base + name, remote))
            if not name.startswith("job."):
                with open(path, "rb") as fh:
                    if fh.read() != pattern(size):
                        problems.append("invariant 3: results/%s/%s/%s (%d bytes) is not what tool writes"
                                        % (self.p.machine, run, name, size))

    # -- the end ---------------------------------------------------------------
    def converged(self, snap):
        """After the uninterrupted call: everything current, from this code and these arguments."""
        problems = []
        if self._json(snap["srcstamp"]) != {"sig": self.current_sig}:
            problems.append("source stamp %r is not the current tree's %s" % (snap["srcstamp"], self.current_sig))
        if snap["src"] != self.versions[self.current_sig][1]:
            problems.append("the machine's source tree is not the current local tree")
        compiled = self._json(snap["compile"]) or {}
        if not compiled.get("binary") or compiled.get("binary") != snap["binary"]:
            problems.append("compile stamp %r, binary %r" % (snap["compile"], snap["binary"]))
        for run, make in self.args.items():
            where = self.p.results(run)
            prov_path = os.path.join(where, "hpcdo-provenance.json")
            if not os.path.exists(prov_path):
                problems.append("run %s: no results" % run)
                continue
            with open(prov_path) as fh:
                prov = json.load(fh)
            if str(prov["job_id"]) != snap["markers"].get(run, {}).get("job.id"):
                problems.append("run %s: results of job %s, the machine's is %s"
                                % (run, prov["job_id"], snap["markers"].get(run)))
            with open(os.path.join(where, "job.out")) as fh:
                if "tool: done v%d" % self.version not in fh.read():
                    problems.append("run %s: job.out is not from tool v%d" % (run, self.version))
            args = [str(a) for a in make(self.k[run])]
            i = 0
            while i < len(args):
                if args[i] == "--bytes":
                    size, name = int(args[i + 1]), args[i + 2]
                    expected = {name: size}
                    i += 3
                elif args[i] == "--files":
                    count, size, prefix = int(args[i + 1]), int(args[i + 2]), args[i + 3]
                    expected = {"%s%d" % (prefix, j): size for j in range(count)}
                    i += 4
                else:
                    expected = {}
                    i += 2
                for name, size in expected.items():
                    path = os.path.join(where, name)
                    if not os.path.isfile(path) or os.path.getsize(path) != size:
                        problems.append("run %s: %s is not %d bytes" % (run, name, size))
                        break
        return problems


def test_kill_9_at_random_points_of_every_step_over_ssh(tool, tmp_path):
    loop = KillLoop(tool, tmp_path)
    print("HPCDO_KILL_SEED=%d (kill points: %d)" % (SEED, KILLS), flush=True)
    started = time.monotonic()
    loop.setup()
    # every step is aimed at as often as the others; the first kill cuts the first sync of the whole tree
    schedule = ["sync"] + [AIMS[i % len(AIMS)] for i in range(1, KILLS)]
    rest = schedule[1:]
    loop.rng.shuffle(rest)
    schedule = schedule[:1] + rest
    iteration = 0
    kills = 0
    while True:
        missing = [s for s in STEPS if not loop.landed.get(s)]
        if iteration >= len(schedule) and ((kills >= KILLS and not missing) or iteration >= 2 * KILLS):
            break
        if iteration < len(schedule):
            aim = schedule[iteration]
        else:                         # a call ended before its kill, or a step no kill has landed in yet
            aim = missing[0] if missing else loop.rng.choice(AIMS)
        iteration += 1
        call, landed, _entry = loop.run_one(iteration, aim)
        kills += landed is not None
        loop.settle()
        loop.check(iteration, call, landed)

    print("kills landed per step: %s (%d kills in %d calls, %.0f s); %d leftovers of killed fetches seen, "
          "%d of them removed by a later fetch during the loop"
          % (json.dumps(loop.landed, sort_keys=True), kills, iteration, time.monotonic() - started,
             len(loop.leftovers), len(loop.cleared)), flush=True)
    assert kills >= min(20, KILLS), "only %d of %d calls were killed before they ended:\n%s" % (
        kills, iteration, "\n".join(loop.log))
    assert not [s for s in STEPS if not loop.landed.get(s)], \
        "no kill landed in %s:\n%s" % ([s for s in STEPS if not loop.landed.get(s)], "\n".join(loop.log))

    # one uninterrupted call converges, and the next runs nothing
    final = Call(tool, str(tmp_path / "trace-final.jsonl"))
    rc = final.finish(timeout=300)
    assert rc == 0, "the uninterrupted call after the kills failed (HPCDO_KILL_SEED=%d):\n%s\n\nkills:\n%s" % (
        SEED, final.out[-4000:], "\n".join(loop.log))
    loop.settle()
    loop.log.append("final: " + " ".join(final.tasks()))
    snap = loop.check(iteration + 1, final, None)
    problems = loop.converged(snap)
    assert not problems, "not converged after the kills (HPCDO_KILL_SEED=%d):\n%s\n\n%s\n\nkills:\n%s" % (
        SEED, "\n".join(problems), final.out[-3000:], "\n".join(loop.log))
    again = tool.doit("persist=0", "fetch_results")
    assert again.ran == [], again
    print("converged: %s; then a no-op (%.0f s in all); leftovers removed by then: %d of %d"
          % (" ".join(final.tasks()), time.monotonic() - started, len(loop.cleared), len(loop.leftovers)))
