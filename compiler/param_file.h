/* param_file.h: parameters initialised from a user's safetensors file (param_file.c). */
#ifndef GMC_PARAM_FILE_H
#define GMC_PARAM_FILE_H
#include "sema_internal.h"

/* `safetensors(path, tensor, permute: (axes))` in an initialiser: checks the file and tensor */
Value file_init(Args *a);
/* records the file on a new param and checks the (permuted) tensor has its shape */
int param_file_attach(Param *p, const char *local, const Value *init, Loc loc);
/* fills the param from its file; -1 after a message */
int param_file_fill(Param *p);
#endif
