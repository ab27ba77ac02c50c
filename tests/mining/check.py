"""Reads Concord's event log exports with PM4Py and prints what PM4Py found, as JSON.

    check.py --xes FILE    read_xes, then discover_dfg over the completion events: the
                           activities, the directly-follows edges with their counts, the start
                           and end activities, the number of traces and events
    check.py --ocel FILE   read_ocel2_json: the numbers of events and objects, the event and
                           object types, the objects per type and the event-to-object relations

Both may be given. Exits non-zero (with the error on stderr) if PM4Py cannot read a file.
"""

import argparse
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import pm4py  # noqa: E402


def xes(path):
    log = pm4py.read_xes(path)
    traces = int(log["case:concept:name"].nunique())
    events = int(len(log))
    transitions = sorted(set(log["lifecycle:transition"].dropna()))
    # The directly-follows graph of what was done: completions only, as is usual for a log
    # holding start and complete events.
    done = log[log["lifecycle:transition"] == "complete"]
    dfg, starts, ends = pm4py.discover_dfg(done)
    return {
        "traces": traces,
        "events": events,
        "transitions": transitions,
        "activities": sorted(set(done["concept:name"])),
        "edges": sorted(
            [{"from": a, "to": b, "count": int(n)} for (a, b), n in dfg.items()],
            key=lambda e: (e["from"], e["to"]),
        ),
        "starts": {a: int(n) for a, n in sorted(starts.items())},
        "ends": {a: int(n) for a, n in sorted(ends.items())},
        "resources": int(log["org:resource"].notna().sum()) if "org:resource" in log else 0,
        "trace_attributes": sorted(c for c in log.columns if c.startswith("case:")),
    }


def ocel(path):
    log = pm4py.read_ocel2_json(path)
    objects = log.objects
    relations = log.relations
    return {
        "events": int(len(log.events)),
        "objects": int(len(objects)),
        "event_types": sorted(set(log.events["ocel:activity"])),
        "object_types": sorted(set(objects["ocel:type"])),
        "objects_per_type": {
            t: int(n) for t, n in sorted(objects["ocel:type"].value_counts().items())
        },
        "relations": int(len(relations)),
        "relations_per_qualifier": {
            q: int(n) for q, n in sorted(relations["ocel:qualifier"].value_counts().items())
        },
        "o2o": int(len(log.o2o)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xes")
    parser.add_argument("--ocel")
    args = parser.parse_args()
    if not args.xes and not args.ocel:
        parser.error("give --xes FILE, --ocel FILE or both")
    out = {"pm4py": pm4py.__version__}
    if args.xes:
        out["xes"] = xes(args.xes)
    if args.ocel:
        out["ocel"] = ocel(args.ocel)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
