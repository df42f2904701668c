/* The byte loops under the grouped and delta codecs (kernels.py has the numpy versions).
 *
 * split(src, width) -> bytes      plane i holds byte i of every element, planes back to back
 * merge(out, planes) -> None      the inverse, written into a writable buffer
 * xor_segments(out, bases, segments) -> None
 *                                 XOR into out the ranges (start, length) of the bases'
 *                                 concatenation, one after the other (start 0xFFFFFFFF: zeros):
 *                                 the aligned base bytes of a checkpoint delta (see delta.py)
 *
 * ulp(out, aligned, width, offset, inverse) -> None
 *                                 the ulp delta's transform in place (delta.py): each whole
 *                                 little-endian element from offset as the zigzagged difference
 *                                 of its bits from the aligned element's (inverse: back), where
 *                                 that is not 0; the bytes around the elements XORed
 *
 * ungroup(payload) -> bytearray  a grouped payload's original bytes (grouping.py): its zstd planes
 *                                 decompressed and merged in one call; only where libzstd.so.1
 *                                 could be loaded (HAVE_ZSTD), else grouping.py does it in Python
 *
 * numpy needs several strided copies per chunk (~3.5 GB/s) with Python work between them; each of
 * these is one call that checks its arguments, then runs with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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

static void release_buffers(Py_buffer *views, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
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
    result = Py_NewRef(Py_None);
done:
    release_buffers(views, width);
    Py_DECREF(fast);
done_out:
    PyBuffer_Release(&out);
    return result;
}

#define ZEROS 0xFFFFFFFFu

typedef struct {
    unsigned long long start, length;
} segment;

static void xor_bytes(uint8_t *dst, const uint8_t *src, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        dst[i] ^= src[i];
}

/* XOR the bases' concatenated bytes [start, start + length) into dst */
static void xor_range(uint8_t *dst, const Py_buffer *bases, Py_ssize_t nbases, unsigned long long start,
                      unsigned long long length)
{
    Py_ssize_t i = 0;
    while (i < nbases && start >= (unsigned long long)bases[i].len) {
        start -= bases[i].len;
        i++;
    }
    while (length > 0 && i < nbases) {
        unsigned long long avail = bases[i].len - start;
        unsigned long long k = length < avail ? length : avail;
        xor_bytes(dst, (const uint8_t *)bases[i].buf + start, (Py_ssize_t)k);
        dst += k;
        length -= k;
        start = 0;
        i++;
    }
}

