//! A deterministic `newc` cpio writer for the boot initramfs.
//!
//! Written here rather than taken from a crate: the format is a 110-byte
//! ASCII header, the name and the data, each padded to 4 bytes
//! (Documentation/driver-api/early-userspace/buffer-format.rst), and what we
//! need from it is exactly what the general-purpose writers make awkward:
//! byte-identical output for identical inputs (uid/gid 0, mtime 0, inodes
//! numbered in path order, entries sorted, parents implied) and device nodes
//! without root privileges. The conventions are GNU cpio's
//! `--reproducible` ones (inodes from 0, output padded to 512-byte blocks),
//! and a test checks we write the very bytes GNU cpio writes.

use std::collections::BTreeMap;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    CharDev { major: u32, minor: u32 },
}

#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    /// Permission bits only; the file type comes from `kind`.
    perm: u32,
}

/// An in-memory archive. Paths are relative (`dev/console`) and sorted on
/// output, so insertion order does not matter.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    /// A directory (mode 0755) and its parents.
    pub fn dir(&mut self, path: &str) -> &mut Archive {
        self.insert(path, Kind::Dir, 0o755)
    }

    /// A regular file with the given permission bits (e.g. 0o755 for /init).
    pub fn file(&mut self, path: &str, perm: u32, data: impl Into<Vec<u8>>) -> &mut Archive {
        self.insert(path, Kind::File(data.into()), perm)
    }

    /// A character device node, e.g. `dev/console` (5, 1): a kernel without
    /// devtmpfs needs it to give init a console.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> &mut Archive {
        self.insert(path, Kind::CharDev { major, minor }, perm)
    }

    fn insert(&mut self, path: &str, kind: Kind, perm: u32) -> &mut Archive {
        let path = path.trim_matches('/');
        assert!(!path.is_empty(), "cpio entry needs a name");
        // Parents first, so that extraction never meets a missing directory.
        for (i, _) in path.match_indices('/') {
            self.entries.entry(path[..i].to_string()).or_insert(Entry {
                kind: Kind::Dir,
                perm: 0o755,
            });
        }
        self.entries.insert(path.to_string(), Entry { kind, perm });
        self
    }

    /// The archive bytes, trailer included. Sorting by path puts every
    /// directory before its contents ("a" < "a/b" as a prefix).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, nlink, data, rdev) = match &entry.kind {
                // Like a real filesystem: "." and "..", plus one per subdirectory.
                Kind::Dir => (S_IFDIR, 2 + self.subdirs(path), &[][..], (0, 0)),
                Kind::File(data) => (S_IFREG, 1, &data[..], (0, 0)),
                Kind::CharDev { major, minor } => (S_IFCHR, 1, &[][..], (*major, *minor)),
            };
            let header = Header {
                ino: i as u32,
                mode: mode | entry.perm,
                nlink,
                rdev,
            };
            header.write(&mut out, path, data);
        }
        Header {
            ino: 0,
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
        }
        .write(&mut out, "TRAILER!!!", &[]);
        // GNU cpio's block size; the kernel skips the zeros.
        out.resize(out.len().next_multiple_of(512), 0);
        out
    }

    fn subdirs(&self, dir: &str) -> u32 {
        let prefix = format!("{dir}/");
        let children = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix));
        children
            .filter(|(p, e)| e.kind == Kind::Dir && !p[prefix.len()..].contains('/'))
            .count() as u32
    }
}

/// The fields that vary; uid, gid, mtime and the device of the archive are 0.
struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
}

impl Header {
    fn write(&self, out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let fields = [
            self.ino,
            self.mode,
            0, // uid
            0, // gid
            self.nlink,
            0, // mtime
            u32::try_from(data.len()).expect("initramfs file over 4 GiB"),
            0, // devmajor
            0, // devminor
            self.rdev.0,
            self.rdev.1,
            name.len() as u32 + 1, // namesize, with the NUL
            0,                     // check: only used by the "070702" crc format
        ];
        out.extend_from_slice(b"070701");
        for field in fields {
            out.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad4(out);
        out.extend_from_slice(data);
        pad4(out);
    }
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        fs,
        io::Write,
        os::unix::fs::{MetadataExt, PermissionsExt},
        path::Path,
        process::{Command, Stdio},
    };

