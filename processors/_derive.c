/* `derive.derive` in C: one accepted event -> its records, the same dicts, in the same
 * order, as the Python code in derive.py (which stays the reference and the fallback; the
 * tests hold this twin to it on the corpus and on random events).
 *
 * The walk over the event and every record it builds are here. What is cached by exact
 * JSON or rare stays in Python and is called back (`configure_derive`): JSON encoding
 * (orjson), a dataset's facts (identity, version, column lineage, kept facet parts,
 * aliases), a job's kept facet parts, ISO time parsing, JSON paths of custom facets,
 * summarising oversized facets, and the stored JSON and value id of each facet of a
 * dataset or a job.
 *
 * Reference counts: `get_*` return borrowed references; `dict_of` consumes its values;
 * every other PyObject * a function returns is a new reference (NULL: an error is set). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>

#define STRINGS(X)                                                                         \
    X(ABORT) X(COMPLETE) X(FAIL) X(OTHER) X(START) X(_schemaURL) X(actual)                 \
    X(adapter_version) X(alias_key) X(alias_name) X(alias_namespace) X(alias_type)         \
    X(assertion) X(assertions) X(byte_count) X(bytes) X(canonical_name)                    \
    X(canonical_namespace) X(check_name) X(column) X(columnId) X(columnMetrics)            \
    X(column_edges) X(column_lineage_id) X(column_name) X(columns) X(content) X(count)     \
    X(custom) X(dataQuality) X(dataQualityAssertions) X(dataQualityMetrics) X(dataset)     \
    X(dataset_aliases) X(dataset_facets) X(dataset_key) X(dataset_metrics)                 \
    X(dataset_versions) X(datasets) X(description) X(direction) X(distinctCount)           \
    X(distinct_count) X(entity_kind) X(entity_name) X(entity_namespace) X(errorMessage)    \
    X(error_language) X(error_message) X(error_stacktrace) X(eventTime) X(eventType)       \
    X(event_id) X(event_time) X(event_types) X(expectationType) X(expected) X(facet)       \
    X(facet_group) X(facet_ids) X(facet_names) X(facet_values) X(facets) X(facets_json)    \
    X(fail) X(fileCount) X(file_count) X(first_event_time) X(first_seen)                   \
    X(greatExpectations_assertions) X(id) X(input) X(inputFacets) X(inputStatistics)       \
    X(inputs) X(integration) X(io_edges) X(job) X(jobType) X(job_name) X(job_namespace)    \
    X(job_type) X(jobs) X(json) X(lastUpdated) X(last_event_time) X(last_seen)             \
    X(last_updated) X(latest) X(latest_run) X(max) X(message) X(metrics) X(min) X(name)    \
    X(namespace) X(nominalEndTime) X(nominalStartTime) X(nominalTime) X(nominal_end_time)  \
    X(nominal_start_time) X(nullCount) X(null_count) X(openlineageAdapterVersion)          \
    X(output) X(outputFacets) X(outputStatistics) X(outputs) X(parent) X(parent_job_name)  \
    X(parent_job_namespace) X(parent_run_id) X(pass) X(processingType)                     \
    X(processing_engine) X(processing_engine_version) X(processing_type) X(producer)       \
    X(programmingLanguage) X(quality_assertions) X(quantiles) X(result) X(root)            \
    X(root_job_name) X(root_job_namespace) X(root_run_id) X(rowCount) X(row_count) X(run)  \
    X(runId) X(run_id) X(runs) X(severity) X(size) X(skip) X(skipped) X(source)            \
    X(stackTrace) X(started_at) X(state) X(status) X(success) X(sum) X(summarised)         \
    X(terminal) X(time) X(version) X(version_id)

#define DECLARE(name) static PyObject *S_##name;
STRINGS(DECLARE)
#undef DECLARE
static PyObject *S_EMPTY;       /* "" */
static PyObject *S_TRUE;        /* "true" */
static PyObject *S_FALSE;       /* "false" */
static PyObject *S_SPEC_PREFIX; /* derive.SPEC_FACET_PREFIX */
static PyObject *S_lower;       /* "lower" */
static PyObject *S_append;      /* "append" */
static PyObject *S_extend;      /* "extend" */
static PyObject *B_EMPTY;       /* b"" */
static PyObject *ZERO;          /* 0 */
static PyObject *ONE;           /* 1 */
static PyObject *NO_VALUE;      /* {}: what `_dict` gives for an absent or non-dict value */
/* []: the one empty list of every record's empty array field (facets rows have up to four
 * per row; no code appends to a record's lists: combine builds new ones) */
static PyObject *EMPTY_LIST;

/* The Python side (configure_derive). */
static PyObject *h_dumps, *h_time_ms, *h_quantiles_json, *h_dataset_facts, *h_job_parts,
    *h_json_path, *h_summarised, *h_facet_values, *NO_DATASET_METRICS, *NO_COLUMN_METRICS;

static int derive_ready(void) {
    if (h_dumps != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "configure_derive(...) was not called");
    return -1;
}

/* ---- reading the event: derive.py's _dict, _str, _count, _number, _text, _time_ms ---- */

static PyObject *lookup(PyObject *obj, PyObject *key) { /* obj.get(key) for a dict, borrowed */
    return PyDict_GetItemWithError(obj, key);
}

static PyObject *get_dict(PyObject *obj, PyObject *key) {
    if (!PyDict_CheckExact(obj)) return NO_VALUE;
    PyObject *value = lookup(obj, key);
    return value != NULL && PyDict_CheckExact(value) ? value : NO_VALUE;
}

static PyObject *get_str(PyObject *obj, PyObject *key) {
    PyObject *value = lookup(obj, key);
    return value != NULL && PyUnicode_CheckExact(value) ? value : S_EMPTY;
}

static int filled(PyObject *obj) { /* truthiness of a dict or str we got from get_* */
    return PyDict_Check(obj) ? PyDict_GET_SIZE(obj) > 0 : PyUnicode_GET_LENGTH(obj) > 0;
}

static PyObject *get_count(PyObject *obj, PyObject *first, PyObject *second) {
    PyObject *keys[2] = {first, second};
    for (int i = 0; i < 2 && keys[i] != NULL; i++) {
        PyObject *value = lookup(obj, keys[i]);
        if (value == NULL || !PyLong_CheckExact(value)) continue;
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) return NULL;
        if (overflow == 0 && number >= 0) return Py_NewRef(value);
    }
    Py_RETURN_NONE;
}

