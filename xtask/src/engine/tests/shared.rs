//! The shared cache with the real clang: a second tree at another path
//! restores what the first compiled, byte for byte, and runs no compiler; a
//! corrupt entry is rebuilt; a cache that is down costs a warning, not the build.

use std::{fs, path::Path};

use super::{step, Tree};
use crate::{
    engine::{
        cache::Cache,
        event::Counts,
        graph::Graph,
        scheduler::Runner,
        shared::{self, SharedCache},
    },
    kbuild::Step,
};

/// A source directory outside every tree, at one path for all of them, as
/// Kbuild's `srctree` is for the trees of one checkout.
struct Source(tempfile::TempDir);

impl Source {
    fn new() -> Source {
        let source = Source(tempfile::tempdir().unwrap());
        source.write("a.h", "#define ANSWER 42\n");
        source.write(
            "a.c",
            "#include \"a.h\"\nint answer(void) { return ANSWER; }\n",
        );
        source
    }

    fn write(&self, file: &str, text: &str) {
        fs::write(self.0.path().join(file), text).unwrap();
    }

    /// A compile that writes its `.cmd` record as fixdep does: its own
    /// product, which a restore must bring back too.
    fn compile(&self) -> Vec<Step> {
        let src = self.0.path().display();
        let record = format!(
            "savedcmd_a/a.o := clang -c -o a/a.o {src}/a.c\\n\\nsource_a/a.o := {src}/a.c\\n\\ndeps_a/a.o := \\\\\\n  {src}/a.c \\\\\\n  {src}/a.h \\\\\\n\\na/a.o: $(deps_a/a.o)\\n\\n$(deps_a/a.o):\\n"
        );
        vec![step(
            "CC",
            "a/a.o",
            &format!("set -e; clang -c -o a/a.o {src}/a.c; printf '{record}' > a/.a.o.cmd"),
        )]
    }
}

fn tree() -> Tree {
    let mut tree = Tree::new();
    let path = format!("/usr/lib/llvm-19/bin:{}", tree.env["PATH"]);
    tree.env.insert("PATH".into(), path);
    tree
}

fn build(tree: &Tree, steps: &[Step], shared: Option<&SharedCache>) -> Counts {
    tree.mkdirs(steps);
    let cache = Cache::open(tree.path()).unwrap();
    let runner = Runner {
        shared,
        ..tree.runner(&cache, 1)
    };
    runner.run(steps, &Graph::new(steps)).unwrap()
}

/// (executed, restored)
fn did(c: Counts) -> (usize, usize) {
    (c.executed, c.restored)
}

#[test]
fn a_second_tree_restores_what_the_first_compiled() {
    let (source, dir) = (Source::new(), tempfile::tempdir().unwrap());
    let compile = source.compile();
    let open = || SharedCache::open(dir.path().to_str().unwrap(), 1 << 30, "clang 19").unwrap();
    let (a, b) = (tree(), tree());

    let cache = open();
    assert_eq!(did(build(&a, &compile, Some(&cache))), (1, 0));
    let report = cache.finish();
    assert_eq!((report.misses, report.uploads), (1, 1));

    let cache = open();
    assert_eq!(
        did(build(&b, &compile, Some(&cache))),
        (0, 1),
        "the second tree compiled"
    );
    assert_eq!(cache.finish().hits, 1);
    assert_eq!(
        fs::read(b.path().join("a/a.o")).unwrap(),
        fs::read(a.path().join("a/a.o")).unwrap()
    );
    assert_eq!(b.read("a/.a.o.cmd"), a.read("a/.a.o.cmd"));
    assert_eq!(
        did(build(&b, &compile, None)),
        (0, 0),
        "a restored step is up to date locally"
    );

    // A header the compile read changes: the stored input set no longer
    // matches, so the step runs, and the first tree then restores its result.
    source.write("a.h", "#define ANSWER 43\n");
    assert_eq!(did(build(&b, &compile, Some(&open()))), (1, 0));
    assert_eq!(did(build(&a, &compile, Some(&open()))), (0, 1));
    assert_eq!(
        fs::read(b.path().join("a/a.o")).unwrap(),
        fs::read(a.path().join("a/a.o")).unwrap()
    );

    // Another toolchain shares nothing.
    let other = SharedCache::open(dir.path().to_str().unwrap(), 1 << 30, "clang 20").unwrap();
    assert_eq!(did(build(&tree(), &compile, Some(&other))), (1, 0));
}

