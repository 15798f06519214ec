/*
 * The http source plugin (schemes "https" and "http"): internal interfaces
 * shared by its files.
 *
 *   http.c        descriptor, translate, resolve, fetch
 *   http_src.c    SourceOp attrs, file names, the cache key
 *   http_time.c   HTTP dates (Last-Modified)
 *   http_get.c    one GET with libcurl, streamed into a blob
 *   http_store.c  kv records and writing the file into a fetch directory
 *
 * Everything here runs on the calling hook's thread; nothing keeps state
 * between calls except through the host's kv and blob stores.
 */
#ifndef KILN_HTTP_H
#define KILN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <kiln/plugin.h>

/* "sha256:" + 64 hex digits + NUL: blob digests and pins. */
#define HTTP_DIGEST_SIZE 72

/* User headers BuildKit honours (http.header.<name>): Accept, User-Agent. */
#define HTTP_MAX_HEADERS 4

/* One hook call: the host, its job and the source it is about. */
typedef struct http_call {
    const kiln_host_t *host;
    kiln_job_t *job;
    const kiln_source_t *src;
} http_call_t;

/* A SourceOp's attrs, parsed as BuildKit's HTTP identifier does. Strings
 * are borrowed from the source. */
typedef struct http_src {
    const char *url;
    const char *checksum; /* "sha256:<hex>" or NULL */
    const char *filename; /* http.filename, or NULL */
    long long perm;       /* as given (0: not set, files get 0600) */
    long long uid, gid;
    const char *auth_secret; /* http.authheadersecret, or NULL */
    struct {
        const char *name; /* canonical: "Accept", "User-Agent" */
        const char *value;
    } header[HTTP_MAX_HEADERS];
    size_t n_header;
} http_src_t;

/* What one download saw. Strings are malloc'ed (NULL when absent); free
 * with http_resp_clear(). */
typedef struct http_resp {
    long status; /* final HTTP status: 200, 304, ... */
    char *etag;  /* ETag as sent, weak prefix included */
    char *last_modified;
    char *content_disposition;
    char digest[HTTP_DIGEST_SIZE]; /* the blob's, after a 2xx */
} http_resp_t;

/* A stored download: what kv keeps under the URL (for conditional
 * requests) and under the pin (for fetch). Strings malloc'ed; free with
 * http_record_clear(). */
typedef struct http_record {
    char *digest;
    char *filename;      /* pin records */
    char *etag;          /* URL records; may be NULL */
    char *last_modified; /* raw header value; may be NULL */
    char *disposition;   /* URL records: raw Content-Disposition, or NULL */
} http_record_t;

/* ---- http_src.c ---- */

/* -EINVAL / -ENOTSUP (recorded) unless v is "sha256:<64 hex>". */
int http_check_checksum(const kiln_host_t *h, kiln_job_t *job, const char *v);

/* True for names a file cannot have: with a '/', ".", "..". */
bool http_bad_file_name(const char *name);

/* Parses c->src's attrs into *s. -EINVAL (message recorded) for a bad
 * checksum, perm, uid, gid or file name. */
int http_src_parse(const http_call_t *c, http_src_t *s);

/*
 * The name of the file, as BuildKit's getFileName: http.filename, else the
 * Content-Disposition filename (`disposition` may be NULL), else the last
 * element of the URL path, else "download". Names that are "", "." or ".."
 * are skipped. Returns a malloc'ed string, NULL when out of memory.
 */
char *http_file_name(const http_src_t *s, const char *disposition);

/* ---- http_time.c ---- */

/* Parses an HTTP date (IMF-fixdate, RFC 850 or asctime, as Go's
 * http.ParseTime). False if it is none of them (or NULL). */
bool http_parse_time(const char *value, time_t *out);

/* Formats t as http.TimeFormat ("Mon, 02 Jan 2006 15:04:05 GMT"), in UTC
 * whatever the locale. */
void http_format_time(time_t t, char buf[40]);

/*
 * BuildKit's cache key for the source: "sha256:" + hex SHA-256 of the Go
 * JSON {"Filename","Perm","UID","GID","Checksum"[,"LastModTime"]
 * [,"AuthHeaderSecret"][,"Header"]}, into pin. `last_modified` is the raw
 * header (NULL or unparsable: no LastModTime). -ENOMEM or 0.
 */
int http_cache_key(const http_src_t *s, const char *filename,
                   const char *digest, const char *last_modified,
                   char pin[HTTP_DIGEST_SIZE]);

/* The request timeout in seconds: $KILN_HTTP_TIMEOUT, else 300. */
long http_timeout(void);

/* ---- http_get.c ---- */

/*
 * GETs s->url. With `cond`, sends If-None-Match / If-Modified-Since from
 * it; a 304 then returns 0 with r->status 304 and no blob. A 2xx/3xx body
 * is streamed into a new blob (r->digest); with `expect`, a body of another
 * digest is -EBADMSG naming both, and nothing is stored. Every failure is
 * recorded with host->fail() naming the URL.
 */
int http_get(const http_call_t *c, const http_src_t *s,
             const http_record_t *cond, const char *expect, http_resp_t *r);

void http_resp_clear(http_resp_t *r);

/* Validates the URL with libcurl's parser (no I/O): -EINVAL naming it. */
int http_check_url(const http_call_t *c, const char *url);

/* ---- http_store.c ---- */

/* Reads kv record `key`: 0, -ENOENT (also for a record without a
 * digest), or another error (recorded). */
int http_record_get(const http_call_t *c, const char *key, http_record_t *rec);
/* Writes it: 0 or an error (recorded). */
int http_record_set(const http_call_t *c, const char *key,
                    const http_record_t *rec);
void http_record_clear(http_record_t *rec);

/* True if blob `digest` is in the store. */
bool http_blob_exists(const http_call_t *c, const char *digest);

/*
 * Writes blob `digest` into dest_dir/name with s's mode, owner (as root)
 * and mtime (`last_modified`, else the Unix epoch). 0 or an error
 * (recorded).
 */
int http_materialize(const http_call_t *c, const http_src_t *s,
                     const char *digest, const char *name,
                     const char *last_modified, const char *dest_dir);

#endif
