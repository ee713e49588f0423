/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A Linux TAP device as a frame device, so the stubs' own IP stack runs against the kernel's. */

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "tapdev.h"

#define TAP_FRAME_MAX 65536 /* what a TAP read can return: the interface's MTU may be large */

static struct {
	int fd;
	uint8_t frame[TAP_FRAME_MAX];
	unsigned len;
	uint8_t held[TAP_FRAME_MAX]; /* a frame kept back to arrive late */
	unsigned held_len;
	uint8_t repeat;              /* hand the last frame over once more */
	struct tapdev_faults f;
	uint32_t rng;
} tap = { .fd = -1 };

/* True percent% of the time (xorshift: the same faults every run). */
static int chance(unsigned percent)
{
	tap.rng ^= tap.rng << 13;
	tap.rng ^= tap.rng >> 17;
	tap.rng ^= tap.rng << 5;
	return tap.rng % 100 < percent;
}

static int tap_transmit(void *ctx, const void *frame, unsigned len)
{
	return write(tap.fd, frame, len) == (ssize_t)len ? 0 : -1;
}

/* "None waiting" only after a millisecond without a frame: the stack polls
 * in a loop, which need not spin a host CPU. */
static int read_frame(void)
{
	struct pollfd p = { .fd = tap.fd, .events = POLLIN };
	ssize_t n = read(tap.fd, tap.frame, sizeof(tap.frame));

	if (n < 0 && errno == EAGAIN && poll(&p, 1, 1) == 1)
		n = read(tap.fd, tap.frame, sizeof(tap.frame));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	return (int)n;
}

/* The next frame from the kernel, with the faults asked for: lost,
 * duplicated, or held back until the burst it came in has been taken. */
static int tap_receive(void *ctx)
{
	int n;

	if (tap.repeat) {
		tap.repeat = 0;
		tap.f.duplicated++;
		return (int)tap.len;
	}
	for (;;) {
		n = read_frame();
		if (n == 0 && tap.held_len) {
			memcpy(tap.frame, tap.held, tap.held_len);
			n = (int)tap.held_len;
			tap.held_len = 0;
			break;
		}
		if (n <= 0)
			return n;
		if (chance(tap.f.loss)) {
			tap.f.dropped++;
			continue;
		}
		if (!tap.held_len && chance(tap.f.reorder)) {
			memcpy(tap.held, tap.frame, (unsigned)n);
			tap.held_len = (unsigned)n;
			tap.f.reordered++;
			continue;
		}
		tap.repeat = chance(tap.f.dup);
		break;
	}
	tap.len = (unsigned)n;
	return n;
}

static void tap_read(void *ctx, unsigned offset, void *dst, unsigned len)
{
	memcpy(dst, tap.frame + offset, len);
}

/* tap_read and the sum nd_framedev.read_sum describes, the plain way: the
 * stack's use of a device that sums, checked against real checksums. */
static uint32_t tap_read_sum(void *ctx, unsigned offset, void *dst, unsigned len)
{
	const uint8_t *p = dst;
	uint64_t sum = 0;
	unsigned i;

	tap_read(ctx, offset, dst, len);
	for (i = 0; i < len; i += 4) {
		uint32_t w = 0;

		memcpy(&w, p + i, len - i < 4 ? len - i : 4);
		sum += w;
	}
	while (sum >> 32)
		sum = (sum & 0xffffffff) + (sum >> 32);
	return (uint32_t)sum;
}

static void tap_release(void *ctx)
{
}

void tapdev_faults(const struct tapdev_faults *f)
{
	tap.f = *f;
	tap.rng = 0x9e3779b9u;
}

const struct tapdev_faults *tapdev_faults_seen(void)
{
	return &tap.f;
}

int tapdev_open(struct nd_framedev *dev, const char *ifname, const uint8_t mac[6],
		int device_sums)
{
	struct ifreq ifr;

	if (tap.fd < 0) {
		tap.fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
		if (tap.fd < 0)
			return -1;
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
		if (ioctl(tap.fd, TUNSETIFF, &ifr) < 0) {
			close(tap.fd);
			tap.fd = -1;
			return -1;
		}
	}
	memset(dev, 0, sizeof(*dev));
	memcpy(dev->mac, mac, 6);
	dev->mtu = 1500;
	dev->transmit = tap_transmit;
	dev->receive = tap_receive;
	dev->read = tap_read;
	if (device_sums)
		dev->read_sum = tap_read_sum;
	dev->release = tap_release;
	return 0;
}
