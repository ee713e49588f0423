/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stub policy, shared by the BIOS and EFI stubs: the datagram-size probe and
 * the recovery of a session the server lost (freestanding). */

#include "policy.h"

#define PROBE_SECTORS 128 /* 64 KiB: several datagrams of every size tried */

static void put_nowhere(void *ctx, uint32_t offset, const void *data, unsigned len)
{
}

static void report(struct nd_client *c, int event, uint32_t arg)
{
	if (c->cfg.event)
		c->cfg.event(c->cfg.event_ctx, event, arg);
}

/* Do datagrams of the granted size and window arrive whole?  Reads from the
 * start of the disk and must not need a single retransmission. */
static int datagrams_get_through(struct nd_client *c, uint32_t probe_ms)
{
	uint32_t before = c->retransmits, give_up = c->cfg.give_up_ms;
	uint32_t count = c->sectors < PROBE_SECTORS ? (uint32_t)c->sectors : PROBE_SECTORS;
	void (*event)(void *ctx, int event, uint32_t arg) = c->cfg.event;
	int rc;

	c->cfg.give_up_ms = probe_ms;
	c->cfg.event = 0;
	rc = nd_read(c, 0, count, put_nowhere, 0);
	c->cfg.give_up_ms = give_up;
	c->cfg.event = event;
	c->retrying = 0;
	return rc == ND_DONE && c->retransmits == before;
}

int nd_attach_ladder(struct nd_client *c, const char *image, const struct nd_ladder_step *ladder,
		     unsigned steps, uint32_t probe_ms)
{
	unsigned step;
	int rc;

	for (step = 0;; step++) {
		c->cfg.max_dgram = ladder[step].dgram;
		c->cfg.window = ladder[step].window;
		rc = nd_attach(c, image);
		if (rc != ND_DONE || step + 1 >= steps || c->dgram <= ND_DEFAULT_DGRAM ||
		    datagrams_get_through(c, probe_ms))
			return rc;
		report(c, ND_EV_PROBE_LOST, step + 1);
		/* A new nonce makes it a new session, not a retry of this one;
		 * nothing has been written yet, so nothing is lost. */
		c->cfg.nonce++;
	}
}

const char *nd_recovery_text(unsigned why)
{
	static const char *const text[] = {
		[ND_RECOVER_ATTACHING] = "server lost the session, attaching again",
		[ND_RECOVER_VOLATILE] = "volatile session lost: disk failed",
		[ND_RECOVER_ONCE] = "session lost again",
		[ND_RECOVER_FAILED] = "attaching again failed",
		[ND_RECOVER_CHANGED] = "image changed size or mode: disk failed",
	};

	return why < sizeof(text) / sizeof(text[0]) ? text[why] : "session lost";
}

int nd_recover(struct nd_client *c, int rc, struct nd_retry *r)
{
	uint64_t sectors = c->sectors;
	uint8_t mode = c->mode;
	unsigned why = ND_RECOVER_ATTACHING;

	if (rc != ND_E_STATUS || c->last_status != ND_ERR_SESSION || !sectors)
		return 0;
	if (mode == ND_MODE_VOLATILE && r->writes)
		why = ND_RECOVER_VOLATILE;
	else if (r->tries)
		why = ND_RECOVER_ONCE;
	report(c, ND_EV_SESSION_LOST, why);
	if (why == ND_RECOVER_VOLATILE)
		c->sectors = 0; /* every later request fails at once, without a message */
	if (why != ND_RECOVER_ATTACHING)
		return 0;
	r->tries++;
	if (nd_attach(c, c->image) != ND_DONE) {
		report(c, ND_EV_SESSION_LOST, ND_RECOVER_FAILED);
		c->last_status = ND_ERR_SESSION;
		return 0;
	}
	if (c->sectors != sectors || c->mode != mode) {
		report(c, ND_EV_SESSION_LOST, ND_RECOVER_CHANGED);
		c->sectors = 0;
		c->last_status = ND_ERR_SESSION;
		return 0;
	}
	r->writes = 0; /* a new session: nothing of it is older than the request */
	report(c, ND_EV_REATTACHED, 0);
	return 1;
}
