/* vemu engine. The contract is in vemu.h; this file keeps the reasons. */
#include "vemu.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>

#define NIL UINT32_MAX
enum { EV_ARRIVAL = 0, EV_ISSUE = 1, EV_SERVICE = 2, EV_DELAY = 3, EV_GATE = 4, EV_WAKE = 5, EV_POLL_END = 6 };
/* per-unit state bits of a resource with idle states */
enum { U_IDLE = 1, U_POLLING = 2, U_PENDING = 4 };

/* ---------------------------------------------------------------- random numbers */

/* SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014; the generator of Java's SplittableRandom): a 64-bit counter stepped by the
 * golden gamma, each value put through a strong bijective mix. It passes BigCrush, its
 * state is one word, and a stream may start anywhere: a stream started at a well-mixed
 * 64-bit key is as good as any, which is what request-keyed draws (below) need. */
typedef struct {
    uint64_t x;
} rng;

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rng_next(rng *r) { return mix64(r->x += GOLDEN_GAMMA); }

/* A flow's arrival stream, from (seed, flow): nearby seeds and flows give unrelated streams. */
static rng rng_flow(uint64_t seed, uint64_t flow) {
    rng r = {mix64(mix64(seed + GOLDEN_GAMMA) ^ (flow * 0xd1342543de82ef95ULL) ^ 0x5eed)};
    return r;
}

/* Request-keyed draws (common random numbers that survive a change of timing). Every
 * request of a flow has a key, a function of (seed, flow, the request's index among its
 * flow's requests); every stage has a tag (the model's: the same logical stage has the
 * same tag in two architectures). A draw a request makes at a stage (its class, a step's
 * bytes, a service's work, a delay, the think time after it, a detached request's key)
 * comes from a stream started at key ^ tag ^ a salt for what is drawn, so it is the same
 * in two runs with one seed however the two orders their events. */
#define T_CLASS 0x2545f4914f6cdd1dULL
#define T_BYTES 0x7c3f1a9b6e5d2c47ULL
#define T_DELAY 0x4f1bbcdcbfa53e0bULL
#define T_THINK 0x1b873593cc9e2d51ULL
#define T_FORK 0x6a09e667f3bcc909ULL
#define T_LANE 0x3c6ef372fe94f82bULL
static inline rng rng_keyed(uint64_t key, uint64_t tag) {
    rng r = {key ^ tag};
    return r;
}

static inline double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; } /* [0,1) */

/* Exponential variates by the ziggurat method (Marsaglia and Tsang, J. Stat. Software 5(8),
 * 2000), 256 layers. The inverse transform -log1p(-u) took a third of a tandem run's time;
 * the ziggurat needs one multiply and one compare 98.9% of the time. Unlike the paper's
 * REXP, the layer index and the abscissa come from disjoint bits of one 64-bit draw (the
 * low 8 and the high 53), which removes the known correlation between them. The tables
 * are built once, deterministically, from libm. */
static uint64_t zig_k[256];
static double zig_w[256], zig_f[256];
static atomic_int zig_state; /* 0: not built, 1: being built, 2: ready */

static void zig_init(void) {
    const double m = 9007199254740992.0; /* 2^53 */
    double de = 7.697117470131487, te = de, ve = 3.949659822581572e-3;
    double q = ve / exp(-de);
    zig_k[0] = (uint64_t)((de / q) * m);
    zig_k[1] = 0;
    zig_w[0] = q / m;
    zig_w[255] = de / m;
    zig_f[0] = 1.0;
    zig_f[255] = exp(-de);
    for (int i = 254; i >= 1; i--) {
        de = -log(ve / de + exp(-de));
        zig_k[i + 1] = (uint64_t)((de / te) * m);
        te = de;
        zig_f[i] = exp(-de);
        zig_w[i] = de / m;
    }
}

/* Builds the tables once, whichever thread asks first (Python releases the GIL in C
 * calls, so two threads' first simulations can meet here); the others wait the few
 * microseconds it takes. The release store publishes the tables to every acquire load. */
static void zig_ensure(void) {
    if (atomic_load_explicit(&zig_state, memory_order_acquire) == 2) return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&zig_state, &expected, 1)) {
        zig_init();
        atomic_store_explicit(&zig_state, 2, memory_order_release);
    } else {
        while (atomic_load_explicit(&zig_state, memory_order_acquire) != 2) {
        }
    }
}

static inline double rng_exp1(rng *r) { /* mean 1 */
    for (;;) {
        uint64_t u = rng_next(r);
        unsigned i = (unsigned)(u & 0xff);
        uint64_t j = u >> 11;
        if (j < zig_k[i]) return (double)j * zig_w[i];
        if (i == 0) return 7.697117470131487 - log1p(-rng_unit(r)); /* the tail */
        double x = (double)j * zig_w[i];
        if (zig_f[i] + rng_unit(r) * (zig_f[i - 1] - zig_f[i]) < exp(-x)) return x;
    }
}

/* A distribution made ready to sample: a and b are kind-specific. */
typedef struct {
    int32_t kind;
    double mean, a, b;
} sampler;

static void sampler_init(sampler *sp, const vemu_dist *d) {
    sp->kind = d->kind;
    sp->mean = d->mean;
    sp->a = sp->b = 0;
    if (d->kind == VEMU_DIST_LOGNORMAL) {
        double s2 = log1p(d->cv * d->cv);
        sp->a = d->mean > 0 ? log(d->mean) - s2 / 2 : 0; /* mu */
        sp->b = sqrt(s2);                                 /* sigma */
    } else if (d->kind == VEMU_DIST_UNIFORM) {
        /* at the largest cv, mean * cv * sqrt(3) can round above the mean: never below 0 */
        double half = fmin(d->mean * d->cv * 1.7320508075688772, d->mean);
        sp->a = d->mean - half; /* low */
        sp->b = 2 * half;       /* width */
    }
}

static double sample_slow(const sampler *sp, rng *r) {
    if (sp->kind == VEMU_DIST_LOGNORMAL) {
        if (sp->mean <= 0) return 0;
        double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r); /* u1 in (0, 1] */
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        return exp(sp->a + sp->b * z);
    }
    return sp->a + sp->b * rng_unit(r); /* VEMU_DIST_UNIFORM */
}

/* The two common kinds inline, the others out of line. */
static inline double sample(const sampler *sp, rng *r) {
    if (sp->kind == VEMU_DIST_EXP) return sp->mean * rng_exp1(r);
    if (sp->kind == VEMU_DIST_FIXED) return sp->mean;
    return sample_slow(sp, r);
}

/* Rounds a non-negative duration to whole picoseconds, saturating far above any time the
 * clock can reach so the overflow check in schedule() catches it. */
static inline uint64_t to_ps(double x) {
    if (!(x > 0)) return 0;
    if (x >= 9.2e18) return (uint64_t)VEMU_TIME_MAX;
    return (uint64_t)(x + 0.5);
}

/* ---------------------------------------------------------------- histogram */

uint32_t vemu_hist_index(uint64_t v) {
    if (v < (2u << VEMU_HIST_SUB_BITS)) return (uint32_t)v;
    int h = 63 - __builtin_clzll(v);
    int shift = h - VEMU_HIST_SUB_BITS;
    return (uint32_t)((shift << VEMU_HIST_SUB_BITS) + (v >> shift));
}

uint64_t vemu_hist_lower(uint32_t i) {
    if (i < (2u << VEMU_HIST_SUB_BITS)) return i;
    if (i >= VEMU_HIST_BUCKETS) return UINT64_MAX;
    uint32_t shift = (i >> VEMU_HIST_SUB_BITS) - 1;
    uint64_t sub = i - (shift << VEMU_HIST_SUB_BITS);
    return sub << shift;
}

uint64_t vemu_hist_width(uint32_t i) {
    if (i < (2u << VEMU_HIST_SUB_BITS)) return 1;
    if (i >= VEMU_HIST_BUCKETS) return 0;
    return (uint64_t)1 << ((i >> VEMU_HIST_SUB_BITS) - 1);
}

/* ---------------------------------------------------------------- state */

typedef struct {
    uint64_t t, seq;
    uint32_t kind, ref;
} event;

typedef struct {
    uint64_t born, enter, start, svc_end;
    uint64_t svc_seq; /* the seq of its service's pending EV_SERVICE: a popped EV_SERVICE with
                         another is the stale end of a service since preempted */
    uint64_t id;      /* creation sequence */
    uint64_t key;     /* its draws' key (see rng_keyed) */
    uint64_t parent;  /* id of the request whose fork started it; VEMU_NO_PARENT: its flow's own */
    uint64_t enq_seq; /* order of queueing, for FIFO across qclasses */
    uint32_t next;    /* queue, batch and free-list link */
    uint32_t stage, stage_end;
    uint32_t bytes;
    uint32_t flow, batch, cls;
    uint32_t lane; /* picks its qclass at a stage with lanes (see stage_q) */
    uint32_t unit; /* the unit its service holds, on a resource with idle states */
    /* preemption (read only at stages on a preemptive resource): */
    uint64_t due;     /* when its service in progress ends */
    uint64_t held;    /* ps suspended since its service began (counts as wait) */
    uint64_t susp_at; /* a suspended service's head: when it was suspended */
    uint32_t snext;   /* a suspended service's head: the next in its resource's list */
    uint32_t aprev, anext; /* a service's head on a preemptive resource: its neighbours in its
                              qclass's list of services in progress */
} request;

/* A sort key: qclasses by priority at creation; a batch's members by the qclass they go on to
 * (or by the pass in which they go on, on_service). */
typedef struct {
    int64_t key;    /* the qclass's priority, the qclass a member goes on to, or its pass */
    uint32_t index; /* the qclass, or the member's place in its batch: ties keep their order */
    uint32_t ri;    /* the member */
} qorder;

typedef struct {
    uint32_t head, tail;
    uint64_t len;
    uint32_t resource;
    int32_t priority;
    uint32_t batch;
    int32_t gate_pending; /* an EV_GATE is scheduled for next_ok */
    uint64_t gap;         /* ps between service starts; 0: no throttle */
    uint64_t next_ok;     /* the earliest start of its next service */
    int32_t preempt;      /* its arrivals preempt lower-priority services */
    uint32_t ahead, atail; /* (preemptive resource) its services in progress, in the order they
                              began or resumed: the head has run longest */
    uint32_t nz_pos;       /* while len > 0 and not parked: its place in its resource's nz */
    uint32_t parked;       /* len > 0 behind a closed gap: in its resource's park, not its nz */
} qclass;

/* A throttled qclass whose gap since its last service start has not yet passed. */
static inline int qc_closed(const qclass *qc, uint64_t now) { return qc->gap && now < qc->next_ok; }

typedef struct {
    uint32_t units, free;
    int64_t capacity;
    uint64_t waiting;
    uint32_t susp; /* (preemption) its suspended services, highest priority first (first
                      suspended first among equals): NIL when none */
    uint32_t q_first, q_count; /* its qclasses, by index into sim->res_q, lowest priority first */
    uint32_t *park, n_park;    /* its throttled qclasses with requests waiting behind a gap that
                                  has not yet passed: a binary heap by (next_ok, index), so that
                                  a resource with many throttled lanes scans only the open ones */
    uint32_t *nz, n_nz;        /* its qclasses with requests waiting, in no order (a stage's lanes
                                  make many qclasses, few of them non-empty at once) */
    uint32_t n_idle;           /* idle states of its units (0: none); beside the hot fields */
    double queue_area;
    uint64_t queue_last;
    uint64_t served, dropped, max_queue;
    /* idle states (n_idle > 0 only): the idle units, last idle on top, and per unit when it
     * went idle and the length of its previous idle period (its governor's prediction) */
    uint32_t idle_first, wake_cat, n_stack;
    uint32_t *stack;
    uint64_t *since, *pred;
    uint64_t wakeups;
    /* halt-polling (poll > 0 only): per unit U_* bits; its units' EV_POLL_END events carry
     * poll_base + unit */
    uint64_t poll;
    uint32_t poll_cat, poll_base;
    uint8_t *ustate;
    /* preemption (a qclass of it preempts): how many services are in progress (each in its
     * qclass's list), and the highest priority among its preempting qclasses */
    uint32_t preemptive, n_act;
    int32_t top_preempt;
    uint64_t preemptions;
    /* reported accounting share (vemu_resource_spec.share): share > 0 only */
    double share;
    uint32_t share_from, share_to;
} resource;

typedef struct {
    int32_t qclass;    /* the first of its lanes' qclasses */
    uint32_t lanes;    /* >= 1 */
    uint32_t resource; /* of the qclass, or NIL */
    uint32_t category;
    /* flags precomputed at creation, so the hot paths need not look at the qclasses */
    uint8_t throttled;  /* its qclass has a gap */
    uint8_t slow;       /* throttled, or its resource's units sleep: services start in start_slow */
    uint8_t batching;   /* its qclass has batch > 1 */
    uint8_t chain_next; /* a lone request goes straight on to stage + 1 (same resource, no
                           delay here, and stage + 1 neither batches nor is throttled), if
                           stage + 1 is still in the request's class */
    uint8_t has_delay;
    uint8_t preempts;    /* its qclass preempts */
    uint8_t preemptive;  /* its resource has a qclass that preempts */
    int32_t draw_bytes;
    uint32_t fork; /* 0, or 1 + the class a leaving request starts a detached request on */
    uint8_t paged;      /* per_page_ps > 0: work per page (the fields at the end) */
    sampler work, delay, bytes;
    uint64_t tag, bytes_tag; /* its draws' tags, mixed (see rng_keyed) */
    double per_byte_ps;
    uint64_t completed, served;
    double wait_sum, service_sum, held_sum;
    double per_page_ps, page_bytes, unpaged_bytes; /* read only when `paged` */
} stage;