static PyObject *xor_segments(PyObject *self, PyObject *args)
{
    Py_buffer out;
    PyObject *base_seq, *segment_seq;
    PyObject *bases_fast = NULL, *segments_fast = NULL, *result = NULL;
    Py_buffer *bases = NULL;
    segment *segments = NULL;
    Py_ssize_t nbases = 0, got = 0, nsegments, i;
    unsigned long long total = 0, at = 0;

    if (!PyArg_ParseTuple(args, "w*OO", &out, &base_seq, &segment_seq))
        return NULL;
    bases_fast = PySequence_Fast(base_seq, "xor_segments: bases must be a sequence");
    segments_fast = bases_fast ? PySequence_Fast(segment_seq, "xor_segments: segments must be a sequence") : NULL;
    if (segments_fast == NULL)
        goto done;
    nbases = PySequence_Fast_GET_SIZE(bases_fast);
    nsegments = PySequence_Fast_GET_SIZE(segments_fast);
    bases = PyMem_Calloc(nbases ? nbases : 1, sizeof(Py_buffer));
    segments = PyMem_Calloc(nsegments ? nsegments : 1, sizeof(segment));
    if (bases == NULL || segments == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (got = 0; got < nbases; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(bases_fast, got), &bases[got], PyBUF_SIMPLE) < 0)
            goto done;
        total += bases[got].len;
    }
    for (i = 0; i < nsegments; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(segments_fast, i);
        if (!PyTuple_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "xor_segments: a segment is a (start, length) tuple");
            goto done;
        }
        if (!PyArg_ParseTuple(item, "KK;xor_segments: a segment is (start, length)", &segments[i].start,
                              &segments[i].length))
            goto done;
        if (segments[i].length > (unsigned long long)out.len - at) {
            PyErr_SetString(PyExc_ValueError, "delta segments are longer than the chunk");
            goto done;
        }
        if (segments[i].start != ZEROS &&
            (segments[i].start > total || segments[i].length > total - segments[i].start)) {
            PyErr_SetString(PyExc_ValueError, "delta segment lies outside its bases");
            goto done;
        }
        at += segments[i].length;
    }
    if (at != (unsigned long long)out.len) {
        PyErr_SetString(PyExc_ValueError, "delta object does not match its bases' length");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    uint8_t *dst = (uint8_t *)out.buf;
    for (i = 0; i < nsegments; i++) {
        if (segments[i].start != ZEROS)
            xor_range(dst, bases, nbases, segments[i].start, segments[i].length);
        dst += segments[i].length;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release_buffers(bases, got);
    PyMem_Free(bases);
    PyMem_Free(segments);
    Py_XDECREF(bases_fast);
    Py_XDECREF(segments_fast);
    PyBuffer_Release(&out);
    return result;
}

#define ULP_LOOP(T, S, BITS)                                                                 \
    for (Py_ssize_t j = 0; j < count; j++) {                                                  \
        T x, b;                                                                               \
        memcpy(&x, o + (Py_ssize_t)sizeof(T) * j, sizeof(T));                                \
        memcpy(&b, a + (Py_ssize_t)sizeof(T) * j, sizeof(T));                                \
        if (b == 0)                                                                           \
            continue;                                                                         \
        if (!inverse) {                                                                       \
            T d = (T)(x - b);                                                                 \
            x = (T)((d << 1) ^ (T)((S)d >> (BITS - 1)));                                      \
        } else {                                                                              \
            T d = (T)((x >> 1) ^ (T)(0 - (x & 1)));                                           \
            x = (T)(d + b);                                                                   \
        }                                                                                     \
        memcpy(o + (Py_ssize_t)sizeof(T) * j, &x, sizeof(T));                                \
    }

static void ulp_bytes(uint8_t *o, const uint8_t *a, Py_ssize_t count, int width, int inverse)
{
    if (width == 4) {
        ULP_LOOP(uint32_t, int32_t, 32)
    } else if (width == 2) {
        ULP_LOOP(uint16_t, int16_t, 16)
    } else {
        ULP_LOOP(uint64_t, int64_t, 64)
    }
}

static PyObject *ulp(PyObject *self, PyObject *args)
{
    Py_buffer out, aligned;
    int width, offset, inverse;
    if (!PyArg_ParseTuple(args, "w*y*iip:ulp", &out, &aligned, &width, &offset, &inverse))
        return NULL;
    PyObject *result = NULL;
    if (aligned.len != out.len) {
        PyErr_SetString(PyExc_ValueError, "ulp: the aligned bytes differ in length from the chunk");
    } else if (!(width == 2 || width == 4 || width == 8) || offset < 0 || offset >= width) {
        PyErr_SetString(PyExc_ValueError, "ulp: elements of 2, 4 or 8 bytes, offset below the width");
    } else {
        uint8_t *o = out.buf;
        const uint8_t *a = aligned.buf;
        Py_ssize_t n = out.len, count = n > offset ? (n - offset) / width : 0;
        Py_ssize_t end = offset + count * width;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < (offset < n ? offset : n); i++)
            o[i] ^= a[i];
        ulp_bytes(o + offset, a + offset, count, width, inverse);
        for (Py_ssize_t i = end > offset ? end : (offset < n ? offset : n); i < n; i++)
            o[i] ^= a[i];
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&aligned);
    return result;
}


/* -- ungroup: libzstd's stable one-shot API, loaded at import (no headers needed to build) ------ */
/* python-zstandard releases the GIL around each plane (~10 us of work), so two threads decoding
 * planes spend their time handing the GIL over; one call per chunk leaves it released throughout. */

typedef struct ZSTD_DCtx_s ZSTD_DCtx;
#define ZSTD_CONTENTSIZE_UNKNOWN (0ULL - 1)
#define ZSTD_CONTENTSIZE_ERROR (0ULL - 2)
static ZSTD_DCtx *(*zstd_create)(void);
static size_t (*zstd_free)(ZSTD_DCtx *);
static size_t (*zstd_decompress)(ZSTD_DCtx *, void *, size_t, const void *, size_t);
static unsigned (*zstd_is_error)(size_t);
static unsigned long long (*zstd_content_size)(const void *, size_t);

typedef struct {
    ZSTD_DCtx *dctx;
    uint8_t *scratch;
    size_t capacity;
} worker_state;

static pthread_key_t state_key;

static void free_state(void *p)
{
    worker_state *w = p;
    if (w->dctx != NULL)
        zstd_free(w->dctx);
    free(w->scratch);
    free(w);
}

static int load_zstd(void)
{
    void *lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return 0;
    *(void **)&zstd_create = dlsym(lib, "ZSTD_createDCtx");
    *(void **)&zstd_free = dlsym(lib, "ZSTD_freeDCtx");
    *(void **)&zstd_decompress = dlsym(lib, "ZSTD_decompressDCtx");
    *(void **)&zstd_is_error = dlsym(lib, "ZSTD_isError");
    *(void **)&zstd_content_size = dlsym(lib, "ZSTD_getFrameContentSize");
    if (!zstd_create || !zstd_free || !zstd_decompress || !zstd_is_error || !zstd_content_size)
        return 0;
    return pthread_key_create(&state_key, free_state) == 0;
}

/* this thread's decompression context and a scratch buffer of at least `need` bytes (NULL: out of memory) */
static worker_state *state_for(size_t need)
{
    worker_state *w = pthread_getspecific(state_key);
    if (w == NULL) {
        w = calloc(1, sizeof(worker_state));
        if (w == NULL || (w->dctx = zstd_create()) == NULL || pthread_setspecific(state_key, w) != 0) {
            free(w);
            return NULL;
        }
    }
    if (w->capacity < need) {
        uint8_t *bigger = realloc(w->scratch, need);
        if (bigger == NULL)
            return NULL;
        w->scratch = bigger;
        w->capacity = need;
    }
    return w;
}

