"""One recipe on one machine: each step's signature, its check, and its action.

Signatures chain the steps together the way ``make`` would, but by content:

==============  ==========================================================
step            signature covers
==============  ==========================================================
clone           git URL and ref; a local tree: that it is on the machine
                (configure and compile sync a local tree's edits first)
configure       CMake options, CMakeLists/*.cmake contents, modules, env
compile         configure's signature and the whole source tree
send_geometry   the geometry file's content
submit          the executable's hash, the geometry's, the run's
                settings, and the jobscript's templates and values
wait            the submitted job has completed with exit code 0
fetch_results   the local copy holds the results the machine now has
==============  ==========================================================

Every step's stamp lives on the machine (see :mod:`hpcdo.remote.scripts`),
so a fresh clone of the project, with no local state, reruns only what the
machine lacks.  The submit signature uses the *built* executable's hash, so
a rebuild that produces the same binary (a scratch purge of the build
directory, a comment edit) does not spend core hours on the same jobs again.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from . import ConfigError, HpcdoError, RemoteError
from . import jobscript as jobscripts
from . import config, launchers, outputs, signature
from .recipe import Git, OPTION_RE
from .remote import scripts, transfer
from .schedulers.base import JobState

PROVENANCE = "hpcdo-provenance.json"

#: CMake options that pick compilers or the toolchain: CMake keeps its first
#: choice in the cache, so a change of any of them needs a new cache
#: a Git ref that is a whole commit id: it never moves, so it is never looked up
COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")

TOOLCHAIN_RE = re.compile(r"^(CMAKE_[A-Za-z]+_COMPILER(_[A-Z_]+)?|CMAKE_TOOLCHAIN_FILE|CMAKE_GENERATOR.*|"
                          r"CMAKE_MAKE_PROGRAM|CMAKE_[A-Za-z]+_COMPILER_LAUNCHER)(:[A-Z]+)?\Z")

#: job states that say the machine, not the program, ended the job: such a
#: run is submitted again by itself, up to the machine's ``retries`` times
MACHINE_FAULTS = (JobState.NODE_FAIL, JobState.PREEMPTED, JobState.LOST)

#: job states that say the program itself failed: with the same inputs it
#: would fail again, so it waits for the user (new inputs, or ``retry``)
PROGRAM_FAULTS = (JobState.FAILED, JobState.TIMEOUT)

#: a submission the scheduler did not answer is tried this many times more,
#: after pauses of RETRY_PAUSE, 2x, 4x ... seconds (15 s in all by default)
RETRIES = 3
RETRY_PAUSE = 2.5


class Deployment:
    def __init__(self, session, recipe, project_dir, templates):
        self.session = session
        self.machine = session.machine
        self.recipe = recipe
        self.project_dir = project_dir
        self.templates = templates
        name = recipe.name
        self.dir = name
        self.src = name + "/src"
        self.build = name + "/build"
        self.keys = {"clone": "clone:" + name, "configure": "configure:" + name,
                     "compile": "compile:" + name, "cache": "cache:" + name, "head": "head:" + name}
        self._cache = {}
        self._lock = threading.RLock()
        session.deployments.append(self)

    # -- where things are ---------------------------------------------------
    def geometry_key(self, gname):
        return "geometry:%s/%s" % (self.recipe.name, gname)

    def geometry_dir(self, gname):
        return "%s/geometry/%s" % (self.dir, gname)

    def geometry_file(self, gname):
        return os.path.basename(self.recipe.geometries[gname])

    def run_key(self, run):
        return "run:%s/%s" % (self.recipe.name, run.name)

    def run_dir(self, run):
        return "%s/runs/%s" % (self.dir, run.name)

    def results_dir(self, run):
        return os.path.join(self.project_dir, "results", self.machine.name, run.name)

    def _local(self, path):
        return os.path.join(self.project_dir, path)

    def probe_items(self):
        stamps = [
            (self.keys["clone"], self.src + "/.hpcdo-stamp", [self.src]),
            (self.keys["configure"], self.build + "/.hpcdo-configure", [self.build + "/CMakeCache.txt"]),
            (self.keys["cache"], self.build + "/.hpcdo-cache", [self.build + "/CMakeCache.txt"]),
            (self.keys["compile"], self.build + "/.hpcdo-compile",
             [self.build + "/" + self.recipe.executable]),
        ]
        for gname in self.recipe.geometries:
            d = self.geometry_dir(gname)
            stamps.append((self.geometry_key(gname), d + "/.hpcdo-stamp", [d + "/" + self.geometry_file(gname)]))
        runs = [(self.run_key(run), self.run_dir(run), run.outputs) for run in self.recipe.runs.values()]
        return stamps, runs

    def probe_heads(self):
        """(key, url, ref) for a git source whose ref may move (a branch or tag, not a commit)."""
        source = self.recipe.source
        if isinstance(source, Git) and not COMMIT_RE.match(source.ref):
            url, user, password = source.credentials()
            return [(self.keys["head"], url, source.ref, user, password)]
        return []

    def remote_head(self):
        """The commit the git source's ref names now, as the machine sees it; "" when unknown."""
        refs = (self.session.stamp(self.keys["head"]) or {}).get("refs") or {}
        ref = self.recipe.source.ref
        for name in ("refs/heads/" + ref, "refs/tags/%s^{}" % ref, "refs/tags/" + ref, ref):
            if name in refs:
                return refs[name]
        return next(iter(sorted(refs.values())), "") if len(set(refs.values())) == 1 else ""

    def commit_note(self):
        """`` (commit X)``, or what the branch names now when the machine is behind it."""
        source = self.recipe.source
        have = ((self.session.stamp(self.keys["clone"]) or {}).get("commit") or "")[:12]
        head = (self.remote_head() if self.probe_heads() else "")[:12]
        if head and have and head != have:
            return " (commit %s; %s is now at %s)" % (have, source.ref, head)
        if have:
            return " (commit %s%s)" % (have, "" if head or not self.probe_heads() else
                                       "; %s could not be looked up" % source.ref)
        return ""

    # -- signatures -----------------------------------------------------------
    def _memo(self, key, compute):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]

    def manifest(self):
        source = self.recipe.source
        return self._memo("manifest", lambda: signature.tree_manifest(
            self._local(source.path), signature.DEFAULT_EXCLUDE + source.exclude))

    def clone_sig(self):
        source = self.recipe.source
        if isinstance(source, Git):
            return signature.digest("git", source.url, source.ref)
        return signature.manifest_digest(self.manifest())

    def source_version(self):
        """What identifies the source's content: the tree hash or the cloned commit."""
        if isinstance(self.recipe.source, Git):
            stamp = self.session.stamp(self.keys["clone"]) or {}
            return stamp.get("commit", "")
        return self.clone_sig()

    def cmake_options(self):
        options = self.recipe.cmake_options_for(self.machine)
        for name in options:
            if not OPTION_RE.match(str(name)):
                raise ConfigError("machine %s: %r is not a CMake option name" % (self.machine.name, name))
        return options

    def setup(self):
        return self._memo("setup", self._setup)

    def _setup(self):
        m = self.machine
        env = dict(m.env or {})
        env.update(self.recipe.env)
        return scripts.setup_lines(list(m.modules or []) + self.recipe.modules, m.module_init, env)

    def configure_sig(self):
        if isinstance(self.recipe.source, Git):
            cmake_files = self.source_version()
        else:
            cmake_files = signature.manifest_digest(self.manifest(), only=signature.CMAKE_FILES)
        return signature.digest("configure", cmake_files, self.cmake_options(), self.setup(),
                                self.machine.cmake)

    def compile_sig(self):
        return signature.digest("compile", self.configure_sig(), self.source_version(),
                                self.recipe.build_target, self.recipe.executable)

    def geometry_sig(self, gname):
        path = self._local(self.recipe.geometries[gname])
        if not os.path.isfile(path):
            raise ConfigError("recipe %s: geometry %s: file %s does not exist"
                              % (self.recipe.name, gname, self.recipe.geometries[gname]))
        return self._memo("geometry:" + gname, lambda: signature.file_sha256(path))

    def cores(self, run):
        """The run's cores; ``cores=N`` on the command line wins over the recipe and the machine file."""
        if self.machine.where("cores") == config.COMMAND_LINE:
            return self.machine.cores
        return run.cores or self.machine.cores

    def layout(self, run):
        """The run's :class:`hpcdo.recipe.Layout` on this machine: cores, threads, tasks, nodes, cpn.

        The arithmetic is :meth:`hpcdo.recipe.Run.layout`'s (told in
        hpcdo/recipe.py); a layout the machine cannot hold is one ConfigError.
        """
        def compute():
            m = self.machine
            if m.where("cores") == config.COMMAND_LINE:
                cores_from = "cores= on the command line"
            elif run.cores is None:
                cores_from = "the machine's cores, %s" % m.where("cores")
            else:
                cores_from = ""
            return run.layout(self.cores(run), m.corespernode, cores_from, m.name)
        return self._memo(("layout", run.name), compute)

    def fields(self, run):
        """The values of the run's {fields} (args, env) on this machine."""
        geometry = self.geometry_file(run.geometry) if run.geometry else None
        return run.fields(self.layout(run), geometry)

    def command(self, run):
        """The job's command line: the machine's launcher, the executable, quoted arguments."""
        lay = self.layout(run)
        launcher = launchers.prefix(self.machine, {
            "cores": lay.cores, "threads": lay.threads, "tasks": lay.tasks, "nodes": lay.nodes,
            "cpn": lay.cpn, "corespernode": self.machine.corespernode or lay.cpn})
        argv = ["./" + os.path.basename(self.recipe.executable)] + run.argv(self.fields(run))
        return (launcher + " " if launcher else "") + " ".join(scripts.q(a) for a in argv)

    def template_name(self):
        return self.machine.jobscript or self.session.scheduler.template

    def jobscript(self, run):
        return self._memo("jobscript:" + run.name, lambda: jobscripts.render(
            self.templates, self.template_name(), self.jobscript_values(run)))

    def jobscript_values(self, run):
        """Everything a jobscript template is rendered with, for one run."""
        m = self.machine
        lay = self.layout(run)
        # the threads a task may start, after the machine's and recipe's env
        # (ARCHER2's sets OMP_NUM_THREADS=1) and before the run's own
        env = [("OMP_NUM_THREADS", str(lay.threads))] if lay.threads > 1 else []
        env += sorted(run.environment(self.fields(run)).items())
        return {
            "job_name": self.session.scheduler.job_name(self.recipe.name, run.name, m.max_job_name_chars),
            "recipe": self.recipe.name, "run": run.name, "machine": m.name,
            "cores": lay.cores, "threads": lay.threads, "tasks": lay.tasks, "nodes": lay.nodes,
            "cpn": lay.cpn, "walltime": run.walltime,
            "partition": m.partition, "account": m.account, "qos": m.qos, "pe": m.pe,
            "memory": m.memory, "directives": list(m.directives or []),
            "corespernode": m.corespernode,
            "setup": self.setup() + ["export %s=%s" % (k, scripts.q(v)) for k, v in env],
            "command": self.command(run),
        }

    def submit_sig(self, run):
        stamp = self.session.stamp(self.keys["compile"]) or {}
        binary = stamp.get("binary")
        if not binary:
            return None
        geometry = self.geometry_sig(run.geometry) if run.geometry else None
        # the jobscript enters as its templates' sources and its values, which
        # decide its text, so a no-op call renders no jobscript at all
        return self._memo(("submit", run.name, binary, geometry), lambda: signature.digest(
            "submit", binary, geometry, run.spec(),
            jobscripts.sources_digest(self.templates, self.template_name()), self.jobscript_values(run)))

    # -- up-to-date checks (called by doit; they never raise) --------------------
    def clone_current(self):
        """A git clone is current at the same URL and ref; a local tree once it is on the machine.

        Keeping a local tree in step with edits is the job of configure and
        compile (see :meth:`sync`), so that an edit reruns only what it affects.
        """
        stamp = self.session.stamp(self.keys["clone"])
        if isinstance(self.recipe.source, Git):
            # a branch is followed: when it names another commit now, clone again
            head = self.remote_head() if self.probe_heads() else ""
            return bool(stamp) and stamp.get("sig") == self.clone_sig() and (
                not head or head == stamp.get("commit"))
        return bool(stamp)

    def local_source_sig(self):
        """The source stamp a build must find on the machine: a local tree's, else None."""
        return None if isinstance(self.recipe.source, Git) else self.clone_sig()

    def source_synced(self):
        stamp = self.session.stamp(self.keys["clone"])
        return bool(stamp) and stamp.get("sig") == self.clone_sig()

    def configure_current(self):
        stamp = self.session.stamp(self.keys["configure"])
        return bool(stamp) and stamp.get("sig") == self.configure_sig()

    def compile_current(self):
        stamp = self.session.stamp(self.keys["compile"])
        return bool(stamp) and stamp.get("sig") == self.compile_sig()

    def geometry_current(self, gname):
        stamp = self.session.stamp(self.geometry_key(gname))
        return bool(stamp) and stamp.get("sig") == self.geometry_sig(gname)

    def submit_current(self, run):
        """The run has a job for these inputs: queued, running, done, or failed in a way that
        submitting again would not mend (the program's own failure, or retries used up)."""
        info = self.session.job(self.run_key(run))
        sig = self.submit_sig(run)
        if not sig or info["sig"] != sig:
            return False
        state = info["state"]
        if state.active or state.done or state in PROGRAM_FAULTS:
            return True
        if state in MACHINE_FAULTS:
            return not self.retries_left(info)
        return False             # cancelled, or never submitted

    def retries_left(self, info):
        """How many more times a job the machine lost may be submitted again for the same inputs."""
        return max(0, int(self.machine.retries) + 1 - _tries(info))

    def wait_current(self, run):
        info = self.session.job(self.run_key(run))
        sig = self.submit_sig(run)
        return bool(sig) and info["sig"] == sig and info["state"].done

    def fetch_current(self, run):
        info = self.session.job(self.run_key(run))
        prov = read_provenance(self.results_dir(run))
        if not prov or not info["state"].done or not info["fingerprint"]:
            return False
        # the job id too: a rerun that ends within the minute ``ls`` shows can
        # leave files of the same sizes and times
        if prov.get("signature") != info["sig"] or prov.get("fingerprint") != info["fingerprint"] \
                or str(prov.get("job_id", "")) != info["id"]:
            return False
        where = self.results_dir(run)
        present = set(os.listdir(where))         # one call for the usual flat result directory
        return all(f in present or ("/" in f and os.path.exists(os.path.join(where, f)))
                   for f in prov.get("files", []))

    # -- why a step is stale (``doit info TASK``) ---------------------------------
    def why_clone(self):
        stamp = self.session.stamp(self.keys["clone"])
        if not stamp:
            return "the machine has no source of %s (or an upload was cut short)" % self.recipe.name
        if isinstance(self.recipe.source, Git):
            if stamp.get("sig") != self.clone_sig():
                return "the recipe names another git URL or ref than the machine cloned"
            return "%s now names commit %s; the machine has %s" % (
                self.recipe.source.ref, self.remote_head()[:12], (stamp.get("commit") or "?")[:12])
        return "the local tree changed since it was last sent"

    def why_configure(self):
        stamp = self.session.stamp(self.keys["configure"])
        if not stamp:
            return "never configured on %s, or the last configure failed or was cut short" % self.machine.name
        return "the CMake options, CMake files, modules, environment or cmake command changed"

    def why_compile(self):
        stamp = self.session.stamp(self.keys["compile"])
        if not stamp:
            return "never compiled on %s, or configure ran since, or the last compile failed" % self.machine.name
        return "the source changed since the last compile"

    def why_geometry(self, gname):
        if not self.session.stamp(self.geometry_key(gname)):
            return "geometry %s is not on the machine" % gname
        return "geometry %s changed since it was sent" % gname

    def why_submit(self, run):
        info = self.session.job(self.run_key(run))
        state = info["state"]
        if not self.submit_sig(run):
            return "the executable is not built yet"
        if not info["id"]:
            return "run %s was never submitted" % run.name
        if info["sig"] != self.submit_sig(run):
            return ("the run's inputs changed since job %s (executable, geometry, run settings or "
                    "jobscript)" % info["id"])
        if state is JobState.CANCELLED:
            return "job %s was cancelled" % info["id"]
        if state in MACHINE_FAULTS:
            return "job %s ended %s (the machine, not the program); %d retries left" % (
                info["id"], state.value.upper(), self.retries_left(info))
        return "job %s is %s" % (info["id"], state.value)

    def why_wait(self, run):
        info = self.session.job(self.run_key(run))
        if info["state"].active:
            return "job %s is %s" % (info["id"], info["state"].value)
        if info["id"] and not info["state"].done:
            return self.failure_line(run, info)
        return "run %s has no completed job for its current inputs" % run.name

    def why_fetch(self, run):
        info = self.session.job(self.run_key(run))
        if not info["state"].done:
            return "run %s has no completed job to fetch from yet" % run.name
        prov = read_provenance(self.results_dir(run))
        if not prov:
            return "%s holds no results" % os.path.relpath(self.results_dir(run), self.project_dir)
        if str(prov.get("job_id", "")) != info["id"] or prov.get("signature") != info["sig"]:
            return "the local results are from job %s; the machine has job %s" % (prov.get("job_id"), info["id"])
        if prov.get("fingerprint") != info["fingerprint"]:
            return "the results on the machine changed since they were fetched"
        return "a fetched file is missing locally"

    # -- actions ------------------------------------------------------------------
    def sync(self):
        """Bring a local tree's edits to the machine if they are not there yet."""
        if isinstance(self.recipe.source, Git) or self.source_synced():
            return ""
        return self.do_clone() + "\n"

    def do_clone(self):
        source = self.recipe.source
        remote = self.session.remote
        root = self.machine.remote_root
        sig = self.clone_sig()
        if isinstance(source, Git):
            url, user, password = source.credentials()
            result = remote.run(scripts.git_clone_script(root, self.src, url, source.ref, sig, user, password),
                                what="clone " + self.recipe.name, private=True)
            commit = _tagged(result.text, "@commit")
            self.session.set_stamp(self.keys["clone"], {"sig": sig, "commit": commit})
            return "cloned %s at %s" % (source.public_url, commit)
        manifest = self.manifest()
        # What the machine really holds decides what to send, not the stamp:
        # after a cut-short sync the stamp is gone but most files are there.
        result = remote.run(scripts.manifest_script(root, self.src), what="list source")
        remote_manifest = scripts.parse_manifest(result.text)
        changed = sorted(p for p, h in manifest.items() if remote_manifest.get(p) != h)
        deleted = sorted(p for p in remote_manifest if p not in manifest)
        stamp = json.dumps({"sig": sig})
        seal = transfer.new_seal()
        sent = transfer.send_files(remote, scripts.sync_script(root, self.src, stamp, seal, lock_dir=self.dir),
                                   self._local(source.path), changed, deleted,
                                   what="sync %d files" % len(changed), seal=seal)
        self.session.set_stamp(self.keys["clone"], {"sig": sig})
        return "synced %d changed and %d deleted files (%d bytes)" % (len(changed), len(deleted), sent)

    def cache_record(self):
        """What a CMake cache is made from: the options, and what decides the compilers."""
        return {"options": self.cmake_options(),
                "tools": signature.digest("tools", self.machine.cmake, self.setup())}

    def needs_fresh_cache(self):
        """True when ``-D`` cannot bring the cache to the recipe's options.

        CMake keeps an option that left the recipe (and its effect), and
        keeps the compilers it first found whatever ``CMAKE_<LANG>_COMPILER``
        or the modules say later.  So: a cache of unknown making, an option
        removed, a compiler or toolchain option changed, or other modules,
        environment or cmake command each start a new cache.
        """
        old, new = self.session.stamp(self.keys["cache"]), self.cache_record()
        if not old or not isinstance(old.get("options"), dict) or old.get("tools") != new["tools"]:
            return True
        before, now = old["options"], new["options"]
        return bool(set(before) - set(now)) or any(
            TOOLCHAIN_RE.match(name) and before.get(name) != now.get(name) for name in set(before) | set(now))

    def do_configure(self):
        synced = self.sync()
        options = self.cmake_options()
        sig = self.configure_sig()
        stamp = {"sig": sig, "options": options}
        fresh = self.needs_fresh_cache()
        had_cache = self.session.stamp(self.keys["cache"]) is not None
        record = self.cache_record()
        script = scripts.configure_script(self.machine.remote_root, self.dir, self.setup(), self.machine.cmake,
                                          options, fresh, json.dumps(record, sort_keys=True), json.dumps(stamp),
                                          source_sig=self.local_source_sig())
        self.session.set_stamp(self.keys["compile"], None)      # the script removed it
        self.session.set_stamp(self.keys["cache"], record)
        result = self._build_step("configure", script)
        self.session.set_stamp(self.keys["configure"], stamp)
        if fresh and had_cache:
            sys.stderr.write("hpcdo: configure of %s started from a new CMake cache (an option was removed, "
                             "or the compilers may differ)\n" % self.recipe.name)
        return synced + result.text

    def do_compile(self):
        synced = self.sync()
        jobs = self.recipe.make_jobs or self.machine.make_jobs
        sig = self.compile_sig()
        script = scripts.compile_script(self.machine.remote_root, self.dir, self.setup(), self.machine.cmake,
                                        jobs, self.recipe.build_target, self.recipe.executable, sig,
                                        source_sig=self.local_source_sig())
        result = self._build_step("compile", script)
        binary = _tagged(result.text, "@binary")
        self.session.set_stamp(self.keys["compile"], {"sig": sig, "binary": binary})
        return synced + result.text

    def _build_step(self, step, script):
        """Run a configure or compile script; on failure forget its stamp and show the log's tail."""
        result = self.session.remote.run(script, what="%s %s" % (step, self.recipe.name), check=False,
                                         private=True)
        if result.exit_code != 0:
            self.session.set_stamp(self.keys[step], None)
            raise RemoteError("%s of %s on %s failed:\n%s"
                              % (step, self.recipe.name, self.machine.name, result.tail(25)))
        return result

    def do_send_geometry(self, gname):
        path = self._local(self.recipe.geometries[gname])
        sig = self.geometry_sig(gname)
        size = os.path.getsize(path)
        stamp = {"sig": sig}
        script = scripts.upload_script(self.machine.remote_root, self.geometry_dir(gname),
                                       self.geometry_file(gname), size, json.dumps(stamp))
        with open(path, "rb") as fh:
            self.session.remote.run(script, stdin=fh, what="send geometry %s (%d bytes)" % (gname, size))
        self.session.set_stamp(self.geometry_key(gname), stamp)
        return "sent %s (%d bytes)" % (gname, size)

    def submit_request(self, run, info, fresh=False):
        """What the submit script needs for ``run``, or an error if it must not be submitted now.

        ``fresh``: the user asked for this submission (``retry``), so the
        count of jobs in a row for these inputs starts again.
        """
        sig = self.submit_sig(run)
        if not sig:
            raise HpcdoError("run %s: the executable's hash is unknown; compile first" % run.name)
        if info["sig"] != sig and info["state"].active:
            raise HpcdoError(
                "run %s: job %s for earlier inputs is still %s on %s; wait for it or cancel it "
                "before submitting the new inputs" % (run.name, info["id"], info["state"].value,
                                                       self.machine.name))
        links = [("../../build/" + self.recipe.executable, os.path.basename(self.recipe.executable))]
        if run.geometry:
            links.append(("../../geometry/%s/%s" % (run.geometry, self.geometry_file(run.geometry)),
                          self.geometry_file(run.geometry)))
        binary = (self.session.stamp(self.keys["compile"]) or {}).get("binary")
        request = scripts.SubmitRequest(self.run_key(run), self.run_dir(run), info["id"], sig, links,
                                        run.outputs, self.jobscript(run), fresh=fresh, binary=binary,
                                        build_stamp="../../build/.hpcdo-compile")
        same = not fresh and info["id"] and info["sig"] == sig
        request.tries = _tries(info) + 1 if same else 1
        return request

    def submitted(self, run, request, outcome, detail):
        """Record one answer of the submit script; True if the run now has its job."""
        key = self.run_key(run)
        self.session.monitor.track(key, self.run_dir(run), run.outputs)
        if outcome == "submitted":
            self.session.set_job(key, {"sig": request.sig, "id": detail, "tries": str(request.tries)},
                                 JobState.PENDING)
            return True
        if outcome == "error" and self.session.scheduler.transient(detail):
            raise RemoteError("run %s: the scheduler on %s did not answer (%s); nothing was submitted: "
                              "call again when it is back" % (run.name, self.machine.name,
                                                              detail.replace("\n", " ")))
        if outcome == "error":
            raise RemoteError("run %s: submission on %s failed: %s" % (run.name, self.machine.name, detail))
        return False

    def do_submit(self, run):
        key = self.run_key(run)
        batched = self.session.batched.get(key)
        if batched:
            return "submitted job %s (with %d others in one command)" % (batched, len(self.session.batched) - 1)
        return self.submit_one(run)

    def submit_one(self, run, fresh=False):
        """Submit ``run`` in a command of its own, unless a job for its inputs is already there."""
        key = self.run_key(run)
        away = 0                      # submissions the scheduler did not answer
        for attempt in range(30):
            info = self.session.job(key)
            sig = self.submit_sig(run)
            if sig and info["sig"] == sig and (info["state"].active or info["state"].done):
                self.session.monitor.track(key, self.run_dir(run), run.outputs)
                return "job %s for these inputs is already %s" % (info["id"], info["state"].value)
            if not fresh and self.submit_current(run):
                return "job %s for these inputs %s; not submitted again" % (info["id"], info["state"].value)
            request = self.submit_request(run, info, fresh=fresh)
            result = self.session.remote.run(
                scripts.submit_script(self.machine.remote_root, [request], self.session.scheduler),
                what="submit " + run.name, private=True)
            outcome, detail = scripts.parse_submit(result.text).get(
                key, ("error", result.text.strip() or "no answer from the submit script"))
            if outcome == "error" and self.session.scheduler.transient(detail) and away < RETRIES:
                # the scheduler is away (restarting, overloaded): nothing was
                # recorded; try again after a growing pause
                away += 1
                time.sleep(RETRY_PAUSE * 2 ** (away - 1))
                continue
            if self.submitted(run, request, outcome, detail):
                return "submitted job %s" % detail
            # busy or changed: another invocation is submitting or has just
            # submitted this run; look again at what the machine now holds.
            if outcome == "busy":
                time.sleep(min(0.5 * (attempt + 1), 5))
            self.session.monitor.refresh(key)
        raise RemoteError("run %s: another hpcdo kept the run's submission lock; try again later" % run.name)

    def submit_current_here(self, run):
        """submit's check: current, and not just submitted by this invocation's batch."""
        return self.submit_current(run) and self.run_key(run) not in self.session.batched

    def do_wait(self, run):
        key = self.run_key(run)
        self.session.monitor.track(key, self.run_dir(run), run.outputs)
        while True:
            info = self.session.monitor.wait(key)
            if info["state"].done:
                return "job %s completed" % info["id"]
            if not (info["state"] in MACHINE_FAULTS and info["sig"] == self.submit_sig(run)
                    and self.retries_left(info)):
                break
            # the machine lost the job, not the program: submit it again now,
            # and say so where the user sees it whatever the verbosity
            lost = "hpcdo: run %s: job %s ended %s (the machine ended it, not the program); " % (
                run.name, info["id"], info["state"].value.upper())
            done = self.submit_one(run)
            sys.stderr.write(lost + done.replace("submitted job", "submitted it again as job") + "\n")
            sys.stderr.flush()
        tail = self.session.remote.run(scripts.tail_script(self.machine.remote_root, self.run_dir(run)),
                                       what="tail " + run.name, check=False).text.rstrip()
        if tail:
            sys.stderr.write("last lines of run %s's job.out:\n%s\n" % (run.name, "\n".join(
                "  " + line for line in tail.splitlines())))
        raise HpcdoError(self.failure_line(run, info))

    def log_path(self, run):
        """Where the run's job log is on the machine, as the user would type it there."""
        return "%s/%s/job.out" % (self.machine.remote_root.rstrip("/"), self.run_dir(run))

    def failure_line(self, run, info):
        """One line: how the run's job ended, where its log is, and what happens next."""
        state = info["state"]
        code = "" if info["code"] is None else " with exit code %s" % info["code"]
        head = "run %s: job %s on %s ended %s%s; log: %s" % (
            run.name, info["id"], self.machine.name, state.value.upper(), code, self.log_path(run))
        retry = "doit machine=%s retry %s" % (self.machine.name, run.name)
        if state is JobState.CANCELLED:
            return head + "; the next call submits it again"
        if state in MACHINE_FAULTS:
            return head + "; submitted %s times for these inputs, so not again by itself: %s" % (
                info.get("tries") or 1, retry)
        return head + "; not submitted again for the same inputs: change them, or %s" % retry

    def do_fetch(self, run):
        key = self.run_key(run)
        info = self.session.job(key)
        final = self.results_dir(run)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        _remove_leftovers(parent, run.name)
        incoming = tempfile.mkdtemp(prefix=".%s.incoming-" % run.name, dir=parent)
        os.chmod(incoming, 0o777 & ~_umask())
        try:
            skip = [os.path.basename(self.recipe.executable)]
            if run.geometry:
                skip.append(self.geometry_file(run.geometry))
            rundir = self.run_dir(run)
            script = scripts.fetch_script(self.machine.remote_root, rundir, run.outputs, skip)
            listing, files = transfer.receive_files(
                self.session.remote, script, incoming, strip=os.path.basename(rundir),
                accept=lambda rel: outputs.is_fetched(rel, run.outputs, skip), what="fetch " + run.name)
            fingerprint = scripts.fetch_fingerprint(listing, rundir, run.outputs)
            kept = _keep_lost_files(final, incoming, info, files)
            prov = self.provenance(run, info, fingerprint, files + kept, incoming)
            if kept:
                prov["kept_locally"] = kept
            with open(os.path.join(incoming, PROVENANCE), "w") as fh:
                json.dump(prov, fh, indent=2, sort_keys=True)
                fh.write("\n")
            _replace_dir(incoming, final)
        finally:
            if os.path.isdir(incoming):
                shutil.rmtree(incoming, ignore_errors=True)
        info["fingerprint"] = fingerprint
        self.session.set_job(key, info)
        note = ("; kept %d files of the same job that the machine no longer has: %s"
                % (len(kept), ", ".join(kept)) if kept else "")
        return "fetched %d files into %s%s" % (len(files), os.path.relpath(final, self.project_dir), note)

    def provenance(self, run, info, fingerprint, files, results):
        m = self.machine
        source = self.recipe.source
        prov = {
            "machine": m.name, "host": self.session.remote.host, "scheduler": m.scheduler,
            "recipe": self.recipe.name, "run": run.name, "job_id": info["id"],
            "signature": info["sig"], "fingerprint": fingerprint, "files": sorted(files),
            "source": source.describe(), "source_version": self.source_version(),
            "cmake_options": self.cmake_options(), "modules": list(m.modules or []) + self.recipe.modules,
            "run_settings": run.spec(), "jobscript": self.jobscript(run),
            "binary_sha256": (self.session.stamp(self.keys["compile"]) or {}).get("binary"),
            "started_at": _marker_time(os.path.join(results, "job.started")),
            "finished_at": _marker_time(os.path.join(results, "job.exit")),
            "fetched_at": _now(),
        }
        if not isinstance(source, Git):
            prov["git"] = _git_revision(self._local(source.path))
        return prov

    def cold(self):
        """Remove the machine's source and build trees, then clone, configure and compile."""
        self.session.remote.run(scripts.remove_script(self.machine.remote_root, [self.src, self.build]),
                                what="remove " + self.recipe.name)
        for key in self.keys.values():
            self.session.set_stamp(key, None)
        return "\n".join([self.do_clone(), self.do_configure(), self.do_compile()])

    def status_rows(self):
        """(step, state) rows for the status table."""
        rows = [
            ("clone", self.clone_current()),
            ("configure", self.configure_current()),
            ("compile", self.compile_current()),
        ]
        rows += [("send_geometry:" + g, self.geometry_current(g)) for g in self.recipe.geometries]
        out = [(name, "up to date" if ok else "stale") for name, ok in rows]
        if isinstance(self.recipe.source, Git):
            out[0] = ("clone", out[0][1] + self.commit_note())
        for run in self.recipe.runs.values():
            info = self.session.job(self.run_key(run))
            current = info["sig"] and info["sig"] == self.submit_sig(run)
            job = "%s %s" % (info["id"], info["state"].value) if info["id"] else "never submitted"
            if info["id"] and not current:
                job += " (older inputs)"
            fetched = "fetched" if self.fetch_current(run) else "not fetched"
            out.append(("run " + run.name, "%s, %s" % (job, fetched)))
        return out


