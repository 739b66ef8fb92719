#!/usr/bin/env python3
"""Generates protocol/messages.h and protocol/messages.c from Kafka's JSON message specs.

Usage: gen_messages.py SPEC_DIR OUT_DIR

For every request, response and data spec it emits a C struct per (nested) struct type,
a defaults function per struct, and a decode and an encode function per message that
take the API version. Strings, bytes and records decode as views into the input bytes;
arrays are allocated from the caller's arena. Flexible versions use compact encodings
and tagged-field sections, exactly as Kafka's own generator does.
"""
import json
import os
import re
import sys

MAX_VERSION = 0x7FFF


def strip_comments(text):
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))


def parse_versions(spec):
    """'3+', '0-5', '2', 'none' -> (lo, hi) or None."""
    if spec is None or spec == "none":
        return None
    spec = spec.strip()
    if spec.endswith("+"):
        return (int(spec[:-1]), MAX_VERSION)
    if "-" in spec:
        lo, hi = spec.split("-")
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


SCALARS = {
    "bool": ("bool", "tl_cursor_i8(c) != 0", "tl_buf_i8(b, (int8_t)({v} ? 1 : 0))", 1),
    "int8": ("int8_t", "tl_cursor_i8(c)", "tl_buf_i8(b, {v})", 1),
    "int16": ("int16_t", "tl_cursor_i16(c)", "tl_buf_i16(b, {v})", 2),
    "uint16": ("uint16_t", "(uint16_t)tl_cursor_i16(c)", "tl_buf_i16(b, (int16_t){v})", 2),
    "int32": ("int32_t", "tl_cursor_i32(c)", "tl_buf_i32(b, {v})", 4),
    "uint32": ("uint32_t", "(uint32_t)tl_cursor_i32(c)", "tl_buf_i32(b, (int32_t){v})", 4),
    "int64": ("int64_t", "tl_cursor_i64(c)", "tl_buf_i64(b, {v})", 8),
    "float64": ("double", "tl_cursor_f64(c)", "tl_buf_f64(b, {v})", 8),
}


class Field:
    def __init__(self, js, msg, structs_by_name):
        self.js = js
        self.name = snake(js["name"])
        self.type = js["type"]
        self.versions = parse_versions(js.get("versions"))
        self.nullable = parse_versions(js.get("nullableVersions"))
        self.tag = js.get("tag")
        self.tagged = parse_versions(js.get("taggedVersions")) if self.tag is not None else None
        self.default = js.get("default")
        self.is_array = self.type.startswith("[]")
        self.elem = self.type[2:] if self.is_array else self.type
        # A response's error codes are counted as they are encoded (tl_proto_error_counts).
        self.counts_error = (msg.kind == "response" and self.type == "int16" and
                             js["name"].endswith("ErrorCode"))
        self.struct = None
        if self.elem not in SCALARS and self.elem not in ("string", "bytes", "records", "uuid"):
            self.struct = structs_by_name[self.elem]


class Struct:
    def __init__(self, cname, fields_js):
        self.cname = cname
        self.fields_js = fields_js
        self.fields = []


def in_range(v, r):
    return r is not None and r[0] <= v <= r[1]


class Message:
    def __init__(self, path):
        js = json.loads(strip_comments(open(path).read()))
        self.js = js
        self.name = js["name"]
        self.kind = js["type"]
        self.api_key = js.get("apiKey")
        self.valid = parse_versions(js["validVersions"])
        self.flexible = parse_versions(js.get("flexibleVersions", "none"))
        self.prefix = "tl_" + snake(self.name)
        self.structs = []
        self.by_name = {}
        for cs in js.get("commonStructs", []):
            self.declare(cs["name"], cs["fields"])
        self.top = Struct(self.prefix, js["fields"])
        self.collect(js["fields"])
        for s in self.structs + [self.top]:
            s.fields = [Field(f, self, self.by_name) for f in s.fields_js]

    def declare(self, type_name, fields_js):
        if type_name in self.by_name:
            return
        s = Struct("%s_%s" % (self.prefix, snake(type_name)), fields_js)
        self.by_name[type_name] = s
        self.structs.append(s)
        self.collect(fields_js)

    def collect(self, fields_js):
        for f in fields_js:
            if "fields" in f:
                t = f["type"][2:] if f["type"].startswith("[]") else f["type"]
                self.declare(t, f["fields"])

    def ordered_structs(self):
        """Nested structs first, so members are complete types when used."""
        out, seen = [], set()

        def visit(s):
            if s.cname in seen:
                return
            seen.add(s.cname)
            for f in s.fields:
                if f.struct and not f.is_array:
                    visit(f.struct)
            out.append(s)

        for s in self.structs:
            visit(s)
        visit(self.top)
        return out


