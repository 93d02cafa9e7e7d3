/* vemu: a discrete-event engine for I/O paths through virtualised hosts.
 *
 * The engine knows nothing of Xen, KVM or Nitro. It runs generic *requests* through
 * *stages* on *resources* and charges the time every service unit spends busy to an
 * accounting *category*. Architectures are data (TOML models compiled to the flat arrays
 * below by the Python layer).
 *
 * Vocabulary
 *   resource  `units` identical parallel servers (cores, link lanes, SSD channels) with
 *             an optional bound on waiting requests (`capacity`; arrivals beyond it are
 *             dropped and counted).
 *   qclass    a queue at one resource. Requests of stages sharing a qclass wait in one
 *             FIFO. A free unit serves the non-empty qclass of highest `priority`, ties
 *             going to the request that has waited longest (non-preemptive priority, unless
 *             the qclass has `preempt`).
 *             A qclass with `batch` > 1 serves up to `batch` queued requests at once: the
 *             fixed work is drawn once, the per-byte work is paid for every member.
 *             A qclass with `gap` > 0 begins its services at least `gap` ps apart, as a
 *             NIC's interrupt throttle (ITR) spaces interrupts: a request finding the last
 *             service begun `gap` or longer ago starts at once (given a free unit), else it
 *             waits until the gap has passed, and everything waiting then (up to `batch`)
 *             is served together; a request arriving at the very instant the gap passes
 *             joins those waiting, behind them, if its arrival is taken before the gap's
 *             end (events at one instant go in the order they were scheduled; the gap's
 *             end was scheduled when the first of those waiting came, so usually it goes
 *             first and the newcomer waits for the next gap). One throttle per qclass,
 *             whatever its units.
 *   preempt   a qclass with `preempt` takes a unit at once when a request arrives and no
 *             unit is free, if one is serving a qclass of lower priority (the lowest such,
 *             the one begun or resumed earliest among equals, so that preemptions
 *             rotate over the units): that service is suspended and
 *             its unit changes hands with no cost (preemptive resume, as an interrupt
 *             preempts the code a core is running). A suspended service keeps its
 *             requests and its remaining time; a unit coming free resumes the suspended
 *             service of highest priority before starting queued requests of the same or
 *             lower priority (among suspended services of one priority, the first
 *             suspended first), and it may then have to wake. Suspended services are not
 *             waiting requests: they hold no queue slot and are not in the queue
 *             statistics; their time suspended counts as wait, not service. A service
 *             whose own next stage would run on its unit (run to completion, below) gives
 *             the unit up instead, and queues for that stage, when that stage's priority
 *             is lower than its own and a suspended service, or a request already waiting
 *             (behind an open throttle, if any), has that stage's priority or higher: the
 *             interrupt's own stages are done, the interrupted code goes on, and the work
 *             the interrupt brought joins the queue in its turn (on any resource, with or
 *             without preemption, so that a lone request and the members of a batch go on
 *             alike). It does so too when a waiting preempting request outranks that
 *             stage. Only a service in progress
 *             is preempted, never a unit waking from an idle state.
 *   idle      a resource may give its units idle states (a CPU's C-states): each has an
 *             exit latency and a target residency, shallowest first. A unit that goes idle
 *             enters the deepest state whose target residency its prediction reaches (the
 *             shallowest at least, as Linux's menu governor takes C1 rather than polling);
 *             its prediction is the length of its previous idle period. A request that
 *             finds it idle starts after that state's exit latency (part of the request's
 *             wait; the unit's time is charged to the resource's wake category and counted
 *             as a wake-up), and arrivals meanwhile queue (a request waiting for its unit to
 *             wake is in service as far as the resource's queue statistics go). A unit
 *             handed straight from one service to the next never sleeps; a unit never used
 *             yet has slept since before time 0. A throttle's gap counts from the start of
 *             the service proper. With `poll` > 0 a unit going idle first
 *             polls for that long (charged to the poll category, as KVM's halt-polling
 *             burns host cycles): work arriving meanwhile starts at once; only then does it
 *             sleep.
 *             Units are taken last-idle-first.
 *   stage     one step of a request: service on a qclass (or none: a pure delay), then an
 *             optional pure delay that holds no resource. Consecutive stages of one
 *             request on the same resource run back to back on the unit it already holds
 *             (run to completion, as a CPU would), unless the service was a batch or the
 *             next stage batches (a batch forms only from requests waiting for it).
 *             A service on a batching qclass whose members all go on, with no delay, to
 *             one batching qclass carries them on together: on the same resource, with
 *             room for them all and no throttle, as one service on the unit it holds
 *             (taking in requests already waiting, up to its batch), so the later stages
 *             of one interrupt are paid once for the interrupt; elsewhere they arrive as
 *             a group, up to `batch` of them starting as one service on a free unit (the
 *             packets one notification covers are taken by one interrupt). Members going
 *             on to several batching qclasses (the next stage's lanes split them, or they
 *             are at several stages) arrive as one group at each, the qclasses taken in
 *             index order.
 *   fork      a stage may fork: every request leaving it also starts a *detached*
 *             request of the same flow, with its bytes, on another class (work the first
 *             one sets off but does not wait for, as a transmit completion). A detached
 *             request runs its class like any other but is no request of its flow: it is
 *             not counted as created, completed, dropped or in flight and has no latency;
 *             its completions count in its class's, its stages' statistics are kept, and
 *             it holds a pool slot while it runs. A class forked to has no forking stage.
 *   lanes     a stage may spread its requests over `lanes` qclasses alike in every field:
 *             each request has a lane (a number drawn from its key, a detached request
 *             its parent's) and is served on the qclass its lane picks, so each lane has
 *             its own queue, batches and throttle (one interrupt vector per queue of a
 *             multi-queue NIC), while the resource's units serve them all.
 *   class     a contiguous run of stages; a flow draws a class per request by weight.
 *   flow      a source of requests: open (interarrival times drawn from a distribution)
 *             or closed (`clients` requests always outstanding, each followed by a think
 *             time).
 *
 * Time is an integer count of picoseconds (int64 range: about 106 days). Arithmetic on it
 * is checked: an event due past VEMU_TIME_MAX is held at VEMU_TIME_MAX, which no run
 * reaches (vemu_sim_run refuses an `until` that is not below it), instead of wrapping: a
 * draw from a long tail is a request that does not finish within the run.
 * Events are totally ordered by (time, sequence number), so equal times pop first in,
 * first out and one seed fully determines a run.
 *
 * Randomness (SplitMix64): an open flow's interarrival times, and its closed clients' first
 * think times, come from a stream of the flow's, seeded from (seed, the flow's `tag`). Every
 * other draw is keyed by the request that makes it: the k-th request of a flow (counted from
 * 0 over the whole run) has a key of (seed, the flow's tag, k), a detached request the key of
 * (its parent's key, the forking stage's tag), and its class, its lane, each step's bytes, each
 * stage's work and delay and the think time after it are drawn from a stream started at
 * (key, the stage's `tag` or `bytes_tag`, what is drawn). So two runs with one seed give
 * the k-th request the same class, sizes and service draws at stages of the same tag
 * however differently their events interleave: common random numbers for two
 * architectures, or for one with a changed cost. Tags must be distinct across flows, and
 * across stages (bytes tags across the stages that draw bytes); the engine checks.
 *
 * Memory: everything is allocated in vemu_sim_create and nothing grows while running. A
 * request arriving when the pool is exhausted stops the run with VEMU_EFULL. (A preempted
 * service's pending end stays in the event queue until its time or until the queue,
 * which a model with preemption sizes with one slack slot per pool slot, fills up and is
 * swept of them.)
 *
 * The engine never prints, exits or aborts. Functions return VEMU_OK (0), a positive
 * progress code, or a negative VEMU_E* status; vemu_sim_error() gives the message.
 */
