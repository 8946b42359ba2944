/*-------------------------------------------------------------------------
 *
 * transform.h
 *	  A hook's transform makes the body it sends (transform.c).
 *
 * IDENTIFICATION
 *	  src/transform.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_TRANSFORM_H
#define WEBHOOK_TRANSFORM_H

#include "attempt.h"

/* the most a transform may take in the worker, per event */
#define TRANSFORM_TIMEOUT_MS 250

extern void transform_body(Attempt *req, int timeout_ms);

#endif							/* WEBHOOK_TRANSFORM_H */