    fn tiny() -> Archive {
        let mut a = Archive::new();
        a.file("init", 0o755, b"#!x\n".to_vec()).dir("proc").file(
            "lib/modules/order",
            0o644,
            b"m.ko\n".to_vec(),
        );
        a
    }

    /// Runs GNU cpio with `args` in `dir`, feeding it `input`.
    fn cpio(dir: &Path, args: &[&str], input: &[u8]) -> String {
        let mut child = Command::new("cpio")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("GNU cpio is needed for this test (apt-get install cpio)");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "cpio {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn exact_bytes_of_one_file() {
        let mut a = Archive::new();
        a.file("a", 0o644, b"hi".to_vec());
        let expected = concat!(
            "070701",
            "00000000",
            "000081A4",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000002",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000002",
            "00000000",
            "a\0",
            "hi\0\0",
            "070701",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000B",
            "00000000",
            "TRAILER!!!\0\0\0\0",
        );
        let bytes = a.to_bytes();
        assert_eq!(bytes.len(), 512);
        assert_eq!(String::from_utf8_lossy(&bytes[..expected.len()]), expected);
        assert!(bytes[expected.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn deterministic_and_order_independent() {
        let mut b = Archive::new();
        b.file("lib/modules/order", 0o644, b"m.ko\n".to_vec())
            .dir("proc")
            .file("init", 0o755, b"#!x\n".to_vec());
        assert_eq!(tiny().to_bytes(), b.to_bytes());
    }

    #[test]
    fn gnu_cpio_lists_it() {
        let mut a = tiny();
        a.char_dev("dev/console", 0o600, 5, 1);
        let dir = tempfile::tempdir().unwrap();
        let listing = cpio(dir.path(), &["-t", "-v", "--quiet"], &a.to_bytes());
        let lines: Vec<&str> = listing.lines().collect();
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/order",
                "proc"
            ]
        );
        let console = lines[1].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            &console[..6],
            ["crw-------", "1", "root", "root", "5,", "1"],
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("-rwxr-xr-x   1 root     root            4 "),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn gnu_cpio_extracts_it() {
        let dir = tempfile::tempdir().unwrap();
        cpio(dir.path(), &["-i", "-d", "--quiet"], &tiny().to_bytes());
        let init = dir.path().join("init");
        assert_eq!(fs::read(&init).unwrap(), b"#!x\n");
        assert_eq!(
            fs::metadata(&init).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            fs::read(dir.path().join("lib/modules/order")).unwrap(),
            b"m.ko\n"
        );
        assert!(dir.path().join("proc").is_dir());
    }

    /// The strongest check: GNU cpio, given the same tree with the same
    /// metadata, writes the same bytes. `archive` is extracted to build the
    /// tree, so a device node in it needs root.
    fn assert_same_bytes_as_gnu_cpio(archive: &Archive) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ours = archive.to_bytes();
        cpio(root, &["-i", "-d", "--quiet"], &ours);
        let names: Vec<&String> = archive.entries.keys().collect();
        for name in &names {
            // mtime 0, as ours.
            let status = Command::new("touch")
                .args(["-h", "-d", "@0", name])
                .current_dir(root)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let list: String = names.iter().map(|n| format!("{n}\n")).collect();
        let gnu = cpio(
            root,
            &[
                "-o",
                "-H",
                "newc",
                "--quiet",
                "--reproducible",
                "--owner=0:0",
            ],
            list.as_bytes(),
        );
        assert_eq!(
            gnu.as_bytes(),
            ours,
            "GNU cpio:\n{gnu:?}\nours:\n{:?}",
            String::from_utf8_lossy(&ours)
        );
    }

    #[test]
    fn same_bytes_as_gnu_cpio() {
        assert_same_bytes_as_gnu_cpio(&tiny());
    }

    /// With /dev/console too. Extracting a device node needs root, which CI
    /// has: without it this test fails rather than passing untested.
    #[test]
    fn same_bytes_as_gnu_cpio_with_a_device() {
        // /proc/self belongs to the effective user (proc(5)).
        let euid = fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(
            euid, 0,
            "this test needs root (to create dev/console): run it as root, as CI does"
        );
        let mut a = tiny();
        a.char_dev("dev/console", 0o600, 5, 1);
        assert_same_bytes_as_gnu_cpio(&a);
    }
}