#define RAW_FLAG 0x80000000u
#define GROUP_HEAD 6

#define SCRATCH_KEEP (8u << 20) /* a thread keeps at most this much scratch between calls */

/* the planes of src (n bytes) decoded and merged into out (length bytes), through w's scratch;
 * NULL or what is wrong */
static const char *ungroup_planes(worker_state *w, const uint8_t *src, size_t n, uint8_t *out, size_t length,
                                  int width, size_t offset, const uint32_t *sizes)
{
    size_t count = (length - offset) / width, end = offset + count * width;
    size_t pos = GROUP_HEAD + 4 * (size_t)width;
    const uint8_t *planes[8];
    if (n < pos + offset)
        return "truncated grouped object";
    memcpy(out, src + pos, offset);
    pos += offset;
    for (int i = 0; i < width; i++) {
        size_t k = sizes[i] & ~RAW_FLAG;
        if (k > n - pos)
            return "truncated grouped object";
        if (sizes[i] & RAW_FLAG) {
            if (k != count)
                return "grouped object plane has the wrong size";
            planes[i] = src + pos;
        } else {
            unsigned long long declared = zstd_content_size(src + pos, k);
            if (declared == ZSTD_CONTENTSIZE_ERROR)
                return "cannot decompress grouped object: not a zstd frame";
            if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != count)
                return "grouped object plane has the wrong size";
            uint8_t *plane = w->scratch + (size_t)i * count;
            size_t got = zstd_decompress(w->dctx, plane, count, src + pos, k);
            if (zstd_is_error(got))
                return "cannot decompress grouped object";
            if (got != count)
                return "grouped object plane has the wrong size";
            planes[i] = plane;
        }
        pos += k;
    }
    if (n - pos != length - end)
        return "grouped object has the wrong length";
    merge_bytes(planes, out + offset, (Py_ssize_t)count, width);
    memcpy(out + end, src + pos, n - pos);
    return NULL;
}

/* the planes of src (n bytes) decoded and merged into out (length bytes); NULL or what is wrong.
 * Scratch grown past SCRATCH_KEEP (a large chunk, or a damaged header claiming one) is freed. */
static const char *ungroup_into(const uint8_t *src, size_t n, uint8_t *out, size_t length, int width,
                                size_t offset, const uint32_t *sizes)
{
    size_t count = (length - offset) / width;
    worker_state *w = state_for(count > 0 ? count * (size_t)width : 1);
    if (w == NULL)
        return "out of memory";
    const char *error = ungroup_planes(w, src, n, out, length, width, offset, sizes);
    if (w->capacity > SCRATCH_KEEP) {
        free(w->scratch);
        w->scratch = NULL;
        w->capacity = 0;
    }
    return error;
}

static PyObject *ungroup(PyObject *self, PyObject *args)
{
    Py_buffer src;
    if (!PyArg_ParseTuple(args, "y*:ungroup", &src))
        return NULL;
    PyObject *result = NULL;
    const uint8_t *p = src.buf;
    uint32_t sizes[8];
    if (src.len < GROUP_HEAD) {
        PyErr_SetString(PyExc_ValueError, "truncated grouped object");
        goto done;
    }
    int width = p[0];
    size_t offset = p[1];
    uint32_t length;
    memcpy(&length, p + 2, 4);
    if (width < 2 || width > 8 || offset >= (size_t)width || length < offset) {
        PyErr_SetString(PyExc_ValueError, "grouped object has a bad header");
        goto done;
    }
    if ((size_t)src.len < GROUP_HEAD + 4 * (size_t)width) {
        PyErr_SetString(PyExc_ValueError, "truncated grouped object");
        goto done;
    }
    memcpy(sizes, p + GROUP_HEAD, 4 * (size_t)width);
    result = PyByteArray_FromStringAndSize(NULL, length);
    if (result == NULL)
        goto done;
    const char *error;
    uint8_t *out = (uint8_t *)PyByteArray_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    error = ungroup_into(p, (size_t)src.len, out, length, width, offset, sizes);
    Py_END_ALLOW_THREADS
    if (error != NULL) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_ValueError, error);
    }
done:
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS, "split(src, width) -> bytes: the byte planes of src, back to back."},
    {"merge", merge, METH_VARARGS, "merge(out, planes): interleave the planes into the writable out."},
    {"xor_segments", xor_segments, METH_VARARGS,
     "xor_segments(out, bases, segments): XOR ranges of the bases' concatenation into out."},
    {"ulp", ulp, METH_VARARGS,
     "ulp(out, aligned, width, offset, inverse): the ulp delta's transform of out, in place."},
    {"ungroup", ungroup, METH_VARARGS, "ungroup(payload) -> bytearray: a grouped payload's original bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__kernels(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "HAVE_ZSTD", load_zstd()) < 0)
        Py_CLEAR(m);
    return m;
}
