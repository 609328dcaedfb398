//! The committed PyTorch suite passes on every device; malformed suites give clear errors or
//! failed cases with reasons, never panics or silent skips.

mod common;

use std::path::{Path, PathBuf};

use convshade::conformance::{load_suite, run_suite};
use convshade::{Device, Error};

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

/// Runs the committed suite on `device` and fails with every failed case's line.
fn assert_suite_passes(device: Device) {
    let suite = load_suite(SUITE).unwrap();
    let results = run_suite(&suite, &[device], |_| {});
    assert_eq!(results.len(), suite.cases.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[test]
fn pytorch_suite_passes_on_cpu() {
    let suite = load_suite(SUITE).unwrap();
    assert!(
        suite.cases.len() >= 171,
        "suite has {} cases",
        suite.cases.len()
    );
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

/// A scratch copy of one committed case under a fresh directory.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convshade-conf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("relu_zeros")).unwrap();
    for f in ["input", "output", "grad_output", "grad_input"] {
        std::fs::copy(
            Path::new(SUITE).join(format!("relu_zeros/{f}.npy")),
            dir.join(format!("relu_zeros/{f}.npy")),
        )
        .unwrap();
    }
    dir
}

fn relu_case(op: &str, attrs: &str) -> String {
    format!(
        r#"{{"name": "relu_zeros", "op": "{op}", "attrs": {attrs},
            "inputs": {{"input": "relu_zeros/input.npy"}},
            "expected": {{"output": "relu_zeros/output.npy"}},
            "grad_output": "relu_zeros/grad_output.npy",
            "expected_grads": {{"input": "relu_zeros/grad_input.npy"}}}}"#
    )
}

fn write_manifest(dir: &Path, cases: &[String]) {
    let text = format!(
        r#"{{"format": "convshade-cases/1", "cases": [{}]}}"#,
        cases.join(",")
    );
    std::fs::write(dir.join("manifest.json"), text).unwrap();
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
    assert!(
        !r[1].passed && r[1].reason.contains("unknown op"),
        "{}",
        r[1]
    );
    assert!(
        !r[2].passed && r[2].reason.contains("unknown attr"),
        "{}",
        r[2]
    );

    // A wrong expected value fails the case.
    let mut out = convshade::conformance::read_npy(dir.join("relu_zeros/output.npy")).unwrap();
    out[[0, 0, 0, 0]] += 1.0;
    ndarray_npy::write_npy(dir.join("relu_zeros/output.npy"), &out).unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(
        !r[0].passed && r[0].reason.contains("output: max error"),
        "{}",
        r[0]
    );
    assert!(r[0].max_error >= 0.99);

    // A truncated NPY file is a failed case naming the file.
    std::fs::write(
        dir.join("relu_zeros/output.npy"),
        b"\x93NUMPY\x01\x00garbage",
    )
    .unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(
        !r[0].passed && r[0].reason.contains("output.npy"),
        "{}",
        r[0]
    );
    std::fs::remove_file(dir.join("relu_zeros/grad_input.npy")).unwrap();
    std::fs::write(dir.join("relu_zeros/output.npy"), b"").unwrap();
    let r = run_suite(&suite, &[Device::cpu()], |_| {});
    assert!(
        !r[0].passed && r[0].reason.contains("relu_zeros/output.npy"),
        "{}",
        r[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_manifests_are_errors_naming_the_file() {
    let dir = scratch("manifest");
    std::fs::write(dir.join("manifest.json"), "{ not json").unwrap();
    let e = load_suite(&dir).unwrap_err();
    assert!(
        matches!(e, Error::Format { .. }) && e.to_string().contains("manifest.json"),
        "{e}"
    );
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"format": "other/2", "cases": []}"#,
    )
    .unwrap();
    let e = load_suite(&dir).unwrap_err().to_string();
    assert!(e.contains("convshade-cases/1"), "{e}");
    let e = load_suite(dir.join("missing")).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("manifest.json"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_command_prints_a_line_per_case_and_the_count() {
    let dir = scratch("cli");
    write_manifest(&dir, &[relu_case("relu", "{}"), relu_case("elu", "{}")]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convshade"))
        .args(["verify", dir.to_str().unwrap(), "--device", "cpu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("PASS relu_zeros [cpu] max error"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("FAIL relu_zeros [cpu]") && lines[1].contains("unknown op"),
        "{stdout}"
    );
    assert_eq!(lines[2], "1 passed, 1 failed");
    assert_eq!(out.status.code(), Some(1));

    std::fs::write(dir.join("manifest.json"), "[]").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convshade"))
        .args(["verify", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));
    let _ = std::fs::remove_dir_all(&dir);
}
