{##
After the build lock: a build stops unless the machine's source is the one
this call synced (two checkouts with different sources may share a work
root), then loads the modules and exports, stopping at the first that fails.
##}
{% if source_sig %}
grep -q {{ source_sig }} {{ recipe_dir }}/src/.hpcdo-stamp 2>/dev/null || { echo "hpcdo: the source on the machine is not the one this call sent (another checkout of the project shares this work root?); call again" >&2; exit 96; }
{% endif %}
{% for line, message in setup %}
{{ line }} || { echo {{ message }} >&2; exit 98; }
{% endfor %}
