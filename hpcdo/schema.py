"""The machine keys hpcdo knows, what each takes, and how a layer is checked.

:data:`SCHEMA` is the one list of machine settings: a key not in it is an
error with the nearest known key suggested, and a wrong value is an error
naming the file, line and key (and what the value is, never the value).
"""

import difflib
import re

from . import ConfigError
from .launchers import LAUNCHERS
from .remote.sshconfig import name_ok
from .schedulers import SCHEDULERS

#: what in a work root CMake's and make's generated files cannot carry: some characters, and a
#: ``${`` that is not a plain ``${NAME}`` (CMake reads it as its own variable reference)
ROOT_REFUSED = re.compile(r'[;"\\|#\x00-\x1f\x7f]|\$\{(?![A-Za-z_][A-Za-z0-9_]*\})')

#: an amount of memory as hpcdo writes it into jobscripts: 4G, 500M, 1.5TB
MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]B?\Z", re.IGNORECASE)

#: an environment variable's name: it reaches the shell as ``export NAME=...`` unquoted
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _str_or_none(v):
    return v is None or isinstance(v, str)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v):
    return _int(v) and v > 0


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_map(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, (str, int, float, bool))
                                       for k, x in v.items())


def _env_map(v):
    return _str_map(v) and all(ENV_NAME.match(k) for k in v)


#: the SSH clients a machine may use
TRANSPORTS = ("paramiko", "openssh")

#: how a machine packs runs into jobs (the ``pack`` key)
PACKS = ("none",)

