/* flappy.h: Flappy Bird for reinforcement learning. The whole game is in this header.
 *
 * It has no Python in it: csrc/binding.c wraps it for Python, and plain C programs (the
 * sanitizer tests, the benchmark) include it directly. Drawing lives in csrc/render.h, which
 * this header includes where the pixel observation needs it.
 *
 * Coordinates are the original game's screen pixels: x grows to the right, y grows DOWN, time
 * goes in frames at 30 frames per second (an agent's step repeats its action for frame_skip
 * frames). The bird stays at a fixed x; the pipes scroll left. All positions are doubles (the
 * LIDAR works in float32) so that the pure-Python twin (src/flappy_rl/reference.py) reproduces
 * every number bit for bit. Build with -ffp-contract=off so that no compiler fuses a*b+c into
 * one rounding.
 *
 * Reading order: constants, parameter table, random numbers, state, reset, step,
 * observations (features, LIDAR, pixels), the vector of envs that the binding drives.
 */
#ifndef FLAPPY_H
#define FLAPPY_H

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------------------------
 * World geometry: the original FlapPyBird's, fixed. X(name, value). Exported to Python as
 * module constants of flappy_rl.binding, so the twin and the renderer use these very values.
 */
#define FLAPPY_CONSTANTS(X)                                                                     \
    X(WORLD_WIDTH, 288.0)                                                                       \
    X(WORLD_HEIGHT, 512.0)                                                                      \
    X(GROUND_Y, 404.48)          /* 0.79 * WORLD_HEIGHT: the top of the ground strip */        \
    X(BIRD_X, 57.6)              /* 0.2 * WORLD_WIDTH: the bird box's left edge */              \
    X(BIRD_WIDTH, 34.0)                                                                         \
    X(BIRD_HEIGHT, 24.0)                                                                        \
    X(BIRD_START_Y, 244.0)       /* (WORLD_HEIGHT - BIRD_HEIGHT) / 2: top edge at reset */    \
    X(FLAP_CEILING, -48.0)       /* flaps are ignored while the bird's top is above this */    \
    X(PIPE_WIDTH, 52.0)                                                                         \
    X(FIRST_PIPE_X, 488.0)       /* WORLD_WIDTH + 200: left edge of an episode's first pipe */ \
    X(GAP_TOP_MIN, 80.896)       /* 0.2 * GROUND_Y: highest gap top */                          \
    X(GAP_SPAN, 242.688)         /* 0.6 * GROUND_Y: gap top + gap never exceeds 0.8 * GROUND_Y */ \
    X(LIDAR_X, 91.6)             /* BIRD_X + BIRD_WIDTH: the rays start at the bird's beak */   \
    X(PIXELS_TOP, -96.0)         /* pixel observations show the world from here down */        \
    X(BIRD_TOP_MIN, -96.0)       /* PIXELS_TOP: the bird's top never rises above it (it stops */ \
                                 /* there), so every pixel observation shows the bird */         \
    X(FPS, 30.0)

#define FLAPPY_DEFINE_CONSTANT(name, value) static const double FLAPPY_##name = value;
FLAPPY_CONSTANTS(FLAPPY_DEFINE_CONSTANT)

/* Derived positions the step compares against, written once here. */
#define FLAPPY_BIRD_RIGHT (FLAPPY_BIRD_X + FLAPPY_BIRD_WIDTH)
/* A pipe whose left edge is at or left of this has its centre at or left of the bird's centre. */
#define FLAPPY_SCORE_X (FLAPPY_BIRD_X + FLAPPY_BIRD_WIDTH / 2 - FLAPPY_PIPE_WIDTH / 2)
/* The bird touches the ground when its top edge reaches this. */
#define FLAPPY_GROUND_TOUCH_Y (FLAPPY_GROUND_Y - FLAPPY_BIRD_HEIGHT)

/* The env keeps four pipes: enough to cover the screen and see two ahead at the smallest
 * spacing (100 px): a pipe is recycled once its right edge leaves the screen (x < -PIPE_WIDTH),
 * the next pipe is never further right than BIRD_X, so four cover -52 .. 5.6 + 3 * 100 > 288. */
#define FLAPPY_NUM_PIPES 4

/* ------------------------------------------------------------------------------------------
 * Named choices of ENUM parameters: X(NAME, "name"), indexed from 0.
 */
#define FLAPPY_OBS_MODES(X) X(FEATURES, "features") X(LIDAR, "lidar") X(PIXELS, "pixels")
#define FLAPPY_DIFFICULTIES(X) X(EASY, "easy") X(NORMAL, "normal") X(HARD, "hard")

enum {
#define FLAPPY_OBS_MODE_INDEX(name, text) FLAPPY_OBS_##name,
    FLAPPY_OBS_MODES(FLAPPY_OBS_MODE_INDEX) FLAPPY_NUM_OBS_MODES
};
enum {
#define FLAPPY_DIFFICULTY_INDEX(name, text) FLAPPY_DIFFICULTY_##name,
    FLAPPY_DIFFICULTIES(FLAPPY_DIFFICULTY_INDEX) FLAPPY_NUM_DIFFICULTIES
};
#define FLAPPY_CHOICE_TEXT(name, text) text,
static const char* const FLAPPY_CHOICES_obs_mode[] = {FLAPPY_OBS_MODES(FLAPPY_CHOICE_TEXT)};
static const char* const FLAPPY_CHOICES_difficulty[] = {FLAPPY_DIFFICULTIES(FLAPPY_CHOICE_TEXT)};