#ifndef VEMU_H
#define VEMU_H

#include <stddef.h>
#include <stdint.h>

#define VEMU_VERSION "0.1.0"

/* Status codes. Negative values are errors. */
#define VEMU_OK 0
#define VEMU_MORE 1      /* vemu_sim_run stopped at max_events before `until` */
#define VEMU_STALL 2     /* vemu_sim_run stopped: stall_limit events at one instant */
#define VEMU_EINVAL -1   /* a spec failed validation; nothing was allocated */
#define VEMU_ENOMEM -2   /* an allocation failed at creation */
#define VEMU_EFULL -3    /* the request pool is exhausted (an open flow outruns the system) */
#define VEMU_ERANGE -4   /* reserved: no longer returned (events past the clock's end wait forever) */
#define VEMU_ESTATE -5   /* the sim failed earlier and cannot go on */

/* Distributions. `mean` and `cv` (standard deviation / mean) describe them all. */
#define VEMU_DIST_FIXED 0
#define VEMU_DIST_EXP 1
#define VEMU_DIST_LOGNORMAL 2
#define VEMU_DIST_UNIFORM 3 /* on mean * (1 -/+ sqrt(3) cv); requires cv <= 1/sqrt(3) */

#define VEMU_ARRIVAL_OPEN 0
#define VEMU_ARRIVAL_CLOSED 1

