//! `convshade verify`: a line per case and device, then the count; the exit code says whether
//! every case passed.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::cases::{relu_case, scratch, write_manifest};

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
    assert!(lines[0].starts_with("PASS relu_zeros [cpu] max error"), "{stdout}");
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
