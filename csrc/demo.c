/* demo.c: a policy exported by `puffer export`, playing Flappy headless in plain C.
 *
 *   flappy_demo DESCRIPTION WEIGHTS [--episodes N] [--seed S] [--greedy] [--PARAM VALUE ...]
 *
 * Plays N episodes (default 100) with flappy.h and the policy run by flappy_agent.h, prints each
 * episode's score and length and a summary worded as `puffer eval`'s. Episode k is seeded as
 * `puffer eval` seeds it (its Serial vector gives env k of each wave of 100 the seed
 * vec.seed + 100 * wave + k, and each env plays one episode): with seed S, episode k plays the
 * game of seed S + k, so --greedy scores are eval --greedy's. Without --greedy, actions are
 * sampled from the policy with the demo's own generator. --PARAM VALUE changes an env parameter
 * of flappy.h's table (as `puffer eval --env.PARAM VALUE` does) from the one it was trained with.
 *
 * Build (puffernet.h from the installed pufferlib package):
 *   gcc -O2 -ffp-contract=off -I csrc -I "$(python -c 'import pufferlib, os;
 *       print(os.path.dirname(pufferlib.__file__))')/extensions" csrc/demo.c -o flappy_demo -lm
 * Errors (a bad file, a weights file of the wrong size, a bad option): one line, status 2.
 */
#include "flappy_agent.h"

#define DEMO_MAX_EPISODES 1000000

static int fail(const char* message) {
    fprintf(stderr, "flappy_demo: %s\n", message);
    return 2;
}

static int compare_ints(const void* a, const void* b) { return (*(const int*)a > *(const int*)b) - (*(const int*)a < *(const int*)b); }

int main(int argc, char** argv) {
    char err[1024];
    long episodes = 100;
    unsigned long long seed = 42; /* configs/default.ini's vec.seed */
    int greedy = 0;
    if (argc < 3) return fail("usage: flappy_demo DESCRIPTION WEIGHTS [--episodes N] [--seed S] [--greedy] [--PARAM VALUE ...]");
    FlappyAgent* agent = flappy_agent_load(argv[1], argv[2], err, sizeof(err));
    if (agent == NULL) return fail(err);
    FlappyParams params;
    flappy_agent_env_params(agent, &params, err, sizeof(err));
    err[0] = '\0';
    for (int i = 3; i < argc; i++) {
        char* end;
        if (strcmp(argv[i], "--greedy") == 0) {
            greedy = 1;
        } else if (strncmp(argv[i], "--", 2) != 0 || i + 1 == argc) {
            snprintf(err, sizeof(err), "expected --episodes N, --seed S, --greedy or --PARAM VALUE, got '%.64s'", argv[i]);
            break;
        } else if (strcmp(argv[i], "--episodes") == 0) {
            episodes = strtol(argv[++i], &end, 10);
            if (*end != '\0' || episodes < 1 || episodes > DEMO_MAX_EPISODES) {
                snprintf(err, sizeof(err), "--episodes must be a whole number in [1, %d]", DEMO_MAX_EPISODES);
                break;
            }
        } else if (strcmp(argv[i], "--seed") == 0) {
            const char* text = argv[++i];
            errno = 0;
            seed = strtoull(text, &end, 10);
            if (*end != '\0' || *text < '0' || *text > '9' || errno == ERANGE) {
                snprintf(err, sizeof(err), "--seed must be a whole number, got '%.64s'", text);
                break;
            }
        } else if (flappy_set_param(&params, argv[i] + 2, argv[i + 1], err, sizeof(err)) != 0) {
            break;
        } else {
            i++;
        }
        err[0] = '\0';
    }
    FlappyObsSpec spec = flappy_obs_spec(&params);
    if (err[0] == '\0' && flappy_resolve_params(&params, err, sizeof(err)) == 0 &&
        flappy_agent_check_obs(agent, &params, err, sizeof(err)) == 0)
        spec = flappy_obs_spec(&params);
    if (err[0] != '\0') {
        flappy_agent_free(agent);
        return fail(err);
    }

    void* observation = calloc(spec.size, spec.is_uint8 ? 1 : sizeof(float));
    int* scores = (int*)calloc((size_t)episodes, sizeof(int));
    int32_t action = 0;
    float reward;
    bool terminal, truncation;
    FlappyVec vec;
    FlappyRng sampler; /* its own stream: the game's generators are the envs' */
    flappy_rng_seed(&sampler, seed, 1);
    if (observation == NULL || scores == NULL ||
        flappy_vec_init(&vec, &params, 1, seed, observation, &action, &reward, &terminal, &truncation, 0, err,
                        sizeof(err)) != 0) {
        free(observation);
        free(scores);
        flappy_agent_free(agent);
        return fail(observation && scores ? err : "out of memory");
    }
    double total_score = 0, total_length = 0;
    long crashes = 0; /* the other episodes reached max_steps ("capped") */
    for (long k = 0; k < episodes; k++) {
        flappy_vec_reset(&vec, seed + (unsigned long long)k);
        flappy_agent_reset(agent);
        do {
            float logits[FLAPPY_AGENT_NUM_ACTIONS];
            action = flappy_agent_act(agent, observation, logits);
            if (!greedy) action = flappy_rng_unit(&sampler) * (1.0 + exp((double)logits[0] - logits[1])) < 1.0;
            flappy_vec_step(&vec);
        } while (!terminal && !truncation);
        FlappyLog log = flappy_vec_log(&vec);
        scores[k] = (int)log.score;
        total_score += log.score;
        total_length += log.episode_length;
        crashes += terminal;
        printf("episode %ld: score %d, length %d frames\n", k + 1, scores[k], (int)log.episode_length);
    }
    qsort(scores, (size_t)episodes, sizeof(int), compare_ints);
    double median = episodes % 2 ? scores[episodes / 2] : 0.5 * (scores[episodes / 2 - 1] + scores[episodes / 2]);
    printf("%ld episodes: mean score %.2f, median %g, max %d; mean length %.1f frames; %ld capped at max_steps, "
           "%ld crashes in %.0f pipes\n", episodes, total_score / episodes, median, scores[episodes - 1],
           total_length / episodes, episodes - crashes, crashes, total_score);
    flappy_vec_free(&vec);
    free(observation);
    free(scores);
    flappy_agent_free(agent);
    return 0;
}
