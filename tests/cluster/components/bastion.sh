# shellcheck shell=bash
# Component "bastion" of the hpcdo test cluster (sourced by lib.sh): a login
# node reachable only through a jump host, as many sites are (a gateway in
# front of the cluster).
#
# Both sshds run in a network namespace of their own, $BASTION_NS:
#   bastion  $BASTION_HOST:$BASTION_PORT  on a veth pair whose other end
#            ($BASTION_GW, in the host's namespace) is how the host reaches it;
#            it forwards to the target and nowhere else (PermitOpen)
#   target   $BEHIND_HOST:$BEHIND_PORT    on the namespace's own loopback: from the
#            host, that address is the host's loopback, where nothing listens, so
#            the direct path is refused; only a connection through the bastion
#            gets there
# Same user hpcuser, same client key, host keys of their own, both in
# $BASTION_KNOWN_HOSTS (names as a client sees them: [$BASTION_HOST]:$BASTION_PORT
# and [$BEHIND_HOST]:$BEHIND_PORT).
#
# The target is the same computer: its commands see the same files, the same
# munge socket and the same Slurm. Inside the namespace, the host's name
# resolves to $BASTION_GW (through /etc/netns/$BASTION_NS/hosts, which
# `ip netns exec` mounts over /etc/hosts for the daemons it starts; the one
# file written outside $STATE_DIR), so sbatch/squeue/scancel reach the host's
# slurmctld, which listens on every address.
#
# $BASTION_SSH_CONFIG is an ssh_config for OpenSSH clients (`ssh -F`): aliases
# hpcdo-bastion and hpcdo-behind (ProxyJump hpcdo-bastion), strict host key
# checking with $BASTION_KNOWN_HOSTS. The sshd on 2222 is not touched.

BASTION_NS=hpcdo-bastion
BASTION_VETH=hpcdo-bst0      # the host's end of the veth pair
BASTION_VETH_NS=hpcdo-bst1   # the namespace's end
BASTION_GW=10.231.0.1        # the host's address on the pair
BASTION_HOST=10.231.0.2      # the bastion's
BASTION_PORT=2230
BEHIND_HOST=127.0.0.1        # the target, as the bastion reaches it
BEHIND_PORT=2231
BASTION_DIR=$STATE_DIR/bastion
BASTION_CONFIG=$BASTION_DIR/sshd_config_bastion
BEHIND_CONFIG=$BASTION_DIR/sshd_config_target
BASTION_HOSTKEY=$BASTION_DIR/bastion_host_ed25519_key
BEHIND_HOSTKEY=$BASTION_DIR/target_host_ed25519_key
BASTION_PIDFILE=$RUN_DIR/sshd-bastion.pid
BEHIND_PIDFILE=$RUN_DIR/sshd-behind.pid
BASTION_LOG=$LOG_DIR/sshd-bastion.log
BEHIND_LOG=$LOG_DIR/sshd-behind.log
BASTION_KNOWN_HOSTS=$BASTION_DIR/known_hosts
BASTION_SSH_CONFIG=$BASTION_DIR/ssh_config
BASTION_HOSTS_FILE=/etc/netns/$BASTION_NS/hosts

bastion_packages() { echo iproute2 openssh-server openssh-client; }

bastion_pid() { pid_of sshd "$BASTION_PIDFILE" "-f $BASTION_CONFIG"; }
behind_pid() { pid_of sshd "$BEHIND_PIDFILE" "-f $BEHIND_CONFIG"; }

bastion_status() {
    if bastion_pid >/dev/null && behind_pid >/dev/null; then echo running; else echo stopped; fi
}

_bastion_ns() { ip netns exec "$BASTION_NS" "$@"; }

