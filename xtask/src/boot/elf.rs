//! Just enough ELF64 (little-endian) for the modversions proof: the CRCs a
//! module's `__versions` section expects, and the CRCs vmlinux exports.
//!
//! A successful `finit_module` alone proves little: `check_version()` accepts
//! any symbol for which the kernel has no CRC, and losing the CRCs is exactly
//! the LTO breakage the proof is about. So the host also shows that both
//! sides carry CRCs and that they agree.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};

/// One `struct modversion_info` entry (include/linux/module.h in 6.12:
/// `unsigned long crc; char name[64 - sizeof(unsigned long)]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub crc: u32,
    pub symbol: String,
}

const MODVERSION_INFO_SIZE: usize = 64;

/// The entries of the `__versions` section of a `.ko`; empty if the module
/// has no such section (built without CONFIG_MODVERSIONS).
pub fn module_versions(ko: &[u8]) -> Result<Vec<Version>> {
    let Some(section) = section(ko, "__versions")? else {
        return Ok(Vec::new());
    };
    ensure!(
        section.len() % MODVERSION_INFO_SIZE == 0,
        "__versions is {} bytes, not a multiple of 64",
        section.len()
    );
    let versions = section
        .chunks(MODVERSION_INFO_SIZE)
        .map(|entry| {
            // The CRC is 32 bits in an unsigned long; little-endian keeps it first.
            Version {
                crc: u32_at(entry, 0),
                symbol: String::from_utf8_lossy(c_str(&entry[8..])).into_owned(),
            }
        })
        .collect();
    Ok(versions)
}

/// The CRCs vmlinux exports: `__crc_<symbol>` labels that modpost's
/// `.vmlinux.export.c` places in `___kcrctab*` sections, one `.long` each.
/// System.map leaves them out (scripts/mksysmap), so read the symbol table.
pub fn kernel_crcs(vmlinux: &[u8]) -> Result<HashMap<String, u32>> {
    let elf = Elf::parse(vmlinux)?;
    let symtab = (0..elf.shnum)
        .map(|i| elf.header(i))
        .find(|h| u32_at(h, 4) == SHT_SYMTAB);
    let Some(symtab) = symtab else {
        bail!("vmlinux has no symbol table")
    };
    let strings = elf.contents(elf.header(u32_at(symtab, 0x28) as usize))?;
    let mut crcs = HashMap::new();
    for sym in elf.contents(symtab)?.chunks_exact(24) {
        let name = c_str(strings.get(u32_at(sym, 0) as usize..).unwrap_or_default());
        let Some(symbol) = name.strip_prefix(b"__crc_") else {
            continue;
        };
        let (shndx, value) = (u16_at(sym, 6) as usize, u64_at(sym, 8));
        if shndx == 0 || shndx >= elf.shnum {
            continue;
        }
        let section = elf.header(shndx);
        let offset = value.wrapping_sub(u64_at(section, 0x10)) as usize;
        let Some(crc) = elf.contents(section)?.get(offset..offset + 4) else {
            continue;
        };
        crcs.insert(String::from_utf8_lossy(symbol).into_owned(), u32_at(crc, 0));
    }
    Ok(crcs)
}

const SHT_SYMTAB: u32 = 2;

/// The section header table of an ELF64 little-endian file.
struct Elf<'a> {
    bytes: &'a [u8],
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Elf<'a>> {
        ensure!(
            bytes.len() >= 64 && bytes[..4] == *b"\x7fELF",
            "not an ELF file"
        );
        ensure!(
            bytes[4] == 2 && bytes[5] == 1,
            "not a little-endian ELF64 file"
        );
        let elf = Elf {
            bytes,
            shoff: u64_at(bytes, 0x28) as usize,
            shnum: u16_at(bytes, 0x3c) as usize,
            shstrndx: u16_at(bytes, 0x3e) as usize,
        };
        let table_end = elf.shoff.checked_add(elf.shnum * 64);
        ensure!(
            u16_at(bytes, 0x3a) == 64 && table_end.is_some_and(|end| end <= bytes.len()),
            "bad section header table"
        );
        ensure!(elf.shstrndx < elf.shnum, "bad section name table index");
        Ok(elf)
    }

    fn header(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.shoff + i * 64..self.shoff + (i + 1) * 64]
    }

    fn contents(&self, header: &[u8]) -> Result<&'a [u8]> {
        let (off, size) = (u64_at(header, 0x18) as usize, u64_at(header, 0x20) as usize);
        self.bytes
            .get(off..off.saturating_add(size))
            .context("section outside the file")
    }
}

/// The contents of the section called `name`, if any.
fn section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let elf = Elf::parse(bytes)?;
    let names = elf.contents(elf.header(elf.shstrndx))?;
    for i in 0..elf.shnum {
        let h = elf.header(i);
        let Some(rest) = names.get(u32_at(h, 0) as usize..) else {
            bail!("bad section name offset")
        };
        if c_str(rest) == name.as_bytes() {
            return elf.contents(h).map(Some);
        }
    }
    Ok(None)
}

/// The bytes up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
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
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let versions_off = elf.len();
        elf.extend(&versions);
        let names_off = elf.len();
        elf.extend(names);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let shoff = elf.len();
        let mut section = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend(h);
        };
        section(0, 0, 0);
        section(1, versions_off, versions.len());
        section(12, names_off, names.len());
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
}
