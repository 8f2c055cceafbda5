/* binding.c: CPython glue for flappy.h (and its render.h). No game logic or drawing here: argument
 * checks, the handle type, and conversion between C structs and Python objects. Keyword parsing and params() are generated
 * from FLAPPY_PARAMS, so Python can only pass what the C code defines. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "flappy.h"

/* ---- the handle: owns the C envs and a reference to each buffer they write into ---- */

typedef struct {
    PyObject_HEAD FlappyVec vec;
    PyObject* buffers[5]; /* observations, actions, rewards, terminals, truncations */
    int open;
} VecEnv;

static void VecEnv_dealloc(VecEnv* self) {
    if (self->open) flappy_vec_free(&self->vec);
    for (int k = 0; k < 5; k++) Py_XDECREF(self->buffers[k]);
    Py_TYPE(self)->tp_free((PyObject*)self);
}

static PyTypeObject VecEnvType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flappy_rl.binding.VecEnv",
    .tp_basicsize = sizeof(VecEnv),
    .tp_dealloc = (destructor)VecEnv_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Handle to a vector of C Flappy envs; made by vec_init, released by vec_close.",
};

/* obj as a handle, or NULL with TypeError if it is not one, RuntimeError if it was closed. */
static VecEnv* checked_open_handle(PyObject* obj) {
    if (!PyObject_TypeCheck(obj, &VecEnvType)) {
        PyErr_Format(PyExc_TypeError, "expected a handle from vec_init, got %s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    VecEnv* handle = (VecEnv*)obj;
    if (!handle->open) {
        PyErr_SetString(PyExc_RuntimeError, "this Flappy env is closed");
        return NULL;
    }
    return handle;
}

/* ---- argument conversion ---- */

static int parse_seed(PyObject* obj, uint64_t* seed) {
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "seed must be an int, got %s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject* index = PyNumber_Index(obj);
    if (index == NULL) return -1;
    *seed = PyLong_AsUnsignedLongLong(index);
    Py_DECREF(index);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "seed must be in [0, 2**64), got %R", obj);
        return -1;
    }
    return 0;
}

static int parse_REAL(PyObject* obj, const char* name, double* out) {
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyIndex_Check(obj) || PyNumber_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s must be a number, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyFloat_AsDouble(obj);
    return PyErr_Occurred() ? -1 : 0;
}

static int parse_INT(PyObject* obj, const char* name, int* out) {
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject* index = PyNumber_Index(obj);
    if (index == NULL) return -1;
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred()) return -1;
    /* Out of int's range: clamped, for the caller's range check (which quotes the value given). */
    if (overflow > 0 || value > INT_MAX) value = INT_MAX;
    if (overflow < 0 || value < INT_MIN) value = INT_MIN;
    *out = (int)value;
    return 0;
}

/* ValueError in flappy_resolve_params's words, quoting `given` as str() writes it: for values that
 * the range check would see changed (clamped to int, rounded to a double) from what the user gave. */
static int raise_out_of_range(PyObject* given, const char* name, double lo, double hi) {
    PyObject* text = PyObject_Str(given);
    if (text == NULL) return -1;
    const char* utf8 = PyUnicode_AsUTF8(text);
    if (utf8 != NULL)
        PyErr_Format(PyExc_ValueError, FLAPPY_RANGE_MESSAGE, name, flappy_number_text(lo).text,
                     flappy_number_text(hi).text, utf8);
    Py_DECREF(text);
    return -1;
}

/* A REAL parameter. Out of range, anything but a Python float (whose shortest text is the range
 * check's) is quoted as str() writes it, not as its double: 10**20, not 1e+20; np.float32(300.1)
 * as 300.1; Decimal("1e400") as 1E+400, not inf; an int of 400 digits, beyond a double, too. */
static int parse_param_REAL(PyObject* obj, const char* name, double lo, double hi, double* out) {
    if (parse_REAL(obj, name, out) != 0) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        return raise_out_of_range(obj, name, lo, hi);
    }
    return !PyFloat_CheckExact(obj) && !(lo <= *out && *out <= hi) ? raise_out_of_range(obj, name, lo, hi) : 0;
}

/* An INT parameter: parse_INT clamps a whole number beyond int's range to INT_MIN or INT_MAX,
 * outside every INT parameter's range; the message quotes the number given, not the clamped one. */
static int parse_param_INT(PyObject* obj, const char* name, double lo, double hi, int* out) {
    if (parse_INT(obj, name, out) != 0) return -1;
    return (*out == INT_MAX || *out == INT_MIN) && !(lo <= *out && *out <= hi) ? raise_out_of_range(obj, name, lo, hi)
                                                                                : 0;
}

/* A named choice, given as one of its names. */
static int parse_ENUM(PyObject* obj, const char* name, const char* const* choices, int count, int* out) {
    const char* text = PyUnicode_Check(obj) ? PyUnicode_AsUTF8(obj) : NULL;
    for (int k = 0; text != NULL && k < count; k++) {
        if (strcmp(text, choices[k]) == 0) {
            *out = k;
            return 0;
        }
    }
    if (text == NULL && PyErr_Occurred()) return -1;
    PyObject* valid = PyUnicode_FromString("");
    for (int k = 0; valid != NULL && k < count; k++) Py_SETREF(valid, PyUnicode_FromFormat("%U%s'%s'", valid, k ? ", " : "", choices[k]));
    if (valid != NULL) {
        PyErr_Format(PyUnicode_Check(obj) ? PyExc_ValueError : PyExc_TypeError, "%s must be one of %U, got %R", name,
                     valid, obj);
        Py_DECREF(valid);
    }
    return -1;
}

