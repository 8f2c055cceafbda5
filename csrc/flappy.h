/* flappy.h: Flappy Bird for reinforcement learning. The whole game is in this header.
 *
 * It has no Python in it: csrc/binding.c wraps it for Python, and plain C programs (the
 * sanitizer test, the benchmark) include it directly.
 *
 * Coordinates are the original game's screen pixels: x grows to the right, y grows DOWN,
 * one step is one frame at 30 frames per second. The bird stays at a fixed x; the pipes
 * scroll left. All positions are doubles so that the pure-Python twin
 * (src/flappy_rl/reference.py), which uses Python floats, reproduces every number bit for bit.
 * Build with -ffp-contract=off so that no compiler fuses a*b+c into one rounding.
 *
 * Reading order: constants, parameter table, random numbers, state, reset, step,
 * observations, the vector of envs that the binding drives.
 */
#ifndef FLAPPY_H
#define FLAPPY_H

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
 * Parameters, defined once. X(kind, name, default, min, max, doc). kind is REAL (double) or
 * INT (int). This table generates the FlappyParams fields, the defaults, the range checks,
 * and through csrc/binding.c the keyword parsing and flappy_rl.binding.params().
 * Ranges are inclusive. Their limits keep the rules' invariants true:
 *  - pipe_speed <= 40 < PIPE_WIDTH + BIRD_WIDTH: a pipe overlaps the bird for at least two
 *    frames and its centre crosses the bird's centre while it is the next pipe (no tunnelling);
 *  - pipe_spacing >= 100 > PIPE_WIDTH + BIRD_WIDTH: one pipe at a time can touch the bird, and
 *    four pipes cover the screen (above);
 *  - gap <= 240 < GAP_SPAN: the gap fits between 0.2 and 0.8 of the ground's height.
 */
#define FLAPPY_PARAMS(X)                                                                          \
    X(REAL, gap, 100.0, 30.0, 240.0, "height of the opening between upper and lower pipe, px")     \
    X(REAL, pipe_speed, 4.0, 0.5, 40.0, "distance the pipes move left each frame, px")             \
    X(REAL, pipe_spacing, 144.0, 100.0, 1000.0, "horizontal distance between consecutive pipes, px") \
    X(REAL, gravity, 1.0, 0.0, 10.0, "added to the fall speed each frame without a flap, px/frame") \
    X(REAL, flap_speed, 9.0, 1.0, 30.0, "upward speed a flap sets, px/frame")                      \
    X(REAL, max_fall_speed, 10.0, 1.0, 50.0, "cap on the fall speed, px/frame")                    \
    X(REAL, reward_pipe, 1.0, -100.0, 100.0, "reward for each pipe passed")                        \
    X(REAL, reward_crash, -1.0, -100.0, 100.0, "reward on the frame the bird crashes")             \
    X(REAL, reward_alive, 0.0, -100.0, 100.0, "reward on every frame without a crash")             \
    X(INT, max_steps, 10000, 1, 1000000000, "frames after which an episode is truncated")

#define FLAPPY_CTYPE_REAL double
#define FLAPPY_CTYPE_INT int

typedef struct {
#define FLAPPY_PARAM_FIELD(kind, name, dflt, lo, hi, doc) FLAPPY_CTYPE_##kind name;
    FLAPPY_PARAMS(FLAPPY_PARAM_FIELD)
} FlappyParams;

static inline FlappyParams flappy_default_params(void) {
    FlappyParams p;
#define FLAPPY_PARAM_DEFAULT(kind, name, dflt, lo, hi, doc) p.name = dflt;
    FLAPPY_PARAMS(FLAPPY_PARAM_DEFAULT)
    return p;
}

/* 0 when every parameter is in range; otherwise -1 and a one-line message in err. Written as
 * !(lo <= v && v <= hi) so that NaN is refused too. */
