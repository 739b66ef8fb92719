/* validate.c - record-level checks of a produced RecordBatch v2, see validate.h.
 * Kafka's framings: gzip is a gzip stream (zlib, auto-detecting the header), lz4 the
 * LZ4 frame format, zstd one or more zstd frames, snappy either xerial's framing (the
 * 16-byte header "\x82SNAPPY\0" + versions, then big-endian length-prefixed raw
 * blocks; what the Java client and librdkafka write) or one raw snappy block. */
#include "protocol/validate.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <zstd.h>

#include "common/assert.h"
#include "common/buf.h"

#define XERIAL_HEADER_BYTES 16
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

void tl_batch_scratch_init(struct tl_batch_scratch *scratch, size_t max_bytes)
{
	memset(scratch, 0, sizeof(*scratch));
	scratch->max_bytes = max_bytes;
}

void tl_batch_scratch_deinit(struct tl_batch_scratch *scratch)
{
	free(scratch->buf);
	ZSTD_freeDCtx(scratch->zstd);
	if (scratch->lz4)
		LZ4F_freeDecompressionContext(scratch->lz4);
	if (scratch->zlib) {
		inflateEnd(scratch->zlib);
		free(scratch->zlib);
	}
	memset(scratch, 0, sizeof(*scratch));
}

/* Makes room for @need bytes in total; TL_ERR_LIMIT past max_bytes. */
static tl_err scratch_reserve(struct tl_batch_scratch *scratch, size_t need)
{
	if (need > scratch->max_bytes)
		return TL_ERR_LIMIT;
	if (need <= scratch->cap)
		return TL_OK;
	size_t cap = scratch->cap ? scratch->cap : 65536;
	while (cap < need)
		cap *= 2;
	cap = TL_MIN(cap, scratch->max_bytes);
	uint8_t *p = realloc(scratch->buf, cap);
	if (!p)
		return TL_ERR_NOMEM;
	scratch->buf = p;
	scratch->cap = cap;
	return TL_OK;
}

/* Room to write at least a little more after @used bytes. */
static tl_err scratch_grow(struct tl_batch_scratch *scratch, size_t used)
{
	if (scratch->cap - used >= 4096)
		return TL_OK;
	return scratch_reserve(scratch, TL_MAX(used * 2, used + 65536));
}

