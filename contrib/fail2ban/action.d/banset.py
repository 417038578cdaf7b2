# Fail2Ban action in Python: ban in the kernel's firewall sets with banset,
# without forking a process per ban.
#
#   banaction = banset.py
#   banaction_allports = banset.py[type=allports]
#   action = banset.py[port="smtp,465,submission", protocol=tcp, blocktype=drop]
#
# Install: copy this file to /etc/fail2ban/action.d/ (banset install and the
# packages do). Options, per jail as banset.py[key=value, ...]:
#
#   setname      the set (default f2b-<jail>)
#   type         multiport (the jail's port and protocol) or allports
#   port, protocol, blocktype   as for the shell action banset.conf
#   onstop       keep (default): bans outlive a stop or restart of
#                fail2ban; remove: stopping fail2ban empties the set
#   banset       the banset program (default /usr/local/bin/banset)
#   banset_args  global options for it, e.g. "--state-dir /var/lib/banset"
#   socket       the daemon's control socket (default /run/banset/control.sock)
#   timeout      seconds to wait for banset's answer (default 10)
#
# One connection for the life of the jail: the daemon's control socket when
# "banset watch" runs, else one long-lived "banset control --stdio" child.
# Both speak banset's control protocol (docs/control-protocol.md): one JSON
# request a line, one reply line each, in order.
#
# Bans do not wait: fail2ban hands them over one ticket at a time, and a
# worker thread sends whatever piled up meanwhile as one "ban" request per
# (ban start, length), so "banip" with 1,000 addresses is a few requests,
# not 1,000 processes. A refused ban reaches fail2ban's log with banset's
# one-line reason. Unbans and flushes wait for banset's answer (bounded by
# `timeout`), so "unbanip" and "unban --all" are done in the kernel when
# fail2ban-client returns, and a failure is fail2ban's error.
#
# A banset that is down or hung never makes fail2ban hang: every wait is
# bounded by `timeout`, a hung connection is dropped (its child killed) and
# the next request opens a new one.

import json
import os
import shlex
import socket
import subprocess
import threading
import time

from fail2ban.server.action import ActionBase

# A request line may be at most 65,536 bytes (the protocol's limit); a batch
# stays well below it.
MAX_LINE = 60000
# Bans waiting for banset while it does not answer: beyond this, new bans
# are refused (logged) rather than filling fail2ban's memory.
MAX_PENDING = 200000


class BansetError(Exception):
    """banset refused a request, or could not be reached: the message is
    banset's one-line reason, or what went wrong talking to it."""


