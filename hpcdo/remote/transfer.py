"""Moving files: many files in one tar stream, one round trip each way.

Per-file SFTP pays a round trip per file; a tar stream through one remote
command pays one for the whole set, and is streamed, so neither side holds
a large transfer in memory.  Uploads land only when they arrived whole
(see the scripts in :mod:`hpcdo.remote.scripts`); downloads are unpacked
into a fresh directory with the ``data`` filter, so a remote archive can
never write outside it, and the caller swaps that directory into place.
"""

import io
import os
import secrets
import tarfile
import threading

from .. import RemoteError

CHUNK = 1 << 20


def new_seal():
    """A token that ends one upload's stream, new for every upload (see ``sync_script``)."""
    return secrets.token_hex(16)


def tar_chunks(root, names, deleted=(), seal=None):
    """Yield a tar of ``names`` (relative to ``root``), a deletion list and the ``seal``, in chunks.

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
                    for rel in names:
                        path = os.path.join(root, rel)
                        info = tar.gettarinfo(os.path.realpath(path), arcname=rel)
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


def send_files(remote, script, root, names, deleted=(), what="send files", seal=None):
    """Run ``script`` (which unpacks a tar from stdin) with a tar of ``names`` fed to it.

    ``seal``: the token ``script`` expects in the stream's last member.
    """
    counter = {"bytes": 0}

    def counted():
        for block in tar_chunks(root, names, deleted, seal):
            counter["bytes"] += len(block)
            yield block

    remote.run(script, stdin=counted(), what=what)
    return counter["bytes"]


def receive_files(remote, script, dest, what="receive files"):
    """Run ``script`` (which prints header lines, a line ``@tar``, then a tar) and unpack into ``dest``.

    Returns ([header lines], [regular file names]).  ``dest`` must be a new,
    empty directory of the caller's.
    """
    archive = os.path.join(dest, ".hpcdo-download.tar")
    try:
        with open(archive, "wb") as sink:
            remote.run(script, sink=sink, what=what)
        return unpack(archive, dest)
    finally:
        if os.path.exists(archive):
            os.remove(archive)


def unpack(archive, dest):
    """Read the header lines up to ``@tar``, then extract the tar that follows safely into ``dest``.

    The ``data`` filter refuses absolute names, ``..`` and links that point
    outside ``dest``; anything of that kind fails the whole transfer.
    """
    with open(archive, "rb") as fh:
        header = []
        while True:
            line = fh.readline()
            if not line:
                raise RemoteError("the answer from the machine ended before its archive began")
            if line == b"@tar\n":
                break
            header.append(line.decode("utf-8", "replace").rstrip("\n"))
        try:
            with tarfile.open(fileobj=fh, mode="r:") as tar:
                members = tar.getmembers()
                for member in members:
                    if member.name.startswith("/") or ".." in member.name.split("/"):
                        raise RemoteError("refusing file %r from the machine: it would land outside %s"
                                          % (member.name, dest))
                tar.extractall(dest, members=members, filter="data")
                files = [m.name for m in members if m.isfile()]
        except tarfile.FilterError as exc:
            raise RemoteError("refusing a file from the machine: %s" % exc)
        except (tarfile.TarError, EOFError) as exc:
            raise RemoteError("the archive from the machine is damaged or cut short: %s" % exc)
    return header, files
