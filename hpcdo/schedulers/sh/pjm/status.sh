{##
"JOB_ID ST EC PC SN" rows of the ids in $ids: the unfinished jobs, then the finished
ones (-H), in one call of this snippet.  A PJM error line ("[ERR.] PJM nnnn pjstat ...")
and no row at all means PJM did not answer.
##}
f="jid=$(printf "%s" "$ids" | tr , +)"
b=$({{ queue_command }} -v --choose jid,st,ec,pc,sn --filter "$f" 2>&1; {{ queue_command }} -H -v --choose jid,st,ec,pc,sn --filter "$f" 2>&1)
printf "%s\n" "$b"
case "$b" in *"[ERR.] PJM"*) printf "%s\n" "$b" | grep -q "^ *[0-9]" || echo @qfail;; esac
true
