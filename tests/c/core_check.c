/* core_check.c: a plain C program over csrc/flappy.h, with no Python. It steps vectors of envs
 * under random and scripted play, at default and extreme parameters, and checks invariants
 * after every step. tests/test_c_core.py builds it with AddressSanitizer and
 * UndefinedBehaviorSanitizer and runs it; valgrind runs it too. Exits 0 when everything holds.
 *
 * usage: core_check [total_env_steps]   (default 1000000)
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

/* The tests' scripted player: flap when the bird's bottom would fall below the gap's bottom. */
static int scripted_action(const float* obs) {
    double clearance = obs[4] * FLAPPY_GROUND_Y, fall = obs[1] * 10.0 + 1.0;
    return clearance - fall < 0;
}

typedef struct {
    uint64_t checksum;
    long episodes, pipes;
} RunSummary;

static RunSummary run(const FlappyParams* params, long env_steps, uint64_t seed) {
    float obs[NUM_ENVS * FLAPPY_OBS_SIZE];
    int32_t actions[NUM_ENVS] = {0};
    float rewards[NUM_ENVS];
    bool terminals[NUM_ENVS], truncations[NUM_ENVS];
    char err[256];
    FlappyVec vec;
    RunSummary out = {1469598103934665603ULL, 0, 0};
    int status = flappy_vec_init(&vec, params, NUM_ENVS, seed, obs, actions, rewards, terminals, truncations, err,
                                 sizeof(err));
    CHECK(status == 0, "vec_init failed: %s", err);
    if (status != 0) return out;
    FlappyRng coin;
    flappy_rng_seed(&coin, seed, 999);
    const FlappyParams* p = &vec.params;
    double logged_episodes = 0, logged_score_sum = 0;
    for (long t = 0; t < env_steps / NUM_ENVS; t++) {
        for (int i = 0; i < NUM_ENVS; i++) {
            int scripted = scripted_action(obs + i * FLAPPY_OBS_SIZE);
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
        flappy_vec_step(&vec);
        for (int i = 0; i < NUM_ENVS; i++) {
            const float* o = obs + i * FLAPPY_OBS_SIZE;
            for (int k = 0; k < FLAPPY_OBS_SIZE; k++) {
                CHECK(o[k] >= -1.0f && o[k] <= 1.0f, "obs[%d] = %g out of [-1, 1]", k, o[k]);
                uint32_t bits;
                memcpy(&bits, &o[k], 4);
                out.checksum = (out.checksum ^ bits) * 1099511628211ULL;
            }
            CHECK(!(terminals[i] && truncations[i]), "terminal and truncated at once");
            double r = rewards[i], base = terminals[i] ? p->reward_crash : p->reward_alive;
            int pipe = r != (float)base;
            CHECK(!pipe || r == (float)(p->reward_pipe + base), "unexpected reward %g", r);
            out.pipes += pipe;
            out.episodes += terminals[i] || truncations[i];
            CHECK(vec.envs[i].tick < p->max_steps, "tick %d reached max_steps", vec.envs[i].tick);
            CHECK(vec.envs[i].bird_y < FLAPPY_GROUND_TOUCH_Y, "bird below ground after step");
        }
        if (t % 97 == 0) {
            FlappyLog log = flappy_vec_log(&vec);
            logged_episodes += log.n;
            logged_score_sum += log.score * log.n;
            CHECK(log.perf >= 0 && log.perf <= 1, "perf %g out of [0, 1]", log.perf);
        }
    }
    FlappyLog log = flappy_vec_log(&vec);
    logged_episodes += log.n;
    logged_score_sum += log.score * log.n;
    CHECK(logged_episodes == out.episodes, "log counted %g episodes, steps %ld", logged_episodes, out.episodes);
    FlappyLog empty = flappy_vec_log(&vec);
    CHECK(empty.n == 0 && empty.score == 0, "vec_log did not clear");
    (void)logged_score_sum;
    flappy_vec_free(&vec);
    return out;
}

int main(int argc, char** argv) {
    long total = argc > 1 ? atol(argv[1]) : 1000000;
    char err[256];

    FlappyParams p = flappy_default_params();
    CHECK(flappy_check_params(&p, err, sizeof(err)) == 0, "defaults rejected: %s", err);
    p.gap = NAN;
    CHECK(flappy_check_params(&p, err, sizeof(err)) != 0, "NaN gap accepted");
    p = flappy_default_params();
    p.max_steps = 0;
    CHECK(flappy_check_params(&p, err, sizeof(err)) != 0 && strstr(err, "max_steps must be in [1, 1000000000]"),
          "max_steps 0: %s", err);
    float obs[FLAPPY_OBS_SIZE];
    int32_t act[1];
    float rew[1];
    bool term[1], trunc[1];
    FlappyVec vec;
    p = flappy_default_params();
    CHECK(flappy_vec_init(&vec, &p, 0, 0, obs, act, rew, term, trunc, err, sizeof(err)) != 0, "0 envs accepted");

    /* Defaults, then every parameter at its low end, then at its high end. */
    FlappyParams sets[3];
    sets[0] = flappy_default_params();
#define AT_LOW(kind, name, dflt, lo, hi, doc) sets[1].name = lo;
#define AT_HIGH(kind, name, dflt, lo, hi, doc) sets[2].name = hi;
    FLAPPY_PARAMS(AT_LOW)
    FLAPPY_PARAMS(AT_HIGH)
    long episodes = 0, pipes = 0;
    for (int s = 0; s < 3; s++) {
        long steps = s == 0 ? total : total / 10;
        RunSummary a = run(&sets[s], steps, 42);
        RunSummary b = run(&sets[s], steps, 42);
        RunSummary c = run(&sets[s], steps, 43);
        CHECK(a.checksum == b.checksum, "set %d: same seed, different games", s);
        CHECK(a.checksum != c.checksum, "set %d: different seeds, same game", s);
        episodes += a.episodes;
        pipes += a.pipes;
        if (s == 0) CHECK(a.pipes > 0 && a.episodes > 0, "default play never scored or never ended");
    }
    if (failures) return 1;
    printf("ok: %ld env steps per run, %ld episodes, %ld pipes\n", total, episodes, pipes);
    return 0;
}
