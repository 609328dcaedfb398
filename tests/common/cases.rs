//! Scratch conformance cases: a copy of one committed case and manifests around it.

use std::path::{Path, PathBuf};

/// The committed suite, from this package or the CLI's beside it.
fn suite() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.to_path_buf(), here.join("..")]
        .iter()
        .map(|d| d.join("tests/conformance"))
        .find(|p| p.exists())
        .expect("tests/conformance")
}

/// A scratch copy of one committed case under a fresh directory.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convshade-conf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("relu_zeros")).unwrap();
    for f in ["input", "output", "grad_output", "grad_input"] {
        std::fs::copy(
            suite().join(format!("relu_zeros/{f}.npy")),
            dir.join(format!("relu_zeros/{f}.npy")),
        )
        .unwrap();
    }
    dir
}

pub fn relu_case(op: &str, attrs: &str) -> String {
    format!(
        r#"{{"name": "relu_zeros", "op": "{op}", "attrs": {attrs},
            "inputs": {{"input": "relu_zeros/input.npy"}},
            "expected": {{"output": "relu_zeros/output.npy"}},
            "grad_output": "relu_zeros/grad_output.npy",
            "expected_grads": {{"input": "relu_zeros/grad_input.npy"}}}}"#
    )
}

pub fn write_manifest(dir: &Path, cases: &[String]) {
    let text = format!(r#"{{"format": "convshade-cases/1", "cases": [{}]}}"#, cases.join(","));
    std::fs::write(dir.join("manifest.json"), text).unwrap();
}
