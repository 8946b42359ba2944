/* queue.c: stub */
#include "webhook.h"
