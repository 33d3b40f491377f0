# shellcheck shell=bash
# Shared code of tests/cluster/up and tests/cluster/down: a one-machine test
# cluster (private sshd on 127.0.0.1:2222 for user hpcuser, munge, one-node
# Slurm, one-host Grid Engine, PBS-style commands on top of the Slurm, Lmod).
# Sourced, not executed.
#
# Every component is a set of bash functions named <component>_<verb>:
#   <component>_packages   Debian packages it needs (printed, one per word)
#   <component>_up         configure + start it if not running (idempotent)
#   <component>_wait       block until it works, or die naming what failed
#   <component>_down       stop what _up started (idempotent)
#   <component>_status     print one word: running | stopped
#   <component>_env        optional: extra NAME=value lines for cluster.env
# COMPONENTS lists them in start order; down walks it backwards. To add one,
# write those functions in tests/cluster/components/<name>.sh, which is
# sourced after this file and appends its name to COMPONENTS.
#
# All state lives in $HPCDO_CLUSTER_DIR (default /var/lib/hpcdo-testcluster),
# never in a checkout. The only things written outside it are: the hpcuser
# account and its ~/.ssh/authorized_keys, the /etc/slurm/slurm.conf symlink
# (so client commands run over ssh find the config), /run/sshd (sshd's
# privilege separation dir), if needed a "127.0.0.1 <host> localhost" line at
# the top of /etc/hosts, and Grid Engine's own places as Debian lays them out
# (cell /var/lib/gridengine/default, whose common/act_qmaster we write; spool
# /var/spool/gridengine; its configuration, kept by sge_qmaster there), so
# that the /usr/bin clients work with no SGE_ROOT/SGE_CELL set. The components
# in components/ add: the two-factor sshd's PAM service /etc/pam.d/hpcdo-mfa-sshd
# (mfa.sh), and the bastion's network namespace hpcdo-bastion, its veth pair
# hpcdo-bst0 and /etc/netns/hpcdo-bastion/hosts (bastion.sh).
#
# What clients need (ssh key, PBS bin dir, Lmod init file, ...) is written to
# $HPCDO_CLUSTER_DIR/cluster.env (write_cluster_env).

# shellcheck disable=SC2034 # used by up and down
COMPONENTS=(ssh munge slurm sge pbs lmod) # pbs after slurm: its wrappers run Slurm

STATE_DIR=$(realpath -m -- "${HPCDO_CLUSTER_DIR:-/var/lib/hpcdo-testcluster}")
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/log

SSH_HOST=127.0.0.1
SSH_PORT=2222
SSH_USER=hpcuser
CLIENT_KEY=$STATE_DIR/id_ed25519
KNOWN_HOSTS=$STATE_DIR/known_hosts
SSH_DIR=$STATE_DIR/ssh
SSHD_CONFIG=$SSH_DIR/sshd_config
SSHD_HOSTKEY=$SSH_DIR/ssh_host_ed25519_key
SSHD_PIDFILE=$RUN_DIR/sshd.pid
SSHD_LOG=$LOG_DIR/sshd.log

MUNGE_DIR=$STATE_DIR/munge # owned by munge; also holds the socket
MUNGE_KEY=$MUNGE_DIR/munge.key
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
MUNGE_PIDFILE=$MUNGE_DIR/munged.pid
MUNGE_LOG=$MUNGE_DIR/munged.log
MUNGE_SEED=$MUNGE_DIR/munged.seed

SLURM_DIR=$STATE_DIR/slurm
SLURM_CONF=$SLURM_DIR/slurm.conf
SLURM_ETC_CONF=/etc/slurm/slurm.conf # symlink to $SLURM_CONF
SLURMCTLD_PIDFILE=$RUN_DIR/slurmctld.pid
SLURMD_PIDFILE=$RUN_DIR/slurmd.pid
SLURMCTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_LOG=$LOG_DIR/slurmd.log
SLURM_PARTITION=debug
# Planning only: partition "multi" of CLOUD nodes that no slurmd backs, so that
# `sbatch --test-only -p multi` checks multi-node and threaded layouts (Slurm
# plans on powered-down CLOUD nodes; it refuses DOWN ones and does not list
# FUTURE ones). A job really submitted there is never started: it stays
# CONFIGURING until cancelled. Never the default partition.
SLURM_MULTI_PARTITION=multi
SLURM_MULTI_NODES="virt[1-4]"
SLURM_MULTI_CPUS=8

# Grid Engine keeps Debian's layout: the client wrappers in /usr/bin default
# to SGE_ROOT=/var/lib/gridengine SGE_CELL=default (no environment needed),
# and the packages' postinst creates the cell and its BerkeleyDB spool there.
SGE_ROOT_DIR=/var/lib/gridengine
SGE_CELL_NAME=default
SGE_COMMON=$SGE_ROOT_DIR/$SGE_CELL_NAME/common
SGE_ACT_QMASTER=$SGE_COMMON/act_qmaster
SGE_SPOOL=/var/spool/gridengine
SGE_QMASTER_SPOOL=$SGE_SPOOL/qmaster # qmaster_spool_dir of Debian's bootstrap
SGE_QMASTER_PIDFILE=$SGE_QMASTER_SPOOL/qmaster.pid
SGE_QMASTER_LOG=$SGE_QMASTER_SPOOL/messages
SGE_EXECD_SPOOL=$SGE_SPOOL/execd # execd_spool_dir; the execd uses <it>/<host>
SGE_LIB=/usr/lib/gridengine
SGE_DIR=$STATE_DIR/sge # the object definitions we feed to qconf
SGE_LOG=$LOG_DIR/sge.log
SGE_QUEUE=all.q
SGE_HOSTGROUP=@allhosts
SGE_PE=smp

# PBS-style qsub/qstat/qdel of Debian's slurm-wlm-torque, unpacked (not
# installed: it conflicts with gridengine-client over /usr/bin/qsub).
PBS_DIR=$STATE_DIR/pbs
PBS_BIN=$PBS_DIR/bin   # put first on PATH to get the PBS commands
PBS_ROOT=$PBS_DIR/root # dpkg -x of slurm-wlm-torque
PBS_STAMP=$PBS_DIR/version
PBS_WRAPPERS=(qsub qstat qdel qalter qhold qrls qrerun pbsnodes generate_pbs_nodefile mpiexec.slurm)
PBS_SLURM_CMDS=(sbatch salloc srun squeue scancel scontrol sacct sinfo sstat)