class Connection(object):
    """One connection speaking the control protocol: the daemon's socket,
    or the stdin/stdout of a `banset control --stdio` child (one end of a
    socket pair, so both are read and written the same way, with
    timeouts)."""

    def __init__(self, program, args, path, timeout):
        self.timeout = timeout
        self.child = None
        self.buf = b""
        self.sock = None
        if path and os.path.exists(path):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
                self.sock = sock
                self.daemon = True
            except OSError:
                # a stale socket of a dead daemon: fall back to the child
                sock.close()
        if self.sock is None:
            ours, theirs = socket.socketpair()
            try:
                self.child = subprocess.Popen(
                    [program] + args + ["control", "--stdio"],
                    stdin=theirs,
                    stdout=theirs,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
            except OSError as e:
                ours.close()
                raise BansetError("cannot run %s: %s" % (program, e))
            finally:
                theirs.close()
            ours.settimeout(timeout)
            self.sock = ours
            self.daemon = False

    def send(self, requests):
        """Writes the requests (dicts) at once, without waiting."""
        data = b"".join(
            json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in requests
        )
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise BansetError("banset does not read its requests: %s" % e)

    def reply(self):
        """The next reply line, as a dict; at most `timeout` seconds."""
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BansetError("banset did not answer within %s s" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise BansetError("banset did not answer within %s s" % self.timeout)
            except OSError as e:
                raise BansetError("lost the connection to banset: %s" % e)
            if not chunk:
                raise BansetError("banset closed the connection%s" % self._exit())
            self.buf += chunk
            if len(self.buf) > (1 << 24):
                raise BansetError("banset's reply line is too long")
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            reply = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            raise BansetError("banset's reply is not JSON: %r" % line[:200])
        if not isinstance(reply, dict):
            raise BansetError("banset's reply is not an object: %r" % line[:200])
        return reply

    def _exit(self):
        if self.child is None:
            return ""
        try:
            code = self.child.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return ""
        return " (banset control --stdio exited with %s)" % code

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.child is not None:
            # its stdin is closed: it ends by itself; a hung one is killed
            try:
                self.child.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()


def check_reply(reply):
    """Raises BansetError with banset's reason when the reply says no."""
    if reply.get("ok") is True:
        return reply
    error = reply.get("error")
    if not isinstance(error, str) or not error:
        error = "banset refused the request without a reason"
    raise BansetError(" ".join(error.split()))


class Action(ActionBase):
    def __init__(
        self,
        jail,
        name,
        setname=None,
        type="multiport",
        port="0:65535",
        protocol="tcp",
        blocktype="drop",
        onstop="keep",
        banset="/usr/local/bin/banset",
        banset_args="",
        socket="/run/banset/control.sock",
        timeout="10",
        **ignored
    ):
        super(Action, self).__init__(jail, name)
        if type not in ("multiport", "allports"):
            raise ValueError("banset.py: type must be multiport or allports, not %r" % type)
        if onstop not in ("keep", "remove"):
            raise ValueError("banset.py: onstop must be keep or remove, not %r" % onstop)
        self.setname = setname or "f2b-%s" % jail.name
        self.type = type
        self.port = port
        self.protocol = protocol
        self.blocktype = blocktype
        self.onstop = onstop
        self.program = banset
        self.args = shlex.split(banset_args)
        self.path = socket
        self.timeout = float(timeout)
        self.reason = "fail2ban:%s" % jail.name
        self.conn = None
        # one request at a time on the connection: the worker's batches and
        # the waiting unbans, flushes and starts
        self.io = threading.Lock()
        # bans not sent yet, and the worker that sends them
        self.cond = threading.Condition()
        self.pending = []
        self.busy = False
        self.worker = None
        self.running = False

    # -- the connection ----------------------------------------------------

    def _exchange(self, requests):
        """Sends the requests at once and returns their replies in order
        (dicts, not checked). One new connection is tried when the old one
        broke before anything was sent; a hung banset costs at most
        `timeout` per try."""
        with self.io:
            for attempt in (0, 1):
                if self.conn is None:
                    self.conn = Connection(self.program, self.args, self.path, self.timeout)
                try:
                    self.conn.send(requests)
                except BansetError:
                    self._drop()
                    if attempt:
                        raise
                    continue
                try:
                    return [self.conn.reply() for _ in requests]
                except BansetError:
                    # what was done is unknown: no second try
                    self._drop()
                    raise

    def _drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _request(self, request):
        return check_reply(self._exchange([dict(request, v=1)])[0])

    # -- fail2ban's calls ----------------------------------------------------

    def start(self):
        ensure = {"op": "ensure", "set": self.setname, "blocktype": self.blocktype}
        if self.type == "multiport":
            ensure["ports"] = self.port
            ensure["protocol"] = self.protocol
        else:
            ensure["protocol"] = "all"
        self.running = True
        self.worker = threading.Thread(target=self._work, name="banset-%s" % self._jail.name)
        self.worker.daemon = True
        self.worker.start()
        try:
            reply = self._request(ensure)
        except BansetError as e:
            raise RuntimeError("banset ensure %s: %s" % (self.setname, e))
        self._logSys.info(
            "banset: set %s ready (%s, %s bans)",
            self.setname,
            "created" if reply.get("created") else "existed",
            reply.get("bans", reply.get("restored", 0)),
        )

    def ban(self, aInfo):
        # onstop = keep: a ticket fail2ban restores at start is still in the
        # kernel and the ledger (nothing removed it when fail2ban stopped;
        # start's ensure put back what the kernel lost): nothing to send.
        if aInfo.get("restored") and self.onstop == "keep":
            return
        self._queue_ban(aInfo)

    def reban(self, aInfo):
        self._queue_ban(aInfo)

    def prolong(self, aInfo):
        # a longer end replaces the old one; banset never shortens a ban
        self._queue_ban(aInfo)

    @property
    def _prolongable(self):
        return True

    def _queue_ban(self, aInfo):
        bantime = int(float(aInfo["bantime"]))
        key = (int(float(aInfo["time"])), -1 if bantime < 0 else bantime)
        with self.cond:
            if len(self.pending) >= MAX_PENDING:
                raise RuntimeError(
                    "banset: %d bans wait for banset, which does not answer" % len(self.pending)
                )
            self.pending.append((key, str(aInfo["ip"])))
            self.cond.notify()

    def unban(self, aInfo):
        self._settle()
        self._checked(
            {"op": "unban", "set": self.setname, "targets": [str(aInfo["ip"])]},
            "unban %s" % aInfo["ip"],
        )

    def flush(self):
        # fail2ban runs flush both on "unban --all" and when the jail stops;
        # only the stop sees the jail's actions inactive.
        stopping = not getattr(self._jail.actions, "active", True)
        self._settle()
        if stopping and self.onstop == "keep":
            return True
        self._checked({"op": "flush", "set": self.setname}, "flush %s" % self.setname)
        return True

    def stop(self):
        self._settle()
        with self.cond:
            self.running = False
            self.cond.notify()
        if self.worker is not None:
            self.worker.join(self.timeout)
        with self.io:
            self._drop()

    # -- helpers -------------------------------------------------------------

    def _checked(self, request, what):
        try:
            self._request(request)
        except BansetError as e:
            raise RuntimeError("banset %s: %s" % (what, e))

    def _settle(self):
        """Waits (at most `timeout`) until every queued ban was sent and
        answered, so an unban never overtakes the ban it undoes."""
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while self.pending or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._logSys.error(
                        "banset: %d bans still wait for banset after %s s",
                        len(self.pending), self.timeout,
                    )
                    return
                self.cond.wait(left)

    def _work(self):
        while True:
            with self.cond:
                while self.running and not self.pending:
                    self.cond.wait()
                if not self.pending:
                    return
                batch, self.pending = self.pending, []
                self.busy = True
            try:
                self._send_bans(batch)
            except Exception as e:  # the worker must survive anything
                self._logSys.error("banset: %d bans not sent: %s", len(batch), e)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    def _send_bans(self, batch):
        """One request per (start, length), split to stay below the line
        limit; every request written before the first reply is read."""
        groups = {}
        order = []
        for key, ip in batch:
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(ip)
        requests = []
        for since, bantime in order:
            targets, size = [], 0
            for ip in groups[(since, bantime)]:
                if targets and size + len(ip) + 3 > MAX_LINE:
                    requests.append(self._ban_request(since, bantime, targets))
                    targets, size = [], 0
                targets.append(ip)
                size += len(ip) + 3
            requests.append(self._ban_request(since, bantime, targets))
        try:
            replies = self._exchange(requests)
        except BansetError as e:
            self._logSys.error("banset: %d bans in %s failed: %s", len(batch), self.setname, e)
            return
        for request, reply in zip(requests, replies):
            try:
                reply = check_reply(reply)
            except BansetError as e:
                self._logSys.error(
                    "banset: ban of %s in %s failed: %s",
                    " ".join(request["targets"][:5])
                    + (" ..." if len(request["targets"]) > 5 else ""),
                    self.setname, e,
                )
                continue
            for refused in reply.get("refused") or []:
                self._logSys.warning(
                    "banset: %s not banned in %s: %s",
                    refused.get("target"), self.setname, refused.get("reason"),
                )

    def _ban_request(self, since, bantime, targets):
        return {
            "v": 1,
            "op": "ban",
            "set": self.setname,
            "targets": targets,
            "timeout": bantime,
            "since": since,
            "reason": self.reason,
        }

