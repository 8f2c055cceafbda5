/* render_check.c: a plain C program over csrc/render.h, with no Python. It plays vectors of envs
 * and draws them at many sizes, RGB and grayscale, into buffers of exactly the frame's size
 * (so that AddressSanitizer catches any write outside), and checks that every pixel is written
 * and holds a palette colour. It also draws views with absurd values (NaN, infinities, huge
 * numbers, the largest score) and refused sizes. tests/test_render_c.py builds it with
 * AddressSanitizer and UndefinedBehaviorSanitizer and runs it. Exits 0 when everything holds.
 *
 * usage: render_check [frames_per_size]   (default 200)
 */
#include <limits.h>

#include "render.h"

#define NUM_ENVS 8

static int failures = 0;
#define CHECK(cond, ...)                                           \
    do {                                                           \
        if (!(cond)) {                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                          \
            fprintf(stderr, "\n");                                 \
            if (++failures > 20) exit(1);                          \
        }                                                          \
    } while (0)

static const int SIZES[][3] = {
    {288, 512, 3}, {288, 512, 1}, {36, 64, 1}, {64, 36, 1}, {1, 1, 3}, {1, 1, 1},
    {577, 1023, 3}, {7, 3, 3}, {3, 200, 1}, {144, 256, 3}, {2, 2, 1},
};
#define NUM_SIZES (int)(sizeof(SIZES) / sizeof(SIZES[0]))

static int is_palette_pixel(const uint8_t* px, int channels) {
    for (int c = 0; c < FLAPPY_NUM_COLOURS; c++) {
        if (channels == 1 ? px[0] == FLAPPY_PALETTE_GRAY[c] : memcmp(px, FLAPPY_PALETTE_RGB[c], 3) == 0) return 1;
    }
    return 0;
}

/* Draws the view twice, over buffers filled with 0x00 and with 0xff: equal results mean every
 * byte was written. Then every pixel must be a palette colour. */
static void check_view(const FlappyView* view, int width, int height, int channels) {
    size_t size = (size_t)width * height * channels;
    uint8_t* a = malloc(size);
    uint8_t* b = malloc(size);
    CHECK(a != NULL && b != NULL, "out of memory");
    if (a == NULL || b == NULL) exit(1);
    memset(a, 0x00, size);
    memset(b, 0xff, size);
    CHECK(flappy_draw_view(view, a, width, height, channels) == 0, "%dx%dx%d refused", width, height, channels);
    flappy_draw_view(view, b, width, height, channels);
    CHECK(memcmp(a, b, size) == 0, "%dx%dx%d: some bytes were not written", width, height, channels);
    int bad = 0;
    for (size_t k = 0; k < size; k += channels) bad += !is_palette_pixel(a + k, channels);
    CHECK(bad == 0, "%dx%dx%d: %d pixels not in the palette", width, height, channels, bad);
    free(a);
    free(b);
}

static void check_scene_bounds(const FlappyView* view) {
    FlappyScene scene;
    flappy_scene_build(view, &scene);
    /* 135 is the most a scene can need (see FLAPPY_SCENE_MAX_RECTS); reaching the capacity
     * would mean rectangles were dropped. */
    CHECK(scene.count <= 135, "scene of %d rectangles", scene.count);
    for (int k = 0; k < scene.count; k++) {
        const FlappyRect* r = &scene.rects[k];
        CHECK(0 <= r->x0 && r->x0 < r->x1 && r->x1 <= FLAPPY_WORLD_WIDTH && 0 <= r->y0 && r->y0 < r->y1 &&
                  r->y1 <= FLAPPY_WORLD_HEIGHT,
              "rectangle %d outside the world or empty", k);
        CHECK(r->colour < FLAPPY_NUM_COLOURS && r->part < FLAPPY_NUM_PARTS, "rectangle %d: bad colour or part", k);
    }
}