static inline int flappy_check_params(const FlappyParams* p, char* err, size_t err_size) {
#define FLAPPY_PARAM_CHECK(kind, name, dflt, lo, hi, doc)                                         \
    if (!((double)(lo) <= (double)p->name && (double)p->name <= (double)(hi))) {                  \
        snprintf(err, err_size, "%s must be in [%.17g, %.17g], got %.17g", #name, (double)(lo),  \
                 (double)(hi), (double)p->name);                                                  \
        return -1;                                                                                \
    }
    FLAPPY_PARAMS(FLAPPY_PARAM_CHECK)
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
 */
typedef struct {
    double bird_y;  /* top edge of the bird's box */
    double bird_vy; /* px per frame, positive = falling */
    double front_x; /* left edge of the oldest pipe */
    double gap_top[FLAPPY_NUM_PIPES];
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
    double n;    /* finished episodes */
} FlappyLog;

#define FLAPPY_PERF_SCORE 50

static inline double flappy_draw_gap_top(Flappy* env, const FlappyParams* p) {
    return FLAPPY_GAP_TOP_MIN + flappy_rng_unit(&env->rng) * (FLAPPY_GAP_SPAN - p->gap);
}

/* Start an episode: bird at mid-height moving up as after a flap, four fresh pipes.
 * Draws FLAPPY_NUM_PIPES numbers from the env's generator, oldest pipe first. */
static inline void flappy_reset(Flappy* env, const FlappyParams* p) {
    env->bird_y = FLAPPY_BIRD_START_Y;
    env->bird_vy = -p->flap_speed;
    env->front_x = FLAPPY_FIRST_PIPE_X;
    env->first = 0;
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) env->gap_top[j] = flappy_draw_gap_top(env, p);
    env->tick = 0;
    env->score = 0;
    env->episode_return = 0.0;
}

/* The first pipe whose right edge is still right of the bird's left edge: the only one that
 * can touch the bird. It is the oldest pipe or the one after it. Returns its ring index. */
static inline int flappy_next_pipe(const Flappy* env, const FlappyParams* p, double* next_x) {
    int behind = env->front_x + FLAPPY_PIPE_WIDTH <= FLAPPY_BIRD_X;
    *next_x = behind ? env->front_x + p->pipe_spacing : env->front_x;
    return (env->first + behind) & (FLAPPY_NUM_PIPES - 1);
}

/* ------------------------------------------------------------------------------------------
 * Observations. Eight float32 values, each clipped to [-1, 1]:
 *   0  bird height: centre y scaled so the top of the screen is -1 and the ground is +1
 *   1  bird vertical speed / max(flap_speed, max_fall_speed), positive = falling
 *   2  next pipe: (its left edge - the bird's left edge) / WORLD_WIDTH
 *   3  next pipe: (gap top - bird top) / GROUND_Y; negative = the bird's top is above the gap
 *   4  next pipe: (gap bottom - bird bottom) / GROUND_Y; negative = the bird's bottom is below it
 *   5-7  the same three for the pipe after it
 * "Next pipe" is the first one whose right edge is right of the bird's left edge. While the
 * bird overlaps a pipe horizontally, a negative 3 or 4 means a crash.
 */
#define FLAPPY_OBS_SIZE 8
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
    for (int k = 0; k < FLAPPY_OBS_SIZE; k++) {
        double v = values[k] < 1.0 ? values[k] : 1.0;
        out[k] = (float)(v > -1.0 ? v : -1.0);
    }
#endif
}

