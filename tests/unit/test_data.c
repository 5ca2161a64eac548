/* test_data.c: the data layer. PNG/JPEG decoding and resizing, every source (image folders,
 * .npy, text, IDX when Fashion-MNIST is installed, unpaired sets), every transform, the
 * errors for missing and corrupt files (the file must be named), determinism of the
 * per-batch random transforms, batching with drop_last, and the compile-time side: shapes
 * and diagnostics of .gm pipelines. Everything it writes lives in a mkdtemp directory. */
#include "check.h"
#include "tmpfiles.h"
#include "data_internal.h"
#include "diag.h"
#include "fsutil.h"
#include "image.h"
#include "image_load.h"
#include "npy.h"
#include "sema_internal.h"
#include "threads.h"
#include <ftw.h>
#include <jpeglib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FASHION "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static char err[1024];
static char diag_text[1 << 15];


/* A PNG of exact pixel values: hwc holds h x w x c bytes, channels-last. */
static void write_png(const char *path, const uint8_t *hwc, int h, int w, int c) {
    float *chw = malloc(sizeof(float) * h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) chw[(k * h + y) * w + x] = hwc[(y * w + x) * c + k];
    char e[256];
    if (png_write_grid(path, chw, 1, c, h, w, 1, 1, 0, 255, e, sizeof e) != 0) { fprintf(stderr, "%s\n", e); exit(2); }
    free(chw);
}

