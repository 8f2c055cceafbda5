/* render.h: draws a Flappy env into a pixel buffer, with no window and no GL.
 *
 * The picture is a list of axis-aligned rectangles in world pixels (the scene): sky, pipes with
 * caps, the ground with a scrolling striped band of grass, the bird (a box with an eye and a
 * beak), and the score in a 3 x 5 bitmap font. The Python raylib view draws this very list (it
 * gets it through flappy_rl.binding.scene), so the window and the headless frames show the
 * same scene in the same colours; only the window tilts the bird.
 *
 * The rasterizer scales the 288 x 512 world to any width x height, RGB or grayscale, and is
 * built for small outputs too (an observation image straight into a buffer): the scene is cut
 * into horizontal bands of identical rows; the first row of a band is painted with one fill per
 * rectangle, every other row is a copy of the row above. No per-pixel division or branch.
 *
 * Reading order: palette, scene geometry, the view (what the picture depends on), the scene,
 * the rasterizer.
 */
/* flappy.h includes this file where its pixel observation needs the rasterizer; including
 * flappy.h first (outside the guard) makes either file a fine thing to include. */
#include "flappy.h"

#ifndef FLAPPY_RENDER_H
#define FLAPPY_RENDER_H

/* ------------------------------------------------------------------------------------------
 * Palette, defined once: X(NAME, red, green, blue). Exported to Python by
 * flappy_rl.binding.palette() (lower-case names). The grayscale value of a colour is its luma
 * (ITU-R BT.601 weights in 1/256); every colour has a different one, so a grayscale frame
 * tells every part of the scene apart.
 */
#define FLAPPY_PALETTE(X)                                                           \
    X(SKY, 78, 192, 202)                                                            \
    X(PIPE, 96, 168, 48)                                                            \
    X(PIPE_CAP, 60, 120, 30)                                                        \
    X(GROUND, 222, 216, 149)                                                        \
    X(GRASS_LIGHT, 150, 222, 90)                                                    \
    X(GRASS_DARK, 110, 180, 56)                                                     \
    X(BIRD, 250, 200, 40)                                                           \
    X(BIRD_EYE, 40, 30, 30)                                                         \
    X(BIRD_BEAK, 220, 80, 40)                                                       \
    X(SCORE, 255, 255, 255)                                                         \
    X(OVERLAY, 230, 30, 60) /* the raylib view's lines to what the agent observes */     \
    X(TEXT, 60, 40, 20)     /* the raylib view's messages, written on the ground */

#define FLAPPY_LUMA(r, g, b) (((r) * 77 + (g) * 150 + (b) * 29 + 128) >> 8)

enum {
#define FLAPPY_COLOUR_INDEX(name, r, g, b) FLAPPY_COLOUR_##name,
    FLAPPY_PALETTE(FLAPPY_COLOUR_INDEX) FLAPPY_NUM_COLOURS
};

static const uint8_t FLAPPY_PALETTE_RGB[FLAPPY_NUM_COLOURS][3] = {
#define FLAPPY_COLOUR_RGB(name, r, g, b) {r, g, b},
    FLAPPY_PALETTE(FLAPPY_COLOUR_RGB)};

static const uint8_t FLAPPY_PALETTE_GRAY[FLAPPY_NUM_COLOURS] = {
#define FLAPPY_COLOUR_GRAY(name, r, g, b) FLAPPY_LUMA(r, g, b),
    FLAPPY_PALETTE(FLAPPY_COLOUR_GRAY)};

/* ------------------------------------------------------------------------------------------
 * Scene geometry in world pixels, X(name, value); exported to Python as module constants of
 * flappy_rl.binding, next to the game's. The bird's eye and beak sit in its front (right) half,
 * so its back half shows the body colour.
 */
#define FLAPPY_RENDER_CONSTANTS(X)                                                          \
    X(PIPE_CAP_HEIGHT, 12.0)     /* the cap at the gap-facing end of each pipe */           \
    X(PIPE_CAP_OVERHANG, 3.0)    /* how far a cap sticks out on each side of its pipe */    \
    X(GRASS_HEIGHT, 12.0)        /* the striped band at the top of the ground */            \
    X(GRASS_STRIPE_PERIOD, 24.0) /* one light and one dark stripe, each half as wide */     \
    X(BIRD_EYE_X, 22.0)          /* eye and beak boxes, from the bird box's top-left */     \
    X(BIRD_EYE_Y, 5.0)                                                                      \
    X(BIRD_EYE_SIZE, 6.0)                                                                   \
    X(BIRD_BEAK_X, 26.0)                                                                    \
    X(BIRD_BEAK_Y, 13.0)                                                                    \
    X(BIRD_BEAK_HEIGHT, 6.0)                                                                \
    X(SCORE_TOP, 40.0)           /* the digits' top edge; they are centred horizontally */  \
    X(SCORE_CELL, 6.0)           /* a font cell: digits are 3 x 5 cells, one cell apart */

