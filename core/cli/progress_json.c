/*
 * The json renderer: one JSON object per line per event, then a "summary"
 * object. The schema is in docs/progress-json.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "progress.h"

/*
 * Appends `len` bytes as a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not valid UTF-8 replaced by U+FFFD.
 */
static void json_str(kiln_cli_sbuf_t *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t i = 0, run = 0;

    kiln_cli_sbuf_puts(b, "\"");
    while (i < len) {
        unsigned char c = s[i];
        size_t n = kiln_cli_utf8_len(s + i, len - i);

        if (n > 0 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
            i += n;
            run += n;
            continue;
        }
        kiln_cli_sbuf_add(b, (const char *)s + i - run, run);
        run = 0;
        if (n == 0) {
            kiln_cli_sbuf_puts(b, "\\ufffd");
        } else if (c == '"' || c == '\\') {
            kiln_cli_sbuf_printf(b, "\\%c", c);
        } else if (c == '\n') {
            kiln_cli_sbuf_puts(b, "\\n");
        } else if (c == '\r') {
            kiln_cli_sbuf_puts(b, "\\r");
        } else if (c == '\t') {
            kiln_cli_sbuf_puts(b, "\\t");
        } else {
            kiln_cli_sbuf_printf(b, "\\u%04x", c);
        }
        i++;
    }
    kiln_cli_sbuf_add(b, (const char *)s + i - run, run);
    kiln_cli_sbuf_puts(b, "\"");
}

static void json_cstr(kiln_cli_sbuf_t *b, const char *s)
{
    json_str(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* Opens an object: {"type":T,"time":"2006-01-02T15:04:05.999999999Z" */
static void json_open(kiln_cli_sbuf_t *b, const char *type, int64_t time_ns)
{
    time_t secs = (time_t)(time_ns / 1000000000);
    long frac = (long)(time_ns % 1000000000);
    char stamp[64];
    struct tm tm;

    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    kiln_cli_sbuf_printf(b, "{\"type\":\"%s\",\"time\":\"%s.%09ldZ\"", type,
                         stamp, frac);
}

static const char *type_name(kiln_event_type_t type)
{
    switch (type) {
    case KILN_EVENT_VERTEX_STARTED:
        return "started";
    case KILN_EVENT_VERTEX_CACHED:
        return "cached";
    case KILN_EVENT_VERTEX_COMPLETED:
        return "completed";
    case KILN_EVENT_VERTEX_FAILED:
        return "failed";
    case KILN_EVENT_VERTEX_CANCELED:
        return "canceled";
    case KILN_EVENT_LOG:
        return "log";
    case KILN_EVENT_PROGRESS:
        return "progress";
    case KILN_EVENT_WARNING:
        return "warning";
    case KILN_EVENT_MESSAGE:
        return "message";
    }
    return NULL;
}

static void event_fields(kiln_cli_sbuf_t *b, const kiln_event_t *ev)
{
    switch (ev->type) {
    case KILN_EVENT_VERTEX_COMPLETED:
    case KILN_EVENT_VERTEX_CANCELED:
        kiln_cli_sbuf_printf(b, ",\"duration_ns\":%lld",
                             (long long)ev->duration_ns);
        break;
    case KILN_EVENT_VERTEX_FAILED:
        kiln_cli_sbuf_printf(
            b, ",\"duration_ns\":%lld,\"error\":", (long long)ev->duration_ns);
        json_str(b, ev->data, ev->data != NULL ? ev->len : 0);
        break;
    case KILN_EVENT_LOG:
        kiln_cli_sbuf_printf(b, ",\"stream\":\"%s\",\"data\":",
                             ev->stream == 2 ? "stderr" : "stdout");
        json_str(b, ev->data, ev->data != NULL ? ev->len : 0);
        break;
    case KILN_EVENT_PROGRESS:
        kiln_cli_sbuf_printf(b, ",\"current\":%llu,\"total\":%llu",
                             (unsigned long long)ev->current,
                             (unsigned long long)ev->total);
        break;
    case KILN_EVENT_WARNING:
        kiln_cli_sbuf_puts(b, ",\"message\":");
        json_str(b, ev->data, ev->data != NULL ? ev->len : 0);
        break;
    case KILN_EVENT_MESSAGE:
        kiln_cli_sbuf_printf(b, ",\"level\":\"%s\",\"message\":",
                             ev->level >= KILN_LOG_DEBUG ? "debug" : "info");
        json_str(b, ev->data, ev->data != NULL ? ev->len : 0);
        break;
    default:
        break;
    }
}

static void json_event(kiln_cli_progress_t *p, kiln_cli_vertex_t *v,
                       const kiln_event_t *ev)
{
    const char *type = type_name(ev->type);
    kiln_cli_sbuf_t b = {0};

    if (type == NULL) {
        return; /* a later ABI's event: the schema does not know it */
    }
    json_open(&b, type, ev->time_ns);
    if (ev->digest != NULL) {
        kiln_cli_sbuf_printf(&b, ",\"vertex\":%u,\"digest\":", ev->number);
        json_cstr(&b, ev->digest);
        kiln_cli_sbuf_puts(&b, ",\"name\":");
        json_cstr(&b, v != NULL ? v->name : ev->name);
    }
    event_fields(&b, ev);
    kiln_cli_sbuf_puts(&b, "}\n");
    if (!b.oom) {
        kiln_cli_write_all(p->fd, b.data, b.len);
    }
    kiln_cli_sbuf_free(&b);
}

static void json_note(kiln_cli_progress_t *p, const char *msg)
{
}

static void json_finish(kiln_cli_progress_t *p, int status, const char *error,
                        const kiln_solve_stats_t *stats)
{
    kiln_cli_sbuf_t b = {0};
    const char *result = status == 0                ? "ok"
                         : status == KILN_ECANCELED ? "canceled"
                                                    : "failed";

    json_open(&b, "summary", kiln_cli_now_ns());
    kiln_cli_sbuf_printf(&b,
                         ",\"status\":\"%s\",\"vertices\":%u,\"cached\":%u,"
                         "\"run\":%u,\"duration_ns\":%lld",
                         result, stats->total, stats->cached, stats->run,
                         (long long)stats->duration_ns);
    if (error != NULL) {
        kiln_cli_sbuf_puts(&b, ",\"error\":");
        json_cstr(&b, error);
    }
    kiln_cli_sbuf_puts(&b, "}\n");
    if (!b.oom) {
        kiln_cli_write_all(p->fd, b.data, b.len);
    }
    kiln_cli_sbuf_free(&b);
}

const kiln_cli_renderer_t kiln_cli_json_renderer = {
    .event = json_event,
    .line = NULL,
    .note = json_note,
    .finish = json_finish,
};
