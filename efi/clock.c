/* Millisecond clock for the client core: the TSC, calibrated once against Stall(). */
#include "netdisk.h"

#define CALIBRATE_US 20000 /* long enough for a 1% estimate, short enough not to notice */

static UINT64 tsc_per_ms;

static UINT64 rdtsc(void)
{
	UINT32 lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((UINT64)hi << 32) | lo;
}

/*
 * Timer events would be simpler, but they do not fire while a caller holds
 * TPL_CALLBACK (the FAT driver does around every BlockIo call), and the
 * client core needs time to pass there too.
 */
void efi_clock_init(void)
{
	UINT64 start = rdtsc();

	gBS->Stall(CALIBRATE_US);
	tsc_per_ms = (rdtsc() - start) / (CALIBRATE_US / 1000);
	if (!tsc_per_ms)
		tsc_per_ms = 1;
}

uint32_t efi_clock_ms(void)
{
	return (uint32_t)(rdtsc() / tsc_per_ms);
}

/* Bits that differ from boot to boot, for the ATTACH nonce. */
uint32_t efi_clock_entropy(void)
{
	return (uint32_t)rdtsc();
}