#define CHOICE_COUNT(name) (int)(sizeof(FLAPPY_CHOICES_##name) / sizeof(FLAPPY_CHOICES_##name[0]))
#define PARSE_REAL(value, pname, params) \
    parse_param_REAL(value, #pname, FLAPPY_MIN_##pname, FLAPPY_MAX_##pname, &(params)->pname)
#define PARSE_INT(value, pname, params) \
    parse_param_INT(value, #pname, FLAPPY_MIN_##pname, FLAPPY_MAX_##pname, &(params)->pname)
#define PARSE_ENUM(value, pname, params) \
    parse_ENUM(value, #pname, FLAPPY_CHOICES_##pname, CHOICE_COUNT(pname), &(params)->pname)

static const char* const PARAM_NAMES[] = {
#define PARAM_NAME(kind, name, dflt, lo, hi, doc) #name,
    FLAPPY_PARAMS(PARAM_NAME)};
#define NUM_PARAMS (sizeof(PARAM_NAMES) / sizeof(PARAM_NAMES[0]))

static void raise_unknown_param(PyObject* key) {
    PyObject* names = PyUnicode_FromString("");
    for (size_t k = 0; names != NULL && k < NUM_PARAMS; k++) {
        PyObject* joined = PyUnicode_FromFormat("%U%s%s", names, k ? ", " : "", PARAM_NAMES[k]);
        Py_SETREF(names, joined);
    }
    if (names != NULL) {
        PyErr_Format(PyExc_TypeError, "unknown parameter %R; valid parameters: %U", key, names);
        Py_DECREF(names);
    }
}

/* Defaults, overridden by kwargs; every value type- and range-checked. */
static int parse_params(PyObject* kwargs, FlappyParams* params) {
    *params = flappy_default_params();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (kwargs != NULL && PyDict_Next(kwargs, &pos, &key, &value)) {
        const char* name = PyUnicode_AsUTF8(key);
        if (name == NULL) return -1;
#define PARAM_PARSE(kind, pname, dflt, lo, hi, doc)                     \
    if (strcmp(name, #pname) == 0) {                                    \
        if (PARSE_##kind(value, pname, params) != 0) return -1;         \
        continue;                                                       \
    }
        FLAPPY_PARAMS(PARAM_PARSE)
        raise_unknown_param(key);
        return -1;
    }
    char err[256];
    if (flappy_resolve_params(params, err, sizeof(err)) != 0) {
        PyErr_SetString(PyExc_ValueError, err);
        return -1;
    }
    return 0;
}

static int check_array_dtype(PyObject* obj, const char* name, int typenum) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy array, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArray_Descr* want = PyArray_DescrFromType(typenum);
    int same_dtype = PyArray_EquivTypes(PyArray_DESCR((PyArrayObject*)obj), want);
    if (!same_dtype) {
        PyErr_Format(PyExc_TypeError, "%s must have dtype %S, got %S", name, (PyObject*)want,
                     (PyObject*)PyArray_DESCR((PyArrayObject*)obj));
        Py_DECREF(want);
        return -1;
    }
    Py_DECREF(want);
    return 0;
}

/* C-contiguous, aligned, native byte order and writeable: what C may write through a pointer. */
static int check_array_layout(PyArrayObject* arr, const char* name) {
    if (!PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISBEHAVED(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous, aligned and writeable", name);
        return -1;
    }
    return 0;
}

/* A buffer the envs write into: a numpy array of exactly this dtype and shape (ndim dims),
 * C-contiguous, aligned, native byte order and writeable. */
static int check_buffer(PyObject* obj, const char* name, int typenum, int ndim, const npy_intp* dims) {
    if (check_array_dtype(obj, name, typenum) != 0) return -1;
    PyArrayObject* arr = (PyArrayObject*)obj;
    int same_shape = PyArray_NDIM(arr) == ndim;
    for (int d = 0; same_shape && d < ndim; d++) same_shape = PyArray_DIM(arr, d) == dims[d];
    if (!same_shape) {
        PyObject* want = PyTuple_New(ndim);
        for (int d = 0; want != NULL && d < ndim; d++) PyTuple_SET_ITEM(want, d, PyLong_FromSsize_t(dims[d]));
        PyObject* shape = PyObject_GetAttrString(obj, "shape");
        PyErr_Format(PyExc_ValueError, "%s must have shape %R, got %R", name, want, shape);
        Py_XDECREF(want);
        Py_XDECREF(shape);
        return -1;
    }
    return check_array_layout(arr, name);
}

/* A frame to draw into: uint8, (height, width, 3) for RGB or (height, width) for grayscale,
 * C-contiguous, aligned and writeable. */
static int check_frame(PyObject* obj, int* width, int* height, int* channels) {
    if (check_array_dtype(obj, "frame", NPY_UINT8) != 0) return -1;
    PyArrayObject* arr = (PyArrayObject*)obj;
    int ndim = PyArray_NDIM(arr);
    if (!(ndim == 2 || (ndim == 3 && PyArray_DIM(arr, 2) == 3))) {
        PyObject* shape = PyObject_GetAttrString(obj, "shape");
        PyErr_Format(PyExc_ValueError, "frame must have shape (height, width, 3) or (height, width), got %R", shape);
        Py_XDECREF(shape);
        return -1;
    }
    npy_intp h = PyArray_DIM(arr, 0), w = PyArray_DIM(arr, 1);
    if (h < 1 || w < 1 || h > FLAPPY_FRAME_MAX_SIZE || w > FLAPPY_FRAME_MAX_SIZE) {
        PyObject* shape = PyObject_GetAttrString(obj, "shape");
        PyErr_Format(PyExc_ValueError, "frame height and width must be in [1, %d], got shape %R",
                     FLAPPY_FRAME_MAX_SIZE, shape);
        Py_XDECREF(shape);
        return -1;
    }
    if (check_array_layout(arr, "frame") != 0) return -1;
    *height = (int)h;
    *width = (int)w;
    *channels = ndim == 3 ? 3 : 1;
    return 0;
}

/* ---- module functions ---- */

static PyObject* vec_init(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *buffers[5], *num_envs_obj, *seed_obj;
    int next_step = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOO|p:vec_init", &buffers[0], &buffers[1], &buffers[2], &buffers[3],
                          &buffers[4], &num_envs_obj, &seed_obj, &next_step))
        return NULL;
    if (PyBool_Check(num_envs_obj) || !PyLong_Check(num_envs_obj)) {
        PyErr_Format(PyExc_TypeError, "num_envs must be an int, got %s", Py_TYPE(num_envs_obj)->tp_name);
        return NULL;
    }
    long num_envs = PyLong_AsLong(num_envs_obj);
    if (num_envs == -1 && PyErr_Occurred()) return NULL;
    if (num_envs < 1 || num_envs > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "num_envs must be in [1, %d], got %R", INT_MAX, num_envs_obj);
        return NULL;
    }
    uint64_t seed;
    FlappyParams params;
    if (parse_seed(seed_obj, &seed) != 0 || parse_params(kwargs, &params) != 0) return NULL;
    FlappyObsSpec spec = flappy_obs_spec(&params);
    npy_intp obs_dims[4] = {num_envs, spec.shape[0], spec.shape[1], spec.shape[2]}, per_env[1] = {num_envs};
    if (check_buffer(buffers[0], "observations", spec.is_uint8 ? NPY_UINT8 : NPY_FLOAT32, 1 + spec.ndim, obs_dims) != 0 ||
        check_buffer(buffers[1], "actions", NPY_INT32, 1, per_env) != 0 ||
        check_buffer(buffers[2], "rewards", NPY_FLOAT32, 1, per_env) != 0 ||
        check_buffer(buffers[3], "terminals", NPY_BOOL, 1, per_env) != 0 ||
        check_buffer(buffers[4], "truncations", NPY_BOOL, 1, per_env) != 0)
        return NULL;

    VecEnv* handle = PyObject_New(VecEnv, &VecEnvType);
    if (handle == NULL) return NULL;
    handle->open = 0;
    for (int k = 0; k < 5; k++) handle->buffers[k] = Py_NewRef(buffers[k]);
#define DATA(k) PyArray_DATA((PyArrayObject*)buffers[k])
    char err[256];
    int status = flappy_vec_init(&handle->vec, &params, (int)num_envs, seed, DATA(0), DATA(1), DATA(2), DATA(3),
                                 DATA(4), next_step, err, sizeof(err));
    if (status != 0) {
        Py_DECREF(handle);
        PyErr_SetString(status == -2 ? PyExc_MemoryError : PyExc_ValueError, err);
        return NULL;
    }
    handle->open = 1;
    return (PyObject*)handle;
}

static PyObject* vec_reset(PyObject* self, PyObject* args) {
    PyObject *handle_obj, *seed_obj = Py_None, *stream_obj = NULL;
    if (!PyArg_ParseTuple(args, "O|OO:vec_reset", &handle_obj, &seed_obj, &stream_obj)) return NULL;
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL) return NULL;
    if (seed_obj == Py_None) {
        if (stream_obj != NULL) {
            PyErr_SetString(PyExc_TypeError, "vec_reset: first_stream needs a seed");
            return NULL;
        }
        flappy_vec_restart(&handle->vec);
        Py_RETURN_NONE;
    }
    uint64_t seed, first_stream = 0;
    if (parse_seed(seed_obj, &seed) != 0 || (stream_obj != NULL && parse_seed(stream_obj, &first_stream) != 0))
        return NULL;
    handle->vec.first_stream = first_stream;
    flappy_vec_reset(&handle->vec, seed);
    Py_RETURN_NONE;
}

static PyObject* raise_bad_action(long long value, int env_index) {
    PyErr_Format(PyExc_ValueError, "action %lld at env %d is not 0 (do nothing) or 1 (flap)", value, env_index);
    return NULL;
}

/* Copy actions given as an integer array of shape (num_envs,) into the action buffer, after
 * checking every value, so that a bad one leaves the buffer as it was. load_actions returns 1
 * when it copied (and so checked) them, 0 when they are the action buffer itself, -1 on error. */
#define LOAD_ACTIONS_OF(typenum, ctype, wide, format)                                           \
    case typenum:                                                                               \
        for (npy_intp i = 0; i < n; i++) {                                                      \
            ctype value = *(const ctype*)PyArray_GETPTR1(arr, i);                               \
            if (value != 0 && value != 1) {                                                     \
                PyErr_Format(PyExc_ValueError, "action " format " at env %zd is not 0 (do nothing) or 1 (flap)", \
                             (wide)value, (Py_ssize_t)i);                                       \
                return -1;                                                                      \
            }                                                                                   \
        }                                                                                       \
        for (npy_intp i = 0; i < n; i++) dst[i] = (int32_t)*(const ctype*)PyArray_GETPTR1(arr, i); \
        return 0;
#define LOAD_SIGNED(typenum, ctype) LOAD_ACTIONS_OF(typenum, ctype, long long, "%lld")
#define LOAD_UNSIGNED(typenum, ctype) LOAD_ACTIONS_OF(typenum, ctype, unsigned long long, "%llu")

static int copy_checked_actions(PyArrayObject* arr, int32_t* dst, npy_intp n) {
    switch (PyArray_TYPE(arr)) {
        LOAD_UNSIGNED(NPY_BOOL, npy_bool)
        LOAD_SIGNED(NPY_BYTE, npy_byte)
        LOAD_UNSIGNED(NPY_UBYTE, npy_ubyte)
        LOAD_SIGNED(NPY_SHORT, npy_short)
        LOAD_UNSIGNED(NPY_USHORT, npy_ushort)
        LOAD_SIGNED(NPY_INT, npy_int)
        LOAD_UNSIGNED(NPY_UINT, npy_uint)
        LOAD_SIGNED(NPY_LONG, npy_long)
        LOAD_UNSIGNED(NPY_ULONG, npy_ulong)
        LOAD_SIGNED(NPY_LONGLONG, npy_longlong)
        LOAD_UNSIGNED(NPY_ULONGLONG, npy_ulonglong)
    }
    PyErr_Format(PyExc_TypeError, "actions must be integers, got dtype %S", (PyObject*)PyArray_DESCR(arr));
    return -1;
}

/* Whether arr's elements may lie in [start, start + bytes): its extent from its strides. */
static int may_overlap(PyArrayObject* arr, const void* start, size_t bytes) {
    if (PyArray_SIZE(arr) == 0) return 0;
    const char* low = PyArray_BYTES(arr);
    const char* high = low + PyArray_ITEMSIZE(arr);
    for (int d = 0; d < PyArray_NDIM(arr); d++) {
        npy_intp span = (PyArray_DIM(arr, d) - 1) * PyArray_STRIDE(arr, d);
        if (span < 0) low += span; else high += span;
    }
    return low < (const char*)start + bytes && (const char*)start < high;
}

static int load_actions(VecEnv* handle, PyObject* obj) {
    FlappyVec* vec = &handle->vec;
    const size_t action_bytes = (size_t)vec->num_envs * sizeof(int32_t);
    if (PyArray_Check(obj)) {
        PyArrayObject* arr = (PyArrayObject*)obj;
        int plain = PyArray_TYPE(arr) == NPY_INT32 && PyArray_NDIM(arr) == 1 &&
                    PyArray_DIM(arr, 0) == vec->num_envs && PyArray_IS_C_CONTIGUOUS(arr) && PyArray_ISALIGNED(arr) &&
                    PyArray_ISNOTSWAPPED(arr);
        /* The action buffer itself, as it is (not a view of it with another shape, type or
         * order): its values are checked before the step. */
        if (plain && PyArray_DATA(arr) == (void*)vec->actions) return 0;
        /* The common case, PufferLib's own int32 actions: check all, then one copy (memmove: the
         * array may overlap the buffer). */
        if (plain) {
            const int32_t* src = PyArray_DATA(arr);
            uint32_t any_bad = 0;
            for (int i = 0; i < vec->num_envs; i++) any_bad |= (uint32_t)src[i] > 1u;
            if (any_bad) {
                int i = 0;
                while ((uint32_t)src[i] <= 1u) i++;
                raise_bad_action(src[i], i);
                return -1;
            }
            memmove((int32_t*)vec->actions, src, action_bytes);
            return 1;
        }
    }
    PyArrayObject* arr = (PyArrayObject*)PyArray_FROM_OF(obj, NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED);
    if (arr == NULL) return -1;
    /* A view of the action buffer in another order (act[::-1]) would be read while it is
     * written: read a copy instead. */
    if (may_overlap(arr, vec->actions, action_bytes)) {
        PyArrayObject* copy = (PyArrayObject*)PyArray_NewCopy(arr, NPY_CORDER);
        Py_DECREF(arr);
        if (copy == NULL) return -1;
        arr = copy;
    }
    int status = -1;
    if (PyArray_NDIM(arr) != 1 || PyArray_DIM(arr, 0) != vec->num_envs) {
        PyObject* shape = PyObject_GetAttrString((PyObject*)arr, "shape");
        PyErr_Format(PyExc_ValueError, "actions must have shape (%d,), got %R", vec->num_envs, shape);
        Py_XDECREF(shape);
    } else {
        status = copy_checked_actions(arr, (int32_t*)vec->actions, vec->num_envs) == 0 ? 1 : -1;
    }
    Py_DECREF(arr);
    return status;
}

/* (handle, actions=None), the arguments of vec_step. */
static VecEnv* step_arguments(const char* name, PyObject* const* args, Py_ssize_t nargs, PyObject** actions) {
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s(handle, actions=None) takes 1 or 2 arguments (%zd given)", name, nargs);
        return NULL;
    }
    *actions = nargs == 2 ? args[1] : Py_None;
    return checked_open_handle(args[0]);
}

