{##
"@ids" lets the parser match a server's longer or shorter name for a job
("12.srv" for "12.srv.example.org") to the id qsub printed.  qstat fails
for a job id the server has forgotten, so whether the server answers at
all is asked apart, with the queue listing.  The options tried first
(PBS Pro's -x history) fall back on plain -f where they mean nothing.
##}
{{ queue_command }} -Q >/dev/null 2>&1 || echo @qfail
printf "@ids %s\n" "$ids"
o=$({{ queue_command }} {{ queue_options }} $(printf "%s" "$ids" | tr , " ") 2>/dev/null)
case "$o" in
  *"Job Id:"*|*"<Job>"*) ;;
  *) o=$({{ queue_command }} -f $(printf "%s" "$ids" | tr , " ") 2>/dev/null);;
esac
printf "%s\n" "$o"
true
