/* Stands in for emscripten's header when csrc/web.c is compiled natively (tests/c/web_calls.c):
 * the exports are plain functions there. */
#ifndef FLAPPY_TEST_EMSCRIPTEN_H
#define FLAPPY_TEST_EMSCRIPTEN_H
#define EMSCRIPTEN_KEEPALIVE
#endif
