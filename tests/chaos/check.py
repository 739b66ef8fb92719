#!/usr/bin/env python3
"""check.py - reads the histories of a chaos run and judges them (Python 3, stdlib only).

    check.py [--json REPORT.json] [--html REPORT.html] HISTORY.jsonl...

Each HISTORY file holds one JSON object per line, one file per client (the nemesis
writes one too). Fields:
    t          seconds since the epoch (float), when the event happened
    process    who did it ("producer-1", "reader", "copier", "nemesis")
    type       invoke | ok | fail | info   (info: outcome unknown, e.g. a timeout)
    f          send | read | txn | commit | nemesis
    partition, offset, value    as the operation had them (value a string)
    txn        for a send inside a transaction, and for f=txn: the transaction's id
    group      for f=commit: the consumer group; for f=read: the group of the consumer
               that read it, when it reads as a member of one
    isolation  for f=read: read_committed or read_uncommitted
    topic      optional; partitions of different topics are kept apart
    retry      "identical" on a send invoke: the writer (tests/progs/raw_resend.c)
               re-sends only the identical batch, in its one producer session
A "copier" event (f=copier, written by rdk_chaos copy) names a copier's group and its
output topic: reads of that topic are the copier's output, judged by copy-once only.
A "batch" event (f=batch, written by chaos.sh from `tally log dump` of one replica after
the run) describes one stored batch: partition, offset (its base offset), last_offset,
producer_id, producer_epoch, base_sequence. Without them every duplicate fails.
A send's ok carries the offset the broker acknowledged. A read ok is one record a
consumer saw. A txn ok is a commit acknowledged, a txn fail an abort. A commit ok is an
offset commit acknowledged (offset = the next offset to read). A nemesis info with
value "start ..." / "stop ..." opens and closes a fault window on the timeline.

Properties, one verdict line each:
    lost          an acknowledged write (a send ok outside transactions, or every send of
                  a committed transaction) that no read saw, or that a read found at an
                  offset holding another value
    duplicate     one value stored at two offsets, unless it is a re-send (below)
    reorder       two values of one writer (values "WRITER:SEQ") in one partition whose
                  offsets are in the opposite order of their sequence numbers
    never-sent    a read of a value nobody tried to write, or whose write definitely
                  failed (type fail: librdkafka said not persisted)
    aborted-read  a read_committed read of a value written in an aborted transaction
    non-atomic    a committed transaction of which some values were read and others not
    offsets-back  a consumer group's committed offset for a partition that went down
    group-skip    a consumer group whose members' reads name it committed an offset past
                  a record none of them read: the group's highest commit ok for a
                  partition is above the offset of a record read_committed readers saw
                  there (at-least-once: a group never commits past what it was given)
    copy-once     a transactional copier (rdk_chaos copy) broke exactly-once: an input
                  record below its group's committed offsets (the highest commit ok of
                  the group, "final" ones included) that its read_committed output holds
                  fewer times than the input does (skipped) or more (doubled), or an
                  output value that is nowhere in the input (not in the input). The
                  input is the read_committed reads of the topic without "topic"; the
                  output, the reads whose "topic" a copier event names as its output.
Not a property (a NOTE line, the verdict stands):
    resent        a value stored twice by one producer in two producer sessions (id and
                  epoch), each copy under a later session than the one before, and not
                  acknowledged at any copy but the last: the client re-sent, under a
                  bumped epoch (KIP-360), a batch whose earlier send had been appended
                  but not acknowledged. A new epoch starts a new sequence space, so no
                  broker can see the copy as a retry (librdkafka 2.0.2 does this after
                  message timeouts: docs/reliability.md finding 10). A copy in the same
                  session as another, or an acknowledged copy followed by another, is a
                  duplicate, and so is any copy of a transaction's value (the
                  transactional writers never re-send one). The later copies are left
                  out of the reorder check. A value whose writer re-sends only the
                  identical batch (retry "identical") is never a re-send: every copy
                  after the first is a duplicate, the broker's dedupe having failed.
Exit status: 0 every property holds, 1 some anomaly, 2 bad input.
"""
import bisect
import json
import re
import sys
from collections import defaultdict

