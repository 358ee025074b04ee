import json, os, sys, statistics as st
out, names = sys.argv[1], sys.argv[2].split(',')
rounds = sorted({int(d.split('-')[0][1:]) for d in os.listdir(out) if d.startswith('r') and os.path.isdir(os.path.join(out, d))})
for sc, c in (("signin", 8), ("refresh", 32), ("userinfo", 32)):
    print(f"\n**{sc}, {c} connections** (ok req/s; p50 / p99 ms)\n")
    print("| round | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    rates = {n: [] for n in names}; p50 = {n: [] for n in names}; p99 = {n: [] for n in names}
    for r in rounds:
        cells = []
        for i, n in enumerate(names, 1):
            s = json.load(open(os.path.join(out, f"r{r}-postgres-b{i}-{sc}", "summary.json")))
            bad = s['requests'] - s['status_counts'].get('200', 0)
            rates[n].append(s['ok_rate']); p50[n].append(s['latency_ms']['p50']); p99[n].append(s['latency_ms']['p99'])
            cells.append(f"{s['ok_rate']:.0f} ({s['latency_ms']['p50']:.1f} / {s['latency_ms']['p99']:.1f})" + (f" [{bad} non-200]" if bad else ""))
        print(f"| {r} | " + " | ".join(cells) + " |")
    print("| median | " + " | ".join(f"{st.median(rates[n]):.0f} ({st.median(p50[n]):.1f} / {st.median(p99[n]):.1f})" for n in names) + " |")
    base = names[0]
    for n in names[1:]:
        per_round = [b / a for a, b in zip(rates[base], rates[n])]
        print(f"\n{n} / {base}: median of per-round req/s ratios {st.median(per_round):.3f} "
              f"(rounds: {', '.join(f'{x:.2f}' for x in per_round)}); ratio of medians {st.median(rates[n]) / st.median(rates[base]):.3f}")
