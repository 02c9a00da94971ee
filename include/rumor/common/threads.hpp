#pragma once
// Thread limits: every peer uses one compute thread by default (peers share the cores).

namespace rumor {

// Limits OpenBLAS/OpenMP threads of this process to n. Call before heavy BLAS work;
// also sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS for child processes.
void limit_blas_threads(int n);

}  // namespace rumor