typedef struct {
    int32_t arrival;
    sampler interarrival, think;
    uint32_t clients;
    uint32_t first_class, n_classes;
    double weight_total;
    rng arrivals;              /* interarrival times; the first think times of its clients */
    uint64_t key_base, issued; /* its requests' keys: mix64(key_base + k GOLDEN_GAMMA) for the
                                  k-th (from 0, never reset) */
    uint64_t created, completed, dropped, in_flight, lat_max;
    double lat_sum, in_flight_area;
    uint64_t in_flight_last;
    uint64_t *hist;
} flow;

struct vemu_sim {
    uint64_t now, window_start, seq, events, next_id, enq_seq;
    int failed;
    char err[256];

    uint32_t n_resources, n_qclasses, n_stages, n_classes, n_flows, n_categories;
    resource *res;
    qclass *qc;
    uint32_t *res_q; /* qclass indices grouped by resource */
    uint32_t *nz;    /* the resources' nz lists, grouped as res_q */
    uint32_t *park;  /* the resources' park heaps, grouped as res_q */
    qorder *split;   /* scratch, one per member of a batch: its split over several lanes, its go-on order */
    stage *st;
    vemu_class_spec *cls;
    uint64_t *class_completed;
    double *class_lat_sum;    /* [n_classes], ps */
    uint64_t *class_lat_max;  /* [n_classes], ps */
    uint64_t *class_hist;     /* [n_classes * VEMU_HIST_BUCKETS], or NULL without class_histograms */
    flow *fl;

    /* busy units per (resource, category), their time integral and last change */
    uint32_t *busy;
    double *busy_area;
    uint64_t *busy_last;

    event *heap;
    uint32_t heap_len, heap_cap;
    uint64_t stale;  /* ends of preempted services still in the heap */
    uint64_t same_since; /* `events` when the clock last moved: events - same_since happened at this instant */
    uint64_t stall_at; /* vemu_sim_run stops with VEMU_STALL at this many (UINT64_MAX: never) */
    uint64_t sweeps; /* times the heap was swept of them (for the tests) */

    request *req;
    uint32_t pool_size, free_head, fresh, in_flight;

    vemu_trace_record *trace;
    uint32_t trace_requests, trace_cap, trace_len;
    uint64_t trace_lost;

    uint64_t *hist_block;
    uint64_t *trace_wake; /* [pool_size] when tracing: a traced request's wake-up at its current stage */

    int64_t *idle_exit, *idle_res; /* [n_idle_states] */
    uint64_t *idle_wakeups;        /* [n_idle_states]: wake-ups from each state, this window */
    uint32_t n_idle_states;
    uint32_t *poll_owner;          /* [polling units]: the resource of each, for EV_POLL_END */
};

