/* fsutil.c: mkdir -p and atomic file replacement (temp + fsync + rename + fsync dir), so a
 * crash mid-write never leaves a half-written checkpoint or sample file behind. */
#include "fsutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_one_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if (stat(dir, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

int mkdir_p(const char *dir) {
    size_t n = strlen(dir);
    if (n == 0) return 0;
    char *buf = malloc(n + 1);
    if (!buf) { errno = ENOMEM; return -1; }
    memcpy(buf, dir, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    /* create each prefix ending just before a '/', then the whole path */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/') continue;
        *p = '\0';
        int rc = make_one_dir(buf);
        *p = '/';
        if (rc != 0) { int e = errno; free(buf); errno = e; return -1; }
    }
    int rc = make_one_dir(buf);
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}

/* The directory part of path ("." for a bare name); malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) { memcpy(d, path, n); d[n] = '\0'; }
    return d;
}

int mkdir_parent(const char *path) {
    if (!strchr(path, '/')) return 0;
    char *d = dir_of(path);
    if (!d) { errno = ENOMEM; return -1; }
    int rc = mkdir_p(d);
    int e = errno;
    free(d);
    errno = e;
    return rc;
}

static void set_err(char *err, int errlen, const char *what, const char *path, int e) {
    if (err && errlen > 0) snprintf(err, (size_t)errlen, "cannot %s %s: %s", what, path, strerror(e));
}

int atomic_open(const char *path, char *tmp, int tmplen, char *err, int errlen) {
    if (mkdir_parent(path) != 0) {
        set_err(err, errlen, "create the directory of", path, errno);
        return -1;
    }
    /* pid + counter keeps concurrent writers (threads or processes) off each other's temp
     * files; open() with 0666 rather than mkstemp's 0600 so the umask decides permissions */
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned k = atomic_fetch_add(&counter, 1);
        if (snprintf(tmp, (size_t)tmplen, "%s.tmp.%ld.%u", path, (long)getpid(), k) >= tmplen) {
            set_err(err, errlen, "write", path, ENAMETOOLONG);
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) return fd;
        if (errno != EEXIST) { set_err(err, errlen, "create", tmp, errno); return -1; }
    }
    set_err(err, errlen, "create a temporary file for", path, EEXIST);
    return -1;
}

void atomic_abort(int fd, const char *tmp) {
    if (fd >= 0) close(fd);
    unlink(tmp);
}

int atomic_commit(int fd, const char *tmp, const char *path, char *err, int errlen) {
    if (fsync(fd) != 0) {
        set_err(err, errlen, "write", path, errno);
        atomic_abort(fd, tmp);
        return -1;
    }
    if (close(fd) != 0) {
        set_err(err, errlen, "write", path, errno);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        set_err(err, errlen, "rename a temporary file to", path, errno);
        unlink(tmp);
        return -1;
    }
    /* the rename itself is only durable once the directory entry is on disk */
    char *d = dir_of(path);
    if (!d) { set_err(err, errlen, "write", path, ENOMEM); return -1; }
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (dfd < 0) {
        set_err(err, errlen, "open the directory", d, errno);
        rc = -1;
    } else {
        /* some file systems cannot sync directories (EINVAL); the data is still written */
        if (fsync(dfd) != 0 && errno != EINVAL) {
            set_err(err, errlen, "sync the directory", d, errno);
            rc = -1;
        }
        close(dfd);
    }
    free(d);
    return rc;
}

int fd_write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t n, char *err, int errlen) {
    char tmp[4096];
    int fd = atomic_open(path, tmp, (int)sizeof tmp, err, errlen);
    if (fd < 0) return -1;
    if (fd_write_all(fd, data, n) != 0) {
        set_err(err, errlen, "write", path, errno);
        atomic_abort(fd, tmp);
        return -1;
    }
    return atomic_commit(fd, tmp, path, err, errlen);
}

int read_file_all(const char *path, unsigned char **data, size_t *n, char *err, int errlen) {
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { set_err(err, errlen, "open", path, errno); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { set_err(err, errlen, "read", path, errno); close(fd); return -1; }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "read", path, S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(size + 1);
    if (!buf) { set_err(err, errlen, "read", path, ENOMEM); close(fd); return -1; }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { set_err(err, errlen, "read", path, errno); free(buf); close(fd); return -1; }
        if (k == 0) break;       /* the file shrank under us: take what is there */
        got += (size_t)k;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *n = got;
    return 0;
}
