/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk image`: the version admin commands (cli/image.c). */
#ifndef CLI_IMAGE_H
#define CLI_IMAGE_H

#define DEFAULT_CONTROL "/var/lib/netdisk/control"

/* argv[0] is "image"; returns the exit status. */
int cmd_image(int argc, char **argv);

/* One request on netdiskd's control socket at `path` (fields joined by TAB):
 * 0 with the reply's body in *body (malloc'd), 1 if the server answered an
 * error (printed); exits on a socket error.  Messages start with `prog`. */
int control_request(const char *prog, const char *path, const char *const *fields, char **body);

#endif