static void set_err(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static int fail(vemu_sim *s, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    s->failed = status;
    return status;
}

/* ---------------------------------------------------------------- event heap
 * A 4-ary min-heap of small events ordered by (t, seq): shallower than a binary heap and
 * its four children share a cache line or two. Its capacity is fixed at creation: every
 * pending event belongs to a request in the pool, an open flow's next arrival or a
 * closed flow's pending issue or a throttled qclass's gate, so pool_size + flows + clients +
 * qclasses always suffices. */

static inline int ev_less(const event *a, const event *b) {
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int heap_sweep(vemu_sim *s);

/* The time `delay` ps from now, or VEMU_TIME_MAX (never: a run ends before it) for one
 * past the clock's end: a draw from a long tail is a request that will not finish within
 * any run, not a failure of the run. */
static inline uint64_t time_after(const vemu_sim *s, uint64_t delay) {
    return delay > (uint64_t)VEMU_TIME_MAX - s->now ? (uint64_t)VEMU_TIME_MAX : s->now + delay;
}

static inline int schedule(vemu_sim *s, uint64_t delay, uint32_t kind, uint32_t ref) {
    if (s->heap_len >= s->heap_cap && (!s->stale || heap_sweep(s) < 0 || s->heap_len >= s->heap_cap))
        return fail(s, VEMU_EFULL, "event queue full (internal sizing error)");
    event e = {time_after(s, delay), s->seq++, kind, ref};
    event *h = s->heap;
    uint32_t i = s->heap_len++;
    while (i > 0) {
        uint32_t p = (i - 1) >> 2;
        if (!ev_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
    return VEMU_OK;
}

/* (t, seq) as one 128-bit key: one compare, which the compiler turns into flag
 * arithmetic and conditional moves instead of the mispredicted branches of two. */
__extension__ typedef unsigned __int128 evkey;
static inline evkey ev_key(const event *e) { return ((evkey)e->t << 64) | e->seq; }

static void heap_pop(vemu_sim *s) {
    event *h = s->heap;
    uint32_t n = --s->heap_len;
    if (n == 0) return;
    event last = h[n];
    evkey lk = ev_key(&last);
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 4 * i + 1;
        if (c >= n) break;
        uint32_t best = c;
        evkey bk = ev_key(&h[c]);
        if (c + 4 <= n) { /* all four children: a branch-free tournament */
            evkey k1 = ev_key(&h[c + 1]), k2 = ev_key(&h[c + 2]), k3 = ev_key(&h[c + 3]);
            uint32_t b01 = k1 < bk ? c + 1 : c;
            evkey m01 = k1 < bk ? k1 : bk;
            uint32_t b23 = k3 < k2 ? c + 3 : c + 2;
            evkey m23 = k3 < k2 ? k3 : k2;
            best = m23 < m01 ? b23 : b01;
            bk = m23 < m01 ? m23 : m01;
        } else {
            for (uint32_t k = c + 1; k < n; k++) {
                evkey kk = ev_key(&h[k]);
                if (kk < bk) {
                    bk = kk;
                    best = k;
                }
            }
        }
        if (!(bk < lk)) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = last;
}

/* The stale end of a preempted service: an EV_SERVICE its request no longer waits for. */
static inline int ev_stale(const vemu_sim *s, const event *e) {
    return e->kind == EV_SERVICE && s->req[e->ref].svc_seq != e->seq;
}

static int ev_cmp(const void *a, const void *b) {
    return ev_less(a, b) ? -1 : ev_less(b, a) ? 1 : 0;
}

/* The heap is full: drop the stale ends of preempted services from it. A model with
 * preemption has pool_size slots more than it can have live events, so a full heap holds
 * at least that many stale ones and sweeps are rare. A sorted array is a heap, and events
 * pop in (t, seq) order whatever its shape: runs stay the same bits. */
static __attribute__((noinline, cold)) int heap_sweep(vemu_sim *s) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->heap_len; i++)
        if (!ev_stale(s, &s->heap[i])) s->heap[n++] = s->heap[i];
    s->stale -= s->heap_len - n;
    s->heap_len = n;
    s->sweeps++;
    qsort(s->heap, n, sizeof *s->heap, ev_cmp);
    return VEMU_OK;
}

/* ---------------------------------------------------------------- accounting */

static inline void busy_change(vemu_sim *s, uint32_t r, uint32_t cat, int delta) {
    size_t k = (size_t)r * s->n_categories + cat;
    s->busy_area[k] += (double)s->busy[k] * (double)(s->now - s->busy_last[k]);
    s->busy_last[k] = s->now;
    s->busy[k] += delta;
}

static inline void queue_change(vemu_sim *s, resource *rs, int delta) {
    rs->queue_area += (double)rs->waiting * (double)(s->now - rs->queue_last);
    rs->queue_last = s->now;
    rs->waiting += delta;
    if (rs->waiting > rs->max_queue) rs->max_queue = rs->waiting;
}

static inline void in_flight_change(vemu_sim *s, flow *f, int delta) {
    f->in_flight_area += (double)f->in_flight * (double)(s->now - f->in_flight_last);
    f->in_flight_last = s->now;
    f->in_flight += delta;
}

/* The time a request's service at stage g has spent suspended so far (none but on a
 * preemptive resource, where stage_arrive resets it). */
static inline uint64_t held_of(const stage *g, const request *q) { return g->preemptive ? q->held : 0; }

static void trace_record(vemu_sim *s, const request *q, int dropped) {
    if (s->trace_len >= s->trace_cap) {
        s->trace_lost++;
        return;
    }
    vemu_trace_record *t = &s->trace[s->trace_len++];
    t->request = q->id;
    t->flow = q->flow;
    t->stage = q->stage;
    t->dropped = dropped;
    t->batch = dropped ? 0 : q->batch;
    t->enter = q->enter;
    t->start = dropped ? q->enter : q->start;
    t->end = dropped ? q->enter : q->svc_end;
    t->leave = s->now;
    size_t slot = (size_t)(q - s->req);
    t->wake = s->trace_wake[slot];
    t->parent = q->parent;
    t->preempted = dropped ? 0 : held_of(&s->st[q->stage], q);
    s->trace_wake[slot] = 0;
}

/* Traced: the first trace_requests requests created, and the detached requests they fork. */
static inline int traced(const vemu_sim *s, const request *q) {
    return q->id < s->trace_requests || (q->parent != VEMU_NO_PARENT && q->parent < s->trace_requests);
}

static inline void trace_stage(vemu_sim *s, const request *q, int dropped) {
    if (traced(s, q)) trace_record(s, q, dropped);
}

/* ---------------------------------------------------------------- request life */

/* The qclass request q is served on at stage gi: its lane's (all of a stage's lanes agree
 * in resource, priority, batch, gap and preemption, so only queues and throttles differ). */
static inline uint32_t stage_q(const vemu_sim *s, const request *q, uint32_t gi) {
    const stage *g = &s->st[gi];
    return (uint32_t)g->qclass + (g->lanes > 1 ? q->lane % g->lanes : 0);
}

static int qorder_cmp(const void *a, const void *b) {
    const qorder *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int stage_enter(vemu_sim *s, uint32_t ri);
static int start_service(vemu_sim *s, uint32_t qi, uint32_t head);
static int gate_arm(vemu_sim *s, uint32_t qi);
static int gate_flush(vemu_sim *s, uint32_t qi);
static int make_room(vemu_sim *s, resource *rs, int32_t prio);
static int preempt_waiting(vemu_sim *s, resource *rs);

/* Takes a free request slot into *out, or fails the sim with VEMU_EFULL. */
static int slot_take(vemu_sim *s, uint32_t fi, int detached, uint32_t *out) {
    if (s->free_head == NIL && s->fresh < s->pool_size) { /* first use of a slot */
        s->req[s->fresh].next = NIL;
        s->free_head = s->fresh++;
    }
    if (s->free_head == NIL)
        return fail(s, VEMU_EFULL,
                    "request pool of %u exhausted at t=%.6f s: flow %u %s (raise the pool or lower the load)",
                    s->pool_size, (double)s->now * 1e-12, fi,
                    detached ? "and the detached requests its forks start need more"
                             : "offers more than the system serves");
    *out = s->free_head;
    s->free_head = s->req[*out].next;
    s->in_flight++;
    return VEMU_OK;
}

static int issue(vemu_sim *s, uint32_t fi) {
    flow *f = &s->fl[fi];
    uint32_t ri;
    int rc = slot_take(s, fi, 0, &ri);
    if (rc < 0) return rc;
    request *q = &s->req[ri];
    q->key = mix64(f->key_base + f->issued++ * GOLDEN_GAMMA);
    q->lane = (uint32_t)(mix64(q->key ^ T_LANE) >> 32);
    uint32_t c = f->first_class;
    if (f->n_classes > 1) { /* pick a class by weight */
        rng r = rng_keyed(q->key, T_CLASS);
        double u = rng_unit(&r) * f->weight_total, acc = 0;
        uint32_t last = f->first_class + f->n_classes - 1;
        for (c = f->first_class; c < last; c++) {
            acc += s->cls[c].weight;
            if (u < acc) break;
        }
    }
    q->born = s->now;
    q->id = s->next_id++;
    q->parent = VEMU_NO_PARENT;
    q->next = NIL;
    q->flow = fi;
    q->stage = s->cls[c].first_stage;
    q->stage_end = q->stage + s->cls[c].n_stages;
    q->bytes = 0;
    q->batch = 1;
    q->cls = c;
    f->created++;
    in_flight_change(s, f, +1);
    return stage_enter(s, ri);
}

/* Request pi leaves a forking stage: a detached request of its flow, with its bytes,
 * starts class c now. */
static __attribute__((noinline)) int fork_off(vemu_sim *s, uint32_t pi, uint32_t c) {
    uint32_t ri;
    int rc = slot_take(s, s->req[pi].flow, 1, &ri);
    if (rc < 0) return rc;
    const request *p = &s->req[pi];
    request *q = &s->req[ri];
    q->born = s->now;
    q->id = s->next_id++;
    q->parent = p->id;
    q->key = mix64(p->key ^ s->st[p->stage].tag ^ T_FORK);
    q->lane = p->lane; /* the queue pair of the request that set it off */
    q->next = NIL;
    q->flow = p->flow;
    q->stage = s->cls[c].first_stage;
    q->stage_end = q->stage + s->cls[c].n_stages;
    q->bytes = p->bytes;
    q->batch = 1;
    q->cls = c;
    return stage_enter(s, ri);
}

/* Returns the request to the pool; a closed flow's client thinks, then asks again. After
 * a drop the next request always goes through the event queue: issuing it inline could
 * recurse without bound into a queue that stays full. */
static int release(vemu_sim *s, uint32_t ri, int dropped) {
    request *q = &s->req[ri];
    flow *f = &s->fl[q->flow];
    uint32_t fi = q->flow;
    int detached = q->parent != VEMU_NO_PARENT;
    q->next = s->free_head;
    s->free_head = ri;
    s->in_flight--;
    if (detached) return VEMU_OK; /* no request of its flow: nothing to count, no client */
    in_flight_change(s, f, -1);
    if (f->arrival == VEMU_ARRIVAL_CLOSED) {
        rng r = rng_keyed(q->key, T_THINK);
        uint64_t th = to_ps(sample(&f->think, &r));
        if (th == 0 && !dropped) return issue(s, fi);
        return schedule(s, th, EV_ISSUE, fi);
    }
    return VEMU_OK;
}

static int complete(vemu_sim *s, uint32_t ri) {
    request *q = &s->req[ri];
    flow *f = &s->fl[q->flow];
    s->class_completed[q->cls]++;
    if (q->parent != VEMU_NO_PARENT) return release(s, ri, 0);
    uint64_t lat = s->now - q->born;
    uint32_t b = vemu_hist_index(lat);
    f->completed++;
    f->lat_sum += (double)lat;
    if (lat > f->lat_max) f->lat_max = lat;
    f->hist[b]++;
    s->class_lat_sum[q->cls] += (double)lat;
    if (lat > s->class_lat_max[q->cls]) s->class_lat_max[q->cls] = lat;
    if (s->class_hist) s->class_hist[(size_t)q->cls * VEMU_HIST_BUCKETS + b]++;
    return release(s, ri, 0);
}

static int drop(vemu_sim *s, uint32_t ri, resource *rs) {
    request *q = &s->req[ri];
    if (q->parent == VEMU_NO_PARENT) s->fl[q->flow].dropped++;
    rs->dropped++;
    trace_stage(s, q, 1);
    return release(s, ri, 1);
}

/* The request has finished its current stage (service and delay). */
/* The request leaves its stage (its service and any delay after it done): the stage counts
 * it, and its wait and service, here, so that the sums and the count are of the same
 * requests whatever a window's edges cut through. */
static inline void stage_account(stage *g, const request *q) {
    uint64_t held = held_of(g, q);
    g->completed++;
    g->wait_sum += (double)(q->start - q->enter + held);
    g->service_sum += (double)(q->svc_end - q->start - held);
    g->held_sum += (double)held;
}

static int stage_leave(vemu_sim *s, uint32_t ri) {
    request *q = &s->req[ri];
    trace_stage(s, q, 0);
    stage *g = &s->st[q->stage];
    stage_account(g, q);
    if (__builtin_expect(g->fork != 0, 0)) {
        int rc = fork_off(s, ri, g->fork - 1);
        if (rc < 0) return rc;
    }
    if (++q->stage == q->stage_end) return complete(s, ri);
    return stage_enter(s, ri);
}

/* The request arrives at its current stage: the clock starts, and a stage that begins a
 * path step draws the step's bytes. */
static inline void stage_arrive(vemu_sim *s, request *q, const stage *g) {
    q->enter = s->now;
    q->batch = 1;
    if (g->preemptive) q->held = 0;
    if (g->draw_bytes) {
        rng r = rng_keyed(q->key, g->bytes_tag);
        double b = sample(&g->bytes, &r);
        q->bytes = b >= VEMU_MAX_BYTES ? UINT32_MAX : (uint32_t)to_ps(b);
    }
}

/* The lists of a resource's qclasses with requests waiting: nz holds those that may be
 * served (no throttle, or its gap passed), park those whose gap has not yet passed. Every
 * reader of nz first moves the parked qclasses whose gap has passed back to it
 * (unpark_due), so what nz holds is exactly what qc_closed says is open. */
static inline void nz_add(resource *rs, qclass *qc, uint32_t qi) {
    qc->nz_pos = rs->n_nz;
    rs->nz[rs->n_nz++] = qi;
}

static inline void nz_remove(vemu_sim *s, resource *rs, const qclass *qc) {
    uint32_t last = rs->nz[--rs->n_nz]; /* the last takes its place */
    rs->nz[qc->nz_pos] = last;
    s->qc[last].nz_pos = qc->nz_pos;
}

static inline int park_before(const vemu_sim *s, uint32_t a, uint32_t b) {
    uint64_t x = s->qc[a].next_ok, y = s->qc[b].next_ok;
    return x < y || (x == y && a < b);
}

static __attribute__((noinline)) void park_push(vemu_sim *s, resource *rs, uint32_t qi) {
    uint32_t k = rs->n_park++;
    while (k > 0) {
        uint32_t p = (k - 1) / 2;
        if (!park_before(s, qi, rs->park[p])) break;
        rs->park[k] = rs->park[p];
        k = p;
    }
    rs->park[k] = qi;
    s->qc[qi].parked = 1;
}

static __attribute__((noinline)) void unpark_due_slow(vemu_sim *s, resource *rs) {
    while (rs->n_park && s->qc[rs->park[0]].next_ok <= s->now) {
        uint32_t top = rs->park[0], last = rs->park[--rs->n_park], n = rs->n_park, k = 0;
        for (;;) {
            uint32_t c = 2 * k + 1;
            if (c >= n) break;
            if (c + 1 < n && park_before(s, rs->park[c + 1], rs->park[c])) c++;
            if (!park_before(s, rs->park[c], last)) break;
            rs->park[k] = rs->park[c];
            k = c;
        }
        if (n) rs->park[k] = last;
        s->qc[top].parked = 0;
        nz_add(rs, &s->qc[top], top);
    }
}

/* the parked qclasses whose gap has passed (at this instant too) go back on nz */
static inline void unpark_due(vemu_sim *s, resource *rs) {
    if (__builtin_expect(rs->n_park != 0, 0) && s->qc[rs->park[0]].next_ok <= s->now) unpark_due_slow(s, rs);
}

static inline void enqueue(vemu_sim *s, qclass *qc, resource *rs, uint32_t ri) {
    request *q = &s->req[ri];
    q->next = NIL;
    q->enq_seq = s->enq_seq++;
    if (qc->tail == NIL)
        qc->head = ri;
    else
        s->req[qc->tail].next = ri;
    qc->tail = ri;
    if (qc->len++ == 0) {
        if (qc_closed(qc, s->now))
            park_push(s, rs, (uint32_t)(qc - s->qc));
        else
            nz_add(rs, qc, (uint32_t)(qc - s->qc));
    }
    queue_change(s, rs, +1);
}

static int stage_enter(vemu_sim *s, uint32_t ri) {
    request *q = &s->req[ri];
    stage *g = &s->st[q->stage];
    stage_arrive(s, q, g);
    if (g->qclass < 0) { /* a pure delay */
        q->start = q->svc_end = s->now;
        rng r = rng_keyed(q->key, g->tag ^ T_DELAY);
        return schedule(s, to_ps(sample(&g->delay, &r)), EV_DELAY, ri);
    }
    resource *rs = &s->res[g->resource];
    uint32_t qi = stage_q(s, q, q->stage);
    qclass *qc = &s->qc[qi];
    if (__builtin_expect(g->preempts && rs->free == 0, 0) && !qc_closed(qc, s->now)) {
        /* none free: take one from a lower priority, then go on as if it had been free
         * (requests of its own waiting behind a gap that passes at this instant go first) */
        int rc = make_room(s, rs, qc->priority);
        if (rc < 0) return rc;
    }
    if (__builtin_expect(g->throttled, 0) && qc->len > 0 && rs->free > 0 && !qc_closed(qc, s->now)) {
        /* the gap passes at this very instant and its EV_GATE has yet to pop: the newcomer
         * joins those waiting, behind them (room permitting), and the gate's service
         * begins now, with the longest waiting first */
        int room = rs->capacity < 0 || rs->waiting < (uint64_t)rs->capacity;
        if (room) enqueue(s, qc, rs, ri);
        int rc = gate_flush(s, qi);
        if (rc < 0 || room) return rc < 0 ? rc : gate_arm(s, qi);
        /* no room before: the service just begun made some; go on as an arrival */
    }
    /* with a unit free, every open qclass is empty: only a closed throttle makes it wait */
    if (rs->free > 0 && (!g->throttled || !qc_closed(qc, s->now))) return start_service(s, qi, ri);
    if (rs->capacity >= 0 && rs->waiting >= (uint64_t)rs->capacity) return drop(s, ri, rs);
    enqueue(s, qc, rs, ri);
    return g->throttled ? gate_arm(s, qi) : VEMU_OK;
}

static inline uint32_t qclass_pop(vemu_sim *s, qclass *qc) {
    uint32_t ri = qc->head;
    qc->head = s->req[ri].next;
    if (qc->head == NIL) qc->tail = NIL;
    if (--qc->len == 0) { /* off its resource's non-empty list (it is open: served now) */
        resource *rs = &s->res[qc->resource];
        if (__builtin_expect(qc->parked, 0)) unpark_due(s, rs);
        nz_remove(s, rs, qc);
    }
    return ri;
}

/* A throttled qclass with requests waiting behind its closed gap gets one EV_GATE at the
 * moment the gap passes. */
static __attribute__((cold)) int gate_arm(vemu_sim *s, uint32_t qi) {
    qclass *qc = &s->qc[qi];
    if (!qc->gate_pending && qc->len > 0 && qc_closed(qc, s->now)) {
        qc->gate_pending = 1;
        return schedule(s, qc->next_ok - s->now, EV_GATE, qi);
    }
    return VEMU_OK;
}

/* A unit with idle states is taken for the service of `head`: the unit idle last. Returns
 * the exit latency of the state it slept in, 0 when it was handed straight on (idle for no
 * time). The state is the one its governor chose on going idle: the deepest whose target
 * residency the unit's previous idle period reaches, the shallowest at least. */
static __attribute__((noinline)) uint64_t unit_take(vemu_sim *s, resource *rs, request *h) {
    uint32_t u = rs->stack[--rs->n_stack];
    h->unit = u;
    /* a unit never used yet has slept since before time 0 (it wakes even at t = 0) */
    int fresh = rs->since[u] == UINT64_MAX;
    uint64_t d = fresh ? s->now : s->now - rs->since[u];
    if (rs->poll) {
        uint8_t st = rs->ustate[u];
        rs->ustate[u] = (uint8_t)(st & U_PENDING); /* busy now; a pending poll-end finds it so */
        if (st & U_POLLING) { /* caught while polling: no wake-up */
            busy_change(s, (uint32_t)(rs - s->res), rs->poll_cat, -1);
            if (d) rs->pred[u] = d;
            return 0;
        }
    }
    if (d == 0 && !fresh) return 0;
    const int64_t *res = s->idle_res + rs->idle_first;
    uint32_t k = 0;
    while (k + 1 < rs->n_idle && (uint64_t)res[k + 1] <= rs->pred[u]) k++;
    rs->pred[u] = d;
    rs->wakeups++;
    s->idle_wakeups[rs->idle_first + k]++;
    return (uint64_t)s->idle_exit[rs->idle_first + k];
}

/* The unit of the service of `head` goes idle (or on to the next service at once). */
static int poll_start(vemu_sim *s, resource *rs, uint32_t u);

static inline int unit_release(vemu_sim *s, resource *rs, const request *h) {
    rs->free++;
    if (__builtin_expect(rs->n_idle != 0, 0)) {
        rs->stack[rs->n_stack++] = h->unit;
        rs->since[h->unit] = s->now;
        if (rs->poll) return poll_start(s, rs, h->unit);
    }
    return VEMU_OK;
}

/* A unit goes idle and polls for rs->poll ps before it sleeps. At most one EV_POLL_END per
 * unit is pending: one that fires early (the unit was busy and idle again since) is
 * rescheduled for the end of the current poll. */
static __attribute__((noinline)) int poll_start(vemu_sim *s, resource *rs, uint32_t u) {
    uint8_t st = rs->ustate[u];
    rs->ustate[u] = (uint8_t)(st | U_IDLE | U_POLLING | U_PENDING);
    busy_change(s, (uint32_t)(rs - s->res), rs->poll_cat, +1);
    if (st & U_PENDING) return VEMU_OK;
    return schedule(s, rs->poll, EV_POLL_END, rs->poll_base + u);
}

/* EV_POLL_END: the unit's poll is over if it is still idle since the poll began; it sleeps.
 * (A unit idle again after a service has a later poll end: wait for that.) */
static __attribute__((noinline, cold)) int on_poll_end(vemu_sim *s, uint32_t gu) {
    resource *rs = &s->res[s->poll_owner[gu]];
    uint32_t u = gu - rs->poll_base;
    uint8_t st = rs->ustate[u];
    rs->ustate[u] = (uint8_t)(st & ~U_PENDING);
    if (!(st & U_POLLING)) return VEMU_OK; /* taken (busy) or already asleep */
    uint64_t end = rs->since[u] + rs->poll;
    if (s->now < end) { /* idle again since this event was scheduled: its poll ends later */
        rs->ustate[u] = (uint8_t)(st | U_PENDING);
        return schedule(s, end - s->now, EV_POLL_END, gu);
    }
    rs->ustate[u] = (uint8_t)(st & ~(U_POLLING | U_PENDING));
    busy_change(s, (uint32_t)(rs - s->res), rs->poll_cat, -1);
    return VEMU_OK;
}

/* ---------------------------------------------------------------- preemption */

static inline int32_t head_priority(const vemu_sim *s, uint32_t head) {
    return s->qc[s->st[s->req[head].stage].qclass].priority;
}

/* Schedules the end of the service proper of `head` at stage g, `len` ps from now. */
static inline int svc_schedule(vemu_sim *s, const stage *g, uint32_t head, uint64_t len) {
    int rc = schedule(s, len, EV_SERVICE, head);
    if (rc < 0) return rc;
    request *h = &s->req[head];
    h->svc_seq = s->seq - 1;
    if (__builtin_expect(g->preemptive, 0)) { /* a service in progress: one that may be preempted */
        qclass *qc = &s->qc[stage_q(s, h, h->stage)];
        h->due = time_after(s, len);
        h->anext = NIL;
        h->aprev = qc->atail;
        if (qc->atail == NIL)
            qc->ahead = head;
        else
            s->req[qc->atail].anext = head;
        qc->atail = head;
        s->res[g->resource].n_act++;
    }
    return VEMU_OK;
}

static inline void act_remove(vemu_sim *s, resource *rs, uint32_t head) {
    const request *h = &s->req[head];
    qclass *qc = &s->qc[stage_q(s, h, h->stage)];
    if (h->aprev == NIL)
        qc->ahead = h->anext;
    else
        s->req[h->aprev].anext = h->anext;
    if (h->anext == NIL)
        qc->atail = h->aprev;
    else
        s->req[h->anext].aprev = h->aprev;
    rs->n_act--;
}

/* A request of priority `prio` that preempts finds no unit free: suspend the service in
 * progress of lowest priority below `prio` (among equals the one that has run longest since
 * it began or resumed, so that preemptions rotate over the units as interrupts spread over
 * cores, instead of striking the one just resumed again and again;
 * never one ending at this very instant) and free its unit. No such service: no-op. */
static __attribute__((noinline)) int make_room(vemu_sim *s, resource *rs, int32_t prio) {
    uint32_t v = NIL;
    int32_t vp = 0;
    uint64_t vseq = 0;
    for (uint32_t k = 0; k < rs->q_count; k++) { /* each qclass's longest-running service */
        const qclass *qc = &s->qc[s->res_q[rs->q_first + k]];
        int32_t p = qc->priority;
        if (p >= prio || (v != NIL && p > vp)) break; /* (res_q runs up in priority) */
        uint32_t hi = qc->ahead;
        while (hi != NIL && s->req[hi].due <= s->now) hi = s->req[hi].anext;
        if (hi == NIL) continue;
        if (v == NIL || p < vp || s->req[hi].svc_seq < vseq) {
            v = hi;
            vp = p;
            vseq = s->req[hi].svc_seq;
        }
    }
    if (v == NIL) return VEMU_OK;
    request *h = &s->req[v];
    const stage *g = &s->st[h->stage];
    act_remove(s, rs, v);
    h->svc_seq = UINT64_MAX; /* its pending EV_SERVICE is stale now */
    s->stale++;
    h->svc_end = h->due - s->now; /* the time it has left, until it resumes */
    h->susp_at = s->now;
    busy_change(s, g->resource, g->category, -1);
    uint32_t *link = &rs->susp; /* behind those of its priority or higher */
    while (*link != NIL && head_priority(s, *link) >= vp) link = &s->req[*link].snext;
    h->snext = *link;
    *link = v;
    rs->preemptions++;
    return unit_release(s, rs, h);
}

/* A unit is free and the suspended service of highest priority goes first: it resumes,
 * after waking the unit if it sleeps, for the time it had left. */
static __attribute__((noinline)) int resume(vemu_sim *s, resource *rs) {
    uint32_t head = rs->susp;
    request *h = &s->req[head];
    const stage *g = &s->st[h->stage];
    rs->susp = h->snext;
    rs->free--;
    uint64_t wake = rs->n_idle ? unit_take(s, rs, h) : 0;
    uint64_t held = s->now + wake - h->susp_at;
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) s->req[ri].held += held;
    if (wake) { /* on_wake sees held > 0: the service's start stays */
        busy_change(s, g->resource, rs->wake_cat, +1);
        return schedule(s, wake, EV_WAKE, head);
    }
    busy_change(s, g->resource, g->category, +1);
    return svc_schedule(s, g, head, h->svc_end);
}

/* Whether a service of priority `from` on preemptive `rs` that would carry on to a stage of
 * priority `prio` on the unit it holds must give the unit up and queue for that stage
 * instead. When the priority drops, the interrupt's own stages are done and the work it
 * brought joins the queue: a suspended service of the new priority or higher resumes
 * first (the interrupted code goes on), and requests already waiting at that priority or
 * higher go first, in their order. At one priority the request keeps its unit, as code
 * goes on running. And a request waiting to preempt goes first whenever it outranks the
 * stage. */
static inline int outranked(vemu_sim *s, resource *rs, int32_t from, int32_t prio);
static __attribute__((noinline)) int outranked_scan(vemu_sim *s, resource *rs, int32_t from, int32_t prio) {
    int drop = prio < from;
    if (rs->susp != NIL) { /* (a suspended service above a request going on at its priority:
                              one suspended at the instant a lower service ended, below) */
        int32_t hp = head_priority(s, rs->susp);
        if (drop ? hp >= prio : hp > prio) return 1;
    }
    if (rs->waiting == 0) return 0;
    unpark_due(s, rs);
    for (uint32_t k = 0; k < rs->n_nz; k++) {
        const qclass *qc = &s->qc[rs->nz[k]];
        if (qc->preempt && qc->priority > prio) return 1;
        if (drop && qc->priority >= prio) return 1;
    }
    return 0;
}

static inline int outranked(vemu_sim *s, resource *rs, int32_t from, int32_t prio) {
    /* the common case, a request going on at its priority with no preempting qclass above
     * it, decided without a scan */
    if (prio >= from && (prio >= rs->top_preempt || rs->waiting == 0) &&
        (rs->susp == NIL || head_priority(s, rs->susp) <= prio))
        return 0;
    return outranked_scan(s, rs, from, prio);
}

/* Whether requests arriving now at a stage of priority `prio` on `rs` come before all that
 * waits there: no suspended service of that priority or higher (it would resume first) and
 * no open queue of that priority or higher (older, or above). For the members of a service
 * just ended on `rs` that queue for a next stage there (it batches or is throttled): they
 * arrive like any other request, so the unit they free goes to them only if they rank
 * first, and to the work waiting otherwise. */
static __attribute__((noinline)) int arrives_first(vemu_sim *s, resource *rs, int32_t prio) {
    if (rs->susp != NIL && head_priority(s, rs->susp) >= prio) return 0;
    if (rs->waiting == 0) return 1;
    unpark_due(s, rs);
    for (uint32_t k = 0; k < rs->n_nz; k++)
        if (s->qc[rs->nz[k]].priority >= prio) return 0;
    return 1;
}

/* Whether the members of the service at `head`, about to go on from the resource `rs` (index
 * r) whose unit they free, come before all that waits there: each of them that enters a
 * queue of rs at once must find it open, and all of them rank first at the lowest of their
 * priorities (arrives_first); and none sets off a fork onto rs, which would arrive first.
 * At least one must go on to rs. `ahead`: 1 if the members are still at the stage they
 * finish (they go on to stage + 1), 0 if they have arrived at their next stage already (a
 * batch going on as one: its forks, set off, wait in the queues that arrives_first reads).
 * Otherwise the work waiting takes the unit first and the members queue behind it. */
/* The qclass request m goes on to at once when it finishes stage `cur`; NIL if it does not
 * (a delay follows the stage, it completes, or its next stage is a pure delay). */
static inline uint32_t next_queue(const vemu_sim *s, const request *m, uint32_t cur) {
    uint32_t nx = cur + 1;
    if (s->st[cur].has_delay || nx >= m->stage_end || s->st[nx].qclass < 0) return NIL;
    return stage_q(s, m, nx);
}

static __attribute__((noinline)) int members_first(vemu_sim *s, resource *rs, uint32_t r, uint32_t head,
                                                   uint32_t ahead) {
    int any = 0;
    int32_t low = INT32_MAX;
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) {
        const request *m = &s->req[ri];
        uint32_t cur = ahead ? m->stage : m->stage - 1;
        const stage *gc = &s->st[cur];
        if (gc->has_delay) continue; /* it goes on (and sets off its fork) when its delay ends */
        uint32_t q = next_queue(s, m, cur);
        if (q == NIL || s->qc[q].resource != r) continue; /* it completes, or goes elsewhere (after) */
        if (ahead && gc->fork) { /* set off as it goes on, its fork would arrive first */
            const stage *gf = &s->st[s->cls[gc->fork - 1].first_stage];
            if (gf->qclass >= 0 && gf->resource == r) return 0;
        }
        const qclass *qc = &s->qc[q];
        if (qc_closed(qc, s->now)) return 0; /* it will wait for its gap: the unit is not its */
        any = 1;
        if (qc->priority < low) low = qc->priority;
    }
    return any && arrives_first(s, rs, low);
}

/* The end of start_chain for a stage that is throttled or whose units sleep, kept apart
 * from the hot path. A unit that must first wake is charged to the resource's wake
 * category until EV_WAKE, when the service proper (t ps, kept in svc_end meanwhile)
 * begins. A throttle closes its gap for `gap` ps from now and, if requests still wait,
 * arms its gate. */
static __attribute__((noinline, cold)) int start_slow(vemu_sim *s, uint32_t qi, uint32_t head, double t) {
    request *h = &s->req[head];
    const stage *g = &s->st[h->stage];
    resource *rs = &s->res[g->resource];
    uint64_t wake = rs->n_idle ? unit_take(s, rs, h) : 0;
    int rc;
    if (wake) {
        busy_change(s, g->resource, rs->wake_cat, +1);
        h->svc_end = to_ps(t);
        if (s->trace_requests) /* for the trace: every member of the batch waits it out */
            for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next)
                if (traced(s, &s->req[ri])) s->trace_wake[ri] = wake;
        rc = schedule(s, wake, EV_WAKE, head);
    } else {
        busy_change(s, g->resource, g->category, +1);
        rc = svc_schedule(s, g, head, to_ps(t));
    }
    if (rc < 0 || !g->throttled) return rc;
    qclass *qc = &s->qc[qi];
    /* with requests left waiting, the qclass leaves nz for the park until its gap passes */
    if (qc->len > 0) {
        if (qc->parked) unpark_due(s, rs); /* its gap passed at this instant: it is on nz now */
        nz_remove(s, rs, qc);
    }
    /* the gap counts from the start of the service proper, after any wake-up (both <=
     * VEMU_MAX_GAP: no overflow; schedule checks the time limit) */
    qc->next_ok = s->now + wake + qc->gap;
    if (qc->len > 0) park_push(s, rs, qi);
    return gate_arm(s, qi);
}

