/*
 * kiln-example-embed: embeds the kiln engine (no daemon, no kiln binary).
 * Builds a small definition with the builder, solves it on a store root and
 * writes the result's files into a directory, printing progress events:
 *
 *     kiln-example-embed ROOT DEST
 *
 * Run it twice: the second run takes every vertex from the store.
 *
 * Uses only the public API (<kiln/kiln.h>, <kiln/llb.h>).
 */
#include <stdio.h>
#include <string.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

static const char config[] = "listen = 127.0.0.1:8080\n";

/* /etc/app.conf and /srv/www/index.html on an empty filesystem, then /srv
 * copied into /app. */
static kiln_definition_t *make_definition(kiln_error_t *err)
{
    kiln_llb_t *b = NULL;
    kiln_llb_state_t *st;
    kiln_llb_file_t *fa;
    kiln_definition_t *def = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;

    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0) {
        return NULL;
    }
    fa = kiln_llb_actions(b);
    fa = kiln_llb_mkdir(fa, "/etc", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_mkfile(fa, "/etc/app.conf", 0644, config, strlen(config), 0);
    st = kiln_llb_custom_name(kiln_llb_file(kiln_llb_scratch(b), fa),
                              "write /etc/app.conf");
    fa = kiln_llb_actions(b);
    fa = kiln_llb_mkdir(fa, "/srv/www", 0755, KILN_LLB_MKDIR_PARENTS);
    fa = kiln_llb_mkfile(fa, "/srv/www/index.html", 0644, "<h1>hi</h1>\n",
                         12, 0);
    st = kiln_llb_custom_name(kiln_llb_file(st, fa), "write the site");
    fa = kiln_llb_copy(kiln_llb_actions(b), st, "/srv/www", "/app", 0);
    st = kiln_llb_custom_name(kiln_llb_file(st, fa), "copy the site to /app");
    if (kiln_llb_marshal(b, st, &bytes, &len, err) == 0) {
        kiln_definition_load(bytes, len, err, &def);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

/* Called on the engine's thread for every event. */
static void on_event(const kiln_event_t *ev, void *userdata)
{
    (void)userdata;
    switch (ev->type) {
    case KILN_EVENT_VERTEX_CACHED:
        printf("#%u CACHED %s\n", ev->number, ev->name);
        break;
    case KILN_EVENT_VERTEX_COMPLETED:
        printf("#%u DONE %s (%.3fs)\n", ev->number, ev->name,
               (double)ev->duration_ns / 1e9);
        break;
    case KILN_EVENT_VERTEX_FAILED:
        printf("#%u ERROR %s: %.*s\n", ev->number, ev->name, (int)ev->len,
               (const char *)ev->data);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_solve_stats_t stats = {0};
    kiln_error_t err = {0};
    kiln_engine_t *engine = NULL;
    kiln_definition_t *def;
    kiln_solve_t *solve = NULL;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT DEST\n", argv[0]);
        return 2;
    }
    def = make_definition(&err);
    if (def == NULL) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
        return 1;
    }
    eo.root = argv[1];
    rc = kiln_engine_new(&eo, &err, &engine);
    if (rc == 0) {
        so.definition = def;
        so.output = KILN_OUTPUT_LOCAL;
        so.output_dest = argv[2];
        so.on_event = on_event;
        rc = kiln_solve_start(engine, &so, &err, &solve);
    }
    if (rc == 0) {
        rc = kiln_solve_wait(solve, &err);
        kiln_solve_stats(solve, &stats);
        kiln_solve_free(solve);
    }
    kiln_engine_free(engine);
    kiln_definition_free(def);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
        return 1;
    }
    printf("%u vertices: %u cached, %u run\n", stats.total, stats.cached,
           stats.run);
    return 0;
}
