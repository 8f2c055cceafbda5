/* core_check.c: a plain C program over csrc/flappy.h, with no Python. It steps vectors of envs
 * under random and scripted play, in every observation mode, at default and extreme
 * parameters, and checks invariants after every step. tests/test_c_core.py builds it with
 * AddressSanitizer and UndefinedBehaviorSanitizer and runs it, and runs it under valgrind.
 * Exits 0 when everything holds.
 *
 * usage: core_check [total_env_steps]   (default 1000000: the defaults get that many per run,
 * the other parameter sets a tenth)
 */
#include "flappy.h"

#define NUM_ENVS 64

static int failures = 0;
#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
            if (++failures > 20) exit(1);                                \
        }                                                                \
    } while (0)

/* The tests' scripted player, from the state: flap when the bird's bottom would fall below the
 * next gap's bottom. */
static int scripted_action(const Flappy* env) {
    double next_x;
    int next = flappy_next_pipe(env, &next_x);
    double bottom_clearance = env->gap_top[next] + env->gap - (env->bird_y + FLAPPY_BIRD_HEIGHT);
    return bottom_clearance - (env->bird_vy + env->gravity) < 0;
}

typedef struct {
    uint64_t checksum;
    long episodes, pipes;
} RunSummary;

static uint64_t fnv1a(uint64_t hash, const void* data, size_t size) {
    const uint8_t* bytes = (const uint8_t*)data;
    for (size_t k = 0; k < size; k++) hash = (hash ^ bytes[k]) * 1099511628211ULL;
    return hash;
}

/* Every observation value within its mode's bounds (features [-1, 1]; lidar distances [0, 1]
 * and the speed [-1, 1]; pixels are bytes, always in range). */
static void check_observation(const FlappyVec* vec, int i) {
    const FlappyObsSpec* spec = &vec->obs_spec;
    if (spec->is_uint8) return;
    const float* o = (const float*)vec->observations + (size_t)i * spec->size;
    int lidar = vec->params.obs_mode == FLAPPY_OBS_LIDAR;
    for (size_t k = 0; k < spec->size; k++) {
        float low = lidar && k + 1 < spec->size ? 0.0f : -1.0f;
        CHECK(o[k] >= low && o[k] <= 1.0f, "obs[%zu] = %g out of [%g, 1]", k, o[k], low);
    }
}

