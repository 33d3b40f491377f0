/* lbflow - result files: velocity.csv and summary.json. */
#ifndef LBFLOW_OUTPUT_H
#define LBFLOW_OUTPUT_H

#include "diagnostics.h"
#include "geometry.h"
#include "steer.h"

#define OUTPUT_VELOCITY_FILE "velocity.csv"
#define OUTPUT_SUMMARY_FILE "summary.json"

typedef struct {
    const geometry_t *geom;
    const char *geometry_file; /* path as given on the command line */
    const char *boundary;      /* "periodic" or "inlet-outlet" */
    long steps;
    double tau, viscosity, force;
    int openmp_threads; /* 0 when built without OpenMP */
    double initial_mass;
    int has_residual;
    double residual;
    double wall_time_s;
    double mlups;
    diagnostics_t diag;
    const steer_t *steer; /* NULL without --steer-port: no "steering" key */
} run_summary_t;

/* Write "x,y,ux,uy,rho" rows for all non-wall cells.  Returns 0 or -1. */
int output_write_velocity(const char *path, const geometry_t *geom, const double *rho, const double *ux,
                          const double *uy);

/* Write the run summary as JSON.  Returns 0 or -1. */
int output_write_summary(const char *path, const run_summary_t *s);

#endif /* LBFLOW_OUTPUT_H */
