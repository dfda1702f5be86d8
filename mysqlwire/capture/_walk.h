/* Shared between the two files of the mysqlwire.capture._walk extension:
 * _walk.c (the module, the pcap / pcapng record loops, the fast-lane test)
 * and _walk_lane.c (CommandLane). */

#ifndef MYSQLWIRE_WALK_H
#define MYSQLWIRE_WALK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

static inline uint32_t
be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The IP header at b[p] -- IPv4 without options, or IPv6 with TCP as its next
 * header (the fast lane's frames: the caller checked which) -- gives where
 * its TCP header starts; *pend: where its payload ends by its length field.
 * IPv4 needs b[p:p+34], IPv6 b[p:p+54] (up to the TCP flags). */
static inline Py_ssize_t
tcp_span(const unsigned char *b, Py_ssize_t p, Py_ssize_t *pend)
{
    if (b[p] >> 4 == 6) {
        *pend = p + 40 + ((Py_ssize_t)b[p + 4] << 8 | b[p + 5]);
        return p + 40;
    }
    *pend = p + ((Py_ssize_t)b[p + 2] << 8 | b[p + 3]);
    return p + 20;
}

/* how many bytes from the IP header at b[p] the fast lane reads */
#define IP_NEED(b, p) ((b)[p] >> 4 == 6 ? 54 : 34)

/* mysqlwire.capture.lane.CommandLane, native (see _walk_lane.c) */
typedef struct {
    PyObject_HEAD
    char client_fwd;
    unsigned int cli_next;
    PyObject *ack;
    PyObject *sack;
    PyObject *last;
    double last_ts;
    Py_ssize_t commands;
    Py_ssize_t nbytes;
    Py_ssize_t sbytes;
    Py_ssize_t watch;
    char awaiting;
    unsigned int reply_at;
    char quiet;
    PyObject *inflate;
    Py_ssize_t inner;
    int cseq;
} Lane;

extern PyTypeObject WalkLaneType;

/* 1 taken, 0 for the ordinary path, -1 error.  p: the IP header (see
 * tcp_span); the caller guarantees 0 <= p, p + IP_NEED(b, p) <= end <= the
 * buffer's length. */
int walk_lane_client(Lane *self, const unsigned char *b, Py_ssize_t p, Py_ssize_t end, double ts);
int walk_lane_server(Lane *self, const unsigned char *b, Py_ssize_t p, Py_ssize_t end, double ts);

#endif
