/* plot.h: loss curves as a PNG image. */
#ifndef GMC_PLOT_H
#define GMC_PLOT_H
#include <stdint.h>

typedef struct PlotSeries { const char *name; const double *y; } PlotSeries;

/* Draws each series over npoints steps (non-finite values leave gaps) into a 640x360 PNG.
 * Returns 0, or -1 with the file and reason in err. */
int plot_losses(const char *path, const PlotSeries *series, int nseries, int64_t npoints,
                char *err, int errlen);
#endif