static PyObject* vec_step(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* actions;
    VecEnv* handle = step_arguments("vec_step", args, nargs, &actions);
    if (handle == NULL) return NULL;
    int checked = 0; /* actions copied in are checked on the way */
    if (actions != Py_None && (checked = load_actions(handle, actions)) < 0) return NULL;
    if (!checked) {
        int bad = flappy_vec_find_bad_action(&handle->vec);
        if (bad >= 0) return raise_bad_action(handle->vec.actions[bad], bad);
    }
    flappy_vec_step(&handle->vec);
    Py_RETURN_NONE;
}

static PyObject* vec_log(PyObject* self, PyObject* handle_obj) {
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL) return NULL;
    FlappyLog log = flappy_vec_log(&handle->vec);
    return Py_BuildValue("{sdsdsdsdsdsdsdsdsd}", "score", log.score, "episode_return", log.episode_return,
                         "episode_length", log.episode_length, "perf", log.perf, "gap", log.gap, "pipe_speed",
                         log.pipe_speed, "pipe_spacing", log.pipe_spacing, "gravity", log.gravity, "n", log.n);
}

static PyObject* vec_close(PyObject* self, PyObject* handle_obj) {
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL) return NULL;
    flappy_vec_free(&handle->vec);
    handle->open = 0;
    Py_RETURN_NONE;
}