static void write_jpeg(const char *path, const uint8_t *hwc, int h, int w, int c) {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = w;
    cinfo.image_height = h;
    cinfo.input_components = c;
    cinfo.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 100, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(hwc + (size_t)cinfo.next_scanline * w * c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

/* The first n bytes of src copied to dst: a truncated file. */
static void truncate_copy(const char *src, const char *dst, double fraction) {
    unsigned char *data;
    size_t n;
    if (read_file_all(src, &data, &n, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); exit(2); }
    write_bytes(dst, data, (size_t)(n * fraction));
    free(data);
}

static int mentions(const char *msg, const char *a, const char *b) {
    return strstr(msg, a) && (!b || strstr(msg, b));
}

/* A data spec of a source, probed as the compiler does. */
static DataSpec spec_of(DataSource kind, const char *path) {
    DataSpec s = {0};
    s.kind = kind;
    s.source = kind == DS_FOLDER ? "image_folder" : kind == DS_NPY ? "npy" : kind == DS_TEXT ? "text" : "fashion_mnist";
    s.split = kind == DS_IDX ? "train" : "all";
    s.path = path;
    s.nparts = 1;
    return s;
}

static void push(DataSpec *s, DataOp op) {
    if (data_op_shape(&op, &s->ndim, s->shape, err, sizeof err) != 0) { printf("# %s\n", err); return; }
    s->ops[s->nops++] = op;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* --- decoding and resizing ------------------------------------------------------------- */

static void test_decode(void) {
    uint8_t rgb[2 * 3 * 3], grey[2 * 3];
    for (int i = 0; i < 18; i++) rgb[i] = (uint8_t)(i * 13);
    for (int i = 0; i < 6; i++) grey[i] = (uint8_t)(i * 40);
    write_png(tpath("rgb.png"), rgb, 2, 3, 3);
    write_png(tpath("grey.png"), grey, 2, 3, 1);
    Image8 im;
    int ok = image_read(tpath("rgb.png"), 3, &im, err, sizeof err) == 0;
    CHECK(ok && im.width == 3 && im.height == 2 && im.channels == 3 && !memcmp(im.pixels, rgb, 18),
          "PNG RGB decodes to its exact pixels (2x3x3)");
    if (ok) image_free(&im);
    ok = image_read(tpath("grey.png"), 1, &im, err, sizeof err) == 0;
    CHECK(ok && im.channels == 1 && !memcmp(im.pixels, grey, 6), "PNG grey decodes to its exact pixels");
    if (ok) image_free(&im);
    ok = image_read(tpath("grey.png"), 3, &im, err, sizeof err) == 0;
    CHECK(ok && im.channels == 3 && im.pixels[3 * 5] == grey[5] && im.pixels[3 * 5 + 2] == grey[5],
          "grey PNG read as RGB replicates the grey value");
    if (ok) image_free(&im);
    ok = image_read(tpath("rgb.png"), 1, &im, err, sizeof err) == 0;
    int luma = (int)(0.299f * rgb[3] + 0.587f * rgb[4] + 0.114f * rgb[5] + 0.5f);
    CHECK(ok && im.channels == 1 && im.pixels[1] == luma, "RGB PNG read as grey gives 601 luma (%d)", ok ? im.pixels[1] : -1);
    if (ok) image_free(&im);

    uint8_t flat[8 * 8 * 3];
    for (int i = 0; i < 8 * 8; i++) { flat[3 * i] = 200; flat[3 * i + 1] = 100; flat[3 * i + 2] = 50; }
    write_jpeg(tpath("flat.jpg"), flat, 8, 8, 3);
    ok = image_read(tpath("flat.jpg"), 3, &im, err, sizeof err) == 0;
    CHECK(ok && im.width == 8 && im.height == 8 && abs(im.pixels[0] - 200) <= 2 && abs(im.pixels[1] - 100) <= 2 &&
          abs(im.pixels[2] - 50) <= 2, "JPEG RGB decodes (a flat colour to within 2)");
    if (ok) image_free(&im);
    int w, h, color;
    CHECK(image_read_info(tpath("flat.jpg"), &w, &h, &color, err, sizeof err) == 0 && w == 8 && h == 8 && color,
          "JPEG header: 8x8, colour");
    CHECK(image_read_info(tpath("grey.png"), &w, &h, &color, err, sizeof err) == 0 && w == 3 && h == 2 && !color,
          "PNG header: 3 wide, 2 high, grey");

    /* errors name the file and the problem */
    CHECK(image_read(tpath("none.png"), 3, &im, err, sizeof err) != 0 && mentions(err, tpath("none.png"), "No such file"),
          "missing image: %s", err);
    write_bytes(tpath("notimage.png"), "hello, world", 12);
    CHECK(image_read(tpath("notimage.png"), 3, &im, err, sizeof err) != 0 &&
          mentions(err, tpath("notimage.png"), "not a PNG or JPEG"), "not an image: %s", err);
    uint8_t big[32 * 32 * 3];
    for (int i = 0; i < (int)sizeof big; i++) big[i] = (uint8_t)(i * 7919 % 251);
    write_png(tpath("big.png"), big, 32, 32, 3);
    truncate_copy(tpath("big.png"), tpath("cut.png"), 0.5);
    CHECK(image_read(tpath("cut.png"), 3, &im, err, sizeof err) != 0 && mentions(err, tpath("cut.png"), "PNG"),
          "truncated PNG: %s", err);
    write_jpeg(tpath("big.jpg"), big, 32, 32, 3);
    truncate_copy(tpath("big.jpg"), tpath("cut.jpg"), 0.6);
    CHECK(image_read(tpath("cut.jpg"), 3, &im, err, sizeof err) != 0 && mentions(err, tpath("cut.jpg"), "truncated or corrupt JPEG"),
          "truncated JPEG: %s", err);
}

static void test_resize(void) {
    float src[4 * 4], dst[16];
    for (int i = 0; i < 16; i++) src[i] = (float)i;
    image_resize(src, 4, 4, 1, dst, 2, 2);
    /* area: each output is the mean of a 2x2 block */
    CHECK(dst[0] == 2.5f && dst[1] == 4.5f && dst[2] == 10.5f && dst[3] == 12.5f,
          "4x4 -> 2x2 averages 2x2 blocks (%g %g %g %g)", dst[0], dst[1], dst[2], dst[3]);
    float row[3] = { 0, 3, 6 }, third[1];
    image_resize(row, 1, 3, 1, third, 1, 1);
    CHECK(third[0] == 3, "3 -> 1 is the mean (%g)", third[0]);
    float two[2] = { 0, 4 }, four[4];
    image_resize(two, 1, 2, 1, four, 1, 4);
    /* bilinear with half-pixel centres: x = (j + 0.5) / 2 - 0.5 -> clamp 0, 0.25, 0.75, 1 */
    CHECK(four[0] == 0 && four[1] == 1 && four[2] == 3 && four[3] == 4,
          "1x2 -> 1x4 is bilinear with half-pixel centres (%g %g %g %g)", four[0], four[1], four[2], four[3]);
    float rgb[2 * 2 * 3], same[12];
    for (int i = 0; i < 12; i++) rgb[i] = (float)i;
    image_resize(rgb, 2, 2, 3, same, 2, 2);
    CHECK(!memcmp(rgb, same, sizeof same), "resizing to the same size copies (3 channels)");
    float shrunk[3];
    image_resize(rgb, 2, 2, 3, shrunk, 1, 1);
    CHECK(shrunk[0] == 4.5f && shrunk[1] == 5.5f && shrunk[2] == 6.5f, "channels are resized apart");
}

/* --- sources ------------------------------------------------------------------------------ */

static void test_folder(void) {
    mkdir(tpath("flat"), 0755);
    uint8_t px[4 * 6 * 3];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(k * 50 + i % 40);
        char name[64];
        snprintf(name, sizeof name, "flat/img%d.png", k);
        write_png(tpath(name), px, 4, 6, 3);
    }
    write_bytes(tpath("flat/readme.txt"), "not an image", 12);
    DataSpec s = spec_of(DS_FOLDER, tpath("flat"));
    int rc = data_probe(&s, err, sizeof err);
    CHECK(rc == 0 && s.ndim == 3 && s.shape[0] == 4 && s.shape[1] == 6 && s.shape[2] == 3 && s.nclasses == 0,
          "image_folder probe: [4, 6, 3] from the first image, no classes");
    const Dataset *d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(d && d->n == 3 && d->example_size == 72 && data_value(d, 72) == 50 && data_value(d, 72 + 1) == 51 && !d->labels,
          "image_folder loads 3 images in name order, pixels 0..255 (other files ignored)");

    /* one subfolder per class */
    mkdir(tpath("classes"), 0755);
    mkdir(tpath("classes/cat"), 0755);
    mkdir(tpath("classes/dog"), 0755);
    write_png(tpath("classes/cat/a.png"), px, 4, 6, 3);
    write_png(tpath("classes/dog/b.png"), px, 4, 6, 3);
    write_png(tpath("classes/dog/c.png"), px, 4, 6, 3);
    s = spec_of(DS_FOLDER, tpath("classes"));
    s.channels = 1;
    rc = data_probe(&s, err, sizeof err);
    CHECK(rc == 0 && s.nclasses == 2 && s.shape[2] == 1, "class subfolders: 2 classes, grey when asked");
    d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(d && d->n == 3 && d->labels && d->labels[0] == 0 && d->labels[1] == 1 && d->labels[2] == 1,
          "labels are the subfolder's index in name order");

    /* sizes: resize when size: is given, an error naming both files when not */
    mkdir(tpath("mixed"), 0755);
    write_png(tpath("mixed/a.png"), px, 4, 6, 3);
    write_jpeg(tpath("mixed/b.jpg"), px, 6, 4, 3);
    s = spec_of(DS_FOLDER, tpath("mixed"));
    rc = data_probe(&s, err, sizeof err);
    d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(!d && mentions(err, tpath("mixed/b.jpg"), "inconsistent sizes") && strstr(err, tpath("mixed/a.png")),
          "inconsistent sizes in a folder name both files: %s", err);
    s = spec_of(DS_FOLDER, tpath("mixed"));
    s.size[0] = 8; s.size[1] = 8; s.resize = 1;
    rc = data_probe(&s, err, sizeof err);
    d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(d && d->n == 2 && d->shape[0] == 8 && d->shape[1] == 8 && d->shape[2] == 3,
          "size: resizes PNG and JPEG images alike to [8, 8, 3]");

    /* errors */
    s = spec_of(DS_FOLDER, tpath("nofolder"));
    CHECK(data_probe(&s, err, sizeof err) != 0 && mentions(err, tpath("nofolder"), "No such file"),
          "missing folder: %s", err);
    mkdir(tpath("empty"), 0755);
    s = spec_of(DS_FOLDER, tpath("empty"));
    CHECK(data_probe(&s, err, sizeof err) != 0 && mentions(err, tpath("empty"), "empty folder"), "empty folder: %s", err);
    mkdir(tpath("broken"), 0755);
    write_png(tpath("broken/a.png"), px, 4, 6, 3);
    write_bytes(tpath("broken/b.png"), "\x89PNG\r\n\x1a\n garbage", 17);
    s = spec_of(DS_FOLDER, tpath("broken"));
    rc = data_probe(&s, err, sizeof err);
    d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(!d && mentions(err, tpath("broken/b.png"), "PNG"), "a corrupt image in a folder is named: %s", err);
}

/* Decoding split over two threads gives what a serial load gives, and the error of the
 * first corrupt file (not whichever thread failed first). */
static void test_folder_threads(void) {
    mkdir(tpath("many"), 0755);
    mkdir(tpath("many_bad"), 0755);
    uint8_t px[5 * 5];
    for (int k = 0; k < 40; k++) {
        for (int i = 0; i < 25; i++) px[i] = (uint8_t)(k * 5 + i);
        char name[64];
        snprintf(name, sizeof name, "many/%02d.png", k);
        write_png(tpath(name), px, 5, 5, 1);
        snprintf(name, sizeof name, "many_bad/%02d.png", k);
        if (k == 12 || k == 33) write_bytes(tpath(name), "\xff\xd8\xff\xe0 broken", 12);
        else write_png(tpath(name), px, 5, 5, 1);
    }
    threads_start(2);
    DataSpec s = spec_of(DS_FOLDER, tpath("many"));
    const Dataset *d = data_probe(&s, err, sizeof err) == 0 ? data_load(&s, err, sizeof err) : NULL;
    int right = d && d->n == 40;
    for (int k = 0; right && k < 40; k++) right = data_value(d, k * 25) == k * 5 && data_value(d, k * 25 + 24) == k * 5 + 24;
    CHECK(right, "40 images decoded on 2 threads land in name order");
    s = spec_of(DS_FOLDER, tpath("many_bad"));
    d = data_probe(&s, err, sizeof err) == 0 ? data_load(&s, err, sizeof err) : NULL;
    CHECK(!d && mentions(err, tpath("many_bad/12.png"), "JPEG"), "on 2 threads the first corrupt file is reported: %s", err);
    threads_stop();
}

static void test_npy(void) {
    float x[5 * 2 * 3];
    for (int i = 0; i < 30; i++) x[i] = (float)i;
    int64_t dims[3] = { 5, 2, 3 }, ldims[1] = { 5 };
    float y[5] = { 0, 2, 1, 2, 0 };
    npy_write(tpath("x.npy"), x, 3, dims, err, sizeof err);
    npy_write(tpath("y.npy"), y, 1, ldims, err, sizeof err);
    DataSpec s = spec_of(DS_NPY, tpath("x.npy"));
    s.labels_path = tpath("y.npy");
    int rc = data_probe(&s, err, sizeof err);
    CHECK(rc == 0 && s.ndim == 2 && s.shape[0] == 2 && s.shape[1] == 3 && s.nclasses == 3,
          "npy probe: examples [2, 3], 3 classes from the labels");
    DataSpec f = s;
    push(&f, (DataOp){ .kind = DOP_FILTER, .n = 1, .v = { 2 } });
    const Dataset *d = rc == 0 ? data_load(&f, err, sizeof err) : NULL;
    CHECK(d && d->n == 2 && data_value(d, 0) == 6 && data_value(d, 6) == 18 && d->labels[0] == 2, "npy | filter(label: 2) keeps examples 1 and 3");
    DataSpec m = s;
    push(&m, (DataOp){ .kind = DOP_SCALE, .lo = -1, .hi = 1 });
    d = data_load(&m, err, sizeof err);
    CHECK(d && data_value(d, 0) == -1 && data_value(d, 29) == 1, "scale of an npy array without from: maps its min..max");

    CHECK(data_probe(&(DataSpec){ .kind = DS_NPY, .source = "npy", .path = tpath("nonexistent.npy") }, err, sizeof err) != 0 &&
          mentions(err, tpath("nonexistent.npy"), NULL), "missing npy: %s", err);
    const char bad[] = "\x93NUMPY\x01\x00\x46\x00{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }            \n";
    unsigned char file[80 + 8];
    memcpy(file, bad, 80);
    memset(file + 80, 0, 8);
    write_bytes(tpath("complex.npy"), file, sizeof file);
    CHECK(data_probe(&(DataSpec){ .kind = DS_NPY, .source = "npy", .path = tpath("complex.npy") }, err, sizeof err) != 0 &&
          mentions(err, tpath("complex.npy"), "dtype"), "bad npy dtype: %s", err);
    float few[3] = { 0, 1, 2 };
    int64_t fdims[1] = { 3 };
    npy_write(tpath("few.npy"), few, 1, fdims, err, sizeof err);
    DataSpec wrong = spec_of(DS_NPY, tpath("x.npy"));
    wrong.labels_path = tpath("few.npy");
    CHECK(data_probe(&wrong, err, sizeof err) != 0 && mentions(err, tpath("few.npy"), "labels"),
          "labels of the wrong count: %s", err);
}

static void test_text(void) {
    const char *corpus = "abcabcabd";
    write_bytes(tpath("t.txt"), corpus, strlen(corpus));
    DataSpec s = spec_of(DS_TEXT, tpath("t.txt"));
    s.window = 3; s.stride = 2; s.one_hot = 1;
    int rc = data_probe(&s, err, sizeof err);
    CHECK(rc == 0 && s.nvocab == 4 && !memcmp(s.vocab, "abcd", 4) && s.ndim == 2 && s.shape[0] == 3 &&
          s.shape[1] == 4 && s.nparts == 2 && s.ndim2 == 1 && s.shape2[0] == 4,
          "text probe: vocabulary abcd, windows [3, 4] one-hot, targets [4]");
    const Dataset *d = rc == 0 ? data_load(&s, err, sizeof err) : NULL;
    /* 9 characters, window 3, step 2: windows start at 0, 2, 4 (6 would need a 10th) */
    CHECK(d && d->n == 3, "9 characters, window 3, step 2: 3 windows");
    if (!d) return;
    int64_t idx[2] = { 2, 1 };
    float x[2 * 12], y[2 * 4];
    data_fill_part(d, &s, 0, idx, 0, 2, x, NULL);
    data_fill_part(d, &s, 1, idx, 0, 2, y, NULL);
    /* window 2 starts at 4: "bca", target 'b'; window 1 at 2: "cab", target 'c' */
    CHECK(x[0 * 4 + 1] == 1 && x[1 * 4 + 2] == 1 && x[2 * 4 + 0] == 1 && y[1] == 1 && y[0] == 0,
          "one-hot window 'bca' and target 'b'");
    CHECK(x[12 + 2] == 1 && x[12 + 4 + 0] == 1 && x[12 + 8 + 1] == 1 && y[4 + 2] == 1, "one-hot window 'cab' and target 'c'");
    DataSpec ids = s;
    ids.one_hot = 0;
    data_probe(&ids, err, sizeof err);
    d = data_load(&ids, err, sizeof err);
    data_fill_part(d, &ids, 0, idx, 0, 1, x, NULL);
    data_fill_part(d, &ids, 1, idx, 0, 1, y, NULL);
    CHECK(d && ids.ndim == 1 && ids.ndim2 == 0 && x[0] == 1 && x[1] == 2 && x[2] == 0 && y[0] == 1,
          "one_hot: false gives ids [3] and an id target");
    /* split cuts the corpus: validation is its last third */
    DataSpec v = s;
    push(&v, (DataOp){ .kind = DOP_SPLIT, .v = { 1, 0 }, .fraction = 0.45 });
    d = data_load(&v, err, sizeof err);
    CHECK(d && d->nids == 4 && d->n == 1 && d->ids[0] == 2, "split(\"validation\", 0.45) of 9 characters: the last 4 (one window)");
    DataSpec t = s;
    push(&t, (DataOp){ .kind = DOP_SPLIT, .v = { 0, 0 }, .fraction = 0.45 });
    d = data_load(&t, err, sizeof err);
    CHECK(d && d->nids == 5 && d->n == 1, "split(\"train\", 0.55) keeps the first 5 characters");
    write_bytes(tpath("short.txt"), "ab", 2);
    DataSpec sh = spec_of(DS_TEXT, tpath("short.txt"));
    sh.window = 3; sh.stride = 1;
    CHECK(data_probe(&sh, err, sizeof err) != 0 && mentions(err, tpath("short.txt"), "fewer than window"),
          "a text shorter than a window: %s", err);
    DataSpec none = spec_of(DS_TEXT, tpath("missing.txt"));
    none.window = 3; none.stride = 1;
    CHECK(data_probe(&none, err, sizeof err) != 0 && mentions(err, tpath("missing.txt"), NULL), "missing text: %s", err);
}

/* --- transforms and batches ------------------------------------------------------------- */

/* A 2x3 grey data set of 4 examples, values 0..23, labels 0 1 0 1, from an npy file. */
static DataSpec small_images(void) {
    static int made;
    if (!made) {
        float x[4 * 2 * 3], y[4] = { 0, 1, 0, 1 };
        for (int i = 0; i < 24; i++) x[i] = (float)i;
        int64_t dims[3] = { 4, 2, 3 }, ldims[1] = { 4 };
        npy_write(tpath("small.npy"), x, 3, dims, err, sizeof err);
        npy_write(tpath("small_y.npy"), y, 1, ldims, err, sizeof err);
        made = 1;
    }
    DataSpec s = spec_of(DS_NPY, tpath("small.npy"));
    s.labels_path = tpath("small_y.npy");
    data_probe(&s, err, sizeof err);
    return s;
}

static void test_transforms(void) {
    DataSpec s = small_images();
    push(&s, (DataOp){ .kind = DOP_PAD, .v = { 1, 0, 0, 2 }, .value = -5 });
    const Dataset *d = data_load(&s, err, sizeof err);
    /* [2, 3] -> [3, 5]: a row on top, two columns on the right */
    CHECK(d && s.shape[0] == 3 && s.shape[1] == 5 && d->shape[0] == 3 && d->shape[1] == 5 && data_value(d, 0) == -5 &&
          data_value(d, 5) == 0 && data_value(d, 7) == 2 && data_value(d, 8) == -5 && data_value(d, 15 + 5) == 6, "pad(top: 1, right: 2, value: -5)");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_CROP, .v = { 0, 1, 2, 2 } });
    d = data_load(&s, err, sizeof err);
    CHECK(d && d->example_size == 4 && data_value(d, 0) == 1 && data_value(d, 1) == 2 && data_value(d, 2) == 4 && data_value(d, 3) == 5, "crop(2, 2, left: 1)");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_CHANNELS, .n = 1, .v = { 3 } });
    d = data_load(&s, err, sizeof err);
    CHECK(d && d->ndim == 3 && d->shape[2] == 3 && data_value(d, 3 * 4) == 4 && data_value(d, 3 * 4 + 2) == 4, "channels(3) replicates grey");
    push(&s, (DataOp){ .kind = DOP_CHANNELS, .n = 1, .v = { 1 } });
    d = data_load(&s, err, sizeof err);
    CHECK(d && d->shape[2] == 1 && fabsf(data_value(d, 4) - 4) < 1e-5, "channels(1) of grey RGB is the grey value (luma)");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_SCALE, .known = 1, .a = 0, .b = 20, .lo = -1, .hi = 1 });
    d = data_load(&s, err, sizeof err);
    CHECK(d && data_value(d, 0) == -1 && data_value(d, 10) == 0 && data_value(d, 20) == 1, "scale(-1, 1, from: (0, 20))");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_RESIZE, .v = { 1, 3 } });
    d = data_load(&s, err, sizeof err);
    CHECK(d && d->shape[0] == 1 && data_value(d, 0) == 1.5f && data_value(d, 2) == 3.5f, "resize(1, 3) averages rows");

    /* split: the two parts partition the examples, whatever way they are asked for */
    s = small_images();
    DataSpec tr = s, va = s;
    push(&tr, (DataOp){ .kind = DOP_SPLIT, .v = { 0, 0 }, .fraction = 1 - 0.75 });
    push(&va, (DataOp){ .kind = DOP_SPLIT, .v = { 1, 0 }, .fraction = 0.25 });
    const Dataset *dt = data_load(&tr, err, sizeof err), *dv = data_load(&va, err, sizeof err);
    CHECK(dt && dv && dt->n == 3 && dv->n == 1 && data_value(dv, 0) == 18 && data_value(dt, 12) == 12,
          "split(\"train\", 0.75) keeps the first 3, split(\"validation\", 0.25) the last");
    int64_t keep_t[100], keep_v[100];
    DataOp st = { .kind = DOP_SPLIT, .v = { 0, 1 }, .fraction = 0.3 }, sv = st;
    sv.v[0] = 1;
    int64_t nt = data_split_keep(&st, 100, keep_t), nv = data_split_keep(&sv, 100, keep_v);
    int disjoint = nt + nv == 100, contiguous = 1;
    for (int64_t i = 0; i < nt; i++)
        for (int64_t j = 0; j < nv; j++) if (keep_t[i] == keep_v[j]) disjoint = 0;
    for (int64_t j = 1; j < nv; j++) if (keep_v[j] != keep_v[j - 1] + 1) contiguous = 0;
    CHECK(nv == 30 && disjoint && !contiguous, "shuffled split: 30 of 100 held out, disjoint, spread out");
    int64_t again[100];
    data_split_keep(&sv, 100, again);
    CHECK(!memcmp(again, keep_v, sizeof(int64_t) * 30), "shuffled split is the same every time");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_FILTER, .n = 1, .v = { 7 } });
    CHECK(!data_load(&s, err, sizeof err) && strstr(err, "no example"), "a filter that keeps nothing is an error: %s", err);
    char desc[512];
    s = small_images();
    push(&s, (DataOp){ .kind = DOP_FILTER, .n = 2, .v = { 0, 1 } });
    push(&s, (DataOp){ .kind = DOP_PAD, .v = { 2, 2, 2, 2 } });
    data_describe(&s, 1, desc, sizeof desc);
    CHECK(strstr(desc, "npy(\"") && strstr(desc, "| filter(label: 0, 1) | pad(top: 2"), "describe: %s", desc);
}