static PyObject *get_number(PyObject *obj, PyObject *key) {
    PyObject *value = lookup(obj, key);
    if (value != NULL && PyFloat_CheckExact(value)) return Py_NewRef(value);
    if (value != NULL && PyLong_CheckExact(value)) {
        double number = PyLong_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred()) return NULL;
        return PyFloat_FromDouble(number);
    }
    Py_RETURN_NONE;
}

static PyObject *get_text(PyObject *obj, PyObject *key) {
    PyObject *value = lookup(obj, key);
    if (value == NULL || value == Py_None || PyDict_CheckExact(value) || PyList_CheckExact(value))
        return Py_NewRef(S_EMPTY);
    if (PyBool_Check(value)) return Py_NewRef(value == Py_True ? S_TRUE : S_FALSE);
    return PyObject_Str(value);
}

static PyObject *time_ms(PyObject *value) { /* NULL value: absent */
    if (value == NULL || !PyUnicode_Check(value)) Py_RETURN_NONE;
    return PyObject_CallOneArg(h_time_ms, value);
}

static PyObject *dumps_of(PyObject *facets) { /* orjson.dumps(facets) if facets else b"" */
    if (PyDict_GET_SIZE(facets) == 0) return Py_NewRef(B_EMPTY);
    return PyObject_CallOneArg(h_dumps, facets);
}

static PyObject *lowered(PyObject *text) { return PyObject_CallMethodNoArgs(text, S_lower); }

static int equals(PyObject *text, PyObject *constant) {
    return PyUnicode_Compare(text, constant) == 0;
}

/* ---- building records ---- */

/* A dict of (key, value) pairs, ended by a NULL key: DICT(k1, v1, k2, v2, ...). Values are
 * new references and all consumed; a NULL value means its error is set, and then no dict is
 * built. */
static PyObject *dict_of(PyObject *first_key, ...) {
    va_list args;
    /* Sized for its items at once: grown one item at a time, a 10-field record was
     * allocated three times over (perf: resizing and freeing key tables). */
    Py_ssize_t count = 0;
    va_start(args, first_key);
    for (PyObject *key = first_key; key != NULL; key = va_arg(args, PyObject *)) {
        (void)va_arg(args, PyObject *);
        count++;
    }
    va_end(args);
    va_start(args, first_key);
    PyObject *dict = _PyDict_NewPresized(count);
    int failed = dict == NULL;
    for (PyObject *key = first_key; key != NULL; key = va_arg(args, PyObject *)) {
        PyObject *value = va_arg(args, PyObject *);
        if (value == NULL) {
            failed = 1;
            continue;
        }
        if (!failed && PyDict_SetItem(dict, key, value) < 0) failed = 1;
        Py_DECREF(value);
    }
    va_end(args);
    if (failed) {
        Py_XDECREF(dict);
        return NULL;
    }
    return dict;
}

#define DICT(...) dict_of(__VA_ARGS__, NULL)

static PyObject *list_of_one(PyObject *item) { /* [item] */
    PyObject *list = PyList_New(1);
    if (list != NULL) PyList_SET_ITEM(list, 0, Py_NewRef(item));
    return list;
}

#define N(x) Py_NewRef(x)

/* The "nothing known yet" value of a latest-value column, {"time": 0, part: ""}: one
 * shared dict per part name. Most of a dataset's and a job's columns are that in most
 * events (no documentation, ownership, ...); built per row, they were ~20 dicts per
 * benchmark event, and `combine` passes an identical object over at once. No code changes
 * a record's nested dicts in place (combine replaces them). */
#define EMPTY_PARTS 8
static PyObject *empty_part_names[EMPTY_PARTS];
static PyObject *empty_part_values[EMPTY_PARTS];

static PyObject *empty_latest(PyObject *part) {
    for (int i = 0; i < EMPTY_PARTS; i++) {
        if (empty_part_names[i] == part) return Py_NewRef(empty_part_values[i]);
        if (empty_part_names[i] == NULL) {
            PyObject *value = DICT(S_time, N(ZERO), part, N(S_EMPTY));
            if (value == NULL) return NULL;
            empty_part_names[i] = Py_NewRef(part);
            empty_part_values[i] = value;
            return Py_NewRef(value);
        }
    }
    return DICT(S_time, N(ZERO), part, N(S_EMPTY)); /* more part names than slots */
}

/* {"time": 0, part: ""} or {"time": t, part: value}: a "latest value" column */
static PyObject *latest(PyObject *time, PyObject *part, PyObject *value) {
    if (value == Py_None) return empty_latest(part);
    return DICT(S_time, N(time), part, N(value));
}

/* record[column] = latest(...) for each (column, part, value) of `parts` (the kept parts
 * of a dataset's or a job's facets, from derive.py's cached `_dataset_facts` and
 * `_job_parts`). */
static int set_parts(PyObject *record, PyObject *parts, PyObject *time) {
    PyObject *items = PySequence_Fast(parts, "facet parts must be a sequence");
    if (items == NULL) return -1;
    int status = 0;
    for (Py_ssize_t i = 0; status == 0 && i < PySequence_Fast_GET_SIZE(items); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(items, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_TypeError, "a facet part must be (column, part, value)");
            status = -1;
            break;
        }
        PyObject *value = latest(time, PyTuple_GET_ITEM(item, 1), PyTuple_GET_ITEM(item, 2));
        status = value == NULL ? -1 : PyDict_SetItem(record, PyTuple_GET_ITEM(item, 0), value);
        Py_XDECREF(value);
    }
    Py_DECREF(items);
    return status;
}

typedef struct {
    PyObject *out, *event_id, *time, *custom;
    int has_custom, aborted;
    Py_ssize_t max_facet_bytes;
    PyObject *limit; /* max_facet_bytes as an int, for the callbacks */
    PyObject *job_namespace, *job_name, *run_id;
} Ctx;

static PyObject *rows_of(Ctx *ctx, PyObject *kind) { /* out.setdefault(kind, []), borrowed */
    PyObject *rows = PyDict_GetItemWithError(ctx->out, kind);
    if (rows != NULL || PyErr_Occurred()) return rows;
    rows = PyList_New(0);
    if (rows == NULL) return NULL;
    int status = PyDict_SetItem(ctx->out, kind, rows);
    Py_DECREF(rows);
    return status < 0 ? NULL : rows;
}