/* next_step: Gymnasium's next-step autoreset (csrc/flappy.h), else PufferLib's same-step. */
static RunSummary run(const FlappyParams* params, long env_steps, uint64_t seed, int next_step) {
    RunSummary out = {1469598103934665603ULL, 0, 0};
    char err[256];
    FlappyParams resolved = *params;
    CHECK(flappy_resolve_params(&resolved, err, sizeof(err)) == 0, "parameters rejected: %s", err);
    FlappyObsSpec spec = flappy_obs_spec(&resolved);
    size_t obs_bytes = NUM_ENVS * spec.size * (spec.is_uint8 ? 1 : sizeof(float));
    void* obs = malloc(obs_bytes);
    int32_t actions[NUM_ENVS] = {0};
    float rewards[NUM_ENVS];
    bool terminals[NUM_ENVS], truncations[NUM_ENVS];
    FlappyVec vec;
    int status = flappy_vec_init(&vec, params, NUM_ENVS, seed, obs, actions, rewards, terminals, truncations, next_step, err,
                                 sizeof(err));
    CHECK(status == 0, "vec_init failed: %s", err);
    if (status != 0) {
        free(obs);
        return out;
    }
    FlappyRng coin;
    flappy_rng_seed(&coin, seed, 999);
    const FlappyParams* p = &vec.params;
    double logged_episodes = 0;
    for (long t = 0; t < env_steps / NUM_ENVS; t++) {
        for (int i = 0; i < NUM_ENVS; i++) {
            int scripted = scripted_action(&vec.envs[i]);
            actions[i] = (flappy_rng_next(&coin) % 100) < 4 ? !scripted : scripted; /* mostly good play */
        }
        if (t % 1000 == 999) actions[t % NUM_ENVS] = 2; /* a bad action is found, not stepped */
        int bad = flappy_vec_find_bad_action(&vec);
        if (t % 1000 == 999) {
            CHECK(bad == (int)(t % NUM_ENVS), "bad action at %d reported at %d", (int)(t % NUM_ENVS), bad);
            actions[t % NUM_ENVS] = 0;
        } else {
            CHECK(bad == -1, "valid actions reported bad at %d", bad);
        }
        bool was_due[NUM_ENVS];
        Flappy before[NUM_ENVS]; /* the states the step starts from, for its replay below */
        for (int i = 0; i < NUM_ENVS; i++) was_due[i] = next_step && vec.new_episode_due[i];
        memcpy(before, vec.envs, sizeof(before));
        flappy_vec_step(&vec);
        out.checksum = fnv1a(out.checksum, obs, obs_bytes);
        for (int i = 0; i < NUM_ENVS; i++) {
            const Flappy* env = &vec.envs[i];
            check_observation(&vec, i);
            CHECK(!(terminals[i] && truncations[i]), "terminal and truncated at once");
            if (was_due[i]) { /* next-step mode: this step only started the next episode */
                CHECK(rewards[i] == 0.0f && !terminals[i] && !truncations[i] && env->tick == 0 && env->score == 0,
                      "restart step: reward %g, tick %d", rewards[i], env->tick);
                continue;
            }
            /* The step as the rules word it, replayed frame by frame on a copy of the state
             * it started from: the action on each of up to frame_skip frames, ending at the
             * frame that ends the episode, the frames' rewards summed in float. */
            Flappy replay = before[i];
            float step_reward = 0.0f;
            bool term = false, trunc = false;
            for (int frame = 0; frame < p->frame_skip && !(term || trunc); frame++) {
                float r = flappy_step(&replay, p, actions[i], &term, &trunc);
                double base = term ? p->reward_crash : p->reward_alive;
                int pipe = r != (float)base;
                CHECK(!pipe || r == (float)(p->reward_pipe + base), "unexpected reward %g", r);
                out.pipes += pipe;
                step_reward = frame == 0 ? r : step_reward + r;
            }
            CHECK(rewards[i] == step_reward && terminals[i] == term && truncations[i] == trunc,
                  "step gave reward %g, terminal %d, truncated %d; its frames %g, %d, %d", rewards[i],
                  terminals[i], truncations[i], step_reward, term, trunc);
            bool ended = terminals[i] || truncations[i];
            if (!ended || next_step) /* same-step mode has started the next episode */
                CHECK(env->tick == replay.tick && env->bird_y == replay.bird_y && env->front_x == replay.front_x &&
                          env->score == replay.score,
                      "step left tick %d, y %g; its frames %d, %g", env->tick, env->bird_y, replay.tick,
                      replay.bird_y);
            out.episodes += ended;
            CHECK(!next_step || ended == vec.new_episode_due[i], "next-step mode: new episode due %d after ended %d",
                  vec.new_episode_due[i], ended);
            if (!(next_step && ended)) { /* next-step mode keeps an ended episode's last state */
                CHECK(env->tick < p->max_steps, "tick %d reached max_steps", env->tick);
                CHECK(env->bird_y < FLAPPY_GROUND_TOUCH_Y, "bird below ground after step");
            }
            CHECK(env->gap >= FLAPPY_MIN_gap && env->gap <= FLAPPY_MAX_gap && env->pipe_speed >= FLAPPY_MIN_pipe_speed &&
                      env->pipe_speed <= FLAPPY_MAX_pipe_speed && env->pipe_spacing >= FLAPPY_MIN_pipe_spacing &&
                      env->pipe_spacing <= FLAPPY_MAX_pipe_spacing && env->gravity >= FLAPPY_MIN_gravity &&
                      env->gravity <= FLAPPY_MAX_gravity,
                  "episode values out of their ranges");
            CHECK(fabs(env->gap - p->gap) <= p->gap_spread && fabs(env->gravity - p->gravity) <= p->gravity_spread,
                  "episode values beyond their spread");
        }
        if (t % 97 == 0) {
            FlappyLog log = flappy_vec_log(&vec);
            logged_episodes += log.n;
            CHECK(log.perf >= 0 && log.perf <= 1, "perf %g out of [0, 1]", log.perf);
            CHECK(log.n == 0 || (log.gap >= FLAPPY_MIN_gap && log.gap <= FLAPPY_MAX_gap), "mean gap %g", log.gap);
        }
    }
    FlappyLog log = flappy_vec_log(&vec);
    logged_episodes += log.n;
    CHECK(logged_episodes == out.episodes, "log counted %g episodes, steps %ld", logged_episodes, out.episodes);
    FlappyLog empty = flappy_vec_log(&vec);
    CHECK(empty.n == 0 && empty.score == 0, "vec_log did not clear");
    flappy_vec_free(&vec);
    free(obs);
    return out;
}