LMOD_INIT_SH=/usr/share/lmod/lmod/init/sh     # POSIX sh (dash) and bash
LMOD_INIT_BASH=/usr/share/lmod/lmod/init/bash # bash (also works in dash)
MODULEFILES_DIR=$STATE_DIR/modulefiles        # owned by hpcuser, for the tests

CLUSTER_ENV=$STATE_DIR/cluster.env

READY_TIMEOUT=${HPCDO_CLUSTER_TIMEOUT:-60} # seconds, per component

# take_lock: serialise up/down on $STATE_DIR/.lock (fd 9). Every daemon is
# started with 9>&- so none of them inherits (and holds) the lock.
take_lock() {
    exec 9>"$STATE_DIR/.lock"
    flock -w 120 9 || die "another tests/cluster/up or down still holds $STATE_DIR/.lock after 120 s"
}

# ---------------------------------------------------------------- helpers

log() { printf 'cluster: %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE...]: print MESSAGE and the tail of each log, exit 1.
die() {
    local msg=$1 f
    shift
    printf 'cluster: ERROR: %s\n' "$msg" >&2
    for f in "$@"; do
        if [[ -s $f ]]; then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -n 15 "$f" >&2
        fi
    done
    exit 1
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts daemons and manages user $SSH_USER)"
}