static int add(Ctx *ctx, PyObject *kind, PyObject *record) { /* consumes record */
    if (record == NULL) return -1;
    PyObject *rows = rows_of(ctx, kind);
    int status = -1;
    if (rows != NULL && PyList_CheckExact(rows)) {
        status = PyList_Append(rows, record);
    } else if (rows != NULL) {
        PyObject *done = PyObject_CallMethodOneArg(rows, S_append, record);
        status = done == NULL ? -1 : 0;
        Py_XDECREF(done);
    }
    Py_DECREF(record);
    return status;
}

/* rows_of(kind).extend(items) */
static int extend(Ctx *ctx, PyObject *kind, PyObject *items) {
    PyObject *rows = rows_of(ctx, kind);
    if (rows == NULL) return -1;
    if (PyList_CheckExact(rows) && PyList_CheckExact(items)) {
        Py_ssize_t end = PyList_GET_SIZE(rows);
        return PyList_SetSlice(rows, end, end, items);
    }
    PyObject *done = PyObject_CallMethodOneArg(rows, S_extend, items);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* The JSON of a facets object kept inline (a run's facets, statistics), with facets over
 * the limit summarised (derive.py's `_summarised`): sets *json and *summarised. */
static int inline_facets(Ctx *ctx, PyObject *facets, PyObject **json, PyObject **summarised) {
    *json = PyObject_CallOneArg(h_dumps, facets);
    *summarised = NULL;
    if (*json == NULL) return -1;
    if (!PyBytes_Check(*json)) {
        PyErr_SetString(PyExc_TypeError, "the JSON encoder did not return bytes");
        return -1;
    }
    if (PyBytes_GET_SIZE(*json) <= ctx->max_facet_bytes) {
        *summarised = N(EMPTY_LIST);
        return 0;
    }
    PyObject *pair = PyObject_CallFunctionObjArgs(h_summarised, facets, ctx->limit, NULL);
    if (pair == NULL) return -1;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "_summarised must return (json, keys)");
        return -1;
    }
    Py_SETREF(*json, N(PyTuple_GET_ITEM(pair, 0)));
    *summarised = N(PyTuple_GET_ITEM(pair, 1));
    Py_DECREF(pair);
    return 0;
}

/* _Event.facets: the records of the facets object at JSON path (a, [b,] group): its
 * `facets` row and, for a dataset's or a job's facets (`whole` given), their
 * `facet_values` (derive.py's cached `_facet_values`) and, for a dataset's own facets,
 * one `dataset_facets` row per facet. */
static int add_facets(Ctx *ctx, PyObject *facets, PyObject *a, PyObject *b, PyObject *group,
                      PyObject *kind, PyObject *namespace, PyObject *name, PyObject *whole) {
    if (!PyDict_CheckExact(facets) || PyDict_GET_SIZE(facets) == 0) return 0;
    PyObject *found = NULL, *custom = NULL, *names = NULL, *ids = NULL, *jsons = NULL;
    PyObject *values = NULL, *json = NULL, *summarised = NULL;
    if (whole != NULL && PyBytes_GET_SIZE(whole) > 0) { /* by value id */
        found = PyObject_CallFunctionObjArgs(h_facet_values, facets, whole, ctx->limit, NULL);
        if (found == NULL) return -1;
        if (!PyTuple_Check(found) || PyTuple_GET_SIZE(found) != 5 ||
            !PyList_CheckExact(PyTuple_GET_ITEM(found, 0)) ||
            !PyList_CheckExact(PyTuple_GET_ITEM(found, 2)) ||
            !PyList_CheckExact(PyTuple_GET_ITEM(found, 3))) {
            PyErr_SetString(PyExc_TypeError,
                            "_facet_values must return (names, ids, jsons, values, summarised)");
            goto fail;
        }
        names = N(PyTuple_GET_ITEM(found, 0));
        ids = N(PyTuple_GET_ITEM(found, 1));
        jsons = PyTuple_GET_ITEM(found, 2);
        values = PyTuple_GET_ITEM(found, 3);
        summarised = N(PyTuple_GET_ITEM(found, 4));
        json = N(B_EMPTY);
    } else { /* kept inline */
        if (inline_facets(ctx, facets, &json, &summarised) < 0) goto fail;
        names = N(EMPTY_LIST);
        ids = N(EMPTY_LIST);
    }
    Py_ssize_t pos = 0;
    PyObject *key, *body;
    while (PyDict_Next(facets, &pos, &key, &body)) {
        PyObject *url = PyDict_CheckExact(body) ? lookup(body, S__schemaURL) : NULL;
        if (url == NULL && PyErr_Occurred()) goto fail;
        int is_custom = url == NULL || !PyUnicode_CheckExact(url);
        if (!is_custom) {
            int spec = PyUnicode_Tailmatch(url, S_SPEC_PREFIX, 0, PY_SSIZE_T_MAX, -1);
            if (spec < 0) goto fail;
            is_custom = !spec;
        }
        if (!is_custom && ctx->has_custom) {
            PyObject *where = b == NULL ? PyTuple_Pack(3, a, group, key)
                                        : PyTuple_Pack(4, a, b, group, key);
            PyObject *path = where == NULL ? NULL : PyObject_CallOneArg(h_json_path, where);
            Py_XDECREF(where);
            if (path == NULL) goto fail;
            is_custom = PySequence_Contains(ctx->custom, path);
            Py_DECREF(path);
            if (is_custom < 0) goto fail;
        }
        if (is_custom) {
            if (custom == NULL && (custom = PyList_New(0)) == NULL) goto fail;
            if (PyList_Append(custom, key) < 0) goto fail;
        }
    }
    if (custom == NULL) custom = N(EMPTY_LIST);
    int status = add(ctx, S_facets,
                     DICT(S_event_id, N(ctx->event_id), S_event_time, N(ctx->time), S_run_id,
                          N(ctx->run_id), S_entity_kind, N(kind), S_entity_namespace,
                          N(namespace), S_entity_name, N(name), S_facet_group, N(group),
                          S_facet_names, N(names), S_facet_ids, ids, S_facets_json, json,
                          S_custom, custom, S_summarised, summarised));
    ids = json = custom = summarised = NULL;
    if (status < 0) goto fail;
    if (values == NULL) { /* a run's facets or statistics: kept inline */
        Py_DECREF(names);
        return 0;
    }
    if (extend(ctx, S_facet_values, values) < 0) goto fail;
    if (equals(group, S_facets) &&
        (equals(kind, S_dataset) || equals(kind, S_input) || equals(kind, S_output))) {
        Py_ssize_t count = PyList_GET_SIZE(names);
        if (PyList_GET_SIZE(jsons) != count) {
            PyErr_SetString(PyExc_ValueError, "_facet_values: as many JSON values as names");
            goto fail;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *latest =
                DICT(S_time, N(ctx->time), S_event_id, N(ctx->event_id), S_json,
                     N(PyList_GET_ITEM(jsons, i)));
            if (add(ctx, S_dataset_facets,
                    DICT(S_namespace, N(namespace), S_name, N(name), S_facet,
                         N(PyList_GET_ITEM(names, i)), S_latest, latest, S_last_seen,
                         N(ctx->time))) < 0)
                goto fail;
        }
    }
    Py_DECREF(names);
    Py_DECREF(found);
    return 0;
fail:
    Py_XDECREF(names);
    Py_XDECREF(ids);
    Py_XDECREF(json);
    Py_XDECREF(summarised);
    Py_XDECREF(custom);
    Py_XDECREF(found);
    return -1;
}

/* ---- quality: derive.py's _quality, _assertion, _metrics ---- */

static PyObject *assertion_record(Ctx *ctx, PyObject *namespace, PyObject *name, PyObject *key,
                                  PyObject *source, PyObject *item, PyObject **status_out) {
    *status_out = NULL;
    if (!PyDict_CheckExact(item)) Py_RETURN_NONE;
    PyObject *assertion = get_str(item, S_assertion);
    if (!filled(assertion)) assertion = get_str(item, S_expectationType);
    PyObject *success = lookup(item, S_success);
    PyObject *said = lowered(get_str(item, S_status));
    if (said == NULL) return NULL;
    int said_pass = equals(said, S_pass), said_fail = equals(said, S_fail);
    int said_skip = equals(said, S_skip), said_skipped = equals(said, S_skipped);
    Py_DECREF(said);
    int is_bool = success != NULL && PyBool_Check(success);
    if (!filled(assertion) || (!is_bool && !(said_pass || said_fail || said_skip)))
        Py_RETURN_NONE;
    PyObject *status;
    if (ctx->aborted || said_skip || said_skipped)
        status = S_skipped;
    else if (said_pass || said_fail)
        status = said_pass ? S_pass : S_fail;
    else
        status = success == Py_True ? S_pass : S_fail;
    PyObject *column = get_str(item, S_column);
    if (!filled(column)) column = get_str(item, S_columnId);
    PyObject *severity_text = get_text(item, S_severity);
    PyObject *severity = severity_text == NULL ? NULL : lowered(severity_text);
    Py_XDECREF(severity_text);
    PyObject *expected = severity == NULL ? NULL : get_text(item, S_expected);
    PyObject *actual = expected == NULL ? NULL : get_text(item, S_actual);
    PyObject *description = actual == NULL ? NULL : get_text(item, S_description);
    PyObject *content = description == NULL ? NULL : get_text(item, S_content);
    if (content == NULL) {
        Py_XDECREF(severity);
        Py_XDECREF(expected);
        Py_XDECREF(actual);
        Py_XDECREF(description);
        return NULL;
    }
    PyObject *result =
        DICT(S_time, N(ctx->time), S_event_id, N(ctx->event_id), S_status, N(status),
             S_severity, severity, S_expected, expected, S_actual, actual, S_description,
             description, S_content, content);
    *status_out = status;
    return DICT(S_namespace, N(namespace), S_name, N(name), S_run_id, N(ctx->run_id),
                S_assertion, N(assertion), S_column_name, N(column), S_check_name,
                N(get_str(item, S_name)), S_dataset_key, N(key), S_job_namespace,
                N(ctx->job_namespace), S_job_name, N(ctx->job_name), S_source, N(source),
                S_first_seen, N(ctx->time), S_last_seen, N(ctx->time), S_result, result);
}

static PyObject *column_name_first(PyObject *column_metrics) {
    /* [(name, record), ...] sorted by name: sorted(columns, key=_column_name); the names are
     * a dict's keys, so they differ and the records are never compared */
    if (PyList_Sort(column_metrics) < 0) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(column_metrics);
    PyObject *out = PyList_New(count);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        PyList_SET_ITEM(out, i, N(PyTuple_GET_ITEM(PyList_GET_ITEM(column_metrics, i), 1)));
    return out;
}

static PyObject *pick(PyObject *first, PyObject *second) { /* consumes both */
    if (first == NULL || second == NULL) {
        Py_XDECREF(first);
        Py_XDECREF(second);
        return NULL;
    }
    if (first != Py_None) {
        Py_DECREF(second);
        return first;
    }
    Py_DECREF(first);
    return second;
}

static PyObject *column_record(PyObject *column, PyObject *values) {
    /* in derive.py's order, so that the same value raises first */
    PyObject *null_count = get_count(values, S_nullCount, NULL);
    PyObject *distinct_count = null_count == NULL ? NULL : get_count(values, S_distinctCount, NULL);
    PyObject *sum = distinct_count == NULL ? NULL : get_number(values, S_sum);
    PyObject *count = sum == NULL ? NULL : get_number(values, S_count);
    PyObject *min = count == NULL ? NULL : get_number(values, S_min);
    PyObject *max = min == NULL ? NULL : get_number(values, S_max);
    PyObject *quantiles_json = NULL;
    if (max != NULL) {
        PyObject *quantiles = lookup(values, S_quantiles);
        quantiles_json = quantiles != NULL && PyDict_CheckExact(quantiles)
                             ? PyObject_CallOneArg(h_quantiles_json, quantiles)
                             : N(S_EMPTY);
    }
    if (quantiles_json == NULL) {
        Py_XDECREF(null_count);
        Py_XDECREF(distinct_count);
        Py_XDECREF(sum);
        Py_XDECREF(count);
        Py_XDECREF(min);
        Py_XDECREF(max);
        return NULL;
    }
    return DICT(S_name, N(column), S_null_count, null_count, S_distinct_count, distinct_count,
                S_sum, sum, S_count, count, S_min, min, S_max, max, S_quantiles, quantiles_json);
}

static int add_metrics(Ctx *ctx, PyObject *namespace, PyObject *name, PyObject *key,
                       PyObject *direction, PyObject *stats, PyObject *facets) {
    PyObject *quality = get_dict(stats, S_dataQualityMetrics);
    if (!filled(quality)) quality = get_dict(stats, S_dataQuality);
    if (!filled(quality)) quality = get_dict(facets, S_dataQualityMetrics);
    if (!filled(quality)) quality = get_dict(facets, S_dataQuality);
    PyObject *counts = NO_VALUE; /* direction + "Statistics"; directions: "", input, output */
    if (equals(direction, S_input)) counts = get_dict(stats, S_inputStatistics);
    else if (equals(direction, S_output)) counts = get_dict(stats, S_outputStatistics);
    if (!filled(quality) && !filled(counts)) return 0;
    PyObject *row_count = NULL, *byte_count = NULL, *file_count = NULL, *last_updated = NULL;
    PyObject *columns = NULL, *metrics = NULL;
    row_count = pick(get_count(quality, S_rowCount, NULL), get_count(counts, S_rowCount, NULL));
    if (row_count == NULL) goto fail;
    byte_count = pick(get_count(quality, S_bytes, NULL), get_count(counts, S_size, S_bytes));
    if (byte_count == NULL) goto fail;
    file_count = pick(get_count(quality, S_fileCount, NULL), get_count(counts, S_fileCount, NULL));
    if (file_count == NULL) goto fail;
    last_updated = filled(quality) ? time_ms(lookup(quality, S_lastUpdated)) : N(Py_None);
    if (last_updated == NULL) goto fail;
    columns = PyList_New(0);
    if (columns == NULL) goto fail;
    PyObject *found = filled(quality) ? lookup(quality, S_columnMetrics) : NULL;
    if (found != NULL && PyDict_CheckExact(found)) {
        Py_ssize_t pos = 0;
        PyObject *column, *values;
        while (PyDict_Next(found, &pos, &column, &values)) {
            if (!PyDict_CheckExact(values)) continue;
            PyObject *record = column_record(column, values);
            PyObject *pair = record == NULL ? NULL : PyTuple_Pack(2, column, record);
            Py_XDECREF(record);
            if (pair == NULL) goto fail;
            int status = PyList_Append(columns, pair);
            Py_DECREF(pair);
            if (status < 0) goto fail;
        }
    }
    int reported = row_count != Py_None || byte_count != Py_None || file_count != Py_None ||
                   last_updated != Py_None;
    int has_columns = PyList_GET_SIZE(columns) > 0;
    if (!reported && !has_columns) {
        Py_DECREF(row_count);
        Py_DECREF(byte_count);
        Py_DECREF(file_count);
        Py_DECREF(last_updated);
        Py_DECREF(columns);
        return 0;
    }
    PyObject *dataset_part =
        reported ? DICT(S_time, N(ctx->time), S_event_id, N(ctx->event_id), S_row_count,
                        row_count, S_byte_count, byte_count, S_file_count, file_count,
                        S_last_updated, last_updated)
                 : N(NO_DATASET_METRICS);
    if (!reported) {
        Py_DECREF(row_count);
        Py_DECREF(byte_count);
        Py_DECREF(file_count);
        Py_DECREF(last_updated);
    }
    row_count = byte_count = file_count = last_updated = NULL;
    if (dataset_part == NULL) goto fail;
    PyObject *columns_part;
    if (has_columns) {
        metrics = column_name_first(columns);
        columns_part = metrics == NULL ? NULL
                                       : DICT(S_time, N(ctx->time), S_event_id,
                                              N(ctx->event_id), S_metrics, metrics);
        metrics = NULL;
    } else {
        columns_part = N(NO_COLUMN_METRICS);
    }
    Py_CLEAR(columns);
    if (columns_part == NULL) {
        Py_DECREF(dataset_part);
        return -1;
    }
    return add(ctx, S_dataset_metrics,
               DICT(S_namespace, N(namespace), S_name, N(name), S_run_id, N(ctx->run_id),
                    S_direction, N(direction), S_dataset_key, N(key), S_job_namespace,
                    N(ctx->job_namespace), S_job_name, N(ctx->job_name), S_first_seen,
                    N(ctx->time), S_last_seen, N(ctx->time), S_dataset, dataset_part,
                    S_columns, columns_part));
fail:
    Py_XDECREF(row_count);
    Py_XDECREF(byte_count);
    Py_XDECREF(file_count);
    Py_XDECREF(last_updated);
    Py_XDECREF(columns);
    Py_XDECREF(metrics);
    return -1;
}

static int add_quality(Ctx *ctx, PyObject *dataset, PyObject *key, PyObject *direction,
                       PyObject *stats) {
    PyObject *facets = get_dict(dataset, S_facets);
    if (!filled(stats) && !filled(facets)) return 0;
    PyObject *namespace = get_str(dataset, S_namespace), *name = get_str(dataset, S_name);
    PyObject *seen = NULL;
    PyObject *groups[2] = {stats, facets};
    PyObject *sources[2] = {S_dataQualityAssertions, S_greatExpectations_assertions};
    for (int g = 0; g < 2; g++) {
        for (int s = 0; s < 2; s++) {
            PyObject *items = lookup(get_dict(groups[g], sources[s]), S_assertions);
            if (items == NULL || !PyList_CheckExact(items)) continue;
            Py_INCREF(items);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
                PyObject *status;
                PyObject *record = assertion_record(ctx, namespace, name, key, sources[s],
                                                    PyList_GET_ITEM(items, i), &status);
                if (record == NULL) goto fail_items;
                if (record == Py_None) {
                    Py_DECREF(record);
                    continue;
                }
                if (seen == NULL && (seen = PySet_New(NULL)) == NULL) {
                    Py_DECREF(record);
                    goto fail_items;
                }
                PyObject *identity = PyTuple_Pack(
                    4, PyDict_GetItem(record, S_assertion), PyDict_GetItem(record, S_column_name),
                    PyDict_GetItem(record, S_check_name), status);
                int known = identity == NULL ? -1 : PySet_Contains(seen, identity);
                if (known == 0) known = PySet_Add(seen, identity) < 0 ? -1 : 0;
                Py_XDECREF(identity);
                if (known < 0) {
                    Py_DECREF(record);
                    goto fail_items;
                }
                if (known) {
                    Py_DECREF(record);
                } else if (add(ctx, S_quality_assertions, record) < 0) {
                    goto fail_items;
                }
            }
            Py_DECREF(items);
            continue;
        fail_items:
            Py_DECREF(items);
            Py_XDECREF(seen);
            return -1;
        }
    }
    Py_XDECREF(seen);
    return add_metrics(ctx, namespace, name, key, direction, stats, facets);
}

