//! Data-parallel training over MPI, checked under `mpirun -np N` (tools/mpi_test.sh runs 2 and
//! 3 ranks; one rank works too): collectives, the sampler's shares, DDP against one process on
//! the combined batch (without batch norm and with the synchronised one), bit-identical
//! replicas, several buckets, the mismatch errors, on the CPU and the GPU. Each check runs on
//! every rank in the same order; a failure ends the job with the check's name.

use convshade::data::{DataLoader, Dataset};
use convshade::distributed::{
    DdpOptions, DistributedDataParallel, DistributedSampler, SyncBatchNorm2d, World,
};
use convshade::nn::{BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy_labels, Adam, Conv2dOptions, CrossEntropyOptions, Device, Error,
    MaxPool2dOptions, Optimizer, Result, Tensor,
};

/// 120 images of 1x8x8 with 4 classes, the same on every rank.
fn dataset() -> Dataset {
    let n = 120;
    let x = Tensor::rand([n, 1, 8, 8], 11, &Device::cpu()).unwrap().to_vec().unwrap();
    let labels = (0..n).map(|i| (i * 7 + 1) % 4).collect();
    Dataset::new(x, [n, 1, 8, 8], labels).unwrap()
}

fn network(dev: &Device, sync_bn: bool, bn: bool) -> Sequential {
    let same = Conv2dOptions::new().padding(1);
    // no bias before batch norm: its gradient is rounding noise, which Adam would amplify
    let bias = !(sync_bn || bn);
    let mut net = Sequential::new().push(Conv2d::new(1, 6, 3, same, bias, 5, dev).unwrap());
    if sync_bn {
        net = net.push(SyncBatchNorm2d::new(6, dev).unwrap());
    } else if bn {
        net = net.push(BatchNorm2d::new(6, dev).unwrap());
    }
    net.push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2)))
        .push(Flatten)
        .push(Linear::new(6 * 16, 4, true, 6, dev).unwrap())
}

fn values(m: &dyn Module) -> Vec<(String, Vec<f32>)> {
    m.state_dict().into_iter().map(|(k, t)| (k, t.to_vec().unwrap())).collect()
}

fn close(got: &[(String, Vec<f32>)], want: &[(String, Vec<f32>)], what: &str) {
    for ((k, a), (_, b)) in got.iter().zip(want) {
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 2e-5 * scale, "{what}: {k} differs from one process by {worst}");
    }
}

/// Five steps of Adam, per-rank batch 4 through DDP, and one process on batch 4 * size.
fn ddp_matches_one_process(world: &World, dev: &Device, sync_bn: bool, bucket_bytes: usize) {
    let data = dataset();
    let (w, b) = (world.size(), 4);
    let ce = CrossEntropyOptions::default();
    let ddp = DistributedDataParallel::new(
        network(dev, sync_bn, false),
        world,
        DdpOptions { bucket_bytes },
    )
    .unwrap();
    let mut opt = Adam::new(ddp.parameters(), 1e-2).unwrap();
    let mut sampler = DistributedSampler::new(data.len(), w, world.rank()).unwrap().shuffle(3);
    sampler.set_epoch(1);
    let loader = DataLoader::new(b).unwrap().shuffle(3);
    for batch in loader.batches_of(&data, sampler.indices(), 1, dev).take(5) {
        let (x, labels) = batch.unwrap();
        let loss = cross_entropy_labels(&ddp.forward(&x).unwrap(), &labels, ce).unwrap();
        let grads = ddp.average_gradients(&loss.backward().unwrap()).unwrap();
        opt.step(&grads).unwrap();
    }
    ddp.check_replicas(world).unwrap();
    // the same five steps in one process: batch b of w * 4 is every rank's batch b together
    let one = network(dev, false, sync_bn);
    let mut opt1 = Adam::new(one.parameters(), 1e-2).unwrap();
    let loader1 = DataLoader::new(w * b).unwrap().shuffle(3);
    for batch in loader1.epoch(&data, 1, dev).take(5) {
        let (x, labels) = batch.unwrap();
        let loss = cross_entropy_labels(&one.forward(&x).unwrap(), &labels, ce).unwrap();
        opt1.step(&loss.backward().unwrap()).unwrap();
    }
    close(
        &values(&ddp),
        &values(&one),
        &format!("{} sync_bn={sync_bn} buckets={}", dev.name(), ddp.num_buckets()),
    );
}

fn check(world: &World, name: &str, f: impl FnOnce()) {
    f();
    world.barrier();
    if world.is_root() {
        println!("ok: {name} (ranks: {})", world.size());
    }
}

