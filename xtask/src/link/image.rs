//! The boot image's plan, settled. make expands some of its recipes before
//! their inputs exist (x86's `size_append` embeds file sizes), so the image
//! is planned and run in rounds until a round plans what the round before
//! it ran; the settled plan is what a rebuild runs.

use anyhow::{bail, Result};

use crate::kbuild::Step;

/// How many rounds the plan may take to settle (x86 needs three: its
/// prefix, the whole image, and the same again).
pub const ROUNDS: u8 = 4;

/// `plan(round, outputs)` plans a round, given what the round before made
/// (a key of its outputs, empty at first); `run(round, steps)` runs it and
/// returns that key. Returns the settled plan.
pub fn settle(
    mut plan: impl FnMut(u8, &str) -> Result<Vec<Step>>,
    mut run: impl FnMut(u8, &[Step]) -> Result<String>,
) -> Result<Vec<Step>> {
    let mut previous: Vec<Step> = Vec::new();
    let mut outputs = String::new();
    for round in 0..ROUNDS {
        let steps = plan(round, &outputs)?;
        if steps == previous {
            return Ok(steps);
        }
        outputs = run(round, &steps)?;
        previous = steps;
    }
    bail!("the image plan still changed after {ROUNDS} rounds of make -n: a recipe depends on a file in a way the xtask does not follow; `cargo xtask build` again, and report it if it repeats")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(output: &str, command: &str) -> Step {
        Step::new("GEN", false, output, command)
    }

    #[test]
    fn a_plan_that_follows_what_it_made_settles_when_it_plans_the_same() {
        // The second round plans with the size the first one made; the third
        // plans the same again, and nothing more runs.
        let mut ran = Vec::new();
        let settled = settle(
            |_, outputs| {
                let size = if outputs.is_empty() { "0" } else { outputs };
                Ok(vec![step("image", &format!("append {size}"))])
            },
            |round, _| {
                ran.push(round);
                Ok("42".into())
            },
        )
        .unwrap();
        assert_eq!(settled, [step("image", "append 42")]);
        assert_eq!(ran, [0, 1]);
    }

    #[test]
    fn a_plan_that_never_settles_is_an_error() {
        let error = settle(
            |round, _| Ok(vec![step("image", &format!("round {round}"))]),
            |round, _| Ok(round.to_string()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("still changed after 4 rounds"));
    }
}
