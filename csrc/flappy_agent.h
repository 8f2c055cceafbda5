/* flappy_agent.h: a policy exported by `puffer export`, run in C with PufferLib's puffernet.h.
 *
 * puffernet.h comes from the installed pufferlib package, never from this repository: build with
 *   -I "$(python -c 'import pufferlib, os; print(os.path.dirname(pufferlib.__file__))')/extensions"
 * and -ffp-contract=off (as for flappy.h). Include this header in one C file only: puffernet.h
 * defines its functions without `static`.
 *
 * An exported policy is two files. The weights: every tensor of the PyTorch policy's
 * named_parameters(), flattened and concatenated, float32 (PufferLib's own export format).
 * The description, text, one `key value...` line each, in the weights' order where it matters:
 *
 *   flappy-policy 1                  first line: the format and its version
 *   policy Policy                    Policy (MLP) or CNN
 *   rnn None                         None or Recurrent (PufferLib's LSTMWrapper)
 *   trained_with puffer_flappy       the config it was trained with (for people; not read here)
 *   obs_scale 8                      the encoder's input is (observation - obs_offset) * obs_scale,
 *   obs_offset 0                     scale in (0, 256] (features: [policy] obs_scale; pixels: the
 *                                    sky's gray level and 1/32); obs_offset may be left out: 0
 *   encoder linear 8 64              the encoder's layers, in order: linear IN OUT,
 *   encoder gelu                     gelu, relu, conv2d IN_CHANNELS OUT_CHANNELS KERNEL STRIDE
 *   lstm 64 64                       Recurrent only: INPUT HIDDEN
 *   actor 64 2                       the action head: IN ACTIONS
 *   value 64 1                       the value head: IN 1 (its weights are in the file; acting skips it)
 *   weights 4867                     the number of floats in the weights file
 *   env gap 100                      each env parameter of flappy.h's table, as flappy_set_param takes it
 *
 * The layers' lines are in the order their tensors are in the weights; the observation's shape
 * comes from the env parameters (flappy_obs_spec). Layers are puffernet's (Linear, Conv2D, ReLU,
 * LSTM) except GELU: puffernet's _gelu is a tanh approximation with a coefficient of 0.6629,
 * where torch's nn.GELU() computes x * Phi(x) with erf, and the two differ by up to 0.05 on
 * [-4, 4]; even torch's own tanh approximation is 5e-4 away. So GELU here is the erf form,
 * as torch computes it.
 */
#ifndef FLAPPY_AGENT_H
#define FLAPPY_AGENT_H

#include <errno.h>
#include <stdlib.h>

#include "flappy.h"
/* puffernet.h is PufferLib's, built with fewer warnings than this project asks of its own code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "puffernet.h"
#pragma GCC diagnostic pop

#define FLAPPY_AGENT_FORMAT "flappy-policy 1"
#define FLAPPY_AGENT_MAX_LAYERS 16
/* Most values any one layer takes or gives, and most weights: far below int's range. */
#define FLAPPY_AGENT_MAX_VALUES (1 << 22)
#define FLAPPY_AGENT_MAX_WEIGHTS (1 << 26)
#define FLAPPY_AGENT_NUM_ACTIONS 2

enum { FLAPPY_LAYER_LINEAR, FLAPPY_LAYER_CONV2D, FLAPPY_LAYER_RELU, FLAPPY_LAYER_GELU, FLAPPY_LAYER_LSTM,
       FLAPPY_LAYER_ACTOR, FLAPPY_LAYER_VALUE };

typedef struct {
    int type;
    int in_size, out_size;          /* values taken and given */
    int channels, height, width;    /* conv2d: its input's shape */
    int out_channels, kernel, stride;
    long long num_weights; /* long long: long is 32 bits in WebAssembly */
    void* net;     /* puffernet's Linear, Conv2D, ReLU or LSTM; NULL for GELU */
    float* output; /* where its result is */
} FlappyAgentLayer;

