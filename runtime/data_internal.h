/* data_internal.h: what the files of the data layer share. data.c caches and fills
 * batches; data_sources.c reads sources (IDX, image folders, .npy, text); data_ops.c applies
 * transforms. */
#ifndef GMC_DATA_INTERNAL_H
#define GMC_DATA_INTERNAL_H
#include "data.h"

enum { IDX_SIDE = 28 };                  /* fashion_mnist and mnist images are 28 x 28 */

void data_fail(char *err, int errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *data_alloc(size_t n);               /* exits on out of memory, like sema's xmalloc */

/* data_sources.c: a source's examples before any transform; raw->owned is set. Image
 * sources (IDX, folders) keep their pixels as bytes in raw->x8, a quarter of the memory;
 * data.c converts the examples a pipeline selects to float. IDX label files are required
 * only when need_labels. A text source becomes its id sequence and vocabulary. Returns 0,
 * or -1 with the file and the problem in err. */
int source_load(const DataSpec *s, int need_labels, Dataset *raw, char *err, int errlen);
/* Compile-time shape of a folder source: lists it and reads the first image's header. */
int source_probe_folder(DataSpec *s, char *err, int errlen);

/* data_ops.c: applies one load-time transform to d in place (its arrays are replaced; the
 * old ones freed when d owned them). [vmin, vmax] is the source's value range, which a
 * scale() of unknown input range maps from. */
int data_apply_op(Dataset *d, const DataOp *op, double vmin, double vmax, const char *what,
                  char *err, int errlen);
/* The per-batch transforms of spec on n examples of d laid out in dst. */
void data_batch_ops(const DataSpec *spec, const Dataset *d, float *dst, int n, Rng *rng);
/* Which examples a split keeps: the count, and (when keep is non-NULL) their indices in
 * increasing order. */
int64_t data_split_keep(const DataOp *op, int64_t n, int64_t *keep);
/* A filter or split over the examples rows[0 .. *n) (indices into labels): keeps those it
 * selects, in order, and updates *n. 0, or -1 when it needs labels there are none of, or
 * selects nothing. */
int data_select_rows(const DataOp *op, const float *labels, int64_t *rows, int64_t *n,
                     const char *what, char *err, int errlen);
#endif
