/*
 * Plugins' key-value store: table plugin_kv of metadata.db, one namespace
 * per plugin. Each call is one short transaction under the store's mutex.
 */
#include <errno.h>
#include <string.h>

#include "store/store_int.h"

static const char SQL_KV_GET[] =
    "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2";
static const char SQL_KV_SET[] =
    "INSERT INTO plugin_kv (plugin, key, value, updated) "
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (plugin, key) DO UPDATE SET "
    "value = excluded.value, updated = excluded.updated";
static const char SQL_KV_DELETE[] =
    "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2";

/* Checks the plugin name and the key: KILN_EINVAL when NULL or empty,
 * KILN_E2BIG for a key over KILN__STORE_KV_KEY_MAX bytes. */
static int check_names(const char *plugin, const char *key, kiln_error_t *err)
{
    if (plugin == NULL || plugin[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL,
                          "plugin key-value store: no plugin name");
    }
    if (key == NULL || key[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL,
                          "plugin %s: key-value store: empty key", plugin);
    }
    if (strlen(key) > KILN__STORE_KV_KEY_MAX) {
        return kiln__fail(err, KILN_E2BIG,
                          "plugin %s: key-value store: a key of %zu bytes "
                          "(at most %d)",
                          plugin, strlen(key), KILN__STORE_KV_KEY_MAX);
    }
    return 0;
}

/* Under the mutex, in a read transaction: copies the value (see
 * kiln__store_kv_get()). */
static int kv_get_locked(kiln__store_t *s, const char *plugin, const char *key,
                         void *buf, size_t size, size_t *len, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_KV_GET, err);
    const void *v;
    size_t n;
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, plugin);
    kiln__sdb_text(st, 2, key);
    rc = kiln__sdb_row(s, st, "reading a plugin's key", err);
    if (rc <= 0) {
        sqlite3_reset(st);
        return rc < 0 ? rc
                      : kiln__fail(err, KILN_ENOENT,
                                   "plugin %s: no value stored for key '%s'",
                                   plugin, key);
    }
    v = sqlite3_column_blob(st, 0);
    n = (size_t)sqlite3_column_bytes(st, 0);
    if (v == NULL && n > 0) {
        sqlite3_reset(st);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *len = n;
    rc = 0;
    if (n > size) {
        rc = kiln__fail(err, -ERANGE,
                        "plugin %s: the value of key '%s' is %zu bytes, the "
                        "buffer %zu",
                        plugin, key, n, size);
    } else if (n > 0) {
        memcpy(buf, v, n);
    }
    sqlite3_reset(st);
    return rc;
}

int kiln__store_kv_get(kiln__store_t *s, const char *plugin, const char *key,
                       void *buf, size_t size, size_t *len, kiln_error_t *err)
{
    int rc = check_names(plugin, key, err);

    *len = 0;
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, false, err);
    if (rc == 0) {
        rc = kv_get_locked(s, plugin, key, buf, size, len, err);
        kiln__sdb_rollback(s); /* read only */
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Runs `sql` (SQL_KV_SET or SQL_KV_DELETE) in its own write transaction;
 * value/len bind ?3 and ?4 = now for a set (value NULL: a delete). */
static int kv_write(kiln__store_t *s, const char *sql, const char *plugin,
                    const char *key, const void *value, size_t len,
                    kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    st = kiln__sdb_stmt(s, sql, err);
    if (st == NULL) {
        rc = s->stmt_rc;
    } else {
        kiln__sdb_text(st, 1, plugin);
        kiln__sdb_text(st, 2, key);
        if (value != NULL) {
            /* A non-NULL pointer even for 0 bytes: an empty value is a
             * zero-length blob, not SQL NULL. */
            sqlite3_bind_blob(st, 3, len > 0 ? value : "", (int)len,
                              SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, kiln__now_ns());
        }
        rc = kiln__sdb_done(s, st, "writing a plugin's key", err);
    }
    if (rc == 0) {
        rc = kiln__sdb_commit(s, err);
    }
    kiln__sdb_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int kiln__store_kv_set(kiln__store_t *s, const char *plugin, const char *key,
                       const void *value, size_t len, kiln_error_t *err)
{
    int rc = check_names(plugin, key, err);

    if (rc < 0) {
        return rc;
    }
    if (len > KILN__STORE_KV_VALUE_MAX) {
        return kiln__fail(err, KILN_E2BIG,
                          "plugin %s: the value of key '%s' is %zu bytes (at "
                          "most %u)",
                          plugin, key, len, KILN__STORE_KV_VALUE_MAX);
    }
    if (value == NULL && len > 0) {
        return kiln__fail(err, KILN_EINVAL,
                          "plugin %s: key '%s': no value of %zu bytes", plugin,
                          key, len);
    }
    return kv_write(s, SQL_KV_SET, plugin, key, value != NULL ? value : "", len,
                    err);
}

int kiln__store_kv_delete(kiln__store_t *s, const char *plugin, const char *key,
                          kiln_error_t *err)
{
    int rc = check_names(plugin, key, err);

    if (rc < 0) {
        return rc;
    }
    return kv_write(s, SQL_KV_DELETE, plugin, key, NULL, 0, err);
}

int kiln__kv_clear(kiln__store_t *s, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, "DELETE FROM plugin_kv", err);

    if (st == NULL) {
        return s->stmt_rc;
    }
    return kiln__sdb_done(s, st, "emptying the plugins' key-value store", err);
}
