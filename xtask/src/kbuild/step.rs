//! A step: one Kbuild recipe, as the dry run printed it. Plain data.

use serde::{Deserialize, Serialize};

/// What a step does, from its quiet tag. Decides graph edges, scheduling
/// cost and which steps the LTO policy may rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `CC`: a C compile of kernel or module code.
    CompileC,
    /// `AS`: an assembly compile.
    CompileAsm,
    /// `AR`: a thin archive (`built-in.a`, `lib.a`, `vmlinux.a`).
    Archive,
    /// `HOSTCC`, `HOSTLD`, `HOSTCXX`: a host tool.
    Host,
    /// Anything else (`GEN`, `LD`, `UPD`, `OBJCOPY`, untagged `$(cmd)`s): may
    /// write files other steps read without naming them.
    Generator,
    /// `DESCEND`: a recursive make into a build system of its own (objtool's
    /// `tools/build`); that make keeps its inside up to date, and its inputs
    /// are the dependencies its `.cmd` files record.
    SubMake,
    /// A ThinLTO backend: one bitcode object to native code, by its index shard.
    /// It reads only what it declares, so no directory barrier applies.
    Backend,
}

impl StepKind {
    pub fn from_tag(tag: &str) -> StepKind {
        match tag {
            "CC" => StepKind::CompileC,
            "AS" => StepKind::CompileAsm,
            "AR" => StepKind::Archive,
            "HOSTCC" | "HOSTLD" | "HOSTCXX" => StepKind::Host,
            "BACKEND" => StepKind::Backend,
            "DESCEND" => StepKind::SubMake,
            _ => StepKind::Generator,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    /// The quiet tag without `[M]` (`CC`, `GEN`, `CMD` when untagged), for people.
    pub tag: String,
    /// Kbuild printed `[M]`: the step builds part of a loadable module.
    pub module: bool,
    /// The output as Kbuild names it, relative to the object tree.
    pub output: String,
    /// The recipe, one shell line, exactly as Kbuild would run it.
    pub command: String,
    /// Outputs of other steps this one reads without naming them in its
    /// command (the xtask's own steps declare them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Inputs of its key beyond what its `.cmd` file records, in the cache's
    /// notation (`size:PATH`); the LTO policy declares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

impl Step {
    pub fn new(tag: &str, module: bool, output: &str, command: &str) -> Step {
        Step {
            kind: StepKind::from_tag(tag),
            tag: tag.into(),
            module,
            output: output.into(),
            command: command.into(),
            needs: Vec::new(),
            inputs: Vec::new(),
        }
    }

    /// The directory that owns this step: the unit it belongs to.
    pub fn dir(&self) -> &str {
        self.output.rsplit_once('/').map_or("", |(dir, _)| dir)
    }

    /// A compile of kernel code (not a host tool), built-in or modular.
    pub fn is_compile(&self) -> bool {
        matches!(self.kind, StepKind::CompileC | StepKind::CompileAsm)
    }

    /// Steps that generate files other steps may include without naming them.
    pub fn is_generator(&self) -> bool {
        self.kind == StepKind::Generator
    }
}