def c_type(f):
    if f.struct:
        return "struct %s" % f.struct.cname
    if f.elem in SCALARS:
        return SCALARS[f.elem][0]
    return {"string": "struct tl_str", "bytes": "struct tl_bytes", "records": "struct tl_records",
            "uuid": "struct tl_uuid"}[f.elem]


def default_expr(f):
    d = f.default
    t = f.elem
    if t == "bool":
        return "true" if str(d).lower() == "true" else "false"
    if t in SCALARS:
        if d is None or d == "":
            return "0"
        return str(d)
    return None


# ---- code generation ----

def gen_struct_decl(s, out):
    out.append("struct %s {" % s.cname)
    if not s.fields:
        out.append("\tchar unused_; /* no fields */")
    for f in s.fields:
        if f.is_array:
            out.append("\tint32_t %s_count; /* -1 = null */" % f.name)
            out.append("\t%s *%s;" % (c_type(f), f.name))
        else:
            out.append("\t%s %s;" % (c_type(f), f.name))
    out.append("};")
    out.append("")


def gen_defaults(s, out):
    out.append("void %s_defaults(struct %s *s)" % (s.cname, s.cname))
    out.append("{")
    out.append("\tmemset(s, 0, sizeof(*s));")
    for f in s.fields:
        if f.is_array:
            continue
        if f.struct:
            out.append("\t%s_defaults(&s->%s);" % (f.struct.cname, f.name))
        elif f.elem == "string":
            if f.default == "null":
                out.append("\ts->%s.len = -1;" % f.name)
            else:
                out.append("\ts->%s.ptr = \"%s\";" % (f.name, f.default or ""))
                out.append("\ts->%s.len = %d;" % (f.name, len(f.default or "")))
        elif f.elem == "bytes":
            if f.default == "null":
                out.append("\ts->%s.len = -1;" % f.name)
        elif f.elem == "records":
            out.append("\ts->%s.len = -1;" % f.name)
        elif f.elem in SCALARS:
            d = default_expr(f)
            if d not in ("0", "false"):
                out.append("\ts->%s = %s;" % (f.name, d))
    out.append("}")
    out.append("")


def ver_cond(r, var="v"):
    if r is None:
        return "false"
    lo, hi = r
    parts = []
    if lo > 0:
        parts.append("%s >= %d" % (var, lo))
    if hi < MAX_VERSION:
        parts.append("%s <= %d" % (var, hi))
    return " && ".join(parts) if parts else "true"


def nullable_cond(f):
    return "(%s)" % ver_cond(f.nullable) if f.nullable else "false"


def gen_read_value(f, target, out, ind, flex):
    """Reads one non-array value of field f into target."""
    t = f.elem
    if f.struct:
        out.append(ind + "if ((err = dec_%s(c, v, a, &%s)) != TL_OK)" % (f.struct.cname, target))
        out.append(ind + "\treturn err;")
    elif t in SCALARS:
        out.append(ind + "%s = %s;" % (target, SCALARS[t][1]))
    elif t == "string":
        out.append(ind + "%s = tl_cursor_string(c, %s, %s);" % (target, flex, nullable_cond(f)))
    elif t in ("bytes", "records"):
        out.append(ind + "{")
        out.append(ind + "\tstruct tl_bytes by = tl_cursor_bytes(c, %s, %s);" % (flex, nullable_cond(f)))
        out.append(ind + "\t%s.ptr = by.ptr;" % target)
        out.append(ind + "\t%s.len = by.len;" % target)
        out.append(ind + "}")
    elif t == "uuid":
        out.append(ind + "{")
        out.append(ind + "\tconst uint8_t *p = tl_cursor_take(c, 16);")
        out.append(ind + "\tif (p)")
        out.append(ind + "\t\tmemcpy(%s.bytes, p, 16);" % target)
        out.append(ind + "}")


