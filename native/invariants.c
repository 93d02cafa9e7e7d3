/* White-box invariants of the engine's units, idle states and halt-polling, checked after
 * every event of thousands of random small models (it includes vemu.c to see the state).
 *
 *   gcc -std=c11 -O1 -Inative native/invariants.c -lm -o /tmp/invariants && /tmp/invariants 1000
 *
 * run by tests/test_idle.py and, under ASan and UBSan, by scripts/sanitize.sh. Exit 0 and
 * "ok N" when every check held; otherwise 1 and the first broken invariant on stderr.
 * After every event, for every resource:
 *   - units in service = pending EV_SERVICE + EV_WAKE events of its stages = units - free;
 *   - busy counts: stage categories = pending services, wake = pending wake-ups, poll =
 *     polling units, none wrapped;
 *   - (idle states) the idle stack holds exactly the free units, disjoint from the units in
 *     service, ordered by when they went idle (last idle on top); its wake-ups counted by
 *     state sum to its wake-ups;
 *   - (halt-polling) at most one EV_POLL_END per unit, pending exactly when its bit says so,
 *     due no later than the end of its poll; a polling unit is idle and within its poll;
 *   - the event heap stays within the capacity fixed at creation;
 *   - (no batches) each resource's busy time is its stages' service time: finished (left,
 *     or in the delay after), in progress and suspended;
 *   - (preemption) the stale ends of preempted services in the heap number s->stale, and a
 *     preemptive resource's services in progress are exactly its pending (live) EV_SERVICE
 *     events; its suspended services are none of them, hold no unit, are listed highest
 *     priority first, and outrank none of its services in progress; no unit is free while a
 *     service is suspended; and no request waits to preempt (behind an open throttle, if
 *     any, whose gate is not due at this very instant) while a service of lower priority
 *     is in progress (other than one ending at this very instant);
 *   - (queues) with a unit free, every qclass with requests waiting is a throttle whose gap
 *     is closed or whose gate is due at this very instant ("with a unit free, every open
 *     qclass is empty"), and a throttle with requests behind a closed gap has its gate
 *     armed: at most one EV_GATE pending per qclass, exactly when its bit says so.
 */
#include "vemu.c"

/* The random models' shape; a second configuration (tests/test_idle.py, scripts/sanitize.sh)
 * widens it: -DUMAX=8 -DQX=5 -DPR=5 -DGP=2 -DPP=2 (more units, qclasses, priority levels,
 * throttles and preempting qclasses) */
#ifndef UMAX
#define UMAX 4 /* units per resource, at most 32 (check() keeps 64 slots) */
#endif
#ifndef QX
#define QX 3 /* qclasses beyond one per resource, fewer than 13 */
#endif
#ifndef PR
#define PR 3 /* priority levels */
#endif
#ifndef GP
#define GP 4 /* 1 in GP qclasses is throttled */
#endif
#ifndef PP
#define PP 3 /* 1 in PP qclasses preempts */
#endif

static uint64_t X = 88172645463325252ULL;
static uint64_t rnd(void) { X ^= X << 13; X ^= X >> 7; X ^= X << 17; return X; }
static uint32_t ri(uint32_t n) { return (uint32_t)(rnd() % n); }
#define CHK(c, ...)                                                                                     \
    do {                                                                                                \
        if (!(c)) {                                                                                     \
            fprintf(stderr, "seed %llu event %llu t=%llu: ", (unsigned long long)seed,                  \
                    (unsigned long long)s->events, (unsigned long long)s->now);                         \
            fprintf(stderr, __VA_ARGS__);                                                               \
            fprintf(stderr, "\n");                                                                      \
            return 1;                                                                                   \
        }                                                                                               \
    } while (0)

/* A throttle's gate that pops at this very instant (its gap just passed): it will serve. */
static int gate_due_now(const vemu_sim *s, uint32_t q) {
    for (uint32_t i = 0; i < s->heap_len; i++)
        if (s->heap[i].kind == EV_GATE && s->heap[i].ref == q && s->heap[i].t == s->now) return 1;
    return 0;
}

