/* metrics.h - the broker's counters, and the small HTTP listener that serves them as
 * Prometheus text (/metrics) next to a liveness check (/health).
 *
 * Counting: the broker runs one thread, so every counter is a plain uint64_t bumped on
 * the hot path (no lock, no atomic, no allocation). Gauges (leaders, under-replicated
 * partitions, connections, memory) are computed when scraped, off the hot path.
 * Kafka's names map to Prometheus ones mechanically: BrokerTopicMetrics MessagesInPerSec
 * becomes tally_broker_topic_messages_in_total{topic=...}; a rate is a `_total` counter,
 * a *TimeMs a `_seconds` histogram (docs/metrics.md lists them all).
 *
 * Serving: metrics.listener (e.g. http://127.0.0.1:9644; off when unset) is read in the
 * broker's own epoll loop. Connections are a fixed pool of TL_METRICS_HTTP_CONNS slots
 * whose buffers keep their memory between scrapes; a request head larger than
 * TL_METRICS_HTTP_HEAD_MAX, or one that does not parse, gets 400 and the connection
 * closes. One request per connection (Connection: close). */
#ifndef TL_BROKER_METRICS_H
#define TL_BROKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/histogram.h"
#include "protocol/messages.h"
#include "tally/error.h"

struct tl_broker;

#define TL_METRICS_HTTP_CONNS    8    /* scrapes served at once; more wait in the backlog */
#define TL_METRICS_HTTP_HEAD_MAX 4096 /* bytes of request line + headers */
#define TL_METRICS_HTTP_IDLE_MS  5000 /* to send the request; then between answer bytes */

/* Kafka's BrokerTopicMetrics, per topic. */
struct tl_topic_metrics {
	uint64_t messages_in;             /* records appended by produce requests */
	uint64_t bytes_in;                /* batch bytes appended by produce requests */
	uint64_t bytes_out;               /* record bytes sent to consumers */
	uint64_t messages_out;            /* offsets of the batches sent to consumers */
	uint64_t replication_bytes_out;   /* record bytes sent to follower brokers */
	uint64_t replication_bytes_in;    /* batch bytes a follower appended from its leader */
	uint64_t bytes_rejected;          /* produced bytes refused (invalid, too large) */
	uint64_t produce_requests;        /* partition entries in produce requests */
	uint64_t failed_produce_requests; /* ... answered with an error */
	uint64_t fetch_requests;          /* partition entries in answered fetches */
	uint64_t failed_fetch_requests;   /* ... answered with an error */
};

/* Broker-wide counters that have no better home. */
struct tl_metrics {
	uint64_t errors[TL_PROTO_ERROR_CODES]; /* error codes sent in responses, by code */
	uint64_t isr_shrinks; /* ISR changes committed while this broker led the partition */
	uint64_t isr_expands;
	uint64_t txn_committed; /* transactions this coordinator completed */
	uint64_t txn_aborted;
	struct tl_hist produce_batch_bytes; /* size of each appended produce batch */
	uint64_t scrapes;                   /* /metrics answered */
	uint64_t http_bad_requests;         /* metrics port requests answered 400 */
};

struct tl_metrics_server;

/* Opens metrics.listener when set and adds its socket to the broker's epoll set under
 * the tags @source_base .. @source_base + TL_METRICS_HTTP_CONNS. TL_OK when unset. */
tl_err tl_metrics_start(struct tl_broker *broker, uint64_t source_base);
/* An epoll event whose tag is @source_base + @index (0: the listener). */
void tl_metrics_on_event(struct tl_broker *broker, uint32_t index, uint32_t events);
/* Closes connections past TL_METRICS_HTTP_IDLE_MS (see metrics.c, invariant 3). */
void tl_metrics_tick(struct tl_broker *broker, int64_t now_ms);
void tl_metrics_stop(struct tl_broker *broker);
/* Writes every metric in Prometheus text format 0.0.4 to @out. */
void tl_metrics_render(struct tl_broker *broker, struct tl_buf *out);
/* True when the broker is fit to serve; otherwise @why (logfmt) says why not. */
bool tl_metrics_healthy(struct tl_broker *broker, char *why, size_t why_size);

/* ---- Prometheus text format (metrics_text.c) ---- */

/* "# HELP name help\n# TYPE name type\n". */
void tl_prom_family(struct tl_buf *out, const char *name, const char *type, const char *help);
/* Appends `key="value"` (escaped as the format says) to @labels of @size bytes, after a
 * comma when @labels is not empty. Returns false (labels unchanged) if it would not fit. */
bool tl_prom_label(char *labels, size_t size, const char *key, const char *value);
/* "name{labels} value\n"; @labels may be NULL or "". */
void tl_prom_u64(struct tl_buf *out, const char *name, const char *labels, uint64_t value);
void tl_prom_f64(struct tl_buf *out, const char *name, const char *labels, double value);
/* A histogram's _bucket lines (cumulative, for k in [@log2_low, @log2_high], then
 * +Inf), _sum (times @unit) and _count. @unit converts the histogram's values: 1e-6 for
 * microseconds to seconds, 1 for bytes. Bucket k counts the values below 2^k, exactly:
 * for durations truncated to whole microseconds that is `le` = 2^k * @unit; for
 * @integral values (bytes) `le` = (2^k - 1) * @unit. */
void tl_prom_hist(struct tl_buf *out, const char *name, const char *labels,
		  const struct tl_hist *hist, double unit, bool integral, uint32_t log2_low,
		  uint32_t log2_high);

#endif