struct FlappyAgent {
    FlappyParams params; /* the env it was trained on, resolved */
    int obs_size, obs_is_uint8;
    float obs_offset, obs_scale;
    int num_layers; /* in file order: encoder layers, then actor, value, lstm as the file has them */
    FlappyAgentLayer layers[FLAPPY_AGENT_MAX_LAYERS];
    FlappyAgentLayer *lstm, *actor;
    Weights* weights; /* the agent's own copy */
    float* input;     /* the observation as floats */
};
typedef struct FlappyAgent FlappyAgent;

void flappy_agent_free(FlappyAgent* agent);

/* Parse up to `count` integers in [1, FLAPPY_AGENT_MAX_VALUES] from text, and nothing else. */
static inline int flappy_agent_parse_sizes(const char* text, int* out, int count) {
    for (int k = 0; k < count; k++) {
        char* end;
        long value = strtol(text, &end, 10);
        if (end == text || value < 1 || value > FLAPPY_AGENT_MAX_VALUES) return -1;
        out[k] = (int)value;
        text = end;
    }
    while (*text == ' ' || *text == '\t') text++;
    return *text == '\0' ? 0 : -1;
}

/* One description line, split in place: its key and the rest (both without surrounding blanks). */
static inline void flappy_agent_split(char* line, char** key, char** rest) {
    size_t n = strlen(line);
    while (n > 0 && isspace((unsigned char)line[n - 1])) line[--n] = '\0';
    while (isspace((unsigned char)*line)) line++;
    *key = line;
    while (*line && !isspace((unsigned char)*line)) line++;
    if (*line) *line++ = '\0';
    while (isspace((unsigned char)*line)) line++;
    *rest = line;
}

