/* capture.c: stub, being written */
#include "webhook.h"
#include "fmgr.h"
#include "commands/trigger.h"
PG_FUNCTION_INFO_V1(webhook_capture);
PG_FUNCTION_INFO_V1(webhook_hooks_changed);
Datum webhook_capture(PG_FUNCTION_ARGS) { return PointerGetDatum(NULL); }
Datum webhook_hooks_changed(PG_FUNCTION_ARGS) { return PointerGetDatum(NULL); }