#define FLAPPY_DEFINE_RENDER_CONSTANT(name, value) static const double FLAPPY_##name = value;
FLAPPY_RENDER_CONSTANTS(FLAPPY_DEFINE_RENDER_CONSTANT)

/* Which part of the scene a rectangle belongs to: the raylib view tilts the bird's. */
#define FLAPPY_PARTS(X) X(SKY) X(PIPE) X(GROUND) X(BIRD) X(SCORE)

enum {
#define FLAPPY_PART_INDEX(name) FLAPPY_PART_##name,
    FLAPPY_PARTS(FLAPPY_PART_INDEX) FLAPPY_NUM_PARTS
};

/* ------------------------------------------------------------------------------------------
 * The view: everything the picture depends on. It is built from an env (flappy_view) or, by the
 * binding, from a state dict as env_get returns it, so the Python twin's frames come from this
 * rasterizer too.
 */
typedef struct {
    double bird_y;                         /* top edge of the bird's box */
    double pipe_x[FLAPPY_NUM_PIPES];       /* left edges, oldest pipe first */
    double gap_top[FLAPPY_NUM_PIPES];
    double gap_bottom[FLAPPY_NUM_PIPES];
    double grass_offset;                   /* how far the stripes have scrolled, [0, period) */
    int score;
    bool show_score; /* false in pixel observations */
    double top;      /* world y at the frame's top edge: 0 shows the screen, PIXELS_TOP the sky above it too */
} FlappyView;

/* The grass moves with the pipes: by pipe_speed a frame since the episode began. */
static inline double flappy_grass_offset(int tick, double pipe_speed) {
    return fmod((double)tick * pipe_speed, FLAPPY_GRASS_STRIPE_PERIOD);
}

static inline void flappy_view(const Flappy* env, FlappyView* view) {
    view->bird_y = env->bird_y;
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) {
        double top = env->gap_top[(env->first + j) & (FLAPPY_NUM_PIPES - 1)];
        view->pipe_x[j] = env->front_x + j * env->pipe_spacing;
        view->gap_top[j] = top;
        view->gap_bottom[j] = top + env->gap;
    }
    view->grass_offset = flappy_grass_offset(env->tick, env->pipe_speed);
    view->score = env->score;
    view->show_score = true;
    view->top = 0.0;
}

/* ------------------------------------------------------------------------------------------
 * The scene: rectangles [x0, x1) x [y0, y1) in world pixels, in painting order, clipped to the
 * world. Later rectangles cover earlier ones.
 */
typedef struct {
    double x0, y0, x1, y1;
    uint8_t colour; /* FLAPPY_COLOUR_* */
    uint8_t part;   /* FLAPPY_PART_* */
} FlappyRect;

#define FLAPPY_SCORE_MAX_DIGITS 10 /* enough for any int */
/* Room for: the sky, 4 rectangles per pipe, the ground and the grass, 13 light stripes (288 / 24
 * + 1), 3 for the bird, and per digit at most 2 runs of lit cells in each of its 5 rows: 135.
 * tests/c/core_check.c checks that scenes stay within it. */
#define FLAPPY_SCENE_MAX_RECTS 160

typedef struct {
    FlappyRect rects[FLAPPY_SCENE_MAX_RECTS];
    int count;
    double top; /* the view's top: rectangles are clipped to [top, WORLD_HEIGHT) */
} FlappyScene;

/* Appends the rectangle clipped to the view; drops it when nothing is left (NaN included). */
static inline void flappy_scene_add(FlappyScene* scene, double x0, double y0, double x1, double y1, int colour,
                                    int part) {
    x0 = x0 > 0.0 ? x0 : 0.0;
    y0 = y0 > scene->top ? y0 : scene->top;
    x1 = x1 < FLAPPY_WORLD_WIDTH ? x1 : FLAPPY_WORLD_WIDTH;
    y1 = y1 < FLAPPY_WORLD_HEIGHT ? y1 : FLAPPY_WORLD_HEIGHT;
    if (!(x0 < x1 && y0 < y1) || scene->count == FLAPPY_SCENE_MAX_RECTS) return;
    FlappyRect* r = &scene->rects[scene->count++];
    r->x0 = x0;
    r->y0 = y0;
    r->x1 = x1;
    r->y1 = y1;
    r->colour = (uint8_t)colour;
    r->part = (uint8_t)part;
}

/* Digits 0-9, 3 x 5 cells: one 3-bit row each, top row first, bit 2 = left column. */
static const uint8_t FLAPPY_DIGIT_FONT[10][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
};

