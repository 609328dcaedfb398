//! The verifier's entry points (verify.html): a `convshade-cases/1` manifest's cases, run in the
//! page on the arrays the page fetched, each reported as `convshade verify` prints it.

use std::collections::BTreeMap;

use convshade::conformance::{parse_manifest, run_case_async, InMemory};
use wasm_bindgen::prelude::*;

use crate::{device, js};

/// Each case's name and the NPY files it reads (as the manifest names them), as JSON:
/// `[{"name": ..., "files": [...]}, ...]`, or the manifest's error.
#[wasm_bindgen]
pub fn manifest_files(manifest: String) -> std::result::Result<String, JsError> {
    let cases = parse_manifest(&manifest, "manifest.json").map_err(js)?;
    let list: Vec<serde_json::Value> =
        cases.iter().map(|c| serde_json::json!({ "name": c.name, "files": c.files() })).collect();
    Ok(serde_json::Value::Array(list).to_string())
}

/// Runs case `name` of the manifest on device `device` (`gpu` or `cpu`) over the fetched files
/// (`names[i]`'s bytes in `blobs[i]`); resolves to its line, `PASS name [device] max error ...`
/// or `FAIL ...: why`. A missing case or device rejects.
#[wasm_bindgen]
pub async fn verify_case(
    manifest: String, name: String, device_name: String, names: Vec<String>, blobs: js_sys::Array,
) -> std::result::Result<String, JsError> {
    let cases = parse_manifest(&manifest, "manifest.json").map_err(js)?;
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        return Err(JsError::new(&format!("verify_case: no case {name:?} in the manifest")));
    };
    let dev = device(&device_name).await.map_err(js)?;
    let files: BTreeMap<String, Vec<u8>> = names
        .into_iter()
        .zip(blobs.iter())
        .map(|(n, b)| (n, js_sys::Uint8Array::new(&b).to_vec()))
        .collect();
    Ok(run_case_async(&InMemory(files), case, &dev).await.to_string())
}
