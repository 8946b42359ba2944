/*-------------------------------------------------------------------------
 *
 * render.c
 *	  The body of a request: an event in its hook's payload format
 *	  (standard, thin, envelope, or the payload alone), written as JSON text
 *	  directly.
 *
 * And the sizes the claim weighs an event by before it renders it
 * (webhook_stored_bytes(), webhook_rendered_bytes()).
 *
 * The formats are JSON objects, which webhook.render() used to build as
 * jsonb (jsonb_build_object) and print: the payload copied into a new
 * jsonb value token by token, the previous values merged with ||, the
 * whole printed again, for every request the claim renders (about a tenth
 * of the claim's time).  Here the payload is printed once, into the
 * object's text, and the object's other members around it, in the order
 * and the layout jsonb prints them in: keys shorter first, then byte by
 * byte; ", " between members, ": " after a key.  The bodies are the same
 * bytes, which the signatures are made of (sql/emit.sql compares the
 * two).
 *
 * IDENTIFICATION
 *	  src/render.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/detoast.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "render.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(webhook_render_body);
PG_FUNCTION_INFO_V1(webhook_stored_bytes);
PG_FUNCTION_INFO_V1(webhook_rendered_bytes);

/* the arguments of webhook_internal.render_body(), in order */
typedef enum BodyArg
{
	ARG_FORMAT,
	ARG_UID,
	ARG_TENANT,
	ARG_EVENT_TYPE,
	ARG_RESOURCE,
	ARG_RESOURCE_ID,
	ARG_PAYLOAD,
	ARG_PREVIOUS,
	ARG_CREATED_AT,
	ARG_HOOK_UID
} BodyArg;

/* An object's member key, after the one before it if any. */
static void
append_key(StringInfo buf, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoString(buf, ", ");
	*first = false;
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

/*
 * A uuid as text, as uuid_out() writes it (8-4-4-4-12 lower-case hex
 * digits), in 37 bytes: uuid_out()'s StringInfo takes a kilobyte, for
 * every request's webhook-id.
 */
char *
uuid_text(Datum uuid)
{
	static const char hex[] = "0123456789abcdef";
	const pg_uuid_t *u = DatumGetUUIDP(uuid);
	char	   *text = palloc(UUID_LEN * 2 + 5);
	char	   *p = text;
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->data[i] >> 4];
		*p++ = hex[u->data[i] & 0x0F];
	}
	*p = '\0';
	return text;
}

/* A text argument as a JSON string, or null; with prefix before it. */
static void
append_text_arg(StringInfo buf, FunctionCallInfo fcinfo, BodyArg arg, const char *prefix)
{
	StringInfoData s;

	if (PG_ARGISNULL(arg))
	{
		appendStringInfoString(buf, "null");
		return;
	}
	initStringInfo(&s);
	appendStringInfoString(&s, prefix);
	appendStringInfoString(&s, TextDatumGetCString(PG_GETARG_DATUM(arg)));
	escape_json(buf, s.data);
	pfree(s.data);
}

/* A jsonb argument as JSON text, or null. */
static void
append_jsonb_arg(StringInfo buf, FunctionCallInfo fcinfo, BodyArg arg)
{
	Jsonb	   *value;

	if (PG_ARGISNULL(arg))
	{
		appendStringInfoString(buf, "null");
		return;
	}
	value = PG_GETARG_JSONB_P(arg);
	(void) JsonbToCString(buf, &value->root, VARSIZE(value));
}

/* n's last width decimal digits, written at to */
static void
put_digits(char *to, int n, int width)
{
	while (width-- > 0)
	{
		to[width] = '0' + n % 10;
		n /= 10;
	}
}

/*
 * The event's time as payloads carry it, ISO 8601 in UTC to the
 * millisecond, as to_char(created_at AT TIME ZONE 'UTC',
 * 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') writes it; null for none or infinity,
 * as to_char gives.  The years that to_char writes in another width
 * (before 1, after 9999) are left to it.
 */