/* Read the description into agent (layers not built yet); 0, or -1 with a message. */
static int flappy_agent_parse(FlappyAgent* agent, const char* description, long* num_weights, char* err,
                              size_t err_size) {
    size_t length = strlen(description);
    char* text = (char*)malloc(length + 1);
    if (text == NULL) {
        snprintf(err, err_size, "out of memory reading the policy description");
        return -1;
    }
    int shape[3] = {0, 0, 0}; /* the values flowing between layers: channels, height, width */
    int flat = 0, line_number = 0, seen_format = 0, is_cnn = -1, is_recurrent = -1, status = -1;
    long long declared_weights = -1, total = 0;
    char* next;
    FlappyObsSpec spec;
    agent->params = flappy_default_params();
    agent->obs_offset = 0.0f;
    agent->obs_scale = 1.0f;
    /* Env parameters first: the observation's shape, which the layers must fit, comes from them. */
    for (int pass = 0; pass < 2; pass++) {
        memcpy(text, description, length + 1); /* splitting lines writes into it */
        next = text;
        line_number = 0;
        while (next != NULL) {
            char *line = next, *key, *rest, *newline = strchr(next, '\n');
            if (newline != NULL) *newline = '\0';
            next = newline != NULL ? newline + 1 : NULL;
            line_number++;
            char shown[96]; /* the line as written, for messages */
            flappy_agent_split(line, &key, &rest);
            snprintf(shown, sizeof(shown), "%s%s%s", key, *rest ? " " : "", rest);
            if (*key == '\0' || *key == '#') goto line_done;
            if (pass == 0) {
                if (!seen_format) {
                    if (strcmp(key, "flappy-policy") != 0 || strcmp(rest, "1") != 0) {
                        snprintf(err, err_size, "not a policy description of this format: its first line must be '%s'",
                                 FLAPPY_AGENT_FORMAT);
                        goto done;
                    }
                    seen_format = 1;
                } else if (strcmp(key, "env") == 0) {
                    char *name, *value;
                    flappy_agent_split(rest, &name, &value);
                    if (flappy_set_param(&agent->params, name, value, err, err_size) != 0) goto done;
                }
                goto line_done;
            }
            if (strcmp(key, "flappy-policy") == 0 || strcmp(key, "env") == 0 || strcmp(key, "trained_with") == 0) {
                goto line_done;
            } else if (strcmp(key, "policy") == 0) {
                if (strcmp(rest, "Policy") != 0 && strcmp(rest, "CNN") != 0) {
                    snprintf(err, err_size, "unknown policy type '%.64s'; known: Policy, CNN", rest);
                    goto done;
                }
                is_cnn = strcmp(rest, "CNN") == 0;
            } else if (strcmp(key, "rnn") == 0) {
                if (strcmp(rest, "None") != 0 && strcmp(rest, "Recurrent") != 0) {
                    snprintf(err, err_size, "unknown rnn type '%.64s'; known: None, Recurrent", rest);
                    goto done;
                }
                is_recurrent = strcmp(rest, "Recurrent") == 0;
            } else if (strcmp(key, "obs_scale") == 0) {
                char* end;
                double scale = strtod(rest, &end);
                if (end == rest || *end != '\0' || !(scale > 0.0 && scale <= 256.0)) {
                    snprintf(err, err_size, "line %d: obs_scale must be a number in (0, 256]", line_number);
                    goto done;
                }
                agent->obs_scale = (float)scale;
            } else if (strcmp(key, "obs_offset") == 0) {
                char* end;
                double offset = strtod(rest, &end);
                if (end == rest || *end != '\0' || !(offset >= -255.0 && offset <= 255.0)) {
                    snprintf(err, err_size, "line %d: obs_offset must be a number in [-255, 255]", line_number);
                    goto done;
                }
                agent->obs_offset = (float)offset;
            } else if (strcmp(key, "weights") == 0) {
                char* end;
                errno = 0;
                long long count = strtoll(rest, &end, 10);
                if (end == rest || *end != '\0' || errno != 0 || count < 1 || count > FLAPPY_AGENT_MAX_WEIGHTS) {
                    snprintf(err, err_size, "line %d: weights must be a count in [1, %d]", line_number,
                             FLAPPY_AGENT_MAX_WEIGHTS);
                    goto done;
                }
                declared_weights = count;
            } else if (strcmp(key, "encoder") == 0 || strcmp(key, "lstm") == 0 || strcmp(key, "actor") == 0 ||
                       strcmp(key, "value") == 0) {
                FlappyAgentLayer* layer = &agent->layers[agent->num_layers];
                int sizes[4];
                char *kind = NULL, *args = rest;
                if (agent->num_layers == FLAPPY_AGENT_MAX_LAYERS) {
                    snprintf(err, err_size, "line %d: more than %d layers", line_number, FLAPPY_AGENT_MAX_LAYERS);
                    goto done;
                }
                if (strcmp(key, "encoder") == 0) {
                    flappy_agent_split(rest, &kind, &args);
                    if (agent->num_layers > 0 && agent->layers[agent->num_layers - 1].type >= FLAPPY_LAYER_LSTM) {
                        snprintf(err, err_size, "line %d: encoder layers must come before the heads", line_number);
                        goto done;
                    }
                }
                if (strcmp(key, "encoder") == 0 && strcmp(kind, "linear") == 0) {
                    if (flappy_agent_parse_sizes(args, sizes, 2) != 0) goto bad_sizes;
                    *layer = (FlappyAgentLayer){.type = FLAPPY_LAYER_LINEAR, .in_size = sizes[0], .out_size = sizes[1]};
                    layer->num_weights = ((long long)sizes[0] + 1) * sizes[1];
                    shape[0] = sizes[1], shape[1] = shape[2] = 1;
                } else if (strcmp(key, "encoder") == 0 && strcmp(kind, "conv2d") == 0) {
                    if (flappy_agent_parse_sizes(args, sizes, 4) != 0) goto bad_sizes;
                    if (shape[0] != sizes[0] || shape[1] < sizes[2] || shape[2] < sizes[2]) {
                        snprintf(err, err_size, "line %d: conv2d takes %d channels of at least %d x %d, but gets %d of "
                                 "%d x %d", line_number, sizes[0], sizes[2], sizes[2], shape[0], shape[1], shape[2]);
                        goto done;
                    }
                    /* puffernet's Conv2D allocates out_channels x the input's height x width floats */
                    if ((long long)sizes[1] * shape[1] * shape[2] > FLAPPY_AGENT_MAX_WEIGHTS) goto bad_sizes;
                    *layer = (FlappyAgentLayer){.type = FLAPPY_LAYER_CONV2D, .in_size = flat, .channels = shape[0],
                                                .height = shape[1], .width = shape[2], .out_channels = sizes[1],
                                                .kernel = sizes[2], .stride = sizes[3]};
                    layer->num_weights = ((long long)sizes[0] * sizes[2] * sizes[2] + 1) * sizes[1];
                    shape[0] = sizes[1];
                    shape[1] = (shape[1] - sizes[2]) / sizes[3] + 1;
                    shape[2] = (shape[2] - sizes[2]) / sizes[3] + 1;
                    if ((long long)shape[0] * shape[1] * shape[2] > FLAPPY_AGENT_MAX_VALUES) goto bad_sizes;
                    layer->out_size = shape[0] * shape[1] * shape[2];
                } else if (strcmp(key, "encoder") == 0 && (strcmp(kind, "relu") == 0 || strcmp(kind, "gelu") == 0)) {
                    if (*args != '\0') goto bad_sizes;
                    *layer = (FlappyAgentLayer){.type = kind[0] == 'r' ? FLAPPY_LAYER_RELU : FLAPPY_LAYER_GELU,
                                                .in_size = flat, .out_size = flat};
                } else if (strcmp(key, "encoder") == 0) {
                    snprintf(err, err_size, "line %d: unknown layer '%.32s'; known: linear, conv2d, relu, gelu",
                             line_number, kind);
                    goto done;
                } else if (strcmp(key, "lstm") == 0) {
                    if (flappy_agent_parse_sizes(args, sizes, 2) != 0) goto bad_sizes;
                    *layer = (FlappyAgentLayer){.type = FLAPPY_LAYER_LSTM, .in_size = sizes[0], .out_size = sizes[1]};
                    layer->num_weights = 4LL * sizes[1] * ((long long)sizes[0] + sizes[1] + 2);
                } else {
                    if (flappy_agent_parse_sizes(args, sizes, 2) != 0) goto bad_sizes;
                    int is_actor = strcmp(key, "actor") == 0;
                    int wanted = is_actor ? FLAPPY_AGENT_NUM_ACTIONS : 1;
                    if (sizes[1] != wanted) {
                        snprintf(err, err_size, "line %d: the %s head must give %d value%s, not %d", line_number, key,
                                 wanted, wanted == 1 ? "" : "s", sizes[1]);
                        goto done;
                    }
                    *layer = (FlappyAgentLayer){.type = is_actor ? FLAPPY_LAYER_ACTOR : FLAPPY_LAYER_VALUE,
                                                .in_size = sizes[0], .out_size = sizes[1]};
                    layer->num_weights = ((long long)sizes[0] + 1) * sizes[1];
                }
                /* An encoder layer reads the one before; the LSTM and the heads are checked at the end
                 * (the heads' lines come before the LSTM's, as their tensors do). */
                if (layer->type < FLAPPY_LAYER_LSTM) {
                    if (layer->in_size != flat) {
                        snprintf(err, err_size, "line %d: %s %s takes %d values, but gets %d", line_number, key,
                                 kind, layer->in_size, flat);
                        goto done;
                    }
                    flat = layer->out_size;
                }
                total += layer->num_weights;
                if (total > FLAPPY_AGENT_MAX_WEIGHTS) goto bad_sizes;
                agent->num_layers++;
            } else {
                snprintf(err, err_size, "line %d: unknown key '%.32s'", line_number, key);
                goto done;
            }
        line_done:
            continue;
        bad_sizes:
            snprintf(err, err_size, "line %d: bad or too large sizes in '%s'", line_number, shown);
            goto done;
        }
        if (pass == 0) {
            if (!seen_format) {
                snprintf(err, err_size, "not a policy description of this format: its first line must be '%s'",
                         FLAPPY_AGENT_FORMAT);
                goto done;
            }
            if (flappy_resolve_params(&agent->params, err, err_size) != 0) goto done;
            spec = flappy_obs_spec(&agent->params);
            agent->obs_size = (int)spec.size;
            agent->obs_is_uint8 = spec.is_uint8;
            shape[0] = spec.ndim == 3 ? spec.shape[0] : (int)spec.size;
            shape[1] = spec.ndim == 3 ? spec.shape[1] : 1;
            shape[2] = spec.ndim == 3 ? spec.shape[2] : 1;
            flat = (int)spec.size;
        }
    }
    int heads[FLAPPY_LAYER_VALUE + 1] = {0}, lstm_size = flat, bad_input = -1;
    for (int k = 0; k < agent->num_layers; k++) {
        heads[agent->layers[k].type]++;
        if (agent->layers[k].type == FLAPPY_LAYER_LSTM) lstm_size = agent->layers[k].out_size;
    }
    for (int k = 0; k < agent->num_layers; k++) {
        const FlappyAgentLayer* layer = &agent->layers[k];
        int takes = layer->type == FLAPPY_LAYER_LSTM ? flat : lstm_size;
        if (layer->type >= FLAPPY_LAYER_LSTM && layer->in_size != takes && bad_input < 0) bad_input = k;
    }
    if (is_cnn < 0 || is_recurrent < 0) {
        snprintf(err, err_size, "the description names no %s", is_cnn < 0 ? "policy type" : "rnn type");
    } else if (heads[FLAPPY_LAYER_ACTOR] != 1 || heads[FLAPPY_LAYER_VALUE] != 1) {
        snprintf(err, err_size, "the description must have one actor and one value head");
    } else if (heads[FLAPPY_LAYER_LSTM] != is_recurrent) {
        snprintf(err, err_size, "rnn %s needs %s lstm line", is_recurrent ? "Recurrent" : "None",
                 is_recurrent ? "one" : "no");
    } else if (heads[FLAPPY_LAYER_CONV2D] > 0 && !is_cnn) {
        snprintf(err, err_size, "policy Policy has no conv2d layers");
    } else if (bad_input >= 0) {
        const FlappyAgentLayer* layer = &agent->layers[bad_input];
        snprintf(err, err_size, "the %s takes %d values, but gets %d",
                 layer->type == FLAPPY_LAYER_LSTM ? "lstm" : (layer->type == FLAPPY_LAYER_ACTOR ? "actor" : "value head"),
                 layer->in_size, layer->type == FLAPPY_LAYER_LSTM ? flat : lstm_size);
    } else if (declared_weights != total) {
        snprintf(err, err_size, "the description's layers take %lld weights, but it says weights %lld", total,
                 declared_weights);
    } else {
        *num_weights = (long)total; /* at most FLAPPY_AGENT_MAX_WEIGHTS */
        status = 0;
    }
done:
    free(text);
    return status;
}

