//! The gateway's view of the enforcer: the `Enforcer` trait and the `logql` factory.

use std::sync::Arc;

use portcullis_api::{
    BuildError, EnforceError, Enforcer, EnforcerFactory, ExpressionKind, Language, PluginContext,
    Section, Target, TenantSet,
};

use crate::{EnforcerConfig, LogqlEnforcer};

// === impl LogqlEnforcer ===

impl Enforcer for LogqlEnforcer {
    /// Rewrites every expression of `target`: a [`ExpressionKind::Query`] as a whole query (a
    /// missing one is the empty query, which is refused), a [`ExpressionKind::Selector`] as a
    /// stream selector (a missing one becomes the tenant selector). Either every expression is
    /// rewritten or, on the first error, none is.
    fn enforce(&self, target: &mut Target<'_>, allowed: &TenantSet) -> Result<(), EnforceError> {
        if !self.supports(target.language) {
            return Err(EnforceError::Unsupported(format!(
                "the logql enforcer cannot enforce {:?} expressions",
                target.language
            )));
        }

        let mut rewritten = Vec::with_capacity(target.expressions.len());
        let mut selectors = 0;
        for expression in target.expressions.iter() {
            let text = expression.text.as_deref();
            let (enforced, count) = match expression.kind {
                ExpressionKind::Query => self.rewrite_query(text.unwrap_or_default(), allowed)?,
                ExpressionKind::Selector => (self.enforce_selector(text, allowed)?, 1),
                kind => {
                    return Err(EnforceError::Unsupported(format!(
                        "the logql enforcer cannot enforce {kind:?} expressions"
                    )));
                }
            };
            rewritten.push(enforced);
            selectors += count;
        }

        for (expression, text) in target.expressions.iter_mut().zip(rewritten) {
            expression.text = Some(text);
        }
        target.selectors_rewritten += selectors;
        Ok(())
    }

    fn supports(&self, language: Language) -> bool {
        language == Language::LogQl
    }

    fn label(&self) -> Option<&str> {
        Some(&self.config().label)
    }
}

/// Builds [`LogqlEnforcer`]s from configuration sections of `type = "logql"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogqlEnforcerFactory;

impl EnforcerFactory for LogqlEnforcerFactory {
    fn type_name(&self) -> &'static str {
        "logql"
    }

    fn build(
        &self,
        section: &Section,
        _context: &PluginContext,
    ) -> Result<Arc<dyn Enforcer>, BuildError> {
        let config: EnforcerConfig = section.parse()?;
        let enforcer =
            LogqlEnforcer::new(config).map_err(|err| section.error(err.key(), err.to_string()))?;
        Ok(Arc::new(enforcer))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_api::{Expression, HeaderEdits};

    use super::*;

    fn section(text: &str) -> Section {
        Section::new("enforcers.logs", toml::from_str(text).unwrap())
    }

    fn build(text: &str) -> Result<Arc<dyn Enforcer>, BuildError> {
        LogqlEnforcerFactory.build(&section(text), &PluginContext::default())
    }

    fn acme() -> TenantSet {
        TenantSet::single("acme").unwrap()
    }

    fn run(
        enforcer: &dyn Enforcer,
        language: Language,
        expressions: &mut [Expression],
    ) -> Result<usize, EnforceError> {
        let mut headers = HeaderEdits::default();
        let mut target = Target::new(language, expressions, &mut headers);
        let result = enforcer.enforce(&mut target, &acme());
        let rewritten = target.selectors_rewritten;
        assert_eq!(headers.iter().count(), 0);
        result.map(|()| rewritten)
    }

    #[test]
    fn the_factory_builds_from_its_section() {
        assert_eq!(LogqlEnforcerFactory.type_name(), "logql");
        let enforcer = build("label = 'namespace'").unwrap();
        assert!(enforcer.supports(Language::LogQl));
        assert!(!enforcer.supports(Language::PromQl));
    }

    #[test]
    fn build_errors_name_the_key() {
        let err = build("label = 'namespace'\nmax_depth = 0").err().unwrap();
        assert_eq!(
            err.to_string(),
            "enforcers.logs.max_depth: must be at least 1"
        );
        let err = build("label = 'namespace'\nstrict = true").err().unwrap();
        assert!(err.to_string().contains("unknown field `strict`"), "{err}");
        let err = build("label = 'k8s.namespace'").err().unwrap();
        assert_eq!(err.path, "enforcers.logs.label");
        let err = build("error_on_replace = true").err().unwrap();
        assert!(err.to_string().contains("missing field `label`"), "{err}");
    }

    #[test]
    fn every_expression_is_rewritten_by_its_kind() {
        let enforcer = build("label = 'namespace'").unwrap();
        assert_eq!(enforcer.label(), Some("namespace"));
        let mut expressions = [
            Expression::new(ExpressionKind::Query, Some(r#"{app="a"} |= "x""#.into())),
            Expression::new(ExpressionKind::Query, Some(r#"{a="1"} or {b="2"}"#.into())),
            Expression::new(ExpressionKind::Selector, Some(r#"{app="a"}"#.into())),
            Expression::new(ExpressionKind::Selector, Some("{}".into())),
            Expression::new(ExpressionKind::Selector, None),
        ];
        let rewritten = run(&*enforcer, Language::LogQl, &mut expressions).unwrap();
        assert_eq!(rewritten, 6);

        let texts: Vec<_> = expressions.iter().map(|e| e.text.as_deref()).collect();
        assert_eq!(
            texts,
            [
                Some(r#"{app="a", namespace="acme"} |= "x""#),
                Some(r#"{a="1", namespace="acme"} or {b="2", namespace="acme"}"#),
                Some(r#"{app="a", namespace="acme"}"#),
                Some(r#"{namespace="acme"}"#),
                Some(r#"{namespace="acme"}"#),
            ]
        );
    }

    #[test]
    fn one_bad_expression_leaves_all_untouched() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [
            Expression::new(ExpressionKind::Query, Some(r#"{app="a"}"#.into())),
            Expression::new(ExpressionKind::Query, Some(r#"{app="a}"#.into())),
        ];
        let err = run(&*enforcer, Language::LogQl, &mut expressions).unwrap_err();
        assert!(matches!(err, EnforceError::Invalid(_)), "{err:?}");
        assert_eq!(expressions[0].text.as_deref(), Some(r#"{app="a"}"#));
    }

    #[test]
    fn a_missing_query_is_a_parse_error() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [Expression::new(ExpressionKind::Query, None)];
        assert_eq!(
            run(&*enforcer, Language::LogQl, &mut expressions),
            Err(EnforceError::Invalid(
                "parse error: no expression found in input".into()
            ))
        );
    }

    #[test]
    fn other_languages_are_a_configuration_error() {
        let enforcer = build("label = 'namespace'").unwrap();
        let mut expressions = [Expression::new(ExpressionKind::Query, Some("up".into()))];
        let err = run(&*enforcer, Language::PromQl, &mut expressions).unwrap_err();
        assert!(matches!(err, EnforceError::Unsupported(_)), "{err:?}");
        assert_eq!(expressions[0].text.as_deref(), Some("up"));
    }
}
