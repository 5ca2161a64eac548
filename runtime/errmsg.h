/* errmsg.h: the runtime's error messages go into a caller's buffer (err, errlen), so the caller
 * decides where they are printed; every loader names the file and the problem. */
#ifndef GMC_ERRMSG_H
#define GMC_ERRMSG_H

/* printf into err (of errlen bytes); does nothing when err is NULL */
void errmsg(char *err, int errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
