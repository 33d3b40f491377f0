"""What a scheduler says of a job besides its state: submit, start and end times, queue reason, limit.

The status snippets (``hpcdo/schedulers/sh/<name>/status.sh``) print the
scheduler's lines in one query for every job the probe asks about; the
scheduler classes read the state and exit code from them, and
:func:`details` reads the rest from the same lines:

- Slurm: squeue's ``%i %T %V %S %l %r`` (id, state, submit, start, time
  limit, reason) and sacct's ``JobID|State|ExitCode|Submit|Start|End|
  Elapsed|Timelimit|Reason``;
- Grid Engine: qstat's submit/start column, qacct's ``qsub_time``,
  ``start_time``, ``end_time`` and ``category -l h_rt``;
- PBS and TORQUE: ``qstat -f``'s ``qtime``, ``stime``/``start_time``,
  ``obittime``/``comp_time``, ``comment`` and ``Resource_List.walltime``;
- LSF: bjobs's ``submit_time start_time finish_time pend_reason`` after its
  first four fields.

Where a scheduler cannot say, the field is left out (the caller shows a
blank).  Times are seconds since the epoch; a scheduler's time without a
zone is read in this computer's zone.
"""

import re
import time

from ..schedulers.base import seconds

#: time formats schedulers print (after runs of blanks are made one)
FORMATS = ("%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %H:%M:%S", "%a %b %d %H:%M:%S %Y", "%b %d %H:%M:%S %Y",
           "%b %d %H:%M:%S", "%b %d %H:%M", "%Y/%m/%d-%H:%M:%S")
#: what schedulers print for "no value" (compared upper-cased)
NO_VALUE = ("", "-", "N/A", "NONE", "UNKNOWN", "INVALID", "UNLIMITED", "(NULL)", "NULL")


def when(text, now=None):
    """Seconds since the epoch of a scheduler's time ``text``, or None."""
    text = " ".join(str(text or "").split()).split(".")[0]
    text = re.sub(r"\s+[A-Z]$", "", text)          # LSF marks estimated/actual times: "Dec 1 08:30 E"
    if text.upper() in NO_VALUE:
        return None
    if text.isdigit():
        return float(text) if int(text) > 0 else None
    for fmt in FORMATS:
        try:
            parsed = time.strptime(text, fmt)
        except ValueError:
            continue
        if "%Y" not in fmt:              # LSF leaves out the year: this year, unless that is ahead
            now = time.time() if now is None else now
            year = time.localtime(now).tm_year
            stamp = time.mktime(time.struct_time((year,) + tuple(parsed)[1:8] + (-1,)))
            return stamp if stamp <= now + 86400 else time.mktime(
                time.struct_time((year - 1,) + tuple(parsed)[1:8] + (-1,)))
        return time.mktime(parsed[:8] + (-1,))
    return None


def _limit(text):
    value = seconds(text) if str(text or "").strip().upper() not in NO_VALUE else None
    return value if value else None


def _put(found, job_id, **values):
    entry = found.setdefault(job_id, {})
    for key, value in values.items():
        if value not in (None, "") and key not in entry:
            entry[key] = value


def _reason(text):
    text = " ".join(str(text or "").split())
    return "" if text.upper() in NO_VALUE else text


def slurm(text):
    found = {}
    for line in text.splitlines():
        if "|" in line:
            f = (line.split("|") + [""] * 9)[:9]
            if f[0].strip():
                _put(found, f[0].strip(), submitted=when(f[3]), started=when(f[4]), ended=when(f[5]),
                     limit=_limit(f[7]), reason=_reason(f[8]))
            continue
        w = line.split()
        if len(w) >= 5 and w[0][:1].isdigit():
            pending = w[1].upper() == "PENDING"
            _put(found, w[0], submitted=when(w[2]), started=None if pending else when(w[3]),
                 limit=_limit(w[4]), reason=_reason(" ".join(w[5:])) if pending else "")
    return found


