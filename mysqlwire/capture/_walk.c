/* The pcap record loop of mysqlwire.capture.reader, native.
 *
 * PcapScan(big_endian, header_size, divisor, linktype, l3off, link_check, fast)
 * walks the records of a buffer (a bytes object) from a position:
 *
 *     pos, frame = scan.scan(buf, pos)
 *
 * frame is the next frame to hand out, as the tuple (ts, linktype, data, 0)
 * the pure-Python loop yields, and pos the position after its record.  When
 * the buffer ends before a whole record, frame is None, pos is where that
 * record starts and scan.need is the number of bytes wanted from there (a
 * record header, or a header and its captured bytes): the caller reads more
 * (or stops) and calls again.  scan.n counts every record walked, including
 * the ones the fast lane skipped.
 *
 * (l3off, link_check) say where a frame's IP header is: linklayer.FAST_L3 and
 * linklayer.ip_offset, which ip_at() writes out; link_check NO_L3 (-4):
 * nowhere known, every frame goes the ordinary way.
 *
 * fast (a dict or None) is a reassembler's fast lane: for an IPv4 or IPv6 TCP
 * frame whose address and port bytes (12 or 36) are a key of it, the entry
 * (flow, mask, mode, lane[, take]) decides whether the frame is skipped;
 * this file only implements the test written out in linklayer.skip and
 * reader._pcap_records (the reference: both must agree on every input, and
 * the tests compare them).  The decision calls back into Python for what belongs
 * to the flow (lane.awaiting, take(buf, p, end, ts), flow.last_ts = ts).
 *
 * Nothing here trusts a length: every read is inside the buffer, a record
 * that claims more bytes than the buffer holds is left to the caller (who
 * bounds it), and no state survives a call except the counters.
 */

#include "_walk.h"

typedef struct {
    PyObject_HEAD
    int big;
    Py_ssize_t hlen;
    double div;
    PyObject *lt;
    Py_ssize_t l3off;
    long check;
    PyObject *fast;
    unsigned long long n;
    Py_ssize_t need;
    PyObject *seg_type; /* decode(): TcpSegment, or NULL: frames are handed out undecoded */
    PyObject *decode;   /* decode(): decode.decode_frame, for every frame not decoded here */
} PcapScan;

static PyObject *str_last_ts;
static PyObject *str_awaiting;
static PyObject *str_ack32;
static PyObject *zero;



/* (l3off, check) as linklayer.FAST_L3 holds them: 0, or -1 with ValueError */
int
check_l3(Py_ssize_t l3off, long check)
{
    if (check < -6 || l3off < 0 || l3off > 64 || (check >= 0 && check + 2 > l3off)
        || ((check == -2 || check == -3) && l3off < 4)) {
        PyErr_SetString(PyExc_ValueError, "bad link-layer parameters");
        return -1;
    }
    return 0;
}



static int
PcapScan_traverse(PcapScan *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fast);
    Py_VISIT(self->lt);
    Py_VISIT(self->seg_type);
    Py_VISIT(self->decode);
    return 0;
}

static int
PcapScan_clear(PcapScan *self)
{
    Py_CLEAR(self->fast);
    Py_CLEAR(self->lt);
    Py_CLEAR(self->seg_type);
    Py_CLEAR(self->decode);
    return 0;
}

