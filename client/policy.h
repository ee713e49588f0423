/* Stub policy, shared by the BIOS and EFI stubs (freestanding): which datagram
 * size a session uses, and when a lost session may be attached again. */
#ifndef NDPOLICY_H
#define NDPOLICY_H

#include "ndclient.h"

/* One datagram size to try, with the window asked for along with it. */
struct nd_ladder_step {
	uint16_t dgram;
	uint16_t window;
};

/*
 * ATTACH with the first step of `ladder` (largest datagrams first) whose
 * datagrams arrive whole: a read of the disk's first 64 KiB, given up after
 * probe_ms, must need no retransmission.  A large datagram reaches a stub as
 * IP fragments, and a NIC or network that loses fragments needs a smaller
 * size.  A step granted no more than ND_DEFAULT_DGRAM (one frame each), or the
 * last step, is kept untested.  Each step given up is reported as
 * ND_EV_PROBE_LOST with the index of the next one; the probe itself reports
 * no retries (a stall is its answer, not a server problem).  The retry
 * timeout cfg.give_up_ms applies to each ATTACH and is left as it was.
 * ND_DONE, or the failed ATTACH's nd_result.
 */
int nd_attach_ladder(struct nd_client *c, const char *image, const struct nd_ladder_step *ladder,
		     unsigned steps, uint32_t probe_ms);

/* Why a lost session was or was not replaced (the arg of ND_EV_SESSION_LOST). */
enum nd_recovery {
	ND_RECOVER_ATTACHING = 0, /* attaching again */
	ND_RECOVER_VOLATILE = 1,  /* no: a volatile session's writes would be lost */
	ND_RECOVER_ONCE = 2,      /* no: this request already attached again once */
	ND_RECOVER_FAILED = 3,    /* the new ATTACH failed */
	ND_RECOVER_CHANGED = 4,   /* the image's size or mode changed: the disk is gone */
};

/* A line of text for an nd_recovery value, the same in both stubs. */
const char *nd_recovery_text(unsigned why);

/* One stub request (an INT 13h or BlockIo call) as recovery sees it. */
struct nd_retry {
	unsigned tries;   /* re-attaches so far */
	uint32_t writes;  /* writes the session had acknowledged before the request */
};

/* Call at the start of each request, before its first try. */
static inline void nd_retry_begin(const struct nd_client *c, struct nd_retry *r)
{
	r->tries = 0;
	r->writes = c->writes;
}

/*
 * After a request failed with rc: if the server lost the session (it
 * restarted without its state), attach again to the same image when that
 * cannot lose acknowledged writes (every mode keeps them on the server but
 * volatile; a volatile session loses nothing if no write was acknowledged
 * before this request: the request itself is redone whole), at most once per
 * request, and keep the new session only if the image has the same size and
 * mode; if not, the disk is gone (sectors 0: every later request is out of
 * range).  Reports ND_EV_SESSION_LOST (arg: enum nd_recovery) and, on
 * success, ND_EV_REATTACHED, on which the stub republishes its boot table.
 * 1: redo the request; 0: fail it with rc.
 */
int nd_recover(struct nd_client *c, int rc, struct nd_retry *r);

#endif /* NDPOLICY_H */