static inline void flappy_write_obs(const Flappy* env, const FlappyParams* p, double speed_scale, float* obs) {
    double next_x;
    int next = flappy_next_pipe(env, p, &next_x);
    double y = env->bird_y, bottom = y + FLAPPY_BIRD_HEIGHT;
    double top0 = env->gap_top[next], top1 = env->gap_top[(next + 1) & (FLAPPY_NUM_PIPES - 1)];
    double values[FLAPPY_OBS_SIZE] = {
        (y + FLAPPY_BIRD_HEIGHT / 2) * FLAPPY_OBS_Y_SCALE - 1.0,
        env->bird_vy * speed_scale,
        (next_x - FLAPPY_BIRD_X) * FLAPPY_OBS_X_SCALE,
        (top0 - y) * FLAPPY_OBS_GAP_SCALE,
        (top0 + p->gap - bottom) * FLAPPY_OBS_GAP_SCALE,
        (next_x + p->pipe_spacing - FLAPPY_BIRD_X) * FLAPPY_OBS_X_SCALE,
        (top1 - y) * FLAPPY_OBS_GAP_SCALE,
        (top1 + p->gap - bottom) * FLAPPY_OBS_GAP_SCALE,
    };
    flappy_clip_to_floats(values, obs);
}

/* ------------------------------------------------------------------------------------------
 * One frame, in this order:
 *  1. bird: a flap (action 1, bird's top below FLAP_CEILING) sets the vertical speed to
 *     -flap_speed; otherwise gravity adds to it, capped at max_fall_speed. Then y += speed.
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
 *     Either way the episode is logged and the env resets itself at once, continuing its
 *     random sequence, so the observation written is the first of the new episode.
 * Returns the reward written; sets *terminal and *truncated.
 */
static inline float flappy_step(Flappy* env, const FlappyParams* p, double speed_scale, int flap, FlappyLog* log,
                                float* obs, bool* terminal, bool* truncated) {
    /* Written without branches where the outcome is a coin toss (the flap, the collision), so
     * that random actions cost no mispredictions; comparisons are combined with & and |. */
    double fall = env->bird_vy + p->gravity;
    fall = fall < p->max_fall_speed ? fall : p->max_fall_speed;
    int flapped = flap & (env->bird_y > FLAPPY_FLAP_CEILING);
    const double new_speed[2] = {fall, -p->flap_speed}; /* an index, not a branch */
    env->bird_vy = new_speed[flapped];
    env->bird_y += env->bird_vy;

    env->front_x -= p->pipe_speed;
    if (env->front_x + FLAPPY_PIPE_WIDTH < 0.0) { /* once every pipe_spacing / pipe_speed frames */
        env->front_x += p->pipe_spacing;
        env->gap_top[env->first] = flappy_draw_gap_top(env, p);
        env->first = (env->first + 1) & (FLAPPY_NUM_PIPES - 1);
    }

    double next_x;
    int next = flappy_next_pipe(env, p, &next_x);
    int passed = (next_x <= FLAPPY_SCORE_X) & (next_x + p->pipe_speed > FLAPPY_SCORE_X);

    double y = env->bird_y;
    double top = env->gap_top[next];
    int in_column = next_x < FLAPPY_BIRD_RIGHT;
    int outside_gap = (y < top) | (y + FLAPPY_BIRD_HEIGHT > top + p->gap);
    int crashed = (in_column & outside_gap) | (y >= FLAPPY_GROUND_TOUCH_Y);

    double reward = passed * p->reward_pipe + (crashed ? p->reward_crash : p->reward_alive);
    env->tick += 1;
    env->score += passed;
    env->episode_return += (float)reward;
    int out_of_time = !crashed & (env->tick >= p->max_steps);
    *terminal = crashed;
    *truncated = out_of_time;

    if (crashed | out_of_time) { /* about once a hundred frames under random play */
        double score = env->score;
        log->score += score;
        log->episode_return += env->episode_return;
        log->episode_length += env->tick;
        log->perf += score >= FLAPPY_PERF_SCORE ? 1.0 : score * (1.0 / FLAPPY_PERF_SCORE);
        log->n += 1.0;
        flappy_reset(env, p);
    }
    flappy_write_obs(env, p, speed_scale, obs);
    return (float)reward;
}

/* ------------------------------------------------------------------------------------------
 * A vector of envs sharing one parameter set, stepping in place on caller-owned buffers:
 * observations (num_envs x FLAPPY_OBS_SIZE float32), actions (int32), rewards (float32),
 * terminals and truncations (bool). This is what the Python binding drives.
 */