/* Env i of an open handle, or NULL with IndexError. */
static const Flappy* env_at(VecEnv* handle, Py_ssize_t i) {
    if (i < 0 || i >= handle->vec.num_envs) {
        PyErr_Format(PyExc_IndexError, "env index %zd out of range [0, %d)", i, handle->vec.num_envs);
        return NULL;
    }
    return &handle->vec.envs[i];
}

/* (handle, i, seed, stream): reseed env i's generator with (seed, stream); its next episode
 * (after vec_reset(handle) or its own end) draws from there. For vector envs that seed each
 * env by itself, as Gymnasium's do (env i with seed + i). */
static PyObject* vec_seed_env(PyObject* self, PyObject* args) {
    PyObject *handle_obj, *seed_obj, *stream_obj;
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "OnOO:vec_seed_env", &handle_obj, &i, &seed_obj, &stream_obj)) return NULL;
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL || env_at(handle, i) == NULL) return NULL;
    uint64_t seed, stream;
    if (parse_seed(seed_obj, &seed) != 0 || parse_seed(stream_obj, &stream) != 0) return NULL;
    flappy_rng_seed(&handle->vec.envs[i].rng, seed, stream);
    Py_RETURN_NONE;
}

static PyObject* env_get(PyObject* self, PyObject* args) {
    PyObject* handle_obj;
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "On:env_get", &handle_obj, &i)) return NULL;
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL) return NULL;
    const Flappy* env = env_at(handle, i);
    if (env == NULL) return NULL;
    double next_x;
    int next = flappy_next_pipe(env, &next_x);
    PyObject* pipes = PyList_New(FLAPPY_NUM_PIPES);
    if (pipes == NULL) return NULL;
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) {
        double top = env->gap_top[(env->first + j) & (FLAPPY_NUM_PIPES - 1)];
        PyObject* pipe = Py_BuildValue("{sdsdsd}", "x", env->front_x + j * env->pipe_spacing, "gap_top", top,
                                       "gap_bottom", top + env->gap);
        if (pipe == NULL) {
            Py_DECREF(pipes);
            return NULL;
        }
        PyList_SET_ITEM(pipes, j, pipe);
    }
    return Py_BuildValue("{sdsdsdsNsisisisdsdsdsdsd}", "bird_x", FLAPPY_BIRD_X, "bird_y", env->bird_y, "bird_vy",
                         env->bird_vy, "pipes", pipes, "next_pipe", (next - env->first) & (FLAPPY_NUM_PIPES - 1),
                         "score", env->score, "tick", env->tick, "episode_return", env->episode_return, "gap", env->gap,
                         "pipe_speed", env->pipe_speed, "pipe_spacing", env->pipe_spacing, "gravity", env->gravity);
}

