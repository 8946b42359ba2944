/*-------------------------------------------------------------------------
 *
 * attempt.c
 *	  Composing an attempt's request: its URL and its header lines, the
 *	  signature and credentials among them.
 *
 * Everything here is a function of the attempt and the clock, and knows
 * nothing of curl or of the catalog: http.c hands the result to curl,
 * queue.c fills the attempt from the queue.
 *
 * IDENTIFICATION
 *	  src/attempt.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "attempt.h"
#include "common/base64.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

/* A new, empty attempt in a memory context of its own under parent. */
Attempt *
attempt_new(MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "webhook attempt",
											  ALLOCSET_SMALL_SIZES);
	Attempt    *attempt = MemoryContextAllocZero(cxt, sizeof(Attempt));

	attempt->cxt = cxt;
	attempt->retry_after = -1;
	return attempt;
}

void
attempt_free(Attempt *attempt)
{
	MemoryContextDelete(attempt->cxt);
}

/* s percent-encoded as a URL query value: RFC 3986 unreserved kept */
static char *
percent_encode(const char *s)
{
	StringInfoData out;
	const unsigned char *p;

	initStringInfo(&out);
	for (p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || strchr("-._~", *p))
			appendStringInfoChar(&out, (char) *p);
		else
			appendStringInfo(&out, "%%%02X", *p);
	}
	return out.data;
}

/*
 * The URL to request and the one to record, in the attempt's context: the
 * query key is appended percent-encoded to the first and masked in the
 * second.
 */
void
attempt_set_urls(Attempt *attempt, const char *url, const char *query_key)
{
	MemoryContext old = MemoryContextSwitchTo(attempt->cxt);
	const char *sep = strchr(url, '?') ? "&" : "?";

	if (query_key == NULL)
	{
		attempt->url = pstrdup(url);
		attempt->log_url = attempt->url;
	}
	else
	{
		attempt->url = psprintf("%s%skey=%s", url, sep, percent_encode(query_key));
		attempt->log_url = psprintf("%s%skey=********", url, sep);
	}
	MemoryContextSwitchTo(old);
}

/* "Basic " and the base64 of user:password */
static char *
basic_credentials(const char *user, const char *password)
{
	char	   *plain = psprintf("%s:%s", user, password);
	int			len = strlen(plain);
	char	   *encoded = palloc(pg_b64_enc_len(len) + 1);
	int			n = pg_b64_encode(plain, len, encoded, pg_b64_enc_len(len));

	if (n < 0)
		elog(ERROR, "webhook: could not encode credentials");
	encoded[n] = '\0';
	return psprintf("Basic %s", encoded);
}

/*
 * The signature with the previous secret of a hook whose secret is being
 * rotated, or NULL when there is none.  A previous secret that cannot sign
 * with the hook's scheme (only a direct write to the catalog stores one) is
 * left out: the request goes out signed with the current secret alone,
 * rather than not at all.
 */
static char *
previous_signature(Attempt *attempt, int64 timestamp)
{
	const char *prev = attempt->previous_secret;

	if (prev == NULL || prev[0] == '\0' ||
		(strcmp(attempt->signature, "standard") == 0 &&
		 !webhook_standard_secret_valid(prev)))
		return NULL;
	return webhook_signature(attempt->signature, prev, attempt->msg_id,
							 timestamp, attempt->body, strlen(attempt->body));
}

/*
 * The User-Agent line of webhook.user_agent, or NULL: the setting is empty,
 * or the request's static header lines name a User-Agent of their own.  Kept
 * from request to request, made again when the setting changes.  (Sent as
 * one of the request's header lines rather than through curl's own option,
 * which curl prints again at every request.)
 */
#define UA_PREFIX "User-Agent: "

