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

/* ---- shared by _walk.c (which defines them) and _walk_ng.c ---------------- */

static inline uint32_t
rd32(const unsigned char *b, int big)
{
    if (big)
        return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

#define NO_L3 (-4) /* (-5 and -6: raw IPv4 / IPv6 only) */

static inline int
is_vlan(unsigned et)
{
    return et == 0x8100 || et == 0x88A8 || et == 0x9100 || et == 0x9200 || et == 0x9300;
}

/* linklayer.ip_offset: where the IP header of the frame f[0:len] starts, by
 * its link header, or -1: not IP by its link header (or NO_L3), an IP version
 * other than the one the link header names, or fewer bytes from there than
 * the fast lane reads (IP_NEED).  check >= 0: the EtherType at f[check] is
 * IPv4 or IPv6, or one or two VLAN tags at l3off lead to it; -1 none (raw IP,
 * the version nibble decides); -5 / -6 none, IPv4 / IPv6 only; -2 the BSD
 * loopback address family (either byte order) is AF_INET or an AF_INET6;
 * -3 the same, big-endian only.  check_l3() made sure the link header fits
 * in l3off. */
static inline Py_ssize_t
ip_at(const unsigned char *f, Py_ssize_t len, Py_ssize_t l3off, long check)
{
    Py_ssize_t o = l3off;
    int want = 0; /* 4, 6, or 0: either */
    if (check == NO_L3 || len < o + 34)
        return -1;
    if (check >= 0) {
        unsigned et = (unsigned)f[check] << 8 | f[check + 1];
        for (int tags = 0; et != 0x0800 && et != 0x86DD; tags++) {
            if (tags == 2 || !is_vlan(et) || len < o + 38)
                return -1;
            et = (unsigned)f[o + 2] << 8 | f[o + 3];
            o += 4;
        }
        want = et == 0x0800 ? 4 : 6;
    } else if (check == -5) {
        want = 4;
    } else if (check == -6) {
        want = 6;
    } else if (check != -1) {
        unsigned af;
        if (f[0] == 0 && f[1] == 0 && f[2] == 0)
            af = f[3];
        else if (check == -2 && f[1] == 0 && f[2] == 0 && f[3] == 0)
            af = f[0];
        else
            return -1;
        if (af == 2)
            want = 4;
        else if (af == 10 || af == 23 || af == 24 || af == 28 || af == 30)
            want = 6;
        else
            return -1;
    }
    int version = f[o] >> 4;
    if (want ? version != want : version != 4 && version != 6)
        return -1;
    if (version == 6 && len < o + 54)
        return -1;
    return o;
}

/* (l3off, check) as linklayer.FAST_L3 holds them: 0, or -1 with ValueError */
int check_l3(Py_ssize_t l3off, long check);
/* fast (a dict or None) into *slot: 0, or -1 with TypeError */
int set_fast(PyObject **slot, PyObject *fast);
/* the fast lane for one frame whose IP header is at b[p]: 1 skip, 0 hand out, -1 error */
int fast_lane(PyObject *fast, PyObject *buf, const unsigned char *b, Py_ssize_t p,
              Py_ssize_t end, double ts, PyObject *ts_obj);
/* decode.decode_frame(lt, f[0:len]) for one frame (o: ip_at's answer) */
PyObject *decode_any(PyObject *seg_type, PyObject *decode, PyObject *lt, const unsigned char *f,
                     Py_ssize_t len, Py_ssize_t o);
/* decode(TcpSegment, decode_frame) of both scanners */
PyObject *set_decode(PyObject **seg_slot, PyObject **decode_slot, PyObject *args);

extern PyTypeObject WalkPcapngScanType;

#endif
