/* web.c: the game, its rasterizer and the agent's network, compiled to WebAssembly for the page
 * in src/flappy_rl/page/ (`puffer web` builds it with emscripten).
 *
 * One game (a FlappyVec of one env, exactly what the Python binding steps) and at most one agent,
 * held here; the page calls the functions below through emscripten's ccall. Parameters are set
 * by name and text through the C table (flappy_set_param, then flappy_resolve_params), so the
 * page shows the table's ranges, choices and messages, never a copy of them. Frames come from
 * render.h as rgb_array does, widened to RGBA for the canvas.
 *
 * A benchmark vector (web_bench_*) steps many envs with cached random actions, as `puffer bench`
 * does natively, so the page can measure the core's steps per second.
 */
#include <emscripten.h>

#include "flappy.h"
#include "flappy_agent.h"

#define WEB_MESSAGE_SIZE 256

static FlappyParams chosen;   /* the page's parameters, before the difficulty preset */
static FlappyVec game;        /* one env; game.envs is NULL until web_restart succeeds */
static void* observation;     /* the game's observation buffer */
static int32_t action;
static float reward;
static bool terminal, truncated;
static int last_score;        /* the score of the episode that ended last */
static FlappyAgent* agent;
static float logits[FLAPPY_AGENT_NUM_ACTIONS];
static char message[WEB_MESSAGE_SIZE];
static int frame_width, frame_height; /* the world's size: rgb_array's frames */
static uint8_t *frame_rgb, *frame_rgba;

EMSCRIPTEN_KEEPALIVE const char* web_message(void) { return message; }

/* ------------------------------------------------------------------------------------------
 * The parameter table, read by the page to build its controls.
 */
/* Every export takes any arguments in any order: an index out of range reads as an empty
 * parameter (name "", no choices), never past the table. */
static const FlappyParamInfo* param_at(int i) {
    static const FlappyParamInfo none = {"", FLAPPY_KIND_REAL, 0.0, 0.0, 0.0, "", NULL, 0, 0};
    return i >= 0 && i < FLAPPY_NUM_PARAMS ? &FLAPPY_PARAM_INFO[i] : &none;
}

EMSCRIPTEN_KEEPALIVE int web_num_params(void) { return FLAPPY_NUM_PARAMS; }
EMSCRIPTEN_KEEPALIVE const char* web_param_name(int i) { return param_at(i)->name; }
EMSCRIPTEN_KEEPALIVE const char* web_param_doc(int i) { return param_at(i)->doc; }
EMSCRIPTEN_KEEPALIVE double web_param_min(int i) { return param_at(i)->min; }
EMSCRIPTEN_KEEPALIVE double web_param_max(int i) { return param_at(i)->max; }
EMSCRIPTEN_KEEPALIVE int web_param_num_choices(int i) { return param_at(i)->num_choices; }
EMSCRIPTEN_KEEPALIVE const char* web_param_choice(int i, int k) {
    const FlappyParamInfo* info = param_at(i);
    return k >= 0 && k < info->num_choices ? info->choices[k] : "";
}

/* The page's value of parameter i as text: a choice by name, a number as C prints it. */
EMSCRIPTEN_KEEPALIVE const char* web_param_value(int i) {
    static char text[64];
    if (i < 0 || i >= FLAPPY_NUM_PARAMS) return "";
    const FlappyParamInfo* info = &FLAPPY_PARAM_INFO[i];
    const char* field = (const char*)&chosen + info->offset;
    if (info->kind == FLAPPY_KIND_REAL)
        snprintf(text, sizeof(text), "%.15g", *(const double*)field);
    else if (info->kind == FLAPPY_KIND_INT)
        snprintf(text, sizeof(text), "%d", *(const int*)field);
    else
        snprintf(text, sizeof(text), "%s", info->choices[*(const int*)field]);
    return text;
}

/* Set a parameter from text. 0 when the parameters, resolved as Flappy would resolve them, are
 * valid: they are kept, and web_restart uses them. Otherwise -1, nothing changes, and
 * web_message() is the C table's message, the one Python's ValueError carries. */
EMSCRIPTEN_KEEPALIVE int web_set_param(const char* name, const char* text) {
    if (name == NULL || text == NULL) {
        snprintf(message, sizeof(message), "web_set_param needs a name and a value");
        return -1;
    }
    FlappyParams tried = chosen;
    if (flappy_set_param(&tried, name, text, message, sizeof(message)) != 0) return -1;
    FlappyParams resolved = tried;
    if (flappy_resolve_params(&resolved, message, sizeof(message)) != 0) return -1;
    chosen = tried;
    message[0] = '\0';
    return 0;
}

