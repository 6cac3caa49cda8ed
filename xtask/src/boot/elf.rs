//! Just enough ELF for the modversions proof: the CRCs a module's
//! `__versions` section expects, and the CRCs vmlinux exports.
//!
//! A successful `finit_module` alone proves little: `check_version()` accepts
//! any symbol for which the kernel has no CRC, and losing the CRCs is exactly
//! the LTO breakage the proof is about. So the host also shows that both
//! sides carry CRCs and that they agree.
//!
//! The `object` crate does the parsing, so a truncated or corrupt file is an
//! error, never a panic.

use std::collections::HashMap;

use anyhow::{ensure, Context, Result};
use object::{
    read::elf::ElfFile64, Endian, Endianness, Object, ObjectSection, ObjectSymbol, ReadRef,
    U32Bytes,
};

/// One `struct modversion_info` entry (include/linux/module.h in 6.12:
/// `unsigned long crc; char name[64 - sizeof(unsigned long)]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub crc: u32,
    pub symbol: String,
}

const MODVERSION_INFO_SIZE: usize = 64;

type Elf<'a> = ElfFile64<'a, Endianness>;

fn parse(bytes: &[u8]) -> Result<Elf<'_>> {
    Elf::parse(bytes).context("not a readable ELF64 file")
}

/// The entries of the `__versions` section of a `.ko`; empty if the module
/// has no such section (built without CONFIG_MODVERSIONS).
pub fn module_versions(ko: &[u8]) -> Result<Vec<Version>> {
    let elf = parse(ko)?;
    let Some(section) = elf.section_by_name("__versions") else {
        return Ok(Vec::new());
    };
    let data = section.data().context("reading __versions")?;
    ensure!(
        data.len() % MODVERSION_INFO_SIZE == 0,
        "__versions is {} bytes, not a multiple of 64",
        data.len()
    );
    data.chunks_exact(MODVERSION_INFO_SIZE)
        .map(|entry| {
            let (crc, name) = entry.split_at(8);
            Ok(Version {
                // CRCs are 32 bits, stored in an unsigned long.
                crc: elf.endian().read_u64_bytes(crc.try_into()?) as u32,
                symbol: String::from_utf8_lossy(c_str(name)).into_owned(),
            })
        })
        .collect()
}

/// The CRCs vmlinux exports: `__crc_<symbol>` labels that modpost's
/// `.vmlinux.export.c` places in `___kcrctab*` sections, one `.long` each.
/// System.map leaves them out (scripts/mksysmap), so read the symbol table.
pub fn kernel_crcs(vmlinux: &[u8]) -> Result<HashMap<String, u32>> {
    let elf = parse(vmlinux)?;
    ensure!(elf.symbol_table().is_some(), "vmlinux has no symbol table");
    let mut crcs = HashMap::new();
    for sym in elf.symbols() {
        let Some(symbol) = sym
            .name_bytes()
            .ok()
            .and_then(|n| n.strip_prefix(b"__crc_"))
        else {
            continue;
        };
        let Some(section) = sym
            .section_index()
            .and_then(|i| elf.section_by_index(i).ok())
        else {
            continue;
        };
        let data = section.data().with_context(|| {
            format!(
                "reading the section of __crc_{}",
                String::from_utf8_lossy(symbol)
            )
        })?;
        let offset = sym.address().wrapping_sub(section.address());
        let Ok(crc) = data.read_at::<U32Bytes<Endianness>>(offset) else {
            continue;
        };
        crcs.insert(
            String::from_utf8_lossy(symbol).into_owned(),
            crc.get(elf.endian()),
        );
    }
    Ok(crcs)
}