static inline void flappy_scene_score(FlappyScene* scene, int score) {
    char digits[FLAPPY_SCORE_MAX_DIGITS + 1];
    int n = snprintf(digits, sizeof(digits), "%d", score > 0 ? score : 0);
    const double cell = FLAPPY_SCORE_CELL;
    /* n digits of 3 cells with one cell between them, centred */
    double left = (FLAPPY_WORLD_WIDTH - (4 * n - 1) * cell) / 2;
    for (int d = 0; d < n; d++) {
        const uint8_t* glyph = FLAPPY_DIGIT_FONT[digits[d] - '0'];
        double x = left + 4 * d * cell;
        for (int row = 0; row < 5; row++) {
            double y = FLAPPY_SCORE_TOP + row * cell;
            for (int col = 0; col < 3;) {
                if (!(glyph[row] & (4 >> col))) {
                    col++;
                    continue;
                }
                int end = col;
                while (end < 3 && (glyph[row] & (4 >> end))) end++;
                flappy_scene_add(scene, x + col * cell, y, x + end * cell, y + cell, FLAPPY_COLOUR_SCORE,
                                 FLAPPY_PART_SCORE);
                col = end;
            }
        }
    }
}

static inline void flappy_scene_build(const FlappyView* v, FlappyScene* scene) {
    const double W = FLAPPY_WORLD_WIDTH, G = FLAPPY_GROUND_Y, T = v->top > -1e6 ? v->top : -1e6;
    scene->count = 0;
    scene->top = T;
    flappy_scene_add(scene, 0, T, W, G, FLAPPY_COLOUR_SKY, FLAPPY_PART_SKY);

    const double cap = FLAPPY_PIPE_CAP_HEIGHT, over = FLAPPY_PIPE_CAP_OVERHANG;
    for (int j = 0; j < FLAPPY_NUM_PIPES; j++) {
        double x = v->pipe_x[j], x1 = x + FLAPPY_PIPE_WIDTH, top = v->gap_top[j], bottom = v->gap_bottom[j];
        flappy_scene_add(scene, x, T, x1, top - cap, FLAPPY_COLOUR_PIPE, FLAPPY_PART_PIPE);
        flappy_scene_add(scene, x - over, top - cap, x1 + over, top, FLAPPY_COLOUR_PIPE_CAP, FLAPPY_PART_PIPE);
        flappy_scene_add(scene, x - over, bottom, x1 + over, bottom + cap, FLAPPY_COLOUR_PIPE_CAP, FLAPPY_PART_PIPE);
        flappy_scene_add(scene, x, bottom + cap, x1, G, FLAPPY_COLOUR_PIPE, FLAPPY_PART_PIPE);
    }

    /* The ground covers the pipes' feet. */
    const double grass_bottom = G + FLAPPY_GRASS_HEIGHT, period = FLAPPY_GRASS_STRIPE_PERIOD;
    flappy_scene_add(scene, 0, G, W, FLAPPY_WORLD_HEIGHT, FLAPPY_COLOUR_GROUND, FLAPPY_PART_GROUND);
    flappy_scene_add(scene, 0, G, W, grass_bottom, FLAPPY_COLOUR_GRASS_DARK, FLAPPY_PART_GROUND);
    for (int k = 0; k <= (int)(W / period); k++) {
        double x = k * period - v->grass_offset;
        flappy_scene_add(scene, x, G, x + period / 2, grass_bottom, FLAPPY_COLOUR_GRASS_LIGHT, FLAPPY_PART_GROUND);
    }

    const double bx = FLAPPY_BIRD_X, by = v->bird_y;
    flappy_scene_add(scene, bx, by, bx + FLAPPY_BIRD_WIDTH, by + FLAPPY_BIRD_HEIGHT, FLAPPY_COLOUR_BIRD,
                     FLAPPY_PART_BIRD);
    flappy_scene_add(scene, bx + FLAPPY_BIRD_EYE_X, by + FLAPPY_BIRD_EYE_Y, bx + FLAPPY_BIRD_EYE_X + FLAPPY_BIRD_EYE_SIZE,
                     by + FLAPPY_BIRD_EYE_Y + FLAPPY_BIRD_EYE_SIZE, FLAPPY_COLOUR_BIRD_EYE, FLAPPY_PART_BIRD);
    flappy_scene_add(scene, bx + FLAPPY_BIRD_BEAK_X, by + FLAPPY_BIRD_BEAK_Y, bx + FLAPPY_BIRD_WIDTH,
                     by + FLAPPY_BIRD_BEAK_Y + FLAPPY_BIRD_BEAK_HEIGHT, FLAPPY_COLOUR_BIRD_BEAK, FLAPPY_PART_BIRD);

    if (v->show_score) flappy_scene_score(scene, v->score);
}