static const char *
user_agent_line(List *static_lines)
{
	static char *line = NULL;
	ListCell   *lc;

	if (webhook_user_agent == NULL || webhook_user_agent[0] == '\0')
		return NULL;
	foreach(lc, static_lines)
	{
		if (pg_strncasecmp(lfirst(lc), "User-Agent:", strlen("User-Agent:")) == 0)
			return NULL;
	}
	if (line == NULL || strcmp(line + strlen(UA_PREFIX), webhook_user_agent) != 0)
	{
		char	   *new_line = MemoryContextAlloc(TopMemoryContext,
												  strlen(UA_PREFIX) + strlen(webhook_user_agent) + 1);

		sprintf(new_line, UA_PREFIX "%s", webhook_user_agent);
		if (line != NULL)
			pfree(line);
		line = new_line;
	}
	return line;
}

/*
 * Every header line of the attempt's request, signed at timestamp (Unix
 * seconds): the static headers, the User-Agent, then Content-Type,
 * webhook-id, the signature headers of the hook's scheme and the
 * credentials.  While a rotation's overlap runs, the request is signed
 * with both secrets, the newest first: the standard scheme sends both
 * signatures in webhook-signature (a verifier accepts any one of them), the
 * plain HMAC schemes the previous one in a second header,
 * "<signature_header>-Previous".
 * May throw (a secret that cannot sign).
 */
List *
attempt_header_lines(Attempt *attempt, int64 timestamp)
{
	List	   *lines = list_copy(attempt->headers);
	char	   *sig;
	char	   *prev_sig = NULL;
	const char *ua;

	sig = webhook_signature(attempt->signature, attempt->secret, attempt->msg_id,
							timestamp, attempt->body, strlen(attempt->body));
	if (sig != NULL)
		prev_sig = previous_signature(attempt, timestamp);

	ua = user_agent_line(attempt->headers);
	if (ua != NULL)
		lines = lappend(lines, (char *) ua);
	lines = lappend(lines, "Content-Type: application/json");
	/* curl would otherwise wait for a 100 Continue on larger bodies */
	lines = lappend(lines, "Expect:");
	lines = lappend(lines, psprintf("webhook-id: %s", attempt->msg_id));
	if (sig != NULL && strcmp(attempt->signature, "standard") == 0)
	{
		lines = lappend(lines, psprintf("webhook-timestamp: " INT64_FORMAT, timestamp));
		lines = lappend(lines, psprintf("webhook-signature: %s%s%s", sig,
										prev_sig ? " " : "",
										prev_sig ? prev_sig : ""));
	}
	else if (sig != NULL)
	{
		const char *header = attempt->signature_header
			? attempt->signature_header : "X-Signature";

		lines = lappend(lines, psprintf("%s: %s", header, sig));
		if (prev_sig != NULL)
			lines = lappend(lines, psprintf("%s-Previous: %s", header, prev_sig));
	}
	if (attempt->auth_type && strcmp(attempt->auth_type, "bearer") == 0)
		lines = lappend(lines, psprintf("Authorization: Bearer %s", attempt->auth_secret));
	else if (attempt->auth_type && strcmp(attempt->auth_type, "basic") == 0)
		lines = lappend(lines, psprintf("Authorization: %s",
										basic_credentials(attempt->auth_user,
														  attempt->auth_secret)));
	return lines;
}

/*
 * The response's headers as the jsonb object the attempt's row holds:
 * each name (lower-case) with its value, the last one of a name repeated
 * (as jsonb keeps it), made directly rather than printed and parsed again.
 */
Datum
attempt_response_headers(const Attempt *attempt)
{
	JsonbParseState *state = NULL;
	const char *p = attempt->response_headers.data;
	const char *end = p + attempt->response_headers.len;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	while (p < end)
	{
		JsonbValue	name;
		JsonbValue	value;

		/* the name, then its value, each ended by a NUL byte */
		name.type = jbvString;
		name.val.string.val = (char *) p;
		name.val.string.len = strlen(p);
		p += name.val.string.len + 1;
		value.type = jbvString;
		value.val.string.val = (char *) p;
		value.val.string.len = strlen(p);
		p += value.val.string.len + 1;
		(void) pushJsonbValue(&state, WJB_KEY, &name);
		(void) pushJsonbValue(&state, WJB_VALUE, &value);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT,
														   NULL)));
}