# _bastion_net: the namespace, its loopback, the veth pair and its addresses (idempotent)
_bastion_net() {
    ip netns list | awk '{print $1}' | grep -qxF "$BASTION_NS" || ip netns add "$BASTION_NS" ||
        die "ip netns add $BASTION_NS failed (the bastion needs network namespaces: CAP_SYS_ADMIN, CAP_NET_ADMIN)"
    ip -n "$BASTION_NS" link set lo up
    if ! ip link show "$BASTION_VETH" >/dev/null 2>&1; then
        ip link add "$BASTION_VETH" type veth peer name "$BASTION_VETH_NS" netns "$BASTION_NS" ||
            die "ip link add $BASTION_VETH type veth failed"
    fi
    ip addr replace "$BASTION_GW/30" dev "$BASTION_VETH"
    ip link set "$BASTION_VETH" up
    ip -n "$BASTION_NS" addr replace "$BASTION_HOST/30" dev "$BASTION_VETH_NS"
    ip -n "$BASTION_NS" link set "$BASTION_VETH_NS" up
    mkdir -p "$(dirname "$BASTION_HOSTS_FILE")"
    printf '# hpcdo test cluster (tests/cluster/components/bastion.sh): /etc/hosts inside %s\n%s %s\n127.0.0.1 localhost\n' \
        "$BASTION_NS" "$BASTION_GW" "$(short_hostname)" >"$BASTION_HOSTS_FILE"
}

# _bastion_sshd_config FILE PORT ADDRESS HOSTKEY PIDFILE EXTRA...: write an sshd_config; 0 if it changed
_bastion_sshd_config() {
    local file=$1 port=$2 addr=$3 key=$4 pidfile=$5 tmp=$1.tmp
    shift 5
    {
        cat <<EOF
# sshd of the hpcdo test cluster's bastion component (tests/cluster/components/bastion.sh)
Port $port
ListenAddress $addr
HostKey $key
PidFile $pidfile
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowUsers $SSH_USER
MaxSessions 50
MaxStartups 50:30:100
X11Forwarding no
PrintMotd no
LogLevel INFO
EOF
        printf '%s\n' "$@"
    } >"$tmp"
    install_if_changed "$tmp" "$file"
}

_bastion_client_config() {
    local tmp=$BASTION_SSH_CONFIG.tmp
    cat >"$tmp" <<EOF
# OpenSSH client config for the bastion component (ssh -F $BASTION_SSH_CONFIG hpcdo-behind)
Host hpcdo-bastion
  HostName $BASTION_HOST
  Port $BASTION_PORT
Host hpcdo-behind
  HostName $BEHIND_HOST
  Port $BEHIND_PORT
  ProxyJump hpcdo-bastion
Host *
  User $SSH_USER
  IdentityFile $CLIENT_KEY
  IdentitiesOnly yes
  UserKnownHostsFile $BASTION_KNOWN_HOSTS
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
EOF
    chmod 644 "$tmp"
    install_if_changed "$tmp" "$BASTION_SSH_CONFIG" || true
}

# _bastion_start NAME CONFIG LOG PIDFILE CHANGED: start (or restart, if its config CHANGED) one sshd in the namespace
_bastion_start() {
    local name=$1 config=$2 logf=$3 pidfile=$4 changed=$5
    if pid_of sshd "$pidfile" "-f $config" >/dev/null; then
        ((changed)) || return 0
        log "the $name sshd_config changed: restarting it"
        stop_daemon sshd "$pidfile" "-f $config"
    fi
    /usr/sbin/sshd -t -f "$config" 2>>"$logf" || die "sshd -t rejects $config" "$logf"
    log "starting the $name sshd in network namespace $BASTION_NS"
    _bastion_ns /usr/sbin/sshd -f "$config" -E "$logf" 9>&- || die "the $name sshd failed to start" "$logf"
}

bastion_up() {
    local c1=0 c2=0 f
    mkdir -p "$BASTION_DIR" "$RUN_DIR" "$LOG_DIR" /run/sshd
    chmod 755 "$BASTION_DIR"
    for f in "$BASTION_HOSTKEY" "$BEHIND_HOSTKEY"; do
        [[ -s $f && -s $f.pub ]] ||
            { rm -f "$f" "$f.pub"; ssh-keygen -q -t ed25519 -N '' -C "hpcdo-testcluster-$(basename "$f")" -f "$f"; }
        chmod 600 "$f"
    done
    _bastion_net
    # the bastion forwards to the target and nowhere else
    _bastion_sshd_config "$BASTION_CONFIG" "$BASTION_PORT" "$BASTION_HOST" "$BASTION_HOSTKEY" \
        "$BASTION_PIDFILE" "AllowTcpForwarding yes" "PermitOpen $BEHIND_HOST:$BEHIND_PORT" && c1=1
    _bastion_sshd_config "$BEHIND_CONFIG" "$BEHIND_PORT" "$BEHIND_HOST" "$BEHIND_HOSTKEY" \
        "$BEHIND_PIDFILE" "AllowTcpForwarding no" "Subsystem sftp internal-sftp" && c2=1
    _bastion_client_config
    # ssh_up wrote hpcuser's authorized_keys (same client key)
    _bastion_start bastion "$BASTION_CONFIG" "$BASTION_LOG" "$BASTION_PIDFILE" "$c1"
    _bastion_start target "$BEHIND_CONFIG" "$BEHIND_LOG" "$BEHIND_PIDFILE" "$c2"
}

