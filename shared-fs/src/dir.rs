//! Directory contents with stable readdir cookies.
//!
//! Every entry gets a cookie from a per-directory counter when it is inserted
//! (also when renamed in, since that is an insert). Cookies never change and
//! are never reused, and readdir walks entries in cookie order. So a readdir
//! that resumes "after cookie c" cannot return an entry twice and cannot skip
//! an entry that existed throughout, whatever happens concurrently. Cookies 1
//! and 2 are reserved for "." and "..".

use std::collections::BTreeMap;

use crate::types::{FileKind, Ino};

pub(crate) const DOT_COOKIE: u64 = 1;
pub(crate) const DOTDOT_COOKIE: u64 = 2;
const FIRST_COOKIE: u64 = 3;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ino: Ino,
    pub kind: FileKind,
    pub cookie: u64,
}

pub(crate) struct Dir {
    by_name: BTreeMap<Box<[u8]>, Entry>,
    by_cookie: BTreeMap<u64, Box<[u8]>>,
    next_cookie: u64,
}

impl Default for Dir {
    fn default() -> Self {
        Dir { by_name: BTreeMap::new(), by_cookie: BTreeMap::new(), next_cookie: FIRST_COOKIE }
    }
}

impl Dir {
    pub(crate) fn get(&self, name: &[u8]) -> Option<Entry> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds `name`, replacing any entry of that name (callers check first).
    pub(crate) fn insert(&mut self, name: &[u8], ino: Ino, kind: FileKind) {
        self.remove(name);
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_cookie.insert(cookie, name.into());
        self.by_name.insert(name.into(), Entry { ino, kind, cookie });
    }

    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<Entry> {
        let entry = self.by_name.remove(name)?;
        self.by_cookie.remove(&entry.cookie);
        Some(entry)
    }

    /// Entries with a cookie greater than `after`, in cookie order.
    pub(crate) fn after(&self, after: u64) -> impl Iterator<Item = (&[u8], Entry)> + '_ {
        let start = after.saturating_add(1).max(FIRST_COOKIE);
        self.by_cookie.range(start..).filter_map(move |(_, name)| {
            self.by_name.get(name).map(|e| (&name[..], *e))
        })
    }

    pub(crate) fn verify(&self) -> core::result::Result<(), String> {
        if self.by_name.len() != self.by_cookie.len() {
            return Err("name and cookie maps differ in size".into());
        }
        for (name, entry) in &self.by_name {
            if self.by_cookie.get(&entry.cookie).map(|n| &n[..]) != Some(&name[..]) {
                return Err(format!("cookie {} does not map back to {:?}", entry.cookie, name));
            }
            if entry.cookie < FIRST_COOKIE || entry.cookie >= self.next_cookie {
                return Err(format!("cookie {} out of range", entry.cookie));
            }
            if crate::names::check_component(name).is_err() || crate::names::is_dot_or_dotdot(name) {
                return Err(format!("invalid entry name {:?}", String::from_utf8_lossy(name)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_monotonic_and_stable() {
        let mut d = Dir::default();
        d.insert(b"a", 10, FileKind::File);
        d.insert(b"b", 11, FileKind::File);
        let a = d.get(b"a").unwrap().cookie;
        d.remove(b"a");
        d.insert(b"a", 12, FileKind::Dir);
        assert!(d.get(b"a").unwrap().cookie > a);
        let names: Vec<_> = d.after(0).map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, vec![b"b".to_vec(), b"a".to_vec()]);
        let b = d.get(b"b").unwrap().cookie;
        assert_eq!(d.after(b).count(), 1);
        d.verify().unwrap();
    }
}
