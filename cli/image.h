/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `netdisk image`: the version admin commands (cli/image.c). */
#ifndef CLI_IMAGE_H
#define CLI_IMAGE_H

/* argv[0] is "image"; returns the exit status. */
int cmd_image(int argc, char **argv);

#endif
