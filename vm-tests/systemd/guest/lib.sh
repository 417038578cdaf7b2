#!/usr/bin/env bash
# The helpers a scenario sources inside the guest:
#     . "$VM_SHARE/lib.sh"
# The harness sets VM_BOOT (1, 2, ... across reboots), VM_SHARE (the host's
# share, /mnt/host) and VM_MODE (nspawn or qemu). A scenario reports each
# check with `pass NAME` or `fail NAME WHY` (or `check NAME COMMAND...`);
# the host counts those lines. A scenario that wants another boot calls
# `reboot_next` and branches on $VM_BOOT when it runs again.

: "${VM_SHARE:=/mnt/host}" "${VM_BOOT:=1}" "${VM_MODE:=unknown}"

pass() {
    echo "PASS $1" | tee -a "$VM_SHARE/results"
}

fail() {
    local name=$1
    shift
    echo "FAIL $name: $*" | tee -a "$VM_SHARE/results"
}

# check NAME COMMAND...: PASS if COMMAND succeeds, else FAIL with the last
# lines of its output.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$name"
    else
        fail "$name" "$(printf '%s\n' "$out" | tail -n 5 | tr '\n' ' ')"
        return 1
    fi
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it
# succeeds (0) or SECONDS have passed (1). Never a fixed sleep in a check.
# Under qemu (software emulation on a busy host: everything 10-50 times
# slower) every bound is 5 times longer.
wait_until() {
    local limit=$1
    shift
    [ "$VM_MODE" != qemu ] || limit=$((limit * 5))
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Boot again after this run of the scenario; the next run sees VM_BOOT+1.
reboot_next() {
    touch "$VM_SHARE/reboot-requested"
}

# The release binary, the shipped unit unchanged and the shipped config
# files, where `banset install` and the unit expect them. Files already in
# place from an earlier boot are overwritten with the same bytes.
install_banset() {
    install -m 0755 "$VM_SHARE/banset" /usr/local/bin/banset
    install -m 0644 "$VM_SHARE/contrib/systemd/banset.service" /etc/systemd/system/banset.service
    install -d -m 0755 /etc/banset /usr/local/libexec/banset
    install -m 0755 "$VM_SHARE/contrib/notify/mail-on-ban" /usr/local/libexec/banset/mail-on-ban
    systemctl daemon-reload
}

# nft_members SET: the addresses of banset's nftables set SET (its _v4 and
# _v6 halves), one a line, read with `nft -j`: the kernel's own listing,
# independent of banset.
nft_members() {
    local fam
    for fam in v4 v6; do
        nft -j list set inet banset "$1_$fam" 2>/dev/null |
            jq -r '.nftables[] | select(.set) | .set.elem // [] | .[] |
                   if type == "object" then .elem.val else . end'
    done
}

# nft_expires SET ADDRESS: seconds left on ADDRESS in SET, per the kernel.
nft_expires() {
    local fam=v4
    case $2 in *:*) fam=v6 ;; esac
    nft -j list set inet banset "$1_$fam" 2>/dev/null |
        jq -r --arg a "$2" '.nftables[] | select(.set) | .set.elem // [] | .[] |
               select(type == "object" and .elem.val == $a) | .elem.expires'
}

# has_member SET ADDRESS: whether the kernel's set holds ADDRESS.
has_member() {
    nft_members "$1" | grep -qxF "$2"
}

# banset_pid: banset.service's main process once it is banset itself: a
# Type=simple unit is active as soon as systemd forked, before the child
# dropped its capabilities and exec'd (its /proc shows systemd's then).
banset_pid() {
    local pid
    pid=$(systemctl show -p MainPID --value banset.service)
    [ "${pid:-0}" -gt 0 ] && [ "$(readlink "/proc/$pid/exe")" = /usr/local/bin/banset ] &&
        echo "$pid"
}

# followers_ready N: the daemon has N `journalctl --follow` children with
# the journal open, so what is logged from now on is theirs to read. (The
# daemon also runs short journalctl probes and catch-ups, without
# --follow; they read nothing new.)
followers_ready() {
    local pid n=0 child fd
    pid=$(banset_pid) || return 1
    for child in $(pgrep -P "$pid" -x journalctl); do
        tr '\0' '\n' < "/proc/$child/cmdline" 2>/dev/null | grep -qx -- --follow || continue
        for fd in /proc/"$child"/fd/*; do
            case $(readlink "$fd") in
                /var/log/journal/* | /run/log/journal/*) n=$((n + 1)); break ;;
            esac
        done
    done
    [ "$n" -ge "${1:-1}" ]
}
