"""Moving files: many files in one tar stream, one round trip each way.

Per-file SFTP pays a round trip per file; a tar stream through one remote
command pays one for the whole set, and is streamed, so neither side holds
a large transfer in memory.  Uploads land only when they arrived whole
(see the scripts in :mod:`hpcdo.remote.scripts`); downloads are unpacked
into a fresh directory by :func:`unpack`, which accepts only regular files
and directories with checked names, so a remote archive can never write
outside it, and the caller swaps that directory into place.
"""

import io
import os
import secrets
import shutil
import tarfile
import threading
import time

from .. import HpcdoError, RemoteError, events

CHUNK = 1 << 20


def new_seal():
    """A token that ends one upload's stream, new for every upload (see ``sync_script``)."""
    return secrets.token_hex(16)


def tar_chunks(root, names, deleted=(), seal=None, arcnames=None):
    """Yield a tar of ``names`` (relative to ``root``), a deletion list and the ``seal``, in chunks.

    ``arcnames``: the names the files take in the tar, one for each of
    ``names`` (default: ``names`` themselves).

    ``.hpcdo-end``, holding ``seal``, is the last member: the receiver knows
    the stream is whole only when it has it.

    The tar is written by a thread into a pipe and read here, so memory use
    stays at one chunk whatever the size of the files.
    """
    read_fd, write_fd = os.pipe()
    errors = []

    def writer():
        try:
            with os.fdopen(write_fd, "wb", buffering=CHUNK) as out:
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for rel, arcname in zip(names, arcnames or names):
                        path = os.path.join(root, rel)
                        info = tar.gettarinfo(os.path.realpath(path), arcname=arcname)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        with open(path, "rb") as fh:
                            tar.addfile(info, fh)
                    if deleted:
                        _add_bytes(tar, ".hpcdo-delete", ("\n".join(deleted) + "\n").encode())
                    if seal is not None:
                        _add_bytes(tar, ".hpcdo-end", (seal + "\n").encode())
        except BrokenPipeError:
            pass          # the reader stopped: the remote side failed and will say why
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as src:
            while True:
                block = src.read(CHUNK)
                if not block:
                    break
                yield block
    finally:
        thread.join()
    if errors:
        raise RemoteError("cannot read the files to send: %s" % errors[0])


def _add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


class Meter:
    """Counts a transfer's bytes and tells the progress display (:mod:`hpcdo.events`) every
    quarter of a second, and once at the end."""

    def __init__(self, what):
        self.what, self.bytes, self.ended = what, 0, False
        self.start = self.told = time.monotonic()

    def add(self, count):
        self.bytes += count
        now = time.monotonic()
        if now - self.told >= 0.25:
            self.told = now
            events.emit("transfer", what=self.what, bytes=self.bytes, seconds=now - self.start)

    def done(self, whole=True):
        """The transfer ended: ``whole``, or cut short (an error, Ctrl-C); said once."""
        if not self.ended:
            self.ended = True
            events.emit("transfer", what=self.what, bytes=self.bytes, seconds=time.monotonic() - self.start,
                        done=True, whole=whole)


def metered(source, what, meter=None):
    """The chunks of ``source`` (a binary file or an iterable of chunks), counted by a :class:`Meter`."""
    meter = meter or Meter(what)
    read = getattr(source, "read", None)
    blocks = iter(lambda: read(CHUNK), b"") if read else source
    try:
        for block in blocks:
            meter.add(len(block))
            yield block
        meter.done()
    finally:
        meter.done(whole=False)       # a no-op after a whole transfer; else the command stopped reading


class _MeteredSink:
    def __init__(self, sink, meter):
        self.sink, self.meter = sink, meter

    def write(self, block):
        self.sink.write(block)
        self.meter.add(len(block))


