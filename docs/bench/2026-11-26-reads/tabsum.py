#!/usr/bin/env python3
"""usage: tabsum.py DIR... -- per cell of table.sh, the rate of each pass
(DIR = one pass) and the median, for --conns 0 and --conns 1."""
import json, os, statistics, sys

dirs = sys.argv[1:]
cells = sorted({f.rsplit('-conns', 1)[0] for f in os.listdir(dirs[0]) if f.endswith('.json')})
print('| cell | conns = workers: passes (median) | conns = 1: passes (median) |')
print('| --- | --- | --- |')
for cell in cells:
    row = [cell]
    for c in (0, 1):
        vals = []
        for d in dirs:
            j = json.load(open(os.path.join(d, f'{cell}-conns{c}.json')))
            vals.append(j['rows_per_sec'] if cell.startswith('batch') else j['ops_per_sec'])
        row.append(' / '.join(f'{v:,.0f}' for v in vals) + f' ({statistics.median(vals):,.0f})')
    print('| ' + ' | '.join(row) + ' |')
for d in dirs:
    print(d, open(os.path.join(d, 'rss.txt')).read().replace('\n', ' '))
