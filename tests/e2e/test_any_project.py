"""The core on a project that is not the demo: runs of unequal outputs, failing runs, -n N.

Issue 10: every earlier end-to-end test used the demo's three equal runs,
and hid a no-op that refetched forever, a process mode that left stale
results, and one failed run stopping all the others.
"""

import os

import pytest

import anyproject
from anyproject import expected, read_bytes
from conftest import on_machine

MACHINES = ["localhost", "testslurm"]


@pytest.fixture(params=MACHINES)
def tool(request, tmp_path):
    yield from on_machine(request, tmp_path)


def remote_job_id(project, run):
    return project.remote("cat tool/runs/%s/job.id" % run).strip()


def local_job_id(project, run):
    with open(os.path.join(project.results(run), "job.id")) as fh:
        return fh.read().strip()


def summary(out):
    """The lines under the closing 'N step(s) failed:' of a call."""
    lines = out.out.splitlines()
    heads = [i for i, line in enumerate(lines) if line.endswith(" failed:") and line[0].isdigit()]
    assert len(heads) == 1, out
    said = []
    for line in lines[heads[0] + 1:]:
        if not line.startswith("  "):
            break
        said.append(line.strip())
    return said


def run_tasks(out, step):
    return {t.split(":", 1)[1] for t in out.ran if t.startswith(step + ":")}


def test_runs_of_unequal_outputs_reach_a_true_noop(tool):
    """10.1: with outputs of 50 B and 8 KB (and nested, and none), the second call executes
    nothing; adding a run, or cold, fetches no other run again."""
    runs = [("small", ["--bytes", 50, "s.dat"]),
            ("big", ["--bytes", 8192, "b.dat", "--bytes", 3, "deep/er/x.dat"]),
            ("none", [])]
    anyproject.make(tool, runs)
    first = tool.doit("fetch_results")
    assert run_tasks(first, "fetch_results") == {"small", "big", "none"}, first
    assert read_bytes(tool, "small", "s.dat") == expected(50)
    assert read_bytes(tool, "big", "b.dat") == expected(8192)
    assert read_bytes(tool, "big", "deep/er/x.dat") == expected(3)

    again = tool.doit("fetch_results")
    assert again.ran == [], again
    assert len(again.trace) <= 2, again.trace
    status = tool.doit("status")
    assert "not fetched" not in status.out, status

    anyproject.write_recipe(tool.path, runs + [("added", ["--bytes", 100000, "a.dat"])])
    added = tool.doit("fetch_results")
    assert set(added.ran) <= {"submit:added", "wait:added", "fetch_results:added"}, added
    assert "fetch_results:added" in added.ran
    assert read_bytes(tool, "added", "a.dat") == expected(100000)

    tool.doit("cold")
    after_cold = tool.doit("fetch_results")
    assert after_cold.ran == [], after_cold


@pytest.fixture(params=["testslurm"])
def slurm_tool(request, tmp_path):
    yield from on_machine(request, tmp_path)


def test_seventy_thousand_result_files_are_fetched_once(slurm_tool):
    """11.9: a run of 70,000 result files.  Before, the fetch's remote loop was quadratic and then
    exceeded the argument list limit, and the probe's one listing of every run failed with it,
    so every other run was fetched again on every call."""
    project = slurm_tool
    # in the run directory itself, where ``*`` names each one: 70,000 names of 45 bytes, 3 MB
    prefix = "velocity_field_of_the_timestep_number_"
    runs = [("many", ["--files", 70000, 1, prefix]), ("small", ["--bytes", 5, "s.dat"])]
    anyproject.make(project, runs)
    first = project.doit("fetch_results", timeout=900)
    assert run_tasks(first, "fetch_results") == {"many", "small"}, first
    assert len([n for n in os.listdir(project.results("many")) if n.startswith(prefix)]) == 70000
    assert read_bytes(project, "many", prefix + "69999") == b"a"
    again = project.doit("fetch_results")
    assert again.ran == [], again


