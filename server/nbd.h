/* NBD (fixed newstyle) over TCP, sharing netdiskd's images, sessions and overlays. */
#ifndef NBD_H
#define NBD_H

#include "netdiskd.h"

/* Listen for NBD on the same address and port as UDP.  The fd, or -1 with err set. */
int nbd_listen(const char *listen, char *err, size_t errlen);

/* Serve one connected NBD client on this thread until it goes; closes fd. */
void nbd_serve(struct server *s, int fd, const struct sockaddr_storage *sa);

/* Accept one connection on the listening socket and serve it on its own thread,
 * or refuse it (max-sessions, nbd-connect-rate, file descriptors) and log why.
 * 0, or the errno of an accept that ran out of fds or memory: the caller must
 * pause accepting, as the pending connection keeps the listener readable. */
int nbd_accept(struct server *s, int listen_fd);

/* End every NBD connection and wait up to wait_s seconds for their threads:
 * 0 when all are gone, -1 when some still run (their sessions must not be freed). */
int nbd_shutdown(unsigned wait_s);

#endif /* NBD_H */
