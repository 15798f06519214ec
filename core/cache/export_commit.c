/*
 * The exporter's last step: the records of the build (every reachable
 * vertex; results for the final one in min mode, for every built one in
 * max mode) become a cache config, which is merged with the one the
 * destination holds (additive: another build's records are kept), bounded
 * by max-records / max-age, and written with its manifest.
 *
 * Concurrent exporters to one destination: a local layout is locked
 * (flock on its directory) from reading the old config to writing
 * index.json. A registry has no lock, so the manifest is read, merged,
 * and HEADed again right before the PUT: if it changed meanwhile, the
 * merge starts again from the new one (up to COMMIT_TRIES times).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "solver/cachemap.h"

#define COMMIT_TRIES 8

static const kiln__packed_t *packed_of(const kiln__exporter_t *e,
                                       const char *id)
{
    for (size_t i = 0; i < e->n_packed; i++) {
        if (strcmp(e->packed[i].id, id) == 0 && e->packed[i].done) {
            return &e->packed[i];
        }
    }
    return NULL;
}

/* Adds the layer chain of snapshot `snap` to cc as the result of `rec`. */
static int add_result(kiln_solve_t *s, const kiln__exporter_t *e,
                      kiln__cc_t *cc, size_t rec, const char *snap,
                      const char *now, kiln_error_t *err)
{
    kiln__store_layers_t layers = {0};
    int64_t parent = -1;
    int rc = kiln__store_snapshot_layers(s->engine->store, snap, &layers, err);

    for (size_t i = 0; rc == 0 && i < layers.n; i++) {
        const kiln__packed_t *p = packed_of(e, layers.ids[i]);
        kiln__cc_layer_t *l;
        size_t idx;

        if (p == NULL) {
            rc = kiln__fail(err, KILN_EIO,
                            "layer %s of snapshot %s was not uploaded",
                            layers.ids[i], snap);
            break;
        }
        rc = kiln__cc_add_layer(cc, p->blob.digest, parent, &idx, err);
        if (rc < 0) {
            break;
        }
        l = &cc->layers[idx];
        if (l->media_type == NULL &&
            (l->media_type = strdup(p->blob.media_type)) == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
        l->size = p->blob.size;
        if (strcmp(p->blob.diff_id, "-") != 0) {
            memcpy(l->diff_id, p->blob.diff_id, sizeof(l->diff_id));
        }
        snprintf(l->created, sizeof(l->created), "%s", now);
        parent = (int64_t)idx;
    }
    if (rc == 0 && layers.n > 0) {
        rc = kiln__cc_add_result(cc, rec, (size_t)parent, now, err);
    }
    kiln__store_layers_free(&layers);
    return rc;
}

/* BuildKit's content-key link: input i of record `rec` is also satisfied
 * by the root record sha256("D@-1") of its content checksum D, so that a
 * source whose other files changed still matches. */
static int content_link(kiln__cc_t *cc, size_t rec, size_t i, const char *d,
                        kiln_error_t *err)
{
    char dg[KILN_DIGEST_STRLEN + 1];
    size_t root = cc->n_records;
    int rc = kiln__cachemap_record_digest(d, -1, KILN_CM_CURRENT, dg);

    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    for (size_t k = 0; k < cc->n_records; k++) {
        if (cc->records[k].n_inputs == 0 &&
            strcmp(cc->records[k].digest, dg) == 0) {
            root = k;
            break;
        }
    }
    if (root == cc->n_records) {
        rc = kiln__cc_add_record(cc, dg, 0, &root, err);
    }
    return rc < 0 ? rc : kiln__cc_add_link(cc, rec, i, root, "", err);
}

/* The build's records as a config. */
static int build_config(kiln_solve_t *s, const kiln__exporter_t *e,
                        kiln__cc_t **out, kiln_error_t *err)
{
    size_t *ord = NULL, n_ord = 0;
    int64_t **rec = calloc(s->def->n_vertices + 1, sizeof(*rec));
    char now[KILN_CC_TIME_MAX];
    kiln__cc_t *cc = NULL;
    int rc = rec != NULL ? kiln__cc_new(&cc, err)
                         : kiln__fail(err, KILN_ENOMEM, "out of memory");

    kiln__cc_time_now(now);
    if (rc == 0) {
        rc = kiln__cache_order(s, &ord, &n_ord, err);
    }
    for (size_t k = 0; rc == 0 && k < n_ord; k++) {
        kiln__node_t *n = &s->nodes[ord[k]];
        size_t n_out = kiln__cache_n_out(n);

        if ((rec[ord[k]] = malloc(n_out * sizeof(**rec))) == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
        for (size_t o = 0; rc == 0 && o < n_out; o++) {
            const Pb__Op *op = n->v->op;
            char dg[KILN_DIGEST_STRLEN + 1];
            bool linked = true, wanted;
            size_t idx;

            rec[ord[k]][o] = -1;
            kiln__cache_record_digest(n, o, dg);
            for (size_t i = 0; i < op->n_inputs; i++) {
                linked = linked &&
                         rec[n->v->inputs[i]->pos][op->inputs[i]->index] >= 0;
            }
            if (dg[0] == '\0' || !linked) {
                continue; /* a random key, or above one: not exportable */
            }
            rc = kiln__cc_add_record(cc, dg, op->n_inputs, &idx, err);
            for (size_t i = 0; rc == 0 && i < op->n_inputs; i++) {
                rc = kiln__cc_add_link(
                    cc, idx, i,
                    (size_t)rec[n->v->inputs[i]->pos][op->inputs[i]->index],
                    kiln__solve_selector(n, i), err);
            }
            for (size_t i = 0; rc == 0 && n->content != NULL &&
                               i < op->n_inputs;
                 i++) {
                if (n->content[i][0] != '\0') {
                    rc = content_link(cc, idx, i, n->content[i], err);
                }
            }
            if (rc == 0) {
                rc = kiln__cc_describe(cc, idx, n->name, err);
            }
            rec[ord[k]][o] = (int64_t)idx;
            wanted = e->spec.max ||
                     (n == s->result && (int64_t)o == s->result_index);
            if (rc == 0 && wanted && n->v->kind != KILN_OP_SOURCE &&
                n->snapshots != NULL && n->snapshots[o] != NULL) {
                rc = add_result(s, e, cc, idx, n->snapshots[o], now, err);
            }
        }
    }
    for (size_t i = 0; rec != NULL && i < s->def->n_vertices; i++) {
        free(rec[i]);
    }
    free(rec);
    free(ord);
    if (rc < 0) {
        kiln__cc_free(cc);
        return rc;
    }
    *out = cc;
    return 0;
}

/* The destination's config merged with ours, bounded, as blobs. */
static int merged_blobs(const kiln__exporter_t *e, const kiln__cc_t *ours,
                        kiln__cc_t *theirs, char **cfg, size_t *cfg_len,
                        char cfg_digest[KILN_DIGEST_STRLEN + 1], char **man,
                        size_t *man_len, const char **mt, kiln_error_t *err)
{
    kiln__cc_t *cc = theirs;
    int rc = 0;

    if (cc == NULL) {
        rc = kiln__cc_new(&cc, err);
    }
    if (rc == 0) {
        rc = kiln__cc_merge(cc, ours, err);
    }
    if (rc == 0 && (e->spec.max_records > 0 || e->spec.max_age_s > 0)) {
        rc = kiln__cc_limit(cc, e->spec.max_records, e->spec.max_age_s, NULL,
                            err);
    }
    if (rc == 0) {
        rc = kiln__cc_write(cc, cfg, cfg_len, err);
    }
    if (rc == 0 && *cfg_len > KILN_CC_MAX_BYTES) {
        rc = kiln__fail(err, KILN_E2BIG,
                        "the merged cache config takes %zu bytes, more than "
                        "importers read (%u): bound it with max-records=N",
                        *cfg_len, KILN_CC_MAX_BYTES);
    }
    if (rc == 0) {
        rc = kiln__sha256_digest(*cfg, *cfg_len, cfg_digest);
    }
    if (rc == 0) {
        rc = kiln__cache_manifest_write(cc, cfg_digest, (int64_t)*cfg_len,
                                        e->spec.image_manifest, e->spec.oci,
                                        man, man_len, mt, err);
    }
    if (cc != theirs) {
        kiln__cc_free(cc);
    }
    return rc;
}

static bool index_exists(const char *dir)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/index.json", dir);
    return access(path, F_OK) == 0;
}

/* index.json of layout `dir` with `desc` under `tag`, other entries kept. */
static int write_index(const char *dir, const char *tag,
                       const kiln_oci_desc_t *desc, kiln_error_t *err)
{
    kiln_oci_index_t old = {0};
    const kiln_oci_index_t *ix = NULL;
    kiln_oci_desc_t *v;
    size_t n = 0;
    int rc;

    if (index_exists(dir)) {
        rc = kiln__cache_local_index(dir, &old, err);
        if (rc < 0) {
            return rc; /* never replace an index.json we cannot read */
        }
        ix = &old;
    }
    v = calloc((ix != NULL ? ix->n_manifests : 0) + 1, sizeof(*v));
    if (v == NULL) {
        kiln__oci_index_clear(&old);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; ix != NULL && i < ix->n_manifests; i++) {
        const kiln_oci_desc_t *d = &ix->manifests[i];
        if (d->ref_name == NULL || strcmp(d->ref_name, tag) != 0) {
            v[n++] = *d; /* shallow: the layout owns the strings */
        }
    }
    v[n] = *desc;
    v[n].ref_name = (char *)tag;
    rc = kiln__oci_write_index_json(dir, v, n + 1, err);
    free(v);
    kiln__oci_index_clear(&old);
    return rc;
}

static int commit_local(const kiln__exporter_t *e, const kiln__cc_t *ours,
                        kiln_error_t *err)
{
    const kiln__cache_spec_t *sp = &e->spec;
    kiln__cache_manifest_t m = {0};
    kiln_oci_desc_t cdesc = {0}, mdesc = {0};
    char cfg_digest[KILN_DIGEST_STRLEN + 1], old[KILN_DIGEST_STRLEN + 1];
    char *cfg = NULL, *man = NULL;
    size_t cfg_len = 0, man_len = 0;
    const char *mt = NULL;
    kiln__cc_t *theirs = NULL;
    kiln_error_t rerr = {0};
    int dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
        rc = kiln__fail(err, KILN_EIO, "%s: %s", sp->dir, strerror(errno));
    }
    snprintf(cfg_digest, sizeof(cfg_digest), "%s", "");
    if (rc == 0 && !index_exists(sp->dir)) {
        /* A new layout: nothing to merge with. */
    } else if (rc == 0) {
        rc = kiln__cache_read(sp, NULL, &theirs, &m, old, &rerr);
        if (rc == KILN_ENOENT) {
            rc = 0; /* nothing there yet */
        } else if (rc < 0) {
            *err = rerr;
            kiln__fail_prefix(err, rc, "reading the cache already in %s",
                              sp->dir);
        }
    }
    if (rc == 0) {
        rc = merged_blobs(e, ours, theirs, &cfg, &cfg_len, cfg_digest, &man,
                          &man_len, &mt, err);
    }
    if (rc == 0) {
        rc = kiln__oci_write_blob(sp->dir, KILN_CC_MEDIA_TYPE, cfg, cfg_len,
                                  &cdesc, err);
    }
    if (rc == 0) {
        rc = kiln__oci_write_blob(sp->dir, mt, man, man_len, &mdesc, err);
    }
    if (rc == 0) {
        rc = write_index(sp->dir, sp->tag, &mdesc, err);
    }
    if (dfd >= 0) {
        close(dfd); /* unlocks */
    }
    kiln__oci_desc_clear(&cdesc);
    kiln__oci_desc_clear(&mdesc);
    kiln__cache_manifest_clear(&m);
    kiln__cc_free(theirs);
    free(cfg);
    free(man);
    return rc;
}

