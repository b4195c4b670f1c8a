/* The processor's hot pure steps in C, each the twin of a Python function that stays the
 * reference (tests compare them) and the fallback when this module is not built.
 *
 * 1. Avro binary encoding of the derived records (`avro.py`): one `bytes` per row, for
 *    the few Avro types the derived schemas use (records, arrays, ["null", T] unions,
 *    string, bytes, int/long, double), and decoding containers back to records, all or
 *    some of their fields (`avro.decode`). `avro.py` turns a parsed schema into a program
 *    of nested tuples; `Codec(program)` compiles it once into a tree of nodes.
 *
 *      ("string",) ("bytes",) ("long",) ("double",)
 *      ("nullable", node)                    None, or node
 *      ("record", ((field name, node), ...)) a mapping: each field by name, in order
 *      ("array", node)                       a sequence; None or empty: no items
 *
 * 2. Combining the rows of one kind per key (`records.combine`): `combine(...)`.
 *
 * 3. Deriving one event's records (`derive.derive`): `derive(...)`, in `_derive.c`.
 *
 * Also, not a twin: keeping freed memory for reuse (`memory.py`), in `_memory.c`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef enum { N_STRING, N_BYTES, N_LONG, N_DOUBLE, N_NULLABLE, N_RECORD, N_ARRAY } Kind;

typedef struct Node {
    Kind kind;
    Py_ssize_t count;      /* record: fields; nullable and array: 1 */
    PyObject **names;      /* record: field names (owned references) */
    struct Node **children;
} Node;

static void node_free(Node *node) {
    if (node == NULL) return;
    for (Py_ssize_t i = 0; i < node->count; i++) {
        if (node->names != NULL) Py_XDECREF(node->names[i]);
        if (node->children != NULL) node_free(node->children[i]);
    }
    PyMem_Free(node->names);
    PyMem_Free(node->children);
    PyMem_Free(node);
}

static Node *node_new(Kind kind, Py_ssize_t count) {
    Node *node = PyMem_Calloc(1, sizeof(Node));
    if (node == NULL) return (Node *)PyErr_NoMemory();
    node->kind = kind;
    node->count = count;
    if (count > 0) {
        node->children = PyMem_Calloc((size_t)count, sizeof(Node *));
        if (node->children == NULL) {
            PyMem_Free(node);
            return (Node *)PyErr_NoMemory();
        }
    }
    return node;
}

