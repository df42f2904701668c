/* Byte planes of fixed-width numbers: the transposes behind byte grouping (see planes.py).
 *
 * split(src, width) -> bytes      plane i holds byte i of every element, planes back to back
 * merge(out, planes) -> None      the inverse, written into a writable buffer
 *
 * numpy does the same in ~4 strided copies per chunk at ~3.5 GB/s while holding the GIL between
 * them; these loops run at 6-10 GB/s with the GIL released, so two restore or ingest threads can
 * both be at work. planes.py keeps the numpy version for when this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static void split_bytes(const uint8_t *src, uint8_t *dst, Py_ssize_t count, int width)
{
    if (width == 4) {
        uint8_t *p0 = dst, *p1 = dst + count, *p2 = dst + 2 * count, *p3 = dst + 3 * count;
        for (Py_ssize_t j = 0; j < count; j++) {
            uint32_t v;
            memcpy(&v, src + 4 * j, 4);
            p0[j] = (uint8_t)v;
            p1[j] = (uint8_t)(v >> 8);
            p2[j] = (uint8_t)(v >> 16);
            p3[j] = (uint8_t)(v >> 24);
        }
    } else if (width == 2) {
        uint8_t *p0 = dst, *p1 = dst + count;
        for (Py_ssize_t j = 0; j < count; j++) {
            p0[j] = src[2 * j];
            p1[j] = src[2 * j + 1];
        }
    } else {
        for (int i = 0; i < width; i++) {
            uint8_t *p = dst + i * count;
            for (Py_ssize_t j = 0; j < count; j++)
                p[j] = src[(Py_ssize_t)width * j + i];
        }
    }
}

static void merge_bytes(const uint8_t **planes, uint8_t *dst, Py_ssize_t count, int width)
{
    if (width == 4) {
        const uint8_t *p0 = planes[0], *p1 = planes[1], *p2 = planes[2], *p3 = planes[3];
        for (Py_ssize_t j = 0; j < count; j++) {
            uint32_t v = (uint32_t)p0[j] | ((uint32_t)p1[j] << 8) | ((uint32_t)p2[j] << 16) |
                         ((uint32_t)p3[j] << 24);
            memcpy(dst + 4 * j, &v, 4);
        }
    } else if (width == 2) {
        const uint8_t *p0 = planes[0], *p1 = planes[1];
        for (Py_ssize_t j = 0; j < count; j++) {
            dst[2 * j] = p0[j];
            dst[2 * j + 1] = p1[j];
        }
    } else {
        for (int i = 0; i < width; i++) {
            const uint8_t *p = planes[i];
            for (Py_ssize_t j = 0; j < count; j++)
                dst[(Py_ssize_t)width * j + i] = p[j];
        }
    }
}

static PyObject *split(PyObject *self, PyObject *args)
{
    Py_buffer src;
    int width;
    if (!PyArg_ParseTuple(args, "y*i", &src, &width))
        return NULL;
    if (width < 1 || width > 8 || src.len % width != 0) {
        PyBuffer_Release(&src);
        PyErr_SetString(PyExc_ValueError, "split: width must be 1..8 and divide the length");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, src.len);
    if (out != NULL) {
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        split_bytes((const uint8_t *)src.buf, dst, src.len / width, width);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&src);
    return out;
}

static PyObject *merge(PyObject *self, PyObject *args)
{
    Py_buffer out;
    PyObject *seq;
    Py_buffer views[8];
    const uint8_t *planes[8];
    Py_ssize_t width = 0, count, i;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "w*O", &out, &seq))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "merge: planes must be a sequence");
    if (fast == NULL)
        goto done_out;
    width = PySequence_Fast_GET_SIZE(fast);
    if (width < 1 || width > 8 || out.len % width != 0) {
        PyErr_SetString(PyExc_ValueError, "merge: 1..8 planes whose count divides the output");
        width = 0;
        goto done;
    }
    count = out.len / width;
    for (i = 0; i < width; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, i), &views[i], PyBUF_SIMPLE) < 0) {
            width = i;
            goto done;
        }
        if (views[i].len != count) {
            PyErr_SetString(PyExc_ValueError, "merge: a plane has the wrong length");
            width = i + 1;
            goto done;
        }
        planes[i] = (const uint8_t *)views[i].buf;
    }
    Py_BEGIN_ALLOW_THREADS
    merge_bytes(planes, (uint8_t *)out.buf, count, (int)width);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    for (i = 0; i < width; i++)
        PyBuffer_Release(&views[i]);
    Py_DECREF(fast);
done_out:
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS, "split(src, width) -> bytes: the byte planes of src, back to back."},
    {"merge", merge, METH_VARARGS, "merge(out, planes): interleave the planes into the writable out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_planes", NULL, -1, methods};

PyMODINIT_FUNC PyInit__planes(void) { return PyModule_Create(&module); }