/* ---- datasets, jobs, runs: derive.py's _dataset, _io, _job, _run_event ---- */

/* _dataset: sets *key, *version_id, *lineage_id (new references) */
static int add_dataset(Ctx *ctx, PyObject *dataset, PyObject *a, PyObject *b, PyObject *kind,
                       int output, PyObject **key_out, PyObject **version_id_out,
                       PyObject **lineage_id_out) {
    PyObject *namespace = get_str(dataset, S_namespace), *name = get_str(dataset, S_name);
    PyObject *facets = get_dict(dataset, S_facets);
    PyObject *facets_json = dumps_of(facets);
    if (facets_json == NULL) return -1;
    PyObject *args[5] = {namespace, name, facets, facets_json, output ? Py_True : Py_False};
    PyObject *facts = PyObject_Vectorcall(h_dataset_facts, args, 5, NULL);
    PyObject *version_id = NULL, *lineage_id = NULL, *record = NULL;
    if (facts == NULL) goto fail;
    if (!PyTuple_Check(facts) || PyTuple_GET_SIZE(facts) != 7) {
        PyErr_SetString(PyExc_TypeError, "_dataset_facts must return a 7-tuple");
        goto fail;
    }
    PyObject *key = PyTuple_GET_ITEM(facts, 0), *version = PyTuple_GET_ITEM(facts, 3);
    PyObject *edges = PyTuple_GET_ITEM(facts, 4), *parts = PyTuple_GET_ITEM(facts, 5);
    PyObject *aliases = PyTuple_GET_ITEM(facts, 6);
    if (version != Py_None) {
        version_id = PyObject_GetItem(version, S_version_id);
        if (version_id == NULL || add(ctx, S_dataset_versions, N(version)) < 0) goto fail;
    } else {
        version_id = N(S_EMPTY);
    }
    int has_edges = PyObject_IsTrue(edges);
    if (has_edges < 0) goto fail;
    if (has_edges) {
        PyObject *first = PySequence_GetItem(edges, 0);
        lineage_id = first == NULL ? NULL : PyObject_GetItem(first, S_column_lineage_id);
        Py_XDECREF(first);
        if (lineage_id == NULL || extend(ctx, S_column_edges, edges) < 0) goto fail;
    } else {
        lineage_id = N(S_EMPTY);
    }
    int versioned = PyObject_IsTrue(version_id);
    if (versioned < 0) goto fail;
    record = DICT(S_namespace, N(namespace), S_name, N(name), S_dataset_key, N(key),
                  S_canonical_namespace, N(PyTuple_GET_ITEM(facts, 1)), S_canonical_name,
                  N(PyTuple_GET_ITEM(facts, 2)), S_first_seen, N(ctx->time), S_last_seen,
                  N(ctx->time), S_version,
                  DICT(S_time, N(versioned ? ctx->time : ZERO), S_id, N(version_id)));
    if (record == NULL || set_parts(record, parts, ctx->time) < 0) goto fail;
    int status = add(ctx, S_datasets, record);
    record = NULL;
    if (status < 0) goto fail;
    PyObject *alias_list = PySequence_Fast(aliases, "dataset aliases must be a sequence");
    if (alias_list == NULL) goto fail;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(alias_list); i++) {
        PyObject *alias = PySequence_Fast_GET_ITEM(alias_list, i);
        if (!PyTuple_Check(alias) || PyTuple_GET_SIZE(alias) != 4) {
            PyErr_SetString(PyExc_TypeError, "an alias must be (namespace, name, type, key)");
            Py_DECREF(alias_list);
            goto fail;
        }
        PyObject *row = DICT(
            S_namespace, N(namespace), S_name, N(name), S_alias_namespace,
            N(PyTuple_GET_ITEM(alias, 0)), S_alias_name, N(PyTuple_GET_ITEM(alias, 1)),
            S_alias_type, N(PyTuple_GET_ITEM(alias, 2)), S_dataset_key, N(key), S_alias_key,
            N(PyTuple_GET_ITEM(alias, 3)), S_first_seen, N(ctx->time), S_last_seen,
            N(ctx->time));
        if (add(ctx, S_dataset_aliases, row) < 0) {
            Py_DECREF(alias_list);
            goto fail;
        }
    }
    Py_DECREF(alias_list);
    if (add_facets(ctx, facets, a, b, S_facets, kind, namespace, name, facets_json) < 0) goto fail;
    *key_out = N(key);
    *version_id_out = version_id;
    *lineage_id_out = lineage_id;
    Py_DECREF(facts);
    Py_DECREF(facets_json);
    return 0;