static void test_per_batch(void) {
    DataSpec s = small_images();
    push(&s, (DataOp){ .kind = DOP_FLIP, .p = 1 });
    const Dataset *d = data_load(&s, err, sizeof err);
    int64_t idx[4] = { 0, 1, 2, 3 };
    float x[24];
    Rng r;
    rng_init(&r, 1);
    data_fill_batch(d, &s, idx, 0, 4, x, &r);
    CHECK(x[0] == 2 && x[1] == 1 && x[2] == 0 && x[3] == 5 && x[6] == 8, "random_flip(p: 1) mirrors every row");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_FLIP, .p = 0.5 });
    d = data_load(&s, err, sizeof err);
    float a[24], b[24], c[24];
    int flips = 0;
    Rng r1, r2, r3;
    rng_init(&r1, 42); rng_init(&r2, 42); rng_init(&r3, 43);
    for (int rep = 0; rep < 50; rep++) {
        data_fill_batch(d, &s, idx, 0, 4, a, &r1);
        data_fill_batch(d, &s, idx, 0, 4, b, &r2);
        if (memcmp(a, b, sizeof a)) break;
        for (int i = 0; i < 4; i++) flips += a[i * 6] != i * 6;
    }
    CHECK(!memcmp(a, b, sizeof a) && flips > 60 && flips < 140, "random_flip: same seed, same flips (%d of 200 flipped)", flips);
    int differ = 0;
    rng_init(&r1, 42);
    for (int rep = 0; rep < 5; rep++) {
        data_fill_batch(d, &s, idx, 0, 4, a, &r1);
        data_fill_batch(d, &s, idx, 0, 4, c, &r3);
        differ |= memcmp(a, c, sizeof a) != 0;
    }
    CHECK(differ, "random_flip: another seed, other flips");

    s = small_images();
    push(&s, (DataOp){ .kind = DOP_NOISE, .std = 0.5 });
    d = data_load(&s, err, sizeof err);
    int64_t many[1000];
    for (int i = 0; i < 1000; i++) many[i] = i % 4;
    float *n1 = malloc(sizeof(float) * 6000), *n2 = malloc(sizeof(float) * 6000);
    rng_init(&r1, 9); rng_init(&r2, 9);
    data_fill_batch(d, &s, many, 0, 1000, n1, &r1);
    data_fill_batch(d, &s, many, 0, 1000, n2, &r2);
    double sum = 0, sq = 0;
    for (int i = 0; i < 6000; i++) {
        double e = n1[i] - (float)((many[i / 6]) * 6 + i % 6);
        sum += e; sq += e * e;
    }
    double mean = sum / 6000, sd = sqrt(sq / 6000 - mean * mean);
    CHECK(!memcmp(n1, n2, sizeof(float) * 6000) && fabs(mean) < 0.03 && fabs(sd - 0.5) < 0.03,
          "add_noise(0.5): reproducible for a seed, mean %.3f, std %.3f", mean, sd);
    free(n1);
    free(n2);
}