#: key -> (check, what the check wants, help)
SCHEMA = {
    "description": (_str_or_none, "a string", "one line about the machine"),
    "extends": (_str_or_none, "a machine name", "start from this machine's settings"),
    "aliases": (lambda v: v is None or _str_list(v), "a list of machine names",
                "other names of the machine: doit machine=ALIAS is this machine (results/<machine>/)"),
    "host": (lambda v: v is None or name_ok(v),
             "a host name or null (no blanks or shell characters, not starting with '-')",
             "SSH host; null runs on this computer"),
    "user": (lambda v: v is None or name_ok(v),
             "a user name or null (no blanks or shell characters, not starting with '-')", "SSH user name"),
    "port": (_pos_int, "a positive integer", "SSH port"),
    "identity_file": (_str_or_none, "a path or null", "SSH private key on this computer"),
    "known_hosts": (_str_or_none, "a path or null", "extra known_hosts file to trust"),
    "proxy_jump": (_str_or_none, "a list of jump hosts like OpenSSH's ProxyJump, or null",
                   "jump hosts to reach the machine through: [user@]host[:port][,...]"),
    "connect_timeout": (lambda v: v is None or _number(v), "a positive number or null",
                        "seconds to wait for the SSH connection (null: ssh_config's, else 30)"),
    "transport": (lambda v: v in TRANSPORTS, "one of: " + ", ".join(TRANSPORTS),
                  "SSH client: paramiko (built in) or openssh (the system ssh, for GSSAPI, FIDO2 keys, "
                  "site certificate tools)"),
    "interactive_login": (lambda v: isinstance(v, bool), "true or false",
                          "the site asks for a one-time code or password at login (two-factor)"),
    "askpass": (_str_or_none, "a program or null",
                "program that answers login prompts when there is no terminal, like SSH_ASKPASS"),
    "scheduler": (lambda v: v in SCHEDULERS, "one of: " + ", ".join(sorted(SCHEDULERS)), "batch system"),
    "launcher": (lambda v: v is None or v in LAUNCHERS, "one of: " + ", ".join(sorted(LAUNCHERS)),
                 "program launcher inside the job"),
    "launcher_options": (_str_or_none, "a string or null",
                         "options after the launcher ($tasks, $threads, $cores, $nodes, $corespernode, $cpn)"),
    "run_command": (_str_or_none, "a string or null",
                    "whole launcher prefix instead of launcher + options, e.g. 'srun -n $cores'"),
    "jobscript": (_str_or_none, "a template name or null", "jobscript template (default <scheduler>.sh.j2)"),
    "gpu_launcher_options": (_str_or_none, "a string or null",
                             "launcher options added for a run with gpus= (the site's task-to-GPU binding; "
                             "$gpus too)"),
    "modules": (_str_list, "a list of strings", "module commands, e.g. 'load gcc/12' or 'gcc/12'"),
    "module_init": (_str_or_none, "a path or null", "file sourced to define 'module' before loading"),
    "remote_root": (lambda v: isinstance(v, str) and v != "" and not ROOT_REFUSED.search(v),
                    "a path without ; \" \\ | #, control characters or a ${ other than ${NAME} (build tools cannot use them)",
                    "work root on the machine"),
    "cores": (_pos_int, "a positive integer", "default cores per run"),
    "corespernode": (_pos_int, "a positive integer", "cores of one node"),
    "make_jobs": (_pos_int, "a positive integer", "parallel compile jobs"),
    "max_job_name_chars": (_pos_int, "a positive integer", "longest job name the scheduler takes"),
    "partition": (_str_or_none, "a string or null", "scheduler partition/queue"),
    "account": (_str_or_none, "a string or null", "budget code"),
    "qos": (_str_or_none, "a string or null", "quality of service"),
    "pe": (_str_or_none, "a string or null", "Grid Engine parallel environment, e.g. mpi or smp"),
    "memory": (lambda v: v is None or (isinstance(v, str) and MEMORY_RE.match(v) is not None),
               "an amount like 4G or 500M, or null", "memory per job (Slurm, PBS) or per slot (SGE), e.g. 4G"),
    "directives": (_str_list, "a list of strings",
                   "extra scheduler directives, without the #SBATCH/#$/#PBS/#BSUB prefix"),
    "shell_setup": (_str_list, "a list of strings",
                    "shell lines run before every remote command (not a .bashrc), e.g. '. /etc/profile.d/sge.sh'"),
    "env": (_env_map, "a mapping of variable names (letters, digits, _) to values",
            "environment for builds and jobs"),
    "cmake": (lambda v: isinstance(v, str) and v != "", "a command", "cmake executable on the machine"),
    "cmake_options": (_str_map, "a mapping of names to values", "CMake -D options for every recipe"),
    "persist": (lambda v: _int(v) and v >= 0, "a whole number of seconds (0: off)",
                "keep the SSH connection open in an agent this long after the last use"),
    "poll_interval": (_number, "a positive number", "first wait between job polls, seconds"),
    "poll_max": (_number, "a positive number", "longest wait between job polls, seconds"),
    "scheduler_timeout": (_number, "a positive number",
                          "how long a wait bears a scheduler that does not answer, seconds"),
    "max_jobs": (lambda v: _int(v) and v >= 0, "a whole number (0: no limit)",
                 "most jobs the user may have queued or running at once (array elements count one each); "
                 "hpcdo submits more as jobs end"),
    "pack": (lambda v: v in PACKS, "one of: " + ", ".join(PACKS),
             "how runs share jobs: none (a job each)"),
    "retries": (lambda v: _int(v) and v >= 0, "a whole number (0: never)",
                "how often a run whose job the machine lost (node failure, preemption, a job gone "
                "without a trace) is submitted again by itself"),
}

#: keys a merged machine must set
NEEDED = ("scheduler", "remote_root")

#: keys whose value names one of a fixed set
CHOICES = {"scheduler": SCHEDULERS, "launcher": LAUNCHERS, "transport": TRANSPORTS, "pack": PACKS}


def check_layer(layer, label):
    """Raise a ConfigError at the first key of ``layer`` that is unknown or has a wrong value."""
    for key, value in layer.values.items():
        if key not in SCHEMA:
            raise ConfigError("%s: %s: unknown key '%s'%s" % (layer.at(key), label, key, nearest(key, SCHEMA)))
        check, wants, _help = SCHEMA[key]
        if key in CHOICES and value is not None and not check(value):
            known = CHOICES[key]
            raise ConfigError("%s: %s: unknown %s '%s'%s; known %ss: %s"
                              % (layer.at(key), label, key, value, nearest(value, known), key,
                                 ", ".join(sorted(known))))
        if not check(value):
            # the value's type, never the value: it may be a secret put in the wrong place
            raise ConfigError("%s: %s: key '%s' must be %s, not %s"
                              % (layer.at(key), label, key, wants, kind(value)))


def nearest(word, known):
    """`` (did you mean 'x'?)`` with the known name nearest ``word``, or nothing."""
    near = difflib.get_close_matches(str(word), known, n=1)
    return " (did you mean '%s'?)" % near[0] if near else ""


def kind(value):
    """What a wrong value is, without repeating it."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