typedef struct {
    FlappyParams params;
    double speed_scale; /* 1 / max(flap_speed, max_fall_speed): observation 1's scale */
    int num_envs;
    Flappy* envs;
    float* observations;
    const int32_t* actions;
    float* rewards;
    bool* terminals;
    bool* truncations;
    FlappyLog log;
} FlappyVec;

/* Seed env i with (seed, stream i) and start a new episode in every env; zero the step outputs. */
static inline void flappy_vec_reset(FlappyVec* vec, uint64_t seed) {
    for (int i = 0; i < vec->num_envs; i++) {
        Flappy* env = &vec->envs[i];
        flappy_rng_seed(&env->rng, seed, (uint64_t)i);
        flappy_reset(env, &vec->params);
        flappy_write_obs(env, &vec->params, vec->speed_scale, vec->observations + (size_t)i * FLAPPY_OBS_SIZE);
        vec->rewards[i] = 0.0f;
        vec->terminals[i] = false;
        vec->truncations[i] = false;
    }
}

/* Start a new episode in every env, keeping each generator where it is. */
static inline void flappy_vec_restart(FlappyVec* vec) {
    for (int i = 0; i < vec->num_envs; i++) {
        flappy_reset(&vec->envs[i], &vec->params);
        flappy_write_obs(&vec->envs[i], &vec->params, vec->speed_scale,
                         vec->observations + (size_t)i * FLAPPY_OBS_SIZE);
        vec->rewards[i] = 0.0f;
        vec->terminals[i] = false;
        vec->truncations[i] = false;
    }
}

/* 0 on success; -1 if the parameters are out of range (message in err) or memory ran out.
 * Seeds and resets every env, so the observations are valid on return. */
static inline int flappy_vec_init(FlappyVec* vec, const FlappyParams* params, int num_envs, uint64_t seed,
                                  float* observations, const int32_t* actions, float* rewards, bool* terminals,
                                  bool* truncations, char* err, size_t err_size) {
    memset(vec, 0, sizeof(*vec));
    if (flappy_check_params(params, err, err_size) != 0) return -1;
    if (num_envs < 1) {
        snprintf(err, err_size, "num_envs must be at least 1, got %d", num_envs);
        return -1;
    }
    vec->envs = (Flappy*)calloc((size_t)num_envs, sizeof(Flappy));
    if (vec->envs == NULL) {
        snprintf(err, err_size, "out of memory allocating %d envs", num_envs);
        return -1;
    }
    vec->params = *params;
    double top_speed = params->flap_speed > params->max_fall_speed ? params->flap_speed : params->max_fall_speed;
    vec->speed_scale = 1.0 / top_speed;
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

/* Step every env once. The actions must be valid (flappy_vec_find_bad_action). */
static inline void flappy_vec_step(FlappyVec* vec) {
    /* Local copies: stores to the envs' doubles could otherwise alias the parameters and force
     * the compiler to reload them for every env. */
    const FlappyParams params = vec->params;
    const double speed_scale = vec->speed_scale;
    FlappyLog log = vec->log;
    Flappy* envs = vec->envs;
    const int32_t* actions = vec->actions;
    float *observations = vec->observations, *rewards = vec->rewards;
    bool *terminals = vec->terminals, *truncations = vec->truncations;
    for (int i = 0; i < vec->num_envs; i++) {
        rewards[i] = flappy_step(&envs[i], &params, speed_scale, actions[i], &log,
                                 observations + (size_t)i * FLAPPY_OBS_SIZE, &terminals[i], &truncations[i]);
    }
    vec->log = log;
}

/* Means over the episodes finished since the last call, then clear. *n is their number; with
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
    }
    return mean;
}

static inline void flappy_vec_free(FlappyVec* vec) {
    free(vec->envs);
    vec->envs = NULL;
    vec->num_envs = 0;
}

#endif /* FLAPPY_H */
