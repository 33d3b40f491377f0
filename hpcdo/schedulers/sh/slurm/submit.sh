{## --parsable prints "id" or "id;cluster" ##}
id=$({{ submit_command }} --parsable ./job.sh) && id=${id%%;*}