def _tries(info):
    """The jobs in a row for a run's current inputs, as ``job.tries`` records (1 when it says nothing)."""
    tries = str(info.get("tries", ""))
    return int(tries) if tries.isdigit() else 1


def _tagged(text, tag):
    for line in text.splitlines():
        if line.startswith(tag + " "):
            return line.split(None, 1)[1].strip()
    return ""


def _keep_lost_files(final, incoming, info, files):
    """Copy into ``incoming`` the files of the local results that the machine lost.

    Only for the same job: a file deleted on the machine (scratch purge,
    a tidy-up) must not delete the only copy left.  Returns their names.
    """
    old = read_provenance(final)
    if not old or str(old.get("job_id", "")) != info["id"] or old.get("signature") != info["sig"]:
        return []
    kept = []
    for name in old.get("files", []):
        src = os.path.join(final, name)
        if name in files or not os.path.isfile(src) or os.path.islink(src):
            continue
        dst = os.path.join(incoming, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
        kept.append(name)
    return kept


def _remove_leftovers(parent, name):
    """Remove what a fetch of run ``name`` killed midway left in ``parent``.

    Only one doit of a checkout works on a machine at a time (see
    :func:`hpcdo.project._one_at_a_time`), so a partial download or a
    replaced results directory found here belongs to no living fetch.
    """
    for entry in os.listdir(parent):
        if entry.startswith((".%s.incoming-" % name, ".%s.old-" % name)):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _replace_dir(new, final):
    """Put ``new`` where ``final`` is, never leaving a half-written ``final``."""
    old = None
    if os.path.exists(final):
        # hidden, as run names never are, so no run's results can be taken for it
        old = os.path.join(os.path.dirname(final), ".%s.old-%d" % (os.path.basename(final), os.getpid()))
        os.rename(final, old)
    os.rename(new, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def read_provenance(results_dir):
    try:
        with open(os.path.join(results_dir, PROVENANCE)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _marker_time(path):
    """The time in a job.started/job.exit marker ("<pid or code> <epoch>"), as ISO text."""
    try:
        with open(path) as fh:
            epoch = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds")


def _git_revision(path):
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
