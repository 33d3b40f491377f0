/* lbflow - common definitions: floating-point precision and version. */
#ifndef LBFLOW_H
#define LBFLOW_H

#ifndef LBFLOW_VERSION
#define LBFLOW_VERSION "1.0.0"
#endif

/* The precision is chosen at configure time (CMake option LBFLOW_PRECISION),
 * which adds exactly one of these compile definitions. */
#if defined(LBFLOW_PRECISION_FLOAT) && defined(LBFLOW_PRECISION_DOUBLE)
#error "define only one of LBFLOW_PRECISION_FLOAT and LBFLOW_PRECISION_DOUBLE"
#endif

#if defined(LBFLOW_PRECISION_FLOAT)
typedef float real_t;
#define LBFLOW_PRECISION_NAME "float"
#else
typedef double real_t;
#define LBFLOW_PRECISION_NAME "double"
#endif

/* Exit codes (documented in README.md). */
#define LBFLOW_EXIT_OK 0
#define LBFLOW_EXIT_RUNTIME 1  /* cannot write outputs, out of memory */
#define LBFLOW_EXIT_USAGE 2    /* bad command line or bad geometry file */
#define LBFLOW_EXIT_UNSTABLE 3 /* simulation diverged (NaN / |u| too large) */

#endif /* LBFLOW_H */
