"""The servers under test, each fresh for one run and stopped by its pid
after it: sserelay, and nginx with the nchan module.  Both can serve
HTTPS with one certificate (the tls scenario): make_tls() writes it.

Every server has: port, base (the streams' URL base, http:// or
https://), pub_base (nchan's publish API, always plain HTTP), pids (what
sseload and the CPU figures count), cmd, stop()."""

import json
import os
import re
import shlex
import subprocess
import time
import urllib.request

from .common import die, free_port, log, run_out, wait_port
from .procs import proc_children, stop_pid
from .redis import function_loaded

NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"


def make_tls(tmp):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost,
    made with openssl in tmp: (cert, key, what).  The same for both
    servers; sseload trusts it with --tls-ca."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", key, "-out", cert]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        die("openssl could not make the test certificate:\n" + r.stdout)
    return dict(cert=cert, key=key, what="ECDSA P-256, self-signed, "
                "made by %s" % run_out(["openssl", "version"]).split(" (")[0])


def healthz_subset(h):
    keys = ("streams", "redis_messages", "redis_channels", "events",
            "events_delivered", "heartbeats", "slow_closes",
            "history_messages", "history_bytes", "history_channels",
            "history_evicted")
    return {k: h[k] for k in keys if k in h}


class Sserelay:
    label = "sserelay"

    def __init__(self, binary, tmp, redis, heartbeat, threads, extra, pin,
                 subscribe="pattern", cluster=None, tls=None):
        self.port = free_port()
        self.logpath = os.path.join(tmp, "sserelay-%d.log" % self.port)
        # the previous daemon's subscriptions must be gone first
        end = time.time() + 5
        if cluster:
            while cluster.shard_channels() != 0 and time.time() < end:
                time.sleep(0.05)
            where = ["--redis-cluster", cluster.seeds]
            subscribe = "exact"     # implied by --redis-cluster
        else:
            while not redis.pubsub_idle() and time.time() < end:
                time.sleep(0.05)
            where = ["--redis", redis.url]
        cmd = pin + [binary, "-c", "/dev/null",
                     "--listen", "127.0.0.1:%d" % self.port] + where + [
                     "--heartbeat", str(heartbeat)]
        if threads:
            cmd += ["--threads", str(threads)]
        if subscribe != "pattern" and not cluster:
            cmd += ["--subscribe", subscribe]
        if tls:
            cmd += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
        cmd += extra
        self.cmd = cmd
        scheme = "https" if tls else "http"
        self.base = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.pub_base = None
        self.tls = tls
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        if not wait_port(self.port, self.proc):
            die("sserelay did not start: %s\n%s" % (
                shlex.join(cmd), open(self.logpath).read()[-2000:]))
        # ready: Redis up (/healthz) and, with patterns, PSUBSCRIBEd
        end = time.time() + 10
        while time.time() < end:
            h = self.healthz()
            if h.get("redis") == "up" and (subscribe != "pattern" or
                                           redis.numpat() >= 1):
                break
            time.sleep(0.05)
        else:
            log("  warning: sserelay not subscribed to Redis after 10 s")
        self.pids = [self.proc.pid]

    def healthz(self):
        url = self.base + "/healthz"
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.tls["cert"])
        try:
            with urllib.request.urlopen(url, timeout=3, context=ctx) as r:
                return json.loads(r.read().decode())
        except (OSError, ValueError):
            return {}

    def wait_delivered(self, h0, want, timeout, quiet):
        """Until the daemon has written `want` events since the /healthz
        h0 (events_delivered), or none more for `quiet` s, or `timeout` s
        have passed."""
        end, last, still = time.time() + timeout, -1, time.time()
        while time.time() < end:
            got = self.healthz().get("events_delivered", 0) - h0.get(
                "events_delivered", 0)
            if got >= want:
                return
            if got != last:
                last, still = got, time.time()
            elif time.time() - still > quiet:
                return
            time.sleep(0.05)

    def stop(self):
        stop_pid(self.proc)
        self.logf.close()


