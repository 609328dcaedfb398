//! The committed PyTorch suite passes on every device; malformed suites give clear errors or
//! failed cases with reasons, never panics or silent skips.

mod common;

use common::cases::{relu_case, scratch, write_manifest};
use convshade::conformance::{load_suite, run_suite};
use convshade::{Device, Error};

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

/// Runs the committed suite on `device` and fails with every failed case's line.
fn assert_suite_passes(device: Device) {
    let suite = load_suite(SUITE).unwrap();
    let results = run_suite(&suite, &[device], |_| {});
    assert_eq!(results.len(), suite.cases.len());
    let failed: Vec<String> = results.iter().filter(|r| !r.passed).map(|r| r.to_string()).collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[test]
fn pytorch_suite_passes_on_cpu() {
    let suite = load_suite(SUITE).unwrap();
    assert!(suite.cases.len() >= 171, "suite has {} cases", suite.cases.len());
    // the empty-tensor cases are there
    let empty = suite.cases.iter().filter(|c| c.name.starts_with("empty_"));
    assert_eq!(empty.count(), 17);
    // every op of the format is covered
    for op in [
        "conv2d",
        "conv_transpose2d",
        "pad",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "batch_norm2d",
        "upsample",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "silu",
        "gelu",
        "softmax",
        "log_softmax",
        "cross_entropy",
        "mse_loss",
        "linear",
    ] {
        assert!(suite.cases.iter().any(|c| c.op == op), "no {op} case");
    }
    assert_suite_passes(Device::cpu());
}

#[test]
fn pytorch_suite_passes_on_gpu() {
    if let Some(gpu) = common::gpu() {
        assert_suite_passes(gpu);
    }
}

#[test]
fn unknown_ops_attrs_and_bad_arrays_are_failed_cases_with_reasons() {
    let dir = scratch("reasons");
    write_manifest(
        &dir,
        &[
            relu_case("relu", "{}"),
            relu_case("hardswish", "{}"),
            relu_case("relu", r#"{"inplace": true}"#),
        ],
    );
    let suite = load_suite(&dir).unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(r[0].passed, "{}", r[0]);
    assert!(!r[1].passed && r[1].reason.contains("unknown op"), "{}", r[1]);
    assert!(!r[2].passed && r[2].reason.contains("unknown attr"), "{}", r[2]);

    // A wrong expected value fails the case.
    let mut out = convshade::conformance::read_npy(dir.join("relu_zeros/output.npy")).unwrap();
    out[[0, 0, 0, 0]] += 1.0;
    ndarray_npy::write_npy(dir.join("relu_zeros/output.npy"), &out).unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(!r[0].passed && r[0].reason.contains("output: max error"), "{}", r[0]);
    assert!(r[0].max_error >= 0.99);

    // A truncated NPY file is a failed case naming the file.
    std::fs::write(dir.join("relu_zeros/output.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(!r[0].passed && r[0].reason.contains("output.npy"), "{}", r[0]);
    std::fs::remove_file(dir.join("relu_zeros/grad_input.npy")).unwrap();
    std::fs::write(dir.join("relu_zeros/output.npy"), b"").unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(!r[0].passed && r[0].reason.contains("relu_zeros/output.npy"), "{}", r[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_manifests_are_errors_naming_the_file() {
    let dir = scratch("manifest");
    std::fs::write(dir.join("manifest.json"), "{ not json").unwrap();
    let e = load_suite(&dir).unwrap_err();
    assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("manifest.json"), "{e}");
    std::fs::write(dir.join("manifest.json"), r#"{"format": "other/2", "cases": []}"#).unwrap();
    let e = load_suite(&dir).unwrap_err().to_string();
    assert!(e.contains("convshade-cases/1"), "{e}");
    let e = load_suite(dir.join("missing")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("manifest.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