def test_only_files_the_patterns_name_are_fetched(tool):
    """Outputs are chosen as the shell would expand the patterns in the run directory: a
    wildcard never matches a leading dot, a directory is taken whole, other files stay."""
    anyproject.make(tool, [("r", ["--bytes", 3, "keep.dat", "--bytes", 4, "skip.txt", "--bytes", 5, ".hid.dat",
                                  "--bytes", 6, "out/sub/.x", "--bytes", 7, "sub/y.dat"])],
                    outputs=["*.dat", "out"])
    first = tool.doit("fetch_results")
    assert run_tasks(first, "fetch_results") == {"r"}, first
    got = set()
    for base, _dirs, names in os.walk(tool.results("r")):
        got |= {os.path.relpath(os.path.join(base, n), tool.results("r")) for n in names}
    assert got - {"job.sh", "job.out", "job.exit", "job.id", "job.started", "hpcdo-provenance.json"} == \
        {"keep.dat", "out/sub/.x"}, got
    assert tool.doit("fetch_results").ran == []


def test_parallel_calls_leave_current_results(tool):
    """10.2: ``-n 4`` (doit's default: processes) exited 0 with the old job's results."""
    runs = [("r%d" % i, ["--bytes", 10 * (i + 1), "out.dat"]) for i in range(4)]
    anyproject.make(tool, runs)
    tool.doit("-n", "4", "fetch_results")
    for name, _args in runs:
        assert local_job_id(tool, name) == remote_job_id(tool, name)
    old = local_job_id(tool, "r2")

    runs[2] = ("r2", ["--bytes", 777, "out.dat"])
    anyproject.write_recipe(tool.path, runs)
    out = tool.doit("-n", "4", "fetch_results")
    assert {"submit:r2", "fetch_results:r2"} <= set(out.ran), out
    assert local_job_id(tool, "r2") == remote_job_id(tool, "r2") != old
    assert read_bytes(tool, "r2", "out.dat") == expected(777)
    again = tool.doit("-n", "4", "fetch_results")
    assert again.ran == [], again

    refused = tool.doit("-n", "2", "-P", "process", "fetch_results", ok=False)
    lines = [line for line in refused.out.splitlines() if line.strip()]
    assert refused.rc == 2 and len(lines) == 1 and "-P process" in lines[0], refused


def test_a_failed_run_is_contained_and_waits_for_retry(tool):
    """10.5: one failing run no longer stops the others being fetched, and it is not
    submitted again with unchanged inputs until ``retry``."""
    runs = [("ok1", ["--bytes", 5, "o.dat"]), ("bad", ["--exit", 3]), ("ok2", ["--bytes", 6, "o.dat"])]
    anyproject.make(tool, runs)
    first = tool.doit("fetch_results", ok=False)
    assert {"fetch_results:ok1", "fetch_results:ok2"} <= set(first.ran), first
    assert read_bytes(tool, "ok2", "o.dat") == expected(6)
    failure = summary(first)
    assert len(failure) == 1 and failure[0].startswith("run bad: job "), first
    assert "EXIT CODE" not in failure[0] and "exit code 3" in failure[0] and "bad/job.out" in failure[0]
    assert "retry bad" in failure[0]
    assert "tool: exiting with 3 as asked" in first.out       # the log's last lines are shown
    assert "Traceback" not in first.out
    job = remote_job_id(tool, "bad")

    second = tool.doit("fetch_results", ok=False)
    assert "submit:bad" not in second.ran and remote_job_id(tool, "bad") == job, second
    assert [t for t in second.ran if not t.startswith("wait:")] == [], second
    assert summary(second) == [failure[0].replace(job, remote_job_id(tool, "bad"))], second

    info = tool.doit("info", "wait:bad", ok=None)  # why the step is stale, in words
    assert failure[0] in info.out and "<function" not in info.out, info
    import shutil
    shutil.rmtree(tool.results("ok1"))
    info = tool.doit("info", "fetch_results:ok1", ok=None)
    assert "results/%s/ok1 holds no results" % tool.machine in info.out, info
    refetched = tool.doit("fetch_results", ok=False)
    assert "fetch_results:ok1" in refetched.ran and "fetch_results:ok2" not in refetched.ran, refetched

    retried = tool.doit("retry", "bad")
    assert "submitted job" in retried.out and remote_job_id(tool, "bad") != job, retried
    nothing = tool.doit("retry", "ok1")
    assert "nothing to retry" in nothing.out
    tool.doit("fetch_results", ok=False)

    runs[1] = ("bad", ["--bytes", 1, "fixed.dat"])
    anyproject.write_recipe(tool.path, runs)
    fixed = tool.doit("fetch_results")
    assert {"submit:bad", "fetch_results:bad"} <= set(fixed.ran), fixed
    assert read_bytes(tool, "bad", "fixed.dat") == expected(1)


