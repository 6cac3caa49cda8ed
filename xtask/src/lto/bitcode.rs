//! LLVM bitcode, read for the one thing a backend's key needs from it: the
//! files its module-level inline assembly pulls in with `.incbin`
//! (`kernel/configs.c` embeds `config_data.gz`). The assembler reads them
//! only in the backend, so no compile's dependency list names them.
//!
//! A reader of the bitstream container (LLVM's `BitCodeFormat.rst`) that
//! decodes the module block's own records and skips its sub-blocks (types,
//! constants, metadata, function bodies, BLOCKINFO) by their length. Written here: the
//! `llvm-bitcode` crate rejects the zero-width operands LLVM 19 writes, and
//! `llvm-dis` of every object costs each backend a process and the whole
//! module's text.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// `MODULE_BLOCK_ID` and `MODULE_CODE_ASM` in LLVM's `LLVMBitCodes.h`.
const MODULE_BLOCK: u64 = 8;
const MODULE_CODE_ASM: u64 = 4;

/// The files named by `.incbin` in the module asm of a bitcode object, in
/// order of appearance, as written (relative to the object tree for Kbuild).
pub fn incbins(object: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let asm = module_asm(&bytes)
        .with_context(|| format!("reading the bitcode of {}", object.display()))?;
    Ok(asm.lines().filter_map(incbin).collect())
}

/// The module's inline assembly, its lines joined by newlines.
fn module_asm(bytes: &[u8]) -> Result<String> {
    let mut bits = Bits {
        bytes: stream(bytes)?,
        at: 32,
    };
    // Top level: skip every block but the module.
    while bits.at < bits.bytes.len() * 8 {
        match bits.fixed(2)? {
            ENTER_SUBBLOCK => {
                let (id, width, end) = bits.enter()?;
                if id != MODULE_BLOCK {
                    bits.at = end;
                    continue;
                }
                let mut asm = Vec::new();
                read_block(&mut bits, width, &mut |code, ops| {
                    if code == MODULE_CODE_ASM {
                        asm.extend(ops.iter().map(|&c| c as u8));
                    }
                })?;
                return Ok(String::from_utf8_lossy(&asm).into_owned());
            }
            id => bail!("abbreviation {id} at the top level of the bitstream"),
        }
    }
    bail!("no module block")
}

/// The bitstream after the magic, unwrapped from the Darwin wrapper if any.
fn stream(bytes: &[u8]) -> Result<&[u8]> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
    };
    let bytes = match word(0) {
        Some(0x0B17_C0DE) => {
            let (offset, size) = (
                word(8).context("truncated wrapper")? as usize,
                word(12).context("truncated wrapper")? as usize,
            );
            bytes
                .get(offset..offset + size)
                .context("the wrapper points past the file")?
        }
        _ => bytes,
    };
    ensure!(bytes.starts_with(b"BC\xC0\xDE"), "not LLVM bitcode");
    Ok(bytes)
}

const END_BLOCK: u64 = 0;
const ENTER_SUBBLOCK: u64 = 1;
const DEFINE_ABBREV: u64 = 2;
const UNABBREV_RECORD: u64 = 3;

#[derive(Clone, Copy)]
enum Op {
    Literal(u64),
    Fixed(usize),
    Vbr(usize),
    Array,
    Char6,
    Blob,
}

/// Reads one block's records to its end, handing each (code, operands) to
/// `record`; sub-blocks are skipped. A BLOCKINFO block inside it is skipped
/// too: its abbreviations apply to blocks entered after it (LLVM adds them
/// on entering a block), never to the block that holds it.
fn read_block(bits: &mut Bits, width: usize, record: &mut dyn FnMut(u64, &[u64])) -> Result<()> {
    let mut abbrevs: Vec<Vec<Op>> = Vec::new();
    loop {
        match bits.fixed(width)? {
            END_BLOCK => {
                bits.align32();
                return Ok(());
            }
            ENTER_SUBBLOCK => {
                let (_, _, end) = bits.enter()?;
                bits.at = end;
            }
            DEFINE_ABBREV => abbrevs.push(bits.define_abbrev()?),
            UNABBREV_RECORD => {
                let code = bits.vbr(6)?;
                let n = bits.vbr(6)?;
                let ops = (0..n).map(|_| bits.vbr(6)).collect::<Result<Vec<_>>>()?;
                record(code, &ops);
            }
            id => {
                let abbrev = abbrevs
                    .get(id as usize - 4)
                    .with_context(|| format!("undefined abbreviation {id}"))?;
                let mut values = bits.abbreviated(abbrev)?;
                ensure!(!values.is_empty(), "a record without a code");
                let code = values.remove(0);
                record(code, &values);
            }
        }
    }
}

