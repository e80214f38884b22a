#!/usr/bin/env python3
"""check-layers.py OBJDIR SRCDIR: the library's dependency rules, read from its object files with nm.

OBJDIR is CMake's object folder of the library (build/CMakeFiles/imgtriage.dir), SRCDIR the
checkout (objects left behind by a source file that moved are ignored). For every
engine/<module>/ it builds the graph "file A calls a function defined in file B" from the symbols
each object file defines and needs, and reports:
  - call cycles between files of one module (issue 10: each module's files form layers);
  - modules that call each other in a circle (data flows one way: scan -> container, decode,
    video -> hash -> index lookup -> report; source (disk images, carving) is below scan;
    common is below everything);
  - a module that calls into backlog, which is above them all.
Exit 0 when there is none, 1 otherwise (a ctest runs it)."""
import collections, glob, os, subprocess, sys

objdir = os.path.join(sys.argv[1], "engine")
srcdir = os.path.join(sys.argv[2], "engine")
defs, needs = {}, {}
for o in sorted(glob.glob(os.path.join(objdir, "*", "*.o"))):
    name = os.path.relpath(o, objdir)[:-2]  # source/fs.c.o -> source/fs.c (also .cpp)
    if not os.path.exists(os.path.join(srcdir, name)):
        continue
    out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
    d, u = set(), set()
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDRBC":
            d.add(p[2])
        elif len(p) == 2 and p[0] == "U":
            u.add(p[1])
    defs[name], needs[name] = d, u
if not defs:
    sys.exit(f"check-layers: no object files under {objdir}")
owner = {s: f for f, ds in defs.items() for s in ds}
files = collections.defaultdict(set)   # within a module
mods = collections.defaultdict(set)    # between modules
for f, us in needs.items():
    for s in us:
        g = owner.get(s)
        if not g or g == f:
            continue
        mf, mg = f.split("/")[0], g.split("/")[0]
        (files[f] if mf == mg else mods[mf]).add(g if mf == mg else mg)

def cycles(graph, nodes):
    color, found = {}, []
    def dfs(u, stack):
        color[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if color.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif not color.get(v):
                dfs(v, stack)
        stack.pop()
        color[u] = 2
    for n in sorted(nodes):
        if not color.get(n):
            dfs(n, [])
    return found

bad = cycles(files, defs) + cycles(mods, {f.split("/")[0] for f in defs})
# engine/backlog is on top (issue 16): it stores what scans and reports say,
# and no module below calls into it.
for m in sorted(mods):
    if m != "backlog" and "backlog" in mods[m]:
        bad.append([m, "backlog (nothing calls the backlog)"])
for m in sorted({f.split("/")[0] for f in defs}):
    print(f"{m} -> {' '.join(sorted(mods[m])) or '(nothing)'}")
for c in bad:
    print("cycle: " + " -> ".join(c))
print(f"check-layers: {len(defs)} files, {len(bad)} cycles")
sys.exit(1 if bad else 0)
