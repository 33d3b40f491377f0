"""Tar streams: what goes up comes out whole; what comes down stays inside its directory."""

import io
import os
import tarfile

import pytest

from hpcdo import RemoteError
from hpcdo.remote.transfer import tar_chunks, unpack


def test_tar_chunks_round_trip_with_deletions(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 5000)
    (src / "sub" / "b c.txt").write_bytes(os.urandom(3 * (1 << 20)))
    data = b"".join(tar_chunks(str(src), ["a.txt", "sub/b c.txt"], deleted=["gone.c"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == ["a.txt", "sub/b c.txt", ".hpcdo-delete"]
        assert tar.extractfile("sub/b c.txt").read() == (src / "sub" / "b c.txt").read_bytes()
        assert tar.extractfile(".hpcdo-delete").read() == b"gone.c\n"


def archive_with(tmp_path, member, data=b"x", **attrs):
    path = tmp_path / "in.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        for key, value in attrs.items():
            setattr(info, key, value)
        info.size = 0 if attrs.get("type") else len(data)
        tar.addfile(info, None if attrs.get("type") else io.BytesIO(data))
    path.write_bytes(b"header 1\nheader 2\n@tar\n" + buf.getvalue())
    return str(path)


@pytest.mark.parametrize("member,attrs", [
    ("../escape.txt", {}),
    ("/etc/evil", {}),
    ("link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
    ("link2", {"type": tarfile.SYMTYPE, "linkname": "../../outside"}),
])
def test_unpack_refuses_anything_that_would_land_outside(tmp_path, member, attrs):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RemoteError, match="refusing"):
        unpack(archive_with(tmp_path, member, **attrs), str(dest))
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_reads_header_and_files(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    header, files = unpack(archive_with(tmp_path, "out/result.dat", b"42"), str(dest))
    assert header == ["header 1", "header 2"] and files == ["out/result.dat"]
    assert (dest / "out" / "result.dat").read_bytes() == b"42"


def test_unpack_refuses_a_cut_short_archive(tmp_path):
    path = archive_with(tmp_path, "big.dat", b"y" * 10000)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:3000])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RemoteError, match="damaged or cut short"):
        unpack(path, str(dest))


def _members_end(data):
    """Offsets in a tar stream where one member ends and the next begins."""
    ends, offset = [], 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for member in tar:
            offset = member.offset_data + ((member.size + 511) // 512) * 512
            ends.append(offset)
    return ends


def test_a_sync_cut_between_two_files_is_never_stamped(tmp_path):
    """Issue 11.1: GNU tar exits 0 when its input ends exactly at a member boundary, so a
    cut stream of many small files was stamped as a complete sync."""
    import subprocess
    from hpcdo.remote import scripts
    from hpcdo.remote.transfer import new_seal
    src = tmp_path / "src"
    src.mkdir()
    names = ["f%03d.c" % i for i in range(30)]
    for name in names:
        (src / name).write_text("int x%s;\n" % name[1:4])
    seal = new_seal()
    data = b"".join(tar_chunks(str(src), names, seal=seal))
    root = tmp_path / "root"
    script = scripts.sync_script(str(root), "code/src", '{"sig": "s"}', seal)
    for cut in _members_end(data)[:-1] + [700]:
        proc = subprocess.run(["sh", "-c", script], input=data[:cut], capture_output=True)
        assert proc.returncode != 0, "a stream cut at byte %d was taken as whole" % cut
        assert not (root / "code" / "src" / ".hpcdo-stamp").exists()
    proc = subprocess.run(["sh", "-c", script], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert (root / "code" / "src" / ".hpcdo-stamp").read_text() == '{"sig": "s"}\n'
    assert sorted(os.listdir(root / "code" / "src")) == sorted(names + [".hpcdo-stamp"])


def _raw_member(name, size_field, data=b""):
    """One tar header block whose size field is ``size_field`` (12 bytes), checksum fixed."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    buf = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    buf[124:136] = size_field
    buf[148:156] = b" " * 8
    buf[148:155] = b"%06o\0" % sum(buf[:512]) + b" "
    return bytes(buf[:512]) + data + b"\0" * (-len(data) % 512)


def test_a_negative_size_neither_hangs_nor_writes(tmp_path):
    """Issue 11.2 (CVE-2025-8194): a header with a negative size made Python's tar reader
    loop forever; the fetch must fail in one line instead."""
    import subprocess
    import sys
    negative = tarfile.itn(-1024, 12, tarfile.GNU_FORMAT)
    body = _raw_member("a.txt", tarfile.itn(3, 12, tarfile.GNU_FORMAT), b"abc") + \
        _raw_member("evil", negative) + _raw_member("b.txt", tarfile.itn(1, 12, tarfile.GNU_FORMAT), b"b")
    path = tmp_path / "in.tar"
    path.write_bytes(b"@tar\n" + body + b"\0" * 1024)
    dest = tmp_path / "dest"
    dest.mkdir()
    code = ("import sys; from hpcdo.remote.transfer import unpack; from hpcdo import RemoteError\n"
            "try: unpack(sys.argv[1], sys.argv[2])\n"
            "except RemoteError as e: print('refused:', e); sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path), str(dest)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 3 and "refused:" in proc.stdout, proc.stdout + proc.stderr
    assert not (dest / "evil").exists() and not (dest / "b.txt").exists()


def test_a_hard_link_to_a_file_already_sent_is_a_copy(tmp_path):
    """GNU tar sends a name listed twice (job.exit, and a pattern '*') as a hard link to it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("job.exit")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"0\n"))
        for name in ("job.exit", "copy/of.exit"):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.LNKTYPE, "job.exit"
            tar.addfile(link)
    path = tmp_path / "in.tar"
    path.write_bytes(b"@tar\n" + buf.getvalue())
    dest = tmp_path / "dest"
    dest.mkdir()
    _header, files = unpack(str(path), str(dest))
    assert files == ["job.exit", "copy/of.exit"]
    assert (dest / "copy" / "of.exit").read_bytes() == b"0\n" and not os.path.islink(dest / "copy" / "of.exit")
    assert os.stat(dest / "copy" / "of.exit").st_ino != os.stat(dest / "job.exit").st_ino


@pytest.mark.parametrize("kind", [tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_unpack_takes_only_files_and_directories(tmp_path, kind):
    """Issue 11.2 (CVE-2025-4517 and kin): links of any kind, devices and pipes are refused,
    whatever the interpreter's own filter would let through."""
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RemoteError, match="refusing .*only regular files and directories"):
        unpack(archive_with(tmp_path, "thing", type=kind, linkname="a.txt"), str(dest))
    assert os.listdir(dest) == []


def test_unpack_refuses_a_file_where_a_directory_is_needed(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("out", "out/x"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"1"))
    path = tmp_path / "in.tar"
    path.write_bytes(b"@tar\n" + buf.getvalue())
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RemoteError, match="refusing"):
        unpack(str(path), str(dest))


def test_a_tar_of_dot_unpacks(tmp_path):
    """'tar -cf - .' starts with the member '.', the destination itself (the benchmarks' downloads)."""
    import subprocess
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("f")
    data = subprocess.run(["tar", "-cf", "-", "."], cwd=src, capture_output=True, check=True).stdout
    path = tmp_path / "in.tar"
    path.write_bytes(b"@tar\n" + data)
    dest = tmp_path / "dest"
    dest.mkdir()
    _header, files = unpack(str(path), str(dest))
    assert files == ["sub/f.txt"] and (dest / "sub" / "f.txt").read_text() == "f"