static void test_labels_and_batches(void) {
    DataSpec s = small_images();
    s.labels = 1;
    s.nparts = 2;
    const Dataset *d = data_load(&s, err, sizeof err);
    int64_t idx[3] = { 3, 0, 1 };
    float y[3 * 2];
    data_fill_part(d, &s, 1, idx, 0, 3, y, NULL);
    CHECK(y[0] == 1 && y[1] == 0 && y[2] == 1, "labels as class ids");
    s.one_hot = 1;
    data_fill_part(d, &s, 1, idx, 0, 3, y, NULL);
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 1 && y[3] == 0 && y[4] == 0 && y[5] == 1, "labels one-hot");

    DataSpec b = s;
    b.batch = 3;
    CHECK(data_num_batches(d, &b) == 2 && data_batch_len(d, &b, 0) == 3 && data_batch_len(d, &b, 1) == 1,
          "4 examples in batches of 3: 2 batches, the last of 1");
    b.drop_last = 1;
    CHECK(data_num_batches(d, &b) == 1, "drop_last: 1 batch");
    b.batch = 5;
    CHECK(data_num_batches(d, &b) == 0, "drop_last with more than n per batch: no batch");
}

static void test_unpaired(void) {
    DataSpec a = small_images(), b = small_images();
    push(&b, (DataOp){ .kind = DOP_FILTER, .n = 1, .v = { 1 } });
    DataSpec u = { .kind = DS_UNPAIRED, .source = "unpaired", .split = "all", .a = &a, .b = &b, .nparts = 2, .ndim = 2,
                   .shape = { 2, 3 }, .ndim2 = 2, .shape2 = { 2, 3 } };
    const Dataset *d = data_load(&u, err, sizeof err);
    CHECK(d && d->n == 4 && d->a->n == 4 && d->b->n == 2, "unpaired: as many examples as the larger domain");
    if (!d) return;
    int64_t idx[4] = { 0, 1, 2, 3 };
    float xa[24], xb[24], xb2[24];
    Rng r1, r2;
    rng_init(&r1, 5); rng_init(&r2, 5);
    data_fill_part(d, &u, 0, idx, 0, 4, xa, &r1);
    data_fill_part(d, &u, 1, idx, 0, 4, xb, &r1);
    data_fill_part(d, &u, 0, idx, 0, 4, xa, &r2);
    data_fill_part(d, &u, 1, idx, 0, 4, xb2, &r2);
    int from_b = 1;
    for (int i = 0; i < 4; i++) from_b &= xb[i * 6] == 6 || xb[i * 6] == 18;
    CHECK(xa[6] == 6 && xa[18] == 18 && from_b && !memcmp(xb, xb2, sizeof xb),
          "unpaired: A in index order, B drawn from B alone, the same for a seed");
}

