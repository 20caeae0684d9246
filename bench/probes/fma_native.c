// Native FMA peak of this CPU: a development-time measurement for the lavapipe floor analysis
// (bench/results/2026-12-06-cpu-floor-lavapipe.md), not part of the build or of any test.
// Each thread runs ACC independent vector fma chains (enough to cover the fma latency on both
// pipes), so the loop is bound by fma throughput. FLOPs = threads x trips x ACC x lanes x 2.
//
//   gcc -O2 -mavx2 -mfma -pthread bench/probes/fma_native.c -o /tmp/fma && /tmp/fma 2
//   gcc -O2 -mavx2 -mfma -DLLVMPIPE_MIX=1 -ffp-contract=off -pthread bench/probes/fma_native.c -o /tmp/fmamix && /tmp/fmamix 2
//   gcc -O2 -mavx512f -mfma -DWIDE=512 -pthread bench/probes/fma_native.c -o /tmp/fma512 && /tmp/fma512 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef WIDE
#define WIDE 256
#endif
#define ACC 12
#define TRIPS 200000000L

// LLVMPIPE_MIX=1 (256-bit only): each fma written as llvmpipe compiles WGSL fma() in a loop
// (separate mul and add, then a blend with the execution mask), to read its ceiling natively.
#ifndef LLVMPIPE_MIX
#define LLVMPIPE_MIX 0
#endif

#if WIDE == 512
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
#if LLVMPIPE_MIX
#undef FMA
#define FMA(x, y, z) _mm256_blendv_ps(x, _mm256_add_ps(_mm256_mul_ps(x, y), z), mask)
#endif
#endif

static long trips = TRIPS;
static float sink[64];

static void *run(void *arg) {
  float seed = (float)(size_t)arg * 0.001f;
  vec acc[ACC];
  for (int i = 0; i < ACC; i++) acc[i] = SET1(seed + 0.01f * i);
  const vec a = SET1(0.999f), b = SET1(0.001f);
#if LLVMPIPE_MIX
  volatile int all = -1; /* opaque: the blend is not folded away */
  const vec mask = _mm256_castsi256_ps(_mm256_set1_epi32(all));
#endif
  for (long t = 0; t < trips; t++) {
    // Written out so the compiler keeps ACC independent chains in registers.
    acc[0] = FMA(acc[0], a, b); acc[1] = FMA(acc[1], a, b); acc[2] = FMA(acc[2], a, b);
    acc[3] = FMA(acc[3], a, b); acc[4] = FMA(acc[4], a, b); acc[5] = FMA(acc[5], a, b);
    acc[6] = FMA(acc[6], a, b); acc[7] = FMA(acc[7], a, b); acc[8] = FMA(acc[8], a, b);
    acc[9] = FMA(acc[9], a, b); acc[10] = FMA(acc[10], a, b); acc[11] = FMA(acc[11], a, b);
  }
  vec s = acc[0];
  for (int i = 1; i < ACC; i++) s = ADD(s, acc[i]);
  float out[LANES];
  STORE(out, s);
  sink[(size_t)arg % 64] = out[0];
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (argc > 2) trips = atol(argv[2]);
  pthread_t th[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, run, (void *)(size_t)i);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  double flops = (double)threads * trips * ACC * LANES * 2;
  printf("%d-bit %s, %d thread(s): %.1f GFLOP/s (%.2f s, check %g)\n", WIDE, LLVMPIPE_MIX ? "mul+add+blend" : "fma", threads, flops / s / 1e9, s, sink[0]);
  return 0;
}
