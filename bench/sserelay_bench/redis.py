"""The bench's Redis: one redis-server for every scenario, and the Redis
Cluster of the cluster scenario.  Both are tests/lib/topology.py's
(RedisNode, Cluster: free ports, own directories, readiness checks, the
slot map); what is added here is what the bench reads off them (CPU
time, pub/sub counts) and stopping them by pid at the end."""


import topology
from topology import try_cmd

from .common import die
from .procs import proc_cpu_s


class Workspace:
    """What topology's processes need of a harness.Test: a temp dir and
    a list of clean-ups (each process registers its kill there)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.cleanups = []

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:   # a clean-up must not hide the others
                pass
        self.cleanups = []


class Redis(topology.RedisNode):
    """One redis-server on a free loopback port, no persistence."""

    def __init__(self, ws, pin):
        super().__init__(ws, "redis", prefix=pin)
        try:
            self.start()
        except RuntimeError as e:
            die("redis-server did not start: %s" % e)
        self.url = "redis://127.0.0.1:%d" % self.port

    def numpat(self):
        r = self.try_cmd("PUBSUB", "NUMPAT")
        return -1 if r is None else r

    def numchannels(self):
        r = self.try_cmd("PUBSUB", "CHANNELS")
        return -1 if r is None else len(r)

    def pubsub_idle(self):
        """No pattern and no channel subscribed (the last daemon is gone)."""
        return self.numpat() == 0 and self.numchannels() == 0

    def cpu_s(self):
        return proc_cpu_s(self.pid)


def function_loaded(redis):
    """Is the daemon's Function library (named sserelay) in Redis?"""
    r = redis.try_cmd("FUNCTION", "LIST", "LIBRARYNAME", "sserelay")
    return isinstance(r, list) and len(r) > 0


class Cluster:
    """`primaries` redis-server --cluster-enabled yes, no replicas
    (topology.Cluster: each node in its own directory with a free client
    port and a free bus port, joined by redis-cli --cluster create, ready
    once every node says cluster_state:ok with all slots, knows every
    node, and all agree on the slot map), with Redis's default node
    timeout.  The map (CLUSTER SLOTS) is then kept as slot -> port."""

    def __init__(self, ws, pin, primaries=3, timeout=60):
        try:
            self.cl = topology.Cluster(ws, primaries=primaries, replicas=0,
                                       node_timeout=15000, timeout=timeout,
                                       prefix=pin)
        except RuntimeError as e:
            die("the Redis Cluster did not come up: %s" % str(e)[-2000:])
        self.dir = self.cl.dir
        self.ports = sorted(self.cl.nodes)
        self.pids = [self.cl.nodes[p].pid for p in self.ports]
        self.seeds = ",".join(self.cl.seeds())
        self.slot_port = self.cl.slot_table()

    def shard_channels(self):
        """Shard channels subscribed, summed over the nodes (-1: error)."""
        n = 0
        for port in self.ports:
            r = try_cmd(port, "PUBSUB", "SHARDCHANNELS")
            if r is None:
                return -1
            n += len(r)
        return n

    def cpu_s(self):
        """utime + stime of every node, seconds, in port order."""
        return [proc_cpu_s(pid) for pid in self.pids]

    def stop(self):
        for port in self.ports:
            self.cl.nodes[port].stop()