fn main() -> Result<()> {
    let mut world = World::init()?;
    let (w, r) = (world.size(), world.rank());
    check(&world, "collectives", || {
        let mut v = [r as f32 + 1.0, 1.0];
        world.all_reduce_sum("test", &mut v);
        assert_eq!(v, [(w * (w + 1) / 2) as f32, w as f32]);
        let mut b = [r as f32; 3];
        world.broadcast(&mut b, w - 1);
        assert_eq!(b, [(w - 1) as f32; 3]);
        assert_eq!(
            world.all_gather(&[r as u64 * 10]),
            (0..w).map(|i| vec![i as u64 * 10]).collect::<Vec<_>>()
        );
    });
    check(
        &world,
        "the sampler's shares: every sample once an epoch, batches as one process's",
        || {
            for (len, drop_last) in [(12, false), (13, false), (13, true)] {
                let mut s =
                    DistributedSampler::new(len, w, r).unwrap().shuffle(9).drop_last(drop_last);
                s.set_epoch(2);
                let mine = s.indices();
                assert_eq!(mine.len(), s.num_samples());
                let all = world.all_gather(&mine.iter().map(|&i| i as u64).collect::<Vec<_>>());
                let mut seen: Vec<u64> = all.concat();
                // rank-major gathering: position j of rank q is index j * w + q of the padded permutation
                let padded: Vec<u64> = (0..s.num_samples())
                    .flat_map(|j| (0..w).map(move |q| (j, q)))
                    .map(|(j, q)| all[q][j])
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                let want = if drop_last { len / w * w } else { len };
                assert_eq!(seen.len(), want, "len {len}, drop_last {drop_last}");
                if !drop_last {
                    let loader = DataLoader::new(1).unwrap().shuffle(9);
                    let data =
                        Dataset::new(vec![0.0; len], [len, 1, 1, 1], (0..len).collect()).unwrap();
                    let order: Vec<u64> = loader
                        .epoch(&data, 2, &Device::cpu())
                        .map(|b| b.unwrap().1[0] as u64)
                        .collect();
                    assert_eq!(&padded[..len], &order[..], "the permutation is the DataLoader's");
                }
                s.set_epoch(3);
                assert_ne!(s.indices(), mine, "set_epoch reshuffles");
            }
        },
    );
    check(&world, "DDP = one process on the combined batch (CPU)", || {
        ddp_matches_one_process(&world, &Device::cpu(), false, 25 << 20);
    });
    check(&world, "DDP with several buckets (CPU)", || {
        ddp_matches_one_process(&world, &Device::cpu(), false, 200);
    });
    check(&world, "SyncBatchNorm2d = batch norm in one process (CPU)", || {
        ddp_matches_one_process(&world, &Device::cpu(), true, 25 << 20);
    });
    match world.device("gpu") {
        Ok(gpu) if gpu.is_gpu() => {
            check(&world, "DDP and SyncBatchNorm2d on the GPU", || {
                ddp_matches_one_process(&world, &gpu, false, 1000);
                ddp_matches_one_process(&world, &gpu, true, 25 << 20);
            });
        }
        _ if std::env::var("CONVSHADE_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("no GPU adapter")
        }
        _ => eprintln!("!!! SKIPPING GPU CHECK: no GPU adapter !!!"),
    }
    if w > 1 {
        world.set_stall_timeout(std::time::Duration::from_millis(200));
        let before = world.stalls_reported();
        if r == w - 1 {
            std::thread::sleep(std::time::Duration::from_millis(1500));
        }
        let mut v = [1.0f32];
        world.all_reduce_sum("a stalled all-reduce", &mut v);
        world.set_stall_timeout(std::time::Duration::from_secs(60));
        check(&world, "a rank that stalls is reported by those waiting", || {
            assert_eq!(v[0], w as f32);
            let reported = world.stalls_reported() - before;
            assert_eq!(reported, usize::from(r != w - 1), "rank {r}");
        });
        check(&world, "differing models and plans are an Err on every rank", || {
            let dev = Device::cpu();
            let wide = if r == 1 { 5 } else { 3 };
            let net = Sequential::new().push(Linear::new(4, wide, true, 1, &dev).unwrap());
            match DistributedDataParallel::new(net, &world, DdpOptions::default()) {
                Err(Error::Distributed { msg, .. }) => assert!(msg.contains("rank 1"), "{msg}"),
                other => panic!("expected a mismatch error, got {:?}", other.err()),
            }
            let bytes = if r == 1 { 64 } else { 1 << 20 };
            let net = network(&dev, false, false);
            match DistributedDataParallel::new(net, &world, DdpOptions { bucket_bytes: bytes }) {
                Err(Error::Distributed { msg, .. }) => assert!(msg.contains("bucket"), "{msg}"),
                other => panic!("expected a plan mismatch, got {:?}", other.err()),
            }
            // replicas that drift apart are caught
            let ddp = DistributedDataParallel::new(
                network(&dev, false, false),
                &world,
                DdpOptions::default(),
            )
            .unwrap();
            if r == 1 {
                let p = &ddp.parameters()[0];
                p.set(&p.as_tensor().add_scalar(1e-3).unwrap()).unwrap();
            }
            match ddp.check_replicas(&world) {
                Err(Error::Distributed { msg, .. }) => assert!(msg.contains("[1]"), "{msg}"),
                other => panic!("expected differing replicas, got {other:?}"),
            }
        });
    }
    Ok(())
}
