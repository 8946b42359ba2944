/* http.c: stub */
#include "webhook.h"