fail:
    Py_XDECREF(record);
    Py_XDECREF(version_id);
    Py_XDECREF(lineage_id);
    Py_XDECREF(facts);
    Py_DECREF(facets_json);
    return -1;
}

static int add_io(Ctx *ctx, PyObject *event, PyObject *run_id) {
    PyObject *sides[2] = {S_inputs, S_outputs};
    PyObject *directions[2] = {S_input, S_output};
    PyObject *stats_groups[2] = {S_inputFacets, S_outputFacets};
    PyObject *stats_keys[2] = {S_inputStatistics, S_outputStatistics};
    for (int side = 0; side < 2; side++) {
        PyObject *datasets = lookup(event, sides[side]);
        if (datasets == NULL || !PyList_CheckExact(datasets)) continue;
        Py_INCREF(datasets);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(datasets); i++) {
            PyObject *dataset = PyList_GET_ITEM(datasets, i);
            if (!PyDict_CheckExact(dataset)) continue;
            Py_INCREF(dataset);
            PyObject *index = PyLong_FromSsize_t(i);
            PyObject *key = NULL, *version_id = NULL, *lineage_id = NULL;
            int status = index == NULL ? -1
                                       : add_dataset(ctx, dataset, sides[side], index,
                                                     directions[side], side == 1, &key,
                                                     &version_id, &lineage_id);
            PyObject *namespace = get_str(dataset, S_namespace), *name = get_str(dataset, S_name);
            PyObject *stats = get_dict(dataset, stats_groups[side]);
            if (status == 0)
                status = add_facets(ctx, stats, sides[side], index, stats_groups[side],
                                    directions[side], namespace, name, NULL);
            if (status == 0) status = add_quality(ctx, dataset, key, directions[side], stats);
            PyObject *row_count = NULL, *byte_count = NULL, *file_count = NULL;
            if (status == 0) {
                PyObject *counts = get_dict(stats, stats_keys[side]);
                if (!filled(counts)) counts = get_dict(stats, S_dataQualityMetrics);
                if (!filled(counts))
                    counts = get_dict(get_dict(dataset, S_facets), S_dataQualityMetrics);
                row_count = get_count(counts, S_rowCount, NULL);
                byte_count = row_count == NULL ? NULL : get_count(counts, S_size, S_bytes);
                file_count = byte_count == NULL ? NULL : get_count(counts, S_fileCount, NULL);
                if (file_count == NULL) {
                    Py_XDECREF(row_count);
                    Py_XDECREF(byte_count);
                    status = -1;
                }
            }
            if (status == 0)
                status = add(
                    ctx, S_io_edges,
                    DICT(S_job_namespace, N(ctx->job_namespace), S_job_name,
                         N(ctx->job_name), S_run_id, N(run_id), S_direction,
                         N(directions[side]), S_namespace, N(namespace), S_name, N(name),
                         S_dataset_key, N(key), S_version_id, N(version_id),
                         S_column_lineage_id, N(lineage_id), S_first_seen, N(ctx->time),
                         S_last_seen, N(ctx->time), S_row_count, row_count, S_byte_count,
                         byte_count, S_file_count, file_count));
            Py_XDECREF(index);
            Py_XDECREF(key);
            Py_XDECREF(version_id);
            Py_XDECREF(lineage_id);
            Py_DECREF(dataset);
            if (status < 0) {
                Py_DECREF(datasets);
                return -1;
            }
        }
        Py_DECREF(datasets);
    }
    return 0;
}

