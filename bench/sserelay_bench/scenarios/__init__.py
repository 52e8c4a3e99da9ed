"""One module per scenario.  Each has:

    KEY, NAME, TITLE      3 / 'peruser' (numbered) or 'curve' (named)
    PARAMS, QUICK         its parameters, and their --quick values
    cases(p, servers, args)   the cases one run is made of, in order
    run(ctx, c, server, run)  one case on one server: the JSON record
    report(ctx, p, results, servers)  its table of medians

and may have:

    METRICS               rows of the side-by-side table (GENERIC)
    GENERIC = True        reported in the one side-by-side table
    CHECK_RATE = True     a publish rate 10 % below `rate` is an anomaly
    sseload_args(p, server, srv, redis_url)   sseload's flags
    summary(j)            the one-line summary of a run
    anomalies(j)          anomalies of its own
    order(cases, run), servers_order(servers, run)   the order in a run

registry.py lists them in the order 'all' runs them.
"""
