#!/usr/bin/env python3
"""Prints, as JSON `{pid: [program, seconds]}`, the CPU seconds (user + system) used so far
by every process of the named programs: the load script reads it before and after a run
and sums the differences of the processes alive at the end (a process that ended during
the run would otherwise count negative), to tell how much CPU the database and the server
spent per request.

    cpu.py postgres qrpark floor
"""
import json
import os
import sys

tick = os.sysconf("SC_CLK_TCK")
names = set(sys.argv[1:])
used = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    if comm in names:
        # utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        used[pid] = [comm, (int(fields[11]) + int(fields[12])) / tick]
print(json.dumps(used))
