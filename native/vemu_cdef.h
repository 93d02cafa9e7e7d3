/* The subset of vemu.h that cffi sees. Constants are `...`: the compiler fills them in
 * from vemu.h, so Python never retypes a C number. Keep in step with vemu.h. */
#define VEMU_OK ...
#define VEMU_MORE ...
#define VEMU_STALL ...
#define VEMU_EINVAL ...
#define VEMU_ENOMEM ...
#define VEMU_EFULL ...
#define VEMU_ERANGE ...
#define VEMU_ESTATE ...
#define VEMU_DIST_FIXED ...
#define VEMU_DIST_EXP ...
#define VEMU_DIST_LOGNORMAL ...
#define VEMU_DIST_UNIFORM ...
#define VEMU_ARRIVAL_OPEN ...
#define VEMU_ARRIVAL_CLOSED ...
#define VEMU_TIME_MAX ...
#define VEMU_NO_PARENT ...
#define VEMU_MAX_RESOURCES ...
#define VEMU_MAX_STAGES ...
#define VEMU_MAX_FLOWS ...
#define VEMU_MAX_CATEGORIES ...
#define VEMU_MAX_UNITS ...
#define VEMU_MAX_BATCH ...
#define VEMU_MAX_GAP ...
#define VEMU_MAX_IDLE ...
#define VEMU_MAX_IDLE_STATES ...
#define VEMU_MAX_CLASS_HIST ...
#define VEMU_MAX_IDLE_UNITS ...
#define VEMU_MAX_POOL ...
#define VEMU_MAX_TRACE ...
#define VEMU_HIST_SUB_BITS ...
#define VEMU_HIST_BUCKETS ...
static const double VEMU_MAX_MEAN;
static const double VEMU_MAX_BYTES;
static const char *const VEMU_VERSION;

typedef struct { int32_t kind; double mean; double cv; } vemu_dist;
typedef struct {
    uint32_t units; int64_t capacity; uint32_t idle_first; uint32_t n_idle; uint32_t wake_category;
    int64_t poll; uint32_t poll_category; uint32_t share_from; uint32_t share_to; double share;
} vemu_resource_spec;
typedef struct { int64_t exit; int64_t residency; } vemu_idle_state;
typedef struct { uint32_t resource; int32_t priority; uint32_t batch; int64_t gap; uint32_t preempt; } vemu_qclass_spec;
typedef struct {
    int32_t qclass; uint32_t category; vemu_dist work; double per_byte_ps; vemu_dist delay;
    int32_t draw_bytes; vemu_dist bytes; uint32_t fork;
    double per_page_ps; double page_bytes; double unpaged_bytes; uint64_t tag; uint64_t bytes_tag;
    uint32_t lanes;
} vemu_stage_spec;
typedef struct { uint32_t first_stage; uint32_t n_stages; double weight; } vemu_class_spec;
typedef struct {
    int32_t arrival; vemu_dist interarrival; uint32_t clients; vemu_dist think;
    uint32_t first_class; uint32_t n_classes; uint64_t tag;
} vemu_flow_spec;
typedef struct {
    uint32_t n_resources, n_qclasses, n_stages, n_classes, n_flows, n_categories;
    const vemu_resource_spec *resources;
    const vemu_qclass_spec *qclasses;
    const vemu_stage_spec *stages;
    const vemu_class_spec *classes;
    const vemu_flow_spec *flows;
    uint32_t pool_size;
    uint32_t trace_requests;
    uint32_t trace_capacity;
    uint32_t n_idle_states;
    const vemu_idle_state *idle_states;
    uint32_t class_histograms;
} vemu_model;
typedef struct {
    uint64_t request; uint32_t flow; uint32_t stage; int32_t dropped; uint32_t batch;
    uint64_t enter; uint64_t start; uint64_t end; uint64_t leave; uint64_t wake; uint64_t parent;
    uint64_t preempted;
} vemu_trace_record;
typedef struct {
    uint64_t *flow_created; uint64_t *flow_completed; uint64_t *flow_dropped;
    uint64_t *flow_in_flight; double *flow_latency_sum; uint64_t *flow_latency_max;
    double *flow_in_flight_area; uint64_t *flow_hist; uint64_t *class_completed;
    double *resource_busy_area; double *resource_queue_area; uint64_t *resource_served;
    uint64_t *resource_dropped; uint64_t *resource_max_queue;
    uint64_t *stage_completed; double *stage_wait_sum; double *stage_service_sum;
    uint64_t *stage_served;
    uint64_t *resource_wakeups;
    uint64_t *resource_preemptions;
    double *stage_preempted_sum;
    double *class_latency_sum; uint64_t *class_latency_max; uint64_t *class_hist;
    uint64_t *idle_state_wakeups;
} vemu_stats;
typedef struct vemu_sim vemu_sim;

int vemu_sim_create(const vemu_model *m, uint64_t seed, vemu_sim **out, char *err, size_t err_len);
void vemu_sim_destroy(vemu_sim *s);
int vemu_sim_run(vemu_sim *s, int64_t until, uint64_t max_events);
int vemu_sim_set_stall_limit(vemu_sim *s, uint64_t n);
int vemu_sim_reset_stats(vemu_sim *s);
int vemu_sim_stats(const vemu_sim *s, vemu_stats *out);
int64_t vemu_sim_now(const vemu_sim *s);
int64_t vemu_sim_window_start(const vemu_sim *s);
uint64_t vemu_sim_events(const vemu_sim *s);
uint32_t vemu_sim_in_flight(const vemu_sim *s);
uint32_t vemu_sim_trace(const vemu_sim *s, vemu_trace_record *out, uint32_t max, uint64_t *lost);
int vemu_dist_sample(const vemu_dist *d, uint64_t seed, double *out, uint64_t n);
const char *vemu_sim_error(const vemu_sim *s);
const char *vemu_strerror(int status);
uint32_t vemu_hist_index(uint64_t v);
uint64_t vemu_hist_lower(uint32_t index);
uint64_t vemu_hist_width(uint32_t index);
