/* notify.h - tells a service manager (systemd, Type=notify) that tallyd is ready. */
#ifndef TL_BROKER_NOTIFY_H
#define TL_BROKER_NOTIFY_H

#include <stddef.h>

#include "tally/error.h"

/* Longest state message tl_broker_notify() sends, in bytes. */
#define TL_BROKER_NOTIFY_BYTES_MAX 256

/* Sends @state (for example "READY=1", see sd_notify(3)) as one datagram to the AF_UNIX
 * socket that $NOTIFY_SOCKET names: a path, or "@name" for the abstract namespace.
 * Without $NOTIFY_SOCKET it sends nothing and returns TL_OK. On failure returns
 * TL_ERR_INVALID (the variable names no usable socket) or TL_ERR_IO, and writes the
 * detail into @why. Thread: any; blocking for at most one local datagram. */
tl_err tl_broker_notify(const char *state, char *why, size_t why_bytes);

#endif