int main(int argc, char** argv) {
    long total = argc > 1 ? atol(argv[1]) : 1000000;
    char err[256];

    FlappyParams p = flappy_default_params();
    CHECK(flappy_resolve_params(&p, err, sizeof(err)) == 0, "defaults rejected: %s", err);
    p.gap = NAN;
    CHECK(flappy_resolve_params(&p, err, sizeof(err)) != 0, "NaN gap accepted");
    p = flappy_default_params();
    p.max_steps = 0;
    CHECK(flappy_resolve_params(&p, err, sizeof(err)) != 0 && strstr(err, "max_steps must be in [1, 1000000000]"),
          "max_steps 0: %s", err);
    p = flappy_default_params();
    p.obs_mode = FLAPPY_NUM_OBS_MODES;
    CHECK(flappy_resolve_params(&p, err, sizeof(err)) != 0, "obs_mode past the last accepted");
    p = flappy_default_params();
    p.difficulty = FLAPPY_DIFFICULTY_HARD;
    p.pipe_speed = 6.0;
    CHECK(flappy_resolve_params(&p, err, sizeof(err)) == 0 && p.gap == 85.0 && p.pipe_speed == 6.0 &&
              p.gap_spread == 15.0,
          "hard preset: gap %g, pipe_speed %g (given 6), gap_spread %g", p.gap, p.pipe_speed, p.gap_spread);
    float obs[FLAPPY_FEATURES];
    int32_t act[1];
    float rew[1];
    bool term[1], trunc[1];
    FlappyVec vec;
    p = flappy_default_params();
    CHECK(flappy_vec_init(&vec, &p, 0, 0, obs, act, rew, term, trunc, 0, err, sizeof(err)) != 0, "0 envs accepted");

    /* Each observation mode at the defaults, with randomized episodes, with frame_skip 3, then
     * every parameter at its low end (features), then at its high end (pixels of 8 x 512 x 288,
     * every spread, 16 frames a step). */
    enum { SETS = 7, DEFAULT_SETS = 5 };
    FlappyParams sets[SETS];
    for (int s = 0; s < DEFAULT_SETS; s++) sets[s] = flappy_default_params();
    sets[1].obs_mode = FLAPPY_OBS_LIDAR;
    sets[2].obs_mode = FLAPPY_OBS_PIXELS;
    sets[3].gap_spread = 40.0;
    sets[3].pipe_speed_spread = 2.0;
    sets[3].pipe_spacing_spread = 60.0;
    sets[3].gravity_spread = 0.5;
    sets[4].frame_skip = 3;
#define AT_LOW(kind, name, dflt, lo, hi, doc) sets[DEFAULT_SETS].name = lo;
#define AT_HIGH(kind, name, dflt, lo, hi, doc) sets[DEFAULT_SETS + 1].name = hi;
    FLAPPY_PARAMS(AT_LOW)
    FLAPPY_PARAMS(AT_HIGH)
    long episodes = 0, pipes = 0;
    for (int s = 0; s < SETS; s++) {
        long steps = s == 0 ? total : (s == SETS - 1 ? total / 1000 : total / 10);
        RunSummary a = run(&sets[s], steps, 42, 0);
        RunSummary b = run(&sets[s], steps, 42, 0);
        RunSummary c = run(&sets[s], steps, 43, 0);
        CHECK(a.checksum == b.checksum, "set %d: same seed, different games", s);
        CHECK(a.checksum != c.checksum, "set %d: different seeds, same game", s);
        episodes += a.episodes;
        pipes += a.pipes;
        if (s < DEFAULT_SETS) CHECK(a.pipes > 0 && a.episodes > 0, "set %d: play never scored or never ended", s);
        if (s < DEFAULT_SETS) {
            long few = s == 0 ? steps / 10 : steps; /* the other sets already run a tenth of the total */
            RunSummary d = run(&sets[s], few, 42, 1), e = run(&sets[s], few, 42, 1);
            CHECK(d.checksum == e.checksum, "set %d, next-step mode: same seed, different games", s);
            CHECK(d.pipes > 0 && d.episodes > 0, "set %d, next-step mode: play never scored or never ended", s);
        }
    }
    if (failures) return 1;
    printf("ok: %ld env steps per run, %ld episodes, %ld pipes\n", total, episodes, pipes);
    return 0;
}
