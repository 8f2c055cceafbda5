/* bench.c: steps of csrc/flappy.h per second with no Python at all, the upper bound that the
 * binding is measured against (puffer bench runs it; so can you):
 *
 *   gcc -O3 -ffp-contract=off -Icsrc csrc/bench.c -o flappy_bench -lm && ./flappy_bench 4096 1.0 5
 *
 * usage: flappy_bench [num_envs] [seconds per window] [windows]
 * Prints one JSON object: the steps per second of each timed window after a warm-up, and their
 * median. Actions are random (one flap in ten), drawn once into 64 rows that the loop cycles
 * through, as puffer bench does for the binding.
 */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "flappy.h"

#define ACTION_ROWS 64

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* `batch` steps, cycling through the action rows. Kept out of main, as the binding keeps its step
 * in a function of its own: inlined into main's timing loop, the step compiles 2.5x slower. */
__attribute__((noinline)) static int step_batch(FlappyVec* vec, const int32_t* actions, size_t n, long* row,
                                                long batch) {
    for (long k = 0; k < batch; k++) {
        vec->actions = actions + (size_t)((*row)++ & (ACTION_ROWS - 1)) * n;
        if (flappy_vec_find_bad_action(vec) >= 0) return -1;
        flappy_vec_step(vec);
    }
    return 0;
}

int main(int argc, char** argv) {
    int num_envs = argc > 1 ? atoi(argv[1]) : 4096;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    int windows = argc > 3 ? atoi(argv[3]) : 5;
    if (num_envs < 1 || !(seconds > 0) || windows < 1 || windows > 100) {
        fprintf(stderr, "usage: flappy_bench [num_envs >= 1] [seconds > 0] [windows in 1..100]\n");
        return 2;
    }
    size_t n = (size_t)num_envs;
    float* observations = malloc(n * FLAPPY_FEATURES * sizeof(float));
    int32_t* actions = malloc(n * ACTION_ROWS * sizeof(int32_t));
    float* rewards = malloc(n * sizeof(float));
    bool* terminals = malloc(n);
    bool* truncations = malloc(n);
    if (!observations || !actions || !rewards || !terminals || !truncations) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    FlappyRng coin;
    flappy_rng_seed(&coin, 12345, 0);
    for (size_t i = 0; i < n * ACTION_ROWS; i++) actions[i] = flappy_rng_next(&coin) % 10 == 0;

    FlappyParams params = flappy_default_params();
    FlappyVec vec;
    char err[256];
    if (flappy_vec_init(&vec, &params, num_envs, 0, observations, actions, rewards, terminals, truncations, 0, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Steps between clock reads: about a millisecond of work. */
    long batch = 1 + 1000000L / (long)n;
    long row = 0;
    double rates[100];
    for (int w = -1; w < windows; w++) { /* window -1 is the warm-up */
        long steps = 0;
        double start = now(), elapsed = 0;
        while (elapsed < (w < 0 ? seconds / 2 : seconds)) {
            if (step_batch(&vec, actions, n, &row, batch) != 0) return 1;
            steps += batch;
            elapsed = now() - start;
        }
        if (w >= 0) rates[w] = (double)steps * (double)n / elapsed;
    }
    printf("{\"num_envs\": %d, \"windows\": [", num_envs);
    for (int w = 0; w < windows; w++) printf("%s%.0f", w ? ", " : "", rates[w]);
    qsort(rates, (size_t)windows, sizeof(double), compare_doubles);
    double median = windows % 2 ? rates[windows / 2] : 0.5 * (rates[windows / 2 - 1] + rates[windows / 2]);
    printf("], \"median\": %.0f}\n", median);
    flappy_vec_free(&vec);
    free(observations);
    free(actions);
    free(rewards);
    free(terminals);
    free(truncations);
    return 0;
}
