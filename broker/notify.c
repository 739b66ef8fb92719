/* notify.c - the service manager's readiness protocol without libsystemd. sd_notify(3)
 * is one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET;
 * these few lines spare tallyd a library dependency. Credentials, file descriptors and
 * the other sd_notify variants are not needed, so not supported. */
#include "broker/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/assert.h"

tl_err tl_broker_notify(const char *state, char *why, size_t why_bytes)
{
	TL_ASSERT(state);
	TL_ASSERT(why_bytes > 0);
	size_t state_bytes = strlen(state);
	TL_ASSERT(state_bytes > 0 && state_bytes <= TL_BROKER_NOTIFY_BYTES_MAX);
	const char *name = getenv("NOTIFY_SOCKET");
	if (!name || !name[0])
		return TL_OK;

	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t name_bytes = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || name_bytes >= sizeof(addr.sun_path)) {
		snprintf(why, why_bytes, "NOTIFY_SOCKET=%.200s is not an absolute path or @name",
			 name);
		return TL_ERR_INVALID;
	}
	memcpy(addr.sun_path, name, name_bytes);
	/* "@name" is Linux's abstract namespace: a leading NUL, no terminator. */
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	socklen_t addr_bytes = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_bytes +
					   (name[0] == '/' ? 1 : 0));

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(why, why_bytes, "socket(AF_UNIX): %s", strerrorname_np(errno));
		return TL_ERR_IO;
	}
	ssize_t sent =
		sendto(fd, state, state_bytes, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_bytes);
	int sent_errno = errno;
	close(fd);
	if (sent == -1) {
		snprintf(why, why_bytes, "sendto NOTIFY_SOCKET=%.200s: %s", name,
			 strerrorname_np(sent_errno));
		return TL_ERR_IO;
	}
	/* A datagram is sent whole or not at all. */
	TL_ASSERT((size_t)sent == state_bytes);
	return TL_OK;
}