/* Begins a service on qclass qi of the chain head..tail of n requests (already out of the
 * queue; linked through `next`, tail->next == NIL) carrying `bytes` in all, gathering up
 * to batch - n more waiting requests of the same qclass. Takes a free unit. */
static int start_chain(vemu_sim *s, uint32_t qi, uint32_t head, uint32_t tail, uint32_t n, double bytes) {
    qclass *qc = &s->qc[qi];
    resource *rs = &s->res[qc->resource];
    request *h = &s->req[head];
    stage *g = &s->st[h->stage];
    uint32_t n0 = n;
    if (qc->batch > n && qc->len > 0) {
        while (n < qc->batch && qc->len > 0) {
            uint32_t ri = qclass_pop(s, qc);
            s->req[tail].next = ri;
            s->req[ri].next = NIL;
            tail = ri;
            bytes += s->req[ri].bytes;
            n++;
        }
        queue_change(s, rs, -(int)(n - n0));
    }
    rng r = rng_keyed(h->key, g->tag);
    double t = sample(&g->work, &r) + g->per_byte_ps * bytes;
    if (g->paged) /* pages are counted per request: each is its own buffer */
        for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) {
            double over = s->req[ri].bytes - g->unpaged_bytes;
            if (over > 0) t += g->per_page_ps * ceil(over / g->page_bytes);
        }
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) {
        s->req[ri].start = s->now;
        s->req[ri].batch = n;
    }
    rs->free--;
    rs->served++;
    g->served++;
    if (__builtin_expect(g->slow, 0)) return start_slow(s, qi, head, t);
    busy_change(s, g->resource, g->category, +1);
    return svc_schedule(s, g, head, to_ps(t));
}

/* Begins a service of `head` (already dequeued, or arriving at a free unit) on qclass qi,
 * gathering up to batch - 1 more waiting requests of the same qclass. */
static int start_service(vemu_sim *s, uint32_t qi, uint32_t head) {
    s->req[head].next = NIL;
    return start_chain(s, qi, head, head, 1, s->req[head].bytes);
}

/* A unit of `rs` is free: give it to the longest-waiting request of the highest-priority
 * non-empty qclass whose throttle is open. Few qclasses are non-empty and open at once (a
 * throttled one waiting for its gap is parked apart), so a scan of them beats any index
 * (the choice does not depend on their order: enq_seq is unique). */
static inline __attribute__((always_inline)) int dispatch(vemu_sim *s, resource *rs) {
    if (rs->waiting == 0) return __builtin_expect(rs->susp == NIL, 1) ? VEMU_OK : resume(s, rs);
    unpark_due(s, rs);
    uint32_t best = NIL;
    for (uint32_t k = 0; k < rs->n_nz; k++) {
        uint32_t qi = rs->nz[k];
        qclass *qc = &s->qc[qi];
        if (best == NIL) {
            best = qi;
            continue;
        }
        qclass *b = &s->qc[best];
        if (qc->priority > b->priority ||
            (qc->priority == b->priority && s->req[qc->head].enq_seq < s->req[b->head].enq_seq))
            best = qi;
    }
    /* a suspended service goes before queued requests of its priority or lower */
    if (__builtin_expect(rs->susp != NIL, 0) && (best == NIL || head_priority(s, rs->susp) >= s->qc[best].priority))
        return resume(s, rs);
    if (__builtin_expect(best == NIL, 0)) return VEMU_OK; /* only closed throttles wait: their gates will call */
    queue_change(s, rs, -1);
    uint32_t ri = qclass_pop(s, &s->qc[best]);
    return start_service(s, best, ri);
}

/* A throttled qclass with requests waiting: while its gap is open and a unit free, serve
 * them (dispatch serves the resource's best, which is this qclass unless another throttle
 * opened at the same instant ranks first). A no-op except at a tie: only a gap that passes
 * at this very instant, before its EV_GATE pops, leaves an open throttle with requests
 * waiting beside a free unit (every other way a unit comes free dispatches). */
