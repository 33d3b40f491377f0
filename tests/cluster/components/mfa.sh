# shellcheck shell=bash
# Component "mfa" of the hpcdo test cluster (sourced by lib.sh): a second,
# two-factor sshd on 127.0.0.1:2223 for the same user hpcuser, as ARCHER2-like
# sites run it: `AuthenticationMethods publickey,keyboard-interactive`, the
# second factor a TOTP code asked through PAM by Debian's pam_oath.
#
# The sshd on 2222 is not touched. This one is /usr/sbin/sshd started through
# a symlink named hpcdo-mfa-sshd: OpenSSH names its PAM service after its
# program name, so it reads /etc/pam.d/hpcdo-mfa-sshd (written here, the one
# file outside $STATE_DIR) and no other sshd's PAM stack changes.
#
# The TOTP secret (hex) is in $MFA_SECRET, pam_oath's user file (which also
# records the last code used: a code is taken once, so a test waits for the
# next 30 s step) in $MFA_USERS; both root's only. Codes:
#   oathtool --totp - <"$HPCDO_MFA_SECRET"
# (the secret on stdin, not on a command line).

MFA_HOST=$SSH_HOST
MFA_PORT=2223
MFA_DIR=$STATE_DIR/mfa
MFA_PROG=hpcdo-mfa-sshd                  # the program's name: its PAM service, its /proc comm
MFA_SSHD=$MFA_DIR/$MFA_PROG              # symlink to /usr/sbin/sshd
MFA_PAM_FILE=/etc/pam.d/$MFA_PROG
MFA_CONFIG=$MFA_DIR/sshd_config
MFA_HOSTKEY=$MFA_DIR/ssh_host_ed25519_key
MFA_PIDFILE=$RUN_DIR/sshd-mfa.pid
MFA_LOG=$LOG_DIR/sshd-mfa.log
MFA_USERS=$MFA_DIR/users.oath
MFA_SECRET=$MFA_DIR/totp.secret
MFA_ASKPASS=$MFA_DIR/askpass             # prints the current code (for mfa_wait's own login)
MFA_KNOWN_HOSTS=$STATE_DIR/known_hosts_mfa
MFA_STARTED=0

mfa_packages() { echo libpam-oath oathtool; }

mfa_pid() { pid_of "$MFA_PROG" "$MFA_PIDFILE" "-f $MFA_CONFIG"; }

mfa_status() { if mfa_pid >/dev/null; then echo running; else echo stopped; fi; }

