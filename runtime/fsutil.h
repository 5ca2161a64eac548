/* fsutil.h: directory creation and crash-safe whole-file writes for the runtime's outputs. */
#ifndef GMC_FSUTIL_H
#define GMC_FSUTIL_H
#include <stddef.h>

/* Creates dir and any missing parents (like mkdir -p). Returns 0, or -1 with errno set. */
int mkdir_p(const char *dir);
/* Creates the directory that holds the file `path` (nothing to do for a bare file name). */
int mkdir_parent(const char *path);
/* Writes n bytes to path so that readers see either the old file or the whole new one:
 * a temp file in the same directory, fsync, rename over path, fsync of the directory.
 * Parent directories are created. Returns 0, or -1 with the file and reason in err. */
int write_file_atomic(const char *path, const void *data, size_t n, char *err, int errlen);

/* The steps of write_file_atomic, for writers that stream their output:
 * open a temp file next to path (its name goes into tmp, of tmplen bytes), then commit it
 * (fsync, close, rename, fsync dir) or abort it (close, unlink). Return 0 / -1 like above. */
int atomic_open(const char *path, char *tmp, int tmplen, char *err, int errlen);
int atomic_commit(int fd, const char *tmp, const char *path, char *err, int errlen);
void atomic_abort(int fd, const char *tmp);
/* write(2) until all n bytes are out (retrying short writes and EINTR); 0, or -1 with errno. */
int fd_write_all(int fd, const void *data, size_t n);
/* Reads the whole file into a malloc'ed buffer (*data gets one extra zero byte past *n, so
 * text can be parsed in place). Returns 0, or -1 with the file and reason in err. */
int read_file_all(const char *path, unsigned char **data, size_t *n, char *err, int errlen);
#endif