static __attribute__((noinline, cold)) int gate_flush(vemu_sim *s, uint32_t qi) {
    qclass *qc = &s->qc[qi];
    resource *rs = &s->res[qc->resource];
    while (qc->len > 0 && rs->free > 0 && !qc_closed(qc, s->now)) { /* each pass starts a service */
        int rc = dispatch(s, rs);
        if (rc < 0) return rc;
    }
    return VEMU_OK;
}

/* The qclass the members of the batch at `head` go on to, when they go on as batches:
 * each member's stage has no delay and is followed by a stage of a batching qclass. NIL
 * otherwise. *n receives the batch size, *mixed whether the members go on to several
 * qclasses (the lanes of a next stage with other lanes than this one's, or several
 * stages): then the head's is returned, and each qclass's members arrive there together. */
static uint32_t batch_next_qclass(const vemu_sim *s, uint32_t head, uint32_t *n, int *mixed) {
    uint32_t q = NIL, k = 0;
    *mixed = 0;
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next, k++) {
        uint32_t q2 = next_queue(s, &s->req[ri], s->req[ri].stage);
        if (q2 == NIL || s->qc[q2].batch < 2) return NIL;
        if (q != NIL && q2 != q) *mixed = 1;
        if (q == NIL) q = q2;
    }
    *n = k;
    return q;
}

static int group_enter(vemu_sim *s, uint32_t qi, uint32_t head);

/* The members of a finished batch (head.., linked, already arrived at their next stages)
 * go on to several qclasses: each qclass's members, in their order in the batch, arrive
 * there together (group_enter), the qclasses taken in index order. */
static __attribute__((noinline, cold)) int split_enter(vemu_sim *s, uint32_t head) {
    uint32_t n = 0;
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next, n++)
        s->split[n] = (qorder){stage_q(s, &s->req[ri], s->req[ri].stage), n, ri};
    qsort(s->split, n, sizeof *s->split, qorder_cmp);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        for (; j + 1 < n && s->split[j + 1].key == s->split[i].key; j++)
            s->req[s->split[j].ri].next = s->split[j + 1].ri;
        s->req[s->split[j].ri].next = NIL;
        int rc = group_enter(s, (uint32_t)s->split[i].key, s->split[i].ri);
        if (rc < 0) return rc;
        i = j + 1;
    }
    return VEMU_OK;
}

/* The members of a finished batch (head.., linked, already arrived at their stages of
 * qclass qi) enter it together, as the packets one notification covers: while a unit is
 * free and the throttle open, up to `batch` of them start as one service; the rest wait,
 * each counted against the resource's capacity. */
static __attribute__((noinline)) int group_enter(vemu_sim *s, uint32_t qi, uint32_t head) {
    qclass *qc = &s->qc[qi];
    resource *rs = &s->res[qc->resource];
    uint32_t ri = head;
    /* a throttle with requests waiting: the group queues behind them (see the end) */
    while (ri != NIL && !qc_closed(qc, s->now) && !(qc->gap && qc->len > 0)) {
        if (rs->free == 0) {
            if (!qc->preempt) break;
            int rc = make_room(s, rs, qc->priority);
            if (rc < 0) return rc;
            if (rs->free == 0) break;
        }
        uint32_t h0 = ri, t0 = ri, k = 1;
        double bytes = s->req[ri].bytes;
        for (ri = s->req[ri].next; ri != NIL && k < qc->batch; ri = s->req[ri].next) {
            t0 = ri;
            bytes += s->req[ri].bytes;
            k++;
        }
        s->req[t0].next = NIL;
        int rc = start_chain(s, qi, h0, t0, k, bytes);
        if (rc < 0) return rc;
    }
    while (ri != NIL) {
        uint32_t nx = s->req[ri].next;
        if (rs->capacity >= 0 && rs->waiting >= (uint64_t)rs->capacity && qc->gap) {
            int rc = gate_flush(s, qi); /* a gap passing now serves some: room (see below) */
            if (rc < 0) return rc;
        }
        if (rs->capacity >= 0 && rs->waiting >= (uint64_t)rs->capacity) {
            int rc = drop(s, ri, rs);
            if (rc < 0) return rc;
        } else {
            enqueue(s, qc, rs, ri);
        }
        ri = nx;
    }
    if (!qc->gap) return VEMU_OK;
    /* a gap passing at this very instant, its EV_GATE yet to pop, with a unit free: the
     * gate's service begins now, the longest waiting first and the group behind them */
    int rc = gate_flush(s, qi);
    return rc < 0 ? rc : gate_arm(s, qi);
}

/* The request ri ends its service at stage g and arrives at its next stage without
 * leaving the unit (the caller starts that service); a forking stage starts its detached
 * request first, as stage_leave does. */
static inline int pass_on(vemu_sim *s, uint32_t ri, stage *g) {
    request *q = &s->req[ri];
    q->svc_end = s->now;
    stage_account(g, q);
    trace_stage(s, q, 0);
    if (__builtin_expect(g->fork != 0, 0)) {
        int rc = fork_off(s, ri, g->fork - 1);
        if (rc < 0) return rc;
    }
    q->stage++;
    stage_arrive(s, q, &s->st[q->stage]);
    return VEMU_OK;
}

static int on_service(vemu_sim *s, uint32_t head) {
    request *h = &s->req[head];
    stage *g = &s->st[h->stage];
    uint32_t r = g->resource;
    resource *rs = &s->res[r];
    busy_change(s, r, g->category, -1);
    if (__builtin_expect(g->preemptive, 0)) act_remove(s, rs, head);
    /* a batching service goes on as one to the next stage if that stage batches too: on
     * this resource it keeps the unit (the later steps of one interrupt are paid once per
     * interrupt); elsewhere its members arrive together (one notification, one interrupt) */
    uint32_t n, q2;
    int mixed;
    if (g->batching && (q2 = batch_next_qclass(s, head, &n, &mixed)) != NIL) {
        double bytes = 0;
        uint32_t tail = head;
        int forked = 0;
        for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) {
            request *q = &s->req[ri];
            forked |= s->st[q->stage].fork != 0;
            int rc = pass_on(s, ri, &s->st[q->stage]);
            if (rc < 0) return rc;
            bytes += q->bytes;
            tail = ri;
        }
        const qclass *qn = &s->qc[q2];
        int rc = unit_release(s, rs, h);
        if (rc < 0) return rc;
        if (!mixed && qn->resource == r && qn->batch >= n && !qn->gap &&
            !outranked(s, rs, s->qc[g->qclass].priority, qn->priority)) {
            rc = start_chain(s, q2, head, tail, n, bytes);
            /* a request forked meanwhile found this service out of the running: it may
             * preempt now */
            return rc < 0 || !(g->preemptive && forked) ? rc : preempt_waiting(s, rs);
        }
        /* the members queue there like any arrival: the unit goes to them if they rank
         * first, else to the work that waits (then they queue) */
        int first = members_first(s, rs, r, head, 0);
        if (!first) {
            rc = dispatch(s, rs);
            if (rc < 0) return rc;
        }
        rc = mixed ? split_enter(s, head) : group_enter(s, q2, head);
        if (rc < 0 || !first || !rs->free) return rc;
        return dispatch(s, rs); /* the unit is still free (some went to other resources' queues) */
    }
    /* run to completion: a lone request whose next stage is on the same resource keeps
     * its unit and goes straight on, unless that stage batches or is throttled: a batch
     * can only form from requests that wait for it, so the request queues there like any
     * other. Its fork, if any, is set off first: it may outrank the next stage. */
    if (h->next == NIL && g->chain_next && h->stage + 1 < h->stage_end) {
        int rc = pass_on(s, head, g);
        if (rc < 0) return rc;
        rc = unit_release(s, rs, h); /* start_service takes it again */
        if (rc < 0) return rc;
        if (outranked(s, rs, s->qc[g->qclass].priority, s->qc[s->st[h->stage].qclass].priority)) {
            rc = dispatch(s, rs);
            return rc < 0 ? rc : stage_enter(s, head);
        }
        rc = start_service(s, stage_q(s, h, h->stage), head);
        /* a request forked meanwhile found this service out of the running: it may preempt now */
        return rc < 0 || !(g->preemptive && g->fork) ? rc : preempt_waiting(s, rs);
    }
    int rc = unit_release(s, rs, h);
    if (rc < 0) return rc;
    /* members going on to a queue of this resource (batching or throttled, or, from a
     * batch, any): as above, the unit goes to them first only if they rank first */
    int first = members_first(s, rs, r, head, 1);
    if (!first) {
        rc = dispatch(s, rs);
        if (rc < 0) return rc;
    }
    /* each member at its own stage: the stages of one queue class (one path stage walked by
     * several classes or flows) share the service, not their delays, tags or sums. When the
     * unit is theirs (first), those going on to this resource go before the rest, whose
     * doings (a closed client's next request, issued at once) would otherwise take it, and
     * among them the highest priority first (a later one would preempt an earlier one's
     * service the moment it began); the order is fixed before any goes on, as going on
     * changes what decides it */
    uint32_t members = 0;
    for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next, members++) {
        uint32_t q = first ? next_queue(s, &s->req[ri], s->req[ri].stage) : NIL;
        int64_t key = q != NIL && s->qc[q].resource == r ? (int64_t)INT32_MAX - s->qc[q].priority : INT64_MAX;
        s->split[members] = (qorder){key, members, ri};
    }
    if (first) qsort(s->split, members, sizeof *s->split, qorder_cmp); /* ties keep the batch's order */
    for (uint32_t k = 0; k < members; k++) {
        uint32_t ri = s->split[k].ri;
        request *q = &s->req[ri];
        const stage *gm = &s->st[q->stage];
        q->svc_end = s->now;
        if (gm->has_delay) {
            rng rg = rng_keyed(q->key, gm->tag ^ T_DELAY);
            rc = schedule(s, to_ps(sample(&gm->delay, &rg)), EV_DELAY, ri);
        } else {
            rc = stage_leave(s, ri);
        }
        if (rc < 0) return rc;
    }
    return first && rs->free ? dispatch(s, rs) : VEMU_OK;
}

/* ---------------------------------------------------------------- creation */

static int check_dist(const vemu_dist *d, const char *what, uint32_t i, int need_positive, char *err,
                      size_t len) {
    if (d->kind < VEMU_DIST_FIXED || d->kind > VEMU_DIST_UNIFORM) {
        set_err(err, len, "%s %u: unknown distribution kind %d", what, i, d->kind);
        return 0;
    }
    if (!isfinite(d->mean) || d->mean < 0 || d->mean > VEMU_MAX_MEAN) {
        set_err(err, len, "%s %u: mean %g is not a finite number in [0, %g]", what, i, d->mean, VEMU_MAX_MEAN);
        return 0;
    }
    if (need_positive && !(d->mean >= 1)) { /* draws round to whole ps: a mean below 1 ps would
                                                 keep the clock at one instant */
        set_err(err, len, "%s %u: mean %g must be at least 1 ps", what, i, d->mean);
        return 0;
    }
    if (!isfinite(d->cv) || d->cv < 0 || d->cv > 1e6) {
        set_err(err, len, "%s %u: cv %g is not a finite number in [0, 1e6]", what, i, d->cv);
        return 0;
    }
    if (d->kind == VEMU_DIST_UNIFORM && d->cv > 0.5773502691896258) {
        set_err(err, len, "%s %u: a uniform distribution needs cv <= 1/sqrt(3), got %g", what, i, d->cv);
        return 0;
    }
    return 1;
}

typedef struct {
    uint64_t tag;
    uint32_t index; /* of the stage or the flow */
} tagged;

