#!/usr/bin/env python3
"""Sums up a CTA timeline (src/cuda/common/cta_timeline_capture.hpp: OMNIATTN_BWD_TIMELINE=<file>) of one launch.

  python3 bench/gpu/cta_timeline.py FILE [--launch N] [--top 12]

Takes the last launch in the file (or the N-th, from 0). Prints the launch's span (first start to last end), how
busy the SMs were over it (sum of CTA times / (span x SMs that ran CTAs); over 100% with several CTAs per SM), the tail (span after 90% of the CTAs
ended), the CTA time per step spread, the longest CTAs (tile, head, steps, us, us per step, start offset), and the
mean CTA time and steps per tile index: enough to tell a critical path (a few long CTAs), a wave tail or slow steps.
"""
import argparse
import collections
import statistics
import sys


def read_launches(path):
    launches = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "launch":
                launches.append({"label": parts[1], "grid": tuple(int(x) for x in parts[2:5]), "ctas": []})
            elif launches:
                slot, start, end, sm, tile, head, steps = (int(x) for x in parts[:7])
                launches[-1]["ctas"].append(dict(slot=slot, start=start, end=end, sm=sm, tile=tile, head=head,
                                                 steps=steps))
    return launches


def summarize(launch, top):
    ctas = launch["ctas"]
    if not ctas:
        return f"launch {launch['label']}: no records"
    t0 = min(c["start"] for c in ctas)
    t1 = max(c["end"] for c in ctas)
    span = (t1 - t0) / 1e3
    busy = sum(c["end"] - c["start"] for c in ctas) / 1e3
    sms = len({c["sm"] for c in ctas})
    ends = sorted(c["end"] for c in ctas)
    tail = (t1 - ends[int(0.9 * (len(ends) - 1))]) / 1e3
    out = [f"launch {launch['label']} grid {launch['grid']}: {len(ctas)} CTAs on {sms} SMs, span {span:.1f} us, "
           f"SMs busy {100 * busy / (span * sms):.0f}%, tail after 90% of the CTAs {tail:.1f} us"]
    per_step = [(c["end"] - c["start"]) / 1e3 / c["steps"] for c in ctas if c["steps"] > 0]
    if per_step:
        q = statistics.quantiles(per_step, n=10) if len(per_step) > 1 else per_step * 9
        out.append(f"us per step: median {statistics.median(per_step):.2f}, 10% {q[0]:.2f}, 90% {q[-1]:.2f}, "
                   f"max {max(per_step):.2f}")
    out.append(f"longest {top} CTAs: tile head steps us us/step start+us")
    for c in sorted(ctas, key=lambda c: c["end"] - c["start"], reverse=True)[:top]:
        d = (c["end"] - c["start"]) / 1e3
        out.append(f"  {c['tile']:5d} {c['head']:4d} {c['steps']:5d} {d:9.1f} "
                   f"{d / c['steps'] if c['steps'] > 0 else 0:7.2f} {(c['start'] - t0) / 1e3:9.1f}")
    by_tile = collections.defaultdict(list)
    for c in ctas:
        by_tile[c["tile"]].append(c)
    out.append("per tile index: tile CTAs mean-steps mean-us (first 8 and last 4 tiles)")
    tiles = sorted(by_tile)
    for t in tiles[:8] + (tiles[-4:] if len(tiles) > 12 else tiles[8:]):
        cs = by_tile[t]
        out.append(f"  {t:5d} {len(cs):4d} {statistics.mean(c['steps'] for c in cs):7.1f} "
                   f"{statistics.mean((c['end'] - c['start']) / 1e3 for c in cs):9.1f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--launch", type=int, default=-1)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    launches = read_launches(a.file)
    if not launches:
        sys.exit(f"{a.file}: no launch")
    print(summarize(launches[a.launch], a.top))


if __name__ == "__main__":
    main()
