/* notify_test.c - READY=1 reaches the socket $NOTIFY_SOCKET names, as systemd expects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "broker/notify.h"
#include "common/tests/check_run.h"

static char why[512];

/* Binds a datagram socket at @name ("/path" or "@abstract") and returns it. */
static int listen_at(const char *name)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t name_bytes = strlen(name);
	ck_assert_uint_lt(name_bytes, sizeof(addr.sun_path));
	memcpy(addr.sun_path, name, name_bytes);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	socklen_t addr_bytes = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_bytes +
					   (name[0] == '/' ? 1 : 0));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, addr_bytes), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char got[64] = {0};
	ssize_t n = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);
	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_str_eq(got, want);
}

START_TEST(without_notify_socket_nothing_is_sent)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(tl_broker_notify("READY=1", why, sizeof(why)), TL_OK);
}
END_TEST

START_TEST(ready_reaches_a_path_socket)
{
	char dir[] = "/tmp/tally-notify.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ck_assert_int_eq(tl_broker_notify("READY=1", why, sizeof(why)), TL_OK);
	expect_datagram(fd, "READY=1");
	close(fd);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(ready_reaches_an_abstract_socket)
{
	char name[64];
	snprintf(name, sizeof(name), "@tally-notify-test-%d", (int)getpid());
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(tl_broker_notify("READY=1", why, sizeof(why)), TL_OK);
	expect_datagram(fd, "READY=1");
	close(fd);
}
END_TEST

START_TEST(a_relative_or_missing_socket_is_an_error_that_names_it)
{
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	ck_assert_int_eq(tl_broker_notify("READY=1", why, sizeof(why)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "relative/notify"));
	setenv("NOTIFY_SOCKET", "/nonexistent/tally/notify", 1);
	ck_assert_int_eq(tl_broker_notify("READY=1", why, sizeof(why)), TL_ERR_IO);
	ck_assert_ptr_nonnull(strstr(why, "ENOENT"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_notify");
	TCase *tc = tcase_create("notify");
	tcase_add_test(tc, without_notify_socket_nothing_is_sent);
	tcase_add_test(tc, ready_reaches_a_path_socket);
	tcase_add_test(tc, ready_reaches_an_abstract_socket);
	tcase_add_test(tc, a_relative_or_missing_socket_is_an_error_that_names_it);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
