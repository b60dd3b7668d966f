/*
 * link.h: catch-up links: direct connections between replicas that carry a
 * sync's long resends to the one member lacking them (repl_io.direct), so
 * that a replica catching up does not make every member's Corosync carry
 * its history (docs/DESIGN-NOTES.md "Catch-up links").
 *
 * Each replica listens on its link port; a resender connects to the
 * receiver's. TLS 1.3 on the cluster's link key (tls_psk_*): only a holder of
 * the key can send or read. Frames: u32 length (big-endian, at most
 * LINK_FRAME_MAX), u8 type, then
 *   LINK_HELLO  (first, from the connecting side): u32 its replica id;
 *   LINK_OPS    (to the receiver): a batch, as repl_io.direct gave it;
 *   LINK_ANSWER (to the sender): u8 1 if the receiver took the batch.
 * The receiver answers batches in order, and stops reading while its
 * writer is more than LINK_BACKLOG_MAX operations behind. A connection that
 * breaks, or whose oldest unanswered batch waits 15 s (a peer that stopped
 * reading, a port that drops packets), is closed and reported through
 * repl_direct_lost; the next batch to that member (in a later view) opens a
 * new one.
 */
#ifndef CHORUS_LINK_H
#define CHORUS_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "repl/repl.h"
#include "tls/tls.h"

#define LINK_FRAME_MAX (64u << 20)
#define LINK_BACKLOG_MAX (2 * REPL_DIRECT_BATCH)

struct link_set;

/* The links of replica self, feeding repl. key: the link key. */
struct link_set *link_new(uv_loop_t *loop, struct repl *repl, uint32_t self,
			  const unsigned char key[TLS_PSK_LEN]);
/* Listens on addr:port for other replicas' links. Returns 0 or a negative
 * libuv error (logged). */
int link_listen(struct link_set *ls, const char *addr, int port);
/* Where member's link port is. host: an address or a name (resolved when a
 * link is opened). */
void link_add_peer(struct link_set *ls, uint32_t member, const char *host, int port);
/* Forgets every peer's address (before adding the list again; open links
 * stay). */
void link_clear_peers(struct link_set *ls);
/* For repl_io.direct: sends a batch to member, opening its link if needed.
 * Returns 0, or a negative error: -ENOENT if member's link port is not
 * known, -ECONNRESET while its broken link is not yet reported. */
int link_send(struct link_set *ls, uint32_t member, const void *data, size_t len);
/* Reads the link key from the file at path (at least 16 bytes; its SHA-256
 * is the key). Returns 0, or -1 with why in err. */
int link_key_load(const char *path, unsigned char key[TLS_PSK_LEN], char *err, size_t errlen);
/* Closes every link and the listener and frees ls (on the loop's next
 * turns). */
void link_close(struct link_set *ls);

#endif
