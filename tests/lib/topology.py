"""Real multi-process topologies for sserelay's scale-out tests (issue 12).

Python 3 standard library only; built on tests/lib/harness.py (import it
first, as every tests/*.t does).  Everything runs on 127.0.0.1, on free
ports, in the Test's temporary directory, and every process started here is
stopped by pid at exit (each registers its kill() in t.cleanups).

    import harness, topology
    t = harness.Test(require=("redis-server", "redis-cli"))

    c = topology.Cluster(t)                 # 3 primaries, 3 replicas
    cc = topology.ClusterClient(c.seeds())  # routes by slot, follows MOVED/ASK
    sub = topology.ShardedSubscriber(cc, "upload:u7")
    cc.spublish("upload:u7", b"40")
    sub.wait_message("upload:u7", b"40", 10)

    s = topology.Sentinel(t)                # 1 primary, 1 replica, 3 sentinels
    old = s.kill_master(); new = s.wait_failover(30)

    b = [topology.HTTPBackend(t, "b%d" % i) for i in range(3)]
    h = topology.HAProxy(t, [x.port for x in b])

Redis facts this relies on (Redis 7.0.15, Debian 12):
- cluster-port sets the cluster bus port (default port+10000, which may be
  above 65535 for an ephemeral port): every node gets two free ports.
- cluster-allow-pubsubshard-when-down is yes by default: SPUBLISH and
  SSUBSCRIBE keep working on a shard that owns its slot while the cluster
  as a whole is down (other commands answer -CLUSTERDOWN).
- SENTINEL DEBUG (new in 7.0) shortens the sentinels' internal periods;
  it is used when the sentinel accepts it, and the code works without it.

What tests/topology.t found Redis 7.0.15 doing (its diagnostics say it
again on each run):
- A killed primary: with --cluster-node-timeout 1000 every node says
  cluster_state:fail after about 1.4-1.8 s and ok again 0.6-1 s later,
  when the replica has won; GET on the surviving shards answers
  -CLUSTERDOWN in that window, SPUBLISH there keeps working.  The
  SSUBSCRIBErs of the dead node just lose their connection; nobody else
  gets a push.
- A slot moved (SETSLOT NODE): the old owner pushes ["sunsubscribe",
  channel, remaining] to that slot's SSUBSCRIBErs, then answers -MOVED.
  While the slot is only MIGRATING the source still serves SPUBLISH and
  SSUBSCRIBE (the channel is no key: no -ASK for it).
- Sentinel: about 2.7 s from SIGKILL to a promoted replica with
  down-after-milliseconds 1000; "+switch-master" is published on the
  sentinels' pub/sub.  A restarted old master is a master with no data
  until the sentinels turn it into a replica (about 7 s here).
"""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import namedtuple

import harness
from harness import RedisClient, RedisError, free_port, wait_for

NSLOTS = 16384


# --------------------------------------------------------------------------
# key slots

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16/XMODEM (poly 0x1021, init 0), as Redis Cluster uses."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def _bytes(s):
    if isinstance(s, str):
        return s.encode("utf-8")
    if isinstance(s, int):
        return str(s).encode()
    return bytes(s)


def keyslot(s):
    """The cluster slot of a key or channel name (bytes, or str as UTF-8).

    Hash tags as Redis does it: only the first '{' counts, with the first
    '}' after it; when there is something between them, only that is
    hashed, otherwise ("{}", or no '}' at all) the whole name is."""
    s = _bytes(s)
    i = s.find(b"{")
    if i >= 0:
        j = s.find(b"}", i + 1)
        if j > i + 1:
            s = s[i + 1:j]
    return crc16(s) % NSLOTS


def _port_of(addr):
    """7000, "7000", "127.0.0.1:7000" or ("127.0.0.1", 7000) -> 7000."""
    if isinstance(addr, int):
        return addr
    if isinstance(addr, (tuple, list)):
        return int(addr[1])
    return int(str(addr).rsplit(":", 1)[-1])


# --------------------------------------------------------------------------
# RESP: incremental parsing, pipelines, pushes

class _Incomplete(Exception):
    pass


def _parse(buf, pos=0):
    """One RESP2 reply from buf at pos -> (value, next pos); raises
    _Incomplete when buf does not hold all of it yet.  Values as
    harness.RedisClient gives them: str for +, RedisError for -, bytes
    for bulk strings."""
    i = buf.find(b"\r\n", pos)
    if i < 0:
        raise _Incomplete()
    kind, rest, pos = buf[pos:pos + 1], buf[pos + 1:i], i + 2
    if kind == b"+":
        return rest.decode("utf-8", "replace"), pos
    if kind == b"-":
        return RedisError(rest.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(rest), pos
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete()
        return bytes(buf[pos:pos + n]), pos + n + 2
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None, pos
        out = []
        for _ in range(n):
            v, pos = _parse(buf, pos)
            out.append(v)
        return out, pos
    raise RedisError("bad RESP reply %r" % bytes(buf[i - len(rest) - 1:
                                                     i + 40]))


NOTHING = object()     # poll_reply(): nothing arrived in time


class Conn(RedisClient):
    """harness.RedisClient plus pipelines and non-blocking reads (for
    pub/sub pushes).  Always to 127.0.0.1."""

    def __init__(self, port, password=None, timeout=5):
        super().__init__(port, password=password, timeout=timeout)
        self.port = port

    def send(self, *args):
        self.sock.sendall(self.encode(args))

    def pipeline(self, cmds):
        """Send every command, then read every reply; errors come back as
        RedisError values, not raised."""
        self.sock.sendall(b"".join(self.encode(c) for c in cmds))
        return [self.read_reply() for _ in cmds]

    def poll_reply(self, timeout):
        """The next reply if one arrives within timeout, else NOTHING.
        Raises ConnectionError when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                v, pos = _parse(self.buf)
                self.buf = self.buf[pos:]
                return v
            except _Incomplete:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return NOTHING
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._fill()

    def has_reply(self):
        try:
            _parse(self.buf)
            return True
        except _Incomplete:
            return False


def one_cmd(port, *args, password=None, timeout=3):
    """One command on a fresh connection (raises on errors)."""
    c = Conn(port, password=password, timeout=timeout)
    try:
        return c.cmd(*args)
    finally:
        c.close()


def try_cmd(port, *args, password=None, timeout=3):
    """Like one_cmd, but None when the node is unreachable or errs."""
    try:
        return one_cmd(port, *args, password=password, timeout=timeout)
    except (OSError, RedisError, ValueError):
        return None


def info_fields(text):
    """INFO / CLUSTER INFO text (bytes or str) -> {field: str}."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = {}
    for line in (text or "").splitlines():
        k, sep, v = line.partition(":")
        if sep and not line.startswith("#"):
            out[k.strip()] = v.strip()
    return out


def _kv(flat):
    """A flat [k1, v1, k2, v2...] reply -> {str: str}."""
    out = {}
    for i in range(0, len(flat or []) - 1, 2):
        k, v = flat[i], flat[i + 1]
        out[k.decode() if isinstance(k, bytes) else str(k)] = (
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    return out


# --------------------------------------------------------------------------
# processes

class Process:
    """A child process with its output in a log file; stopped by pid."""

    def __init__(self, t, name, logfile):
        self.t = t
        self.name = name
        self.logfile = logfile
        self.proc = None
        t.cleanups.append(self.kill)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def spawn(self, argv, cwd=None):
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=cwd)
        finally:
            log.close()
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Send sig to our pid (if still running) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])


