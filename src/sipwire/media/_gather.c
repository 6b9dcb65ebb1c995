/*
 * sipwire.media._gather: optional C table look-ups for the G.711 codecs.
 *
 * The G.711 definition stays in g711.py: it builds the tables, and these two
 * functions only index them, so the codec cannot differ between the C and the
 * numpy paths (tests/media/test_g711.py compares them on every code and
 * every 16-bit sample).
 *
 *   expand(table, data) -> bytearray
 *       table: 512 bytes, 256 native-endian int16 entries; data: bytes.
 *       Each octet c of data becomes the 2-byte entry table[c] (a bytearray:
 *       numpy.frombuffer makes a writable int16 array of it).
 *   narrow(table, data) -> bytes
 *       table: 65536 bytes; data: a C-contiguous buffer of native int16.
 *       Each sample s becomes the octet table[s & 0xFFFF].
 *
 * Both raise ValueError for a table of the wrong size or a buffer whose
 * length is not a whole number of samples, never anything else but
 * MemoryError (or TypeError for objects without the buffer protocol).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The two buffers of expand/narrow: 0, or -1 with an exception set. */
static int
get_buffers(PyObject *const *args, Py_ssize_t nargs, const char *name, int data_flags,
            Py_buffer *table, Py_buffer *data)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s(table, data) takes 2 arguments", name);
        return -1;
    }
    if (PyObject_GetBuffer(args[0], table, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (PyObject_GetBuffer(args[1], data, data_flags) < 0) {
        PyBuffer_Release(table);
        return -1;
    }
    return 0;
}

static PyObject *
gather_expand(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer table, data;
    if (get_buffers(args, nargs, "expand", PyBUF_SIMPLE, &table, &data) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    if (table.len != 512) {
        PyErr_SetString(PyExc_ValueError, "expand: the table must hold 256 int16 entries");
        goto done;
    }
    out = PyByteArray_FromStringAndSize(NULL, data.len * 2);
    if (out == NULL) {
        goto done;
    }
    const uint8_t *in = (const uint8_t *)data.buf;
    const uint8_t *entries = (const uint8_t *)table.buf;
    uint8_t *dst = (uint8_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < data.len; i++) {
        memcpy(dst + 2 * i, entries + 2 * (size_t)in[i], 2);
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&table);
    return out;
}

static PyObject *
gather_narrow(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer table, data;
    if (get_buffers(args, nargs, "narrow", PyBUF_C_CONTIGUOUS, &table, &data) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    if (table.len != 65536) {
        PyErr_SetString(PyExc_ValueError, "narrow: the table must hold 65536 octets");
        goto done;
    }
    if (data.len % 2) {
        PyErr_SetString(PyExc_ValueError, "narrow: the data is not a whole number of int16");
        goto done;
    }
    Py_ssize_t count = data.len / 2;
    out = PyBytes_FromStringAndSize(NULL, count);
    if (out == NULL) {
        goto done;
    }
    const uint8_t *in = (const uint8_t *)data.buf;
    const uint8_t *entries = (const uint8_t *)table.buf;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint16_t sample;
        memcpy(&sample, in + 2 * i, 2);
        dst[i] = entries[sample];
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&table);
    return out;
}

static PyMethodDef gather_methods[] = {
    {"expand", (PyCFunction)(void (*)(void))gather_expand, METH_FASTCALL,
     "expand(table, data): each octet of data as its 2-byte entry of table."},
    {"narrow", (PyCFunction)(void (*)(void))gather_narrow, METH_FASTCALL,
     "narrow(table, data): each int16 of data as its octet of table."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef gather_module = {
    PyModuleDef_HEAD_INIT, "sipwire.media._gather",
    "Table look-ups for the G.711 codecs (the tables come from g711.py).", -1,
    gather_methods,
};

PyMODINIT_FUNC
PyInit__gather(void)
{
    return PyModule_Create(&gather_module);
}
