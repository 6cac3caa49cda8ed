//! QEMU command lines per arch and firmware, and running one with a timeout.
//!
//! The serial console goes to a file (kept next to the report); stdin is
//! null, and `-no-reboot` turns the guest's reset (our init's last act, or
//! `panic=-1` after a panic) into QEMU exiting by itself.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{judge::Ending, Firmware};
use crate::{
    process,
    target::{Arch, Target},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// Why KVM was found unusable earlier in this process, so that later boots
/// go straight to TCG instead of failing the same way again.
static KVM_BROKEN: Mutex<Option<String>> = Mutex::new(None);

/// The accelerator to try first, and why when it is TCG.
pub fn choose_accel(target: &Target) -> (Accel, Option<String>) {
    let host_matches = match target.arch {
        Arch::X86_64 => cfg!(target_arch = "x86_64"),
        Arch::Arm64 => cfg!(target_arch = "aarch64"),
    };
    if !host_matches {
        return (
            Accel::Tcg,
            Some(format!(
                "TCG: an {} guest on an {} host",
                target.arch,
                std::env::consts::ARCH
            )),
        );
    }
    if target.arch == Arch::Arm64 && target.config.is_proof() {
        // The nVHE proof needs a guest entered at EL2: nested virtualisation.
        return (
            Accel::Tcg,
            Some("TCG: the nVHE proof needs virtualization=on, which KVM cannot nest".into()),
        );
    }
    let known = KVM_BROKEN.lock().unwrap().clone();
    if let Some(reason) = known.or_else(|| recall_kvm_failure(&kvm_broken_file())) {
        return (
            Accel::Tcg,
            Some(format!("TCG: KVM failed earlier ({reason})")),
        );
    }
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => (Accel::Kvm, None),
        Err(e) => (Accel::Tcg, Some(format!("TCG: /dev/kvm: {e}"))),
    }
}

/// Records that KVM does not work here, for the rest of the process and for
/// later ones until the host reboots: a nested KVM can take minutes to fail.
pub fn mark_kvm_broken(reason: &str) {
    *KVM_BROKEN.lock().unwrap() = Some(reason.to_string());
    remember_kvm_failure(&kvm_broken_file(), reason);
}

fn remember_kvm_failure(file: &Path, reason: &str) {
    if let Some(boot) = host_boot_id() {
        let _ = crate::fs_atomic::write(file, format!("{boot}\n{reason}\n").as_bytes());
    }
}

/// Where a KVM failure is remembered across processes.
fn kvm_broken_file() -> PathBuf {
    crate::paths::target_dir().join("kvm-broken")
}

/// This boot of the host: a remembered failure holds until it changes.
fn host_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string())
}

/// The reason KVM failed in an earlier process since the host booted.
fn recall_kvm_failure(file: &Path) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    let (boot, reason) = text.split_once('\n')?;
    (Some(boot.to_string()) == host_boot_id()).then(|| reason.trim().to_string())
}

/// Everything a command line is made from.
pub struct Spec<'a> {
    pub target: Target,
    pub firmware: Firmware,
    pub accel: Accel,
    pub obj_dir: &'a Path,
    pub initrd: &'a Path,
    pub serial_log: &'a Path,
    /// Where a copy of the UEFI variable store goes (it is written to).
    pub scratch: &'a Path,
    /// Kernel parameters after [`kernel_cmdline`]'s.
    pub cmdline: &'a [String],
}

/// The kernel command line. `panic=-1` resets at once on a panic, so a panic
/// ends QEMU instead of hanging until the timeout. Oopses must not panic
/// (lkdtm oopses on purpose): that is the kernel default, so no `oops=panic`.
pub fn kernel_cmdline(target: &Target) -> String {
    let mut args = vec![
        match target.arch {
            Arch::X86_64 => "console=ttyS0",
            Arch::Arm64 => "console=ttyAMA0",
        },
        "panic=-1",
    ];
    if target.config.is_proof() {
        // initcall_debug logs at KERN_DEBUG: let it reach the console.
        args.extend(["initcall_debug", "ignore_loglevel"]);
        if target.arch == Arch::Arm64 {
            args.push("kvm-arm.mode=nvhe");
        }
    }
    args.join(" ")
}

