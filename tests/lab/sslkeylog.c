/* mysqlwire lab: LD_PRELOAD OpenSSL key logger for clients that do not honour SSLKEYLOGFILE
 * (libmariadb: the mariadb CLI, mysqlclient, MariaDB Connector/Python).
 *
 * Wraps SSL_new(): before the real SSL_new runs, installs a keylog callback on the SSL_CTX (unless
 * one is set already, e.g. by Python's ssl module) that appends NSS key log lines to
 * $SSLKEYLOGFILE. Needs OpenSSL >= 1.1.1 at run time; no OpenSSL headers at build time:
 *   gcc -shared -fPIC -O2 -o sslkeylog.so sslkeylog.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef void (*keylog_cb_t)(const SSL *, const char *);

static void keylog_line(const SSL *ssl, const char *line) {
    (void)ssl;
    const char *path = getenv("SSLKEYLOGFILE");
    if (!path || !*path || !line) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    size_t n = strlen(line);
    char *buf = malloc(n + 1);
    if (buf) {
        memcpy(buf, line, n);
        buf[n] = '\n';
        ssize_t w = write(fd, buf, n + 1);
        (void)w;
        free(buf);
    }
    close(fd);
}

static void *ssl_sym(const char *name) {
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* libssl loaded by a dlopen()ed module (RTLD_LOCAL) is not in RTLD_NEXT's scope */
        void *h = dlopen("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD);
        if (!h) h = dlopen("libssl.so.1.1", RTLD_LAZY | RTLD_NOLOAD);
        if (h) p = dlsym(h, name);
    }
    return p;
}

SSL *SSL_new(SSL_CTX *ctx) {
    static SSL *(*real_new)(SSL_CTX *);
    static void (*set_cb)(SSL_CTX *, keylog_cb_t);
    static keylog_cb_t (*get_cb)(const SSL_CTX *);
    if (!real_new) real_new = (SSL *(*)(SSL_CTX *))ssl_sym("SSL_new");
    if (!set_cb) set_cb = (void (*)(SSL_CTX *, keylog_cb_t))ssl_sym("SSL_CTX_set_keylog_callback");
    if (!get_cb) get_cb = (keylog_cb_t (*)(const SSL_CTX *))ssl_sym("SSL_CTX_get_keylog_callback");
    if (ctx && set_cb && getenv("SSLKEYLOGFILE") && (!get_cb || !get_cb(ctx)))
        set_cb(ctx, keylog_line);
    return real_new ? real_new(ctx) : NULL;
}