/* Back to the table's defaults (the agent's observation settings are kept at restart). */
EMSCRIPTEN_KEEPALIVE void web_default_params(void) { chosen = flappy_default_params(); }

/* ------------------------------------------------------------------------------------------
 * The agent. The observation settings (mode, rays, frame size) and frame_skip are the agent's:
 * web_restart copies them over the page's, so the network always sees what it was trained on,
 * as often as it was trained to decide.
 */
static void use_agent_observation(FlappyParams* p) {
    FlappyParams trained;
    if (agent == NULL || flappy_agent_env_params(agent, &trained, message, sizeof(message)) != 0) return;
    p->obs_mode = trained.obs_mode;
    p->lidar_rays = trained.lidar_rays;
    p->lidar_range = trained.lidar_range;
    p->pixels_width = trained.pixels_width;
    p->pixels_height = trained.pixels_height;
    p->pixels_stack = trained.pixels_stack;
    p->frame_skip = trained.frame_skip;
}

/* Load an agent from `puffer export`'s description text and weights. 0, or -1 with the loader's
 * message (a description it cannot read, weights of the wrong size). */
EMSCRIPTEN_KEEPALIVE int web_agent_load(const char* description, const float* weights, int num_weights) {
    if (description == NULL || (weights == NULL && num_weights != 0)) {
        snprintf(message, sizeof(message), "web_agent_load needs a description and its weights");
        return -1;
    }
    FlappyAgent* loaded = flappy_agent_new(description, weights, num_weights, message, sizeof(message));
    if (loaded == NULL) return -1;
    if (agent != NULL) flappy_agent_free(agent);
    agent = loaded;
    message[0] = '\0';
    return 0;
}

/* The agent's greedy action for the game's current observation (logits kept for
 * web_agent_flap_probability); 0 without an agent, or with one that observes otherwise than
 * the game (loaded since the last web_restart: message says so). */
EMSCRIPTEN_KEEPALIVE int web_agent_act(void) {
    if (agent == NULL || game.envs == NULL) return 0;
    if (flappy_agent_check_obs(agent, &game.params, message, sizeof(message)) != 0) return 0;
    return flappy_agent_act(agent, observation, logits);
}

/* softmax(logits)[1]: how likely the agent's last look made a flap. */
EMSCRIPTEN_KEEPALIVE double web_agent_flap_probability(void) {
    return 1.0 / (1.0 + exp((double)logits[0] - (double)logits[1]));
}

/* ------------------------------------------------------------------------------------------
 * The game.
 */

/* Seeds the page may give: whole numbers that JS numbers hold exactly. */
#define WEB_SEED_LIMIT 9007199254740992.0 /* 2^53 */

/* A new game with the page's parameters and this seed, a whole number in [0, 2^53). 0, or -1
 * with the message (a seed out of range changes nothing; the parameters are checked when set,
 * so otherwise only memory can fail here). */
EMSCRIPTEN_KEEPALIVE int web_restart(double seed) {
    if (!(seed >= 0.0 && seed < WEB_SEED_LIMIT) || seed != floor(seed)) {
        snprintf(message, sizeof(message), "seed must be a whole number in [0, 2^53), got %.17g", seed);
        return -1;
    }
    FlappyParams p = chosen;
    use_agent_observation(&p);
    flappy_vec_free(&game);
    free(observation);
    FlappyObsSpec spec = flappy_obs_spec(&p);
    observation = malloc(spec.size * (spec.is_uint8 ? 1 : sizeof(float)));
    if (observation == NULL ||
        flappy_vec_init(&game, &p, 1, (uint64_t)seed, observation, &action, &reward, &terminal, &truncated, 0, message,
                        sizeof(message)) != 0) {
        if (observation == NULL) snprintf(message, sizeof(message), "out of memory");
        free(observation);
        observation = NULL;
        return -1;
    }
    if (agent != NULL) flappy_agent_reset(agent);
    last_score = 0;
    message[0] = '\0';
    return 0;
}

/* One step (frame_skip frames) with action 0 or 1. Returns 1 on the step an episode ends (the
 * env has already started the next one, as in Python), else 0. */
EMSCRIPTEN_KEEPALIVE int web_step(int flap) {
    if (game.envs == NULL) return 0;
    action = flap != 0;
    double scored_before = game.log.score;
    flappy_vec_step(&game);
    if (!(terminal | truncated)) return 0;
    last_score = (int)(game.log.score - scored_before);
    if (agent != NULL) flappy_agent_reset(agent);
    return 1;
}

/* Game frames per web_step (the game's frame_skip), so that the page can keep the game at FPS
 * frames per second whatever it is. */
