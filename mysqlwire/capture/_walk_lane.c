/* CommandLane of mysqlwire.capture._walk: mysqlwire.capture.lane.CommandLane in C.
 *
 * The same fields and the same client()/server() decisions as the Python
 * class in lane.py (the reference, documented there; the tests run both);
 * the record loop of _walk.c calls them without a Python call when an
 * entry's lane is this type. */

#include "_walk.h"

static int
Lane_traverse(Lane *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ack);
    Py_VISIT(self->sack);
    Py_VISIT(self->last);
    Py_VISIT(self->inflate);
    return 0;
}

static int
Lane_clear(Lane *self)
{
    Py_CLEAR(self->ack);
    Py_CLEAR(self->sack);
    Py_CLEAR(self->last);
    Py_CLEAR(self->inflate);
    return 0;
}

static void
Lane_dealloc(Lane *self)
{
    PyObject_GC_UnTrack(self);
    Lane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Lane_init(Lane *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"client_fwd", "cli_next", "watch", "ts", "quiet", "inflate", NULL};
    int client_fwd, quiet;
    unsigned long long cli_next;
    Py_ssize_t watch;
    double ts;
    PyObject *inflate = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "pKndp|O", kwlist, &client_fwd, &cli_next,
                                     &watch, &ts, &quiet, &inflate))
        return -1;
    if (cli_next > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "cli_next is a 32-bit sequence number");
        return -1;
    }
    self->client_fwd = (char)client_fwd;
    self->cli_next = (unsigned int)cli_next;
    Py_INCREF(Py_None);
    Py_XSETREF(self->ack, Py_None);
    Py_INCREF(Py_None);
    Py_XSETREF(self->sack, Py_None);
    Py_XSETREF(self->last, PyBytes_FromStringAndSize("", 0));
    if (self->last == NULL)
        return -1;
    self->last_ts = ts;
    self->commands = self->nbytes = self->sbytes = 0;
    self->watch = watch;
    self->awaiting = 0;
    self->reply_at = 0;
    self->quiet = (char)quiet;
    Py_INCREF(inflate);
    Py_XSETREF(self->inflate, inflate);
    self->inner = 0;
    self->cseq = 0;
    return 0;
}

static int
set_seq(PyObject **field, uint32_t v)
{
    PyObject *o = PyLong_FromUnsignedLong(v);
    if (o == NULL)
        return -1;
    Py_XSETREF(*field, o);
    return 0;
}

/* 1 taken, 0 for the ordinary path, -1 error.  The caller guarantees
 * 0 <= p, p + IP_NEED(b, p) <= end <= the buffer's length. */
int
walk_lane_client(Lane *self, const unsigned char *b, Py_ssize_t p, Py_ssize_t end, double ts)
{
    Py_ssize_t pend, t = tcp_span(b, p, &pend);
    if (b[t + 12] < 0x50)
        return 0; /* a TCP header shorter than 20 bytes: the decoder drops it */
    Py_ssize_t q = t + ((b[t + 12] >> 4) << 2);
    Py_ssize_t n = pend - q;
    uint32_t seq = be32(b + t + 4), ack = be32(b + t + 8);
    if (n == 0)
        return set_seq(&self->ack, ack) < 0 ? -1 : 1;
    if (n < 5 || q + n > end || seq != self->cli_next)
        return 0;
    const unsigned char *pk = b + q;
    Py_ssize_t m = n;
    PyObject *packet = NULL;
    if (self->inflate != Py_None) {
        PyObject *seg = PyBytes_FromStringAndSize((const char *)b + q, n);
        if (seg == NULL)
            return -1;
        packet = PyObject_CallOneArg(self->inflate, seg);
        Py_DECREF(seg);
        if (packet == NULL)
            return -1;
        if (packet == Py_None) {
            Py_DECREF(packet);
            return 0;
        }
        if (!PyBytes_Check(packet)) {
            Py_DECREF(packet);
            PyErr_SetString(PyExc_TypeError, "inflate must return bytes or None");
            return -1;
        }
        pk = (const unsigned char *)PyBytes_AS_STRING(packet);
        m = PyBytes_GET_SIZE(packet);
    }
    int ok = m >= 5 && !pk[3] && ((Py_ssize_t)pk[0] | (Py_ssize_t)pk[1] << 8 | (Py_ssize_t)pk[2] << 16) == m - 4;
    int cmd = ok ? pk[4] : 0;
    Py_XDECREF(packet);
    if (!ok || cmd == 0x11 || (cmd == 0x01 && !self->quiet))
        return 0; /* not one command packet, COM_CHANGE_USER, a listened-to COM_QUIT */
    PyObject *last = PyBytes_FromStringAndSize((const char *)b + q, n);
    if (last == NULL || set_seq(&self->ack, ack) < 0) {
        Py_XDECREF(last);
        return -1;
    }
    if (self->inflate != Py_None) {
        self->inner += m;
        self->cseq = b[q + 3];
    }
    self->cli_next = (uint32_t)(seq + (uint32_t)n);
    Py_XSETREF(self->last, last);
    self->last_ts = ts;
    self->commands += 1;
    self->nbytes += n;
    if (self->watch > 0) {
        self->watch -= 1;
        if (!self->awaiting) {
            self->awaiting = 1;
            self->reply_at = ack; /* the answer starts where the client acknowledged */
        }
    }
    return 1;
}