SGE_TIME = re.compile(r"(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)")


def sge(text):
    found, record = {}, None
    for line in text.splitlines():
        if line.startswith("====="):
            record = {}
            continue
        w = line.split()
        if record is not None:
            if w:
                record[w[0]] = line.split(None, 1)[1].strip() if len(w) > 1 else ""
                if w[0] == "category" and record.get("jobnumber"):
                    h_rt = re.search(r"h_rt=([0-9:]+)", record["category"])
                    _put(found, record["jobnumber"], limit=_limit(h_rt.group(1)) if h_rt else None)
                if w[0] == "end_time" and record.get("jobnumber"):
                    _put(found, record["jobnumber"], submitted=when(record.get("qsub_time")),
                         started=when(record.get("start_time")), ended=when(record.get("end_time")))
            continue
        m = SGE_TIME.search(line)
        if len(w) >= 5 and w[0].isdigit() and m:
            queued = "q" in w[4] or "w" in w[4]
            _put(found, w[0], **{"submitted" if queued else "started": when(m.group(1))})
    return found


PBS_KEYS = {"qtime": "submitted", "stime": "started", "start_time": "started", "obittime": "ended",
            "comp_time": "ended"}


def pbs(text):
    found, current = {}, None
    blocks = []
    if "<Job>" in text:
        for block in re.findall(r"<Job>(.*?)</Job>", text, re.S):
            attrs = dict((k.lower(), v) for k, v in re.findall(r"<([A-Za-z_]+)>([^<]*)</\1>", block))
            walltime = re.search(r"<Resource_List>.*?<walltime>([^<]*)</walltime>", block, re.S)
            attrs["resource_list.walltime"] = walltime.group(1) if walltime else ""
            blocks.append((attrs.get("job_id", ""), attrs))
    else:
        for line in text.splitlines():
            m = re.match(r"^Job Id:\s*(\S+)", line)
            a = re.match(r"^\s+([A-Za-z_][A-Za-z0-9_.]*) = (.*)$", line)
            if m:
                current = {}
                blocks.append((m.group(1), current))
            elif a and current is not None:
                current.setdefault(a.group(1).lower(), a.group(2).strip())
    asked = []
    for line in text.splitlines():
        if line.startswith("@ids "):
            asked = [i for i in line[5:].strip().split(",") if i]
    for job_id, attrs in blocks:
        if not job_id:
            continue
        number = job_id.split(".")[0]
        same = [i for i in asked if i == job_id or i.split(".")[0] == number]
        job_id = same[0] if len(same) == 1 else job_id
        values = {field: when(attrs.get(key)) for key, field in PBS_KEYS.items() if attrs.get(key)}
        pending = attrs.get("job_state", "").upper() in ("Q", "H", "W", "T")
        _put(found, job_id, limit=_limit(attrs.get("resource_list.walltime")),
             reason=_reason(attrs.get("comment")) if pending else "", **values)
    return found


def lsf(text):
    found = {}
    for line in text.splitlines():
        f = line.split("|")
        if len(f) >= 8 and f[0].strip().isdigit():
            pending = f[1].strip().upper() in ("PEND", "PSUSP", "WAIT", "PROV")
            _put(found, f[0].strip(), submitted=when(f[-4]), started=when(f[-3]), ended=when(f[-2]),
                 reason=_reason(f[-1]) if pending else "")
    return found


PARSERS = {"slurm": slurm, "sge": sge, "pbs": pbs, "lsf": lsf}


def details(family, text):
    """{job id: {submitted, started, ended (epoch seconds), limit (seconds), reason}} from the
    status lines of scheduler family ``family`` (fields the scheduler did not give are left out)."""
    parser = PARSERS.get(family)
    if parser is None:
        return {}
    try:
        return parser(text)
    except (ValueError, OverflowError):
        return {}                 # a line no scheduler of this family prints: nothing said