static void test_fashion(void) {
    if (access(FASHION, R_OK) != 0) { printf("skip - Fashion-MNIST not installed\n"); return; }
    DataSpec s = spec_of(DS_IDX, NULL);
    data_probe(&s, err, sizeof err);
    push(&s, (DataOp){ .kind = DOP_FILTER, .n = 1, .v = { 7 } });
    push(&s, (DataOp){ .kind = DOP_PAD, .v = { 2, 2, 2, 2 } });
    push(&s, (DataOp){ .kind = DOP_CHANNELS, .n = 1, .v = { 1 } });
    push(&s, (DataOp){ .kind = DOP_SCALE, .known = 1, .a = 0, .b = 255, .lo = -1, .hi = 1, .value = 0 });
    const Dataset *d = data_load(&s, err, sizeof err);
    int labels7 = d != NULL;
    for (int64_t i = 0; d && i < d->n; i++) labels7 &= d->labels[i] == 7;
    CHECK(d && d->n == 6000 && labels7 && d->ndim == 3 && d->shape[0] == 32 && d->shape[1] == 32 && d->shape[2] == 1,
          "Fashion-MNIST sneakers, padded: 6000 examples of [32, 32, 1]");
    CHECK(d && data_value(d, 0) == -1 && data_value(d, 33) == -1, "the padding is black (-1 after scale(-1, 1))");
    DataSpec v = spec_of(DS_IDX, NULL);
    data_probe(&v, err, sizeof err);
    push(&v, (DataOp){ .kind = DOP_SPLIT, .v = { 1, 0 }, .fraction = 0.1 });
    d = data_load(&v, err, sizeof err);
    CHECK(d && d->n == 6000, "split(\"validation\", 0.1) of the training files: 6000 examples");
    DataSpec m = spec_of(DS_IDX, NULL);
    m.source = "mnist";
    m.dir = tpath("no_mnist");
    data_probe(&m, err, sizeof err);
    CHECK(!data_load(&m, err, sizeof err) && mentions(err, tpath("no_mnist/train-images-idx3-ubyte.gz"), NULL),
          "a missing IDX file is named: %s", err);
}