static int check(vemu_sim *s, uint64_t seed) {
    uint32_t NR = s->n_resources;
    for (uint32_t r = 0; r < NR; r++) {
        resource *rs = &s->res[r];
        uint32_t U = rs->units;
        uint32_t svc = 0, wake = 0;
        static uint8_t held_units[64]; /* the models here have at most UMAX <= 32 units per resource */
        uint8_t *held = held_units;
        memset(held, 0, sizeof held_units);
        for (uint32_t i = 0; i < s->heap_len; i++) {
            event *e = &s->heap[i];
            if (ev_stale(s, e)) continue;
            if (e->kind == EV_SERVICE || e->kind == EV_WAKE) {
                request *h = &s->req[e->ref];
                if (s->st[h->stage].resource != r) continue;
                if (e->kind == EV_SERVICE) svc++; else wake++;
                if (rs->n_idle) { CHK(h->unit < U, "bad unit %u", h->unit); CHK(!held[h->unit], "unit %u held twice", h->unit); held[h->unit]=1; }
            }
        }
        CHK(svc + wake == U - rs->free, "r%u: in service %u+%u but units-free=%u", r, svc, wake, U - rs->free);
        if (rs->preemptive) {
            CHK(rs->n_act == svc, "r%u: %u services in progress counted, %u pending", r, rs->n_act, svc);
            int32_t lo_act = INT32_MAX; /* the lowest priority in progress, bar services ending now */
            uint32_t listed = 0;
            for (uint32_t q0 = 0; q0 < s->n_qclasses; q0++) {
              if (s->qc[q0].resource != r) continue;
              uint32_t prevh = NIL;
              for (uint32_t h = s->qc[q0].ahead; h != NIL; prevh = h, h = s->req[h].anext) {
                CHK(++listed <= svc, "r%u: more services listed than pending", r);
                CHK(s->req[h].aprev == prevh && stage_q(s, &s->req[h], s->req[h].stage) == q0, "r%u q%u: list links", r, q0);
                CHK(s->req[h].svc_seq != UINT64_MAX, "r%u: a suspended service listed in progress", r);
                CHK(prevh == NIL || s->req[prevh].svc_seq < s->req[h].svc_seq, "r%u q%u: list out of order", r, q0);
                int32_t p = head_priority(s, h);
                if (p < lo_act && s->req[h].due > s->now) lo_act = p;
                for (uint32_t q = 0; q < s->n_qclasses; q++)
                    if (s->qc[q].resource == r && s->qc[q].preempt && s->qc[q].len > 0 && !qc_closed(&s->qc[q], s->now) &&
                        !gate_due_now(s, q))
                        CHK(p >= s->qc[q].priority || s->req[h].due <= s->now,
                            "r%u: q%u (priority %d) waits to preempt while a priority %d service runs", r, q,
                            s->qc[q].priority, p);
              }
              CHK(s->qc[q0].atail == prevh, "r%u q%u: list tail", r, q0);
            }
            CHK(listed == svc, "r%u: %u services listed, %u pending", r, listed, svc);
            CHK(rs->susp == NIL || rs->free == 0, "r%u: a unit free while a service is suspended", r);
            int32_t prev = INT32_MAX;
            uint32_t n = 0;
            for (uint32_t h = rs->susp; h != NIL; h = s->req[h].snext) {
                CHK(++n <= s->pool_size, "r%u: suspended list loops", r);
                int32_t p = head_priority(s, h);
                CHK(p <= prev, "r%u: suspended list out of priority order", r);
                CHK(p <= lo_act, "r%u: a suspended priority %d service outranks one in progress (%d)", r, p, lo_act);
                CHK(s->req[h].svc_seq == UINT64_MAX && s->st[s->req[h].stage].resource == r, "r%u: suspended head %u live", r, h);
                prev = p;
            }
        } else {
            CHK(rs->susp == NIL, "r%u: suspended services on a resource that does not preempt", r);
        }
        uint32_t stagebusy = 0;
        for (uint32_t c = 0; c < s->n_categories; c++) {
            uint32_t b = s->busy[(size_t)r*s->n_categories + c];
            CHK(b <= 1000000, "r%u cat %u busy wrapped %u", r, c, b);
            if (rs->n_idle && c == rs->wake_cat) continue;
            if (rs->poll && c == rs->poll_cat) continue;
            stagebusy += b;
        }
        CHK(stagebusy == svc, "r%u stage busy %u != services %u", r, stagebusy, svc);
        if (rs->n_idle) {
            CHK(s->busy[(size_t)r*s->n_categories + rs->wake_cat] == wake, "r%u wake busy %u != wakes %u", r, s->busy[(size_t)r*s->n_categories + rs->wake_cat], wake);
            CHK(rs->n_stack == rs->free, "r%u n_stack %u free %u", r, rs->n_stack, rs->free);
            uint64_t by_state = 0;
            for (uint32_t k = 0; k < rs->n_idle; k++) by_state += s->idle_wakeups[rs->idle_first + k];
            CHK(by_state == rs->wakeups, "r%u wake-ups by state %llu != %llu", r, (unsigned long long)by_state,
                (unsigned long long)rs->wakeups);
            for (uint32_t k = 0; k < rs->n_stack; k++) { uint32_t u = rs->stack[k]; CHK(u < U && !held[u], "r%u stack unit %u bad/held", r, u); held[u] = 2; }
            for (uint32_t u = 0; u < U; u++) CHK(held[u], "r%u unit %u lost", r, u);
            for (uint32_t k = 0; k + 1 < rs->n_stack; k++) { uint64_t a = rs->since[rs->stack[k]], b = rs->since[rs->stack[k+1]]; if (a == UINT64_MAX) a = 0; if (b == UINT64_MAX) b = 0; CHK(a <= b, "r%u stack not LIFO by since", r); }
            if (rs->poll) {
                uint32_t polling = 0;
                for (uint32_t u = 0; u < U; u++) {
                    uint8_t st = rs->ustate[u];
                    uint32_t pend = 0; uint64_t pt = 0;
                    for (uint32_t i = 0; i < s->heap_len; i++) if (s->heap[i].kind == EV_POLL_END && s->heap[i].ref == rs->poll_base + u) { pend++; pt = s->heap[i].t; }
                    CHK(pend <= 1, "r%u unit %u has %u poll ends", r, u, pend);
                    CHK((pend == 1) == !!(st & U_PENDING), "r%u unit %u pending bit %d vs %u events", r, u, st, pend);
                    if (st & U_POLLING) { polling++; CHK(held[u] == 2, "polling unit %u not idle", u); CHK(pend && pt <= rs->since[u] + rs->poll && pt >= s->now, "r%u u%u poll end at %llu, since %llu poll %llu", r, u, (unsigned long long)pt, (unsigned long long)rs->since[u], (unsigned long long)rs->poll); CHK(s->now <= rs->since[u] + rs->poll, "polling past its end");}
                    else if (held[u] == 2 && s->now > 0) CHK(s->now >= rs->since[u] + rs->poll || rs->since[u]==UINT64_MAX, "r%u u%u idle, not polling, before poll end", r, u);
                }
                CHK(s->busy[(size_t)r*s->n_categories + rs->poll_cat] == polling, "r%u poll busy %u != polling %u", r, s->busy[(size_t)r*s->n_categories + rs->poll_cat], polling);
            }
        }
    }
    for (uint32_t r = 0; r < s->n_resources; r++) {
        const resource *rs = &s->res[r];
        CHK(rs->n_nz + rs->n_park <= rs->q_count, "r%u: %u non-empty and %u parked of %u qclasses", r, rs->n_nz,
            rs->n_park, rs->q_count);
        for (uint32_t k = 1; k < rs->n_park; k++) { /* a heap by (next_ok, index) */
            uint32_t p = rs->park[(k - 1) / 2], c = rs->park[k];
            CHK(s->qc[p].next_ok < s->qc[c].next_ok || (s->qc[p].next_ok == s->qc[c].next_ok && p < c),
                "r%u: park heap order at %u", r, k);
        }
        for (uint32_t k = 0; k < rs->n_nz; k++) /* nz holds only open qclasses */
            CHK(!qc_closed(&s->qc[rs->nz[k]], s->now), "r%u: q%u on nz behind a closed gap", r, rs->nz[k]);
        for (uint32_t k = 1; k < rs->q_count; k++) /* lowest priority first */
            CHK(s->qc[s->res_q[rs->q_first + k - 1]].priority <= s->qc[s->res_q[rs->q_first + k]].priority, "r%u: res_q order", r);
    }
    for (uint32_t q = 0; q < s->n_qclasses; q++) {
        qclass *qc = &s->qc[q];
        resource *rs = &s->res[qc->resource];
        uint32_t gates = 0, gate_now = 0;
        for (uint32_t i = 0; i < s->heap_len; i++)
            if (s->heap[i].kind == EV_GATE && s->heap[i].ref == q) {
                gates++;
                gate_now |= s->heap[i].t == s->now;
            }
        CHK(gates == (uint32_t)qc->gate_pending && gates <= 1, "q%u: %u gates pending, bit %d", q, gates, qc->gate_pending);
        /* its resource's list of non-empty qclasses holds it exactly while it has requests */
        uint32_t listed = 0, parked = 0;
        for (uint32_t k = 0; k < rs->n_nz; k++) listed += rs->nz[k] == q;
        for (uint32_t k = 0; k < rs->n_park; k++) parked += rs->park[k] == q;
        CHK(parked == qc->parked && parked <= 1 && (!parked || qc->len > 0), "q%u: parked %u times, flag %u, len %llu", q,
            parked, qc->parked, (unsigned long long)qc->len);
        CHK(listed == (qc->len > 0 && !parked) && (!listed || rs->nz[qc->nz_pos] == q),
            "q%u: %u times on the non-empty list, len %llu", q, listed, (unsigned long long)qc->len);
        if (qc->len == 0) continue;
        /* (a gate due at this instant that has yet to pop is about to serve them) */
        CHK(rs->free == 0 || qc_closed(qc, s->now) || gate_now, "q%u: %llu waiting behind an open queue with %u units free",
            q, (unsigned long long)qc->len, rs->free);
        CHK(!qc_closed(qc, s->now) || qc->gate_pending, "q%u: %llu waiting behind a closed gap with no gate armed", q,
            (unsigned long long)qc->len);
    }
    /* without batches, each resource's busy time (bar waking and polling) is the service
     * time of its stages: finished services' (service_sum), those in progress so far, and
     * suspended ones' until they were suspended */
    int batching = 0;
    for (uint32_t q = 0; q < s->n_qclasses; q++) batching |= s->qc[q].batch > 1;
    for (uint32_t r = 0; r < NR && !batching && s->window_start == 0; r++) {
        const resource *rs = &s->res[r];
        double area = 0, svc = 0;
        for (uint32_t c = 0; c < s->n_categories; c++) {
            if ((rs->n_idle && c == rs->wake_cat) || (rs->poll && c == rs->poll_cat)) continue;
            size_t k = (size_t)r * s->n_categories + c;
            area += s->busy_area[k] + (double)s->busy[k] * (double)(s->now - s->busy_last[k]);
        }
        for (uint32_t g = 0; g < s->n_stages; g++)
            if (s->st[g].qclass >= 0 && s->st[g].resource == r) svc += s->st[g].service_sum;
        for (uint32_t i = 0; i < s->heap_len; i++) {
            const event *e = &s->heap[i];
            if (ev_stale(s, e) || (e->kind != EV_SERVICE && e->kind != EV_WAKE && e->kind != EV_DELAY)) continue;
            const request *h = &s->req[e->ref];
            if (s->st[h->stage].qclass < 0 || s->st[h->stage].resource != r) continue;
            uint64_t held = held_of(&s->st[h->stage], h);
            if (e->kind == EV_SERVICE) svc += (double)(s->now - h->start - held);
            /* a service over, its request in the delay after it: counted when it leaves */
            else if (e->kind == EV_DELAY) svc += (double)(h->svc_end - h->start - held);
            else if (held) svc += (double)e->t - (double)h->start - (double)held; /* resuming after a wake */
        }
        for (uint32_t h = rs->susp; h != NIL; h = s->req[h].snext)
            svc += (double)(s->req[h].susp_at - s->req[h].start - s->req[h].held);
        CHK(fabs(area - svc) <= 1e-9 * area + 0.5, "r%u: busy time %.0f ps but service time %.0f ps", r, area, svc);
    }
    CHK(s->heap_len <= s->heap_cap, "heap");
    uint64_t stale = 0;
    for (uint32_t i = 0; i < s->heap_len; i++) stale += ev_stale(s, &s->heap[i]);
    CHK(stale == s->stale, "%llu stale events in the heap, counted %llu", (unsigned long long)stale,
        (unsigned long long)s->stale);
    return 0;
}