#define VEMU_TIME_MAX INT64_MAX
#define VEMU_NO_PARENT UINT64_MAX /* vemu_trace_record.parent of a request a flow issued */

/* Limits the engine re-checks (the Python layer checks them first, with friendlier words). */
#define VEMU_MAX_RESOURCES 65536
#define VEMU_MAX_STAGES 1048576
#define VEMU_MAX_FLOWS 65536
#define VEMU_MAX_CATEGORIES 256
#define VEMU_MAX_UNITS 1048576
#define VEMU_MAX_BATCH 65536
#define VEMU_MAX_GAP 1000000000000000000LL /* ps: 1e6 s; also bounds idle-state exits and residencies */
#define VEMU_MAX_IDLE 64            /* idle states of one resource */
#define VEMU_MAX_IDLE_STATES 1048576 /* idle states of all resources */
#define VEMU_MAX_CLASS_HIST 4096 /* classes a model with class_histograms may have (~240 MiB of counters) */
#define VEMU_MAX_IDLE_UNITS 16777216 /* units of all resources with idle states */
#define VEMU_MAX_POOL 67108864   /* requests in flight */
#define VEMU_MAX_TRACE 16777216  /* trace records */
#define VEMU_MAX_MEAN 1e18       /* any mean, in its unit (ps or bytes) */
#define VEMU_MAX_BYTES 4294967295.0

/* Latency histogram: log-linear over the whole uint64 range of picoseconds, 128
 * sub-buckets per power of two. Values below 256 ps are exact; above, a bucket's width is
 * at most 1/128 of its lower bound, so its midpoint is within 0.4% of any value in it.
 * Bucket i >= 256 spans [sub << shift, (sub + 1) << shift) with shift = i/128 - 1 and
 * sub = i - 128 * shift. Nothing can fall outside it. */
#define VEMU_HIST_SUB_BITS 7
#define VEMU_HIST_BUCKETS 7424

typedef struct {
    int32_t kind; /* VEMU_DIST_* */
    double mean;  /* in the unit of the field holding it; finite, >= 0 */
    double cv;    /* finite, >= 0; ignored by FIXED and EXP */
} vemu_dist;