def redis_program(name):
    """redis-server, redis-cli, redis-sentinel: $REDIS_SERVER's directory
    first (make check sets it), then PATH."""
    env = {"redis-server": "REDIS_SERVER", "redis-cli": "REDIS_CLI",
           "redis-sentinel": "REDIS_SENTINEL"}.get(name)
    p = harness.find_program(name, env)
    if p:
        return p
    srv = harness.find_program("redis-server", "REDIS_SERVER")
    if srv:
        cand = os.path.join(os.path.dirname(srv), name)
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which(name)


class RedisNode(Process):
    """One redis-server (or sentinel) on a free loopback port, in its own
    directory.  The first start() picks the port; later ones reuse it."""

    def __init__(self, t, name, args=(), password=None, sentinel_conf=None,
                 parent_dir=None, prefix=()):
        self.dir = os.path.join(parent_dir or t.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        super().__init__(t, name, os.path.join(self.dir, "redis.log"))
        self.args = list(args)
        self.password = password
        self.sentinel_conf = sentinel_conf  # fn(node) -> config text
        self.prefix = list(prefix)          # e.g. taskset -c 1 (bench --pin)
        self.port = None
        self.bus_port = None
        self.cluster = False
        self.starts = 0
        self._conf_port = None

    def argv(self):
        if self.sentinel_conf is not None:
            # Written for each new port; a restart on the same port keeps
            # the file the sentinel has rewritten (its id, what it learnt).
            conf = os.path.join(self.dir, "sentinel.conf")
            if self._conf_port != self.port or not os.path.exists(conf):
                with open(conf, "w") as f:
                    f.write(self.sentinel_conf(self))
                self._conf_port = self.port
            prog = redis_program("redis-sentinel")
            if prog:
                return self.prefix + [prog, conf]
            return self.prefix + [redis_program("redis-server"), conf,
                                  "--sentinel"]
        a = self.prefix + [
            redis_program("redis-server"), "--port", str(self.port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", self.dir, "--logfile", self.logfile,
            "--daemonize", "no"]
        if self.cluster:
            a += ["--cluster-enabled", "yes", "--cluster-port",
                  str(self.bus_port), "--cluster-config-file", "nodes.conf"]
        if self.password:
            a += ["--requirepass", self.password, "--masterauth",
                  self.password]
        return a + self.args

    def start(self, timeout=20):
        fixed = self.port is not None
        for attempt in range(5):
            if not fixed:
                self.port = free_port()
                if self.cluster:
                    self.bus_port = free_port()
                    while self.bus_port == self.port:
                        self.bus_port = free_port()
            self.spawn(self.argv(), cwd=self.dir)
            self.starts += 1
            if wait_for(self._answers, timeout if fixed else 8, 0.02):
                return self
            self.kill()
            if fixed and attempt >= 2:
                break
            time.sleep(0.2)
        raise RuntimeError("%s did not answer PING on port %d:\n%s"
                           % (self.name, self.port, self.log_tail()))

    def _answers(self):
        return self.proc.poll() is None and harness.redis_answers(self.port)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def conn(self, timeout=5):
        return Conn(self.port, password=self.password, timeout=timeout)

    def cmd(self, *args, timeout=3):
        return one_cmd(self.port, *args, password=self.password,
                       timeout=timeout)

    def try_cmd(self, *args, timeout=3):
        if not self.running():
            return None
        return try_cmd(self.port, *args, password=self.password,
                       timeout=timeout)

    def role(self):
        """'master', 'slave', 'sentinel', or None when unreachable."""
        r = self.try_cmd("ROLE")
        if not r:
            return None
        return r[0].decode() if isinstance(r[0], bytes) else str(r[0])

    def replica_of(self):
        """(master port, link state) from ROLE on a replica, else None."""
        r = self.try_cmd("ROLE")
        if not r or r[0] != b"slave":
            return None
        return int(r[2]), r[3].decode()


# --------------------------------------------------------------------------
# Redis Cluster

ClusterNodeInfo = namedtuple(
    "ClusterNodeInfo", "id port cport flags master_id link slots")


def parse_cluster_nodes(text):
    """CLUSTER NODES -> [ClusterNodeInfo]; slots is a set of slot numbers
    (importing/migrating entries such as [42->-id] are left out)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = []
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        addr = f[1].split(",")[0]
        hostport, _, cport = addr.partition("@")
        try:
            port = int(hostport.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            port = 0
        slots = set()
        for s in f[8:]:
            if s.startswith("["):
                continue
            a, _, b = s.partition("-")
            slots.update(range(int(a), int(b or a) + 1))
        out.append(ClusterNodeInfo(
            f[0], port, int(cport) if cport.isdigit() else 0,
            frozenset(f[2].split(",")), None if f[3] == "-" else f[3],
            f[7], frozenset(slots)))
    return out


def parse_cluster_slots(reply):
    """CLUSTER SLOTS -> a list of NSLOTS primary ports (None: unassigned)."""
    table = [None] * NSLOTS
    for entry in reply or []:
        a, b, master = entry[0], entry[1], entry[2]
        port = int(master[1])
        for s in range(a, b + 1):
            table[s] = port
    return table


class Cluster:
    """A Redis Cluster of primaries * (1 + replicas) redis-server nodes.

    Every node: its own directory and nodes.conf, two free ports (client
    and cluster bus), --cluster-node-timeout node_timeout ms, no
    persistence.  Created with redis-cli --cluster create; the constructor
    returns once every node says cluster_state:ok, all 16384 slots are
    covered, every node knows every other, and every replica's link to
    its primary is up.  prefix goes before every node's command line
    (bench/run --pin: taskset)."""

    def __init__(self, t, primaries=3, replicas=1, node_timeout=1000,
                 extra=(), timeout=60, prefix=()):
        self.t = t
        self.node_timeout = node_timeout
        self.dir = os.path.join(t.tmp, "cluster-%d" % id(self))
        os.makedirs(self.dir)
        self.nodes = {}             # port -> RedisNode
        self.killed = {}            # port -> what it was when killed
        self.events = []            # (seconds since kill, text) of failovers
        self.moving = {}            # slot -> source, begin/finish_move
        self.failover_seconds = None
        n = primaries * (1 + replicas)
        args = ["--cluster-node-timeout", str(node_timeout)] + list(extra)
        started = []
        for i in range(n):
            node = RedisNode(t, "node%d" % i, args, parent_dir=self.dir,
                             prefix=prefix)
            node.cluster = True
            node.start()
            started.append(node)
            self.nodes[node.port] = node
        cli = redis_program("redis-cli")
        if not cli:
            raise RuntimeError("redis-cli not found")
        argv = [cli, "--cluster", "create"] + [x.addr for x in started] + [
            "--cluster-replicas", str(replicas), "--cluster-yes"]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        self.create_output = p.stdout.decode("utf-8", "replace")
        if p.returncode != 0:
            raise RuntimeError("redis-cli --cluster create failed (%d):\n%s"
                               % (p.returncode, self.create_output[-3000:]))
        if not wait_for(lambda: self.healthy(n), timeout, 0.05):
            raise RuntimeError("cluster not healthy after %d s:\n%s"
                               % (timeout, self.describe()))

    # -- views
    def live(self):
        """The RedisNode objects whose process runs, by port."""
        return [self.nodes[p] for p in sorted(self.nodes)
                if self.nodes[p].running()]

    def view(self, port=None):
        """CLUSTER NODES as one node sees it (a live one by default)."""
        for node in ([self.nodes[port]] if port else self.live()):
            r = node.try_cmd("CLUSTER", "NODES")
            if r is not None:
                return parse_cluster_nodes(r)
        return []

    def info(self, port):
        return info_fields(self.nodes[port].try_cmd("CLUSTER", "INFO"))

    def healthy(self, expect_nodes=None):
        """Every live node: cluster_state ok, all slots ok, knows every
        node, sees no failing node; every replica's link up; all agree
        on who owns which slot."""
        live = self.live()
        if expect_nodes is None:
            expect_nodes = len(self.nodes)
        tables = []
        for node in live:
            ci = self.info(node.port)
            if (ci.get("cluster_state") != "ok"
                    or ci.get("cluster_slots_ok") != str(NSLOTS)
                    or ci.get("cluster_known_nodes") != str(expect_nodes)):
                return False
            nodes = parse_cluster_nodes(node.try_cmd("CLUSTER", "NODES"))
            if len(nodes) != expect_nodes:
                return False
            for x in nodes:
                if x.flags & {"fail", "fail?", "handshake", "noaddr"} \
                        or x.link != "connected":
                    return False
            if "slave" in next(x.flags for x in nodes
                               if "myself" in x.flags):
                ro = node.replica_of()
                if not ro or ro[1] != "connected":
                    return False
            tables.append(parse_cluster_slots(
                node.try_cmd("CLUSTER", "SLOTS")))
        return bool(tables) and all(tb == tables[0] for tb in tables)

    def seeds(self):
        """host:port of every live node."""
        return [n.addr for n in self.live()]

    def primaries(self):
        """Ports of the primaries (that own slots and are not failed), in
        port order, as a live node sees the cluster."""
        return sorted(x.port for x in self.view()
                      if "master" in x.flags and "fail" not in x.flags
                      and x.slots)

    def replicas(self, of=None):
        """Ports of the replicas (not failed), of one primary if given."""
        nodes = self.view()
        mid = None
        if of is not None:
            mid = next((x.id for x in nodes if x.port == of), None)
        return sorted(x.port for x in nodes
                      if "slave" in x.flags and "fail" not in x.flags
                      and (of is None or x.master_id == mid))

    def node_id(self, port):
        r = self.nodes[port].cmd("CLUSTER", "MYID")
        return r.decode() if isinstance(r, bytes) else r

    def slots_of(self, port):
        """The set of slots a primary owns (in a live node's view)."""
        for x in self.view():
            if x.port == port:
                return set(x.slots)
        return set()

    def slot_table(self, port=None):
        """CLUSTER SLOTS of one node (a live one by default) as a list of
        NSLOTS primary ports."""
        for node in ([self.nodes[port]] if port else self.live()):
            r = node.try_cmd("CLUSTER", "SLOTS")
            if r is not None:
                return parse_cluster_slots(r)
        return [None] * NSLOTS

    def node_for_slot(self, slot):
        """The port of the primary that serves slot."""
        return self.slot_table()[slot]

    def node_for(self, key_or_channel):
        return self.node_for_slot(keyslot(key_or_channel))

    def client_for(self, key_or_channel, timeout=5):
        """A Conn (harness.RedisClient) to the primary of that name's
        slot; the caller closes it."""
        return Conn(self.node_for(key_or_channel), timeout=timeout)

    def channel_on(self, port, prefix="ch", start=0):
        """A channel name (str) whose slot the primary at port owns."""
        owned = self.slots_of(port)
        i = start
        while True:
            name = "%s%d" % (prefix, i)
            if keyslot(name) in owned:
                return name
            i += 1

    def describe(self):
        """Every node's CLUSTER INFO state and CLUSTER NODES, for diags."""
        out = []
        for port in sorted(self.nodes):
            node = self.nodes[port]
            if not node.running():
                out.append("%d: not running" % port)
                continue
            ci = self.info(port)
            out.append("%d: state=%s slots_ok=%s known=%s" % (
                port, ci.get("cluster_state"), ci.get("cluster_slots_ok"),
                ci.get("cluster_known_nodes")))
        for x in self.view():
            out.append("  %s %d %s master=%s %s slots=%d" % (
                x.id[:8], x.port, ",".join(sorted(x.flags)),
                (x.master_id or "-")[:8], x.link, len(x.slots)))
        return "\n".join(out)

    # -- failures
    def kill_primary(self, port):
        """SIGKILL a primary (its slots and replicas are remembered for
        wait_failover)."""
        nodes = self.view()
        me = next(x for x in nodes if x.port == port)
        if "master" not in me.flags:
            raise ValueError("%d is not a primary" % port)
        self.killed[port] = {
            "slots": set(me.slots),
            "replicas": [x.port for x in nodes if x.master_id == me.id],
            "time": time.monotonic()}
        self.nodes[port].kill()

    def kill(self, port):
        self.killed.setdefault(port, {"slots": set(), "replicas": [],
                                      "time": time.monotonic()})
        self.nodes[port].kill()

    def wait_failover(self, old_port, timeout=30, probe=None):
        """Wait until a replica of the killed primary old_port is a primary
        that serves all its slots in every live node's view and every live
        node says cluster_state:ok.  Returns the new primary's port.

        On the way it records in self.events (seconds since the kill) when
        each live node's cluster_state changes and, with probe=(key,
        channel) on a surviving shard, what GET key and SPUBLISH channel
        answer there (-CLUSTERDOWN windows)."""
        k = self.killed[old_port]
        t0 = k["time"]
        states = {}
        probe_last = {}
        self.events = []

        def note(text):
            self.events.append((round(time.monotonic() - t0, 2), text))

        def done():
            live = self.live()
            for node in live:
                st = self.info(node.port).get("cluster_state")
                if states.get(node.port) != st:
                    states[node.port] = st
                    note("%d cluster_state %s" % (node.port, st))
            if probe:
                key, ch = probe
                port = self.node_for(key)
                for what, args in (("GET", ("GET", key)),
                                   ("SPUBLISH", ("SPUBLISH", ch, "probe"))):
                    r = try_probe(port, args)
                    if probe_last.get(what) != r:
                        probe_last[what] = r
                        note("%d %s -> %s" % (port, what, r))
            new = None
            for rp in k["replicas"]:
                if rp in self.nodes and self.nodes[rp].role() == "master":
                    new = rp
            if new is None:
                return None
            for node in live:
                tb = self.slot_table(node.port)
                if any(tb[s] != new for s in k["slots"]):
                    return None
            if not all(states.get(n.port) == "ok" for n in live):
                return None
            return new

        new = wait_for(done, timeout, 0.05)
        if not new:
            raise RuntimeError("no failover of %d within %d s:\n%s"
                               % (old_port, timeout, self.describe()))
        self.failover_seconds = time.monotonic() - t0
        note("failover done: %d is primary" % new)
        return new

    def restart(self, port, timeout=30):
        """Start a killed node again on its port with its nodes.conf; it
        rejoins (a killed primary comes back as a replica of its
        successor).  Waits until the whole cluster is healthy again."""
        node = self.nodes[port]
        if node.running():
            raise ValueError("%d is running" % port)
        node.start()
        self.killed.pop(port, None)
        if not wait_for(lambda: self.healthy(), timeout, 0.05):
            raise RuntimeError("cluster not healthy %d s after restarting "
                               "%d:\n%s" % (timeout, port, self.describe()))
        return node

    # -- resharding
    def move_slot(self, slot, to_port, timeout=30):
        """Move one slot, with its keys, to the primary at to_port, the way
        redis-cli --cluster reshard does (begin_move, migrate_keys,
        finish_move).  Returns the source port."""
        src = self.node_for_slot(slot)
        if src == to_port:
            return src
        self.begin_move(slot, to_port)
        self.migrate_keys(slot, to_port)
        self.finish_move(slot, to_port, timeout)
        return src

    def begin_move(self, slot, to_port):
        """CLUSTER SETSLOT IMPORTING on the target, then MIGRATING on the
        source: from here on the source answers -ASK for the slot's keys
        it no longer has.  Returns the source port."""
        src = self.node_for_slot(slot)
        self.moving[slot] = src
        self.nodes[to_port].cmd("CLUSTER", "SETSLOT", slot, "IMPORTING",
                                self.node_id(src))
        self.nodes[src].cmd("CLUSTER", "SETSLOT", slot, "MIGRATING",
                            self.node_id(to_port))
        return src

    def migrate_keys(self, slot, to_port, batch=100, keys=None):
        """MIGRATE the slot's keys (or only the given ones) from the source
        to the target; returns how many were moved."""
        src = self.moving[slot]
        srcn = self.nodes[src]
        moved = 0
        while True:
            chunk = keys if keys is not None else \
                srcn.cmd("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not chunk:
                break
            srcn.cmd("MIGRATE", "127.0.0.1", to_port, "", 0, 10000,
                     "KEYS", *chunk, timeout=15)
            moved += len(chunk)
            if keys is not None:
                break
        return moved

    def finish_move(self, slot, to_port, timeout=30):
        """CLUSTER SETSLOT NODE on the target, the source, then every other
        primary; waits until every live node agrees."""
        src = self.moving.pop(slot)
        dst_id = self.node_id(to_port)
        self.nodes[to_port].cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self.nodes[src].cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for p in self.primaries():
            if p not in (src, to_port):
                self.nodes[p].try_cmd("CLUSTER", "SETSLOT", slot, "NODE",
                                      dst_id)

        def agreed():
            return all(self.slot_table(n.port)[slot] == to_port
                       for n in self.live())
        if not wait_for(agreed, timeout, 0.05):
            raise RuntimeError("slot %d not on %d everywhere after %d s:\n%s"
                               % (slot, to_port, timeout, self.describe()))


def try_probe(port, args):
    """A command's answer as short text, for failover timelines."""
    try:
        r = one_cmd(port, *args, timeout=1)
        return repr(r)
    except RedisError as e:
        return "-" + str(e).split(" ")[0]
    except OSError as e:
        return type(e).__name__


# --------------------------------------------------------------------------
# cluster-aware client

KEYLESS = {"PING", "INFO", "CLUSTER", "ROLE", "DBSIZE", "TIME", "FLUSHALL",
           "FLUSHDB", "CONFIG", "ECHO", "COMMAND", "PUBSUB", "SCRIPT",
           "FUNCTION"}


class ClusterClient:
    """Routes each command to the primary of its key's slot (CLUSTER
    SLOTS), follows -MOVED (and refreshes the map) and -ASK (ASKING on the
    target, map unchanged), retries -TRYAGAIN, -CLUSTERDOWN and lost
    connections until a deadline, refreshing the map from any node it
    knows.  All nodes on 127.0.0.1."""

    def __init__(self, seeds, password=None, timeout=5):
        self.seeds = [_port_of(s) for s in seeds]
        self.password = password
        self.timeout = timeout
        self.known = list(self.seeds)
        self.slots = [None] * NSLOTS
        self.conns = {}
        self.redirects = []     # ("MOVED"|"ASK", slot, port), in order
        self.errors = []        # transient errors seen (text)
        if not self.refresh():
            raise ConnectionError("no cluster node answered CLUSTER SLOTS "
                                  "among %r" % self.seeds)

    def conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = Conn(port, password=self.password, timeout=self.timeout)
            self.conns[port] = c
        return c

    def drop(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()

    def refresh(self):
        """Reload the slot map from the first node that answers."""
        for port in list(dict.fromkeys(self.known + self.seeds)):
            try:
                reply = self.conn(port).cmd("CLUSTER", "SLOTS")
            except (OSError, RedisError):
                self.drop(port)
                continue
            if not reply:
                continue
            self.slots = parse_cluster_slots(reply)
            for entry in reply:
                for n in entry[2:]:
                    if int(n[1]) not in self.known:
                        self.known.append(int(n[1]))
            return True
        return False

    def port_for(self, key):
        slot = keyslot(key)
        if self.slots[slot] is None:
            self.refresh()
        return self.slots[slot]

    def cmd(self, *args, key=None, timeout=None):
        """Run one command; key (default: the first argument after the
        command name, unless the command has none) chooses the slot."""
        if timeout is None:
            timeout = max(self.timeout, 10)
        name = _bytes(args[0]).upper().decode("latin-1")
        if key is None and len(args) > 1 and name not in KEYLESS:
            key = args[1]
        slot = keyslot(key) if key is not None else None
        port = self.port_for(key) if key is not None else None
        if port is None:
            port = self.known[0]
        asking = False
        hops = 0
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self.conn(port)
                if asking:
                    r = c.pipeline([("ASKING",), args])[1]
                else:
                    c.send(*args)
                    r = c.read_reply()
            except (OSError, ConnectionError) as e:
                self.drop(port)
                self.errors.append("%d: %s" % (port, e))
                if time.monotonic() >= deadline:
                    raise
                if port in self.known:      # try the others first
                    self.known.remove(port)
                    self.known.append(port)
                time.sleep(0.05)
                self.refresh()
                port = (self.slots[slot] if slot is not None else None) \
                    or self.known[0]
                asking = False
                continue
            if not isinstance(r, RedisError):
                return r
            msg = str(r)
            word = msg.split(" ", 1)[0]
            hops += 1
            if word in ("MOVED", "ASK"):
                _, s, addr = msg.split()
                s, p = int(s), _port_of(addr)
                self.redirects.append((word, s, p))
                if p not in self.known:
                    self.known.append(p)
                if word == "MOVED":
                    self.slots[s] = p
                    self.refresh()
                    if self.slots[s] != p and hops < 3:
                        self.slots[s] = p   # the map lags: trust MOVED
                port, asking = p, word == "ASK"
                if hops > 5:
                    time.sleep(0.02)
                if time.monotonic() >= deadline:
                    raise r
                continue
            if word in ("TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"):
                self.errors.append(msg)
                if time.monotonic() >= deadline:
                    raise r
                time.sleep(0.05)
                self.refresh()
                if slot is not None and self.slots[slot]:
                    port = self.slots[slot]
                asking = False
                continue
            raise r

    def publish(self, channel, payload):
        """Classic PUBLISH (the cluster bus broadcasts it to every node)."""
        return self.cmd("PUBLISH", channel, payload)

    def spublish(self, channel, payload):
        """SPUBLISH on the primary of the channel's slot; returns the
        number of that node's subscribers that got it."""
        return self.cmd("SPUBLISH", channel, payload)

    def close(self):
        for p in list(self.conns):
            self.drop(p)


Push = namedtuple("Push", "kind channel data port")


class ShardedSubscriber:
    """SSUBSCRIBE for tests: one connection per primary, each channel
    subscribed on the primary of its slot (one SSUBSCRIBE per slot, as
    Redis requires).  Every push is kept, in order, in self.pushes as
    Push(kind, channel, data, port): kind "smessage" (data: payload),
    "ssubscribe"/"sunsubscribe" (data: count), or "eof" (the node closed
    the connection; channel None).  Nothing re-subscribes by itself:
    resubscribe() does what a client must do after a sunsubscribe or an
    eof."""

    def __init__(self, client, *channels, timeout=10):
        self.cc = client
        self.timeout = timeout
        self.conns = {}         # port -> Conn
        self.where = {}         # channel (bytes) -> port, None when lost
        self.pushes = []
        self.unread = []
        if channels:
            self.subscribe(*channels)

    def _conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = Conn(port, password=self.cc.password, timeout=self.timeout)
            self.conns[port] = c
        return c

    def _record(self, port, v):
        if isinstance(v, list) and len(v) >= 3 and isinstance(v[0], bytes):
            p = Push(v[0].decode(), v[1], v[2], port)
        else:
            p = Push("other", None, v, port)
        self.pushes.append(p)
        self.unread.append(p)
        if p.kind == "sunsubscribe" and self.where.get(p.channel) == port:
            self.where[p.channel] = None
        return p

    def subscribe(self, *channels, timeout=None):
        timeout = timeout or self.timeout
        by_slot = {}
        for ch in channels:
            by_slot.setdefault(keyslot(ch), []).append(_bytes(ch))
        for slot, chs in by_slot.items():
            deadline = time.monotonic() + timeout
            while True:
                port = self.cc.slots[slot]
                if port is None:
                    self.cc.refresh()
                    port = self.cc.slots[slot]
                err = self._subscribe_on(port, chs, deadline)
                if err is None:
                    break
                if time.monotonic() >= deadline:
                    raise RedisError("SSUBSCRIBE %r failed: %s" % (chs, err))
                time.sleep(0.05)
                self.cc.refresh()
                if str(err).startswith("MOVED"):
                    self.cc.slots[slot] = _port_of(str(err).split()[2])
        return self

    def _subscribe_on(self, port, chs, deadline):
        try:
            c = self._conn(port)
            c.send("SSUBSCRIBE", *chs)
            want = set(chs)
            while want:
                v = c.poll_reply(max(0.01, deadline - time.monotonic()))
                if v is NOTHING:
                    return "no confirmation in time"
                if isinstance(v, RedisError):
                    return v
                p = self._record(port, v)
                if p.kind == "ssubscribe" and p.channel in want:
                    want.discard(p.channel)
                    self.where[p.channel] = port
                    self.unread.remove(p)
            return None
        except (OSError, ConnectionError) as e:
            self._lost(port)
            return e

    def _lost(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()
        for ch, p in self.where.items():
            if p == port:
                self.where[ch] = None

    def resubscribe(self, *channels, timeout=None):
        """Subscribe again (default: every channel that lost its
        subscription) on the slot's current primary."""
        self.cc.refresh()
        chs = list(channels) or [ch for ch, p in self.where.items()
                                 if p is None]
        return self.subscribe(*chs, timeout=timeout) if chs else self

    def get(self, timeout):
        """The next unread push, or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.unread:
                return self.unread.pop(0)
            for port, c in list(self.conns.items()):
                if c.has_reply():
                    self._record(port, c.poll_reply(0))
            if self.unread:
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not self.conns:
                return None
            socks = {c.sock: port for port, c in self.conns.items()}
            r, _, _ = select.select(list(socks), [], [], min(left, 0.2))
            for s in r:
                port = socks[s]
                c = self.conns[port]
                try:
                    c._fill()
                except (OSError, ConnectionError):
                    self._lost(port)
                    self._record(port, [b"eof", None, None])

    def wait(self, pred, timeout):
        """Read pushes until pred(push) holds for one; returns it, or None."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.get(max(0.0, deadline - time.monotonic()))
            if p is None:
                return None
            if pred(p):
                return p

    def wait_message(self, channel, payload, timeout):
        ch, pl = _bytes(channel), _bytes(payload)
        return self.wait(lambda p: p.kind == "smessage" and p.channel == ch
                         and p.data == pl, timeout)

    def close(self):
        for port in list(self.conns):
            self._lost(port)


# --------------------------------------------------------------------------
# Redis Sentinel

class Sentinel:
    """One primary, one replica and three sentinels (quorum 2).

    password: requirepass and masterauth of the data nodes (and
    `sentinel auth-pass` in the sentinels); sentinel_password:
    requirepass of the sentinels themselves (and `sentinel
    sentinel-pass`, so they can talk to each other).  Returns once all
    three sentinels name the primary, see the replica and the two other
    sentinels."""

    def __init__(self, t, master_name="mymaster", password=None,
                 sentinel_password=None, down_after=1000,
                 failover_timeout=5000, timeout=60):
        self.t = t
        self.name = master_name
        self.password = password
        self.sentinel_password = sentinel_password
        self.down_after = down_after
        self.failover_timeout = failover_timeout
        self.dir = os.path.join(t.tmp, "sentinel-%d" % id(self))
        os.makedirs(self.dir)
        self.killed = None          # port of the killed master
        self.failover_seconds = None
        self.debug_ok = False       # SENTINEL DEBUG accepted
        self.data = {}              # port -> RedisNode
        primary = RedisNode(t, "primary", password=password,
                            parent_dir=self.dir).start()
        self.data[primary.port] = primary
        replica = RedisNode(t, "replica", password=password,
                            args=["--replicaof", "127.0.0.1",
                                  str(primary.port)],
                            parent_dir=self.dir).start()
        self.data[replica.port] = replica
        self.initial_master = primary.port
        # The sentinels learn the replica from the primary's INFO: start
        # them once the replica is online there.
        if not wait_for(lambda: self._replica_online(primary, replica.port),
                        timeout, 0.05):
            raise RuntimeError("replica never synced:\n%s"
                               % replica.log_tail())
        self.sentinels = []
        for i in range(3):
            s = RedisNode(t, "sentinel%d" % i, password=sentinel_password,
                          sentinel_conf=self._sentinel_conf,
                          parent_dir=self.dir)
            self.sentinels.append(s)
            s.start()
            self._tune(s)
        if not wait_for(lambda: self.agreed(primary.port, [replica.port]),
                        timeout, 0.05):
            raise RuntimeError("sentinels do not agree after %d s:\n%s"
                               % (timeout, self.describe()))

    def _sentinel_conf(self, node):
        lines = [
            "port %d" % node.port,
            "bind 127.0.0.1",
            "daemonize no",
            'dir "%s"' % node.dir,
            'logfile "%s"' % node.logfile,
            "sentinel resolve-hostnames no",
            "sentinel monitor %s 127.0.0.1 %d 2" % (self.name,
                                                    self.initial_master),
            "sentinel down-after-milliseconds %s %d" % (self.name,
                                                        self.down_after),
            "sentinel failover-timeout %s %d" % (self.name,
                                                 self.failover_timeout),
            "sentinel parallel-syncs %s 1" % self.name,
        ]
        if self.password:
            lines.append("sentinel auth-pass %s %s" % (self.name,
                                                       self.password))
        if self.sentinel_password:
            lines.append("requirepass %s" % self.sentinel_password)
            lines.append("sentinel sentinel-pass %s"
                         % self.sentinel_password)
        return "\n".join(lines) + "\n"

    def _tune(self, s):
        """Shorter internal periods (SENTINEL DEBUG, Redis 7.0+): INFO
        every second instead of 10, hellos every 500 ms (a restarted
        master is converted to a replica after 4 hello periods)."""
        r = s.try_cmd("SENTINEL", "DEBUG", "info-period", "1000",
                      "publish-period", "500")
        self.debug_ok = r == "OK"

    @staticmethod
    def _replica_online(primary, port):
        inf = info_fields(primary.try_cmd("INFO", "replication"))
        return any(("port=%d," % port) in v and "state=online" in v
                   for k, v in inf.items() if k.startswith("slave"))

    # -- views
    def sentinel_addrs(self):
        """host:port of the running sentinels."""
        return [s.addr for s in self.sentinels if s.running()]

    def ask(self, s, *args):
        return s.try_cmd("SENTINEL", *args)

    def master_by(self, s):
        r = self.ask(s, "get-master-addr-by-name", self.name)
        if not r:
            return None
        return "%s:%s" % (r[0].decode(), r[1].decode())

    def master(self):
        """host:port of the master, as the first sentinel that answers
        says (SENTINEL get-master-addr-by-name)."""
        for s in self.sentinels:
            m = self.master_by(s)
            if m:
                return m
        return None

    def agreed(self, master_port, replica_ports):
        """Every sentinel: the master is master_port and up, these replicas
        are known and not down, and the two other sentinels are known."""
        want = "127.0.0.1:%d" % master_port
        for s in self.sentinels:
            if self.master_by(s) != want:
                return False
            m = _kv(self.ask(s, "master", self.name))
            if "s_down" in m.get("flags", "") or \
                    "o_down" in m.get("flags", ""):
                return False
            reps = [_kv(x) for x in (self.ask(s, "replicas", self.name)
                                     or [])]
            seen = {int(r.get("port", 0)) for r in reps
                    if "s_down" not in r.get("flags", "")
                    and "disconnected" not in r.get("flags", "")}
            if not set(replica_ports) <= seen:
                return False
            sens = self.ask(s, "sentinels", self.name) or []
            if len(sens) != 2:
                return False
        return True

    def describe(self):
        out = []
        for s in self.sentinels:
            if not s.running():
                out.append("%s: not running" % s.name)
                continue
            m = _kv(self.ask(s, "master", self.name))
            reps = [_kv(x) for x in (self.ask(s, "replicas", self.name)
                                     or [])]
            out.append("%s %d: master %s flags=%s replicas=%s sentinels=%s"
                       % (s.name, s.port, self.master_by(s), m.get("flags"),
                          ["%s(%s)" % (r.get("port"), r.get("flags"))
                           for r in reps],
                          m.get("num-other-sentinels")))
        for port, n in sorted(self.data.items()):
            out.append("%s %d: role %s" % (n.name, port, n.role()))
        return "\n".join(out)

    def node(self, addr):
        return self.data[_port_of(addr)]

    # -- failures
    def kill_master(self):
        """SIGKILL the current master; returns its host:port."""
        m = self.master()
        self.killed = _port_of(m)
        self.killed_at = time.monotonic()
        self.data[self.killed].kill()
        return m

    def wait_failover(self, timeout=60):
        """Wait until every running sentinel names a new master and that
        node answers ROLE as master; returns its host:port."""
        old = "127.0.0.1:%d" % self.killed

        def done():
            ms = {self.master_by(s) for s in self.sentinels if s.running()}
            if len(ms) != 1:
                return None
            m = ms.pop()
            if m is None or m == old:
                return None
            n = self.data.get(_port_of(m))
            if n is None or n.role() != "master":
                return None
            return m
        m = wait_for(done, timeout, 0.05)
        if not m:
            raise RuntimeError("no failover within %d s:\n%s"
                               % (timeout, self.describe()))
        self.failover_seconds = time.monotonic() - self.killed_at
        return m

    def restart_old_master(self, timeout=60):
        """Start the killed master again (as it was configured: a master);
        waits until the sentinels have turned it into a replica of the new
        master with its link up.  Returns its host:port."""
        node = self.data[self.killed]
        node.start()
        new = _port_of(self.master())

        def converted():
            ro = node.replica_of()
            return ro is not None and ro[0] == new and ro[1] == "connected"
        # The sentinels convert it once they see it back, usually within
        # seconds; on a loaded box that has taken over a minute.  What the
        # tests need is the topology restored, so after a while it is
        # pointed at the new master as an operator would, and the
        # sentinels then only have to agree.
        if not wait_for(converted, min(15, timeout), 0.05):
            node.try_cmd("REPLICAOF", "127.0.0.1", str(new))
        if not wait_for(converted, timeout, 0.05):
            raise RuntimeError("old master %d not a replica of %d after "
                               "%d s:\n%s" % (node.port, new, timeout,
                                              self.describe()))
        others = [p for p in self.data if p != new]
        if not wait_for(lambda: self.agreed(new, others), timeout, 0.05):
            raise RuntimeError("sentinels do not agree after the restart:"
                               "\n%s" % self.describe())
        self.killed = None
        return node.addr


# --------------------------------------------------------------------------
# HAProxy

# The config examples/haproxy.cfg documents, without its comments; mode is
# the balance algorithm.  "option http-no-delay" matters: without it every
# event waits ~200 ms for the client's delayed ACK (see the example).
HAPROXY_TEMPLATE = """\
global
	log stdout format raw local0 info

defaults
	mode http
	log global
	option httplog
	option dontlognull
	option forwardfor
	timeout connect 5s
	timeout client 1h
	timeout server 1h
	timeout tunnel 1h
	timeout http-request 10s
	timeout http-keep-alive 10s
	timeout queue 30s

frontend sse
	bind 127.0.0.1:8000
	default_backend sserelay

backend sserelay
	balance {balance}
	option httpchk GET /healthz
	option http-no-delay
	http-check expect status 200
	default-server inter 2s fall 2 rise 2
	server sserelay1 127.0.0.1:8081 check
"""


def find_haproxy():
    p = harness.find_program("haproxy", "HAPROXY")
    if p:
        return p
    for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy"):
        if os.access(p, os.X_OK):
            return p
    return None


def render_haproxy(text, port, backends, stats_socket=None, check=True):
    """An haproxy.cfg (the template above, or examples/haproxy.cfg) with its
    first `bind` on 127.0.0.1:port and its `server` lines replaced by one
    per backend port (named sserelay1..N, with the first server line's
    options; without `check` when check is false), and a `stats socket`
    added to the global section."""
    out, servers_done, bind_done = [], False, False
    for line in text.splitlines():
        m = re.match(r"^(\s*)bind\s+\S+(.*)$", line)
        if m and not bind_done:
            out.append("%sbind 127.0.0.1:%d%s" % (m.group(1), port,
                                                 m.group(2)))
            bind_done = True
            continue
        m = re.match(r"^(\s*)server\s+\S+\s+\S+(.*)$", line)
        if m:
            if not servers_done:
                opts = m.group(2)
                if not check:
                    opts = re.sub(r"\s+check\b", "", opts)
                for i, b in enumerate(backends):
                    out.append("%sserver sserelay%d 127.0.0.1:%d%s"
                               % (m.group(1), i + 1, b, opts))
                servers_done = True
            continue
        out.append(line)
        if stats_socket and re.match(r"^global\s*$", line):
            out.append("\tstats socket %s mode 600 level admin"
                       % stats_socket)
    if not bind_done or not servers_done:
        raise ValueError("haproxy config without a bind or server line")
    return "\n".join(out) + "\n"


class HAProxy(Process):
    """Debian's haproxy in the foreground (-db) in front of HTTP backends
    (ports), on a free loopback port.  config: the text of a config to use
    instead of HAPROXY_TEMPLATE (e.g. examples/haproxy.cfg); its bind and
    server lines are rewritten by render_haproxy."""

    def __init__(self, t, backends, mode="roundrobin", config=None,
                 check=True, name="haproxy", timeout=20):
        self.dir = os.path.join(t.tmp, "%s-%d" % (name, id(self)))
        os.makedirs(self.dir)
        super().__init__(t, name, os.path.join(self.dir, "haproxy.log"))
        self.program = find_haproxy()
        if not self.program:
            raise RuntimeError("haproxy not found (Debian package haproxy)")
        self.backends = list(backends)
        self.template = config if config is not None else \
            HAPROXY_TEMPLATE.replace("{balance}", mode)
        self.check = check
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.stats_socket = os.path.join(self.dir, "admin.sock")
        self.port = None
        self.start(timeout)

    def write_config(self):
        text = render_haproxy(self.template, self.port, self.backends,
                              self.stats_socket, self.check)
        self.has_socket = "stats socket" in text
        with open(self.cfg, "w") as f:
            f.write(text)

    def check_config(self):
        """haproxy -c -f cfg: (exit status, output)."""
        p = subprocess.run([self.program, "-c", "-f", self.cfg],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def start(self, timeout=20):
        for attempt in range(4):
            self.port = free_port()
            self.write_config()
            rc, out = self.check_config()
            if rc != 0:
                raise RuntimeError("haproxy -c rejects %s:\n%s"
                                   % (self.cfg, out))
            self.check_output = out
            self.spawn([self.program, "-db", "-f", self.cfg], cwd=self.dir)
            if wait_for(self._listening, timeout, 0.05) and self.running():
                return self
            self.kill()
            if attempt < 3 and re.search(r"cannot bind|Address already",
                                         self.log_text(), re.I):
                continue
            break
        raise RuntimeError("haproxy did not start:\n%s" % self.log_tail(30))

    def _listening(self):
        if not self.running():
            return True     # start() sees it is gone
        # the port may answer before the stats socket is there
        if self.has_socket and not os.path.exists(self.stats_socket):
            return False
        try:
            socket.create_connection(("127.0.0.1", self.port),
                                     timeout=0.5).close()
            return True
        except OSError:
            return False

    def admin(self, command, timeout=5):
        """One command on the stats socket (e.g. "show stat")."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.stats_socket)
            s.sendall(command.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode("utf-8", "replace")
        finally:
            s.close()

    def show_info(self):
        """"show info" on the stats socket as {field: value}."""
        out = {}
        for line in self.admin("show info").splitlines():
            k, sep, v = line.partition(":")
            if sep:
                out[k.strip()] = v.strip()
        return out

    def server_stats(self):
        """{server name: {"status", "scur", "stot", ...}} of the backend
        servers, from "show stat"."""
        text = self.admin("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            return {}
        head = lines[0][2:].split(",")
        out = {}
        for l in lines[1:]:
            row = dict(zip(head, l.split(",")))
            if row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row.get("svname")] = row
        return out

    def servers_up(self):
        st = self.server_stats()
        return len(st) == len(self.backends) and all(
            r.get("status", "").startswith("UP")
            or r.get("status") == "no check"
            for r in st.values())

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)


# --------------------------------------------------------------------------
# tiny HTTP backends (in-process threads) to stand for sserelay instances

class HTTPBackend:
    """A tiny HTTP/1.1 server in a thread of the test process, on a free
    loopback port, saying which backend it is:

      GET /whoami          -> "NAME\\n"
      GET /healthz         -> 200 {"backend": NAME} (503 once
                              self.healthy is set to False)
      GET /stream?n=N&interval=S
                           -> text/event-stream, chunked: N events
                              "data: NAME i" every S seconds, then the end
      GET /lockstep?n=N    -> like /stream, but event i+1 is written only
                              after the test called release(); a proxy
                              that held an event back would stall.

    self.hits counts requests per path; self.headers_seen keeps (path,
    {lower-case name: value}) of each; self.streams has, per stream, the
    number of events written so far (counted just before each write)."""

    def __init__(self, t, name):
        import http.server

        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each event sent at once

            def log_message(self, *a):
                pass

            def do_GET(self):
                backend._handle(self)

        self.t = t
        self.name = name
        self.hits = {}
        self.streams = []           # per stream: number of events written
        self.lock = threading.Lock()
        self.gate = threading.Semaphore(0)
        self.headers_seen = []
        self.healthy = True         # /healthz: 200, or 503 when False
        self.closing = False
        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # haproxy's health checks end with a reset: not an error
                pass

        for attempt in range(5):
            try:
                self.server = Server(("127.0.0.1", free_port()), Handler)
                break
            except OSError:
                if attempt == 4:
                    raise
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        t.cleanups.append(self.stop)

    def release(self, n=1):
        for _ in range(n):
            self.gate.release()

    def _handle(self, h):
        from urllib.parse import urlsplit, parse_qs
        u = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        with self.lock:
            self.hits[u.path] = self.hits.get(u.path, 0) + 1
            self.headers_seen.append((u.path, {k.lower(): v for k, v in
                                               h.headers.items()}))
        if u.path in ("/whoami", "/healthz"):
            body = (self.name + "\n").encode() if u.path == "/whoami" else \
                ('{"backend":"%s"}\n' % self.name).encode()
            h.send_response(200 if self.healthy or u.path == "/whoami"
                            else 503)
            h.send_header("Content-Type", "text/plain" if u.path ==
                          "/whoami" else "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if u.path in ("/stream", "/lockstep"):
            n = int(q.get("n", "30"))
            interval = float(q.get("interval", "0.1"))
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Cache-Control", "no-cache")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.flush()
            with self.lock:
                idx = len(self.streams)
                self.streams.append(0)
            try:
                for i in range(n):
                    if u.path == "/lockstep" and i > 0:
                        if not self.gate.acquire(timeout=30):
                            return
                    elif i > 0:
                        time.sleep(interval)
                    if self.closing:
                        return
                    # counted before it is written: a client that has
                    # event i knows the count is already i + 1
                    with self.lock:
                        self.streams[idx] += 1
                    data = ("data: %s %d\n\n" % (self.name, i)).encode()
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    h.wfile.flush()
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            except OSError:
                pass
            h.close_connection = True
            return
        body = b"not found\n"
        h.send_response(404)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.closing = True
        self.release(1000)
        try:
            self.server.shutdown()
            self.server.server_close()
        except Exception:
            pass
