//! The one-line relationship notation of the examples: `tenant:acme#viewer@token:alice`.

use spicedb_rs_proto::authzed::api::v1::{
    ContextualizedCaveat, ObjectReference, Relationship, SubjectReference,
};

/// The relationship lines of `text`: trimmed, without blank lines and `#` or `//` comments.
pub(super) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with("//"))
        .map(str::to_owned)
        .collect()
}

/// Parses `resource:id#relation@subject:id[#relation][[caveat]]`.
pub(super) fn parse(line: &str) -> Result<Relationship, String> {
    let bad = || format!("`{line}` is not `type:id#relation@type:id[#relation][[caveat]]`");
    let (body, caveat) = match line.strip_suffix(']') {
        Some(rest) => {
            let (body, name) = rest.rsplit_once('[').ok_or_else(bad)?;
            (body, Some(name))
        }
        None => (line, None),
    };
    let (resource, rest) = body.split_once('#').ok_or_else(bad)?;
    let (relation, subject) = rest.split_once('@').ok_or_else(bad)?;
    let (subject, subject_relation) = subject.split_once('#').unwrap_or((subject, ""));
    Ok(Relationship {
        resource: Some(object(resource).ok_or_else(bad)?),
        relation: relation.to_owned(),
        subject: Some(SubjectReference {
            object: Some(object(subject).ok_or_else(bad)?),
            optional_relation: subject_relation.to_owned(),
        }),
        optional_caveat: caveat.map(|name| ContextualizedCaveat {
            caveat_name: name.to_owned(),
            context: None,
        }),
        optional_expires_at: None,
    })
}

fn object(text: &str) -> Option<ObjectReference> {
    let (object_type, object_id) = text.split_once(':')?;
    Some(ObjectReference {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_notation() {
        let rel = parse("tenant:acme#viewer@group:ops#member[weekday]").unwrap();
        assert_eq!(rel.resource.unwrap().object_id, "acme");
        assert_eq!(rel.relation, "viewer");
        let subject = rel.subject.unwrap();
        assert_eq!(subject.object.unwrap().object_type, "group");
        assert_eq!(subject.optional_relation, "member");
        assert_eq!(rel.optional_caveat.unwrap().caveat_name, "weekday");
        assert!(parse("tenant:acme viewer token:alice").is_err());
    }

    #[test]
    fn the_example_file_parses() {
        let lines = lines(super::super::EXAMPLE_RELATIONSHIPS);
        assert!(lines.len() >= 5);
        for line in &lines {
            parse(line).unwrap();
        }
    }
}
