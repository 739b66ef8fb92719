/* rawclient.h - the raw-protocol client plumbing that rawproto.c and raw_resend.c share:
 * connecting, sending and reading whole frames, request headers, and the requests both
 * send (Metadata of one topic, InitProducerId, Produce to one partition), built with the
 * generated codec. Nothing here decides what a failure means: rawproto fails its check,
 * raw_resend drops the connection and re-sends; so every function returns what happened
 * and none exits or prints. Header-only, as tally_tail.h: the Makefile builds every .c
 * file in tests/progs as a program of its own. */
#ifndef TL_TESTS_PROGS_RAWCLIENT_H
#define TL_TESTS_PROGS_RAWCLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/time.h"
#include "protocol/api.h"
#include "protocol/messages.h"

enum raw_io {
	RAW_IO_OK,
	RAW_IO_CLOSED,  /* the peer closed (EOF, EPIPE, ECONNRESET) */
	RAW_IO_TIMEOUT, /* the deadline passed */
	RAW_IO_ERROR,   /* another error: errno says which, *failed_call names the call */
};

/* A TCP connection to @host:@port with TCP_NODELAY. @wait_ms < 0: a blocking connect();
 * else a non-blocking one given up after @wait_ms (a partitioned host drops SYNs, and
 * TCP's own wait is minutes), the socket blocking again once connected. Returns the
 * socket, or -1 with *@failed_call naming the call that failed: "getaddrinfo" (its code
 * in *@gai_code), else errno says why (after a wait that ran out, "connect" with errno
 * left as it was). */
static inline int raw_connect(const char *host, const char *port, int wait_ms,
			      const char **failed_call, int *gai_code)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	*gai_code = getaddrinfo(host, port, &hints, &res);
	if (*gai_code != 0) {
		*failed_call = "getaddrinfo";
		return -1;
	}
	int type = res->ai_socktype | SOCK_CLOEXEC | (wait_ms < 0 ? 0 : SOCK_NONBLOCK);
	int fd = socket(res->ai_family, type, res->ai_protocol);
	if (fd == -1) {
		*failed_call = "socket";
		freeaddrinfo(res);
		return -1;
	}
	*failed_call = "connect";
	int rc = connect(fd, res->ai_addr, res->ai_addrlen);
	int e = errno;
	freeaddrinfo(res);
	errno = e;
	if (rc == -1 && (wait_ms < 0 || errno != EINPROGRESS))
		goto out_close;
	if (wait_ms >= 0) {
		if (rc == -1) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t len = sizeof(soerr);
			if (poll(&pfd, 1, wait_ms) != 1 ||
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr != 0)
				goto out_close;
		}
		*failed_call = "fcntl";
		int flags = fcntl(fd, F_GETFL);
		if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
			goto out_close;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
out_close:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* Writes all of @data to @fd. */
static inline enum raw_io raw_send_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EPIPE || errno == ECONNRESET ? RAW_IO_CLOSED : RAW_IO_ERROR;
		p += n;
		len -= (size_t)n;
	}
	return RAW_IO_OK;
}

/* Reads exactly @len bytes from @fd into @p by @deadline_ms (tl_mono_ms()). */
static inline enum raw_io raw_recv_exact(int fd, uint8_t *p, size_t len, int64_t deadline_ms,
					 const char **failed_call)
{
	size_t have = 0;
	while (have < len) {
		int64_t left = deadline_ms - tl_mono_ms();
		if (left <= 0)
			return RAW_IO_TIMEOUT;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*failed_call = "poll";
			return RAW_IO_ERROR;
		}
		if (n == 0)
			return RAW_IO_TIMEOUT;
		ssize_t r = recv(fd, p + have, len - have, 0);
		if (r == 0)
			return RAW_IO_CLOSED;
		if (r == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return RAW_IO_CLOSED;
			*failed_call = "recv";
			return RAW_IO_ERROR;
		}
		have += (size_t)r;
	}
	return RAW_IO_OK;
}

/* Starts a request frame in @frame (emptied first): room for the size, then the request
 * header with the next correlation id from *@correlation_id. Returns that id. */
static inline int32_t raw_request_begin(struct tl_buf *frame, int32_t *correlation_id,
					const char *client_id, int16_t key, int16_t version)
{
	tl_buf_reset(frame);
	tl_buf_i32(frame, 0);
	struct tl_request_header header = {
		.api_key = key,
		.api_version = version,
		.correlation_id = (*correlation_id)++,
		.client_id = tl_str_of(client_id),
	};
	tl_request_header_encode(frame, &header);
	return header.correlation_id;
}