# _bastion_known_hosts: the two host keys under the names a client uses, from
# the running daemons (the target's scanned inside the namespace)
_bastion_known_hosts() {
    local i tmp=$BASTION_KNOWN_HOSTS.tmp a b
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        a=$(ssh-keyscan -T 2 -t ed25519 -p "$BASTION_PORT" "$BASTION_HOST" 2>/dev/null) || a=
        b=$(_bastion_ns ssh-keyscan -T 2 -t ed25519 -p "$BEHIND_PORT" "$BEHIND_HOST" 2>/dev/null) || b=
        if [[ $(awk '{print $2" "$3}' <<<"$a") == "$(awk '{print $1" "$2}' "$BASTION_HOSTKEY.pub")" &&
            $(awk '{print $2" "$3}' <<<"$b") == "$(awk '{print $1" "$2}' "$BEHIND_HOSTKEY.pub")" ]]; then
            printf '%s\n%s\n' "$a" "$b" >"$tmp"
            chmod 644 "$tmp"
            install_if_changed "$tmp" "$BASTION_KNOWN_HOSTS" || true
            return 0
        fi
        sleep 0.25
    done
    die "ssh-keyscan did not return the bastion's and the target's host keys" "$BASTION_LOG" "$BEHIND_LOG"
}

bastion_wait() {
    local i out
    bastion_pid >/dev/null || die "the bastion sshd is not running" "$BASTION_LOG"
    behind_pid >/dev/null || die "the target sshd (behind the bastion) is not running" "$BEHIND_LOG"
    _bastion_known_hosts
    # the direct path must fail: the target is reachable through the bastion only
    if (exec 3<>"/dev/tcp/$BEHIND_HOST/$BEHIND_PORT") 2>/dev/null; then
        die "$BEHIND_HOST:$BEHIND_PORT answers from the host itself: the target must be reachable only through the bastion"
    fi
    # through the bastion: a login, and Slurm's commands work on the target
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        out=$(ssh -F "$BASTION_SSH_CONFIG" -n hpcdo-behind 'squeue -h -u nobody >/dev/null && echo ok' 2>&1) &&
            [[ $out == ok ]] && return 0
        sleep 0.25
    done
    die "ssh through the bastion to the target, then squeue there, fails: $out" "$BASTION_LOG" "$BEHIND_LOG"
}

bastion_down() {
    stop_daemon sshd "$BEHIND_PIDFILE" "-f $BEHIND_CONFIG"
    stop_daemon sshd "$BASTION_PIDFILE" "-f $BASTION_CONFIG"
    ip link del "$BASTION_VETH" 2>/dev/null || true
    if ip netns list | awk '{print $1}' | grep -qxF "$BASTION_NS"; then ip netns del "$BASTION_NS"; fi
    rm -rf "$(dirname "$BASTION_HOSTS_FILE")"
}

bastion_env() {
    printf 'HPCDO_BASTION_HOST=%q\n' "$BASTION_HOST"
    printf 'HPCDO_BASTION_PORT=%q\n' "$BASTION_PORT"
    printf 'HPCDO_BEHIND_HOST=%q\n' "$BEHIND_HOST"
    printf 'HPCDO_BEHIND_PORT=%q\n' "$BEHIND_PORT"
    printf 'HPCDO_BASTION_KNOWN_HOSTS=%q\n' "$BASTION_KNOWN_HOSTS"
    printf 'HPCDO_BASTION_SSH_CONFIG=%q\n' "$BASTION_SSH_CONFIG"
}

COMPONENTS+=(bastion)