def test_an_option_removed_from_the_recipe_leaves_the_cache(tool):
    """10.4: CMake kept a removed option in its cache: a compiler that failed went on failing
    after it was deleted from the recipe, and a removed option kept its effect."""
    runs = [("tag", ["--tag", "tag.txt"])]
    anyproject.make(tool, runs, cmake_options={"CMAKE_C_COMPILER": "gcc-99", "TOOL_TAG": "loud"})
    bad = tool.doit("fetch_results", ok=False)
    assert "gcc-99" in bad.out and "configure" in bad.ran, bad

    anyproject.write_recipe(tool.path, runs, cmake_options={"TOOL_TAG": "loud"})
    good = tool.doit("fetch_results")
    assert {"configure", "compile"} <= set(good.ran), good
    assert read_bytes(tool, "tag", "tag.txt") == b"loud\n"

    anyproject.write_recipe(tool.path, runs)              # the option goes: its default is back
    plain = tool.doit("fetch_results")
    assert "started from a new CMake cache" in plain.out, plain
    assert read_bytes(tool, "tag", "tag.txt") == b"plain\n"
    # objects of the build tree are kept where CMake allows: the next call changes nothing
    assert tool.doit("fetch_results").ran == []


def test_a_local_tree_in_git_sends_nothing_gitignore_excludes(tool):
    """10.8: a local build/ that .gitignore excludes was uploaded and made configure stale."""
    import subprocess
    anyproject.make(tool, [("r", ["--bytes", 2, "x"])])
    with open(tool.file(".gitignore"), "w") as fh:
        fh.write("tool/build/\n*.local\n")
    subprocess.run(["git", "init", "-q", tool.path], check=True)
    os.makedirs(tool.file("tool/build"))
    with open(tool.file("tool/build/CMakeLists.txt"), "w") as fh:
        fh.write("this would break a configure\n")
    with open(tool.file("tool/notes.local"), "w") as fh:
        fh.write("private\n")
    tool.doit("fetch_results")
    held = tool.remote("cd tool/src && find . -type f ! -name '.hpcdo*' | sort").split()
    assert held == ["./CMakeLists.txt", "./tool.c"], held
    with open(tool.file("tool/build/more.txt"), "w") as fh:
        fh.write("more\n")
    assert tool.doit("fetch_results").ran == []


def _git(cwd, *args):
    import subprocess
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t"] + list(args),
                          check=True, capture_output=True, text=True).stdout.strip()


def _publish(tool, bare):
    """Put the bare repository where the machine can clone it; return its URL there."""
    import subprocess
    if tool.cluster is None:
        return str(bare)
    c = tool.cluster
    home = c.ssh("echo $HOME").stdout.strip()
    where = "%s/%s-upstream.git" % (home, tool.remote_root)
    tar = subprocess.run(["tar", "-cf", "-", "-C", str(bare), "."], check=True, capture_output=True).stdout
    subprocess.run(["ssh", "-i", c.key, "-p", str(c.port), "-o", "BatchMode=yes",
                    "-o", "UserKnownHostsFile=" + c.known_hosts, "%s@%s" % (c.user, c.host),
                    "rm -rf '%s' && mkdir -p '%s' && tar -xf - -C '%s'" % (where, where, where)],
                   input=tar, check=True, capture_output=True)
    return where


