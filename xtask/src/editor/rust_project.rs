//! `rust-project.json` for rust-analyzer, when the kernel enables Rust: made
//! by the kernel's own `scripts/generate_rust_analyzer.py`, as `make
//! rust-analyzer` runs it, or an error naming what is missing.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{fs_atomic, kconfig::DotConfig, process};

/// rust-analyzer's project file, in the object tree as `make rust-analyzer` puts it.
pub const RUST_PROJECT: &str = "rust-project.json";

/// `<objtree>/rust-project.json` for rust-analyzer, made by the kernel's own
/// `scripts/generate_rust_analyzer.py` with the arguments `make rust-analyzer`
/// gives it. `Ok(None)` when the configuration has no `CONFIG_RUST`; an error
/// naming everything missing when the Rust toolchain cannot serve it (the C
/// side is unaffected: callers print it as a warning).
pub fn write_rust_project(objtree: &Path, srctree: &Path) -> Result<Option<PathBuf>> {
    RustTools::from_env().write_rust_project(objtree, srctree)
}

/// The programs `make rust-analyzer` would use: `RUSTC`, `BINDGEN` and
/// `RUST_LIB_SRC` from the environment, as Kbuild reads them, or its defaults.
#[derive(Clone, Debug)]
pub struct RustTools {
    pub rustc: String,
    pub bindgen: String,
    pub python: String,
    pub rust_lib_src: Option<PathBuf>,
}

impl RustTools {
    pub fn from_env() -> RustTools {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        RustTools {
            rustc: var("RUSTC").unwrap_or_else(|| "rustc".into()),
            bindgen: var("BINDGEN").unwrap_or_else(|| "bindgen".into()),
            python: "python3".into(),
            rust_lib_src: var("RUST_LIB_SRC").map(PathBuf::from),
        }
    }

    pub fn write_rust_project(&self, objtree: &Path, srctree: &Path) -> Result<Option<PathBuf>> {
        let config = DotConfig::read(&objtree.join(".config"))?;
        if config.get("RUST") != Some("y") {
            return Ok(None);
        }
        let mut missing = Vec::new();
        let sysroot = match stdout_of(&self.rustc, &["--print", "sysroot"]) {
            Some(out) if !out.trim().is_empty() => Some(PathBuf::from(out.trim())),
            _ => {
                missing.push(format!(
                    "rustc (`{} --print sysroot` did not run; install Rust with rustup, or set RUSTC)",
                    self.rustc
                ));
                None
            }
        };
        let lib_src = self.rust_lib_src.clone().or_else(|| {
            sysroot
                .as_ref()
                .map(|s| s.join("lib/rustlib/src/rust/library"))
        });
        match &lib_src {
            Some(src) if !src.join("core/src/lib.rs").is_file() => missing.push(format!(
                "rust-src (no Rust standard library source at {}; run `rustup component add rust-src`, or set RUST_LIB_SRC)",
                src.display()
            )),
            Some(_) => {}
            None => missing.push("rust-src (its place is found through rustc, which is missing)".into()),
        }
        if stdout_of(&self.bindgen, &["--version"]).is_none() {
            missing.push(format!(
                "bindgen (`{} --version` did not run; run `cargo install --locked bindgen-cli`, or set BINDGEN)",
                self.bindgen
            ));
        }
        if stdout_of(&self.python, &["--version"]).is_none() {
            missing.push(format!("{} (`apt-get install python3`)", self.python));
        }
        let script = srctree.join("scripts/generate_rust_analyzer.py");
        if !script.is_file() {
            missing.push(format!(
                "{} (this kernel tree does not ship it)",
                script.display()
            ));
        }
        let rustc_cfg = objtree.join("include/generated/rustc_cfg");
        if !rustc_cfg.is_file() {
            missing.push(format!(
                "{} (build the kernel first: `make prepare` generates it)",
                rustc_cfg.display()
            ));
        }
        if !missing.is_empty() {
            bail!(
                "CONFIG_RUST=y but rust-project.json cannot be generated; missing: {}",
                missing.join("; ")
            );
        }
        let (Some(sysroot), Some(lib_src)) = (sysroot, lib_src) else {
            unreachable!("checked above")
        };

        let srctree = srctree
            .canonicalize()
            .with_context(|| format!("resolving {}", srctree.display()))?;
        let objtree = objtree
            .canonicalize()
            .with_context(|| format!("resolving {}", objtree.display()))?;
        let mut command = process::command(&self.python);
        command
            .arg(&script)
            .arg(format!("--cfgs=core={}", core_cfgs(&srctree)));
        // Newer trees (and Debian's 6.12) take the edition of `core` first, as rust/Makefile computes it.
        let script_text = fs::read_to_string(&script)?;
        if script_text.contains("\"core_edition\"") {
            let version: u64 = config
                .get("RUSTC_VERSION")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            command.arg(if version >= 108700 { "2024" } else { "2021" });
        }
        command
            .arg(&srctree)
            .arg(&objtree)
            .arg(&sysroot)
            .arg(&lib_src);
        let out = command
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .with_context(|| format!("{} printed no JSON", script.display()))?;
        let path = objtree.join(RUST_PROJECT);
        fs_atomic::write(&path, &out.stdout)?;
        Ok(Some(path))
    }
}