static int tagged_cmp(const void *a, const void *b) {
    const tagged *x = a, *y = b;
    if (x->tag != y->tag) return x->tag < y->tag ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Two stages of one tag would draw the same numbers for a request that passes both, two
 * flows of one tag the same arrivals and keys: the tags of the flows, of the stages, and the
 * bytes tags of the stages that draw bytes must each differ. what: 0 stages, 1 bytes, 2 flows. */
static int distinct_tags(const vemu_model *m, int what, char *err, size_t len) {
    uint32_t all = what == 2 ? m->n_flows : m->n_stages, n = 0;
    tagged *t = malloc(((size_t)all + 1) * sizeof *t);
    if (!t) {
        set_err(err, len, "out of memory checking the tags of %u %s", all, what == 2 ? "flows" : "stages");
        return 0;
    }
    for (uint32_t i = 0; i < all; i++)
        if (what == 2)
            t[n++] = (tagged){m->flows[i].tag, i};
        else if (what == 0 || m->stages[i].draw_bytes)
            t[n++] = (tagged){what ? m->stages[i].bytes_tag : m->stages[i].tag, i};
    qsort(t, n, sizeof *t, tagged_cmp);
    for (uint32_t k = 1; k < n; k++)
        if (t[k].tag == t[k - 1].tag) {
            set_err(err, len, "%s %u and %u share the %s %#llx: each needs its own", what == 2 ? "flows" : "stages",
                    t[k - 1].index, t[k].index, what == 1 ? "bytes_tag" : "tag", (unsigned long long)t[k].tag);
            free(t);
            return 0;
        }
    free(t);
    return 1;
}

static int validate(const vemu_model *m, char *err, size_t len) {
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            set_err(err, len, __VA_ARGS__);                                                        \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)
    REQUIRE(m != NULL, "model is NULL");
    REQUIRE(m->n_resources <= VEMU_MAX_RESOURCES, "%u resources, at most %d", m->n_resources, VEMU_MAX_RESOURCES);
    REQUIRE(m->n_qclasses <= VEMU_MAX_STAGES, "%u qclasses, at most %d", m->n_qclasses, VEMU_MAX_STAGES);
    REQUIRE(m->n_stages >= 1 && m->n_stages <= VEMU_MAX_STAGES, "%u stages, need 1..%d", m->n_stages, VEMU_MAX_STAGES);
    REQUIRE(m->n_classes >= 1 && m->n_classes <= VEMU_MAX_STAGES, "%u classes, need 1..%d", m->n_classes, VEMU_MAX_STAGES);
    REQUIRE(m->n_flows >= 1 && m->n_flows <= VEMU_MAX_FLOWS, "%u flows, need 1..%d", m->n_flows, VEMU_MAX_FLOWS);
    REQUIRE(m->n_categories >= 1 && m->n_categories <= VEMU_MAX_CATEGORIES, "%u categories, need 1..%d",
            m->n_categories, VEMU_MAX_CATEGORIES);
    REQUIRE(m->n_resources == 0 || m->resources, "resources array is NULL");
    REQUIRE(m->n_qclasses == 0 || m->qclasses, "qclasses array is NULL");
    REQUIRE(m->stages && m->classes && m->flows, "stages, classes or flows array is NULL");
    REQUIRE(m->pool_size >= 1 && m->pool_size <= VEMU_MAX_POOL, "pool_size %u, need 1..%d", m->pool_size, VEMU_MAX_POOL);
    REQUIRE(m->trace_capacity <= VEMU_MAX_TRACE, "trace_capacity %u, at most %d", m->trace_capacity, VEMU_MAX_TRACE);
    REQUIRE(m->n_idle_states <= VEMU_MAX_IDLE_STATES, "%u idle states, at most %d", m->n_idle_states,
            VEMU_MAX_IDLE_STATES);
    REQUIRE(m->n_idle_states == 0 || m->idle_states, "idle_states array is NULL");
    REQUIRE(m->class_histograms <= 1, "class_histograms %u, need 0 or 1", m->class_histograms);
    REQUIRE(!m->class_histograms || m->n_classes <= VEMU_MAX_CLASS_HIST,
            "%u classes with class_histograms, at most %d", m->n_classes, VEMU_MAX_CLASS_HIST);
    uint64_t idle_units = 0;
    for (uint32_t i = 0; i < m->n_idle_states; i++) {
        const vemu_idle_state *d = &m->idle_states[i];
        REQUIRE(d->exit >= 0 && d->exit <= VEMU_MAX_GAP && d->residency >= 0 && d->residency <= VEMU_MAX_GAP,
                "idle state %u: exit %lld ps and residency %lld ps must be in 0..%lld", i, (long long)d->exit,
                (long long)d->residency, (long long)VEMU_MAX_GAP);
    }
    for (uint32_t i = 0; i < m->n_resources; i++) {
        const vemu_resource_spec *r = &m->resources[i];
        REQUIRE(r->units >= 1 && r->units <= VEMU_MAX_UNITS, "resource %u: units %u, need 1..%d", i, r->units,
                VEMU_MAX_UNITS);
        REQUIRE(isfinite(r->share) && r->share >= 0 && r->share < 1, "resource %u: share %g, need 0 <= share < 1",
                i, r->share);
        REQUIRE(r->share == 0 || (r->share_from < m->n_categories && r->share_to < m->n_categories &&
                                  r->share_from != r->share_to),
                "resource %u: share from category %u to %u, need two distinct categories below %u", i,
                r->share_from, r->share_to, m->n_categories);
        if (r->n_idle == 0) {
            REQUIRE(r->poll == 0, "resource %u: polls before sleeping but has no idle states", i);
            continue;
        }
        idle_units += r->units;
        REQUIRE(idle_units <= VEMU_MAX_IDLE_UNITS, "more than %d units have idle states", VEMU_MAX_IDLE_UNITS);
        REQUIRE(r->n_idle <= VEMU_MAX_IDLE, "resource %u: %u idle states, at most %d", i, r->n_idle, VEMU_MAX_IDLE);
        REQUIRE(r->idle_first <= m->n_idle_states && r->n_idle <= m->n_idle_states - r->idle_first,
                "resource %u: idle states %u..+%u out of range", i, r->idle_first, r->n_idle);
        REQUIRE(r->wake_category < m->n_categories, "resource %u: wake category %u out of range", i,
                r->wake_category);
        REQUIRE(r->poll >= 0 && r->poll <= VEMU_MAX_GAP, "resource %u: poll %lld ps, need 0..%lld", i,
                (long long)r->poll, (long long)VEMU_MAX_GAP);
        REQUIRE(r->poll == 0 || r->poll_category < m->n_categories, "resource %u: poll category %u out of range", i,
                r->poll_category);
        for (uint32_t k = r->idle_first + 1; k < r->idle_first + r->n_idle; k++)
            REQUIRE(m->idle_states[k].residency >= m->idle_states[k - 1].residency,
                    "resource %u: idle state %u has a shorter target residency than the one before it", i, k);
    }
    for (uint32_t i = 0; i < m->n_qclasses; i++) {
        const vemu_qclass_spec *q = &m->qclasses[i];
        REQUIRE(q->resource < m->n_resources, "qclass %u: resource %u out of range", i, q->resource);
        REQUIRE(q->batch >= 1 && q->batch <= VEMU_MAX_BATCH, "qclass %u: batch %u, need 1..%d", i, q->batch,
                VEMU_MAX_BATCH);
        REQUIRE(q->gap >= 0 && q->gap <= VEMU_MAX_GAP, "qclass %u: gap %lld ps, need 0..%lld", i, (long long)q->gap,
                (long long)VEMU_MAX_GAP);
        REQUIRE(q->preempt <= 1, "qclass %u: preempt %u, need 0 or 1", i, q->preempt);
    }
    for (uint32_t i = 0; i < m->n_stages; i++) {
        const vemu_stage_spec *g = &m->stages[i];
        REQUIRE(g->qclass >= -1 && g->qclass < (int64_t)m->n_qclasses, "stage %u: qclass %d out of range", i,
                g->qclass);
        REQUIRE(g->category < m->n_categories, "stage %u: category %u out of range", i, g->category);
        REQUIRE(g->lanes <= VEMU_MAX_UNITS, "stage %u: lanes %u, need 0..%d", i, g->lanes, VEMU_MAX_UNITS);
        REQUIRE(g->lanes <= 1 || (g->qclass >= 0 && (uint64_t)g->qclass + g->lanes <= m->n_qclasses),
                "stage %u: %u lanes from qclass %d need qclasses up to %lld, there are %u", i, g->lanes, g->qclass,
                (long long)g->qclass + g->lanes - 1, m->n_qclasses);
        for (uint32_t k = 1; k < g->lanes; k++) {
            const vemu_qclass_spec *a = &m->qclasses[g->qclass], *b = &m->qclasses[g->qclass + k];
            REQUIRE(a->resource == b->resource && a->priority == b->priority && a->batch == b->batch &&
                        a->gap == b->gap && a->preempt == b->preempt,
                    "stage %u: lane %u's qclass %u differs from lane 0's %d (a stage's lanes must agree)", i, k,
                    g->qclass + k, g->qclass);
        }
        if (!check_dist(&g->work, "stage work", i, 0, err, len)) return 0;
        if (!check_dist(&g->delay, "stage delay", i, 0, err, len)) return 0;
        REQUIRE(isfinite(g->per_byte_ps) && g->per_byte_ps >= 0 && g->per_byte_ps <= 1e9,
                "stage %u: per_byte_ps %g is not a finite number in [0, 1e9]", i, g->per_byte_ps);
        REQUIRE(isfinite(g->per_page_ps) && g->per_page_ps >= 0 && g->per_page_ps <= 1e15,
                "stage %u: per_page_ps %g is not a finite number in [0, 1e15]", i, g->per_page_ps);
        REQUIRE(g->per_page_ps == 0 || (isfinite(g->page_bytes) && g->page_bytes >= 1 && g->page_bytes <= 1e15),
                "stage %u: page_bytes %g is not a finite number in [1, 1e15]", i, g->page_bytes);
        REQUIRE(g->per_page_ps == 0 || (isfinite(g->unpaged_bytes) && g->unpaged_bytes >= 0 && g->unpaged_bytes <= 1e15),
                "stage %u: unpaged_bytes %g is not a finite number in [0, 1e15]", i, g->unpaged_bytes);
        /* the most pages a request can span must not take longer than its bytes could at the
         * largest per_byte_ps (1e9), so that no single service overruns the clock */
        REQUIRE(g->per_page_ps == 0 ||
                    g->per_page_ps * ceil(fmax(VEMU_MAX_BYTES - g->unpaged_bytes, 0) / g->page_bytes) <= 1e9 * VEMU_MAX_BYTES,
                "stage %u: per_page_ps %g at page_bytes %g exceeds 1e9 ps per byte of the largest request", i,
                g->per_page_ps, g->page_bytes);
        REQUIRE(g->draw_bytes == 0 || g->draw_bytes == 1, "stage %u: draw_bytes must be 0 or 1", i);
        if (g->draw_bytes && !check_dist(&g->bytes, "stage bytes", i, 0, err, len)) return 0;
        REQUIRE(!g->draw_bytes || g->bytes.mean <= VEMU_MAX_BYTES, "stage %u: bytes mean above %g", i,
                VEMU_MAX_BYTES);
        REQUIRE(g->fork <= m->n_classes, "stage %u: fork %u, need 0 (none) or 1 + a class below %u", i, g->fork,
                m->n_classes);
    }
    if (!distinct_tags(m, 0, err, len) || !distinct_tags(m, 1, err, len)) return 0;
    for (uint32_t i = 0; i < m->n_classes; i++) {
        const vemu_class_spec *c = &m->classes[i];
        REQUIRE(c->n_stages >= 1 && c->first_stage < m->n_stages && c->n_stages <= m->n_stages - c->first_stage,
                "class %u: stages %u..+%u out of range", i, c->first_stage, c->n_stages);
        REQUIRE(isfinite(c->weight) && c->weight > 0 && c->weight <= 1e12, "class %u: weight %g, need (0, 1e12]",
                i, c->weight);
    }
    /* a detached request cannot fork again: forks[k] counts the forking stages before stage
     * k, so each fork's class is checked in O(1) whatever the sizes */
    uint32_t *forks = NULL;
    for (uint32_t i = 0; i < m->n_stages; i++) {
        if (!m->stages[i].fork) continue;
        if (!forks) {
            forks = malloc(((size_t)m->n_stages + 1) * sizeof *forks);
            REQUIRE(forks != NULL, "out of memory checking the forks of %u stages", m->n_stages);
            forks[0] = 0;
            for (uint32_t k = 0; k < m->n_stages; k++) forks[k + 1] = forks[k] + (m->stages[k].fork != 0);
        }
        const vemu_class_spec *c = &m->classes[m->stages[i].fork - 1];
        int again = forks[c->first_stage + c->n_stages] != forks[c->first_stage];
        if (again) free(forks);
        REQUIRE(!again, "stage %u forks to class %u, which has a forking stage of its own", i, m->stages[i].fork - 1);
    }
    free(forks);
    uint64_t clients = 0;
    for (uint32_t i = 0; i < m->n_flows; i++) {
        const vemu_flow_spec *f = &m->flows[i];
        REQUIRE(f->n_classes >= 1 && f->first_class < m->n_classes && f->n_classes <= m->n_classes - f->first_class,
                "flow %u: classes %u..+%u out of range", i, f->first_class, f->n_classes);
        if (f->arrival == VEMU_ARRIVAL_OPEN) {
            if (!check_dist(&f->interarrival, "flow interarrival", i, 1, err, len)) return 0;
        } else {
            REQUIRE(f->arrival == VEMU_ARRIVAL_CLOSED, "flow %u: arrival %d is neither open (0) nor closed (1)", i,
                    f->arrival);
            REQUIRE(f->clients >= 1, "flow %u: a closed flow needs clients >= 1", i);
            if (!check_dist(&f->think, "flow think", i, 0, err, len)) return 0;
            clients += f->clients;
        }
    }
    REQUIRE(clients <= m->pool_size, "closed flows have %llu clients but the pool holds %u", (unsigned long long)clients,
            m->pool_size);
    /* a class forked to is not one a flow draws: its completions are detached ones, kept
     * apart from the flow's requests (their latency) */
    uint32_t *drawn = NULL;
    for (uint32_t i = 0; i < m->n_stages; i++) {
        if (!m->stages[i].fork) continue;
        if (!drawn) { /* drawn[k]: flows whose range starts at or before k, less those ending before it */
            drawn = calloc((size_t)m->n_classes + 1, sizeof *drawn);
            REQUIRE(drawn != NULL, "out of memory checking the forks of %u stages", m->n_stages);
            for (uint32_t f = 0; f < m->n_flows; f++) {
                drawn[m->flows[f].first_class]++;
                drawn[m->flows[f].first_class + m->flows[f].n_classes]--;
            }
            for (uint32_t k = 1; k <= m->n_classes; k++) drawn[k] += drawn[k - 1];
        }
        int own = drawn[m->stages[i].fork - 1] != 0;
        if (own) free(drawn);
        REQUIRE(!own, "stage %u forks to class %u, which a flow draws its requests from", i, m->stages[i].fork - 1);
    }
    free(drawn);
    if (!distinct_tags(m, 2, err, len)) return 0;
    return 1;
#undef REQUIRE
}

