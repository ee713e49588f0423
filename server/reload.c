/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reloading the configuration (SIGHUP, systemctl reload) while sessions run:
 * all or nothing.  A new configuration that is wrong (it failed to load or
 * check before this is called) or that changes something only a restart can
 * change (addresses, the state directory, the image list, the multicast
 * groups) is refused whole, and the running one stays.  Otherwise the client
 * sections, the image modes and every limit and timeout take effect at once;
 * live sessions keep the mode, image and version they attached with until
 * the client attaches again (its next boot).
 */

#include <stdio.h>
#include <string.h>
#include "netdiskd.h"

/* Append `name` to the list in `out` ("a, b"; "a,b" for a log field). */
static void add_sep(char *out, size_t outlen, const char *name, const char *sep)
{
	size_t n = strlen(out);

	snprintf(out + n, outlen - n, "%s%s", n ? sep : "", name);
}

static void add_name(char *out, size_t outlen, const char *name)
{
	add_sep(out, outlen, name, ", ");
}

/* The keys a running server cannot take over: their names in `out`. */
static void restart_only(const struct config *o, const struct config *n, char *out, size_t outlen)
{
	const struct mcast_config *a = &o->mc, *b = &n->mc;

	out[0] = 0;
	if (strcmp(o->listen, n->listen))
		add_name(out, outlen, "listen");
	if (strcmp(o->state_dir, n->state_dir))
		add_name(out, outlen, "state-dir");
	if (strcmp(o->control, n->control))
		add_name(out, outlen, "control");
	if (strcmp(o->trace_dir, n->trace_dir))
		add_name(out, outlen, "trace-dir");
	if (strcmp(o->metrics_listen, n->metrics_listen))
		add_name(out, outlen, "metrics-listen");
	if (strcmp(o->iscsi_listen, n->iscsi_listen))
		add_name(out, outlen, "iscsi-listen");
	if (o->nbd_tls != n->nbd_tls)
		add_name(out, outlen, "nbd-tls");
	if (strcmp(o->nbd_tls_psk_file, n->nbd_tls_psk_file))
		add_name(out, outlen, "nbd-tls-psk-file");
	if (strcmp(o->nbd_tls_certificates, n->nbd_tls_certificates))
		add_name(out, outlen, "nbd-tls-certificates");
	if (strcmp(o->site_key_file, n->site_key_file))
		add_name(out, outlen, "site-key");
	if (strcmp(o->admin_key_file, n->admin_key_file))
		add_name(out, outlen, "admin-key");
	if (a->mode != b->mode)
		add_name(out, outlen, "multicast");
	if (a->group_base != b->group_base || a->group_count != b->group_count)
		add_name(out, outlen, "multicast-group");
	if (a->port != b->port)
		add_name(out, outlen, "multicast-port");
	if (a->ttl != b->ttl)
		add_name(out, outlen, "multicast-ttl");
	if (a->dgram != b->dgram)
		add_name(out, outlen, "multicast-datagram");
	if (strcmp(a->iface, b->iface))
		add_name(out, outlen, "multicast-interface");
}

/* Are the images the same (names and files, in order)? If not, say how. */
static int same_images(const struct config *o, const struct config *n, char *out, size_t outlen)
{
	int i;

	if (o->nimages != n->nimages) {
		snprintf(out, outlen, "%d images instead of %d", n->nimages, o->nimages);
		return 0;
	}
	for (i = 0; i < o->nimages; i++) {
		if (strcmp(o->images[i].name, n->images[i].name) ||
		    strcmp(o->images[i].path, n->images[i].path)) {
			snprintf(out, outlen, "image %d is %s (%s) instead of %s (%s)", i + 1,
				 n->images[i].name, n->images[i].path, o->images[i].name,
				 o->images[i].path);
			return 0;
		}
	}
	return 1;
}

/* Do the client sections differ (other than in their line numbers)? */
static int clients_differ(const struct config *o, const struct config *n)
{
	int i;

	if (o->nclients != n->nclients)
		return 1;
	for (i = 0; i < o->nclients; i++) {
		struct client_rule a = o->clients[i], b = n->clients[i];

		a.line = b.line = 0;
		if (!persona_client_equal(&a.persona, &b.persona))
			return 1;
		memset(&a.persona, 0, sizeof(a.persona)); /* (pointers: compared above) */
		memset(&b.persona, 0, sizeof(b.persona));
		if (memcmp(&a, &b, sizeof(a))) /* the parser zeroes each rule first */
			return 1;
	}
	return 0;
}

/* Note a changed setting for the log line. */
#define CHANGED(cond, name)                                    \
	do {                                                   \
		if (cond)                                      \
			add_sep(changed, sizeof(changed), name, ","); \
	} while (0)

