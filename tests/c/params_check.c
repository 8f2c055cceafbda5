/* Sets the parameters given as NAME TEXT argument pairs with flappy_set_param, then resolves
 * them; prints "ok" and the table's values, or the first error's message. */
#include "flappy.h"

int main(int argc, char** argv) {
    FlappyParams params = flappy_default_params();
    char err[1024];
    for (int i = 1; i + 1 < argc; i += 2) {
        if (flappy_set_param(&params, argv[i], argv[i + 1], err, sizeof(err)) != 0) {
            printf("error: %s\n", err);
            return 1;
        }
    }
    if (flappy_resolve_params(&params, err, sizeof(err)) != 0) {
        printf("error: %s\n", err);
        return 1;
    }
    printf("ok\n");
    for (int k = 0; k < FLAPPY_NUM_PARAMS; k++) {
        const FlappyParamInfo* info = &FLAPPY_PARAM_INFO[k];
        const char* field = (const char*)&params + info->offset;
        double value = info->kind == FLAPPY_KIND_REAL ? *(const double*)field : *(const int*)field;
        printf("%s %.17g\n", info->name, value);
    }
    return 0;
}