static void
append_time_arg(StringInfo buf, FunctionCallInfo fcinfo)
{
	TimestampTz ts;
	struct pg_tm tm;
	fsec_t		fsec;
	Datum		printed;

	ts = PG_ARGISNULL(ARG_CREATED_AT) ? DT_NOEND : PG_GETARG_TIMESTAMPTZ(ARG_CREATED_AT);
	if (TIMESTAMP_NOT_FINITE(ts))
	{
		appendStringInfoString(buf, "null");
		return;
	}
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) == 0 &&
		tm.tm_year >= 1 && tm.tm_year <= 9999)
	{
		char		text[] = "\"0000-00-00T00:00:00.000Z\"";

		/* the digits written in place: a format, for every body, cost more */
		put_digits(text + 1, tm.tm_year, 4);
		put_digits(text + 6, tm.tm_mon, 2);
		put_digits(text + 9, tm.tm_mday, 2);
		put_digits(text + 12, tm.tm_hour, 2);
		put_digits(text + 15, tm.tm_min, 2);
		put_digits(text + 18, tm.tm_sec, 2);
		put_digits(text + 21, fsec / 1000, 3);
		appendBinaryStringInfo(buf, text, sizeof(text) - 1);
		return;
	}
	printed = DirectFunctionCall2(timestamp_to_char,
								  DirectFunctionCall2(timestamptz_zone,
													  CStringGetTextDatum("UTC"),
													  TimestampTzGetDatum(ts)),
								  CStringGetTextDatum("YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\""));
	escape_json(buf, TextDatumGetCString(printed));
}

/* standard: the type, the time, the payload, and the previous values if any */
static void
render_standard(StringInfo buf, FunctionCallInfo fcinfo)
{
	bool		first = true;

	appendStringInfoChar(buf, '{');
	append_key(buf, &first, "data");
	append_jsonb_arg(buf, fcinfo, ARG_PAYLOAD);
	append_key(buf, &first, "type");
	append_text_arg(buf, fcinfo, ARG_EVENT_TYPE, "");
	if (!PG_ARGISNULL(ARG_PREVIOUS))
	{
		append_key(buf, &first, "previous");
		append_jsonb_arg(buf, fcinfo, ARG_PREVIOUS);
	}
	append_key(buf, &first, "timestamp");
	append_time_arg(buf, fcinfo);
	appendStringInfoChar(buf, '}');
}

/* thin: what happened to which resource, for the receiver to fetch it */
static void
render_thin(StringInfo buf, FunctionCallInfo fcinfo)
{
	bool		first = true;

	appendStringInfoChar(buf, '{');
	append_key(buf, &first, "eventType");
	append_text_arg(buf, fcinfo, ARG_EVENT_TYPE, "");
	append_key(buf, &first, "resourceId");
	append_text_arg(buf, fcinfo, ARG_RESOURCE_ID, "");
	appendStringInfoChar(buf, '}');
}

/* envelope: the event's identity and a link to its resource */
static void
render_envelope(StringInfo buf, FunctionCallInfo fcinfo)
{
	bool		first = true;
	bool		link_first = true;

	appendStringInfoChar(buf, '{');
	append_key(buf, &first, "id");
	if (PG_ARGISNULL(ARG_UID))
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, uuid_text(PG_GETARG_DATUM(ARG_UID)));
	append_key(buf, &first, "links");
	appendStringInfoString(buf, "[{");
	append_key(buf, &link_first, "rel");
	escape_json(buf, "resource");
	append_key(buf, &link_first, "href");
	if (PG_ARGISNULL(ARG_RESOURCE) || PG_ARGISNULL(ARG_RESOURCE_ID))
		appendStringInfoString(buf, "null");
	else
	{
		StringInfoData href;

		initStringInfo(&href);
		appendStringInfo(&href, "/%s/%s",
						 TextDatumGetCString(PG_GETARG_DATUM(ARG_RESOURCE)),
						 TextDatumGetCString(PG_GETARG_DATUM(ARG_RESOURCE_ID)));
		escape_json(buf, href.data);
		pfree(href.data);
	}
	append_key(buf, &link_first, "method");
	escape_json(buf, "GET");
	appendStringInfoString(buf, "}]");
	append_key(buf, &first, "hookId");
	append_text_arg(buf, fcinfo, ARG_HOOK_UID, "");
	append_key(buf, &first, "tenant");
	append_text_arg(buf, fcinfo, ARG_TENANT, "");
	append_key(buf, &first, "resource");
	append_text_arg(buf, fcinfo, ARG_RESOURCE, "/");
	append_key(buf, &first, "createdAt");
	append_time_arg(buf, fcinfo);
	append_key(buf, &first, "eventType");
	append_text_arg(buf, fcinfo, ARG_EVENT_TYPE, "");
	append_key(buf, &first, "resourceId");
	append_text_arg(buf, fcinfo, ARG_RESOURCE_ID, "");
	appendStringInfoChar(buf, '}');
}

