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
 * Everything here is a pure function of its arguments (the HMAC contexts
 * kept from call to call, with the secret each was last keyed by, are a
 * cache) and never logs a secret: errors name the scheme, not the key.
 *
 * IDENTIFICATION
 *	  src/signing.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "common/base64.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

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
 * An HMAC-<digest> context (OpenSSL's one-shot HMAC() looks the algorithms
 * up anew at every call, which costs more than the HMAC of a small body),
 * and what its key was last set from: a hook signs request after request
 * with one secret, and setting a key (hashing its two pads) and decoding a
 * "whsec_" secret cost a third of a request's signature.  The key stays in
 * the context either way; the secret's copy is as private as the caches it
 * comes from.
 */
typedef struct HmacKeyed
{
	const char *digest;			/* "SHA256" or "SHA1" */
	EVP_MAC_CTX *ctx;			/* made on first use */
	bool		whsec;			/* key_secret is a "whsec_" secret, decoded */
	char	   *key_secret;		/* the key's secret, or NULL: none set */
} HmacKeyed;

/* h's context, made on first use */
static EVP_MAC_CTX *
hmac_context(HmacKeyed *h)
{
	if (h->ctx == NULL)
	{
		EVP_MAC    *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
		OSSL_PARAM	params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
											 (char *) h->digest, 0),
			OSSL_PARAM_construct_end()
		};

		/* (the context holds its own reference to the algorithm) */
		EVP_MAC_free(hmac);
		if (ctx == NULL || !EVP_MAC_CTX_set_params(ctx, params))
		{
			EVP_MAC_CTX_free(ctx);
			elog(ERROR, "webhook: could not set up HMAC-%s", h->digest);
		}
		h->ctx = ctx;
	}
	return h->ctx;
}

/* whether h's key was set from secret (a "whsec_" one with whsec) */
static bool
hmac_keyed_by(const HmacKeyed *h, const char *secret, bool whsec)
{
	return h->key_secret != NULL && h->whsec == whsec && strcmp(h->key_secret, secret) == 0;
}

/*
 * Start an HMAC with h under the key of secret: the secret's bytes, or with
 * whsec the key a "whsec_" secret encodes (the caller has checked it).  A
 * key set from the same secret before is kept (EVP_MAC_init() with no key
 * starts again with the one set).
 */
static void
hmac_start(HmacKeyed *h, const char *secret, bool whsec)
{
	EVP_MAC_CTX *ctx = hmac_context(h);
	char		key[WHSEC_MAX_BYTES + 3];
	int			keylen;
	bool		keyed;

	if (hmac_keyed_by(h, secret, whsec))
	{
		if (!EVP_MAC_init(ctx, NULL, 0, NULL))
			elog(ERROR, "webhook: computing an HMAC failed");
		return;
	}

	if (h->key_secret != NULL)
	{
		explicit_bzero(h->key_secret, strlen(h->key_secret));
		pfree(h->key_secret);
		h->key_secret = NULL;
	}
	keylen = whsec ? decode_whsec(secret, key) : (int) strlen(secret);
	keyed = EVP_MAC_init(ctx, (const unsigned char *) (whsec ? key : secret), keylen, NULL);
	explicit_bzero(key, sizeof(key));
	if (!keyed)
		elog(ERROR, "webhook: computing an HMAC failed");
	h->whsec = whsec;
	h->key_secret = MemoryContextStrdup(TopMemoryContext, secret);
}

/*
 * The HMAC, with h under the key of secret (hmac_start()), of the len bytes
 * of data preceded by the prefix_len bytes of prefix (none when 0), into mac
 * (of EVP_MAX_MD_SIZE bytes); returns its length.
 */
static unsigned int
hmac_of(HmacKeyed *h, const char *secret, bool whsec,
		const char *prefix, size_t prefix_len,
		const char *data, size_t len, unsigned char *mac)
{
	size_t		maclen = 0;

	hmac_start(h, secret, whsec);
	if ((prefix_len > 0 &&
		 !EVP_MAC_update(h->ctx, (const unsigned char *) prefix, prefix_len)) ||
		!EVP_MAC_update(h->ctx, (const unsigned char *) data, len) ||
		!EVP_MAC_final(h->ctx, mac, &maclen, EVP_MAX_MD_SIZE))
		elog(ERROR, "webhook: computing an HMAC failed");
	return (unsigned int) maclen;
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
	static HmacKeyed sha256 = {.digest = "SHA256"};
	static HmacKeyed sha1 = {.digest = "SHA1"};
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
		char	   *prefix;
		char	   *b64;

		if (!hmac_keyed_by(&sha256, secret, true) && !webhook_standard_secret_valid(secret))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid secret for signature scheme \"standard\""),
					 errhint("Standard Webhooks secrets are \"whsec_\" followed by the base64 of 24 to 64 bytes.")));

		/* signed: "<msg_id>.<timestamp>.<body>" */
		prefix = psprintf("%s." INT64_FORMAT ".", msg_id, timestamp);
		maclen = hmac_of(&sha256, secret, true, prefix, strlen(prefix), body, body_len, mac);
		pfree(prefix);
		b64 = base64_of(mac, maclen);
		return psprintf("v1,%s", b64);
	}
	else if (strcmp(scheme, "hmac-sha256") == 0)
	{
		char	   *hex;

		maclen = hmac_of(&sha256, secret, false, NULL, 0, body, body_len, mac);
		hex = palloc(maclen * 2 + 1);
		hex[hex_encode((char *) mac, maclen, hex)] = '\0';
		return hex;
	}
	else if (strcmp(scheme, "hmac-sha1") == 0)
	{
		maclen = hmac_of(&sha1, secret, false, NULL, 0, body, body_len, mac);
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
