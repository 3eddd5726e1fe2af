/* SPDX-License-Identifier: MIT */
#include "wire.h"

#include <stdio.h>

const uint8_t wire_host_mac[6] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
/* fe80::ecee:eeff:feee:eeee */
const u128 wire_gw6 = ((u128)0xfe80000000000000ULL << 64) | (u128)0xeceeeefffeeeeeeeULL;

void wire_host_ifname(const char *handle, char out[IFNAMSIZ])
{
	/* FNV-1a, 64 bits; 48 of them in the name. A collision would need two
	 * endpoints of one host among 2^48 names. */
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)handle; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	snprintf(out, IFNAMSIZ, WIRE_IF_PREFIX "%012llx", (unsigned long long)(h >> 16));
}