int vemu_sim_create(const vemu_model *m, uint64_t seed, vemu_sim **out, char *err, size_t err_len) {
    if (out) *out = NULL;
    if (err && err_len) err[0] = '\0';
    if (!out) {
        set_err(err, err_len, "out is NULL");
        return VEMU_EINVAL;
    }
    if (!validate(m, err, err_len)) return VEMU_EINVAL;
    zig_ensure();
    vemu_sim *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->stall_at = UINT64_MAX; /* no stall limit until vemu_sim_set_stall_limit */
    s->n_resources = m->n_resources;
    s->n_qclasses = m->n_qclasses;
    s->n_stages = m->n_stages;
    s->n_classes = m->n_classes;
    s->n_flows = m->n_flows;
    s->n_categories = m->n_categories;
    s->pool_size = m->pool_size;
    size_t rc = (size_t)m->n_resources * m->n_categories;
    uint64_t closed_flows = 0;
    for (uint32_t i = 0; i < m->n_flows; i++) closed_flows += m->flows[i].arrival == VEMU_ARRIVAL_CLOSED ? m->flows[i].clients : 0;
    /* + one pending gate per qclass */
    uint64_t polling_units = 0; /* + one pending poll end per unit that polls before sleeping */
    for (uint32_t i = 0; i < m->n_resources; i++) polling_units += m->resources[i].poll ? m->resources[i].units : 0;
    uint64_t cap = (uint64_t)m->pool_size + m->n_flows + closed_flows + m->n_qclasses + polling_units + 1;
    int preemption = 0; /* + room for pool_size stale ends of preempted services (heap_sweep) */
    for (uint32_t i = 0; i < m->n_qclasses; i++) preemption |= m->qclasses[i].preempt != 0;
    if (preemption) cap += m->pool_size;
    s->heap_cap = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    s->res = calloc(m->n_resources ? m->n_resources : 1, sizeof *s->res);
    s->qc = calloc(m->n_qclasses ? m->n_qclasses : 1, sizeof *s->qc);
    s->res_q = calloc(m->n_qclasses ? m->n_qclasses : 1, sizeof *s->res_q);
    s->nz = calloc(m->n_qclasses ? m->n_qclasses : 1, sizeof *s->nz);
    s->park = calloc(m->n_qclasses ? m->n_qclasses : 1, sizeof *s->park);
    uint32_t max_batch = 1;
    for (uint32_t i = 0; i < m->n_qclasses; i++)
        if (m->qclasses[i].batch > max_batch) max_batch = m->qclasses[i].batch;
    s->split = malloc((size_t)max_batch * sizeof *s->split);
    s->st = calloc(m->n_stages, sizeof *s->st);
    s->cls = calloc(m->n_classes, sizeof *s->cls);
    s->class_completed = calloc(m->n_classes, sizeof *s->class_completed);
    s->class_lat_sum = calloc(m->n_classes, sizeof *s->class_lat_sum);
    s->class_lat_max = calloc(m->n_classes, sizeof *s->class_lat_max);
    if (m->class_histograms) {
        s->class_hist = calloc((size_t)m->n_classes * VEMU_HIST_BUCKETS, sizeof *s->class_hist);
        if (!s->class_hist) goto nomem;
    }
    s->fl = calloc(m->n_flows, sizeof *s->fl);
    s->busy = calloc(rc ? rc : 1, sizeof *s->busy);
    s->busy_area = calloc(rc ? rc : 1, sizeof *s->busy_area);
    s->busy_last = calloc(rc ? rc : 1, sizeof *s->busy_last);
    s->heap = malloc((size_t)s->heap_cap * sizeof *s->heap);
    s->req = malloc((size_t)m->pool_size * sizeof *s->req);
    s->hist_block = calloc((size_t)m->n_flows * VEMU_HIST_BUCKETS, sizeof *s->hist_block);
    s->trace_cap = m->trace_capacity;
    s->trace_requests = m->trace_requests;
    s->trace = malloc((size_t)(m->trace_capacity ? m->trace_capacity : 1) * sizeof *s->trace);
    /* by pool slot; calloc'd pages a run never touches cost no memory */
    s->trace_wake = calloc(m->trace_requests ? m->pool_size : 1, sizeof *s->trace_wake);
    s->idle_exit = malloc((m->n_idle_states ? m->n_idle_states : 1) * sizeof *s->idle_exit);
    s->idle_res = malloc((m->n_idle_states ? m->n_idle_states : 1) * sizeof *s->idle_res);
    s->idle_wakeups = calloc(m->n_idle_states ? m->n_idle_states : 1, sizeof *s->idle_wakeups);
    s->n_idle_states = m->n_idle_states;
    s->poll_owner = malloc((size_t)(polling_units ? polling_units : 1) * sizeof *s->poll_owner);
    if (!s->res || !s->qc || !s->res_q || !s->nz || !s->park || !s->split || !s->st || !s->cls || !s->class_completed || !s->class_lat_sum || !s->class_lat_max || !s->fl || !s->busy ||
        !s->busy_area || !s->busy_last || !s->heap || !s->req || !s->hist_block || !s->trace || !s->idle_exit ||
        !s->idle_res || !s->idle_wakeups || !s->poll_owner || !s->trace_wake)
        goto nomem;

    for (uint32_t i = 0; i < m->n_idle_states; i++) {
        s->idle_exit[i] = m->idle_states[i].exit;
        s->idle_res[i] = m->idle_states[i].residency;
    }
    uint32_t poll_next = 0;
    for (uint32_t i = 0; i < m->n_resources; i++) {
        const vemu_resource_spec *g = &m->resources[i];
        resource *r = &s->res[i];
        r->units = r->free = g->units;
        r->capacity = g->capacity;
        r->susp = NIL;
        r->share = g->share;
        r->share_from = g->share_from;
        r->share_to = g->share_to;
        if (g->n_idle == 0) continue;
        /* every unit asleep since before time 0 (since = UINT64_MAX) with no history
         * (prediction 0): its first wake-up is from the state a prediction of 0 picks */
        r->stack = malloc((size_t)g->units * sizeof *r->stack);
        r->since = malloc((size_t)g->units * sizeof *r->since);
        r->pred = calloc(g->units, sizeof *r->pred);
        if (!r->stack || !r->since || !r->pred) goto nomem;
        for (uint32_t u = 0; u < g->units; u++) r->since[u] = UINT64_MAX;
        r->n_idle = g->n_idle;
        r->idle_first = g->idle_first;
        r->wake_cat = g->wake_category;
        for (uint32_t u = 0; u < g->units; u++) r->stack[u] = g->units - 1 - u;
        r->n_stack = g->units;
        if (g->poll == 0) continue;
        /* units start asleep (idle since time 0, no poll under way) */
        r->ustate = calloc(g->units, 1);
        if (!r->ustate) goto nomem;
        for (uint32_t u = 0; u < g->units; u++) r->ustate[u] = U_IDLE;
        r->poll = (uint64_t)g->poll;
        r->poll_cat = g->poll_category;
        r->poll_base = poll_next;
        for (uint32_t u = 0; u < g->units; u++) s->poll_owner[poll_next + u] = i;
        poll_next += g->units;
    }
    /* group qclasses by resource (counting sort keeps their order) */
    for (uint32_t i = 0; i < m->n_resources; i++) s->res[i].top_preempt = INT32_MIN; /* none preempts */
    for (uint32_t i = 0; i < m->n_qclasses; i++) s->res[m->qclasses[i].resource].q_count++;
    for (uint32_t i = 0, acc = 0; i < m->n_resources; i++) {
        s->res[i].q_first = acc;
        s->res[i].nz = s->nz + acc;
        s->res[i].park = s->park + acc;
        acc += s->res[i].q_count;
        s->res[i].q_count = 0;
    }
    for (uint32_t i = 0; i < m->n_qclasses; i++) {
        qclass *q = &s->qc[i];
        q->head = q->tail = NIL;
        q->resource = m->qclasses[i].resource;
        q->priority = m->qclasses[i].priority;
        q->batch = m->qclasses[i].batch;
        q->gap = (uint64_t)m->qclasses[i].gap;
        q->preempt = m->qclasses[i].preempt != 0;
        q->ahead = q->atail = NIL;
        resource *r = &s->res[q->resource];
        if (q->preempt && (!r->preemptive || q->priority > r->top_preempt)) r->top_preempt = q->priority;
        if (q->preempt) r->preemptive = 1;
        s->res_q[r->q_first + r->q_count++] = i;
    }
    /* each resource's in order of priority, lowest first (make_room stops at its level) */
    if (m->n_qclasses > 1) {
        qorder *ord = malloc((size_t)m->n_qclasses * sizeof *ord);
        if (!ord) goto nomem;
        for (uint32_t i = 0; i < m->n_qclasses; i++) ord[i] = (qorder){s->qc[s->res_q[i]].priority, s->res_q[i], 0};
        for (uint32_t i = 0; i < m->n_resources; i++)
            qsort(ord + s->res[i].q_first, s->res[i].q_count, sizeof *ord, qorder_cmp);
        for (uint32_t i = 0; i < m->n_qclasses; i++) s->res_q[i] = ord[i].index;
        free(ord);
    }
    for (uint32_t i = 0; i < m->n_stages; i++) {
        const vemu_stage_spec *g = &m->stages[i];
        stage *t = &s->st[i];
        t->qclass = g->qclass;
        t->lanes = g->lanes > 1 ? g->lanes : 1;
        t->resource = g->qclass >= 0 ? m->qclasses[g->qclass].resource : NIL;
        t->category = g->category;
        sampler_init(&t->work, &g->work);
        sampler_init(&t->delay, &g->delay);
        sampler_init(&t->bytes, &g->bytes);
        t->tag = mix64(g->tag); /* mixed, so that tags may be small numbers */
        t->bytes_tag = mix64(g->bytes_tag ^ T_BYTES);
        t->per_byte_ps = g->per_byte_ps;
        t->paged = g->per_page_ps > 0;
        t->per_page_ps = g->per_page_ps;
        t->page_bytes = g->page_bytes;
        t->unpaged_bytes = g->unpaged_bytes;
        t->draw_bytes = g->draw_bytes;
        t->fork = g->fork;
        t->has_delay = g->qclass < 0 || g->delay.mean > 0;
        t->throttled = g->qclass >= 0 && m->qclasses[g->qclass].gap > 0;
        t->slow = t->throttled || (g->qclass >= 0 && m->resources[m->qclasses[g->qclass].resource].n_idle > 0);
        t->batching = g->qclass >= 0 && m->qclasses[g->qclass].batch > 1;
        t->preempts = g->qclass >= 0 && s->qc[g->qclass].preempt;
        t->preemptive = g->qclass >= 0 && s->res[t->resource].preemptive;
    }
    for (uint32_t i = 0; i + 1 < m->n_stages; i++) {
        const vemu_stage_spec *g = &m->stages[i], *g2 = &m->stages[i + 1];
        s->st[i].chain_next = !s->st[i].has_delay && g2->qclass >= 0 &&
                              m->qclasses[g2->qclass].resource == m->qclasses[g->qclass].resource &&
                              m->qclasses[g2->qclass].batch == 1 && m->qclasses[g2->qclass].gap == 0;
    }
    memcpy(s->cls, m->classes, (size_t)m->n_classes * sizeof *s->cls);
    for (uint32_t i = 0; i < m->n_flows; i++) {
        const vemu_flow_spec *g = &m->flows[i];
        flow *f = &s->fl[i];
        f->arrival = g->arrival;
        sampler_init(&f->interarrival, &g->interarrival);
        sampler_init(&f->think, &g->think);
        f->clients = g->clients;
        f->first_class = g->first_class;
        f->n_classes = g->n_classes;
        for (uint32_t c = 0; c < g->n_classes; c++) f->weight_total += m->classes[g->first_class + c].weight;
        f->arrivals = rng_flow(seed, g->tag);
        f->key_base = mix64(f->arrivals.x ^ 0x6b65795f62617365ULL); /* apart from the arrivals' */
        f->hist = s->hist_block + (size_t)i * VEMU_HIST_BUCKETS;
    }
    /* slots are handed out in order on first use (s->fresh) and recycled through the free
     * list after: memory a run never needs is never touched, so it stays out of the RSS */
    s->free_head = NIL;
    s->fresh = 0;

    /* first arrivals: an open flow after one interarrival time, closed clients after a
     * think time each (at once when thinking takes no time) */
    for (uint32_t i = 0; i < m->n_flows; i++) {
        flow *f = &s->fl[i];
        int st;
        if (f->arrival == VEMU_ARRIVAL_OPEN) {
            st = schedule(s, to_ps(sample(&f->interarrival, &f->arrivals)), EV_ARRIVAL, i);
        } else {
            st = VEMU_OK;
            for (uint32_t c = 0; c < f->clients && st == VEMU_OK; c++)
                st = schedule(s, to_ps(sample(&f->think, &f->arrivals)), EV_ISSUE, i);
        }
        if (st < 0) {
            set_err(err, err_len, "%s", s->err);
            vemu_sim_destroy(s);
            return st;
        }
    }
    *out = s;
    return VEMU_OK;
nomem:
    vemu_sim_destroy(s);
    set_err(err, err_len, "out of memory building the sim (pool %u, %u flows)", m->pool_size, m->n_flows);
    return VEMU_ENOMEM;
}

void vemu_sim_destroy(vemu_sim *s) {
    if (!s) return;
    for (uint32_t i = 0; s->res && i < s->n_resources; i++) {
        free(s->res[i].stack);
        free(s->res[i].since);
        free(s->res[i].pred);
        free(s->res[i].ustate);
    }
    free(s->poll_owner);
    free(s->idle_exit);
    free(s->idle_res);
    free(s->idle_wakeups);
    free(s->res);
    free(s->qc);
    free(s->res_q);
    free(s->nz);
    free(s->park);
    free(s->split);
    free(s->st);
    free(s->cls);
    free(s->class_completed);
    free(s->class_lat_sum);
    free(s->class_lat_max);
    free(s->class_hist);
    free(s->fl);
    free(s->busy);
    free(s->busy_area);
    free(s->busy_last);
    free(s->heap);
    free(s->req);
    free(s->hist_block);
    free(s->trace);
    free(s->trace_wake);
    free(s);
}

/* ---------------------------------------------------------------- running */

/* A service on preemptive `rs` has just begun while it could not be preempted (its unit
 * was waking from an idle state, or it was out of the running while a request it forked
 * arrived): requests that came meanwhile to preempt it do so now, and a suspended service
 * of higher priority takes its unit back, highest priority first. */