/// The QEMU program and arguments.
pub fn command(spec: &Spec) -> Result<(String, Vec<String>)> {
    let obj = spec.obj_dir;
    let path = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = Vec::new();
    let mut arg = |a: &str| args.push(a.to_string());
    let program = match spec.target.arch {
        Arch::X86_64 => {
            arg("-M");
            arg("pc");
            arg("-cpu");
            arg(if spec.accel == Accel::Kvm {
                "host"
            } else {
                "max"
            });
            let kernel = obj.join(super::kernel_image(obj, Arch::X86_64, spec.firmware));
            match spec.firmware {
                Firmware::Bios => {}
                Firmware::Uefi => {
                    let (code, vars) = firmware_files(OVMF, "ovmf")?;
                    let vars_copy = copy_vars(&vars, spec.scratch)?;
                    arg("-drive");
                    arg(&format!(
                        "if=pflash,format=raw,unit=0,readonly=on,file={}",
                        path(&code)
                    ));
                    arg("-drive");
                    arg(&format!(
                        "if=pflash,format=raw,unit=1,file={}",
                        path(&vars_copy)
                    ));
                }
            }
            arg("-kernel");
            arg(&path(&kernel));
            "qemu-system-x86_64"
        }
        Arch::Arm64 => {
            let mut machine = String::from("virt");
            if spec.target.config.is_proof() {
                // EL2 for KVM's nVHE hyp code; only the proof profile needs it.
                machine += ",virtualization=on";
            }
            if spec.firmware == Firmware::Uefi {
                // Without QEMU's ACPI tables EDK2 passes the device tree on;
                // with them it passes ACPI only, and a kernel without
                // CONFIG_ACPI finds no console ("EFI stub: Generating empty DTB").
                machine += ",acpi=off";
            }
            arg("-M");
            arg(&machine);
            arg("-cpu");
            // pauth-impdef: QEMU's own pointer-auth hash, much faster under TCG.
            arg(if spec.accel == Accel::Kvm {
                "host"
            } else {
                "max,pauth-impdef=on"
            });
            if spec.firmware == Firmware::Uefi {
                let (code, _) = firmware_files(AAVMF, "qemu-efi-aarch64")?;
                arg("-bios");
                arg(&path(&code));
            }
            arg("-kernel");
            arg(&path(&obj.join(super::kernel_image(
                obj,
                Arch::Arm64,
                spec.firmware,
            ))));
            "qemu-system-aarch64"
        }
    };
    arg("-accel");
    arg(&spec.accel.to_string());
    for a in [
        "-m",
        "512M",
        "-smp",
        "1",
        "-display",
        "none",
        "-nodefaults",
        "-no-reboot",
    ] {
        arg(a);
    }
    arg("-serial");
    arg(&format!("file:{}", path(spec.serial_log)));
    arg("-initrd");
    arg(&path(spec.initrd));
    arg("-append");
    let mut cmdline = kernel_cmdline(&spec.target);
    for extra in spec.cmdline {
        cmdline = format!("{cmdline} {extra}");
    }
    arg(&cmdline);
    Ok((program.to_string(), args))
}

/// (code, variables template) candidates per firmware, Debian paths first.
const OVMF: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
];
/// For arm64 only the code is used, with -bios (QEMU_EFI.fd keeps no variables).
const AAVMF: &[(&str, &str)] = &[
    ("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", ""),
    ("/usr/share/edk2/aarch64/QEMU_EFI.fd", ""),
];

fn firmware_files(candidates: &[(&str, &str)], package: &str) -> Result<(PathBuf, PathBuf)> {
    candidates
        .iter()
        .map(|(code, vars)| (PathBuf::from(code), PathBuf::from(vars)))
        .find(|(code, _)| code.exists())
        .with_context(|| {
            format!(
                "no UEFI firmware found (tried {}): apt-get install {package}",
                candidates[0].0
            )
        })
}

/// A fresh copy of the variable store for each boot: OVMF writes to it, and
/// a boot must not depend on the previous one.
fn copy_vars(template: &Path, scratch: &Path) -> Result<PathBuf> {
    let copy = scratch.join(
        template
            .file_name()
            .context("firmware path without a file name")?,
    );
    fs::copy(template, &copy)
        .with_context(|| format!("copying {} to {}", template.display(), copy.display()))?;
    Ok(copy)
}

/// The command as one shell-pasteable line.
pub fn display(program: &str, args: &[String]) -> Result<String> {
    shlex::try_join(std::iter::once(program).chain(args.iter().map(String::as_str)))
        .context("quoting the QEMU command line")
}

/// How a run ended.
pub struct Run {
    pub ending: Ending,
    pub seconds: f64,
}

/// KVM failures QEMU reports on stderr (seen in nested sandboxes: `/dev/kvm`
/// opens, then the MSR setup aborts QEMU or the guest stops with an
/// emulation failure and QEMU sits paused).
const KVM_FAILURES: &[&str] = &[
    "KVM internal error",
    "failed to initialize kvm",
    "failed to set MSR",
    "kvm_buf_set_msrs",
];

/// An error meaning "KVM does not work here": the caller retries with TCG.
#[derive(Debug)]
pub struct KvmFailed(pub String);

impl std::fmt::Display for KvmFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KVM failed: {}", self.0)
    }
}

impl std::error::Error for KvmFailed {}

