//! The shipped opt-outs: every unit of Linux 6.12 (x86_64 and arm64) that
//! must be native ELF under Clang LTO.
//!
//! Found by reading every Makefile that mentions `$(CC_FLAGS_LTO)` and every
//! directory whose objects are post-processed (objcopy, `ld -r` with symbol
//! prefixing, a link other than vmlinux's). Each entry says how Kbuild itself
//! treats the unit ([`KbuildLto`]), so reports can tell the project's own
//! opt-outs from Kbuild's.
//!
//! Deliberately left out: `arch/x86/um/vdso` (User-Mode Linux, `ARCH=um`),
//! `rust/` (only bindgen's flags drop `$(CC_FLAGS_LTO)`) and the `.s` outputs
//! of `asm-offsets`/`devicetable-offsets`, whose `cmd_cc_s_c` rule in
//! `scripts/Makefile.build` already drops `$(CC_FLAGS_LTO)` itself.

use crate::Arch;

/// How Linux 6.12's own Kbuild builds a unit when LTO is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KbuildLto {
    /// The unit's Makefile removes `$(CC_FLAGS_LTO)` (with `filter-out` or
    /// `CFLAGS_REMOVE_*`), leaving the global `-fno-lto` to win.
    FiltersLtoFlags,
    /// The unit's Makefile compiles with flags of its own that never contained
    /// `$(CC_FLAGS_LTO)` (it replaces `KBUILD_CFLAGS`, or uses another
    /// compiler invocation altogether).
    OwnFlags,
    /// Kbuild compiles bitcode here; building it native is this project's
    /// choice, explained in the reason.
    Bitcode,
}

/// One upstream opt-out, as static data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptOut {
    /// The source directory, relative to the top of the kernel tree. Without
    /// `object` the whole subtree is built native.
    pub unit: &'static str,
    /// One object in `unit` (`rodata.o`), or `None` for the whole unit.
    pub object: Option<&'static str>,
    /// The architecture the entry applies to, or `None` for all.
    pub arch: Option<Arch>,
    /// Why the objects must be native ELF rather than LLVM bitcode.
    pub reason: &'static str,
    /// How Kbuild itself treats the unit under LTO.
    pub kbuild: KbuildLto,
}

const X86_VDSO: &str = "This object is linked into vdso64.so (and, after objcopy -O elf32-x86-64, \
                        vdsox32.so), a separate shared object mapped into every process and \
                        embedded by vdso2c. It is not part of vmlinux's LTO link and must be \
                        native code, so Kbuild filters out $(CC_FLAGS_LTO) for it.";