LIBRARY_READY = re.compile(r"loaded the sserelay function library|"
                           r"the sserelay function library \S+ is loaded")


def durable_daemon(ctx, c, extra=()):
    """A fresh sserelay --history redis, ready: Redis up (/healthz 200)
    and its own version of the Function library loaded (it names the
    history size: a library another daemon left is not enough), as its
    log says."""
    a = ctx["args"]
    srv = Sserelay(ctx["binary"], ctx["tmp"], ctx["redis"], c["hb"],
                   c["threads"], ["--history", "redis"] + list(extra) +
                   a.sserelay_arg, ctx["pin_server"], c["subscribe"])
    end = time.time() + 10

    def ready():
        with open(srv.logpath, errors="replace") as f:
            return LIBRARY_READY.search(f.read()) is not None
    while not ready() and time.time() < end:
        time.sleep(0.05)
    if not ready() or not function_loaded(ctx["redis"]):
        srv.stop()
        die("sserelay --history redis did not load its Function library "
            "in 10 s (log: %s)" % srv.logpath)
    return srv


class Nchan:
    label = "nchan"

    def __init__(self, tmp, heartbeat, pin, run_id, tls=None):
        self.port = free_port()
        d = os.path.join(tmp, "nginx-%s" % run_id)
        os.makedirs(os.path.join(d, "tmp"))
        self.dir = d
        user = ""
        if os.geteuid() == 0:
            # workers must be able to write the temp paths in our temp dir
            user = "user root;\n"
        listen = "listen 127.0.0.1:%d reuseport backlog=8192;" % self.port
        self.base = self.pub_base = "http://127.0.0.1:%d" % self.port
        if tls:
            # the streams over HTTPS; the publisher (sseload's HTTP POSTs,
            # as in scenario 3) on a plain port of its own
            pub_port = free_port()
            listen = ("listen 127.0.0.1:%d ssl reuseport backlog=8192;\n"
                      "        listen 127.0.0.1:%d;\n"
                      "        ssl_certificate %s;\n"
                      "        ssl_certificate_key %s;" % (
                          self.port, pub_port, tls["cert"], tls["key"]))
            self.base = "https://127.0.0.1:%d" % self.port
            self.pub_base = "http://127.0.0.1:%d" % pub_port
        conf = NGINX_CONF.format(dir=d, listen=listen, hb=heartbeat,
                                 module=NCHAN_MODULE, user=user)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        cmd = pin + ["nginx", "-p", d + "/", "-c", self.conf,
                     "-e", os.path.join(d, "error.log"),
                     "-g", "daemon off;"]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr"),
                                                 "w"))
        if not wait_port(self.port, self.proc):
            die("nginx did not start:\n%s" % open(
                os.path.join(d, "error.log")).read()[-2000:])
        end = time.time() + 10
        while time.time() < end:
            self.pids = proc_children(self.proc.pid)
            if len(self.pids) >= 2:
                break
            time.sleep(0.05)
        if len(self.pids) < 2:
            die("nginx workers did not appear")

    def stop(self):
        stop_pid(self.proc, self.pids)


# The configuration from the sseload README's validation section, plus a
# multi-channel subscriber location (scenario 5).  nchan takes publishes only
# over HTTP: POST /pub/<channel>.
NGINX_CONF = """\
load_module {module};
{user}worker_processes 2;
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 20000; use epoll; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    nchan_shared_memory_size 256M;
    server {{
        {listen}
        location ~ ^/sub/(\\w+)$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
            nchan_eventsource_ping_interval {hb};
            nchan_eventsource_ping_comment "hb";
        }}
        # one subscriber, several channels: /multi?c=a0,a1,...
        location = /multi {{
            nchan_subscriber eventsource;
            nchan_channel_id $arg_c;
            nchan_channel_id_split_delimiter ",";
            nchan_subscriber_first_message newest;
            nchan_eventsource_ping_interval {hb};
            nchan_eventsource_ping_comment "hb";
        }}
        location ~ ^/pub/(\\w+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
            nchan_message_buffer_length 200;
            nchan_message_timeout 30s;
        }}
    }}
}}
"""