static int add_job(Ctx *ctx, PyObject *event, PyObject *parent_job, PyObject *job_type) {
    PyObject *facets = get_dict(get_dict(event, S_job), S_facets);
    PyObject *facets_json = dumps_of(facets);
    if (facets_json == NULL) return -1;
    if (!filled(job_type)) job_type = get_dict(facets, S_jobType);
    PyObject *parts = NULL;
    PyObject *record = DICT(
        S_namespace, N(ctx->job_namespace), S_name, N(ctx->job_name), S_first_seen, N(ctx->time),
        S_last_seen, N(ctx->time), S_latest_run,
        DICT(S_time, N(filled(ctx->run_id) ? ctx->time : ZERO), S_run_id, N(ctx->run_id)),
        S_integration, N(get_str(job_type, S_integration)), S_processing_type,
        N(get_str(job_type, S_processingType)), S_job_type, N(get_str(job_type, S_jobType)),
        S_parent_job_namespace, N(get_str(parent_job, S_namespace)), S_parent_job_name,
        N(get_str(parent_job, S_name)));
    if (record == NULL) goto fail;
    PyObject *args[2] = {facets, facets_json};
    parts = PyObject_Vectorcall(h_job_parts, args, 2, NULL);
    if (parts == NULL || set_parts(record, parts, ctx->time) < 0) goto fail;
    Py_CLEAR(parts);
    int status = add(ctx, S_jobs, record);
    record = NULL;
    if (status < 0) goto fail;
    status = add_facets(ctx, facets, S_job, NULL, S_facets, S_job, ctx->job_namespace,
                        ctx->job_name, facets_json);
    Py_DECREF(facets_json);
    return status;
fail:
    Py_XDECREF(record);
    Py_XDECREF(parts);
    Py_DECREF(facets_json);
    return -1;
}

