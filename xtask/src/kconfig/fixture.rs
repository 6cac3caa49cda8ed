//! The small Kconfig tree the tests read, and the real one.

use std::path::PathBuf;

use super::dotconfig::parse_setting;
use super::Request;

/// A small Kconfig tree exercising the grammar the reader must follow.
const KCONFIG: &str = r#"# SPDX-License-Identifier: GPL-2.0
mainmenu "Test/$(ARCH) Kernel Configuration"

source "scripts/Kconfig.include"
source "arch/$(SRCARCH)/Kconfig"
osource "does/not/exist/Kconfig"

config BASE
	bool "base"
	help
	  Help text is prose: it must not be parsed.
	  depends on NOTHING
	  config FAKE

	  if you say y here, endif
config DEBUG
	bool "debug"	# a trailing comment

if DEBUG
config UNDER_IF
	bool "under if"
endif

menu "Hacking"
	depends on BASE
config IN_MENU
	bool "in menu"
endmenu

menuconfig TESTS
	bool "tests"

if TESTS
config LKDTM_LIKE
	tristate "lkdtm-like"
	depends on BASE
	depends on DEBUG || \
		   IN_MENU
	help
	Help indented no deeper than the attributes still ends only at a
	line indented less.
	depends on NOT_A_DEPENDENCY
endif # TESTS

choice
	prompt "pick one"
	depends on BASE
	default PICK_A
config PICK_A
	bool "a"
config PICK_B
	bool "b"
endchoice

config NO_PROMPT
	bool
	default y if BASE

config HIDDEN_PROMPT
	bool "hidden" if EXPERT

config EXPERT
	bool "expert"

config SELECTOR
	bool "selector"
	select FORCED
	select OTHER if DEBUG

config FORCED
	bool 'forced'

config CMDLINE
	string "cmdline"

config NR
	int "nr"

config NEEDS_CMDLINE
	bool "needs"
	depends on CMDLINE != "" && NR >= 4

config MACRO_DEP
	bool "macro"
	depends on $(cc-option,-mfoo) && BASE

config DUP
	bool "dup"
	depends on DEBUG

config MOD
	tristate "mod"
	depends on BASE

if TESTS
config INNER
	bool "inner"
	depends on DEBUG
config OUTER
	bool "outer"
	depends on INNER
endif
"#;

const INCLUDE: &str = r#"quote := "
cc-option = $(success,$(CC) -Werror $(1) -c -x c /dev/null -o /dev/null)
$(error-if,$(failure,true),oops)
"#;

const ARCH_X86: &str = r#"
config X86_ONLY
	bool "x86 only"
	depends on ACPI

config ACPI
	bool "acpi"

config DUP
	bool "dup"
	depends on ACPI
"#;

/// The sample tree, written to a temporary directory.
pub(super) fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in [
        ("Kconfig", KCONFIG),
        ("scripts/Kconfig.include", INCLUDE),
        ("arch/x86/Kconfig", ARCH_X86),
        ("arch/arm64/Kconfig", "# nothing here\n"),
    ] {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// A request for `setting`, as if from line 1 of `test.config`.
pub(super) fn request(setting: &str) -> Request {
    let (symbol, value) = parse_setting(setting).unwrap().unwrap();
    Request {
        symbol,
        value,
        file: PathBuf::from("test.config"),
        line: 1,
    }
}

/// The unpacked kernel source (`KERNEL_SRC`, else the default tree under
/// `target/`); failing, never skipping, when it is absent. Every unit test
/// that reads the real tree finds it here.
pub(crate) fn kernel_src() -> PathBuf {
    let path = std::env::var_os("KERNEL_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::target_dir().join("src/linux-source-6.12"));
    assert!(
        path.join("Kconfig").is_file(),
        "no kernel source at {} (set KERNEL_SRC, or run `cargo xtask build` first to unpack it)",
        path.display()
    );
    path
}