/* The choices of an ENUM parameter as a tuple of names. */
static PyObject* choices_tuple(const char* const* choices, int count) {
    PyObject* out = PyTuple_New(count);
    for (int k = 0; out != NULL && k < count; k++) {
        PyObject* text = PyUnicode_FromString(choices[k]);
        if (text == NULL) Py_CLEAR(out);
        else PyTuple_SET_ITEM(out, k, text);
    }
    return out;
}

/* params(): (default, min, max); a choice's default by name, with min and max None
 * (param_choices() names its choices). */
#define ENTRY_REAL(name, dflt, lo, hi) Py_BuildValue("(ddd)", (double)(dflt), (double)(lo), (double)(hi))
#define ENTRY_INT(name, dflt, lo, hi) Py_BuildValue("(iii)", (int)(dflt), (int)(lo), (int)(hi))
#define ENTRY_ENUM(name, dflt, lo, hi) Py_BuildValue("(sOO)", FLAPPY_CHOICES_##name[dflt], Py_None, Py_None)

static PyObject* params(PyObject* self, PyObject* unused) {
    PyObject* out = PyDict_New();
#define PARAM_ENTRY(kind, name, dflt, lo, hi, doc)                                        \
    if (out != NULL) {                                                                    \
        PyObject* entry = ENTRY_##kind(name, dflt, lo, hi);                               \
        if (entry == NULL || PyDict_SetItemString(out, #name, entry) != 0) Py_CLEAR(out); \
        Py_XDECREF(entry);                                                                \
    }
    FLAPPY_PARAMS(PARAM_ENTRY)
    return out;
}

static PyObject* param_choices(PyObject* self, PyObject* unused) {
    PyObject* out = PyDict_New();
#define CHOICES_REAL(name) NULL
#define CHOICES_INT(name) NULL
#define CHOICES_ENUM(name) choices_tuple(FLAPPY_CHOICES_##name, CHOICE_COUNT(name))
#define PARAM_CHOICES(kind, name, dflt, lo, hi, doc)                                       \
    if (out != NULL && strcmp(#kind, "ENUM") == 0) {                                       \
        PyObject* choices = CHOICES_##kind(name);                                          \
        if (choices == NULL || PyDict_SetItemString(out, #name, choices) != 0) Py_CLEAR(out); \
        Py_XDECREF(choices);                                                               \
    }
    FLAPPY_PARAMS(PARAM_CHOICES)
    return out;
}

/* Build {name: value} from a FlappyParams, typed as the table declares (choices by name). */
static PyObject* params_to_dict(const FlappyParams* p) {
    PyObject* out = PyDict_New();
#define VALUE_REAL(name) PyFloat_FromDouble(p->name)
#define VALUE_INT(name) PyLong_FromLong(p->name)
#define VALUE_ENUM(name) PyUnicode_FromString(FLAPPY_CHOICES_##name[p->name])
#define PARAM_VALUE(kind, name, dflt, lo, hi, doc)                                        \
    if (out != NULL) {                                                                    \
        PyObject* value = VALUE_##kind(name);                                             \
        if (value == NULL || PyDict_SetItemString(out, #name, value) != 0) Py_CLEAR(out); \
        Py_XDECREF(value);                                                                \
    }
    FLAPPY_PARAMS(PARAM_VALUE)
    return out;
}

static PyObject* check_params(PyObject* self, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "check_params takes keyword arguments only");
        return NULL;
    }
    FlappyParams p;
    if (parse_params(kwargs, &p) != 0) return NULL;
    return params_to_dict(&p);
}

/* obs_spec(**params) -> {"shape", "dtype", "low", "high"} of one env's observation. */
static PyObject* obs_spec(PyObject* self, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "obs_spec takes keyword arguments only");
        return NULL;
    }
    FlappyParams p;
    if (parse_params(kwargs, &p) != 0) return NULL;
    FlappyObsSpec spec = flappy_obs_spec(&p);
    PyObject* shape = PyTuple_New(spec.ndim);
    for (int d = 0; shape != NULL && d < spec.ndim; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLong(spec.shape[d]));
    if (shape == NULL) return NULL;
    if (p.obs_mode == FLAPPY_OBS_PIXELS)
        return Py_BuildValue("{sNsssisi}", "shape", shape, "dtype", "uint8", "low", 0, "high", 255);
    if (p.obs_mode == FLAPPY_OBS_FEATURES)
        return Py_BuildValue("{sNsssdsd}", "shape", shape, "dtype", "float32", "low", -1.0, "high", 1.0);
    /* lidar: distances in [0, 1], then the vertical speed in [-1, 1] */
    PyObject* low = PyList_New(p.lidar_rays + 1);
    for (int k = 0; low != NULL && k <= p.lidar_rays; k++)
        PyList_SET_ITEM(low, k, PyFloat_FromDouble(k < p.lidar_rays ? 0.0 : -1.0));
    if (low == NULL) {
        Py_DECREF(shape);
        return NULL;
    }
    return Py_BuildValue("{sNsssNsd}", "shape", shape, "dtype", "float32", "low", low, "high", 1.0);
}

static PyObject* param_docs(PyObject* self, PyObject* unused) {
    return Py_BuildValue("{"
#define PARAM_DOC_FMT(kind, name, dflt, lo, hi, doc) "ss"
                         FLAPPY_PARAMS(PARAM_DOC_FMT) "}"
#define PARAM_DOC_ARGS(kind, name, dflt, lo, hi, doc) , #name, doc
                             FLAPPY_PARAMS(PARAM_DOC_ARGS));
}

/* ---- drawing ---- */

static PyObject* render(PyObject* self, PyObject* args) {
    PyObject *handle_obj, *frame;
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "OnO:render", &handle_obj, &i, &frame)) return NULL;
    VecEnv* handle = checked_open_handle(handle_obj);
    if (handle == NULL) return NULL;
    const Flappy* env = env_at(handle, i);
    int width, height, channels;
    if (env == NULL || check_frame(frame, &width, &height, &channels) != 0) return NULL;
    flappy_draw(env, PyArray_DATA((PyArrayObject*)frame), width, height, channels);
    Py_RETURN_NONE;
}

/* One value of a state dict, or NULL with ValueError if it is missing; its callers check its type
 * and range. `where` names the dict in messages, e.g. "state" or "state['pipes'][2]". */
static PyObject* state_item(PyObject* dict, const char* where, const char* key) {
    PyObject* value = PyDict_GetItemString(dict, key);
    if (value == NULL) PyErr_Format(PyExc_ValueError, "%s has no '%s'", where, key);
    return value;
}

static int state_real(PyObject* dict, const char* where, const char* key, double* out) {
    char name[96];
    PyObject* value = state_item(dict, where, key);
    if (value == NULL) return -1;
    snprintf(name, sizeof(name), "%s['%s']", where, key);
    if (parse_REAL(value, name, out) != 0) return -1;
    if (!isfinite(*out)) {
        PyErr_Format(PyExc_ValueError, "%s must be finite, got %R", name, value);
        return -1;
    }
    return 0;
}

static int state_count(PyObject* dict, const char* key, int* out) {
    char name[96];
    PyObject* value = state_item(dict, "state", key);
    if (value == NULL) return -1;
    snprintf(name, sizeof(name), "state['%s']", key);
    if (parse_INT(value, name, out) != 0) return -1;
    if (*out < 0 || *out == INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be in [0, %d), got %R", name, INT_MAX, value);
        return -1;
    }
    return 0;
}

/* The view of a state dict as env_get returns it (bird_y, pipes oldest first with x, gap_top
 * and gap_bottom, score, tick); other keys are ignored. The grass scrolls at pipe_speed. */
static int parse_state(PyObject* state, const FlappyParams* p, FlappyView* view) {
    if (!PyDict_Check(state)) {
        PyErr_Format(PyExc_TypeError, "state must be a dict, got %s", Py_TYPE(state)->tp_name);
        return -1;
    }
    int tick;
    if (state_real(state, "state", "bird_y", &view->bird_y) != 0 || state_count(state, "score", &view->score) != 0 ||
        state_count(state, "tick", &tick) != 0)
        return -1;
    /* the episode's pipe speed when the state has one (env_get's does), else the parameter */
    double pipe_speed = p->pipe_speed;
    if (PyDict_GetItemString(state, "pipe_speed") != NULL && state_real(state, "state", "pipe_speed", &pipe_speed) != 0)
        return -1;
    view->grass_offset = flappy_grass_offset(tick, pipe_speed);
    /* optional presentation keys: pixel observations omit the score and show the sky above the screen */
    PyObject* show_score = PyDict_GetItemString(state, "show_score");
    int show = show_score == NULL ? 1 : PyObject_IsTrue(show_score);
    if (show < 0) return -1;
    view->show_score = show;
    view->top = 0.0;
    if (PyDict_GetItemString(state, "view_top") != NULL && state_real(state, "state", "view_top", &view->top) != 0)
        return -1;
    PyObject* pipes = state_item(state, "state", "pipes");
    if (pipes == NULL) return -1;
    if (!PyList_Check(pipes) && !PyTuple_Check(pipes)) {
        PyErr_Format(PyExc_TypeError, "state['pipes'] must be a list, got %s", Py_TYPE(pipes)->tp_name);
        return -1;
    }
    if (PySequence_Fast_GET_SIZE(pipes) != FLAPPY_NUM_PIPES) {
        PyErr_Format(PyExc_ValueError, "state['pipes'] must hold %d pipes, got %zd", FLAPPY_NUM_PIPES,
                     PySequence_Fast_GET_SIZE(pipes));
        return -1;
    }
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) {
        PyObject* pipe = PySequence_Fast_GET_ITEM(pipes, j);
        char where[32];
        snprintf(where, sizeof(where), "state['pipes'][%d]", j);
        if (!PyDict_Check(pipe)) {
            PyErr_Format(PyExc_TypeError, "%s must be a dict, got %s", where, Py_TYPE(pipe)->tp_name);
            return -1;
        }
        if (state_real(pipe, where, "x", &view->pipe_x[j]) != 0 ||
            state_real(pipe, where, "gap_top", &view->gap_top[j]) != 0 ||
            state_real(pipe, where, "gap_bottom", &view->gap_bottom[j]) != 0)
            return -1;
    }
    return 0;
}