static int add_run(Ctx *ctx, PyObject *event) {
    PyObject *facets = get_dict(get_dict(event, S_run), S_facets);
    PyObject *state = get_str(event, S_eventType);
    if (!filled(state)) state = S_OTHER;
    PyObject *parent = get_dict(facets, S_parent);
    PyObject *parent_run = get_str(get_dict(parent, S_run), S_runId);
    PyObject *parent_job = get_dict(parent, S_job);
    PyObject *root = get_dict(parent, S_root);
    PyObject *root_run, *root_ns, *root_name;
    if (filled(root)) {
        PyObject *root_job = get_dict(root, S_job);
        root_run = get_str(get_dict(root, S_run), S_runId);
        root_ns = get_str(root_job, S_namespace);
        root_name = get_str(root_job, S_name);
    } else if (filled(parent_run)) {
        root_run = parent_run;
        root_ns = get_str(parent_job, S_namespace);
        root_name = get_str(parent_job, S_name);
    } else {
        root_run = ctx->run_id;
        root_ns = ctx->job_namespace;
        root_name = ctx->job_name;
    }
    PyObject *nominal = get_dict(facets, S_nominalTime);
    PyObject *error = get_dict(facets, S_errorMessage);
    PyObject *engine = get_dict(facets, S_processing_engine);
    PyObject *job_type = get_dict(get_dict(get_dict(event, S_job), S_facets), S_jobType);
    int terminal = equals(state, S_COMPLETE) || equals(state, S_FAIL) || equals(state, S_ABORT);
    PyObject *nominal_start = filled(nominal) ? time_ms(lookup(nominal, S_nominalStartTime))
                                              : N(Py_None);
    if (nominal_start == NULL) return -1;
    PyObject *nominal_end = filled(nominal) ? time_ms(lookup(nominal, S_nominalEndTime))
                                            : N(Py_None);
    if (nominal_end == NULL) {
        Py_DECREF(nominal_start);
        return -1;
    }
    PyObject *record = DICT(
        S_run_id, N(ctx->run_id), S_job_namespace, N(ctx->job_namespace), S_job_name,
        N(ctx->job_name), S_state,
        DICT(S_terminal, N(terminal ? ONE : ZERO), S_time, N(ctx->time), S_event_id,
             N(ctx->event_id), S_name, N(state)),
        S_started_at, N(equals(state, S_START) ? ctx->time : Py_None), S_first_event_time,
        N(ctx->time), S_last_event_time, N(ctx->time), S_nominal_start_time, nominal_start,
        S_nominal_end_time, nominal_end, S_parent_run_id, N(parent_run), S_parent_job_namespace,
        N(get_str(parent_job, S_namespace)), S_parent_job_name, N(get_str(parent_job, S_name)),
        S_root_run_id, N(root_run), S_root_job_namespace, N(root_ns), S_root_job_name,
        N(root_name), S_error_message, N(get_str(error, S_message)), S_error_language,
        N(get_str(error, S_programmingLanguage)), S_error_stacktrace,
        N(get_str(error, S_stackTrace)), S_processing_engine, N(get_str(engine, S_name)),
        S_processing_engine_version, N(get_str(engine, S_version)), S_adapter_version,
        N(get_str(engine, S_openlineageAdapterVersion)), S_integration,
        N(get_str(job_type, S_integration)), S_processing_type,
        N(get_str(job_type, S_processingType)), S_job_type, N(get_str(job_type, S_jobType)),
        S_producer, N(get_str(event, S_producer)), S_event_types, list_of_one(state));
    if (add(ctx, S_runs, record) < 0) return -1;
    if (add_facets(ctx, facets, S_run, NULL, S_facets, S_run, ctx->job_namespace, ctx->job_name,
                   NULL) < 0)
        return -1;
    if (add_job(ctx, event, parent_job, job_type) < 0) return -1;
    return add_io(ctx, event, ctx->run_id);
}