static void
PcapScan_dealloc(PcapScan *self)
{
    PyObject_GC_UnTrack(self);
    PcapScan_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* fast (a dict or None) into *slot: 0, or -1 with TypeError */
int
set_fast(PyObject **slot, PyObject *fast)
{
    if (fast != Py_None && !PyDict_Check(fast)) {
        PyErr_SetString(PyExc_TypeError, "fast must be a dict or None");
        return -1;
    }
    Py_XSETREF(*slot, fast == Py_None ? NULL : Py_NewRef(fast));
    return 0;
}

static int
PcapScan_init(PcapScan *self, PyObject *args, PyObject *kwds)
{
    int big;
    Py_ssize_t hlen, l3off;
    double div;
    PyObject *lt, *fast;
    long check;
    if (!PyArg_ParseTuple(args, "pndO!nlO", &big, &hlen, &div, &PyLong_Type, &lt, &l3off,
                          &check, &fast))
        return -1;
    if (hlen < 16 || div <= 0) {
        PyErr_SetString(PyExc_ValueError, "bad PcapScan parameters");
        return -1;
    }
    if (check_l3(l3off, check) < 0)
        return -1;
    if (set_fast(&self->fast, fast) < 0)
        return -1;
    self->big = big;
    self->hlen = hlen;
    self->div = div;
    self->l3off = l3off;
    self->check = check;
    Py_INCREF(lt);
    Py_XSETREF(self->lt, lt);
    self->n = 0;
    self->need = 0;
    return 0;
}

/* 1: the lane's side of the flow waits for an answer; 0: at rest; -1: error */
static int
awaiting(PyObject *ent)
{
    PyObject *lane = PyTuple_GET_ITEM(ent, 3);
    if (Py_IS_TYPE(lane, &WalkLaneType))
        return ((Lane *)lane)->awaiting;
    PyObject *v = PyObject_GetAttr(PyTuple_GET_ITEM(ent, 3), str_awaiting);
    if (v == NULL)
        return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* The fast-lane test of reader._pcap_records for one frame whose key is in
 * the lane: 1 skip it, 0 hand it out, -1 error.  p: the IP header (ip_at). */
static int
skip_frame(PyObject *buf, const unsigned char *b, Py_ssize_t p, Py_ssize_t end,
           double ts, PyObject *ent)
{
    if (!PyTuple_Check(ent) || PyTuple_GET_SIZE(ent) < 3) {
        PyErr_SetString(PyExc_TypeError, "bad fast-lane entry");
        return -1;
    }
    long mask = PyLong_AsLong(PyTuple_GET_ITEM(ent, 1));
    if (mask == -1 && PyErr_Occurred())
        return -1;
    Py_ssize_t pend, t = tcp_span(b, p, &pend);
    if (b[p] >> 4 == 6) {
        if (!(b[p + 6] == 6 && !(b[t + 13] & mask)))
            return 0; /* (IPv6: TCP right after the fixed header) */
    } else if (!(b[p] == 0x45 && b[p + 9] == 6 && !(b[t + 13] & mask) && !((b[p + 6] & 0x1F) || b[p + 7]))) {
        return 0;
    }
    long mode = PyLong_AsLong(PyTuple_GET_ITEM(ent, 2));
    if (mode == -1 && PyErr_Occurred())
        return -1;
    if (mode == 0)
        return 1;
    Py_ssize_t size = PyTuple_GET_SIZE(ent);
    if (mode == 3) {
        if (size < 4) {
            PyErr_SetString(PyExc_TypeError, "bad fast-lane entry");
            return -1;
        }
        int a = awaiting(ent);
        if (a < 0)
            return -1;
        if (!a)
            return 1;
    }
    int bare = pend == t + ((b[t + 12] >> 4) << 2);
    if (bare) {
        if (mode == 1)
            return 1;
        if (mode == 2) {
            if (size < 4) {
                PyErr_SetString(PyExc_TypeError, "bad fast-lane entry");
                return -1;
            }
            int a = awaiting(ent);
            if (a < 0)
                return -1;
            if (!a)
                return 1;
        }
    }
    if (mode == 1)
        return 0;
    if (size < 5) {
        PyErr_SetString(PyExc_TypeError, "bad fast-lane entry");
        return -1;
    }
    PyObject *lane = PyTuple_GET_ITEM(ent, 3);
    if (mode == 4 && lane != Py_None) {
        /* a bare ACK noted in lane.ack32 (lane: the direction acknowledged),
         * what _Dir.acked does; anything else is not taken */
        if (!bare || b[t + 12] < 0x50)
            return 0;
        PyObject *ack = PyLong_FromUnsignedLong(be32(b + t + 8));
        if (ack == NULL)
            return -1;
        int r = PyObject_SetAttr(lane, str_ack32, ack);
        Py_DECREF(ack);
        return r < 0 ? -1 : 1;
    }
    if ((mode == 2 || mode == 3) && Py_IS_TYPE(lane, &WalkLaneType)) /* (entries of tcp._open_lane) */
        return mode == 2 ? walk_lane_client((Lane *)lane, b, p, end, ts) : walk_lane_server((Lane *)lane, b, p, end, ts);
    PyObject *r = PyObject_CallFunction(PyTuple_GET_ITEM(ent, 4), "Onnd", buf, p, end, ts);
    if (r == NULL)
        return -1;
    int taken = PyObject_IsTrue(r);
    Py_DECREF(r);
    return taken;
}

/* The common frame of decode.decode_frame -- IP at o (ip_at(), -1: none):
 * IPv4 without options and not a fragment, or IPv6 with TCP right after its
 * fixed header; its TCP header and payload inside the frame -- as the
 * TcpSegment decode_frame builds for it (its Ethernet branch, _ipv4() or
 * _ipv6() behind any link header it reads the same way); NULL without an
 * exception for every other frame (the caller hands it to decode_frame). */
static PyObject *
decode_here(PyObject *seg_type, const unsigned char *f, Py_ssize_t len, Py_ssize_t o)
{
    if (o < 0)
        return NULL;
    const unsigned char *ip = f + o;
    int v6 = ip[0] >> 4 == 6;
    Py_ssize_t hl = v6 ? 40 : 20;
    if (len < o + hl + 20)
        return NULL;
    Py_ssize_t end;
    if (v6) {
        Py_ssize_t plen = (Py_ssize_t)ip[4] << 8 | ip[5];
        if (ip[6] != 6 || plen == 0)
            return NULL;
        end = o + 40 + plen;
    } else {
        if (!(ip[0] == 0x45 && ip[9] == 6 && !((ip[6] << 8 | ip[7]) & 0x1FFF)))
            return NULL;
        end = o + ((Py_ssize_t)ip[2] << 8 | ip[3]);
    }
    const unsigned char *tcp = ip + hl;
    Py_ssize_t p = o + hl + ((tcp[12] >> 4) << 2);
    if (p < o + hl + 20 || p > end || end > len)
        return NULL;
    PyTypeObject *type = (PyTypeObject *)seg_type;
    PyObject *seg = type->tp_alloc(type, 10);
    if (seg == NULL)
        return NULL;
    PyObject *items[10] = {
        PyBytes_FromStringAndSize((const char *)ip + (v6 ? 8 : 12), v6 ? 16 : 4),
        PyLong_FromLong((long)tcp[0] << 8 | tcp[1]),
        PyBytes_FromStringAndSize((const char *)ip + (v6 ? 24 : 16), v6 ? 16 : 4),
        PyLong_FromLong((long)tcp[2] << 8 | tcp[3]),
        PyLong_FromUnsignedLong(be32(tcp + 4)),
        PyLong_FromUnsignedLong(be32(tcp + 8)),
        PyLong_FromLong(tcp[13]),
        PyBytes_FromStringAndSize((const char *)f + p, end - p),
        Py_NewRef(v6 ? Py_True : Py_False),
        Py_NewRef(zero),
    };
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        if (items[i] == NULL)
            bad = 1;
        PyTuple_SET_ITEM(seg, i, items[i]);
    }
    if (bad) {
        Py_DECREF(seg);
        return NULL;
    }
    return seg;
}

/* decode.decode_frame(lt, f[0:len]) for one frame: decode_here() when it
 * can, else a call of decode (the caller's decode_frame).  NULL: error. */
PyObject *
decode_any(PyObject *seg_type, PyObject *decode, PyObject *lt, const unsigned char *f,
           Py_ssize_t len, Py_ssize_t o)
{
    PyObject *seg = decode_here(seg_type, f, len, o);
    if (seg != NULL || PyErr_Occurred())
        return seg;
    PyObject *data = PyBytes_FromStringAndSize((const char *)f, len);
    if (data == NULL)
        return NULL;
    seg = PyObject_CallFunctionObjArgs(decode, lt, data, NULL);
    Py_DECREF(data);
    return seg;
}

/* decode(TcpSegment, decode_frame) of both scanners: the two slots, set */
PyObject *
set_decode(PyObject **seg_slot, PyObject **decode_slot, PyObject *args)
{
    PyObject *seg_type, *decode;
    if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &seg_type, &decode))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)seg_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the segment type must be a tuple subclass");
        return NULL;
    }
    Py_INCREF(seg_type);
    Py_XSETREF(*seg_slot, seg_type);
    Py_INCREF(decode);
    Py_XSETREF(*decode_slot, decode);
    Py_RETURN_NONE;
}