def send_files(remote, script, root, names, deleted=(), what="send files", seal=None, arcnames=None):
    """Run ``script`` (which unpacks a tar from stdin) with a tar of ``names`` fed to it.

    ``seal``: the token ``script`` expects in the stream's last member;
    ``arcnames``: the names the files take in the tar (see :func:`tar_chunks`).
    """
    meter = Meter(what)
    try:
        remote.run(script, stdin=metered(tar_chunks(root, names, deleted, seal, arcnames), what, meter),
                   what=what)
        meter.done()
    finally:
        meter.done(whole=False)
    return meter.bytes


def receive_files(remote, script, dest, accept=None, strip=None, what="receive files"):
    """Run ``script`` (which prints header lines, a line ``@tar``, then a tar) and unpack into ``dest``.

    Returns ([header lines], [regular file names]); see :func:`unpack` for
    ``accept`` and ``strip``.  ``dest`` must be a new, empty directory of
    the caller's.  The archive is unpacked as it arrives, by a thread
    reading a pipe the command's output is written to: nothing is stored
    twice, and the machine's ``tar`` writes no faster than files land here.
    If unpacking fails (a full disk, a refused member) the pipe is closed,
    which stops the command; the unpacking error is the one reported.
    """
    read_fd, write_fd = os.pipe()
    outcome = {}

    def unpacker():
        try:
            with os.fdopen(read_fd, "rb") as src:
                outcome["value"] = unpack(src, dest, accept, strip)
                while src.read(CHUNK):
                    pass                # tar's padding after the end of the archive
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=unpacker, daemon=True)
    thread.start()
    meter = Meter(what)
    try:
        with os.fdopen(write_fd, "wb", buffering=0) as sink:
            remote.run(script, sink=_MeteredSink(sink, meter), what=what)
        meter.done()
    except (RemoteError, OSError) as exc:
        thread.join()
        if isinstance(outcome.get("error"), HpcdoError) and not isinstance(outcome["error"], CutShort):
            raise outcome["error"]        # what made the command stop
        if isinstance(exc, OSError):
            raise RemoteError("%s: %s" % (what, exc.strerror or exc))
        raise
    finally:
        meter.done(whole=False)
        thread.join()
    if "error" in outcome:
        if isinstance(outcome["error"], HpcdoError):
            raise outcome["error"]
        raise RemoteError("%s: cannot unpack: %s" % (what, outcome["error"]))
    return outcome["value"]


class CutShort(RemoteError):
    """The answer from the machine ended early: the command's own failure says why."""