static PyObject* render_state(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *state, *frame;
    if (!PyArg_ParseTuple(args, "OO:render_state", &state, &frame)) return NULL;
    FlappyParams params;
    FlappyView view;
    int width, height, channels;
    if (parse_params(kwargs, &params) != 0 || parse_state(state, &params, &view) != 0 ||
        check_frame(frame, &width, &height, &channels) != 0)
        return NULL;
    flappy_draw_view(&view, PyArray_DATA((PyArrayObject*)frame), width, height, channels);
    Py_RETURN_NONE;
}

/* Lower-case names of the palette's colours and of the scene's parts, made at import. */
static PyObject* colour_names; /* tuple, indexed by FLAPPY_COLOUR_* */
static PyObject* part_names;   /* tuple, indexed by FLAPPY_PART_* */

static PyObject* lower_case_names(const char* const* names, int n) {
    PyObject* out = PyTuple_New(n);
    for (int k = 0; out != NULL && k < n; k++) {
        PyObject* upper = PyUnicode_FromString(names[k]);
        PyObject* lower = upper ? PyObject_CallMethod(upper, "lower", NULL) : NULL;
        Py_XDECREF(upper);
        if (lower == NULL) Py_CLEAR(out);
        else PyTuple_SET_ITEM(out, k, lower);
    }
    return out;
}