static PyObject *
PcapScan_decode(PcapScan *self, PyObject *args)
{
    return set_decode(&self->seg_type, &self->decode, args);
}

/* The fast lane for one frame whose IP header is at b[p] (ip_at() found it,
 * with the bytes the lane reads; end: the frame's end): 1 the frame
 * is skipped (its flow's last_ts set to ts_obj, or to ts when ts_obj is NULL),
 * 0 it is handed out, -1 error.  Both record loops use it. */
int
fast_lane(PyObject *fast, PyObject *buf, const unsigned char *b, Py_ssize_t p,
          Py_ssize_t end, double ts, PyObject *ts_obj)
{
    /* the addresses and ports: IPv4 4 + 4 + 2 + 2 bytes, IPv6 16 + 16 + 2 + 2 */
    PyObject *key = b[p] >> 4 == 6 ? PyBytes_FromStringAndSize((const char *)b + p + 8, 36)
                                   : PyBytes_FromStringAndSize((const char *)b + p + 12, 12);
    if (key == NULL)
        return -1;
    PyObject *ent = PyDict_GetItemWithError(fast, key);
    Py_DECREF(key);
    if (ent == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(ent);
    int skip = skip_frame(buf, b, p, end, ts, ent);
    if (skip > 0) {
        PyObject *t = ts_obj != NULL ? Py_NewRef(ts_obj) : PyFloat_FromDouble(ts);
        if (t == NULL || PyObject_SetAttr(PyTuple_GET_ITEM(ent, 0), str_last_ts, t) < 0)
            skip = -1;
        Py_XDECREF(t);
    }
    Py_DECREF(ent);
    return skip;
}

static PyObject *
PcapScan_scan(PcapScan *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan(buf: bytes, pos: int)");
        return NULL;
    }
    PyObject *buf = args[0];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t blen = PyBytes_GET_SIZE(buf);
    Py_ssize_t hlen = self->hlen;
    if (pos < 0 || pos > blen) {
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
        return NULL;
    }
    Py_INCREF(buf); /* the lane's callbacks run Python code */
    PyObject *result = NULL;
    for (;;) {
        if (blen - pos < hlen) {
            self->need = hlen;
            result = Py_BuildValue("nO", pos, Py_None);
            break;
        }
        uint32_t sec = rd32(b + pos, self->big);
        uint32_t frac = rd32(b + pos + 4, self->big);
        Py_ssize_t incl = (Py_ssize_t)rd32(b + pos + 8, self->big);
        Py_ssize_t start = pos + hlen;
        Py_ssize_t end = start + incl;
        if (end > blen) {
            self->need = hlen + incl;
            result = Py_BuildValue("nO", pos, Py_None);
            break;
        }
        self->n++;
        double ts = (double)sec + (double)frac / self->div;
        Py_ssize_t o = ip_at(b + start, incl, self->l3off, self->check);
        if (self->fast != NULL && o >= 0) {
            int skip = fast_lane(self->fast, buf, b, start + o, end, ts, NULL);
            if (skip < 0)
                break;
            if (skip > 0) {
                pos = end;
                continue;
            }
        }
        if (self->seg_type != NULL) {
            PyObject *seg = decode_any(self->seg_type, self->decode, self->lt, b + start, incl, o);
            if (seg == NULL)
                break;
            result = Py_BuildValue("n(dN)", end, ts, seg);
            break;
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)b + start, incl);
        if (data == NULL)
            break;
        PyObject *t = PyFloat_FromDouble(ts);
        if (t == NULL) {
            Py_DECREF(data);
            break;
        }
        PyObject *frame = PyTuple_New(4);
        if (frame == NULL) {
            Py_DECREF(data);
            Py_DECREF(t);
            break;
        }
        Py_INCREF(self->lt);
        Py_INCREF(zero);
        PyTuple_SET_ITEM(frame, 0, t);
        PyTuple_SET_ITEM(frame, 1, self->lt);
        PyTuple_SET_ITEM(frame, 2, data);
        PyTuple_SET_ITEM(frame, 3, zero);
        result = Py_BuildValue("nN", end, frame);
        break;
    }
    Py_DECREF(buf);
    return result;
}

