{## each run directory first gets a job.cancelled mark, whatever the scheduler's accounting keeps ##}
{% for rundir in rundirs %}
[ -d {{ rundir }} ] && : > {{ rundir }}/job.cancelled
{% endfor %}
ids={{ ids }}
{##
The schedulers' own code splits id and option lists into words on purpose
(SC2046, SC2086); the local scheduler's ps | grep . asks whether ps printed
anything (SC2009).  submit.sh says the same before the submission, and
SC2030, SC2031: the local cancel, run inside a submission's subshell, sets
there what its own functions read.
##}
# shellcheck disable=SC2009,SC2046,SC2086
{
{{ cancel }}
}