/* ------------------------------------------------------------------------------------------
 * Parameters, defined once. X(kind, name, default, min, max, doc). kind is REAL (double), INT
 * (int) or ENUM (an index into FLAPPY_CHOICES_<name>, given by name from Python). This table
 * generates the FlappyParams fields, the defaults, the range checks, and through
 * csrc/binding.c the keyword parsing and flappy_rl.binding.params(). Ranges are inclusive.
 * Their limits keep the rules' invariants true:
 *  - pipe_speed <= 40 < PIPE_WIDTH + BIRD_WIDTH: a pipe overlaps the bird for at least two
 *    frames and its centre crosses the bird's centre while it is the next pipe (no tunnelling);
 *  - pipe_spacing >= 100 > PIPE_WIDTH + BIRD_WIDTH: one pipe at a time can touch the bird, and
 *    four pipes cover the screen (above);
 *  - gap <= 240 < GAP_SPAN: the gap fits between 0.2 and 0.8 of the ground's height;
 *  - lidar_range <= 256: the rays reach no pipe beyond the four the env keeps (the fifth is at
 *    least 4 * 100 - 52 - LIDAR_X away).
 *  - frame_skip <= 16: half a second of game time per decision at 30 frames per second, about
 *    one flap's rise and fall (18 frames at the defaults); sixteen frames without a flap already
 *    drop the bird 115 px from rest, more than a default gap, so longer repeats leave nothing
 *    to learn. Atari agents use 4.
 *  - gravity >= 0.1: every bird falls after a flap (at 0 a flap's climb never ended, and the
 *    bird could fly above every pipe for good).
 *  - pixels_width >= 9 > 288 / BIRD_WIDTH and pixels_height >= 26 > (WORLD_HEIGHT - PIXELS_TOP)
 *    / BIRD_HEIGHT: the bird's box spans at least one pixel each way, so it covers a pixel
 *    centre and is drawn in every frame (the rasterizer draws what covers pixel centres).
 * The rules keep the others: the bird's top stays in [BIRD_TOP_MIN, GROUND_Y - BIRD_HEIGHT +
 * max_fall_speed), so the whole bird is inside the pixel view (PIXELS_TOP down to WORLD_HEIGHT:
 * 404.48 + 50 < 512), and a beak below the ground line (a crash's last frame) reads 0 on the
 * rays that point down, never a negative distance.
 * The <name>_spread parameters randomize each episode: its value of <name> is drawn uniformly
 * from the part of [<name> - <name>_spread, <name> + <name>_spread] inside <name>'s range, by
 * the env's own generator (FLAPPY_DRAW_EPISODE_VALUE: no value piles up on a bound).
 */
#define FLAPPY_PARAMS(X)                                                                          \
    X(REAL, gap, 100.0, 30.0, 240.0, "height of the opening between upper and lower pipe, px")     \
    X(REAL, pipe_speed, 4.0, 0.5, 40.0, "distance the pipes move left each frame, px")             \
    X(REAL, pipe_spacing, 144.0, 100.0, 1000.0, "horizontal distance between consecutive pipes, px") \
    X(REAL, gravity, 1.0, 0.1, 10.0, "added to the fall speed each frame without a flap, px/frame") \
    X(REAL, flap_speed, 9.0, 1.0, 30.0, "upward speed a flap sets, px/frame")                      \
    X(REAL, max_fall_speed, 10.0, 1.0, 50.0, "cap on the fall speed, px/frame")                    \
    X(REAL, reward_pipe, 1.0, -100.0, 100.0, "reward for each pipe passed")                        \
    X(REAL, reward_crash, -1.0, -100.0, 100.0, "reward on the frame the bird crashes")             \
    X(REAL, reward_alive, 0.0, -100.0, 100.0, "reward on every frame without a crash")             \
    X(INT, max_steps, 10000, 1, 1000000000, "frames after which an episode is truncated")          \
    X(INT, frame_skip, 1, 1, 16,                                                                    \
      "frames each action is repeated for (action repeat, as in Atari); max_steps still counts frames") \
    X(ENUM, obs_mode, FLAPPY_OBS_FEATURES, 0, FLAPPY_NUM_OBS_MODES - 1,                             \
      "what the agent observes: features (8 numbers), lidar (rays) or pixels (grayscale frames)")    \
    X(INT, lidar_rays, 180, 1, 1024, "lidar: rays spread evenly over the half-plane ahead")        \
    X(REAL, lidar_range, 196.0, 16.0, 256.0, "lidar: distance that reads 1, px")                  \
    X(INT, pixels_width, 36, 9, 288, "pixels: width of each frame")                                \
    X(INT, pixels_height, 64, 26, 512, "pixels: height of each frame")                             \
    X(INT, pixels_stack, 2, 1, 8, "pixels: frames observed at once, oldest first")                 \
    X(REAL, gap_spread, 0.0, 0.0, 210.0, "each episode's gap is drawn from gap +- this")           \
    X(REAL, pipe_speed_spread, 0.0, 0.0, 39.5, "each episode's pipe_speed is drawn from +- this")  \
    X(REAL, pipe_spacing_spread, 0.0, 0.0, 900.0, "each episode's pipe_spacing is drawn from +- this") \
    X(REAL, gravity_spread, 0.0, 0.0, 10.0, "each episode's gravity is drawn from +- this")        \
    X(ENUM, difficulty, FLAPPY_DIFFICULTY_NORMAL, 0, FLAPPY_NUM_DIFFICULTIES - 1,                   \
      "a preset: easy, normal or hard sets the parameters left at their defaults")

/* The presets of `difficulty`: X(DIFFICULTY, parameter, value). A preset sets each of its
 * parameters that is at its table default; a value given explicitly (any other) is kept. */
#define FLAPPY_DIFFICULTY_PRESETS(X)                                                             \
    X(EASY, gap, 130.0) X(EASY, pipe_speed, 3.0) X(EASY, pipe_spacing, 180.0)                    \
    X(HARD, gap, 85.0) X(HARD, pipe_speed, 5.0) X(HARD, pipe_spacing, 130.0)                     \
    X(HARD, gap_spread, 15.0) X(HARD, pipe_speed_spread, 1.0) X(HARD, gravity_spread, 0.15)

#define FLAPPY_CTYPE_REAL double
#define FLAPPY_CTYPE_INT int
#define FLAPPY_CTYPE_ENUM int

typedef struct {
#define FLAPPY_PARAM_FIELD(kind, name, dflt, lo, hi, doc) FLAPPY_CTYPE_##kind name;
    FLAPPY_PARAMS(FLAPPY_PARAM_FIELD)
} FlappyParams;

/* FLAPPY_DEFAULT_<name>, FLAPPY_MIN_<name>, FLAPPY_MAX_<name>: the table's values by name. */
#define FLAPPY_PARAM_CONSTANTS(kind, name, dflt, lo, hi, doc)         \
    static const FLAPPY_CTYPE_##kind FLAPPY_DEFAULT_##name = dflt;    \
    static const double FLAPPY_MIN_##name = lo, FLAPPY_MAX_##name = hi;
FLAPPY_PARAMS(FLAPPY_PARAM_CONSTANTS)

static inline FlappyParams flappy_default_params(void) {
    FlappyParams p;
#define FLAPPY_PARAM_DEFAULT(kind, name, dflt, lo, hi, doc) p.name = dflt;
    FLAPPY_PARAMS(FLAPPY_PARAM_DEFAULT)
    return p;
}

/* v as the shortest of %.15g, %.16g and %.17g that reads back as v (as Python's repr writes 0.1). */
typedef struct {
    char text[32];
} FlappyNumberText;

