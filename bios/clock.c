/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Millisecond clock for the client core: the TSC, calibrated against the BIOS timer tick. */

#include "bios.h"

#define BDA_TICKS 0x6c       /* 40:6C, incremented 18.2 times a second */
#define TICK_MS 55           /* one BIOS tick, rounded */
/* One tick from edge to edge: within 0.2% of four ticks under QEMU, good
 * enough for timeouts, and every boot waits 165 ms less. */
#define CALIBRATION_TICKS 1

static uint32_t tsc_per_ms = 1;
static uint64_t last_tsc;
static uint32_t ms;
static uint32_t irq_window_ms; /* when interrupts last had a moment (protected mode) */
#define IRQ_WINDOW_MS 10       /* well below a timer tick: none is lost while waiting */

uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* 64/32 division whose quotient fits 32 bits; avoids libgcc. */
static uint32_t div64_32(uint64_t n, uint32_t d)
{
	uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n, q, r = hi % d;

	asm("divl %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	return q;
}

static uint32_t bios_ticks(void)
{
	return far_read32(0x40, BDA_TICKS);
}

/* Needs interrupts enabled: counts TSC cycles across timer ticks. */
void clock_init(void)
{
	uint32_t t = bios_ticks();
	uint64_t start;

	while (bios_ticks() == t)
		;
	start = rdtsc();
	t = bios_ticks();
	while (bios_ticks() - t < CALIBRATION_TICKS)
		;
	tsc_per_ms = div64_32(rdtsc() - start, CALIBRATION_TICKS * TICK_MS);
	if (!tsc_per_ms)
		tsc_per_ms = 1;
	last_tsc = rdtsc();
}

uint32_t clock_ms(void)
{
	uint64_t delta = rdtsc() - last_tsc;

	if ((uint32_t)(delta >> 32) >= tsc_per_ms) {
		/* Idle for ages: restart the count rather than overflow. */
		last_tsc = rdtsc();
		return ms;
	}
	if (delta >= tsc_per_ms) {
		uint32_t n = div64_32(delta, tsc_per_ms);

		ms += n;
		last_tsc += (uint64_t)n * tsc_per_ms;
	}
	if (pm_mode && ms - irq_window_ms >= IRQ_WINDOW_MS) {
		irq_window_ms = ms;
		resident_irq_window();
	}
	return ms;
}

uint32_t clock_now(void *ctx)
{
	return clock_ms();
}