/// A cursor over the stream's bits, least significant first.
struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn fixed(&mut self, width: usize) -> Result<u64> {
        ensure!(width <= 64, "a {width}-bit field");
        ensure!(
            self.at + width <= self.bytes.len() * 8,
            "truncated bitstream"
        );
        let mut value = 0;
        for i in 0..width {
            let bit = self.at + i;
            value |= u64::from(self.bytes[bit / 8] >> (bit % 8) & 1) << i;
        }
        self.at += width;
        Ok(value)
    }

    fn vbr(&mut self, width: usize) -> Result<u64> {
        if width == 0 {
            return Ok(0);
        }
        let (high, mut value, mut shift) = (1 << (width - 1), 0u64, 0);
        loop {
            let chunk = self.fixed(width)?;
            ensure!(shift < 64, "a VBR value past 64 bits");
            value |= (chunk & (high - 1)) << shift;
            if chunk & high == 0 {
                return Ok(value);
            }
            shift += width - 1;
        }
    }

    fn align32(&mut self) {
        self.at = self.at.div_ceil(32) * 32;
    }

    /// ENTER_SUBBLOCK's fields: the block id, its abbreviation width and
    /// the bit its contents end at.
    fn enter(&mut self) -> Result<(u64, usize, usize)> {
        let id = self.vbr(8)?;
        let width = self.vbr(4)? as usize;
        self.align32();
        let words = self.fixed(32)? as usize;
        Ok((id, width, self.at + words * 32))
    }

    fn define_abbrev(&mut self) -> Result<Vec<Op>> {
        let n = self.vbr(5)?;
        let mut ops = Vec::new();
        for _ in 0..n {
            ops.push(if self.fixed(1)? == 1 {
                Op::Literal(self.vbr(8)?)
            } else {
                match self.fixed(3)? {
                    1 => Op::Fixed(self.vbr(5)? as usize),
                    2 => Op::Vbr(self.vbr(5)? as usize),
                    3 => Op::Array,
                    4 => Op::Char6,
                    5 => Op::Blob,
                    e => bail!("unknown operand encoding {e}"),
                }
            });
        }
        Ok(ops)
    }

    fn scalar(&mut self, op: Op) -> Result<u64> {
        Ok(match op {
            Op::Literal(value) => value,
            Op::Fixed(width) => self.fixed(width)?,
            Op::Vbr(width) => self.vbr(width)?,
            Op::Char6 => {
                const CHARS: &[u8; 64] =
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._";
                u64::from(CHARS[self.fixed(6)? as usize])
            }
            Op::Array | Op::Blob => bail!("an array or blob inside an array"),
        })
    }

    fn abbreviated(&mut self, abbrev: &[Op]) -> Result<Vec<u64>> {
        let mut values = Vec::new();
        let mut ops = abbrev.iter().copied();
        while let Some(op) = ops.next() {
            match op {
                Op::Array => {
                    let element = ops.next().context("an array without its element type")?;
                    let n = self.vbr(6)?;
                    for _ in 0..n {
                        values.push(self.scalar(element)?);
                    }
                }
                Op::Blob => {
                    let n = self.vbr(6)? as usize;
                    self.align32();
                    for _ in 0..n {
                        values.push(self.fixed(8)?);
                    }
                    self.align32();
                }
                op => values.push(self.scalar(op)?),
            }
        }
        Ok(values)
    }
}

/// The file of an `.incbin "FILE"[, skip[, count]]` directive.
fn incbin(line: &str) -> Option<String> {
    let rest = line
        .trim_start()
        .strip_prefix(".incbin")?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incbin_files_of_a_thin_object_come_from_its_module_asm() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("configs.c");
        std::fs::write(
            &c,
            "asm(\"\t.pushsection .rodata, \\\"a\\\"\\n\t.incbin \\\"kernel/config_data.gz\\\"\\n\t.popsection\");\n\
             asm(\".incbin \\\"certs/x509.genkey\\\", 4, 8\");\n\
             int f(void) { asm volatile(\"nop\"); return 1; }\n",
        )
        .unwrap();
        // Reading the module asm for its symbols, clang assembles it: the files must exist.
        for blob in ["kernel/config_data.gz", "certs/x509.genkey"] {
            std::fs::create_dir_all(dir.path().join(blob).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(blob), "0123456789abcdef").unwrap();
        }
        let object = dir.path().join("configs.o");
        let status = std::process::Command::new("/usr/lib/llvm-19/bin/clang")
            .args(["--target=x86_64-linux-gnu", "-O2", "-flto=thin", "-c", "-o"])
            .arg(&object)
            .arg(&c)
            .current_dir(dir.path())
            .status()
            .expect("clang-19 is missing: apt-get install clang-19");
        assert!(status.success());
        assert_eq!(
            incbins(&object).unwrap(),
            ["kernel/config_data.gz", "certs/x509.genkey"]
        );
    }

    #[test]
    fn an_object_without_module_asm_has_none_and_an_elf_object_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("a.c");
        std::fs::write(&c, "int a(void) { return 1; }\n").unwrap();
        for (lto, object) in [("-flto=thin", "a.bc.o"), ("-fno-lto", "a.elf.o")] {
            let status = std::process::Command::new("/usr/lib/llvm-19/bin/clang")
                .args(["--target=x86_64-linux-gnu", "-O2", lto, "-c", "-o"])
                .arg(dir.path().join(object))
                .arg(&c)
                .status()
                .expect("clang-19 is missing: apt-get install clang-19");
            assert!(status.success());
        }
        assert!(incbins(&dir.path().join("a.bc.o")).unwrap().is_empty());
        let error = incbins(&dir.path().join("a.elf.o")).unwrap_err();
        assert!(
            format!("{error:#}").contains("reading the bitcode of"),
            "{error:#}"
        );
    }

    #[test]
    fn incbin_directives_are_read_with_their_optional_operands() {
        assert_eq!(incbin("\t.incbin \"a/b.gz\""), Some("a/b.gz".into()));
        assert_eq!(incbin(".incbin \"x\", 4, 8"), Some("x".into()));
        assert_eq!(incbin(".ascii \"IKCFG_ST\""), None);
        assert_eq!(incbin(".incbin broken"), None);
    }
}
