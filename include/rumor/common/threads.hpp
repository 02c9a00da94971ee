#pragma once
// Thread limits: every peer uses one compute thread by default (peers share the cores).

namespace rumor {

// Limits OpenBLAS/OpenMP threads of this process to n. Call before heavy BLAS work;
// also sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS for child processes.
void limit_blas_threads(int n);

// Stops OpenBLAS's worker threads, as its own fork handler does (they start again when BLAS
// is next used): a process about to fork counts its threads without them.
void stop_blas_threads();

}  // namespace rumor