int config_reload(struct server *s, struct config *n, char *err, size_t errlen)
{
	struct config *o = &s->cfg;
	char keys[256], how[400], changed[512] = "";
	struct client_rule *old_clients;
	int i, old_n;

	restart_only(o, n, keys, sizeof(keys));
	if (keys[0]) {
		snprintf(err, errlen, "%s change only at a restart (nothing applied; sessions "
			 "survive a restart with a state directory)", keys);
		return -1;
	}
	if (!same_images(o, n, how, sizeof(how))) {
		snprintf(err, errlen, "the image list changed (%s): adding, removing or moving "
			 "images needs a restart (nothing applied)", how);
		return -1;
	}
	for (i = 0; i < o->nimages; i++) {
		char what[NAME_MAX_LEN + 24];

		struct persona_image pi;

		snprintf(what, sizeof(what), "image-%s-mode", o->images[i].name);
		CHANGED(o->images[i].mode != n->images[i].mode, what);
		o->images[i].mode = n->images[i].mode;
		/* Personalization templates: the next attach of each client rebuilds
		 * its layer if what it holds changed (nothing keeps a pointer). */
		snprintf(what, sizeof(what), "image-%s-persona", o->images[i].name);
		CHANGED(!persona_image_equal(&o->images[i].persona, &n->images[i].persona), what);
		pi = o->images[i].persona;
		o->images[i].persona = n->images[i].persona;
		n->images[i].persona = pi; /* freed with n */
		snprintf(what, sizeof(what), "image-%s-write-cache", o->images[i].name);
		CHANGED(strcmp(o->images[i].write_cache, n->images[i].write_cache), what);
		snprintf(o->images[i].write_cache, sizeof(o->images[i].write_cache), "%s",
			 n->images[i].write_cache);
		snprintf(what, sizeof(what), "image-%s-iscsi-chap", o->images[i].name);
		CHANGED(memcmp(&o->images[i].chap, &n->images[i].chap, sizeof(n->images[i].chap)),
			what);
		o->images[i].chap = n->images[i].chap;
	}
	CHANGED(strcmp(o->default_image, n->default_image), "default-image");
	CHANGED(o->allow_unlisted != n->allow_unlisted, "allow");
	CHANGED(o->session_timeout != n->session_timeout, "session-timeout");
	CHANGED(o->max_dgram != n->max_dgram, "max-datagram");
	CHANGED(o->window != n->window, "window");
	CHANGED(o->max_sessions != n->max_sessions, "max-sessions");
	CHANGED(o->nbd_handshake_timeout != n->nbd_handshake_timeout, "nbd-handshake-timeout");
	CHANGED(o->nbd_idle_timeout != n->nbd_idle_timeout, "nbd-idle-timeout");
	CHANGED(o->nbd_io_timeout != n->nbd_io_timeout, "nbd-io-timeout");
	CHANGED(o->nbd_memory_mib != n->nbd_memory_mib, "nbd-memory");
	CHANGED(o->nbd_connect_rate != n->nbd_connect_rate, "nbd-connect-rate");
	CHANGED(o->nbd_per_address != n->nbd_per_address, "nbd-per-address");
	CHANGED(o->trace_max != n->trace_max, "trace-max");
	CHANGED(o->nbd_exports != n->nbd_exports, "nbd-exports");
	CHANGED(o->nbd_session_any_address != n->nbd_session_any_address, "nbd-session-binding");
	CHANGED(o->boot_limit != n->boot_limit, "boot-limit");
	CHANGED(strcmp(o->iscsi_prefix, n->iscsi_prefix), "iscsi-target-prefix");
	CHANGED(o->mac_binding_off != n->mac_binding_off, "mac-binding");
	CHANGED(o->persona_key_pool != n->persona_key_pool, "persona-key-pool");
	CHANGED(o->mc.rate_mbit != n->mc.rate_mbit, "multicast-rate");
	CHANGED(o->mc.window_ms != n->mc.window_ms, "multicast-window");
	CHANGED(o->mc.resend_ms != n->mc.resend_ms, "multicast-resend");
	CHANGED(clients_differ(o, n), "clients");
	snprintf(o->default_image, sizeof(o->default_image), "%s", n->default_image);
	o->allow_unlisted = n->allow_unlisted;
	o->session_timeout = n->session_timeout;
	o->max_dgram = n->max_dgram;
	o->window = n->window;
	o->persona_key_pool = n->persona_key_pool;
	o->max_sessions = n->max_sessions;
	o->nbd_handshake_timeout = n->nbd_handshake_timeout;
	o->nbd_idle_timeout = n->nbd_idle_timeout;
	o->nbd_io_timeout = n->nbd_io_timeout;
	o->nbd_memory_mib = n->nbd_memory_mib;
	o->nbd_connect_rate = n->nbd_connect_rate;
	o->nbd_per_address = n->nbd_per_address;
	o->trace_max = n->trace_max;
	o->nbd_exports = n->nbd_exports;
	o->nbd_session_any_address = n->nbd_session_any_address;
	o->boot_limit = n->boot_limit;
	snprintf(o->iscsi_prefix, sizeof(o->iscsi_prefix), "%s", n->iscsi_prefix);
	o->mac_binding_off = n->mac_binding_off;
	o->mc.rate_mbit = n->mc.rate_mbit;
	o->mc.window_ms = n->mc.window_ms;
	o->mc.resend_ms = n->mc.resend_ms;
	/* Client rules are looked up at each attach under the server lock, which
	 * the caller holds: nothing keeps a pointer into the old array. */
	old_clients = o->clients;
	old_n = o->nclients;
	o->clients = n->clients;
	o->nclients = n->nclients;
	n->clients = old_clients;
	n->nclients = old_n; /* config_free(n) frees each old rule's personalization */
	log_msg("config reloaded; live sessions keep the mode, image and version they attached "
		"with until their next attach: changed=%s client_sections=%d",
		changed[0] ? changed : "nothing", o->nclients);
	return 0;
}