def gen_read_field(f, out, ind, flex):
    tgt = "out->%s" % f.name
    if not f.is_array:
        gen_read_value(f, tgt, out, ind, flex)
        return
    out.append(ind + "{")
    out.append(ind + "\tint32_t n = tl_cursor_array_len(c, %s, %s, INT32_MAX);" % (flex, nullable_cond(f)))
    out.append(ind + "\t%s_count = n;" % tgt)
    out.append(ind + "\t%s = NULL;" % tgt)
    out.append(ind + "\tif (n > 0) {")
    out.append(ind + "\t\t%s = tl_arena_array(a, (size_t)n, sizeof(*%s));" % (tgt, tgt))
    out.append(ind + "\t\tif (!%s)" % tgt)
    out.append(ind + "\t\t\treturn TL_ERR_NOMEM;")
    out.append(ind + "\t\tfor (int32_t i = 0; i < n && !c->failed; i++) {")
    if f.struct:
        out.append(ind + "\t\t\tif ((err = dec_%s(c, v, a, &%s[i])) != TL_OK)" % (f.struct.cname, tgt))
        out.append(ind + "\t\t\t\treturn err;")
    else:
        gen_read_value(f, "%s[i]" % tgt, out, ind + "\t\t\t", flex)
    out.append(ind + "\t\t}")
    out.append(ind + "\t}")
    out.append(ind + "}")


def gen_write_value(f, src, out, ind, flex):
    t = f.elem
    if f.struct:
        out.append(ind + "enc_%s(b, v, &%s);" % (f.struct.cname, src))
    elif t in SCALARS:
        out.append(ind + SCALARS[t][2].format(v=src) + ";")
    elif t == "string":
        out.append(ind + "tl_buf_string(b, %s, %s);" % (src, flex))
    elif t == "bytes":
        out.append(ind + "tl_buf_bytes(b, %s, %s);" % (src, flex))
    elif t == "records":
        out.append(ind + "records_encode(b, &%s, %s);" % (src, flex))
    elif t == "uuid":
        out.append(ind + "tl_buf_put(b, %s.bytes, 16);" % src)


def gen_write_field(f, out, ind, flex):
    src = "in->%s" % f.name
    if not f.is_array:
        gen_write_value(f, src, out, ind, flex)
        if f.counts_error:
            out.append(ind + "error_count(%s);" % src)
        return
    out.append(ind + "tl_buf_array_len(b, %s_count, %s);" % (src, flex))
    out.append(ind + "for (int32_t i = 0; i < %s_count; i++) {" % src)
    gen_write_value(f, "%s[i]" % src, out, ind + "\t", flex)
    out.append(ind + "}")


def is_default_cond(f):
    """C expression true when tagged field f (of `in`) holds its default."""
    src = "in->%s" % f.name
    if f.is_array:
        return "%s_count <= 0" % src
    if f.struct:
        return "is_default_%s(&%s)" % (f.struct.cname, src)
    t = f.elem
    if t in SCALARS:
        return "%s == %s" % (src, default_expr(f))
    if t == "string":
        if f.default == "null":
            return "%s.len < 0" % src
        return "%s.len == 0" % src
    if t in ("bytes", "records"):
        return "%s.len <= 0" % src
    if t == "uuid":
        return "uuid_is_zero(&%s)" % src
    return "true"


