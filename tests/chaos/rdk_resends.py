#!/usr/bin/env python3
"""rdk_resends.py - from librdkafka debug logs (RDK_CHAOS_DEBUG=eos,msg,protocol, the
producer-N.err files chaos.sh keeps), lists produce batches that failed and whose
messages were sent again under a newer producer epoch: librdkafka 2.0.2's re-send
after an epoch bump (docs/reliability.md finding 10), the only way such a batch is
stored twice. Python 3, stdlib only.

    rdk_resends.py PRODUCER.err...
"""
import re
import sys

PRODUCE = re.compile(r"\|(\d+\.\d+)\|PRODUCE\|.*\[(\d+)\]: Produce MessageSet with (\d+) "
                     r"message\(s\).*MsgId (\d+), BaseSeq (-?\d+), PID\{Id:(\d+),Epoch:(\d+)\}")
FAILED = re.compile(r"\|(\d+\.\d+)\|MSGSET\|.*\[(\d+)\]: MessageSet with (\d+) message\(s\) "
                    r"\(MsgId (\d+), BaseSeq (-?\d+)\) encountered error: (.*?) "
                    r"\(actions ([^)]*)\)")


def main(paths):
    for path in paths:
        sends, fails = [], []
        with open(path, errors="replace") as f:
            for line in f:
                m = PRODUCE.search(line)
                if m:
                    sends.append((float(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]),
                                  int(m[7])))
                    continue
                m = FAILED.search(line)
                if m:
                    fails.append((float(m[1]), int(m[2]), int(m[4]), int(m[5]), m[6], m[7]))
        print("%s: %d batches sent, %d failed" % (path, len(sends), len(fails)))
        found = 0
        for t, part, msgid, seq, err, actions in fails:
            before = [s for s in sends if s[1] == part and s[3] == msgid and s[0] <= t]
            if not before:
                continue
            epoch = before[-1][5]
            later = [s for s in sends if s[1] == part and s[3] <= msgid < s[3] + s[2]
                     and s[0] > t and s[5] != epoch]
            if later:
                found += 1
                s = later[0]
                print("  partition %d MsgId %d: epoch %d seq %d failed (%s; %s), sent again "
                      "as epoch %d seq %d %.2f s later" % (part, msgid, epoch, seq, err,
                                                           actions, s[5], s[4], s[0] - t))
        print("  failed batches sent again under a newer epoch: %d" % found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) if len(sys.argv) > 1 else 2)