static void check_played_frames(const FlappyParams* params, int frames_per_size, uint64_t seed) {
    float obs[NUM_ENVS * FLAPPY_FEATURES];
    int32_t actions[NUM_ENVS] = {0};
    float rewards[NUM_ENVS];
    bool terminals[NUM_ENVS], truncations[NUM_ENVS];
    char err[256];
    FlappyVec vec;
    if (flappy_vec_init(&vec, params, NUM_ENVS, seed, obs, actions, rewards, terminals, truncations, 0, err,
                        sizeof(err)) != 0) {
        CHECK(0, "vec_init failed: %s", err);
        return;
    }
    FlappyRng coin;
    flappy_rng_seed(&coin, seed, 7);
    for (int t = 0; t < frames_per_size; t++) {
        for (int k = 0; k < 7; k++) { /* a few frames between pictures, flapping one frame in eight */
            for (int i = 0; i < NUM_ENVS; i++) actions[i] = flappy_rng_next(&coin) % 8 == 0;
            flappy_vec_step(&vec);
        }
        const Flappy* env = &vec.envs[t % NUM_ENVS];
        FlappyView view;
        flappy_view(env, &view);
        check_scene_bounds(&view);
        const int* size = SIZES[t % NUM_SIZES];
        check_view(&view, size[0], size[1], size[2]);

        /* At full size the bird's back half is body colour wherever it is on screen. */
        double cx = FLAPPY_BIRD_X + FLAPPY_BIRD_WIDTH / 4, cy = env->bird_y + FLAPPY_BIRD_HEIGHT / 2;
        if (cy > 0 && cy < FLAPPY_GROUND_Y) {
            uint8_t frame[512 * 288];
            flappy_draw(env, frame, 288, 512, 1);
            CHECK(frame[(int)cy * 288 + (int)cx] == FLAPPY_PALETTE_GRAY[FLAPPY_COLOUR_BIRD], "bird not drawn");
        }
    }
    flappy_vec_free(&vec);
}

int main(int argc, char** argv) {
    int frames_per_size = argc > 1 ? atoi(argv[1]) : 200;

    /* Defaults, then every parameter at its low end, then at its high end. */
    FlappyParams sets[3];
    sets[0] = flappy_default_params();
#define AT_LOW(kind, name, dflt, lo, hi, doc) sets[1].name = lo;
#define AT_HIGH(kind, name, dflt, lo, hi, doc) sets[2].name = hi;
    FLAPPY_PARAMS(AT_LOW)
    FLAPPY_PARAMS(AT_HIGH)
    for (int s = 0; s < 3; s++) {
        sets[s].obs_mode = FLAPPY_OBS_FEATURES; /* the states are what is drawn here; obs is float[8] per env */
        check_played_frames(&sets[s], frames_per_size * NUM_SIZES, 42 + s);
    }

    /* Absurd views: drawn without a fault, every pixel written, palette colours only. */
    const double absurd[] = {NAN, INFINITY, -INFINITY, 1e300, -1e300, -0.0, 1e-300, 511.999, 288.0};
    int num_absurd = (int)(sizeof(absurd) / sizeof(absurd[0]));
    for (int k = 0; k < num_absurd; k++) {
        FlappyView view = {.bird_y = absurd[k], .grass_offset = absurd[(k + 1) % num_absurd], .score = INT_MAX,
                           .show_score = true};
        for (int j = 0; j < FLAPPY_NUM_PIPES; j++) {
            view.pipe_x[j] = absurd[(k + j) % num_absurd];
            view.gap_top[j] = absurd[(k + 2 * j) % num_absurd];
            view.gap_bottom[j] = absurd[(k + 3 * j + 1) % num_absurd];
        }
        check_scene_bounds(&view);
        for (int s = 0; s < NUM_SIZES; s++) check_view(&view, SIZES[s][0], SIZES[s][1], SIZES[s][2]);
    }

    /* Refused sizes and channel counts write nothing. */
    FlappyView view = {0};
    uint8_t canary[16];
    memset(canary, 0xab, sizeof(canary));
    const int refused[][3] = {{0, 5, 3}, {5, 0, 1}, {-1, 5, 3}, {5, 5, 2}, {5, 5, 4}, {FLAPPY_FRAME_MAX_SIZE + 1, 1, 1}};
    for (int k = 0; k < (int)(sizeof(refused) / sizeof(refused[0])); k++) {
        CHECK(flappy_draw_view(&view, canary, refused[k][0], refused[k][1], refused[k][2]) == -1, "size %d accepted", k);
    }
    for (int k = 0; k < 16; k++) CHECK(canary[k] == 0xab, "a refused draw wrote");

    /* Every colour has its own gray level. */
    for (int a = 0; a < FLAPPY_NUM_COLOURS; a++)
        for (int b = a + 1; b < FLAPPY_NUM_COLOURS; b++)
            CHECK(FLAPPY_PALETTE_GRAY[a] != FLAPPY_PALETTE_GRAY[b], "colours %d and %d share a gray level", a, b);

    if (failures) return 1;
    printf("ok: %d frames per size, %d sizes\n", frames_per_size, NUM_SIZES);
    return 0;
}