int
walk_lane_server(Lane *self, const unsigned char *b, Py_ssize_t p, Py_ssize_t end, double ts)
{
    Py_ssize_t pend, t = tcp_span(b, p, &pend);
    if (b[t + 12] < 0x50)
        return 0;
    Py_ssize_t q = t + ((b[t + 12] >> 4) << 2);
    Py_ssize_t n = pend - q;
    uint32_t seq = be32(b + t + 4), ack = be32(b + t + 8);
    if (n == 0)
        return set_seq(&self->sack, ack) < 0 ? -1 : 1;
    if (n < 0)
        return 0;
    uint32_t behind = (uint32_t)(self->reply_at - seq);
    if (behind) {
        if (behind < 0x80000000U && (Py_ssize_t)behind >= n)
            return set_seq(&self->sack, ack) < 0 ? -1 : 1; /* old bytes, before the answer */
        return 0;
    }
    if (self->inflate != Py_None || n < 5 || q + 5 > end || b[q + 3] != 1 || b[q + 4] == 0xFF
        || ((Py_ssize_t)b[q] | (Py_ssize_t)b[q + 1] << 8 | (Py_ssize_t)b[q + 2] << 16) + 4 > n)
        return 0;
    if (set_seq(&self->sack, ack) < 0)
        return -1;
    self->awaiting = 0;
    self->sbytes += n;
    self->last_ts = ts;
    return 1;
}

static PyObject *
Lane_call(Lane *self, PyObject *const *args, Py_ssize_t nargs, int server)
{
    Py_ssize_t p, end;
    double ts;
    if (nargs != 4 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "(buf: bytes, p: int, end: int, ts: float)");
        return NULL;
    }
    p = PyLong_AsSsize_t(args[1]);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    end = PyLong_AsSsize_t(args[2]);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    ts = PyFloat_AsDouble(args[3]);
    if (ts == -1.0 && PyErr_Occurred())
        return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    if (p < 0 || p + 34 > end || end > PyBytes_GET_SIZE(args[0]) || p + IP_NEED(b, p) > end) {
        PyErr_SetString(PyExc_ValueError, "the frame is outside the buffer");
        return NULL;
    }
    int r = server ? walk_lane_server(self, b, p, end, ts) : walk_lane_client(self, b, p, end, ts);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

static PyObject *
Lane_client(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    return Lane_call(self, args, nargs, 0);
}

static PyObject *
Lane_server(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    return Lane_call(self, args, nargs, 1);
}

static PyMethodDef Lane_methods[] = {
    {"client", (PyCFunction)(void (*)(void))Lane_client, METH_FASTCALL,
     "client(buf, p, end, ts) -> bool: take a client segment?"},
    {"server", (PyCFunction)(void (*)(void))Lane_server, METH_FASTCALL,
     "server(buf, p, end, ts) -> bool: take a server segment while an answer is awaited?"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Lane_members[] = {
    {"client_fwd", T_BOOL, offsetof(Lane, client_fwd), READONLY, NULL},
    {"cli_next", T_UINT, offsetof(Lane, cli_next), READONLY, NULL},
    {"ack", T_OBJECT, offsetof(Lane, ack), READONLY, NULL},
    {"sack", T_OBJECT, offsetof(Lane, sack), READONLY, NULL},
    {"last", T_OBJECT, offsetof(Lane, last), READONLY, NULL},
    {"last_ts", T_DOUBLE, offsetof(Lane, last_ts), READONLY, NULL},
    {"commands", T_PYSSIZET, offsetof(Lane, commands), READONLY, NULL},
    {"nbytes", T_PYSSIZET, offsetof(Lane, nbytes), READONLY, NULL},
    {"sbytes", T_PYSSIZET, offsetof(Lane, sbytes), READONLY, NULL},
    {"watch", T_PYSSIZET, offsetof(Lane, watch), READONLY, NULL},
    {"awaiting", T_BOOL, offsetof(Lane, awaiting), READONLY, NULL},
    {"reply_at", T_UINT, offsetof(Lane, reply_at), READONLY, NULL},
    {"quiet", T_BOOL, offsetof(Lane, quiet), READONLY, NULL},
    {"inflate", T_OBJECT, offsetof(Lane, inflate), READONLY, NULL},
    {"inner", T_PYSSIZET, offsetof(Lane, inner), READONLY, NULL},
    {"cseq", T_INT, offsetof(Lane, cseq), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject WalkLaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlwire.capture._walk.CommandLane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "mysqlwire.capture.lane.CommandLane, native (see _walk.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_traverse = (traverseproc)Lane_traverse,
    .tp_clear = (inquiry)Lane_clear,
    .tp_methods = Lane_methods,
    .tp_members = Lane_members,
};
