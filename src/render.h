/*-------------------------------------------------------------------------
 *
 * render.h
 *	  An event's body, and the sizes it is weighed by (render.c): SQL
 *	  functions, which the claim of listed logs calls directly (log_claim.c).
 *
 * IDENTIFICATION
 *	  src/render.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_RENDER_H
#define WEBHOOK_RENDER_H

#include "fmgr.h"

extern char *uuid_text(Datum uuid);
extern Datum webhook_render_body(PG_FUNCTION_ARGS);
extern Datum webhook_stored_bytes(PG_FUNCTION_ARGS);
extern Datum webhook_rendered_bytes(PG_FUNCTION_ARGS);

#endif							/* WEBHOOK_RENDER_H */
