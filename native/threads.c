/* The engine under ThreadSanitizer: its one piece of shared state, the ziggurat tables
 * built on first use, taken by several threads at once (Python releases the GIL in C
 * calls, so two threads' first simulations can meet there), and each thread's draws the
 * same bits as one thread alone. scripts/sanitize.sh builds it with -fsanitize=thread;
 * exit 0 clean, 1 on a mismatch (a race is TSan's report and exit status).
 *
 *   gcc -std=c11 -O1 -g -fsanitize=thread -Inative native/threads.c -lm -o threads && ./threads */
#include "vemu.c"

#include <pthread.h>

#define THREADS 8
#define DRAWS 4096

static double got[THREADS][DRAWS];

static void *draw(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    vemu_dist d = {VEMU_DIST_EXP, 1.0, 0.0};
    return vemu_dist_sample(&d, 1000 + i, got[i], DRAWS) == VEMU_OK ? NULL : arg;
}

int main(void) {
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, draw, (void *)i) != 0) return 1;
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        bad |= rc != NULL;
    }
    double want[DRAWS];
    vemu_dist d = {VEMU_DIST_EXP, 1.0, 0.0};
    for (int i = 0; i < THREADS && !bad; i++) {
        bad |= vemu_dist_sample(&d, 1000 + (uint64_t)i, want, DRAWS) != VEMU_OK;
        bad |= memcmp(want, got[i], sizeof want) != 0;
    }
    printf("threads: %d threads x %d exponential draws on first use: %s\n", THREADS, DRAWS, bad ? "MISMATCH" : "same bits");
    return bad;
}