static vemu_dist dist(int allow0){
    vemu_dist d; d.kind = ri(4); d.cv = (d.kind==3)? 0.3 : 0.5 + ri(3);
    int z = allow0 && ri(5)==0;
    d.mean = z ? 0 : (double)(1 + ri(4)) * (ri(2)? 1000 : 50);
    return d;
}

int main(int argc, char **argv){
    uint64_t n = argc > 1 ? strtoull(argv[1],0,10) : 1000;
    uint64_t first = argc > 2 ? strtoull(argv[2],0,10) : 1; /* to rerun one failing seed */
    uint64_t preemptions = 0, sweeps = 0;
    for (uint64_t seed = first; seed <= n; seed++) {
        X = seed * 0x9E3779B97F4A7C15ULL + 1;
        vemu_model m = {0};
        uint32_t NR = 1 + ri(3);
        vemu_resource_spec res[4]; vemu_idle_state ids[32]; uint32_t nid = 0;
        uint32_t ncat = 3 + 2*NR;
        for (uint32_t r = 0; r < NR; r++) {
            memset(&res[r],0,sizeof res[r]);
            res[r].units = 1 + ri(UMAX); res[r].capacity = ri(3)==0 ? (int64_t)ri(5) : -1;
            if (ri(4)) {
                res[r].idle_first = nid; res[r].n_idle = 1 + ri(3);
                int64_t resid = ri(2) ? 0 : ri(200);
                for (uint32_t k = 0; k < res[r].n_idle; k++) {
                    ids[nid].exit = ri(3)==0 ? 0 : ri(3000);
                    resid += ri(2) ? 0 : ri(3000);
                    ids[nid].residency = resid; nid++;
                }
                res[r].wake_category = 3 + 2*r;
                if (ri(2)) { res[r].poll = ri(4)==0 ? 1 : ri(5000); res[r].poll_category = 4 + 2*r; }
            }
        }
        uint32_t NQ = NR + ri(QX);
        vemu_qclass_spec qc[32];
        for (uint32_t q = 0; q < NQ; q++) { qc[q].resource = q < NR ? q : ri(NR); qc[q].priority = ri(PR); qc[q].batch = ri(2)? 1 : 1+ri(4); qc[q].gap = ri(GP)==0 ? ri(3000) : 0; qc[q].preempt = ri(PP) == 0; }
        uint32_t NS = 1 + ri(6);
        vemu_stage_spec stg[8];
        for (uint32_t i = 0; i < NS; i++) {
            memset(&stg[i],0,sizeof stg[i]);
            stg[i].tag = stg[i].bytes_tag = ri(2) ? i : 0x9e3779b97f4a7c15ULL * (i + 1); /* distinct */
            stg[i].qclass = ri(6)==0 ? -1 : (int32_t)ri(NQ);
            stg[i].category = ri(3);
            stg[i].work = dist(1);
            stg[i].delay = ri(3)==0 ? dist(1) : (vemu_dist){0,0,0};
            /* a pure-delay stage: half of them with a delay (a no-op line left them all at 0) */
            if (stg[i].qclass < 0 && stg[i].delay.mean == 0 && ri(2)) stg[i].delay = dist(1);
            if (stg[i].qclass >= 0 && ri(4) == 0 && NQ + 3 <= 32) { /* lanes: copies of its qclass */
                uint32_t L = 2 + ri(2), q0 = (uint32_t)stg[i].qclass;
                for (uint32_t k = 0; k < L; k++) qc[NQ + k] = qc[q0];
                stg[i].qclass = (int32_t)NQ; stg[i].lanes = L; NQ += L;
            }
            if (ri(4) == 0) { /* bytes drawn here, and work per page of them */
                stg[i].draw_bytes = 1; stg[i].bytes = dist(1);
                stg[i].per_page_ps = ri(2) ? 0 : 1 + ri(500);
                stg[i].page_bytes = ri(2) ? 1 : 512; stg[i].unpaged_bytes = ri(2) ? 0 : 100;
            }
        }
        vemu_class_spec cls[4]; uint32_t NC = 1 + ri(2), drawn = NC; /* flows draw classes 0..drawn-1 */
        for (uint32_t c = 0; c < NC; c++) { cls[c].first_stage = ri(NS); cls[c].n_stages = 1 + ri(NS - cls[c].first_stage); cls[c].weight = 1; }
        if (ri(3) == 0) { /* forks: stages outside one class start detached requests on a copy of it (no flow draws it) */
            uint32_t t = ri(NC);
            cls[NC++] = cls[t];
            for (uint32_t i = 0; i < NS; i++)
                if ((i < cls[t].first_stage || i >= cls[t].first_stage + cls[t].n_stages) && ri(3) == 0) stg[i].fork = drawn + 1;
        }
        vemu_flow_spec fl[2]; uint32_t NF = 1 + ri(2); uint32_t clients = 0;
        for (uint32_t f = 0; f < NF; f++) {
            memset(&fl[f],0,sizeof fl[f]);
            fl[f].arrival = ri(2); fl[f].first_class = 0; fl[f].n_classes = drawn; fl[f].tag = f;
            fl[f].interarrival = dist(0); fl[f].interarrival.mean *= 2;
            fl[f].clients = 1 + ri(5); fl[f].think = dist(1);
            if (fl[f].arrival == VEMU_ARRIVAL_CLOSED) clients += fl[f].clients;
        }
        m.n_resources = NR; m.n_qclasses = NQ; m.n_stages = NS; m.n_classes = NC; m.n_flows = NF; m.n_categories = ncat;
        m.resources = res; m.qclasses = qc; m.stages = stg; m.classes = cls; m.flows = fl;
        m.pool_size = clients + (ri(3) ? 200 : 3); /* a small pool: a small heap, swept of stale ends */ m.n_idle_states = nid; m.idle_states = ids; m.class_histograms = ri(2);
        vemu_sim *s; char err[256];
        int rc = vemu_sim_create(&m, seed, &s, err, sizeof err);
        if (rc < 0) { /* valid by construction */
            fprintf(stderr, "seed %llu create: %s\n", (unsigned long long)seed, err);
            return 1;
        }
        for (int k = 0; k < 20000; k++) {
            rc = vemu_sim_run(s, 2000000000LL, 1);
            if (rc < 0) { /* only an open flow outrunning its pool may stop a run */
                if (rc != VEMU_EFULL || strstr(s->err, "internal")) {
                    fprintf(stderr, "seed %llu run: %s\n", (unsigned long long)seed, s->err);
                    vemu_sim_destroy(s);
                    return 1;
                }
                break;
            }
            if (check(s, seed)) { vemu_sim_destroy(s); return 1; }
            if (rc == VEMU_OK) break;
        }
        for (uint32_t r = 0; r < s->n_resources; r++) preemptions += s->res[r].preemptions;
        sweeps += s->sweeps;
        vemu_sim_destroy(s);
    }
    printf("ok %llu (%llu preemptions, %llu heap sweeps)\n", (unsigned long long)n, (unsigned long long)preemptions,
           (unsigned long long)sweeps);
    return 0;
}
