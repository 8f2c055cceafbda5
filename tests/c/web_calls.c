/* web_calls.c: csrc/web.c compiled natively, its exports called in random orders with random
 * arguments, for the sanitizers (tests/test_web_inputs.py builds it with ASan + UBSan).
 *
 *   web_calls CALLS SEED [DESCRIPTION WEIGHTS]...
 *   web_calls review PIXELS_DESCRIPTION PIXELS_WEIGHTS LIDAR_DESCRIPTION LIDAR_WEIGHTS
 *
 * Makes CALLS calls drawn with PCG32 from SEED: parameters set by name (known or not) to text
 * (valid, out of range, not a number), restarts with any double as the seed (negative, NaN,
 * huge, fractional), steps, frames, agent loads (the given policies, whole, cut short, or with
 * too few weights), agent actions, table reads at any index, benchmark inits of any size and
 * steps. Prints "ok: N calls" when no call went wrong; the sanitizers abort on any that does.
 */
#define main web_main
#include "web.c"
#undef main

static FlappyRng draws;

static int draw_below(int n) { return (int)(flappy_rng_unit(&draws) * n); }

static int draw_index(void) { return draw_below(FLAPPY_NUM_PARAMS + 6) - 3; } /* a few outside the table */

static const char* const TEXTS[] = {"0", "1", "-1", "0.5", "7", "30", "100", "240", "1e9", "1e300", "-1e300", "nan",
                                    "inf", "", " 1", "1 ", "abc", "features", "lidar", "pixels", "easy", "hard", "9",
                                    "26", "36", "64", "8", "288", "512", "1024", "16", "2147483648", "-2147483649"};
#define NUM_TEXTS ((int)(sizeof(TEXTS) / sizeof(TEXTS[0])))

static double draw_seed(void) {
    static const double odd[] = {-1.0, -0.5, 0.5, 1e300, -1e300, 9007199254740992.0, 9007199254740991.0,
                                 18446744073709551616.0, 0.0, 42.0};
    switch (draw_below(3)) {
    case 0: return odd[draw_below(10)];
    case 1: return draw_below(1000);
    default: return (flappy_rng_unit(&draws) - 0.5) * 1e20;
    }
}

typedef struct {
    char* description;
    float* weights;
    int num_weights;
} Policy;

static char* read_all(const char* path, long* size) {
    FILE* file = fopen(path, "rb");
    if (file == NULL) return NULL;
    fseek(file, 0, SEEK_END);
    *size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char* data = (char*)malloc((size_t)*size + 1);
    if (data != NULL && fread(data, 1, (size_t)*size, file) == (size_t)*size) data[*size] = '\0';
    fclose(file);
    return data;
}

/* The review's cases, in order, each call's result printed: an agent of another observation
 * mode loaded after a restart acts (it read past the observation buffer), then restarts with
 * out-of-range seeds (UBSan: a double out of the integer's range converted). */