/// The shipped table of opt-outs, researched in Linux 6.12. Filter it by
/// architecture with [`Policy::upstream`](crate::Policy::upstream).
pub static UPSTREAM: &[OptOut] = &[
    // ---- both architectures ----
    OptOut {
        unit: "drivers/misc/lkdtm",
        object: Some("rodata.o"),
        arch: None,
        reason: "objcopy copies rodata.o into rodata_objcopy.o with its .noinstr.text \
                 section renamed to .rodata, so that lkdtm's EXEC_RODATA test can try to \
                 execute code placed in read-only data. objcopy cannot rename sections \
                 inside LLVM bitcode, so Kbuild removes $(CC_FLAGS_LTO) for this object.",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "scripts/mod",
        object: Some("empty.o"),
        arch: None,
        reason: "mk_elfconfig reads the ELF header of empty.o to generate elfconfig.h, \
                 which tells modpost the target's ELF class and byte order. Bitcode has \
                 no ELF header, so Kbuild removes $(CC_FLAGS_LTO) for this object.",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    // ---- x86_64 ----
    // Only the objects linked into vdso64.so: the rest of the directory
    // (vma.o, extable.o, vdso-image-64.o) is ordinary kernel code that
    // Kbuild LTOs, and so do we: vmlinux keeps Kbuild's symbol set.
    OptOut {
        unit: "arch/x86/entry/vdso",
        object: Some("vclock_gettime.o"),
        arch: Some(Arch::X86_64),
        reason: X86_VDSO,
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/x86/entry/vdso",
        object: Some("vgetcpu.o"),
        arch: Some(Arch::X86_64),
        reason: X86_VDSO,
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/x86/entry/vdso",
        object: Some("vgetrandom.o"),
        arch: Some(Arch::X86_64),
        reason: X86_VDSO,
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/x86/entry/vdso/vdso32",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "The 32-bit compat vDSO is compiled with -m32 and linked into vdso32.so, a \
                 separate shared object embedded by vdso2c; it can never join the 64-bit \
                 LTO link of vmlinux, so Kbuild filters out $(CC_FLAGS_LTO) for it.",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "drivers/firmware/efi/libstub",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "Each EFI stub object is checked with objdump -r for absolute R_X86_64_64 \
                 relocations and copied by objcopy into a .stub.o (STUBCPY), and the \
                 resulting lib.a is linked into the decompressor, not vmlinux. Both steps \
                 need native ELF, so Kbuild filters out $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/x86/boot",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "The real-mode setup code is compiled with REALMODE_CFLAGS (-m16) and \
                 linked into its own setup.elf, which objcopy -O binary turns into the \
                 setup.bin at the start of bzImage. It is never part of vmlinux, and \
                 Kbuild replaces KBUILD_CFLAGS here, so -flto is never added.",
        kbuild: KbuildLto::OwnFlags,
    },
    OptOut {
        unit: "arch/x86/boot/compressed",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "The decompressor is linked as its own position-independent executable \
                 (arch/x86/boot/compressed/vmlinux) that carries the compressed kernel and \
                 is flattened by objcopy into bzImage. It is not part of vmlinux's LTO \
                 link, and Kbuild compiles it with its own KBUILD_CFLAGS, which never \
                 contain $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::OwnFlags,
    },
    OptOut {
        unit: "arch/x86/realmode/rm",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "The real-mode trampoline and ACPI wakeup code are linked into their own \
                 realmode.elf, flattened by objcopy -O binary into realmode.bin for \
                 rmpiggy.S to .incbin, and nm of these objects generates pasyms.h; all of \
                 that needs native ELF. Kbuild compiles them with REALMODE_CFLAGS, which \
                 never contain $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::OwnFlags,
    },
    OptOut {
        unit: "arch/x86/purgatory",
        object: None,
        arch: Some(Arch::X86_64),
        reason: "The kexec purgatory is linked with ld -r into the standalone purgatory.ro, \
                 which kexec-purgatory.S embeds with .incbin and kexec_file_load relocates \
                 with its own small ELF loader. LTO emits many text sections that this \
                 loader cannot handle, so Kbuild filters out $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/x86/power",
        object: Some("cpu.o"),
        arch: Some(Arch::X86_64),
        reason: "__restore_processor_state() runs after S3 resume before %gs, and with it \
                 the stack-protector canary, is restored, so cpu.o is built with \
                 -fno-stack-protector. Under LTO Clang could inline stack-protected \
                 functions from other units into it (llvm.org/pr47479), so Kbuild removes \
                 $(CC_FLAGS_LTO) for this object.",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    // ---- arm64 ----
    OptOut {
        unit: "arch/arm64/kernel/vdso",
        object: None,
        arch: Some(Arch::Arm64),
        reason: "The vDSO is linked as a separate shared object (vdso.so) that is mapped \
                 into every process and embedded in the kernel by vdso-wrap.S with \
                 .incbin. It is not part of vmlinux's LTO link and must be native code, so \
                 Kbuild removes $(CC_FLAGS_LTO) from its C objects.",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/arm64/kernel/vdso32",
        object: None,
        arch: Some(Arch::Arm64),
        reason: "The AArch32 compat vDSO (CONFIG_COMPAT_VDSO) is compiled by a separate \
                 32-bit compiler invocation (CC_COMPAT, --target=arm-linux-gnueabi) with \
                 its own flags and linked into vdso32.so, which vdso32-wrap.S embeds. \
                 32-bit Arm code can never join the arm64 LTO link, so it is always native.",
        kbuild: KbuildLto::OwnFlags,
    },
    OptOut {
        unit: "arch/arm64/kernel/pi",
        object: None,
        arch: Some(Arch::Arm64),
        reason: "This early-boot code runs before the kernel is relocated, possibly with the \
                 MMU off; each object is checked by relacheck and rewritten by objcopy into \
                 a .pi.o with --prefix-symbols=__pi_ (lib-* also --prefix-alloc-sections=.init). \
                 Both need native ELF, so Kbuild filters out $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "drivers/firmware/efi/libstub",
        object: None,
        arch: Some(Arch::Arm64),
        reason: "The EFI stub runs from the kernel image before the kernel's own mapping \
                 exists, so each object is checked with objdump -r for absolute \
                 R_AARCH64_ABS relocations and rewritten by objcopy with \
                 --prefix-symbols=__efistub_ and --prefix-alloc-sections=.init (STUBCPY). \
                 Both steps need native ELF, so Kbuild filters out $(CC_FLAGS_LTO).",
        kbuild: KbuildLto::FiltersLtoFlags,
    },
    OptOut {
        unit: "arch/arm64/kvm/hyp/nvhe",
        object: None,
        arch: Some(Arch::Arm64),
        reason: "The nVHE hypervisor runs at EL2 in its own address space: its objects are \
                 partially linked with ld -r -T hyp.lds, scanned by gen-hyprel for \
                 relocations to fix up at run time, and renamed by objcopy \
                 --prefix-symbols=__kvm_nvhe_, steps written for ELF objects. Kbuild 6.12 \
                 compiles bitcode and lets ld.lld -r run LTO over the hyp objects alone; \
                 the manifest keeps them native, as the original LTO series did.",
        kbuild: KbuildLto::Bitcode,
    },
];
