//! The shapes SpiceDB accepts for type names, relation names and object ids.
//!
//! SpiceDB rejects a malformed name or id with `InvalidArgument`, which the authorizer would
//! otherwise have to tell apart from a schema mismatch. Checking locally first keeps the two
//! apart: a bad name in the configuration is reported at startup, and a tenant value or subject
//! id that SpiceDB could never hold is simply not allowed.

/// The longest object id SpiceDB accepts, in bytes.
const MAX_OBJECT_ID_BYTES: usize = 1024;

/// The longest object type SpiceDB accepts, in bytes (prefixes included).
const MAX_OBJECT_TYPE_BYTES: usize = 128;

/// Whether `name` is a valid relation or permission name: `[a-z][a-z0-9_]{1,62}[a-z0-9]`.
pub(crate) fn is_relation_name(name: &str) -> bool {
    is_identifier(name, 63)
}

/// Whether `name` is a valid object type, optionally prefixed: `prefix/name`.
pub(crate) fn is_object_type(name: &str) -> bool {
    if name.len() > MAX_OBJECT_TYPE_BYTES {
        return false;
    }
    let mut parts = name.rsplit('/');
    let Some(last) = parts.next() else {
        return false;
    };
    is_identifier(last, 63) && parts.all(|prefix| is_identifier(prefix, 62))
}

/// Whether `id` can name a concrete object: `[a-zA-Z0-9/_|\-=+]+`, at most 1024 bytes.
///
/// The wildcard `*` is refused on purpose: as a tenant or a subject it would stand for everyone.
pub(crate) fn is_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_OBJECT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_|-=+".contains(&b))
}

/// A lowercase identifier of 3 to `max_len` bytes that starts with a letter and does not end
/// with `_`.
fn is_identifier(name: &str, max_len: usize) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    (3..=max_len + 1).contains(&bytes.len())
        && first.is_ascii_lowercase()
        && *last != b'_'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_names_follow_spicedb() {
        for good in ["read", "viewer", "can_read_2", "abc"] {
            assert!(is_relation_name(good), "{good}");
        }
        for bad in ["", "ab", "Read", "read_", "1read", "re-ad", &"a".repeat(65)] {
            assert!(!is_relation_name(bad), "{bad}");
        }
        assert!(is_relation_name(&"a".repeat(64)));
    }

    #[test]
    fn object_types_may_carry_prefixes() {
        for good in ["tenant", "org/tenant", "a_b/c_d/tenant"] {
            assert!(is_object_type(good), "{good}");
        }
        for bad in ["", "/tenant", "org/", "Org/tenant", "te", "tenant/x"] {
            assert!(!is_object_type(bad), "{bad}");
        }
    }

    #[test]
    fn object_ids_exclude_the_wildcard_and_dots() {
        for good in ["acme", "team-1", "a/b", "x=y+z|w_v", "A"] {
            assert!(is_object_id(good), "{good}");
        }
        for bad in ["", "*", "a.b", "a b", "ä", &"a".repeat(1025)] {
            assert!(!is_object_id(bad), "{bad}");
        }
    }
}