/* An agent from an exported description and its weights (num_weights floats, copied); NULL and
 * a one-line message in err if they do not fit each other. */
FlappyAgent* flappy_agent_new(const char* description, const float* weights, long num_weights, char* err,
                              size_t err_size) {
    FlappyAgent* agent = (FlappyAgent*)calloc(1, sizeof(FlappyAgent));
    long needed = 0;
    if (agent == NULL) {
        snprintf(err, err_size, "out of memory for the agent");
        return NULL;
    }
    if (flappy_agent_parse(agent, description, &needed, err, err_size) != 0) {
        free(agent);
        return NULL;
    }
    if (num_weights != needed) {
        snprintf(err, err_size, "the weights hold %ld floats (%lld bytes), but the description's policy needs %ld "
                 "(%lld bytes)", num_weights, 4LL * num_weights, needed, 4LL * needed);
        free(agent);
        return NULL;
    }
    int num_layers = agent->num_layers;
    agent->num_layers = 0; /* counts the built ones, for flappy_agent_free */
    agent->weights = (Weights*)calloc(1, sizeof(Weights) + (size_t)needed * sizeof(float));
    agent->input = (float*)calloc((size_t)agent->obs_size, sizeof(float));
    if (agent->weights == NULL || agent->input == NULL) goto out_of_memory;
    agent->weights->data = (float*)(agent->weights + 1);
    agent->weights->size = (int)needed;
    memcpy(agent->weights->data, weights, (size_t)needed * sizeof(float));
    for (int k = 0; k < num_layers; k++) {
        FlappyAgentLayer* layer = &agent->layers[k];
        /* puffernet's constructors take their tensors from the weights in call order. */
        switch (layer->type) {
        case FLAPPY_LAYER_LINEAR:
        case FLAPPY_LAYER_ACTOR:
        case FLAPPY_LAYER_VALUE: {
            Linear* linear = make_linear(agent->weights, 1, layer->in_size, layer->out_size);
            layer->net = linear;
            layer->output = linear ? linear->output : NULL;
            break;
        }
        case FLAPPY_LAYER_CONV2D: {
            Conv2D* conv = make_conv2d(agent->weights, 1, layer->width, layer->height, layer->channels,
                                       layer->out_channels, layer->kernel, layer->stride);
            layer->net = conv;
            layer->output = conv ? conv->output : NULL;
            break;
        }
        case FLAPPY_LAYER_RELU: {
            ReLU* relu = make_relu(1, layer->in_size);
            layer->net = relu;
            layer->output = relu ? relu->output : NULL;
            break;
        }
        case FLAPPY_LAYER_GELU:
            layer->output = (float*)calloc((size_t)layer->in_size, sizeof(float));
            break;
        case FLAPPY_LAYER_LSTM: {
            LSTM* cell = make_lstm(agent->weights, 1, layer->in_size, layer->out_size);
            layer->net = cell;
            layer->output = cell ? cell->state_h : NULL;
            agent->lstm = layer;
            break;
        }
        }
        agent->num_layers++;
        if (layer->output == NULL) goto out_of_memory;
        if (layer->type == FLAPPY_LAYER_ACTOR) agent->actor = layer;
    }
    return agent;
out_of_memory:
    snprintf(err, err_size, "out of memory building the policy");
    flappy_agent_free(agent);
    return NULL;
}