PROPERTIES = ["lost", "duplicate", "reorder", "never-sent", "aborted-read",
              "non-atomic", "offsets-back", "group-skip", "copy-once"]
EXAMPLES_MAX = 10
VALUE_RE = re.compile(r"^(.*):(\d+)$")


def load(paths):
    events = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    # A client killed mid-write leaves a torn last line: skip it only there.
                    rest = f.read().strip()
                    if rest:
                        raise SystemExit("check.py: %s:%d: not JSON" % (path, n))
                    break
                events.append(ev)
    events.sort(key=lambda e: e.get("t", 0.0))
    return events


def key(ev):
    return (ev.get("topic", ""), ev.get("partition"))


def check(events):
    sent = {}            # value -> invoke event
    acked = {}           # value -> ok event (outside transactions)
    failed = set()       # values whose write definitely failed
    txn_values = defaultdict(list)
    txn_outcome = {}     # txn id -> "ok" | "fail" | "info"
    stored = defaultdict(set)       # value -> {(topic, partition, offset)}
    at = {}              # (topic, partition, offset) -> value
    committed_reads = set()         # values seen by read_committed readers
    commits = defaultdict(list)     # (group, topic, partition) -> [event]
    anomalies = {p: [] for p in PROPERTIES}
    batches = defaultdict(list)     # (topic, partition) -> [(base, last, pid, epoch, seq)]
    resent = []
    copy_outputs = {ev.get("output"): ev.get("group") for ev in events
                    if ev.get("f") == "copier" and ev.get("output")}
    copied = defaultdict(int)       # value -> copies in a copier's output
    input_at = {}        # (topic, partition, offset) -> value read read_committed
    group_read = defaultdict(set)   # group -> {(topic, partition, offset)} its members read

    for ev in events:
        f, ty, v = ev.get("f"), ev.get("type"), ev.get("value")
        if f == "batch":
            batches[key(ev)].append((ev.get("offset"), ev.get("last_offset"),
                                     ev.get("producer_id"), ev.get("producer_epoch"),
                                     ev.get("base_sequence")))
        elif f == "send":
            if ty == "invoke":
                sent.setdefault(v, ev)
                if ev.get("txn") is not None:
                    txn_values[ev["txn"]].append(v)
            elif ty == "ok" and ev.get("txn") is None:
                acked[v] = ev
            elif ty == "fail":
                failed.add(v)
        elif f == "txn" and ty in ("ok", "fail", "info"):
            txn_outcome[ev.get("txn")] = ty
        elif f == "read" and ty == "ok" and ev.get("topic") in copy_outputs:
            copied[v] += 1
        elif f == "read" and ty == "ok":
            where = key(ev) + (ev.get("offset"),)
            if ev.get("isolation") == "read_committed":
                input_at[where] = v
            if ev.get("group") is not None:
                group_read[ev["group"]].add(where)
            stored[v].add(where)
            if where in at and at[where] != v:
                anomalies["duplicate"].append(
                    {"why": "two reads of one offset gave different values",
                     "at": list(where), "values": [at[where], v]})
            at[where] = v
            if ev.get("isolation") == "read_committed":
                committed_reads.add(v)
        elif f == "commit" and ty == "ok":
            commits[(ev.get("group"),) + key(ev)].append(ev)

    # lost: every acknowledged value must be stored, at the offset of its ack.
    for v, ev in acked.items():
        want = key(ev) + (ev.get("offset"),)
        if v not in stored:
            anomalies["lost"].append({"value": v, "acked_at": list(want), "t": ev.get("t")})
        elif ev.get("offset") is not None and ev["offset"] >= 0 and want not in stored[v]:
            anomalies["lost"].append({"value": v, "acked_at": list(want),
                                      "found_at": sorted(list(w) for w in stored[v]),
                                      "holds": at.get(want)})
    committed_txns = [t for t, o in txn_outcome.items() if o == "ok"]
    for t in committed_txns:
        vals = txn_values.get(t, [])
        seen = [v for v in vals if v in stored]
        if vals and not seen:
            anomalies["lost"].append({"txn": t, "why": "committed transaction not read",
                                      "values": vals[:EXAMPLES_MAX]})
        elif len(seen) != len(vals):
            anomalies["non-atomic"].append(
                {"txn": t, "read": len(seen), "written": len(vals),
                 "missing": [v for v in vals if v not in stored][:EXAMPLES_MAX]})

    for b in batches.values():
        b.sort()
    bases = {k: [b[0] for b in bs] for k, bs in batches.items()}

    def batch_at(where):
        """The stored batch holding (topic, partition, offset), or None."""
        k, off = where[:2], where[2]
        i = bisect.bisect_right(bases.get(k, []), off) - 1
        if i >= 0 and batches[k][i][0] <= off <= batches[k][i][1]:
            return batches[k][i]
        return None

    def is_resend(v, copies):
        if sent.get(v, {}).get("txn") is not None:
            return None   # a transactional writer never re-sends: a zombie's batch
        if sent.get(v, {}).get("retry") == "identical":
            return None   # only ever the same batch in the same session: dedupe failed
        if len({w[:2] for w in copies}) > 1:
            return None   # a re-send goes to the same partition
        infos = [batch_at(w) for w in copies]
        if any(b is None or b[2] is None or b[2] < 0 for b in infos):
            return None   # unknown or not idempotent: a duplicate
        sessions = [(b[2], b[3]) for b in infos]
        for a, b in zip(sessions, sessions[1:]):
            if a == b or (a[0] == b[0] and b[1] < a[1]):
                return None   # one session twice, or back to an older epoch
        ack = acked.get(v)
        if ack is not None and ack.get("offset") is not None and ack["offset"] >= 0 and \
                key(ack) + (ack["offset"],) != copies[-1]:
            return None   # an acknowledged copy was written again
        return [{"at": list(w), "producer_id": b[2], "producer_epoch": b[3],
                 "base_sequence": b[4]} for w, b in zip(copies, infos)]

    later_copies = set()
    for v, wheres in stored.items():
        if len(wheres) > 1:
            copies = sorted(wheres, key=lambda w: (w[0] or "", w[1], w[2]))
            how = is_resend(v, copies)
            if how is not None:
                resent.append({"value": v, "copies": how})
                later_copies.update(copies[1:])
                continue
            dup = {"value": v, "at": sorted(list(w) for w in wheres)}
            infos = [batch_at(w) for w in copies]
            if any(infos):
                dup["sessions"] = [None if b is None else [b[2], b[3], b[4]] for b in infos]
            anomalies["duplicate"].append(dup)
        if v not in sent:
            anomalies["never-sent"].append({"value": v, "at": sorted(list(w) for w in wheres)})
        elif v in failed:
            anomalies["never-sent"].append({"value": v, "why": "its write failed definitely",
                                            "at": sorted(list(w) for w in wheres)})

    aborted = {t for t, o in txn_outcome.items() if o == "fail"}
    for t in aborted:
        for v in txn_values.get(t, []):
            if v in committed_reads:
                anomalies["aborted-read"].append({"txn": t, "value": v,
                                                  "at": sorted(list(w) for w in stored[v])})

    # reorder: per partition and writer, sequence numbers rise with the offset.
    by_part = defaultdict(list)
    for (topic, part, off), v in at.items():
        if (topic, part, off) in later_copies:
            continue
        m = VALUE_RE.match(v or "")
        if m and off is not None:
            by_part[(topic, part, m.group(1))].append((off, int(m.group(2)), v))
    for (topic, part, writer), recs in by_part.items():
        recs.sort()
        for a, b in zip(recs, recs[1:]):
            if b[1] < a[1]:
                anomalies["reorder"].append({"partition": [topic, part], "writer": writer,
                                             "first": [a[0], a[2]], "then": [b[0], b[2]]})

    for k, evs in commits.items():
        evs.sort(key=lambda e: e.get("t", 0.0))
        for a, b in zip(evs, evs[1:]):
            if b.get("offset", 0) < a.get("offset", 0):
                anomalies["offsets-back"].append(
                    {"group": k[0], "partition": list(k[1:]), "from": a.get("offset"),
                     "to": b.get("offset"), "t": b.get("t")})

    # group-skip: below a group's highest commit, every committed record was read by it.
    for group, seen in group_read.items():
        final = {k[1:]: max(e.get("offset", 0) for e in evs)
                 for k, evs in commits.items() if k[0] == group}
        for w in sorted(input_at):
            if w[2] is not None and w[2] < final.get(w[:2], 0) and w not in seen:
                anomalies["group-skip"].append({"group": group, "at": list(w),
                                                "value": input_at[w], "committed": final[w[:2]]})

    # copy-once: per copier, the input below its committed offsets, once each in the output.
    for group in set(copy_outputs.values()):
        final = {}
        for k, evs in commits.items():
            if k[0] == group:
                final[k[1:]] = max(e.get("offset", 0) for e in evs)
        want = defaultdict(int)      # value -> input copies the committed offsets passed
        anywhere = defaultdict(int)  # value -> input copies
        for (topic, part, off), v in input_at.items():
            anywhere[v] += 1
            if off is not None and off < final.get((topic, part), 0):
                want[v] += 1
        for v, n in want.items():
            if copied.get(v, 0) != n:
                anomalies["copy-once"].append(
                    {"group": group, "value": v, "input_copies": n,
                     "output_copies": copied.get(v, 0),
                     "why": "skipped" if copied.get(v, 0) < n else "doubled"})
        for v, n in copied.items():
            if v not in want and (v not in anywhere or n > anywhere[v]):
                anomalies["copy-once"].append(
                    {"group": group, "value": v, "output_copies": n,
                     "why": "not in the input" if v not in anywhere else "doubled"})

    counts = {
        "sent": len(sent), "acked": len(acked), "failed": len(failed),
        "read": sum(len(w) for w in stored.values()), "distinct_read": len(stored),
        "txn_committed": len(committed_txns), "txn_aborted": len(aborted),
        "commits": sum(len(e) for e in commits.values()),
        "resent": len(resent),
        "copied": sum(copied.values()),
    }
    return anomalies, counts, resent


