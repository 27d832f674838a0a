/* engine_threads.c — the engine runs every forward pass, its start-up profile included,
 * on one OpenMP team: the engine thread's. A second team (the profile run on the caller's
 * thread) leaves idle threads behind, and once libgomp manages more threads than there
 * are cores it stops spinning at barriers, which cost one sequence ~35% of its decode rate
 * on 2 cores (issue 14). Checked by the process's thread count: after an engine with the
 * profile on and 2 compute threads has served a request, the process holds the main
 * thread, the engine thread and the engine team's one worker — 3, not 4. The model is
 * model_gen's built-in demo (no ../shared needed), written by a child process. */
#include "engine/engine.h"
#include "model/model_gen.h"
#include "tokenizer/tok.h"
#include "t.h"
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_threads_of_process(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

int main(void) {
    if (n_threads_of_process() != 1) { /* no /proc: nothing to count */
        fprintf(stderr, "engine_threads: cannot count this process's threads (/proc/self/task); skipped\n");
        return t_done();
    }
    char path[] = "/tmp/swiftlet-threads-XXXXXX";
    int fd = mkstemp(path);
    T_OK(fd >= 0);
    close(fd);
    /* written by a child process: model_gen runs an OpenMP loop of its own */
    pid_t pid = fork();
    if (pid == 0) {
        model_gen_params p;
        model_gen_params_init(&p);
        p.type = "q8_0";
        sw_err e = {0};
        _exit(model_gen_write(&p, path, &e) == SW_OK ? 0 : 1);
    }
    int st = -1;
    T_OK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    sw_err err = {0};
    model *m = NULL;
    gguf_ctx *g = NULL;
    tok *t = NULL;
    T_CHECK(model_load(path, &m, &err) == SW_OK, "%s", err.msg);
    T_CHECK(gguf_open(path, &g, &err) == SW_OK, "%s", err.msg);
    if (g) T_CHECK(tok_create(g, &t, &err) == SW_OK, "%s", err.msg);
    if (m && t) {
        engine_config c;
        engine_config_default(&c);
        c.n_threads = 2;
        c.calibrate = true;
        c.kv_tokens = 1024;
        engine *e = NULL;
        T_CHECK(engine_create(m, t, &c, &e, &err) == SW_OK, "engine_create: %s", err.msg);
        if (e) {
            int32_t prompt[8] = {72, 101, 108, 108, 111, 32, 119, 111};
            engine_req_params rp = {.prompt = prompt, .n_prompt = 8, .max_tokens = 4, .ignore_eos = true};
            sampler_params_default(&rp.sampling);
            rp.sampling.temperature = 0;
            engine_req *r = NULL;
            T_CHECK(engine_submit(e, &rp, &r, &err) == SW_OK, "engine_submit: %s", err.msg);
            int got = 0;
            engine_finish fin = ENGINE_FINISH_NONE;
            engine_token tk[8];
            for (int i = 0; r && fin == ENGINE_FINISH_NONE && i < 100; i++) got += engine_req_poll(r, tk, 8, 1000, &fin);
            T_EQ_INT(fin, ENGINE_FINISH_LENGTH);
            T_EQ_INT(got, 4);
            int n = n_threads_of_process();
            T_CHECK(n == 3, "%d threads after a request (want 3: main, engine, one OpenMP worker of the engine's team)", n);
            engine_req_release(r);
            engine_destroy(e);
        }
    }
    tok_destroy(t);
    gguf_close(g);
    model_free(m);
    unlink(path);
    return t_done();
}