EMSCRIPTEN_KEEPALIVE int web_frame_skip(void) { return game.envs == NULL ? 1 : game.params.frame_skip; }
EMSCRIPTEN_KEEPALIVE int web_score(void) { return game.envs == NULL ? 0 : game.envs[0].score; }
EMSCRIPTEN_KEEPALIVE int web_last_score(void) { return last_score; }
EMSCRIPTEN_KEEPALIVE int web_frame_width(void) { return frame_width; }
EMSCRIPTEN_KEEPALIVE int web_frame_height(void) { return frame_height; }

/* The game's frame at the world's size, as rgb_array draws it, widened to RGBA (opaque) for the
 * canvas. Returns its address in the module's memory. */
EMSCRIPTEN_KEEPALIVE const uint8_t* web_frame(void) {
    if (game.envs == NULL) return frame_rgba;
    flappy_draw(&game.envs[0], frame_rgb, frame_width, frame_height, 3);
    for (int k = 0; k < frame_width * frame_height; k++) {
        frame_rgba[4 * k] = frame_rgb[3 * k];
        frame_rgba[4 * k + 1] = frame_rgb[3 * k + 1];
        frame_rgba[4 * k + 2] = frame_rgb[3 * k + 2];
        frame_rgba[4 * k + 3] = 255;
    }
    return frame_rgba;
}

/* ------------------------------------------------------------------------------------------
 * Benchmark: num_envs envs with default parameters, stepped with BENCH_ROWS cached rows of
 * random actions, one flap in ten (as `puffer bench`).
 */
#define BENCH_ROWS 64

static FlappyVec bench;
static float *bench_obs, *bench_rewards;
static int32_t* bench_actions;
static bool *bench_terminals, *bench_truncations;
static int bench_row;

static void web_bench_free(void) {
    flappy_vec_free(&bench);
    free(bench_obs);
    free(bench_rewards);
    free(bench_actions);
    free(bench_terminals);
    free(bench_truncations);
    bench_obs = bench_rewards = NULL;
    bench_actions = NULL;
    bench_terminals = bench_truncations = NULL;
}

#define WEB_BENCH_MAX_ENVS 65536 /* the page's largest is 4096; sizes stay far from 32-bit limits */

EMSCRIPTEN_KEEPALIVE int web_bench_init(int num_envs) {
    web_bench_free();
    if (num_envs < 1 || num_envs > WEB_BENCH_MAX_ENVS) {
        snprintf(message, sizeof(message), "num_envs must be in [1, %d], got %d", WEB_BENCH_MAX_ENVS, num_envs);
        return -1;
    }
    FlappyParams p = flappy_default_params();
    size_t n = (size_t)num_envs;
    bench_obs = (float*)malloc(n * flappy_obs_spec(&p).size * sizeof(float));
    bench_rewards = (float*)malloc(n * sizeof(float));
    bench_actions = (int32_t*)malloc(BENCH_ROWS * n * sizeof(int32_t));
    bench_terminals = (bool*)malloc(n * sizeof(bool));
    bench_truncations = (bool*)malloc(n * sizeof(bool));
    if (!bench_obs || !bench_rewards || !bench_actions || !bench_terminals || !bench_truncations) {
        web_bench_free();
        snprintf(message, sizeof(message), "out of memory allocating %d envs", num_envs);
        return -1;
    }
    FlappyRng rng;
    flappy_rng_seed(&rng, 0, 0);
    for (size_t k = 0; k < BENCH_ROWS * n; k++) bench_actions[k] = flappy_rng_unit(&rng) < 0.1;
    bench_row = 0;
    if (flappy_vec_init(&bench, &p, num_envs, 0, bench_obs, bench_actions, bench_rewards, bench_terminals,
                        bench_truncations, 0, message, sizeof(message)) != 0) {
        web_bench_free();
        return -1;
    }
    return 0;
}

/* `calls` steps of every bench env. */
EMSCRIPTEN_KEEPALIVE void web_bench_step(int calls) {
    for (int c = 0; bench.envs != NULL && c < calls; c++) {
        bench.actions = bench_actions + (size_t)bench_row * (size_t)bench.num_envs;
        bench_row = (bench_row + 1) % BENCH_ROWS;
        flappy_vec_step(&bench);
    }
}

int main(void) {
    chosen = flappy_default_params();
    frame_width = (int)FLAPPY_WORLD_WIDTH;
    frame_height = (int)FLAPPY_WORLD_HEIGHT;
    frame_rgb = (uint8_t*)malloc((size_t)frame_width * (size_t)frame_height * 3);
    frame_rgba = (uint8_t*)calloc((size_t)frame_width * (size_t)frame_height, 4);
    return frame_rgb != NULL && frame_rgba != NULL ? 0 : 1;
}
