#!/usr/bin/env bash
# The data-parallel checks (tests/distributed.rs) under mpirun with 2 and 3 ranks, then one
# process. Needs an MPI library (Debian: openmpi-bin libopenmpi-dev) and libclang-dev.
# As root, Open MPI wants OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo test --release --features mpi --test distributed --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "distributed":
        print(m["executable"])')
for n in 2 3; do
  echo "== mpirun -np $n"
  timeout 600 mpirun -np "$n" --oversubscribe "$bin"
done
echo "== one process"
"$bin"