def unpack(archive, dest, accept=None, strip=None):
    """Read the header lines up to ``@tar``, then the tar that follows, into ``dest``.

    ``archive``: a path or a binary file.  ``strip``: the first component
    every member's name must have, taken off (the run directory's name);
    ``accept(name)``: whether a file is wanted, others are skipped (the
    machine's selection is a superset, see :mod:`hpcdo.outputs`).

    The archive comes from the machine, which may be shared or compromised,
    so nothing of it is trusted to Python's extraction code (whose ``data``
    filter some interpreters let a link through, CVE-2025-4517, and whose
    reader loops forever on a negative size, CVE-2025-8194): only regular
    files and directories are accepted, each name is checked to stay inside
    ``dest``, sizes must be whole and non-negative, and the archive is read
    as a stream, which cannot seek backwards.  A hard link is taken only to
    a file of the same archive already written (tar's way of sending one
    file twice), and becomes a copy of it.  Anything else fails the
    whole transfer with a "refusing" message.  A file that cannot be
    written here (a full disk) fails it with the system's reason.
    """
    if isinstance(archive, (str, bytes, os.PathLike)):
        with open(archive, "rb") as fh:
            return unpack(fh, dest, accept, strip)
    fh = archive
    header = []
    while True:
        line = fh.readline()
        if not line:
            raise CutShort("the answer from the machine ended before its archive began")
        if line == b"@tar\n":
            break
        header.append(line.decode("utf-8", "replace").rstrip("\n"))
    files, seen, made = [], set(), set()

    def named(name):
        rel = _inside(name, dest)
        if strip is None:
            return rel
        head, _, rest = rel.partition("/")
        if head != strip or not rest:
            raise RemoteError("refusing %r from the machine: it is not in run directory %s" % (name, strip))
        return rest

    try:
        with tarfile.open(fileobj=fh, mode="r|") as tar:
            for member in tar:
                if member.size < 0:
                    raise RemoteError("refusing file %r from the machine: its size is negative" % member.name)
                if member.isdir() and member.name.strip("/") in ("", ".", strip):
                    continue            # the destination itself, already there
                name = named(member.name)
                if member.isdir():
                    _make_dirs(dest, name, made)
                elif member.isreg():
                    if accept is not None and not accept(name):
                        continue
                    _write_member(tar, member, dest, name, made)
                    if name not in seen:
                        seen.add(name)
                        files.append(name)
                elif member.islnk() and accept is not None and not accept(name):
                    continue
                elif member.islnk() and named(member.linkname) in seen:
                    # tar's way to send a file it has already sent (a name listed
                    # twice, or two names of one file): a copy of that file
                    _copy_member(dest, named(member.linkname), name, made)
                    if name not in seen:
                        seen.add(name)
                        files.append(name)
                else:
                    raise RemoteError("refusing %r from the machine: only regular files and directories "
                                      "are fetched, and this is a %s" % (member.name, _kind(member)))
    except (tarfile.TarError, EOFError) as exc:
        raise CutShort("the archive from the machine is damaged or cut short: %s" % exc)
    except OSError as exc:
        raise HpcdoError("cannot write the files fetched into %s: %s" % (dest, exc.strerror or exc))
    return header, files


def _inside(name, dest):
    """``name`` as a clean relative path inside ``dest``, or a refusal."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or not parts or ".." in parts or any("\0" in p for p in parts):
        raise RemoteError("refusing file %r from the machine: it would land outside %s" % (name, dest))
    return "/".join(parts)


def _make_dirs(dest, rel, made):
    """Make the directories of ``rel`` under ``dest``; none of them may be anything but a directory.

    ``made``: the directories this unpacking made already (one check each,
    not one per file in them).
    """
    path = dest
    for part in rel.split("/"):
        path = os.path.join(path, part)
        if path in made:
            continue
        made.add(path)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if os.path.islink(path) or not os.path.isdir(path):
                raise RemoteError("refusing %r from the machine: %s is already a file" % (rel, part))


def _write_member(tar, member, dest, rel, made):
    parent = os.path.dirname(rel)
    if parent:
        _make_dirs(dest, parent, made)
    path = os.path.join(dest, rel)
    mode = 0o755 if member.mode & 0o111 else 0o644
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), mode)
    except IsADirectoryError:
        raise RemoteError("refusing %r from the machine: it is already a directory" % rel)
    try:
        src = tar.extractfile(member)
        left = member.size
        while left > 0:
            block = src.read(min(CHUNK, left))
            if not block:
                raise CutShort("the archive from the machine is damaged or cut short: %s ends early" % rel)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
            left -= len(block)
        if 0 <= member.mtime < 2 ** 33:
            os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)


def _copy_member(dest, source, rel, made):
    if source == rel:
        return
    parent = os.path.dirname(rel)
    if parent:
        _make_dirs(dest, parent, made)
    path = os.path.join(dest, rel)
    if os.path.lexists(path) and (os.path.islink(path) or os.path.isdir(path)):
        raise RemoteError("refusing %r from the machine: it is already a directory" % rel)
    shutil.copy2(os.path.join(dest, source), path)


def _kind(member):
    if member.issym():
        return "symbolic link to %r" % member.linkname
    if member.islnk():
        return "hard link to %r" % member.linkname
    return {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
            tarfile.FIFOTYPE: "named pipe"}.get(member.type, "file of type %r" % member.type)
