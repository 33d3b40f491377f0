/* lbflow - geometry files (format described in README.md). */
#ifndef LBFLOW_GEOMETRY_H
#define LBFLOW_GEOMETRY_H

#include <stddef.h>

enum cell_type {
    CELL_WALL = 0,
    CELL_FLUID = 1,
    CELL_INLET = 2,  /* fluid cell held at the inlet density */
    CELL_OUTLET = 3  /* fluid cell held at the outlet density */
};

#define GEOMETRY_MAX_DIM 10000

typedef struct {
    int nx, ny;
    unsigned char *cell; /* nx*ny cell types, index y*nx + x, y = 0 is the bottom row */
    long n_fluid;        /* '.' cells */
    long n_inlet;        /* 'I' cells */
    long n_outlet;       /* 'O' cells */
    char name[128];      /* file name without directory and without ".gmy" */
} geometry_t;

/* Read and validate a geometry file.  On failure returns -1 and writes a
 * one-line message (without trailing newline) to err. */
int geometry_read(const char *path, geometry_t *geom, char *err, size_t errlen);

void geometry_free(geometry_t *geom);

#endif /* LBFLOW_GEOMETRY_H */
