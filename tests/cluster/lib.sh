# shellcheck shell=bash
# Shared code of tests/cluster/up and tests/cluster/down: a one-machine test
# cluster (private sshd on 127.0.0.1:2222 for user hpcuser, munge, one-node
# Slurm). Sourced, not executed.
#
# Every component is a set of bash functions named <component>_<verb>:
#   <component>_packages   Debian packages it needs (printed, one per word)
#   <component>_up         configure + start it if not running (idempotent)
#   <component>_wait       block until it works, or die naming what failed
#   <component>_down       stop what _up started (idempotent)
#   <component>_status     print one word: running | stopped
# COMPONENTS lists them in start order; down walks it backwards. To add a
# scheduler (Grid Engine, PBS-on-Slurm, Lmod ...) write those five functions
# and append its name to COMPONENTS.
#
# All state lives in $HPCDO_CLUSTER_DIR (default /var/lib/hpcdo-testcluster),
# never in a checkout. The only things written outside it are: the hpcuser
# account and its ~/.ssh/authorized_keys, the /etc/slurm/slurm.conf symlink
# (so client commands run over ssh find the config), /run/sshd (sshd's
# privilege separation dir), and, if needed, a "127.0.0.1 <host> localhost"
# line at the top of /etc/hosts.

# shellcheck disable=SC2034 # used by up and down
COMPONENTS=(ssh munge slurm)

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

# known_hosts for [127.0.0.1]:2222, taken with ssh-keyscan from the running
# sshd; rescanned only if it does not hold our host key.
_ssh_known_hosts() {
    local want i tmp=$KNOWN_HOSTS.tmp
    want=$(awk '{print $1" "$2}' "$SSHD_HOSTKEY.pub")
    if [[ -s $KNOWN_HOSTS ]] &&
        [[ $(awk '{print $2" "$3}' "$KNOWN_HOSTS") == "$want" ]] &&
        grep -q "^\[$SSH_HOST\]:$SSH_PORT " "$KNOWN_HOSTS"; then
        return 0
    fi
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        if ssh-keyscan -T 2 -t ed25519 -p "$SSH_PORT" "$SSH_HOST" >"$tmp" 2>/dev/null &&
            [[ $(awk '{print $2" "$3}' "$tmp") == "$want" ]]; then
            chmod 644 "$tmp"
            mv -f "$tmp" "$KNOWN_HOSTS"
            return 0
        fi
        ssh_pid >/dev/null || break
        sleep 0.25
    done
    rm -f "$tmp"
    die "ssh-keyscan -p $SSH_PORT $SSH_HOST did not return our host key (sshd $(ssh_status))" "$SSHD_LOG"
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