def test_a_git_branch_is_followed(tool, tmp_path):
    """10.9: a new commit on the recipe's branch left status 'up to date' and the old code built."""
    upstream = tmp_path / "upstream"
    anyproject.write_source(str(upstream), subdir=".")
    _git(upstream.parent, "init", "-q", "-b", "main", str(upstream))
    _git(upstream, "add", ".")
    _git(upstream, "commit", "-q", "-m", "one")
    first_commit = _git(upstream, "rev-parse", "HEAD")
    bare = tmp_path / "bare.git"
    _git(tmp_path, "clone", "-q", "--bare", str(upstream), str(bare))
    url = _publish(tool, bare)
    anyproject.write_recipe(tool.path, [("r", ["--bytes", 3, "x"])], source="Git(%r, 'main')" % url)

    tool.doit("fetch_results")
    assert "(commit %s)" % first_commit[:12] in tool.doit("status").out
    assert tool.doit("fetch_results").ran == []

    tool_c = upstream / "tool.c"
    tool_c.write_text(tool_c.read_text().replace("tool: done", "tool: done twice"))
    _git(upstream, "commit", "-q", "-am", "two")
    second_commit = _git(upstream, "rev-parse", "HEAD")
    _git(upstream, "push", "-q", str(bare), "main")
    _publish(tool, bare)
    status = tool.doit("status")
    assert "main is now at %s" % second_commit[:12] in status.out, status
    moved = tool.doit("fetch_results")
    assert {"clone", "compile", "submit:r", "fetch_results:r"} <= set(moved.ran), moved
    assert tool.remote("git -C tool/src rev-parse HEAD").strip() == second_commit
    with open(os.path.join(tool.results("r"), "job.out")) as fh:
        assert "tool: done twice" in fh.read()
    assert tool.doit("fetch_results").ran == []


class _AuthGitServer:
    """A git repository served over plain ("dumb") HTTP on loopback, for one user and token only."""

    def __init__(self, bare, user, token):
        import base64
        import functools
        import http.server
        import threading
        want = "Basic " + base64.b64encode(("%s:%s" % (user, token)).encode()).decode()
        self.logins = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(handler):
                given = handler.headers.get("Authorization")
                if given != want:
                    handler.send_response(401)
                    handler.send_header("WWW-Authenticate", 'Basic realm="git"')
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
                self.logins.append(handler.path)
                handler.path = handler.path.split("?", 1)[0]
                super().do_GET()

            def log_message(handler, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(bare)))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_git_token_in_the_url_never_reaches_a_command_line_or_a_record(tool, tmp_path):
    """11.8: a Git URL with a token travelled as an argument of ``git clone`` and ``git ls-remote``
    (and of the probe's ``sh -c``), where every user of the login node sees it with ``ps``; it
    was also printed, and written to the results' provenance."""
    import subprocess
    import threading
    token = "ghp_s3cr3tT0k3nXYZ"
    upstream = tmp_path / "upstream"
    anyproject.write_source(str(upstream), subdir=".")
    _git(upstream.parent, "init", "-q", "-b", "main", str(upstream))
    _git(upstream, "add", ".")
    _git(upstream, "commit", "-q", "-m", "one")
    bare = tmp_path / "bare.git"
    _git(tmp_path, "clone", "-q", "--bare", str(upstream), str(bare))
    _git(bare, "update-server-info")
    server = _AuthGitServer(bare, "ci-bot", token)
    url = "http://ci-bot:%s@127.0.0.1:%d/" % (token, server.port)
    anyproject.write_recipe(tool.path, [("r", ["--bytes", 3, "x"])], source="Git(%r, 'main')" % url)
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            args = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
            seen.extend(line for line in args.splitlines() if token in line)
            stop.wait(0.01)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        first = tool.doit("fetch_results")
        again = tool.doit("fetch_results")
    finally:
        stop.set()
        sampler.join()
        server.close()
    assert seen == [], seen
    assert server.logins, "git never logged in to the server"
    assert "fetch_results:r" in first.ran and again.ran == [], (first, again)
    for out in (first, again):
        assert token not in out.out, out
    with open(os.path.join(tool.results("r"), "hpcdo-provenance.json")) as fh:
        assert token not in fh.read()
    assert token not in tool.remote("cat tool/src/.git/config")
    assert not tool.remote("ls ${TMPDIR:-/tmp} | grep hpcdo-askpass").strip()