/* derive(event, event_id, out, custom_facets, max_facet_bytes) -> out */
PyObject *native_derive(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *event, *event_id, *out, *custom;
    Py_ssize_t max_facet_bytes;
    if (!PyArg_ParseTuple(args, "O!OO!On:derive", &PyDict_Type, &event, &event_id, &PyDict_Type,
                          &out, &custom, &max_facet_bytes))
        return NULL;
    if (derive_ready() < 0) return NULL;
    PyObject *time = time_ms(lookup(event, S_eventTime));
    if (time == NULL) return NULL;
    if (time == Py_None) {
        Py_DECREF(time);
        return Py_NewRef(out);
    }
    Ctx ctx = {.out = out, .event_id = event_id, .time = time, .custom = custom,
               .max_facet_bytes = max_facet_bytes};
    ctx.has_custom = PyObject_IsTrue(custom);
    ctx.limit = ctx.has_custom < 0 ? NULL : PyLong_FromSsize_t(max_facet_bytes);
    if (ctx.limit == NULL) {
        Py_DECREF(time);
        return NULL;
    }
    PyObject *job = get_dict(event, S_job);
    ctx.job_namespace = get_str(job, S_namespace);
    ctx.job_name = get_str(job, S_name);
    ctx.run_id = get_str(get_dict(event, S_run), S_runId);
    PyObject *event_type = lookup(event, S_eventType);
    ctx.aborted = event_type != NULL && PyUnicode_Check(event_type) && equals(event_type, S_ABORT);
    int status = 0;
    if (PyDict_Contains(event, S_run) > 0) {
        status = add_run(&ctx, event);
    } else if (PyDict_Contains(event, S_dataset) > 0) {
        PyObject *dataset = get_dict(event, S_dataset);
        PyObject *key = NULL, *version_id = NULL, *lineage_id = NULL;
        status = add_dataset(&ctx, dataset, S_dataset, NULL, S_dataset, 0, &key, &version_id,
                             &lineage_id);
        if (status == 0) status = add_quality(&ctx, dataset, key, S_EMPTY, NO_VALUE);
        Py_XDECREF(key);
        Py_XDECREF(version_id);
        Py_XDECREF(lineage_id);
    } else if (PyDict_Contains(event, S_job) > 0) {
        status = add_job(&ctx, event, NO_VALUE, NO_VALUE);
        if (status == 0) status = add_io(&ctx, event, S_EMPTY);
    }
    Py_DECREF(ctx.limit);
    Py_DECREF(time);
    return status < 0 ? NULL : Py_NewRef(out);
}

/* configure_derive(dumps, time_ms, quantiles_json, dataset_facts, job_parts, json_path,
 *                  summarised, facet_values, spec_prefix, no_dataset_metrics,
 *                  no_column_metrics) */
PyObject *native_configure_derive(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *given[11];
    if (!PyArg_ParseTuple(args, "OOOOOOOOUO!O!:configure_derive", &given[0], &given[1],
                          &given[2], &given[3], &given[4], &given[5], &given[6], &given[7],
                          &given[8], &PyDict_Type, &given[9], &PyDict_Type, &given[10]))
        return NULL;
    PyObject **slots[11] = {&h_dumps,         &h_time_ms,         &h_quantiles_json,
                            &h_dataset_facts, &h_job_parts,       &h_json_path,
                            &h_summarised,    &h_facet_values,    &S_SPEC_PREFIX,
                            &NO_DATASET_METRICS, &NO_COLUMN_METRICS};
    for (int i = 0; i < 11; i++) Py_XSETREF(*slots[i], Py_NewRef(given[i]));
    Py_RETURN_NONE;
}

int derive_init(void) {
#define INTERN(name) \
    if ((S_##name = PyUnicode_InternFromString(#name)) == NULL) return -1;
    STRINGS(INTERN)
#undef INTERN
    if ((S_EMPTY = PyUnicode_InternFromString("")) == NULL) return -1;
    if ((S_TRUE = PyUnicode_InternFromString("true")) == NULL) return -1;
    if ((S_FALSE = PyUnicode_InternFromString("false")) == NULL) return -1;
    if ((S_lower = PyUnicode_InternFromString("lower")) == NULL) return -1;
    if ((S_append = PyUnicode_InternFromString("append")) == NULL) return -1;
    if ((S_extend = PyUnicode_InternFromString("extend")) == NULL) return -1;
    if ((B_EMPTY = PyBytes_FromStringAndSize("", 0)) == NULL) return -1;
    if ((ZERO = PyLong_FromLong(0)) == NULL) return -1;
    if ((ONE = PyLong_FromLong(1)) == NULL) return -1;
    if ((NO_VALUE = PyDict_New()) == NULL) return -1;
    if ((EMPTY_LIST = PyList_New(0)) == NULL) return -1;
    return 0;
}
