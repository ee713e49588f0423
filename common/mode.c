/* Write-mode names as given on command lines and in config files. */

#include <string.h>
#include "netdisk/proto.h"
#include "ndcommon.h"

int nd_mode_parse(const char *s)
{
	if (!strcmp(s, "direct"))
		return ND_MODE_DIRECT;
	if (!strcmp(s, "volatile"))
		return ND_MODE_VOLATILE;
	if (!strcmp(s, "persistent"))
		return ND_MODE_PERSISTENT;
	if (!strcmp(s, "readonly") || !strcmp(s, "read-only"))
		return ND_MODE_READONLY;
	return 0;
}
