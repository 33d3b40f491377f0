"""The results step of one target: fetch a run's results, record their provenance.

A fetch brings the run's result files (and the job's log and markers) into a
fresh hidden directory beside ``results/<machine>/<run>/`` and swaps it into
place only when every file has arrived, with a provenance file saying which
job, inputs, source and build made them.  The step is current while the
local copy holds what the machine's files are now (the probe's
fingerprint), for the same job.
"""

import datetime
import json
import os
import shutil
import subprocess
import tempfile

from .. import outputs
from ..recipe import Git
from ..remote import scripts, transfer

PROVENANCE = "hpcdo-provenance.json"


class Results:
    """The results of :class:`hpcdo.target.Target` ``target``'s runs."""

    def __init__(self, target):
        self.target = target
        self.session = target.session
        self.machine = target.machine
        self.recipe = target.recipe

    def fetch_current(self, run):
        info = self.session.job(self.target.run_key(run))
        prov = read_provenance(self.target.results_dir(run))
        if not prov or not info.state.done or not info.fingerprint:
            return False
        # the job id too: a rerun that ends within the minute ``ls`` shows can
        # leave files of the same sizes and times
        if prov.get("signature") != info.sig or prov.get("fingerprint") != info.fingerprint \
                or str(prov.get("job_id", "")) != info.id:
            return False
        where = self.target.results_dir(run)
        present = set(os.listdir(where))         # one call for the usual flat result directory
        return all(f in present or ("/" in f and os.path.exists(os.path.join(where, f)))
                   for f in prov.get("files", []))

    def why_fetch(self, run):
        info = self.session.job(self.target.run_key(run))
        if not info.state.done:
            return "run %s has no completed job to fetch from yet" % run.name
        prov = read_provenance(self.target.results_dir(run))
        if not prov:
            return "%s holds no results" % os.path.relpath(self.target.results_dir(run), self.target.project_dir)
        if str(prov.get("job_id", "")) != info.id or prov.get("signature") != info.sig:
            return "the local results are from job %s; the machine has job %s" % (prov.get("job_id"), info.id)
        if prov.get("fingerprint") != info.fingerprint:
            return "the results on the machine changed since they were fetched"
        return "a fetched file is missing locally"

    def do_fetch(self, run):
        key = self.target.run_key(run)
        info = self.session.job(key)
        final = self.target.results_dir(run)
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        _remove_leftovers(parent, run.name)
        incoming = tempfile.mkdtemp(prefix=".%s.incoming-" % run.name, dir=parent)
        os.chmod(incoming, 0o777 & ~_umask())
        try:
            skip = [os.path.basename(self.recipe.executable)]
            if run.geometry:
                skip.append(self.target.geometry_file(run.geometry))
            skip += run.inputs          # linked from the machine's store of inputs
            rundir = self.target.run_dir(run)
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
        info.fingerprint = fingerprint
        self.session.set_job(key, info)
        note = ("; kept %d files of the same job that the machine no longer has: %s"
                % (len(kept), ", ".join(kept)) if kept else "")
        return "fetched %d files into %s%s" % (len(files), os.path.relpath(final, self.target.project_dir), note)

    def provenance(self, run, info, fingerprint, files, results):
        m = self.machine
        source = self.recipe.source
        prov = {
            "machine": m.name, "host": self.session.remote.host, "scheduler": m.scheduler,
            "recipe": self.recipe.name, "run": run.name, "job_id": info.id,
            "signature": info.sig, "fingerprint": fingerprint, "files": sorted(files),
            "source": source.describe(), "source_version": self.target.source_version(),
            "cmake_options": self.target.cmake_options(), "modules": list(m.modules or []) + self.recipe.modules,
            "run_settings": run.spec(), "jobscript": self.target.jobscript(run),
            "binary_sha256": getattr(self.session.stamp(self.target.keys["compile"]), "binary", None),
            "started_at": _marker_time(os.path.join(results, "job.started")),
            "finished_at": _marker_time(os.path.join(results, "job.exit")),
            "fetched_at": _now(),
        }
        if not isinstance(source, Git):
            prov["git"] = _git_revision(self.target._local(source.path))
        return prov


def read_provenance(results_dir):
    try:
        with open(os.path.join(results_dir, PROVENANCE)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _keep_lost_files(final, incoming, info, files):
    """Copy into ``incoming`` the files of the local results that the machine lost.

    Only for the same job: a file deleted on the machine (scratch purge,
    a tidy-up) must not delete the only copy left.  Returns their names.
    """
    old = read_provenance(final)
    if not old or str(old.get("job_id", "")) != info.id or old.get("signature") != info.sig:
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