/* One read-merge-put round; 1 when the manifest changed under us.
 * `put` receives the digest of the manifest written. */
static int registry_round(kiln_solve_t *s, const kiln__exporter_t *e,
                          kiln__oci_reg_t *reg, const kiln__cc_t *ours,
                          char put[KILN_DIGEST_STRLEN + 1], kiln_error_t *err)
{
    const kiln__cache_spec_t *sp = &e->spec;
    kiln__cache_manifest_t m = {0};
    kiln__oci_manifest_t head = {0};
    char cfg_digest[KILN_DIGEST_STRLEN + 1], old[KILN_DIGEST_STRLEN + 1];
    char *cfg = NULL, *man = NULL;
    size_t cfg_len = 0, man_len = 0;
    const char *mt = NULL;
    kiln__cc_t *theirs = NULL;
    kiln_error_t rerr = {0};
    bool has = false;
    int rc = kiln__cache_read(sp, reg, &theirs, &m, old, &rerr);

    (void)s;
    if (rc == KILN_ENOENT) {
        rc = 0;
        old[0] = '\0';
    } else if (rc < 0) {
        *err = rerr;
        kiln__fail_prefix(err, rc, "reading the cache already at %s",
                          sp->ref);
    }
    if (rc == 0) {
        rc = merged_blobs(e, ours, theirs, &cfg, &cfg_len, cfg_digest, &man,
                          &man_len, &mt, err);
    }
    if (rc == 0) {
        rc = kiln__oci_blob_head(reg, sp->reg.registry, sp->reg.repository,
                                 cfg_digest, &has, NULL, err);
    }
    if (rc == 0 && !has) {
        rc = kiln__oci_blob_push(reg, sp->reg.registry, sp->reg.repository,
                                 cfg_digest, cfg, cfg_len, err);
    }
    if (rc == 0) {
        int hr = kiln__oci_manifest_head(reg, &sp->reg, &head, &rerr);
        if (hr == 0 ? strcmp(head.digest, old) != 0 : old[0] != '\0') {
            rc = 1; /* another exporter wrote in between: merge again */
        } else if (hr < 0 && hr != KILN_ENOENT) {
            rc = hr;
            *err = rerr;
        }
    }
    if (rc == 0) {
        rc = kiln__oci_manifest_put(reg, &sp->reg, mt, man, man_len, put,
                                    err);
    }
    kiln__oci_manifest_clear(&head);
    kiln__cache_manifest_clear(&m);
    kiln__cc_free(theirs);
    free(cfg);
    free(man);
    return rc;
}

