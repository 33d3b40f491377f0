"""The build steps of one target: clone or sync, configure, compile, send a geometry.

Each step has its up-to-date check (``*_current``: compares the target's
signature with the stamp the probe found), a reason when it is stale
(``why_*``, shown by ``doit info``) and its action (``do_*``), which runs
one script on the machine and records the stamp the script wrote.
"""

import os
import re
import sys

from .. import RemoteError
from .. import events, signature
from ..model import Stamp
from ..recipe import Git
from ..remote import scripts, transfer

#: CMake options that pick compilers or the toolchain: CMake keeps its first
#: choice in the cache, so a change of any of them needs a new cache
TOOLCHAIN_RE = re.compile(r"^(CMAKE_[A-Za-z]+_COMPILER(_[A-Z_]+)?|CMAKE_TOOLCHAIN_FILE|CMAKE_GENERATOR.*|"
                          r"CMAKE_MAKE_PROGRAM|CMAKE_[A-Za-z]+_COMPILER_LAUNCHER)(:[A-Z]+)?\Z")
#: a line hpcdo's build scripts print for hpcdo to read (``@binary <hash>``), never shown
MARKER = re.compile(r"^@[a-z_]+( |$)")


class Build:
    """The build steps of :class:`hpcdo.target.Target` ``target``."""

    def __init__(self, target):
        self.target = target
        self.session = target.session
        self.machine = target.machine
        self.recipe = target.recipe
        self.keys = target.keys

    def clone_current(self):
        """A git clone is current at the same URL and ref; a local tree once it is on the machine.

        Keeping a local tree in step with edits is the job of configure and
        compile (see :meth:`sync`), so that an edit reruns only what it affects.
        """
        stamp = self.session.stamp(self.keys["clone"])
        if isinstance(self.recipe.source, Git):
            # a branch is followed: when it names another commit now, clone again
            head = self.target.remote_head() if self.target.probe_heads() else ""
            return bool(stamp) and stamp.sig == self.target.clone_sig() and (
                not head or head == stamp.commit)
        return bool(stamp)

    def source_synced(self):
        stamp = self.session.stamp(self.keys["clone"])
        return bool(stamp) and stamp.sig == self.target.clone_sig()

    def configure_current(self):
        stamp = self.session.stamp(self.keys["configure"])
        return bool(stamp) and stamp.sig == self.target.configure_sig()

    def compile_current(self):
        stamp = self.session.stamp(self.keys["compile"])
        return bool(stamp) and stamp.sig == self.target.compile_sig()

    def geometry_current(self, gname):
        stamp = self.session.stamp(self.target.geometry_key(gname))
        return bool(stamp) and stamp.sig == self.target.geometry_sig(gname)

    def commit_note(self):
        """`` (commit X)``, or what the branch names now when the machine is behind it."""
        source = self.recipe.source
        have = getattr(self.session.stamp(self.keys["clone"]), "commit", "")[:12]
        head = (self.target.remote_head() if self.target.probe_heads() else "")[:12]
        if head and have and head != have:
            return " (commit %s; %s is now at %s)" % (have, source.ref, head)
        if have:
            return " (commit %s%s)" % (have, "" if head or not self.target.probe_heads() else
                                       "; %s could not be looked up" % source.ref)
        return ""

    def why_clone(self):
        stamp = self.session.stamp(self.keys["clone"])
        if not stamp:
            return "the machine has no source of %s (or an upload was cut short)" % self.recipe.name
        if isinstance(self.recipe.source, Git):
            if stamp.sig != self.target.clone_sig():
                return "the recipe names another git URL or ref than the machine cloned"
            return "%s now names commit %s; the machine has %s" % (
                self.recipe.source.ref, self.target.remote_head()[:12], (stamp.commit or "?")[:12])
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
        if not self.session.stamp(self.target.geometry_key(gname)):
            return "geometry %s is not on the machine" % gname
        return "geometry %s changed since it was sent" % gname

    def sync(self):
        """Bring a local tree's edits to the machine if they are not there yet."""
        if isinstance(self.recipe.source, Git) or self.source_synced():
            return ""
        return self.do_clone() + "\n"

    def do_clone(self):
        source = self.recipe.source
        remote = self.session.remote
        root = self.machine.remote_root
        sig = self.target.clone_sig()
        if isinstance(source, Git):
            url, user, password = source.credentials()
            result = remote.run(scripts.git_clone_script(root, self.target.src, url, source.ref, sig, user, password),
                                what="clone " + self.recipe.name, private=True)
            commit = tagged(result.text, "@commit")
            self.session.set_stamp(self.keys["clone"], Stamp(sig=sig, commit=commit))
            return "cloned %s at %s" % (source.public_url, commit)
        manifest = self.target.manifest()
        # What the machine really holds decides what to send, not the stamp:
        # after a cut-short sync the stamp is gone but most files are there.
        result = remote.run(scripts.manifest_script(root, self.target.src), what="list source")
        remote_manifest = scripts.parse_manifest(result.text)
        changed = sorted(p for p, h in manifest.items() if remote_manifest.get(p) != h)
        deleted = sorted(p for p in remote_manifest if p not in manifest)
        stamp = Stamp(sig=sig)
        seal = transfer.new_seal()
        sent = transfer.send_files(remote, scripts.sync_script(root, self.target.src, stamp.to_json(), seal, lock_dir=self.target.dir),
                                   self.target._local(source.path), changed, deleted,
                                   what="sync %d files" % len(changed), seal=seal)
        self.session.set_stamp(self.keys["clone"], stamp)
        return "synced %d changed and %d deleted files (%d bytes)" % (len(changed), len(deleted), sent)

    def cache_record(self):
        """What a CMake cache is made from: the options, and what decides the compilers."""
        return Stamp(options=self.target.cmake_options(),
                     tools=signature.digest("tools", self.machine.cmake, self.target.setup()))

    def needs_fresh_cache(self):
        """True when ``-D`` cannot bring the cache to the recipe's options.

        CMake keeps an option that left the recipe (and its effect), and
        keeps the compilers it first found whatever ``CMAKE_<LANG>_COMPILER``
        or the modules say later.  So: a cache of unknown making, an option
        removed, a compiler or toolchain option changed, or other modules,
        environment or cmake command each start a new cache.
        """
        old, new = self.session.stamp(self.keys["cache"]), self.cache_record()
        if not old or old.options is None or old.tools != new.tools:
            return True
        before, now = old.options, new.options
        return bool(set(before) - set(now)) or any(
            TOOLCHAIN_RE.match(name) and before.get(name) != now.get(name) for name in set(before) | set(now))

    def do_configure(self):
        synced = self.sync()
        options = self.target.cmake_options()
        sig = self.target.configure_sig()
        stamp = Stamp(sig=sig, options=options)
        fresh = self.needs_fresh_cache()
        had_cache = self.session.stamp(self.keys["cache"]) is not None
        record = self.cache_record()
        script = scripts.configure_script(self.machine.remote_root, self.target.dir, self.target.setup(), self.machine.cmake,
                                          options, fresh, record.to_json(), stamp.to_json(),
                                          source_sig=self.target.local_source_sig())
        self.session.set_stamp(self.keys["compile"], None)      # the script removed it
        self.session.set_stamp(self.keys["cache"], record)
        self._build_step("configure", script, synced)
        self.session.set_stamp(self.keys["configure"], stamp)
        if fresh and had_cache:
            sys.stderr.write("hpcdo: configure of %s started from a new CMake cache (an option was removed, "
                             "or the compilers may differ)\n" % self.recipe.name)
        return ""

    def do_compile(self):
        synced = self.sync()
        jobs = self.recipe.make_jobs or self.machine.make_jobs
        sig = self.target.compile_sig()
        script = scripts.compile_script(self.machine.remote_root, self.target.dir, self.target.setup(), self.machine.cmake,
                                        jobs, self.recipe.build_target, self.recipe.executable, sig,
                                        source_sig=self.target.local_source_sig())
        result = self._build_step("compile", script, synced)
        binary = tagged(result.text, "@binary")
        self.session.set_stamp(self.keys["compile"], Stamp(sig=sig, binary=binary))
        return ""

    def _build_step(self, step, script, synced=""):
        """Run a configure or compile script; on failure forget its stamp and show the log's tail.

        Its output is printed line by line as it comes (``-v 2`` shows it live),
        after what ``synced`` says and without hpcdo's markers.
        """
        label = "%s %s" % (step, self.recipe.name)
        shown = _Shown(label, sys.stdout)
        if synced:
            shown.stream.write(synced)
        result = self.session.remote.run(script, sink=shown, what=label, check=False, private=True)
        result.stdout = shown.close()
        if result.exit_code != 0:
            self.session.set_stamp(self.keys[step], None)
            raise RemoteError("%s of %s on %s failed:\n%s"
                              % (step, self.recipe.name, self.machine.name, result.tail(25)))
        return result

    def do_send_geometry(self, gname):
        path = self.target._local(self.recipe.geometries[gname])
        sig = self.target.geometry_sig(gname)
        size = os.path.getsize(path)
        stamp = Stamp(sig=sig)
        script = scripts.upload_script(self.machine.remote_root, self.target.geometry_dir(gname),
                                       self.target.geometry_file(gname), size, stamp.to_json())
        with open(path, "rb") as fh:
            self.session.remote.run(script, stdin=transfer.metered(fh, "send geometry " + gname),
                                    what="send geometry %s (%d bytes)" % (gname, size))
        self.session.set_stamp(self.target.geometry_key(gname), stamp)
        return "sent %s (%d bytes)" % (gname, size)

    def cold_paths(self):
        """The directories ``cold`` removes on the machine, as the user would type them there."""
        root = self.machine.remote_root.rstrip("/")
        return ["%s/%s" % (root, self.target.src), "%s/%s" % (root, self.target.build)]

    def cold(self):
        """Say what goes, remove the machine's source and build trees, then clone, configure and compile.

        Run directories (jobs, their logs and results), geometry and the
        local ``results/`` are kept.
        """
        sys.stdout.write("cold %s on %s: removing %s (source and build); run directories, geometry and "
                         "results/ are kept\n" % (self.recipe.name, self.machine.name,
                                                   " and ".join(self.cold_paths())))
        sys.stdout.flush()
        self.session.remote.run(scripts.remove_script(self.machine.remote_root, [self.target.src, self.target.build]),
                                what="remove " + self.recipe.name)
        for key in self.target.keys.values():
            self.session.set_stamp(key, None)
        return "\n".join([self.do_clone(), self.do_configure(), self.do_compile()])


class _Shown:
    """A script's stdout as it arrives: kept whole for the caller, each line printed (but markers)
    to ``stream`` and told to the progress display."""

    def __init__(self, label, stream):
        self.label, self.stream = label, stream
        self.parts, self.partial = [], b""

    def write(self, block):
        self.parts.append(block)
        lines = (self.partial + block).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._say(line)

    def _say(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if MARKER.match(line):
            return
        self.stream.write(line + "\n")
        self.stream.flush()
        events.emit("output", step=self.label, line=line)

    def close(self):
        """All the output, as bytes; a last line without a newline is printed too."""
        if self.partial:
            self._say(self.partial)
            self.partial = b""
        return b"".join(self.parts)


def tagged(text, tag):
    """The value of the first ``<tag> value`` line of a script's answer, or ""."""
    for line in text.splitlines():
        if line.startswith(tag + " "):
            return line.split(None, 1)[1].strip()
    return ""