/* ------------------------------------------------------------------------------------------
 * The rasterizer. A pixel belongs to a rectangle when its centre does, left and top edges
 * included (the rule GL follows, so the raylib window and these frames agree pixel for pixel).
 */
#define FLAPPY_FRAME_MAX_SIZE 8192 /* largest width or height flappy_draw accepts */

/* First pixel whose centre is at or right of (below) the scaled edge v * scale:
 * ceil(v * scale - 0.5), clamped to [0, size]. */
static inline int flappy_edge_to_pixel(double v, double scale, int size) {
    double u = v * scale - 0.5;
    if (!(u > 0.0)) return 0;
    if (u >= size) return size;
    int i = (int)u;
    return i + (i < u);
}

/* Fill pixels [x0, x1) of a row with one colour: memset for grayscale; for RGB one pixel, then
 * doubling copies of what is already filled. */
static inline void flappy_fill_span(uint8_t* row, int x0, int x1, int colour, int channels) {
    if (channels == 1) {
        memset(row + x0, FLAPPY_PALETTE_GRAY[colour], (size_t)(x1 - x0));
        return;
    }
    uint8_t* p = row + (size_t)x0 * 3;
    size_t len = (size_t)(x1 - x0) * 3, done = 3;
    memcpy(p, FLAPPY_PALETTE_RGB[colour], 3);
    while (done < len) {
        size_t n = done < len - done ? done : len - done;
        memcpy(p + done, p, n);
        done += n;
    }
}

typedef struct {
    int x0, x1, y0, y1;
    int colour;
} FlappyPixelRect;

/* Draw a view into out: height rows of width pixels, each channels bytes (3: RGB, 1: gray),
 * rows packed. Returns 0, or -1 without writing when the size or channel count is not
 * supported (width and height in [1, FLAPPY_FRAME_MAX_SIZE], channels 1 or 3). */
static inline int flappy_draw_view(const FlappyView* view, uint8_t* out, int width, int height, int channels) {
    if (width < 1 || height < 1 || width > FLAPPY_FRAME_MAX_SIZE || height > FLAPPY_FRAME_MAX_SIZE ||
        (channels != 1 && channels != 3))
        return -1;
    FlappyScene scene;
    flappy_scene_build(view, &scene);

    const double top = scene.top, sx = width / FLAPPY_WORLD_WIDTH, sy = height / (FLAPPY_WORLD_HEIGHT - top);
    FlappyPixelRect px[FLAPPY_SCENE_MAX_RECTS];
    int n = 0;
    /* Bit y is set where a band of identical rows begins: row 0 and every rectangle's top and
     * bottom edge. */
    uint64_t band_starts[FLAPPY_FRAME_MAX_SIZE / 64 + 1];
    memset(band_starts, 0, (size_t)(height / 64 + 1) * sizeof(uint64_t));
    band_starts[0] = 1;
    for (int k = 0; k < scene.count; k++) {
        const FlappyRect* r = &scene.rects[k];
        FlappyPixelRect q = {flappy_edge_to_pixel(r->x0, sx, width), flappy_edge_to_pixel(r->x1, sx, width),
                             flappy_edge_to_pixel(r->y0 - top, sy, height), flappy_edge_to_pixel(r->y1 - top, sy, height),
                             r->colour};
        if (q.x0 >= q.x1 || q.y0 >= q.y1) continue; /* thinner than a pixel at this size */
        band_starts[q.y0 >> 6] |= 1ULL << (q.y0 & 63);
        band_starts[q.y1 >> 6] |= 1ULL << (q.y1 & 63);
        px[n++] = q;
    }

    /* The sky and the ground rectangles cover every row edge to edge, so a band's first row is
     * fully painted. */
    const size_t stride = (size_t)width * (size_t)channels;
    uint8_t* row = out;
    for (int y = 0; y < height; y++, row += stride) {
        if (band_starts[y >> 6] & (1ULL << (y & 63))) {
            for (int k = 0; k < n; k++)
                if (px[k].y0 <= y && y < px[k].y1) flappy_fill_span(row, px[k].x0, px[k].x1, px[k].colour, channels);
        } else {
            memcpy(row, row - stride, stride);
        }
    }
    return 0;
}

/* Draw env in its current state; see flappy_draw_view for the buffer and the return value. */
static inline int flappy_draw(const Flappy* env, uint8_t* out, int width, int height, int channels) {
    FlappyView view;
    flappy_view(env, &view);
    return flappy_draw_view(&view, out, width, height, channels);
}

#endif /* FLAPPY_RENDER_H */