static tl_err inflate_gzip(struct tl_batch_scratch *scratch, const uint8_t *in, size_t in_len,
			   size_t *out_len)
{
	z_stream *zs = scratch->zlib;
	if (!zs) {
		zs = calloc(1, sizeof(*zs));
		if (!zs)
			return TL_ERR_NOMEM;
		if (inflateInit2(zs, 15 + 32) != Z_OK) { /* +32: gzip or zlib header */
			free(zs);
			return TL_ERR_NOMEM;
		}
		scratch->zlib = zs;
	} else if (inflateReset(zs) != Z_OK) {
		return TL_ERR_CORRUPT_MESSAGE;
	}
	zs->next_in = (Bytef *)(uintptr_t)in;
	zs->avail_in = (uInt)in_len;
	size_t used = 0;
	for (;;) {
		tl_err err = scratch_grow(scratch, used);
		if (err != TL_OK)
			return err;
		zs->next_out = scratch->buf + used;
		zs->avail_out = (uInt)TL_MIN(scratch->cap - used, (size_t)UINT32_MAX);
		int rc = inflate(zs, Z_NO_FLUSH);
		used = (size_t)(zs->next_out - scratch->buf);
		if (rc == Z_STREAM_END) {
			if (zs->avail_in == 0)
				break;
			/* Concatenated gzip members. */
			if (inflateReset(zs) != Z_OK)
				return TL_ERR_CORRUPT_MESSAGE;
			continue;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return TL_ERR_CORRUPT_MESSAGE;
		if (rc == Z_BUF_ERROR && zs->avail_in == 0)
			return TL_ERR_CORRUPT_MESSAGE; /* truncated stream */
	}
	*out_len = used;
	return TL_OK;
}

static tl_err decompress_zstd(struct tl_batch_scratch *scratch, const uint8_t *in, size_t in_len,
			      size_t *out_len)
{
	if (!scratch->zstd && !(scratch->zstd = ZSTD_createDCtx()))
		return TL_ERR_NOMEM;
	ZSTD_DCtx_reset(scratch->zstd, ZSTD_reset_session_only);
	/* One frame that states its size (libtally's and librdkafka's do): decoded in one
	 * call straight into the buffer, without the streaming decoder's window buffer
	 * and its copy out. A size that lies fails the decode. Anything else (several
	 * frames, no size: Java's ZstdOutputStream) streams. */
	unsigned long long size = ZSTD_getFrameContentSize(in, in_len);
	if (size <= scratch->max_bytes && ZSTD_findFrameCompressedSize(in, in_len) == in_len) {
		tl_err err = scratch_reserve(scratch, (size_t)size + 1);
		if (err != TL_OK)
			return err;
		size_t n = ZSTD_decompressDCtx(scratch->zstd, scratch->buf, (size_t)size + 1, in,
					       in_len);
		if (ZSTD_isError(n) || n != size)
			return TL_ERR_CORRUPT_MESSAGE;
		*out_len = n;
		return TL_OK;
	}
	ZSTD_inBuffer zin = {in, in_len, 0};
	size_t used = 0;
	for (;;) {
		tl_err err = scratch_grow(scratch, used);
		if (err != TL_OK)
			return err;
		ZSTD_outBuffer zout = {scratch->buf, scratch->cap, used};
		size_t ret = ZSTD_decompressStream(scratch->zstd, &zout, &zin);
		if (ZSTD_isError(ret))
			return TL_ERR_CORRUPT_MESSAGE;
		used = zout.pos;
		if (ret == 0 && zin.pos == zin.size)
			break;
		if (zin.pos == zin.size && zout.pos < zout.size)
			return TL_ERR_CORRUPT_MESSAGE; /* truncated frame */
	}
	*out_len = used;
	return TL_OK;
}

static tl_err decompress_lz4(struct tl_batch_scratch *scratch, const uint8_t *in, size_t in_len,
			     size_t *out_len)
{
	if (!scratch->lz4) {
		LZ4F_dctx *dctx;
		if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
			return TL_ERR_NOMEM;
		scratch->lz4 = dctx;
	}
	LZ4F_resetDecompressionContext(scratch->lz4);
	size_t used = 0, consumed = 0;
	for (;;) {
		tl_err err = scratch_grow(scratch, used);
		if (err != TL_OK)
			return err;
		size_t dst = scratch->cap - used, src = in_len - consumed;
		size_t hint = LZ4F_decompress(scratch->lz4, scratch->buf + used, &dst,
					      in + consumed, &src, NULL);
		if (LZ4F_isError(hint))
			return TL_ERR_CORRUPT_MESSAGE;
		used += dst;
		consumed += src;
		if (hint == 0) {
			if (consumed == in_len)
				break;
			LZ4F_resetDecompressionContext(scratch->lz4); /* another frame */
			continue;
		}
		if (consumed == in_len && dst == 0)
			return TL_ERR_CORRUPT_MESSAGE; /* truncated frame */
	}
	*out_len = used;
	return TL_OK;
}

/* Appends one raw snappy block's contents after @used. */
static tl_err snappy_block(struct tl_batch_scratch *scratch, const uint8_t *in, size_t in_len,
			   size_t *used)
{
	size_t n;
	if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK)
		return TL_ERR_CORRUPT_MESSAGE;
	tl_err err = scratch_reserve(scratch, *used + n);
	if (err != TL_OK)
		return err;
	size_t got = n;
	if (snappy_uncompress((const char *)in, in_len, (char *)scratch->buf + *used, &got) !=
		    SNAPPY_OK ||
	    got != n)
		return TL_ERR_CORRUPT_MESSAGE;
	*used += n;
	return TL_OK;
}

static tl_err decompress_snappy(struct tl_batch_scratch *scratch, const uint8_t *in, size_t in_len,
				size_t *out_len)
{
	size_t used = 0;
	if (in_len < XERIAL_HEADER_BYTES || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0) {
		tl_err err = snappy_block(scratch, in, in_len, &used);
		*out_len = used;
		return err;
	}
	size_t pos = XERIAL_HEADER_BYTES;
	while (pos < in_len) {
		if (in_len - pos < 4)
			return TL_ERR_CORRUPT_MESSAGE;
		uint32_t block = tl_be32_get(in + pos);
		pos += 4;
		if (block > in_len - pos)
			return TL_ERR_CORRUPT_MESSAGE;
		tl_err err = snappy_block(scratch, in + pos, block, &used);
		if (err != TL_OK)
			return err;
		pos += block;
	}
	*out_len = used;
	return TL_OK;
}

