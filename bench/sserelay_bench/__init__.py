"""sserelay_bench - what bench/run runs: sserelay side by side with
nginx + nchan, one load client (bench/sseload).

    common.py     output, small helpers, medians
    procs.py      /proc: CPU time, context switches, children; stop by pid
    redis.py      the bench's Redis and Redis Cluster, on tests/lib's
                  topology.py (key slots, RESP, cluster set-up)
    servers.py    a fresh sserelay, a fresh nginx + nchan; TLS material
    sseload.py    building sseload, one sseload run, the generic table
    metrics.py    the table rows: (label, function(json), better, format)
    registry.py   every scenario module, in the order 'all' runs them;
                  names, numbers and parameters (--set, the environment)
    cli.py        the flags, the header, the loop over scenarios and runs,
                  the tables, the anomalies
    scenarios/    one module per scenario: its parameters, its cases, how
                  one run goes (run) and its table (report)

bench/run puts this directory and tests/lib on sys.path and calls
cli.main().  Python 3 standard library only.  Loopback only.
"""

import os
import sys

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRCDIR = os.path.dirname(BENCH_DIR)
TESTS_LIB = os.path.join(SRCDIR, "tests", "lib")
if TESTS_LIB not in sys.path:
    sys.path.insert(0, TESTS_LIB)