_mfa_write_files() {
    local changed=0 tmp
    # secret and pam_oath's user file: made once (the user file is rewritten by
    # pam_oath with the last code used, so it is never overwritten here)
    if [[ ! -s $MFA_SECRET ]]; then
        (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$MFA_SECRET")
        rm -f "$MFA_USERS"
    fi
    chmod 600 "$MFA_SECRET"
    if [[ ! -s $MFA_USERS ]]; then
        (umask 077 && printf 'HOTP/T30/6\t%s\t-\t%s\n' "$SSH_USER" "$(cat "$MFA_SECRET")" >"$MFA_USERS")
    fi
    chmod 600 "$MFA_USERS"
    printf '#!/bin/sh\nexec oathtool --totp - <%q\n' "$MFA_SECRET" >"$MFA_ASKPASS"
    chmod 700 "$MFA_ASKPASS"
    ln -sfn /usr/sbin/sshd "$MFA_SSHD"

    tmp=$MFA_PAM_FILE.tmp
    cat >"$tmp" <<EOF
# PAM service of the hpcdo test cluster's two-factor sshd ($MFA_PROG on
# $MFA_HOST:$MFA_PORT, tests/cluster/components/mfa.sh); no other sshd reads it
auth     required pam_oath.so usersfile=$MFA_USERS window=1 digits=6
account  required pam_unix.so
session  required pam_permit.so
password required pam_deny.so
EOF
    install_if_changed "$tmp" "$MFA_PAM_FILE" && changed=1
    chmod 644 "$MFA_PAM_FILE"

    tmp=$MFA_CONFIG.tmp
    cat >"$tmp" <<EOF
# two-factor sshd of the hpcdo test cluster (tests/cluster/components/mfa.sh)
Port $MFA_PORT
ListenAddress $MFA_HOST
HostKey $MFA_HOSTKEY
PidFile $MFA_PIDFILE
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication yes
AuthenticationMethods publickey,keyboard-interactive
UsePAM yes
PermitRootLogin no
AllowUsers $SSH_USER
Subsystem sftp internal-sftp
MaxSessions 50
MaxStartups 50:30:100
X11Forwarding no
PrintMotd no
LogLevel INFO
EOF
    install_if_changed "$tmp" "$MFA_CONFIG" && changed=1
    ((changed))
}

mfa_up() {
    local changed=0
    mkdir -p "$MFA_DIR" "$RUN_DIR" "$LOG_DIR" /run/sshd
    chmod 700 "$MFA_DIR"
    chmod 755 /run/sshd
    [[ -s $MFA_HOSTKEY && -s $MFA_HOSTKEY.pub ]] ||
        { rm -f "$MFA_HOSTKEY" "$MFA_HOSTKEY.pub"; ssh-keygen -q -t ed25519 -N '' -C "hpcdo-testcluster-mfa-host" -f "$MFA_HOSTKEY"; }
    chmod 600 "$MFA_HOSTKEY"
    _mfa_write_files && changed=1
    # hpcuser's authorized_keys holds the cluster's client key already (ssh_up)
    if mfa_pid >/dev/null; then
        ((changed)) || return 0
        log "two-factor sshd configuration changed: restarting it"
        stop_daemon "$MFA_PROG" "$MFA_PIDFILE" "-f $MFA_CONFIG"
    fi
    "$MFA_SSHD" -t -f "$MFA_CONFIG" 2>>"$MFA_LOG" || die "sshd -t rejects $MFA_CONFIG" "$MFA_LOG"
    log "starting the two-factor sshd on $MFA_HOST:$MFA_PORT"
    "$MFA_SSHD" -f "$MFA_CONFIG" -E "$MFA_LOG" 9>&- || die "the two-factor sshd failed to start" "$MFA_LOG"
    MFA_STARTED=1
}

# known_hosts for [127.0.0.1]:2223, from ssh-keyscan, kept while it holds our key
_mfa_known_hosts() {
    scan_known_hosts "$MFA_HOSTKEY.pub" "$MFA_KNOWN_HOSTS" "$MFA_HOST" "$MFA_PORT" mfa_pid "$MFA_LOG" \
        "the two-factor sshd's host key"
}

# _mfa_ssh OPTION...: OpenSSH to the two-factor sshd with the cluster's key, host key checked
_mfa_ssh() {
    ssh -F /dev/null -n -i "$CLIENT_KEY" -o IdentitiesOnly=yes \
        -o UserKnownHostsFile="$MFA_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -p "$MFA_PORT" "$@" "$SSH_USER@$MFA_HOST" true
}

# Ready when the key is taken as the first factor and a code is asked for next
# (no code spent). Just started: also one whole login with a code, then a wait
# for the next 30 s step, so that a test's first code is not a replay.
mfa_wait() {
    local i out=
    sleep 0.1
    mfa_pid >/dev/null || die "the two-factor sshd exited right after its start (port $MFA_PORT taken?)" "$MFA_LOG"
    _mfa_known_hosts
    for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
        out=$(_mfa_ssh -o BatchMode=yes 2>&1) && die "the two-factor sshd let a key alone in" "$MFA_LOG"
        [[ $out == *"Permission denied (keyboard-interactive)"* ]] && break
        mfa_pid >/dev/null || break
        sleep 0.25
    done
    [[ $out == *"Permission denied (keyboard-interactive)"* ]] ||
        die "the two-factor sshd does not ask for a code after the key: $out" "$MFA_LOG"
    ((MFA_STARTED)) || return 0
    out=$(SSH_ASKPASS=$MFA_ASKPASS SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        _mfa_ssh -o BatchMode=no -o NumberOfPasswordPrompts=1 -o PreferredAuthentications=publickey,keyboard-interactive \
        </dev/null 2>&1 9>&-) ||
        die "login with the key and a TOTP code fails on the two-factor sshd: $out" "$MFA_LOG"
    sleep $((30 - $(date +%s) % 30))
}

mfa_down() { stop_daemon "$MFA_PROG" "$MFA_PIDFILE" "-f $MFA_CONFIG"; }

mfa_env() {
    printf 'HPCDO_MFA_HOST=%q\n' "$MFA_HOST"
    printf 'HPCDO_MFA_PORT=%q\n' "$MFA_PORT"
    printf 'HPCDO_MFA_KNOWN_HOSTS=%q\n' "$MFA_KNOWN_HOSTS"
    printf 'HPCDO_MFA_SECRET=%q\n' "$MFA_SECRET"
}

COMPONENTS+=(mfa)
