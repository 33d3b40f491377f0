"""The persistent agent does not keep a refused connection (issue 11.5).

Its connection's relay goes away (the site's login node restarts) and the
next call is refused; once the relay is back, calls must work again, as
plain ssh does.  The agent used to keep the refusal for its whole life (and
each refused call reset its idle timer), so every call failed.
"""

import socket

from conftest import write_recipe
from faults_helpers import no_traceback
from faultfix import relay  # noqa: F401  (fixture)


def _dead_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                 # nothing listens there now: connections are refused
    return port


def test_calls_work_again_once_the_machine_is_back(slurm_project, relay, cluster):
    project = slurm_project
    args = [a for a in relay.args if not a.startswith("persist=")] + ["persist=120"]
    write_recipe(project, [("straight", "straight", ["--geometry", "{geometry}", "--steps", 100])])
    assert project.doit("status", *args).rc == 0                # the agent is up, through the relay

    relay.retarget(("127.0.0.1", _dead_port()))
    relay.drop_all()                                            # the login node went away
    refused = project.doit("status", *args, ok=False)
    no_traceback(refused)
    assert "cannot connect to machine testslurm" in refused.out, refused

    relay.retarget((cluster.host, cluster.port))                # and it is back
    again = project.doit("status", *args)
    assert "run straight" in again.out, again
    assert project.doit("fetch_results", *args).rc == 0