tl_err tl_batch_decompress(struct tl_batch_scratch *scratch, enum tl_compression codec,
			   const uint8_t *in, size_t in_len, size_t *out_len)
{
	*out_len = 0;
	scratch->body = NULL; /* the buffer is overwritten */
	switch (codec) {
	case TL_COMPRESSION_GZIP:
		return inflate_gzip(scratch, in, in_len, out_len);
	case TL_COMPRESSION_SNAPPY:
		return decompress_snappy(scratch, in, in_len, out_len);
	case TL_COMPRESSION_LZ4:
		return decompress_lz4(scratch, in, in_len, out_len);
	case TL_COMPRESSION_ZSTD:
		return decompress_zstd(scratch, in, in_len, out_len);
	default:
		return TL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
}

/* ---- compression, as Kafka's clients frame it ---- */

static tl_err compress_gzip(const uint8_t *in, size_t len, struct tl_buf *out)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 15 + 16: a gzip header and trailer, as Java's GZIPOutputStream writes. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return TL_ERR_NOMEM;
	size_t at = out->len;
	size_t bound = deflateBound(&zs, (uLong)len) + 32;
	uint8_t *dst = tl_buf_extend(out, bound);
	if (!dst || len > UINT32_MAX || bound > UINT32_MAX) {
		deflateEnd(&zs);
		out->len = at;
		return dst ? TL_ERR_LIMIT : TL_ERR_NOMEM;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = dst;
	zs.avail_out = (uInt)bound;
	int rc = deflate(&zs, Z_FINISH);
	size_t n = (size_t)zs.total_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		out->len = at;
		return TL_ERR_NOMEM;
	}
	out->len = at + n;
	return TL_OK;
}

static tl_err compress_lz4(const uint8_t *in, size_t len, struct tl_buf *out)
{
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof(prefs));
	prefs.frameInfo.blockSizeID = LZ4F_max64KB; /* Kafka's KafkaLZ4BlockOutputStream */
	prefs.frameInfo.blockMode = LZ4F_blockIndependent;
	size_t at = out->len;
	size_t bound = LZ4F_compressFrameBound(len, &prefs);
	uint8_t *dst = tl_buf_extend(out, bound);
	if (!dst)
		return TL_ERR_NOMEM;
	size_t n = LZ4F_compressFrame(dst, bound, in, len, &prefs);
	if (LZ4F_isError(n)) {
		out->len = at;
		return TL_ERR_NOMEM;
	}
	out->len = at + n;
	return TL_OK;
}

/* xerial's framing, as snappy-java's SnappyOutputStream writes it for the Java client
 * (librdkafka reads it too): the 16-byte header, then 32 KiB input blocks, each a
 * big-endian length and one raw snappy block. */
#define XERIAL_BLOCK_BYTES 32768
static tl_err compress_snappy(const uint8_t *in, size_t len, struct tl_buf *out)
{
	size_t at = out->len;
	uint8_t *h = tl_buf_extend(out, XERIAL_HEADER_BYTES);
	if (!h)
		return TL_ERR_NOMEM;
	memcpy(h, xerial_magic, sizeof(xerial_magic));
	tl_be32_put(h + 8, 1);  /* version */
	tl_be32_put(h + 12, 1); /* compatible version */
	for (size_t pos = 0; pos < len; pos += XERIAL_BLOCK_BYTES) {
		size_t chunk = TL_MIN(len - pos, (size_t)XERIAL_BLOCK_BYTES);
		size_t bound = snappy_max_compressed_length(chunk);
		size_t prefix = out->len;
		uint8_t *dst = tl_buf_extend(out, 4 + bound);
		if (!dst) {
			out->len = at;
			return TL_ERR_NOMEM;
		}
		size_t n = bound;
		if (snappy_compress((const char *)in + pos, chunk, (char *)dst + 4, &n) !=
		    SNAPPY_OK) {
			out->len = at;
			return TL_ERR_NOMEM;
		}
		tl_be32_put(dst, (uint32_t)n);
		out->len = prefix + 4 + n;
	}
	return TL_OK;
}

