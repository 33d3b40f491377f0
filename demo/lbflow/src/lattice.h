/* lbflow - D2Q9 BGK lattice: collision (Guo forcing), streaming,
 * bounce-back walls and fixed-density inlet/outlet cells. */
#ifndef LBFLOW_LATTICE_H
#define LBFLOW_LATTICE_H

#include "geometry.h"
#include "lbflow.h"

#define LB_Q 9

/* Only non-wall cells are stored.  They are numbered k = 0 .. nactive-1 in
 * the order of their cell index y*nx + x, and the populations are stored as
 * a structure of arrays: f[i * nactive + k]. */
typedef struct {
    int nx, ny;
    long n;            /* nx * ny */
    long nactive;      /* non-wall cells (fluid, inlet and outlet) */
    long *active;      /* cell index (y*nx + x) of each stored cell k */
    int *src;          /* LB_Q * nactive: where population (i, k) streams from */
    long nopen;        /* inlet + outlet cells */
    long *open_k;      /* their compact indices */
    long *open_nb_k;   /* the fluid neighbour each one extrapolates from */
    real_t *open_rho;  /* the density each one is held at */
    real_t tau, omega; /* relaxation time and rate 1/tau */
    real_t force;      /* body force density along +x */
    real_t *f, *ftmp;  /* populations (current, scratch) */
} lattice_t;

/* Set up the lattice for a geometry and initialise it at rest (rho = 1).
 * Returns 0, or -1 if memory runs out. */
int lattice_init(lattice_t *lat, const geometry_t *geom, double tau, double force);

/* One time step: open boundaries, collision, streaming with bounce-back. */
void lattice_step(lattice_t *lat);

/* Macroscopic fields (arrays of nx*ny doubles indexed y*nx + x; wall cells
 * are set to 0).  Applies the open boundary condition first so that inlet
 * and outlet cells are consistent.  Any output pointer may be NULL. */
void lattice_macroscopic(lattice_t *lat, double *rho, double *ux, double *uy);

void lattice_free(lattice_t *lat);

#endif /* LBFLOW_LATTICE_H */