/// Runs QEMU until it exits or `timeout` passes (then kills it). Its stderr
/// goes to `stderr_log`. A non-zero exit is an error (QEMU itself failed,
/// not the guest), a KVM failure is a [`KvmFailed`] error.
pub fn run(
    program: &str,
    args: &[String],
    accel: Accel,
    timeout: Duration,
    stderr_log: &Path,
) -> Result<Run> {
    let stderr = fs::File::create(stderr_log)
        .with_context(|| format!("creating {}", stderr_log.display()))?;
    let start = Instant::now();
    let mut child = process::command(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stderr.try_clone()?)
        .stderr(stderr)
        .spawn()
        .with_context(|| {
            format!("starting {program}: apt-get install qemu-system-x86 qemu-system-arm")
        })?;
    let kvm_failure = || -> Option<String> {
        let text = fs::read_to_string(stderr_log).ok()?;
        KVM_FAILURES.iter().find_map(|needle| {
            text.lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
    };
    let ending = loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                break Ending::Exited;
            }
            if accel == Accel::Kvm {
                if let Some(line) = kvm_failure() {
                    bail!(KvmFailed(line));
                }
            }
            let stderr = fs::read_to_string(stderr_log).unwrap_or_default();
            bail!("{program} failed ({status}): {}", stderr.trim());
        }
        if accel == Accel::Kvm {
            if let Some(line) = kvm_failure() {
                let _ = child.kill();
                let _ = child.wait();
                bail!(KvmFailed(line));
            }
        }
        if start.elapsed() >= timeout {
            child.kill().context("killing QEMU")?;
            child.wait()?;
            break Ending::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Run {
        ending,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kvm_failure_is_remembered_until_the_host_reboots() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kvm-broken");
        assert_eq!(recall_kvm_failure(&file), None);
        remember_kvm_failure(&file, "KVM internal error. Suberror: 1");
        assert_eq!(
            recall_kvm_failure(&file).as_deref(),
            Some("KVM internal error. Suberror: 1")
        );
        fs::write(&file, "another-boot\nKVM internal error\n").unwrap();
        assert_eq!(recall_kvm_failure(&file), None);
    }
    use crate::target::{Config, Lto, Profile};

    /// The command line for an object tree holding `dot_config`, the tree
    /// shown as `/obj`.
    fn spec_cmd_with(arch: Arch, profile: Profile, firmware: Firmware, dot_config: &str) -> String {
        let target = Target {
            arch,
            lto: Lto::Thin,
            config: Config::Preset(profile),
        };
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join(".config"), dot_config).unwrap();
        let obj = tree.path();
        let spec = Spec {
            target,
            firmware,
            accel: Accel::Tcg,
            obj_dir: obj,
            initrd: Path::new("/obj/boot/initramfs.cpio"),
            serial_log: Path::new("/obj/boot-bios.log"),
            scratch: Path::new("/nonexistent"),
            cmdline: &[],
        };
        let (program, args) = command(&spec).unwrap();
        display(&program, &args)
            .unwrap()
            .replace(&obj.display().to_string(), "/obj")
    }

    fn spec_cmd(arch: Arch, profile: Profile, firmware: Firmware) -> String {
        spec_cmd_with(arch, profile, firmware, "CONFIG_PVH=y\n")
    }

    #[test]
    fn x86_64_bios_boots_vmlinux_through_pvh() {
        assert_eq!(
            spec_cmd(Arch::X86_64, Profile::Tiny, Firmware::Bios),
            "qemu-system-x86_64 -M pc -cpu max -kernel /obj/vmlinux -accel tcg -m 512M -smp 1 -display none \
             -nodefaults -no-reboot -serial file:/obj/boot-bios.log -initrd /obj/boot/initramfs.cpio \
             -append 'console=ttyS0 panic=-1'"
        );
    }

    #[test]
    fn x86_64_bios_boots_the_bzimage_without_pvh() {
        let cmd = spec_cmd_with(
            Arch::X86_64,
            Profile::Tiny,
            Firmware::Bios,
            "# CONFIG_PVH is not set\n",
        );
        assert!(
            cmd.contains(" -kernel /obj/arch/x86/boot/bzImage "),
            "{cmd}"
        );
    }

    #[test]
    fn arm64_proof_enters_el2_and_asks_for_nvhe() {
        let cmd = spec_cmd(Arch::Arm64, Profile::Proof, Firmware::Bios);
        assert!(
            cmd.starts_with(
                "qemu-system-aarch64 -M 'virt,virtualization=on' -cpu 'max,pauth-impdef=on'"
            ),
            "{cmd}"
        );
        assert!(cmd.ends_with("-append 'console=ttyAMA0 panic=-1 initcall_debug ignore_loglevel kvm-arm.mode=nvhe'"), "{cmd}");
    }

    #[test]
    fn arm64_uefi_hands_the_kernel_a_device_tree() {
        let cmd = spec_cmd(Arch::Arm64, Profile::Proof, Firmware::Uefi);
        assert!(
            cmd.starts_with("qemu-system-aarch64 -M 'virt,virtualization=on,acpi=off' "),
            "{cmd}"
        );
        assert!(cmd.contains(" -bios /usr/share/"), "{cmd}");
    }

    /// shlex quotes `=` and `,` too (harmless), and the line splits back
    /// into the same words.
    #[test]
    fn quoting() {
        let args = ["a b".to_string(), "it's".into(), "x=1,y".into()];
        let line = display("q", &args).unwrap();
        assert_eq!(line, r#"q 'a b' "it's" 'x=1,y'"#);
        assert_eq!(shlex::split(&line).unwrap(), ["q", "a b", "it's", "x=1,y"]);
        assert!(display("q", &["nul\0".into()]).is_err());
    }
}
