/*
 * Writes the definition tests/cli/exec.sh builds to standard output: on
 * local://rootfs, a step with a cache mount at /cache, secret `tok` as a
 * file and as $TOK, and the SSH agent; its /out (a scratch mount) is the
 * result. `fail` as the argument makes the step exit 7 instead.
 */
#include <stdio.h>
#include <string.h>

#include <kiln/llb.h>

int main(int argc, char **argv)
{
    const char *script =
        argc > 1 && strcmp(argv[1], "fail") == 0
            ? "echo failing-now; exit 7"
            : "echo run >> /cache/runs; wc -l < /cache/runs > /out/runs; "
              "md5sum < /run/secrets/tok > /out/sum; "
              "printf %s \"$TOK\" | md5sum >> /out/sum; "
              "test -S \"$SSH_AUTH_SOCK\" && echo socket > /out/ssh; "
              "echo step-output";
    const char *argv_[] = {"sh", "-c", script, NULL};
    kiln_llb_t *b = NULL;
    kiln_llb_exec_t *ex;
    kiln_error_t err = {0};

    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0) {
        return 1;
    }
    kiln_llb_set_local_unique_id(b, "kilnexeccli");
    ex = kiln_llb_exec(kiln_llb_local(b, "rootfs"), argv_);
    kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), "cli-cache",
                        KILN_LLB_CACHE_LOCKED, 0);
    kiln_llb_exec_secret(ex, "tok", "/run/secrets/tok", 0, 0, -1, 0);
    kiln_llb_exec_secret_env(ex, "tok2", "TOK", 0);
    kiln_llb_exec_ssh(ex, NULL, NULL, 0, 0, -1, 0);
    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    if (kiln_llb_write(b, kiln_llb_exec_output(ex, "/out"), stdout, &err) < 0) {
        fprintf(stderr, "exec_def: %s\n", err.message);
        kiln_llb_free(b);
        return 1;
    }
    kiln_llb_free(b);
    return 0;
}
