#!/usr/bin/env python3
"""usage: summary.py OUTDIR -- a markdown table of ab.sh's results: per cell,
ops/s (rows/s for batches) of each pass, and the median CPU per operation."""
import glob, json, os, re, statistics, sys
out = sys.argv[1]
cells, runs = [], {}
for f in sorted(glob.glob(os.path.join(out, '*-*.json'))):
    m = re.match(r'(before|after)-(\d+)-(.*)\.json$', os.path.basename(f))
    if not m:
        continue
    which, p, cell = m.groups()
    if cell not in cells:
        cells.append(cell)
    runs.setdefault((cell, which), []).append(json.load(open(f)))
print('| cell | before: rate per pass | after: rate per pass | CPU µs/op servers+client, before -> after (medians) |')
print('| --- | --- | --- | --- |')
for c in cells:
    row = [c]
    cpu = []
    for w in ('before', 'after'):
        rs = runs.get((c, w), [])
        key = 'rows_per_sec' if c.startswith('batch') else 'ops_per_sec'
        row.append(' / '.join('{:,.0f}'.format(r[key]) for r in rs))
        if rs:
            cpu.append('%.0f+%.0f' % (statistics.median(r['server_cpu_us_per_op'] for r in rs), statistics.median(r['client_cpu_us_per_op'] for r in rs)))
    row.append(' -> '.join(cpu))
    print('| ' + ' | '.join(row) + ' |')
