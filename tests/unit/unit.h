/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The in-process unit tests (build/tests/unit): one "PASS name" or
 * "FAIL name: why" line per check, as every suite prints (tests/run). */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>

/* Report one check; returns cond so a test can stop after a failure. */
int check_that(int cond, const char *name, const char *why_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The groups, each in its own file. */
void unit_common(void);
void unit_config(void);
void unit_client(void);
void unit_ipstack(void);
void unit_dhcp(void);
void unit_overlay(void);
void unit_tiers(void);
void unit_crypto(void);

/* Make every pwrite fail with err (0: work again), for storage errors
 * (unit-overlay.c's --wrap=pwrite). */
void unit_fail_pwrites(int err);

/* Send standard error to the file path until unit_stderr_back(the result). */
int unit_stderr_to(const char *path);
void unit_stderr_back(int saved);

/* A scratch directory for this run (removed at exit). */
const char *unit_tmpdir(void);

#endif /* UNIT_H */
