/* libFuzzer harness for the public C API of vemu (vemu.h / vemu_cdef.h).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -Inative fuzz/vemu_fuzz.c -lm -o fuzz/vemu_fuzz
 *   fuzz/vemu_fuzz -max_total_time=1800 -timeout=10 -rss_limit_mb=2048 fuzz/corpus
 *
 * It #includes vemu.c so that it can also check white-box invariants after each API call
 * (busy counters never wrap, heap within capacity, stats finite and bounded by elapsed
 * time). Build with -DREPLAY to get a main() that runs files given on the command line
 * without libFuzzer (for gcc + sanitizers).
 */
#ifdef WITH_INVARIANTS
/* native/invariants.c (which includes vemu.c) supplies check(): its white-box invariants
 * run after every single event */
#define main invariants_main
#include "../native/invariants.c"
#undef main
#else
#include "../native/vemu.c"
#endif

#include <float.h>
#include <limits.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} rd;

static uint8_t u8(rd *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}
static uint64_t raw64(rd *r) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | u8(r);
    return v;
}
static uint32_t raw32(rd *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | u8(r);
    return v;
}

/* an index usually in 0..n-1, sometimes out of range */
static uint32_t idx(rd *r, uint32_t n) {
    uint8_t b = u8(r);
    if (b < 240) return n ? b % n : 0;
    switch (b & 7) {
    case 0: return n;
    case 1: return UINT32_MAX;
    case 2: return n + 1;
    case 3: return (uint32_t)INT32_MAX;
    case 4: return (uint32_t)INT32_MAX + 1u;
    default: return raw32(r);
    }
}

static double dbl(rd *r, double typical) {
    uint8_t b = u8(r);
    if (b < 160) return typical * (double)(b % 40) / 10.0;
    switch (b % 24) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return NAN;
    case 3: return INFINITY;
    case 4: return -INFINITY;
    case 5: return -1.0;
    case 6: return 1e18;
    case 7: return nextafter(1e18, 2e18);
    case 8: return 5e-324;
    case 9: return 1e-300;
    case 10: return DBL_MAX;
    case 11: return 0.3;
    case 12: return 0.49999999;
    case 13: return 0.5;
    case 14: return 4294967295.0;
    case 15: return 4294967296.0;
    case 16: return 1e9;
    case 17: return 1e15;
    case 18: return 0.5773502691896258;
    case 19: return 1e6;
    case 20: return 1e12;
    case 21: return 9.2e18;
    case 22: return (double)(raw32(r) % 100000) * 1000.0;
    default: {
        uint64_t v = raw64(r);
        double d;
        memcpy(&d, &v, sizeof d);
        return d;
    }
    }
}

static int64_t i64(rd *r, int64_t typical) {
    uint8_t b = u8(r);
    if (b < 160) return typical * (int64_t)(b % 20) / 4;
    switch (b % 14) {
    case 0: return 0;
    case 1: return -1;
    case 2: return INT64_MAX;
    case 3: return INT64_MIN;
    case 4: return VEMU_MAX_GAP;
    case 5: return VEMU_MAX_GAP + 1;
    case 6: return VEMU_MAX_GAP - 1;
    case 7: return 1;
    case 8: return INT64_MAX - 1;
    case 9: return (int64_t)(raw32(r) % 1000000);
    default: return (int64_t)raw64(r);
    }
}

static uint32_t small_u32(rd *r, uint32_t lo, uint32_t hi) {
    uint8_t b = u8(r);
    if (b < 248) return lo + b % (hi - lo + 1);
    switch (b & 7) {
    case 0: return 0;
    case 1: return UINT32_MAX;
    case 2: return hi + 1;
    case 3: return VEMU_MAX_BATCH;
    case 4: return VEMU_MAX_BATCH + 1;
    default: return raw32(r);
    }
}

static uint32_t md(uint32_t a, uint32_t b) { return b ? a % b : 0; }

static void fdist(rd *r, vemu_dist *d, double typical) {
    uint8_t b = u8(r);
    d->kind = b < 250 ? b % 4 : (int32_t)raw32(r);
    d->mean = dbl(r, typical);
    d->cv = dbl(r, 0.25);
}