static int review_cases(Policy* pixels, Policy* lidar) {
    printf("load pixels: %d\n", web_agent_load(pixels->description, pixels->weights, pixels->num_weights));
    printf("restart 3: %d\n", web_restart(3.0));
    printf("act: %d\n", web_agent_act());
    printf("load lidar: %d\n", web_agent_load(lidar->description, lidar->weights, lidar->num_weights));
    printf("act: %d (%s)\n", web_agent_act(), web_message());
    printf("step: %d\n", web_step(1));
    printf("restart 4: %d\n", web_restart(4.0));
    printf("act after restart: %s\n", web_agent_act() >= 0 && web_message()[0] == '\0' ? "ok" : web_message());
    const double seeds[] = {-1.0, 0.5, 9007199254740992.0, 1e300};
    for (int k = 0; k < 4; k++) printf("restart %.17g: %d (%s)\n", seeds[k], web_restart(seeds[k]), web_message());
    printf("step: %d\n", web_step(0));
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 6 && strcmp(argv[1], "review") == 0) {
        Policy policies[2];
        for (int k = 0; k < 2; k++) {
            long size = 0, weight_bytes = 0;
            policies[k].description = read_all(argv[2 + 2 * k], &size);
            policies[k].weights = (float*)read_all(argv[3 + 2 * k], &weight_bytes);
            policies[k].num_weights = (int)(weight_bytes / 4);
            if (policies[k].description == NULL || policies[k].weights == NULL) return 2;
        }
        int status = web_main() != 0 || review_cases(&policies[0], &policies[1]);
        for (int k = 0; k < 2; k++) {
            free(policies[k].description);
            free(policies[k].weights);
        }
        return status;
    }
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: web_calls CALLS SEED [DESCRIPTION WEIGHTS]...\n");
        return 2;
    }
    long calls = strtol(argv[1], NULL, 10);
    flappy_rng_seed(&draws, strtoull(argv[2], NULL, 10), 7);
    int num_policies = (argc - 3) / 2 < 8 ? (argc - 3) / 2 : 8;
    Policy policies[8];
    for (int k = 0; k < num_policies && k < 8; k++) {
        long size = 0, weight_bytes = 0;
        policies[k].description = read_all(argv[3 + 2 * k], &size);
        policies[k].weights = (float*)read_all(argv[4 + 2 * k], &weight_bytes);
        policies[k].num_weights = (int)(weight_bytes / 4);
        if (policies[k].description == NULL || policies[k].weights == NULL) {
            fprintf(stderr, "web_calls: cannot read %s or %s\n", argv[3 + 2 * k], argv[4 + 2 * k]);
            return 2;
        }
    }
    if (web_main() != 0) return 1;
    float sink = 0.0f;
    for (long c = 0; c < calls; c++) {
        switch (draw_below(14)) {
        case 0: {
            int i = draw_index();
            web_set_param(draw_below(8) == 0 ? "no_such" : web_param_name(i), TEXTS[draw_below(NUM_TEXTS)]);
            break;
        }
        case 1: web_default_params(); break;
        case 2:
        case 3: web_restart(draw_seed()); break;
        case 4:
        case 5:
        case 6: sink += (float)web_step(draw_below(3) - (draw_below(5) == 0 ? 5 : 0)); break;
        case 7: sink += (float)web_agent_act() + (float)web_agent_flap_probability(); break;
        case 8: {
            const uint8_t* frame = web_frame();
            if (frame != NULL) sink += frame[draw_below(web_frame_width() * web_frame_height() * 4)];
            break;
        }
        case 9: {
            if (num_policies == 0) break;
            Policy* policy = &policies[draw_below(num_policies)];
            int cut = draw_below(4);
            int count = cut == 0 ? draw_below(policy->num_weights + 1) : policy->num_weights;
            char saved = '\0';
            size_t length = strlen(policy->description), at = length;
            if (cut == 1 && length > 0) { /* the description cut short */
                at = (size_t)draw_below((int)length);
                saved = policy->description[at];
                policy->description[at] = '\0';
            }
            web_agent_load(policy->description, policy->weights, count);
            if (at < length) policy->description[at] = saved;
            break;
        }
        case 10: {
            int i = draw_index();
            const char* text = web_param_name(i);
            sink += (float)strlen(text) + (float)strlen(web_param_doc(i)) + (float)strlen(web_param_value(i));
            sink += (float)(web_param_min(i) + web_param_max(i));
            sink += (float)strlen(web_param_choice(i, draw_below(6) - 2)) + (float)web_param_num_choices(i);
            break;
        }
        case 11:
            sink += (float)(web_score() + web_last_score() + web_frame_skip()) + (float)strlen(web_message());
            break;
        case 12: web_bench_init(draw_below(6) == 0 ? draw_below(3) - 1 : 1 + draw_below(64)); break;
        default: web_bench_step(draw_below(4)); break;
        }
    }
    for (int k = 0; k < num_policies && k < 8; k++) {
        free(policies[k].description);
        free(policies[k].weights);
    }
    printf("ok: %ld calls (%g)\n", calls, sink != sink ? 0.0 : 1.0);
    return 0;
}