/*
 * After a put: is everything of ours in what the ref names now? Another
 * exporter may have put a config read before ours went in; the ref then
 * names its digest, and merging ours into it would change it. 1 when ours
 * is missing (merge again), 0 when it is there.
 */
static int verify_put(const kiln__exporter_t *e, kiln__oci_reg_t *reg,
                      const kiln__cc_t *ours, const char *put,
                      kiln_error_t *err)
{
    kiln__cache_manifest_t m = {0};
    char now[KILN_DIGEST_STRLEN + 1], *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    kiln__cc_t *theirs = NULL, *merged = NULL;
    int rc = kiln__cache_read(&e->spec, reg, &theirs, &m, now, err);

    if (rc == 0 && strcmp(now, put) == 0) {
        rc = 0; /* ours is the latest */
    } else if (rc == 0) {
        rc = kiln__cc_write(theirs, &a, &la, err);
        if (rc == 0) {
            rc = kiln__cc_parse(a, la, &merged, err);
        }
        if (rc == 0) {
            rc = kiln__cc_merge(merged, ours, err);
        }
        if (rc == 0 && (e->spec.max_records > 0 || e->spec.max_age_s > 0)) {
            rc = kiln__cc_limit(merged, e->spec.max_records,
                                e->spec.max_age_s, NULL, err);
        }
        if (rc == 0) {
            rc = kiln__cc_write(merged, &b, &lb, err);
        }
        if (rc == 0) {
            rc = la != lb || memcmp(a, b, la) != 0;
        }
    } else if (rc == KILN_ENOENT) {
        rc = 1; /* deleted meanwhile: put ours again */
    }
    kiln__cache_manifest_clear(&m);
    kiln__cc_free(theirs);
    kiln__cc_free(merged);
    free(a);
    free(b);
    return rc;
}

