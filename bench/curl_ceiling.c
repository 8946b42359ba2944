/*
 * curl_ceiling.c
 *		The most a libcurl multi client does against a receiver: the same
 *		POST body as bench/delivery.sh, kept-alive connections, no signing,
 *		no database.  It bounds what the worker, which sends with libcurl
 *		too, could reach on this machine.
 *
 *		It drives libcurl as a plain client does (curl_multi_perform() and
 *		curl_multi_poll()), or, with "socket", as the worker does: through
 *		libcurl's socket interface (curl_multi_socket_action() on each
 *		socket an epoll set says is ready, the sockets and the timeout that
 *		libcurl asks for kept by its callbacks), which the worker needs to
 *		wait on its latch and curl's sockets at once (src/http.c).
 *
 *	Usage: curl_ceiling URL REQUESTS IN_FLIGHT [perform|socket]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define Max(a, b) ((a) > (b) ? (a) : (b))

static const char *body =
	"{\"type\":\"ORDER_CREATE\",\"timestamp\":\"2026-11-23T12:00:00.000Z\","
	"\"data\":{\"orderId\":1,\"total\":12.5}}";

/* The response body is read and dropped. */
static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

static double
seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * the socket interface's state: the epoll set, and when libcurl asked to
 * be called (0: it did not)
 */
static int	epoll_fd;
static double deadline = 0;

/* CURLMOPT_SOCKETFUNCTION: keep the epoll set as libcurl asks */
static int
socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct epoll_event ev = {0};
	CURLM	   *multi = (CURLM *) userp;

	(void) easy;
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE)
	{
		epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(multi, fd, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	/* (a socket reused under the same number is in the set already) */
	if (socketp != NULL || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
		epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
	curl_multi_assign(multi, fd, multi);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl asked to be called */
static int
timer_callback(CURLM *multi, long ms, void *userp)
{
	(void) multi;
	(void) userp;
	deadline = ms < 0 ? 0 : seconds_now() + ms / 1000.0;
	return 0;
}

/* Let libcurl work: on every transfer, or on the sockets that are ready. */
static void
drive(CURLM *multi, int by_socket)
{
	struct epoll_event events[64];
	int			running;
	int			n;
	int			i;

	if (!by_socket)
	{
		curl_multi_perform(multi, &running);
		return;
	}
	n = epoll_wait(epoll_fd, events, 64,
				   deadline == 0 ? 100 : (int) Max(0, (deadline - seconds_now()) * 1000));
	for (i = 0; i < n; i++)
		curl_multi_socket_action(multi, events[i].data.fd,
								 ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
								 ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
								 ((events[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0),
								 &running);
	if (deadline != 0 && seconds_now() >= deadline)
	{
		deadline = 0;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

int
main(int argc, char **argv)
{
	CURLM	   *multi;
	struct curl_slist *headers;
	long		total,
				started = 0,
				done = 0,
				failed = 0;
	int			in_flight;
	int			by_socket;
	int			running;
	double		start;

	if ((argc != 4 && argc != 5) || (total = atol(argv[2])) <= 0 ||
		(in_flight = atoi(argv[3])) <= 0 ||
		(argc == 5 && strcmp(argv[4], "perform") != 0 && strcmp(argv[4], "socket") != 0))
	{
		fprintf(stderr, "usage: %s URL REQUESTS IN_FLIGHT [perform|socket]\n", argv[0]);
		return 2;
	}
	by_socket = argc == 5 && strcmp(argv[4], "socket") == 0;
	curl_global_init(CURL_GLOBAL_ALL);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) in_flight);
	if (by_socket)
	{
		epoll_fd = epoll_create1(0);
		curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
		curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, multi);
		curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_callback);
	}
	headers = curl_slist_append(NULL, "Content-Type: application/json");

	start = seconds_now();
	for (int i = 0; i < in_flight && started < total; i++, started++)
	{
		CURL	   *easy = curl_easy_init();

		curl_easy_setopt(easy, CURLOPT_URL, argv[1]);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
		curl_multi_add_handle(multi, easy);
	}
	if (by_socket)
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	while (done < total)
	{
		CURLMsg    *msg;
		int			left;

		drive(multi, by_socket);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		{
			long		status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result != CURLE_OK || status < 200 || status > 299)
				failed++;
			done++;
			/* the handle is reused: its connection stays open */
			curl_multi_remove_handle(multi, msg->easy_handle);
			if (started < total)
			{
				curl_multi_add_handle(multi, msg->easy_handle);
				started++;
			}
			else
				curl_easy_cleanup(msg->easy_handle);
		}
		if (done < total && !by_socket)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	printf("curl %.0f req/s (%ld requests, %ld failed)\n",
		   total / (seconds_now() - start), total, failed);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return failed > 0;
}