def gen_struct_codec(s, out, needs_is_default):
    tagged = [f for f in s.fields if f.tag is not None]
    # decode
    out.append("static tl_err dec_%s(struct tl_cursor *c, int16_t v, struct tl_arena *a, struct %s *out)"
               % (s.cname, s.cname))
    out.append("{")
    out.append("\ttl_err err = TL_OK;")
    out.append("\tbool flex = is_flexible(v);")
    out.append("\t(void)v;")
    out.append("\t%s_defaults(out);" % s.cname)
    for f in s.fields:
        if f.tag is not None:
            # A tagged field is only ever in the tag section.
            continue
        out.append("\tif (%s) {" % ver_cond(f.versions))
        gen_read_field(f, out, "\t\t", "flex")
        out.append("\t}")
    out.append("\tif (flex) {")
    out.append("\t\tuint32_t tags = tl_cursor_uvarint(c);")
    out.append("\t\tint64_t prev = -1;")
    out.append("\t\tfor (uint32_t t = 0; t < tags && !c->failed; t++) {")
    out.append("\t\t\tuint32_t tag = tl_cursor_uvarint(c);")
    out.append("\t\t\tuint32_t size = tl_cursor_uvarint(c);")
    out.append("\t\t\tconst uint8_t *p = tl_cursor_take(c, size);")
    out.append("\t\t\tif (!p || (int64_t)tag <= prev)")
    out.append("\t\t\t\treturn TL_ERR_CORRUPT;")
    out.append("\t\t\tprev = tag;")
    if tagged:
        out.append("\t\t\tstruct tl_cursor sub;")
        out.append("\t\t\ttl_cursor_init(&sub, p, size);")
        out.append("\t\t\tswitch (tag) {")
        for f in tagged:
            out.append("\t\t\tcase %d:" % f.tag)
            out.append("\t\t\t\tif (%s) {" % ver_cond(f.tagged))
            out.append("\t\t\t\t\tstruct tl_cursor *outer = c;")
            out.append("\t\t\t\t\tc = &sub;")
            gen_read_field(f, out, "\t\t\t\t\t", "true")
            out.append("\t\t\t\t\tc = outer;")
            out.append("\t\t\t\t\tif (sub.failed)")
            out.append("\t\t\t\t\t\treturn TL_ERR_CORRUPT;")
            out.append("\t\t\t\t}")
            out.append("\t\t\t\tbreak;")
        out.append("\t\t\tdefault:")
        out.append("\t\t\t\tbreak; /* unknown tags are skipped */")
        out.append("\t\t\t}")
    out.append("\t\t}")
    out.append("\t}")
    out.append("\t(void)a;")
    out.append("\treturn c->failed ? TL_ERR_CORRUPT : err;")
    out.append("}")
    out.append("")
    # is_default (for structs used as tagged fields)
    if s.cname in needs_is_default:
        out.append("static bool is_default_%s(const struct %s *in)" % (s.cname, s.cname))
        out.append("{")
        conds = [is_default_cond(f) for f in s.fields]
        out.append("\treturn %s;" % (" &&\n\t       ".join(conds) if conds else "true"))
        out.append("}")
        out.append("")
    # encode
    out.append("static void enc_%s(struct tl_buf *b, int16_t v, const struct %s *in)" % (s.cname, s.cname))
    out.append("{")
    out.append("\tbool flex = is_flexible(v);")
    out.append("\t(void)v;")
    for f in s.fields:
        if f.tag is not None:
            continue
        out.append("\tif (%s) {" % ver_cond(f.versions))
        gen_write_field(f, out, "\t\t", "flex")
        out.append("\t}")
    out.append("\tif (flex) {")
    if tagged:
        out.append("\t\tuint32_t tags = 0;")
        for f in tagged:
            out.append("\t\tif ((%s) && !(%s))" % (ver_cond(f.tagged), is_default_cond(f)))
            out.append("\t\t\ttags++;")
        out.append("\t\ttl_buf_uvarint(b, tags);")
        for f in sorted(tagged, key=lambda x: x.tag):
            out.append("\t\tif ((%s) && !(%s)) {" % (ver_cond(f.tagged), is_default_cond(f)))
            out.append("\t\t\tstruct tl_buf *outer = b;")
            out.append("\t\t\tstruct tl_buf tmp;")
            out.append("\t\t\ttl_buf_init(&tmp);")
            out.append("\t\t\tb = &tmp;")
            gen_write_field(f, out, "\t\t\t", "true")
            out.append("\t\t\tb = outer;")
            out.append("\t\t\ttl_buf_uvarint(b, %d);" % f.tag)
            out.append("\t\t\ttl_buf_uvarint(b, (uint32_t)tmp.len);")
            out.append("\t\t\ttl_buf_put(b, tmp.data, tmp.len);")
            out.append("\t\t\tif (tmp.failed)")
            out.append("\t\t\t\tb->failed = true;")
            out.append("\t\t\ttl_buf_deinit(&tmp);")
            out.append("\t\t}")
    else:
        out.append("\t\ttl_buf_uvarint(b, 0);")
    out.append("\t}")
    out.append("\t(void)in;")
    out.append("}")
    out.append("")