static inline FlappyNumberText flappy_number_text(double v) {
    FlappyNumberText out;
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out.text, sizeof(out.text), "%.*g", digits, v);
        if (strtod(out.text, NULL) == v) break;
    }
    return out;
}

/* The one wording of a parameter outside its range: name, lowest, highest, the value. The value
 * is quoted as the user gave it where no field can hold it (a whole number beyond int's range,
 * refused as it is parsed: csrc/binding.c, flappy_set_param). */
#define FLAPPY_RANGE_MESSAGE "%s must be in [%s, %s], got %s"

/* Apply the difficulty preset, then check the ranges: 0 when every parameter is in range;
 * otherwise -1 and a one-line message in err. Ranges are checked as !(lo <= v && v <= hi), so
 * NaN is refused too. Resolving twice gives the same parameters. */
static inline int flappy_resolve_params(FlappyParams* p, char* err, size_t err_size) {
#define FLAPPY_APPLY_PRESET(level, name, value) \
    if (p->difficulty == FLAPPY_DIFFICULTY_##level && p->name == FLAPPY_DEFAULT_##name) p->name = value;
    FLAPPY_DIFFICULTY_PRESETS(FLAPPY_APPLY_PRESET)
#define FLAPPY_PARAM_CHECK(kind, name, dflt, lo, hi, doc)                                         \
    if (!((double)(lo) <= (double)p->name && (double)p->name <= (double)(hi))) {                  \
        snprintf(err, err_size, FLAPPY_RANGE_MESSAGE, #name, flappy_number_text((double)(lo)).text,    \
                 flappy_number_text((double)(hi)).text, flappy_number_text((double)p->name).text);        \
        return -1;                                                                                \
    }
    FLAPPY_PARAMS(FLAPPY_PARAM_CHECK)
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The parameter table as data, for C programs that enumerate or set parameters by name (the
 * demo, the web page): FLAPPY_PARAM_INFO[k] describes parameter k in table order. */
enum { FLAPPY_KIND_REAL, FLAPPY_KIND_INT, FLAPPY_KIND_ENUM };

typedef struct {
    const char* name;
    int kind; /* FLAPPY_KIND_REAL, _INT or _ENUM */
    double default_value, min, max; /* an ENUM's are indices into choices */
    const char* doc;
    const char* const* choices; /* ENUM: the names, by index; NULL otherwise */
    int num_choices;
    size_t offset; /* of the field in FlappyParams: a double for REAL, an int otherwise */
} FlappyParamInfo;

#define FLAPPY_CHOICES_OF_REAL(name) NULL, 0
#define FLAPPY_CHOICES_OF_INT(name) NULL, 0
#define FLAPPY_CHOICES_OF_ENUM(name) \
    FLAPPY_CHOICES_##name, (int)(sizeof(FLAPPY_CHOICES_##name) / sizeof(FLAPPY_CHOICES_##name[0]))
#define FLAPPY_PARAM_INFO_ROW(kind, name, dflt, lo, hi, doc) \
    {#name, FLAPPY_KIND_##kind, dflt, lo, hi, doc, FLAPPY_CHOICES_OF_##kind(name), offsetof(FlappyParams, name)},
static const FlappyParamInfo FLAPPY_PARAM_INFO[] = {FLAPPY_PARAMS(FLAPPY_PARAM_INFO_ROW)};
#define FLAPPY_NUM_PARAMS ((int)(sizeof(FLAPPY_PARAM_INFO) / sizeof(FLAPPY_PARAM_INFO[0])))

/* The parameter called `name`, or NULL. */
static inline const FlappyParamInfo* flappy_param_info(const char* name) {
    for (int k = 0; k < FLAPPY_NUM_PARAMS; k++) {
        if (strcmp(FLAPPY_PARAM_INFO[k].name, name) == 0) return &FLAPPY_PARAM_INFO[k];
    }
    return NULL;
}

/* `text` quoted as Python's repr() quotes a printable str: in single quotes, unless it holds a
 * single quote and no double one; backslashes and the chosen quote escaped. Cut to fit out. */
static inline void flappy_repr_text(const char* text, char* out, size_t out_size) {
    const char quote = strchr(text, '\'') != NULL && strchr(text, '"') == NULL ? '"' : '\'';
    size_t n = 0;
    if (out_size < 3) {
        if (out_size > 0) out[0] = '\0';
        return;
    }
    out[n++] = quote;
    for (const char* c = text; *c != '\0' && n + 3 < out_size; c++) {
        if (*c == '\\' || *c == quote) out[n++] = '\\';
        out[n++] = *c;
    }
    out[n++] = quote;
    out[n] = '\0';
}

/* Set one parameter from text, as a user types it: a number for REAL, a whole number for INT,
 * a choice's name for ENUM. 0 on success; otherwise -1 and a one-line message in err, worded
 * as csrc/binding.c words the same mistake from Python (text that is no number is a str there,
 * a fractional number for an INT a float). Ranges are flappy_resolve_params's to check, after
 * the difficulty preset, as in Python, except a whole number beyond int's range: out of every
 * INT parameter's range, refused here with the text as given. */
static inline int flappy_set_param(FlappyParams* p, const char* name, const char* text, char* err, size_t err_size) {
    const FlappyParamInfo* info = flappy_param_info(name);
    char* field = (char*)p;
    if (info == NULL) {
        char quoted[96];
        int n;
        flappy_repr_text(name, quoted, sizeof(quoted));
        n = snprintf(err, err_size, "unknown parameter %s; valid parameters: ", quoted);
        for (int k = 0; k < FLAPPY_NUM_PARAMS && n >= 0 && (size_t)n < err_size; k++) {
            n += snprintf(err + n, err_size - n, "%s%s", k ? ", " : "", FLAPPY_PARAM_INFO[k].name);
        }
        return -1;
    }
    field += info->offset;
    if (info->kind == FLAPPY_KIND_ENUM) {
        for (int k = 0; k < info->num_choices; k++) {
            if (strcmp(text, info->choices[k]) == 0) {
                *(int*)field = k;
                return 0;
            }
        }
        char quoted[96];
        int n = snprintf(err, err_size, "%s must be one of ", name);
        for (int k = 0; k < info->num_choices && n >= 0 && (size_t)n < err_size; k++) {
            n += snprintf(err + n, err_size - n, "%s'%s'", k ? ", " : "", info->choices[k]);
        }
        flappy_repr_text(text, quoted, sizeof(quoted));
        if (n >= 0 && (size_t)n < err_size) snprintf(err + n, err_size - n, ", got %s", quoted);
        return -1;
    }
    char* end;
    double number = strtod(text, &end);
    int is_number = end != text && *end == '\0' && !isspace((unsigned char)text[0]);
    if (info->kind == FLAPPY_KIND_REAL) {
        if (!is_number) {
            snprintf(err, err_size, "%s must be a number, got str", name);
            return -1;
        }
        *(double*)field = number;
        return 0;
    }
    errno = 0;
    long long whole = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || isspace((unsigned char)text[0])) {
        snprintf(err, err_size, "%s must be an int, got %s", name, is_number ? "float" : "str");
        return -1;
    }
    if (errno == ERANGE || whole < INT_MIN || whole > INT_MAX) {
        snprintf(err, err_size, FLAPPY_RANGE_MESSAGE, name, flappy_number_text(info->min).text,
                 flappy_number_text(info->max).text, text);
        return -1;
    }
    *(int*)field = (int)whole;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Random numbers: PCG32 (O'Neill's PCG-XSH-RR, 64-bit state). Each env owns one generator,
 * seeded with the reset seed and selecting the stream by the env's index, so two envs never
 * share a sequence and no global state exists.
 */
typedef struct {
    uint64_t state;
    uint64_t inc; /* odd: selects the stream */
} FlappyRng;

static inline uint32_t flappy_rng_next(FlappyRng* rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

static inline void flappy_rng_seed(FlappyRng* rng, uint64_t seed, uint64_t stream) {
    rng->state = 0;
    rng->inc = (stream << 1) | 1;
    flappy_rng_next(rng);
    rng->state += seed;
    flappy_rng_next(rng);
}

/* Uniform in [0, 1): 32 random bits scaled by 2^-32, exact in a double. */
static inline double flappy_rng_unit(FlappyRng* rng) { return flappy_rng_next(rng) * 0x1p-32; }

/* ------------------------------------------------------------------------------------------
 * State of one env.
 * The pipes are evenly spaced, so one number places them all: pipe j (counting from the
 * oldest one still on screen) has its left edge at front_x + j * pipe_spacing. gap_top is a
 * ring: the oldest pipe's gap is gap_top[first], the next ones follow modulo FLAPPY_NUM_PIPES.
 * gap, pipe_speed, pipe_spacing and gravity are this episode's: the parameters', or drawn
 * around them when their spread is not 0.
 */
typedef struct {
    double bird_y;  /* top edge of the bird's box */
    double bird_vy; /* px per frame, positive = falling */
    double front_x; /* left edge of the oldest pipe */
    double gap_top[FLAPPY_NUM_PIPES];
    double gap, pipe_speed, pipe_spacing, gravity;
    FlappyRng rng;
    int first; /* ring index of the oldest pipe */
    int tick;  /* frames in this episode */
    int score; /* pipes passed in this episode */
    double episode_return;
} Flappy;

/* Sums over finished episodes, reported as means by flappy_vec_log. */
typedef struct {
    double score;
    double episode_return;
    double episode_length;
    double perf; /* score / 50, capped at 1: a [0, 1] progress measure */
    double gap, pipe_speed, pipe_spacing, gravity; /* the episodes' values, to watch curricula */
    double n;    /* finished episodes */
} FlappyLog;

#define FLAPPY_PERF_SCORE 50

static inline double flappy_draw_gap_top(Flappy* env) {
    return FLAPPY_GAP_TOP_MIN + flappy_rng_unit(&env->rng) * (FLAPPY_GAP_SPAN - env->gap);
}

static inline double flappy_clamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* An episode's value of a parameter with a spread: uniform over the part of [value - spread,
 * value + spread] inside [lo, hi]. A first draw over the whole interval is kept when it falls
 * inside the range (so a spread that stays in range costs one draw); otherwise a second draw
 * spans the part inside. Given where the first landed, each is uniform over that part, so their
 * mix is too, and nothing piles up on a bound. The clamp only absorbs the second draw's rounding. */
static inline double flappy_draw_spread(FlappyRng* rng, double value, double spread, double lo, double hi) {
    double drawn = value + spread * (2.0 * flappy_rng_unit(rng) - 1.0);
    if (lo <= drawn && drawn <= hi) return drawn;
    double low = value - spread > lo ? value - spread : lo, high = value + spread < hi ? value + spread : hi;
    return flappy_clamp(low + (high - low) * flappy_rng_unit(rng), lo, hi);
}

/* p->name, or drawn around it (flappy_draw_spread) when its spread is not 0. */
#define FLAPPY_DRAW_EPISODE_VALUE(env, p, name)                                                       \
    ((p)->name##_spread == 0.0 ? (p)->name                                                            \
                               : flappy_draw_spread(&(env)->rng, (p)->name, (p)->name##_spread,       \
                                                    FLAPPY_MIN_##name, FLAPPY_MAX_##name))

/* Start an episode: this episode's gap, pipe speed, pipe spacing and gravity (drawn in that
 * order, those with a spread), the bird at mid-height moving up as after a flap, then four
 * fresh pipes, oldest first. */
static inline void flappy_reset(Flappy* env, const FlappyParams* p) {
    env->gap = FLAPPY_DRAW_EPISODE_VALUE(env, p, gap);
    env->pipe_speed = FLAPPY_DRAW_EPISODE_VALUE(env, p, pipe_speed);
    env->pipe_spacing = FLAPPY_DRAW_EPISODE_VALUE(env, p, pipe_spacing);
    env->gravity = FLAPPY_DRAW_EPISODE_VALUE(env, p, gravity);
    env->bird_y = FLAPPY_BIRD_START_Y;
    env->bird_vy = -p->flap_speed;
    env->front_x = FLAPPY_FIRST_PIPE_X;
    env->first = 0;
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) env->gap_top[j] = flappy_draw_gap_top(env);
    env->tick = 0;
    env->score = 0;
    env->episode_return = 0.0;
}

/* The first pipe whose right edge is still right of the bird's left edge: the only one that
 * can touch the bird. It is the oldest pipe or the one after it. Returns its ring index. */
static inline int flappy_next_pipe(const Flappy* env, double* next_x) {
    int behind = env->front_x + FLAPPY_PIPE_WIDTH <= FLAPPY_BIRD_X;
    *next_x = behind ? env->front_x + env->pipe_spacing : env->front_x;
    return (env->first + behind) & (FLAPPY_NUM_PIPES - 1);
}

/* ------------------------------------------------------------------------------------------
 * One frame, in this order:
 *  1. bird: a flap (action 1, bird's top below FLAP_CEILING) sets the vertical speed to
 *     -flap_speed; otherwise gravity adds to it, capped at max_fall_speed. Then y += speed;
 *     a bird whose top would rise above BIRD_TOP_MIN stops there, its speed 0.
 *  2. pipes: all move left by pipe_speed. When the oldest pipe's right edge has left the screen
 *     (front_x + PIPE_WIDTH < 0) it is recycled as the newest, pipe_spacing after the last one,
 *     with a new gap top drawn uniformly from [GAP_TOP_MIN, GAP_TOP_MIN + GAP_SPAN - gap).
 *  3. score: the next pipe is passed on the frame its centre moves from right of the bird's
 *     centre to at or left of it.
 *  4. crash: the bird's box overlaps the next pipe's column (strictly) while its top is above
 *     the gap top or its bottom below the gap bottom (upper pipes reach up without end), or
 *     its bottom reaches the ground.
 *  5. reward: reward_pipe per pipe passed, plus reward_crash on a crash, else reward_alive.
 *     terminal on a crash; truncation when the episode reaches max_steps frames without one.
 * Returns the reward; sets *terminal and *truncated. An agent's step is flappy_act, below:
 * frame_skip of these. Its caller writes the observation and, when the episode ended, logs it
 * (flappy_log_episode) and starts the next (flappy_reset).
 */
static inline float flappy_step(Flappy* env, const FlappyParams* p, int flap, bool* terminal, bool* truncated) {
    /* Written without branches where the outcome is a coin toss (the flap, the collision), so
     * that random actions cost no mispredictions; comparisons are combined with & and |. */
    double fall = env->bird_vy + env->gravity;
    fall = fall < p->max_fall_speed ? fall : p->max_fall_speed;
    int flapped = flap & (env->bird_y > FLAPPY_FLAP_CEILING);
    const double new_speed[2] = {fall, -p->flap_speed}; /* an index, not a branch */
    env->bird_vy = new_speed[flapped];
    env->bird_y += env->bird_vy;
    if (env->bird_y < FLAPPY_BIRD_TOP_MIN) { /* only after a strong flap, or weak gravity */
        env->bird_y = FLAPPY_BIRD_TOP_MIN;
        env->bird_vy = 0.0;
    }

    env->front_x -= env->pipe_speed;
    if (env->front_x + FLAPPY_PIPE_WIDTH < 0.0) { /* once every pipe_spacing / pipe_speed frames */
        env->front_x += env->pipe_spacing;
        env->gap_top[env->first] = flappy_draw_gap_top(env);
        env->first = (env->first + 1) & (FLAPPY_NUM_PIPES - 1);
    }

    double next_x;
    int next = flappy_next_pipe(env, &next_x);
    int passed = (next_x <= FLAPPY_SCORE_X) & (next_x + env->pipe_speed > FLAPPY_SCORE_X);

    double y = env->bird_y;
    double top = env->gap_top[next];
    int in_column = next_x < FLAPPY_BIRD_RIGHT;
    int outside_gap = (y < top) | (y + FLAPPY_BIRD_HEIGHT > top + env->gap);
    int crashed = (in_column & outside_gap) | (y >= FLAPPY_GROUND_TOUCH_Y);

    double reward = passed * p->reward_pipe + (crashed ? p->reward_crash : p->reward_alive);
    env->tick += 1;
    env->score += passed;
    env->episode_return += (float)reward;
    int out_of_time = !crashed & (env->tick >= p->max_steps);
    *terminal = crashed;
    *truncated = out_of_time;
    return (float)reward;
}

/* One agent step: the action repeated for frame_skip frames (action repeat, as in Atari), a
 * flap pressed on each of them (flappy_step ignores it above FLAP_CEILING), stopping at the frame
 * that ends the episode (a crash, or max_steps frames: the log and the truncation count frames,
 * whatever frame_skip is). Returns the frames' rewards summed in float, the reward buffer's type;
 * the first frame's reward is taken as it is, so that frame_skip 1 is flappy_step exactly (a
 * sum from 0.0f would turn a -0.0 reward into +0.0). The early stop comes once an episode, so
 * the loop branches predictably. The caller writes one observation, after the last frame. */
static inline float flappy_act(Flappy* env, const FlappyParams* p, int flap, bool* terminal, bool* truncated) {
    float reward = flappy_step(env, p, flap, terminal, truncated);
    for (int frame = 1; frame < p->frame_skip && !(*terminal | *truncated); frame++)
        reward += flappy_step(env, p, flap, terminal, truncated);
    return reward;
}

/* An episode ended: add it to the log. */
static inline void flappy_log_episode(const Flappy* env, FlappyLog* log) {
    double score = env->score;
    log->score += score;
    log->episode_return += env->episode_return;
    log->episode_length += env->tick;
    log->perf += score >= FLAPPY_PERF_SCORE ? 1.0 : score * (1.0 / FLAPPY_PERF_SCORE);
    log->gap += env->gap;
    log->pipe_speed += env->pipe_speed;
    log->pipe_spacing += env->pipe_spacing;
    log->gravity += env->gravity;
    log->n += 1.0;
}

/* ------------------------------------------------------------------------------------------
 * Observation: features (obs_mode "features", the default). Eight float32 values, each
 * clipped to [-1, 1]:
 *   0  bird height: centre y scaled so the top of the screen is -1 and the ground is +1
 *   1  bird vertical speed / max(flap_speed, max_fall_speed), positive = falling
 *   2  next pipe: (its left edge - the bird's left edge) / WORLD_WIDTH
 *   3  next pipe: (gap top - bird top) / GROUND_Y; positive = the bird's top is above the gap
 *   4  next pipe: (gap bottom - bird bottom) / GROUND_Y; negative = the bird's bottom is below it
 *   5-7  the same three for the pipe after it
 * "Next pipe" is the first one whose right edge is right of the bird's left edge. While the
 * bird overlaps a pipe horizontally, a positive 3 or a negative 4 means a crash.
 */
#define FLAPPY_FEATURES 8
#define FLAPPY_OBS_Y_SCALE (2.0 / FLAPPY_GROUND_Y)
#define FLAPPY_OBS_X_SCALE (1.0 / FLAPPY_WORLD_WIDTH)
#define FLAPPY_OBS_GAP_SCALE (1.0 / FLAPPY_GROUND_Y)

/* out[k] = (float)clip(values[k], -1, 1) for the 8 values. With SSE2 (every x86-64), two at a
 * time with minpd / maxpd / cvtpd2ps, which give exactly the scalar results (no NaN arises);
 * compilers otherwise turn the clip into branches. */
static inline void flappy_clip_to_floats(const double* values, float* out) {
#ifdef __SSE2__
    const __m128d one = _mm_set1_pd(1.0), minus_one = _mm_set1_pd(-1.0);
    __m128 floats[4];
    for (int k = 0; k < 4; k++) {
        __m128d pair = _mm_max_pd(_mm_min_pd(_mm_loadu_pd(values + 2 * k), one), minus_one);
        floats[k] = _mm_cvtpd_ps(pair);
    }
    _mm_storeu_ps(out, _mm_movelh_ps(floats[0], floats[1]));
    _mm_storeu_ps(out + 4, _mm_movelh_ps(floats[2], floats[3]));
#else
    for (int k = 0; k < FLAPPY_FEATURES; k++) {
        double v = values[k] < 1.0 ? values[k] : 1.0;
        out[k] = (float)(v > -1.0 ? v : -1.0);
    }
#endif
}

/* The vertical speed as observed, in [-1, 1]; speed_scale is 1 / max(flap_speed, max_fall_speed). */
static inline double flappy_speed_scale(const FlappyParams* p) {
    return 1.0 / (p->flap_speed > p->max_fall_speed ? p->flap_speed : p->max_fall_speed);
}

static inline void flappy_write_features(const Flappy* env, double speed_scale, float* obs) {
    double next_x;
    int next = flappy_next_pipe(env, &next_x);
    double y = env->bird_y, bottom = y + FLAPPY_BIRD_HEIGHT;
    double top0 = env->gap_top[next], top1 = env->gap_top[(next + 1) & (FLAPPY_NUM_PIPES - 1)];
    double values[FLAPPY_FEATURES] = {
        (y + FLAPPY_BIRD_HEIGHT / 2) * FLAPPY_OBS_Y_SCALE - 1.0,
        env->bird_vy * speed_scale,
        (next_x - FLAPPY_BIRD_X) * FLAPPY_OBS_X_SCALE,
        (top0 - y) * FLAPPY_OBS_GAP_SCALE,
        (top0 + env->gap - bottom) * FLAPPY_OBS_GAP_SCALE,
        (next_x + env->pipe_spacing - FLAPPY_BIRD_X) * FLAPPY_OBS_X_SCALE,
        (top1 - y) * FLAPPY_OBS_GAP_SCALE,
        (top1 + env->gap - bottom) * FLAPPY_OBS_GAP_SCALE,
    };
    flappy_clip_to_floats(values, obs);
}

/* ------------------------------------------------------------------------------------------
 * Observation: LIDAR (obs_mode "lidar"). lidar_rays + 1 float32 values:
 *   0 .. rays-1  distance along ray k to the first pipe or ground it meets, / lidar_range,
 *                capped at 1 (1: nothing within range). Ray k leaves the bird's beak (x = LIDAR_X,
 *                the bird's mid-height) at -90 + (k + 0.5) * 180 / rays degrees from the
 *                horizontal, y down: the half-plane ahead, top to bottom. The sky is empty
 *                (upper pipes reach up without end, so a ray rising above them meets nothing).
 *   rays         the bird's vertical speed, as feature 1 (one frame of rays does not show it).
 * Analytic, in float32 (four rays at a time where the compiler vectorizes), ray against the
 * ground line and against each pipe column within range: a ray entering a column outside the
 * gap meets the pipe's front face; entering inside the gap, it meets the gap's top or bottom
 * edge if it reaches it before leaving the column.
 */
typedef struct {
    float *dx, *dy, *inv_dx, *inv_dy; /* one allocation, rays floats each */
    int count;
} FlappyRays;

#define FLAPPY_PI 3.14159265358979323846 /* M_PI is not ISO C; this rounds to the same double as math.pi */

/* The direction table, from libm's cos and sin in double (the twin uses the same ones). */
static inline int flappy_rays_init(FlappyRays* rays, int count) {
    rays->count = count;
    rays->dx = (float*)malloc(4 * (size_t)count * sizeof(float));
    if (rays->dx == NULL) return -1;
    rays->dy = rays->dx + count;
    rays->inv_dx = rays->dy + count;
    rays->inv_dy = rays->inv_dx + count;
    for (int k = 0; k < count; k++) {
        double radians = (-90.0 + (k + 0.5) * (180.0 / count)) * (FLAPPY_PI / 180.0);
        rays->dx[k] = (float)cos(radians);
        rays->dy[k] = (float)sin(radians);
        rays->inv_dx[k] = 1.0f / rays->dx[k];
        rays->inv_dy[k] = 1.0f / rays->dy[k]; /* +-inf for a horizontal ray: its edge tests fail */
    }
    return 0;
}

static inline void flappy_write_lidar(const Flappy* env, const FlappyParams* p, const FlappyRays* rays,
                                      double speed_scale, float* obs) {
    const int n = rays->count;
    const float *dy = rays->dy, *inv_dx = rays->inv_dx, *inv_dy = rays->inv_dy;
    const float ox = (float)FLAPPY_LIDAR_X, oy = (float)(env->bird_y + FLAPPY_BIRD_HEIGHT / 2);
    const float range = (float)p->lidar_range, beak_to_ground = (float)FLAPPY_GROUND_Y - oy;
    const float to_ground = beak_to_ground > 0.0f ? beak_to_ground : 0.0f; /* a beak in the ground: 0 */
    for (int k = 0; k < n; k++) {
        float t = to_ground * inv_dy[k];
        obs[k] = dy[k] > 0.0f && t < range ? t : range;
    }
    double next_x;
    int next = flappy_next_pipe(env, &next_x);
    int kept_ahead = FLAPPY_NUM_PIPES - ((next - env->first) & (FLAPPY_NUM_PIPES - 1));
    /* The pipes from the next one, while their front face is within range of the beak. */
    for (int j = 0; j < kept_ahead; j++) {
        double x = next_x + j * env->pipe_spacing;
        if (x - FLAPPY_LIDAR_X >= p->lidar_range) break;
        double top_d = env->gap_top[(next + j) & (FLAPPY_NUM_PIPES - 1)];
        const float front = (float)x - ox, back = (float)(x + FLAPPY_PIPE_WIDTH) - ox;
        const float top = (float)top_d - oy, bottom = (float)(top_d + env->gap) - oy; /* relative to the beak */
        for (int k = 0; k < n; k++) {
            float t_in = front * inv_dx[k];
            t_in = t_in > 0.0f ? t_in : 0.0f; /* 0: the beak is in the column already */
            float t_out = back * inv_dx[k];
            float y_in = t_in * dy[k];
            int on_face = (y_in < top) | (y_in > bottom);
            float t_edge = (dy[k] < 0.0f ? top : bottom) * inv_dy[k];
            int on_edge = (t_edge >= t_in) & (t_edge < t_out);
            float t = on_face ? t_in : t_edge;
            int hit = (on_face | on_edge) & (t_out > 0.0f) & (t < obs[k]);
            obs[k] = hit ? t : obs[k];
        }
    }
    const float per_range = (float)(1.0 / p->lidar_range);
    for (int k = 0; k < n; k++) {
        float v = obs[k] * per_range;
        obs[k] = v < 1.0f ? v : 1.0f;
    }
    double speed = env->bird_vy * speed_scale;
    obs[n] = (float)(speed < -1.0 ? -1.0 : (speed > 1.0 ? 1.0 : speed));
}

/* ------------------------------------------------------------------------------------------
 * Observation: pixels (obs_mode "pixels"). pixels_stack grayscale frames of pixels_height x
 * pixels_width (uint8), oldest first, drawn by the rasterizer of render.h: the newest frame
 * shows the state after this step. At an episode's start every frame of the stack is its first
 * frame. A frame shows the world from y = PIXELS_TOP down, not only the screen: a bird above the
 * screen must still see itself, or "fly above everything" becomes a trap its policy cannot see
 * its way out of. The score is not drawn: it is not the agent's business.
 */
#include "render.h"

static inline void flappy_write_pixels(const Flappy* env, const FlappyParams* p, bool new_episode, uint8_t* obs) {
    const size_t frame = (size_t)p->pixels_width * (size_t)p->pixels_height;
    uint8_t* newest = obs + (size_t)(p->pixels_stack - 1) * frame;
    if (!new_episode) memmove(obs, obs + frame, (size_t)(p->pixels_stack - 1) * frame);
    FlappyView view;
    flappy_view(env, &view);
    view.show_score = false;
    view.top = FLAPPY_PIXELS_TOP;
    flappy_draw_view(&view, newest, p->pixels_width, p->pixels_height, 1);
    if (new_episode)
        for (int s = 0; s < p->pixels_stack - 1; s++) memcpy(obs + (size_t)s * frame, newest, frame);
}

/* ------------------------------------------------------------------------------------------
 * The shape of one env's observation, and its element type.
 */
typedef struct {
    int ndim;
    int shape[3];
    int is_uint8; /* pixels: uint8 in [0, 255]; otherwise float32 */
    size_t size;  /* elements */
} FlappyObsSpec;

static inline FlappyObsSpec flappy_obs_spec(const FlappyParams* p) {
    FlappyObsSpec spec = {1, {FLAPPY_FEATURES, 0, 0}, 0, FLAPPY_FEATURES};
    if (p->obs_mode == FLAPPY_OBS_LIDAR) {
        spec.shape[0] = p->lidar_rays + 1;
        spec.size = (size_t)p->lidar_rays + 1;
    } else if (p->obs_mode == FLAPPY_OBS_PIXELS) {
        spec = (FlappyObsSpec){3, {p->pixels_stack, p->pixels_height, p->pixels_width}, 1,
                               (size_t)p->pixels_stack * (size_t)p->pixels_height * (size_t)p->pixels_width};
    }
    return spec;
}

/* ------------------------------------------------------------------------------------------
 * A vector of envs sharing one parameter set, stepping in place on caller-owned buffers:
 * observations (num_envs x the spec's shape, float32 or uint8), actions (int32), rewards
 * (float32), terminals and truncations (bool). This is what the Python binding drives.
 *
 * Two ways to show an episode's end (Gymnasium calls them autoreset modes):
 *  - same step (PufferLib's way, the default): on the step an episode ends, its env starts the
 *    next episode at once and the observation written is the new episode's first one.
 *  - next step (Gymnasium's default): on the step an episode ends, the env keeps its last state
 *    and the observation written is the episode's last one; the following step starts the next
 *    episode instead of stepping, ignoring that env's action, and reports its first
 *    observation, reward 0, no terminal, no truncation.
 * Either way the episode is logged on the step it ends, and the next episode is the next thing
 * drawn from the env's generator, so an env's games are the same in both modes.
 */
typedef struct {
    FlappyParams params;
    FlappyObsSpec obs_spec;
    double speed_scale;
    FlappyRays rays; /* lidar only */
    int num_envs;
    Flappy* envs;
    void* observations;
    const int32_t* actions;
    float* rewards;
    bool* terminals;
    bool* truncations;
    bool* new_episode_due; /* next-step mode: env i's episode ended on the last step; else NULL */
    uint64_t first_stream; /* env i draws from generator stream first_stream + i (0 unless set) */
    FlappyLog log;
} FlappyVec;

/* Write the observation of one env into obs; new_episode: it (re)started on this call. mode
 * is a constant where this is inlined, so each observation loop keeps only its own branch. */
static inline void flappy_write_obs(const Flappy* env, const FlappyParams* p, const FlappyRays* rays,
                                    double speed_scale, int mode, bool new_episode, void* obs) {
    if (mode == FLAPPY_OBS_FEATURES)
        flappy_write_features(env, speed_scale, (float*)obs);
    else if (mode == FLAPPY_OBS_LIDAR)
        flappy_write_lidar(env, p, rays, speed_scale, (float*)obs);
    else
        flappy_write_pixels(env, p, new_episode, (uint8_t*)obs);
}

/* Where env i's observation starts in the buffer. */
static inline void* flappy_vec_obs(const FlappyVec* vec, int i) {
    size_t bytes = vec->obs_spec.size * (vec->obs_spec.is_uint8 ? 1 : sizeof(float));
    return (char*)vec->observations + (size_t)i * bytes;
}

/* New episodes in every env, reseeding env i with (seed, first_stream + i) unless reseed is 0;
 * zero the step outputs. */
static inline void flappy_vec_start(FlappyVec* vec, int reseed, uint64_t seed) {
    for (int i = 0; i < vec->num_envs; i++) {
        if (reseed) flappy_rng_seed(&vec->envs[i].rng, seed, vec->first_stream + (uint64_t)i);
        flappy_reset(&vec->envs[i], &vec->params);
        if (vec->new_episode_due != NULL) vec->new_episode_due[i] = false;
        flappy_write_obs(&vec->envs[i], &vec->params, &vec->rays, vec->speed_scale, vec->params.obs_mode, true,
                         flappy_vec_obs(vec, i));
        vec->rewards[i] = 0.0f;
        vec->terminals[i] = false;
        vec->truncations[i] = false;
    }
}

static inline void flappy_vec_reset(FlappyVec* vec, uint64_t seed) { flappy_vec_start(vec, 1, seed); }

/* Start a new episode in every env, keeping each generator where it is. */
static inline void flappy_vec_restart(FlappyVec* vec) { flappy_vec_start(vec, 0, 0); }

static inline void flappy_vec_free(FlappyVec* vec) {
    free(vec->envs);
    free(vec->rays.dx);
    free(vec->new_episode_due);
    vec->envs = NULL;
    vec->rays.dx = NULL;
    vec->new_episode_due = NULL;
    vec->num_envs = 0;
}

/* 0 on success; -1 if the parameters or num_envs are out of range, -2 if memory ran out (message
 * in err either way).
 * Resolves the parameters (difficulty preset, range checks), seeds and resets every env, so
 * the observations are valid on return. The observation buffer must fit flappy_obs_spec.
 * next_step: the next-step autoreset mode (above) instead of same-step. */
static inline int flappy_vec_init(FlappyVec* vec, const FlappyParams* params, int num_envs, uint64_t seed,
                                  void* observations, const int32_t* actions, float* rewards, bool* terminals,
                                  bool* truncations, int next_step, char* err, size_t err_size) {
    memset(vec, 0, sizeof(*vec));
    vec->params = *params;
    if (flappy_resolve_params(&vec->params, err, err_size) != 0) return -1;
    if (num_envs < 1) {
        snprintf(err, err_size, "num_envs must be at least 1, got %d", num_envs);
        return -1;
    }
    vec->envs = (Flappy*)calloc((size_t)num_envs, sizeof(Flappy));
    if (next_step) vec->new_episode_due = (bool*)calloc((size_t)num_envs, sizeof(bool));
    if (vec->envs == NULL || (next_step && vec->new_episode_due == NULL) ||
        (vec->params.obs_mode == FLAPPY_OBS_LIDAR && flappy_rays_init(&vec->rays, vec->params.lidar_rays) != 0)) {
        flappy_vec_free(vec);
        snprintf(err, err_size, "out of memory allocating %d envs", num_envs);
        return -2;
    }
    vec->obs_spec = flappy_obs_spec(&vec->params);
    vec->speed_scale = flappy_speed_scale(&vec->params);
    vec->num_envs = num_envs;
    vec->observations = observations;
    vec->actions = actions;
    vec->rewards = rewards;
    vec->terminals = terminals;
    vec->truncations = truncations;
    flappy_vec_reset(vec, seed);
    return 0;
}

/* Index of the first action that is neither 0 nor 1, or -1 if all are valid. Checked before a
 * step so that a bad action changes nothing. */
static inline int flappy_vec_find_bad_action(const FlappyVec* vec) {
    uint32_t any_bad = 0;
    for (int i = 0; i < vec->num_envs; i++) any_bad |= (uint32_t)vec->actions[i] > 1u;
    if (!any_bad) return -1;
    for (int i = 0; i < vec->num_envs; i++)
        if ((uint32_t)vec->actions[i] > 1u) return i;
    return -1;
}

/* mode and next_step are constants where this is inlined, so each loop keeps only its branches. */
static inline void flappy_vec_step_mode(FlappyVec* vec, const int mode, const int next_step) {
    /* restrict: stores to the envs' doubles never alias the parameters, so the compiler need
     * not reload them for every env (and a call with few envs copies nothing). */
    const FlappyParams* restrict params = &vec->params;
    const FlappyRays* restrict rays = &vec->rays;
    const double speed_scale = vec->speed_scale;
    const size_t obs_bytes = vec->obs_spec.size * (mode == FLAPPY_OBS_PIXELS ? 1 : sizeof(float));
    FlappyLog log = vec->log;
    Flappy* envs = vec->envs;
    const int32_t* actions = vec->actions;
    char* observations = (char*)vec->observations;
    float* rewards = vec->rewards;
    bool *terminals = vec->terminals, *truncations = vec->truncations;
    bool* new_episode_due = vec->new_episode_due;
    for (int i = 0; i < vec->num_envs; i++) {
        void* obs = observations + (size_t)i * obs_bytes;
        if (next_step && new_episode_due[i]) { /* the episode ended on the last step: start the next */
            new_episode_due[i] = false;
            flappy_reset(&envs[i], params);
            rewards[i] = 0.0f;
            terminals[i] = truncations[i] = false;
            flappy_write_obs(&envs[i], params, rays, speed_scale, mode, true, obs);
            continue;
        }
        rewards[i] = flappy_act(&envs[i], params, actions[i], &terminals[i], &truncations[i]);
        bool ended = terminals[i] | truncations[i];
        if (ended) { /* about once a hundred frames under random play */
            flappy_log_episode(&envs[i], &log);
            if (next_step)
                new_episode_due[i] = true;
            else
                flappy_reset(&envs[i], params); /* continuing the env's random sequence */
        }
        flappy_write_obs(&envs[i], params, rays, speed_scale, mode, !next_step & ended, obs);
    }
    vec->log = log;
}

/* Step every env once. The actions must be valid (flappy_vec_find_bad_action). */
static inline void flappy_vec_step(FlappyVec* vec) {
    int next_step = vec->new_episode_due != NULL;
    switch (vec->params.obs_mode * 2 + next_step) {
    case FLAPPY_OBS_FEATURES * 2: flappy_vec_step_mode(vec, FLAPPY_OBS_FEATURES, 0); break;
    case FLAPPY_OBS_FEATURES * 2 + 1: flappy_vec_step_mode(vec, FLAPPY_OBS_FEATURES, 1); break;
    case FLAPPY_OBS_LIDAR * 2: flappy_vec_step_mode(vec, FLAPPY_OBS_LIDAR, 0); break;
    case FLAPPY_OBS_LIDAR * 2 + 1: flappy_vec_step_mode(vec, FLAPPY_OBS_LIDAR, 1); break;
    case FLAPPY_OBS_PIXELS * 2: flappy_vec_step_mode(vec, FLAPPY_OBS_PIXELS, 0); break;
    default: flappy_vec_step_mode(vec, FLAPPY_OBS_PIXELS, 1); break;
    }
}

/* Means over the episodes finished since the last call, then clear. .n is their number; with
 * none, every mean is 0. */
static inline FlappyLog flappy_vec_log(FlappyVec* vec) {
    FlappyLog sum = vec->log, mean = {0};
    memset(&vec->log, 0, sizeof(vec->log));
    mean.n = sum.n;
    if (sum.n > 0) {
        double inv = 1.0 / sum.n;
        mean.score = sum.score * inv;
        mean.episode_return = sum.episode_return * inv;
        mean.episode_length = sum.episode_length * inv;
        mean.perf = sum.perf * inv;
        mean.gap = sum.gap * inv;
        mean.pipe_speed = sum.pipe_speed * inv;
        mean.pipe_spacing = sum.pipe_spacing * inv;
        mean.gravity = sum.gravity * inv;
    }
    return mean;
}

#endif /* FLAPPY_H */
