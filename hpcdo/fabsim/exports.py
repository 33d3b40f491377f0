"""A FabSim3 batch header's ``export`` lines, carried into the job as the shell would read them.

A line is carried only if its value is one assignment word whose expansions
are the job's variables (``$NAME``, ``${NAME}``) and arithmetic (``$((...))``):
plain text goes into the machine's ``env``, the rest in front of the run
command.  Anything else (a command, ``;``, a redirection, an open quote) is
left out with a warning by :class:`~.headers.BatchHeader`.
"""

import re
import shlex

#: a header's ``export NAME=VALUE`` line
EXPORT_RE = re.compile(r"^export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z")
#: the expansions an export's value may hold: the job's variables, $NAME or ${NAME}
NAME_REF_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
#: what arithmetic, $((...)), may hold besides the job's variables: numbers, names, operators
ARITH_RE = re.compile(r"^[A-Za-z0-9_\s+\-*/%<>=!&|^~?:,()]*\Z")
#: what stands for one $((...)) while the value is split into words
ARITH_MARK = "HPCDOARITH%dX"


def assignment_word(name, value):
    """``NAME=value`` as the shell reads it: (the word as written, its plain value or None), or None.

    None unless it is one assignment word, whose trailing comment is dropped as the shell
    drops it, and whose expansions are only the job's variables ($NAME, ${NAME}) and
    arithmetic ($((...))): no command, ``;``, ``&``, ``|`` or redirection.  The plain value
    (quotes removed) is there when nothing in the word is for the job's shell to expand.
    """
    text = marked = "%s=%s" % (name, value)
    arith = []
    while "$((" in marked:
        start = marked.index("$((")
        depth, end = 0, start + 1
        for end in range(start + 1, len(marked)):
            depth += {"(": 1, ")": -1}.get(marked[end], 0)
            if depth == 0:
                break
        body = marked[start + 3:end - 1]
        if depth or marked[end - 1:end + 1] != "))" or not ARITH_RE.match(NAME_REF_RE.sub("", body)) \
                or not _balanced(body) or ARITH_MARK % len(arith) in text:
            return None
        arith.append(marked[start:end + 1])
        marked = marked[:start] + ARITH_MARK % (len(arith) - 1) + marked[end + 1:]
    # a comment starts at a '#' that begins a word, outside quotes, as in the shell
    cut = len(marked)
    for at, char in enumerate(marked):
        if char == "#" and marked[at - 1] in " \t" and _words(marked[:at]) is not None and \
                _words(marked[:at]) == _words(marked[:at].rstrip()):
            cut = at
            break
    raw = marked[:cut].strip()
    words = _words(raw)
    if words is None or len(words) != 1 or "`" in raw or "$" in NAME_REF_RE.sub("", raw):
        return None
    for number, expression in enumerate(arith):
        raw = raw.replace(ARITH_MARK % number, expression)
    if arith or "$" in raw or raw[len(name) + 1:].startswith("~"):
        return raw, None
    return raw, words[0][len(name) + 1:]


def _words(text):
    """``text`` split into shell words, operators (``;``, ``&&``, ``>`` ...) apart; None if a quote is open."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return None


def _balanced(text):
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def carry_exports(result, env, assignments):
    """A header's export lines, into the job: as ``env`` where the value is plain text, and
    where the job's shell must expand it ($SLURM_CPUS_PER_TASK), as assignments in front of
    the run command, which is the job's one command (``$`` doubled: run_command fills
    ``$cores`` and the like).  ``env``: name -> (value, file, line); ``assignments``:
    (NAME=text, file, line)."""
    if env:
        _value, path, line = next(iter(env.values()))
        result.out["env"] = ({k: v for k, (v, _p, _l) in env.items()}, path, line)
    if assignments:
        words = " ".join(text.replace("$", "$$") for text, _p, _l in assignments)
        command = result.out.get("run_command")
        if command is not None and command[0]:
            result.out["run_command"] = ("%s %s" % (words, command[0]),) + command[1:]
        else:
            _text, path, line = assignments[0]
            result.out["run_command"] = (words, path, line)