/* Writes @frame's size into its first 4 bytes; false when encoding it ran out of memory. */
static inline bool raw_request_finish(struct tl_buf *frame)
{
	if (frame->failed)
		return false;
	tl_be32_put(frame->data, (uint32_t)(frame->len - 4));
	return true;
}

/* An answer: its frame (owned), the cursor after the response header, and the arena its
 * decoded form lives in. */
struct raw_reply {
	uint8_t *frame;
	uint32_t len;
	struct tl_cursor body;
	struct tl_arena arena;
};

/* Points @r at @frame (takes it) of @len bytes and decodes its response header for @key
 * @version; false when it does not decode. The correlation id goes to *@correlation_id. */
static inline bool raw_reply_open(struct raw_reply *r, uint8_t *frame, uint32_t len, int16_t key,
				  int16_t version, int32_t *correlation_id)
{
	r->frame = frame;
	r->len = len;
	tl_cursor_init(&r->body, r->frame, len);
	*correlation_id = -1;
	return tl_response_header_decode(&r->body, key, version, correlation_id) == TL_OK;
}

/* Frees @r's frame and arena; a reply never opened (frame NULL) holds nothing. */
static inline void raw_reply_free(struct raw_reply *r)
{
	if (!r->frame)
		return;
	free(r->frame);
	r->frame = NULL;
	tl_arena_deinit(&r->arena);
}

/* Encodes a Metadata request for @topic alone, never creating it, into @frame; returns
 * its correlation id. */
static inline int32_t raw_encode_metadata(struct tl_buf *frame, int32_t *correlation_id,
					  const char *client_id, int16_t version, const char *topic)
{
	struct tl_metadata_request_metadata_request_topic mt;
	tl_metadata_request_metadata_request_topic_defaults(&mt);
	mt.name = tl_str_of(topic);
	struct tl_metadata_request md;
	tl_metadata_request_defaults(&md);
	md.topics_count = 1;
	md.topics = &mt;
	md.allow_auto_topic_creation = false;
	int32_t corr =
		raw_request_begin(frame, correlation_id, client_id, TL_API_METADATA, version);
	tl_metadata_request_encode(frame, version, &md);
	return corr;
}

/* Encodes an InitProducerId request (@txn_id NULL: an idempotent producer) into @frame;
 * returns its correlation id. */
static inline int32_t raw_encode_init_producer_id(struct tl_buf *frame, int32_t *correlation_id,
						  const char *client_id, int16_t version,
						  const char *txn_id, int32_t txn_timeout_ms)
{
	struct tl_init_producer_id_request msg;
	tl_init_producer_id_request_defaults(&msg);
	msg.transactional_id.ptr = NULL;
	msg.transactional_id.len = -1;
	if (txn_id)
		msg.transactional_id = tl_str_of(txn_id);
	msg.transaction_timeout_ms = txn_timeout_ms;
	msg.producer_id = -1;
	msg.producer_epoch = -1;
	int32_t corr = raw_request_begin(frame, correlation_id, client_id, TL_API_INIT_PRODUCER_ID,
					 version);
	tl_init_producer_id_request_encode(frame, version, &msg);
	return corr;
}

/* Encodes a Produce of @len bytes of records (borrowed) to one partition into @frame
 * (@txn_id NULL: none); returns its correlation id. */
static inline int32_t raw_encode_produce(struct tl_buf *frame, int32_t *correlation_id,
					 const char *client_id, int16_t version, const char *txn_id,
					 int16_t acks, int32_t timeout_ms, const char *topic,
					 int32_t partition, const uint8_t *data, size_t len)
{
	struct tl_produce_request_partition_produce_data pd;
	tl_produce_request_partition_produce_data_defaults(&pd);
	pd.index = partition;
	pd.records.ptr = data;
	pd.records.len = (int32_t)len;
	struct tl_produce_request_topic_produce_data td;
	tl_produce_request_topic_produce_data_defaults(&td);
	td.name = tl_str_of(topic);
	td.partition_data_count = 1;
	td.partition_data = &pd;
	struct tl_produce_request msg;
	tl_produce_request_defaults(&msg);
	msg.transactional_id.ptr = NULL;
	msg.transactional_id.len = -1;
	if (txn_id)
		msg.transactional_id = tl_str_of(txn_id);
	msg.acks = acks;
	msg.timeout_ms = timeout_ms;
	msg.topic_data_count = 1;
	msg.topic_data = &td;
	int32_t corr = raw_request_begin(frame, correlation_id, client_id, TL_API_PRODUCE, version);
	tl_produce_request_encode(frame, version, &msg);
	return corr;
}

#endif
