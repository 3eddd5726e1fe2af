/* SPDX-License-Identifier: MIT */
/* The store backends, by name (`--store`). */
#include <string.h>

#include "store.h"

static const struct store_ops *const backends[] = {
	&store_sqlite_ops,
};

const struct store_ops *store_backend(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}
