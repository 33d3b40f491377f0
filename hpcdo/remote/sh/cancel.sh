{## each run directory first gets a job.cancelled mark, whatever the scheduler's accounting keeps ##}
{% for rundir in rundirs %}
[ -d {{ rundir }} ] && : > {{ rundir }}/job.cancelled
{% endfor %}
ids={{ ids }}
{{ cancel }}
