#!/usr/bin/env python3
"""Writes realistic sshd or postfix syslog files for the watcher benchmarks.

    bench/genlog.py sshd 1000000 > auth.log
    bench/genlog.py postfix 1000000 > mail.log
    bench/genlog.py sshd 1000000 100000 > auth.log   # attackers from 100k addresses
    bench/genlog.py sshd-attackers 1000000 100000 > attack.log
    bench/genlog.py slapd 1000000 > slapd.log       # for the multi-line filter
    bench/genlog.py dovecot 1000000 > mail.log      # dovecot's IMAP/POP3 mix

Most lines are ordinary traffic (logins, sessions, cron, deliveries); a
minority are attacks from a pool of addresses. `sshd-attackers N` makes
every line a failure, spread over N distinct addresses (the many-attackers
case). Deterministic: the same arguments give the same file.
"""

import random
import sys

rng = random.Random(20261121)


def stamp(i):
    s = i % 86400
    return f"Nov 21 {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def addr(pool, i):
    a = (23 << 24) + (i % pool) * 7 + 1
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


USERS = ["root", "admin", "oracle", "test", "ubuntu", "git", "postgres", "user", "pi", "support"]


def sshd_line(i, pool=5000):
    r = rng.random()
    pid = 1000 + i % 50000
    ip = addr(pool, rng.randrange(1 << 30))
    p = rng.randrange(1024, 65535)
    u = rng.choice(USERS)
    if r < 0.05:
        return f"{stamp(i)} mx sshd[{pid}]: Failed password for invalid user {u} from {ip} port {p} ssh2"
    if r < 0.08:
        return f"{stamp(i)} mx sshd[{pid}]: Invalid user {u} from {ip} port {p}"
    if r < 0.25:
        return f"{stamp(i)} mx sshd[{pid}]: Accepted publickey for deploy from 10.0.{i % 256}.7 port {p} ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4cXV1eHl6enk"
    if r < 0.45:
        return f"{stamp(i)} mx sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"
    if r < 0.60:
        return f"{stamp(i)} mx sshd[{pid}]: pam_unix(sshd:session): session closed for user deploy"
    if r < 0.70:
        return f"{stamp(i)} mx sshd[{pid}]: Received disconnect from 10.0.{i % 256}.7 port {p}:11: disconnected by user"
    if r < 0.78:
        return f"{stamp(i)} mx sshd[{pid}]: Disconnected from user deploy 10.0.{i % 256}.7 port {p}"
    if r < 0.85:
        return f"{stamp(i)} mx sshd[{pid}]: Connection closed by {ip} port {p} [preauth]"
    if r < 0.93:
        return f"{stamp(i)} mx CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
    return f"{stamp(i)} mx systemd[1]: Started session-{i}.scope - Session {i} of User deploy."


def postfix_line(i):
    r = rng.random()
    pid = 2000 + i % 30000
    ip = addr(5000, rng.randrange(1 << 30))
    q = f"{rng.randrange(1 << 40):010X}"
    if r < 0.04:
        return f"{stamp(i)} mx postfix/smtpd[{pid}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
    if r < 0.07:
        return f"{stamp(i)} mx postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 auth=0/1 quit=1 commands=2/3"
    if r < 0.09:
        return f"{stamp(i)} mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <x@example.org>: Relay access denied; from=<a@b.example> to=<x@example.org> proto=ESMTP helo=<WIN-{pid}>"
    if r < 0.25:
        return f"{stamp(i)} mx postfix/smtpd[{pid}]: connect from mail-{i % 999}.example.net[198.51.100.{i % 250}]"
    if r < 0.40:
        return f"{stamp(i)} mx postfix/smtpd[{pid}]: {q}: client=mail-{i % 999}.example.net[198.51.100.{i % 250}]"
    if r < 0.55:
        return f"{stamp(i)} mx postfix/cleanup[{pid}]: {q}: message-id=<{q}@example.net>"
    if r < 0.70:
        return f"{stamp(i)} mx postfix/qmgr[{pid}]: {q}: from=<news@example.net>, size={rng.randrange(99999)}, nrcpt=1 (queue active)"
    if r < 0.85:
        return f"{stamp(i)} mx postfix/local[{pid}]: {q}: to=<bob@example.org>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered to mailbox)"
    return f"{stamp(i)} mx postfix/smtpd[{pid}]: disconnect from mail-{i % 999}.example.net[198.51.100.{i % 250}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"


