//! The LTO-sensitive features, each proved from the serial log (and, for
//! modversions, from the module and vmlinux files). Pure over their inputs.
//!
//! Which proofs apply is the host's decision, from arch, profile and
//! firmware: a proof outside the target is SKIP with the reason; a proof the
//! target should pass is PASS only with a log line to show for it. The init
//! reports SKIP when the kernel lacks the feature; for a target that should
//! have it, that is a FAIL here.

use std::collections::HashMap;

use super::{
    elf::Version,
    initcalls,
    judge::{find, from, init_proof},
    Firmware, Proof, ProofStatus,
};
use crate::{
    link::Initcall,
    target::{Arch, Target},
};

/// A module put into the initramfs, as the host sees it.
#[derive(Clone, Debug)]
pub struct Module {
    pub file: String,
    pub versions: Vec<Version>,
}

/// What the proofs need besides the log.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub target: Target,
    pub firmware: Firmware,
    pub initcalls: Option<&'a [Initcall]>,
    pub modules: &'a [Module],
    /// vmlinux's `__crc_` symbols, or why they could not be read.
    pub kernel_crcs: Result<&'a HashMap<String, u32>, &'a str>,
}

/// Every proof, in a fixed order, for the report.
pub fn evaluate(cx: &Context, log: &str) -> Vec<Proof> {
    vec![
        vdso(log),
        efi(cx, log),
        nvhe(cx, log),
        lkdtm_exec_rodata(cx, log),
        ftrace_mcount(cx, log),
        ftrace_call(cx, log),
        initcall_order(cx, log),
        modversions(cx, log),
    ]
}

fn proof(name: &str, status: ProofStatus, evidence: impl Into<String>) -> Proof {
    Proof {
        name: name.to_string(),
        status,
        evidence: evidence.into(),
    }
}

fn pass(name: &str, evidence: impl Into<String>) -> Proof {
    proof(name, ProofStatus::Pass, evidence)
}

fn fail(name: &str, evidence: impl Into<String>) -> Proof {
    proof(name, ProofStatus::Fail, evidence)
}

fn skip(name: &str, evidence: impl Into<String>) -> Proof {
    proof(name, ProofStatus::Skip, evidence)
}

/// Proofs that need the proof profile say so for tiny.
fn needs_proof_profile(cx: &Context, name: &str) -> Option<Proof> {
    (!cx.target.config.is_proof()).then(|| {
        skip(
            name,
            format!(
                "configuration {} lacks it: use --profile proof",
                cx.target.config
            ),
        )
    })
}

/// The init's verdict for `name`, turned into a proof: its SKIP is a FAIL
/// here, because the host only asks when the target should have it.
fn from_init(log: &str, name: &str) -> Proof {
    match init_proof(log, name) {
        Some(("PASS", detail)) => pass(name, format!("init: {detail}")),
        Some((status, detail)) => fail(name, format!("init: {status} {detail}")),
        None => fail(name, "init printed no line for it"),
    }
}

/// The vDSO is linked as a shared object and must not be LTO'd: the init
/// finds `clock_gettime` through AT_SYSINFO_EHDR and calls it.
fn vdso(log: &str) -> Proof {
    from_init(log, "vdso")
}

/// efi/libstub is built without LTO: booting under OVMF/AAVMF goes through it.
fn efi(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "efi";
    if cx.firmware != Firmware::Uefi {
        return skip(NAME, "needs --firmware uefi");
    }
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    // The stub's own line (it prints before the kernel proper) when it has
    // one to say; the kernel's `efi:` line shows it came up through EFI.
    let stub = find(log, "EFI stub: ").map(|l| format!("{}; ", from(l, "EFI stub: ")));
    match find(log, "efi: EFI v") {
        Some(line) => pass(
            NAME,
            format!("{}{}", stub.unwrap_or_default(), from(line, "efi: ")),
        ),
        None => fail(
            NAME,
            "no `efi: EFI v...` line: the kernel did not come up through the EFI stub",
        ),
    }
}

