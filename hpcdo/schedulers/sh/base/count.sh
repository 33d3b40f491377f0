{## how many jobs the user has queued or running, in $n (empty: the scheduler did not answer); this base cannot count, and "-" says so: the caller's own record of its active jobs stands in ##}
n=-