static PyObject *
PcapScan_get_n(PcapScan *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->n);
}

static PyObject *
PcapScan_get_need(PcapScan *self, void *closure)
{
    return PyLong_FromSsize_t(self->need);
}

static PyMethodDef PcapScan_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))PcapScan_scan, METH_FASTCALL,
     "scan(buf, pos) -> (pos, frame or None)"},
    {"decode", (PyCFunction)PcapScan_decode, METH_VARARGS,
     "decode(TcpSegment, decode_frame): scan() then hands out (ts, segment or reason)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PcapScan_getset[] = {
    {"n", (getter)PcapScan_get_n, NULL, "records walked", NULL},
    {"need", (getter)PcapScan_get_need, NULL, "bytes wanted when scan() returned no frame", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PcapScanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlwire.capture._walk.PcapScan",
    .tp_basicsize = sizeof(PcapScan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The pcap record loop (see mysqlwire/capture/_walk.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PcapScan_init,
    .tp_dealloc = (destructor)PcapScan_dealloc,
    .tp_traverse = (traverseproc)PcapScan_traverse,
    .tp_clear = (inquiry)PcapScan_clear,
    .tp_methods = PcapScan_methods,
    .tp_getset = PcapScan_getset,
};

static struct PyModuleDef walk_module = {
    PyModuleDef_HEAD_INIT, "_walk", "Native pcap record loop of mysqlwire.capture.reader.", -1,
    NULL,
};

PyMODINIT_FUNC
PyInit__walk(void)
{
    if (PyType_Ready(&PcapScanType) < 0 || PyType_Ready(&WalkLaneType) < 0 || PyType_Ready(&WalkPcapngScanType) < 0)
        return NULL;
    str_last_ts = PyUnicode_InternFromString("last_ts");
    str_awaiting = PyUnicode_InternFromString("awaiting");
    str_ack32 = PyUnicode_InternFromString("ack32");
    zero = PyLong_FromLong(0);
    if (str_last_ts == NULL || str_awaiting == NULL || str_ack32 == NULL || zero == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&walk_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "VERSION", 8) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&PcapScanType);
    if (PyModule_AddObject(m, "PcapScan", (PyObject *)&PcapScanType) < 0) {
        Py_DECREF(&PcapScanType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&WalkLaneType);
    if (PyModule_AddObject(m, "CommandLane", (PyObject *)&WalkLaneType) < 0) {
        Py_DECREF(&WalkLaneType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&WalkPcapngScanType);
    if (PyModule_AddObject(m, "PcapngScan", (PyObject *)&WalkPcapngScanType) < 0) {
        Py_DECREF(&WalkPcapngScanType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
