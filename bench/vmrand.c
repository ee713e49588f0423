/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside a benchmark VM: 4 KiB random reads with O_DIRECT from a block device, several in flight (one thread each), for a set time; prints the IOPS. */

/*
 * The guest of bench/vm-iscsi.sh has no fio (its root is the demo image's
 * busybox system, and Debian's fio links a dozen libraries), so this is the
 * small part of `fio --rw=randread --bs=4k --direct=1 --iodepth=N` that the
 * benchmark needs: N threads, each with its own random generator and one
 * pread at a time, for SECONDS.  Built static by the benchmark.
 *
 * Usage: vmrand DEVICE SECONDS THREADS
 * Output: "IOPS N READS M" on standard output; errors name the call.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_THREADS 64

struct worker {
	pthread_t thread;
	int fd;
	uint64_t blocks;	/* device size in 4 KiB blocks */
	uint64_t seed;
	double stop;		/* CLOCK_MONOTONIC seconds */
	unsigned long reads;
	int error;		/* errno of a failed pread, 0 if none */
};

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: a per-thread generator, no shared state between threads. */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* The size in bytes of a block device or a regular file (for a try on the
 * host); 0 after printing why when there is none. */
static uint64_t size_of(int fd, const char *path)
{
	struct stat st;
	uint64_t bytes = 0;

	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "vmrand: fstat %s: %s\n", path, strerror(errno));
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		bytes = (uint64_t)st.st_size;
	else if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		fprintf(stderr, "vmrand: BLKGETSIZE64 %s: %s\n", path, strerror(errno));
		return 0;
	}
	if (bytes < BLOCK)
		fprintf(stderr, "vmrand: %s is smaller than 4 KiB\n", path);
	return bytes < BLOCK ? 0 : bytes;
}

/* One reader: aligned 4 KiB preads at random blocks until the stop time. */
static void *reader(void *arg)
{
	struct worker *w = arg;
	void *buf;

	if (posix_memalign(&buf, BLOCK, BLOCK)) {
		w->error = ENOMEM;
		return NULL;
	}
	while (now() < w->stop) {
		uint64_t block = next_random(&w->seed) % w->blocks;

		if (pread(w->fd, buf, BLOCK, (off_t)(block * BLOCK)) != BLOCK) {
			w->error = errno ? errno : EIO;
			break;
		}
		w->reads++;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker w[MAX_THREADS];
	uint64_t bytes;
	unsigned long total = 0;
	double seconds, start;
	int fd, threads, i, failed = 0;

	if (argc != 4 || (seconds = atof(argv[2])) <= 0 || (threads = atoi(argv[3])) < 1 ||
	    threads > MAX_THREADS) {
		fprintf(stderr, "usage: vmrand DEVICE SECONDS THREADS(1-%d)\n", MAX_THREADS);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "vmrand: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	bytes = size_of(fd, argv[1]);
	if (!bytes) {
		close(fd);
		return 1;
	}
	start = now();
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){ .fd = fd, .blocks = bytes / BLOCK,
					.seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1),
					.stop = start + seconds };
		int rc = pthread_create(&w[i].thread, NULL, reader, &w[i]);

		if (rc) {
			fprintf(stderr, "vmrand: pthread_create: %s\n", strerror(rc));
			threads = i;
			failed = 1;
			break;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		total += w[i].reads;
		if (w[i].error) {
			fprintf(stderr, "vmrand: pread %s: %s\n", argv[1], strerror(w[i].error));
			failed = 1;
		}
	}
	close(fd);
	if (failed)
		return 1;
	printf("IOPS %.0f READS %lu\n", total / (now() - start), total);
	return 0;
}
