{##
List a run's results as the probe does (for their fingerprint), then print
@tar and a tar of them; tar reads the names from find (-T), never from an
argument list, and they start with the run's name.
##}
{% include "lf.sh" %}
cd {{ parent }} 2>/dev/null && [ -d {{ name }} ] || { echo "hpcdo: the run directory is gone" >&2; exit 3; }
lf {{ listing }}
echo @tar
find {{ name }} -type f {{ tests }} -print | tar -cf - -T -