/* The whole of a file, NUL-terminated, and its size in bytes; NULL and a message on failure. */
static char* flappy_agent_read_file(const char* path, long* size, char* err, size_t err_size) {
    FILE* file = fopen(path, "rb");
    char* data = NULL;
    if (file == NULL) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(file, 0, SEEK_END) != 0 || (*size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
    } else if ((data = (char*)malloc((size_t)*size + 1)) == NULL) {
        snprintf(err, err_size, "out of memory reading %s", path);
    } else if (fread(data, 1, (size_t)*size, file) != (size_t)*size) {
        snprintf(err, err_size, "cannot read %s", path);
        free(data);
        data = NULL;
    } else {
        data[*size] = '\0';
    }
    fclose(file);
    return data;
}

/* An agent from the two files `puffer export` writes; NULL and a one-line message if either
 * is unreadable or they do not fit each other (a weights file is read whole, never past its end). */
FlappyAgent* flappy_agent_load(const char* description_path, const char* weights_path, char* err, size_t err_size) {
    long description_size, weights_size;
    FlappyAgent* agent = NULL;
    char* description = flappy_agent_read_file(description_path, &description_size, err, err_size);
    char* weights = description ? flappy_agent_read_file(weights_path, &weights_size, err, err_size) : NULL;
    if (weights != NULL && weights_size % (long)sizeof(float) != 0) {
        snprintf(err, err_size, "%s has %ld bytes, not a whole number of float32 weights", weights_path, weights_size);
    } else if (weights != NULL && strlen(description) != (size_t)description_size) {
        snprintf(err, err_size, "%s is not a text file", description_path);
    } else if (weights != NULL) {
        char detail[512];
        /* malloc's alignment suits floats */
        agent = flappy_agent_new(description, (const float*)(void*)weights, weights_size / (long)sizeof(float),
                                 detail, sizeof(detail));
        if (agent == NULL) snprintf(err, err_size, "%s with %s: %s", description_path, weights_path, detail);
    }
    free(description);
    free(weights);
    return agent;
}