/*
 * webhook_internal.render_body(format, uid, tenant, event_type, resource,
 * resource_id, payload, previous, created_at, hook_uid): the body of an
 * event for a hook (its uid) in a payload format; any other format, the
 * payload alone (row).  webhook.render() calls it with an event's columns,
 * and so does the claim, without making the event's row a value.
 */
Datum
webhook_render_body(PG_FUNCTION_ARGS)
{
	char	   *format = PG_ARGISNULL(ARG_FORMAT) ? ""
		: TextDatumGetCString(PG_GETARG_DATUM(ARG_FORMAT));
	StringInfoData buf;

	initStringInfo(&buf);
	if (strcmp(format, "standard") == 0)
		render_standard(&buf, fcinfo);
	else if (strcmp(format, "thin") == 0)
		render_thin(&buf, fcinfo);
	else if (strcmp(format, "envelope") == 0)
		render_envelope(&buf, fcinfo);
	else if (PG_ARGISNULL(ARG_PAYLOAD))
		PG_RETURN_NULL();
	else
		append_jsonb_arg(&buf, fcinfo, ARG_PAYLOAD);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * webhook_internal.stored_bytes(jsonb): the size of a value once decompressed and
 * read from TOAST, told by its header alone.  The claim weighs an event
 * with it before building its body (queue.c, log_claim.c): reading a huge
 * event whole is what must not happen.
 */
Datum
webhook_stored_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) toast_raw_datum_size(PG_GETARG_DATUM(0)));
}

/* The bytes of a JSON scalar as text: escapes in strings, numbers in full. */
static int64
scalar_text_bytes(const JsonbValue *v)
{
	int64		n = 0;
	int			i;

	switch (v->type)
	{
		case jbvString:
			n = 2;
			for (i = 0; i < v->val.string.len; i++)
			{
				unsigned char c = (unsigned char) v->val.string.val[i];

				if (c == '"' || c == '\\' || c == '\b' || c == '\f' ||
					c == '\n' || c == '\r' || c == '\t')
					n += 2;
				else if (c < 0x20)
					n += 6;
				else
					n += 1;
			}
			return n;
		case jbvNumeric:
			{
				char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric)));

				n = strlen(text);
				pfree(text);
				return n;
			}
		case jbvBool:
			return 5;
		default:
			return 4;
	}
}

/*
 * webhook_internal.rendered_bytes(jsonb, cap): about how many bytes the value takes
 * as JSON text (a little more, never less), counted without building it,
 * and no further than past cap.  The stored size does not bound it: a
 * number such as 1e131071 is stored in a few bytes and printed in full.
 */
Datum
webhook_rendered_bytes(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = PG_GETARG_JSONB_P(0);
	int64		cap = PG_GETARG_INT64(1);
	JsonbIterator *it = JsonbIteratorInit(&value->root);
	JsonbValue	v;
	JsonbIteratorToken token;
	int64		n = 0;

	while (n <= cap && (token = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		/* a brace, a bracket, a separator and its space, at most */
		n += 2;
		if (token == WJB_KEY || token == WJB_VALUE || token == WJB_ELEM)
			n += scalar_text_bytes(&v);
	}
	PG_RETURN_INT64(Min(n, cap + 1));
}
