/* Runs an exported policy (csrc/flappy_agent.h) over recorded observations and writes its logits.
 *
 *   agent_logits DESCRIPTION WEIGHTS STEPS_FILE LOGITS_FILE
 *
 * STEPS_FILE holds records of one byte (1: an episode starts here, reset the LSTM) followed by
 * one observation (float32, or uint8 for pixels); LOGITS_FILE gets two float32 per record.
 * On a bad file: one line on stderr, status 2. */
#include "flappy_agent.h"

int main(int argc, char** argv) {
    char err[1024];
    if (argc != 5) {
        fprintf(stderr, "usage: agent_logits DESCRIPTION WEIGHTS STEPS_FILE LOGITS_FILE\n");
        return 2;
    }
    FlappyAgent* agent = flappy_agent_load(argv[1], argv[2], err, sizeof(err));
    if (agent == NULL) {
        fprintf(stderr, "agent_logits: %s\n", err);
        return 2;
    }
    FlappyParams params;
    flappy_agent_env_params(agent, &params, err, sizeof(err));
    size_t obs_bytes = (size_t)flappy_agent_obs_size(agent) * (flappy_obs_spec(&params).is_uint8 ? 1 : sizeof(float));
    FILE* in = fopen(argv[3], "rb");
    FILE* out = fopen(argv[4], "wb");
    unsigned char* record = (unsigned char*)malloc(1 + obs_bytes);
    float* observation = (float*)malloc(obs_bytes); /* aligned for floats */
    int status = in && out && record && observation ? 0 : 2;
    while (status == 0 && fread(record, 1, 1 + obs_bytes, in) == 1 + obs_bytes) {
        float logits[FLAPPY_AGENT_NUM_ACTIONS];
        memcpy(observation, record + 1, obs_bytes);
        if (record[0]) flappy_agent_reset(agent);
        flappy_agent_act(agent, observation, logits);
        fwrite(logits, sizeof(float), FLAPPY_AGENT_NUM_ACTIONS, out);
    }
    if (status != 0) fprintf(stderr, "agent_logits: cannot open %s or %s\n", argv[3], argv[4]);
    if (in) fclose(in);
    if (out) fclose(out);
    free(record);
    free(observation);
    flappy_agent_free(agent);
    return status;
}
