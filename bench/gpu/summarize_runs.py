# TFLOP/s of the forward rows (or the op given as the second argument: bwd, fwd+bwd) of every JSON in a folder (results
# schema), one column per file (peers_fwd.json: one per peer), one line per (D, mask, MHA/GQA, N): the short table
# printed at the end of a device call (scripts/sm90_runtime_ab.sh).
import json, glob, os, sys, collections
R = sys.argv[1]
OP = sys.argv[2] if len(sys.argv) > 2 else "fwd"
tab = collections.defaultdict(dict)
cols = []
for f in sorted(glob.glob(os.path.join(R, "*.json"))):
    name = os.path.basename(f)[:-5].replace("ours_", "").replace("peers_fwd", "peer")
    try:
        rows = json.load(open(f))["rows"]
    except Exception as e:
        print("bad", f, e); continue
    for r in rows:
        if r.get("op") != OP or r.get("dtype", "bf16") != "bf16": continue
        gqa = r.get("Hq") != r.get("Hkv")
        impl = r["impl"] if name == "peer" else name
        if impl not in cols: cols.append(impl)
        mask = f'{r["pattern"]}/{r["mask"]}' if r.get("pattern") else r["mask"]  # sparse rows: pattern/mask
        key = (r["D"], mask, "gqa" if gqa else "mha", r["Sq"])
        tab[key][impl] = r.get("tflops", 0)
print("D mask/pattern kind N | " + " | ".join(cols))
for key in sorted(tab):
    print(*key, "|", " | ".join("%4.0f" % tab[key].get(c, 0) for c in cols))