/* --- the compile-time side ---------------------------------------------------------------- */

/* Compiles a program; NULL with the diagnostics in diag_text when it has errors. */
static Program *compile(const char *name, const char *text) {
    const char *path = tpath(name);
    write_bytes(path, text, strlen(text));
    diag_reset();
    diag_text[0] = 0;
    diag_capture(diag_text, sizeof diag_text);
    Program *p = sema_load(ast_intern(path), NULL, 0);
    diag_capture(NULL, 0);
    return p;
}

static const DataSpec *global_data(Program *p, const char *name) {
    Value *v = p ? scope_get((Scope *)p->globals, ast_intern(name)) : NULL;
    return v && v->kind == V_DATA ? v->data : NULL;
}

static void test_compile(void) {
    char text[2048];
    Program *p = compile("shapes.gm",
        "data a = fashion_mnist(split: \"train\") | filter(label: 7) | pad(2) | channels(1) | scale(-1, 1)\n"
        "data b = fashion_mnist(split: \"test\", channels: 1) | crop(20) | resize(10, 12)\n"
        "data c = fashion_mnist() | with_labels(one_hot: true) | split(\"validation\", 0.1) | random_flip | add_noise(0.1)\n"
        "data u = unpaired(fashion_mnist() | filter(label: 7), fashion_mnist() | filter(label: 9)) | pad(2) | channels(1)\n");
    const DataSpec *a = global_data(p, "a"), *b = global_data(p, "b"), *c = global_data(p, "c"), *u = global_data(p, "u");
    CHECK(a && a->ndim == 3 && a->shape[0] == 32 && a->shape[1] == 32 && a->shape[2] == 1,
          "filter | pad(2) | channels(1): [32, 32, 1] at compile time %s", diag_text);
    CHECK(a && a->nops == 4 && a->ops[1].value == 0 && a->ops[3].known && a->ops[3].b == 255,
          "pad fills with 0 (black in 0..255); scale maps from 0..255");
    CHECK(b && b->ndim == 3 && b->shape[0] == 10 && b->shape[1] == 12 && b->ops[1].v[0] == 4,
          "channels: 1 | crop(20) (centred) | resize(10, 12): [10, 12, 1]");
    CHECK(c && c->nparts == 2 && c->ndim2 == 1 && c->shape2[0] == 10 && !strcmp(c->split, "train") && c->per_batch,
          "with_labels(one_hot: true): a second part of [10]; split() leaves the IDX files alone");
    CHECK(u && u->kind == DS_UNPAIRED && u->nparts == 2 && u->shape[0] == 32 && u->shape2[2] == 1 && u->a->nops == 3,
          "unpaired(sneakers, boots) | pad(2) | channels(1): both domains [32, 32, 1]");

    p = compile("late_pad.gm", "data d = fashion_mnist() | random_flip | pad(2)\n");
    CHECK(!p && strstr(diag_text, "late_pad.gm:1:") && strstr(diag_text, "put them last"),
          "a shape transform after a per-batch one is an error: %s", diag_text);
    snprintf(text, sizeof text, "data d = image_folder(\"%s\", size: 16)\n", tpath("no_such_folder"));
    p = compile("missing_folder.gm", text);
    CHECK(!p && strstr(diag_text, "missing_folder.gm:1:23: error: cannot open folder") && strstr(diag_text, tpath("no_such_folder")),
          "a missing folder is a compile-time error at the path, naming it: %s", diag_text);
    snprintf(text, sizeof text, "data d = image_folder(\"%s\", channels: 1)\n", tpath("classes"));
    p = compile("folder.gm", text);
    const DataSpec *f = global_data(p, "d");
    CHECK(f && f->ndim == 3 && f->shape[0] == 4 && f->shape[1] == 6 && f->shape[2] == 1 && f->nclasses == 2,
          "image_folder(channels: 1): [4, 6, 1] from the first image, 2 classes");
    snprintf(text, sizeof text, "data d = image_folder(\"%s\") | filter(label: 1)\n", tpath("flat"));
    p = compile("nolabels.gm", text);
    CHECK(!p && strstr(diag_text, "needs labels"), "filter on a folder without classes: %s", diag_text);
    snprintf(text, sizeof text, "data d = text(\"%s\", window: 3, step: 2)\n", tpath("t.txt"));
    p = compile("text.gm", text);
    const DataSpec *t = global_data(p, "d");
    CHECK(t && t->nparts == 2 && t->shape[0] == 3 && t->shape[1] == 4 && t->shape2[0] == 4, "text(window: 3): [3, 4] and [4]");
    snprintf(text, sizeof text, "data d = text(\"%s\", window: 3) | pad(1)\n", tpath("t.txt"));
    p = compile("textpad.gm", text);
    CHECK(!p && strstr(diag_text, "does not apply to text"), "pad on text: %s", diag_text);
    snprintf(text, sizeof text, "data d = npy(\"%s\") | pad(1)\n", tpath("x.npy"));
    p = compile("npypad.gm", text);
    CHECK(p && global_data(p, "d")->shape[0] == 4 && global_data(p, "d")->shape[1] == 5, "npy [2, 3] | pad(1): [4, 5] %s", diag_text);
    snprintf(text, sizeof text, "data d = npy(\"%s\")\n", tpath("complex.npy"));
    p = compile("npybad.gm", text);
    CHECK(!p && strstr(diag_text, "npybad.gm:1:14: error:") && strstr(diag_text, "complex.npy") && strstr(diag_text, "dtype"),
          "a bad npy file is an error at its name: %s", diag_text);
    p = compile("crop.gm", "data d = fashion_mnist() | crop(30)\n");
    CHECK(!p && strstr(diag_text, "does not fit"), "a crop larger than the image: %s", diag_text);
    p = compile("split.gm", "data d = fashion_mnist() | split(\"train\", 1.5)\n");
    CHECK(!p && strstr(diag_text, "split.gm:1:43: error: the split fraction must be between 0 and 1"),
          "a split fraction out of range: %s", diag_text);
    p = compile("split2.gm", "data t = fashion_mnist() | split(\"train\", 0.9)\ndata v = fashion_mnist() | split(\"validation\", 0.1)\n");
    CHECK(p && global_data(p, "t")->ops[0].fraction == global_data(p, "v")->ops[0].fraction &&
          !global_data(p, "t")->ops[0].v[0] && global_data(p, "v")->ops[0].v[0] == 1,
          "split(\"train\", 0.9) and split(\"validation\", 0.1) make one cut %s", diag_text);
    p = compile("batch.gm", "data d = fashion_mnist() | batch(32, drop_last: true)\n");
    CHECK(p && global_data(p, "d")->drop_last && global_data(p, "d")->batch == 32, "batch(32, drop_last: true)");
    p = compile("tensor_pad.gm", "data d = fashion_mnist() | filter(7)\n");
    CHECK(!p && strstr(diag_text, "label"), "filter(7) asks for label: %s", diag_text);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gmc_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    test_decode();
    test_resize();
    test_folder();
    test_folder_threads();
    test_npy();
    test_text();
    test_transforms();
    test_per_batch();
    test_labels_and_batches();
    test_unpaired();
    test_fashion();
    test_compile();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_DONE();
}