/// arm64's nVHE hyp code is built without LTO; KVM says how it initialised.
fn nvhe(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "nvhe";
    if cx.target.arch != Arch::Arm64 {
        return skip(NAME, "arm64 only");
    }
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    // arch/arm64/kvm/arm.c: kvm_info("%s%sVHE mode initialized successfully\n", ...)
    match find(log, "VHE mode initialized successfully") {
        Some(line) if line.contains("Hyp nVHE mode") => pass(NAME, from(line, "kvm [")),
        Some(line) => fail(
            NAME,
            format!("KVM is not in nVHE mode: {}", from(line, "kvm [")),
        ),
        None => match find(log, "kvm [") {
            Some(line) => fail(NAME, from(line, "kvm [")),
            None => fail(
                NAME,
                "KVM printed nothing: is the kernel entered at EL2 (virtualization=on)?",
            ),
        },
    }
}

/// lkdtm's rodata.o is built without LTO and objcopy'd into .rodata;
/// executing it must fault. The init's child is killed, the kernel says why.
fn lkdtm_exec_rodata(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "lkdtm_exec_rodata";
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    let init = from_init(log, NAME);
    if init.status != ProofStatus::Pass {
        return init;
    }
    if find(log, "lkdtm: Performing direct entry EXEC_RODATA").is_none() {
        return fail(
            NAME,
            format!(
                "no `lkdtm: Performing direct entry EXEC_RODATA` line; {}",
                init.evidence
            ),
        );
    }
    if let Some(line) = find(log, "lkdtm: FAIL: func returned") {
        return fail(NAME, from(line, "lkdtm: "));
    }
    // The fault, as each arch reports an instruction fetch from an NX page.
    let fault = [
        "kernel tried to execute NX-protected page",
        "Unable to handle kernel execute from non-executable memory",
        "#PF: supervisor instruction fetch",
        "Oops",
    ]
    .iter()
    .find_map(|needle| find(log, needle).map(|line| from(line, needle)));
    match (find(log, "attempting bad execution at"), fault) {
        (Some(attempt), Some(fault)) => pass(
            NAME,
            format!("{}; {fault}; {}", from(attempt, "lkdtm: "), init.evidence),
        ),
        _ => fail(
            NAME,
            format!(
                "the kernel logged no fault for the bad execution; {}",
                init.evidence
            ),
        ),
    }
}

/// ftrace's table of patch sites survives the LTO link: x86_64 gets
/// `__mcount_loc` from objtool run on the LTO'd vmlinux.o, arm64 the
/// `__patchable_function_entries` that the linker script collects when
/// `CC_USING_PATCHABLE_FUNCTION_ENTRY` reaches it. An empty table means
/// ftrace has nothing to patch.
fn ftrace_mcount(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "ftrace_mcount";
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    const ALLOCATING: &str = "ftrace: allocating ";
    // ftrace_init's words for an empty `__mcount_loc`: objtool wrote no
    // table (6.1's objtool gives up on clang 19's jump tables, and then
    // writes none, under Kbuild too).
    const NONE: &str = "ftrace: No functions to be traced?";
    if let Some(line) = find(log, NONE) {
        let why = match cx.target.arch {
            Arch::X86_64 => "did objtool run with --mcount on vmlinux.o, and finish?",
            Arch::Arm64 => "did the link keep __patchable_function_entries?",
        };
        return fail(
            NAME,
            format!("{}: the mcount table is empty ({why})", from(line, NONE)),
        );
    }
    let Some(line) = find(log, ALLOCATING) else {
        return fail(
            NAME,
            "no `ftrace: allocating N entries` line: is CONFIG_DYNAMIC_FTRACE on?",
        );
    };
    let line = from(line, ALLOCATING);
    let entries = line[ALLOCATING.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse::<u64>().ok());
    match entries {
        Some(n) if n > 0 => pass(NAME, line),
        _ => fail(NAME, format!("{line}: no mcount entries")),
    }
}

