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

echo "== train_mnist --distributed on 2 processes = one process on the combined batch"
cargo build --release --features mpi --example train_mnist 2>/dev/null
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
# 512 training and 128 test images of 28x28: a bright square whose corner gives the label
python3 - "$data" <<'PY'
import gzip, random, struct, sys
random.seed(1)
def write(prefix, n):
    imgs, labels = bytearray(), bytearray()
    for _ in range(n):
        label = random.randrange(4)
        img = bytearray(28 * 28)
        oy, ox = (label // 2) * 14, (label % 2) * 14
        for y in range(oy + 2, oy + 12):
            for x in range(ox + 2, ox + 12):
                img[y * 28 + x] = random.randrange(128, 256)
        imgs += img
        labels.append(label)
    with gzip.open(f"{sys.argv[1]}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + imgs)
    with gzip.open(f"{sys.argv[1]}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels)
write("train", 512)
write("t10k", 128)
PY
flags=(--data "$data" --device cpu --epochs 2 --seed 4)
one=$(./target/release/examples/train_mnist "${flags[@]}" --batch-size 32 | grep -E "^epoch|^test")
two=$(mpirun -np 2 --oversubscribe ./target/release/examples/train_mnist --distributed "${flags[@]}" --batch-size 16 | grep -E "^epoch|^test")
printf '%s\n--\n%s\n' "$one" "$two"
python3 - "$one" "$two" <<'PY'
import re, sys
def nums(text):
    # the numbers of each line but its timing
    return [[float(v) for v in re.findall(r"\d+\.?\d*", re.sub(r", [\d.]+ s \(.*", "", line))]
            for line in text.splitlines()]
a, b = nums(sys.argv[1]), nums(sys.argv[2])
assert len(a) == len(b) == 3, (a, b)
for x, y in zip(a, b):
    assert len(x) == len(y) and all(abs(p - q) <= 2e-3 + 5e-3 * abs(q) for p, q in zip(x, y)), (x, y)
print("the same lines, up to float rounding")
PY