def gen_message(m, h, c):
    h.append("/* ---- %s%s ---- */" % (m.name, " (api key %d)" % m.api_key if m.api_key is not None else ""))
    h.append("")
    for s in m.ordered_structs():
        gen_struct_decl(s, h)
        h.append("void %s_defaults(struct %s *s);" % (s.cname, s.cname))
        h.append("")
    h.append("tl_err %s_decode(struct tl_cursor *cursor, int16_t version, struct tl_arena *arena,\n"
             "\t\tstruct %s *out);" % (m.prefix, m.prefix))
    h.append("void %s_encode(struct tl_buf *buf, int16_t version, const struct %s *in);" % (m.prefix, m.prefix))
    h.append("")

    c.append("/* ---- %s ---- */" % m.name)
    c.append("")
    c.append("#undef is_flexible")
    c.append("#define is_flexible(v) (%s)" % ver_cond(m.flexible))
    c.append("")
    structs = m.ordered_structs()
    needs_is_default = set()
    for s in structs:
        for f in s.fields:
            if f.tag is not None and f.struct and not f.is_array:
                needs_is_default.add(f.struct.cname)
    for s in structs:
        gen_defaults(s, c)
    for s in structs:
        c.append("static tl_err dec_%s(struct tl_cursor *c, int16_t v, struct tl_arena *a, struct %s *out);"
                 % (s.cname, s.cname))
        c.append("static void enc_%s(struct tl_buf *b, int16_t v, const struct %s *in);" % (s.cname, s.cname))
    c.append("")
    for s in structs:
        gen_struct_codec(s, c, needs_is_default)
    c.append("tl_err %s_decode(struct tl_cursor *cursor, int16_t version, struct tl_arena *arena,\n"
             "\t\tstruct %s *out)" % (m.prefix, m.prefix))
    c.append("{")
    c.append("\ttl_err err = dec_%s(cursor, version, arena, out);" % m.prefix)
    c.append("\treturn cursor->failed ? TL_ERR_CORRUPT : err;")
    c.append("}")
    c.append("")
    c.append("void %s_encode(struct tl_buf *buf, int16_t version, const struct %s *in)" % (m.prefix, m.prefix))
    c.append("{")
    c.append("\tenc_%s(buf, version, in);" % m.prefix)
    c.append("}")
    c.append("")


HEADER_TOP = """/* messages.h - Kafka message structs and codecs.
 * Generated by protocol/gen/gen_messages.py from the JSON specs in protocol/spec/;
 * do not edit.
 * For each message: struct tl_<name>, tl_<name>_defaults(), tl_<name>_decode() and
 * tl_<name>_encode(), taking the API version. Decoded strings, bytes and records point
 * into the decoded bytes; arrays come from the arena. */
#ifndef TL_PROTOCOL_MESSAGES_H
#define TL_PROTOCOL_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "tally/error.h"

/* Where the response encoders count the ErrorCode values they write, by code (codes 1 ..
 * TL_PROTO_ERROR_CODES - 1; others are not counted). NULL, the default and libtally's,
 * counts nothing; tallyd points it at its metrics (Kafka's ErrorsPerSec). Thread: the
 * one thread that encodes responses. */
#define TL_PROTO_ERROR_CODES 130
extern uint64_t *tl_proto_error_counts;

struct tl_uuid {
	uint8_t bytes[16];
};

/* Record batches as a field. On encode, from_file sends @len bytes of @fd at
 * @file_offset with sendfile (tl_buf_file_span, which takes @ref), or with @fd -1 the
 * @len bytes at @ptr held by @ref (tl_buf_mem_span: the log's cache); otherwise @ptr. */
struct tl_records {
	const uint8_t *ptr;
	int32_t len; /* -1 = null */
	bool from_file;
	int fd;
	int64_t file_offset;
	void (*release)(void *ref);
	void *ref;
};

"""

