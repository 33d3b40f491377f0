/* lbflow - the optional steering socket (--steer-port): a line protocol on TCP.
 *
 *   status         ->  step=<n> flow=<flow_rate_mid> force=<force>
 *   force <value>  ->  ok force=<value>      (applies from the next step)
 *   stop           ->  ok stop step=<n>      (the run ends now and writes its results)
 *
 * Any other line gets "error ..." back.  The socket is polled without
 * blocking every --steer-every steps, so nobody connected costs one poll()
 * system call per poll.  While it listens, steer.json ({"host", "port",
 * "pid"}) in the current directory says where; it is removed at exit. */
#ifndef LBFLOW_STEER_H
#define LBFLOW_STEER_H

#include <stddef.h>
#include <stdio.h>

#define STEER_FILE "steer.json"

typedef struct steer steer_t;

/* What the solver answers a status request with: it is asked only when a
 * client sends "status" (computing the flow rate costs a pass over the lattice). */
typedef double (*steer_flow_fn)(void *ctx);

/* Listen on TCP port `port` (0 = any free port) of every address and write
 * STEER_FILE.  NULL on failure, with a message in err. */
steer_t *steer_open(int port, char *err, size_t errlen);

/* Serve the connected clients without blocking.  May change *force and set
 * *stop.  Returns the number of commands that changed something. */
int steer_poll(steer_t *s, long step, double *force, int *stop, steer_flow_fn flow, void *ctx);

/* The port listened on, and the host name published. */
int steer_port(const steer_t *s);
const char *steer_host(const steer_t *s);

/* Write the steering record as the JSON value of summary.json's "steering". */
void steer_write_json(FILE *fp, const steer_t *s, double initial_force);

/* Close every socket and remove STEER_FILE. */
void steer_close(steer_t *s);

#endif /* LBFLOW_STEER_H */
