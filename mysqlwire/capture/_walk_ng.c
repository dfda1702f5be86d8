/* The pcapng loop of mysqlwire.capture.reader, native: PcapngScan (the
 * module itself, PcapScan and the fast-lane test are in _walk.c). */

#include "_walk.h"

/* ---- PcapngScan: the Enhanced Packet Blocks of reader._pcapng_records ---------
 *
 * PcapngScan(fast, fast_l3)
 *     pos, frame = scan.scan(buf, pos, ifaces, big_endian)
 *
 * walks the Enhanced Packet Blocks that lie whole in the buffer and are
 * plainly sound (a known interface, lengths that add up); it returns at the
 * first other block -- any other type, or anything the Python loop would
 * refuse, or a block the buffer does not hold whole -- with frame None, for
 * the Python loop to handle that one block as it always does.  ifaces is the
 * Python loop's list of (linktype, divisor, offset, snaplen); fast_l3 its
 * _FAST_L3 (linktype -> (l3off, link_check), as PcapScan takes them).
 * scan.n counts the blocks walked here, scan.last_ts is the last one's time. */

typedef struct {
    PyObject_HEAD
    PyObject *fast;
    PyObject *fast_l3;
    PyObject *last_ts;
    unsigned long long n;
    PyObject *seg_type; /* decode(), as PcapScan's */
    PyObject *decode;
} PcapngScan;

static int
PcapngScan_traverse(PcapngScan *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fast);
    Py_VISIT(self->fast_l3);
    Py_VISIT(self->last_ts);
    Py_VISIT(self->seg_type);
    Py_VISIT(self->decode);
    return 0;
}

static int
PcapngScan_clear(PcapngScan *self)
{
    Py_CLEAR(self->fast);
    Py_CLEAR(self->fast_l3);
    Py_CLEAR(self->last_ts);
    Py_CLEAR(self->seg_type);
    Py_CLEAR(self->decode);
    return 0;
}

