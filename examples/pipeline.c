/*
 * kiln-example-pipeline: builds a small LLB pipeline with kiln's definition
 * builder and writes the marshaled pb.Definition to standard output (or to
 * the file named as the only argument), ready for
 *
 *     kiln-example-pipeline | kiln debug dump-llb
 *     kiln-example-pipeline | buildctl build --output type=local,dest=out
 *
 * The pipeline: a busybox image runs a command that writes a file into a
 * scratch mount; a file op assembles /app from that output and a generated
 * README; a merge lays /app over the image.
 *
 * Uses only the public API (<kiln/llb.h>). Error handling relies on the
 * builder's sticky errors: nothing is checked until marshaling.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kiln/llb.h>

static const char readme[] = "Built by kiln's LLB builder.\n";

/* Builds the graph; returns the result state (NULL after an error). */
static kiln_llb_state_t *build(kiln_llb_t *b)
{
    static const char *const argv[] = {
        "sh", "-c", "echo hello from kiln > /out/hello.txt", NULL};
    kiln_llb_state_t *base, *out, *app;
    kiln_llb_exec_t *run;
    kiln_llb_file_t *fa;

    base = kiln_llb_custom_name(kiln_llb_image(b, "busybox:latest"), "busybox");

    /* Run a command; its /out mount starts empty and becomes an output. */
    run = kiln_llb_exec(base, argv);
    run = kiln_llb_exec_env(run, "GREETING", "hello");
    run = kiln_llb_exec_mount(run, "/out", kiln_llb_scratch(b), NULL, 0);
    out = kiln_llb_exec_output(run, "/out");
    kiln_llb_custom_name(out, "write hello.txt");

    /* Assemble /app on an empty filesystem. */
    fa = kiln_llb_actions(b);
    fa = kiln_llb_mkdir(fa, "/app", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_mkfile(fa, "/app/README", 0644, readme, strlen(readme), 0);
    fa = kiln_llb_copy(fa, out, "/hello.txt", "/app/", 0);
    fa = kiln_llb_file_owner_id(fa, 1000, 1000);
    app = kiln_llb_custom_name(kiln_llb_file(kiln_llb_scratch(b), fa),
                               "assemble /app");

    /* Lay /app over the image without copying the image. */
    return kiln_llb_custom_name(
        kiln_llb_merge(b, (kiln_llb_state_t *[]){base, app}, 2),
        "image + /app");
}

int main(int argc, char **argv)
{
    kiln_error_t err = {0};
    kiln_llb_t *b = NULL;
    FILE *out = stdout;
    int rc;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
        return 2;
    }
    if (argc == 1 && isatty(STDOUT_FILENO)) {
        fprintf(stderr,
                "%s: refusing to write a binary definition to a "
                "terminal; pipe it into 'kiln debug dump-llb'\n",
                argv[0]);
        return 2;
    }
    rc = kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], kiln_strerror(rc));
        return 1;
    }
    if (argc == 2 && (out = fopen(argv[1], "wb")) == NULL) {
        perror(argv[1]);
        kiln_llb_free(b);
        return 1;
    }
    rc = kiln_llb_write(b, build(b), out, &err);
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        rc = KILN_EIO;
        snprintf(err.message, sizeof(err.message), "%s: write failed", argv[1]);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
    }
    kiln_llb_free(b);
    return rc < 0 ? 1 : 0;
}