def _submitted(tool, run, timeout=90):
    """Wait until the machine records a job for ``run``; return its id."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = remote_job_id(tool, run)
        if job:
            return job
        time.sleep(0.3)
    raise AssertionError("run %s was not submitted within %d s" % (run, timeout))


def test_status_and_cancel_do_not_wait_behind_a_working_doit(tool):
    """10.7: status and cancel waited for the per-machine lock of a doit that was waiting
    for jobs: exactly when a user wants them."""
    import time
    from conftest import reaped
    anyproject.make(tool, [("slow", ["--sleep", 120]), ("quick", ["--bytes", 1, "q"])])
    with reaped(tool.popen("fetch_results")) as working:
        job = _submitted(tool, "slow")
        started = time.monotonic()
        status = tool.doit("status", timeout=60)
        assert time.monotonic() - started < 30
        assert "run slow" in status.out and job in status.out, status
        cancel = tool.doit("cancel", "slow", timeout=60)
        assert "cancelled run slow (job %s)" % job in cancel.out, (cancel, status)
        out, err = working.communicate(timeout=120)
    assert working.returncode != 0 and "slow" in out + err
    assert "CANCELLED" in out + err, out + err
    assert read_bytes(tool, "quick", "q") == expected(1)


def test_ctrl_c_says_what_keeps_running_in_one_line(tool):
    """10.7: Ctrl-C during wait printed a 30-line traceback; now one line names the jobs that
    keep running, and the next call picks them up without submitting again."""
    import signal
    from conftest import reaped
    anyproject.make(tool, [("slow", ["--sleep", 4, "--bytes", 9, "s.dat"])])
    with reaped(tool.popen("fetch_results")) as working:
        job = _submitted(tool, "slow")
        import time
        time.sleep(1)          # into the wait
        working.send_signal(signal.SIGINT)
        out, err = working.communicate(timeout=60)
    assert "Traceback" not in out + err, out + err
    said = [line for line in err.splitlines() if line.startswith("hpcdo: interrupted")]
    assert len(said) == 1 and "run slow (job %s)" % job in said[0] and "next call" in said[0], err
    later = tool.doit("fetch_results")
    assert "submit:slow" not in later.ran and remote_job_id(tool, "slow") == job, later
    assert read_bytes(tool, "slow", "s.dat") == expected(9)


def test_a_job_the_machine_loses_is_submitted_again_by_itself(local_project):
    """10.5: a job killed outright (no exit marker, gone from the queue) is the machine's
    doing, not the program's: the waiting call submits it again, up to ``retries``."""
    import signal
    import time
    from conftest import reaped
    tool = local_project
    anyproject.make(tool, [("victim", ["--sleep", 3, "--bytes", 4, "v.dat"])])
    with reaped(tool.popen("fetch_results")) as working:
        first = _submitted(tool, "victim")
        time.sleep(0.5)
        os.killpg(int(first), signal.SIGKILL)              # a node failure, as far as hpcdo can see
        out, err = working.communicate(timeout=120)
    assert working.returncode == 0, out + err
    second = remote_job_id(tool, "victim")
    said = "hpcdo: run victim: job %s ended LOST (the machine ended it, not the program); " \
           "submitted it again as job %s" % (first, second)
    assert said in err.splitlines(), err
    assert second != first and read_bytes(tool, "victim", "v.dat") == expected(4)
    assert tool.remote("cat tool/runs/victim/job.tries").strip() == "2"

    # with retries=0 a lost job waits for the user
    anyproject.write_recipe(tool.path, [("victim", ["--sleep", 3, "--bytes", 5, "v.dat"])])
    with reaped(tool.popen("fetch_results", "retries=0")) as working:
        deadline = time.monotonic() + 60
        while remote_job_id(tool, "victim") in (second, "") and time.monotonic() < deadline:
            time.sleep(0.2)
        third = remote_job_id(tool, "victim")
        time.sleep(0.5)
        os.killpg(int(third), signal.SIGKILL)
        out, err = working.communicate(timeout=120)
    assert working.returncode != 0 and "submitted it again" not in err, out + err
    lines = summary(type("Said", (), {"out": out + err})())
    assert len(lines) == 1 and lines[0].startswith("run victim: job %s on localhost ended LOST" % third)
    assert "retry victim" in lines[0]
    assert tool.doit("fetch_results", "retries=0", ok=False).ran == ["wait:victim"]