static int commit_registry(kiln_solve_t *s, const kiln__exporter_t *e,
                           const kiln__cc_t *ours, kiln_error_t *err)
{
    kiln__oci_reg_t *reg = NULL;
    char put[KILN_DIGEST_STRLEN + 1] = "";
    unsigned seed = (unsigned)kiln__now_ns() ^ (unsigned)getpid();
    int64_t t0;
    int rc = kiln__cache_reg_new(&e->spec, s, &reg, err);

    for (int t = 0; rc >= 0 || rc == KILN_EIO; t++) {
        if (t == COMMIT_TRIES) {
            if (rc == 1) {
                rc = kiln__fail(err, KILN_EIO,
                                "%s changed under every one of %d attempts "
                                "to merge into it",
                                e->spec.ref, COMMIT_TRIES);
            }
            break;
        }
        if (rc == KILN_EIO) {
            /* Registries answer 5xx to concurrent writers of one tag
             * (docker-registry's file system storage does): again. */
            usleep(50000 + rand_r(&seed) % 100000);
        }
        t0 = kiln__mono_ns();
        rc = registry_round(s, e, reg, ours, put, err);
        if (rc == 0) {
            /* A registry has no compare-and-swap: give a writer that read
             * before our put the time to put its own (about as long as our
             * own read-merge-put took, from 20 ms up to 2 s), then check
             * that ours survived it. */
            int64_t us = (kiln__mono_ns() - t0) / 1000 * 3 / 2;
            us = us < 20000 ? 20000 : us > 2000000 ? 2000000 : us;
            usleep((useconds_t)us + rand_r(&seed) % 10000);
            rc = verify_put(e, reg, ours, put, err);
            if (rc == 0) {
                break;
            }
        }
    }
    kiln__oci_reg_free(reg);
    return rc;
}