/* Values in one observation: floats (features, lidar) or bytes (pixels). */
int flappy_agent_obs_size(const FlappyAgent* agent) { return agent->obs_size; }

/* "lidar observations of shape (181,) float32": what parameters p make the env observe. */
static void flappy_agent_describe_obs(const FlappyParams* p, char* out, size_t out_size) {
    FlappyObsSpec spec = flappy_obs_spec(p);
    if (spec.ndim == 3)
        snprintf(out, out_size, "%s observations of shape (%d, %d, %d) uint8", FLAPPY_CHOICES_obs_mode[p->obs_mode],
                 spec.shape[0], spec.shape[1], spec.shape[2]);
    else
        snprintf(out, out_size, "%s observations of shape (%d,) float32", FLAPPY_CHOICES_obs_mode[p->obs_mode],
                 spec.shape[0]);
}

/* 0 when the env parameters p (resolved) give the observations the agent was trained on: the
 * same mode, element type and shape. Otherwise -1 and a one-line message: another observation
 * would be read past its buffer's end, or mean something else to the network. */
int flappy_agent_check_obs(const FlappyAgent* agent, const FlappyParams* p, char* err, size_t err_size) {
    FlappyObsSpec given = flappy_obs_spec(p), taken = flappy_obs_spec(&agent->params);
    if (p->obs_mode == agent->params.obs_mode && given.ndim == taken.ndim && given.is_uint8 == taken.is_uint8 &&
        given.size == taken.size && memcmp(given.shape, taken.shape, sizeof(given.shape)) == 0)
        return 0;
    char gives[96], takes[96];
    flappy_agent_describe_obs(p, gives, sizeof(gives));
    flappy_agent_describe_obs(&agent->params, takes, sizeof(takes));
    snprintf(err, err_size, "these env parameters give %s; the policy takes %s", gives, takes);
    return -1;
}

