"""Every scenario, in the order 'all' runs them, and how a name on the
command line finds one: numbers (3, s3), names (peruser, curve).

Adding a scenario is one module in scenarios/ and one entry here."""

import os
import re

from .common import die, skey
from .scenarios import (cluster, curve, fanout, firehose, flatout, floor,
                        heartbeat, idle, multi, outage, peruser, presence,
                        publish, storm, threads, tls)

ORDER = [idle, fanout, peruser, flatout, multi, curve, threads, heartbeat,
         firehose, publish, storm, outage, cluster, tls, presence, floor]
SCENARIOS = {mod.KEY: mod for mod in ORDER}
KEYS = [mod.KEY for mod in ORDER]


def scenario_key(tok):
    """'3', 's3', 'peruser' -> 3; 'curve' -> 'curve'; None if unknown."""
    tok = tok.strip().lower()
    if tok.isdigit():
        k = int(tok)
    elif tok[:1] == "s" and tok[1:].isdigit():
        k = int(tok[1:])
    else:
        k = {mod.NAME: mod.KEY for mod in ORDER}.get(tok)
    return k if k in SCENARIOS else None


def parse_scenarios(text):
    out = []
    for tok in text.split(","):
        if not tok.strip():
            continue
        keys = KEYS if tok.strip().lower() == "all" else [scenario_key(tok)]
        if keys == [None]:
            die("no scenario %r (have: %s, all)" % (
                tok, ", ".join(skey(k) + ("/" + SCENARIOS[k].NAME
                                          if isinstance(k, int) else "")
                               for k in KEYS)))
        out += [k for k in keys if k not in out]
    return out


def scenario_params(args):
    """key -> parameters: the defaults (or --quick's), then the
    environment (SSERELAY_BENCH_S2_RATE), then --set."""
    out = {}
    for mod in ORDER:
        k = mod.KEY
        p = dict(mod.QUICK if args.quick else mod.PARAMS)
        for key in list(p):
            env = "SSERELAY_BENCH_%s_%s" % (skey(k).upper(), key.upper())
            if env in os.environ:
                p[key] = os.environ[env]
        out[k] = p
    for item in args.set:
        m = re.match(r"^(\w+)\.(\w+)=(.*)$", item)
        k = scenario_key(m.group(1)) if m else None
        if k is None:
            die("bad --set %r (want SCENARIO.KEY=VALUE, e.g. s2.rate=50 "
                "or curve.points=1000,19000)" % item)
        key, val = m.group(2), m.group(3)
        if key not in out[k]:
            die("scenario %s has no parameter %r (has: %s)" % (
                skey(k), key, ", ".join(out[k])))
        out[k][key] = val
    return out
