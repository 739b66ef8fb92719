#!/usr/bin/env python3
"""plant.py - writes a recorded-style history for tests of check.py.

    plant.py DIR [ANOMALY]

DIR gets producer.jsonl, copier.jsonl, reader.jsonl, group.jsonl and nemesis.jsonl: a
clean run (two idempotent producers on 3 partitions, a transactional writer with one
aborted transaction, a read_committed reader that read everything, a group committing
offsets whose member read every record below them, and a broker kill), and batch.jsonl: the stored batches as chaos.sh takes them
from `tally log dump` (producer id, epoch, base sequence). ANOMALY plants one fault in
it: lost, misplaced, duplicate, reorder, never-sent, failed-read, aborted-read,
non-atomic, offsets-back, group-skip (a record below the group's committed offsets
that no member of the group read); or one of the copies check.py tells apart by their batches:
dup-same-epoch (a second copy in the same producer session, acknowledged at the second
copy: the broker failed to dedupe its retry, a duplicate), resent (a second copy under
the next epoch, acknowledged there: librdkafka's re-send after an epoch bump, a NOTE,
still VALID), resent-acked (the same but the first copy was the acknowledged one: a
duplicate), resent-txn (a committed transaction's value stored again under a later
epoch: a duplicate, as transactional writers never re-send), resent-identical (the
resent case for producer-2, whose invokes say retry "identical" as raw_resend's do: a
duplicate, since that writer never changes session for a batch).
The clean run also has a transactional copier (group copy-1, output chaos-copy,
copy.jsonl) whose committed offsets passed the first COPY_CUT offsets of each
partition, each copied once; the anomalies copy-skipped (one of them missing from the
output), copy-doubled (one there twice) and copy-phantom (an output value not in the
input) break copy-once."""
import json
import os
import sys

out, anomaly = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
os.makedirs(out, exist_ok=True)
t = 1700000000.0
logs = {n: [] for n in ("producer", "copier", "reader", "group", "nemesis", "batch", "copy")}
COPY_CUT = 60
pids = {"producer-1": 1000, "producer-2": 1001, "copier": 2000}
batch = {}  # (partition, offset) -> (producer id, epoch, base sequence)
end = {0: 0, 1: 0, 2: 0}


def ev(log, **kw):
    global t
    t += 0.003
    kw.setdefault("t", t)
    logs[log].append(kw)


