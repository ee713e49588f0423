/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk status` and `netdisk clients` (cli/status.c). */
#ifndef CLI_STATUS_H
#define CLI_STATUS_H

/* argv[0] is "status" or "clients"; returns the exit status. */
int cmd_status(int argc, char **argv);

#endif