int kiln__cache_export_finish(kiln_solve_t *s, kiln_error_t *err)
{
    kiln__cache_t *c = s->cache;

    for (size_t i = 0; c != NULL && i < c->n_exp; i++) {
        kiln__exporter_t *e = &c->exp[i];
        const char *where = e->spec.type == KILN__CACHE_LOCAL ? e->spec.dir
                                                              : e->spec.ref;
        kiln_error_t xerr = {0};
        kiln__cc_t *cc = NULL;
        int rc = e->status;

        if (rc < 0) {
            xerr = e->error;
        }
        if (rc == 0) {
            rc = build_config(s, e, &cc, &xerr);
        }
        if (rc == 0 && e->spec.type == KILN__CACHE_LOCAL) {
            rc = commit_local(e, cc, &xerr);
        } else if (rc == 0) {
            rc = commit_registry(s, e, cc, &xerr);
        }
        kiln__cc_free(cc);
        if (rc < 0 && e->spec.ignore_error) {
            kiln__solve_note(s, NULL, KILN_LOG_WARN,
                             "exporting the build cache to %s failed "
                             "(ignored): %s",
                             where, xerr.message);
        } else if (rc < 0) {
            *err = xerr;
            return kiln__fail_prefix(err, rc, "exporting the build cache to %s",
                                     where);
        } else {
            kiln__solve_note(s, NULL, KILN_LOG_INFO,
                             "build cache exported to %s: %llu bytes "
                             "uploaded, %llu blobs already there",
                             where, (unsigned long long)e->uploaded,
                             (unsigned long long)e->skipped);
        }
    }
    return 0;
}
