//! Tenant values: what a request asks for and what a caller is allowed.

use std::collections::BTreeSet;
use std::fmt;

/// A non-empty, ordered set of distinct tenant values.
///
/// Both the tenants a request names and the tenants an authorizer allows are `TenantSet`s, so the
/// set that was authorized is the very value the enforcers inject.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantSet(BTreeSet<String>);

/// Why a list of tenant values is not a [`TenantSet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// No value at all.
    #[error("no tenant value given")]
    Empty,
    /// A value that is the empty string.
    #[error("a tenant value is empty")]
    EmptyValue,
}

impl TenantSet {
    /// Collects `values` into a set; fails on an empty list or an empty value.
    pub fn new<I, S>(values: I) -> Result<Self, TenantError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for value in values {
            let value = value.into();
            if value.is_empty() {
                return Err(TenantError::EmptyValue);
            }
            set.insert(value);
        }
        if set.is_empty() {
            return Err(TenantError::Empty);
        }
        Ok(Self(set))
    }

    /// A set of one value.
    pub fn single(value: impl Into<String>) -> Result<Self, TenantError> {
        Self::new([value.into()])
    }

    /// The values, in ascending order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many values the set holds (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `TenantSet` holds at least one value. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: &str) -> bool {
        self.0.contains(value)
    }

    /// Whether every value of `self` is also in `other`.
    pub fn is_subset(&self, other: &TenantSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The values of `self` that are also in `other`, or `None` when there are none.
    pub fn intersection(&self, other: &TenantSet) -> Option<TenantSet> {
        let common: BTreeSet<String> = self.0.intersection(&other.0).cloned().collect();
        (!common.is_empty()).then_some(Self(common))
    }

    /// An anchored-regex alternation matching exactly the values, each escaped as a literal
    /// (the characters Go's `regexp.QuoteMeta` escapes, valid in RE2 and Rust regex syntax):
    /// `a.b`, `c|d` → `a\.b|c\|d`. Every label enforcer uses this, so `=~` means the same set
    /// everywhere.
    pub fn regex_alternation(&self) -> String {
        let mut pattern = String::new();
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                pattern.push('|');
            }
            for c in value.chars() {
                if r"\.+*?()|[]{}^$".contains(c) {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
        }
        pattern
    }

    /// The single value, when the set holds exactly one.
    pub fn as_single(&self) -> Option<&str> {
        match self.0.len() {
            1 => self.0.first().map(String::as_str),
            _ => None,
        }
    }
}

impl fmt::Debug for TenantSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

/// Renders the values joined by `,`, as they appear in logs and span attributes.
impl fmt::Display for TenantSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(value)?;
        }
        Ok(())
    }
}

/// The tenants a request asks for, parsed once from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantRequest {
    /// The request names these tenants.
    Named(TenantSet),
    /// The request names none, and the configuration lets the authorizer choose: it answers with
    /// every tenant the caller may read, or denies.
    Unspecified,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_sorted_deduplicated_and_never_empty() {
        let set = TenantSet::new(["b", "a", "b"]).unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(set.to_string(), "a,b");
        assert_eq!(
            TenantSet::new(Vec::<String>::new()),
            Err(TenantError::Empty)
        );
        assert_eq!(TenantSet::new(["a", ""]), Err(TenantError::EmptyValue));
    }

    // Edge case C08: regex metacharacters in values are escaped, never interpreted.
    #[test]
    fn the_alternation_escapes_every_metacharacter() {
        let set = TenantSet::new(["a.b", "c|d"]).unwrap();
        assert_eq!(set.regex_alternation(), r"a\.b|c\|d");
        let all = TenantSet::single(r"\.+*?()|[]{}^$-x").unwrap();
        assert_eq!(all.regex_alternation(), r"\\\.\+\*\?\(\)\|\[\]\{\}\^\$-x");
    }

    #[test]
    fn intersection_of_disjoint_sets_is_none() {
        let a = TenantSet::new(["a", "b"]).unwrap();
        let b = TenantSet::new(["b", "c"]).unwrap();
        let c = TenantSet::single("c").unwrap();
        assert_eq!(a.intersection(&b), Some(TenantSet::single("b").unwrap()));
        assert_eq!(a.intersection(&c), None);
        assert!(TenantSet::single("b").unwrap().is_subset(&a));
        assert_eq!(b.as_single(), None);
        assert_eq!(c.as_single(), Some("c"));
    }
}
