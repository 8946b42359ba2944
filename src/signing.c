/*-------------------------------------------------------------------------
 *
 * signing.c
 *	  Request signatures (OpenSSL HMAC) and hook secrets.
 *
 * Schemes:
 *	standard	 Standard Webhooks: "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
 *				 the key being the base64-decoded part of a "whsec_" secret
 *	hmac-sha256	 lower-case hex of HMAC-SHA256 of the body, secret used as bytes
 *	hmac-sha1	 base64 of HMAC-SHA1 of the body, secret used as bytes
 *	none		 no signature
 *
 * Everything here is a pure function of its arguments and never logs a
 * secret: errors name the scheme, not the key.
 *
 * IDENTIFICATION
 *	  src/signing.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/base64.h"
#include "fmgr.h"
#include "utils/builtins.h"

#define WHSEC_PREFIX "whsec_"
#define WHSEC_MIN_BYTES 24
#define WHSEC_MAX_BYTES 64

/*
 * Decode the key of a "whsec_<base64>" secret into buf (at least
 * WHSEC_MAX_BYTES + 3 long).  Returns the key length, or -1 when the secret
 * is not of that form or its key is not 24 to 64 bytes.
 */
static int
decode_whsec(const char *secret, char *buf)
{
	const char *b64;
	int			len;

	if (strncmp(secret, WHSEC_PREFIX, strlen(WHSEC_PREFIX)) != 0)
		return -1;
	b64 = secret + strlen(WHSEC_PREFIX);
	if (pg_b64_dec_len(strlen(b64)) > WHSEC_MAX_BYTES + 3)
		return -1;
	len = pg_b64_decode(b64, strlen(b64), buf, WHSEC_MAX_BYTES + 3);
	if (len < WHSEC_MIN_BYTES || len > WHSEC_MAX_BYTES)
		return -1;
	return len;
}

bool
webhook_standard_secret_valid(const char *secret)
{
	char		key[WHSEC_MAX_BYTES + 3];

	return decode_whsec(secret, key) >= 0;
}

/* data as a palloc'd, NUL-terminated base64 string */
static char *
base64_of(const unsigned char *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);

	enclen = pg_b64_encode((const char *) data, len, out, enclen);
	if (enclen < 0)
		elog(ERROR, "webhook: base64 encoding failed");
	out[enclen] = '\0';
	return out;
}

/*
 * The HMAC with md of the len bytes of data under key, into mac (of
 * EVP_MAX_MD_SIZE bytes); returns its length.
 */
static unsigned int
hmac_of(const EVP_MD *md, const char *key, size_t keylen,
		const char *data, size_t len, unsigned char *mac)
{
	unsigned int maclen = 0;

	if (HMAC(md, key, keylen, (const unsigned char *) data, len, mac,
			 &maclen) == NULL)
		elog(ERROR, "webhook: computing an HMAC failed");
	return maclen;
}

/*
 * The value of the signature header for one request, or NULL for "none".
 * For the standard scheme the caller sends it as "webhook-signature"; for
 * the two plain HMAC schemes in the hook's signature_header.
 */
char *
webhook_signature(const char *scheme, const char *secret,
				  const char *msg_id, int64 timestamp,
				  const char *body, size_t body_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;

	if (strcmp(scheme, "none") == 0)
		return NULL;

	if (secret == NULL || secret[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signature scheme \"%s\" needs a secret", scheme)));

	if (strcmp(scheme, "standard") == 0)
	{
		char		key[WHSEC_MAX_BYTES + 3];
		int			keylen = decode_whsec(secret, key);
		StringInfoData content;
		char	   *b64;

		if (keylen < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid secret for signature scheme \"standard\""),
					 errhint("Standard Webhooks secrets are \"whsec_\" followed by the base64 of 24 to 64 bytes.")));

		initStringInfo(&content);
		appendStringInfo(&content, "%s." INT64_FORMAT ".", msg_id, timestamp);
		appendBinaryStringInfo(&content, body, body_len);
		maclen = hmac_of(EVP_sha256(), key, keylen, content.data, content.len, mac);
		pfree(content.data);
		b64 = base64_of(mac, maclen);
		return psprintf("v1,%s", b64);
	}
	else if (strcmp(scheme, "hmac-sha256") == 0)
	{
		char	   *hex;

		maclen = hmac_of(EVP_sha256(), secret, strlen(secret), body, body_len, mac);
		hex = palloc(maclen * 2 + 1);
		hex[hex_encode((char *) mac, maclen, hex)] = '\0';
		return hex;
	}
	else if (strcmp(scheme, "hmac-sha1") == 0)
	{
		maclen = hmac_of(EVP_sha1(), secret, strlen(secret), body, body_len, mac);
		return base64_of(mac, maclen);
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown signature scheme \"%s\"", scheme),
			 errhint("Valid schemes are \"standard\", \"hmac-sha256\", \"hmac-sha1\" and \"none\".")));
	return NULL;				/* keep compiler quiet */
}

/*
 * A new Standard Webhooks secret: "whsec_" and the base64 of 24 random bytes.
 */
char *
webhook_random_secret(void)
{
	unsigned char raw[WHSEC_MIN_BYTES];

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random secret")));
	return psprintf(WHSEC_PREFIX "%s", base64_of(raw, sizeof(raw)));
}

PG_FUNCTION_INFO_V1(webhook_sign);
PG_FUNCTION_INFO_V1(webhook_generate_secret);
PG_FUNCTION_INFO_V1(webhook_secret_is_valid);

/*
 * webhook.sign(scheme, secret, msg_id, timestamp, body): the signature the
 * worker would send, for receivers to check their verification against.
 */
Datum
webhook_sign(PG_FUNCTION_ARGS)
{
	char	   *scheme;
	char	   *secret;
	char	   *msg_id;
	int64		ts;
	text	   *body;
	char	   *sig;

	/* only the secret may be null (scheme "none") */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	scheme = text_to_cstring(PG_GETARG_TEXT_PP(0));
	secret = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	msg_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	ts = PG_GETARG_INT64(3);
	body = PG_GETARG_TEXT_PP(4);

	sig = webhook_signature(scheme, secret, msg_id, ts,
							VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	if (sig == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(sig));
}

Datum
webhook_generate_secret(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(webhook_random_secret()));
}

Datum
webhook_secret_is_valid(PG_FUNCTION_ARGS)
{
	char	   *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(webhook_standard_secret_valid(secret));
}
