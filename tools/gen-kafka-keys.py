#!/usr/bin/env python3
"""gen-kafka-keys.py - the broker configuration key names an Apache Kafka release defines,
for broker/config_kafka.c.

    git -C kafka archive 3.8.0 core/src/main/scala/kafka/server/KafkaConfig.scala \
        clients/src/main server/src/main server-common/src/main storage/src/main \
        group-coordinator/src/main raft/src/main ... | tar -x -C /tmp/k
    tools/gen-kafka-keys.py /tmp/k > names.txt

Reads KafkaConfig's `.define(NAME, ...)` calls (and RemoteLogManagerConfig's), resolves
each NAME through the Java/Scala string constants of the tree (concatenations and
ServerTopicConfigSynonyms.serverSynonym() included) and prints the names sorted
byte-wise, one a line. A name it cannot resolve is reported on stderr; check those by
hand. Only names are taken, never Kafka's text."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else '.'
consts = {}  # (class, name) -> expression text
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(('.java', '.scala')):
            continue
        cls = f.rsplit('.', 1)[0]
        src = open(os.path.join(d, f), errors='ignore').read()
        for m in re.finditer(r'(?:(?:static\s+final|final\s+static)\s+String|val)\s+'
                             r'([A-Za-z_]\w*)\s*(?::\s*String\s*)?=\s*([^;]+);', src):
            consts.setdefault((cls, m.group(1)), m.group(2))
by_name = {}
for (c, n), e in consts.items():
    by_name.setdefault(n, []).append((c, e))
synonyms = {}


def evaluate(expr, cls, depth=0):
    if depth > 10:
        return None
    out = ''
    for part in re.split(r'\s*\+\s*', ' '.join(expr.split())):
        m = re.fullmatch(r'ServerTopicConfigSynonyms\.serverSynonym\((?:TopicConfig\.)?(\w+)\)', part)
        if m:
            topic = evaluate('TopicConfig.' + m.group(1), 'TopicConfig', depth + 1)
            if topic not in synonyms:
                return None
            out += synonyms[topic]
            continue
        m = re.fullmatch(r'"([^"]*)"', part)
        if m:
            out += m.group(1)
            continue
        m = re.fullmatch(r'(?:(\w+)\.)?(\w+)', part)
        if not m:
            return None
        c, n = m.group(1), m.group(2)
        if c and (c, n) in consts:
            v = evaluate(consts[(c, n)], c, depth + 1)
        elif (cls, n) in consts:
            v = evaluate(consts[(cls, n)], cls, depth + 1)
        elif n in by_name:
            v = evaluate(by_name[n][0][1], by_name[n][0][0], depth + 1)
        else:
            return None
        if v is None:
            return None
        out += v
    return out


for path in [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f == 'ServerTopicConfigSynonyms.java']:
    src = open(path).read()
    prefix = {'sameNameWithLogPrefix': 'log.', 'sameNameWithLogCleanerPrefix': 'log.cleaner.',
              'sameName': '', 'singleWithLogPrefix': 'log.', 'singleWithLogCleanerPrefix': 'log.cleaner.',
              'single': '', 'listWithLogPrefix': 'log.'}
    for m in re.finditer(r'\b(' + '|'.join(prefix) + r')\(TopicConfig\.(\w+)'
                         r'(?:,\s*(?:new ConfigSynonym\()?"([^"]+)")?', src):
        kind, topic = m.group(1), evaluate('TopicConfig.' + m.group(2), 'TopicConfig')
        if topic is None:
            print('unresolved synonym', m.group(2), file=sys.stderr)
            continue
        synonyms[topic] = prefix[kind] + (topic if kind.startswith('sameName') else m.group(3))

names = set()
for d, _, files in os.walk(root):
    for f in files:
        if f not in ('KafkaConfig.scala', 'RemoteLogManagerConfig.java'):
            continue
        src = open(os.path.join(d, f)).read()
        for m in re.finditer(r'\.define(?:Internal)?\(\s*([\w.]+)\s*,', src):
            v = evaluate(m.group(1), f.rsplit('.', 1)[0])
            if v is None or not re.fullmatch(r'[\w.-]+', v):
                print('unresolved', m.group(1), file=sys.stderr)
            else:
                names.add(v)
sys.stdout.write(''.join(n + '\n' for n in sorted(names, key=lambda s: s.encode())))