static void
PcapngScan_dealloc(PcapngScan *self)
{
    PyObject_GC_UnTrack(self);
    PcapngScan_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
PcapngScan_init(PcapngScan *self, PyObject *args, PyObject *kwds)
{
    PyObject *fast, *fast_l3;
    if (!PyArg_ParseTuple(args, "OO!", &fast, &PyDict_Type, &fast_l3))
        return -1;
    if (set_fast(&self->fast, fast) < 0)
        return -1;
    Py_INCREF(fast_l3);
    Py_XSETREF(self->fast_l3, fast_l3);
    Py_XSETREF(self->last_ts, PyFloat_FromDouble(0.0));
    self->n = 0;
    return self->last_ts == NULL ? -1 : 0;
}

#define MAX_RECORD (1 << 26) /* reader.MAX_RECORD */
#define TWO53 9007199254740992ULL

/* ts = ticks / divisor + offset, exactly as Python computes it (int / int
 * is correctly rounded; so is a double division of exactly representable
 * operands, the usual case; anything larger goes through Python ints). */
static PyObject *
pcapng_ts(unsigned long long ticks, PyObject *div, PyObject *offset)
{
    int of1 = 0, of2 = 0;
    long long d = PyLong_AsLongLongAndOverflow(div, &of1);
    long long o = PyLong_AsLongLongAndOverflow(offset, &of2);
    if ((d == -1 || o == -1) && PyErr_Occurred())
        return NULL;
    if (!of1 && !of2 && d > 0 && (unsigned long long)d <= TWO53 && ticks <= TWO53)
        return PyFloat_FromDouble((double)ticks / (double)d + (double)o);
    PyObject *t = PyLong_FromUnsignedLongLong(ticks);
    if (t == NULL)
        return NULL;
    PyObject *q = PyNumber_TrueDivide(t, div);
    Py_DECREF(t);
    if (q == NULL)
        return NULL;
    PyObject *r = PyNumber_Add(q, offset);
    Py_DECREF(q);
    return r;
}

static PyObject *
PcapngScan_scan(PcapngScan *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "scan(buf: bytes, pos: int, ifaces: list, big: bool)");
        return NULL;
    }
    PyObject *buf = args[0], *ifaces = args[2];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    int big = PyObject_IsTrue(args[3]);
    if (big < 0)
        return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(buf);
    Py_ssize_t blen = PyBytes_GET_SIZE(buf);
    if (pos < 0 || pos > blen) {
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
        return NULL;
    }
    Py_INCREF(buf);
    Py_INCREF(ifaces);
    PyObject *result = NULL;
    for (;;) {
        if (blen - pos < 32 || rd32(b + pos, big) != 6) {
            result = Py_BuildValue("nO", pos, Py_None);
            break;
        }
        Py_ssize_t size = rd32(b + pos + 4, big);
        Py_ssize_t iface = rd32(b + pos + 8, big);
        Py_ssize_t caplen = rd32(b + pos + 20, big);
        if (size < 32 || size & 3 || size > MAX_RECORD || size > blen - pos || caplen > size - 32
            || iface >= PyList_GET_SIZE(ifaces)) {
            result = Py_BuildValue("nO", pos, Py_None); /* the Python loop decides */
            break;
        }
        PyObject *info = PyList_GET_ITEM(ifaces, iface);
        if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) < 3) {
            PyErr_SetString(PyExc_TypeError, "bad interface entry");
            break;
        }
        unsigned long long ticks = (unsigned long long)rd32(b + pos + 12, big) << 32 | rd32(b + pos + 16, big);
        PyObject *ts = pcapng_ts(ticks, PyTuple_GET_ITEM(info, 1), PyTuple_GET_ITEM(info, 2));
        if (ts == NULL)
            break;
        Py_SETREF(self->last_ts, ts);
        self->n++;
        PyObject *lt = PyTuple_GET_ITEM(info, 0);
        Py_ssize_t end = pos + size;
        Py_ssize_t start = pos + 28;
        Py_ssize_t o = -1;
        if (self->fast != NULL || self->seg_type != NULL) {
            PyObject *l3 = PyDict_GetItemWithError(self->fast_l3, lt);
            if (l3 == NULL && PyErr_Occurred())
                break;
            if (l3 != NULL) {
                Py_ssize_t l3off;
                long check;
                if (!PyArg_ParseTuple(l3, "nl", &l3off, &check) || check_l3(l3off, check) < 0)
                    break;
                o = ip_at(b + start, caplen, l3off, check);
                if (o >= 0 && self->fast != NULL) {
                    double t = PyFloat_AsDouble(self->last_ts);
                    if (t == -1.0 && PyErr_Occurred())
                        break;
                    int skip = fast_lane(self->fast, buf, b, start + o, start + caplen, t, self->last_ts);
                    if (skip < 0)
                        break;
                    if (skip > 0) {
                        pos = end;
                        continue;
                    }
                }
            }
        }
        PyObject *frame;
        if (self->seg_type != NULL) {
            PyObject *seg = decode_any(self->seg_type, self->decode, lt, b + start, caplen, o);
            if (seg == NULL)
                break;
            frame = Py_BuildValue("(ON)", self->last_ts, seg);
        } else {
            frame = Py_BuildValue("(OOy#n)", self->last_ts, lt, (const char *)b + start, caplen, iface);
        }
        if (frame == NULL)
            break;
        result = Py_BuildValue("nN", end, frame);
        break;
    }
    Py_DECREF(ifaces);
    Py_DECREF(buf);
    return result;
}

static PyObject *
PcapngScan_decode(PcapngScan *self, PyObject *args)
{
    return set_decode(&self->seg_type, &self->decode, args);
}

static PyObject *
PcapngScan_get_n(PcapngScan *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->n);
}

static PyObject *
PcapngScan_get_last_ts(PcapngScan *self, void *closure)
{
    Py_INCREF(self->last_ts);
    return self->last_ts;
}

static PyMethodDef PcapngScan_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))PcapngScan_scan, METH_FASTCALL,
     "scan(buf, pos, ifaces, big_endian) -> (pos, frame or None)"},
    {"decode", (PyCFunction)PcapngScan_decode, METH_VARARGS,
     "decode(TcpSegment, decode_frame): scan() then hands out (ts, segment or reason)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PcapngScan_getset[] = {
    {"n", (getter)PcapngScan_get_n, NULL, "blocks walked", NULL},
    {"last_ts", (getter)PcapngScan_get_last_ts, NULL, "the last walked block's time", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject WalkPcapngScanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlwire.capture._walk.PcapngScan",
    .tp_basicsize = sizeof(PcapngScan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The pcapng Enhanced Packet Block loop (see mysqlwire/capture/_walk.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PcapngScan_init,
    .tp_dealloc = (destructor)PcapngScan_dealloc,
    .tp_traverse = (traverseproc)PcapngScan_traverse,
    .tp_clear = (inquiry)PcapngScan_clear,
    .tp_methods = PcapngScan_methods,
    .tp_getset = PcapngScan_getset,
};