/* The env parameters the policy was trained with, resolved. */
int flappy_agent_env_params(const FlappyAgent* agent, FlappyParams* out, char* err, size_t err_size) {
    *out = agent->params;
    return flappy_resolve_params(out, err, err_size);
}

/* torch's nn.GELU(): x * Phi(x), Phi by erf, in float32. */
static inline void flappy_agent_gelu(const float* input, float* output, int size) {
    for (int i = 0; i < size; i++) output[i] = 0.5f * input[i] * (1.0f + erff(input[i] * 0.70710678118654752f));
}

/* Zero the LSTM's state: call at every episode start. */
void flappy_agent_reset(FlappyAgent* agent) {
    if (agent->lstm == NULL) return;
    LSTM* cell = (LSTM*)agent->lstm->net;
    memset(cell->state_h, 0, (size_t)cell->hidden_size * sizeof(float));
    memset(cell->state_c, 0, (size_t)cell->hidden_size * sizeof(float));
}

/* Run the policy on one observation (float32, or uint8 for pixels, scaled as in training): writes
 * the action logits and returns the greedy action (the first of equal logits, as torch's argmax). */
int flappy_agent_act(FlappyAgent* agent, const void* observation, float logits[FLAPPY_AGENT_NUM_ACTIONS]) {
    for (int i = 0; i < agent->obs_size; i++) {
        float value = agent->obs_is_uint8 ? (float)((const uint8_t*)observation)[i] : ((const float*)observation)[i];
        agent->input[i] = (value - agent->obs_offset) * agent->obs_scale;
    }
    float* x = agent->input;
    for (int k = 0; k < agent->num_layers; k++) {
        FlappyAgentLayer* layer = &agent->layers[k];
        switch (layer->type) {
        case FLAPPY_LAYER_LINEAR: linear((Linear*)layer->net, x); break;
        case FLAPPY_LAYER_CONV2D: conv2d((Conv2D*)layer->net, x); break;
        case FLAPPY_LAYER_RELU: relu((ReLU*)layer->net, x); break;
        case FLAPPY_LAYER_GELU: flappy_agent_gelu(x, layer->output, layer->in_size); break;
        default: continue; /* the heads and the LSTM run after the encoder */
        }
        x = layer->output;
    }
    if (agent->lstm != NULL) {
        lstm((LSTM*)agent->lstm->net, x);
        x = agent->lstm->output;
    }
    linear((Linear*)agent->actor->net, x);
    int best = 0;
    for (int a = 0; a < FLAPPY_AGENT_NUM_ACTIONS; a++) {
        logits[a] = agent->actor->output[a];
        if (logits[a] > logits[best]) best = a;
    }
    return best;
}

void flappy_agent_free(FlappyAgent* agent) {
    if (agent == NULL) return;
    for (int k = 0; k < agent->num_layers; k++) {
        if (agent->layers[k].type == FLAPPY_LAYER_GELU)
            free(agent->layers[k].output);
        else
            free(agent->layers[k].net);
    }
    free(agent->weights);
    free(agent->input);
    free(agent);
}

#endif