/// Corrupts the stored blob of `content` in a directory cache: same length,
/// byte `at` flipped, so only the digest can tell.
fn flip_byte_of_blob(cache: &Path, content: &[u8], at: usize) {
    let sha = shared::action_result::sha256(content);
    let blob = cache.join("cas").join(&sha[..2]).join(&sha);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[at] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
}

#[test]
fn a_corrupt_entry_is_rebuilt_and_replaced() {
    let (source, dir) = (Source::new(), tempfile::tempdir().unwrap());
    let compile = source.compile();
    let open = || SharedCache::open(dir.path().to_str().unwrap(), 1 << 30, "clang 19").unwrap();
    let a = tree();
    build(&a, &compile, Some(&open()));
    let object = fs::read(a.path().join("a/a.o")).unwrap();
    // Same length, other bytes: only the digest can tell.
    flip_byte_of_blob(dir.path(), &object, 100);

    let (b, cache) = (tree(), open());
    assert_eq!(
        did(build(&b, &compile, Some(&cache))),
        (1, 0),
        "a corrupt object was restored"
    );
    assert_eq!(cache.finish().corrupt, 1);
    assert_eq!(fs::read(b.path().join("a/a.o")).unwrap(), object);
    assert_eq!(
        did(build(&tree(), &compile, Some(&open()))),
        (0, 1),
        "the rebuilt step replaced the entry"
    );
}

#[test]
fn a_cache_that_is_down_costs_a_warning_not_the_build() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache =
        SharedCache::open(&format!("http://127.0.0.1:{port}/cache"), 0, "clang 19").unwrap();
    let (source, a) = (Source::new(), tree());
    assert_eq!(did(build(&a, &source.compile(), Some(&cache))), (1, 0));
    let report = cache.finish();
    let error = report.error.expect("the failure is reported");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!((report.hits, report.uploads), (0, 0));
}

/// The Bazel HTTP protocol against a real server: nginx with WebDAV on
/// loopback. Stopping it between builds is survived as a cache that is down.
#[test]
fn an_http_cache_serves_a_second_tree() {
    let mut server = testkit::CacheServer::start().unwrap_or_else(|e| panic!("{e}"));
    let (source, a, b) = (Source::new(), tree(), tree());
    let compile = source.compile();
    let url = server.url();
    let open = || SharedCache::open(&url, 0, "clang 19").unwrap();
    assert_eq!(did(build(&a, &compile, Some(&open()))), (1, 0));
    let cache = open();
    assert_eq!(
        did(build(&b, &compile, Some(&cache))),
        (0, 1),
        "the second tree compiled"
    );
    assert_eq!(cache.finish().error, None);
    assert_eq!(
        fs::read(b.path().join("a/a.o")).unwrap(),
        fs::read(a.path().join("a/a.o")).unwrap()
    );
    let requests = server.requests();
    for expected in ["PUT /cache/cas/", "PUT /cache/ac/", "GET /cache/ac/"] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(expected) && !r.ends_with(" 404")),
            "no {expected}: {requests:?}"
        );
    }

    server.stop();
    let cache = open();
    assert_eq!(did(build(&tree(), &compile, Some(&cache))), (1, 0));
    assert!(cache.finish().error.is_some());
}

#[test]
fn a_document_comes_back_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let open = || SharedCache::open(dir.path().to_str().unwrap(), 1 << 30, "clang 19").unwrap();
    let plans = b"{\"format\": \"a bundle of plans\"}".repeat(100);
    assert!(open().store_document("recipe key", &plans));
    assert_eq!(
        open().document("recipe key").as_deref(),
        Some(plans.as_slice())
    );
    assert_eq!(open().document("another recipe"), None);
    assert_eq!(
        SharedCache::open(dir.path().to_str().unwrap(), 1 << 30, "clang 20")
            .unwrap()
            .document("recipe key"),
        None,
        "another toolchain"
    );

    flip_byte_of_blob(dir.path(), &plans, 7);
    let cache = open();
    assert_eq!(
        cache.document("recipe key"),
        None,
        "a corrupt document was read"
    );
    assert_eq!(cache.finish().corrupt, 1);
}

#[test]
fn a_blank_cache_is_none_so_that_an_empty_xtask_cache_is_off() {
    let none = SharedCache::from_args(Some(" "), Some("1G"), "clang 19").unwrap();
    assert!(none.is_none());
}