# check_state_dir: the state dir goes into sshd_config/slurm.conf unquoted
# and must not live in a checkout (keys, sockets, job spool).
check_state_dir() {
    local repo
    [[ $STATE_DIR != *[[:space:]]* ]] || die "HPCDO_CLUSTER_DIR must not contain white space: '$STATE_DIR'"
    repo=$(realpath -m -- "$(dirname "${BASH_SOURCE[0]}")/../..")
    [[ $STATE_DIR/ != "$repo"/* ]] || die "HPCDO_CLUSTER_DIR ($STATE_DIR) is inside the checkout $repo: put it elsewhere"
}

short_hostname() { hostname -s; }

# pid_of NAME PIDFILE NEEDLE: print the pid of our daemon NAME (its
# /proc/PID/comm) whose command line contains NEEDLE (our config/socket path),
# first from PIDFILE, else by scanning processes named NAME. Prints nothing and
# returns 1 if none runs. Never matches a daemon started with another config.
pid_of() {
    local name=$1 pidfile=$2 needle=$3 pid cand
    if [[ -r $pidfile ]]; then
        read -r pid <"$pidfile" 2>/dev/null || pid=
        if [[ $pid =~ ^[0-9]+$ ]] && _is_ours "$pid" "$name" "$needle"; then
            echo "$pid"
            return 0
        fi
    fi
    for cand in $(pgrep -x "$name" 2>/dev/null); do
        if _is_ours "$cand" "$name" "$needle"; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

_is_ours() {
    local pid=$1 name=$2 needle=$3 comm cmd
    [[ -r /proc/$pid/comm ]] || return 1
    read -r comm <"/proc/$pid/comm" 2>/dev/null || return 1
    [[ $comm == "$name" ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$needle"* ]]
}

# stop_daemon NAME PIDFILE NEEDLE: SIGTERM our daemon, wait up to 15 s, then
# SIGKILL. Removes PIDFILE. Returns 0 whether or not it was running.
stop_daemon() {
    local name=$1 pidfile=$2 needle=$3 pid i n=0
    while pid=$(pid_of "$name" "$pidfile" "$needle"); do
        ((++n <= 5)) || die "cannot stop $name (pid $pid)"
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            _gone "$pid" && break
            sleep 0.1
        done
        if ! _gone "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    done
    rm -f "$pidfile"
}

# _gone PID: true if PID no longer runs (a zombie waiting for init counts as gone)
_gone() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat%% *} == [ZX] ]]
}

# install_if_changed SRC DST: move SRC over DST if they differ; returns 0 if
# DST changed, 1 if it was already identical (SRC is then removed).
install_if_changed() {
    local src=$1 dst=$2
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        rm -f "$src"
        return 1
    fi
    mv -f "$src" "$dst"
    return 0
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == "ii "* ]]
}

# ensure_packages PKG...: apt-get install those not yet installed.
ensure_packages() {
    local missing=() p made_policy=0 aptlog=$LOG_DIR/apt.log
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]} (log: $aptlog)"
    # Keep maintainer scripts from starting the system-wide services
    # (sshd on :22, munge, slurm with the package config): we run our own.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >>"$aptlog" 2>&1 &&
            apt-get install -y -q --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "${missing[@]}" >>"$aptlog" 2>&1
    } || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)" "$aptlog"
    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "package $p is still not installed after apt-get" "$aptlog"
    done
}

# ensure_etc_hosts: make 127.0.0.1 resolve to `hostname -s` first (Grid
# Engine's qmaster needs the reverse lookup of 127.0.0.1 to give the host's
# own name; Slurm needs the name to resolve). Prepends one line if the first
# 127.0.0.1 line does not already name the host first. Edits in place so a
# bind-mounted /etc/hosts keeps its inode.
ensure_etc_hosts() {
    local host first content
    host=$(short_hostname)
    [[ -n $host && $host != localhost ]] || return 0
    first=$(awk '$1 == "127.0.0.1" { print $2; exit }' /etc/hosts 2>/dev/null || true)
    [[ $first == "$host" ]] && return 0
    [[ -e $STATE_DIR/hosts.orig ]] || { cp /etc/hosts "$STATE_DIR/hosts.orig" && chmod 644 "$STATE_DIR/hosts.orig"; }
    content=$(cat /etc/hosts)
    log "adding '127.0.0.1 $host localhost' at the top of /etc/hosts (copy of the old one: $STATE_DIR/hosts.orig)"
    printf '127.0.0.1 %s localhost\n%s\n' "$host" "$content" >/etc/hosts
}

ensure_user() {
    local shadow_pw
    if ! getent passwd "$SSH_USER" >/dev/null; then
        log "creating user $SSH_USER"
        useradd -m -d "/home/$SSH_USER" -s /bin/bash -p '*' "$SSH_USER"
    fi
    # A locked account ("!..." password field) is refused by sshd with
    # UsePAM no even for key auth: '*' means "no password, not locked".
    shadow_pw=$(getent shadow "$SSH_USER" | cut -d: -f2)
    if [[ -z $shadow_pw || $shadow_pw == '!'* ]]; then
        usermod -p '*' "$SSH_USER"
    fi
}

write_cluster_env() {
    local tmp=$CLUSTER_ENV.tmp
    {
        echo "# written by tests/cluster/up; source it: . $CLUSTER_ENV"
        printf 'HPCDO_SSH_HOST=%q\n' "$SSH_HOST"
        printf 'HPCDO_SSH_PORT=%q\n' "$SSH_PORT"
        printf 'HPCDO_SSH_USER=%q\n' "$SSH_USER"
        printf 'HPCDO_SSH_KEY=%q\n' "$CLIENT_KEY"
        printf 'HPCDO_KNOWN_HOSTS=%q\n' "$KNOWN_HOSTS"
        printf 'HPCDO_CLUSTER_DIR=%q\n' "$STATE_DIR"
        printf 'HPCDO_SLURM_PARTITION=%q\n' "$SLURM_PARTITION"
        # Grid Engine: the clients need no environment (Debian's defaults);
        # these say where the cell is, for a test that wants to look.
        printf 'HPCDO_SGE_ROOT=%q\n' "$SGE_ROOT_DIR"
        printf 'HPCDO_SGE_CELL=%q\n' "$SGE_CELL_NAME"
        printf 'HPCDO_SGE_QUEUE=%q\n' "$SGE_QUEUE"
        printf 'HPCDO_SGE_PE=%q\n' "$SGE_PE"
        # PBS-style commands on top of Slurm: only with this first on PATH
        printf 'HPCDO_PBS_BIN=%q\n' "$PBS_BIN"
        printf 'HPCDO_LMOD_INIT_SH=%q\n' "$LMOD_INIT_SH"
        printf 'HPCDO_LMOD_INIT_BASH=%q\n' "$LMOD_INIT_BASH"
        printf 'HPCDO_MODULEFILES=%q\n' "$MODULEFILES_DIR"
        local c
        for c in "${COMPONENTS[@]}"; do
            if declare -F "${c}_env" >/dev/null; then "${c}_env"; fi
        done
    } >"$tmp"
    chmod 644 "$tmp"
    install_if_changed "$tmp" "$CLUSTER_ENV" || true
}

# ssh_run CMD...: run CMD as hpcuser over our sshd, host key checking on.
ssh_run() {
    ssh -F /dev/null -n -i "$CLIENT_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=5 \
        -p "$SSH_PORT" "$SSH_USER@$SSH_HOST" "$@"
}

# user_run CMD: run the shell command CMD as hpcuser the way sshd runs a
# non-interactive command (login shell -c CMD, sshd's environment and PATH, no
# profile read, in the home dir), without the 0.3 s of an ssh connection:
# the components' checks use it; ssh_wait proves ssh itself.
user_run() {
    local home shell
    home=$(getent passwd "$SSH_USER" | cut -d: -f6)
    shell=$(getent passwd "$SSH_USER" | cut -d: -f7)
    (cd "$home" && exec runuser -u "$SSH_USER" -- env -i HOME="$home" USER="$SSH_USER" LOGNAME="$SSH_USER" \
        SHELL="$shell" PATH=/usr/local/bin:/usr/bin:/bin:/usr/games "$shell" -c "$1" </dev/null 9>&-)
}

# ---------------------------------------------------------------- ssh

ssh_packages() { echo openssh-server openssh-client rsync; }

ssh_pid() { pid_of sshd "$SSHD_PIDFILE" "-f $SSHD_CONFIG"; }

ssh_status() { if ssh_pid >/dev/null; then echo running; else echo stopped; fi; }

_ssh_write_config() {
    local tmp=$SSHD_CONFIG.tmp
    cat >"$tmp" <<EOF
# private sshd of the hpcdo test cluster (tests/cluster/up); not the system's
Port $SSH_PORT
ListenAddress $SSH_HOST
HostKey $SSHD_HOSTKEY
PidFile $SSHD_PIDFILE
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowUsers $SSH_USER
Subsystem sftp internal-sftp
MaxSessions 50
MaxStartups 50:30:100
X11Forwarding no
PrintMotd no
LogLevel INFO
EOF
    install_if_changed "$tmp" "$SSHD_CONFIG"
}

ssh_up() {
    local changed=0 pid home
    mkdir -p "$SSH_DIR" "$RUN_DIR" "$LOG_DIR" /run/sshd
    chmod 755 /run/sshd
    # client key pair (the tests' identity) and sshd host key
    [[ -s $CLIENT_KEY && -s $CLIENT_KEY.pub ]] ||
        { rm -f "$CLIENT_KEY" "$CLIENT_KEY.pub"; ssh-keygen -q -t ed25519 -N '' -C "hpcdo-testcluster" -f "$CLIENT_KEY"; }
    chmod 600 "$CLIENT_KEY" "$CLIENT_KEY.pub"
    [[ -s $SSHD_HOSTKEY && -s $SSHD_HOSTKEY.pub ]] ||
        { rm -f "$SSHD_HOSTKEY" "$SSHD_HOSTKEY.pub"; ssh-keygen -q -t ed25519 -N '' -C "hpcdo-testcluster-host" -f "$SSHD_HOSTKEY"; }
    chmod 600 "$SSHD_HOSTKEY"
    _ssh_write_config && changed=1

    # authorized_keys of hpcuser
    home=$(getent passwd "$SSH_USER" | cut -d: -f6)
    install -d -m 700 -o "$SSH_USER" -g "$(id -gn "$SSH_USER")" "$home/.ssh"
    touch "$home/.ssh/authorized_keys"
    grep -qxF "$(cat "$CLIENT_KEY.pub")" "$home/.ssh/authorized_keys" ||
        cat "$CLIENT_KEY.pub" >>"$home/.ssh/authorized_keys"
    chown "$SSH_USER:$(id -gn "$SSH_USER")" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"

    if pid=$(ssh_pid); then
        ((changed)) || return 0
        log "sshd_config changed: restarting sshd"
        stop_daemon sshd "$SSHD_PIDFILE" "-f $SSHD_CONFIG"
    fi
    /usr/sbin/sshd -t -f "$SSHD_CONFIG" 2>>"$SSHD_LOG" ||
        die "sshd -t rejects $SSHD_CONFIG" "$SSHD_LOG"
    log "starting sshd on $SSH_HOST:$SSH_PORT"
    /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG" 9>&- ||
        die "sshd failed to start" "$SSHD_LOG"
}

# scan_known_hosts PUBKEY FILE HOST PORT ALIVE LOG WHAT: FILE gets the host key
# the sshd at [HOST]:PORT offers, with ssh-keyscan, and is kept as it is while
# it holds PUBKEY's key; ALIVE (a function) says whether that sshd still runs.
scan_known_hosts() {
    local pub=$1 file=$2 host=$3 port=$4 alive=$5 logf=$6 what=$7
    local want i tmp=$2.tmp
    want=$(awk '{print $1" "$2}' "$pub")
    if [[ -s $file ]] && [[ $(awk '{print $2" "$3}' "$file") == "$want" ]] &&
        grep -q "^\[$host\]:$port " "$file"; then
        return 0
    fi
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        if ssh-keyscan -T 2 -t ed25519 -p "$port" "$host" >"$tmp" 2>/dev/null &&
            [[ $(awk '{print $2" "$3}' "$tmp") == "$want" ]]; then
            chmod 644 "$tmp"
            mv -f "$tmp" "$file"
            return 0
        fi
        "$alive" >/dev/null || break
        sleep 0.25
    done
    rm -f "$tmp"
    die "ssh-keyscan -p $port $host did not return $what" "$logf"
}

# known_hosts for [127.0.0.1]:2222, taken from the running sshd
_ssh_known_hosts() {
    scan_known_hosts "$SSHD_HOSTKEY.pub" "$KNOWN_HOSTS" "$SSH_HOST" "$SSH_PORT" ssh_pid "$SSHD_LOG" \
        "our host key (sshd $(ssh_status))"
}

ssh_wait() {
    local i out
    sleep 0.1
    ssh_pid >/dev/null || die "sshd exited right after its start (port $SSH_PORT taken?)" "$SSHD_LOG"
    _ssh_known_hosts
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        out=$(ssh_run true 2>&1) && return 0
        ssh_pid >/dev/null || break
        sleep 0.25
    done
    die "ssh -i $CLIENT_KEY -p $SSH_PORT $SSH_USER@$SSH_HOST true fails (sshd $(ssh_status)): $out" "$SSHD_LOG"
}

ssh_down() { stop_daemon sshd "$SSHD_PIDFILE" "-f $SSHD_CONFIG"; }

# ---------------------------------------------------------------- munge

munge_packages() { echo munge; }

munge_pid() { pid_of munged "$MUNGE_PIDFILE" "--socket=$MUNGE_SOCKET"; }

munge_status() { if munge_pid >/dev/null; then echo running; else echo stopped; fi; }

munge_up() {
    install -d -m 755 -o munge -g munge "$MUNGE_DIR"
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key"
        (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 400 "$MUNGE_KEY"
    munge_pid >/dev/null && return 0
    rm -f "$MUNGE_PIDFILE"
    log "starting munged (socket $MUNGE_SOCKET)"
    runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" \
        --pid-file="$MUNGE_PIDFILE" --log-file="$MUNGE_LOG" --seed-file="$MUNGE_SEED" 9>&- ||
        die "munged failed to start" "$MUNGE_LOG"
}

munge_wait() {
    local i
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && return 0
        munge_pid >/dev/null || break
        sleep 0.25
    done
    die "munge -n | unmunge fails on $MUNGE_SOCKET (munged $(munge_status))" "$MUNGE_LOG"
}

munge_down() { stop_daemon munged "$MUNGE_PIDFILE" "--socket=$MUNGE_SOCKET"; }

# ---------------------------------------------------------------- slurm

slurm_packages() { echo slurm-wlm; }

slurmctld_pid() { pid_of slurmctld "$SLURMCTLD_PIDFILE" "-f $SLURM_CONF"; }
slurmd_pid() { pid_of slurmd "$SLURMD_PIDFILE" "-f $SLURM_CONF"; }

slurm_status() {
    if slurmctld_pid >/dev/null && slurmd_pid >/dev/null; then echo running; else echo stopped; fi
}

_slurm_write_config() {
    local host cpus mem_mb min_job_age=${HPCDO_SLURM_MIN_JOB_AGE:-300} tmp=$SLURM_CONF.tmp
    [[ $min_job_age =~ ^[0-9]+$ ]] || die "HPCDO_SLURM_MIN_JOB_AGE must be a number of seconds, not '$min_job_age'"
    host=$(short_hostname)
    cpus=$(nproc)
    # slurmd drains a node whose RealMemory is above what it finds; leave a
    # margin (5 %, at least 256 MB) below MemTotal.
    mem_mb=$(awk '/^MemTotal:/ { m = int($2 / 1024); d = int(m / 20); if (d < 256) d = 256; m -= d; if (m < 1) m = 1; print m }' /proc/meminfo)
    cat >"$tmp" <<EOF
# one-node Slurm of the hpcdo test cluster (tests/cluster/up); regenerated by every up
ClusterName=hpcdo
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Start jobs at once: by default (batch_sched_delay=3) a job submitted less
# than 3 s after the last scheduling pass waits up to 3 s for the next one.
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
# Finished jobs stay in squeue/scontrol for MinJobAge s (Slurm's default 300;
# HPCDO_SLURM_MIN_JOB_AGE overrides it to test the "job forgotten" path).
MinJobAge=$min_job_age
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURMCTLD_PIDFILE
SlurmdPidFile=$SLURMD_PIDFILE
SlurmctldLogFile=$SLURMCTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$SLURM_PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
# virtual nodes for sbatch --test-only (see SLURM_MULTI_PARTITION); PrivateData=cloud
# lists them in sinfo while powered down
PrivateData=cloud
NodeName=$SLURM_MULTI_NODES CPUs=$SLURM_MULTI_CPUS RealMemory=1024 State=CLOUD
PartitionName=$SLURM_MULTI_PARTITION Nodes=$SLURM_MULTI_NODES Default=NO MaxTime=INFINITE State=UP
EOF
    chmod 644 "$tmp"
    install_if_changed "$tmp" "$SLURM_CONF"
}

slurm_up() {
    local changed=0
    mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool" "$RUN_DIR" "$LOG_DIR"
    chmod 755 "$STATE_DIR" "$SLURM_DIR"
    _slurm_write_config && changed=1
    # client commands (sbatch over ssh as hpcuser) read /etc/slurm/slurm.conf
    mkdir -p /etc/slurm
    if [[ -L $SLURM_ETC_CONF ]]; then
        [[ $(readlink "$SLURM_ETC_CONF") == "$SLURM_CONF" ]] || ln -sfn "$SLURM_CONF" "$SLURM_ETC_CONF"
    else
        if [[ -e $SLURM_ETC_CONF ]]; then
            log "moving existing $SLURM_ETC_CONF to $SLURM_ETC_CONF.hpcdo-bak"
            mv -f "$SLURM_ETC_CONF" "$SLURM_ETC_CONF.hpcdo-bak"
        fi
        ln -sfn "$SLURM_CONF" "$SLURM_ETC_CONF"
    fi
    if ((changed)) && { slurmctld_pid || slurmd_pid; } >/dev/null; then
        log "slurm.conf changed: restarting slurmctld and slurmd"
        slurm_down
    fi
    # The planning partition's CLOUD nodes never run: once slurmctld has tried
    # to power one up (a job really sent there) or restarted, its saved state
    # says NOT_RESPONDING and sbatch --test-only refuses every plan. Their
    # state is the config's: start slurmctld without the saved node state.
    if slurmctld_pid >/dev/null &&
        SLURM_CONF=$SLURM_CONF timeout 10 sinfo -h -p multi -o %t 2>/dev/null | grep -q '[*#!%]\|down\|fail'; then
        log "virtual nodes of partition multi not responding: restarting slurmctld without node state"
        stop_daemon slurmctld "$SLURMCTLD_PIDFILE" "-f $SLURM_CONF"
        rm -f "$SLURM_DIR"/state/node_state "$SLURM_DIR"/state/node_state.old
    fi
    if ! slurmctld_pid >/dev/null; then
        log "starting slurmctld"
        /usr/sbin/slurmctld -f "$SLURM_CONF" >>"$SLURMCTLD_LOG" 2>&1 9>&- ||
            die "slurmctld failed to start" "$SLURMCTLD_LOG"
    fi
    if ! slurmd_pid >/dev/null; then
        log "starting slurmd"
        /usr/sbin/slurmd -f "$SLURM_CONF" >>"$SLURMD_LOG" 2>&1 9>&- ||
            die "slurmd failed to start" "$SLURMD_LOG"
    fi
}

# The node must be usable: idle (or busy with jobs). ReturnToService=2 brings
# a DOWN node back when its slurmd registers; a DRAINED one (e.g. left over in
# the saved state) is resumed once.
slurm_wait() {
    local host i state="" resumed=0
    host=$(short_hostname)
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        state=$(SLURM_CONF=$SLURM_CONF timeout 10 sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n1) || state=""
        case $state in
        idle | mix | alloc | comp) return 0 ;;
        down | drain | drng | fail | failg)
            if ((!resumed && i >= 8)); then
                log "node $host is $state: scontrol update State=RESUME"
                SLURM_CONF=$SLURM_CONF scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
                resumed=1
            fi
            ;;
        esac
        slurmctld_pid >/dev/null || die "slurmctld died" "$SLURMCTLD_LOG"
        slurmd_pid >/dev/null || die "slurmd died" "$SLURMD_LOG"
        sleep 0.25
    done
    die "slurm node $host not idle after ${READY_TIMEOUT}s (sinfo state: '${state:-no answer}')" \
        "$SLURMCTLD_LOG" "$SLURMD_LOG"
}

slurm_down() {
    stop_daemon slurmd "$SLURMD_PIDFILE" "-f $SLURM_CONF"
    stop_daemon slurmctld "$SLURMCTLD_PIDFILE" "-f $SLURM_CONF"
}

# ---------------------------------------------------------------- sge
#
# Grid Engine 8.1.9 (Debian's gridengine-*): this host is master, execution,
# submit and admin host. Cluster queue all.q on host group @allhosts (slots
# = nproc, shell /bin/bash, no load thresholds) with the parallel environment
# smp ($pe_slots) attached, so `qsub -pe smp 2` runs. The scheduler runs every
# second and right after a submit or a job's end; accounting records are
# written at once, so `qacct -j ID` knows a job as soon as it has ended.
# sge_qmaster listens on port 6444, sge_execd on 6445 (all addresses: Grid
# Engine has no bind option).

sge_packages() { echo gridengine-master gridengine-exec gridengine-client; }

# _sge_env CMD...: run CMD with our cell, whatever root's environment says.
_sge_env() {
    env -u SGE_ND -u SGE_QMASTER_PORT -u SGE_EXECD_PORT -u SGE_ARCH \
        SGE_ROOT="$SGE_ROOT_DIR" SGE_CELL="$SGE_CELL_NAME" "$@"
}

# _sge NAME ARGS...: Grid Engine client NAME (qconf, qstat, qmod) with a 30 s
# timeout. Runs the binary in $SGE_LIB, not the /usr/bin wrapper script,
# which costs 60 ms a call working out the architecture.
_sge() {
    local name=$1
    shift
    _sge_env timeout 30 "$SGE_LIB/$name" "$@"
}

# _sge_host: this host's name as Grid Engine resolves it (what sge_qmaster
# and sge_execd call themselves); act_qmaster and the host lists must say it.
_sge_host() {
    local h
    h=$(_sge_env "$SGE_LIB/gethostname" -aname 2>/dev/null) || h=
    [[ -n $h ]] || h=$(short_hostname)
    echo "$h"
}

sge_qmaster_pid() { pid_of sge_qmaster "$SGE_QMASTER_PIDFILE" "$SGE_LIB/sge_qmaster"; }
sge_execd_pid() { pid_of sge_execd "$SGE_EXECD_SPOOL/$(_sge_host)/execd.pid" "$SGE_LIB/sge_execd"; }

sge_status() {
    if sge_qmaster_pid >/dev/null && sge_execd_pid >/dev/null; then echo running; else echo stopped; fi
}

# _sge_qconf ARGS...: qconf ARGS, its output appended to $SGE_LOG; dies on failure.
_sge_qconf() {
    printf '+ qconf %s\n' "$*" >>"$SGE_LOG"
    _sge qconf "$@" >>"$SGE_LOG" 2>&1 ||
        die "qconf $* failed" "$SGE_LOG" "$SGE_QMASTER_LOG"
}

# _sge_same A B: true if the texts A and B differ only in white space.
_sge_same() { [[ $(awk '{ $1 = $1; print }' <<<"$1") == "$(awk '{ $1 = $1; print }' <<<"$2")" ]]; }

# _sge_object KIND NAME FILE: make the Grid Engine object NAME read like FILE;
# KIND is qconf's letter(s) for it (hgrp, p, q: -sKIND/-AKIND/-MKIND). Adds it
# if missing, modifies it if it differs, else does nothing.
_sge_object() {
    local kind=$1 name=$2 file=$3 cur
    if cur=$(_sge qconf -s"$kind" "$name" 2>/dev/null); then
        _sge_same "$cur" "$(cat "$file")" && return 0
        log "grid engine: updating $name"
        _sge_qconf -M"$kind" "$file"
    else
        log "grid engine: adding $name"
        _sge_qconf -A"$kind" "$file"
    fi
}

# _sge_cell: the cell and its spool. gridengine-master's postinst makes them
# (init_cluster) unless debconf said not to configure; then we do it.
_sge_cell() {
    if [[ ! -s $SGE_COMMON/bootstrap ]]; then
        log "grid engine: creating cell $SGE_CELL_NAME in $SGE_ROOT_DIR"
        install -d -m 755 -o sgeadmin -g sgeadmin "$SGE_ROOT_DIR/$SGE_CELL_NAME" "$SGE_COMMON"
        install -m 644 -o sgeadmin -g sgeadmin /usr/share/gridengine/default-bootstrap "$SGE_COMMON/bootstrap"
    fi
    if [[ ! -e $SGE_SPOOL/spooldb/sge ]]; then
        log "grid engine: initialising the spool $SGE_SPOOL/spooldb"
        mkdir -p "$SGE_SPOOL"
        install -d -m 755 -o sgeadmin -g sgeadmin "$SGE_QMASTER_SPOOL" "$SGE_QMASTER_SPOOL/job_scripts" "$SGE_SPOOL/spooldb"
        runuser -u sgeadmin -- /usr/share/gridengine/scripts/init_cluster \
            "$SGE_ROOT_DIR" "$SGE_CELL_NAME" "$SGE_SPOOL/spooldb" sgeadmin >>"$SGE_LOG" 2>&1 ||
            die "grid engine: init_cluster failed" "$SGE_LOG"
    fi
    install -d -m 755 -o sgeadmin -g sgeadmin "$SGE_EXECD_SPOOL"
}

# _sge_global_conf: accounting records flushed at once (the default waits
# flush_time, 15 s), so qacct shows a job right after it ended.
_sge_global_conf() {
    local cur want='accounting=true reporting=false flush_time=00:00:15 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00'
    cur=$(_sge qconf -sconf global 2>>"$SGE_LOG") || die "qconf -sconf global failed" "$SGE_LOG"
    # one line per parameter: join the "\"-continued ones, drop the "#global:" title
    cur=$(awk '
        { sub(/\\$/, "") }
        NR == 1 && /^#/ { next }
        /^[^ \t]/ { if (l != "") print l; l = $0; next }
        { sub(/^[ \t]+/, " "); l = l $0 }
        END { if (l != "") print l }' <<<"$cur")
    _sge_same "$(awk '$1 == "reporting_params" { $1 = ""; print }' <<<"$cur")" "$want" && return 0
    mkdir -p "$SGE_DIR/conf" # qconf -Mconf takes the configuration's name from the file's
    awk -v w="$want" '$1 == "reporting_params" { $0 = "reporting_params " w } { print }' <<<"$cur" >"$SGE_DIR/conf/global"
    log "grid engine: global configuration: reporting_params $want"
    _sge_qconf -Mconf "$SGE_DIR/conf/global"
}

# _sge_sched_conf: a scheduling pass every second and 1 s after a submit or a
# job's end (the default waits up to 15 s).
_sge_sched_conf() {
    local cur
    cur=$(_sge qconf -ssconf 2>>"$SGE_LOG") || die "qconf -ssconf failed" "$SGE_LOG"
    awk '$1 == "schedule_interval" { $2 = "0:0:1" }
         $1 == "flush_submit_sec" || $1 == "flush_finish_sec" { $2 = "1" }
         { print }' <<<"$cur" >"$SGE_DIR/sched_conf"
    _sge_same "$cur" "$(cat "$SGE_DIR/sched_conf")" && return 0
    log "grid engine: scheduler: schedule_interval 0:0:1, flush_submit_sec/flush_finish_sec 1"
    _sge_qconf -Msconf "$SGE_DIR/sched_conf"
}

sge_up() {
    local host i tmpl
    host=$(_sge_host)
    mkdir -p "$SGE_DIR" "$LOG_DIR"
    _sge_cell
    # act_qmaster: the packages leave it empty (debconf asks for the master's name)
    if [[ $(cat "$SGE_ACT_QMASTER" 2>/dev/null) != "$host" ]]; then
        if { sge_qmaster_pid || sge_execd_pid; } >/dev/null; then
            log "grid engine: act_qmaster does not name $host: stopping sge_qmaster/sge_execd"
            sge_down
        fi
        log "grid engine: $SGE_ACT_QMASTER := $host"
        printf '%s\n' "$host" >"$SGE_ACT_QMASTER"
        chown sgeadmin:sgeadmin "$SGE_ACT_QMASTER"
        chmod 644 "$SGE_ACT_QMASTER"
    fi

    if ! sge_qmaster_pid >/dev/null; then
        log "starting sge_qmaster"
        (cd / && _sge_env "$SGE_LIB/sge_qmaster") >>"$SGE_LOG" 2>&1 9>&- ||
            die "sge_qmaster failed to start" "$SGE_LOG" "$SGE_QMASTER_LOG" /tmp/qmaster_messages
    fi
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        _sge qconf -sh >/dev/null 2>&1 && break
        sge_qmaster_pid >/dev/null || die "sge_qmaster exited" "$SGE_QMASTER_LOG" /tmp/qmaster_messages
        sleep 0.25
    done
    ((i < READY_TIMEOUT * 4)) || die "sge_qmaster does not answer qconf -sh after ${READY_TIMEOUT}s" "$SGE_QMASTER_LOG"

    _sge_global_conf
    _sge_sched_conf
    # the master is an admin host already; make it a submit host
    _sge qconf -ss 2>/dev/null | grep -qxF "$host" || _sge_qconf -as "$host"

    if ! sge_execd_pid >/dev/null; then
        log "starting sge_execd"
        (cd / && _sge_env "$SGE_LIB/sge_execd") >>"$SGE_LOG" 2>&1 9>&- ||
            die "sge_execd failed to start" "$SGE_LOG" "$SGE_EXECD_SPOOL/$host/messages" /tmp/execd_messages
    fi
    # a starting execd on an admin host registers it as execution host
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        _sge qconf -se "$host" >/dev/null 2>&1 && break
        sge_execd_pid >/dev/null || die "sge_execd exited" "$SGE_EXECD_SPOOL/$host/messages" /tmp/execd_messages
        sleep 0.25
    done
    ((i < READY_TIMEOUT * 4)) || die "sge_execd did not register $host as execution host after ${READY_TIMEOUT}s" \
        "$SGE_EXECD_SPOOL/$host/messages" "$SGE_QMASTER_LOG"

    printf 'group_name %s\nhostlist %s\n' "$SGE_HOSTGROUP" "$host" >"$SGE_DIR/hostgroup"
    _sge_object hgrp "$SGE_HOSTGROUP" "$SGE_DIR/hostgroup"
    cat >"$SGE_DIR/pe" <<EOF2
pe_name            $SGE_PE
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF2
    _sge_object p "$SGE_PE" "$SGE_DIR/pe"
    # the queue: Grid Engine's template (qconf -sq) with our values
    tmpl=$(_sge qconf -sq 2>>"$SGE_LOG") || die "qconf -sq (queue template) failed" "$SGE_LOG"
    awk -v q="$SGE_QUEUE" -v hg="$SGE_HOSTGROUP" -v pe="$SGE_PE" -v n="$(nproc)" '
        $1 == "qname"           { $0 = "qname " q }
        $1 == "hostlist"        { $0 = "hostlist " hg }
        $1 == "load_thresholds" { $0 = "load_thresholds NONE" }
        $1 == "pe_list"         { $0 = "pe_list " pe }
        $1 == "slots"           { $0 = "slots " n }
        $1 == "shell"           { $0 = "shell /bin/bash" }
        { print }' <<<"$tmpl" >"$SGE_DIR/queue"
    _sge_object q "$SGE_QUEUE" "$SGE_DIR/queue"
}

# The queue instance must be usable: no state flags (u = execd not heard of
# yet, E = error, d = disabled ...). E and d are cleared once. Then qstat must
# work for hpcuser with no Grid Engine environment.
sge_wait() {
    local host i line states="" fixed=0 out
    host=$(_sge_host)
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        line=$(_sge qstat -f -q "$SGE_QUEUE@$host" 2>/dev/null |
            awk -v q="$SGE_QUEUE@$host" '$1 == q { print "x", $6 }') || line=""
        if [[ -n $line ]]; then
            states=${line#x}
            states=${states# }
            case $states in
            "")
                out=$(user_run qstat 2>&1) && return 0
                die "qstat as $SSH_USER (no SGE_ROOT/SGE_CELL set) fails: $out" "$SGE_QMASTER_LOG"
                ;;
            *E* | *d*)
                if ((!fixed && i >= 8)); then
                    log "grid engine: queue $SGE_QUEUE@$host is in state $states: qmod -c, qmod -e"
                    _sge qmod -c "$SGE_QUEUE@$host" >>"$SGE_LOG" 2>&1 || true
                    _sge qmod -e "$SGE_QUEUE@$host" >>"$SGE_LOG" 2>&1 || true
                    fixed=1
                fi
                ;;
            esac
        fi
        sge_qmaster_pid >/dev/null || die "sge_qmaster died" "$SGE_QMASTER_LOG"
        sge_execd_pid >/dev/null || die "sge_execd died" "$SGE_EXECD_SPOOL/$host/messages"
        sleep 0.25
    done
    die "grid engine queue $SGE_QUEUE@$host not usable after ${READY_TIMEOUT}s (states: '${states:-no answer}')" \
        "$SGE_QMASTER_LOG" "$SGE_EXECD_SPOOL/$host/messages"
}

sge_down() {
    stop_daemon sge_execd "$SGE_EXECD_SPOOL/$(_sge_host)/execd.pid" "$SGE_LIB/sge_execd"
    stop_daemon sge_qmaster "$SGE_QMASTER_PIDFILE" "$SGE_LIB/sge_qmaster"
}

# ---------------------------------------------------------------- pbs
#
# PBS/Torque-style qsub, qstat, qdel (and qalter qhold qrls qrerun pbsnodes)
# on top of our Slurm: the Perl wrappers of Debian's slurm-wlm-torque, of the
# installed Slurm's version, fetched with apt-get download and unpacked with
# dpkg-deb -x into $PBS_ROOT -- never installed, as the package conflicts with
# gridengine-client (both own /usr/bin/qsub). $PBS_BIN holds copies of the
# wrappers and symlinks to the Slurm commands (qsub runs the sbatch next to
# itself). Only a PATH with $PBS_BIN first gets the PBS commands; /usr/bin/qsub
# stays Grid Engine's. Nothing runs: status follows Slurm's, down does nothing.

pbs_packages() { echo libslurm-perl libslurmdb-perl libswitch-perl; }

_pbs_version() { dpkg-query -W -f='${Version}' slurm-client 2>/dev/null; }

_pbs_installed() {
    local f
    [[ -s $PBS_STAMP && $(cat "$PBS_STAMP") == "$(_pbs_version)" ]] || return 1
    for f in "${PBS_WRAPPERS[@]}" "${PBS_SLURM_CMDS[@]}"; do
        [[ -x $PBS_BIN/$f ]] || return 1
    done
}

pbs_status() {
    if _pbs_installed && [[ $(slurm_status) == running ]]; then echo running; else echo stopped; fi
}

pbs_up() {
    local version dl deb f aptlog=$LOG_DIR/apt.log
    _pbs_installed && return 0
    version=$(_pbs_version)
    [[ -n $version ]] || die "slurm-client is not installed (the PBS wrappers run its commands)"
    for f in "${PBS_SLURM_CMDS[@]}"; do
        [[ -x /usr/bin/$f ]] || die "/usr/bin/$f is missing (the PBS wrappers need it)"
    done
    dl=$PBS_DIR/download
    rm -rf "$dl" "$PBS_ROOT.new" "$PBS_BIN.new"
    mkdir -p "$dl"
    chown _apt "$dl" 2>/dev/null || true # apt downloads as user _apt
    log "fetching slurm-wlm-torque $version (unpacked into $PBS_ROOT, not installed; log: $aptlog)"
    if ! (cd "$dl" && apt-get download -q "slurm-wlm-torque=$version") >>"$aptlog" 2>&1; then
        apt-get update -q >>"$aptlog" 2>&1 || true
        (cd "$dl" && apt-get download -q "slurm-wlm-torque=$version") >>"$aptlog" 2>&1 ||
            die "apt-get download slurm-wlm-torque=$version failed" "$aptlog"
    fi
    deb=$(find "$dl" -maxdepth 1 -name 'slurm-wlm-torque_*.deb' | head -n1)
    [[ -n $deb ]] || die "apt-get download slurm-wlm-torque=$version left no .deb in $dl" "$aptlog"
    dpkg-deb -x "$deb" "$PBS_ROOT.new" || die "dpkg-deb -x $deb failed"
    install -d -m 755 "$PBS_BIN.new"
    for f in "${PBS_WRAPPERS[@]}"; do
        [[ -f $PBS_ROOT.new/usr/bin/$f ]] || die "slurm-wlm-torque $version has no usr/bin/$f"
        install -m 755 "$PBS_ROOT.new/usr/bin/$f" "$PBS_BIN.new/$f"
    done
    for f in "${PBS_SLURM_CMDS[@]}"; do
        ln -s "/usr/bin/$f" "$PBS_BIN.new/$f"
    done
    rm -rf "$PBS_ROOT" "$PBS_BIN" "$dl"
    mv "$PBS_ROOT.new" "$PBS_ROOT"
    mv "$PBS_BIN.new" "$PBS_BIN"
    chmod -R a+rX "$PBS_DIR"
    printf '%s\n' "$version" >"$PBS_STAMP"
}

# The wrappers must load (Perl modules Slurm/Slurmdb) and reach slurmctld as
# hpcuser, with $PBS_BIN first on PATH.
pbs_wait() {
    local out
    # qstat -Q (queues), not plain qstat: the wrapper's job listing exits 153
    # when Slurm holds no job at all
    out=$(user_run "PATH=$PBS_BIN:\$PATH; qstat -Q >/dev/null && command -v qsub" 2>&1) &&
        [[ $out == "$PBS_BIN/qsub" ]] && return 0
    die "the PBS wrappers in $PBS_BIN fail for $SSH_USER: $out"
}

pbs_down() { :; }

# ---------------------------------------------------------------- lmod
#
# Lmod (package lmod) and a modulefiles directory $MODULEFILES_DIR owned by
# hpcuser for the tests to write into. `module` is a shell function: over a
# non-interactive ssh command (no profile read) source $LMOD_INIT_SH first --
# it is POSIX and works under dash, i.e. `sh -c`; $LMOD_INIT_BASH (bash's,
# what /etc/profile.d/lmod.sh picks for a bash login shell) works too.
# Nothing runs: status says whether it is usable, down does nothing.

lmod_packages() { echo lmod; }

lmod_status() {
    if [[ -r $LMOD_INIT_SH && -d $MODULEFILES_DIR ]]; then echo running; else echo stopped; fi
}

lmod_up() {
    [[ -r $LMOD_INIT_SH && -r $LMOD_INIT_BASH ]] ||
        die "package lmod has no $LMOD_INIT_SH or $LMOD_INIT_BASH"
    install -d -m 755 -o "$SSH_USER" -g "$(id -gn "$SSH_USER")" "$MODULEFILES_DIR"
}

# As hpcuser, under sh (dash) as hpcdo's remote commands run: source the init
# file, load a throw-away .lua modulefile, read the variable it sets.
lmod_wait() {
    local dir out
    dir=$(mktemp -d "$STATE_DIR/lmodcheck.XXXXXX")
    mkdir "$dir/hpcdocheck"
    printf 'setenv("HPCDO_LMOD_CHECK", "ok")\n' >"$dir/hpcdocheck/1.0.lua"
    chmod -R a+rX "$dir"
    out=$(user_run "sh -c '. $LMOD_INIT_SH && module use $dir && module load hpcdocheck/1.0 && echo \"\$HPCDO_LMOD_CHECK\"'" 2>&1) || true
    rm -rf "$dir"
    [[ ${out##*$'\n'} == ok ]] && return 0
    die "module load as $SSH_USER (sh -c '. $LMOD_INIT_SH; module ...') fails: $out"
}

lmod_down() { :; }

# the components in their own files (two-factor sshd, bastion ...), after the
# core ones; each appends itself to COMPONENTS
for _component in "$(dirname "${BASH_SOURCE[0]}")"/components/*.sh; do
    # shellcheck source=/dev/null
    if [[ -e $_component ]]; then . "$_component"; fi
done
unset _component