typedef struct {
    uint32_t units;   /* 1 .. VEMU_MAX_UNITS */
    int64_t capacity; /* waiting slots over all its qclasses; < 0 means unbounded */
    uint32_t idle_first, n_idle; /* its idle states: model idle_states[idle_first ..], 0 .. VEMU_MAX_IDLE
                                    of them, target residencies non-decreasing; 0: none (wakes at once) */
    uint32_t wake_category;      /* < n_categories when n_idle > 0: where wake-up time is charged */
    int64_t poll;                /* ps a unit with idle states polls before it sleeps (KVM halt-polling),
                                    0 .. VEMU_MAX_GAP; 0: it sleeps at once */
    uint32_t poll_category;      /* < n_categories when poll > 0: where polling time is charged */
    /* an accounting share: of the busy time the resource charges to category share_from, the
     * fraction share (0 <= share < 1; 0: none) is reported under share_to instead (a guest's
     * own work, part of which is the nested dimension of its page walks). Only the reported
     * statistics (vemu_sim_stats) move; the service times are the compiler's to set */
    uint32_t share_from, share_to;
    double share;
} vemu_resource_spec;

typedef struct {
    int64_t exit;      /* ps from a request's arrival at a unit in this state to its service start */
    int64_t residency; /* ps: the state is entered only when the predicted idle time is at least this */
} vemu_idle_state;

typedef struct {
    uint32_t resource; /* < n_resources */
    int32_t priority;  /* higher first */
    uint32_t batch;    /* 1 .. VEMU_MAX_BATCH */
    int64_t gap;       /* ps between the starts of its services, 0 .. VEMU_MAX_GAP; 0: none */
    uint32_t preempt;  /* 1: its arrivals preempt lower-priority services (see `preempt`
                          above; with a gap, when the gap allows a service to begin).
                          0: they wait for a unit to come free */
} vemu_qclass_spec;

typedef struct {
    int32_t qclass;     /* < n_qclasses, or -1 for a pure delay */
    uint32_t category;  /* < n_categories: where busy time is charged */
    vemu_dist work;     /* fixed part of the service time, ps */
    double per_byte_ps; /* service time per byte of the request's current bytes */
    vemu_dist delay;    /* pure delay after the service, ps; holds no resource */
    int32_t draw_bytes; /* 1: draw the request's bytes from `bytes` on entering */
    vemu_dist bytes;    /* bytes, when draw_bytes */
    uint32_t fork;      /* 0: none; c + 1: a request leaving this stage also starts a detached
                           request on class c (see `fork` above) */
    /* Work per page a request spans: each request of the service adds per_page_ps times
     * ceil((bytes - unpaged_bytes) / page_bytes) pages (none when bytes <= unpaged_bytes),
     * e.g. a grant map and unmap per 4 KiB page beyond a header that is copied instead.
     * per_page_ps 0: none (then page_bytes and unpaged_bytes are not looked at). */
    double per_page_ps;   /* finite, 0 .. 1e15, and its pages for a request of VEMU_MAX_BYTES
                             take at most 1e9 ps per byte of it */
    double page_bytes;    /* 1 .. 1e15 when per_page_ps > 0 */
    double unpaged_bytes; /* 0 .. 1e15 when per_page_ps > 0 */
    /* Keys of its draws (see Randomness above): any values, distinct over all stages. Give
     * the same logical stage (a device's service, the tenant's work of a step) the same tag
     * in two models, and its draws are common to both. */
    uint64_t tag;       /* its work, delay and fork */
    uint64_t bytes_tag; /* its bytes, when draw_bytes; distinct over the stages that draw them */
    /* Lanes (0 or 1: none): a request is served on qclass + (its lane mod lanes), so the
     * stage has `lanes` queues, each with its own batches and throttle (a multi-queue NIC's
     * interrupt vectors, one per vCPU). qclass .. qclass + lanes - 1 must agree in every
     * field. A request's lane is drawn from its key (see Randomness); a detached request
     * takes its parent's. At most VEMU_MAX_UNITS. */
    uint32_t lanes;
} vemu_stage_spec;

typedef struct {
    uint32_t first_stage; /* stages first_stage .. first_stage + n_stages - 1 */
    uint32_t n_stages;    /* >= 1 */
    double weight;        /* > 0, relative to the flow's other classes */
} vemu_class_spec;