static Node *compile_node(PyObject *spec, int depth) {
    if (depth > 32) {
        PyErr_SetString(PyExc_ValueError, "Avro program nested too deep");
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
        PyErr_Format(PyExc_ValueError, "not an Avro program node: %R", spec);
        return NULL;
    }
    const char *tag = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (tag == NULL) return NULL;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    if (strcmp(tag, "string") == 0 && size == 1) return node_new(N_STRING, 0);
    if (strcmp(tag, "bytes") == 0 && size == 1) return node_new(N_BYTES, 0);
    if (strcmp(tag, "long") == 0 && size == 1) return node_new(N_LONG, 0);
    if (strcmp(tag, "double") == 0 && size == 1) return node_new(N_DOUBLE, 0);
    if ((strcmp(tag, "nullable") == 0 || strcmp(tag, "array") == 0) && size == 2) {
        Node *node = node_new(tag[0] == 'n' ? N_NULLABLE : N_ARRAY, 1);
        if (node == NULL) return NULL;
        node->children[0] = compile_node(PyTuple_GET_ITEM(spec, 1), depth + 1);
        if (node->children[0] == NULL) {
            node_free(node);
            return NULL;
        }
        return node;
    }
    if (strcmp(tag, "record") == 0 && size == 2 && PyTuple_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyObject *fields = PyTuple_GET_ITEM(spec, 1);
        Py_ssize_t count = PyTuple_GET_SIZE(fields);
        Node *node = node_new(N_RECORD, count);
        if (node == NULL) return NULL;
        node->names = PyMem_Calloc((size_t)(count ? count : 1), sizeof(PyObject *));
        if (node->names == NULL) {
            node_free(node);
            return (Node *)PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *field = PyTuple_GET_ITEM(fields, i);
            if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(field, 0))) {
                PyErr_Format(PyExc_ValueError, "not a record field: %R", field);
                node_free(node);
                return NULL;
            }
            /* interned: derive's dict keys are, so a lookup matches by identity */
            PyObject *name = Py_NewRef(PyTuple_GET_ITEM(field, 0));
            PyUnicode_InternInPlace(&name);
            node->names[i] = name;
            node->children[i] = compile_node(PyTuple_GET_ITEM(field, 1), depth + 1);
            if (node->children[i] == NULL) {
                node_free(node);
                return NULL;
            }
        }
        return node;
    }
    PyErr_Format(PyExc_ValueError, "not an Avro program node: %R", spec);
    return NULL;
}

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int reserve(Buffer *buf, Py_ssize_t extra) {
    if (buf->len + extra <= buf->cap) return 0;
    Py_ssize_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra) cap *= 2;
    char *data = PyMem_Realloc(buf->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

/* Avro's int and long: a zigzag varint. */
static int put_long(Buffer *buf, int64_t value) {
    if (reserve(buf, 10) < 0) return -1;
    uint64_t n = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    while (n > 0x7F) {
        buf->data[buf->len++] = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    buf->data[buf->len++] = (char)n;
    return 0;
}

static int put_raw(Buffer *buf, const char *data, Py_ssize_t size) {
    if (reserve(buf, size) < 0) return -1;
    memcpy(buf->data + buf->len, data, (size_t)size);
    buf->len += size;
    return 0;
}

static int put_text(Buffer *buf, PyObject *value) {
    const char *data;
    Py_ssize_t size;
    if (PyUnicode_Check(value)) {
        data = PyUnicode_AsUTF8AndSize(value, &size);
        if (data == NULL) return -1;
    } else if (PyBytes_Check(value)) {
        data = PyBytes_AS_STRING(value);
        size = PyBytes_GET_SIZE(value);
    } else if (PyByteArray_Check(value)) {
        data = PyByteArray_AS_STRING(value);
        size = PyByteArray_GET_SIZE(value);
    } else {
        PyErr_Format(PyExc_TypeError, "an Avro string or bytes needs str or bytes, not %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (put_long(buf, (int64_t)size) < 0) return -1;
    return put_raw(buf, data, size);
}

static int encode_value(Node *node, PyObject *value, Buffer *buf) {
    switch (node->kind) {
    case N_STRING:
    case N_BYTES:
        return put_text(buf, value);
    case N_LONG: {
        if (!PyLong_Check(value)) {
            PyErr_Format(PyExc_TypeError, "an Avro long needs an int, not %.100s",
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            PyErr_Format(PyExc_ValueError, "%R is out of range for an Avro long", value);
            return -1;
        }
        if (number == -1 && PyErr_Occurred()) return -1;
        return put_long(buf, (int64_t)number);
    }
    case N_DOUBLE: {
        double number = PyFloat_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred()) return -1;
        if (reserve(buf, 8) < 0) return -1;
        if (PyFloat_Pack8(number, buf->data + buf->len, 1) < 0) return -1;
        buf->len += 8;
        return 0;
    }
    case N_NULLABLE:
        if (reserve(buf, 1) < 0) return -1;
        if (value == Py_None) {
            buf->data[buf->len++] = 0;
            return 0;
        }
        buf->data[buf->len++] = 2;
        return encode_value(node->children[0], value, buf);
    case N_RECORD:
        for (Py_ssize_t i = 0; i < node->count; i++) {
            PyObject *name = node->names[i];
            PyObject *item;
            int status;
            if (PyDict_CheckExact(value)) {
                item = PyDict_GetItemWithError(value, name); /* borrowed */
                if (item == NULL) {
                    if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
                    return -1;
                }
                status = encode_value(node->children[i], item, buf);
            } else {
                item = PyObject_GetItem(value, name); /* new reference */
                if (item == NULL) return -1;
                status = encode_value(node->children[i], item, buf);
                Py_DECREF(item);
            }
            if (status < 0) return -1;
        }
        return 0;
    case N_ARRAY: {
        int any = PyObject_IsTrue(value); /* None or empty: no block */
        if (any < 0) return -1;
        if (any) {
            PyObject *items = PySequence_Fast(value, "an Avro array needs a sequence");
            if (items == NULL) return -1;
            Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
            PyObject **each = PySequence_Fast_ITEMS(items);
            if (put_long(buf, (int64_t)count) < 0) {
                Py_DECREF(items);
                return -1;
            }
            for (Py_ssize_t i = 0; i < count; i++) {
                if (encode_value(node->children[0], each[i], buf) < 0) {
                    Py_DECREF(items);
                    return -1;
                }
            }
            Py_DECREF(items);
        }
        if (reserve(buf, 1) < 0) return -1;
        buf->data[buf->len++] = 0;
        return 0;
    }
    }
    PyErr_SetString(PyExc_SystemError, "unknown Avro program node");
    return -1;
}

typedef struct {
    PyObject_HEAD
    Node *root;
} CodecObject;

static int Codec_init(CodecObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *program;
    static char *keywords[] = {"program", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Codec", keywords, &program)) return -1;
    Node *root = compile_node(program, 0);
    if (root == NULL) return -1;
    node_free(self->root);
    self->root = root;
    return 0;
}

static void Codec_dealloc(CodecObject *self) {
    node_free(self->root);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Codec_encode_rows(CodecObject *self, PyObject *rows) {
    if (self->root == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Codec was not initialised");
        return NULL;
    }
    PyObject *items = PySequence_Fast(rows, "encode_rows needs a sequence of rows");
    if (items == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    PyObject **each = PySequence_Fast_ITEMS(items);
    PyObject *out = PyList_New(count);
    Buffer buf = {NULL, 0, 0};
    if (out == NULL) goto fail;
    for (Py_ssize_t i = 0; i < count; i++) {
        buf.len = 0;
        if (encode_value(self->root, each[i], &buf) < 0) goto fail;
        PyObject *encoded = PyBytes_FromStringAndSize(buf.data ? buf.data : "", buf.len);
        if (encoded == NULL) goto fail;
        PyList_SET_ITEM(out, i, encoded);
    }
    PyMem_Free(buf.data);
    Py_DECREF(items);
    return out;
fail:
    PyMem_Free(buf.data);
    Py_DECREF(items);
    Py_XDECREF(out);
    return NULL;
}

/* ---- decoding (avro.decode): the data blocks of one container ---- */

typedef struct {
    const unsigned char *at;
    const unsigned char *end;
} Reader;

static int truncated(void) {
    PyErr_SetString(PyExc_ValueError, "Avro data ends inside a value");
    return -1;
}

static int get_long(Reader *in, int64_t *value) {
    uint64_t n = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (in->at >= in->end) return truncated();
        unsigned char byte = *in->at++;
        n |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *value = (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "an Avro long longer than 10 bytes");
    return -1;
}

static int get_size(Reader *in, Py_ssize_t *size) { /* a length that must fit what is left */
    int64_t value;
    if (get_long(in, &value) < 0) return -1;
    if (value < 0 || value > in->end - in->at) {
        if (value < 0) PyErr_SetString(PyExc_ValueError, "a negative Avro length");
        else truncated();
        return -1;
    }
    *size = (Py_ssize_t)value;
    return 0;
}

static PyObject *decode_record(Node *node, Reader *in, const char *wanted);

/* One value of `node` as Python (or, with `keep` 0, skipped: NULL and no error set is
 * then the success, so callers test PyErr_Occurred). */
static PyObject *decode_value(Node *node, Reader *in, int keep) {
    switch (node->kind) {
    case N_STRING:
    case N_BYTES: {
        Py_ssize_t size;
        if (get_size(in, &size) < 0) return NULL;
        const char *data = (const char *)in->at;
        in->at += size;
        if (!keep) return NULL;
        return node->kind == N_STRING ? PyUnicode_DecodeUTF8(data, size, NULL)
                                      : PyBytes_FromStringAndSize(data, size);
    }
    case N_LONG: {
        int64_t value;
        if (get_long(in, &value) < 0) return NULL;
        return keep ? PyLong_FromLongLong(value) : NULL;
    }
    case N_DOUBLE: {
        if (in->end - in->at < 8) {
            truncated();
            return NULL;
        }
        const unsigned char *data = in->at;
        in->at += 8;
        if (!keep) return NULL;
        double value = PyFloat_Unpack8((const char *)data, 1);
        if (value == -1.0 && PyErr_Occurred()) return NULL;
        return PyFloat_FromDouble(value);
    }
    case N_NULLABLE: {
        int64_t branch;
        if (get_long(in, &branch) < 0) return NULL;
        if (branch == 0) return keep ? Py_NewRef(Py_None) : NULL;
        if (branch != 1) {
            PyErr_Format(PyExc_ValueError, "union branch %lld of a [\"null\", T] union",
                         (long long)branch);
            return NULL;
        }
        return decode_value(node->children[0], in, keep);
    }
    case N_RECORD:
        if (keep) return decode_record(node, in, NULL);
        for (Py_ssize_t i = 0; i < node->count; i++) {
            decode_value(node->children[i], in, 0);
            if (PyErr_Occurred()) return NULL;
        }
        return NULL;
    case N_ARRAY: {
        PyObject *items = keep ? PyList_New(0) : NULL;
        if (keep && items == NULL) return NULL;
        for (;;) {
            int64_t count;
            if (get_long(in, &count) < 0) goto fail;
            if (count == 0) return items;
            if (count < 0) { /* a block with its size in bytes */
                int64_t size;
                if (get_long(in, &size) < 0) goto fail;
                count = -count;
            }
            if (count > in->end - in->at) { /* every item takes a byte at least */
                truncated();
                goto fail;
            }
            for (int64_t i = 0; i < count; i++) {
                PyObject *item = decode_value(node->children[0], in, keep);
                if (item == NULL) {
                    if (!keep && !PyErr_Occurred()) continue;
                    goto fail;
                }
                int status = PyList_Append(items, item);
                Py_DECREF(item);
                if (status < 0) goto fail;
            }
        }
    fail:
        Py_XDECREF(items);
        return NULL;
    }
    }
    PyErr_SetString(PyExc_SystemError, "unknown Avro program node");
    return NULL;
}

/* A record as a dict of the fields `wanted` marks (NULL: all); the others are skipped. */
static PyObject *decode_record(Node *node, Reader *in, const char *wanted) {
    PyObject *record = _PyDict_NewPresized(node->count); /* no resizing as fields go in */
    if (record == NULL) return NULL;
    for (Py_ssize_t i = 0; i < node->count; i++) {
        int keep = wanted == NULL || wanted[i];
        PyObject *value = decode_value(node->children[i], in, keep);
        if (value == NULL) {
            if (!keep && !PyErr_Occurred()) continue;
            Py_DECREF(record);
            return NULL;
        }
        int status = PyDict_SetItem(record, node->names[i], value);
        Py_DECREF(value);
        if (status < 0) {
            Py_DECREF(record);
            return NULL;
        }
    }
    return record;
}

/* decode_blocks(container, start, sync, fields): the records of the data blocks from
 * `start` on, each block ended by `sync`; with `fields` (names), only those fields of
 * each record, in the schema's order. */
static PyObject *Codec_decode_blocks(CodecObject *self, PyObject *args) {
    Py_buffer data, sync;
    Py_ssize_t start;
    PyObject *fields;
    if (self->root == NULL || self->root->kind != N_RECORD) {
        PyErr_SetString(PyExc_RuntimeError, "Codec was not initialised with a record");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*ny*O:decode_blocks", &data, &start, &sync, &fields))
        return NULL;
    Node *root = self->root;
    PyObject *out = NULL;
    char *keep = PyMem_Calloc((size_t)(root->count ? root->count : 1), 1);
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int all = fields == Py_None;
    for (Py_ssize_t i = 0; i < root->count; i++) {
        int wanted = all ? 1 : PySequence_Contains(fields, root->names[i]);
        if (wanted < 0) goto done;
        keep[i] = (char)wanted;
    }
    if (!all) { /* every name asked for must be a field */
        Py_ssize_t asked = PySequence_Size(fields), found = 0;
        if (asked < 0) goto done;
        for (Py_ssize_t i = 0; i < root->count; i++) found += keep[i];
        if (found != asked) {
            PyErr_Format(PyExc_ValueError, "fields %R are not all fields of the schema", fields);
            goto done;
        }
    }
    if (start < 0 || start > data.len) {
        PyErr_SetString(PyExc_ValueError, "start is outside the container");
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL) goto done;
    const unsigned char *bytes = data.buf;
    Reader in = {bytes + start, bytes + data.len};
    while (in.at < in.end) {
        int64_t count;
        Py_ssize_t size;
        if (get_long(&in, &count) < 0 || get_size(&in, &size) < 0) goto fail;
        if (count < 0) {
            PyErr_SetString(PyExc_ValueError, "a negative Avro block count");
            goto fail;
        }
        Reader block = {in.at, in.at + size};
        for (int64_t i = 0; i < count; i++) {
            PyObject *record = decode_record(root, &block, keep);
            if (record == NULL) goto fail;
            int status = PyList_Append(out, record);
            Py_DECREF(record);
            if (status < 0) goto fail;
        }
        if (block.at != block.end) {
            PyErr_SetString(PyExc_ValueError, "an Avro block's size does not match its records");
            goto fail;
        }
        in.at = block.end;
        if (in.end - in.at < sync.len || memcmp(in.at, sync.buf, (size_t)sync.len) != 0) {
            PyErr_SetString(PyExc_ValueError, "an Avro block does not end with the sync marker");
            goto fail;
        }
        in.at += sync.len;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyMem_Free(keep);
    PyBuffer_Release(&data);
    PyBuffer_Release(&sync);
    return out;
}

static PyMethodDef Codec_methods[] = {
    {"encode_rows", (PyCFunction)Codec_encode_rows, METH_O,
     "encode_rows(rows) -> list of bytes: each row's Avro encoding."},
    {"decode_blocks", (PyCFunction)Codec_decode_blocks, METH_VARARGS,
     "decode_blocks(container, start, sync, fields) -> list of records (all fields: None)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CodecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lineagehouse.processors._native.Codec",
    .tp_doc = PyDoc_STR("Codec(program): Avro binary encoding and decoding, compiled once."),
    .tp_basicsize = sizeof(CodecObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Codec_init,
    .tp_dealloc = (destructor)Codec_dealloc,
    .tp_methods = Codec_methods,
};

/* ---- combining rows per key (records.combine, records._combine_into) ---- */

/* records._sortable: a nested record (an exact dict) compares as a tuple of
 * (value is None, value) pairs; anything else as itself. New reference. */
static PyObject *sortable(PyObject *value) {
    if (!PyDict_CheckExact(value)) return Py_NewRef(value);
    PyObject *out = PyTuple_New(PyDict_GET_SIZE(value));
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0, i = 0;
    PyObject *name, *item;
    while (PyDict_Next(value, &pos, &name, &item)) {
        PyObject *pair = PyTuple_Pack(2, item == Py_None ? Py_True : Py_False, item);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i++, pair);
    }
    return out;
}

static int sortable_compare(PyObject *left, PyObject *right, int op) {
    PyObject *a = sortable(left);
    if (a == NULL) return -1;
    PyObject *b = sortable(right);
    if (b == NULL) {
        Py_DECREF(a);
        return -1;
    }
    int result = PyObject_RichCompareBool(a, b, op);
    Py_DECREF(a);
    Py_DECREF(b);
    return result;
}

/* sorted(set(current) | set(value)). New reference. */
static PyObject *sorted_union(PyObject *current, PyObject *value) {
    PyObject *merged = PySet_New(current);
    if (merged == NULL) return NULL;
    PyObject *iterator = PyObject_GetIter(value);
    if (iterator == NULL) {
        Py_DECREF(merged);
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        int status = PySet_Add(merged, item);
        Py_DECREF(item);
        if (status < 0) break;
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        Py_DECREF(merged);
        return NULL;
    }
    PyObject *out = PySequence_List(merged);
    Py_DECREF(merged);
    if (out != NULL && PyList_Sort(out) < 0) Py_CLEAR(out);
    return out;
}

/* Whether nested record `value` beats `current` under `op` (Py_LT: smaller, Py_GT:
 * larger), compared as `sortable` tuples are, without building them: element by element,
 * a None element after any value. 1 wins, 0 not (equal included), -1 error, -2 the two
 * are not records of one shape (the same keys, the same objects, in the same order):
 * the caller takes the general path. */
static int record_wins(PyObject *value, PyObject *current, int op) {
    if (PyDict_GET_SIZE(value) != PyDict_GET_SIZE(current)) return -2;
    Py_ssize_t pos_a = 0, pos_b = 0;
    PyObject *name_a, *a, *name_b, *b;
    while (PyDict_Next(value, &pos_a, &name_a, &a)) {
        if (!PyDict_Next(current, &pos_b, &name_b, &b) || name_a != name_b) return -2;
        if (a == b) continue;
        if (a == Py_None) return op == Py_GT; /* (True, None) > (False, b) */
        if (b == Py_None) return op == Py_LT;
        int equal = PyObject_RichCompareBool(a, b, Py_EQ);
        if (equal < 0) return -1;
        if (!equal) return PyObject_RichCompareBool(a, b, op);
    }
    return 0;
}

/* records._combine_into: fold `row` into `into` (a copy this call may change). */
static int combine_into(PyObject *into, PyObject *row, PyObject *keys, PyObject *unions,
                        PyObject *minimum) {
    if (!PyDict_Check(row)) {
        PyErr_Format(PyExc_TypeError, "a row is a dict, not %.100s", Py_TYPE(row)->tp_name);
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(row, &pos, &name, &value)) {
        PyObject *current = PyDict_GetItemWithError(into, name);
        if (current == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
            return -1;
        }
        if (value == Py_None || value == current) continue;
        if (PyDict_CheckExact(value) && PyDict_CheckExact(current)) {
            /* a nested record, as in most aggregated columns: one pass, no tuples */
            int is_key = PySet_Contains(keys, name);
            int in_union = is_key == 0 ? PySet_Contains(unions, name) : 0;
            int in_minimum = is_key == 0 ? PySet_Contains(minimum, name) : 0;
            if (is_key < 0 || in_union < 0 || in_minimum < 0) return -1;
            if (is_key) continue;
            int wins = in_union ? -2 : record_wins(value, current, in_minimum ? Py_LT : Py_GT);
            if (wins == -1) return -1;
            if (wins == 0) continue;
            if (wins == 1) {
                if (PyDict_SetItem(into, name, value) < 0) return -1;
                continue;
            }
        }
        Py_INCREF(current);
        PyObject *replacement = NULL; /* new reference: what `into[name]` becomes */
        int skip = PyObject_RichCompareBool(value, current, Py_EQ);
        if (skip == 0) skip = PySet_Contains(keys, name);
        if (skip == 0) {
            if (current == Py_None) {
                replacement = Py_NewRef(value);
            } else {
                int in_union = PySet_Contains(unions, name);
                int in_minimum = in_union == 0 ? PySet_Contains(minimum, name) : 0;
                if (in_union < 0 || in_minimum < 0) {
                    skip = -1;
                } else if (in_union) {
                    replacement = sorted_union(current, value);
                    if (replacement == NULL) skip = -1;
                } else {
                    int wins = sortable_compare(value, current, in_minimum ? Py_LT : Py_GT);
                    if (wins < 0) skip = -1;
                    else if (wins) replacement = Py_NewRef(value);
                }
            }
        }
        Py_DECREF(current);
        if (skip < 0) return -1;
        if (replacement != NULL) {
            int status = PyDict_SetItem(into, name, replacement);
            Py_DECREF(replacement);
            if (status < 0) return -1;
        }
    }
    return 0;
}

/* row[name], a new reference: looked up directly in a dict (every derived row is one). */
static PyObject *field_of(PyObject *row, PyObject *name) {
    if (!PyDict_CheckExact(row)) return PyObject_GetItem(row, name);
    PyObject *item = PyDict_GetItemWithError(row, name);
    if (item == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
        return NULL;
    }
    return Py_NewRef(item);
}

/* The key of a row: one field's value, or the tuple of several (operator.itemgetter). */
static PyObject *row_key(PyObject *row, PyObject *key_names) {
    Py_ssize_t count = PyTuple_GET_SIZE(key_names);
    if (count == 1) return field_of(row, PyTuple_GET_ITEM(key_names, 0));
    PyObject *key = PyTuple_New(count);
    if (key == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = field_of(row, PyTuple_GET_ITEM(key_names, i));
        if (item == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, item);
    }
    return key;
}

/* Fold `rows` into `combined` (key -> row) in order; `copied` holds the keys whose row in
 * `combined` is this fold's own copy, which later rows may change. */
static int fold_rows(PyObject *combined, PyObject *copied, PyObject *rows, PyObject *key_names,
                     int aggregated, PyObject *keys, PyObject *unions, PyObject *minimum) {
    if (PyTuple_GET_SIZE(key_names) == 0) {
        PyErr_SetString(PyExc_ValueError, "combine needs at least one key field");
        return -1;
    }
    PyObject *items = PySequence_Fast(rows, "combine needs an iterable of rows");
    if (items == NULL) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    PyObject **each = PySequence_Fast_ITEMS(items);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = each[i];
        PyObject *key = row_key(row, key_names);
        if (key == NULL) goto fail;
        PyObject *current = PyDict_GetItemWithError(combined, key); /* borrowed */
        int status = 0;
        if (current == NULL) {
            status = PyErr_Occurred() ? -1 : PyDict_SetItem(combined, key, row);
        } else if (aggregated) {
            int is_copy = PySet_Contains(copied, key);
            if (is_copy < 0) {
                status = -1;
            } else if (!is_copy) {
                PyObject *copy = PyDict_Copy(current);
                if (copy == NULL || PyDict_SetItem(combined, key, copy) < 0 ||
                    PySet_Add(copied, key) < 0)
                    status = -1;
                Py_XDECREF(copy); /* `combined` holds it */
                current = copy;
            }
            if (status == 0) status = combine_into(current, row, keys, unions, minimum);
        } /* not aggregated: the first row of a key stands for all (copies are equal) */
        Py_DECREF(key);
        if (status < 0) goto fail;
    }
    Py_DECREF(items);
    return 0;
fail:
    Py_DECREF(items);
    return -1;
}

static PyObject *native_combine(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *rows, *key_names, *keys, *unions, *minimum;
    int aggregated;
    if (!PyArg_ParseTuple(args, "OO!pO!O!O!:combine", &rows, &PyTuple_Type, &key_names,
                          &aggregated, &PyFrozenSet_Type, &keys, &PyFrozenSet_Type, &unions,
                          &PyFrozenSet_Type, &minimum))
        return NULL;
    PyObject *combined = PyDict_New();
    PyObject *copied = PySet_New(NULL);
    PyObject *out = NULL;
    if (combined != NULL && copied != NULL &&
        fold_rows(combined, copied, rows, key_names, aggregated, keys, unions, minimum) == 0)
        out = PyDict_Values(combined);
    Py_XDECREF(combined);
    Py_XDECREF(copied);
    return out;
}

/* records.Combiner.add: the same fold, into a state the caller keeps between calls. */
static PyObject *native_combine_more(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *combined, *copied, *rows, *key_names, *keys, *unions, *minimum;
    int aggregated;
    if (!PyArg_ParseTuple(args, "O!O!OO!pO!O!O!:combine_more", &PyDict_Type, &combined,
                          &PySet_Type, &copied, &rows, &PyTuple_Type, &key_names, &aggregated,
                          &PyFrozenSet_Type, &keys, &PyFrozenSet_Type, &unions,
                          &PyFrozenSet_Type, &minimum))
        return NULL;
    if (fold_rows(combined, copied, rows, key_names, aggregated, keys, unions, minimum) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _derive.c */
int derive_init(void);
PyObject *native_derive(PyObject *module, PyObject *args);
PyObject *native_configure_derive(PyObject *module, PyObject *args);

/* _memory.c */
PyObject *native_keep_freed_memory(PyObject *module, PyObject *arg);
PyObject *native_kept_memory(PyObject *module, PyObject *unused);

static PyMethodDef module_methods[] = {
    {"combine", native_combine, METH_VARARGS,
     "combine(rows, key_names, aggregated, keys, union, minimum) -> list: records.combine."},
    {"combine_more", native_combine_more, METH_VARARGS,
     "combine_more(combined, copied, rows, key_names, aggregated, keys, union, minimum): "
     "records.Combiner.add."},
    {"derive", native_derive, METH_VARARGS,
     "derive(event, event_id, out, custom_facets, max_facet_bytes) -> out: derive.derive."},
    {"configure_derive", native_configure_derive, METH_VARARGS,
     "configure_derive(...): the Python helpers `derive` calls back (derive.py)."},
    {"keep_freed_memory", native_keep_freed_memory, METH_O,
     "keep_freed_memory(max_arena_bytes) -> bool: memory.keep_freed_memory."},
    {"kept_memory", native_kept_memory, METH_NOARGS,
     "kept_memory() -> (bytes of empty arenas kept now, how many may be kept)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lineagehouse.processors._native",
    .m_doc = PyDoc_STR("The processor's hot pure steps in C (see avro.py, records.py, derive.py)."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&CodecType) < 0 || derive_init() < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
    if (PyModule_AddObjectRef(mod, "Codec", (PyObject *)&CodecType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