/// `core-cfgs` of `rust/Makefile` (`--cfg no_fp_fmt_parse` in 6.12), which
/// `make rust-analyzer` passes as `--cfgs='core=...'`.
fn core_cfgs(srctree: &Path) -> String {
    const DEFAULT: &str = "--cfg no_fp_fmt_parse";
    let Ok(makefile) = fs::read_to_string(srctree.join("rust/Makefile")) else {
        return DEFAULT.into();
    };
    let mut lines = makefile.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("core-cfgs") else {
            continue;
        };
        let Some(mut value) = rest
            .trim_start()
            .strip_prefix('=')
            .or_else(|| rest.trim_start().strip_prefix(":="))
            .map(str::to_string)
        else {
            continue;
        };
        while value.trim_end().ends_with('\\') {
            value = value.trim_end().trim_end_matches('\\').to_string();
            value.push(' ');
            value.push_str(lines.next().unwrap_or(""));
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if !value.is_empty() && !value.contains('$') {
            return value;
        }
    }
    DEFAULT.into()
}

/// Runs a tool; its stdout when it exits 0.
fn stdout_of(program: &str, args: &[&str]) -> Option<String> {
    process::stdout(process::command(program).args(args)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Rust toolchain of shell scripts: `rustc` names `sysroot`.
    fn fake_tools(dir: &Path, sysroot: &Path) -> RustTools {
        RustTools {
            rustc: script(dir, "rustc", &format!("echo {}", sysroot.display())),
            bindgen: script(dir, "bindgen", "echo bindgen 0.71.1"),
            python: "python3".into(),
            rust_lib_src: None,
        }
    }

    /// An executable script, written by a child `sh`: were this process to
    /// hold it open for writing, a concurrent test's fork could inherit
    /// the descriptor, and running the script would fail with ETXTBSY.
    fn script(dir: &Path, name: &str, body: &str) -> String {
        let path = dir.join(name);
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "printf '%s\\n' \"$2\" > \"$1\" && chmod 755 \"$1\"",
                "sh",
            ])
            .arg(&path)
            .arg(format!("#!/bin/sh\n{body}"))
            .status()
            .unwrap();
        assert!(status.success(), "writing {}", path.display());
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn rust_project_is_skipped_without_config_rust() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(".config"),
            "CONFIG_CC_IS_CLANG=y\n# CONFIG_RUST is not set\n",
        )
        .unwrap();
        assert_eq!(write_rust_project(dir.path(), dir.path()).unwrap(), None);
    }

    #[test]
    fn rust_project_names_everything_missing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".config"), "CONFIG_RUST=y\n").unwrap();
        let tools = RustTools {
            rustc: "/nonexistent/rustc".into(),
            bindgen: "/nonexistent/bindgen".into(),
            python: "python3".into(),
            rust_lib_src: None,
        };
        let error = tools
            .write_rust_project(dir.path(), dir.path())
            .unwrap_err()
            .to_string();
        for what in [
            "rustc",
            "rust-src",
            "bindgen",
            "rustc_cfg",
            "generate_rust_analyzer.py",
        ] {
            assert!(error.contains(what), "{what} not named in: {error}");
        }
        // rustc present, its sysroot without the library source.
        let rustc = script(
            dir.path(),
            "rustc",
            &format!("echo {}", dir.path().join("sysroot").display()),
        );
        let tools = RustTools { rustc, ..tools };
        let error = tools
            .write_rust_project(dir.path(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rust-src (no Rust standard library source at")
                && error.contains("rustup component add rust-src"),
            "{error}"
        );
        assert!(!error.contains("rustc ("), "{error}");
    }

    #[test]
    fn rust_project_calls_the_kernel_script_as_make_rust_analyzer_does() {
        let dir = tempfile::tempdir().unwrap();
        let (objtree, srctree, sysroot) = (
            dir.path().join("obj"),
            dir.path().join("src"),
            dir.path().join("sysroot"),
        );
        let lib_src = sysroot.join("lib/rustlib/src/rust/library");
        for d in [
            objtree.join("include/generated"),
            srctree.join("scripts"),
            srctree.join("rust"),
            lib_src.join("core/src"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(
            objtree.join(".config"),
            "CONFIG_RUST=y\nCONFIG_RUSTC_VERSION=109500\n",
        )
        .unwrap();
        fs::write(
            objtree.join("include/generated/rustc_cfg"),
            "--cfg=CONFIG_RUST\n",
        )
        .unwrap();
        fs::write(lib_src.join("core/src/lib.rs"), "").unwrap();
        fs::write(
            srctree.join("rust/Makefile"),
            "core-cfgs = \\\n    --cfg no_fp_fmt_parse\n",
        )
        .unwrap();
        // A stand-in with the real script's interface that echoes its arguments.
        fs::write(
            srctree.join("scripts/generate_rust_analyzer.py"),
            "import json, sys\nparser_mentions = \"core_edition\"\njson.dump({\"argv\": sys.argv[1:], \"crates\": []}, sys.stdout)\n",
        )
        .unwrap();
        let tools = fake_tools(dir.path(), &sysroot);
        let path = tools
            .write_rust_project(&objtree, &srctree)
            .unwrap()
            .unwrap();
        assert_eq!(path, objtree.join("rust-project.json"));
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let argv: Vec<&str> = json["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let (srctree, objtree) = (
            srctree.canonicalize().unwrap(),
            objtree.canonicalize().unwrap(),
        );
        assert_eq!(
            argv,
            [
                "--cfgs=core=--cfg no_fp_fmt_parse",
                "2024",
                srctree.to_str().unwrap(),
                objtree.to_str().unwrap(),
                sysroot.to_str().unwrap(),
                lib_src.to_str().unwrap(),
            ]
        );
    }

    /// The kernel's real script on the unpacked 6.12 tree.
    #[test]
    fn rust_project_from_the_real_script() {
        // `cargo xtask test` unpacks the source before the unit tests run.
        let srctree = crate::kconfig::fixture::kernel_src();
        let dir = tempfile::tempdir().unwrap();
        let (objtree, sysroot) = (dir.path().join("obj"), dir.path().join("sysroot"));
        let lib_src = sysroot.join("lib/rustlib/src/rust/library");
        fs::create_dir_all(objtree.join("include/generated")).unwrap();
        fs::create_dir_all(lib_src.join("core/src")).unwrap();
        fs::write(lib_src.join("core/src/lib.rs"), "").unwrap();
        fs::write(
            objtree.join(".config"),
            "CONFIG_RUST=y\nCONFIG_RUSTC_VERSION=108500\n",
        )
        .unwrap();
        fs::write(
            objtree.join("include/generated/rustc_cfg"),
            "--cfg=CONFIG_RUST\n--cfg=CONFIG_X86_64\n",
        )
        .unwrap();
        let tools = fake_tools(dir.path(), &sysroot);
        let path = tools
            .write_rust_project(&objtree, &srctree)
            .unwrap()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(json["sysroot"], sysroot.to_str().unwrap());
        let crates = json["crates"].as_array().unwrap();
        let core = crates.iter().find(|c| c["display_name"] == "core").unwrap();
        assert_eq!(
            core["root_module"],
            lib_src.join("core/src/lib.rs").to_str().unwrap()
        );
        assert_eq!(core["cfg"], serde_json::json!(["no_fp_fmt_parse"]));
        let kernel = crates
            .iter()
            .find(|c| c["display_name"] == "kernel")
            .unwrap();
        assert!(
            kernel["cfg"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CONFIG_X86_64"),
            "{kernel}"
        );
    }
}