/// ftrace patches a function and traces a call to it: the init sets the
/// filter to `seq_read` (accepted only for a function with a patch site),
/// turns on the function tracer, reads a tracefs file, which reaches
/// `seq_read` through its `file_operations`, and finds it in the trace. A
/// call through a pointer survives any inlining: full LTO inlines the
/// getppid syscall's entry into x86's `x64_sys_call`, so tracing that entry
/// shows nothing.
fn ftrace_call(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "ftrace_call";
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    from_init(log, NAME)
}

/// Initcalls within a level run in link order.
fn initcall_order(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "initcall_order";
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    let Some(expected) = cx.initcalls else {
        return fail(NAME, "no initcalls.json from the build to compare with");
    };
    match initcalls::check(expected, log) {
        Ok(evidence) => pass(NAME, evidence),
        Err(mismatch) => fail(NAME, mismatch),
    }
}

/// A CONFIG_MODVERSIONS module loads, and the CRCs it was checked against
/// exist on both sides.
fn modversions(cx: &Context, log: &str) -> Proof {
    const NAME: &str = "modversions";
    if let Some(p) = needs_proof_profile(cx, NAME) {
        return p;
    }
    if cx.modules.is_empty() {
        return fail(NAME, "no module was given to put in the initramfs");
    }
    for needle in ["disagrees about version of symbol", "no symbol version for"] {
        if let Some(line) = find(log, needle) {
            return fail(NAME, line.trim());
        }
    }
    let init = from_init(log, NAME);
    if init.status != ProofStatus::Pass {
        return init;
    }
    let crcs = match cx.kernel_crcs {
        Ok(crcs) => crcs,
        Err(e) => return fail(NAME, e),
    };
    let mut checked = Vec::new();
    for module in cx.modules {
        if module.versions.is_empty() {
            return fail(
                NAME,
                format!(
                    "{} has no __versions section: not built with CONFIG_MODVERSIONS",
                    module.file
                ),
            );
        }
        for v in &module.versions {
            match crcs.get(&v.symbol) {
                Some(&crc) if crc == v.crc => {}
                Some(&crc) => {
                    return fail(
                        NAME,
                        format!(
                            "{}: {} has CRC {:#010x}, vmlinux {crc:#010x}",
                            module.file, v.symbol, v.crc
                        ),
                    )
                }
                None => {
                    return fail(
                        NAME,
                        format!(
                            "vmlinux has no __crc_{}: the kernel would accept any version of it",
                            v.symbol
                        ),
                    )
                }
            }
        }
        let symbols: Vec<String> = module
            .versions
            .iter()
            .map(|v| format!("{} {:#010x}", v.symbol, v.crc))
            .collect();
        checked.push(format!("{}: {}", module.file, symbols.join(", ")));
    }
    pass(
        NAME,
        format!(
            "{}; CRCs match vmlinux ({})",
            init.evidence,
            checked.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Config, Lto, Profile};

    const TINY_PASS: &str = include_str!("testdata/x86_64-tiny-pass.log");
    const PROOF_BIOS: &str = include_str!("testdata/x86_64-proof-bios.log");
    const PROOF_UEFI: &str = include_str!("testdata/x86_64-proof-uefi-excerpt.log");
    const PROOF_INITCALLS: &str = include_str!("testdata/x86_64-proof-initcalls.json");

    /// The CRCs of the real run (read from that build's vmlinux and .ko).
    fn test_module() -> Module {
        let versions = [("_printk", 0x9299_7ed8), ("module_layout", 0xbcef_6f6d)];
        Module {
            file: "test_module.ko".into(),
            versions: versions
                .iter()
                .map(|&(s, crc)| Version {
                    crc,
                    symbol: s.into(),
                })
                .collect(),
        }
    }

    fn cx(arch: Arch, profile: Profile, firmware: Firmware) -> Context<'static> {
        Context {
            target: Target {
                arch,
                lto: Lto::Thin,
                config: Config::Preset(profile),
            },
            firmware,
            initcalls: None,
            modules: &[],
            kernel_crcs: Err("not read"),
        }
    }

    fn statuses(proofs: &[Proof]) -> Vec<(&str, ProofStatus)> {
        proofs.iter().map(|p| (p.name.as_str(), p.status)).collect()
    }

    #[test]
    fn tiny_proves_the_vdso_and_skips_the_rest() {
        use ProofStatus::*;
        let proofs = evaluate(&cx(Arch::X86_64, Profile::Tiny, Firmware::Bios), TINY_PASS);
        assert_eq!(
            statuses(&proofs),
            [
                ("vdso", Pass),
                ("efi", Skip),
                ("nvhe", Skip),
                ("lkdtm_exec_rodata", Skip),
                ("ftrace_mcount", Skip),
                ("ftrace_call", Skip),
                ("initcall_order", Skip),
                ("modversions", Skip),
            ]
        );
        assert!(
            proofs[0].evidence.contains("__vdso_clock_gettime"),
            "{}",
            proofs[0].evidence
        );
        assert_eq!(proofs[1].evidence, "needs --firmware uefi");
    }

    #[test]
    fn real_x86_64_proof_boot_passes_everything_it_can() {
        use ProofStatus::*;
        let initcalls: Vec<Initcall> = serde_json::from_str(PROOF_INITCALLS).unwrap();
        let modules = [test_module()];
        let crcs = HashMap::from([
            ("_printk".to_string(), 0x9299_7ed8),
            ("module_layout".to_string(), 0xbcef_6f6d),
        ]);
        let mut cx = cx(Arch::X86_64, Profile::Proof, Firmware::Bios);
        cx.initcalls = Some(&initcalls);
        cx.modules = &modules;
        cx.kernel_crcs = Ok(&crcs);
        let proofs = evaluate(&cx, PROOF_BIOS);
        assert_eq!(
            statuses(&proofs),
            [
                ("vdso", Pass),
                ("efi", Skip),
                ("nvhe", Skip),
                ("lkdtm_exec_rodata", Pass),
                ("ftrace_mcount", Pass),
                ("ftrace_call", Pass),
                ("initcall_order", Pass),
                ("modversions", Pass),
            ]
        );
        let evidence = |name: &str| {
            proofs
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .evidence
                .clone()
        };
        assert!(evidence("lkdtm_exec_rodata").contains("kernel tried to execute NX-protected page"));
        assert_eq!(
            evidence("ftrace_mcount"),
            "ftrace: allocating 13544 entries in 53 pages"
        );
        assert!(
            evidence("ftrace_call").contains("seq_read <-vfs_read"),
            "{}",
            evidence("ftrace_call")
        );
        assert!(
            evidence("initcall_order").starts_with("209 initcalls in 13 levels"),
            "{}",
            evidence("initcall_order")
        );

        // The same boot against a link order with two level-6 initcalls swapped.
        let mut swapped = initcalls.clone();
        let sixes: Vec<usize> = (0..swapped.len())
            .filter(|&i| swapped[i].level == "6")
            .collect();
        swapped.swap(sixes[2], sixes[5]);
        cx.initcalls = Some(&swapped);
        let p = initcall_order(&cx, PROOF_BIOS);
        assert_eq!(p.status, Fail);
        assert!(p.evidence.starts_with("level 6: "), "{}", p.evidence);

        // A kernel without CRCs would load anything: that fails the proof.
        let no_crcs = HashMap::new();
        cx.kernel_crcs = Ok(&no_crcs);
        assert_eq!(modversions(&cx, PROOF_BIOS).status, Fail);
    }

    #[test]
    fn real_arm64_proof_uefi_boot_passes_everything_it_can() {
        use ProofStatus::*;
        let log = include_str!("testdata/arm64-proof-uefi.log");
        let initcalls: Vec<Initcall> =
            serde_json::from_str(include_str!("testdata/arm64-proof-initcalls.json")).unwrap();
        let modules = [Module {
            file: "test_module.ko".into(),
            versions: vec![],
        }];
        let mut cx = cx(Arch::Arm64, Profile::Proof, Firmware::Uefi);
        cx.initcalls = Some(&initcalls);
        let proofs = evaluate(&cx, log);
        let evidence = |name: &str| {
            proofs
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .evidence
                .clone()
        };
        assert_eq!(
            statuses(&proofs),
            [
                ("vdso", Pass),
                ("efi", Pass),
                ("nvhe", Pass),
                ("lkdtm_exec_rodata", Pass),
                ("ftrace_mcount", Pass),
                ("ftrace_call", Pass),
                ("initcall_order", Pass),
                // No module given in this context.
                ("modversions", Fail),
            ]
        );
        assert_eq!(
            evidence("efi"),
            "EFI stub: Booting Linux Kernel...; efi: EFI v2.7 by EDK II"
        );
        assert_eq!(
            evidence("nvhe"),
            "kvm [1]: Hyp nVHE mode initialized successfully"
        );
        // arm64's patch sites are its patchable function entries.
        assert_eq!(
            evidence("ftrace_mcount"),
            "ftrace: allocating 12747 entries in 50 pages"
        );
        assert!(
            evidence("ftrace_call").contains("seq_read <-vfs_read"),
            "{}",
            evidence("ftrace_call")
        );
        assert!(evidence("lkdtm_exec_rodata")
            .contains("Unable to handle kernel execute from non-executable memory"));
        // A module without __versions is not proof of anything.
        let crcs = HashMap::new();
        cx.modules = &modules;
        cx.kernel_crcs = Ok(&crcs);
        assert!(modversions(&cx, log)
            .evidence
            .contains("has no __versions section"));
    }

    /// A real boot with test_module.ko's CRC for _printk patched: the kernel
    /// refuses it, the init reports -EINVAL, the proof fails on the kernel line.
    #[test]
    fn real_crc_mismatch_fails() {
        let log = include_str!("testdata/x86_64-proof-bad-crc-excerpt.log");
        let modules = [test_module()];
        let crcs = HashMap::new();
        let mut cx = cx(Arch::X86_64, Profile::Proof, Firmware::Bios);
        cx.modules = &modules;
        cx.kernel_crcs = Ok(&crcs);
        let p = modversions(&cx, log);
        assert_eq!(
            (p.status, p.evidence.as_str()),
            (
                ProofStatus::Fail,
                "test_module: disagrees about version of symbol _printk"
            )
        );
        assert_eq!(
            init_proof(log, "modversions"),
            Some(("FAIL", "finit_module(test_module.ko) = -22 (EINVAL)"))
        );
    }

    #[test]
    fn real_uefi_boot_proves_the_efi_stub() {
        let p = efi(
            &cx(Arch::X86_64, Profile::Proof, Firmware::Uefi),
            PROOF_UEFI,
        );
        assert_eq!(
            (p.status, p.evidence.as_str()),
            (ProofStatus::Pass, "EFI stub: Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID device path; efi: EFI v2.7 by EDK II")
        );
        assert_eq!(
            efi(
                &cx(Arch::X86_64, Profile::Proof, Firmware::Uefi),
                PROOF_BIOS
            )
            .status,
            ProofStatus::Fail
        );
    }

    #[test]
    fn init_skip_is_a_failure_when_expected() {
        let log = "XTASK-PROOF lkdtm_exec_rodata SKIP mount debugfs: -19 (ENODEV)\r\n";
        let p = lkdtm_exec_rodata(&cx(Arch::X86_64, Profile::Proof, Firmware::Bios), log);
        assert_eq!(p.status, ProofStatus::Fail);
        assert_eq!(p.evidence, "init: SKIP mount debugfs: -19 (ENODEV)");
    }

    #[test]
    fn ftrace_needs_entries() {
        let cx_of = |arch| cx(arch, Profile::Proof, Firmware::Bios);
        let cx = cx_of(Arch::X86_64);
        let ok = ftrace_mcount(
            &cx,
            "[    0.000000] ftrace: allocating 12345 entries in 49 pages\r\n",
        );
        assert_eq!(
            (ok.status, ok.evidence.as_str()),
            (
                ProofStatus::Pass,
                "ftrace: allocating 12345 entries in 49 pages"
            )
        );
        let empty = ftrace_mcount(&cx, "ftrace: allocating 0 entries in 0 pages\n");
        assert_eq!(empty.status, ProofStatus::Fail);
        // Debian's 6.1 with clang 19, ThinLTO (Kbuild's build too): its
        // objtool wrote no __mcount_loc.
        let none = ftrace_mcount(&cx, "mem auto-init: stack:all(zero), heap alloc:off, heap free:off\r\nftrace: No functions to be traced?\r\nNR_IRQS: 4352, nr_irqs: 48, preallocated irqs: 16\r\n");
        assert_eq!(none.status, ProofStatus::Fail);
        assert!(
            none.evidence
                .starts_with("ftrace: No functions to be traced?: the mcount table is empty"),
            "{}",
            none.evidence
        );
        // The same words on arm64 point at the link's patchable entries.
        let arm64 = cx_of(Arch::Arm64);
        let none = ftrace_mcount(&arm64, "ftrace: No functions to be traced?\r\n");
        assert!(
            none.evidence
                .ends_with("(did the link keep __patchable_function_entries?)"),
            "{}",
            none.evidence
        );
    }

    /// An arm64 ThinLTO proof kernel broken on purpose: its linker script
    /// (on a private copy of the source) discards
    /// `__patchable_function_entries`, so the LTO'd objects' patch sites
    /// never reach the table. Both ftrace proofs fail, each saying why.
    #[test]
    fn a_link_that_drops_the_patch_sites_fails_both_ftrace_proofs() {
        let log = include_str!("testdata/arm64-proof-no-patchable-excerpt.log");
        let cx = cx(Arch::Arm64, Profile::Proof, Firmware::Bios);
        let table = ftrace_mcount(&cx, log);
        assert_eq!(table.status, ProofStatus::Fail);
        assert_eq!(
            table.evidence,
            "ftrace: No functions to be traced?: the mcount table is empty \
             (did the link keep __patchable_function_entries?)"
        );
        let call = ftrace_call(&cx, log);
        assert_eq!(call.status, ProofStatus::Fail);
        assert_eq!(
            call.evidence,
            "init: FAIL set_ftrace_filter seq_read (no patch site?): -19 (ENODEV)"
        );
    }

    #[test]
    fn nvhe_must_not_be_vhe() {
        let cx = cx(Arch::Arm64, Profile::Proof, Firmware::Bios);
        let vhe = nvhe(&cx, "kvm [1]: VHE mode initialized successfully\n");
        assert_eq!(vhe.status, ProofStatus::Fail);
        let ok = nvhe(
            &cx,
            "[    0.5] kvm [1]: Hyp nVHE mode initialized successfully\n",
        );
        assert_eq!(
            (ok.status, ok.evidence.as_str()),
            (
                ProofStatus::Pass,
                "kvm [1]: Hyp nVHE mode initialized successfully"
            )
        );
    }

    #[test]
    fn modversions_checks_crcs_on_both_sides() {
        let log = "XTASK-PROOF modversions PASS finit_module(test_module.ko) = 0\r\n";
        let modules = [Module {
            file: "test_module.ko".into(),
            versions: vec![Version {
                crc: 7,
                symbol: "_printk".into(),
            }],
        }];
        let crcs = HashMap::from([("_printk".to_string(), 7)]);
        let mut cx = cx(Arch::X86_64, Profile::Proof, Firmware::Bios);
        cx.modules = &modules;
        cx.kernel_crcs = Ok(&crcs);
        assert_eq!(modversions(&cx, log).status, ProofStatus::Pass);
        let no_crcs = HashMap::new();
        let cx = Context {
            kernel_crcs: Ok(&no_crcs),
            ..cx
        };
        let p = modversions(&cx, log);
        assert!(p.evidence.contains("no __crc__printk"), "{}", p.evidence);
        let bad = "test_module: disagrees about version of symbol _printk\r\n".to_string() + log;
        assert_eq!(
            modversions(&cx, &bad).evidence,
            "test_module: disagrees about version of symbol _printk"
        );
    }
}