reads = []
ev("nemesis", process="nemesis", type="info", f="nemesis", value="start kill -9 broker 2")
for i in range(300):
    for w in ("producer-1", "producer-2"):
        v = "%s:%d" % (w, i)
        p = i % 3
        if w == "producer-2":
            ev("producer", process=w, type="invoke", f="send", partition=p, value=v,
               retry="identical")
        else:
            ev("producer", process=w, type="invoke", f="send", partition=p, value=v)
        if not (anomaly == "resent-acked" and v == "producer-1:40"):
            ev("producer", process=w, type="ok", f="send", partition=p, offset=end[p], value=v)
        batch[(p, end[p])] = (pids[w], 0, i // 3)
        reads.append((p, end[p], v))
        end[p] += 1
    if i == 150:
        ev("nemesis", process="nemesis", type="info", f="nemesis", value="stop kill -9 broker 2")
for x in range(6):
    ev("copier", process="copier", type="invoke", f="txn", txn=x)
    for j in range(5):
        v = "copier:%d" % (x * 5 + j)
        p = j % 3
        ev("copier", process="copier", type="invoke", f="send", partition=p, value=v, txn=x)
        if x != 3:  # transaction 3 aborts: its records take offsets but stay invisible
            reads.append((p, end[p], v))
        batch[(p, end[p])] = (pids["copier"], x, j // 3)
        end[p] += 1
    end[0] += 1  # the marker
    ev("copier", process="copier", type="fail" if x == 3 else "ok", f="txn", txn=x)
for g in range(10):
    ev("group", process="group", type="ok", f="commit", group="g", partition=g % 3, offset=g * 10)

if anomaly == "lost":
    reads = [r for r in reads if r[2] != "producer-1:77"]
elif anomaly == "misplaced":
    reads = [(p, o, "producer-2:5" if v == "producer-1:5" else
              ("producer-1:5" if v == "producer-2:5" else v)) for p, o, v in reads]
elif anomaly == "duplicate":
    p, o, v = reads[40]
    reads.append((p, end[p], v))
elif anomaly in ("dup-same-epoch", "resent", "resent-acked", "resent-identical"):
    # producer-1:40 (partition 1) appended, then stored again after everything else.
    w = "producer-2" if anomaly == "resent-identical" else "producer-1"
    p, o, v = next(r for r in reads if r[2] == w + ":40")
    epoch = 0 if anomaly == "dup-same-epoch" else 1
    batch[(p, end[p])] = (pids[w], epoch, 0 if epoch else 13)
    reads.append((p, end[p], v))
    if anomaly == "resent-acked":  # acknowledged at the first copy, stored again
        ev("producer", process=w, type="ok", f="send", partition=p, offset=o, value=v)
    else:  # acknowledged at the second copy only, as a retry that was not deduped
        logs["producer"] = [e for e in logs["producer"]
                            if not (e["type"] == "ok" and e.get("value") == v)]
        ev("producer", process=w, type="ok", f="send", partition=p, offset=end[p],
           value=v)
elif anomaly == "resent-txn":
    # copier:7 (transaction 1, epoch 1) stored again under epoch 4, as a zombie would.
    p, o, v = next(r for r in reads if r[2] == "copier:7")
    batch[(p, end[p])] = (pids["copier"], 4, 0)
    reads.append((p, end[p], v))
elif anomaly == "reorder":
    a = next(i for i, r in enumerate(reads) if r[2] == "producer-1:30")
    b = next(i for i, r in enumerate(reads) if r[2] == "producer-1:33")
    reads[a], reads[b] = (reads[a][0], reads[a][1], reads[b][2]), (reads[b][0], reads[b][1], reads[a][2])
elif anomaly == "never-sent":
    reads.append((1, end[1], "ghost:1"))
elif anomaly == "failed-read":
    ev("producer", process="producer-1", type="invoke", f="send", partition=2, value="producer-1:900")
    ev("producer", process="producer-1", type="fail", f="send", partition=2, value="producer-1:900")
    reads.append((2, end[2], "producer-1:900"))
elif anomaly == "aborted-read":
    reads.append((0, end[0] + 5, "copier:16"))
elif anomaly == "non-atomic":
    reads = [r for r in reads if r[2] != "copier:22"]
elif anomaly == "offsets-back":
    ev("group", process="group", type="ok", f="commit", group="g", partition=0, offset=3)

# The copier: committed offsets COPY_CUT on every partition, every input record below
# them copied once (to the same partition of chaos-copy).
ev("copy", process="copy-1", type="info", f="copier", group="copy-1", output="chaos-copy")
for p in range(3):
    ev("copy", process="copy-1", type="ok", f="commit", group="copy-1", partition=p,
       offset=COPY_CUT // 2)
    ev("copy", process="copy-1", type="ok", f="commit", group="copy-1", partition=p,
       offset=COPY_CUT, final=True)
out_reads = [(p, v) for p, o, v in sorted(reads) if o < COPY_CUT]
if anomaly == "copy-skipped":
    out_reads = [r for r in out_reads if r[1] != "producer-1:9"]
elif anomaly == "copy-doubled":
    out_reads.append(next(r for r in out_reads if r[1] == "producer-2:12"))
elif anomaly == "copy-phantom":
    out_reads.append((0, "ghost:2"))
final = {}
for e in logs["group"]:
    final[e["partition"]] = max(final.get(e["partition"], 0), e["offset"])
for p, o, v in sorted(reads):
    if o < final.get(p, 0) and not (anomaly == "group-skip" and v == "producer-2:31"):
        ev("group", process="group", type="ok", f="read", partition=p, offset=o, value=v,
           isolation="read_committed", group="g")
for p, o, v in sorted(reads):
    ev("reader", process="reader", type="ok", f="read", partition=p, offset=o, value=v,
       isolation="read_committed")
copy_end = {0: 0, 1: 0, 2: 0}
for p, v in out_reads:
    ev("reader", process="reader", type="ok", f="read", partition=p, offset=copy_end[p], value=v,
       isolation="read_committed", topic="chaos-copy")
    copy_end[p] += 1
for (p, o), (pid, epoch, seq) in sorted(batch.items()):
    ev("batch", process="log", type="info", f="batch", partition=p, offset=o, last_offset=o,
       producer_id=pid, producer_epoch=epoch, base_sequence=seq)
for name, evs in logs.items():
    with open(os.path.join(out, name + ".jsonl"), "w") as f:
        for e in evs:
            f.write(json.dumps(e) + "\n")
