/*-------------------------------------------------------------------------
 *
 * api.c
 *	  SQL-callable C entry points that are neither the trigger nor signing:
 *	  waking the worker, waiting for it, and register()'s reachability check.
 *
 * IDENTIFICATION
 *	  src/api.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <curl/curl.h>

#include "fmgr.h"
#include "http.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(webhook_wake);
PG_FUNCTION_INFO_V1(webhook_wait_until_running);
PG_FUNCTION_INFO_V1(webhook_is_preloaded);
PG_FUNCTION_INFO_V1(webhook_http_head);

/*
 * webhook.wake(): wake the worker when the calling transaction commits.
 */
Datum
webhook_wake(PG_FUNCTION_ARGS)
{
	webhook_wake_at_commit();
	PG_RETURN_VOID();
}

/*
 * webhook.wait_until_running(timeout interval): true once the worker has
 * published its latch, false if the timeout passes first.
 */
Datum
webhook_wait_until_running(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	int64		timeout_ms = (timeout->time + (int64) timeout->day * USECS_PER_DAY) / 1000;
	TimestampTz deadline = GetCurrentTimestamp() + timeout_ms * 1000;

	if (!webhook_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("webhook must be loaded via shared_preload_libraries")));

	while (!webhook_worker_running())
	{
		if (GetCurrentTimestamp() >= deadline)
			PG_RETURN_BOOL(false);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_BOOL(true);
}

Datum
webhook_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(webhook_preloaded);
}

/* curl progress callback: abort the transfer when the backend is cancelled */
static int
head_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * webhook._http_head(url, timeout_ms): the status code of a HEAD request to
 * url, or NULL when nothing answered.  Redirects are not followed, and the
 * addresses of webhook.deny_networks are refused as the worker refuses them.
 */
Datum
webhook_http_head(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			timeout_ms = PG_GETARG_INT32(1);
	char		denied[HTTP_DENIED_LEN];
	CURL	   *curl;
	CURLcode	rc;
	long		status = 0;

	curl = curl_easy_init();
	if (curl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a curl handle")));

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, webhook_user_agent);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, head_progress);
	http_deny_networks(curl, denied);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);

	CHECK_FOR_INTERRUPTS();

	if (rc != CURLE_OK || status == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32((int32) status);
}