def dovecot_line(i):
    """dovecot's log: logins, logouts, deliveries; about 7% failed
    authentications (login process and auth worker) and 3% clients that
    left before trying (what `mode = aggressive` counts)."""
    r = rng.random()
    pid = 3000 + i % 40000
    ip = addr(5000, rng.randrange(1 << 30))
    sess = f"{rng.randrange(1 << 60):015x}"
    u = rng.choice(USERS)
    proto = "imap" if i % 3 else "pop3"
    if r < 0.05:
        return (f"{stamp(i)} mx dovecot: {proto}-login: Disconnected (auth failed, 1 attempts in 2 secs): "
                f"user=<{u}>, method=PLAIN, rip={ip}, lip=192.0.2.25, TLS, session=<{sess}>")
    if r < 0.07:
        return (f"{stamp(i)} mx dovecot: auth-worker({pid}): pam({u},{ip},<{sess}>): "
                f"pam_authenticate() failed: Authentication failure (password mismatch?)")
    if r < 0.10:
        return (f"{stamp(i)} mx dovecot: {proto}-login: Disconnected (no auth attempts in 0 secs): "
                f"user=<>, rip={ip}, lip=192.0.2.25, session=<{sess}>")
    if r < 0.35:
        return (f"{stamp(i)} mx dovecot: {proto}-login: Login: user=<deploy>, method=PLAIN, "
                f"rip=10.0.{i % 256}.7, lip=192.0.2.25, mpid={pid}, TLS, session=<{sess}>")
    if r < 0.60:
        return (f"{stamp(i)} mx dovecot: {proto}(deploy)<{pid}><{sess}>: Disconnected: Logged out "
                f"in={rng.randrange(9999)} out={rng.randrange(99999)} deleted=0 expunged=0 trashed=0 "
                f"hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0")
    if r < 0.80:
        return (f"{stamp(i)} mx dovecot: lmtp({pid}): Connect from local")
    return (f"{stamp(i)} mx dovecot: lmtp(deploy)<{pid}><{sess}>: msgid=<{sess}@example.net>: "
            f"saved mail to INBOX")


class Slapd:
    """OpenLDAP's log: about 30 connections open at once, their lines
    interleaved; a wrong password is a `RESULT ... err=49` line whose
    address only the connection's `ACCEPT` line, some lines earlier, names
    (what fail2ban's slapd filter needs `maxlines` and `<SKIPLINES>` for)."""

    def __init__(self):
        self.conn = 1000

    def line(self, i):
        r = rng.random()
        c = rng.randint(self.conn - 30, self.conn)
        head = f"{stamp(i)} ldap slapd[1183]: conn={c}"
        if r < 0.05:
            self.conn += 1
            c = self.conn
            return (f"{stamp(i)} ldap slapd[1183]: conn={c} fd={c % 900} ACCEPT from "
                    f"IP={addr(5000, c)}:{1024 + c % 60000} (IP=0.0.0.0:636)")
        if r < 0.07:
            return f"{head} op=1 RESULT tag=97 err=49 text="
        if r < 0.12:
            return f"{head} op=1 BIND dn=\"uid=u{i % 997},ou=people,dc=example,dc=com\" method=128"
        if r < 0.20:
            return f"{head} op=1 RESULT tag=97 err=0 text="
        if r < 0.25:
            return f"{head} op=2 UNBIND"
        return (f"{head} op=2 SRCH base=\"dc=example,dc=com\" scope=2 deref=0 "
                f"filter=\"(uid=u{i % 997})\"")


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    if kind == "sshd":
        pool = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
        lines = (sshd_line(i, pool) for i in range(n))
    elif kind == "postfix":
        lines = (postfix_line(i) for i in range(n))
    elif kind == "sshd-attackers":
        pool = int(sys.argv[3])
        lines = (
            f"{stamp(i)} mx sshd[{1000 + i % 50000}]: Failed password for invalid user admin from {addr(pool, i)} port {1024 + i % 60000} ssh2"
            for i in range(n)
        )
    elif kind == "dovecot":
        lines = (dovecot_line(i) for i in range(n))
    elif kind == "slapd":
        slapd = Slapd()
        lines = (slapd.line(i) for i in range(n))
    else:
        sys.exit(f"genlog: unknown kind {kind!r} (sshd, postfix, dovecot, sshd-attackers, slapd)")
    buf = []
    for line in lines:
        buf.append(line)
        if len(buf) == 10000:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    main()