static PyObject* scene(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* state;
    if (!PyArg_ParseTuple(args, "O:scene", &state)) return NULL;
    FlappyParams params;
    FlappyView view;
    if (parse_params(kwargs, &params) != 0 || parse_state(state, &params, &view) != 0) return NULL;
    FlappyScene built;
    flappy_scene_build(&view, &built);
    PyObject* out = PyList_New(built.count);
    for (int k = 0; out != NULL && k < built.count; k++) {
        const FlappyRect* r = &built.rects[k];
        PyObject* item = Py_BuildValue("(OOdddd)", PyTuple_GET_ITEM(part_names, r->part),
                                       PyTuple_GET_ITEM(colour_names, r->colour), r->x0, r->y0, r->x1, r->y1);
        if (item == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject* palette(PyObject* self, PyObject* unused) {
    PyObject* out = PyDict_New();
    for (int k = 0; out != NULL && k < FLAPPY_NUM_COLOURS; k++) {
        const uint8_t* c = FLAPPY_PALETTE_RGB[k];
        PyObject* rgb = Py_BuildValue("(iii)", c[0], c[1], c[2]);
        if (rgb == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(colour_names, k), rgb) != 0) Py_CLEAR(out);
        Py_XDECREF(rgb);
    }
    return out;
}

static PyObject* palette_gray(PyObject* self, PyObject* unused) {
    PyObject* out = PyDict_New();
    for (int k = 0; out != NULL && k < FLAPPY_NUM_COLOURS; k++) {
        PyObject* gray = PyLong_FromLong(FLAPPY_PALETTE_GRAY[k]);
        if (gray == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(colour_names, k), gray) != 0) Py_CLEAR(out);
        Py_XDECREF(gray);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"vec_init", (PyCFunction)(void (*)(void))vec_init, METH_VARARGS | METH_KEYWORDS,
     "vec_init(observations, actions, rewards, terminals, truncations, num_envs, seed, next_step=False, **params) -> handle;"
     " next_step: Gymnasium's next-step autoreset (an ended episode's last observation, the new one on the next step)"},
    {"vec_reset", vec_reset, METH_VARARGS,
     "vec_reset(handle, seed=None, first_stream=0): new episodes; an int seed reseeds env i with (seed, first_stream + i)"},
    {"vec_step", (PyCFunction)(void (*)(void))vec_step, METH_FASTCALL,
     "vec_step(handle, actions=None): step every env; actions, if given, are copied into the buffer first"},
    {"vec_log", vec_log, METH_O, "vec_log(handle) -> dict of means over episodes finished since the last call"},
    {"vec_close", vec_close, METH_O, "vec_close(handle): free the envs; the handle can't be used again"},
    {"env_get", env_get, METH_VARARGS, "env_get(handle, i) -> dict: the state of env i"},
    {"vec_seed_env", vec_seed_env, METH_VARARGS,
     "vec_seed_env(handle, i, seed, stream): reseed env i's generator with (seed, stream), for its next episode"},
    {"params", params, METH_NOARGS, "params() -> {name: (default, min, max)}"},
    {"check_params", (PyCFunction)(void (*)(void))check_params, METH_VARARGS | METH_KEYWORDS,
     "check_params(**params) -> {name: value}: the defaults overridden by params, after the checks vec_init makes"},
    {"param_choices", param_choices, METH_NOARGS, "param_choices() -> {name: (choice, ...)} of the named-choice parameters"},
    {"obs_spec", (PyCFunction)(void (*)(void))obs_spec, METH_VARARGS | METH_KEYWORDS,
     "obs_spec(**params) -> {'shape', 'dtype', 'low', 'high'}: one env's observation for these parameters"},
    {"param_docs", param_docs, METH_NOARGS, "param_docs() -> {name: one-line description}"},
    {"render", render, METH_VARARGS,
     "render(handle, i, frame): draw env i into frame, uint8 (height, width, 3) RGB or (height, width) gray"},
    {"render_state", (PyCFunction)(void (*)(void))render_state, METH_VARARGS | METH_KEYWORDS,
     "render_state(state, frame, **params): draw a state dict as env_get returns it into frame, as render does"},
    {"scene", (PyCFunction)(void (*)(void))scene, METH_VARARGS | METH_KEYWORDS,
     "scene(state, **params) -> [(part, colour, x0, y0, x1, y1)]: the rectangles render draws, in world pixels, "
     "in painting order"},
    {"palette", palette, METH_NOARGS, "palette() -> {colour: (red, green, blue)}"},
    {"palette_gray", palette_gray, METH_NOARGS, "palette_gray() -> {colour: luma}: the colours of grayscale frames"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "binding",
    .m_doc = "C core of flappy_rl (see csrc/flappy.h).",
    .m_size = -1,
    .m_methods = methods,
};

#ifdef __clang__
#define COMPILER "clang " __clang_version__
#else
#define COMPILER "gcc " __VERSION__
#endif

PyMODINIT_FUNC PyInit_binding(void) {
    import_array();
    if (PyType_Ready(&VecEnvType) < 0) return NULL;
    PyObject* m = PyModule_Create(&module);
    if (m == NULL) return NULL;
#define ADD_CONSTANT(name, value)                                         \
    if (PyModule_AddObject(m, #name, PyFloat_FromDouble(FLAPPY_##name)) < 0) { \
        Py_DECREF(m);                                                     \
        return NULL;                                                      \
    }
    FLAPPY_CONSTANTS(ADD_CONSTANT)
    FLAPPY_RENDER_CONSTANTS(ADD_CONSTANT)
    static const char* const colour_upper[] = {
#define COLOUR_NAME(name, r, g, b) #name,
        FLAPPY_PALETTE(COLOUR_NAME)};
    static const char* const part_upper[] = {
#define PART_NAME(name) #name,
        FLAPPY_PARTS(PART_NAME)};
    colour_names = lower_case_names(colour_upper, FLAPPY_NUM_COLOURS);
    part_names = lower_case_names(part_upper, FLAPPY_NUM_PARTS);
    if (colour_names == NULL || part_names == NULL || PyModule_AddIntConstant(m, "FRAME_MAX_SIZE", FLAPPY_FRAME_MAX_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "NUM_FEATURES", FLAPPY_FEATURES) < 0 ||
        PyModule_AddIntConstant(m, "NUM_PIPES", FLAPPY_NUM_PIPES) < 0 ||
        PyModule_AddIntConstant(m, "PERF_SCORE", FLAPPY_PERF_SCORE) < 0 ||
        PyModule_AddStringConstant(m, "COMPILER", COMPILER) < 0 ||
        PyModule_AddObjectRef(m, "VecEnv", (PyObject*)&VecEnvType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