def timeline(events):
    """Per-second acks and latency of sends, and the nemesis windows."""
    t0 = events[0]["t"] if events else 0.0
    invokes = {}
    acks = defaultdict(int)
    lat = defaultdict(list)
    faults = []
    open_faults = {}
    for ev in events:
        rel = ev.get("t", t0) - t0
        if ev.get("f") == "send":
            k = (ev.get("process"), ev.get("value"))
            if ev.get("type") == "invoke":
                invokes[k] = rel
            elif ev.get("type") == "ok":
                s = int(rel)
                acks[s] += 1
                if k in invokes:
                    lat[s].append(rel - invokes[k])
        elif ev.get("f") == "nemesis":
            text = str(ev.get("value", ""))
            what = text.split(" ", 1)[1] if " " in text else text
            if text.startswith("start"):
                open_faults[what] = rel
            elif text.startswith("stop"):
                faults.append((open_faults.pop(what, rel), rel, what))
            else:
                faults.append((rel, rel, text))
    end = max([int(ev.get("t", t0) - t0) for ev in events] + [1]) + 1
    for what, start in open_faults.items():
        faults.append((start, end, what))
    return end, acks, lat, faults


def html(events, anomalies, counts, verdict):
    end, acks, lat, faults = timeline(events)
    w, h, pad = 900, 260, 40
    xs = (w - 2 * pad) / max(end, 1)
    amax = max(list(acks.values()) + [1])
    lmax = max([max(v) for v in lat.values() if v] + [0.001])
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">' % (w, h + 40)]
    colors = ["#f4a6a6", "#a6c8f4", "#c8f4a6", "#f4dca6", "#d8a6f4"]
    for i, (a, b, what) in enumerate(faults):
        x = pad + a * xs
        parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.5">'
                     '<title>%s %.1f-%.1f s</title></rect>'
                     % (x, pad, max((b - a) * xs, 2), h - 2 * pad, colors[i % 5], esc(what), a, b))
        parts.append('<text x="%.1f" y="%d" font-size="9">%s</text>'
                     % (x, h - pad + 12 + 10 * (i % 3), esc(what[:30])))
    for s in range(end):
        bh = (h - 2 * pad) * acks.get(s, 0) / amax
        parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7">'
                     '<title>%d s: %d acks</title></rect>'
                     % (pad + s * xs, h - pad - bh, max(xs - 1, 1), bh, s, acks.get(s, 0)))
    pts = []
    for s in range(end):
        if lat.get(s):
            y = h - pad - (h - 2 * pad) * max(lat[s]) / lmax
            pts.append("%.1f,%.1f" % (pad + (s + 0.5) * xs, y))
    if pts:
        parts.append('<polyline fill="none" stroke="#c33" stroke-width="1.5" points="%s"/>'
                     % " ".join(pts))
    parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000"/>' % (pad, h - pad, w - pad, h - pad))
    parts.append('<text x="%d" y="%d" font-size="11">acks/s (green, max %d), max send latency '
                 '(red, max %.2f s), faults shaded; %d s</text>' % (pad, pad - 10, amax, lmax, end))
    parts.append("</svg>")
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%d</td><td><pre>%s</pre></td></tr>"
                   % (p, "PASS" if not a else "FAIL", len(a),
                      esc(json.dumps(a[:3], indent=1))) for p, a in anomalies.items())
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>tally chaos</title>"
            "<style>body{font-family:sans-serif}td{border:1px solid #ccc;vertical-align:top;"
            "padding:4px}pre{margin:0;font-size:10px}</style></head><body>"
            "<h1>%s</h1><p>%s</p>%s<table><tr><th>property</th><th>verdict</th>"
            "<th>anomalies</th><th>examples</th></tr>%s</table></body></html>"
            % (esc(verdict), esc(json.dumps(counts)), "".join(parts), rows))


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv):
    json_path = html_path = None
    paths = []
    it = iter(argv)
    for a in it:
        if a == "--json":
            json_path = next(it)
        elif a == "--html":
            html_path = next(it)
        elif a.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            paths.append(a)
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    events = load(paths)
    anomalies, counts, resent = check(events)
    events = [ev for ev in events if ev.get("f") != "batch"]
    for p in PROPERTIES:
        a = anomalies[p]
        line = "%s %-12s %d" % ("PASS" if not a else "FAIL", p, len(a))
        if a:
            line += "  e.g. " + json.dumps(a[0])
        print(line)
    if resent:
        print("NOTE resent       %d  e.g. %s" % (len(resent), json.dumps(resent[0])))
    bad = [p for p in PROPERTIES if anomalies[p]]
    verdict = ("VALID" if not bad else "INVALID (%s)" % ", ".join(bad)) + \
        " - sent %(sent)d acked %(acked)d read %(distinct_read)d txn %(txn_committed)d/" \
        "%(txn_aborted)d commits %(commits)d copied %(copied)d" % counts
    print(verdict)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"valid": not bad, "counts": counts,
                       "anomalies": {p: a[:100] for p, a in anomalies.items()},
                       "anomaly_counts": {p: len(a) for p, a in anomalies.items()},
                       "resent": resent[:100]},
                      f, indent=1)
    if html_path:
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(html(events, anomalies, counts, verdict))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