#define CHECK(c, ...)                                                                                  \
    do {                                                                                               \
        if (!(c)) {                                                                                    \
            fprintf(stderr, "INVARIANT %s:%d: %s: ", __FILE__, __LINE__, #c);                          \
            fprintf(stderr, __VA_ARGS__);                                                              \
            fputc('\n', stderr);                                                                       \
            abort();                                                                                   \
        }                                                                                              \
    } while (0)

static const vemu_model *M; /* the model of the sim under test */

static void whitebox(const vemu_sim *s) {
#ifdef WITH_INVARIANTS
    int small = 1;
    for (uint32_t r = 0; r < s->n_resources; r++) small &= s->res[r].units <= 32;
    /* check() counts wake-ups and polling by category: it needs those categories apart from
     * each other and from the stages' on that resource */
    for (uint32_t r = 0; r < s->n_resources && small; r++) {
        const resource *rs = &s->res[r];
        if (!rs->n_idle) continue;
        if (rs->poll && rs->poll_cat == rs->wake_cat) small = 0;
        for (uint32_t g = 0; g < s->n_stages; g++)
            if (s->st[g].qclass >= 0 && s->st[g].resource == r &&
                (s->st[g].category == rs->wake_cat || (rs->poll && s->st[g].category == rs->poll_cat)))
                small = 0;
    }
    if (small && !s->failed && check((vemu_sim *)s, 0) != 0) abort();
#endif
    CHECK(s->heap_len <= s->heap_cap, "heap %u > cap %u", s->heap_len, s->heap_cap);
    CHECK(s->in_flight <= s->pool_size, "in flight %u > pool %u", s->in_flight, s->pool_size);
    for (uint32_t r = 0; r < s->n_resources; r++) {
        const resource *rs = &s->res[r];
        CHECK(rs->free <= rs->units, "resource %u: free %u > units %u", r, rs->free, rs->units);
        uint64_t tot = 0;
        for (uint32_t c = 0; c < s->n_categories; c++) {
            uint32_t b = s->busy[(size_t)r * s->n_categories + c];
            CHECK(b <= rs->units, "resource %u cat %u: busy %u > units %u", r, c, b, rs->units);
            tot += b;
        }
        CHECK(tot <= rs->units, "resource %u: busy total %llu > units %u", r, (unsigned long long)tot, rs->units);
        if (rs->capacity >= 0 && !s->failed) {
            /* waiting may exceed capacity only transiently? it should never */
            CHECK(rs->waiting <= (uint64_t)rs->capacity + 0, "resource %u: waiting %llu > capacity %lld", r,
                  (unsigned long long)rs->waiting, (long long)rs->capacity);
        }
    }
}

static void check_stats(const vemu_sim *s) {
    uint32_t nf = s->n_flows, nc = s->n_classes, nr = s->n_resources, ns = s->n_stages, ncat = s->n_categories;
    vemu_stats o;
    memset(&o, 0, sizeof o);
    o.flow_created = malloc(nf * 8);
    o.flow_completed = malloc(nf * 8);
    o.flow_dropped = malloc(nf * 8);
    o.flow_in_flight = malloc(nf * 8);
    o.flow_latency_sum = malloc(nf * 8);
    o.flow_latency_max = malloc(nf * 8);
    o.flow_in_flight_area = malloc(nf * 8);
    o.flow_hist = malloc((size_t)nf * VEMU_HIST_BUCKETS * 8);
    o.class_completed = malloc(nc * 8);
    o.resource_busy_area = malloc((size_t)nr * ncat * 8 + 1);
    o.resource_queue_area = malloc(nr * 8 + 1);
    o.resource_served = malloc(nr * 8 + 1);
    o.resource_dropped = malloc(nr * 8 + 1);
    o.resource_max_queue = malloc(nr * 8 + 1);
    o.stage_completed = malloc(ns * 8);
    o.stage_wait_sum = malloc(ns * 8);
    o.stage_service_sum = malloc(ns * 8);
    o.stage_served = malloc(ns * 8);
    o.resource_wakeups = malloc(nr * 8 + 1);
    o.resource_preemptions = malloc(nr * 8 + 1);
    o.stage_preempted_sum = malloc(ns * 8);
    o.idle_state_wakeups = malloc((size_t)s->n_idle_states * 8 + 1);
    int rc = vemu_sim_stats(s, &o);
    CHECK(rc == VEMU_OK, "stats rc %d", rc);
    double el = (double)(s->now - s->window_start);
    double tol = 1e-6 * (el + 1) + 1;
    for (uint32_t i = 0; i < nf; i++) {
        CHECK(isfinite(o.flow_latency_sum[i]) && o.flow_latency_sum[i] >= 0, "flow %u lat sum %g", i,
              o.flow_latency_sum[i]);
        CHECK(isfinite(o.flow_in_flight_area[i]) && o.flow_in_flight_area[i] >= 0, "flow %u area %g", i,
              o.flow_in_flight_area[i]);
        CHECK(o.flow_in_flight_area[i] <= (double)s->pool_size * el * (1 + 1e-9) + tol, "flow %u area %g > pool*el %g",
              i, o.flow_in_flight_area[i], (double)s->pool_size * el);
        CHECK(o.flow_latency_max[i] <= s->now, "flow %u lat max %llu > now %llu", i,
              (unsigned long long)o.flow_latency_max[i], (unsigned long long)s->now);
        CHECK(o.flow_in_flight[i] <= s->pool_size, "flow %u in flight %llu", i, (unsigned long long)o.flow_in_flight[i]);
        uint64_t hs = 0;
        for (uint32_t b = 0; b < VEMU_HIST_BUCKETS; b++) hs += o.flow_hist[(size_t)i * VEMU_HIST_BUCKETS + b];
        CHECK(hs == o.flow_completed[i], "flow %u hist %llu != completed %llu", i, (unsigned long long)hs,
              (unsigned long long)o.flow_completed[i]);
    }
    for (uint32_t r = 0; r < nr; r++) {
        double tot = 0;
        for (uint32_t c = 0; c < ncat; c++) {
            double a = o.resource_busy_area[(size_t)r * ncat + c];
            CHECK(isfinite(a) && a >= 0, "res %u cat %u busy area %g", r, c, a);
            tot += a;
        }
        CHECK(tot <= (double)s->res[r].units * el * (1 + 1e-9) + tol, "res %u busy area %g > units*elapsed %g", r, tot,
              (double)s->res[r].units * el);
        CHECK(isfinite(o.resource_queue_area[r]) && o.resource_queue_area[r] >= 0, "res %u queue area %g", r,
              o.resource_queue_area[r]);
        uint64_t by_state = 0; /* the wake-ups counted by the state they left sum to the resource's */
        for (uint32_t k = 0; k < s->res[r].n_idle; k++) by_state += o.idle_state_wakeups[s->res[r].idle_first + k];
        CHECK(by_state == o.resource_wakeups[r], "res %u wake-ups by state %llu != %llu", r,
              (unsigned long long)by_state, (unsigned long long)o.resource_wakeups[r]);
    }
    for (uint32_t g = 0; g < ns; g++) {
        double lim = (double)o.stage_completed[g] * (double)s->now * (1 + 1e-9) + tol;
        CHECK(isfinite(o.stage_wait_sum[g]) && o.stage_wait_sum[g] >= 0 && o.stage_wait_sum[g] <= lim,
              "stage %u wait sum %g (completed %llu, now %llu)", g, o.stage_wait_sum[g],
              (unsigned long long)o.stage_completed[g], (unsigned long long)s->now);
        CHECK(isfinite(o.stage_service_sum[g]) && o.stage_service_sum[g] >= 0 && o.stage_service_sum[g] <= lim,
              "stage %u service sum %g (completed %llu, now %llu)", g, o.stage_service_sum[g],
              (unsigned long long)o.stage_completed[g], (unsigned long long)s->now);
        CHECK(isfinite(o.stage_preempted_sum[g]) && o.stage_preempted_sum[g] >= 0 && o.stage_preempted_sum[g] <= lim,
              "stage %u preempted sum %g", g, o.stage_preempted_sum[g]);
    }
    void **pp = (void **)&o;
    for (size_t k = 0; k < sizeof o / sizeof(void *); k++) free(pp[k]);
    /* NULL arrays must be fine too */
    memset(&o, 0, sizeof o);
    CHECK(vemu_sim_stats(s, &o) == VEMU_OK, "stats with NULLs");
}

static void check_trace(const vemu_sim *s, rd *r) {
    uint64_t lost = 0;
    uint32_t n = vemu_sim_trace(s, NULL, 0, &lost);
    uint32_t max = u8(r) & 1 ? n : (u8(r) % (n + 2));
    vemu_trace_record *t = malloc(((size_t)(max < n ? max : n) + 1) * sizeof *t);
    uint32_t n2 = vemu_sim_trace(s, t, max < n ? max : n, NULL);
    CHECK(n2 == n, "trace count changed");
    for (uint32_t i = 0; i < (max < n ? max : n); i++) {
        vemu_trace_record *x = &t[i];
        CHECK(x->stage < s->n_stages && x->flow < s->n_flows, "trace %u: stage %u flow %u", i, x->stage, x->flow);
        CHECK(x->enter <= x->start && x->start <= x->end && x->end <= x->leave && x->leave <= s->now,
              "trace %u: enter %llu start %llu end %llu leave %llu now %llu", i, (unsigned long long)x->enter,
              (unsigned long long)x->start, (unsigned long long)x->end, (unsigned long long)x->leave,
              (unsigned long long)s->now);
        CHECK(x->preempted <= x->end - x->start, "trace %u preempted %llu > end-start", i,
              (unsigned long long)x->preempted);
    }
    free(t);
}

static void api_misc(rd *r) {
    /* histogram arithmetic */
    uint64_t v = raw64(r) >> (u8(r) & 63);
    uint32_t i = vemu_hist_index(v);
    CHECK(i < VEMU_HIST_BUCKETS, "hist index %u of %llu", i, (unsigned long long)v);
    uint64_t lo = vemu_hist_lower(i), w = vemu_hist_width(i);
    CHECK(lo <= v && (v - lo) < w, "hist %llu in bucket %u [%llu, +%llu)", (unsigned long long)v, i,
          (unsigned long long)lo, (unsigned long long)w);
    uint32_t j = raw32(r);
    (void)vemu_hist_lower(j);
    (void)vemu_hist_width(j);
    CHECK(vemu_strerror((int)raw32(r)) != NULL, "strerror NULL");
    CHECK(vemu_strerror((int)(u8(r) % 10) - 6) != NULL, "strerror NULL");
    {
        char e[32];
        CHECK(vemu_sim_create(NULL, 0, NULL, e, sizeof e) == VEMU_EINVAL && e[0], "NULL out");
    }
    CHECK(vemu_sim_error(NULL) != NULL, "error NULL");
    /* samplers */
    vemu_dist d;
    fdist(r, &d, 1000);
    uint64_t n = u8(r) % 64;
    double out[64];
    int rc = vemu_dist_sample(&d, raw64(r), out, n);
    if (rc == VEMU_OK)
        for (uint64_t k = 0; k < n; k++)
            CHECK(!isnan(out[k]) && (out[k] >= 0 || (d.kind == VEMU_DIST_UNIFORM && out[k] >= -1e-12 * d.mean - 1e-300)), "dist kind %d mean %g cv %g: sample %g", d.kind, d.mean, d.cv,
                  out[k]);
    CHECK(vemu_dist_sample(NULL, 0, out, 1) == VEMU_EINVAL, "NULL dist");
    CHECK(vemu_dist_sample(&d, 0, NULL, 1) == VEMU_EINVAL, "NULL out");
    /* NULL sims */
    CHECK(vemu_sim_run(NULL, 0, 0) == VEMU_EINVAL, "run NULL");
    CHECK(vemu_sim_set_stall_limit(NULL, 1) == VEMU_EINVAL, "stall NULL");
    CHECK(vemu_sim_reset_stats(NULL) == VEMU_EINVAL, "reset NULL");
    CHECK(vemu_sim_stats(NULL, NULL) == VEMU_EINVAL, "stats NULL");
    (void)vemu_sim_now(NULL);
    (void)vemu_sim_events(NULL);
    (void)vemu_sim_in_flight(NULL);
    (void)vemu_sim_window_start(NULL);
    CHECK(vemu_sim_trace(NULL, NULL, 5, NULL) == 0, "trace NULL");
    vemu_sim_destroy(NULL);
}


static void dump_dist(const char *n, const vemu_dist *d) { fprintf(stderr, " %s={%d,%.17g,%.17g}", n, d->kind, d->mean, d->cv); }
static void dump_model(const vemu_model *m, uint64_t seed) {
    fprintf(stderr, "seed %llu pool %u trace %u/%u cats %u\n", (unsigned long long)seed, m->pool_size, m->trace_requests, m->trace_capacity, m->n_categories);
    for (uint32_t i = 0; i < m->n_idle_states; i++) fprintf(stderr, "idle %u: exit %lld res %lld\n", i, (long long)m->idle_states[i].exit, (long long)m->idle_states[i].residency);
    for (uint32_t i = 0; i < m->n_resources; i++) { const vemu_resource_spec *r = &m->resources[i]; fprintf(stderr, "res %u: units %u cap %lld idle %u+%u wake %u poll %lld pollcat %u share %u->%u %.17g\n", i, r->units, (long long)r->capacity, r->idle_first, r->n_idle, r->wake_category, (long long)r->poll, r->poll_category, r->share_from, r->share_to, r->share); }
    for (uint32_t i = 0; i < m->n_qclasses; i++) { const vemu_qclass_spec *q = &m->qclasses[i]; fprintf(stderr, "qc %u: res %u prio %d batch %u gap %lld preempt %u\n", i, q->resource, q->priority, q->batch, (long long)q->gap, q->preempt); }
    for (uint32_t i = 0; i < m->n_stages; i++) { const vemu_stage_spec *g = &m->stages[i]; fprintf(stderr, "stage %u: qc %d cat %u", i, g->qclass, g->category); dump_dist("work", &g->work); fprintf(stderr, " pb %.17g", g->per_byte_ps); dump_dist("delay", &g->delay); fprintf(stderr, " draw %d", g->draw_bytes); dump_dist("bytes", &g->bytes); fprintf(stderr, " fork %u page %.17g/%.17g/%.17g tag %llu/%llu lanes %u\n", g->fork, g->per_page_ps, g->page_bytes, g->unpaged_bytes, (unsigned long long)g->tag, (unsigned long long)g->bytes_tag, g->lanes); }
    for (uint32_t i = 0; i < m->n_classes; i++) fprintf(stderr, "class %u: %u+%u w %.17g\n", i, m->classes[i].first_stage, m->classes[i].n_stages, m->classes[i].weight);
    for (uint32_t i = 0; i < m->n_flows; i++) { const vemu_flow_spec *f = &m->flows[i]; fprintf(stderr, "flow %u: arrival %d", i, f->arrival); dump_dist("ia", &f->interarrival); fprintf(stderr, " clients %u", f->clients); dump_dist("think", &f->think); fprintf(stderr, " classes %u+%u tag %llu\n", f->first_class, f->n_classes, (unsigned long long)f->tag); }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd R = {data, size}, *r = &R;
    api_misc(r);
    vemu_model m;
    memset(&m, 0, sizeof m);
    m.n_resources = u8(r) % 4;
    m.n_qclasses = u8(r) % 6;
    m.n_stages = 1 + u8(r) % 7;
    m.n_classes = 1 + u8(r) % 4;
    m.n_flows = 1 + u8(r) % 3;
    m.n_categories = 1 + u8(r) % 4;
    m.n_idle_states = u8(r) % 6;
    uint8_t flags = u8(r);
    m.class_histograms = flags == 254 ? 7u : (flags >> 1) & 1u; /* (7: refused) */
    if (flags == 255) { /* rare: raw counts (validation only) */
        m.n_resources = raw32(r);
        m.n_qclasses = raw32(r);
        m.n_stages = raw32(r);
        m.n_classes = raw32(r);
        m.n_flows = raw32(r);
        m.n_categories = raw32(r);
        m.n_idle_states = raw32(r);
    }
    uint32_t cap = 8;
    vemu_resource_spec res[8];
    vemu_qclass_spec qcs[8];
    vemu_stage_spec sts[8];
    vemu_class_spec cls[8];
    vemu_flow_spec fls[8];
    vemu_idle_state ids[8];
    memset(res, 0, sizeof res);
    memset(qcs, 0, sizeof qcs);
    memset(sts, 0, sizeof sts);
    memset(cls, 0, sizeof cls);
    memset(fls, 0, sizeof fls);
    memset(ids, 0, sizeof ids);
    uint32_t nr = m.n_resources < cap ? m.n_resources : cap, nq = m.n_qclasses < cap ? m.n_qclasses : cap;
    uint32_t ns = m.n_stages < cap ? m.n_stages : cap, nc = m.n_classes < cap ? m.n_classes : cap;
    uint32_t nf = m.n_flows < cap ? m.n_flows : cap, ni = m.n_idle_states < cap ? m.n_idle_states : cap;
    for (uint32_t i = 0; i < ni; i++) {
        ids[i].exit = i64(r, 1000);
        ids[i].residency = i64(r, 2000 * (i + 1));
    }
    for (uint32_t i = 0; i < nr; i++) {
        res[i].units = small_u32(r, 1, 4);
        uint8_t b = u8(r);
        res[i].capacity = b < 128 ? -1 : b < 240 ? (int64_t)(b % 6) : i64(r, 3);
        uint8_t c = u8(r);
        if (c < 128 && ni) {
            res[i].idle_first = idx(r, ni);
            res[i].n_idle = small_u32(r, 1, ni - (res[i].idle_first < ni ? res[i].idle_first : 0));
        } else if (c > 250) {
            res[i].idle_first = raw32(r);
            res[i].n_idle = raw32(r);
        }
        res[i].wake_category = idx(r, m.n_categories);
        res[i].poll = u8(r) < 128 ? 0 : i64(r, 500);
        res[i].poll_category = idx(r, m.n_categories);
        uint8_t sh = u8(r); /* a reported accounting share: mostly none, some valid, a few raw */
        if (sh >= 200) {
            res[i].share_from = sh >= 250 ? raw32(r) : idx(r, m.n_categories);
            res[i].share_to = sh >= 250 ? raw32(r) : idx(r, m.n_categories);
            res[i].share = sh >= 245 ? dbl(r, 0.5) : (double)(sh - 200) / 50.0;
        }
    }
    for (uint32_t i = 0; i < nq; i++) {
        qcs[i].resource = idx(r, m.n_resources);
        qcs[i].priority = (int32_t)(u8(r) < 250 ? (int32_t)(u8(r) % 4) - 1 : (int32_t)raw32(r));
        qcs[i].batch = small_u32(r, 1, 4);
        qcs[i].gap = u8(r) < 160 ? 0 : i64(r, 300);
        uint8_t p = u8(r);
        qcs[i].preempt = p < 160 ? 0 : p < 250 ? 1 : p;
    }
    for (uint32_t i = 0; i < ns; i++) {
        vemu_stage_spec *g = &sts[i];
        uint8_t q = u8(r);
        g->qclass = q < 40 ? -1 : q < 250 ? (int32_t)(m.n_qclasses ? q % m.n_qclasses : 0) : (int32_t)raw32(r);
        g->category = idx(r, m.n_categories);
        fdist(r, &g->work, 100);
        g->per_byte_ps = u8(r) < 128 ? 0 : dbl(r, 1);
        fdist(r, &g->delay, u8(r) < 128 ? 0 : 100);
        uint8_t db = u8(r);
        g->draw_bytes = db < 128 ? 0 : db < 250 ? 1 : (int32_t)raw32(r);
        fdist(r, &g->bytes, 1500);
        uint8_t fk = u8(r);
        g->fork = fk < 200 ? 0 : fk < 250 ? 1 + md(fk, m.n_classes) : raw32(r);
        if (u8(r) < 200) {
            g->per_page_ps = 0;
        } else {
            g->per_page_ps = dbl(r, 100);
            g->page_bytes = dbl(r, 4096);
            g->unpaged_bytes = dbl(r, 100);
        }
        uint8_t t = u8(r);
        g->tag = t < 250 ? i : raw64(r);
        g->bytes_tag = t < 250 ? 100 + i : raw64(r);
        uint8_t ln = u8(r); /* lanes: none, a few (valid where the qclasses agree), or any */
        g->lanes = ln < 200 ? 0 : ln < 250 ? 2 + ln % 3 : raw32(r);
    }
    for (uint32_t i = 0; i < nc; i++) {
        uint8_t b = u8(r);
        if (b < 250) {
            cls[i].first_stage = md(b, m.n_stages);
            cls[i].n_stages = 1 + md(u8(r), m.n_stages - cls[i].first_stage);
        } else {
            cls[i].first_stage = idx(r, m.n_stages);
            cls[i].n_stages = raw32(r);
        }
        cls[i].weight = u8(r) < 200 ? 1 + u8(r) % 5 : dbl(r, 1);
    }
    for (uint32_t i = 0; i < nf; i++) {
        vemu_flow_spec *f = &fls[i];
        uint8_t a = u8(r);
        f->arrival = a < 120 ? 0 : a < 250 ? 1 : (int32_t)raw32(r);
        fdist(r, &f->interarrival, 200);
        f->clients = small_u32(r, 1, 4);
        fdist(r, &f->think, u8(r) < 100 ? 0 : 200);
        uint8_t b = u8(r);
        if (b < 250) {
            f->first_class = md(b, m.n_classes);
            f->n_classes = 1 + md(u8(r), m.n_classes - f->first_class);
        } else {
            f->first_class = raw32(r);
            f->n_classes = raw32(r);
        }
        f->tag = u8(r) < 250 ? 1000 + i : raw64(r);
    }
    m.resources = res;
    m.qclasses = qcs;
    m.stages = sts;
    m.classes = cls;
    m.flows = fls;
    m.idle_states = ids;
    m.pool_size = small_u32(r, 1, 40);
    m.trace_requests = u8(r) < 128 ? 0 : small_u32(r, 0, 10);
    m.trace_capacity = small_u32(r, 0, 30);
    /* keep allocations small: values above the engine's limits still test its checks */
    if (m.pool_size > 100000 && m.pool_size <= VEMU_MAX_POOL) m.pool_size = 100000;
    if (m.trace_capacity > 100000 && m.trace_capacity <= VEMU_MAX_TRACE) m.trace_capacity = 100000;
    /* the arrays hold 8 entries: counts beyond must be caught by validation before any read,
     * except that validation reads the arrays; keep counts within the arrays */
    if (m.n_resources > cap || m.n_qclasses > cap || m.n_stages > cap || m.n_classes > cap || m.n_flows > cap ||
        m.n_idle_states > cap) {
        /* only exercise the cheap count checks: reads beyond 8 would be the harness's fault */
        if (!(m.n_resources > VEMU_MAX_RESOURCES || m.n_qclasses > VEMU_MAX_STAGES || m.n_stages > VEMU_MAX_STAGES ||
              m.n_stages == 0 || m.n_classes == 0 || m.n_classes > VEMU_MAX_STAGES || m.n_flows == 0 ||
              m.n_flows > VEMU_MAX_FLOWS || m.n_categories == 0 || m.n_categories > VEMU_MAX_CATEGORIES))
            return 0;
    }
    uint8_t nulls = u8(r);
    if (nulls == 251) m.resources = NULL;
    if (nulls == 252) m.stages = NULL;
    if (nulls == 253) m.idle_states = NULL;
    if (nulls == 254) m.qclasses = NULL;
    vemu_sim *s = (vemu_sim *)1;
    char err[64];
    size_t errlen = u8(r) < 250 ? sizeof err : u8(r) % 3;
    uint8_t nullm = u8(r);
    uint64_t seed = raw64(r);
    int rc = vemu_sim_create(nullm == 255 ? NULL : &m, seed, &s, err, errlen);
    if (rc == VEMU_OK && getenv("VEMU_FUZZ_DUMP")) dump_model(&m, seed);
    if (rc != VEMU_OK) {
        CHECK(rc < 0 && s == NULL, "create rc %d s %p", rc, (void *)s);
        if (errlen > 1) CHECK(err[0] != 0 && memchr(err, 0, errlen), "no message"); else if (errlen == 1) CHECK(err[0] == 0, "len1");
        return 0;
    }
    M = &m;
    CHECK(vemu_sim_now(s) == 0, "now");
    int dead = 0;
    int64_t until = 0;
    for (int op = 0; op < 24 && R.n; op++) {
        uint8_t k = u8(r) % 12;
        switch (k) {
        case 0:
        case 1:
        case 2:
        case 3: { /* run a little */
            int64_t step = u8(r) < 230 ? (int64_t)(u8(r) * 37) : i64(r, 1000000);
            int64_t u = step > 0 && until <= INT64_MAX - step ? until + step : step;
            uint64_t maxev = 1 + u8(r) * 8;
            int64_t before = vemu_sim_now(s);
            if (getenv("VEMU_FUZZ_DUMP")) fprintf(stderr, "op run until %lld max %llu\n", (long long)u, (unsigned long long)maxev);
            uint64_t ev0 = vemu_sim_events(s);
#ifdef WITH_INVARIANTS
            rc = VEMU_MORE;
            for (uint64_t e = 0; e < maxev && rc == VEMU_MORE; e++) {
                rc = vemu_sim_run(s, u, 1);
                if (rc == VEMU_MORE) whitebox(s);
            }
            if (rc == VEMU_MORE) until = vemu_sim_now(s);
            if (rc == VEMU_OK || rc == VEMU_MORE) maxev = UINT64_MAX; /* stepped: skip the count check */
#else
            rc = vemu_sim_run(s, u, maxev);
#endif
            CHECK(vemu_sim_error(s) != NULL, "err");
            if (dead) CHECK(rc == VEMU_ESTATE, "run after failure gave %d", rc);
            if (rc < 0 && rc != VEMU_EINVAL) dead = 1;
            if (rc == VEMU_EINVAL) CHECK(vemu_sim_now(s) == before, "EINVAL moved the clock");
            if (rc == VEMU_OK) {
                CHECK(vemu_sim_now(s) == u, "OK but now %lld != until %lld", (long long)vemu_sim_now(s), (long long)u);
                until = u;
            }
            if (rc >= 0) CHECK(vemu_sim_events(s) - ev0 <= maxev, "more events than max");
            if (rc == VEMU_MORE || rc == VEMU_STALL) until = vemu_sim_now(s);
            CHECK(rc == VEMU_OK || rc == VEMU_MORE || rc == VEMU_STALL || rc == VEMU_EINVAL || rc == VEMU_EFULL ||
                      rc == VEMU_ESTATE,
                  "run rc %d: %s", rc, vemu_sim_error(s));
            break;
        }
        case 4:
            vemu_sim_set_stall_limit(s, u8(r) < 200 ? u8(r) : raw64(r));
            break;
        case 5:
            vemu_sim_reset_stats(s);
            CHECK(vemu_sim_window_start(s) == vemu_sim_now(s), "window");
            break;
        case 6:
        case 7:
            check_stats(s);
            break;
        case 8:
            check_trace(s, r);
            break;
        case 9: { /* far runs: near the clock's end */
            int64_t u = INT64_MAX - (int64_t)(u8(r) % 4);
            rc = vemu_sim_run(s, u, 1 + u8(r));
            if (u >= INT64_MAX) CHECK(rc == VEMU_EINVAL || rc == VEMU_ESTATE, "until TIME_MAX rc %d", rc);
            if (rc < 0 && rc != VEMU_EINVAL) dead = 1;
            if (rc == VEMU_OK) until = u;
            if (rc == VEMU_MORE || rc == VEMU_STALL) until = vemu_sim_now(s);
            break;
        }
        case 10:
            rc = vemu_sim_run(s, -1 - (int64_t)u8(r), 10);
            CHECK(rc == VEMU_EINVAL || rc == VEMU_ESTATE, "negative until rc %d", rc);
            break;
        default:
            (void)vemu_sim_in_flight(s);
            break;
        }
        if (!dead) whitebox(s);
    }
    check_stats(s);
    vemu_sim_destroy(s);
    return 0;
}

#ifdef REPLAY
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) continue;
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
    }
    return 0;
}
#endif
