//! Say a thing once until it changes: the rebalancer re-plans every cycle and
//! finds the same reasons again; a log or a terminal that repeats each of them
//! every cycle buries what is new.

use std::collections::HashMap;

/// What was said last about each subject (a pod, a job).
#[derive(Debug, Default)]
pub struct Said {
    last: HashMap<String, String>,
}

impl Said {
    /// Of `now` (subject, what is true of it now), the entries that differ from
    /// what was last said about the same subject, in `now`'s order. Subjects
    /// missing from `now` are forgotten, so a reason that comes back after a
    /// while is said again.
    pub fn fresh<'a, I>(&mut self, now: I) -> Vec<(&'a str, &'a str)>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut next = HashMap::with_capacity(self.last.len());
        let mut out = Vec::new();
        for (subject, text) in now {
            if self.last.get(subject).map(String::as_str) != Some(text) && !next.contains_key(subject) {
                out.push((subject, text));
            }
            next.insert(subject.to_string(), text.to_string());
        }
        self.last = next;
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
    fn a_reason_is_said_once_until_it_changes_or_comes_back() {
        let mut said = Said::default();
        assert_eq!(said.fresh([("a", "no target"), ("b", "critical")]), [("a", "no target"), ("b", "critical")]);
        assert_eq!(said.fresh([("a", "no target"), ("b", "critical")]), []);
        assert_eq!(said.fresh([("a", "cooldown"), ("b", "critical")]), [("a", "cooldown")]);
        assert_eq!(said.fresh([("a", "cooldown")]), [], "b is forgotten");
        assert_eq!(said.fresh([("a", "cooldown"), ("b", "critical")]), [("b", "critical")], "b came back");
        assert_eq!(said.len(), 2);
        assert_eq!(said.fresh([("c", "x"), ("c", "x")]), [("c", "x")], "a subject twice in one round is said once");
        assert_eq!(said.fresh(std::iter::empty()), []);
        assert!(said.is_empty());
    }
}
