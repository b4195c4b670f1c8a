/* Keeping freed memory for reuse (`memory.keep_freed_memory`).
 *
 * A processor builds a batch's objects and frees them all, batch after batch. By default
 * both allocators underneath hand freed memory back to the system at once: Python's
 * small-object allocator unmaps each arena (1 MiB) as soon as it is empty, and glibc's
 * malloc unmaps large blocks and trims its heaps. The next batch then maps fresh pages,
 * and every fresh page costs a page fault in which the kernel zeroes it (~1.6 us here,
 * on a VM that reports freed pages to its host: BENCHMARKS.md, session 16).
 *
 * `keep_freed_memory(max_arena_bytes)` keeps up to that many bytes of empty arenas mapped
 * for the next ones, and sets glibc's thresholds so that blocks below 32 MiB come from
 * its heaps, which are not trimmed. The process's resident size then stays near its
 * peak instead of falling between batches. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define MAX_KEPT 4096

static void *kept[MAX_KEPT];
static size_t kept_count;  /* empty arenas in `kept` */
static size_t kept_limit;  /* how many may be kept */
static size_t max_bytes;   /* kept_limit, in bytes, once the arena size is known */
static size_t arena_size;  /* pymalloc asks for arenas of one size; 0 until the first */
static int installed;

static void set_limit(void) {
    size_t limit = arena_size ? max_bytes / arena_size : 0;
    kept_limit = limit < MAX_KEPT ? limit : MAX_KEPT;
    while (kept_count > kept_limit) munmap(kept[--kept_count], arena_size);
}

/* Both are called with the GIL held, as pymalloc is. */
static void *arena_alloc(void *ctx, size_t size) {
    (void)ctx;
    if (arena_size == 0) {
        arena_size = size;
        set_limit();
    }
    if (size == arena_size && kept_count > 0) return kept[--kept_count];
    void *ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return ptr == MAP_FAILED ? NULL : ptr;
}

static void arena_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    /* Arenas mapped before this allocator was installed come here too: they were mapped
     * with mmap, as ours are. */
    if (size == arena_size && kept_count < kept_limit) {
        kept[kept_count++] = ptr;
        return;
    }
    munmap(ptr, size);
}

PyObject *native_keep_freed_memory(PyObject *module, PyObject *arg) {
    (void)module;
    Py_ssize_t bytes = PyLong_AsSsize_t(arg);
    if (bytes == -1 && PyErr_Occurred()) return NULL;
    if (bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "max_arena_bytes must be 0 or more");
        return NULL;
    }
    max_bytes = (size_t)bytes;
    set_limit();
    if (!installed) {
        PyObjectArenaAllocator allocator = {NULL, arena_alloc, arena_free};
        PyObject_SetArenaAllocator(&allocator);
        installed = 1;
    }
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    mallopt(M_TOP_PAD, 64 * 1024 * 1024);
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

PyObject *native_kept_memory(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return Py_BuildValue("(nn)", (Py_ssize_t)(kept_count * arena_size), (Py_ssize_t)max_bytes);
}