SOURCE_TOP = """/* messages.c - generated by protocol/gen/gen_messages.py; do not edit. */
#include "protocol/messages.h"

#include <stdint.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wtype-limits"

uint64_t *tl_proto_error_counts;

static void error_count(int16_t code)
{
	if (tl_proto_error_counts && code > 0 && code < TL_PROTO_ERROR_CODES)
		tl_proto_error_counts[code]++;
}

static void records_encode(struct tl_buf *b, const struct tl_records *r, bool flex)
{
	if (r->from_file) {
		if (flex)
			tl_buf_uvarint(b, (uint32_t)r->len + 1);
		else
			tl_buf_i32(b, r->len);
		if (r->fd < 0)
			tl_buf_mem_span(b, r->ptr, r->len, r->release, r->ref);
		else
			tl_buf_file_span(b, r->fd, r->file_offset, r->len, r->release, r->ref);
		return;
	}
	struct tl_bytes by = {r->ptr, r->len};
	tl_buf_bytes(b, by, flex);
}

static bool uuid_is_zero(const struct tl_uuid *u)
{
	for (int i = 0; i < 16; i++)
		if (u->bytes[i])
			return false;
	return true;
}

"""


def main():
    spec_dir, out_dir = sys.argv[1], sys.argv[2]
    messages = []
    for fn in sorted(os.listdir(spec_dir)):
        if not fn.endswith(".json") or fn in ("RequestHeader.json", "ResponseHeader.json",
                                              "LeaderChangeMessage.json"):
            continue
        messages.append(Message(os.path.join(spec_dir, fn)))
    h, c = [HEADER_TOP], [SOURCE_TOP]
    for m in messages:
        gen_message(m, h, c)
    # API table from the request specs.
    reqs = sorted((m for m in messages if m.kind == "request"), key=lambda m: m.api_key)
    h.append("/* ---- API table (from the request specs) ---- */")
    h.append("")
    h.append("struct tl_api_spec {")
    h.append("\tint16_t key;")
    h.append("\tconst char *name;")
    h.append("\tint16_t version_min;")
    h.append("\tint16_t version_max;")
    h.append("\tint16_t flexible_min; /* -1: never flexible */")
    h.append("};")
    h.append("")
    h.append("extern const struct tl_api_spec tl_api_specs[];")
    h.append("extern const int tl_api_spec_count;")
    h.append("")
    h.append("/* Decodes the body of request @api_key at @version into an arena-allocated struct")
    h.append(" * (for fuzzing and tools). TL_ERR_UNSUPPORTED_VERSION for an unknown key/version. */")
    h.append("tl_err tl_request_decode_any(int16_t api_key, int16_t version, struct tl_cursor *cursor,")
    h.append("\t\t\t      struct tl_arena *arena, void **msg_out);")
    h.append("")
    h.append("#endif")
    c.append("const struct tl_api_spec tl_api_specs[] = {")
    for m in reqs:
        flex = m.flexible[0] if m.flexible else -1
        c.append("\t{%d, \"%s\", %d, %d, %d}," % (m.api_key, m.name[:-len("Request")], m.valid[0],
                                                 m.valid[1], flex))
    c.append("};")
    c.append("const int tl_api_spec_count = %d;" % len(reqs))
    c.append("")
    c.append("tl_err tl_request_decode_any(int16_t api_key, int16_t version, struct tl_cursor *cursor,")
    c.append("\t\t\t      struct tl_arena *arena, void **msg_out)")
    c.append("{")
    c.append("\tswitch (api_key) {")
    for m in reqs:
        c.append("\tcase %d: {" % m.api_key)
        c.append("\t\tif (version < %d || version > %d)" % m.valid)
        c.append("\t\t\treturn TL_ERR_UNSUPPORTED_VERSION;")
        c.append("\t\tstruct %s *msg = tl_arena_alloc(arena, sizeof(*msg));" % m.prefix)
        c.append("\t\tif (!msg)")
        c.append("\t\t\treturn TL_ERR_NOMEM;")
        c.append("\t\t*msg_out = msg;")
        c.append("\t\treturn %s_decode(cursor, version, arena, msg);" % m.prefix)
        c.append("\t}")
    c.append("\tdefault:")
    c.append("\t\treturn TL_ERR_UNSUPPORTED_VERSION;")
    c.append("\t}")
    c.append("}")
    c.append("")
    with open(os.path.join(out_dir, "messages.h"), "w") as f:
        f.write("\n".join(h) + "\n")
    with open(os.path.join(out_dir, "messages.c"), "w") as f:
        f.write("\n".join(c) + "\n")


if __name__ == "__main__":
    main()