tl_err tl_batch_compress(enum tl_compression codec, const uint8_t *in, size_t len,
			 struct tl_buf *out)
{
	switch (codec) {
	case TL_COMPRESSION_GZIP:
		return compress_gzip(in, len, out);
	case TL_COMPRESSION_SNAPPY:
		return compress_snappy(in, len, out);
	case TL_COMPRESSION_LZ4:
		return compress_lz4(in, len, out);
	default:
		return TL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
}

/* Skips a varint-length byte string (-1: null, when @nullable); returns its length. */
static inline int32_t skip_varbytes(struct tl_cursor *c, bool nullable)
{
	int32_t len = tl_cursor_varint(c);
	if (len < -1 || (len == -1 && !nullable)) {
		tl_cursor_fail(c);
		return -1;
	}
	if (len > 0)
		tl_cursor_skip(c, (size_t)len);
	return len;
}

/* Walks @count records in @len bytes at @p; with @key_required a record with a null key
 * is refused. */
static tl_err walk_records(const uint8_t *p, size_t len, int32_t count, bool key_required,
			   int64_t *max_delta, const char **why)
{
	*max_delta = INT64_MIN;
	struct tl_cursor c;
	tl_cursor_init(&c, p, len);
	for (int32_t i = 0; i < count; i++) {
		if (tl_cursor_left(&c) == 0) {
			*why = "the batch holds fewer records than its recordsCount";
			return TL_ERR_INVALID_RECORD;
		}
		int32_t length = tl_cursor_varint(&c);
		if (c.failed || length <= 0 || (size_t)length > tl_cursor_left(&c)) {
			*why = "a record's length runs past the batch";
			return TL_ERR_CORRUPT_MESSAGE;
		}
		struct tl_cursor rec;
		tl_cursor_init(&rec, c.pos, (size_t)length);
		c.pos += length;
		tl_cursor_skip(&rec, 1); /* attributes: none defined for records */
		int64_t timestamp_delta = tl_cursor_varlong(&rec);
		if (!rec.failed && timestamp_delta > *max_delta)
			*max_delta = timestamp_delta;
		int32_t offset_delta = tl_cursor_varint(&rec);
		if (!rec.failed && offset_delta != i) {
			*why = "a record's offsetDelta is not its position in the batch";
			return TL_ERR_INVALID_RECORD;
		}
		int32_t key_len = skip_varbytes(&rec, true);
		skip_varbytes(&rec, true); /* value */
		int32_t headers = tl_cursor_varint(&rec);
		if (headers < 0 || (size_t)headers > tl_cursor_left(&rec))
			tl_cursor_fail(&rec);
		for (int32_t h = 0; h < headers && !rec.failed; h++) {
			skip_varbytes(&rec, false); /* header key: never null */
			skip_varbytes(&rec, true);
		}
		if (rec.failed || tl_cursor_left(&rec) != 0) {
			*why = "a record's fields do not match its length";
			return TL_ERR_CORRUPT_MESSAGE;
		}
		if (key_required && key_len < 0) {
			*why = "a compacted topic cannot accept a record without a key";
			return TL_ERR_INVALID_RECORD;
		}
	}
	if (tl_cursor_left(&c) != 0) {
		*why = "bytes follow the last record of recordsCount";
		return TL_ERR_INVALID_RECORD;
	}
	return TL_OK;
}

/* baseTimestamp + the largest delta (-1 without records), saturating: the header's
 * values come from the client. */
static int64_t timestamp_add(int64_t base, int64_t delta)
{
	if (delta == INT64_MIN)
		return -1;
	if ((delta > 0 && base > INT64_MAX - delta) || (delta < 0 && base < INT64_MIN - delta))
		return delta > 0 ? INT64_MAX : INT64_MIN;
	return base + delta;
}

tl_err tl_batch_validate_records(const uint8_t *data, size_t len, const struct tl_batch_header *h,
				 bool key_required, struct tl_batch_scratch *scratch,
				 const char **why_out)
{
	TL_ASSERT(len >= TL_BATCH_HEADER_BYTES);
	const uint8_t *body = data + TL_BATCH_HEADER_BYTES;
	size_t body_len = len - TL_BATCH_HEADER_BYTES;
	enum tl_compression codec = tl_batch_compression(h);
	int64_t max_delta;
	if (codec == TL_COMPRESSION_NONE) {
		tl_err err = walk_records(body, body_len, h->records_count, key_required,
					  &max_delta, why_out);
		scratch->max_timestamp = timestamp_add(h->base_timestamp, max_delta);
		return err;
	}
	size_t out_len = 0;
	tl_err err = tl_batch_decompress(scratch, codec, body, body_len, &out_len);
	if (err == TL_ERR_UNSUPPORTED_COMPRESSION_TYPE) {
		*why_out = "unknown compression codec";
		return TL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
	if (err == TL_ERR_LIMIT) {
		*why_out = "the decompressed records exceed the broker's limit";
		return TL_ERR_RECORD_LIST_TOO_LARGE;
	}
	if (err == TL_ERR_NOMEM) {
		*why_out = "out of memory decompressing the batch";
		return TL_ERR_UNKNOWN_SERVER_ERROR;
	}
	if (err != TL_OK) {
		*why_out = "the compressed records do not decompress";
		return TL_ERR_CORRUPT_MESSAGE;
	}
	err = walk_records(scratch->buf, out_len, h->records_count, key_required, &max_delta,
			   why_out);
	scratch->max_timestamp = timestamp_add(h->base_timestamp, max_delta);
	if (err == TL_OK) {
		scratch->body = body;
		scratch->body_bytes = body_len;
		scratch->records_bytes = out_len;
	}
	return err;
}

const uint8_t *tl_batch_scratch_records(const struct tl_batch_scratch *scratch, const uint8_t *body,
					size_t body_bytes, size_t *records_bytes_out)
{
	if (!scratch->body || scratch->body != body || scratch->body_bytes != body_bytes)
		return NULL;
	*records_bytes_out = scratch->records_bytes;
	return scratch->buf;
}
