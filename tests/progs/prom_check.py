#!/usr/bin/env python3
"""prom_check.py - a strict parser of Prometheus' text exposition format 0.0.4, for the
metrics tests (1001, 1002). No promtool here, so it checks the rules promtool and the
Prometheus scraper apply:

  - every line is a comment (# HELP / # TYPE / other), blank, or a sample
    `name{label="value",...} value [timestamp]`; names match [a-zA-Z_:][a-zA-Z0-9_:]*,
    label names [a-zA-Z_][a-zA-Z0-9_]*, label values escape only \\\\, \\" and \\n;
    values are Go floats (+Inf, -Inf, NaN included);
  - at most one HELP and one TYPE per family, TYPE before the family's first sample,
    and a family's samples are contiguous; no series appears twice;
  - counters end in _total; a histogram has only _bucket (with `le`), _sum and _count
    samples; per label set its buckets are in increasing `le`, cumulative
    (non-decreasing), end in le="+Inf", and +Inf equals _count.

  prom_check.py FILE [SERIES ...]
Exits 1 with the first violation. Otherwise prints, one per line, the value of each
SERIES asked (`name` or `name{a="b",c="d"}`, labels in any order; "absent" when it is
not there), or "ok N" (N samples) when none is asked.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise Bad(f"{where}: value {text!r} is not a float")
    return float(text)


def parse_labels(s, i, where):
    """s[i] is '{'; returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Bad(f"{where}: bad label name at column {i}")
        key = m.group(0)
        i = m.end()
        if s[i : i + 2] != '="':
            raise Bad(f"{where}: label {key} lacks =\"")
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise Bad(f"{where}: unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1 : i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise Bad(f"{where}: bad escape \\{nxt} in label {key}")
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad(f"{where}: raw newline in label {key}")
            else:
                value.append(c)
                i += 1
        if key in labels:
            raise Bad(f"{where}: label {key} twice")
        labels[key] = "".join(value)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            pass
        else:
            raise Bad(f"{where}: expected , or }} after label {key}")


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def parse(text):
    if text and not text.endswith("\n"):
        raise Bad("the text does not end in a newline")
    types, helps, samples = {}, {}, {}
    closed, current = set(), None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}"
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                    raise Bad(f"{where}: {parts[1]} without a valid metric name")
                name = parts[2]
                if parts[1] == "TYPE":
                    kind = parts[3] if len(parts) > 3 else ""
                    if kind not in TYPES:
                        raise Bad(f"{where}: unknown type {kind!r}")
                    if name in types:
                        raise Bad(f"{where}: second TYPE for {name}")
                    if any(family_of(s[0], {name: kind}) == name for s in samples):
                        raise Bad(f"{where}: TYPE {name} after its samples")
                    types[name] = kind
                else:
                    if name in helps:
                        raise Bad(f"{where}: second HELP for {name}")
                    helps[name] = parts[3] if len(parts) > 3 else ""
            continue
        m = NAME.match(line)
        if not m:
            raise Bad(f"{where}: bad metric name")
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        rest = line[i:]
        if not rest.startswith(" "):
            raise Bad(f"{where}: no space before the value")
        fields = rest.split()
        if len(fields) not in (1, 2):
            raise Bad(f"{where}: want a value and an optional timestamp")
        value = parse_value(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise Bad(f"{where}: bad timestamp")
        family = family_of(name, types)
        if family != current:
            if family in closed:
                raise Bad(f"{where}: samples of {family} are not contiguous")
            if current is not None:
                closed.add(current)
            current = family
        kind = types.get(family, "untyped")
        if kind == "counter" and not name.endswith("_total"):
            raise Bad(f"{where}: counter {name} does not end in _total")
        if kind == "histogram":
            if name == family:
                raise Bad(f"{where}: histogram {family} has a bare sample")
            if name.endswith("_bucket") and "le" not in labels:
                raise Bad(f"{where}: bucket without le")
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            raise Bad(f"{where}: series {name}{labels} twice")
        samples[key] = value
    check_histograms(types, samples)
    return samples


def check_histograms(types, samples):
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name != family + "_bucket":
                continue
            rest = tuple(kv for kv in labels if kv[0] != "le")
            le = dict(labels)["le"]
            series.setdefault(rest, []).append((parse_value(le, family), value))
        # Insertion order is file order: buckets must already be increasing.
        for rest, buckets in series.items():
            les = [b[0] for b in buckets]
            if les != sorted(les) or len(set(les)) != len(les):
                raise Bad(f"{family}{dict(rest)}: le not strictly increasing")
            counts = [b[1] for b in buckets]
            if counts != sorted(counts):
                raise Bad(f"{family}{dict(rest)}: buckets not cumulative")
            if les[-1] != math.inf:
                raise Bad(f"{family}{dict(rest)}: no +Inf bucket")
            count = samples.get((family + "_count", rest))
            if count is None or (family + "_sum", rest) not in samples:
                raise Bad(f"{family}{dict(rest)}: _sum or _count missing")
            if count != counts[-1]:
                raise Bad(f"{family}{dict(rest)}: +Inf {counts[-1]} != _count {count}")


def query(samples, q):
    m = NAME.match(q)
    labels = {}
    if m.end() < len(q):
        labels, end = parse_labels(q, m.end(), "query")
    key = (m.group(0), tuple(sorted(labels.items())))
    if key not in samples:
        return "absent"
    v = samples[key]
    return str(int(v)) if v == int(v) and abs(v) < 2**53 else repr(v)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        samples = parse(text)
    except Bad as e:
        print(f"prom_check: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    if len(sys.argv) == 2:
        print(f"ok {len(samples)}")
    for q in sys.argv[2:]:
        print(query(samples, q))
    return 0


if __name__ == "__main__":
    sys.exit(main())
