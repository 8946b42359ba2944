/*
 * curl_ceiling.c
 *		The most a libcurl multi client does against a receiver: the same
 *		POST body as bench/delivery.sh, kept-alive connections, no signing,
 *		no database.  It bounds what the worker, which sends with libcurl
 *		too, could reach on this machine.
 *
 *	Usage: curl_ceiling URL REQUESTS IN_FLIGHT
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
	double		start;

	if (argc != 4 || (total = atol(argv[2])) <= 0 || (in_flight = atoi(argv[3])) <= 0)
	{
		fprintf(stderr, "usage: %s URL REQUESTS IN_FLIGHT\n", argv[0]);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_ALL);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) in_flight);
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
	while (done < total)
	{
		CURLMsg    *msg;
		int			running,
					left;

		curl_multi_perform(multi, &running);
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
		if (done < total)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	printf("curl %.0f req/s (%ld requests, %ld failed)\n",
		   total / (seconds_now() - start), total, failed);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return failed > 0;
}