def test_a_killed_fetchs_leftovers_are_removed_by_the_next_fetch(local_project):
    """Issue 11.11: partial .<run>.incoming-* directories stayed in results/ forever."""
    tool = anyproject.make(local_project, [("r", ["--bytes", 10, "x"]), ("r.incoming-1", ["--bytes", 2, "y"])])
    tool.doit("fetch_results")
    parent = os.path.dirname(tool.results("r"))
    for junk in (".r.incoming-k1l2m3", ".r.old-4242"):
        os.makedirs(os.path.join(parent, junk, "sub"))
        with open(os.path.join(parent, junk, "sub", "part.dat"), "wb") as fh:
            fh.write(b"partial" * 1000)
    os.remove(os.path.join(tool.results("r"), "x"))
    out = tool.doit("fetch_results")
    assert out.ran == ["fetch_results:r"], out
    assert sorted(os.listdir(parent)) == ["r", "r.incoming-1"]
    assert read_bytes(tool, "r.incoming-1", "y") == expected(2)


def test_secret_values_never_reach_a_command_line(tool):
    """Issue 11.8: machine env values (a licence token) and jobscripts travelled as 'sh -c'
    arguments, which every user of the login node sees with ps.  The test cluster is on this
    computer, so ps here sees the machine's processes too."""
    import subprocess
    import threading
    token, job_token = "lic-7f3a9c1e5b", "job-2d8e6b4f1a"
    anyproject.make(tool, [("r", ["--sleep", 1, "--bytes", 3, "x"])],
                    extra="recipe.runs['r'].env['JOB_TOKEN'] = %r\n" % job_token)
    with open(tool.file("machines/machines_user.yml"), "a") as fh:     # where a user keeps such things
        fh.write("%s:\n  env: {LICENCE_TOKEN: %s}\n" % (tool.machine, token))
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            args = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
            seen.extend(line for line in args.splitlines() if token in line or job_token in line)
            stop.wait(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = tool.doit("fetch_results")
    finally:
        stop.set()
        sampler.join()
    assert seen == [], seen
    assert token not in out.out and job_token not in out.out
    assert tool.remote("grep -c %s tool/runs/r/job.sh" % job_token).strip() == "1"   # it did reach the job


def test_two_checkouts_with_different_sources_never_build_each_others_code(tool, tmp_path):
    """Issue 11.7: a second checkout synced its source while the first was compiling (the sync
    took no build lock): the first's results came from the second's code, under the first's
    provenance.  A slow custom target holds the first build open while the second syncs."""
    import subprocess
    import time
    from conftest import reaped
    anyproject.make(tool, [("who", [])])
    with open(tool.file("tool/CMakeLists.txt"), "a") as fh:
        fh.write("add_custom_target(slow ALL COMMAND sleep 7)\nadd_dependencies(tool slow)\n")
    other = tool.clone_to(tmp_path / "other")
    tool_c = other.file("tool/tool.c")
    with open(tool_c) as fh:
        text = fh.read()
    with open(tool_c, "w") as fh:
        fh.write(text.replace('printf("tool: done\\n")', 'printf("tool: done by the other checkout\\n")'))
    with reaped(tool.popen("fetch_results")) as first:
        deadline = time.monotonic() + 120
        # the machine is this computer (localhost, or the loopback cluster): its build is seen here
        while subprocess.run(["pgrep", "-fx", "sleep 7"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the first call never started its build"
            time.sleep(0.2)
        time.sleep(1)
        second = other.doit("compile", ok=None, timeout=300)     # syncs its own source, then builds
        out, err = first.communicate(timeout=300)
    assert "Traceback" not in out + err + second.out
    if first.returncode == 0:
        with open(os.path.join(tool.results("who"), "job.out")) as fh:
            assert fh.read().strip().splitlines()[-1] == "tool: done", "the first checkout ran the other's code"
    else:
        assert "not the one this call sent" in out + err, out + err
    again = tool.doit("fetch_results", timeout=300)
    with open(os.path.join(tool.results("who"), "job.out")) as fh:
        assert fh.read().strip().splitlines()[-1] == "tool: done", again