typedef struct {
    int32_t arrival;        /* VEMU_ARRIVAL_OPEN or VEMU_ARRIVAL_CLOSED */
    vemu_dist interarrival; /* open: time between arrivals, ps, mean > 0 */
    uint32_t clients;       /* closed: requests outstanding, >= 1 */
    vemu_dist think;        /* closed: time from a reply to the next request, ps */
    uint32_t first_class;
    uint32_t n_classes; /* >= 1 */
    uint64_t tag;       /* the key of its draws (see Randomness): any value, distinct over the flows */
} vemu_flow_spec;

typedef struct {
    uint32_t n_resources, n_qclasses, n_stages, n_classes, n_flows, n_categories;
    const vemu_resource_spec *resources;
    const vemu_qclass_spec *qclasses;
    const vemu_stage_spec *stages;
    const vemu_class_spec *classes;
    const vemu_flow_spec *flows;
    uint32_t pool_size;      /* requests in flight at most; >= total closed clients */
    uint32_t trace_requests; /* trace every stage of the first N requests created and of the
                                detached requests they fork */
    uint32_t trace_capacity; /* trace records kept at most (further ones are counted) */
    uint32_t n_idle_states;  /* 0 .. VEMU_MAX_IDLE_STATES */
    const vemu_idle_state *idle_states;
    uint32_t class_histograms; /* 1: keep a latency histogram per class as well as per flow
                                  (n_classes x VEMU_HIST_BUCKETS counters); 0: per flow only */
} vemu_model;

/* One stage of one traced request. Times in ps. */
typedef struct {
    uint64_t request; /* creation sequence number, from 0 */
    uint32_t flow;
    uint32_t stage;
    int32_t dropped; /* 1: dropped at this stage's full queue (start = end = leave = enter) */
    uint32_t batch;  /* requests served together */
    uint64_t enter;  /* arrived at the stage */
    uint64_t start;  /* service began */
    uint64_t end;    /* service ended */
    uint64_t leave;  /* left the stage (after its delay) */
    uint64_t wake;   /* of the wait start - enter, ps spent waking the unit from an idle state */
    uint64_t parent; /* the request whose fork started this one, VEMU_NO_PARENT if none */
    uint64_t preempted; /* of end - start, ps its service spent suspended by preemption */
} vemu_trace_record;

/* Caller-owned arrays the statistics are copied into; any pointer may be NULL.
 * Statistics cover the window since creation or the last vemu_sim_reset_stats. */
typedef struct {
    /* [n_flows] */
    uint64_t *flow_created;
    uint64_t *flow_completed;
    uint64_t *flow_dropped;
    uint64_t *flow_in_flight;   /* now */
    double *flow_latency_sum;   /* ps, over completed requests */
    uint64_t *flow_latency_max; /* ps */
    double *flow_in_flight_area; /* integral of requests in flight over time, ps */
    uint64_t *flow_hist;        /* [n_flows * VEMU_HIST_BUCKETS] latency histogram */
    /* [n_classes] */
    uint64_t *class_completed;
    /* [n_resources * n_categories]: integral of busy units charged to each category, ps */
    double *resource_busy_area;
    /* [n_resources] */
    double *resource_queue_area; /* integral of waiting requests, ps */
    uint64_t *resource_served;   /* services begun (a batch counts once) */
    uint64_t *resource_dropped;
    uint64_t *resource_max_queue;
    /* [n_stages] */
    uint64_t *stage_completed;
    double *stage_wait_sum;    /* ps from entering to service start, and suspended after it */
    double *stage_service_sum; /* ps in service (from its start to its end, less suspensions) */
    uint64_t *stage_served;    /* services begun (a batch counts once, at its first member's stage) */
    /* [n_resources] */
    uint64_t *resource_wakeups; /* services that began by waking an idle unit */
    uint64_t *resource_preemptions; /* services suspended by a higher-priority arrival */
    /* [n_stages] */
    double *stage_preempted_sum; /* ps of stage_wait_sum spent suspended by preemption */
    /* [n_classes]: the latency of the flows' own requests by the class they drew (a class
     * forked to has none); class_completed counts them */
    double *class_latency_sum;   /* ps */
    uint64_t *class_latency_max; /* ps */
    uint64_t *class_hist;        /* [n_classes * VEMU_HIST_BUCKETS]; all zero without class_histograms */
    /* [n_idle_states] (the model's flat array: a resource's are idle_first ..): the wake-ups
     * from each state, which sum over a resource's states to its resource_wakeups */
    uint64_t *idle_state_wakeups;
} vemu_stats;