static __attribute__((noinline, cold)) int preempt_waiting(vemu_sim *s, resource *rs) {
    while (rs->waiting || rs->susp != NIL) {
        int32_t top = INT32_MIN;
        int any = 0;
        unpark_due(s, rs);
        for (uint32_t k = 0; rs->waiting && k < rs->n_nz; k++) {
            const qclass *qc = &s->qc[rs->nz[k]];
            if (qc->preempt && !qc_closed(qc, s->now) && (!any || qc->priority > top)) {
                top = qc->priority;
                any = 1;
            }
        }
        if (rs->susp != NIL && (!any || head_priority(s, rs->susp) >= top)) {
            /* a suspended service above the service just begun takes that unit back; the
             * unit then goes as any free unit does (dispatch): to a queued request that
             * outranks the suspended service, if one waits, as a scheduler runs the highest
             * runnable task once a preemption frees a core (resume() here served the
             * suspended one first, past a higher queued request) */
            int rc = make_room(s, rs, head_priority(s, rs->susp));
            if (rc < 0 || rs->free == 0) return rc;
            rc = dispatch(s, rs);
            if (rc < 0) return rc;
            continue;
        }
        if (!any) return VEMU_OK;
        int rc = make_room(s, rs, top);
        if (rc < 0 || rs->free == 0) return rc;
        rc = dispatch(s, rs);
        if (rc < 0) return rc;
    }
    return VEMU_OK;
}

/* EV_WAKE: a unit is awake and the service proper begins (its length waited in svc_end);
 * the wake-up counts as its requests' wait. */
static __attribute__((noinline, cold)) int on_wake(vemu_sim *s, uint32_t head) {
    request *h = &s->req[head];
    const stage *g = &s->st[h->stage];
    if (held_of(g, h) == 0) /* not a suspended service resuming */
        for (uint32_t ri = head; ri != NIL; ri = s->req[ri].next) s->req[ri].start = s->now;
    busy_change(s, g->resource, s->res[g->resource].wake_cat, -1);
    busy_change(s, g->resource, g->category, +1);
    int rc = svc_schedule(s, g, head, h->svc_end);
    if (rc < 0 || !g->preemptive) return rc;
    return preempt_waiting(s, &s->res[g->resource]);
}

int vemu_sim_run(vemu_sim *s, int64_t until, uint64_t max_events) {
    if (!s) return VEMU_EINVAL;
    if (s->failed) return VEMU_ESTATE;
    if (until < 0 || (uint64_t)until < s->now) { /* a bad argument: the sim itself is intact */
        snprintf(s->err, sizeof s->err, "run until %lld ps is before now", (long long)until);
        return VEMU_EINVAL;
    }
    if (until >= VEMU_TIME_MAX) { /* the time of events that never come */
        snprintf(s->err, sizeof s->err, "run until %lld ps: must be below VEMU_TIME_MAX", (long long)until);
        return VEMU_EINVAL;
    }
    uint64_t limit = (uint64_t)until, done = 0;
    while (s->heap_len > 0 && s->heap[0].t <= limit) {
        if (done >= max_events) return VEMU_MORE;
        if (s->heap[0].t != s->now)
            s->same_since = s->events;
        else if (__builtin_expect(s->events - s->same_since >= s->stall_at, 0))
            return VEMU_STALL; /* counted across calls: where it stops is the same whatever max_events */
        event e = s->heap[0];
        heap_pop(s);
        s->now = e.t;
        done++;
        s->events++;
        int rc;
        switch (e.kind) {
        case EV_ARRIVAL: {
            flow *f = &s->fl[e.ref];
            rc = schedule(s, to_ps(sample(&f->interarrival, &f->arrivals)), EV_ARRIVAL, e.ref);
            if (rc >= 0) rc = issue(s, e.ref);
            break;
        }
        case EV_ISSUE:
            rc = issue(s, e.ref);
            break;
        case EV_SERVICE:
            if (__builtin_expect(s->stale != 0, 0) && s->req[e.ref].svc_seq != e.seq) { /* a preempted service's old end */
                s->stale--;
                s->events--; /* not an event: a sweep of a full queue may have removed it unpopped */
                rc = VEMU_OK;
                break;
            }
            rc = on_service(s, e.ref);
            break;
        case EV_GATE: { /* a throttle's gap has passed with requests waiting */
            qclass *qc = &s->qc[e.ref];
            resource *rs = &s->res[qc->resource];
            qc->gate_pending = 0;
            /* while a unit is free, serve: the resource's best first, which is another qclass
             * when one of higher priority is open too (its own gate due at this instant), and
             * then this one; with no unit free a preempting qclass takes one from a lower
             * priority, else the next free unit takes them */
            rc = VEMU_OK;
            while (rc >= 0 && qc->len > 0 && !qc_closed(qc, s->now)) {
                if (rs->free == 0) {
                    if (!qc->preempt) break;
                    rc = make_room(s, rs, qc->priority);
                    if (rc < 0 || rs->free == 0) break;
                }
                /* (the unit may go to an open qclass above this one: then round again) */
                rc = gate_flush(s, e.ref);
            }
            /* a service begun at this instant before this event (an arrival that found the
             * gap just open) closed the gap again, and its gate_arm saw this event still
             * pending: arm the gate anew, or those waiting would wait for the next arrival */
            if (rc >= 0) rc = gate_arm(s, e.ref);
            break;
        }
        default: /* EV_DELAY, or EV_WAKE or EV_POLL_END (kept out of the switch's cases: a
                    sixth case costs tandem-3 ~2% in dispatch) */
            rc = __builtin_expect(e.kind == EV_DELAY, 1) ? stage_leave(s, e.ref)
                 : e.kind == EV_WAKE                      ? on_wake(s, e.ref)
                                                          : on_poll_end(s, e.ref);
            break;
        }
        if (rc < 0) {
            s->failed = rc;
            return rc;
        }
    }
    if (limit != s->now) s->same_since = s->events;
    s->now = limit;
    return VEMU_OK;
}

int vemu_sim_set_stall_limit(vemu_sim *s, uint64_t n) {
    if (!s) return VEMU_EINVAL;
    s->stall_at = n ? n : UINT64_MAX; /* one compare per event in the loop, not two */
    return VEMU_OK;
}

int vemu_sim_reset_stats(vemu_sim *s) {
    if (!s) return VEMU_EINVAL;
    s->window_start = s->now;
    for (uint32_t i = 0; i < s->n_flows; i++) {
        flow *f = &s->fl[i];
        f->created = f->completed = f->dropped = f->lat_max = 0;
        f->lat_sum = f->in_flight_area = 0;
        f->in_flight_last = s->now;
    }
    memset(s->hist_block, 0, (size_t)s->n_flows * VEMU_HIST_BUCKETS * sizeof *s->hist_block);
    memset(s->class_completed, 0, (size_t)s->n_classes * sizeof *s->class_completed);
    memset(s->class_lat_sum, 0, (size_t)s->n_classes * sizeof *s->class_lat_sum);
    memset(s->class_lat_max, 0, (size_t)s->n_classes * sizeof *s->class_lat_max);
    if (s->class_hist) memset(s->class_hist, 0, (size_t)s->n_classes * VEMU_HIST_BUCKETS * sizeof *s->class_hist);
    for (uint32_t i = 0; i < s->n_resources; i++) {
        resource *r = &s->res[i];
        r->queue_area = 0;
        r->queue_last = s->now;
        r->served = r->dropped = r->wakeups = r->preemptions = 0;
        r->max_queue = r->waiting;
    }
    memset(s->idle_wakeups, 0, (size_t)s->n_idle_states * sizeof *s->idle_wakeups);
    size_t rc = (size_t)s->n_resources * s->n_categories;
    for (size_t k = 0; k < rc; k++) {
        s->busy_area[k] = 0;
        s->busy_last[k] = s->now;
    }
    for (uint32_t i = 0; i < s->n_stages; i++) {
        s->st[i].completed = s->st[i].served = 0;
        s->st[i].wait_sum = s->st[i].service_sum = s->st[i].held_sum = 0;
    }
    return VEMU_OK;
}

int vemu_sim_stats(const vemu_sim *s, vemu_stats *o) {
    if (!s || !o) return VEMU_EINVAL;
    uint64_t now = s->now;
    for (uint32_t i = 0; i < s->n_flows; i++) {
        const flow *f = &s->fl[i];
        if (o->flow_created) o->flow_created[i] = f->created;
        if (o->flow_completed) o->flow_completed[i] = f->completed;
        if (o->flow_dropped) o->flow_dropped[i] = f->dropped;
        if (o->flow_in_flight) o->flow_in_flight[i] = f->in_flight;
        if (o->flow_latency_sum) o->flow_latency_sum[i] = f->lat_sum;
        if (o->flow_latency_max) o->flow_latency_max[i] = f->lat_max;
        if (o->flow_in_flight_area)
            o->flow_in_flight_area[i] = f->in_flight_area + (double)f->in_flight * (double)(now - f->in_flight_last);
    }
    if (o->flow_hist)
        memcpy(o->flow_hist, s->hist_block, (size_t)s->n_flows * VEMU_HIST_BUCKETS * sizeof *s->hist_block);
    if (o->class_completed) memcpy(o->class_completed, s->class_completed, (size_t)s->n_classes * sizeof(uint64_t));
    if (o->class_latency_sum) memcpy(o->class_latency_sum, s->class_lat_sum, (size_t)s->n_classes * sizeof(double));
    if (o->class_latency_max) memcpy(o->class_latency_max, s->class_lat_max, (size_t)s->n_classes * sizeof(uint64_t));
    if (o->class_hist) {
        size_t nb = (size_t)s->n_classes * VEMU_HIST_BUCKETS * sizeof(uint64_t);
        if (s->class_hist)
            memcpy(o->class_hist, s->class_hist, nb);
        else
            memset(o->class_hist, 0, nb);
    }
    for (uint32_t i = 0; i < s->n_resources; i++) {
        const resource *r = &s->res[i];
        if (o->resource_queue_area)
            o->resource_queue_area[i] = r->queue_area + (double)r->waiting * (double)(now - r->queue_last);
        if (o->resource_served) o->resource_served[i] = r->served;
        if (o->resource_dropped) o->resource_dropped[i] = r->dropped;
        if (o->resource_max_queue) o->resource_max_queue[i] = r->max_queue;
        if (o->resource_wakeups) o->resource_wakeups[i] = r->wakeups;
        if (o->resource_preemptions) o->resource_preemptions[i] = r->preemptions;
    }
    if (o->idle_state_wakeups)
        memcpy(o->idle_state_wakeups, s->idle_wakeups, (size_t)s->n_idle_states * sizeof *s->idle_wakeups);
    if (o->resource_busy_area) {
        size_t rc = (size_t)s->n_resources * s->n_categories;
        for (size_t k = 0; k < rc; k++)
            o->resource_busy_area[k] = s->busy_area[k] + (double)s->busy[k] * (double)(now - s->busy_last[k]);
        for (uint32_t i = 0; i < s->n_resources; i++) {
            const resource *r = &s->res[i];
            if (r->share == 0) continue;
            double *area = o->resource_busy_area + (size_t)i * s->n_categories;
            double moved = area[r->share_from] * r->share;
            area[r->share_from] -= moved;
            area[r->share_to] += moved;
        }
    }
    for (uint32_t i = 0; i < s->n_stages; i++) {
        if (o->stage_completed) o->stage_completed[i] = s->st[i].completed;
        if (o->stage_wait_sum) o->stage_wait_sum[i] = s->st[i].wait_sum;
        if (o->stage_service_sum) o->stage_service_sum[i] = s->st[i].service_sum;
        if (o->stage_served) o->stage_served[i] = s->st[i].served;
        if (o->stage_preempted_sum) o->stage_preempted_sum[i] = s->st[i].held_sum;
    }
    return VEMU_OK;
}

int64_t vemu_sim_now(const vemu_sim *s) { return s ? (int64_t)s->now : 0; }
int64_t vemu_sim_window_start(const vemu_sim *s) { return s ? (int64_t)s->window_start : 0; }
uint64_t vemu_sim_events(const vemu_sim *s) { return s ? s->events : 0; }
uint32_t vemu_sim_in_flight(const vemu_sim *s) { return s ? s->in_flight : 0; }

uint32_t vemu_sim_trace(const vemu_sim *s, vemu_trace_record *out, uint32_t max, uint64_t *lost) {
    if (!s) return 0;
    if (lost) *lost = s->trace_lost;
    if (out) memcpy(out, s->trace, (size_t)(max < s->trace_len ? max : s->trace_len) * sizeof *out);
    return s->trace_len;
}

int vemu_dist_sample(const vemu_dist *d, uint64_t seed, double *out, uint64_t n) {
    if (!d || (!out && n)) return VEMU_EINVAL;
    if (!check_dist(d, "dist", 0, 0, NULL, 0)) return VEMU_EINVAL;
    zig_ensure();
    sampler sp;
    sampler_init(&sp, d);
    rng r = {mix64(seed)};
    for (uint64_t i = 0; i < n; i++) out[i] = sample(&sp, &r);
    return VEMU_OK;
}

const char *vemu_sim_error(const vemu_sim *s) { return s ? s->err : "no sim"; }

const char *vemu_strerror(int status) {
    switch (status) {
    case VEMU_OK:
        return "ok";
    case VEMU_MORE:
        return "stopped at max_events";
    case VEMU_STALL:
        return "stopped: the clock has not moved for stall_limit events";
    case VEMU_EINVAL:
        return "invalid model or argument";
    case VEMU_ENOMEM:
        return "out of memory";
    case VEMU_EFULL:
        return "request pool exhausted";
    case VEMU_ERANGE:
        return "simulated time out of range";
    case VEMU_ESTATE:
        return "sim failed earlier";
    default:
        return "unknown status";
    }
}