/// The bytes up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal relocatable ELF with a `__versions` section of two entries.
    fn fake_ko() -> Vec<u8> {
        let mut versions = Vec::new();
        for (crc, name) in [(0x1234_5678u64, "module_layout"), (0xdead_beef, "_printk")] {
            let mut entry = crc.to_le_bytes().to_vec();
            entry.extend_from_slice(name.as_bytes());
            entry.resize(64, 0);
            versions.extend(entry);
        }
        let names = b"\0__versions\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        // ELFCLASS64, ELFDATA2LSB, EV_CURRENT.
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        let versions_off = elf.len();
        elf.extend(&versions);
        let names_off = elf.len();
        elf.extend(names);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let shoff = elf.len();
        let mut section = |name: u32, kind: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend(h);
        };
        const SHT_PROGBITS: u32 = 1;
        const SHT_STRTAB: u32 = 3;
        section(0, 0, 0, 0);
        section(1, SHT_PROGBITS, versions_off, versions.len());
        section(12, SHT_STRTAB, names_off, names.len());
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf
    }

    #[test]
    fn reads_versions() {
        let v = module_versions(&fake_ko()).unwrap();
        assert_eq!(
            v,
            [
                Version {
                    crc: 0x1234_5678,
                    symbol: "module_layout".into()
                },
                Version {
                    crc: 0xdead_beef,
                    symbol: "_printk".into()
                }
            ]
        );
    }

    #[test]
    fn rejects_non_elf() {
        assert!(module_versions(
            b"not an elf file at all, but long enough to have a header......."
        )
        .is_err());
    }

    /// A real object from the real compiler, with a `__versions` entry and
    /// a `__crc_` label as a module and vmlinux carry them.
    fn real_object() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("crcs.c");
        std::fs::write(
            &source,
            r#"
struct modversion_info { unsigned long crc; char name[56]; };
__attribute__((section("__versions"), used))
static const struct modversion_info versions[] = { { 0x12345678, "module_layout" } };
__attribute__((section("___kcrctab+answer"), used))
const unsigned int __crc_answer = 0xdeadbeef;
"#,
        )
        .unwrap();
        let clang = "/usr/lib/llvm-19/bin/clang";
        let out = dir.path().join("crcs.o");
        let status = std::process::Command::new(clang)
            .args(["--target=x86_64-linux-gnu", "-c", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("{clang}: {e}; install it with: apt-get install clang-19"));
        assert!(status.success());
        std::fs::read(&out).unwrap()
    }

    #[test]
    fn reads_a_real_object() {
        let elf = real_object();
        assert_eq!(
            module_versions(&elf).unwrap(),
            [Version {
                crc: 0x1234_5678,
                symbol: "module_layout".into()
            }]
        );
        assert_eq!(
            kernel_crcs(&elf).unwrap(),
            HashMap::from([("answer".to_string(), 0xdead_beef)])
        );
    }

    /// Cut anywhere (the section headers come last), a file is an error.
    #[test]
    fn truncated_files_are_errors_not_panics() {
        let elf = real_object();
        let n = elf.len();
        for len in [0, 1, 4, 16, 63, 64, 65, n / 4, n / 2, n - 65, n - 64, n - 1] {
            let cut = &elf[..len];
            assert!(
                module_versions(cut).is_err(),
                "module_versions, {len} of {n} bytes"
            );
            assert!(kernel_crcs(cut).is_err(), "kernel_crcs, {len} of {n} bytes");
        }
    }

    /// Wild offsets and sizes are errors; any single corrupt byte is at
    /// worst an error.
    #[test]
    fn corrupt_files_do_not_panic() {
        let elf = real_object();
        let mut wild = elf.clone();
        wild[0x28..0x40].fill(0xff); // e_shoff, e_flags, e_ehsize ... e_shstrndx
        assert!(module_versions(&wild).is_err());
        assert!(kernel_crcs(&wild).is_err());
        for i in 0..elf.len() {
            let mut bytes = elf.clone();
            bytes[i] ^= 0xff;
            let _ = module_versions(&bytes);
            let _ = kernel_crcs(&bytes);
        }
    }
}