typedef struct vemu_sim vemu_sim;

/* Validates `m` and builds a sim seeded with `seed`. On success returns VEMU_OK and
 * stores the sim in *out (free it with vemu_sim_destroy). On failure returns VEMU_EINVAL
 * or VEMU_ENOMEM, leaves *out NULL and writes a message into err (when err_len > 0). The
 * model's arrays are copied: the caller may free them once this returns. */
int vemu_sim_create(const vemu_model *m, uint64_t seed, vemu_sim **out, char *err, size_t err_len);

/* Frees everything the sim owns. NULL-safe. */
void vemu_sim_destroy(vemu_sim *s);

/* Processes events up to and including time `until` (ps), or `max_events` of them,
 * whichever comes first. Returns VEMU_OK when the clock has reached `until` (the clock
 * is then exactly `until`), VEMU_MORE when max_events stopped it first, VEMU_STALL when
 * the stall limit did (vemu_sim_set_stall_limit), or a negative
 * status; after an error every further run returns VEMU_ESTATE, except VEMU_EINVAL for
 * an `until` before the clock, which leaves the sim as it was. */
int vemu_sim_run(vemu_sim *s, int64_t until, uint64_t max_events);

/* Makes vemu_sim_run stop with VEMU_STALL, before the next event, once `n` events have
 * happened at one instant without the clock moving (0, the default: never): requests
 * that loop in zero time. Counted across calls, so where a run stops does not depend on
 * how its events were split by max_events. The sim stays intact (a larger limit goes on). */
int vemu_sim_set_stall_limit(vemu_sim *s, uint64_t n);

/* Starts a new measurement window at the current time: counters, histograms and time
 * integrals restart from zero; requests in flight and queues are kept. */
int vemu_sim_reset_stats(vemu_sim *s);

/* Copies the statistics of the current window (up to the current time) into `out`. */
int vemu_sim_stats(const vemu_sim *s, vemu_stats *out);

int64_t vemu_sim_now(const vemu_sim *s);
int64_t vemu_sim_window_start(const vemu_sim *s);
uint64_t vemu_sim_events(const vemu_sim *s); /* events processed since creation (not the stale
                                                 ends of preempted services: the same count
                                                 whatever the pool, whose size decides
                                                 whether a full queue is swept of them) */
uint32_t vemu_sim_in_flight(const vemu_sim *s);

/* Copies up to `max` trace records into `out` and returns how many were kept in all;
 * *lost (if not NULL) receives how many were not kept for want of capacity. */
uint32_t vemu_sim_trace(const vemu_sim *s, vemu_trace_record *out, uint32_t max, uint64_t *lost);

/* Fills out[0..n) with draws from `d` on a fresh stream seeded from `seed`, exactly as the
 * engine draws service times; for testing the samplers. VEMU_EINVAL for a bad dist. */
int vemu_dist_sample(const vemu_dist *d, uint64_t seed, double *out, uint64_t n);

/* The message of the last error of `s` ("" when none). Never NULL. */
const char *vemu_sim_error(const vemu_sim *s);

/* A static description of a status code. Never NULL. */
const char *vemu_strerror(int status);

/* The histogram bucket of a value, and the lower bound and width of a bucket; exposed so
 * the Python side and the tests use exactly the engine's arithmetic. */
uint32_t vemu_hist_index(uint64_t v);
uint64_t vemu_hist_lower(uint32_t index);
uint64_t vemu_hist_width(uint32_t index);

#endif
