//! Say a thing once until it changes: the rebalancer re-plans every cycle and
//! finds the same reasons again; a log or a terminal that repeats each of them
//! every cycle buries what is new.

use std::collections::{HashMap, HashSet};

/// Subjects remembered before those absent from the latest round are forgotten.
const REMEMBERED: usize = 100_000;

/// What was said last about each subject (a pod, a job).
#[derive(Debug, Default)]
pub struct Said {
    last: HashMap<String, String>,
    /// Compare reasons by their [`gist`], not word for word.
    by_gist: bool,
}

/// What a reason says, without the figures that move every cycle: the words
/// before the first `(`, `:` or `;`, digits left out. "pod was moved 30 s ago;
/// … can move again in 570 s" and "… 40 s ago; … 560 s" are the same reason;
/// "no target node can take the pod (4 of 4 …): …" is one reason whatever the
/// targets' order.
pub fn gist(reason: &str) -> String {
    let head = reason.split(['(', ':', ';']).next().unwrap_or(reason);
    head.chars().filter(|c| !c.is_ascii_digit()).collect::<String>().trim().to_string()
}

impl Said {
    /// Reasons, compared by their [`gist`].
    pub fn reasons() -> Said {
        Said { by_gist: true, ..Said::default() }
    }

    /// Of `now` (subject, what is true of it now), the entries that differ from
    /// what was last said about the same subject, in `now`'s order. A subject
    /// that drops out and comes back saying the same is not said again.
    pub fn fresh<'a, I>(&mut self, now: I) -> Vec<(&'a str, &'a str)>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut out = Vec::new();
        let mut present = HashSet::new();
        for (subject, text) in now {
            let key = if self.by_gist { gist(text) } else { text.to_string() };
            if present.insert(subject) && self.last.get(subject) != Some(&key) {
                out.push((subject, text));
            }
            self.last.insert(subject.to_string(), key);
        }
        if self.last.len() > REMEMBERED {
            self.last.retain(|s, _| present.contains(s.as_str()));
        }
        out
    }

    /// Subjects remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_said_once_until_it_changes() {
        let mut said = Said::default();
        assert_eq!(said.fresh([("a", "no target"), ("b", "critical")]), [("a", "no target"), ("b", "critical")]);
        assert_eq!(said.fresh([("a", "no target"), ("b", "critical")]), []);
        assert_eq!(said.fresh([("a", "cooldown"), ("b", "critical")]), [("a", "cooldown")]);
        assert_eq!(said.fresh([("a", "cooldown")]), [], "b is not pressured this round");
        assert_eq!(said.fresh([("a", "cooldown"), ("b", "critical")]), [], "b is back with the same reason");
        assert_eq!(said.fresh([("b", "moved")]), [("b", "moved")]);
        assert_eq!(said.fresh([("c", "x"), ("c", "x")]), [("c", "x")], "a subject twice in one round is said once");
        assert_eq!(said.fresh(std::iter::empty()), []);
        assert_eq!(said.len(), 3);
    }

    #[test]
    fn reasons_are_compared_by_their_gist() {
        let cooldown = |ago: u32| {
            format!("pod was moved {ago} s ago; MIGRATION_COOLDOWN is 600 s, it can move again in {} s", 600 - ago)
        };
        let (a, b) = (cooldown(30), cooldown(40));
        let mut said = Said::reasons();
        assert_eq!(said.fresh([("p", a.as_str())]).len(), 1);
        assert_eq!(said.fresh([("p", b.as_str())]), [], "only the figures moved");
        let t1 = "no target node can take the pod (4 of 4 eligible nodes checked): a is full; b is cordoned";
        let t2 = "no target node can take the pod (3 of 3 eligible nodes checked): b is cordoned; a is full";
        assert_eq!(said.fresh([("p", t1)]), [("p", t1)], "another reason");
        assert_eq!(said.fresh([("p", t2)]), []);
        assert_eq!(
            gist("the pod belongs to DaemonSet nav2, which runs one pod per node; it cannot be moved"),
            "the pod belongs to DaemonSet nav, which runs one pod per node"
        );
        assert_eq!(gist("MAX_MIGRATIONS_PER_NODE (3) reached"), "MAX_MIGRATIONS_PER_NODE");
        // Word for word, unless asked.
        let mut exact = Said::default();
        exact.fresh([("p", a.as_str())]);
        assert_eq!(exact.fresh([("p", b.as_str())]).len(), 1);
    }
}
