//! Builds the eBPF object (`xdp/`, crate `rauta-xdp`) for `bpfel-unknown-none`
//! with the nightly toolchain through aya-build; the proxy embeds it
//! (`OUT_DIR/rauta-xdp`). The rest of the workspace stays on stable.
//!
//! `AYA_BUILD_SKIP=1` builds without it: the binary then runs with eBPF off
//! (`--xdp required` fails at start).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a developer runs when the toolchain is missing.
const HINT: &str = "run scripts/setup-ebpf.sh: it installs the nightly toolchain with rust-src, \
Debian llvm-22-dev and libclang-22-dev, and bpf-linker 0.13.0 built against LLVM 22 \
(or set AYA_BUILD_SKIP=1 to build rauta without its eBPF programs)";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", manifest_dir.display()));
    let xdp_dir = workspace.join("xdp");
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let out = out_dir.join("rauta-xdp");
    // aya-build watches xdp/; the shared map types are part of the object too.
    for path in [
        "shared/src",
        "shared/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");

    let skip =
        std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // An empty object: the loader reports "built without eBPF".
        std::fs::write(&out, b"").unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
        println!("cargo:warning=AYA_BUILD_SKIP is set: rauta is built without its eBPF programs");
        return;
    }
    check_toolchain();

    // The workspace's release profile is made for the proxy (unwinding,
    // thin LTO, line tables only); the BPF object needs abort, no LTO (the
    // BPF linker links everything anyway), full debug info for BTF and one
    // codegen unit. These variables reach only the nested nightly cargo.
    //
    // aya-build keeps its cargo target directory under OUT_DIR, which
    // changes whenever the proxy's own fingerprint does; pointing it at one
    // stable directory under target/ keeps the nested build incremental.
    // Quiet: only the compiler's own messages are forwarded as warnings.
    let stable = stable_dir(&out_dir);
    std::fs::create_dir_all(&stable)
        .unwrap_or_else(|e| panic!("creating {}: {e}", stable.display()));
    for (key, value) in [
        ("OUT_DIR", stable.to_string_lossy().as_ref()),
        ("CARGO_TERM_QUIET", "true"),
        ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
        ("CARGO_PROFILE_RELEASE_LTO", "false"),
        ("CARGO_PROFILE_RELEASE_DEBUG", "2"),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
        ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3"),
    ] {
        std::env::set_var(key, value);
    }
    let root_dir = xdp_dir.to_string_lossy().into_owned();
    let package = aya_build::Package {
        name: "rauta-xdp",
        root_dir: &root_dir,
        ..Default::default()
    };
    if let Err(e) = aya_build::build_ebpf([package], aya_build::Toolchain::Nightly) {
        panic!(
            "building the eBPF object (xdp/) failed: {e:#}\nIf the toolchain is incomplete, {HINT}"
        );
    }
    let built = stable.join("rauta-xdp");
    std::fs::copy(&built, &out)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", built.display(), out.display()));
}

/// `<target>/rauta-ebpf` for an OUT_DIR of the form
/// `<target>/<profile>/build/<package>-<hash>/out`; OUT_DIR itself otherwise.
fn stable_dir(out_dir: &Path) -> PathBuf {
    let mut up = out_dir.ancestors();
    match (up.nth(2), up.nth(1)) {
        (Some(build), Some(target)) if build.file_name().is_some_and(|n| n == "build") => {
            target.join("rauta-ebpf")
        }
        _ => out_dir.to_path_buf(),
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

/// Fails with one clear message when a piece of the eBPF toolchain is missing.
fn check_toolchain() {
    let mut missing = Vec::new();
    let linker = Command::new("bpf-linker").arg("--version").output();
    if !linker.is_ok_and(|o| o.status.success()) {
        missing.push("bpf-linker (not on PATH, or it cannot load libLLVM 22)");
    }
    let sysroot = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match sysroot {
        None => missing.push("the nightly toolchain (rustup run nightly rustc failed)"),
        Some(root) => {
            let src = Path::new(&root).join("lib/rustlib/src/rust/library/core");
            if !src.is_dir() {
                missing.push("rust-src for nightly");
            }
        }
    }
    if !missing.is_empty() {
        panic!(
            "the eBPF toolchain is incomplete: missing {}.\nTo fix it, {HINT}",
            missing.join(", ")
        );
    }
}
