//! How a mock answers: for one key (a push id, a device token) until told otherwise, for the
//! next N requests whatever their key (these come first), or by default.

use std::collections::{HashMap, VecDeque};

/// The instructions of one mock.
#[derive(Debug)]
pub(crate) struct Answers<A> {
    per_key: HashMap<String, A>,
    next: VecDeque<(A, u32)>,
    default: Option<A>,
}

impl<A> Default for Answers<A> {
    fn default() -> Self {
        Self { per_key: HashMap::new(), next: VecDeque::new(), default: None }
    }
}

impl<A: Copy> Answers<A> {
    /// Requests for `key` get `answer` from now on.
    pub(crate) fn for_key(&mut self, key: &str, answer: A) {
        self.per_key.insert(key.to_owned(), answer);
    }

    /// The next `count` requests get `answer`.
    pub(crate) fn next(&mut self, count: u32, answer: A) {
        if count > 0 {
            self.next.push_back((answer, count));
        }
    }

    /// Requests no other instruction covers get `answer`.
    pub(crate) fn all(&mut self, answer: A) {
        self.default = Some(answer);
    }

    /// The answer for a request for `key` (using up one of the "next N"), if instructed.
    pub(crate) fn take(&mut self, key: &str) -> Option<A> {
        if let Some((answer, left)) = self.next.front_mut() {
            let answer = *answer;
            *left -= 1;
            if *left == 0 {
                self.next.pop_front();
            }
            return Some(answer);
        }
        self.per_key.get(key).copied().or(self.default)
    }

    /// Forgets every instruction.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}
